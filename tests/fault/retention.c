/*
 * retention.c - retention at scale: N finished runs (100,000 in make test,
 * on SQLite and MariaDB) pruned in batches while another thread commits a
 * stream of steps to a live run. It checks that
 *   - the tables end at the expected size (counted with SQL, per workflow:
 *     other tests may share the database);
 *   - no commit of the stream was held up by more than one batch: at most
 *     one batch began and ended inside any commit (a batch that took the
 *     lock just before the commit did is one);
 *   - nothing that should stay was removed: the failed runs (the policy
 *     prunes completed ones), the runs with a checkpoint, the children of
 *     a live parent, the running runs.
 * The batches follow the workers' rule (retention.c): a pause of twice
 * what a batch took, at least 100 ms. Times are printed, never asserted.
 *
 * usage: retention_tests STORE_URL N
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dura.h"
#include "dura/store.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_url;
static long g_n;
static char g_prefix[64]; /* the URL's table prefix */

static int64_t mono_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
	struct timespec t = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
	while (nanosleep(&t, &t) != 0)
		;
}

/* COUNT(*) of a query through exec_sql: -1 when it failed. */
static int count_cb(int ncols, char **values, char **names, void *payload)
{
	(void)names;
	*(long *)payload = ncols > 0 && values[0] ? atol(values[0]) : -1;
	return 0;
}

static long count_sql(dura_store *s, const char *fmt, const char *wf)
{
	char sql[512];
	snprintf(sql, sizeof(sql), fmt, wf);
	long n = -1;
	if (dura_store_exec_sql(s, sql, count_cb, &n) != 0) {
		fprintf(stderr, "    %s: %s\n", sql, dura_error_last()->message);
		return -1;
	}
	return n;
}

static long runs_of(dura_store *s, const char *wf)
{
	char fmt[256];
	snprintf(fmt, sizeof(fmt), "SELECT COUNT(*) FROM %sworkflow_records WHERE workflow_name = '%%s'", g_prefix);
	return count_sql(s, fmt, wf);
}

static long steps_of(dura_store *s, const char *wf)
{
	char fmt[256];
	snprintf(fmt, sizeof(fmt),
	         "SELECT COUNT(*) FROM %sworkflow_steps WHERE run_id IN "
	         "(SELECT run_id FROM %sworkflow_records WHERE workflow_name = '%%s')",
	         g_prefix, g_prefix);
	return count_sql(s, fmt, wf);
}

/* ---- making runs ------------------------------------------------------------------ */

typedef struct maker {
	const char *wf;
	long from, to; /* run i of [from, to) */
	int end;       /* the state they end in */
	const char *parent;
	int rc;
} maker;

#define CHUNK 200

/* Runs created running, then one step each that ends them, CHUNK commits a transaction. */
static void *make_runs(void *arg)
{
	maker *m = arg;
	dura_store *s = NULL;
	/* making the runs is not what is tested: on SQLite without an fsync per run */
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", g_url,
	         strncmp(g_url, "sqlite:", 7) ? "" : strchr(g_url, '?') ? "&synchronous=off" : "?synchronous=off");
	if ((m->rc = dura_store_open(&s, url, NULL)) != 0)
		return NULL;
	char (*ids)[DURA_UUID_LEN + 1] = malloc(CHUNK * sizeof(*ids));
	int64_t vers[CHUNK];
	for (long i = m->from; i < m->to && m->rc == 0;) {
		size_t k = 0;
		for (; k < CHUNK && i < m->to; k++, i++) {
			dura_run_create req = DURA_RUN_CREATE_INIT;
			req.workflow_name = m->wf;
			req.status = "a";
			req.parent_id = m->parent;
			dura_record *r = NULL;
			if ((m->rc = dura_store_create_run(s, &req, &r)) != 0)
				break;
			snprintf(ids[k], sizeof(ids[k]), "%s", r->run_id);
			vers[k] = r->version;
			dura_record_free(r);
		}
		if (m->rc || k == 0)
			break;
		dura_commit cs[CHUNK];
		dura_commit_result res[CHUNK];
		for (size_t j = 0; j < k; j++) {
			dura_commit c = DURA_COMMIT_INIT;
			c.run_id = ids[j];
			c.expect_version = vers[j];
			c.node_id = "a";
			c.state = "{\"done\":true}";
			c.status = "";
			c.run_state = m->end;
			c.flags = DURA_COMMIT_NO_EVENT; /* 100,000 events would crowd other suites' out of an outbox poll */
			cs[j] = c;
		}
		m->rc = dura_store_commit_batch(s, cs, k, res);
	}
	if (m->rc)
		fprintf(stderr, "    making runs: %s\n", dura_error_last()->message);
	free(ids);
	dura_store_close(s);
	return NULL;
}

