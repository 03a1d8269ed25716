/*
 * fleet.c - workflow versions and retention (store contract version 6)
 * as every server SQL store (MySQL/MariaDB, PostgreSQL) runs them, over
 * the statement interface of exec.h with the catalog's statements: the
 * versions engines register (<prefix>dura_workflows), the counts of runs
 * per version and state, moving a run to another version, and the
 * batches of retention - ended runs pruned, whole or their data only, and
 * the outbox's oldest events. Each operation is a body run by
 * dura_sql_run_op() on a pooled connection, as in server.c.
 *
 * A moved run wakes the workers that wait for claimable runs where the
 * store can tell them: PostgreSQL's trigger notifies a change of a run's
 * workflow version as it does a resume (postgres/schema.c).
 *
 * The gauges (contract version 8) are here too: one statement of counts
 * over indexes (catalog.h, GAUGES_SELECT).
 */
#include "fleet.h"

#include "catalog.h"
#include "errors.h"

#include "../../internal.h"

#include <stdio.h>
#include <string.h>

#define X_ENUM(name, sql) ST_##name,
enum { SQL_SHARED_STATEMENTS(X_ENUM) SQL_SERVER_STATEMENTS(X_ENUM) ST__SERVER_COUNT };
#undef X_ENUM

#define PRUNE_SLOTS 16 /* the run ids PRUNE_STEPS ... PRUNE_ERASE name (IN_16) */

/* ---- the versions engines register ------------------------------------------------- */

static int workflow_put_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	(void)again; /* an upsert: once more is the same */
	return dura_sql_st_write(s, c, ST_WORKFLOW_PUT, arg, NULL);
}

int dura_sql_workflow_put(void *impl, const char *name, const char *version, const char *definition)
{
	dura_sql_store *s = impl;
	int rc = s->x->check_size ? s->x->check_size(s, strlen(definition), "the workflow definition") : 0;
	if (rc)
		return rc;
	int64_t now = dura_now_ms();
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, name);
	dura_sql_p_str(&p, version);
	dura_sql_p_str(&p, definition);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	return dura_sql_run_op(s, workflow_put_body, &p, DURA_SQL_IDEMPOTENT);
}

/* A list by one optional name, "(? IS NULL OR column = ?)", into items
 * and count of kind (empty on entry, and after a failure). */
struct read_arg {
	int id;
	const char *name;
	dura_sql_kind kind;
	void **items;
	size_t *count;
};

static int read_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct read_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->name);
	dura_sql_p_str(&p, a->name);
	return dura_sql_st_collect(s, c, a->id, &p, a->kind, a->items, a->count);
}

int dura_sql_workflow_list(void *impl, const char *name, dura_workflow_def_list *out)
{
	struct read_arg a = {ST_WORKFLOW_LIST, name, DURA_SQL_WORKFLOW, (void **)&out->items, &out->count};
	memset(out, 0, sizeof(*out));
	return dura_sql_run_op(impl, read_body, &a, DURA_SQL_IDEMPOTENT);
}

int dura_sql_run_counts(void *impl, const char *workflow, dura_run_count_list *out)
{
	struct read_arg a = {ST_RUN_COUNTS, workflow, DURA_SQL_RUN_COUNT, (void **)&out->items, &out->count};
	memset(out, 0, sizeof(*out));
	return dura_sql_run_op(impl, read_body, &a, DURA_SQL_IDEMPOTENT);
}

/* ---- moving a run to another version ------------------------------------------------ */

struct version_arg {
	const char *run_id, *version;
	int64_t expect, now;
	dura_record **out;
};

/*
 * The compare-and-swap on the run's version, then the record read back in
 * the same transaction. A miss is DURA_ECONFLICT (another version) or
 * DURA_ENOTFOUND (no run); after an unknown outcome (again), a run just as
 * our first attempt left it (the next version, our time, our workflow
 * version) is that attempt's move.
 */
