/*
 * mxsurvey headers [--trusted-by NAME] [--format text|json] [--scan [-- SURVEY_OPTIONS]]
 * [FILE|MAILDIR...]: the hops of each message's Received: fields and the TLS evidence of
 * each (targets/received.h), for one message, an mbox or a Maildir; for several messages a
 * summary per sending domain of whether the hop that brought the message in used TLS, and
 * with --scan a survey of those domains' MX hosts through the survey command.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "esc.h"
#include "exitcode.h"
#include "log.h"
#include "received.h"

#define MAX_TRUSTED 32

enum trust {
	TRUST_UNCHECKED,  /* no --trusted-by given */
	TRUST_TRUSTED,    /* added by one of the user's own servers */
	TRUST_CLAIM,      /* added upstream: the sender's word */
	TRUST_LAST
};

static const char *const trust_names[TRUST_LAST] = {
	[TRUST_UNCHECKED] = "unchecked",
	[TRUST_TRUSTED] = "trusted",
	[TRUST_CLAIM] = "claim",
};

struct domain_sum {
	char *domain;
	unsigned long messages, tls[MXS_RCVD_TLS_LAST];
};

struct headers {
	const char *trusted[MAX_TRUSTED];
	int ntrusted;
	bool json;
	unsigned long messages, hops;
	struct domain_sum *doms;
	size_t ndoms, capdoms;
};

/* One message being read: its hops and the fields the summary needs. */
struct message {
	struct mxs_rcvd_hop *hops;
	size_t nhops, cap;
	char from_domain[256];
	char return_domain[256];
	char *subject;
	bool oom;
};

static int on_field(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct message *m = arg;

	if (nlen == 8 && strncasecmp(name, "Received", 8) == 0) {
		if (m->nhops == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 8;
			struct mxs_rcvd_hop *h = realloc(m->hops, cap * sizeof(*h));
			if (h == NULL) {
				m->oom = true;
				return 1;
			}
			m->hops = h;
			m->cap = cap;
		}
		mxs_received_parse(value, vlen, &m->hops[m->nhops++]);
	} else if (nlen == 4 && strncasecmp(name, "From", 4) == 0 && m->from_domain[0] == '\0') {
		mxs_header_addr_domain(value, vlen, m->from_domain, sizeof(m->from_domain));
	} else if (nlen == 11 && strncasecmp(name, "Return-Path", 11) == 0 && m->return_domain[0] == '\0') {
		mxs_header_addr_domain(value, vlen, m->return_domain, sizeof(m->return_domain));
	} else if (nlen == 7 && strncasecmp(name, "Subject", 7) == 0 && m->subject == NULL) {
		m->subject = mxs_esc_encode(value, vlen, NULL);
	}
	return 0;
}

/* 1 if the host of a by clause ("mx.example.org (Postfix)") is name or under name. */
static bool by_matches(const char *by, const char *name)
{
	size_t hl = strcspn(by, " ("), nl = strlen(name);

	while (hl > 0 && by[hl - 1] == '.')
		hl--;
	if (hl == nl && strncasecmp(by, name, nl) == 0)
		return true;
	return hl > nl && by[hl - nl - 1] == '.' && strncasecmp(by + hl - nl, name, nl) == 0;
}

static bool smtp_family(const char *with)
{
	size_t n = strcspn(with, " ");
	const char *p = with;

	if (strncasecmp(with, "Microsoft SMTP", 14) == 0)
		return true;
	if (n >= 4 && strncasecmp(p, "UTF8", 4) == 0) {
		p += 4;
		n -= 4;
	}
	if (n >= 1 && (*p == 'e' || *p == 'E')) {
		p++;
		n--;
	}
	return n >= 4 && strncasecmp(p, "SMTP", 4) == 0;
}

/*
 * The host a trusted hop says it received from: the name in its first comment, which the
 * receiving server wrote from the connection ("relay.example.org [192.0.2.2]"), else the
 * name the client gave (HELO).
 */
static void from_host(const char *from, char *out, size_t cap)
{
	const char *p = strchr(from, '(');
	size_t n;

	p = p != NULL ? p + 1 : from;
	n = strcspn(p, " ()[]");
	if (n == 0) {
		p = from;
		n = strcspn(p, " (");
	}
	snprintf(out, cap, "%.*s", (int)n, p);
}

