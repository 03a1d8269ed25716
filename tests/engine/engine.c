/*
 * Engine behaviour on one store (argv[1]): graphs, reducers, retries,
 * timeouts, run control, await, checkpoints and forks, the outbox.
 */
#include "dura.h"
#include "test.h"

#include <pthread.h>
#include <unistd.h>

static const char *g_url;

typedef struct env {
	dura_store *store;
	dura_engine *eng;
	char wf[64];
} env;

static int env_open(env *e, const dura_engine_options *opts)
{
	memset(e, 0, sizeof(*e));
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(e->wf, sizeof(e->wf), "wf-%s", id + 24);
	if (dura_store_open(&e->store, g_url, NULL))
		return -1;
	if (dura_engine_open(&e->eng, e->store, opts)) {
		dura_store_close(e->store);
		return -1;
	}
	return 0;
}

static void env_close(env *e)
{
	dura_engine_close(e->eng);
	dura_store_close(e->store);
}

static json_t *load(const char *text)
{
	return json_loads(text, JSON_DECODE_ANY, NULL);
}

static int json_int_at(const char *text, const char *key)
{
	json_t *j = load(text);
	int v = (int)json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

/* ---- nodes ---------------------------------------------------------------- */

static int add_one(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	const char *key = payload ? payload : "n";
	json_object_set_new(state, key, json_integer(json_integer_value(json_object_get(state, key)) + 1));
	return 0;
}

static int branch_on_n(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	int n = (int)json_integer_value(json_object_get(state, "n"));
	return dura_ctx_goto(ctx, n % 2 ? "odd" : "even");
}

static int loop_until_5(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	int i = (int)json_integer_value(json_object_get(state, "i"));
	json_object_set_new(state, "i", json_integer(i + 1));
	return dura_ctx_goto(ctx, i + 1 < 5 ? "loop" : NULL);
}

static int delta_node(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	return dura_ctx_set_delta(ctx, load((const char *)payload));
}

static int attempts_seen;
static int flaky(dura_ctx *ctx, json_t *state, void *payload)
{
	int fail_times = *(int *)payload;
	attempts_seen++;
	json_object_set_new(state, "flaky_attempt", json_integer(dura_ctx_attempt(ctx)));
	if (dura_ctx_attempt(ctx) <= fail_times)
		return dura_ctx_fail(ctx, DURA_EIO, "transient failure %d", dura_ctx_attempt(ctx));
	return 0;
}

static int not_retryable(int code, const char *error, void *payload)
{
	(void)error;
	(void)payload;
	return code != DURA_EIO;
}

static int slow(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	(void)payload;
	while (!dura_ctx_canceled(ctx))
		usleep(2000);
	return 0; /* returned, but after the deadline: counted failed */
}

/* Grows the state by payload's bytes (a string of that many x). */
static int grow_state(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	size_t n = *(size_t *)payload;
	char *blob = malloc(n + 1);
	if (!blob)
		return DURA_ENOMEM;
	memset(blob, 'x', n);
	blob[n] = '\0';
	json_object_set_new(state, "blob", json_string(blob));
	free(blob);
	return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void register_validates(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	REQUIRE_RC(dura_workflow_new(&wf, e.wf), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), 0);
	CHECK_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), DURA_EEXISTS);
	CHECK(strstr(dura_error_last()->message, "'a'") != NULL);
	CHECK_RC(dura_engine_register(e.eng, wf), DURA_EINVAL); /* no start; wf is freed */
	CHECK(strstr(dura_error_last()->message, "start") != NULL);

	REQUIRE_RC(dura_workflow_new(&wf, e.wf), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_add_edge(wf, "a", "ghost"), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "a"), 0);
	CHECK_RC(dura_engine_register(e.eng, wf), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "ghost") != NULL);

	REQUIRE_RC(dura_workflow_new(&wf, e.wf), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "nowhere"), 0);
	CHECK_RC(dura_engine_register(e.eng, wf), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "nowhere") != NULL);

	REQUIRE_RC(dura_workflow_new(&wf, e.wf), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "a"), 0);
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	REQUIRE_RC(dura_workflow_new(&wf, e.wf), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", add_one, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "a"), 0);
	CHECK_RC(dura_engine_register(e.eng, wf), DURA_EEXISTS);
	CHECK_RC(dura_workflow_add_edge(NULL, "a", "b"), DURA_EINVAL);
	/* names end up in the outbox's JSON: not UTF-8 is refused up front */
	dura_workflow *bad;
	CHECK_RC(dura_workflow_new(&bad, "wf-\xff"), DURA_EINVAL);
	REQUIRE_RC(dura_workflow_new(&bad, "wf-utf8"), 0);
	CHECK_RC(dura_workflow_add_node(bad, "n\xc3", add_one, NULL, NULL), DURA_EINVAL);
	CHECK_RC(dura_workflow_add_node(bad, "n\xed\xa0\x80", add_one, NULL, NULL), DURA_EINVAL); /* a surrogate */
	CHECK_RC(dura_workflow_add_node(bad, "n\xc3\xa9", add_one, NULL, NULL), 0);
	dura_workflow_free(bad);
	char id[DURA_UUID_LEN + 1];
	CHECK_RC(dura_run_start(e.eng, "not-registered", NULL, NULL, NULL, id), DURA_ENOTFOUND);
	env_close(&e);
}

