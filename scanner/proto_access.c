/*
 * The mail access modules: IMAP (143 STARTTLS, 993 implicit TLS; RFC 9051/3501, 8314)
 * and POP3 (110 STLS, 995 implicit TLS; RFC 1939, 2449, 2595).
 *
 *   imap: greeting -> A1 CAPABILITY -> A2 STARTTLS -> [TLS] -> A3 CAPABILITY -> A4 LOGOUT
 *   pop3: greeting -> CAPA -> STLS -> [TLS] -> CAPA -> QUIT
 *   imaps, pop3s: [TLS] -> greeting -> capabilities -> goodbye
 *
 * The record keeps the SMTP shape: the greeting in "greeting", the capability exchange
 * before TLS in "ehlo" (verb "CAPABILITY" or "CAPA", the capabilities as extensions),
 * the STARTTLS/STLS answer in "starttls", the capabilities inside TLS in "ehlo_tls";
 * reply codes are 0 (these protocols have none). What authentication is offered before
 * and inside TLS goes to "auth". As in SMTP every byte is distrusted: data after a
 * complete response is a protocol error, plaintext after the STARTTLS go-ahead is
 * recorded and discarded by the runner, a capability that looks like STARTTLS or STLS
 * overwritten by a middlebox is recorded as mangled.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access_reply.h"
#include "esc.h"
#include "proto.h"

enum access_state {
	AX_GREETING,     /* waiting for the greeting; never speak */
	AX_CAPA,         /* CAPABILITY / CAPA sent */
	AX_STARTTLS,     /* STARTTLS / STLS sent */
	AX_CAPA_TLS,     /* capabilities asked again inside TLS */
	AX_QUIT,         /* LOGOUT / QUIT sent; a line or a close ends the probe */
	AX_LAST
};

static const char *const imap_state_names[AX_LAST] = {
	[AX_GREETING] = "greeting",
	[AX_CAPA] = "capability",
	[AX_STARTTLS] = "starttls",
	[AX_CAPA_TLS] = "capability_tls",
	[AX_QUIT] = "logout",
};

static const char *const pop3_state_names[AX_LAST] = {
	[AX_GREETING] = "greeting",
	[AX_CAPA] = "capa",
	[AX_STARTTLS] = "stls",
	[AX_CAPA_TLS] = "capa_tls",
	[AX_QUIT] = "quit",
};

/* The record's phases keep SMTP's names: the capability exchange is the "ehlo" phase. */
static const enum mxs_phase access_phases[AX_LAST] = {
	[AX_GREETING] = MXS_PHASE_GREETING,
	[AX_CAPA] = MXS_PHASE_EHLO,
	[AX_STARTTLS] = MXS_PHASE_STARTTLS,
	[AX_CAPA_TLS] = MXS_PHASE_EHLO_TLS,
	[AX_QUIT] = MXS_PHASE_QUIT,
};

static const enum mxs_clock access_clocks[AX_LAST] = {
	[AX_GREETING] = MXS_CLOCK_GREETING,
	[AX_CAPA] = MXS_CLOCK_COMMAND,
	[AX_STARTTLS] = MXS_CLOCK_COMMAND,
	[AX_CAPA_TLS] = MXS_CLOCK_COMMAND,
	[AX_QUIT] = MXS_CLOCK_QUIT,
};

struct access {
	struct access_reply reply;   /* the response being read */
	bool imap;
	int ntag;                    /* IMAP: tags sent so far */
	char tag[16];                /* IMAP: the tag of the command awaiting its response */
};

static struct access *mod(struct mxs_conv *c)
{
	return c->mod;
}

static bool implicit(const struct mxs_conv *c)
{
	return c->proto->tls_mode == MXS_TLS_IMPLICIT;
}

static const char *state_name(const struct mxs_conv *c, int st)
{
	return c->proto->state_names[st];
}

static const char *last_line(const struct mxs_reply_rec *rr)
{
	return rr->lines.n ? rr->lines.v[rr->lines.n - 1] : "";
}

/* End with an outcome; polite: say goodbye first, else close at once. */
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
	return polite && st != AX_QUIT ? AX_QUIT : MXS_NEXT_CLOSE;
}

/* Send an IMAP command under the next tag. */
static void imap_command(struct mxs_conv *c, const char *cmd)
{
	struct access *a = mod(c);
	char line[64];

	snprintf(a->tag, sizeof(a->tag), "A%d", ++a->ntag);
	snprintf(line, sizeof(line), "%s %s", a->tag, cmd);
	mxs_conv_send_line(c, line);
}

