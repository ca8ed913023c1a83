/*
 * Internals shared by the engine (engine.c: queue, limits, rate, status, stop) and
 * the protocol-free probe runner (runner.c), which drives a protocol module (proto.h).
 */
#ifndef MXS_ENGINE_H
#define MXS_ENGINE_H

#include <sys/queue.h>

#include "addrmap.h"
#include "plan.h"
#include "record.h"
#include "scanner.h"
#include "proto.h"
#include "target.h"
#include "tls_answer.h"
#include "tls_client.h"

struct mxs_blocklist;

/*
 * The runner's states (runner.c). While the protocol module speaks, the runner is in
 * ST_PROTO and the module's own state is conv_state.
 */
enum session_state {
	ST_CONNECT,      /* TCP connect in progress */
	ST_PROTO,        /* the protocol module's dialogue (conv_state) */
	ST_HANDSHAKE,    /* TLS handshake in progress */
	ST_RETRY_WAIT,   /* no connection; waiting to retry (after a 421) */
	ST_HELLO,        /* legacy probe: our ClientHello sent, reading the server's answer */
	ST_INJECT_WAIT,  /* injection check: handshake done, listening for the NOOP's answer */
	ST_DONE,         /* record complete; release pending */
	ST_LAST
};

extern const char *const session_state_names[ST_LAST];

struct session {
	struct mxs_scanner *sc;
	LIST_ENTRY(session) link;
	uint64_t id;
	struct mxs_target tgt;
	struct mxs_record rec;
	enum session_state state;
	const struct mxs_proto *proto;
	struct mxs_conv conv;         /* the module's view of this probe */
	int conv_state;               /* the module's state while in ST_PROTO */
	struct bufferevent *bev;      /* the socket, or the TLS filter on top of it */
	SSL *ssl;                     /* owned by the TLS filter once it exists */
	struct event *timer;          /* phase timeout, session deadline, retry wait */
	int64_t t_attempt;            /* monotonic ms: start of this attempt */
	int64_t t_phase;              /* monotonic ms: start of this phase */
	int64_t phase_deadline, attempt_deadline;
	bool holds_slots;             /* counted in the per-address and per-net maps */
	int depth;                    /* libevent callbacks of this session on the stack */
	bool release;                 /* free at the end of the outermost callback */
	bool requeue;                 /* on release: back into the window, no record */
	unsigned char *chain;         /* the peer's chain as sent (DER), once TLS is up */
	size_t chain_len;
	bool reached_tls;             /* the TLS stage began (after 220 to STARTTLS) */
	struct tls_reader *reader;    /* legacy probe: the answer to our ClientHello */
	int inject_verdict;           /* injection check: 1 answered inside TLS, 0 not, -1 unknown */
};

struct mxs_scanner {
	struct event_base *base;
	struct mxs_scan_opts o;
	struct tls_client tls;
	const struct mxs_proto *proto;  /* the protocol module every probe runs */
	struct mxs_blocklist *bl;
	char ehlo_name[256];
	bool ehlo_is_fqdn;
	mxs_emit_fn emit;
	void *emit_arg;
	mxs_want_fn want;
	mxs_done_fn done;
	mxs_progress_fn progress;
	void *cb_arg;

	struct mxs_target **win;      /* targets waiting to start, picked at random */
	size_t nwin, capwin;
	struct addrmap per_ip, per_net, seen;  /* seen: address -> plan index + 1, -1 resumed */
	struct addr_plan **plans;     /* one per address admitted */
	size_t nplans, capplans;
	struct chainstore *chains;    /* the plans' chains, one copy per distinct chain */
	LIST_HEAD(, session) active;  /* sessions with or waiting for a connection */
	size_t inflight, waiting;
	uint64_t next_id;
	uint64_t rng;

	double tokens;
	int64_t t_tokens;
	struct event *pump_ev, *rate_ev, *status_ev, *drain_ev;
	bool input_done, stopping, interrupting, finished, done_called, fd_warned;
	bool out_stalled;             /* the output is full: start nothing new */
	int64_t t_out_stall;          /* monotonic ms: when it filled */

	int64_t t_start;
	uint64_t started, started_last, records_last, tls_ok;
	struct mxs_scan_stats st;
};

/* runner.c */
struct session *session_new(struct mxs_scanner *sc, struct mxs_target *t);
/* Begin (or retry) the connection; the session must hold its slots. */
void session_connect(struct session *s);
/* End a session now with "interrupted" (the scan is stopping). */
void session_interrupt(struct session *s);
/* Free the session if it was marked for release; call at the end of every callback. */
void session_maybe_release(struct session *s);
/* Free everything the session owns (called by the engine after emitting its record). */
void session_free(struct session *s);

/* engine.c, called by sessions */
/* Try to take the per-address/per-net slots; 0 when taken, -1 when at a cap. */
int engine_acquire_slots(struct mxs_scanner *sc, struct session *s);
void engine_release_slots(struct mxs_scanner *sc, struct session *s);
/* A session enters or leaves the retry wait (counted apart from connections). */
void engine_session_waiting(struct mxs_scanner *sc, struct session *s, bool waiting);
/* The session's record is complete: emit it, count it, free the session. */
void engine_session_done(struct mxs_scanner *sc, struct session *s);
/*
 * The process ran out of file descriptors: lower the concurrency to what it holds.
 * Returns 0 when the target should be queued again, -1 when the scanner holds so few
 * connections that the shortage is not its own (then the target gets a local-error).
 */
int engine_fd_exhausted(struct mxs_scanner *sc);

/* engine.c, called by plans */
/* Emit a result record (the legacy probes held it until they were done). */
void engine_emit_record(struct mxs_scanner *sc, struct mxs_record *r);
/* Queue a target (taken over) in the window; -1 when out of memory (t is freed). */
int engine_enqueue(struct mxs_scanner *sc, struct mxs_target *t);
/* Emit one name line. */
void engine_emit_name(struct mxs_scanner *sc, const struct mxs_name_verdict *v);

/* legacy_plan.c: the legacy probes of a plan (legacy.h asks the questions) */
/*
 * The first probe of s's plan ended: when the legacy probes apply (--probes legacy, the
 * probe reached the TLS stage), take its record over, to be emitted when they are done,
 * and queue the first of them. Returns true when the record was taken.
 */
bool legacy_hold(struct mxs_scanner *sc, struct session *s);
/* A legacy probe ended: read its answer, queue the next or emit the record. */
void legacy_probe_done(struct mxs_scanner *sc, struct session *s);
/* The ClientHello of a legacy probe; *want_kx as tls_reader_init wants it. 0: none. */
size_t legacy_probe_hello(struct mxs_scanner *sc, struct session *s, uint8_t *out, size_t cap,
			  bool *want_kx);
/* Does this legacy probe do the STARTTLS injection check (not a crafted hello)? */
bool legacy_probe_injects(const struct session *s);
/* The scan stops: legacy probes waiting in the window will not run; emit their records. */
void legacy_stop(struct mxs_scanner *sc);
void legacy_free_all(struct mxs_scanner *sc);

#endif