static void linear_graph(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	const char *names[] = {"s0", "s1", "s2", "s3", "s4"};
	for (int i = 0; i < 5; i++)
		dura_workflow_add_node(wf, names[i], add_one, NULL, NULL);
	for (int i = 0; i < 4; i++)
		dura_workflow_add_edge(wf, names[i], names[i + 1]);
	dura_workflow_set_start(wf, "s0");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{\"n\":10}", NULL, id), 0);
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(r->step_no == 5);
	CHECK(json_int_at(r->state, "n") == 15);
	CHECK_STR(r->status, "");
	dura_record_free(r);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(e.store, id, 0, 0, &h), 0);
	CHECK(h.count == 5);
	for (size_t i = 0; i < h.count; i++) {
		CHECK(h.items[i].step == (int64_t)i);
		CHECK_STR(h.items[i].node_id, names[i]);
		CHECK(json_int_at(h.items[i].state, "n") == 11 + (int)i);
	}
	dura_step_list_free(&h);
	/* executing a completed run again does nothing */
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->step_no == 5);
	dura_record_free(r);
	env_close(&e);
}

static void branching_and_looping(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "decide", branch_on_n, NULL, NULL);
	dura_workflow_add_node(wf, "odd", add_one, "odd_hits", NULL);
	dura_workflow_add_node(wf, "even", add_one, "even_hits", NULL);
	dura_workflow_add_node(wf, "loop", loop_until_5, NULL, NULL);
	dura_workflow_add_edge(wf, "odd", "loop");
	dura_workflow_add_edge(wf, "even", "loop");
	dura_workflow_set_start(wf, "decide");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char a[DURA_UUID_LEN + 1], b[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{\"n\":3}", NULL, a), 0);
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{\"n\":4}", NULL, b), 0);
	dura_record *ra, *rb;
	REQUIRE_RC(dura_run_execute(e.eng, a, &ra), 0);
	REQUIRE_RC(dura_run_execute(e.eng, b, &rb), 0);
	CHECK(json_int_at(ra->state, "odd_hits") == 1 && json_int_at(ra->state, "even_hits") == 0);
	CHECK(json_int_at(rb->state, "even_hits") == 1 && json_int_at(rb->state, "odd_hits") == 0);
	CHECK(json_int_at(ra->state, "i") == 5);
	CHECK(ra->step_no == 7); /* decide, odd, loop x5 */
	CHECK(ra->run_state == DURA_RUN_COMPLETED);
	dura_record_free(ra);
	dura_record_free(rb);
	env_close(&e);
}

