/*
 * mysql.c - the MySQL/MariaDB store (mysql://, mariadb://, and the Go
 * driver's DSN user:pass@tcp(host:3306)/db), on MariaDB Connector/C.
 *
 * One handle owns a pool of connections (default 25 open, 5 idle, each
 * closed after 5 minutes of life or 10 idle, as the reference documents'
 * pool). Every connection prepares each statement once, on first use, and
 * keeps it; SQL is built with the table prefix when the store opens. A
 * connection is UTC (time_zone '+00:00', so the documents' NOW() SQL
 * compares with our DATETIME(3) columns), utf8mb4, READ COMMITTED, strict.
 * MYSQL_OPT_RECONNECT is never used: a lost connection is closed, the idle
 * ones with it (a restarted server killed them all), and the operation is
 * run again on a new one when that is safe (see run_op()).
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
 *                     4 with NO_EVENT, 1 with NO_STEP|NO_EVENT (no transaction)
 *   commit_batch      2 + 3 per commit (one transaction, no savepoints: a
 *                        commit that fails after its UPDATE reruns the batch
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
 * URL options: prefix, pool_max, pool_idle, conn_lifetime, conn_idle_time,
 * connect_timeout (or the DSN's timeout; default 10s), readTimeout and
 * writeTimeout (the DSN's), tls=true|skip-verify|preferred|false|<CA file>
 * (or libpq's sslmode=require|verify-ca|verify-full|disable),
 * skip_locked=0 (claim with plain FOR UPDATE even where SKIP LOCKED
 * exists). The Go driver's parseTime, loc, charset, collation, ... are
 * accepted and listed in info's notes: dura always reads times itself, in
 * UTC, in utf8mb4.
 *
 * Process-wide effects: Connector/C's library init sets SIGPIPE to
 * SIG_IGN (a write to a server that went away must not kill the process).
 * A handle used in a forked child opens its own connections and lets go
 * of the parent's without ending their sessions.
 */
#include "dura/store.h"
#include "../internal.h"
#include "sql/catalog.h"
#include "sql/rows.h"

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
#define MY_SCHEMA_VERSION 4 /* the schema this library writes */
#define MY_DEFAULT_POOL 25
#define MY_DEFAULT_IDLE 5
#define MY_DEFAULT_LIFETIME_MS (5 * 60 * 1000)
#define MY_DEFAULT_IDLE_MS (10 * 60 * 1000)
#define MY_DEFAULT_CONNECT_S 10
#define MY_BUSY_ATTEMPTS 6     /* deadlock / lock wait retries of one operation */
#define MY_AGAIN_ATTEMPTS 1000 /* reruns a body asked for (races it lost) */
#define MY_AGAIN 1             /* a body's "roll back and run me again" */
#define MY_FALLBACK 2          /* a commit's "the procedure cannot be used here" */
#define MY_MAX_TIME_MS 253402300799999LL /* 9999-12-31 23:59:59.999, DATETIME's end */
#define MY_MIN_TIME_MS (-30610224000000LL) /* 1000-01-01 00:00:00 */
#define MY_APPLY_SLOTS 16 /* run ids per claim UPDATE */
#define MY_WF_SLOTS 8     /* workflow names in the indexed claim */
#define MY_MAX_PARAMS 24
#define MY_KEEP_BUF (256 * 1024) /* column buffers larger than this are freed after use */

/* ---- SQL --------------------------------------------------------------------- */

/* "{p}" becomes the table prefix, "{lock}" the claim's locking clause. */

/* REC_COLS, STEP_COLS, CP_COLS and the statements every SQL store shares
 * are sql/catalog.h's; these are MySQL's own. */
#define CLAIM_WHERE                                                                         \
	"FROM {p}workflow_records WHERE run_state = 2 AND next_run_at <= ? AND (lease_owner = '' " \
	"OR lease_expires_at IS NULL OR lease_expires_at <= ?) "
#define CLAIM_ORDER "ORDER BY next_run_at, run_id LIMIT ? {lock}"

#define STATEMENTS(X)                                                                                              \
	SQL_SHARED_STATEMENTS(X)                                                                                   \
	X(SCHEMA_VERSION, "SELECT COALESCE(MAX(version), 0) FROM {p}dura_schema")                                   \
	/* runs */                                                                                                 \
	X(RUN_INSERT, "INSERT INTO {p}workflow_records (" REC_COLS ") VALUES "                                     \
	              "(?, ?, ?, ?, ?, ?, 1, 0, 0, '', ?, '', NULL, ?, ?, ?)")                                     \
	X(RUN_LIST, "SELECT " REC_COLS " FROM {p}workflow_records WHERE (? IS NULL OR workflow_name = ?) "         \
	            "AND (? = 0 OR run_state = ?) AND (? IS NULL OR status = ?) AND (? IS NULL OR foreign_id = ?) " \
	            "AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?) "                        \
	            "AND (? IS NULL OR run_id < ?) ORDER BY run_id DESC LIMIT ?")                                  \
	X(RUN_LOCK, "SELECT run_state, version FROM {p}workflow_records WHERE run_id = ? FOR UPDATE")              \
	X(RUN_SET_STATE, "UPDATE {p}workflow_records SET run_state = ?, version = version + 1, updated_at = ? "   \
	                 "WHERE run_id = ? AND run_state = ?")                                                     \
	X(RUN_SET_RUNNING, "UPDATE {p}workflow_records SET run_state = 2, version = version + 1, updated_at = ?, " \
	                   "next_run_at = ?, attempt = 0 WHERE run_id = ? AND run_state = ?")                      \
	X(RUN_ERASE, "UPDATE {p}workflow_records SET object = '{}', run_state = 6, version = version + 1, "        \
	             "updated_at = ? WHERE run_id = ?")                                                            \
	/* steps */                                                                                                \
	X(COMMIT_UPDATE, "UPDATE {p}workflow_records SET object = ?, status = ?, error = ?, attempt = ?, "         \
	                 "next_run_at = ?, updated_at = ?, version = version + 1, "                                \
	                 "step_no = LAST_INSERT_ID(step_no + ?) WHERE run_id = ? AND version = ?")                 \
	X(COMMIT_UPDATE_FULL, "UPDATE {p}workflow_records SET object = ?, status = ?, error = ?, attempt = ?, "    \
	                      "next_run_at = ?, updated_at = ?, version = version + 1, "                           \
	                      "step_no = LAST_INSERT_ID(step_no + ?), run_state = COALESCE(?, run_state), "        \
	                      "lease_owner = IF(?, '', lease_owner), "                                             \
	                      "lease_expires_at = IF(?, NULL, lease_expires_at) WHERE run_id = ? AND version = ?") \
	X(COMMIT_CALL, "CALL {p}dura_commit(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")                    \
	X(COMMIT_VERIFY, "SELECT version, step_no, updated_at, object FROM {p}workflow_records "                   \
	                 "WHERE run_id = ? FOR UPDATE")                                                            \
	X(STEP_FIND, "SELECT step, state FROM {p}workflow_steps WHERE run_id = ? AND created_at = ? "             \
	             "AND node_id = ? ORDER BY step DESC LIMIT 1")                                                 \
	X(OUTBOX_INSERT, "INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "     \
	                 "SELECT ?, workflow_name, run_id, ?, COALESCE(?, CONCAT(?, run_state, '}')), ? "          \
	                 "FROM {p}workflow_records WHERE run_id = ?")                                              \
	X(EVENT_CHECK, "SELECT 1 FROM {p}workflow_outbox WHERE id = ?")                                            \
	/* checkpoints */                                                                                          \
	X(CP_SAVE, "INSERT INTO {p}workflow_checkpoints (checkpoint_id, run_id, state, step, created_at, "         \
	           "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), "       \
	           "state = VALUES(state), step = VALUES(step), updated_at = VALUES(updated_at)")                  \
	X(CP_LIST, "SELECT " CP_COLS " FROM {p}workflow_checkpoints WHERE (? IS NULL OR run_id = ?) "              \
	           "ORDER BY updated_at DESC, id DESC")                                                            \
	/* cache */                                                                                                \
	X(CACHE_GET, "SELECT `key`, value, error, created_at, expires_at, metadata FROM {p}step_cache "            \
	             "WHERE `key` = ? AND (expires_at IS NULL OR expires_at > ?)")                                 \
	X(CACHE_PUT, "INSERT INTO {p}step_cache (`key`, value, error, created_at, expires_at, metadata) "          \
	             "VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), "                   \
	             "error = VALUES(error), created_at = VALUES(created_at), expires_at = VALUES(expires_at), "   \
	             "metadata = VALUES(metadata)")                                                                \
	X(CACHE_LIVE, "SELECT 1 FROM {p}step_cache WHERE `key` = ? AND (expires_at IS NULL OR expires_at > ?)")    \
	X(CACHE_DELETE, "DELETE FROM {p}step_cache WHERE `key` = ?")                                               \
	X(CACHE_LIST, "SELECT `key`, LENGTH(value), error, created_at, expires_at, metadata FROM {p}step_cache "   \
	              "WHERE (? IS NULL OR `key` > ?) ORDER BY `key` LIMIT ?")                                     \
	X(CACHE_STATS, "SELECT COUNT(*), CAST(COALESCE(SUM(expires_at IS NOT NULL AND expires_at <= ?), 0) AS "    \
	               "SIGNED), CAST(COALESCE(SUM(LENGTH(value)), 0) AS SIGNED) FROM {p}step_cache")              \
	X(CLAIM_LOCK, "SELECT owner, expires_at FROM {p}step_cache_claims WHERE `key` = ? FOR UPDATE")             \
	X(CLAIM_INSERT, "INSERT INTO {p}step_cache_claims (`key`, owner, expires_at) VALUES (?, ?, ?)")            \
	X(CLAIM_UPDATE, "UPDATE {p}step_cache_claims SET owner = ?, expires_at = ? WHERE `key` = ?")               \
	X(CLAIM_RELEASE, "DELETE FROM {p}step_cache_claims WHERE `key` = ? AND owner = ?")                         \
	X(CLAIM_DROP, "DELETE FROM {p}step_cache_claims WHERE `key` = ?")                                          \
	/* leases */                                                                                               \
	X(CLAIM_ANY, "SELECT " REC_COLS " " CLAIM_WHERE CLAIM_ORDER)                                               \
	X(CLAIM_WF, "SELECT " REC_COLS " " CLAIM_WHERE "AND workflow_name IN (?, ?, ?, ?, ?, ?, ?, ?) "            \
	            CLAIM_ORDER)                                                                                   \
	X(CLAIM_JSON, "SELECT " REC_COLS " " CLAIM_WHERE "AND JSON_CONTAINS(?, JSON_QUOTE(workflow_name)) "        \
	              CLAIM_ORDER)                                                                                 \
	X(CLAIM_APPLY, "UPDATE {p}workflow_records SET lease_owner = ?, lease_expires_at = ?, "                    \
	               "version = version + 1 WHERE run_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")   \
	X(LEASE_EXTEND, "UPDATE {p}workflow_records SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?") \
	X(LEASE_EXTEND_MANY, "UPDATE {p}workflow_records SET lease_expires_at = ? WHERE lease_owner = ? "         \
	                     "AND run_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")                      \
	/* outbox */                                                                                               \

#define X_ENUM(name, sql) ST_##name,
#define X_SQL(name, sql) sql,
#define X_NAME(name, sql) #name,
enum { STATEMENTS(X_ENUM) ST__COUNT };
static const char *const st_sql[ST__COUNT] = {STATEMENTS(X_SQL)};
static const char *const st_name[ST__COUNT] = {STATEMENTS(X_NAME)};

/* The bookkeeping table, created before the first migration. */
static const char schema_table_sql[] =
	"CREATE TABLE IF NOT EXISTS {p}dura_schema (version INT NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL, "
	"description VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

#define TABLE_OPTS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={coll}"

/*
 * Numbered migrations; migrations[i] takes the schema from version i to
 * i + 1, one statement at a time (MySQL DDL is not transactional: a
 * migration is serialised across processes with GET_LOCK and recorded when
 * all its statements went through).
 *
 * The reference documents' tables and column names, valid for MySQL:
 * step_cache's `key` is quoted (a reserved word) and VARCHAR(255) (a TEXT
 * key needs a prefix length); timestamps are DATETIME(3) in UTC; states
 * are JSON (on MariaDB an alias of LONGTEXT with a json_valid check).
 * Identifiers compare byte for byte and without trailing-space padding
 * ({coll}: utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8.0.17+;
 * older servers get utf8mb4_bin, which pads), as they do in every other
 * store. Needs MariaDB 10.2.7+ or MySQL 5.7.8+ (JSON, generated columns). MySQL has no partial index, so the
 * one-active-run rule is a UNIQUE index over a generated column that is 1
 * for an active run with a foreign id and NULL otherwise (NULLs never
 * collide). The documents' idx_run_id/idx_run_step duplicate the unique
 * (run_id, step) key and are left out: every index costs each commit.
 */
static const char *const migration1[] = {
	"CREATE TABLE {p}workflow_records ("
	"run_id VARCHAR(255) NOT NULL, workflow_name VARCHAR(255) NOT NULL, foreign_id VARCHAR(255) NOT NULL DEFAULT '', "
	"run_state INT NOT NULL, status VARCHAR(255) NOT NULL DEFAULT '', object JSON NOT NULL, "
	"created_at DATETIME(3) NOT NULL, updated_at DATETIME(3) NOT NULL, meta JSON NULL, "
	"version BIGINT NOT NULL, step_no BIGINT NOT NULL DEFAULT 0, attempt INT NOT NULL DEFAULT 0, "
	"error TEXT NOT NULL, lease_owner VARCHAR(255) NOT NULL DEFAULT '', lease_expires_at DATETIME(3) NULL, "
	"next_run_at DATETIME(3) NOT NULL, "
	"active_key TINYINT AS (IF(run_state IN (1, 2, 4) AND foreign_id <> '', 1, NULL)) STORED, "
	"PRIMARY KEY (run_id), "
	"INDEX by_workflow_name_foreign_id_status (workflow_name, foreign_id, status), "
	"INDEX by_run_state (run_state, next_run_at), "
	"INDEX by_workflow_due (workflow_name, run_state, next_run_at), "
	"INDEX by_created_at (created_at), "
	"UNIQUE INDEX one_active_run (workflow_name, foreign_id, active_key))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_steps ("
	"id BIGINT NOT NULL AUTO_INCREMENT, run_id VARCHAR(255) NOT NULL, step BIGINT NOT NULL, "
	"node_id VARCHAR(255) NOT NULL, state JSON NOT NULL, created_at DATETIME(3) NOT NULL, "
	"PRIMARY KEY (id), UNIQUE KEY unique_run_step (run_id, step), INDEX idx_created_at (created_at))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_checkpoints ("
	"id BIGINT NOT NULL AUTO_INCREMENT, checkpoint_id VARCHAR(255) NOT NULL, run_id VARCHAR(255) NOT NULL, "
	"state JSON NOT NULL, step BIGINT NOT NULL, created_at DATETIME(3) NOT NULL, updated_at DATETIME(3) NOT NULL, "
	"PRIMARY KEY (id), UNIQUE KEY unique_checkpoint_id (checkpoint_id), "
	"INDEX idx_checkpoints_run_id (run_id))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_outbox ("
	"id VARCHAR(255) NOT NULL, workflow_name VARCHAR(255) NOT NULL, run_id VARCHAR(255) NOT NULL, "
	"type VARCHAR(255) NOT NULL, data JSON NULL, created_at DATETIME(3) NOT NULL, "
	"PRIMARY KEY (id), INDEX by_workflow_name (workflow_name))" TABLE_OPTS,
	"CREATE TABLE {p}step_cache ("
	"`key` VARCHAR(255) NOT NULL, value LONGBLOB NULL, error TEXT NULL, created_at DATETIME(3) NOT NULL, "
	"expires_at DATETIME(3) NULL, metadata JSON NULL, "
	"PRIMARY KEY (`key`), INDEX idx_expires_at (expires_at))" TABLE_OPTS,
	"CREATE TABLE {p}step_cache_claims ("
	"`key` VARCHAR(255) NOT NULL, owner VARCHAR(255) NOT NULL, expires_at DATETIME(3) NOT NULL, "
	"PRIMARY KEY (`key`))" TABLE_OPTS,
	NULL,
};

