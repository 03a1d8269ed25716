/*
 * conformance_flow.c - dura_store_claim: priority order, a workflow's limit
 * on runs leased at once, a limit per concurrency key, the taken-over
 * flags of a rescue, many threads claiming against one limit, and bad
 * input. A store of contract version 3 or older (the external memwrap
 * store) has none of it: it must say so (DURA_ENOTSUP) and the tests skip.
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

/* A running run of wf with priority and key; 0, or DURA_ENOTSUP for a
 * store without them (checked to say so). */
static int create_flow(dura_store *s, const char *wf, int priority, const char *key, int64_t next_run_at, char *id,
                       size_t size)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.priority = priority;
	req.concurrency_key = key;
	req.next_run_at = next_run_at;
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc == 0) {
		snprintf(id, size, "%s", r->run_id);
		CHECK(r->priority == priority);
		CHECK_STR(r->concurrency_key, key ? key : "");
		dura_record_free(r);
	}
	return rc;
}

/* expr is evaluated once */
#define NEED_FLOW(expr)                                                                 \
	do {                                                                            \
		int nf__ = (expr);                                                      \
		if (nf__ == DURA_ENOTSUP) {                                             \
			CHECK(conf_error_ok(DURA_ENOTSUP));                             \
			SKIP("the store keeps no priority (contract version 3 or older)"); \
		}                                                                       \
		REQUIRE_RC(nf__, 0);                                                    \
	} while (0)

static int claim_wf(dura_store *s, const char *owner, const char *wf, int max_running, int max_per_key, size_t max,
                    int64_t lease_ms, dura_record_list *out, int *taken)
{
	dura_claim_workflow w = {wf, max_running, max_per_key};
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = owner;
	req.workflows = &w;
	req.nworkflows = 1;
	req.max = max;
	req.lease_ms = lease_ms;
	req.taken_over = taken;
	return dura_store_claim(s, &req, out);
}

/* Higher priority first, then the earliest due, then run id; the record
 * carries both back, and claim_runs orders the same way. */
STORE_TEST(flow_priority_order)
{
	char wf[96], id[5][128];
	conf_name(wf, sizeof wf, "conf-flow-prio");
	int64_t now = dura_now_ms();
	const int prio[5] = {0, 5, -3, 5, 0};
	const int64_t due[5] = {now - 4000, now - 1000, now - 5000, now - 2000, now - 3000};
	for (int i = 0; i < 5; i++)
		NEED_FLOW(create_flow(s, wf, prio[i], NULL, due[i], id[i], sizeof id[i]));
	/* expected: 3 (5, older), 1 (5), 0 (0, older), 4 (0), 2 (-3) */
	const int want[5] = {3, 1, 0, 4, 2};
	dura_record_list l = {0};
	int taken[5] = {9, 9, 9, 9, 9};
	REQUIRE_RC(claim_wf(s, "flow-a", wf, 0, 0, 5, 60000, &l, taken), 0);
	REQUIRE(l.count == 5);
	for (int i = 0; i < 5; i++) {
		CHECK_STR(l.items[i].run_id, id[want[i]]);
		CHECK(l.items[i].priority == prio[want[i]]);
		CHECK_STR(l.items[i].lease_owner, "flow-a");
		CHECK(taken[i] == 0); /* never leased before */
	}
	dura_record_list_free(&l);
	/* claim_runs: the same order */
	char wf2[96], id2[3][128];
	conf_name(wf2, sizeof wf2, "conf-flow-prio2");
	const int p2[3] = {-1, 7, 0};
	for (int i = 0; i < 3; i++)
		REQUIRE_RC(create_flow(s, wf2, p2[i], NULL, now - 1000, id2[i], sizeof id2[i]), 0);
	const char *wfs[1] = {wf2};
	REQUIRE_RC(dura_store_claim_runs(s, "flow-b", wfs, 1, 2, 60000, &l), 0);
	REQUIRE(l.count == 2);
	CHECK_STR(l.items[0].run_id, id2[1]);
	CHECK_STR(l.items[1].run_id, id2[2]);
	dura_record_list_free(&l);
	/* and the priority is kept: get_run and list_runs give it back */
	dura_record *r = NULL;
	REQUIRE_RC(dura_store_get_run(s, id2[0], &r), 0);
	CHECK(r->priority == -1);
	CHECK_STR(r->concurrency_key, "");
	dura_record_free(r);
}