static bool is_trusted(const struct headers *H, const char *host)
{
	for (int k = 0; k < H->ntrusted; k++)
		if (by_matches(host, H->trusted[k]))
			return true;
	return false;
}

/*
 * Trust of each hop, top (newest) first: a hop is trusted when one of the user's servers
 * added it (its by names one) and every hop above is trusted and came from one of them
 * (so a hop below one from the outside is a claim, whatever it names). Returns the entry
 * hop: the lowest trusted hop (where the message came in from outside), or without
 * --trusted-by the topmost SMTP hop (delivery hops such as LMTP skipped); -1 without hops.
 */
static long classify(const struct headers *H, const struct message *m, enum trust *t)
{
	long entry = -1;
	bool run = true;

	for (size_t i = 0; i < m->nhops; i++) {
		char host[256];
		if (H->ntrusted == 0) {
			t[i] = TRUST_UNCHECKED;
			if (entry < 0 && smtp_family(m->hops[i].with))
				entry = (long)i;
			continue;
		}
		run = run && is_trusted(H, m->hops[i].by);
		t[i] = run ? TRUST_TRUSTED : TRUST_CLAIM;
		if (run) {
			entry = (long)i;
			from_host(m->hops[i].from, host, sizeof(host));
			run = is_trusted(H, host);
		}
	}
	if (entry < 0 && m->nhops > 0 && H->ntrusted == 0)
		entry = 0;
	return entry;
}

static int add_domain(struct headers *H, const char *domain, enum mxs_rcvd_tls tls)
{
	size_t i;

	for (i = 0; i < H->ndoms; i++)
		if (strcmp(H->doms[i].domain, domain) == 0)
			break;
	if (i == H->ndoms) {
		if (H->ndoms == H->capdoms) {
			size_t cap = H->capdoms ? H->capdoms * 2 : 16;
			struct domain_sum *d = realloc(H->doms, cap * sizeof(*d));
			if (d == NULL)
				return -1;
			H->doms = d;
			H->capdoms = cap;
		}
		memset(&H->doms[i], 0, sizeof(H->doms[i]));
		if ((H->doms[i].domain = strdup(domain)) == NULL)
			return -1;
		H->ndoms++;
	}
	H->doms[i].messages++;
	H->doms[i].tls[tls]++;
	return 0;
}

/* A string for output: escaped (valid UTF-8), "" kept as "". Owned by the caller. */
static char *out_str(const char *s)
{
	return mxs_esc_encode(s, strlen(s), NULL);
}

static void json_set_str(json_t *o, const char *key, const char *v)
{
	char *e;

	if (v == NULL || v[0] == '\0') {
		json_object_set_new(o, key, json_null());
		return;
	}
	e = out_str(v);
	json_object_set_new(o, key, e ? json_string(e) : json_null());
	free(e);
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s != NULL)
		puts(s);
	free(s);
	json_decref(o);
}

static void text_field(const char *label, const char *v)
{
	char *e;

	if (v[0] == '\0')
		return;
	e = out_str(v);
	printf("    %-5s %s\n", label, e ? e : "?");
	free(e);
}

static void report_hop(const struct headers *H, unsigned long msgno, const char *source,
                       size_t i, const struct mxs_rcvd_hop *h, enum trust t)
{
	if (H->json) {
		json_t *o = json_object(), *flags = json_array();
		json_object_set_new(o, "type", json_string("hop"));
		json_object_set_new(o, "message", json_integer((json_int_t)msgno));
		json_set_str(o, "source", source);
		json_object_set_new(o, "hop", json_integer((json_int_t)i + 1));
		json_object_set_new(o, "trust", json_string(trust_names[t]));
		json_set_str(o, "from", h->from);
		json_set_str(o, "by", h->by);
		json_set_str(o, "via", h->via);
		json_set_str(o, "with", h->with);
		json_set_str(o, "id", h->id);
		json_set_str(o, "for", h->rcpt);
		json_set_str(o, "date", h->date);
		json_object_set_new(o, "tls", json_string(mxs_rcvd_tls_name(h->tls)));
		json_set_str(o, "version", h->version);
		json_set_str(o, "cipher", h->cipher);
		json_object_set_new(o, "rule", json_string(mxs_rcvd_rule_name(h->rule)));
		for (unsigned b = 1; b < MXS_RCVD_FLAGS_LAST; b <<= 1)
			if (h->flags & b)
				json_array_append_new(flags, json_string(mxs_rcvd_flag_name(b)));
		json_object_set_new(o, "flags", flags);
		print_json(o);
		return;
	}
	printf("  hop %zu [%s]\n", i + 1, trust_names[t]);
	text_field("from", h->from);
	text_field("by", h->by);
	text_field("via", h->via);
	text_field("with", h->with);
	text_field("id", h->id);
	text_field("for", h->rcpt);
	text_field("date", h->date);
	printf("    tls   %s", mxs_rcvd_tls_name(h->tls));
	if (h->version[0] || h->cipher[0]) {
		char *v = out_str(h->version), *c = out_str(h->cipher);
		printf(" %s%s%s", v ? v : "", v && v[0] && c && c[0] ? " " : "", c ? c : "");
		free(v);
		free(c);
	}
	printf("  (rule: %s%s)", mxs_rcvd_rule_name(h->rule),
	       t == TRUST_CLAIM ? "; a claim, not added by your servers" : "");
	for (unsigned b = 1; b < MXS_RCVD_FLAGS_LAST; b <<= 1)
		if (h->flags & b)
			printf(" [%s]", mxs_rcvd_flag_name(b));
	putchar('\n');
}

