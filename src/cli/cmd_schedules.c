/*
 * cmd_schedules.c - `dura schedules ls|set|rm`: the schedules in the store
 * (cron lines that start a run of a workflow at each tick).
 *
 * The CLI registers no workflows: `set` writes the schedule as it is
 * (dura_store_schedule_set checks the cron line and the zone, not the
 * workflow). Workers fire only the schedules of workflows they register.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static json_t *json_schedule(const dura_schedule *s)
{
	json_t *o = cli_jobject();
	cli_jset(o, "name", cli_jstr(s->name));
	cli_jset(o, "cron", cli_jstr(s->cron));
	cli_jset(o, "zone", cli_jstr(s->zone));
	cli_jset(o, "workflow", cli_jstr(s->workflow_name));
	cli_jset(o, "state", cli_jparse(s->state));
	cli_jset(o, "catch_up", cli_jint(s->catch_up));
	cli_jset(o, "next_tick", cli_jtime(s->next_tick));
	cli_jset(o, "created_at", cli_jtime(s->created_at));
	cli_jset(o, "updated_at", cli_jtime(s->updated_at));
	return o;
}

/* ---- ls ---------------------------------------------------------------------- */

static int run_ls(cli *c, const cli_args *a)
{
	dura_schedules list;
	(void)a;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_schedule_list(c->store, &list);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < list.count; i++)
			cli_jappend(arr, json_schedule(&list.items[i]));
		cli_jset(o, "schedules", arr);
		dura_schedules_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"NAME", "CRON", "ZONE", "WORKFLOW", "CATCH_UP", "NEXT_TICK"};
	cli_table *t = cli_table_new(6, hdr);
	for (size_t i = 0; i < list.count; i++) {
		const dura_schedule *s = &list.items[i];
		char catch_up[24], next[24];
		snprintf(catch_up, sizeof(catch_up), "%d", s->catch_up);
		const char *row[] = {s->name, s->cron, s->zone, s->workflow_name, catch_up, cli_time(next, s->next_tick)};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	dura_schedules_free(&list);
	return CLI_OK;
}

static const cli_command cmd_schedules_ls = {
	.name = "ls",
	.summary = "list the schedules by name (the default of 'dura schedules')",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_ls,
};

/* ---- set ----------------------------------------------------------------------- */

static const cli_opt set_opts[] = {
	{"zone", 'z', "Z", "the cron line's time zone: UTC (default) or an IANA name (Europe/Paris)"},
	{"state", 0, "JSON", "the initial state of each tick's run (default {})"},
	{"catch-up", 0, "N", "after an outage, fire at most N missed ticks (0 to 1000; default 0: the latest only)"},
	{NULL, 0, NULL, NULL},
};

static int run_set(cli *c, const cli_args *a)
{
	dura_schedule_spec spec = DURA_SCHEDULE_SPEC_INIT;
	dura_schedule *s = NULL;
	const char *v;
	int64_t catch_up = 0;
	int rc;
	spec.name = a->pos[0];
	spec.cron = a->pos[1];
	spec.workflow = a->pos[2];
	spec.zone = cli_opt_get(a, "zone");
	spec.state = cli_opt_get(a, "state");
	if ((v = cli_opt_get(a, "catch-up")) && (rc = cli_parse_i64(c, "catch-up", v, 0, &catch_up)))
		return rc;
	if (catch_up > 1000)
		return cli_usagef(c, "--catch-up: '%s' is more than 1000", v);
	spec.catch_up = (int)catch_up;
	if (cli_open(c))
		return CLI_ERROR;
	if ((rc = dura_store_schedule_set(c->store, &spec)) != 0)
		return cli_fail(rc);
	if ((rc = dura_store_schedule_get(c->store, spec.name, &s)) != 0)
		return cli_fail(rc);
	if (c->json) {
		cli_jprint(json_schedule(s));
	} else {
		char t[24];
		char *name = cli_cell(s->name), *wf = cli_cell(s->workflow_name), *zone = cli_cell(s->zone);
		printf("schedule %s: workflow %s, next tick %s (%s)\n", name, wf, cli_time(t, s->next_tick), zone);
		free(name);
		free(wf);
		free(zone);
	}
	dura_schedule_free(s);
	return CLI_OK;
}

static const cli_command cmd_schedules_set = {
	.name = "set",
	.args = "NAME CRON WORKFLOW",
	.summary = "create or replace a schedule",
	.help = "CRON is one argument (quote it): 5 fields (minute hour day month weekday),\n"
	        "6 with seconds first, or a macro (@hourly, @daily, ...). A bad field or zone\n"
	        "fails (exit 1) naming it, and nothing is written. Prints the next tick (UTC).\n"
	        "\n"
	        "The CLI registers no workflows, so the workflow's name is not checked here:\n"
	        "workers fire only the schedules of workflows they register (each tick\n"
	        "exactly once across all of them). With --json: the schedule.",
	.opts = set_opts,
	.min_pos = 3,
	.max_pos = 3,
	.store = CLI_STORE,
	.run = run_set,
};

/* ---- rm ------------------------------------------------------------------------ */

static int run_rm(cli *c, const cli_args *a)
{
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_schedule_delete(c->store, a->pos[0]);
	if (rc == DURA_ENOTFOUND) {
		char *name = cli_cell(a->pos[0]);
		cli_errorf("no schedule named %s", name);
		free(name);
		return CLI_ERROR;
	}
	if (rc)
		return cli_fail(rc);
	return cli_done(c, "deleted", "deleted schedule", a->pos[0]);
}

static const cli_command cmd_schedules_rm = {
	.name = "rm",
	.args = "NAME",
	.summary = "delete a schedule (the runs it started stay)",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_rm,
};

static const cli_command *const schedules_subs[] = {&cmd_schedules_ls, &cmd_schedules_set, &cmd_schedules_rm, NULL};

const cli_command cli_cmd_schedules = {
	.name = "schedules",
	.summary = "list schedules (cron lines that start runs), set or delete one",
	.help = "Prints NAME CRON ZONE WORKFLOW CATCH_UP NEXT_TICK (UTC), by name. With\n"
	        "--json: {\"schedules\": [...]}. Workers fire only the schedules of\n"
	        "workflows they register.",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_ls,
	.subs = schedules_subs,
};
