/*
 * conformance_fleet.c - workflow versions and retention (contract version
 * 6): a run's and a step's workflow_version (create, list filter, commits
 * and the pinning of a run without one), claims that serve only some
 * versions (and never let runs of other versions hide theirs), the
 * definitions engines register, counts per version, moving a run to
 * another version, pruning ended runs (data or whole, with what retention
 * keeps) and pruning the outbox.
 *
 * A store of contract version 5 or older has none of it: every test skips
 * there (dura_store_run_counts answers DURA_ENOTSUP). Other tests may share
 * the database: a test looks only at its own workflows, and prunes only
 * its own workflow's runs. The outbox test works in a prefix of its own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -1 not probed yet, 0 no versions, 1 the store is of version 6 */
static int g_fleet = -1;

static int fleet_probe(dura_store *s)
{
	if (g_fleet >= 0)
		return g_fleet;
	dura_run_count_list l;
	int rc = dura_store_run_counts(s, "conf-fleet-probe", &l);
	if (rc == DURA_ENOTSUP)
		g_fleet = 0;
	else if (rc == 0)
		g_fleet = 1;
	else
		fprintf(stderr, "    run_counts returned %d, wanted 0 or %d (%s)\n", rc, DURA_ENOTSUP,
		        dura_error_last() ? dura_error_last()->message : "");
	dura_run_count_list_free(&l);
	return g_fleet;
}

#define NEED_FLEET(s)                                                                         \
	do {                                                                                  \
		int f__ = fleet_probe(s);                                                     \
		REQUIRE(f__ >= 0);                                                            \
		if (f__ == 0)                                                                 \
			SKIP("the store has no workflow versions (contract version below 6)"); \
	} while (0)

/* A run of wf at version (NULL: none) in state st (0: running). */
static int create_at(dura_store *s, const char *wf, const char *version, int st, dura_record **out)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.workflow_version = version;
	req.status = "a";
	req.run_state = st;
	return dura_store_create_run(s, &req, out);
}

static dura_commit commit_of(const char *run_id, int64_t expect, const char *node, const char *version)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = expect;
	c.node_id = node;
	c.state = "{\"n\":1}";
	c.status = node;
	c.flags = DURA_COMMIT_NO_EVENT;
	c.workflow_version = version;
	return c;
}

static dura_record *get_run(dura_store *s, const char *id)
{
	dura_record *r = NULL;
	return dura_store_get_run(s, id, &r) == 0 ? r : NULL;
}

/* ---- records and steps ------------------------------------------------------------- */

STORE_TEST(fleet_record_versions)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-rec");
	dura_record *a = NULL, *b = NULL;
	REQUIRE_RC(create_at(s, wf, "v1", 0, &a), 0);
	CHECK_STR(a->workflow_version, "v1");
	REQUIRE_RC(create_at(s, wf, NULL, 0, &b), 0);
	CHECK_STR(b->workflow_version, "");
	dura_record *g = get_run(s, a->run_id);
	REQUIRE(g != NULL);
	CHECK_STR(g->workflow_version, "v1");
	dura_record_free(g);

	/* list filters on the version, "" included */
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	f.workflow_version = "v1";
	dura_record_list l;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1 && strcmp(l.items[0].run_id, a->run_id) == 0);
	dura_record_list_free(&l);
	f.workflow_version = "";
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 1 && strcmp(l.items[0].run_id, b->run_id) == 0);
	dura_record_list_free(&l);
	f.workflow_version = NULL;
	REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 2);
	dura_record_list_free(&l);

	/* a bad version is refused before the store sees it */
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.workflow_version = "v 1";
	dura_record *bad = NULL;
	CHECK_RC(dura_store_create_run(s, &req, &bad), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	req.workflow_version = "12345678901234567890123456789012345678901234567890123456789012345";
	CHECK_RC(dura_store_create_run(s, &req, &bad), DURA_EINVAL);
	dura_record_free(a);
	dura_record_free(b);
}

