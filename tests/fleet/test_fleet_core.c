/* Unit tests of the fleet's behaviour table, address ranges and ground truth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "behaviour.h"
#include "fproto.h"
#include "truth.h"

/* The contract with the scanner's tests: names and order, as published in docs/fleet.md. */
static const char *const contract_names[] = {
	"starttls-ecdsa", "starttls-rsa", "cert-expired", "cert-self-signed", "cert-wrong-name",
	"no-starttls", "starttls-454", "tls10-only", "tls12-only", "multiline-greeting",
	"slow-greeting", "tarpit", "reset-after-ehlo", "garbage", "long-line",
	"endless-multiline", "greeting-421", "hostile-greeting", "greeting-554", "starttls-echo",
	"mangled-starttls", "pipelined-injection", "ehlo-reject", "trickle",
	"close-after-greeting", "421-then-ok", "handshake-garbage", "unsolicited-data",
	"dhe-1024", "static-rsa", "legacy-rc4-tls10", "legacy-ssl3-export", "legacy-modern",
	"legacy-intolerant", "legacy-close-unknown", "legacy-dhe-odd", "starttls-injection",
	"capability-flood", "huge-line", "starttls-stall",
};

static void test_names_are_the_contract(void **state)
{
	assert_int_equal(sizeof(contract_names) / sizeof(contract_names[0]), FB_LAST);
	for (int i = 0; i < FB_LAST; i++) {
		assert_non_null(fb_behaviours[i].name);
		assert_non_null(fb_behaviours[i].about);
		assert_string_equal(fb_behaviours[i].name, contract_names[i]);
		assert_int_equal(fb_find(contract_names[i]), i);
	}
	assert_int_equal(fb_find("no-such-behaviour"), -1);
}

/* The classification agrees with what the server does. */
static void test_table_is_consistent(void **state)
{
	for (int i = 0; i < FB_LAST; i++) {
		const struct fb_behaviour *b = &fb_behaviours[i];
		struct fb_bytes r = fb_starttls_reply(b);
		int early = b->outcome != FB_OUT_SUCCESS && b->outcome != FB_OUT_NO_STARTTLS &&
			    b->outcome != FB_OUT_STARTTLS_REFUSED && b->outcome != FB_OUT_EHLO_REJECTED;

		/* An outcome that ends the session early says where. */
		assert_int_equal(early, b->phase != FB_PHASE_NONE);
		if (b->outcome == FB_OUT_SUCCESS)
			assert_true(fb_speaks_tls(b));
		if (b->outcome == FB_OUT_NO_STARTTLS)
			assert_false(fb_advertises_starttls(b));
		if (b->outcome == FB_OUT_STARTTLS_REFUSED)
			assert_true(r.p != NULL && r.p[0] != '2');
		if (b->greeting != FB_GREET_LINES && b->greeting != FB_GREET_SILENT)
			assert_non_null(b->lines); /* streams start from their first line */
	}
}

static void test_pick_seed_zero_is_last_octet(void **state)
{
	for (uint32_t k = 0; k < 512; k++) {
		assert_int_equal(fb_pick(0x7f000000u | k, 0), (k & 0xff) % FB_SMTP_LAST);
		/* The SMTP family has 37 (the legacy ones among them); IMAP and POP3 reach the
		 * access behaviours too. */
		assert_int_equal(fp_pick(fp_find("submissions"), 0x7f000000u | k, 0), (k & 0xff) % FB_SMTP_LAST);
		assert_int_equal(fp_pick(fp_find("pop3s"), 0x7f000000u | k, 0), (k & 0xff) % FB_LAST);
	}
	assert_int_equal(FB_SMTP_LAST, 37);
	assert_int_equal(FB_LAST, 40);
	assert_null(fp_find("smtps"));
}

