"""
mxsurvey headers: the Received-field parser against hand-written samples of each MTA's
documented format (tests/targets/headers/NN-*.eml|.mbox, expected output in
NN-*.expected.jsonl, options in NN-*.args), a Maildir, and real messages: one Postfix
relays a message to a second Postfix on loopback over TLS and in clear, and the header
the second one wrote is read back from its mailbox file; likewise Postfix relays to a
private Exim (tests/lib/exim.py), whose own Received field is read back; and two senders'
Postfix (one over TLS, one in clear) deliver through a third into an mbox and a Maildir,
read back for the per-sending-domain summary and handed to a survey with --scan. The Postfix part
is skipped where Postfix cannot run (not root, not installed), the Exim part where Exim
cannot be unpacked or run.
"""
import glob
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

import exim
import postfix

MXS = os.environ["MXS_BIN"]
SRC = os.environ["MXS_SRC"]
SAMPLES = os.path.join(SRC, "tests", "targets", "headers")


def headers(args, stdin=None):
    p = subprocess.run([MXS, "headers"] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Samples(unittest.TestCase):
    def test_every_sample_gives_its_expected_hops(self):
        files = sorted(glob.glob(os.path.join(SAMPLES, "*.eml")) +
                       glob.glob(os.path.join(SAMPLES, "*.mbox")))
        self.assertGreaterEqual(len(files), 14)
        for path in files:
            base = os.path.splitext(path)[0]
            args = []
            if os.path.exists(base + ".args"):
                with open(base + ".args") as f:
                    args = f.read().split()
            with open(path, "rb") as f:
                data = f.read()
            with open(base + ".expected.jsonl") as f:
                want = jsonl(f.read())
            with self.subTest(sample=os.path.basename(path)):
                rc, out, err = headers(["--format", "json"] + args, stdin=data)
                self.assertEqual(rc, 0, err)
                got = jsonl(out)
                self.assertEqual(len(got), len(want))
                for g, w in zip(got, want):
                    self.assertEqual(g, w)

    def test_rules_seen(self):
        """The samples exercise every rule of received.h."""
        rules = set()
        for path in glob.glob(os.path.join(SAMPLES, "*.expected.jsonl")):
            with open(path) as f:
                rules |= {h["rule"] for h in jsonl(f.read()) if h["type"] == "hop"}
        self.assertEqual(rules, {"none", "with", "postfix", "exim", "exim-legacy", "sendmail",
                                 "microsoft", "gmail", "opensmtpd", "conflict"})

    def test_text_says_claims(self):
        rc, out, _ = headers(["--trusted-by", "example.org",
                              os.path.join(SAMPLES, "11-forged.eml")])
        self.assertEqual(rc, 0)
        self.assertIn("hop 3 [claim]", out)
        self.assertIn("came in at hop 2: tls no (added by your server)", out)

    def test_maildir(self):
        d = tempfile.mkdtemp(prefix="mxs-maildir-")
        try:
            for sub in ("cur", "new", "tmp"):
                os.mkdir(os.path.join(d, sub))
            shutil.copy(os.path.join(SAMPLES, "01-postfix-tls.eml"),
                        os.path.join(d, "cur", "1700000000.1.host:2,S"))
            shutil.copy(os.path.join(SAMPLES, "05-sendmail.eml"),
                        os.path.join(d, "new", "1700000001.2.host"))
            shutil.copy(os.path.join(SAMPLES, "02-postfix-plain.eml"),
                        os.path.join(d, "tmp", "not-delivered-yet"))
            rc, out, err = headers(["--format", "json", d])
            self.assertEqual(rc, 0, err)
            lines = jsonl(out)
            msgs = [m for m in lines if m["type"] == "message"]
            self.assertEqual([(m["sender_domain"], m["tls"]) for m in msgs],
                             [("example.com", "yes"), ("example.edu", "yes")])
            doms = {x["domain"]: (x["messages"], x["tls_yes"], x["tls_no"])
                    for x in lines if x["type"] == "domain"}
            self.assertEqual(doms, {"example.com": (1, 1, 0), "example.edu": (1, 1, 0)})
        finally:
            shutil.rmtree(d)

    def test_scan_hands_the_senders_to_a_survey(self):
        """--scan: the mailbox's sending domains become a survey stored in the database
        (no DNS server answers here, so they are stored as unresolved)."""
        import pg
        with pg.PgCluster() as db, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
            quiet.bind(("127.0.0.1", 0))  # a DNS server that never answers
            dns = "127.0.0.1:%d" % quiet.getsockname()[1]
            rc, out, err = headers(["--scan", "--db", db.url, os.path.join(SAMPLES, "14-mailbox.mbox"),
                                    "--", "--dns-server", dns, "--dns-timeout", "100ms",
                                    "--dns-retries", "0", "--report", "none", "--quiet",
                                    "--ehlo-name", "headers.mxsurvey.test", "--label", "from-mail"])
            self.assertEqual(rc, 0, err)
            self.assertIn("example.net", out)
            self.assertEqual(db.scalar("SELECT string_agg(d.domain, ',' ORDER BY d.domain)"
                                       " FROM domains d JOIN scans s ON s.id = d.scan_id"
                                       " WHERE s.label = 'from-mail'"), "example.com,example.net")

    def test_sender_domain_is_the_address(self):
        """The sending domain is the angle-addr's: a '<' or '@' in a quoted display name or a
        comment (a forged-looking "PayPal <service@paypal.example>") is not the address; a
        From: without a dotted domain falls back to Return-Path, else to no domain."""
        cases = [
            ('"PayPal <service@paypal.example>" <x@evil.example>', None, "evil.example"),
            ('"a@b.example" <x@real.example>', None, "real.example"),
            ("x@real.example (via @other.example)", None, "real.example"),
            ("(<y@other.example>) Name <x@Real.Example.>", None, "real.example"),
            ("root@localhost", "<bounce@lists.example>", "lists.example"),
            ("root@localhost", None, None),
            ('"unclosed <x@a.example>', None, None),
        ]
        for frm, rp, want in cases:
            msg = ("Return-Path: %s\r\n" % rp if rp else "") + "From: %s\r\n\r\nbody\r\n" % frm
            with self.subTest(frm=frm):
                rc, out, err = headers(["--format", "json"], stdin=msg.encode())
                self.assertEqual(rc, 0, err)
                self.assertEqual(jsonl(out)[-1]["sender_domain"], want, out)

    def test_unreadable_input(self):
        rc, _, err = headers(["/nonexistent/message"])
        self.assertEqual(rc, 4)
        rc, _, err = headers(["--format", "xml"])
        self.assertEqual(rc, 2)


def delivered(box):
    try:
        with open(box, "rb") as f:
            return b"\nhello" in f.read()
    except FileNotFoundError:
        return False


def relay_cf(b, addr, tls, **extra):
    """main.cf of a Postfix on addr relaying dest.test to b, over TLS (encrypt) or in clear."""
    return {
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        "relay_domains": "dest.test",
        "relay_transport": f"smtp:[{b.addr}]:{b.port}",
        "smtp_dns_support_level": "disabled",
        "smtp_bind_address": addr,
        "smtp_tls_security_level": "encrypt" if tls else "none",
        "smtp_tls_CAfile": b.ca_file,
        **extra,
    }


def send_and_wait(test, a, b, box, subject):
    """Alice sends one message through a to bob@dest.test; b's mailbox file box once it has it."""
    msg = ("From: Alice <alice@sender.test>\r\nTo: bob@dest.test\r\nSubject: " + subject +
           "\r\n\r\nhello\r\n")
    with smtplib.SMTP(a.addr, a.port, local_hostname="client.sender.test", timeout=30) as s:
        s.sendmail("alice@sender.test", ["bob@dest.test"], msg)
    deadline = time.monotonic() + 60
    while not delivered(box):
        if time.monotonic() > deadline:
            test.fail("no delivery:\n" + a.log()[-3000:] + b.log()[-3000:])
        time.sleep(0.1)
    with open(box, "rb") as f:
        return f.read()


def relay_hops(test, mbox, trusted):
    """headers' JSON lines for a relayed message, and its two hops (receiver's, sender's)."""
    rc, out, err = headers(["--format", "json", "--trusted-by", trusted], stdin=mbox)
    test.assertEqual(rc, 0, err)
    lines = jsonl(out)
    hops = [h for h in lines if h["type"] == "hop"]
    test.assertEqual(len(hops), 2, out)
    return lines, hops[0], hops[1]


def check_entry(test, a, lines, first, mbox, trusted, tls):
    """Hop 2, written by the sending Postfix a about our plain SMTP submission, is a claim;
    the message came in at hop 1, added by the trusted server; the text form says so too."""
    test.assertEqual(first["by"], f"{a.myhostname} (Postfix)")
    test.assertTrue(first["from"].startswith("client.sender.test "), first["from"])
    test.assertEqual((first["with"], first["tls"], first["trust"]), ("ESMTP", "no", "claim"))
    msg = [m for m in lines if m["type"] == "message"][0]
    test.assertEqual((msg["sender_domain"], msg["entry_hop"], msg["entry_trust"], msg["tls"]),
                     ("sender.test", 1, "trusted", "yes" if tls else "no"))
    rc, text, _ = headers(["--trusted-by", trusted], stdin=mbox)
    test.assertIn("came in at hop 1: tls %s (added by your server)" % ("yes" if tls else "no"),
                  text)


ESTABLISHED = re.compile(r"TLS connection established from (\S+): (TLSv[\d.]+) with cipher (\S+)")


@unittest.skipIf(postfix.available() is not None, str(postfix.available()))
class PostfixToPostfix(unittest.TestCase):
    """A relays to B; B delivers into an mbox file; headers reads B's Received field."""

    def relay(self, a_addr, b_addr, tls):
        box_dir = tempfile.mkdtemp(prefix="mxs-mailbox-")
        os.chmod(box_dir, 0o755)
        pw = __import__("pwd").getpwnam("postfix")
        os.chown(box_dir, pw.pw_uid, pw.pw_gid)
        try:
            receiver = {
                "mynetworks": "127.0.0.0/8",
                "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
                "smtpd_recipient_restrictions": "permit_mynetworks, reject",
                "virtual_mailbox_domains": "dest.test",
                "virtual_mailbox_base": box_dir,
                "virtual_mailbox_maps": "static:bob.mbox",
                "virtual_uid_maps": f"static:{pw.pw_uid}",
                "virtual_gid_maps": f"static:{pw.pw_gid}",
                "virtual_transport": "virtual",
                "smtpd_tls_received_header": "yes",
            }
            with postfix.Postfix(b_addr, main_cf=receiver, delivery=True) as b:
                sender = relay_cf(b, a_addr, tls, smtp_tls_loglevel="1")
                with postfix.Postfix(a_addr, main_cf=sender, delivery=True) as a:
                    mbox = send_and_wait(self, a, b, os.path.join(box_dir, "bob.mbox"),
                                         "relayed " + ("over TLS" if tls else "in clear"))
                    established = None
                    if tls:
                        established = b.wait_log(ESTABLISHED)
                    return a, b, mbox, established
        finally:
            shutil.rmtree(box_dir, ignore_errors=True)

    def check(self, tls, a_addr, b_addr):
        a, b, mbox, est = self.relay(a_addr, b_addr, tls)
        self.assertTrue(mbox.startswith(b"From "), mbox[:200])
        lines, top, first = relay_hops(self, mbox, b.myhostname)
        # hop 1: written by B, the trusted server, about the connection from A
        self.assertEqual(top["by"], f"{b.myhostname} (Postfix)")
        self.assertTrue(top["from"].startswith(a.myhostname + " "), top["from"])
        self.assertIn(f"[{a.addr}]", top["from"])
        self.assertEqual(top["trust"], "trusted")
        self.assertEqual(top["for"], "<bob@dest.test>")
        self.assertEqual(top["flags"], [])
        self.assertIsNotNone(top["date"])
        if tls:
            self.assertEqual(top["with"], "ESMTPS")
            self.assertEqual(top["tls"], "yes")
            self.assertEqual(top["rule"], "postfix")
            self.assertEqual((top["version"], top["cipher"]), (est.group(2), est.group(3)))
        else:
            self.assertEqual(top["with"], "ESMTP")
            self.assertEqual(top["tls"], "no")
            self.assertEqual(top["rule"], "with")
            self.assertIsNone(top["version"])
        check_entry(self, a, lines, first, mbox, b.myhostname, tls)

    def test_over_tls(self):
        self.check(True, "127.0.202.1", "127.0.202.2")

    def test_in_clear(self):
        self.check(False, "127.0.202.3", "127.0.202.4")


@unittest.skipIf(postfix.available() is not None, str(postfix.available()))
class PostfixMailbox(unittest.TestCase):
    """Two senders' Postfix relay to one receiving Postfix, one over TLS, one in clear; it
    delivers each message into an mbox and into a Maildir. headers reads both mailboxes
    (the messages, the per-sending-domain summary of the hop each came in at), and --scan
    surveys the sending domains, whose MX hosts are the two senders' Postfix: one offers
    STARTTLS, the other none."""

    def test_mbox_maildir_summary_scan(self):
        box_dir = tempfile.mkdtemp(prefix="mxs-mailboxes-")
        os.chmod(box_dir, 0o755)
        pw = __import__("pwd").getpwnam("postfix")
        os.chown(box_dir, pw.pw_uid, pw.pw_gid)
        receiver = {
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "virtual_mailbox_domains": "dest.test",
            "virtual_mailbox_base": box_dir,
            # a path ending in "/" is a Maildir
            "virtual_mailbox_maps": "inline:{bob@dest.test=bob.mbox, carol@dest.test=carol/}",
            "virtual_uid_maps": f"static:{pw.pw_uid}",
            "virtual_gid_maps": f"static:{pw.pw_gid}",
            "virtual_transport": "virtual",
            "smtpd_tls_received_header": "yes",
        }

        def sender(b, addr, tls):
            # as an MX host: STARTTLS offered by the TLS sender only
            return relay_cf(b, addr, tls, smtpd_tls_security_level="may" if tls else "none")

        mails = [("tls.example", "alice@tls.example", "Alice <alice@tls.example>"),
                 ("tls.example", "ann@tls.example", "ann@TLS.Example"),
                 ("clear.example", "dan@clear.example", '"Dan, Clear" <dan@Clear.Example>')]
        try:
            with postfix.Postfix("127.0.202.9", main_cf=receiver, delivery=True) as b:
                with postfix.Postfix("127.0.202.10", main_cf=sender(b, "127.0.202.10", True),
                                     delivery=True) as a1:
                    # the two MX hosts listen on the same port: a survey has one --port
                    with postfix.Postfix("127.0.202.11", port=a1.port,
                                         main_cf=sender(b, "127.0.202.11", False),
                                         delivery=True) as a2:
                        for n, (dom, env_from, hdr_from) in enumerate(mails):
                            a = a1 if dom == "tls.example" else a2
                            msg = (f"From: {hdr_from}\r\nTo: bob@dest.test, carol@dest.test\r\n"
                                   f"Subject: mail {n}\r\n\r\nhello {n}\r\n")
                            with smtplib.SMTP(a.addr, a.port, local_hostname="client." + dom,
                                              timeout=30) as s:
                                s.sendmail(env_from, ["bob@dest.test", "carol@dest.test"], msg)
                        mbox = os.path.join(box_dir, "bob.mbox")
                        maildir = os.path.join(box_dir, "carol")

                        def all_in():
                            try:
                                with open(mbox, "rb") as f:
                                    n_mbox = f.read().count(b"\nhello ")
                                n_dir = len(os.listdir(os.path.join(maildir, "new")))
                            except FileNotFoundError:
                                return False
                            return n_mbox == len(mails) and n_dir == len(mails)
                        deadline = time.monotonic() + 90
                        while not all_in():
                            if time.monotonic() > deadline:
                                self.fail("not all delivered:\n" + a1.log()[-2000:] +
                                          a2.log()[-2000:] + b.log()[-3000:])
                            time.sleep(0.1)
                        self.check_mailbox(b, mbox, "mbox")
                        self.check_mailbox(b, maildir, "Maildir")
                        self.check_scan(a1, a2, mbox)
        finally:
            shutil.rmtree(box_dir, ignore_errors=True)

    def check_mailbox(self, b, path, kind):
        want_msgs = sorted([("clear.example", "no"), ("tls.example", "yes"),
                            ("tls.example", "yes")])
        want_doms = {"clear.example": (1, 0, 1, 0), "tls.example": (2, 2, 0, 0)}
        for trusted in ([], ["--trusted-by", b.myhostname]):
            rc, out, err = headers(["--format", "json"] + trusted + [path])
            self.assertEqual(rc, 0, err)
            lines = jsonl(out)
            msgs = [m for m in lines if m["type"] == "message"]
            self.assertEqual(sorted((m["sender_domain"], m["tls"]) for m in msgs), want_msgs,
                             (kind, trusted, out))
            # the last external hop: the one the receiving Postfix added (hop 1)
            self.assertEqual({(m["entry_hop"], m["entry_trust"]) for m in msgs},
                             {(1, "trusted" if trusted else "unchecked")}, (kind, out))
            self.assertTrue(all(m["source"].startswith(path) for m in msgs), (kind, out))
            doms = {d["domain"]: (d["messages"], d["tls_yes"], d["tls_no"], d["tls_unknown"])
                    for d in lines if d["type"] == "domain"}
            self.assertEqual(doms, want_doms, (kind, trusted))
        rc, text, err = headers(["--trusted-by", b.myhostname, path])
        self.assertEqual(rc, 0, err)
        self.assertRegex(text, r"(?m)^clear\.example +1 +0 +1 +0$")
        self.assertRegex(text, r"(?m)^tls\.example +2 +2 +0 +0$")
        self.assertIn("3 messages, 6 hops", text)

    def check_scan(self, a1, a2, mbox):
        import dns
        import pg
        zones = {}
        for dom, a in (("tls.example", a1), ("clear.example", a2)):
            z = dns.Zone(dom)
            z.add("@", "MX", "10 mx")
            z.add("mx", "A", a.addr)
            zones[dom] = z.text()
        nsd = dns.Nsd(zones)
        try:
            with pg.PgCluster() as db:
                rc, out, err = headers(["--scan", "--db", db.url, "--format", "json", mbox, "--",
                                        "--dns-server", f"{nsd.addr}:{nsd.port}",
                                        "--dns-timeout", "2s", "--no-policy",
                                        "--no-default-blocklist", "--port", str(a1.port),
                                        "--ca-file", a1.ca_file, "--report", "none", "--quiet",
                                        "--ehlo-name", "headers.mxsurvey.test",
                                        "--label", "mailbox-senders"])
                self.assertEqual(rc, 0, err)
                self.assertEqual(len([d for d in jsonl(out) if d["type"] == "domain"]), 2, out)
                scan = "(SELECT id FROM scans WHERE label = 'mailbox-senders')"
                self.assertEqual(db.query(f"SELECT domain FROM domains WHERE scan_id = {scan}"
                                          " ORDER BY domain"), [["clear.example"], ["tls.example"]])
                got = db.query("SELECT host(r.ip), r.mx, o.name FROM results r JOIN outcome_names o"
                               f" ON o.code = r.outcome WHERE r.scan_id = {scan} ORDER BY 1")
                self.assertEqual(got, [[a1.addr, "mx.tls.example", "success"],
                                       [a2.addr, "mx.clear.example", "no-starttls"]], err)
        finally:
            nsd.stop()


EXIM_TLS = re.compile(r"<= alice@sender\.test H=\S+ \[([\d.]+)\].* P=esmtps X=(TLS[\d.]+):([^: ]+):")


@unittest.skipIf(postfix.available() is not None, str(postfix.available()))
@unittest.skipIf(exim.available() is not None, str(exim.available()))
class PostfixToExim(unittest.TestCase):
    """Postfix relays to Exim; Exim appends to an mbox file; headers reads Exim's own
    Received field (Exim's format, written by Exim 4.9x itself) and Postfix's below it."""

    def relay(self, a_addr, b_addr, tls):
        box_dir = tempfile.mkdtemp(prefix="mxs-eximbox-")
        try:
            os.chmod(box_dir, 0o755)
            if os.geteuid() == 0:
                pw = __import__("pwd").getpwnam("nobody")
                os.chown(box_dir, pw.pw_uid, pw.pw_gid)
            with exim.Exim(b_addr, hostname="mx.exim.test", deliver_to=box_dir) as b:
                sender = relay_cf(b, a_addr, tls, smtp_tls_loglevel="1")
                with postfix.Postfix(a_addr, main_cf=sender, delivery=True) as a:
                    mbox = send_and_wait(self, a, b, os.path.join(box_dir, "inbox.mbox"),
                                         "to Exim " + ("over TLS" if tls else "in clear"))
                    received = b.wait_log(EXIM_TLS) if tls else None
                    return a, b, mbox, received
        finally:
            shutil.rmtree(box_dir, ignore_errors=True)

    def check(self, tls, a_addr, b_addr):
        a, b, mbox, rec = self.relay(a_addr, b_addr, tls)
        self.assertTrue(mbox.startswith(b"From "), mbox[:200])
        self.assertIn(b"(Exim 4.", mbox)   # Exim's own header, not one written by hand
        lines, top, first = relay_hops(self, mbox, b.hostname)
        # hop 1: written by Exim, the trusted server, about the connection from Postfix
        self.assertEqual(top["by"], b.hostname)
        self.assertIn(f"[{a.addr}]", top["from"])
        self.assertIn(a.myhostname, top["from"])
        self.assertEqual(top["trust"], "trusted")
        self.assertEqual(top["for"], "bob@dest.test")
        self.assertRegex(top["id"], r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{4,6}-[0-9A-Za-z]{2,4}$")
        self.assertIsNotNone(top["date"])
        self.assertEqual(top["flags"], [])
        if tls:
            self.assertEqual(rec.group(1), a.addr)
            self.assertEqual((top["with"], top["tls"], top["rule"]), ("esmtps", "yes", "exim"))
            # Exim logs GnuTLS's names (TLS1.3, ..._AES_256_GCM); the header the IANA-style one
            self.assertEqual(top["version"], rec.group(2).replace("TLS", "TLSv"))
            self.assertIn(rec.group(3).rsplit("__", 1)[-1], top["cipher"])
        else:
            self.assertEqual((top["with"], top["tls"], top["rule"]), ("esmtp", "no", "with"))
            self.assertIsNone(top["version"])
        check_entry(self, a, lines, first, mbox, b.hostname, tls)

    def test_over_tls(self):
        self.check(True, "127.0.202.5", "127.0.202.6")

    def test_in_clear(self):
        self.check(False, "127.0.202.7", "127.0.202.8")


if __name__ == "__main__":
    unittest.main()
