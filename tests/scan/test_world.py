"""
bench/survey on a small generated world (2,000 domains): nsd serves the world's zones,
the fleet serves its seeded mix, `mxsurvey survey` stores everything in PostgreSQL, and
every checked view must equal what bench/world.py computed from the world and the
fleet's ground truth. The world goes into a private cache (not bench/cache/).
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("MXS_SRC") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MXS_BUILD") or os.path.join(SRC, "build")


class World(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxs-test-world-")
        out = os.path.join(cls.tmp.name, "result.json")
        p = subprocess.run([sys.executable, os.path.join(SRC, "bench", "survey"), "--domains", "2000",
                            "--seed", "3", "--build", BUILD, "--cache", os.path.join(cls.tmp.name, "cache"),
                            "--quiet", "--json", out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        cls.output = p.stdout
        cls.status = p.returncode
        if not os.path.exists(out):
            raise AssertionError("bench/survey wrote no result (exit %d):\n%s" % (p.returncode, p.stdout[-4000:]))
        with open(out) as f:
            cls.r = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_target_has_a_result_row(self):
        r = self.r
        self.assertEqual(r["exit"], 0, self.output)
        self.assertEqual(r["targets_read"], r["rows_stored"], self.output)
        self.assertEqual(r["results"], r["expected_results"], self.output)
        self.assertGreater(r["handshakes"], 0)

    def test_views_match_the_world(self):
        bad = {v: x["detail"] for v, x in self.r["views"].items() if x["differ"]}
        self.assertEqual(bad, {}, self.output)
        for v in ("v_outcomes", "v_funnel", "v_starttls_support", "v_cert_outcomes", "v_tls_versions",
                  "v_forward_secrecy", "v_legacy_exposure", "v_rank_bucket_summary", "domains.status",
                  "v_mail_domains", "v_provider_concentration"):
            self.assertIn(v, self.r["views"])
            self.assertGreater(self.r["views"][v]["rows"], 0, v)


if __name__ == "__main__":
    unittest.main(verbosity=2)
