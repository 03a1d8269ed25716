/*
 * conformance_gauges.c - the gauges (contract version 8): the counts a
 * dashboard reads, exact for runs in every situation that counts or must
 * not (waiting on a signal, woken, sleeping, scheduled later, due, leased
 * with a live lease and with a lapsed one, paused, initiated, ended with a
 * wait left), and for the outbox as events are acknowledged; and the run
 * filter's due (version 4), page by page and beside the other filters.
 *
 * The gauges count the whole store, so the exact tests run in a prefix of
 * their own (conf_gauge_), emptied first and last through the API (runs
 * cancelled and pruned whole, the outbox pruned): on a server shared by
 * two runs of the suite at once they would count each other's runs, as
 * cache_stats would. A store of contract version 7 or older (the
 * version-1 external store, and the memory store's table registered as
 * version 7) answers DURA_ENOTSUP, which is checked too, and a table of
 * version 8 without gauges is refused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAUGE_PREFIX "conf_gauge_"
#define FAR INT64_C(253402300799000) /* 9999-12-31T23:59:59Z: a wait for ever */
#define HOUR INT64_C(3600000)

/* 1 when the store is one of contract version 8 or newer (every built-in one). */
static int has_gauges(void)
{
	return strcmp(g_scheme, "memwrap") != 0;
}

/* 1 when g_url has a prefix of its own (another one cannot be added). */
static int url_prefixed(void)
{
	dura_url *u = NULL;
	if (dura_url_parse(&u, g_url) != 0)
		return 0;
	int p = u->prefix && u->prefix[0];
	dura_url_free(u);
	return p;
}

/* Every run of the store cancelled (the active ones) and pruned whole,
 * every outbox event pruned: 0, or the first failure (printed). */
static int empty_store(dura_store *s)
{
	char cursor[DURA_MAX_ID_LEN + 1] = "";
	for (int pages = 0; pages < 1000; pages++) {
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.cursor = cursor[0] ? cursor : NULL;
		f.limit = 1000;
		dura_record_list l;
		int rc = dura_store_list_runs(s, &f, &l);
		if (rc) {
			fprintf(stderr, "    emptying: list_runs %d\n", rc);
			return rc;
		}
		for (size_t i = 0; i < l.count; i++)
			if (dura_run_state_active(l.items[i].run_state) &&
			    (rc = dura_store_set_run_state(s, l.items[i].run_id, DURA_RUN_CANCELLED, NULL)) != 0 &&
			    rc != DURA_ECONFLICT) {
				fprintf(stderr, "    emptying: cancel %d\n", rc);
				dura_record_list_free(&l);
				return rc;
			}
		int more = l.next_cursor != NULL;
		if (more)
			snprintf(cursor, sizeof cursor, "%s", l.next_cursor);
		dura_record_list_free(&l);
		if (!more)
			break;
	}
	static const int ended[] = {DURA_RUN_COMPLETED, DURA_RUN_FAILED, DURA_RUN_CANCELLED, DURA_RUN_DATA_DELETED};
	for (size_t k = 0; k < TEST_COUNT(ended); k++) {
		int64_t n;
		do {
			dura_prune req = DURA_PRUNE_INIT;
			req.run_state = ended[k];
			req.ended_before = dura_now_ms() + 60000;
			req.whole = 1;
			req.limit = 10000;
			n = 0;
			int rc = dura_store_prune(s, &req, &n);
			if (rc) {
				fprintf(stderr, "    emptying: prune %d\n", rc);
				return rc;
			}
		} while (n == 10000);
	}
	int64_t n;
	do {
		n = 0;
		int rc = dura_store_outbox_prune(s, dura_now_ms() + 60000, 10000, &n);
		if (rc) {
			fprintf(stderr, "    emptying: outbox_prune %d\n", rc);
			return rc;
		}
	} while (n == 10000);
	return 0;
}

/* A handle on g_url in the gauges' own prefix, emptied; NULL (with a
 * message) when that fails. */
static dura_store *open_gauge_store(void)
{
	char url[2048];
	snprintf(url, sizeof url, "%s%sprefix=" GAUGE_PREFIX, g_url, strchr(g_url, '?') ? "&" : "?");
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, NULL);
	if (rc) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    cannot open %s: %d (%s)\n", GAUGE_PREFIX, rc, e && e->message ? e->message : "");
		return NULL;
	}
	if (empty_store(s) != 0) {
		dura_store_close(s);
		return NULL;
	}
	return s;
}

