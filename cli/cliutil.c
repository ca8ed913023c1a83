#include "cliutil.h"

#include <stdio.h>

const char *cli_command_line(int argc, char **argv)
{
	static char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "mxsurvey");

	for (int i = 0; i < argc && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s", argv[i]);
	return buf;
}
