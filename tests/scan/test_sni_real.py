#!/usr/bin/env python3
"""Per-name verdicts against real servers, witnessed by `openssl s_client` (issue 9).

Two real MTAs each serve several MX names on one loopback address, choosing the
certificate by the name the client sends in SNI: Postfix with `tls_server_sni_maps`
(exact names and a `.parent` entry), Exim with `tls_certificate` expanded from
${tls_in_sni}. Their certificates cover some names and not others. A DNSSEC-signed zone
on nsd, behind a validating unbound that holds the zone's trust anchor, points many MX
names, two CNAMEs and a multi-address name at the two addresses, with per-name TLSA
records (DANE-EE and DANE-TA; some match, some do not).

`mxsurvey resolve` then `mxsurvey scan` run over the domain list in two orders chosen so
that each address is first reached through a different name, with `--sni needed` and
`--sni all`. Every (MX name, address) verdict (certificate judged, trust, name match,
DANE match) is compared with what `openssl s_client -starttls smtp -servername SNI
-verify_hostname NAME` and `... -dane_tlsa_domain NAME -dane_tlsa_rrdata ...` make of
the same server, SNI being the name the scanner sent on the connection it judged. With
`--sni all` every name is judged on the certificate served to itself, so the stored views
read the same for both orders; with `--sni needed` that holds for DANE (names with TLSA
records are always asked themselves), while a name without TLSA records is judged on the
certificate served to the address's first name (docs/views.md) -- the test checks it is.

Exit 77 (skipped) where Postfix or Exim cannot run."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

import certs
import dns
import exim
import postfix
from pg import PgCluster, private_env

MXS = os.environ["MXS_BIN"]
PF, EX = "127.0.209.1", "127.0.209.2"   # the Postfix and the Exim address
ZONE = "sni.test"


def der(pem):
    return subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True,
                          stdout=subprocess.PIPE).stdout


def spki(pem):
    return subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform DER"
                          % pem, shell=True, check=True, stdout=subprocess.PIPE).stdout


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def common_free_port(addrs):
    """A TCP port free on every address (Postfix and Exim listen on the same port number,
    so one `resolve --port` serves both)."""
    for _ in range(100):
        port = postfix.free_port(addrs[0])
        try:
            for a in addrs[1:]:
                with socket.socket() as s:
                    s.bind((a, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on %s" % addrs)


class World:
    """Certificates, servers and zone. names: {MX name: (addresses, TLSA rrdata list)}."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-sniworld-")
        os.chmod(self.dir, 0o755)   # Postfix's smtpd (user postfix) reads the SNI table
        d = self.dir
        self.ca, ca_key = certs.make_ca(d, name="sni test CA")
        other_ca, _ = certs.make_ca(d, name="another CA", stem="other")
        leaf = {}
        for stem, names in (("pf-default", ["mx.pf.sni.test", "*.hosted.pf.sni.test"]),
                            ("pf-a", ["a.pf.sni.test"]), ("pf-b", ["b.pf.sni.test"]),
                            ("pf-c", ["c.pf.sni.test"]),
                            ("pf-g", ["g.pf.sni.test", "*.g.pf.sni.test"]),
                            ("ex-a", ["a.ex.sni.test"]), ("ex-b", ["b.ex.sni.test"]),
                            ("ex-c", ["c.ex.sni.test"]), ("ex-w", ["*.w.ex.sni.test"])):
            cert, key = certs.make_leaf(d, self.ca, ca_key, names, stem=stem)
            leaf[stem] = (cert, key, cert.replace(".pem", "-chain.pem"))
        self.leaf = leaf
        ca_der = der(self.ca)

        def ee_spki(stem):
            return "3 1 1 " + sha256(spki(leaf[stem][0]))

        # Postfix: the default certificate, and an SNI table built with postmap -F (each
        # value a file holding the key, then the leaf, then the CA)
        pf_sni = {"a.pf.sni.test": "pf-a", "b.pf.sni.test": "pf-b", "c.pf.sni.test": "pf-c",
                  "g.pf.sni.test": "pf-g", ".g.pf.sni.test": "pf-g"}
        conf = os.path.join(d, "postmap")
        os.mkdir(conf)
        open(os.path.join(conf, "main.cf"), "w").close()
        with open(os.path.join(d, "pf-sni"), "w") as f:
            for name, stem in pf_sni.items():
                bundle = os.path.join(d, stem + "-bundle.pem")
                with open(bundle, "w") as b:
                    for part in (leaf[stem][1], leaf[stem][2]):
                        b.write(open(part).read())
                f.write("%s %s\n" % (name, bundle))
        subprocess.run(["postmap", "-c", conf, "-F", "hash:" + os.path.join(d, "pf-sni")],
                       check=True, capture_output=True)
        os.chmod(os.path.join(d, "pf-sni.db"), 0o644)
        self.port = common_free_port([PF, EX])
        self.postfix = postfix.Postfix(
            PF, port=self.port, myhostname="mx.pf.sni.test", ca_dir=d,
            main_cf={"smtpd_tls_cert_file": leaf["pf-default"][2],
                     "smtpd_tls_key_file": leaf["pf-default"][1],
                     "tls_server_sni_maps": "hash:" + os.path.join(d, "pf-sni")}).__enter__()
        try:
            self.exim = exim.Exim(EX, port=self.port, hostname="mx.ex.sni.test", ca_dir=d, sni={
                n: (leaf[s][2], leaf[s][1]) for n, s in (
                    ("a.ex.sni.test", "ex-a"), ("b.ex.sni.test", "ex-b"),
                    ("c.ex.sni.test", "ex-c"), ("m.w.ex.sni.test", "ex-w"))}).__enter__()
        except BaseException:
            self.postfix.__exit__(None, None, None)
            raise
        pf_default = "pf-default"
        # name -> (addresses, TLSA records); the comment says what the name's verdict is
        self.names = {
            "mx.pf.sni.test": ([PF], []),                 # default certificate, its name
            "a.pf.sni.test": ([PF], [ee_spki("pf-a")]),   # own cert by SNI; DANE-EE matches
            "b.pf.sni.test": ([PF], [ee_spki(pf_default)]),  # own cert; TLSA of the default: no
            "c.pf.sni.test": ([PF], ["2 0 1 " + sha256(ca_der)]),  # DANE-TA, name matches
            "d.pf.sni.test": ([PF], ["2 0 1 " + sha256(ca_der)]),  # DANE-TA, default cert: name fails
            "e.pf.sni.test": ([PF], [ee_spki(pf_default)]),  # default cert: DANE-EE ignores the name
            "f.pf.sni.test": ([PF], ["2 1 1 " + sha256(spki(other_ca)),   # other TA: no,
                                     "3 0 1 " + sha256(der(leaf[pf_default][0]))]),  # but this one
            "x.hosted.pf.sni.test": ([PF], []),           # default cert's wildcard
            "mail.cust.sni.test": ([PF], []),             # no certificate names it
            "m.g.pf.sni.test": ([PF], []),                # Postfix's ".g.pf.sni.test" entry
            "mx.ex.sni.test": ([EX], []),
            "a.ex.sni.test": ([EX], [ee_spki("ex-a")]),
            "b.ex.sni.test": ([EX], ["3 0 1 " + sha256(der(leaf["ex-a"][0]))]),  # another cert
            "c.ex.sni.test": ([EX], ["2 1 1 " + sha256(spki(self.ca))]),
            "m.w.ex.sni.test": ([EX], []),                # Exim's SNI entry, wildcard cert
            "nomatch.ex.sni.test": ([EX], []),
            "both.sni.test": ([PF, EX], [ee_spki(pf_default)]),  # matches at PF only
            # MX targets that are CNAMEs: judged under the alias (the name the MX record
            # gives), with the alias's own TLSA records (none), not the target's
            "alias1.sni.test": ([PF], []),                # -> a.pf.sni.test
            "alias2.sni.test": ([EX], []),                # -> m.w.ex.sni.test
        }
        self.aliases = {"alias1.sni.test": "a.pf.sni.test", "alias2.sni.test": "m.w.ex.sni.test"}
        # the expected verdicts when each name is asked itself: (name match, DANE match)
        self.expect = {
            "mx.pf.sni.test": (True, None), "a.pf.sni.test": (True, True),
            "b.pf.sni.test": (True, False), "c.pf.sni.test": (True, True),
            "d.pf.sni.test": (False, False), "e.pf.sni.test": (False, True),
            "f.pf.sni.test": (False, True), "x.hosted.pf.sni.test": (True, None),
            "mail.cust.sni.test": (False, None), "m.g.pf.sni.test": (True, None),
            "mx.ex.sni.test": (True, None), "a.ex.sni.test": (True, True),
            "b.ex.sni.test": (True, False), "c.ex.sni.test": (True, True),
            "m.w.ex.sni.test": (True, None), "nomatch.ex.sni.test": (False, None),
            ("both.sni.test", PF): (False, True), ("both.sni.test", EX): (False, False),
            "alias1.sni.test": (False, None), "alias2.sni.test": (False, None),
        }
        z = dns.Zone(ZONE)
        for name, (addrs, tlsa) in self.names.items():
            rel = name[:-len(ZONE) - 1]
            if name in self.aliases:
                z.add(rel, "CNAME", self.aliases[name] + ".")
                continue
            for a in addrs:
                z.add(rel, "A", a)
            for t in tlsa:
                z.add("_25._tcp." + rel, "TLSA", t)
        # a domain per MX name, one with an MX at each server, two whose MX is a CNAME
        self.domains = []
        for name in self.names:
            if name in self.aliases:
                continue
            dom = "d-" + name[:-len(ZONE) - 1].replace(".", "-")
            z.add(dom, "MX", "10 %s." % name)
            self.domains.append(dom + "." + ZONE)
        z.add("two", "MX", "10 a.pf.sni.test.").add("two", "MX", "20 b.ex.sni.test.")
        z.add("cn1", "MX", "10 alias1.sni.test.").add("cn2", "MX", "10 alias2.sni.test.")
        self.domains += ["two." + ZONE, "cn1." + ZONE, "cn2." + ZONE]
        signed, ds = dns.sign_zone(z, d)
        self.nsd = dns.Nsd({ZONE: signed})
        self.unbound = dns.Unbound({ZONE + ".": "127.0.0.1@%d" % self.nsd.port}, [ds])

    def close(self):
        for stop in (lambda: self.unbound.stop(), lambda: self.nsd.stop(),
                     lambda: self.exim.__exit__(None, None, None),
                     lambda: self.postfix.__exit__(None, None, None)):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                print("stop: %r" % e)
        shutil.rmtree(self.dir, ignore_errors=True)


