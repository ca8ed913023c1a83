"""A hand-built fleet of two nightly scans whose statistics are worked out by hand in
tests/ingest/test_pg_views.py (the comments there derive every number). The report
tests use the same data."""
from pgrecords import (cert, domain, result, reply, smtp_result, sts, tls, tlsrpt)

A = {i: "192.0.2.%d" % i for i in range(1, 17)}
A[9] = "198.51.100.9"          # a second /24 for the tampering-by-network view
A[17] = "2001:db8::17"
A[20] = "203.0.113.20"

DANE_OK = {"tlsa": 1, "dnssec": True, "match": True, "depth": 0}
DANE_BAD = {"tlsa": 1, "dnssec": True, "match": False, "depth": None}
TLSA = [{"usage": 3, "selector": 1, "mtype": 1, "data": "ab" * 32}]


def night1_results():
    return [
        smtp_result(A[1], "success", "ESMTP Postfix", mx="mx1.alpha.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="a1", dane=DANE_OK)),
        smtp_result(A[2], "success", "ESMTP Exim 4.96", mx="mx1.alpha.example", starttls_code=220,
                    tls_info=tls("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                 "ECDHE-RSA-AES128-GCM-SHA256", 128, True, "ECDHE", "secp256r1",
                                 256, trusted=True, name_match=False, leaf="a2",
                                 dane=DANE_BAD)),
        smtp_result(A[3], "success", "Microsoft ESMTP MAIL Service ready", mx="mx.beta.example",
                    starttls_code=220,
                    tls_info=tls("TLSv1", "TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", 128, False,
                                 "RSA", None, None, trusted=False, self_signed=True,
                                 verify_code=18, leaf="a3", dane=DANE_OK)),
        smtp_result(A[4], "success", "ESMTP Sendmail 8.17", mx="mail.provider.net",
                    starttls_code=220,
                    tls_info=tls("TLSv1.2", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE-RSA-AES256-SHA",
                                 256, True, "DHE", "DH", 1024, trusted=False, expired=True,
                                 verify_code=10, leaf="a4")),
        smtp_result(A[5], "success", "ESMTP qmail", mx=None, starttls_code=220,
                    tls_info=tls("TLSv1.1", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", 112,
                                 False, "RSA", None, None, trusted=False, name_match=None,
                                 verify_code=20, leaf="a5")),
        smtp_result(A[6], "no-starttls", "ESMTP ready", mx="mx2.alpha.example", offered=False),
        smtp_result(A[7], "no-starttls", "ESMTP Postfix", mx="mx.eta.co.uk",
                    extensions=["PIPELINING", "XXXXXXXA"],
                    tamper={"mangled_starttls": "XXXXXXXA"}),
        smtp_result(A[8], "starttls-refused", "ESMTP Postfix", mx="mx.gamma.example",
                    starttls_code=454),
        smtp_result(A[9], "handshake-error", "ESMTP Exim", mx="mx.theta.example",
                    starttls_code=220, tamper={"plaintext_after_starttls": 5}),
        result(A[10], "greeting-rejected", greeting=reply(554, "554 mail.example no service")),
        result(A[11], "greeting-timeout"),
        result(A[12], "connection-refused", mx="mx.delta.example"),
        result(A[13], "connection-timeout"),
        result(A[14], "blocked", detail="192.0.2.14/32"),
        result(None, "bad-target", input="not an address\\x09", detail="bad address"),
        smtp_result(A[16], "protocol-error", "x ESMTP Postfix", mx="mx.theta.example",
                    phase="starttls", tamper={"starttls_echo": True}),
        smtp_result(A[17], "success", "ESMTP Postfix", mx="mx.backup.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="a17")),
    ]


def night1_domains():
    return [
        domain("alpha.example", 1, dnssec=True,
               mx=[("mx1.alpha.example", 10, [A[1], A[2]], TLSA), ("mx2.alpha.example", 20, [A[6]])],
               mta_sts=sts("enforce", True), tlsrpt=tlsrpt()),
        domain("beta.example", 50, dnssec=True, mx=[("mx.beta.example", 5, [A[3]], TLSA)]),
        domain("gamma.example", 500,
               mx=[("mx.gamma.example", 10, [A[8]]), ("mx.backup.example", 20, [A[17]])],
               mta_sts=sts("enforce", False)),
        domain("delta.example", 5000, mx=[("mx.delta.example", 0, [A[12]])]),
        domain("eps.example", 50000, mx=[("mail.provider.net", 10, [A[4], A[5]])],
               mta_sts=sts("testing", True), tlsrpt=tlsrpt()),
        domain("zeta.example", 500000, mx=[("mail.provider.net", 10, [A[4], A[5]])]),
        domain("eta.example", None, mx=[("mx.eta.co.uk", 10, [A[7]])]),
        domain("theta.example", 2000000, mx=[("mx.theta.example", 10, [A[9], A[16]])]),
        domain("nomx.example", 3, status="nxdomain", mx=[]),
    ]


def night2_results():
    return [
        # a1: new leaf certificate
        smtp_result(A[1], "success", "ESMTP Postfix", mx="mx1.alpha.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="a1-renewed", dane=DANE_OK),
                    start="2026-11-24T01:00:00.000Z"),
        # a2: now TLS 1.3 with another cipher, same certificate
        smtp_result(A[2], "success", "ESMTP Exim 4.96", mx="mx1.alpha.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256",
                                 128, name_match=False, leaf="a2"),
                    start="2026-11-24T01:00:00.000Z"),
        # a6: gained STARTTLS and TLS
        smtp_result(A[6], "success", "ESMTP ready", mx="mx2.alpha.example", starttls_code=220,
                    tls_info=tls("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                                 "ECDHE-RSA-AES256-GCM-SHA384", 256, True, "ECDHE", "X25519",
                                 253, leaf="a6"),
                    start="2026-11-24T01:00:00.000Z"),
        # a8: stopped offering STARTTLS
        smtp_result(A[8], "no-starttls", "ESMTP Postfix", mx="mx.gamma.example", offered=False,
                    start="2026-11-24T01:00:00.000Z"),
        # a20: new
        smtp_result(A[20], "no-starttls", "ESMTP Postfix", mx="mx.new.example", offered=False,
                    start="2026-11-24T01:00:00.000Z"),
    ]
