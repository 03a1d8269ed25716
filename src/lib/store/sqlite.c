/*
 * sqlite.c - the SQLite store (sqlite:PATH), the embedded default.
 *
 * One handle owns a pool of sqlite3 connections (opened lazily up to
 * pool_max, each used by one thread at a time, so they are opened with
 * SQLITE_OPEN_NOMUTEX). Every connection prepares each statement once, on
 * first use, from SQL built with the table prefix when the store opens.
 * The database is in WAL mode; writers take the write lock up front with
 * BEGIN IMMEDIATE, so several processes can share one file and a
 * transaction never fails half-way on a lock upgrade.
 *
 * Timestamps are stored as text "YYYY-MM-DD HH:MM:SS.mmm" (UTC), which
 * sorts as time does; a connection-local SQL function NOW() returns the
 * same form, so the reference documents' cleanup SQL runs unchanged.
 *
 * Durable waiting (contract version 5) is a run's wait_for and parent_id,
 * the signal inbox and the schedules. Every change a wait makes is inside
 * the write transaction of what causes it: a signal and the wake of the
 * run that waits for it, a commit and the signal it consumes and the run
 * it wakes, a cancel and the wake of the parent. SQLite has no way to
 * tell another process's worker, so a wake only makes the run due
 * (next_run_at = now) and the workers find it when they next claim.
 *
 * URL options: synchronous=off|normal|full|extra (default full),
 * busy_timeout=MS (default 5000), prefix, pool_max (default 8).
 */
#include "dura/store.h"
#include "../internal.h"
#include "../util.h"
#include "sql/catalog.h"
#include "sql/commit.h"
#include "sql/dialect.h"
#include "sql/errors.h"
#include "sql/pool.h"
#include "sql/schema.h"
#include "sql/rows.h"
#include "flow.h"
#include "sql/workers.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SQ "sqlite"
#define SQ_SCHEMA_VERSION 4 /* the schema this library writes */
#define SQ_DEFAULT_POOL 8
#define SQ_DEFAULT_BUSY_MS 5000

/* ---- SQL ------------------------------------------------------------------- */

/*
 * REC_COLS, STEP_COLS, CP_COLS, ACTIVE_STATES and the statements every SQL
 * store shares are sql/catalog.h's; these are SQLite's own, rendered with
 * the SQLite dialect (sql/dialect.h) at open. SQLite's own may number
 * their parameters (?1 used twice); a shared statement's "?" are bound in
 * order. Why these differ from MySQL's: transactions and savepoints are
 * SQLite's (BEGIN IMMEDIATE takes the write lock at once); the schema is
 * read from sqlite_master; a run-state change, an erase, a commit and a
 * claim return what they wrote with RETURNING instead of reading it back
 * under a row lock; a claim picks its workflows with json_each; the cache
 * statistics need no integer casts; a cache claim is INSERT OR REPLACE
 * under the database-wide write lock instead of a locked read.
 */

#define STATEMENTS(X)                                                                                              \
	SQL_SHARED_STATEMENTS(X)                                                                                   \
	X(BEGIN, "BEGIN IMMEDIATE")                                                                                \
	X(COMMIT, "COMMIT")                                                                                        \
	X(ROLLBACK, "ROLLBACK")                                                                                    \
	X(SAVEPOINT, "SAVEPOINT dura_item")                                                                        \
	X(RELEASE, "RELEASE dura_item")                                                                            \
	X(ROLLBACK_TO, "ROLLBACK TO dura_item")                                                                    \
	X(PING, "SELECT count(*) FROM sqlite_master")                                                              \
	X(SCHEMA_EXISTS, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{p}dura_schema'")    \
	X(SCHEMA_RECORD, "INSERT INTO {p}dura_schema (version, description) VALUES (?1, ?2)")                       \
	/* runs */                                                                                                 \
	X(RUN_STATE, "SELECT run_state, version, workflow_name, foreign_id FROM {p}workflow_records "              \
	             "WHERE run_id = ?1")                                                                          \
	X(RUN_SET_STATE, "UPDATE {p}workflow_records SET run_state = ?2, version = version + 1, updated_at = ?3, "  \
	                 "next_run_at = CASE WHEN ?2 = 2 AND wait_for = '' THEN ?3 ELSE next_run_at END, "         \
	                 "attempt = CASE WHEN ?2 = 2 THEN 0 ELSE attempt END "                                     \
	                 "WHERE run_id = ?1 AND run_state = ?4 RETURNING version")                                 \
	X(RUN_ERASE, "UPDATE {p}workflow_records SET object = '{}', run_state = 6, version = version + 1, "        \
	             "updated_at = ?2 WHERE run_id = ?1 RETURNING version")                                        \
	/* a cancelled child wakes the parent that waits for it: (now, child) */                                    \
	X(RUN_WAKE_PARENT, "UPDATE {p}workflow_records SET next_run_at = ?1, version = version + 1, updated_at = ?1 " \
	                   "WHERE run_id = (SELECT parent_id FROM {p}workflow_records WHERE run_id = ?2) "          \
	                   "AND run_state = 2 AND wait_for = 'child:' || ?2")                                      \
	/* steps */                                                                                                \
	X(COMMIT_UPDATE, "UPDATE {p}workflow_records SET object = ?3, status = ?4, error = ?5, attempt = ?6, "     \
	                 "next_run_at = ?7, updated_at = ?8, version = version + 1, step_no = step_no + ?9, "      \
	                 "wait_for = ?10 "                                                                         \
	                 "WHERE run_id = ?1 AND version = ?2 RETURNING step_no, workflow_name, run_state")         \
	X(COMMIT_UPDATE_FULL, "UPDATE {p}workflow_records SET object = ?3, status = ?4, error = ?5, attempt = ?6, " \
	                      "next_run_at = ?7, updated_at = ?8, version = version + 1, step_no = step_no + ?9, " \
	                      "run_state = coalesce(?10, run_state), "                                             \
	                      "lease_owner = CASE WHEN ?11 THEN '' ELSE lease_owner END, "                         \
	                      "lease_expires_at = CASE WHEN ?11 THEN NULL ELSE lease_expires_at END, "             \
	                      "wait_for = ?12 "                                                                    \
	                      "WHERE run_id = ?1 AND version = ?2 RETURNING step_no, workflow_name, run_state")    \
	X(OUTBOX_INSERT, "INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "     \
	                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                                        \
	/* cache */                                                                                                \
	X(CACHE_STATS, "SELECT count(*), coalesce(sum(expires_at IS NOT NULL AND expires_at <= ?1), 0), "          \
	               "coalesce(sum(length(value)), 0) FROM {p}step_cache")                                       \
	X(CLAIM_GET, "SELECT owner, expires_at FROM {p}step_cache_claims WHERE {key} = ?1")                          \
	X(CLAIM_SET, "INSERT OR REPLACE INTO {p}step_cache_claims ({key}, owner, expires_at) VALUES (?1, ?2, ?3)")   \
	/* leases */                                                                                               \
	X(FLOW_COUNT, "SELECT workflow_name, concurrency_key, count(*) FROM {p}workflow_records "                  \
	              "WHERE lease_owner <> '' AND lease_expires_at > ?1 AND run_state = 2 "                       \
	              "GROUP BY workflow_name, concurrency_key")                                                   \
	X(CLAIM_PAGE, "SELECT run_id, workflow_name, concurrency_key, lease_owner, priority, next_run_at "          \
	              "FROM {p}workflow_records WHERE run_state = 2 AND next_run_at <= ?1 "                        \
	              "AND (lease_owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?1) "              \
	              "AND (?2 IS NULL OR workflow_name IN (SELECT value FROM json_each(?2))) "                    \
	              "AND (priority < ?3 OR (priority = ?3 AND (next_run_at > ?4 OR "                             \
	              "(next_run_at = ?4 AND run_id > ?5)))) "                                                     \
	              "ORDER BY priority DESC, next_run_at, run_id LIMIT ?6")                                      \
	X(CLAIM_ONE, "UPDATE {p}workflow_records SET lease_owner = ?1, lease_expires_at = ?2, "                    \
	             "version = version + 1 WHERE run_id = ?3 RETURNING " REC_COLS)                                \
	/* outbox */                                                                                               \

#define X_ENUM(name, sql) ST_##name,
#define X_SQL(name, sql) sql,
#define X_NAME(name, sql) #name,
enum { STATEMENTS(X_ENUM) ST__COUNT };
static const char *const st_sql[ST__COUNT] = {STATEMENTS(X_SQL)};
static const char *const st_name[ST__COUNT] = {STATEMENTS(X_NAME)};

/* The bookkeeping table, created before the first migration. */
static const char schema_table_sql[] =
	"CREATE TABLE IF NOT EXISTS {p}dura_schema ("
	"version INTEGER PRIMARY KEY, "
	"applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')), "
	"description TEXT NOT NULL DEFAULT '')";

/*
 * Numbered migrations; migrations[i] takes the schema from version i to
 * i + 1. Table and column names are the reference documents'; plain
 * CREATE (not IF NOT EXISTS) so that a foreign table of the same name is
 * reported instead of silently used. Every commit writes a record, a step
 * and an outbox row, so each index costs a page per commit: by_run_state
 * leads with run_state and also serves claim_runs (run_state, next_run_at),
 * and the outbox, keyed by its text id, is WITHOUT ROWID (one b-tree, not
 * two). one_active_run enforces one active run per workflow and foreign id
 * inside the database itself.
 */
static const char *const migration1[] = {
	"CREATE TABLE {p}workflow_records ("
	 "run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, foreign_id TEXT NOT NULL DEFAULT '', "
	 "run_state INTEGER NOT NULL, status TEXT NOT NULL DEFAULT '', object {json} NOT NULL, "
	 "version INTEGER NOT NULL, step_no INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, "
	 "error TEXT NOT NULL DEFAULT '', meta {json}, lease_owner TEXT NOT NULL DEFAULT '', lease_expires_at {time}, "
	 "next_run_at {time} NOT NULL, created_at {time} NOT NULL, updated_at {time} NOT NULL);"
	 "CREATE INDEX {p}by_workflow_name_foreign_id_status ON {p}workflow_records (workflow_name, foreign_id, status);"
	 "CREATE INDEX {p}by_run_state ON {p}workflow_records (run_state, next_run_at);"
	 "CREATE INDEX {p}by_created_at ON {p}workflow_records (created_at);"
	 "CREATE UNIQUE INDEX {p}one_active_run ON {p}workflow_records (workflow_name, foreign_id) "
	 "WHERE foreign_id <> '' AND run_state IN " ACTIVE_STATES ";"
	 "CREATE TABLE {p}workflow_steps ("
	 "id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, node_id TEXT NOT NULL, "
	 "state {json} NOT NULL, created_at {time} NOT NULL, UNIQUE (run_id, step));"
	 "CREATE TABLE {p}workflow_checkpoints ("
	 "id INTEGER PRIMARY KEY, checkpoint_id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL, state {json} NOT NULL, "
	 "step INTEGER NOT NULL, created_at {time} NOT NULL, updated_at {time} NOT NULL);"
	 "CREATE INDEX {p}idx_checkpoints_run_id ON {p}workflow_checkpoints (run_id);"
	 "CREATE TABLE {p}workflow_outbox ("
	 "id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, run_id TEXT NOT NULL, type TEXT NOT NULL, data {json}, "
	 "created_at {time} NOT NULL) WITHOUT ROWID;"
	 "CREATE INDEX {p}by_workflow_name ON {p}workflow_outbox (workflow_name);"
	 "CREATE TABLE {p}step_cache ("
	 "{key} TEXT PRIMARY KEY, value BLOB, error TEXT, created_at {time} NOT NULL, expires_at {time}, "
	 "metadata {json});"
	 "CREATE INDEX {p}idx_expires_at ON {p}step_cache (expires_at);"
	 "CREATE TABLE {p}step_cache_claims ("
	 "{key} TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at {time} NOT NULL);",
	NULL,
};

/*
 * Migration 2: flow control. A run's priority and concurrency key; the
 * claim order's index (by_claim_order, led by the workflow as claims are);
 * and the live leases, which a claim with limits counts, indexed apart
 * (only leased rows are in it).
 */
static const char *const migration2[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE {p}workflow_records ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_claim_order ON {p}workflow_records (workflow_name, run_state, priority DESC, next_run_at, run_id);"
	"CREATE INDEX {p}by_live_lease ON {p}workflow_records (lease_expires_at) WHERE lease_owner <> '';",
	NULL,
};

/* The worker registry: one row per live worker (and per dead one until
 * it is pruned); dead_after (heartbeat_at + lease_ms) is indexed for the prune. */
static const char *const migration3[] = {
	"CREATE TABLE {p}dura_workers ("
	"worker_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '', "
	"pid INTEGER NOT NULL, threads INTEGER NOT NULL, lease_ms INTEGER NOT NULL, workflows TEXT NOT NULL, "
	"held INTEGER NOT NULL DEFAULT 0, started_at {time} NOT NULL, heartbeat_at {time} NOT NULL, "
	"dead_after {time} NOT NULL);"
	"CREATE INDEX {p}by_dead_after ON {p}dura_workers (dead_after);",
	NULL,
};

/*
 * Migration 4: durable waiting. What a run waits for (wait_for: WAIT is
 * a keyword of MySQL's, and the column has one name in every SQL store)
 * and its parent, with the children of a run indexed apart (only child
 * rows are in it); the signal inbox, read in (run, name, id) order; the
 * schedules, keyed by name.
 */
static const char *const migration4[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN wait_for TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE {p}workflow_records ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_parent_id ON {p}workflow_records (parent_id) WHERE parent_id <> '';"
	"CREATE TABLE {p}workflow_signals ("
	"signal_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL, "
	"created_at {time} NOT NULL);"
	"CREATE INDEX {p}by_run_signal ON {p}workflow_signals (run_id, name, signal_id);"
	"CREATE TABLE {p}dura_schedules ("
	"name TEXT PRIMARY KEY, cron TEXT NOT NULL, zone TEXT NOT NULL, workflow_name TEXT NOT NULL, "
	"state TEXT NOT NULL, catch_up INTEGER NOT NULL, next_tick {time} NOT NULL, created_at {time} NOT NULL, "
	"updated_at {time} NOT NULL);",
	NULL,
};

static const dura_sql_migration migrations[] = {
	{"workflow_records, workflow_steps, workflow_checkpoints, workflow_outbox, step_cache", migration1, NULL},
	{"flow control: workflow_records.priority and concurrency_key, by_claim_order, by_live_lease", migration2, NULL},
	{"dura_workers (the worker registry)", migration3, NULL},
	{"durable waiting: workflow_records.wait_for and parent_id, workflow_signals, dura_schedules", migration4, NULL},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == SQ_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- the handle and its pool ------------------------------------------------ */

typedef struct sq_conn {
	dura_sql_conn base; /* first: the pool's part (sql/pool.h) */
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
} sq_conn;

typedef struct sq_store {
	char *path;
	char *prefix;
	const char *synchronous; /* the pragma value */
	int busy_ms;
	int pool_max;
	int no_create; /* auto_migrate off: a missing file is an error, not created */
	int64_t max_value; /* largest cache value accepted, in bytes */
	uint32_t caps;
	char *sql[ST__COUNT]; /* st_sql with the prefix in */

	dura_sql_pool pool; /* pool_max connections, all kept when idle */

	char server_version[48];
	char notes[512];
} sq_store;

/* A template in the SQLite dialect, with the prefix in; NULL when out of memory. */
static char *expand(const char *tmpl, const char *prefix)
{
	return dura_sql_render(&dura_sql_dialect_sqlite, tmpl, prefix, 0, NULL);
}

/* ---- errors ------------------------------------------------------------------ */

static int code_of(int rc)
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
static int sq_fail(sq_conn *c, int rc, const char *what)
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
	return dura_error_set_native(code_of(rc), SQ, rc, NULL, "%s: %s", what, msg);
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

static void conn_close(sq_conn *c)
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
 * synchronous, NOW()). conn_wal() does the rest.
 */
static int conn_open(sq_store *s, sq_conn **out)
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
		conn_close(c);
		return rc;
	}
	if (rc != SQLITE_OK) {
		int code = code_of(rc) == DURA_ENOMEM ? DURA_ENOMEM : DURA_EIO;
		rc = dura_error_set_native(code, SQ, rc, NULL, "cannot open SQLite database %s: %s", s->path,
		                           c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		conn_close(c);
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
		conn_close(c);
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
		rc = sq_fail(c, rc, "opening the database");
		conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* WAL: readers never block the writer, and a commit is one append. */
static int conn_wal(sq_conn *c)
{
	int rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_fail(c, rc, "PRAGMA journal_mode = WAL");
}

static void tx_rollback(sq_store *s, sq_conn *c);

/* sql/pool.h's operations. A new connection is in WAL mode (conn_open()
 * leaves that to its caller for the first one, which checks the schema
 * first); one given back is never inside a transaction. */
static int pool_open(void *store, dura_sql_conn **out)
{
	sq_conn *c;
	int rc = conn_open(store, &c);
	if (rc == 0 && (rc = conn_wal(c)) != 0)
		conn_close(c);
	*out = rc ? NULL : &c->base;
	return rc;
}

static void pool_close(void *store, dura_sql_conn *c)
{
	(void)store;
	conn_close((sq_conn *)c);
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
		tx_rollback(store, sc);
}

static const dura_sql_pool_ops sq_pool_ops = {pool_open, pool_close, pool_abandon, pool_reset, NULL};

/* Borrow a connection: an idle one, a new one under pool_max, or wait. */
static int pool_get(sq_store *s, sq_conn **out)
{
	dura_sql_conn *c;
	int rc = dura_sql_pool_get(&s->pool, &c);
	*out = (sq_conn *)c;
	return rc;
}

static void pool_put(sq_store *s, sq_conn *c)
{
	dura_sql_pool_put(&s->pool, &c->base);
}

static void sq_atfork_child(void *impl)
{
	dura_sql_pool_atfork_child(&((sq_store *)impl)->pool);
}

/* ---- statements ------------------------------------------------------------- */

/* The connection's prepared statement `id`, prepared on first use. */
static int prep(sq_store *s, sq_conn *c, int id, sqlite3_stmt **out)
{
	*out = NULL;
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, s->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "preparing %s", st_name[id]);
			c->st[id] = NULL;
			return sq_fail(c, rc, what);
		}
	}
	*out = c->st[id];
	return 0;
}

