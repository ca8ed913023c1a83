#include "duration.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

long long parse_duration_ms(const char *s)
{
	char *end;
	double v = strtod(s, &end), mult;

	if (end == s || !isfinite(v) || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		return -1;
	if (v * mult > 1e12)
		return -1;
	return (long long)(v * mult + 0.5);
}
