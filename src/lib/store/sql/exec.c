/*
 * exec.c - typed parameters and the thin layer over a driver's statement
 * interface (exec.h) that the shared operations call.
 */
#include "exec.h"

#include "../../util.h"

#include <string.h>

static dura_sql_value *next_value(dura_sql_params *p)
{
	static dura_sql_value overflow; /* written, never read: run() refuses n > max */
	dura_sql_value *v = p->n < DURA_SQL_MAX_PARAMS ? &p->v[p->n] : &overflow;
	p->n++;
	memset(v, 0, sizeof(*v));
	return v;
}

void dura_sql_p_null(dura_sql_params *p)
{
	next_value(p)->type = DURA_SQL_NULL;
}

void dura_sql_p_str(dura_sql_params *p, const char *v)
{
	dura_sql_value *x = next_value(p);
	x->type = v ? DURA_SQL_TEXT : DURA_SQL_NULL;
	x->s = v;
	x->n = v ? strlen(v) : 0;
}

void dura_sql_p_int(dura_sql_params *p, int64_t v)
{
	dura_sql_value *x = next_value(p);
	x->type = DURA_SQL_INT;
	x->i = v;
}

void dura_sql_p_time(dura_sql_params *p, int64_t ms)
{
	dura_sql_value *x = next_value(p);
	x->type = DURA_SQL_TIME;
	x->i = ms;
}

void dura_sql_p_blob(dura_sql_params *p, const void *v, size_t n)
{
	dura_sql_value *x = next_value(p);
	x->type = DURA_SQL_BLOB;
	x->s = v ? v : "";
	x->n = n;
}

int dura_sql_st_run(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, void **res)
{
	*res = NULL;
	return s->x->run(s, c, id, p, res, NULL);
}

int dura_sql_st_next(dura_sql_store *s, dura_sql_conn *c, void *res)
{
	return s->x->next(s, c, res);
}

void dura_sql_st_done(dura_sql_store *s, void *res)
{
	if (res)
		s->x->done(res);
}

int dura_sql_st_write(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, uint64_t *affected)
{
	void *res = NULL;
	uint64_t n = 0;
	int rc = s->x->run(s, c, id, p, &res, &n);
	if (rc)
		return rc;
	if (affected)
		*affected = n;
	s->x->done(res);
	return 0;
}

int dura_sql_st_exists(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p)
{
	void *res;
	int rc = dura_sql_st_run(s, c, id, p, &res);
	if (rc)
		return rc;
	rc = s->x->next(s, c, res);
	s->x->done(res);
	return rc;
}

/* sql/rows.h's cursor over a driver result */
typedef struct cursor {
	dura_sql_store *s;
	dura_sql_conn *c;
	void *res;
} cursor;

static int cursor_next(void *k)
{
	cursor *q = k;
	return q->s->x->next(q->s, q->c, q->res);
}

int dura_sql_st_fetch(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, dura_sql_kind kind,
                      void **out)
{
	cursor q = {s, c, NULL};
	int rc = dura_sql_st_run(s, c, id, p, &q.res);
	if (rc)
		return rc;
	rc = dura_sql_fetch(&(const dura_sql_row){s->x->row, q.res}, cursor_next, &q, kind, out);
	s->x->done(q.res);
	return rc;
}

int dura_sql_st_collect(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, dura_sql_kind kind,
                        void **items, size_t *count)
{
	cursor q = {s, c, NULL};
	int rc = dura_sql_st_run(s, c, id, p, &q.res);
	if (rc)
		return rc;
	rc = dura_sql_collect(&(const dura_sql_row){s->x->row, q.res}, cursor_next, &q, kind, items, count);
	s->x->done(q.res);
	return rc;
}

int64_t dura_sql_c_int(dura_sql_store *s, void *res, int i)
{
	return s->x->row->int64(res, i);
}

int64_t dura_sql_c_time(dura_sql_store *s, void *res, int i)
{
	return s->x->row->time_ms(res, i);
}

const char *dura_sql_c_str(dura_sql_store *s, void *res, int i)
{
	const char *t = NULL;
	size_t n;
	if (s->x->row->text(res, i, &t, &n) != 0)
		return NULL;
	return t;
}

int64_t dura_sql_add_ms(const dura_sql_store *s, int64_t now, int64_t ms)
{
	int64_t t = dura__add_ms(now, ms);
	return t > s->x->max_time_ms ? s->x->max_time_ms : t;
}

/* A body of the shared operations, called through sql/run.h's signature. */
struct op_call {
	dura_sql_op fn;
	void *arg;
};

static int op_tramp(void *store, dura_sql_conn *c, void *arg, int again)
{
	struct op_call *o = arg;
	return o->fn(store, c, o->arg, again);
}

int dura_sql_run_op(dura_sql_store *s, dura_sql_op fn, void *arg, unsigned flags)
{
	struct op_call o = {fn, arg};
	return dura_sql_run(&s->pool, s->drv, op_tramp, &o, flags);
}
