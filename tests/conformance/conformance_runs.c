/*
 * conformance_runs.c - runs: create, get, latest, list, set_run_state,
 * delete_run_data, and the one-active-run-per-foreign-id rule.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new run gets a UUIDv7, the documented defaults, and reads back the same. */
STORE_TEST(runs_create_defaults)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-create");
	int64_t before = dura_now_ms();
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	REQUIRE(rec != NULL);
	CHECK(conf_is_uuid7(rec->run_id));
	CHECK_STR(rec->workflow_name, wf);
	CHECK_STR(rec->foreign_id, "");
	CHECK(rec->run_state == DURA_RUN_RUNNING);
	CHECK_STR(rec->status, "");
	CHECK(conf_json_same(rec->state, "{}"));
	CHECK(rec->step_no == 0);
	CHECK(rec->attempt == 0);
	CHECK_STR(rec->error, "");
	CHECK_STR(rec->meta, "");
	CHECK_STR(rec->lease_owner, "");
	CHECK(rec->created_at >= before - 2000 && conf_near_now(rec->created_at, 5000));
	CHECK(rec->updated_at >= rec->created_at && conf_near_now(rec->updated_at, 5000));
	/* "0: now" - due already */
	CHECK(rec->next_run_at <= dura_now_ms() + 5);

	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	REQUIRE(got != NULL);
	CHECK_STR(got->run_id, rec->run_id);
	CHECK_STR(got->workflow_name, wf);
	CHECK(got->version == rec->version);
	CHECK(got->run_state == DURA_RUN_RUNNING);
	CHECK(got->step_no == 0);
	CHECK(got->created_at == rec->created_at);
	CHECK(conf_json_same(got->state, "{}"));
	dura_record_free(got);

	/* Two runs get two different, increasing ids. */
	dura_record *rec2 = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec2), 0);
	CHECK(conf_is_uuid7(rec2->run_id));
	CHECK(strcmp(rec2->run_id, rec->run_id) > 0);
	dura_record_free(rec2);
	dura_record_free(rec);

	/* out may be NULL */
	CHECK_RC(conf_create(s, wf, NULL, "{\"x\":1}", NULL), 0);
}

/* Every field given at creation round-trips. */
STORE_TEST(runs_create_fields)
{
	char wf[96], id[96], fid[96];
	conf_name(wf, sizeof wf, "conf-fields");
	conf_name(id, sizeof id, "custom-run");
	conf_name(fid, sizeof fid, "order");
	const char *state = "{\"n\":42,\"f\":1.5,\"s\":\"h\xc3\xa9llo \xe2\x98\x83\",\"a\":[1,\"two\",null,true],"
	                    "\"o\":{\"nested\":{\"deep\":[{}]}},\"q\":\"quote\\\" and \\\\ back\"}";
	int64_t due = dura_now_ms() + 3600 * 1000;

	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.run_id = id;
	req.workflow_name = wf;
	req.foreign_id = fid;
	req.state = state;
	req.status = "start-node";
	req.run_state = DURA_RUN_INITIATED;
	req.next_run_at = due;
	req.meta = "{\"owner\":\"team-a\",\"tags\":[1,2]}";
	dura_record *rec = NULL;
	REQUIRE_RC(dura_store_create_run(s, &req, &rec), 0);
	REQUIRE(rec != NULL);
	CHECK_STR(rec->run_id, id);
	dura_record_free(rec);

	REQUIRE_RC(dura_store_get_run(s, id, &rec), 0);
	CHECK_STR(rec->run_id, id);
	CHECK_STR(rec->workflow_name, wf);
	CHECK_STR(rec->foreign_id, fid);
	CHECK_STR(rec->status, "start-node");
	CHECK(rec->run_state == DURA_RUN_INITIATED);
	CHECK(conf_json_same(rec->state, state));
	CHECK(conf_json_same(rec->meta, req.meta));
	CHECK(rec->next_run_at >= due - 1 && rec->next_run_at <= due + 1);
	CHECK(rec->step_no == 0);
	dura_record_free(rec);
}

