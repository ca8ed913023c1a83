"""Hostile strings survive ingest byte for byte, every record field lands in its typed
column, values this version cannot type are kept in `extra`, and a line that is not a
record is kept in `rejects` without costing its batch."""
import json
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

from pg import PgCluster, private_env
from pgrecords import cert, line, reply, smtp_result, tls

MXS = os.environ["MXS_BIN"]
SRC = os.environ.get("MXS_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))


def esc(data):
    """The mxs escape form (docs/record.md) of bytes, written independently of the C code."""
    out = []
    i = 0
    while i < len(data):
        c = data[i]
        n = 0
        if c < 0x80:
            n = 1
        elif 0xc2 <= c <= 0xdf:
            n = 2
        elif 0xe0 <= c <= 0xef:
            n = 3
        elif 0xf0 <= c <= 0xf4:
            n = 4
        seq = data[i:i + n] if n else b""
        ok = n > 0 and len(seq) == n
        if ok and n > 1:
            try:
                seq.decode("utf-8")
            except UnicodeDecodeError:
                ok = False
        if not ok or (n == 1 and (c < 0x20 or c == 0x7f or c == 0x5c)):
            out.append("\\x%02x" % c)
            i += 1
        else:
            out.append(seq.decode("utf-8"))
            i += n
    return "".join(out)


HOSTILE = [
    b"220 plain ESMTP Postfix",
    b"220 nul\x00byte and tab\tand CR\r",
    b"220 back\\slash \\x41 not an escape",
    b"220 bad utf8 \xff\xfe\xc3 and overlong \xc0\xaf and surrogate \xed\xa0\x80",
    b"220 valid utf8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 and quote \" and {braces,} and \\N",
    b"\x1b[31m escape \x7f del \x01\x02\x03",
    b"",
]


# The newest migration: every file in sql/migrations.
LATEST = len([f for f in os.listdir(os.path.join(os.environ["MXS_SRC"], "sql", "migrations")) if f.endswith(".sql")])


class RoundTrip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-rt-")
        cls.env = private_env(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ingest(self, lines, *args):
        path = os.path.join(self.tmp, "in-%d.jsonl" % len(os.listdir(self.tmp)))
        with open(path, "wb") as f:
            for l in lines:
                f.write(l if isinstance(l, bytes) else l.encode())
                f.write(b"\n")
        r = subprocess.run([MXS, "ingest", "--db", self.pg.url, "--new-scan"] + list(args) + [path],
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return int(self.pg.scalar("SELECT max(id) FROM scans"))

    def test_hostile_strings(self):
        recs = []
        for i, h in enumerate(HOSTILE):
            e = esc(h)
            chain = [cert("hostile%d" % i, subject="CN=" + e, issuer="O=" + e, sans=[e, "x"])]
            rec = smtp_result("192.0.2.%d" % (i + 1), "success", mx="mx%d.example" % i,
                              starttls_code=220, tls_info=tls(chain=chain),
                              extensions=["STARTTLS", e], tamper={"mangled_starttls": e or None})
            rec["greeting"] = reply(220, e, e + e)
            rec["detail"] = "detail\twith tab\\ and newline\n"
            rec["transcript"] = [{"dir": "S", "t": 1, "data": e}]
            recs.append(line(rec))
        scan = self.ingest(recs)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id = %d" % scan),
                         str(len(HOSTILE)))
        for i, h in enumerate(HOSTILE):
            ip = "192.0.2.%d" % (i + 1)
            q = ("SELECT encode(mxs_unesc(greeting_lines[1]), 'hex'), encode(mxs_unesc(greeting_lines[2]), 'hex'),"
                 " encode(mxs_unesc(ehlo_extensions[2]), 'hex'), encode(mxs_unesc(c.subject), 'hex'),"
                 " encode(mxs_unesc(c.issuer), 'hex'), encode(mxs_unesc(c.sans[1]), 'hex'),"
                 " encode(mxs_unesc(transcript->0->>'data'), 'hex'), detail, greeting_lines[1],"
                 " coalesce(encode(mxs_unesc(tamper_mangled_starttls), 'hex'), 'null')"
                 " FROM results r JOIN certificates c ON c.sha256 = r.chain_sha256[1]"
                 " WHERE scan_id = %d AND ip = '%s'" % (scan, ip))
            row = self.pg.query(q)[0]
            want = h.hex()
            self.assertEqual(row[0], want, h)
            self.assertEqual(row[1], (h + h).hex(), h)
            self.assertEqual(row[2], want, h)
            self.assertEqual(row[3], ("CN=" + esc(h)).encode().hex() if False else (b"CN=" + h).hex(), h)
            self.assertEqual(row[4], (b"O=" + h).hex(), h)
            self.assertEqual(row[5], want, h)
            self.assertEqual(row[6], want, h)
            self.assertEqual(row[7], "detail\twith tab\\ and newline\n")
            self.assertEqual(row[8], esc(h))          # the stored form is the record's form
            self.assertEqual(row[9], want if h else "null")

    def test_unescaped_producer(self):
        # a producer that did not escape: raw control bytes in a JSON string (\u0001) are
        # escaped on the way in, so the stored form still decodes to the exact bytes
        rec = smtp_result("198.51.100.1", "no-starttls", offered=False)
        rec["greeting"] = reply(220, "220 raw \u0001 ctl and \\ backslash")
        scan = self.ingest([line(rec)])
        self.assertEqual(self.pg.scalar(
            "SELECT encode(mxs_unesc(greeting_lines[1]), 'hex') FROM results WHERE scan_id = %d" % scan),
            "220 raw \x01 ctl and \\ backslash".encode().hex())

    def test_typed_columns_and_extra(self):
        rec = smtp_result("2001:db8::5", "success", "ESMTP Postfix", mx="mx.example", starttls_code=220,
                          tls_info=tls("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                       "ECDHE-RSA-AES128-GCM-SHA256", 128, True, "ECDHE", "secp256r1", 256,
                                       dane={"tlsa": 2, "dnssec": True, "match": True, "depth": 0}),
                          port=587, start="2026-11-23T19:00:00.123Z")
        rec["future_field"] = {"a": [1, 2]}
        rec["tls"]["future_tls"] = True
        rec["attempts"] = 70000            # does not fit smallint: kept in extra
        rec["phase"] = "brand-new-phase"   # unknown closed-set value: code 0 + extra
        bad = smtp_result("198.51.100.2", "no-starttls", offered=False)
        bad["start"] = "2026-02-30T00:00:00Z"  # impossible date: NULL + extra
        scan = self.ingest([line(rec), line(bad)])
        row = self.pg.query(
            "SELECT ip, port, start, outcome, phase, tls_version, tls_kex_bits, tls_forward_secrecy,"
            " dane_tlsa, dane_match, attempts, t_total, ehlo_extensions, extra"
            " FROM results WHERE scan_id = %d AND port = 587" % scan)[0]
        self.assertEqual(row[:12], ["2001:db8::5", "587", "2026-11-23 19:00:00.123+00", "1", "0", "771",
                                    "256", "t", "2", "t", None, "30"])
        self.assertEqual(row[12], "{PIPELINING,\"SIZE 10240000\",8BITMIME,STARTTLS}")
        self.assertEqual(json.loads(row[13]), {"future_field": {"a": [1, 2]}, "tls.future_tls": True,
                                               "attempts": 70000, "phase": "brand-new-phase"})
        self.assertEqual(json.loads(self.pg.scalar(
            "SELECT extra FROM results WHERE scan_id = %d AND ip = '198.51.100.2'" % scan)),
            {"start": "2026-02-30T00:00:00Z"})

    def test_support_columns(self):
        """The support object (legacy probes) lands in typed support_* columns; a record
        without it leaves them all NULL (not probed)."""
        rec = smtp_result("192.0.2.77", "success", mx="mx.example", starttls_code=220, tls_info=tls())
        rec["support"] = {"sslv3": False, "tls1_0": True, "tls1_1": None, "tls1_2": True,
                          "tls1_3": True, "rc4": True, "3des": False, "export": None, "null": False,
                          "anon": False, "cbc_only": False, "prefer_sslv3": None,
                          "prefer_tls1_0": "TLS_RSA_WITH_RC4_128_SHA", "prefer_tls1_1": None,
                          "prefer_tls1_2": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                          "prefer_tls1_3": "TLS_AES_128_GCM_SHA256", "server_order": True,
                          "dhe_bits": 1024, "groups": ["x25519", "secp256r1"],
                          "fallback_scsv": True, "secure_renegotiation": True,
                          "starttls_injection": False, "connections": 6, "budget": 6,
                          "exhausted": True}
        plain = smtp_result("192.0.2.78", "success", mx="mx.example", starttls_code=220, tls_info=tls())
        scan = self.ingest([line(rec), line(plain)])
        cols = ("support_sslv3, support_tls1_0, support_tls1_1, support_3des, support_rc4,"
                " support_prefer_tls1_0, support_prefer_tls1_3, support_server_order,"
                " support_dhe_bits, support_groups, support_fallback_scsv,"
                " support_secure_renegotiation, support_starttls_injection, support_connections,"
                " support_budget, support_exhausted, support_cbc_only, extra")
        row = self.pg.query("SELECT %s FROM results WHERE scan_id = %d AND ip = '192.0.2.77'"
                            % (cols, scan))[0]
        self.assertEqual(row, ["f", "t", None, "f", "t", "TLS_RSA_WITH_RC4_128_SHA",
                               "TLS_AES_128_GCM_SHA256", "t", "1024", "{x25519,secp256r1}", "t", "t",
                               "f", "6", "6", "t", "f", None])
        row = self.pg.query("SELECT %s FROM results WHERE scan_id = %d AND ip = '192.0.2.78'"
                            % (cols, scan))[0]
        self.assertEqual(row, [None] * 18)

    def test_rejects_never_cost_a_batch(self):
        good = [line(smtp_result("203.0.113.%d" % i, "no-starttls", offered=False)) for i in range(1, 6)]
        lines = [good[0], b"not json at all", good[1], b"{\"type\":\"result\",\"ip\":\"not-an-ip\"}",
                 good[2], b"\xff\xfe invalid utf-8 line", good[3], b"{\"type\":\"target\",\"ip\":\"192.0.2.1\"}",
                 good[4], b"", b"[1,2,3]"]
        scan = self.ingest(lines)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id = %d" % scan), "5")
        rows = self.pg.query("SELECT encode(raw, 'hex') FROM rejects WHERE scan_id = %d ORDER BY 1" % scan)
        want = sorted(x.hex() for x in [b"not json at all", b"{\"type\":\"result\",\"ip\":\"not-an-ip\"}",
                                        b"\xff\xfe invalid utf-8 line",
                                        b"{\"type\":\"target\",\"ip\":\"192.0.2.1\"}", b"[1,2,3]"])
        self.assertEqual([r[0] for r in rows], want)

    def test_bad_target_without_address(self):
        from pgrecords import result
        recs = [line(result(None, "bad-target", input="garbage line %d" % i)) for i in range(3)]
        scan = self.ingest(recs)
        rows = self.pg.query("SELECT family(ip), port, input FROM results WHERE scan_id = %d ORDER BY input" % scan)
        self.assertEqual(rows, [["6", "25", "garbage line %d" % i] for i in range(3)])
        # without an ip and port at all, the key is a hash of the input on port 0
        rec = result(None, "bad-target", input="no port either")
        del rec["port"]
        scan = self.ingest([line(rec), line(rec)])
        self.assertEqual(self.pg.query("SELECT port, input FROM results WHERE scan_id = %d" % scan),
                         [["0", "no port either"]])

    def test_domain_line_columns(self):
        from pgrecords import domain, sts, tlsrpt
        d = domain("Example.org", 42, dnssec=True,
                   mx=[("mx1.example.org", 10, ["192.0.2.1", "2001:db8::1"],
                        [{"usage": 3, "selector": 1, "mtype": 1, "data": "ab" * 32}]),
                       ("mx2.example.org", 20, ["192.0.2.2"])],
                   mta_sts=sts("enforce", True, ["mx1.example.org", "*.example.org"]), tlsrpt=tlsrpt())
        d["mta_sts"]["txt"] = "v=STSv1; id=1\\x00"   # esc form: a NUL byte in the TXT
        d["mx"].append({"host": "bad.example.org", "pref": 30, "addrs": ["not-an-ip"]})
        scan = self.ingest([line(d)])
        row = self.pg.query(
            "SELECT domain, rank, status, dnssec, mta_sts_id, mta_sts_status, mta_sts_dnssec, mta_sts_mode,"
            " mta_sts_max_age, mta_sts_mx, mta_sts_mx_match, encode(mxs_unesc(mta_sts_txt), 'hex'),"
            " tlsrpt_rua, tlsrpt_status, tlsrpt_dnssec, extra IS NOT NULL"
            " FROM domains WHERE scan_id = %d" % scan)[0]
        self.assertEqual(row, ["Example.org", "42", "ok", "t", "20260101", "ok", "f", "enforce", "86400",
                               "{mx1.example.org,*.example.org}", "t", b"v=STSv1; id=1\x00".hex(),
                               "{mailto:tlsrpt@example.org}", "ok", "t", "t"])
        # the unstorable MX address keeps the whole mx list in extra
        self.assertEqual(json.loads(self.pg.scalar("SELECT extra FROM domains WHERE scan_id = %d" % scan))
                         ["mx"][2]["addrs"], ["not-an-ip"])
        rows = self.pg.query("SELECT host, pref, addrs, tlsa_dnssec, jsonb_array_length(tlsa)"
                             " FROM domain_mx WHERE scan_id = %d ORDER BY host" % scan)
        self.assertEqual(rows, [["bad.example.org", "30", "{}", None, None],
                                ["mx1.example.org", "10", "{192.0.2.1,2001:db8::1}", "t", "1"],
                                ["mx2.example.org", "20", "{192.0.2.2}", "f", "0"]])

    def test_db_commands(self):
        scan = self.ingest([line(smtp_result("203.0.113.77", "no-starttls", offered=False))])

        def db(*args):
            r = subprocess.run([MXS, "db", "--db", self.pg.url] + list(args), env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        self.assertIn("schema version %d (0 migrations applied)" % LATEST, db("migrate"))
        self.assertIn("schema version: %d" % LATEST, db("status"))
        self.assertRegex(db("scans"), r"(?m)^%d\s+done\s" % scan)
        self.assertIn("scan %d dropped" % scan, db("drop-scan", str(scan)))
        self.assertIsNone(self.pg.scalar("SELECT to_regclass('results_s%d')" % scan))
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM scans WHERE id = %d" % scan), "0")
        self.assertIn("0 scans dropped", db("retention", "30"))

    def test_migration_digests(self):
        """Each applied migration is recorded with the SHA-256 of its file; a database
        whose record differs (migrated by another build) is refused with a clear error."""
        self.ingest([line(smtp_result("203.0.113.78", "no-starttls", offered=False))])
        mdir = os.path.join(SRC, "sql", "migrations")
        want = []
        for f in sorted(os.listdir(mdir)):
            with open(os.path.join(mdir, f), "rb") as fh:
                want.append([str(int(f[:4])), f, hashlib.sha256(fh.read()).hexdigest()])
        self.assertEqual(self.pg.query("SELECT version, name, sha256 FROM schema_version"
                                       " ORDER BY version"), want)
        self.pg.execute("UPDATE schema_version SET sha256 = NULL WHERE version = 2")
        try:
            r = subprocess.run([MXS, "db", "--db", self.pg.url, "migrate"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("schema version 2 (0002_views.sql) from another text", r.stderr)
            self.assertIn("no digest recorded", r.stderr)
        finally:
            self.pg.execute("UPDATE schema_version SET sha256 = '%s' WHERE version = 2" % want[1][2])

    def test_codes_match_sql(self):
        # the one C table (common/outcome.h, printed by dump_fields) and the SQL lookup
        # tables of a migrated database agree
        out = subprocess.run([os.path.join(os.environ["MXS_BUILD"], "tests", "unit", "dump_fields")],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        for table, kind in (("outcome_names", "outcome"), ("phase_names", "phase")):
            rows = {r[1]: int(r[0]) for r in self.pg.query("SELECT code, name FROM %s" % table)}
            c = {}
            for ln in out.splitlines():
                k, name, code = ln.split(" ")[:3] if ln.count(" ") >= 2 else (None, None, None)
                if k == kind and int(code) >= 0:
                    c[name] = int(code)
            c["unknown"] = 0
            self.assertEqual(rows, c, table)


if __name__ == "__main__":
    unittest.main(verbosity=2)
