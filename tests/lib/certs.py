"""Test certificates with the `openssl` command line (standard library only).

    ca_pem, ca_key = make_ca(dir)                    # or a fleet certdir's ca.pem/ca.key
    cert, key = make_leaf(dir, ca_pem, ca_key, ["mx-0-200-1.fleet.test"])

A leaf signed by the fleet's CA (mxsurvey-fleet's certdir) verifies with the same
--ca-file as the fleet, so one scan can cover both.
"""

import os
import secrets
import subprocess

VALID_DAYS = 3650


def _openssl(*args, stdin=None):
    subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True)


def _key_args(key_type):
    if key_type == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    if key_type == "rsa":
        return ["-newkey", "rsa:2048"]
    raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")


def make_ca(directory, name="mxsurvey test CA", stem="ca"):
    """A self-signed CA in directory: (<stem>.pem, <stem>.key)."""
    cert = os.path.join(directory, f"{stem}.pem")
    key = os.path.join(directory, f"{stem}.key")
    _openssl("req", "-x509", *_key_args("ec"), "-nodes", "-keyout", key, "-out", cert,
             "-subj", f"/O=mxsurvey test/CN={name}", "-days", str(VALID_DAYS),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(directory, ca_cert, ca_key, names, key_type="ec", stem="leaf", days=VALID_DAYS):
    """A server certificate for names (DNS SANs; the first is also the CN), signed by the
    CA. Returns (<stem>.pem, <stem>.key); <stem>-chain.pem holds the leaf then the CA."""
    cert = os.path.join(directory, f"{stem}.pem")
    key = os.path.join(directory, f"{stem}.key")
    csr = os.path.join(directory, f"{stem}.csr")
    ext = os.path.join(directory, f"{stem}.ext")
    usage = "digitalSignature,keyEncipherment" if key_type == "rsa" else "digitalSignature"
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                f"keyUsage=critical,{usage}\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid:always\n"
                "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    _openssl("req", "-new", *_key_args(key_type), "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/O=mxsurvey test/CN={names[0]}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", str(secrets.randbits(63) | 1 << 62), "-days", str(days),
             "-sha256", "-extfile", ext, "-out", cert)
    os.chmod(key, 0o600)
    with open(os.path.join(directory, f"{stem}-chain.pem"), "w") as out:
        for path in (cert, ca_cert):
            with open(path) as f:
                out.write(f.read())
    os.unlink(csr)
    os.unlink(ext)
    return cert, key
