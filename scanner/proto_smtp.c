/*
 * The SMTP modules: smtp (25) and submission (587) speak STARTTLS, submissions (465)
 * starts with TLS (RFC 8314) and then says greeting -> EHLO over TLS -> QUIT.
 * The SMTP module: greeting -> EHLO (-> HELO) -> STARTTLS -> [TLS stage] -> EHLO over
 * TLS -> QUIT. enter() sends a state's command; on_line() feeds a reply line to the
 * validating parser (smtp_reply.c) and, once the reply is complete, stores it in the
 * record and decides. Every byte is distrusted: data when no reply is due, or after a
 * complete reply, is a protocol error; plaintext after "220" to STARTTLS is left to the
 * runner, which records and discards it before the TLS stage.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_reply.h"
#include "ehlo.h"
#include "esc.h"
#include "proto.h"
#include "smtp_reply.h"

enum smtp_state {
	SMTP_GREETING,   /* waiting for the final line of the 220 greeting; never speak */
	SMTP_EHLO,       /* EHLO sent */
	SMTP_HELO,       /* EHLO refused, HELO sent */
	SMTP_STARTTLS,   /* STARTTLS sent */
	SMTP_EHLO_TLS,   /* EHLO sent over TLS */
	SMTP_QUIT,       /* QUIT sent; waiting for 221 or close */
	SMTP_LAST
};

static const char *const smtp_state_names[SMTP_LAST] = {
	[SMTP_GREETING] = "greeting",
	[SMTP_EHLO] = "ehlo",
	[SMTP_HELO] = "helo",
	[SMTP_STARTTLS] = "starttls",
	[SMTP_EHLO_TLS] = "ehlo_tls",
	[SMTP_QUIT] = "quit",
};

static const enum mxs_phase smtp_phases[SMTP_LAST] = {
	[SMTP_GREETING] = MXS_PHASE_GREETING,
	[SMTP_EHLO] = MXS_PHASE_EHLO,
	[SMTP_HELO] = MXS_PHASE_HELO,
	[SMTP_STARTTLS] = MXS_PHASE_STARTTLS,
	[SMTP_EHLO_TLS] = MXS_PHASE_EHLO_TLS,
	[SMTP_QUIT] = MXS_PHASE_QUIT,
};

static const enum mxs_clock smtp_clocks[SMTP_LAST] = {
	[SMTP_GREETING] = MXS_CLOCK_GREETING,
	[SMTP_EHLO] = MXS_CLOCK_COMMAND,
	[SMTP_HELO] = MXS_CLOCK_COMMAND,
	[SMTP_STARTTLS] = MXS_CLOCK_COMMAND,
	[SMTP_EHLO_TLS] = MXS_CLOCK_COMMAND,
	[SMTP_QUIT] = MXS_CLOCK_QUIT,
};

struct smtp {
	struct smtp_reply reply;   /* the reply being read */
};

static struct smtp_reply *reply_of(struct mxs_conv *c)
{
	return &((struct smtp *)c->mod)->reply;
}

/* The last line of a reply record, for details (already in escape form). */
static const char *last_line(const struct mxs_reply_rec *rr)
{
	return rr->lines.n ? rr->lines.v[rr->lines.n - 1] : "";
}

/*
 * End with an outcome. polite: the connection still speaks SMTP, so say QUIT and wait
 * briefly for 221; otherwise close at once.
 */
static int conclude(struct mxs_conv *c, int st, enum mxs_outcome o, bool polite, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int conclude(struct mxs_conv *c, int st, enum mxs_outcome o, bool polite, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	mxs_conv_outcome(c, o, "%s", detail);
	return polite && st != SMTP_QUIT ? SMTP_QUIT : MXS_NEXT_CLOSE;
}

/* The EHLO argument: the configured FQDN, or our address literal on this connection. */
static const char *ehlo_argument(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	char a[64];

	if (c->ehlo_is_fqdn)
		return r->ehlo_name = c->ehlo_name;
	if (c->local_addr != NULL && c->local_addr(c->io, a, sizeof(a)) == 0)
		snprintf(r->ehlo_literal, sizeof(r->ehlo_literal),
			 strchr(a, ':') != NULL ? "[IPv6:%s]" : "[%s]", a);
	else
		snprintf(r->ehlo_literal, sizeof(r->ehlo_literal), "[127.0.0.1]");
	return r->ehlo_name = r->ehlo_literal;
}

static void send_hello(struct mxs_conv *c, const char *verb)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s %s", verb, ehlo_argument(c));
	mxs_conv_send_line(c, cmd);
}

