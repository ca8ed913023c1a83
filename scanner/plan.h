/*
 * Probe plans: what the scanner asks of one address (and port), in order. The first
 * probe sends the first MX name known for the address in SNI; every (MX name, address)
 * pair then gets its own verdict (a name line, docs/record.md): judged on the
 * certificate chain that probe received (the first target's own name is judged by its
 * result record, which carries name_match and dane for the name it sent), or, for a name that needs it (--sni), on the
 * chain of a follow-up probe that sends that name in SNI. Follow-up probes are targets
 * of the window like any other, so the per-address cap (one connection at a time by
 * default) makes them run one after another. Names that arrive after the first probe
 * finished are judged on its stored chain at once, or get their follow-up probe then.
 */
#ifndef MXS_PLAN_H
#define MXS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "outcome.h"
#include "strv.h"
#include "tls_client.h"

struct plan_name {
	char *name;
	struct mxs_tlsa *tlsa;
	size_t ntlsa;
	bool tlsa_dnssec;
	struct strv domains;
	bool guessed;             /* a guessed host name (resolve --guess-hosts) */
	bool judged;              /* its name line was emitted */
	bool sni_queued;          /* a follow-up probe sending it in SNI is queued or running */
};

enum plan_state { PLAN_QUEUED, PLAN_RUNNING, PLAN_DONE };

struct addr_plan {
	/*
	 * The target's socket address, salen bytes of it (IPv4 or IPv6: a sockaddr_in6 holds
	 * both; a plan lives for the whole run, one per address, so no sockaddr_storage).
	 */
	struct sockaddr_in6 sa;
	socklen_t salen;
	int port;
	const struct mxs_proto *proto; /* the first target's own protocol (NULL: the scan's) */
	enum plan_state state;
	struct plan_name *names;
	size_t nnames;
	/* The first probe, once done: its outcome, the name it sent in SNI, its chain. */
	enum mxs_outcome outcome;
	int sni;                  /* index in names, -1: no name was sent */
	bool first_named;         /* names[0] came with the first target: the result record judges it */
	/* DER, leaf first, held in sc->chains (one copy per distinct chain); NULL: no TLS */
	const unsigned char *chain;
	size_t chain_len;
	struct legacy_plan *legacy; /* the legacy probes, while they run (legacy_plan.c) */
	/*
	 * Done in an earlier run (--resume): its record exists and it is not probed again.
	 * resumed_tls: that probe had TLS, but its chain is not kept; a name to be judged on
	 * it waits for a follow-up probe sending names[sni] (refetching) for the chain.
	 */
	bool resumed, resumed_tls, refetching;
};

struct mxs_proto;
struct mxs_scanner;
struct mxs_target;
struct session;

/* The plan's address as text (the target's ip: inet_ntop of the address), in buf. */
const char *plan_ip(const struct addr_plan *p, char *buf, size_t len);
/* A new plan for t's address (t's name, if any, is its first name); its index or -1. */
int plan_new(struct mxs_scanner *sc, const struct mxs_target *t);
/*
 * t names an address that has a plan: add t's name. Returns 0 when the name was new
 * (its verdict follows), 1 when t adds nothing (no name, or a name already known: the
 * caller records a duplicate), -1 when out of memory.
 */
int plan_add_name(struct mxs_scanner *sc, int plan, const struct mxs_target *t);
/*
 * A plan for an address done in an earlier run (t's name, if any, is the one its probe
 * sent in SNI; names were judged then). Its index, or -1 when out of memory.
 */
int plan_resumed(struct mxs_scanner *sc, const struct mxs_target *t, enum mxs_outcome o, bool tls,
		 const struct strv *names);
/* The address was never dialled (blocked): every name's verdict says so. */
void plan_undialled(struct mxs_scanner *sc, int plan, enum mxs_outcome o);
/* A probe of the plan ended (its record, for a first probe, was emitted). */
void plan_probe_done(struct mxs_scanner *sc, struct session *s);
void plan_free_all(struct mxs_scanner *sc);
/*
 * A further probe of the plan's address (the same socket address, port and protocol; the
 * plan set), sending name in SNI as its MX name (NULL: no name). NULL when out of memory.
 */
struct mxs_target *plan_target(struct mxs_scanner *sc, int plan, const char *name);

#endif
