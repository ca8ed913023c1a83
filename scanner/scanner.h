/*
 * mxsurvey's probe engine: dials targets on a caller's libevent loop, runs the SMTP
 * STARTTLS dialogue and hands back exactly one JSON result line per accepted input line
 * (docs/record.md). The caller feeds input lines as the scanner asks for them, so
 * memory stays bounded whatever the length of the input.
 */
#ifndef MXS_SCANNER_H
#define MXS_SCANNER_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome.h"

#define MXS_PORTS_MAX 16

struct strv;

struct mxs_scan_opts {
	int port;                 /* default port (25, or the protocol's) */
	const char *proto;        /* protocol module of every probe (proto.h); NULL: smtp */
	/*
	 * Address lines (not JSON targets) are probed on each of these ports, each with the
	 * module whose default port it is (smtp when none), unless proto names one.
	 */
	int ports[MXS_PORTS_MAX];
	int nports;
	bool port_given;          /* the CLI was given --port: --proto keeps it */
	int concurrency;          /* connections in flight at most */
	double rate;              /* new connections per second, 0 = unlimited */
	int per_ip;               /* connections at once per address */
	int per_net;              /* connections at once per IPv4 /24 or IPv6 /64 */
	int retries;              /* extra attempts after a 421 reply */
	int retry_delay_ms;       /* first back-off; doubles with each attempt */
	/*
	 * Phase timeouts are inactivity timeouts: they start again whenever bytes arrive.
	 * deadline_ms is the hard limit of one attempt, whatever is trickling in.
	 */
	int connect_timeout_ms;
	int greeting_timeout_ms;  /* silence before or within the greeting: tolerate slow greeters */
	int command_timeout_ms;   /* silence after a command (EHLO, HELO, STARTTLS, QUIT) */
	int handshake_timeout_ms; /* silence during the TLS handshake */
	int deadline_ms;
	int drain_timeout_ms;     /* after stop: time in-flight probes get to finish */
	const char *ehlo_name;    /* NULL: this host's FQDN, or an address literal */
	const char *ca_file;      /* NULL: system trust store */
	const char *profile;      /* client-hello profile, "default-v1" */
	const char *blocklist, *allowlist;
	bool default_blocklist;   /* apply the RFC 6890 reserved ranges */
	bool transcript;
	bool status;              /* once-a-second status line on stderr */
	uint64_t seed;            /* scan-order shuffle; 0 = from the clock */
	size_t window;            /* targets held for shuffling */
	/*
	 * Sharding: scan only addresses whose hash falls in shard shard_index of
	 * shard_count (0 of 1 = everything); others are skipped without a record.
	 */
	unsigned shard_index, shard_count;
	/*
	 * Further MX names of an address are judged on the certificate of its first probe;
	 * a follow-up probe sending the name in SNI is made for every such name (ALL), for
	 * names with TLSA records (NEEDED, the default), or never (NONE).
	 */
	enum mxs_sni_mode { MXS_SNI_NEEDED, MXS_SNI_ALL, MXS_SNI_NONE } sni;
	/*
	 * The legacy probes (scanner/legacy.c): after an address's first probe reached the
	 * TLS stage, up to legacy_budget further connections, one at a time, ask with
	 * crafted ClientHellos what it still accepts; its record waits for them and carries
	 * the answers as its support object.
	 */
	bool legacy;
	int legacy_budget;
};

/* Defaults for every option (polite: one connection per address). */
void mxs_scan_opts_defaults(struct mxs_scan_opts *o);

/*
 * Called with every output line (JSON, no newline): a result record with its outcome, or
 * a passed-through domain line with outcome MXS_OUT_NONE. Returns 0, or -1 on failure.
 */
typedef int (*mxs_emit_fn)(void *arg, const char *line, size_t len, enum mxs_outcome outcome);
/* Called when the scanner has room for more input (feed with mxs_scanner_add_line). */
typedef void (*mxs_want_fn)(void *arg);
/* Called once when every target has its record (or the stop drained). */
typedef void (*mxs_done_fn)(void *arg);
/* Fraction of the input consumed so far (0..1), or a negative value when unknown. */
typedef double (*mxs_progress_fn)(void *arg);

