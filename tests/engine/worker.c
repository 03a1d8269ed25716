/*
 * Workers on one store (argv[1]): claiming, executing, heartbeats, rescue,
 * fencing, graceful stop and bad input.
 *
 * Nodes count what they do in memory shared by every process of the test
 * (an anonymous MAP_SHARED mapping made before any fork): how many
 * executors are inside a node of each run at this instant (never more
 * than one, except across a SIGKILL or a SIGSTOP, which the tests that
 * cause them account for), and how many times each node of each run ran.
 * What the store holds is checked through the store: every run completed,
 * its history each node exactly once, in order.
 *
 * The multi-process tests skip on a store that lives in one process.
 * No test passes or fails on a time; the timeouts only bound liveness.
 *
 * usage: worker_tests STORE_URL [FILTER]
 */
#include "dura.h"
#include "dura/store.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_url;

#define MAX_RUNS 64
#define NODES 5
#define MAX_CHILDREN 4

typedef struct shared {
	_Atomic int holder[MAX_RUNS];  /* pid inside a node of the run, 0: none */
	_Atomic int at[MAX_RUNS];      /* 1 + the node an executor is inside, 0: none */
	_Atomic int overlaps;          /* a node began while another executor was inside one of the run */
	_Atomic int execs[MAX_RUNS][NODES];
	_Atomic int sleep_ms[NODES];   /* how long each node takes */
	_Atomic int slow_pid;          /* this pid's node 1 sleeps slow_ms (fencing) */
	_Atomic int slow_ms;
	_Atomic int in_slow;           /* the slow pid is inside node 1 */
	_Atomic int midrun[MAX_CHILDREN]; /* child c is inside a node 1..NODES-2 */
	_Atomic int in_node;           /* executors inside a node now, all runs */
	_Atomic int fail_first[NODES]; /* the first attempt of this node fails */
	dura_worker_stats stats[MAX_CHILDREN];
	_Atomic int reported[MAX_CHILDREN];
	/* flow control: executors inside a node now and at most, of every run
	 * and per concurrency key (run i has key i % FLOW_KEYS) */
	_Atomic int cur_all, max_all, cur_key[3], max_key[3];
	_Atomic int order_n, order[MAX_RUNS]; /* runs in the order their node 0 began */
	char reg_id[DURA_MAX_ID_LEN + 1]; /* a child worker's id, for the registry test */
	_Atomic int reg_ready;
	_Atomic int hold;              /* node 1 waits while it is set */
} shared;

#define FLOW_KEYS 3

static shared *sh;
static dura_worker *_Atomic g_self; /* node 0 tries to stop this worker (its own) */
static _Atomic int g_self_rc = 1;
static int g_child = -1; /* index of this process among the children, -1: the parent */

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static void reset_shared(void)
{
	memset(sh, 0, sizeof(*sh));
}

/* ---- the workflow ------------------------------------------------------------ */

static void raise_max(_Atomic int *max, int v)
{
	int m = atomic_load(max);
	while (v > m && !atomic_compare_exchange_weak(max, &m, v))
		;
}

static int node_fn(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	int node = (int)(intptr_t)payload;
	int i = (int)json_integer_value(json_object_get(state, "i"));
	int me = (int)getpid();
	if (i < 0 || i >= MAX_RUNS)
		return dura_ctx_fail(ctx, DURA_EINVAL, "no run index");
	int expect = 0;
	if (!atomic_compare_exchange_strong(&sh->holder[i], &expect, me))
		atomic_fetch_add(&sh->overlaps, 1);
	atomic_fetch_add(&sh->in_node, 1);
	raise_max(&sh->max_all, atomic_fetch_add(&sh->cur_all, 1) + 1);
	raise_max(&sh->max_key[i % FLOW_KEYS], atomic_fetch_add(&sh->cur_key[i % FLOW_KEYS], 1) + 1);
	if (node == 0)
		atomic_store(&sh->order[atomic_fetch_add(&sh->order_n, 1) % MAX_RUNS], i);
	atomic_store(&sh->at[i], node + 1);
	if (g_child >= 0 && node >= 1 && node <= NODES - 2)
		atomic_store(&sh->midrun[g_child], 1);
	dura_worker *self = atomic_load(&g_self);
	if (node == 0 && self)
		atomic_store(&g_self_rc, dura_worker_stop(self, 0));
	int ms = atomic_load(&sh->sleep_ms[node]);
	if (node == 1 && atomic_load(&sh->slow_pid) == me) {
		atomic_store(&sh->in_slow, 1);
		ms = atomic_load(&sh->slow_ms);
	}
	if (ms > 0)
		sleep_ms(ms);
	while (node == 1 && atomic_load(&sh->hold))
		sleep_ms(5);
	atomic_fetch_add(&sh->execs[i][node], 1);
	int fail = atomic_load(&sh->fail_first[node]) && dura_ctx_attempt(ctx) == 1;
	char key[8];
	snprintf(key, sizeof(key), "n%d", node);
	json_object_set_new(state, key, json_integer(me));
	atomic_store(&sh->at[i], 0);
	atomic_fetch_sub(&sh->cur_key[i % FLOW_KEYS], 1);
	atomic_fetch_sub(&sh->cur_all, 1);
	atomic_fetch_sub(&sh->in_node, 1);
	expect = me;
	atomic_compare_exchange_strong(&sh->holder[i], &expect, 0);
	if (fail)
		return dura_ctx_fail(ctx, DURA_ERROR, "first attempt fails");
	return 0;
}

typedef struct env {
	dura_store *store;
	dura_engine *eng;
	char wf[64];
	char ids[MAX_RUNS][DURA_UUID_LEN + 1];
	int nruns;
} env;

/* A store, an engine and a NODES-node workflow of a fresh name, with flow
 * limits (0: none). */
