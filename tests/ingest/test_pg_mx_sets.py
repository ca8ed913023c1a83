"""Rows of a night that repeat the night before (migration 0018): a domain's MX list is a
set stored once for all scans (mxs_mx_sets, mxs_mx_set_rows; scan_mx is a view), and a
result row whose mx_names is [mx], or whose tls.matched_names is mx_names, stores a flag
instead of the array. domain_mx and results show every value as it was sent; a second
scan of the same lines adds no set; concurrent ingests of the same lists store each set
once and fail on none."""
import os
import subprocess
import unittest

from pg import MigratedClusterCase
from pgrecords import domain, result, smtp_result, tls, write_jsonl

MXS = os.environ["MXS_BIN"]

def domains(n=40, tag=""):
    prov = [("mx1.provider%s.example" % tag, 10, ["192.0.2.1", "192.0.2.2"]),
            ("mx2.provider%s.example" % tag, 20, ["192.0.2.3"])]
    tlsa = [{"usage": 3, "selector": 1, "mtype": 1, "data": "ab"}]
    out = []
    for i in range(n):
        name = "d%d%s.example" % (i, tag)
        if i % 10 == 9:
            out.append(domain(name, rank=i + 1, mx=[]))                 # no MX
        elif i % 3 == 0:
            out.append(domain(name, rank=i + 1, mx=[("mx.%s" % name, 10, ["198.51.100.%d" % i])]))
        elif i % 3 == 1:
            out.append(domain(name, rank=i + 1, mx=prov))              # a provider's list
        else:
            # the provider's hosts with other preferences, a TLSA record, a CNAME and a
            # duplicate host (stored once, as before)
            out.append(domain(name, rank=i + 1, dnssec=True, mx=[
                ("mx2.provider%s.example" % tag, 5, ["192.0.2.3"], tlsa),
                {"host": "MX1.Provider%s.Example." % tag, "pref": 5,
                 "cname": "mx1.provider%s.example" % tag, "status": "ok",
                 "addrs": ["192.0.2.1", "2001:db8::1"], "tlsa": None, "tlsa_dnssec": None,
                 "tlsa_status": "skipped"},
                ("mx2.provider%s.example" % tag, 5, ["192.0.2.3"], tlsa)]))
    return out


def results():
    out = []
    for i in range(12):
        ip = "203.0.113.%d" % (i + 1)
        mx = "mx%d.example" % i
        if i % 4 == 0:
            out.append(result(ip, "connection-refused", mx=mx, domains=["d%d.example" % i]))
        elif i % 4 == 1:       # matched_names is mx_names
            out.append(smtp_result(ip, "success", mx=mx, starttls_code=220,
                                   tls_info=tls(matched=[mx]), domains=["d%d.example" % i]))
        elif i % 4 == 2:       # the certificate does not name the host
            out.append(smtp_result(ip, "success", mx=mx, starttls_code=220,
                                   tls_info=tls(matched=[], name_match=False)))
        else:                  # mx_names other than [mx]
            rec = smtp_result(ip, "success", mx=mx, starttls_code=220,
                              tls_info=tls(matched=["other.example", mx]))
            rec["mx_names"] = ["other.example", mx] if i != 11 else ["x\\y.example"]
            if i == 11:
                rec["mx"] = "x\\y.example"
                rec["tls"]["matched_names"] = ["x\\y.example"]
            out.append(rec)
    out.append(result("203.0.113.200", "connection-refused", mx=None))   # no mx, []
    return out


