"""Domain and MX host names stored once (dns_names, docs/database.md): two scans share
their names, concurrent ingests store every name once and every row exactly once, and
the migration that moved the names out of the per-scan rows gives every view the same
rows as before on a database filled at the schema version before it."""
import glob
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest

from pg import PgCluster, private_env
from pgrecords import domain, line, smtp_result, tls

MXS = os.environ["MXS_BIN"]
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sql",
                          "migrations")
NAMES_MIGRATION = 15   # the migration that introduced dns_names


def domain_lines(names, hosts, seed):
    """A domain line per name, each with one or two of the shared MX hosts."""
    rnd = random.Random(seed)
    out = []
    for i, d in enumerate(names):
        k = rnd.randrange(len(hosts))
        mx = [(hosts[k], 10, ["10.1.%d.%d" % (k >> 8, k & 255)])]
        if i % 3 == 0:
            j = (k + 1) % len(hosts)
            mx.append((hosts[j], 20, ["10.1.%d.%d" % (j >> 8, j & 255)]))
        out.append(line(domain(d, i + 1, mx=mx)))
    return out


class Names(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-names-")
        self.env = private_env(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, lines):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def ingest(self, *args):
        return subprocess.Popen([MXS, "ingest", "--db", self.pg.url] + list(args), env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def scan_of(self, label):
        return self.pg.scalar("SELECT id FROM scans WHERE label = '%s'" % label)

    def test_two_scans_share_names(self):
        hosts = ["mx%d.share.example" % i for i in range(8)]
        night1 = ["d%d.share.example" % i for i in range(60)]
        night2 = ["d%d.share.example" % i for i in range(30, 90)]
        for label, names in (("share-1", night1), ("share-2", night2)):
            p = self.ingest("--label", label, self.write(label, domain_lines(names, hosts, 1)))
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, out + err)
        s1, s2 = self.scan_of("share-1"), self.scan_of("share-2")
        # each name once, for both scans: 90 domains and 8 hosts
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM dns_names WHERE name LIKE '%.share.example'"),
                         "98")
        # the second night's rows point at the first night's names
        self.assertEqual(self.pg.scalar(
            "SELECT count(DISTINCT a.domain_id) FROM scan_domains a JOIN scan_domains b"
            " ON b.domain_id = a.domain_id WHERE a.scan_id = %s AND b.scan_id = %s" % (s1, s2)), "30")
        for scan, names in ((s1, night1), (s2, night2)):
            got = [r[0] for r in self.pg.query("SELECT domain FROM domains WHERE scan_id = %s"
                                               " ORDER BY domain" % scan)]
            self.assertEqual(got, sorted(names))
            mx = self.pg.query("SELECT domain, host, pref, addrs FROM domain_mx WHERE scan_id = %s"
                               " ORDER BY domain, host" % scan)
            want = []
            for l in domain_lines(names, hosts, 1):
                d = json.loads(l)
                for m in d["mx"]:
                    want.append([d["domain"], m["host"], str(m["pref"]), "{%s}" % ",".join(m["addrs"])])
            self.assertEqual(mx, sorted(want))

    def test_concurrent_ingests(self):
        """Four ingests at once, each its own scan, over the same names in different
        orders, in small batches (so their transactions overlap): every name stored once,
        every row of every scan exactly once, nothing spooled or rejected."""
        hosts = ["MX%d.Conc.Example." % i for i in range(40)]
        names = ["c%d.conc.example" % i for i in range(1200)]
        procs = []
        for k in range(4):
            order = list(names)
            random.Random(k).shuffle(order)
            path = self.write("conc%d" % k, domain_lines(order, hosts, 7))
            procs.append(self.ingest("--label", "conc-%d" % k, "--batch-rows", "40", path))
        for p in procs:
            out, err = p.communicate(timeout=240)
            self.assertEqual(p.returncode, 0, out + err)
            self.assertIn("1200 domain rows stored, 0 rejected lines stored, 0 lines spooled", out)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM dns_names WHERE lower(name) LIKE '%.conc.example%'"),
                         "1240")
        for k in range(4):
            scan = self.scan_of("conc-%d" % k)
            self.assertEqual(self.pg.query(
                "SELECT count(*), count(DISTINCT domain) FROM domains WHERE scan_id = %s" % scan),
                [["1200", "1200"]])
            self.assertEqual(self.pg.scalar("SELECT count(*) FROM domain_mx WHERE scan_id = %s" % scan),
                             "1600")
            self.assertEqual(self.pg.scalar("SELECT count(*) FROM domain_mx WHERE scan_id = %s"
                                            " AND host !~ '^MX[0-9]+\\.Conc\\.Example\\.$'" % scan), "0")


