/*
 * cmd_cancel.c - `dura cancel RUN`: move a run to cancelled.
 */
#include "cli.h"

static int run_cancel(cli *c, const cli_args *a)
{
	return cli_transition(c, a, DURA_RUN_CANCELLED);
}

const cli_command cli_cmd_cancel = {
	.name = "cancel",
	.args = "RUN",
	.summary = "cancel a run (it will not run again)",
	.help = "Refused (exit 1) when the run's state does not allow it.",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_cancel,
};
