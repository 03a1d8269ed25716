/*
 * import.c - import (store contract version 7) as every server SQL store
 * (MySQL/MariaDB, PostgreSQL) runs it, over the statement interface of
 * exec.h with the catalog's statements: a whole run inserted as another
 * store had it, in one transaction - the record with every field but the
 * lease, then its steps, checkpoints and signals with their own times -
 * an outbox event as it was, and the outbox read page by page, for an
 * export. Each operation is a body run by dura_sql_run_op() on a pooled
 * connection, as in server.c.
 *
 * A run is looked up first: by its id, then (when it is active and has a
 * foreign id) the active run of its workflow and foreign id, so that a
 * refusal names what is there; the unique keys refuse what a concurrent
 * writer put there meanwhile (the body runs again and the look-ups word
 * it). A failed statement ends a PostgreSQL transaction, so nothing is
 * read after one. After a connection lost while committing (again), a run
 * there with our workflow, foreign id and creation time - what no later
 * change of a run alters - is taken for our import, which went in whole;
 * an event there with our run, type and time likewise.
 */
#include "import.h"

#include "catalog.h"
#include "errors.h"

#include "../../internal.h"

#include <stdio.h>
#include <string.h>

#define X_ENUM(name, sql) ST_##name,
enum { SQL_SHARED_STATEMENTS(X_ENUM) SQL_SERVER_STATEMENTS(X_ENUM) ST__SERVER_COUNT };
#undef X_ENUM

/* Races with other writers a body runs again for before it reports one as it is. */
#define IMPORT_RACES 3

static const char *str(const char *v)
{
	return v ? v : "";
}

static int is_active(int run_state)
{
	return run_state == DURA_RUN_INITIATED || run_state == DURA_RUN_RUNNING || run_state == DURA_RUN_PAUSED;
}

/* Refuse a value the server would refuse, before writing anything. */
static int check_size(dura_sql_store *s, size_t n, const char *what)
{
	return s->x->check_size ? s->x->check_size(s, n, what) : 0;
}

/* ---- a run ------------------------------------------------------------------------------ */

struct run_arg {
	const dura_import_run *r;
	int races;
};

/* Is the run id or the active run of the workflow and foreign id taken?
 * 0 when neither is, DURA_EEXISTS worded, 1 when the run there is our own
 * import (again), or the failure. */
static int run_taken(dura_sql_store *s, dura_sql_conn *c, const dura_record *rec, int again)
{
	const char *fid = str(rec->foreign_id);
	dura_sql_params p;
	dura_record *there = NULL;
	p.n = 0;
	dura_sql_p_str(&p, rec->run_id);
	int rc = dura_sql_st_fetch(s, c, ST_RUN_GET, &p, DURA_SQL_RECORD, (void **)&there);
	if (rc == 0) {
		int ours = again && there->created_at == rec->created_at &&
		           strcmp(there->workflow_name, rec->workflow_name) == 0 && strcmp(there->foreign_id, fid) == 0;
		dura_record_free(there);
		return ours ? 1 : dura_sql_err_import_run_exists(s->name, 0, NULL, rec->run_id);
	}
	if (rc != DURA_ENOTFOUND)
		return rc;
	if (!is_active(rec->run_state) || !*fid)
		return 0;
	p.n = 0;
	dura_sql_p_str(&p, rec->workflow_name);
	dura_sql_p_str(&p, fid);
	rc = dura_sql_st_fetch(s, c, ST_RUN_ACTIVE, &p, DURA_SQL_RECORD, (void **)&there);
	if (rc == DURA_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	rc = dura_sql_err_import_active(s->name, 0, NULL, rec->run_id, rec->workflow_name, fid, there->run_id);
	dura_record_free(there);
	return rc;
}

static int insert_record(dura_sql_store *s, dura_sql_conn *c, struct run_arg *a)
{
	const dura_record *rec = a->r->record;
	const char *fid = str(rec->foreign_id);
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, rec->run_id);
	dura_sql_p_str(&p, rec->workflow_name);
	dura_sql_p_str(&p, fid);
	dura_sql_p_int(&p, rec->run_state);
	dura_sql_p_str(&p, str(rec->status));
	dura_sql_p_str(&p, rec->state);
	dura_sql_p_int(&p, rec->version);
	dura_sql_p_int(&p, rec->step_no);
	dura_sql_p_int(&p, rec->attempt);
	dura_sql_p_str(&p, str(rec->error));
	dura_sql_p_str(&p, rec->meta && *rec->meta ? rec->meta : NULL);
	dura_sql_p_time(&p, rec->next_run_at);
	dura_sql_p_time(&p, rec->created_at);
	dura_sql_p_time(&p, rec->updated_at);
	dura_sql_p_int(&p, rec->priority);
	dura_sql_p_str(&p, str(rec->concurrency_key));
	dura_sql_p_str(&p, str(rec->wait));
	dura_sql_p_str(&p, str(rec->parent_id));
	dura_sql_p_str(&p, str(rec->workflow_version));
	int rc = dura_sql_st_write(s, c, ST_RUN_IMPORT, &p, NULL);
	int primary = 0;
	if (rc == 0 || !s->x->duplicate(c, &primary))
		return rc;
	/* a writer the look-ups did not see (it had not committed): once it
	 * has, they word the refusal */
	if (a->races++ < IMPORT_RACES)
		return DURA_SQL_AGAIN;
	if (primary)
		return dura_sql_err_import_run_exists(s->name, s->x->dup_native, s->x->dup_state, rec->run_id);
	return dura_sql_err_import_active(s->name, s->x->dup_native, s->x->dup_state, rec->run_id, rec->workflow_name, fid,
	                                  NULL);
}