/*
 * The step commit as one round trip: a procedure doing what commit_one()
 * does, in its own transaction (SQL SECURITY INVOKER: the caller's table
 * privileges apply, plus EXECUTE). Optional: a migrating user without
 * CREATE ROUTINE, or a caller without EXECUTE, gets the same commit in
 * several round trips. Its one result row is (1, step written) or
 * (0, the run's version or NULL when the run is missing). MariaDB puts a
 * routine's local variable into JSON_OBJECT as a string ("step": "0"):
 * the default event data casts it (migration 3 replaces the procedure
 * that migration 2 created without the cast). Migrations 2 and 3 stay as
 * they were; migration 4 replaces the procedure again.
 */
static const char *const migration2_optional[] = {
	"DROP PROCEDURE IF EXISTS {p}dura_commit",
	"CREATE PROCEDURE {p}dura_commit(IN p_run_id VARCHAR(255), IN p_expect BIGINT, IN p_state LONGTEXT, "
	"IN p_status VARCHAR(255), IN p_error TEXT, IN p_attempt INT, IN p_next DATETIME(3), IN p_now DATETIME(3), "
	"IN p_do_step TINYINT, IN p_run_state INT, IN p_release TINYINT, IN p_node VARCHAR(255), "
	"IN p_event_id VARCHAR(255), IN p_type VARCHAR(255), IN p_data LONGTEXT) "
	"MODIFIES SQL DATA SQL SECURITY INVOKER "
	"BEGIN "
	"DECLARE v_step BIGINT DEFAULT -1; "
	"DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END; "
	"START TRANSACTION; "
	"UPDATE {p}workflow_records SET object = p_state, status = p_status, error = p_error, attempt = p_attempt, "
	"next_run_at = p_next, updated_at = p_now, version = version + 1, step_no = step_no + p_do_step, "
	"run_state = COALESCE(p_run_state, run_state), lease_owner = IF(p_release, '', lease_owner), "
	"lease_expires_at = IF(p_release, NULL, lease_expires_at) WHERE run_id = p_run_id AND version = p_expect; "
	"IF ROW_COUNT() = 0 THEN "
	"ROLLBACK; "
	"SELECT 0, (SELECT version FROM {p}workflow_records WHERE run_id = p_run_id); "
	"ELSE "
	"IF p_do_step THEN "
	"SELECT step_no - 1 INTO v_step FROM {p}workflow_records WHERE run_id = p_run_id; "
	"INSERT INTO {p}workflow_steps (run_id, step, node_id, state, created_at) "
	"VALUES (p_run_id, v_step, p_node, p_state, p_now); "
	"END IF; "
	"IF p_event_id <> '' THEN "
	"INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "
	"SELECT p_event_id, workflow_name, run_id, p_type, COALESCE(p_data, JSON_OBJECT('run_id', run_id, "
	"'step', CAST(v_step AS SIGNED), 'node_id', p_node, 'status', status, 'run_state', run_state)), p_now "
	"FROM {p}workflow_records WHERE run_id = p_run_id; "
	"END IF; "
	"COMMIT; "
	"SELECT 1, v_step; "
	"END IF; "
	"END",
	NULL,
};

/*
 * Migration 4: the procedure of migration 2 with the default event data
 * made of the client's pieces (p_sum_head, p_sum_tail: see
 * summary_pieces()) around the two integers only the transaction knows,
 * so that it is the bytes dura_store_event_summary() writes in every other
 * store rather than the server's JSON_OBJECT (its own spacing and escapes).
 * A CALL of the old 15-argument procedure fails with
 * ER_SP_WRONG_NO_OF_ARGS and the commit goes the long way.
 */
static const char *const migration4_optional[] = {
	"DROP PROCEDURE IF EXISTS {p}dura_commit",
	"CREATE PROCEDURE {p}dura_commit(IN p_run_id VARCHAR(255), IN p_expect BIGINT, IN p_state LONGTEXT, "
	"IN p_status VARCHAR(255), IN p_error TEXT, IN p_attempt INT, IN p_next DATETIME(3), IN p_now DATETIME(3), "
	"IN p_do_step TINYINT, IN p_run_state INT, IN p_release TINYINT, IN p_node VARCHAR(255), "
	"IN p_event_id VARCHAR(255), IN p_type VARCHAR(255), IN p_data LONGTEXT, "
	"IN p_sum_head TEXT CHARACTER SET utf8mb4, IN p_sum_tail TEXT CHARACTER SET utf8mb4) "
	"MODIFIES SQL DATA SQL SECURITY INVOKER "
	"BEGIN "
	"DECLARE v_step BIGINT DEFAULT -1; "
	"DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END; "
	"START TRANSACTION; "
	"UPDATE {p}workflow_records SET object = p_state, status = p_status, error = p_error, attempt = p_attempt, "
	"next_run_at = p_next, updated_at = p_now, version = version + 1, step_no = step_no + p_do_step, "
	"run_state = COALESCE(p_run_state, run_state), lease_owner = IF(p_release, '', lease_owner), "
	"lease_expires_at = IF(p_release, NULL, lease_expires_at) WHERE run_id = p_run_id AND version = p_expect; "
	"IF ROW_COUNT() = 0 THEN "
	"ROLLBACK; "
	"SELECT 0, (SELECT version FROM {p}workflow_records WHERE run_id = p_run_id); "
	"ELSE "
	"IF p_do_step THEN "
	"SELECT step_no - 1 INTO v_step FROM {p}workflow_records WHERE run_id = p_run_id; "
	"INSERT INTO {p}workflow_steps (run_id, step, node_id, state, created_at) "
	"VALUES (p_run_id, v_step, p_node, p_state, p_now); "
	"END IF; "
	"IF p_event_id <> '' THEN "
	"INSERT INTO {p}workflow_outbox (id, workflow_name, run_id, type, data, created_at) "
	"SELECT p_event_id, workflow_name, run_id, p_type, "
	"COALESCE(p_data, CONCAT(p_sum_head, v_step, p_sum_tail, run_state, '}')), p_now "
	"FROM {p}workflow_records WHERE run_id = p_run_id; "
	"END IF; "
	"COMMIT; "
	"SELECT 1, v_step; "
	"END IF; "
	"END",
	NULL,
};

static const char *const no_statements[] = {NULL};

static const struct {
	const char *description;
	const char *const *sql;
	const char *const *optional; /* skipped when the user may not create routines */
} migrations[] = {
	{"workflow_records, workflow_steps, workflow_checkpoints, workflow_outbox, step_cache", migration1, no_statements},
	{"dura_commit procedure (a step commit in one round trip)", no_statements, migration2_optional},
	{"dura_commit procedure again: the step in default event data is a JSON number", no_statements,
	 migration2_optional},
	{"dura_commit procedure again: default event data from the client pieces, the same bytes as every store",
	 no_statements, migration4_optional},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == MY_SCHEMA_VERSION, "one migration per schema version");

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
	MYSQL *db;
	struct my_conn *next_idle;
	my_stmt st[ST__COUNT];
	int64_t opened_at, idle_since;
	int broken;    /* the connection is lost or unusable: close it */
	int retryable; /* the last failure was a deadlock or lock wait timeout */
	int in_tx;
	unsigned err; /* the last server or client error number */
} my_conn;

typedef struct my_store {
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

	/* the pool */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	my_conn *idle; /* stack of idle connections */
	int nopen, nidle;
	uint64_t waits;
	pid_t pid; /* the process the connections belong to */

	char notes[768];
} my_store;

/* ---- library and thread setup --------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_failed;
static pthread_key_t thread_key;
static _Thread_local int thread_ready;

static void thread_end(void *p)
{
	(void)p;
	mysql_thread_end();
}

static void lib_init(void)
{
	lib_failed = mysql_library_init(0, NULL, NULL) != 0;
	if (pthread_key_create(&thread_key, thread_end) != 0)
		lib_failed = 1;
}

/* Connector/C is initialised once per process and once per thread using it. */
static int my_thread(void)
{
	pthread_once(&lib_once, lib_init);
	if (lib_failed)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "cannot initialise the MariaDB Connector/C library");
	if (!thread_ready) {
		mysql_thread_init();
		pthread_setspecific(thread_key, (void *)1);
		thread_ready = 1;
	}
	return 0;
}

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

static int64_t add_ms(int64_t now, int64_t ms)
{
	return now > MY_MAX_TIME_MS - ms ? MY_MAX_TIME_MS : now + ms;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- errors ---------------------------------------------------------------------- */

static int lost_code(unsigned e)
{
	switch (e) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_COMMANDS_OUT_OF_SYNC:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
	case 4031: /* MySQL 8: disconnected by the server for inactivity */
		return 1;
	default:
		return 0;
	}
}

static int code_of(unsigned e)
{
	if (lost_code(e))
		return DURA_EIO;
	switch (e) {
	case ER_LOCK_DEADLOCK:
	case ER_LOCK_WAIT_TIMEOUT:
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
	case ER_USER_LIMIT_REACHED:
		return DURA_EBUSY;
	case ER_DUP_ENTRY:
		return DURA_EEXISTS;
	case ER_NO_SUCH_TABLE:
	case ER_BAD_DB_ERROR:
		return DURA_ENOTFOUND;
	case ER_NET_PACKET_TOO_LARGE:
	case CR_NET_PACKET_TOO_LARGE:
	case ER_DATA_TOO_LONG:
		return DURA_EINVAL;
	case CR_OUT_OF_MEMORY:
		return DURA_ENOMEM;
	case 1969: /* MariaDB: max_statement_time exceeded */
	case 3024: /* MySQL: max_execution_time exceeded */
		return DURA_ETIMEOUT;
	case ER_ACCESS_DENIED_ERROR:
	case CR_SSL_CONNECTION_ERROR:
		return DURA_EIO;
	default:
		return DURA_ERROR;
	}
}

/*
 * Set the thread's error from a failed call on connection c (on statement
 * st when not NULL): the code mapped, what we were doing, the server's
 * message and a hint where one helps. Marks c broken on a lost connection
 * and retryable on a deadlock or lock wait timeout.
 */
static int my_fail(my_store *s, my_conn *c, MYSQL_STMT *st, const char *what)
{
	unsigned e = st ? mysql_stmt_errno(st) : mysql_errno(c->db);
	const char *msg = st ? mysql_stmt_error(st) : mysql_error(c->db);
	const char *state = st ? mysql_stmt_sqlstate(st) : mysql_sqlstate(c->db);
	if (e == 0) {
		e = CR_UNKNOWN_ERROR;
		msg = "unknown error";
	}
	c->err = e;
	if (lost_code(e))
		c->broken = 1;
	c->retryable = e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT;
	const char *hint = "";
	char buf[160];
	switch (e) {
	case ER_NO_SUCH_TABLE:
		hint = "; dura's tables are missing: run `dura init`";
		break;
	case ER_NET_PACKET_TOO_LARGE:
	case CR_NET_PACKET_TOO_LARGE:
		snprintf(buf, sizeof(buf), "; the statement is larger than the server's max_allowed_packet (%lu bytes)",
		         s ? s->max_packet : 0UL);
		hint = buf;
		break;
	case ER_LOCK_DEADLOCK:
	case ER_LOCK_WAIT_TIMEOUT:
		hint = "; retried, still contended";
		break;
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
	case ER_USER_LIMIT_REACHED:
		hint = "; the server has no connection to spare: lower pool_max or raise max_connections";
		break;
	case ER_TABLEACCESS_DENIED_ERROR:
	case ER_COLUMNACCESS_DENIED_ERROR:
		hint = "; the user lacks a privilege dura needs (SELECT, INSERT, UPDATE, DELETE on the database)";
		break;
	default:
		break;
	}
	return dura_error_set_native(code_of(e), MY, (int)e, state, "%s: %s (MySQL error %u)%s", what, msg, e, hint);
}

/* ---- statements ------------------------------------------------------------------ */

/* Expand the placeholders of tmpl; NULL when out of memory. */
static char *expand(const char *tmpl, const char *const *keys, const char *const *vals, int n)
{
	size_t len = 0;
	for (const char *p = tmpl; *p;) {
		int hit = -1;
		if (*p == '{')
			for (int k = 0; k < n && hit < 0; k++)
				if (strncmp(p, keys[k], strlen(keys[k])) == 0)
					hit = k;
		if (hit >= 0) {
			len += strlen(vals[hit]);
			p += strlen(keys[hit]);
		} else {
			len++;
			p++;
		}
	}
	char *out = dura_malloc(len + 1), *w = out;
	if (!out)
		return NULL;
	for (const char *p = tmpl; *p;) {
		int hit = -1;
		if (*p == '{')
			for (int k = 0; k < n && hit < 0; k++)
				if (strncmp(p, keys[k], strlen(keys[k])) == 0)
					hit = k;
		if (hit >= 0) {
			size_t vl = strlen(vals[hit]);
			memcpy(w, vals[hit], vl);
			w += vl;
			p += strlen(keys[hit]);
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	return out;
}

static char *my_expand(my_store *s, const char *tmpl)
{
	static const char *const keys[] = {"{p}", "{lock}", "{coll}"};
	const char *vals[] = {s->prefix, s->skip_locked ? "FOR UPDATE SKIP LOCKED" : "FOR UPDATE", s->collation};
	return expand(tmpl, keys, vals, 3);
}

static void stmt_clear(my_stmt *m)
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
static int prep(my_store *s, my_conn *c, int id, my_stmt **out)
{
	my_stmt *m = &c->st[id];
	*out = NULL;
	if (!m->st) {
		char what[64];
		snprintf(what, sizeof(what), "preparing %s", st_name[id]);
		m->st = mysql_stmt_init(c->db);
		if (!m->st)
			return my_fail(s, c, NULL, what);
		if (mysql_stmt_prepare(m->st, s->sql[id], strlen(s->sql[id]))) {
			int rc = my_fail(s, c, m->st, what);
			stmt_clear(m);
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
				stmt_clear(m);
				return dura_error_oom(MY);
			}
			for (unsigned i = 0; i < n; i++)
				bind_cell(&m->rb[i], &m->cells[i]);
			if (mysql_stmt_bind_result(m->st, m->rb)) {
				int rc = my_fail(s, c, m->st, what);
				stmt_clear(m);
				return rc;
			}
		} else if (mysql_stmt_errno(m->st)) {
			int rc = my_fail(s, c, m->st, what);
			stmt_clear(m);
			return rc;
		}
	}
	*out = m;
	return 0;
}

/* Parameters of one execution; the values they point to outlive it. */
typedef struct my_params {
	int n;
	MYSQL_BIND b[MY_MAX_PARAMS];
	unsigned long len[MY_MAX_PARAMS];
	long long i[MY_MAX_PARAMS];
	MYSQL_TIME t[MY_MAX_PARAMS];
} my_params;

static MYSQL_BIND *pp_next(my_params *p)
{
	MYSQL_BIND *b = &p->b[p->n];
	memset(b, 0, sizeof(*b));
	return b;
}

static void pp_null(my_params *p)
{
	pp_next(p)->buffer_type = MYSQL_TYPE_NULL;
	p->n++;
}

/* Text; NULL is SQL NULL. */
static void pp_str(my_params *p, const char *v)
{
	if (!v) {
		pp_null(p);
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

static void pp_blob(my_params *p, const void *v, size_t n)
{
	MYSQL_BIND *b = pp_next(p);
	p->len[p->n] = (unsigned long)n;
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(v ? v : "");
	b->buffer_length = p->len[p->n];
	b->length = &p->len[p->n];
	p->n++;
}

static void pp_int(my_params *p, int64_t v)
{
	MYSQL_BIND *b = pp_next(p);
	p->i[p->n] = v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &p->i[p->n];
	p->n++;
}

static void pp_time(my_params *p, int64_t ms)
{
	MYSQL_BIND *b = pp_next(p);
	ms_to_time(ms, &p->t[p->n]);
	b->buffer_type = MYSQL_TYPE_DATETIME;
	b->buffer = &p->t[p->n];
	p->n++;
}

/* Free what a statement's last execution left (result, big buffers). */
static void st_done(my_stmt *m)
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

/* Execute statement id with p; rows, if any, are stored for st_fetch. */
static int st_run(my_store *s, my_conn *c, int id, my_params *p, my_stmt **out)
{
	my_stmt *m;
	char what[64];
	int rc = prep(s, c, id, &m);
	*out = NULL;
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s", st_name[id]);
	if ((unsigned)p->n != m->nparams)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "%s: %d parameters bound, the statement has %u", what, p->n,
		                             m->nparams);
	if (m->nparams && mysql_stmt_bind_param(m->st, p->b))
		return my_fail(s, c, m->st, what);
	if (m->rebind) {
		if (mysql_stmt_bind_result(m->st, m->rb))
			return my_fail(s, c, m->st, what);
		m->rebind = 0;
	}
	if (mysql_stmt_execute(m->st))
		return my_fail(s, c, m->st, what);
	if (m->ncols) {
		if (mysql_stmt_store_result(m->st)) {
			rc = my_fail(s, c, m->st, what);
			mysql_stmt_free_result(m->st);
			return rc;
		}
		m->has_result = 1;
	}
	*out = m;
	return 0;
}

/* The next row into m's cells: 1 a row, 0 no more, < 0 an error. */
static int st_fetch(my_store *s, my_conn *c, my_stmt *m)
{
	if (m->rebind) {
		if (mysql_stmt_bind_result(m->st, m->rb))
			return my_fail(s, c, m->st, "binding results");
		m->rebind = 0;
	}
	int r = mysql_stmt_fetch(m->st);
	if (r == MYSQL_NO_DATA)
		return 0;
	if (r != 0 && r != MYSQL_DATA_TRUNCATED)
		return my_fail(s, c, m->st, "reading a row");
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
				return my_fail(s, c, m->st, "reading a long column");
			bind_cell(&m->rb[i], cl);
			m->rebind = 1;
		}
		cl->buf[cl->len] = '\0';
	}
	return 1;
}

