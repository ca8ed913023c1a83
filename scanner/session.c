/*
 * One target's probe as an explicit state machine (engine.h lists the states).
 *
 * set_state() enters a state and arms its timer; send_command() speaks; the reply
 * handlers, one per state, read a complete reply from the record and decide the next
 * state or the outcome. Every libevent callback ends with session_maybe_release(), so
 * no handler ever touches a freed session. Every byte from the server is distrusted:
 * lines are validated by smtp_reply.c, capped in length and count, and any data the
 * server sends when no command is outstanding is a protocol error.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ehlo.h"
#include "esc.h"
#include "engine.h"
#include "log.h"
#include "timeutil.h"

/* Bytes buffered from one peer before reading pauses: a few maximal lines. */
#define READ_HIGH_WATERMARK (4 * SMTP_LINE_MAX)
/* How long QUIT may take; its answer changes nothing in the record. */
#define QUIT_TIMEOUT_MS 5000
/* Longest wait between 421 retries. */
#define RETRY_DELAY_MAX_MS (30 * 60 * 1000)

const char *const session_state_names[ST_LAST] = {
	[ST_CONNECT] = "connect",
	[ST_GREETING] = "greeting",
	[ST_EHLO] = "ehlo",
	[ST_HELO] = "helo",
	[ST_STARTTLS] = "starttls",
	[ST_HANDSHAKE] = "handshake",
	[ST_EHLO_TLS] = "ehlo_tls",
	[ST_QUIT] = "quit",
	[ST_RETRY_WAIT] = "retry_wait",
	[ST_DONE] = "done",
};

static const enum mxs_phase state_phase[ST_LAST] = {
	[ST_CONNECT] = MXS_PHASE_CONNECT,
	[ST_GREETING] = MXS_PHASE_GREETING,
	[ST_EHLO] = MXS_PHASE_EHLO,
	[ST_HELO] = MXS_PHASE_HELO,
	[ST_STARTTLS] = MXS_PHASE_STARTTLS,
	[ST_HANDSHAKE] = MXS_PHASE_HANDSHAKE,
	[ST_EHLO_TLS] = MXS_PHASE_EHLO_TLS,
	[ST_QUIT] = MXS_PHASE_QUIT,
	[ST_RETRY_WAIT] = MXS_PHASE_CONNECT,
	[ST_DONE] = MXS_PHASE_DONE,
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static int64_t since_attempt(const struct session *s)
{
	return mxs_mono_ms() - s->t_attempt;
}

static void arm_timer(struct session *s, int64_t deadline)
{
	int64_t d = deadline - mxs_mono_ms();
	struct timeval tv;

	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)((d % 1000) * 1000);
	evtimer_add(s->timer, &tv);
}

static int phase_timeout_ms(const struct mxs_scan_opts *o, enum session_state st)
{
	switch (st) {
	case ST_CONNECT: return o->connect_timeout_ms;
	case ST_GREETING: return o->greeting_timeout_ms;
	case ST_HANDSHAKE: return o->handshake_timeout_ms;
	case ST_QUIT: return o->command_timeout_ms < QUIT_TIMEOUT_MS ? o->command_timeout_ms : QUIT_TIMEOUT_MS;
	default: return o->command_timeout_ms;
	}
}

/* Enter a state: the record's phase follows until an outcome is set; its timer is armed. */
static void set_state(struct session *s, enum session_state st)
{
	mxs_debug("scan", "%llu state %s -> %s ip=%s", (unsigned long long)s->id,
		  session_state_names[s->state], session_state_names[st], s->tgt.ip);
	s->state = st;
	s->t_phase = mxs_mono_ms();
	if (s->rec.outcome == MXS_OUT_NONE)
		s->rec.phase = state_phase[st];
	if (st == ST_DONE || st == ST_RETRY_WAIT) {
		evtimer_del(s->timer);
		return;
	}
	s->phase_deadline = s->t_phase + phase_timeout_ms(&s->sc->o, st);
	arm_timer(s, s->phase_deadline < s->attempt_deadline ? s->phase_deadline : s->attempt_deadline);
}

static void phase_took(struct session *s, enum mxs_timing which)
{
	s->rec.timing[which] = mxs_mono_ms() - s->t_phase;
}

