"""
Thousands of distinct fleet hosts with the seeded realistic mix, scanned at once: every
record matches the ground truth, and no target is missing or doubled.
"""
import collections
import os
import unittest

from fleet import Fleet
from scanrun import compare_truth, fleet_args, scan, targets_for

RANGE = "127.1.0.0/20"  # 4,096 addresses


class ScanScale(unittest.TestCase):
    def test_4096_hosts_match_truth(self):
        with Fleet(os.environ["MXS_BUILD"], seed=7, delay_ms=500) as fleet:
            truth = {t["ip"]: t for t in fleet.truth(RANGE)}
            # 400 in flight keeps two cores (fleet and scanner, maybe under ASan) from being
            # so busy that a handshake stalls past its timeout: this test is about
            # correctness at scale; bench/ measures speed.
            recs, err, rc = scan(fleet_args(fleet, "--concurrency", "400", "--per-net", "100000",
                                            "--greeting-timeout", "4s", "--timeout", "6s",
                                            "--handshake-timeout", "8s", "--deadline", "12s",
                                            "--retries", "1", "--retry-delay", "200ms",
                                            "--no-transcript", "--seed", "1"),
                                 targets_for(sorted(truth)))
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(recs), len(truth))
        ips = collections.Counter(r["ip"] for r in recs)
        self.assertEqual(set(ips), set(truth))
        self.assertEqual(max(ips.values()), 1)
        diffs = []
        for r in recs:
            diffs += compare_truth(r, truth[r["ip"]])
            self.assertNotIn("transcript", r)
        self.assertEqual(diffs, [], "\n".join(diffs[:40]))
        outcomes = collections.Counter(r["outcome"] for r in recs)
        # the mix is mostly STARTTLS hosts, with a minority of everything else
        self.assertGreater(outcomes["success"], len(recs) // 2)
        self.assertGreater(len(outcomes), 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
