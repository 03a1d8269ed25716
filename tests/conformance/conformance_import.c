/*
 * conformance_import.c - import (contract version 7): a whole run inserted
 * as another store had it (every field, its steps, checkpoints and
 * signals, with their times), refused whole when it is there already; the
 * imported run is a run like any other (read, listed, counted, claimed,
 * pruned); outbox events imported as they were and the outbox read page
 * by page.
 *
 * A store of contract version 6 or older skips every test
 * (dura_store_outbox_list answers DURA_ENOTSUP).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_import = -1;

static int import_probe(dura_store *s)
{
	if (g_import >= 0)
		return g_import;
	dura_event_list l;
	int rc = dura_store_outbox_list(s, NULL, 1, &l);
	if (rc == DURA_ENOTSUP)
		g_import = 0;
	else if (rc == 0)
		g_import = 1;
	else
		fprintf(stderr, "    outbox_list returned %d (%s)\n", rc, dura_error_last() ? dura_error_last()->message : "");
	dura_event_list_free(&l);
	return g_import;
}

#define NEED_IMPORT(s)                                                                \
	do {                                                                          \
		int i__ = import_probe(s);                                            \
		REQUIRE(i__ >= 0);                                                    \
		if (i__ == 0)                                                         \
			SKIP("the store cannot import (contract version below 7)"); \
	} while (0)

#define T0 INT64_C(1764000000000) /* 2025-11-24, a time in another store's past */

/* A run as an export has it: a waiting run of 3 steps, a checkpoint and two signals. */
typedef struct sample {
	char id[DURA_UUID_LEN + 1], wf[96], fid[96], cp[96], sig[2][DURA_UUID_LEN + 1];
	dura_record rec;
	dura_step steps[3];
	dura_checkpoint cps[1];
	dura_signal sigs[2];
	dura_import_run run;
} sample;

static void sample_make(sample *x, const char *base, int run_state)
{
	memset(x, 0, sizeof(*x));
	dura_uuid7(x->id);
	conf_name(x->wf, sizeof x->wf, base);
	conf_name(x->fid, sizeof x->fid, "fid");
	conf_name(x->cp, sizeof x->cp, "conf-imp-cp");
	dura_uuid7(x->sig[0]);
	dura_uuid7(x->sig[1]);
	dura_record *r = &x->rec;
	r->run_id = x->id;
	r->workflow_name = x->wf;
	r->foreign_id = x->fid;
	r->run_state = run_state;
	r->status = run_state == DURA_RUN_COMPLETED ? (char *)"" : (char *)"c";
	r->state = (char *)"{\"n\":3,\"s\":\"three\"}";
	r->version = 9;
	r->step_no = 3;
	r->attempt = 1;
	r->error = (char *)"once failed";
	r->meta = (char *)"{\"from\":\"sqlite\"}";
	r->lease_owner = (char *)"a-worker-of-the-old-store";
	r->lease_expires_at = T0 + 999999999;
	r->next_run_at = T0 + 5000;
	r->created_at = T0;
	r->updated_at = T0 + 4000;
	r->priority = 7;
	r->concurrency_key = (char *)"key-1";
	r->wait = (char *)"";
	r->parent_id = (char *)"";
	r->workflow_version = (char *)"v3";
	static const char *const nodes[] = {"a", "b", "c"};
	static const char *const states[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3,\"s\":\"three\"}"};
	static const char *const vers[] = {"v2", "v3", ""};
	for (int i = 0; i < 3; i++) {
		x->steps[i].run_id = x->id;
		x->steps[i].step = i;
		x->steps[i].node_id = (char *)nodes[i];
		x->steps[i].state = (char *)states[i];
		x->steps[i].created_at = T0 + 1000 * (i + 1);
		x->steps[i].workflow_version = (char *)vers[i];
	}
	x->cps[0] = (dura_checkpoint){x->cp, x->id, 1, (char *)"{\"n\":2}", T0 + 2500, T0 + 2600};
	x->sigs[0] = (dura_signal){x->sig[0], x->id, (char *)"go", (char *)"{\"p\":1}", T0 + 3000};
	x->sigs[1] = (dura_signal){x->sig[1], x->id, (char *)"go", (char *)"{\"p\":2}", T0 + 3100};
	x->run.record = r;
	x->run.steps = x->steps;
	x->run.nsteps = 3;
	x->run.checkpoints = x->cps;
	x->run.ncheckpoints = 1;
	x->run.signals = x->sigs;
	x->run.nsignals = 2;
}