/*
 * Set the outcome; the first classification wins. Once the TLS handshake completed the
 * probe has what it came for: a later failure becomes "success" with the failure noted.
 */
static void set_outcome(struct session *s, enum mxs_outcome o, const char *detail)
{
	if (s->rec.outcome != MXS_OUT_NONE)
		return;
	if (s->rec.tls != NULL && o != MXS_OUT_SUCCESS) {
		mxs_record_detail(&s->rec, "after the handshake: %s: %s", mxs_outcome_names[o], detail);
		o = MXS_OUT_SUCCESS;
	} else {
		mxs_record_detail(&s->rec, "%s", detail);
	}
	s->rec.outcome = o;
	if (o == MXS_OUT_SUCCESS && s->rec.phase == MXS_PHASE_EHLO_TLS && s->rec.ehlo_tls.reply.present)
		s->rec.phase = MXS_PHASE_DONE;
}

/*
 * Free a bufferevent (and, for the TLS filter, the SSL and socket under it). Its events
 * are removed from the loop first, synchronously: libevent 2.1 closes the socket at once
 * but finalises the events later, and by then the fd number may belong to a new
 * connection whose read interest the late removal would take away.
 */
static void bev_close(struct bufferevent *bev)
{
	struct bufferevent *under = bufferevent_get_underlying(bev);

	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (under != NULL)
		bufferevent_disable(under, EV_READ | EV_WRITE);
	bufferevent_free(bev);
}

/* Close the connection now and mark the session for release. */
static void close_now(struct session *s)
{
	if (s->bev != NULL) {
		bev_close(s->bev);
		s->bev = NULL;
		s->ssl = NULL;
	}
	if (s->rec.timing[MXS_T_TOTAL] < 0 && s->t_attempt > 0)
		s->rec.timing[MXS_T_TOTAL] = since_attempt(s);
	if (s->holds_slots)
		engine_release_slots(s->sc, s);
	set_state(s, ST_DONE);
	s->release = true;
}

static void send_command(struct session *s, const char *cmd, enum session_state next)
{
	size_t len = strlen(cmd);

	mxs_record_transcript(&s->rec, 'C', s->ssl != NULL, since_attempt(s), cmd, len);
	bufferevent_write(s->bev, cmd, len);
	bufferevent_write(s->bev, "\r\n", 2);
	smtp_reply_reset(&s->reply);
	set_state(s, next);
}

/*
 * End the probe with an outcome. polite: the connection still speaks SMTP, so say QUIT
 * and wait briefly for 221 before closing; otherwise close at once.
 */
static void conclude(struct session *s, enum mxs_outcome o, bool polite, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void conclude(struct session *s, enum mxs_outcome o, bool polite, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	set_outcome(s, o, detail);
	if (polite && s->bev != NULL && s->state != ST_QUIT)
		send_command(s, "QUIT", ST_QUIT);
	else
		close_now(s);
}

/* The EHLO argument: the configured FQDN, or our address literal on this connection. */
static const char *ehlo_argument(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (s->sc->ehlo_is_fqdn)
		return s->rec.ehlo_name = s->sc->ehlo_name;
	if (getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, a, sizeof(a), NULL, 0, NI_NUMERICHOST) == 0)
		snprintf(s->rec.ehlo_literal, sizeof(s->rec.ehlo_literal),
			 ss.ss_family == AF_INET6 ? "[IPv6:%s]" : "[%s]", a);
	else
		snprintf(s->rec.ehlo_literal, sizeof(s->rec.ehlo_literal), "[127.0.0.1]");
	return s->rec.ehlo_name = s->rec.ehlo_literal;
}

static void send_hello(struct session *s, const char *verb, enum session_state next)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s %s", verb, ehlo_argument(s));
	send_command(s, cmd, next);
}

/* The last line of a reply record, for details (already in escape form). */
static const char *last_line(const struct mxs_reply_rec *rr)
{
	return rr->lines.n ? rr->lines.v[rr->lines.n - 1] : "";
}