def s_client(addr, port, sni, name, ca, tlsa=()):
    """openssl s_client against addr:port with SNI sni, judging name (PKIX and the host
    name, or DANE with the given TLSA rrdata). Returns (leaf sha256, verify code)."""
    args = ["openssl", "s_client", "-connect", "%s:%d" % (addr, port), "-starttls", "smtp",
            "-servername", sni, "-CAfile", ca, "-verify_hostname", name]
    if tlsa:
        # RFC 7672 3.1.1: DANE-EE(3) ignores the certificate's names (OpenSSL checks them
        # unless told not to; the scanner follows the RFC)
        args += ["-dane_tlsa_domain", name, "-dane_ee_no_namechecks"]
        for t in tlsa:
            args += ["-dane_tlsa_rrdata", t]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out = p.stdout
    if "-----BEGIN CERTIFICATE-----" not in out:
        raise AssertionError("s_client %s: no certificate\n%s%s" % (" ".join(args), out, p.stderr))
    pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
    leaf = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(),
                          check=True, stdout=subprocess.PIPE).stdout
    codes = [l for l in out.splitlines() if l.strip().startswith("Verify return code:")]
    if not codes:
        raise AssertionError("s_client: no verify result\n" + out)
    return sha256(leaf), int(codes[-1].split(":")[1].split()[0])


