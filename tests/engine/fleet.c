/*
 * fleet.c - operating a fleet through the engine and workers, on every
 * store: workflow versions (fingerprints, several versions in one engine,
 * two worker processes of two versions sharing a store and each executing
 * only its own runs, moving a run to another version and refusing one
 * whose node is gone) and retention applied by workers.
 *
 * Where the store is shared between processes the two versions run in two
 * forked worker processes; on the memory store, in two engines of one
 * process on one handle. Outcomes are checked, never times.
 */
#include "dura.h"
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_url;

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int multi_process(dura_store *s)
{
	dura_store_info info;
	return dura_store_info_get(s, &info) == 0 && (info.caps & DURA_CAP_MULTI_PROCESS) && (info.caps & DURA_CAP_DURABLE);
}

static int has_versions(dura_store *s)
{
	dura_run_count_list l;
	int rc = dura_store_run_counts(s, NULL, &l);
	dura_run_count_list_free(&l);
	return rc != DURA_ENOTSUP;
}

/* Every node writes into the state which version's code ran it, and in
 * which process: state.ran = [[node, version, pid], ...]. The payload is
 * the version's name. */
static int mark(dura_ctx *ctx, json_t *state, void *payload)
{
	json_t *ran = json_object_get(state, "ran");
	if (!ran) {
		ran = json_array();
		json_object_set_new(state, "ran", ran);
	}
	json_array_append_new(ran, json_pack("[s,s,I]", dura_ctx_node(ctx), (const char *)payload, (json_int_t)getpid()));
	return 0;
}

/* A workflow fl-<tag>: nodes as "a>b>c" (each node to the next), version
 * given (NULL: the fingerprint). */
static dura_workflow *make_wf(const char *name, const char *chain, const char *version)
{
	dura_workflow *wf = NULL;
	if (dura_workflow_new(&wf, name))
		return NULL;
	char prev[32] = "", node[32];
	const char *p = chain;
	int bad = 0;
	while (*p && !bad) {
		size_t n = strcspn(p, ">");
		snprintf(node, sizeof(node), "%.*s", (int)n, p);
		bad = dura_workflow_add_node(wf, node, mark, (void *)(version ? version : "fp"), NULL) != 0;
		if (!bad && *prev)
			bad = dura_workflow_add_edge(wf, prev, node) != 0;
		else if (!bad)
			bad = dura_workflow_set_start(wf, node) != 0;
		snprintf(prev, sizeof(prev), "%s", node);
		p += n + (p[n] == '>');
	}
	if (!bad && version)
		bad = dura_workflow_set_version(wf, version) != 0;
	if (bad) {
		dura_workflow_free(wf);
		return NULL;
	}
	return wf;
}

/* 1 when state.ran has [node, version, ...]; version NULL: any version
 * (to tell a node that never ran). The state is parsed: a store may give
 * JSON back reformatted (PostgreSQL's JSONB). */
static int ran(const char *state, const char *node, const char *version)
{
	json_t *st = json_loads(state, 0, NULL), *e;
	size_t i;
	int found = 0;
	json_array_foreach(json_object_get(st, "ran"), i, e)
	{
		const char *n = json_string_value(json_array_get(e, 0)), *v = json_string_value(json_array_get(e, 1));
		if (n && strcmp(n, node) == 0 && (!version || (v && strcmp(v, version) == 0)))
			found = 1;
	}
	json_decref(st);
	return found;
}

static void name_of(char *out, size_t size, const char *base)
{
	char u[DURA_UUID_LEN + 1];
	dura_uuid7(u);
	snprintf(out, size, "%s-%s", base, u);
}

static dura_worker_options wopts(const char *wf)
{
	static const char *names[1];
	names[0] = wf;
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 2;
	o.lease_ms = 1000;
	o.heartbeat_ms = 200;
	o.poll_ms = 20;
	o.workflows = names;
	o.nworkflows = 1;
	return o;
}

static int wait_ended(dura_store *s, const char *id, int timeout_ms)
{
	int st = -1;
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		dura_record *r = NULL;
		if (dura_store_get_run(s, id, &r) == 0) {
			st = r->run_state;
			dura_record_free(r);
			if (st == DURA_RUN_COMPLETED || st == DURA_RUN_FAILED || st == DURA_RUN_CANCELLED)
				return st;
		}
		sleep_ms(20);
	}
	return st;
}

