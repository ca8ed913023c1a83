"""
The submission, submissions, imap, imaps, pop3 and pop3s modules against the fleet
speaking each protocol (mxsurvey-fleet serve --proto; docs/fleet.md): every behaviour,
including the IMAP/POP3-only ones no real server shows on demand (capability floods, a
10 MiB line, a stalled STARTTLS), must give exactly one record that matches the fleet's
ground truth field for field (outcome, phase, greeting, capabilities, STARTTLS answer,
tampering signs, TLS verdict, authentication exposure); the cases the truth does not
spell out (details, transcripts) are asserted here.
"""
import os
import sys
import threading
import unittest

from fleet import Fleet, behaviours
from scanrun import compare_truth, fleet_args, get, scan, targets_for

# Six scans at once on a shared machine: timeouts generous enough for a loaded box (the
# greeting timeout stays above the fleet's 1.5 s delay, the deadline ends the trickle).
SCAN_OPTS = ["--concurrency", "200", "--per-net", "1000", "--greeting-timeout", "5s",
             "--timeout", "10s", "--handshake-timeout", "15s", "--deadline", "25s",
             "--retries", "1", "--retry-delay", "300ms"]
PROTOS = ("imap", "pop3", "imaps", "pop3s", "submission", "submissions")
CIDR = "127.0.0.0/26"   # every behaviour of the protocol once at least (test_behaviours_served)

# Truth keys beyond scanrun.TRUTH_FIELDS, and where the record keeps them.
MORE_FIELDS = {
    "proto": "proto",
    "phase": "phase",
    "cipher_openssl": "tls.cipher_openssl",
    "ehlo_tls_extensions": "ehlo_tls.extensions",
    "auth_cleartext": "auth.cleartext",
    "auth_login": "auth.login",
    "auth_mechanisms": "auth.mechanisms",
    "auth_mechanisms_tls": "auth.mechanisms_tls",
    "auth_login_tls": "auth.login_tls",
}


def compare_more(rec, truth):
    diffs = []
    for key, path in MORE_FIELDS.items():
        if key in truth and truth[key] != get(rec, path):
            diffs.append(f"{truth['ip']} ({truth['behaviour']}): {key} want {truth[key]!r} "
                         f"got {get(rec, path)!r}")
    return diffs