/* 1 when the store's gauges are these (oldest_at -1: not checked), else 0
 * and what differs printed. */
static int gauges_are(dura_store *s, int64_t waiting, int64_t due, int64_t leased, int64_t pending, int64_t oldest_at,
                      int line)
{
	dura_store_gauges g;
	memset(&g, 0x55, sizeof g);
	int64_t before = dura_now_ms();
	int rc = dura_store_gauges_get(s, &g);
	if (rc) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    line %d: dura_store_gauges_get %d (%s)\n", line, rc, e && e->message ? e->message : "");
		return 0;
	}
	int ok = g.waiting_runs == waiting && g.due_runs == due && g.leased_runs == leased && g.outbox_pending == pending &&
	         (oldest_at < 0 || g.outbox_oldest_at == oldest_at) && g.now >= before - 1000 &&
	         g.now <= dura_now_ms() + 1000;
	if (!ok)
		fprintf(stderr,
		        "    line %d: gauges waiting %lld due %lld leased %lld pending %lld oldest_at %lld now %lld; wanted %lld "
		        "%lld %lld %lld %lld, now about %lld\n",
		        line, (long long)g.waiting_runs, (long long)g.due_runs, (long long)g.leased_runs,
		        (long long)g.outbox_pending, (long long)g.outbox_oldest_at, (long long)g.now, (long long)waiting,
		        (long long)due, (long long)leased, (long long)pending, (long long)oldest_at, (long long)before);
	return ok;
}

#define CHECK_GAUGES(s, w, d, l, p, o) CHECK(gauges_are((s), (w), (d), (l), (p), (o), __LINE__))

/* ---- the model: what the test knows of each run ------------------------------------ */

typedef struct grun {
	char id[DURA_UUID_LEN + 1];
	const char *wf;
	int waiting, due, leased;
	int64_t version;
} grun;

static int64_t count_of(const grun *r, size_t n, int what)
{
	int64_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += what == 0 ? r[i].waiting : what == 1 ? r[i].due : r[i].leased;
	return c;
}

static grun *find(grun *r, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].id, id) == 0)
			return &r[i];
	return NULL;
}

/* A run of wf: running (0) or in run_state, due at next_run_at (0: now), priority prio. */
static int make_run(dura_store *s, grun *g, const char *wf, int run_state, int64_t next_run_at, int prio)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.run_state = run_state;
	req.next_run_at = next_run_at;
	req.priority = prio;
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc == 0) {
		memset(g, 0, sizeof *g);
		snprintf(g->id, sizeof g->id, "%s", r->run_id);
		g->wf = wf;
		g->version = r->version;
	}
	dura_record_free(r);
	return rc;
}

/* A commit of g (no step; an event only when event): its wait and next_run_at, in run_state (0: as it is). */
static int commit_wait(dura_store *s, grun *g, const char *wait, int64_t next_run_at, int run_state, int event)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = g->id;
	c.expect_version = g->version;
	c.node_id = "n";
	c.state = "{}";
	c.status = "n";
	c.wait = wait;
	c.next_run_at = next_run_at;
	c.run_state = run_state;
	c.flags = DURA_COMMIT_NO_STEP | (event ? 0 : DURA_COMMIT_NO_EVENT);
	dura_commit_result res;
	int rc = dura_store_commit(s, &c, &res);
	if (rc == 0)
		g->version = res.new_version;
	return rc;
}

/* The ids the due filter lists (with wf, run_state, waiting as given) in
 * pages of `page`, checked newest first and each page within its limit;
 * how many (-1 on a failure), into ids[max]. */
