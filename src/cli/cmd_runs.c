/*
 * cmd_runs.c - `dura runs`: list runs newest first, with filters and
 * keyset pagination, marking the runs no live worker serves; `dura runs
 * create`: create a run by hand (for operators, tests and demos); `dura
 * runs migrate-version`: move runs to another version of their workflow.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- runs [list] ------------------------------------------------------------- */

static const cli_opt list_opts[] = {
	{"workflow", 'w', "W", "only runs of workflow W"},
	{"state", 0, "S", "only runs in run state S (name or number: running, 2, ...)"},
	{"status", 0, "NODE", "only runs whose current node is NODE"},
	{"foreign-id", 'f', "F", "only runs with foreign id F"},
	{"limit", 'n', "N", "at most N runs (default 100, at most 10000)"},
	{"cursor", 0, "C", "continue after this run id (the 'next:' line of the previous page)"},
	{"waiting", 0, NULL, "only runs that wait durably (for a time, a signal or a child)"},
	{"version", 'V', "V", "only runs on workflow version V ('' for runs without one)"},
	{NULL, 0, NULL, NULL},
};

/* Whether a run is stranded: it needs a worker and no live one serves its
 * version (-1: the store keeps no registry, so nothing is known). */
static int unserved(const cli_served *sv, const dura_record *r)
{
	if (!cli_run_waits_for_a_worker(r->run_state))
		return 0;
	int has = cli_served_has(sv, r->workflow_name, r->workflow_version ? r->workflow_version : "");
	return has < 0 ? -1 : !has;
}

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
	f.workflow_version = cli_opt_get(a, "version");
	if ((v = cli_opt_get(a, "state")) && (rc = cli_parse_run_state(c, "state", v, &f.run_state)))
		return rc;
	if ((v = cli_opt_get(a, "limit")) && (rc = cli_parse_size(c, "limit", v, 10000, &f.limit)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_list_runs(c->store, &f, &list);
	if (rc)
		return cli_fail(rc);
	cli_served *sv = cli_served_load(c);
	if (c->json) {
		json_t *o = cli_jobject(), *runs = cli_jarray();
		for (size_t i = 0; i < list.count; i++) {
			json_t *r = cli_json_record(&list.items[i]);
			int u = unserved(sv, &list.items[i]);
			cli_jset(r, "unserved", u < 0 ? json_null() : json_boolean(u));
			cli_jappend(runs, r);
		}
		cli_jset(o, "runs", runs);
		cli_jset(o, "next_cursor", cli_jstr(list.next_cursor));
		dura_record_list_free(&list);
		cli_served_free(sv);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"RUN_ID",  "WORKFLOW", "FOREIGN_ID", "STATE", "STATUS",
	                                  "STEPS",   "VERSION",  "UPDATED",    "WAIT",  "WF_VERSION"};
	cli_table *t = cli_table_new(10, hdr);
	size_t stranded = 0;
	for (size_t i = 0; i < list.count; i++) {
		const dura_record *r = &list.items[i];
		char steps[24], version[24], updated[24], wfv[DURA_MAX_VERSION_LEN + 16];
		snprintf(steps, sizeof(steps), "%" PRId64, r->step_no);
		snprintf(version, sizeof(version), "%" PRId64, r->version);
		int u = unserved(sv, r) == 1;
		stranded += u;
		snprintf(wfv, sizeof(wfv), "%s%s", r->workflow_version && *r->workflow_version ? r->workflow_version : "-",
		         u ? " (unserved)" : "");
		const char *row[] = {r->run_id, r->workflow_name, r->foreign_id, dura_run_state_name(r->run_state),
		                     r->status, steps,            version,       cli_time(updated, r->updated_at),
		                     r->wait,   wfv};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	cli_served_free(sv);
	if (stranded)
		fprintf(stderr, "dura: %zu run%s above %s on a workflow version no live worker serves (see 'dura versions')\n",
		        stranded, stranded == 1 ? "" : "s", stranded == 1 ? "is" : "are");
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
	{"version", 'V', "V", "the workflow version the run executes on (default none: any worker of the workflow)"},
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
	req.workflow_version = cli_opt_get(a, "version");
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

/* ---- runs migrate-version --------------------------------------------------- */

static const cli_opt migrate_opts[] = {
	{"to", 0, "V", "the version to move to (required): one an engine registered"},
	{"workflow", 'w', "W", "every run of workflow W that has not ended (with --from)"},
	{"from", 0, "V", "with --workflow: only the runs on version V ('' for runs without one)"},
	{NULL, 0, NULL, NULL},
};

/* Move one run; prints what happened; 1 when it moved, 0 when refused. */
static int migrate_one(cli *c, const char *run_id, const char *to, json_t *moved, json_t *refused)
{
	dura_record *rec = NULL;
	int rc = dura_store_migrate_run(c->store, run_id, to, &rec);
	if (rc == 0) {
		if (moved)
			cli_jappend(moved, cli_jstr(run_id));
		else
			printf("moved %s to version %s\n", run_id, to);
		dura_record_free(rec);
		return 1;
	}
	const dura_error *e = dura_error_last();
	const char *why = e && e->message ? e->message : dura_strerror(rc);
	if (refused) {
		json_t *o = cli_jobject();
		cli_jset(o, "run_id", cli_jstr(run_id));
		cli_jset(o, "error", cli_jstr(why));
		cli_jappend(refused, o);
	} else {
		cli_errorf("%s", why);
	}
	return 0;
}

static int run_migrate(cli *c, const cli_args *a)
{
	const char *to = cli_opt_get(a, "to"), *wf = cli_opt_get(a, "workflow"), *from = cli_opt_get(a, "from");
	if (!to)
		return cli_usagef(c, "--to is required");
	if (a->npos == 0 && !wf)
		return cli_usagef(c, "name runs, or --workflow W --from V");
	if (a->npos > 0 && (wf || from))
		return cli_usagef(c, "name runs, or --workflow W --from V, not both");
	if (wf && !from)
		return cli_usagef(c, "--workflow goes with --from V (the version its runs move from)");
	if (cli_open(c))
		return CLI_ERROR;
	json_t *moved = c->json ? cli_jarray() : NULL, *refused = c->json ? cli_jarray() : NULL;
	size_t ok = 0, bad = 0;
	for (int i = 0; i < a->npos; i++) {
		if (migrate_one(c, a->pos[i], to, moved, refused))
			ok++;
		else
			bad++;
	}
	if (wf) {
		/* page through the runs of the version first, then move them:
		 * moving changes no run id, so the pages stay as they are */
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.workflow_name = wf;
		f.workflow_version = from;
		f.limit = 1000;
		char *cursor = NULL;
		for (;;) {
			dura_record_list l;
			f.cursor = cursor;
			int rc = dura_store_list_runs(c->store, &f, &l);
			if (rc) {
				free(cursor);
				json_decref(moved);
				json_decref(refused);
				return cli_fail(rc);
			}
			for (size_t i = 0; i < l.count; i++) {
				if (!cli_run_waits_for_a_worker(l.items[i].run_state))
					continue;
				if (migrate_one(c, l.items[i].run_id, to, moved, refused))
					ok++;
				else
					bad++;
			}
			free(cursor);
			cursor = l.next_cursor ? cli_strdup(l.next_cursor) : NULL;
			dura_record_list_free(&l);
			if (!cursor)
				break;
		}
	}
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "moved", moved);
		cli_jset(o, "refused", refused);
		cli_jprint(o);
	} else if (wf) {
		printf("%zu run%s moved, %zu refused\n", ok, ok == 1 ? "" : "s", bad);
	}
	return bad ? CLI_ERROR : CLI_OK;
}

static const cli_command cmd_runs_migrate = {
	.name = "migrate-version",
	.args = "[RUN...]",
	.summary = "move runs to another version of their workflow",
	.help = "Moves each RUN, or every run of --workflow W on version --from V that has not ended, to\n"
	        "version --to: workers of that version take them from there. A run is refused when it\n"
	        "has ended, when a worker holds it now (pause it first), when no engine registered the\n"
	        "version, or when the version has no node the run is at (the message names it); the\n"
	        "others move all the same, and the exit status is 1 if any was refused. With --json:\n"
	        "{\"moved\": [ids], \"refused\": [{\"run_id\", \"error\"}]}.",
	.opts = migrate_opts,
	.min_pos = 0,
	.max_pos = 1000,
	.store = CLI_STORE,
	.run = run_migrate,
};

static const cli_command *const runs_subs[] = {&cmd_runs_list, &cmd_runs_create, &cmd_runs_migrate, NULL};

const cli_command cli_cmd_runs = {
	.name = "runs",
	.summary = "list runs (newest first), or create one",
	.help = "Prints RUN_ID WORKFLOW FOREIGN_ID STATE STATUS STEPS VERSION UPDATED WAIT\n"
	        "WF_VERSION, and 'next: --cursor X' when there are more. VERSION is the\n"
	        "record's change counter; WF_VERSION the workflow version the run executes\n"
	        "on, with '(unserved)' when the run needs a worker and no live worker\n"
	        "serves that version (a note on stderr counts them). WAIT is what a\n"
	        "waiting run waits for: sleep, signal:NAME or child:RUN ('dura show RUN'\n"
	        "has its deadline), - for none. With --json: {\"runs\": [...],\n"
	        "\"next_cursor\": ...}, each run with \"wait\", \"parent_id\" and\n"
	        "\"workflow_version\" (null for none) and \"unserved\" (null when the store\n"
	        "keeps no worker registry).",
	.opts = list_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_list,
	.subs = runs_subs,
};
