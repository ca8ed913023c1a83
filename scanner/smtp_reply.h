/*
 * Incremental SMTP reply parser (RFC 5321 section 4.2). It is fed one line at a time
 * (without the line ending) and distrusts every byte: each line must start with three
 * digits (2-5, 0-5, 0-9), followed by end of line, ' ' (last line) or '-' (more lines);
 * all lines of a reply must carry the same code; line count and line length are capped.
 * Lines are kept in the mxs escape form, ready for the record.
 */
#ifndef MXS_SMTP_REPLY_H
#define MXS_SMTP_REPLY_H

#include <stddef.h>

#include "strv.h"

#define SMTP_LINE_MAX 4096      /* bytes in one reply line, ending excluded */
#define SMTP_REPLY_LINES_MAX 256 /* lines in one reply */

enum smtp_reply_status {
	SMTP_REPLY_MORE,            /* a continuation line was accepted; feed the next */
	SMTP_REPLY_DONE,            /* the final line was accepted; code and lines are set */
	SMTP_REPLY_ERR_SYNTAX,      /* the line is not "DDD", "DDD text" or "DDD-text" */
	SMTP_REPLY_ERR_CODE_CHANGED,/* a continuation line carries another code */
	SMTP_REPLY_ERR_TOO_LONG,    /* the line is longer than SMTP_LINE_MAX */
	SMTP_REPLY_ERR_TOO_MANY,    /* the reply has more than SMTP_REPLY_LINES_MAX lines */
	SMTP_REPLY_ERR_NOMEM,
	SMTP_REPLY_STATUS_LAST
};

extern const char *const smtp_reply_status_names[SMTP_REPLY_STATUS_LAST];

struct smtp_reply {
	int code;           /* reply code, set by the first line */
	struct strv lines;  /* every line in escape form, code included */
};

void smtp_reply_init(struct smtp_reply *r);
/* Forget the lines and code, keeping the parser reusable. */
void smtp_reply_reset(struct smtp_reply *r);

/*
 * Feed one line of len bytes (CR/LF already removed). On an error status the parser is
 * left as it was before the line; the caller classifies the session.
 */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const unsigned char *line, size_t len);

/*
 * 1 if the bytes merely echo a STARTTLS command: "STARTTLS" alone, or a reply code and
 * separator followed by "STARTTLS" (case-insensitive, surrounding blanks ignored).
 */
int smtp_is_starttls_echo(const unsigned char *line, size_t len);

#endif
