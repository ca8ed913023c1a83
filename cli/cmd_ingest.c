/* Placeholder until the ingest stage lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"
#include "exitcode.h"

int cmd_ingest(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxsurvey ingest: not built yet\n");
	return MXS_EXIT_FAILURE;
}