class MxSets(MigratedClusterCase):
    tmp_prefix = "mxs-sets-"

    def counts(self):
        return [int(self.pg.scalar("SELECT count(*) FROM %s" % t))
                for t in ("mxs_mx_sets", "mxs_mx_set_rows")]

    def test_sets_stored_once(self):
        path = os.path.join(self.tmp, "sets.jsonl")
        recs = domains()
        write_jsonl(path, recs + results())
        before = self.counts()
        r = self.ingest(path, "--label", "sets-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        s1 = self.scan("sets-1")
        # the lists: one per self-hosted domain, the provider's, the provider's variant;
        # their hosts (a duplicate host once, as before)
        added = [a - b for a, b in zip(self.counts(), before)]
        self.assertEqual(added, [12 + 1 + 1, 12 + 2 + 2])
        self.assertEqual(self.pg.scalar("SELECT relkind FROM pg_class WHERE relname = 'scan_mx'"), "v")
        # domain_mx shows what each line sent
        want = set()
        for d in recs:
            seen = set()
            for m in d["mx"]:
                if m["host"] in seen:
                    continue
                seen.add(m["host"])
                want.add((d["domain"], m["host"], str(m["pref"]), m["cname"],
                          "{%s}" % ",".join(m["addrs"]), m["tlsa_status"]))
        got = {tuple(row) for row in self.pg.query(
            "SELECT domain, host, pref, cname, addrs, tlsa_status FROM domain_mx WHERE scan_id = %s"
            % s1)}
        self.assertEqual(got, want)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM domains WHERE scan_id = %s" % s1), "40")
        self.assertEqual(self.pg.scalar(
            "SELECT count(*) FROM scan_domains WHERE scan_id = %s AND mx_set_id IS NULL" % s1), "4")
        # a second night of the same lines adds no set, and shows the same rows
        mid = self.counts()
        r = self.ingest(path, "--label", "sets-2")
        self.assertEqual(r.returncode, 0, r.stderr)
        s2 = self.scan("sets-2")
        self.assertEqual(self.counts(), mid)
        for rel in ("domain_mx", "domains", "results"):
            cols = self.pg.scalar("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) "
                                  "FROM pg_attribute WHERE attrelid = '%s'::regclass AND attnum > 0 "
                                  "AND NOT attisdropped AND attname <> 'scan_id'" % rel)
            for a, b in ((s1, s2), (s2, s1)):
                self.assertEqual(self.pg.scalar(
                    "SELECT count(*) FROM ((SELECT {c} FROM {r} WHERE scan_id = {a}) EXCEPT ALL "
                    "(SELECT {c} FROM {r} WHERE scan_id = {b})) x".format(c=cols, r=rel, a=a, b=b)),
                    "0", rel)

    def test_names_flags(self):
        path = os.path.join(self.tmp, "names.jsonl")
        recs = results()
        write_jsonl(path, recs)
        r = self.ingest(path, "--label", "names-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.scan("names-1")
        shown = {row[0]: tuple(row[1:]) for row in self.pg.query(
            "SELECT host(ip), mx_names, tls_matched_names FROM results WHERE scan_id = %s" % s)}

        def arr(v):
            return None if v is None else "{%s}" % ",".join(
                '"%s"' % x.replace("\\", "\\\\") if "\\" in x else x for x in v)
        for rec in recs:
            tls_names = rec["tls"]["matched_names"] if rec.get("tls") else None
            self.assertEqual(shown[rec["ip"]], (arr(rec["mx_names"]), arr(tls_names)), rec["ip"])
        stored = {row[0]: tuple(row[1:]) for row in self.pg.query(
            "SELECT host(ip), mx_names IS NULL, mx_names_is_mx, tls_matched_names IS NULL,"
            " matched_is_mx_names FROM result_rows WHERE scan_id = %s" % s)}
        self.assertEqual(stored["203.0.113.1"], ("t", "t", "t", None))        # [mx], no TLS
        self.assertEqual(stored["203.0.113.2"], ("t", "t", "t", "t"))        # matched = [mx]
        self.assertEqual(stored["203.0.113.3"], ("t", "t", "f", None))        # matched []
        self.assertEqual(stored["203.0.113.4"], ("f", None, "t", "t"))       # [other, mx] twice
        self.assertEqual(stored["203.0.113.12"], ("f", None, "f", None))     # escaped: as is
        self.assertEqual(stored["203.0.113.200"], ("f", None, "t", None))    # [], no mx

    def test_concurrent_ingests(self):
        """Four ingests of the same new lists at once: each set stored once, none fails."""
        path = os.path.join(self.tmp, "conc.jsonl")
        write_jsonl(path, domains(200, tag="c"))
        before = self.counts()
        procs = [subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--label", "conc-%d" % i,
                                   path], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        after = self.counts()
        # 60 self-hosted lists, the provider's and its variant
        self.assertEqual(after[0] - before[0], 62)
        self.assertEqual(self.pg.scalar(
            "SELECT count(DISTINCT (d.domain_id, d.mx_set_id)) FROM scan_domains d "
            "JOIN scans s ON s.id = d.scan_id WHERE s.label LIKE 'conc-%'"), "200")
        for i in range(4):
            self.assertEqual(self.pg.scalar(
                "SELECT count(*) FROM domain_mx WHERE scan_id = %s" % self.scan("conc-%d" % i)),
                str(sum(len({m["host"] for m in d["mx"]}) for d in domains(200, tag="c"))))


if __name__ == "__main__":
    unittest.main()
