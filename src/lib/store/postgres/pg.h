/*
 * pg.h - the PostgreSQL store's internal header: what its files share.
 *
 * The store (postgres://, postgresql://, and libpq's keyword/value form)
 * is libpq glue over the shared SQL layer: sql/server.c runs the
 * operations every server store has, through the statement interface
 * this store gives (stmt.c); sql/pool.c and sql/run.c lend connections
 * and retry; sql/schema.c runs the migrations (schema.c has the DDL).
 * What is PostgreSQL's own:
 *
 *   conn.c    connecting (URL options into libpq keywords; PGPASSWORD,
 *             .pgpass and PGSERVICE work as for psql), the session (UTC,
 *             ISO dates, application_name, statement_timeout), what a
 *             failure means (SQLSTATE 40001/40P01 retry, a dead connection
 *             is replaced), transactions, the pool's and the retry loop's
 *             callbacks
 *   stmt.c    statements prepared once per connection, text parameters
 *             (bytes as binary), results and their column accessors
 *   schema.c  the tables (JSONB states, TIMESTAMPTZ(3) times, BYTEA cache
 *             values, the one-active-run rule as a partial unique index)
 *   commit.c  a step commit as one statement, so one round trip: the CAS
 *             UPDATE, the step and the outbox row in data-modifying CTEs
 *   notify.c  wait_change: LISTEN on one dedicated connection, shared by
 *             the waiters; a trigger notifies every change of a run
 *   store.c   options, open and close, info, claims (one UPDATE over a
 *             FOR UPDATE SKIP LOCKED selection), raw SQL and the vtable
 *             (workflow versions and retention are sql/fleet.c's,
 *             import sql/import.c's)
 *
 * Times cross the wire as text in UTC ("2026-12-01 10:00:00.123+00").
 */
#ifndef DURA_PG_H
#define DURA_PG_H

#include "dura/store.h"
#include "../../internal.h"
#include "../../util.h"
#include "../sql/catalog.h"
#include "../sql/commit.h"
#include "../sql/dialect.h"
#include "../sql/errors.h"
#include "../sql/exec.h"
#include "../sql/pool.h"
#include "../sql/rows.h"
#include "../sql/run.h"
#include "../sql/schema.h"
#include "../sql/server.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#define PG "postgres"
#define PG_SCHEMA_VERSION 6
#define PG_DEFAULT_POOL 25
#define PG_DEFAULT_IDLE 5
#define PG_DEFAULT_LIFETIME_MS (5 * 60 * 1000)
#define PG_DEFAULT_IDLE_MS (10 * 60 * 1000)
#define PG_DEFAULT_CONNECT_S 10
#define PG_BUSY_ATTEMPTS 6
#define PG_AGAIN_ATTEMPTS 1000
#define PG_MAX_TIME_MS 253402300799999LL /* 9999-12-31 23:59:59.999: four-digit years on the wire */
#define PG_MIN_SERVER 120000             /* PostgreSQL 12 */

/*
 * PostgreSQL's own statements. The commit is one statement (see
 * commit.c); the claim one UPDATE with a locked selection; the default
 * event data is assembled from the client's pieces so its bytes are the
 * core's, and the outbox keeps event data as JSON (as written) where
 * states are JSONB. A record without a workflow version takes the
 * commit's, which the step row keeps (contract version 6).
 */
