/* Placeholder until the scan stage lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"
#include "exitcode.h"

int cmd_scan(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxsurvey scan: not built yet\n");
	return MXS_EXIT_FAILURE;
}