static int env_open_limited(env *e, int max_attempts, int max_running, int max_per_key)
{
	memset(e, 0, sizeof(*e));
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(e->wf, sizeof(e->wf), "wk-%s", id + 24);
	if (dura_store_open(&e->store, g_url, NULL))
		return -1;
	if (dura_engine_open(&e->eng, e->store, NULL))
		return -1;
	dura_workflow *wf;
	if (dura_workflow_new(&wf, e->wf))
		return -1;
	dura_node_options no = DURA_NODE_OPTIONS_INIT;
	no.max_attempts = max_attempts;
	no.backoff_initial_ms = 200;
	for (int n = 0; n < NODES; n++) {
		char name[8], next[8];
		snprintf(name, sizeof(name), "n%d", n);
		if (dura_workflow_add_node(wf, name, node_fn, (void *)(intptr_t)n, &no))
			return -1;
		if (n > 0) {
			snprintf(next, sizeof(next), "n%d", n - 1);
			if (dura_workflow_add_edge(wf, next, name))
				return -1;
		}
	}
	if (dura_workflow_set_concurrency(wf, max_running, max_per_key) || dura_workflow_set_start(wf, "n0") ||
	    dura_engine_register(e->eng, wf))
		return -1;
	return 0;
}

static int env_open(env *e, int max_attempts)
{
	return env_open_limited(e, max_attempts, 0, 0);
}

/* Ack the outbox events of this test's workflow, so that the suites run
 * after this one on the same database do not page through them. */
static void drop_events(env *e)
{
	for (int round = 0; round < 100; round++) {
		dura_event_list l;
		if (dura_store_outbox_poll(e->store, 10000, &l))
			return;
		size_t mine = 0;
		for (size_t i = 0; i < l.count; i++)
			if (strcmp(l.items[i].workflow_name, e->wf) == 0) {
				dura_store_outbox_ack(e->store, l.items[i].id);
				mine++;
			}
		size_t n = l.count;
		dura_event_list_free(&l);
		if (mine == 0 || n < 10000)
			return;
	}
}

static void env_close(env *e)
{
	drop_events(e);
	dura_engine_close(e->eng);
	dura_store_close(e->store);
}

static int start_runs(env *e, int n)
{
	for (int i = 0; i < n; i++) {
		char st[32];
		snprintf(st, sizeof(st), "{\"i\":%d}", e->nruns);
		if (dura_run_start(e->eng, e->wf, NULL, st, NULL, e->ids[e->nruns]))
			return -1;
		e->nruns++;
	}
	return 0;
}

/* n runs with a priority each (prio(i)) and concurrency key "k<i % FLOW_KEYS>". */
static int start_runs_flow(env *e, int n, int (*prio)(int))
{
	for (int i = 0; i < n; i++) {
		char st[32], key[8];
		snprintf(st, sizeof(st), "{\"i\":%d}", e->nruns);
		snprintf(key, sizeof(key), "k%d", e->nruns % FLOW_KEYS);
		dura_run_options ro = DURA_RUN_OPTIONS_INIT;
		ro.priority = prio ? prio(e->nruns) : 0;
		ro.concurrency_key = key;
		if (dura_run_start(e->eng, e->wf, NULL, st, &ro, e->ids[e->nruns]))
			return -1;
		e->nruns++;
	}
	return 0;
}

static int multi_process(dura_store *s)
{
	dura_store_info info;
	return dura_store_info_get(s, &info) == 0 && (info.caps & DURA_CAP_MULTI_PROCESS) && (info.caps & DURA_CAP_DURABLE);
}

/* Every run final? */
static int all_final(env *e)
{
	for (int i = 0; i < e->nruns; i++) {
		dura_record *r;
		if (dura_store_get_run(e->store, e->ids[i], &r))
			return 0;
		int active = dura_run_state_active(r->run_state);
		dura_record_free(r);
		if (active)
			return 0;
	}
	return 1;
}

/* Wait until every run is final or timeout_ms passes (liveness only). */
static int wait_final(env *e, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (all_final(e))
			return 1;
		sleep_ms(20);
	}
	return all_final(e);
}

/* Every run completed, its history each node once, in order; the number
 * of violations. */
static int verify_runs(env *e)
{
	int bad = 0;
	for (int i = 0; i < e->nruns; i++) {
		dura_record *r;
		if (dura_store_get_run(e->store, e->ids[i], &r)) {
			bad++;
			continue;
		}
		if (r->run_state != DURA_RUN_COMPLETED || r->step_no != NODES) {
			fprintf(stderr, "    run %d: %s, %lld steps (%s)\n", i, dura_run_state_name(r->run_state),
			        (long long)r->step_no, r->error);
			bad++;
		}
		if (r->lease_owner[0]) {
			fprintf(stderr, "    run %d: still leased to %s\n", i, r->lease_owner);
			bad++;
		}
		dura_record_free(r);
		dura_step_list h;
		if (dura_store_history(e->store, e->ids[i], 0, 0, &h)) {
			bad++;
			continue;
		}
		if (h.count != NODES) {
			fprintf(stderr, "    run %d: %zu steps in its history, not %d\n", i, h.count, NODES);
			bad++;
		}
		for (size_t s = 0; s < h.count; s++) {
			char want[32];
			snprintf(want, sizeof(want), "n%zu", s);
			if (h.items[s].step != (int64_t)s || strcmp(h.items[s].node_id, want) != 0) {
				fprintf(stderr, "    run %d: step %zu is %lld %s\n", i, s, (long long)h.items[s].step, h.items[s].node_id);
				bad++;
			}
		}
		dura_step_list_free(&h);
	}
	return bad;
}

/* The worker's stats once it holds nothing: a run is final in the store
 * a moment before its executor has counted it. */
static int settled_stats(dura_worker *w, dura_worker_stats *out)
{
	for (int i = 0; i < 3000; i++) {
		int rc = dura_worker_stats_get(w, out);
		if (rc || out->held == 0)
			return rc;
		sleep_ms(10);
	}
	return dura_worker_stats_get(w, out);
}