STORE_TEST(import_run_as_it_was)
{
	NEED_IMPORT(s);
	sample x;
	sample_make(&x, "conf-imp", DURA_RUN_PAUSED);
	REQUIRE_RC(dura_store_import_run(s, &x.run), 0);
	dura_record *g = NULL;
	REQUIRE_RC(dura_store_get_run(s, x.id, &g), 0);
	CHECK_STR(g->workflow_name, x.wf);
	CHECK_STR(g->foreign_id, x.fid);
	CHECK(g->run_state == DURA_RUN_PAUSED);
	CHECK_STR(g->status, "c");
	CHECK(conf_json_same(g->state, x.rec.state));
	CHECK(g->version == 9 && g->step_no == 3 && g->attempt == 1);
	CHECK_STR(g->error, "once failed");
	CHECK(conf_json_same(g->meta, x.rec.meta));
	CHECK_STR(g->lease_owner, ""); /* the lease stays behind */
	CHECK(g->next_run_at == T0 + 5000 && g->created_at == T0 && g->updated_at == T0 + 4000);
	CHECK(g->priority == 7);
	CHECK_STR(g->concurrency_key, "key-1");
	CHECK_STR(g->workflow_version, "v3");
	dura_record_free(g);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(s, x.id, 0, 0, &h), 0);
	REQUIRE(h.count == 3);
	for (size_t i = 0; i < 3; i++) {
		CHECK(h.items[i].step == (int64_t)i);
		CHECK_STR(h.items[i].node_id, x.steps[i].node_id);
		CHECK(conf_json_same(h.items[i].state, x.steps[i].state));
		CHECK(h.items[i].created_at == x.steps[i].created_at);
		CHECK_STR(h.items[i].workflow_version, x.steps[i].workflow_version);
	}
	dura_step_list_free(&h);
	dura_checkpoint *cp = NULL;
	REQUIRE_RC(dura_store_checkpoint_load(s, x.cp, &cp), 0);
	CHECK(cp->step == 1 && conf_json_same(cp->state, "{\"n\":2}") && cp->created_at == T0 + 2500 &&
	      cp->updated_at == T0 + 2600);
	dura_checkpoint_free(cp);
	dura_signal_list sl;
	REQUIRE_RC(dura_store_signal_list(s, x.id, &sl), 0);
	REQUIRE(sl.count == 2);
	CHECK_STR(sl.items[0].signal_id, x.sig[0]);
	CHECK(conf_json_same(sl.items[1].payload, "{\"p\":2}") && sl.items[1].created_at == T0 + 3100);
	dura_signal_list_free(&sl);
	/* an active run of the workflow and foreign id: another is refused */
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = x.wf;
	req.foreign_id = x.fid;
	CHECK_RC(dura_store_create_run(s, &req, &g), DURA_EEXISTS);
	dura_record_free(g);
	/* listed and counted as any run */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = x.wf;
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);
	dura_run_count_list cl;
	REQUIRE_RC(dura_store_run_counts(s, x.wf, &cl), 0);
	CHECK(cl.count == 1 && cl.items[0].run_state == DURA_RUN_PAUSED && cl.items[0].count == 1);
	dura_run_count_list_free(&cl);

	/* resumed, it is claimable at once: the old store's lease did not come along */
	REQUIRE_RC(dura_store_set_run_state(s, x.id, DURA_RUN_RUNNING, NULL), 0);
	dura_claim_workflow cw = {x.wf, 0, 0};
	dura_claim_version cv = {x.wf, "v3"};
	dura_claim creq = DURA_CLAIM_INIT;
	creq.owner = "conf-importer";
	creq.workflows = &cw;
	creq.nworkflows = 1;
	creq.versions = &cv;
	creq.nversions = 1;
	creq.max = 5;
	creq.lease_ms = 10000;
	REQUIRE_RC(dura_store_claim(s, &creq, &l), 0);
	CHECK(l.count == 1 && strcmp(l.items[0].run_id, x.id) == 0);
	dura_record_list_free(&l);
}

