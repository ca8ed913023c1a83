#include "fault.h"

#include <string.h>

/* Salts keep the fault draws independent of the behaviour draw (fb_pick) for one key. */
#define SALT_KIND 0x6661756c742d6b69ULL    /* "fault-ki" */
#define SALT_PHASE 0x6661756c742d7068ULL   /* "fault-ph" */

const char *const fb_fault_names[FB_FAULT_LAST] = {
	[FB_FAULT_NONE] = "none",
	[FB_FAULT_STALL] = "stall",
	[FB_FAULT_DROP] = "drop",
};

/*
 * The outcome of each fault where it strikes, as the scanner classifies it (docs/record.md):
 * silence is the phase's timeout; an RST is a peer close, except inside the TLS handshake,
 * where the TLS layer reports it as a handshake error.
 */
static const enum fb_outcome fault_outcomes[FB_FAULT_LAST][FB_PHASE_LAST] = {
	[FB_FAULT_STALL] = {
		[FB_PHASE_GREETING] = FB_OUT_GREETING_TIMEOUT,
		[FB_PHASE_EHLO] = FB_OUT_EHLO_TIMEOUT,
		[FB_PHASE_STARTTLS] = FB_OUT_STARTTLS_TIMEOUT,
		[FB_PHASE_HANDSHAKE] = FB_OUT_HANDSHAKE_TIMEOUT,
	},
	[FB_FAULT_DROP] = {
		[FB_PHASE_GREETING] = FB_OUT_PEER_CLOSED,
		[FB_PHASE_EHLO] = FB_OUT_PEER_CLOSED,
		[FB_PHASE_STARTTLS] = FB_OUT_PEER_CLOSED,
		[FB_PHASE_HANDSHAKE] = FB_OUT_HANDSHAKE_ERROR,
	},
};

enum fb_phase fb_fault_last_phase(const struct fb_behaviour *b)
{
	struct fb_bytes r = fb_starttls_reply(b);

	/* Streams, silence, rejections and hang-ups: nothing is read after the greeting. */
	if (b->greeting != FB_GREET_LINES || b->phase == FB_PHASE_GREETING || b->close_after_greeting)
		return FB_PHASE_GREETING;
	if (b->phase == FB_PHASE_EHLO || b->ehlo != FB_EHLO_250 || !fb_advertises_starttls(b))
		return FB_PHASE_EHLO;
	/* STARTTLS is answered, but no handshake follows a refusal or an echo. */
	if (b->phase == FB_PHASE_STARTTLS || r.p == NULL || r.p[0] != '2' ||
	    b->after_starttls == FB_AFTER_PLAIN)
		return FB_PHASE_STARTTLS;
	return FB_PHASE_HANDSHAKE;
}

struct fb_fault fb_fault_pick(uint32_t key, uint64_t seed, const struct fb_fault_shares *shares,
			      const struct fb_behaviour *b)
{
	struct fb_fault f = { FB_FAULT_NONE, FB_PHASE_NONE };
	uint64_t draw;
	unsigned nphases;

	if (shares == NULL || (shares->stall_ppm == 0 && shares->drop_ppm == 0))
		return f;
	draw = fb_mix64(fb_mix64(seed ^ SALT_KIND) ^ key) % FB_PPM;
	if (draw < shares->stall_ppm)
		f.kind = FB_FAULT_STALL;
	else if (draw < (uint64_t)shares->stall_ppm + shares->drop_ppm)
		f.kind = FB_FAULT_DROP;
	else
		return f;
	nphases = (unsigned)(fb_fault_last_phase(b) - FB_PHASE_GREETING) + 1;
	f.phase = (enum fb_phase)(FB_PHASE_GREETING +
				  fb_mix64(fb_mix64(seed ^ SALT_PHASE) ^ key) % nphases);
	return f;
}

enum fb_outcome fb_fault_outcome(struct fb_fault f)
{
	return fault_outcomes[f.kind][f.phase];
}

int fb_share_parse(const char *s, uint32_t *ppm)
{
	uint32_t whole = 0, frac = 0, scale = FB_PPM / 10;
	int digits = 0;

	if (*s >= '0' && *s <= '9') {
		whole = (uint32_t)(*s++ - '0');
		digits++;
	}
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			frac += (uint32_t)(*s - '0') * scale; /* digits past the sixth: rounded down */
			scale /= 10;
		}
	}
	if (digits == 0 || *s != '\0' || whole > 1 || (whole == 1 && frac != 0))
		return -1;
	*ppm = whole * FB_PPM + frac;
	return 0;
}