static void smtp_enter(struct mxs_conv *c, int st)
{
	smtp_reply_reset(reply_of(c));
	switch ((enum smtp_state)st) {
	case SMTP_GREETING: break;
	case SMTP_EHLO: send_hello(c, "EHLO"); break;
	case SMTP_HELO: send_hello(c, "HELO"); break;
	case SMTP_STARTTLS:
		if (c->inject) {
			/* one write, one segment: a server that buffers the NOOP answers it inside TLS */
			mxs_record_transcript(c->rec, 'C', c->tls, mxs_conv_since_attempt(c),
					      "STARTTLS\r\nNOOP", 14);
			c->write(c->io, "STARTTLS\r\nNOOP\r\n", 16);
		} else {
			mxs_conv_send_line(c, "STARTTLS");
		}
		break;
	case SMTP_EHLO_TLS: send_hello(c, "EHLO"); break;
	case SMTP_QUIT: mxs_conv_send_line(c, "QUIT"); break;
	case SMTP_LAST: break;
	}
}

static bool may_retry(const struct mxs_conv *c, int code)
{
	return code == 421 && c->rec->attempts <= c->retries && !*c->stopping;
}

static int retry(struct mxs_conv *c)
{
	const struct mxs_record *r = c->rec;

	/* If the retry never comes, the last answer (a 421) is the result. */
	c->retry_outcome = r->greeting.present && r->greeting.code != 220
		? MXS_OUT_GREETING_REJECTED : MXS_OUT_EHLO_REJECTED;
	c->retry_detail = last_line(r->greeting.code != 220 ? &r->greeting : &r->ehlo.reply);
	return MXS_NEXT_RETRY;
}

/* ---- reply handlers: one per state; the reply is already in the record ---- */

/* TLS came first (submissions): no dialogue before it. */
static bool implicit(const struct mxs_conv *c)
{
	return c->proto->tls_mode == MXS_TLS_IMPLICIT;
}

/* What AUTH the EHLO extensions offer; before TLS, PLAIN and LOGIN are the finding. */
static void note_auth(struct mxs_conv *c, const struct strv *ext, bool tls)
{
	struct mxs_auth_rec *a = &c->rec->auth;

	a->checked = true;
	access_sasl_mechs(ext, tls ? &a->mechs_tls : &a->mechs);
	if (!tls)
		a->cleartext = strv_contains(&a->mechs, "PLAIN") || strv_contains(&a->mechs, "LOGIN");
}

static int greeting_reply(struct mxs_conv *c)
{
	const struct mxs_reply_rec *g = &c->rec->greeting;

	mxs_conv_took(c, MXS_T_GREETING);
	if (g->code == 220)
		return implicit(c) ? SMTP_EHLO_TLS : SMTP_EHLO;
	if (may_retry(c, g->code))
		return retry(c);
	return conclude(c, SMTP_GREETING, MXS_OUT_GREETING_REJECTED, true, "%s", last_line(g));
}

static int ehlo_reply(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	struct mxs_ehlo_rec *e = &r->ehlo;
	const char *mangled;

	mxs_conv_took(c, MXS_T_EHLO);
	if (e->reply.code / 100 != 2) {
		if (may_retry(c, e->reply.code))
			return retry(c);
		if (e->reply.code == 421)
			return conclude(c, SMTP_EHLO, MXS_OUT_EHLO_REJECTED, false, "EHLO: %s", last_line(&e->reply));
		/* Keep the refusal for the detail; the HELO reply replaces it in the record. */
		mxs_record_detail(r, "EHLO: %s", last_line(&e->reply));
		return SMTP_HELO;
	}
	ehlo_extensions(&e->reply.lines, &e->extensions);
	note_auth(c, &e->extensions, false);
	if ((mangled = ehlo_mangled_starttls(&e->extensions)) != NULL)
		r->mangled_starttls = strdup(mangled);
	if (ehlo_has_starttls(&e->extensions))
		return SMTP_STARTTLS;
	return conclude(c, SMTP_EHLO, MXS_OUT_NO_STARTTLS, true, "%s",
			mangled ? "STARTTLS advertisement mangled" : "");
}

