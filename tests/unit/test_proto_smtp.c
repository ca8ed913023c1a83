/*
 * The SMTP module without a socket: scripted server bytes go in, the exact bytes the
 * module sends come out, and the record holds the verdict. Each case is numbered; add one
 * for each bug fixed in the module. The harness plays the runner's part: it splits CRLF
 * lines, tells the module how many bytes are still buffered after each, enters the
 * states the module returns, and stops at TLS, retry or close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

struct harness {
	struct mxs_record rec;
	struct mxs_conv conv;
	char sent[8192];
	size_t nsent;
	const char *local;     /* local address for literals */
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

static int h_local(void *io, char *buf, size_t len)
{
	struct harness *h = io;
	snprintf(buf, len, "%s", h->local);
	return 0;
}

static const struct mxs_proto *smtp(void)
{
	const struct mxs_proto *p = mxs_proto_find("smtp");
	assert_non_null(p);
	return p;
}

static struct harness *h_new_p(const struct mxs_proto *p, bool fqdn, int retries)
{
	struct harness *h = calloc(1, sizeof(*h));

	mxs_record_init(&h->rec);
	h->rec.attempts = 1;
	h->local = "192.0.2.1";
	h->conv.proto = p;
	h->conv.rec = &h->rec;
	h->conv.mod = calloc(1, p->state_size);
	h->conv.io = h;
	h->conv.write = h_write;
	h->conv.local_addr = h_local;
	h->conv.ehlo_name = "scanner.example.org";
	h->conv.ehlo_is_fqdn = fqdn;
	h->conv.retries = retries;
	h->conv.stopping = &h->stopping;
	p->init(&h->conv);
	h->state = p->first_state;
	/* what the runner does on entering a state: phase, then the module's command */
	h->rec.phase = p->phases[h->state];
	p->enter(&h->conv, h->state);
	return h;
}

static struct harness *h_new(bool fqdn, int retries)
{
	return h_new_p(smtp(), fqdn, retries);
}

