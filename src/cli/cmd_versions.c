/*
 * cmd_versions.c - `dura versions`: every workflow version the store knows
 * (registered by an engine, or held by runs), its runs by state and the
 * live workers that serve it; and what `dura runs` and `dura workers` use
 * to tell a run that no live worker serves (cli_served).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what live workers serve ---------------------------------------------------- */

struct cli_served {
	int known; /* the store has a worker registry */
	size_t n;
	struct {
		char *wf, *version; /* version NULL: a worker from before versions, any version */
	} *items;
};

cli_served *cli_served_load(cli *c)
{
	cli_served *s = cli_malloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	dura_worker_list list;
	if (dura_store_list_workers(c->store, &list) != 0)
		return s; /* no registry: nothing is known */
	s->known = 1;
	size_t cap = 0;
	for (size_t i = 0; i < list.count; i++) {
		if (list.items[i].dead)
			continue;
		json_t *a = json_loads(list.items[i].workflows, 0, NULL);
		size_t k;
		json_t *e;
		json_array_foreach(a, k, e)
		{
			const char *wf = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "workflow"));
			const char *v = json_is_string(e) ? NULL : json_string_value(json_object_get(e, "version"));
			if (!wf)
				continue;
			if (s->n == cap) {
				cap = cap ? cap * 2 : 16;
				s->items = cli_realloc(s->items, cap * sizeof(*s->items));
			}
			s->items[s->n].wf = cli_strdup(wf);
			s->items[s->n].version = v ? cli_strdup(v) : NULL;
			s->n++;
		}
		json_decref(a);
	}
	dura_worker_list_free(&list);
	return s;
}

int cli_served_has(const cli_served *s, const char *wf, const char *version)
{
	if (!s || !s->known)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i].wf, wf) == 0 &&
		    (!s->items[i].version || !version || !*version || strcmp(s->items[i].version, version) == 0))
			return 1;
	return 0;
}

size_t cli_served_workers(const cli_served *s, const char *wf, const char *version)
{
	size_t n = 0;
	for (size_t i = 0; s && i < s->n; i++)
		n += strcmp(s->items[i].wf, wf) == 0 &&
		     (!s->items[i].version || !*version || strcmp(s->items[i].version, version) == 0);
	return n;
}

void cli_served_free(cli_served *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->items[i].wf);
		free(s->items[i].version);
	}
	free(s->items);
	free(s);
}

int cli_run_waits_for_a_worker(int run_state)
{
	return run_state == DURA_RUN_RUNNING || run_state == DURA_RUN_INITIATED || run_state == DURA_RUN_PAUSED;
}

/* ---- dura versions ------------------------------------------------------------------ */

/* One row: a version and what is known of it. */
typedef struct vrow {
	const char *wf, *version;
	const dura_workflow_def *def; /* NULL: runs hold it, no engine registered it */
	int64_t by_state[DURA_RUN_STATE_MAX + 1];
} vrow;

static vrow *row_of(vrow **rows, size_t *n, size_t *cap, const char *wf, const char *version)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*rows)[i].wf, wf) == 0 && strcmp((*rows)[i].version, version) == 0)
			return &(*rows)[i];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*rows = cli_realloc(*rows, *cap * sizeof(**rows));
	}
	vrow *r = &(*rows)[(*n)++];
	memset(r, 0, sizeof(*r));
	r->wf = wf;
	r->version = version;
	return r;
}

static int row_order(const void *a, const void *b)
{
	const vrow *x = a, *y = b;
	int c = strcmp(x->wf, y->wf);
	if (c)
		return c;
	int64_t fx = x->def ? x->def->first_seen_at : INT64_MAX, fy = y->def ? y->def->first_seen_at : INT64_MAX;
	if (fx != fy)
		return fx < fy ? -1 : 1;
	return strcmp(x->version, y->version);
}

static const cli_opt versions_opts[] = {
	{"workflow", 'w', "W", "only the versions of workflow W"},
	{NULL, 0, NULL, NULL},
};

