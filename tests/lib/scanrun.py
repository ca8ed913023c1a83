"""Running `mxsurvey scan` from the integration tests and reading its records."""
import json
import os
import subprocess

MXS_BIN = os.environ.get("MXS_BIN", "mxsurvey")


def fleet_args(fleet, *extra):
    """Options every fleet scan needs: the fleet's port and CA, loopback allowed."""
    return ["--port", str(fleet.port), "--no-default-blocklist",
            "--ca-file", os.path.join(fleet.certdir, "ca.pem"),
            "--ehlo-name", "scanner.mxsurvey.test", "--quiet", *extra]


def scan(args, input_text, timeout=300, check=True):
    """Run a scan; returns (records by (ip, port), all records, stderr, exit code)."""
    p = subprocess.run([MXS_BIN, "scan", *args], input=input_text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    records = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    if check and p.returncode != 0:
        raise AssertionError(f"scan exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    return records, p.stderr.decode(), p.returncode


def targets_for(ips):
    """Input lines naming each fleet address with its MX name (mx-a-b-c.fleet.test)."""
    lines = []
    for ip in ips:
        a, b, c = ip.split(".")[1:]
        lines.append(f"{ip},mx-{a}-{b}-{c}.fleet.test,d{c}.fleet.test")
    return "\n".join(lines) + "\n"


def get(rec, path):
    """rec['a']['b'] for path 'a.b', None where anything on the way is null."""
    cur = rec
    for part in path.split("."):
        if cur is None:
            return None
        cur = cur.get(part)
    return cur


# Ground-truth key -> where the scanner's record keeps it.
TRUTH_FIELDS = {
    "outcome": "outcome",
    "greeting_code": "greeting.code",
    "greeting_lines": "greeting.lines",
    "ehlo_extensions": "ehlo.extensions",
    "ehlo_verb": "ehlo.verb",
    "starttls_code": "starttls.code",
    "tls_version": "tls.version",
    "cipher": "tls.cipher",
    "trusted": "tls.trusted",
    "name_match": "tls.name_match",
    "expired": "tls.expired",
    "self_signed": "tls.self_signed",
    "mangled_starttls": "tamper.mangled_starttls",
    "starttls_echo": "tamper.starttls_echo",
    "plaintext_after_starttls": "tamper.plaintext_after_starttls",
}


def compare_truth(rec, truth):
    """Differences between a record and its ground truth, as readable strings."""
    diffs = []
    for key, path in TRUTH_FIELDS.items():
        if key not in truth:
            continue
        want, got = truth[key], get(rec, path)
        if want != got:
            diffs.append(f"{truth['ip']} ({truth.get('behaviour')}): {key} want {want!r} got {got!r}")
    return diffs