STORE_TEST(import_run_refused_whole)
{
	NEED_IMPORT(s);
	sample x;
	sample_make(&x, "conf-imp-twice", DURA_RUN_RUNNING);
	REQUIRE_RC(dura_store_import_run(s, &x.run), 0);
	/* the same run again: refused, nothing changed */
	x.rec.version = 10;
	x.rec.state = (char *)"{\"other\":true}";
	CHECK_RC(dura_store_import_run(s, &x.run), DURA_EEXISTS);
	CHECK(conf_error_ok(DURA_EEXISTS));
	dura_record *g = NULL;
	REQUIRE_RC(dura_store_get_run(s, x.id, &g), 0);
	CHECK(g->version == 9 && conf_json_same(g->state, "{\"n\":3,\"s\":\"three\"}"));
	dura_record_free(g);

	/* another run, active, of the same workflow and foreign id: refused, nothing written */
	sample y;
	sample_make(&y, "conf-imp-twice", DURA_RUN_RUNNING);
	snprintf(y.wf, sizeof y.wf, "%s", x.wf);
	snprintf(y.fid, sizeof y.fid, "%s", x.fid);
	CHECK_RC(dura_store_import_run(s, &y.run), DURA_EEXISTS);
	CHECK_RC(dura_store_get_run(s, y.id, &g), DURA_ENOTFOUND);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(s, y.id, 0, 0, &h), 0);
	CHECK(h.count == 0);
	dura_step_list_free(&h);
	dura_checkpoint *cp = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, y.cp, &cp), DURA_ENOTFOUND);
	/* ended, it may sit beside the active one */
	y.rec.run_state = DURA_RUN_COMPLETED;
	y.rec.status = (char *)"";
	y.run.nsignals = 0;
	CHECK_RC(dura_store_import_run(s, &y.run), 0);

	/* bad runs are refused before the store sees them */
	sample z;
	sample_make(&z, "conf-imp-bad", DURA_RUN_RUNNING);
	z.steps[2].step = 3; /* not below step_no */
	CHECK_RC(dura_store_import_run(s, &z.run), DURA_EINVAL);
	sample_make(&z, "conf-imp-bad", DURA_RUN_RUNNING);
	z.steps[1].step = 0; /* out of order */
	CHECK_RC(dura_store_import_run(s, &z.run), DURA_EINVAL);
	sample_make(&z, "conf-imp-bad", DURA_RUN_RUNNING);
	z.sigs[0].run_id = y.id; /* another run's */
	CHECK_RC(dura_store_import_run(s, &z.run), DURA_EINVAL);
	sample_make(&z, "conf-imp-bad", DURA_RUN_RUNNING);
	z.rec.state = (char *)"{not json";
	CHECK_RC(dura_store_import_run(s, &z.run), DURA_EINVAL);
	CHECK_RC(dura_store_get_run(s, z.id, &g), DURA_ENOTFOUND);
}

