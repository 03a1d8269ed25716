/*
 * store_walkthrough - the store contract by hand, on any store URL.
 *
 * An order moves through three steps (validate, charge, ship). Each step is
 * one atomic commit: the run record, the step row and an outbox event go in
 * together, guarded by the run's version. The program then saves a
 * checkpoint, memoises a result in the step cache, drains the outbox and
 * prints the run id so `dura show RUN` can display it.
 *
 * usage: store_walkthrough [STORE_URL]     (default sqlite:dura.db)
 */
#include <dura.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "store_walkthrough: %s: %s\n", what, e ? e->message : "unknown error");
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	dura_store *store;
	if (dura_store_open(&store, url, NULL))
		return fail("open");

	/* A business key makes the start idempotent: a second start of the
	 * same order while it is active returns the first run. */
	char order[64];
	snprintf(order, sizeof(order), "order-%lld", (long long)dura_now_ms());
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = "orders_by_hand";
	req.foreign_id = order;
	req.state = "{\"order\":\"A-1001\",\"items\":3,\"paid\":false}";
	req.status = "validate";
	dura_record *run;
	if (dura_store_create_run(store, &req, &run))
		return fail("create run");
	printf("started run %s for %s\n", run->run_id, order);

	dura_record *again = NULL;
	int rc = dura_store_create_run(store, &req, &again);
	printf("starting %s again: %s, same run: %s\n", order, dura_strerror(rc),
	       again && strcmp(again->run_id, run->run_id) == 0 ? "yes" : "no");
	dura_record_free(again);

	static const struct {
		const char *node, *next, *state;
	} steps[] = {
		{"validate", "charge", "{\"order\":\"A-1001\",\"items\":3,\"paid\":false,\"valid\":true}"},
		{"charge", "ship", "{\"order\":\"A-1001\",\"items\":3,\"paid\":true,\"valid\":true}"},
		{"ship", "", "{\"order\":\"A-1001\",\"items\":3,\"paid\":true,\"valid\":true,\"shipped\":true}"},
	};
	int64_t version = run->version;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		dura_commit c = DURA_COMMIT_INIT;
		dura_commit_result res;
		c.run_id = run->run_id;
		c.expect_version = version;
		c.node_id = steps[i].node;
		c.status = steps[i].next;
		c.state = steps[i].state;
		if (i + 1 == sizeof(steps) / sizeof(steps[0]))
			c.run_state = DURA_RUN_COMPLETED;
		if (dura_store_commit(store, &c, &res))
			return fail("commit");
		printf("committed step %lld (%s), version %lld\n", (long long)res.step, steps[i].node,
		       (long long)res.new_version);
		if (i == 0 && dura_store_checkpoint_save(store, order, run->run_id, res.step, steps[i].state) == 0)
			printf("checkpoint %s saved at step %lld\n", order, (long long)res.step);

		/* A stale writer (an old version) is refused and writes nothing. */
		if (i == 1) {
			c.expect_version = version;
			rc = dura_store_commit(store, &c, NULL);
			printf("a stale commit with version %lld: %s\n", (long long)version, dura_strerror(rc));
		}
		version = res.new_version;
	}

	const char quote[] = "shipping quote: 4.90 EUR";
	if (dura_store_cache_put(store, "quote:A-1001", quote, sizeof(quote) - 1, NULL, "{\"content_type\":\"text/plain\"}",
	                         60000))
		return fail("cache put");
	dura_cache_entry *e;
	if (dura_store_cache_get(store, "quote:A-1001", &e) == 0) {
		printf("cache hit: %.*s\n", (int)e->value_len, (const char *)e->value);
		dura_cache_entry_free(e);
	}

	dura_event_list events;
	if (dura_store_outbox_poll(store, 100, &events))
		return fail("outbox poll");
	size_t mine = 0;
	for (size_t i = 0; i < events.count; i++) {
		if (strcmp(events.items[i].run_id, run->run_id) != 0)
			continue;
		mine++;
		dura_store_outbox_ack(store, events.items[i].id);
	}
	printf("delivered %zu outbox events of this run\n", mine);
	dura_event_list_free(&events);

	printf("RUN %s\n", run->run_id);
	dura_record_free(run);
	dura_store_close(store);
	return 0;
}
