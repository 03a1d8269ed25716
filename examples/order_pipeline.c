/*
 * order_pipeline - a small order workflow on any store.
 *
 *   validate -> reserve -> charge -> (ship | backorder) -> notify
 *
 * The run is started by the order number (its foreign id), so starting the
 * same order twice while it is active returns the same run. A second
 * thread awaits the "notify" status while the main thread executes.
 *
 * usage: order_pipeline [STORE_URL] [ORDER_ID]
 */
#include <dura.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int validate(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)payload;
	if (json_integer_value(json_object_get(order, "quantity")) <= 0)
		return dura_ctx_fail(ctx, DURA_EINVAL, "order has no items");
	json_object_set_new(order, "valid", json_true());
	return 0;
}

static int reserve(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)ctx;
	(void)payload;
	json_int_t stock = 5, qty = json_integer_value(json_object_get(order, "quantity"));
	json_object_set_new(order, "reserved", json_integer(qty <= stock ? qty : stock));
	return 0;
}

static int charge(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)payload;
	double total = (double)json_integer_value(json_object_get(order, "reserved")) * 19.90;
	json_object_set_new(order, "charged", json_real(total));
	/* in stock: ship; otherwise backorder the rest */
	json_int_t qty = json_integer_value(json_object_get(order, "quantity"));
	return dura_ctx_goto(ctx, json_integer_value(json_object_get(order, "reserved")) == qty ? "ship" : "backorder");
}

static int ship(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)ctx;
	(void)payload;
	json_object_set_new(order, "shipped", json_true());
	return 0;
}

static int backorder(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)ctx;
	(void)payload;
	json_object_set_new(order, "backordered", json_integer(json_integer_value(json_object_get(order, "quantity")) -
	                                                         json_integer_value(json_object_get(order, "reserved"))));
	return 0;
}

static int notify(dura_ctx *ctx, json_t *order, void *payload)
{
	(void)payload;
	printf("  [notify] run %s: order %s done\n", dura_ctx_run_id(ctx),
	       json_string_value(json_object_get(order, "order")));
	json_object_set_new(order, "notified", json_true());
	return 0;
}

typedef struct waiter {
	dura_engine *eng;
	const char *run_id;
	int rc;
} waiter;

static void *await_notify(void *p)
{
	waiter *w = p;
	dura_await_cond cond = {0, "notify", 1};
	dura_record *r = NULL;
	w->rc = dura_run_await(w->eng, w->run_id, &cond, 10000, &r);
	if (w->rc == 0)
		printf("  [await] run reached status '%s' (state %s)\n", *r->status ? r->status : "end",
		       dura_run_state_name(r->run_state));
	dura_record_free(r);
	return NULL;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "order_pipeline: %s: %s\n", what, e ? e->message : "unknown error");
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	char order_id[64];
	if (argc > 2)
		snprintf(order_id, sizeof(order_id), "%s", argv[2]);
	else
		snprintf(order_id, sizeof(order_id), "A-%lld", (long long)(dura_now_ms() % 1000000));

	dura_store *store;
	dura_engine *eng;
	if (dura_store_open(&store, url, NULL) || dura_engine_open(&eng, store, NULL))
		return fail("open");
	dura_workflow *wf;
	dura_workflow_new(&wf, "order_pipeline");
	dura_workflow_add_node(wf, "validate", validate, NULL, NULL);
	dura_workflow_add_node(wf, "reserve", reserve, NULL, NULL);
	dura_workflow_add_node(wf, "charge", charge, NULL, NULL);
	dura_workflow_add_node(wf, "ship", ship, NULL, NULL);
	dura_workflow_add_node(wf, "backorder", backorder, NULL, NULL);
	dura_workflow_add_node(wf, "notify", notify, NULL, NULL);
	dura_workflow_add_edge(wf, "validate", "reserve");
	dura_workflow_add_edge(wf, "reserve", "charge");
	dura_workflow_add_edge(wf, "ship", "notify");
	dura_workflow_add_edge(wf, "backorder", "notify");
	dura_workflow_set_start(wf, "validate");
	if (dura_engine_register(eng, wf))
		return fail("register");

	char state[128], run_id[DURA_UUID_LEN + 1], again[DURA_UUID_LEN + 1];
	snprintf(state, sizeof(state), "{\"order\":\"%s\",\"quantity\":7}", order_id);
	if (dura_run_start(eng, "order_pipeline", order_id, state, NULL, run_id))
		return fail("start");
	printf("order %s: run %s\n", order_id, run_id);
	int rc = dura_run_start(eng, "order_pipeline", order_id, state, NULL, again);
	printf("starting order %s again: %s, same run: %s\n", order_id, dura_strerror(rc),
	       strcmp(run_id, again) == 0 ? "yes" : "no");

	waiter w = {eng, run_id, 0};
	pthread_t t;
	pthread_create(&t, NULL, await_notify, &w);
	dura_record *r;
	if (dura_run_execute(eng, run_id, &r))
		return fail("execute");
	pthread_join(t, NULL);
	printf("run %s: %s after %lld steps, state %s\n", run_id, dura_run_state_name(r->run_state),
	       (long long)r->step_no, r->state);
	int ok = r->run_state == DURA_RUN_COMPLETED && w.rc == 0;
	dura_record_free(r);
	printf("RUN %s\n", run_id);
	dura_engine_close(eng);
	dura_store_close(store);
	return ok ? 0 : 1;
}
