/*
 * mysql.h - the MySQL/MariaDB store (mysql://, mariadb://, and the Go
 * driver's DSN user:pass@tcp(host:3306)/db), on MariaDB Connector/C: what
 * its files share.
 *
 * The store is five files, one concern each:
 *   conn.c     Connector/C's library and thread setup, connections and
 *              their session, the pool, transactions, the retry loop
 *              (dura_my_run_op()) and the classification of MySQL errors
 *   stmt.c     prepared statements: the {p} expansion, preparing on first
 *              use, binding parameters, running, fetching rows, the
 *              column accessors sql/rows.c decodes through, and DATETIME
 *              conversion
 *   schema.c   the schema version and the numbered migrations, with the
 *              text of the dura_commit procedure
 *   commit.c   step commits: through the procedure, in a transaction of
 *              several statements, in batches, and the check after a
 *              connection was lost while committing
 *   store.c    URL options, open and close, every other operation of the
 *              store contract, and the vtable (dura__mysql_ops); most
 *              operations are sql/server.c's, sql/workers.c's,
 *              sql/fleet.c's (workflow versions and retention) and
 *              sql/import.c's (import), shared with PostgreSQL
 * This header holds the statement catalog, the structures and the
 * functions the files call across; what one file alone uses stays static
 * in it. Names shared between files are dura_my_*.
 *
 * One handle owns a pool of connections (default 25 open, 5 idle, each
 * closed after 5 minutes of life or 10 idle, as the reference documents'
 * pool). Every connection prepares each statement once, on first use, and
 * keeps it; SQL is built with the table prefix when the store opens. A
 * connection is UTC (time_zone '+00:00', so the documents' NOW() SQL
 * compares with our DATETIME(3) columns), utf8mb4, READ COMMITTED, strict.
 * MYSQL_OPT_RECONNECT is never used: a lost connection is closed, the idle
 * ones with it (a restarted server killed them all), and the operation is
 * run again on a new one when that is safe (see dura_my_run_op()).
 *
 * Round trips (autocommit is on; a transaction is START TRANSACTION ...
 * COMMIT around prepared statements):
 *   commit            1: CALL dura_commit(...), a procedure created by
 *                        migration 2 that runs the transaction below in
 *                        the server. Where it cannot be used (a migrating
 *                        user without CREATE ROUTINE, a caller without
 *                        EXECUTE) the same transaction from here:
 *                     5: START, UPDATE (CAS on version; the new step_no
 *                        comes back in the OK packet via LAST_INSERT_ID),
 *                        INSERT step, INSERT outbox, COMMIT
 *                     4 with NO_EVENT, 1 with NO_STEP|NO_EVENT (no transaction);
 *                        a commit that consumes a signal or wakes a run
 *                        always takes the transaction, with a DELETE and
 *                        an UPDATE more
 *   commit_batch      on MariaDB 5 + 1 per 16 commits (batch.c: START, the
 *                        records locked and read, the UPDATEs, the step rows,
 *                        the outbox rows each one bulk execution, COMMIT);
 *                        elsewhere, and when a unique key breaks, 2 + 3 per
 *                        commit (one transaction, no savepoints: a commit
 *                        that fails after its UPDATE reruns the batch
 *                        without it)
 *   create_run        1 (INSERT; the one-active-run rule is a UNIQUE index)
 *   claim_runs        4 (START, SELECT ... FOR UPDATE SKIP LOCKED, UPDATE, COMMIT)
 *   reads             1
 *
 * Errors: deadlocks (1213) and lock wait timeouts (1205) rerun the whole
 * transaction with backoff, then give DURA_EBUSY. A connection lost before
 * COMMIT reruns the transaction on a new connection; lost during COMMIT
 * (or the CALL), a step commit reads the run back (locking it) and decides
 * from the version, updated_at, state and event id whether its commit
 * landed, so a step is neither lost nor doubled. Run control and cache
 * claims rerun safely; a lost claim_runs COMMIT is reported as unknown
 * (DURA_EIO): its runs come back when their leases expire.
 *
 * A host is always reached over TCP, "localhost" too (as the Go driver's
 * tcp(localhost:3306) says); the DSN form unix(/path) names a socket.
 *
 * Process-wide effects: Connector/C's library init sets SIGPIPE to
 * SIG_IGN (a write to a server that went away must not kill the process).
 * A handle used in a forked child opens its own connections and lets go
 * of the parent's without ending their sessions.
 */
