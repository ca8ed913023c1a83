/* Placeholder until the db stage lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"
#include "exitcode.h"

int cmd_db(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxsurvey db: not built yet\n");
	return MXS_EXIT_FAILURE;
}
