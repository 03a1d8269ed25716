/*
 * fleet.c - the SQLite store's workflow versions and retention (store
 * contract version 6): the versions engines register (dura_workflows),
 * the counts of runs per version and state, moving a run to another
 * version (compare-and-swap on its version, the record back through
 * RETURNING), and the batches of retention - ended runs pruned, whole or
 * their data only, in one write transaction, and the outbox's oldest
 * events in one statement. SQLite cannot tell another process's worker
 * that a run moved (sqlite.h): its next claim finds it. The gauges
 * (contract version 8) are one statement of counts over indexes
 * (sql/catalog.h, GAUGES_SELECT).
 */
#include "sqlite.h"

/* ---- the versions engines register ------------------------------------------------- */

int dsq_workflow_put(void *impl, const char *name, const char *version, const char *definition)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_WORKFLOW_PUT, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		int b;
		if ((b = bind_text(st, 1, name)) || (b = bind_text(st, 2, version)) || (b = bind_text(st, 3, definition)) ||
		    (b = bind_text(st, 4, now_txt)) || (b = bind_text(st, 5, now_txt)))
			rc = bind_fail(c, st, b, "registering a workflow version");
		else
			rc = dsq_write_one(c, st, "registering a workflow version", NULL);
	}
	dsq_pool_put(s, c);
	return rc;
}

/* A list by one optional name, "(? IS NULL OR column = ?)", into items
 * and count of kind (left empty on failure). */
static int list_by_name(sq_store *s, int id, const char *name, dura_sql_kind kind, void **items, size_t *count,
                        const char *what)
{
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, id, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, name)) || (b = bind_text(st, 2, name)))
			rc = bind_fail(c, st, b, what);
		else
			rc = dsq_collect(c, st, kind, items, count, what);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_workflow_list(void *impl, const char *name, dura_workflow_def_list *out)
{
	memset(out, 0, sizeof(*out));
	return list_by_name(impl, ST_WORKFLOW_LIST, name, DURA_SQL_WORKFLOW, (void **)&out->items, &out->count,
	                    "listing workflow versions");
}

int dsq_run_counts(void *impl, const char *workflow, dura_run_count_list *out)
{
	memset(out, 0, sizeof(*out));
	return list_by_name(impl, ST_RUN_COUNTS, workflow, DURA_SQL_RUN_COUNT, (void **)&out->items, &out->count,
	                    "counting runs");
}

/* ---- moving a run to another version ------------------------------------------------ */

/* The compare-and-swap, and why it missed, in one write transaction: a
 * run at another version is ECONFLICT, no run ENOTFOUND. */
static int set_version_tx(sq_store *s, sq_conn *c, const char *run_id, int64_t expect, const char *version,
                          dura_record **out)
{
	char now_txt[24];
	sqlite3_stmt *st;
	int b, rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = dsq_prep(s, c, ST_RUN_SET_VERSION, &st)) != 0)
		goto fail;
	if ((b = bind_text(st, 1, run_id)) || (b = bind_int64(st, 2, expect)) || (b = bind_text(st, 3, version)) ||
	    (b = bind_text(st, 4, now_txt))) {
		rc = bind_fail(c, st, b, "moving a run to another version");
		goto fail;
	}
	rc = dsq_fetch(c, st, DURA_SQL_RECORD, (void **)out, "moving a run to another version");
	if (rc == DURA_ENOTFOUND) {
		int64_t have = 0;
		int state;
		if ((rc = dsq_run_state_of(s, c, run_id, &state, &have)) == 0)
			rc = dura_sql_err_version(SQ, run_id, have, expect);
	}
	if (rc)
		goto fail;
	if ((rc = dsq_tx_commit(s, c)) != 0) {
		dura_record_free(*out);
		*out = NULL;
	}
	return rc;
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                        dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	dura_record *r = NULL;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = set_version_tx(s, c, run_id, expect_version, workflow_version, &r);
	dsq_pool_put(s, c);
	if (out)
		*out = r;
	else
		dura_record_free(r);
	return rc;
}

/* ---- retention ---------------------------------------------------------------------- */

/* PRUNE_SELECT's parameters, bound to st (PRUNE_COUNT or PRUNE_PICK). */
static int bind_prune(sq_conn *c, sqlite3_stmt *st, const dura_prune *req, const char *before_txt)
{
	int b;
	if ((b = bind_int(st, 1, req->run_state)) || (b = bind_text(st, 2, before_txt)) ||
	    (b = bind_text(st, 3, req->workflow)) || (b = bind_text(st, 4, req->workflow)) ||
	    (b = bind_int64(st, 5, (int64_t)req->limit)))
		return bind_fail(c, st, b, "choosing the runs to prune");
	return 0;
}