/*
 * The injection check (legacy probes, conv->inject): STARTTLS/STLS and a NOOP in one write,
 * one segment. The STARTTLS tag stays the one whose answer is awaited; the NOOP takes the
 * next. A server that keeps the NOOP past the go-ahead answers it inside TLS (the classic
 * IMAP/POP3 STARTTLS injection bugs); the runner listens for that.
 */
static void send_injected(struct mxs_conv *c)
{
	struct access *a = mod(c);
	char line[64];
	int n;

	if (a->imap) {
		snprintf(a->tag, sizeof(a->tag), "A%d", ++a->ntag);
		n = snprintf(line, sizeof(line), "%s STARTTLS\r\nA%d NOOP", a->tag, ++a->ntag);
	} else {
		n = snprintf(line, sizeof(line), "STLS\r\nNOOP");
	}
	mxs_record_transcript(c->rec, 'C', c->tls, mxs_conv_since_attempt(c), line, (size_t)n);
	memcpy(line + n, "\r\n", 2);
	c->write(c->io, line, (size_t)n + 2);
}

static void access_enter(struct mxs_conv *c, int st)
{
	struct access *a = mod(c);

	access_reply_reset(&a->reply);
	switch ((enum access_state)st) {
	case AX_GREETING: break;
	case AX_CAPA:
	case AX_CAPA_TLS:
		if (a->imap)
			imap_command(c, "CAPABILITY");
		else
			mxs_conv_send_line(c, "CAPA");
		break;
	case AX_STARTTLS:
		if (c->inject)
			send_injected(c);
		else if (a->imap)
			imap_command(c, "STARTTLS");
		else
			mxs_conv_send_line(c, "STLS");
		break;
	case AX_QUIT:
		if (a->imap)
			imap_command(c, "LOGOUT");
		else
			mxs_conv_send_line(c, "QUIT");
		break;
	case AX_LAST: break;
	}
}

/* Move the finished response into a reply record (code 0: no codes in these protocols). */
static void take(struct mxs_reply_rec *dst, struct access_reply *src)
{
	strv_free(&dst->lines);
	dst->lines = src->lines;
	memset(&src->lines, 0, sizeof(src->lines));
	dst->code = 0;
	dst->present = true;
}

/* The capabilities into an ehlo record, with the verb that asked for them. */
static void take_caps(struct mxs_conv *c, struct mxs_ehlo_rec *e, struct access_reply *src)
{
	take(&e->reply, src);
	e->verb = mod(c)->imap ? "CAPABILITY" : "CAPA";
	strv_free(&e->extensions);
	e->extensions = src->caps;
	memset(&src->caps, 0, sizeof(src->caps));
}

/* What authentication the capabilities offer, before TLS or inside it. */
static void note_auth(struct mxs_conv *c, const struct strv *caps, bool tls)
{
	struct mxs_auth_rec *au = &c->rec->auth;
	bool login = mod(c)->imap ? !access_has_cap(caps, "LOGINDISABLED")
				  : access_has_cap(caps, "USER");

	au->checked = true;
	access_sasl_mechs(caps, tls ? &au->mechs_tls : &au->mechs);
	if (tls) {
		au->login_tls = login;
		return;
	}
	au->login = login;
	au->cleartext = login || strv_contains(&au->mechs, "PLAIN") || strv_contains(&au->mechs, "LOGIN");
}

static const char *starttls_word(const struct mxs_conv *c)
{
	return ((const struct access *)c->mod)->imap ? "STARTTLS" : "STLS";
}

/* ---- response handlers: one per state; the response is complete ---- */

static int greeting_reply(struct mxs_conv *c)
{
	struct access_reply *rp = &mod(c)->reply;
	enum access_verdict v = rp->verdict;

	mxs_conv_took(c, MXS_T_GREETING);
	take(&c->rec->greeting, rp);
	switch (v) {
	case ACCESS_OK:
		return implicit(c) ? AX_CAPA_TLS : AX_CAPA;
	case ACCESS_PREAUTH:
		/* Already authenticated: STARTTLS is allowed only before (RFC 9051 6.2.1). */
		return conclude(c, AX_GREETING, MXS_OUT_NO_STARTTLS, true, "PREAUTH greeting: %s",
				last_line(&c->rec->greeting));
	default:
		return conclude(c, AX_GREETING, MXS_OUT_GREETING_REJECTED, false, "%s",
				last_line(&c->rec->greeting));
	}
}