static void reducers(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	char name[80];
	snprintf(name, sizeof(name), "%s-replace", e.wf);
	dura_workflow_new(&wf, name);
	dura_workflow_add_node(wf, "d", delta_node, "{\"only\":true}", NULL);
	dura_workflow_set_start(wf, "d");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	dura_record *r;
	REQUIRE_RC(dura_run_start(e.eng, name, NULL, "{\"keep\":1}", NULL, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	json_t *got = load(r->state), *want = load("{\"only\":true}");
	CHECK(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	dura_record_free(r);

	snprintf(name, sizeof(name), "%s-merge", e.wf);
	dura_workflow_new(&wf, name);
	dura_workflow_add_node(wf, "d", delta_node, "{\"a\":{\"x\":2,\"gone\":null},\"b\":[1]}", NULL);
	dura_workflow_set_start(wf, "d");
	dura_workflow_set_reducer(wf, dura_reducer_merge_patch, NULL);
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	REQUIRE_RC(dura_run_start(e.eng, name, NULL, "{\"a\":{\"x\":1,\"y\":1,\"gone\":5},\"c\":3}", NULL, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	got = load(r->state);
	want = load("{\"a\":{\"x\":2,\"y\":1},\"b\":[1],\"c\":3}");
	CHECK(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	dura_record_free(r);
	env_close(&e);
}

/* A node that leaves a state over the store's max_state fails its
 * attempt (DURA_EINVAL, not retried): the run fails naming both sizes and
 * keeps the state of its last step. */
static void state_over_the_limit_fails_the_run(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_engine_close(e.eng);
	dura_store_close(e.store);
	char url[1200];
	snprintf(url, sizeof(url), "%s%smax_state=4000", g_url, strchr(g_url, '?') ? "&" : "?");
	REQUIRE_RC(dura_store_open(&e.store, url, NULL), 0);
	REQUIRE_RC(dura_engine_open(&e.eng, e.store, NULL), 0);
	static size_t small = 100, big = 5000;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 3;
	o.backoff_initial_ms = 1;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "small", grow_state, &small, NULL);
	dura_workflow_add_node(wf, "big", grow_state, &big, &o);
	dura_workflow_add_edge(wf, "small", "big");
	dura_workflow_set_start(wf, "small");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	dura_record *r = NULL;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED);
	CHECK(r->step_no == 1); /* the small node's step, not the big one's */
	CHECK(r->attempt == 1); /* DURA_EINVAL is not retried */
	CHECK(strstr(r->error, "node big") && strstr(r->error, "over the store's limit of 4000 bytes"));
	CHECK(strlen(r->state) < 4000);
	dura_record_free(r);
	REQUIRE_RC(dura_store_get_run(e.store, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED && r->step_no == 1);
	dura_record_free(r);
	env_close(&e);
}

static void retries_then_success(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	static int fail_twice = 2;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 3;
	o.backoff_initial_ms = 5;
	o.backoff_max_ms = 20;
	o.jitter = 0.5;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "flaky", flaky, &fail_twice, &o);
	dura_workflow_set_start(wf, "flaky");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	attempts_seen = 0;
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(attempts_seen == 3);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(r->step_no == 1); /* failed attempts write no step row */
	CHECK(json_int_at(r->state, "flaky_attempt") == 3);
	dura_record_free(r);
	env_close(&e);
}

static void retries_exhausted_fail_then_resume(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	static int fail_four = 4;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 2;
	o.backoff_initial_ms = 1;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "flaky", flaky, &fail_four, &o);
	dura_workflow_set_start(wf, "flaky");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	attempts_seen = 0;
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(attempts_seen == 2);
	CHECK(r->run_state == DURA_RUN_FAILED);
	CHECK(strstr(r->error, "transient failure 2") != NULL);
	CHECK(r->step_no == 0);
	dura_record_free(r);
	/* the failure is persisted: a fresh read shows it */
	REQUIRE_RC(dura_store_get_run(e.store, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED);
	dura_record_free(r);
	/* resume retries from the failed node with a fresh attempt count */
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED); /* attempts 1,2 again fail (fail_four) */
	dura_record_free(r);
	static int fail_none = 0;
	(void)fail_none;
	env_close(&e);
}

static void classifier_stops_retries(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	static int fail_once = 1;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 5;
	o.backoff_initial_ms = 1;
	o.retryable = not_retryable;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "flaky", flaky, &fail_once, &o);
	dura_workflow_set_start(wf, "flaky");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	attempts_seen = 0;
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(attempts_seen == 1);
	CHECK(r->run_state == DURA_RUN_FAILED);
	dura_record_free(r);
	env_close(&e);
}

static void auto_pause_after_failures(void)
{
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.auto_pause_after_failures = 2;
	env e;
	REQUIRE(env_open(&e, &eo) == 0);
	static int fail_many = 100;
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 10;
	o.backoff_initial_ms = 1;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "flaky", flaky, &fail_many, &o);
	dura_workflow_set_start(wf, "flaky");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	attempts_seen = 0;
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(attempts_seen == 2);
	CHECK(r->run_state == DURA_RUN_PAUSED);
	CHECK(r->attempt == 2);
	dura_record_free(r);
	env_close(&e);
}

static void node_timeout_counts_as_failure(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.timeout_ms = 30;
	o.max_attempts = 2;
	o.backoff_initial_ms = 1;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "slow", slow, NULL, &o);
	dura_workflow_set_start(wf, "slow");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED);
	CHECK(r->attempt == 2);
	CHECK(strstr(r->error, "timeout") != NULL);
	dura_record_free(r);
	env_close(&e);
}

