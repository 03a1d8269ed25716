/*
 * server.c - the store operations every server SQL store (MySQL/MariaDB,
 * PostgreSQL) runs the same way, written once over the statement
 * interface of exec.h: runs, run control, steps, checkpoints, the step
 * cache, leases, the outbox, and durable waiting (signals, wakes,
 * schedules: contract version 5). Each operation is a body run by
 * dura_sql_run_op() (sql/run.h's retry loop) on a pooled connection, with
 * the catalog's statements (SQL_SHARED_STATEMENTS and
 * SQL_SERVER_STATEMENTS, whose ids are the same in every driver that
 * lists them first). What differs between servers stays in the driver:
 * connections, binding, the commit paths and the claim of runs.
 *
 * A body that may run again after its connection was lost with the
 * outcome unknown (again = 1) checks whether its first run went in.
 */
#include "server.h"

#include "catalog.h"
#include "errors.h"
#include "../flow.h"

#include "../../internal.h"

#include <stdio.h>
#include <string.h>

#define X_ENUM(name, sql) ST_##name,
enum { SQL_SHARED_STATEMENTS(X_ENUM) SQL_SERVER_STATEMENTS(X_ENUM) ST__SERVER_COUNT };
#undef X_ENUM

/* ---- runs ------------------------------------------------------------------------ */

struct create_arg {
	const dura_run_create *req;
	const char *run_id, *fid, *state, *status, *meta;
	int run_state;
	int64_t now, next;
	dura_record **out;
};

static int create_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct create_arg *a = arg;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, a->run_id);
	dura_sql_p_str(&p, a->req->workflow_name);
	dura_sql_p_str(&p, a->fid);
	dura_sql_p_int(&p, a->run_state);
	dura_sql_p_str(&p, a->status);
	dura_sql_p_str(&p, a->state);
	dura_sql_p_str(&p, a->meta);
	dura_sql_p_time(&p, a->next);
	dura_sql_p_time(&p, a->now);
	dura_sql_p_time(&p, a->now);
	dura_sql_p_int(&p, a->req->priority);
	dura_sql_p_str(&p, a->req->concurrency_key ? a->req->concurrency_key : "");
	dura_sql_p_str(&p, a->req->version >= 3 && a->req->parent_id ? a->req->parent_id : "");
	dura_sql_p_str(&p, a->req->version >= 4 && a->req->workflow_version ? a->req->workflow_version : "");
	void *m;
	int rc = dura_sql_st_run(s, c, ST_RUN_INSERT, &p, &m);
	if (rc == 0) {
		dura_sql_st_done(s, m);
		if (a->out)
			return dura_sql_created_record(a->out, s->name, a->run_id, a->req, a->fid, a->state, a->status, a->run_state,
			                               a->now, a->next < s->x->max_time_ms ? a->next : s->x->max_time_ms);
		return 0;
	}
	int on_primary = 0;
	if (!s->x->duplicate(c, &on_primary))
		return rc;
	dura_record *existing = NULL;
	if (on_primary) {
		p.n = 0;
		dura_sql_p_str(&p, a->run_id);
		rc = dura_sql_st_fetch(s, c, ST_RUN_GET, &p, DURA_SQL_RECORD, (void **)&existing);
		if (rc == DURA_ENOTFOUND)
			return DURA_SQL_AGAIN; /* deleted since: try again */
		if (rc)
			return rc;
		/* after a lost connection, our own insert may be what is there */
		if (again && existing->created_at == a->now && strcmp(existing->workflow_name, a->req->workflow_name) == 0 &&
		    strcmp(existing->foreign_id, a->fid) == 0) {
			if (a->out)
				*a->out = existing;
			else
				dura_record_free(existing);
			return 0;
		}
		rc = dura_error_set_native(DURA_EEXISTS, s->name, s->x->dup_native, s->x->dup_state, "run %s already exists", a->run_id);
	} else {
		p.n = 0;
		dura_sql_p_str(&p, a->req->workflow_name);
		dura_sql_p_str(&p, a->fid);
		rc = dura_sql_st_fetch(s, c, ST_RUN_ACTIVE, &p, DURA_SQL_RECORD, (void **)&existing);
		if (rc == DURA_ENOTFOUND)
			return DURA_SQL_AGAIN; /* the active run ended meanwhile */
		if (rc)
			return rc;
		rc = dura_error_set_native(DURA_EEXISTS, s->name, s->x->dup_native, s->x->dup_state,
		                           "workflow %s already has an active run %s with foreign id %s", a->req->workflow_name,
		                           existing->run_id, a->fid);
	}
	if (a->out)
		*a->out = existing;
	else
		dura_record_free(existing);
	return rc;
}

int dura_sql_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	dura_sql_store *s = impl;
	struct create_arg a;
	a.req = req;
	a.run_id = run_id;
	a.fid = req->foreign_id ? req->foreign_id : "";
	a.state = req->state ? req->state : "{}";
	a.status = req->status ? req->status : "";
	a.meta = req->meta && *req->meta ? req->meta : NULL;
	a.run_state = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	a.now = dura_now_ms();
	a.next = req->next_run_at ? req->next_run_at : a.now;
	a.out = out;
	int rc = s->x->check_size(s, strlen(a.state) + (a.meta ? strlen(a.meta) : 0), "the initial state");
	if (rc)
		return rc;
	return dura_sql_run_op(s, create_body, &a, DURA_SQL_IDEMPOTENT);
}

struct get_arg {
	int id;
	const char *a1, *a2;
	dura_record **out;
};

static int get_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct get_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->a1);
	if (a->a2)
		dura_sql_p_str(&p, a->a2);
	return dura_sql_st_fetch(s, c, a->id, &p, DURA_SQL_RECORD, (void **)a->out);
}

