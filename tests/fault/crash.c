/*
 * Crash and resume: a child process executes a 10-node run and is killed
 * with SIGKILL at a random instant; a new child resumes it; again and
 * again until the run completes. Afterwards every run must have each step
 * committed exactly once (steps 0..9, dense, in node order) and the final
 * state of an uninterrupted run: each node's visit count is exactly 1.
 *
 * usage: crash STORE_URL [RUNS] [SEED]
 */
#include "dura.h"
#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES 10
static const char *g_url;
static int g_runs = 12;
static unsigned g_seed;
static char g_wf[64];
static const char *const names[NODES] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"};

/* Each node bumps its own visit counter and works a little while. */
static int visit(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	const char *name = payload;
	json_t *v = json_object_get(state, "visits");
	json_object_set_new(v, name, json_integer(json_integer_value(json_object_get(v, name)) + 1));
	json_object_set_new(state, "sum", json_integer(json_integer_value(json_object_get(state, "sum")) + name[1] - '0'));
	usleep((useconds_t)(rand() % 3000));
	return 0;
}

static int build_engine(dura_store **s, dura_engine **eng)
{
	if (dura_store_open(s, g_url, NULL))
		return -1;
	if (dura_engine_open(eng, *s, NULL))
		return -1;
	dura_workflow *wf;
	dura_workflow_new(&wf, g_wf);
	for (int i = 0; i < NODES; i++)
		dura_workflow_add_node(wf, names[i], visit, (void *)names[i], NULL);
	for (int i = 0; i + 1 < NODES; i++)
		dura_workflow_add_edge(wf, names[i], names[i + 1]);
	dura_workflow_set_start(wf, names[0]);
	return dura_engine_register(*eng, wf);
}

static void child_execute(const char *run_id)
{
	dura_store *s;
	dura_engine *eng;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	if (build_engine(&s, &eng))
		_exit(3);
	int rc = dura_run_execute(eng, run_id, NULL);
	_exit(rc == 0 ? 0 : 4);
}

static void crash_and_resume(void)
{
	dura_store *s;
	dura_engine *eng;
	REQUIRE(build_engine(&s, &eng) == 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	if (!(info.caps & DURA_CAP_DURABLE) || !(info.caps & DURA_CAP_MULTI_PROCESS)) {
		dura_engine_close(eng);
		dura_store_close(s);
		SKIP("store is not durable across processes");
	}
	char (*ids)[DURA_UUID_LEN + 1] = calloc((size_t)g_runs, sizeof(*ids));
	for (int r = 0; r < g_runs; r++)
		REQUIRE_RC(dura_run_start(eng, g_wf, NULL, "{\"visits\":{},\"sum\":0}", NULL, ids[r]), 0);

	int kills = 0, spawns = 0;
	for (int r = 0; r < g_runs; r++) {
		for (int round = 0; round < 200; round++) {
			dura_record *rec;
			REQUIRE_RC(dura_store_get_run(s, ids[r], &rec), 0);
			int done = rec->run_state == DURA_RUN_COMPLETED;
			dura_record_free(rec);
			if (done)
				break;
			pid_t pid = fork();
			REQUIRE(pid >= 0);
			if (pid == 0)
				child_execute(ids[r]);
			spawns++;
			/* kill at a random instant: before, during or between steps;
			 * every third child is let run to the end */
			if (rand_r(&g_seed) % 3) {
				usleep((useconds_t)(rand_r(&g_seed) % 12000));
				if (kill(pid, SIGKILL) == 0)
					kills++;
			}
			int status;
			waitpid(pid, &status, 0);
			if (WIFEXITED(status))
				CHECK(WEXITSTATUS(status) == 0);
		}
	}
	printf("    %d runs, %d processes, %d killed with SIGKILL\n", g_runs, spawns, kills);
	CHECK(kills > 0);

	for (int r = 0; r < g_runs; r++) {
		dura_record *rec;
		REQUIRE_RC(dura_store_get_run(s, ids[r], &rec), 0);
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
	if (argc < 2) {
		fprintf(stderr, "usage: crash STORE_URL [RUNS] [SEED]\n");
		return 2;
	}
	g_url = argv[1];
	if (argc > 2)
		g_runs = atoi(argv[2]);
	g_seed = argc > 3 ? (unsigned)atoi(argv[3]) : (unsigned)time(NULL);
	printf("crash: seed %u\n", g_seed);
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(g_wf, sizeof(g_wf), "crash-%s", id + 24);
	static const test_case tests[] = {{"crash_and_resume", crash_and_resume}};
	return test_run_all("crash", tests, TEST_COUNT(tests), NULL);
}
