/*
 * cmd_pause.c - `dura pause RUN`: move a run to paused.
 */
#include "cli.h"

static int run_pause(cli *c, const cli_args *a)
{
	return cli_transition(c, a, DURA_RUN_PAUSED);
}

const cli_command cli_cmd_pause = {
	.name = "pause",
	.args = "RUN",
	.summary = "pause a run (it stops after its current step)",
	.help = "Refused (exit 1) when the run's state does not allow it.",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_pause,
};
