#include "conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "esc.h"
#include "fault.h"
#include "fproto.h"
#include "log.h"
#include "monotime.h"
#include "tlsmodel.h"
#include "wire.h"

#define CMD_LINE_MAX 4096          /* longer command lines are refused (RFC 5321: 512) */
#define EARLY_INPUT_MAX 65536      /* bytes a client may send before the greeting ends */
#define STREAM_CHUNK 65536         /* bytes queued per refill of a streamed greeting */
#define ENDLESS_BATCH 64           /* lines queued per refill of endless-multiline */
#define LINGER_MS 2000             /* after our FIN, wait this long for the peer's */
#define FLUSH_POLL_MS 10           /* TLS: poll until the socket's output has drained */
#define GREETING_DROP_MS 500       /* a greeting-phase drop waits at least this long (below) */

enum fc_state {
	FC_ACCEPTED,      /* just accepted, nothing sent */
	FC_GREETING,      /* sending the greeting lines; the client has to wait */
	FC_STREAM,        /* the greeting is a stream (trickle, long line, endless) */
	FC_SILENT,        /* tarpit, or stalled by a fault: take bytes, answer nothing */
	FC_COMMAND,       /* plaintext SMTP commands */
	FC_NOT_TLS,       /* after 220 to STARTTLS: wait for the ClientHello, answer junk */
	FC_CANNED,        /* after 220 to STARTTLS: wait for the ClientHello, answer it canned */
	FC_HANDSHAKE,     /* TLS handshake as server */
	FC_COMMAND_TLS,   /* SMTP commands over TLS */
	FC_CLOSING,       /* flush, half-close, read until the peer closes or LINGER_MS */
	FC_AWAIT_HELLO,   /* dropped in the handshake: wait for the ClientHello, then reset */
	FC_RESET,         /* reset (RST) one RTT after its cause (at once without a wire, but
			   * a greeting-phase drop always waits GREETING_DROP_MS) */
	FC_DONE,          /* finished: freed at the end of the current callback */
	FC_STATE_LAST
};

static const char *const fc_state_names[FC_STATE_LAST] = {
	[FC_ACCEPTED] = "accepted",
	[FC_GREETING] = "greeting",
	[FC_STREAM] = "stream",
	[FC_SILENT] = "silent",
	[FC_COMMAND] = "command",
	[FC_NOT_TLS] = "not-tls",
	[FC_CANNED] = "canned",
	[FC_HANDSHAKE] = "handshake",
	[FC_COMMAND_TLS] = "command-tls",
	[FC_CLOSING] = "closing",
	[FC_AWAIT_HELLO] = "await-hello",
	[FC_RESET] = "reset",
	[FC_DONE] = "done",
};

/* What libevent reported; each callback turns into one of these. */
enum fc_event {
	FC_EV_READ,       /* input arrived */
	FC_EV_DRAINED,    /* the output buffer emptied */
	FC_EV_TIMER,      /* the session's step timer fired */
	FC_EV_IDLE,       /* nothing moved for --idle-ms */
	FC_EV_TLS_UP,     /* the TLS handshake completed */
	FC_EV_EOF,        /* the peer closed */
	FC_EV_ERROR,      /* socket or TLS error */
};

struct fconn {
	struct fleet *fl;
	struct fconn *prev, *next;        /* fl->conns */
	unsigned long long id;
	const struct fb_behaviour *b;
	const struct fp_proto *p;         /* the protocol the fleet speaks (--proto) */
	struct fleet_addr laddr;          /* the local address (421-then-ok counts per address) */
	struct fb_fault fault;            /* where this address stalls or drops, if it does */
	char local[FLEET_ADDR_STRLEN];
	evutil_socket_t fd;
	struct fwire *wire;               /* --rtt-ms/--jitter-ms: the delayed path; else NULL */
	struct bufferevent *bev;          /* the socket (or the wire's session end), or the TLS
					   * filter over it */
	struct event *timer;              /* the next scripted step */
	struct event *idle;
	enum fc_state state;
	size_t step;                      /* greeting lines or stream bytes sent so far */
	/* A stream (FC_STREAM): head once, then fill_len bytes of fill, then tail and back to
	 * the command state; or, with repeat, that line forever. */
	struct fb_bytes head, repeat;
	char fill;
	size_t fill_len;
	char tail[96];
	int trickle;                      /* the greeting trickles (FB_GREET_TRICKLE) */
	int64_t reset_due_us;             /* FC_RESET: when the RST leaves (monotime.h) */
	int half_closed;
	int tls;
	struct evbuffer *pipelined;       /* keeps_pipelined: commands sent behind STARTTLS */
};

/* Per-state handlers; each returns the next state (its own to stay). NULL: see fc_handle. */
struct fc_ops {
	enum fc_state (*enter)(struct fconn *c);     /* send what the state starts with */
	enum fc_state (*on_read)(struct fconn *c);   /* NULL: input is discarded */
	enum fc_state (*on_drained)(struct fconn *c);
	enum fc_state (*on_timer)(struct fconn *c);
};

