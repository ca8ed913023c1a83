/*
 * Network faults of the simulated internet: a share of addresses whose server stops
 * answering (stall) or resets the connection (drop) at one phase of the session.
 *
 * Like behaviours, faults are data: a deterministic draw from (address, seed, shares),
 * used by the server (conn.c) and by the ground truth (truth.c), which states the outcome
 * of a faulted address from the one table in fault.c. docs/fleet.md, "Network".
 */
#ifndef FLEET_FAULT_H
#define FLEET_FAULT_H

#include <stdint.h>

#include "behaviour.h"

#define FB_PPM 1000000u   /* shares are kept in parts per million: exact, no floating point */

enum fb_fault_kind {
	FB_FAULT_NONE,
	FB_FAULT_STALL,   /* from the phase on, read everything and answer nothing */
	FB_FAULT_DROP,    /* when the phase's command arrives, reset the connection (RST) */
	FB_FAULT_LAST
};

extern const char *const fb_fault_names[FB_FAULT_LAST];

/* Shares of addresses that stall and that drop; stall_ppm + drop_ppm <= FB_PPM. */
struct fb_fault_shares {
	uint32_t stall_ppm;
	uint32_t drop_ppm;
};

/*
 * A fault and where it strikes. The phase is the one whose input meets the fault:
 * GREETING (right after accept, before any byte), EHLO (the EHLO or HELO command),
 * STARTTLS (the STARTTLS command), HANDSHAKE (the ClientHello).
 */
struct fb_fault {
	enum fb_fault_kind kind;
	enum fb_phase phase;   /* FB_PHASE_NONE when kind is FB_FAULT_NONE */
};

/*
 * The last phase in which the server of b still answers the client: a fault can only
 * strike up to there (a server that already hung up cannot stall later).
 */
enum fb_phase fb_fault_last_phase(const struct fb_behaviour *b);

/*
 * The fault of the address with key (fleet_addr_key) under seed, whose behaviour is b.
 * shares NULL or all zero: never a fault. The phase is drawn evenly from GREETING up to
 * fb_fault_last_phase(b).
 */
struct fb_fault fb_fault_pick(uint32_t key, uint64_t seed, const struct fb_fault_shares *shares,
			      const struct fb_behaviour *b);

/* What a correct scanner records for the fault f (kind != NONE); its phase is f.phase. */
enum fb_outcome fb_fault_outcome(struct fb_fault f);

/*
 * Parse a share: a decimal fraction in [0, 1] ("0.05", "1", ".5", "0") into parts per
 * million, rounded down. Returns 0, or -1 if s is not one.
 */
int fb_share_parse(const char *s, uint32_t *ppm);

#endif
