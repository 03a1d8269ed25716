/*
 * conformance_waiting.c - durable waiting (contract version 5): a run's
 * wait and parent_id (create, list filters, commits), the signal inbox
 * (send, next, list, consumption by a commit, wakes), dura_store_wake,
 * set_run_state with a wait (resume keeps a sleeper asleep, a cancelled
 * child wakes its parent), delete_run_data and signals, schedules, and a
 * race of signal senders.
 *
 * A store of contract version 4 or older has none of it: every test skips
 * there (dura_store_signal_send answers DURA_ENOTSUP). Other tests may
 * share the database: a test looks only at its own runs and schedules.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)

/* -1 not probed yet, 0 no durable waiting, 1 the store is of version 5 */
static int g_waiting = -1;

/* Whether the store has durable waiting, probed once: a signal to a run
 * that does not exist is DURA_ENOTFOUND on a version-5 store and
 * DURA_ENOTSUP on an older one. -1 (reported) for any other answer. */
static int waiting_probe(dura_store *s)
{
	if (g_waiting >= 0)
		return g_waiting;
	char id[96];
	conf_name(id, sizeof id, "conf-wait-probe");
	int rc = dura_store_signal_send(s, id, "probe", NULL, NULL);
	if (rc == DURA_ENOTSUP)
		g_waiting = 0;
	else if (rc == DURA_ENOTFOUND)
		g_waiting = 1;
	else
		fprintf(stderr, "    signal_send to an unknown run returned %d, wanted %d or %d (%s)\n", rc,
		        DURA_ENOTFOUND, DURA_ENOTSUP, dura_error_last() ? dura_error_last()->message : "");
	return g_waiting;
}

#define NEED_WAITING(s)                                                                   \
	do {                                                                              \
		int w__ = waiting_probe(s);                                               \
		REQUIRE(w__ >= 0);                                                        \
		if (w__ == 0)                                                             \
			SKIP("the store has no durable waiting (contract version below 5)"); \
	} while (0)

/* A commit of one step on run_id at expect, no outbox event; the caller
 * sets the waiting fields. */
static dura_commit commit_of(const char *run_id, int64_t expect, const char *node)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = expect;
	c.node_id = node;
	c.state = "{}";
	c.status = node;
	c.flags = DURA_COMMIT_NO_EVENT;
	return c;
}

/* Create a running run of wf (parent may be NULL); its id into id. */
static int make_run(dura_store *s, const char *wf, const char *parent, char *id, size_t size)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.parent_id = parent;
	dura_record *rec = NULL;
	int rc = dura_store_create_run(s, &req, &rec);
	if (rc == 0)
		snprintf(id, size, "%s", rec->run_id);
	dura_record_free(rec);
	return rc;
}

/* Commit a step to run_id (at its current version) that leaves it
 * waiting for `wait` until next_run_at (0: now). */
static int set_wait(dura_store *s, const char *run_id, const char *wait, int64_t next_run_at)
{
	dura_record *rec = NULL;
	int rc = dura_store_get_run(s, run_id, &rec);
	if (rc)
		return rc;
	dura_commit c = commit_of(run_id, rec->version, "wait");
	dura_record_free(rec);
	c.wait = wait;
	c.next_run_at = next_run_at;
	return dura_store_commit(s, &c, NULL);
}

/* Bring run_id to run_state `to` with a last commit (completed, failed). */
static int end_run(dura_store *s, const char *run_id, int to)
{
	dura_record *rec = NULL;
	int rc = dura_store_get_run(s, run_id, &rec);
	if (rc)
		return rc;
	dura_commit c = commit_of(run_id, rec->version, "end");
	dura_record_free(rec);
	c.status = "";
	c.run_state = to;
	return dura_store_commit(s, &c, NULL);
}

/* The run's record, or NULL (reported). */
static dura_record *get_run(dura_store *s, const char *run_id)
{
	dura_record *rec = NULL;
	int rc = dura_store_get_run(s, run_id, &rec);
	if (rc) {
		fprintf(stderr, "    get_run(%s) returned %d\n", run_id, rc);
		return NULL;
	}
	return rec;
}

/* Number of pending signals of run_id, or -1. */
static long signal_count(dura_store *s, const char *run_id)
{
	dura_signal_list l;
	if (dura_store_signal_list(s, run_id, &l) != 0)
		return -1;
	long n = (long)l.count;
	dura_signal_list_free(&l);
	return n;
}

/* 1 if the list has a run with this id. */
static int list_has(const dura_record_list *l, const char *run_id)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].run_id, run_id) == 0)
			return 1;
	return 0;
}

/* wait and parent_id: "" by default, parent_id kept, and the list filters on both. */
STORE_TEST(waiting_record_fields)
{
	NEED_WAITING(s);
	char wf[96], other_wf[96];
	conf_name(wf, sizeof wf, "conf-wait-fields");
	conf_name(other_wf, sizeof other_wf, "conf-wait-fields-other");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);
	char p[128];
	snprintf(p, sizeof p, "%s", rec->run_id);
	CHECK_STR(rec->wait, "");
	CHECK_STR(rec->parent_id, "");
	dura_record_free(rec);
	REQUIRE((rec = get_run(s, p)) != NULL);
	CHECK_STR(rec->wait, "");
	CHECK_STR(rec->parent_id, "");
	dura_record_free(rec);

	/* three children of p, one of another parent, one without a parent */
	char kids[3][128], q[128], stray[128], lone[128];
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.parent_id = p;
	REQUIRE_RC(dura_store_create_run(s, &req, &rec), 0);
	CHECK_STR(rec->parent_id, p);
	CHECK_STR(rec->wait, "");
	snprintf(kids[0], sizeof kids[0], "%s", rec->run_id);
	dura_record_free(rec);
	REQUIRE((rec = get_run(s, kids[0])) != NULL);
	CHECK_STR(rec->parent_id, p);
	dura_record_free(rec);
	REQUIRE_RC(make_run(s, other_wf, p, kids[1], sizeof kids[1]), 0);
	REQUIRE_RC(make_run(s, wf, p, kids[2], sizeof kids[2]), 0);
	REQUIRE_RC(make_run(s, wf, NULL, q, sizeof q), 0);
	REQUIRE_RC(make_run(s, wf, q, stray, sizeof stray), 0);
	REQUIRE_RC(make_run(s, wf, "", lone, sizeof lone), 0);
	REQUIRE((rec = get_run(s, lone)) != NULL);
	CHECK_STR(rec->parent_id, "");
	dura_record_free(rec);

	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = p;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 3);
	for (int i = 0; i < 3; i++)
		CHECK(list_has(&l, kids[i]));
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].parent_id, p);
	dura_record_list_free(&l);
	/* with another filter too */
	f.workflow_name = wf;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 2 && list_has(&l, kids[0]) && list_has(&l, kids[2]));
	dura_record_list_free(&l);

	/* waiting: only runs whose wait is not "" */
	REQUIRE_RC(set_wait(s, q, "sleep", dura_now_ms() + HOUR_MS), 0);
	dura_run_filter w = DURA_RUN_FILTER_INIT;
	w.workflow_name = wf;
	w.waiting = 1;
	REQUIRE_RC(dura_store_list_runs(s, &w, &l), 0);
	CHECK(l.count == 1 && list_has(&l, q));
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].wait, "sleep");
	dura_record_list_free(&l);
	w.waiting = 0;
	REQUIRE_RC(dura_store_list_runs(s, &w, &l), 0);
	CHECK(l.count == 6); /* p, kids 0 and 2, q, stray, lone */
	dura_record_list_free(&l);
}

