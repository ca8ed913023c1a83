#include "resume.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void resume_init(struct resume *rs)
{
	memset(rs, 0, sizeof(*rs));
	addrmap_init(&rs->file.map);
	addrmap_init(&rs->db.map);
}

static void side_free(struct resume_side *sd)
{
	for (size_t i = 0; i < sd->n; i++) {
		free(sd->v[i].mx);
		strv_free(&sd->v[i].names);
	}
	free(sd->v);
	addrmap_free(&sd->map);
}

void resume_free(struct resume *rs)
{
	side_free(&rs->file);
	side_free(&rs->db);
	json_decref(rs->file_domains);
}

/* The key of ip text and port; 0, or -1 if ip is not an address. */
static int key_of(const char *ip, int port, struct addr_key *k)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (port <= 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		return -1;
	addr_key_make(k, (const struct sockaddr *)&ss, 32, 128, (uint16_t)port);
	return 0;
}

/* What sd holds of k: the entry (created empty when create), or NULL. */
static struct resume_addr *side_get(struct resume_side *sd, const struct addr_key *k, bool create)
{
	int32_t *v;

	if (!create) {
		int32_t i = addrmap_peek(&sd->map, k);
		return i > 0 ? &sd->v[i - 1] : NULL;
	}
	if ((v = addrmap_get(&sd->map, k)) == NULL)
		return NULL;
	if (*v > 0)
		return &sd->v[*v - 1];
	if (sd->n == sd->cap) {
		size_t cap = sd->cap ? sd->cap * 2 : 1024;
		struct resume_addr *nv = realloc(sd->v, cap * sizeof(*nv));
		if (nv == NULL)
			return NULL;
		sd->v = nv;
		sd->cap = cap;
	}
	memset(&sd->v[sd->n], 0, sizeof(sd->v[sd->n]));
	*v = (int32_t)++sd->n;
	return &sd->v[sd->n - 1];
}

static bool side_done(const struct resume_side *sd, const struct addr_key *k)
{
	int32_t i = addrmap_peek(&sd->map, k);
	return i > 0 && sd->v[i - 1].done;
}

static bool side_has_name(const struct resume_side *sd, const struct addr_key *k, const char *name)
{
	int32_t i = addrmap_peek(&sd->map, k);
	return i > 0 && strv_contains(&sd->v[i - 1].names, name);
}

/* The first finished result of k in sd: true if it is new (false: had one, or no memory). */
static bool side_add_result(struct resume_side *sd, const struct addr_key *k, const char *mx,
			    enum mxs_outcome o, bool tls)
{
	struct resume_addr *a = side_get(sd, k, true);

	if (a == NULL || a->done)
		return false;
	if (mx != NULL && (a->mx = strdup(mx)) == NULL)
		return false;
	a->done = true;
	a->outcome = o;
	a->tls = tls;
	return true;
}

/* A name judged on k in sd: true if it is new. */
static bool side_add_name(struct resume_side *sd, const struct addr_key *k, const char *name)
{
	struct resume_addr *a = side_get(sd, k, true);

	if (a == NULL || strv_contains(&a->names, name))
		return false;
	return strv_push(&a->names, name) == 0;
}

static enum mxs_outcome outcome_named(const char *name)
{
	for (int i = 0; i < MXS_OUT_LAST; i++)
		if (strcmp(mxs_outcome_names[i], name) == 0)
			return (enum mxs_outcome)i;
	return MXS_OUT_NONE;
}

static enum mxs_outcome outcome_coded(int code)
{
	for (int i = 0; i < MXS_OUT_LAST; i++)
		if (mxs_outcome_db_codes[i] == code)
			return (enum mxs_outcome)i;
	return MXS_OUT_NONE;
}

int resume_trim_torn_tail(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END), pos = end;
	char c;

	if (end < 0)
		return -1;
	while (pos > 0) {
		if (pread(fd, &c, 1, pos - 1) != 1)
			return -1;
		if (c == '\n')
			break;
		pos--;
	}
	if (pos != end) {
		mxs_warn("resume", "cutting a torn last line of %lld bytes", (long long)(end - pos));
		if (ftruncate(fd, pos) != 0)
			return -1;
	}
	return lseek(fd, 0, SEEK_END) < 0 ? -1 : 0;
}

/* A line of the file that resume cares for: a finished result, or a name line. */
struct file_line {
	enum { FL_RESULT = 1, FL_NAME } kind;
	struct addr_key k;
	bool own;                 /* a result that is not a "duplicate" of an earlier input line */
	const char *mx, *name;    /* result: its MX name (or NULL); name line: the name */
	enum mxs_outcome outcome;
	bool tls;
	const char *line;
	size_t len;
};

/*
 * Parse a file line into fl: 1 for a finished result or a name line judged on a finished
 * probe, 0 for any other line (domain records, bad targets, results and verdicts cut
 * short: "interrupted", "local-error"). Strings in fl live as long as *o.
 */