static int set_version_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct version_arg *a = arg;
	dura_sql_params p;
	uint64_t n = 0;
	dura_record_free(*a->out);
	*a->out = NULL;
	p.n = 0;
	dura_sql_p_str(&p, a->version);
	dura_sql_p_time(&p, a->now);
	dura_sql_p_str(&p, a->run_id);
	dura_sql_p_int(&p, a->expect);
	int rc = dura_sql_st_write(s, c, ST_RUN_SET_VERSION, &p, &n);
	if (rc)
		return rc;
	dura_record *r = NULL;
	p.n = 0;
	dura_sql_p_str(&p, a->run_id);
	rc = dura_sql_st_fetch(s, c, ST_RUN_GET, &p, DURA_SQL_RECORD, (void **)&r);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_run_not_found(s->name, a->run_id);
	if (rc)
		return rc;
	if (n == 0 && !(again && r->version == a->expect + 1 && r->updated_at == a->now &&
	                strcmp(r->workflow_version, a->version) == 0)) {
		rc = dura_sql_err_version(s->name, a->run_id, r->version, a->expect);
		dura_record_free(r);
		return rc;
	}
	*a->out = r;
	return 0;
}

int dura_sql_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                             dura_record **out)
{
	dura_record *r = NULL;
	struct version_arg a = {run_id, workflow_version, expect_version, dura_now_ms(), &r};
	int rc = dura_sql_run_op(impl, set_version_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	if (rc) {
		dura_record_free(r);
		r = NULL;
	}
	if (out)
		*out = r;
	else
		dura_record_free(r);
	return rc;
}

/* ---- retention ---------------------------------------------------------------------- */

struct prune_arg {
	const dura_prune *req;
	char **ids; /* the batch's runs, req->limit of room */
	size_t n;
	int64_t count;
};

static void prune_forget(struct prune_arg *a)
{
	for (size_t i = 0; i < a->n; i++)
		dura_free(a->ids[i]);
	a->n = 0;
}

/* PRUNE_SELECT's parameters */
static void prune_params(dura_sql_params *p, const dura_prune *req)
{
	p->n = 0;
	dura_sql_p_int(p, req->run_state);
	dura_sql_p_time(p, req->ended_before);
	dura_sql_p_str(p, req->workflow);
	dura_sql_p_str(p, req->workflow);
	dura_sql_p_int(p, (int64_t)req->limit);
}

static int prune_count(dura_sql_store *s, dura_sql_conn *c, struct prune_arg *a)
{
	dura_sql_params p;
	void *m;
	prune_params(&p, a->req);
	int rc = dura_sql_st_run(s, c, ST_PRUNE_COUNT, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		a->count = dura_sql_c_int(s, m, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, s->name, 0, NULL, "counting the runs to prune: no row");
	}
	dura_sql_st_done(s, m);
	return rc;
}

/* The batch's runs, locked (SKIP LOCKED passes over a run that another
 * pruner or writer holds), into a->ids. */
static int prune_pick(dura_sql_store *s, dura_sql_conn *c, struct prune_arg *a)
{
	dura_sql_params p;
	void *m;
	prune_params(&p, a->req);
	int rc = dura_sql_st_run(s, c, ST_PRUNE_PICK, &p, &m);
	if (rc)
		return rc;
	while ((rc = dura_sql_st_next(s, c, m)) == 1 && a->n < a->req->limit) {
		const char *id = dura_sql_c_str(s, m, 0);
		if (!id || !(a->ids[a->n] = dura_strdup(id))) {
			rc = dura_error_oom(s->name);
			break;
		}
		a->n++;
	}
	dura_sql_st_done(s, m);
	return rc < 0 ? rc : 0;
}

/* Statement id over the runs ids[0..k) (k <= PRUNE_SLOTS), after the
 * time `now` when now is not 0: the rows it changed in *n. */
static int prune_write(dura_sql_store *s, dura_sql_conn *c, int id, char *const *ids, size_t k, int64_t now,
                       uint64_t *n)
{
	dura_sql_params p;
	p.n = 0;
	if (now)
		dura_sql_p_time(&p, now);
	for (size_t i = 0; i < PRUNE_SLOTS; i++)
		dura_sql_p_str(&p, i < k ? ids[i] : ""); /* no run has the id "" */
	return dura_sql_st_write(s, c, id, &p, n);
}

/*
 * One batch in one transaction: the runs chosen and locked, then, 16 at
 * a time, their steps, checkpoints and signals deleted and their records
 * deleted (whole) or erased as delete_run_data erases them. A dry run
 * counts the same selection and changes nothing. Run again after an
 * unknown outcome, a batch prunes what is left to prune, which is what a
 * caller of retention does anyway: *count is the batch known to be done.
 */
static int prune_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	static const int data[] = {ST_PRUNE_STEPS, ST_PRUNE_CPS, ST_PRUNE_SIGNALS};
	struct prune_arg *a = arg;
	(void)again;
	prune_forget(a);
	a->count = 0;
	if (a->req->dry_run)
		return prune_count(s, c, a);
	int rc = prune_pick(s, c, a);
	int64_t now = dura_now_ms();
	for (size_t at = 0; rc == 0 && at < a->n; at += PRUNE_SLOTS) {
		size_t k = a->n - at < PRUNE_SLOTS ? a->n - at : PRUNE_SLOTS;
		uint64_t n = 0;
		for (size_t i = 0; rc == 0 && i < sizeof(data) / sizeof(data[0]); i++)
			rc = prune_write(s, c, data[i], a->ids + at, k, 0, NULL);
		if (rc == 0 && a->req->whole)
			rc = prune_write(s, c, ST_PRUNE_RECORDS, a->ids + at, k, 0, &n);
		else if (rc == 0)
			rc = prune_write(s, c, ST_PRUNE_ERASE, a->ids + at, k, now, &n);
		a->count += (int64_t)n;
	}
	return rc;
}

