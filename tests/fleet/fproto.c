#include "fproto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct fp_proto fp_protos[FP_LAST] = {
	[FP_SMTP] = { "smtp", FP_DIALECT_SMTP, 0, FB_SMTP_LAST },
	[FP_SUBMISSION] = { "submission", FP_DIALECT_SMTP, 0, FB_SMTP_LAST },
	[FP_SUBMISSIONS] = { "submissions", FP_DIALECT_SMTP, 1, FB_SMTP_LAST },
	[FP_IMAP] = { "imap", FP_DIALECT_IMAP, 0, FB_LAST },
	[FP_IMAPS] = { "imaps", FP_DIALECT_IMAP, 1, FB_LAST },
	[FP_POP3] = { "pop3", FP_DIALECT_POP3, 0, FB_LAST },
	[FP_POP3S] = { "pop3s", FP_DIALECT_POP3, 1, FB_LAST },
};

const struct fp_proto *fp_find(const char *name)
{
	for (int i = 0; i < FP_LAST; i++)
		if (strcmp(fp_protos[i].name, name) == 0)
			return &fp_protos[i];
	return NULL;
}

enum fb_id fp_pick(const struct fp_proto *p, uint32_t key, uint64_t seed)
{
	return fb_pick_n(key, seed, p->nbehaviours);
}

/* ---- Bytes. [0] is IMAP, [1] POP3. Hex escapes are split from letters that would extend them. */

#define D(d) ((d) == FP_DIALECT_IMAP ? 0 : 1)

static const struct fb_bytes greet_normal[2][2] = {
	{ FB_BYTES("* OK " FB_MX_HOST " IMAP4rev1 fleet ready\r\n"), { NULL, 0 } },
	{ FB_BYTES("+OK " FB_MX_HOST " POP3 fleet ready\r\n"), { NULL, 0 } },
};

/* One line in three pieces with pauses: a client that talks before the end is dropped. */
static const struct fb_bytes greet_pieces[2][4] = {
	{ FB_BYTES("* OK " FB_MX_HOST), FB_BYTES(" IMAP4rev1 fleet"), FB_BYTES(" ready\r\n"), { NULL, 0 } },
	{ FB_BYTES("+OK " FB_MX_HOST), FB_BYTES(" POP3 fleet"), FB_BYTES(" ready\r\n"), { NULL, 0 } },
};

static const struct fb_bytes greet_busy[2][2] = {
	{ FB_BYTES("* BYE Too many connections, try again later\r\n"), { NULL, 0 } },
	{ FB_BYTES("-ERR [IN-USE] Too many connections, try again later\r\n"), { NULL, 0 } },
};

static const struct fb_bytes greet_no_service[2][2] = {
	{ FB_BYTES("* BYE No IMAP service here\r\n"), { NULL, 0 } },
	{ FB_BYTES("-ERR No POP3 service here\r\n"), { NULL, 0 } },
};

/* NUL, TAB, a backslash, invalid UTF-8 inside an OK greeting. */
static const struct fb_bytes greet_hostile[2][2] = {
	{ FB_BYTES("* OK mx\0nul\ttab \\back \xff\xfe bad-utf8 IMAP4rev1\r\n"), { NULL, 0 } },
	{ FB_BYTES("+OK mx\0nul\ttab \\back \xff\xfe bad-utf8 POP3\r\n"), { NULL, 0 } },
};

static const struct fb_bytes greet_long[2][2] = {
	{ FB_BYTES("* OK "), { NULL, 0 } },
	{ FB_BYTES("+OK "), { NULL, 0 } },
};

static const struct fb_bytes greet_endless[2][2] = {
	{ FB_BYTES("* OK endless greeting\r\n"), { NULL, 0 } },
	{ FB_BYTES("+OK endless greeting\r\n"), { NULL, 0 } },
};

static const struct fb_bytes greet_trickle[2][2] = {
	{ FB_BYTES("* OK " FB_MX_HOST " IMAP4rev1 trickle"), { NULL, 0 } },
	{ FB_BYTES("+OK " FB_MX_HOST " POP3 trickle"), { NULL, 0 } },
};

static const struct fb_bytes unsolicited[2] = {
	FB_BYTES("* OK unsolicited\r\n"),
	FB_BYTES("+OK unsolicited\r\n"),
};

static const struct fb_bytes flood_line[2] = {
	FB_BYTES("* CAPABILITY IMAP4rev1 LITERAL+ flood\r\n"),
	FB_BYTES("X-FLOOD capability line\r\n"),
};

