/*
 * stmt.c - the PostgreSQL store's statements: the catalog rendered in the
 * PostgreSQL dialect at open ($1 parameters, typed where "? IS NULL"
 * needs it), each prepared once per connection on first use (named d<id>),
 * executed with text parameters (bytes as binary, so a cache value is
 * sent as it is) and read in text: the sql/exec.h interface
 * sql/server.c runs the shared operations through, and the column
 * accessors sql/rows.c decodes with.
 */
#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const st_sql[ST__COUNT] = {
#define X_SQL(name, sql) sql,
	STATEMENTS(X_SQL)
#undef X_SQL
};
static const char *const st_name[ST__COUNT] = {
#define X_NAME(name, sql) #name,
	STATEMENTS(X_NAME)
#undef X_NAME
};

char *dura_pg_expand(pg_store *s, const char *tmpl)
{
	return dura_sql_render(&dura_sql_dialect_postgres, tmpl, s->prefix, s->skip_locked, NULL);
}

int dura_pg_expand_all(pg_store *s, const char *const *unused)
{
	(void)unused;
	for (int i = 0; i < ST__COUNT; i++)
		if (!(s->sql[i] = dura_pg_expand(s, st_sql[i])))
			return dura_error_oom(PG);
	return 0;
}

/* ---- times ------------------------------------------------------------------------ */

/* "YYYY-MM-DD HH:MM:SS[.fff]+00" (the session is UTC) into ms; 0 when unreadable. */
int64_t dura_pg_parse_time(const char *t)
{
	char buf[32];
	size_t n = 0;
	if (!t)
		return 0;
	while (t[n] && n < sizeof(buf) - 1 && !(n >= 19 && (t[n] == '+' || t[n] == '-' || t[n] == 'Z')))
		n++;
	memcpy(buf, t, n);
	buf[n] = '\0';
	int64_t ms = 0;
	return dura_time_parse(&ms, buf) == 0 ? ms : 0;
}

/* ---- running ---------------------------------------------------------------------- */

static int prepare(pg_store *s, pg_conn *c, int id, char name[16])
{
	snprintf(name, 16, "d%d", id);
	if (c->prepared[id])
		return 0;
	PGresult *r = PQprepare(c->db, name, s->sql[id], 0, NULL);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		char what[64];
		snprintf(what, sizeof(what), "preparing %s", st_name[id]);
		rc = dura_pg_fail(s, c, r, what);
	} else {
		c->prepared[id] = 1;
	}
	PQclear(r);
	return rc;
}

static int x_run(void *store, dura_sql_conn *conn, int id, const dura_sql_params *p, void **res, uint64_t *affected)
{
	pg_store *s = store;
	pg_conn *c = (pg_conn *)conn;
	const char *vals[DURA_SQL_MAX_PARAMS];
	int lens[DURA_SQL_MAX_PARAMS], fmts[DURA_SQL_MAX_PARAMS];
	char num[DURA_SQL_MAX_PARAMS][32];
	char name[16];
	*res = NULL;
	if (p->n > DURA_SQL_MAX_PARAMS)
		return dura_error_set_native(DURA_ERROR, PG, 0, NULL, "%s: %d parameters, at most %d", st_name[id], p->n,
		                             DURA_SQL_MAX_PARAMS);
	int rc = prepare(s, c, id, name);
	if (rc)
		return rc;
	for (int i = 0; i < p->n; i++) {
		const dura_sql_value *v = &p->v[i];
		lens[i] = 0;
		fmts[i] = 0;
		switch (v->type) {
		case DURA_SQL_TEXT:
			vals[i] = v->s;
			break;
		case DURA_SQL_INT:
			snprintf(num[i], sizeof(num[i]), "%lld", (long long)v->i);
			vals[i] = num[i];
			break;
		case DURA_SQL_TIME:
			dura_time_format(num[i], v->i > PG_MAX_TIME_MS ? PG_MAX_TIME_MS : v->i);
			strcat(num[i], "+00");
			vals[i] = num[i];
			break;
		case DURA_SQL_BLOB:
			if (v->n > INT32_MAX)
				return dura_error_set_native(DURA_EINVAL, PG, 0, "54000",
				                             "a value of %zu bytes is over PostgreSQL's limit of 1 GB; nothing was written",
				                             v->n);
			vals[i] = v->s;
			lens[i] = (int)v->n;
			fmts[i] = 1;
			break;
		default:
			vals[i] = NULL;
			break;
		}
	}
	PGresult *r = PQexecPrepared(c->db, name, p->n, vals, lens, fmts, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = dura_pg_fail(s, c, r, st_name[id]);
		PQclear(r);
		return rc;
	}
	pg_res *x = dura_calloc(1, sizeof(*x));
	if (!x) {
		PQclear(r);
		return dura_error_oom(PG);
	}
	x->r = r;
	x->row = -1;
	x->nrows = PQntuples(r);
	x->blob_col = -1;
	if (affected) {
		const char *t = PQcmdTuples(r);
		*affected = t && *t ? strtoull(t, NULL, 10) : 0;
	}
	*res = x;
	return 0;
}