STORE_TEST(fleet_commit_versions)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-commit");
	dura_record *r = NULL;
	REQUIRE_RC(create_at(s, wf, NULL, 0, &r), 0);
	dura_commit_result res;
	/* the first commit with a version pins a run without one */
	dura_commit c = commit_of(r->run_id, r->version, "a", "v1");
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	dura_record *g = get_run(s, r->run_id);
	REQUIRE(g != NULL);
	CHECK_STR(g->workflow_version, "v1");
	/* a later commit of another version writes its step, but the run keeps v1 */
	c = commit_of(r->run_id, res.new_version, "b", "v2");
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	c = commit_of(r->run_id, res.new_version, "c", NULL);
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);
	dura_record_free(g);
	REQUIRE((g = get_run(s, r->run_id)) != NULL);
	CHECK_STR(g->workflow_version, "v1");
	dura_record_free(g);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(s, r->run_id, 0, 0, &h), 0);
	REQUIRE(h.count == 3);
	CHECK_STR(h.items[0].workflow_version, "v1");
	CHECK_STR(h.items[1].workflow_version, "v2");
	CHECK_STR(h.items[2].workflow_version, "");
	dura_step_list_free(&h);
	dura_step *st = NULL;
	REQUIRE_RC(dura_store_get_step(s, r->run_id, 1, &st), 0);
	CHECK_STR(st->workflow_version, "v2");
	dura_step_free(st);
	REQUIRE_RC(dura_store_load_latest(s, r->run_id, &st), 0);
	CHECK_STR(st->workflow_version, "");
	dura_step_free(st);

	/* commit_batch: each commit writes its own version */
	dura_record *r2 = NULL, *r3 = NULL;
	REQUIRE_RC(create_at(s, wf, NULL, 0, &r2), 0);
	REQUIRE_RC(create_at(s, wf, "v9", 0, &r3), 0);
	dura_commit cs[2] = {commit_of(r2->run_id, r2->version, "a", "v3"), commit_of(r3->run_id, r3->version, "a", "v4")};
	dura_commit_result rs[2];
	REQUIRE_RC(dura_store_commit_batch(s, cs, 2, rs), 0);
	REQUIRE((g = get_run(s, r2->run_id)) != NULL);
	CHECK_STR(g->workflow_version, "v3");
	dura_record_free(g);
	REQUIRE((g = get_run(s, r3->run_id)) != NULL);
	CHECK_STR(g->workflow_version, "v9");
	dura_record_free(g);
	REQUIRE_RC(dura_store_load_latest(s, r3->run_id, &st), 0);
	CHECK_STR(st->workflow_version, "v4");
	dura_step_free(st);

	/* a bad version in a commit writes nothing */
	c = commit_of(r->run_id, res.new_version, "d", "bad version");
	CHECK_RC(dura_store_commit(s, &c, &res), DURA_EINVAL);
	REQUIRE((g = get_run(s, r->run_id)) != NULL);
	CHECK(g->step_no == 3);
	dura_record_free(g);
	dura_record_free(r);
	dura_record_free(r2);
	dura_record_free(r3);
}

/* ---- claims --------------------------------------------------------------------------- */

/* Claim up to max runs of wf serving the given versions of it; the ids
 * claimed into got (joined by ' '). */
static int claim_versions(dura_store *s, const char *wf, const char *const *versions, size_t nv, size_t max,
                          const char *owner, int limit, dura_record_list *out)
{
	dura_claim_workflow cw = {wf, limit, 0};
	dura_claim_version v[8];
	for (size_t i = 0; i < nv; i++) {
		v[i].workflow = wf;
		v[i].version = versions[i];
	}
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = owner;
	req.workflows = &cw;
	req.nworkflows = 1;
	req.versions = nv ? v : NULL;
	req.nversions = nv;
	req.max = max;
	req.lease_ms = 60000;
	return dura_store_claim(s, &req, out);
}

static int listed(const dura_record_list *l, const char *run_id)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].run_id, run_id) == 0)
			return 1;
	return 0;
}