/* Step a statement that returns no rows we need; reset it. */
static int run_done(sq_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = sq_fail(c, rc, what);
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/* Run one bound write statement; *changes gets the rows it changed. */
static int write_one(sq_conn *c, sqlite3_stmt *st, const char *what, int *changes)
{
	int rc = run_done(c, st, what);
	if (rc == 0 && changes)
		*changes = sqlite3_changes(c->db);
	return rc;
}

static int run_simple(sq_store *s, sq_conn *c, int id)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, id, &st);
	return rc ? rc : run_done(c, st, st_sql[id]);
}

static int tx_begin(sq_store *s, sq_conn *c)
{
	/* the way out is prepared before the way in: out of memory, preparing
	 * a ROLLBACK fails too, and the connection would stay in the
	 * transaction, holding the write lock */
	sqlite3_stmt *rollback;
	int rc = prep(s, c, ST_ROLLBACK, &rollback);
	return rc ? rc : run_simple(s, c, ST_BEGIN);
}

/* Undo the open transaction, if any, keeping the thread's error as it is. */
static void tx_rollback(sq_store *s, sq_conn *c)
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

static int tx_commit(sq_store *s, sq_conn *c)
{
	int rc = run_simple(s, c, ST_COMMIT);
	if (rc)
		tx_rollback(s, c);
	return rc;
}

/*
 * Binding. Every bind goes through these helpers, which return SQLite's
 * result code (SQLITE_OK is 0) and must be checked (the compiler says so);
 * the sqlite3_bind_* functions are poisoned below them. A statement binds
 * its arguments in a chain that stops at the first failure and keeps its
 * code, `if ((b = bind_text(st, 1, x)) || (b = bind_int64(st, 2, n)))`,
 * then bind_fail() turns that code into the thread's error. (The codes are
 * never ORed together: SQLITE_TOOBIG | SQLITE_RANGE reads as
 * SQLITE_NOTICE.) Values are bound SQLITE_STATIC: the caller's memory
 * outlives the step.
 */
#if defined(__GNUC__) || defined(__clang__)
#define SQ_CHECKED __attribute__((warn_unused_result))
#else
#define SQ_CHECKED
#endif

/* Text, NULL as SQL NULL. */
SQ_CHECKED static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* n bytes of text copied by SQLite (the source goes away before the step). */
SQ_CHECKED static int bind_text_copy(sqlite3_stmt *st, int i, const char *v, int n)
{
	return sqlite3_bind_text(st, i, v, n, SQLITE_TRANSIENT);
}

SQ_CHECKED static int bind_int(sqlite3_stmt *st, int i, int v)
{
	return sqlite3_bind_int(st, i, v);
}

/* An int, 0 as SQL NULL. */
SQ_CHECKED static int bind_int_or_null(sqlite3_stmt *st, int i, int v)
{
	return v ? sqlite3_bind_int(st, i, v) : sqlite3_bind_null(st, i);
}