int dura_sql_get_run(void *impl, const char *run_id, dura_record **out)
{
	dura_sql_store *s = impl;
	struct get_arg a = {ST_RUN_GET, run_id, NULL, out};
	int rc = dura_sql_run_op(s, get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_run_not_found(s->name, run_id);
	return rc;
}

int dura_sql_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	dura_sql_store *s = impl;
	struct get_arg a = {ST_RUN_LATEST, wf, fid, out};
	int rc = dura_sql_run_op(s, get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_run_with_fid(s->name, wf, fid);
	return rc;
}

struct list_arg {
	const dura_run_filter *f;
	dura_record_list *out;
};

static int list_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct list_arg *a = arg;
	const dura_run_filter *f = a->f;
	const char *cursor = f->cursor && *f->cursor ? f->cursor : NULL;
	dura_sql_params p;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_sql_p_str(&p, f->workflow_name);
	dura_sql_p_str(&p, f->workflow_name);
	dura_sql_p_int(&p, f->run_state);
	dura_sql_p_int(&p, f->run_state);
	dura_sql_p_str(&p, f->status);
	dura_sql_p_str(&p, f->status);
	dura_sql_p_str(&p, f->foreign_id);
	dura_sql_p_str(&p, f->foreign_id);
	if (f->created_after) {
		dura_sql_p_time(&p, f->created_after);
		dura_sql_p_time(&p, f->created_after);
	} else {
		dura_sql_p_null(&p);
		dura_sql_p_null(&p);
	}
	if (f->created_before) {
		dura_sql_p_time(&p, f->created_before);
		dura_sql_p_time(&p, f->created_before);
	} else {
		dura_sql_p_null(&p);
		dura_sql_p_null(&p);
	}
	dura_sql_p_str(&p, cursor);
	dura_sql_p_str(&p, cursor);
	const char *parent = f->version >= 2 ? f->parent_id : NULL;
	dura_sql_p_str(&p, parent);
	dura_sql_p_str(&p, parent);
	dura_sql_p_int(&p, f->version >= 2 && f->waiting ? 1 : 0);
	const char *wv = f->version >= 3 ? f->workflow_version : NULL;
	dura_sql_p_str(&p, wv);
	dura_sql_p_str(&p, wv);
	int64_t now = dura_now_ms();
	dura_sql_p_int(&p, f->version >= 4 && f->due ? 1 : 0);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	dura_sql_p_int(&p, (int64_t)f->limit);
	int rc = dura_sql_st_collect(s, c, ST_RUN_LIST, &p, DURA_SQL_RECORD, (void **)&a->out->items, &a->out->count);
	if (rc)
		return rc;
	if (a->out->count == f->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].run_id);
		if (!a->out->next_cursor) {
			dura_record_list_free(a->out);
			memset(a->out, 0, sizeof(*a->out));
			return dura_error_oom(s->name);
		}
	}
	return 0;
}

int dura_sql_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	dura_sql_store *s = impl;
	struct list_arg a = {f, out};
	return dura_sql_run_op(s, list_body, &a, DURA_SQL_IDEMPOTENT);
}

/* The longest wait a record holds: "signal:" + a name, "child:" + a run id. */
#define WAIT_MAX (DURA_MAX_ID_LEN + 16)

/* Lock a run's row; its run_state and version (and its wait and parent,
 * when wait and parent are not NULL), or ENOTFOUND with a message. */
static int run_lock_full(dura_sql_store *s, dura_sql_conn *c, const char *run_id, int *state, int64_t *version,
                         char wait[WAIT_MAX + 1], char parent[DURA_MAX_ID_LEN + 1])
{
	void *m;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, run_id);
	int rc = dura_sql_st_run(s, c, ST_RUN_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		*state = (int)dura_sql_c_int(s, m, 0);
		*version = dura_sql_c_int(s, m, 1);
		if (wait) {
			const char *w = dura_sql_c_str(s, m, 2);
			snprintf(wait, WAIT_MAX + 1, "%s", w ? w : "");
		}
		if (parent) {
			const char *pa = dura_sql_c_str(s, m, 3);
			snprintf(parent, DURA_MAX_ID_LEN + 1, "%s", pa ? pa : "");
		}
		rc = 0;
	} else if (rc == 0) {
		rc = dura_sql_err_run_not_found(s->name, run_id);
	}
	dura_sql_st_done(s, m);
	return rc;
}

static int run_lock(dura_sql_store *s, dura_sql_conn *c, const char *run_id, int *state, int64_t *version)
{
	return run_lock_full(s, c, run_id, state, version, NULL, NULL);
}

/*
 * Inside the open transaction: make the run due now if it is running and
 * waits for wait (RUN_WAKE; the trigger of a store that notifies tells the
 * workers). *woke (may be NULL) says whether it did.
 *
 * The run's row is locked first, whatever its wait: an UPDATE whose WHERE
 * does not match locks nothing (PostgreSQL, and InnoDB reading committed),
 * so a child's last commit could miss its parent's waiting commit going in
 * beside it, while the parent's look at the child (dura__wait_recheck)
 * still saw it running - a wake lost, and a parent asleep for ever. With
 * the lock one of the two waits for the other: the wake sees the wait, or
 * the parent's look sees the child ended.
 */
int dura_sql_wake_in(dura_sql_store *s, dura_sql_conn *c, const char *run_id, const char *wait, int *woke)
{
	dura_sql_params p;
	uint64_t n = 0;
	int64_t now = dura_now_ms();
	int state = 0;
	int64_t version = 0;
	if (woke)
		*woke = 0;
	int rc = run_lock(s, c, run_id, &state, &version);
	if (rc == DURA_ENOTFOUND) { /* a run that is not there waits for nothing */
		dura_error_clear();
		return 0;
	}
	if (rc)
		return rc;
	p.n = 0;
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	dura_sql_p_str(&p, run_id);
	dura_sql_p_str(&p, wait);
	rc = dura_sql_st_write(s, c, ST_RUN_WAKE, &p, &n);
	if (woke)
		*woke = rc == 0 && n > 0;
	return rc;
}

/* Inside the open transaction: the run's state becomes {}, its run_state
 * data_deleted, its steps and checkpoints go. */