/* max_running: live leases of every owner count; a release or an expiry
 * gives the room back, and the rescue is flagged. */
STORE_TEST(flow_workflow_limit)
{
	char wf[96], id[5][128];
	conf_name(wf, sizeof wf, "conf-flow-limit");
	for (int i = 0; i < 5; i++)
		NEED_FLOW(create_flow(s, wf, 0, NULL, 0, id[i], sizeof id[i]));
	dura_record_list a = {0}, b = {0};
	int taken[5];
	NEED_FLOW(claim_wf(s, "flow-a", wf, 2, 0, 5, 1500, &a, taken));
	CHECK(a.count == 2);
	REQUIRE_RC(claim_wf(s, "flow-b", wf, 2, 0, 5, 60000, &b, taken), 0);
	CHECK(b.count == 0); /* a's two are live */
	dura_record_list_free(&b);
	/* without the limit the other three are there */
	REQUIRE_RC(claim_wf(s, "flow-c", wf, 0, 0, 5, 60000, &b, NULL), 0);
	CHECK(b.count == 3);
	for (size_t i = 0; i < b.count; i++)
		CHECK_RC(dura_store_release_lease(s, b.items[i].run_id, "flow-c"), 0);
	dura_record_list_free(&b);
	/* a lets one go: one room */
	REQUIRE(a.count == 2);
	CHECK_RC(dura_store_release_lease(s, a.items[0].run_id, "flow-a"), 0);
	REQUIRE_RC(claim_wf(s, "flow-b", wf, 2, 0, 5, 60000, &b, taken), 0);
	CHECK(b.count == 1);
	if (b.count == 1)
		CHECK(taken[0] == 0); /* released, or never leased: not a rescue */
	dura_record_list_free(&b);
	/* a's other lease lapses: its room is free, and the run taken from it is a rescue */
	conf_sleep_ms(1700);
	REQUIRE_RC(claim_wf(s, "flow-b", wf, 2, 0, 5, 60000, &b, taken), 0);
	CHECK(b.count == 1);
	int rescued = 0;
	for (size_t i = 0; i < b.count; i++)
		if (strcmp(b.items[i].run_id, a.items[1].run_id) == 0) {
			rescued = 1;
			CHECK(taken[i] == 1);
		} else {
			CHECK(taken[i] == 0);
		}
	/* claim order: a's lapsed run was made first, so it is the one taken */
	CHECK(rescued);
	dura_record_list_free(&b);
	dura_record_list_free(&a);
	/* full: nothing more */
	REQUIRE_RC(claim_wf(s, "flow-d", wf, 2, 0, 5, 60000, &b, taken), 0);
	CHECK(b.count == 0);
	dura_record_list_free(&b);
}

/* max_per_key: one claim takes at most that many of a key, keyless runs
 * count only toward max_running, and a full key is passed over. */
