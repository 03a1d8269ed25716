/*
 * stmt.c - the MySQL store's prepared statements: the catalog's SQL
 * rendered in the MySQL dialect ({p} the table prefix, {lock} the claim's
 * locking clause, {coll} the collation), preparing a statement on first
 * use on each connection, binding parameters (dura_my_pp_*), running and
 * fetching into cells that grow with the column (dura_my_st_*), the cell
 * accessors, the row ops sql/rows.c decodes a row through, and the
 * conversion between ms since the epoch and MySQL's DATETIME(3).
 *
 * Nothing here decides about retries or transactions (conn.c does): a
 * failure is reported through dura_my_fail() and the caller's operation
 * body returns it.
 */
#include "mysql.h"

static const char *const st_name[ST__COUNT] = {STATEMENTS(X_NAME)};

/* ---- time ------------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* ms since the epoch into a DATETIME(3), clamped to DATETIME's range. */
static void ms_to_time(int64_t ms, MYSQL_TIME *t)
{
	if (ms > MY_MAX_TIME_MS)
		ms = MY_MAX_TIME_MS;
	if (ms < MY_MIN_TIME_MS)
		ms = MY_MIN_TIME_MS;
	int64_t days = ms / 86400000, rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	int64_t y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	memset(t, 0, sizeof(*t));
	t->year = (unsigned)y;
	t->month = mo;
	t->day = d;
	t->hour = (unsigned)(rem / 3600000);
	t->minute = (unsigned)(rem / 60000 % 60);
	t->second = (unsigned)(rem / 1000 % 60);
	t->second_part = (unsigned long)(rem % 1000) * 1000;
	t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

static int64_t time_to_ms(const MYSQL_TIME *t)
{
	if (t->year == 0 && t->month == 0 && t->day == 0)
		return 0;
	int64_t days = days_from_civil(t->year, t->month ? t->month : 1, t->day ? t->day : 1);
	return days * 86400000 + (int64_t)t->hour * 3600000 + (int64_t)t->minute * 60000 + (int64_t)t->second * 1000 +
	       (int64_t)(t->second_part / 1000);
}

/* ---- statements ------------------------------------------------------------------ */

/* A template in the MySQL dialect (sql/dialect.h), with the prefix, the
 * locking clause and the collation in; NULL when out of memory. */
char *dura_my_expand(my_store *s, const char *tmpl)
{
	const char *const vars[] = {"{coll}", s->collation, NULL};
	return dura_sql_render(&dura_sql_dialect_mysql, tmpl, s->prefix, s->skip_locked, vars);
}

void dura_my_stmt_clear(my_stmt *m)
{
	if (m->st) {
		if (m->has_result)
			mysql_stmt_free_result(m->st);
		mysql_stmt_close(m->st);
	}
	for (unsigned i = 0; m->cells && i < m->ncols; i++)
		dura_free(m->cells[i].buf);
	dura_free(m->cells);
	dura_free(m->rb);
	memset(m, 0, sizeof(*m));
}

static int cell_kind(enum enum_field_types t)
{
	switch (t) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONGLONG:
	case MYSQL_TYPE_YEAR:
	case MYSQL_TYPE_DECIMAL:
	case MYSQL_TYPE_NEWDECIMAL:
		return K_INT;
	case MYSQL_TYPE_DATETIME:
	case MYSQL_TYPE_TIMESTAMP:
	case MYSQL_TYPE_DATE:
		return K_TIME;
	default:
		return K_STR;
	}
}

static void bind_cell(MYSQL_BIND *b, my_cell *c)
{
	memset(b, 0, sizeof(*b));
	b->is_null = &c->is_null;
	b->error = &c->error;
	b->length = &c->len;
	switch (c->kind) {
	case K_INT:
		b->buffer_type = MYSQL_TYPE_LONGLONG;
		b->buffer = &c->i;
		break;
	case K_TIME:
		b->buffer_type = MYSQL_TYPE_DATETIME;
		b->buffer = &c->t;
		break;
	default:
		b->buffer_type = MYSQL_TYPE_STRING;
		b->buffer = c->buf;
		b->buffer_length = c->cap;
		break;
	}
}

