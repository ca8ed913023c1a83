"""MTA-STS policies fetched from real web servers: nginx and Apache httpd started on
loopback with certificates from a test CA and one SNI virtual host per mta-sts.<domain>.
Every policy.status class of docs/targets.md is produced by a server configuration (a
redirect rule, a wrong type, an expired/mismatched/untrusted certificate, a 404, an
oversize file, an invalid policy, nginx's `return 444` (a close without a response), a
plain-HTTP listener, nothing listening, no address; the timeout, which no server shows on
demand, is in test_resolve.py with a silent listener), over TLS 1.2 and
1.3, with Content-Length, chunked and close-delimited bodies, keep-alive and close, and a
server that closes without close_notify. Each verdict is compared with what curl says
for the same URL. The domain lines are then stored (mxsurvey ingest) and counted by
v_mta_sts_outcomes; a second night with changed policies, ids and records is stored too
and mxs_sts_changes / v_mta_sts_changes must name each change.

Addresses: 127.0.0.1 nginx (TLS 1.3 only, keep-alive), 127.0.0.2 nginx (TLS 1.2 only,
keepalive_timeout 0: the response and the close arrive together), 127.0.0.3 Apache
(prefork, CGI), 127.0.0.4 nginx without TLS, 127.0.0.5 nothing listening."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dns  # noqa: E402
from pg import PgCluster, private_env  # noqa: E402
import webservers  # noqa: E402
import world  # noqa: E402

ZONE = "web.test"
WK = ".well-known/mta-sts.txt"
ADDRS = {"nginx13": "127.0.0.1", "nginx12": "127.0.0.2", "apache": "127.0.0.3",
         "plain": "127.0.0.4", "dead": "127.0.0.5"}


def policy(name, mode="enforce", max_age=86400):
    return "version: STSv1\r\nmode: %s\r\nmx: mx.%s.%s\r\nmax_age: %d\r\n" % (mode, name, ZONE,
                                                                           max_age)


def cgi(content_type, body):
    # a CGI response without Content-Length: Apache frames it (chunked, or close-delimited)
    return "#!/bin/sh\nprintf 'Content-Type: %s\\r\\n\\r\\n'\ncat <<'EOF'\n%sEOF\n" % (
        content_type, body.replace("\r\n", "\n"))


# name: (server, expected policy.status, error prefix or None)
CASES = {
    # nginx, TLS 1.3, keep-alive
    "n-static": ("nginx13", "ok", None),
    "n-chunked": ("nginx13", "ok", None),           # SSI: chunked, keep-alive
    "n-redirect": ("nginx13", "redirect", "HTTP 301"),
    "n-type": ("nginx13", "content-type", "Content-Type 'text/html'"),
    "n-404": ("nginx13", "http-status", "HTTP 404"),
    "n-large": ("nginx13", "too-large", None),
    "n-syntax": ("nginx13", "syntax", "bad-mode"),
    "n-maxage": ("nginx13", "syntax", "bad-max-age"),
    "n-expired": ("nginx13", "certificate", "expired"),
    "n-wrongname": ("nginx13", "certificate", "name-mismatch"),
    "n-untrusted": ("nginx13", "certificate", "untrusted"),
    "n-multi": ("nginx13", "ok", None),             # first address refuses, second answers
    "n-close": ("nginx13", "http-protocol", "connection closed before"),  # return 444
    # nginx, TLS 1.2, Connection: close (response and close in one flight)
    "c-static": ("nginx12", "ok", None),
    "c-nolength": ("nginx12", "ok", None),          # SSI without chunking: close-delimited
    "c-404": ("nginx12", "http-status", "HTTP 404"),
    # Apache
    "a-static": ("apache", "ok", None),
    "a-cgi": ("apache", "ok", None),                # chunked
    "a-cgi10": ("apache", "ok", None),              # HTTP/1.0, close-delimited
    "a-unclean": ("apache", "ok", None),             # no close_notify
    "a-type": ("apache", "content-type", "Content-Type 'text/html'"),
    # failures before HTTP
    "p-plain": ("plain", "tls", None),
    "d-dead": ("dead", "connect", None),
    "x-noaddr": (None, "dns", None),
}


VHOSTS = {}  # case name -> its Vhost (document root known once its server runs)


def build(tmp):
    ca, ca_key = certs.make_ca(tmp)
    other_ca, other_key = certs.make_ca(tmp, name="another CA", stem="otherca")

    def leaf(stem, names, **kw):
        return certs.make_leaf(tmp, ca, ca_key, names, stem=stem, **kw)

    def host(n):
        return "mta-sts.%s.%s" % (n, ZONE)

    by_server = {}
    for n, (srv, _, _) in CASES.items():
        if srv:
            by_server.setdefault(srv, []).append(n)
    good = {s: leaf("leaf-" + s, [host(n) for n in names]) for s, names in by_server.items()}
    special = {
        "n-expired": leaf("expired", [host("n-expired")], days=-1),
        "n-wrongname": leaf("wrongname", ["www.%s" % ZONE]),
        "n-untrusted": certs.make_leaf(tmp, other_ca, other_key, [host("n-untrusted")],
                                       stem="untrusted"),
    }
    big = "version: STSv1\nmode: testing\nmax_age: 86400\n" + "mx: mx.n-large.web.test\n" * 3000
    files = {
        "n-large": {WK: big},
        "n-syntax": {WK: policy("n-syntax", mode="strict")},
        "n-maxage": {WK: policy("n-maxage", max_age=31557601)},
        "n-404": {}, "c-404": {},
    }
    confs = {
        "n-chunked": "ssi on; ssi_types text/plain;",
        "n-redirect": "location = /%s { return 301 https://elsewhere.%s/%s; }" % (WK, ZONE, WK),
        "n-type": "types { } default_type text/html;",
        "n-close": "location = /%s { return 444; }" % WK,
        "c-nolength": "ssi on; ssi_types text/plain; chunked_transfer_encoding off;",
    }
    apache_files = {
        "a-cgi": {"policy.cgi": cgi("text/plain", policy("a-cgi"))},
        "a-cgi10": {"policy.cgi": cgi("text/plain", policy("a-cgi10"))},
        "a-type": {"policy.cgi": cgi("text/html", policy("a-type"))},
    }
    apache_conf = {
        "a-cgi": "Alias /%s {root}/policy.cgi" % WK,
        "a-cgi10": "Alias /%s {root}/policy.cgi\n"
                   '    SetEnvIf Request_URI "." downgrade-1.0 force-response-1.0' % WK,
        "a-type": "Alias /%s {root}/policy.cgi" % WK,
        "a-unclean": 'SetEnvIf Request_URI "." ssl-unclean-shutdown nokeepalive',
    }

    def vhosts(server):
        out = []
        for n in by_server[server]:
            cert, key = special.get(n, good[server])
            f = files.get(n, {WK: policy(n)})
            conf = confs.get(n, "")
            if server == "apache":
                f = apache_files.get(n, f)
                conf = apache_conf.get(n, "")
            out.append(webservers.Vhost(host(n), cert, key, files=f, conf=conf))
            VHOSTS[n] = out[-1]
        return out

    port = webservers.shared_port(list(ADDRS.values()))
    servers = [
        webservers.Nginx(ADDRS["nginx13"], port, vhosts("nginx13"), protocols="TLSv1.3"),
        webservers.Nginx(ADDRS["nginx12"], port, vhosts("nginx12"), protocols="TLSv1.2",
                         http_conf="keepalive_timeout 0;"),
        webservers.Nginx(ADDRS["plain"], port, vhosts("plain"), ssl=False),
    ]
    servers.append(webservers.Apache(ADDRS["apache"], port, vhosts("apache")))

    return ca, port, servers, zone(1)


ID1, ID2 = "20261207T000000", "20261208T000000"


def zone(night):
    """The zone of night 1, or night 2: a-static's id changes (same policy), d-dead's
    record goes away."""
    z = dns.Zone(ZONE)
    for n, (srv, _, _) in CASES.items():
        if not (night == 2 and n == "d-dead"):
            z.txt("_mta-sts." + n, "v=STSv1; id=%s;" % (ID2 if night == 2 and n == "a-static" else ID1))
        z.add(n, "MX", "10 mx.%s.%s." % (n, ZONE)).add("mx." + n, "A", "192.0.2.25")
        if n == "n-multi":
            z.add("mta-sts." + n, "A", ADDRS["dead"])
        if srv:
            z.add("mta-sts." + n, "A", ADDRS[srv])
    return dns.Nsd({ZONE: z.text()})


def closes_with_notify(ca, port, name, addr):
    """Fetch with Connection: close and read to the end: True when the server ended TLS
    with close_notify, False when it just closed the TCP connection."""
    host = "mta-sts.%s.%s" % (name, ZONE)
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((addr, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False) as s:
            s.sendall(b"GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                      (WK.encode(), host.encode()))
            try:
                while s.recv(4096):
                    pass
            except ssl.SSLEOFError:
                return False
            return True


def curl_class(ca, port, name, addrs):
    """What curl makes of the same URL: a policy.status class, or '200' for a text/plain
    200 response of at most 64 KiB (whose syntax curl does not judge)."""
    host = "mta-sts.%s.%s" % (name, ZONE)
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\t%{content_type}\t%{size_download}",
            "--max-redirs", "0", "--max-time", "10", "--cacert", ca]
    if addrs:
        args += ["--resolve", "%s:%d:%s" % (host, port, ",".join(addrs))]
    p = subprocess.run(args + ["https://%s:%d/%s" % (host, port, WK)], capture_output=True,
                       text=True, timeout=30)
    rc = p.returncode
    if rc != 0:
        return {6: "dns", 7: "connect", 35: "tls", 60: "certificate", 28: "timeout",
                52: "http-protocol"}.get(
            rc, "curl-exit-%d" % rc)
    code, ctype, size = p.stdout.split("\t")
    if code.startswith("3"):
        return "redirect"
    if code != "200":
        return "http-status"
    if ctype.split(";")[0].strip().lower() != "text/plain":
        return "content-type"
    if int(size) > 65536:
        return "too-large"
    return "200"


def resolve(nsd, ca, port):
    return world.run_resolve(["--dns-server", "127.0.0.1:%d" % nsd.port, "--mta-sts-ca-file", ca,
                              "--mta-sts-port", str(port), "--timeout", "0.5", "--retries", "1",
                              "--mta-sts-timeout", "5", "--quiet", "--no-default-blocklist",
                              "--concurrency", "4"],
                             "".join("%s.%s\n" % (n, ZONE) for n in CASES))


def ingest(pg, tmp, label, out):
    path = os.path.join(tmp, label + ".jsonl")
    with open(path, "w") as f:
        f.write(out)
    subprocess.run([os.environ.get("MXS_BIN", "mxsurvey"), "ingest", "-q", "--db", pg.url,
                    "--label", label, path], env=private_env(tmp), check=True,
                   stderr=subprocess.DEVNULL)


def check_database(c, pg, tmp, ca, port, night1):
    """Night 1 stored and counted by class; night 2 changes, stored, and compared."""
    ingest(pg, tmp, "night1", night1)
    want = {}
    for n, (_, st, err) in CASES.items():
        detail = err if st == "certificate" else None
        want[(st, detail)] = want.get((st, detail), 0) + 1
    rows = pg.query("SELECT outcome, detail, n, n_denom FROM v_mta_sts_outcomes "
                    "WHERE scan_id = 1 AND bucket = 'all'")
    c.eq("outcomes view: classes and counts",
         {(o, d): int(k) for o, d, k, _ in rows}, want)
    c.eq("outcomes view: denominator", {int(r[3]) for r in rows}, {len(CASES)})

    # night 2: a mode, an mx list and a max_age change (the last two under the same id),
    # an id changed over the same policy, a 404 that now serves, a record removed
    webservers.write_files(VHOSTS["n-static"], {WK: policy("n-static", mode="testing")})
    webservers.write_files(VHOSTS["c-static"], {WK: policy("c-static").replace(
        "mx: ", "mx: *.backup.%s\r\nmx: " % ZONE)})
    webservers.write_files(VHOSTS["a-cgi"], {"policy.cgi": cgi("text/plain", policy("a-cgi", max_age=172800))})
    webservers.write_files(VHOSTS["n-404"], {WK: policy("n-404")})
    nsd = zone(2)
    try:
        p = resolve(nsd, ca, port)
    finally:
        nsd.stop()
    c.eq("night 2: exit code", p.returncode, 0)
    ingest(pg, tmp, "night2", p.stdout)
    d = lambda n: "%s.%s" % (n, ZONE)  # noqa: E731
    want = {
        (d("n-static"), "mode", "enforce", "testing"),
        (d("n-static"), "policy-without-id-change", ID1, ID1),
        (d("c-static"), "mx", "mx.c-static.web.test", "*.backup.web.test mx.c-static.web.test"),
        (d("c-static"), "policy-without-id-change", ID1, ID1),
        (d("a-cgi"), "max_age", "86400", "172800"),
        (d("a-cgi"), "policy-without-id-change", ID1, ID1),
        (d("a-static"), "id", ID1, ID2),
        (d("a-static"), "id-without-policy-change", ID1, ID2),
        (d("n-404"), "outcome", "http-status", "ok"),
        (d("d-dead"), "record-removed", ID1, None),
    }
    got = {tuple(r) for r in pg.query("SELECT * FROM mxs_sts_changes(1, 2)")}
    c.eq("changes: night 1 to night 2", got, want)
    got = {tuple(r[2:]) for r in pg.query("SELECT * FROM v_mta_sts_changes")
           if r[:2] == ["1", "2"]}
    c.eq("changes view: the same pair", got, want)
    c.eq("changes view: no pair before the first scan",
         pg.scalar("SELECT count(*) FROM v_mta_sts_changes WHERE scan_id = 1"), "0")


def main():
    c = world.Checker()
    tmp = tempfile.mkdtemp(prefix="mxs-mtasts-web-")
    os.chmod(tmp, 0o755)
    servers = []
    nsd = None
    try:
        ca, port, servers, nsd = build(tmp)
        p = resolve(nsd, ca, port)
        nsd.stop()
        nsd = None
        c.eq("exit code", p.returncode, 0)
        got = {}
        for line in p.stdout.splitlines():
            r = json.loads(line)
            if r["type"] == "domain":
                got[r["domain"].split(".")[0]] = r["mta_sts"]["policy"]
        for n, (srv, want, err) in CASES.items():
            pol = got.get(n) or {}
            c.eq("%s: status" % n, pol.get("status"), want)
            if err:
                c.true("%s: error starts with %r" % (n, err), (pol.get("error") or "").startswith(err),
                       repr(pol.get("error")))
            if want == "ok":
                c.eq("%s: policy" % n, (pol.get("mode"), pol.get("max_age"), pol.get("mx"),
                                        pol.get("mx_match")),
                     ("enforce", 86400, ["mx.%s.%s" % (n, ZONE)], True))
            addrs = [ADDRS[srv]] if srv else []
            if n == "n-multi":
                addrs = [ADDRS["dead"], ADDRS["nginx13"]]
            cv = curl_class(ca, port, n, addrs)
            mine = "200" if want in ("ok", "syntax") else want
            c.eq("%s: curl agrees" % n, cv, mine)
        # the cases are what they claim: Apache's unclean shutdown sends no close_notify,
        # nginx's close case does
        c.eq("a-unclean closes without close_notify",
             closes_with_notify(ca, port, "a-unclean", ADDRS["apache"]), False)
        c.eq("c-static closes with close_notify",
             closes_with_notify(ca, port, "c-static", ADDRS["nginx12"]), True)
        # the servers did send the whole policy (what the old client called "truncated")
        c.true("nginx logged the close case's 200", '"GET /%s HTTP/1.1" 200' % WK in
               servers[1].access_log(), servers[1].access_log())
        c.true("apache answered every request with 200",
               servers[3].access_log().count('"GET /%s HTTP/1.1" 200' % WK) >= 8,
               servers[3].access_log())
        with PgCluster() as pg:
            check_database(c, pg, tmp, ca, port, p.stdout)
    finally:
        for s in servers:
            s.stop()
        if nsd:
            nsd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