static long list_due(dura_store *s, const char *wf, int run_state, int waiting, size_t page,
                     char ids[][DURA_UUID_LEN + 1], long max)
{
	char cursor[DURA_MAX_ID_LEN + 1] = "";
	long n = 0;
	for (int pages = 0; pages < 1000; pages++) {
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.workflow_name = wf;
		f.run_state = run_state;
		f.waiting = waiting;
		f.due = 1;
		f.limit = page;
		f.cursor = cursor[0] ? cursor : NULL;
		dura_record_list l;
		int rc = dura_store_list_runs(s, &f, &l);
		if (rc) {
			fprintf(stderr, "    list_runs (due): %d\n", rc);
			return -1;
		}
		if (l.count > page) {
			fprintf(stderr, "    list_runs (due): %zu runs in a page of %zu\n", l.count, page);
			n = -1;
		}
		for (size_t i = 0; i < l.count && n >= 0; i++) {
			if (n > 0 && strcmp(l.items[i].run_id, ids[n - 1]) >= 0) {
				fprintf(stderr, "    list_runs (due): not newest first\n");
				n = -1;
				break;
			}
			if (n < max)
				snprintf(ids[n], sizeof ids[0], "%s", l.items[i].run_id);
			n++;
		}
		int more = l.next_cursor != NULL;
		if (more)
			snprintf(cursor, sizeof cursor, "%s", l.next_cursor);
		if (more && l.count != page) {
			fprintf(stderr, "    list_runs (due): a cursor after a page of %zu of %zu\n", l.count, page);
			n = -1;
		}
		dura_record_list_free(&l);
		if (!more || n < 0)
			return n;
	}
	return -1;
}

/* 1 when ids[0..n) are exactly the model's runs of wf (NULL: any) that are
 * due (and wait, when waiting), else 0 and the difference printed. */
static int due_set_is(const grun *r, size_t nr, const char *wf, int waiting, char ids[][DURA_UUID_LEN + 1], long n)
{
	long want = 0;
	int ok = n >= 0;
	for (size_t i = 0; i < nr && ok; i++) {
		if (!r[i].due || (wf && strcmp(r[i].wf, wf) != 0) || (waiting && !r[i].waiting))
			continue;
		want++;
		int seen = 0;
		for (long k = 0; k < n; k++)
			seen |= strcmp(ids[k], r[i].id) == 0;
		if (!seen) {
			fprintf(stderr, "    due run %s is not listed\n", r[i].id);
			ok = 0;
		}
	}
	if (ok && n != want) {
		fprintf(stderr, "    %ld due runs listed, %ld wanted\n", n, want);
		ok = 0;
	}
	return ok;
}

#define MODEL_IS(s, r, n, p, o) CHECK_GAUGES((s), count_of((r), (n), 0), count_of((r), (n), 1), count_of((r), (n), 2), (p), (o))

/* ---- the tests ------------------------------------------------------------------------ */

/* A store below contract version 8 (the external version-1 one) has no
 * gauges and cannot list due runs; bad arguments are refused everywhere. */
STORE_TEST(gauges_refused)
{
	dura_store_gauges g;
	memset(&g, 0x55, sizeof g);
	CHECK_RC(dura_store_gauges_get(NULL, &g), DURA_EINVAL);
	CHECK(g.waiting_runs == 0 && g.now == 0);
	CHECK_RC(dura_store_gauges_get(s, NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	CHECK(f.version == 4 && f.due == 0);
	f.due = 1;
	dura_record_list l;
	if (has_gauges()) {
		CHECK_RC(dura_store_gauges_get(s, &g), 0);
		CHECK(g.now > 0 && conf_near_now(g.now, 60000));
		CHECK_RC(dura_store_list_runs(s, &f, &l), 0);
		dura_record_list_free(&l);
		return;
	}
	memset(&g, 0x55, sizeof g);
	CHECK_RC(dura_store_gauges_get(s, &g), DURA_ENOTSUP);
	CHECK(conf_error_ok(DURA_ENOTSUP));
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && strstr(e->message, "version 8"));
	CHECK(g.waiting_runs == 0 && g.due_runs == 0 && g.now == 0);
	CHECK_RC(dura_store_list_runs(s, &f, &l), DURA_ENOTSUP);
	CHECK(conf_error_ok(DURA_ENOTSUP));
	f.due = 0;
	CHECK_RC(dura_store_list_runs(s, &f, &l), 0);
	dura_record_list_free(&l);
}

/* A filter of version 3 ends before due: whatever follows is not read. */
STORE_TEST(gauges_filter_version_3)
{
	char wf[96];
	conf_name(wf, sizeof wf, "conf-gauge-v3");
	grun paused;
	REQUIRE_RC(make_run(s, &paused, wf, DURA_RUN_PAUSED, 0, 0), 0);
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.version = 3;
	f.workflow_name = wf;
	f.due = 1; /* beyond a version-3 filter */
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1 && strcmp(l.items[0].run_id, paused.id) == 0);
	dura_record_list_free(&l);
	if (!has_gauges())
		return;
	f.version = 4;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
	f.due = 7; /* any non-zero is 1 */
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
}

