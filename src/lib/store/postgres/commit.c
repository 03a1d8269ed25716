/*
 * commit.c - the PostgreSQL store's step commits. A commit is one
 * statement (PG_COMMIT_SQL in pg.h): the CAS UPDATE of the record, and in
 * data-modifying CTEs over its RETURNING row the step row and the outbox
 * row, so it is atomic without a transaction of ours and costs one round
 * trip. A CAS miss returns no row and writes nothing.
 *
 * A commit whose connection was lost is run again with again = 1, which
 * first asks sql/commit.c whether the lost one landed, so a step is
 * neither lost nor doubled. A batch is one statement too (COMMIT_MANY):
 * every commit CAS-checked on its own in one UPDATE over the batch read
 * as a table, then the step rows and events of the updated runs. When a
 * unique key breaks (the whole statement fails, nothing written) the
 * batch goes the long way, sql/commit.c's: one transaction of single
 * commits, where the one that failed is left out and the others rerun.
 */
#include "pg.h"

#include <stdio.h>
#include <string.h>

/* A unique key broken by a commit: the step already exists, or the run
 * would become a second active run of its foreign id. */
static int commit_duplicate(const dura_commit *cm)
{
	const dura_error *e = dura_error_last();
	if (e && e->message && strstr(e->message, "workflow_steps"))
		return dura_error_set_native(DURA_ECONFLICT, PG, 0, "23505",
		                             "run %s already has the step this commit would write", cm->run_id);
	return dura_error_set_native(DURA_ECONFLICT, PG, 0, "23505",
	                             "cannot commit run %s as %s: its workflow already has an active run with the same "
	                             "foreign id",
	                             cm->run_id, dura_run_state_name(cm->run_state));
}

static int commit_one(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                      dura_commit_result *res, int *updated)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	char buf[DURA_SQL_SUMMARY_BUF], *heap = NULL;
	const char *head = NULL, *tail = NULL;
	*updated = 0;
	if (plan.do_event && !cm->event_data && !(head = dura_sql_summary_pieces(buf, sizeof buf, cm, NULL, &tail, &heap)))
		return dura_error_oom(PG);
	dura_sql_params p;
	p.n = 0;
	/* u: the record */
	dura_sql_p_str(&p, cm->state);
	dura_sql_p_str(&p, plan.status);
	dura_sql_p_str(&p, cm->error ? cm->error : "");
	dura_sql_p_str(&p, dura_sql_commit_wait(cm));
	dura_sql_p_str(&p, dura_sql_commit_version(cm));
	dura_sql_p_int(&p, cm->attempt);
	dura_sql_p_time(&p, cm->next_run_at ? cm->next_run_at : now);
	dura_sql_p_time(&p, now);
	dura_sql_p_int(&p, plan.do_step);
	if (cm->run_state)
		dura_sql_p_int(&p, cm->run_state);
	else
		dura_sql_p_null(&p);
	dura_sql_p_int(&p, plan.release);
	dura_sql_p_int(&p, plan.release);
	dura_sql_p_str(&p, cm->run_id);
	dura_sql_p_int(&p, cm->expect_version);
	/* s: the step */
	dura_sql_p_str(&p, cm->node_id ? cm->node_id : "");
	dura_sql_p_str(&p, cm->state);
	dura_sql_p_time(&p, now);
	dura_sql_p_str(&p, dura_sql_commit_version(cm));
	dura_sql_p_int(&p, plan.do_step);
	/* e: the event */
	dura_sql_p_str(&p, event_id ? event_id : "");
	dura_sql_p_str(&p, cm->event_type ? cm->event_type : "step");
	dura_sql_p_str(&p, cm->event_data);
	dura_sql_p_str(&p, head ? head : "");
	dura_sql_p_int(&p, plan.do_step);
	dura_sql_p_str(&p, tail ? tail : "");
	dura_sql_p_time(&p, now);
	dura_sql_p_int(&p, plan.do_event);

	int applied, lost = dura_pg_lost_commit(&applied);
	if (lost && !applied) {
		dura_free(heap);
		c->broken = 1;
		return dura_error_set_native(DURA_EIO, PG, 0, "08006", "commit: the connection was lost (simulated by a test)");
	}
	void *m;
	int rc = dura_sql_st_run(s, c, ST_COMMIT, &p, &m);
	dura_free(heap);
	if (rc) {
		/* a failed statement aborts an open transaction: a batch reruns without it */
		*updated = 1;
		return s->x->duplicate(c, NULL) ? commit_duplicate(cm) : rc;
	}
	rc = dura_sql_st_next(s, c, m);
	int64_t step_no = rc == 1 ? dura_sql_c_int(s, m, 0) : 0;
	dura_sql_st_done(s, m);
	if (lost) {
		c->broken = 1;
		return dura_error_set_native(DURA_EIO, PG, 0, "08006", "commit: the connection was lost (simulated by a test)");
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return dura_sql_commit_miss(s, c, cm);
	if (dura_sql_commit_has_extras(cm)) {
		/* in the caller's transaction: a failure here rolls the commit back */
		*updated = 1;
		if ((rc = dura_sql_commit_extras(s, c, cm)) != 0)
			return rc;
	}
	res->new_version = cm->expect_version + 1;
	res->step = plan.do_step ? step_no - 1 : -1;
	return 0;
}

struct commit_arg {
	const dura_commit *cm;
	const char *event_id;
	int64_t now;
	dura_commit_result *res;
};

static int commit_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct commit_arg *a = arg;
	int updated;
	a->res->new_version = 0;
	a->res->step = -1;
	if (again) {
		int v = dura_sql_commit_verify(s, c, a->cm, a->event_id, a->now, a->res);
		if (v != 0)
			return v < 0 ? v : 0;
	}
	return commit_one(s, c, a->cm, a->event_id, a->now, a->res, &updated);
}