STORE_TEST(runs_get_missing)
{
	char id[DURA_UUID_LEN + 1], wf[96];
	REQUIRE_RC(dura_uuid7(id), 0);
	conf_name(wf, sizeof wf, "conf-missing");
	dura_record *rec = NULL;
	CHECK_RC(dura_store_get_run(s, id, &rec), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(rec == NULL);
	CHECK_RC(dura_store_latest_run(s, wf, "nope", &rec), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(rec == NULL);
}

static int end_run(dura_store *s, const char *run_id, int run_state)
{
	dura_record *rec = NULL;
	int rc = dura_store_get_run(s, run_id, &rec);
	if (rc != 0)
		return rc;
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = rec->version;
	c.node_id = "last";
	c.state = "{\"done\":true}";
	c.status = "";
	c.run_state = run_state;
	c.flags = DURA_COMMIT_NO_EVENT;
	rc = dura_store_commit(s, &c, NULL);
	dura_record_free(rec);
	return rc;
}

/* The newest run of a workflow with a foreign id, whatever its state. */
STORE_TEST(runs_latest)
{
	char wf[96], fid[96], other[96];
	conf_name(wf, sizeof wf, "conf-latest");
	conf_name(fid, sizeof fid, "F");
	conf_name(other, sizeof other, "G");
	dura_record *a = NULL, *b = NULL, *got = NULL;
	REQUIRE_RC(conf_create(s, wf, fid, "{\"which\":\"a\"}", &a), 0);
	REQUIRE_RC(dura_store_latest_run(s, wf, fid, &got), 0);
	CHECK_STR(got->run_id, a->run_id);
	dura_record_free(got);
	got = NULL;

	REQUIRE_RC(dura_store_set_run_state(s, a->run_id, DURA_RUN_CANCELLED, NULL), 0);
	REQUIRE_RC(conf_create(s, wf, fid, "{\"which\":\"b\"}", &b), 0);
	CHECK(strcmp(a->run_id, b->run_id) != 0);
	REQUIRE_RC(conf_create(s, wf, other, NULL, NULL), 0);

	REQUIRE_RC(dura_store_latest_run(s, wf, fid, &got), 0);
	CHECK_STR(got->run_id, b->run_id);
	CHECK(conf_json_same(got->state, "{\"which\":\"b\"}"));
	dura_record_free(got);
	got = NULL;

	/* the foreign id of another workflow is not this workflow's */
	char wf2[96];
	conf_name(wf2, sizeof wf2, "conf-latest-other");
	CHECK_RC(dura_store_latest_run(s, wf2, fid, &got), DURA_ENOTFOUND);

	/* any state: still b once completed */
	REQUIRE_RC(end_run(s, b->run_id, DURA_RUN_COMPLETED), 0);
	REQUIRE_RC(dura_store_latest_run(s, wf, fid, &got), 0);
	CHECK_STR(got->run_id, b->run_id);
	CHECK(got->run_state == DURA_RUN_COMPLETED);
	dura_record_free(got);

	dura_record_free(a);
	dura_record_free(b);
}

/* One active run per workflow + non-empty foreign id. */
STORE_TEST(runs_foreign_id_idempotent)
{
	char wf[96], wf2[96], fid[96];
	conf_name(wf, sizeof wf, "conf-idem");
	conf_name(wf2, sizeof wf2, "conf-idem-other");
	conf_name(fid, sizeof fid, "order-7");

	dura_record *first = NULL, *dup = NULL;
	REQUIRE_RC(conf_create(s, wf, fid, "{\"v\":1}", &first), 0);
	REQUIRE(first != NULL);

	/* while running: the first is returned with EEXISTS, nothing new */
	CHECK_RC(conf_create(s, wf, fid, "{\"v\":2}", &dup), DURA_EEXISTS);
	REQUIRE(dup != NULL);
	CHECK_STR(dup->run_id, first->run_id);
	CHECK(conf_json_same(dup->state, "{\"v\":1}"));
	dura_record_free(dup);
	dup = NULL;
	CHECK_RC(conf_create(s, wf, fid, NULL, NULL), DURA_EEXISTS);

	/* while paused: still active */
	REQUIRE_RC(dura_store_set_run_state(s, first->run_id, DURA_RUN_PAUSED, NULL), 0);
	CHECK_RC(conf_create(s, wf, fid, NULL, &dup), DURA_EEXISTS);
	if (dup)
		CHECK_STR(dup->run_id, first->run_id);
	dura_record_free(dup);
	dup = NULL;

	/* only one run of wf with this foreign id exists */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);

	/* the same foreign id in another workflow does not conflict */
	CHECK_RC(conf_create(s, wf2, fid, NULL, NULL), 0);

	/* after cancel a new one can start */
	REQUIRE_RC(dura_store_set_run_state(s, first->run_id, DURA_RUN_CANCELLED, NULL), 0);
	dura_record *second = NULL;
	REQUIRE_RC(conf_create(s, wf, fid, "{\"v\":3}", &second), 0);
	CHECK(strcmp(second->run_id, first->run_id) != 0);
	CHECK_RC(conf_create(s, wf, fid, NULL, &dup), DURA_EEXISTS);
	if (dup)
		CHECK_STR(dup->run_id, second->run_id);
	dura_record_free(dup);
	dup = NULL;

	/* after completion a new one can start */
	REQUIRE_RC(end_run(s, second->run_id, DURA_RUN_COMPLETED), 0);
	dura_record *third = NULL;
	REQUIRE_RC(conf_create(s, wf, fid, NULL, &third), 0);
	CHECK(strcmp(third->run_id, second->run_id) != 0);

	/* after failure too */
	REQUIRE_RC(end_run(s, third->run_id, DURA_RUN_FAILED), 0);
	CHECK_RC(conf_create(s, wf, fid, NULL, NULL), 0);

	/* an initiated run is active */
	char fid2[96];
	conf_name(fid2, sizeof fid2, "initiated");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = fid2;
	req.run_state = DURA_RUN_INITIATED;
	CHECK_RC(dura_store_create_run(s, &req, NULL), 0);
	CHECK_RC(conf_create(s, wf, fid2, NULL, NULL), DURA_EEXISTS);

	/* empty or absent foreign ids never conflict */
	char wf3[96];
	conf_name(wf3, sizeof wf3, "conf-idem-empty");
	for (int i = 0; i < 3; i++) {
		CHECK_RC(conf_create(s, wf3, "", NULL, NULL), 0);
		CHECK_RC(conf_create(s, wf3, NULL, NULL, NULL), 0);
	}
	f.workflow_name = wf3;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 6);
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].foreign_id, "");
	dura_record_list_free(&l);

	dura_record_free(first);
	dura_record_free(second);
	dura_record_free(third);
}

