/*
 * import.c - the SQLite store's import (store contract version 7): a
 * whole run inserted as another store had it - the record with every
 * field but the lease, then its steps, checkpoints and signals with their
 * own times - in one write transaction; an outbox event inserted as it
 * was; and the outbox read page by page, for an export.
 *
 * The unique keys refuse what is there already (the run id, the
 * one_active_run index, a checkpoint or signal id), and the transaction is
 * rolled back whole. Under the write lock nothing can change between a
 * refused insert and the look-up that words it: the run with the id, or
 * the active run of the workflow and foreign id.
 */
#include "sqlite.h"

static const char *str(const char *v)
{
	return v ? v : "";
}

/* Step an insert: 0; DURA_EEXISTS with *dup the extended code when it
 * broke a unique key (the caller words it, the statement reset); or the
 * failure. */
static int insert_row(sq_conn *c, sqlite3_stmt *st, const char *what, int *dup)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = 0;
	} else if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
		*dup = rc;
		rc = DURA_EEXISTS;
	} else {
		rc = dsq_fail(c, rc, what);
	}
	sqlite3_reset(st);
	return rc;
}

/* Why the record's insert broke a unique key: the run id is taken, or the
 * workflow and foreign id have an active run (named when it is found). */
static int record_refused(sq_store *s, sq_conn *c, const dura_record *rec, int dup)
{
	sqlite3_stmt *st;
	int b, rc = dsq_prep(s, c, ST_RUN_STATE, &st);
	if (rc)
		return rc;
	if ((b = bind_text(st, 1, rec->run_id)) != 0)
		return bind_fail(c, st, b, "importing a run");
	rc = sqlite3_step(st);
	int found = rc == SQLITE_ROW;
	rc = found || rc == SQLITE_DONE ? 0 : dsq_fail(c, rc, "importing a run");
	sqlite3_reset(st);
	if (rc)
		return rc;
	if (found)
		return dura_sql_err_import_run_exists(SQ, dup, NULL, rec->run_id);
	const char *fid = str(rec->foreign_id);
	dura_record *active = NULL;
	if ((rc = dsq_prep(s, c, ST_RUN_ACTIVE, &st)) != 0)
		return rc;
	if ((b = bind_text(st, 1, rec->workflow_name)) || (b = bind_text(st, 2, fid)))
		return bind_fail(c, st, b, "importing a run");
	rc = dsq_fetch(c, st, DURA_SQL_RECORD, (void **)&active, "importing a run");
	if (rc && rc != DURA_ENOTFOUND)
		return rc;
	rc = dura_sql_err_import_active(SQ, dup, NULL, rec->run_id, rec->workflow_name, fid, active ? active->run_id : NULL);
	dura_record_free(active);
	return rc;
}

static int insert_record(sq_store *s, sq_conn *c, const dura_record *rec)
{
	static const char what[] = "importing a run";
	char next[24], created[24], updated[24];
	sqlite3_stmt *st;
	int b, dup = 0, rc = dsq_prep(s, c, ST_RUN_IMPORT, &st);
	if (rc)
		return rc;
	fmt_time(next, rec->next_run_at);
	fmt_time(created, rec->created_at);
	fmt_time(updated, rec->updated_at);
	if ((b = bind_text(st, 1, rec->run_id)) || (b = bind_text(st, 2, rec->workflow_name)) ||
	    (b = bind_text(st, 3, str(rec->foreign_id))) || (b = bind_int(st, 4, rec->run_state)) ||
	    (b = bind_text(st, 5, str(rec->status))) || (b = bind_text(st, 6, rec->state)) ||
	    (b = bind_int64(st, 7, rec->version)) || (b = bind_int64(st, 8, rec->step_no)) ||
	    (b = bind_int(st, 9, rec->attempt)) || (b = bind_text(st, 10, str(rec->error))) ||
	    (b = bind_text(st, 11, rec->meta && *rec->meta ? rec->meta : NULL)) || (b = bind_text(st, 12, next)) ||
	    (b = bind_text(st, 13, created)) || (b = bind_text(st, 14, updated)) || (b = bind_int(st, 15, rec->priority)) ||
	    (b = bind_text(st, 16, str(rec->concurrency_key))) || (b = bind_text(st, 17, str(rec->wait))) ||
	    (b = bind_text(st, 18, str(rec->parent_id))) || (b = bind_text(st, 19, str(rec->workflow_version))))
		return bind_fail(c, st, b, what);
	rc = insert_row(c, st, what, &dup);
	return rc == DURA_EEXISTS ? record_refused(s, c, rec, dup) : rc;
}

