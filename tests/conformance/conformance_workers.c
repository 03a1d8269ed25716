/*
 * conformance_workers.c - the worker registry (contract version 4):
 * worker_put inserts then replaces a row (started_at kept, heartbeat_at
 * moved on), worker_list shows it with every field and judges it dead
 * once its lease has passed, worker_delete removes it (an unknown id is
 * DURA_ENOTFOUND), worker_prune deletes dead rows only, and bad input is
 * refused by the core with nothing written. The built-in stores all keep
 * a registry; the external store of contract version 1 keeps none and
 * says so (DURA_ENOTSUP).
 *
 * Other tests may share the database: a test looks only for its own rows.
 */
#include "conformance.h"

#include <string.h>

/* The external test store (memwrap:) is of contract version 1. */
static int has_registry(void)
{
	return strcmp(g_scheme, "memwrap") != 0;
}

/* A copy of worker id's row from a fresh list into *out (clear it with
 * dura_worker_info_clear): 1 found, 0 absent, -1 when the list failed. */
static int find_worker(dura_store *s, const char *id, dura_worker_info *out)
{
	dura_worker_list l;
	int rc = dura_store_list_workers(s, &l);
	if (rc)
		return -1;
	int found = 0;
	for (size_t i = 0; i < l.count; i++) {
		if (strcmp(l.items[i].id, id) != 0)
			continue;
		found = 1;
		if (out) {
			*out = l.items[i];
			memset(&l.items[i], 0, sizeof(l.items[i]));
		}
	}
	/* oldest start first, then id */
	for (size_t i = 1; i < l.count; i++)
		if (l.items[i - 1].id && l.items[i].id)
			CHECK(l.items[i - 1].started_at < l.items[i].started_at ||
			      (l.items[i - 1].started_at == l.items[i].started_at && strcmp(l.items[i - 1].id, l.items[i].id) < 0));
	CHECK(l.now > 0);
	dura_worker_list_free(&l);
	return found;
}

static dura_worker_info info_of(const char *id, const char *name, int64_t lease_ms)
{
	dura_worker_info w;
	memset(&w, 0, sizeof(w));
	w.id = (char *)id;
	w.name = (char *)name;
	w.host = (char *)"conf-host";
	w.pid = 4242;
	w.threads = 3;
	w.lease_ms = lease_ms;
	w.workflows = (char *)"[\"wf-a\",\"wf-b\"]";
	w.held = 0;
	return w;
}

