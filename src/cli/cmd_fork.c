/*
 * cmd_fork.c - `dura fork`: start a new run from a checkpoint or from any
 * committed step of a run (time travel). The new run continues with the
 * node that followed; a worker or dura_run_execute runs it.
 */
#include "cli.h"

#include <stdio.h>

static const cli_opt fork_opts[] = {
	{"step", 0, "N", "fork from the state after step N of RUN"},
	{"checkpoint", 0, "ID", "fork from checkpoint ID (no RUN needed)"},
	{NULL, 0, NULL, NULL},
};

static int run_fork(cli *c, const cli_args *a)
{
	const char *step_text = cli_opt_get(a, "step");
	const char *cp = cli_opt_get(a, "checkpoint");
	const char *run = a->npos ? a->pos[0] : NULL;
	int64_t step = 0;
	if ((cp == NULL) == (step_text == NULL))
		return cli_usagef(c, "give either --step N (with RUN) or --checkpoint ID");
	if (step_text && !run)
		return cli_usagef(c, "--step needs the RUN to fork");
	if (cp && run)
		return cli_usagef(c, "--checkpoint names the run already; leave RUN out");
	if (step_text) {
		int rc = cli_parse_i64(c, "--step", step_text, 0, &step);
		if (rc)
			return rc;
	}
	int rc = cli_open(c);
	if (rc)
		return rc;
	dura_engine *eng;
	if ((rc = dura_engine_open(&eng, c->store, NULL)) != 0)
		return cli_fail(rc);
	char id[DURA_UUID_LEN + 1];
	rc = dura_run_fork(eng, cp ? NULL : run, cp, step, id);
	dura_engine_close(eng);
	if (rc)
		return cli_fail(rc);
	dura_record *r;
	if ((rc = dura_store_get_run(c->store, id, &r)) != 0)
		return cli_fail(rc);
	if (c->json) {
		rc = cli_jprint(cli_json_record(r));
	} else {
		printf("%s\n", id);
		fprintf(stderr, "forked %s: next node %s, %s\n", cp ? cp : run, *r->status ? r->status : "(end)",
		        dura_run_state_name(r->run_state));
	}
	dura_record_free(r);
	return rc;
}

const cli_command cli_cmd_fork = {
	.name = "fork",
	.args = "[RUN]",
	.summary = "start a new run from a checkpoint or a committed step",
	.help = "Prints the new run's id. The new run has the state after that step (or the\n"
	        "checkpoint's) and continues with the node that followed; executing it is\n"
	        "up to a program that has registered the workflow.",
	.opts = fork_opts,
	.min_pos = 0,
	.max_pos = 1,
	.store = CLI_NO_STORE,
	.run = run_fork,
};