SQ_CHECKED static int bind_int64(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

SQ_CHECKED static int bind_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
{
	return sqlite3_bind_blob64(st, i, len ? v : "", (sqlite3_uint64)len, SQLITE_STATIC);
}

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC poison sqlite3_bind_text sqlite3_bind_text64 sqlite3_bind_int sqlite3_bind_int64 sqlite3_bind_null
#pragma GCC poison sqlite3_bind_blob sqlite3_bind_blob64 sqlite3_bind_double sqlite3_bind_value
#pragma GCC poison sqlite3_bind_zeroblob sqlite3_bind_zeroblob64 sqlite3_bind_pointer
#endif

/*
 * A failed bind: reset the statement (clear_bindings is not needed, every
 * argument is bound again before the next step) and set the thread's
 * error from SQLite's code rc, as sq_fail() does: SQLITE_TOOBIG (a value
 * over SQLITE_LIMIT_LENGTH) is DURA_EINVAL naming the limit, SQLITE_NOMEM
 * DURA_ENOMEM, the extended code is the native code.
 */
static int bind_fail(sq_conn *c, sqlite3_stmt *st, int rc, const char *what)
{
	sqlite3_reset(st);
	return sq_fail(c, rc, what);
}

/* ---- values ----------------------------------------------------------------- */

static void fmt_time(char out[24], int64_t ms)
{
	dura_time_format(out, ms);
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

static const dura_sql_row_ops sq_row_ops = {SQ, sq_col_null, sq_col_text, sq_col_int64, sq_col_blob, sq_col_time};

/* st's current row, as sql/rows.c's decoders take it */
#define SQ_ROW(st) (&(const dura_sql_row){&sq_row_ops, (st)})

/*
 * Step a bound statement that selects REC_COLS: *out gets the first row's
 * record (when out is not NULL) and the result is 0, or DURA_ENOTFOUND
 * (without a message: the caller words it) when there is none. Resets st.
 */
/* A bound statement as sql/rows.h's cursor: its next row, or its end, or
 * the failure worded with what. */
typedef struct sq_cursor {
	sq_conn *c;
	sqlite3_stmt *st;
	const char *what;
} sq_cursor;

static int sq_next(void *cursor)
{
	sq_cursor *k = cursor;
	int rc = sqlite3_step(k->st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sq_fail(k->c, rc, k->what);
}

/* The statement's first row as a new item of kind in *out (out NULL: only
 * whether there is one); DURA_ENOTFOUND, with no message, when none.
 * Resets st. */
static int fetch(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **out, const char *what)
{
	sq_cursor k = {c, st, what};
	int rc = dura_sql_fetch(SQ_ROW(st), sq_next, &k, kind, out);
	sqlite3_reset(st);
	return rc;
}

/* Every row of a bound statement into a list's items (sql/rows.h,
 * dura_sql_collect). Resets st. */
static int collect(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **items, size_t *count, const char *what)
{
	sq_cursor k = {c, st, what};
	int rc = dura_sql_collect(SQ_ROW(st), sq_next, &k, kind, items, count);
	sqlite3_reset(st);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------------- */

/* The schema version recorded in the database (0: none yet). */
static int read_schema_version(sq_store *s, sq_conn *c, int *out)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_SCHEMA_EXISTS, &st);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sq_fail(c, rc, "reading the schema");
		sqlite3_reset(st);
		return rc;
	}
	int exists = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	*out = 0;
	if (!exists)
		return 0;
	if ((rc = prep(s, c, ST_SCHEMA_VERSION, &st)) != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sq_fail(c, rc, "reading the schema version");
		sqlite3_reset(st);
		return rc;
	}
	*out = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* sql/schema.h's callbacks, on one connection: migrations run in one
 * transaction (BEGIN IMMEDIATE serialises migrators). */
typedef struct sq_schema {
	sq_store *s;
	sq_conn *c;
} sq_schema;

static int schema_read(void *drv, int *out)
{
	sq_schema *d = drv;
	return read_schema_version(d->s, d->c, out);
}

static int schema_lock(void *drv)
{
	sq_schema *d = drv;
	return tx_begin(d->s, d->c);
}

static int schema_unlock(void *drv, int ok)
{
	sq_schema *d = drv;
	if (ok)
		return tx_commit(d->s, d->c);
	tx_rollback(d->s, d->c);
	return 0;
}

static int schema_exec(void *drv, const char *tmpl, int version, int optional)
{
	sq_schema *d = drv;
	(void)optional; /* SQLite has no privileges */
	char *sql = expand(tmpl, d->s->prefix);
	if (!sql)
		return dura_error_oom(SQ);
	int rc = sqlite3_exec(d->c->db, sql, NULL, NULL, NULL);
	dura_free(sql);
	if (rc == SQLITE_OK)
		return 0;
	char what[64];
	if (version)
		snprintf(what, sizeof(what), "schema migration %d", version);
	else
		snprintf(what, sizeof(what), "creating dura_schema");
	return sq_fail(d->c, rc, what);
}

static int schema_record(void *drv, int version, const char *description)
{
	sq_schema *d = drv;
	sqlite3_stmt *st;
	int rc = prep(d->s, d->c, ST_SCHEMA_RECORD, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_int(st, 1, version)) || (b = bind_text(st, 2, description)))
		return bind_fail(d->c, st, b, "recording a schema migration");
	return run_done(d->c, st, "recording a schema migration");
}

static dura_sql_schema schema_of(sq_store *s, sq_schema *d)
{
	return (dura_sql_schema){
		.store = SQ,
		.where = s->path,
		.prefix = s->prefix,
		.table = schema_table_sql,
		.migrations = migrations,
		.version = SQ_SCHEMA_VERSION,
		.transactional = 1,
		.drv = d,
		.read_version = schema_read,
		.lock = schema_lock,
		.unlock = schema_unlock,
		.exec = schema_exec,
		.record = schema_record,
	};
}

static int migrate_conn(sq_store *s, sq_conn *c, int *from, int *to)
{
	sq_schema d = {s, c};
	dura_sql_schema sc = schema_of(s, &d);
	return dura_sql_schema_migrate(&sc, from, to);
}

/*
 * Before anything writes to the file: the schema must be one this library
 * knows. Only then WAL mode (which writes the header) and migrations.
 * conn_open() has read the file already: it is a database.
 */
static int check_and_migrate(sq_store *s, sq_conn *c, const dura_store_options *opts)
{
	sq_schema d = {s, c};
	dura_sql_schema sc = schema_of(s, &d);
	int v, from, to, rc = dura_sql_schema_check(&sc, opts->auto_migrate, &v);
	if (rc == 0)
		rc = conn_wal(c);
	if (rc == 0 && v < SQ_SCHEMA_VERSION)
		rc = dura_sql_schema_migrate(&sc, &from, &to);
	return rc;
}

static void note(sq_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(sq_store *s)
{
	if (!s)
		return;
	dura_sql_pool_destroy(&s->pool);
	for (int i = 0; i < ST__COUNT; i++)
		dura_free(s->sql[i]);
	dura_free(s->path);
	dura_free(s->prefix);
	dura_free(s);
}

static int parse_options(sq_store *s, const dura_url *url)
{
	static const char *const known[] = {"synchronous", "busy_timeout", "prefix", "pool_max", "max_value"};
	const char *v;
	s->synchronous = "FULL";
	if ((v = dura_url_param(url, "synchronous")) != NULL) {
		static const char *const modes[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
		s->synchronous = NULL;
		for (int i = 0; i < 4; i++)
			if (strcasecmp(v, modes[i]) == 0 || (v[0] == '0' + i && v[1] == '\0'))
				s->synchronous = modes[i];
		if (!s->synchronous)
			return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL,
			                             "URL option synchronous='%.40s' is not off, normal, full or extra", v);
	}
	s->busy_ms = SQ_DEFAULT_BUSY_MS;
	if ((v = dura_url_param(url, "busy_timeout")) != NULL) {
		char *end;
		long ms = strtol(v, &end, 10);
		if (!*v || *end || ms < 0 || ms > INT_MAX)
			return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL,
			                             "URL option busy_timeout='%.40s' is not a number of milliseconds", v);
		s->busy_ms = (int)ms;
	}
	/* SQLite's own ceiling for a BLOB is SQLITE_MAX_LENGTH (10^9 by default) */
	s->max_value = 1000000000;
	if ((v = dura_url_param(url, "max_value")) != NULL) {
		char *end;
		long long n = strtoll(v, &end, 10);
		if (!*v || *end || n < 0 || n > 1000000000)
			return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL,
			                             "URL option max_value='%.40s' is not a size in bytes up to 1000000000", v);
		s->max_value = n;
	}
	s->pool_max = url->pool_max > 0 ? url->pool_max : SQ_DEFAULT_POOL;
	for (size_t i = 0; i < url->nparams; i++) {
		int ok = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= strcmp(url->param_names[i], known[k]) == 0;
		if (!ok)
			note(s, "ignored option %s", url->param_names[i]);
	}
	return 0;
}

static int sq_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	sq_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(SQ);
	s->pool.ops = &sq_pool_ops;
	s->pool.store = s;
	dura_sql_pool_init(&s->pool);
	int rc = parse_options(s, url);
	if (rc) {
		store_free(s);
		return rc;
	}
	s->path = dura_strdup(url->database);
	s->prefix = dura_strdup(url->prefix ? url->prefix : "");
	s->no_create = !opts->auto_migrate && strcmp(url->database, ":memory:") != 0;
	int ok = s->path && s->prefix;
	for (int i = 0; ok && i < ST__COUNT; i++)
		ok = (s->sql[i] = expand(st_sql[i], s->prefix)) != NULL;
	if (!ok) {
		store_free(s);
		return dura_error_oom(SQ);
	}
	s->caps = DURA_CAP_RETURNING | DURA_CAP_JSON | DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL;
	if (strcmp(s->path, ":memory:") == 0) {
		/* every connection would be a database of its own */
		s->pool_max = 1;
		s->caps &= ~(DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE);
		note(s, "%s database: one connection, lost at close", "in-memory");
	}
	snprintf(s->server_version, sizeof(s->server_version), "SQLite %s", sqlite3_libversion());

	sq_conn *c;
	if ((rc = conn_open(s, &c)) != 0) {
		store_free(s);
		return rc;
	}
	if ((rc = check_and_migrate(s, c, opts)) != 0) {
		conn_close(c);
		store_free(s);
		return rc;
	}
	s->pool.max = s->pool.max_idle = s->pool_max;
	dura_sql_pool_adopt(&s->pool, &c->base);
	*impl = s;
	return 0;
}

static void sq_close(void *impl)
{
	store_free(impl);
}

static int sq_ping(void *impl)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = run_simple(s, c, ST_PING);
	pool_put(s, c);
	return rc;
}

static int sq_info(void *impl, dura_store_info *out)
{
	sq_store *s = impl;
	sq_conn *c;
	int v = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = read_schema_version(s, c, &v);
	pool_put(s, c);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = SQ_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int sq_stats(void *impl, dura_store_stats *out)
{
	sq_store *s = impl;
	dura_sql_pool_stats(&s->pool, out);
	return 0;
}

static int sq_migrate(void *impl, int *from, int *to)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = migrate_conn(s, c, from, to);
	pool_put(s, c);
	return rc;
}

/* ---- runs ---------------------------------------------------------------------- */

