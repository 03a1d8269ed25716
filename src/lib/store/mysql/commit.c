/*
 * commit.c - the MySQL store's step commits (the vtable's commit and
 * commit_batch): the CAS update of the record, the step row and the outbox
 * row, in one round trip through the dura_commit procedure (schema.c)
 * where it can be used, else in a transaction of several statements; a
 * batch in one transaction; and, after the connection was lost while
 * committing, commit_verify(), which reads the run back and decides
 * whether the lost commit landed, so that a step is neither lost nor
 * doubled. The default event data is built here from the client's pieces
 * (summary_pieces()) so that its bytes are the same as in every store.
 */
#include "mysql.h"



/*
 * One step commit inside the open transaction (or alone, in autocommit,
 * when it is one statement): the CAS update of the record (which takes
 * the commit's workflow version when it has none), the step row (with
 * that version), the outbox row. Writes nothing on ECONFLICT or ENOTFOUND at the update;
 * *updated tells whether the update went in before a later failure.
 */
static int commit_one(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                      dura_commit_result *res, int *updated)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	const int do_step = plan.do_step, do_event = plan.do_event, release = plan.release, full = plan.full;
	const char *status = plan.status;
	my_params p;
	my_stmt *m;
	*updated = 0;
	p.n = 0;
	dura_my_pp_str(&p, cm->state);
	dura_my_pp_str(&p, status);
	dura_my_pp_str(&p, cm->error ? cm->error : "");
	dura_my_pp_str(&p, dura_sql_commit_wait(cm));
	dura_my_pp_str(&p, dura_sql_commit_version(cm));
	dura_my_pp_int(&p, cm->attempt);
	dura_my_pp_time(&p, cm->next_run_at ? cm->next_run_at : now);
	dura_my_pp_time(&p, now);
	dura_my_pp_int(&p, do_step);
	if (full) {
		if (cm->run_state)
			dura_my_pp_int(&p, cm->run_state);
		else
			dura_my_pp_null(&p);
		dura_my_pp_int(&p, release);
		dura_my_pp_int(&p, release);
	}
	dura_my_pp_str(&p, cm->run_id);
	dura_my_pp_int(&p, cm->expect_version);
	int rc = dura_my_st_run(s, c, full ? ST_COMMIT_UPDATE_FULL : ST_COMMIT_UPDATE, &p, &m);
	if (rc) {
		if (c->err == ER_DUP_ENTRY)
			return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
			                             "cannot commit run %s as %s: its workflow already has an active run with the "
			                             "same foreign id",
			                             cm->run_id, dura_run_state_name(cm->run_state));
		return rc;
	}
	uint64_t n = (uint64_t)mysql_stmt_affected_rows(m->st);
	int64_t step_no = (int64_t)mysql_stmt_insert_id(m->st);
	dura_my_st_done(m);
	if (n == 0)
		return dura_sql_commit_miss(&s->base, &c->base, cm);
	*updated = 1;
	res->new_version = cm->expect_version + 1;
	res->step = do_step ? step_no - 1 : -1;
	if (do_step) {
		p.n = 0;
		dura_my_pp_str(&p, cm->run_id);
		dura_my_pp_int(&p, res->step);
		dura_my_pp_str(&p, cm->node_id);
		dura_my_pp_str(&p, cm->state);
		dura_my_pp_time(&p, now);
		dura_my_pp_str(&p, dura_sql_commit_version(cm));
		if ((rc = dura_my_st_write(s, c, ST_STEP_INSERT, &p, NULL)) != 0) {
			if (c->err == ER_DUP_ENTRY)
				return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000", "run %s already has a step %lld",
				                             cm->run_id, (long long)res->step);
			return rc;
		}
	}
	if (do_event) {
		char buf[DURA_SQL_SUMMARY_BUF], *heap = NULL;
		const char *head = NULL;
		if (!cm->event_data && !(head = dura_sql_summary_pieces(buf, sizeof buf, cm, &res->step, NULL, &heap)))
			return dura_error_oom(MY);
		p.n = 0;
		dura_my_pp_str(&p, event_id);
		dura_my_pp_str(&p, cm->event_type ? cm->event_type : "step");
		dura_my_pp_str(&p, cm->event_data);
		dura_my_pp_str(&p, head);
		dura_my_pp_time(&p, now);
		dura_my_pp_str(&p, cm->run_id);
		rc = dura_my_st_write(s, c, ST_OUTBOX_INSERT, &p, NULL);
		dura_free(heap);
		if (rc)
			return rc;
	}
	/* the signal consumed, the run woken: in the caller's transaction */
	return dura_sql_commit_extras(&s->base, &c->base, cm);
}