static int erase_run(dura_sql_store *s, dura_sql_conn *c, const char *run_id)
{
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_time(&p, dura_now_ms());
	dura_sql_p_str(&p, run_id);
	int rc = dura_sql_st_write(s, c, ST_RUN_ERASE, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	dura_sql_p_str(&p, run_id);
	if ((rc = dura_sql_st_write(s, c, ST_STEPS_ERASE, &p, NULL)) != 0)
		return rc;
	if ((rc = dura_sql_st_write(s, c, ST_SIGNAL_ERASE, &p, NULL)) != 0)
		return rc;
	return dura_sql_st_write(s, c, ST_CPS_ERASE, &p, NULL);
}

struct state_arg {
	const char *run_id;
	int to;
	int64_t new_version;
};

static int set_state_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct state_arg *a = arg;
	int cur = 0;
	int64_t version = 0;
	char parent[DURA_MAX_ID_LEN + 1] = "";
	int rc = run_lock_full(s, c, a->run_id, &cur, &version, NULL, parent);
	if (rc)
		return rc;
	if (again && cur == a->to) { /* our earlier attempt went in */
		a->new_version = version;
		return 0;
	}
	if (!dura_run_state_transition_ok(cur, a->to))
		return dura_sql_err_move(s->name, a->run_id, cur, a->to);
	if (a->to == DURA_RUN_DATA_DELETED) {
		if ((rc = erase_run(s, c, a->run_id)) != 0)
			return rc;
		a->new_version = version + 1;
		return 0;
	}
	dura_sql_params p;
	int64_t now = dura_now_ms();
	uint64_t n = 0;
	p.n = 0;
	if (a->to == DURA_RUN_RUNNING) {
		dura_sql_p_time(&p, now);
		dura_sql_p_time(&p, now);
	} else {
		dura_sql_p_int(&p, a->to);
		dura_sql_p_time(&p, now);
	}
	dura_sql_p_str(&p, a->run_id);
	dura_sql_p_int(&p, cur);
	rc = dura_sql_st_write(s, c, a->to == DURA_RUN_RUNNING ? ST_RUN_SET_RUNNING : ST_RUN_SET_STATE, &p, &n);
	if (rc) {
		if (s->x->duplicate(c, NULL))
			return dura_error_set_native(DURA_ECONFLICT, s->name, s->x->dup_native, s->x->dup_state,
			                             "cannot move run %s to %s: its workflow already has an active run with the same "
			                             "foreign id",
			                             a->run_id, dura_run_state_name(a->to));
		return rc;
	}
	if (n == 0)
		return dura_sql_err_moved_meanwhile(s->name, a->run_id, a->to);
	if (a->to == DURA_RUN_CANCELLED && *parent) {
		/* a parent awaiting this child wakes to see it cancelled */
		char wait[WAIT_MAX + 1];
		snprintf(wait, sizeof(wait), "child:%s", a->run_id);
		if ((rc = dura_sql_wake_in(s, c, parent, wait, NULL)) != 0)
			return rc;
	}
	a->new_version = version + 1;
	return 0;
}

int dura_sql_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	dura_sql_store *s = impl;
	struct state_arg a = {run_id, to, 0};
	int rc = dura_sql_run_op(s, set_state_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	if (rc == 0 && new_version)
		*new_version = a.new_version;
	return rc;
}

static int delete_data_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	const char *run_id = arg;
	int cur;
	int64_t version;
	int rc = run_lock(s, c, run_id, &cur, &version);
	if (rc)
		return rc;
	if (again && cur == DURA_RUN_DATA_DELETED)
		return 0;
	if (cur != DURA_RUN_COMPLETED && cur != DURA_RUN_CANCELLED && cur != DURA_RUN_FAILED)
		return dura_sql_err_delete_live(s->name, run_id, cur);
	return erase_run(s, c, run_id);
}

int dura_sql_delete_run_data(void *impl, const char *run_id)
{
	dura_sql_store *s = impl;
	return dura_sql_run_op(s, delete_data_body, (void *)run_id, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

/* ---- steps ------------------------------------------------------------------------ */

struct steps_arg {
	int id;
	const char *run_id;
	int64_t from, step;
	size_t limit;
	dura_step_list *list;
	dura_step **one;
};

static int steps_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct steps_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->run_id);
	if (a->id == ST_HISTORY) {
		dura_sql_p_int(&p, a->from);
		dura_sql_p_int(&p, a->limit ? (int64_t)(a->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)a->limit) : INT64_MAX);
	} else if (a->id == ST_STEP_GET) {
		dura_sql_p_int(&p, a->step);
	}
	if (a->list) {
		dura_step_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_sql_st_collect(s, c, a->id, &p, DURA_SQL_STEP, (void **)&a->list->items, &a->list->count);
	}
	return dura_sql_st_fetch(s, c, a->id, &p, DURA_SQL_STEP, (void **)a->one);
}

int dura_sql_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	dura_sql_store *s = impl;
	struct steps_arg a = {ST_HISTORY, run_id, from, 0, limit, out, NULL};
	return dura_sql_run_op(s, steps_body, &a, DURA_SQL_IDEMPOTENT);
}

int dura_sql_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	dura_sql_store *s = impl;
	struct steps_arg a = {ST_STEP_GET, run_id, 0, step, 0, NULL, out};
	int rc = dura_sql_run_op(s, steps_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_step(s->name, run_id, step);
	return rc;
}

int dura_sql_load_latest(void *impl, const char *run_id, dura_step **out)
{
	dura_sql_store *s = impl;
	struct steps_arg a = {ST_STEP_LATEST, run_id, 0, 0, 0, NULL, out};
	int rc = dura_sql_run_op(s, steps_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_committed_step(s->name, run_id);
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* A write by one key, in autocommit. After an unknown outcome (again), a
 * miss means our first attempt did it. */
struct write_arg {
	int id;
	dura_sql_params *p;
	uint64_t affected;
	int again;
};

static int write_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct write_arg *a = arg;
	a->again |= again;
	return dura_sql_st_write(s, c, a->id, a->p, &a->affected);
}

static int write_by(dura_sql_store *s, int id, dura_sql_params *p, uint64_t *affected, int *again)
{
	struct write_arg a = {id, p, 0, 0};
	int rc = dura_sql_run_op(s, write_body, &a, DURA_SQL_IDEMPOTENT);
	if (affected)
		*affected = a.affected;
	if (again)
		*again = a.again;
	return rc;
}

/* A DELETE by one key: ENOTFOUND (with the message fmt, arg) when no row went. */
static int delete_by(dura_sql_store *s, int id, const char *key, const char *fmt)
{
	dura_sql_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_sql_p_str(&p, key);
	int rc = write_by(s, id, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_error_set_native(DURA_ENOTFOUND, s->name, 0, NULL, fmt, key);
	return rc;
}

int dura_sql_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	dura_sql_store *s = impl;
	int rc = s->x->check_size(s, strlen(state), "the checkpoint's state");
	if (rc)
		return rc;
	dura_sql_params p;
	int64_t now = dura_now_ms();
	p.n = 0;
	dura_sql_p_str(&p, cp_id);
	dura_sql_p_str(&p, run_id);
	dura_sql_p_str(&p, state);
	dura_sql_p_int(&p, step);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	return write_by(s, ST_CP_SAVE, &p, NULL, NULL);
}

struct cp_arg {
	const char *key;
	dura_checkpoint **one;
	dura_checkpoint_list *list;
};

static int cp_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct cp_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->key);
	if (a->list) {
		dura_sql_p_str(&p, a->key);
		dura_checkpoint_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_sql_st_collect(s, c, ST_CP_LIST, &p, DURA_SQL_CHECKPOINT, (void **)&a->list->items, &a->list->count);
	}
	return dura_sql_st_fetch(s, c, ST_CP_LOAD, &p, DURA_SQL_CHECKPOINT, (void **)a->one);
}

