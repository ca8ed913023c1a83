/* Placeholder until the survey stage lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"
#include "exitcode.h"

int cmd_survey(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxsurvey survey: not built yet\n");
	return MXS_EXIT_FAILURE;
}
