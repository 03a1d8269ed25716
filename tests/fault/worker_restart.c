/*
 * A database server restarted under a worker load: three worker processes
 * (dura_worker, 2 threads each) execute a stream of 5-node runs while the
 * server is restarted twice, once cleanly and once as a crash (SIGKILL for
 * MariaDB, an immediate shutdown for PostgreSQL). The parent starts the
 * runs one after another, through the restarts, each under a foreign id
 * of its own, and looks a start whose outcome the outage hid up by that
 * id before trying again, so a run is never started twice.
 *
 * Afterwards, from the store: the workflow has exactly one run per
 * foreign id (none lost, none doubled), each completed and unleased, its
 * history steps 0..4 dense with each node once and in order, its state
 * each node's effect once. Nodes count their executions in memory shared
 * by every process (an anonymous MAP_SHARED mapping made before the
 * forks): each node ran at least once. A node may run twice when the
 * outcome of its commit was lost with the connection - exactly-once holds
 * for the committed steps, not for a node's side effects - so the extra
 * executions are counted and printed, not asserted.
 *
 * The restarts happen while runs are outstanding (checked), and the
 * second only once the workers made progress after the first. No check
 * depends on a time; the timeouts only bound liveness.
 *
 * usage: worker_restart STORE_URL SERVERS_SCRIPT SERVER [RUNS]
 * SERVER is what `tests/servers restart DIR [--kill] SERVER` takes:
 * mariadb or pg. The server is the one tests/servers started; its
 * directory is in DURA_TEST_SERVERS_DIR.
 */
#include "dura.h"
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

#define NODES 5
#define MAX_RUNS 400
#define WORKERS 3
#define FIRST_RUNS 24     /* started before the workers; the rest stream in */
#define LIVENESS_MS 180000 /* a hang guard, never a pass/fail criterion */

static const char *g_url, *g_script, *g_server, *g_dir;
static int g_runs = 120;
static char g_wf[64];

typedef struct shared {
	_Atomic int execs[MAX_RUNS][NODES]; /* executions of each node of each run */
	_Atomic int total;                  /* all node executions */
	_Atomic int finished;               /* runs whose last node ran (once counted) */
	_Atomic int stop;                   /* the parent tells the workers to stop */
	dura_worker_stats stats[WORKERS];
	_Atomic int reported[WORKERS];
} shared;

static shared *sh;

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* ---- the workflow ------------------------------------------------------------ */

/* Node n of run i: counts itself in shared memory and in the state. */
static int visit(dura_ctx *ctx, json_t *state, void *payload)
{
	int node = (int)(intptr_t)payload;
	int i = (int)json_integer_value(json_object_get(state, "i"));
	if (i < 0 || i >= g_runs)
		return dura_ctx_fail(ctx, DURA_EINVAL, "no run index");
	if (atomic_fetch_add(&sh->execs[i][node], 1) == 0 && node == NODES - 1)
		atomic_fetch_add(&sh->finished, 1);
	atomic_fetch_add(&sh->total, 1);
	char key[8];
	snprintf(key, sizeof(key), "n%d", node);
	json_t *v = json_object_get(state, "visits");
	json_object_set_new(v, key, json_integer(json_integer_value(json_object_get(v, key)) + 1));
	json_object_set_new(state, "sum", json_integer(json_integer_value(json_object_get(state, "sum")) + node));
	sleep_ms(10);
	return 0;
}

/* A store, an engine and the NODES-node workflow g_wf. */
static int env_open(dura_store **s, dura_engine **eng)
{
	if (dura_store_open(s, g_url, NULL))
		return -1;
	if (dura_engine_open(eng, *s, NULL))
		return -1;
	dura_workflow *wf;
	if (dura_workflow_new(&wf, g_wf))
		return -1;
	for (int n = 0; n < NODES; n++) {
		char name[8], prev[8];
		snprintf(name, sizeof(name), "n%d", n);
		if (dura_workflow_add_node(wf, name, visit, (void *)(intptr_t)n, NULL))
			return -1;
		snprintf(prev, sizeof(prev), "n%d", n - 1);
		if (n > 0 && dura_workflow_add_edge(wf, prev, name))
			return -1;
	}
	if (dura_workflow_set_start(wf, "n0") || dura_engine_register(*eng, wf))
		return -1;
	return 0;
}

/* ---- the load ---------------------------------------------------------------- */

/* A worker process: a dura_worker on a store of its own, until the parent
 * says stop; its stats go to shared memory. */
