/*
 * cmd_show.c - `dura show RUN`: a run's record and its step history, what
 * it waits for, its parent and children, and its pending signals.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt show_opts[] = {
	{"states", 's', NULL, "also print the state after each step"},
	{NULL, 0, NULL, NULL},
};

#define W 16 /* width of the field names */

static void print_record(const dura_record *r)
{
	char t[24], *s;
	cli_kv(stdout, W, "run_id", r->run_id);
	cli_kv(stdout, W, "workflow", r->workflow_name);
	cli_kv(stdout, W, "foreign_id", r->foreign_id);
	s = cli_asprintf("%s (%d)", dura_run_state_name(r->run_state), r->run_state);
	cli_kv(stdout, W, "run_state", s);
	free(s);
	cli_kv(stdout, W, "status", r->status);
	s = cli_wait_text(r);
	cli_kv(stdout, W, "wait", s);
	free(s);
	cli_kv(stdout, W, "parent_id", r->parent_id);
	s = cli_asprintf("%" PRId64, r->version);
	cli_kv(stdout, W, "version", s);
	free(s);
	s = cli_asprintf("%" PRId64, r->step_no);
	cli_kv(stdout, W, "steps", s);
	free(s);
	s = cli_asprintf("%d", r->attempt);
	cli_kv(stdout, W, "attempt", s);
	free(s);
	cli_kv(stdout, W, "error", r->error);
	s = cli_json_oneline(r->meta);
	cli_kv(stdout, W, "meta", s);
	free(s);
	s = cli_asprintf("%d", r->priority);
	cli_kv(stdout, W, "priority", s);
	free(s);
	cli_kv(stdout, W, "concurrency_key", r->concurrency_key);
	cli_kv(stdout, W, "lease_owner", r->lease_owner);
	cli_kv(stdout, W, "lease_expires_at", cli_time(t, r->lease_expires_at));
	cli_kv(stdout, W, "next_run_at", cli_time(t, r->next_run_at));
	cli_kv(stdout, W, "created_at", cli_time(t, r->created_at));
	cli_kv(stdout, W, "updated_at", cli_time(t, r->updated_at));
	printf("state:\n");
	cli_print_json_text(stdout, r->state, 2);
}

/* Each line of `text` prefixed with `indent` spaces. */
static void print_indented(const char *text, int indent)
{
	json_t *j = text && *text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	const char *p = s ? s : (text && *text ? text : "-");
	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		printf("%*s%.*s\n", indent, "", n, p);
		p += n;
		if (*p)
			p++;
	}
	free(s);
}

static void print_steps(const dura_step_list *steps, int with_states)
{
	printf("\nsteps (%zu):\n", steps->count);
	size_t wn = 0, wnode = 0;
	char **num = cli_malloc((steps->count ? steps->count : 1) * sizeof(char *));
	char **node = cli_malloc((steps->count ? steps->count : 1) * sizeof(char *));
	for (size_t i = 0; i < steps->count; i++) {
		num[i] = cli_asprintf("#%" PRId64, steps->items[i].step);
		node[i] = cli_cell(steps->items[i].node_id);
		if (strlen(num[i]) > wn)
			wn = strlen(num[i]);
		if (strlen(node[i]) > wnode)
			wnode = strlen(node[i]);
	}
	for (size_t i = 0; i < steps->count; i++) {
		char t[24];
		printf("%-*s  %-*s  %s\n", (int)wn, num[i], (int)wnode, node[i],
		       cli_time(t, steps->items[i].created_at));
		if (with_states)
			print_indented(steps->items[i].state, 4);
		free(num[i]);
		free(node[i]);
	}
	free(num);
	free(node);
}

/* The run's children: every page of the store's list. */
typedef struct children {
	size_t npages, count;
	dura_record_list *pages;
} children;

static void children_free(children *k)
{
	for (size_t i = 0; i < k->npages; i++)
		dura_record_list_free(&k->pages[i]);
	free(k->pages);
	k->pages = NULL;
	k->npages = k->count = 0;
}

/* The i-th child in the store's order (by run id). */
static const dura_record *child_at(const children *k, size_t i)
{
	size_t n = i;
	for (size_t p = 0; p < k->npages; p++) {
		if (n < k->pages[p].count)
			return &k->pages[p].items[n];
		n -= k->pages[p].count;
	}
	return NULL;
}

static int list_children(cli *c, const char *run_id, children *out)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	char *cursor = NULL;
	int rc = 0;
	f.parent_id = run_id;
	f.limit = 500;
	for (;;) {
		out->pages = cli_realloc(out->pages, (out->npages + 1) * sizeof(dura_record_list));
		dura_record_list *page = &out->pages[out->npages];
		f.cursor = cursor;
		rc = dura_store_list_runs(c->store, &f, page);
		if (rc)
			break;
		out->npages++;
		out->count += page->count;
		free(cursor);
		cursor = page->next_cursor ? cli_strdup(page->next_cursor) : NULL;
		if (!cursor || page->count == 0)
			break;
	}
	free(cursor);
	if (rc)
		children_free(out);
	return rc;
}