static int create_run_tx(sq_store *s, sq_conn *c, const dura_run_create *req, const char *run_id, dura_record **out)
{
	const char *fid = req->foreign_id ? req->foreign_id : "";
	const char *state = req->state ? req->state : "{}";
	const char *status = req->status ? req->status : "";
	const char *meta = req->meta && *req->meta ? req->meta : NULL;
	int run_state = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	int64_t now = dura_now_ms(), next = req->next_run_at ? req->next_run_at : now;
	char now_txt[24], next_txt[24];
	fmt_time(now_txt, now);
	fmt_time(next_txt, next);
	sqlite3_stmt *st;
	int rc = tx_begin(s, c);
	if (rc)
		return rc;

	/* one active run per workflow and foreign id: under the write lock, so
	 * no other process can start one between this check and the insert */
	if (*fid) {
		if ((rc = prep(s, c, ST_RUN_ACTIVE, &st)) != 0)
			goto fail;
		int b;
		if ((b = bind_text(st, 1, req->workflow_name)) || (b = bind_text(st, 2, fid))) {
			rc = bind_fail(c, st, b, "looking up the active run");
			goto fail;
		}
		dura_record *existing = NULL;
		rc = fetch(c, st, DURA_SQL_RECORD, (void **)&existing, "looking up the active run");
		if (rc == 0) {
			tx_rollback(s, c);
			rc = dura_error_set_native(DURA_EEXISTS, SQ, 0, NULL,
			                           "workflow %s already has an active run %s with foreign id %s",
			                           req->workflow_name, existing->run_id, fid);
			if (out)
				*out = existing;
			else
				dura_record_free(existing);
			return rc;
		}
		if (rc != DURA_ENOTFOUND)
			goto fail;
	}

	if ((rc = prep(s, c, ST_RUN_INSERT, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, run_id)) || (b = bind_text(st, 2, req->workflow_name)) || (b = bind_text(st, 3, fid)) ||
	    (b = bind_int(st, 4, run_state)) || (b = bind_text(st, 5, status)) || (b = bind_text(st, 6, state)) ||
	    (b = bind_text(st, 7, meta)) || (b = bind_text(st, 8, next_txt)) || (b = bind_text(st, 9, now_txt)) ||
	    (b = bind_text(st, 10, now_txt)) || (b = bind_int(st, 11, req->priority)) ||
	    (b = bind_text(st, 12, req->concurrency_key ? req->concurrency_key : "")) ||
	    (b = bind_text(st, 13, req->parent_id ? req->parent_id : ""))) {
		rc = bind_fail(c, st, b, "creating a run");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		int xrc = rc;
		sqlite3_reset(st);
		/* the run id is taken (or, racing a writer that bypassed the
		 * check above, the foreign id): hand back what is there */
		dura_record *existing = NULL;
		if ((rc = prep(s, c, ST_RUN_GET, &st)) != 0)
			goto fail;
		if ((b = bind_text(st, 1, run_id)) != 0) {
			rc = bind_fail(c, st, b, "looking up the run");
			goto fail;
		}
		rc = fetch(c, st, DURA_SQL_RECORD, out ? (void **)&existing : NULL, "looking up the run");
		tx_rollback(s, c);
		if (rc == 0) {
			if (out)
				*out = existing;
			return dura_error_set_native(DURA_EEXISTS, SQ, xrc, NULL, "run %s already exists", run_id);
		}
		if (rc != DURA_ENOTFOUND)
			return rc;
		return dura_error_set_native(DURA_EEXISTS, SQ, xrc, NULL,
		                             "workflow %s already has an active run with foreign id %s", req->workflow_name,
		                             fid);
	} else {
		rc = sq_fail(c, rc, "creating a run");
		sqlite3_reset(st);
		goto fail;
	}
	/* the caller's copy before the commit: running out of memory after it
	 * would report a failure for a run that exists */
	dura_record *made = NULL;
	if (out && (rc = dura_sql_created_record(&made, SQ, run_id, req, fid, state, status, run_state, now, next)) != 0)
		goto fail;
	if ((rc = tx_commit(s, c)) != 0) {
		dura_record_free(made);
		return rc;
	}
	if (out)
		*out = made;
	return 0;
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = create_run_tx(s, c, req, run_id, out);
	pool_put(s, c);
	return rc;
}

static int sq_get_run(void *impl, const char *run_id, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_RUN_GET, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "reading a run") : fetch(c, st, DURA_SQL_RECORD, (void **)out, "reading a run");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_run_not_found(SQ, run_id);
	return rc;
}

static int sq_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_RUN_LATEST, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, wf)) || (b = bind_text(st, 2, fid)))
			rc = bind_fail(c, st, b, "reading the latest run");
		else
			rc = fetch(c, st, DURA_SQL_RECORD, (void **)out, "reading the latest run");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_run_with_fid(SQ, wf, fid);
	return rc;
}

static int sq_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char after[24], before[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_RUN_LIST, &st)) != 0)
		goto out;
	if (f->created_after)
		fmt_time(after, f->created_after);
	if (f->created_before)
		fmt_time(before, f->created_before);
	/* each filter is bound twice, "(? IS NULL OR column = ?)", but waiting,
	 * "(? = 0 OR wait_for <> '')" */
	const char *text[6] = {f->workflow_name, NULL, f->status, f->foreign_id, f->created_after ? after : NULL,
	                       f->created_before ? before : NULL};
	const char *cursor = f->cursor && *f->cursor ? f->cursor : NULL;
	int b = 0;
	for (int i = 0; i < 6 && !b; i++) {
		if (i == 1) {
			if ((b = bind_int(st, 3, f->run_state)) == 0)
				b = bind_int(st, 4, f->run_state);
		} else if ((b = bind_text(st, 2 * i + 1, text[i])) == 0) {
			b = bind_text(st, 2 * i + 2, text[i]);
		}
	}
	/* the core hands every store a filter of the current version */
	if (b || (b = bind_text(st, 13, cursor)) || (b = bind_text(st, 14, cursor)) ||
	    (b = bind_text(st, 15, f->parent_id)) || (b = bind_text(st, 16, f->parent_id)) ||
	    (b = bind_int(st, 17, f->waiting != 0)) || (b = bind_int64(st, 18, (int64_t)f->limit))) {
		rc = bind_fail(c, st, b, "listing runs");
		goto out;
	}
	if ((rc = collect(c, st, DURA_SQL_RECORD, (void **)&out->items, &out->count, "listing runs")) != 0)
		goto out;
	if (out->count == f->limit && out->count > 0) {
		out->next_cursor = dura_strdup(out->items[out->count - 1].run_id);
		if (!out->next_cursor) {
			dura_record_list_free(out);
			rc = dura_error_oom(SQ);
		}
	}
out:
	pool_put(s, c);
	return rc;
}

/*
 * Read a run's state and version inside the open transaction; ENOTFOUND
 * with a message when it is absent.
 */
static int run_state_of(sq_store *s, sq_conn *c, const char *run_id, int *state, int64_t *version)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_RUN_STATE, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, run_id)) != 0)
		return bind_fail(c, st, rc, "reading a run");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = sqlite3_column_int(st, 0);
		*version = sqlite3_column_int64(st, 1);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = sq_fail(c, rc, "reading a run");
	}
	sqlite3_reset(st);
	return rc;
}

/* A DELETE or UPDATE bound with one text key, run in the open transaction. */
static int run_keyed(sq_store *s, sq_conn *c, int id, const char *key, const char *what)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, id, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, key)) != 0)
		return bind_fail(c, st, rc, what);
	return run_done(c, st, what);
}

/*
 * Inside the open transaction: the run's state becomes {}, its run_state
 * data_deleted, its steps, checkpoints and signals go. *version gets the
 * new one.
 */
static int erase_run(sq_store *s, sq_conn *c, const char *run_id, int64_t *version)
{
	char now_txt[24];
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_RUN_ERASE, &st);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = bind_text(st, 1, run_id)) || (rc = bind_text(st, 2, now_txt)))
		return bind_fail(c, st, rc, "erasing a run's state");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = sq_fail(c, rc, "erasing a run's state");
	}
	sqlite3_reset(st);
	if (rc)
		return rc;
	if ((rc = run_keyed(s, c, ST_STEPS_ERASE, run_id, "deleting a run's steps")) != 0 ||
	    (rc = run_keyed(s, c, ST_CPS_ERASE, run_id, "deleting a run's checkpoints")) != 0)
		return rc;
	return run_keyed(s, c, ST_SIGNAL_ERASE, run_id, "deleting a run's signals");
}

/*
 * Inside the open transaction: a cancelled run wakes its parent if the
 * parent is running and waits for this child ("child:" + run_id), as
 * wake() would; a run without a parent, or a parent that waits for
 * something else, is left alone.
 */
static int wake_parent(sq_store *s, sq_conn *c, const char *run_id, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_RUN_WAKE_PARENT, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, run_id)))
		return bind_fail(c, st, b, "waking the parent of a cancelled run");
	return run_done(c, st, "waking the parent of a cancelled run");
}

/*
 * Inside the open transaction: make run_id due now if it is running and
 * waits for exactly `wait` (RUN_WAKE, which leaves the wait as it is).
 * *woke gets 1 when it did, 0 when no run waits so (not an error here).
 */
static int wake_tx(sq_store *s, sq_conn *c, const char *run_id, const char *wait, const char *now_txt, int *woke)
{
	sqlite3_stmt *st;
	int changes = 0, rc = prep(s, c, ST_RUN_WAKE, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, now_txt)) || (b = bind_text(st, 3, run_id)) ||
	    (b = bind_text(st, 4, wait)))
		return bind_fail(c, st, b, "waking a run");
	rc = write_one(c, st, "waking a run", &changes);
	if (woke)
		*woke = changes > 0;
	return rc;
}

static int set_state_tx(sq_store *s, sq_conn *c, const char *run_id, int to, int64_t *new_version)
{
	int cur;
	int64_t version;
	char now_txt[24];
	sqlite3_stmt *st;
	int rc = tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (!dura_run_state_transition_ok(cur, to)) {
		rc = dura_sql_err_move(SQ, run_id, cur, to);
		goto fail;
	}
	if (to == DURA_RUN_DATA_DELETED) {
		/* the state's name is a promise: the data goes, as with delete_run_data */
		if ((rc = erase_run(s, c, run_id, &version)) != 0)
			goto fail;
		goto done;
	}
	if ((rc = prep(s, c, ST_RUN_SET_STATE, &st)) != 0)
		goto fail;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = bind_text(st, 1, run_id)) || (rc = bind_int(st, 2, to)) || (rc = bind_text(st, 3, now_txt)) ||
	    (rc = bind_int(st, 4, cur))) {
		rc = bind_fail(c, st, rc, "changing a run's state");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		version = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		/* resuming a failed run while another run of the same workflow
		 * and foreign id is active */
		rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL,
		                           "cannot move run %s to %s: its workflow already has an active run with the same "
		                           "foreign id",
		                           run_id, dura_run_state_name(to));
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_moved_meanwhile(SQ, run_id, to);
	} else {
		rc = sq_fail(c, rc, "changing a run's state");
	}
	sqlite3_reset(st);
	if (rc)
		goto fail;
	if (to == DURA_RUN_CANCELLED && (rc = wake_parent(s, c, run_id, now_txt)) != 0)
		goto fail;
done:
	if ((rc = tx_commit(s, c)) != 0)
		return rc;
	if (new_version)
		*new_version = version;
	return 0;
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = set_state_tx(s, c, run_id, to, new_version);
	pool_put(s, c);
	return rc;
}

