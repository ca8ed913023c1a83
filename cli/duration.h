/* Command-line durations: "30" or "30s" (seconds), "500ms", "2m", "1h"; fractions allowed. */
#ifndef MXS_DURATION_H
#define MXS_DURATION_H

/* Milliseconds, or -1 when s is not a duration. */
long long parse_duration_ms(const char *s);

#endif
