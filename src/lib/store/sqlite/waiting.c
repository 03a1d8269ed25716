/*
 * waiting.c - the SQLite store's durable waiting (contract version 5):
 * making a waiting run due (dsq_wake_tx(), which a commit uses too), the
 * signal inbox (a signal and the wake it causes in one write
 * transaction), the wake operation, and the schedules with the
 * compare-and-swap of workers firing them. SQLite cannot tell another
 * process's worker (sqlite.h), so a wake only makes the run due.
 */
#include "sqlite.h"

/* ---- durable waiting: signals and wakes (contract version 5) ------------------------ */

/*
 * Inside the open transaction: make run_id due now if it is running and
 * waits for exactly `wait` (RUN_WAKE, which leaves the wait as it is).
 * *woke gets 1 when it did, 0 when no run waits so (not an error here).
 */
int dsq_wake_tx(sq_store *s, sq_conn *c, const char *run_id, const char *wait, const char *now_txt, int *woke)
{
	sqlite3_stmt *st;
	int changes = 0, rc = dsq_prep(s, c, ST_RUN_WAKE, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, now_txt)) || (b = bind_text(st, 3, run_id)) ||
	    (b = bind_text(st, 4, wait)))
		return bind_fail(c, st, b, "waking a run");
	rc = dsq_write_one(c, st, "waking a run", &changes);
	if (woke)
		*woke = changes > 0;
	return rc;
}

/*
 * A signal and the wake it causes are one write transaction (BEGIN
 * IMMEDIATE): no commit of the run can start waiting between the insert
 * and the wake, in this process or another, so a signal is never missed.
 */
static int signal_send_tx(sq_store *s, sq_conn *c, const char *signal_id, const char *run_id, const char *name,
                          const char *payload)
{
	int cur;
	int64_t version;
	char now_txt[24];
	sqlite3_stmt *st;
	/* the run that waits for it waits for "signal:" + name (the core
	 * checked the name: at most DURA_MAX_NAME_LEN bytes) */
	char wait[sizeof("signal:") + DURA_MAX_NAME_LEN];
	if ((size_t)snprintf(wait, sizeof(wait), "signal:%s", name) >= sizeof(wait))
		return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL, "signal name %.40s... is longer than %d bytes", name,
		                             DURA_MAX_NAME_LEN);
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = dsq_run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (cur == DURA_RUN_COMPLETED || cur == DURA_RUN_FAILED || cur == DURA_RUN_CANCELLED ||
	    cur == DURA_RUN_DATA_DELETED) {
		rc = dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
		                           "cannot send signal %s to run %s: the run is %s (it has ended)", name, run_id,
		                           dura_run_state_name(cur));
		goto fail;
	}
	fmt_time(now_txt, dura_now_ms());
	if ((rc = dsq_prep(s, c, ST_SIGNAL_INSERT, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, signal_id)) || (b = bind_text(st, 2, run_id)) || (b = bind_text(st, 3, name)) ||
	    (b = bind_text(st, 4, payload ? payload : "null")) || (b = bind_text(st, 5, now_txt))) {
		rc = bind_fail(c, st, b, "sending a signal");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = 0;
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = dura_error_set_native(DURA_EEXISTS, SQ, rc, NULL, "signal %s already exists", signal_id);
	} else {
		rc = dsq_fail(c, rc, "sending a signal");
	}
	sqlite3_reset(st);
	if (rc)
		goto fail;
	if ((rc = dsq_wake_tx(s, c, run_id, wait, now_txt, NULL)) != 0)
		goto fail;
	return dsq_tx_commit(s, c);
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = signal_send_tx(s, c, signal_id, run_id, name, payload);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_SIGNAL_NEXT, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_text(st, 2, name)))
			rc = bind_fail(c, st, b, "reading a signal");
		else
			rc = dsq_fetch(c, st, DURA_SQL_SIGNAL, (void **)out, "reading a signal");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "run %s has no pending signal %s", run_id, name);
	return rc;
}

int dsq_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_SIGNAL_LIST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "listing signals")
		       : dsq_collect(c, st, DURA_SQL_SIGNAL, (void **)&out->items, &out->count, "listing signals");
	}
	dsq_pool_put(s, c);
	return rc;
}

