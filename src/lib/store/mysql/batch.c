/*
 * batch.c - the MySQL store's commit_batch on MariaDB in a few round trips
 * whatever the batch's size: START; the batch's records locked and read
 * (COMMIT_LOCK_MANY, 16 runs a statement), which checks every commit's
 * version on its own and gives each its step number, run_state and
 * workflow; then, for the commits whose version matched, one bulk
 * execution (COM_STMT_BULK_EXECUTE: a prepared statement and an array of
 * parameter rows in one round trip) each of the CAS UPDATE of the records,
 * of the step rows and of the outbox rows; COMMIT. A commit whose version
 * did not match, or whose run is gone, gets its code and writes nothing.
 *
 * MY_FALLBACK (nothing written) sends the batch the long way (commit.c):
 * a server without bulk execution (MySQL), two commits of one run, a batch
 * near max_allowed_packet, a unique key broken (a step already written,
 * a second active run of a foreign id: one by one, each gets its answer).
 * A COMMIT whose connection was lost is run again with again = 1: each
 * commit is first checked (sql/commit.c), the ones that landed are done.
 */
#include "mysql.h"

#define LOCK_SLOTS 16 /* run ids per COMMIT_LOCK_MANY */
#define BULK_COLS 14  /* parameters of the widest bulk statement */

/* One bulk execution's parameters, column-wise: per column an array of k
 * values (strings as pointers, NUL-terminated; integers) and one of
 * indicators (NULL or not). */
typedef struct bulk {
	size_t k;
	int ncols;
	MYSQL_BIND b[BULK_COLS];
	const char **str[BULK_COLS];
	long long *num[BULK_COLS];
	char *ind[BULK_COLS];
} bulk;

static void bulk_free(bulk *u)
{
	for (int i = 0; i < u->ncols; i++) {
		dura_free((void *)u->str[i]);
		dura_free(u->num[i]);
		dura_free(u->ind[i]);
	}
	memset(u, 0, sizeof(*u));
}

/* types: one letter a column, 's' text, 'i' integer. */
static int bulk_init(bulk *u, size_t k, const char *types)
{
	memset(u, 0, sizeof(*u));
	u->k = k;
	for (int i = 0; types[i]; i++) {
		MYSQL_BIND *b = &u->b[i];
		u->ncols = i + 1;
		if (!(u->ind[i] = dura_calloc(k, 1)))
			return dura_error_oom(MY);
		if (types[i] == 's') {
			if (!(u->str[i] = dura_calloc(k, sizeof(char *))))
				return dura_error_oom(MY);
			b->buffer_type = MYSQL_TYPE_STRING;
			b->buffer = (void *)u->str[i];
		} else {
			if (!(u->num[i] = dura_calloc(k, sizeof(long long))))
				return dura_error_oom(MY);
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = u->num[i];
		}
		b->u.indicator = u->ind[i];
	}
	return 0;
}

static void put_s(bulk *u, int col, size_t row, const char *v)
{
	u->str[col][row] = v ? v : "";
	u->ind[col][row] = v ? STMT_INDICATOR_NTS : STMT_INDICATOR_NULL;
}

static void put_i(bulk *u, int col, size_t row, long long v)
{
	u->num[col][row] = v;
	u->ind[col][row] = STMT_INDICATOR_NONE;
}

static void put_null(bulk *u, int col, size_t row)
{
	u->ind[col][row] = STMT_INDICATOR_NULL;
}

/* Execute statement id once for u's k rows: one round trip. */
static int bulk_run(my_store *s, my_conn *c, int id, const char *what, bulk *u, uint64_t *affected)
{
	my_stmt *m;
	int rc = dura_my_prep(s, c, id, &m);
	if (rc)
		return rc;
	unsigned long ext = 0;
	if (mariadb_get_infov(c->db, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext) ||
	    !(ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)))
		return MY_FALLBACK; /* the transaction is rolled back */
	unsigned int size = (unsigned int)u->k;
	if (mysql_stmt_attr_set(m->st, STMT_ATTR_ARRAY_SIZE, &size) || mysql_stmt_bind_param(m->st, u->b) ||
	    mysql_stmt_execute(m->st))
		return dura_my_fail(s, c, m->st, what);
	if (affected)
		*affected = (uint64_t)mysql_stmt_affected_rows(m->st);
	return 0;
}

