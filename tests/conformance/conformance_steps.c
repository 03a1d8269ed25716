/*
 * conformance_steps.c - the atomic step commit: record, step row and
 * outbox event together or not at all; commit_batch; history, get_step,
 * load_latest; the outbox; commits from many threads and processes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* 1 if the run's history has exactly n steps numbered 0..n-1. */
static int history_dense(dura_store *s, const char *run_id, long n)
{
	dura_step_list l;
	memset(&l, 0, sizeof l);
	int rc = dura_store_history(s, run_id, 0, 0, &l);
	if (rc != 0) {
		fprintf(stderr, "    history failed: %d\n", rc);
		return 0;
	}
	int ok = (long)l.count == n;
	if (!ok)
		fprintf(stderr, "    history of %s: %zu steps, wanted %ld\n", run_id, l.count, n);
	for (size_t i = 0; ok && i < l.count; i++) {
		if (l.items[i].step != (int64_t)i || strcmp(l.items[i].run_id, run_id) != 0) {
			fprintf(stderr, "    history item %zu has step %lld\n", i, (long long)l.items[i].step);
			ok = 0;
		}
	}
	dura_step_list_free(&l);
	return ok;
}

/* Commit three steps and read them back every way the contract offers. */
STORE_TEST(steps_commit_history)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-commit");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"i\":-1}", &rec), 0);
	const char *run_id = rec->run_id;
	int64_t v = rec->version;

	/* no steps yet */
	dura_step *st = NULL;
	CHECK_RC(dura_store_load_latest(s, run_id, &st), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(conf_history_count(s, run_id) == 0);

	const char *nodes[] = {"fetch", "transform", "store"};
	const char *states[] = {"{\"i\":0,\"a\":[1]}", "{\"i\":1,\"a\":[1,2]}", "{\"i\":2,\"a\":[1,2,3],\"u\":\"\xe2\x82\xac\"}"};
	for (int i = 0; i < 3; i++) {
		dura_commit c = DURA_COMMIT_INIT;
		c.run_id = run_id;
		c.expect_version = v;
		c.node_id = nodes[i];
		c.state = states[i];
		c.status = i < 2 ? nodes[i + 1] : "";
		c.flags = DURA_COMMIT_NO_EVENT;
		dura_commit_result res;
		memset(&res, 0x55, sizeof res);
		REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
		CHECK(res.code == 0);
		CHECK(res.new_version == v + 1);
		CHECK(res.step == i);
		dura_record *got = NULL;
		REQUIRE_RC(dura_store_get_run(s, run_id, &got), 0);
		CHECK(got->version == v + 1);
		CHECK(got->step_no == i + 1);
		CHECK(conf_json_same(got->state, states[i]));
		CHECK_STR(got->status, c.status);
		CHECK(got->run_state == DURA_RUN_RUNNING);
		CHECK(got->updated_at >= rec->updated_at && conf_near_now(got->updated_at, 5000));
		CHECK(got->created_at == rec->created_at);
		CHECK_STR(got->workflow_name, wf);
		dura_record_free(got);
		v++;
	}

	dura_step_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, run_id, 0, 0, &l), 0);
	CHECK(l.count == 3);
	for (size_t i = 0; i < l.count && i < 3; i++) {
		CHECK_STR(l.items[i].run_id, run_id);
		CHECK(l.items[i].step == (int64_t)i);
		CHECK_STR(l.items[i].node_id, nodes[i]);
		CHECK(conf_json_same(l.items[i].state, states[i]));
		CHECK(conf_near_now(l.items[i].created_at, 5000));
	}
	dura_step_list_free(&l);

	/* from and limit */
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, run_id, 1, 1, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1) {
		CHECK(l.items[0].step == 1);
		CHECK_STR(l.items[0].node_id, "transform");
	}
	dura_step_list_free(&l);
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, run_id, 1, 0, &l), 0);
	CHECK(l.count == 2);
	if (l.count == 2)
		CHECK(l.items[0].step == 1 && l.items[1].step == 2);
	dura_step_list_free(&l);
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, run_id, 0, 2, &l), 0);
	CHECK(l.count == 2);
	if (l.count == 2)
		CHECK(l.items[0].step == 0 && l.items[1].step == 1);
	dura_step_list_free(&l);
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, run_id, 3, 0, &l), 0);
	CHECK(l.count == 0);
	dura_step_list_free(&l);

	/* get_step */
	REQUIRE_RC(dura_store_get_step(s, run_id, 1, &st), 0);
	CHECK_STR(st->run_id, run_id);
	CHECK(st->step == 1);
	CHECK_STR(st->node_id, "transform");
	CHECK(conf_json_same(st->state, states[1]));
	dura_step_free(st);
	st = NULL;
	CHECK_RC(dura_store_get_step(s, run_id, 3, &st), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	char other[DURA_UUID_LEN + 1];
	dura_uuid7(other);
	CHECK_RC(dura_store_get_step(s, other, 0, &st), DURA_ENOTFOUND);

	/* load_latest */
	REQUIRE_RC(dura_store_load_latest(s, run_id, &st), 0);
	CHECK(st->step == 2);
	CHECK_STR(st->node_id, "store");
	CHECK(conf_json_same(st->state, states[2]));
	dura_step_free(st);
	dura_record_free(rec);
}

