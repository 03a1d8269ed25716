/*
 * cmd_outbox.c - `dura outbox`: pending outbox events, oldest first;
 * `dura outbox ack ID` deletes a delivered one.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

static const cli_opt list_opts[] = {
	{"limit", 'n', "N", "at most N events (default 100, at most 10000)"},
	{NULL, 0, NULL, NULL},
};

static int run_list(cli *c, const cli_args *a)
{
	dura_event_list list;
	size_t limit = 0;
	const char *v;
	int rc;
	if ((v = cli_opt_get(a, "limit")) && (rc = cli_parse_size(c, "limit", v, 10000, &limit)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_outbox_poll(c->store, limit, &list);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < list.count; i++) {
			const dura_event *ev = &list.items[i];
			json_t *e = cli_jobject();
			cli_jset(e, "id", cli_jstr(ev->id));
			cli_jset(e, "type", cli_jstr(ev->type));
			cli_jset(e, "workflow_name", cli_jstr(ev->workflow_name));
			cli_jset(e, "run_id", cli_jstr(ev->run_id));
			cli_jset(e, "data", cli_jparse(ev->data));
			cli_jset(e, "created_at", cli_jtime(ev->created_at));
			cli_jappend(arr, e);
		}
		cli_jset(o, "events", arr);
		dura_event_list_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"EVENT_ID", "TYPE", "RUN_ID", "CREATED"};
	cli_table *t = cli_table_new(4, hdr);
	for (size_t i = 0; i < list.count; i++) {
		const dura_event *ev = &list.items[i];
		char created[24];
		const char *row[] = {ev->id, ev->type, ev->run_id, cli_time(created, ev->created_at)};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	dura_event_list_free(&list);
	return CLI_OK;
}

static const cli_command cmd_outbox_ls = {
	.name = "ls",
	.summary = "list pending events, oldest first (the default of 'dura outbox')",
	.opts = list_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_list,
};

static int run_ack(cli *c, const cli_args *a)
{
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_outbox_ack(c->store, a->pos[0]);
	if (rc)
		return cli_fail(rc);
	return cli_done(c, "acked", "acked", a->pos[0]);
}

static const cli_command cmd_outbox_ack = {
	.name = "ack",
	.args = "EVENT_ID",
	.summary = "delete a delivered event",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_ack,
};

static const cli_command *const outbox_subs[] = {&cmd_outbox_ls, &cmd_outbox_ack, NULL};

const cli_command cli_cmd_outbox = {
	.name = "outbox",
	.summary = "list pending outbox events (oldest first), or ack one",
	.help = "Prints EVENT_ID TYPE RUN_ID CREATED. Listing does not consume events.",
	.opts = list_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_list,
	.subs = outbox_subs,
};