/* ---- Small helpers */

static void conn_touch(struct fconn *c)
{
	evtimer_add(c->idle, c->fl->idle_tv);
}

static void conn_send(struct fconn *c, const void *p, size_t len)
{
	bufferevent_write(c->bev, p, len);
	conn_touch(c);
}

static void conn_sendb(struct fconn *c, struct fb_bytes b)
{
	conn_send(c, b.p, b.len);
}

static void conn_sends(struct fconn *c, const char *s)
{
	conn_send(c, s, strlen(s));
}

static void arm_timer(struct fconn *c, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

static void discard_input(struct fconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

/* 1 when every byte we wrote has reached the kernel (through the TLS layer and wire too). */
static int output_flushed(struct fconn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	       (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0) &&
	       (c->wire == NULL || fwire_flushed(c->wire));
}

/* The fault, if it strikes in phase p: the state that plays it; FC_STATE_LAST: none. */
static enum fc_state fault_at(struct fconn *c, enum fb_phase p)
{
	if (c->fault.kind == FB_FAULT_NONE || c->fault.phase != p)
		return FC_STATE_LAST;
	mxs_debug("fleet", "c%llu fault kind=%s phase=%s", c->id, fb_fault_names[c->fault.kind],
		  fb_phase_names[p]);
	if (c->fault.kind == FB_FAULT_STALL)
		return FC_SILENT;
	/* In the handshake the reset answers the ClientHello, so the client is in TLS by then. */
	return p == FB_PHASE_HANDSHAKE ? FC_AWAIT_HELLO : FC_RESET;
}

static void log_openssl_errors(struct fconn *c)
{
	unsigned long e;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof(buf));
		mxs_debug("fleet", "c%llu tls-error error=\"%s\"", c->id, buf);
	}
	ERR_clear_error();
}

static enum fp_dialect dialect(const struct fconn *c)
{
	return c->p->dialect;
}

/* A line in the dialect: SMTP's, IMAP's (untagged) or POP3's. */
static void conn_say(struct fconn *c, const char *smtp, const char *imap, const char *pop3)
{
	conn_sends(c, dialect(c) == FP_DIALECT_IMAP ? imap : dialect(c) == FP_DIALECT_POP3 ? pop3 : smtp);
}

/* ---- Greeting */

static const struct fb_bytes *greeting_lines(const struct fconn *c, const struct fb_behaviour *b)
{
	return dialect(c) == FP_DIALECT_SMTP ? fb_greeting_lines(b) : fp_greeting(b, dialect(c));
}

static enum fc_state greeting_done(struct fconn *c)
{
	struct fb_bytes extra = dialect(c) == FP_DIALECT_SMTP ? c->b->unsolicited
			      : fp_unsolicited(c->b, dialect(c));

	if (extra.p != NULL)
		conn_sendb(c, extra); /* queued behind the greeting: one write */
	return c->b->close_after_greeting ? FC_CLOSING : FC_COMMAND;
}

/* Send the next greeting line(s): all at once, or one per pause. */
static enum fc_state greeting_step(struct fconn *c)
{
	const struct fb_bytes *lines = greeting_lines(c, c->b);
	size_t nlines = 0;

	while (lines[nlines].p != NULL)
		nlines++;
	while (lines[c->step].p != NULL) {
		conn_sendb(c, lines[c->step++]);
		if (c->b->pause_lines && lines[c->step].p != NULL) {
			arm_timer(c, c->fl->opt.delay_ms / (unsigned)(nlines - 1));
			return FC_GREETING;
		}
	}
	return greeting_done(c);
}

static enum fc_state enter_greeting(struct fconn *c)
{
	if (c->b->delay_greeting) {
		arm_timer(c, c->fl->opt.delay_ms);
		return FC_GREETING;
	}
	return greeting_step(c);
}

/* A client that talks before the greeting ends: postscreen's verdict, or wait. */
static enum fc_state greeting_read(struct fconn *c)
{
	if (c->b->pause_lines) {
		discard_input(c);
		conn_say(c, FB_EARLY_TALKER, "* BYE Protocol error: talked too early\r\n",
			 "-ERR Protocol error: talked too early\r\n");
		return FC_CLOSING;
	}
	/* Keep it for the command state, within reason. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > EARLY_INPUT_MAX)
		return FC_DONE;
	return FC_GREETING;
}

/* ---- Streamed greetings */

static void queue_repeated(struct fconn *c, char byte, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;

	if (evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) < 1)
		return;
	memset(v.iov_base, byte, n);
	v.iov_len = n;
	evbuffer_commit_space(out, &v, 1);
	conn_touch(c);
}

