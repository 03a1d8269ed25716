/*
 * cmd_checkpoints.c - `dura checkpoints [RUN]`: list checkpoints, newest
 * first; `save` and `rm` manage them by hand.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static json_t *json_checkpoint(const dura_checkpoint *cp, int with_state)
{
	json_t *o = cli_jobject();
	cli_jset(o, "checkpoint_id", cli_jstr(cp->checkpoint_id));
	cli_jset(o, "run_id", cli_jstr(cp->run_id));
	cli_jset(o, "step", cli_jint(cp->step));
	if (with_state)
		cli_jset(o, "state", cli_jparse(cp->state));
	cli_jset(o, "created_at", cli_jtime(cp->created_at));
	cli_jset(o, "updated_at", cli_jtime(cp->updated_at));
	return o;
}

static int run_list(cli *c, const cli_args *a)
{
	dura_checkpoint_list list;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_checkpoint_list(c->store, a->npos ? a->pos[0] : NULL, &list);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < list.count; i++)
			cli_jappend(arr, json_checkpoint(&list.items[i], 0));
		cli_jset(o, "checkpoints", arr);
		dura_checkpoint_list_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"CHECKPOINT_ID", "RUN_ID", "STEP", "UPDATED"};
	cli_table *t = cli_table_new(4, hdr);
	for (size_t i = 0; i < list.count; i++) {
		const dura_checkpoint *cp = &list.items[i];
		char step[24], updated[24];
		snprintf(step, sizeof(step), "%" PRId64, cp->step);
		const char *row[] = {cp->checkpoint_id, cp->run_id, step, cli_time(updated, cp->updated_at)};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	dura_checkpoint_list_free(&list);
	return CLI_OK;
}

static const cli_command cmd_cp_ls = {
	.name = "ls",
	.args = "[RUN]",
	.summary = "list checkpoints, of one run or of all (the default of 'dura checkpoints')",
	.min_pos = 0,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_list,
};

static const cli_opt save_opts[] = {
	{"step", 0, "N", "snapshot the state after step N (default: the last step)"},
	{NULL, 0, NULL, NULL},
};

static int run_save(cli *c, const cli_args *a)
{
	const char *cp_id = a->pos[0], *run_id = a->pos[1], *v;
	dura_step *step = NULL;
	int64_t n;
	int rc;
	if ((v = cli_opt_get(a, "step")) && (rc = cli_parse_i64(c, "step", v, 0, &n)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	if (v) {
		rc = dura_store_get_step(c->store, run_id, n, &step);
	} else {
		rc = dura_store_load_latest(c->store, run_id, &step);
	}
	if (rc)
		return cli_fail(rc);
	rc = dura_store_checkpoint_save(c->store, cp_id, run_id, step->step, step->state);
	if (rc) {
		rc = cli_fail(rc);
		dura_step_free(step);
		return rc;
	}
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "checkpoint_id", cli_jstr(cp_id));
		cli_jset(o, "run_id", cli_jstr(run_id));
		cli_jset(o, "step", cli_jint(step->step));
		cli_jprint(o);
	} else {
		char *id = cli_cell(cp_id);
		printf("saved checkpoint %s (step %" PRId64 ")\n", id, step->step);
		free(id);
	}
	dura_step_free(step);
	return CLI_OK;
}

static const cli_command cmd_cp_save = {
	.name = "save",
	.args = "CHECKPOINT_ID RUN",
	.summary = "save (or overwrite) a checkpoint of a run's step",
	.opts = save_opts,
	.min_pos = 2,
	.max_pos = 2,
	.store = CLI_STORE,
	.run = run_save,
};

static int run_rm(cli *c, const cli_args *a)
{
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_checkpoint_delete(c->store, a->pos[0]);
	if (rc)
		return cli_fail(rc);
	return cli_done(c, "deleted", "deleted checkpoint", a->pos[0]);
}

static const cli_command cmd_cp_rm = {
	.name = "rm",
	.args = "CHECKPOINT_ID",
	.summary = "delete a checkpoint",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_rm,
};

static const cli_command *const cp_subs[] = {&cmd_cp_ls, &cmd_cp_save, &cmd_cp_rm, NULL};

const cli_command cli_cmd_checkpoints = {
	.name = "checkpoints",
	.args = "[RUN]",
	.summary = "list checkpoints (of one run or all), save or delete one",
	.help = "Prints CHECKPOINT_ID RUN_ID STEP UPDATED, newest first.",
	.min_pos = 0,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_list,
	.subs = cp_subs,
};
