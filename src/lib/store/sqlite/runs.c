/*
 * runs.c - the SQLite store's runs: creating one (the one-active-run rule
 * checked under the write lock, and kept by a unique index), reading and
 * listing them, run-state changes (a cancel wakes the parent that waits
 * for the run) and the erasing of a run's data. dsq_run_state_of() reads
 * a run's state inside a transaction, and dsq_erase_run() erases a run's
 * data in one, for the other files too.
 */
#include "sqlite.h"

static int create_run_tx(sq_store *s, sq_conn *c, const dura_run_create *req, const char *run_id, dura_record **out)
{
	const char *fid = req->foreign_id ? req->foreign_id : "";
	const char *state = req->state ? req->state : "{}";
	const char *status = req->status ? req->status : "";
	const char *meta = req->meta && *req->meta ? req->meta : NULL;
	int run_state = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	int64_t now = dura_now_ms(), next = req->next_run_at ? req->next_run_at : now;
	char now_txt[24], next_txt[24];
	fmt_time(now_txt, now);
	fmt_time(next_txt, next);
	sqlite3_stmt *st;
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;

	/* one active run per workflow and foreign id: under the write lock, so
	 * no other process can start one between this check and the insert */
	if (*fid) {
		if ((rc = dsq_prep(s, c, ST_RUN_ACTIVE, &st)) != 0)
			goto fail;
		int b;
		if ((b = bind_text(st, 1, req->workflow_name)) || (b = bind_text(st, 2, fid))) {
			rc = bind_fail(c, st, b, "looking up the active run");
			goto fail;
		}
		dura_record *existing = NULL;
		rc = dsq_fetch(c, st, DURA_SQL_RECORD, (void **)&existing, "looking up the active run");
		if (rc == 0) {
			dsq_tx_rollback(s, c);
			rc = dura_error_set_native(DURA_EEXISTS, SQ, 0, NULL,
			                           "workflow %s already has an active run %s with foreign id %s",
			                           req->workflow_name, existing->run_id, fid);
			if (out)
				*out = existing;
			else
				dura_record_free(existing);
			return rc;
		}
		if (rc != DURA_ENOTFOUND)
			goto fail;
	}

	if ((rc = dsq_prep(s, c, ST_RUN_INSERT, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, run_id)) || (b = bind_text(st, 2, req->workflow_name)) || (b = bind_text(st, 3, fid)) ||
	    (b = bind_int(st, 4, run_state)) || (b = bind_text(st, 5, status)) || (b = bind_text(st, 6, state)) ||
	    (b = bind_text(st, 7, meta)) || (b = bind_text(st, 8, next_txt)) || (b = bind_text(st, 9, now_txt)) ||
	    (b = bind_text(st, 10, now_txt)) || (b = bind_int(st, 11, req->priority)) ||
	    (b = bind_text(st, 12, req->concurrency_key ? req->concurrency_key : "")) ||
	    (b = bind_text(st, 13, req->parent_id ? req->parent_id : "")) ||
	    (b = bind_text(st, 14, req->workflow_version ? req->workflow_version : ""))) {
		rc = bind_fail(c, st, b, "creating a run");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		int xrc = rc;
		sqlite3_reset(st);
		/* the run id is taken (or, racing a writer that bypassed the
		 * check above, the foreign id): hand back what is there */
		dura_record *existing = NULL;
		if ((rc = dsq_prep(s, c, ST_RUN_GET, &st)) != 0)
			goto fail;
		if ((b = bind_text(st, 1, run_id)) != 0) {
			rc = bind_fail(c, st, b, "looking up the run");
			goto fail;
		}
		rc = dsq_fetch(c, st, DURA_SQL_RECORD, out ? (void **)&existing : NULL, "looking up the run");
		dsq_tx_rollback(s, c);
		if (rc == 0) {
			if (out)
				*out = existing;
			return dura_error_set_native(DURA_EEXISTS, SQ, xrc, NULL, "run %s already exists", run_id);
		}
		if (rc != DURA_ENOTFOUND)
			return rc;
		return dura_error_set_native(DURA_EEXISTS, SQ, xrc, NULL,
		                             "workflow %s already has an active run with foreign id %s", req->workflow_name,
		                             fid);
	} else {
		rc = dsq_fail(c, rc, "creating a run");
		sqlite3_reset(st);
		goto fail;
	}
	/* the caller's copy before the commit: running out of memory after it
	 * would report a failure for a run that exists */
	dura_record *made = NULL;
	if (out && (rc = dura_sql_created_record(&made, SQ, run_id, req, fid, state, status, run_state, now, next)) != 0)
		goto fail;
	if ((rc = dsq_tx_commit(s, c)) != 0) {
		dura_record_free(made);
		return rc;
	}
	if (out)
		*out = made;
	return 0;
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = create_run_tx(s, c, req, run_id, out);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_get_run(void *impl, const char *run_id, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_RUN_GET, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "reading a run") : dsq_fetch(c, st, DURA_SQL_RECORD, (void **)out, "reading a run");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_run_not_found(SQ, run_id);
	return rc;
}