/* Cell accessors. */
static int64_t c_int(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	if (c->is_null)
		return 0;
	if (c->kind == K_STR)
		return strtoll(c->buf, NULL, 10);
	return c->i;
}

static int64_t c_time(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	if (c->is_null || c->kind != K_TIME)
		return 0;
	return time_to_ms(&c->t);
}

static const char *c_str(const my_stmt *m, unsigned i)
{
	const my_cell *c = &m->cells[i];
	return c->is_null || c->kind != K_STR ? NULL : c->buf;
}

/* ---- rows: the column accessors sql/rows.c decodes through ----------------------- */

static int my_col_null(void *impl, int i)
{
	return ((const my_stmt *)impl)->cells[i].is_null;
}

/* A column not bound as a string reads as NULL, as it does for c_str(). */
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
	return c_int(impl, (unsigned)i);
}

static const void *my_col_blob(void *impl, int i, size_t *len)
{
	const my_cell *c = &((const my_stmt *)impl)->cells[i];
	*len = c->len;
	return c->buf;
}

static int64_t my_col_time(void *impl, int i)
{
	return c_time(impl, (unsigned)i);
}

static const dura_sql_row_ops my_row_ops = {MY, my_col_null, my_col_text, my_col_int64, my_col_blob, my_col_time};

/* m's current row (its cells), as sql/rows.c's decoders take it */
#define MY_ROW(m) (&(const dura_sql_row){&my_row_ops, (void *)(m)})

/* Run a statement selecting REC_COLS: the first row's record into *out
 * (when out is not NULL), or DURA_ENOTFOUND without a message. */
static int fetch_record(my_store *s, my_conn *c, int id, my_params *p, dura_record **out)
{
	my_stmt *m;
	int rc = st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 0) {
		rc = DURA_ENOTFOUND;
	} else if (rc == 1) {
		rc = 0;
		if (out) {
			dura_record *r = dura_malloc(sizeof(*r));
			if (!r)
				rc = dura_error_oom(MY);
			else if ((rc = dura_sql_row_record(MY_ROW(m), r)) != 0)
				dura_free(r);
			else
				*out = r;
		}
	}
	st_done(m);
	return rc;
}

/*
 * Each kind of list item's row converter and clearer on void *, so that
 * one collect() fills every kind of list (calling the typed functions
 * through a void * signature instead would be undefined behaviour).
 */
static int item_record(const my_stmt *m, void *item)
{
	return dura_sql_row_record(MY_ROW(m), item);
}

static int item_step(const my_stmt *m, void *item)
{
	return dura_sql_row_step(MY_ROW(m), item);
}

static int item_checkpoint(const my_stmt *m, void *item)
{
	return dura_sql_row_checkpoint(MY_ROW(m), item);
}

/* listed entries carry the value's length, not the value */
static int item_cache(const my_stmt *m, void *item)
{
	return dura_sql_row_cache_entry(MY_ROW(m), item, 0);
}

static int item_event(const my_stmt *m, void *item)
{
	return dura_sql_row_event(MY_ROW(m), item);
}

/*
 * Run statement id with p, appending each row, converted by row(), to a
 * result array of item_size-byte items (*items, *count; empty on entry).
 * On failure the items so far are cleared and freed, so the list is left
 * empty, as its list_free and a memset would leave it (nothing else in it
 * is set yet), for the caller or a rerun by run_op().
 */
static int collect(my_store *s, my_conn *c, int id, my_params *p, void **items, size_t *count, size_t item_size,
                   int (*row)(const my_stmt *, void *), void (*clear)(void *))
{
	my_stmt *m;
	size_t cap = 0;
	int rc = st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	while ((rc = st_fetch(s, c, m)) == 1) {
		if (dura_store_grow(items, *count, &cap, item_size)) {
			rc = dura_error_oom(MY);
			break;
		}
		if ((rc = row(m, (char *)*items + *count * item_size)) != 0)
			break;
		(*count)++;
	}
	st_done(m);
	if (rc) {
		for (size_t i = 0; i < *count; i++)
			clear((char *)*items + i * item_size);
		dura_free(*items);
		*items = NULL;
		*count = 0;
	}
	return rc;
}

/* Run a write; *affected (may be NULL) gets the rows it matched. */
static int st_write(my_store *s, my_conn *c, int id, my_params *p, uint64_t *affected)
{
	my_stmt *m;
	int rc = st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	if (affected)
		*affected = (uint64_t)mysql_stmt_affected_rows(m->st);
	st_done(m);
	return 0;
}

/* Does a SELECT return a row? 1 yes, 0 no, < 0 error. */
static int st_exists(my_store *s, my_conn *c, int id, my_params *p)
{
	my_stmt *m;
	int rc = st_run(s, c, id, p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	st_done(m);
	return rc;
}

/* ---- connections ------------------------------------------------------------------- */

static void conn_close(my_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		stmt_clear(&c->st[i]);
	if (c->db)
		mysql_close(c->db);
	dura_free(c);
}

/*
 * Free a connection inherited from the parent process without ending the
 * parent's session: its socket is pointed at /dev/null first, so the
 * goodbyes mysql_close() sends go nowhere.
 */
static void conn_abandon(my_conn *c)
{
	if (!c)
		return;
	if (c->db) {
		int fd = (int)mysql_get_socket(c->db);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0 && null >= 0)
			dup2(null, fd);
		if (null >= 0)
			close(null);
	}
	conn_close(c);
}

/* A text query's first column of the first row of its first result set
 * as a number (NULL: *isnull); the other results are read and dropped. */
static int q_int(my_store *s, my_conn *c, const char *sql, const char *what, int64_t *out, int *isnull)
{
	int got = 0;
	*out = 0;
	if (isnull)
		*isnull = 1;
	if (mysql_real_query(c->db, sql, strlen(sql)))
		return my_fail(s, c, NULL, what);
	for (;;) {
		MYSQL_RES *res = mysql_store_result(c->db);
		if (res) {
			MYSQL_ROW row = got ? NULL : mysql_fetch_row(res);
			if (row && row[0]) {
				*out = strtoll(row[0], NULL, 10);
				if (isnull)
					*isnull = 0;
			}
			got = 1;
			mysql_free_result(res);
		} else if (mysql_field_count(c->db)) {
			return my_fail(s, c, NULL, what);
		}
		int nr = mysql_next_result(c->db);
		if (nr > 0)
			return my_fail(s, c, NULL, what);
		if (nr < 0)
			return 0;
	}
}

/* A clear message for a failed connect. */
static int connect_fail(my_store *s, MYSQL *db)
{
	unsigned e = mysql_errno(db);
	const char *msg = mysql_error(db);
	const char *state = mysql_sqlstate(db);
	char where[300];
	if (*s->socket)
		snprintf(where, sizeof(where), "socket %s", s->socket);
	else
		snprintf(where, sizeof(where), "%s:%u", *s->host ? s->host : "localhost", s->port ? s->port : 3306);
	switch (e) {
	case ER_ACCESS_DENIED_ERROR:
	case ER_DBACCESS_DENIED_ERROR:
		return dura_error_set_native(DURA_EIO, MY, (int)e, state,
		                             "access denied for user '%s' on the MySQL server at %s: check the user and password "
		                             "in the store URL, and the user's grants (%s)",
		                             s->user, where, msg);
	case ER_BAD_DB_ERROR:
		return dura_error_set_native(DURA_ENOTFOUND, MY, (int)e, state,
		                             "database '%s' does not exist on the MySQL server at %s: create it first "
		                             "(CREATE DATABASE %s CHARACTER SET utf8mb4), then run `dura init`",
		                             s->database, where, s->database);
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
	case ER_USER_LIMIT_REACHED:
		return dura_error_set_native(DURA_EBUSY, MY, (int)e, state,
		                             "the MySQL server at %s has no connection to spare for user '%s' (%s): lower pool_max "
		                             "or raise max_connections / the user's MAX_USER_CONNECTIONS",
		                             where, s->user, msg);
	case CR_SSL_CONNECTION_ERROR:
		return dura_error_set_native(DURA_EIO, MY, (int)e, state, "TLS to the MySQL server at %s failed: %s", where, msg);
	default:
		if (e == CR_CONN_HOST_ERROR || e == CR_CONNECTION_ERROR || e == CR_SERVER_LOST || e == CR_SERVER_GONE_ERROR ||
		    e == CR_UNKNOWN_HOST || e == CR_SERVER_LOST_EXTENDED)
			return dura_error_set_native(DURA_EIO, MY, (int)e, state,
			                             "cannot connect to the MySQL server at %s (connect timeout %us): %s", where,
			                             s->connect_s, msg);
		return dura_error_set_native(code_of(e) == DURA_ERROR ? DURA_EIO : code_of(e), MY, (int)e, state,
		                             "cannot connect to the MySQL server at %s: %s (MySQL error %u)", where, msg, e);
	}
}

/* What the first connection tells about the server. */
static void learn_server(my_store *s, MYSQL *db)
{
	const char *info = mysql_get_server_info(db);
	unsigned long v = mysql_get_server_version(db);
	s->server_num = v;
	s->mariadb = info && strstr(info, "MariaDB") != NULL;
	unsigned long major = v / 10000, minor = v / 100 % 100, patch = v % 100;
	snprintf(s->server_version, sizeof(s->server_version), "%s %lu.%lu.%lu (%s; Connector/C %s)",
	         s->mariadb ? "MariaDB" : "MySQL", major, minor, patch, info ? info : "?", mysql_get_client_info());
	s->caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL;
	if (s->mariadb) {
		if (v >= 100600)
			s->caps |= DURA_CAP_SKIP_LOCKED;
		if (v >= 100500)
			s->caps |= DURA_CAP_RETURNING; /* INSERT/DELETE ... RETURNING (not UPDATE) */
		if (v >= 100207)
			s->caps |= DURA_CAP_JSON;
		snprintf(s->collation, sizeof(s->collation), "%s", v >= 100202 ? "utf8mb4_nopad_bin" : "utf8mb4_bin");
	} else {
		if (v >= 80001)
			s->caps |= DURA_CAP_SKIP_LOCKED;
		if (v >= 50708)
			s->caps |= DURA_CAP_JSON;
		snprintf(s->collation, sizeof(s->collation), "%s", v >= 80017 ? "utf8mb4_0900_bin" : "utf8mb4_bin");
	}
	s->skip_locked = (s->caps & DURA_CAP_SKIP_LOCKED) && s->skip_locked_opt;
}

/*
 * Open a connection and set its session up: UTC, strict, READ COMMITTED
 * (a claim's or commit's lock covers the rows it read, not gaps, so
 * concurrent inserts do not deadlock on gap locks). One round trip after
 * the handshake.
 */
