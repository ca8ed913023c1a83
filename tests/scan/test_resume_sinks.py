"""
Resume over every combination of sinks ends with every target exactly once in every sink.
A scan (or survey) is killed with SIGKILL mid-run, sometimes while PostgreSQL is down,
then run again with --resume:

- both sinks (-o FILE and --db): what the file holds but the database lacks is copied
  into the database, not probed again; what only the database holds is probed again for
  the file alone; the same for name lines (a further MX name's verdict on an address,
  table result_names): each ends exactly once in each sink;
- database only, killed during an outage: what the killed run spooled is replayed before
  the resume asks what is stored, so no spooled target is probed twice;
- survey --resume -o FILE appends to FILE (it used to truncate it).

The file-only path is tests/scan/test_scan_resume.py.
"""
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import dns
from fleet import Fleet
from pg import PgCluster, private_env, wait_for
from scanrun import MXS_BIN, fleet_args, targets_for

OPTS = ["--concurrency", "40", "--per-net", "100000", "--greeting-timeout", "4s",
        "--timeout", "3s", "--deadline", "6s", "--retries", "0"]


def file_records(path, strict=True):
    """Complete lines of a JSON lines file. While a writer is still at work (strict
    False), a line that does not parse yet is left out; at the end every line must."""
    out = []
    with open(path) as f:
        for l in f:
            if not l.endswith("\n"):
                continue
            try:
                out.append(json.loads(l))
            except ValueError:
                if strict:
                    raise
    return out


def scanned(err):
    """Result records the run made (the scanner's summary line)."""
    m = re.search(r"(\d+) targets, (\d+) result records", err)
    return int(m.group(2))


