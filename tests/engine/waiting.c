/*
 * waiting.c - durable waiting through the engine and workers, on every
 * store: sleeps, signals, timeouts, child runs and schedules, in several
 * processes with SIGKILLs where the store is shared between processes.
 *
 * The tests check outcomes: a step is in history once, signals are
 * consumed in order and once, no second child is started, a tick has one
 * run. Times are printed (lateness of a wake-up), never asserted, except
 * that nothing happens before it is due.
 */
#include "dura.h"
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_url;

typedef struct shared {
	_Atomic int execs[64][4]; /* node executions per run and node */
	_Atomic long long woke_at[64];
} shared;
static shared *sh;

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

static int idx(json_t *state)
{
	int i = (int)json_integer_value(json_object_get(state, "i"));
	return i >= 0 && i < 64 ? i : 0;
}

/* ---- the workflows ---------------------------------------------------------- */

/* sleeper: a (sleeps sleep_ms) -> b */
static int sleeper_a(dura_ctx *ctx, json_t *state, void *p)
{
	(void)p;
	atomic_fetch_add(&sh->execs[idx(state)][0], 1);
	int64_t ms = json_integer_value(json_object_get(state, "sleep_ms"));
	json_object_set_new(state, "due", json_integer(dura_now_ms() + ms));
	return dura_ctx_sleep(ctx, ms);
}

static int sleeper_b(dura_ctx *ctx, json_t *state, void *p)
{
	(void)ctx, (void)p;
	atomic_fetch_add(&sh->execs[idx(state)][1], 1);
	atomic_store(&sh->woke_at[idx(state)], dura_now_ms());
	json_object_set_new(state, "woke", json_integer(dura_now_ms()));
	return 0;
}

/* inbox: one node that receives "n" signals until it has `want`, each
 * appended to state.got, then ends; a timeout ends it with timed_out */
static int inbox_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)p;
	char *json = NULL;
	int64_t timeout = json_integer_value(json_object_get(state, "timeout_ms"));
	int rc = dura_ctx_wait_signal(ctx, "n", timeout ? timeout : -1, &json);
	if (rc == DURA_WAITING)
		return rc;
	if (rc == DURA_ETIMEOUT) {
		json_object_set_new(state, "timed_out", json_integer(dura_now_ms()));
		return 0;
	}
	if (rc)
		return rc;
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	dura_free(json);
	json_t *got = json_object_get(state, "got");
	if (!got) {
		got = json_array();
		json_object_set_new(state, "got", got);
	}
	json_array_append_new(got, v ? v : json_null());
	if ((json_int_t)json_array_size(got) < json_integer_value(json_object_get(state, "want")))
		return dura_ctx_goto(ctx, "recv");
	return 0;
}

/* child: doubles state.x */
static int child_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)ctx, (void)p;
	json_object_set_new(state, "y", json_integer(2 * json_integer_value(json_object_get(state, "x"))));
	return 0;
}

/* parent: starts state.n children, awaits each, sums their y */
static int parent_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)p;
	int n = (int)json_integer_value(json_object_get(state, "n"));
	json_int_t sum = 0;
	char ids[64][DURA_UUID_LEN + 1];
	for (int i = 0; i < n && i < 64; i++) {
		char st[32];
		snprintf(st, sizeof(st), "{\"x\":%d}", i);
		int rc = dura_ctx_start_child(ctx, "wt-child", st, ids[i]);
		if (rc)
			return rc;
	}
	for (int i = 0; i < n && i < 64; i++) {
		dura_record *c = NULL;
		int rc = dura_ctx_await_child(ctx, ids[i], &c);
		if (rc)
			return rc; /* DURA_WAITING: the node runs again when this child ends */
		json_t *cs = json_loads(c->state, 0, NULL);
		sum += json_integer_value(json_object_get(cs, "y"));
		json_decref(cs);
		dura_record_free(c);
	}
	json_object_set_new(state, "sum", json_integer(sum));
	return 0;
}

static int tick_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)ctx, (void)state, (void)p;
	return 0;
}

typedef struct env {
	dura_store *store;
	dura_engine *eng;
} env;

static int add1(dura_engine *eng, const char *name, const char *node, dura_node_fn fn)
{
	dura_workflow *wf;
	return dura_workflow_new(&wf, name) || dura_workflow_add_node(wf, node, fn, NULL, NULL) ||
	       dura_workflow_set_start(wf, node) || dura_engine_register(eng, wf);
}