static int conn_open(my_store *s, my_conn **out)
{
	*out = NULL;
	my_conn *c = dura_calloc(1, sizeof(*c));
	if (!c)
		return dura_error_oom(MY);
	c->db = mysql_init(NULL);
	if (!c->db) {
		dura_free(c);
		return dura_error_oom(MY);
	}
	unsigned long max_packet = 1024UL * 1024 * 1024;
	my_bool on = 1, off = 0;
	mysql_optionsv(c->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(c->db, MYSQL_OPT_CONNECT_TIMEOUT, &s->connect_s);
	if (s->read_s)
		mysql_optionsv(c->db, MYSQL_OPT_READ_TIMEOUT, &s->read_s);
	if (s->write_s)
		mysql_optionsv(c->db, MYSQL_OPT_WRITE_TIMEOUT, &s->write_s);
	mysql_optionsv(c->db, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
	mysql_optionsv(c->db, MYSQL_OPT_RECONNECT, &off); /* never: a lost session is a lost transaction */
	if (s->tls) {
		mysql_optionsv(c->db, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_optionsv(c->db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, s->tls_verify ? &on : &off);
		if (s->tls_ca && *s->tls_ca)
			mysql_optionsv(c->db, MYSQL_OPT_SSL_CA, s->tls_ca);
	}
	if (!*s->socket) {
		unsigned proto = MYSQL_PROTOCOL_TCP; /* not the default socket for "localhost" */
		mysql_optionsv(c->db, MYSQL_OPT_PROTOCOL, &proto);
	}
	unsigned long flags = CLIENT_FOUND_ROWS | CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS;
	const char *host = *s->socket ? NULL : (*s->host ? s->host : NULL);
	if (!mysql_real_connect(c->db, host, s->user, s->password, s->database, s->port, *s->socket ? s->socket : NULL,
	                        flags)) {
		int rc = connect_fail(s, c->db);
		conn_close(c);
		return rc;
	}
	static const char setup[] = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
	                            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'; "
	                            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; "
	                            "SELECT @@max_allowed_packet";
	int64_t packet = 0;
	int rc = q_int(s, c, setup, "setting up the session", &packet, NULL);
	if (rc) {
		conn_close(c);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	if (packet > 0)
		s->max_packet = (unsigned long)packet;
	pthread_mutex_unlock(&s->mu);
	c->opened_at = c->idle_since = dura_now_ms();
	*out = c;
	return 0;
}

/* ---- the pool --------------------------------------------------------------------- */

static int conn_stale(const my_store *s, const my_conn *c, int64_t now)
{
	return (s->lifetime_ms > 0 && now - c->opened_at >= s->lifetime_ms) ||
	       (s->idle_ms > 0 && now - c->idle_since >= s->idle_ms);
}

/* Borrow a connection: an idle one that is still fresh, a new one under
 * pool_max, or wait for one to come back. */
static int pool_get(my_store *s, my_conn **out)
{
	int rc = my_thread();
	if (rc)
		return rc;
	my_conn *stale = NULL, *c = NULL;
	int64_t now = dura_now_ms();
	int waited = 0;
	pthread_mutex_lock(&s->mu);
	my_conn *inherited = NULL;
	if (s->pid != getpid()) {
		/* a forked child: the idle connections are the parent's sessions
		 * (closing them would end those); let go of them, open its own */
		inherited = s->idle;
		s->nopen -= s->nidle;
		s->nidle = 0;
		s->idle = NULL;
		s->pid = getpid();
	}
	for (;;) {
		while (s->idle && conn_stale(s, s->idle, now)) {
			my_conn *x = s->idle;
			s->idle = x->next_idle;
			s->nidle--;
			s->nopen--;
			x->next_idle = stale;
			stale = x;
		}
		if (s->idle) {
			c = s->idle;
			s->idle = c->next_idle;
			s->nidle--;
			break;
		}
		if (s->nopen < s->pool_max) {
			s->nopen++; /* reserve the slot while opening outside the lock */
			break;
		}
		if (!waited++)
			s->waits++;
		pthread_cond_wait(&s->cv, &s->mu);
		now = dura_now_ms();
	}
	pthread_mutex_unlock(&s->mu);
	while (inherited) {
		my_conn *x = inherited;
		inherited = x->next_idle;
		conn_abandon(x);
	}
	while (stale) {
		my_conn *x = stale;
		stale = x->next_idle;
		conn_close(x);
	}
	if (c) {
		c->next_idle = NULL;
		*out = c;
		return 0;
	}
	rc = conn_open(s, &c);
	if (rc) {
		pthread_mutex_lock(&s->mu);
		s->nopen--;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		*out = NULL;
		return rc;
	}
	*out = c;
	return 0;
}

static void tx_rollback(my_store *s, my_conn *c);

/*
 * Give a connection back. A broken one is closed, and the idle ones with
 * it: a lost connection usually means a restarted server, which lost them
 * all. At most pool_idle stay idle.
 */
static void pool_put(my_store *s, my_conn *c)
{
	if (!c->broken && c->in_tx)
		tx_rollback(s, c);
	my_conn *drop = NULL;
	pthread_mutex_lock(&s->mu);
	if (c->broken || s->nidle >= s->pool_idle) {
		s->nopen--;
		c->next_idle = NULL;
		drop = c;
		if (c->broken) {
			while (s->idle) {
				my_conn *x = s->idle;
				s->idle = x->next_idle;
				s->nidle--;
				s->nopen--;
				x->next_idle = drop;
				drop = x;
			}
		}
	} else {
		c->idle_since = dura_now_ms();
		c->next_idle = s->idle;
		s->idle = c;
		s->nidle++;
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	while (drop) {
		my_conn *x = drop;
		drop = x->next_idle;
		conn_close(x);
	}
}

/* ---- transactions and the retry loop ----------------------------------------------- */

static int tx_begin(my_store *s, my_conn *c)
{
	if (mysql_real_query(c->db, "START TRANSACTION", 17))
		return my_fail(s, c, NULL, "START TRANSACTION");
	c->in_tx = 1;
	return 0;
}

/*
 * The test hook, compiled only into the archive the tests link
 * (DURA_TEST_HOOKS; tests/conformance/mysql_extra.c): the next N commits
 * lose their connection, after the server committed (applied = 1) or
 * before the commit left (applied = 0), so that the recovery paths run
 * deterministically. lost_commit() takes one of the N; in libdura it is 0.
 */
#ifdef DURA_TEST_HOOKS
struct dura__mysql_test_hook {
	_Atomic int commits, applied;
} dura__mysql_test_hook;

static int lost_commit(int *applied)
{
	int n = atomic_load(&dura__mysql_test_hook.commits);
	while (n > 0 && !atomic_compare_exchange_weak(&dura__mysql_test_hook.commits, &n, n - 1)) {
	}
	*applied = atomic_load(&dura__mysql_test_hook.applied);
	return n > 0;
}
#else
static int lost_commit(int *applied)
{
	*applied = 0;
	return 0;
}
#endif

static int fault_commit(my_store *s, my_conn *c)
{
	int applied;
	if (!lost_commit(&applied))
		return 0;
	(void)s;
	if (applied)
		mysql_real_query(c->db, "COMMIT", 6);
	c->broken = 1;
	c->err = CR_SERVER_LOST;
	return dura_error_set_native(DURA_EIO, MY, CR_SERVER_LOST, "HY000",
	                             "COMMIT: Lost connection to server during query (simulated by a test)");
}

static int tx_commit(my_store *s, my_conn *c)
{
	c->in_tx = 0;
	int rc = fault_commit(s, c);
	if (rc)
		return rc;
	if (mysql_real_query(c->db, "COMMIT", 6))
		return my_fail(s, c, NULL, "COMMIT");
	return 0;
}

/* Undo the open transaction, keeping the thread's error as it is. */
static void tx_rollback(my_store *s, my_conn *c)
{
	(void)s;
	if (!c->in_tx)
		return;
	c->in_tx = 0;
	if (c->broken)
		return;
	if (mysql_real_query(c->db, "ROLLBACK", 8) && lost_code(mysql_errno(c->db)))
		c->broken = 1;
}

enum {
	OP_TX = 1,         /* the body runs in a transaction */
	OP_IDEMPOTENT = 2, /* after an unknown outcome the body may run again (with again = 1) */
};

/* An operation's body: 0, a DURA_E* code, or MY_AGAIN to be rolled back and
 * run again. `again` is 1 when an earlier run's outcome is unknown (its
 * connection was lost after the server may have applied it). */
typedef int (*my_body)(my_store *s, my_conn *c, void *arg, int again);

static void backoff(int attempt)
{
	int64_t base = (int64_t)2 << (attempt < 5 ? attempt : 5); /* 2 .. 64 ms */
	sleep_ms(base / 2 + rand() % (base / 2 + 1));
}

/*
 * Run an operation on a pooled connection (in a transaction with OP_TX)
 * and handle what MySQL throws at it: deadlocks and lock wait timeouts run
 * it again after a backoff (DURA_EBUSY after MY_BUSY_ATTEMPTS); a lost
 * connection runs it again on a new one when nothing can have been applied
 * (lost before COMMIT) or when the body can tell (OP_IDEMPOTENT).
 */
static int run_op(my_store *s, my_body fn, void *arg, unsigned flags)
{
	int again = 0, busy = 0, agains = 0, lost = 0;
	for (;;) {
		my_conn *c;
		int rc = pool_get(s, &c);
		if (rc)
			return rc;
		c->retryable = 0;
		c->err = 0;
		int at_commit = 0;
		if (flags & OP_TX)
			rc = tx_begin(s, c);
		if (rc == 0)
			rc = fn(s, c, arg, again);
		if (flags & OP_TX) {
			if (rc == 0) {
				at_commit = 1;
				rc = tx_commit(s, c);
			} else {
				tx_rollback(s, c);
			}
		}
		int broken = c->broken, retryable = c->retryable;
		pool_put(s, c);
		if (rc == 0)
			return 0;
		if (rc == MY_AGAIN) {
			if (++agains < MY_AGAIN_ATTEMPTS)
				continue;
			return dura_error_set_native(DURA_EBUSY, MY, 0, NULL, "gave up after %d attempts in a busy store", agains);
		}
		if (retryable && ++busy < MY_BUSY_ATTEMPTS) {
			backoff(busy);
			continue;
		}
		if (broken && lost++ < 2) {
			if ((flags & OP_TX) && !at_commit)
				continue; /* the server rolls the transaction back */
			if (flags & OP_IDEMPOTENT) {
				again = 1;
				continue;
			}
			if (flags & OP_TX) {
				const dura_error *e = dura_error_last();
				char msg[512];
				snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "");
				return dura_error_set_native(DURA_EIO, MY, e ? e->native_code : 0, NULL,
				                             "the connection was lost while committing: the change may or may not "
				                             "have been applied (%s)",
				                             msg);
			}
		}
		return rc;
	}
}

/* Refuse a value the server would refuse, before writing anything. */
static int check_size(my_store *s, size_t n, const char *what)
{
	unsigned long limit;
	pthread_mutex_lock(&s->mu);
	limit = s->max_packet;
	pthread_mutex_unlock(&s->mu);
	if (limit && n + 1024 > limit)
		return dura_error_set_native(DURA_EINVAL, MY, ER_NET_PACKET_TOO_LARGE, "08S01",
		                             "%s of %zu bytes does not fit in the server's max_allowed_packet of %lu bytes "
		                             "(nothing was written): raise max_allowed_packet on the server",
		                             what, n, limit);
	return 0;
}

/* ---- lifecycle -------------------------------------------------------------------- */

/* The schema version recorded in the database (0: none yet). */
static int read_schema_version(my_store *s, my_conn *c, int *out)
{
	char sql[256];
	int64_t n = 0, v = 0;
	*out = 0;
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
	         "TABLE_NAME = '%sdura_schema'",
	         s->prefix);
	int rc = q_int(s, c, sql, "reading the schema", &n, NULL);
	if (rc || n == 0)
		return rc;
	my_stmt *m;
	my_params p;
	p.n = 0;
	if ((rc = st_run(s, c, ST_SCHEMA_VERSION, &p, &m)) != 0)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		v = c_int(m, 0);
		rc = 0;
	}
	st_done(m);
	*out = (int)v;
	return rc;
}

static int newer_schema(int v)
{
	return dura_error_set_native(DURA_EVERSION, MY, 0, NULL,
	                             "database schema version %d is newer than this library's %d; upgrade dura", v,
	                             MY_SCHEMA_VERSION);
}

/* A failed migration statement, worded for the usual cause. */
static int migrate_fail(my_store *s, my_conn *c, int version)
{
	unsigned e = mysql_errno(c->db);
	char what[64];
	snprintf(what, sizeof(what), "schema migration %d", version);
	if (e == ER_TABLEACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR || e == ER_ACCESS_DENIED_ERROR ||
	    e == ER_SPECIFIC_ACCESS_DENIED_ERROR)
		return dura_error_set_native(DURA_ERROR, MY, (int)e, mysql_sqlstate(c->db),
		                             "cannot create dura's tables in database '%s': user '%s' lacks the CREATE privilege "
		                             "(%s). Run `dura init` once as a user with CREATE, INDEX, ALTER and CREATE ROUTINE on "
		                             "the database, or GRANT them; afterwards SELECT, INSERT, UPDATE, DELETE are enough",
		                             s->database, s->user, mysql_error(c->db));
	if (e == ER_TABLE_EXISTS_ERROR)
		return dura_error_set_native(DURA_ERROR, MY, (int)e, mysql_sqlstate(c->db),
		                             "%s: %s, but %sdura_schema does not record this migration: an earlier `dura init` "
		                             "was interrupted, or the table belongs to another program (drop it, or give dura "
		                             "its own tables with ?prefix=)",
		                             what, mysql_error(c->db), s->prefix);
	return my_fail(s, c, NULL, what);
}

/* Run the migrations this database lacks, under an advisory lock, so that
 * processes opening a new database at once migrate it once. */
static int migrate_conn(my_store *s, my_conn *c, int *from, int *to)
{
	char lock[256], unlock[256], *sql = NULL;
	int64_t got = 0;
	int isnull = 1, v = 0;
	snprintf(lock, sizeof(lock), "SELECT GET_LOCK(CONCAT('dura_migrate_', SHA1(CONCAT(DATABASE(), '.', '%s'))), 60)",
	         s->prefix);
	snprintf(unlock, sizeof(unlock), "DO RELEASE_LOCK(CONCAT('dura_migrate_', SHA1(CONCAT(DATABASE(), '.', '%s'))))",
	         s->prefix);
	int rc = q_int(s, c, lock, "taking the migration lock", &got, &isnull);
	if (rc)
		return rc;
	if (isnull || got != 1)
		return dura_error_set_native(DURA_EBUSY, MY, 0, NULL,
		                             "another process has been migrating database '%s' for a minute; try again", s->database);
	if ((rc = read_schema_version(s, c, &v)) != 0)
		goto out;
	*from = *to = v;
	if (v > MY_SCHEMA_VERSION) {
		rc = newer_schema(v);
		goto out;
	}
	if (v < MY_SCHEMA_VERSION) {
		if (!(sql = my_expand(s, schema_table_sql))) {
			rc = dura_error_oom(MY);
			goto out;
		}
		if (mysql_real_query(c->db, sql, strlen(sql))) {
			rc = migrate_fail(s, c, v + 1);
			goto out;
		}
		dura_free(sql);
		sql = NULL;
	}
	for (; v < MY_SCHEMA_VERSION; v++) {
		const char *skipped = "";
		for (const char *const *q = migrations[v].sql; *q; q++) {
			if (!(sql = my_expand(s, *q))) {
				rc = dura_error_oom(MY);
				goto out;
			}
			if (mysql_real_query(c->db, sql, strlen(sql))) {
				rc = migrate_fail(s, c, v + 1);
				goto out;
			}
			dura_free(sql);
			sql = NULL;
		}
		for (const char *const *q = migrations[v].optional; *q && !*skipped; q++) {
			if (!(sql = my_expand(s, *q))) {
				rc = dura_error_oom(MY);
				goto out;
			}
			if (mysql_real_query(c->db, sql, strlen(sql))) {
				unsigned e = mysql_errno(c->db);
				if (e != ER_DBACCESS_DENIED_ERROR && e != ER_TABLEACCESS_DENIED_ERROR &&
				    e != ER_SPECIFIC_ACCESS_DENIED_ERROR && e != ER_PROCACCESS_DENIED_ERROR &&
				    e != ER_ACCESS_DENIED_ERROR) {
					rc = migrate_fail(s, c, v + 1);
					goto out;
				}
				skipped = " (skipped: no privilege to create routines)";
			}
			dura_free(sql);
			sql = NULL;
		}
		char rec[512];
		snprintf(rec, sizeof(rec),
		         "INSERT INTO %sdura_schema (version, applied_at, description) VALUES (%d, UTC_TIMESTAMP(3), '%s%s')",
		         s->prefix, v + 1, migrations[v].description, skipped);
		if (mysql_real_query(c->db, rec, strlen(rec))) {
			rc = migrate_fail(s, c, v + 1);
			goto out;
		}
		*to = v + 1;
	}
out:
	dura_free(sql);
	if (!c->broken) {
		/* release the lock, keeping the error (if any) as it was */
		const dura_error *e = dura_error_last();
		int code = rc && e ? e->code : 0, native = rc && e ? e->native_code : 0;
		char msg[1024] = "", state[8] = "";
		if (code) {
			snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "");
			snprintf(state, sizeof(state), "%s", e->sqlstate ? e->sqlstate : "");
		}
		mysql_real_query(c->db, unlock, strlen(unlock));
		if (code)
			dura_error_set_native(code, MY, native, state, "%s", msg);
	}
	return rc;
}

/* Before anything writes: the schema must be one this library knows. */
static int check_and_migrate(my_store *s, my_conn *c, const dura_store_options *opts)
{
	int v, rc;
	if ((rc = read_schema_version(s, c, &v)) != 0)
		return rc;
	if (v > MY_SCHEMA_VERSION)
		return newer_schema(v);
	if (v < MY_SCHEMA_VERSION && !opts->auto_migrate) {
		if (v == 0)
			return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL,
			                             "database '%s' has no dura tables%s%s; run `dura init` to create them",
			                             s->database, *s->prefix ? " with prefix " : "", s->prefix);
		return dura_error_set_native(DURA_EVERSION, MY, 0, NULL,
		                             "database schema version %d is older than this library's %d; run `dura init` to "
		                             "upgrade it",
		                             v, MY_SCHEMA_VERSION);
	}
	if (v < MY_SCHEMA_VERSION) {
		int from, to;
		return migrate_conn(s, c, &from, &to);
	}
	return 0;
}