/* Queue the next part of a stream (a long line, an endless greeting or capability list). */
static enum fc_state stream_fill(struct fconn *c)
{
	if (c->trickle)
		return FC_STREAM; /* the trickle runs on its timer */
	if (c->head.p != NULL) {
		conn_sendb(c, c->head);
		c->head.p = NULL;
	}
	if (c->repeat.p != NULL) {
		for (int i = 0; i < ENDLESS_BATCH; i++)
			conn_sendb(c, c->repeat);
		return FC_STREAM;
	}
	if (c->step < c->fill_len) {
		size_t n = c->fill_len - c->step;
		n = n < STREAM_CHUNK ? n : STREAM_CHUNK;
		queue_repeated(c, c->fill, n);
		c->step += n;
		return FC_STREAM;
	}
	conn_sends(c, c->tail);
	c->fill_len = 0;
	c->step = 0;
	return FC_COMMAND;
}

/* A stream: head, then n bytes of fill and tail (the command state follows), or with
 * repeat that line forever. */
static enum fc_state start_stream(struct fconn *c, struct fb_bytes head, struct fb_bytes repeat,
				  size_t n, const char *tail)
{
	c->head = head;
	c->repeat = repeat;
	c->fill = 'A';
	c->fill_len = n;
	c->step = 0;
	snprintf(c->tail, sizeof(c->tail), "%s", tail);
	return FC_STREAM;
}

static enum fc_state trickle_step(struct fconn *c)
{
	struct fb_bytes first = greeting_lines(c, c->b)[0];
	char byte = c->step < first.len ? first.p[c->step] : '.';

	conn_send(c, &byte, 1);
	c->step++;
	arm_timer(c, FB_TRICKLE_MS);
	return FC_STREAM;
}

static enum fc_state enter_stream(struct fconn *c)
{
	return c->trickle ? trickle_step(c) : stream_fill(c);
}

/* ---- SMTP commands */

static enum fc_state cmd_ehlo(struct fconn *c, const char *arg)
{
	const char *const *ext = fb_extensions(c->b);
	struct evbuffer *reply;
	int nlines = 0;

	static const struct fb_bytes none = { NULL, 0 };

	switch (c->b->ehlo) {
	case FB_EHLO_RST:
		return FC_RESET;
	case FB_EHLO_FLOOD:
		return start_stream(c, (struct fb_bytes)FB_BYTES("250-" FB_MX_HOST "\r\n"),
				    (struct fb_bytes)FB_BYTES("250-FLOOD\r\n"), 0, "");
	case FB_EHLO_HUGE:
		return start_stream(c, (struct fb_bytes)FB_BYTES("250-"), none, FB_HUGE_LINE_BYTES,
				    "\r\n250 OK\r\n");
	case FB_EHLO_502:
		conn_sends(c, "502 5.5.2 Error: command not recognized\r\n");
		return c->state;
	case FB_EHLO_250:
	case FB_EHLO_503_ALL:
		break;
	}
	reply = evbuffer_new();
	if (reply == NULL)
		return FC_DONE;
	for (const char *const *e = ext; *e != NULL; e++)
		if (!c->tls || strcasecmp(*e, "STARTTLS") != 0)
			nlines++;
	evbuffer_add_printf(reply, "250%c%s\r\n", nlines > 0 ? '-' : ' ', FB_MX_HOST);
	for (const char *const *e = ext; *e != NULL; e++)
		if (!c->tls || strcasecmp(*e, "STARTTLS") != 0)
			evbuffer_add_printf(reply, "250%c%s\r\n", --nlines > 0 ? '-' : ' ', *e);
	bufferevent_write_buffer(c->bev, reply);
	evbuffer_free(reply);
	conn_touch(c);
	return c->state;
}

static enum fc_state cmd_helo(struct fconn *c, const char *arg)
{
	conn_sends(c, "250 " FB_MX_HOST "\r\n");
	return c->state;
}

static enum fc_state cmd_starttls(struct fconn *c, const char *arg)
{
	struct fb_bytes reply = fb_starttls_reply(c->b);

	if (c->tls) {
		conn_sends(c, "554 5.5.1 Error: TLS already active\r\n");
		return c->state;
	}
	if (reply.p == NULL) {
		conn_sends(c, "502 5.5.1 Error: command not implemented\r\n");
		return c->state;
	}
	if (c->b->starttls_stall)
		return FC_SILENT;
	/* Plaintext pipelined behind STARTTLS must never reach the TLS layer (CVE-2011-0411);
	 * a vulnerable server keeps it and answers it inside TLS (starttls-injection). */
	if (c->b->keeps_pipelined && c->pipelined == NULL && (c->pipelined = evbuffer_new()) != NULL)
		evbuffer_add_buffer(c->pipelined, bufferevent_get_input(c->bev));
	discard_input(c);
	conn_sendb(c, reply);
	if (reply.p[0] != '2')
		return c->state;
	switch (c->b->after_starttls) {
	case FB_AFTER_TLS:
	case FB_AFTER_NOT_TLS:
	case FB_AFTER_CANNED: {
		enum fc_state fault = fault_at(c, FB_PHASE_HANDSHAKE);
		if (fault != FC_STATE_LAST)
			return fault;
		return c->b->after_starttls == FB_AFTER_TLS ? FC_HANDSHAKE :
		       c->b->after_starttls == FB_AFTER_CANNED ? FC_CANNED : FC_NOT_TLS;
	}
	case FB_AFTER_PLAIN:
		break;
	}
	return c->state;
}

