/*
 * Reading an EHLO reply: the extension keywords it advertises, and the signs of a
 * middlebox that rewrote the STARTTLS advertisement.
 */
#ifndef MXS_EHLO_H
#define MXS_EHLO_H

#include <stddef.h>

#include "strv.h"

/*
 * Fill ext (appending, escape form) from the reply lines (escape form, code included):
 * the text of every line after the first: the
 * extension keyword and its parameters ("SIZE 10240000"). Returns 0 or -1 (no memory).
 */
int ehlo_extensions(const struct strv *lines, struct strv *ext);

/* 1 if the extension list advertises STARTTLS (keyword match, case-insensitive). */
int ehlo_has_starttls(const struct strv *ext);

/*
 * If an extension keyword looks like a mangled STARTTLS, return it (a pointer into ext);
 * else NULL. Mangled: eight letters (the length of STARTTLS) that are STARTTLS with some
 * letters replaced by 'X', or that are at least five 'X' ("XXXXXXXA", as middleboxes
 * that strip the advertisement write it).
 */
const char *ehlo_mangled_starttls(const struct strv *ext);

#endif
