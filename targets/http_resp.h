/*
 * Parser of one HTTP/1.x response, as returned by an MTA-STS policy server. It is fed
 * the whole buffer received so far (small: headers are capped at 16 KiB and the body at
 * body_max) and says whether the response is complete. Handles Content-Length, chunked
 * transfer coding and close-delimited bodies. Remote bytes: fuzzed.
 */
#ifndef MXS_HTTP_RESP_H
#define MXS_HTTP_RESP_H

#include <stddef.h>

#define MXS_HTTP_HEADERS_MAX 16384

enum mxs_http_result { MXS_HTTP_NEED_MORE, MXS_HTTP_DONE, MXS_HTTP_ERROR };

enum mxs_http_error {
	MXS_HTTPE_NONE,
	MXS_HTTPE_BAD_STATUS_LINE,
	MXS_HTTPE_HEADERS_TOO_LARGE,
	MXS_HTTPE_BAD_HEADER,
	MXS_HTTPE_BAD_LENGTH,
	MXS_HTTPE_BAD_CHUNK,
	MXS_HTTPE_BODY_TOO_LARGE,
	MXS_HTTPE_TRUNCATED,
	MXS_HTTPE_LAST
};

/* "none", "bad-status-line", "headers-too-large", "bad-header", "bad-content-length", ... */
const char *mxs_http_error_name(enum mxs_http_error e);

struct mxs_http_resp {
	int status;              /* 100..999 */
	char content_type[128];  /* media type, lower case, parameters dropped; "" if absent */
	enum mxs_http_error error;
	char *body;              /* on DONE: malloc'd, NUL-terminated, owned by the caller */
	size_t body_len;
};

/*
 * Parse buf[0..len). eof: the peer closed the connection (a close-delimited body ends).
 * On MXS_HTTP_DONE out->body is set and must be freed; on MXS_HTTP_ERROR out->error says
 * why. Bodies longer than body_max are an error (RFC 8461 caps policies at 64 KiB).
 */
enum mxs_http_result mxs_http_resp_parse(const char *buf, size_t len, int eof, size_t body_max,
					 struct mxs_http_resp *out);

#endif
