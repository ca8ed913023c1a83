"""
`mxsurvey survey` end to end in one process: a real nsd serves a zone whose MX hosts
point at fleet addresses, the survey resolves, probes and stores everything in a real
PostgreSQL, and prints the report. Every stored result matches the fleet's ground truth;
every domain has its row; the report is read from the views.

survey -o FIFO: the survey says it waits for a reader instead of hanging silently, then
writes the FIFO as scan writes a pipe: a reader that pauses longer than any probe timeout
stalls the queue (--output-buffer, "output stalled" on the log) but changes no result.
"""
import collections
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

import dns
from fleet import Fleet
from pg import PgCluster, private_env, wait_for
from scanrun import MXS_BIN, compare_truth

NET = "127.0.7"   # seed 0: 127.0.7.K serves behaviour K


def fleet_zone(fleet, n):
    """A zone with one domain per fleet behaviour (127.0.7.K, MX mx-0-7-K) and the
    input lines naming them with ranks."""
    z = dns.Zone("fleet.test")
    lines = []
    for i in range(n):
        ip = f"{NET}.{i}"
        host = Fleet.mx(ip)
        z.add(host.replace(".fleet.test", ""), "A", ip)
        z.add(f"d{i}", "MX", f"10 {host}.")
        lines.append(f"{i + 1},d{i}.fleet.test")
    return z, lines


