#include "cliutil.h"

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MASK "***"

/* Append n bytes of s to out (size cap, fill *len), cutting at the end of out. */
static void put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
}

/* A URL: "user:secret@" in the authority and "password=secret" in the query. */
static void mask_url(const char *s, char *out, size_t cap, size_t *len)
{
	const char *auth = strstr(s, "://") + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL, *colon;

	for (const char *p = auth; p < auth + alen; p++)
		if (*p == '@')
			at = p;
	put(out, cap, len, s, (size_t)(auth - s));
	if (at != NULL && (colon = memchr(auth, ':', (size_t)(at - auth))) != NULL) {
		put(out, cap, len, auth, (size_t)(colon + 1 - auth));
		put(out, cap, len, MASK, strlen(MASK));
		put(out, cap, len, at, (size_t)(auth + alen - at));
	} else {
		put(out, cap, len, auth, alen);
	}
	/* the rest: path, then query parameters separated by '&' */
	const char *p = auth + alen;
	while (*p) {
		size_t n = strcspn(p, "?&#");
		put(out, cap, len, p, n);
		p += n;
		if (*p == '\0')
			break;
		put(out, cap, len, p, 1);   /* the separator */
		p++;
		if (strncasecmp(p, "password=", 9) == 0) {
			put(out, cap, len, p, 9);
			put(out, cap, len, MASK, strlen(MASK));
			p += 9 + strcspn(p + 9, "&#");
		}
	}
}

/* key = value pairs; a value may be single-quoted with backslash escapes. */
static void mask_pairs(const char *s, char *out, size_t cap, size_t *len)
{
	const char *p = s;

	while (*p) {
		const char *start = p;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		const char *key = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		bool secret = (size_t)(p - key) == 8 && strncasecmp(key, "password", 8) == 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=') {
			/* not a pair (libpq rejects it anyway): keep it as it is */
			put(out, cap, len, start, (size_t)(p - start));
			continue;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		put(out, cap, len, start, (size_t)(p - start));
		const char *val = p;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '\'')
				p++;
		} else {
			while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
				p++;
		}
		if (secret)
			put(out, cap, len, MASK, strlen(MASK));
		else
			put(out, cap, len, val, (size_t)(p - val));
	}
}

void cli_mask_conninfo(const char *conninfo, char *out, size_t cap)
{
	size_t len = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (strncasecmp(conninfo, "postgresql://", 13) == 0 || strncasecmp(conninfo, "postgres://", 11) == 0)
		mask_url(conninfo, out, cap, &len);
	else
		mask_pairs(conninfo, out, cap, &len);
}

/* Is argv[i] an option whose value (the next argument) is a connection string? */
static bool takes_conninfo(const char *arg)
{
	return strcmp(arg, "--db") == 0;
}

const char *cli_command_line(int argc, char **argv)
{
	static char buf[2048];
	char masked[1024];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "mxsurvey");

	for (int i = 0; i < argc && n < sizeof(buf); i++) {
		const char *a = argv[i];
		if (i > 0 && takes_conninfo(argv[i - 1])) {
			cli_mask_conninfo(a, masked, sizeof(masked));
			a = masked;
		} else if (strncmp(a, "--db=", 5) == 0) {
			memcpy(masked, "--db=", 5);
			cli_mask_conninfo(a + 5, masked + 5, sizeof(masked) - 5);
			a = masked;
		} else if (strncasecmp(a, "postgres", 8) == 0 && strstr(a, "://") != NULL) {
			/* a URL anywhere else (an input named like one): masked all the same */
			cli_mask_conninfo(a, masked, sizeof(masked));
			a = masked;
		}
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s", a);
	}
	return buf;
}

int cli_int_arg(const char *cmd, const char *name, const char *v, long min, long max, long *out)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || x < min || x > max) {
		fprintf(stderr, "mxsurvey %s: --%s wants a whole number from %ld to %ld, not '%s'\n",
			cmd, name, min, max, v);
		return -1;
	}
	*out = x;
	return 0;
}

int cli_id_arg(const char *cmd, const char *name, const char *v, int64_t *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || x <= 0) {
		fprintf(stderr, "mxsurvey %s: %s wants a scan id (a whole number from 1), not '%s'\n",
			cmd, name, v);
		return -1;
	}
	*out = (int64_t)x;
	return 0;
}

void cli_html_esc(const char *s, FILE *out)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fputc(*s, out); break;
		}
	}
}