/* A dry run: how many runs the batch would prune, read without the write lock. */
static int prune_count(sq_store *s, sq_conn *c, const dura_prune *req, const char *before_txt, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_PRUNE_COUNT, &st);
	if (rc || (rc = bind_prune(c, st, req, before_txt)) != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = dura_error_set_native(DURA_ERROR, SQ, 0, NULL, "counting the runs to prune: no row");
	} else {
		rc = dsq_fail(c, rc, "counting the runs to prune");
	}
	sqlite3_reset(st);
	return rc;
}

/* The batch's run ids into ids (req->limit of room), *n of them. */
static int prune_pick(sq_store *s, sq_conn *c, const dura_prune *req, const char *before_txt, char **ids, size_t *n)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_PRUNE_PICK, &st);
	if (rc || (rc = bind_prune(c, st, req, before_txt)) != 0)
		return rc;
	while (*n < req->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (!id || !(ids[*n] = dura_strdup(id))) {
			sqlite3_reset(st);
			return dura_error_oom(SQ);
		}
		++*n;
	}
	if (*n < req->limit && rc != SQLITE_DONE) {
		rc = dsq_fail(c, rc, "choosing the runs to prune");
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/* A run deleted, data and record, inside the open transaction. */
static int delete_run(sq_store *s, sq_conn *c, const char *run_id)
{
	static const struct {
		int id;
		const char *what;
	} steps[] = {
		{ST_STEPS_ERASE, "deleting a run's steps"},
		{ST_CPS_ERASE, "deleting a run's checkpoints"},
		{ST_SIGNAL_ERASE, "deleting a run's signals"},
		{ST_RUN_DELETE, "deleting a run"},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		sqlite3_stmt *st;
		int rc = dsq_prep(s, c, steps[i].id, &st);
		if (rc)
			return rc;
		if ((rc = bind_text(st, 1, run_id)) != 0)
			return bind_fail(c, st, rc, steps[i].what);
		if ((rc = dsq_run_done(c, st, steps[i].what)) != 0)
			return rc;
	}
	return 0;
}

/*
 * One batch in one write transaction: the runs chosen, then each deleted
 * whole or erased as delete_run_data erases it (dsq_erase_run). Under the
 * write lock nothing changes a chosen run meanwhile, here or in another
 * process.
 */
static int prune_tx(sq_store *s, sq_conn *c, const dura_prune *req, const char *before_txt, int64_t *count)
{
	char **ids = dura_calloc(req->limit, sizeof(*ids));
	size_t n = 0;
	if (!ids)
		return dura_error_oom(SQ);
	int rc = dsq_tx_begin(s, c);
	if (rc == 0)
		rc = prune_pick(s, c, req, before_txt, ids, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int64_t version;
		rc = req->whole ? delete_run(s, c, ids[i]) : dsq_erase_run(s, c, ids[i], &version);
	}
	if (rc == 0 && (rc = dsq_tx_commit(s, c)) == 0)
		*count = (int64_t)n;
	else
		dsq_tx_rollback(s, c);
	for (size_t i = 0; i < n; i++)
		dura_free(ids[i]);
	dura_free(ids);
	return rc;
}

int dsq_prune_runs(void *impl, const dura_prune *req, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	char before_txt[24];
	*count = 0;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	fmt_time(before_txt, req->ended_before);
	rc = req->dry_run ? prune_count(s, c, req, before_txt, count) : prune_tx(s, c, req, before_txt, count);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char before_txt[24];
	int changes = 0, rc = dsq_pool_get(s, &c);
	*count = 0;
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_OUTBOX_PRUNE, &st)) == 0) {
		fmt_time(before_txt, before);
		int b;
		if ((b = bind_text(st, 1, before_txt)) || (b = bind_int64(st, 2, (int64_t)limit)))
			rc = bind_fail(c, st, b, "pruning the outbox");
		else
			rc = dsq_write_one(c, st, "pruning the outbox", &changes);
	}
	dsq_pool_put(s, c);
	if (rc == 0)
		*count = changes;
	return rc;
}

/* ---- gauges (contract version 8) --------------------------------------------------- */

int dsq_gauges(void *impl, dura_store_gauges *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int64_t now = dura_now_ms();
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_GAUGES, &st)) == 0) {
		fmt_time(now_txt, now);
		int b = 0;
		for (int i = 1; i <= 4 && !b; i++)
			b = bind_text(st, i, now_txt);
		rc = b ? b : sqlite3_step(st); /* a bind's failure goes to dsq_fail() below */
		if (rc == SQLITE_ROW) {
			out->waiting_runs = sqlite3_column_int64(st, 0);
			out->due_runs = sqlite3_column_int64(st, 1) - sqlite3_column_int64(st, 3);
			out->leased_runs = sqlite3_column_int64(st, 2);
			out->outbox_pending = sqlite3_column_int64(st, 4);
			out->outbox_oldest_at = dsq_row_ops.time_ms(st, 5);
			out->now = now;
			rc = 0;
		} else {
			rc = dsq_fail(c, rc, "reading the gauges");
		}
		sqlite3_reset(st);
	}
	dsq_pool_put(s, c);
	return rc;
}