static int file_line(struct resume *rs, json_t *o, struct file_line *fl)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *ip = json_string_value(json_object_get(o, "ip"));
	const char *oc = json_string_value(json_object_get(o, "outcome"));
	json_int_t port = json_integer_value(json_object_get(o, "port"));
	json_t *tls = json_object_get(o, "tls");

	if (type && strcmp(type, "domain") == 0 && rs->file_domains != NULL) {
		const char *name = json_string_value(json_object_get(o, "domain"));
		if (name != NULL)
			json_object_set_new(rs->file_domains, name, json_true());
		return 0;
	}
	if (type == NULL || ip == NULL || *ip == '\0' || oc == NULL ||
	    strcmp(oc, "interrupted") == 0 || strcmp(oc, "local-error") == 0 ||
	    key_of(ip, (int)port, &fl->k) < 0)
		return 0;
	fl->outcome = outcome_named(oc);
	if (strcmp(type, "result") == 0) {
		fl->kind = FL_RESULT;
		fl->own = strcmp(oc, "duplicate") != 0;
		fl->mx = json_string_value(json_object_get(o, "mx"));
		fl->tls = json_is_object(tls);
		return 1;
	}
	if (strcmp(type, "name") == 0 &&
	    (fl->name = json_string_value(json_object_get(o, "name"))) != NULL) {
		fl->kind = FL_NAME;
		return 1;
	}
	return 0;
}

/* Call fn for every finished result and name line of path. Returns 0, or -1 with errno. */
static int each_file_line(const char *path, void (*fn)(struct resume *, const struct file_line *),
			  struct resume *rs)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct file_line fl;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break;   /* a torn last line (resume_trim_torn_tail cuts it) */
		json_t *o = json_loadb(line, (size_t)len - 1, 0, NULL);
		memset(&fl, 0, sizeof(fl));
		if (o != NULL && file_line(rs, o, &fl)) {
			fl.line = line;
			fl.len = (size_t)len - 1;
			fn(rs, &fl);
		}
		json_decref(o);
	}
	free(line);
	int err = ferror(f) ? errno : 0;
	fclose(f);
	errno = err;
	return err ? -1 : 0;
}

static void add_file(struct resume *rs, const struct file_line *fl)
{
	if (fl->kind == FL_NAME)
		side_add_name(&rs->file, &fl->k, fl->name);
	else if (fl->own && side_add_result(&rs->file, &fl->k, fl->mx, fl->outcome, fl->tls))
		rs->in_file++;
}

int resume_load_file(struct resume *rs, const char *path)
{
	rs->have_file = true;
	rs->file_domains = json_object();
	if (each_file_line(path, add_file, rs) < 0)
		return -1;
	mxs_info("resume", "%" PRIu64 " targets already have results in %s", rs->in_file, path);
	return 0;
}

static int add_db(void *arg, const char *ip, int port, const char *mx, int outcome, int tls)
{
	struct resume *rs = arg;
	struct addr_key k;

	if (key_of(ip, port, &k) == 0 && side_add_result(&rs->db, &k, mx, outcome_coded(outcome), tls))
		rs->in_db++;
	return 0;
}

static int add_db_name(void *arg, const char *ip, int port, const char *name)
{
	struct resume *rs = arg;
	struct addr_key k;

	if (key_of(ip, port, &k) == 0)
		side_add_name(&rs->db, &k, name);
	return 0;
}

int resume_load_db(struct resume *rs, struct dbout *d, char *err, size_t errlen)
{
	rs->have_db = true;
	/* what a killed run left in the spool is stored first, and so counts as stored */
	mxs_sink_wait_started(d->sink);
	if (mxs_scan_done_details(d->db, d->scan_id, add_db, add_db_name, rs, err, errlen) < 0)
		return -1;
	mxs_info("resume", "%" PRIu64 " targets of scan %" PRId64 " already have results in the database",
		 rs->in_db, d->scan_id);
	return 0;
}

static void copy_one(struct resume *rs, const struct file_line *fl)
{
	if (fl->kind == FL_NAME) {
		/* a verdict the database lacks; side_add_name keeps it to one */
		if (!side_add_name(&rs->db, &fl->k, fl->name))
			return;
		if (dbout_put(rs->copy_to, fl->line, fl->len) < 0)
			rs->copy_failed = true;
		else
			rs->copied_names++;
		return;
	}
	/* the first record of an address the database lacks; side_add_result keeps it to one */
	if (!fl->own || side_done(&rs->db, &fl->k) ||
	    !side_add_result(&rs->db, &fl->k, fl->mx, fl->outcome, fl->tls))
		return;
	if (dbout_put(rs->copy_to, fl->line, fl->len) < 0)
		rs->copy_failed = true;
	else
		rs->copied++;
}