/* Retrying a failed run (failed -> running) must not make a second active
 * run for its workflow + foreign id. */
STORE_TEST(runs_reactivation_keeps_one_active)
{
	char wf[96], fid[96];
	conf_name(wf, sizeof wf, "conf-react");
	conf_name(fid, sizeof fid, "F");
	dura_record *a = NULL, *b = NULL, *got = NULL;
	REQUIRE_RC(conf_create(s, wf, fid, NULL, &a), 0);
	REQUIRE_RC(end_run(s, a->run_id, DURA_RUN_FAILED), 0);
	REQUIRE(dura_run_state_transition_ok(DURA_RUN_FAILED, DURA_RUN_RUNNING));
	REQUIRE_RC(conf_create(s, wf, fid, NULL, &b), 0);

	/* b is active: a may not come back */
	CHECK_RC(dura_store_set_run_state(s, a->run_id, DURA_RUN_RUNNING, NULL), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	REQUIRE_RC(dura_store_get_run(s, a->run_id, &got), 0);
	CHECK(got->run_state == DURA_RUN_FAILED);
	dura_record_free(got);
	got = NULL;

	/* once b has ended, a can be retried */
	REQUIRE_RC(dura_store_set_run_state(s, b->run_id, DURA_RUN_CANCELLED, NULL), 0);
	CHECK_RC(dura_store_set_run_state(s, a->run_id, DURA_RUN_RUNNING, NULL), 0);
	REQUIRE_RC(dura_store_get_run(s, a->run_id, &got), 0);
	CHECK(got->run_state == DURA_RUN_RUNNING);
	dura_record_free(got);
	/* a commit that would make an ended run active again is refused the same way */
	dura_record *c1 = NULL, *c2 = NULL;
	char fid2[96];
	conf_name(fid2, sizeof fid2, "G");
	REQUIRE_RC(conf_create(s, wf, fid2, "{\"c\":1}", &c1), 0);
	REQUIRE_RC(end_run(s, c1->run_id, DURA_RUN_COMPLETED), 0);
	REQUIRE_RC(conf_create(s, wf, fid2, NULL, &c2), 0);
	REQUIRE_RC(dura_store_get_run(s, c1->run_id, &got), 0);
	dura_commit cm = DURA_COMMIT_INIT;
	cm.run_id = c1->run_id;
	cm.expect_version = got->version;
	cm.node_id = "again";
	cm.state = "{\"c\":2}";
	cm.run_state = DURA_RUN_RUNNING;
	cm.flags = DURA_COMMIT_NO_EVENT;
	CHECK_RC(dura_store_commit(s, &cm, NULL), DURA_ECONFLICT);
	dura_record *after = NULL;
	REQUIRE_RC(dura_store_get_run(s, c1->run_id, &after), 0);
	CHECK(after->run_state == DURA_RUN_COMPLETED);
	CHECK(after->version == got->version);
	CHECK(after->step_no == got->step_no);
	CHECK(conf_history_count(s, c1->run_id) == got->step_no);
	dura_record_free(after);
	dura_record_free(got);
	got = NULL;
	dura_record_free(c1);
	dura_record_free(c2);

	/* and is the active one again */
	dura_record *dup = NULL;
	CHECK_RC(conf_create(s, wf, fid, NULL, &dup), DURA_EEXISTS);
	if (dup)
		CHECK_STR(dup->run_id, a->run_id);
	dura_record_free(dup);
	dura_record_free(a);
	dura_record_free(b);
}

/* Names with quotes, wildcards and UTF-8 are data, not syntax. */
STORE_TEST(runs_odd_names)
{
	char wf[160], wf_like[160], fid[160], id[160];
	char uid[DURA_UUID_LEN + 1];
	dura_uuid7(uid);
	snprintf(wf, sizeof wf, "conf-odd 'q' \"dq\" %%_\\ \xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-%s", uid);
	/* a name that a LIKE pattern made of wf would match */
	snprintf(wf_like, sizeof wf_like, "conf-odd 'q' \"dq\" xy\\ \xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-%s", uid);
	snprintf(fid, sizeof fid, "fid'; DROP TABLE workflow_records; --%s", uid);
	snprintf(id, sizeof id, "run '%%' \"x\" %s", uid);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.run_id = id;
	req.workflow_name = wf;
	req.foreign_id = fid;
	req.status = "node 'a'";
	REQUIRE_RC(dura_store_create_run(s, &req, NULL), 0);
	REQUIRE_RC(conf_create(s, wf_like, fid, NULL, NULL), 0);

	dura_record *r = NULL;
	REQUIRE_RC(dura_store_get_run(s, id, &r), 0);
	CHECK_STR(r->run_id, id);
	CHECK_STR(r->workflow_name, wf);
	CHECK_STR(r->foreign_id, fid);
	CHECK_STR(r->status, "node 'a'");
	dura_record_free(r);
	r = NULL;
	REQUIRE_RC(dura_store_latest_run(s, wf, fid, &r), 0);
	CHECK_STR(r->run_id, id);
	dura_record_free(r);
	CHECK_RC(conf_create(s, wf, fid, NULL, NULL), DURA_EEXISTS);

	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].run_id, id);
	dura_record_list_free(&l);
	f.status = "node 'a'";
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);

	REQUIRE_RC(conf_commit_n(s, id, 2, "n'ode\""), 0);
	dura_step *st = NULL;
	REQUIRE_RC(dura_store_get_step(s, id, 1, &st), 0);
	CHECK_STR(st->node_id, "n'ode\"1");
	dura_step_free(st);

	const char *wfs[1] = {wf};
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_claim_runs(s, "owner 'o'", wfs, 1, 10, 60000, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);
	CHECK_RC(dura_store_release_lease(s, id, "owner 'o'"), 0);
}