/*
 * Runs in every situation, counted exactly after each change: waiting
 * (signal, sleep; paused or initiated too), woken (waiting and due),
 * scheduled later, due, leased (live; released; lapsed while due, and
 * lapsed while its next run is later), paused, ended with a wait left;
 * and the due filter over them, page by page.
 */
static void gauges_runs(void)
{
	if (!has_gauges())
		SKIP("the store has no gauges (contract version below 8)");
	if (url_prefixed())
		SKIP("the store URL has a prefix of its own");
	dura_store *s = open_gauge_store();
	REQUIRE(s != NULL);
	char wf[96], wf2[96], wf3[96];
	conf_name(wf, sizeof wf, "conf-gauge");
	conf_name(wf2, sizeof wf2, "conf-gauge-2");
	conf_name(wf3, sizeof wf3, "conf-gauge-3");
	CHECK_GAUGES(s, 0, 0, 0, 0, 0);

	enum { SIG, WOKEN, SLEEP, LATER, DUE1, DUE2, PRIO, OTHER, PAUSED, PAUSED_WAIT, CANCELLED_WAIT, DONE_WAIT, INIT,
	       LAPSE_LATER, NRUNS };
	grun r[NRUNS];
	int64_t now = dura_now_ms();
	int rc = 0;
	/* waiting on a signal, for ever */
	if (!rc && !(rc = make_run(s, &r[SIG], wf, 0, 0, 0)))
		rc = commit_wait(s, &r[SIG], "signal:go", FAR, 0, 0);
	r[SIG].waiting = 1;
	/* waiting on a signal, and woken: it still waits (until its next commit) and is due */
	if (!rc && !(rc = make_run(s, &r[WOKEN], wf, 0, 0, 0)))
		rc = commit_wait(s, &r[WOKEN], "signal:go", FAR, 0, 0);
	r[WOKEN].waiting = 1;
	/* asleep for an hour */
	if (!rc && !(rc = make_run(s, &r[SLEEP], wf, 0, 0, 0)))
		rc = commit_wait(s, &r[SLEEP], "sleep", now + HOUR, 0, 0);
	r[SLEEP].waiting = 1;
	/* created to run in an hour, waiting for nothing */
	if (!rc)
		rc = make_run(s, &r[LATER], wf, 0, now + HOUR, 0);
	/* due now: two of priority 0, one of priority 5, one of another workflow */
	if (!rc)
		rc = make_run(s, &r[DUE1], wf, 0, 0, 0);
	if (!rc)
		rc = make_run(s, &r[DUE2], wf, 0, now - 1000, 0);
	if (!rc)
		rc = make_run(s, &r[PRIO], wf, 0, 0, 5);
	if (!rc)
		rc = make_run(s, &r[OTHER], wf2, 0, 0, 0);
	r[DUE1].due = r[DUE2].due = r[PRIO].due = r[OTHER].due = 1;
	/* paused, waiting for nothing and for a signal (paused is active: it waits) */
	if (!rc && !(rc = make_run(s, &r[PAUSED], wf, 0, 0, 0)))
		rc = dura_store_set_run_state(s, r[PAUSED].id, DURA_RUN_PAUSED, NULL);
	if (!rc && !(rc = make_run(s, &r[PAUSED_WAIT], wf, 0, 0, 0)) &&
	    !(rc = commit_wait(s, &r[PAUSED_WAIT], "signal:p", FAR, 0, 0)))
		rc = dura_store_set_run_state(s, r[PAUSED_WAIT].id, DURA_RUN_PAUSED, NULL);
	r[PAUSED_WAIT].waiting = 1;
	/* ended with a wait left: cancelled while it waited, completed by a commit that waits */
	if (!rc && !(rc = make_run(s, &r[CANCELLED_WAIT], wf, 0, 0, 0)) &&
	    !(rc = commit_wait(s, &r[CANCELLED_WAIT], "signal:c", FAR, 0, 0)))
		rc = dura_store_set_run_state(s, r[CANCELLED_WAIT].id, DURA_RUN_CANCELLED, NULL);
	if (!rc && !(rc = make_run(s, &r[DONE_WAIT], wf, 0, 0, 0)))
		rc = commit_wait(s, &r[DONE_WAIT], "signal:z", 0, DURA_RUN_COMPLETED, 0);
	/* initiated (not running: never due), waiting for a child */
	if (!rc && !(rc = make_run(s, &r[INIT], wf, DURA_RUN_INITIATED, 0, 0)))
		rc = commit_wait(s, &r[INIT], "child:x", 0, 0, 0);
	r[INIT].waiting = 1;
	/* due now, of a workflow of its own: leased below, then put to sleep under its lease */
	if (!rc)
		rc = make_run(s, &r[LAPSE_LATER], wf3, 0, 0, 0);
	r[LAPSE_LATER].due = 1;
	if (rc) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    setup: %d (%s)\n", rc, e && e->message ? e->message : "");
	}
	REQUIRE_RC(rc, 0);
	MODEL_IS(s, r, NRUNS, 0, 0);
	CHECK_GAUGES(s, 5, 5, 0, 0, 0); /* the model, counted by hand */

	/* the wake: the run is due now, its wait stays */
	CHECK_RC(dura_store_wake(s, r[WOKEN].id, "signal:go"), 0);
	r[WOKEN].due = 1;
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, r[WOKEN].id, &got), 0);
	CHECK(got->version == r[WOKEN].version + 1 && strcmp(got->wait, "signal:go") == 0);
	r[WOKEN].version = got->version;
	dura_record_free(got);
	CHECK_GAUGES(s, 5, 6, 0, 0, 0);

	char ids[NRUNS][DURA_UUID_LEN + 1];
	long n = list_due(s, NULL, 0, 0, 2, ids, NRUNS);
	CHECK(due_set_is(r, NRUNS, NULL, 0, ids, n));
	n = list_due(s, NULL, 0, 0, 100, ids, NRUNS);
	CHECK(n == 6 && due_set_is(r, NRUNS, NULL, 0, ids, n));
	n = list_due(s, wf, 0, 0, 1, ids, NRUNS);
	CHECK(n == 4 && due_set_is(r, NRUNS, wf, 0, ids, n));
	n = list_due(s, NULL, 0, 1, 3, ids, NRUNS); /* due and waiting: the woken one */
	CHECK(n == 1 && due_set_is(r, NRUNS, NULL, 1, ids, n));
	n = list_due(s, NULL, DURA_RUN_PAUSED, 0, 3, ids, NRUNS);
	CHECK(n == 0);

	/* two of wf leased for a minute (the priority-5 run first); one released again */
	dura_claim_workflow cw = {wf, 0, 0};
	dura_claim creq = DURA_CLAIM_INIT;
	creq.owner = "conf-gauge-a";
	creq.workflows = &cw;
	creq.nworkflows = 1;
	creq.max = 2;
	creq.lease_ms = 60000;
	dura_record_list l;
	REQUIRE_RC(dura_store_claim(s, &creq, &l), 0);
	REQUIRE(l.count == 2);
	CHECK_STR(l.items[0].run_id, r[PRIO].id);
	char kept[DURA_UUID_LEN + 1], released[DURA_UUID_LEN + 1];
	snprintf(kept, sizeof kept, "%s", l.items[0].run_id);
	snprintf(released, sizeof released, "%s", l.items[1].run_id);
	for (size_t i = 0; i < l.count; i++) {
		grun *g = find(r, NRUNS, l.items[i].run_id);
		REQUIRE(g != NULL);
		CHECK(g->due);
		g->due = 0;
		g->leased = 1;
		g->version = l.items[i].version;
	}
	dura_record_list_free(&l);
	MODEL_IS(s, r, NRUNS, 0, 0);
	CHECK_GAUGES(s, 5, 4, 2, 0, 0);
	n = list_due(s, NULL, 0, 0, 2, ids, NRUNS);
	CHECK(n == 4 && due_set_is(r, NRUNS, NULL, 0, ids, n));
	CHECK_RC(dura_store_release_lease(s, released, "conf-gauge-a"), 0);
	find(r, NRUNS, released)->due = 1;
	find(r, NRUNS, released)->leased = 0;
	MODEL_IS(s, r, NRUNS, 0, 0);
	CHECK_GAUGES(s, 5, 5, 1, 0, 0);

	/* short leases: the run of wf2 lapses while it is due (due again), the
	 * run of wf3 is put to sleep under its lease, which lapses too (neither) */
	const char *both[] = {wf2, wf3};
	REQUIRE_RC(dura_store_claim_runs(s, "conf-gauge-b", both, 2, 10, 300, &l), 0);
	REQUIRE(l.count == 2);
	for (size_t i = 0; i < l.count; i++) {
		grun *g = find(r, NRUNS, l.items[i].run_id);
		REQUIRE(g != NULL);
		CHECK(g == &r[OTHER] || g == &r[LAPSE_LATER]);
		g->version = l.items[i].version;
	}
	dura_record_list_free(&l);
	CHECK_RC(commit_wait(s, &r[LAPSE_LATER], NULL, dura_now_ms() + HOUR, 0, 0), 0);
	conf_sleep_ms(700);
	r[LAPSE_LATER].due = 0;
	MODEL_IS(s, r, NRUNS, 0, 0);
	CHECK_GAUGES(s, 5, 4, 1, 0, 0);
	n = list_due(s, NULL, 0, 0, 3, ids, NRUNS);
	CHECK(n == 4 && due_set_is(r, NRUNS, NULL, 0, ids, n));
	n = list_due(s, wf2, 0, 0, 3, ids, NRUNS);
	CHECK(n == 1 && strcmp(ids[0], r[OTHER].id) == 0);
	n = list_due(s, wf3, 0, 0, 3, ids, NRUNS);
	CHECK(n == 0);

	/* the waiting run that was woken commits without a wait: due, no longer waiting */
	CHECK_RC(commit_wait(s, &r[WOKEN], NULL, 0, 0, 0), 0);
	r[WOKEN].waiting = 0;
	/* a paused waiter resumed: it sleeps on, waiting (its next run is for ever) */
	CHECK_RC(dura_store_set_run_state(s, r[PAUSED_WAIT].id, DURA_RUN_RUNNING, NULL), 0);
	/* the waiter on a signal cancelled: no longer waiting */
	CHECK_RC(dura_store_set_run_state(s, r[SIG].id, DURA_RUN_CANCELLED, NULL), 0);
	r[SIG].waiting = 0;
	/* the paused one resumed: due now */
	CHECK_RC(dura_store_set_run_state(s, r[PAUSED].id, DURA_RUN_RUNNING, NULL), 0);
	r[PAUSED].due = 1;
	/* the leased one completes, its lease released with the commit */
	grun *k = find(r, NRUNS, kept);
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = k->id;
	c.expect_version = k->version;
	c.node_id = "end";
	c.state = "{}";
	c.run_state = DURA_RUN_COMPLETED;
	c.flags = DURA_COMMIT_NO_EVENT | DURA_COMMIT_RELEASE_LEASE;
	dura_commit_result res;
	CHECK_RC(dura_store_commit(s, &c, &res), 0);
	k->leased = 0;
	MODEL_IS(s, r, NRUNS, 0, 0);
	CHECK_GAUGES(s, 3, 5, 0, 0, 0);
	n = list_due(s, NULL, 0, 0, 2, ids, NRUNS);
	CHECK(n == 5 && due_set_is(r, NRUNS, NULL, 0, ids, n));

	CHECK_RC(empty_store(s), 0);
	CHECK_GAUGES(s, 0, 0, 0, 0, 0);
	dura_store_close(s);
}

