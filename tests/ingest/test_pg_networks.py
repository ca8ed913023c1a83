"""
The network of each address (v_addr_network, read by findings and the report's network
sections) against a longest-prefix match computed here with Python's ipaddress: a set of
randomly nested customer networks and routes in IPv4 and IPv6, with the edge cases of the
range table that answers the lookup (migration 0008: prefixes cut into disjoint ranges):
prefixes sharing a first address, adjacent prefixes, 0.0.0.0/0 and ::/0, the last address
of each family, host routes. The ranges follow every change of the networks table
(insert, update, delete), and every set is kept apart.
"""
import ipaddress
import os
import random
import subprocess
import tempfile
import unittest

from pg import PgCluster
from pgfleet import night1_domains, night1_results
from pgrecords import result, write_jsonl

MXS = os.environ["MXS_BIN"]

EDGE_NAMED = ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "10.0.0.0/24", "10.0.0.0/32",
              "10.0.1.0/24", "10.0.2.0/23", "10.255.255.255/32", "255.255.255.0/24",
              "255.255.255.255/32", "2001:db8::/32", "2001:db8::/48", "2001:db8:0:1::/64",
              "ffff:ffff:ffff:ffff::/64", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]
EDGE_ROUTES = ["10.0.0.0/12", "10.0.0.0/9", "192.0.2.0/24", "::/0", "2001:db8::/33"]
EDGE_ADDRS = ["0.0.0.0", "9.255.255.255", "10.0.0.0", "10.0.0.1", "10.0.0.255", "10.0.1.0",
              "10.0.1.255", "10.0.2.0", "10.0.3.255", "10.0.4.0", "10.0.255.255", "10.1.0.0",
              "10.255.255.254", "10.255.255.255", "11.0.0.0", "192.0.2.1", "255.255.254.255",
              "255.255.255.0", "255.255.255.254", "255.255.255.255", "::", "::1",
              "2001:db8::", "2001:db8::1", "2001:db8:0:1::5", "2001:db8:0:2::", "2001:db8:1::",
              "2001:db8:8000::", "2001:db9::", "ffff:ffff:ffff:ffff::1",
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]


def random_prefixes(rnd, n, v6=False):
    out = set()
    while len(out) < n:
        if v6:
            ln = rnd.choice((40, 48, 56, 64, 96, 120, 128))
            base = (0x20010db8 << 96) + rnd.randrange(1 << 20) * (1 << 80) + rnd.randrange(1 << 16)
            out.add(str(ipaddress.ip_network((base, ln), strict=False)))
        else:
            ln = rnd.choice((12, 16, 20, 22, 24, 24, 26, 28, 30, 32))
            base = (10 << 24) + rnd.randrange(1 << 16) * 256 + rnd.randrange(256)
            out.add(str(ipaddress.ip_network((base, ln), strict=False)))
    return sorted(out)


class Longest:
    """Longest-prefix match by brute force: the address masked to each length in use."""

    def __init__(self, prefixes):
        self.nets = {}
        for p in prefixes:
            n = ipaddress.ip_network(p)
            self.nets[(n.version, n.prefixlen, int(n.network_address))] = p
        self.lens = sorted({(v, ln) for v, ln, _ in self.nets}, key=lambda x: -x[1])

    def __call__(self, addr):
        a = ipaddress.ip_address(addr)
        bits = a.max_prefixlen
        for v, ln in self.lens:
            if v == a.version:
                mask = ((1 << ln) - 1) << (bits - ln)
                p = self.nets.get((v, ln, int(a) & mask))
                if p:
                    return p
        return None


