"""mxsurvey resolve against real servers on loopback (see world.py): every DNS case of
docs/targets.md, DNSSEC validated by unbound, MTA-STS policies over HTTPS, blocklists,
address input, exit codes. Outputs are compared exactly with tests/targets/expected/.
Set MXS_UPDATE_EXPECTED=1 to rewrite the expected files (then review the diff)."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UPDATE = os.environ.get("MXS_UPDATE_EXPECTED") == "1"

MAIN_INPUT = """# every case, in a fixed order (run with --concurrency 1 for a fixed output order)
multi.mxs.test
3,s1.mxs.test
s2.mxs.test
nullmx.mxs.test
implicit.mxs.test
nodata.mxs.test
nx.mxs.test
cname.mxs.test
noaddr.mxs.test
slow.dead.test
dane-insecure.mxs.test
sts.mxs.test
stsbad.mxs.test
stscert.mxs.test
sts404.mxs.test
ststype.mxs.test
stsnoaddr.mxs.test
stsinvalid.mxs.test
stsmulti.mxs.test
rptbad.mxs.test
signed.test
nomx.signed.test
not a domain
198.51.100.7
MULTI.mxs.test.

192.0.2.12
"""


def sigint_caught(pid):
    """True once process pid has a handler for SIGINT (the SigCgt mask of /proc)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("SigCgt:"):
                    return bool(int(l.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


def wait_for_interruptible(proc, listener, timeout):
    """Until proc catches SIGINT and a connection waits on the listening socket listener
    (never accepted: it stays readable); False if proc exits or timeout passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if sigint_caught(proc.pid) and select.select([listener], [], [], 0)[0]:
            return True
        time.sleep(0.01)
    return False


def expect_file(c, name, got):
    path = os.path.join(HERE, "expected", name)
    if UPDATE:
        with open(path, "w") as f:
            f.write(got)
    with open(path) as f:
        want = f.read()
    got_lines, want_lines = got.splitlines(), want.splitlines()
    c.eq("%s: line count" % name, len(got_lines), len(want_lines))
    for i, (g, w) in enumerate(zip(got_lines, want_lines)):
        c.eq("%s: line %d" % (name, i + 1), g, w)


def records(out):
    return [json.loads(l) for l in out.splitlines()]


def summary(stderr):
    for line in stderr.splitlines():
        if line.startswith("resolve done "):
            return dict(kv.split("=", 1) for kv in line.split()[2:])
    return {}


def main():
    c = world.Checker()
    w = world.World()
    tmp = tempfile.mkdtemp(prefix="mxs-resolve-test-")
    try:
        block = os.path.join(tmp, "optout.txt")
        with open(block, "w") as f:
            f.write("# opt-out requests\n192.0.2.12/32   # mx2 asked not to be scanned\n")

        # 1. every case, exact output
        t0 = time.monotonic()
        p = world.run_resolve(w.args("--no-default-blocklist", "--blocklist", block,
                                     "--concurrency", "1"), MAIN_INPUT)
        c.eq("main: exit code", p.returncode, 0)
        expect_file(c, "main.jsonl", p.stdout)
        c.true("main: bad line reported with its number",
               'bad-line input=- line=24 error="not a valid domain name"' in p.stderr, p.stderr)
        s = summary(p.stderr)
        c.eq("main: summary lines/bad/targets", (s.get("lines"), s.get("bad_lines"), s.get("targets"),
                                                 s.get("blocked")), ("28", "1", "19", "1"))
        c.true("main: the timeout case stays short", time.monotonic() - t0 < 15)

        # 2. same input, many in flight: the same domain records, the same addresses
        main = records(p.stdout)
        p = world.run_resolve(w.args("--no-default-blocklist", "--blocklist", block,
                                     "--concurrency", "50"), MAIN_INPUT)
        got = records(p.stdout)
        key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
        c.eq("parallel: domain records", sorted(key(r) for r in got if r["type"] == "domain"),
             sorted(key(r) for r in main if r["type"] == "domain"))
        # every (MX name, address) pair once, whatever the order; a bare address line is
        # a target of its own only when it comes before the names using its address
        pairs = lambda recs: sorted({(r["ip"], r["mx"]) for r in recs  # noqa: E731
                                     if r["type"] == "target" and r["mx"]})
        c.eq("parallel: target pairs", pairs(got), pairs(main))
        c.eq("parallel: target addresses", sorted({r["ip"] for r in got if r["type"] == "target"}),
             sorted({r["ip"] for r in main if r["type"] == "target"}))

        # 2b. a cache of 2 hosts: entries are evicted and looked up again, same records
        p = world.run_resolve(w.args("--no-default-blocklist", "--blocklist", block,
                                     "--concurrency", "4", "--cache-size", "2"), MAIN_INPUT)
        got = records(p.stdout)
        c.eq("small cache: domain records", sorted(key(r) for r in got if r["type"] == "domain"),
             sorted(key(r) for r in main if r["type"] == "domain"))
        c.true("small cache: more misses", int(summary(p.stderr).get("cache_misses", 0)) > 16)

        # 3. a shared MX host is resolved once: 30 domains x (MX + 2 TXT) + A, AAAA, TLSA
        shared = "".join("s%d.mxs.test\n" % i for i in range(1, 31))
        p = world.run_resolve(w.args("--no-default-blocklist", "--concurrency", "30"), shared)
        s = summary(p.stderr)
        c.eq("cache: queries", s.get("queries"), "93")
        c.eq("cache: misses and hits", (s.get("cache_misses"), s.get("cache_hits")), ("1", "29"))
        c.eq("cache: targets", [r["ip"] for r in records(p.stdout) if r["type"] == "target"],
             ["192.0.2.21", "192.0.2.22", "2001:db8::21", "2001:db8::22"])

        # 4. the default blocklist (RFC 6890): documentation ranges and loopback are blocked,
        # recorded, and the MTA-STS policy server on 127.0.0.1 is not dialled
        p = world.run_resolve(w.args("--concurrency", "1"), "multi.mxs.test\nsts.mxs.test\n::1\n")
        expect_file(c, "blocked.jsonl", p.stdout)
        c.eq("blocked: exit code", p.returncode, 0)

        # 5. address families
        p = world.run_resolve(w.args("--ipv4-only", "--no-default-blocklist", "--no-policy"),
                              "multi.mxs.test\n")
        expect_file(c, "ipv4.jsonl", p.stdout)
        p = world.run_resolve(w.args("--ipv6-only", "--no-default-blocklist", "--no-policy"),
                              "multi.mxs.test\n")
        expect_file(c, "ipv6.jsonl", p.stdout)
        s = summary(p.stderr)
        c.eq("no-policy: only MX and AAAA queries", s.get("queries"), "3")

        # 6. MX host names, addresses and ranges
        p = world.run_resolve(w.args("--mx-hosts", "--no-default-blocklist", "--concurrency", "1",
                                     "--port", "2525"),
                              "mx.provider.mxs.test\nghost.mxs.test\n192.0.2.0/30\n192.0.2.1\n"
                              "2001:db8::/127\n10.0.0.0/8\n3,mx1.mxs.test\n")
        expect_file(c, "hosts.jsonl", p.stdout)
        c.true("hosts: range too big is a bad line",
               'line=6 error="CIDR range too large' in p.stderr, p.stderr)
        c.true("hosts: rank with --mx-hosts is a bad line", 'line=7 error="a rank' in p.stderr, p.stderr)

        # 7. allowlist: only the allowed address may be dialled
        allow = os.path.join(tmp, "allow.txt")
        with open(allow, "w") as f:
            f.write("192.0.2.11\n")
        p = world.run_resolve(w.args("--no-default-blocklist", "--allowlist", allow, "--no-policy"),
                              "multi.mxs.test\n")
        c.eq("allowlist", [(r["ip"], r.get("blocked")) for r in records(p.stdout)
                           if r["type"] == "target"],
             [("192.0.2.11", None), ("2001:db8::11", "not in allowlist"),
              ("192.0.2.12", "not in allowlist")])

        # 8. a resolver that drops every packet: timeout, quickly, not a failure of the run
        t0 = time.monotonic()
        p = world.run_resolve(["--dns-server", "127.0.0.1:%d" % w.silent.port, "--timeout", "0.2",
                               "--retries", "1", "--quiet", "--no-default-blocklist"],
                              "5,example.mxs.test\n")
        c.eq("silent server: record", records(p.stdout), [{
            "type": "domain", "domain": "example.mxs.test", "rank": 5, "status": "timeout",
            "dnssec": False, "mx": [],
            "mta_sts": {"txt": None, "id": None, "status": "timeout", "policy": None,
                        "error": None, "dnssec": False},
            "tlsrpt": {"txt": None, "rua": [], "status": "timeout", "error": None,
                       "dnssec": False}}])
        c.eq("silent server: exit code", p.returncode, 0)
        c.true("silent server: bounded by timeout and one retry", time.monotonic() - t0 < 5)

        # 9. exit codes and output file
        p = world.run_resolve(w.args(), "not a domain\nhttp://x.test/\n")
        c.eq("all lines bad: exit code", p.returncode, 4)
        c.true("url line explained", 'line=2 error="looks like a URL' in p.stderr, p.stderr)
        p = world.run_resolve(w.args(os.path.join(tmp, "missing.txt")), "")
        c.eq("missing input file: exit code", p.returncode, 4)
        p = world.run_resolve(w.args("--concurrency", "x"), "")
        c.eq("bad option value: exit code", p.returncode, 2)
        p = world.run_resolve(w.args("--dns-server", "not-an-ip"), "")
        c.eq("bad dns server: exit code", p.returncode, 2)
        out = os.path.join(tmp, "out.jsonl")
        p = world.run_resolve(w.args("-o", out, "--no-default-blocklist", "--no-policy"),
                              "implicit.mxs.test\n")
        with open(out) as f:
            c.eq("-o writes the file", [r["type"] for r in records(f.read())], ["target", "domain"])
        c.eq("-o leaves stdout empty", p.stdout, "")

        # 10. interrupted with lookups and a policy fetch in flight: exit 3 (partial), and
        # everything in flight is torn down cleanly (the ASan build checks for leaks)
        slow = "".join("x%d.dead.test\n" % i for i in range(20)) + "sts.mxs.test\n"
        slowfile = os.path.join(tmp, "slow.txt")
        with open(slowfile, "w") as f:
            f.write(slow)
        proc = subprocess.Popen([os.environ.get("MXS_BIN", "mxsurvey"), "resolve",
                                 *w.args("--no-default-blocklist", "--timeout", "5",
                                         # the policy server accepts and never speaks TLS
                                         "--mta-sts-port", str(w.silent.port), slowfile)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Not a fixed sleep: a slow (sanitizer, loaded) start would take the SIGINT before
        # the handler is installed and die of it. Wait for the handler, and for the policy
        # fetch to have connected, so the signal finds it in flight.
        c.true("interrupt: handler installed and policy fetch in flight",
               wait_for_interruptible(proc, w.silent.tcp, timeout=60))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        c.eq("interrupt: exit code", proc.returncode, 3)
        c.true("interrupt: logged", "interrupted signal=2" in err, err)
        c.true("interrupt: summary still printed", "resolve done " in err, err)
        c.eq("interrupt: nothing emitted", out, "")

        # 11. a policy server that accepts the connection and never answers: timeout
        p = world.run_resolve(w.args("--no-default-blocklist", "--mta-sts-port", str(w.silent.port),
                                     "--mta-sts-timeout", "0.5"), "sts.mxs.test\n")
        c.eq("policy timeout", [r["mta_sts"]["policy"] for r in records(p.stdout)
                                if r["type"] == "domain"],
             [{"status": "timeout", "mode": None, "max_age": None, "mx": [], "mx_match": None,
               "error": "TLS handshake not done in time (127.0.0.1)"}])
        # 12. nothing listens on the policy port: connection refused
        p = world.run_resolve(w.args("--no-default-blocklist", "--mta-sts-port",
                                     str(world.dns.free_port())), "sts.mxs.test\n")
        c.eq("policy connect error", [r["mta_sts"]["policy"]["status"] for r in records(p.stdout)
                                      if r["type"] == "domain"], ["connect"])
    finally:
        w.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