class ScanFleetAccess(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleets, cls.truth, cls.records, cls.by_ip = {}, {}, {}, {}
        for p in PROTOS:
            fl = Fleet(os.environ["MXS_BUILD"], seed=0, delay_ms=1500, proto=p)
            fl.__enter__()
            cls.fleets[p] = fl
            cls.truth[p] = {t["ip"]: t for t in fl.truth(CIDR)}

        def run(p):
            cls.records[p] = scan(fleet_args(cls.fleets[p], "--proto", p, *SCAN_OPTS),
                                  targets_for(cls.truth[p]))[0]
        threads = [threading.Thread(target=run, args=(p,)) for p in PROTOS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in PROTOS:
            cls.by_ip[p] = {r["ip"]: r for r in cls.records.get(p, [])}

    @classmethod
    def tearDownClass(cls):
        for fl in cls.fleets.values():
            fl.__exit__(None, None, None)

    def rec(self, proto, behaviour):
        ip = next(ip for ip, t in sorted(self.truth[proto].items(), key=lambda kv: int(kv[0].split(".")[3]))
                  if t["behaviour"] == behaviour)
        return self.by_ip[proto][ip]

    def test_one_record_per_target(self):
        for p in PROTOS:
            self.assertEqual(len(self.records[p]), len(self.truth[p]), p)
            self.assertEqual(set(self.by_ip[p]), set(self.truth[p]), p)
            self.assertEqual({r["proto"] for r in self.records[p]}, {p})

    def test_matches_ground_truth(self):
        diffs = []
        for p in PROTOS:
            for ip, t in sorted(self.truth[p].items()):
                rec = self.by_ip[p].get(ip)
                if rec is None:
                    diffs.append(f"{p} {ip}: no record")
                    continue
                diffs += [f"{p} {d}" for d in compare_truth(rec, t) + compare_more(rec, t)]
        self.assertEqual(diffs, [], "\n".join(diffs))

    def test_behaviours_served(self):
        """IMAP and POP3 have the SMTP family's behaviours and three of their own (the
        fleet's own listing: the family's size is not this test's business)."""
        smtp = [n for _, n, _ in behaviours(os.environ["MXS_BUILD"], "smtp")]
        for p in ("imap", "imaps", "pop3", "pop3s"):
            names = [n for _, n, _ in self.fleets[p].behaviours()]
            self.assertEqual(names, smtp + ["capability-flood", "huge-line", "starttls-stall"])
            self.assertLessEqual(len(names), 64, "CIDR must cover every behaviour")
        for p in ("submission", "submissions"):
            self.assertEqual([n for _, n, _ in self.fleets[p].behaviours()], smtp)
        for p in PROTOS:   # every behaviour was scanned at least once
            self.assertEqual({t["behaviour"] for t in self.truth[p].values()},
                             {n for _, n, _ in self.fleets[p].behaviours()}, p)

    def test_capability_flood(self):
        r = self.rec("imap", "capability-flood")
        self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "ehlo"))
        self.assertEqual(r["detail"], 'too many response lines in phase capability: '
                                      '"* CAPABILITY IMAP4rev1 LITERAL+ flood"')
        r = self.rec("pop3", "capability-flood")
        self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "ehlo"))
        self.assertEqual(r["detail"], 'too many response lines in phase capa: "X-FLOOD capability line"')
        for p in ("imaps", "pop3s"):   # inside TLS: the handshake is what the probe came for
            r = self.rec(p, "capability-flood")
            self.assertEqual(r["outcome"], "success")
            self.assertIn("after the handshake: protocol-error: too many response lines", r["detail"])

    def test_huge_line(self):
        for p, state in (("imap", "capability"), ("pop3", "capa")):
            r = self.rec(p, "huge-line")
            self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "ehlo"))
            self.assertEqual(r["detail"], "response line too long: more than 8192 bytes without a "
                                          f"line ending in phase {state}")
            self.assertIsNone(r["ehlo"])

    def test_starttls_stall_and_refusal(self):
        for p in ("imap", "pop3"):
            r = self.rec(p, "starttls-stall")
            self.assertEqual((r["outcome"], r["phase"]), ("starttls-timeout", "starttls"))
            self.assertIsNone(r["tls"])
        r = self.rec("imap", "starttls-454")
        self.assertEqual(r["outcome"], "starttls-refused")
        self.assertEqual(r["starttls"]["lines"], ["A2 NO TLS not available due to local problem"])
        r = self.rec("pop3", "starttls-454")
        self.assertEqual(r["starttls"]["lines"], ["-ERR TLS not available due to local problem"])

    def test_no_starttls_exposes_cleartext_login(self):
        for p in ("imap", "pop3"):
            r = self.rec(p, "no-starttls")
            self.assertEqual((r["outcome"], r["phase"]), ("no-starttls", "ehlo"))
            self.assertTrue(r["auth"]["cleartext"])
            self.assertEqual(r["auth"]["mechanisms"], ["PLAIN"])
        ok = self.rec("imap", "starttls-ecdsa")
        self.assertFalse(ok["auth"]["cleartext"])
        self.assertIn("LOGINDISABLED", ok["ehlo"]["extensions"])

    def test_injection_after_ok(self):
        """Plaintext planted behind the go-ahead is counted, kept out of TLS, never obeyed."""
        r = self.rec("imap", "pipelined-injection")
        self.assertEqual((r["outcome"], r["phase"]), ("success", "done"))
        self.assertEqual(r["tamper"]["plaintext_after_starttls"],
                         len("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"))
        # the capabilities inside TLS are the server's, not the injected ones
        self.assertNotIn("injected", r["ehlo_tls"]["extensions"])
        self.assertEqual(r["ehlo_tls"]["verb"], "CAPABILITY")
        r = self.rec("pop3", "pipelined-injection")
        self.assertEqual(r["tamper"]["plaintext_after_starttls"], len("+OK injected\r\n"))

    def test_echo_and_mangling(self):
        for p, word, mangled in (("imap", "STARTTLS", "XXXXXXXA"), ("pop3", "STLS", "XXXX")):
            r = self.rec(p, "starttls-echo")
            self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "starttls"))
            self.assertTrue(r["tamper"]["starttls_echo"])
            self.assertIn(f'"{word}"', r["detail"])
            r = self.rec(p, "mangled-starttls")
            self.assertEqual((r["outcome"], r["tamper"]["mangled_starttls"]), ("no-starttls", mangled))
            self.assertEqual(r["detail"], "STARTTLS advertisement mangled")

    def test_garbage_and_hostile_greetings(self):
        for p in ("imap", "pop3"):
            r = self.rec(p, "garbage")
            self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "greeting"))
            self.assertIn(r"\x00\x01\x02garbage\xfe\xff\x1b[2J\x7f", r["detail"])
            r = self.rec(p, "long-line")
            self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "greeting"))
            r = self.rec(p, "endless-multiline")
            self.assertEqual((r["outcome"], r["phase"]), ("protocol-error", "greeting"))
            self.assertIn("unsolicited data after the greeting response", r["detail"])
        r = self.rec("imap", "hostile-greeting")
        self.assertEqual(r["outcome"], "success")
        self.assertEqual(r["greeting"]["lines"],
                         ["* OK mx\\x00nul\\x09tab \\x5cback \\xff\\xfe bad-utf8 IMAP4rev1"])

    def test_stall_and_reset(self):
        for p in ("imap", "pop3"):
            self.assertEqual(self.rec(p, "tarpit")["outcome"], "greeting-timeout")
            r = self.rec(p, "reset-after-ehlo")
            self.assertEqual((r["outcome"], r["phase"]), ("peer-closed", "ehlo"))
            r = self.rec(p, "trickle")
            self.assertEqual((r["outcome"], r["phase"]), ("deadline", "greeting"))

    def test_refusals(self):
        r = self.rec("imap", "greeting-421")
        self.assertEqual((r["outcome"], r["greeting"]["lines"]),
                         ("greeting-rejected", ["* BYE Too many connections, try again later"]))
        r = self.rec("pop3", "greeting-554")
        self.assertEqual((r["outcome"], r["greeting"]["lines"]),
                         ("greeting-rejected", ["-ERR No POP3 service here"]))
        r = self.rec("imap", "ehlo-reject")
        self.assertEqual((r["outcome"], r["ehlo"]["lines"]), ("ehlo-rejected", ["A1 BAD Unknown command"]))
        r = self.rec("pop3", "ehlo-reject")   # CAPA is optional in POP3: STLS all the same
        self.assertEqual((r["outcome"], r["phase"]), ("success", "done"))
        self.assertEqual(r["ehlo"]["lines"], ["-ERR Unknown command"])

    def test_implicit_tls(self):
        for p in ("imaps", "pop3s", "submissions"):
            r = self.rec(p, "starttls-ecdsa")
            self.assertEqual((r["outcome"], r["phase"]), ("success", "done"))
            self.assertIsNone(r["ehlo"])
            self.assertIsNone(r["starttls"])
            self.assertTrue(r["transcript"][0]["tls"])
            r = self.rec(p, "handshake-garbage")
            self.assertEqual((r["outcome"], r["phase"]), ("handshake-error", "handshake"))
        # a 421 greeting inside implicit TLS is retried (--retries 1): the record keeps the
        # last attempt's handshake (the earlier one's description leaked: ASan build)
        r = self.rec("submissions", "greeting-421")
        self.assertEqual((r["outcome"], r["attempts"]), ("success", 2))
        self.assertEqual(r["detail"], "after the handshake: greeting-rejected: "
                                      "421 4.7.0 Too many connections, try again later")
        self.assertEqual(r["tls"]["version"], "TLSv1.3")
        r = self.rec("imaps", "starttls-ecdsa")
        self.assertEqual(r["auth"], {"mechanisms": [], "login": False, "cleartext": False,
                                     "mechanisms_tls": ["PLAIN"], "login_tls": True})


if __name__ == "__main__":
    unittest.main(verbosity=2)
