/*
 * sqlite.h - the SQLite store (sqlite:PATH), the embedded default: what
 * its files share.
 *
 * The store is twelve files, one concern each:
 *   conn.c     SQLite's result codes into dura's, opening a connection
 *              (busy timeout, synchronous, NOW(), WAL mode), the pool's
 *              operations and the fork handler
 *   stmt.c     statements prepared on first use and stepped,
 *              transactions, the column accessors sql/rows.c decodes
 *              through, fetching and collecting rows, a DELETE by one key
 *   schema.c   the schema version and the numbered migrations
 *   runs.c     creating, reading and listing runs, run-state changes and
 *              the erasing of a run's data
 *   commit.c   step commits, one or a batch (a savepoint an item)
 *   steps.c    step reads, checkpoints and the outbox
 *   cache.c    the step cache and its single-flight claims
 *   leases.c   claims, leases and the worker registry
 *   waiting.c  durable waiting: wakes, signals and schedules
 *   fleet.c    workflow versions (the versions engines register, counts
 *              of runs, moving a run to another version) and retention
 *              (batches of ended runs and of the outbox pruned); the
 *              gauges
 *   import.c   import: a run inserted whole as another store had it, an
 *              outbox event as it was, the outbox page by page
 *   store.c    URL options, open and close, ping, info, stats, migrate,
 *              raw SQL, and the vtable (dura__sqlite_ops)
 * This header holds the statement catalog, the structures, the binding
 * helpers (at its end: the sqlite3_bind_* functions are poisoned after
 * them) and the functions the files call across; what one file alone
 * uses stays static in it. Names shared between files are dsq_*.
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
 * Workflow versions and retention (contract version 6) are a run's and a
 * step's workflow_version, the versions engines register
 * (dura_workflows) and batches of pruning, each one write transaction. A
 * run moved to another version, like a woken one, is found by the next
 * claim.
 *
 * Import (contract version 7) is one write transaction a run: its
 * record as it was (the lease left behind), its steps, checkpoints and
 * signals, refused whole by the unique keys when any of it is there.
 *
 * The gauges (contract version 8) are one read statement of counts, each
 * over an index; the runs that wait have one of their own (migration 6).
 */
#ifndef DURA_STORE_SQLITE_H
#define DURA_STORE_SQLITE_H

#include "dura/store.h"
#include "../../internal.h"
#include "../../util.h"
#include "../sql/catalog.h"
#include "../sql/commit.h"
#include "../sql/dialect.h"
#include "../sql/errors.h"
#include "../sql/pool.h"
#include "../sql/schema.h"
#include "../sql/rows.h"
#include "../flow.h"
#include "../sql/workers.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SQ "sqlite"
#define SQ_SCHEMA_VERSION 6 /* the schema this library writes */
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
 * under the database-wide write lock instead of a locked read; the gauges
 * name their indexes (INDEXED BY: without statistics SQLite's planner
 * would count the live leases on by_run_state, every running run).
 */