static int env_open(env *e)
{
	memset(e, 0, sizeof(*e));
	if (dura_store_open(&e->store, g_url, NULL) || dura_engine_open(&e->eng, e->store, NULL))
		return -1;
	dura_workflow *wf;
	if (dura_workflow_new(&wf, "wt-sleeper") || dura_workflow_add_node(wf, "a", sleeper_a, NULL, NULL) ||
	    dura_workflow_add_node(wf, "b", sleeper_b, NULL, NULL) || dura_workflow_add_edge(wf, "a", "b") ||
	    dura_workflow_set_start(wf, "a") || dura_engine_register(e->eng, wf))
		return -1;
	if (add1(e->eng, "wt-inbox", "recv", inbox_node) || add1(e->eng, "wt-child", "c", child_node) ||
	    add1(e->eng, "wt-parent", "p", parent_node) || add1(e->eng, "wt-tick", "t", tick_node))
		return -1;
	return 0;
}

static void env_close(env *e)
{
	dura_engine_close(e->eng);
	dura_store_close(e->store);
}

static int multi_process(dura_store *s)
{
	dura_store_info info;
	return dura_store_info_get(s, &info) == 0 && (info.caps & DURA_CAP_MULTI_PROCESS) && (info.caps & DURA_CAP_DURABLE);
}

static dura_record *get(env *e, const char *id)
{
	dura_record *r = NULL;
	dura_store_get_run(e->store, id, &r);
	return r;
}

static int state_of(env *e, const char *id)
{
	dura_record *r = get(e, id);
	int s = r ? r->run_state : -1;
	dura_record_free(r);
	return s;
}

/* Wait until run id is no longer active (liveness only). */
static int wait_ended(env *e, const char *id, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		int s = state_of(e, id);
		if (s != DURA_RUN_RUNNING && s != DURA_RUN_PAUSED && s != DURA_RUN_INITIATED)
			return s;
		sleep_ms(20);
	}
	return state_of(e, id);
}

static dura_worker_options wopts(void)
{
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 2;
	o.lease_ms = 1000;
	o.heartbeat_ms = 200;
	o.poll_ms = 50;
	return o;
}

static int waiting_store(env *e)
{
	char id[DURA_UUID_LEN + 1];
	return dura_store_signal_send(e->store, "no-such-run", "x", NULL, id) != DURA_ENOTSUP;
}

#define OPEN_OR_SKIP(e)                                           \
	do {                                                      \
		REQUIRE(env_open(&(e)) == 0);                     \
		if (!waiting_store(&(e))) {                       \
			env_close(&(e));                          \
			SKIP("the store has no durable waiting"); \
		}                                                 \
	} while (0)

/* ---- tests -------------------------------------------------------------------- */

/* Bad input is refused and changes nothing. */
static void bad_input(void)
{
	env e;
	OPEN_OR_SKIP(e);
	CHECK_RC(dura_ctx_sleep(NULL, 10), DURA_EINVAL);
	CHECK_RC(dura_run_signal(e.eng, "no-such-run", "paid", "{}"), DURA_ENOTFOUND);
	CHECK_RC(dura_run_signal(e.eng, "no-such-run", "", "{}"), DURA_EINVAL);
	CHECK_RC(dura_run_signal_foreign(e.eng, "wt-inbox", "no-such-order", "paid", "{}"), DURA_ENOTFOUND);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-inbox", NULL, "{\"want\":1}", NULL, id), 0);
	CHECK_RC(dura_run_signal(e.eng, id, "n", "{not json"), DURA_EINVAL);
	CHECK_RC(dura_run_signal(e.eng, id, "n ", "1"), DURA_EINVAL); /* a trailing space: "n" to MySQL */
	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(e.store, id, &l), 0);
	CHECK(l.count == 0);
	dura_signal_list_free(&l);
	REQUIRE_RC(dura_run_cancel(e.eng, id), 0);
	CHECK_RC(dura_run_signal(e.eng, id, "n", "1"), DURA_ECONFLICT);

	char name[64];
	snprintf(name, sizeof(name), "wt-bad-%s", id + 24);
	dura_schedule_spec sp = DURA_SCHEDULE_SPEC_INIT;
	sp.name = name;
	sp.cron = "* * 32 * *";
	sp.workflow = "wt-tick";
	CHECK_RC(dura_schedule_set(e.eng, &sp), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "day of month") != NULL);
	sp.cron = "* * * * *";
	sp.workflow = "not-registered";
	CHECK_RC(dura_schedule_set(e.eng, &sp), DURA_ENOTFOUND);
	sp.workflow = "wt-tick";
	sp.zone = "Nowhere/Atlantis";
	CHECK_RC(dura_schedule_set(e.eng, &sp), DURA_EINVAL);
	dura_schedule *got = NULL;
	CHECK_RC(dura_store_schedule_get(e.store, name, &got), DURA_ENOTFOUND);
	dura_schedule_free(got);
	env_close(&e);
}