int dura_sql_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	dura_sql_store *s = impl;
	struct cp_arg a = {cp_id, out, NULL};
	int rc = dura_sql_run_op(s, cp_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_checkpoint_not_found(s->name, cp_id);
	return rc;
}

int dura_sql_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	dura_sql_store *s = impl;
	struct cp_arg a = {run_id, NULL, out};
	return dura_sql_run_op(s, cp_body, &a, DURA_SQL_IDEMPOTENT);
}

int dura_sql_checkpoint_delete(void *impl, const char *cp_id)
{
	dura_sql_store *s = impl;
	return delete_by(s, ST_CP_DELETE, cp_id, "checkpoint %s not found");
}

/* ---- cache ------------------------------------------------------------------------ */

struct cache_get_arg {
	const char *key;
	dura_cache_entry **out;
};

static int cache_get_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct cache_get_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->key);
	dura_sql_p_time(&p, dura_now_ms());
	return dura_sql_st_fetch(s, c, ST_CACHE_GET, &p, DURA_SQL_CACHE_VALUE, (void **)a->out);
}

int dura_sql_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	dura_sql_store *s = impl;
	struct cache_get_arg a = {key, out};
	int rc = dura_sql_run_op(s, cache_get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_cache_not_found(s->name, key);
	return rc;
}

struct cache_put_arg {
	const char *key;
	const void *value;
	size_t len;
	const char *error, *metadata;
	int64_t now, ttl_ms;
};

/* The value first, then the claim goes: a claimer that sees no claim sees
 * the value (cache_claim locks the claim row before it looks). */
static int cache_put_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct cache_put_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->key);
	dura_sql_p_blob(&p, a->value, a->len);
	dura_sql_p_str(&p, a->error);
	dura_sql_p_time(&p, a->now);
	if (a->ttl_ms)
		dura_sql_p_time(&p, dura_sql_add_ms(s, a->now, a->ttl_ms));
	else
		dura_sql_p_null(&p);
	dura_sql_p_str(&p, a->metadata);
	int rc = dura_sql_st_write(s, c, ST_CACHE_PUT, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	dura_sql_p_str(&p, a->key);
	return dura_sql_st_write(s, c, ST_CLAIM_DROP, &p, NULL);
}

int dura_sql_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	dura_sql_store *s = impl;
	int rc = s->x->check_size(s, len + (error ? strlen(error) : 0) + (metadata ? strlen(metadata) : 0),
	                            "the cache value");
	if (rc)
		return rc;
	struct cache_put_arg a = {key, value, len, error, metadata, dura_now_ms(), ttl_ms};
	return dura_sql_run_op(s, cache_put_body, &a, DURA_SQL_IDEMPOTENT);
}

struct claim_key_arg {
	const char *key, *owner;
	int64_t lease_ms;
};

/*
 * Single flight: lock the claim row first (a claimer that is storing its
 * value holds it until its put commits), then look for a live value, then
 * take or refresh the claim. Two claimers of a key nobody holds both
 * insert; the unique key lets one in and the other runs again and sees it.
 * A new claim row looks for the value once more (see below).
 */
/* 0 if key has no live value, DURA_EEXISTS if it has, or the error. */
static int no_live_value(dura_sql_store *s, dura_sql_conn *c, const char *key, int64_t now)
{
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, key);
	dura_sql_p_time(&p, now);
	int rc = dura_sql_st_exists(s, c, ST_CACHE_LIVE, &p);
	if (rc < 0)
		return rc;
	return rc == 1 ? dura_sql_err_cache_has_value(s->name, key) : 0;
}

static int cache_claim_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct claim_key_arg *a = arg;
	int64_t now = dura_now_ms(), until = 0;
	char holder[DURA_MAX_ID_LEN + 1] = "";
	int have = 0;
	dura_sql_params p;
	void *m;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->key);
	int rc = dura_sql_st_run(s, c, ST_CLAIM_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		have = 1;
		snprintf(holder, sizeof(holder), "%s", dura_sql_c_str(s, m, 0) ? dura_sql_c_str(s, m, 0) : "");
		until = dura_sql_c_time(s, m, 1);
		rc = 0;
	}
	dura_sql_st_done(s, m);
	if (rc)
		return rc;
	if ((rc = no_live_value(s, c, a->key, now)) != 0)
		return rc;
	if (have && strcmp(holder, a->owner) != 0 && until > now) {
		char t[24];
		dura_time_format(t, until);
		return dura_sql_err_cache_claimed(s->name, a->key, holder, t);
	}
	p.n = 0;
	if (have) {
		dura_sql_p_str(&p, a->owner);
		dura_sql_p_time(&p, dura_sql_add_ms(s, now, a->lease_ms));
		dura_sql_p_str(&p, a->key);
		return dura_sql_st_write(s, c, ST_CLAIM_UPDATE, &p, NULL);
	}
	dura_sql_p_str(&p, a->key);
	dura_sql_p_str(&p, a->owner);
	dura_sql_p_time(&p, dura_sql_add_ms(s, now, a->lease_ms));
	rc = dura_sql_st_write(s, c, ST_CLAIM_INSERT, &p, NULL);
	if (rc && s->x->duplicate(c, NULL))
		return DURA_SQL_AGAIN;
	if (rc)
		return rc;
	/* With no claim row there was nothing to lock: between our look and
	 * our insert another claimer may have claimed, stored its value and
	 * let go. Now that the new row is ours, look again; a value found
	 * rolls our claim back. */
	return no_live_value(s, c, a->key, now);
}

