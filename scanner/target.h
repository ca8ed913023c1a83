/*
 * A scan target and the parsing of input lines into targets. Accepted lines: a bare
 * IPv4/IPv6 address (zmap output), "ip,mx[,domain...]", or a JSON object of type
 * "target" (docs/targets.md). JSON lines of type "domain" are passed through to the
 * output unchanged; '#' comments and blank lines are skipped.
 */
#ifndef MXS_TARGET_H
#define MXS_TARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "strv.h"
#include "tls_client.h"

struct mxs_proto;

struct mxs_target {
	struct sockaddr_storage sa;
	socklen_t salen;
	char ip[64];
	int port;
	char *mx;
	struct strv mx_names, domains;
	struct mxs_tlsa *tlsa;
	size_t ntlsa;
	bool tlsa_dnssec;
	char *blocked;  /* the blocklist rule, when the resolver already blocked it */
	char *error;    /* parse error of a bad line */
	char *input;    /* the bad line, escape form */
	/* Set by the engine: the address's probe plan (index + 1, 0: none), and for a
	 * follow-up probe the plan's name it sends in SNI (index + 1, 0: the first probe). */
	int plan;
	int sni_name;
	const struct mxs_proto *proto; /* the target's own protocol; NULL: the scan's */
	bool guessed;   /* resolve --guess-hosts: a guessed host name, no SRV record behind it */
	/* A legacy probe of the plan (scanner/legacy.c): its question (1 + enum legacy_q), 0: none. */
	int legacy;
	bool refetch;   /* a follow-up probe of a resumed address for its certificate (plan.c) */
};

enum target_parse {
	TARGET_OK,          /* *t is a target */
	TARGET_SKIP,        /* comment or blank line */
	TARGET_PASSTHROUGH, /* a "domain" line: copy it to the output */
	TARGET_BAD,         /* t->error and t->input are set */
};

/* Parse one line (no line ending). default_port applies when the line names none. */
enum target_parse target_parse_line(const char *line, size_t len, int default_port,
				    struct mxs_target *t);

/*
 * Fill t from a JSON object of type "target"; returns TARGET_OK or TARGET_BAD. A "proto"
 * key names the target's protocol module; its default port applies when "port" is absent.
 */
enum target_parse target_from_json(const json_t *o, int default_port, struct mxs_target *t);

void target_free(struct mxs_target *t);

#endif
