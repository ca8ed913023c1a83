"""An HTTPS server on loopback serving MTA-STS policies, with certificates from a test CA.

TestCA(workdir) makes a CA and issues leaf certificates with the openssl CLI.
PolicyServer(ca, routes) serves https://<host>/.well-known/mta-sts.txt where routes maps
a Host name to a Route (status, content type, body, chunked, certificate choice). The
certificate is picked by SNI, so one host can be given a certificate for another name.
Standard library only.
"""
import http.server
import os
import socket
import ssl
import subprocess
import threading

from dns import _live


def _run(*args, cwd):
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True)


class TestCA:
    def __init__(self, workdir, name="mxsurvey test CA"):
        self.dir = workdir
        self.key = os.path.join(workdir, "ca.key")
        self.cert = os.path.join(workdir, "ca.pem")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30", "-subj",
             "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=workdir)

    def issue(self, label, names, days=30):
        """A leaf for names (DNS SANs); returns (certfile, keyfile)."""
        key = os.path.join(self.dir, label + ".key")
        csr = os.path.join(self.dir, label + ".csr")
        crt = os.path.join(self.dir, label + ".pem")
        ext = os.path.join(self.dir, label + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" %
                    ",".join("DNS:" + n for n in names))
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s" % names[0], cwd=self.dir)
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-CAcreateserial", "-out", crt, "-days", str(days), "-extfile", ext, cwd=self.dir)
        return crt, key


class Route:
    def __init__(self, body, status=200, content_type="text/plain", chunked=False, cert=None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.chunked = chunked
        self.cert = cert  # (certfile, keyfile) presented for this SNI name; None: default


class PolicyServer:
    def __init__(self, default_cert, routes, addr="127.0.0.1"):
        self.routes = routes
        self.requests = []
        contexts = {}

        def ctx_for(cert):
            if cert not in contexts:
                c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                c.load_cert_chain(*cert)
                contexts[cert] = c
            return contexts[cert]

        base = ctx_for(default_cert)
        for host, r in routes.items():
            if r.cert:
                ctx_for(r.cert)

        def sni(sslsock, name, _ctx):
            r = routes.get(name or "")
            if r and r.cert:
                sslsock.context = ctx_for(r.cert)

        base.sni_callback = sni
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                host = (self.headers.get("Host") or "").lower()
                server.requests.append((host, self.path))
                r = server.routes.get(host)
                if not r or self.path != "/.well-known/mta-sts.txt":
                    r = Route("not found\n", status=404)
                self.send_response(r.status)
                if r.content_type:
                    self.send_header("Content-Type", r.content_type)
                self.send_header("Connection", "close")
                if r.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(r.body), 7):
                        part = r.body[i:i + 7]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(r.body)))
                    self.end_headers()
                    self.wfile.write(r.body)
                self.close_connection = True

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, peer = self.socket.accept()
                sock.settimeout(5)
                return base.wrap_socket(sock, server_side=True), peer

            def handle_error(self, request, client_address):
                pass  # clients that reject our certificate hang up mid-handshake

        self.httpd = Server((addr, 0), Handler)
        self.addr = addr
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        _live.append(self)

    def stop(self):
        if self in _live:
            _live.remove(self)
        self.httpd.shutdown()
        self.httpd.server_close()
