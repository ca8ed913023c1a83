/*
 * The mxs escape form for remote-controlled strings (docs/record.md).
 *
 * Valid, printable UTF-8 passes through; every other byte (C0 controls, DEL, bytes
 * outside a valid UTF-8 sequence) and the backslash become "\xNN". The result is valid
 * UTF-8 without NUL and decodes back to the exact input bytes.
 */
#ifndef MXS_ESC_H
#define MXS_ESC_H

#include <stddef.h>

/*
 * Encode len bytes of src. Returns a NUL-terminated malloc'd string owned by the
 * caller, or NULL on allocation failure. *outlen (if non-NULL) receives its length.
 */
char *mxs_esc_encode(const void *src, size_t len, size_t *outlen);

/*
 * Decode the escape form. Returns malloc'd bytes (NUL-terminated for convenience, the
 * terminator not counted in *outlen), or NULL if src is not a valid escape form
 * (a backslash not followed by xNN) or allocation failed.
 */
unsigned char *mxs_esc_decode(const char *src, size_t len, size_t *outlen);

/*
 * Length (1-4) of the valid UTF-8 sequence at p, at most avail bytes long, or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF included).
 */
size_t mxs_utf8_seq_len(const unsigned char *p, size_t avail);

/* Value of a hex digit (either case), or -1. */
int mxs_hex_digit(char c);

/* 1 if the bytes need no escaping at all (the encoding would equal the input). */
int mxs_esc_is_clean(const void *src, size_t len);

#endif