static void worker_process(int child)
{
	alarm(LIVENESS_MS / 1000 + 60);
	dura_store *s;
	dura_engine *eng;
	if (env_open(&s, &eng)) {
		fprintf(stderr, "    worker %d: %s\n", child, dura_error_last()->message);
		_exit(3);
	}
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 2;
	o.lease_ms = 1000;
	o.poll_ms = 50;
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o)) {
		fprintf(stderr, "    worker %d: %s\n", child, dura_error_last()->message);
		_exit(3);
	}
	while (!atomic_load(&sh->stop))
		sleep_ms(20);
	/* a run is final in the store a moment before its executor has
	 * counted it: the stats once the worker holds nothing */
	dura_worker_stats st;
	for (int i = 0; i < 3000 && dura_worker_stats_get(w, &st) == 0 && st.held > 0; i++)
		sleep_ms(10);
	if (dura_worker_stop(w, 10000))
		_exit(4);
	sh->stats[child] = st;
	atomic_store(&sh->reported[child], 1);
	_exit(0);
}

typedef struct starter {
	dura_engine *eng;
	dura_store *store;
	char (*ids)[DURA_UUID_LEN + 1];
	int retries; /* starts tried again after a failure */
	int failed;  /* runs that could not be started before the hang guard */
} starter;

/*
 * Start run i under foreign id "rI". A start that failed may have created
 * the run all the same (its commit landed, its answer was lost): then the
 * run is found by its foreign id - in whatever state the workers brought
 * it to meanwhile - and not started again.
 */
static int start_run(starter *st, int i)
{
	char fid[16], state[64];
	snprintf(fid, sizeof(fid), "r%d", i);
	snprintf(state, sizeof(state), "{\"i\":%d,\"visits\":{},\"sum\":0}", i);
	int64_t deadline = dura_now_ms() + LIVENESS_MS;
	for (int tries = 0;; tries++) {
		if (tries > 0) {
			dura_record *r = NULL;
			int rc = dura_store_latest_run(st->store, g_wf, fid, &r);
			if (rc == 0) {
				snprintf(st->ids[i], sizeof(st->ids[i]), "%s", r->run_id);
				dura_record_free(r);
				return 0;
			}
			st->retries++;
			if (rc != DURA_ENOTFOUND) { /* still down: wait */
				if (dura_now_ms() > deadline)
					return -1;
				sleep_ms(50);
				continue;
			}
		}
		int rc = dura_run_start(st->eng, g_wf, fid, state, NULL, st->ids[i]);
		if (rc == 0 || rc == DURA_EEXISTS)
			return 0;
		if (dura_now_ms() > deadline)
			return -1;
		sleep_ms(50);
	}
}

/* The stream: the runs after the first batch, one every 20 ms. */
static void *stream(void *p)
{
	starter *st = p;
	for (int i = FIRST_RUNS; i < g_runs; i++) {
		if (start_run(st, i)) {
			fprintf(stderr, "    run r%d could not be started: %s\n", i, dura_error_last()->message);
			st->failed++;
		}
		sleep_ms(20);
	}
	return NULL;
}

/* ---- the checks -------------------------------------------------------------- */

/* A store call right after a crash may meet a connection the crash broke:
 * these try again while the store answers DURA_EIO. */
static int get_run(dura_store *s, const char *id, dura_record **out)
{
	int rc = dura_store_get_run(s, id, out);
	for (int t = 0; rc == DURA_EIO && t < 100; t++) {
		sleep_ms(100);
		rc = dura_store_get_run(s, id, out);
	}
	return rc;
}

static int history(dura_store *s, const char *id, dura_step_list *out)
{
	int rc = dura_store_history(s, id, 0, 0, out);
	for (int t = 0; rc == DURA_EIO && t < 100; t++) {
		sleep_ms(100);
		rc = dura_store_history(s, id, 0, 0, out);
	}
	return rc;
}

static int list_runs(dura_store *s, dura_record_list *out)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = g_wf;
	f.limit = MAX_RUNS + 100;
	int rc = dura_store_list_runs(s, &f, out);
	for (int t = 0; rc == DURA_EIO && t < 100; t++) {
		sleep_ms(100);
		rc = dura_store_list_runs(s, &f, out);
	}
	return rc;
}

/* The workflow's runs: how many there are, and how many are final. */
static int count_runs(dura_store *s, int *all, int *final)
{
	dura_record_list l;
	int rc = list_runs(s, &l);
	if (rc)
		return rc;
	*all = (int)l.count;
	*final = 0;
	for (size_t i = 0; i < l.count; i++)
		*final += !dura_run_state_active(l.items[i].run_state);
	dura_record_list_free(&l);
	return 0;
}

/* One run against what an uninterrupted execution commits; the number of
 * violations (printed). */