/* A failed insert of a row of the run: a broken unique key is the id
 * (what, id) taken. */
static int row_refused(dura_sql_store *s, dura_sql_conn *c, int rc, const char *run_id, const char *what,
                       const char *id)
{
	if (rc == 0 || !s->x->duplicate(c, NULL))
		return rc;
	return dura_sql_err_import_taken(s->name, s->x->dup_native, s->x->dup_state, run_id, what, id);
}

static int insert_rows(dura_sql_store *s, dura_sql_conn *c, const dura_import_run *r)
{
	const char *run_id = r->record->run_id;
	dura_sql_params p;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < r->nsteps; i++) {
		const dura_step *x = &r->steps[i];
		char step[24];
		p.n = 0;
		dura_sql_p_str(&p, x->run_id);
		dura_sql_p_int(&p, x->step);
		dura_sql_p_str(&p, x->node_id);
		dura_sql_p_str(&p, x->state);
		dura_sql_p_time(&p, x->created_at);
		dura_sql_p_str(&p, str(x->workflow_version));
		snprintf(step, sizeof(step), "%lld", (long long)x->step);
		rc = row_refused(s, c, dura_sql_st_write(s, c, ST_STEP_INSERT, &p, NULL), run_id, "step", step);
	}
	for (size_t i = 0; rc == 0 && i < r->ncheckpoints; i++) {
		const dura_checkpoint *x = &r->checkpoints[i];
		p.n = 0;
		dura_sql_p_str(&p, x->checkpoint_id);
		dura_sql_p_str(&p, x->run_id);
		dura_sql_p_int(&p, x->step);
		dura_sql_p_str(&p, x->state);
		dura_sql_p_time(&p, x->created_at);
		dura_sql_p_time(&p, x->updated_at);
		rc = row_refused(s, c, dura_sql_st_write(s, c, ST_CP_IMPORT, &p, NULL), run_id, "checkpoint",
		                 x->checkpoint_id);
	}
	for (size_t i = 0; rc == 0 && i < r->nsignals; i++) {
		const dura_signal *x = &r->signals[i];
		p.n = 0;
		dura_sql_p_str(&p, x->signal_id);
		dura_sql_p_str(&p, x->run_id);
		dura_sql_p_str(&p, x->name);
		/* a signal sent without a payload has "null" (dura_store_signal_send) */
		dura_sql_p_str(&p, x->payload && *x->payload ? x->payload : "null");
		dura_sql_p_time(&p, x->created_at);
		rc = row_refused(s, c, dura_sql_st_write(s, c, ST_SIGNAL_INSERT, &p, NULL), run_id, "signal", x->signal_id);
	}
	return rc;
}

