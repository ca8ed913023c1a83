/* Loading the Public Suffix List's ICANN section into public_suffixes. */
#include "suffixes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copybuf.h"
#include "pgutil.h"

#define PSL_BEGIN "===BEGIN ICANN DOMAINS==="
#define PSL_END "===END ICANN DOMAINS==="
#define PSL_FILE_MAX (16u << 20)   /* the list is about 250 KB */

/* The line's text up to the first space, tab or carriage return. */
static size_t rule_len(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
		i++;
	return i;
}

static int rule_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || p[i] == 0x7f || p[i] == '\\')
			return 0;
	return n > 0;
}

long mxs_psl_icann_rules(const char *text, size_t len, mxs_psl_rule_cb cb, void *arg,
                         size_t *skipped)
{
	enum { BEFORE, INSIDE, AFTER } where = BEFORE;
	long rules = 0;
	char buf[256];
	const char *p = text, *end = text + len;

	*skipped = 0;
	while (p < end && where != AFTER) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *line = p;
		p = nl ? nl + 1 : end;
		if (n >= 2 && line[0] == '/' && line[1] == '/') {
			if (memmem(line, n, where == BEFORE ? PSL_BEGIN : PSL_END,
			           strlen(where == BEFORE ? PSL_BEGIN : PSL_END)) != NULL)
				where = where == BEFORE ? INSIDE : AFTER;
			continue;
		}
		if (where != INSIDE)
			continue;
		size_t r = rule_len(line, n);
		if (r == 0)
			continue;
		if (!rule_ok(line, r) || r >= sizeof(buf)) {
			(*skipped)++;
			continue;
		}
		for (size_t i = 0; i < r; i++)
			buf[i] = line[i] >= 'A' && line[i] <= 'Z' ? (char)(line[i] - 'A' + 'a') : line[i];
		buf[r] = '\0';
		cb(buf, r, arg);
		rules++;
	}
	return where == AFTER ? rules : -1;
}

static void add_row(const char *rule, size_t len, void *arg)
{
	struct copybuf *b = arg;
	cb_text(b, rule, len);
	cb_end_row(b);
}

/* The whole file, malloc'd and NUL-terminated, or NULL with err. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(PSL_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, PSL_FILE_MAX + 1, f) : 0;
	int bad = buf == NULL || ferror(f) || n > PSL_FILE_MAX;
	if (bad)
		snprintf(err, errlen, "%s: %s", path,
		         buf == NULL ? "out of memory" : n > PSL_FILE_MAX ? "larger than 16 MiB"
		                                                          : strerror(errno));
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

long mxs_db_load_suffixes(PGconn *c, const char *path, size_t *skipped, char *err,
                          size_t errlen)
{
	size_t len;
	char *text = slurp(path, &len, err, errlen);
	if (text == NULL)
		return MXS_PSL_BAD_FILE;
	struct copybuf rows;
	copybuf_init(&rows);
	long n = mxs_psl_icann_rules(text, len, add_row, &rows, skipped);
	free(text);
	if (n <= 0) {
		snprintf(err, errlen, "%s: %s", path,
		         n < 0 ? "no '" PSL_BEGIN "' ... '" PSL_END "' section: not a Public Suffix List"
		               : "the ICANN section holds no rules");
		copybuf_free(&rows);
		return MXS_PSL_BAD_FILE;
	}
	char nrules[32];
	snprintf(nrules, sizeof(nrules), "%ld", n);
	const char *params[2] = { path, nrules };
	int ok = pg_exec(c, "BEGIN; CREATE TEMP TABLE psl_load (suffix text) ON COMMIT DROP",
	                 err, errlen) == 0 &&
	         pg_copy(c, "COPY psl_load (suffix) FROM STDIN", rows.data, rows.len, err,
	                 errlen) == PGF_OK &&
	         pg_exec(c, "DELETE FROM public_suffixes;"
	                    " INSERT INTO public_suffixes SELECT DISTINCT suffix FROM psl_load",
	                 err, errlen) == 0;
	copybuf_free(&rows);
	if (ok) {
		PGresult *r = PQexecParams(c,
		                           "UPDATE public_suffix_source SET source = $1,"
		                           " rules = $2::integer, loaded_at = now()",
		                           2, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			pg_errmsg(c, r, err, errlen);
		PQclear(r);
	}
	if (ok && pg_exec(c, "COMMIT", err, errlen) == 0)
		return n;
	char ignore[64];
	pg_exec(c, "ROLLBACK", ignore, sizeof(ignore));
	return MXS_PSL_DB_ERROR;
}