struct mxs_scan_stats {
	uint64_t lines;         /* input lines given */
	uint64_t targets;       /* lines that were targets (bad ones included) */
	uint64_t records;       /* result records emitted */
	uint64_t passthrough;   /* domain lines passed through */
	uint64_t skipped_shard; /* targets of other shards */
	uint64_t unscanned;     /* targets left unscanned by a stop */
	uint64_t emit_errors;
	uint64_t names;         /* name lines emitted: verdicts of (MX name, address) pairs */
	uint64_t sni_probes;    /* follow-up probes that sent a further name in SNI */
	uint64_t legacy_probes; /* connections of the legacy probes */
	uint64_t cert_probes;   /* resumed addresses probed again for their certificate */
	uint64_t by_outcome[MXS_OUT_LAST];
};

struct mxs_scanner;

struct mxs_scanner *mxs_scanner_new(struct event_base *base, const struct mxs_scan_opts *opts,
				    mxs_emit_fn emit, void *arg, char *err, size_t errlen);
void mxs_scanner_set_callbacks(struct mxs_scanner *sc, mxs_want_fn want, mxs_done_fn done,
			       mxs_progress_fn progress, void *arg);
/*
 * The options in force: the given ones as the scanner adjusted them (concurrency lowered
 * to what the open-file limit allows, caps raised to their minimum).
 */
const struct mxs_scan_opts *mxs_scanner_opts(const struct mxs_scanner *sc);
/* The EHLO name actually used (resolved default), for the scan's metadata. */
const char *mxs_scanner_ehlo_name(const struct mxs_scanner *sc);
const char *mxs_scanner_profile(const struct mxs_scanner *sc);

/*
 * The output cannot take more records for now (stalled true) or can again (false).
 * While stalled no new target starts and no input is taken (room is 0); probes in
 * flight go on and their records are still emitted. The status line says so.
 */
void mxs_scanner_output_stalled(struct mxs_scanner *sc, bool stalled);
/* Input lines the scanner can take now without growing past its window. */
size_t mxs_scanner_room(const struct mxs_scanner *sc);
/* Give one input line (no line ending). Never fails: bad lines become records. */
void mxs_scanner_add_line(struct mxs_scanner *sc, const char *line, size_t len);
/* Give one target object (type "target", docs/targets.md); the caller keeps o. */
void mxs_scanner_add_json(struct mxs_scanner *sc, const json_t *o);
/*
 * Mark (ip, port) as already done: a later target for it is skipped without a record
 * (used by --resume).
 */
void mxs_scanner_mark_done(struct mxs_scanner *sc, const char *ip, int port);
/*
 * --resume: (ip, port) has its finished record from an earlier run and is not probed
 * again. mx: the name its probe sent in SNI (NULL: none); outcome and tls (a certificate
 * was received) as that record says; names: the further MX names already judged (their
 * name lines exist). A later target adding no new name is skipped without a record; a
 * new name gets its verdict (docs/record.md, "Name lines"): without TLS at once, else on
 * a follow-up probe (--sni: sending the name; otherwise sending mx, to fetch the address's
 * certificate again, which the record does not keep). 0, or -1 when out of memory.
 */
int mxs_scanner_mark_resumed(struct mxs_scanner *sc, const char *ip, int port, const char *mx,
			     enum mxs_outcome outcome, bool tls, const struct strv *names);
/* No more input will come. */
void mxs_scanner_input_done(struct mxs_scanner *sc);
/*
 * Stop: no new connections; in-flight probes get drain_timeout_ms, then end as
 * "interrupted". A second call interrupts them at once.
 */
void mxs_scanner_stop(struct mxs_scanner *sc);
/* 1 once every accepted target has a record. */
int mxs_scanner_finished(const struct mxs_scanner *sc);
const struct mxs_scan_stats *mxs_scanner_stats(const struct mxs_scanner *sc);
/* Print the one-line status (what the once-a-second timer prints) to stderr. */
void mxs_scanner_print_status(struct mxs_scanner *sc, bool final);
void mxs_scanner_free(struct mxs_scanner *sc);

#endif
