/*
 * bench_waiting.c - what durable waiting costs, on one store:
 *
 *   1. signal -> resume: from the signal's send to the waiting node
 *      running again in an idle worker (in another process where the
 *      store is shared), p50 and p99, with poll_ms 100 and 500. On a
 *      store that notifies (memory, PostgreSQL, Redis) the worker is woken
 *      by the store, whatever poll_ms; on the others (SQLite, MySQL) it
 *      finds the run at its next claim, so the figure follows poll_ms,
 *      which is the baseline: what polling alone would give.
 *   2. what a sleeping run leaves in the store: its record (wait, next_run_at)
 *      and nothing else; for a signal wait, one row per pending signal.
 *   3. N sleeping runs do not slow the claim of due ones: the time to run
 *      1000 due one-step runs through a worker, and to claim 1000 due
 *      runs straight from the store, with no sleepers, then with N
 *      sleepers of the same workflow in the same tables (N = 100000 by
 *      default), as a ratio to the first, measured in the same run.
 *
 * Usage: bench_waiting STORE_URL [SLEEPERS] [SIGNALS]. Give a fresh
 * database or ?prefix= (the baseline is "no sleepers"). Not a test: it
 * asserts nothing and prints figures.
 */
#include "dura.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* shared with the worker process */
typedef struct shared {
	volatile long long resumed_at;
	volatile int received;
	volatile int stop;
} shared;
static shared *g_sh;
static dura_store *g_store;
static char g_prefix[40]; /* the URL's ?prefix=, validated by the store ([A-Za-z0-9_]) */

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
	g_sh->resumed_at = dura_now_ms();
	__atomic_fetch_add(&g_sh->received, 1, __ATOMIC_SEQ_CST);
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

/*
 * Latency from dura_run_signal() to the waiting node running again in a
 * worker. The worker is in another process where the store is shared
 * between processes, so it learns of the signal only through the store:
 * its notification (PostgreSQL, Redis) or its next claim (SQLite, MySQL,
 * every poll_ms). On the memory store the worker is in this process and
 * is woken by the store's condition variable.
 */
static void latency(dura_engine *eng, const char *url, int n, int64_t poll_ms, int multi)
{
	char id[DURA_UUID_LEN + 1];
	if (dura_run_start(eng, "bw-recv", NULL, "{}", NULL, id))
		return;
	g_sh->received = 0;
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 1;
	o.poll_ms = poll_ms;
	dura_worker *w = NULL;
	pid_t pid = -1;
	if (multi) {
		fflush(stdout);
		if ((pid = fork()) == 0) {
			dura_store *cs;
			dura_engine *ce;
			if (dura_store_open(&cs, url, NULL) || dura_engine_open(&ce, cs, NULL) ||
			    reg(ce, "bw-recv", "recv", recv_node) || reg(ce, "bw-one", "one", one_node) ||
			    dura_worker_start(&w, ce, &o))
				_exit(3);
			while (!g_sh->stop)
				sleep_ms(10);
			dura_worker_stop(w, 5000);
			_exit(0);
		}
	} else if (dura_worker_start(&w, eng, &o)) {
		return;
	}
	long long *lat = calloc((size_t)n, sizeof(*lat));
	int got = 0;
	for (int i = 0; i < n; i++) {
		/* until it waits again, its lease given up */
		for (int t = 0; t < 5000; t++) {
			dura_record *r = NULL;
			int waiting = dura_store_get_run(g_store, id, &r) == 0 && strcmp(r->wait, "signal:go") == 0 &&
			              !r->lease_owner[0];
			dura_record_free(r);
			if (waiting)
				break;
			sleep_ms(1);
		}
		/* a worker idle for a while: its claimer's pause has grown to
		 * poll_ms (right after a run it starts again at 1 ms) */
		sleep_ms((int)(2 * poll_ms + 50));
		int before = g_sh->received;
		long long t0 = dura_now_ms();
		/* the store's send: a dura_run_signal would also kick this process's workers */
		if (dura_store_signal_send(g_store, id, "go", "1", NULL))
			break;
		while (g_sh->received == before && dura_now_ms() - t0 < 10000)
			sleep_ms(0);
		lat[got++] = g_sh->resumed_at - t0;
	}
	if (multi) {
		g_sh->stop = 1;
		waitpid(pid, NULL, 0);
		g_sh->stop = 0;
	} else {
		dura_worker_stop(w, 5000);
	}
	if (got > 0) {
		qsort(lat, (size_t)got, sizeof(*lat), cmp64);
		printf("  signal -> node running again in a worker %s, poll_ms %lld: p50 %lld ms, p99 %lld ms over %d signals\n",
		       multi ? "in another process" : "in this process", (long long)poll_ms, lat[got / 2],
		       lat[(got * 99) / 100], got);
	}
	free(lat);
	dura_run_cancel(eng, id);
}

static int first_col(int ncols, char **values, char **names, void *payload)
{
	(void)names;
	if (ncols > 0 && values[0])
		*(long long *)payload = atoll(values[0]);
	return 1;
}