static int event_order(const void *a, const void *b)
{
	return strcmp(((const dura_event *)a)->id, ((const dura_event *)b)->id);
}

/* The outbox: pending events counted as commits write them and as they
 * are acknowledged, out of order too; the oldest is the first pending
 * in id order. Events of a commit without one (NO_EVENT) are not there. */
static void gauges_outbox(void)
{
	if (!has_gauges())
		SKIP("the store has no gauges (contract version below 8)");
	if (url_prefixed())
		SKIP("the store URL has a prefix of its own");
	dura_store *s = open_gauge_store();
	REQUIRE(s != NULL);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-gauge-obx");
	grun run;
	REQUIRE_RC(make_run(s, &run, wf, 0, dura_now_ms() + HOUR, 0), 0);
	CHECK_GAUGES(s, 0, 0, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		REQUIRE_RC(commit_wait(s, &run, NULL, dura_now_ms() + HOUR, 0, 1), 0);
		conf_sleep_ms(3); /* distinct created_at */
	}
	REQUIRE_RC(commit_wait(s, &run, NULL, dura_now_ms() + HOUR, 0, 0), 0);
	dura_event_list evs;
	REQUIRE_RC(dura_store_outbox_poll(s, 100, &evs), 0);
	REQUIRE(evs.count == 5);
	qsort(evs.items, evs.count, sizeof(*evs.items), event_order);
	for (size_t i = 1; i < evs.count; i++)
		CHECK(evs.items[i].created_at >= evs.items[i - 1].created_at);
	CHECK_GAUGES(s, 0, 0, 0, 5, evs.items[0].created_at);
	/* the first and the third acknowledged: the second is the oldest */
	CHECK_RC(dura_store_outbox_ack(s, evs.items[0].id), 0);
	CHECK_RC(dura_store_outbox_ack(s, evs.items[2].id), 0);
	CHECK_GAUGES(s, 0, 0, 0, 3, evs.items[1].created_at);
	CHECK_RC(dura_store_outbox_ack(s, evs.items[1].id), 0);
	CHECK_GAUGES(s, 0, 0, 0, 2, evs.items[3].created_at);
	/* an acknowledged event again: nothing changes */
	CHECK_RC(dura_store_outbox_ack(s, evs.items[1].id), DURA_ENOTFOUND);
	CHECK_GAUGES(s, 0, 0, 0, 2, evs.items[3].created_at);
	/* the newest acknowledged: the oldest stays */
	CHECK_RC(dura_store_outbox_ack(s, evs.items[4].id), 0);
	CHECK_GAUGES(s, 0, 0, 0, 1, evs.items[3].created_at);
	/* an event imported with its own time and an older id comes first */
	dura_event old = {(char *)"01800000-0000-7000-8000-0000000000a1", wf, run.id, (char *)"step", (char *)"{}", 1000};
	CHECK_RC(dura_store_import_event(s, &old), 0);
	CHECK_GAUGES(s, 0, 0, 0, 2, 1000);
	CHECK_RC(dura_store_outbox_ack(s, old.id), 0);
	CHECK_RC(dura_store_outbox_ack(s, evs.items[3].id), 0);
	CHECK_GAUGES(s, 0, 0, 0, 0, 0);
	dura_event_list_free(&evs);
	CHECK_RC(empty_store(s), 0);
	dura_store_close(s);
}