STORE_TEST(flow_key_limit)
{
	char wf[96], id[8][128];
	conf_name(wf, sizeof wf, "conf-flow-key");
	const char *keys[8] = {"cust-a", "cust-a", "cust-a", "cust-b", "cust-b", NULL, "", "cust-c"};
	for (int i = 0; i < 8; i++)
		NEED_FLOW(create_flow(s, wf, i == 7 ? -5 : 0, keys[i], 0, id[i], sizeof id[i]));
	dura_record_list l = {0};
	REQUIRE_RC(claim_wf(s, "flow-a", wf, 0, 1, 8, 60000, &l, NULL), 0);
	/* one cust-a, one cust-b, both keyless, and cust-c (the lowest priority, last) */
	CHECK(l.count == 5);
	int a = 0, b = 0, none = 0, c = 0;
	for (size_t i = 0; i < l.count; i++) {
		const char *k = l.items[i].concurrency_key;
		a += strcmp(k, "cust-a") == 0;
		b += strcmp(k, "cust-b") == 0;
		c += strcmp(k, "cust-c") == 0;
		none += *k == '\0';
	}
	CHECK(a == 1 && b == 1 && c == 1 && none == 2);
	if (l.count == 5)
		CHECK_STR(l.items[4].concurrency_key, "cust-c");
	/* every key is full now */
	dura_record_list m = {0};
	REQUIRE_RC(claim_wf(s, "flow-b", wf, 0, 1, 8, 60000, &m, NULL), 0);
	CHECK(m.count == 0);
	dura_record_list_free(&m);
	/* releasing the cust-a run frees cust-a only */
	for (size_t i = 0; i < l.count; i++)
		if (strcmp(l.items[i].concurrency_key, "cust-a") == 0)
			CHECK_RC(dura_store_release_lease(s, l.items[i].run_id, "flow-a"), 0);
	REQUIRE_RC(claim_wf(s, "flow-b", wf, 0, 1, 8, 60000, &m, NULL), 0);
	CHECK(m.count == 1);
	if (m.count == 1)
		CHECK_STR(m.items[0].concurrency_key, "cust-a");
	dura_record_list_free(&m);
	/* and both limits at once: max_running 1 is full already */
	REQUIRE_RC(claim_wf(s, "flow-c", wf, 1, 1, 8, 60000, &m, NULL), 0);
	CHECK(m.count == 0);
	dura_record_list_free(&m);
	dura_record_list_free(&l);
}

enum { RACE_RUNS = 30, RACERS = 8, RACE_LIMIT = 3, RACE_KEY_LIMIT = 2 };

struct race {
	dura_store *s;
	const char *wf;
	int per_key; /* 1: the key limit is raced, else the workflow's */
	atomic_int go, claimed, errors, per[2];
};

static void *racer(void *arg)
{
	struct race *r = arg;
	char owner[32];
	snprintf(owner, sizeof owner, "racer-%p", (void *)&owner);
	while (!atomic_load(&r->go))
		;
	for (int round = 0; round < 20; round++) {
		dura_record_list l = {0};
		int rc = r->per_key ? claim_wf(r->s, owner, r->wf, 0, RACE_KEY_LIMIT, 2, 60000, &l, NULL)
		                    : claim_wf(r->s, owner, r->wf, RACE_LIMIT, 0, 2, 60000, &l, NULL);
		if (rc == DURA_EBUSY)
			continue;
		if (rc != 0) {
			atomic_fetch_add(&r->errors, 1);
			break;
		}
		for (size_t i = 0; i < l.count; i++) {
			atomic_fetch_add(&r->claimed, 1);
			atomic_fetch_add(&r->per[strcmp(l.items[i].concurrency_key, "k1") == 0], 1);
		}
		dura_record_list_free(&l);
	}
	return NULL;
}

/* Eight threads (each a connection of its own on a server store) claim
 * at once and never let go: together they never exceed the limit. */