/* A run id given twice does not overwrite the first run. */
STORE_TEST(runs_duplicate_run_id)
{
	char wf[96], wf2[96], id[96];
	conf_name(wf, sizeof wf, "conf-dupid");
	conf_name(wf2, sizeof wf2, "conf-dupid-2");
	conf_name(id, sizeof id, "dup");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.run_id = id;
	req.workflow_name = wf;
	req.state = "{\"first\":true}";
	REQUIRE_RC(dura_store_create_run(s, &req, NULL), 0);
	req.workflow_name = wf2;
	req.state = "{\"first\":false}";
	CHECK_RC(dura_store_create_run(s, &req, NULL), DURA_EEXISTS);
	CHECK(conf_error_ok(DURA_EEXISTS));
	dura_record *rec = NULL;
	REQUIRE_RC(dura_store_get_run(s, id, &rec), 0);
	CHECK_STR(rec->workflow_name, wf);
	CHECK(conf_json_same(rec->state, "{\"first\":true}"));
	dura_record_free(rec);
}

/* Several threads start the same workflow + foreign id at once: one wins. */
struct race_arg {
	dura_store *s;
	const char *wf, *fid;
	atomic_int *go;
	int rc;
	char run_id[128];
};

static void *race_create(void *p)
{
	struct race_arg *a = p;
	while (!atomic_load(a->go)) {
	}
	for (int tries = 0; tries < 200; tries++) {
		dura_record *rec = NULL;
		a->rc = conf_create(a->s, a->wf, a->fid, NULL, &rec);
		if (rec)
			snprintf(a->run_id, sizeof a->run_id, "%s", rec->run_id);
		dura_record_free(rec);
		if (a->rc != DURA_EBUSY)
			break;
		conf_sleep_ms(2);
	}
	return NULL;
}

