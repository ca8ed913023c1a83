/*
 * Eight bytes at a time: does a word hold a byte equal to, or below, a value? The hot
 * loops of ingest (the JSON tokenizer's strings, COPY escaping, escape-form checks) look
 * for a few rare bytes in long runs of ordinary ones; they test a word with these and
 * look at single bytes only in a word that has one.
 *
 * Each test gives a word whose byte high bits are set where the test may hold: zero
 * exactly when no byte of v passes, so "!= 0" is exact, but which bits are set above
 * the first passing byte is not (a borrow runs on). Callers use them only to decide
 * whether a word needs the byte-by-byte look.
 */
#ifndef MXS_BYTESCAN_H
#define MXS_BYTESCAN_H

#include <stdint.h>
#include <string.h>

#define BS_ONES 0x0101010101010101ULL
#define BS_HIGH 0x8080808080808080ULL

/* Eight bytes from p, any alignment. */
static inline uint64_t bs_load(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Nonzero when a byte of v equals c. */
static inline uint64_t bs_eq(uint64_t v, unsigned char c)
{
	uint64_t x = v ^ (BS_ONES * c);
	return (x - BS_ONES) & ~x & BS_HIGH;
}

/* Nonzero when a byte of v is below c (c at most 0x80). */
static inline uint64_t bs_lt(uint64_t v, unsigned char c)
{
	return (v - BS_ONES * c) & ~v & BS_HIGH;
}

/* Nonzero when a byte of v is 0x80 or above. */
static inline uint64_t bs_high(uint64_t v)
{
	return v & BS_HIGH;
}

#endif