static void note(my_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(my_store *s)
{
	if (!s)
		return;
	/* in a forked child the idle connections are the parent's sessions */
	int inherited = s->pid != getpid();
	my_conn *c = s->idle;
	while (c) {
		my_conn *next = c->next_idle;
		if (inherited)
			conn_abandon(c);
		else
			conn_close(c);
		c = next;
	}
	for (int i = 0; i < ST__COUNT; i++)
		dura_free(s->sql[i]);
	dura_free(s->host);
	dura_free(s->user);
	dura_free(s->password);
	dura_free(s->database);
	dura_free(s->socket);
	dura_free(s->prefix);
	dura_free(s->tls_ca);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	dura_free(s);
}

/*
 * In a forked child (store.h, atfork_child): the idle connections are the
 * parent's sessions. Let go of them without a goodbye on their sockets;
 * the child's next call opens its own. No connection is in use: the core
 * waited for every call in flight before forking.
 */
static void my_atfork_child(void *impl)
{
	my_store *s = impl;
	my_conn *c = s->idle;
	while (c) {
		my_conn *next = c->next_idle;
		conn_abandon(c);
		c = next;
	}
	s->idle = NULL;
	s->nidle = s->nopen = 0;
	s->pid = getpid();
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

/* Whole seconds for Connector/C's timeouts (rounded up; 0 stays 0). */
static unsigned secs(int64_t ms)
{
	if (ms <= 0)
		return 0;
	int64_t sec = (ms + 999) / 1000;
	return sec > 86400 * 365 ? 86400 * 365 : (unsigned)sec;
}

static int duration_param(const dura_url *url, const char *name, int64_t *out)
{
	const char *v = dura_url_param(url, name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	double unit = 1000;
	if (end == v || errno || x < 0)
		goto bad;
	if (*end) {
		if (strcmp(end, "ms") == 0)
			unit = 1;
		else if (strcmp(end, "s") == 0)
			unit = 1000;
		else if (strcmp(end, "m") == 0)
			unit = 60000;
		else if (strcmp(end, "h") == 0)
			unit = 3600000;
		else
			goto bad;
	}
	if (x * unit > 9.0e15)
		goto bad;
	*out = (int64_t)(x * unit);
	return 0;
bad:
	return dura_error_set_native(DURA_EINVAL, MY, 0, NULL, "URL option %s='%.40s' is not a duration (like 500ms, 5s, 2m)",
	                             name, v);
}

static int parse_options(my_store *s, const dura_url *url)
{
	/* understood here or by the core */
	static const char *const known[] = {"prefix",      "pool_max",        "pool_idle", "conn_lifetime",
	                                    "conn_idle_time", "connect_timeout", "timeout",   "tls",
	                                    "sslmode",     "skip_locked",     "readTimeout", "writeTimeout"};
	/* the Go driver's options that mean nothing here */
	static const struct {
		const char *name, *why;
	} go_opts[] = {
		{"parseTime", "dura always reads times itself"},
		{"loc", "times are always UTC"},
		{"charset", "dura always speaks utf8mb4"},
		{"collation", "dura's tables set their own collation"},
		{"maxAllowedPacket", "the server's max_allowed_packet is read at connect"},
	};
	const char *v;
	int64_t ms = 0;
	int rc;
	s->pool_max = url->pool_max > 0 ? url->pool_max : MY_DEFAULT_POOL;
	s->pool_idle = url->pool_idle >= 0 ? url->pool_idle : MY_DEFAULT_IDLE;
	if (s->pool_idle > s->pool_max)
		s->pool_idle = s->pool_max;
	s->lifetime_ms = url->conn_lifetime_ms > 0 ? url->conn_lifetime_ms : MY_DEFAULT_LIFETIME_MS;
	s->idle_ms = url->conn_idle_ms > 0 ? url->conn_idle_ms : MY_DEFAULT_IDLE_MS;
	s->connect_s = url->connect_timeout_ms > 0 ? secs(url->connect_timeout_ms) : MY_DEFAULT_CONNECT_S;
	if ((rc = duration_param(url, "readTimeout", &ms)) != 0)
		return rc;
	s->read_s = secs(ms);
	ms = 0;
	if ((rc = duration_param(url, "writeTimeout", &ms)) != 0)
		return rc;
	s->write_s = secs(ms);
	s->skip_locked_opt = 1;
	if ((v = dura_url_param(url, "skip_locked")) != NULL) {
		if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0)
			s->skip_locked_opt = 0;
		else if (!(strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0))
			return dura_error_set_native(DURA_EINVAL, MY, 0, NULL, "URL option skip_locked='%.40s' is not 0 or 1", v);
	}
	s->tls = 0;
	s->tls_verify = 1;
	if ((v = dura_url_param(url, "tls")) != NULL && *v) {
		if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
			s->tls = 1;
		} else if (strcasecmp(v, "skip-verify") == 0) {
			s->tls = 1;
			s->tls_verify = 0;
		} else if (strcasecmp(v, "preferred") == 0) {
			/* the Go driver's: TLS if the server offers it, unverified;
			 * Connector/C cannot fall back, so this is plain */
			note(s, "tls=%s: connecting without TLS (Connector/C cannot fall back)", v);
		} else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
			s->tls = 0;
		} else if (strchr(v, '/') || strchr(v, '.')) {
			s->tls = 1;
			if (!(s->tls_ca = dura_strdup(v)))
				return dura_error_oom(MY);
		} else {
			return dura_error_set_native(DURA_EINVAL, MY, 0, NULL,
			                             "URL option tls='%.60s' is not true, false, skip-verify, preferred or the path "
			                             "of a CA certificate file",
			                             v);
		}
	}
	if (!dura_url_param(url, "tls") && (v = dura_url_param(url, "sslmode")) != NULL) {
		/* libpq's words, for those who write them */
		if (strcmp(v, "verify-ca") == 0 || strcmp(v, "verify-full") == 0 || strcmp(v, "verify_identity") == 0) {
			s->tls = 1;
		} else if (strcmp(v, "require") == 0 || strcmp(v, "required") == 0) {
			s->tls = 1;
			s->tls_verify = 0;
		} else if (strcmp(v, "disable") == 0 || strcmp(v, "disabled") == 0) {
			s->tls = 0;
		} else {
			note(s, "sslmode=%s: connecting without TLS", v);
		}
	}
	for (size_t i = 0; i < url->nparams; i++) {
		const char *name = url->param_names[i];
		int ok = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= strcmp(name, known[k]) == 0;
		if (ok)
			continue;
		for (size_t k = 0; k < sizeof(go_opts) / sizeof(go_opts[0]) && !ok; k++) {
			if (strcmp(name, go_opts[k].name) == 0) {
				char buf[160];
				snprintf(buf, sizeof(buf), "ignored option %s (%s)", name, go_opts[k].why);
				note(s, "%s", buf);
				ok = 1;
			}
		}
		if (!ok)
			note(s, "ignored option %s", name);
	}
	return 0;
}

static int my_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	int rc = my_thread();
	if (rc)
		return rc;
	my_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(MY);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->pid = getpid();
	if ((rc = parse_options(s, url)) != 0) {
		store_free(s);
		return rc;
	}
	s->host = dura_strdup(url->host ? url->host : "");
	s->user = dura_strdup(url->user ? url->user : "");
	s->password = dura_strdup(url->password ? url->password : "");
	s->database = dura_strdup(url->database ? url->database : "");
	s->socket = dura_strdup(url->socket ? url->socket : "");
	s->prefix = dura_strdup(url->prefix ? url->prefix : "");
	s->port = url->port > 0 ? (unsigned)url->port : 3306;
	if (!s->host || !s->user || !s->password || !s->database || !s->socket || !s->prefix) {
		store_free(s);
		return dura_error_oom(MY);
	}
	if (!*s->database) {
		store_free(s);
		return dura_error_set_native(DURA_EINVAL, MY, 0, NULL,
		                             "the MySQL store URL names no database (like mysql://user:pass@host:3306/DBNAME)");
	}
	if (strchr(s->database, '/') || strlen(s->database) > 64) {
		store_free(s);
		return dura_error_set_native(DURA_EINVAL, MY, 0, NULL, "'%.80s' is not a MySQL database name", s->database);
	}

	my_conn *c;
	if ((rc = conn_open(s, &c)) != 0) {
		store_free(s);
		return rc;
	}
	learn_server(s, c->db);
	if (!s->skip_locked_opt && (s->caps & DURA_CAP_SKIP_LOCKED))
		note(s, "%s", "skip_locked=0: claims use plain FOR UPDATE");
	else if (!(s->caps & DURA_CAP_SKIP_LOCKED))
		note(s, "%s", "the server has no SKIP LOCKED: claims use plain FOR UPDATE");
	if (s->tls) {
		const char *cipher = mysql_get_ssl_cipher(c->db);
		note(s, "TLS %s", cipher ? cipher : "(cipher unknown)");
	}
	for (int i = 0; i < ST__COUNT && rc == 0; i++)
		if (!(s->sql[i] = my_expand(s, st_sql[i])))
			rc = dura_error_oom(MY);
	if (rc == 0)
		rc = check_and_migrate(s, c, opts);
	atomic_store(&s->use_proc, 1); /* until a CALL says it cannot be used */
	if (rc) {
		conn_close(c);
		store_free(s);
		return rc;
	}
	s->idle = c;
	s->nopen = s->nidle = 1;
	*impl = s;
	return 0;
}

static void my_close(void *impl)
{
	store_free(impl);
}

static int ping_body(my_store *s, my_conn *c, void *arg, int again)
{
	(void)arg;
	(void)again;
	if (mysql_ping(c->db))
		return my_fail(s, c, NULL, "ping");
	return 0;
}

static int my_ping(void *impl)
{
	return run_op(impl, ping_body, NULL, OP_IDEMPOTENT);
}

static int info_body(my_store *s, my_conn *c, void *arg, int again)
{
	(void)again;
	return read_schema_version(s, c, arg);
}

static int my_info(void *impl, dura_store_info *out)
{
	my_store *s = impl;
	int v = 0;
	int rc = run_op(s, info_body, &v, OP_IDEMPOTENT);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = MY_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int my_stats(void *impl, dura_store_stats *out)
{
	my_store *s = impl;
	pthread_mutex_lock(&s->mu);
	out->open = s->nopen;
	out->idle = s->nidle;
	out->in_use = s->nopen - s->nidle;
	out->max_open = s->pool_max;
	out->waits = s->waits;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

struct migrate_arg {
	int *from, *to;
};

static int migrate_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct migrate_arg *a = arg;
	(void)again;
	return migrate_conn(s, c, a->from, a->to);
}

static int my_migrate(void *impl, int *from, int *to)
{
	struct migrate_arg a = {from, to};
	return run_op(impl, migrate_body, &a, OP_IDEMPOTENT);
}

/* ---- runs ------------------------------------------------------------------------- */

struct create_arg {
	const dura_run_create *req;
	const char *run_id, *fid, *state, *status, *meta;
	int run_state;
	int64_t now, next;
	dura_record **out;
};

static int create_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct create_arg *a = arg;
	my_params p;
	p.n = 0;
	pp_str(&p, a->run_id);
	pp_str(&p, a->req->workflow_name);
	pp_str(&p, a->fid);
	pp_int(&p, a->run_state);
	pp_str(&p, a->status);
	pp_str(&p, a->state);
	pp_str(&p, a->meta);
	pp_time(&p, a->next);
	pp_time(&p, a->now);
	pp_time(&p, a->now);
	my_stmt *m;
	int rc = st_run(s, c, ST_RUN_INSERT, &p, &m);
	if (rc == 0) {
		st_done(m);
		if (a->out)
			return dura_sql_created_record(a->out, MY, a->run_id, a->req, a->fid, a->state, a->status, a->run_state,
			                               a->now, a->next < MY_MAX_TIME_MS ? a->next : MY_MAX_TIME_MS);
		return 0;
	}
	if (c->err != ER_DUP_ENTRY)
		return rc;
	const dura_error *e = dura_error_last();
	int on_primary = e && e->message && strstr(e->message, "PRIMARY") != NULL;
	dura_record *existing = NULL;
	if (on_primary) {
		p.n = 0;
		pp_str(&p, a->run_id);
		rc = fetch_record(s, c, ST_RUN_GET, &p, &existing);
		if (rc == DURA_ENOTFOUND)
			return MY_AGAIN; /* deleted since: try again */
		if (rc)
			return rc;
		/* after a lost connection, our own insert may be what is there */
		if (again && existing->created_at == a->now && strcmp(existing->workflow_name, a->req->workflow_name) == 0 &&
		    strcmp(existing->foreign_id, a->fid) == 0) {
			if (a->out)
				*a->out = existing;
			else
				dura_record_free(existing);
			return 0;
		}
		rc = dura_error_set_native(DURA_EEXISTS, MY, ER_DUP_ENTRY, "23000", "run %s already exists", a->run_id);
	} else {
		p.n = 0;
		pp_str(&p, a->req->workflow_name);
		pp_str(&p, a->fid);
		rc = fetch_record(s, c, ST_RUN_ACTIVE, &p, &existing);
		if (rc == DURA_ENOTFOUND)
			return MY_AGAIN; /* the active run ended meanwhile */
		if (rc)
			return rc;
		rc = dura_error_set_native(DURA_EEXISTS, MY, ER_DUP_ENTRY, "23000",
		                           "workflow %s already has an active run %s with foreign id %s", a->req->workflow_name,
		                           existing->run_id, a->fid);
	}
	if (a->out)
		*a->out = existing;
	else
		dura_record_free(existing);
	return rc;
}

static int my_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	my_store *s = impl;
	struct create_arg a;
	a.req = req;
	a.run_id = run_id;
	a.fid = req->foreign_id ? req->foreign_id : "";
	a.state = req->state ? req->state : "{}";
	a.status = req->status ? req->status : "";
	a.meta = req->meta && *req->meta ? req->meta : NULL;
	a.run_state = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	a.now = dura_now_ms();
	a.next = req->next_run_at ? req->next_run_at : a.now;
	a.out = out;
	int rc = check_size(s, strlen(a.state) + (a.meta ? strlen(a.meta) : 0), "the initial state");
	if (rc)
		return rc;
	return run_op(s, create_body, &a, OP_IDEMPOTENT);
}

struct get_arg {
	int id;
	const char *a1, *a2;
	dura_record **out;
};

static int get_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct get_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	pp_str(&p, a->a1);
	if (a->a2)
		pp_str(&p, a->a2);
	return fetch_record(s, c, a->id, &p, a->out);
}

static int my_get_run(void *impl, const char *run_id, dura_record **out)
{
	struct get_arg a = {ST_RUN_GET, run_id, NULL, out};
	int rc = run_op(impl, get_body, &a, OP_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", run_id);
	return rc;
}

static int my_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	struct get_arg a = {ST_RUN_LATEST, wf, fid, out};
	int rc = run_op(impl, get_body, &a, OP_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "workflow %s has no run with foreign id %s", wf, fid);
	return rc;
}

struct list_arg {
	const dura_run_filter *f;
	dura_record_list *out;
};

static int list_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct list_arg *a = arg;
	const dura_run_filter *f = a->f;
	const char *cursor = f->cursor && *f->cursor ? f->cursor : NULL;
	my_params p;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	pp_str(&p, f->workflow_name);
	pp_str(&p, f->workflow_name);
	pp_int(&p, f->run_state);
	pp_int(&p, f->run_state);
	pp_str(&p, f->status);
	pp_str(&p, f->status);
	pp_str(&p, f->foreign_id);
	pp_str(&p, f->foreign_id);
	if (f->created_after) {
		pp_time(&p, f->created_after);
		pp_time(&p, f->created_after);
	} else {
		pp_null(&p);
		pp_null(&p);
	}
	if (f->created_before) {
		pp_time(&p, f->created_before);
		pp_time(&p, f->created_before);
	} else {
		pp_null(&p);
		pp_null(&p);
	}
	pp_str(&p, cursor);
	pp_str(&p, cursor);
	pp_int(&p, (int64_t)f->limit);
	int rc = collect(s, c, ST_RUN_LIST, &p, (void **)&a->out->items, &a->out->count, sizeof(*a->out->items),
	                 item_record, dura_record_clear);
	if (rc)
		return rc;
	if (a->out->count == f->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].run_id);
		if (!a->out->next_cursor) {
			dura_record_list_free(a->out);
			memset(a->out, 0, sizeof(*a->out));
			return dura_error_oom(MY);
		}
	}
	return 0;
}