STORE_TEST(runs_foreign_id_race)
{
	enum { N = 8 };
	char wf[96], fid[96];
	conf_name(wf, sizeof wf, "conf-race");
	conf_name(fid, sizeof fid, "once");
	atomic_int go = 0;
	struct race_arg args[N];
	pthread_t th[N];
	int started = 0;
	for (int i = 0; i < N; i++) {
		memset(&args[i], 0, sizeof args[i]);
		args[i].s = s;
		args[i].wf = wf;
		args[i].fid = fid;
		args[i].go = &go;
		args[i].rc = -999;
		if (pthread_create(&th[i], NULL, race_create, &args[i]) == 0)
			started++;
		else
			break;
	}
	atomic_store(&go, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	REQUIRE(started == N);

	int winners = 0, exists = 0;
	const char *winner = NULL;
	for (int i = 0; i < N; i++) {
		if (args[i].rc == 0) {
			winners++;
			winner = args[i].run_id;
		} else if (args[i].rc == DURA_EEXISTS) {
			exists++;
		} else {
			fprintf(stderr, "    thread %d: rc %d\n", i, args[i].rc);
		}
	}
	CHECK(winners == 1);
	CHECK(exists == N - 1);
	if (winner)
		for (int i = 0; i < N; i++)
			CHECK_STR(args[i].run_id, winner);

	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);
}

static int list_all(dura_store *s, dura_run_filter *f, dura_record_list *out)
{
	memset(out, 0, sizeof *out);
	return dura_store_list_runs(s, f, out);
}

static int in_list(const dura_record_list *l, const char *run_id)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].run_id, run_id) == 0)
			return 1;
	return 0;
}

/* list_runs filters and order. */
STORE_TEST(runs_list_filters)
{
	enum { N = 6 };
	char wf[96], wf2[96], fa[96], fb[96];
	conf_name(wf, sizeof wf, "conf-list");
	conf_name(wf2, sizeof wf2, "conf-list-other");
	conf_name(fa, sizeof fa, "fa");
	conf_name(fb, sizeof fb, "fb");
	char ids[N][128];
	int64_t created[N];
	for (int i = 0; i < N; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = wf;
		req.foreign_id = i == 0 ? fa : i == 1 ? fb : NULL;
		req.status = (i % 2) ? "odd" : "even";
		dura_record *rec = NULL;
		REQUIRE_RC(dura_store_create_run(s, &req, &rec), 0);
		snprintf(ids[i], sizeof ids[i], "%s", rec->run_id);
		created[i] = rec->created_at;
		dura_record_free(rec);
		if (i == 2)
			conf_sleep_ms(5); /* a strict time boundary for the range filters */
	}
	REQUIRE_RC(conf_create(s, wf2, NULL, NULL, NULL), 0);
	REQUIRE_RC(dura_store_set_run_state(s, ids[3], DURA_RUN_PAUSED, NULL), 0);
	REQUIRE_RC(dura_store_set_run_state(s, ids[4], DURA_RUN_CANCELLED, NULL), 0);

	dura_record_list l;
	dura_run_filter f = DURA_RUN_FILTER_INIT;

	/* workflow: all N, newest first */
	f.workflow_name = wf;
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == N);
	CHECK(l.next_cursor == NULL);
	for (size_t i = 0; i < l.count; i++) {
		CHECK_STR(l.items[i].workflow_name, wf);
		if (i + 1 < l.count) {
			CHECK(strcmp(l.items[i].run_id, l.items[i + 1].run_id) > 0);
			CHECK(l.items[i].created_at >= l.items[i + 1].created_at);
		}
	}
	if (l.count == N)
		CHECK_STR(l.items[0].run_id, ids[N - 1]);
	dura_record_list_free(&l);

	/* run_state */
	f.run_state = DURA_RUN_PAUSED;
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1) {
		CHECK_STR(l.items[0].run_id, ids[3]);
		CHECK(l.items[0].run_state == DURA_RUN_PAUSED);
	}
	dura_record_list_free(&l);
	f.run_state = DURA_RUN_RUNNING;
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == N - 2);
	CHECK(!in_list(&l, ids[3]) && !in_list(&l, ids[4]));
	dura_record_list_free(&l);
	f.run_state = 0;

	/* foreign id */
	f.foreign_id = fb;
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].run_id, ids[1]);
	dura_record_list_free(&l);
	f.foreign_id = NULL;

	/* status */
	f.status = "odd";
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == N / 2);
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].status, "odd");
	dura_record_list_free(&l);

	/* status + run_state together */
	f.run_state = DURA_RUN_RUNNING;
	REQUIRE_RC(list_all(s, &f, &l), 0);
	/* odd: 1, 3 (paused) and 5; running and odd: 1 and 5 */
	CHECK(l.count == 2);
	CHECK(in_list(&l, ids[1]) && in_list(&l, ids[5]));
	dura_record_list_free(&l);
	f.status = NULL;
	f.run_state = 0;

	/* created range: after is inclusive, before exclusive */
	f.created_after = created[3];
	REQUIRE_RC(list_all(s, &f, &l), 0);
	for (int i = 0; i < N; i++)
		CHECK(in_list(&l, ids[i]) == (created[i] >= created[3]));
	for (size_t i = 0; i < l.count; i++)
		CHECK(l.items[i].created_at >= created[3]);
	dura_record_list_free(&l);
	f.created_after = 0;
	f.created_before = created[3];
	REQUIRE_RC(list_all(s, &f, &l), 0);
	for (int i = 0; i < N; i++)
		CHECK(in_list(&l, ids[i]) == (created[i] < created[3]));
	CHECK(l.count >= 3);
	dura_record_list_free(&l);

	/* no match */
	f.created_before = 0;
	f.foreign_id = "no-such-foreign-id";
	REQUIRE_RC(list_all(s, &f, &l), 0);
	CHECK(l.count == 0);
	CHECK(l.next_cursor == NULL);
	dura_record_list_free(&l);
}

