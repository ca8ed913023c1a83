"""Independent witnesses of what a STARTTLS server accepts: sslscan, nmap's
ssl-enum-ciphers and testssl.sh, run against a loopback server and parsed into one normal
form (standard library only).

    w = run_sslscan("127.0.203.1", 2525, tmpdir)  # a Witness: .name, .raw, .form, .errors
    w = run_nmap("127.0.203.1", 2525)
    report = compare({"sslscan": w1.form, "nmap": w2.form})

The normal form is a dict whose keys are those of the record's `support` object
(docs/record.md), so a scan's answer compares key by key:

    sslv3 tls1_0 tls1_1 tls1_2 tls1_3   version accepted (bool)
    rc4 3des export null anon           a suite of the class accepted, any version (bool)
    cbc_only                            below TLS 1.3 suites are accepted and none is AEAD
    prefer_<version>                    IANA name of the suite the server picks from the
                                        witness's full offer (None: not said)
    server_order                        the server imposes its own order (None: not said)
    dhe_bits                            smallest finite-field DHE prime of a non-anonymous
                                        DHE suite (None: no such suite accepted)
    groups                              key-exchange groups accepted, sorted IANA names
                                        (None: the witness does not enumerate them)
    fallback_scsv secure_renegotiation  (None: the witness does not test it)

plus `suites` ({version: sorted IANA names}) and `dhe_bits_seen` (every prime size, anonymous
suites included). A witness that does not answer a question gives None for it: compare()
leaves it out of the vote instead of counting it as "no".

Suite classes are judged from the IANA name (OpenSSL names are mapped through `openssl
ciphers -stdname`), see classify().
"""

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

VERSIONS = ("sslv3", "tls1_0", "tls1_1", "tls1_2", "tls1_3")
CLASSES = ("rc4", "3des", "export", "null", "anon")
# the witnesses' spellings of the versions
_VERSION_KEYS = {
    "SSLv3": "sslv3", "TLSv1.0": "tls1_0", "TLSv1.1": "tls1_1", "TLSv1.2": "tls1_2",
    "TLSv1.3": "tls1_3", "SSLv3.0": "sslv3",
}
# compared by compare(): every key of the normal form that a scan answers too
# (starttls_injection: no witness tests it; there for the documented truth)
KEYS = (VERSIONS + CLASSES + ("cbc_only", "server_order", "dhe_bits", "groups",
                              "fallback_scsv", "secure_renegotiation", "starttls_injection")
        + tuple("prefer_" + v for v in VERSIONS))


class WitnessError(RuntimeError):
    pass


class Witness:
    """One witness's run: name, its raw output (text), its normal form, its complaints."""

    def __init__(self, name, raw, form, errors=()):
        self.name = name
        self.raw = raw
        self.form = form
        self.errors = list(errors)

    def __repr__(self):
        return f"Witness({self.name!r}, errors={self.errors!r})"


def available():
    """{witness name: None if it can run, else why not}."""
    return {
        "sslscan": None if shutil.which("sslscan") else "sslscan is not installed",
        "nmap": None if shutil.which("nmap") else "nmap is not installed",
        "testssl": None if (shutil.which("testssl") or shutil.which("testssl.sh"))
        else "testssl.sh is not installed",
    }


# ---- suite names and classes

_STDNAMES = None