static enum fc_state cmd_quit(struct fconn *c, const char *arg)
{
	conn_sends(c, "221 2.0.0 Bye\r\n");
	return FC_CLOSING;
}

static enum fc_state cmd_ok(struct fconn *c, const char *arg)
{
	conn_sends(c, "250 2.0.0 Ok\r\n");
	return c->state;
}

static const struct {
	const char *verb;
	enum fc_state (*run)(struct fconn *c, const char *arg);
	enum fb_phase phase;      /* the session phase the command opens (faults strike there) */
} commands[] = {
	{ "EHLO", cmd_ehlo, FB_PHASE_EHLO },
	{ "HELO", cmd_helo, FB_PHASE_EHLO },
	{ "STARTTLS", cmd_starttls, FB_PHASE_STARTTLS },
	{ "QUIT", cmd_quit, FB_PHASE_NONE },
	{ "NOOP", cmd_ok, FB_PHASE_NONE },
	{ "RSET", cmd_ok, FB_PHASE_NONE },
};

static enum fc_state run_command(struct fconn *c, const char *line)
{
	size_t vlen = strcspn(line, " ");
	const char *arg = line[vlen] == ' ' ? line + vlen + 1 : "";

	if (mxs_log_get_level() >= MXS_LOG_DEBUG) {
		/* Client bytes reach the log only in the escape form. */
		char *verb = mxs_esc_encode(line, vlen < 16 ? vlen : 16, NULL);
		mxs_debug("fleet", "c%llu command verb=\"%s\"", c->id, verb != NULL ? verb : "?");
		free(verb);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		enum fc_state fault;

		if (strlen(commands[i].verb) != vlen || strncasecmp(line, commands[i].verb, vlen) != 0)
			continue;
		fault = c->tls ? FC_STATE_LAST : fault_at(c, commands[i].phase);
		if (fault != FC_STATE_LAST)
			return fault;
		if (c->b->ehlo == FB_EHLO_503_ALL && commands[i].run != cmd_quit) {
			conn_sends(c, "503 5.5.0 Error: no SMTP service here\r\n");
			return c->state;
		}
		return commands[i].run(c, arg);
	}
	conn_sends(c, "502 5.5.2 Error: command not recognized\r\n");
	return c->state;
}

/* ---- IMAP and POP3 commands (the behaviours' renditions are in fproto.c) */

/* STARTTLS/STLS: the behaviour's answer, then TLS, a stall, junk, or more commands. */
static enum fc_state access_starttls(struct fconn *c, const char *tag)
{
	char reply[256];
	int go_ahead;
	size_t n;

	/* A POP3 server without CAPA (ehlo-reject) may still take STLS; an IMAP one may not. */
	if (c->tls || !fp_offers_starttls(c->b, dialect(c)) || c->b->ehlo == FB_EHLO_503_ALL ||
	    (c->b->ehlo == FB_EHLO_502 && dialect(c) == FP_DIALECT_IMAP)) {
		if (dialect(c) == FP_DIALECT_IMAP)
			evbuffer_add_printf(bufferevent_get_output(c->bev), "%s BAD %s\r\n", tag,
					    c->tls ? "TLS is already active" : "Unknown command");
		else
			conn_sends(c, c->tls ? "-ERR TLS is already active\r\n" : "-ERR Unknown command\r\n");
		conn_touch(c);
		return c->state;
	}
	if (c->b->starttls_stall)
		return FC_SILENT;
	n = fp_starttls_reply(c->b, dialect(c), tag, reply, sizeof(reply), &go_ahead);
	/* Plaintext pipelined behind STARTTLS must never reach the TLS layer; a vulnerable
	 * server keeps it and answers it inside TLS (starttls-injection), as in SMTP. */
	if (go_ahead && c->b->keeps_pipelined && c->pipelined == NULL &&
	    (c->pipelined = evbuffer_new()) != NULL)
		evbuffer_add_buffer(c->pipelined, bufferevent_get_input(c->bev));
	discard_input(c);
	conn_send(c, reply, n);
	if (!go_ahead)
		return c->state;
	return c->b->after_starttls == FB_AFTER_NOT_TLS ? FC_NOT_TLS :
	       c->b->after_starttls == FB_AFTER_CANNED ? FC_CANNED : FC_HANDSHAKE;
}

