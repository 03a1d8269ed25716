/*
 * commit.c - the SQLite store's step commits (the vtable's commit and
 * commit_batch): in one write transaction, the CAS update of the record
 * (which returns what it wrote), the signal the commit consumes and the
 * run it wakes, the step row and the outbox row. A batch is one
 * transaction with a savepoint an item, so that an item that conflicts
 * is undone alone and the others go in. The default event data is built
 * here (dura_store_event_summary) so that its bytes are the same as in
 * every store.
 */
#include "sqlite.h"

/* Why a CAS update matched no row: the run is gone, or at another version. */
static int commit_miss(sq_store *s, sq_conn *c, const dura_commit *cm)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_RUN_VERSION, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, cm->run_id)) != 0)
		return bind_fail(c, st, rc, "reading a run's version");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = dura_sql_err_version(SQ, cm->run_id, sqlite3_column_int64(st, 0), cm->expect_version);
	else if (rc == SQLITE_DONE)
		rc = dura_sql_err_run_not_found(SQ, cm->run_id);
	else
		rc = dsq_fail(c, rc, "reading a run's version");
	sqlite3_reset(st);
	return rc;
}

/*
 * What a commit that went in does about waiting, in its transaction: the
 * signal it consumes must still be there (else DURA_ECONFLICT: another
 * commit took it, and the caller undoes this one), and the run it wakes
 * is woken if it still waits so.
 */
static int commit_waits(sq_store *s, sq_conn *c, const dura_commit *cm, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc;
	if (cm->signal_id) {
		int changes = 0, b;
		if ((rc = dsq_prep(s, c, ST_SIGNAL_DELETE, &st)) != 0)
			return rc;
		if ((b = bind_text(st, 1, cm->signal_id)) || (b = bind_text(st, 2, cm->run_id)))
			return bind_fail(c, st, b, "consuming a signal");
		if ((rc = dsq_write_one(c, st, "consuming a signal", &changes)) != 0)
			return rc;
		if (changes == 0)
			return dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
			                             "signal %s of run %s is not there (another commit consumed it); the "
			                             "commit was not made",
			                             cm->signal_id, cm->run_id);
	}
	/* the core sends a wake_wait with every wake_run_id; without one there
	 * is nothing a run could wait for */
	if (cm->wake_run_id && cm->wake_wait && *cm->wake_wait)
		return dsq_wake_tx(s, c, cm->wake_run_id, cm->wake_wait, now_txt, NULL);
	return 0;
}

/*
 * One step commit inside the open transaction: the CAS update of the
 * record (with its wait, and the commit's workflow version when the record
 * has none), the signal it consumes and the run it wakes, the step row
 * (with that version), the outbox row. A stale version or a missing run
 * (ECONFLICT, ENOTFOUND) writes nothing; a consumed signal (ECONFLICT)
 * and any other failure leave writes the caller undoes (a rollback, or a
 * rollback to the batch item's savepoint).
 */
