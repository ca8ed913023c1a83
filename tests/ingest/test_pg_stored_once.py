"""Values stored once (migration 0017, ingest/intern.h): reply lines after the first, EHLO
extension lists, STARTTLS replies, the name groups and the chain are rows of mxs_lists and
mxs_chains shared by all scans, and results (a view over result_rows) shows every column
as before. Two scans of the same records share every dictionary row; concurrent ingests
neither duplicate a value nor fail on it; a stored value under the same id that differs
sends the line to rejects; ingest's ids are the SQL functions'; and the migration converts
rows written under schema 16 in place, every column of results identical."""
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

from pg import MigratedClusterCase, PgCluster, private_env
from pgrecords import cert, reply, result, smtp_result, tls, write_jsonl

MXS = os.environ["MXS_BIN"]
SRC = os.environ.get("MXS_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))

# columns of results read from the dictionaries
SHOWN = ("ip, port, greeting_lines, ehlo_lines, ehlo_tls_lines, ehlo_extensions, starttls_lines, "
         "chain_sha256, tls_cipher, tls_kex_group, tls_verify_reason, ehlo_name, profile, proto, "
         "ehlo_verb, auth_mechanisms")
# the dictionary column of result_rows (the row's references, one list stored once since
# migration 0018) and the split first lines
STORED = "reply_id, greeting_first, ehlo_first, ehlo_tls_first"


def records(n=60):
    out = []
    for i in range(n):
        ip = "192.0.2.%d" % (i + 1)
        mx = "mx%d.example" % (i % 7)
        if i % 4 == 0:
            out.append(result(ip, "connection-refused", mx=mx))
        elif i % 4 == 1:
            out.append(smtp_result(ip, "no-starttls", "ESMTP Exim \\x01 {a,b} \"q\"", mx=mx,
                                   offered=False))
        else:
            info = tls(leaf="leaf%d" % (i % 5), cipher="TLS_AES_128_GCM_SHA256" if i % 3 else
                       "TLS_AES_256_GCM_SHA384", chain=[cert("leaf%d" % (i % 5)),
                                                        cert("Test CA", pos=1)])
            if i % 8 == 2:
                info["kex_group"] = None       # a group with a NULL member
            rec = smtp_result(ip, "success", "ESMTP Postfix", mx=mx, starttls_code=220,
                              tls_info=info)
            if i % 8 == 6:                     # after TLS another first line, both escaped
                rec["ehlo"]["lines"][0] = "250-mx\\x5c.example"
                rec["ehlo_tls"]["lines"][0] = "250-other\\x5c.example"
            out.append(rec)
    return out


class StoredOnce(MigratedClusterCase):
    tmp_prefix = "mxs-once-"

    def dict_counts(self):
        return [int(self.pg.scalar("SELECT count(*) FROM %s" % t))
                for t in ("mxs_texts", "mxs_lists", "mxs_chains")]

    def same_rows(self, a, b):
        """The two scans' rows, through results and as stored, differ only in scan_id."""
        for rel, cols in (("results", SHOWN), ("result_rows", "ip, port, " + STORED)):
            q = ("SELECT count(*) FROM ((SELECT {c} FROM {r} WHERE scan_id = {a}) EXCEPT ALL "
                 "(SELECT {c} FROM {r} WHERE scan_id = {b})) x").format(c=cols, r=rel, a=a, b=b)
            self.assertEqual(self.pg.scalar(q), "0", rel)

    def test_two_scans_share_values(self):
        path = os.path.join(self.tmp, "share.jsonl")
        write_jsonl(path, records())
        self.assertEqual(self.ingest(path, "--label", "share-1").returncode, 0)
        first = self.dict_counts()
        self.assertGreater(first[1], 5)
        self.assertGreater(first[2], 3)
        r = self.ingest(path, "--label", "share-2")
        self.assertEqual(r.returncode, 0, r.stderr)
        # the second scan of the same records adds no value
        self.assertEqual(self.dict_counts(), first)
        self.same_rows(self.scan("share-1"), self.scan("share-2"))
        # ingest's ids are the SQL functions' (the migration's and a hand-written row's)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_lists WHERE id <> mxs_list_id(l)"
                                           " AND l <> '{\"something else\"}'"), "0")
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_chains WHERE id <> mxs_chain_id(c)"), "0")
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_refs WHERE id <> mxs_refs_id(refs)"), "0")
        self.assertGreater(int(self.pg.scalar("SELECT count(*) FROM mxs_refs")), 3)
        s = self.scan("share-1")
        # as stored: the first line in the row, after TLS a repeated one as a lone backslash
        rows = {r[0]: r[1:] for r in self.pg.query(
            "SELECT host(ip), greeting_first, ehlo_first, ehlo_tls_first, rf.refs[10] IS NULL, "
            "rf.refs[9] IS NULL FROM result_rows r LEFT JOIN mxs_refs rf ON rf.id = r.reply_id"
            " WHERE scan_id = %s" % s)}
        self.assertEqual(rows["192.0.2.3"][:3], ["220 mx2.example ESMTP Postfix", "250-mx2.example", "\\"])
        self.assertEqual(rows["192.0.2.7"][1:3], ["250-mx\\x5c.example", "250-other\\x5c.example"])
        self.assertEqual(rows["192.0.2.1"][:5], [None, None, None, "t", "f"])
        got = self.pg.query("SELECT ehlo_tls_lines[1], tls_kex_group, chain_sha256[2] = sha256('Test CA'::bytea) "
                            "FROM results WHERE scan_id = %s AND host(ip) IN ('192.0.2.3', '192.0.2.7') "
                            "ORDER BY ip" % s)
        self.assertEqual(got, [["250-mx2.example", None, "t"], ["250-other\\x5c.example", "X25519", "t"]])
        # one text of each distinct value
        self.assertEqual(self.pg.scalar("SELECT count(*) - count(DISTINCT l) FROM mxs_lists"), "0")
        # the rollup's ANALYZE reaches the table behind the view (the planner's row counts)
        r = subprocess.run([MXS, "db", "--db", self.pg.url, "rollup", s], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"cannot analyze", r.stderr)
        self.assertGreater(int(self.pg.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'result_rows'")), 0)

    def test_concurrent_ingests(self):
        path = os.path.join(self.tmp, "conc.jsonl")
        recs = records(3000)
        for i, r in enumerate(recs):   # addresses of their own, values shared
            r["ip"] = "198.18.%d.%d" % (i // 250, i % 250 + 1)
        write_jsonl(path, recs)
        procs = [subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--label", "conc-%d" % k,
                                   "--batch-rows", "200", path], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=180)
            self.assertEqual(p.returncode, 0, err)
        scans = [self.scan("conc-%d" % k) for k in range(4)]
        for s in scans:
            self.assertEqual(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id = %s" % s), "3000")
            self.assertEqual(self.pg.scalar("SELECT count(*) FROM rejects WHERE scan_id = %s" % s), "0")
        for s in scans[1:]:
            self.same_rows(scans[0], s)
        self.assertEqual(self.pg.scalar("SELECT count(*) - count(DISTINCT l) FROM mxs_lists"), "0")
        self.assertEqual(self.pg.scalar("SELECT count(*) - count(DISTINCT c) FROM mxs_chains"), "0")

    def test_collision_goes_to_rejects(self):
        # another value stored under the id of this STARTTLS reply: a 63-bit collision
        self.pg.execute("INSERT INTO mxs_lists VALUES (mxs_list_id('{\"220 9.9.9 collide\"}'), "
                        "'{\"something else\"}')")
        path = os.path.join(self.tmp, "coll.jsonl")
        bad = smtp_result("203.0.113.1", "success", mx="c.example", starttls_code=220,
                          tls_info=tls())
        bad["starttls"]["lines"] = ["220 9.9.9 collide"]
        write_jsonl(path, [bad, result("203.0.113.2", "connection-refused"),
                           smtp_result("203.0.113.3", "no-starttls", offered=False)])
        r = self.ingest(path, "--label", "coll")
        s = self.scan("coll")
        self.assertEqual(self.pg.query("SELECT host(ip) FROM results WHERE scan_id = %s ORDER BY ip" % s),
                         [["203.0.113.2"], ["203.0.113.3"]], r.stderr)
        err = self.pg.scalar("SELECT error FROM rejects WHERE scan_id = %s" % s)
        self.assertIn("collide", err)
        self.assertEqual(self.pg.scalar("SELECT l FROM mxs_lists WHERE id = mxs_list_id('{\"220 9.9.9 collide\"}')"),
                         "{\"something else\"}")


class Migration(unittest.TestCase):
    """Rows written under schema 16 (by SQL: every awkward shape a column can hold), then
    `db migrate`: results gives the very same rows."""

    def test_rows_converted_in_place(self):
        with PgCluster() as pg:
            tmp = tempfile.mkdtemp(prefix="mxs-once-mig-")
            try:
                pg.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now(), sha256 text)")
                for f in sorted(glob.glob(os.path.join(SRC, "sql", "migrations", "*.sql"))):
                    name = os.path.basename(f)
                    v = int(name[:4])
                    if v >= 17:
                        break
                    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", pg.url,
                                    "-f", f], check=True, stdout=subprocess.DEVNULL)
                    with open(f, "rb") as fh:
                        digest = hashlib.sha256(fh.read()).hexdigest()
                    pg.execute("INSERT INTO schema_version (version, name, sha256) VALUES (%d, '%s', '%s')"
                               % (v, name, digest))
                pg.execute("INSERT INTO scans (label) VALUES ('old'), ('old2'); "
                           "SELECT mxs_scan_partitions(id) FROM scans")
                rows = [
                    # key and outcome only
                    "(1, '192.0.2.1', 25, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
                    # no greeting lines; one EHLO line, repeated after TLS; a chain of none
                    "(1, '192.0.2.2', 25, 1, 'smtp', 'scanner.example', 'v1', '{}', '{\"250 only\"}', '{\"250 only\"}',"
                    " '{}', '{TLS_AES_128_GCM_SHA256,NULL,TLS1.3}', '{}', NULL, 'EHLO')",
                    # a NULL first line; another first line after TLS; awkward bytes
                    "(1, '192.0.2.3', 587, 1, NULL, 'scanner.example', NULL, '{NULL,\"220 b\"}',"
                    " '{\"250-a \\\\x5c {x,y} \\\"q\\\"\",\"250 SIZE\"}', '{\"250-b\",\"250 SIZE\"}', '{STARTTLS,\"\"}',"
                    " '{NULL,NULL,NULL}', '{\"\\\\x00\"}', '{\"220 go\"}', NULL)",
                    # the same values again in the other scan
                    "(2, '192.0.2.2', 25, 1, 'smtp', 'scanner.example', 'v1', '{}', '{\"250 only\"}', '{\"250 only\"}',"
                    " '{}', '{TLS_AES_128_GCM_SHA256,NULL,TLS1.3}', '{}', NULL, 'EHLO')",
                ]
                pg.execute(self.insert_sql(rows))
                pg.execute("UPDATE results SET tls_cipher = 'C', tls_kex = 'K', chain_sha256 ="
                           " ARRAY[sha256('a'::bytea), sha256('b'::bytea)], auth_mechanisms = '{PLAIN,LOGIN}',"
                           " ehlo_tls_extensions = '{}', transcript = '[{\"dir\":\"S\"}]', extra = '{\"x\":1}'"
                           " WHERE ip = '192.0.2.3'")
                pg.execute("CREATE TABLE before AS SELECT * FROM results")
                r = subprocess.run([MXS, "db", "--db", pg.url, "migrate"], env=private_env(tmp),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIsNotNone(pg.scalar("SELECT to_regclass('result_rows')"))
                for q in ("SELECT * FROM results EXCEPT ALL SELECT * FROM before",
                          "SELECT * FROM before EXCEPT ALL SELECT * FROM results"):
                    self.assertEqual(pg.scalar("SELECT count(*) FROM (%s) x" % q), "0", q)
                self.assertEqual(pg.scalar("SELECT count(*) FROM results"), "4")
                # stored once: both scans' row of 192.0.2.2 point at the same values
                self.assertEqual(pg.scalar(
                    "SELECT count(DISTINCT (reply_id, ehlo_tls_first))"
                    " FROM result_rows WHERE ip = '192.0.2.2'"), "1")
                self.assertEqual(pg.scalar("SELECT ehlo_tls_first FROM result_rows WHERE ip = '192.0.2.2'"
                                           " LIMIT 1"), "\\")
                # the old partitions are gone, the new ones have the old names
                self.assertEqual(pg.scalar("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM"
                                           " pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                           " WHERE i.inhparent = 'result_rows'::regclass"), "results_s1,results_s2")
                self.assertIsNone(pg.scalar("SELECT to_regclass('results_old')"))
                # a row deleted through the view is gone
                pg.execute("DELETE FROM results WHERE ip = '192.0.2.1'")
                self.assertEqual(pg.scalar("SELECT count(*) FROM result_rows"), "3")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def insert_sql(rows):
        return ("INSERT INTO results (scan_id, ip, port, outcome, proto, ehlo_name, profile,"
                " greeting_lines, ehlo_lines, ehlo_tls_lines, ehlo_extensions, tls_cipher_openssl_x,"
                " chain_sha256, starttls_lines, ehlo_verb)"
                " SELECT scan_id, ip::inet, port, outcome, proto, ehlo_name, profile,"
                " greeting_lines::text[], ehlo_lines::text[], ehlo_tls_lines::text[],"
                " ehlo_extensions::text[], x[1], x[2], x[3], chain_sha256::bytea[],"
                " starttls_lines::text[], ehlo_verb"
                " FROM (SELECT *, tls3::text[] AS x FROM (VALUES %s) v (scan_id, ip, port, outcome, proto,"
                " ehlo_name, profile, greeting_lines, ehlo_lines, ehlo_tls_lines, ehlo_extensions, tls3,"
                " chain_sha256, starttls_lines, ehlo_verb)) w"
                .replace("tls_cipher_openssl_x,", "tls_cipher, tls_cipher_openssl, tls_kex,")
                % ",".join(rows))


if __name__ == "__main__":
    unittest.main()