/* The capability list in the dialect, as one write; or the behaviour's flood or huge line. */
static enum fc_state access_capa(struct fconn *c, const char *tag)
{
	int imap = dialect(c) == FP_DIALECT_IMAP;
	static const struct fb_bytes none = { NULL, 0 };
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *const *caps = fp_caps(c->b, dialect(c), c->tls);
	char done[64], tail[72];

	if (imap)
		snprintf(done, sizeof(done), "%s OK CAPABILITY completed\r\n", tag);
	else
		snprintf(done, sizeof(done), ".\r\n");
	snprintf(tail, sizeof(tail), "\r\n%s", done);
	switch (c->b->ehlo) {
	case FB_EHLO_RST:
		return FC_RESET;
	case FB_EHLO_502:
	case FB_EHLO_503_ALL:
		if (imap)
			evbuffer_add_printf(out, "%s BAD Unknown command\r\n", tag);
		else
			conn_sends(c, "-ERR Unknown command\r\n");
		conn_touch(c);
		return c->state;
	/* The first capability request: before TLS, or inside it with implicit TLS. */
	case FB_EHLO_FLOOD:
		if (c->tls && !c->p->implicit)
			break;
		return start_stream(c, imap ? none : (struct fb_bytes)FB_BYTES("+OK Capability list follows\r\n"),
				    fp_flood_line(dialect(c)), 0, "");
	case FB_EHLO_HUGE:
		if (c->tls && !c->p->implicit)
			break;
		return start_stream(c, imap ? (struct fb_bytes)FB_BYTES("* CAPABILITY IMAP4rev1 X-")
				    : (struct fb_bytes)FB_BYTES("+OK Capability list follows\r\nX-"),
				    none, FB_HUGE_LINE_BYTES, tail);
	case FB_EHLO_250:
		break;
	}
	if (imap) {
		evbuffer_add_printf(out, "* CAPABILITY");
		for (const char *const *k = caps; *k != NULL; k++)
			evbuffer_add_printf(out, " %s", *k);
		evbuffer_add_printf(out, "\r\n%s", done);
	} else {
		evbuffer_add_printf(out, "+OK Capability list follows\r\n");
		for (const char *const *k = caps; *k != NULL; k++)
			evbuffer_add_printf(out, "%s\r\n", *k);
		evbuffer_add_printf(out, "%s", done);
	}
	conn_touch(c);
	return c->state;
}

/* One IMAP ("tag VERB ...") or POP3 ("VERB ...") command line. */
static enum fc_state run_access(struct fconn *c, const char *line)
{
	int imap = dialect(c) == FP_DIALECT_IMAP;
	char tag[32] = "";
	const char *verb = line;
	size_t vlen;
	int capa, stls, quit, noop;

	if (imap) {
		size_t tl = strcspn(line, " ");
		if (line[tl] != ' ' || tl == 0 || tl >= sizeof(tag)) {
			conn_sends(c, "* BAD Missing tag\r\n");
			return c->state;
		}
		memcpy(tag, line, tl);
		verb = line + tl + 1;
	}
	vlen = strcspn(verb, " ");
#define IS(w) (vlen == strlen(w) && strncasecmp(verb, (w), vlen) == 0)
	capa = imap ? IS("CAPABILITY") : IS("CAPA");
	stls = IS(fp_starttls_verb(dialect(c)));
	quit = imap ? IS("LOGOUT") : IS("QUIT");
	noop = IS("NOOP");
#undef IS
	if (quit) {
		if (imap)
			evbuffer_add_printf(bufferevent_get_output(c->bev),
					    "* BYE Logging out\r\n%s OK LOGOUT completed\r\n", tag);
		else
			conn_sends(c, "+OK Bye\r\n");
		conn_touch(c);
		return FC_CLOSING;
	}
	if (capa)
		return access_capa(c, tag);
	if (stls)
		return access_starttls(c, tag);
	if (noop) {
		if (imap)
			evbuffer_add_printf(bufferevent_get_output(c->bev), "%s OK NOOP completed\r\n", tag);
		else
			conn_sends(c, "+OK\r\n");
		conn_touch(c);
		return c->state;
	}
	if (imap)
		evbuffer_add_printf(bufferevent_get_output(c->bev), "%s BAD Unknown command\r\n", tag);
	else
		conn_sends(c, "-ERR Unknown command\r\n");
	conn_touch(c);
	return c->state;
}

/* Answer every complete line; stop at the first command that changes the state. */
static enum fc_state command_read(struct fconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum fc_state next = c->state;

	while (next == c->state) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

		if (line == NULL) {
			if (evbuffer_get_length(in) > CMD_LINE_MAX) {
				discard_input(c);
				conn_say(c, "500 5.5.0 Error: line too long\r\n", "* BYE Line too long\r\n",
					 "-ERR Line too long\r\n");
				return FC_CLOSING;
			}
			break;
		}
		if (n > CMD_LINE_MAX) {
			conn_say(c, "500 5.5.0 Error: line too long\r\n", "* BYE Line too long\r\n",
				 "-ERR Line too long\r\n");
			next = FC_CLOSING;
		} else {
			next = dialect(c) == FP_DIALECT_SMTP ? run_command(c, line) : run_access(c, line);
		}
		free(line);
	}
	return next;
}