static int check_run(dura_store *s, const char *id, int i)
{
	int bad = 0;
	dura_record *r = NULL;
	int rc = get_run(s, id, &r);
	if (rc) {
		fprintf(stderr, "    run r%d: %s\n", i, dura_strerror(rc));
		return 1;
	}
	if (r->run_state != DURA_RUN_COMPLETED || r->step_no != NODES || r->lease_owner[0]) {
		fprintf(stderr, "    run r%d: %s, %lld steps, lease '%s' (%s)\n", i, dura_run_state_name(r->run_state),
		        (long long)r->step_no, r->lease_owner, r->error);
		bad++;
	}
	json_t *st = json_loads(r->state, 0, NULL);
	json_t *v = json_object_get(st, "visits");
	for (int n = 0; n < NODES; n++) {
		char key[8];
		snprintf(key, sizeof(key), "n%d", n);
		if (json_integer_value(json_object_get(v, key)) != 1) {
			fprintf(stderr, "    run r%d: the state has node %s %lld times\n", i, key,
			        (long long)json_integer_value(json_object_get(v, key)));
			bad++;
		}
	}
	if (json_integer_value(json_object_get(st, "sum")) != NODES * (NODES - 1) / 2)
		bad++;
	json_decref(st);
	dura_record_free(r);

	dura_step_list h;
	rc = history(s, id, &h);
	if (rc) {
		fprintf(stderr, "    run r%d: history: %s\n", i, dura_strerror(rc));
		return bad + 1;
	}
	if (h.count != NODES) {
		fprintf(stderr, "    run r%d: %zu steps in its history, not %d\n", i, h.count, NODES);
		bad++;
	}
	for (size_t k = 0; k < h.count; k++) {
		char want[32];
		snprintf(want, sizeof(want), "n%zu", k);
		if (h.items[k].step != (int64_t)k || strcmp(h.items[k].node_id, want) != 0) {
			fprintf(stderr, "    run r%d: step %zu is #%lld %s\n", i, k, (long long)h.items[k].step, h.items[k].node_id);
			bad++;
		}
	}
	dura_step_list_free(&h);
	return bad;
}

/* Exactly one run per foreign id r0..r(N-1), and no other run. */
static int check_one_run_each(dura_store *s)
{
	dura_record_list l;
	if (list_runs(s, &l))
		return 1;
	int bad = 0;
	int *seen = calloc((size_t)g_runs, sizeof(int));
	for (size_t k = 0; k < l.count; k++) {
		int i = -1;
		if (sscanf(l.items[k].foreign_id, "r%d", &i) != 1 || i < 0 || i >= g_runs) {
			fprintf(stderr, "    a run with foreign id '%s'\n", l.items[k].foreign_id);
			bad++;
		} else if (seen && seen[i]++) {
			fprintf(stderr, "    run r%d exists twice\n", i);
			bad++;
		}
	}
	for (int i = 0; seen && i < g_runs; i++)
		if (!seen[i]) {
			fprintf(stderr, "    run r%d is missing\n", i);
			bad++;
		}
	free(seen);
	dura_record_list_free(&l);
	return bad;
}

/* Ack the outbox events of this workflow, so that the suites run after
 * this one on the same database do not page through them. */
