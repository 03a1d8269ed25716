/*
 * cmd_prune.c - `dura prune`: retention by hand. Ended runs older than a
 * time lose their data (or go whole), or outbox events older than a time
 * go, in batches of one short transaction each, as workers do it; the
 * progress on a terminal, nothing extra when piped.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const cli_opt prune_opts[] = {
	{"older-than", 0, "AGE", "what ended (or, with --outbox, was written) at least AGE ago: 30d, 12h, 15m, 10s, 500ms (required)"},
	{"workflow", 'w', "W", "only runs of workflow W"},
	{"state", 0, "S", "only runs that ended in S: completed, failed, cancelled (default all three), or data_deleted with --whole"},
	{"whole", 0, NULL, "delete the runs themselves, records and all (default: their data; the record stays, data_deleted)"},
	{"outbox", 0, NULL, "prune outbox events instead of runs, delivered or not"},
	{"batch", 0, "N", "runs or events per transaction (default 500, at most 10000)"},
	{"dry-run", 0, NULL, "count what the first batch of each state would prune, change nothing"},
	{NULL, 0, NULL, NULL},
};

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Between two full batches, the pause a worker's retention takes: twice
 * what the batch took, from 100 ms to 2 s, so that the store is the commits'
 * two thirds of the time and a writer asleep in SQLite's busy handler
 * gets in before the next batch. */
static void pause_after(double batch_s)
{
	double s = 2 * batch_s < 0.1 ? 0.1 : 2 * batch_s > 2 ? 2 : 2 * batch_s;
	struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&t, &t) != 0)
		;
}

/* "\r<what> 12345 (6789/s)" on a terminal, at most ten times a second. */
static void progress(int tty, const char *what, int64_t n, double t0, double *shown, int last)
{
	if (!tty)
		return;
	double now = mono_s();
	if (!last && now - *shown < 0.1)
		return;
	*shown = now;
	double rate = now > t0 ? (double)n / (now - t0) : 0;
	fprintf(stderr, "\r%s %" PRId64 " (%.0f/s)%s", what, n, rate, last ? "\n" : "");
	fflush(stderr);
}

static int prune_outbox(cli *c, int64_t before, size_t batch, int dry, int tty)
{
	if (dry)
		return cli_usagef(c, "--dry-run counts runs; the outbox has 'dura outbox' to look at");
	int64_t total = 0, n = 0;
	double t0 = mono_s(), shown = 0;
	do {
		double b0 = mono_s();
		int rc = dura_store_outbox_prune(c->store, before, batch, &n);
		if (rc) {
			progress(tty, "outbox events pruned", total, t0, &shown, 1);
			return cli_fail(rc);
		}
		total += n;
		progress(tty, "outbox events pruned", total, t0, &shown, 0);
		if (n == (int64_t)batch)
			pause_after(mono_s() - b0);
	} while (n == (int64_t)batch);
	progress(tty, "outbox events pruned", total, t0, &shown, 1);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "events", cli_jint(total));
		return cli_jprint(o);
	}
	printf("pruned %" PRId64 " outbox event%s\n", total, total == 1 ? "" : "s");
	return CLI_OK;
}

