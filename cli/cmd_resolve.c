/* Placeholder until the resolve stage lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"
#include "exitcode.h"

int cmd_resolve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxsurvey resolve: not built yet\n");
	return MXS_EXIT_FAILURE;
}
