/*
 * cmd_watch.c - `dura watch RUN`: follow a run until it ends.
 *
 * A progress line - run state, current node, steps done, attempt, what
 * it waits for, time since it started - redrawn in place on a terminal,
 * or printed once per change when stdout is a pipe or a file (with
 * --json, one JSON object per change). Exits 0 when the run completes,
 * CLI_ENDED (4) when it ends otherwise (failed, cancelled, data
 * deleted), 1 on an error.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const cli_opt watch_opts[] = {
	{"interval", 'i', "MS", "how often to read the run (default 200, 10 to 60000)"},
	{NULL, 0, NULL, NULL},
};

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void elapsed(char *buf, size_t n, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 60000)
		snprintf(buf, n, "%.1fs", (double)ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, n, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000 % 60));
	else
		snprintf(buf, n, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000 % 60));
}

static int ended(int state)
{
	return state == DURA_RUN_COMPLETED || state == DURA_RUN_FAILED || state == DURA_RUN_CANCELLED ||
	       state == DURA_RUN_DATA_DELETED;
}

static void print_json(const dura_record *r, int64_t ms)
{
	json_t *o = cli_jobject();
	cli_jset(o, "run_id", cli_jstr(r->run_id));
	cli_jset(o, "run_state", cli_jstr(dura_run_state_name(r->run_state)));
	cli_jset(o, "node", cli_jstr(r->status));
	cli_jset(o, "steps", cli_jint(r->step_no));
	cli_jset(o, "attempt", cli_jint(r->attempt));
	cli_jset(o, "wait", cli_jstr(r->wait));
	cli_jset(o, "elapsed_ms", cli_jint(ms));
	if (r->error && *r->error)
		cli_jset(o, "error", cli_jstr(r->error));
	char *t = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (t)
		printf("%s\n", t);
	free(t);
	fflush(stdout);
}

static int run_watch(cli *c, const cli_args *a)
{
	const char *iv = cli_opt_get(a, "interval");
	int64_t interval = 200;
	int rc;
	if (iv && (rc = cli_parse_i64(c, "--interval", iv, 10, &interval)) != 0)
		return rc;
	if (interval > 60000)
		return cli_usagef(c, "--interval %s: at most 60000 ms", iv);
	if (cli_open(c))
		return CLI_ERROR;
	int tty = !c->json && isatty(STDOUT_FILENO);
	char last[1200] = "";
	for (;;) {
		dura_record *r = NULL;
		if ((rc = dura_store_get_run(c->store, a->pos[0], &r)) != 0) {
			if (tty && *last)
				putchar('\n');
			return cli_fail(rc);
		}
		int done = ended(r->run_state);
		int64_t ms = (done ? r->updated_at : dura_now_ms()) - r->created_at;
		char el[32], line[1200];
		elapsed(el, sizeof(el), ms);
		char *node = cli_cell(r->status && *r->status ? r->status : "-");
		char *wait = cli_cell(r->wait && *r->wait ? r->wait : "");
		/* what a change is: the time goes on, so it is not part of it */
		char att[32] = "";
		if (r->attempt)
			snprintf(att, sizeof(att), "  attempt %d", r->attempt);
		snprintf(line, sizeof(line), "%s  node %s  steps %" PRId64 "%s%s%s", dura_run_state_name(r->run_state), node,
		         r->step_no, att, *wait ? "  waits for " : "", wait);
		free(node);
		free(wait);
		int changed = strcmp(line, last) != 0;
		if (c->json) {
			if (changed)
				print_json(r, ms);
		} else if (tty) {
			printf("\r\033[K%s  %s", line, el);
			fflush(stdout);
		} else if (changed) {
			printf("%s  %s\n", line, el);
			fflush(stdout);
		}
		snprintf(last, sizeof(last), "%s", line);
		if (done) {
			if (tty)
				putchar('\n');
			if (!c->json && r->error && *r->error && r->run_state != DURA_RUN_COMPLETED) {
				char *e = cli_cell(r->error);
				printf("error: %s\n", e);
				free(e);
			}
			int state = r->run_state;
			dura_record_free(r);
			return state == DURA_RUN_COMPLETED ? CLI_OK : CLI_ENDED;
		}
		dura_record_free(r);
		sleep_ms(interval);
	}
}

const cli_command cli_cmd_watch = {
	.name = "watch",
	.args = "RUN",
	.summary = "follow a run live until it ends; exit 0 if it completed, 4 if not",
	.opts = watch_opts,
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_watch,
};