/* The connection's prepared statement `id`, prepared on first use. */
int dura_my_prep(my_store *s, my_conn *c, int id, my_stmt **out)
{
	my_stmt *m = &c->st[id];
	*out = NULL;
	if (!m->st) {
		char what[64];
		snprintf(what, sizeof(what), "preparing %s", st_name[id]);
		m->st = mysql_stmt_init(c->db);
		if (!m->st)
			return dura_my_fail(s, c, NULL, what);
		if (mysql_stmt_prepare(m->st, s->sql[id], strlen(s->sql[id]))) {
			int rc = dura_my_fail(s, c, m->st, what);
			dura_my_stmt_clear(m);
			return rc;
		}
		m->nparams = (unsigned)mysql_stmt_param_count(m->st);
		MYSQL_RES *meta = mysql_stmt_result_metadata(m->st);
		if (meta) {
			unsigned n = mysql_num_fields(meta);
			MYSQL_FIELD *f = mysql_fetch_fields(meta);
			m->cells = dura_calloc(n, sizeof(my_cell));
			m->rb = dura_calloc(n, sizeof(MYSQL_BIND));
			int ok = m->cells && m->rb;
			m->ncols = m->cells ? n : 0;
			for (unsigned i = 0; ok && i < n; i++) {
				m->cells[i].kind = cell_kind(f[i].type);
				if (m->cells[i].kind == K_STR) {
					m->cells[i].cap = 256;
					ok = (m->cells[i].buf = dura_malloc(256)) != NULL;
				}
			}
			mysql_free_result(meta);
			if (!ok) {
				dura_my_stmt_clear(m);
				return dura_error_oom(MY);
			}
			for (unsigned i = 0; i < n; i++)
				bind_cell(&m->rb[i], &m->cells[i]);
			if (mysql_stmt_bind_result(m->st, m->rb)) {
				int rc = dura_my_fail(s, c, m->st, what);
				dura_my_stmt_clear(m);
				return rc;
			}
		} else if (mysql_stmt_errno(m->st)) {
			int rc = dura_my_fail(s, c, m->st, what);
			dura_my_stmt_clear(m);
			return rc;
		}
	}
	*out = m;
	return 0;
}

static MYSQL_BIND *pp_next(my_params *p)
{
	MYSQL_BIND *b = &p->b[p->n];
	memset(b, 0, sizeof(*b));
	return b;
}

void dura_my_pp_null(my_params *p)
{
	pp_next(p)->buffer_type = MYSQL_TYPE_NULL;
	p->n++;
}

/* Text; NULL is SQL NULL. */
void dura_my_pp_str(my_params *p, const char *v)
{
	if (!v) {
		dura_my_pp_null(p);
		return;
	}
	MYSQL_BIND *b = pp_next(p);
	p->len[p->n] = (unsigned long)strlen(v);
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = (void *)v;
	b->buffer_length = p->len[p->n];
	b->length = &p->len[p->n];
	p->n++;
}

void dura_my_pp_blob(my_params *p, const void *v, size_t n)
{
	MYSQL_BIND *b = pp_next(p);
	p->len[p->n] = (unsigned long)n;
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(v ? v : "");
	b->buffer_length = p->len[p->n];
	b->length = &p->len[p->n];
	p->n++;
}

void dura_my_pp_int(my_params *p, int64_t v)
{
	MYSQL_BIND *b = pp_next(p);
	p->i[p->n] = v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &p->i[p->n];
	p->n++;
}

void dura_my_pp_time(my_params *p, int64_t ms)
{
	MYSQL_BIND *b = pp_next(p);
	ms_to_time(ms, &p->t[p->n]);
	b->buffer_type = MYSQL_TYPE_DATETIME;
	b->buffer = &p->t[p->n];
	p->n++;
}

/* Free what a statement's last execution left (result, big buffers). */
void dura_my_st_done(my_stmt *m)
{
	if (!m)
		return;
	if (m->has_result) {
		mysql_stmt_free_result(m->st);
		m->has_result = 0;
	}
	for (unsigned i = 0; i < m->ncols; i++) {
		my_cell *cl = &m->cells[i];
		if (cl->kind == K_STR && cl->cap > MY_KEEP_BUF) {
			char *small = dura_malloc(256);
			if (!small)
				continue;
			dura_free(cl->buf);
			cl->buf = small;
			cl->cap = 256;
			bind_cell(&m->rb[i], cl);
			m->rebind = 1;
		}
	}
}

/*
 * A statement that failed part-way - a deadlock while a locking SELECT
 * was sending its rows - leaves the statement handle mid-result: reset it
 * (the server's side too), so that its next execute starts clean. Left as
 * it is, the next execute waited for an answer that never came. A
 * connection whose reset fails is broken.
 */
