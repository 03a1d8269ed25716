/*
 * payment - an order that waits for its payment, durably, across process
 * restarts.
 *
 *   reserve -> await_payment -> (ship | release)
 *
 * The run reserves the stock, then waits for a "payment" signal
 * (dura_ctx_wait_signal) for at most a timeout. While it waits it holds no
 * thread, no lease and no process: the wait is in the store. A payment
 * sent from any process wakes it, and whoever executes it next ships the
 * order; if no payment comes within the timeout, the node gets
 * DURA_ETIMEOUT and the reservation is released instead.
 *
 *   payment STORE_URL start ORDER_ID [--timeout-ms N]
 *                              start the order (ORDER_ID is its foreign id)
 *                              and run it until it waits; prints "RUN <id>"
 *   payment STORE_URL pay RUN_ID [AMOUNT]
 *                              send the payment signal ({"amount_cents": N},
 *                              N = AMOUNT * 100; default 39.80)
 *   payment STORE_URL resume RUN_ID
 *                              run it until it ends or waits again, and say
 *                              which: shipped, cancelled, or still waiting
 *   payment [STORE_URL] [all]  all of it in one process: an order paid and
 *                              shipped, then one that times out (300 ms)
 *
 * The default timeout is an hour; the default store sqlite:dura.db. Each
 * command is its own process, so on a durable store:
 *
 *   ./payment sqlite:shop.db start A-1        # ... RUN 01a2...
 *   dura --store sqlite:shop.db runs --waiting
 *   ./payment sqlite:shop.db pay 01a2... 39.80
 *   ./payment sqlite:shop.db resume 01a2...   # order A-1: shipped
 */
#include <dura.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 3600000

static const char *order_of(json_t *state)
{
	const char *o = json_string_value(json_object_get(state, "order"));
	return o ? o : "?";
}

static int reserve(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	/* a real shop would call its inventory service here, keyed by the
	 * order id so that a retry reserves nothing twice */
	json_int_t qty = json_integer_value(json_object_get(state, "quantity"));
	json_object_set_new(state, "reserved", json_integer(qty));
	printf("  [reserve] order %s: %lld items reserved\n", order_of(state), (long long)qty);
	return 0;
}

/*
 * The waiting node. It runs again from its start each time the run is
 * resumed - when the payment arrives, at the timeout, or when anything
 * else wakes the run - so whatever it does before dura_ctx_wait_signal
 * must be idempotent or cached (dura_cache_do): here it only works out
 * the payment link from the order id, which gives the same link every
 * time. Work that must happen once belongs in an earlier node (reserve).
 */
static int await_payment(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	char link[160];
	snprintf(link, sizeof(link), "https://pay.example.com/order/%s", order_of(state));
	json_object_set_new(state, "payment_link", json_string(link));

	json_int_t timeout = json_integer_value(json_object_get(state, "timeout_ms"));
	char *json = NULL;
	int rc = dura_ctx_wait_signal(ctx, "payment", timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS, &json);
	if (rc == DURA_WAITING) {
		printf("  [await_payment] order %s: waiting for payment at %s\n", order_of(state), link);
		return DURA_WAITING; /* the run waits in the store; this node runs again when it is over */
	}
	if (rc == DURA_ETIMEOUT) {
		printf("  [await_payment] order %s: no payment within %lld ms\n", order_of(state), (long long)timeout);
		return dura_ctx_goto(ctx, "release");
	}
	if (rc)
		return rc;
	json_t *p = json_loads(json, JSON_DECODE_ANY, NULL);
	dura_free(json);
	json_int_t cents = json_integer_value(json_object_get(p, "amount_cents"));
	json_decref(p);
	json_object_set_new(state, "paid_cents", json_integer(cents));
	printf("  [await_payment] order %s: payment of %lld.%02lld received\n", order_of(state), (long long)(cents / 100),
	       (long long)(cents % 100));
	return dura_ctx_goto(ctx, "ship");
}

static int ship(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	json_object_set_new(state, "outcome", json_string("shipped"));
	printf("  [ship] order %s: shipped\n", order_of(state));
	return 0;
}

static int release(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	json_object_set_new(state, "reserved", json_integer(0));
	json_object_set_new(state, "outcome", json_string("cancelled"));
	printf("  [release] order %s: reservation released\n", order_of(state));
	return 0;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "payment: %s: %s\n", what, e && e->message && *e->message ? e->message : "unknown error");
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: payment STORE_URL start ORDER_ID [--timeout-ms N]\n"
	                "       payment STORE_URL pay RUN_ID [AMOUNT]\n"
	                "       payment STORE_URL resume RUN_ID\n"
	                "       payment [STORE_URL] [all]\n");
	return 2;
}

static int setup(const char *url, dura_store **store, dura_engine **eng)
{
	dura_workflow *wf;
	if (dura_store_open(store, url, NULL) || dura_engine_open(eng, *store, NULL))
		return fail("opening the store");
	if (dura_workflow_new(&wf, "payment_order") || dura_workflow_add_node(wf, "reserve", reserve, NULL, NULL) ||
	    dura_workflow_add_node(wf, "await_payment", await_payment, NULL, NULL) ||
	    dura_workflow_add_node(wf, "ship", ship, NULL, NULL) ||
	    dura_workflow_add_node(wf, "release", release, NULL, NULL) ||
	    dura_workflow_add_edge(wf, "reserve", "await_payment") || dura_workflow_set_start(wf, "reserve") ||
	    dura_engine_register(*eng, wf))
		return fail("registering the workflow");
	return 0;
}