/* One message: its hops, then what came in at the entry hop. */
static int do_message(struct headers *H, const char *msg, size_t len, const char *source)
{
	struct message m = { 0 };
	enum trust *t = NULL;
	long entry;
	const char *domain;
	int rc = 0;

	if (mxs_headers_each(msg, len, on_field, &m) == (size_t)-1 || m.oom ||
	    (m.nhops > 0 && (t = calloc(m.nhops, sizeof(*t))) == NULL)) {
		rc = -1;
		goto out;
	}
	H->messages++;
	H->hops += m.nhops;
	entry = classify(H, &m, t);
	domain = m.from_domain[0] ? m.from_domain : m.return_domain;
	if (!H->json) {
		char *src = out_str(source), *dom = out_str(domain);
		printf("message %lu (%s): sender domain %s%s%s%s\n", H->messages, src ? src : "?",
		       dom && dom[0] ? dom : "(none)", m.subject ? ", subject \"" : "",
		       m.subject ? m.subject : "", m.subject ? "\"" : "");
		free(src);
		free(dom);
		if (m.nhops == 0)
			printf("  no Received: fields\n");
	}
	for (size_t i = 0; i < m.nhops; i++)
		report_hop(H, H->messages, source, i, &m.hops[i], t[i]);
	enum mxs_rcvd_tls tls = entry >= 0 ? m.hops[entry].tls : MXS_RCVD_TLS_UNKNOWN;
	if (H->json) {
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("message"));
		json_object_set_new(o, "message", json_integer((json_int_t)H->messages));
		json_set_str(o, "source", source);
		json_set_str(o, "sender_domain", domain);
		json_object_set_new(o, "hops", json_integer((json_int_t)m.nhops));
		json_object_set_new(o, "entry_hop", entry >= 0 ? json_integer(entry + 1) : json_null());
		json_object_set_new(o, "entry_trust",
		                    json_string(entry >= 0 ? trust_names[t[entry]] : "unchecked"));
		json_object_set_new(o, "tls", json_string(mxs_rcvd_tls_name(tls)));
		print_json(o);
	} else if (entry >= 0) {
		printf("  came in at hop %ld: tls %s%s\n\n", entry + 1, mxs_rcvd_tls_name(tls),
		       t[entry] == TRUST_TRUSTED ? " (added by your server)"
		       : t[entry] == TRUST_CLAIM ? " (a claim: no hop was added by your servers)"
		       : " (unchecked: say --trusted-by YOUR_MX to know which hop to believe)");
	} else {
		putchar('\n');
	}
	if (domain[0] != '\0' && add_domain(H, domain, tls) < 0)
		rc = -1;
out:
	free(m.hops);
	free(m.subject);
	free(t);
	return rc;
}