static dura_worker_options opts_of(int threads, int64_t lease, int64_t hb, int64_t poll)
{
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = threads;
	o.lease_ms = lease;
	o.heartbeat_ms = hb;
	o.poll_ms = poll;
	return o;
}

/* ---- bad input ------------------------------------------------------------------ */

static void bad_input(void)
{
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 1) == 0);
	dura_record *before;
	REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &before), 0);

	dura_worker *w = (dura_worker *)&e; /* must be overwritten with NULL */
	dura_worker_options o;
#define BAD(field, value, want)                                          \
	do {                                                             \
		o = opts_of(1, 3000, 0, 500);                            \
		o.field = value;                                         \
		w = (dura_worker *)&e;                                   \
		CHECK_RC(dura_worker_start(&w, e.eng, &o), want);        \
		CHECK(w == NULL);                                        \
		CHECK(dura_error_last() && dura_error_last()->code == want); \
	} while (0)
	BAD(threads, 0, DURA_EINVAL);
	BAD(threads, -1, DURA_EINVAL);
	BAD(threads, DURA_WORKER_MAX_THREADS + 1, DURA_EINVAL);
	BAD(lease_ms, 0, DURA_EINVAL);
	BAD(lease_ms, DURA_WORKER_MIN_LEASE_MS - 1, DURA_EINVAL);
	BAD(heartbeat_ms, 3000, DURA_EINVAL);
	BAD(heartbeat_ms, 1501, DURA_EINVAL);
	BAD(heartbeat_ms, -5, DURA_EINVAL);
	BAD(poll_ms, 0, DURA_EINVAL);
	BAD(poll_ms, 60001, DURA_EINVAL);
	BAD(batch, -1, DURA_EINVAL);
	BAD(batch, 1001, DURA_EINVAL);
	BAD(group_commit, 2, DURA_EINVAL);
	BAD(group_commit, -2, DURA_EINVAL);
	BAD(version, 99, DURA_EVERSION);
	BAD(name, "", DURA_EINVAL);
	BAD(nworkflows, 2, DURA_EINVAL); /* a count without a list */
	const char *unknown[2] = {e.wf, "no-such-workflow"};
	o = opts_of(1, 3000, 0, 500);
	o.workflows = unknown;
	o.nworkflows = 2;
	w = (dura_worker *)&e;
	CHECK_RC(dura_worker_start(&w, e.eng, &o), DURA_ENOTFOUND);
	CHECK(w == NULL);
	CHECK(strstr(dura_error_last()->message, "no-such-workflow") != NULL);
	const char *null_name[1] = {NULL};
	o.workflows = null_name;
	o.nworkflows = 1;
	CHECK_RC(dura_worker_start(&w, e.eng, &o), DURA_EINVAL);
	CHECK_RC(dura_worker_start(NULL, e.eng, NULL), DURA_EINVAL);
	CHECK_RC(dura_worker_start(&w, NULL, NULL), DURA_EINVAL);
	CHECK(w == NULL);
	/* an engine without workflows has nothing to serve */
	dura_engine *empty;
	REQUIRE_RC(dura_engine_open(&empty, e.store, NULL), 0);
	CHECK_RC(dura_worker_start(&w, empty, NULL), DURA_EINVAL);
	dura_engine_close(empty);

	CHECK_RC(dura_worker_stop(NULL, 0), DURA_EINVAL);
	CHECK_RC(dura_worker_stats_get(NULL, NULL), DURA_EINVAL);
	CHECK(dura_worker_id(NULL) == NULL);

	/* nothing was claimed, leased or changed */
	dura_record *after;
	REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &after), 0);
	CHECK(after->version == before->version);
	CHECK_STR(after->lease_owner, "");
	CHECK(after->step_no == 0);
	dura_record_free(after);
	dura_record_free(before);

	/* a stop of a stopped worker is refused (the handle is not reused
	 * here: nothing is allocated between the two stops) */
	o = opts_of(1, 3000, 0, 500);
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	CHECK(strlen(dura_worker_id(w)) > DURA_UUID_LEN);
	CHECK_STR(dura_worker_name(w), "worker");
	REQUIRE(wait_final(&e, 60000));
	dura_worker *stale = w;
	CHECK_RC(dura_worker_stop(w, 1000), 0);
	CHECK_RC(dura_worker_stop(stale, 1000), DURA_EINVAL);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
#undef BAD
}

/* ---- in one process --------------------------------------------------------------- */

/* Two workers of 4 threads share 40 runs: no run is in two executors at
 * once, every run completes with each node once. */
static void two_workers_share_runs(void)
{
	reset_shared();
	for (int n = 0; n < NODES; n++)
		sh->sleep_ms[n] = 2;
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 40) == 0);
	dura_worker *a, *b;
	dura_worker_options o = opts_of(4, 3000, 0, 50);
	o.name = "a";
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	o.name = "b";
	o.batch = 2;
	REQUIRE_RC(dura_worker_start(&b, e.eng, &o), 0);
	CHECK(strcmp(dura_worker_id(a), dura_worker_id(b)) != 0);
	CHECK(wait_final(&e, 120000));
	dura_worker_stats sa, sb;
	CHECK_RC(settled_stats(a, &sa), 0);
	CHECK_RC(settled_stats(b, &sb), 0);
	CHECK_RC(dura_worker_stop(a, 5000), 0);
	CHECK_RC(dura_worker_stop(b, 5000), 0);
	fprintf(stderr, "    a: claimed %llu completed %llu; b: claimed %llu completed %llu\n",
	        (unsigned long long)sa.claimed, (unsigned long long)sa.completed, (unsigned long long)sb.claimed,
	        (unsigned long long)sb.completed);
	CHECK(sa.completed + sb.completed == 40);
	CHECK(sa.claimed + sb.claimed == 40);
	CHECK(sa.abandoned + sb.abandoned == 0);
	CHECK(sa.errors + sb.errors == 0);
	CHECK(sa.failed + sb.failed == 0);
	CHECK(sh->overlaps == 0);
	for (int i = 0; i < e.nruns; i++)
		for (int n = 0; n < NODES; n++)
			CHECK(sh->execs[i][n] == 1);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* A node far longer than the lease: the heartbeats keep the lease, so a
 * second worker polling all along never takes the run over. */
