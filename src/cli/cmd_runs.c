/*
 * cmd_runs.c - `dura runs`: list runs newest first, with filters and
 * keyset pagination; `dura runs create`: create a run by hand (for
 * operators, tests and demos).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- runs [list] ------------------------------------------------------------- */

static const cli_opt list_opts[] = {
	{"workflow", 'w', "W", "only runs of workflow W"},
	{"state", 0, "S", "only runs in run state S (name or number: running, 2, ...)"},
	{"status", 0, "NODE", "only runs whose current node is NODE"},
	{"foreign-id", 'f', "F", "only runs with foreign id F"},
	{"limit", 'n', "N", "at most N runs (default 100, at most 10000)"},
	{"cursor", 0, "C", "continue after this run id (the 'next:' line of the previous page)"},
	{"waiting", 0, NULL, "only runs that wait durably (for a time, a signal or a child)"},
	{NULL, 0, NULL, NULL},
};

static int run_list(cli *c, const cli_args *a)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	dura_record_list list;
	const char *v;
	int rc;
	f.workflow_name = cli_opt_get(a, "workflow");
	f.status = cli_opt_get(a, "status");
	f.foreign_id = cli_opt_get(a, "foreign-id");
	f.cursor = cli_opt_get(a, "cursor");
	f.waiting = cli_flag(a, "waiting");
	if ((v = cli_opt_get(a, "state")) && (rc = cli_parse_run_state(c, "state", v, &f.run_state)))
		return rc;
	if ((v = cli_opt_get(a, "limit")) && (rc = cli_parse_size(c, "limit", v, 10000, &f.limit)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_list_runs(c->store, &f, &list);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject(), *runs = cli_jarray();
		for (size_t i = 0; i < list.count; i++)
			cli_jappend(runs, cli_json_record(&list.items[i]));
		cli_jset(o, "runs", runs);
		cli_jset(o, "next_cursor", cli_jstr(list.next_cursor));
		dura_record_list_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"RUN_ID", "WORKFLOW", "FOREIGN_ID", "STATE", "STATUS",
	                                  "STEPS",  "VERSION",  "UPDATED",    "WAIT"};
	cli_table *t = cli_table_new(9, hdr);
	for (size_t i = 0; i < list.count; i++) {
		const dura_record *r = &list.items[i];
		char steps[24], version[24], updated[24];
		snprintf(steps, sizeof(steps), "%" PRId64, r->step_no);
		snprintf(version, sizeof(version), "%" PRId64, r->version);
		const char *row[] = {r->run_id, r->workflow_name, r->foreign_id, dura_run_state_name(r->run_state),
		                     r->status, steps,            version,       cli_time(updated, r->updated_at),
		                     r->wait};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (list.next_cursor)
		printf("next: --cursor %s\n", list.next_cursor);
	dura_record_list_free(&list);
	return CLI_OK;
}

static const cli_command cmd_runs_list = {
	.name = "list",
	.summary = "list runs, newest first (the default of 'dura runs')",
	.opts = list_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_list,
};

/* ---- runs create ------------------------------------------------------------ */

static const cli_opt create_opts[] = {
	{"workflow", 'w', "W", "workflow name (required)"},
	{"foreign-id", 'f', "F", "business key: one active run per workflow and foreign id"},
	{"state", 0, "JSON", "initial state (default {})"},
	{"status", 0, "NODE", "start node (default none)"},
	{"run-state", 0, "S", "initial run state (default running)"},
	{"meta", 0, "JSON", "metadata to keep with the run"},
	{"run-id", 0, "ID", "use this run id instead of a new UUIDv7"},
	{NULL, 0, NULL, NULL},
};

static int run_create(cli *c, const cli_args *a)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	dura_record *rec = NULL;
	const char *v;
	int rc;
	req.workflow_name = cli_opt_get(a, "workflow");
	if (!req.workflow_name)
		return cli_usagef(c, "--workflow is required");
	req.foreign_id = cli_opt_get(a, "foreign-id");
	req.state = cli_opt_get(a, "state");
	req.status = cli_opt_get(a, "status");
	req.meta = cli_opt_get(a, "meta");
	req.run_id = cli_opt_get(a, "run-id");
	if ((v = cli_opt_get(a, "run-state")) && (rc = cli_parse_run_state(c, "run-state", v, &req.run_state)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_create_run(c->store, &req, &rec);
	if (rc && rc != DURA_EEXISTS) {
		rc = cli_fail(rc);
		dura_record_free(rec);
		return rc;
	}
	if (rc == DURA_EEXISTS && (!rec || !req.foreign_id || !*req.foreign_id)) {
		/* an explicit --run-id that is taken: an error, not the idempotent case */
		rc = cli_fail(rc);
		dura_record_free(rec);
		return rc;
	}
	int exit_code = CLI_OK;
	if (rc == DURA_EEXISTS) {
		/* the existing run's id on stdout, so scripts can carry on with it */
		cli_errorf("workflow '%s' already has an active run with foreign id '%s' (%s)", rec->workflow_name,
		           rec->foreign_id, dura_run_state_name(rec->run_state));
		exit_code = CLI_EXISTS;
	}
	if (c->json) {
		json_t *o = cli_json_record(rec);
		cli_jset(o, "created", json_boolean(rc == 0));
		cli_jprint(o);
	} else {
		printf("%s\n", rec->run_id);
	}
	dura_record_free(rec);
	return exit_code;
}

static const cli_command cmd_runs_create = {
	.name = "create",
	.summary = "create a run and print its id",
	.help = "Prints the new run's id. If the workflow already has an active run\n"
	        "(initiated, running or paused) with the same foreign id, nothing is\n"
	        "created: that run's id is printed, a note goes to stderr, and the exit\n"
	        "status is 3.",
	.opts = create_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_create,
};

static const cli_command *const runs_subs[] = {&cmd_runs_list, &cmd_runs_create, NULL};

const cli_command cli_cmd_runs = {
	.name = "runs",
	.summary = "list runs (newest first), or create one",
	.help = "Prints RUN_ID WORKFLOW FOREIGN_ID STATE STATUS STEPS VERSION UPDATED WAIT,\n"
	        "and 'next: --cursor X' when there are more. WAIT is what a waiting run\n"
	        "waits for: sleep, signal:NAME or child:RUN ('dura show RUN' has its\n"
	        "deadline), - for none. With --json: {\"runs\": [...], \"next_cursor\": ...},\n"
	        "each run with \"wait\" and \"parent_id\" (null for none).",
	.opts = list_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_list,
	.subs = runs_subs,
};