static int capa_reply(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	struct access_reply *rp = &mod(c)->reply;
	enum access_verdict v = rp->verdict;
	const char *mangled;

	mxs_conv_took(c, MXS_T_EHLO);
	take_caps(c, &r->ehlo, rp);
	if (v != ACCESS_OK) {
		if (v == ACCESS_BYE)
			return conclude(c, AX_CAPA, MXS_OUT_EHLO_REJECTED, false, "%s", last_line(&r->ehlo.reply));
		if (!mod(c)->imap) {
			/* CAPA is optional (RFC 2449): ask for STLS all the same. */
			mxs_record_detail(r, "CAPA refused: %s", last_line(&r->ehlo.reply));
			return AX_STARTTLS;
		}
		return conclude(c, AX_CAPA, MXS_OUT_EHLO_REJECTED, true, "CAPABILITY: %s",
				last_line(&r->ehlo.reply));
	}
	note_auth(c, &r->ehlo.extensions, false);
	if ((mangled = access_mangled_cap(&r->ehlo.extensions, starttls_word(c))) != NULL)
		r->mangled_starttls = strdup(mangled);
	if (access_has_cap(&r->ehlo.extensions, starttls_word(c)))
		return AX_STARTTLS;
	return conclude(c, AX_CAPA, MXS_OUT_NO_STARTTLS, true, "%s",
			mangled ? "STARTTLS advertisement mangled" : "");
}

static int starttls_reply(struct mxs_conv *c)
{
	struct access_reply *rp = &mod(c)->reply;
	enum access_verdict v = rp->verdict;

	mxs_conv_took(c, MXS_T_STARTTLS);
	take(&c->rec->starttls, rp);
	if (v != ACCESS_OK)
		return conclude(c, AX_STARTTLS, MXS_OUT_STARTTLS_REFUSED, v != ACCESS_BYE, "%s",
				last_line(&c->rec->starttls));
	return MXS_NEXT_TLS;
}

static int capa_tls_reply(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;
	struct access_reply *rp = &mod(c)->reply;
	enum access_verdict v = rp->verdict;
	int next;

	mxs_conv_took(c, MXS_T_EHLO_TLS);
	take_caps(c, &r->ehlo_tls, rp);
	if (v != ACCESS_OK) {
		next = conclude(c, AX_CAPA_TLS, MXS_OUT_SUCCESS, v != ACCESS_BYE,
				"capabilities over TLS refused: %s", last_line(&r->ehlo_tls.reply));
	} else {
		note_auth(c, &r->ehlo_tls.extensions, true);
		next = conclude(c, AX_CAPA_TLS, MXS_OUT_SUCCESS, true, "%s", "");
	}
	if (r->outcome == MXS_OUT_SUCCESS && r->phase == MXS_PHASE_EHLO_TLS)
		r->phase = MXS_PHASE_DONE;
	return next;
}

/* A complete response of state st into its record slot, without acting on it. */
static void keep(struct mxs_conv *c, int st)
{
	struct access_reply *rp = &mod(c)->reply;

	switch ((enum access_state)st) {
	case AX_GREETING: take(&c->rec->greeting, rp); break;
	case AX_CAPA: take_caps(c, &c->rec->ehlo, rp); break;
	case AX_CAPA_TLS: take_caps(c, &c->rec->ehlo_tls, rp); break;
	case AX_STARTTLS: case AX_QUIT: case AX_LAST: break;
	}
	access_reply_reset(rp);
}

/* "STARTTLS"/"STLS" alone, or after our tag: the server echoed the command. */
static bool is_echo(struct mxs_conv *c, const char *line, size_t len)
{
	const char *w = starttls_word(c);
	size_t tl = strlen(mod(c)->tag);

	if (mod(c)->imap && len > tl + 1 && memcmp(line, mod(c)->tag, tl) == 0 && line[tl] == ' ') {
		line += tl + 1;
		len -= tl + 1;
	}
	return len == strlen(w) && strncasecmp(line, w, len) == 0;
}

