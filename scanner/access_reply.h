/*
 * Reply parsers for the mail access protocols, fed one line at a time (line ending
 * already removed), distrusting every byte as the SMTP parser does (smtp_reply.h): a
 * length cap per line, a cap on the lines of one response (an IMAP server flooding
 * untagged responses, a POP3 multi-line answer that never ends), and every kept line in
 * the mxs escape form, ready for the record.
 *
 * IMAP (RFC 9051/3501): a command's response is any number of untagged lines ("* ...")
 * ended by the line carrying the command's tag ("A1 OK ..."); the greeting is one
 * untagged OK, PREAUTH or BYE line. Capabilities come from "* CAPABILITY ..." lines and
 * from "[CAPABILITY ...]" response codes.
 *
 * POP3 (RFC 1939/2449): "+OK text" or "-ERR text"; a multi-line answer (CAPA) follows
 * "+OK" with lines ended by "." alone, dot-stuffed.
 */
#ifndef MXS_ACCESS_REPLY_H
#define MXS_ACCESS_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "strv.h"

#define ACCESS_LINE_MAX 8192       /* bytes in one response line, ending excluded */
#define ACCESS_LINES_MAX 256       /* lines in one response (untagged lines included) */
#define ACCESS_CAPS_MAX 512        /* capabilities kept from one response */

enum access_status {
	ACCESS_MORE,            /* a line was accepted; feed the next */
	ACCESS_DONE,            /* the response is complete; status and lines are set */
	ACCESS_ERR_SYNTAX,      /* the line is not a response line of the protocol */
	ACCESS_ERR_TAG,         /* IMAP: a tagged line with another tag than the command's */
	ACCESS_ERR_TOO_LONG,    /* the line is longer than ACCESS_LINE_MAX */
	ACCESS_ERR_TOO_MANY,    /* more than ACCESS_LINES_MAX lines (an untagged flood) */
	ACCESS_ERR_NOMEM,
	ACCESS_STATUS_LAST
};

extern const char *const access_status_names[ACCESS_STATUS_LAST];

/* The response's verdict. */
enum access_verdict {
	ACCESS_NONE,
	ACCESS_OK,       /* IMAP OK, POP3 +OK */
	ACCESS_NO,       /* IMAP NO, POP3 -ERR */
	ACCESS_BAD,      /* IMAP BAD */
	ACCESS_BYE,      /* IMAP BYE (greeting or untagged during a command) */
	ACCESS_PREAUTH,  /* IMAP PREAUTH greeting */
};

extern const char *const access_verdict_names[];

struct access_reply {
	enum access_verdict verdict;
	struct strv lines;   /* every line in escape form, as received (POP3: not unstuffed) */
	struct strv caps;    /* capabilities (IMAP atoms; POP3 CAPA lines), escape form */
};

void access_reply_init(struct access_reply *r);
/* Forget lines, capabilities and verdict; the parser stays usable. */
void access_reply_reset(struct access_reply *r);

/*
 * IMAP. tag: the tag of the command whose response this is, or NULL for the greeting.
 * On an error status the line is not kept.
 */
enum access_status imap_reply_feed(struct access_reply *r, const char *tag,
				   const unsigned char *line, size_t len);

/* POP3. multi: a multi-line answer is due after "+OK" (CAPA). */
enum access_status pop3_reply_feed(struct access_reply *r, bool multi,
				   const unsigned char *line, size_t len);

/* 1 if caps holds the capability (case-insensitive, the whole atom or keyword). */
int access_has_cap(const struct strv *caps, const char *cap);

/*
 * The SASL mechanisms advertised: IMAP "AUTH=X" atoms, POP3 "SASL X Y" and SMTP
 * "AUTH X Y" / "AUTH=X Y" keywords; appended upper-cased to mechs (no duplicates).
 * Returns 0 or -1 (no memory).
 */
int access_sasl_mechs(const struct strv *caps, struct strv *mechs);

/*
 * If a capability looks like the STARTTLS-like keyword want ("STARTTLS", "STLS")
 * overwritten with 'X' by a middlebox, return it (a pointer into caps); else NULL.
 */
const char *access_mangled_cap(const struct strv *caps, const char *want);

#endif