#ifndef DURA_STORE_MYSQL_H
#define DURA_STORE_MYSQL_H

#include "dura/store.h"
#include "../../internal.h"
#include "../../util.h"
#include "../sql/catalog.h"
#include "../sql/commit.h"
#include "../sql/dialect.h"
#include "../sql/errors.h"
#include "../sql/rows.h"
#include "../sql/run.h"
#include "../sql/server.h"
#include "../sql/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MY "mysql"
#define MY_SCHEMA_VERSION 9 /* the schema this library writes */
#define MY_DEFAULT_POOL 25
#define MY_DEFAULT_IDLE 5
#define MY_DEFAULT_LIFETIME_MS (5 * 60 * 1000)
#define MY_DEFAULT_IDLE_MS (10 * 60 * 1000)
#define MY_DEFAULT_CONNECT_S 10
#define MY_BUSY_ATTEMPTS 6     /* deadlock / lock wait retries of one operation */
#define MY_AGAIN_ATTEMPTS 1000 /* reruns a body asked for (races it lost) */
#define MY_FALLBACK 2          /* a commit's "the procedure cannot be used here" */
#define MY_MAX_TIME_MS 253402300799999LL /* 9999-12-31 23:59:59.999, DATETIME's end */
#define MY_MIN_TIME_MS (-30610224000000LL) /* 1000-01-01 00:00:00 */
#define MY_MAX_PARAMS 24
#define MY_KEEP_BUF (256 * 1024) /* column buffers larger than this are freed after use */

/* ---- SQL --------------------------------------------------------------------- */

/*
 * REC_COLS, STEP_COLS, CP_COLS and the statements every SQL store shares
 * are sql/catalog.h's; these are MySQL's own, rendered with the MySQL
 * dialect (sql/dialect.h, "{lock}" the claim's locking clause, "{coll}"
 * the collation) at open. Why they differ from SQLite's: without
 * RETURNING, a run-state change locks the row (RUN_LOCK) and a commit
 * learns its step number from LAST_INSERT_ID in the OK packet; a commit
 * may be one CALL of the dura_commit procedure, and one whose connection
 * was lost is verified afterwards (COMMIT_VERIFY, STEP_FIND,
 * EVENT_CHECK); the default event data is assembled in the INSERT ...
 * SELECT. Claims are sql/server.c's.
 */
/* the outbox's retention (sql/catalog.h): a single-table DELETE takes ORDER BY and LIMIT */
#define SQL_SERVER_OUTBOX_PRUNE "DELETE FROM {p}workflow_outbox WHERE created_at < ? ORDER BY id LIMIT ?"

#define STATEMENTS(X)                                                                                              \
	SQL_SHARED_STATEMENTS(X)                                                                                   \
	SQL_SERVER_STATEMENTS(X)                                                                                   \
	/* runs */                                                                                                 \
	/* steps */                                                                                                \
	/* a record without a workflow version takes the commit's (the ? after wait_for's) */                    \
	X(COMMIT_UPDATE, "UPDATE {p}workflow_records SET object = ?, status = ?, error = ?, wait_for = ?, "        \
	                 "workflow_version = IF(workflow_version = '', ?, workflow_version), attempt = ?, "        \
	                 "next_run_at = ?, updated_at = ?, version = version + 1, "                                \
	                 "step_no = LAST_INSERT_ID(step_no + ?) WHERE run_id = ? AND version = ?")                 \
	X(COMMIT_UPDATE_FULL, "UPDATE {p}workflow_records SET object = ?, status = ?, error = ?, wait_for = ?, "   \
	                      "workflow_version = IF(workflow_version = '', ?, workflow_version), attempt = ?, "   \
	                      "next_run_at = ?, updated_at = ?, version = version + 1, "                           \
	                      "step_no = LAST_INSERT_ID(step_no + ?), run_state = COALESCE(?, run_state), "        \
	                      "lease_owner = IF(?, '', lease_owner), "                                             \
	                      "lease_expires_at = IF(?, NULL, lease_expires_at) WHERE run_id = ? AND version = ?") \
	X(COMMIT_CALL, "CALL {p}dura_commit(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")              \
	X(OUTBOX_INSERT, "INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "     \
	                 "SELECT ?, workflow_name, run_id, ?, COALESCE(?, CONCAT(?, run_state, '}')), ? "          \
	                 "FROM {p}workflow_records WHERE run_id = ?")                                              \
	/* commit_batch on MariaDB (batch.c): the records locked and read, then bulk executions */                \
	X(COMMIT_LOCK_MANY, "SELECT run_id, version, step_no, run_state, workflow_name FROM {p}workflow_records "  \
	                    "WHERE run_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) FOR UPDATE")         \
	X(COMMIT_UPDATE_MANY, "UPDATE {p}workflow_records SET object = ?, status = ?, error = ?, wait_for = ?, "   \
	                      "workflow_version = IF(workflow_version = '', ?, workflow_version), attempt = ?, "   \
	                      "next_run_at = ?, updated_at = ?, version = version + 1, step_no = step_no + ?, "    \
	                      "run_state = COALESCE(?, run_state), lease_owner = IF(?, '', lease_owner), "         \
	                      "lease_expires_at = IF(?, NULL, lease_expires_at) WHERE run_id = ? AND version = ?") \
	X(STEP_INSERT_MANY, "INSERT INTO {p}workflow_steps (" STEP_COLS ") VALUES (?, ?, ?, ?, ?, ?)")             \
	X(OUTBOX_INSERT_MANY, "INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) " \
	                      "VALUES (?, ?, ?, ?, ?, ?)")                                                         \
	X(SCHEMA_RECORD, "INSERT INTO {p}dura_schema (version, applied_at, description) "                         \
	                 "VALUES (?, UTC_TIMESTAMP(3), ?)")                                                        \
	/* cache */                                                                                                \
	/* leases */                                                                                               \
	/* outbox */                                                                                               \