/* Keyset pagination: every run exactly once, newest first across pages. */
STORE_TEST(runs_list_pagination)
{
	enum { N = 25, LIMIT = 7 };
	char wf[96];
	conf_name(wf, sizeof wf, "conf-page");
	char ids[N][128];
	for (int i = 0; i < N; i++) {
		dura_record *rec = NULL;
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
		snprintf(ids[i], sizeof ids[i], "%s", rec->run_id);
		dura_record_free(rec);
	}
	int seen[N];
	memset(seen, 0, sizeof seen);
	char *cursor = NULL;
	char last[128] = "";
	int pages = 0, total = 0;
	for (;;) {
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.workflow_name = wf;
		f.limit = LIMIT;
		f.cursor = cursor;
		dura_record_list l;
		memset(&l, 0, sizeof l);
		int rc = dura_store_list_runs(s, &f, &l);
		free(cursor);
		cursor = NULL;
		REQUIRE_RC(rc, 0);
		pages++;
		CHECK(l.count <= LIMIT);
		for (size_t i = 0; i < l.count; i++) {
			total++;
			if (last[0])
				CHECK(strcmp(l.items[i].run_id, last) < 0);
			snprintf(last, sizeof last, "%s", l.items[i].run_id);
			int found = 0;
			for (int k = 0; k < N; k++)
				if (strcmp(ids[k], l.items[i].run_id) == 0) {
					seen[k]++;
					found = 1;
				}
			CHECK(found);
		}
		if (l.next_cursor)
			cursor = strdup(l.next_cursor);
		dura_record_list_free(&l);
		if (!cursor || pages > N)
			break;
	}
	free(cursor);
	CHECK(total == N);
	CHECK(pages >= (N + LIMIT - 1) / LIMIT && pages <= (N + LIMIT - 1) / LIMIT + 1);
	for (int k = 0; k < N; k++)
		CHECK(seen[k] == 1);

	/* limit 0 means 100: one page with all of them */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == N);
	CHECK(l.next_cursor == NULL);
	dura_record_list_free(&l);
}