/* An imported run that ended long ago goes with retention's next batch. */
STORE_TEST(import_run_then_pruned)
{
	NEED_IMPORT(s);
	sample x;
	sample_make(&x, "conf-imp-old", DURA_RUN_COMPLETED);
	x.run.nsignals = 0;
	x.run.ncheckpoints = 0;
	REQUIRE_RC(dura_store_import_run(s, &x.run), 0);
	dura_prune req = DURA_PRUNE_INIT;
	req.workflow = x.wf;
	req.run_state = DURA_RUN_COMPLETED;
	req.ended_before = T0 + 5000;
	req.whole = 1;
	req.limit = 10;
	int64_t n = 0;
	REQUIRE_RC(dura_store_prune(s, &req, &n), 0);
	CHECK(n == 1);
	dura_record *g = NULL;
	CHECK_RC(dura_store_get_run(s, x.id, &g), DURA_ENOTFOUND);
}

STORE_TEST(import_events_and_outbox_list)
{
	NEED_IMPORT(s);
	char ids[3][DURA_UUID_LEN + 1], wf[96], run[DURA_UUID_LEN + 1];
	conf_name(wf, sizeof wf, "conf-imp-ev");
	dura_uuid7(run);
	for (int i = 0; i < 3; i++)
		dura_uuid7(ids[i]);
	for (int i = 0; i < 3; i++) {
		char data[64];
		snprintf(data, sizeof data, "{\"i\":%d}", i);
		dura_event ev = {ids[i], wf, run, (char *)"step", data, T0 + i};
		REQUIRE_RC(dura_store_import_event(s, &ev), 0);
	}
	dura_event again = {ids[1], wf, run, (char *)"step", (char *)"{}", T0};
	CHECK_RC(dura_store_import_event(s, &again), DURA_EEXISTS);
	dura_event bad = {ids[1], wf, run, (char *)"step", (char *)"{nope", T0};
	CHECK_RC(dura_store_import_event(s, &bad), DURA_EINVAL);

	/* the whole outbox in id order, page by page: ours among it, as they were */
	char after[DURA_UUID_LEN + 1] = "";
	int seen = 0, ordered = 1;
	char last[DURA_UUID_LEN + 1] = "";
	for (int pages = 0; pages < 100000; pages++) {
		dura_event_list l;
		REQUIRE_RC(dura_store_outbox_list(s, after, 500, &l), 0);
		CHECK(l.count <= 500);
		for (size_t i = 0; i < l.count; i++) {
			ordered &= strcmp(l.items[i].id, last) > 0;
			snprintf(last, sizeof last, "%s", l.items[i].id);
			for (int k = 0; k < 3; k++)
				if (strcmp(l.items[i].id, ids[k]) == 0) {
					char data[64];
					snprintf(data, sizeof data, "{\"i\":%d}", k);
					CHECK(conf_json_same(l.items[i].data, data) && l.items[i].created_at == T0 + k);
					CHECK_STR(l.items[i].run_id, run);
					CHECK_STR(l.items[i].workflow_name, wf);
					CHECK_STR(l.items[i].type, "step");
					seen++;
				}
		}
		size_t n = l.count;
		if (n)
			snprintf(after, sizeof after, "%s", l.items[n - 1].id);
		dura_event_list_free(&l);
		if (n < 500)
			break;
	}
	CHECK(seen == 3);
	CHECK(ordered);
	dura_event_list one;
	REQUIRE_RC(dura_store_outbox_list(s, NULL, 1, &one), 0);
	CHECK(one.count == 1);
	dura_event_list_free(&one);
	/* after the last id: nothing of ours */
	dura_event_list l;
	REQUIRE_RC(dura_store_outbox_list(s, ids[2], 10000, &l), 0);
	for (size_t i = 0; i < l.count; i++)
		CHECK(strcmp(l.items[i].id, ids[2]) > 0);
	dura_event_list_free(&l);
	for (int i = 0; i < 3; i++)
		CHECK_RC(dura_store_outbox_ack(s, ids[i]), 0);
}

const test_case conf_import_tests[] = {
	{"import_run_as_it_was", import_run_as_it_was},
	{"import_run_refused_whole", import_run_refused_whole},
	{"import_run_then_pruned", import_run_then_pruned},
	{"import_events_and_outbox_list", import_events_and_outbox_list},
};
const size_t conf_import_ntests = TEST_COUNT(conf_import_tests);