static int delete_data_tx(sq_store *s, sq_conn *c, const char *run_id)
{
	int cur;
	int64_t version;
	int rc = tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (cur != DURA_RUN_COMPLETED && cur != DURA_RUN_CANCELLED && cur != DURA_RUN_FAILED) {
		rc = dura_sql_err_delete_live(SQ, run_id, cur);
		goto fail;
	}
	if ((rc = erase_run(s, c, run_id, &version)) != 0)
		goto fail;
	return tx_commit(s, c);
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_delete_run_data(void *impl, const char *run_id)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = delete_data_tx(s, c, run_id);
	pool_put(s, c);
	return rc;
}

/* ---- steps ---------------------------------------------------------------------- */

/* Why a CAS update matched no row: the run is gone, or at another version. */
static int commit_miss(sq_store *s, sq_conn *c, const dura_commit *cm)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_RUN_VERSION, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, cm->run_id)) != 0)
		return bind_fail(c, st, rc, "reading a run's version");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = dura_sql_err_version(SQ, cm->run_id, sqlite3_column_int64(st, 0), cm->expect_version);
	else if (rc == SQLITE_DONE)
		rc = dura_sql_err_run_not_found(SQ, cm->run_id);
	else
		rc = sq_fail(c, rc, "reading a run's version");
	sqlite3_reset(st);
	return rc;
}

/*
 * What a commit that went in does about waiting, in its transaction: the
 * signal it consumes must still be there (else DURA_ECONFLICT: another
 * commit took it, and the caller undoes this one), and the run it wakes
 * is woken if it still waits so.
 */
static int commit_waits(sq_store *s, sq_conn *c, const dura_commit *cm, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc;
	if (cm->signal_id) {
		int changes = 0, b;
		if ((rc = prep(s, c, ST_SIGNAL_DELETE, &st)) != 0)
			return rc;
		if ((b = bind_text(st, 1, cm->signal_id)) || (b = bind_text(st, 2, cm->run_id)))
			return bind_fail(c, st, b, "consuming a signal");
		if ((rc = write_one(c, st, "consuming a signal", &changes)) != 0)
			return rc;
		if (changes == 0)
			return dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
			                             "signal %s of run %s is not there (another commit consumed it); the "
			                             "commit was not made",
			                             cm->signal_id, cm->run_id);
	}
	/* the core sends a wake_wait with every wake_run_id; without one there
	 * is nothing a run could wait for */
	if (cm->wake_run_id && cm->wake_wait && *cm->wake_wait)
		return wake_tx(s, c, cm->wake_run_id, cm->wake_wait, now_txt, NULL);
	return 0;
}

/*
 * One step commit inside the open transaction: the CAS update of the
 * record (with its wait), the signal it consumes and the run it wakes,
 * the step row, the outbox row. A stale version or a missing run
 * (ECONFLICT, ENOTFOUND) writes nothing; a consumed signal (ECONFLICT)
 * and any other failure leave writes the caller undoes (a rollback, or a
 * rollback to the batch item's savepoint).
 */
static int commit_one(sq_store *s, sq_conn *c, const dura_commit *cm, const char *event_id, const char *now_txt,
                      dura_commit_result *res)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	const int do_step = plan.do_step, do_event = plan.do_event, release = plan.release, full = plan.full;
	const char *status = plan.status;
	char next_txt[24];
	sqlite3_stmt *up, *st;
	int rc;

	if (cm->next_run_at)
		fmt_time(next_txt, cm->next_run_at);
	if ((rc = prep(s, c, full ? ST_COMMIT_UPDATE_FULL : ST_COMMIT_UPDATE, &up)) != 0)
		return rc;
	int b;
	if ((b = bind_text(up, 1, cm->run_id)) || (b = bind_int64(up, 2, cm->expect_version)) ||
	    (b = bind_text(up, 3, cm->state)) || (b = bind_text(up, 4, status)) ||
	    (b = bind_text(up, 5, cm->error ? cm->error : "")) || (b = bind_int(up, 6, cm->attempt)) ||
	    (b = bind_text(up, 7, cm->next_run_at ? next_txt : now_txt)) || (b = bind_text(up, 8, now_txt)) ||
	    (b = bind_int(up, 9, do_step)) || (b = bind_text(up, full ? 12 : 10, cm->wait ? cm->wait : "")) ||
	    (full && ((b = bind_int_or_null(up, 10, cm->run_state)) || (b = bind_int(up, 11, release)))))
		return bind_fail(c, up, b, "committing a step");
	rc = sqlite3_step(up);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE) {
			sqlite3_reset(up);
			return commit_miss(s, c, cm);
		}
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL,
			                           "cannot commit run %s as %s: its workflow already has an active run with the "
			                           "same foreign id",
			                           cm->run_id, dura_run_state_name(cm->run_state));
		else
			rc = sq_fail(c, rc, "committing a step");
		sqlite3_reset(up);
		return rc;
	}
	int64_t step_no = sqlite3_column_int64(up, 0);
	int run_state = sqlite3_column_int(up, 2);
	res->new_version = cm->expect_version + 1;
	res->step = do_step ? step_no - 1 : -1;
	if (do_event) {
		/* the outbox row needs the workflow name: bind a copy before the
		 * update statement is reset */
		if ((rc = prep(s, c, ST_OUTBOX_INSERT, &st)) != 0) {
			sqlite3_reset(up);
			return rc;
		}
		rc = bind_text_copy(st, 2, (const char *)sqlite3_column_text(up, 1), sqlite3_column_bytes(up, 1));
		if (rc) {
			sqlite3_reset(up);
			return bind_fail(c, st, rc, "writing an outbox event");
		}
	}
	sqlite3_reset(up);
	if ((rc = commit_waits(s, c, cm, now_txt)) != 0)
		return rc;

	if (do_step) {
		if ((rc = prep(s, c, ST_STEP_INSERT, &st)) != 0)
			return rc;
		if ((b = bind_text(st, 1, cm->run_id)) || (b = bind_int64(st, 2, res->step)) ||
		    (b = bind_text(st, 3, cm->node_id)) || (b = bind_text(st, 4, cm->state)) ||
		    (b = bind_text(st, 5, now_txt)))
			return bind_fail(c, st, b, "writing a step");
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				rc = dura_error_set_native(DURA_ECONFLICT, SQ, rc, NULL, "run %s already has a step %lld",
				                           cm->run_id, (long long)res->step);
			else
				rc = sq_fail(c, rc, "writing a step");
			sqlite3_reset(st);
			return rc;
		}
		sqlite3_reset(st);
	}

	if (do_event) {
		/* the default event data (dura_store_event_summary): ids are at most 255
		 * bytes (6 each once escaped), the stack buffer fits them unless a
		 * caller skipped validation */
		char buf[3 * (6 * DURA_MAX_ID_LEN + 2) + 128], *heap = NULL;
		const char *payload = cm->event_data;
		if (!payload) {
			size_t n = dura_store_event_summary(buf, sizeof buf, cm->run_id, res->step, cm->node_id, status, run_state);
			if (n >= sizeof buf) {
				if (!(heap = dura_malloc(n + 1)))
					return dura_error_oom(SQ);
				dura_store_event_summary(heap, n + 1, cm->run_id, res->step, cm->node_id, status, run_state);
			}
			payload = heap ? heap : buf;
		}
		st = c->st[ST_OUTBOX_INSERT]; /* prepared, and column 2 bound, above */
		if ((b = bind_text(st, 1, event_id)) || (b = bind_text(st, 3, cm->run_id)) ||
		    (b = bind_text(st, 4, cm->event_type ? cm->event_type : "step")) || (b = bind_text(st, 5, payload)) ||
		    (b = bind_text(st, 6, now_txt)))
			rc = bind_fail(c, st, b, "writing an outbox event");
		else
			rc = run_done(c, st, "writing an outbox event");
		dura_free(heap);
		if (rc)
			return rc;
	}
	return 0;
}

static int sq_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = tx_begin(s, c)) == 0) {
		rc = commit_one(s, c, cm, event_id, now_txt, res);
		if (rc == 0)
			rc = tx_commit(s, c);
		else
			tx_rollback(s, c);
	}
	if (rc) {
		res->new_version = 0;
		res->step = -1;
	}
	pool_put(s, c);
	return rc;
}

static int sq_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                           dura_commit_result *res)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24], first[256] = "";
	size_t failed = 0;
	int rc = pool_get(s, &c);
	if (rc)
		goto fatal_nc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = tx_begin(s, c)) != 0)
		goto fatal;
	for (size_t i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		if ((rc = run_simple(s, c, ST_SAVEPOINT)) != 0)
			goto fatal;
		rc = commit_one(s, c, &cm[i], event_ids[i], now_txt, &res[i]);
		if (rc == 0) {
			if ((rc = run_simple(s, c, ST_RELEASE)) != 0)
				goto fatal;
			continue;
		}
		if (rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			goto fatal;
		res[i].code = rc;
		res[i].new_version = 0;
		res[i].step = -1;
		if (!failed++) {
			const dura_error *e = dura_error_last();
			snprintf(first, sizeof(first), "%s", e && e->message ? e->message : "");
		}
		if ((rc = run_simple(s, c, ST_ROLLBACK_TO)) != 0 || (rc = run_simple(s, c, ST_RELEASE)) != 0)
			goto fatal;
	}
	if ((rc = tx_commit(s, c)) != 0)
		goto fatal;
	pool_put(s, c);
	if (!failed)
		return 0;
	return dura_sql_err_batch(SQ, failed, n, first);
fatal:
	tx_rollback(s, c);
	pool_put(s, c);
fatal_nc:
	for (size_t i = 0; i < n; i++) {
		res[i].code = rc;
		res[i].new_version = 0;
		res[i].step = -1;
	}
	return rc;
}

static int sq_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_HISTORY, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_int64(st, 2, from)) ||
		    (b = bind_int64(st, 3, limit && limit <= INT64_MAX ? (int64_t)limit : -1)))
			rc = bind_fail(c, st, b, "reading steps");
		else
			rc = collect(c, st, DURA_SQL_STEP, (void **)&out->items, &out->count, "reading steps");
	}
	pool_put(s, c);
	return rc;
}

/* One step from a bound statement, or ENOTFOUND (no message). */
static int sq_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_STEP_GET, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_int64(st, 2, step)))
			rc = bind_fail(c, st, b, "reading a step");
		else
			rc = fetch(c, st, DURA_SQL_STEP, (void **)out, "reading a step");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_step(SQ, run_id, step);
	return rc;
}

static int sq_load_latest(void *impl, const char *run_id, dura_step **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_STEP_LATEST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "reading a step") : fetch(c, st, DURA_SQL_STEP, (void **)out, "reading a step");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_committed_step(SQ, run_id);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

static int sq_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CP_SAVE, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		int b;
		if ((b = bind_text(st, 1, cp_id)) || (b = bind_text(st, 2, run_id)) || (b = bind_text(st, 3, state)) ||
		    (b = bind_int64(st, 4, step)) || (b = bind_text(st, 5, now_txt)) || (b = bind_text(st, 6, now_txt)))
			rc = bind_fail(c, st, b, "saving a checkpoint");
		else
			rc = write_one(c, st, "saving a checkpoint", NULL);
	}
	pool_put(s, c);
	return rc;
}

