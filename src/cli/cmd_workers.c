/*
 * cmd_workers.c - `dura workers`: the workers registered in the store,
 * live and dead (a worker is dead when its last heartbeat is older than
 * its lease), and the workflow versions with runs that no live worker
 * serves; `--prune` deletes the rows of dead workers.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt workers_opts[] = {
	{"prune", 0, NULL, "delete the rows of dead workers instead of listing"},
	{"older-than", 0, "MS", "with --prune: only workers dead for at least MS milliseconds (default 0)"},
	{NULL, 0, NULL, NULL},
};

static json_t *json_worker(const dura_worker_info *w)
{
	json_t *o = cli_jobject();
	cli_jset(o, "id", cli_jstr(w->id));
	cli_jset(o, "name", cli_jstr(w->name));
	cli_jset(o, "host", cli_jstr(w->host));
	cli_jset(o, "pid", cli_jint(w->pid));
	cli_jset(o, "threads", cli_jint(w->threads));
	cli_jset(o, "lease_ms", cli_jint(w->lease_ms));
	cli_jset(o, "workflows", cli_jparse(w->workflows));
	cli_jset(o, "held", cli_jint(w->held));
	cli_jset(o, "started_at", cli_jtime(w->started_at));
	cli_jset(o, "heartbeat_at", cli_jtime(w->heartbeat_at));
	cli_jset(o, "dead_after", cli_jtime(w->dead_after));
	cli_jset(o, "dead", json_boolean(w->dead));
	return o;
}

static int run_prune(cli *c, int64_t older)
{
	int64_t n = 0;
	int rc = dura_store_prune_workers(c->store, older, &n);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "pruned", cli_jint(n));
		return cli_jprint(o);
	}
	printf("pruned %" PRId64 " dead worker%s\n", n, n == 1 ? "" : "s");
	return CLI_OK;
}

/* The versions with runs that need a worker and have no live one, as
 * {"workflow", "version", "runs"} (an empty array on a store without
 * versions). */
static json_t *unserved_versions(cli *c)
{
	json_t *arr = cli_jarray();
	dura_run_count_list counts;
	if (dura_store_run_counts(c->store, NULL, &counts) != 0)
		return arr;
	cli_served *sv = cli_served_load(c);
	for (size_t i = 0; i < counts.count;) {
		const dura_run_count *k = &counts.items[i];
		int64_t waiting = 0;
		size_t j = i;
		for (; j < counts.count && strcmp(counts.items[j].workflow_name, k->workflow_name) == 0 &&
		       strcmp(counts.items[j].workflow_version, k->workflow_version) == 0;
		     j++)
			if (cli_run_waits_for_a_worker(counts.items[j].run_state))
				waiting += counts.items[j].count;
		if (waiting > 0 && cli_served_has(sv, k->workflow_name, k->workflow_version) == 0) {
			json_t *o = cli_jobject();
			cli_jset(o, "workflow", cli_jstr(k->workflow_name));
			cli_jset(o, "version", cli_jstr(k->workflow_version));
			cli_jset(o, "runs", cli_jint(waiting));
			cli_jappend(arr, o);
		}
		i = j;
	}
	cli_served_free(sv);
	dura_run_count_list_free(&counts);
	return arr;
}

/* "wf@v, wf@v2" of a row's workflows (names alone from an older worker). */
static char *serves_text(const char *workflows)
{
	json_t *a = json_loads(workflows, 0, NULL);
	size_t k, len = 0;
	json_t *e;
	char *out = cli_strdup("");
	json_array_foreach(a, k, e)
	{
		const char *wf = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "workflow"));
		const char *v = json_is_string(e) ? NULL : json_string_value(json_object_get(e, "version"));
		char *next = cli_asprintf("%s%s%s%s%s", out, len ? ", " : "", wf ? wf : "?", v ? "@" : "", v ? v : "");
		free(out);
		out = next;
		len = strlen(out);
	}
	json_decref(a);
	return out;
}

static int run_list(cli *c)
{
	dura_worker_list list;
	int rc = dura_store_list_workers(c->store, &list);
	if (rc)
		return cli_fail(rc);
	json_t *unserved = unserved_versions(c);
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < list.count; i++)
			cli_jappend(arr, json_worker(&list.items[i]));
		cli_jset(o, "workers", arr);
		cli_jset(o, "now", cli_jtime(list.now));
		cli_jset(o, "unserved", unserved);
		dura_worker_list_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"ID",      "NAME",      "HOST",  "PID",   "THREADS",
	                                  "HELD",    "STARTED",   "HEARTBEAT", "STATE", "SERVES"};
	cli_table *t = cli_table_new(10, hdr);
	for (size_t i = 0; i < list.count; i++) {
		const dura_worker_info *w = &list.items[i];
		char pid[24], threads[24], held[24], started[24], beat[24];
		snprintf(pid, sizeof(pid), "%" PRId64, w->pid);
		snprintf(threads, sizeof(threads), "%d", w->threads);
		snprintf(held, sizeof(held), "%" PRId64, w->held);
		char *id = cli_cell(w->id), *name = cli_cell(w->name), *host = cli_cell(w->host);
		char *st = serves_text(w->workflows), *serves = cli_cell(st);
		const char *row[] = {id,    name, host, pid, threads, held, cli_time(started, w->started_at),
		                     cli_time(beat, w->heartbeat_at), w->dead ? "dead" : "live", serves};
		cli_table_add(t, row);
		free(id);
		free(name);
		free(host);
		free(st);
		free(serves);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	size_t k;
	json_t *u;
	json_array_foreach(unserved, k, u)
	printf("unserved: workflow %s version %s has %" PRId64 " run%s to execute and no live worker serving it\n",
	       json_string_value(json_object_get(u, "workflow")),
	       *json_string_value(json_object_get(u, "version")) ? json_string_value(json_object_get(u, "version"))
	                                                         : "(none)",
	       (int64_t)json_integer_value(json_object_get(u, "runs")),
	       json_integer_value(json_object_get(u, "runs")) == 1 ? "" : "s");
	json_decref(unserved);
	dura_worker_list_free(&list);
	return CLI_OK;
}

static int run_workers(cli *c, const cli_args *a)
{
	const char *v = cli_opt_get(a, "older-than");
	int64_t older = 0;
	int rc;
	if (v && !cli_flag(a, "prune"))
		return cli_usagef(c, "--older-than goes with --prune");
	if (v && (rc = cli_parse_i64(c, "older-than", v, 0, &older)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	return cli_flag(a, "prune") ? run_prune(c, older) : run_list(c);
}

const cli_command cli_cmd_workers = {
	.name = "workers",
	.summary = "list the workers registered in the store (live or dead), or prune the dead",
	.help = "Prints ID NAME HOST PID THREADS HELD STARTED HEARTBEAT STATE SERVES (workflow@version, ...),\n"
	        "oldest start first, then an 'unserved:' line for each workflow version whose runs need a\n"
	        "worker while no live worker serves it (--json: \"unserved\"). A worker is\n"
	        "dead when its last heartbeat is older than its lease, judged by the store's clock at the\n"
	        "list (for the built-in stores, this machine's clock, as for leases). A worker deletes its\n"
	        "row when it stops and prunes rows dead for over an hour when it starts; --prune deletes\n"
	        "dead rows now. A store without a worker registry is an error.",
	.opts = workers_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_workers,
};