/* ---- versions ------------------------------------------------------------------------ */

/* The fingerprint follows the shape, not the order nodes were added in. */
static void fingerprint_follows_shape(void)
{
	dura_workflow *a = make_wf("fl-fp", "x>y>z", NULL), *b = NULL, *c = make_wf("fl-fp", "x>y", NULL);
	REQUIRE(a && c);
	/* the same graph, nodes added in another order */
	REQUIRE(dura_workflow_new(&b, "fl-fp") == 0);
	REQUIRE(dura_workflow_add_node(b, "z", mark, "fp", NULL) == 0);
	REQUIRE(dura_workflow_add_node(b, "x", mark, "fp", NULL) == 0);
	REQUIRE(dura_workflow_add_node(b, "y", mark, "fp", NULL) == 0);
	REQUIRE(dura_workflow_add_edge(b, "y", "z") == 0);
	REQUIRE(dura_workflow_add_edge(b, "x", "y") == 0);
	REQUIRE(dura_workflow_set_start(b, "x") == 0);
	const char *va = dura_workflow_version(a), *vb = dura_workflow_version(b), *vc = dura_workflow_version(c);
	CHECK(va && strlen(va) == 16 && va[0] == 'f');
	CHECK_STR(va, vb);
	CHECK(strcmp(va, vc) != 0);
	/* a node option changes the shape too */
	dura_workflow *d = NULL;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 3;
	REQUIRE(dura_workflow_new(&d, "fl-fp") == 0);
	REQUIRE(dura_workflow_add_node(d, "x", mark, "fp", &o) == 0);
	REQUIRE(dura_workflow_add_node(d, "y", mark, "fp", NULL) == 0);
	REQUIRE(dura_workflow_add_node(d, "z", mark, "fp", NULL) == 0);
	REQUIRE(dura_workflow_add_edge(d, "x", "y") == 0 && dura_workflow_add_edge(d, "y", "z") == 0);
	REQUIRE(dura_workflow_set_start(d, "x") == 0);
	CHECK(strcmp(dura_workflow_version(d), va) != 0);
	/* a version given wins; a bad one is refused */
	CHECK(dura_workflow_set_version(d, "2026.12") == 0);
	CHECK_STR(dura_workflow_version(d), "2026.12");
	CHECK(dura_workflow_set_version(d, "no spaces") == DURA_EINVAL);
	CHECK(dura_workflow_set_version(d, "") == DURA_EINVAL);
	CHECK(dura_workflow_set_version(d, NULL) == DURA_EINVAL);
	dura_workflow_free(a);
	dura_workflow_free(b);
	dura_workflow_free(c);
	dura_workflow_free(d);
}

/* One engine, two versions: new runs start on the one registered last,
 * a run may ask for another, the same version twice is refused. */
static void versions_in_one_engine(void)
{
	dura_store *s = NULL;
	dura_engine *eng = NULL;
	REQUIRE(dura_store_open(&s, g_url, NULL) == 0);
	REQUIRE(dura_engine_open(&eng, s, NULL) == 0);
	char wf[96];
	name_of(wf, sizeof(wf), "fl-one");
	REQUIRE(dura_engine_register(eng, make_wf(wf, "a>b", "1")) == 0);
	REQUIRE(dura_engine_register(eng, make_wf(wf, "a>c", "2")) == 0);
	CHECK(dura_engine_register(eng, make_wf(wf, "a>d", "2")) == DURA_EEXISTS);
	int versioned = has_versions(s);
	char id1[DURA_UUID_LEN + 1], id2[DURA_UUID_LEN + 1];
	REQUIRE(dura_run_start(eng, wf, NULL, "{}", NULL, id2) == 0);
	dura_run_options ro = DURA_RUN_OPTIONS_INIT;
	ro.workflow_version = "1";
	REQUIRE(dura_run_start(eng, wf, NULL, "{}", &ro, id1) == 0);
	ro.workflow_version = "3";
	char none[DURA_UUID_LEN + 1];
	CHECK(dura_run_start(eng, wf, NULL, "{}", &ro, none) == DURA_ENOTFOUND);
	dura_record *r1 = NULL, *r2 = NULL;
	REQUIRE(dura_run_execute(eng, id1, &r1) == 0);
	REQUIRE(dura_run_execute(eng, id2, &r2) == 0);
	CHECK(r1->run_state == DURA_RUN_COMPLETED && r2->run_state == DURA_RUN_COMPLETED);
	/* each ran its own version's code */
	CHECK(ran(r1->state, "b", "1") && !ran(r1->state, "c", NULL));
	CHECK(ran(r2->state, "c", "2") && !ran(r2->state, "b", NULL));
	if (versioned) {
		CHECK_STR(r1->workflow_version, "1");
		CHECK_STR(r2->workflow_version, "2");
		dura_step_list h;
		REQUIRE(dura_store_history(s, id1, 0, 0, &h) == 0);
		for (size_t i = 0; i < h.count; i++)
			CHECK_STR(h.items[i].workflow_version, "1");
		dura_step_list_free(&h);
		/* both definitions are in the store */
		dura_workflow_def_list defs;
		REQUIRE(dura_store_workflow_list(s, wf, &defs) == 0);
		CHECK(defs.count == 2);
		dura_workflow_def_list_free(&defs);
	}
	dura_record_free(r1);
	dura_record_free(r2);
	dura_engine_close(eng);
	dura_store_close(s);
}

