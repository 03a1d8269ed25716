/*
 * bench_worker - a burn-down: RUNS runs of NODES no-op nodes, executed by
 * one worker of THREADS threads, with and without group commit; durable
 * steps per second. A first look, not the full burn-down (no
 * latency percentiles, no raw-driver baseline here).
 *
 * usage: bench_worker STORE_URL [THREADS] [RUNS] [NODES]
 */
#include "raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int noop(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)state;
	(void)payload;
	return 0;
}

static double burn(const char *url, int threads, int runs, int nodes, int group, unsigned long long *batched)
{
	dura_store *s;
	dura_engine *eng;
	dura_workflow *wf;
	char name[64], id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(name, sizeof(name), "bw-%s", id + 24);
	if (dura_store_open(&s, url, NULL) || dura_engine_open(&eng, s, NULL) || dura_workflow_new(&wf, name))
		return -1;
	for (int n = 0; n < nodes; n++) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "n%d", n);
		dura_workflow_add_node(wf, a, noop, NULL, NULL);
		if (n) {
			snprintf(b, sizeof(b), "n%d", n - 1);
			dura_workflow_add_edge(wf, b, a);
		}
	}
	dura_workflow_set_start(wf, "n0");
	if (dura_engine_register(eng, wf))
		return -1;
	char (*ids)[DURA_UUID_LEN + 1] = malloc((size_t)runs * sizeof(*ids));
	for (int i = 0; i < runs; i++)
		if (dura_run_start(eng, name, NULL, "{}", NULL, ids[i]))
			return -1;
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = threads;
	o.poll_ms = 5;
	o.group_commit = group;
	dura_worker *w;
	double t0 = now_us();
	if (dura_worker_start(&w, eng, &o))
		return -1;
	for (;;) {
		dura_worker_stats st;
		dura_worker_stats_get(w, &st);
		if (st.completed >= (unsigned long long)runs)
			break;
		usleep(1000);
	}
	double t1 = now_us();
	dura_worker_stats st;
	dura_worker_stats_get(w, &st);
	*batched = st.group_commits;
	dura_worker_stop(w, 10000);
	free(ids);
	dura_engine_close(eng);
	dura_store_close(s);
	return (double)runs * nodes / ((t1 - t0) / 1e6);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_worker STORE_URL [THREADS] [RUNS] [NODES]\n");
		return 2;
	}
	int threads = argc > 2 ? atoi(argv[2]) : 8;
	int runs = argc > 3 ? atoi(argv[3]) : 500;
	int nodes = argc > 4 ? atoi(argv[4]) : 1;
	for (int group = -1; group <= 1; group += 2) {
		unsigned long long batched = 0;
		double r = burn(argv[1], threads, runs, nodes, group, &batched);
		if (r < 0) {
			fprintf(stderr, "bench_worker: %s\n", dura_error_last() ? dura_error_last()->message : "failed");
			return 1;
		}
		printf("worker %s threads=%d runs=%d nodes=%d group_commit=%d: %.0f steps/s (%llu commits in groups)\n",
		       argv[1], threads, runs, nodes, group, r, batched);
	}
	return 0;
}