class NetworkLookup(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        rnd = random.Random(13)
        cls.named = EDGE_NAMED + random_prefixes(rnd, 300) + random_prefixes(rnd, 120, v6=True)
        cls.routes = EDGE_ROUTES + random_prefixes(rnd, 60) + random_prefixes(rnd, 30, v6=True)
        cls.named = sorted(set(cls.named))
        cls.routes = sorted(set(cls.routes))
        addrs = set(EDGE_ADDRS)
        for p in cls.named + cls.routes:   # around every boundary
            n = ipaddress.ip_network(p)
            for a in (n.network_address, n.broadcast_address):
                for d in (-1, 0, 1):
                    try:
                        addrs.add(str(a + d))
                    except ipaddress.AddressValueError:
                        pass
        for _ in range(400):
            addrs.add(str(ipaddress.ip_address((10 << 24) + rnd.randrange(1 << 24))))
        cls.addrs = sorted(addrs)
        cls.tmp = tempfile.mkdtemp(prefix="mxs-nets-")
        cls.pg = PgCluster().__enter__()
        nets = os.path.join(cls.tmp, "networks.txt")
        with open(nets, "w") as f:
            for i, p in enumerate(cls.named):
                f.write("%s,net %d,contact %d\n" % (p, i, i))
            for i, p in enumerate(cls.routes):
                f.write("%s %d\n" % (p, 64500 + i))
        cls.mxs("db", "--db", cls.pg.url, "networks", nets)
        recs = os.path.join(cls.tmp, "results.jsonl")
        write_jsonl(recs, [result(a, "connection-refused") for a in cls.addrs])
        cls.mxs("ingest", "-q", "--db", cls.pg.url, "--label", "nets", recs)
        cls.sid = cls.pg.scalar("SELECT id FROM scans WHERE label = 'nets'")

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)

    @staticmethod
    def mxs(*args):
        r = subprocess.run([MXS] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r

    def expected(self, named, routes):
        ni = {p: i for i, p in enumerate(self.named)}
        ri = {p: i for i, p in enumerate(self.routes)}
        want = {}
        ln, lr = Longest(named), Longest(routes)
        for a in self.addrs:
            n, r = ln(a), lr(a)
            net = "net %d" % ni[n] if n else ("AS%d" % (64500 + ri[r]) if r else None)
            want[a] = (net, n or r, "contact %d" % ni[n] if n else None,
                       str(64500 + ri[r]) if r else None)
        return want

    def got(self):
        rows = self.pg.query("SELECT host(ip), network, prefix::text, contact, asn::text"
                             " FROM v_addr_network WHERE scan_id = %s" % self.sid)
        return {r[0]: tuple(r[1:]) for r in rows}

    def test_longest_prefix_of_every_address(self):
        self.assertEqual(len(self.addrs), int(self.pg.scalar(
            "SELECT count(*) FROM results WHERE scan_id = %s" % self.sid)))
        self.assertEqual(self.got(), self.expected(self.named, self.routes))

    def test_ranges_follow_changes_and_sets_stay_apart(self):
        set_id = self.pg.scalar("SELECT network_set_id FROM scans WHERE id = %s" % self.sid)
        # a second set that no scan uses must not change the first one's answers
        self.pg.execute("INSERT INTO network_sets (source) VALUES ('other');"
                        " INSERT INTO networks (set_id, kind, prefix, name)"
                        " SELECT max(id), 'named', '10.0.0.0/8', 'other' FROM network_sets")
        self.assertEqual(self.got(), self.expected(self.named, self.routes))
        drop = ["10.0.0.0/16", "0.0.0.0/0", "2001:db8::/48"]
        try:
            self.pg.execute("DELETE FROM networks WHERE set_id = %s AND kind = 'named'"
                            " AND prefix IN (%s)" % (set_id, ", ".join("'%s'" % p for p in drop)))
            named = [p for p in self.named if p not in drop]
            self.assertEqual(self.got(), self.expected(named, self.routes))
            self.pg.execute("UPDATE networks SET prefix = '10.0.0.0/14' WHERE set_id = %s"
                            " AND kind = 'route' AND prefix = '10.0.0.0/12'" % set_id)
            routes = sorted(set(self.routes) - {"10.0.0.0/12"} | {"10.0.0.0/14"})
            i = self.routes.index("10.0.0.0/12")
            got = self.got()
            self.routes[i] = "10.0.0.0/14"   # same line, same name and AS
            try:
                self.assertEqual(got, self.expected(named, routes))
            finally:
                self.routes[i] = "10.0.0.0/12"
        finally:
            self.pg.execute("UPDATE networks SET prefix = '10.0.0.0/12' WHERE set_id = %s"
                            " AND kind = 'route' AND prefix = '10.0.0.0/14'" % set_id)
            for p in drop:
                i = self.named.index(p)
                self.pg.execute("INSERT INTO networks (set_id, kind, prefix, name, contact)"
                                " VALUES (%s, 'named', '%s', 'net %d', 'contact %d')" % (set_id, p, i, i))
        self.assertEqual(self.got(), self.expected(self.named, self.routes))


class StoredNetworkFigures(unittest.TestCase):
    """The per-network figures of a scan (v_network_findings, v_tampering_by_network) are
    stored when the scan is rolled up and read from there; they follow a change of the
    scan's network set or of its networks (then computed again until the next rollup)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxs-netfig-")
        cls.pg = PgCluster().__enter__()
        cls.nets1 = os.path.join(cls.tmp, "nets1.txt")
        with open(cls.nets1, "w") as f:
            f.write("192.0.2.0/28,low,noc-low\n192.0.2.0/24 64500\n")
        cls.nets2 = os.path.join(cls.tmp, "nets2.txt")
        with open(cls.nets2, "w") as f:
            f.write("192.0.2.8/29,eight,noc-eight\n198.51.100.0/24,doc,noc-doc\n")
        NetworkLookup.mxs("db", "--db", cls.pg.url, "networks", cls.nets1)
        recs = os.path.join(cls.tmp, "night1.jsonl")
        write_jsonl(recs, night1_results() + night1_domains())
        NetworkLookup.mxs("ingest", "-q", "--db", cls.pg.url, "--label", "n1", recs)
        cls.sid = cls.pg.scalar("SELECT id FROM scans WHERE label = 'n1'")

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)

    def rows(self, sql):
        return sorted(tuple(r) for r in self.pg.query(sql % {"s": self.sid}))

    def view(self):
        return self.rows("SELECT network, contact, addresses, with_problems, critical, high,"
                         " medium, problems FROM v_network_findings WHERE scan_id = %(s)s")

    def live(self):
        return self.rows("SELECT * FROM mxs_network_findings_live(%(s)s)")

    def stored(self):
        return self.rows("SELECT network, contact, addresses, with_problems, critical, high,"
                         " medium, problems FROM scan_network_findings WHERE scan_id = %(s)s")

    def tampering(self):
        return self.rows("SELECT network, n_smtp, n_mangled, n_echo, n_injection, n_any"
                         " FROM v_tampering_by_network WHERE scan_id = %(s)s")

    def test_stored_at_rollup_and_dropped_when_networks_change(self):
        tamper = [("192.0.2.0/24", "9", "1", "1", "0", "2"), ("198.51.100.0/24", "1", "0", "0", "1", "1")]
        before = self.view()   # computed: the scan is not rolled up
        self.assertEqual([r[0] for r in before], ["(no network)", "AS64500", "low"])
        self.assertEqual(sum(int(r[2]) for r in before), 17)
        self.assertEqual(self.tampering(), tamper)
        self.assertEqual(self.stored(), [])
        NetworkLookup.mxs("db", "--db", self.pg.url, "rollup", str(self.sid))
        self.assertEqual(self.stored(), before)
        self.assertEqual(self.view(), before)
        self.assertEqual(self.rows("SELECT network::text, n_smtp, n_mangled, n_echo, n_injection,"
                                   " n_any FROM scan_tampering_networks WHERE scan_id = %(s)s"), tamper)
        self.assertEqual(self.tampering(), tamper)
        # another set for the scan: grouped by it, not by the stored figures
        NetworkLookup.mxs("db", "--db", self.pg.url, "networks", self.nets2, "--scan", str(self.sid))
        after = self.view()
        self.assertEqual([r[0] for r in after], ["(no network)", "doc", "eight"])
        self.assertEqual(after, self.live())
        self.assertEqual(self.tampering(), tamper)
        NetworkLookup.mxs("db", "--db", self.pg.url, "rollup", str(self.sid))
        self.assertEqual(self.stored(), after)
        # a change of the set's networks drops the stored figures
        self.pg.execute("DELETE FROM networks WHERE name = 'eight'")
        self.assertEqual(self.stored(), [])
        changed = self.view()
        self.assertEqual([r[0] for r in changed], ["(no network)", "doc"])
        self.assertEqual(changed, self.live())
        self.assertEqual(self.tampering(), tamper)


if __name__ == "__main__":
    unittest.main()