class ResumeSinks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.fleet = Fleet(os.environ["MXS_BUILD"], seed=31, delay_ms=800).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)
        cls.pg.__exit__(None, None, None)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-resume-")
        self.env = private_env(self.tmp)
        if not self.pg.running():
            self.pg.start()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------

    def db_ips(self, label):
        rows = self.pg.query("SELECT host(r.ip) FROM results r JOIN scans s ON s.id = r.scan_id "
                             "WHERE s.label = '%s'" % label)
        return [r[0] for r in rows]

    def rows(self, label):
        try:
            return len(self.db_ips(label))
        except RuntimeError:
            return 0   # the scan row may not exist yet, or the server is down

    def spooled_ips(self):
        ips = set()
        for path in glob.glob(os.path.join(self.tmp, "share", "mxsurvey", "spool", "*.jsonl")):
            with open(path) as f:
                lines = [l for l in f if l.endswith("\n")][1:]   # the header first
            for l in lines:
                rec = json.loads(l)
                if rec.get("type") == "result":
                    ips.add(rec["ip"])
        return ips

    def inputs(self, cidr, names=False):
        """The fleet addresses of cidr as target lines; with names, every second address
        is named again right after by a second MX name (mx2-...), which gets a name line."""
        truth = sorted(t["ip"] for t in self.fleet.truth(cidr))
        inp = os.path.join(self.tmp, "targets.txt")
        lines = targets_for(truth).splitlines()
        self.second = {}
        if names:
            out = []
            for i, (ip, line) in enumerate(zip(truth, lines)):
                out.append(line)
                if i % 2 == 0:
                    a, b, c = ip.split(".")[1:]
                    self.second[ip] = f"mx2-{a}-{b}-{c}.fleet.test"
                    out.append(f"{ip},{self.second[ip]},e{c}.fleet.test")
            lines = out
        with open(inp, "w") as f:
            f.write("\n".join(lines) + "\n")
        return truth, inp

    def db_names(self, label):
        return self.pg.query("SELECT host(n.ip), n.name FROM result_names n JOIN scans s"
                             " ON s.id = n.scan_id WHERE s.label = '%s'" % label)

    def assert_names_once(self, out, label):
        want = sorted([ip, name] for ip, name in self.second.items())
        got = sorted([r["ip"], r["name"]] for r in file_records(out) if r["type"] == "name")
        self.assertEqual(got, want, "file: not every name line exactly once")
        self.assertEqual(sorted(self.db_names(label)), want,
                         "database: not every name verdict exactly once")

    def start(self, args):
        return subprocess.Popen([MXS_BIN, "scan", *args, "--rate", "60"], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, p):
        p.kill()
        p.wait()

    def resume(self, args):
        p = subprocess.run([MXS_BIN, "scan", *args, "--resume"], env=self.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        return p.returncode, p.stderr.decode()

    def assert_once_in_file(self, path, truth):
        recs = [r for r in file_records(path) if r["type"] == "result"]
        self.assertEqual(sorted(r["ip"] for r in recs), truth, "file: not every target exactly once")

    def assert_once_in_db(self, label, truth):
        self.assertEqual(sorted(self.db_ips(label)), truth, "database: not every target exactly once")
        self.assertEqual(self.pg.scalar("SELECT state FROM scans WHERE label = '%s'" % label), "done")

    # -- tests -----------------------------------------------------------------------

    def test_both_sinks_sigkill(self):
        truth, inp = self.inputs("127.9.0.0/23", names=True)
        out = os.path.join(self.tmp, "out.jsonl")
        args = fleet_args(self.fleet, *OPTS, "--db", self.pg.url, "--label", "both", "-o", out, inp)
        p = self.start(args)
        wait_for(lambda: os.path.exists(out) and
                 sum(r["type"] == "result" for r in file_records(out, False)) >= 150, timeout=60)
        self.kill(p)
        first = [r for r in file_records(out) if r["type"] == "result"]
        self.assertLess(len(first), len(truth))
        # What a kill leaves, made certain: 20 results the file has but the database lost
        # (not committed yet), and 15 the database has but the file lost (not flushed);
        # name lines likewise: those of the 20 and 8 more the database lost, those of the
        # 15 and 6 more (whose results stay) the file lost.
        in_db = set(self.db_ips("both"))
        in_file = [r["ip"] for r in first]
        lost_db = [ip for ip in in_file if ip in in_db][:20]
        lost_file = set([ip for ip in in_file if ip in in_db][20:35])
        self.assertEqual((len(lost_db), len(lost_file)), (20, 15))
        file_names = {r["ip"] for r in file_records(out) if r["type"] == "name"}
        db_names = {ip for ip, _ in self.db_names("both")}
        named_both = [ip for ip in in_file[35:] if ip in file_names and ip in db_names and ip in in_db]
        self.assertGreaterEqual(len(named_both), 14)
        lost_db_names = set(lost_db) | set(named_both[:8])
        lost_file_names = lost_file | set(named_both[8:14])
        self.pg.execute("DELETE FROM results WHERE host(ip) IN (%s)" %
                        ",".join("'%s'" % ip for ip in lost_db))
        self.pg.execute("DELETE FROM result_names WHERE host(ip) IN (%s)" %
                        ",".join("'%s'" % ip for ip in lost_db_names))
        with open(out) as f:
            kept = [l for l in f if l.endswith("\n") and json.loads(l)["ip"] not in lost_file and
                    not (json.loads(l)["type"] == "name" and json.loads(l)["ip"] in lost_file_names)]
        with open(out, "w") as f:
            f.writelines(kept)
        in_file = {json.loads(l)["ip"] for l in kept if json.loads(l)["type"] == "result"}
        to_copy = in_file - set(self.db_ips("both"))
        self.assertGreaterEqual(len(to_copy), 20)
        names_to_copy = {json.loads(l)["ip"] for l in kept if json.loads(l)["type"] == "name"} - \
            {ip for ip, _ in self.db_names("both")}
        self.assertGreaterEqual(len(names_to_copy), 8)

        rc, err = self.resume(args)
        self.assertEqual(rc, 0, err)
        self.assert_once_in_file(out, truth)
        self.assert_once_in_db("both", truth)
        # the 20 were copied from the file, not probed again: only what the file lacks was
        self.assert_names_once(out, "both")
        self.assertIn("%d results and %d name lines in %s but not in the database: copied"
                      % (len(to_copy), len(names_to_copy), out), err)
        self.assertEqual(scanned(err), len(truth) - len(in_file), err)
        m = re.search(r"(\d+) targets read, (\d+) result rows stored", err)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (len(truth), len(truth)), err)

    def kill_during_outage(self, args, label, out=None):
        p = self.start(args)
        wait_for(lambda: self.rows(label) >= 60, timeout=60)
        self.pg.stop()
        # the scan goes on into the spool
        wait_for(lambda: len(self.spooled_ips()) >= 120 or p.poll() is not None, timeout=60)
        self.kill(p)
        self.pg.start()

    def test_db_only_sigkill_during_outage(self):
        truth, inp = self.inputs("127.9.2.0/23")
        args = fleet_args(self.fleet, *OPTS, "--db", self.pg.url, "--label", "outage", inp)
        self.kill_during_outage(args, "outage")
        held = set(self.db_ips("outage")) | self.spooled_ips()
        self.assertGreaterEqual(len(held - set(self.db_ips("outage"))), 100, "nothing was spooled")
        self.assertLess(len(held), len(truth))

        rc, err = self.resume(args)
        self.assertEqual(rc, 0, err)
        self.assert_once_in_db("outage", truth)
        # the spool was stored before the resume asked what is stored: nothing dialled twice
        self.assertEqual(scanned(err), len(truth) - len(held), err)

    def test_both_sinks_sigkill_during_outage(self):
        truth, inp = self.inputs("127.9.4.0/23")
        out = os.path.join(self.tmp, "out.jsonl")
        args = fleet_args(self.fleet, *OPTS, "--db", self.pg.url, "--label", "outage2", "-o", out,
                          inp)
        self.kill_during_outage(args, "outage2")
        in_file = {r["ip"] for r in file_records(out)}
        # Made certain: 10 results the file has were still in memory on their way to the
        # spool when the kill came (taken out of the spool files here).
        dropped = 0
        for path in glob.glob(os.path.join(self.tmp, "share", "mxsurvey", "spool", "*.jsonl")):
            with open(path) as f:
                lines = [l for l in f if l.endswith("\n")]
            keep = lines[:1]
            for l in lines[1:]:
                if dropped < 10 and json.loads(l).get("ip") in in_file:
                    dropped += 1
                else:
                    keep.append(l)
            with open(path, "w") as f:
                f.writelines(keep)
        self.assertEqual(dropped, 10)
        rc, err = self.resume(args)
        self.assertEqual(rc, 0, err)
        self.assert_once_in_file(out, truth)
        self.assert_once_in_db("outage2", truth)
        # what the file holds is never probed again
        self.assertEqual(scanned(err), len(truth) - len(in_file), err)

    def test_survey_resume_sigkill(self):
        n = 300
        z = dns.Zone("fleet.test")
        lines, ips = [], []
        for i in range(n):
            ip = "127.9.%d.%d" % (8 + i // 200, 1 + i % 200)
            host = Fleet.mx(ip)
            z.add(host.replace(".fleet.test", ""), "A", ip)
            z.add("s%d" % i, "MX", "10 %s." % host)
            lines.append("%d,s%d.fleet.test" % (i + 1, i))
            ips.append(ip)
        nsd = dns.Nsd({"fleet.test": z.text()})
        try:
            inp = os.path.join(self.tmp, "domains.txt")
            with open(inp, "w") as f:
                f.write("\n".join(lines) + "\n")
            out = os.path.join(self.tmp, "survey.jsonl")
            args = ["--db", self.pg.url, "--label", "survey", "-o", out, "--report", "none",
                    "--dns-server", "%s:%d" % (nsd.addr, nsd.port), "--dns-timeout", "1s",
                    "--no-policy", *fleet_args(self.fleet, *OPTS), inp]
            p = subprocess.Popen([MXS_BIN, "survey", *args, "--rate", "40"], env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: os.path.exists(out) and
                     sum(r["type"] == "result" for r in file_records(out, False)) >= 80, timeout=60)
            self.kill(p)
            first = [r for r in file_records(out) if r["type"] == "result"]
            self.assertLess(len(first), n)
            r = subprocess.run([MXS_BIN, "survey", *args, "--resume"], env=self.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 0, err)
        finally:
            nsd.stop()
        recs = file_records(out)
        self.assertEqual(sorted(x["ip"] for x in recs if x["type"] == "result"), sorted(ips),
                         "file: not every target exactly once")
        domains = collections.Counter(x["domain"] for x in recs if x["type"] == "domain")
        self.assertEqual(set(domains.values()), {1}, "file: a domain record twice")
        self.assertEqual(len(domains), n)
        self.assert_once_in_db("survey", sorted(ips))


if __name__ == "__main__":
    unittest.main(verbosity=2)