/* An mbox: messages start at "From " lines at the start or after an empty line. */
static int do_mbox(struct headers *H, const char *buf, size_t len, const char *name)
{
	size_t pos = 0, k = 0;
	char src[4096];

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t start = nl ? (size_t)(nl - buf) + 1 : len, end = start;
		/* the next separator: "\n\nFrom " (or "\n\r\nFrom ") */
		while (end < len) {
			const char *f = memmem(buf + end, len - end, "\nFrom ", 6);
			if (f == NULL) {
				end = len;
				break;
			}
			size_t at = (size_t)(f - buf) + 1;
			if (at >= 2 && (buf[at - 2] == '\n' || (buf[at - 2] == '\r' && at >= 3 && buf[at - 3] == '\n'))) {
				end = at;
				break;
			}
			end = at;
		}
		snprintf(src, sizeof(src), "%s:%zu", name, ++k);
		if (do_message(H, buf + start, end - start, src) < 0)
			return -1;
		pos = end;
	}
	return 0;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	while (buf != NULL) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			char *b = realloc(buf, cap * 2);
			if (b == NULL) {
				free(buf);
				return NULL;
			}
			buf = b;
			cap *= 2;
		}
	}
	if (buf != NULL && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int do_file(struct headers *H, const char *path, bool maybe_mbox)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t len = 0;
	char *buf;
	int rc;

	if (f == NULL) {
		fprintf(stderr, "mxsurvey headers: %s: %s\n", path, strerror(errno));
		return -2;
	}
	buf = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (buf == NULL) {
		fprintf(stderr, "mxsurvey headers: %s: cannot read\n", path);
		return -2;
	}
	if (maybe_mbox && len >= 5 && memcmp(buf, "From ", 5) == 0)
		rc = do_mbox(H, buf, len, path);
	else
		rc = do_message(H, buf, len, path);
	free(buf);
	return rc;
}

/* A Maildir: every message in cur/ and new/, in name order. */
static int do_maildir(struct headers *H, const char *dir)
{
	static const char *const subs[] = { "cur", "new" };
	int found = 0;

	for (size_t s = 0; s < 2; s++) {
		char path[4096];
		struct dirent **names;
		int n;

		snprintf(path, sizeof(path), "%s/%s", dir, subs[s]);
		if ((n = scandir(path, &names, NULL, alphasort)) < 0)
			continue;
		found = 1;
		for (int k = 0; k < n; k++) {
			char file[8192];
			struct stat st;
			int rc = 0;
			snprintf(file, sizeof(file), "%s/%s", path, names[k]->d_name);
			if (names[k]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode))
				rc = do_file(H, file, false);
			free(names[k]);
			if (rc == -1) {
				while (++k < n)
					free(names[k]);
				free(names);
				return -1;
			}
		}
		free(names);
	}
	if (!found) {
		fprintf(stderr, "mxsurvey headers: %s: a directory, but no Maildir (no cur/ or new/)\n", dir);
		return -2;
	}
	return 0;
}

static int cmp_domain(const void *a, const void *b)
{
	return strcmp(((const struct domain_sum *)a)->domain, ((const struct domain_sum *)b)->domain);
}

static void summary(struct headers *H)
{
	qsort(H->doms, H->ndoms, sizeof(*H->doms), cmp_domain);
	if (!H->json)
		printf("sending domains: %zu (tls of the hop each message came in at)\n"
		       "%-40s %8s %5s %5s %7s\n", H->ndoms, "domain", "messages", "yes", "no", "unknown");
	for (size_t i = 0; i < H->ndoms; i++) {
		const struct domain_sum *d = &H->doms[i];
		if (H->json) {
			json_t *o = json_object();
			json_object_set_new(o, "type", json_string("domain"));
			json_set_str(o, "domain", d->domain);
			json_object_set_new(o, "messages", json_integer((json_int_t)d->messages));
			json_object_set_new(o, "tls_yes", json_integer((json_int_t)d->tls[MXS_RCVD_TLS_YES]));
			json_object_set_new(o, "tls_no", json_integer((json_int_t)d->tls[MXS_RCVD_TLS_NO]));
			json_object_set_new(o, "tls_unknown",
			                    json_integer((json_int_t)d->tls[MXS_RCVD_TLS_UNKNOWN]));
			print_json(o);
		} else {
			char *e = out_str(d->domain);
			printf("%-40s %8lu %5lu %5lu %7lu\n", e ? e : "?", d->messages,
			       d->tls[MXS_RCVD_TLS_YES], d->tls[MXS_RCVD_TLS_NO], d->tls[MXS_RCVD_TLS_UNKNOWN]);
			free(e);
		}
	}
}