static int sq_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CP_LOAD, &st)) == 0) {
		int b = bind_text(st, 1, cp_id);
		rc = b ? bind_fail(c, st, b, "reading a checkpoint")
		       : fetch(c, st, DURA_SQL_CHECKPOINT, (void **)out, "reading a checkpoint");
		if (rc == DURA_ENOTFOUND)
			rc = dura_sql_err_checkpoint_not_found(SQ, cp_id);
	}
	pool_put(s, c);
	return rc;
}

static int sq_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CP_LIST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		if (b == 0)
			b = bind_text(st, 2, run_id);
		rc = b ? bind_fail(c, st, b, "listing checkpoints")
		       : collect(c, st, DURA_SQL_CHECKPOINT, (void **)&out->items, &out->count, "listing checkpoints");
	}
	pool_put(s, c);
	return rc;
}

/* A DELETE by one key: ENOTFOUND (with the message fmt, arg) when no row went. */
static int delete_by(void *impl, int id, const char *key, const char *fmt)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int changes = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, id, &st)) == 0) {
		int b = bind_text(st, 1, key);
		rc = b ? bind_fail(c, st, b, st_name[id]) : write_one(c, st, st_name[id], &changes);
	}
	pool_put(s, c);
	if (rc == 0 && changes == 0)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, fmt, key);
	return rc;
}

static int sq_checkpoint_delete(void *impl, const char *cp_id)
{
	return delete_by(impl, ST_CP_DELETE, cp_id, "checkpoint %s not found");
}

/* ---- cache ------------------------------------------------------------------------ */

static int sq_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CACHE_GET, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		int b;
		if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, now_txt)))
			rc = bind_fail(c, st, b, "reading the cache");
		else
			rc = fetch(c, st, DURA_SQL_CACHE_VALUE, (void **)out, "reading the cache");
		if (rc == DURA_ENOTFOUND)
			rc = dura_sql_err_cache_not_found(SQ, key);
	}
	pool_put(s, c);
	return rc;
}

static int cache_put_tx(sq_store *s, sq_conn *c, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	int64_t now = dura_now_ms();
	char now_txt[24], exp_txt[24];
	sqlite3_stmt *st;
	fmt_time(now_txt, now);
	if (ttl_ms)
		fmt_time(exp_txt, dura__add_ms(now, ttl_ms));
	int rc = tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CACHE_PUT, &st)) != 0)
		goto fail;
	/* a zero-length value is an empty blob, not NULL (bind_blob) */
	int b;
	if ((b = bind_text(st, 1, key)) || (b = bind_blob(st, 2, value, len)) || (b = bind_text(st, 3, error)) ||
	    (b = bind_text(st, 4, now_txt)) || (b = bind_text(st, 5, ttl_ms ? exp_txt : NULL)) ||
	    (b = bind_text(st, 6, metadata))) {
		rc = bind_fail(c, st, b, "writing to the cache");
		goto fail;
	}
	if ((rc = run_done(c, st, "writing to the cache")) != 0)
		goto fail;
	if ((rc = prep(s, c, ST_CLAIM_DROP, &st)) != 0)
		goto fail;
	if ((b = bind_text(st, 1, key)) != 0) {
		rc = bind_fail(c, st, b, "releasing the cache claim");
		goto fail;
	}
	if ((rc = run_done(c, st, "releasing the cache claim")) != 0)
		goto fail;
	return tx_commit(s, c);
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	sq_store *s = impl;
	sq_conn *c;
	if ((int64_t)len > s->max_value)
		return dura_error_set_native(DURA_EINVAL, SQ, SQLITE_TOOBIG, NULL,
		                             "cache value of %zu bytes for key %s is over this store's limit of %lld bytes "
		                             "(URL option max_value); nothing was written",
		                             len, key, (long long)s->max_value);
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = cache_put_tx(s, c, key, value, len, error, metadata, ttl_ms);
	pool_put(s, c);
	return rc;
}

static int cache_claim_tx(sq_store *s, sq_conn *c, const char *key, const char *owner, int64_t lease_ms)
{
	int64_t now = dura_now_ms();
	char now_txt[24], exp_txt[24];
	sqlite3_stmt *st;
	fmt_time(now_txt, now);
	fmt_time(exp_txt, dura__add_ms(now, lease_ms));
	int rc = tx_begin(s, c);
	if (rc)
		return rc;
	/* a value that is there and fresh: nothing to compute */
	if ((rc = prep(s, c, ST_CACHE_LIVE, &st)) != 0)
		goto fail;
	/* a failed bind's code goes to sq_fail() below */
	if ((rc = bind_text(st, 1, key)) == SQLITE_OK && (rc = bind_text(st, 2, now_txt)) == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		rc = dura_sql_err_cache_has_value(SQ, key);
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = sq_fail(c, rc, "reading the cache");
		goto fail;
	}
	/* another owner's claim that has not expired */
	if ((rc = prep(s, c, ST_CLAIM_GET, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, key)) == SQLITE_OK) /* else to sq_fail() below */
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(st, 0);
		const char *until = (const char *)sqlite3_column_text(st, 1);
		if (holder && until && strcmp(holder, owner) != 0 && strcmp(until, now_txt) > 0) {
			rc = dura_sql_err_cache_claimed(SQ, key, holder, until);
			sqlite3_reset(st);
			goto fail;
		}
	} else if (rc != SQLITE_DONE) {
		rc = sq_fail(c, rc, "reading a cache claim");
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	if ((rc = prep(s, c, ST_CLAIM_SET, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, owner)) || (b = bind_text(st, 3, exp_txt))) {
		rc = bind_fail(c, st, b, "claiming a cache key");
		goto fail;
	}
	if ((rc = run_done(c, st, "claiming a cache key")) != 0)
		goto fail;
	return tx_commit(s, c);
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = cache_claim_tx(s, c, key, owner, lease_ms);
	pool_put(s, c);
	return rc;
}

static int sq_cache_release(void *impl, const char *key, const char *owner)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int changes = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CLAIM_RELEASE, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, owner)))
			rc = bind_fail(c, st, b, "releasing a cache claim");
		else
			rc = write_one(c, st, "releasing a cache claim", &changes);
	}
	pool_put(s, c);
	if (rc == 0 && changes == 0)
		return dura_sql_err_cache_not_claimed(SQ, key, owner);
	return rc;
}

static int sq_cache_delete(void *impl, const char *key)
{
	return delete_by(impl, ST_CACHE_DELETE, key, "cache key %s not found");
}

static int purge_tx(sq_store *s, sq_conn *c, int64_t *count)
{
	char now_txt[24];
	sqlite3_stmt *st;
	int changes = 0, rc = tx_begin(s, c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = prep(s, c, ST_CACHE_PURGE, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, now_txt)) != 0) {
		rc = bind_fail(c, st, rc, "purging the cache");
		goto fail;
	}
	if ((rc = write_one(c, st, "purging the cache", &changes)) != 0)
		goto fail;
	/* expired claims are litter too; they are not counted */
	if ((rc = prep(s, c, ST_CLAIM_PURGE, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, now_txt)) != 0) {
		rc = bind_fail(c, st, rc, "purging cache claims");
		goto fail;
	}
	if ((rc = write_one(c, st, "purging cache claims", NULL)) != 0)
		goto fail;
	if ((rc = tx_commit(s, c)) != 0)
		return rc;
	*count = changes;
	return 0;
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_cache_purge_expired(void *impl, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = purge_tx(s, c, count);
	pool_put(s, c);
	return rc;
}

static int sq_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CACHE_LIST, &st)) != 0)
		goto out;
	if ((rc = bind_text(st, 1, cursor)) || (rc = bind_text(st, 2, cursor)) || (rc = bind_int64(st, 3, (int64_t)limit))) {
		rc = bind_fail(c, st, rc, "listing the cache");
		goto out;
	}
	if ((rc = collect(c, st, DURA_SQL_CACHE_LISTED, (void **)&out->items, &out->count, "listing the cache")) != 0)
		goto out;
	if (out->count == limit && out->count > 0) {
		out->next_cursor = dura_strdup(out->items[out->count - 1].key);
		if (!out->next_cursor) {
			rc = dura_error_oom(SQ);
			dura_cache_list_free(out);
		}
	}
out:
	pool_put(s, c);
	return rc;
}

static int sq_cache_stats(void *impl, dura_cache_stats *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_CACHE_STATS, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		if ((rc = bind_text(st, 1, now_txt)) == SQLITE_OK) /* else to sq_fail() below */
			rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			out->entries = sqlite3_column_int64(st, 0);
			out->expired = sqlite3_column_int64(st, 1);
			out->bytes = sqlite3_column_int64(st, 2);
			rc = 0;
		} else {
			rc = sq_fail(c, rc, "reading cache statistics");
		}
		sqlite3_reset(st);
	}
	pool_put(s, c);
	return rc;
}

/* ---- leases ------------------------------------------------------------------------ */

/* A run a claim chose: its id and its lease owner until now. */
typedef struct sq_pick {
	char *run_id;
	char *prev;
} sq_pick;

/* The claim's candidates, page by page in claim order, offered to the flow
 * ledger (or all taken, without one) until max are chosen. */
static int claim_pick(sq_store *s, sq_conn *c, const dura_claim *req, dura_flow *flow, const char *now_txt,
                      sq_pick *picks, size_t *npicks)
{
	sqlite3_stmt *st;
	int rc, prio = DURA_PRIORITY_MAX + 1, b;
	char due[64] = "", after[DURA_MAX_ID_LEN + 1] = ""; /* the keyset: the last row read */
	char *names = NULL;
	if (!flow && req->nworkflows) {
		const char **v = dura_calloc(req->nworkflows, sizeof(*v));
		if (!v)
			goto oom;
		for (size_t i = 0; i < req->nworkflows; i++)
			v[i] = req->workflows[i].name;
		names = dura__json_string_array(v, req->nworkflows);
		dura_free(v);
		if (!names)
			goto oom;
	}
	/* without limits every candidate is taken: one page of max */
	int64_t page = flow ? (int64_t)req->max * 4 + 16 : (int64_t)req->max;
	for (;;) {
		if (flow) {
			int none = 0;
			dura_free(names);
			if (!(names = dura_flow_open_json(flow, &none)))
				goto oom;
			if (none)
				break;
		}
		if ((rc = prep(s, c, ST_CLAIM_PAGE, &st)) != 0)
			goto out;
		if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, names)) || (b = bind_int(st, 3, prio)) ||
		    (b = bind_text(st, 4, due)) || (b = bind_text(st, 5, after)) || (b = bind_int64(st, 6, page))) {
			rc = bind_fail(c, st, b, "claiming runs");
			goto out;
		}
		int64_t rows = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			const char *id = (const char *)sqlite3_column_text(st, 0);
			const char *wf = (const char *)sqlite3_column_text(st, 1);
			const char *key = (const char *)sqlite3_column_text(st, 2);
			const char *prev = (const char *)sqlite3_column_text(st, 3);
			const char *at = (const char *)sqlite3_column_text(st, 5);
			if (!id || !wf || !key || !prev || !at) {
				sqlite3_reset(st);
				goto oom;
			}
			prio = sqlite3_column_int(st, 4);
			snprintf(due, sizeof(due), "%s", at);
			snprintf(after, sizeof(after), "%s", id);
			int ok = flow ? dura_flow_admit(flow, wf, key) : 1;
			if (ok < 0) {
				sqlite3_reset(st);
				rc = DURA_ENOMEM;
				goto out;
			}
			if (!ok)
				continue;
			sq_pick *p = &picks[*npicks];
			p->run_id = dura_strdup(id);
			p->prev = dura_strdup(prev);
			if (!p->run_id || !p->prev) {
				dura_free(p->run_id);
				dura_free(p->prev);
				sqlite3_reset(st);
				goto oom;
			}
			if (++*npicks == req->max)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = sq_fail(c, rc, "claiming runs");
			sqlite3_reset(st);
			goto out;
		}
		sqlite3_reset(st);
		rc = 0;
		if (*npicks == req->max || rows < page || !flow)
			break;
	}
	rc = 0;
	goto out;