#define SQ_INDEXED_BY(name) "INDEXED BY {p}" #name
#define STATEMENTS(X)                                                                                              \
	SQL_SHARED_STATEMENTS(X)                                                                                   \
	X(OUTBOX_PRUNE, SQL_OUTBOX_PRUNE)                                                                          \
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
	/* a record without a workflow version takes the commit's (?11, ?13) */                                  \
	X(COMMIT_UPDATE, "UPDATE {p}workflow_records SET object = ?3, status = ?4, error = ?5, attempt = ?6, "     \
	                 "next_run_at = ?7, updated_at = ?8, version = version + 1, step_no = step_no + ?9, "      \
	                 "wait_for = ?10, "                                                                        \
	                 "workflow_version = CASE WHEN workflow_version = '' THEN ?11 ELSE workflow_version END "  \
	                 "WHERE run_id = ?1 AND version = ?2 RETURNING step_no, workflow_name, run_state")         \
	X(COMMIT_UPDATE_FULL, "UPDATE {p}workflow_records SET object = ?3, status = ?4, error = ?5, attempt = ?6, " \
	                      "next_run_at = ?7, updated_at = ?8, version = version + 1, step_no = step_no + ?9, " \
	                      "run_state = coalesce(?10, run_state), "                                             \
	                      "lease_owner = CASE WHEN ?11 THEN '' ELSE lease_owner END, "                         \
	                      "lease_expires_at = CASE WHEN ?11 THEN NULL ELSE lease_expires_at END, "             \
	                      "wait_for = ?12, "                                                                   \
	                      "workflow_version = CASE WHEN workflow_version = '' THEN ?13 ELSE workflow_version END " \
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
	X(CLAIM_PAGE, "SELECT run_id, workflow_name, concurrency_key, lease_owner, priority, next_run_at, "         \
	              "workflow_version "                                                                          \
	              "FROM {p}workflow_records WHERE run_state = 2 AND next_run_at <= ?1 "                        \
	              "AND (lease_owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?1) "              \
	              "AND (?2 IS NULL OR workflow_name IN (SELECT value FROM json_each(?2))) "                    \
	              "AND (priority < ?3 OR (priority = ?3 AND (next_run_at > ?4 OR "                             \
	              "(next_run_at = ?4 AND run_id > ?5)))) "                                                     \
	              "ORDER BY priority DESC, next_run_at, run_id LIMIT ?6")                                      \
	X(CLAIM_ONE, "UPDATE {p}workflow_records SET lease_owner = ?1, lease_expires_at = ?2, "                    \
	             "version = version + 1 WHERE run_id = ?3 RETURNING " REC_COLS)                                \
	/* outbox */                                                                                               \
	/* workflow versions (contract version 6): a run moved, CAS on its version */                             \
	X(RUN_SET_VERSION, "UPDATE {p}workflow_records SET workflow_version = ?3, version = version + 1, "         \
	                   "updated_at = ?4 WHERE run_id = ?1 AND version = ?2 RETURNING " REC_COLS)               \
	/* the gauges (contract version 8), each count on the index it is for */                                 \
	X(GAUGES, GAUGES_SELECT(SQ_INDEXED_BY))                                                                    \

#define X_ENUM(name, sql) ST_##name,
#define X_SQL(name, sql) sql,
#define X_NAME(name, sql) #name,
enum { STATEMENTS(X_ENUM) ST__COUNT };

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
	uint32_t caps;
	char *sql[ST__COUNT]; /* dsq_st_sql with the prefix in */

	dura_sql_pool pool; /* pool_max connections, all kept when idle */

	char server_version[48];
	char notes[512];
} sq_store;

/* ---- rows --------------------------------------------------------------------- */

/* st's current row, as sql/rows.c's decoders take it */
#define SQ_ROW(st) (&(const dura_sql_row){&dsq_row_ops, (st)})

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

/* ---- conn.c ------------------------------------------------------------------ */

int dsq_code_of(int rc);
int dsq_fail(sq_conn *c, int rc, const char *what);
void dsq_conn_close(sq_conn *c);
int dsq_conn_open(sq_store *s, sq_conn **out);
int dsq_conn_wal(sq_conn *c);
extern const dura_sql_pool_ops dsq_pool_ops;
int dsq_pool_get(sq_store *s, sq_conn **out);
void dsq_pool_put(sq_store *s, sq_conn *c);
void dsq_atfork_child(void *impl);

/* ---- stmt.c ------------------------------------------------------------------ */

extern const char *const dsq_st_sql[ST__COUNT]; /* the catalog's SQL, and each statement's name */
extern const char *const dsq_st_name[ST__COUNT];
char *dsq_expand(const char *tmpl, const char *prefix);
int dsq_prep(sq_store *s, sq_conn *c, int id, sqlite3_stmt **out);
int dsq_run_done(sq_conn *c, sqlite3_stmt *st, const char *what);
int dsq_write_one(sq_conn *c, sqlite3_stmt *st, const char *what, int *changes);
int dsq_run_simple(sq_store *s, sq_conn *c, int id);
int dsq_tx_begin(sq_store *s, sq_conn *c);
void dsq_tx_rollback(sq_store *s, sq_conn *c);
int dsq_tx_commit(sq_store *s, sq_conn *c);
extern const dura_sql_row_ops dsq_row_ops;
int dsq_next(void *cursor);
int dsq_fetch(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **out, const char *what);
int dsq_collect(sq_conn *c, sqlite3_stmt *st, dura_sql_kind kind, void **items, size_t *count, const char *what);
int dsq_delete_by(void *impl, int id, const char *key, const char *fmt);

/* ---- schema.c ---------------------------------------------------------------- */

int dsq_read_schema_version(sq_store *s, sq_conn *c, int *out);
int dsq_migrate_conn(sq_store *s, sq_conn *c, int *from, int *to);
int dsq_check_and_migrate(sq_store *s, sq_conn *c, const dura_store_options *opts);

/* ---- runs.c ------------------------------------------------------------------ */

int dsq_run_state_of(sq_store *s, sq_conn *c, const char *run_id, int *state, int64_t *version);
int dsq_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out);
int dsq_get_run(void *impl, const char *run_id, dura_record **out);
int dsq_latest_run(void *impl, const char *wf, const char *fid, dura_record **out);
int dsq_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out);
int dsq_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version);
int dsq_delete_run_data(void *impl, const char *run_id);
int dsq_erase_run(sq_store *s, sq_conn *c, const char *run_id, int64_t *version);

