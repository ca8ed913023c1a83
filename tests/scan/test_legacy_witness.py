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
  4. the scanner's legacy probe (`mxsurvey scan --probes legacy --legacy-budget 64`, a
     budget large enough for every question: the record must say it was not exhausted)
     gives, for every key of its `support` object that has a truth (documented, else the
     witnesses' unanimous answer), that answer; a null is a wrong answer. Keys without a
     truth (no witness answers and nothing documented, or the witnesses disagree) are
     listed as not compared; the versions and suite classes are always compared;
  5. the records, ingested, give the per-address view and the address-level rates of
     docs/views.md "Legacy TLS accepted" that the truth implies.

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
    # a version the server refuses has no preferred suite
    for v in witness.VERSIONS:
        if truth.get(v, (None,))[0] is False:
            truth["prefer_" + v] = (None, "implied: " + v + " refused")
    return truth


def norm_groups(groups):
    return sorted({GROUP_NAMES.get(g.lower(), g.lower()) for g in groups})


class LegacyWitness(unittest.TestCase):
    maxDiff = None
    scanned = {}  # server name -> (the scanner's record, the truth it matched)

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
            truth = truth_for(spec, report)
            self.compare_scanner(name, sup, truth, report)
            LegacyWitness.scanned[name] = (recs[0], truth)

    def compare_scanner(self, name, sup, truth, report):
        # budget 64 covers every question: an unanswered one is the scanner's failure
        self.assertIs(sup.get("exhausted"), False, f"{name}: budget exhausted: {sup}")
        must = set(witness.VERSIONS) | set(witness.CLASSES) | {"cbc_only"}
        self.assertEqual(must - set(truth), set(), f"{name}: no truth to compare for")
        wrong = []
        for k, (want, source) in sorted(truth.items()):
            if k not in sup:
                wrong.append(f"{k}: missing from the record (truth {want!r}, {source})")
                continue
            got = sup[k]
            if k == "groups" and got is not None:
                got = norm_groups(got)
            if got != want:
                wrong.append(f"{k}: scanner {got!r}, truth {want!r} ({source}; "
                             f"witnesses {report[k]['values']})")
        by_source = {}
        for k, (_, source) in truth.items():
            if report[k]["values"]:
                source = "witnesses"
            elif source == "documented":
                source = "documented, no witness answers"
            else:
                source = "version refused"
            by_source.setdefault(source, []).append(k)
        for source, keys in sorted(by_source.items()):
            print(f"  compared ({source}): {' '.join(sorted(keys))}")
        print("  not compared (witnesses split or silent, prefer_* without server order, "
              f"fallback_scsv with one version): "
              f"{' '.join(k for k in witness.KEYS if k not in truth) or '-'}")
        self.assertEqual(wrong, [], f"{name}: the scanner's support object disagrees")

    def test_postfix_legacy_pref(self):
        self.check_server("postfix-legacy-pref")

    def test_postfix_legacy_nopref(self):
        self.check_server("postfix-legacy-nopref")

    def test_postfix_tls10_only(self):
        self.check_server("postfix-tls10-only")

    def test_exim_gnutls_legacy(self):
        self.check_server("exim-gnutls-legacy")

    def test_zz_views(self):
        """The scanner's records of the servers above, ingested: the per-address support
        view (docs/views.md) says what the witnesses said."""
        if not self.scanned:
            self.skipTest("no server was scanned with --probes legacy")
        from pg import PgCluster, private_env
        with tempfile.TemporaryDirectory() as tmp, PgCluster() as pg:
            path = os.path.join(tmp, "legacy.jsonl")
            with open(path, "w") as f:
                for rec, _ in self.scanned.values():
                    f.write(json.dumps(rec) + "\n")
            env = private_env(tmp)
            subprocess.run([MXS_BIN, "ingest", "-q", "--db", pg.url, "--label", "legacy", path],
                           env=env, check=True)
            rows = {r[0]: r[1:] for r in pg.query(
                "SELECT host(ip), worst_version, worst_class, dhe_bits FROM v_addr_support")}
            for name, (rec, truth) in self.scanned.items():
                t = {k: v for k, (v, _) in truth.items()}
                oldest = next(v for v in witness.VERSIONS if t.get(v))
                want_version = {"sslv3": "SSLv3", "tls1_0": "TLSv1.0", "tls1_1": "TLSv1.1",
                                "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}[oldest]
                want_class = ("export/NULL/anon" if t["export"] or t["null"] or t["anon"]
                              else "RC4" if t["rc4"] else "3DES" if t["3des"]
                              else "CBC only" if t["cbc_only"] else "none of these")
                want_dh = str(t["dhe_bits"]) if t.get("dhe_bits") else None
                self.assertEqual(rows[rec["ip"]], [want_version, want_class, want_dh], name)
            # the address-level rates (hits / denominator, docs/views.md) the truth implies
            truths = [{k: v for k, (v, _) in truth.items()} for _, truth in self.scanned.values()]

            def rate(asked, hit):
                return [sum(1 for t in truths if asked(t) and hit(t)),
                        sum(1 for t in truths if asked(t))]
            want = {
                "accepts_sslv3": rate(lambda t: "sslv3" in t, lambda t: t["sslv3"]),
                "accepts_tls1_0": rate(lambda t: "tls1_0" in t, lambda t: t["tls1_0"]),
                "accepts_tls1_0_only": rate(
                    lambda t: all(v in t for v in ("tls1_1", "tls1_2", "tls1_3"))
                    and any(t.get(v) for v in witness.VERSIONS),
                    lambda t: not (t["tls1_1"] or t["tls1_2"] or t["tls1_3"])),
                "accepts_rc4": rate(lambda t: "rc4" in t, lambda t: t["rc4"]),
                "accepts_3des": rate(lambda t: "3des" in t, lambda t: t["3des"]),
                "accepts_weak": rate(lambda t: all(c in t for c in ("export", "null", "anon")),
                                     lambda t: t["export"] or t["null"] or t["anon"]),
                "accepts_dh_small": rate(lambda t: True,
                                         lambda t: (t.get("dhe_bits") or 4096) < 2048),
                "accepts_injection": rate(lambda t: "starttls_injection" in t,
                                           lambda t: t["starttls_injection"]),
            }
            got = {r[0]: [int(r[1]), int(r[2])] for r in pg.query(
                "SELECT metric, n, n_denom FROM v_legacy_support WHERE level = 'address'")}
            print(f"\n  address-level rates [hits, denominator]: {json.dumps(got, sort_keys=True)}")
            self.assertEqual(got, want)


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
