"""Real mail servers configured the way operators keep legacy TLS alive, for tests.

    with legacyservers.start("postfix-legacy-pref", workdir) as srv:
        srv.addr, srv.port, srv.ca_file

Each entry of SERVERS is a Postfix (OpenSSL 3) or an Exim (GnuTLS) with old protocols and
suites switched on by the settings operators use: an OpenSSL configuration file at
security level 0 (Postfix's tls_config_file), smtpd_tls_protocols, the "low" cipher grade,
a 1024-bit Diffie-Hellman group (smtpd_tls_dh1024_param_file), restricted ECDHE curves
(tls_eecdh_auto_curves), server cipher order on or off (tls_preempt_cipherlist), and a
GnuTLS priority string (Exim's tls_require_ciphers).

`expected` is what the configuration documents, in witness.py's normal form; the test does
not take it on trust: the witnesses (sslscan, nmap) say what each server really accepts
and the test reports where they and the documentation disagree. Keys left out of
`expected` are not documented by the configuration.
"""

import contextlib
import os
import subprocess

import exim
import postfix

# OpenSSL's own configuration, as Postfix reads it (tls_config_file): the system default
# (Debian: TLS 1.2 and security level 2) would veto the legacy settings below.
OPENSSL_CNF = """\
openssl_conf = mxs_legacy
[mxs_legacy]
ssl_conf = mxs_ssl
[mxs_ssl]
system_default = mxs_system
[mxs_system]
MinProtocol = {min_protocol}
CipherString = {cipher_string}
"""


def _dhparam(directory, bits):
    path = os.path.join(directory, f"dh{bits}.pem")
    # a safe prime (PKCS#3 "DH PARAMETERS", as Postfix reads them): about a second for 1024
    subprocess.run(["openssl", "dhparam", "-out", path, str(bits)],
                   check=True, capture_output=True)
    return path


def _openssl_cnf(directory, min_protocol="TLSv1", cipher_string="ALL:@SECLEVEL=0"):
    path = os.path.join(directory, "openssl-legacy.cnf")
    with open(path, "w") as f:
        f.write(OPENSSL_CNF.format(min_protocol=min_protocol, cipher_string=cipher_string))
    return path


def _legacy_postfix(directory, preempt, curves, dh_bits=None, protocols=">=TLSv1",
                    grade="low"):
    os.makedirs(directory, exist_ok=True)
    cf = {
        "tls_config_file": _openssl_cnf(directory),
        "smtpd_tls_protocols": protocols,
        "smtpd_tls_mandatory_protocols": protocols,
        "smtpd_tls_ciphers": grade,
        "smtpd_tls_mandatory_ciphers": grade,
        "tls_low_cipherlist": "ALL:+RC4:@STRENGTH:@SECLEVEL=0",
        "tls_preempt_cipherlist": "yes" if preempt else "no",
        "tls_eecdh_auto_curves": curves,
        "smtpd_tls_eecdh_grade": "auto",
    }
    if dh_bits:
        cf["smtpd_tls_dh1024_param_file"] = _dhparam(directory, dh_bits)
    return cf