static int run_versions(cli *c, const cli_args *a)
{
	const char *wf = cli_opt_get(a, "workflow");
	if (cli_open(c))
		return CLI_ERROR;
	dura_workflow_def_list defs;
	dura_run_count_list counts;
	int rc = dura_store_workflow_list(c->store, wf, &defs);
	if (rc)
		return cli_fail(rc);
	if ((rc = dura_store_run_counts(c->store, wf, &counts)) != 0) {
		dura_workflow_def_list_free(&defs);
		return cli_fail(rc);
	}
	cli_served *served = cli_served_load(c);
	vrow *rows = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < defs.count; i++)
		row_of(&rows, &n, &cap, defs.items[i].workflow_name, defs.items[i].version)->def = &defs.items[i];
	for (size_t i = 0; i < counts.count; i++) {
		const dura_run_count *k = &counts.items[i];
		if (k->run_state >= 0 && k->run_state <= DURA_RUN_STATE_MAX)
			row_of(&rows, &n, &cap, k->workflow_name, k->workflow_version)->by_state[k->run_state] += k->count;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), row_order);
	static const int shown[] = {DURA_RUN_RUNNING, DURA_RUN_PAUSED, DURA_RUN_COMPLETED, DURA_RUN_FAILED,
	                            DURA_RUN_CANCELLED};
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < n; i++) {
			const vrow *r = &rows[i];
			json_t *v = cli_jobject(), *runs = cli_jobject();
			cli_jset(v, "workflow", cli_jstr(r->wf));
			cli_jset(v, "version", cli_jstr(r->version));
			cli_jset(v, "registered", json_boolean(r->def != NULL));
			cli_jset(v, "definition", r->def ? cli_jparse(r->def->definition) : json_null());
			cli_jset(v, "first_seen_at", cli_jtime(r->def ? r->def->first_seen_at : 0));
			cli_jset(v, "last_seen_at", cli_jtime(r->def ? r->def->last_seen_at : 0));
			for (int st = 1; st <= DURA_RUN_STATE_MAX; st++)
				if (r->by_state[st])
					cli_jset(runs, dura_run_state_name(st), cli_jint(r->by_state[st]));
			cli_jset(v, "runs", runs);
			if (served->known)
				cli_jset(v, "live_workers", cli_jint((int64_t)cli_served_workers(served, r->wf, r->version)));
			else
				cli_jset(v, "live_workers", json_null());
			int64_t waiting = r->by_state[DURA_RUN_RUNNING] + r->by_state[DURA_RUN_INITIATED] +
			                  r->by_state[DURA_RUN_PAUSED];
			cli_jset(v, "unserved",
			         json_boolean(waiting > 0 && cli_served_has(served, r->wf, r->version) == 0));
			cli_jappend(arr, v);
		}
		cli_jset(o, "versions", arr);
		rc = cli_jprint(o);
	} else {
		static const char *const hdr[] = {"WORKFLOW", "VERSION",  "FIRST_SEEN", "WORKERS", "RUNNING",
		                                  "PAUSED",   "COMPLETED", "FAILED",    "CANCELLED"};
		cli_table *t = cli_table_new(9, hdr);
		for (size_t i = 0; i < n; i++) {
			const vrow *r = &rows[i];
			char first[24], workers[32], num[5][24];
			for (int k = 0; k < 5; k++)
				snprintf(num[k], sizeof(num[k]), "%" PRId64, r->by_state[shown[k]]);
			int64_t waiting = r->by_state[DURA_RUN_RUNNING] + r->by_state[DURA_RUN_INITIATED] +
			                  r->by_state[DURA_RUN_PAUSED];
			if (!served->known)
				snprintf(workers, sizeof(workers), "?");
			else if (waiting > 0 && cli_served_has(served, r->wf, r->version) == 0)
				snprintf(workers, sizeof(workers), "0 (unserved)");
			else
				snprintf(workers, sizeof(workers), "%zu", cli_served_workers(served, r->wf, r->version));
			char *w = cli_cell(r->wf), *v = cli_cell(*r->version ? r->version : "(none)");
			const char *row[] = {w,      v,      r->def ? cli_time(first, r->def->first_seen_at) : "-", workers,
			                     num[0], num[1], num[2], num[3], num[4]};
			cli_table_add(t, row);
			free(w);
			free(v);
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
		rc = CLI_OK;
	}
	free(rows);
	cli_served_free(served);
	dura_run_count_list_free(&counts);
	dura_workflow_def_list_free(&defs);
	return rc;
}

const cli_command cli_cmd_versions = {
	.name = "versions",
	.summary = "list workflow versions: their runs by state and the live workers serving them",
	.help = "Prints WORKFLOW VERSION FIRST_SEEN WORKERS RUNNING PAUSED COMPLETED FAILED CANCELLED, one\n"
	        "row per version an engine registered or a run holds ((none): runs from before versions,\n"
	        "which any worker of the workflow takes). WORKERS counts the live workers serving the\n"
	        "version; '0 (unserved)' marks a version with runs to execute that no live worker serves:\n"
	        "start a worker of that version, or move its runs ('dura runs migrate-version'). With\n"
	        "--json each version has its definition (start node, nodes and edges).",
	.opts = versions_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_versions,
};