STORE_TEST(fleet_claim_versions)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-claim");
	dura_record *v1 = NULL, *v2 = NULL, *none = NULL;
	REQUIRE_RC(create_at(s, wf, "v1", 0, &v1), 0);
	REQUIRE_RC(create_at(s, wf, "v2", 0, &v2), 0);
	REQUIRE_RC(create_at(s, wf, NULL, 0, &none), 0);
	const char *only1[] = {"v1"}, *only2[] = {"v2"};
	dura_record_list l;
	REQUIRE_RC(claim_versions(s, wf, only1, 1, 10, "owner-1", 0, &l), 0);
	CHECK(l.count == 2 && listed(&l, v1->run_id) && listed(&l, none->run_id) && !listed(&l, v2->run_id));
	for (size_t i = 0; i < l.count; i++)
		CHECK(strcmp(l.items[i].workflow_version, "v2") != 0);
	dura_record_list_free(&l);
	REQUIRE_RC(claim_versions(s, wf, only2, 1, 10, "owner-2", 0, &l), 0);
	CHECK(l.count == 1 && listed(&l, v2->run_id));
	if (l.count == 1)
		CHECK_STR(l.items[0].workflow_version, "v2");
	dura_record_list_free(&l);
	dura_record_free(v1);
	dura_record_free(v2);
	dura_record_free(none);

	/* bad requests: a version of a workflow the claim does not list, a bad version */
	dura_claim_workflow cw = {wf, 0, 0};
	dura_claim_version other = {"conf-other", "v1"}, badv = {wf, "v/1"};
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = "o";
	req.workflows = &cw;
	req.nworkflows = 1;
	req.versions = &other;
	req.nversions = 1;
	req.max = 1;
	req.lease_ms = 1000;
	CHECK_RC(dura_store_claim(s, &req, &l), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	req.versions = &badv;
	CHECK_RC(dura_store_claim(s, &req, &l), DURA_EINVAL);
	req.versions = NULL;
	CHECK_RC(dura_store_claim(s, &req, &l), DURA_EINVAL); /* a count without a list */
}

/* Many runs of a version nobody claims, due first, never hide the one run
 * this claimer serves: with and without flow limits. */
STORE_TEST(fleet_claim_versions_not_hidden)
{
	NEED_FLEET(s);
	for (int limited = 0; limited <= 1; limited++) {
		char wf[96];
		conf_name(wf, sizeof wf, limited ? "conf-fleet-hide-l" : "conf-fleet-hide");
		for (int i = 0; i < 60; i++)
			REQUIRE_RC(create_at(s, wf, "old", 0, NULL), 0);
		conf_sleep_ms(3);
		dura_record *mine = NULL;
		REQUIRE_RC(create_at(s, wf, "new", 0, &mine), 0);
		const char *v[] = {"new"};
		dura_record_list l;
		REQUIRE_RC(claim_versions(s, wf, v, 1, 1, "owner-new", limited ? 5 : 0, &l), 0);
		CHECK(l.count == 1 && listed(&l, mine->run_id));
		dura_record_list_free(&l);
		dura_record_free(mine);
	}
}

/* ---- definitions, counts, moving a run ------------------------------------------------- */

static const char DEF_V1[] = "{\"start\":\"a\",\"nodes\":[{\"name\":\"a\",\"next\":\"b\"},{\"name\":\"b\",\"next\":null}]}";
static const char DEF_V2[] = "{\"start\":\"a\",\"nodes\":[{\"name\":\"a\",\"next\":\"c\"},{\"name\":\"c\",\"next\":null}]}";

/* The store's workflow_put, as dura_engine_register calls it; the public
 * door is an engine, which needs node functions: this test uses one. */
static int node_noop(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx, (void)state, (void)payload;
	return 0;
}