int dura_sql_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	dura_sql_store *s = impl;
	struct claim_key_arg a = {key, owner, lease_ms};
	/* running it again is safe: the same owner may claim again */
	return dura_sql_run_op(s, cache_claim_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

int dura_sql_cache_release(void *impl, const char *key, const char *owner)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_sql_p_str(&p, key);
	dura_sql_p_str(&p, owner);
	int rc = write_by(s, ST_CLAIM_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_sql_err_cache_not_claimed(s->name, key, owner);
	return rc;
}

int dura_sql_cache_delete(void *impl, const char *key)
{
	dura_sql_store *s = impl;
	return delete_by(s, ST_CACHE_DELETE, key, "cache key %s not found");
}

static int purge_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	int64_t *count = arg;
	dura_sql_params p;
	uint64_t n = 0;
	int64_t now = dura_now_ms();
	(void)again;
	p.n = 0;
	dura_sql_p_time(&p, now);
	int rc = dura_sql_st_write(s, c, ST_CACHE_PURGE, &p, &n);
	if (rc)
		return rc;
	*count = (int64_t)n;
	/* expired claims are litter too; they are not counted */
	return dura_sql_st_write(s, c, ST_CLAIM_PURGE, &p, NULL);
}

int dura_sql_cache_purge_expired(void *impl, int64_t *count)
{
	dura_sql_store *s = impl;
	*count = 0;
	return dura_sql_run_op(s, purge_body, count, DURA_SQL_IDEMPOTENT);
}

struct cache_list_arg {
	const char *cursor;
	size_t limit;
	dura_cache_list *out;
};

static int cache_list_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct cache_list_arg *a = arg;
	dura_sql_params p;
	(void)again;
	dura_cache_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_sql_p_str(&p, a->cursor);
	dura_sql_p_str(&p, a->cursor);
	dura_sql_p_int(&p, (int64_t)a->limit);
	int rc = dura_sql_st_collect(s, c, ST_CACHE_LIST, &p, DURA_SQL_CACHE_LISTED, (void **)&a->out->items, &a->out->count);
	if (rc == 0 && a->out->count == a->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].key);
		if (!a->out->next_cursor)
			rc = dura_error_oom(s->name);
	}
	if (rc) {
		dura_cache_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

int dura_sql_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	dura_sql_store *s = impl;
	struct cache_list_arg a = {cursor, limit, out};
	return dura_sql_run_op(s, cache_list_body, &a, DURA_SQL_IDEMPOTENT);
}

static int cache_stats_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	dura_cache_stats *out = arg;
	dura_sql_params p;
	void *m;
	(void)again;
	p.n = 0;
	dura_sql_p_time(&p, dura_now_ms());
	int rc = dura_sql_st_run(s, c, ST_CACHE_STATS, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		out->entries = dura_sql_c_int(s, m, 0);
		out->expired = dura_sql_c_int(s, m, 1);
		out->bytes = dura_sql_c_int(s, m, 2);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, s->name, 0, NULL, "reading cache statistics: no row");
	}
	dura_sql_st_done(s, m);
	return rc;
}

int dura_sql_cache_stats(void *impl, dura_cache_stats *out)
{
	dura_sql_store *s = impl;
	return dura_sql_run_op(s, cache_stats_body, out, DURA_SQL_IDEMPOTENT);
}

/* ---- leases ------------------------------------------------------------------------ */

/* A lease update that matched nothing: why not. */
static int lease_miss(dura_sql_store *s, const char *run_id, const char *owner, int again)
{
	dura_sql_conn *c;
	dura_sql_params p;
	void *m;
	int rc = dura_sql_pool_get(&s->pool, &c);
	if (rc)
		return rc;
	p.n = 0;
	dura_sql_p_str(&p, run_id);
	if ((rc = dura_sql_st_run(s, c, ST_LEASE_OWNER, &p, &m)) == 0) {
		rc = dura_sql_st_next(s, c, m);
		if (rc == 1) {
			const char *holder = dura_sql_c_str(s, m, 0);
			if (again && (!holder || !*holder))
				rc = 0; /* released by our first attempt */
			else if (holder && *holder)
				rc = dura_sql_err_leased_by(s->name, run_id, holder, owner);
			else
				rc = dura_sql_err_not_leased(s->name, run_id, owner);
		} else if (rc == 0) {
			rc = dura_sql_err_run_not_found(s->name, run_id);
		}
		dura_sql_st_done(s, m);
	}
	dura_sql_pool_put(&s->pool, c);
	return rc;
}

int dura_sql_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	uint64_t n = 0;
	p.n = 0;
	dura_sql_p_time(&p, dura_sql_add_ms(s, dura_now_ms(), lease_ms));
	dura_sql_p_str(&p, run_id);
	dura_sql_p_str(&p, owner);
	int rc = write_by(s, ST_LEASE_EXTEND, &p, &n, NULL);
	if (rc == 0 && n == 0)
		return lease_miss(s, run_id, owner, 0);
	return rc;
}

/*
 * A worker's heartbeat (extend_leases): one UPDATE per EXTEND_SLOTS runs,
 * in one transaction. Only when an UPDATE changed fewer rows than it named
 * is each of its runs read, to tell which lease is lost (or unchanged:
 * extended twice in one millisecond).
 */
#define EXTEND_SLOTS 16 /* the run ids LEASE_EXTEND_MANY names */

struct extend_arg {
	const char *owner;
	const char *const *run_ids;
	size_t n;
	int64_t until;
	int *codes;
};

