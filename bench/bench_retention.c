/*
 * bench_retention.c - what retention costs a live store: the latency of a
 * stream of step commits to a live run, p50 and p99, for SECONDS without
 * retention (the baseline), then for as long while RUNS finished runs are
 * pruned whole in batches of DURA_RETENTION_BATCH with a worker's pause
 * (twice the batch, at least 100 ms), measured in the same run; and the
 * prune's own rate.
 *
 * Usage: bench_retention STORE_URL [RUNS [SECONDS]] (defaults 100000 and 5).
 * Give a fresh database or ?prefix=. Not a test: it prints figures.
 */
#include "dura.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "bench_retention: %s: %s\n", what, e && e->message ? e->message : "?");
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct stream {
	dura_store *s;
	char run_id[DURA_UUID_LEN + 1];
	int64_t version;
	double until;
	double *lat;
	size_t n, cap;
} stream;

/* Commits to the live run until `until`, each latency kept (ms). */
static void commit_for(stream *st)
{
	st->n = 0;
	while (now_s() < st->until && st->n < st->cap) {
		dura_commit c = DURA_COMMIT_INIT;
		c.run_id = st->run_id;
		c.expect_version = st->version;
		c.node_id = "tick";
		c.state = "{\"t\":1}";
		c.status = "tick";
		c.flags = DURA_COMMIT_NO_EVENT;
		dura_commit_result res;
		double t0 = now_s();
		if (dura_store_commit(st->s, &c, &res))
			die("committing");
		st->lat[st->n++] = (now_s() - t0) * 1000;
		st->version = res.new_version;
		struct timespec pause = {0, 2000000};
		nanosleep(&pause, NULL);
	}
}

static void report(const char *what, stream *st)
{
	qsort(st->lat, st->n, sizeof(*st->lat), cmp);
	printf("  %-26s %6zu commits, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, st->n, st->lat[st->n / 2],
	       st->lat[st->n * 99 / 100], st->lat[st->n - 1]);
}

typedef struct pruner {
	dura_store *s;
	_Atomic int stop;
	int64_t pruned, batches;
	double seconds;
} pruner;

static void *prune_main(void *arg)
{
	pruner *p = arg;
	double t0 = now_s();
	int64_t n = 0;
	do {
		dura_prune req = DURA_PRUNE_INIT;
		req.workflow = "bench-old";
		req.run_state = DURA_RUN_COMPLETED;
		req.ended_before = dura_now_ms() + 1000;
		req.whole = 1;
		req.limit = DURA_RETENTION_BATCH;
		double b0 = now_s();
		if (dura_store_prune(p->s, &req, &n))
			die("pruning");
		double b = now_s() - b0, pause = 2 * b < 0.1 ? 0.1 : 2 * b > 2 ? 2 : 2 * b;
		p->pruned += n;
		p->batches++;
		struct timespec t = {(time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9)};
		if (n == DURA_RETENTION_BATCH)
			nanosleep(&t, NULL);
	} while (n == DURA_RETENTION_BATCH && !atomic_load(&p->stop));
	p->seconds = now_s() - t0;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_retention STORE_URL [RUNS [SECONDS]]\n");
		return 2;
	}
	long runs = argc > 2 ? atol(argv[2]) : 100000;
	double secs = argc > 3 ? atof(argv[3]) : 5;
	dura_store *s = NULL;
	if (dura_store_open(&s, argv[1], NULL))
		die("opening the store");
	/* the finished runs, one step each */
	double t0 = now_s();
	enum { CHUNK = 500 };
	for (long base = 0; base < runs; base += CHUNK) {
		static dura_commit cs[CHUNK];
		static dura_commit_result res[CHUNK];
		static char ids[CHUNK][DURA_UUID_LEN + 1];
		size_t k = 0;
		for (; k < CHUNK && base + (long)k < runs; k++) {
			dura_run_create req = DURA_RUN_CREATE_INIT;
			req.workflow_name = "bench-old";
			req.status = "a";
			dura_record *r = NULL;
			if (dura_store_create_run(s, &req, &r))
				die("creating runs");
			snprintf(ids[k], sizeof(ids[k]), "%s", r->run_id);
			dura_commit c = DURA_COMMIT_INIT;
			c.run_id = ids[k];
			c.expect_version = r->version;
			c.node_id = "a";
			c.state = "{\"done\":true}";
			c.status = "";
			c.run_state = DURA_RUN_COMPLETED;
			c.flags = DURA_COMMIT_NO_EVENT;
			cs[k] = c;
			dura_record_free(r);
		}
		if (dura_store_commit_batch(s, cs, k, res))
			die("ending runs");
	}
	printf("bench_retention: %ld finished runs made in %.1f s\n", runs, now_s() - t0);
	stream st = {s, "", 0, 0, NULL, 0, 1000000};
	st.lat = malloc(st.cap * sizeof(*st.lat));
	dura_run_create lreq = DURA_RUN_CREATE_INIT;
	lreq.workflow_name = "bench-live";
	lreq.status = "tick";
	dura_record *lr = NULL;
	if (dura_store_create_run(s, &lreq, &lr))
		die("creating the live run");
	snprintf(st.run_id, sizeof(st.run_id), "%s", lr->run_id);
	st.version = lr->version;
	dura_record_free(lr);

	st.until = now_s() + secs;
	commit_for(&st);
	report("without retention:", &st);
	double base_p99 = st.lat[st.n * 99 / 100], base_p50 = st.lat[st.n / 2];

	pruner p = {s, 0, 0, 0, 0};
	pthread_t th;
	pthread_create(&th, NULL, prune_main, &p);
	st.until = now_s() + secs;
	commit_for(&st);
	report("while retention prunes:", &st);
	double p99 = st.lat[st.n * 99 / 100], p50 = st.lat[st.n / 2];
	atomic_store(&p.stop, 1);
	pthread_join(th, NULL);
	printf("  retention's cost: p50 %.2fx, p99 %.2fx the baseline; it pruned %lld runs in %lld batches in %.1f s "
	       "(%.0f runs/s with its pauses)\n",
	       p50 / base_p50, p99 / base_p99, (long long)p.pruned, (long long)p.batches, p.seconds,
	       (double)p.pruned / p.seconds);
	free(st.lat);
	dura_store_close(s);
	return 0;
}