/* What the lock read of one commit's run found. */
typedef struct locked {
	int found;
	int64_t version, step_no;
	int run_state;
	char *workflow;
	char next[24];  /* next_run_at as DATETIME text */
	char *data;     /* the event's data */
} locked;

struct bulk_arg {
	const dura_commit *cm;
	const char *const *ids;
	size_t n;
	dura_commit_result *res;
	int64_t now;
	size_t *unwritten, *go;
	locked *lk;
	dura_sql_tally t; /* over res */
};

static void locked_clear(struct bulk_arg *a)
{
	for (size_t i = 0; i < a->n; i++) {
		dura_free(a->lk[i].workflow);
		dura_free(a->lk[i].data);
	}
	memset(a->lk, 0, a->n * sizeof(*a->lk));
}

/* Lock and read the records of a->unwritten[0..k): lk[i] of each commit i. */
static int lock_read(my_store *s, my_conn *c, struct bulk_arg *a, size_t k)
{
	for (size_t from = 0; from < k; from += LOCK_SLOTS) {
		size_t to = from + LOCK_SLOTS < k ? from + LOCK_SLOTS : k;
		my_params p;
		p.n = 0;
		for (size_t j = 0; j < LOCK_SLOTS; j++) {
			if (from + j < to)
				dura_my_pp_str(&p, a->cm[a->unwritten[from + j]].run_id);
			else
				dura_my_pp_null(&p);
		}
		my_stmt *m;
		int rc = dura_my_st_run(s, c, ST_COMMIT_LOCK_MANY, &p, &m);
		if (rc) {
			/* after a deadlock or lock wait timeout in the middle of
			 * its rows the connection has been seen to wait for an
			 * answer that never comes: the rerun takes a new one */
			if (c->retryable)
				c->base.broken = 1;
			return rc;
		}
		while ((rc = dura_my_st_fetch(s, c, m)) == 1) {
			const char *id = dura_my_c_str(m, 0);
			for (size_t j = from; id && j < to; j++) {
				locked *l = &a->lk[a->unwritten[j]];
				if (l->found || strcmp(a->cm[a->unwritten[j]].run_id, id) != 0)
					continue;
				l->found = 1;
				l->version = dura_my_c_int(m, 1);
				l->step_no = dura_my_c_int(m, 2);
				l->run_state = (int)dura_my_c_int(m, 3);
				const char *wf = dura_my_c_str(m, 4);
				if (!(l->workflow = dura_strdup(wf ? wf : ""))) {
					dura_my_st_done(m);
					return dura_error_oom(MY);
				}
			}
		}
		dura_my_st_done(m);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void time_text(char out[24], int64_t ms)
{
	dura_time_format(out, ms > MY_MAX_TIME_MS ? MY_MAX_TIME_MS : ms < MY_MIN_TIME_MS ? MY_MIN_TIME_MS : ms);
}

/* The default event data: the pieces every store writes, with the step
 * and the run_state the lock read gave. */
static char *summary(const dura_commit *cm, int64_t step, int run_state)
{
	char buf[DURA_SQL_SUMMARY_BUF], *heap = NULL;
	const char *head = dura_sql_summary_pieces(buf, sizeof buf, cm, &step, NULL, &heap);
	if (!head)
		return NULL;
	size_t n = strlen(head);
	char *out = dura_malloc(n + 16);
	if (out)
		snprintf(out, n + 16, "%s%d}", head, run_state);
	dura_free(heap);
	return out;
}

/* The UPDATEs, the step rows and the outbox rows of a->go[0..k). */
static int write_all(my_store *s, my_conn *c, struct bulk_arg *a, size_t k)
{
	char now[24];
	time_text(now, a->now);
	bulk u;
	size_t steps = 0, events = 0;
	int rc = bulk_init(&u, k, "sssssissiiiisi");
	for (size_t j = 0; rc == 0 && j < k; j++) {
		size_t i = a->go[j];
		const dura_commit *cm = &a->cm[i];
		const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
		locked *l = &a->lk[i];
		time_text(l->next, cm->next_run_at ? cm->next_run_at : a->now);
		put_s(&u, 0, j, cm->state);
		put_s(&u, 1, j, plan.status);
		put_s(&u, 2, j, cm->error ? cm->error : "");
		put_s(&u, 3, j, dura_sql_commit_wait(cm));
		put_s(&u, 4, j, dura_sql_commit_version(cm));
		put_i(&u, 5, j, cm->attempt);
		put_s(&u, 6, j, l->next);
		put_s(&u, 7, j, now);
		put_i(&u, 8, j, plan.do_step);
		if (cm->run_state)
			put_i(&u, 9, j, cm->run_state);
		else
			put_null(&u, 9, j);
		put_i(&u, 10, j, plan.release);
		put_i(&u, 11, j, plan.release);
		put_s(&u, 12, j, cm->run_id);
		put_i(&u, 13, j, cm->expect_version);
		steps += plan.do_step;
		events += plan.do_event;
	}
	uint64_t n = 0;
	if (rc == 0)
		rc = bulk_run(s, c, ST_COMMIT_UPDATE_MANY, "the batch's UPDATE", &u, &n);
	bulk_free(&u);
	if (rc)
		return rc;
	if (n != k) /* the rows are locked: cannot happen */
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "the batch's UPDATE changed %llu of %zu locked runs",
		                             (unsigned long long)n, k);
	if (steps) {
		rc = bulk_init(&u, steps, "sissss");
		size_t r = 0;
		for (size_t j = 0; rc == 0 && j < k; j++) {
			const dura_commit *cm = &a->cm[a->go[j]];
			if (cm->flags & DURA_COMMIT_NO_STEP)
				continue;
			put_s(&u, 0, r, cm->run_id);
			put_i(&u, 1, r, a->lk[a->go[j]].step_no);
			put_s(&u, 2, r, cm->node_id ? cm->node_id : "");
			put_s(&u, 3, r, cm->state);
			put_s(&u, 4, r, now);
			put_s(&u, 5, r, dura_sql_commit_version(cm));
			r++;
		}
		if (rc == 0)
			rc = bulk_run(s, c, ST_STEP_INSERT_MANY, "the batch's step rows", &u, NULL);
		bulk_free(&u);
		if (rc)
			return rc;
	}
	if (events) {
		rc = bulk_init(&u, events, "ssssss");
		size_t r = 0;
		for (size_t j = 0; rc == 0 && j < k; j++) {
			size_t i = a->go[j];
			const dura_commit *cm = &a->cm[i];
			locked *l = &a->lk[i];
			if (cm->flags & DURA_COMMIT_NO_EVENT)
				continue;
			int64_t step = (cm->flags & DURA_COMMIT_NO_STEP) ? -1 : l->step_no;
			const char *data = cm->event_data;
			if (!data && !(data = l->data = summary(cm, step, cm->run_state ? cm->run_state : l->run_state)))
				rc = dura_error_oom(MY);
			put_s(&u, 0, r, a->ids[i]);
			put_s(&u, 1, r, l->workflow);
			put_s(&u, 2, r, cm->run_id);
			put_s(&u, 3, r, cm->event_type ? cm->event_type : "step");
			put_s(&u, 4, r, data);
			put_s(&u, 5, r, now);
			r++;
		}
		if (rc == 0)
			rc = bulk_run(s, c, ST_OUTBOX_INSERT_MANY, "the batch's outbox rows", &u, NULL);
		bulk_free(&u);
	}
	return rc;
}

static _Thread_local const struct bulk_arg *sort_args;

static int by_run_id(const void *x, const void *y)
{
	const dura_commit *cm = sort_args->cm;
	return strcmp(cm[*(const size_t *)x].run_id, cm[*(const size_t *)y].run_id);
}

static int bulk_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct bulk_arg *a = arg;
	size_t go = 0;
	locked_clear(a);
	int pending = dura_sql_tally_pending(&a->t, &s->base, &c->base, a->cm, a->ids, a->now, again, a->unwritten);
	if (pending <= 0)
		return pending;
	size_t k = (size_t)pending;
	/* the records are locked in key order (run_id, compared byte for
	 * byte), across the statements too, as a heartbeat's UPDATE locks
	 * them: two of these never wait for each other in a cycle */
	sort_args = a;
	qsort(a->unwritten, k, sizeof(*a->unwritten), by_run_id);
	int rc = lock_read(s, c, a, k);
	if (rc)
		return rc;
	for (size_t j = 0; j < k; j++) {
		size_t i = a->unwritten[j];
		const locked *l = &a->lk[i];
		if (!l->found)
			dura_sql_tally_fail(&a->t, i, dura_sql_err_run_not_found(MY, a->cm[i].run_id));
		else if (l->version != a->cm[i].expect_version)
			dura_sql_tally_fail(&a->t, i, dura_sql_err_version(MY, a->cm[i].run_id, l->version, a->cm[i].expect_version));
		else
			a->go[go++] = i;
	}
	if (go == 0)
		return 0;
	if ((rc = write_all(s, c, a, go)) != 0)
		return c->err == ER_DUP_ENTRY ? MY_FALLBACK : rc;
	for (size_t j = 0; j < go; j++) {
		size_t i = a->go[j];
		a->res[i].new_version = a->cm[i].expect_version + 1;
		a->res[i].step = (a->cm[i].flags & DURA_COMMIT_NO_STEP) ? -1 : a->lk[i].step_no;
	}
	return 0;
}