/* Errors that say the procedure cannot be used (absent, not allowed, its
 * definer gone): commit the long way from now on. */
static int proc_unusable(unsigned e)
{
	return e == ER_SP_DOES_NOT_EXIST || e == ER_PROCACCESS_DENIED_ERROR || e == ER_NO_SUCH_USER ||
	       e == ER_DBACCESS_DENIED_ERROR || e == ER_TABLEACCESS_DENIED_ERROR ||
	       e == ER_SPECIFIC_ACCESS_DENIED_ERROR || e == ER_SP_WRONG_NO_OF_ARGS || e == ER_NOT_SUPPORTED_YET;
}

/*
 * commit_one() in one round trip: CALL dura_commit, read its row, drain the
 * CALL's status. 1: the procedure is not usable here (nothing was done),
 * commit the long way. The lost-connection test hook applies as in
 * tx_commit().
 */
static int commit_call_with(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                            dura_commit_result *res, const char *sum_head, const char *sum_tail)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	const int do_step = plan.do_step, do_event = plan.do_event, release = plan.release;
	my_params p;
	my_stmt *m;
	int rc = dura_my_prep(s, c, ST_COMMIT_CALL, &m);
	if (rc) {
		if (proc_unusable(c->err)) {
			atomic_store(&s->use_proc, 0);
			dura_error_clear();
			return 1;
		}
		return rc;
	}
	p.n = 0;
	dura_my_pp_str(&p, cm->run_id);
	dura_my_pp_int(&p, cm->expect_version);
	dura_my_pp_str(&p, cm->state);
	dura_my_pp_str(&p, cm->status ? cm->status : "");
	dura_my_pp_str(&p, cm->error ? cm->error : "");
	dura_my_pp_int(&p, cm->attempt);
	dura_my_pp_time(&p, cm->next_run_at ? cm->next_run_at : now);
	dura_my_pp_time(&p, now);
	dura_my_pp_int(&p, do_step);
	if (cm->run_state)
		dura_my_pp_int(&p, cm->run_state);
	else
		dura_my_pp_null(&p);
	dura_my_pp_int(&p, release);
	dura_my_pp_str(&p, cm->node_id ? cm->node_id : "");
	dura_my_pp_str(&p, do_event ? event_id : "");
	dura_my_pp_str(&p, cm->event_type ? cm->event_type : "step");
	dura_my_pp_str(&p, cm->event_data);
	dura_my_pp_str(&p, sum_head);
	dura_my_pp_str(&p, sum_tail);
	dura_my_pp_str(&p, dura_sql_commit_wait(cm));
	dura_my_pp_str(&p, dura_sql_commit_version(cm));
	if (mysql_stmt_bind_param(m->st, p.b))
		return dura_my_fail(s, c, m->st, "CALL dura_commit");
	int applied, lost = dura_my_lost_commit(&applied);
	if (lost && !applied) {
		c->base.broken = 1;
		c->err = CR_SERVER_LOST;
		return dura_error_set_native(DURA_EIO, MY, CR_SERVER_LOST, "HY000",
		                             "CALL dura_commit: Lost connection to server during query (simulated by a test)");
	}
	if (mysql_stmt_execute(m->st)) {
		unsigned e = mysql_stmt_errno(m->st);
		if (proc_unusable(e)) {
			atomic_store(&s->use_proc, 0);
			return 1;
		}
		rc = dura_my_fail(s, c, m->st, "CALL dura_commit");
		if (e == ER_DUP_ENTRY) {
			const char *msg = mysql_stmt_error(m->st);
			if (strstr(msg, "unique_run_step"))
				rc = dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
				                           "run %s already has the step this commit would write", cm->run_id);
			else
				rc = dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
				                           "cannot commit run %s as %s: its workflow already has an active run with "
				                           "the same foreign id",
				                           cm->run_id, dura_run_state_name(cm->run_state));
		}
		return rc;
	}
	/* the row, then the CALL's own status */
	long long ok = -1, v = 0;
	my_bool v_null = 0;
	int got = 0;
	do {
		if (mysql_stmt_field_count(m->st) > 0) {
			MYSQL_BIND b[2];
			memset(b, 0, sizeof(b));
			b[0].buffer_type = MYSQL_TYPE_LONGLONG;
			b[0].buffer = &ok;
			b[1].buffer_type = MYSQL_TYPE_LONGLONG;
			b[1].buffer = &v;
			b[1].is_null = &v_null;
			if (mysql_stmt_bind_result(m->st, b) || mysql_stmt_store_result(m->st))
				return dura_my_fail(s, c, m->st, "reading dura_commit's result");
			while (mysql_stmt_fetch(m->st) == 0)
				got = 1;
			mysql_stmt_free_result(m->st);
		}
		rc = mysql_stmt_next_result(m->st);
	} while (rc == 0);
	if (rc > 0)
		return dura_my_fail(s, c, m->st, "CALL dura_commit");
	/* the result bindings were the CALL's: this statement keeps none */
	if (lost) {
		c->base.broken = 1;
		c->err = CR_SERVER_LOST;
		return dura_error_set_native(DURA_EIO, MY, CR_SERVER_LOST, "HY000",
		                             "CALL dura_commit: Lost connection to server during query (simulated by a test)");
	}
	if (!got)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "CALL dura_commit returned no row");
	if (ok == 1) {
		res->new_version = cm->expect_version + 1;
		res->step = do_step ? v : -1;
		return 0;
	}
	if (v_null)
		return dura_sql_err_run_not_found(MY, cm->run_id);
	return dura_sql_err_version(MY, cm->run_id, v, cm->expect_version);
}

