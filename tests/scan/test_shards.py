"""
Sharding (--shard I/N): the shards partition any input (every address in exactly one
shard, the same one every run), and two shards run concurrently into one PostgreSQL scan
give the same rows as a single unsharded run, row for row.
"""
import collections
import json
import os
import socket
import subprocess
import tempfile
import unittest

from fleet import Fleet
from pg import PgCluster, private_env
from scanrun import MXS_BIN, fleet_args, targets_for

ROW = ("SELECT host(r.ip), o.name, r.greeting_code, r.ehlo_extensions, r.starttls_code, "
       "r.tls_version, r.tls_cipher, r.tls_trusted, r.tls_name_match, r.tls_self_signed, "
       "r.tls_expired, r.tamper_mangled_starttls, r.attempts "
       "FROM results r JOIN outcome_names o ON o.code = r.outcome "
       "JOIN scans s ON s.id = r.scan_id WHERE s.label = '%s' ORDER BY r.ip")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Shards(unittest.TestCase):
    def shard_ips(self, text, i, n, port):
        p = subprocess.run([MXS_BIN, "scan", "--no-default-blocklist", "--port", str(port), "--quiet",
                            "--per-net", "1000", "--concurrency", "500", "--shard", f"{i}/{n}"],
                           input=text.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return [json.loads(l)["ip"] for l in p.stdout.decode().splitlines()]

    def test_shards_partition_the_input(self):
        ips = [f"127.8.{b}.{c}" for b in range(8) for c in range(256)]
        text = "\n".join(ips) + "\n"
        port = closed_port()  # nothing listens: every probe ends at once, refused
        shards = [self.shard_ips(text, i, 3, port) for i in range(3)]
        seen = collections.Counter(ip for s in shards for ip in s)
        self.assertEqual(set(seen), set(ips))
        self.assertEqual(max(seen.values()), 1)
        for s in shards:  # a fair split, not one shard with everything
            self.assertGreater(len(s), len(ips) // 5)
        self.assertEqual(sorted(self.shard_ips(text, 1, 3, port)), sorted(shards[1]))

    def test_two_shards_equal_one_run(self):
        # Each run gets a fresh fleet of the same seed: some fleet hosts answer 421 only
        # to the first connection an instance sees, so runs are equal only from equal starts.
        with PgCluster() as pg, tempfile.TemporaryDirectory() as tmp:
            env = private_env(tmp)
            inp = os.path.join(tmp, "targets.txt")
            for label, shards in (("full", [None]), ("sharded", ["0/2", "1/2"])):
                with Fleet(os.environ["MXS_BUILD"], seed=31, delay_ms=500) as fleet:
                    truth = [t["ip"] for t in fleet.truth("127.9.0.0/23")]
                    with open(inp, "w") as f:
                        f.write(targets_for(truth))
                    opts = fleet_args(fleet, "--concurrency", "100", "--per-net", "100000",
                                      "--greeting-timeout", "4s", "--timeout", "4s", "--deadline", "8s",
                                      "--retries", "1", "--retry-delay", "300ms", "--db", pg.url,
                                      "--label", label)
                    # the shards start together, as from two machines' timers
                    procs = [subprocess.Popen([MXS_BIN, "scan", *opts, *(["--shard", sh] if sh else []), inp],
                                              env=env, stderr=subprocess.PIPE) for sh in shards]
                    errs = [p.communicate(timeout=300)[1].decode() for p in procs]
                    for p, err in zip(procs, errs):
                        self.assertEqual(p.returncode, 0, err)
                    if label == "sharded":
                        self.assertTrue(any("all 2 shards done" in e for e in errs), errs)
            self.assertEqual(pg.query(ROW % "sharded"), pg.query(ROW % "full"))
            self.assertEqual(len(pg.query(ROW % "sharded")), len(truth))
            self.assertEqual(pg.query("SELECT state, targets_read, results_stored FROM scans "
                                      "WHERE label = 'sharded'"), [["done", str(len(truth)), str(len(truth))]])
            shards = pg.query("SELECT ss.shard_index, ss.state, ss.targets_read FROM scan_shards ss "
                              "JOIN scans s ON s.id = ss.scan_id WHERE s.label = 'sharded' ORDER BY 1")
            self.assertEqual([r[:2] for r in shards], [["0", "done"], ["1", "done"]])
            self.assertEqual(sum(int(r[2]) for r in shards), len(truth))


if __name__ == "__main__":
    unittest.main(verbosity=2)
