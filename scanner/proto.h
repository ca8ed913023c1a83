/*
 * Protocol modules: the dialogue of one protocol (SMTP today) as a const struct the
 * protocol-free runner (runner.c) drives. The runner connects, runs the two clocks
 * (silence and hard deadline), reads CRLF lines, runs the TLS stage and retries; the
 * module says what each state sends and what each reply means. A module never touches a
 * socket: it writes through the conversation's write function, so a test can drive it
 * from scripted server bytes (tests/unit/test_proto_smtp.c).
 *
 * Adding a protocol: one proto_*.c file with its const struct, one line in mxs_protos[]
 * (proto.c), its record fields in common/record_fields.h.
 */
#ifndef MXS_PROTO_H
#define MXS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome.h"
#include "record.h"

/* How TLS starts: after the module's STARTTLS-like command, or at once after connect. */
enum mxs_tls_mode { MXS_TLS_STARTTLS, MXS_TLS_IMPLICIT };

/* Which silence clock a state runs (struct mxs_scan_opts holds the durations). */
enum mxs_clock {
	MXS_CLOCK_GREETING,   /* greeting_timeout_ms: tolerate slow greeters */
	MXS_CLOCK_COMMAND,    /* command_timeout_ms */
	MXS_CLOCK_QUIT,       /* the shorter of command_timeout_ms and 5 s */
};

/*
 * What a handler returns: a state of the module (>= 0: the runner enters it, arms its
 * clock and calls enter(), which sends the state's command), or one of these.
 */
enum {
	MXS_NEXT_MORE = -1,   /* the reply is not complete: read the next line */
	MXS_NEXT_TLS = -2,    /* start the TLS stage now; on_tls() follows the handshake */
	MXS_NEXT_RETRY = -3,  /* come back later (421): retry_outcome/retry_detail are set */
	MXS_NEXT_CLOSE = -4,  /* close the connection now; the probe is over */
};

/* One probe's conversation: what a module sees and may use. The runner (or a test) fills it. */
struct mxs_conv {
	const struct mxs_proto *proto;
	struct mxs_record *rec;   /* the module fills its fields and the outcome */
	void *mod;                /* the module's own state, proto->state_size bytes */
	/* I/O: write bytes to the server; the numeric local address for address literals. */
	void *io;
	void (*write)(void *io, const void *data, size_t len);
	int (*local_addr)(void *io, char *buf, size_t len);
	const char *ehlo_name;    /* the name to introduce ourselves with */
	bool ehlo_is_fqdn;        /* false: use the local address literal instead */
	bool tls;                 /* lines now travel inside TLS (for the transcript) */
	int64_t t_attempt;        /* monotonic ms: start of this attempt */
	int64_t t_phase;          /* monotonic ms: start of this state */
	int retries;              /* attempts allowed after the first */
	const bool *stopping;     /* the scan is stopping: no retry */
	/*
	 * The STARTTLS injection check (legacy probes): the module sends its STARTTLS
	 * command and a harmless one (SMTP: NOOP) in one write; whether the second is
	 * answered inside TLS is the runner's to see.
	 */
	bool inject;
	/* Set by a handler returning MXS_NEXT_RETRY: the outcome if the retry never comes. */
	enum mxs_outcome retry_outcome;
	const char *retry_detail; /* borrowed from the record */
};

struct mxs_proto {
	const char *name;
	int default_port;
	enum mxs_tls_mode tls_mode;
	int nstates;
	const char *const *state_names;   /* [nstates], for logs and details */
	const enum mxs_phase *phases;     /* [nstates]: the record's phase in each state */
	const enum mxs_clock *clocks;     /* [nstates] */
	int first_state;                  /* after connect (implicit TLS: after the handshake) */
	int quit_state;                   /* says goodbye: a line or a close in it ends the probe */
	size_t line_max;                  /* bytes without a line ending that end the probe */
	size_t state_size;
	/* enter() honours conv->inject: STARTTLS and a harmless command in one write */
	bool can_inject;
	/* A new conversation (mod is zeroed), and its end. */
	void (*init)(struct mxs_conv *c);
	void (*release)(struct mxs_conv *c);
	/* A new attempt after a retry: forget what the earlier one put into the record. */
	void (*reset)(struct mxs_conv *c);
	/* Enter state st: send its command, if it has one. */
	void (*enter)(struct mxs_conv *c, int st);
	/*
	 * One line (without CRLF) arrived in state st; pending: bytes still buffered after
	 * it. line NULL: more than line_max bytes came without a line ending. Returns the
	 * next state or MXS_NEXT_*.
	 */
	int (*on_line)(struct mxs_conv *c, int st, const char *line, size_t len, size_t pending);
	/* The TLS handshake completed (the record's tls is set). Returns the next state. */
	int (*on_tls)(struct mxs_conv *c);
	/* State st was silent for ms milliseconds: set the outcome, return the next state. */
	int (*on_timeout)(struct mxs_conv *c, int st, int ms);
};

/* The modules, NULL-terminated, and one by name (NULL when unknown). */
extern const struct mxs_proto *const mxs_protos[];
const struct mxs_proto *mxs_proto_find(const char *name);
/* The module whose default port is port (smtp for 25, imaps for 993 ...), or NULL. */
const struct mxs_proto *mxs_proto_for_port(int port);
extern const struct mxs_proto mxs_proto_smtp, mxs_proto_submission, mxs_proto_submissions;
extern const struct mxs_proto mxs_proto_imap, mxs_proto_imaps, mxs_proto_pop3, mxs_proto_pop3s;

/* Helpers for modules (proto.c). */
/* Send one line, CRLF appended, noted in the transcript. */
void mxs_conv_send_line(struct mxs_conv *c, const char *line);
/* The outcome; the first wins. After the handshake a failure becomes "success", noted. */
void mxs_conv_outcome(struct mxs_conv *c, enum mxs_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Milliseconds since the state began, stored as timing `which`. */
void mxs_conv_took(struct mxs_conv *c, enum mxs_timing which);
/* Milliseconds since the attempt began (transcript times). */
int64_t mxs_conv_since_attempt(const struct mxs_conv *c);

#endif
