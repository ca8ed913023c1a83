#!/usr/bin/env python3
"""The legacy probes (--probes legacy, issue 11) against the fleet: for each behaviour
the exact support object, written by hand from what the server is configured to do
(tests/fleet/tlsmodel.c for the canned ones, behaviour.c for the OpenSSL ones) and the
documented question order (scanner/legacy.c), with the connections each cost. Without
--probes legacy no record carries a support object, and the rest of every record is the
same either way."""
import json
import os
import subprocess
import unittest

from fleet import Fleet
from scanrun import fleet_args, scan

MXS = os.environ["MXS_BIN"]

UNKNOWN = {k: None for k in (
    "sslv3", "tls1_0", "tls1_1", "tls1_2", "tls1_3", "rc4", "3des", "export", "null", "anon",
    "cbc_only", "prefer_sslv3", "prefer_tls1_0", "prefer_tls1_1", "prefer_tls1_2",
    "prefer_tls1_3", "server_order", "dhe_bits", "groups", "fallback_scsv",
    "secure_renegotiation", "starttls_injection")}
NO_WEAK = {"rc4": False, "3des": False, "export": False, "null": False, "anon": False}


def support(**kw):
    d = dict(UNKNOWN, connections=6, budget=6, exhausted=True)
    for k, v in kw.items():
        d[k.replace("des3", "3des")] = v
    return d