int dsq_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_RUN_LATEST, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, wf)) || (b = bind_text(st, 2, fid)))
			rc = bind_fail(c, st, b, "reading the latest run");
		else
			rc = dsq_fetch(c, st, DURA_SQL_RECORD, (void **)out, "reading the latest run");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_run_with_fid(SQ, wf, fid);
	return rc;
}

int dsq_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char after[24], before[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_RUN_LIST, &st)) != 0)
		goto out;
	if (f->created_after)
		fmt_time(after, f->created_after);
	if (f->created_before)
		fmt_time(before, f->created_before);
	/* each filter is bound twice, "(? IS NULL OR column = ?)", but waiting,
	 * "(? = 0 OR wait_for <> '')"; workflow_version after it */
	const char *text[6] = {f->workflow_name, NULL, f->status, f->foreign_id, f->created_after ? after : NULL,
	                       f->created_before ? before : NULL};
	const char *cursor = f->cursor && *f->cursor ? f->cursor : NULL;
	int b = 0;
	for (int i = 0; i < 6 && !b; i++) {
		if (i == 1) {
			if ((b = bind_int(st, 3, f->run_state)) == 0)
				b = bind_int(st, 4, f->run_state);
		} else if ((b = bind_text(st, 2 * i + 1, text[i])) == 0) {
			b = bind_text(st, 2 * i + 2, text[i]);
		}
	}
	/* the core hands every store a filter of the current version; due
	 * is "(? = 0 OR (run_state = 2 AND next_run_at <= now AND ...now))" */
	char now_txt[24];
	fmt_time(now_txt, dura_now_ms());
	if (b || (b = bind_text(st, 13, cursor)) || (b = bind_text(st, 14, cursor)) ||
	    (b = bind_text(st, 15, f->parent_id)) || (b = bind_text(st, 16, f->parent_id)) ||
	    (b = bind_int(st, 17, f->waiting != 0)) || (b = bind_text(st, 18, f->workflow_version)) ||
	    (b = bind_text(st, 19, f->workflow_version)) || (b = bind_int(st, 20, f->due != 0)) ||
	    (b = bind_text(st, 21, now_txt)) || (b = bind_text(st, 22, now_txt)) ||
	    (b = bind_int64(st, 23, (int64_t)f->limit))) {
		rc = bind_fail(c, st, b, "listing runs");
		goto out;
	}
	if ((rc = dsq_collect(c, st, DURA_SQL_RECORD, (void **)&out->items, &out->count, "listing runs")) != 0)
		goto out;
	if (out->count == f->limit && out->count > 0) {
		out->next_cursor = dura_strdup(out->items[out->count - 1].run_id);
		if (!out->next_cursor) {
			dura_record_list_free(out);
			rc = dura_error_oom(SQ);
		}
	}
out:
	dsq_pool_put(s, c);
	return rc;
}

/*
 * Read a run's state and version inside the open transaction; ENOTFOUND
 * with a message when it is absent.
 */
int dsq_run_state_of(sq_store *s, sq_conn *c, const char *run_id, int *state, int64_t *version)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_RUN_STATE, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, run_id)) != 0)
		return bind_fail(c, st, rc, "reading a run");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = sqlite3_column_int(st, 0);
		*version = sqlite3_column_int64(st, 1);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = dsq_fail(c, rc, "reading a run");
	}
	sqlite3_reset(st);
	return rc;
}