def _stdnames():
    """{OpenSSL suite name: IANA name} for every suite this OpenSSL knows."""
    global _STDNAMES
    if _STDNAMES is None:
        out = subprocess.run(["openssl", "ciphers", "-stdname",
                              "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                             capture_output=True, text=True, check=True).stdout
        _STDNAMES = {}
        for line in out.splitlines():
            parts = line.split(" - ")
            if len(parts) >= 2:
                _STDNAMES[parts[1].split()[0]] = parts[0].strip()
    return _STDNAMES


def iana(name):
    """The IANA name of a suite given by its IANA, OpenSSL or nmap name."""
    if name.startswith("TLS_AKE_WITH_"):  # nmap's spelling of the TLS 1.3 suites
        return "TLS_" + name[len("TLS_AKE_WITH_"):]
    if name.startswith(("TLS_", "SSL_")):
        return "TLS_" + name[4:] if name.startswith("SSL_") else name
    return _stdnames().get(name, name)


def classify(name):
    """The classes of one suite (IANA name): a set of rc4, 3des, export, null, anon, aead,
    cbc."""
    n = iana(name)
    out = set()
    if "_RC4_" in n:
        out.add("rc4")
    if "3DES" in n:
        out.add("3des")
    if "_EXPORT" in n:
        out.add("export")
    if "_WITH_NULL_" in n:
        out.add("null")
    if "_anon_" in n:
        out.add("anon")
    if re.search(r"_GCM_|_CCM|CHACHA20_POLY1305", n):
        out.add("aead")
    elif "_CBC" in n:
        out.add("cbc")
    return out


def _empty_form():
    form = {k: None for k in KEYS}
    form.update({"suites": {}, "dhe_bits_seen": []})
    return form


def _fill_from_suites(form, dhe_bits_by_suite):
    """Versions, classes, cbc_only and dhe_bits from form['suites'] (every version a
    witness tested is in suites, possibly with an empty list)."""
    for v in VERSIONS:
        if v in form["suites"]:
            form[v] = bool(form["suites"][v])
    classes = set()
    below13 = set()
    for v, names in form["suites"].items():
        for n in names:
            c = classify(n)
            classes |= c
            if v != "tls1_3":
                below13 |= c
    for c in CLASSES:
        form[c] = c in classes
    accepted_below13 = any(form["suites"].get(v) for v in VERSIONS if v != "tls1_3")
    form["cbc_only"] = accepted_below13 and "aead" not in below13
    named = [b for n, b in dhe_bits_by_suite if b and "_DHE_" in n]
    form["dhe_bits"] = min(named) if named else None
    form["dhe_bits_seen"] = sorted({b for _, b in dhe_bits_by_suite if b})


# ---- sslscan

def parse_sslscan_xml(text):
    """Normal form and errors from `sslscan --xml=-` output."""
    form = _empty_form()
    root = ET.fromstring(text)
    test = root.find("ssltest")
    if test is None:
        raise WitnessError("no <ssltest> in sslscan's XML")
    errors = [(e.text or "").strip() for e in test.iter("error")]
    for p in test.findall("protocol"):
        ver = {("ssl", "3"): "sslv3", ("tls", "1.0"): "tls1_0", ("tls", "1.1"): "tls1_1",
               ("tls", "1.2"): "tls1_2", ("tls", "1.3"): "tls1_3"}.get(
                   (p.get("type"), p.get("version")))
        if ver:
            form["suites"].setdefault(ver, [])
            form[ver] = p.get("enabled") == "1"
    dh = []
    for c in test.findall("cipher"):
        ver = _VERSION_KEYS.get(c.get("sslversion"))
        if ver is None:
            continue
        name = iana(c.get("cipher"))
        form["suites"].setdefault(ver, []).append(name)
        if c.get("status") == "preferred":
            form["prefer_" + ver] = name
        if c.get("dhebits"):
            dh.append((name, int(c.get("dhebits"))))
    protocols = {v: form[v] for v in VERSIONS}
    _fill_from_suites(form, dh)
    # sslscan's protocol lines come from their own handshakes: a version it says is
    # enabled stays so even if no suite of that version was listed
    for v, on in protocols.items():
        if on is not None:
            form[v] = on or form[v]
    groups = sorted({g.get("name").split()[0] for g in test.findall("group")})
    form["groups"] = groups if test.findall("group") else None
    for v in form["suites"]:
        form["suites"][v] = sorted(set(form["suites"][v]))
    r = test.find("renegotiation")
    if r is not None:
        form["secure_renegotiation"] = r.get("secure") == "1"
    return form, errors


def parse_sslscan_fallback(text):
    """sslscan's XML has no TLS_FALLBACK_SCSV element: its text output says it."""
    if "Server supports TLS Fallback SCSV" in text:
        return True
    if "Server does not support TLS Fallback SCSV" in text:
        return False
    return None


def run_sslscan(addr, port, workdir, timeout=300):
    """sslscan --starttls-smtp against addr:port: a Witness (raw: the text output, then
    the XML; the XML lacks the fallback SCSV line)."""
    xml = os.path.join(workdir, f"sslscan-{addr}-{port}.xml")
    # heartbleed and compression are not questions of ours: fewer connections
    cmd = ["sslscan", "--no-colour", "--starttls-smtp", "--no-heartbleed",
           "--no-compression", f"--xml={xml}", f"{addr}:{port}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    try:
        with open(xml) as f:
            xml_text = f.read()
    except OSError:
        raise WitnessError(f"sslscan wrote no XML (exit {p.returncode}): {p.stdout[-1000:]}"
                           f"{p.stderr[-1000:]}")
    form, errors = parse_sslscan(p.stdout, xml_text)
    return Witness("sslscan", p.stdout + "\n" + xml_text, form, errors)


def parse_sslscan(text, xml_text):
    """Normal form and errors from sslscan's text output and its XML file."""
    form, errors = parse_sslscan_xml(xml_text)
    form["fallback_scsv"] = parse_sslscan_fallback(text)
    return form, errors


# ---- nmap ssl-enum-ciphers

def parse_nmap_xml(text):
    """Normal form and errors from `nmap -oX - --script ssl-enum-ciphers` output."""
    form = _empty_form()
    root = ET.fromstring(text)
    script = None
    for s in root.iter("script"):
        if s.get("id") == "ssl-enum-ciphers":
            script = s
    if script is None:
        return form, ["nmap ran no ssl-enum-ciphers (is the port recognised as SMTP?)"]
    dh = []
    orders = []
    for vt in script.findall("table"):
        ver = _VERSION_KEYS.get(vt.get("key"))
        if ver is None:
            continue
        names = []
        ciphers = vt.find("table[@key='ciphers']")
        for ct in (ciphers.findall("table") if ciphers is not None else []):
            name = iana(ct.findtext("elem[@key='name']") or "")
            kex = ct.findtext("elem[@key='kex_info']") or ""
            names.append(name)
            m = re.fullmatch(r"dh (\d+)", kex.strip())
            if m:
                dh.append((name, int(m.group(1))))
        form["suites"][ver] = names
        pref = vt.findtext("elem[@key='cipher preference']")
        if pref in ("server", "client"):
            orders.append(pref == "server")
            # with the server's order nmap lists the suites in that order
            if pref == "server" and names:
                form["prefer_" + ver] = names[0]
    # nmap only lists versions that answered: the others were refused
    for v in VERSIONS:
        form["suites"].setdefault(v, [])
    _fill_from_suites(form, dh)
    form["server_order"] = (all(orders) if orders and len(set(orders)) == 1 else None)
    for v in form["suites"]:
        form["suites"][v] = sorted(set(form["suites"][v]))
    return form, []


def run_nmap(addr, port, timeout=300):
    """nmap's ssl-enum-ciphers against addr:port, STARTTLS through its SMTP support
    (service detection names the port SMTP so the script says STARTTLS): a Witness."""
    cmd = ["nmap", "-Pn", "-n", "-sT", "-sV", "--version-intensity", "0",
           "-p", str(port), "--script", "ssl-enum-ciphers",
           "--script-args", "smtp.domain=scanner.mxsurvey.test", "-oX", "-", addr]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or "<nmaprun" not in p.stdout:
        raise WitnessError(f"nmap exited {p.returncode}: {p.stderr[-1000:]}")
    form, errors = parse_nmap_xml(p.stdout)
    return Witness("nmap", p.stdout, form, errors)


# ---- testssl.sh

_TESTSSL_VERSIONS = {"SSLv3": "sslv3", "TLS1": "tls1_0", "TLS1_1": "tls1_1",
                     "TLS1_2": "tls1_2", "TLS1_3": "tls1_3"}


def parse_testssl_json(text):
    """Normal form and errors from testssl.sh's --jsonfile (flat) output."""
    form = _empty_form()
    items = json.loads(text)
    errors = []
    dh = []
    order = {}
    for it in items:
        ident, finding, sev = it.get("id", ""), it.get("finding", ""), it.get("severity", "")
        # (engine_problem: this OpenSSL has no GOST engine; not about the server)
        if sev in ("FATAL", "WARN") and ident == "scanProblem":
            errors.append(finding)
        if ident in _TESTSSL_VERSIONS:
            v = _TESTSSL_VERSIONS[ident]
            form["suites"].setdefault(v, [])
            form[v] = finding.startswith("offered")
        m = re.fullmatch(r"cipher-(tls1(?:_[123])?|ssl3)_x[0-9a-f]+", ident)
        if m:
            v = {"ssl3": "sslv3", "tls1": "tls1_0"}.get(m.group(1), m.group(1))
            # "x13  TLS_AES_... ECDH 253 AESGCM 128 TLS_AES_128_GCM_SHA256"
            std = finding.split()[-1]
            form["suites"].setdefault(v, []).append(iana(std))
            dhm = re.search(r"\bDH (\d+)\b", finding)
            if dhm:
                dh.append((iana(std), int(dhm.group(1))))
        if ident == "fallback_SCSV":
            if finding.startswith("supported"):
                form["fallback_scsv"] = True
            elif "not supported" in finding or "NOT supported" in finding:
                form["fallback_scsv"] = False
        if ident == "secure_renego":
            form["secure_renegotiation"] = "supported" in finding and "not" not in finding.lower()
        if ident == "cipher_order":
            form["server_order"] = "server" in finding
        # "cipherorder_TLSv1_2": the suites in the order the server picked them
        m = re.fullmatch(r"cipherorder_(TLSv1(?:_[123])?|SSLv3)", ident)
        if m and finding.split():
            v = {"TLSv1": "tls1_0", "TLSv1_1": "tls1_1", "TLSv1_2": "tls1_2",
                 "TLSv1_3": "tls1_3", "SSLv3": "sslv3"}[m.group(1)]
            order[v] = iana(finding.split()[0])
    protocols = {v: form[v] for v in VERSIONS}
    _fill_from_suites(form, dh)
    for v, on in protocols.items():
        if on is not None:
            form[v] = on or form[v]
    for v in form["suites"]:
        form["suites"][v] = sorted(set(form["suites"][v]))
    if form["server_order"]:
        for v, name in order.items():
            form["prefer_" + v] = name
    return form, errors


def run_testssl(addr, port, workdir, timeout=900):
    """testssl.sh -t smtp against addr:port (protocols, every suite per version, server
    order, renegotiation, fallback SCSV): a Witness. Slow (minutes)."""
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    out = os.path.join(workdir, f"testssl-{addr}-{port}.json")
    cmd = [exe, "--quiet", "--color", "0", "--warnings", "batch", "-t", "smtp",
           "--jsonfile", out, "-p", "-E", "-P", "-R", "-Z", f"{addr}:{port}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    try:
        with open(out) as f:
            text = f.read()
    except OSError:
        raise WitnessError(f"testssl wrote no JSON (exit {p.returncode}): {p.stdout[-1500:]}")
    form, errors = parse_testssl_json(text)
    return Witness("testssl", text, form, errors)


# ---- comparing

def compare(forms, keys=KEYS):
    """Compare witnesses' normal forms key by key.

    Returns {key: {"values": {witness: value}, "majority": value or None, "agree": bool}};
    witnesses answering None are left out of the vote; "majority" is the value most of the
    answering witnesses give (None on a tie), "agree" whether they all give it.
    """
    out = {}
    for k in keys:
        values = {w: f.get(k) for w, f in forms.items() if f.get(k) is not None}
        counts = {}
        for v in values.values():
            key = json.dumps(v, sort_keys=True)
            counts[key] = counts.get(key, 0) + 1
        majority = None
        if counts:
            best = max(counts.values())
            tops = [json.loads(kk) for kk, n in counts.items() if n == best]
            majority = tops[0] if len(tops) == 1 else None
        out[k] = {"values": values, "majority": majority, "agree": len(counts) <= 1}
    return out


def disagreements(report):
    """Human lines for the keys where witnesses disagree."""
    return [f"{k}: {v['values']}" for k, v in report.items() if not v["agree"]]