/* running -> paused -> running -> cancelled; cancelled is final. */
STORE_TEST(runs_set_state)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-setstate");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"k\":1}", &rec), 0);
	int64_t v = rec->version, nv = -1;
	const int seq[] = {DURA_RUN_PAUSED, DURA_RUN_RUNNING, DURA_RUN_CANCELLED};
	for (size_t i = 0; i < TEST_COUNT(seq); i++) {
		nv = -1;
		CHECK_RC(dura_store_set_run_state(s, rec->run_id, seq[i], &nv), 0);
		CHECK(nv > v);
		dura_record *got = NULL;
		REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
		CHECK(got->run_state == seq[i]);
		CHECK(got->version == nv);
		CHECK(conf_json_same(got->state, "{\"k\":1}"));
		CHECK(got->step_no == 0);
		dura_record_free(got);
		v = nv;
	}
	/* refused: nothing changes */
	nv = -1;
	CHECK_RC(dura_store_set_run_state(s, rec->run_id, DURA_RUN_RUNNING, &nv), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK(got->run_state == DURA_RUN_CANCELLED);
	CHECK(got->version == v);
	dura_record_free(got);
	/* NULL new_version is fine */
	dura_record *r2 = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r2), 0);
	CHECK_RC(dura_store_set_run_state(s, r2->run_id, DURA_RUN_PAUSED, NULL), 0);
	dura_record_free(r2);

	/* unknown run */
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	CHECK_RC(dura_store_set_run_state(s, id, DURA_RUN_PAUSED, NULL), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	/* unknown state numbers */
	CHECK_RC(dura_store_set_run_state(s, rec->run_id, 99, NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	CHECK_RC(dura_store_set_run_state(s, rec->run_id, -1, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_set_run_state(s, rec->run_id, DURA_RUN_STATE_MAX + 1, NULL), DURA_EINVAL);
	dura_record_free(rec);
}

/* Put a new run in state `from`; 0 or an error. */
static int make_run_in(dura_store *s, const char *wf, int from, char *id, size_t idsize)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	if (from == DURA_RUN_INITIATED || from == DURA_RUN_PAUSED)
		req.run_state = from;
	dura_record *rec = NULL;
	int rc = dura_store_create_run(s, &req, &rec);
	if (rc != 0)
		return rc;
	snprintf(id, idsize, "%s", rec->run_id);
	dura_record_free(rec);
	switch (from) {
	case DURA_RUN_COMPLETED:
	case DURA_RUN_FAILED:
		return end_run(s, id, from);
	case DURA_RUN_CANCELLED:
		return dura_store_set_run_state(s, id, DURA_RUN_CANCELLED, NULL);
	case DURA_RUN_DATA_DELETED:
		rc = end_run(s, id, DURA_RUN_COMPLETED);
		return rc ? rc : dura_store_delete_run_data(s, id);
	default:
		return 0;
	}
}

/* Every (from, to) pair is allowed exactly when dura_run_state_transition_ok says so. */
STORE_TEST(runs_set_state_matrix)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-matrix");
	const int froms[] = {DURA_RUN_INITIATED, DURA_RUN_RUNNING,   DURA_RUN_PAUSED,      DURA_RUN_COMPLETED,
	                     DURA_RUN_FAILED,    DURA_RUN_CANCELLED, DURA_RUN_DATA_DELETED};
	int allowed = 0, refused = 0;
	for (size_t i = 0; i < TEST_COUNT(froms); i++) {
		for (int to = 1; to <= DURA_RUN_STATE_MAX; to++) {
			char id[128];
			int rc = make_run_in(s, wf, froms[i], id, sizeof id);
			if (rc != 0) {
				fprintf(stderr, "    cannot make a run in state %s: %d\n", dura_run_state_name(froms[i]), rc);
				test__failed_now = 1;
				continue;
			}
			dura_record *before = NULL, *after = NULL;
			REQUIRE_RC(dura_store_get_run(s, id, &before), 0);
			CHECK(before->run_state == froms[i]);
			int want = dura_run_state_transition_ok(froms[i], to) ? 0 : DURA_ECONFLICT;
			int64_t nv = -1;
			rc = dura_store_set_run_state(s, id, to, &nv);
			if (rc != want) {
				fprintf(stderr, "    %s -> %s: got %d, wanted %d\n", dura_run_state_name(froms[i]),
				        dura_run_state_name(to), rc, want);
				test__failed_now = 1;
			}
			REQUIRE_RC(dura_store_get_run(s, id, &after), 0);
			if (want == 0) {
				allowed++;
				CHECK(after->run_state == to);
				CHECK(after->version > before->version);
				CHECK(nv == after->version);
			} else {
				refused++;
				CHECK(after->run_state == froms[i]);
				CHECK(after->version == before->version);
			}
			dura_record_free(before);
			dura_record_free(after);
		}
	}
	/* the table must allow something and refuse something */
	CHECK(allowed > 0 && refused > 0);
}

/* delete_run_data erases a finished run's state, steps and checkpoints. */
STORE_TEST(runs_delete_data)
{
	char wf[96], cp[96];
	conf_name(wf, sizeof wf, "conf-deldata");
	conf_name(cp, sizeof cp, "cp");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"secret\":\"PAYLOAD-XYZ\"}", &rec), 0);
	REQUIRE_RC(conf_commit_n(s, rec->run_id, 3, "n"), 0);
	REQUIRE_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 2, "{\"secret\":\"PAYLOAD-XYZ\"}"), 0);

	/* an active run's data is not erased */
	CHECK_RC(dura_store_delete_run_data(s, rec->run_id), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	CHECK(conf_history_count(s, rec->run_id) == 3);
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK(got->run_state == DURA_RUN_RUNNING);
	dura_record_free(got);
	got = NULL;

	REQUIRE_RC(end_run(s, rec->run_id, DURA_RUN_COMPLETED), 0);
	CHECK(conf_history_count(s, rec->run_id) == 4);
	CHECK_RC(dura_store_delete_run_data(s, rec->run_id), 0);

	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK(got->run_state == DURA_RUN_DATA_DELETED);
	CHECK(got->state == NULL || strstr(got->state, "PAYLOAD-XYZ") == NULL);
	CHECK(got->version > rec->version);
	dura_record_free(got);
	CHECK(conf_history_count(s, rec->run_id) == 0);
	dura_step *st = NULL;
	CHECK_RC(dura_store_get_step(s, rec->run_id, 0, &st), DURA_ENOTFOUND);
	CHECK_RC(dura_store_load_latest(s, rec->run_id, &st), DURA_ENOTFOUND);
	dura_checkpoint *c = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &c), DURA_ENOTFOUND);
	dura_checkpoint_list cl;
	memset(&cl, 0, sizeof cl);
	REQUIRE_RC(dura_store_checkpoint_list(s, rec->run_id, &cl), 0);
	CHECK(cl.count == 0);
	dura_checkpoint_list_free(&cl);

	/* unknown run */
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	CHECK_RC(dura_store_delete_run_data(s, id), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	dura_record_free(rec);
}