static int helo_reply(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	char ehlo_detail[256];

	r->ehlo.verb = "HELO";
	mxs_conv_took(c, MXS_T_EHLO);
	snprintf(ehlo_detail, sizeof(ehlo_detail), "%s", r->detail ? r->detail : "EHLO refused");
	return conclude(c, SMTP_HELO, MXS_OUT_EHLO_REJECTED, true, "%s; HELO: %s", ehlo_detail,
			last_line(&r->ehlo.reply));
}

static int starttls_reply(struct mxs_conv *c)
{
	mxs_conv_took(c, MXS_T_STARTTLS);
	if (c->rec->starttls.code != 220)
		return conclude(c, SMTP_STARTTLS, MXS_OUT_STARTTLS_REFUSED, true, "%s",
				last_line(&c->rec->starttls));
	return MXS_NEXT_TLS;
}

static int ehlo_tls_reply(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	struct mxs_ehlo_rec *e = &r->ehlo_tls;
	int next;

	mxs_conv_took(c, MXS_T_EHLO_TLS);
	if (e->reply.code / 100 != 2) {
		next = conclude(c, SMTP_EHLO_TLS, MXS_OUT_SUCCESS, true, "EHLO over TLS refused: %s",
				last_line(&e->reply));
	} else {
		ehlo_extensions(&e->reply.lines, &e->extensions);
		note_auth(c, &e->extensions, true);
		next = conclude(c, SMTP_EHLO_TLS, MXS_OUT_SUCCESS, true, "%s", "");
	}
	/* The dialogue is complete: the probe ends in "done", whatever QUIT brings. */
	if (r->outcome == MXS_OUT_SUCCESS && r->phase == MXS_PHASE_EHLO_TLS)
		r->phase = MXS_PHASE_DONE;
	return next;
}

/* Move the finished reply into the record slot of the state. */
static void store_reply(struct mxs_conv *c, int st)
{
	struct mxs_record *r = c->rec;
	struct smtp_reply *rp = reply_of(c);

	switch ((enum smtp_state)st) {
	case SMTP_GREETING: mxs_reply_rec_take(&r->greeting, rp); break;
	case SMTP_EHLO:
	case SMTP_HELO: mxs_reply_rec_take(&r->ehlo.reply, rp); break;
	case SMTP_STARTTLS: mxs_reply_rec_take(&r->starttls, rp); break;
	case SMTP_EHLO_TLS: mxs_reply_rec_take(&r->ehlo_tls.reply, rp); break;
	default: smtp_reply_reset(rp); break;
	}
}

static int smtp_on_line(struct mxs_conv *c, int st, const char *line, size_t len, size_t pending)
{
	enum smtp_reply_status rs;

	if (line == NULL)
		return conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false,
				"%s: more than %d bytes without a line ending in phase %s",
				smtp_reply_status_names[SMTP_REPLY_ERR_TOO_LONG], SMTP_LINE_MAX,
				smtp_state_names[st]);
	/* Whatever the server says to QUIT, the probe is over. */
	if (st == SMTP_QUIT)
		return MXS_NEXT_CLOSE;
	rs = smtp_reply_feed(reply_of(c), (const unsigned char *)line, len);
	if (rs == SMTP_REPLY_MORE)
		return MXS_NEXT_MORE;
	if (rs != SMTP_REPLY_DONE) {
		char *shown = mxs_esc_encode(line, len > 80 ? 80 : len, NULL);
		int next;
		if (st == SMTP_STARTTLS && smtp_is_starttls_echo((const unsigned char *)line, len))
			c->rec->starttls_echo = true;
		next = conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false, "%s in phase %s: \"%s\"",
				smtp_reply_status_names[rs], smtp_state_names[st], shown ? shown : "");
		free(shown);
		return next;
	}
	store_reply(c, st);
	/* After STARTTLS's 220 the rest is the runner's (plaintext that must not reach TLS). */
	if (st != SMTP_STARTTLS && pending > 0)
		return conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false,
				"%zu bytes of unsolicited data after the %s reply", pending,
				smtp_state_names[st]);
	switch ((enum smtp_state)st) {
	case SMTP_GREETING: return greeting_reply(c);
	case SMTP_EHLO: return ehlo_reply(c);
	case SMTP_HELO: return helo_reply(c);
	case SMTP_STARTTLS: return starttls_reply(c);
	case SMTP_EHLO_TLS: return ehlo_tls_reply(c);
	case SMTP_QUIT: case SMTP_LAST: break;
	}
	return conclude(c, st, MXS_OUT_LOCAL_ERROR, false, "reply in unexpected state %s",
			smtp_state_names[st]);
}