/* The IMAP and POP3 renditions, byte for byte. */
static void test_access_bytes(void **state)
{
	const struct fb_behaviour *b = fb_behaviours;
	char buf[256];
	int go;
	size_t n;

	n = fp_starttls_reply(&b[FB_STARTTLS_ECDSA], FP_DIALECT_IMAP, "A2", buf, sizeof(buf), &go);
	assert_int_equal(go, 1);
	assert_string_equal(buf, "A2 OK Begin TLS negotiation now\r\n");
	assert_int_equal(n, strlen(buf));
	fp_starttls_reply(&b[FB_STARTTLS_454], FP_DIALECT_IMAP, "x7", buf, sizeof(buf), &go);
	assert_int_equal(go, 0);
	assert_string_equal(buf, "x7 NO TLS not available due to local problem\r\n");
	fp_starttls_reply(&b[FB_STARTTLS_454], FP_DIALECT_POP3, "x7", buf, sizeof(buf), &go);
	assert_string_equal(buf, "-ERR TLS not available due to local problem\r\n");
	fp_starttls_reply(&b[FB_STARTTLS_ECHO], FP_DIALECT_POP3, "A2", buf, sizeof(buf), &go);
	assert_string_equal(buf, "STLS\r\n");
	assert_int_equal(go, 0);
	fp_starttls_reply(&b[FB_PIPELINED_INJECTION], FP_DIALECT_POP3, "A2", buf, sizeof(buf), &go);
	assert_string_equal(buf, "+OK Begin TLS negotiation\r\n+OK injected\r\n");
	assert_int_equal(go, 1);
	assert_int_equal(fp_starttls_reply(&b[FB_STARTTLS_ECDSA], FP_DIALECT_IMAP, "A2", buf, 8, &go), 0);
	assert_true(fp_offers_starttls(&b[FB_STARTTLS_ECDSA], FP_DIALECT_IMAP));
	assert_true(fp_offers_starttls(&b[FB_STARTTLS_ECDSA], FP_DIALECT_POP3));
	assert_false(fp_offers_starttls(&b[FB_NO_STARTTLS], FP_DIALECT_POP3));
	assert_false(fp_offers_starttls(&b[FB_MANGLED_STARTTLS], FP_DIALECT_IMAP));
	assert_false(fp_offers_starttls(&b[FB_MANGLED_STARTTLS], FP_DIALECT_POP3));
	assert_memory_equal(fp_greeting(&b[FB_HOSTILE_GREETING], FP_DIALECT_IMAP)[0].p, "* OK mx\0nul", 11);
	assert_null(fp_unsolicited(&b[FB_STARTTLS_ECDSA], FP_DIALECT_POP3).p);
}

static void test_pick_seeded_mix(void **state)
{
	unsigned counts[FB_LAST] = { 0 };
	unsigned n = 1u << 16, differ = 0;

	for (uint32_t k = 0; k < n; k++) {
		enum fb_id id = fb_pick(0x7f000000u | k, 42);
		assert_int_equal(id, fb_pick(0x7f000000u | k, 42)); /* deterministic */
		differ += id != fb_pick(0x7f000000u | k, 43);
		counts[id]++;
	}
	/* Weights 330 and 250 per mille, within a loose tolerance. */
	assert_in_range(counts[FB_STARTTLS_ECDSA], n * 30 / 100, n * 36 / 100);
	assert_in_range(counts[FB_STARTTLS_RSA], n * 22 / 100, n * 28 / 100);
	assert_true(counts[FB_TARPIT] > 0 && counts[FB_TARPIT] < n / 100);
	assert_true(differ > n / 4); /* another seed is another internet */
}