static void schedule_retry(struct session *s)
{
	int64_t delay = s->sc->o.retry_delay_ms;
	struct timeval tv;

	for (int i = 1; i < s->rec.attempts && delay < RETRY_DELAY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_DELAY_MAX_MS)
		delay = RETRY_DELAY_MAX_MS;
	mxs_debug("scan", "%llu retry ip=%s attempt=%d delay_ms=%lld", (unsigned long long)s->id,
		  s->tgt.ip, s->rec.attempts, (long long)delay);
	send_command(s, "QUIT", ST_QUIT);
	/*
	 * The QUIT is a courtesy, written now without waiting (socket bufferevents have no
	 * flush); the connection goes at once, and the slots with it.
	 */
	evbuffer_write(bufferevent_get_output(s->bev), bufferevent_getfd(s->bev));
	bev_close(s->bev);
	s->bev = NULL;
	engine_release_slots(s->sc, s);
	set_state(s, ST_RETRY_WAIT);
	engine_session_waiting(s->sc, s, true);
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(s->timer, &tv);
}

static bool may_retry(const struct session *s, int code)
{
	return code == 421 && s->rec.attempts <= s->sc->o.retries && !s->sc->stopping;
}

/* ---- reply handlers: one per state; the reply is already in the record ---- */

static void greeting_reply(struct session *s)
{
	const struct mxs_reply_rec *g = &s->rec.greeting;

	phase_took(s, MXS_T_GREETING);
	if (g->code == 220)
		send_hello(s, "EHLO", ST_EHLO);
	else if (may_retry(s, g->code))
		schedule_retry(s);
	else
		conclude(s, MXS_OUT_GREETING_REJECTED, true, "%s", last_line(g));
}

static void ehlo_reply(struct session *s)
{
	struct mxs_ehlo_rec *e = &s->rec.ehlo;
	const char *mangled;

	phase_took(s, MXS_T_EHLO);
	if (e->reply.code / 100 != 2) {
		if (may_retry(s, e->reply.code)) {
			schedule_retry(s);
		} else if (e->reply.code == 421) {
			conclude(s, MXS_OUT_EHLO_REJECTED, false, "EHLO: %s", last_line(&e->reply));
		} else {
			/* Keep the refusal for the detail; the HELO reply replaces it in the record. */
			mxs_record_detail(&s->rec, "EHLO: %s", last_line(&e->reply));
			send_hello(s, "HELO", ST_HELO);
		}
		return;
	}
	ehlo_extensions(&e->reply.lines, &e->extensions);
	if ((mangled = ehlo_mangled_starttls(&e->extensions)) != NULL)
		s->rec.mangled_starttls = strdup(mangled);
	if (ehlo_has_starttls(&e->extensions))
		send_command(s, "STARTTLS", ST_STARTTLS);
	else
		conclude(s, MXS_OUT_NO_STARTTLS, true, "%s", mangled ? "STARTTLS advertisement mangled" : "");
}

static void helo_reply(struct session *s)
{
	char ehlo_detail[256];

	s->rec.ehlo.verb = "HELO";
	phase_took(s, MXS_T_EHLO);
	snprintf(ehlo_detail, sizeof(ehlo_detail), "%s", s->rec.detail ? s->rec.detail : "EHLO refused");
	conclude(s, MXS_OUT_EHLO_REJECTED, true, "%s; HELO: %s", ehlo_detail,
		 last_line(&s->rec.ehlo.reply));
}

static void start_tls(struct session *s);

static void starttls_reply(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t extra = evbuffer_get_length(in);

	phase_took(s, MXS_T_STARTTLS);
	if (s->rec.starttls.code != 220) {
		conclude(s, MXS_OUT_STARTTLS_REFUSED, true, "%s", last_line(&s->rec.starttls));
		return;
	}
	if (extra > 0) {
		/*
		 * Plaintext after "220 ready" was injected or pipelined by someone: record it,
		 * and never let it into the TLS layer (curl's STARTTLS pipelining lesson).
		 */
		size_t show = extra < MXS_TRANSCRIPT_DATA_MAX ? extra : MXS_TRANSCRIPT_DATA_MAX;
		mxs_record_transcript(&s->rec, 'S', false, since_attempt(s),
				      evbuffer_pullup(in, (ev_ssize_t)show), extra);
		s->rec.plaintext_after_starttls = (long)extra;
		evbuffer_drain(in, extra);
	}
	start_tls(s);
}