/* Register workflow wf at version with nodes a -> b (or a -> c with c_not_b). */
static int register_version(dura_store *s, const char *wf, const char *version, int c_not_b)
{
	dura_engine *eng = NULL;
	dura_workflow *w = NULL;
	int rc = dura_engine_open(&eng, s, NULL);
	if (rc)
		return rc;
	const char *second = c_not_b ? "c" : "b";
	if ((rc = dura_workflow_new(&w, wf)) == 0 && (rc = dura_workflow_add_node(w, "a", node_noop, NULL, NULL)) == 0 &&
	    (rc = dura_workflow_add_node(w, second, node_noop, NULL, NULL)) == 0 &&
	    (rc = dura_workflow_add_edge(w, "a", second)) == 0 && (rc = dura_workflow_set_start(w, "a")) == 0 &&
	    (rc = dura_workflow_set_version(w, version)) == 0) {
		rc = dura_engine_register(eng, w);
		w = NULL;
	}
	dura_workflow_free(w);
	dura_engine_close(eng);
	return rc;
}

STORE_TEST(fleet_workflow_defs)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-defs");
	REQUIRE_RC(register_version(s, wf, "v1", 0), 0);
	conf_sleep_ms(3);
	REQUIRE_RC(register_version(s, wf, "v2", 1), 0);
	dura_workflow_def_list l;
	REQUIRE_RC(dura_store_workflow_list(s, wf, &l), 0);
	REQUIRE(l.count == 2);
	CHECK_STR(l.items[0].workflow_name, wf);
	CHECK_STR(l.items[0].version, "v1");
	CHECK_STR(l.items[1].version, "v2");
	CHECK(conf_json_same(l.items[0].definition, DEF_V1));
	CHECK(conf_json_same(l.items[1].definition, DEF_V2));
	CHECK(l.items[0].first_seen_at <= l.items[1].first_seen_at);
	CHECK(conf_near_now(l.items[0].first_seen_at, 60000) && l.items[0].last_seen_at >= l.items[0].first_seen_at);
	int64_t first = l.items[0].first_seen_at, last = l.items[0].last_seen_at;
	dura_workflow_def_list_free(&l);

	/* registered again (another process, a restart): first seen stays */
	conf_sleep_ms(5);
	REQUIRE_RC(register_version(s, wf, "v1", 0), 0);
	REQUIRE_RC(dura_store_workflow_list(s, wf, &l), 0);
	REQUIRE(l.count == 2);
	CHECK_STR(l.items[0].version, "v1");
	CHECK(l.items[0].first_seen_at == first && l.items[0].last_seen_at > last);
	dura_workflow_def_list_free(&l);

	/* every workflow's: this one's are among them */
	REQUIRE_RC(dura_store_workflow_list(s, NULL, &l), 0);
	size_t mine = 0;
	for (size_t i = 0; i < l.count; i++)
		mine += strcmp(l.items[i].workflow_name, wf) == 0;
	CHECK(mine == 2);
	dura_workflow_def_list_free(&l);
	char other[96];
	conf_name(other, sizeof other, "conf-fleet-none");
	REQUIRE_RC(dura_store_workflow_list(s, other, &l), 0);
	CHECK(l.count == 0);
	dura_workflow_def_list_free(&l);
}