static int extend_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct extend_arg *a = arg;
	(void)again; /* setting an expiry again is harmless */
	for (size_t at = 0; at < a->n; at += EXTEND_SLOTS) {
		size_t k = a->n - at < EXTEND_SLOTS ? a->n - at : EXTEND_SLOTS;
		dura_sql_params p;
		uint64_t changed = 0;
		p.n = 0;
		dura_sql_p_time(&p, a->until);
		dura_sql_p_str(&p, a->owner);
		for (size_t i = 0; i < EXTEND_SLOTS; i++)
			dura_sql_p_str(&p, i < k ? a->run_ids[at + i] : "");
		int rc = dura_sql_st_write(s, c, ST_LEASE_EXTEND_MANY, &p, &changed);
		if (rc)
			return rc;
		for (size_t i = 0; i < k; i++)
			a->codes[at + i] = 0;
		if (changed == k)
			continue;
		for (size_t i = 0; i < k; i++) {
			void *m;
			p.n = 0;
			dura_sql_p_str(&p, a->run_ids[at + i]);
			if ((rc = dura_sql_st_run(s, c, ST_LEASE_OWNER, &p, &m)) != 0)
				return rc;
			rc = dura_sql_st_next(s, c, m);
			if (rc == 1) {
				const char *holder = dura_sql_c_str(s, m, 0);
				rc = 0;
				if (!holder || strcmp(holder, a->owner) != 0)
					a->codes[at + i] = DURA_ECONFLICT;
			} else if (rc == 0) {
				a->codes[at + i] = DURA_ENOTFOUND;
			}
			dura_sql_st_done(s, m);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int dura_sql_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                           int *codes)
{
	dura_sql_store *s = impl;
	struct extend_arg a = {owner, run_ids, n, dura_sql_add_ms(s, dura_now_ms(), lease_ms), codes};
	int rc = dura_sql_run_op(s, extend_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	if (rc == 0)
		dura_error_clear(); /* the codes tell which leases are lost */
	return rc;
}

/* ---- claims ------------------------------------------------------------------------ */

#define WF_SLOTS 8     /* workflow names in FLOW_PAGE */
#define APPLY_SLOTS 16 /* run ids in CLAIM_APPLY */

struct claim_arg {
	const dura_claim *req;
	dura_record_list *out;
	int *taken; /* req->max flags, copied to req->taken_over on success */
};

static int served(const dura_claim *req, const char *wf)
{
	if (req->nworkflows == 0)
		return 1;
	for (size_t i = 0; i < req->nworkflows; i++)
		if (strcmp(req->workflows[i].name, wf) == 0)
			return 1;
	return 0;
}

/* The live leases, per workflow and key, into the ledger. */
static int count_leases(dura_sql_store *s, dura_sql_conn *c, dura_flow *flow, int64_t now)
{
	dura_sql_params p;
	void *m;
	p.n = 0;
	dura_sql_p_time(&p, now);
	int rc = dura_sql_st_run(s, c, ST_FLOW_COUNT, &p, &m);
	if (rc)
		return rc;
	while ((rc = dura_sql_st_next(s, c, m)) == 1) {
		const char *wf = dura_sql_c_str(s, m, 0), *key = dura_sql_c_str(s, m, 1);
		if ((rc = dura_flow_count(flow, wf ? wf : "", key ? key : "", dura_sql_c_int(s, m, 2))) != 0)
			break;
	}
	dura_sql_st_done(s, m);
	return rc;
}

/* One page of candidates after the keyset (prio, due, after), each
 * offered to the ledger (or taken, without one) until max are chosen.
 * *rows gets how many the page had. */
static int claim_page(dura_sql_store *s, dura_sql_conn *c, struct claim_arg *a, dura_flow *flow, int64_t now,
                      int64_t limit, int *prio, int64_t *due, char *after, int64_t *rows)
{
	const dura_claim *req = a->req;
	const char *names[WF_SLOTS];
	size_t nopen = 0;
	if (flow) {
		nopen = dura_flow_open(flow, names, WF_SLOTS);
		if (nopen == 0) {
			*rows = 0;
			return 0;
		}
	} else {
		nopen = req->nworkflows;
		for (size_t i = 0; i < nopen && i < WF_SLOTS; i++)
			names[i] = req->workflows[i].name;
	}
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	int listed = nopen > 0 && nopen <= WF_SLOTS; /* else every workflow is read and served() filters */
	dura_sql_p_str(&p, listed ? "" : NULL);
	for (size_t i = 0; i < WF_SLOTS; i++)
		dura_sql_p_str(&p, listed ? names[i < nopen ? i : 0] : "");
	dura_sql_p_int(&p, *prio);
	dura_sql_p_int(&p, *prio);
	dura_sql_p_time(&p, *due);
	dura_sql_p_time(&p, *due);
	dura_sql_p_str(&p, after);
	dura_sql_p_int(&p, limit);
	void *m;
	int rc = dura_sql_st_run(s, c, ST_FLOW_PAGE, &p, &m);
	if (rc)
		return rc;
	*rows = 0;
	const dura_sql_row row = {s->x->row, m};
	while ((rc = dura_sql_st_next(s, c, m)) == 1) {
		dura_record r;
		++*rows;
		if ((rc = dura_sql_row_record(&row, &r)) != 0)
			break;
		*prio = r.priority;
		*due = r.next_run_at;
		snprintf(after, DURA_MAX_ID_LEN + 1, "%s", r.run_id);
		int ok = served(req, r.workflow_name);
		if (ok && flow)
			ok = dura_flow_admit(flow, r.workflow_name, r.workflow_version, r.concurrency_key);
		if (ok <= 0 || a->out->count == req->max) {
			dura_record_clear(&r);
			if (ok < 0) {
				rc = DURA_ENOMEM;
				break;
			}
			continue;
		}
		a->taken[a->out->count] = dura_flow_taken_over(r.lease_owner, req->owner);
		a->out->items[a->out->count++] = r;
	}
	dura_sql_st_done(s, m);
	return rc;
}

/* Lease the chosen runs, APPLY_SLOTS at a time; they are locked, so each
 * record is as the UPDATE leaves it but for owner, expiry and version. */
static int claim_apply(dura_sql_store *s, dura_sql_conn *c, struct claim_arg *a, int64_t until)
{
	dura_record_list *out = a->out;
	for (size_t at = 0; at < out->count; at += APPLY_SLOTS) {
		size_t k = out->count - at < APPLY_SLOTS ? out->count - at : APPLY_SLOTS;
		uint64_t n = 0;
		dura_sql_params p;
		p.n = 0;
		dura_sql_p_str(&p, a->req->owner);
		dura_sql_p_time(&p, until);
		for (size_t i = 0; i < APPLY_SLOTS; i++)
			dura_sql_p_str(&p, i < k ? out->items[at + i].run_id : "");
		int rc = dura_sql_st_write(s, c, ST_CLAIM_APPLY, &p, &n);
		if (rc)
			return rc;
		if (n != k)
			return dura_error_set_native(DURA_ERROR, s->name, 0, NULL, "claiming runs: %llu of %zu locked runs were leased",
			                             (unsigned long long)n, k);
	}
	for (size_t i = 0; i < out->count; i++) {
		dura_record *r = &out->items[i];
		char *owner = dura_strdup(a->req->owner);
		if (!owner)
			return dura_error_oom(s->name);
		dura_free(r->lease_owner);
		r->lease_owner = owner;
		r->lease_expires_at = until;
		r->version++;
	}
	return 0;
}

/*
 * A claim in one transaction. With flow limits, the lock row first: it
 * serialises every limited claim of the store, so the live leases counted
 * next are the ones there are until this claim commits, and no two
 * claims fill the same room. Then the runnable runs in claim order,
 * locked as they are read (SKIP LOCKED passes over another claimer's),
 * page by page until max are admitted or none are left; without limits
 * one page of max is the claim. A claim with versions (contract version
 * 6) has a ledger too, which passes over the runs of versions it does not
 * serve, and reads page after page as a limited claim does, so that those
 * never hide the runs it serves; without limits it needs neither the lock
 * row nor the count. Then the lease, in one UPDATE per 16.
 */
static int claim_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct claim_arg *a = arg;
	const dura_claim *req = a->req;
	int64_t now = dura_now_ms(), until = dura_sql_add_ms(s, now, req->lease_ms);
	dura_flow *flow = NULL;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	if (!(a->out->items = dura_calloc(req->max, sizeof(*a->out->items))))
		return dura_error_oom(s->name);
	int limited = 0;
	for (size_t i = 0; i < req->nworkflows; i++)
		limited |= req->workflows[i].max_running > 0 || req->workflows[i].max_per_key > 0;
	int rc = dura_flow_new(&flow, req, s->name);
	if (rc == 0 && flow && limited) {
		dura_sql_params p;
		p.n = 0;
		if ((rc = dura_sql_st_exists(s, c, ST_FLOW_LOCK, &p)) == 0)
			rc = dura_error_set_native(DURA_ERROR, s->name, 0, NULL,
			                           "claiming runs: the lock row of the dura_flow table is missing");
		else if (rc == 1)
			rc = count_leases(s, c, flow, now);
	}
	int prio = DURA_PRIORITY_MAX + 1;
	int64_t due = 0, rows = 0;
	char after[DURA_MAX_ID_LEN + 1] = "";
	/* a full page of runs all passed over: read on */
	int64_t limit = flow || req->nworkflows > WF_SLOTS ? (int64_t)req->max * 4 + 16 : (int64_t)req->max;
	while (rc == 0) {
		if ((rc = claim_page(s, c, a, flow, now, limit, &prio, &due, after, &rows)) != 0)
			break;
		if (a->out->count == req->max || rows < limit)
			break;
	}
	if (rc == 0)
		rc = claim_apply(s, c, a, until);
	dura_flow_free(flow);
	if (rc) {
		dura_record_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

int dura_sql_claim(void *impl, const dura_claim *req, dura_record_list *out)
{
	dura_sql_store *s = impl;
	int *taken = dura_calloc(req->max, sizeof(*taken));
	if (!taken)
		return dura_error_oom(s->name);
	struct claim_arg a = {req, out, taken};
	/* not DURA_SQL_IDEMPOTENT: a claim whose COMMIT was lost is not rerun (it
	 * would claim more); its runs come back when the lease expires */
	int rc = dura_sql_run_op(s, claim_body, &a, DURA_SQL_TX);
	if (rc == 0 && out->count == 0) {
		dura_free(out->items);
		out->items = NULL;
	}
	if (rc == 0 && req->taken_over)
		memcpy(req->taken_over, taken, out->count * sizeof(*taken));
	dura_free(taken);
	return rc;
}

int dura_sql_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                        int64_t lease_ms, dura_record_list *out)
{
	dura_sql_store *s = impl;
	return dura_flow_claim_runs(dura_sql_claim, impl, s->name, owner, workflows, nworkflows, max, lease_ms, out);
}

int dura_sql_release_lease(void *impl, const char *run_id, const char *owner)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_sql_p_str(&p, run_id);
	dura_sql_p_str(&p, owner);
	int rc = write_by(s, ST_LEASE_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0)
		return lease_miss(s, run_id, owner, again);
	return rc;
}

/* ---- outbox ------------------------------------------------------------------------ */

struct poll_arg {
	size_t limit;
	dura_event_list *out;
};

static int poll_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct poll_arg *a = arg;
	dura_sql_params p;
	(void)again;
	dura_event_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_sql_p_int(&p, (int64_t)a->limit);
	return dura_sql_st_collect(s, c, ST_OUTBOX_POLL, &p, DURA_SQL_EVENT, (void **)&a->out->items, &a->out->count);
}