/* 1 when the batch can go in bulk: MariaDB's bulk execution, every run
 * once, well under max_allowed_packet, no signal consumed and no run
 * woken (those go one by one). */
static int bulk_fits(my_store *s, const dura_commit *cm, size_t n)
{
	if (!s->mariadb || n > 1000)
		return 0;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		bytes += 2 * dura_sql_commit_size(&cm[i]) + 512;
		if (dura_sql_commit_has_extras(&cm[i]))
			return 0;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cm[i].run_id, cm[j].run_id) == 0)
				return 0;
	}
	return bytes < s->max_packet / 4;
}

int dura_my_commit_bulk(my_store *s, const dura_commit *cm, const char *const *event_ids, size_t n,
                        dura_commit_result *res)
{
	if (!bulk_fits(s, cm, n))
		return MY_FALLBACK;
	struct bulk_arg a;
	memset(&a, 0, sizeof(a));
	a.cm = cm;
	a.ids = event_ids;
	a.n = n;
	a.res = res;
	a.t.n = n;
	a.t.res = res;
	a.now = dura_now_ms();
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dura_my_check_size(s, dura_sql_commit_size(&cm[i]), "a step's state");
	if (rc == 0 && (!(a.unwritten = dura_calloc(n, sizeof(size_t))) || !(a.go = dura_calloc(n, sizeof(size_t))) ||
	                !(a.lk = dura_calloc(n, sizeof(locked)))))
		rc = dura_error_oom(MY);
	if (rc == 0)
		rc = dura_my_run_op(s, bulk_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	if (a.lk)
		locked_clear(&a);
	dura_free(a.unwritten);
	dura_free(a.go);
	dura_free(a.lk);
	if (rc == MY_FALLBACK)
		return rc;
	return dura_sql_tally_end(&a.t, MY, rc);
}
