"""
Legacy TLS support on real servers, told by independent witnesses (issue 11).

Each server of tests/lib/legacyservers.py (Postfix on OpenSSL 3 at security level 0 with
TLS 1.0, anonymous suites, a 1024-bit DH group, restricted curves, server order on and
off; Postfix TLS 1.0 only; Exim on GnuTLS with RC4 and 3DES) is started on loopback and
examined by sslscan and nmap's ssl-enum-ciphers (and testssl.sh with MXS_TESTSSL=1: it
takes minutes per server). The test checks:

  1. every witness ran cleanly (no refused connections, no protocol errors);
  2. the witnesses agree with each other, and where they do not the majority (or, on a
     tie, the documented truth of legacyservers.SERVERS) decides, said in the output;
  3. the documented truth matches what the witnesses found;
  4. when the scanner has the legacy probe (`mxsurvey scan --probes legacy`), every
     answer of its `support` object matches the truth (documented, else the witnesses'
     unanimous answer).

The table each run prints is the evidence for docs and reports. Exit 77 (skipped) where
neither Postfix nor Exim nor the witnesses can run.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import legacyservers
import witness
from scanrun import MXS_BIN, scan

# The scanner may name groups its own way: map to the witnesses' names.
GROUP_NAMES = {"x25519": "x25519", "x448": "x448", "p-256": "secp256r1",
               "p-384": "secp384r1", "p-521": "secp521r1", "secp256r1": "secp256r1",
               "secp384r1": "secp384r1", "secp521r1": "secp521r1", "prime256v1": "secp256r1"}


def scanner_has_legacy():
    p = subprocess.run([MXS_BIN, "scan", "--help"], capture_output=True, text=True)
    text = p.stdout + p.stderr
    return "--probes" in text and "legacy" in text


def truth_for(spec, report):
    """{key: (value, source)}: the documented value where there is one, else the
    witnesses' unanimous answer."""
    truth = {}
    for k, r in report.items():
        if k in spec["expected"]:
            truth[k] = (spec["expected"][k], "documented")
        elif r["values"] and r["agree"]:
            truth[k] = (r["majority"], "witnesses")
    # with one version there is nothing to fall back from: no answer to compare
    accepted = [v for v in witness.VERSIONS if truth.get(v, (None,))[0]]
    if len(accepted) <= 1:
        truth.pop("fallback_scsv", None)
    # the suite a server prefers means nothing when it follows the client's order
    order = truth.get("server_order", (None, None))[0]
    if order is not True:
        for v in witness.VERSIONS:
            truth.pop("prefer_" + v, None)
    return truth


def norm_groups(groups):
    return sorted({GROUP_NAMES.get(g.lower(), g.lower()) for g in groups})


class LegacyWitness(unittest.TestCase):
    maxDiff = None

    def run_witnesses(self, srv, workdir):
        runs = [witness.run_sslscan(srv.addr, srv.port, workdir),
                witness.run_nmap(srv.addr, srv.port)]
        if os.environ.get("MXS_TESTSSL") == "1" and witness.available()["testssl"] is None:
            runs.append(witness.run_testssl(srv.addr, srv.port, workdir))
        return runs

    def check_server(self, name):
        reason = legacyservers.unavailable(name)
        if reason:
            self.skipTest(reason)
        spec = legacyservers.SERVERS[name]
        with tempfile.TemporaryDirectory() as work, legacyservers.start(name, work) as srv:
            runs = self.run_witnesses(srv, work)
            for w in runs:
                self.assertEqual(w.errors, [], f"{name}: {w.name} did not run cleanly")
            forms = {w.name: w.form for w in runs}
            report = witness.compare(forms)
            print(f"\n== {name} ({spec['kind']}, {srv.addr}:{srv.port})")
            for k, r in report.items():
                mark = "" if r["agree"] else "   <- witnesses disagree"
                print(f"  {k:22} {json.dumps(r['values'], sort_keys=True)}{mark}")
            # 2 + 3: the documented truth against the witnesses
            for k, want in spec["expected"].items():
                r = report[k]
                if not r["values"]:
                    continue  # no witness answers this question
                if r["agree"]:
                    self.assertEqual(r["majority"], want, f"{name}: {k}: the witnesses "
                                     f"say {r['majority']!r}, the configuration {want!r}")
                elif r["majority"] is not None:
                    print(f"  {k}: witnesses disagree, the majority says {r['majority']!r}")
                    self.assertEqual(r["majority"], want, f"{name}: {k}: {r['values']}")
                else:
                    print(f"  {k}: witnesses tie, the documented truth is {want!r}")
                    self.assertIn(want, r["values"].values(),
                                  f"{name}: {k}: no witness says {want!r}: {r['values']}")
            # 4: the scanner's legacy probe against the truth
            if not scanner_has_legacy():
                print("  (mxsurvey has no --probes legacy yet: scanner not compared)")
                return
            recs, err, rc = scan(["--port", str(srv.port), "--no-default-blocklist",
                                  "--ca-file", srv.ca_file, "--ehlo-name",
                                  "scanner.mxsurvey.test", "--quiet", "--probes", "legacy",
                                  "--legacy-budget", "64"],
                                 f"{srv.addr},{legacyservers.name_of(srv)},example.test\n")
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(recs), 1, recs)
            sup = recs[0].get("support")
            self.assertIsNotNone(sup, f"{name}: no support object: {recs[0]}")
            print(f"  mxsurvey support: {json.dumps(sup, sort_keys=True)}")
            self.compare_scanner(name, sup, truth_for(spec, report), report)

    def compare_scanner(self, name, sup, truth, report):
        wrong = []
        for k, (want, source) in sorted(truth.items()):
            if k not in sup:
                wrong.append(f"{k}: missing from the record (truth {want!r}, {source})")
                continue
            got = sup[k]
            if k == "groups":
                if got is None:
                    continue  # the scanner did not ask (budget): not an answer
                got = norm_groups(got)
            if got is None and sup.get("exhausted"):
                continue  # left unanswered within the budget, and the record says so
            if got != want:
                wrong.append(f"{k}: scanner {got!r}, truth {want!r} ({source}; "
                             f"witnesses {report[k]['values']})")
        self.assertEqual(wrong, [], f"{name}: the scanner's support object disagrees")

    def test_postfix_legacy_pref(self):
        self.check_server("postfix-legacy-pref")

    def test_postfix_legacy_nopref(self):
        self.check_server("postfix-legacy-nopref")

    def test_postfix_tls10_only(self):
        self.check_server("postfix-tls10-only")

    def test_exim_gnutls_legacy(self):
        self.check_server("exim-gnutls-legacy")


if __name__ == "__main__":
    missing = [r for r in witness.available().values() if r][:2]
    if witness.available()["sslscan"] or witness.available()["nmap"]:
        print(f"SKIP: {'; '.join(missing)}")
        sys.exit(77)
    if all(legacyservers.unavailable(n) for n in legacyservers.SERVERS):
        print(f"SKIP: {legacyservers.unavailable('postfix-legacy-pref')}; "
              f"{legacyservers.unavailable('exim-gnutls-legacy')}")
        sys.exit(77)
    unittest.main(verbosity=2)
