/*
 * fanout - a parent run fans out N child runs and sums their results.
 *
 *   parent:  fan_out -> report        child:  square
 *
 * The parent's fan_out node starts N children (dura_ctx_start_child), the
 * i-th with {"n": i}; each child squares its number. Then it awaits them
 * one by one (dura_ctx_await_child): while a child is still running the
 * call returns DURA_WAITING, the node returns it, and the parent waits in
 * the store without a thread. The child's end wakes it and the node runs
 * again from its start - starting no child twice, since a child's id is
 * derived from the parent, its step and the order of the call - until
 * every child has ended and the node adds up their results.
 *
 * A dura_worker of 4 threads in this process runs the parent and the
 * children; the main thread awaits the parent's end and prints the
 * children (dura_store_list_runs by parent_id) and the sum.
 *
 *   fanout [STORE_URL] [N]     (default sqlite:dura.db, N = 5: sum 55)
 */
#include <dura.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int square(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_int_t n = json_integer_value(json_object_get(state, "n"));
	usleep(20000 * (useconds_t)(n % 5)); /* some work, the children end in any order */
	json_object_set_new(state, "result", json_integer(n * n));
	printf("  [child %s] %lld squared is %lld\n", dura_ctx_run_id(ctx), (long long)n, (long long)(n * n));
	return 0;
}

/*
 * Runs again from its start each time a child ends: the starts give back
 * the children already started, and the awaits of ended children return
 * at once, so the node gets one child further each time.
 */
static int fan_out(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_int_t n = json_integer_value(json_object_get(state, "children"));
	json_int_t sum = 0;
	char ids[64][DURA_UUID_LEN + 1];
	if (n < 1 || n > 64)
		return dura_ctx_fail(ctx, DURA_EINVAL, "children must be 1 to 64, not %lld", (long long)n);
	for (json_int_t i = 0; i < n; i++) {
		char st[64];
		snprintf(st, sizeof(st), "{\"n\":%lld}", (long long)(i + 1));
		int rc = dura_ctx_start_child(ctx, "fanout_child", st, ids[i]);
		if (rc)
			return rc;
	}
	for (json_int_t i = 0; i < n; i++) {
		dura_record *child = NULL;
		int rc = dura_ctx_await_child(ctx, ids[i], &child);
		if (rc == DURA_WAITING) {
			printf("  [parent] waiting for child %lld (%s)\n", (long long)(i + 1), ids[i]);
			return DURA_WAITING;
		}
		if (rc)
			return rc;
		json_t *cs = json_loads(child->state, 0, NULL);
		if (child->run_state != DURA_RUN_COMPLETED || !json_is_integer(json_object_get(cs, "result"))) {
			rc = dura_ctx_fail(ctx, DURA_ERROR, "child %s ended %s without a result", child->run_id,
			                   dura_run_state_name(child->run_state));
			json_decref(cs);
			dura_record_free(child);
			return rc;
		}
		sum += json_integer_value(json_object_get(cs, "result"));
		json_decref(cs);
		dura_record_free(child);
	}
	json_object_set_new(state, "sum", json_integer(sum));
	return 0;
}

static int report(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	printf("  [parent] all %lld children done, sum %lld\n",
	       (long long)json_integer_value(json_object_get(state, "children")),
	       (long long)json_integer_value(json_object_get(state, "sum")));
	return 0;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "fanout: %s: %s\n", what, e && e->message && *e->message ? e->message : "unknown error");
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	int n = argc > 2 ? atoi(argv[2]) : 5;
	if (n < 1 || n > 64) {
		fprintf(stderr, "usage: fanout [STORE_URL] [N]   (N from 1 to 64)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	dura_store *store;
	dura_engine *eng;
	dura_workflow *parent, *child;
	if (dura_store_open(&store, url, NULL) || dura_engine_open(&eng, store, NULL))
		return fail("opening the store");
	if (dura_workflow_new(&child, "fanout_child") || dura_workflow_add_node(child, "square", square, NULL, NULL) ||
	    dura_workflow_set_start(child, "square") || dura_engine_register(eng, child))
		return fail("registering the child workflow");
	if (dura_workflow_new(&parent, "fanout_parent") ||
	    dura_workflow_add_node(parent, "fan_out", fan_out, NULL, NULL) ||
	    dura_workflow_add_node(parent, "report", report, NULL, NULL) ||
	    dura_workflow_add_edge(parent, "fan_out", "report") || dura_workflow_set_start(parent, "fan_out") ||
	    dura_engine_register(eng, parent))
		return fail("registering the parent workflow");

	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 4;
	o.name = "fanout";
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o))
		return fail("starting the worker");

	char run_id[DURA_UUID_LEN + 1], state[64];
	snprintf(state, sizeof(state), "{\"children\":%d}", n);
	if (dura_run_start(eng, "fanout_parent", NULL, state, NULL, run_id))
		return fail("starting the parent");
	printf("parent run %s: fanning out %d children\n", run_id, n);

	dura_await_cond cond = {0, NULL, 1};
	dura_record *r = NULL;
	int rc = dura_run_await(eng, run_id, &cond, 60000, &r);
	dura_worker_stop(w, 10000);
	if (rc)
		return fail("awaiting the parent");

	/* the children, as the store lists them (by run id), printed by their number */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	dura_record_list kids;
	f.parent_id = run_id;
	if (dura_store_list_runs(store, &f, &kids))
		return fail("listing the children");
	printf("children of %s:\n", run_id);
	for (int k = 1; k <= n; k++) {
		for (size_t i = 0; i < kids.count; i++) {
			json_t *cs = json_loads(kids.items[i].state, 0, NULL);
			if (json_integer_value(json_object_get(cs, "n")) == k)
				printf("  %s  %s  n=%d result=%lld\n", kids.items[i].run_id,
				       dura_run_state_name(kids.items[i].run_state), k,
				       (long long)json_integer_value(json_object_get(cs, "result")));
			json_decref(cs);
		}
	}
	json_t *st = json_loads(r->state, 0, NULL);
	long long sum = (long long)json_integer_value(json_object_get(st, "sum"));
	int ok = r->run_state == DURA_RUN_COMPLETED && kids.count == (size_t)n &&
	         sum == (long long)n * (n + 1) * (2 * n + 1) / 6;
	printf("parent %s: %s, %zu children, sum %lld%s\n", run_id, dura_run_state_name(r->run_state), kids.count, sum,
	       ok ? "" : " (WRONG)");
	json_decref(st);
	dura_record_list_free(&kids);
	dura_record_free(r);
	dura_engine_close(eng);
	dura_store_close(store);
	return ok ? 0 : 1;
}
