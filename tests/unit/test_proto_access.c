/*
 * The IMAP and POP3 modules (proto_access.c) without a socket: scripted server bytes
 * in, the exact bytes sent out, the verdict in the record. Numbered cases as in
 * test_proto_smtp.c; the harness plays the runner's part the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "access_reply.h"
#include "proto.h"

struct harness {
	struct mxs_record rec;
	struct mxs_conv conv;
	char sent[8192];
	size_t nsent;
	bool stopping;
	int state;             /* the module's state, or the last MXS_NEXT_* */
};

static void h_write(void *io, const void *data, size_t len)
{
	struct harness *h = io;
	assert_true(h->nsent + len < sizeof(h->sent));
	memcpy(h->sent + h->nsent, data, len);
	h->nsent += len;
	h->sent[h->nsent] = '\0';
}

static void follow(struct harness *h, int next)
{
	const struct mxs_proto *p = h->conv.proto;
	if (next == MXS_NEXT_MORE)
		return;
	h->state = next;
	if (next >= 0) {
		if (h->rec.outcome == MXS_OUT_NONE)
			h->rec.phase = p->phases[next];
		p->enter(&h->conv, next);
	}
}

/* A conversation of module name; implicit TLS modules start with the handshake done. */
static struct harness *h_new(const char *name)
{
	struct harness *h = calloc(1, sizeof(*h));
	const struct mxs_proto *p = mxs_proto_find(name);

	assert_non_null(p);
	mxs_record_init(&h->rec);
	h->rec.attempts = 1;
	h->conv.proto = p;
	h->conv.rec = &h->rec;
	h->conv.mod = calloc(1, p->state_size);
	h->conv.io = h;
	h->conv.write = h_write;
	h->conv.ehlo_name = "scanner.example.org";
	h->conv.ehlo_is_fqdn = true;
	h->conv.stopping = &h->stopping;
	p->init(&h->conv);
	if (p->tls_mode == MXS_TLS_IMPLICIT) {
		h->conv.tls = true;
		follow(h, p->on_tls(&h->conv));
	} else {
		follow(h, p->first_state);
	}
	return h;
}

static void h_free(struct harness *h)
{
	h->conv.proto->release(&h->conv);
	free(h->conv.mod);
	mxs_record_free(&h->rec);
	free(h);
}

static void server(struct harness *h, const char *bytes)
{
	const char *p = bytes, *end = bytes + strlen(bytes);

	while (p < end && h->state >= 0) {
		const char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			return;
		follow(h, h->conv.proto->on_line(&h->conv, h->state, p, (size_t)(eol - p),
						 (size_t)(end - eol - 2)));
		p = eol + 2;
	}
}

static void expect_sent(struct harness *h, const char *want)
{
	assert_string_equal(h->sent, want);
	h->nsent = 0;
	h->sent[0] = '\0';
}

/* The TLS handshake completed (the runner's part). */
static void tls_up(struct harness *h)
{
	assert_int_equal(h->state, MXS_NEXT_TLS);
	h->conv.tls = true;
	follow(h, h->conv.proto->on_tls(&h->conv));
}