static int access_on_line(struct mxs_conv *c, int st, const char *line, size_t len, size_t pending)
{
	struct access *a = mod(c);
	enum access_status rs;

	if (line == NULL)
		return conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false,
				"%s: more than %d bytes without a line ending in phase %s",
				access_status_names[ACCESS_ERR_TOO_LONG], ACCESS_LINE_MAX, state_name(c, st));
	if (st == AX_QUIT)
		return MXS_NEXT_CLOSE;
	if (a->imap)
		rs = imap_reply_feed(&a->reply, st == AX_GREETING ? NULL : a->tag,
				     (const unsigned char *)line, len);
	else
		rs = pop3_reply_feed(&a->reply, st == AX_CAPA || st == AX_CAPA_TLS,
				     (const unsigned char *)line, len);
	if (rs == ACCESS_MORE)
		return MXS_NEXT_MORE;
	if (rs != ACCESS_DONE) {
		char *shown = mxs_esc_encode(line, len > 80 ? 80 : len, NULL);
		int next;
		if (st == AX_STARTTLS && is_echo(c, line, len))
			c->rec->starttls_echo = true;
		next = conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false, "%s in phase %s: \"%s\"",
				access_status_names[rs], state_name(c, st), shown ? shown : "");
		free(shown);
		return next;
	}
	/* After the STARTTLS go-ahead the rest is the runner's (plaintext kept out of TLS). */
	if (st != AX_STARTTLS && pending > 0) {
		/* The response itself was complete: it is recorded, as SMTP's is. */
		keep(c, st);
		return conclude(c, st, MXS_OUT_PROTOCOL_ERROR, false,
				"%zu bytes of unsolicited data after the %s response", pending,
				state_name(c, st));
	}
	switch ((enum access_state)st) {
	case AX_GREETING: return greeting_reply(c);
	case AX_CAPA: return capa_reply(c);
	case AX_STARTTLS: return starttls_reply(c);
	case AX_CAPA_TLS: return capa_tls_reply(c);
	case AX_QUIT: case AX_LAST: break;
	}
	return conclude(c, st, MXS_OUT_LOCAL_ERROR, false, "response in unexpected state %s",
			state_name(c, st));
}

static int access_on_tls(struct mxs_conv *c)
{
	return implicit(c) ? AX_GREETING : AX_CAPA_TLS;
}

static int access_on_timeout(struct mxs_conv *c, int st, int ms)
{
	switch ((enum access_state)st) {
	case AX_GREETING:
		return conclude(c, st, MXS_OUT_GREETING_TIMEOUT, false, "no greeting bytes for %d ms", ms);
	case AX_CAPA:
		return conclude(c, st, MXS_OUT_EHLO_TIMEOUT, false, "no %s response bytes for %d ms",
				state_name(c, st), ms);
	case AX_STARTTLS:
		return conclude(c, st, MXS_OUT_STARTTLS_TIMEOUT, false, "no %s response bytes for %d ms",
				state_name(c, st), ms);
	case AX_CAPA_TLS:
		return conclude(c, st, MXS_OUT_SUCCESS, false, "no capability response bytes over TLS for %d ms", ms);
	case AX_QUIT: case AX_LAST: break;
	}
	return MXS_NEXT_CLOSE;
}

static void access_init(struct mxs_conv *c)
{
	struct access *a = mod(c);

	access_reply_init(&a->reply);
	a->imap = c->proto->state_names == imap_state_names;
	c->rec->proto = c->proto->name;
}

static void access_release(struct mxs_conv *c)
{
	access_reply_reset(&mod(c)->reply);
}

/* A new attempt (retries are not asked for by these modules; kept for the contract). */
static void access_reset(struct mxs_conv *c)
{
	struct mxs_record *r = c->rec;

	strv_free(&r->greeting.lines);
	r->greeting.present = false;
	strv_free(&r->ehlo.reply.lines);
	r->ehlo.reply.present = false;
	strv_free(&r->ehlo.extensions);
	strv_free(&r->auth.mechs);
	strv_free(&r->auth.mechs_tls);
	memset(&r->auth, 0, sizeof(r->auth));
	access_reply_reset(&mod(c)->reply);
	mod(c)->ntag = 0;
}

#define ACCESS_MODULE \
	.nstates = AX_LAST, \
	.phases = access_phases, \
	.clocks = access_clocks, \
	.first_state = AX_GREETING, \
	.quit_state = AX_QUIT, \
	.line_max = ACCESS_LINE_MAX, \
	.state_size = sizeof(struct access), \
	.init = access_init, \
	.release = access_release, \
	.reset = access_reset, \
	.enter = access_enter, \
	.on_line = access_on_line, \
	.on_tls = access_on_tls, \
	.on_timeout = access_on_timeout

const struct mxs_proto mxs_proto_imap = {
	.name = "imap", .default_port = 143, .tls_mode = MXS_TLS_STARTTLS, .can_inject = true,
	.state_names = imap_state_names, ACCESS_MODULE,
};

const struct mxs_proto mxs_proto_imaps = {
	.name = "imaps", .default_port = 993, .tls_mode = MXS_TLS_IMPLICIT,
	.state_names = imap_state_names, ACCESS_MODULE,
};

const struct mxs_proto mxs_proto_pop3 = {
	.name = "pop3", .default_port = 110, .tls_mode = MXS_TLS_STARTTLS, .can_inject = true,
	.state_names = pop3_state_names, ACCESS_MODULE,
};

const struct mxs_proto mxs_proto_pop3s = {
	.name = "pop3s", .default_port = 995, .tls_mode = MXS_TLS_IMPLICIT,
	.state_names = pop3_state_names, ACCESS_MODULE,
};