/* A commit's wait is the record's wait after it; a commit without one clears it. */
STORE_TEST(waiting_commit_wait)
{
	NEED_WAITING(s);
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-wait-commit");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	dura_record *rec = get_run(s, id);
	REQUIRE(rec != NULL);
	int64_t v = rec->version;
	dura_record_free(rec);

	dura_commit c = commit_of(id, v, "a");
	c.wait = "sleep";
	c.next_run_at = dura_now_ms() + HOUR_MS;
	dura_commit_result res;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	CHECK(res.new_version == v + 1);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK_STR(rec->wait, "sleep");
	CHECK(rec->next_run_at > dura_now_ms());
	dura_record_free(rec);

	c = commit_of(id, res.new_version, "b");
	c.wait = "signal:ping";
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK_STR(rec->wait, "signal:ping");
	dura_record_free(rec);

	c = commit_of(id, res.new_version, "c");
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK_STR(rec->wait, "");
	CHECK(rec->step_no == 3);
	dura_record_free(rec);

	/* a commit of version 1 (no wait field) clears it too */
	c = commit_of(id, res.new_version, "d");
	c.wait = "sleep";
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	c = commit_of(id, res.new_version, "e");
	c.version = 1;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK_STR(rec->wait, "");
	dura_record_free(rec);
}