static void run_budget(void)
{
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.run_timeout_ms = 40;
	env e;
	REQUIRE(env_open(&e, &eo) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "slow", slow, NULL, NULL);
	dura_workflow_add_node(wf, "after", add_one, NULL, NULL);
	dura_workflow_add_edge(wf, "slow", "after");
	dura_workflow_set_start(wf, "slow");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_FAILED);
	CHECK(json_int_at(r->state, "n") == 0); /* "after" never ran */
	dura_record_free(r);
	env_close(&e);
}

static void max_steps_and_resume_where_left(void)
{
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.max_steps = 2;
	env e;
	REQUIRE(env_open(&e, &eo) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "loop", loop_until_5, NULL, NULL);
	dura_workflow_set_start(wf, "loop");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_RUNNING);
	CHECK(r->step_no == 2);
	dura_record_free(r);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->step_no == 4);
	dura_record_free(r);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(json_int_at(r->state, "i") == 5);
	CHECK(r->step_no == 5);
	dura_record_free(r);
	env_close(&e);
}

/* A node that pauses its own run mid-step: the step still commits, then
 * the run stops at the boundary. */
static int pause_self(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_object_set_new(state, "paused_here", json_true());
	dura_store_set_run_state(dura_ctx_store(ctx), dura_ctx_run_id(ctx), DURA_RUN_PAUSED, NULL);
	return 0;
}

static void pause_resume_cancel(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "p", pause_self, NULL, NULL);
	dura_workflow_add_node(wf, "q", add_one, NULL, NULL);
	dura_workflow_add_edge(wf, "p", "q");
	dura_workflow_set_start(wf, "p");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	dura_record *r;
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_PAUSED);
	CHECK(r->step_no == 1); /* p committed at the boundary */
	CHECK_STR(r->status, "q");
	dura_record_free(r);
	CHECK_RC(dura_run_pause(e.eng, id), DURA_ECONFLICT); /* already paused */
	REQUIRE_RC(dura_run_resume(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(json_int_at(r->state, "n") == 1);
	dura_record_free(r);

	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, id), 0);
	REQUIRE_RC(dura_run_cancel(e.eng, id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, &r), 0);
	CHECK(r->run_state == DURA_RUN_CANCELLED);
	CHECK(r->step_no == 0);
	dura_record_free(r);
	CHECK_RC(dura_run_resume(e.eng, id), DURA_ECONFLICT);
	env_close(&e);
}

/* A node that counts its calls and fails its first attempt. */
static int calls;
static int fail_first(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	(void)payload;
	calls++;
	return dura_ctx_attempt(ctx) == 1 ? dura_ctx_fail(ctx, DURA_EIO, "first attempt fails") : 0;
}

typedef struct later {
	dura_engine *eng;
	char id[DURA_UUID_LEN + 1];
	int to;
	int usec;
} later;

