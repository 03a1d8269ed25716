/*
 * steps.c - what the SQLite store's commits leave to read: a run's steps
 * (its history, one step, the latest), the checkpoints, and the outbox,
 * polled and acknowledged.
 */
#include "sqlite.h"

/* ---- steps ---------------------------------------------------------------------- */

int dsq_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_HISTORY, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_int64(st, 2, from)) ||
		    (b = bind_int64(st, 3, limit && limit <= INT64_MAX ? (int64_t)limit : -1)))
			rc = bind_fail(c, st, b, "reading steps");
		else
			rc = dsq_collect(c, st, DURA_SQL_STEP, (void **)&out->items, &out->count, "reading steps");
	}
	dsq_pool_put(s, c);
	return rc;
}

/* One step from a bound statement, or ENOTFOUND (no message). */
int dsq_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_STEP_GET, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_int64(st, 2, step)))
			rc = bind_fail(c, st, b, "reading a step");
		else
			rc = dsq_fetch(c, st, DURA_SQL_STEP, (void **)out, "reading a step");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_step(SQ, run_id, step);
	return rc;
}

int dsq_load_latest(void *impl, const char *run_id, dura_step **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_STEP_LATEST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "reading a step") : dsq_fetch(c, st, DURA_SQL_STEP, (void **)out, "reading a step");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_committed_step(SQ, run_id);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

int dsq_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CP_SAVE, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		int b;
		if ((b = bind_text(st, 1, cp_id)) || (b = bind_text(st, 2, run_id)) || (b = bind_text(st, 3, state)) ||
		    (b = bind_int64(st, 4, step)) || (b = bind_text(st, 5, now_txt)) || (b = bind_text(st, 6, now_txt)))
			rc = bind_fail(c, st, b, "saving a checkpoint");
		else
			rc = dsq_write_one(c, st, "saving a checkpoint", NULL);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CP_LOAD, &st)) == 0) {
		int b = bind_text(st, 1, cp_id);
		rc = b ? bind_fail(c, st, b, "reading a checkpoint")
		       : dsq_fetch(c, st, DURA_SQL_CHECKPOINT, (void **)out, "reading a checkpoint");
		if (rc == DURA_ENOTFOUND)
			rc = dura_sql_err_checkpoint_not_found(SQ, cp_id);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CP_LIST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		if (b == 0)
			b = bind_text(st, 2, run_id);
		rc = b ? bind_fail(c, st, b, "listing checkpoints")
		       : dsq_collect(c, st, DURA_SQL_CHECKPOINT, (void **)&out->items, &out->count, "listing checkpoints");
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_checkpoint_delete(void *impl, const char *cp_id)
{
	return dsq_delete_by(impl, ST_CP_DELETE, cp_id, "checkpoint %s not found");
}

/* ---- outbox -------------------------------------------------------------------------- */

int dsq_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_OUTBOX_POLL, &st)) == 0) {
		int b = bind_int64(st, 1, (int64_t)limit);
		rc = b ? bind_fail(c, st, b, "polling the outbox")
		       : dsq_collect(c, st, DURA_SQL_EVENT, (void **)&out->items, &out->count, "polling the outbox");
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_outbox_ack(void *impl, const char *event_id)
{
	return dsq_delete_by(impl, ST_OUTBOX_ACK, event_id, "outbox event %s not found (already acknowledged?)");
}