static void ehlo_tls_reply(struct session *s)
{
	struct mxs_ehlo_rec *e = &s->rec.ehlo_tls;

	phase_took(s, MXS_T_EHLO_TLS);
	if (e->reply.code / 100 == 2) {
		ehlo_extensions(&e->reply.lines, &e->extensions);
		conclude(s, MXS_OUT_SUCCESS, true, "%s", "");
	} else {
		conclude(s, MXS_OUT_SUCCESS, true, "EHLO over TLS refused: %s", last_line(&e->reply));
	}
}

/* ---- TLS ---- */

static void start_tls(struct session *s)
{
	struct mxs_scanner *sc = s->sc;
	struct bufferevent *tb;
	SSL *ssl = tls_client_new_ssl(&sc->tls, s->tgt.mx, s->tgt.tlsa, s->tgt.ntlsa);

	if (ssl == NULL) {
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "cannot create a TLS session");
		return;
	}
	tb = bufferevent_openssl_filter_new(sc->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "cannot create the TLS filter");
		return;
	}
	s->bev = tb;
	s->ssl = ssl;
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	bufferevent_setcb(tb, on_read, NULL, on_event, s);
	bufferevent_setwatermark(tb, EV_READ, 0, READ_HIGH_WATERMARK);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	set_state(s, ST_HANDSHAKE);
}

static void tls_established(struct session *s)
{
	phase_took(s, MXS_T_HANDSHAKE);
	s->rec.tls = tls_client_describe(&s->sc->tls, s->ssl, s->tgt.mx, &s->tgt.mx_names,
					 s->tgt.ntlsa, s->tgt.tlsa_dnssec);
	if (s->rec.tls == NULL) {
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "out of memory describing the handshake");
		return;
	}
	send_hello(s, "EHLO", ST_EHLO_TLS);
}

static void handshake_failed(struct session *s, short what, int err)
{
	char detail[400] = "";
	size_t n = 0;
	unsigned long e;

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0 && n < sizeof(detail) - 2) {
		char one[200];
		ERR_error_string_n(e, one, sizeof(one));
		n += (size_t)snprintf(detail + n, sizeof(detail) - n, "%s%s", n ? "; " : "", one);
	}
	if (n == 0)
		snprintf(detail, sizeof(detail), "%s", (what & BEV_EVENT_EOF) || err == 0
				 ? "server closed the connection during the handshake"
				 : strerror(err));
	ERR_clear_error();
	conclude(s, MXS_OUT_HANDSHAKE_ERROR, false, "%s", detail);
}

/* ---- reading replies ---- */

/* Move the finished reply into the record slot of the current state. */
static void store_reply(struct session *s)
{
	switch (s->state) {
	case ST_GREETING: mxs_reply_rec_take(&s->rec.greeting, &s->reply); break;
	case ST_EHLO:
	case ST_HELO: mxs_reply_rec_take(&s->rec.ehlo.reply, &s->reply); break;
	case ST_STARTTLS: mxs_reply_rec_take(&s->rec.starttls, &s->reply); break;
	case ST_EHLO_TLS: mxs_reply_rec_take(&s->rec.ehlo_tls.reply, &s->reply); break;
	default: smtp_reply_reset(&s->reply); break;
	}
}

static void handle_reply(struct session *s)
{
	switch (s->state) {
	case ST_GREETING: greeting_reply(s); break;
	case ST_EHLO: ehlo_reply(s); break;
	case ST_HELO: helo_reply(s); break;
	case ST_STARTTLS: starttls_reply(s); break;
	case ST_EHLO_TLS: ehlo_tls_reply(s); break;
	case ST_QUIT: close_now(s); break;
	default:
		mxs_err("scan", "%llu reply in state %s", (unsigned long long)s->id,
			session_state_names[s->state]);
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "reply in unexpected state %s",
			 session_state_names[s->state]);
		break;
	}
}

