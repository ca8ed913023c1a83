"""
The witness parsers (tests/lib/witness.py) on real outputs: sslscan 2.0.7 and nmap 7.93
ssl-enum-ciphers as Debian bookworm ships them, run against the servers of
tests/lib/legacyservers.py (witness_data/, captured by the author on 2026-12-07), plus
the suite classifier and the vote. No server, no network.
"""
import os
import unittest

import witness

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "witness_data")


def read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def sslscan(server):
    return witness.parse_sslscan(read(f"{server}.sslscan.txt"), read(f"{server}.sslscan.xml"))


def nmap(server):
    return witness.parse_nmap_xml(read(f"{server}.nmap.xml"))


class Classify(unittest.TestCase):
    def test_classes(self):
        c = witness.classify
        self.assertEqual(c("TLS_RSA_WITH_RC4_128_SHA"), {"rc4"})
        self.assertEqual(c("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"), {"3des", "cbc"})
        self.assertEqual(c("TLS_RSA_EXPORT_WITH_RC4_40_MD5"), {"export", "rc4"})
        self.assertEqual(c("TLS_RSA_WITH_NULL_SHA"), {"null"})
        self.assertEqual(c("TLS_DH_anon_WITH_AES_128_GCM_SHA256"), {"anon", "aead"})
        self.assertEqual(c("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"), {"aead"})
        self.assertEqual(c("TLS_AES_128_CCM_8_SHA256"), {"aead"})
        # OpenSSL and nmap spellings
        self.assertEqual(c("ADH-AES128-SHA"), {"anon", "cbc"})
        self.assertEqual(c("ECDHE-RSA-AES256-GCM-SHA384"), {"aead"})
        self.assertEqual(witness.iana("TLS_AKE_WITH_AES_256_GCM_SHA384"), "TLS_AES_256_GCM_SHA384")
        self.assertEqual(witness.iana("DHE-RSA-AES256-SHA"), "TLS_DHE_RSA_WITH_AES_256_CBC_SHA")