STORE_TEST(fleet_run_counts)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-counts");
	for (int i = 0; i < 3; i++)
		REQUIRE_RC(create_at(s, wf, "v1", 0, NULL), 0);
	REQUIRE_RC(create_at(s, wf, "v1", DURA_RUN_COMPLETED, NULL), 0);
	REQUIRE_RC(create_at(s, wf, "v2", DURA_RUN_PAUSED, NULL), 0);
	REQUIRE_RC(create_at(s, wf, "v2", DURA_RUN_PAUSED, NULL), 0);
	REQUIRE_RC(create_at(s, wf, NULL, DURA_RUN_FAILED, NULL), 0);
	dura_run_count_list l;
	REQUIRE_RC(dura_store_run_counts(s, wf, &l), 0);
	REQUIRE(l.count == 4);
	CHECK_STR(l.items[0].workflow_version, "");
	CHECK(l.items[0].run_state == DURA_RUN_FAILED && l.items[0].count == 1);
	CHECK_STR(l.items[1].workflow_version, "v1");
	CHECK(l.items[1].run_state == DURA_RUN_RUNNING && l.items[1].count == 3);
	CHECK_STR(l.items[2].workflow_version, "v1");
	CHECK(l.items[2].run_state == DURA_RUN_COMPLETED && l.items[2].count == 1);
	CHECK_STR(l.items[3].workflow_version, "v2");
	CHECK(l.items[3].run_state == DURA_RUN_PAUSED && l.items[3].count == 2);
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].workflow_name, wf);
	dura_run_count_list_free(&l);
	/* every workflow's: this one's four rows are among them */
	REQUIRE_RC(dura_store_run_counts(s, NULL, &l), 0);
	size_t mine = 0;
	for (size_t i = 0; i < l.count; i++)
		mine += strcmp(l.items[i].workflow_name, wf) == 0;
	CHECK(mine == 4);
	dura_run_count_list_free(&l);
}

STORE_TEST(fleet_migrate_run)
{
	NEED_FLEET(s);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-move");
	REQUIRE_RC(register_version(s, wf, "v1", 0), 0);
	REQUIRE_RC(register_version(s, wf, "v2", 1), 0);
	dura_record *at_a = NULL, *at_b = NULL, *moved = NULL, *g;
	REQUIRE_RC(create_at(s, wf, "v1", 0, &at_a), 0);
	REQUIRE_RC(create_at(s, wf, "v1", DURA_RUN_PAUSED, &at_b), 0);
	dura_commit_result res;
	dura_commit c = commit_of(at_b->run_id, at_b->version, "a", "v1");
	c.status = "b";
	REQUIRE_RC(dura_store_commit(s, &c, &res), 0);

	/* at node a, which v2 has: moved, the version bumped */
	REQUIRE_RC(dura_store_migrate_run(s, at_a->run_id, "v2", &moved), 0);
	CHECK_STR(moved->workflow_version, "v2");
	CHECK(moved->version == at_a->version + 1);
	REQUIRE((g = get_run(s, at_a->run_id)) != NULL);
	CHECK_STR(g->workflow_version, "v2");
	CHECK(g->version == moved->version);
	dura_record_free(g);
	dura_record_free(moved);
	/* and back */
	CHECK_RC(dura_store_migrate_run(s, at_a->run_id, "v1", NULL), 0);

	/* at node b, which v2 has not: refused, naming the node, nothing changed */
	CHECK_RC(dura_store_migrate_run(s, at_b->run_id, "v2", NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL) && strstr(dura_error_last()->message, "'b'") != NULL);
	REQUIRE((g = get_run(s, at_b->run_id)) != NULL);
	CHECK_STR(g->workflow_version, "v1");
	CHECK(g->version == res.new_version);
	dura_record_free(g);

	/* a version nobody registered */
	CHECK_RC(dura_store_migrate_run(s, at_a->run_id, "v7", NULL), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));

	/* a leased run, then an ended one */
	const char *v1[] = {"v1"};
	dura_record_list l;
	REQUIRE_RC(claim_versions(s, wf, v1, 1, 5, "conf-mover", 0, &l), 0);
	CHECK(l.count == 1 && listed(&l, at_a->run_id));
	dura_record_list_free(&l);
	CHECK_RC(dura_store_migrate_run(s, at_a->run_id, "v2", NULL), DURA_ECONFLICT);
	CHECK(conf_error_ok(DURA_ECONFLICT));
	REQUIRE_RC(dura_store_set_run_state(s, at_b->run_id, DURA_RUN_CANCELLED, NULL), 0);
	CHECK_RC(dura_store_migrate_run(s, at_b->run_id, "v1", NULL), DURA_ECONFLICT);
	CHECK_RC(dura_store_migrate_run(s, "conf-no-such-run", "v1", NULL), DURA_ENOTFOUND);
	CHECK_RC(dura_store_migrate_run(s, at_a->run_id, "", NULL), DURA_EINVAL);
	dura_record_free(at_a);
	dura_record_free(at_b);
}