static void h_free(struct harness *h)
{
	h->conv.proto->release(&h->conv);
	free(h->conv.mod);
	mxs_record_free(&h->rec);
	free(h);
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

/* Feed server bytes; returns once they are used up or the module left the dialogue. */
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

/* The sent bytes since the last call, compared exactly. */
static void expect_sent(struct harness *h, const char *want)
{
	assert_string_equal(h->sent, want);
	h->nsent = 0;
	h->sent[0] = '\0';
}

static const char *const EHLO_STARTTLS =
	"250-mx.example.net\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";

/* 1: the whole dialogue: greeting, EHLO, STARTTLS, TLS, EHLO over TLS, QUIT. */
static void case1_success(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	expect_sent(h, "");
	server(h, "220-mx.example.net ESMTP\r\n220 ready\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, EHLO_STARTTLS);
	expect_sent(h, "STARTTLS\r\n");
	server(h, "220 2.0.0 go ahead\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	expect_sent(h, "");
	h->conv.tls = true;
	follow(h, h->conv.proto->on_tls(&h->conv));
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, "250-mx.example.net\r\n250 SIZE 1000\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_int_equal(h->rec.phase, MXS_PHASE_DONE);
	assert_int_equal(h->rec.greeting.code, 220);
	assert_int_equal((int)h->rec.greeting.lines.n, 2);
	assert_int_equal((int)h->rec.ehlo.extensions.n, 3);
	assert_string_equal(h->rec.ehlo_tls.extensions.v[0], "SIZE 1000");
	server(h, "221 bye\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	h_free(h);
}

/* 2: no STARTTLS offered: QUIT politely, outcome no-starttls. */
static void case2_no_starttls(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, "250-mx\r\n250 SIZE 10\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_NO_STARTTLS);
	assert_int_equal(h->rec.phase, MXS_PHASE_EHLO);
	h_free(h);
}

/* 3: a 421 greeting asks for a retry while retries remain, and is the result after. */
static void case3_421(void **st)
{
	struct harness *h = h_new(true, 1);
	(void)st;
	server(h, "421 busy\r\n");
	assert_int_equal(h->state, MXS_NEXT_RETRY);
	assert_int_equal(h->conv.retry_outcome, MXS_OUT_GREETING_REJECTED);
	assert_string_equal(h->conv.retry_detail, "421 busy");
	expect_sent(h, "");
	h_free(h);

	h = h_new(true, 0);
	server(h, "421 busy\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_GREETING_REJECTED);
	assert_string_equal(h->rec.detail, "421 busy");
	h_free(h);
}

/* 4: bytes after a complete greeting were never asked for: protocol error, nothing sent. */
static void case4_pipelined_greeting(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n250 early\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	expect_sent(h, "");
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_string_equal(h->rec.detail, "11 bytes of unsolicited data after the greeting reply");
	h_free(h);
}

/* 5: plaintext after 220 to STARTTLS is the runner's to discard: TLS still starts. */
static void case5_starttls_injection(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n");
	server(h, EHLO_STARTTLS);
	expect_sent(h, "EHLO scanner.example.org\r\nSTARTTLS\r\n");
	server(h, "220 go\r\n250 injected\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	assert_int_equal(h->rec.outcome, MXS_OUT_NONE);
	h_free(h);
}

/* 6: EHLO refused: HELO, then ehlo-rejected with both replies in the detail. */
static void case6_helo_fallback(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n");
	server(h, "502 no EHLO here\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\nHELO scanner.example.org\r\n");
	server(h, "250 hello\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_EHLO_REJECTED);
	assert_string_equal(h->rec.detail, "EHLO: 502 no EHLO here; HELO: 250 hello");
	assert_string_equal(h->rec.ehlo.verb, "HELO");
	h_free(h);
}

/* 7: a line that is no reply line, and the STARTTLS echo of a middlebox. */
static void case7_syntax(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n");
	server(h, EHLO_STARTTLS);
	expect_sent(h, "EHLO scanner.example.org\r\nSTARTTLS\r\n");
	server(h, "STARTTLS\r\n");
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_true(h->rec.starttls_echo);
	expect_sent(h, "");
	h_free(h);
}

/* 8: STARTTLS advertisement overwritten by a middlebox. */
static void case8_mangled(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	server(h, "220 mx\r\n");
	server(h, "250-mx\r\n250 XXXXXXXA\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\nQUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_NO_STARTTLS);
	assert_string_equal(h->rec.mangled_starttls, "XXXXXXXA");
	assert_string_equal(h->rec.detail, "STARTTLS advertisement mangled");
	h_free(h);
}

/* 9: no FQDN: the address literal of the connection, IPv4 and IPv6. */
static void case9_literal(void **st)
{
	struct harness *h = h_new(false, 2);
	(void)st;
	server(h, "220 mx\r\n");
	expect_sent(h, "EHLO [192.0.2.1]\r\n");
	h_free(h);
	h = h_new(false, 2);
	h->local = "2001:db8::1";
	server(h, "220 mx\r\n");
	expect_sent(h, "EHLO [IPv6:2001:db8::1]\r\n");
	h_free(h);
}

/* 10: silence, per state; and an over-long line. */
static void case10_timeouts(void **st)
{
	struct harness *h = h_new(true, 2);
	(void)st;
	follow(h, h->conv.proto->on_timeout(&h->conv, h->state, 60000));
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	assert_int_equal(h->rec.outcome, MXS_OUT_GREETING_TIMEOUT);
	assert_string_equal(h->rec.detail, "no greeting bytes for 60000 ms");
	h_free(h);
	h = h_new(true, 2);
	server(h, "220 mx\r\n");
	follow(h, h->conv.proto->on_line(&h->conv, h->state, NULL, 5000, 0));
	assert_int_equal(h->state, MXS_NEXT_CLOSE);
	assert_int_equal(h->rec.outcome, MXS_OUT_PROTOCOL_ERROR);
	assert_string_equal(h->rec.detail,
			    "reply line too long: more than 4096 bytes without a line ending in phase ehlo");
	h_free(h);
}

/* 11: the module table finds every module by name, and no unknown one. */
static void case11_table(void **st)
{
	(void)st;
	assert_ptr_equal(mxs_proto_find("smtp"), &mxs_proto_smtp);
	assert_ptr_equal(mxs_proto_find("submission"), &mxs_proto_submission);
	assert_ptr_equal(mxs_proto_find("submissions"), &mxs_proto_submissions);
	assert_ptr_equal(mxs_proto_find("imap"), &mxs_proto_imap);
	assert_ptr_equal(mxs_proto_find("imaps"), &mxs_proto_imaps);
	assert_ptr_equal(mxs_proto_find("pop3"), &mxs_proto_pop3);
	assert_ptr_equal(mxs_proto_find("pop3s"), &mxs_proto_pop3s);
	assert_null(mxs_proto_find("smtps"));
	assert_int_equal(mxs_proto_submission.default_port, 587);
	assert_int_equal(mxs_proto_submissions.default_port, 465);
	assert_int_equal(mxs_proto_submissions.tls_mode, MXS_TLS_IMPLICIT);
	assert_int_equal(mxs_proto_smtp.default_port, 25);
	assert_int_equal(mxs_proto_smtp.tls_mode, MXS_TLS_STARTTLS);
	for (int i = 0; i < mxs_proto_smtp.nstates; i++)
		assert_non_null(mxs_proto_smtp.state_names[i]);
}

/* 12: submission (587): AUTH PLAIN LOGIN before TLS is the finding; AUTH inside TLS noted. */
static void case12_submission_auth(void **st)
{
	struct harness *h = h_new_p(&mxs_proto_submission, true, 2);
	(void)st;
	server(h, "220 smtp.example.net ESMTP\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, "250-smtp.example.net\r\n250-AUTH PLAIN login CRAM-MD5\r\n250-AUTH=LOGIN\r\n250 STARTTLS\r\n");
	expect_sent(h, "STARTTLS\r\n");
	assert_true(h->rec.auth.checked);
	assert_true(h->rec.auth.cleartext);
	assert_false(h->rec.auth.login);
	assert_int_equal((int)h->rec.auth.mechs.n, 3);
	assert_string_equal(h->rec.auth.mechs.v[1], "LOGIN");
	assert_string_equal(h->rec.auth.mechs.v[2], "CRAM-MD5");
	server(h, "220 go ahead\r\n");
	assert_int_equal(h->state, MXS_NEXT_TLS);
	h->conv.tls = true;
	follow(h, h->conv.proto->on_tls(&h->conv));
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, "250-smtp.example.net\r\n250 AUTH SCRAM-SHA-256 PLAIN\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_string_equal(h->rec.proto, "submission");
	assert_int_equal((int)h->rec.auth.mechs_tls.n, 2);
	assert_true(h->rec.auth.cleartext);
	h_free(h);

	/* AUTH only after TLS: no cleartext exposure. */
	h = h_new_p(&mxs_proto_submission, true, 2);
	server(h, "220 mx\r\n");
	server(h, "250-mx\r\n250 STARTTLS\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\nSTARTTLS\r\n");
	assert_true(h->rec.auth.checked);
	assert_false(h->rec.auth.cleartext);
	assert_int_equal((int)h->rec.auth.mechs.n, 0);
	h_free(h);
}

/* 13: submissions (465): TLS first, then the greeting and EHLO inside it, then QUIT. */
static void case13_submissions(void **st)
{
	struct harness *h = h_new_p(&mxs_proto_submissions, true, 2);
	(void)st;
	h->conv.tls = true;
	/* the runner starts TLS at connect; the module speaks once the handshake is done */
	follow(h, h->conv.proto->on_tls(&h->conv));
	assert_int_equal(h->state, 0);
	expect_sent(h, "");
	server(h, "220 smtp.example.net ESMTP\r\n");
	expect_sent(h, "EHLO scanner.example.org\r\n");
	server(h, "250-smtp.example.net\r\n250 AUTH PLAIN LOGIN\r\n");
	expect_sent(h, "QUIT\r\n");
	assert_int_equal(h->rec.outcome, MXS_OUT_SUCCESS);
	assert_int_equal(h->rec.phase, MXS_PHASE_DONE);
	assert_false(h->rec.ehlo.reply.present);
	assert_true(h->rec.ehlo_tls.reply.present);
	assert_false(h->rec.auth.cleartext);
	assert_int_equal((int)h->rec.auth.mechs_tls.n, 2);
	h_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(case1_success),
		cmocka_unit_test(case2_no_starttls),
		cmocka_unit_test(case3_421),
		cmocka_unit_test(case4_pipelined_greeting),
		cmocka_unit_test(case5_starttls_injection),
		cmocka_unit_test(case6_helo_fallback),
		cmocka_unit_test(case7_syntax),
		cmocka_unit_test(case8_mangled),
		cmocka_unit_test(case9_literal),
		cmocka_unit_test(case10_timeouts),
		cmocka_unit_test(case11_table),
		cmocka_unit_test(case12_submission_auth),
		cmocka_unit_test(case13_submissions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