static int st_failed(my_store *s, my_conn *c, my_stmt *m, const char *what)
{
	int rc = dura_my_fail(s, c, m->st, what);
	if (!c->base.broken && mysql_stmt_reset(m->st))
		c->base.broken = 1;
	return rc;
}

/* Execute statement id with p; rows, if any, are stored for dura_my_st_fetch. */
int dura_my_st_run(my_store *s, my_conn *c, int id, my_params *p, my_stmt **out)
{
	my_stmt *m;
	char what[64];
	int rc = dura_my_prep(s, c, id, &m);
	*out = NULL;
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s", st_name[id]);
	if ((unsigned)p->n != m->nparams)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "%s: %d parameters bound, the statement has %u", what, p->n,
		                             m->nparams);
	if (m->nparams && mysql_stmt_bind_param(m->st, p->b))
		return dura_my_fail(s, c, m->st, what);
	if (m->rebind) {
		if (mysql_stmt_bind_result(m->st, m->rb))
			return dura_my_fail(s, c, m->st, what);
		m->rebind = 0;
	}
	if (mysql_stmt_execute(m->st))
		return st_failed(s, c, m, what);
	if (m->ncols) {
		if (mysql_stmt_store_result(m->st)) {
			rc = st_failed(s, c, m, what);
			mysql_stmt_free_result(m->st);
			return rc;
		}
		m->has_result = 1;
	}
	*out = m;
	return 0;
}

/* The next row into m's cells: 1 a row, 0 no more, < 0 an error. */
int dura_my_st_fetch(my_store *s, my_conn *c, my_stmt *m)
{
	if (m->rebind) {
		if (mysql_stmt_bind_result(m->st, m->rb))
			return dura_my_fail(s, c, m->st, "binding results");
		m->rebind = 0;
	}
	int r = mysql_stmt_fetch(m->st);
	if (r == MYSQL_NO_DATA)
		return 0;
	if (r != 0 && r != MYSQL_DATA_TRUNCATED)
		return dura_my_fail(s, c, m->st, "reading a row");
	for (unsigned i = 0; i < m->ncols; i++) {
		my_cell *cl = &m->cells[i];
		if (cl->kind != K_STR || cl->is_null)
			continue;
		if (cl->len + 1 > cl->cap) {
			unsigned long cap = cl->len + 1;
			char *nb = dura_malloc(cap);
			if (!nb)
				return dura_error_oom(MY);
			dura_free(cl->buf);
			cl->buf = nb;
			cl->cap = cap;
			MYSQL_BIND b;
			unsigned long got = 0;
			my_bool isnull = 0;
			memset(&b, 0, sizeof(b));
			b.buffer_type = MYSQL_TYPE_STRING;
			b.buffer = cl->buf;
			b.buffer_length = cap;
			b.length = &got;
			b.is_null = &isnull;
			if (mysql_stmt_fetch_column(m->st, &b, i, 0))
				return dura_my_fail(s, c, m->st, "reading a long column");
			bind_cell(&m->rb[i], cl);
			m->rebind = 1;
		}
		cl->buf[cl->len] = '\0';
	}
	return 1;
}

/* Cell accessors. */
int64_t dura_my_c_int(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	if (c->is_null)
		return 0;
	if (c->kind == K_STR)
		return strtoll(c->buf, NULL, 10);
	return c->i;
}

int64_t dura_my_c_time(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	if (c->is_null || c->kind != K_TIME)
		return 0;
	return time_to_ms(&c->t);
}

const char *dura_my_c_str(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	return c->is_null || c->kind != K_STR ? NULL : c->buf;
}

/* ---- rows: the column accessors sql/rows.c decodes through ----------------------- */

static int my_col_null(void *impl, int i)
{
	return ((const my_stmt *)impl)->cells[i].is_null;
}

/* A column not bound as a string reads as NULL, as it does for dura_my_c_str(). */
static int my_col_text(void *impl, int i, const char **text, size_t *len)
{
	const my_cell *c = &((const my_stmt *)impl)->cells[i];
	if (c->is_null || c->kind != K_STR) {
		*text = NULL;
		*len = 0;
	} else {
		*text = c->buf;
		*len = c->len;
	}
	return 0;
}

static int64_t my_col_int64(void *impl, int i)
{
	return dura_my_c_int(impl, (unsigned)i);
}

static const void *my_col_blob(void *impl, int i, size_t *len)
{
	const my_cell *c = &((const my_stmt *)impl)->cells[i];
	*len = c->len;
	return c->buf ? c->buf : "";
}