static int my_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	struct list_arg a = {f, out};
	return run_op(impl, list_body, &a, OP_IDEMPOTENT);
}

/* Lock a run's row; its run_state and version, or ENOTFOUND with a message. */
static int run_lock(my_store *s, my_conn *c, const char *run_id, int *state, int64_t *version)
{
	my_stmt *m;
	my_params p;
	p.n = 0;
	pp_str(&p, run_id);
	int rc = st_run(s, c, ST_RUN_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		*state = (int)c_int(m, 0);
		*version = c_int(m, 1);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", run_id);
	}
	st_done(m);
	return rc;
}

/* Inside the open transaction: the run's state becomes {}, its run_state
 * data_deleted, its steps and checkpoints go. */
static int erase_run(my_store *s, my_conn *c, const char *run_id)
{
	my_params p;
	p.n = 0;
	pp_time(&p, dura_now_ms());
	pp_str(&p, run_id);
	int rc = st_write(s, c, ST_RUN_ERASE, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	pp_str(&p, run_id);
	if ((rc = st_write(s, c, ST_STEPS_ERASE, &p, NULL)) != 0)
		return rc;
	return st_write(s, c, ST_CPS_ERASE, &p, NULL);
}

struct state_arg {
	const char *run_id;
	int to;
	int64_t new_version;
};

static int set_state_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct state_arg *a = arg;
	int cur;
	int64_t version;
	int rc = run_lock(s, c, a->run_id, &cur, &version);
	if (rc)
		return rc;
	if (again && cur == a->to) { /* our earlier attempt went in */
		a->new_version = version;
		return 0;
	}
	if (!dura_run_state_transition_ok(cur, a->to))
		return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL, "cannot move run %s from %s to %s", a->run_id,
		                             dura_run_state_name(cur), dura_run_state_name(a->to));
	if (a->to == DURA_RUN_DATA_DELETED) {
		if ((rc = erase_run(s, c, a->run_id)) != 0)
			return rc;
		a->new_version = version + 1;
		return 0;
	}
	my_params p;
	int64_t now = dura_now_ms();
	uint64_t n = 0;
	p.n = 0;
	if (a->to == DURA_RUN_RUNNING) {
		pp_time(&p, now);
		pp_time(&p, now);
	} else {
		pp_int(&p, a->to);
		pp_time(&p, now);
	}
	pp_str(&p, a->run_id);
	pp_int(&p, cur);
	rc = st_write(s, c, a->to == DURA_RUN_RUNNING ? ST_RUN_SET_RUNNING : ST_RUN_SET_STATE, &p, &n);
	if (rc) {
		if (c->err == ER_DUP_ENTRY)
			return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
			                             "cannot move run %s to %s: its workflow already has an active run with the same "
			                             "foreign id",
			                             a->run_id, dura_run_state_name(a->to));
		return rc;
	}
	if (n == 0)
		return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL, "run %s changed while moving it to %s", a->run_id,
		                             dura_run_state_name(a->to));
	a->new_version = version + 1;
	return 0;
}

static int my_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	struct state_arg a = {run_id, to, 0};
	int rc = run_op(impl, set_state_body, &a, OP_TX | OP_IDEMPOTENT);
	if (rc == 0 && new_version)
		*new_version = a.new_version;
	return rc;
}

static int delete_data_body(my_store *s, my_conn *c, void *arg, int again)
{
	const char *run_id = arg;
	int cur;
	int64_t version;
	int rc = run_lock(s, c, run_id, &cur, &version);
	if (rc)
		return rc;
	if (again && cur == DURA_RUN_DATA_DELETED)
		return 0;
	if (cur != DURA_RUN_COMPLETED && cur != DURA_RUN_CANCELLED && cur != DURA_RUN_FAILED)
		return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL,
		                             "cannot delete the data of run %s: it is %s (only completed, cancelled or failed runs)",
		                             run_id, dura_run_state_name(cur));
	return erase_run(s, c, run_id);
}

static int my_delete_run_data(void *impl, const char *run_id)
{
	return run_op(impl, delete_data_body, (void *)run_id, OP_TX | OP_IDEMPOTENT);
}

/* ---- steps ------------------------------------------------------------------------ */

/* Why a CAS update matched no row: the run is gone, or at another version. */
static int commit_miss(my_store *s, my_conn *c, const dura_commit *cm)
{
	my_stmt *m;
	my_params p;
	p.n = 0;
	pp_str(&p, cm->run_id);
	int rc = st_run(s, c, ST_RUN_VERSION, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1)
		rc = dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL,
		                           "run %s is at version %lld, not the expected version %lld (another worker changed it)",
		                           cm->run_id, (long long)c_int(m, 0), (long long)cm->expect_version);
	else if (rc == 0)
		rc = dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", cm->run_id);
	st_done(m);
	return rc;
}

static int json_same(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	json_error_t err;
	json_t *ja = json_loads(a, JSON_DECODE_ANY, &err);
	json_t *jb = json_loads(b, JSON_DECODE_ANY, &err);
	int same = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return same;
}

/*
 * After a connection was lost while committing: did that commit land?
 * Reads the run locked (so a commit still in flight on the dead session
 * finishes first). 1: it did (res filled), 0: it did not and the run is
 * still at the expected version (commit again), < 0: an error, or another
 * writer got there (DURA_ECONFLICT).
 */
static int commit_verify(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                         dura_commit_result *res)
{
	const int do_step = !(cm->flags & DURA_COMMIT_NO_STEP);
	const int do_event = !(cm->flags & DURA_COMMIT_NO_EVENT);
	my_stmt *m;
	my_params p;
	p.n = 0;
	pp_str(&p, cm->run_id);
	int rc = st_run(s, c, ST_COMMIT_VERIFY, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc <= 0) {
		st_done(m);
		return rc ? rc : dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", cm->run_id);
	}
	int64_t version = c_int(m, 0), step_no = c_int(m, 1), updated = c_time(m, 2);
	int ours = version == cm->expect_version + 1 && updated == now && json_same(c_str(m, 3), cm->state);
	st_done(m);
	if (version == cm->expect_version)
		return 0;
	if (ours) {
		res->new_version = cm->expect_version + 1;
		res->step = do_step ? step_no - 1 : -1;
		return 1;
	}
	/* the run moved on since: our event or step row tells */
	int64_t step = -1;
	int found = 0;
	if (do_step) {
		p.n = 0;
		pp_str(&p, cm->run_id);
		pp_time(&p, now);
		pp_str(&p, cm->node_id);
		if ((rc = st_run(s, c, ST_STEP_FIND, &p, &m)) != 0)
			return rc;
		while ((rc = st_fetch(s, c, m)) == 1 && !found) {
			if (json_same(c_str(m, 1), cm->state)) {
				found = 1;
				step = c_int(m, 0);
			}
		}
		st_done(m);
		if (rc < 0)
			return rc;
	}
	if (!found && do_event && *event_id) {
		p.n = 0;
		pp_str(&p, event_id);
		if ((rc = st_exists(s, c, ST_EVENT_CHECK, &p)) < 0)
			return rc;
		found = rc;
	}
	if (found) {
		res->new_version = cm->expect_version + 1;
		res->step = step;
		return 1;
	}
	return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL,
	                             "run %s is at version %lld, not the expected version %lld (the connection was lost while "
	                             "committing, and another writer changed the run)",
	                             cm->run_id, (long long)version, (long long)cm->expect_version);
}

/*
 * The default event data (dura_store_event_summary()) but for the integers the
 * server supplies. With step NULL (the procedure): the head runs up to the
 * step's place and *tail from there to the run_state's place; with a step
 * (the several-statement commit, which has it from LAST_INSERT_ID): the
 * head runs, step included, up to the run_state's place. The server
 * appends the run_state and "}" (see OUTBOX_INSERT and migration 4). In
 * buf when it fits, else in *heap (the caller frees it); NULL when out of
 * memory.
 */
static const char *summary_pieces(char *buf, size_t size, const dura_commit *cm, const int64_t *step,
                                  const char **tail, char **heap)
{
	static const char k1[] = DURA__SUMMARY_RUN_ID, k2[] = DURA__SUMMARY_STEP, k3[] = DURA__SUMMARY_NODE_ID,
	                  k4[] = DURA__SUMMARY_STATUS, k5[] = DURA__SUMMARY_RUN_STATE;
	const char *node = cm->node_id ? cm->node_id : "", *status = cm->status ? cm->status : "";
	size_t need = sizeof k1 + sizeof k2 + sizeof k3 + sizeof k4 + sizeof k5 + 24 + dura__json_quote_len(cm->run_id) +
	              dura__json_quote_len(node) + dura__json_quote_len(status);
	char *o = buf;
	*heap = NULL;
	if (need > size && !(o = *heap = dura_malloc(need)))
		return NULL;
	char *head = o;
	memcpy(o, k1, sizeof k1 - 1);
	o = dura__json_quote(o + sizeof k1 - 1, cm->run_id);
	memcpy(o, k2, sizeof k2 - 1);
	o += sizeof k2 - 1;
	if (step) {
		o += sprintf(o, "%lld", (long long)*step);
	} else {
		*o++ = '\0';
		*tail = o;
	}
	memcpy(o, k3, sizeof k3 - 1);
	o = dura__json_quote(o + sizeof k3 - 1, node);
	memcpy(o, k4, sizeof k4 - 1);
	o = dura__json_quote(o + sizeof k4 - 1, status);
	memcpy(o, k5, sizeof k5 - 1);
	o[sizeof k5 - 1] = '\0';
	return head;
}

/* Room for the pieces of ids of at most DURA_MAX_ID_LEN bytes. */
#define SUMMARY_BUF (3 * (6 * DURA_MAX_ID_LEN + 2) + 128)

/*
 * One step commit inside the open transaction (or alone, in autocommit,
 * when it is one statement): the CAS update of the record, the step row,
 * the outbox row. Writes nothing on ECONFLICT or ENOTFOUND at the update;
 * *updated tells whether the update went in before a later failure.
 */
static int commit_one(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                      dura_commit_result *res, int *updated)
{
	const int do_step = !(cm->flags & DURA_COMMIT_NO_STEP);
	const int do_event = !(cm->flags & DURA_COMMIT_NO_EVENT);
	const int release = (cm->flags & DURA_COMMIT_RELEASE_LEASE) != 0;
	/* the common commit leaves run_state and the lease alone: a statement
	 * that does not set them does not touch the indexes on run_state */
	const int full = cm->run_state != 0 || release;
	const char *status = cm->status ? cm->status : "";
	my_params p;
	my_stmt *m;
	*updated = 0;
	p.n = 0;
	pp_str(&p, cm->state);
	pp_str(&p, status);
	pp_str(&p, cm->error ? cm->error : "");
	pp_int(&p, cm->attempt);
	pp_time(&p, cm->next_run_at ? cm->next_run_at : now);
	pp_time(&p, now);
	pp_int(&p, do_step);
	if (full) {
		if (cm->run_state)
			pp_int(&p, cm->run_state);
		else
			pp_null(&p);
		pp_int(&p, release);
		pp_int(&p, release);
	}
	pp_str(&p, cm->run_id);
	pp_int(&p, cm->expect_version);
	int rc = st_run(s, c, full ? ST_COMMIT_UPDATE_FULL : ST_COMMIT_UPDATE, &p, &m);
	if (rc) {
		if (c->err == ER_DUP_ENTRY)
			return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
			                             "cannot commit run %s as %s: its workflow already has an active run with the "
			                             "same foreign id",
			                             cm->run_id, dura_run_state_name(cm->run_state));
		return rc;
	}
	uint64_t n = (uint64_t)mysql_stmt_affected_rows(m->st);
	int64_t step_no = (int64_t)mysql_stmt_insert_id(m->st);
	st_done(m);
	if (n == 0)
		return commit_miss(s, c, cm);
	*updated = 1;
	res->new_version = cm->expect_version + 1;
	res->step = do_step ? step_no - 1 : -1;
	if (do_step) {
		p.n = 0;
		pp_str(&p, cm->run_id);
		pp_int(&p, res->step);
		pp_str(&p, cm->node_id);
		pp_str(&p, cm->state);
		pp_time(&p, now);
		if ((rc = st_write(s, c, ST_STEP_INSERT, &p, NULL)) != 0) {
			if (c->err == ER_DUP_ENTRY)
				return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000", "run %s already has a step %lld",
				                             cm->run_id, (long long)res->step);
			return rc;
		}
	}
	if (do_event) {
		char buf[SUMMARY_BUF], *heap = NULL;
		const char *head = NULL;
		if (!cm->event_data && !(head = summary_pieces(buf, sizeof buf, cm, &res->step, NULL, &heap)))
			return dura_error_oom(MY);
		p.n = 0;
		pp_str(&p, event_id);
		pp_str(&p, cm->event_type ? cm->event_type : "step");
		pp_str(&p, cm->event_data);
		pp_str(&p, head);
		pp_time(&p, now);
		pp_str(&p, cm->run_id);
		rc = st_write(s, c, ST_OUTBOX_INSERT, &p, NULL);
		dura_free(heap);
		if (rc)
			return rc;
	}
	return 0;
}

/* Errors that say the procedure cannot be used (absent, not allowed, its
 * definer gone): commit the long way from now on. */
static int proc_unusable(unsigned e)
{
	return e == ER_SP_DOES_NOT_EXIST || e == ER_PROCACCESS_DENIED_ERROR || e == ER_NO_SUCH_USER ||
	       e == ER_DBACCESS_DENIED_ERROR || e == ER_TABLEACCESS_DENIED_ERROR ||
	       e == ER_SPECIFIC_ACCESS_DENIED_ERROR || e == ER_SP_WRONG_NO_OF_ARGS || e == ER_NOT_SUPPORTED_YET;
}

/*
 * commit_one() in one round trip: CALL dura_commit, read its row, drain the
 * CALL's status. 1: the procedure is not usable here (nothing was done),
 * commit the long way. The lost-connection test hook applies as in
 * tx_commit().
 */