static void drop_events(dura_store *s)
{
	for (int round = 0; round < 100; round++) {
		dura_event_list l;
		if (dura_store_outbox_poll(s, 10000, &l))
			return;
		size_t mine = 0;
		for (size_t i = 0; i < l.count; i++)
			if (strcmp(l.items[i].workflow_name, g_wf) == 0) {
				dura_store_outbox_ack(s, l.items[i].id);
				mine++;
			}
		size_t n = l.count;
		dura_event_list_free(&l);
		if (mine == 0 || n < 10000)
			return;
	}
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Restart the server (kill: as a crash) and say how much was outstanding. */
static int restart(const char *how, int *outstanding)
{
	*outstanding = g_runs - atomic_load(&sh->finished);
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' %s '%s' >/dev/null", g_script, g_dir, how, g_server);
	return system(cmd);
}

/* Wait until the nodes ran `more` times more than `from` (liveness only). */
static int progress(int from, int more)
{
	for (int waited = 0; waited < LIVENESS_MS; waited += 10) {
		if (atomic_load(&sh->total) >= from + more)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

/* ---- the test ---------------------------------------------------------------- */

static void workers_survive_restarts(void)
{
	if (!g_dir || !*g_dir) {
		fprintf(stderr, "    DURA_TEST_SERVERS_DIR is not set: start the servers with tests/servers start DIR\n");
		test__failed_now = 1;
		return;
	}
	dura_store *s;
	dura_engine *eng;
	REQUIRE(env_open(&s, &eng) == 0);
	char (*ids)[DURA_UUID_LEN + 1] = calloc((size_t)g_runs, sizeof(*ids));
	REQUIRE(ids != NULL);
	starter st = {eng, s, ids, 0, 0};
	for (int i = 0; i < FIRST_RUNS; i++)
		REQUIRE(start_run(&st, i) == 0);

	pid_t pids[WORKERS];
	fflush(NULL);
	for (int c = 0; c < WORKERS; c++) {
		pids[c] = fork();
		REQUIRE(pids[c] >= 0);
		if (pids[c] == 0)
			worker_process(c);
	}
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, stream, &st) == 0);

	/* a clean restart once the workers are well under way, a crash once
	 * they made progress after it; both while runs are outstanding */
	int clean_left = 0, crash_left = 0;
	CHECK(progress(0, FIRST_RUNS * NODES / 2));
	CHECK(restart("", &clean_left) == 0);
	CHECK(progress(atomic_load(&sh->total), 4 * NODES));
	CHECK(restart("--kill", &crash_left) == 0);
	pthread_join(th, NULL);
	CHECK(clean_left > 0);
	CHECK(crash_left > 0);
	CHECK(st.failed == 0);

	/* every run final (liveness: the hang guard only) */
	int all = 0, final = 0;
	for (int waited = 0; waited < LIVENESS_MS; waited += 50) {
		if (count_runs(s, &all, &final) == 0 && all >= g_runs && final == all)
			break;
		sleep_ms(50);
	}
	atomic_store(&sh->stop, 1);
	int bad_exit = 0;
	for (int c = 0; c < WORKERS; c++)
		bad_exit += reap(pids[c]) != 0;
	CHECK(bad_exit == 0);
	CHECK(all == g_runs);
	CHECK(final == all);

	uint64_t claimed = 0, completed = 0, rescued = 0, abandoned = 0, errors = 0;
	for (int c = 0; c < WORKERS; c++) {
		CHECK(sh->reported[c]);
		claimed += sh->stats[c].claimed;
		completed += sh->stats[c].completed;
		rescued += sh->stats[c].rescued;
		abandoned += sh->stats[c].abandoned;
		errors += sh->stats[c].errors;
	}
	int extra = 0;
	for (int i = 0; i < g_runs; i++)
		for (int n = 0; n < NODES; n++) {
			CHECK(sh->execs[i][n] >= 1);
			extra += sh->execs[i][n] > 1 ? sh->execs[i][n] - 1 : 0;
		}
	CHECK(check_one_run_each(s) == 0);
	int bad = 0;
	for (int i = 0; i < g_runs; i++)
		bad += check_run(s, ids[i], i);
	CHECK(bad == 0);
	printf("    %s: %d runs x %d nodes, %d workers; 2 restarts (clean with %d runs outstanding, crash with %d); "
	       "%d starts retried\n",
	       g_server, g_runs, NODES, WORKERS, clean_left, crash_left, st.retries);
	/* a run whose completing commit landed but whose answer the outage
	 * lost is completed in the store and counted by no worker */
	printf("    workers: claimed %llu, completed %llu (%llu more completed unseen), rescued %llu, abandoned %llu, "
	       "store errors %llu\n",
	       (unsigned long long)claimed, (unsigned long long)completed,
	       (unsigned long long)(completed < (uint64_t)g_runs ? (uint64_t)g_runs - completed : 0),
	       (unsigned long long)rescued, (unsigned long long)abandoned, (unsigned long long)errors);
	printf("    committed steps: %d runs completed, each step exactly once (%d violations); node executions %d, "
	       "%d of them again after a lost commit or lease (allowed: side effects are at-least-once)\n",
	       g_runs - bad, bad, atomic_load(&sh->total), extra);
	drop_events(s);
	free(ids);
	dura_engine_close(eng);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 4 || strspn(argv[3], "abcdefghijklmnopqrstuvwxyz") != strlen(argv[3])) {
		fprintf(stderr, "usage: worker_restart STORE_URL SERVERS_SCRIPT SERVER [RUNS] (SERVER: mariadb, pg)\n");
		return 2;
	}
	g_url = argv[1];
	g_script = argv[2];
	g_server = argv[3];
	g_dir = getenv("DURA_TEST_SERVERS_DIR");
	if (argc > 4)
		g_runs = atoi(argv[4]);
	if (g_runs <= FIRST_RUNS || g_runs > MAX_RUNS) {
		fprintf(stderr, "worker_restart: RUNS must be %d to %d\n", FIRST_RUNS + 1, MAX_RUNS);
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(g_wf, sizeof(g_wf), "wrestart-%s", id + 24);
	static const test_case tests[] = {{"workers_survive_restarts", workers_survive_restarts}};
	char suite[64];
	snprintf(suite, sizeof(suite), "worker_restart %s", g_server);
	return test_run_all(suite, tests, TEST_COUNT(tests), NULL);
}
