#!/usr/bin/env python3
"""The chain-verdict cache keeps every verdict exact (issue 14).

The scanner verifies each distinct certificate chain once and takes the PKIX verdict of
a chain it has seen from its cache. What must not change: two addresses serving the same
chain under different MX names get different name verdicts; an untrusted chain (self-
signed, expired) stays untrusted, with its own error code, the second time and in the
name lines judged on the stored chain; a trusted chain after untrusted ones is trusted.
Every record is compared with the fleet's truth, and the scan's closing log lines say
how many chains were verified and how many verdicts came from the cache, and how many
distinct chains the probe plans keep for the run (one copy each, however many addresses
serve it)."""
import json
import os
import re
import subprocess
import unittest

from fleet import Fleet

MXS = os.environ["MXS_BIN"]

# seed 0: 127.0.N.K serves behaviour K (0 starttls-ecdsa, 2 cert-expired, 3 cert-self-signed,
# 4 cert-wrong-name); each behaviour serves one certificate chain on all its addresses
ORDER = ["127.0.1.0", "127.0.1.3", "127.0.2.0", "127.0.2.3", "127.0.1.2", "127.0.3.0",
         "127.0.2.2", "127.0.1.4", "127.0.2.4", "127.0.4.0", "127.0.4.3"]
OTHER = {"127.0.2.0": "mail.other.example"}        # same chain as 127.0.1.0, a name it does not cover
SECOND = {"127.0.4.0": "mx.other.example", "127.0.4.3": "mx9.fleet.test"}   # a second MX name


class ChainCache(unittest.TestCase):
    def test_cached_verdicts_exact(self):
        with Fleet() as fl:
            lines = []
            for ip in ORDER:
                lines.append("%s,%s" % (ip, OTHER.get(ip, fl.target(ip).split(",")[1])))
            lines += ["%s,%s" % (ip, name) for ip, name in SECOND.items()]
            p = subprocess.run([MXS, "scan", "--no-default-blocklist", "--ca-file", fl.ca_file,
                                "--port", str(fl.port), "--ehlo-name", "scanner.fleet.test",
                                "--quiet", "--no-transcript", "--concurrency", "1", "--sni", "none"],
                               input="\n".join(lines) + "\n", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = [json.loads(x) for x in p.stdout.splitlines()]
            truth = {t["ip"]: t for ip in ORDER for t in fl.truth(ip)}

        results = {r["ip"]: r for r in out if r["type"] == "result"}
        self.assertEqual(sorted(results), sorted(ORDER))
        for ip in ORDER:
            t, tls = truth[ip], results[ip]["tls"]
            self.assertEqual(results[ip]["outcome"], "success", ip)
            want_match = False if ip in OTHER else t["name_match"]
            self.assertEqual((tls["trusted"], tls["verify_code"], tls["expired"], tls["self_signed"],
                              tls["name_match"]),
                             (t["trusted"], t.get("verify_code", 0), t["expired"], t["self_signed"], want_match),
                             "%s (%s)" % (ip, t["behaviour"]))
        # the same chain, two names: one matches, one does not; both trusted
        a, b = results["127.0.1.0"]["tls"], results["127.0.2.0"]["tls"]
        self.assertEqual(a["chain"][0]["sha256"], b["chain"][0]["sha256"])
        self.assertEqual((a["trusted"], a["name_match"]), (True, True))
        self.assertEqual((b["trusted"], b["name_match"]), (True, False))
        # untrusted twice, with the first error of each chain
        for x, y in (("127.0.1.3", "127.0.2.3"), ("127.0.1.2", "127.0.2.2")):
            self.assertEqual(results[x]["tls"]["trusted"], False)
            self.assertEqual(results[y]["tls"]["trusted"], False)
            self.assertEqual(results[x]["tls"]["verify_code"], results[y]["tls"]["verify_code"])
            self.assertNotEqual(results[x]["tls"]["verify_code"], 0)

        # name lines judged on the stored chain: the chain's verdict, the name's own match
        names = {r["ip"]: r for r in out if r["type"] == "name"}
        self.assertEqual(sorted(names), sorted(SECOND))
        self.assertEqual((names["127.0.4.0"]["trusted"], names["127.0.4.0"]["name_match"]), (True, False))
        self.assertEqual((names["127.0.4.3"]["trusted"], names["127.0.4.3"]["name_match"]), (False, True))

        # four distinct chains verified (ecdsa, self-signed, expired, wrong-name); the other
        # nine handshakes and the two name lines took the cached verdict
        m = re.search(r"chain_verdicts verified=(\d+) cached=(\d+)", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (4, len(ORDER) - 4 + len(SECOND)))
        # the plans keep each address's chain for names that come later, one copy per
        # distinct chain: 11 addresses with TLS, the same four chains
        m = re.search(r"plan_chains plans=(\d+) kept=(\d+) distinct=(\d+) bytes=(\d+)", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        self.assertEqual([int(x) for x in m.groups()[:3]], [len(ORDER), len(ORDER), 4])


if __name__ == "__main__":
    unittest.main(verbosity=2)