static void read_replies(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (!s->release && s->bev != NULL && (in = bufferevent_get_input(s->bev)) != NULL) {
		enum smtp_reply_status st;
		size_t len;
		char *line;

		if (s->state == ST_CONNECT || s->state == ST_HANDSHAKE || s->state == ST_RETRY_WAIT)
			return;
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			size_t pending = evbuffer_get_length(in);
			if (pending > SMTP_LINE_MAX) {
				mxs_record_transcript(&s->rec, 'S', s->ssl != NULL, since_attempt(s),
						      evbuffer_pullup(in, MXS_TRANSCRIPT_DATA_MAX + 1),
						      MXS_TRANSCRIPT_DATA_MAX + 1);
				conclude(s, MXS_OUT_PROTOCOL_ERROR, false,
					 "%s: more than %d bytes without a line ending in phase %s",
					 smtp_reply_status_names[SMTP_REPLY_ERR_TOO_LONG], SMTP_LINE_MAX,
					 session_state_names[s->state]);
			}
			return;
		}
		mxs_record_transcript(&s->rec, 'S', s->ssl != NULL, since_attempt(s), line, len);
		if (s->state == ST_QUIT) {
			/* Whatever the server says to QUIT, the probe is over. */
			free(line);
			close_now(s);
			return;
		}
		st = smtp_reply_feed(&s->reply, (unsigned char *)line, len);
		if (st != SMTP_REPLY_MORE && st != SMTP_REPLY_DONE) {
			char *shown = mxs_esc_encode(line, len > 80 ? 80 : len, NULL);
			if (s->state == ST_STARTTLS && smtp_is_starttls_echo((unsigned char *)line, len))
				s->rec.starttls_echo = true;
			conclude(s, MXS_OUT_PROTOCOL_ERROR, false, "%s in phase %s: \"%s\"",
				 smtp_reply_status_names[st], session_state_names[s->state],
				 shown ? shown : "");
			free(shown);
			free(line);
			return;
		}
		free(line);
		if (st == SMTP_REPLY_MORE)
			continue;
		store_reply(s);
		if (s->state != ST_STARTTLS && evbuffer_get_length(in) > 0) {
			size_t extra = evbuffer_get_length(in);
			conclude(s, MXS_OUT_PROTOCOL_ERROR, false,
				 "%zu bytes of unsolicited data after the %s reply", extra,
				 session_state_names[s->state]);
			return;
		}
		handle_reply(s);
	}
}

/* ---- events ---- */

static enum mxs_outcome connect_error_outcome(int err)
{
	switch (err) {
	case ECONNREFUSED: return MXS_OUT_CONNECTION_REFUSED;
	case ETIMEDOUT: return MXS_OUT_CONNECTION_TIMEOUT;
	/* Connected, then reset before the connect was reported: the server hung up. */
	case ECONNRESET: case EPIPE: return MXS_OUT_PEER_CLOSED;
	default: return MXS_OUT_UNREACHABLE;
	}
}

/*
 * The connect completed: only now may the socket be read. While connecting, reading
 * stays disabled: when an ICMP error aborts the connect, epoll reports the socket
 * readable and writable at once, and a readv() that ran first would take the pending
 * error (EHOSTUNREACH, ENETUNREACH, EACCES), leaving getsockopt(SO_ERROR) 0, so
 * libevent would report "connected" and the error would look like a hang-up in phase
 * greeting. With writing alone, the connect's outcome comes from SO_ERROR whatever
 * the order of events.
 */
static void connected(struct session *s)
{
	phase_took(s, MXS_T_CONNECT);
	set_state(s, ST_GREETING);
	bufferevent_enable(s->bev, EV_READ);
}

/* The one IO-event switch: what a connect, close or error means in each state. */
static void session_event(struct session *s, short what, int err)
{
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == ST_CONNECT)
			connected(s);
		else if (s->state == ST_HANDSHAKE)
			tls_established(s);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	switch (s->state) {
	case ST_CONNECT:
		conclude(s, connect_error_outcome(err), false, "%s", strerror(err ? err : ECONNREFUSED));
		break;
	case ST_HANDSHAKE:
		handshake_failed(s, what, err);
		break;
	case ST_QUIT:
		close_now(s);
		break;
	case ST_GREETING: case ST_EHLO: case ST_HELO: case ST_STARTTLS: case ST_EHLO_TLS:
		if (what & BEV_EVENT_EOF)
			conclude(s, MXS_OUT_PEER_CLOSED, false, "server closed the connection in phase %s",
				 session_state_names[s->state]);
		else
			conclude(s, MXS_OUT_PEER_CLOSED, false, "connection error in phase %s: %s",
				 session_state_names[s->state], strerror(err ? err : EIO));
		break;
	case ST_RETRY_WAIT: case ST_DONE: case ST_LAST:
		mxs_err("scan", "%llu io event 0x%x in state %s", (unsigned long long)s->id, what,
			session_state_names[s->state]);
		break;
	}
}