/* --scan: the sending domains into a file, handed to `mxsurvey survey`. */
static int run_survey(struct headers *H, const char *db, int nextra, char **extra)
{
	char path[] = "/tmp/mxsurvey-headers-XXXXXX";
	int fd = mkstemp(path), rc;
	FILE *f;
	char **av;
	int ac = 0;

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "mxsurvey headers: temporary file: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return MXS_EXIT_FAILURE;
	}
	for (size_t i = 0; i < H->ndoms; i++)
		fprintf(f, "%s\n", H->doms[i].domain);
	if (fclose(f) != 0 || (av = calloc((size_t)nextra + 4, sizeof(*av))) == NULL) {
		unlink(path);
		return MXS_EXIT_FAILURE;
	}
	av[ac++] = "survey";
	if (db != NULL) {
		av[ac++] = "--db";
		av[ac++] = (char *)db;
	}
	for (int i = 0; i < nextra; i++)
		av[ac++] = extra[i];
	av[ac++] = path;
	fflush(stdout);
	rc = cmd_survey(ac, av);
	unlink(path);
	free(av);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: mxsurvey headers [OPTIONS] [FILE|MAILDIR...] [-- SURVEY_OPTIONS]\n"
"Shows each hop of a message's Received: fields (newest first) and whether it says the\n"
"message travelled over TLS, by which rule. A FILE is one message or an mbox; a\n"
"directory is a Maildir; none or '-' reads stdin. A header can be forged by anyone\n"
"upstream: only the hops your own servers added are evidence; the rest are claims.\n"
"  --trusted-by NAME  your receiving server (or a domain of them), as in its 'by' clause;\n"
"                     repeatable. The hops at the top added by them are trusted.\n"
"  --format F         text (default) or json (one JSON object a line: hop, message,\n"
"                     domain lines)\n"
"  --scan             then survey the MX hosts of the sending domains (mxsurvey survey;\n"
"                     options after '--' go to it)\n"
"  --db URL           with --scan: the database of the survey\n"
"  --log-level L      error, warn, info or debug\n"
"Exit status: 0 done, 2 usage, 4 an input could not be read, 1 failure; with --scan the\n"
"survey's.\n");
}

int cmd_headers(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "trusted-by", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "scan", no_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'd' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct headers H = { 0 };
	bool scan = false;
	const char *db = NULL;
	int c, lvl, nopt = argc, rc = MXS_EXIT_OK;

	/* everything after "--" is the survey's */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			nopt = i;
			break;
		}
	optind = 1;
	while ((c = getopt_long(nopt, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (H.ntrusted == MAX_TRUSTED) {
				fprintf(stderr, "mxsurvey headers: at most %d --trusted-by\n", MAX_TRUSTED);
				return MXS_EXIT_USAGE;
			}
			H.trusted[H.ntrusted++] = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				fprintf(stderr, "mxsurvey headers: unknown format '%s'\n", optarg);
				return MXS_EXIT_USAGE;
			}
			H.json = strcmp(optarg, "json") == 0;
			break;
		case 's': scan = true; break;
		case 'd': db = optarg; break;
		case 'L':
			if ((lvl = mxs_log_level_parse(optarg)) < 0)
				return MXS_EXIT_USAGE;
			mxs_log_set_level((enum mxs_log_level)lvl);
			break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		default: usage(stderr); return MXS_EXIT_USAGE;
		}
	}
	if (nopt < argc && !scan) {
		fprintf(stderr, "mxsurvey headers: options after '--' are for --scan\n");
		return MXS_EXIT_USAGE;
	}
	for (int i = optind; i < nopt || (i == optind && optind == nopt); i++) {
		const char *path = i < nopt ? argv[i] : "-";
		struct stat st;
		int r;
		if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			r = do_maildir(&H, path);
		else
			r = do_file(&H, path, true);
		if (r == -1) {
			fprintf(stderr, "mxsurvey headers: out of memory\n");
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
		if (r == -2)
			rc = MXS_EXIT_BAD_INPUT;
	}
	if (H.messages > 1 || scan)
		summary(&H);
	if (!H.json)
		printf("%lu messages, %lu hops\n", H.messages, H.hops);
	if (scan && rc == MXS_EXIT_OK) {
		if (H.ndoms == 0) {
			fprintf(stderr, "mxsurvey headers: no sending domain to survey\n");
			rc = MXS_EXIT_BAD_INPUT;
		} else {
			rc = run_survey(&H, db, argc - nopt - 1 > 0 ? argc - nopt - 1 : 0, argv + nopt + 1);
		}
	}
out:
	for (size_t i = 0; i < H.ndoms; i++)
		free(H.doms[i].domain);
	free(H.doms);
	return rc;
}