/* Dovecot-like: no login before TLS (LOGINDISABLED; POP3 without USER), PLAIN inside. */
static const char *const imap_caps[] = {
	"IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "STARTTLS", "LOGINDISABLED", NULL,
};
static const char *const imap_caps_tls[] = {
	"IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "AUTH=PLAIN", NULL,
};
/* Without STARTTLS the server takes LOGIN and PLAIN in cleartext: the finding. */
static const char *const imap_caps_plain[] = {
	"IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "AUTH=PLAIN", NULL,
};
static const char *const imap_caps_mangled[] = {
	"IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "XXXXXXXA", "LOGINDISABLED", NULL,
};
static const char *const pop3_caps[] = { "TOP", "UIDL", "RESP-CODES", "PIPELINING", "STLS", NULL };
static const char *const pop3_caps_tls[] = {
	"TOP", "UIDL", "RESP-CODES", "PIPELINING", "USER", "SASL PLAIN", NULL,
};
static const char *const pop3_caps_plain[] = {
	"TOP", "UIDL", "RESP-CODES", "PIPELINING", "USER", "SASL PLAIN", NULL,
};
static const char *const pop3_caps_mangled[] = { "TOP", "UIDL", "RESP-CODES", "PIPELINING", "XXXX", NULL };

static enum fb_id id_of(const struct fb_behaviour *b)
{
	return (enum fb_id)(b - fb_behaviours);
}

const struct fb_bytes *fp_greeting(const struct fb_behaviour *b, enum fp_dialect d)
{
	int i = D(d);

	switch (id_of(b)) {
	case FB_MULTILINE_GREETING: return greet_pieces[i];
	case FB_GREETING_421: return greet_busy[i];
	case FB_GREETING_554: return greet_no_service[i];
	case FB_HOSTILE_GREETING: return greet_hostile[i];
	case FB_GARBAGE: return b->lines; /* the same junk in every protocol */
	case FB_LONG_LINE: return greet_long[i];
	case FB_ENDLESS_MULTILINE: return greet_endless[i];
	case FB_TRICKLE: return greet_trickle[i];
	default: return greet_normal[i];
	}
}

struct fb_bytes fp_unsolicited(const struct fb_behaviour *b, enum fp_dialect d)
{
	static const struct fb_bytes none = { NULL, 0 };

	return b->unsolicited.p != NULL ? unsolicited[D(d)] : none;
}

const char *const *fp_caps(const struct fb_behaviour *b, enum fp_dialect d, int tls)
{
	int imap = d == FP_DIALECT_IMAP;

	if (tls)
		return imap ? imap_caps_tls : pop3_caps_tls;
	switch (id_of(b)) {
	case FB_NO_STARTTLS: return imap ? imap_caps_plain : pop3_caps_plain;
	case FB_MANGLED_STARTTLS: return imap ? imap_caps_mangled : pop3_caps_mangled;
	default: return imap ? imap_caps : pop3_caps;
	}
}

const char *fp_starttls_verb(enum fp_dialect d)
{
	return d == FP_DIALECT_IMAP ? "STARTTLS" : d == FP_DIALECT_POP3 ? "STLS" : "STARTTLS";
}

int fp_offers_starttls(const struct fb_behaviour *b, enum fp_dialect d)
{
	for (const char *const *c = fp_caps(b, d, 0); *c != NULL; c++)
		if (strcasecmp(*c, fp_starttls_verb(d)) == 0)
			return 1;
	return 0;
}

size_t fp_starttls_reply(const struct fb_behaviour *b, enum fp_dialect d, const char *tag,
			 char *buf, size_t size, int *go_ahead)
{
	int imap = d == FP_DIALECT_IMAP, n;

	*go_ahead = 0;
	switch (id_of(b)) {
	case FB_STARTTLS_454:
		n = imap ? snprintf(buf, size, "%s NO TLS not available due to local problem\r\n", tag)
			 : snprintf(buf, size, "-ERR TLS not available due to local problem\r\n");
		break;
	case FB_STARTTLS_ECHO:
		n = snprintf(buf, size, "%s\r\n", fp_starttls_verb(d));
		break;
	case FB_PIPELINED_INJECTION:
		*go_ahead = 1;
		/* The classic injection: a response planted behind the go-ahead, in plaintext. */
		n = imap ? snprintf(buf, size, "%s OK Begin TLS negotiation now\r\n"
					       "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n", tag)
			 : snprintf(buf, size, "+OK Begin TLS negotiation\r\n+OK injected\r\n");
		break;
	default:
		*go_ahead = 1;
		n = imap ? snprintf(buf, size, "%s OK Begin TLS negotiation now\r\n", tag)
			 : snprintf(buf, size, "+OK Begin TLS negotiation\r\n");
		break;
	}
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

struct fb_bytes fp_flood_line(enum fp_dialect d)
{
	return flood_line[D(d)];
}