#define PG_COMMIT_SQL                                                                                              \
	"WITH u AS (UPDATE {p}workflow_records SET object = CAST(? AS JSONB), status = ?, error = ?, wait_for = ?, "  \
	"workflow_version = CASE WHEN workflow_version = '' THEN ?:text ELSE workflow_version END, "                   \
	"attempt = ?, "                                                                                               \
	"next_run_at = ?, updated_at = ?, version = version + 1, step_no = step_no + ?:int, "                        \
	"run_state = COALESCE(?:int, run_state), "                                                                   \
	"lease_owner = CASE WHEN ?:int = 1 THEN '' ELSE lease_owner END, "                                           \
	"lease_expires_at = CASE WHEN ?:int = 1 THEN NULL ELSE lease_expires_at END "                                \
	"WHERE run_id = ? AND version = ? RETURNING run_id, workflow_name, step_no, run_state), "                    \
	"s AS (INSERT INTO {p}workflow_steps (run_id, step, node_id, state, created_at, workflow_version) "           \
	"SELECT run_id, step_no - 1, ?, CAST(? AS JSONB), ?, ?:text FROM u WHERE ?:int = 1), "                        \
	"e AS (INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "                  \
	"SELECT ?, workflow_name, run_id, ?, COALESCE(CAST(? AS JSON), CAST(?:text || "                               \
	"CASE WHEN ?:int = 1 THEN (step_no - 1)::text ELSE '-1' END || ?:text || run_state::text || '}' AS JSON)), " \
	"? FROM u WHERE ?:int = 1) "                                                                                  \
	"SELECT step_no, run_state FROM u"

/*
 * A batch of commits as one statement (commit.c): the commits arrive as
 * one JSON array (sql/commit.h, dura_sql_batch_json) read as a table; the
 * CAS UPDATE of every record whose version matches, then the step rows
 * and outbox rows of the updated ones; a commit whose version does not
 * match is not in u and writes nothing. The rows: each updated commit's
 * index and step_no.
 */
#define PG_COMMIT_MANY_SQL                                                                                         \
	"WITH j AS (SELECT * FROM json_to_recordset(CAST(? AS JSON)) AS x(i INT, r TEXT, v BIGINT, s TEXT, st TEXT, "  \
	"er TEXT, w TEXT, wv TEXT, a INT, nx BIGINT, ds INT, rs INT, rl INT, nd TEXT, ei TEXT, et TEXT, ed TEXT, "    \
	"sh TEXT, tl TEXT, "                                                                                          \
	"de INT)), "                                                                                                  \
	"u AS (UPDATE {p}workflow_records w SET object = CAST(j.s AS JSONB), status = j.st, error = j.er, "           \
	"wait_for = COALESCE(j.w, ''), "                                                                              \
	"workflow_version = CASE WHEN w.workflow_version = '' THEN COALESCE(j.wv, '') ELSE w.workflow_version END, "  \
	"attempt = j.a, next_run_at = TIMESTAMPTZ 'epoch' + j.nx * INTERVAL '1 millisecond', updated_at = ?:time, "   \
	"version = w.version + 1, step_no = w.step_no + j.ds, run_state = COALESCE(j.rs, w.run_state), "             \
	"lease_owner = CASE WHEN j.rl = 1 THEN '' ELSE w.lease_owner END, "                                           \
	"lease_expires_at = CASE WHEN j.rl = 1 THEN NULL ELSE w.lease_expires_at END "                                \
	"FROM j WHERE w.run_id = j.r AND w.version = j.v "                                                            \
	"RETURNING j.i, w.run_id, w.workflow_name, w.step_no, w.run_state), "                                         \
	"s AS (INSERT INTO {p}workflow_steps (run_id, step, node_id, state, created_at, workflow_version) "           \
	"SELECT u.run_id, u.step_no - 1, j.nd, CAST(j.s AS JSONB), ?:time, COALESCE(j.wv, '') "                       \
	"FROM u JOIN j ON j.i = u.i WHERE j.ds = 1), "                                                                \
	"e AS (INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "                  \
	"SELECT j.ei, u.workflow_name, u.run_id, j.et, COALESCE(CAST(j.ed AS JSON), CAST(j.sh || "                    \
	"CASE WHEN j.ds = 1 THEN (u.step_no - 1)::text ELSE '-1' END || j.tl || u.run_state::text || '}' AS JSON)), " \
	"?:time FROM u JOIN j ON j.i = u.i WHERE j.de = 1) "                                                          \
	"SELECT i, step_no FROM u"

/* the outbox's retention (sql/catalog.h) */
#define SQL_SERVER_OUTBOX_PRUNE SQL_OUTBOX_PRUNE

