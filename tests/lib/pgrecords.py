"""Builders of synthetic result and domain records (docs/record.md, docs/targets.md)
for the PostgreSQL tests and the ingest benchmark. Every builder returns a dict; dump
it with json.dumps(..., separators=(",", ":")) to get a JSONL line."""
import hashlib
import json

EHLO_BASE = ["PIPELINING", "SIZE 10240000", "8BITMIME"]


def fp(name):
    """A stable SHA-256 fingerprint (hex) for a named test certificate."""
    return hashlib.sha256(name.encode()).hexdigest()


def cert(name, subject=None, issuer="CN=Test CA", sans=None, key_type="RSA", key_bits=2048,
         not_before="2026-01-01T00:00:00Z", not_after="2027-01-01T00:00:00Z", pos=0):
    return {"pos": pos, "sha256": fp(name), "subject": subject or "CN=" + name,
            "issuer": issuer, "sans": sans if sans is not None else [name],
            "not_before": not_before, "not_after": not_after, "serial": "0a1b",
            "key_type": key_type, "key_bits": key_bits, "sig_alg": "sha256WithRSAEncryption"}


def tls(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", ossl="TLS_AES_256_GCM_SHA384",
        bits=256, fs=True, kex="TLS1.3", group="X25519", kex_bits=253, trusted=True,
        name_match=True, expired=False, self_signed=False, verify_code=0, leaf="leaf",
        chain=None, dane=None, matched=None):
    return {"version": version, "cipher": cipher, "cipher_openssl": ossl, "cipher_bits": bits,
            "forward_secrecy": fs, "kex": kex, "kex_group": group, "kex_bits": kex_bits,
            "sig_alg": "rsa_pss_rsae_sha256", "verify_code": verify_code,
            "verify_reason": "ok" if verify_code == 0 else "error %d" % verify_code,
            "trusted": trusted, "name_match": name_match,
            "matched_names": matched if matched is not None else [],
            "expired": expired, "not_yet_valid": False, "self_signed": self_signed,
            "dane": dane,
            "chain": chain if chain is not None else [cert(leaf), cert("Test CA", pos=1)]}


def reply(code, *lines):
    return {"code": code, "lines": list(lines)}


def ehlo(code=250, extensions=None, verb="EHLO", host="mx"):
    ext = extensions if extensions is not None else EHLO_BASE + ["STARTTLS"]
    lines = ["%d-%s" % (code, host)] + ["%d-%s" % (code, e) for e in ext]
    if lines:
        lines[-1] = lines[-1].replace("%d-" % code, "%d " % code, 1)
    return {"verb": verb, "code": code, "lines": lines, "extensions": ext}


PHASE = {"success": "done", "no-starttls": "done", "starttls-refused": "starttls",
         "handshake-error": "handshake", "handshake-timeout": "handshake",
         "connection-refused": "connect", "connection-timeout": "connect",
         "unreachable": "connect", "greeting-timeout": "greeting",
         "greeting-rejected": "greeting", "ehlo-rejected": "ehlo", "ehlo-timeout": "ehlo",
         "starttls-timeout": "starttls", "peer-closed": "ehlo", "protocol-error": "ehlo",
         "deadline": "greeting", "blocked": "none", "bad-target": "none",
         "interrupted": "greeting", "local-error": "connect"}


def result(ip, outcome, mx=None, domains=None, port=25, greeting=None, ehlo_reply=None,
           starttls=None, tls_info=None, ehlo_tls=None, tamper=None, start="2026-11-23T01:00:00.000Z",
           detail="", phase=None, **extra):
    """A result record. greeting/ehlo_reply/starttls/tls_info are the record's objects
    (see reply(), ehlo(), tls()); None where the session did not get that far."""
    t = {"mangled_starttls": None, "starttls_echo": False, "plaintext_after_starttls": 0}
    if tamper:
        t.update(tamper)
    rec = {"type": "result", "v": 1, "ip": ip, "port": port, "mx": mx,
           "mx_names": [mx] if mx else [], "domains": domains or [], "start": start,
           "outcome": outcome, "phase": phase or PHASE.get(outcome, "done"), "detail": detail,
           "attempts": 1, "ehlo_name": "scanner.example.org", "profile": "default-v1",
           "greeting": greeting, "ehlo": ehlo_reply, "starttls": starttls, "tls": tls_info,
           "ehlo_tls": ehlo_tls, "tamper": t,
           "timing_ms": {"connect": 3 if greeting else None, "greeting": 5 if greeting else None,
                         "ehlo": 2 if ehlo_reply else None, "starttls": 1 if starttls else None,
                         "handshake": 9 if tls_info else None,
                         "ehlo_tls": 2 if ehlo_tls else None, "total": 30},
           "transcript": [{"dir": "S", "t": 3, "data": greeting["lines"][0]}] if greeting else []}
    rec.update(extra)
    return rec


def smtp_result(ip, outcome, software_banner="ESMTP", mx=None, offered=True, starttls_code=None,
                tls_info=None, extensions=None, **kw):
    """A result that reached EHLO: greeting naming the software, EHLO (with or without
    STARTTLS), the STARTTLS reply and the TLS object as the outcome implies."""
    host = mx or "mx.example"
    ext = extensions if extensions is not None else (
        EHLO_BASE + ["STARTTLS"] if offered else list(EHLO_BASE))
    st = None
    if starttls_code is not None:
        st = reply(starttls_code, "%d 2.0.0 Ready to start TLS" % starttls_code
                   if starttls_code == 220 else "%d 4.7.0 TLS not available" % starttls_code)
    return result(ip, outcome, mx=mx, greeting=reply(220, "220 %s %s" % (host, software_banner)),
                  ehlo_reply=ehlo(extensions=ext, host=host), starttls=st, tls_info=tls_info,
                  ehlo_tls=ehlo(extensions=EHLO_BASE, host=host) if tls_info else None, **kw)


def domain(name, rank=None, status="ok", dnssec=False, mx=None, mta_sts=None, tlsrpt=None):
    """mx: list of (host, pref, [addrs]) or dicts."""
    mxl = []
    for m in mx or []:
        if isinstance(m, dict):
            mxl.append(m)
            continue
        host, pref, addrs = m[:3]
        tlsa = m[3] if len(m) > 3 else []
        mxl.append({"host": host, "pref": pref, "cname": None, "status": "ok", "addrs": addrs,
                    "tlsa": tlsa, "tlsa_dnssec": bool(tlsa) and dnssec,
                    "tlsa_status": "ok" if tlsa else "nodata"})
    return {"type": "domain", "domain": name, "rank": rank, "status": status, "dnssec": dnssec,
            "mx": mxl, "mta_sts": mta_sts, "tlsrpt": tlsrpt}


def sts(mode, mx_match=True, mx=None):
    return {"txt": "v=STSv1; id=20260101", "id": "20260101", "status": "ok", "error": None,
            "dnssec": False, "policy": {"status": "ok", "mode": mode, "max_age": 86400, "mx": mx or ["*.example"],
                       "mx_match": mx_match, "error": None}}


def tlsrpt():
    return {"txt": "v=TLSRPTv1; rua=mailto:tlsrpt@example.org",
            "rua": ["mailto:tlsrpt@example.org"], "status": "ok", "error": None, "dnssec": True}


def line(rec):
    return json.dumps(rec, separators=(",", ":"))


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(r if isinstance(r, str) else line(r))
            f.write("\n")