/* signal_send refuses an unknown run, an ended one, a bad name or payload, and stores nothing. */
STORE_TEST(waiting_signal_send_refused)
{
	NEED_WAITING(s);
	char wf[96], unknown[96], id[128], done[128], failed[128], cancelled[128];
	conf_name(wf, sizeof wf, "conf-wait-refused");
	conf_name(unknown, sizeof unknown, "conf-no-such-run");
	CHECK_RC(dura_store_signal_send(s, unknown, "go", "{}", NULL), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));

	REQUIRE_RC(make_run(s, wf, NULL, done, sizeof done), 0);
	REQUIRE_RC(end_run(s, done, DURA_RUN_COMPLETED), 0);
	dura_record *before = get_run(s, done);
	REQUIRE(before != NULL);
	CHECK_RC(dura_store_signal_send(s, done, "go", "{}", NULL), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	dura_record *after = get_run(s, done);
	REQUIRE(after != NULL);
	CHECK(after->version == before->version);
	dura_record_free(before);
	dura_record_free(after);
	CHECK(signal_count(s, done) == 0);

	REQUIRE_RC(make_run(s, wf, NULL, failed, sizeof failed), 0);
	REQUIRE_RC(end_run(s, failed, DURA_RUN_FAILED), 0);
	CHECK_RC(dura_store_signal_send(s, failed, "go", "{}", NULL), DURA_ECONFLICT);
	CHECK(signal_count(s, failed) == 0);

	REQUIRE_RC(make_run(s, wf, NULL, cancelled, sizeof cancelled), 0);
	REQUIRE_RC(dura_store_set_run_state(s, cancelled, DURA_RUN_CANCELLED, NULL), 0);
	CHECK_RC(dura_store_signal_send(s, cancelled, "go", "{}", NULL), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	CHECK(signal_count(s, cancelled) == 0);

	/* bad names and payloads, on a live run */
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	char long_name[DURA_MAX_NAME_LEN + 2];
	memset(long_name, 'n', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	CHECK_RC(dura_store_signal_send(s, id, "", "{}", NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	CHECK_RC(dura_store_signal_send(s, id, NULL, "{}", NULL), DURA_EINVAL);
	CHECK_RC(dura_store_signal_send(s, id, long_name, "{}", NULL), DURA_EINVAL);
	CHECK_RC(dura_store_signal_send(s, id, "a\x01z", "{}", NULL), DURA_EINVAL);
	CHECK_RC(dura_store_signal_send(s, id, "tab\there", "{}", NULL), DURA_EINVAL);
	CHECK_RC(dura_store_signal_send(s, id, "go", "not json", NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	CHECK_RC(dura_store_signal_send(s, id, "go", "{\"a\":", NULL), DURA_EINVAL);
	CHECK(signal_count(s, id) == 0);
	dura_signal *sig = NULL;
	CHECK_RC(dura_store_signal_next(s, id, "go", &sig), DURA_ENOTFOUND);
	CHECK(sig == NULL);

	/* the longest name is fine, and a NULL payload is JSON null */
	long_name[DURA_MAX_NAME_LEN] = '\0';
	CHECK_RC(dura_store_signal_send(s, id, long_name, NULL, NULL), 0);
	REQUIRE_RC(dura_store_signal_next(s, id, long_name, &sig), 0);
	CHECK_STR(sig->name, long_name);
	CHECK(conf_json_same(sig->payload, "null"));
	dura_signal_free(sig);
}

/* Signals keep their send order; next gives the oldest of a name, list every one with its fields. */
STORE_TEST(waiting_signal_order)
{
	NEED_WAITING(s);
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-wait-order");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	dura_record *rec = get_run(s, id);
	REQUIRE(rec != NULL);
	int64_t v0 = rec->version;
	dura_record_free(rec);

	const char *names[3] = {"a", "b", "a"};
	const char *payloads[3] = {"{\"x\":1,\"s\":\"h\xc3\xa9\"}", "[1,2,{\"y\":null}]", "\"z\""};
	char ids[3][DURA_UUID_LEN + 1];
	int64_t before = dura_now_ms();
	for (int i = 0; i < 3; i++) {
		REQUIRE_RC(dura_store_signal_send(s, id, names[i], payloads[i], ids[i]), 0);
		CHECK(conf_is_uuid7(ids[i]));
	}
	CHECK(strcmp(ids[0], ids[1]) < 0 && strcmp(ids[1], ids[2]) < 0);
	/* a run that does not wait is not woken: its version stays */
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK(rec->version == v0);
	dura_record_free(rec);

	dura_signal *sig = NULL;
	REQUIRE_RC(dura_store_signal_next(s, id, "a", &sig), 0);
	CHECK_STR(sig->signal_id, ids[0]);
	CHECK_STR(sig->run_id, id);
	CHECK_STR(sig->name, "a");
	CHECK(conf_json_same(sig->payload, payloads[0]));
	CHECK(sig->created_at >= before - 2000 && conf_near_now(sig->created_at, 5000));
	dura_signal_free(sig);
	/* read only: the same again */
	REQUIRE_RC(dura_store_signal_next(s, id, "a", &sig), 0);
	CHECK_STR(sig->signal_id, ids[0]);
	dura_signal_free(sig);
	REQUIRE_RC(dura_store_signal_next(s, id, "b", &sig), 0);
	CHECK_STR(sig->signal_id, ids[1]);
	CHECK(conf_json_same(sig->payload, payloads[1]));
	dura_signal_free(sig);
	sig = NULL;
	CHECK_RC(dura_store_signal_next(s, id, "c", &sig), DURA_ENOTFOUND);
	CHECK(sig == NULL);
	/* names are exact, not prefixes or case-folded */
	CHECK_RC(dura_store_signal_next(s, id, "A", &sig), DURA_ENOTFOUND);

	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(s, id, &l), 0);
	REQUIRE(l.count == 3);
	for (int i = 0; i < 3; i++) {
		CHECK_STR(l.items[i].signal_id, ids[i]);
		CHECK_STR(l.items[i].run_id, id);
		CHECK_STR(l.items[i].name, names[i]);
		CHECK(conf_json_same(l.items[i].payload, payloads[i]));
		CHECK(l.items[i].created_at > 0);
	}
	CHECK(l.items[0].created_at <= l.items[1].created_at && l.items[1].created_at <= l.items[2].created_at);
	dura_signal_list_free(&l);
	CHECK(l.count == 0 && l.items == NULL);

	/* another run's inbox is its own; an unknown run has none */
	char other[128], unknown[96];
	REQUIRE_RC(make_run(s, wf, NULL, other, sizeof other), 0);
	CHECK(signal_count(s, other) == 0);
	CHECK_RC(dura_store_signal_next(s, other, "a", &sig), DURA_ENOTFOUND);
	conf_name(unknown, sizeof unknown, "conf-no-such-run");
	CHECK(signal_count(s, unknown) == 0);
}

/* A commit with signal_id consumes exactly that signal; a second consumption is a conflict that writes nothing. */
STORE_TEST(waiting_signal_consume)
{
	NEED_WAITING(s);
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-wait-consume");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	char x[DURA_UUID_LEN + 1], y[DURA_UUID_LEN + 1], z[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_store_signal_send(s, id, "a", "{\"v\":\"x\"}", x), 0);
	REQUIRE_RC(dura_store_signal_send(s, id, "b", "{\"v\":\"y\"}", y), 0);
	REQUIRE_RC(dura_store_signal_send(s, id, "a", "{\"v\":\"z\"}", z), 0);
	dura_record *rec = get_run(s, id);
	REQUIRE(rec != NULL);
	int64_t v = rec->version;
	dura_record_free(rec);

	dura_commit c = commit_of(id, v, "take-x");
	c.state = "{\"got\":\"x\"}";
	c.signal_id = x;
	dura_commit_result res;
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	CHECK(res.new_version == v + 1);
	dura_signal *sig = NULL;
	REQUIRE_RC(dura_store_signal_next(s, id, "a", &sig), 0);
	CHECK_STR(sig->signal_id, z);
	dura_signal_free(sig);
	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(s, id, &l), 0);
	CHECK(l.count == 2);
	if (l.count == 2) {
		CHECK_STR(l.items[0].signal_id, y);
		CHECK_STR(l.items[1].signal_id, z);
	}
	dura_signal_list_free(&l);

	/* the same signal again, at the fresh version: conflict, nothing written */
	REQUIRE((rec = get_run(s, id)) != NULL);
	c = commit_of(id, rec->version, "take-x-again");
	c.state = "{\"got\":\"x twice\"}";
	c.run_state = DURA_RUN_COMPLETED;
	c.signal_id = x;
	CHECK_RC(dura_store_commit(s, &c, &res), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	dura_record *after = get_run(s, id);
	REQUIRE(after != NULL);
	CHECK(after->version == rec->version);
	CHECK(after->step_no == rec->step_no);
	CHECK(after->run_state == DURA_RUN_RUNNING);
	CHECK(conf_json_same(after->state, "{\"got\":\"x\"}"));
	CHECK(conf_history_count(s, id) == 1);
	dura_record_free(after);
	CHECK(signal_count(s, id) == 2);

	/* a signal of another run is not this run's to consume */
	char other[128], o[DURA_UUID_LEN + 1];
	REQUIRE_RC(make_run(s, wf, NULL, other, sizeof other), 0);
	REQUIRE_RC(dura_store_signal_send(s, other, "a", "1", o), 0);
	c = commit_of(id, rec->version, "take-other");
	c.signal_id = o;
	CHECK_RC(dura_store_commit(s, &c, &res), DURA_ECONFLICT);
	CHECK(signal_count(s, other) == 1);
	REQUIRE((after = get_run(s, id)) != NULL);
	CHECK(after->version == rec->version);
	dura_record_free(after);
	dura_record_free(rec);
}

/* A commit with a stale expect_version does not consume its signal. */
STORE_TEST(waiting_signal_consume_stale)
{
	NEED_WAITING(s);
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-wait-stale");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	char x[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_store_signal_send(s, id, "a", "{\"v\":1}", x), 0);
	dura_record *rec = get_run(s, id);
	REQUIRE(rec != NULL);
	int64_t v = rec->version;
	dura_record_free(rec);
	REQUIRE_RC(conf_commit(s, id, v, "move-on", "{}", DURA_COMMIT_NO_EVENT, NULL), 0);

	dura_commit c = commit_of(id, v, "stale");
	c.signal_id = x;
	CHECK_RC(dura_store_commit(s, &c, NULL), DURA_ECONFLICT);
	dura_signal *sig = NULL;
	REQUIRE_RC(dura_store_signal_next(s, id, "a", &sig), 0);
	CHECK_STR(sig->signal_id, x);
	dura_signal_free(sig);
	CHECK(signal_count(s, id) == 1);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK(rec->version == v + 1);
	CHECK(rec->step_no == 1);

	/* and with the right version it is consumed */
	c = commit_of(id, rec->version, "fresh");
	c.signal_id = x;
	CHECK_RC(dura_store_commit(s, &c, NULL), 0);
	CHECK(signal_count(s, id) == 0);
	dura_record_free(rec);
}

/* wake makes a run due only when it waits for exactly that, and it can then be claimed. */
STORE_TEST(waiting_wake)
{
	NEED_WAITING(s);
	char wf[96], id[128], owner[96], unknown[96];
	conf_name(wf, sizeof wf, "conf-wait-wake");
	conf_name(owner, sizeof owner, "conf-owner");
	conf_name(unknown, sizeof unknown, "conf-no-such-run");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	int64_t later = dura_now_ms() + HOUR_MS;
	REQUIRE_RC(set_wait(s, id, "signal:go", later), 0);
	dura_record *before = get_run(s, id);
	REQUIRE(before != NULL);
	CHECK_STR(before->wait, "signal:go");
	CHECK(before->next_run_at >= later - 1000);

	const char *wfs[1] = {wf};
	dura_record_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_claim_runs(s, owner, wfs, 1, 10, 30000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);

	CHECK_RC(dura_store_wake(s, id, "signal:other"), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK_RC(dura_store_wake(s, id, "sleep"), DURA_ENOTFOUND);
	CHECK_RC(dura_store_wake(s, unknown, "signal:go"), DURA_ENOTFOUND);
	dura_record *rec = get_run(s, id);
	REQUIRE(rec != NULL);
	CHECK(rec->version == before->version);
	CHECK(rec->next_run_at == before->next_run_at);
	CHECK_STR(rec->wait, "signal:go");
	dura_record_free(rec);

	CHECK_RC(dura_store_wake(s, id, "signal:go"), 0);
	REQUIRE((rec = get_run(s, id)) != NULL);
	CHECK(rec->next_run_at <= dura_now_ms() + 5);
	CHECK(rec->version == before->version + 1);
	CHECK(rec->step_no == before->step_no);
	CHECK(rec->updated_at >= before->updated_at);
	/* the wait is left for the next commit to replace */
	CHECK_STR(rec->wait, "signal:go");
	dura_record_free(rec);

	REQUIRE_RC(dura_store_claim_runs(s, owner, wfs, 1, 10, 30000, &l), 0);
	CHECK(l.count == 1 && list_has(&l, id));
	dura_record_list_free(&l);
	CHECK_RC(dura_store_release_lease(s, id, owner), 0);
	dura_record_free(before);
}

/* signal_send wakes a running run that waits for that signal, and no other. */
STORE_TEST(waiting_signal_wakes)
{
	NEED_WAITING(s);
	char wf[96], go[128], other[128], plain[128], paused[128];
	conf_name(wf, sizeof wf, "conf-wait-sigwake");
	int64_t later = dura_now_ms() + HOUR_MS;
	REQUIRE_RC(make_run(s, wf, NULL, go, sizeof go), 0);
	REQUIRE_RC(make_run(s, wf, NULL, other, sizeof other), 0);
	REQUIRE_RC(make_run(s, wf, NULL, plain, sizeof plain), 0);
	REQUIRE_RC(make_run(s, wf, NULL, paused, sizeof paused), 0);
	REQUIRE_RC(set_wait(s, go, "signal:go", later), 0);
	REQUIRE_RC(set_wait(s, other, "signal:other", later), 0);
	REQUIRE_RC(set_wait(s, paused, "signal:go", later), 0);
	REQUIRE_RC(dura_store_set_run_state(s, paused, DURA_RUN_PAUSED, NULL), 0);

	dura_record *b_go = get_run(s, go), *b_other = get_run(s, other), *b_plain = get_run(s, plain),
		    *b_paused = get_run(s, paused);
	if (!b_go || !b_other || !b_plain || !b_paused) {
		dura_record_free(b_go);
		dura_record_free(b_other);
		dura_record_free(b_plain);
		dura_record_free(b_paused);
		REQUIRE(0);
	}

	CHECK_RC(dura_store_signal_send(s, go, "go", "{}", NULL), 0);
	CHECK_RC(dura_store_signal_send(s, other, "go", "{}", NULL), 0);
	CHECK_RC(dura_store_signal_send(s, plain, "go", "{}", NULL), 0);
	CHECK_RC(dura_store_signal_send(s, paused, "go", "{}", NULL), 0);
	int64_t now = dura_now_ms();

	dura_record *rec = get_run(s, go);
	if (rec) {
		CHECK(rec->next_run_at <= now + 5);
		CHECK(rec->version == b_go->version + 1);
		CHECK(rec->run_state == DURA_RUN_RUNNING);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, other)) != NULL) {
		CHECK(rec->version == b_other->version);
		CHECK(rec->next_run_at == b_other->next_run_at);
		CHECK_STR(rec->wait, "signal:other");
		dura_record_free(rec);
	}
	if ((rec = get_run(s, plain)) != NULL) {
		CHECK(rec->version == b_plain->version);
		CHECK(rec->next_run_at == b_plain->next_run_at);
		dura_record_free(rec);
	}
	/* a paused run keeps the signal but is not woken */
	if ((rec = get_run(s, paused)) != NULL) {
		CHECK(rec->version == b_paused->version);
		CHECK(rec->next_run_at == b_paused->next_run_at);
		CHECK(rec->run_state == DURA_RUN_PAUSED);
		dura_record_free(rec);
	}
	/* every run got its signal */
	CHECK(signal_count(s, go) == 1);
	CHECK(signal_count(s, other) == 1);
	CHECK(signal_count(s, plain) == 1);
	CHECK(signal_count(s, paused) == 1);
	dura_record_free(b_go);
	dura_record_free(b_other);
	dura_record_free(b_plain);
	dura_record_free(b_paused);
}

/* A commit's wake_run_id wakes the other run when its wait matches and leaves it alone otherwise. */
STORE_TEST(waiting_commit_wakes)
{
	NEED_WAITING(s);
	char wf[96], parent[128], child[128], bystander[128];
	conf_name(wf, sizeof wf, "conf-wait-cwake");
	int64_t later = dura_now_ms() + HOUR_MS;
	REQUIRE_RC(make_run(s, wf, NULL, parent, sizeof parent), 0);
	REQUIRE_RC(make_run(s, wf, parent, child, sizeof child), 0);
	REQUIRE_RC(make_run(s, wf, NULL, bystander, sizeof bystander), 0);
	char child_wait[160];
	snprintf(child_wait, sizeof child_wait, "child:%s", child);
	REQUIRE_RC(set_wait(s, parent, child_wait, later), 0);
	REQUIRE_RC(set_wait(s, bystander, "signal:done", later), 0);
	dura_record *b_parent = get_run(s, parent), *b_by = get_run(s, bystander), *b_child = get_run(s, child);
	if (!b_parent || !b_by || !b_child) {
		dura_record_free(b_parent);
		dura_record_free(b_by);
		dura_record_free(b_child);
		REQUIRE(0);
	}

	/* the bystander does not wait for the child: the commit goes in, it stays asleep */
	dura_commit c = commit_of(child, b_child->version, "step");
	c.wake_run_id = bystander;
	c.wake_wait = child_wait;
	dura_commit_result res;
	CHECK_RC(dura_store_commit(s, &c, &res), 0);
	dura_record *rec = get_run(s, bystander);
	if (rec) {
		CHECK(rec->version == b_by->version);
		CHECK(rec->next_run_at == b_by->next_run_at);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, child)) != NULL) {
		CHECK(rec->version == b_child->version + 1);
		CHECK(rec->step_no == b_child->step_no + 1);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, parent)) != NULL) {
		CHECK(rec->version == b_parent->version);
		dura_record_free(rec);
	}

	/* the child's last commit wakes the parent that waits for it */
	c = commit_of(child, b_child->version + 1, "end");
	c.status = "";
	c.run_state = DURA_RUN_COMPLETED;
	c.wake_run_id = parent;
	c.wake_wait = child_wait;
	CHECK_RC(dura_store_commit(s, &c, &res), 0);
	if ((rec = get_run(s, parent)) != NULL) {
		CHECK(rec->version == b_parent->version + 1);
		CHECK(rec->next_run_at <= dura_now_ms() + 5);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, child)) != NULL) {
		CHECK(rec->run_state == DURA_RUN_COMPLETED);
		dura_record_free(rec);
	}

	/* a conflicting commit wakes nobody */
	REQUIRE_RC(set_wait(s, bystander, child_wait, later), 0);
	dura_record_free(b_by);
	b_by = get_run(s, bystander);
	if (b_by) {
		c = commit_of(child, b_child->version, "stale");
		c.wake_run_id = bystander;
		c.wake_wait = child_wait;
		CHECK_RC(dura_store_commit(s, &c, &res), DURA_ECONFLICT);
		if ((rec = get_run(s, bystander)) != NULL) {
			CHECK(rec->version == b_by->version);
			CHECK(rec->next_run_at == b_by->next_run_at);
			dura_record_free(rec);
		}
	}
	dura_record_free(b_parent);
	dura_record_free(b_by);
	dura_record_free(b_child);
}