static void heartbeats_keep_lease(void)
{
	reset_shared();
	sh->sleep_ms[2] = 2000; /* 4 leases of 500 ms */
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 1) == 0);
	dura_worker *a, *b;
	dura_worker_options o = opts_of(1, 500, 100, 10);
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	/* b starts once a holds the run */
	for (int i = 0; i < 3000 && sh->execs[0][0] == 0; i++)
		sleep_ms(5);
	REQUIRE_RC(dura_worker_start(&b, e.eng, &o), 0);
	CHECK(wait_final(&e, 60000));
	dura_worker_stats sa, sb;
	CHECK_RC(settled_stats(a, &sa), 0);
	CHECK_RC(settled_stats(b, &sb), 0);
	CHECK_RC(dura_worker_stop(a, 5000), 0);
	CHECK_RC(dura_worker_stop(b, 5000), 0);
	fprintf(stderr, "    a: %llu heartbeats; b claimed %llu\n", (unsigned long long)sa.heartbeats,
	        (unsigned long long)sb.claimed);
	CHECK(sa.completed == 1);
	CHECK(sa.abandoned == 0);
	CHECK(sa.heartbeats >= 1);
	CHECK(sb.claimed == 0);
	CHECK(sh->overlaps == 0);
	for (int n = 0; n < NODES; n++)
		CHECK(sh->execs[0][n] == 1);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* Stop with a drain: the nodes running finish and commit, the runs are
 * released where they stand and another worker completes them. */
static void graceful_stop(void)
{
	reset_shared();
	sh->sleep_ms[1] = 300;
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 2) == 0);
	dura_worker *a, *b;
	dura_worker_options o = opts_of(2, 3000, 0, 20);
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	/* both runs inside node 1 */
	for (int i = 0; i < 60000 && !(sh->at[0] == 2 && sh->at[1] == 2); i++)
		sleep_ms(1);
	CHECK(sh->at[0] == 2 && sh->at[1] == 2);
	CHECK_RC(dura_worker_stop(a, 60000), 0);
	for (int i = 0; i < 2; i++) {
		dura_record *r;
		REQUIRE_RC(dura_store_get_run(e.store, e.ids[i], &r), 0);
		CHECK(r->run_state == DURA_RUN_RUNNING);
		CHECK(r->step_no == 2); /* n0 and the drained n1 */
		CHECK_STR(r->status, "n2");
		CHECK_STR(r->lease_owner, "");
		dura_record_free(r);
	}
	CHECK(sh->in_node == 0);
	REQUIRE_RC(dura_worker_start(&b, e.eng, &o), 0);
	CHECK(wait_final(&e, 60000));
	dura_worker_stats sb;
	CHECK_RC(settled_stats(b, &sb), 0);
	CHECK(sb.rescued == 0); /* released by the worker that stopped: handed over, not rescued */
	CHECK(sb.completed == 2);
	CHECK_RC(dura_worker_stop(b, 5000), 0);
	for (int i = 0; i < 2; i++)
		for (int n = 0; n < NODES; n++)
			CHECK(sh->execs[i][n] == 1);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* A drain too short: the lease of the node still running is released at
 * once, the stop says so, and the run still ends with each step once. */
static void stop_past_drain(void)
{
	reset_shared();
	sh->sleep_ms[1] = 800;
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 1) == 0);
	dura_worker *a, *b;
	dura_worker_options o = opts_of(1, 3000, 0, 20);
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	for (int i = 0; i < 60000 && sh->at[0] != 2; i++)
		sleep_ms(1);
	CHECK_RC(dura_worker_stop(a, 10), DURA_ETIMEOUT);
	dura_record *r;
	REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &r), 0);
	CHECK(r->run_state == DURA_RUN_RUNNING);
	CHECK_STR(r->lease_owner, "");
	dura_record_free(r);
	REQUIRE_RC(dura_worker_start(&b, e.eng, &o), 0);
	CHECK(wait_final(&e, 60000));
	CHECK_RC(dura_worker_stop(b, 5000), 0);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* A long poll is cut short by a run started in this process; a retry's
 * backoff holds no lease and the run is claimed again when due. */