/* ---- retention ------------------------------------------------------------------------- */

/* A run of wf that took two steps and ended in state `end`. */
static int ended_run(dura_store *s, const char *wf, const char *parent, int end, char id[DURA_MAX_ID_LEN + 1])
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.status = "a";
	req.parent_id = parent;
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc)
		return rc;
	snprintf(id, DURA_MAX_ID_LEN + 1, "%s", r->run_id);
	dura_commit_result res;
	dura_commit c = commit_of(id, r->version, "a", NULL);
	dura_record_free(r);
	if ((rc = dura_store_commit(s, &c, &res)) != 0)
		return rc;
	c = commit_of(id, res.new_version, "b", NULL);
	c.status = "";
	c.run_state = end;
	return dura_store_commit(s, &c, &res);
}

static int64_t prune(dura_store *s, const char *wf, int st, int whole, size_t limit, int dry)
{
	dura_prune req = DURA_PRUNE_INIT;
	req.workflow = wf;
	req.run_state = st;
	req.ended_before = dura_now_ms() + 1000;
	req.whole = whole;
	req.limit = limit;
	req.dry_run = dry;
	int64_t n = -1;
	int rc = dura_store_prune(s, &req, &n);
	if (rc) {
		fprintf(stderr, "    prune returned %d (%s)\n", rc, dura_error_last() ? dura_error_last()->message : "");
		return -1;
	}
	return n;
}

