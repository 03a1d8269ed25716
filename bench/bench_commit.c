/*
 * bench_commit - what one durable step commit costs on SQLite, against the
 * raw driver in the same run, on the same file system.
 *
 * For each synchronous mode (FULL, the default, and NORMAL) it measures,
 * interleaved round by round so machine noise hits all alike:
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
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void make_run(dura_store *s, char run_id[DURA_UUID_LEN + 1], int64_t *version)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	dura_record *rec;
	req.workflow_name = "bench";
	req.state = BENCH_STATE;
	req.status = "node";
	if (dura_store_create_run(s, &req, &rec))
		die("create run");
	memcpy(run_id, rec->run_id, DURA_UUID_LEN + 1);
	*version = rec->version;
	dura_record_free(rec);
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

	char run_id[DURA_UUID_LEN + 1];
	int64_t version;
	make_run(s, run_id, &version);

	double *td = calloc((size_t)samples, sizeof(double));
	double *tt = calloc((size_t)samples, sizeof(double));
	double *ti = calloc((size_t)samples, sizeof(double));
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.node_id = "node";
	c.state = BENCH_STATE;
	c.status = "next";
	dura_commit_result res;

	int warm = samples / 10 + 5;
	for (int i = -warm; i < samples; i++) {
		double t0, t1, t2, t3;
		/* rotate the order each round so none always goes first */
		for (int k = 0; k < 3; k++) {
			switch ((i + k + warm) % 3) {
			case 0:
				c.expect_version = version;
				t0 = now_us();
				if (dura_store_commit(s, &c, &res))
					die("commit");
				t1 = now_us();
				version = res.new_version;
				if (i >= 0)
					td[i] = t1 - t0;
				break;
			case 1:
				t2 = now_us();
				raw_tx(&r);
				t3 = now_us();
				if (i >= 0)
					tt[i] = t3 - t2;
				break;
			default:
				t2 = now_us();
				raw_insert(&r, i + warm);
				t3 = now_us();
				if (i >= 0)
					ti[i] = t3 - t2;
				break;
			}
		}
	}
	double d50 = pct(td, samples, 0.5), d99 = pct(td, samples, 0.99);
	double t50 = pct(tt, samples, 0.5), t99 = pct(tt, samples, 0.99);
	double i50 = pct(ti, samples, 0.5), i99 = pct(ti, samples, 0.99);
	printf("sqlite synchronous=%-6s samples=%d\n", sync, samples);
	printf("  dura commit          p50 %9.1f us   p99 %9.1f us\n", d50, d99);
	printf("  raw same transaction p50 %9.1f us   p99 %9.1f us\n", t50, t99);
	printf("  raw single INSERT    p50 %9.1f us   p99 %9.1f us\n", i50, i99);
	printf("  ratio dura/raw-tx  %.3fx   dura/raw-insert  %.3fx\n", d50 / t50, d50 / i50);
	free(td);
	free(tt);
	free(ti);
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
