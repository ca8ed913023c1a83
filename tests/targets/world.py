"""The test world of the resolve tests: zones on nsd (one DNSSEC-signed), a validating
unbound in front of it, a stub zone whose server drops every packet, and an HTTPS server
for MTA-STS policies with a test CA. Every case in docs/targets.md has a name here."""
import os
import shutil
import subprocess
import sys
import tempfile

import dns
import mtasts

TLSA_HEX = "8bd1da95272f7fa4ffb24137fc0ed03aae67e5c4d8b3c50734e1050a7920b922"
STS_TXT = "v=STSv1; id=20240101T000000;"


def policy(mx, mode="enforce", max_age=604800):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


def mxs_zone():
    z = dns.Zone("mxs.test")
    # several MX with preferences; one host with A+AAAA, one blocked by a user list
    z.add("multi", "MX", "20 mx2.mxs.test.").add("multi", "MX", "10 mx1.mxs.test.")
    z.add("mx1", "A", "192.0.2.11").add("mx1", "AAAA", "2001:db8::11")
    z.add("mx2", "A", "192.0.2.12")
    # a provider MX shared by many domains, with several A and AAAA
    for i in range(1, 31):
        z.add("s%d" % i, "MX", "10 mx.provider.mxs.test.")
    for a in ("192.0.2.22", "192.0.2.21"):
        z.add("mx.provider", "A", a)
    for a in ("2001:db8::22", "2001:db8::21"):
        z.add("mx.provider", "AAAA", a)
    z.add("nullmx", "MX", "0 .")
    z.add("implicit", "A", "192.0.2.31")
    z.txt("nodata", "exists but has neither MX nor address")
    z.add("cname", "MX", "10 alias.mxs.test.")
    z.add("alias", "CNAME", "real.mxs.test.").add("real", "A", "192.0.2.41")
    z.add("noaddr", "MX", "10 ghost.mxs.test.")
    z.add("dane-insecure", "MX", "10 mx-dane.mxs.test.").add("mx-dane", "A", "192.0.2.42")
    z.add("_25._tcp.mx-dane", "TLSA", "3 1 1 " + TLSA_HEX)
    z.add("_25._tcp.mx-dane", "TLSA", "2 0 1 " + TLSA_HEX[::-1])
    # MTA-STS and TLSRPT
    for d in ("sts", "stsbad", "stscert", "sts404", "ststype", "stsnoaddr"):
        z.txt("_mta-sts." + d, STS_TXT)
        z.add(d, "MX", "10 mx.%s.mxs.test." % d).add("mx." + d, "A", "192.0.2.51")
        if d != "stsnoaddr":
            z.add("mta-sts." + d, "A", "127.0.0.1")
    z.txt("_smtp._tls.sts", "v=TLSRPTv1; rua=mailto:tls@sts.mxs.test,https://r.mxs.test/x")
    z.txt("_mta-sts.stsinvalid", "v=STSv1; id=bad-id!;").add("stsinvalid", "MX", "10 mx1.mxs.test.")
    z.txt("_mta-sts.stsmulti", "v=STSv1; id=1;").txt("_mta-sts.stsmulti", "v=STSv1; id=2;")
    z.txt("_mta-sts.stsmulti", "unrelated text").add("stsmulti", "MX", "10 mx1.mxs.test.")
    z.txt("_smtp._tls.rptbad", "v=TLSRPTv1; rua=ftp://r.mxs.test").add("rptbad", "MX", "10 mx1.mxs.test.")
    return z


def signed_zone():
    z = dns.Zone("signed.test")
    z.add("@", "MX", "10 mx.signed.test.").add("mx", "A", "192.0.2.61")
    z.add("_25._tcp.mx", "TLSA", "3 1 1 " + TLSA_HEX)
    z.add("nomx", "A", "192.0.2.62")
    return z


class World:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-world-")
        signed, ds = dns.sign_zone(signed_zone(), self.dir)
        self.nsd = dns.Nsd({"mxs.test": mxs_zone().text(), "signed.test": signed})
        self.silent = dns.SilentUdp()
        up = "127.0.0.1@%d" % self.nsd.port
        self.unbound = dns.Unbound({"mxs.test.": up, "signed.test.": up,
                                    "dead.test.": "127.0.0.1@%d" % self.silent.port}, [ds])
        self.ca = mtasts.TestCA(self.dir)
        names = ["mta-sts.%s.mxs.test" % d for d in ("sts", "stsbad", "sts404", "ststype")]
        good = self.ca.issue("policy", names)
        wrong = self.ca.issue("wrong", ["www.example.test"])
        R = mtasts.Route
        self.https = mtasts.PolicyServer(good, {
            "mta-sts.sts.mxs.test": R(policy(["mx.sts.mxs.test"])),
            "mta-sts.stsbad.mxs.test": R(policy(["*.other.test", "mx.sts.mxs.test"], "testing", 86400),
                                         chunked=True),
            "mta-sts.stscert.mxs.test": R(policy(["mx.stscert.mxs.test"]), cert=wrong),
            "mta-sts.ststype.mxs.test": R(policy(["mx.ststype.mxs.test"]), content_type="text/html"),
        })
        self.dns_server = "127.0.0.1:%d" % self.unbound.port

    def args(self, *extra):
        """Common resolve arguments: this world's resolver, its CA and policy port."""
        return ["--dns-server", self.dns_server, "--mta-sts-ca-file", self.ca.cert,
                "--mta-sts-port", str(self.https.port), "--timeout", "0.3", "--retries", "1",
                "--mta-sts-timeout", "3", "--quiet", *extra]

    def stop(self):
        for s in (self.https, self.unbound, self.silent, self.nsd):
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_resolve(args, stdin_text):
    mxs = os.environ.get("MXS_BIN", "mxsurvey")
    p = subprocess.run([mxs, "resolve", *args], input=stdin_text, capture_output=True, text=True,
                       timeout=120)
    return p


class Checker:
    """Counts checks and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = self.failed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s\n  got:  %r\n  want: %r" % (what, got, want), flush=True)

    def true(self, what, cond, detail=""):
        self.eq(what + (" " + detail if detail else ""), bool(cond), True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