#define STATEMENTS(X)                                                                                              \
	SQL_SHARED_STATEMENTS(X)                                                                                   \
	SQL_SERVER_STATEMENTS(X)                                                                                   \
	X(SCHEMA_EXISTS, "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "           \
	                 "AND tablename = '{p}dura_schema'")                                                       \
	X(SCHEMA_RECORD, "INSERT INTO {p}dura_schema (version, applied_at, description) VALUES (?, now(), ?)")      \
	X(COMMIT_MANY, PG_COMMIT_MANY_SQL)                                                                         \
	X(COMMIT, PG_COMMIT_SQL)

#define X_ENUM(name, sql) ST_##name,
enum { STATEMENTS(X_ENUM) ST__COUNT };
#undef X_ENUM

typedef struct pg_conn {
	dura_sql_conn base; /* first: the pool's part (sql/pool.h) */
	PGconn *db;
	unsigned char prepared[ST__COUNT];
	int in_tx;
	int retryable;    /* the last failure was a serialization failure or deadlock */
	char sqlstate[6]; /* of the last failure, "" for none */
} pg_conn;

#define PG_NOTIFY_RING 256 /* notifications a waiter may fall behind by */
#define PG_NOTIFY_BATCH 64 /* notifications read at once */

/* The handle's LISTEN connection and the waiters sharing it (notify.c). */
typedef struct pg_listener {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	PGconn *db;   /* NULL: not open (yet, or since it was lost) */
	int driving;  /* a waiter is reading the socket for everyone */
	uint64_t seq; /* notifications read so far */
	uint64_t epoch; /* connections opened so far */
	uint64_t ready; /* "a run became claimable" notifications so far */
	char *ring[PG_NOTIFY_RING]; /* the run ids of the last notifications */
} pg_listener;

typedef struct pg_store {
	dura_sql_store base; /* first: what sql/server.c uses */
	/* libpq's connection keywords and values, NULL-terminated */
	const char **keys, **vals;
	char *kv_buf;
	char *prefix, *database, *user, *where; /* where: host:port, for messages */
	int pool_max, pool_idle;
	int64_t lifetime_ms, idle_ms;
	int skip_locked;

	/* the server, learned at the first connection */
	int server_num; /* 150018 for 15.18 */
	char server_version[160];
	uint32_t caps;
	char *sql[ST__COUNT];
	char notes[768];
	pg_listener listen;
} pg_store;

/* A statement's result as sql/exec.h reads it. */
typedef struct pg_res {
	PGresult *r;
	int row, nrows; /* row: the current one, -1 before the first */
	unsigned char *blob; /* the current row's decoded bytes (one BYTEA column at a time) */
	size_t blob_len;
	int blob_col;
} pg_res;

/* conn.c */
int dura_pg_fail(pg_store *s, pg_conn *c, PGresult *r, const char *what);
int dura_pg_conn_open(pg_store *s, pg_conn **out);
void dura_pg_conn_close(pg_conn *c);
int dura_pg_exec_simple(pg_store *s, pg_conn *c, const char *sql, const char *what);
extern const dura_sql_pool_ops dura_pg_pool_ops;
extern const dura_sql_driver dura_pg_driver;

int dura_pg_lost_commit(int *applied); /* the test hook (conn.c) */

/* stmt.c */
int dura_pg_expand_all(pg_store *s, const char *const *tmpl);
char *dura_pg_expand(pg_store *s, const char *tmpl);
extern const dura_sql_exec dura_pg_exec;
extern const dura_sql_row_ops dura_pg_row_ops;
int64_t dura_pg_parse_time(const char *t);

/* schema.c */
int dura_pg_read_schema_version(pg_store *s, pg_conn *c, int *out);
int dura_pg_check_and_migrate(pg_store *s, pg_conn *c, const dura_store_options *opts);
int dura_pg_migrate(pg_store *s, pg_conn *c, int *from, int *to);

/* notify.c */
void dura_pg_listener_init(pg_store *s);
void dura_pg_listener_atfork_child(pg_store *s);
void dura_pg_listener_close(pg_store *s);
int dura_pg_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms);
int dura_pg_wait_ready(void *impl, int64_t timeout_ms);

/* commit.c */
int dura_pg_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res);
int dura_pg_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                         dura_commit_result *res);

#endif