int dura_pg_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res)
{
	struct commit_arg a = {cm, event_id, dura_now_ms(), res};
	/* one statement, atomic alone; with a signal to consume or a run to
	 * wake, a transaction of three */
	int rc = dura_sql_run_op(impl, commit_body, &a,
	                         DURA_SQL_IDEMPOTENT | (dura_sql_commit_has_extras(cm) ? DURA_SQL_TX : 0));
	if (rc) {
		res->new_version = 0;
		res->step = -1;
	}
	return rc;
}

/* ---- a batch in one statement ---------------------------------------------------- */

#define MANY_FALLBACK 2 /* a batch's "a unique key broke: commit them one by one" */
#define MANY_MAX_BYTES (16u << 20) /* a bigger batch goes one by one: the document stays small */

struct many_arg {
	const dura_commit *cm;
	const char *const *ids;
	int64_t now;
	size_t *unwritten;       /* the commits still to write */
	unsigned char *hit; /* per commit: written by the statement */
	dura_sql_tally t;
};

/*
 * The batch as COMMIT_MANY: one statement, so one round trip and one
 * transaction of the server's own (atomic without ours). After a lost
 * connection (again) each commit is first checked: the ones that landed
 * are done, the others are written now. A commit the statement did not
 * update missed its CAS (or its run is gone) and wrote nothing.
 */
static int many_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct many_arg *a = arg;
	memset(a->hit, 0, a->t.n);
	int pending = dura_sql_tally_pending(&a->t, s, c, a->cm, a->ids, a->now, again, a->unwritten);
	if (pending <= 0)
		return pending;
	size_t k = (size_t)pending;
	char *doc = dura_sql_batch_json(a->cm, a->ids, a->unwritten, k, a->now, PG_MAX_TIME_MS);
	if (!doc)
		return dura_error_oom(PG);
	int applied, lost = dura_pg_lost_commit(&applied);
	if (lost && !applied) {
		dura_free(doc);
		c->broken = 1;
		return dura_error_set_native(DURA_EIO, PG, 0, "08006", "commit: the connection was lost (simulated by a test)");
	}
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, doc);
	dura_sql_p_time(&p, a->now);
	dura_sql_p_time(&p, a->now);
	dura_sql_p_time(&p, a->now);
	void *m;
	int rc = dura_sql_st_run(s, c, ST_COMMIT_MANY, &p, &m);
	dura_free(doc);
	if (rc)
		return s->x->duplicate(c, NULL) ? MANY_FALLBACK : rc;
	while ((rc = dura_sql_st_next(s, c, m)) == 1) {
		int64_t i = dura_sql_c_int(s, m, 0);
		if (i < 0 || (size_t)i >= a->t.n)
			continue;
		const dura_commit *cm = &a->cm[i];
		a->hit[i] = 1;
		a->t.res[i].new_version = cm->expect_version + 1;
		a->t.res[i].step = (cm->flags & DURA_COMMIT_NO_STEP) ? -1 : dura_sql_c_int(s, m, 1) - 1;
	}
	dura_sql_st_done(s, m);
	if (lost) {
		c->broken = 1;
		return dura_error_set_native(DURA_EIO, PG, 0, "08006", "commit: the connection was lost (simulated by a test)");
	}
	if (rc < 0)
		return rc; /* the statement ran: a rerun checks what landed */
	for (size_t j = 0; j < k; j++) {
		size_t i = a->unwritten[j];
		if (a->hit[i])
			continue;
		rc = dura_sql_commit_miss(s, c, &a->cm[i]);
		if (rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			return rc ? rc : dura_error_set_native(DURA_ERROR, PG, 0, NULL, "run %s: the batch did not update it",
			                                        a->cm[i].run_id);
		dura_sql_tally_fail(&a->t, i, rc);
	}
	return 0;
}

/* 1 when two commits of the batch are of one run (the statement would
 * update it once), or one consumes a signal or wakes a run: those go one
 * by one. */
static int same_run_twice(const dura_commit *cm, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (dura_sql_commit_has_extras(&cm[i]))
			return 1;
	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cm[i].run_id, cm[j].run_id) == 0)
				return 1;
	return 0;
}

int dura_pg_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                         dura_commit_result *res)
{
	dura_sql_store *s = impl;
	if (n < 2 || n > 1000 || same_run_twice(cm, n))
		return dura_sql_commit_batch(s, commit_one, cm, event_ids, n, res);
	struct many_arg a;
	memset(&a, 0, sizeof(a));
	a.cm = cm;
	a.ids = event_ids;
	a.t.n = n;
	a.t.res = res;
	a.now = dura_now_ms();
	int rc = 0;
	size_t bytes = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bytes += dura_sql_commit_size(&cm[i]);
		rc = s->x->check_size(s, dura_sql_commit_size(&cm[i]), "a step's state");
	}
	if (rc == 0 && bytes > MANY_MAX_BYTES)
		return dura_sql_commit_batch(s, commit_one, cm, event_ids, n, res);
	if (rc == 0 && (!(a.unwritten = dura_calloc(n, sizeof(size_t))) || !(a.hit = dura_calloc(n, 1))))
		rc = dura_error_oom(PG);
	if (rc == 0)
		rc = dura_sql_run_op(s, many_body, &a, DURA_SQL_IDEMPOTENT);
	dura_free(a.unwritten);
	dura_free(a.hit);
	if (rc == MANY_FALLBACK) {
		/* a step already written, or a second active run of a foreign
		 * id: nothing went in; one by one, each gets its own answer */
		dura_error_clear();
		return dura_sql_commit_batch(s, commit_one, cm, event_ids, n, res);
	}
	return dura_sql_tally_end(&a.t, s->name, rc);
}
