/*
 * bench_engine - durable steps per second and per-step latency of a
 * 10-node no-op workflow, on memory and on SQLite (synchronous FULL and
 * NORMAL), against the raw single-transaction INSERT (and the raw version
 * of dura's own commit transaction) measured in the same run.
 *
 * A step's latency is the time between two consecutive node calls: the
 * commit of the previous node plus everything the engine does around it.
 *
 * usage: bench_engine [DIR] [RUNS]
 */
#include "raw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NODES 10

static double *g_lat;
static int g_nlat, g_cap;
static double g_last;

static int noop(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	(void)payload;
	double t = now_us();
	if (dura_ctx_step(ctx) > 0 && g_nlat < g_cap)
		g_lat[g_nlat++] = t - g_last;
	g_last = t;
	return 0;
}

typedef struct result {
	double p50, p99, steps_per_s;
} result;

static result run_engine(const char *url, int runs)
{
	dura_store *s;
	dura_engine *eng;
	if (dura_store_open(&s, url, NULL) || dura_engine_open(&eng, s, NULL))
		die(url);
	dura_workflow *wf;
	dura_workflow_new(&wf, "bench10");
	static const char *const names[NODES] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"};
	for (int i = 0; i < NODES; i++) {
		dura_workflow_add_node(wf, names[i], noop, NULL, NULL);
		if (i)
			dura_workflow_add_edge(wf, names[i - 1], names[i]);
	}
	dura_workflow_set_start(wf, "n0");
	if (dura_engine_register(eng, wf))
		die("register");
	g_cap = runs * NODES;
	g_nlat = 0;
	g_lat = calloc((size_t)g_cap, sizeof(double));
	double t0 = now_us();
	for (int r = 0; r < runs; r++) {
		char id[DURA_UUID_LEN + 1];
		if (dura_run_start(eng, "bench10", NULL, BENCH_STATE, NULL, id))
			die("start");
		if (dura_run_execute(eng, id, NULL))
			die("execute");
	}
	double total = now_us() - t0;
	result res = {pct(g_lat, g_nlat, 0.5), pct(g_lat, g_nlat, 0.99), runs * NODES / (total / 1e6)};
	free(g_lat);
	dura_engine_close(eng);
	dura_store_close(s);
	return res;
}

static void raw_baseline(const char *path, const char *sync, int n, double *ins50, double *tx50)
{
	raw r;
	raw_setup(&r, path, sync);
	double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		raw_insert(&r, i);
		double t1 = now_us();
		raw_tx(&r);
		double t2 = now_us();
		a[i] = t1 - t0;
		b[i] = t2 - t1;
	}
	*ins50 = pct(a, n, 0.5);
	*tx50 = pct(b, n, 0.5);
	free(a);
	free(b);
	raw_close(&r);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "bench-tmp";
	int runs = argc > 2 ? atoi(argv[2]) : 40;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	printf("bench_engine: 10-node no-op workflow, %d runs per store\n", runs);
	result m = run_engine("memory:", runs * 50);
	printf("memory               step p50 %8.2f us  p99 %8.2f us  %10.0f steps/s\n", m.p50, m.p99, m.steps_per_s);
	const char *modes[] = {"full", "normal"};
	for (int i = 0; i < 2; i++) {
		char path[512], rpath[512], url[600];
		snprintf(path, sizeof(path), "%s/engine-%s.db", dir, modes[i]);
		snprintf(rpath, sizeof(rpath), "%s/engine-raw-%s.db", dir, modes[i]);
		remove_db(path);
		snprintf(url, sizeof(url), "sqlite:%s?synchronous=%s", path, modes[i]);
		int n = i == 0 ? runs : runs * 10;
		/* baseline before and after, the engine in between: drift shows */
		double ins_a, tx_a, ins_b, tx_b;
		raw_baseline(rpath, modes[i], n * NODES / 2, &ins_a, &tx_a);
		result r = run_engine(url, n);
		raw_baseline(rpath, modes[i], n * NODES / 2, &ins_b, &tx_b);
		double ins = (ins_a + ins_b) / 2, tx = (tx_a + tx_b) / 2;
		printf("sqlite %-6s        step p50 %8.2f us  p99 %8.2f us  %10.0f steps/s\n", modes[i], r.p50, r.p99,
		       r.steps_per_s);
		printf("  raw single INSERT tx p50 %8.2f us   raw dura-shaped tx p50 %8.2f us\n", ins, tx);
		printf("  ratio step/raw-insert %.3fx   step/raw-tx %.3fx\n", r.p50 / ins, r.p50 / tx);
	}
	return 0;
}
