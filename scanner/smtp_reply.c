#include "smtp_reply.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "esc.h"

const char *const smtp_reply_status_names[SMTP_REPLY_STATUS_LAST] = {
	[SMTP_REPLY_MORE] = "more",
	[SMTP_REPLY_DONE] = "done",
	[SMTP_REPLY_ERR_SYNTAX] = "reply line is not a 3-digit code",
	[SMTP_REPLY_ERR_CODE_CHANGED] = "reply code changed within a multi-line reply",
	[SMTP_REPLY_ERR_TOO_LONG] = "reply line too long",
	[SMTP_REPLY_ERR_TOO_MANY] = "too many reply lines",
	[SMTP_REPLY_ERR_NOMEM] = "out of memory",
};

void smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void smtp_reply_reset(struct smtp_reply *r)
{
	strv_free(&r->lines);
	r->code = 0;
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const unsigned char *line, size_t len)
{
	int code;

	if (len > SMTP_LINE_MAX)
		return SMTP_REPLY_ERR_TOO_LONG;
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !isdigit(line[2]))
		return SMTP_REPLY_ERR_SYNTAX;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_REPLY_ERR_SYNTAX;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->lines.n > 0 && code != r->code)
		return SMTP_REPLY_ERR_CODE_CHANGED;
	if (r->lines.n >= SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_ERR_TOO_MANY;
	if (strv_push_owned(&r->lines, mxs_esc_encode(line, len, NULL)) < 0)
		return SMTP_REPLY_ERR_NOMEM;
	r->code = code;
	return (len > 3 && line[3] == '-') ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}

int smtp_is_starttls_echo(const unsigned char *line, size_t len)
{
	static const char cmd[] = "STARTTLS";
	size_t b = 0, e = len;

	while (b < e && (line[b] == ' ' || line[b] == '\t'))
		b++;
	while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	if (e - b > 4 && isdigit(line[b]) && isdigit(line[b + 1]) && isdigit(line[b + 2]) &&
	    (line[b + 3] == ' ' || line[b + 3] == '-'))
		b += 4;
	return e - b == sizeof(cmd) - 1 && strncasecmp((const char *)line + b, cmd, e - b) == 0;
}