static void *control_later(void *p)
{
	later *l = p;
	usleep((useconds_t)l->usec);
	if (l->to == DURA_RUN_CANCELLED)
		dura_run_cancel(l->eng, l->id);
	else if (l->to == DURA_RUN_PAUSED)
		dura_run_pause(l->eng, l->id);
	else {
		dura_run_pause(l->eng, l->id);
		dura_run_resume(l->eng, l->id);
	}
	return NULL;
}

/* A cancel during a retry's backoff stops the run: the node does not run again. */
static void cancel_during_backoff(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 3;
	o.backoff_initial_ms = 1500;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "f", fail_first, NULL, &o);
	dura_workflow_set_start(wf, "f");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	later l = {e.eng, "", DURA_RUN_CANCELLED, 200000};
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, l.id), 0);
	calls = 0;
	pthread_t t;
	pthread_create(&t, NULL, control_later, &l);
	dura_record *r;
	int rc = dura_run_execute(e.eng, l.id, &r);
	pthread_join(t, NULL);
	REQUIRE_RC(rc, 0);
	CHECK(calls == 1);
	CHECK(r->run_state == DURA_RUN_CANCELLED);
	CHECK(r->step_no == 0);
	dura_record_free(r);
	env_close(&e);
}

/* A node slow enough for the operator to act while it runs. */
static int slow_then(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	calls++;
	usleep(150000);
	return payload ? dura_ctx_fail(ctx, DURA_EIO, "failed while paused") : 0;
}

/* A pause during a failing attempt: the attempt is kept, the run paused, rc 0. */
static void pause_during_failing_attempt(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 3;
	o.backoff_initial_ms = 1;
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "f", slow_then, (void *)1, &o);
	dura_workflow_set_start(wf, "f");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	later l = {e.eng, "", DURA_RUN_PAUSED, 30000};
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, l.id), 0);
	calls = 0;
	pthread_t t;
	pthread_create(&t, NULL, control_later, &l);
	dura_record *r;
	int rc = dura_run_execute(e.eng, l.id, &r);
	pthread_join(t, NULL);
	REQUIRE_RC(rc, 0);
	CHECK(calls == 1);
	CHECK(r->run_state == DURA_RUN_PAUSED);
	CHECK(r->attempt == 1);
	CHECK(strstr(r->error, "failed while paused") != NULL);
	dura_record_free(r);
	env_close(&e);
}

/* A pause and resume while a node runs: its step is kept, not run again. */
static void pause_and_resume_during_node(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "f", slow_then, NULL, NULL);
	dura_workflow_set_start(wf, "f");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	later l = {e.eng, "", DURA_RUN_RUNNING, 30000};
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, l.id), 0);
	calls = 0;
	pthread_t t;
	pthread_create(&t, NULL, control_later, &l);
	dura_record *r;
	int rc = dura_run_execute(e.eng, l.id, &r);
	pthread_join(t, NULL);
	REQUIRE_RC(rc, 0);
	CHECK(calls == 1);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(r->step_no == 1);
	dura_record_free(r);
	/* and a wait "for ever" is not an overflow */
	dura_await_cond done = {DURA_RUN_COMPLETED, NULL, 0};
	CHECK_RC(dura_run_await(e.eng, l.id, &done, INT64_MAX, NULL), 0);
	env_close(&e);
}

static void start_is_idempotent_on_foreign_id(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "a", add_one, NULL, NULL);
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	char a[DURA_UUID_LEN + 1], b[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, "order-1", "{}", NULL, a), 0);
	CHECK_RC(dura_run_start(e.eng, e.wf, "order-1", "{}", NULL, b), DURA_EEXISTS);
	CHECK_STR(a, b);
	REQUIRE_RC(dura_run_execute(e.eng, a, NULL), 0);
	REQUIRE_RC(dura_run_start(e.eng, e.wf, "order-1", "{}", NULL, b), 0); /* first is completed now */
	CHECK(strcmp(a, b) != 0);
	env_close(&e);
}