/*
 * data_deleted means the data is gone, however the run got there:
 * set_run_state(completed -> data_deleted) is allowed and erases the
 * state, steps and checkpoints as delete_run_data does.
 */
STORE_TEST(runs_data_deleted_means_erased)
{
	char wf[96], cp[96];
	conf_name(wf, sizeof wf, "conf-deleted");
	conf_name(cp, sizeof cp, "cp-deleted");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"secret\":\"PAYLOAD-XYZ\"}", &rec), 0);
	REQUIRE_RC(conf_commit_n(s, rec->run_id, 2, "n"), 0);
	dura_record *mid = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &mid), 0);
	dura_commit cm = DURA_COMMIT_INIT;
	cm.run_id = rec->run_id;
	cm.expect_version = mid->version;
	cm.node_id = "last";
	cm.state = "{\"secret\":\"PAYLOAD-XYZ\",\"done\":true}";
	cm.run_state = DURA_RUN_COMPLETED;
	cm.flags = DURA_COMMIT_NO_EVENT;
	dura_record_free(mid);
	REQUIRE_RC(dura_store_commit(s, &cm, NULL), 0);
	REQUIRE_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 1, "{\"secret\":\"PAYLOAD-XYZ\"}"), 0);
	dura_record *before = NULL, *after = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &before), 0);

	/* completed -> data_deleted is allowed, and it erases (dura.h) */
	REQUIRE(dura_run_state_transition_ok(DURA_RUN_COMPLETED, DURA_RUN_DATA_DELETED));
	int64_t nv = 0;
	CHECK_RC(dura_store_set_run_state(s, rec->run_id, DURA_RUN_DATA_DELETED, &nv), 0);
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &after), 0);
	dura_checkpoint *c = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &c), DURA_ENOTFOUND);
	dura_checkpoint_free(c);
	CHECK(after->run_state == DURA_RUN_DATA_DELETED);
	CHECK(after->version > before->version);
	CHECK(after->version == nv);
	if (after->state && strstr(after->state, "PAYLOAD-XYZ")) {
		fprintf(stderr, "    set_run_state(data_deleted) left the run's state in place\n");
		test__failed_now = 1;
	}
	CHECK(conf_history_count(s, rec->run_id) == 0);
	dura_record_free(before);
	dura_record_free(after);
	dura_record_free(rec);
}

const test_case conf_runs_tests[] = {
	{"runs_create_defaults", runs_create_defaults},
	{"runs_create_fields", runs_create_fields},
	{"runs_get_missing", runs_get_missing},
	{"runs_latest", runs_latest},
	{"runs_foreign_id_idempotent", runs_foreign_id_idempotent},
	{"runs_foreign_id_race", runs_foreign_id_race},
	{"runs_duplicate_run_id", runs_duplicate_run_id},
	{"runs_odd_names", runs_odd_names},
	{"runs_reactivation_keeps_one_active", runs_reactivation_keeps_one_active},
	{"runs_list_filters", runs_list_filters},
	{"runs_list_pagination", runs_list_pagination},
	{"runs_set_state", runs_set_state},
	{"runs_set_state_matrix", runs_set_state_matrix},
	{"runs_delete_data", runs_delete_data},
	{"runs_data_deleted_means_erased", runs_data_deleted_means_erased},
};
const size_t conf_runs_ntests = TEST_COUNT(conf_runs_tests);