oom:
	rc = dura_error_oom(SQ);
out:
	dura_free(names);
	return rc;
}

/* The live leases, per workflow and key, into the ledger. */
static int claim_count(sq_store *s, sq_conn *c, dura_flow *flow, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_FLOW_COUNT, &st), b;
	if (rc)
		return rc;
	if ((b = bind_text(st, 1, now_txt)) != 0)
		return bind_fail(c, st, b, "counting leases");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *wf = (const char *)sqlite3_column_text(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 1);
		if (!wf || !key) {
			sqlite3_reset(st);
			return dura_error_oom(SQ);
		}
		if ((rc = dura_flow_count(flow, wf, key, sqlite3_column_int64(st, 2))) != 0) {
			sqlite3_reset(st);
			return rc;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = sq_fail(c, rc, "counting leases");
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/*
 * A claim is one write transaction (BEGIN IMMEDIATE): counting the live
 * leases, choosing the runs and leasing them is one step, so no run is
 * claimed twice and no limit exceeded, here or in another process. The
 * runs are leased one UPDATE each, in claim order, which is the order
 * they are handed back in.
 */
static int sq_claim(void *impl, const dura_claim *req, dura_record_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], exp_txt[24];
	dura_flow *flow = NULL;
	sq_pick *picks = NULL;
	size_t npicks = 0;
	int64_t now = dura_now_ms();
	int rc = dura_flow_new(&flow, req, SQ);
	if (rc)
		return rc;
	if (!(picks = dura_calloc(req->max, sizeof(*picks)))) {
		dura_flow_free(flow);
		return dura_error_oom(SQ);
	}
	if ((rc = pool_get(s, &c)) != 0) {
		dura_free(picks);
		dura_flow_free(flow);
		return rc;
	}
	fmt_time(now_txt, now);
	fmt_time(exp_txt, dura__add_ms(now, req->lease_ms));
	if ((rc = tx_begin(s, c)) == 0 && (!flow || (rc = claim_count(s, c, flow, now_txt)) == 0))
		rc = claim_pick(s, c, req, flow, now_txt, picks, &npicks);
	if (rc == 0 && npicks && !(out->items = dura_calloc(npicks, sizeof(*out->items))))
		rc = dura_error_oom(SQ);
	for (size_t i = 0; rc == 0 && i < npicks; i++) {
		int b;
		dura_record *r = NULL;
		if ((rc = prep(s, c, ST_CLAIM_ONE, &st)) != 0)
			break;
		if ((b = bind_text(st, 1, req->owner)) || (b = bind_text(st, 2, exp_txt)) ||
		    (b = bind_text(st, 3, picks[i].run_id))) {
			rc = bind_fail(c, st, b, "claiming runs");
			break;
		}
		if ((rc = fetch(c, st, DURA_SQL_RECORD, (void **)&r, "claiming runs")) != 0)
			break;
		out->items[out->count++] = *r;
		dura_free(r);
		if (req->taken_over)
			req->taken_over[i] = dura_flow_taken_over(picks[i].prev, req->owner);
	}
	if (rc == 0 && (rc = tx_commit(s, c)) == 0) {
		/* done */
	} else {
		tx_rollback(s, c);
		dura_record_list_free(out);
		if (req->taken_over)
			memset(req->taken_over, 0, req->max * sizeof(*req->taken_over));
	}
	pool_put(s, c);
	for (size_t i = 0; i < npicks; i++) {
		dura_free(picks[i].run_id);
		dura_free(picks[i].prev);
	}
	dura_free(picks);
	dura_flow_free(flow);
	return rc;
}

static int sq_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                         int64_t lease_ms, dura_record_list *out)
{
	return dura_flow_claim_runs(sq_claim, impl, SQ, owner, workflows, nworkflows, max, lease_ms, out);
}

/* A lease update that matched nothing: why not. */
static int lease_miss(sq_store *s, sq_conn *c, const char *run_id, const char *owner)
{
	sqlite3_stmt *st;
	int rc = prep(s, c, ST_LEASE_OWNER, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, run_id)) != 0)
		return bind_fail(c, st, rc, "reading a lease");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(st, 0);
		if (holder && *holder)
			rc = dura_sql_err_leased_by(SQ, run_id, holder, owner);
		else
			rc = dura_sql_err_not_leased(SQ, run_id, owner);
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = sq_fail(c, rc, "reading a lease");
	}
	sqlite3_reset(st);
	return rc;
}

static int lease_op(sq_store *s, int id, const char *run_id, const char *owner, int64_t lease_ms)
{
	sq_conn *c;
	sqlite3_stmt *st;
	char exp_txt[24];
	int changes = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, id, &st)) == 0) {
		const char *what = id == ST_LEASE_EXTEND ? "extending a lease" : "releasing a lease";
		int b;
		if (id == ST_LEASE_EXTEND) {
			int64_t now = dura_now_ms();
			fmt_time(exp_txt, dura__add_ms(now, lease_ms));
		}
		/* LEASE_EXTEND: (expiry, run_id, owner); LEASE_RELEASE: (run_id, owner) */
		int o = id == ST_LEASE_EXTEND;
		if ((o && (b = bind_text(st, 1, exp_txt))) || (b = bind_text(st, 1 + o, run_id)) ||
		    (b = bind_text(st, 2 + o, owner)))
			rc = bind_fail(c, st, b, what);
		else
			rc = write_one(c, st, what, &changes);
		if (rc == 0 && changes == 0)
			rc = lease_miss(s, c, run_id, owner);
	}
	pool_put(s, c);
	return rc;
}

static int sq_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	return lease_op(impl, ST_LEASE_EXTEND, run_id, owner, lease_ms);
}

static int sq_release_lease(void *impl, const char *run_id, const char *owner)
{
	return lease_op(impl, ST_LEASE_RELEASE, run_id, owner, 0);
}

/* A worker's heartbeat: every lease of the batch in one transaction, so
 * the write lock is taken once, not once per run. */
static int sq_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                            int *codes)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char exp_txt[24];
	int64_t now = dura_now_ms();
	fmt_time(exp_txt, dura__add_ms(now, lease_ms));
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = tx_begin(s, c)) == 0) {
		for (size_t i = 0; rc == 0 && i < n; i++) {
			int changes = 0, b;
			codes[i] = 0;
			if ((rc = prep(s, c, ST_LEASE_EXTEND, &st)) != 0)
				break;
			/* LEASE_EXTEND: (expiry, run_id, owner) */
			if ((b = bind_text(st, 1, exp_txt)) || (b = bind_text(st, 2, run_ids[i])) || (b = bind_text(st, 3, owner)))
				rc = bind_fail(c, st, b, "extending leases");
			else
				rc = write_one(c, st, "extending leases", &changes);
			if (rc == 0 && changes == 0) {
				int why = lease_miss(s, c, run_ids[i], owner);
				if (why == DURA_ECONFLICT || why == DURA_ENOTFOUND)
					codes[i] = why;
				else
					rc = why;
			}
		}
		if (rc == 0)
			rc = tx_commit(s, c);
		else
			tx_rollback(s, c);
	}
	pool_put(s, c);
	if (rc == 0)
		dura_error_clear(); /* the codes tell which leases are lost */
	return rc;
}

/* ---- outbox -------------------------------------------------------------------------- */

static int sq_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_OUTBOX_POLL, &st)) == 0) {
		int b = bind_int64(st, 1, (int64_t)limit);
		rc = b ? bind_fail(c, st, b, "polling the outbox")
		       : collect(c, st, DURA_SQL_EVENT, (void **)&out->items, &out->count, "polling the outbox");
	}
	pool_put(s, c);
	return rc;
}

static int sq_outbox_ack(void *impl, const char *event_id)
{
	return delete_by(impl, ST_OUTBOX_ACK, event_id, "outbox event %s not found (already acknowledged?)");
}

/* ---- raw SQL ------------------------------------------------------------------------- */

struct exec_adapter {
	dura_row_cb cb;
	void *payload;
	int stopped;
};

static int exec_row(void *p, int ncols, char **values, char **names)
{
	struct exec_adapter *a = p;
	if (a->cb(ncols, values, names, a->payload) != 0) {
		a->stopped = 1;
		return 1;
	}
	return 0;
}

static int sq_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	sq_store *s = impl;
	sq_conn *c;
	struct exec_adapter a = {cb, payload, 0};
	char *err = NULL;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = sqlite3_exec(c->db, sql, cb ? exec_row : NULL, &a, &err);
	if (rc == SQLITE_OK || (rc == SQLITE_ABORT && a.stopped)) {
		rc = 0;
	} else {
		int code = code_of(rc) == DURA_EBUSY ? DURA_EBUSY : DURA_ERROR;
		rc = dura_error_set_native(code, SQ, sqlite3_extended_errcode(c->db), NULL, "SQL failed: %s",
		                           err ? err : sqlite3_errstr(rc));
	}
	sqlite3_free(err);
	/* whatever the SQL left open is not handed to the next caller
	 * (pool_put rolls back an open transaction) */
	pool_put(s, c);
	return rc;
}

/* ---- the worker registry (sql/workers.h decodes its rows) --------------------------------- */

static int sq_worker_put(void *impl, const dura_worker_info *w)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], dead_txt[24];
	int64_t now = dura_now_ms();
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_WORKER_PUT, &st)) == 0) {
		fmt_time(now_txt, now);
		fmt_time(dead_txt, now + w->lease_ms);
		int b;
		if ((b = bind_text(st, 1, w->id)) || (b = bind_text(st, 2, w->name)) || (b = bind_text(st, 3, w->host)) ||
		    (b = bind_int64(st, 4, w->pid)) || (b = bind_int(st, 5, w->threads)) ||
		    (b = bind_int64(st, 6, w->lease_ms)) || (b = bind_text(st, 7, w->workflows)) ||
		    (b = bind_int64(st, 8, w->held)) || (b = bind_text(st, 9, now_txt)) || (b = bind_text(st, 10, now_txt)) ||
		    (b = bind_text(st, 11, dead_txt)))
			rc = bind_fail(c, st, b, "registering a worker");
		else
			rc = write_one(c, st, "registering a worker", NULL);
	}
	pool_put(s, c);
	return rc;
}