/* commit_batch consumes signals and wakes runs per commit, and a conflicting one writes nothing. */
STORE_TEST(waiting_commit_batch)
{
	NEED_WAITING(s);
	char wf[96], a[128], b[128], sleeper[128];
	conf_name(wf, sizeof wf, "conf-wait-batch");
	REQUIRE_RC(make_run(s, wf, NULL, a, sizeof a), 0);
	REQUIRE_RC(make_run(s, wf, NULL, b, sizeof b), 0);
	REQUIRE_RC(make_run(s, wf, NULL, sleeper, sizeof sleeper), 0);
	REQUIRE_RC(set_wait(s, sleeper, "signal:batch", dura_now_ms() + HOUR_MS), 0);
	char sa[DURA_UUID_LEN + 1], sb[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_store_signal_send(s, a, "x", "1", sa), 0);
	REQUIRE_RC(dura_store_signal_send(s, b, "x", "2", sb), 0);
	/* b's signal is consumed before the batch */
	dura_record *ra = get_run(s, a), *rb = get_run(s, b), *rs = get_run(s, sleeper);
	if (!ra || !rb || !rs) {
		dura_record_free(ra);
		dura_record_free(rb);
		dura_record_free(rs);
		REQUIRE(0);
	}
	dura_commit first = commit_of(b, rb->version, "take");
	first.signal_id = sb;
	CHECK_RC(dura_store_commit(s, &first, NULL), 0);

	dura_commit cs[2];
	cs[0] = commit_of(a, ra->version, "take");
	cs[0].signal_id = sa;
	cs[0].wake_run_id = sleeper;
	cs[0].wake_wait = "signal:batch";
	cs[1] = commit_of(b, rb->version + 1, "take-again");
	cs[1].signal_id = sb;
	dura_commit_result res[2];
	memset(res, 0, sizeof res);
	CHECK_RC(dura_store_commit_batch(s, cs, 2, res), DURA_ECONFLICT);
	CHECK(res[0].code == 0);
	CHECK(res[1].code == DURA_ECONFLICT);
	CHECK(signal_count(s, a) == 0);
	dura_record *rec = get_run(s, a);
	if (rec) {
		CHECK(rec->version == ra->version + 1);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, b)) != NULL) {
		CHECK(rec->version == rb->version + 1);
		CHECK(rec->step_no == rb->step_no + 1);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, sleeper)) != NULL) {
		CHECK(rec->version == rs->version + 1);
		CHECK(rec->next_run_at <= dura_now_ms() + 5);
		dura_record_free(rec);
	}
	dura_record_free(ra);
	dura_record_free(rb);
	dura_record_free(rs);
}