/* ---- commit.c ---------------------------------------------------------------- */

int dsq_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res);
int dsq_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                     dura_commit_result *res);

/* ---- steps.c ----------------------------------------------------------------- */

int dsq_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out);
int dsq_get_step(void *impl, const char *run_id, int64_t step, dura_step **out);
int dsq_load_latest(void *impl, const char *run_id, dura_step **out);
int dsq_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state);
int dsq_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out);
int dsq_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out);
int dsq_checkpoint_delete(void *impl, const char *cp_id);
int dsq_outbox_poll(void *impl, size_t limit, dura_event_list *out);
int dsq_outbox_ack(void *impl, const char *event_id);

/* ---- cache.c ----------------------------------------------------------------- */

int dsq_cache_get(void *impl, const char *key, dura_cache_entry **out);
int dsq_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                  const char *metadata, int64_t ttl_ms);
int dsq_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms);
int dsq_cache_release(void *impl, const char *key, const char *owner);
int dsq_cache_delete(void *impl, const char *key);
int dsq_cache_purge_expired(void *impl, int64_t *count);
int dsq_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out);
int dsq_cache_stats(void *impl, dura_cache_stats *out);

/* ---- leases.c ---------------------------------------------------------------- */

int dsq_claim(void *impl, const dura_claim *req, dura_record_list *out);
int dsq_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                   int64_t lease_ms, dura_record_list *out);
int dsq_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms);
int dsq_release_lease(void *impl, const char *run_id, const char *owner);
int dsq_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                      int *codes);
int dsq_worker_put(void *impl, const dura_worker_info *w);
int dsq_worker_delete(void *impl, const char *worker_id);
int dsq_worker_list(void *impl, dura_worker_list *out);
int dsq_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count);

/* ---- waiting.c --------------------------------------------------------------- */

int dsq_wake_tx(sq_store *s, sq_conn *c, const char *run_id, const char *wait, const char *now_txt, int *woke);
int dsq_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload);
int dsq_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out);
int dsq_signal_list(void *impl, const char *run_id, dura_signal_list *out);
int dsq_wake(void *impl, const char *run_id, const char *wait);
int dsq_schedule_put(void *impl, const dura_schedule *sch);
int dsq_schedule_get(void *impl, const char *name, dura_schedule **out);
int dsq_schedule_delete(void *impl, const char *name);
int dsq_schedule_list(void *impl, dura_schedules *out);
int dsq_schedule_advance(void *impl, const char *name, int64_t from, int64_t to);

/* ---- fleet.c ---------------------------------------------------------------- */

int dsq_workflow_put(void *impl, const char *name, const char *version, const char *definition);
int dsq_workflow_list(void *impl, const char *name, dura_workflow_def_list *out);
int dsq_run_counts(void *impl, const char *workflow, dura_run_count_list *out);
int dsq_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                        dura_record **out);
int dsq_prune_runs(void *impl, const dura_prune *req, int64_t *count);
int dsq_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count);
int dsq_gauges(void *impl, dura_store_gauges *out); /* contract version 8 */

/* ---- import.c --------------------------------------------------------------- */

int dsq_import_run(void *impl, const dura_import_run *r);
int dsq_import_event(void *impl, const dura_event *ev);
int dsq_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out);

/* ---- values ----------------------------------------------------------------- */

static inline void fmt_time(char out[24], int64_t ms)
{
	dura_time_format(out, ms);
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
SQ_CHECKED static inline int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* n bytes of text copied by SQLite (the source goes away before the step). */
SQ_CHECKED static inline int bind_text_copy(sqlite3_stmt *st, int i, const char *v, int n)
{
	return sqlite3_bind_text(st, i, v, n, SQLITE_TRANSIENT);
}

SQ_CHECKED static inline int bind_int(sqlite3_stmt *st, int i, int v)
{
	return sqlite3_bind_int(st, i, v);
}

/* An int, 0 as SQL NULL. */
SQ_CHECKED static inline int bind_int_or_null(sqlite3_stmt *st, int i, int v)
{
	return v ? sqlite3_bind_int(st, i, v) : sqlite3_bind_null(st, i);
}

SQ_CHECKED static inline int bind_int64(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

SQ_CHECKED static inline int bind_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
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
 * error from SQLite's code rc, as dsq_fail() does: SQLITE_TOOBIG (a value
 * over SQLITE_LIMIT_LENGTH) is DURA_EINVAL naming the limit, SQLITE_NOMEM
 * DURA_ENOMEM, the extended code is the native code.
 */
static inline int bind_fail(sq_conn *c, sqlite3_stmt *st, int rc, const char *what)
{
	sqlite3_reset(st);
	return dsq_fail(c, rc, what);
}

#endif /* DURA_STORE_SQLITE_H */
