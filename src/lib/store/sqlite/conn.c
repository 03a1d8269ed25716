/*
 * conn.c - the SQLite store's connections: SQLite's result codes into
 * dura's (dsq_code_of(), dsq_fail()), opening a connection and setting
 * it up (busy timeout, synchronous, the NOW() function; WAL mode in
 * dsq_conn_wal()), the pool's operations (sql/pool.h) with borrowing and
 * giving back (dsq_pool_get(), dsq_pool_put()), and the fork handler,
 * which lets go of the connections a child copied from its parent.
 */
#include "sqlite.h"

/* ---- errors ------------------------------------------------------------------ */

int dsq_code_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DURA_EBUSY;
	case SQLITE_NOMEM:
		return DURA_ENOMEM;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return DURA_EIO;
	case SQLITE_INTERRUPT:
		return DURA_ECANCELED;
	case SQLITE_TOOBIG: /* a string, BLOB or row over SQLITE_LIMIT_LENGTH */
		return DURA_EINVAL;
	default:
		return DURA_ERROR;
	}
}

/*
 * Set the thread's error from a failed SQLite call on connection c: the
 * code mapped (busy -> EBUSY, I/O -> EIO, ...), SQLite's own message after
 * what we were doing, and the extended result code as native_code.
 */
int dsq_fail(sq_conn *c, int rc, const char *what)
{
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = c ? sqlite3_extended_errcode(c->db) : SQLITE_ERROR;
	if (rc == SQLITE_OK)
		rc = SQLITE_ERROR;
	const char *msg = c && sqlite3_extended_errcode(c->db) == rc ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
	if ((rc & 0xff) == SQLITE_TOOBIG && c)
		return dura_error_set_native(DURA_EINVAL, SQ, rc, NULL,
		                             "%s: %s (a value is larger than this connection's limit of %d bytes, "
		                             "SQLITE_LIMIT_LENGTH)",
		                             what, msg, sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, -1));
	return dura_error_set_native(dsq_code_of(rc), SQ, rc, NULL, "%s: %s", what, msg);
}

/* ---- connections ----------------------------------------------------------- */

/* NOW(): the current UTC time in the stored text form. */
static void sql_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	char t[24];
	dura_time_format(t, dura_now_ms());
	sqlite3_result_text(ctx, t, -1, SQLITE_TRANSIENT);
}

void dsq_conn_close(sq_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	dura_free(c);
}

/*
 * Open a connection, check that the file is a database (an empty or new
 * one is), and apply the settings that write nothing to it (busy timeout,
 * synchronous, NOW()). dsq_conn_wal() does the rest.
 */
int dsq_conn_open(sq_store *s, sq_conn **out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (s->no_create ? 0 : SQLITE_OPEN_CREATE);
#ifdef SQLITE_OPEN_EXRESCODE
	flags |= SQLITE_OPEN_EXRESCODE;
#endif
	*out = NULL;
	sq_conn *c = dura_calloc(1, sizeof(*c));
	if (!c)
		return dura_error_oom(SQ);
	int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK && s->no_create && (rc & 0xff) == SQLITE_CANTOPEN) {
		rc = dura_error_set_native(DURA_ENOTFOUND, SQ, rc, NULL, "%s does not exist; run `dura init` to create it",
		                           s->path);
		dsq_conn_close(c);
		return rc;
	}
	if (rc != SQLITE_OK) {
		int code = dsq_code_of(rc) == DURA_ENOMEM ? DURA_ENOMEM : DURA_EIO;
		rc = dura_error_set_native(code, SQ, rc, NULL, "cannot open SQLite database %s: %s", s->path,
		                           c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		dsq_conn_close(c);
		return rc;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, s->busy_ms);
	/* the first read: is this a database at all? (before any pragma,
	 * some of which read the header too) */
	rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
		rc = dura_error_set_native(DURA_EINVAL, SQ, sqlite3_extended_errcode(c->db), NULL, "%s is %s SQLite database (%s)",
		                           s->path, (rc & 0xff) == SQLITE_NOTADB ? "not a" : "a damaged", sqlite3_errmsg(c->db));
		dsq_conn_close(c);
		return rc;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function_v2(c->db, "NOW", 0, SQLITE_UTF8, NULL, sql_now, NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		char pragma[48];
		snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = %s", s->synchronous);
		rc = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		rc = dsq_fail(c, rc, "opening the database");
		dsq_conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* WAL: readers never block the writer, and a commit is one append. */
int dsq_conn_wal(sq_conn *c)
{
	int rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : dsq_fail(c, rc, "PRAGMA journal_mode = WAL");
}

/* sql/pool.h's operations. A new connection is in WAL mode (dsq_conn_open()
 * leaves that to its caller for the first one, which checks the schema
 * first); one given back is never inside a transaction. */
static int pool_open(void *store, dura_sql_conn **out)
{
	sq_conn *c;
	int rc = dsq_conn_open(store, &c);
	if (rc == 0 && (rc = dsq_conn_wal(c)) != 0)
		dsq_conn_close(c);
	*out = rc ? NULL : &c->base;
	return rc;
}

static void pool_close(void *store, dura_sql_conn *c)
{
	(void)store;
	dsq_conn_close((sq_conn *)c);
}

/*
 * In a forked child (store.h, atfork_child) the connections copied from
 * the parent are closed, so that SQLite's per-process record of the
 * file's locks is the child's own again before the child opens
 * connections of its own (which it does on demand). The core waited for
 * every call in flight, so none of them is inside a transaction. Closing
 * may not checkpoint or delete the WAL, which the parent is still using:
 * the child closes its copies as if they were never the last.
 */
static void pool_abandon(void *store, dura_sql_conn *c)
{
	sqlite3_db_config(((sq_conn *)c)->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	pool_close(store, c);
}

static void pool_reset(void *store, dura_sql_conn *c)
{
	sq_conn *sc = (sq_conn *)c;
	if (!sqlite3_get_autocommit(sc->db))
		dsq_tx_rollback(store, sc);
}

const dura_sql_pool_ops dsq_pool_ops = {pool_open, pool_close, pool_abandon, pool_reset, NULL};

/* Borrow a connection: an idle one, a new one under pool_max, or wait. */
int dsq_pool_get(sq_store *s, sq_conn **out)
{
	dura_sql_conn *c;
	int rc = dura_sql_pool_get(&s->pool, &c);
	*out = (sq_conn *)c;
	return rc;
}

void dsq_pool_put(sq_store *s, sq_conn *c)
{
	dura_sql_pool_put(&s->pool, &c->base);
}

void dsq_atfork_child(void *impl)
{
	dura_sql_pool_atfork_child(&((sq_store *)impl)->pool);
}