static int smtp_on_tls(struct mxs_conv *c)
{
	return implicit(c) ? SMTP_GREETING : SMTP_EHLO_TLS;
}

static int smtp_on_timeout(struct mxs_conv *c, int st, int ms)
{
	switch ((enum smtp_state)st) {
	case SMTP_GREETING:
		return conclude(c, st, MXS_OUT_GREETING_TIMEOUT, false, "no greeting bytes for %d ms", ms);
	case SMTP_EHLO: case SMTP_HELO:
		return conclude(c, st, MXS_OUT_EHLO_TIMEOUT, false, "no %s reply bytes for %d ms",
				st == SMTP_EHLO ? "EHLO" : "HELO", ms);
	case SMTP_STARTTLS:
		return conclude(c, st, MXS_OUT_STARTTLS_TIMEOUT, false, "no STARTTLS reply bytes for %d ms", ms);
	case SMTP_EHLO_TLS:
		return conclude(c, st, MXS_OUT_SUCCESS, false, "no EHLO reply bytes over TLS for %d ms", ms);
	case SMTP_QUIT: case SMTP_LAST: break;
	}
	return MXS_NEXT_CLOSE;
}

static void smtp_init(struct mxs_conv *c)
{
	c->rec->proto = c->proto->name;
	smtp_reply_init(reply_of(c));
}

static void smtp_release(struct mxs_conv *c)
{
	smtp_reply_reset(reply_of(c));
}

/* Forget what an earlier attempt left in the record (the transcript stays). */
static void smtp_reset(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;

	strv_free(&r->greeting.lines);
	r->greeting.present = false;
	strv_free(&r->ehlo.reply.lines);
	r->ehlo.reply.present = false;
	strv_free(&r->ehlo.extensions);
	r->ehlo.verb = "EHLO";
	strv_free(&r->auth.mechs);
	strv_free(&r->auth.mechs_tls);
	memset(&r->auth, 0, sizeof(r->auth));
	smtp_reply_reset(reply_of(c));
}

#define SMTP_MODULE \
	.nstates = SMTP_LAST, \
	.state_names = smtp_state_names, \
	.phases = smtp_phases, \
	.clocks = smtp_clocks, \
	.first_state = SMTP_GREETING, \
	.quit_state = SMTP_QUIT, \
	.line_max = SMTP_LINE_MAX, \
	.state_size = sizeof(struct smtp), \
	.can_inject = true, \
	.init = smtp_init, \
	.release = smtp_release, \
	.reset = smtp_reset, \
	.enter = smtp_enter, \
	.on_line = smtp_on_line, \
	.on_tls = smtp_on_tls, \
	.on_timeout = smtp_on_timeout

/* Message submission (RFC 6409): the same dialogue on 587. */
const struct mxs_proto mxs_proto_submission = {
	.name = "submission",
	.default_port = 587,
	.tls_mode = MXS_TLS_STARTTLS,
	SMTP_MODULE,
};

/* Submission over implicit TLS (RFC 8314). */
const struct mxs_proto mxs_proto_submissions = {
	.name = "submissions",
	.default_port = 465,
	.tls_mode = MXS_TLS_IMPLICIT,
	SMTP_MODULE,
};

const struct mxs_proto mxs_proto_smtp = {
	.name = "smtp",
	.default_port = 25,
	.tls_mode = MXS_TLS_STARTTLS,
	SMTP_MODULE,
};