/* A negative sleep fails the node's attempt (not retried: EINVAL) and
 * writes no step. */
static int neg_sleep(dura_ctx *ctx, json_t *state, void *p)
{
	(void)state, (void)p;
	return dura_ctx_sleep(ctx, -5);
}

static void negative_sleep_refused(void)
{
	env e;
	OPEN_OR_SKIP(e);
	REQUIRE(add1(e.eng, "wt-neg", "n", neg_sleep) == 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-neg", NULL, "{}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED);
	CHECK(r->step_no == 0);
	CHECK(strstr(r->error, "not 0 to 100 years") != NULL);
	dura_record_free(r);
	env_close(&e);
}

/* A sleep ends the run's execution with the run waiting; it continues
 * when due, not before; a pause holds it past its wake-up time. */
static void sleep_then_continue(void)
{
	env e;
	OPEN_OR_SKIP(e);
	memset(sh, 0, sizeof(*sh));
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-sleeper", NULL, "{\"i\":1,\"sleep_ms\":400}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_RUNNING);
	CHECK_STR(r->wait, "sleep");
	CHECK(r->step_no == 1);
	CHECK(r->next_run_at > dura_now_ms());
	CHECK_STR(r->lease_owner, "");
	int64_t due = r->next_run_at;
	dura_record_free(r);
	/* listed as waiting */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.waiting = 1;
	f.workflow_name = "wt-sleeper";
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(e.store, &f, &l), 0);
	int listed = 0;
	for (size_t i = 0; i < l.count; i++)
		listed += strcmp(l.items[i].run_id, id) == 0;
	CHECK(listed == 1);
	dura_record_list_free(&l);
	/* again before due: nothing runs, the call does not block */
	int64_t t0 = dura_now_ms();
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->step_no == 1);
	CHECK(dura_now_ms() < due);
	(void)t0;
	dura_record_free(r);
	CHECK(atomic_load(&sh->execs[1][1]) == 0);
	/* paused past its wake-up time: stays paused; resumed: sleeps on to its time */
	REQUIRE_RC(dura_run_pause(e.eng, id), 0);
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	r = get(&e, id);
	REQUIRE(r != NULL);
	CHECK(r->next_run_at == due);
	dura_record_free(r);
	REQUIRE_RC(dura_run_pause(e.eng, id), 0);
	sleep_ms((int)(due - dura_now_ms()) + 100);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_PAUSED);
	CHECK(r->step_no == 1);
	dura_record_free(r);
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK_STR(r->wait, "");
	dura_record_free(r);
	CHECK(atomic_load(&sh->execs[1][0]) == 1);
	CHECK(atomic_load(&sh->execs[1][1]) == 1);
	CHECK(atomic_load(&sh->woke_at[1]) >= due);
	env_close(&e);
}