static int commit_one(sq_store *s, sq_conn *c, const dura_commit *cm, const char *event_id, const char *now_txt,
                      dura_commit_result *res)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	const int do_step = plan.do_step, do_event = plan.do_event, release = plan.release, full = plan.full;
	const char *status = plan.status, *wv = dura_sql_commit_version(cm);
	char next_txt[24];
	sqlite3_stmt *up, *st;
	int rc;

	if (cm->next_run_at)
		fmt_time(next_txt, cm->next_run_at);
	if ((rc = dsq_prep(s, c, full ? ST_COMMIT_UPDATE_FULL : ST_COMMIT_UPDATE, &up)) != 0)
		return rc;
	int b;
	if ((b = bind_text(up, 1, cm->run_id)) || (b = bind_int64(up, 2, cm->expect_version)) ||
	    (b = bind_text(up, 3, cm->state)) || (b = bind_text(up, 4, status)) ||
	    (b = bind_text(up, 5, cm->error ? cm->error : "")) || (b = bind_int(up, 6, cm->attempt)) ||
	    (b = bind_text(up, 7, cm->next_run_at ? next_txt : now_txt)) || (b = bind_text(up, 8, now_txt)) ||
	    (b = bind_int(up, 9, do_step)) || (b = bind_text(up, full ? 12 : 10, cm->wait ? cm->wait : "")) ||
	    (b = bind_text(up, full ? 13 : 11, wv)) ||
	    (full && ((b = bind_int_or_null(up, 10, cm->run_state)) || (b = bind_int(up, 11, release)))))
		return bind_fail(c, up, b, "committing a step");
	rc = sqlite3_step(up);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE) {
			sqlite3_reset(up);
			return commit_miss(s, c, cm);
		}
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL,
			                           "cannot commit run %s as %s: its workflow already has an active run with the "
			                           "same foreign id",
			                           cm->run_id, dura_run_state_name(cm->run_state));
		else
			rc = dsq_fail(c, rc, "committing a step");
		sqlite3_reset(up);
		return rc;
	}
	int64_t step_no = sqlite3_column_int64(up, 0);
	int run_state = sqlite3_column_int(up, 2);
	res->new_version = cm->expect_version + 1;
	res->step = do_step ? step_no - 1 : -1;
	if (do_event) {
		/* the outbox row needs the workflow name: bind a copy before the
		 * update statement is reset */
		if ((rc = dsq_prep(s, c, ST_OUTBOX_INSERT, &st)) != 0) {
			sqlite3_reset(up);
			return rc;
		}
		rc = bind_text_copy(st, 2, (const char *)sqlite3_column_text(up, 1), sqlite3_column_bytes(up, 1));
		if (rc) {
			sqlite3_reset(up);
			return bind_fail(c, st, rc, "writing an outbox event");
		}
	}
	sqlite3_reset(up);
	if ((rc = commit_waits(s, c, cm, now_txt)) != 0)
		return rc;

	if (do_step) {
		if ((rc = dsq_prep(s, c, ST_STEP_INSERT, &st)) != 0)
			return rc;
		if ((b = bind_text(st, 1, cm->run_id)) || (b = bind_int64(st, 2, res->step)) ||
		    (b = bind_text(st, 3, cm->node_id)) || (b = bind_text(st, 4, cm->state)) ||
		    (b = bind_text(st, 5, now_txt)) || (b = bind_text(st, 6, wv)))
			return bind_fail(c, st, b, "writing a step");
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL, "run %s already has a step %lld",
				                           cm->run_id, (long long)res->step);
			else
				rc = dsq_fail(c, rc, "writing a step");
			sqlite3_reset(st);
			return rc;
		}
		sqlite3_reset(st);
	}

	if (do_event) {
		/* the default event data (dura_store_event_summary): ids are at most 255
		 * bytes (6 each once escaped), the stack buffer fits them unless a
		 * caller skipped validation */
		char buf[3 * (6 * DURA_MAX_ID_LEN + 2) + 128], *heap = NULL;
		const char *payload = cm->event_data;
		if (!payload) {
			size_t n = dura_store_event_summary(buf, sizeof buf, cm->run_id, res->step, cm->node_id, status, run_state);
			if (n >= sizeof buf) {
				if (!(heap = dura_malloc(n + 1)))
					return dura_error_oom(SQ);
				dura_store_event_summary(heap, n + 1, cm->run_id, res->step, cm->node_id, status, run_state);
			}
			payload = heap ? heap : buf;
		}
		st = c->st[ST_OUTBOX_INSERT]; /* prepared, and column 2 bound, above */
		if ((b = bind_text(st, 1, event_id)) || (b = bind_text(st, 3, cm->run_id)) ||
		    (b = bind_text(st, 4, cm->event_type ? cm->event_type : "step")) || (b = bind_text(st, 5, payload)) ||
		    (b = bind_text(st, 6, now_txt)))
			rc = bind_fail(c, st, b, "writing an outbox event");
		else
			rc = dsq_run_done(c, st, "writing an outbox event");
		dura_free(heap);
		if (rc)
			return rc;
	}
	return 0;
}

int dsq_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = dsq_tx_begin(s, c)) == 0) {
		rc = commit_one(s, c, cm, event_id, now_txt, res);
		if (rc == 0)
			rc = dsq_tx_commit(s, c);
		else
			dsq_tx_rollback(s, c);
	}
	if (rc) {
		res->new_version = 0;
		res->step = -1;
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                     dura_commit_result *res)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24], first[256] = "";
	size_t failed = 0;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		goto fatal_nc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = dsq_tx_begin(s, c)) != 0)
		goto fatal;
	for (size_t i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		if ((rc = dsq_run_simple(s, c, ST_SAVEPOINT)) != 0)
			goto fatal;
		rc = commit_one(s, c, &cm[i], event_ids[i], now_txt, &res[i]);
		if (rc == 0) {
			if ((rc = dsq_run_simple(s, c, ST_RELEASE)) != 0)
				goto fatal;
			continue;
		}
		if (rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			goto fatal;
		res[i].code = rc;
		res[i].new_version = 0;
		res[i].step = -1;
		if (!failed++) {
			const dura_error *e = dura_error_last();
			snprintf(first, sizeof(first), "%s", e && e->message ? e->message : "");
		}
		if ((rc = dsq_run_simple(s, c, ST_ROLLBACK_TO)) != 0 || (rc = dsq_run_simple(s, c, ST_RELEASE)) != 0)
			goto fatal;
	}
	if ((rc = dsq_tx_commit(s, c)) != 0)
		goto fatal;
	dsq_pool_put(s, c);
	if (!failed)
		return 0;
	return dura_sql_err_batch(SQ, failed, n, first);
fatal:
	dsq_tx_rollback(s, c);
	dsq_pool_put(s, c);
fatal_nc:
	for (size_t i = 0; i < n; i++) {
		res[i].code = rc;
		res[i].new_version = 0;
		res[i].step = -1;
	}
	return rc;
}