static int run_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct run_arg *a = arg;
	int rc = run_taken(s, c, a->r->record, again);
	if (rc == 1)
		return 0; /* our import went in whole: nothing more to write */
	if (rc == 0)
		rc = insert_record(s, c, a);
	return rc ? rc : insert_rows(s, c, a->r);
}

/* Each statement is one packet: refuse one the server would refuse. */
static int import_sizes(dura_sql_store *s, const dura_import_run *r)
{
	const dura_record *rec = r->record;
	int rc = check_size(s, strlen(rec->state) + strlen(str(rec->meta)) + strlen(str(rec->error)), "the run's state");
	for (size_t i = 0; rc == 0 && i < r->nsteps; i++)
		rc = check_size(s, strlen(r->steps[i].state), "a step's state");
	for (size_t i = 0; rc == 0 && i < r->ncheckpoints; i++)
		rc = check_size(s, strlen(r->checkpoints[i].state), "a checkpoint's state");
	for (size_t i = 0; rc == 0 && i < r->nsignals; i++)
		rc = check_size(s, strlen(str(r->signals[i].payload)), "a signal's payload");
	return rc;
}

int dura_sql_import_run(void *impl, const dura_import_run *r)
{
	dura_sql_store *s = impl;
	struct run_arg a = {r, 0};
	int rc = import_sizes(s, r);
	return rc ? rc : dura_sql_run_op(s, run_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

/* ---- an outbox event -------------------------------------------------------------------- */

/* After an unknown outcome: is the event there our insert? 1, 0, or the failure. */
static int event_ours(dura_sql_store *s, dura_sql_conn *c, const dura_event *ev)
{
	dura_sql_params p;
	dura_event_list l = {0};
	p.n = 0;
	dura_sql_p_str(&p, ev->id);
	int rc = dura_sql_st_collect(s, c, ST_EVENT_GET, &p, DURA_SQL_EVENT, (void **)&l.items, &l.count);
	if (rc)
		return rc;
	rc = l.count == 1 && l.items[0].created_at == ev->created_at && strcmp(l.items[0].run_id, ev->run_id) == 0 &&
	     strcmp(l.items[0].workflow_name, ev->workflow_name) == 0 && strcmp(l.items[0].type, ev->type) == 0;
	dura_event_list_free(&l);
	return rc;
}

static int event_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	const dura_event *ev = arg;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, ev->id);
	dura_sql_p_str(&p, ev->workflow_name);
	dura_sql_p_str(&p, ev->run_id);
	dura_sql_p_str(&p, ev->type);
	dura_sql_p_str(&p, ev->data);
	dura_sql_p_time(&p, ev->created_at);
	int rc = dura_sql_st_write(s, c, ST_OUTBOX_IMPORT, &p, NULL);
	if (rc == 0 || !s->x->duplicate(c, NULL))
		return rc;
	/* one statement, not in a transaction: the server is past the failure */
	if (again && (rc = event_ours(s, c, ev)) != 0)
		return rc == 1 ? 0 : rc;
	return dura_sql_err_event_exists(s->name, s->x->dup_native, s->x->dup_state, ev->id);
}

int dura_sql_import_event(void *impl, const dura_event *ev)
{
	dura_sql_store *s = impl;
	int rc = check_size(s, strlen(str(ev->data)), "the event's data");
	return rc ? rc : dura_sql_run_op(s, event_body, (void *)ev, DURA_SQL_IDEMPOTENT);
}

/* ---- the outbox page by page ------------------------------------------------------------ */

struct list_arg {
	const char *after;
	size_t limit;
	dura_event_list *out;
};

static int list_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct list_arg *a = arg;
	dura_sql_params p;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->after);
	dura_sql_p_int(&p, (int64_t)a->limit);
	return dura_sql_st_collect(s, c, ST_OUTBOX_LIST, &p, DURA_SQL_EVENT, (void **)&a->out->items, &a->out->count);
}

int dura_sql_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out)
{
	struct list_arg a = {after, limit, out};
	memset(out, 0, sizeof(*out));
	return dura_sql_run_op(impl, list_body, &a, DURA_SQL_IDEMPOTENT);
}