/* Resuming a sleeper keeps its next_run_at; resuming a run without a wait makes it due now. */
STORE_TEST(waiting_resume)
{
	NEED_WAITING(s);
	char wf[96], sleeper[128], plain[128];
	conf_name(wf, sizeof wf, "conf-wait-resume");
	int64_t later = dura_now_ms() + HOUR_MS;
	REQUIRE_RC(make_run(s, wf, NULL, sleeper, sizeof sleeper), 0);
	REQUIRE_RC(make_run(s, wf, NULL, plain, sizeof plain), 0);
	REQUIRE_RC(set_wait(s, sleeper, "sleep", later), 0);
	REQUIRE_RC(set_wait(s, plain, NULL, later), 0);
	dura_record *b = get_run(s, sleeper);
	REQUIRE(b != NULL);
	int64_t due = b->next_run_at;
	dura_record_free(b);
	CHECK(due > dura_now_ms());

	int64_t v1 = 0, v2 = 0;
	REQUIRE_RC(dura_store_set_run_state(s, sleeper, DURA_RUN_PAUSED, &v1), 0);
	/* a paused run is not woken */
	CHECK_RC(dura_store_wake(s, sleeper, "sleep"), DURA_ENOTFOUND);
	REQUIRE_RC(dura_store_set_run_state(s, sleeper, DURA_RUN_RUNNING, &v2), 0);
	CHECK(v2 == v1 + 1);
	dura_record *rec = get_run(s, sleeper);
	REQUIRE(rec != NULL);
	CHECK(rec->run_state == DURA_RUN_RUNNING);
	CHECK(rec->next_run_at > dura_now_ms());
	CHECK(rec->next_run_at == due);
	CHECK_STR(rec->wait, "sleep");
	CHECK(rec->version == v2);
	dura_record_free(rec);

	REQUIRE_RC(dura_store_set_run_state(s, plain, DURA_RUN_PAUSED, NULL), 0);
	REQUIRE_RC(dura_store_set_run_state(s, plain, DURA_RUN_RUNNING, NULL), 0);
	REQUIRE((rec = get_run(s, plain)) != NULL);
	CHECK(rec->run_state == DURA_RUN_RUNNING);
	CHECK(rec->next_run_at <= dura_now_ms() + 5);
	CHECK_STR(rec->wait, "");
	dura_record_free(rec);
}

