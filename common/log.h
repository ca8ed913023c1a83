/*
 * Log lines on stderr: "<time> <level> <subsystem> <event> key=value ...".
 * One line per call, written with a single write(2) so concurrent writers do not
 * interleave. The threshold is per process, set once at start-up by the CLI.
 */
#ifndef MXS_LOG_H
#define MXS_LOG_H

enum mxs_log_level {
	MXS_LOG_ERROR,
	MXS_LOG_WARN,
	MXS_LOG_INFO,
	MXS_LOG_DEBUG,
	MXS_LOG_LEVEL_LAST
};

/* Set the threshold; messages above it are dropped. Default MXS_LOG_INFO. */
void mxs_log_set_level(enum mxs_log_level level);
enum mxs_log_level mxs_log_get_level(void);

/* Parse "error", "warn", "info", "debug"; returns -1 for anything else. */
int mxs_log_level_parse(const char *name);

void mxs_log(enum mxs_log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define mxs_err(sub, ...)   mxs_log(MXS_LOG_ERROR, sub, __VA_ARGS__)
#define mxs_warn(sub, ...)  mxs_log(MXS_LOG_WARN, sub, __VA_ARGS__)
#define mxs_info(sub, ...)  mxs_log(MXS_LOG_INFO, sub, __VA_ARGS__)
#define mxs_debug(sub, ...) \
	do { if (mxs_log_get_level() >= MXS_LOG_DEBUG) mxs_log(MXS_LOG_DEBUG, sub, __VA_ARGS__); } while (0)

#endif