static int sq_worker_delete(void *impl, const char *worker_id)
{
	return delete_by(impl, ST_WORKER_DELETE, worker_id, "worker %s is not registered");
}

static int sq_worker_list(void *impl, dura_worker_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_WORKER_LIST, &st)) == 0) {
		sq_cursor k = {c, st, "listing workers"};
		while ((rc = sq_next(&k)) == 1) {
			if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) != 0) {
				rc = dura_error_oom(SQ);
				break;
			}
			if ((rc = dura_sql_row_worker(SQ_ROW(st), &out->items[out->count])) != 0)
				break;
			out->count++;
		}
		sqlite3_reset(st);
		out->now = dura_now_ms();
	}
	pool_put(s, c);
	if (rc)
		dura_worker_list_free(out);
	return rc;
}

static int sq_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char before[24];
	int changes = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_WORKER_PRUNE, &st)) == 0) {
		fmt_time(before, dura_now_ms() - dead_for_ms);
		int b = bind_text(st, 1, before);
		rc = b ? bind_fail(c, st, b, "pruning workers") : write_one(c, st, "pruning workers", &changes);
	}
	pool_put(s, c);
	*count = rc == 0 ? changes : 0;
	return rc;
}

/* ---- durable waiting: signals and wakes (contract version 5) ------------------------ */

/*
 * A signal and the wake it causes are one write transaction (BEGIN
 * IMMEDIATE): no commit of the run can start waiting between the insert
 * and the wake, in this process or another, so a signal is never missed.
 */
static int signal_send_tx(sq_store *s, sq_conn *c, const char *signal_id, const char *run_id, const char *name,
                          const char *payload)
{
	int cur;
	int64_t version;
	char now_txt[24];
	sqlite3_stmt *st;
	/* the run that waits for it waits for "signal:" + name (the core
	 * checked the name: at most DURA_MAX_NAME_LEN bytes) */
	char wait[sizeof("signal:") + DURA_MAX_NAME_LEN];
	if ((size_t)snprintf(wait, sizeof(wait), "signal:%s", name) >= sizeof(wait))
		return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL, "signal name %.40s... is longer than %d bytes", name,
		                             DURA_MAX_NAME_LEN);
	int rc = tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = run_state_of(s, c, run_id, &cur, &version)) != 0)
		goto fail;
	if (cur == DURA_RUN_COMPLETED || cur == DURA_RUN_FAILED || cur == DURA_RUN_CANCELLED ||
	    cur == DURA_RUN_DATA_DELETED) {
		rc = dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
		                           "cannot send signal %s to run %s: the run is %s (it has ended)", name, run_id,
		                           dura_run_state_name(cur));
		goto fail;
	}
	fmt_time(now_txt, dura_now_ms());
	if ((rc = prep(s, c, ST_SIGNAL_INSERT, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, signal_id)) || (b = bind_text(st, 2, run_id)) || (b = bind_text(st, 3, name)) ||
	    (b = bind_text(st, 4, payload ? payload : "null")) || (b = bind_text(st, 5, now_txt))) {
		rc = bind_fail(c, st, b, "sending a signal");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = 0;
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = dura_error_set_native(DURA_EEXISTS, SQ, rc, NULL, "signal %s already exists", signal_id);
	} else {
		rc = sq_fail(c, rc, "sending a signal");
	}
	sqlite3_reset(st);
	if (rc)
		goto fail;
	if ((rc = wake_tx(s, c, run_id, wait, now_txt, NULL)) != 0)
		goto fail;
	return tx_commit(s, c);
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = signal_send_tx(s, c, signal_id, run_id, name, payload);
	pool_put(s, c);
	return rc;
}

static int sq_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_SIGNAL_NEXT, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, run_id)) || (b = bind_text(st, 2, name)))
			rc = bind_fail(c, st, b, "reading a signal");
		else
			rc = fetch(c, st, DURA_SQL_SIGNAL, (void **)out, "reading a signal");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "run %s has no pending signal %s", run_id, name);
	return rc;
}

static int sq_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_SIGNAL_LIST, &st)) == 0) {
		int b = bind_text(st, 1, run_id);
		rc = b ? bind_fail(c, st, b, "listing signals")
		       : collect(c, st, DURA_SQL_SIGNAL, (void **)&out->items, &out->count, "listing signals");
	}
	pool_put(s, c);
	return rc;
}

/* One UPDATE, atomic on its own. SQLite cannot reach a worker of another
 * process (no wait_ready): the run is due now, and a claim finds it. */
static int sq_wake(void *impl, const char *run_id, const char *wait)
{
	sq_store *s = impl;
	sq_conn *c;
	char now_txt[24];
	int woke = 0, rc = pool_get(s, &c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	rc = wake_tx(s, c, run_id, wait, now_txt, &woke);
	pool_put(s, c);
	if (rc == 0 && !woke)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "no running run %s waits for %s", run_id, wait);
	return rc;
}

/* ---- durable waiting: schedules ---------------------------------------------------- */

/* Insert or replace by name; on replace created_at is kept (the upsert
 * does not set it). */
static int sq_schedule_put(void *impl, const dura_schedule *sch)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], tick_txt[24];
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_SCHEDULE_PUT, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		fmt_time(tick_txt, sch->next_tick);
		int b;
		if ((b = bind_text(st, 1, sch->name)) || (b = bind_text(st, 2, sch->cron)) ||
		    (b = bind_text(st, 3, sch->zone ? sch->zone : "UTC")) || (b = bind_text(st, 4, sch->workflow_name)) ||
		    (b = bind_text(st, 5, sch->state ? sch->state : "{}")) || (b = bind_int(st, 6, sch->catch_up)) ||
		    (b = bind_text(st, 7, tick_txt)) || (b = bind_text(st, 8, now_txt)) || (b = bind_text(st, 9, now_txt)))
			rc = bind_fail(c, st, b, "saving a schedule");
		else
			rc = write_one(c, st, "saving a schedule", NULL);
	}
	pool_put(s, c);
	return rc;
}

static int sq_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_SCHEDULE_GET, &st)) == 0) {
		int b = bind_text(st, 1, name);
		rc = b ? bind_fail(c, st, b, "reading a schedule")
		       : fetch(c, st, DURA_SQL_SCHEDULE, (void **)out, "reading a schedule");
	}
	pool_put(s, c);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "schedule %s not found", name);
	return rc;
}

static int sq_schedule_delete(void *impl, const char *name)
{
	return delete_by(impl, ST_SCHEDULE_DELETE, name, "schedule %s not found");
}

static int sq_schedule_list(void *impl, dura_schedules *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = prep(s, c, ST_SCHEDULE_LIST, &st)) == 0)
		rc = collect(c, st, DURA_SQL_SCHEDULE, (void **)&out->items, &out->count, "listing schedules");
	pool_put(s, c);
	return rc;
}

/* The compare-and-swap of workers firing a schedule, and why it missed,
 * in one write transaction: a schedule deleted meanwhile is ENOTFOUND,
 * one another worker advanced is ECONFLICT. */
static int advance_tx(sq_store *s, sq_conn *c, const char *name, int64_t from, int64_t to)
{
	char now_txt[24], from_txt[24], to_txt[24];
	sqlite3_stmt *st;
	int changes = 0, b, rc = tx_begin(s, c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	fmt_time(from_txt, from);
	fmt_time(to_txt, to);
	if ((rc = prep(s, c, ST_SCHEDULE_ADVANCE, &st)) != 0)
		goto fail;
	if ((b = bind_text(st, 1, to_txt)) || (b = bind_text(st, 2, now_txt)) || (b = bind_text(st, 3, name)) ||
	    (b = bind_text(st, 4, from_txt))) {
		rc = bind_fail(c, st, b, "advancing a schedule");
		goto fail;
	}
	if ((rc = write_one(c, st, "advancing a schedule", &changes)) != 0)
		goto fail;
	if (changes == 0) {
		if ((rc = prep(s, c, ST_SCHEDULE_GET, &st)) != 0)
			goto fail;
		if ((b = bind_text(st, 1, name)) != 0) {
			rc = bind_fail(c, st, b, "reading a schedule");
			goto fail;
		}
		rc = fetch(c, st, DURA_SQL_SCHEDULE, NULL, "reading a schedule");
		if (rc == 0)
			rc = dura_error_set_native(DURA_ECONFLICT, SQ, 0, NULL,
			                           "schedule %s is no longer at tick %s (another worker advanced it)", name,
			                           from_txt);
		else if (rc == DURA_ENOTFOUND)
			rc = dura_error_set_native(DURA_ENOTFOUND, SQ, 0, NULL, "schedule %s not found", name);
		goto fail;
	}
	return tx_commit(s, c);
fail:
	tx_rollback(s, c);
	return rc;
}

static int sq_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	rc = advance_tx(s, c, name, from, to);
	pool_put(s, c);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__sqlite_ops = {
	.version = 5,
	.scheme = "sqlite",
	.caps = DURA_CAP_RETURNING | DURA_CAP_JSON | DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL,
	.open = sq_open,
	.close = sq_close,
	.ping = sq_ping,
	.info = sq_info,
	.stats = sq_stats,
	.migrate = sq_migrate,
	.create_run = sq_create_run,
	.get_run = sq_get_run,
	.latest_run = sq_latest_run,
	.list_runs = sq_list_runs,
	.set_run_state = sq_set_run_state,
	.delete_run_data = sq_delete_run_data,
	.commit = sq_commit,
	.commit_batch = sq_commit_batch,
	.history = sq_history,
	.get_step = sq_get_step,
	.load_latest = sq_load_latest,
	.checkpoint_save = sq_checkpoint_save,
	.checkpoint_load = sq_checkpoint_load,
	.checkpoint_list = sq_checkpoint_list,
	.checkpoint_delete = sq_checkpoint_delete,
	.cache_get = sq_cache_get,
	.cache_put = sq_cache_put,
	.cache_claim = sq_cache_claim,
	.cache_release = sq_cache_release,
	.cache_delete = sq_cache_delete,
	.cache_purge_expired = sq_cache_purge_expired,
	.cache_list = sq_cache_list,
	.cache_stats = sq_cache_stats,
	.claim_runs = sq_claim_runs,
	.extend_lease = sq_extend_lease,
	.release_lease = sq_release_lease,
	.outbox_poll = sq_outbox_poll,
	.outbox_ack = sq_outbox_ack,
	.exec_sql = sq_exec_sql,
	.wait_change = NULL,
	.atfork_child = sq_atfork_child,
	.extend_leases = sq_extend_leases,
	.claim = sq_claim,
	/* version 4: the worker registry */
	.worker_put = sq_worker_put,
	.worker_delete = sq_worker_delete,
	.worker_list = sq_worker_list,
	.worker_prune = sq_worker_prune,
	/* version 5: durable waiting */
	.signal_send = sq_signal_send,
	.signal_next = sq_signal_next,
	.signal_list = sq_signal_list,
	.wake = sq_wake,
	.schedule_put = sq_schedule_put,
	.schedule_get = sq_schedule_get,
	.schedule_delete = sq_schedule_delete,
	.schedule_list = sq_schedule_list,
	.schedule_advance = sq_schedule_advance,
};