/* A worker of one version: in a child process (fork after the parent used
 * dura), until told to stop by SIGTERM, or for a while. */
static void version_worker(const char *wf, const char *chain, const char *version)
{
	alarm(120);
	dura_store *s = NULL;
	dura_engine *eng = NULL;
	dura_worker *w = NULL;
	if (dura_store_open(&s, g_url, NULL) || dura_engine_open(&eng, s, NULL) ||
	    dura_engine_register(eng, make_wf(wf, chain, version)))
		_exit(3);
	dura_worker_options o = wopts(wf);
	if (dura_worker_start(&w, eng, &o))
		_exit(4);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	dura_worker_stop(w, 5000);
	dura_engine_close(eng);
	dura_store_close(s);
	_exit(0);
}

#define NRUNS 12

/* The deploy: runs of version 1 and 2 of one workflow, one worker (process)
 * per version; each run is executed only by its version's code. */
static void two_versions_two_workers(void)
{
	dura_store *s = NULL;
	dura_engine *eng = NULL;
	REQUIRE(dura_store_open(&s, g_url, NULL) == 0);
	if (!has_versions(s)) {
		dura_store_close(s);
		SKIP("the store keeps no workflow versions");
	}
	REQUIRE(dura_engine_open(&eng, s, NULL) == 0);
	char wf[96];
	name_of(wf, sizeof(wf), "fl-deploy");
	/* the parent knows both versions, to start runs of each; it runs none */
	REQUIRE(dura_engine_register(eng, make_wf(wf, "a>b", "1")) == 0);
	REQUIRE(dura_engine_register(eng, make_wf(wf, "a>c>d", "2")) == 0);
	char ids[2 * NRUNS][DURA_UUID_LEN + 1];
	dura_run_options ro = DURA_RUN_OPTIONS_INIT;
	for (int i = 0; i < 2 * NRUNS; i++) {
		ro.workflow_version = i % 2 ? "2" : "1";
		REQUIRE(dura_run_start(eng, wf, NULL, "{}", &ro, ids[i]) == 0);
	}
	int multi = multi_process(s);
	pid_t pids[2] = {-1, -1};
	dura_engine *e1 = NULL, *e2 = NULL;
	dura_worker *w1 = NULL, *w2 = NULL;
	if (multi) {
		if ((pids[0] = fork()) == 0)
			version_worker(wf, "a>b", "1");
		if ((pids[1] = fork()) == 0)
			version_worker(wf, "a>c>d", "2");
	} else { /* one process: two engines on the one handle */
		REQUIRE(dura_engine_open(&e1, s, NULL) == 0 && dura_engine_open(&e2, s, NULL) == 0);
		REQUIRE(dura_engine_register(e1, make_wf(wf, "a>b", "1")) == 0);
		REQUIRE(dura_engine_register(e2, make_wf(wf, "a>c>d", "2")) == 0);
		dura_worker_options o = wopts(wf);
		REQUIRE(dura_worker_start(&w1, e1, &o) == 0 && dura_worker_start(&w2, e2, &o) == 0);
	}
	for (int i = 0; i < 2 * NRUNS; i++)
		CHECK(wait_ended(s, ids[i], 60000) == DURA_RUN_COMPLETED);
	if (multi) {
		for (int c = 0; c < 2; c++) {
			kill(pids[c], SIGTERM);
			CHECK(reap(pids[c]) == 0);
		}
	} else {
		dura_worker_stop(w1, 5000);
		dura_worker_stop(w2, 5000);
		dura_engine_close(e1);
		dura_engine_close(e2);
	}
	/* every node of a version-1 run ran version 1's code in worker 1, and so on */
	for (int i = 0; i < 2 * NRUNS; i++) {
		const char *v = i % 2 ? "2" : "1";
		dura_record *r = NULL;
		REQUIRE(dura_store_get_run(s, ids[i], &r) == 0);
		CHECK_STR(r->workflow_version, v);
		json_t *st = json_loads(r->state, 0, NULL), *ran = json_object_get(st, "ran");
		CHECK(json_array_size(ran) == (i % 2 ? 3u : 2u));
		size_t k;
		json_t *e;
		json_array_foreach(ran, k, e)
		{
			CHECK_STR(json_string_value(json_array_get(e, 1)), v);
			if (multi)
				CHECK(json_integer_value(json_array_get(e, 2)) == pids[i % 2]);
		}
		json_decref(st);
		dura_step_list h;
		REQUIRE(dura_store_history(s, ids[i], 0, 0, &h) == 0);
		for (size_t j = 0; j < h.count; j++)
			CHECK_STR(h.items[j].workflow_version, v);
		dura_step_list_free(&h);
		dura_record_free(r);
	}
	/* the store counts them per version */
	dura_run_count_list cl;
	REQUIRE(dura_store_run_counts(s, wf, &cl) == 0);
	CHECK(cl.count == 2 && cl.items[0].count == NRUNS && cl.items[1].count == NRUNS);
	dura_run_count_list_free(&cl);
	dura_engine_close(eng);
	dura_store_close(s);
}