/* A DELETE or UPDATE bound with one text key, run in the open transaction. */
static int run_keyed(sq_store *s, sq_conn *c, int id, const char *key, const char *what)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, id, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, key)) != 0)
		return bind_fail(c, st, rc, what);
	return dsq_run_done(c, st, what);
}

/*
 * Inside the open transaction: the run's state becomes {}, its run_state
 * data_deleted, its steps, checkpoints and signals go. *version gets the
 * new one.
 */
int dsq_erase_run(sq_store *s, sq_conn *c, const char *run_id, int64_t *version)
{
	char now_txt[24];
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_RUN_ERASE, &st);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = bind_text(st, 1, run_id)) || (rc = bind_text(st, 2, now_txt)))
		return bind_fail(c, st, rc, "erasing a run's state");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = dsq_fail(c, rc, "erasing a run's state");
	}
	sqlite3_reset(st);
	if (rc)
		return rc;
	if ((rc = run_keyed(s, c, ST_STEPS_ERASE, run_id, "deleting a run's steps")) != 0 ||
	    (rc = run_keyed(s, c, ST_CPS_ERASE, run_id, "deleting a run's checkpoints")) != 0)
		return rc;
	return run_keyed(s, c, ST_SIGNAL_ERASE, run_id, "deleting a run's signals");
}

/*
 * Inside the open transaction: a cancelled run wakes its parent if the
 * parent is running and waits for this child ("child:" + run_id), as
 * wake() would; a run without a parent, or a parent that waits for
 * something else, is left alone.
 */
static int wake_parent(sq_store *s, sq_conn *c, const char *run_id, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_RUN_WAKE_PARENT, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, run_id)))
		return bind_fail(c, st, b, "waking the parent of a cancelled run");
	return dsq_run_done(c, st, "waking the parent of a cancelled run");
}

static int set_state_tx(sq_store *s, sq_conn *c, const char *run_id, int to, int64_t *new_version)
{
	int cur;
	int64_t version;
	char now_txt[24];
	sqlite3_stmt *st;
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = dsq_run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (!dura_run_state_transition_ok(cur, to)) {
		rc = dura_sql_err_move(SQ, run_id, cur, to);
		goto fail;
	}
	if (to == DURA_RUN_DATA_DELETED) {
		/* the state's name is a promise: the data goes, as with delete_run_data */
		if ((rc = dsq_erase_run(s, c, run_id, &version)) != 0)
			goto fail;
		goto done;
	}
	if ((rc = dsq_prep(s, c, ST_RUN_SET_STATE, &st)) != 0)
		goto fail;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = bind_text(st, 1, run_id)) || (rc = bind_int(st, 2, to)) || (rc = bind_text(st, 3, now_txt)) ||
	    (rc = bind_int(st, 4, cur))) {
		rc = bind_fail(c, st, rc, "changing a run's state");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		version = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		/* resuming a failed run while another run of the same workflow
		 * and foreign id is active */
		rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL,
		                           "cannot move run %s to %s: its workflow already has an active run with the same "
		                           "foreign id",
		                           run_id, dura_run_state_name(to));
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_moved_meanwhile(SQ, run_id, to);
	} else {
		rc = dsq_fail(c, rc, "changing a run's state");
	}
	sqlite3_reset(st);
	if (rc)
		goto fail;
	if (to == DURA_RUN_CANCELLED && (rc = wake_parent(s, c, run_id, now_txt)) != 0)
		goto fail;
done:
	if ((rc = dsq_tx_commit(s, c)) != 0)
		return rc;
	if (new_version)
		*new_version = version;
	return 0;
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = set_state_tx(s, c, run_id, to, new_version);
	dsq_pool_put(s, c);
	return rc;
}

static int delete_data_tx(sq_store *s, sq_conn *c, const char *run_id)
{
	int cur;
	int64_t version;
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = dsq_run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (cur != DURA_RUN_COMPLETED && cur != DURA_RUN_CANCELLED && cur != DURA_RUN_FAILED) {
		rc = dura_sql_err_delete_live(SQ, run_id, cur);
		goto fail;
	}
	if ((rc = dsq_erase_run(s, c, run_id, &version)) != 0)
		goto fail;
	return dsq_tx_commit(s, c);
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_delete_run_data(void *impl, const char *run_id)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = delete_data_tx(s, c, run_id);
	dsq_pool_put(s, c);
	return rc;
}
