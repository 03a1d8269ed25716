/*
 * populate.c - the store tests/web/run.sh points `dura serve` at: runs
 * of a small shop workflow (three nodes, the second failing its first
 * attempt, so each run has a failed attempt and a retry), a checkpoint,
 * a cached value, a run left runnable for the pause action with a signal
 * in its inbox, and one hostile run whose foreign id, node names, state
 * and error text are made of markup (<script>, quotes, </svg>).
 *
 *   populate URL NRUNS
 *
 * Prints "SHOP RUN_ID STEPS" per shop run, "HOSTILE RUN_ID", "PAUSABLE
 * RUN_ID"; exits non-zero on any error.
 */
#include <dura.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTILE "<script>document.title='pwned'</script>\"'</svg>"

static int fail_count;

static int check(int rc, const char *what)
{
	if (rc) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "populate: %s: %s\n", what, e ? e->message : dura_strerror(rc));
		exit(1);
	}
	return 0;
}

static int validate(dura_ctx *ctx, json_t *s, void *p)
{
	(void)ctx;
	(void)p;
	json_object_set_new(s, "validated", json_true());
	return 0;
}

static int charge(dura_ctx *ctx, json_t *s, void *p)
{
	(void)p;
	if (dura_ctx_attempt(ctx) == 1)
		return dura_ctx_fail(ctx, DURA_ERROR, "card network timeout (attempt %d)", dura_ctx_attempt(ctx));
	json_object_set_new(s, "charged", json_integer(json_integer_value(json_object_get(s, "amount"))));
	return 0;
}

static int ship(dura_ctx *ctx, json_t *s, void *p)
{
	(void)ctx;
	(void)p;
	json_object_set_new(s, "shipped", json_true());
	json_object_del(s, "validated");
	return 0;
}

static int hostile_ok(dura_ctx *ctx, json_t *s, void *p)
{
	(void)ctx;
	(void)p;
	json_object_set_new(s, "note", json_string("</svg><script>window.pwned=1</script>\"'&"));
	return 0;
}

static int hostile_fail(dura_ctx *ctx, json_t *s, void *p)
{
	(void)s;
	(void)p;
	fail_count++;
	return dura_ctx_fail(ctx, DURA_ERROR, "<script>alert(\"err\")</script></svg>'\" <img src=x onerror=alert(1)>");
}

static int idle(dura_ctx *ctx, json_t *s, void *p)
{
	(void)ctx;
	(void)s;
	(void)p;
	return 0;
}

static int cached(dura_cache_value *out, void *p)
{
	(void)p;
	return dura_cache_value_set(out, "42", 2, "{\"source\":\"populate\"}");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: populate URL NRUNS\n");
		return 2;
	}
	int n = atoi(argv[2]);
	dura_store *st;
	dura_store_options so = DURA_STORE_OPTIONS_INIT;
	so.auto_migrate = 1;
	check(dura_store_open(&st, argv[1], &so), "open");
	dura_engine *eng;
	check(dura_engine_open(&eng, st, NULL), "engine");

	dura_node_options retry = DURA_NODE_OPTIONS_INIT;
	retry.max_attempts = 3;
	retry.backoff_initial_ms = 20;
	dura_workflow *shop, *hostile, *slow;
	check(dura_workflow_new(&shop, "shop"), "workflow");
	check(dura_workflow_add_node(shop, "validate", validate, NULL, NULL), "node");
	check(dura_workflow_add_node(shop, "charge", charge, NULL, &retry), "node");
	check(dura_workflow_add_node(shop, "ship", ship, NULL, NULL), "node");
	check(dura_workflow_add_edge(shop, "validate", "charge"), "edge");
	check(dura_workflow_add_edge(shop, "charge", "ship"), "edge");
	check(dura_workflow_set_start(shop, "validate"), "start node");
	check(dura_engine_register(eng, shop), "register");

	dura_node_options twice = DURA_NODE_OPTIONS_INIT;
	twice.max_attempts = 2;
	twice.backoff_initial_ms = 10;
	check(dura_workflow_new(&hostile, "hostile"), "workflow");
	check(dura_workflow_add_node(hostile, "<script>alert('node')</script>", hostile_ok, NULL, NULL), "node");
	check(dura_workflow_add_node(hostile, "\"'></svg><b>bold</b>", hostile_fail, NULL, &twice), "node");
	check(dura_workflow_add_edge(hostile, "<script>alert('node')</script>", "\"'></svg><b>bold</b>"), "edge");
	check(dura_workflow_set_start(hostile, "<script>alert('node')</script>"), "start node");
	check(dura_engine_register(eng, hostile), "register");

	check(dura_workflow_new(&slow, "slow"), "workflow");
	check(dura_workflow_add_node(slow, "wait_here", idle, NULL, NULL), "node");
	check(dura_workflow_set_start(slow, "wait_here"), "start node");
	check(dura_engine_register(eng, slow), "register");

	char id[DURA_UUID_LEN + 1];
	for (int i = 0; i < n; i++) {
		char fid[32], state[64];
		snprintf(fid, sizeof(fid), "order-%d", i + 1);
		snprintf(state, sizeof(state), "{\"amount\":%d}", (i + 1) * 100);
		check(dura_run_start(eng, "shop", fid, state, NULL, id), "start");
		dura_record *rec = NULL;
		check(dura_run_execute(eng, id, &rec), "execute");
		printf("SHOP %s %lld\n", id, (long long)rec->step_no);
		if (i == 0)
			check(dura_run_checkpoint(eng, id, "after-ship"), "checkpoint");
		dura_record_free(rec);
	}
	check(dura_run_start(eng, "hostile", HOSTILE, "{\"html\":\"<script>window.pwned=2</script></svg>\"}", NULL, id),
	      "start");
	dura_record *rec = NULL;
	check(dura_run_execute(eng, id, &rec), "execute hostile");
	if (rec->run_state != DURA_RUN_FAILED || fail_count != 2) {
		fprintf(stderr, "populate: the hostile run is %s after %d attempts\n", dura_run_state_name(rec->run_state),
		        fail_count);
		return 1;
	}
	dura_record_free(rec);
	printf("HOSTILE %s\n", id);

	check(dura_run_start(eng, "slow", "pause-me", NULL, NULL, id), "start");
	check(dura_store_signal_send(st, id, "go", "{\"by\":\"populate\"}", NULL), "signal");
	printf("PAUSABLE %s\n", id);

	dura_cache_entry *e = NULL;
	dura_cache_options co = DURA_CACHE_OPTIONS_INIT;
	check(dura_cache_do_store(st, "price:<b>sku-1</b>", &co, cached, NULL, &e), "cache");
	dura_cache_entry_free(e);
	dura_engine_close(eng);
	dura_store_close(st);
	return 0;
}
