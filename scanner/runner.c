/*
 * The probe runner: one connection's life, free of any protocol. It connects, runs the
 * two clocks (a silence timeout per state, and the attempt's hard deadline), reads CRLF
 * lines into the transcript and hands each to the protocol module (proto.h), runs the
 * TLS stage (after the module's STARTTLS, or at once for implicit TLS), waits and
 * retries when the module asks, and frees the session deferred: every libevent
 * callback ends with session_maybe_release(), so no handler touches a freed session.
 *
 * set_state() enters a runner state and arms its clock; enter_proto() enters a module
 * state, logs the transition and lets the module send its command; one function
 * (session_event) maps connects, closes and errors to outcomes.
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

#include "engine.h"
#include "log.h"
#include "tls_hello.h"
#include "timeutil.h"

/* How long the goodbye state may take; its answer changes nothing in the record. */
#define QUIT_TIMEOUT_MS 5000
/*
 * Injection check: how long to listen after the handshake. A server that kept the
 * pipelined NOOP answers it at once, from its buffer; silence this long means it did not.
 */
#define INJECT_WAIT_MS 2000
/* Longest wait between retries. */
#define RETRY_DELAY_MAX_MS (30 * 60 * 1000)
/* Largest single read of the TLS filter: with libevent 2.1's chain header (48 bytes on
 * 64-bit) the input buffer's chain is 1 KiB, not 32 (see start_tls). */
#define TLS_READ_CHUNK 976

const char *const session_state_names[ST_LAST] = {
	[ST_CONNECT] = "connect",
	[ST_PROTO] = "proto",
	[ST_HANDSHAKE] = "handshake",
	[ST_RETRY_WAIT] = "retry_wait",
	[ST_HELLO] = "hello",
	[ST_INJECT_WAIT] = "inject_wait",
	[ST_DONE] = "done",
};