static int insert_steps(sq_store *s, sq_conn *c, const dura_import_run *r)
{
	static const char what[] = "importing a run's steps";
	sqlite3_stmt *st;
	int rc = r->nsteps ? dsq_prep(s, c, ST_STEP_INSERT, &st) : 0;
	for (size_t i = 0; rc == 0 && i < r->nsteps; i++) {
		const dura_step *x = &r->steps[i];
		char created[24], step[24];
		int b, dup = 0;
		fmt_time(created, x->created_at);
		if ((b = bind_text(st, 1, x->run_id)) || (b = bind_int64(st, 2, x->step)) || (b = bind_text(st, 3, x->node_id)) ||
		    (b = bind_text(st, 4, x->state)) || (b = bind_text(st, 5, created)) ||
		    (b = bind_text(st, 6, str(x->workflow_version))))
			return bind_fail(c, st, b, what);
		if ((rc = insert_row(c, st, what, &dup)) == DURA_EEXISTS) {
			snprintf(step, sizeof(step), "%lld", (long long)x->step);
			rc = dura_sql_err_import_taken(SQ, dup, NULL, r->record->run_id, "step", step);
		}
	}
	return rc;
}

static int insert_checkpoints(sq_store *s, sq_conn *c, const dura_import_run *r)
{
	static const char what[] = "importing a run's checkpoints";
	sqlite3_stmt *st;
	int rc = r->ncheckpoints ? dsq_prep(s, c, ST_CP_IMPORT, &st) : 0;
	for (size_t i = 0; rc == 0 && i < r->ncheckpoints; i++) {
		const dura_checkpoint *x = &r->checkpoints[i];
		char created[24], updated[24];
		int b, dup = 0;
		fmt_time(created, x->created_at);
		fmt_time(updated, x->updated_at);
		if ((b = bind_text(st, 1, x->checkpoint_id)) || (b = bind_text(st, 2, x->run_id)) ||
		    (b = bind_int64(st, 3, x->step)) || (b = bind_text(st, 4, x->state)) || (b = bind_text(st, 5, created)) ||
		    (b = bind_text(st, 6, updated)))
			return bind_fail(c, st, b, what);
		if ((rc = insert_row(c, st, what, &dup)) == DURA_EEXISTS)
			rc = dura_sql_err_import_taken(SQ, dup, NULL, r->record->run_id, "checkpoint", x->checkpoint_id);
	}
	return rc;
}

static int insert_signals(sq_store *s, sq_conn *c, const dura_import_run *r)
{
	static const char what[] = "importing a run's signals";
	sqlite3_stmt *st;
	int rc = r->nsignals ? dsq_prep(s, c, ST_SIGNAL_INSERT, &st) : 0;
	for (size_t i = 0; rc == 0 && i < r->nsignals; i++) {
		const dura_signal *x = &r->signals[i];
		char created[24];
		int b, dup = 0;
		fmt_time(created, x->created_at);
		/* a signal sent without a payload has "null" (dura_store_signal_send) */
		if ((b = bind_text(st, 1, x->signal_id)) || (b = bind_text(st, 2, x->run_id)) || (b = bind_text(st, 3, x->name)) ||
		    (b = bind_text(st, 4, x->payload && *x->payload ? x->payload : "null")) || (b = bind_text(st, 5, created)))
			return bind_fail(c, st, b, what);
		if ((rc = insert_row(c, st, what, &dup)) == DURA_EEXISTS)
			rc = dura_sql_err_import_taken(SQ, dup, NULL, r->record->run_id, "signal", x->signal_id);
	}
	return rc;
}

static int import_tx(sq_store *s, sq_conn *c, const dura_import_run *r)
{
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = insert_record(s, c, r->record)) == 0 && (rc = insert_steps(s, c, r)) == 0 &&
	    (rc = insert_checkpoints(s, c, r)) == 0 && (rc = insert_signals(s, c, r)) == 0)
		return dsq_tx_commit(s, c);
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_import_run(void *impl, const dura_import_run *r)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = import_tx(s, c, r);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_import_event(void *impl, const dura_event *ev)
{
	static const char what[] = "importing an outbox event";
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char created[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_OUTBOX_IMPORT, &st)) == 0) {
		int b, dup = 0;
		fmt_time(created, ev->created_at);
		if ((b = bind_text(st, 1, ev->id)) || (b = bind_text(st, 2, ev->workflow_name)) ||
		    (b = bind_text(st, 3, ev->run_id)) || (b = bind_text(st, 4, ev->type)) || (b = bind_text(st, 5, ev->data)) ||
		    (b = bind_text(st, 6, created)))
			rc = bind_fail(c, st, b, what);
		else if ((rc = insert_row(c, st, what, &dup)) == DURA_EEXISTS)
			rc = dura_sql_err_event_exists(SQ, dup, NULL, ev->id);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_OUTBOX_LIST, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, after)) || (b = bind_int64(st, 2, (int64_t)limit)))
			rc = bind_fail(c, st, b, "listing the outbox");
		else
			rc = dsq_collect(c, st, DURA_SQL_EVENT, (void **)&out->items, &out->count, "listing the outbox");
	}
	dsq_pool_put(s, c);
	return rc;
}