STORE_TEST(workers_put_list_delete)
{
	char id[96];
	conf_name(id, sizeof(id), "conf-worker");
	dura_worker_info w = info_of(id, "first", 60000);
	if (!has_registry()) {
		CHECK_RC(dura_store_put_worker(s, &w), DURA_ENOTSUP);
		CHECK(conf_error_ok(DURA_ENOTSUP));
		dura_worker_list l;
		CHECK_RC(dura_store_list_workers(s, &l), DURA_ENOTSUP);
		CHECK(l.count == 0 && l.items == NULL);
		CHECK_RC(dura_store_delete_worker(s, id), DURA_ENOTSUP);
		CHECK_RC(dura_store_prune_workers(s, 0, NULL), DURA_ENOTSUP);
		return;
	}
	REQUIRE_RC(dura_store_put_worker(s, &w), 0);
	dura_worker_info got;
	REQUIRE(find_worker(s, id, &got) == 1);
	CHECK_STR(got.id, id);
	CHECK_STR(got.name, "first");
	CHECK_STR(got.host, "conf-host");
	CHECK(got.pid == 4242);
	CHECK(got.threads == 3);
	CHECK(got.lease_ms == 60000);
	CHECK(conf_json_same(got.workflows, "[\"wf-a\",\"wf-b\"]"));
	CHECK(got.held == 0);
	CHECK(conf_near_now(got.started_at, 60000));
	CHECK(got.heartbeat_at == got.started_at);
	CHECK(got.dead_after == got.heartbeat_at + 60000);
	CHECK(got.dead == 0);

	/* a second put replaces the row: started_at stays, heartbeat_at moves on */
	conf_sleep_ms(20);
	w.name = (char *)"second";
	w.held = 7;
	w.threads = 5;
	w.workflows = (char *)"[]";
	REQUIRE_RC(dura_store_put_worker(s, &w), 0);
	dura_worker_info again;
	REQUIRE(find_worker(s, id, &again) == 1);
	CHECK_STR(again.name, "second");
	CHECK(again.held == 7);
	CHECK(again.threads == 5);
	CHECK(conf_json_same(again.workflows, "[]"));
	CHECK(again.started_at == got.started_at);
	CHECK(again.heartbeat_at > got.heartbeat_at);
	CHECK(again.dead_after == again.heartbeat_at + 60000);
	dura_worker_info_clear(&got);
	dura_worker_info_clear(&again);

	/* NULL name and host are stored as "" */
	w.name = NULL;
	w.host = NULL;
	REQUIRE_RC(dura_store_put_worker(s, &w), 0);
	REQUIRE(find_worker(s, id, &got) == 1);
	CHECK_STR(got.name, "");
	CHECK_STR(got.host, "");
	dura_worker_info_clear(&got);

	REQUIRE_RC(dura_store_delete_worker(s, id), 0);
	CHECK(find_worker(s, id, NULL) == 0);
	CHECK_RC(dura_store_delete_worker(s, id), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	char unknown[96];
	conf_name(unknown, sizeof(unknown), "conf-worker-never");
	CHECK_RC(dura_store_delete_worker(s, unknown), DURA_ENOTFOUND);
}

STORE_TEST(workers_dead_and_prune)
{
	if (!has_registry())
		SKIP("the store keeps no worker registry (contract version 1)");
	char dead_id[96], live_id[96];
	conf_name(dead_id, sizeof(dead_id), "conf-worker-dead");
	conf_name(live_id, sizeof(live_id), "conf-worker-live");
	dura_worker_info d = info_of(dead_id, "dead", DURA_WORKER_MIN_LEASE_MS);
	dura_worker_info l = info_of(live_id, "live", 3600000);
	REQUIRE_RC(dura_store_put_worker(s, &d), 0);
	REQUIRE_RC(dura_store_put_worker(s, &l), 0);

	/* no heartbeat: dead once its lease has passed (the bound only guards a hang) */
	dura_worker_info got;
	memset(&got, 0, sizeof(got));
	for (int i = 0; i < 1000; i++) {
		dura_worker_info_clear(&got);
		REQUIRE(find_worker(s, dead_id, &got) == 1);
		if (got.dead)
			break;
		conf_sleep_ms(10);
	}
	CHECK(got.dead == 1);
	dura_worker_info_clear(&got);
	REQUIRE(find_worker(s, live_id, &got) == 1);
	CHECK(got.dead == 0);
	dura_worker_info_clear(&got);

	/* dead for a year: not yet; the dead row stays */
	int64_t n = -1;
	CHECK_RC(dura_store_prune_workers(s, INT64_C(31536000000), &n), 0);
	CHECK(find_worker(s, dead_id, NULL) == 1);
	/* every dead row goes, the live one stays */
	CHECK_RC(dura_store_prune_workers(s, 0, &n), 0);
	CHECK(n >= 1);
	CHECK(find_worker(s, dead_id, NULL) == 0);
	CHECK(find_worker(s, live_id, NULL) == 1);
	CHECK_RC(dura_store_prune_workers(s, 0, NULL), 0);
	CHECK_RC(dura_store_delete_worker(s, live_id), 0);
}

STORE_TEST(workers_bad_input)
{
	char id[96];
	conf_name(id, sizeof(id), "conf-worker-bad");
	char long_id[DURA_MAX_ID_LEN + 2];
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	dura_worker_info w = info_of(id, "bad", 60000);
	dura_worker_info b;

	CHECK_RC(dura_store_put_worker(NULL, &w), DURA_EINVAL);
	CHECK_RC(dura_store_put_worker(s, NULL), DURA_EINVAL);
	b = w, b.id = NULL;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.id = (char *)"";
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.id = long_id;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.name = long_id;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.host = (char *)"bad\xff";
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.threads = 0;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.threads = DURA_WORKER_MAX_THREADS + 1;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.lease_ms = DURA_WORKER_MIN_LEASE_MS - 1;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.pid = -1;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.held = -1;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.workflows = NULL;
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.workflows = (char *)"not json";
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.workflows = (char *)"{\"a\":1}";
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	b = w, b.workflows = (char *)"[\"a\",1]";
	CHECK_RC(dura_store_put_worker(s, &b), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));

	CHECK_RC(dura_store_delete_worker(s, ""), DURA_EINVAL);
	CHECK_RC(dura_store_delete_worker(s, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_delete_worker(s, long_id), DURA_EINVAL);
	CHECK_RC(dura_store_delete_worker(NULL, id), DURA_EINVAL);
	CHECK_RC(dura_store_prune_workers(s, -1, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_prune_workers(s, INT64_C(31536000001), NULL), DURA_EINVAL);
	CHECK_RC(dura_store_prune_workers(NULL, 0, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_list_workers(s, NULL), DURA_EINVAL);
	dura_worker_list l;
	CHECK_RC(dura_store_list_workers(NULL, &l), DURA_EINVAL);
	dura_worker_list_free(NULL);

	/* nothing was written */
	if (has_registry())
		CHECK(find_worker(s, id, NULL) == 0);
}

const test_case conf_workers_tests[] = {
	{"workers_put_list_delete", workers_put_list_delete},
	{"workers_dead_and_prune", workers_dead_and_prune},
	{"workers_bad_input", workers_bad_input},
};
const size_t conf_workers_ntests = TEST_COUNT(conf_workers_tests);