static void delayed_start(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "a", add_one, NULL, NULL);
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	dura_run_options ro = DURA_RUN_OPTIONS_INIT;
	ro.start_at = dura_now_ms() + 10000;
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", &ro, id), 0);
	dura_record_list l;
	const char *wfs[] = {e.wf};
	REQUIRE_RC(dura_store_claim_runs(e.store, "w1", wfs, 1, 10, 1000, &l), 0);
	CHECK(l.count == 0); /* not due yet */
	dura_record_list_free(&l);
	env_close(&e);
}

typedef struct await_arg {
	env *e;
	char id[DURA_UUID_LEN + 1];
} await_arg;

static void *execute_later(void *p)
{
	await_arg *a = p;
	usleep(50000);
	dura_run_execute(a->e->eng, a->id, NULL);
	return NULL;
}

static void await_status_and_end(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "a", add_one, NULL, NULL);
	dura_workflow_add_node(wf, "b", add_one, NULL, NULL);
	dura_workflow_add_edge(wf, "a", "b");
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	await_arg arg = {&e, ""};
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, arg.id), 0);
	dura_await_cond early = {0, "a", 0};
	dura_record *r;
	REQUIRE_RC(dura_run_await(e.eng, arg.id, &early, 100, &r), 0); /* already at a */
	dura_record_free(r);
	dura_await_cond done = {DURA_RUN_COMPLETED, NULL, 0};
	CHECK_RC(dura_run_await(e.eng, arg.id, &done, 30, NULL), DURA_ETIMEOUT);
	pthread_t t;
	pthread_create(&t, NULL, execute_later, &arg);
	int rc = dura_run_await(e.eng, arg.id, &done, 5000, &r);
	pthread_join(t, NULL);
	REQUIRE_RC(rc, 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	CHECK(json_int_at(r->state, "n") == 2);
	dura_record_free(r);
	dura_await_cond none = {0, NULL, 0};
	CHECK_RC(dura_run_await(e.eng, arg.id, &none, 10, NULL), DURA_EINVAL);
	env_close(&e);
}

static void checkpoint_and_fork(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	const char *names[] = {"a", "b", "c", "d"};
	for (int i = 0; i < 4; i++)
		dura_workflow_add_node(wf, names[i], add_one, NULL, NULL);
	for (int i = 0; i < 3; i++)
		dura_workflow_add_edge(wf, names[i], names[i + 1]);
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.max_steps = 2;
	dura_engine *two;
	REQUIRE_RC(dura_engine_open(&two, e.store, &eo), 0);
	dura_workflow *wf2;
	dura_workflow_new(&wf2, e.wf);
	for (int i = 0; i < 4; i++)
		dura_workflow_add_node(wf2, names[i], add_one, NULL, NULL);
	for (int i = 0; i < 3; i++)
		dura_workflow_add_edge(wf2, names[i], names[i + 1]);
	dura_workflow_set_start(wf2, "a");
	REQUIRE_RC(dura_engine_register(two, wf2), 0);

	char id[DURA_UUID_LEN + 1], cp[80];
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{\"n\":0}", NULL, id), 0);
	REQUIRE_RC(dura_run_execute(two, id, NULL), 0); /* a, b */
	snprintf(cp, sizeof(cp), "cp-%s", id);
	REQUIRE_RC(dura_run_checkpoint(e.eng, id, cp), 0);
	REQUIRE_RC(dura_run_execute(e.eng, id, NULL), 0); /* c, d */

	/* from the checkpoint: n was 2, c and d remain */
	char f1[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_fork(e.eng, NULL, cp, 0, f1), 0);
	dura_record *r;
	REQUIRE_RC(dura_store_get_run(e.store, f1, &r), 0);
	CHECK_STR(r->status, "c");
	CHECK(json_int_at(r->state, "n") == 2);
	CHECK(strstr(r->meta, id) != NULL);
	dura_record_free(r);
	REQUIRE_RC(dura_run_execute(e.eng, f1, &r), 0);
	CHECK(json_int_at(r->state, "n") == 4);
	CHECK(r->step_no == 2);
	dura_record_free(r);

	/* time travel: from step 0 (after a), b c d remain */
	char f2[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_fork(e.eng, id, NULL, 0, f2), 0);
	REQUIRE_RC(dura_run_execute(e.eng, f2, &r), 0);
	CHECK(json_int_at(r->state, "n") == 4);
	CHECK(r->step_no == 3);
	dura_record_free(r);

	/* from the last step: nothing remains, the fork is complete */
	char f3[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_fork(e.eng, id, NULL, 3, f3), 0);
	REQUIRE_RC(dura_store_get_run(e.store, f3, &r), 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED);
	dura_record_free(r);
	CHECK_RC(dura_run_fork(e.eng, id, NULL, 99, f3), DURA_ENOTFOUND);
	CHECK_RC(dura_run_fork(e.eng, NULL, "no-such-checkpoint", 0, f3), DURA_ENOTFOUND);
	dura_engine_close(two);
	env_close(&e);
}