/* A table of version 8 must have gauges; one of version 7 (the memory
 * store's, declared older) is served without: ENOTSUP, and the rest works.
 * Independent of the store under test. */
static void gauges_table_checked(void)
{
	const dura_store_ops *mem = dura_store_find("memory");
	REQUIRE(mem != NULL);
	static dura_store_ops bad, v7;
	bad = *mem;
	bad.scheme = "nogauges";
	bad.gauges = NULL;
	CHECK_RC(dura_store_register(&bad), DURA_EINVAL);
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && strstr(e->message, "gauges"));
	CHECK(dura_store_find("nogauges") == NULL);
	v7 = *mem;
	v7.scheme = "memv7";
	v7.version = 7;
	v7.gauges = NULL; /* not part of version 7 */
	REQUIRE_RC(dura_store_register(&v7), 0);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, "memv7:", NULL), 0);
	dura_store_gauges g;
	CHECK_RC(dura_store_gauges_get(s, &g), DURA_ENOTSUP);
	CHECK(conf_error_ok(DURA_ENOTSUP));
	CHECK_RC(conf_create(s, "conf-gauge-v7", NULL, NULL, NULL), 0);
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	dura_record_list l;
	f.due = 1;
	CHECK_RC(dura_store_list_runs(s, &f, &l), DURA_ENOTSUP);
	f.due = 0;
	CHECK_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1);
	dura_record_list_free(&l);
	dura_store_close(s);
}

const test_case conf_gauges_tests[] = {
	{"gauges_table_checked", gauges_table_checked},
	{"gauges_refused", gauges_refused},
	{"gauges_filter_version_3", gauges_filter_version_3},
	{"gauges_runs", gauges_runs},
	{"gauges_outbox", gauges_outbox},
};
const size_t conf_gauges_ntests = TEST_COUNT(conf_gauges_tests);
