"""
The scanner against every fleet behaviour (seed 0: 127.0.0.K shows behaviour K). Each
record must match the fleet's ground truth field for field, and the cases no truth table
states are asserted here exactly.
"""
import os
import sys
import unittest

from fleet import Fleet
from scanrun import compare_truth, fleet_args, scan, targets_for

SCAN_OPTS = ["--concurrency", "200", "--per-net", "1000", "--greeting-timeout", "5s",
             "--timeout", "4s", "--handshake-timeout", "4s", "--deadline", "8s",
             "--retries", "1", "--retry-delay", "300ms"]


class ScanFleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(os.environ["MXS_BUILD"], seed=0, delay_ms=1500)
        cls.fleet.__enter__()
        cls.truth = {t["ip"]: t for t in cls.fleet.truth("127.0.0.0/26")}
        ips = [ip for ip, t in cls.truth.items()]
        cls.records, cls.stderr, cls.rc = scan(fleet_args(cls.fleet, *SCAN_OPTS), targets_for(ips))
        cls.by_ip = {r["ip"]: r for r in cls.records}

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)

    def rec(self, behaviour):
        ip = next(ip for ip, t in self.truth.items() if t["behaviour"] == behaviour)
        return self.by_ip[ip]

    def test_one_record_per_target(self):
        self.assertEqual(len(self.records), len(self.truth))
        self.assertEqual(set(self.by_ip), set(self.truth))

    def test_matches_ground_truth(self):
        diffs = []
        for ip, t in sorted(self.truth.items()):
            diffs += compare_truth(self.by_ip[ip], t)
        self.assertEqual(diffs, [], "\n".join(diffs))

    def test_normal_ecdsa(self):
        r = self.rec("starttls-ecdsa")
        self.assertEqual(r["outcome"], "success")
        self.assertEqual(r["phase"], "done")
        self.assertEqual(r["ehlo_name"], "scanner.mxsurvey.test")
        self.assertIn("STARTTLS", r["ehlo"]["extensions"])
        self.assertNotIn("STARTTLS", r["ehlo_tls"]["extensions"])
        t = r["tls"]
        self.assertEqual(t["version"], "TLSv1.3")
        self.assertTrue(t["forward_secrecy"])
        self.assertEqual(t["kex_group"], "X25519")
        self.assertEqual(t["sig_alg"], "ecdsa_secp256r1_sha256")
        self.assertTrue(t["trusted"])
        self.assertEqual(t["verify_code"], 0)
        self.assertEqual(t["chain"][0]["key_type"], "EC")
        self.assertEqual(t["chain"][0]["key_bits"], 256)
        self.assertIn("*.fleet.test", t["chain"][0]["sans"])
        self.assertEqual(len(t["chain"][0]["sha256"]), 64)
        for k in ("connect", "greeting", "ehlo", "starttls", "handshake", "ehlo_tls", "total"):
            self.assertIsInstance(r["timing_ms"][k], int, k)
        dirs = [e["dir"] for e in r["transcript"]]
        self.assertEqual(dirs[0], "S")
        self.assertEqual(r["transcript"][-1]["data"][:3], "221")
        self.assertTrue(r["transcript"][-1].get("tls"))

    def test_rsa_tls12(self):
        t = self.rec("starttls-rsa")["tls"]
        self.assertEqual(t["version"], "TLSv1.2")
        self.assertEqual(t["cipher"], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        self.assertEqual(t["cipher_openssl"], "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertEqual(t["kex"], "ECDHE")
        self.assertTrue(t["sig_alg"].startswith("rsa_"), t["sig_alg"])
        self.assertEqual(t["chain"][0]["key_type"], "RSA")
        self.assertEqual(t["chain"][0]["key_bits"], 2048)

    def test_certificate_verdicts(self):
        exp = self.rec("cert-expired")["tls"]
        self.assertTrue(exp["expired"])
        self.assertFalse(exp["trusted"])
        self.assertEqual(exp["verify_code"], 10)  # X509_V_ERR_CERT_HAS_EXPIRED
        ss = self.rec("cert-self-signed")["tls"]
        self.assertTrue(ss["self_signed"])
        self.assertFalse(ss["trusted"])
        self.assertEqual(ss["verify_code"], 18)  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        wn = self.rec("cert-wrong-name")["tls"]
        self.assertTrue(wn["trusted"])
        self.assertFalse(wn["name_match"])
        self.assertEqual(wn["matched_names"], [])

    def test_legacy_versions_complete(self):
        self.assertIn(self.rec("tls10-only")["tls"]["version"], ("TLSv1", "TLSv1.1"))
        self.assertEqual(self.rec("tls12-only")["tls"]["version"], "TLSv1.2")
        dhe = self.rec("dhe-1024")["tls"]
        self.assertEqual((dhe["kex"], dhe["kex_bits"]), ("DHE", 1024))
        st = self.rec("static-rsa")["tls"]
        self.assertEqual((st["kex"], st["forward_secrecy"]), ("RSA", False))

    def test_refusals(self):
        r = self.rec("starttls-454")
        self.assertEqual((r["outcome"], r["starttls"]["code"]), ("starttls-refused", 454))
        self.assertIn("454 4.7.0", r["detail"])
        r = self.rec("greeting-421")
        self.assertEqual((r["outcome"], r["attempts"]), ("greeting-rejected", 2))
        self.assertIn("Too many connections", r["detail"])
        r = self.rec("421-then-ok")
        self.assertEqual((r["outcome"], r["attempts"]), ("success", 2))
        r = self.rec("greeting-554")
        self.assertEqual((r["outcome"], r["greeting"]["code"]), ("greeting-rejected", 554))
        r = self.rec("ehlo-reject")
        self.assertEqual((r["outcome"], r["ehlo"]["verb"], r["ehlo"]["code"]), ("ehlo-rejected", "HELO", 250))
        self.assertIn("502", r["detail"])

    def test_postscreen_style_greeting_waited_for(self):
        r = self.rec("multiline-greeting")
        self.assertEqual(r["outcome"], "success")
        self.assertGreater(len(r["greeting"]["lines"]), 1)
        self.assertGreaterEqual(r["timing_ms"]["greeting"], 1000)

    def test_hostile_input_classified(self):
        self.assertEqual(self.rec("tarpit")["outcome"], "greeting-timeout")
        self.assertEqual(self.rec("slow-greeting")["outcome"], "success")
        r = self.rec("long-line")
        self.assertEqual(r["outcome"], "protocol-error")
        self.assertIn("without a line ending", r["detail"])
        self.assertEqual(self.rec("endless-multiline")["outcome"], "protocol-error")
        self.assertEqual(self.rec("garbage")["outcome"], "protocol-error")
        self.assertEqual(self.rec("reset-after-ehlo")["outcome"], "peer-closed")
        self.assertEqual(self.rec("close-after-greeting")["outcome"], "peer-closed")
        self.assertEqual(self.rec("handshake-garbage")["outcome"], "handshake-error")
        r = self.rec("unsolicited-data")
        self.assertEqual(r["outcome"], "protocol-error")
        self.assertIn("unsolicited", r["detail"])
        r = self.rec("hostile-greeting")
        self.assertEqual(r["outcome"], "success")
        self.assertEqual(r["greeting"]["lines"][0],
                         "220 mx\\x00nul\\x09tab \\x5cback \\xff\\xfe bad-utf8 ESMTP")

    def test_tampering_signs(self):
        r = self.rec("mangled-starttls")
        self.assertEqual((r["outcome"], r["tamper"]["mangled_starttls"]), ("no-starttls", "XXXXXXXA"))
        r = self.rec("starttls-echo")
        self.assertTrue(r["tamper"]["starttls_echo"])
        r = self.rec("pipelined-injection")
        self.assertEqual((r["outcome"], r["tamper"]["plaintext_after_starttls"]), ("success", 14))

    def test_trickle_hits_a_deadline(self):
        r = self.rec("trickle")
        self.assertIn(r["outcome"], ("greeting-timeout", "deadline"))
        self.assertEqual(r["phase"], "greeting")


class ScanEdges(unittest.TestCase):
    def test_refused_bad_and_blocked(self):
        with Fleet(os.environ["MXS_BUILD"], seed=0) as fleet:
            closed = str(fleet.port + 1 if fleet.port < 65535 else fleet.port - 1)
            blocklist = os.path.join(fleet.certdir, "block.txt")
            with open(blocklist, "w") as f:
                f.write("# opt-out\n127.0.0.3/32\n")
            lines = ("127.0.0.0,mx-0-0-0.fleet.test\n"
                     "not-an-address\n"
                     "127.0.0.3\n"
                     "127.0.0.0\n"
                     "# comment\n\n"
                     '{"type":"domain","domain":"fleet.test","mx":[]}\n'
                     f'{{"type":"target","ip":"127.0.0.5","port":{closed}}}\n')
            recs, _, rc = scan(fleet_args(fleet, "--blocklist", blocklist), lines, check=False)
        self.assertEqual(rc, 0)
        types = [r["type"] for r in recs]
        self.assertEqual(types.count("domain"), 1)
        res = [r for r in recs if r["type"] == "result"]
        outcomes = sorted(r["outcome"] for r in res)
        self.assertEqual(outcomes, ["bad-target", "blocked", "connection-refused", "duplicate", "success"])
        bad = next(r for r in res if r["outcome"] == "bad-target")
        self.assertEqual(bad["input"], "not-an-address")
        blocked = next(r for r in res if r["outcome"] == "blocked")
        self.assertIn("127.0.0.3/32", blocked["detail"])

    def test_ipv6(self):
        with Fleet(os.environ["MXS_BUILD"], seed=0) as fleet:
            recs, err, rc = scan(fleet_args(fleet), "::1,mx-v6.fleet.test\n")
            self.assertEqual((rc, recs[0]["ip"], recs[0]["outcome"]), (0, "::1", "success"), err)
            self.assertTrue(recs[0]["tls"]["name_match"])
            # without --no-default-blocklist, ::1 is a reserved address: never dialled
            recs, err, rc = scan(["--port", str(fleet.port), "--quiet"], "::1\n")
            self.assertEqual((recs[0]["outcome"], recs[0]["detail"]), ("blocked", "reserved ::1/128"))

    def test_usage_errors_exit_2(self):
        _, err, rc = scan(["--concurrency", "zero"], "", check=False)
        self.assertEqual(rc, 2)
        self.assertIn("--concurrency", err)
        _, err, rc = scan(["--shard", "3/2"], "", check=False)
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
