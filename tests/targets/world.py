"""The test world of the resolve tests: zones on nsd (one DNSSEC-signed), a validating
unbound in front of it, a stub zone whose server drops every packet, and nginx serving
the MTA-STS policies with certificates from a test CA (tests/lib/webservers.py). Every
case in docs/targets.md has a name here."""
import os
import shutil
import subprocess
import sys
import tempfile

import certs
import dns
import webservers

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
        os.chmod(self.dir, 0o755)  # nginx's workers (nobody when root) read the policies
        ca, ca_key = certs.make_ca(self.dir)
        self.ca_cert = ca
        names = ["mta-sts.%s.mxs.test" % d for d in ("sts", "stsbad", "sts404", "ststype")]
        good = certs.make_leaf(self.dir, ca, ca_key, names, stem="policy")
        wrong = certs.make_leaf(self.dir, ca, ca_key, ["www.example.test"], stem="wrong")
        wk = ".well-known/mta-sts.txt"

        def vhost(d, cert, body=None, conf=""):
            return webservers.Vhost("mta-sts.%s.mxs.test" % d, *cert,
                                    files={wk: body} if body else {}, conf=conf)
        self.https = webservers.Nginx("127.0.0.1", webservers.shared_port(["127.0.0.1"]), [
            vhost("sts", good, policy(["mx.sts.mxs.test"])),
            # SSI makes nginx send it chunked
            vhost("stsbad", good, policy(["*.other.test", "mx.sts.mxs.test"], "testing", 86400),
                  "ssi on; ssi_types text/plain;"),
            vhost("stscert", wrong, policy(["mx.stscert.mxs.test"])),
            vhost("ststype", good, policy(["mx.ststype.mxs.test"]),
                  "types { } default_type text/html;"),
            vhost("sts404", good),
        ])
        self.dns_server = "127.0.0.1:%d" % self.unbound.port

    def args(self, *extra):
        """Common resolve arguments: this world's resolver, its CA and policy port."""
        return ["--dns-server", self.dns_server, "--mta-sts-ca-file", self.ca_cert,
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
