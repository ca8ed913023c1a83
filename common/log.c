#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The only process-wide setting: the log threshold, written once at start-up. */
static enum mxs_log_level threshold = MXS_LOG_INFO;

static const char *const level_names[MXS_LOG_LEVEL_LAST] = {
	[MXS_LOG_ERROR] = "error",
	[MXS_LOG_WARN] = "warn",
	[MXS_LOG_INFO] = "info",
	[MXS_LOG_DEBUG] = "debug",
};

void mxs_log_set_level(enum mxs_log_level level)
{
	threshold = level;
}

enum mxs_log_level mxs_log_get_level(void)
{
	return threshold;
}

int mxs_log_level_parse(const char *name)
{
	for (int i = 0; i < MXS_LOG_LEVEL_LAST; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void mxs_log(enum mxs_log_level level, const char *subsys, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level > threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s ", level_names[level], subsys);
	va_start(ap, fmt);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