# Notes on what the configurations really give (the witnesses told us; the test keeps
# checking it):
# - Debian's OpenSSL 3.0 has no 3DES suite at all, at any security level (`openssl
#   ciphers -v 'ALL:@SECLEVEL=0'` lists none), and no RC4, export or SSLv3: a Postfix on
#   it cannot accept them whatever its settings.
# - Postfix offers anonymous (ADH, AECDH) suites to opportunistic TLS clients; OpenSSL
#   allows them at security level 0. OpenSSL's automatic DH group for an anonymous
#   128-bit suite is 1024 bits even where the RSA suites get 2048.
# - GnuTLS 3.7 (bookworm) still implements ARCFOUR-128 and 3DES-CBC: the Exim below
#   accepts RC4, the Postfixes cannot.
# - No witness tests STARTTLS command injection; Postfix (since 2.8.4, CVE-2011-0411) and
#   Exim (since 4.74) discard what was pipelined after STARTTLS: documented as false.
SERVERS = {
    # TLS 1.0 to 1.3, every suite OpenSSL 3 still has at level 0 (anonymous DH included),
    # a 1024-bit DH group, P-256 only, the server's own cipher order.
    "postfix-legacy-pref": {
        "kind": "postfix", "addr": "127.0.203.1", "key_type": "rsa",
        "settings": lambda d: _legacy_postfix(d, True, "prime256v1", dh_bits=1024),
        "expected": {"sslv3": False, "tls1_0": True, "tls1_1": True, "tls1_2": True,
                     "tls1_3": True, "rc4": False, "3des": False, "export": False,
                     "null": False, "anon": True, "cbc_only": False, "dhe_bits": 1024,
                     "groups": ["secp256r1"], "server_order": True,
                     "secure_renegotiation": True, "fallback_scsv": True,
                     "starttls_injection": False},
    },
    # The same without server order, with X25519 and P-384 and Postfix's built-in
    # 2048-bit DH group.
    "postfix-legacy-nopref": {
        "kind": "postfix", "addr": "127.0.203.2", "key_type": "rsa",
        "settings": lambda d: _legacy_postfix(d, False, "X25519 secp384r1"),
        "expected": {"sslv3": False, "tls1_0": True, "tls1_1": True, "tls1_2": True,
                     "tls1_3": True, "rc4": False, "3des": False, "export": False,
                     "null": False, "anon": True, "cbc_only": False, "dhe_bits": 2048,
                     "groups": ["secp384r1", "x25519"], "server_order": False,
                     "secure_renegotiation": True, "fallback_scsv": True,
                     "starttls_injection": False},
    },
    # A box never upgraded past TLS 1.0: CBC suites only (AEAD needs TLS 1.2).
    "postfix-tls10-only": {
        "kind": "postfix", "addr": "127.0.203.3", "key_type": "rsa",
        "settings": lambda d: _legacy_postfix(
            d, True, "prime256v1", dh_bits=1024,
            protocols="TLSv1, !TLSv1.1, !TLSv1.2, !TLSv1.3, !SSLv2, !SSLv3"),
        "expected": {"sslv3": False, "tls1_0": True, "tls1_1": False, "tls1_2": False,
                     "tls1_3": False, "rc4": False, "3des": False, "export": False,
                     "null": False, "anon": True, "cbc_only": True, "dhe_bits": 1024,
                     "groups": ["secp256r1"], "server_order": True,
                     "secure_renegotiation": True, "starttls_injection": False},
    },
    # Exim with GnuTLS: a priority string adding TLS 1.0/1.1, 3DES, ARCFOUR-128 and SHA-1
    # MACs to NORMAL, in the server's order (%SERVER_PRECEDENCE).
    "exim-gnutls-legacy": {
        "kind": "exim", "addr": "127.0.203.4", "key_type": "rsa",
        "settings": lambda d: ("tls_require_ciphers = NORMAL:+VERS-TLS1.0:+VERS-TLS1.1"
                               ":+3DES-CBC:+ARCFOUR-128:+SHA1:%SERVER_PRECEDENCE"),
        "expected": {"sslv3": False, "tls1_0": True, "tls1_1": True, "tls1_2": True,
                     "tls1_3": True, "rc4": True, "3des": True, "export": False,
                     "null": False, "anon": False, "cbc_only": False, "dhe_bits": 2048,
                     "server_order": True, "secure_renegotiation": True,
                     "fallback_scsv": True, "starttls_injection": False},
    },
}


def exim_hostname(addr):
    """The fleet's naming convention, as Postfix's default: 127.a.b.c is mx-a-b-c.fleet.test."""
    return postfix.default_myhostname(addr)


@contextlib.contextmanager
def start(name, workdir):
    """Start SERVERS[name]; yields the running Postfix or Exim (addr, port, ca_file; its
    name: name_of(srv))."""
    spec = SERVERS[name]
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    settings = spec["settings"](d)
    if spec["kind"] == "postfix":
        srv = postfix.Postfix(spec["addr"], key_type=spec["key_type"], main_cf=settings)
    else:
        # witnesses connect in bursts: no cap on simultaneous connections (default 20)
        srv = exim.Exim(spec["addr"], hostname=exim_hostname(spec["addr"]),
                        key_type=spec["key_type"], config=settings + "\nsmtp_accept_max = 0")
    with srv:
        yield srv


def unavailable(name):
    """None if SERVERS[name] can run here, else why not."""
    kind = SERVERS[name]["kind"]
    return postfix.available() if kind == "postfix" else exim.available()


def name_of(srv):
    """The server's host name (in its certificate): Postfix's myhostname, Exim's hostname."""
    return getattr(srv, "myhostname", None) or srv.hostname