static int commit_call(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                       dura_commit_result *res)
{
	char buf[DURA_SQL_SUMMARY_BUF], *heap = NULL;
	const char *head = NULL, *tail = NULL;
	if (!cm->event_data && !(cm->flags & DURA_COMMIT_NO_EVENT) &&
	    !(head = dura_sql_summary_pieces(buf, sizeof buf, cm, NULL, &tail, &heap)))
		return dura_error_oom(MY);
	int rc = commit_call_with(s, c, cm, event_id, now, res, head, tail);
	dura_free(heap);
	return rc;
}

struct commit_arg {
	const dura_commit *cm;
	const char *event_id;
	int64_t now;
	dura_commit_result *res;
	int proc; /* through the procedure (no transaction of ours) */
};

static int commit_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct commit_arg *a = arg;
	int updated;
	a->res->new_version = 0;
	a->res->step = -1;
	if (again) {
		int v = dura_sql_commit_verify(&s->base, &c->base, a->cm, a->event_id, a->now, a->res);
		if (v != 0)
			return v < 0 ? v : 0;
	}
	if (a->proc) {
		int rc = commit_call(s, c, a->cm, a->event_id, a->now, a->res);
		if (rc != 1)
			return rc;
		return MY_FALLBACK; /* not usable: the long way, in a transaction */
	}
	return commit_one(s, c, a->cm, a->event_id, a->now, a->res, &updated);
}

int dura_my_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res)
{
	my_store *s = impl;
	struct commit_arg a = {cm, event_id, dura_now_ms(), res, 0};
	int rc = dura_my_check_size(s, dura_sql_commit_size(cm), "the step's state");
	if (rc == 0) {
		/* a record-only commit is one statement: no transaction needed;
		 * the others are one CALL when the procedure can be used, else a
		 * transaction of several statements */
		int single = (cm->flags & DURA_COMMIT_NO_STEP) && (cm->flags & DURA_COMMIT_NO_EVENT);
		rc = MY_FALLBACK;
		if (dura_sql_commit_has_extras(cm)) {
			/* a signal consumed or a run woken with it: the transaction */
		} else if (single) {
			rc = dura_my_run_op(s, commit_body, &a, DURA_SQL_IDEMPOTENT);
		} else if (atomic_load(&s->use_proc)) {
			a.proc = 1;
			rc = dura_my_run_op(s, commit_body, &a, DURA_SQL_IDEMPOTENT);
		}
		if (rc == MY_FALLBACK) {
			a.proc = 0;
			rc = dura_my_run_op(s, commit_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
		}
	}
	if (rc) {
		res->new_version = 0;
		res->step = -1;
	}
	return rc;
}

static int one_tramp(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                     dura_commit_result *res, int *updated)
{
	return commit_one((my_store *)s, (my_conn *)c, cm, event_id, now, res, updated);
}

int dura_my_commit_batch_each(my_store *s, const dura_commit *cm, const char *const *event_ids, size_t n,
                              dura_commit_result *res)
{
	return dura_sql_commit_batch(&s->base, one_tramp, cm, event_ids, n, res);
}

/* In bulk where the server can (batch.c), else one commit after another
 * in one transaction. */
int dura_my_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                         dura_commit_result *res)
{
	my_store *s = impl;
	int rc = n > 1 ? dura_my_commit_bulk(s, cm, event_ids, n, res) : MY_FALLBACK;
	if (rc != MY_FALLBACK)
		return rc;
	dura_error_clear();
	return dura_my_commit_batch_each(s, cm, event_ids, n, res);
}