# Budget 6 (the default). The canned servers make OpenSSL's own handshake fail, so the
# first probe tells nothing and TLS 1.2 and 1.3 are asked early; the fleet's OpenSSL
# servers answer what they refuse with OpenSSL's alert (protocol_version, handshake_failure)
# as real ones do (before the fleet flushed it, they closed silently and a budget of 6
# learnt nothing of their versions or weak suites).
EXPECT = {
    "legacy-rc4-tls10": support(
        sslv3=True, tls1_0=True, tls1_1=False, tls1_2=False, tls1_3=False, rc4=True, des3=True,
        export=False, null=False, anon=False, cbc_only=True,
        prefer_sslv3="TLS_RSA_WITH_RC4_128_SHA", prefer_tls1_0="TLS_RSA_WITH_RC4_128_SHA",
        secure_renegotiation=False),
    "legacy-ssl3-export": support(
        sslv3=True, tls1_0=False, tls1_1=False, tls1_2=False, tls1_3=False, rc4=True,
        des3=False, export=True, null=False, anon=False, cbc_only=True,
        prefer_sslv3="TLS_RSA_WITH_RC4_128_MD5", dhe_bits=0, secure_renegotiation=False),
    "legacy-modern": support(
        sslv3=False, tls1_0=False, tls1_1=False, tls1_2=True, tls1_3=True, **NO_WEAK,
        cbc_only=False, prefer_tls1_2="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        prefer_tls1_3="TLS_AES_256_GCM_SHA384", dhe_bits=0, secure_renegotiation=True),
    "legacy-intolerant": support(
        sslv3=False, tls1_0=True, tls1_1=False, tls1_2=False, rc4=False, des3=True,
        export=False, null=False, anon=False, prefer_tls1_0="TLS_RSA_WITH_AES_128_CBC_SHA",
        secure_renegotiation=True),
    "legacy-close-unknown": support(sslv3=False, tls1_3=False),
    "legacy-dhe-odd": support(
        sslv3=False, tls1_1=True, tls1_2=True, tls1_3=False, **NO_WEAK,
        prefer_tls1_1="TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        prefer_tls1_2="TLS_DHE_RSA_WITH_AES_128_CBC_SHA", dhe_bits=1024,
        secure_renegotiation=True),
    # OpenSSL servers: TLS 1.2-1.3, ECDHE+AESGCM; LOW, WEAK, SSL3 and DHE get alerts, then
    # the injection check and the SCSV (TLS 1.2 with it: inappropriate_fallback)
    "starttls-injection": support(
        sslv3=False, tls1_0=False, tls1_1=False, tls1_3=True, **NO_WEAK, cbc_only=False,
        prefer_tls1_3="TLS_AES_256_GCM_SHA384", dhe_bits=0, fallback_scsv=True,
        starttls_injection=True),
    "starttls-ecdsa": support(
        sslv3=False, tls1_0=False, tls1_1=False, tls1_3=True, **NO_WEAK, cbc_only=False,
        prefer_tls1_3="TLS_AES_256_GCM_SHA384", dhe_bits=0, fallback_scsv=True,
        starttls_injection=False),
    # TLS 1.0-1.1 at security level 0, ECDHE-ECDSA-AES128-SHA only
    "tls10-only": support(
        sslv3=False, tls1_0=True, tls1_1=True, tls1_2=False, tls1_3=False, **NO_WEAK,
        cbc_only=True, prefer_tls1_0="TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        prefer_tls1_1="TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", dhe_bits=0,
        secure_renegotiation=True, starttls_injection=False),
    # TLS 1.2 only, DHE-RSA-AES128-GCM-SHA256 with a 1024-bit group (the first probe's
    # AEAD suite: not CBC-only)
    "dhe-1024": support(
        sslv3=False, tls1_0=False, tls1_1=False, tls1_2=True, tls1_3=False, **NO_WEAK,
        cbc_only=False, dhe_bits=1024, secure_renegotiation=True, starttls_injection=False),
    # garbage after the 220 to STARTTLS: two answers that are not TLS end the probes
    "handshake-garbage": support(connections=2),
}

# Over implicit TLS (imaps, pop3s) the connection of the injection check goes to TLS 1.2
# (the server's own order: ECDHE+AESGCM with an ECDSA leaf starts with AES-256).
ACCESS = {
    "starttls-injection": dict(
        EXPECT["starttls-injection"], tls1_2=True,
        prefer_tls1_2="TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", secure_renegotiation=True,
        starttls_injection=None),
}

# With room for every question (budget 20) the canned modern server answers all.
MODERN_FULL = dict(
    UNKNOWN, sslv3=False, tls1_0=False, tls1_1=False, tls1_2=True, tls1_3=True, **NO_WEAK,
    cbc_only=False, prefer_tls1_2="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    prefer_tls1_3="TLS_AES_256_GCM_SHA384", server_order=True, dhe_bits=0,
    groups=["x25519", "secp256r1", "secp384r1"], fallback_scsv=True, secure_renegotiation=True,
    connections=12, budget=20, exhausted=False)

VOLATILE = ("start", "timing_ms", "transcript", "detail")


class LegacyFleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)

    def targets(self, names):
        return "".join(self.fleet.target(self.fleet.address(n)) + "\n" for n in names)

    def test_support_per_behaviour(self):
        names = list(EXPECT) + ["no-starttls"]
        recs, err, _ = scan(fleet_args(self.fleet, "--probes", "legacy"), self.targets(names))
        by_ip = {r["ip"]: r for r in recs}
        total = 0
        for name, want in EXPECT.items():
            rec = by_ip[self.fleet.address(name)]
            with self.subTest(behaviour=name):
                self.assertEqual(rec.get("support"), want)
                self.assertLessEqual(rec["support"]["connections"], 6)
            total += rec["support"]["connections"]
        # no TLS, nothing to ask: no support object at all
        self.assertNotIn("support", by_ip[self.fleet.address("no-starttls")])
        self.assertIn(", %d legacy probe connections" % total, err)
        # the rest of each record is what a scan without the probes writes
        plain, _, _ = scan(fleet_args(self.fleet), self.targets(names))
        for p in plain:
            self.assertNotIn("support", p)
            r = dict(by_ip[p["ip"]])
            r.pop("support", None)
            for k in VOLATILE:
                r.pop(k, None)
                p.pop(k, None)
            self.assertEqual(r, p, p["ip"])

    def test_budget(self):
        recs, _, _ = scan(fleet_args(self.fleet, "--probes", "legacy", "--legacy-budget", "20"),
                          self.targets(["legacy-modern"]))
        self.assertEqual(recs[0]["support"], MODERN_FULL)
        recs, _, _ = scan(fleet_args(self.fleet, "--probes", "legacy", "--legacy-budget", "1"),
                          self.targets(["legacy-modern"]))
        self.assertEqual(recs[0]["support"], dict(UNKNOWN, tls1_0=False, tls1_1=False,
                                                   connections=1, budget=1, exhausted=True))

    def test_access_protocols(self):
        # IMAP and POP3 (STARTTLS / STLS, then the crafted hello) and implicit TLS (the hello
        # at once) answer as SMTP does: every later probe speaks the first probe's protocol.
        # The injection check (STARTTLS/STLS + NOOP in one segment) is made where the
        # protocol has STARTTLS, with SMTP's answers; implicit TLS has nothing to inject
        # into (its budget goes to the next questions: ACCESS).
        for proto in ("imap", "pop3", "pop3s"):
            names = ["legacy-modern", "legacy-rc4-tls10", "starttls-injection"]
            if proto != "pop3s":
                names.append("starttls-ecdsa")
            with self.subTest(proto=proto), Fleet(proto=proto) as fl:
                t = "".join(fl.target(fl.address(n)) + "\n" for n in names)
                recs, _, _ = scan(fleet_args(fl, "--proto", proto, "--probes", "legacy"), t)
                by_ip = {r["ip"]: r for r in recs}
                for name in names:
                    want = EXPECT[name] if proto != "pop3s" else \
                        ACCESS.get(name, dict(EXPECT[name], starttls_injection=None))
                    self.assertEqual(by_ip[fl.address(name)]["proto"], proto)
                    self.assertEqual(by_ip[fl.address(name)].get("support"), want, (proto, name))

    def test_bad_options(self):
        for args in (["--probes", "everything"], ["--legacy-budget", "0"]):
            p = subprocess.run([MXS, "scan", *args], input=b"", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 2, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