/* A cancelled sleeper never wakes, with a worker running. */
static void cancelled_sleeper_never_wakes(void)
{
	env e;
	OPEN_OR_SKIP(e);
	memset(sh, 0, sizeof(*sh));
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-sleeper", NULL, "{\"i\":2,\"sleep_ms\":300}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	dura_record_free(r);
	REQUIRE_RC(dura_run_cancel(e.eng, id), 0);
	dura_worker *w;
	dura_worker_options o = wopts();
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	sleep_ms(700);
	CHECK_RC(dura_worker_stop(w, 5000), 0);
	CHECK(atomic_load(&sh->execs[2][1]) == 0);
	CHECK(state_of(&e, id) == DURA_RUN_CANCELLED);
	env_close(&e);
}

/* A child process: a worker until `until_ms` (wall), then exit 0. */
static void worker_child(int until_ms_from_now)
{
	alarm(120);
	env e;
	if (env_open(&e))
		_exit(3);
	dura_worker *w;
	dura_worker_options o = wopts();
	if (dura_worker_start(&w, e.eng, &o))
		_exit(4);
	sleep_ms(until_ms_from_now);
	dura_worker_stop(w, 5000);
	env_close(&e);
	_exit(0);
}

/* Runs asleep in every process; every process is SIGKILLed; new worker
 * processes continue each run once, not before it is due. */
static void sleep_survives_killing_everyone(void)
{
	env e;
	OPEN_OR_SKIP(e);
	if (!multi_process(e.store)) {
		env_close(&e);
		SKIP("the store lives in one process");
	}
	memset(sh, 0, sizeof(*sh));
	enum { RUNS = 6, KIDS = 2 };
	char ids[RUNS][DURA_UUID_LEN + 1];
	for (int i = 0; i < RUNS; i++) {
		char st[64];
		snprintf(st, sizeof(st), "{\"i\":%d,\"sleep_ms\":1500}", 10 + i);
		REQUIRE_RC(dura_run_start(e.eng, "wt-sleeper", NULL, st, NULL, ids[i]), 0);
	}
	pid_t pids[KIDS];
	for (int c = 0; c < KIDS; c++)
		if ((pids[c] = fork()) == 0)
			worker_child(60000);
	/* every run asleep */
	int asleep = 0;
	for (int t = 0; t < 1000 && asleep < RUNS; t++) {
		asleep = 0;
		for (int i = 0; i < RUNS; i++) {
			dura_record *r = get(&e, ids[i]);
			asleep += r && r->wait && strcmp(r->wait, "sleep") == 0;
			dura_record_free(r);
		}
		if (asleep < RUNS)
			sleep_ms(10);
	}
	CHECK(asleep == RUNS);
	for (int c = 0; c < KIDS; c++) {
		kill(pids[c], SIGKILL);
		CHECK(reap(pids[c]) == 128 + SIGKILL);
	}
	int64_t due[RUNS];
	for (int i = 0; i < RUNS; i++) {
		dura_record *r = get(&e, ids[i]);
		due[i] = r ? r->next_run_at : 0;
		dura_record_free(r);
	}
	for (int c = 0; c < KIDS; c++)
		if ((pids[c] = fork()) == 0)
			worker_child(4000);
	for (int i = 0; i < RUNS; i++)
		CHECK(wait_ended(&e, ids[i], 20000) == DURA_RUN_COMPLETED);
	long long late = 0;
	for (int i = 0; i < RUNS; i++) {
		CHECK(atomic_load(&sh->execs[10 + i][1]) == 1);
		CHECK(atomic_load(&sh->execs[10 + i][0]) == 1);
		long long at = atomic_load(&sh->woke_at[10 + i]);
		CHECK(at >= due[i]);
		if (at - due[i] > late)
			late = at - due[i];
	}
	fprintf(stderr, "    after every process was killed: woken at most %lld ms after due (poll 50 ms)\n", late);
	for (int c = 0; c < KIDS; c++)
		CHECK(reap(pids[c]) == 0);
	env_close(&e);
}

/* A signal sent before the wait is kept; one sent after wakes the run. */
static void signal_before_and_after(void)
{
	env e;
	OPEN_OR_SKIP(e);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-inbox", NULL, "{\"want\":2}", NULL, id), 0);
	REQUIRE_RC(dura_run_signal(e.eng, id, "n", "\"early\""), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_RUNNING);
	CHECK_STR(r->wait, "signal:n");
	CHECK(r->step_no == 1);
	dura_record_free(r);
	/* an unrelated signal does not wake it */
	REQUIRE_RC(dura_run_signal(e.eng, id, "other", "1"), 0);
	r = get(&e, id);
	REQUIRE(r != NULL);
	CHECK(r->next_run_at > dura_now_ms());
	dura_record_free(r);
	REQUIRE_RC(dura_run_signal(e.eng, id, "n", "\"late\""), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	json_t *st = json_loads(r->state, 0, NULL);
	json_t *got = json_object_get(st, "got");
	CHECK(json_array_size(got) == 2);
	CHECK_STR(json_string_value(json_array_get(got, 0)), "early");
	CHECK_STR(json_string_value(json_array_get(got, 1)), "late");
	json_decref(st);
	dura_record_free(r);
	/* the inbox has only the unrelated one left */
	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(e.store, id, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].name, "other");
	dura_signal_list_free(&l);
	CHECK_RC(dura_run_signal(e.eng, id, "n", "1"), DURA_ECONFLICT);
	env_close(&e);
}