static int commit_call_with(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                            dura_commit_result *res, const char *sum_head, const char *sum_tail)
{
	const int do_step = !(cm->flags & DURA_COMMIT_NO_STEP);
	const int do_event = !(cm->flags & DURA_COMMIT_NO_EVENT);
	const int release = (cm->flags & DURA_COMMIT_RELEASE_LEASE) != 0;
	my_params p;
	my_stmt *m;
	int rc = prep(s, c, ST_COMMIT_CALL, &m);
	if (rc) {
		if (proc_unusable(c->err)) {
			atomic_store(&s->use_proc, 0);
			dura_error_clear();
			return 1;
		}
		return rc;
	}
	p.n = 0;
	pp_str(&p, cm->run_id);
	pp_int(&p, cm->expect_version);
	pp_str(&p, cm->state);
	pp_str(&p, cm->status ? cm->status : "");
	pp_str(&p, cm->error ? cm->error : "");
	pp_int(&p, cm->attempt);
	pp_time(&p, cm->next_run_at ? cm->next_run_at : now);
	pp_time(&p, now);
	pp_int(&p, do_step);
	if (cm->run_state)
		pp_int(&p, cm->run_state);
	else
		pp_null(&p);
	pp_int(&p, release);
	pp_str(&p, cm->node_id ? cm->node_id : "");
	pp_str(&p, do_event ? event_id : "");
	pp_str(&p, cm->event_type ? cm->event_type : "step");
	pp_str(&p, cm->event_data);
	pp_str(&p, sum_head);
	pp_str(&p, sum_tail);
	if (mysql_stmt_bind_param(m->st, p.b))
		return my_fail(s, c, m->st, "CALL dura_commit");
	int applied, lost = lost_commit(&applied);
	if (lost && !applied) {
		c->broken = 1;
		c->err = CR_SERVER_LOST;
		return dura_error_set_native(DURA_EIO, MY, CR_SERVER_LOST, "HY000",
		                             "CALL dura_commit: Lost connection to server during query (simulated by a test)");
	}
	if (mysql_stmt_execute(m->st)) {
		unsigned e = mysql_stmt_errno(m->st);
		if (proc_unusable(e)) {
			atomic_store(&s->use_proc, 0);
			return 1;
		}
		rc = my_fail(s, c, m->st, "CALL dura_commit");
		if (e == ER_DUP_ENTRY) {
			const char *msg = mysql_stmt_error(m->st);
			if (strstr(msg, "unique_run_step"))
				rc = dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
				                           "run %s already has the step this commit would write", cm->run_id);
			else
				rc = dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
				                           "cannot commit run %s as %s: its workflow already has an active run with "
				                           "the same foreign id",
				                           cm->run_id, dura_run_state_name(cm->run_state));
		}
		return rc;
	}
	/* the row, then the CALL's own status */
	long long ok = -1, v = 0;
	my_bool v_null = 0;
	int got = 0;
	do {
		if (mysql_stmt_field_count(m->st) > 0) {
			MYSQL_BIND b[2];
			memset(b, 0, sizeof(b));
			b[0].buffer_type = MYSQL_TYPE_LONGLONG;
			b[0].buffer = &ok;
			b[1].buffer_type = MYSQL_TYPE_LONGLONG;
			b[1].buffer = &v;
			b[1].is_null = &v_null;
			if (mysql_stmt_bind_result(m->st, b) || mysql_stmt_store_result(m->st))
				return my_fail(s, c, m->st, "reading dura_commit's result");
			while (mysql_stmt_fetch(m->st) == 0)
				got = 1;
			mysql_stmt_free_result(m->st);
		}
		rc = mysql_stmt_next_result(m->st);
	} while (rc == 0);
	if (rc > 0)
		return my_fail(s, c, m->st, "CALL dura_commit");
	/* the result bindings were the CALL's: this statement keeps none */
	if (lost) {
		c->broken = 1;
		c->err = CR_SERVER_LOST;
		return dura_error_set_native(DURA_EIO, MY, CR_SERVER_LOST, "HY000",
		                             "CALL dura_commit: Lost connection to server during query (simulated by a test)");
	}
	if (!got)
		return dura_error_set_native(DURA_ERROR, MY, 0, NULL, "CALL dura_commit returned no row");
	if (ok == 1) {
		res->new_version = cm->expect_version + 1;
		res->step = do_step ? v : -1;
		return 0;
	}
	if (v_null)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", cm->run_id);
	return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL,
	                             "run %s is at version %lld, not the expected version %lld (another worker changed it)",
	                             cm->run_id, v, (long long)cm->expect_version);
}

static int commit_call(my_store *s, my_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                       dura_commit_result *res)
{
	char buf[SUMMARY_BUF], *heap = NULL;
	const char *head = NULL, *tail = NULL;
	if (!cm->event_data && !(cm->flags & DURA_COMMIT_NO_EVENT) &&
	    !(head = summary_pieces(buf, sizeof buf, cm, NULL, &tail, &heap)))
		return dura_error_oom(MY);
	int rc = commit_call_with(s, c, cm, event_id, now, res, head, tail);
	dura_free(heap);
	return rc;
}

struct commit_arg {
	const dura_commit *cm;
	const char *event_id;
	int64_t now;
	dura_commit_result *res;
	int proc; /* through the procedure (no transaction of ours) */
};

static int commit_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct commit_arg *a = arg;
	int updated;
	a->res->new_version = 0;
	a->res->step = -1;
	if (again) {
		int v = commit_verify(s, c, a->cm, a->event_id, a->now, a->res);
		if (v != 0)
			return v < 0 ? v : 0;
	}
	if (a->proc) {
		int rc = commit_call(s, c, a->cm, a->event_id, a->now, a->res);
		if (rc != 1)
			return rc;
		return MY_FALLBACK; /* not usable: the long way, in a transaction */
	}
	return commit_one(s, c, a->cm, a->event_id, a->now, a->res, &updated);
}

static size_t commit_size(const dura_commit *cm)
{
	return strlen(cm->state) + (cm->event_data ? strlen(cm->event_data) : 0) + (cm->error ? strlen(cm->error) : 0);
}

static int my_commit(void *impl, const dura_commit *cm, const char *event_id, dura_commit_result *res)
{
	my_store *s = impl;
	struct commit_arg a = {cm, event_id, dura_now_ms(), res, 0};
	int rc = check_size(s, commit_size(cm), "the step's state");
	if (rc == 0) {
		/* a record-only commit is one statement: no transaction needed;
		 * the others are one CALL when the procedure can be used, else a
		 * transaction of several statements */
		int single = (cm->flags & DURA_COMMIT_NO_STEP) && (cm->flags & DURA_COMMIT_NO_EVENT);
		rc = MY_FALLBACK;
		if (single) {
			rc = run_op(s, commit_body, &a, OP_IDEMPOTENT);
		} else if (atomic_load(&s->use_proc)) {
			a.proc = 1;
			rc = run_op(s, commit_body, &a, OP_IDEMPOTENT);
		}
		if (rc == MY_FALLBACK) {
			a.proc = 0;
			rc = run_op(s, commit_body, &a, OP_TX | OP_IDEMPOTENT);
		}
	}
	if (rc) {
		res->new_version = 0;
		res->step = -1;
	}
	return rc;
}

struct batch_arg {
	const dura_commit *cm;
	const char *const *ids;
	size_t n;
	dura_commit_result *res;
	int64_t now;
	int *poisoned; /* commits that failed after their update: left out of the rerun */
	size_t failed;
	char first[256];
};

static void batch_failed(struct batch_arg *a, size_t i, int code)
{
	a->res[i].code = code;
	a->res[i].new_version = 0;
	a->res[i].step = -1;
	if (!a->failed++) {
		const dura_error *e = dura_error_last();
		snprintf(a->first, sizeof(a->first), "%s", e && e->message ? e->message : "");
	}
}

static int batch_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct batch_arg *a = arg;
	a->failed = 0;
	a->first[0] = '\0';
	for (size_t i = 0; i < a->n; i++) {
		const dura_commit *cm = &a->cm[i];
		dura_commit_result *r = &a->res[i];
		memset(r, 0, sizeof(*r));
		r->step = -1;
		if (a->poisoned[i]) {
			batch_failed(a, i, a->poisoned[i]);
			continue;
		}
		int rc = 0, updated = 0;
		if (again) {
			/* the whole batch landed or none of it did */
			rc = commit_verify(s, c, cm, a->ids[i], a->now, r);
			if (rc == 1)
				continue;
		}
		if (rc == 0)
			rc = commit_one(s, c, cm, a->ids[i], a->now, r, &updated);
		if (rc == 0)
			continue;
		if (rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			return rc;
		if (updated) {
			/* this commit wrote before failing: run the batch again without it */
			a->poisoned[i] = rc;
			return MY_AGAIN;
		}
		batch_failed(a, i, rc);
	}
	return 0;
}

static int my_commit_batch(void *impl, const dura_commit *cm, const char *const *event_ids, size_t n,
                           dura_commit_result *res)
{
	my_store *s = impl;
	struct batch_arg a;
	memset(&a, 0, sizeof(a));
	a.cm = cm;
	a.ids = event_ids;
	a.n = n;
	a.res = res;
	a.now = dura_now_ms();
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = check_size(s, commit_size(&cm[i]), "a step's state");
	if (rc == 0 && !(a.poisoned = dura_calloc(n, sizeof(int))))
		rc = dura_error_oom(MY);
	if (rc == 0)
		rc = run_op(s, batch_body, &a, OP_TX | OP_IDEMPOTENT);
	dura_free(a.poisoned);
	if (rc) {
		for (size_t i = 0; i < n; i++) {
			res[i].code = rc;
			res[i].new_version = 0;
			res[i].step = -1;
		}
		return rc;
	}
	if (!a.failed)
		return 0;
	return dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL, "%zu of %zu commits in the batch did not go in (first: %s)",
	                             a.failed, n, a.first);
}

struct steps_arg {
	int id;
	const char *run_id;
	int64_t from, step;
	size_t limit;
	dura_step_list *list;
	dura_step **one;
};

static int steps_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct steps_arg *a = arg;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	pp_str(&p, a->run_id);
	if (a->id == ST_HISTORY) {
		pp_int(&p, a->from);
		pp_int(&p, a->limit ? (int64_t)(a->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)a->limit) : INT64_MAX);
	} else if (a->id == ST_STEP_GET) {
		pp_int(&p, a->step);
	}
	if (a->list) {
		dura_step_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return collect(s, c, a->id, &p, (void **)&a->list->items, &a->list->count, sizeof(*a->list->items),
		               item_step, dura_step_clear);
	}
	int rc = st_run(s, c, a->id, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		dura_step *st = dura_malloc(sizeof(*st));
		if (!st)
			rc = dura_error_oom(MY);
		else if ((rc = dura_sql_row_step(MY_ROW(m), st)) != 0)
			dura_free(st);
		else
			*a->one = st;
	} else if (rc == 0) {
		rc = DURA_ENOTFOUND;
	}
	st_done(m);
	return rc;
}

static int my_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	struct steps_arg a = {ST_HISTORY, run_id, from, 0, limit, out, NULL};
	return run_op(impl, steps_body, &a, OP_IDEMPOTENT);
}

static int my_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	struct steps_arg a = {ST_STEP_GET, run_id, 0, step, 0, NULL, out};
	int rc = run_op(impl, steps_body, &a, OP_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s has no step %lld", run_id, (long long)step);
	return rc;
}

static int my_load_latest(void *impl, const char *run_id, dura_step **out)
{
	struct steps_arg a = {ST_STEP_LATEST, run_id, 0, 0, 0, NULL, out};
	int rc = run_op(impl, steps_body, &a, OP_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s has no committed step", run_id);
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* A write by one key, in autocommit. After an unknown outcome (again), a
 * miss means our first attempt did it. */
struct write_arg {
	int id;
	my_params *p;
	uint64_t affected;
	int again;
};

static int write_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct write_arg *a = arg;
	a->again |= again;
	return st_write(s, c, a->id, a->p, &a->affected);
}

static int write_by(my_store *s, int id, my_params *p, uint64_t *affected, int *again)
{
	struct write_arg a = {id, p, 0, 0};
	int rc = run_op(s, write_body, &a, OP_IDEMPOTENT);
	if (affected)
		*affected = a.affected;
	if (again)
		*again = a.again;
	return rc;
}

/* A DELETE by one key: ENOTFOUND (with the message fmt, arg) when no row went. */
static int delete_by(my_store *s, int id, const char *key, const char *fmt)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	pp_str(&p, key);
	int rc = write_by(s, id, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, fmt, key);
	return rc;
}

static int my_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	my_store *s = impl;
	int rc = check_size(s, strlen(state), "the checkpoint's state");
	if (rc)
		return rc;
	my_params p;
	int64_t now = dura_now_ms();
	p.n = 0;
	pp_str(&p, cp_id);
	pp_str(&p, run_id);
	pp_str(&p, state);
	pp_int(&p, step);
	pp_time(&p, now);
	pp_time(&p, now);
	return write_by(s, ST_CP_SAVE, &p, NULL, NULL);
}

struct cp_arg {
	const char *key;
	dura_checkpoint *one;
	dura_checkpoint_list *list;
};

static int cp_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cp_arg *a = arg;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	pp_str(&p, a->key);
	if (a->list) {
		pp_str(&p, a->key);
		dura_checkpoint_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return collect(s, c, ST_CP_LIST, &p, (void **)&a->list->items, &a->list->count, sizeof(*a->list->items),
		               item_checkpoint, dura_checkpoint_clear);
	}
	int rc = st_run(s, c, ST_CP_LOAD, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1)
		rc = dura_sql_row_checkpoint(MY_ROW(m), a->one);
	else if (rc == 0)
		rc = DURA_ENOTFOUND;
	st_done(m);
	return rc;
}

static int my_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	dura_checkpoint *cp = dura_calloc(1, sizeof(*cp));
	if (!cp)
		return dura_error_oom(MY);
	struct cp_arg a = {cp_id, cp, NULL};
	int rc = run_op(impl, cp_body, &a, OP_IDEMPOTENT);
	if (rc) {
		dura_free(cp);
		if (rc == DURA_ENOTFOUND)
			return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "checkpoint %s not found", cp_id);
		return rc;
	}
	*out = cp;
	return 0;
}

static int my_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	struct cp_arg a = {run_id, NULL, out};
	return run_op(impl, cp_body, &a, OP_IDEMPOTENT);
}

static int my_checkpoint_delete(void *impl, const char *cp_id)
{
	return delete_by(impl, ST_CP_DELETE, cp_id, "checkpoint %s not found");
}

/* ---- cache ------------------------------------------------------------------------ */

struct cache_get_arg {
	const char *key;
	dura_cache_entry **out;
};

static int cache_get_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_get_arg *a = arg;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	pp_str(&p, a->key);
	pp_time(&p, dura_now_ms());
	int rc = st_run(s, c, ST_CACHE_GET, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		dura_cache_entry *e = dura_malloc(sizeof(*e));
		if (!e)
			rc = dura_error_oom(MY);
		else if ((rc = dura_sql_row_cache_entry(MY_ROW(m), e, 1)) != 0)
			dura_free(e);
		else
			*a->out = e;
	} else if (rc == 0) {
		rc = DURA_ENOTFOUND;
	}
	st_done(m);
	return rc;
}

static int my_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	struct cache_get_arg a = {key, out};
	int rc = run_op(impl, cache_get_body, &a, OP_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "cache key %s not found (or expired)", key);
	return rc;
}

struct cache_put_arg {
	const char *key;
	const void *value;
	size_t len;
	const char *error, *metadata;
	int64_t now, ttl_ms;
};

/* The value first, then the claim goes: a claimer that sees no claim sees
 * the value (cache_claim locks the claim row before it looks). */
static int cache_put_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_put_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	pp_str(&p, a->key);
	pp_blob(&p, a->value, a->len);
	pp_str(&p, a->error);
	pp_time(&p, a->now);
	if (a->ttl_ms)
		pp_time(&p, add_ms(a->now, a->ttl_ms));
	else
		pp_null(&p);
	pp_str(&p, a->metadata);
	int rc = st_write(s, c, ST_CACHE_PUT, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	pp_str(&p, a->key);
	return st_write(s, c, ST_CLAIM_DROP, &p, NULL);
}

static int my_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	my_store *s = impl;
	int rc = check_size(s, len + (error ? strlen(error) : 0) + (metadata ? strlen(metadata) : 0), "the cache value");
	if (rc)
		return rc;
	struct cache_put_arg a = {key, value, len, error, metadata, dura_now_ms(), ttl_ms};
	return run_op(s, cache_put_body, &a, OP_IDEMPOTENT);
}

struct claim_key_arg {
	const char *key, *owner;
	int64_t lease_ms;
};

/*
 * Single flight: lock the claim row first (a claimer that is storing its
 * value holds it until its put commits), then look for a live value, then
 * take or refresh the claim. Two claimers of a key nobody holds both
 * insert; the unique key lets one in and the other runs again and sees it.
 * A new claim row looks for the value once more (see below).
 */
/* 0 if key has no live value, DURA_EEXISTS if it has, or the error. */
static int no_live_value(my_store *s, my_conn *c, const char *key, int64_t now)
{
	my_params p;
	p.n = 0;
	pp_str(&p, key);
	pp_time(&p, now);
	int rc = st_exists(s, c, ST_CACHE_LIVE, &p);
	if (rc < 0)
		return rc;
	return rc == 1 ? dura_error_set_native(DURA_EEXISTS, MY, 0, NULL, "cache key %s already has a value", key) : 0;
}

