/*
 * metrics.c - the process's counters (dura_metrics_get) follow the work
 * done through any store, and dura_metrics_format gives them and the
 * store's figures as Prometheus text, on every store.
 *
 * The counters are process-wide and other tests' work is not in this
 * program, so each test reads them before and after its own work and
 * checks the difference exactly where the work fixes it. Store figures
 * are checked on a workflow named afresh per run (server stores are
 * shared with other programs).
 */
#include "dura.h"
#include "test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_url;
static char g_wf[64];

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* one handle for the whole program: a memory: URL is a new store per open */
static dura_store *g_store;

static dura_store *open_store(void)
{
	dura_store_options o = DURA_STORE_OPTIONS_INIT;
	o.auto_migrate = 1;
	if (!g_store && dura_store_open(&g_store, g_url, &o) != 0)
		return NULL;
	return g_store;
}

static int m_get(dura_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->version = DURA_METRICS_VERSION;
	return dura_metrics_get(m);
}

static int first_ok(dura_ctx *ctx, json_t *s, void *p)
{
	(void)ctx;
	(void)p;
	json_object_set_new(s, "a", json_true());
	return 0;
}

/* fails its first attempt, then succeeds */
static int flaky(dura_ctx *ctx, json_t *s, void *p)
{
	(void)p;
	if (dura_ctx_attempt(ctx) == 1)
		return dura_ctx_fail(ctx, DURA_ERROR, "flaky once");
	json_object_set_new(s, "b", json_true());
	return 0;
}

static dura_engine *engine_with_wf(dura_store *s)
{
	dura_engine *eng = NULL;
	dura_workflow *wf = NULL;
	dura_node_options retry = DURA_NODE_OPTIONS_INIT;
	retry.max_attempts = 3;
	retry.backoff_initial_ms = 5;
	if (dura_engine_open(&eng, s, NULL) || dura_workflow_new(&wf, g_wf) ||
	    dura_workflow_add_node(wf, "first", first_ok, NULL, NULL) ||
	    dura_workflow_add_node(wf, "flaky", flaky, NULL, &retry) || dura_workflow_add_edge(wf, "first", "flaky") ||
	    dura_workflow_set_start(wf, "first") || dura_engine_register(eng, wf)) {
		dura_engine_close(eng);
		return NULL;
	}
	return eng;
}

static void api_errors(void)
{
	dura_metrics m;
	CHECK_RC(dura_metrics_get(NULL), DURA_EINVAL);
	memset(&m, 0, sizeof(m));
	m.version = 99;
	CHECK_RC(dura_metrics_get(&m), DURA_EVERSION);
	CHECK_RC(dura_metrics_format(NULL, NULL), DURA_EINVAL);
	dura_metrics i = DURA_METRICS_INIT;
	CHECK(i.version == DURA_METRICS_VERSION);
	CHECK_RC(dura_metrics_get(&i), 0);
}

static void counters_follow_work(void)
{
	dura_store *s = open_store();
	REQUIRE(s);
	dura_engine *eng = engine_with_wf(s);
	REQUIRE(eng);
	dura_metrics a, b;
	REQUIRE_RC(m_get(&a), 0);
	char id[DURA_UUID_LEN + 1];
	dura_record *rec = NULL;
	REQUIRE_RC(dura_run_start(eng, g_wf, NULL, NULL, NULL, id), 0);
	REQUIRE_RC(dura_run_execute(eng, id, &rec), 0);
	CHECK(rec->run_state == DURA_RUN_COMPLETED && rec->step_no == 2);
	dura_record_free(rec);
	REQUIRE_RC(m_get(&b), 0);
	/* two steps; one record-only commit for the failed attempt */
	CHECK(b.steps_committed - a.steps_committed == 2);
	CHECK(b.failed_attempts - a.failed_attempts == 1);
	CHECK(b.commits - a.commits >= 3);
	CHECK(b.commit_latency_count - a.commit_latency_count >= b.commits - a.commits);
	CHECK(b.commit_conflicts == a.commit_conflicts);
	/* the histogram is cumulative and its last bound is within count */
	for (size_t i = 1; i < DURA_METRICS_LATENCY_BUCKETS; i++)
		CHECK(b.commit_latency_le[i] >= b.commit_latency_le[i - 1]);
	CHECK(b.commit_latency_le[DURA_METRICS_LATENCY_BUCKETS - 1] <= b.commit_latency_count);
	CHECK(b.commit_latency_sum_us >= a.commit_latency_sum_us);

	/* a stale version: refused, counted as a conflict */
	REQUIRE_RC(dura_store_get_run(s, id, &rec), 0);
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = id;
	c.expect_version = rec->version - 1;
	c.node_id = "late";
	c.state = "{}";
	c.status = "";
	dura_record_free(rec);
	CHECK_RC(dura_store_commit(s, &c, NULL), DURA_ECONFLICT);
	dura_metrics d;
	REQUIRE_RC(m_get(&d), 0);
	CHECK(d.commit_conflicts - b.commit_conflicts == 1);
	CHECK(d.steps_committed == b.steps_committed);
	dura_engine_close(eng);
}

static int compute(dura_cache_value *out, void *p)
{
	(void)p;
	return dura_cache_value_set(out, "v", 1, NULL);
}