int dura_sql_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	dura_sql_store *s = impl;
	struct poll_arg a = {limit, out};
	return dura_sql_run_op(s, poll_body, &a, DURA_SQL_IDEMPOTENT);
}

int dura_sql_outbox_ack(void *impl, const char *event_id)
{
	dura_sql_store *s = impl;
	return delete_by(s, ST_OUTBOX_ACK, event_id, "outbox event %s not found (already acknowledged?)");
}


/* ---- durable waiting (contract version 5) ------------------------------------------ */

static int run_ended(int state)
{
	return state == DURA_RUN_COMPLETED || state == DURA_RUN_FAILED || state == DURA_RUN_CANCELLED ||
	       state == DURA_RUN_DATA_DELETED;
}

struct signal_arg {
	const char *signal_id, *run_id, *name, *payload;
};

/*
 * The run locked, then the signal inserted and, if the run waits for a
 * signal of this name, the run woken: a sender and a run starting to wait
 * (a commit of that run, which locks the row too) go one after the other.
 * Not idempotent as such, but the signal's id is fixed: after a lost
 * connection (again), a signal row with that id is our first attempt's.
 */
static int signal_send_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct signal_arg *a = arg;
	dura_sql_params p;
	int rc;
	if (again) {
		p.n = 0;
		dura_sql_p_str(&p, a->signal_id);
		if ((rc = dura_sql_st_exists(s, c, ST_SIGNAL_CHECK, &p)) != 0)
			return rc < 0 ? rc : 0;
	}
	int state;
	int64_t version;
	char wait[WAIT_MAX + 1];
	if ((rc = run_lock_full(s, c, a->run_id, &state, &version, wait, NULL)) != 0)
		return rc;
	if (run_ended(state))
		return dura_error_set_native(DURA_ECONFLICT, s->name, 0, NULL, "run %s is %s: it takes no more signals",
		                             a->run_id, dura_run_state_name(state));
	p.n = 0;
	dura_sql_p_str(&p, a->signal_id);
	dura_sql_p_str(&p, a->run_id);
	dura_sql_p_str(&p, a->name);
	dura_sql_p_str(&p, a->payload);
	dura_sql_p_time(&p, dura_now_ms());
	if ((rc = dura_sql_st_write(s, c, ST_SIGNAL_INSERT, &p, NULL)) != 0) {
		if (s->x->duplicate(c, NULL))
			return dura_error_set_native(DURA_EEXISTS, s->name, s->x->dup_native, s->x->dup_state,
			                             "signal %s already exists", a->signal_id);
		return rc;
	}
	char want[WAIT_MAX + 1];
	snprintf(want, sizeof(want), "signal:%s", a->name);
	if (state == DURA_RUN_RUNNING && strcmp(wait, want) == 0)
		return dura_sql_wake_in(s, c, a->run_id, want, NULL);
	return 0;
}