/* Hand every done address of sd to the scanner: not probed again, its new names judged. */
static int mark_all(struct mxs_scanner *sc, const struct resume_side *sd)
{
	char ip[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < sd->map.cap; i++) {
		const struct addr_key *k = &sd->map.keys[i];
		const struct resume_addr *a;
		if (k->family == 0 || sd->map.vals[i] <= 0)
			continue;
		a = &sd->v[sd->map.vals[i] - 1];
		if (!a->done)
			continue;
		if (inet_ntop(k->family == AF_INET ? AF_INET : AF_INET6, k->addr, ip, sizeof(ip)) != NULL &&
		    mxs_scanner_mark_resumed(sc, ip, k->port, a->mx, a->outcome, a->tls, &a->names) < 0)
			return -1;
	}
	return 0;
}

int resume_apply(struct resume *rs, struct mxs_scanner *sc, const char *path, struct dbout *d)
{
	if (rs->have_file && rs->have_db) {
		/*
		 * Both sinks: a target the file has is not probed again; what the database lacks
		 * of it (its record, its name lines) is copied from the file. A target only the
		 * database has is probed again for the file alone (the database keeps no copy of
		 * the record as written).
		 */
		uint64_t db_before = rs->in_db, both = 0;
		for (size_t i = 0; i < rs->file.map.cap; i++) {
			const struct addr_key *k = &rs->file.map.keys[i];
			if (k->family != 0 && rs->file.map.vals[i] > 0 &&
			    rs->file.v[rs->file.map.vals[i] - 1].done && side_done(&rs->db, k))
				both++;
		}
		rs->copy_to = d;
		json_t *domains = rs->file_domains;
		rs->file_domains = NULL;   /* read once is enough */
		int rc = each_file_line(path, copy_one, rs);
		rs->file_domains = domains;
		rs->copy_to = NULL;
		if (rc < 0 || rs->copy_failed)
			return -1;
		d->resumed_done = db_before + rs->copied;
		/* in the database but not in the file: probed again, written to the file only */
		rs->db_only = db_before - both;
		if (mark_all(sc, &rs->file) < 0)
			return -1;
		if (rs->copied || rs->copied_names)
			mxs_info("resume", "%" PRIu64 " results and %" PRIu64 " name lines in %s but not"
				 " in the database: copied to it", rs->copied, rs->copied_names, path);
		if (rs->db_only)
			mxs_info("resume", "%" PRIu64 " results in the database but not in %s: probed again"
				 " for the file", rs->db_only, path);
	} else if (rs->have_db) {
		d->resumed_done = rs->in_db;
		return mark_all(sc, &rs->db);
	} else if (rs->have_file) {
		return mark_all(sc, &rs->file);
	}
	return 0;
}

/*
 * The ip and port of a record line as the scanner writes it ({"type":"result","v":1,
 * "ip":"...","port":N,...}); 0, or -1 for any other line.
 */
static int line_key(const char *line, size_t len, struct addr_key *k)
{
	const char *ip = memmem(line, len, "\"ip\":\"", 6), *port, *end;
	char buf[INET6_ADDRSTRLEN + 1];

	if (ip == NULL)
		return -1;
	ip += 6;
	end = memchr(ip, '"', len - (size_t)(ip - line));
	if (end == NULL || (size_t)(end - ip) >= sizeof(buf))
		return -1;
	memcpy(buf, ip, (size_t)(end - ip));
	buf[end - ip] = '\0';
	port = memmem(end, len - (size_t)(end - line), "\"port\":", 7);
	if (port == NULL)
		return -1;
	return key_of(buf, atoi(port + 7), k);
}

bool resume_db_has(const struct resume *rs, const char *line, size_t len)
{
	static const char name_head[] = "{\"type\":\"name\"";
	struct addr_key k;

	if (!rs->have_db || !rs->have_file)
		return false;
	if (len >= sizeof(name_head) - 1 && memcmp(line, name_head, sizeof(name_head) - 1) == 0) {
		/* name lines are few: parse them */
		json_t *o = json_loadb(line, len, 0, NULL);
		const char *ip = json_string_value(json_object_get(o, "ip"));
		const char *name = json_string_value(json_object_get(o, "name"));
		json_int_t port = json_integer_value(json_object_get(o, "port"));
		bool has = ip != NULL && name != NULL && key_of(ip, (int)port, &k) == 0 &&
			   side_has_name(&rs->db, &k, name);
		json_decref(o);
		return has;
	}
	if (rs->db_only == 0)
		return false;
	return line_key(line, len, &k) == 0 && side_done(&rs->db, &k);
}

bool resume_file_has_domain(const struct resume *rs, const char *name)
{
	return rs->file_domains != NULL && json_object_get(rs->file_domains, name) != NULL;
}