class Sslscan(unittest.TestCase):
    def test_postfix_legacy_pref(self):
        f, errors = sslscan("postfix-legacy-pref")
        self.assertEqual(errors, [])
        self.assertEqual([f[v] for v in witness.VERSIONS], [False, True, True, True, True])
        self.assertEqual([f[c] for c in witness.CLASSES], [False, False, False, False, True])
        self.assertFalse(f["cbc_only"])
        self.assertEqual(f["dhe_bits"], 1024)
        self.assertEqual(f["groups"], ["secp256r1"])
        self.assertTrue(f["fallback_scsv"])
        self.assertTrue(f["secure_renegotiation"])
        self.assertIsNone(f["server_order"])  # sslscan does not say
        self.assertEqual(f["prefer_tls1_2"], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        self.assertEqual(f["prefer_tls1_0"], "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA")
        self.assertIn("TLS_DH_anon_WITH_AES_128_CBC_SHA", f["suites"]["tls1_0"])

    def test_postfix_nopref_dh_groups(self):
        f, errors = sslscan("postfix-legacy-nopref")
        self.assertEqual(errors, [])
        self.assertEqual(f["groups"], ["secp384r1", "x25519"])
        # RSA-authenticated DHE gets 2048 bits; OpenSSL's automatic group for an
        # anonymous 128-bit suite is 1024, for a 256-bit one 3072
        self.assertEqual(f["dhe_bits"], 2048)
        self.assertEqual(f["dhe_bits_seen"], [1024, 2048, 3072])

    def test_tls10_only(self):
        f, errors = sslscan("postfix-tls10-only")
        self.assertEqual(errors, [])
        self.assertEqual([f[v] for v in witness.VERSIONS], [False, True, False, False, False])
        self.assertTrue(f["cbc_only"])
        self.assertEqual(f["suites"]["tls1_2"], [])
        # one version only: nothing to fall back from, and sslscan calls that "no"
        self.assertFalse(f["fallback_scsv"])

    def test_exim_gnutls_rc4(self):
        f, errors = sslscan("exim-gnutls-legacy")
        self.assertEqual(errors, [])
        self.assertTrue(f["rc4"])
        self.assertTrue(f["3des"])
        self.assertFalse(f["anon"])
        self.assertIn("TLS_RSA_WITH_RC4_128_SHA", f["suites"]["tls1_0"])
        self.assertIn("TLS_ECDHE_RSA_WITH_RC4_128_SHA", f["suites"]["tls1_2"])
        self.assertIn("ffdhe2048", f["groups"])  # TLS 1.3 finite-field groups
        self.assertIn("x448", f["groups"])

    def test_refused_connections_are_errors(self):
        xml = read("postfix-legacy-pref.sslscan.xml").replace(
            " <certificates>", " <error><![CDATA[The host 127.0.0.1 on port 25 did not appear"
            " to be an SMTP service.]]></error>\n <certificates>")
        _, errors = witness.parse_sslscan_xml(xml)
        self.assertEqual(len(errors), 1)


class Nmap(unittest.TestCase):
    def test_postfix_server_order(self):
        f, errors = nmap("postfix-legacy-pref")
        self.assertEqual(errors, [])
        self.assertTrue(f["server_order"])
        self.assertEqual([f[v] for v in witness.VERSIONS], [False, True, True, True, True])
        self.assertEqual(f["dhe_bits"], 1024)
        self.assertTrue(f["anon"])
        self.assertIsNone(f["groups"])  # nmap does not enumerate groups
        self.assertEqual(f["prefer_tls1_3"], "TLS_AES_256_GCM_SHA384")

    def test_postfix_client_order(self):
        f, errors = nmap("postfix-legacy-nopref")
        self.assertEqual(errors, [])
        self.assertFalse(f["server_order"])
        self.assertIsNone(f["prefer_tls1_2"])

    def test_tls10_only(self):
        f, errors = nmap("postfix-tls10-only")
        self.assertEqual(errors, [])
        self.assertEqual([f[v] for v in witness.VERSIONS], [False, True, False, False, False])
        self.assertTrue(f["cbc_only"])

    def test_exim(self):
        f, errors = nmap("exim-gnutls-legacy")
        self.assertEqual(errors, [])
        self.assertTrue(f["rc4"] and f["3des"])
        self.assertEqual(f["dhe_bits"], 2048)

    def test_no_script_is_an_error(self):
        _, errors = witness.parse_nmap_xml('<?xml version="1.0"?><nmaprun><host/></nmaprun>')
        self.assertEqual(len(errors), 1)


class Testssl(unittest.TestCase):
    def test_exim(self):
        f, errors = witness.parse_testssl_json(read("exim-gnutls-legacy.testssl.json"))
        self.assertEqual(errors, [])  # its "no GOST engine" warning is about our OpenSSL
        self.assertEqual([f[v] for v in witness.VERSIONS], [False, True, True, True, True])
        self.assertTrue(f["rc4"] and f["3des"])
        self.assertFalse(f["anon"] or f["export"] or f["null"])
        self.assertTrue(f["server_order"])
        self.assertTrue(f["fallback_scsv"])
        self.assertTrue(f["secure_renegotiation"])
        self.assertEqual(f["dhe_bits"], 2048)
        self.assertEqual(f["prefer_tls1_2"], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        self.assertIn("TLS_RSA_WITH_RC4_128_SHA", f["suites"]["tls1_1"])

    def test_three_witnesses_agree_on_exim(self):
        # testssl ran on another start of the same configuration (other port, same answers)
        r = witness.compare({
            "sslscan": sslscan("exim-gnutls-legacy")[0],
            "nmap": nmap("exim-gnutls-legacy")[0],
            "testssl": witness.parse_testssl_json(read("exim-gnutls-legacy.testssl.json"))[0]})
        self.assertEqual(witness.disagreements(r), [])


class Vote(unittest.TestCase):
    def test_agreement_on_real_outputs(self):
        for server in ("postfix-legacy-pref", "postfix-legacy-nopref", "postfix-tls10-only",
                       "exim-gnutls-legacy"):
            r = witness.compare({"sslscan": sslscan(server)[0], "nmap": nmap(server)[0]})
            bad = witness.disagreements(r)
            if server == "postfix-legacy-nopref":
                # sslscan's "preferred" is its own first pick where the server follows the
                # client: only the prefer_* keys differ there
                self.assertTrue(all(b.startswith("prefer_") for b in bad), bad)
            else:
                self.assertEqual(bad, [], server)

    def test_majority_and_tie(self):
        r = witness.compare({"a": {"rc4": True}, "b": {"rc4": True}, "c": {"rc4": False},
                             "d": {"rc4": None}}, keys=("rc4",))
        self.assertEqual(r["rc4"]["majority"], True)
        self.assertFalse(r["rc4"]["agree"])
        self.assertNotIn("d", r["rc4"]["values"])
        r = witness.compare({"a": {"x": 1}, "b": {"x": 2}}, keys=("x",))
        self.assertIsNone(r["x"]["majority"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