class SniReal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = World()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-snireal-")
        cls.witnessed = {}

    @classmethod
    def tearDownClass(cls):
        cls.w.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def resolve(self, domains):
        text = "".join("%d,%s\n" % (i + 1, d) for i, d in enumerate(sorted(self.w.domains)))
        rank = {d: l.split(",")[0] for d, l in zip(sorted(self.w.domains), text.splitlines())}
        text = "".join("%s,%s\n" % (rank[d], d) for d in domains)   # ranks do not depend on order
        p = subprocess.run([MXS, "resolve", "--quiet", "--no-default-blocklist",
                            "--dns-server", "127.0.0.1:%d" % self.w.unbound.port,
                            "--port", str(self.w.port), "--concurrency", "1"],
                           input=text, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def scan(self, lines, mode, *extra, env=None):
        p = subprocess.run([MXS, "scan", "--no-default-blocklist", "--ca-file", self.w.ca,
                            "--ehlo-name", "scanner.sni.test", "--quiet", "--no-transcript",
                            "--sni", mode, *extra], input=lines, capture_output=True, text=True,
                           timeout=300, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        if "-o" in extra:
            with open(extra[extra.index("-o") + 1]) as f:
                return [json.loads(l) for l in f]
        return [json.loads(l) for l in p.stdout.splitlines()]

    @staticmethod
    def pairs(out):
        """(name, ip) -> the verdict record's fields, from result and name lines."""
        v = {}
        for r in out:
            if r["type"] == "result" and r.get("mx"):
                t = r["tls"] or {}
                v[(r["mx"], r["ip"])] = {
                    "probe": "address", "sni": r["mx"], "outcome": r["outcome"],
                    "leaf": t["chain"][0]["sha256"] if t.get("chain") else None,
                    "trusted": t.get("trusted"), "name_match": t.get("name_match"),
                    "dane": t.get("dane")}
            elif r["type"] == "name":
                v[(r["name"], r["ip"])] = {
                    "probe": r["probe"], "sni": r["sni"], "outcome": r["outcome"],
                    "leaf": r["leaf_sha256"], "trusted": r["trusted"],
                    "name_match": r["name_match"], "dane": r["dane"]}
        return v

    def witness(self, addr, sni, name):
        key = (addr, sni, name)
        if key not in self.witnessed:
            tlsa = self.w.names[name][1]
            pkix = s_client(addr, self.w.port, sni, name, self.w.ca)
            dane = s_client(addr, self.w.port, sni, name, self.w.ca, tlsa) if tlsa else None
            self.witnessed[key] = (pkix, dane)
        return self.witnessed[key]

    def check_against_witness(self, pairs, label):
        """Every pair's verdict is what s_client makes of the certificate served to the
        name the scanner sent in SNI, judged for the pair's own name."""
        for (name, ip), v in sorted(pairs.items()):
            what = "%s: %s at %s (probe %s, SNI %s)" % (label, name, ip, v["probe"], v["sni"])
            self.assertEqual(v["outcome"], "success", what)
            (leaf, code), dane = self.witness(ip, v["sni"], name)
            self.assertEqual(v["leaf"], leaf, what + ": not the certificate s_client got")
            # all certificates come from the test CA: 0 = trusted and named, 62 = not named
            self.assertIn(code, (0, 62), what)
            self.assertTrue(v["trusted"], what)
            self.assertEqual(v["name_match"], code == 0, what + ": name match, s_client %d" % code)
            tlsa = self.w.names[name][1]
            if not tlsa:
                self.assertIsNone(v["dane"], what)
                continue
            self.assertIsNotNone(v["dane"], what + ": no DANE verdict")
            self.assertEqual((v["dane"]["tlsa"], v["dane"]["dnssec"]), (len(tlsa), True), what)
            self.assertEqual(v["dane"]["match"], dane[1] == 0,
                             what + ": DANE match, s_client verify code %d" % dane[1])

    def first_names(self, targets):
        first = {}
        for line in targets.splitlines():
            r = json.loads(line)
            if r["type"] == "target":
                first.setdefault(r["ip"], r["mx"])
        return first

    def test_verdicts_witnessed_and_order_free(self):
        w = self.w
        # two orders: each address first reached by a name with its own SNI certificate,
        # then by a name served the default certificate
        head1 = ["d-b-pf.sni.test", "d-m-w-ex.sni.test"]
        head2 = ["d-mx-pf.sni.test", "d-mx-ex.sni.test"]
        rest = sorted(set(w.domains) - set(head1) - set(head2))
        orders = [head1 + rest + head2, head2 + list(reversed(rest)) + head1]
        resolved = [self.resolve(o) for o in orders]
        firsts = [self.first_names(r) for r in resolved]
        self.assertEqual(firsts[0], {PF: "b.pf.sni.test", EX: "m.w.ex.sni.test"})
        self.assertEqual(firsts[1], {PF: "mx.pf.sni.test", EX: "mx.ex.sni.test"})
        every = {(n, a) for n, (addrs, _) in w.names.items() for a in addrs}
        with PgCluster() as pg:
            env = private_env(self.tmp)
            got = {}
            for mode in ("all", "needed"):
                for i, lines in enumerate(resolved):
                    label = "%s-%d" % (mode, i)
                    out = self.scan(lines, mode, "--db", pg.url, "--label", label,
                                    "-o", os.path.join(self.tmp, label + ".jsonl"), env=env)
                    pairs = self.pairs(out)
                    self.assertEqual(set(pairs), every, label)
                    self.check_against_witness(pairs, label)
                    for (name, ip), v in pairs.items():
                        own = mode == "all" or w.names[name][1]
                        self.assertEqual(v["sni"], name if own else firsts[i][ip],
                                         "%s: SNI sent for %s" % (label, name))
                        if own:   # asked itself: the verdict the world was built to give
                            want = w.expect.get((name, ip), w.expect.get(name))
                            self.assertEqual((v["name_match"], v["dane"] and v["dane"]["match"]),
                                             want, "%s: %s at %s" % (label, name, ip))
                    got[label] = pairs
                    sid = pg.scalar("SELECT id FROM scans WHERE label = '%s'" % label)
                    got[label, "db"] = sid
            self.compare_views(pg, got)
        # needed mode: a name without TLSA records took the first name's certificate, so
        # the same name got different verdicts in the two orders (the documented exception)
        diff = sorted(k for k in got["needed-0"]
                      if got["needed-0"][k]["name_match"] != got["needed-1"][k]["name_match"])
        print("needed: name verdicts that depend on the first name: %s" % diff)
        self.assertTrue(diff)
        self.assertFalse([k for k in diff if w.names[k[0]][1]], "a name with TLSA records")

    def compare_views(self, pg, got):
        views = ("v_rates", "v_funnel", "v_cert_outcomes", "v_starttls_support")

        def read(sid, where=""):
            res = {}
            for v in views:
                rows = pg.query("SELECT * FROM %s WHERE scan_id = %s %s" % (
                    v, sid, where if v == "v_rates" else ""))
                res[v] = sorted(tuple(row[1:]) for row in rows)
            return res

        def pair_rows(sid, tlsa_only):
            rows = pg.query("SELECT name, host(ip), encode(leaf_sha256, 'hex'), trusted, name_match,"
                            " dane_match"
                            " FROM v_name_verdicts WHERE scan_id = %s" % sid)
            return sorted(tuple(r) for r in rows if not tlsa_only or self.w.names[r[0]][1])

        a0, a1 = got["all-0", "db"], got["all-1", "db"]
        self.assertEqual(pair_rows(a0, False), pair_rows(a1, False))
        self.assertEqual(len(pair_rows(a0, False)), 20)
        r0, r1 = read(a0), read(a1)
        for v in r0:
            self.assertEqual(r0[v], r1[v], "--sni all: %s differs with the input order" % v)
        # the stored pairs are the ones the scanner wrote (and s_client witnessed)
        for name, ip, leaf, trusted, nm, dm in pair_rows(a0, False):
            v = got["all-0"][(name, ip)]
            self.assertEqual((leaf, trusted, nm), (v["leaf"], "t" if v["trusted"] else "f",
                                                  "t" if v["name_match"] else "f"), name)
            self.assertEqual(dm, None if v["dane"] is None else ("t" if v["dane"]["match"] else "f"))
        # the figures the world was built to give (--sni all): 20 domains, MX level 17 names
        def rate(sid, metric, level, rule):
            return pg.query("SELECT n_denom, n FROM v_rates WHERE scan_id = %s AND metric = '%s'"
                            " AND level = '%s' AND rule = '%s' AND bucket = 'all'"
                            % (sid, metric, level, rule))

        # names matching their own certificate: mx, a, b, c, x.hosted, m.g (PF),
        # mx, a, b, c, m.w (EX): 11 of 19 (the aliases do not match); domains: their 11 and
        # two (a.pf) = 12 of 20
        self.assertEqual(rate(a0, "cert_valid", "mx", "any"), [["19", "11"]])
        self.assertEqual(rate(a0, "cert_valid", "domain", "any_mx"), [["20", "12"]])
        # DANE per name: a, c, e, f (PF), a, c (EX), both (at PF) match; b, d (PF), b (EX) not
        self.assertEqual(rate(a0, "dane_match", "mx", "any"), [["10", "7"]])
        # needed: the DANE figures and the pairs with TLSA records read the same in both orders
        n0, n1 = got["needed-0", "db"], got["needed-1", "db"]
        self.assertEqual(pair_rows(n0, True), pair_rows(n1, True))
        self.assertEqual(pair_rows(n0, True), pair_rows(a0, True))
        dane = "AND metric = 'dane_match'"
        self.assertEqual(read(n0, dane)["v_rates"], read(n1, dane)["v_rates"])
        self.assertEqual(read(n0, dane)["v_rates"], read(a0, dane)["v_rates"])
        # mxs_rates_live, which computes these, runs without JIT (its plan compiled slowly)
        self.assertIn("jit=off", pg.scalar("SELECT array_to_string(proconfig, ',') FROM pg_proc"
                                           " WHERE proname = 'mxs_rates_live'").split(","))


if __name__ == "__main__":
    for reason in (postfix.available(), exim.available()):
        if reason:
            print("SKIP: %s" % reason)
            sys.exit(77)
    unittest.main(verbosity=2)