int dura_sql_prune_runs(void *impl, const dura_prune *req, int64_t *count)
{
	dura_sql_store *s = impl;
	struct prune_arg a = {req, NULL, 0, 0};
	*count = 0;
	if (!req->dry_run && !(a.ids = dura_calloc(req->limit, sizeof(*a.ids))))
		return dura_error_oom(s->name);
	int rc = dura_sql_run_op(s, prune_body, &a, DURA_SQL_IDEMPOTENT | (req->dry_run ? 0 : DURA_SQL_TX));
	prune_forget(&a);
	dura_free(a.ids);
	if (rc == 0)
		*count = a.count;
	return rc;
}

struct outbox_arg {
	int64_t before;
	size_t limit;
	int64_t count;
};

/* One DELETE, atomic alone; run again after an unknown outcome, it
 * deletes the oldest events that are left. */
static int outbox_prune_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct outbox_arg *a = arg;
	dura_sql_params p;
	uint64_t n = 0;
	(void)again;
	p.n = 0;
	dura_sql_p_time(&p, a->before);
	dura_sql_p_int(&p, (int64_t)a->limit);
	int rc = dura_sql_st_write(s, c, ST_OUTBOX_PRUNE, &p, &n);
	a->count = rc == 0 ? (int64_t)n : 0;
	return rc;
}

int dura_sql_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count)
{
	struct outbox_arg a = {before, limit, 0};
	int rc = dura_sql_run_op(impl, outbox_prune_body, &a, DURA_SQL_IDEMPOTENT);
	*count = rc == 0 ? a.count : 0;
	return rc;
}

/* ---- gauges (contract version 8) --------------------------------------------------- */

struct gauges_arg {
	int64_t now;
	dura_store_gauges *out;
};

static int gauges_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct gauges_arg *a = arg;
	dura_sql_params p;
	void *m;
	(void)again; /* a read */
	p.n = 0;
	for (int i = 0; i < 4; i++)
		dura_sql_p_time(&p, a->now);
	int rc = dura_sql_st_run(s, c, ST_GAUGES, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		dura_store_gauges *o = a->out;
		o->waiting_runs = dura_sql_c_int(s, m, 0);
		o->due_runs = dura_sql_c_int(s, m, 1) - dura_sql_c_int(s, m, 3);
		o->leased_runs = dura_sql_c_int(s, m, 2);
		o->outbox_pending = dura_sql_c_int(s, m, 4);
		o->outbox_oldest_at = dura_sql_c_time(s, m, 5);
		o->now = a->now;
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, s->name, 0, NULL, "reading the gauges: no row");
	}
	dura_sql_st_done(s, m);
	return rc;
}

int dura_sql_gauges(void *impl, dura_store_gauges *out)
{
	struct gauges_arg a = {dura_now_ms(), out};
	return dura_sql_run_op(impl, gauges_body, &a, DURA_SQL_IDEMPOTENT);
}