def old_schema_rows():
    """SQL filling two scans at the schema before dns_names: results, domains, domain_mx,
    with the cases the views look at (shared and per-domain MX hosts, mixed case and a
    final dot, preference ties, a domain without MX, names in both scans, MTA-STS, TLSA)."""
    sql = ["INSERT INTO scans (id, label, state) VALUES (1, 'old-1', 'done'), (2, 'old-2', 'done')",
           "SELECT mxs_scan_partitions(1), mxs_scan_partitions(2)"]
    outcomes = ["success", "no-starttls", "connection-refused", "handshake-error"]
    for scan in (1, 2):
        for i in range(40):
            o = outcomes[(i + scan) % 4]
            code = {"success": 1, "no-starttls": 2, "connection-refused": 6, "handshake-error": 4}[o]
            ehlo = "NULL" if o == "connection-refused" else (
                "'{PIPELINING,STARTTLS}'" if o != "no-starttls" else "'{PIPELINING}'")
            sql.append(
                "INSERT INTO results (scan_id, ip, port, mx, mx_names, domains, outcome, phase,"
                " greeting_code, greeting_lines, ehlo_code, ehlo_extensions, tls_version, tls_cipher,"
                " tls_forward_secrecy, tls_trusted, tls_name_match, tls_expired, tls_self_signed,"
                " dane_tlsa, dane_dnssec, dane_match) VALUES"
                " (%d, '10.2.0.%d', 25, 'mx%d.old.example', '{mx%d.old.example}', '{d%d.old.example}',"
                " %d, 9, %s, %s, %s, %s, %s, %s, %s, %s, %s, false, false, %s, %s, %s)" % (
                    scan, i, i % 12, i % 12, i, code,
                    "NULL" if o == "connection-refused" else "220",
                    "NULL" if o == "connection-refused" else "'{\"220 mx ESMTP Postfix\"}'",
                    "NULL" if o == "connection-refused" else "250", ehlo,
                    "772" if o == "success" else "NULL",
                    "'TLS_AES_256_GCM_SHA384'" if o == "success" else "NULL",
                    "true" if o == "success" else "NULL", "true" if o == "success" else "NULL",
                    "(%d %% 3 <> 0)" % i if o == "success" else "NULL",
                    "1" if i % 5 == 0 else "NULL", "true" if i % 5 == 0 else "NULL",
                    "(%d %% 2 = 0)" % i if i % 5 == 0 and o == "success" else "NULL"))
        for i in range(30 * (scan - 1), 30 * (scan - 1) + 50):
            rank = "NULL" if i % 7 == 0 else str(i * 37 + 1)
            mode = ["'enforce'", "'testing'", "NULL"][i % 3]
            sql.append(
                "INSERT INTO domains (scan_id, domain, rank, status, dnssec, mta_sts_status,"
                " mta_sts_policy_status, mta_sts_mode, mta_sts_mx, mta_sts_mx_match, tlsrpt_txt)"
                " VALUES (%d, 'd%d.old.example', %s, '%s', %s, %s, %s, %s, %s, %s, %s)" % (
                    scan, i, rank, "nodata" if i % 11 == 0 else "ok", "true" if i % 4 == 0 else "false",
                    "'ok'" if mode != "NULL" else "NULL", "'ok'" if mode != "NULL" else "NULL", mode,
                    "'{*.old.example}'" if mode != "NULL" else "NULL",
                    "(%d %% 2 = 0)" % i if mode != "NULL" else "NULL",
                    "'v=TLSRPTv1; rua=mailto:r@old.example'" if i % 6 == 0 else "NULL"))
            if i % 11 == 0:
                continue   # no MX
            hosts = [("mx%d.old.example" % (i % 12), 10)]
            if i % 4 == 1:
                hosts.append(("MX%d.Old.Example." % ((i + 5) % 12), 10))   # a tie, another spelling
            if i % 5 == 2:
                hosts.append(("backup.old.example", 20))
            for h, pref in hosts:
                k = int(re.search(r"\d+", h).group()) if re.search(r"\d+", h) else 99
                tlsa = "'[{\"usage\":3,\"selector\":1,\"mtype\":1,\"data\":\"ab\"}]'" if i % 4 == 0 else "NULL"
                sql.append(
                    "INSERT INTO domain_mx (scan_id, domain, host, pref, status, addrs, tlsa,"
                    " tlsa_dnssec, tlsa_status) VALUES (%d, 'd%d.old.example', '%s', %d, 'ok',"
                    " '{10.2.0.%d,10.2.0.%d}', %s, %s, %s)" % (
                        scan, i, h, pref, k, k + 12, tlsa, "true" if i % 4 == 0 else "NULL",
                        "'ok'" if i % 4 == 0 else "'nodata'"))
    return ";\n".join(sql) + ";\n"


