#include "target.h"

#include "proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"

void target_free(struct mxs_target *t)
{
	free(t->mx);
	strv_free(&t->mx_names);
	strv_free(&t->domains);
	for (size_t i = 0; i < t->ntlsa; i++)
		free(t->tlsa[i].data);
	free(t->tlsa);
	free(t->blocked);
	free(t->error);
	free(t->input);
	memset(t, 0, sizeof(*t));
}

static int set_addr(struct mxs_target *t, const char *ip, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;

	memset(&t->sa, 0, sizeof(t->sa));
	if (port <= 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		t->salen = sizeof(*s4);
		inet_ntop(AF_INET, &s4->sin_addr, t->ip, sizeof(t->ip));
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		t->salen = sizeof(*s6);
		inet_ntop(AF_INET6, &s6->sin6_addr, t->ip, sizeof(t->ip));
	} else {
		return -1;
	}
	t->port = port;
	return 0;
}

/* A DNS name as the record keeps it: lower case, no trailing dot, plausible bytes only. */
static char *clean_name(const char *s, size_t len)
{
	char *out;

	while (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.' || s[i] == '_'))
			return NULL;
	out = strndup(s, len);
	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static enum target_parse bad(struct mxs_target *t, const char *line, size_t len, const char *why)
{
	target_free(t);
	t->error = strdup(why);
	t->input = mxs_esc_encode(line, len > 512 ? 512 : len, NULL);
	return TARGET_BAD;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s))
		(*s)++, (*len)--;
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

static int hex_decode(const char *hex, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(hex);
	unsigned char *b;

	if (n == 0 || n % 2 != 0 || n > 8192)
		return -1;
	b = malloc(n / 2);
	if (b == NULL)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
		    sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(b);
			return -1;
		}
		b[i] = (unsigned char)v;
	}
	*out = b;
	*outlen = n / 2;
	return 0;
}

static int names_from_json(const json_t *arr, struct strv *sv)
{
	size_t i;
	json_t *v;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return -1;
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		char *c = s ? clean_name(s, strlen(s)) : NULL;
		if (c == NULL)
			return -1;
		if (strv_contains(sv, c))
			free(c);
		else if (strv_push_owned(sv, c) < 0)
			return -1;
	}
	return 0;
}

static int tlsa_from_json(const json_t *arr, struct mxs_target *t)
{
	size_t i;
	json_t *v;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 64)
		return -1;
	t->tlsa = calloc(json_array_size(arr) + 1, sizeof(*t->tlsa));
	if (t->tlsa == NULL)
		return -1;
	json_array_foreach(arr, i, v) {
		json_int_t u, s, m;
		const char *data;
		struct mxs_tlsa *r = &t->tlsa[t->ntlsa];
		if (json_unpack((json_t *)v, "{s:I, s:I, s:I, s:s}", "usage", &u, "selector", &s,
				"mtype", &m, "data", &data) != 0 ||
		    u < 0 || u > 255 || s < 0 || s > 255 || m < 0 || m > 255 ||
		    hex_decode(data, &r->data, &r->len) < 0)
			return -1;
		r->usage = (unsigned char)u;
		r->selector = (unsigned char)s;
		r->mtype = (unsigned char)m;
		t->ntlsa++;
	}
	return 0;
}

enum target_parse target_from_json(const json_t *o, int default_port, struct mxs_target *t)
{
	const char *ip = json_string_value(json_object_get(o, "ip"));
	const json_t *port = json_object_get(o, "port");
	const json_t *mx = json_object_get(o, "mx");
	const char *blocked = json_string_value(json_object_get(o, "blocked"));
	const json_t *proto = json_object_get(o, "proto");
	int p = default_port;

	memset(t, 0, sizeof(*t));
	if (proto != NULL && !json_is_null(proto)) {
		const char *name = json_string_value(proto);
		if (name == NULL || (t->proto = mxs_proto_find(name)) == NULL)
			return TARGET_BAD;
		p = t->proto->default_port;
	}
	if (port != NULL) {
		if (!json_is_integer(port))
			return TARGET_BAD;
		p = (int)json_integer_value(port);
	}
	if (ip == NULL || set_addr(t, ip, p) < 0)
		return TARGET_BAD;
	if (mx != NULL && !json_is_null(mx)) {
		const char *s = json_string_value(mx);
		if (s == NULL || (t->mx = clean_name(s, strlen(s))) == NULL)
			return TARGET_BAD;
	}
	if (names_from_json(json_object_get(o, "mx_names"), &t->mx_names) < 0 ||
	    names_from_json(json_object_get(o, "domains"), &t->domains) < 0 ||
	    tlsa_from_json(json_object_get(o, "tlsa"), t) < 0)
		return TARGET_BAD;
	if (t->mx != NULL && !strv_contains(&t->mx_names, t->mx))
		strv_push(&t->mx_names, t->mx);
	t->tlsa_dnssec = json_is_true(json_object_get(o, "tlsa_dnssec"));
	t->guessed = json_is_true(json_object_get(o, "guessed"));
	if (blocked != NULL)
		t->blocked = strdup(blocked);
	return TARGET_OK;
}

static enum target_parse parse_json(const char *line, size_t len, int default_port,
				    struct mxs_target *t)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *type;
	enum target_parse r;

	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return bad(t, line, len, "not a JSON object");
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type != NULL && strcmp(type, "domain") == 0) {
		json_decref(o);
		return TARGET_PASSTHROUGH;
	}
	if (type != NULL && strcmp(type, "target") != 0) {
		json_decref(o);
		return bad(t, line, len, "JSON line of an unknown type");
	}
	r = target_from_json(o, default_port, t);
	json_decref(o);
	if (r == TARGET_BAD)
		return bad(t, line, len, "JSON target without a valid ip, port, proto, mx, domains or tlsa");
	return r;
}

enum target_parse target_parse_line(const char *line, size_t len, int default_port,
				     struct mxs_target *t)
{
	char ip[64];
	const char *p, *end, *comma;
	size_t iplen;

	memset(t, 0, sizeof(*t));
	trim(&line, &len);
	if (len == 0 || line[0] == '#')
		return TARGET_SKIP;
	if (memchr(line, '\0', len) != NULL)
		return bad(t, line, len, "NUL byte in input line");
	if (line[0] == '{')
		return parse_json(line, len, default_port, t);

	end = line + len;
	comma = memchr(line, ',', len);
	p = comma ? comma : end;
	iplen = (size_t)(p - line);
	while (iplen > 0 && isspace((unsigned char)line[iplen - 1]))
		iplen--;
	if (iplen == 0 || iplen >= sizeof(ip))
		return bad(t, line, len, "no address");
	memcpy(ip, line, iplen);
	ip[iplen] = '\0';
	if (set_addr(t, ip, default_port) < 0)
		return bad(t, line, len, "not an IPv4 or IPv6 address");
	/* Then the MX name, then domains, comma-separated. */
	for (int field = 1; p < end; field++) {
		const char *f = p + 1;
		const char *next = memchr(f, ',', (size_t)(end - f));
		size_t flen;
		char *name;
		if (next == NULL)
			next = end;
		flen = (size_t)(next - f);
		trim(&f, &flen);
		p = next;
		if (flen == 0 && field == 1)
			continue;
		if ((name = clean_name(f, flen)) == NULL)
			return bad(t, line, len, field == 1 ? "bad MX host name" : "bad domain name");
		if (field == 1) {
			t->mx = name;
			strv_push(&t->mx_names, name);
		} else if (strv_contains(&t->domains, name)) {
			free(name);
		} else {
			strv_push_owned(&t->domains, name);
		}
	}
	return TARGET_OK;
}
