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
	addrmap_init(&rs->file);
	addrmap_init(&rs->db);
}

void resume_free(struct resume *rs)
{
	addrmap_free(&rs->file);
	addrmap_free(&rs->db);
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

static bool set_add(struct addrmap *m, const struct addr_key *k)
{
	int32_t *v = addrmap_get(m, k);
	if (v == NULL || *v != 0)
		return false;
	*v = 1;
	return true;
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

/*
 * A finished result in a file line: its key, and whether it is the address's own record
 * (not a "duplicate" of an earlier input line). Returns 1, or 0 for any other line
 * (domain records, bad targets, results cut short: "interrupted", "local-error").
 */
static int file_result(struct resume *rs, const char *line, size_t len, struct addr_key *k,
		       bool *own)
{
	json_t *o = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *ip = json_string_value(json_object_get(o, "ip"));
	const char *oc = json_string_value(json_object_get(o, "outcome"));
	json_int_t port = json_integer_value(json_object_get(o, "port"));
	int rc = 0;

	if (type && strcmp(type, "result") == 0 && ip && *ip && oc &&
	    strcmp(oc, "interrupted") != 0 && strcmp(oc, "local-error") != 0 &&
	    key_of(ip, (int)port, k) == 0) {
		*own = strcmp(oc, "duplicate") != 0;
		rc = 1;
	} else if (type && strcmp(type, "domain") == 0 && rs->file_domains != NULL) {
		const char *name = json_string_value(json_object_get(o, "domain"));
		if (name != NULL)
			json_object_set_new(rs->file_domains, name, json_true());
	}
	json_decref(o);
	return rc;
}

/* Call fn for every finished result line of path. Returns 0, or -1 with errno. */
static int each_file_result(const char *path, void (*fn)(struct resume *, const struct addr_key *,
							  bool, const char *, size_t),
			    struct resume *rs)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct addr_key k;
	bool own;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break;   /* a torn last line (resume_trim_torn_tail cuts it) */
		if (file_result(rs, line, (size_t)len - 1, &k, &own))
			fn(rs, &k, own, line, (size_t)len - 1);
	}
	free(line);
	int err = ferror(f) ? errno : 0;
	fclose(f);
	errno = err;
	return err ? -1 : 0;
}

static void add_file(struct resume *rs, const struct addr_key *k, bool own, const char *line,
		     size_t len)
{
	(void)own;
	(void)line;
	(void)len;
	if (set_add(&rs->file, k))
		rs->in_file++;
}

int resume_load_file(struct resume *rs, const char *path)
{
	rs->have_file = true;
	rs->file_domains = json_object();
	if (each_file_result(path, add_file, rs) < 0)
		return -1;
	mxs_info("resume", "%" PRIu64 " targets already have results in %s", rs->in_file, path);
	return 0;
}

static int add_db(void *arg, const char *ip, int port)
{
	struct resume *rs = arg;
	struct addr_key k;

	if (key_of(ip, port, &k) == 0 && set_add(&rs->db, &k))
		rs->in_db++;
	return 0;
}

int resume_load_db(struct resume *rs, struct dbout *d, char *err, size_t errlen)
{
	rs->have_db = true;
	/* what a killed run left in the spool is stored first, and so counts as stored */
	mxs_sink_wait_started(d->sink);
	if (mxs_scan_done_targets(d->db, d->scan_id, add_db, rs, err, errlen) < 0)
		return -1;
	mxs_info("resume", "%" PRIu64 " targets of scan %" PRId64 " already have results in the database",
		 rs->in_db, d->scan_id);
	return 0;
}

static void copy_one(struct resume *rs, const struct addr_key *k, bool own, const char *line,
		     size_t len)
{
	/* the first record of an address the database lacks; set_add keeps it to one */
	if (!own || addrmap_peek(&rs->db, k) != 0 || !set_add(&rs->db, k))
		return;
	if (dbout_put(rs->copy_to, line, len) < 0)
		rs->copy_failed = true;
	else
		rs->copied++;
}

/* Mark every key of m done in the scanner. */
static void mark_all(struct mxs_scanner *sc, const struct addrmap *m)
{
	char ip[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < m->cap; i++) {
		const struct addr_key *k = &m->keys[i];
		if (k->family == 0 || m->vals[i] == 0)
			continue;
		if (inet_ntop(k->family == AF_INET ? AF_INET : AF_INET6, k->addr, ip, sizeof(ip)) != NULL)
			mxs_scanner_mark_done(sc, ip, k->port);
	}
}

int resume_apply(struct resume *rs, struct mxs_scanner *sc, const char *path, struct dbout *d)
{
	if (rs->have_file && rs->have_db) {
		/*
		 * Both sinks: a target the file has is not probed again; what the database lacks
		 * of it is copied from the file. A target only the database has is probed again
		 * for the file alone (the database keeps no copy of the record as written).
		 */
		uint64_t db_before = rs->in_db, both = 0;
		for (size_t i = 0; i < rs->file.cap; i++)
			if (rs->file.keys[i].family != 0 && rs->file.vals[i] != 0 &&
			    addrmap_peek(&rs->db, &rs->file.keys[i]) != 0)
				both++;
		rs->copy_to = d;
		json_t *domains = rs->file_domains;
		rs->file_domains = NULL;   /* read once is enough */
		int rc = each_file_result(path, copy_one, rs);
		rs->file_domains = domains;
		rs->copy_to = NULL;
		if (rc < 0 || rs->copy_failed)
			return -1;
		d->resumed_done = db_before + rs->copied;
		/* in the database but not in the file: probed again, written to the file only */
		rs->db_only = db_before - both;
		mark_all(sc, &rs->file);
		if (rs->copied)
			mxs_info("resume", "%" PRIu64 " results in %s but not in the database: copied to it",
				 rs->copied, path);
		if (rs->db_only)
			mxs_info("resume", "%" PRIu64 " results in the database but not in %s: probed again"
				 " for the file", rs->db_only, path);
	} else if (rs->have_db) {
		d->resumed_done = rs->in_db;
		mark_all(sc, &rs->db);
	} else if (rs->have_file) {
		mark_all(sc, &rs->file);
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
	struct addr_key k;

	if (rs->db_only == 0)
		return false;
	return line_key(line, len, &k) == 0 && addrmap_peek(&rs->db, &k) != 0;
}

bool resume_file_has_domain(const struct resume *rs, const char *name)
{
	return rs->file_domains != NULL && json_object_get(rs->file_domains, name) != NULL;
}
