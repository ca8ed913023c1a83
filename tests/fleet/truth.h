/*
 * Ground truth: what a correct `mxsurvey scan` records for each fleet address, derived
 * from the behaviour table (docs/fleet.md describes the fields). A field with a value
 * must appear exactly so in the record; null means the record holds null (the phase was
 * not reached); an absent TLS detail is not asserted.
 */
#ifndef FLEET_TRUTH_H
#define FLEET_TRUTH_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "fault.h"
#include "fproto.h"

/*
 * The truth object for one address. faults: the shares of stalling and dropping
 * addresses the fleet serves with (NULL: none); a faulted address ends where its fault
 * strikes, and says so in "fault". Returns a new reference, or NULL (out of memory).
 */
json_t *fleet_truth(const struct fleet_addr *a, uint64_t seed, const struct fb_fault_shares *faults);

/*
 * The truth for the fleet speaking protocol p (fproto.h): smtp and submission as
 * fleet_truth (with "proto"); submissions, imap, imaps, pop3, pop3s their own. Faults
 * only for smtp and submission.
 */
json_t *fleet_truth_proto(const struct fleet_addr *a, const struct fp_proto *p, uint64_t seed,
			  const struct fb_fault_shares *faults);

/* Print one JSON line per address of r to out. Returns 0, or -1 on a write error. */
int fleet_truth_print(const struct fleet_range *r, const struct fp_proto *p, uint64_t seed,
		      const struct fb_fault_shares *faults, FILE *out);

#endif