/* What a commit writes besides state: run_state, error, attempt, next_run_at. */
STORE_TEST(steps_commit_fields)
{
	char wf[96], fid[96];
	conf_name(wf, sizeof wf, "conf-fields");
	conf_name(fid, sizeof fid, "fid");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = fid;
	req.meta = "{\"m\":1}";
	dura_record *rec = NULL;
	REQUIRE_RC(dura_store_create_run(s, &req, &rec), 0);

	int64_t later = dura_now_ms() + 3600 * 1000;
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = rec->run_id;
	c.expect_version = rec->version;
	c.node_id = "charge";
	c.state = "{\"tries\":2}";
	c.status = "charge";
	c.error = "card declined";
	c.attempt = 2;
	c.next_run_at = later;
	c.flags = DURA_COMMIT_NO_EVENT;
	dura_commit_result res;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK_STR(got->error, "card declined");
	CHECK(got->attempt == 2);
	CHECK(got->next_run_at >= later - 1 && got->next_run_at <= later + 1);
	CHECK_STR(got->status, "charge");
	CHECK_STR(got->foreign_id, fid);
	CHECK(conf_json_same(got->meta, "{\"m\":1}"));
	CHECK(got->run_state == DURA_RUN_RUNNING);
	dura_record_free(got);

	/* the end: error cleared by NULL, run completed, status "" */
	c.expect_version = res.new_version;
	c.node_id = "charge";
	c.state = "{\"tries\":3,\"paid\":true}";
	c.status = "";
	c.error = NULL;
	c.attempt = 0;
	c.next_run_at = 0;
	c.run_state = DURA_RUN_COMPLETED;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	CHECK(res.step == 1);
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK_STR(got->error, "");
	CHECK(got->attempt == 0);
	CHECK_STR(got->status, "");
	CHECK(got->run_state == DURA_RUN_COMPLETED);
	CHECK(got->step_no == 2);
	CHECK(got->next_run_at <= dura_now_ms() + 5);
	CHECK(conf_json_same(got->state, "{\"tries\":3,\"paid\":true}"));
	dura_record_free(got);
	dura_record_free(rec);
}

