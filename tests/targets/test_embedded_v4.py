"""IPv6 forms of blocked IPv4 addresses are refused by scan and resolve (issue 8, item 5).

An IPv6 address that embeds an IPv4 address (mapped, compatible, 6to4, NAT64) reaches or
goes through that IPv4 host, so the IPv4 rules hold for it:
1. scan with `--no-default-blocklist --blocklist` 127.0.9.0/24: `::ffff:127.0.9.1` (which a
   dual-stack socket would connect to 127.0.9.1, where a listener waits) and its other
   forms are recorded `blocked` and nothing connects to the listener;
2. scan with the default list: 2002:7f00:1::1, 64:ff9b::7f00:1, ::127.0.0.1 are blocked as
   127.0.0.0/8;
3. resolve: the same forms as input lines and as AAAA records of an MX host (served by
   nsd) are emitted with `blocked`; an address outside the range is not.
"""
import json
import os
import select
import socket
import subprocess
import sys
import tempfile

import dns  # tests/lib

MXS = os.environ.get("MXS_BIN", "mxsurvey")
failures = []


def check(what, cond, detail=""):
    print("%s: %s%s" % ("ok" if cond else "FAIL", what, "" if cond else "  (%s)" % detail))
    if not cond:
        failures.append(what)


def run(cmd, args, stdin):
    p = subprocess.run([MXS, cmd, *args], input=stdin, capture_output=True, text=True,
                       timeout=120)
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return p, recs


VIA_USER = "blocklist 127.0.9.0/24 (embedded in IPv6)"
VIA_DEFAULT = "reserved 127.0.0.0/8 (embedded in IPv6)"
USER_FORMS = ["::ffff:127.0.9.1", "::127.0.9.1", "2002:7f00:901::1", "64:ff9b::7f00:901"]
DEFAULT_FORMS = ["2002:7f00:1::1", "64:ff9b::7f00:1", "::127.0.0.1"]


def main():
    tmp = tempfile.mkdtemp(prefix="mxs-embedded-")
    bl = os.path.join(tmp, "bl.txt")
    with open(bl, "w") as f:
        f.write("127.0.9.0/24\n")
    # a listener on 127.0.9.1: a mapped address that got through would connect here
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.9.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    common = ["--quiet", "--ehlo-name", "scanner.mxsurvey.test", "--port", str(port),
              "--connect-timeout", "1"]

    # 1. scan, user list only
    lines = "".join("%s,mx.embedded.test\n" % a for a in USER_FORMS) + "127.0.9.1\n"
    p, recs = run("scan", ["--no-default-blocklist", "--blocklist", bl, *common], lines)
    by_ip = {r["ip"]: r for r in recs}
    check("scan user list: one record per target", len(recs) == 5, p.stderr[-500:])
    for a in USER_FORMS:
        r = by_ip.get(a, {})
        check("scan user list: %s blocked" % a,
              r.get("outcome") == "blocked" and r.get("detail") == VIA_USER, r)
    check("scan user list: 127.0.9.1 blocked",
          by_ip.get("127.0.9.1", {}).get("detail") == "blocklist 127.0.9.0/24")
    check("scan user list: nothing connected to 127.0.9.1",
          not select.select([lst], [], [], 0)[0])

    # 2. scan, default list
    p, recs = run("scan", common, "".join(a + "\n" for a in DEFAULT_FORMS))
    by_ip = {r["ip"]: r for r in recs}
    for a in DEFAULT_FORMS:
        r = by_ip.get(a, {})
        check("scan defaults: %s blocked" % a,
              r.get("outcome") == "blocked" and r.get("detail") == VIA_DEFAULT, r)

    # 3. resolve: address lines, and AAAA records of an MX host
    z = dns.Zone("embedded.test")
    z.add("d1", "MX", "10 mx.d1.embedded.test.")
    for a in USER_FORMS + ["2001:db8::25"]:
        z.add("mx.d1", "AAAA", a)
    nsd = dns.Nsd({"embedded.test": z.text()})
    try:
        args = ["--quiet", "--dns-server", "127.0.0.1:%d" % nsd.port, "--no-policy",
                "--ipv6-only", "--timeout", "1"]
        p, recs = run("resolve", ["--no-default-blocklist", "--blocklist", bl, *args],
                      "".join(a + "\n" for a in USER_FORMS) + "d1.embedded.test\n")
        check("resolve user list: exit 0", p.returncode == 0, p.stderr[-500:])
        targets = [r for r in recs if r.get("type") == "target"]
        # the address lines come first; the MX host's addresses were emitted already
        blocked = {r["ip"]: r.get("blocked") for r in targets}
        for a in USER_FORMS:
            check("resolve user list: %s blocked" % a, blocked.get(a) == VIA_USER, blocked)
        check("resolve user list: 2001:db8::25 not blocked",
              "2001:db8::25" in blocked and blocked["2001:db8::25"] is None, blocked)
        # the MX host alone, so its addresses are emitted from the DNS answer
        p, recs = run("resolve", ["--no-default-blocklist", "--blocklist", bl, *args],
                      "d1.embedded.test\n")
        got = {r["ip"]: r.get("blocked") for r in recs if r.get("type") == "target"}
        for a in USER_FORMS:
            check("resolve MX AAAA: %s blocked" % a, got.get(a) == VIA_USER, got)
        check("resolve MX AAAA: 2001:db8::25 not blocked",
              "2001:db8::25" in got and got["2001:db8::25"] is None, got)
        p, recs = run("resolve", args, "".join(a + "\n" for a in DEFAULT_FORMS))
        got = {r["ip"]: r.get("blocked") for r in recs if r.get("type") == "target"}
        for a in DEFAULT_FORMS:
            check("resolve defaults: %s blocked" % a, got.get(a) == VIA_DEFAULT, got)
    finally:
        nsd.stop()
        lst.close()
        subprocess.run(["rm", "-rf", tmp])
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