static int x_next(void *store, dura_sql_conn *c, void *res)
{
	pg_res *x = res;
	(void)store;
	(void)c;
	dura_free(x->blob);
	x->blob = NULL;
	x->blob_col = -1;
	if (x->row + 1 >= x->nrows)
		return 0;
	x->row++;
	return 1;
}

static void x_done(void *res)
{
	pg_res *x = res;
	if (!x)
		return;
	PQclear(x->r);
	dura_free(x->blob);
	dura_free(x);
}

static int x_duplicate(const dura_sql_conn *c, int *primary)
{
	const pg_conn *pc = (const pg_conn *)c;
	if (strcmp(pc->sqlstate, "23505") != 0)
		return 0;
	if (primary) {
		/* the constraint's name: <table>_pkey for a primary key */
		const dura_error *e = dura_error_last();
		*primary = e && e->message && strstr(e->message, "_pkey") != NULL;
	}
	return 1;
}

/* A field holds at most 1 GB; a value near it would fail at the server
 * after the bytes went over the wire. */
static int x_check_size(void *store, size_t n, const char *what)
{
	(void)store;
	if (n > ((size_t)1 << 30) - 1024)
		return dura_error_set_native(DURA_EINVAL, PG, 0, "54000",
		                             "%s of %zu bytes is over PostgreSQL's limit of 1 GB for a value (nothing was "
		                             "written)",
		                             what, n);
	return 0;
}

const dura_sql_exec dura_pg_exec = {
	x_run, x_next, x_done, &dura_pg_row_ops, x_duplicate, x_check_size, PG_MAX_TIME_MS, 0, "23505",
};

/* ---- columns ---------------------------------------------------------------------- */

static int col_null(void *impl, int i)
{
	pg_res *x = impl;
	return PQgetisnull(x->r, x->row, i);
}

static int col_text(void *impl, int i, const char **text, size_t *len)
{
	pg_res *x = impl;
	if (PQgetisnull(x->r, x->row, i)) {
		*text = NULL;
		*len = 0;
	} else {
		*text = PQgetvalue(x->r, x->row, i);
		*len = (size_t)PQgetlength(x->r, x->row, i);
	}
	return 0;
}

static int64_t col_int64(void *impl, int i)
{
	pg_res *x = impl;
	if (PQgetisnull(x->r, x->row, i))
		return 0;
	return strtoll(PQgetvalue(x->r, x->row, i), NULL, 10);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* BYTEA in text is "\x" and two hex digits a byte (bytea_output = hex,
 * set for the session). Decoded once per row and column into res. */
static const void *col_blob(void *impl, int i, size_t *len)
{
	pg_res *x = impl;
	*len = 0;
	if (x->blob_col == i) {
		*len = x->blob_len;
		return x->blob;
	}
	const char *t = PQgetvalue(x->r, x->row, i);
	size_t n = (size_t)PQgetlength(x->r, x->row, i);
	if (n < 2 || t[0] != '\\' || t[1] != 'x')
		return "";
	size_t m = (n - 2) / 2;
	unsigned char *b = dura_malloc(m + 1);
	if (!b)
		return NULL;
	for (size_t k = 0; k < m; k++) {
		int hi = hexval(t[2 + 2 * k]), lo = hexval(t[3 + 2 * k]);
		b[k] = (unsigned char)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
	}
	dura_free(x->blob);
	x->blob = b;
	x->blob_len = m;
	x->blob_col = i;
	*len = m;
	return b;
}

static int64_t col_time(void *impl, int i)
{
	pg_res *x = impl;
	if (PQgetisnull(x->r, x->row, i))
		return 0;
	return dura_pg_parse_time(PQgetvalue(x->r, x->row, i));
}

const dura_sql_row_ops dura_pg_row_ops = {PG, col_null, col_text, col_int64, col_blob, col_time};