/* NO_STEP updates the record only: no step row, step_no unchanged. */
STORE_TEST(steps_commit_no_step)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-nostep");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	REQUIRE_RC(conf_commit_n(s, rec->run_id, 2, "n"), 0);
	dura_record *mid = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &mid), 0);
	CHECK(mid->step_no == 2);

	dura_commit_result res;
	REQUIRE_RC(conf_commit(s, rec->run_id, mid->version, "side", "{\"side\":true}",
	                       DURA_COMMIT_NO_STEP | DURA_COMMIT_NO_EVENT, &res),
	           0);
	CHECK(res.step == -1);
	CHECK(res.new_version == mid->version + 1);
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, rec->run_id, &got), 0);
	CHECK(got->version == mid->version + 1);
	CHECK(got->step_no == 2);
	CHECK(conf_json_same(got->state, "{\"side\":true}"));
	CHECK(history_dense(s, rec->run_id, 2));

	/* the next real step is still dense */
	REQUIRE_RC(conf_commit(s, rec->run_id, got->version, "n2", "{}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 2);
	CHECK(history_dense(s, rec->run_id, 3));
	dura_record_free(got);
	dura_record_free(mid);
	dura_record_free(rec);
}

/* Each commit adds exactly one outbox event unless NO_EVENT; ack removes it. */
STORE_TEST(steps_outbox)
{
	conf_outbox_sweep(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-outbox");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	const char *run_id = rec->run_id;
	/* create may or may not write an event; only commits are counted */
	long base = conf_events(s, run_id, NULL, NULL);
	REQUIRE(base >= 0);
	long base_step = conf_events(s, run_id, "step", NULL);

	dura_commit_result res;
	REQUIRE_RC(conf_commit(s, run_id, rec->version, "a", "{\"a\":1}", 0, &res), 0);
	CHECK(conf_events(s, run_id, NULL, NULL) == base + 1);
	CHECK(conf_events(s, run_id, "step", NULL) == base_step + 1);

	/* NO_EVENT: nothing */
	REQUIRE_RC(conf_commit(s, run_id, res.new_version, "b", "{\"a\":2}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(conf_events(s, run_id, NULL, NULL) == base + 1);

	/* a named event with a payload */
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = res.new_version;
	c.node_id = "c";
	c.state = "{\"a\":3}";
	c.status = "d";
	c.event_type = "conf.custom";
	c.event_data = "{\"x\":[1,2,{\"y\":null}]}";
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	CHECK(conf_events(s, run_id, NULL, NULL) == base + 2);

	dura_event_list evs;
	long n = conf_events(s, run_id, NULL, &evs);
	REQUIRE(n == base + 2);
	dura_event *step_ev = NULL, *custom = NULL;
	for (long i = 0; i < n; i++) {
		dura_event *ev = &evs.items[i];
		CHECK(conf_is_uuid7(ev->id));
		CHECK_STR(ev->workflow_name, wf);
		CHECK_STR(ev->run_id, run_id);
		CHECK(conf_json_valid(ev->data));
		CHECK(conf_near_now(ev->created_at, 5000));
		if (i + 1 < n)
			CHECK(ev->created_at <= evs.items[i + 1].created_at);
		if (strcmp(ev->type, "step") == 0)
			step_ev = ev;
		if (strcmp(ev->type, "conf.custom") == 0) {
			custom = ev;
			CHECK(step_ev != NULL); /* oldest first */
		}
	}
	REQUIRE(step_ev != NULL && custom != NULL);
	CHECK(conf_json_same(custom->data, c.event_data));

	/* a small poll returns at most limit */
	dura_event_list one;
	memset(&one, 0, sizeof one);
	REQUIRE_RC(dura_store_outbox_poll(s, 1, &one), 0);
	CHECK(one.count == 1);
	dura_event_list_free(&one);

	/* ack removes exactly that event; a second ack is ENOTFOUND */
	CHECK_RC(dura_store_outbox_ack(s, custom->id), 0);
	CHECK(conf_events(s, run_id, "conf.custom", NULL) == 0);
	CHECK(conf_events(s, run_id, NULL, NULL) == base + 1);
	CHECK_RC(dura_store_outbox_ack(s, custom->id), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK_RC(dura_store_outbox_ack(s, step_ev->id), 0);
	CHECK(conf_events(s, run_id, "step", NULL) == base_step);
	char unknown[DURA_UUID_LEN + 1];
	dura_uuid7(unknown);
	CHECK_RC(dura_store_outbox_ack(s, unknown), DURA_ENOTFOUND);
	dura_event_list_free(&evs);

	conf_ack_run_events(s, run_id);
	CHECK(conf_events(s, run_id, NULL, NULL) == 0);
	dura_record_free(rec);
}

/*
 * ev's data is the default payload {"run_id":..,"step":N,"node_id":..,
 * "status":..,"run_state":N} with these values and no other key.
 */
static int default_payload_is(const dura_event *ev, const char *run_id, long long step, const char *node,
                              const char *status, int run_state)
{
	json_error_t err;
	json_t *j = ev->data ? json_loads(ev->data, 0, &err) : NULL;
	const char *bad = NULL;
	json_t *v;
	if (!j || !json_is_object(j))
		bad = "not a JSON object";
	else if (json_object_size(j) != 5)
		bad = "not exactly five keys";
	else if (!(v = json_object_get(j, "run_id")) || !json_is_string(v) || strcmp(json_string_value(v), run_id) != 0)
		bad = "run_id";
	else if (!(v = json_object_get(j, "step")) || !json_is_integer(v) || json_integer_value(v) != step)
		bad = "step";
	else if (!(v = json_object_get(j, "node_id")) || !json_is_string(v) || strcmp(json_string_value(v), node) != 0)
		bad = "node_id";
	else if (!(v = json_object_get(j, "status")) || !json_is_string(v) || strcmp(json_string_value(v), status) != 0)
		bad = "status";
	else if (!(v = json_object_get(j, "run_state")) || !json_is_integer(v) || json_integer_value(v) != run_state)
		bad = "run_state";
	json_decref(j);
	if (bad)
		fprintf(stderr, "    default event data %s: %s\n", ev->data ? ev->data : "(null)", bad);
	return bad == NULL;
}

/* s as the contract's JSON string (docs/store-contract.md), at o. */
static char *expect_quote(char *o, const char *s)
{
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		const char *esc = *p == '"'    ? "\\\""
		                  : *p == '\\' ? "\\\\"
		                  : *p == '\b'  ? "\\b"
		                  : *p == '\f'  ? "\\f"
		                  : *p == '\n'  ? "\\n"
		                  : *p == '\r'  ? "\\r"
		                  : *p == '\t'  ? "\\t"
		                                 : NULL;
		if (esc)
			o += sprintf(o, "%s", esc);
		else if (*p < 0x20)
			o += sprintf(o, "\\u%04x", *p);
		else
			*o++ = (char)*p;
	}
	*o++ = '"';
	return o;
}

/* The default payload's exact bytes, the same on every store. */
static int default_payload_bytes(const dura_event *ev, const char *run_id, long long step, const char *node,
                                 const char *status, int run_state)
{
	char want[4096], *o = want;
	o += sprintf(o, "{\"run_id\":");
	o = expect_quote(o, run_id);
	o += sprintf(o, ",\"step\":%lld,\"node_id\":", step);
	o = expect_quote(o, node);
	o += sprintf(o, ",\"status\":");
	o = expect_quote(o, status);
	sprintf(o, ",\"run_state\":%d}", run_state);
	if (ev->data && strcmp(ev->data, want) == 0)
		return 1;
	fprintf(stderr, "    default event data\n      is   %s\n      want %s\n", ev->data ? ev->data : "(null)", want);
	return 0;
}

/*
 * A commit without event data writes the documented default payload: the
 * five keys, and byte for byte the text the core's dura_store_event_summary()
 * writes, the same on every store. (A store whose outbox column keeps
 * JSON parsed, as MySQL 8's JSON type does, cannot give back any event
 * data as written: there the first, custom event does not come back
 * verbatim and only the keys are compared.)
 */
STORE_TEST(steps_outbox_default_payload)
{
	conf_outbox_sweep(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-payload");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	const char *run_id = rec->run_id;
	/* quotes, backslashes, control characters and UTF-8 are escaped */
	static const char odd_node[] = "n\"q\\b/\n\t\x01\x1f-\xc3\xa9-\xe2\x82\xac";
	static const char odd_status[] = "st\xc3\xa9 \"x\"";

	static const char spaced[] = "{ \"z\" : 1,\"a\":[1 , 2] }";

	/* custom data, spaced: does the store keep event bytes? */
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = rec->version;
	c.node_id = "pre";
	c.state = "{}";
	c.event_data = spaced;
	dura_commit_result res;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);

	c.expect_version = res.new_version;
	c.node_id = "a";
	c.state = "{\"a\":1}";
	c.status = "st-a";
	c.event_data = NULL;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);

	/* no status (""), a run_state change, odd text */
	c.expect_version = res.new_version;
	c.node_id = odd_node;
	c.status = NULL;
	c.run_state = DURA_RUN_PAUSED;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);

	/* NO_STEP: step -1, no node ("") */
	c.expect_version = res.new_version;
	c.node_id = NULL;
	c.status = odd_status;
	c.run_state = 0;
	c.flags = DURA_COMMIT_NO_STEP;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	CHECK(res.step == -1);

	dura_event_list evs;
	long n = conf_events(s, run_id, NULL, &evs);
	CHECK(n == 4);
	if (n == 4) {
		for (int i = 0; i < 4; i++) {
			CHECK_STR(evs.items[i].type, "step");
			CHECK_STR(evs.items[i].workflow_name, wf);
		}
		CHECK(conf_json_same(evs.items[0].data, spaced));
		int verbatim = evs.items[0].data && strcmp(evs.items[0].data, spaced) == 0;
		const dura_event *d = &evs.items[1];
		CHECK(default_payload_is(&d[0], run_id, 1, "a", "st-a", DURA_RUN_RUNNING));
		CHECK(default_payload_is(&d[1], run_id, 2, odd_node, "", DURA_RUN_PAUSED));
		CHECK(default_payload_is(&d[2], run_id, -1, "", odd_status, DURA_RUN_PAUSED));
		if (verbatim) {
			CHECK(default_payload_bytes(&d[0], run_id, 1, "a", "st-a", DURA_RUN_RUNNING));
			CHECK(default_payload_bytes(&d[1], run_id, 2, odd_node, "", DURA_RUN_PAUSED));
			CHECK(default_payload_bytes(&d[2], run_id, -1, "", odd_status, DURA_RUN_PAUSED));
		} else {
			fprintf(stderr, "    note: the store does not keep event data as written; default payload bytes not "
			                "compared\n");
		}
	}
	if (n >= 0)
		dura_event_list_free(&evs);
	conf_ack_run_events(s, run_id);
	dura_record_free(rec);
}

struct snap {
	int64_t version, step_no, updated_at;
	char *state, *status;
	int run_state;
	long steps, events;
};

static int take(dura_store *s, const char *run_id, struct snap *sn)
{
	memset(sn, 0, sizeof *sn);
	dura_record *r = NULL;
	int rc = dura_store_get_run(s, run_id, &r);
	if (rc != 0)
		return rc;
	sn->version = r->version;
	sn->step_no = r->step_no;
	sn->updated_at = r->updated_at;
	sn->state = strdup(r->state);
	sn->status = strdup(r->status);
	sn->run_state = r->run_state;
	dura_record_free(r);
	sn->steps = conf_history_count(s, run_id);
	sn->events = conf_events(s, run_id, NULL, NULL);
	return 0;
}

static int same_snap(const struct snap *a, const struct snap *b)
{
	int ok = a->version == b->version && a->step_no == b->step_no && a->run_state == b->run_state &&
	         a->steps == b->steps && a->events == b->events && a->state && b->state &&
	         strcmp(a->state, b->state) == 0 && a->status && b->status && strcmp(a->status, b->status) == 0;
	if (!ok)
		fprintf(stderr, "    record changed: version %lld->%lld step_no %lld->%lld steps %ld->%ld events %ld->%ld\n",
		        (long long)a->version, (long long)b->version, (long long)a->step_no, (long long)b->step_no,
		        a->steps, b->steps, a->events, b->events);
	return ok;
}

static void free_snap(struct snap *sn)
{
	free(sn->state);
	free(sn->status);
}

/* A commit that fails leaves nothing behind. */
STORE_TEST(steps_commit_failures)
{
	conf_outbox_sweep(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fail");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"keep\":1}", &rec), 0);
	const char *run_id = rec->run_id;
	dura_commit_result res;
	REQUIRE_RC(conf_commit(s, run_id, rec->version, "n0", "{\"keep\":2}", 0, &res), 0);
	int64_t v = res.new_version;

	dura_store_stats st0, st1;
	memset(&st0, 0, sizeof st0);
	memset(&st1, 0, sizeof st1);
	REQUIRE_RC(dura_store_stats_get(s, &st0), 0);

	struct snap before, after;
	REQUIRE_RC(take(s, run_id, &before), 0);

	/* stale version */
	memset(&res, 0, sizeof res);
	CHECK_RC(conf_commit(s, run_id, v - 1, "n1", "{\"lost\":1}", 0, &res), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	CHECK(res.code == DURA_ECONFLICT);
	REQUIRE_RC(take(s, run_id, &after), 0);
	CHECK(same_snap(&before, &after));
	free_snap(&after);

	/* a version from the future */
	CHECK_RC(conf_commit(s, run_id, v + 5, "n1", "{\"lost\":2}", 0, NULL), DURA_ECONFLICT);
	REQUIRE_RC(take(s, run_id, &after), 0);
	CHECK(same_snap(&before, &after));
	free_snap(&after);

	REQUIRE_RC(dura_store_stats_get(s, &st1), 0);
	CHECK(st1.conflicts == st0.conflicts + 2);
	CHECK(st1.commits == st0.commits);

	/* invalid JSON state */
	CHECK_RC(conf_commit(s, run_id, v, "n1", "{\"unterminated\":", 0, NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	CHECK_RC(conf_commit(s, run_id, v, "n1", "not json", 0, NULL), DURA_EINVAL);
	/* invalid JSON event payload */
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = v;
	c.node_id = "n1";
	c.state = "{}";
	c.event_data = "{oops";
	CHECK_RC(dura_store_commit(s, &c, NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	REQUIRE_RC(take(s, run_id, &after), 0);
	CHECK(same_snap(&before, &after));
	free_snap(&after);

	/* unknown run */
	char ghost[DURA_UUID_LEN + 1];
	dura_uuid7(ghost);
	memset(&res, 0, sizeof res);
	CHECK_RC(conf_commit(s, ghost, 1, "n", "{}", 0, &res), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(res.code == DURA_ENOTFOUND);
	dura_record *gr = NULL;
	CHECK_RC(dura_store_get_run(s, ghost, &gr), DURA_ENOTFOUND);
	CHECK(conf_events(s, ghost, NULL, NULL) == 0);
	CHECK(conf_history_count(s, ghost) <= 0);

	/* the right version still works, and the counters saw one commit */
	REQUIRE_RC(conf_commit(s, run_id, v, "n1", "{\"keep\":3}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 1);
	REQUIRE_RC(dura_store_stats_get(s, &st1), 0);
	CHECK(st1.commits == st0.commits + 1);
	CHECK(history_dense(s, run_id, 2));

	free_snap(&before);
	conf_ack_run_events(s, run_id);
	dura_record_free(rec);
}

/* commit_batch: each commit is checked on its own. */
STORE_TEST(steps_commit_batch)
{
	conf_outbox_sweep(s);
	enum { N = 4 };
	char wf[96];
	conf_name(wf, sizeof wf, "conf-batch");
	char ids[N][128];
	int64_t ver[N];
	long ev0[N];
	for (int i = 0; i < N; i++) {
		dura_record *rec = NULL;
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
		snprintf(ids[i], sizeof ids[i], "%s", rec->run_id);
		ver[i] = rec->version;
		dura_record_free(rec);
		ev0[i] = conf_events(s, ids[i], NULL, NULL);
	}

	/* all good */
	dura_commit c[N];
	dura_commit_result res[N];
	char states[N][64];
	for (int i = 0; i < N; i++) {
		dura_commit init = DURA_COMMIT_INIT;
		c[i] = init;
		snprintf(states[i], sizeof states[i], "{\"run\":%d,\"round\":1}", i);
		c[i].run_id = ids[i];
		c[i].expect_version = ver[i];
		c[i].node_id = "batch-a";
		c[i].state = states[i];
		c[i].status = "batch-b";
	}
	memset(res, 0x55, sizeof res);
	REQUIRE_RC(dura_store_commit_batch(s, c, N, res), 0);
	for (int i = 0; i < N; i++) {
		CHECK(res[i].code == 0);
		CHECK(res[i].new_version == ver[i] + 1);
		CHECK(res[i].step == 0);
		dura_record *got = NULL;
		REQUIRE_RC(dura_store_get_run(s, ids[i], &got), 0);
		CHECK(got->version == ver[i] + 1);
		CHECK(got->step_no == 1);
		CHECK(conf_json_same(got->state, states[i]));
		CHECK_STR(got->status, "batch-b");
		dura_record_free(got);
		CHECK(history_dense(s, ids[i], 1));
		CHECK(conf_events(s, ids[i], NULL, NULL) == ev0[i] + 1);
		ver[i]++;
	}

	/* run 2 is stale: it alone fails, and writes nothing */
	struct snap before, after;
	REQUIRE_RC(take(s, ids[2], &before), 0);
	for (int i = 0; i < N; i++) {
		snprintf(states[i], sizeof states[i], "{\"run\":%d,\"round\":2}", i);
		c[i].expect_version = i == 2 ? ver[i] - 1 : ver[i];
		c[i].node_id = "batch-b";
		c[i].status = "";
		c[i].flags = DURA_COMMIT_NO_EVENT;
	}
	memset(res, 0x55, sizeof res);
	CHECK_RC(dura_store_commit_batch(s, c, N, res), DURA_ECONFLICT);
	for (int i = 0; i < N; i++) {
		if (i == 2) {
			CHECK(res[i].code == DURA_ECONFLICT);
			continue;
		}
		CHECK(res[i].code == 0);
		CHECK(res[i].new_version == ver[i] + 1);
		CHECK(res[i].step == 1);
		dura_record *got = NULL;
		REQUIRE_RC(dura_store_get_run(s, ids[i], &got), 0);
		CHECK(got->version == ver[i] + 1);
		CHECK(conf_json_same(got->state, states[i]));
		dura_record_free(got);
		CHECK(history_dense(s, ids[i], 2));
	}
	REQUIRE_RC(take(s, ids[2], &after), 0);
	CHECK(same_snap(&before, &after));
	free_snap(&before);
	free_snap(&after);

	/* a batch of one behaves like commit */
	c[2].expect_version = ver[2];
	REQUIRE_RC(dura_store_commit_batch(s, &c[2], 1, res), 0);
	CHECK(res[0].code == 0 && res[0].step == 1);
	CHECK(history_dense(s, ids[2], 2));

	/* an unknown run in a batch: that one is ENOTFOUND, the rest go in */
	char ghost[DURA_UUID_LEN + 1];
	dura_uuid7(ghost);
	dura_commit two[2];
	two[0] = c[0];
	two[0].expect_version = ver[0] + 1;
	two[1] = c[1];
	two[1].run_id = ghost;
	memset(res, 0x55, sizeof res);
	CHECK_RC(dura_store_commit_batch(s, two, 2, res), DURA_ECONFLICT);
	CHECK(res[0].code == 0 && res[0].step == 2);
	CHECK(res[1].code == DURA_ENOTFOUND);
	CHECK(history_dense(s, ids[0], 3));
	dura_record *gr = NULL;
	CHECK_RC(dura_store_get_run(s, ghost, &gr), DURA_ENOTFOUND);

	for (int i = 0; i < N; i++)
		conf_ack_run_events(s, ids[i]);
}

/* A batch larger than a server store's statement slots (16 runs a locking
 * read on MariaDB), its runs given in reverse order of creation, with
 * commits without a step, without an event, ending the run, one stale
 * and one of an unknown run: each gets its own answer. */
STORE_TEST(steps_commit_batch_large)
{
	conf_outbox_sweep(s);
	enum { N = 40, STALE = 17, GHOST = 33 };
	char wf[96];
	conf_name(wf, sizeof wf, "conf-batch-large");
	static char ids[N][128], states[N][64];
	int64_t ver[N];
	int created = 0;
	for (int i = 0; i < N; i++) {
		dura_record *rec = NULL;
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
		snprintf(ids[N - 1 - i], sizeof ids[0], "%s", rec->run_id);
		ver[N - 1 - i] = rec->version;
		created = rec->run_state;
		dura_record_free(rec);
	}
	dura_uuid7(ids[GHOST]);
	dura_commit c[N];
	dura_commit_result res[N];
	for (int i = 0; i < N; i++) {
		dura_commit init = DURA_COMMIT_INIT;
		c[i] = init;
		snprintf(states[i], sizeof states[i], "{\"big\":%d}", i);
		c[i].run_id = ids[i];
		c[i].expect_version = i == STALE ? ver[i] + 5 : ver[i];
		c[i].node_id = "big";
		c[i].state = states[i];
		c[i].status = i % 7 == 0 ? "" : "next";
		c[i].run_state = i % 7 == 0 ? DURA_RUN_COMPLETED : 0;
		c[i].flags = (i % 5 == 1 ? DURA_COMMIT_NO_STEP : 0) | (i % 3 == 2 ? DURA_COMMIT_NO_EVENT : 0);
	}
	memset(res, 0x55, sizeof res);
	CHECK_RC(dura_store_commit_batch(s, c, N, res), DURA_ECONFLICT);
	for (int i = 0; i < N; i++) {
		if (i == STALE) {
			CHECK(res[i].code == DURA_ECONFLICT);
			continue;
		}
		if (i == GHOST) {
			CHECK(res[i].code == DURA_ENOTFOUND);
			continue;
		}
		int step = !(c[i].flags & DURA_COMMIT_NO_STEP), event = !(c[i].flags & DURA_COMMIT_NO_EVENT);
		CHECK(res[i].code == 0);
		CHECK(res[i].new_version == ver[i] + 1);
		CHECK(res[i].step == (step ? 0 : -1));
		dura_record *got = NULL;
		REQUIRE_RC(dura_store_get_run(s, ids[i], &got), 0);
		CHECK(got->version == ver[i] + 1);
		CHECK(got->step_no == step);
		CHECK(conf_json_same(got->state, states[i]));
		CHECK(got->run_state == (i % 7 == 0 ? DURA_RUN_COMPLETED : created));
		dura_record_free(got);
		CHECK(history_dense(s, ids[i], step));
		CHECK(conf_events(s, ids[i], NULL, NULL) == event);
	}
	CHECK(history_dense(s, ids[STALE], 0));
	CHECK(conf_events(s, ids[STALE], NULL, NULL) == 0);
	for (int i = 0; i < N; i++)
		conf_ack_run_events(s, ids[i]);
}

/* A big state goes through a commit unchanged. */
STORE_TEST(steps_large_state)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-large");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	size_t n = 512 * 1024;
	char *state = malloc(n + 64);
	REQUIRE(state != NULL);
	char *p = state;
	p += sprintf(p, "{\"blob\":\"");
	for (size_t i = 0; i < n; i++)
		*p++ = (char)('a' + (i * 7) % 26);
	p += sprintf(p, "\",\"n\":[1,2,3]}");
	dura_commit_result res;
	int rc = conf_commit(s, rec->run_id, rec->version, "big", state, DURA_COMMIT_NO_EVENT, &res);
	CHECK_RC(rc, 0);
	if (rc == 0) {
		dura_record *got = NULL;
		if (dura_store_get_run(s, rec->run_id, &got) == 0) {
			CHECK(conf_json_same(got->state, state));
			dura_record_free(got);
		} else {
			test__failed_now = 1;
		}
		dura_step *st = NULL;
		if (dura_store_load_latest(s, rec->run_id, &st) == 0) {
			CHECK(conf_json_same(st->state, state));
			dura_step_free(st);
		} else {
			test__failed_now = 1;
		}
	}
	free(state);
	dura_record_free(rec);
}

/*
 * Threads sharing one handle: each commits to its own run, and all of them
 * to one shared run with compare-and-swap retries. Nothing is lost.
 */
enum { TH_N = 4, TH_OWN = 30, TH_SHARED = 15 };

struct th_arg {
	dura_store *s;
	const char *own, *shared;
	int idx;
	int errors;
	int conflicts;
};

static int commit_retry(dura_store *s, const char *run_id, const char *node, int *conflicts)
{
	for (int tries = 0; tries < 2000; tries++) {
		dura_record *r = NULL;
		int rc = dura_store_get_run(s, run_id, &r);
		if (rc == DURA_EBUSY) {
			conf_sleep_ms(1);
			continue;
		}
		if (rc != 0)
			return rc;
		char state[96];
		snprintf(state, sizeof state, "{\"by\":\"%s\",\"n\":%lld}", node, (long long)r->step_no);
		rc = conf_commit(s, run_id, r->version, node, state, DURA_COMMIT_NO_EVENT, NULL);
		dura_record_free(r);
		if (rc == 0)
			return 0;
		if (rc == DURA_ECONFLICT) {
			(*conflicts)++;
			continue;
		}
		if (rc == DURA_EBUSY) {
			conf_sleep_ms(1);
			continue;
		}
		return rc;
	}
	return DURA_ETIMEOUT;
}

static void *th_commit(void *p)
{
	struct th_arg *a = p;
	char node[64];
	for (int i = 0; i < TH_OWN; i++) {
		snprintf(node, sizeof node, "t%d-own-%d", a->idx, i);
		if (commit_retry(a->s, a->own, node, &a->conflicts) != 0)
			a->errors++;
		if (i < TH_SHARED) {
			snprintf(node, sizeof node, "t%d-shared-%d", a->idx, i);
			if (commit_retry(a->s, a->shared, node, &a->conflicts) != 0)
				a->errors++;
		}
	}
	return NULL;
}

STORE_TEST(steps_threads)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-threads");
	char own[TH_N][128], shared[128];
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	snprintf(shared, sizeof shared, "%s", rec->run_id);
	int64_t shared_v0 = rec->version;
	dura_record_free(rec);
	for (int i = 0; i < TH_N; i++) {
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
		snprintf(own[i], sizeof own[i], "%s", rec->run_id);
		dura_record_free(rec);
	}
	struct th_arg args[TH_N];
	pthread_t th[TH_N];
	int started = 0;
	for (int i = 0; i < TH_N; i++) {
		args[i] = (struct th_arg){s, own[i], shared, i, 0, 0};
		if (pthread_create(&th[i], NULL, th_commit, &args[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	REQUIRE(started == TH_N);
	for (int i = 0; i < TH_N; i++) {
		CHECK(args[i].errors == 0);
		CHECK(history_dense(s, own[i], TH_OWN));
	}
	CHECK(history_dense(s, shared, TH_N * TH_SHARED));
	REQUIRE_RC(dura_store_get_run(s, shared, &rec), 0);
	CHECK(rec->step_no == TH_N * TH_SHARED);
	CHECK(rec->version == shared_v0 + TH_N * TH_SHARED);
	dura_record_free(rec);

	/* every thread's shared commits are there exactly once */
	dura_step_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_history(s, shared, 0, 0, &l), 0);
	int count[TH_N][TH_SHARED];
	memset(count, 0, sizeof count);
	for (size_t i = 0; i < l.count; i++) {
		int t = -1, k = -1;
		if (sscanf(l.items[i].node_id, "t%d-shared-%d", &t, &k) == 2 && t >= 0 && t < TH_N && k >= 0 &&
		    k < TH_SHARED)
			count[t][k]++;
	}
	dura_step_list_free(&l);
	for (int t = 0; t < TH_N; t++)
		for (int k = 0; k < TH_SHARED; k++)
			CHECK(count[t][k] == 1);
}

/* Several processes on one store (DURA_CAP_MULTI_PROCESS). */
enum { MP_N = 2, MP_OWN = 40, MP_SHARED = 20 };

static int mp_child(int idx, const char *own, const char *shared)
{
	dura_store *s = NULL;
	if (dura_store_open(&s, g_url, NULL) != 0)
		return 10;
	int conflicts = 0, bad = 0;
	char node[64];
	for (int i = 0; i < MP_OWN; i++) {
		snprintf(node, sizeof node, "p%d-own-%d", idx, i);
		if (commit_retry(s, own, node, &conflicts) != 0)
			bad++;
		if (i < MP_SHARED) {
			snprintf(node, sizeof node, "p%d-shared-%d", idx, i);
			if (commit_retry(s, shared, node, &conflicts) != 0)
				bad++;
		}
	}
	dura_store_close(s);
	return bad ? 11 : 0;
}

static void steps_multi_process(void)
{
	dura_store *s = conf_open();
	REQUIRE(s != NULL);
	uint32_t caps = conf_caps(s);
	if (!(caps & DURA_CAP_MULTI_PROCESS)) {
		dura_store_close(s);
		SKIP("store lacks DURA_CAP_MULTI_PROCESS");
	}
	char wf[96];
	conf_name(wf, sizeof wf, "conf-mp");
	char own[MP_N][128], shared[128];
	dura_record *rec = NULL;
	int rc = conf_create(s, wf, NULL, NULL, &rec);
	if (rc != 0) {
		dura_store_close(s);
		REQUIRE_RC(rc, 0);
	}
	snprintf(shared, sizeof shared, "%s", rec->run_id);
	dura_record_free(rec);
	for (int i = 0; i < MP_N; i++) {
		rec = NULL;
		rc = conf_create(s, wf, NULL, NULL, &rec);
		if (rc != 0)
			break;
		snprintf(own[i], sizeof own[i], "%s", rec->run_id);
		dura_record_free(rec);
	}
	/* no handle is open across fork: each process opens its own */
	dura_store_close(s);
	REQUIRE_RC(rc, 0);

	fflush(NULL);
	pid_t pids[MP_N];
	int forked = 0;
	for (int i = 0; i < MP_N; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(mp_child(i, own[i], shared));
		if (p < 0)
			break;
		pids[forked++] = p;
	}
	for (int i = 0; i < forked; i++) {
		int status = 0;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	REQUIRE(forked == MP_N);

	s = conf_open();
	REQUIRE(s != NULL);
	for (int i = 0; i < MP_N; i++)
		CHECK(history_dense(s, own[i], MP_OWN));
	CHECK(history_dense(s, shared, MP_N * MP_SHARED));
	dura_store_close(s);
}

const test_case conf_steps_tests[] = {
	{"steps_commit_history", steps_commit_history},
	{"steps_commit_fields", steps_commit_fields},
	{"steps_commit_no_step", steps_commit_no_step},
	{"steps_outbox", steps_outbox},
	{"steps_outbox_default_payload", steps_outbox_default_payload},
	{"steps_commit_failures", steps_commit_failures},
	{"steps_commit_batch", steps_commit_batch},
	{"steps_commit_batch_large", steps_commit_batch_large},
	{"steps_large_state", steps_large_state},
	{"steps_threads", steps_threads},
	{"steps_multi_process", steps_multi_process},
};
const size_t conf_steps_ntests = TEST_COUNT(conf_steps_tests);