static void prune_case(dura_store *s, int whole)
{
	char wf[96], pwf[96];
	conf_name(wf, sizeof wf, whole ? "conf-fleet-prune-w" : "conf-fleet-prune-d");
	conf_name(pwf, sizeof pwf, "conf-fleet-parents");
	char done[3][DURA_MAX_ID_LEN + 1], failed[DURA_MAX_ID_LEN + 1], kept_cp[DURA_MAX_ID_LEN + 1],
	    child_live[DURA_MAX_ID_LEN + 1], child_done[DURA_MAX_ID_LEN + 1], parent_done[DURA_MAX_ID_LEN + 1];
	for (int i = 0; i < 3; i++) {
		REQUIRE_RC(ended_run(s, wf, NULL, DURA_RUN_COMPLETED, done[i]), 0);
		conf_sleep_ms(3); /* oldest first: each ends later than the one before */
	}
	REQUIRE_RC(ended_run(s, wf, NULL, DURA_RUN_FAILED, failed), 0);
	REQUIRE_RC(ended_run(s, wf, NULL, DURA_RUN_COMPLETED, kept_cp), 0);
	char cp[96];
	conf_name(cp, sizeof cp, "conf-fleet-cp");
	REQUIRE_RC(dura_store_checkpoint_save(s, cp, kept_cp, 1, "{\"n\":1}"), 0);
	dura_record *parent = NULL;
	REQUIRE_RC(create_at(s, pwf, NULL, 0, &parent), 0);
	REQUIRE_RC(ended_run(s, wf, parent->run_id, DURA_RUN_COMPLETED, child_live), 0);
	REQUIRE_RC(ended_run(s, pwf, NULL, DURA_RUN_COMPLETED, parent_done), 0);
	REQUIRE_RC(ended_run(s, wf, parent_done, DURA_RUN_COMPLETED, child_done), 0);
	dura_record *running = NULL;
	REQUIRE_RC(create_at(s, wf, NULL, 0, &running), 0);

	/* a dry run counts and changes nothing: done[0..2] and child_done match */
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 100, 1) == 4);
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 2, 1) == 2);
	dura_record *g;
	REQUIRE((g = get_run(s, done[0])) != NULL);
	CHECK(g->run_state == DURA_RUN_COMPLETED);
	dura_record_free(g);

	/* a batch of one takes the oldest */
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 1, 0) == 1);
	g = get_run(s, done[0]);
	if (whole)
		CHECK(g == NULL);
	else
		CHECK(g && g->run_state == DURA_RUN_DATA_DELETED && conf_json_same(g->state, "{}"));
	dura_record_free(g);
	REQUIRE((g = get_run(s, done[1])) != NULL);
	CHECK(g->run_state == DURA_RUN_COMPLETED);
	dura_record_free(g);
	/* then the rest: three more, then none */
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 100, 0) == 3);
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 100, 0) == 0);
	const char *gone[] = {done[0], done[1], done[2], child_done};
	for (size_t i = 0; i < 4; i++) {
		g = get_run(s, gone[i]);
		if (whole)
			CHECK(g == NULL);
		else
			CHECK(g && g->run_state == DURA_RUN_DATA_DELETED);
		dura_record_free(g);
		dura_step_list h;
		REQUIRE_RC(dura_store_history(s, gone[i], 0, 0, &h), 0);
		CHECK(h.count == 0);
		dura_step_list_free(&h);
	}
	/* what stays: the failed run, the run with a checkpoint, the child of a live parent, the running run */
	const char *kept[] = {failed, kept_cp, child_live, running->run_id};
	for (size_t i = 0; i < 4; i++) {
		REQUIRE((g = get_run(s, kept[i])) != NULL);
		CHECK(g->run_state != DURA_RUN_DATA_DELETED);
		dura_record_free(g);
		dura_step_list h;
		REQUIRE_RC(dura_store_history(s, kept[i], 0, 0, &h), 0);
		CHECK(h.count == (i == 3 ? 0 : 2));
		dura_step_list_free(&h);
	}
	dura_checkpoint *ck = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &ck), 0);
	dura_checkpoint_free(ck);
	/* the failed run goes by its own state; the child once its parent ends */
	CHECK(prune(s, wf, DURA_RUN_FAILED, whole, 100, 0) == 1);
	REQUIRE_RC(dura_store_set_run_state(s, parent->run_id, DURA_RUN_CANCELLED, NULL), 0);
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 100, 0) == 1);
	/* the checkpoint's run once the checkpoint is deleted */
	REQUIRE_RC(dura_store_checkpoint_delete(s, cp), 0);
	CHECK(prune(s, wf, DURA_RUN_COMPLETED, whole, 100, 0) == 1);
	if (!whole) /* the emptied records go by data_deleted, whole */
		CHECK(prune(s, wf, DURA_RUN_DATA_DELETED, 1, 100, 0) == 7);
	dura_run_count_list l;
	REQUIRE_RC(dura_store_run_counts(s, wf, &l), 0);
	CHECK(l.count == 1 && l.items[0].run_state == DURA_RUN_RUNNING && l.items[0].count == 1);
	dura_run_count_list_free(&l);
	/* the other workflow's runs were never touched */
	REQUIRE((g = get_run(s, parent_done)) != NULL);
	CHECK(g->run_state == DURA_RUN_COMPLETED);
	dura_record_free(g);
	dura_record_free(parent);
	dura_record_free(running);
}

STORE_TEST(fleet_prune_data)
{
	NEED_FLEET(s);
	prune_case(s, 0);
}

STORE_TEST(fleet_prune_whole)
{
	NEED_FLEET(s);
	prune_case(s, 1);
}

STORE_TEST(fleet_prune_bad)
{
	NEED_FLEET(s);
	dura_prune req = DURA_PRUNE_INIT;
	req.run_state = DURA_RUN_COMPLETED;
	req.ended_before = dura_now_ms();
	req.limit = 0;
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EINVAL);
	req.limit = 10001;
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EINVAL);
	req.limit = 10;
	req.run_state = DURA_RUN_RUNNING;
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	req.run_state = DURA_RUN_DATA_DELETED; /* only as a whole */
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EINVAL);
	req.run_state = DURA_RUN_COMPLETED;
	req.ended_before = 0;
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EINVAL);
	req.ended_before = 1;
	req.version = 99;
	CHECK_RC(dura_store_prune(s, &req, NULL), DURA_EVERSION);
	CHECK_RC(dura_store_outbox_prune(s, 0, 10, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_outbox_prune(s, 1, 0, NULL), DURA_EINVAL);
}