int dura_sql_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	dura_sql_store *s = impl;
	struct signal_arg a = {signal_id, run_id, name, payload ? payload : "null"};
	int rc = s->x->check_size ? s->x->check_size(s, strlen(a.payload), "the signal's payload") : 0;
	if (rc)
		return rc;
	return dura_sql_run_op(s, signal_send_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

struct signal_read_arg {
	const char *run_id, *name;
	dura_signal **one;
	dura_signal_list *list;
};

static int signal_read_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct signal_read_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->run_id);
	if (a->list) {
		dura_signal_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_sql_st_collect(s, c, ST_SIGNAL_LIST, &p, DURA_SQL_SIGNAL, (void **)&a->list->items,
		                           &a->list->count);
	}
	dura_sql_p_str(&p, a->name);
	return dura_sql_st_fetch(s, c, ST_SIGNAL_NEXT, &p, DURA_SQL_SIGNAL, (void **)a->one);
}

int dura_sql_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	dura_sql_store *s = impl;
	struct signal_read_arg a = {run_id, name, out, NULL};
	int rc = dura_sql_run_op(s, signal_read_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, s->name, 0, NULL, "run %s has no signal named %s", run_id, name);
	return rc;
}

int dura_sql_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	dura_sql_store *s = impl;
	struct signal_read_arg a = {run_id, NULL, NULL, out};
	memset(out, 0, sizeof(*out));
	return dura_sql_run_op(s, signal_read_body, &a, DURA_SQL_IDEMPOTENT);
}

struct wake_arg {
	const char *run_id, *wait;
	int woke, again;
};

static int wake_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct wake_arg *a = arg;
	a->again |= again;
	return dura_sql_wake_in(s, c, a->run_id, a->wait, &a->woke);
}

int dura_sql_wake(void *impl, const char *run_id, const char *wait)
{
	dura_sql_store *s = impl;
	struct wake_arg a = {run_id, wait, 0, 0};
	int rc = dura_sql_run_op(s, wake_body, &a, DURA_SQL_IDEMPOTENT);
	/* after an unknown outcome, a miss is our first attempt's wake */
	if (rc == 0 && !a.woke && !a.again)
		return dura_error_set_native(DURA_ENOTFOUND, s->name, 0, NULL, "run %s is not running and waiting for %s",
		                             run_id, wait);
	return rc;
}

static int schedule_missing(dura_sql_store *s, const char *name)
{
	return dura_error_set_native(DURA_ENOTFOUND, s->name, 0, NULL, "no schedule named %s", name);
}

int dura_sql_schedule_put(void *impl, const dura_schedule *sch)
{
	dura_sql_store *s = impl;
	const char *state = sch->state ? sch->state : "{}";
	int rc = s->x->check_size ? s->x->check_size(s, strlen(state), "the schedule's state") : 0;
	if (rc)
		return rc;
	int64_t now = dura_now_ms();
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, sch->name);
	dura_sql_p_str(&p, sch->cron ? sch->cron : "");
	dura_sql_p_str(&p, sch->zone ? sch->zone : "UTC");
	dura_sql_p_str(&p, sch->workflow_name ? sch->workflow_name : "");
	dura_sql_p_str(&p, state);
	dura_sql_p_int(&p, sch->catch_up);
	dura_sql_p_time(&p, sch->next_tick > s->x->max_time_ms ? s->x->max_time_ms : sch->next_tick);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	return write_by(s, ST_SCHEDULE_PUT, &p, NULL, NULL);
}

struct schedule_arg {
	const char *name;
	dura_schedule **one;
	dura_schedules *list;
};

static int schedule_read_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct schedule_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	if (a->list) {
		dura_schedules_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_sql_st_collect(s, c, ST_SCHEDULE_LIST, &p, DURA_SQL_SCHEDULE, (void **)&a->list->items,
		                           &a->list->count);
	}
	dura_sql_p_str(&p, a->name);
	return dura_sql_st_fetch(s, c, ST_SCHEDULE_GET, &p, DURA_SQL_SCHEDULE, (void **)a->one);
}

int dura_sql_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	dura_sql_store *s = impl;
	struct schedule_arg a = {name, out, NULL};
	int rc = dura_sql_run_op(s, schedule_read_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return schedule_missing(s, name);
	return rc;
}

int dura_sql_schedule_delete(void *impl, const char *name)
{
	dura_sql_store *s = impl;
	return delete_by(s, ST_SCHEDULE_DELETE, name, "no schedule named %s");
}

int dura_sql_schedule_list(void *impl, dura_schedules *out)
{
	dura_sql_store *s = impl;
	struct schedule_arg a = {NULL, NULL, out};
	memset(out, 0, sizeof(*out));
	return dura_sql_run_op(s, schedule_read_body, &a, DURA_SQL_IDEMPOTENT);
}

struct advance_arg {
	const char *name;
	int64_t from, to;
};

/* The compare-and-set; on a miss, why: absent, or at another tick (after an
 * unknown outcome, at `to` is our first attempt's). */
static int advance_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct advance_arg *a = arg;
	dura_sql_params p;
	uint64_t n = 0;
	p.n = 0;
	dura_sql_p_time(&p, a->to);
	dura_sql_p_time(&p, dura_now_ms());
	dura_sql_p_str(&p, a->name);
	dura_sql_p_time(&p, a->from);
	int rc = dura_sql_st_write(s, c, ST_SCHEDULE_ADVANCE, &p, &n);
	if (rc || n > 0)
		return rc;
	dura_schedule *sch = NULL;
	p.n = 0;
	dura_sql_p_str(&p, a->name);
	rc = dura_sql_st_fetch(s, c, ST_SCHEDULE_GET, &p, DURA_SQL_SCHEDULE, (void **)&sch);
	if (rc == DURA_ENOTFOUND)
		return schedule_missing(s, a->name);
	if (rc)
		return rc;
	int64_t tick = sch->next_tick;
	dura_schedule_free(sch);
	if (again && tick == a->to)
		return 0;
	return dura_error_set_native(DURA_ECONFLICT, s->name, 0, NULL, "schedule %s: next tick is %lld, not %lld", a->name,
	                             (long long)tick, (long long)a->from);
}

int dura_sql_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	dura_sql_store *s = impl;
	struct advance_arg a = {name, from, to > s->x->max_time_ms ? s->x->max_time_ms : to};
	return dura_sql_run_op(s, advance_body, &a, DURA_SQL_IDEMPOTENT);
}