/* Bytes the store's runs table takes, with its indexes, where the store
 * can tell (SQLite, PostgreSQL); -1 elsewhere. */
static long long table_bytes(const char *scheme)
{
	long long v = -1;
	if (strcmp(scheme, "sqlite") == 0) {
		long long pages = -1, size = -1;
		dura_store_exec_sql(g_store, "PRAGMA page_count", first_col, &pages);
		dura_store_exec_sql(g_store, "PRAGMA page_size", first_col, &size);
		if (pages >= 0 && size > 0)
			v = pages * size;
	} else if (strcmp(scheme, "postgres") == 0) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT pg_total_relation_size('%sworkflow_records')", g_prefix);
		dura_store_exec_sql(g_store, sql, first_col, &v);
	}
	return v;
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

/* Claim `count` due runs of bw-one straight from the store, 10 per
 * claim, with an hour's lease (so they stay claimed): ms taken. The
 * claim's own cost, without a worker around it. */
static long long claim_time(int count)
{
	for (int i = 0; i < count; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = "bw-one";
		req.status = "one";
		if (dura_store_create_run(g_store, &req, NULL))
			return -1;
	}
	const char *wfs[1] = {"bw-one"};
	char (*ids)[DURA_MAX_ID_LEN + 1] = calloc((size_t)count + 10, sizeof(*ids));
	long long t0 = dura_now_ms();
	int got = 0;
	while (got < count) {
		dura_record_list l;
		if (dura_store_claim_runs(g_store, "bench-claimer", wfs, 1, 10, 3600000, &l))
			return -1;
		for (size_t i = 0; i < l.count; i++)
			snprintf(ids[got + (int)i], sizeof(ids[0]), "%s", l.items[i].run_id);
		got += (int)l.count;
		int none = l.count == 0;
		dura_record_list_free(&l);
		if (none)
			return -1;
	}
	long long took = dura_now_ms() - t0;
	/* out of the way of what is measured next: a claimed run stays due */
	for (int i = 0; i < got; i++)
		dura_store_set_run_state(g_store, ids[i], DURA_RUN_CANCELLED, NULL);
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
	int signals = argc > 3 ? atoi(argv[3]) : 100;
	dura_store *s;
	dura_engine *eng;
	if (dura_store_open(&s, argv[1], NULL) || dura_engine_open(&eng, s, NULL) ||
	    reg(eng, "bw-recv", "recv", recv_node) || reg(eng, "bw-one", "one", one_node)) {
		fprintf(stderr, "bench_waiting: %s\n", dura_error_last()->message);
		return 1;
	}
	g_store = s;
	const char *pf = strstr(argv[1], "prefix=");
	if (pf)
		snprintf(g_prefix, sizeof(g_prefix), "%.*s", (int)strspn(pf + 7, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"), pf + 7);
	g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED)
		return 1;
	dura_store_info info;
	dura_store_info_get(s, &info);
	int notify = (info.caps & DURA_CAP_NOTIFY) != 0;
	int multi = (info.caps & DURA_CAP_MULTI_PROCESS) != 0;
	printf("bench_waiting on %s (%s)\n", info.scheme,
	       notify ? "the store notifies waiting workers" : "workers poll: a wake is seen at the next claim");
	/* the poll interval is the baseline: what a worker that is not notified waits at most */
	latency(eng, argv[1], signals, 100, multi);
	latency(eng, argv[1], signals / 5 > 10 ? signals / 5 : 10, 500, multi);

	long long base = drain(eng, 1000);
	long long cbase = claim_time(1000);
	long long bytes0 = table_bytes(info.scheme);
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
	long long bytes1 = table_bytes(info.scheme);
	if (bytes0 >= 0 && bytes1 >= 0 && sleepers > 0)
		printf("  a sleeping run: one record row (wait, next_run_at), no other row; %lld bytes per sleeping run in the "
		       "runs table with its indexes (%d sleepers); a signal wait adds one row per pending signal\n",
		       (bytes1 - bytes0) / sleepers, sleepers);
	else
		printf("  a sleeping run: one record row (wait, next_run_at), no other row (a hash on Redis); a signal wait "
		       "adds one row per pending signal\n");
	long long with = drain(eng, 1000);
	long long cwith = claim_time(1000);
	printf("  claiming 1000 due runs, 10 per claim, among the sleepers of their workflow: %lld ms with none (baseline), "
	       "%lld ms with %d: %.2fx\n",
	       cbase, cwith, sleepers, cbase > 0 ? (double)cwith / (double)cbase : 0.0);
	printf("  1000 due runs through a worker: %lld ms with no sleepers (baseline), %lld ms with %d sleepers: %.2fx "
	       "(creating the sleepers took %lld ms)\n",
	       base, with, sleepers, base > 0 ? (double)with / (double)base : 0.0, made);
	dura_engine_close(eng);
	dura_store_close(s);
	return 0;
}