/* 1: IMAP as Dovecot with plaintext disabled: LOGINDISABLED before TLS, AUTH= after. */
static void case1_imap_success(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	expect_sent(h, "");
	server(h, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n");
	expect_sent(h, "A1 CAPABILITY\r\n");
	server(h, "* CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED\r\n"
		  "A1 OK Pre-login capabilities listed, post-login capabilities have more.\r\n");
	expect_sent(h, "A2 STARTTLS\r\n");
	assert_true(h->rec.auth.checked);
	assert_false(h->rec.auth.login);
	assert_false(h->rec.auth.cleartext);
	server(h, "A2 OK Begin TLS negotiation now.\r\n");
	tls_up(h);
	expect_sent(h, "A3 CAPABILITY\r\n");
	server(h, "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN\r\nA3 OK done\r\n");
	expect_sent(h, "A4 LOGOUT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_int_equal(h->rec.phase, MXS_PHASE_DONE);
	assert_string_equal(h->rec.proto, "imap");
	assert_string_equal(h->rec.ehlo.verb, "CAPABILITY");
	assert_int_equal((int)h->rec.ehlo.extensions.n, 4);
	assert_string_equal(h->rec.ehlo.extensions.v[3], "LOGINDISABLED");
	assert_int_equal((int)h->rec.ehlo.reply.lines.n, 2);
	assert_int_equal((int)h->rec.greeting.lines.n, 1);
	assert_int_equal((int)h->rec.starttls.lines.n, 1);
	assert_int_equal((int)h->rec.auth.mechs_tls.n, 2);
	assert_string_equal(h->rec.auth.mechs_tls.v[0], "PLAIN");
	assert_true(h->rec.auth.login_tls);
	server(h, "* BYE Logging out\r\nA4 OK Logout completed.\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	h_free(h);
}

/* 2: LOGIN and AUTH=PLAIN allowed before TLS: the cleartext finding. */
static void case2_imap_cleartext(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN auth=cram-md5\r\nA1 OK\r\n");
	expect_sent(h, "A1 CAPABILITY\r\nA2 STARTTLS\r\n");
	assert_true(h->rec.auth.login);
	assert_true(h->rec.auth.cleartext);
	assert_int_equal((int)h->rec.auth.mechs.n, 2);
	assert_string_equal(h->rec.auth.mechs.v[1], "CRAM-MD5");
	h_free(h);
}

/* 3: no STARTTLS: LOGOUT politely, no-starttls; a mangled one is recorded. */
static void case3_imap_no_starttls(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n* CAPABILITY IMAP4rev1\r\nA1 OK\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);   /* pipelined: not asked */
	expect_sent(h, "");
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 XXXXXXXX\r\nA1 OK\r\n");
	expect_sent(h, "A1 CAPABILITY\r\nA2 LOGOUT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_NO_STARTTLS);
	assert_int_equal(h->rec.phase, MXS_PHASE_EHLO);
	assert_string_equal(h->rec.mangled_starttls, "XXXXXXXX");
	assert_string_equal(h->rec.detail, "STARTTLS advertisement mangled");
	h_free(h);
}

/* 4: STARTTLS refused (NO, BAD), and CAPABILITY refused. */
static void case4_imap_refused(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 STARTTLS\r\nA1 OK\r\n");
	server(h, "A2 NO [UNAVAILABLE] TLS not available\r\n");
	expect_sent(h, "A1 CAPABILITY\r\nA2 STARTTLS\r\nA3 LOGOUT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_STARTTLS_REFUSED);
	assert_string_equal(h->rec.detail, "A2 NO [UNAVAILABLE] TLS not available");
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n");
	server(h, "A1 BAD unknown command\r\n");
	expect_sent(h, "A1 CAPABILITY\r\nA2 LOGOUT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_EHLO_REJECTED);
	h_free(h);
}

/* 5: plaintext injected after the STARTTLS OK is the runner's to discard: TLS starts. */
static void case5_imap_injection(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 STARTTLS\r\nA1 OK\r\n");
	server(h, "A2 OK go\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	assert_int_equal(h->rec.outcome, MXS_OUT_NONE);
	h_free(h);
}

/* 6: an untagged flood (endless CAPABILITY) ends at the line cap; nothing more is sent. */
static void case6_imap_flood(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n");
	expect_sent(h, "A1 CAPABILITY\r\n");
	for (int i = 0; i < ACCESS_LINES_MAX + 5 && h->state >= 0; i++)
		server(h, "* CAPABILITY IMAP4rev1 STARTTLS\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_non_null(strstr(h->rec.detail, "too many response lines in phase capability"));
	expect_sent(h, "");
	h_free(h);
}

/* 7: greetings: garbage, BYE, PREAUTH; another command's tag; the STARTTLS echo. */
static void case7_imap_greetings(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "220 smtp.example.net ESMTP\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_string_equal(h->rec.detail, "not a response line in phase greeting: \"220 smtp.example.net ESMTP\"");
	h_free(h);
	h = h_new("imap");
	server(h, "* BYE too many connections\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_GREETING_REJECTED);
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	expect_sent(h, "");
	h_free(h);
	h = h_new("imap");
	server(h, "* PREAUTH welcome\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_NO_STARTTLS);
	expect_sent(h, "A1 LOGOUT\r\n");
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n");
	server(h, "B7 OK hello\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_non_null(strstr(h->rec.detail, "another command's tag"));
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n* CAPABILITY STARTTLS\r\n");   /* pipelined greeting noted */
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 STARTTLS\r\nA1 OK\r\n");
	server(h, "A2 STARTTLS\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_true(h->rec.starttls_echo);
	h_free(h);
}

/* 8: imaps: TLS first, greeting and CAPABILITY inside it. */
static void case8_imaps(void **st)
{
	struct harness *h = h_new("imaps");
	(void)st;
	expect_sent(h, "");
	server(h, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n");
	expect_sent(h, "A1 CAPABILITY\r\n");
	server(h, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA1 OK\r\n");
	expect_sent(h, "A2 LOGOUT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_int_equal(h->rec.phase, MXS_PHASE_DONE);
	assert_false(h->rec.ehlo.reply.present);
	assert_false(h->rec.auth.cleartext);
	assert_true(h->rec.auth.login_tls);
	h_free(h);
}

/* 9: POP3 as Dovecot with plaintext disabled: no USER before TLS, USER and SASL after. */
static void case9_pop3_success(void **st)
{
	struct harness *h = h_new("pop3");
	(void)st;
	server(h, "+OK Dovecot ready.\r\n");
	expect_sent(h, "CAPA\r\n");
	server(h, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSTLS\r\nSASL\r\n.\r\n");
	expect_sent(h, "STLS\r\n");
	assert_false(h->rec.auth.cleartext);
	assert_string_equal(h->rec.ehlo.verb, "CAPA");
	assert_int_equal((int)h->rec.ehlo.extensions.n, 7);
	server(h, "+OK Begin TLS negotiation now.\r\n");
	tls_up(h);
	expect_sent(h, "CAPA\r\n");
	server(h, "+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_int_equal(h->rec.phase, MXS_PHASE_DONE);
	assert_true(h->rec.auth.login_tls);
	assert_int_equal((int)h->rec.auth.mechs_tls.n, 2);
	server(h, "+OK Logging out.\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	h_free(h);
}

/* 10: USER and SASL PLAIN before TLS; dot-stuffing; a mangled STLS. */
static void case10_pop3_cleartext(void **st)
{
	struct harness *h = h_new("pop3");
	(void)st;
	server(h, "+OK ready\r\n");
	server(h, "+OK list follows\r\nUSER\r\nSASL PLAIN\r\n..X-DOT\r\nSTLS\r\n.\r\n");
	expect_sent(h, "CAPA\r\nSTLS\r\n");
	assert_true(h->rec.auth.login);
	assert_true(h->rec.auth.cleartext);
	assert_string_equal(h->rec.ehlo.extensions.v[2], ".X-DOT");
	h_free(h);
	h = h_new("pop3");
	server(h, "+OK ready\r\n");
	server(h, "+OK\r\nXXXX\r\n.\r\n");
	expect_sent(h, "CAPA\r\nQUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_NO_STARTTLS);
	assert_string_equal(h->rec.mangled_starttls, "XXXX");
	h_free(h);
}

/* 11: CAPA refused: STLS asked all the same; STLS refused; -ERR greeting. */
static void case11_pop3_refusals(void **st)
{
	struct harness *h = h_new("pop3");
	(void)st;
	server(h, "+OK ready\r\n");
	server(h, "-ERR unknown command\r\n");
	expect_sent(h, "CAPA\r\nSTLS\r\n");
	server(h, "-ERR not available\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_STARTTLS_REFUSED);
	assert_string_equal(h->rec.detail, "-ERR not available");
	assert_false(h->rec.auth.checked);
	h_free(h);
	h = h_new("pop3");
	server(h, "-ERR go away\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_GREETING_REJECTED);
	expect_sent(h, "");
	h_free(h);
}

/* 12: endless CAPA, garbage, plaintext after +OK to STLS, timeouts, over-long lines. */
static void case12_pop3_hostile(void **st)
{
	struct harness *h = h_new("pop3");
	(void)st;
	server(h, "+OK ready\r\n");
	server(h, "+OK\r\n");
	for (int i = 0; i < ACCESS_LINES_MAX + 5 && h->state >= 0; i++)
		server(h, "STLS\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	expect_sent(h, "CAPA\r\n");
	h_free(h);
	h = h_new("pop3");
	server(h, "hello\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	h_free(h);
	h = h_new("pop3");
	server(h, "+OK ready\r\n");
	server(h, "+OK\r\nSTLS\r\n.\r\n");
	server(h, "+OK go\r\n+OK injected\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	assert_int_equal(h->rec.outcome, MXS_OUT_NONE);
	h_free(h);
	h = h_new("pop3");
	server(h, "+OK ready\r\n");
	follow(h, h->conv.proto->on_timeout(&h->conv, h->state, 30000));
	assert_int_equal(h->rec.outcome, MXS_OUT_EHLO_TIMEOUT);
	assert_string_equal(h->rec.detail, "no capa response bytes for 30000 ms");
	h_free(h);
	h = h_new("imap");
	follow(h, h->conv.proto->on_line(&h->conv, h->state, NULL, 9000, 0));
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_string_equal(h->rec.detail,
			    "response line too long: more than 8192 bytes without a line ending in phase greeting");
	h_free(h);
}

/* 13: pop3s: TLS first. */
static void case13_pop3s(void **st)
{
	struct harness *h = h_new("pop3s");
	(void)st;
	server(h, "+OK ready\r\n");
	expect_sent(h, "CAPA\r\n");
	server(h, "+OK\r\nUSER\r\n.\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_false(h->rec.auth.cleartext);
	assert_true(h->rec.auth.login_tls);
	assert_string_equal(h->rec.proto, "pop3s");
	h_free(h);
}

/*
 * 14: a complete response with bytes behind it is recorded before the protocol error
 * (as the SMTP module records its reply); a mechanism with a control byte keeps its
 * escape intact when upper-cased ("\x01", never "\X01", which would not decode).
 */
static void case14_kept_and_escaped(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	server(h, "* OK ready\r\n* OK unsolicited\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_string_equal(h->rec.detail, "18 bytes of unsolicited data after the greeting response");
	assert_true(h->rec.greeting.present);
	assert_string_equal(h->rec.greeting.lines.v[0], "* OK ready");
	h_free(h);
	h = h_new("pop3");
	server(h, "+OK ready\r\n");
	server(h, "+OK\r\nSTLS\r\n.\r\n+OK more\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_int_equal(h->rec.ehlo.extensions.n, 1);
	assert_string_equal(h->rec.ehlo.extensions.v[0], "STLS");
	h_free(h);
	h = h_new("imap");
	server(h, "* OK ready\r\n");
	server(h, "* CAPABILITY IMAP4rev1 AUTH=pl\x01" "ain AUTH=x\\y STARTTLS\r\nA1 OK done\r\n");
	assert_int_equal(h->rec.auth.mechs.n, 2);
	assert_string_equal(h->rec.auth.mechs.v[0], "PL\\x01AIN");
	assert_string_equal(h->rec.auth.mechs.v[1], "X\\x5cY");
	h_free(h);
}

/*
 * 15: the injection check (legacy probes): STARTTLS/STLS and a NOOP in one write, the
 * STARTTLS answer still awaited under its own tag, then TLS; implicit TLS cannot ask.
 */
static void case15_injection_check(void **st)
{
	struct harness *h = h_new("imap");
	(void)st;
	h->conv.inject = true;
	assert_true(h->conv.proto->can_inject);
	server(h, "* OK ready\r\n");
	expect_sent(h, "A1 CAPABILITY\r\n");
	server(h, "* CAPABILITY IMAP4rev1 STARTTLS\r\nA1 OK\r\n");
	expect_sent(h, "A2 STARTTLS\r\nA3 NOOP\r\n");
	server(h, "A2 OK go\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	assert_int_equal(h->rec.outcome, MXS_OUT_NONE);
	h_free(h);
	h = h_new("pop3");
	h->conv.inject = true;
	assert_true(h->conv.proto->can_inject);
	server(h, "+OK ready\r\n");
	server(h, "+OK\r\nSTLS\r\n.\r\n");
	expect_sent(h, "CAPA\r\nSTLS\r\nNOOP\r\n");
	server(h, "+OK go\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	h_free(h);
	assert_false(mxs_proto_find("imaps")->can_inject);
	assert_false(mxs_proto_find("pop3s")->can_inject);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(case1_imap_success),
		cmocka_unit_test(case2_imap_cleartext),
		cmocka_unit_test(case3_imap_no_starttls),
		cmocka_unit_test(case4_imap_refused),
		cmocka_unit_test(case5_imap_injection),
		cmocka_unit_test(case6_imap_flood),
		cmocka_unit_test(case7_imap_greetings),
		cmocka_unit_test(case8_imaps),
		cmocka_unit_test(case9_pop3_success),
		cmocka_unit_test(case10_pop3_cleartext),
		cmocka_unit_test(case11_pop3_refusals),
		cmocka_unit_test(case12_pop3_hostile),
		cmocka_unit_test(case13_pop3s),
		cmocka_unit_test(case14_kept_and_escaped),
		cmocka_unit_test(case15_injection_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