/*
 * Bytes arrived: the phase timer measures inactivity, so it starts again. A server that
 * trickles bytes forever is stopped by the attempt's hard deadline instead.
 */
static void restart_phase_timer(struct session *s)
{
	if (s->state == ST_DONE || s->state == ST_RETRY_WAIT)
		return;
	s->phase_deadline = mxs_mono_ms() + phase_timeout_ms(&s->sc->o, s->state);
	arm_timer(s, s->phase_deadline < s->attempt_deadline ? s->phase_deadline : s->attempt_deadline);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
	s->depth++;
	restart_phase_timer(s);
	read_replies(s);
	s->depth--;
	session_maybe_release(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	(void)bev;
	s->depth++;
	/* Data that arrived with the close is still a reply: read it first. */
	if ((what & BEV_EVENT_EOF) && s->bev != NULL && s->state != ST_HANDSHAKE)
		read_replies(s);
	/* The reply may have ended the connection (a 421 sends the session to retry). */
	if (!s->release && s->bev != NULL)
		session_event(s, what, err);
	s->depth--;
	session_maybe_release(s);
}

static void timed_out(struct session *s)
{
	int phase_ms = phase_timeout_ms(&s->sc->o, s->state);

	/*
	 * Which clock ran out is the one the timer was armed for, the earlier deadline, not
	 * a comparison with "now": libevent may fire a timer a millisecond early.
	 */
	if (s->attempt_deadline <= s->phase_deadline && s->state != ST_QUIT) {
		conclude(s, MXS_OUT_DEADLINE, false, "hard deadline of %d ms expired in phase %s",
			 s->sc->o.deadline_ms, session_state_names[s->state]);
		return;
	}
	switch (s->state) {
	case ST_CONNECT:
		conclude(s, MXS_OUT_CONNECTION_TIMEOUT, false, "no connection within %d ms", phase_ms);
		break;
	case ST_GREETING:
		conclude(s, MXS_OUT_GREETING_TIMEOUT, false, "no greeting bytes for %d ms", phase_ms);
		break;
	case ST_EHLO: case ST_HELO:
		conclude(s, MXS_OUT_EHLO_TIMEOUT, false, "no %s reply bytes for %d ms",
			 s->state == ST_EHLO ? "EHLO" : "HELO", phase_ms);
		break;
	case ST_STARTTLS:
		conclude(s, MXS_OUT_STARTTLS_TIMEOUT, false, "no STARTTLS reply bytes for %d ms", phase_ms);
		break;
	case ST_HANDSHAKE:
		conclude(s, MXS_OUT_HANDSHAKE_TIMEOUT, false, "no handshake within %d ms", phase_ms);
		break;
	case ST_EHLO_TLS:
		conclude(s, MXS_OUT_SUCCESS, false, "no EHLO reply bytes over TLS for %d ms", phase_ms);
		break;
	case ST_QUIT:
		close_now(s);
		break;
	case ST_RETRY_WAIT: case ST_DONE: case ST_LAST:
		break;
	}
}

static void retry_now(struct session *s)
{
	struct timeval tv = { 0, 250 * 1000 };

	if (s->sc->stopping) {
		session_interrupt(s);
		return;
	}
	if (engine_acquire_slots(s->sc, s) < 0) {
		evtimer_add(s->timer, &tv);
		return;
	}
	engine_session_waiting(s->sc, s, false);
	session_connect(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	(void)fd;
	(void)what;
	if (s->state == ST_RETRY_WAIT)
		retry_now(s);
	else
		timed_out(s);
	session_maybe_release(s);
}

/* ---- life cycle ---- */

struct session *session_new(struct mxs_scanner *sc, struct mxs_target *t)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->sc = sc;
	s->id = ++sc->next_id;
	s->tgt = *t;
	memset(t, 0, sizeof(*t));
	s->timer = evtimer_new(sc->base, on_timer, s);
	if (s->timer == NULL) {
		target_free(&s->tgt);
		free(s);
		return NULL;
	}
	smtp_reply_init(&s->reply);
	mxs_record_init(&s->rec);
	if (mxs_record_set_target(&s->rec, &s->tgt) < 0) {
		event_free(s->timer);
		mxs_record_free(&s->rec);
		target_free(&s->tgt);
		free(s);
		return NULL;
	}
	s->rec.keep_transcript = sc->o.transcript;
	s->rec.profile = sc->tls.profile;
	s->rec.ehlo_name = sc->ehlo_name;
	s->rec.start_ms = mxs_wall_ms();
	s->state = ST_CONNECT;
	return s;
}

/* Forget what an earlier attempt left in the record; keep its transcript. */
static void reset_attempt(struct session *s)
{
	struct mxs_record *r = &s->rec;

	strv_free(&r->greeting.lines);
	r->greeting.present = false;
	strv_free(&r->ehlo.reply.lines);
	r->ehlo.reply.present = false;
	strv_free(&r->ehlo.extensions);
	r->ehlo.verb = "EHLO";
	free(r->detail);
	r->detail = NULL;
	for (int i = 0; i < MXS_T_LAST; i++)
		r->timing[i] = -1;
	smtp_reply_reset(&s->reply);
}

void session_connect(struct session *s)
{
	struct mxs_scanner *sc = s->sc;
	const struct sockaddr *sa = (const struct sockaddr *)&s->tgt.sa;
	int fd, r;

	if (s->rec.attempts > 0)
		reset_attempt(s);
	s->rec.attempts++;
	s->t_attempt = mxs_mono_ms();
	s->attempt_deadline = s->t_attempt + sc->o.deadline_ms;
	set_state(s, ST_CONNECT);
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		if ((err == EMFILE || err == ENFILE) && s->rec.attempts == 1 &&
		    engine_fd_exhausted(sc) == 0) {
			/* Not the target's fault: it goes back in the queue, untried. */
			s->requeue = true;
			close_now(s);
			return;
		}
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "socket: %s", strerror(err));
		return;
	}
	r = connect(fd, sa, s->tgt.salen);
	if (r < 0 && errno != EINPROGRESS) {
		int err = errno;
		close(fd);
		conclude(s, connect_error_outcome(err), false, "%s", strerror(err));
		return;
	}
	/*
	 * Deferred callbacks: draining the input can make the TLS filter read, and report
	 * EOF, synchronously; deferred, no callback ever runs inside another.
	 */
	s->bev = bufferevent_socket_new(sc->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		close(fd);
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "cannot create a bufferevent");
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, READ_HIGH_WATERMARK);
	if (r == 0) {
		bufferevent_enable(s->bev, EV_WRITE);
		connected(s);
		return;
	}
	/*
	 * fd is connecting: libevent reports completion (or its error) as an event, from
	 * the write side only; connected() enables reading.
	 */
	if (bufferevent_socket_connect(s->bev, NULL, 0) < 0) {
		conclude(s, MXS_OUT_LOCAL_ERROR, false, "bufferevent_socket_connect failed");
		return;
	}
	bufferevent_enable(s->bev, EV_WRITE);
}

void session_interrupt(struct session *s)
{
	if (s->state == ST_DONE)
		return;
	if (s->state == ST_RETRY_WAIT) {
		/* The retry never came: the last answer (a 421) is the result. */
		engine_session_waiting(s->sc, s, false);
		conclude(s, s->rec.greeting.present && s->rec.greeting.code != 220
			 ? MXS_OUT_GREETING_REJECTED : MXS_OUT_EHLO_REJECTED, false,
			 "%s (retry cancelled: the scan stopped)",
			 last_line(s->rec.greeting.code != 220 ? &s->rec.greeting : &s->rec.ehlo.reply));
		return;
	}
	conclude(s, MXS_OUT_INTERRUPTED, false, "the scan stopped in phase %s",
		 session_state_names[s->state]);
}

void session_maybe_release(struct session *s)
{
	/* Only the outermost callback frees: an inner one returns into code using s. */
	if (s->release && s->depth == 0)
		engine_session_done(s->sc, s);
}

void session_free(struct session *s)
{
	if (s->bev != NULL)
		bev_close(s->bev);
	event_free(s->timer);
	smtp_reply_reset(&s->reply);
	mxs_record_free(&s->rec);
	target_free(&s->tgt);
	free(s);
}