static enum fc_state enter_command(struct fconn *c)
{
	return command_read(c); /* bytes that arrived during the greeting */
}

static enum fc_state enter_command_tls(struct fconn *c)
{
	enum fc_state next = c->state;
	char *line;
	size_t n;

	c->tls = 1;
	/* the vulnerable server: what was pipelined behind STARTTLS is answered now, in TLS */
	while (c->pipelined != NULL && next == c->state &&
	       (line = evbuffer_readln(c->pipelined, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		next = n > CMD_LINE_MAX ? FC_CLOSING :
		       dialect(c) == FP_DIALECT_SMTP ? run_command(c, line) : run_access(c, line);
		free(line);
	}
	if (next != c->state)
		return next;
	return command_read(c);
}

/* ---- STARTTLS and after */

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static enum fc_state enter_handshake(struct fconn *c)
{
	SSL *ssl = SSL_new(c->fl->ctx[c->b->tls][c->b->leaf]);
	struct bufferevent *tls;

	if (ssl == NULL)
		return FC_DONE;
	/* The filter owns ssl and the socket bufferevent from here (CLOSE_ON_FREE). The 220
	 * already queued on the socket bufferevent is written before any TLS byte. */
	tls = bufferevent_openssl_filter_new(c->fl->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return FC_DONE;
	}
	c->bev = tls;
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_setcb(tls, read_cb, write_cb, event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	return FC_HANDSHAKE;
}

/* Bytes right behind the handshake wait for the TLS command state, which reads them first. */
static enum fc_state handshake_read(struct fconn *c)
{
	return FC_HANDSHAKE;
}

/* The ClientHello arrived: answer it with plaintext and hang up. */
static enum fc_state not_tls_read(struct fconn *c)
{
	discard_input(c);
	conn_sends(c, FB_NOT_TLS);
	return FC_CLOSING;
}

/* The ClientHello arrived (once whole): answer it as the canned server would, and close. */
static enum fc_state canned_read(struct fconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t have = evbuffer_get_length(in), need;
	uint8_t *hello, flight[16384];
	size_t n;

	need = tm_hello_len(evbuffer_pullup(in, have < 5 ? (ev_ssize_t)have : 5), have);
	if (need == 0 || have < need)
		return FC_CANNED;
	hello = evbuffer_pullup(in, (ev_ssize_t)need);
	n = tm_answer(c->b->canned, hello, need, flight, sizeof(flight));
	discard_input(c);
	mxs_debug("fleet", "c%llu canned answer bytes=%zu", c->id, n);
	if (n > 0)
		conn_send(c, flight, n);
	return FC_CLOSING;
}

/* ---- Resets: the RST leaves like any flight, one RTT after its cause */

static enum fc_state reset_now(struct fconn *c)
{
	/* SO_LINGER 0: close() sends RST and drops whatever was queued. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	evbuffer_drain(bufferevent_get_output(c->bev),
		       evbuffer_get_length(bufferevent_get_output(c->bev)));
	return FC_DONE;
}

/* Reset when due; a timer that woke early (monotime.h) is armed again. */
static enum fc_state reset_timer(struct fconn *c)
{
	int64_t now = fleet_mono_us();
	struct timeval tv;

	if (now >= c->reset_due_us)
		return reset_now(c);
	tv = fleet_tv_until(c->reset_due_us, now);
	evtimer_add(c->timer, &tv);
	return FC_RESET;
}

static enum fc_state enter_reset(struct fconn *c)
{
	int64_t now = fleet_mono_us();

	c->reset_due_us = c->wire != NULL ? fwire_reserve(c->wire) : now;
	/* An RST soon after accept can reach a busy client before its event loop has taken
	 * note of the connect (libevent then reports the connect as failed, ECONNRESET), and
	 * it would record a connect error instead of the peer-closed greeting the truth
	 * states. 50 ms was beaten by a loaded sanitizer build; 500 ms has not been. */
	if (c->fault.kind == FB_FAULT_DROP && c->fault.phase == FB_PHASE_GREETING &&
	    c->reset_due_us < now + GREETING_DROP_MS * 1000)
		c->reset_due_us = now + GREETING_DROP_MS * 1000;
	if (c->reset_due_us <= now)
		return reset_now(c); /* no wire, no grace: at once, as reset-after-ehlo always did */
	discard_input(c);
	return reset_timer(c);
}

/* The first bytes of the ClientHello arrived: the fault answers them. */
static enum fc_state await_hello_read(struct fconn *c)
{
	return FC_RESET;
}

/* ---- Closing: flush, FIN, then wait for the peer's FIN so nothing we sent is lost to RST */

static enum fc_state closing_poll(struct fconn *c)
{
	if (c->half_closed)
		return FC_CLOSING;
	if (!output_flushed(c)) {
		/* A TLS filter gives no event for its socket; a wire holds its last flight
		 * until a known time, so sleep until then rather than poll through the RTT. */
		unsigned ms = c->wire != NULL ? fwire_drain_ms(c->wire) : 0;
		arm_timer(c, ms > FLUSH_POLL_MS ? ms : FLUSH_POLL_MS);
		return FC_CLOSING;
	}
	shutdown(c->fd, SHUT_WR);
	c->half_closed = 1;
	arm_timer(c, LINGER_MS);
	return FC_CLOSING;
}

static enum fc_state closing_timer(struct fconn *c)
{
	return c->half_closed ? FC_DONE : closing_poll(c);
}

static const struct fc_ops fc_ops[FC_STATE_LAST] = {
	[FC_GREETING] = { .enter = enter_greeting, .on_read = greeting_read, .on_timer = greeting_step },
	[FC_STREAM] = { .enter = enter_stream, .on_drained = stream_fill, .on_timer = trickle_step },
	[FC_COMMAND] = { .enter = enter_command, .on_read = command_read },
	[FC_NOT_TLS] = { .on_read = not_tls_read },
	[FC_CANNED] = { .on_read = canned_read },
	[FC_HANDSHAKE] = { .enter = enter_handshake, .on_read = handshake_read },
	[FC_COMMAND_TLS] = { .enter = enter_command_tls, .on_read = command_read },
	[FC_CLOSING] = { .enter = closing_poll, .on_drained = closing_poll, .on_timer = closing_timer },
	[FC_AWAIT_HELLO] = { .on_read = await_hello_read },
	[FC_RESET] = { .enter = enter_reset, .on_timer = reset_timer },
};

/* ---- The one event switch, state changes, deferred free */

static enum fc_state greeting_state(struct fconn *c);

static enum fc_state on_idle(struct fconn *c)
{
	if (c->state == FC_COMMAND || c->state == FC_COMMAND_TLS) {
		conn_say(c, "421 4.4.2 " FB_MX_HOST " Error: timeout exceeded\r\n",
			 "* BYE Disconnected for inactivity\r\n", "-ERR Disconnected for inactivity\r\n");
		return FC_CLOSING;
	}
	return FC_DONE;
}

static enum fc_state fc_handle(struct fconn *c, enum fc_event ev)
{
	const struct fc_ops *ops = &fc_ops[c->state];

	switch (ev) {
	case FC_EV_READ:
		conn_touch(c);
		if (ops->on_read != NULL)
			return ops->on_read(c);
		discard_input(c);
		return c->state;
	case FC_EV_DRAINED:
		return ops->on_drained != NULL ? ops->on_drained(c) : c->state;
	case FC_EV_TIMER:
		return ops->on_timer != NULL ? ops->on_timer(c) : c->state;
	case FC_EV_IDLE:
		return on_idle(c);
	case FC_EV_TLS_UP:
		mxs_debug("fleet", "c%llu tls-up version=%s cipher=%s", c->id,
			  SSL_get_version(bufferevent_openssl_get_ssl(c->bev)),
			  SSL_get_cipher_name(bufferevent_openssl_get_ssl(c->bev)));
		if (c->state != FC_HANDSHAKE)
			return c->state;
		if (c->p->implicit && !c->tls) {
			c->tls = 1;
			return greeting_state(c);
		}
		return FC_COMMAND_TLS;
	case FC_EV_EOF:
	case FC_EV_ERROR:
		if (c->state == FC_HANDSHAKE || c->state == FC_COMMAND_TLS)
			log_openssl_errors(c);
		/* A refused handshake: OpenSSL's alert (protocol_version, handshake_failure)
		 * waits on the socket's bufferevent; send it before the close, as servers do.
		 * (The TLS filter may report that failure as an EOF too.) */
		return c->state == FC_HANDSHAKE ? FC_CLOSING : FC_DONE;
	}
	mxs_err("fleet", "c%llu unknown-event ev=%d", c->id, (int)ev);
	abort();
}

/* The only place the state changes: log it, run the new state's entry action. */
static void fc_set_state(struct fconn *c, enum fc_state next)
{
	while (next != c->state) {
		mxs_debug("fleet", "c%llu state %s -> %s", c->id, fc_state_names[c->state],
			  fc_state_names[next]);
		c->state = next;
		if (fc_ops[next].enter != NULL)
			next = fc_ops[next].enter(c);
	}
}

static void conn_free(struct fconn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->fl->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket or frees the wire's end (and the SSL) */
	fwire_free(c->wire);      /* after its session end: closes the socket */
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->idle != NULL)
		event_free(c->idle);
	if (c->pipelined != NULL)
		evbuffer_free(c->pipelined);
	free(c);
}

/* Every libevent callback ends here: one event in, state moved, freed if finished. */
static void fc_dispatch(struct fconn *c, enum fc_event ev)
{
	fc_set_state(c, fc_handle(c, ev));
	if (c->state == FC_DONE)
		conn_free(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	fc_dispatch(arg, FC_EV_READ);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	fc_dispatch(arg, FC_EV_DRAINED);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fconn *c = arg;

	mxs_debug("fleet", "c%llu io-event what=0x%x state=%s", c->id, (unsigned)what,
		  fc_state_names[c->state]);
	if (what & BEV_EVENT_CONNECTED)
		fc_dispatch(c, FC_EV_TLS_UP);
	else if (what & BEV_EVENT_EOF)
		fc_dispatch(c, FC_EV_EOF);
	else
		fc_dispatch(c, FC_EV_ERROR);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	fc_dispatch(arg, FC_EV_TIMER);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	fc_dispatch(arg, FC_EV_IDLE);
}

/* ---- Start and shutdown */

/* The greeting (after the handshake with implicit TLS). */
static enum fc_state greeting_state(struct fconn *c)
{
	static const struct fb_bytes none = { NULL, 0 };
	const struct fb_bytes *lines = greeting_lines(c, c->b);

	if (c->b->first_421) {
		long seen = fleet_addrcount_bump(c->fl->counts, &c->laddr);
		if (seen < 0)
			return FC_DONE;
		if (seen == 0) {
			conn_sendb(c, greeting_lines(c, &fb_behaviours[FB_GREETING_421])[0]);
			return FC_CLOSING;
		}
	}
	switch (c->b->greeting) {
	case FB_GREET_LINES:
		return FC_GREETING;
	case FB_GREET_SILENT:
		return FC_SILENT;
	case FB_GREET_TRICKLE:
		c->trickle = 1;
		return FC_STREAM;
	case FB_GREET_LONG_LINE:
		return start_stream(c, lines[0], none, FB_LONG_LINE_BYTES, "\r\n");
	case FB_GREET_ENDLESS:
		return start_stream(c, none, lines[0], 0, "");
	}
	return FC_DONE;
}

static enum fc_state first_state(struct fconn *c)
{
	enum fc_state fault = fault_at(c, FB_PHASE_GREETING);

	if (fault != FC_STATE_LAST)
		return fault;
	/* Implicit TLS: the handshake first (answered with junk by handshake-garbage). */
	if (c->p->implicit)
		return c->b->after_starttls == FB_AFTER_NOT_TLS ? FC_NOT_TLS :
		       c->b->after_starttls == FB_AFTER_CANNED ? FC_CANNED : FC_HANDSHAKE;
	return greeting_state(c);
}

int fconn_start(struct fleet *fl, evutil_socket_t fd, const struct fleet_addr *local)
{
	struct fconn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	c->fl = fl;
	c->id = (unsigned long long)++fl->next_id;
	c->fd = fd;
	c->p = fl->opt.proto;
	c->laddr = *local;
	c->b = &fb_behaviours[fp_pick(c->p, fleet_addr_key(local), fl->opt.seed)];
	c->fault = fb_fault_pick(fleet_addr_key(local), fl->opt.seed, &fl->opt.faults, c->b);
	c->state = FC_ACCEPTED;
	fleet_addr_format(local, c->local, sizeof(c->local));
	/* Byte-exact timing (trickle, pauses) needs every write on the wire at once. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fl->opt.rtt_ms > 0 || fl->opt.jitter_ms > 0) {
		struct fwire_params wp = { .rtt_ms = fl->opt.rtt_ms, .jitter_ms = fl->opt.jitter_ms,
					   .seed = fl->opt.seed, .conn_id = c->id };
		c->wire = fwire_new(fl->base, fd, &wp, &c->bev); /* closes fd if it fails */
	} else {
		c->bev = bufferevent_socket_new(fl->base, fd,
						BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			evutil_closesocket(fd);
	}
	c->timer = evtimer_new(fl->base, timer_cb, c);
	c->idle = evtimer_new(fl->base, idle_cb, c);
	c->next = fl->conns;
	if (fl->conns != NULL)
		fl->conns->prev = c;
	fl->conns = c;
	if (c->bev == NULL || c->timer == NULL || c->idle == NULL) {
		conn_free(c);
		return -1;
	}
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_touch(c);
	mxs_debug("fleet", "c%llu accept local=%s behaviour=%s", c->id, c->local, c->b->name);
	fc_set_state(c, first_state(c));
	if (c->state == FC_DONE)
		conn_free(c);
	return 0;
}

void fconn_free_all(struct fleet *fl)
{
	while (fl->conns != NULL)
		conn_free(fl->conns);
}