/* A signal sent, or a child ended, while the waiting run was paused wakes
 * it when it is resumed. */
static void woken_at_resume(void)
{
	env e;
	OPEN_OR_SKIP(e);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-inbox", NULL, "{\"want\":1}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK_STR(r->wait, "signal:n");
	dura_record_free(r);
	REQUIRE_RC(dura_run_pause(e.eng, id), 0);
	REQUIRE_RC(dura_run_signal(e.eng, id, "n", "7"), 0);
	r = get(&e, id);
	REQUIRE(r != NULL);
	CHECK(r->run_state == DURA_RUN_PAUSED);
	dura_record_free(r);
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	r = get(&e, id);
	REQUIRE(r != NULL);
	CHECK(r->next_run_at <= dura_now_ms());
	dura_record_free(r);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	dura_record_free(r);

	/* a child that ends while its parent is paused */
	REQUIRE_RC(dura_run_start(e.eng, "wt-parent", NULL, "{\"n\":1}", NULL, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	REQUIRE(strncmp(r->wait, "child:", 6) == 0);
	char child[DURA_MAX_ID_LEN + 1];
	snprintf(child, sizeof(child), "%s", r->wait + 6);
	dura_record_free(r);
	REQUIRE_RC(dura_run_pause(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, child, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	dura_record_free(r);
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	dura_record_free(r);
	env_close(&e);
}

/* A wait with a timeout ends with DURA_ETIMEOUT once it passed, not before. */
static void timeout_fires(void)
{
	env e;
	OPEN_OR_SKIP(e);
	char id[DURA_UUID_LEN + 1];
	int64_t t0 = dura_now_ms();
	REQUIRE_RC(dura_run_start(e.eng, "wt-inbox", NULL, "{\"want\":1,\"timeout_ms\":300}", NULL, id), 0);
	dura_worker *w;
	dura_worker_options o = wopts();
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	CHECK(wait_ended(&e, id, 10000) == DURA_RUN_COMPLETED);
	CHECK_RC(dura_worker_stop(w, 5000), 0);
	dura_record *r = get(&e, id);
	REQUIRE(r != NULL);
	json_t *st = json_loads(r->state, 0, NULL);
	json_int_t at = json_integer_value(json_object_get(st, "timed_out"));
	CHECK(at >= t0 + 300);
	CHECK(json_object_get(st, "got") == NULL);
	fprintf(stderr, "    a 300 ms timeout fired after %lld ms\n", (long long)(at - t0));
	json_decref(st);
	dura_record_free(r);
	env_close(&e);
}

/* Signals sent while worker processes race for the run and are SIGKILLed
 * at random: every signal is received once, in the order sent. */
static void signals_in_order_under_kills(void)
{
	env e;
	OPEN_OR_SKIP(e);
	int multi = multi_process(e.store);
	enum { N = 24, KIDS = 3 };
	char id[DURA_UUID_LEN + 1];
	char st[32];
	snprintf(st, sizeof(st), "{\"want\":%d}", N);
	REQUIRE_RC(dura_run_start(e.eng, "wt-inbox", NULL, st, NULL, id), 0);
	pid_t pids[KIDS] = {0};
	dura_worker *local = NULL;
	dura_worker_options o = wopts();
	if (multi) {
		for (int c = 0; c < KIDS; c++)
			if ((pids[c] = fork()) == 0)
				worker_child(60000);
	} else {
		REQUIRE_RC(dura_worker_start(&local, e.eng, &o), 0);
	}
	unsigned seed = (unsigned)dura_now_ms();
	int kills = 0;
	for (int i = 0; i < N; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		CHECK_RC(dura_run_signal(e.eng, id, "n", v), 0);
		sleep_ms(5 + (int)(rand_r(&seed) % 40));
		if (multi && i % 5 == 4) {
			int c = (int)(rand_r(&seed) % KIDS);
			kill(pids[c], SIGKILL);
			reap(pids[c]);
			kills++;
			if ((pids[c] = fork()) == 0)
				worker_child(60000);
		}
	}
	CHECK(wait_ended(&e, id, 30000) == DURA_RUN_COMPLETED);
	if (multi)
		for (int c = 0; c < KIDS; c++) {
			kill(pids[c], SIGKILL);
			reap(pids[c]);
		}
	else
		CHECK_RC(dura_worker_stop(local, 5000), 0);
	dura_record *r = get(&e, id);
	REQUIRE(r != NULL);
	json_t *s = json_loads(r->state, 0, NULL);
	json_t *got = json_object_get(s, "got");
	CHECK(json_array_size(got) == N);
	int in_order = 1;
	for (size_t i = 0; i < json_array_size(got); i++)
		in_order &= json_integer_value(json_array_get(got, i)) == (json_int_t)i;
	CHECK(in_order);
	CHECK(r->step_no == N);
	json_decref(s);
	dura_record_free(r);
	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(e.store, id, &l), 0);
	CHECK(l.count == 0);
	dura_signal_list_free(&l);
	fprintf(stderr, "    %d signals received in order with %d worker kills\n", N, kills);
	env_close(&e);
}

/* 50 children fanned out and awaited: the parent resumes with their
 * results; no child is started twice. */
static void fan_out_children(void)
{
	env e;
	OPEN_OR_SKIP(e);
	enum { N = 50 };
	char id[DURA_UUID_LEN + 1];
	char st[32];
	snprintf(st, sizeof(st), "{\"n\":%d}", N);
	REQUIRE_RC(dura_run_start(e.eng, "wt-parent", NULL, st, NULL, id), 0);
	int multi = multi_process(e.store);
	pid_t pid = 0;
	if (multi && (pid = fork()) == 0)
		worker_child(60000);
	dura_worker *w;
	dura_worker_options o = wopts();
	REQUIRE_RC(dura_worker_start(&w, e.eng, &o), 0);
	CHECK(wait_ended(&e, id, 60000) == DURA_RUN_COMPLETED);
	CHECK_RC(dura_worker_stop(w, 5000), 0);
	if (pid > 0) {
		kill(pid, SIGKILL);
		reap(pid);
	}
	dura_record *r = get(&e, id);
	REQUIRE(r != NULL);
	json_t *s = json_loads(r->state, 0, NULL);
	CHECK(json_integer_value(json_object_get(s, "sum")) == (json_int_t)(N * (N - 1)));
	json_decref(s);
	dura_record_free(r);
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = id;
	f.limit = 1000;
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(e.store, &f, &l), 0);
	CHECK(l.count == N);
	int done = 0;
	for (size_t i = 0; i < l.count; i++)
		done += l.items[i].run_state == DURA_RUN_COMPLETED && strcmp(l.items[i].parent_id, id) == 0;
	CHECK(done == N);
	dura_record_list_free(&l);
	env_close(&e);
}

/* waits forever for a signal */
static int forever_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)state, (void)p;
	char *json = NULL;
	int rc = dura_ctx_wait_signal(ctx, "never", -1, &json);
	dura_free(json);
	return rc;
}

/* start two children that wait forever, then await the first */
static int holder_node(dura_ctx *ctx, json_t *state, void *p)
{
	(void)state, (void)p;
	char a[DURA_UUID_LEN + 1], b[DURA_UUID_LEN + 1];
	int rc = dura_ctx_start_child(ctx, "wt-forever", NULL, a);
	if (rc == 0)
		rc = dura_ctx_start_child(ctx, "wt-forever", NULL, b);
	if (rc == 0)
		rc = dura_ctx_await_child(ctx, a, NULL);
	return rc;
}

/* Cancelling a parent cancels its unfinished children; a cancelled child
 * wakes the parent that awaits it. */
static void cancel_cascades(void)
{
	env e;
	OPEN_OR_SKIP(e);
	REQUIRE(add1(e.eng, "wt-forever", "w", forever_node) == 0);
	REQUIRE(add1(e.eng, "wt-holder", "h", holder_node) == 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, "wt-holder", NULL, "{}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(strncmp(r->wait, "child:", 6) == 0);
	char first[DURA_MAX_ID_LEN + 1];
	snprintf(first, sizeof(first), "%s", r->wait + 6);
	dura_record_free(r);
	/* the children run into their waits */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = id;
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(e.store, &f, &l), 0);
	CHECK(l.count == 2);
	for (size_t i = 0; i < l.count; i++) {
		dura_record *c = NULL;
		CHECK_RC(dura_run_execute(e.eng, l.items[i].run_id, &c), 0);
		if (c)
			CHECK_STR(c->wait, "signal:never");
		dura_record_free(c);
	}
	/* cancelling the awaited child wakes the parent */
	REQUIRE_RC(dura_run_cancel(e.eng, first), 0);
	r = get(&e, id);
	REQUIRE(r != NULL);
	CHECK(r->next_run_at <= dura_now_ms());
	dura_record_free(r);
	/* cancelling the parent cancels the other child */
	REQUIRE_RC(dura_run_cancel(e.eng, id), 0);
	for (size_t i = 0; i < l.count; i++)
		CHECK(state_of(&e, l.items[i].run_id) == DURA_RUN_CANCELLED);
	dura_record_list_free(&l);
	CHECK_RC(dura_run_cancel(e.eng, id), 0); /* again: nothing left to cancel */
	env_close(&e);
}

/* A schedule every second over 10 s, three worker processes (threads'
 * workers on a one-process store): one run per tick, no tick missed
 * between the first and the last. */
static void schedule_one_run_per_tick(void)
{
	env e;
	OPEN_OR_SKIP(e);
	int multi = multi_process(e.store);
	char name[64], uid[DURA_UUID_LEN + 1];
	dura_uuid7(uid);
	snprintf(name, sizeof(name), "wt-every-second-%s", uid + 24);
	dura_schedule_spec sp = DURA_SCHEDULE_SPEC_INIT;
	sp.name = name;
	sp.cron = "*/1 * * * * *";
	sp.workflow = "wt-tick";
	sp.catch_up = 5;
	REQUIRE_RC(dura_schedule_set(e.eng, &sp), 0);
	enum { KIDS = 3, SECONDS = 10 };
	pid_t pids[KIDS] = {0};
	dura_worker *ws[KIDS] = {0};
	dura_worker_options o = wopts();
	for (int c = 0; c < KIDS; c++) {
		if (multi) {
			if ((pids[c] = fork()) == 0)
				worker_child(SECONDS * 1000);
		} else {
			REQUIRE_RC(dura_worker_start(&ws[c], e.eng, &o), 0);
		}
	}
	if (multi) {
		for (int c = 0; c < KIDS; c++)
			CHECK(reap(pids[c]) == 0);
	} else {
		sleep_ms(SECONDS * 1000);
		for (int c = 0; c < KIDS; c++)
			CHECK_RC(dura_worker_stop(ws[c], 5000), 0);
	}
	REQUIRE_RC(dura_schedule_delete(e.eng, name), 0);
	/* the runs of this schedule, by their tick */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = "wt-tick";
	f.limit = 10000;
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(e.store, &f, &l), 0);
	long long ticks[64];
	int n = 0, dup = 0;
	for (size_t i = 0; i < l.count; i++) {
		json_t *m = json_loads(l.items[i].meta, 0, NULL);
		const char *sn = json_string_value(json_object_get(m, "schedule"));
		if (sn && strcmp(sn, name) == 0 && n < 64) {
			long long t = (long long)json_integer_value(json_object_get(m, "tick"));
			for (int k = 0; k < n; k++)
				dup += ticks[k] == t;
			ticks[n++] = t;
		}
		json_decref(m);
	}
	dura_record_list_free(&l);
	long long lo = 0, hi = 0;
	for (int k = 0; k < n; k++) {
		if (!lo || ticks[k] < lo)
			lo = ticks[k];
		if (ticks[k] > hi)
			hi = ticks[k];
	}
	fprintf(stderr, "    %d ticks fired over %d s by %d workers\n", n, SECONDS, KIDS);
	CHECK(dup == 0);
	CHECK(n >= SECONDS - 2);
	CHECK(n > 0 && (hi - lo) / 1000 + 1 == n); /* every second between the first and the last */
	env_close(&e);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: waiting_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	static const test_case tests[] = {
		{"bad_input", bad_input},
		{"negative_sleep_refused", negative_sleep_refused},
		{"sleep_then_continue", sleep_then_continue},
		{"cancelled_sleeper_never_wakes", cancelled_sleeper_never_wakes},
		{"sleep_survives_killing_everyone", sleep_survives_killing_everyone},
		{"signal_before_and_after", signal_before_and_after},
		{"woken_at_resume", woken_at_resume},
		{"timeout_fires", timeout_fires},
		{"signals_in_order_under_kills", signals_in_order_under_kills},
		{"fan_out_children", fan_out_children},
		{"cancel_cascades", cancel_cascades},
		{"schedule_one_run_per_tick", schedule_one_run_per_tick},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "waiting %.*s", (int)strcspn(g_url, ":"), g_url);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
}