/* Cancelling a child wakes the parent that waits for that child, and only that one. */
STORE_TEST(waiting_cancel_child)
{
	NEED_WAITING(s);
	char wf[96], parent[128], waited[128], sibling[128];
	conf_name(wf, sizeof wf, "conf-wait-cancel");
	REQUIRE_RC(make_run(s, wf, NULL, parent, sizeof parent), 0);
	REQUIRE_RC(make_run(s, wf, parent, waited, sizeof waited), 0);
	REQUIRE_RC(make_run(s, wf, parent, sibling, sizeof sibling), 0);
	char wait[160];
	snprintf(wait, sizeof wait, "child:%s", waited);
	REQUIRE_RC(set_wait(s, parent, wait, dura_now_ms() + HOUR_MS), 0);
	dura_record *b = get_run(s, parent);
	REQUIRE(b != NULL);

	REQUIRE_RC(dura_store_set_run_state(s, sibling, DURA_RUN_CANCELLED, NULL), 0);
	dura_record *rec = get_run(s, parent);
	if (rec) {
		CHECK(rec->version == b->version);
		CHECK(rec->next_run_at == b->next_run_at);
		dura_record_free(rec);
	}
	/* pausing the waited child wakes nobody either */
	REQUIRE_RC(dura_store_set_run_state(s, waited, DURA_RUN_PAUSED, NULL), 0);
	if ((rec = get_run(s, parent)) != NULL) {
		CHECK(rec->version == b->version);
		dura_record_free(rec);
	}

	REQUIRE_RC(dura_store_set_run_state(s, waited, DURA_RUN_CANCELLED, NULL), 0);
	if ((rec = get_run(s, parent)) != NULL) {
		CHECK(rec->version == b->version + 1);
		CHECK(rec->next_run_at <= dura_now_ms() + 5);
		CHECK(rec->run_state == DURA_RUN_RUNNING);
		dura_record_free(rec);
	}
	if ((rec = get_run(s, waited)) != NULL) {
		CHECK(rec->run_state == DURA_RUN_CANCELLED);
		dura_record_free(rec);
	}
	dura_record_free(b);
}

/* delete_run_data removes the run's signals with its data. */
STORE_TEST(waiting_delete_data)
{
	NEED_WAITING(s);
	char wf[96], id[128], keep[128];
	conf_name(wf, sizeof wf, "conf-wait-deldata");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	REQUIRE_RC(make_run(s, wf, NULL, keep, sizeof keep), 0);
	REQUIRE_RC(dura_store_signal_send(s, id, "a", "{\"secret\":1}", NULL), 0);
	REQUIRE_RC(dura_store_signal_send(s, id, "b", "{\"secret\":2}", NULL), 0);
	REQUIRE_RC(dura_store_signal_send(s, keep, "a", "{}", NULL), 0);
	REQUIRE_RC(end_run(s, id, DURA_RUN_COMPLETED), 0);
	REQUIRE_RC(end_run(s, keep, DURA_RUN_COMPLETED), 0);
	CHECK(signal_count(s, id) == 2);
	REQUIRE_RC(dura_store_delete_run_data(s, id), 0);
	CHECK(signal_count(s, id) == 0);
	dura_signal *sig = NULL;
	CHECK_RC(dura_store_signal_next(s, id, "a", &sig), DURA_ENOTFOUND);
	/* another run's signals stay */
	CHECK(signal_count(s, keep) == 1);

	/* set_run_state to data_deleted does the same */
	REQUIRE_RC(dura_store_set_run_state(s, keep, DURA_RUN_DATA_DELETED, NULL), 0);
	CHECK(signal_count(s, keep) == 0);
}