static void race(dura_store *s, int per_key)
{
	char wf[96], id[128];
	conf_name(wf, sizeof wf, per_key ? "conf-flow-race-key" : "conf-flow-race");
	for (int i = 0; i < RACE_RUNS; i++)
		NEED_FLOW(create_flow(s, wf, 0, i % 2 ? "k1" : "k0", 0, id, sizeof id));
	struct race r;
	memset(&r, 0, sizeof r);
	r.s = s;
	r.wf = wf;
	r.per_key = per_key;
	pthread_t th[RACERS];
	int started = 0;
	for (int i = 0; i < RACERS; i++)
		if (pthread_create(&th[i], NULL, racer, &r) == 0)
			started++;
	atomic_store(&r.go, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	CHECK(started == RACERS);
	CHECK(atomic_load(&r.errors) == 0);
	fprintf(stderr, "    %d threads claimed %d runs (%d of k0, %d of k1)\n", started, atomic_load(&r.claimed),
	        atomic_load(&r.per[0]), atomic_load(&r.per[1]));
	if (per_key) {
		CHECK(atomic_load(&r.per[0]) == RACE_KEY_LIMIT);
		CHECK(atomic_load(&r.per[1]) == RACE_KEY_LIMIT);
	} else {
		CHECK(atomic_load(&r.claimed) == RACE_LIMIT);
	}
}

STORE_TEST(flow_concurrent_limit)
{
	race(s, 0);
}

STORE_TEST(flow_concurrent_key_limit)
{
	race(s, 1);
}

/* Bad requests: a clear error, nothing claimed. */
STORE_TEST(flow_bad_input)
{
	char wf[96], id[128];
	conf_name(wf, sizeof wf, "conf-flow-bad");
	NEED_FLOW(create_flow(s, wf, 0, NULL, 0, id, sizeof id));
	dura_record_list l = {0};
	dura_claim_workflow w = {wf, 0, 0};
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = "flow-bad";
	req.workflows = &w;
	req.nworkflows = 1;
	req.max = 1;
	req.lease_ms = 60000;
	CHECK_RC(dura_store_claim(s, NULL, &l), DURA_EINVAL);
	CHECK_RC(dura_store_claim(s, &req, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_claim(NULL, &req, &l), DURA_EINVAL);
	dura_claim bad = req;
	bad.version = DURA_CLAIM_VERSION + 1;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EVERSION);
	bad = req;
	bad.max = 0;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	bad.max = 1001;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	bad = req;
	bad.lease_ms = 0;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	bad = req;
	bad.owner = "";
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	bad = req;
	bad.workflows = NULL;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	dura_claim_workflow ws[2] = {{wf, -1, 0}, {wf, 0, 0}};
	bad = req;
	bad.workflows = ws;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	ws[0].max_running = 0;
	ws[0].max_per_key = 1000001;
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	ws[0].max_per_key = 0;
	bad.nworkflows = 2; /* the same workflow twice */
	CHECK_RC(dura_store_claim(s, &bad, &l), DURA_EINVAL);
	CHECK(l.count == 0 && l.items == NULL);
	/* nothing was claimed: the run is there for a good request */
	REQUIRE_RC(dura_store_claim(s, &req, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);
	/* a run's priority and key are checked where it is made */
	dura_run_create rq = DURA_RUN_CREATE_INIT;
	rq.workflow_name = wf;
	rq.priority = DURA_PRIORITY_MAX + 1;
	CHECK_RC(dura_store_create_run(s, &rq, NULL), DURA_EINVAL);
	rq.priority = DURA_PRIORITY_MIN - 1;
	CHECK_RC(dura_store_create_run(s, &rq, NULL), DURA_EINVAL);
	rq.priority = 0;
	rq.concurrency_key = "\xff\xfe";
	CHECK_RC(dura_store_create_run(s, &rq, NULL), DURA_EINVAL);
	/* a version-1 request is still taken, without priority or key */
	struct {
		unsigned version;
		const char *run_id, *workflow_name, *foreign_id, *state, *status;
		int run_state;
		int64_t next_run_at;
		const char *meta;
	} v1 = {1, NULL, wf, NULL, NULL, NULL, 0, 0, NULL};
	dura_record *r = NULL;
	CHECK_RC(dura_store_create_run(s, (const dura_run_create *)&v1, &r), 0);
	if (r) {
		CHECK(r->priority == 0);
		CHECK_STR(r->concurrency_key, "");
		dura_record_free(r);
	}
}

const test_case conf_flow_tests[] = {
	{"flow_priority_order", flow_priority_order},
	{"flow_workflow_limit", flow_workflow_limit},
	{"flow_key_limit", flow_key_limit},
	{"flow_concurrent_limit", flow_concurrent_limit},
	{"flow_concurrent_key_limit", flow_concurrent_key_limit},
	{"flow_bad_input", flow_bad_input},
};
const size_t conf_flow_ntests = TEST_COUNT(conf_flow_tests);
