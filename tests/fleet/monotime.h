/*
 * Microsecond monotonic time for the simulated network's delays. A delay must never end
 * early, and neither common/timeutil's milliseconds nor libevent's timers (by default on
 * CLOCK_MONOTONIC_COARSE, a few ms of granularity, read once per loop pass) promise that:
 * a timer callback compares with this clock and arms again if it woke too soon.
 */
#ifndef FLEET_MONOTIME_H
#define FLEET_MONOTIME_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline int64_t fleet_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The relative timeval from now_us until due_us (zero if it is past). */
static inline struct timeval fleet_tv_until(int64_t due_us, int64_t now_us)
{
	int64_t us = due_us > now_us ? due_us - now_us : 0;
	struct timeval tv = { .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };

	return tv;
}

#endif
