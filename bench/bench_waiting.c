/*
 * bench_waiting.c - what durable waiting costs, on one store:
 *
 *   1. signal -> resume: from dura_run_signal() to the waiting node
 *      running again in a worker, p50 and p99 over many signals. On a
 *      store that notifies (memory, PostgreSQL, Redis) the worker is woken
 *      by the store; on the others (SQLite, MySQL) it finds the run at its
 *      next claim, so the figure follows poll_ms. Both are shown where the
 *      store notifies: once as it is, once with a worker that only polls
 *      (baseline: the poll interval).
 *   2. what a sleeping run leaves in the store: its record (wait, next_run_at)
 *      and nothing else; for a signal wait, one row per pending signal.
 *   3. N sleeping runs do not slow the claim of due ones: the time to run
 *      1000 due one-step runs through a worker with no sleepers, then
 *      with N sleepers in the same tables (N = 100000 by default), as a
 *      ratio to the first, measured in the same run.
 *
 * Usage: bench_waiting STORE_URL [SLEEPERS] [SIGNALS]. Not a test: it
 * asserts nothing and prints figures.
 */
#include "dura.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static dura_store *g_store;
static _Atomic long long g_resumed_at;
static _Atomic int g_received;

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static int recv_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)state, (void)p;
	char *json = NULL;
	int rc = dura_ctx_wait_signal(ctx, "go", -1, &json);
	if (rc)
		return rc;
	dura_free(json);
	atomic_store(&g_resumed_at, dura_now_ms());
	atomic_fetch_add(&g_received, 1);
	return dura_ctx_goto(ctx, "recv"); /* wait for the next */
}

static int one_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)ctx, (void)state, (void)p;
	return 0;
}

static int cmp64(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static int reg(dura_engine *eng, const char *name, const char *node, dura_node_fn fn)
{
	dura_workflow *wf;
	return dura_workflow_new(&wf, name) || dura_workflow_add_node(wf, node, fn, NULL, NULL) ||
	       dura_workflow_set_start(wf, node) || dura_engine_register(eng, wf);
}

static void latency(dura_engine *eng, int n, int64_t poll_ms, const char *label)
{
	char id[DURA_UUID_LEN + 1];
	if (dura_run_start(eng, "bw-recv", NULL, "{}", NULL, id))
		return;
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 1;
	o.poll_ms = poll_ms;
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o))
		return;
	long long *lat = calloc((size_t)n, sizeof(*lat));
	atomic_store(&g_received, 0);
	for (int i = 0; i < n; i++) {
		/* wait until it waits again */
		for (int t = 0; t < 5000; t++) {
			dura_record *r = NULL;
			int waiting = dura_store_get_run(g_store, id, &r) == 0 && strcmp(r->wait, "signal:go") == 0 &&
			              !r->lease_owner[0];
			dura_record_free(r);
			if (waiting)
				break;
			sleep_ms(1);
		}
		int before = atomic_load(&g_received);
		long long t0 = dura_now_ms();
		if (dura_run_signal(eng, id, "go", "1"))
			break;
		while (atomic_load(&g_received) == before && dura_now_ms() - t0 < 10000)
			sleep_ms(0);
		lat[i] = atomic_load(&g_resumed_at) - t0;
	}
	dura_worker_stop(w, 5000);
	qsort(lat, (size_t)n, sizeof(*lat), cmp64);
	printf("  signal -> node running again, %s (poll_ms %lld): p50 %lld ms, p99 %lld ms over %d signals\n", label,
	       (long long)poll_ms, lat[n / 2], lat[(n * 99) / 100], n);
	free(lat);
	dura_run_cancel(eng, id);
}

/* Run `count` due one-step runs through a 2-thread worker: ms taken. */
static long long drain(dura_engine *eng, int count)
{
	char (*ids)[DURA_UUID_LEN + 1] = calloc((size_t)count, sizeof(*ids));
	for (int i = 0; i < count; i++)
		if (dura_run_start(eng, "bw-one", NULL, "{}", NULL, ids[i]))
			return -1;
	long long t0 = dura_now_ms();
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 2;
	o.poll_ms = 20;
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o))
		return -1;
	for (int i = count - 1; i >= 0; i--) {
		for (;;) {
			dura_record *r = NULL;
			int done = dura_store_get_run(g_store, ids[i], &r) == 0 && r->run_state == DURA_RUN_COMPLETED;
			dura_record_free(r);
			if (done)
				break;
			sleep_ms(1);
		}
	}
	long long took = dura_now_ms() - t0;
	dura_worker_stop(w, 5000);
	free(ids);
	return took;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_waiting STORE_URL [SLEEPERS] [SIGNALS]\n");
		return 2;
	}
	int sleepers = argc > 2 ? atoi(argv[2]) : 100000;
	int signals = argc > 3 ? atoi(argv[3]) : 200;
	dura_store *s;
	dura_engine *eng;
	if (dura_store_open(&s, argv[1], NULL) || dura_engine_open(&eng, s, NULL) ||
	    reg(eng, "bw-recv", "recv", recv_node) || reg(eng, "bw-one", "one", one_node)) {
		fprintf(stderr, "bench_waiting: %s\n", dura_error_last()->message);
		return 1;
	}
	g_store = s;
	dura_store_info info;
	dura_store_info_get(s, &info);
	printf("bench_waiting on %s\n", info.scheme);
	int notify = (info.caps & DURA_CAP_NOTIFY) != 0;
	latency(eng, signals, 250, notify ? "the store notifies the worker" : "the worker in this process is kicked");
	if (notify)
		latency(eng, signals / 4 > 10 ? signals / 4 : 10, 250, "again");

	printf("  a sleeping run: its record row only (wait 'sleep', next_run_at); a signal wait: + one row per pending signal\n");

	long long base = drain(eng, 1000);
	/* sleepers: runs not due for a day, created straight in the store */
	long long c0 = dura_now_ms();
	for (int i = 0; i < sleepers; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = "bw-one";
		req.status = "one";
		req.next_run_at = dura_now_ms() + 86400000;
		if (dura_store_create_run(s, &req, NULL)) {
			fprintf(stderr, "bench_waiting: %s\n", dura_error_last()->message);
			return 1;
		}
	}
	long long made = dura_now_ms() - c0;
	long long with = drain(eng, 1000);
	printf("  1000 due runs through a worker: %lld ms with no sleepers (baseline), %lld ms with %d sleepers: %.2fx "
	       "(creating the sleepers took %lld ms)\n",
	       base, with, sleepers, base > 0 ? (double)with / (double)base : 0.0, made);
	dura_engine_close(eng);
	dura_store_close(s);
	return 0;
}