/* The outbox's retention, in a prefix of its own: it prunes every event
 * older than a time, which would take other tests' events in a shared one. */
static void fleet_outbox_prune(void)
{
	dura_store *base = conf_open();
	REQUIRE(base != NULL);
	int ok = fleet_probe(base);
	dura_store_close(base);
	REQUIRE(ok >= 0);
	if (!ok)
		SKIP("the store has no workflow versions (contract version below 6)");
	dura_url *pu = NULL;
	REQUIRE_RC(dura_url_parse(&pu, g_url), 0);
	int prefixed = pu->prefix && pu->prefix[0];
	dura_url_free(pu);
	if (prefixed)
		SKIP("the store URL has a prefix of its own");
	char url[2048];
	snprintf(url, sizeof url, "%s%sprefix=conf_obx_", g_url, strchr(g_url, '?') ? "&" : "?");
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	/* what earlier runs of the suite left here */
	int64_t n = 0;
	do
		REQUIRE_RC(dura_store_outbox_prune(s, dura_now_ms() + 1000, 10000, &n), 0);
	while (n == 10000);
	char wf[96];
	conf_name(wf, sizeof wf, "conf-fleet-outbox");
	dura_record *r = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
	int64_t v = r->version;
	for (int i = 0; i < 5; i++) {
		dura_commit_result res;
		REQUIRE_RC(conf_commit(s, r->run_id, v, "a", "{}", 0, &res), 0);
		v = res.new_version;
	}
	long have = conf_events(s, r->run_id, NULL, NULL);
	CHECK(have >= 5);
	/* nothing is that old */
	CHECK_RC(dura_store_outbox_prune(s, dura_now_ms() - 3600000, 100, &n), 0);
	CHECK(n == 0);
	CHECK(conf_events(s, r->run_id, NULL, NULL) == have);
	/* two, oldest first, then the rest */
	CHECK_RC(dura_store_outbox_prune(s, dura_now_ms() + 1000, 2, &n), 0);
	CHECK(n == 2);
	CHECK(conf_events(s, r->run_id, NULL, NULL) == have - 2);
	/* the oldest went: what is left of the run's starts after its third commit */
	dura_event_list evs;
	REQUIRE_RC(dura_store_outbox_poll(s, 100, &evs), 0);
	for (size_t i = 0; i < evs.count; i++)
		if (strcmp(evs.items[i].run_id, r->run_id) == 0 && evs.items[i].data)
			CHECK(strstr(evs.items[i].data, "\"step\":0,") == NULL && strstr(evs.items[i].data, "\"step\":1,") == NULL);
	dura_event_list_free(&evs);
	CHECK_RC(dura_store_outbox_prune(s, dura_now_ms() + 1000, 100, &n), 0);
	CHECK(n == have - 2);
	CHECK(conf_events(s, r->run_id, NULL, NULL) == 0);
	dura_record_free(r);
	dura_store_close(s);
}

const test_case conf_fleet_tests[] = {
	{"fleet_record_versions", fleet_record_versions},
	{"fleet_commit_versions", fleet_commit_versions},
	{"fleet_claim_versions", fleet_claim_versions},
	{"fleet_claim_versions_not_hidden", fleet_claim_versions_not_hidden},
	{"fleet_workflow_defs", fleet_workflow_defs},
	{"fleet_run_counts", fleet_run_counts},
	{"fleet_migrate_run", fleet_migrate_run},
	{"fleet_prune_data", fleet_prune_data},
	{"fleet_prune_whole", fleet_prune_whole},
	{"fleet_prune_bad", fleet_prune_bad},
	{"fleet_outbox_prune", fleet_outbox_prune},
};
const size_t conf_fleet_ntests = TEST_COUNT(conf_fleet_tests);