class Survey(unittest.TestCase):
    def test_nightly_script_in_two_shards(self):
        """contrib/mxsurvey-nightly as a scheduler runs it: two shards fill one scan named
        by the date; run again, a shard resumes and adds nothing."""
        with Fleet(os.environ["MXS_BUILD"], seed=0, delay_ms=500) as fleet, PgCluster() as pg, \
             tempfile.TemporaryDirectory() as tmp:
            n = len(fleet.behaviours())
            z, lines = fleet_zone(fleet, n)
            nsd = dns.Nsd({"fleet.test": z.text()})
            try:
                inp = os.path.join(tmp, "domains.txt")
                with open(inp, "w") as f:
                    f.write("\n".join(lines) + "\n")
                env = private_env(tmp, MXS_BIN=MXS_BIN, MXS_DB=pg.url, MXS_DOMAINS=inp,
                                  MXS_EHLO_NAME="nightly.mxsurvey.test", MXS_LABEL="night-1",
                                  MXS_OPTS=f"--dns-server {nsd.addr}:{nsd.port} --dns-timeout 1s "
                                           f"--no-policy --no-default-blocklist --port {fleet.port} "
                                           f"--ca-file {fleet.ca_file} --per-net 1000 --quiet "
                                           "--greeting-timeout 4s --timeout 4s --deadline 8s "
                                           "--retries 1 --retry-delay 300ms")
                script = os.path.join(os.environ["MXS_SRC"], "contrib", "mxsurvey-nightly")
                runs = [subprocess.Popen([script], env=dict(env, MXS_SHARD=sh), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE) for sh in ("0/2", "1/2")]
                outs = [p.communicate(timeout=300) for p in runs]
                for p, (out, err) in zip(runs, outs):
                    self.assertEqual(p.returncode, 0, err.decode())
                self.assertEqual(pg.query("SELECT state, targets_read, results_stored FROM scans "
                                          "WHERE label = 'night-1'"), [["done", str(n), str(n)]])
                again = subprocess.run([script], env=dict(env, MXS_SHARD="1/2"), capture_output=True,
                                       timeout=300)
                self.assertEqual(again.returncode, 0, again.stderr.decode())
                self.assertIn("already have results", again.stderr.decode())
                self.assertEqual(pg.scalar("SELECT count(*) FROM results r JOIN scans s ON s.id = r.scan_id "
                                           "WHERE s.label = 'night-1'"), str(n))
            finally:
                nsd.stop()

    def test_survey_end_to_end(self):
        with Fleet(os.environ["MXS_BUILD"], seed=0, delay_ms=1000) as fleet, PgCluster() as pg, \
             tempfile.TemporaryDirectory() as tmp:
            n = len(fleet.behaviours())
            truth = {t["ip"]: t for t in fleet.truth(f"{NET}.0/27") if int(t["ip"].split(".")[3]) < n}
            z = dns.Zone("fleet.test")
            lines = []
            for i, ip in enumerate(sorted(truth, key=lambda a: int(a.split(".")[3]))):
                host = Fleet.mx(ip)
                z.add(host.replace(".fleet.test", ""), "A", ip)
                z.add(f"d{i}", "MX", f"10 {host}.")
                lines.append(f"{i + 1},d{i}.fleet.test")
            # a domain with two MX (both fleet hosts), a null MX, and one that does not exist
            z.add("two", "MX", f"10 {Fleet.mx(NET + '.0')}.").add("two", "MX", f"20 {Fleet.mx(NET + '.1')}.")
            z.add("nomail", "MX", "0 .")
            lines += ["two.fleet.test", "nomail.fleet.test", "missing.fleet.test", "not a domain!"]
            nsd = dns.Nsd({"fleet.test": z.text()})
            try:
                inp = os.path.join(tmp, "domains.txt")
                with open(inp, "w") as f:
                    f.write("\n".join(lines) + "\n")
                p = subprocess.run(
                    [MXS_BIN, "survey", "--db", pg.url, "--label", "e2e",
                     "--dns-server", f"{nsd.addr}:{nsd.port}", "--dns-timeout", "1s", "--no-policy",
                     "--no-default-blocklist", "--port", str(fleet.port), "--ca-file", fleet.ca_file,
                     "--ehlo-name", "survey.mxsurvey.test", "--per-net", "1000", "--quiet",
                     "--greeting-timeout", "4s", "--timeout", "4s", "--deadline", "8s",
                     "--retries", "1", "--retry-delay", "300ms", "-o", os.path.join(tmp, "all.jsonl"), inp],
                    env=private_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            finally:
                nsd.stop()
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 0, err)
            m = re.search(r"(\d+) targets read, (\d+) result rows stored", err)
            self.assertEqual(m.group(1), m.group(2), err)
            self.assertEqual(int(m.group(1)), len(truth))
            # the bad input line (the last), named with its number
            self.assertIn("line %d: " % len(lines), err)

            stored = dict(pg.query("SELECT host(r.ip), o.name FROM results r "
                                   "JOIN outcome_names o ON o.code = r.outcome "
                                   "JOIN scans s ON s.id = r.scan_id WHERE s.label = 'e2e'"))
            self.assertEqual(stored, {ip: t["outcome"] for ip, t in truth.items()})
            domains = dict(pg.query("SELECT d.domain, d.status FROM domains d "
                                    "JOIN scans s ON s.id = d.scan_id WHERE s.label = 'e2e'"))
            self.assertEqual(len(domains), len(truth) + 3)
            self.assertEqual(domains["nomail.fleet.test"], "null-mx")
            self.assertEqual(domains["missing.fleet.test"], "nxdomain")
            self.assertEqual(domains["two.fleet.test"], "ok")
            two = pg.query("SELECT host, pref FROM domain_mx dm JOIN scans s ON s.id = dm.scan_id "
                           "WHERE s.label = 'e2e' AND dm.domain = 'two.fleet.test' ORDER BY pref")
            self.assertEqual([r[1] for r in two], ["10", "20"])
            self.check_views(pg, truth)
            report = p.stdout.decode()
            self.assertIn("e2e", report)
            self.assertRegex(report, r"(?i)starttls")

    def test_survey_fifo_slow_reader(self):
        pause_s = 15   # longer than any timeout of the probes below
        with Fleet(os.environ["MXS_BUILD"], seed=7, delay_ms=500) as fleet, PgCluster() as pg, \
             tempfile.TemporaryDirectory() as tmp:
            truth = {t["ip"]: t for t in fleet.truth("127.3.0.0/24")}
            z = dns.Zone("fleet.test")
            lines = []
            for i, ip in enumerate(sorted(truth)):
                host = Fleet.mx(ip)
                z.add(host.replace(".fleet.test", ""), "A", ip)
                z.add(f"f{i}", "MX", f"10 {host}.")
                lines.append(f"{i + 1},f{i}.fleet.test")
            nsd = dns.Nsd({"fleet.test": z.text()})
            fifo = os.path.join(tmp, "out.fifo")
            os.mkfifo(fifo)
            inp = os.path.join(tmp, "domains.txt")
            with open(inp, "w") as f:
                f.write("\n".join(lines) + "\n")
            errpath = os.path.join(tmp, "err")
            try:
                with open(errpath, "wb") as err:
                    p = subprocess.Popen(
                        [MXS_BIN, "survey", "--db", pg.url, "--label", "fifo", "--report", "none",
                         "--dns-server", f"{nsd.addr}:{nsd.port}", "--dns-timeout", "1s",
                         "--no-policy", "--no-default-blocklist", "--port", str(fleet.port),
                         "--ca-file", fleet.ca_file, "--ehlo-name", "survey.mxsurvey.test",
                         "--per-net", "1000", "--concurrency", "100", "--greeting-timeout", "4s",
                         "--timeout", "4s", "--handshake-timeout", "6s", "--deadline", "10s",
                         "--retries", "1", "--retry-delay", "300ms", "--output-buffer", "16K",
                         "-o", fifo, inp],
                        env=private_env(tmp), stdout=subprocess.DEVNULL, stderr=err)
                    try:
                        read_err = lambda: open(errpath).read()
                        self.assertTrue(wait_for(lambda: "waiting for a reader" in read_err(), 30),
                                        read_err())
                        self.assertIsNone(p.poll())
                        # a reader opens the FIFO, then reads nothing for pause_s seconds
                        fd = os.open(fifo, os.O_RDONLY)
                        time.sleep(pause_s)
                        chunks = []
                        while True:
                            b = os.read(fd, 1 << 16)
                            if not b:
                                break
                            chunks.append(b)
                        os.close(fd)
                        rc = p.wait(300)
                    finally:
                        if p.poll() is None:
                            p.kill()
                            p.wait()
            finally:
                nsd.stop()
            err = read_err()
            self.assertEqual(rc, 0, err[-3000:])
            self.assertIn("output stalled", err)
            self.assertIn("output flowing again", err)
            recs = [json.loads(l) for l in b"".join(chunks).decode().splitlines()]
            results = [r for r in recs if r["type"] == "result"]
            self.assertEqual(sorted(r["ip"] for r in results), sorted(truth))
            diffs = [d for r in results for d in compare_truth(r, truth[r["ip"]])]
            self.assertEqual(diffs, [], "\n".join(diffs[:40]))
            self.assertEqual(sum(r["type"] == "domain" for r in recs), len(truth))
            stored = dict(pg.query("SELECT host(r.ip), o.name FROM results r "
                                   "JOIN outcome_names o ON o.code = r.outcome "
                                   "JOIN scans s ON s.id = r.scan_id WHERE s.label = 'fifo'"))
            self.assertEqual(stored, {ip: t["outcome"] for ip, t in truth.items()})

    def check_views(self, pg, truth):
        """The views' numbers for this fleet run equal what the ground truth predicts."""
        sid = pg.scalar("SELECT id FROM scans WHERE label = 'e2e'")
        want = collections.Counter(t["outcome"] for t in truth.values())
        got = {k: int(v) for k, v in pg.query(f"SELECT outcome, n FROM v_outcomes WHERE scan_id = {sid}")}
        self.assertEqual(got, dict(want))
        want = collections.Counter(t["tls_version"] for t in truth.values() if t["outcome"] == "success")
        got = {k: int(v) for k, v in pg.query(
            f"SELECT version, n FROM v_tls_versions WHERE scan_id = {sid} AND level = 'address'")}
        self.assertEqual(got, dict(want))
        # The funnel, stage by stage, from the truth's fields (every fleet EHLO/HELO reply is 250).
        greeted = [t for t in truth.values() if t["greeting_code"] is not None]
        ehlo_ok = [t for t in greeted if t["ehlo_extensions"] is not None]
        offered = [t for t in ehlo_ok if "STARTTLS" in t["ehlo_extensions"] or t.get("tls_version")]
        tls = [t for t in offered if t["outcome"] == "success"]
        want = [len(truth), len(greeted), len(ehlo_ok), len(offered), len(tls)]
        got = [int(r[0]) for r in pg.query(f"SELECT n FROM v_funnel WHERE scan_id = {sid} "
                                            "AND level = 'address' ORDER BY stage_no")]
        self.assertEqual(got, want)
        trusted = sum(1 for t in tls if t["trusted"])
        got = pg.scalar(f"SELECT count(*) FROM v_addr WHERE scan_id = {sid} AND tls_ok AND tls_trusted")
        self.assertEqual(int(got), trusted)


if __name__ == "__main__":
    unittest.main(verbosity=2)