static void test_range_parse(void **state)
{
	struct fleet_range r;
	struct fleet_addr a;
	const char *err;
	char buf[FLEET_ADDR_STRLEN], mx[FLEET_MX_STRLEN];

	assert_int_equal(fleet_range_parse("127.0.1.0/24", &r, &err), 0);
	assert_int_equal(r.count, 256);
	fleet_range_nth(&r, 255, &a);
	fleet_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.1.255");
	fleet_addr_mx(&a, mx, sizeof(mx));
	assert_string_equal(mx, "mx-0-1-255.fleet.test");

	assert_int_equal(fleet_range_parse("127.0.0.0/8", &r, &err), 0);
	assert_int_equal(r.count, 1u << 24);
	assert_int_equal(fleet_range_parse("127.1.2.3", &r, &err), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(fleet_range_parse("::1", &r, &err), 0);
	assert_int_equal(r.first.family, AF_INET6);
	fleet_addr_mx(&r.first, mx, sizeof(mx));
	assert_string_equal(mx, "mx-v6-1.fleet.test");

	static const char *const bad[] = {
		"127.0.0.5/24", "10.0.0.0/8", "127.0.0.0/7", "127.0.0.0/", "127.0.0.0/33",
		"127.0.0.0/2x", "::2", "::1/64", "", "mx.fleet.test", "127.0.0.256",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(fleet_range_parse(bad[i], &r, &err), -1);
		assert_non_null(err);
	}
}

/* The accept path serves a connection only if its local address passes this test. */
static void test_served_addresses(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct fleet_addr a;

	inet_pton(AF_INET, "127.5.6.7", &sin.sin_addr);
	assert_int_equal(fleet_addr_from_sockaddr(&a, (struct sockaddr *)&sin), 0);
	assert_true(fleet_addr_is_served(&a));
	assert_int_equal(fleet_addr_key(&a), 0x7f050607u);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	fleet_addr_from_sockaddr(&a, (struct sockaddr *)&sin);
	assert_false(fleet_addr_is_served(&a));

	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	fleet_addr_from_sockaddr(&a, (struct sockaddr *)&sin6);
	assert_true(fleet_addr_is_served(&a));
	inet_pton(AF_INET6, "::ffff:127.0.0.9", &sin6.sin6_addr); /* v4-mapped: an IPv4 peer */
	fleet_addr_from_sockaddr(&a, (struct sockaddr *)&sin6);
	assert_int_equal(a.family, AF_INET);
	assert_true(fleet_addr_is_served(&a));
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	fleet_addr_from_sockaddr(&a, (struct sockaddr *)&sin6);
	assert_false(fleet_addr_is_served(&a));
}

static json_t *truth_in(const char *proto, enum fb_id id)
{
	struct fleet_range r;
	const char *err;
	char ip[32];

	snprintf(ip, sizeof(ip), "127.0.1.%d", (int)id);
	assert_int_equal(fleet_range_parse(ip, &r, &err), 0);
	return proto ? fleet_truth_proto(&r.first, fp_find(proto), 0, NULL) : fleet_truth(&r.first, 0, NULL);
}

static json_t *truth_of(enum fb_id id)
{
	return truth_in(NULL, id);
}

static json_t *get(json_t *o, const char *key)
{
	return json_object_get(o, key);
}

/* What the truth states for IMAP and POP3 where the dialects differ from SMTP. */
static void test_truth_access(void **state)
{
	json_t *t;

	t = truth_in("imap", FB_STARTTLS_ECDSA);
	assert_string_equal(json_string_value(get(t, "proto")), "imap");
	assert_int_equal(json_integer_value(get(t, "greeting_code")), 0);
	assert_string_equal(json_string_value(json_array_get(get(t, "greeting_lines"), 0)),
			    "* OK mx.fleet.test IMAP4rev1 fleet ready");
	assert_string_equal(json_string_value(get(t, "ehlo_verb")), "CAPABILITY");
	assert_true(json_is_false(get(t, "auth_cleartext")));
	assert_string_equal(json_string_value(json_array_get(get(t, "auth_mechanisms_tls"), 0)), "PLAIN");
	json_decref(t);

	t = truth_in("imap", FB_PIPELINED_INJECTION);
	assert_int_equal(json_integer_value(get(t, "plaintext_after_starttls")),
			 strlen("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"));
	json_decref(t);

	t = truth_in("pop3", FB_NO_STARTTLS);
	assert_string_equal(json_string_value(get(t, "outcome")), "no-starttls");
	assert_true(json_is_true(get(t, "auth_cleartext")));
	assert_true(json_is_true(get(t, "auth_login")));
	json_decref(t);

	t = truth_in("pop3", FB_EHLO_REJECT);   /* CAPA refused, STLS all the same */
	assert_string_equal(json_string_value(get(t, "outcome")), "success");
	assert_int_equal(json_array_size(get(t, "ehlo_tls_extensions")), 0);
	json_decref(t);

	t = truth_in("imap", FB_EHLO_REJECT);
	assert_string_equal(json_string_value(get(t, "outcome")), "ehlo-rejected");
	json_decref(t);

	t = truth_in("pop3", FB_CAPA_FLOOD);
	assert_string_equal(json_string_value(get(t, "phase")), "ehlo");
	assert_true(json_is_null(get(t, "ehlo_verb")));
	json_decref(t);

	t = truth_in("imap", FB_MULTILINE_GREETING);   /* three pieces, one line */
	assert_int_equal(json_array_size(get(t, "greeting_lines")), 1);
	assert_string_equal(json_string_value(json_array_get(get(t, "greeting_lines"), 0)),
			    "* OK mx.fleet.test IMAP4rev1 fleet ready");
	json_decref(t);

	t = truth_in("imaps", FB_TARPIT);   /* after the handshake the probe has its TLS */
	assert_string_equal(json_string_value(get(t, "outcome")), "success");
	assert_true(json_is_null(get(t, "greeting_code")));
	assert_true(json_is_null(get(t, "ehlo_tls_extensions")));
	assert_string_equal(json_string_value(get(t, "tls_version")), "TLSv1.3");
	json_decref(t);

	t = truth_in("pop3s", FB_HANDSHAKE_GARBAGE);
	assert_string_equal(json_string_value(get(t, "outcome")), "handshake-error");
	json_decref(t);

	t = truth_in("submissions", FB_NO_STARTTLS);
	assert_string_equal(json_string_value(get(t, "outcome")), "success");
	assert_true(json_is_null(get(t, "ehlo_verb")));
	assert_int_equal(json_array_size(get(t, "ehlo_tls_extensions")), 4);
	json_decref(t);
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_truth_fields(void **state)
{
	json_t *t;

	t = truth_of(FB_STARTTLS_ECDSA);
	assert_string_equal(str(t, "outcome"), "success");
	assert_string_equal(str(t, "mx"), "mx-0-1-0.fleet.test");
	assert_null(json_object_get(t, "phase"));
	assert_int_equal(json_integer_value(json_object_get(t, "greeting_code")), 220);
	assert_int_equal(json_array_size(json_object_get(t, "ehlo_extensions")), 5);
	assert_int_equal(json_array_size(json_object_get(t, "ehlo_tls_extensions")), 4);
	assert_string_equal(str(t, "tls_version"), "TLSv1.3");
	assert_string_equal(str(t, "sig_alg"), "ecdsa_secp256r1_sha256");
	assert_true(json_is_true(json_object_get(t, "trusted")));
	json_decref(t);

	t = truth_of(FB_PIPELINED_INJECTION);
	assert_int_equal(json_integer_value(json_object_get(t, "starttls_code")), 220);
	assert_int_equal(json_integer_value(json_object_get(t, "plaintext_after_starttls")), 14);
	json_decref(t);

	t = truth_of(FB_HOSTILE_GREETING);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "greeting_lines"), 0)),
			    "220 mx\\x00nul\\x09tab \\x5cback \\xff\\xfe bad-utf8 ESMTP");
	json_decref(t);

	t = truth_of(FB_STARTTLS_ECHO);
	assert_true(json_is_null(json_object_get(t, "starttls_code")));
	assert_true(json_is_true(json_object_get(t, "starttls_echo")));
	assert_string_equal(str(t, "phase"), "starttls");
	json_decref(t);

	t = truth_of(FB_MANGLED_STARTTLS);
	assert_string_equal(str(t, "mangled_starttls"), "XXXXXXXA");
	assert_string_equal(str(t, "outcome"), "no-starttls");
	assert_true(json_is_null(json_object_get(t, "starttls_code")));
	json_decref(t);

	t = truth_of(FB_EHLO_REJECT);
	assert_string_equal(str(t, "ehlo_verb"), "HELO");
	assert_int_equal(json_array_size(json_object_get(t, "ehlo_extensions")), 0);
	json_decref(t);

	t = truth_of(FB_GARBAGE);
	assert_true(json_is_null(json_object_get(t, "greeting_code")));
	assert_true(json_is_null(json_object_get(t, "ehlo_verb")));
	json_decref(t);

	t = truth_of(FB_STARTTLS_454);
	assert_int_equal(json_integer_value(json_object_get(t, "starttls_code")), 454);
	assert_true(json_is_null(json_object_get(t, "tls_version")));
	json_decref(t);

	t = truth_of(FB_GREETING_421);
	assert_int_equal(json_integer_value(json_object_get(t, "greeting_code")), 421);
	assert_true(json_is_null(json_object_get(t, "ehlo_extensions")));
	json_decref(t);

	t = truth_of(FB_STATIC_RSA);
	assert_true(json_is_null(json_object_get(t, "sig_alg")));
	assert_true(json_is_false(json_object_get(t, "forward_secrecy")));
	json_decref(t);

	t = truth_of(FB_CERT_WRONG_NAME);
	assert_true(json_is_false(json_object_get(t, "name_match")));
	assert_true(json_is_true(json_object_get(t, "trusted")));
	assert_null(json_object_get(t, "verify_code"));
	json_decref(t);
}