class Migration(unittest.TestCase):
    """A database filled at the version before dns_names, migrated by this build: every
    view, the domains and domain_mx rows and the functions reading them give the same rows."""

    def test_views_identical_after_migration(self):
        with PgCluster() as pg:
            files = sorted(glob.glob(os.path.join(MIGRATIONS, "[0-9][0-9][0-9][0-9]_*.sql")))
            old = [f for f in files if int(os.path.basename(f)[:4]) < NAMES_MIGRATION]
            pg.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now(), sha256 text)")
            for f in old:
                with open(f, "rb") as fh:
                    body = fh.read()
                r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", pg.url,
                                    "-f", f], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertEqual(r.returncode, 0, r.stderr)
                pg.execute("INSERT INTO schema_version (version, name, sha256) VALUES (%d, '%s', '%s')"
                           % (int(os.path.basename(f)[:4]), os.path.basename(f),
                              hashlib.sha256(body).hexdigest()))
            path = os.path.join(pg.dir, "rows.sql")
            with open(path, "w") as fh:
                fh.write(old_schema_rows())
            r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", pg.url, "-f", path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 0, r.stderr)
            pg.execute("INSERT INTO public_suffixes VALUES ('old.example')")

            def snapshot():
                rels = [r[0] for r in pg.query(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND (c.relkind = 'v' OR c.relname IN ('domains', 'domain_mx'))"
                    " ORDER BY 1")]
                snap = {}
                for rel in rels:
                    snap[rel] = sorted(tuple(r) for r in pg.query("SELECT * FROM %s" % rel))
                for fn in ("mxs_sts_changes(1, 2)", "mxs_changes(1, 2)", "mxs_rates_live(1)",
                           "mxs_rates_live(2)"):
                    snap[fn] = sorted(tuple(r) for r in pg.query("SELECT * FROM %s" % fn))
                return snap

            before = snapshot()
            self.assertEqual(len(before["domains"]), 100)
            self.assertGreater(len(before["v_domain_addrs"]), 100)
            r = subprocess.run([MXS, "db", "--db", pg.url, "migrate"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=private_env(pg.dir))
            self.assertEqual(r.returncode, 0, r.stderr)
            after = snapshot()
            self.assertEqual(sorted(before), sorted(set(after) & set(before)))
            for rel in sorted(before):
                self.assertEqual(after[rel], before[rel], rel)
            # the rows now hold ids; the old tables are views
            self.assertEqual(pg.scalar("SELECT relkind FROM pg_class WHERE relname = 'domain_mx'"), "v")
            self.assertIsNone(pg.scalar("SELECT to_regclass('domains_s1')"))
            self.assertEqual(pg.scalar("SELECT count(*) FROM scan_domains_s2"), "50")
            self.assertEqual(pg.scalar("SELECT count(*) - count(DISTINCT name) FROM dns_names"), "0")
            names = ({r[1] for r in before["domains"]} | {r[1] for r in before["domain_mx"]}
                     | {r[2] for r in before["domain_mx"]})
            self.assertEqual(pg.scalar("SELECT count(*) FROM dns_names"), str(len(names)))


if __name__ == "__main__":
    unittest.main()
