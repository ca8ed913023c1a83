"""
`mxsurvey survey` end to end in one process: a real nsd serves a zone whose MX hosts
point at fleet addresses, the survey resolves, probes and stores everything in a real
PostgreSQL, and prints the report. Every stored result matches the fleet's ground truth;
every domain has its row; the report is read from the views.
"""
import os
import re
import subprocess
import tempfile
import unittest

import dns
from fleet import Fleet
from pg import PgCluster, private_env
from scanrun import MXS_BIN

NET = "127.0.7"   # seed 0: 127.0.7.K serves behaviour K


class Survey(unittest.TestCase):
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
            self.assertIn("line 34: ", err)  # the bad input line, named with its number

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
            report = p.stdout.decode()
            self.assertIn("e2e", report)
            self.assertRegex(report, r"(?i)starttls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
