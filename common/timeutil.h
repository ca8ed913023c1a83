/* Clocks and time formatting shared by every stage. */
#ifndef MXS_TIMEUTIL_H
#define MXS_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic clock in milliseconds, for durations. */
int64_t mxs_mono_ms(void);

/* Wall clock in milliseconds since the epoch, for record timestamps. */
int64_t mxs_wall_ms(void);

/* Format epoch milliseconds as RFC 3339 UTC with milliseconds ("2026-11-23T19:00:00.123Z"). */
void mxs_fmt_rfc3339_ms(int64_t epoch_ms, char *buf, size_t len);

/* Format a time_t as RFC 3339 UTC seconds ("2026-11-23T19:00:00Z"). */
void mxs_fmt_rfc3339(time_t t, char *buf, size_t len);

#endif
