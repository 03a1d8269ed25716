/*
 * A database server restarted under load: worker threads execute 10-node
 * runs while the server is restarted twice, once cleanly and once with
 * SIGKILL or an immediate shutdown (a crash: InnoDB's or PostgreSQL's WAL
 * recovery keeps what was committed). Workers whose
 * calls fail (connection lost, server down) wait a little and resume the
 * run. Afterwards every run must be completed with each step committed
 * exactly once (steps 0..9, dense, in node order) and each node's effect
 * in the state exactly once.
 *
 * usage: server_restart STORE_URL SERVERS_SCRIPT SERVER [RUNS]
 * SERVER is what `tests/servers restart DIR [--kill] SERVER` takes:
 * mariadb or pg. The server is the one tests/servers started; its
 * directory is in DURA_TEST_SERVERS_DIR.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "dura.h"
#include "test.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define NODES 10
#define THREADS 4
static const char *g_url, *g_script, *g_server, *g_dir;
static int g_runs = 16;
static char g_wf[64];
static const char *const names[NODES] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"};
static atomic_int g_errors, g_done;

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static int visit(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	const char *name = payload;
	json_t *v = json_object_get(state, "visits");
	json_object_set_new(v, name, json_integer(json_integer_value(json_object_get(v, name)) + 1));
	json_object_set_new(state, "sum", json_integer(json_integer_value(json_object_get(state, "sum")) + name[1] - '0'));
	sleep_ms(5);
	return 0;
}

struct worker {
	dura_engine *eng;
	char (*ids)[DURA_UUID_LEN + 1];
	int first;
	int errors_seen;
};

/* Execute this worker's runs to the end, resuming after every failure. */
static void *work(void *p)
{
	struct worker *w = p;
	int64_t deadline = dura_now_ms() + 120000;
	for (int r = w->first; r < g_runs; r += THREADS) {
		for (;;) {
			dura_record *rec = NULL;
			int rc = dura_run_execute(w->eng, w->ids[r], &rec);
			int done = rc == 0 && rec && rec->run_state == DURA_RUN_COMPLETED;
			dura_record_free(rec);
			if (done)
				break;
			if (rc != 0)
				w->errors_seen++;
			if (dura_now_ms() > deadline) {
				atomic_fetch_add(&g_errors, 1);
				fprintf(stderr, "    run %s did not complete in time (last: %d %s)\n", w->ids[r], rc,
				        dura_error_last() ? dura_error_last()->message : "");
				break;
			}
			sleep_ms(50);
		}
		atomic_fetch_add(&g_done, 1);
	}
	return NULL;
}

static void restart_under_load(void)
{
	if (!g_dir || !*g_dir) {
		fprintf(stderr, "    DURA_TEST_SERVERS_DIR is not set: start the servers with tests/servers start DIR\n");
		test__failed_now = 1;
		return;
	}
	dura_store *s;
	dura_engine *eng;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	dura_workflow *wf;
	REQUIRE_RC(dura_workflow_new(&wf, g_wf), 0);
	for (int i = 0; i < NODES; i++)
		dura_workflow_add_node(wf, names[i], visit, (void *)names[i], NULL);
	for (int i = 0; i + 1 < NODES; i++)
		dura_workflow_add_edge(wf, names[i], names[i + 1]);
	dura_workflow_set_start(wf, names[0]);
	REQUIRE_RC(dura_engine_register(eng, wf), 0);
	char (*ids)[DURA_UUID_LEN + 1] = calloc((size_t)g_runs, sizeof(*ids));
	REQUIRE(ids != NULL);
	for (int r = 0; r < g_runs; r++)
		REQUIRE_RC(dura_run_start(eng, g_wf, NULL, "{\"visits\":{},\"sum\":0}", NULL, ids[r]), 0);

	struct worker ws[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){eng, ids, i, 0};
		REQUIRE(pthread_create(&th[i], NULL, work, &ws[i]) == 0);
	}
	/* a clean restart, then a crash, while the workers commit */
	char cmd[2048];
	sleep_ms(150);
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' '%s' >/dev/null", g_script, g_dir, g_server);
	CHECK(system(cmd) == 0);
	sleep_ms(300);
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' --kill '%s' >/dev/null", g_script, g_dir, g_server);
	CHECK(system(cmd) == 0);
	int errors = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		errors += ws[i].errors_seen;
	}
	printf("    %s: %d runs, 2 restarts, %d failed calls resumed\n", g_server, g_runs, errors);
	CHECK(atomic_load(&g_errors) == 0);
	CHECK(atomic_load(&g_done) == g_runs);

	for (int r = 0; r < g_runs; r++) {
		dura_record *rec = NULL;
		int rc = dura_store_get_run(s, ids[r], &rec);
		for (int i = 0; rc == DURA_EIO && i < 100; i++) {
			sleep_ms(100);
			rc = dura_store_get_run(s, ids[r], &rec);
		}
		CHECK_RC(rc, 0);
		if (rc)
			continue;
		CHECK(rec->run_state == DURA_RUN_COMPLETED);
		CHECK(rec->step_no == NODES);
		json_t *st = json_loads(rec->state, 0, NULL);
		json_t *v = json_object_get(st, "visits");
		for (int i = 0; i < NODES; i++)
			CHECK(json_integer_value(json_object_get(v, names[i])) == 1);
		CHECK(json_integer_value(json_object_get(st, "sum")) == 45);
		json_decref(st);
		dura_record_free(rec);
		dura_step_list h;
		REQUIRE_RC(dura_store_history(s, ids[r], 0, 0, &h), 0);
		CHECK(h.count == NODES);
		for (size_t i = 0; i < h.count && i < NODES; i++) {
			CHECK(h.items[i].step == (int64_t)i);
			CHECK_STR(h.items[i].node_id, names[i]);
		}
		dura_step_list_free(&h);
	}
	free(ids);
	dura_engine_close(eng);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 4 || strspn(argv[3], "abcdefghijklmnopqrstuvwxyz") != strlen(argv[3])) {
		fprintf(stderr, "usage: server_restart STORE_URL SERVERS_SCRIPT SERVER [RUNS] (SERVER: mariadb, pg)\n");
		return 2;
	}
	g_url = argv[1];
	g_script = argv[2];
	g_server = argv[3];
	g_dir = getenv("DURA_TEST_SERVERS_DIR");
	if (argc > 4)
		g_runs = atoi(argv[4]);
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(g_wf, sizeof(g_wf), "restart-%s", id + 24);
	static const test_case tests[] = {{"restart_under_load", restart_under_load}};
	char suite[64];
	snprintf(suite, sizeof(suite), "server_restart %s", g_server);
	return test_run_all(suite, tests, TEST_COUNT(tests), NULL);
}
