"""mxsurvey resolve against unbound as Debian configures it (issue 8, item 4).

A stock unbound (one thread, num-queries-per-thread 1024, kernel-default socket buffers)
drops queries when it is asked faster than it answers; with a fixed 1000 domains in
flight, a third of a list came out as DNS `timeout`. The query rate now adapts to the
resolver (targets/dnswin.h), and timed-out queries are retried once the window is cut.

1. 20,000 mail domains served by nsd, through that unbound, at the default
   `--concurrency 1000`, `--timeout 3`, `--retries 2`: every domain resolves (`ok`), none
   is lost to a timeout. Ten more domains are delegated each to its own server that never
   answers: those, and only those, end as `timeout` (unbound was still trying when the
   last of their tries, 3 + 6 + 12 s, ran out).
2. Bounded retries: the dead domains alone, with `--retries 2`: each of their queries is
   tried exactly 3 times (the summary's timeouts and retries), and they end as `timeout`.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

import dns  # tests/lib

MXS = os.environ.get("MXS_BIN", "mxsurvey")
ORIGIN = "load.test"
DOMAINS = 20000
DEAD = 10
failures = []


def check(what, cond, detail=""):
    print("%s: %s%s" % ("ok" if cond else "FAIL", what, "" if cond else "  (%s)" % detail),
          flush=True)
    if not cond:
        failures.append(what)


def zone(n):
    """n mail domains: 60 % on 200 shared provider MX hosts, the rest with their own."""
    lines = ["$ORIGIN %s." % ORIGIN, "$TTL 3600", "@ IN SOA ns1 hostmaster 1 3600 600 86400 300",
             "@ IN NS ns1", "ns1 IN A 127.0.0.1"]
    for k in range(200):
        lines.append("mx%d.provider IN A 192.0.2.%d" % (k, k + 1))
    for i in range(n):
        if i % 100 < 60:
            lines.append("d%d IN MX 10 mx%d.provider" % (i, i % 200))
        else:
            lines.append("d%d IN MX 10 mx.d%d" % (i, i))
            lines.append("mx.d%d IN A 198.51.100.%d" % (i, i % 250 + 1))
    return "\n".join(lines) + "\n"


def resolve(server, names, *extra):
    """Run resolve on names; return (process, domain records by name, summary dict)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(n + "\n" for n in names))
        path = f.name
    try:
        # generous hang guard only: the timing is for bench/resolve, not for the test
        p = subprocess.run([MXS, "resolve", "--dns-server", server, *extra, path],
                           capture_output=True, text=True, timeout=1200)
    finally:
        os.unlink(path)
    doms = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if r["type"] == "domain":
            doms[r["domain"]] = r
    summary = {}
    for line in p.stderr.splitlines():
        if line.startswith("resolve done "):
            summary = dict(kv.split("=", 1) for kv in line.split()[2:])
    return p, doms, summary


def main():
    # two sets of dead zones, each zone on a server of its own: unbound answers SERVFAIL
    # at once for a server it has already found dead, so part 2 needs fresh ones
    silent = [dns.SilentUdp() for _ in range(2 * DEAD)]
    nsd = dns.Nsd({ORIGIN: zone(DOMAINS)})
    stubs = {ORIGIN + ".": "127.0.0.1@%d" % nsd.port}
    for k, s in enumerate(silent):
        stubs["dead%d.test." % k] = "127.0.0.1@%d" % s.port  # 0..DEAD-1: part 1
    ub = dns.Unbound(stubs, debian_default=True)
    server = "127.0.0.1:%d" % ub.port
    try:
        live = ["d%d.%s" % (i, ORIGIN) for i in range(DOMAINS)]
        dead = ["x.dead%d.test" % k for k in range(DEAD)]
        names = list(live)
        for k, d in enumerate(dead):  # spread through the list
            names.insert((k + 1) * DOMAINS // (DEAD + 1), d)

        # 1. the whole list at the defaults
        p, doms, s = resolve(server, names, "--log-level", "info")
        check("list: exit 0", p.returncode == 0, p.stderr[-2000:])
        st = collections.Counter(doms[n]["status"] for n in live if n in doms)
        check("list: every live domain has a record", sum(st.values()) == DOMAINS, st)
        check("list: every live domain resolved, none lost to a timeout",
              st.get("ok") == DOMAINS, dict(st))
        check("list: the dead domains end as timeout",
              all(doms.get(d, {}).get("status") == "timeout" for d in dead),
              {d: doms.get(d, {}).get("status") for d in dead})
        ubs = ub.stats()
        print("summary: %s" % " ".join("%s=%s" % kv for kv in s.items()))
        print("unbound: queries=%s requestlist.max=%s exceeded=%s overwritten=%s" % (
            ubs.get("total.num.queries"), ubs.get("total.requestlist.max"),
            ubs.get("total.requestlist.exceeded"), ubs.get("total.requestlist.overwritten")))
        check("list: the window is reported", "dns_window" in s and "dns_window=" in p.stderr, s)

        # 2. bounded retries: each query of a dead domain is tried 1 + 2 times, no more
        dead = ["x.dead%d.test" % k for k in range(DEAD, 2 * DEAD)]
        p, doms, s = resolve(server, dead, "--timeout", "0.5", "--retries", "2", "--quiet")
        check("dead: exit 0", p.returncode == 0, p.stderr[-2000:])
        check("dead: all timeout", all(doms.get(d, {}).get("status") == "timeout" for d in dead),
              doms)
        q = int(s.get("queries", -1))
        check("dead: 3 queries per domain (MX, MTA-STS and TLSRPT TXT)", q == 3 * DEAD, s)
        check("dead: every query tried 3 times", int(s.get("timeouts", -1)) == 3 * q, s)
        check("dead: 2 retries per query", int(s.get("retries", -1)) == 2 * q, s)
    finally:
        ub.stop()
        nsd.stop()
        for x in silent:
            x.stop()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