static int make(const char *wf, long n, int end, const char *parent, int threads)
{
	pthread_t t[8];
	maker m[8];
	for (int i = 0; i < threads; i++) {
		m[i] = (maker){wf, n * i / threads, n * (i + 1) / threads, end, parent, 0};
		pthread_create(&t[i], NULL, make_runs, &m[i]);
	}
	int rc = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (m[i].rc && !rc)
			rc = m[i].rc;
	}
	return rc;
}

/* ---- the commit stream -------------------------------------------------------------- */

typedef struct span {
	int64_t start, end; /* monotonic us */
} span;

typedef struct stream {
	dura_store *s;
	char run_id[DURA_UUID_LEN + 1];
	_Atomic int stop;
	span *commits;
	size_t n, cap;
	int rc;
} stream;

static void *commit_stream(void *arg)
{
	stream *st = arg;
	dura_record *r = NULL;
	if ((st->rc = dura_store_get_run(st->s, st->run_id, &r)) != 0)
		return NULL;
	int64_t v = r->version;
	dura_record_free(r);
	while (!atomic_load(&st->stop) && st->n < st->cap) {
		dura_commit c = DURA_COMMIT_INIT;
		c.run_id = st->run_id;
		c.expect_version = v;
		c.node_id = "tick";
		c.state = "{\"t\":1}";
		c.status = "tick";
		c.flags = DURA_COMMIT_NO_EVENT;
		dura_commit_result res;
		int64_t t0 = mono_us();
		if ((st->rc = dura_store_commit(st->s, &c, &res)) != 0)
			return NULL;
		st->commits[st->n++] = (span){t0, mono_us()};
		v = res.new_version;
		sleep_us(2000);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- the test ----------------------------------------------------------------------- */

#define FAILED 1000
#define KEEP 100

static void hundred_thousand_through_retention(void)
{
	dura_store *s = NULL;
	REQUIRE(dura_store_open(&s, g_url, NULL) == 0);
	dura_store_info info;
	REQUIRE(dura_store_info_get(s, &info) == 0);
	dura_run_count_list probe;
	int versioned = dura_store_run_counts(s, "probe", &probe) == 0;
	dura_run_count_list_free(&probe);
	if (!(info.caps & DURA_CAP_SQL) || !versioned) {
		dura_store_close(s);
		SKIP("the store has no SQL to count its tables with, or no retention");
	}
	char wf[96], pwf[96], live[96], u[DURA_UUID_LEN + 1];
	dura_uuid7(u);
	snprintf(wf, sizeof(wf), "ret-%s", u);
	snprintf(pwf, sizeof(pwf), "ret-parent-%s", u);
	snprintf(live, sizeof(live), "ret-live-%s", u);

	/* what retention takes: n completed runs of one step */
	int64_t t0 = mono_us();
	/* one writer at a time is all SQLite has: threads there only queue */
	int threads = strncmp(g_url, "sqlite:", 7) == 0 ? 1 : 4;
	REQUIRE(make(wf, g_n, DURA_RUN_COMPLETED, NULL, threads) == 0);
	/* what it keeps: failed runs, runs with a checkpoint, children of a live parent, running runs */
	REQUIRE(make(wf, FAILED, DURA_RUN_FAILED, NULL, 2) == 0);
	dura_record *parent = NULL;
	dura_run_create preq = DURA_RUN_CREATE_INIT;
	preq.workflow_name = pwf;
	preq.status = "p";
	REQUIRE(dura_store_create_run(s, &preq, &parent) == 0);
	REQUIRE(make(wf, KEEP, DURA_RUN_COMPLETED, parent->run_id, 1) == 0);
	char kept_cp[KEEP][DURA_UUID_LEN + 1];
	for (int i = 0; i < KEEP; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = wf;
		req.status = "";
		req.run_state = DURA_RUN_COMPLETED;
		dura_record *r = NULL;
		REQUIRE(dura_store_create_run(s, &req, &r) == 0);
		snprintf(kept_cp[i], sizeof(kept_cp[i]), "%s", r->run_id);
		dura_record_free(r);
		char cp[96];
		snprintf(cp, sizeof(cp), "ret-cp-%s-%d", u, i);
		REQUIRE(dura_store_checkpoint_save(s, cp, kept_cp[i], 0, "{\"kept\":true}") == 0);
	}
	for (int i = 0; i < KEEP; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = wf;
		req.status = "a";
		REQUIRE(dura_store_create_run(s, &req, NULL) == 0);
	}
	long runs0 = runs_of(s, wf), steps0 = steps_of(s, wf);
	printf("    made %ld runs (%ld steps) in %.1f s\n", runs0, steps0, (double)(mono_us() - t0) / 1e6);
	CHECK(runs0 == g_n + FAILED + 3 * KEEP);
	CHECK(steps0 == g_n + FAILED + KEEP);

	/* the commit stream: a live run of another workflow, a step every 2 ms */
	stream st;
	memset(&st, 0, sizeof(st));
	st.s = s;
	st.cap = 1000000;
	st.commits = malloc(st.cap * sizeof(*st.commits));
	REQUIRE(st.commits != NULL);
	dura_run_create lreq = DURA_RUN_CREATE_INIT;
	lreq.workflow_name = live;
	lreq.status = "tick";
	dura_record *lr = NULL;
	REQUIRE(dura_store_create_run(s, &lreq, &lr) == 0);
	snprintf(st.run_id, sizeof(st.run_id), "%s", lr->run_id);
	dura_record_free(lr);
	pthread_t th;
	pthread_create(&th, NULL, commit_stream, &st);
	sleep_us(300000); /* commits before the purge, to compare with */

	/* retention of completed runs, whole, in batches as a worker takes them */
	size_t nb = 0, capb = (size_t)(g_n / DURA_RETENTION_BATCH) + 16;
	span *batches = malloc(capb * sizeof(*batches));
	REQUIRE(batches != NULL);
	int64_t purge0 = mono_us(), pruned = 0, n = 0;
	int rc = 0;
	do {
		dura_prune req = DURA_PRUNE_INIT;
		req.workflow = wf;
		req.run_state = DURA_RUN_COMPLETED;
		req.ended_before = dura_now_ms() + 1000;
		req.whole = 1;
		req.limit = DURA_RETENTION_BATCH;
		int64_t b0 = mono_us();
		if ((rc = dura_store_prune(s, &req, &n)) != 0)
			break;
		int64_t b1 = mono_us();
		if (nb < capb)
			batches[nb++] = (span){b0, b1};
		pruned += n;
		if (n == DURA_RETENTION_BATCH)
			sleep_us(2 * (b1 - b0) < 100000 ? 100000 : 2 * (b1 - b0));
	} while (n == DURA_RETENTION_BATCH);
	int64_t purge1 = mono_us();
	sleep_us(300000);
	atomic_store(&st.stop, 1);
	pthread_join(th, NULL);
	CHECK(rc == 0);
	CHECK(st.rc == 0);
	CHECK(pruned == g_n);

	/* the tables: what should stay, and nothing of what should not */
	long runs1 = runs_of(s, wf), steps1 = steps_of(s, wf);
	CHECK(runs1 == FAILED + 3 * KEEP);
	CHECK(steps1 == FAILED + KEEP);
	dura_run_count_list cl;
	REQUIRE(dura_store_run_counts(s, wf, &cl) == 0);
	int64_t by[DURA_RUN_STATE_MAX + 1] = {0};
	for (size_t i = 0; i < cl.count; i++)
		by[cl.items[i].run_state] += cl.items[i].count;
	dura_run_count_list_free(&cl);
	CHECK(by[DURA_RUN_FAILED] == FAILED);
	CHECK(by[DURA_RUN_COMPLETED] == 2 * KEEP); /* with a checkpoint, or a live parent */
	CHECK(by[DURA_RUN_RUNNING] == KEEP);
	for (int i = 0; i < KEEP; i++) {
		dura_record *r = NULL;
		CHECK(dura_store_get_run(s, kept_cp[i], &r) == 0);
		dura_record_free(r);
	}
	dura_record_list kids;
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = parent->run_id;
	f.limit = 1000;
	REQUIRE(dura_store_list_runs(s, &f, &kids) == 0);
	CHECK(kids.count == KEEP);
	for (size_t i = 0; i < kids.count; i++)
		CHECK(kids.items[i].run_state == DURA_RUN_COMPLETED && kids.items[i].step_no == 1);
	dura_record_list_free(&kids);

	/* the stream: no commit waited through more than one whole batch */
	size_t held = 0, during = 0, most = 0;
	int64_t *lat = malloc((st.n ? st.n : 1) * sizeof(*lat)), max_batch = 0;
	size_t nl = 0;
	for (size_t b = 0; b < nb; b++)
		if (batches[b].end - batches[b].start > max_batch)
			max_batch = batches[b].end - batches[b].start;
	size_t b = 0;
	for (size_t i = 0; i < st.n; i++) {
		const span *c = &st.commits[i];
		if (c->start >= purge0 && c->end <= purge1) {
			during++;
			lat[nl++] = c->end - c->start;
		}
		while (b < nb && batches[b].end < c->start)
			b++;
		size_t inside = 0;
		for (size_t k = b; k < nb && batches[k].start < c->end; k++)
			inside += batches[k].start >= c->start && batches[k].end <= c->end;
		if (inside > most)
			most = inside;
		if (inside > 1) {
			held++;
			fprintf(stderr, "    commit %zu (%.1f ms) waited through %zu batches\n", i, (double)(c->end - c->start) / 1000,
			        inside);
		}
	}
	CHECK(held == 0);
	CHECK(during > 0); /* the stream went on during the purge */
	qsort(lat, nl, sizeof(*lat), cmp_i64);
	printf("    pruned %lld runs in %zu batches in %.1f s; batch max %.1f ms; %zu commits during the purge "
	       "(at most %zu batch%s inside one), p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       (long long)pruned, nb, (double)(purge1 - purge0) / 1e6, (double)max_batch / 1000, during, most,
	       most == 1 ? "" : "es",
	       nl ? (double)lat[nl / 2] / 1000 : 0, nl ? (double)lat[nl * 99 / 100] / 1000 : 0,
	       nl ? (double)lat[nl - 1] / 1000 : 0);
	free(lat);
	free(batches);
	free(st.commits);
	dura_record_free(parent);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: retention_tests STORE_URL N\n");
		return 2;
	}
	g_url = argv[1];
	g_n = atol(argv[2]);
	dura_url *u = NULL;
	if (dura_url_parse(&u, g_url) != 0) {
		fprintf(stderr, "retention_tests: %s\n", dura_error_last()->message);
		return 2;
	}
	snprintf(g_prefix, sizeof(g_prefix), "%s", u->prefix ? u->prefix : "");
	dura_url_free(u);
	if (g_n < DURA_RETENTION_BATCH) {
		fprintf(stderr, "retention_tests: N must be at least %d\n", DURA_RETENTION_BATCH);
		return 2;
	}
	static const test_case tests[] = {
		{"hundred_thousand_through_retention", hundred_thousand_through_retention},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "retention %.*s", (int)strcspn(g_url, ":"), g_url);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 3 ? argv[3] : NULL);
}