/* schedule_set checks cron, zone and catch_up, and a refused schedule is not stored. */
STORE_TEST(waiting_schedule_bad)
{
	NEED_WAITING(s);
	char name[96], wf[96];
	conf_name(name, sizeof name, "conf-sched-bad");
	conf_name(wf, sizeof wf, "conf-sched-wf");
	dura_schedule_spec sp = DURA_SCHEDULE_SPEC_INIT;
	sp.name = name;
	sp.cron = "61 * * * *";
	sp.workflow = wf;
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	sp.cron = "*/5 * * * *";
	sp.zone = "Mars/Olympus";
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	sp.zone = "UTC";
	sp.catch_up = -1;
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	sp.catch_up = 1001;
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	sp.catch_up = 0;
	sp.state = "not json";
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	sp.state = NULL;
	sp.name = "";
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);
	sp.name = name;
	sp.workflow = NULL;
	CHECK_RC(dura_store_schedule_set(s, &sp), DURA_EINVAL);

	dura_schedule *sch = NULL;
	CHECK_RC(dura_store_schedule_get(s, name, &sch), DURA_ENOTFOUND);
	CHECK(sch == NULL);
	dura_schedules l;
	REQUIRE_RC(dura_store_schedule_list(s, &l), 0);
	for (size_t i = 0; i < l.count; i++)
		CHECK(strcmp(l.items[i].name, name) != 0);
	dura_schedules_free(&l);
}