typedef struct seen {
	char run_id[DURA_UUID_LEN + 1];
	int steps, completed, refuse;
} seen;

static int on_event(const dura_event *ev, void *payload)
{
	seen *s = payload;
	if (strcmp(ev->run_id, s->run_id) != 0)
		return 0; /* another test's event: acknowledge it */
	if (s->refuse)
		return -1;
	if (strcmp(ev->type, "step") == 0)
		s->steps++;
	if (strcmp(ev->type, "run_completed") == 0)
		s->completed++;
	return 0;
}

static void outbox_delivery(void)
{
	env e;
	REQUIRE(env_open(&e, NULL) == 0);
	dura_workflow *wf;
	dura_workflow_new(&wf, e.wf);
	dura_workflow_add_node(wf, "a", add_one, NULL, NULL);
	dura_workflow_add_node(wf, "b", add_one, NULL, NULL);
	dura_workflow_add_edge(wf, "a", "b");
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(e.eng, wf), 0);
	seen s = {"", 0, 0, 1};
	REQUIRE_RC(dura_run_start(e.eng, e.wf, NULL, "{}", NULL, s.run_id), 0);
	REQUIRE_RC(dura_run_execute(e.eng, s.run_id, NULL), 0);
	size_t n = 0;
	REQUIRE_RC(dura_outbox_consume(e.eng, on_event, &s, 0, &n), 0); /* refused: stays */
	CHECK(s.steps == 0);
	s.refuse = 0;
	REQUIRE_RC(dura_outbox_consume(e.eng, on_event, &s, 0, &n), 0);
	CHECK(s.steps == 2); /* the last step commits the completion too */
	REQUIRE_RC(dura_outbox_consume(e.eng, on_event, &s, 0, &n), 0);
	CHECK(s.steps == 2); /* acked: not delivered twice */
	env_close(&e);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: engine_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	static const test_case tests[] = {
		{"register_validates", register_validates},
		{"linear_graph", linear_graph},
		{"branching_and_looping", branching_and_looping},
		{"reducers", reducers},
		{"retries_then_success", retries_then_success},
		{"state_over_the_limit_fails_the_run", state_over_the_limit_fails_the_run},
		{"retries_exhausted_fail_then_resume", retries_exhausted_fail_then_resume},
		{"classifier_stops_retries", classifier_stops_retries},
		{"auto_pause_after_failures", auto_pause_after_failures},
		{"node_timeout_counts_as_failure", node_timeout_counts_as_failure},
		{"run_budget", run_budget},
		{"max_steps_and_resume_where_left", max_steps_and_resume_where_left},
		{"pause_resume_cancel", pause_resume_cancel},
		{"cancel_during_backoff", cancel_during_backoff},
		{"pause_during_failing_attempt", pause_during_failing_attempt},
		{"pause_and_resume_during_node", pause_and_resume_during_node},
		{"start_is_idempotent_on_foreign_id", start_is_idempotent_on_foreign_id},
		{"delayed_start", delayed_start},
		{"await_status_and_end", await_status_and_end},
		{"checkpoint_and_fork", checkpoint_and_fork},
		{"outbox_delivery", outbox_delivery},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "engine %.*s", (int)strcspn(g_url, ":"), g_url);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
}
