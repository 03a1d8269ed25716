/*
 * stmt.c - the SQLite store's statements: the catalog's SQL with the
 * prefix in (dsq_expand()), each prepared once per connection on first
 * use (dsq_prep()), stepping them, transactions (BEGIN IMMEDIATE, so the
 * write lock is taken up front), the column accessors sql/rows.c decodes
 * through, a bound statement's first row or every row as items
 * (dsq_fetch(), dsq_collect()), and a DELETE by one key
 * (dsq_delete_by()). The binding helpers are sqlite.h's, so that every
 * file binds through them.
 */
#include "sqlite.h"

const char *const dsq_st_sql[ST__COUNT] = {STATEMENTS(X_SQL)};
const char *const dsq_st_name[ST__COUNT] = {STATEMENTS(X_NAME)};

/* A template in the SQLite dialect, with the prefix in; NULL when out of memory. */
char *dsq_expand(const char *tmpl, const char *prefix)
{
	return dura_sql_render(&dura_sql_dialect_sqlite, tmpl, prefix, 0, NULL);
}

/* ---- statements ------------------------------------------------------------- */

/* The connection's prepared statement `id`, prepared on first use. */
int dsq_prep(sq_store *s, sq_conn *c, int id, sqlite3_stmt **out)
{
	*out = NULL;
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, s->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "preparing %s", dsq_st_name[id]);
			c->st[id] = NULL;
			return dsq_fail(c, rc, what);
		}
	}
	*out = c->st[id];
	return 0;
}

/* Step a statement that returns no rows we need; reset it. */
int dsq_run_done(sq_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = dsq_fail(c, rc, what);
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/* Run one bound write statement; *changes gets the rows it changed. */
int dsq_write_one(sq_conn *c, sqlite3_stmt *st, const char *what, int *changes)
{
	int rc = dsq_run_done(c, st, what);
	if (rc == 0 && changes)
		*changes = sqlite3_changes(c->db);
	return rc;
}

int dsq_run_simple(sq_store *s, sq_conn *c, int id)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, id, &st);
	return rc ? rc : dsq_run_done(c, st, dsq_st_sql[id]);
}

int dsq_tx_begin(sq_store *s, sq_conn *c)
{
	/* the way out is prepared before the way in: out of memory, preparing
	 * a ROLLBACK fails too, and the connection would stay in the
	 * transaction, holding the write lock */
	sqlite3_stmt *rollback;
	int rc = dsq_prep(s, c, ST_ROLLBACK, &rollback);
	return rc ? rc : dsq_run_simple(s, c, ST_BEGIN);
}

/* Undo the open transaction, if any, keeping the thread's error as it is. */
void dsq_tx_rollback(sq_store *s, sq_conn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return;
	if (c->st[ST_ROLLBACK] || sqlite3_prepare_v3(c->db, s->sql[ST_ROLLBACK], -1, SQLITE_PREPARE_PERSISTENT,
	                                             &c->st[ST_ROLLBACK], NULL) == SQLITE_OK) {
		sqlite3_step(c->st[ST_ROLLBACK]);
		sqlite3_reset(c->st[ST_ROLLBACK]);
	}
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int dsq_tx_commit(sq_store *s, sq_conn *c)
{
	int rc = dsq_run_simple(s, c, ST_COMMIT);
	if (rc)
		dsq_tx_rollback(s, c);
	return rc;
}

/* ---- rows: the column accessors sql/rows.c decodes through ------------------ */

static int sq_col_null(void *impl, int i)
{
	return sqlite3_column_type(impl, i) == SQLITE_NULL;
}

/* A value that SQLite cannot hand out as text (out of memory: the column
 * then reads as NULL) is a failure, not a NULL. The type is read first:
 * after a conversion it no longer says what was stored. */
static int sq_col_text(void *impl, int i, const char **text, size_t *len)
{
	int type = sqlite3_column_type(impl, i);
	const char *t = (const char *)sqlite3_column_text(impl, i);
	*text = t;
	*len = 0;
	if (!t)
		return type != SQLITE_NULL ? -1 : 0;
	*len = (size_t)sqlite3_column_bytes(impl, i);
	return 0;
}

static int64_t sq_col_int64(void *impl, int i)
{
	return sqlite3_column_int64(impl, i);
}

static const void *sq_col_blob(void *impl, int i, size_t *len)
{
	const void *v = sqlite3_column_blob(impl, i);
	*len = (size_t)sqlite3_column_bytes(impl, i);
	/* SQLite gives NULL for an empty blob, and for one it ran out of memory copying */
	return v ? v : *len == 0 ? "" : NULL;
}

/* A stored timestamp in ms; NULL is 0. Integers are taken as ms already. */
static int64_t sq_col_time(void *impl, int i)
{
	switch (sqlite3_column_type(impl, i)) {
	case SQLITE_NULL:
		return 0;
	case SQLITE_INTEGER:
		return sqlite3_column_int64(impl, i);
	default: {
		const char *t = (const char *)sqlite3_column_text(impl, i);
		int64_t ms;
		if (!t || dura_time_parse(&ms, t) != 0) {
			/* an unreadable value (edited by hand) reads as 0, not as a failure */
			dura_error_clear();
			return 0;
		}
		return ms;
	}
	}
}

const dura_sql_row_ops dsq_row_ops = {SQ, sq_col_null, sq_col_text, sq_col_int64, sq_col_blob, sq_col_time};

int dsq_next(void *cursor)
{
	sq_cursor *k = cursor;
	int rc = sqlite3_step(k->st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : dsq_fail(k->c, rc, k->what);
}

/* The statement's first row as a new item of kind in *out (out NULL: only
 * whether there is one); DURA_ENOTFOUND, with no message, when none.
 * Resets st. */
int dsq_fetch(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **out, const char *what)
{
	sq_cursor k = {c, st, what};
	int rc = dura_sql_fetch(SQ_ROW(st), dsq_next, &k, kind, out);
	sqlite3_reset(st);
	return rc;
}

/* Every row of a bound statement into a list's items (sql/rows.h,
 * dura_sql_collect). Resets st. */
int dsq_collect(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **items, size_t *count, const char *what)
{
	sq_cursor k = {c, st, what};
	int rc = dura_sql_collect(SQ_ROW(st), dsq_next, &k, kind, items, count);
	sqlite3_reset(st);
	return rc;
}

/* A DELETE by one key: ENOTFOUND (with the message fmt, arg) when no row went. */
int dsq_delete_by(void *impl, int id, const char *key, const char *fmt)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int changes = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, id, &st)) == 0) {
		int b = bind_text(st, 1, key);
		rc = b ? bind_fail(c, st, b, dsq_st_name[id]) : dsq_write_one(c, st, dsq_st_name[id], &changes);
	}
	dsq_pool_put(s, c);
	if (rc == 0 && changes == 0)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, fmt, key);
	return rc;
}