/* Say where a run stands after dura_run_execute; 0 when it ended as expected or waits. */
static int report(const dura_record *r)
{
	json_t *st = json_loads(r->state, 0, NULL);
	const char *order = order_of(st);
	const char *outcome = json_string_value(json_object_get(st, "outcome"));
	char t[24];
	int rc = 0;
	if (r->run_state == DURA_RUN_COMPLETED && outcome) {
		printf("order %s: %s (run %s completed after %lld steps)\n", order, outcome, r->run_id,
		       (long long)r->step_no);
	} else if (r->run_state == DURA_RUN_RUNNING && r->wait && *r->wait) {
		dura_time_format(t, r->next_run_at);
		printf("order %s: waiting for payment (%s) until %s UTC\n", order, r->wait, t);
	} else {
		printf("order %s: run %s is %s%s%s\n", order, r->run_id, dura_run_state_name(r->run_state),
		       r->error && *r->error ? ": " : "", r->error ? r->error : "");
		rc = 1;
	}
	json_decref(st);
	return rc;
}

static int start(dura_engine *eng, const char *order, int64_t timeout_ms, char run_id[DURA_UUID_LEN + 1])
{
	char state[512];
	json_t *s = json_pack("{s:s, s:i, s:I}", "order", order, "quantity", 2, "timeout_ms", (json_int_t)timeout_ms);
	char *text = json_dumps(s, JSON_COMPACT);
	json_decref(s);
	snprintf(state, sizeof(state), "%s", text ? text : "{}");
	free(text);
	int rc = dura_run_start(eng, "payment_order", order, state, NULL, run_id);
	if (rc == DURA_EEXISTS) {
		printf("order %s: already started, run %s\n", order, run_id);
	} else if (rc) {
		return fail("starting the order");
	} else {
		printf("order %s: started run %s (payment timeout %lld ms)\n", order, run_id, (long long)timeout_ms);
	}
	return 0;
}

static int execute(dura_engine *eng, const char *run_id)
{
	dura_record *r = NULL;
	if (dura_run_execute(eng, run_id, &r))
		return fail("executing the run");
	int rc = report(r);
	dura_record_free(r);
	return rc;
}

static int pay(dura_engine *eng, const char *run_id, const char *amount)
{
	char json[128];
	char *end;
	double a = strtod(amount, &end);
	if (!*amount || *end)
		return usage();
	/* money as whole cents: JSON numbers with a fraction are binary floats */
	snprintf(json, sizeof(json), "{\"amount_cents\":%lld}", (long long)(a * 100 + (a < 0 ? -0.5 : 0.5)));
	if (dura_run_signal(eng, run_id, "payment", json))
		return fail("sending the payment");
	printf("run %s: payment %s sent\n", run_id, json);
	return 0;
}

/* Everything in one process: one order paid, one that times out. */
static int all(dura_engine *eng)
{
	char run_id[DURA_UUID_LEN + 1], late_id[DURA_UUID_LEN + 1], order[64], late[64];
	long long n = (long long)(dura_now_ms() % 1000000);
	snprintf(order, sizeof(order), "P-%lld", n);
	snprintf(late, sizeof(late), "P-%lld-late", n);

	printf("1. start order %s: it reserves the stock, then waits for its payment\n", order);
	if (start(eng, order, DEFAULT_TIMEOUT_MS, run_id) || execute(eng, run_id) > 0)
		return 1;
	printf("2. the payment arrives\n");
	if (pay(eng, run_id, "39.80"))
		return 1;
	printf("3. resume: the waiting node runs again and takes the payment\n");
	if (execute(eng, run_id))
		return 1;

	printf("4. start order %s with a payment timeout of 300 ms\n", late);
	if (start(eng, late, 300, late_id) || execute(eng, late_id) > 0)
		return 1;
	printf("5. no payment; 400 ms later, resume: the wait has timed out\n");
	usleep(400000);
	return execute(eng, late_id);
}

int main(int argc, char **argv)
{
	int64_t timeout_ms = DEFAULT_TIMEOUT_MS;
	const char *pos[4];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timeout-ms") == 0) {
			char *end;
			if (i + 1 >= argc)
				return usage();
			timeout_ms = strtoll(argv[++i], &end, 10);
			if (*end || timeout_ms < 0)
				return usage();
		} else if (npos < 4) {
			pos[npos++] = argv[i];
		} else {
			return usage();
		}
	}
	const char *url = npos > 0 ? pos[0] : "sqlite:dura.db";
	const char *cmd = npos > 1 ? pos[1] : "all";
	setvbuf(stdout, NULL, _IOLBF, 0);

	dura_store *store = NULL;
	dura_engine *eng = NULL;
	int rc;
	if (strcmp(cmd, "start") == 0 && npos == 3) {
		char run_id[DURA_UUID_LEN + 1];
		if ((rc = setup(url, &store, &eng)) == 0 && (rc = start(eng, pos[2], timeout_ms, run_id)) == 0) {
			rc = execute(eng, run_id);
			printf("RUN %s\n", run_id);
		}
	} else if (strcmp(cmd, "pay") == 0 && (npos == 3 || npos == 4)) {
		if ((rc = setup(url, &store, &eng)) == 0)
			rc = pay(eng, pos[2], npos == 4 ? pos[3] : "39.80");
	} else if (strcmp(cmd, "resume") == 0 && npos == 3) {
		if ((rc = setup(url, &store, &eng)) == 0)
			rc = execute(eng, pos[2]);
	} else if (strcmp(cmd, "all") == 0 && npos <= 2) {
		if ((rc = setup(url, &store, &eng)) == 0)
			rc = all(eng);
	} else {
		return usage();
	}
	dura_engine_close(eng);
	dura_store_close(store);
	return rc;
}