/* One UPDATE, atomic on its own. SQLite cannot reach a worker of another
 * process (no wait_ready): the run is due now, and a claim finds it. */
int dsq_wake(void *impl, const char *run_id, const char *wait)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24];
	int woke = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	rc = dsq_wake_tx(s, c, run_id, wait, now_txt, &woke);
	dsq_pool_put(s, c);
	if (rc == 0 && !woke)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "no running run %s waits for %s", run_id, wait);
	return rc;
}

/* ---- durable waiting: schedules ---------------------------------------------------- */

/* Insert or replace by name; on replace created_at is kept (the upsert
 * does not set it). */
int dsq_schedule_put(void *impl, const dura_schedule *sch)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], tick_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_SCHEDULE_PUT, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		fmt_time(tick_txt, sch->next_tick);
		int b;
		if ((b = bind_text(st, 1, sch->name)) || (b = bind_text(st, 2, sch->cron)) ||
		    (b = bind_text(st, 3, sch->zone ? sch->zone : "UTC")) || (b = bind_text(st, 4, sch->workflow_name)) ||
		    (b = bind_text(st, 5, sch->state ? sch->state : "{}")) || (b = bind_int(st, 6, sch->catch_up)) ||
		    (b = bind_text(st, 7, tick_txt)) || (b = bind_text(st, 8, now_txt)) || (b = bind_text(st, 9, now_txt)))
			rc = bind_fail(c, st, b, "saving a schedule");
		else
			rc = dsq_write_one(c, st, "saving a schedule", NULL);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_SCHEDULE_GET, &st)) == 0) {
		int b = bind_text(st, 1, name);
		rc = b ? bind_fail(c, st, b, "reading a schedule")
		       : dsq_fetch(c, st, DURA_SQL_SCHEDULE, (void **)out, "reading a schedule");
	}
	dsq_pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "schedule %s not found", name);
	return rc;
}

int dsq_schedule_delete(void *impl, const char *name)
{
	return dsq_delete_by(impl, ST_SCHEDULE_DELETE, name, "schedule %s not found");
}

int dsq_schedule_list(void *impl, dura_schedules *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_SCHEDULE_LIST, &st)) == 0)
		rc = dsq_collect(c, st, DURA_SQL_SCHEDULE, (void **)&out->items, &out->count, "listing schedules");
	dsq_pool_put(s, c);
	return rc;
}

/* The compare-and-swap of workers firing a schedule, and why it missed,
 * in one write transaction: a schedule deleted meanwhile is ENOTFOUND,
 * one another worker advanced is ECONFLICT. */
static int advance_tx(sq_store *s, sq_conn *c, const char *name, int64_t from, int64_t to)
{
	char now_txt[24], from_txt[24], to_txt[24];
	sqlite3_stmt *st;
	int changes = 0, b, rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	fmt_time(from_txt, from);
	fmt_time(to_txt, to);
	if ((rc = dsq_prep(s, c, ST_SCHEDULE_ADVANCE, &st)) != 0)
		goto fail;
	if ((b = bind_text(st, 1, to_txt)) || (b = bind_text(st, 2, now_txt)) || (b = bind_text(st, 3, name)) ||
	    (b = bind_text(st, 4, from_txt))) {
		rc = bind_fail(c, st, b, "advancing a schedule");
		goto fail;
	}
	if ((rc = dsq_write_one(c, st, "advancing a schedule", &changes)) != 0)
		goto fail;
	if (changes == 0) {
		if ((rc = dsq_prep(s, c, ST_SCHEDULE_GET, &st)) != 0)
			goto fail;
		if ((b = bind_text(st, 1, name)) != 0) {
			rc = bind_fail(c, st, b, "reading a schedule");
			goto fail;
		}
		rc = dsq_fetch(c, st, DURA_SQL_SCHEDULE, NULL, "reading a schedule");
		if (rc == 0)
			rc = dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
			                           "schedule %s is no longer at tick %s (another worker advanced it)", name,
			                           from_txt);
		else if (rc == DURA_ENOTFOUND)
			rc = dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "schedule %s not found", name);
		goto fail;
	}
	return dsq_tx_commit(s, c);
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = advance_tx(s, c, name, from, to);
	dsq_pool_put(s, c);
	return rc;
}
