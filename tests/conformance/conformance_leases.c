/*
 * conformance_leases.c - claim_runs, extend_lease, release_lease, and many
 * threads claiming from one pool without ever sharing a run.
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

static int in_list(const dura_record_list *l, const char *run_id)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].run_id, run_id) == 0)
			return 1;
	return 0;
}

static int claim(dura_store *s, const char *owner, const char *wf, size_t max, int64_t lease_ms, dura_record_list *out)
{
	const char *wfs[1] = {wf};
	memset(out, 0, sizeof *out);
	return dura_store_claim_runs(s, owner, wfs, 1, max, lease_ms, out);
}

static int lease_of(dura_store *s, const char *run_id, char *owner, size_t size, int64_t *expires)
{
	dura_record *r = NULL;
	int rc = dura_store_get_run(s, run_id, &r);
	if (rc != 0)
		return rc;
	snprintf(owner, size, "%s", r->lease_owner ? r->lease_owner : "(null)");
	if (expires)
		*expires = r->lease_expires_at;
	dura_record_free(r);
	return 0;
}

/* Claim, a second owner, extend, release. */
STORE_TEST(leases_claim_extend_release)
{
	enum { N = 3 };
	char wf[96], ids[N][128];
	conf_name(wf, sizeof wf, "conf-lease");
	for (int i = 0; i < N; i++) {
		dura_record *r = NULL;
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
		snprintf(ids[i], sizeof ids[i], "%s", r->run_id);
		dura_record_free(r);
	}

	dura_record_list l;
	int64_t t0 = dura_now_ms();
	REQUIRE_RC(claim(s, "worker-a", wf, 10, 60000, &l), 0);
	CHECK(l.count == N);
	for (size_t i = 0; i < l.count; i++) {
		CHECK_STR(l.items[i].workflow_name, wf);
		CHECK_STR(l.items[i].lease_owner, "worker-a");
		CHECK(l.items[i].lease_expires_at >= t0 + 59000 && l.items[i].lease_expires_at <= dura_now_ms() + 61000);
		CHECK(l.items[i].run_state == DURA_RUN_RUNNING);
	}
	for (int i = 0; i < N; i++)
		CHECK(in_list(&l, ids[i]));
	dura_record_list_free(&l);

	char owner[64];
	int64_t exp1 = 0, exp2 = 0;
	REQUIRE_RC(lease_of(s, ids[0], owner, sizeof owner, &exp1), 0);
	CHECK_STR(owner, "worker-a");

	/* nothing left for another owner */
	REQUIRE_RC(claim(s, "worker-b", wf, 10, 60000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);

	/* extend by the owner */
	CHECK_RC(dura_store_extend_lease(s, ids[0], "worker-a", 600000), 0);
	REQUIRE_RC(lease_of(s, ids[0], owner, sizeof owner, &exp2), 0);
	CHECK_STR(owner, "worker-a");
	CHECK(exp2 > exp1 && exp2 >= dura_now_ms() + 500000);
	/* not by another */
	CHECK_RC(dura_store_extend_lease(s, ids[0], "worker-b", 600000), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	CHECK_RC(dura_store_release_lease(s, ids[0], "worker-b"), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	REQUIRE_RC(lease_of(s, ids[0], owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "worker-a");

	/* release: free for the next owner */
	CHECK_RC(dura_store_release_lease(s, ids[0], "worker-a"), 0);
	REQUIRE_RC(lease_of(s, ids[0], owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "");
	CHECK_RC(dura_store_release_lease(s, ids[0], "worker-a"), DURA_ECONFLICT);
	CHECK_RC(dura_store_extend_lease(s, ids[0], "worker-a", 60000), DURA_ECONFLICT);
	REQUIRE_RC(claim(s, "worker-b", wf, 10, 60000, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].run_id, ids[0]);
	dura_record_list_free(&l);

	/* unknown run: ENOTFOUND (the contract), not a lease conflict */
	char ghost[DURA_UUID_LEN + 1];
	dura_uuid7(ghost);
	CHECK_RC(dura_store_extend_lease(s, ghost, "worker-a", 1000), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK_RC(dura_store_release_lease(s, ghost, "worker-a"), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
}

/* max, the workflow list, and what is not runnable. */
STORE_TEST(leases_claim_filters)
{
	char wf[96], wf2[96];
	conf_name(wf, sizeof wf, "conf-lease-f");
	conf_name(wf2, sizeof wf2, "conf-lease-g");
	dura_record *r = NULL;
	char runnable[4][128], later[128], paused[128], initiated[128], done[128], other[128];
	for (int i = 0; i < 4; i++) {
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
		snprintf(runnable[i], sizeof runnable[i], "%s", r->run_id);
		dura_record_free(r);
	}
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.next_run_at = dura_now_ms() + 3600 * 1000;
	REQUIRE_RC(dura_store_create_run(s, &req, &r), 0);
	snprintf(later, sizeof later, "%s", r->run_id);
	dura_record_free(r);
	req.next_run_at = 0;
	req.run_state = DURA_RUN_PAUSED;
	REQUIRE_RC(dura_store_create_run(s, &req, &r), 0);
	snprintf(paused, sizeof paused, "%s", r->run_id);
	dura_record_free(r);
	req.run_state = DURA_RUN_INITIATED;
	REQUIRE_RC(dura_store_create_run(s, &req, &r), 0);
	snprintf(initiated, sizeof initiated, "%s", r->run_id);
	dura_record_free(r);
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
	snprintf(done, sizeof done, "%s", r->run_id);
	REQUIRE_RC(conf_commit(s, done, r->version, "end", "{}", DURA_COMMIT_NO_EVENT, NULL), 0);
	dura_record_free(r);
	REQUIRE_RC(dura_store_set_run_state(s, done, DURA_RUN_CANCELLED, NULL), 0);
	REQUIRE_RC(conf_create(s, wf2, NULL, NULL, &r), 0);
	snprintf(other, sizeof other, "%s", r->run_id);
	dura_record_free(r);

	/* max */
	dura_record_list l;
	REQUIRE_RC(claim(s, "w1", wf, 2, 60000, &l), 0);
	CHECK(l.count == 2);
	dura_record_list_free(&l);
	/* the rest: only the two remaining runnable ones */
	REQUIRE_RC(claim(s, "w2", wf, 100, 60000, &l), 0);
	CHECK(l.count == 2);
	CHECK(!in_list(&l, later) && !in_list(&l, paused) && !in_list(&l, initiated) && !in_list(&l, done));
	CHECK(!in_list(&l, other));
	dura_record_list_free(&l);

	char owner[64];
	REQUIRE_RC(lease_of(s, later, owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "");
	REQUIRE_RC(lease_of(s, paused, owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "");
	REQUIRE_RC(lease_of(s, other, owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "");
	int claimed = 0;
	for (int i = 0; i < 4; i++) {
		REQUIRE_RC(lease_of(s, runnable[i], owner, sizeof owner, NULL), 0);
		claimed += strcmp(owner, "w1") == 0 || strcmp(owner, "w2") == 0;
	}
	CHECK(claimed == 4);

	/* a commit that sets next_run_at later (a retry backoff) makes the
	 * run not due until then */
	char backoff[128];
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
	snprintf(backoff, sizeof backoff, "%s", r->run_id);
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = backoff;
	c.expect_version = r->version;
	c.node_id = "try";
	c.state = "{}";
	c.status = "try";
	c.attempt = 1;
	c.next_run_at = dura_now_ms() + 3600 * 1000;
	c.flags = DURA_COMMIT_NO_EVENT;
	dura_record_free(r);
	REQUIRE_RC(dura_store_commit(s, &c, NULL), 0);
	REQUIRE_RC(claim(s, "w5", wf, 100, 60000, &l), 0);
	CHECK(!in_list(&l, backoff));
	CHECK(l.count == 0);
	dura_record_list_free(&l);

	/* a resumed run becomes claimable */
	REQUIRE_RC(dura_store_set_run_state(s, paused, DURA_RUN_RUNNING, NULL), 0);
	REQUIRE_RC(claim(s, "w3", wf, 100, 60000, &l), 0);
	CHECK(l.count == 1 && in_list(&l, paused));
	dura_record_list_free(&l);

	/* several workflows at once */
	char wf3[96];
	conf_name(wf3, sizeof wf3, "conf-lease-h");
	REQUIRE_RC(conf_create(s, wf3, NULL, NULL, NULL), 0);
	REQUIRE_RC(conf_create(s, wf2, NULL, NULL, NULL), 0);
	const char *both[2] = {wf2, wf3};
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_claim_runs(s, "w4", both, 2, 100, 60000, &l), 0);
	CHECK(l.count == 3);
	for (size_t i = 0; i < l.count; i++)
		CHECK(strcmp(l.items[i].workflow_name, wf2) == 0 || strcmp(l.items[i].workflow_name, wf3) == 0);
	dura_record_list_free(&l);
}

/* An expired lease is claimable by another owner. */
STORE_TEST(leases_expiry)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-lease-exp");
	dura_record *r = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
	dura_record_list l;
	REQUIRE_RC(claim(s, "slow", wf, 1, 50, &l), 0);
	REQUIRE(l.count == 1);
	int64_t v_slow = l.items[0].version;
	dura_record_list_free(&l);
	conf_sleep_ms(150);
	REQUIRE_RC(claim(s, "rescuer", wf, 1, 60000, &l), 0);
	REQUIRE(l.count == 1);
	CHECK_STR(l.items[0].run_id, r->run_id);
	CHECK_STR(l.items[0].lease_owner, "rescuer");
	int64_t v_rescuer = l.items[0].version;
	dura_record_list_free(&l);
	/* the old owner lost it: its lease calls fail, and the version it
	 * holds is stale, so its commit cannot land (the version fences) */
	CHECK_RC(dura_store_extend_lease(s, r->run_id, "slow", 60000), DURA_ECONFLICT);
	CHECK_RC(dura_store_release_lease(s, r->run_id, "slow"), DURA_ECONFLICT);
	CHECK(v_rescuer != v_slow);
	CHECK_RC(conf_commit(s, r->run_id, v_slow, "late", "{\"by\":\"slow\"}", DURA_COMMIT_NO_EVENT, NULL),
	         DURA_ECONFLICT);
	CHECK_RC(conf_commit(s, r->run_id, v_rescuer, "next", "{\"by\":\"rescuer\"}", DURA_COMMIT_NO_EVENT, NULL), 0);
	CHECK(conf_history_count(s, r->run_id) == 1);
	char owner[64];
	REQUIRE_RC(lease_of(s, r->run_id, owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "rescuer");
	dura_record_free(r);
}

/* A commit keeps the lease as it is; RELEASE_LEASE gives it up. */
STORE_TEST(leases_commit_lease)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-lease-keep");
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, NULL), 0);
	dura_record_list l;
	REQUIRE_RC(claim(s, "keeper", wf, 1, 60000, &l), 0);
	REQUIRE(l.count == 1);
	char id[128];
	snprintf(id, sizeof id, "%s", l.items[0].run_id);
	int64_t v = l.items[0].version, exp = l.items[0].lease_expires_at;
	dura_record_list_free(&l);
	dura_commit_result res;
	REQUIRE_RC(conf_commit(s, id, v, "n", "{}", DURA_COMMIT_NO_EVENT, &res), 0);
	char owner[64];
	int64_t exp2 = 0;
	REQUIRE_RC(lease_of(s, id, owner, sizeof owner, &exp2), 0);
	CHECK_STR(owner, "keeper");
	CHECK(exp2 == exp);
	CHECK_RC(dura_store_extend_lease(s, id, "keeper", 60000), 0);
	/* still not claimable by others */
	REQUIRE_RC(claim(s, "other", wf, 1, 60000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);

	/* the last commit of a turn releases it in the same transaction */
	REQUIRE_RC(conf_commit(s, id, res.new_version, "m", "{}", DURA_COMMIT_NO_EVENT | DURA_COMMIT_RELEASE_LEASE, &res),
	           0);
	REQUIRE_RC(lease_of(s, id, owner, sizeof owner, NULL), 0);
	CHECK_STR(owner, "");
	CHECK_RC(dura_store_extend_lease(s, id, "keeper", 60000), DURA_ECONFLICT);
	REQUIRE_RC(claim(s, "other", wf, 1, 60000, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].lease_owner, "other");
	dura_record_list_free(&l);
	CHECK(conf_history_count(s, id) == 2);
}

/* 8 threads drain a pool of 40 runs two at a time: each run exactly once. */
enum { POOL = 40, CLAIMERS = 8 };

struct pool {
	dura_store *s;
	const char *wf;
	char ids[POOL][128];
	atomic_int hits[POOL];
	atomic_int total;
	atomic_int errors;
	atomic_int go;
	int by[POOL];
};

struct claimer {
	struct pool *p;
	int idx;
	int got;
};

static void *claimer_thread(void *arg)
{
	struct claimer *c = arg;
	struct pool *p = c->p;
	char owner[32];
	snprintf(owner, sizeof owner, "claimer-%d", c->idx);
	while (!atomic_load(&p->go)) {
	}
	int busy = 0;
	for (int rounds = 0; rounds < 10000; rounds++) {
		dura_record_list l;
		int rc = claim(p->s, owner, p->wf, 2, 600000, &l);
		if (rc == DURA_EBUSY && busy++ < 1000) {
			conf_sleep_ms(1);
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&p->errors, 1);
			break;
		}
		size_t n = l.count;
		if (n > 2)
			atomic_fetch_add(&p->errors, 1);
		for (size_t i = 0; i < n; i++) {
			int found = 0;
			for (int k = 0; k < POOL; k++) {
				if (strcmp(p->ids[k], l.items[i].run_id) == 0) {
					atomic_fetch_add(&p->hits[k], 1);
					p->by[k] = c->idx; /* only meaningful when hits == 1 */
					found = 1;
				}
			}
			if (!found || strcmp(l.items[i].lease_owner, owner) != 0)
				atomic_fetch_add(&p->errors, 1);
			atomic_fetch_add(&p->total, 1);
			c->got++;
		}
		dura_record_list_free(&l);
		if (n == 0)
			break;
	}
	return NULL;
}

STORE_TEST(leases_concurrent_claims)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-lease-pool");
	struct pool *p = calloc(1, sizeof *p);
	REQUIRE(p != NULL);
	p->s = s;
	p->wf = wf;
	for (int i = 0; i < POOL; i++) {
		dura_record *r = NULL;
		int rc = conf_create(s, wf, NULL, NULL, &r);
		if (rc != 0) {
			free(p);
			REQUIRE_RC(rc, 0);
		}
		snprintf(p->ids[i], sizeof p->ids[i], "%s", r->run_id);
		dura_record_free(r);
		atomic_init(&p->hits[i], 0);
		p->by[i] = -1;
	}
	atomic_init(&p->total, 0);
	atomic_init(&p->errors, 0);
	atomic_init(&p->go, 0);

	struct claimer cs[CLAIMERS];
	pthread_t th[CLAIMERS];
	int started = 0;
	for (int i = 0; i < CLAIMERS; i++) {
		cs[i] = (struct claimer){p, i, 0};
		if (pthread_create(&th[i], NULL, claimer_thread, &cs[i]) != 0)
			break;
		started++;
	}
	atomic_store(&p->go, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	CHECK(started == CLAIMERS);
	CHECK(atomic_load(&p->errors) == 0);
	CHECK(atomic_load(&p->total) == POOL);
	int sum = 0;
	for (int i = 0; i < CLAIMERS; i++)
		sum += cs[i].got;
	CHECK(sum == POOL);
	for (int k = 0; k < POOL; k++) {
		CHECK(atomic_load(&p->hits[k]) == 1);
		if (atomic_load(&p->hits[k]) != 1)
			continue;
		char owner[64], want[32];
		snprintf(want, sizeof want, "claimer-%d", p->by[k]);
		if (lease_of(s, p->ids[k], owner, sizeof owner, NULL) == 0)
			CHECK_STR(owner, want);
		else
			test__failed_now = 1;
	}
	/* nothing left */
	dura_record_list l;
	REQUIRE_RC(claim(s, "late", wf, 100, 60000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
	free(p);
}

/* A heartbeat: many leases extended in one call, the lost ones reported
 * and left alone. 20 held runs: more than one batch of a SQL statement. */
STORE_TEST(leases_extend_many)
{
	enum { HELD = 20, N = HELD + 3 };
	char wf[96], ids[HELD + 2][128];
	conf_name(wf, sizeof wf, "conf-lease-many");
	for (int i = 0; i < HELD + 2; i++) {
		dura_record *r = NULL;
		REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
		snprintf(ids[i], sizeof ids[i], "%s", r->run_id);
		dura_record_free(r);
	}
	dura_record_list l;
	REQUIRE_RC(claim(s, "hb-a", wf, HELD, 60000, &l), 0);
	REQUIRE(l.count == HELD);
	/* the held ones, in claim order */
	const char *list[N];
	for (size_t i = 0; i < l.count; i++)
		snprintf(ids[i], sizeof ids[i], "%s", l.items[i].run_id);
	dura_record_list_free(&l);
	/* the two left: one leased to b, one leased then released */
	REQUIRE_RC(claim(s, "hb-b", wf, 2, 60000, &l), 0);
	REQUIRE(l.count == 2);
	snprintf(ids[HELD], sizeof ids[HELD], "%s", l.items[0].run_id);
	snprintf(ids[HELD + 1], sizeof ids[HELD + 1], "%s", l.items[1].run_id);
	dura_record_list_free(&l);
	REQUIRE_RC(dura_store_release_lease(s, ids[HELD + 1], "hb-b"), 0);
	char ghost[DURA_UUID_LEN + 1];
	dura_uuid7(ghost);
	for (int i = 0; i < HELD; i++)
		list[i] = ids[i];
	list[HELD] = ids[HELD];         /* b's */
	list[HELD + 1] = ghost;         /* no such run */
	list[HELD + 2] = ids[HELD + 1]; /* released */
	int64_t v_before[HELD + 2], b_exp = 0;
	for (int i = 0; i < HELD + 2; i++) {
		dura_record *r;
		REQUIRE_RC(dura_store_get_run(s, ids[i], &r), 0);
		v_before[i] = r->version;
		if (i == HELD)
			b_exp = r->lease_expires_at;
		dura_record_free(r);
	}

	int codes[N];
	int64_t t0 = dura_now_ms();
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, N, 600000, codes), DURA_ECONFLICT);
	for (int i = 0; i < HELD; i++)
		CHECK(codes[i] == 0);
	CHECK(codes[HELD] == DURA_ECONFLICT);
	CHECK(codes[HELD + 1] == DURA_ENOTFOUND);
	CHECK(codes[HELD + 2] == DURA_ECONFLICT);
	for (int i = 0; i < HELD + 2; i++) {
		dura_record *r;
		REQUIRE_RC(dura_store_get_run(s, ids[i], &r), 0);
		/* a heartbeat is no change of the run: the fencing token stays */
		CHECK(r->version == v_before[i]);
		if (i < HELD) {
			CHECK_STR(r->lease_owner, "hb-a");
			CHECK(r->lease_expires_at >= t0 + 599000);
		} else if (i == HELD) {
			CHECK_STR(r->lease_owner, "hb-b");
			CHECK(r->lease_expires_at == b_exp);
		} else {
			CHECK_STR(r->lease_owner, "");
		}
		dura_record_free(r);
	}
	/* all held: 0; twice in a row (the same expiry, on a fast clock) too */
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, HELD, 60000, codes), 0);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, HELD, 60000, codes), 0);
	for (int i = 0; i < HELD; i++)
		CHECK(codes[i] == 0);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, 1, 60000, codes), 0);
	/* the same run twice in one call */
	const char *twice[2] = {ids[0], ids[0]};
	CHECK_RC(dura_store_extend_leases(s, "hb-a", twice, 2, 60000, codes), 0);
	CHECK(codes[0] == 0 && codes[1] == 0);

	/* bad input: EINVAL in every code, nothing changed */
	dura_record *before;
	REQUIRE_RC(dura_store_get_run(s, ids[0], &before), 0);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, 0, 60000, codes), DURA_EINVAL);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, HELD, 0, codes), DURA_EINVAL);
	CHECK(codes[0] == DURA_EINVAL && codes[HELD - 1] == DURA_EINVAL);
	CHECK_RC(dura_store_extend_leases(s, "", list, HELD, 60000, codes), DURA_EINVAL);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", NULL, 3, 60000, codes), DURA_EINVAL);
	CHECK_RC(dura_store_extend_leases(s, "hb-a", list, HELD, 60000, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_extend_leases(NULL, "hb-a", list, HELD, 60000, codes), DURA_EINVAL);
	const char *bad[2] = {ids[0], ""};
	CHECK_RC(dura_store_extend_leases(s, "hb-a", bad, 2, 1, codes), DURA_EINVAL);
	dura_record *after;
	REQUIRE_RC(dura_store_get_run(s, ids[0], &after), 0);
	CHECK(after->lease_expires_at == before->lease_expires_at);
	CHECK(after->version == before->version);
	dura_record_free(before);
	dura_record_free(after);
}

const test_case conf_leases_tests[] = {
	{"leases_claim_extend_release", leases_claim_extend_release},
	{"leases_claim_filters", leases_claim_filters},
	{"leases_expiry", leases_expiry},
	{"leases_commit_lease", leases_commit_lease},
	{"leases_concurrent_claims", leases_concurrent_claims},
	{"leases_extend_many", leases_extend_many},
};
const size_t conf_leases_ntests = TEST_COUNT(conf_leases_tests);