#define X_ENUM(name, sql) ST_##name,
#define X_SQL(name, sql) sql,
#define X_NAME(name, sql) #name,
enum { STATEMENTS(X_ENUM) ST__COUNT };

/* ---- types ---------------------------------------------------------------------- */

enum { K_INT, K_TIME, K_STR };

/* One result column of a prepared statement, with its buffer. */
typedef struct my_cell {
	int kind;
	my_bool is_null, error;
	unsigned long len;
	long long i;
	MYSQL_TIME t;
	char *buf; /* K_STR: NUL-terminated after a fetch */
	unsigned long cap;
} my_cell;

typedef struct my_stmt {
	MYSQL_STMT *st;
	unsigned nparams, ncols;
	MYSQL_BIND *rb; /* result bindings, one per cell */
	my_cell *cells;
	int has_result; /* a stored result to free */
	int rebind;     /* a buffer grew: bind the results again */
} my_stmt;

typedef struct my_conn {
	dura_sql_conn base; /* first: the pool's part (sql/pool.h); base.broken: lost or unusable */
	MYSQL *db;
	my_stmt st[ST__COUNT];
	int retryable; /* the last failure was a deadlock or lock wait timeout */
	int in_tx;
	unsigned err; /* the last server or client error number */
} my_conn;

typedef struct my_store {
	dura_sql_store base; /* first: what sql/server.c uses (name, statements, driver, pool) */
	/* where and how to connect */
	char *host, *user, *password, *database, *socket, *prefix, *tls_ca;
	unsigned port;
	unsigned connect_s, read_s, write_s;
	int tls, tls_verify;
	int skip_locked_opt; /* 0: never use SKIP LOCKED */
	int pool_max, pool_idle;
	int64_t lifetime_ms, idle_ms;

	/* the server, learned at the first connection */
	int mariadb;
	unsigned long server_num;       /* 100611 for 10.6.11 */
	unsigned long max_packet;       /* @@max_allowed_packet */
	char server_version[160];
	char collation[32];
	uint32_t caps;
	int skip_locked;
	_Atomic int use_proc; /* commit through the dura_commit procedure */
	char *sql[ST__COUNT];

	pthread_mutex_t mu; /* the fields learned from the server */

	char notes[768];
} my_store;

/* Parameters of one execution; the values they point to outlive it. */
typedef struct my_params {
	int n;
	MYSQL_BIND b[MY_MAX_PARAMS];
	unsigned long len[MY_MAX_PARAMS];
	long long i[MY_MAX_PARAMS];
	MYSQL_TIME t[MY_MAX_PARAMS];
} my_params;

/* An operation's body, run by dura_my_run_op() with DURA_SQL_TX and
 * DURA_SQL_IDEMPOTENT (sql/run.h): 0, a DURA_E* code, or DURA_SQL_AGAIN to
 * be rolled back and run again. `again` is 1 when an earlier run's outcome
 * is unknown (its connection was lost after the server may have applied
 * it). */