static void wakeup_and_retry(void)
{
	reset_shared();
	sh->fail_first[3] = 1;
	env e;
	REQUIRE(env_open(&e, 2) == 0);
	dura_worker *a;
	dura_worker_options o = opts_of(1, 3000, 0, 60000);
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	sleep_ms(1500); /* the empty polls have backed off past a second */
	REQUIRE(start_runs(&e, 1) == 0);
	/* without the wake-up the next poll could be a minute away; the
	 * retry's due time, 200 ms after the failure, wakes it again */
	CHECK(wait_final(&e, 30000));
	dura_worker_stats sa;
	CHECK_RC(settled_stats(a, &sa), 0);
	CHECK_RC(dura_worker_stop(a, 5000), 0);
	CHECK(sa.completed == 1);
	CHECK(sa.claimed == 2);  /* released for the backoff, claimed again */
	CHECK(sa.rescued == 0);  /* it released the run itself */
	CHECK(sh->execs[0][3] == 2);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* A node cannot stop the worker that runs it (it would wait for itself). */
static void stop_from_own_node(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	dura_worker *a;
	dura_worker_options o = opts_of(1, 3000, 0, 20);
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	atomic_store(&g_self, a);
	REQUIRE(start_runs(&e, 1) == 0);
	CHECK(wait_final(&e, 60000));
	atomic_store(&g_self, NULL);
	CHECK(atomic_load(&g_self_rc) == DURA_EINVAL);
	CHECK_RC(dura_worker_stop(a, 5000), 0);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* Group commit with 8 threads, and an operator pausing every run once in
 * the middle: a commit that lost its compare-and-swap to the pause (in a
 * group or alone) is made again at the new version, the run stops, and
 * resumed it completes with each step once. */
static void group_commit_and_pauses(void)
{
	reset_shared();
	for (int n = 0; n < NODES; n++)
		sh->sleep_ms[n] = 3;
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 24) == 0);
	dura_worker *a;
	dura_worker_options o = opts_of(8, 3000, 0, 20);
	o.group_commit = 1;
	REQUIRE_RC(dura_worker_start(&a, e.eng, &o), 0);
	int paused = 0;
	for (int i = 0; i < e.nruns; i++) {
		int rc = dura_run_pause(e.eng, e.ids[i]);
		CHECK(rc == 0 || rc == DURA_ECONFLICT); /* ECONFLICT: it completed already */
		paused += rc == 0;
	}
	for (int i = 0; i < e.nruns; i++) {
		dura_record *r;
		REQUIRE_RC(dura_store_get_run(e.store, e.ids[i], &r), 0);
		int st = r->run_state;
		dura_record_free(r);
		if (st == DURA_RUN_PAUSED)
			CHECK_RC(dura_run_resume(e.eng, e.ids[i]), 0);
	}
	CHECK(wait_final(&e, 120000));
	dura_worker_stats sa;
	CHECK_RC(settled_stats(a, &sa), 0);
	CHECK_RC(dura_worker_stop(a, 5000), 0);
	fprintf(stderr, "    %d runs paused and resumed; %llu commits written in %llu group commits\n", paused,
	        (unsigned long long)sa.group_commits, (unsigned long long)sa.group_batches);
	CHECK(sa.completed == (uint64_t)e.nruns);
	CHECK(sa.errors == 0 && sa.abandoned == 0);
	CHECK(sh->overlaps == 0);
	for (int i = 0; i < e.nruns; i++)
		for (int n = 0; n < NODES; n++)
			CHECK(sh->execs[i][n] == 1);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* ---- allocation failure ------------------------------------------------------- */

/* Allocations of the calling thread only are counted and failed: the
 * worker's own threads, once started, allocate as they please. */
static _Thread_local long t_count, t_fail_at; /* fail the t_fail_at-th (0: none) */

static int t_fails(void)
{
	return t_fail_at && ++t_count == t_fail_at;
}

static void *t_malloc(size_t n)
{
	return t_fails() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
	return t_fails() ? NULL : realloc(p, n);
}

/* Every allocation of dura_worker_start failed in turn: DURA_ENOMEM, no
 * worker, nothing claimed (and, under ASan, nothing leaked). */
static void start_out_of_memory(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs(&e, 1) == 0);
	dura_worker_options o = opts_of(2, 3000, 0, 20);
	int failures = 0, n;
	for (n = 1; n < 1000; n++) {
		dura_worker *w = NULL;
		t_count = 0;
		t_fail_at = n;
		int rc = dura_worker_start(&w, e.eng, &o);
		int hit = t_count >= n;
		t_fail_at = 0;
		if (rc == 0) {
			CHECK(!hit);
			CHECK(wait_final(&e, 60000));
			CHECK_RC(dura_worker_stop(w, 5000), 0);
			break; /* past the last allocation */
		}
		failures++;
		CHECK(rc == DURA_ENOMEM);
		CHECK(w == NULL);
		dura_record *r;
		REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &r), 0);
		CHECK_STR(r->lease_owner, "");
		dura_record_free(r);
	}
	fprintf(stderr, "    %d allocations of dura_worker_start failed in turn\n", failures);
	CHECK(failures >= 4);
	CHECK(verify_runs(&e) == 0); /* the run was completed by the last one */
	env_close(&e);
}

/* ---- several processes ---------------------------------------------------------- */

/* A child: a worker on the handles inherited across fork, until every run
 * is final; its stats go to shared memory. */
