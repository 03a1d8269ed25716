/*
 * cmd_show.c - `dura show RUN`: a run's record and its step history.
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

static int run_show(cli *c, const cli_args *a)
{
	dura_record *rec = NULL;
	dura_step_list steps;
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
	if (c->json) {
		json_t *o = cli_json_record(rec), *arr = cli_jarray();
		for (size_t i = 0; i < steps.count; i++)
			cli_jappend(arr, cli_json_step(&steps.items[i], 1));
		cli_jset(o, "steps", arr);
		cli_jprint(o);
	} else {
		print_record(rec);
		print_steps(&steps, cli_flag(a, "states"));
	}
	dura_step_list_free(&steps);
	dura_record_free(rec);
	return CLI_OK;
}

const cli_command cli_cmd_show = {
	.name = "show",
	.args = "RUN",
	.summary = "show a run: its record, state and step history",
	.help = "Prints every field of the run's record, its state as indented JSON, and\n"
	        "one line per step: \"#N  node  created_at\". With --json: the record's\n"
	        "fields and \"steps\" (with their states).",
	.opts = show_opts,
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_show,
};