typedef int (*my_body)(my_store *s, my_conn *c, void *arg, int again);

/* ---- conn.c ------------------------------------------------------------------------ */

int dura_my_thread(void);
int dura_my_fail(my_store *s, my_conn *c, MYSQL_STMT *st, const char *what);
void dura_my_conn_close(my_conn *c);
void dura_my_conn_abandon(my_conn *c);
int dura_my_q_int(my_store *s, my_conn *c, const char *sql, const char *what, int64_t *out, int *isnull);
void dura_my_learn_server(my_store *s, MYSQL *db);
int dura_my_conn_open(my_store *s, my_conn **out);
int dura_my_pool_get(my_store *s, my_conn **out);
void dura_my_pool_put(my_store *s, my_conn *c);
extern const dura_sql_pool_ops dura_my_pool_ops;
extern const dura_sql_driver dura_my_driver; /* sql/run.h */
extern const dura_sql_exec dura_my_exec;     /* sql/exec.h */
/* the lost-commit test hook's: 1 when this commit is to lose its connection */
int dura_my_lost_commit(int *applied);
int dura_my_run_op(my_store *s, my_body fn, void *arg, unsigned flags);
int dura_my_check_size(my_store *s, size_t n, const char *what);

/* ---- stmt.c ------------------------------------------------------------------------ */

char *dura_my_expand(my_store *s, const char *tmpl);
void dura_my_stmt_clear(my_stmt *m);
int dura_my_prep(my_store *s, my_conn *c, int id, my_stmt **out);
void dura_my_pp_null(my_params *p);
void dura_my_pp_str(my_params *p, const char *v);
void dura_my_pp_blob(my_params *p, const void *v, size_t n);
void dura_my_pp_int(my_params *p, int64_t v);
void dura_my_pp_time(my_params *p, int64_t ms);
void dura_my_st_done(my_stmt *m);
int dura_my_st_run(my_store *s, my_conn *c, int id, my_params *p, my_stmt **out);
int dura_my_st_fetch(my_store *s, my_conn *c, my_stmt *m);
int dura_my_st_write(my_store *s, my_conn *c, int id, my_params *p, uint64_t *affected);
int dura_my_st_exists(my_store *s, my_conn *c, int id, my_params *p);
int64_t dura_my_c_int(const my_stmt *m, unsigned i);
int64_t dura_my_c_time(const my_stmt *m, unsigned i);
const char *dura_my_c_str(const my_stmt *m, unsigned i);
extern const dura_sql_row_ops dura_my_row_ops;
/* m's current row (its cells), as sql/rows.c's decoders take it */
#define MY_ROW(m) (&(const dura_sql_row){&dura_my_row_ops, (void *)(m)})
/* Run statement id with p and decode its first row (dura_sql_fetch:
 * DURA_ENOTFOUND with no message when there is none) or every row
 * (dura_sql_collect: on failure the list is left empty, for the caller or
 * a rerun by dura_my_run_op()). */
int dura_my_fetch(my_store *s, my_conn *c, int id, my_params *p, dura_sql_kind kind, void **out);
int dura_my_collect(my_store *s, my_conn *c, int id, my_params *p, dura_sql_kind kind, void **items, size_t *count);

/* ---- schema.c ---------------------------------------------------------------------- */

int dura_my_read_schema_version(my_store *s, my_conn *c, int *out);
int dura_my_migrate_conn(my_store *s, my_conn *c, int *from, int *to);
int dura_my_check_and_migrate(my_store *s, my_conn *c, const dura_store_options *opts);

/* ---- commit.c: the vtable's commit and commit_batch -------------------------------- */

int dura_my_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res);
int dura_my_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                         dura_commit_result *res);
/* commit.c's batch of single commits in one transaction (the long way) */
int dura_my_commit_batch_each(my_store *s, const dura_commit *cm, const char *const *event_ids, size_t n,
                              dura_commit_result *res);

/* ---- batch.c: commit_batch in bulk on MariaDB ------------------------------------- */

/* The batch in a few bulk statements where the server has bulk
 * execution: 0, DURA_ECONFLICT (res says which), a failure, or
 * MY_FALLBACK when it cannot be done so (nothing was written). */
int dura_my_commit_bulk(my_store *s, const dura_commit *cm, const char *const *event_ids, size_t n,
                        dura_commit_result *res);

#endif /* DURA_STORE_MYSQL_H */