/* schedule set/get/list/advance/delete: every field, created_at kept on replace, the compare-and-swap. */
STORE_TEST(waiting_schedules)
{
	NEED_WAITING(s);
	char base[96], name[128], wf[96];
	conf_name(base, sizeof base, "conf-sched");
	snprintf(name, sizeof name, "%s-b", base);
	conf_name(wf, sizeof wf, "conf-sched-wf");
	int64_t before = dura_now_ms();
	dura_schedule_spec sp = DURA_SCHEDULE_SPEC_INIT;
	sp.name = name;
	sp.cron = "*/5 * * * *";
	sp.zone = "Europe/Berlin";
	sp.workflow = wf;
	sp.state = "{\"k\":1}";
	sp.catch_up = 3;
	REQUIRE_RC(dura_store_schedule_set(s, &sp), 0);

	dura_schedule *sch = NULL;
	REQUIRE_RC(dura_store_schedule_get(s, name, &sch), 0);
	CHECK_STR(sch->name, name);
	CHECK_STR(sch->cron, "*/5 * * * *");
	CHECK_STR(sch->zone, "Europe/Berlin");
	CHECK_STR(sch->workflow_name, wf);
	CHECK(conf_json_same(sch->state, "{\"k\":1}"));
	CHECK(sch->catch_up == 3);
	CHECK(sch->next_tick > before);
	CHECK(sch->next_tick % 1000 == 0);
	CHECK(sch->next_tick % 300000 == 0); /* a whole five minutes (Berlin is a whole hour off UTC) */
	CHECK(sch->next_tick <= dura_now_ms() + 300000);
	CHECK(sch->created_at > 0 && conf_near_now(sch->created_at, 5000));
	CHECK(sch->updated_at >= sch->created_at);
	int64_t created = sch->created_at, updated = sch->updated_at, tick = sch->next_tick;
	dura_schedule_free(sch);
	sch = NULL;

	/* replace: created_at kept, cron and next_tick changed */
	conf_sleep_ms(5);
	sp.cron = "1 1 1 1 *";
	sp.zone = NULL;
	sp.state = NULL;
	sp.catch_up = 0;
	REQUIRE_RC(dura_store_schedule_set(s, &sp), 0);
	REQUIRE_RC(dura_store_schedule_get(s, name, &sch), 0);
	CHECK_STR(sch->cron, "1 1 1 1 *");
	CHECK_STR(sch->zone, "UTC");
	CHECK(conf_json_same(sch->state, "{}"));
	CHECK(sch->catch_up == 0);
	CHECK(sch->created_at == created);
	CHECK(sch->updated_at >= updated);
	CHECK(sch->next_tick != tick);
	CHECK(sch->next_tick > dura_now_ms());
	CHECK(sch->next_tick % 60000 == 0);
	tick = sch->next_tick;
	dura_schedule_free(sch);
	sch = NULL;

	/* list: by name, byte order; two more of ours around it */
	char name_a[128], name_c[128];
	snprintf(name_a, sizeof name_a, "%s-a", base);
	snprintf(name_c, sizeof name_c, "%s-c", base);
	sp.name = name_c;
	sp.cron = "@hourly";
	REQUIRE_RC(dura_store_schedule_set(s, &sp), 0);
	sp.name = name_a;
	REQUIRE_RC(dura_store_schedule_set(s, &sp), 0);
	dura_schedules l;
	REQUIRE_RC(dura_store_schedule_list(s, &l), 0);
	const char *mine[3] = {name_a, name, name_c};
	size_t k = 0;
	for (size_t i = 0; i < l.count; i++) {
		if (i > 0)
			CHECK(strcmp(l.items[i - 1].name, l.items[i].name) < 0);
		if (strncmp(l.items[i].name, base, strlen(base)) != 0)
			continue;
		if (k < 3) {
			CHECK_STR(l.items[i].name, mine[k]);
			if (strcmp(l.items[i].name, name) == 0) {
				CHECK_STR(l.items[i].cron, "1 1 1 1 *");
				CHECK_STR(l.items[i].workflow_name, wf);
				CHECK(l.items[i].next_tick == tick);
				CHECK(l.items[i].created_at == created);
			}
		}
		k++;
	}
	CHECK(k == 3);
	dura_schedules_free(&l);
	CHECK(l.count == 0 && l.items == NULL);

	/* advance: a compare-and-swap on next_tick */
	int64_t to = tick + 300000;
	CHECK_RC(dura_store_schedule_advance(s, name, tick, to), 0);
	CHECK_RC(dura_store_schedule_advance(s, name, tick, to), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	char unknown[96];
	conf_name(unknown, sizeof unknown, "conf-sched-none");
	CHECK_RC(dura_store_schedule_advance(s, unknown, tick, to), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	REQUIRE_RC(dura_store_schedule_get(s, name, &sch), 0);
	CHECK(sch->next_tick == to);
	CHECK(sch->created_at == created);
	dura_schedule_free(sch);
	sch = NULL;
	/* the far end of time is a valid tick */
	CHECK_RC(dura_store_schedule_advance(s, name, to, INT64_C(253402300799000)), 0);
	REQUIRE_RC(dura_store_schedule_get(s, name, &sch), 0);
	CHECK(sch->next_tick == INT64_C(253402300799000));
	dura_schedule_free(sch);
	sch = NULL;

	/* delete */
	CHECK_RC(dura_store_schedule_delete(s, name), 0);
	CHECK_RC(dura_store_schedule_get(s, name, &sch), DURA_ENOTFOUND);
	CHECK(sch == NULL);
	CHECK_RC(dura_store_schedule_delete(s, name), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK_RC(dura_store_schedule_advance(s, name, to, to + 1), DURA_ENOTFOUND);
	/* the others stay until deleted */
	REQUIRE_RC(dura_store_schedule_get(s, name_a, &sch), 0);
	dura_schedule_free(sch);
	CHECK_RC(dura_store_schedule_delete(s, name_a), 0);
	CHECK_RC(dura_store_schedule_delete(s, name_c), 0);
}

/* Signals sent from 4 threads at once: all 100 kept with distinct ids, consumed once each in list order. */
enum { RACE_THREADS = 4, RACE_EACH = 25 };

struct race_arg {
	dura_store *s;
	const char *run_id;
	int t;
	int errors;
};

static void *race_send(void *p)
{
	struct race_arg *a = p;
	for (int k = 0; k < RACE_EACH; k++) {
		char payload[64];
		snprintf(payload, sizeof payload, "{\"t\":%d,\"k\":%d}", a->t, k);
		if (dura_store_signal_send(a->s, a->run_id, "n", payload, NULL) != 0)
			a->errors++;
	}
	return NULL;
}

/* The thread and sequence numbers of a race payload; 0 or -1. */
static int race_payload(const char *payload, int *t, int *k)
{
	json_error_t err;
	json_t *j = json_loads(payload, 0, &err);
	int ok = j && json_is_integer(json_object_get(j, "t")) && json_is_integer(json_object_get(j, "k"));
	if (ok) {
		*t = (int)json_integer_value(json_object_get(j, "t"));
		*k = (int)json_integer_value(json_object_get(j, "k"));
	}
	json_decref(j);
	return ok && *t >= 0 && *t < RACE_THREADS && *k >= 0 && *k < RACE_EACH ? 0 : -1;
}

STORE_TEST(waiting_signal_race)
{
	NEED_WAITING(s);
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-wait-race");
	REQUIRE_RC(make_run(s, wf, NULL, id, sizeof id), 0);
	struct race_arg args[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	int started = 0;
	for (int i = 0; i < RACE_THREADS; i++) {
		args[i] = (struct race_arg){s, id, i, 0};
		if (pthread_create(&th[i], NULL, race_send, &args[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	REQUIRE(started == RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++)
		CHECK(args[i].errors == 0);

	dura_signal_list l;
	REQUIRE_RC(dura_store_signal_list(s, id, &l), 0);
	CHECK(l.count == RACE_THREADS * RACE_EACH);
	int seen[RACE_THREADS][RACE_EACH];
	int last[RACE_THREADS];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < RACE_THREADS; i++)
		last[i] = -1;
	for (size_t i = 0; i < l.count; i++) {
		if (i > 0)
			CHECK(strcmp(l.items[i - 1].signal_id, l.items[i].signal_id) < 0); /* by id: distinct */
		int t = -1, k = -1;
		if (race_payload(l.items[i].payload, &t, &k) != 0) {
			CHECK(!"a payload sent by a thread");
			continue;
		}
		seen[t][k]++;
		/* each thread's signals in the order it sent them */
		CHECK(k > last[t]);
		last[t] = k;
	}
	for (int t = 0; t < RACE_THREADS; t++)
		for (int k = 0; k < RACE_EACH; k++)
			CHECK(seen[t][k] == 1);

	/* consume them all, each by the commit that takes signal_next */
	dura_record *rec = get_run(s, id);
	if (!rec) {
		dura_signal_list_free(&l);
		REQUIRE(0);
	}
	int64_t v = rec->version;
	dura_record_free(rec);
	size_t consumed = 0;
	for (size_t i = 0; i < l.count; i++) {
		dura_signal *sig = NULL;
		int rc = dura_store_signal_next(s, id, "n", &sig);
		CHECK_RC(rc, 0);
		if (rc)
			break;
		CHECK_STR(sig->signal_id, l.items[i].signal_id);
		dura_commit c = commit_of(id, v, "take");
		c.signal_id = sig->signal_id;
		dura_commit_result res;
		rc = dura_store_commit(s, &c, &res);
		CHECK_RC(rc, 0);
		if (rc == 0) {
			v = res.new_version;
			consumed++;
			/* the same signal a second time: gone */
			c.expect_version = v;
			if (i == 0 || i + 1 == l.count)
				CHECK_RC(dura_store_commit(s, &c, &res), DURA_ECONFLICT);
		}
		dura_signal_free(sig);
		if (rc)
			break;
	}
	CHECK(consumed == RACE_THREADS * RACE_EACH);
	dura_signal *sig = NULL;
	CHECK_RC(dura_store_signal_next(s, id, "n", &sig), DURA_ENOTFOUND);
	CHECK(signal_count(s, id) == 0);
	if ((rec = get_run(s, id)) != NULL) {
		CHECK(rec->step_no == (int64_t)consumed);
		CHECK(rec->version == v);
		dura_record_free(rec);
	}
	dura_signal_list_free(&l);
}

const test_case conf_waiting_tests[] = {
	{"waiting_record_fields", waiting_record_fields},
	{"waiting_commit_wait", waiting_commit_wait},
	{"waiting_signal_send_refused", waiting_signal_send_refused},
	{"waiting_signal_order", waiting_signal_order},
	{"waiting_signal_consume", waiting_signal_consume},
	{"waiting_signal_consume_stale", waiting_signal_consume_stale},
	{"waiting_wake", waiting_wake},
	{"waiting_signal_wakes", waiting_signal_wakes},
	{"waiting_commit_wakes", waiting_commit_wakes},
	{"waiting_commit_batch", waiting_commit_batch},
	{"waiting_resume", waiting_resume},
	{"waiting_cancel_child", waiting_cancel_child},
	{"waiting_delete_data", waiting_delete_data},
	{"waiting_schedule_bad", waiting_schedule_bad},
	{"waiting_schedules", waiting_schedules},
	{"waiting_signal_race", waiting_signal_race},
};
const size_t conf_waiting_ntests = TEST_COUNT(conf_waiting_tests);