/* The IANA names in the profile table are OpenSSL's own for those ciphers. */
static void test_cipher_names(void **state)
{
	for (int i = 0; i < FB_TLS_LAST; i++) {
		const struct fb_tls_profile *p = &fb_tls_profiles[i];
		SSL_CTX *ctx = SSL_CTX_new(TLS_method());
		STACK_OF(SSL_CIPHER) *list;
		int tls13 = strncmp(p->cipher_openssl, "TLS_", 4) == 0;

		assert_non_null(ctx);
		SSL_CTX_set_security_level(ctx, 0);
		if (tls13)
			assert_int_equal(SSL_CTX_set_ciphersuites(ctx, p->cipher_openssl), 1);
		else /* no TLS 1.3 suites: they would come first in the list */
			assert_true(SSL_CTX_set_ciphersuites(ctx, "") == 1 &&
				    SSL_CTX_set_cipher_list(ctx, p->cipher_openssl) == 1);
		list = SSL_CTX_get_ciphers(ctx);
		assert_non_null(list);
		assert_string_equal(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, 0)), p->cipher_openssl);
		assert_string_equal(SSL_CIPHER_standard_name(sk_SSL_CIPHER_value(list, 0)), p->cipher);
		SSL_CTX_free(ctx);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_are_the_contract),
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_pick_seed_zero_is_last_octet),
		cmocka_unit_test(test_pick_seeded_mix),
		cmocka_unit_test(test_range_parse),
		cmocka_unit_test(test_served_addresses),
		cmocka_unit_test(test_truth_fields),
		cmocka_unit_test(test_truth_access),
		cmocka_unit_test(test_access_bytes),
		cmocka_unit_test(test_cipher_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