static const enum mxs_phase runner_phase[ST_LAST] = {
	[ST_CONNECT] = MXS_PHASE_CONNECT,
	[ST_PROTO] = MXS_PHASE_NONE,   /* the module's phase of conv_state */
	[ST_HANDSHAKE] = MXS_PHASE_HANDSHAKE,
	[ST_RETRY_WAIT] = MXS_PHASE_CONNECT,
	[ST_HELLO] = MXS_PHASE_HANDSHAKE,
	[ST_INJECT_WAIT] = MXS_PHASE_HANDSHAKE,
	[ST_DONE] = MXS_PHASE_DONE,
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

/* The name of where the session is: the module's state while it speaks. */
static const char *where(const struct session *s)
{
	if (s->state == ST_PROTO)
		return s->proto->state_names[s->conv_state];
	return session_state_names[s->state];
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

static int phase_timeout_ms(const struct session *s)
{
	const struct mxs_scan_opts *o = &s->sc->o;

	switch (s->state) {
	case ST_CONNECT: return o->connect_timeout_ms;
	case ST_HANDSHAKE: case ST_HELLO: return o->handshake_timeout_ms;
	case ST_INJECT_WAIT:
		return o->command_timeout_ms < INJECT_WAIT_MS ? o->command_timeout_ms : INJECT_WAIT_MS;
	case ST_PROTO:
		switch (s->proto->clocks[s->conv_state]) {
		case MXS_CLOCK_GREETING: return o->greeting_timeout_ms;
		case MXS_CLOCK_QUIT:
			return o->command_timeout_ms < QUIT_TIMEOUT_MS ? o->command_timeout_ms : QUIT_TIMEOUT_MS;
		case MXS_CLOCK_COMMAND: break;
		}
		return o->command_timeout_ms;
	default: return o->command_timeout_ms;
	}
}

static void arm_phase_clock(struct session *s)
{
	s->phase_deadline = mxs_mono_ms() + phase_timeout_ms(s);
	arm_timer(s, s->phase_deadline < s->attempt_deadline ? s->phase_deadline : s->attempt_deadline);
}

/* Enter a state: the record's phase follows until an outcome is set; its clock is armed. */
static void set_state(struct session *s, enum session_state st, int conv_state)
{
	const char *from = where(s);

	s->state = st;
	s->conv_state = conv_state;
	mxs_debug("scan", "%llu state %s -> %s ip=%s", (unsigned long long)s->id, from, where(s),
		  s->tgt.ip);
	s->t_phase = mxs_mono_ms();
	s->conv.t_phase = s->t_phase;
	if (s->rec.outcome == MXS_OUT_NONE)
		s->rec.phase = st == ST_PROTO ? s->proto->phases[conv_state] : runner_phase[st];
	if (st == ST_DONE || st == ST_RETRY_WAIT) {
		evtimer_del(s->timer);
		return;
	}
	arm_phase_clock(s);
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
		s->conv.tls = false;
	}
	if (s->rec.timing[MXS_T_TOTAL] < 0 && s->t_attempt > 0)
		s->rec.timing[MXS_T_TOTAL] = mxs_mono_ms() - s->t_attempt;
	if (s->holds_slots)
		engine_release_slots(s->sc, s);
	set_state(s, ST_DONE, 0);
	s->release = true;
}

/* End the probe with an outcome and close at once (the runner is never polite: no protocol). */
static void conclude(struct session *s, enum mxs_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conclude(struct session *s, enum mxs_outcome o, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	mxs_conv_outcome(&s->conv, o, "%s", detail);
	close_now(s);
}

static void start_tls(struct session *s);
static void schedule_retry(struct session *s);

/* Enter the module's state st: log, arm its clock, let it send its command. */
static void enter_proto(struct session *s, int st)
{
	set_state(s, ST_PROTO, st);
	s->proto->enter(&s->conv, st);
}

/* Act on what a module handler returned. */
static void follow(struct session *s, int next)
{
	switch (next) {
	case MXS_NEXT_MORE: break;
	case MXS_NEXT_TLS: start_tls(s); break;
	case MXS_NEXT_RETRY: schedule_retry(s); break;
	case MXS_NEXT_CLOSE: close_now(s); break;
	default:
		if (next >= 0 && next < s->proto->nstates)
			enter_proto(s, next);
		else
			conclude(s, MXS_OUT_LOCAL_ERROR, "module %s returned %d", s->proto->name, next);
		break;
	}
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
	enter_proto(s, s->proto->quit_state);
	/*
	 * The goodbye is a courtesy, written now without waiting (socket bufferevents have no
	 * flush); the connection goes at once, and the slots with it.
	 */
	evbuffer_write(bufferevent_get_output(s->bev), bufferevent_getfd(s->bev));
	bev_close(s->bev);
	s->bev = NULL;
	s->conv.tls = false;
	engine_release_slots(s->sc, s);
	set_state(s, ST_RETRY_WAIT, 0);
	engine_session_waiting(s->sc, s, true);
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(s->timer, &tv);
}

/* ---- the TLS stage ---- */

/*
 * A legacy probe's TLS stage: our own ClientHello on the plain socket, then the answer
 * read into s->reader until it is final, the server closes, or the handshake clock runs
 * out. No handshake completes; the connection is simply closed.
 */
static void start_hello(struct session *s)
{
	uint8_t hello[TLS_HELLO_MAX];
	bool want_kx = false;
	size_t n = legacy_probe_hello(s->sc, s, hello, sizeof(hello), &want_kx);

	if (n == 0 || (s->reader = malloc(sizeof(*s->reader))) == NULL) {
		conclude(s, MXS_OUT_LOCAL_ERROR, "cannot write the ClientHello");
		return;
	}
	tls_reader_init(s->reader, want_kx);
	mxs_record_transcript(&s->rec, 'C', false, mxs_conv_since_attempt(&s->conv), "[ClientHello]", 13);
	bufferevent_write(s->bev, hello, n);
	set_state(s, ST_HELLO, 0);
}

/* Bytes of the answer to our hello arrived (or the server closed: eof). */
static void hello_read(struct session *s, bool eof)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n;

	while (!s->reader->done && (n = evbuffer_get_contiguous_space(in)) > 0) {
		tls_reader_feed(s->reader, evbuffer_pullup(in, (ev_ssize_t)n), n);
		evbuffer_drain(in, n);
	}
	if (!s->reader->done && eof)
		tls_reader_eof(s->reader);
	if (s->reader->done) {
		mxs_conv_outcome(&s->conv, MXS_OUT_SUCCESS, "answer %d", (int)s->reader->ans.kind);
		close_now(s);
	}
}

static void start_tls(struct session *s)
{
	struct mxs_scanner *sc = s->sc;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t extra = evbuffer_get_length(in);
	struct bufferevent *tb;
	SSL *ssl;

	if (extra > 0) {
		/*
		 * Plaintext after the go-ahead was injected or pipelined by someone: record it,
		 * and never let it into the TLS layer (curl's STARTTLS pipelining lesson).
		 */
		size_t show = extra < MXS_TRANSCRIPT_DATA_MAX ? extra : MXS_TRANSCRIPT_DATA_MAX;
		mxs_record_transcript(&s->rec, 'S', false, mxs_conv_since_attempt(&s->conv),
				      evbuffer_pullup(in, (ev_ssize_t)show), extra);
		s->rec.plaintext_after_starttls = (long)extra;
		evbuffer_drain(in, extra);
	}
	s->reached_tls = true;
	if (s->tgt.legacy > 0 && !legacy_probe_injects(s)) {
		start_hello(s);
		return;
	}
	ssl = tls_client_new_ssl(&sc->tls, s->tgt.mx, s->tgt.tlsa, s->tgt.ntlsa);
	if (ssl == NULL) {
		conclude(s, MXS_OUT_LOCAL_ERROR, "cannot create a TLS session");
		return;
	}
	tb = bufferevent_openssl_filter_new(sc->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		conclude(s, MXS_OUT_LOCAL_ERROR, "cannot create the TLS filter");
		return;
	}
	s->bev = tb;
	s->ssl = ssl;
	s->conv.tls = true;
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	bufferevent_setcb(tb, on_read, NULL, on_event, s);
	bufferevent_setwatermark(tb, EV_READ, 0, 4 * s->proto->line_max);
	/*
	 * The TLS filter reserves room for its largest single read in the input buffer
	 * before each SSL_read, and keeps it while the connection idles: libevent's default,
	 * 16 KiB, plus the chain's header rounds up to a 32 KiB chain per connection, the
	 * largest item of a held connection (docs/performance.md, "Memory"). A read of
	 * TLS_READ_CHUNK fits a 1 KiB chain (a reply line of EHLO's usually fits one);
	 * longer data takes more reads of what OpenSSL already holds, not more bytes.
	 */
	bufferevent_set_max_single_read(tb, TLS_READ_CHUNK);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	set_state(s, ST_HANDSHAKE, 0);
}

/* Injection check: whatever arrives now, unasked, answers the NOOP sent with STARTTLS. */
static void inject_read(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	mxs_record_transcript(&s->rec, 'S', true, mxs_conv_since_attempt(&s->conv),
			      evbuffer_pullup(in, (ev_ssize_t)(n < 256 ? n : 256)), n < 256 ? n : 256);
	s->inject_verdict = 1;
	mxs_conv_outcome(&s->conv, MXS_OUT_SUCCESS, "a reply arrived inside TLS unasked");
	close_now(s);
}

static void tls_established(struct session *s)
{
	if (s->tgt.legacy > 0) {
		/* the injection check: say nothing, listen */
		set_state(s, ST_INJECT_WAIT, 0);
		inject_read(s);
		return;
	}
	s->rec.timing[MXS_T_HANDSHAKE] = mxs_mono_ms() - s->t_phase;
	s->rec.tls = tls_client_describe(&s->sc->tls, s->ssl, s->tgt.mx, &s->tgt.mx_names,
					 s->tgt.ntlsa, s->tgt.tlsa_dnssec);
	/* Kept for the plan: every MX name of the address is judged on this chain. */
	s->chain = tls_client_chain_der(&s->sc->tls, s->ssl, &s->chain_len);
	if (s->rec.tls == NULL) {
		conclude(s, MXS_OUT_LOCAL_ERROR, "out of memory describing the handshake");
		return;
	}
	follow(s, s->proto->on_tls(&s->conv));
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
	conclude(s, MXS_OUT_HANDSHAKE_ERROR, "%s", detail);
}

/* ---- reading lines ---- */

static void read_lines(struct session *s)
{
	struct evbuffer *in;

	while (!s->release && s->bev != NULL && (in = bufferevent_get_input(s->bev)) != NULL) {
		size_t len;
		char *line;
		int next;

		if (s->state != ST_PROTO)
			return;
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			size_t pending = evbuffer_get_length(in);
			if (pending > s->proto->line_max) {
				mxs_record_transcript(&s->rec, 'S', s->ssl != NULL, mxs_conv_since_attempt(&s->conv),
						      evbuffer_pullup(in, MXS_TRANSCRIPT_DATA_MAX + 1),
						      MXS_TRANSCRIPT_DATA_MAX + 1);
				follow(s, s->proto->on_line(&s->conv, s->conv_state, NULL, pending, 0));
			}
			return;
		}
		mxs_record_transcript(&s->rec, 'S', s->ssl != NULL, mxs_conv_since_attempt(&s->conv), line, len);
		next = s->proto->on_line(&s->conv, s->conv_state, line, len, evbuffer_get_length(in));
		free(line);
		follow(s, next);
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
	s->rec.timing[MXS_T_CONNECT] = mxs_mono_ms() - s->t_phase;
	bufferevent_enable(s->bev, EV_READ);
	if (s->proto->tls_mode == MXS_TLS_IMPLICIT)
		start_tls(s);
	else
		enter_proto(s, s->proto->first_state);
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
		conclude(s, connect_error_outcome(err), "%s", strerror(err ? err : ECONNREFUSED));
		break;
	case ST_HANDSHAKE:
		handshake_failed(s, what, err);
		break;
	case ST_HELLO:
		hello_read(s, true);
		break;
	case ST_INJECT_WAIT:
		/* closed without answering: no sign either way */
		conclude(s, MXS_OUT_PEER_CLOSED, "closed after the handshake");
		break;
	case ST_PROTO:
		if (s->conv_state == s->proto->quit_state)
			close_now(s);
		else if (what & BEV_EVENT_EOF)
			conclude(s, MXS_OUT_PEER_CLOSED, "server closed the connection in phase %s", where(s));
		else
			conclude(s, MXS_OUT_PEER_CLOSED, "connection error in phase %s: %s", where(s),
				 strerror(err ? err : EIO));
		break;
	case ST_RETRY_WAIT: case ST_DONE: case ST_LAST:
		mxs_err("scan", "%llu io event 0x%x in state %s", (unsigned long long)s->id, what, where(s));
		break;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
	s->depth++;
	/*
	 * Bytes arrived: the phase clock measures silence, so it starts again. A server
	 * that trickles bytes forever is stopped by the attempt's hard deadline instead.
	 */
	if (s->state != ST_DONE && s->state != ST_RETRY_WAIT)
		arm_phase_clock(s);
	if (s->state == ST_HELLO)
		hello_read(s, false);
	else if (s->state == ST_INJECT_WAIT)
		inject_read(s);
	else
		read_lines(s);
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
	if ((what & BEV_EVENT_EOF) && s->bev != NULL && s->state == ST_INJECT_WAIT)
		inject_read(s);
	else if ((what & BEV_EVENT_EOF) && s->bev != NULL && s->state != ST_HANDSHAKE &&
		 s->state != ST_HELLO)
		read_lines(s);
	/* The reply may have ended the connection (a 421 sends the session to retry). */
	if (!s->release && s->bev != NULL)
		session_event(s, what, err);
	s->depth--;
	session_maybe_release(s);
}

static void timed_out(struct session *s)
{
	int phase_ms = phase_timeout_ms(s);
	bool quitting = s->state == ST_PROTO && s->conv_state == s->proto->quit_state;

	/*
	 * Which clock ran out is the one the timer was armed for, the earlier deadline, not
	 * a comparison with "now": libevent may fire a timer a millisecond early.
	 */
	if (s->attempt_deadline <= s->phase_deadline && !quitting) {
		conclude(s, MXS_OUT_DEADLINE, "hard deadline of %d ms expired in phase %s",
			 s->sc->o.deadline_ms, where(s));
		return;
	}
	switch (s->state) {
	case ST_CONNECT:
		conclude(s, MXS_OUT_CONNECTION_TIMEOUT, "no connection within %d ms", phase_ms);
		break;
	case ST_HANDSHAKE:
		conclude(s, MXS_OUT_HANDSHAKE_TIMEOUT, "no handshake within %d ms", phase_ms);
		break;
	case ST_HELLO:
		/* no answer to our hello: the reader's answer stays none (unclear) */
		conclude(s, MXS_OUT_HANDSHAKE_TIMEOUT, "no answer to the ClientHello within %d ms", phase_ms);
		break;
	case ST_INJECT_WAIT:
		s->inject_verdict = 0;
		mxs_conv_outcome(&s->conv, MXS_OUT_SUCCESS, "nothing arrived inside TLS in %d ms", phase_ms);
		close_now(s);
		break;
	case ST_PROTO:
		follow(s, s->proto->on_timeout(&s->conv, s->conv_state, phase_ms));
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

/* ---- the conversation's I/O ---- */

static void conv_write(void *io, const void *data, size_t len)
{
	struct session *s = io;

	if (s->bev != NULL)
		bufferevent_write(s->bev, data, len);
}

static int conv_local_addr(void *io, char *buf, size_t len)
{
	struct session *s = io;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (s->bev == NULL ||
	    getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
		return -1;
	return 0;
}

/* ---- life cycle ---- */

struct session *session_new(struct mxs_scanner *sc, struct mxs_target *t)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->sc = sc;
	s->id = ++sc->next_id;
	/* A target may name its own protocol (docs/targets.md); else the scan's. */
	s->proto = t->proto != NULL ? t->proto : sc->proto;
	s->tgt = *t;
	memset(t, 0, sizeof(*t));
	s->timer = evtimer_new(sc->base, on_timer, s);
	s->conv.mod = calloc(1, s->proto->state_size ? s->proto->state_size : 1);
	if (s->timer == NULL || s->conv.mod == NULL) {
		if (s->timer)
			event_free(s->timer);
		free(s->conv.mod);
		target_free(&s->tgt);
		free(s);
		return NULL;
	}
	mxs_record_init(&s->rec);
	s->conv.proto = s->proto;
	s->conv.rec = &s->rec;
	s->conv.io = s;
	s->conv.write = conv_write;
	s->conv.local_addr = conv_local_addr;
	s->conv.ehlo_name = sc->ehlo_name;
	s->conv.ehlo_is_fqdn = sc->ehlo_is_fqdn;
	s->conv.retries = sc->o.retries;
	s->conv.stopping = &sc->stopping;
	s->inject_verdict = -1;
	s->conv.inject = legacy_probe_injects(s);
	s->proto->init(&s->conv);
	if (mxs_record_set_target(&s->rec, &s->tgt) < 0) {
		session_free(s);
		return NULL;
	}
	s->rec.keep_transcript = sc->o.transcript;
	s->rec.profile = sc->tls.profile;
	s->rec.ehlo_name = sc->ehlo_name;
	s->rec.start_ms = mxs_wall_ms();
	s->state = ST_CONNECT;
	return s;
}

/*
 * Forget what an earlier attempt left in the record; keep its transcript. An attempt may
 * have reached TLS before its retry (implicit TLS: a 421 greeting inside TLS): its
 * handshake's description and chain go, the next attempt's replace them.
 */
static void reset_attempt(struct session *s)
{
	struct mxs_record *r = &s->rec;

	s->proto->reset(&s->conv);
	free(r->detail);
	r->detail = NULL;
	mxs_tls_rec_free(r->tls);
	r->tls = NULL;
	r->plaintext_after_starttls = 0;
	free(s->chain);
	s->chain = NULL;
	s->chain_len = 0;
	for (int i = 0; i < MXS_T_LAST; i++)
		r->timing[i] = -1;
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
	s->conv.t_attempt = s->t_attempt;
	s->attempt_deadline = s->t_attempt + sc->o.deadline_ms;
	set_state(s, ST_CONNECT, 0);
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
		conclude(s, MXS_OUT_LOCAL_ERROR, "socket: %s", strerror(err));
		return;
	}
	r = connect(fd, sa, s->tgt.salen);
	if (r < 0 && errno != EINPROGRESS) {
		int err = errno;
		close(fd);
		conclude(s, connect_error_outcome(err), "%s", strerror(err));
		return;
	}
	/*
	 * Deferred callbacks: draining the input can make the TLS filter read, and report
	 * EOF, synchronously; deferred, no callback ever runs inside another.
	 */
	s->bev = bufferevent_socket_new(sc->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		close(fd);
		conclude(s, MXS_OUT_LOCAL_ERROR, "cannot create a bufferevent");
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	/* Bytes buffered from one peer before reading pauses: a few maximal lines. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 4 * s->proto->line_max);
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
		conclude(s, MXS_OUT_LOCAL_ERROR, "bufferevent_socket_connect failed");
		return;
	}
	bufferevent_enable(s->bev, EV_WRITE);
}

void session_interrupt(struct session *s)
{
	if (s->state == ST_DONE)
		return;
	if (s->state == ST_RETRY_WAIT) {
		/* The retry never came: the module said what its last answer means. */
		engine_session_waiting(s->sc, s, false);
		conclude(s, s->conv.retry_outcome, "%s (retry cancelled: the scan stopped)",
			 s->conv.retry_detail ? s->conv.retry_detail : "");
		return;
	}
	conclude(s, MXS_OUT_INTERRUPTED, "the scan stopped in phase %s", where(s));
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
	s->proto->release(&s->conv);
	free(s->conv.mod);
	free(s->chain);
	free(s->reader);
	mxs_record_free(&s->rec);
	target_free(&s->tgt);
	free(s);
}