/* A run moved to version 2 half way continues there; one at a node that
 * version 3 removed is refused with a message naming the node, and
 * finishes on its own version. */
static void migrate_continues_or_refuses(void)
{
	dura_store *s = NULL;
	dura_engine *old = NULL, *neu = NULL;
	REQUIRE(dura_store_open(&s, g_url, NULL) == 0);
	if (!has_versions(s)) {
		dura_store_close(s);
		SKIP("the store keeps no workflow versions");
	}
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.max_steps = 1; /* one step per dura_run_execute: the run stops between nodes */
	REQUIRE(dura_engine_open(&old, s, &eo) == 0 && dura_engine_open(&neu, s, NULL) == 0);
	char wf[96];
	name_of(wf, sizeof(wf), "fl-move");
	REQUIRE(dura_engine_register(old, make_wf(wf, "a>b>c", "1")) == 0);
	REQUIRE(dura_engine_register(neu, make_wf(wf, "a>b>x", "2")) == 0);
	REQUIRE(dura_engine_register(neu, make_wf(wf, "a>y", "3")) == 0);
	char id[DURA_UUID_LEN + 1], kept[DURA_UUID_LEN + 1];
	dura_run_options ro = DURA_RUN_OPTIONS_INIT;
	ro.workflow_version = "1";
	REQUIRE(dura_run_start(old, wf, NULL, "{}", &ro, id) == 0);
	REQUIRE(dura_run_start(old, wf, NULL, "{}", &ro, kept) == 0);
	dura_record *r = NULL;
	REQUIRE(dura_run_execute(old, id, &r) == 0);
	CHECK_STR(r->status, "b");
	dura_record_free(r);
	REQUIRE(dura_run_execute(old, kept, &r) == 0);
	CHECK_STR(r->status, "b");
	dura_record_free(r);

	/* the engine of versions 2 and 3 does not run a version-1 run */
	CHECK(dura_run_execute(neu, id, NULL) == DURA_ENOTFOUND);
	CHECK(strstr(dura_error_last()->message, "version 1") != NULL);

	/* moved to 2: it goes on b -> x on version 2's code */
	REQUIRE(dura_store_migrate_run(s, id, "2", NULL) == 0);
	REQUIRE(dura_run_execute(neu, id, &r) == 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK_STR(r->workflow_version, "2");
	CHECK(ran(r->state, "a", "1") && ran(r->state, "b", "2") && ran(r->state, "x", "2"));
	CHECK(!ran(r->state, "c", NULL));
	dura_record_free(r);
	dura_step_list h;
	REQUIRE(dura_store_history(s, id, 0, 0, &h) == 0);
	REQUIRE(h.count == 3);
	CHECK_STR(h.items[0].workflow_version, "1");
	CHECK_STR(h.items[1].workflow_version, "2");
	CHECK_STR(h.items[2].workflow_version, "2");
	dura_step_list_free(&h);

	/* version 3 has no node b: refused, naming it; the run stays on 1 and finishes there */
	CHECK(dura_store_migrate_run(s, kept, "3", NULL) == DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "'b'") != NULL);
	for (int i = 0; i < 4; i++)
		REQUIRE(dura_run_execute(old, kept, NULL) == 0);
	REQUIRE(dura_store_get_run(s, kept, &r) == 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK_STR(r->workflow_version, "1");
	CHECK(ran(r->state, "c", "1"));
	dura_record_free(r);
	dura_engine_close(old);
	dura_engine_close(neu);
	dura_store_close(s);
}

/* ---- retention by workers ------------------------------------------------------------ */

/* A workflow whose completed runs are kept 1 ms, wholly: a worker that
 * serves it deletes them; one that keeps its failed runs keeps those. */
static void worker_applies_retention(void)
{
	dura_store *s = NULL;
	dura_engine *eng = NULL;
	REQUIRE(dura_store_open(&s, g_url, NULL) == 0);
	if (!has_versions(s)) {
		dura_store_close(s);
		SKIP("the store keeps no workflow versions (no retention)");
	}
	REQUIRE(dura_engine_open(&eng, s, NULL) == 0);
	char wf[96];
	name_of(wf, sizeof(wf), "fl-keep");
	dura_workflow *w = make_wf(wf, "a>b", NULL);
	REQUIRE(w != NULL);
	dura_retention pol = DURA_RETENTION_INIT;
	pol.completed_ms = 1;
	pol.whole = 1;
	REQUIRE(dura_workflow_set_retention(w, &pol) == 0);
	pol.completed_ms = -1;
	CHECK(dura_workflow_set_retention(w, &pol) == DURA_EINVAL);
	REQUIRE(dura_engine_register(eng, w) == 0);
	char ids[8][DURA_UUID_LEN + 1];
	for (int i = 0; i < 8; i++)
		REQUIRE(dura_run_start(eng, wf, NULL, "{}", NULL, ids[i]) == 0);
	/* an ended run that is not completed stays */
	char cancelled[DURA_UUID_LEN + 1];
	REQUIRE(dura_run_start(eng, wf, NULL, "{}", NULL, cancelled) == 0);
	REQUIRE(dura_run_cancel(eng, cancelled) == 0);
	dura_worker *wk = NULL;
	dura_worker_options o = wopts(wf);
	o.retention_ms = 50;
	REQUIRE(dura_worker_start(&wk, eng, &o) == 0);
	int gone = 0;
	for (int tries = 0; tries < 1500 && gone < 8; tries++) {
		gone = 0;
		for (int i = 0; i < 8; i++) {
			dura_record *r = NULL;
			int rc = dura_store_get_run(s, ids[i], &r);
			gone += rc == DURA_ENOTFOUND;
			dura_record_free(r);
		}
		if (gone < 8)
			sleep_ms(20);
	}
	CHECK(gone == 8);
	/* the scheduler thread counts a batch once its store call is back: a moment after the runs went */
	dura_worker_stats st;
	for (int tries = 0; tries < 500; tries++) {
		REQUIRE(dura_worker_stats_get(wk, &st) == 0);
		if (st.pruned >= 8)
			break;
		sleep_ms(10);
	}
	CHECK(st.pruned >= 8);
	dura_worker_stop(wk, 5000);
	dura_record *r = NULL;
	CHECK(dura_store_get_run(s, cancelled, &r) == 0 && r->run_state == DURA_RUN_CANCELLED);
	dura_record_free(r);
	dura_engine_close(eng);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fleet_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	static const test_case tests[] = {
		{"fingerprint_follows_shape", fingerprint_follows_shape},
		{"versions_in_one_engine", versions_in_one_engine},
		{"two_versions_two_workers", two_versions_two_workers},
		{"migrate_continues_or_refuses", migrate_continues_or_refuses},
		{"worker_applies_retention", worker_applies_retention},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "fleet %.*s", (int)strcspn(g_url, ":"), g_url);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
}