static int cache_claim_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct claim_key_arg *a = arg;
	int64_t now = dura_now_ms(), until = 0;
	char holder[DURA_MAX_ID_LEN + 1] = "";
	int have = 0;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	pp_str(&p, a->key);
	int rc = st_run(s, c, ST_CLAIM_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		have = 1;
		snprintf(holder, sizeof(holder), "%s", c_str(m, 0) ? c_str(m, 0) : "");
		until = c_time(m, 1);
		rc = 0;
	}
	st_done(m);
	if (rc)
		return rc;
	if ((rc = no_live_value(s, c, a->key, now)) != 0)
		return rc;
	if (have && strcmp(holder, a->owner) != 0 && until > now) {
		char t[24];
		dura_time_format(t, until);
		return dura_error_set_native(DURA_EBUSY, MY, 0, NULL, "cache key %s is claimed by %s until %s", a->key, holder, t);
	}
	p.n = 0;
	if (have) {
		pp_str(&p, a->owner);
		pp_time(&p, add_ms(now, a->lease_ms));
		pp_str(&p, a->key);
		return st_write(s, c, ST_CLAIM_UPDATE, &p, NULL);
	}
	pp_str(&p, a->key);
	pp_str(&p, a->owner);
	pp_time(&p, add_ms(now, a->lease_ms));
	rc = st_write(s, c, ST_CLAIM_INSERT, &p, NULL);
	if (rc && c->err == ER_DUP_ENTRY)
		return MY_AGAIN;
	if (rc)
		return rc;
	/* With no claim row there was nothing to lock: between our look and
	 * our insert another claimer may have claimed, stored its value and
	 * let go. Now that the new row is ours, look again; a value found
	 * rolls our claim back. */
	return no_live_value(s, c, a->key, now);
}

static int my_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	struct claim_key_arg a = {key, owner, lease_ms};
	/* running it again is safe: the same owner may claim again */
	return run_op(impl, cache_claim_body, &a, OP_TX | OP_IDEMPOTENT);
}

static int my_cache_release(void *impl, const char *key, const char *owner)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	pp_str(&p, key);
	pp_str(&p, owner);
	int rc = write_by(impl, ST_CLAIM_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "cache key %s is not claimed by %s", key, owner);
	return rc;
}

static int my_cache_delete(void *impl, const char *key)
{
	return delete_by(impl, ST_CACHE_DELETE, key, "cache key %s not found");
}

static int purge_body(my_store *s, my_conn *c, void *arg, int again)
{
	int64_t *count = arg;
	my_params p;
	uint64_t n = 0;
	int64_t now = dura_now_ms();
	(void)again;
	p.n = 0;
	pp_time(&p, now);
	int rc = st_write(s, c, ST_CACHE_PURGE, &p, &n);
	if (rc)
		return rc;
	*count = (int64_t)n;
	/* expired claims are litter too; they are not counted */
	return st_write(s, c, ST_CLAIM_PURGE, &p, NULL);
}

static int my_cache_purge_expired(void *impl, int64_t *count)
{
	*count = 0;
	return run_op(impl, purge_body, count, OP_IDEMPOTENT);
}

struct cache_list_arg {
	const char *cursor;
	size_t limit;
	dura_cache_list *out;
};

static int cache_list_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_list_arg *a = arg;
	my_params p;
	(void)again;
	dura_cache_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	pp_str(&p, a->cursor);
	pp_str(&p, a->cursor);
	pp_int(&p, (int64_t)a->limit);
	int rc = collect(s, c, ST_CACHE_LIST, &p, (void **)&a->out->items, &a->out->count, sizeof(*a->out->items),
	                 item_cache, dura_cache_entry_clear);
	if (rc == 0 && a->out->count == a->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].key);
		if (!a->out->next_cursor)
			rc = dura_error_oom(MY);
	}
	if (rc) {
		dura_cache_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

static int my_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	struct cache_list_arg a = {cursor, limit, out};
	return run_op(impl, cache_list_body, &a, OP_IDEMPOTENT);
}

static int cache_stats_body(my_store *s, my_conn *c, void *arg, int again)
{
	dura_cache_stats *out = arg;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	pp_time(&p, dura_now_ms());
	int rc = st_run(s, c, ST_CACHE_STATS, &p, &m);
	if (rc)
		return rc;
	rc = st_fetch(s, c, m);
	if (rc == 1) {
		out->entries = c_int(m, 0);
		out->expired = c_int(m, 1);
		out->bytes = c_int(m, 2);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, MY, 0, NULL, "reading cache statistics: no row");
	}
	st_done(m);
	return rc;
}

static int my_cache_stats(void *impl, dura_cache_stats *out)
{
	return run_op(impl, cache_stats_body, out, OP_IDEMPOTENT);
}

/* ---- leases ------------------------------------------------------------------------ */

/* ["wf1","wf2",...] for JSON_CONTAINS, when more workflows than slots. */
static char *json_array_of(const char *const *v, size_t n)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	char *text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (!text)
		return NULL;
	char *out = dura_strdup(text);
	free(text);
	return out;
}

struct claim_arg {
	const char *owner;
	const char *const *wfs;
	size_t nwfs, max;
	int64_t lease_ms;
	const char *json;
	dura_record_list *out;
};

/*
 * Claim: the due runs, oldest first, locked as they are read (SKIP LOCKED
 * passes over the ones another claimer holds; without it a claimer waits
 * for them, then sees them leased and passes), then leased in one UPDATE
 * per MY_APPLY_SLOTS runs. The rows are locked, so the records read are
 * the records as the UPDATE leaves them but for owner, expiry and version.
 */
static int claim_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct claim_arg *a = arg;
	int64_t now = dura_now_ms(), until = add_ms(now, a->lease_ms);
	my_params p;
	int id;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	pp_time(&p, now);
	pp_time(&p, now);
	if (a->nwfs == 0) {
		id = ST_CLAIM_ANY;
	} else if (a->nwfs <= MY_WF_SLOTS) {
		id = ST_CLAIM_WF;
		for (size_t i = 0; i < MY_WF_SLOTS; i++)
			pp_str(&p, a->wfs[i < a->nwfs ? i : 0]);
	} else {
		id = ST_CLAIM_JSON;
		pp_str(&p, a->json);
	}
	pp_int(&p, (int64_t)a->max);
	int rc = collect(s, c, id, &p, (void **)&a->out->items, &a->out->count, sizeof(*a->out->items), item_record,
	                 dura_record_clear);
	if (rc)
		return rc;
	for (size_t at = 0; at < a->out->count; at += MY_APPLY_SLOTS) {
		size_t k = a->out->count - at < MY_APPLY_SLOTS ? a->out->count - at : MY_APPLY_SLOTS;
		uint64_t n = 0;
		p.n = 0;
		pp_str(&p, a->owner);
		pp_time(&p, until);
		for (size_t i = 0; i < MY_APPLY_SLOTS; i++)
			pp_str(&p, i < k ? a->out->items[at + i].run_id : "");
		if ((rc = st_write(s, c, ST_CLAIM_APPLY, &p, &n)) != 0)
			break;
		if (n != k) {
			rc = dura_error_set_native(DURA_ERROR, MY, 0, NULL, "claiming runs: %llu of %zu locked runs were leased",
			                           (unsigned long long)n, k);
			break;
		}
	}
	for (size_t i = 0; rc == 0 && i < a->out->count; i++) {
		dura_record *r = &a->out->items[i];
		char *owner = dura_strdup(a->owner);
		if (!owner) {
			rc = dura_error_oom(MY);
			break;
		}
		dura_free(r->lease_owner);
		r->lease_owner = owner;
		r->lease_expires_at = until;
		r->version++;
	}
	if (rc) {
		dura_record_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

static int my_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                         int64_t lease_ms, dura_record_list *out)
{
	struct claim_arg a = {owner, workflows, nworkflows, max, lease_ms, NULL, out};
	char *json = NULL;
	if (nworkflows > MY_WF_SLOTS && !(json = json_array_of(workflows, nworkflows)))
		return dura_error_oom(MY);
	a.json = json;
	/* not OP_IDEMPOTENT: a claim whose COMMIT was lost is not rerun (it
	 * would claim more); its runs come back when the lease expires */
	int rc = run_op(impl, claim_body, &a, OP_TX);
	dura_free(json);
	return rc;
}

/* A lease update that matched nothing: why not. */
static int lease_miss(my_store *s, const char *run_id, const char *owner, int again)
{
	my_conn *c;
	my_params p;
	my_stmt *m;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	p.n = 0;
	pp_str(&p, run_id);
	if ((rc = st_run(s, c, ST_LEASE_OWNER, &p, &m)) == 0) {
		rc = st_fetch(s, c, m);
		if (rc == 1) {
			const char *holder = c_str(m, 0);
			if (again && (!holder || !*holder))
				rc = 0; /* released by our first attempt */
			else if (holder && *holder)
				rc = dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL, "run %s is leased by %s, not by %s", run_id, holder,
				                           owner);
			else
				rc = dura_error_set_native(DURA_ECONFLICT, MY, 0, NULL, "run %s is not leased (by %s or anyone)", run_id,
				                           owner);
		} else if (rc == 0) {
			rc = dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, "run %s not found", run_id);
		}
		st_done(m);
	}
	pool_put(s, c);
	return rc;
}

static int my_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	my_params p;
	uint64_t n = 0;
	p.n = 0;
	pp_time(&p, add_ms(dura_now_ms(), lease_ms));
	pp_str(&p, run_id);
	pp_str(&p, owner);
	int rc = write_by(impl, ST_LEASE_EXTEND, &p, &n, NULL);
	if (rc == 0 && n == 0)
		return lease_miss(impl, run_id, owner, 0);
	return rc;
}

/*
 * A worker's heartbeat (extend_leases): one UPDATE per MY_APPLY_SLOTS runs,
 * in one transaction. Only when an UPDATE changed fewer rows than it named
 * is each of its runs read, to tell which lease is lost (or unchanged:
 * extended twice in one millisecond).
 */
struct extend_arg {
	const char *owner;
	const char *const *run_ids;
	size_t n;
	int64_t until;
	int *codes;
};

static int extend_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct extend_arg *a = arg;
	(void)again; /* setting an expiry again is harmless */
	for (size_t at = 0; at < a->n; at += MY_APPLY_SLOTS) {
		size_t k = a->n - at < MY_APPLY_SLOTS ? a->n - at : MY_APPLY_SLOTS;
		my_params p;
		uint64_t changed = 0;
		p.n = 0;
		pp_time(&p, a->until);
		pp_str(&p, a->owner);
		for (size_t i = 0; i < MY_APPLY_SLOTS; i++)
			pp_str(&p, i < k ? a->run_ids[at + i] : "");
		int rc = st_write(s, c, ST_LEASE_EXTEND_MANY, &p, &changed);
		if (rc)
			return rc;
		for (size_t i = 0; i < k; i++)
			a->codes[at + i] = 0;
		if (changed == k)
			continue;
		for (size_t i = 0; i < k; i++) {
			my_stmt *m;
			p.n = 0;
			pp_str(&p, a->run_ids[at + i]);
			if ((rc = st_run(s, c, ST_LEASE_OWNER, &p, &m)) != 0)
				return rc;
			rc = st_fetch(s, c, m);
			if (rc == 1) {
				const char *holder = c_str(m, 0);
				rc = 0;
				if (!holder || strcmp(holder, a->owner) != 0)
					a->codes[at + i] = DURA_ECONFLICT;
			} else if (rc == 0) {
				a->codes[at + i] = DURA_ENOTFOUND;
			}
			st_done(m);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int my_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                            int *codes)
{
	struct extend_arg a = {owner, run_ids, n, add_ms(dura_now_ms(), lease_ms), codes};
	int rc = run_op(impl, extend_body, &a, OP_TX | OP_IDEMPOTENT);
	if (rc == 0)
		dura_error_clear(); /* the codes tell which leases are lost */
	return rc;
}

static int my_release_lease(void *impl, const char *run_id, const char *owner)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	pp_str(&p, run_id);
	pp_str(&p, owner);
	int rc = write_by(impl, ST_LEASE_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0)
		return lease_miss(impl, run_id, owner, again);
	return rc;
}

/* ---- outbox ------------------------------------------------------------------------ */

struct poll_arg {
	size_t limit;
	dura_event_list *out;
};

static int poll_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct poll_arg *a = arg;
	my_params p;
	(void)again;
	dura_event_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	pp_int(&p, (int64_t)a->limit);
	return collect(s, c, ST_OUTBOX_POLL, &p, (void **)&a->out->items, &a->out->count, sizeof(*a->out->items),
	               item_event, dura_event_clear);
}

static int my_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	struct poll_arg a = {limit, out};
	return run_op(impl, poll_body, &a, OP_IDEMPOTENT);
}

static int my_outbox_ack(void *impl, const char *event_id)
{
	return delete_by(impl, ST_OUTBOX_ACK, event_id, "outbox event %s not found (already acknowledged?)");
}

/* ---- raw SQL ------------------------------------------------------------------------- */

/*
 * Text protocol, several statements allowed; every result set goes to the
 * callback. The connection is closed afterwards, not pooled: the SQL may
 * have changed its session (USE, SET, an open transaction).
 */
static int my_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	my_store *s = impl;
	my_conn *c;
	int rc = pool_get(s, &c);
	if (rc)
		return rc;
	if (mysql_real_query(c->db, sql, strlen(sql))) {
		rc = my_fail(s, c, NULL, "SQL failed");
		goto out;
	}
	int stopped = 0;
	for (;;) {
		MYSQL_RES *res = mysql_store_result(c->db);
		if (res) {
			unsigned nf = mysql_num_fields(res);
			MYSQL_FIELD *f = mysql_fetch_fields(res);
			char **names = dura_calloc(nf ? nf : 1, sizeof(char *));
			if (!names) {
				mysql_free_result(res);
				rc = dura_error_oom(MY);
				break;
			}
			for (unsigned i = 0; i < nf; i++)
				names[i] = f[i].name;
			MYSQL_ROW row;
			while (!stopped && (row = mysql_fetch_row(res)) != NULL)
				if (cb && cb((int)nf, row, names, payload) != 0)
					stopped = 1;
			dura_free(names);
			mysql_free_result(res);
		} else if (mysql_field_count(c->db)) {
			rc = my_fail(s, c, NULL, "SQL failed");
			break;
		}
		int nr = mysql_next_result(c->db);
		if (nr > 0) {
			rc = my_fail(s, c, NULL, "SQL failed");
			break;
		}
		if (nr < 0)
			break;
	}
out:
	/* closed, not pooled (and the idle ones are kept) */
	pthread_mutex_lock(&s->mu);
	s->nopen--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	conn_close(c);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__mysql_ops = {
	.version = DURA_STORE_ABI_VERSION,
	.scheme = "mysql",
	.caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL,
	.open = my_open,
	.close = my_close,
	.ping = my_ping,
	.info = my_info,
	.stats = my_stats,
	.migrate = my_migrate,
	.create_run = my_create_run,
	.get_run = my_get_run,
	.latest_run = my_latest_run,
	.list_runs = my_list_runs,
	.set_run_state = my_set_run_state,
	.delete_run_data = my_delete_run_data,
	.commit = my_commit,
	.commit_batch = my_commit_batch,
	.history = my_history,
	.get_step = my_get_step,
	.load_latest = my_load_latest,
	.checkpoint_save = my_checkpoint_save,
	.checkpoint_load = my_checkpoint_load,
	.checkpoint_list = my_checkpoint_list,
	.checkpoint_delete = my_checkpoint_delete,
	.cache_get = my_cache_get,
	.cache_put = my_cache_put,
	.cache_claim = my_cache_claim,
	.cache_release = my_cache_release,
	.cache_delete = my_cache_delete,
	.cache_purge_expired = my_cache_purge_expired,
	.cache_list = my_cache_list,
	.cache_stats = my_cache_stats,
	.claim_runs = my_claim_runs,
	.extend_lease = my_extend_lease,
	.release_lease = my_release_lease,
	.outbox_poll = my_outbox_poll,
	.outbox_ack = my_outbox_ack,
	.exec_sql = my_exec_sql,
	.wait_change = NULL,
	.atfork_child = my_atfork_child,
	.extend_leases = my_extend_leases,
};
