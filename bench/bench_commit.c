/*
 * bench_commit - what one durable step commit costs on SQLite, against the
 * raw driver in the same run, on the same file system.
 *
 * For each synchronous mode (FULL, the default, and NORMAL) it measures,
 * interleaved round by round so machine noise hits all alike (interleave()
 * in raw.c):
 *   dura    dura_store_commit(): record CAS update + step row + outbox row
 *   raw-tx  the same transaction written by hand with sqlite3 prepared
 *           statements (BEGIN IMMEDIATE; UPDATE; INSERT; INSERT; COMMIT)
 *   raw-ins one prepared INSERT of a step row in its own transaction
 * and prints the medians, p99 and the ratios dura/raw-tx and dura/raw-ins.
 *
 * usage: bench_commit [DIR] [SAMPLES]   (DIR defaults to ./bench-tmp)
 */
#include "raw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void op_raw_tx(void *arg)
{
	raw_tx(arg);
}

/* raw_insert of the next step number, from 0 */
typedef struct raw_ins {
	raw *r;
	int64_t i;
} raw_ins;

static void op_raw_insert(void *arg)
{
	raw_ins *x = arg;
	raw_insert(x->r, x->i++);
}

static void bench_mode(const char *dir, const char *sync, int samples)
{
	char dpath[512], rpath[512], url[600];
	snprintf(dpath, sizeof(dpath), "%s/dura-%s.db", dir, sync);
	snprintf(rpath, sizeof(rpath), "%s/raw-%s.db", dir, sync);
	remove_db(dpath);
	dura_store *s;
	snprintf(url, sizeof(url), "sqlite:%s?synchronous=%s", dpath, sync);
	if (dura_store_open(&s, url, NULL))
		die("open dura store");
	raw r;
	raw_setup(&r, rpath, sync);

	drun d;
	drun_make(&d, s, BENCH_STATE);
	raw_ins ri = {&r, 0};
	bench_variant vs[3] = {{commit_dura, &d, samples_alloc(samples)},
	                       {op_raw_tx, &r, samples_alloc(samples)},
	                       {op_raw_insert, &ri, samples_alloc(samples)}};
	interleave(vs, 3, samples / 10 + 5, samples);
	double d50, d99, t50, t99, i50, i99;
	printf("sqlite synchronous=%-6s samples=%d\n", sync, samples);
	latency_line("dura commit", 20, 9, vs[0].v, samples, &d50, &d99);
	latency_line("raw same transaction", 20, 9, vs[1].v, samples, &t50, &t99);
	latency_line("raw single INSERT", 20, 9, vs[2].v, samples, &i50, &i99);
	printf("  ratio dura/raw-tx  %.3fx   dura/raw-insert  %.3fx\n", d50 / t50, d50 / i50);
	for (int k = 0; k < 3; k++)
		free(vs[k].v);
	raw_close(&r);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "bench-tmp";
	int samples = argc > 2 ? atoi(argv[2]) : 0;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	printf("bench_commit: one durable step commit (medians of interleaved rounds, same file system: %s)\n", dir);
	bench_mode(dir, "full", samples ? samples : 400);
	bench_mode(dir, "normal", samples ? samples * 5 : 5000);
	return 0;
}
