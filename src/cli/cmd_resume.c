/*
 * cmd_resume.c - `dura resume RUN`: move a run to running.
 */
#include "cli.h"

static int run_resume(cli *c, const cli_args *a)
{
	return cli_transition(c, a, DURA_RUN_RUNNING);
}

const cli_command cli_cmd_resume = {
	.name = "resume",
	.args = "RUN",
	.summary = "resume a paused (or failed) run",
	.help = "Refused (exit 1) when the run's state does not allow it.",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_resume,
};