static int64_t my_col_time(void *impl, int i)
{
	return dura_my_c_time(impl, (unsigned)i);
}

const dura_sql_row_ops dura_my_row_ops = {MY, my_col_null, my_col_text, my_col_int64, my_col_blob, my_col_time};

/* A statement's result as sql/rows.h's cursor. */
typedef struct my_cursor {
	my_store *s;
	my_conn *c;
	my_stmt *m;
} my_cursor;

static int my_next(void *cursor)
{
	my_cursor *k = cursor;
	return dura_my_st_fetch(k->s, k->c, k->m);
}

int dura_my_fetch(my_store *s, my_conn *c, int id, my_params *p, dura_sql_kind kind, void **out)
{
	my_cursor k = {s, c, NULL};
	int rc = dura_my_st_run(s, c, id, p, &k.m);
	if (rc)
		return rc;
	rc = dura_sql_fetch(MY_ROW(k.m), my_next, &k, kind, out);
	dura_my_st_done(k.m);
	return rc;
}

int dura_my_collect(my_store *s, my_conn *c, int id, my_params *p, dura_sql_kind kind, void **items, size_t *count)
{
	my_cursor k = {s, c, NULL};
	int rc = dura_my_st_run(s, c, id, p, &k.m);
	if (rc)
		return rc;
	rc = dura_sql_collect(MY_ROW(k.m), my_next, &k, kind, items, count);
	dura_my_st_done(k.m);
	return rc;
}

/* Run a write; *affected (may be NULL) gets the rows it matched. */
int dura_my_st_write(my_store *s, my_conn *c, int id, my_params *p, uint64_t *affected)
{
	my_stmt *m;
	int rc = dura_my_st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	if (affected)
		*affected = (uint64_t)mysql_stmt_affected_rows(m->st);
	dura_my_st_done(m);
	return 0;
}

/* Does a SELECT return a row? 1 yes, 0 no, < 0 error. */
int dura_my_st_exists(my_store *s, my_conn *c, int id, my_params *p)
{
	my_stmt *m;
	int rc = dura_my_st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	rc = dura_my_st_fetch(s, c, m);
	dura_my_st_done(m);
	return rc;
}

/* ---- sql/exec.h's statement interface -------------------------------------------- */

static int x_run(void *store, dura_sql_conn *c, int id, const dura_sql_params *in, void **res, uint64_t *affected)
{
	my_params p;
	my_stmt *m;
	if (in->n > DURA_SQL_MAX_PARAMS || in->n > MY_MAX_PARAMS)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "%s: %d parameters, at most %d", st_name[id], in->n,
		                             MY_MAX_PARAMS);
	p.n = 0;
	for (int i = 0; i < in->n; i++) {
		const dura_sql_value *v = &in->v[i];
		switch (v->type) {
		case DURA_SQL_TEXT: dura_my_pp_str(&p, v->s); break;
		case DURA_SQL_INT: dura_my_pp_int(&p, v->i); break;
		case DURA_SQL_TIME: dura_my_pp_time(&p, v->i); break;
		case DURA_SQL_BLOB: dura_my_pp_blob(&p, v->s, v->n); break;
		default: dura_my_pp_null(&p); break;
		}
	}
	int rc = dura_my_st_run(store, (my_conn *)c, id, &p, &m);
	if (rc)
		return rc;
	if (affected)
		*affected = (uint64_t)mysql_stmt_affected_rows(m->st);
	*res = m;
	return 0;
}

static int x_next(void *store, dura_sql_conn *c, void *res)
{
	return dura_my_st_fetch(store, (my_conn *)c, res);
}

static void x_done(void *res)
{
	dura_my_st_done(res);
}

/* ER_DUP_ENTRY; MySQL names the key in its message ("... for key
 * 'PRIMARY'"), and dura_my_fail() put that message in the thread's error. */
static int x_duplicate(const dura_sql_conn *c, int *primary)
{
	if (((const my_conn *)c)->err != ER_DUP_ENTRY)
		return 0;
	if (primary) {
		const dura_error *e = dura_error_last();
		*primary = e && e->message && strstr(e->message, "PRIMARY") != NULL;
	}
	return 1;
}

static int x_check_size(void *store, size_t n, const char *what)
{
	return dura_my_check_size(store, n, what);
}

const dura_sql_exec dura_my_exec = {
	x_run, x_next, x_done, &dura_my_row_ops, x_duplicate, x_check_size, MY_MAX_TIME_MS, ER_DUP_ENTRY, "23000",
};