static void cache_hits_and_misses(void)
{
	dura_store *s = open_store();
	REQUIRE(s);
	char key[128];
	snprintf(key, sizeof(key), "metrics-%s", g_wf);
	dura_metrics a, b;
	REQUIRE_RC(m_get(&a), 0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	dura_cache_entry *e = NULL;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	e = NULL;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	REQUIRE_RC(m_get(&b), 0);
	CHECK(b.cache_misses - a.cache_misses >= 1);
	CHECK(b.cache_hits - a.cache_hits >= 1);
}

/* A run leased by an owner that vanished: a worker takes it over (a
 * rescue), executes and completes it. */
static void worker_counters(void)
{
	dura_store *s = open_store();
	REQUIRE(s);
	dura_engine *eng = engine_with_wf(s);
	REQUIRE(eng);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(eng, g_wf, NULL, NULL, NULL, id), 0);
	dura_record_list l = {0};
	const char *wfs[] = {g_wf};
	REQUIRE_RC(dura_store_claim_runs(s, "ghost-owner", wfs, 1, 10, 100, &l), 0);
	int ours = 0;
	for (size_t i = 0; i < l.count; i++)
		ours += strcmp(l.items[i].run_id, id) == 0;
	dura_record_list_free(&l);
	REQUIRE(ours == 1);
	sleep_ms(250); /* the ghost's lease lapses unreleased */
	dura_metrics a, b;
	REQUIRE_RC(m_get(&a), 0);
	dura_worker *w = NULL;
	dura_worker_options wo = DURA_WORKER_OPTIONS_INIT;
	wo.poll_ms = 20;
	wo.retention_ms = -1;
	REQUIRE_RC(dura_worker_start(&w, eng, &wo), 0);
	dura_await_cond cond = {0, NULL, 1};
	dura_record *rec = NULL;
	CHECK_RC(dura_run_await(eng, id, &cond, 30000, &rec), 0);
	CHECK(rec && rec->run_state == DURA_RUN_COMPLETED);
	dura_record_free(rec);
	CHECK_RC(dura_worker_stop(w, 5000), 0);
	REQUIRE_RC(m_get(&b), 0);
	CHECK(b.runs_claimed - a.runs_claimed >= 1);
	CHECK(b.lease_rescues - a.lease_rescues == 1);
	CHECK(b.runs_completed - a.runs_completed == 1);
	CHECK(b.runs_failed == a.runs_failed);
	dura_engine_close(eng);
}

/* value of the sample line `name` (with its labels) in text, -1 if none */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void format_text(void)
{
	dura_store *s = open_store();
	REQUIRE(s);
	char *text = NULL;
	REQUIRE_RC(dura_metrics_format(s, &text), 0);
	dura_metrics m;
	REQUIRE_RC(m_get(&m), 0);
	/* the counters as numbers and as text agree (nothing ran in between) */
	CHECK(sample(text, "dura_steps_committed_total") == (double)m.steps_committed);
	CHECK(sample(text, "dura_failed_attempts_total") == (double)m.failed_attempts);
	CHECK(sample(text, "dura_step_commit_duration_seconds_count") == (double)m.commit_latency_count);
	CHECK(sample(text, "dura_step_commit_duration_seconds_bucket{le=\"+Inf\"}") == (double)m.commit_latency_count);
	CHECK(sample(text, "dura_store_up") == 1);
	/* the store's: this program's workflow completed 2 runs (the tests above) */
	char name[160];
	snprintf(name, sizeof(name), "dura_runs{workflow=\"%s\",state=\"completed\"}", g_wf);
	CHECK(sample(text, name) == 2);
	CHECK(sample(text, "dura_runs_waiting") >= 0);
	CHECK(sample(text, "dura_outbox_pending") >= 1);
	CHECK(sample(text, "dura_outbox_oldest_age_seconds") >= 0);
	CHECK(sample(text, "dura_cache_entries") >= 1);
	/* every line is a comment or "name[{labels}] value" */
	int bad = 0;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (line[0] != '#') {
			/* the value follows the labels, whose values may hold spaces */
			const char *close = memchr(line, '{', len) ? memrchr(line, '}', len) : NULL;
			const char *sp = close ? (close[1] == ' ' ? close + 1 : NULL) : memchr(line, ' ', len);
			char *end = NULL;
			if (!sp || (strtod(sp + 1, &end), end != line + len) || !(line[0] >= 'a' && line[0] <= 'z'))
				bad++;
		}
		line = nl ? nl + 1 : NULL;
	}
	CHECK(bad == 0);
	dura_free(text);
	/* without a store: the process's counters only */
	REQUIRE_RC(dura_metrics_format(NULL, &text), 0);
	CHECK(strstr(text, "dura_steps_committed_total ") != NULL);
	CHECK(strstr(text, "dura_runs{") == NULL && strstr(text, "dura_store_up") == NULL);
	dura_free(text);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: metrics_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(g_wf, sizeof(g_wf), "metrics-%s", id + 24);
	static const test_case tests[] = {
		{"api_errors", api_errors},
		{"counters_follow_work", counters_follow_work},
		{"cache_hits_and_misses", cache_hits_and_misses},
		{"worker_counters", worker_counters},
		{"format_text", format_text},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "metrics %.*s", (int)strcspn(g_url, ":"), g_url);
	int rc = test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
	dura_store_close(g_store);
	return rc;
}