static int run_prune(cli *c, const cli_args *a)
{
	const char *v = cli_opt_get(a, "older-than");
	int64_t age = 0;
	size_t batch = 500;
	int rc, one_state = 0;
	if (!v)
		return cli_usagef(c, "--older-than is required (30d, 12h, ...)");
	if ((rc = cli_parse_duration(c, "older-than", v, &age)))
		return rc;
	if ((v = cli_opt_get(a, "batch")) && (rc = cli_parse_size(c, "batch", v, 10000, &batch)))
		return rc;
	if ((v = cli_opt_get(a, "state")) && (rc = cli_parse_run_state(c, "state", v, &one_state)))
		return rc;
	int whole = cli_flag(a, "whole"), dry = cli_flag(a, "dry-run"), outbox = cli_flag(a, "outbox");
	if (one_state && one_state != DURA_RUN_COMPLETED && one_state != DURA_RUN_FAILED &&
	    one_state != DURA_RUN_CANCELLED && !(one_state == DURA_RUN_DATA_DELETED && whole))
		return cli_usagef(c, "--state: completed, failed or cancelled (data_deleted with --whole)");
	if (outbox && (cli_opt_get(a, "workflow") || one_state || whole))
		return cli_usagef(c, "--outbox goes without --workflow, --state and --whole");
	int64_t before = dura_now_ms() - age;
	if (before <= 0)
		return cli_usagef(c, "--older-than: %s goes back before 1970", cli_opt_get(a, "older-than"));
	if (cli_open(c))
		return CLI_ERROR;
	int tty = !c->json && isatty(STDERR_FILENO);
	if (outbox)
		return prune_outbox(c, before, batch, dry, tty);

	static const int ends[] = {DURA_RUN_COMPLETED, DURA_RUN_FAILED, DURA_RUN_CANCELLED};
	int states[3], nstates = 0;
	if (one_state)
		states[nstates++] = one_state;
	else
		for (int i = 0; i < 3; i++)
			states[nstates++] = ends[i];
	int64_t by_state[3] = {0, 0, 0}, total = 0;
	double t0 = mono_s(), shown = 0;
	const char *what = dry ? "runs to prune" : whole ? "runs deleted" : "runs emptied";
	for (int i = 0; i < nstates; i++) {
		dura_prune req = DURA_PRUNE_INIT;
		req.workflow = cli_opt_get(a, "workflow");
		req.run_state = states[i];
		req.ended_before = before;
		req.whole = whole;
		req.limit = batch;
		req.dry_run = dry;
		int64_t n = 0;
		do {
			double b0 = mono_s();
			if ((rc = dura_store_prune(c->store, &req, &n)) != 0) {
				progress(tty, what, total, t0, &shown, 1);
				return cli_fail(rc);
			}
			by_state[i] += n;
			total += n;
			progress(tty, what, total, t0, &shown, 0);
			if (!dry && n == (int64_t)batch)
				pause_after(mono_s() - b0);
		} while (!dry && n == (int64_t)batch);
	}
	progress(tty, what, total, t0, &shown, 1);
	if (c->json) {
		json_t *o = cli_jobject(), *per = cli_jobject();
		for (int i = 0; i < nstates; i++)
			cli_jset(per, dura_run_state_name(states[i]), cli_jint(by_state[i]));
		cli_jset(o, dry ? "would_prune" : "pruned", per);
		cli_jset(o, "runs", cli_jint(total));
		cli_jset(o, "whole", json_boolean(whole));
		cli_jset(o, "dry_run", json_boolean(dry));
		return cli_jprint(o);
	}
	for (int i = 0; i < nstates; i++)
		printf("%s %" PRId64 " %s run%s%s\n", dry ? "would prune" : whole ? "deleted" : "emptied", by_state[i],
		       dura_run_state_name(states[i]), by_state[i] == 1 ? "" : "s",
		       dry && by_state[i] == (int64_t)batch ? " (at least: one batch is counted)" : "");
	return CLI_OK;
}

const cli_command cli_cmd_prune = {
	.name = "prune",
	.summary = "retention by hand: prune ended runs (or outbox events) older than a time",
	.help = "Deletes the data of runs that ended at least --older-than ago (steps, checkpoints,\n"
	        "signals and state; the record stays as data_deleted), or with --whole the runs\n"
	        "themselves, in batches of --batch runs, each one short transaction with a pause after\n"
	        "it (twice what it took, 100 ms to 2 s): a long purge never holds a lock for long, and\n"
	        "may run beside live workers. Kept whatever their age: a run\n"
	        "with a named checkpoint (checkpoints are kept to fork from) and a child run whose\n"
	        "parent has not ended. With --outbox it prunes outbox events written before that time\n"
	        "instead, delivered or not. Progress goes to a terminal's stderr; the counts to stdout.",
	.opts = prune_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_prune,
};