static void print_children(const children *kids)
{
	printf("\nchildren (%zu):\n", kids->count);
	static const char *const hdr[] = {"RUN_ID", "WORKFLOW", "STATE", "STATUS", "WAIT"};
	cli_table *t = cli_table_new(5, hdr);
	for (size_t i = 0; i < kids->count; i++) {
		const dura_record *k = child_at(kids, i);
		const char *row[] = {k->run_id, k->workflow_name, dura_run_state_name(k->run_state), k->status, k->wait};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}

static void print_signals(const dura_signal_list *sigs)
{
	printf("\nsignals pending (%zu):\n", sigs->count);
	static const char *const hdr[] = {"SIGNAL_ID", "NAME", "CREATED", "PAYLOAD"};
	cli_table *t = cli_table_new(4, hdr);
	for (size_t i = 0; i < sigs->count; i++) {
		const dura_signal *s = &sigs->items[i];
		char created[24];
		char *payload = cli_json_oneline(s->payload);
		const char *row[] = {s->signal_id, s->name, cli_time(created, s->created_at), payload};
		cli_table_add(t, row);
		free(payload);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}

static int run_show(cli *c, const cli_args *a)
{
	dura_record *rec = NULL;
	dura_step_list steps;
	dura_signal_list sigs = {0, NULL};
	children kids = {0, 0, NULL};
	const char *run_id = a->pos[0];
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_get_run(c->store, run_id, &rec);
	if (rc)
		return cli_fail(rc);
	rc = dura_store_history(c->store, run_id, 0, 0, &steps);
	if (rc) {
		rc = cli_fail(rc);
		dura_record_free(rec);
		return rc;
	}
	/* a store without durable waiting (contract version 4 or older) has
	 * no signals and no children: nothing to show, not an error */
	int waiting = 1;
	rc = dura_store_signal_list(c->store, run_id, &sigs);
	if (rc == DURA_ENOTSUP) {
		waiting = 0;
		rc = 0;
	}
	if (rc == 0 && waiting)
		rc = list_children(c, run_id, &kids);
	if (rc) {
		rc = cli_fail(rc);
		dura_signal_list_free(&sigs);
		dura_step_list_free(&steps);
		dura_record_free(rec);
		return rc;
	}
	if (c->json) {
		json_t *o = cli_json_record(rec), *arr = cli_jarray(), *karr = cli_jarray(), *sarr = cli_jarray();
		cli_jset(o, "waiting_for", cli_json_wait(rec));
		for (size_t i = 0; i < kids.count; i++) {
			const dura_record *k = child_at(&kids, i);
			json_t *j = cli_jobject();
			cli_jset(j, "run_id", cli_jstr(k->run_id));
			cli_jset(j, "workflow_name", cli_jstr(k->workflow_name));
			cli_jset(j, "run_state", cli_jstr(dura_run_state_name(k->run_state)));
			cli_jset(j, "status", cli_jstr_opt(k->status));
			cli_jset(j, "wait", cli_jstr_opt(k->wait));
			cli_jset(j, "created_at", cli_jtime(k->created_at));
			cli_jappend(karr, j);
		}
		cli_jset(o, "children", karr);
		for (size_t i = 0; i < sigs.count; i++) {
			const dura_signal *s = &sigs.items[i];
			json_t *j = cli_jobject();
			cli_jset(j, "signal_id", cli_jstr(s->signal_id));
			cli_jset(j, "name", cli_jstr(s->name));
			cli_jset(j, "payload", cli_jparse(s->payload));
			cli_jset(j, "created_at", cli_jtime(s->created_at));
			cli_jappend(sarr, j);
		}
		cli_jset(o, "signals", sarr);
		for (size_t i = 0; i < steps.count; i++)
			cli_jappend(arr, cli_json_step(&steps.items[i], 1));
		cli_jset(o, "steps", arr);
		cli_jprint(o);
	} else {
		print_record(rec);
		print_steps(&steps, cli_flag(a, "states"));
		if (kids.count)
			print_children(&kids);
		if (sigs.count)
			print_signals(&sigs);
	}
	children_free(&kids);
	dura_signal_list_free(&sigs);
	dura_step_list_free(&steps);
	dura_record_free(rec);
	return CLI_OK;
}

const cli_command cli_cmd_show = {
	.name = "show",
	.args = "RUN",
	.summary = "show a run: its record, state and step history",
	.help = "Prints every field of the run's record - with what a waiting run waits for\n"
	        "(wait: \"sleep until T\", \"signal NAME, deadline T\" or \"..., no deadline\",\n"
	        "\"child RUN\") and the run that started it (parent_id) - its state as\n"
	        "indented JSON, one line per step: \"#N  node  created_at\", then its\n"
	        "children with their states and its pending signals, when it has any.\n"
	        "With --json: the record's fields, \"waiting_for\" (null or {\"kind\": ...}),\n"
	        "\"children\", \"signals\" and \"steps\" (with their states).",
	.opts = show_opts,
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_show,
};