static void child_worker(env *e, int child, const dura_worker_options *o)
{
	g_child = child;
	alarm(180);
	dura_worker *w;
	if (dura_worker_start(&w, e->eng, o)) {
		fprintf(stderr, "    child %d: %s\n", child, dura_error_last()->message);
		_exit(3);
	}
	while (!all_final(e))
		sleep_ms(50);
	dura_worker_stats st;
	settled_stats(w, &st);
	if (dura_worker_stop(w, 10000))
		_exit(4);
	sh->stats[child] = st;
	atomic_store(&sh->reported[child], 1);
	_exit(0);
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Three worker processes share 50 runs; one is SIGKILLed in the middle of
 * a run. The others rescue its runs; each step is in history once. */
static void processes_survive_a_kill(void)
{
	reset_shared();
	for (int n = 0; n < NODES; n++)
		sh->sleep_ms[n] = 10;
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	if (!multi_process(e.store)) {
		env_close(&e);
		SKIP("the store lives in one process");
	}
	REQUIRE(start_runs(&e, 50) == 0);
	dura_worker_options o = opts_of(2, 1000, 100, 50);
	enum { KIDS = 3 };
	pid_t pids[KIDS];
	for (int c = 0; c < KIDS; c++) {
		pids[c] = fork();
		REQUIRE(pids[c] >= 0);
		if (pids[c] == 0)
			child_worker(&e, c, &o);
	}
	/* child 0 inside a middle node: it holds a run part-way */
	for (int i = 0; i < 60000 && !sh->midrun[0]; i++)
		sleep_ms(1);
	CHECK(sh->midrun[0]);
	kill(pids[0], SIGKILL);
	CHECK(reap(pids[0]) == 128 + SIGKILL);
	/* what it was inside of is not an overlap for the rescuer */
	int64_t killed_at = dura_now_ms();
	int interrupted = 0, victim_run = -1;
	for (int i = 0; i < MAX_RUNS; i++) {
		int expect = pids[0];
		if (atomic_compare_exchange_strong(&sh->holder[i], &expect, 0)) {
			interrupted++;
			victim_run = i;
		}
	}
	/* the runs the killed worker held (executing or queued): each is
	 * taken over once, so the survivors' rescued count is at least that
	 * (more only if a survivor's own heartbeat was late and another took
	 * its run over) */
	char owner0[DURA_MAX_ID_LEN + 1] = "";
	if (victim_run >= 0) {
		dura_record *r;
		if (dura_store_get_run(e.store, e.ids[victim_run], &r) == 0) {
			snprintf(owner0, sizeof(owner0), "%s", r->lease_owner);
			dura_record_free(r);
		}
	}
	int held = 0;
	for (int i = 0; owner0[0] && i < 50; i++) {
		dura_record *r;
		if (dura_store_get_run(e.store, e.ids[i], &r) == 0) {
			held += strcmp(r->lease_owner, owner0) == 0 && r->run_state == DURA_RUN_RUNNING;
			dura_record_free(r);
		}
	}
	/* the rescue, measured (printed, not asserted): until a run the
	 * killed worker was inside changes hands */
	if (victim_run >= 0) {
		for (int i = 0; i < 60000; i++) {
			dura_record *r;
			if (dura_store_get_run(e.store, e.ids[victim_run], &r))
				break;
			if (!owner0[0])
				snprintf(owner0, sizeof(owner0), "%s", r->lease_owner);
			int moved = strcmp(r->lease_owner, owner0) != 0 || r->run_state != DURA_RUN_RUNNING;
			dura_record_free(r);
			if (moved) {
				fprintf(stderr, "    rescue: the killed worker's run changed hands %lld ms after the kill (lease %lld ms, poll %lld ms)\n",
				        (long long)(dura_now_ms() - killed_at), (long long)o.lease_ms, (long long)o.poll_ms);
				break;
			}
			sleep_ms(1);
		}
	}
	int bad = 0;
	for (int c = 1; c < KIDS; c++)
		bad += reap(pids[c]) != 0;
	CHECK(bad == 0);
	uint64_t completed = 0, rescued = 0, errors = 0;
	for (int c = 1; c < KIDS; c++) {
		CHECK(sh->reported[c]);
		completed += sh->stats[c].completed;
		rescued += sh->stats[c].rescued;
		errors += sh->stats[c].errors;
	}
	fprintf(stderr, "    killed worker was inside %d node(s) and held %d run(s); survivors completed %llu, rescued %llu\n",
	        interrupted, held, (unsigned long long)completed, (unsigned long long)rescued);
	CHECK(held >= 1);
	CHECK(rescued >= (uint64_t)held);
	CHECK(errors == 0);
	CHECK(sh->overlaps == 0);
	int extra = 0;
	for (int i = 0; i < e.nruns; i++)
		for (int n = 0; n < NODES; n++) {
			CHECK(sh->execs[i][n] >= 1);
			extra += sh->execs[i][n] - 1;
		}
	/* a node runs again only where the killed worker was inside it or
	 * had not committed it yet */
	CHECK(extra <= interrupted + o.threads);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/*
 * Fencing: a worker process is SIGSTOPped inside a node, past its lease;
 * another worker takes the run over and completes it; then the first is
 * continued. Its commit is refused, it abandons the run, and the history
 * holds each step once - the taker's.
 */
/* ---- flow control ---------------------------------------------------------------- */

/*
 * Several workers (processes where the store is shared between them,
 * threads of one process otherwise), twelve executor threads in all, on
 * 36 runs of a limited workflow: the executors inside a node at once,
 * counted by the nodes themselves in shared memory, never pass the
 * limit. Each step is still in history once.
 */
static void flow_run(int max_running, int max_per_key)
{
	reset_shared();
	for (int n = 0; n < NODES; n++)
		sh->sleep_ms[n] = 5;
	env e;
	REQUIRE(env_open_limited(&e, 0, max_running, max_per_key) == 0);
	REQUIRE(start_runs_flow(&e, 36, NULL) == 0);
	dura_worker_options o = opts_of(4, 3000, 0, 50);
	enum { KIDS = 3 };
	if (multi_process(e.store)) {
		pid_t pids[KIDS];
		for (int c = 0; c < KIDS; c++) {
			pids[c] = fork();
			REQUIRE(pids[c] >= 0);
			if (pids[c] == 0)
				child_worker(&e, c, &o);
		}
		int bad = 0;
		for (int c = 0; c < KIDS; c++)
			bad += reap(pids[c]) != 0;
		CHECK(bad == 0);
	} else {
		dura_worker *w[KIDS];
		for (int c = 0; c < KIDS; c++)
			REQUIRE_RC(dura_worker_start(&w[c], e.eng, &o), 0);
		CHECK(wait_final(&e, 120000));
		for (int c = 0; c < KIDS; c++)
			CHECK_RC(dura_worker_stop(w[c], 10000), 0);
	}
	fprintf(stderr, "    limits %d / %d per key: at most %d inside a node at once (keys %d %d %d)\n", max_running,
	        max_per_key, atomic_load(&sh->max_all), atomic_load(&sh->max_key[0]), atomic_load(&sh->max_key[1]),
	        atomic_load(&sh->max_key[2]));
	if (max_running)
		CHECK(atomic_load(&sh->max_all) <= max_running);
	if (max_per_key)
		for (int k = 0; k < FLOW_KEYS; k++)
			CHECK(atomic_load(&sh->max_key[k]) <= max_per_key);
	CHECK(atomic_load(&sh->max_all) >= 1);
	CHECK(sh->overlaps == 0);
	CHECK(verify_runs(&e) == 0);
	for (int i = 0; i < e.nruns; i++)
		for (int n = 0; n < NODES; n++)
			CHECK(sh->execs[i][n] == 1);
	env_close(&e);
}

static void flow_workflow_limit(void)
{
	flow_run(2, 0);
}

static void flow_key_limit(void)
{
	flow_run(0, 1);
}

static int prio_of(int i)
{
	return (i * 7) % 11 - 5; /* -5..5, mixed */
}

/* One executor thread: the runs begin in priority order (higher first,
 * then the order they were started in). */
static void flow_priority(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	REQUIRE(start_runs_flow(&e, 20, prio_of) == 0);
	dura_worker_options o = opts_of(1, 3000, 0, 50);
	o.batch = 1;
	dura_worker *w;
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	CHECK(wait_final(&e, 120000));
	CHECK_RC(dura_worker_stop(w, 10000), 0);
	REQUIRE(atomic_load(&sh->order_n) == 20);
	int bad = 0;
	for (int k = 1; k < 20; k++) {
		int a = sh->order[k - 1], b = sh->order[k];
		if (prio_of(a) < prio_of(b) || (prio_of(a) == prio_of(b) && a > b))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

static void fencing_after_sigstop(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	if (!multi_process(e.store)) {
		env_close(&e);
		SKIP("the store lives in one process");
	}
	REQUIRE(start_runs(&e, 1) == 0);
	dura_worker_options o = opts_of(1, 300, 100, 20);
	sh->slow_ms = 1500;
	pid_t a = fork();
	REQUIRE(a >= 0);
	if (a == 0) {
		g_child = 0;
		alarm(120);
		atomic_store(&sh->slow_pid, (int)getpid());
		dura_worker *w;
		if (dura_worker_start(&w, e.eng, &o))
			_exit(3);
		dura_worker_stats st;
		memset(&st, 0, sizeof(st));
		for (int i = 0; i < 3000; i++) { /* until it gave the run up */
			dura_worker_stats_get(w, &st);
			if (st.abandoned)
				break;
			sleep_ms(10);
		}
		if (dura_worker_stop(w, 10000))
			_exit(4);
		sh->stats[0] = st;
		atomic_store(&sh->reported[0], 1);
		_exit(0);
	}
	for (int i = 0; i < 60000 && !sh->in_slow; i++)
		sleep_ms(1);
	REQUIRE(sh->in_slow);
	/* stop it right after a heartbeat has landed (the lease's expiry
	 * moved), so that it is not frozen inside a store call holding a
	 * lock the taker would wait for */
	int64_t exp0 = 0;
	for (int i = 0; i < 5000; i++) {
		dura_record *x;
		REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &x), 0);
		int64_t exp = x->lease_expires_at;
		dura_record_free(x);
		if (exp0 && exp != exp0)
			break;
		exp0 = exp;
		sleep_ms(1);
	}
	kill(a, SIGSTOP);
	/* until its lease has run out (read from the store) */
	dura_record *r = NULL;
	for (int i = 0; i < 1000; i++) {
		REQUIRE_RC(dura_store_get_run(e.store, e.ids[0], &r), 0);
		int expired = r->lease_owner[0] && r->lease_expires_at < dura_now_ms() - 50;
		dura_record_free(r);
		if (expired)
			break;
		sleep_ms(20);
	}
	/* the node A is frozen in holds the marker; B's run of it is no overlap to count */
	atomic_store(&sh->holder[0], 0);
	dura_worker *b;
	REQUIRE_RC(dura_worker_start(&b, e.eng, &o), 0);
	CHECK(wait_final(&e, 60000));
	dura_worker_stats sb;
	CHECK_RC(settled_stats(b, &sb), 0);
	CHECK_RC(dura_worker_stop(b, 5000), 0);
	CHECK(sb.completed == 1);
	CHECK(sb.rescued == 1);
	kill(a, SIGCONT);
	CHECK(reap(a) == 0);
	CHECK(sh->reported[0]);
	fprintf(stderr, "    A: claimed %llu abandoned %llu completed %llu; B: rescued %llu completed %llu\n",
	        (unsigned long long)sh->stats[0].claimed, (unsigned long long)sh->stats[0].abandoned,
	        (unsigned long long)sh->stats[0].completed, (unsigned long long)sb.rescued,
	        (unsigned long long)sb.completed);
	CHECK(sh->stats[0].abandoned == 1);
	CHECK(sh->stats[0].completed == 0);
	CHECK(sh->execs[0][1] == 2); /* A's (refused) and B's */
	CHECK(verify_runs(&e) == 0);
	/* the committed node 1 is B's: A's commit never landed */
	dura_step *st;
	REQUIRE_RC(dura_store_get_step(e.store, e.ids[0], 1, &st), 0);
	json_t *j = json_loads(st->state, 0, NULL);
	CHECK(json_integer_value(json_object_get(j, "n1")) == (json_int_t)getpid());
	CHECK(json_integer_value(json_object_get(j, "n0")) == (json_int_t)a);
	json_decref(j);
	dura_step_free(st);
	env_close(&e);
}

/* ---- the worker registry ----------------------------------------------------------- */

/* A copy of worker id's row into *out: 1 found, 0 absent, -1 the list failed. */
static int registry_row(dura_store *s, const char *id, dura_worker_info *out)
{
	dura_worker_list l;
	if (dura_store_list_workers(s, &l))
		return -1;
	int found = 0;
	for (size_t i = 0; i < l.count; i++)
		if (strcmp(l.items[i].id, id) == 0) {
			found = 1;
			*out = l.items[i];
			memset(&l.items[i], 0, sizeof(l.items[i]));
		}
	dura_worker_list_free(&l);
	return found;
}

/* A started worker is listed with its fields; its heartbeat moves on and
 * carries the runs it holds; a stopped worker is gone. */
static void registry_lists_workers(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	dura_worker_options o = opts_of(2, 600, 100, 10);
	o.name = "reg-test";
	dura_worker *w;
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	char id[DURA_MAX_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", dura_worker_id(w)); /* the worker's copy goes at stop */
	dura_worker_info row;
	REQUIRE(registry_row(e.store, id, &row) == 1);
	char host[65] = "";
	gethostname(host, sizeof(host) - 1);
	CHECK_STR(row.name, "reg-test");
	CHECK_STR(row.host, host);
	CHECK(row.pid == (int64_t)getpid());
	CHECK(row.threads == 2);
	CHECK(row.lease_ms == 600);
	CHECK(row.held == 0);
	CHECK(row.dead == 0);
	CHECK(row.started_at > 0 && row.heartbeat_at >= row.started_at);
	CHECK(row.dead_after == row.heartbeat_at + 600);
	json_t *wfs = json_loads(row.workflows, 0, NULL);
	/* the one version of the one workflow served: {"workflow":W,"version":V} */
	json_t *w0 = json_array_get(wfs, 0);
	const char *w0_name = json_string_value(json_object_get(w0, "workflow"));
	const char *w0_ver = json_string_value(json_object_get(w0, "version"));
	CHECK(json_is_array(wfs) && json_array_size(wfs) == 1 && w0_name && strcmp(w0_name, e.wf) == 0 && w0_ver &&
	      strlen(w0_ver) == 16 && w0_ver[0] == 'f');
	json_decref(wfs);
	int64_t started = row.started_at, beat0 = row.heartbeat_at;
	dura_worker_info_clear(&row);

	/* a run held (node 1 waits until told): a later heartbeat says so */
	atomic_store(&sh->hold, 1);
	REQUIRE(start_runs(&e, 1) == 0);
	int seen_held = 0, beat_moved = 0;
	for (int i = 0; i < 3000 && !(seen_held && beat_moved); i++) {
		if (registry_row(e.store, id, &row) == 1) {
			seen_held |= row.held == 1;
			beat_moved |= row.heartbeat_at > beat0;
			CHECK(row.started_at == started);
			CHECK(row.dead == 0);
			dura_worker_info_clear(&row);
		}
		sleep_ms(10);
	}
	CHECK(seen_held);
	CHECK(beat_moved);
	atomic_store(&sh->hold, 0);
	CHECK(wait_final(&e, 60000));
	dura_worker_stats st;
	CHECK_RC(dura_worker_stats_get(w, &st), 0);
	CHECK(st.errors == 0);
	REQUIRE_RC(dura_worker_stop(w, 10000), 0);
	CHECK(registry_row(e.store, id, &row) == 0);
	CHECK(verify_runs(&e) == 0);
	env_close(&e);
}

/* A worker process SIGKILLed keeps its row, which shows it dead once its
 * lease has passed without a heartbeat. */
static void registry_killed_worker_is_dead(void)
{
	reset_shared();
	env e;
	REQUIRE(env_open(&e, 0) == 0);
	if (!multi_process(e.store)) {
		env_close(&e);
		SKIP("the store lives in one process");
	}
	dura_worker_options o = opts_of(1, 300, 100, 20);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		alarm(120);
		dura_worker *w;
		if (dura_worker_start(&w, e.eng, &o))
			_exit(3);
		snprintf(sh->reg_id, sizeof(sh->reg_id), "%s", dura_worker_id(w));
		atomic_store(&sh->reg_ready, 1);
		for (;;)
			sleep_ms(1000);
	}
	for (int i = 0; i < 60000 && !atomic_load(&sh->reg_ready); i++)
		sleep_ms(1);
	REQUIRE(atomic_load(&sh->reg_ready));
	dura_worker_info row;
	int found = registry_row(e.store, sh->reg_id, &row);
	CHECK(found == 1);
	if (found == 1) {
		CHECK(row.pid == (int64_t)pid);
		CHECK(row.dead == 0);
		dura_worker_info_clear(&row);
	}
	kill(pid, SIGKILL);
	CHECK(reap(pid) == 128 + SIGKILL);
	int dead = 0;
	for (int i = 0; i < 3000 && !dead; i++) {
		found = registry_row(e.store, sh->reg_id, &row);
		if (found != 1)
			break;
		dead = row.dead;
		if (dead)
			CHECK(row.dead_after <= dura_now_ms());
		dura_worker_info_clear(&row);
		if (!dead)
			sleep_ms(10);
	}
	CHECK(found == 1);
	CHECK(dead == 1);
	CHECK_RC(dura_store_delete_worker(e.store, sh->reg_id), 0);
	env_close(&e);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: worker_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	dura_allocator alloc = {t_malloc, t_realloc, free};
	dura_set_allocator(&alloc);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	static const test_case tests[] = {
		{"bad_input", bad_input},
		{"two_workers_share_runs", two_workers_share_runs},
		{"heartbeats_keep_lease", heartbeats_keep_lease},
		{"graceful_stop", graceful_stop},
		{"stop_past_drain", stop_past_drain},
		{"wakeup_and_retry", wakeup_and_retry},
		{"stop_from_own_node", stop_from_own_node},
		{"group_commit_and_pauses", group_commit_and_pauses},
		{"start_out_of_memory", start_out_of_memory},
		{"processes_survive_a_kill", processes_survive_a_kill},
		{"fencing_after_sigstop", fencing_after_sigstop},
		{"flow_workflow_limit", flow_workflow_limit},
		{"flow_key_limit", flow_key_limit},
		{"flow_priority", flow_priority},
		{"registry_lists_workers", registry_lists_workers},
		{"registry_killed_worker_is_dead", registry_killed_worker_is_dead},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "worker %.*s", (int)strcspn(g_url, ":"), g_url);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
}
