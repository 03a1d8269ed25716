/*
 * conn.c - the PostgreSQL store's connections: opening one from the
 * handle's libpq keywords and checking the server, what a failure means
 * (the code, the message with its fix, whether the connection is gone,
 * whether the transaction may run again), transactions, and the
 * callbacks sql/pool.h and sql/run.h call.
 *
 * libpq keeps no global state a fork could break; a forked child lets go
 * of the parent's connections without ending their sessions (abandon):
 * the socket is pointed at /dev/null before PQfinish() says goodbye on it.
 */
#include "pg.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- what a failure means -------------------------------------------------------- */

static int is(const char *state, const char *code)
{
	return strcmp(state, code) == 0;
}

static int class_is(const char *state, const char *cls)
{
	return strncmp(state, cls, 2) == 0;
}

static int code_of(const char *st)
{
	if (is(st, "40001") || is(st, "40P01") || is(st, "55P03") || is(st, "53300") || is(st, "53400"))
		return DURA_EBUSY;
	if (is(st, "23505"))
		return DURA_EEXISTS;
	if (is(st, "42P01") || is(st, "3D000") || is(st, "42883"))
		return DURA_ENOTFOUND;
	if (is(st, "57014"))
		return DURA_ETIMEOUT;
	if (is(st, "53200"))
		return DURA_ENOMEM;
	if (is(st, "54000") || is(st, "22001") || is(st, "22P02") || is(st, "22P05") || is(st, "22021") ||
	    is(st, "22003") || is(st, "22008"))
		return DURA_EINVAL;
	if (class_is(st, "08") || class_is(st, "57") || is(st, "25006") || class_is(st, "28"))
		return DURA_EIO;
	return DURA_ERROR;
}

/* The first line of libpq's or the server's message, without "ERROR:  ". */
static void first_line(char *out, size_t size, const char *msg)
{
	if (!msg)
		msg = "";
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	size_t n = strcspn(msg, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
}

int dura_pg_fail(pg_store *s, pg_conn *c, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c->db);
	char line[512];
	first_line(line, sizeof(line), msg);
	if (PQstatus(c->db) == CONNECTION_BAD || !state) {
		/* no SQLSTATE: the failure is libpq's own, the connection's */
		if (PQstatus(c->db) == CONNECTION_BAD || !r) {
			c->base.broken = 1;
			snprintf(c->sqlstate, sizeof(c->sqlstate), "08006");
			return dura_error_set_native(DURA_EIO, PG, 0, "08006", "%s: the connection to the server at %s was lost: %s",
			                             what, s->where, line);
		}
		state = "XX000";
	}
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state);
	c->retryable = is(state, "40001") || is(state, "40P01");
	if (class_is(state, "57") && !is(state, "57014"))
		c->base.broken = 1; /* the server is shutting down or restarting the session */
	const char *hint = "";
	if (is(state, "42P01"))
		hint = "; dura's tables are missing: run `dura init`";
	else if (is(state, "25006"))
		hint = "; the server is a read-only standby: point the store URL at the primary";
	else if (is(state, "42501"))
		hint = "; the role lacks a privilege on dura's tables: GRANT SELECT, INSERT, UPDATE, DELETE on them";
	else if (is(state, "53300"))
		hint = "; lower pool_max or raise the server's max_connections";
	else if (is(state, "57014"))
		hint = "; the statement ran past statement_timeout (URL option timeout)";
	return dura_error_set_native(code_of(state), PG, 0, state, "%s: %s (SQLSTATE %s)%s", what, line, state, hint);
}

/* ---- connections ----------------------------------------------------------------- */

/* A clear message for a failed connect; libpq's own never holds a password. */
static int connect_fail(pg_store *s, PGconn *db)
{
	char line[512];
	const char *msg = db ? PQerrorMessage(db) : "out of memory";
	first_line(line, sizeof(line), msg);
	/* libpq prefixes "connection to server at ... failed: "; keep what follows */
	const char *why = strstr(msg ? msg : "", "failed: ");
	if (why) {
		first_line(line, sizeof(line), why + 8);
	}
	if (!db)
		return dura_error_oom(PG);
	if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied") ||
	    (PQconnectionNeedsPassword(db) && !PQconnectionUsedPassword(db)))
		return dura_error_set_native(DURA_EIO, PG, 0, "28P01",
		                             "authentication failed for role '%s' on the PostgreSQL server at %s: check the "
		                             "password (in the URL, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf (%s)",
		                             s->user, s->where, line);
	if (strstr(msg, "does not exist") && strstr(msg, "database"))
		return dura_error_set_native(DURA_ENOTFOUND, PG, 0, "3D000",
		                             "database '%s' does not exist on the PostgreSQL server at %s: create it first "
		                             "(createdb %s), then run `dura init`",
		                             s->database, s->where, s->database);
	/* a role's or a database's CONNECTION LIMIT is reached (SQLSTATE 53300 too) */
	if (strstr(msg, "too many connections for role") || strstr(msg, "too many connections for database"))
		return dura_error_set_native(DURA_EBUSY, PG, 0, "53300",
		                             "the PostgreSQL server at %s has no connection to spare for role '%s' on database "
		                             "'%s' (%s): lower pool_max or raise the role's or the database's CONNECTION LIMIT",
		                             s->where, s->user, s->database, line);
	if (strstr(msg, "too many clients") || strstr(msg, "remaining connection slots"))
		return dura_error_set_native(DURA_EBUSY, PG, 0, "53300",
		                             "the PostgreSQL server at %s has no connection to spare (%s): lower pool_max or "
		                             "raise max_connections",
		                             s->where, line);
	if (strstr(msg, "SSL") || strstr(msg, "certificate"))
		return dura_error_set_native(DURA_EIO, PG, 0, "08006", "TLS to the PostgreSQL server at %s failed: %s", s->where,
		                             line);
	return dura_error_set_native(DURA_EIO, PG, 0, "08006", "cannot connect to the PostgreSQL server at %s: %s",
	                             s->where, line);
}

/* What the first connection tells about the server. */
static int learn_server(pg_store *s, PGconn *db)
{
	int v = PQserverVersion(db);
	if (s->server_num)
		return 0;
	if (v < PG_MIN_SERVER)
		return dura_error_set_native(DURA_ENOTSUP, PG, 0, NULL,
		                             "the PostgreSQL server at %s is version %d.%d; dura needs PostgreSQL 12 or newer",
		                             s->where, v / 10000, v % 10000);
	s->server_num = v;
	snprintf(s->server_version, sizeof(s->server_version), "PostgreSQL %d.%d (libpq %d.%d)", v / 10000, v % 10000,
	         PQlibVersion() / 10000, PQlibVersion() % 10000);
	return 0;
}

int dura_pg_conn_open(pg_store *s, pg_conn **out)
{
	*out = NULL;
	pg_conn *c = dura_calloc(1, sizeof(*c));
	if (!c)
		return dura_error_oom(PG);
	c->db = PQconnectdbParams(s->keys, s->vals, 0);
	if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
		int rc = connect_fail(s, c->db);
		dura_pg_conn_close(c);
		return rc;
	}
	int rc = learn_server(s, c->db);
	if (rc) {
		dura_pg_conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void dura_pg_conn_close(pg_conn *c)
{
	if (!c)
		return;
	if (c->db)
		PQfinish(c->db);
	dura_free(c);
}

/* A forked child's copy of a parent's connection: the goodbye PQfinish()
 * sends goes to /dev/null, not to the parent's session. */
static void conn_abandon(pg_conn *c)
{
	if (c->db) {
		int fd = PQsocket(c->db);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0 && null >= 0)
			dup2(null, fd);
		if (null >= 0)
			close(null);
	}
	dura_pg_conn_close(c);
}

int dura_pg_exec_simple(pg_store *s, pg_conn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c->db, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = dura_pg_fail(s, c, r, what);
	PQclear(r);
	return rc;
}

/* ---- transactions ------------------------------------------------------------------ */

/*
 * The test hook, compiled only into the archive the tests link
 * (DURA_TEST_HOOKS): the next N commits lose their connection, after the
 * server committed (applied = 1) or before the commit left (applied = 0),
 * so that the recovery paths run deterministically.
 */
#ifdef DURA_TEST_HOOKS
#include <stdatomic.h>
struct dura__pg_test_hook {
	_Atomic int commits, applied;
} dura__pg_test_hook;

int dura_pg_lost_commit(int *applied)
{
	int n = atomic_load(&dura__pg_test_hook.commits);
	while (n > 0 && !atomic_compare_exchange_weak(&dura__pg_test_hook.commits, &n, n - 1)) {
	}
	*applied = atomic_load(&dura__pg_test_hook.applied);
	return n > 0;
}
#else
int dura_pg_lost_commit(int *applied)
{
	*applied = 0;
	return 0;
}
#endif

static int tx_begin(pg_store *s, pg_conn *c)
{
	int rc = dura_pg_exec_simple(s, c, "BEGIN", "BEGIN");
	if (rc == 0)
		c->in_tx = 1;
	return rc;
}

static int tx_commit(pg_store *s, pg_conn *c)
{
	int applied;
	c->in_tx = 0;
	if (dura_pg_lost_commit(&applied)) {
		if (applied)
			dura_pg_exec_simple(s, c, "COMMIT", "COMMIT");
		c->base.broken = 1;
		snprintf(c->sqlstate, sizeof(c->sqlstate), "08006");
		return dura_error_set_native(DURA_EIO, PG, 0, "08006",
		                             "COMMIT: the connection was lost (simulated by a test)");
	}
	return dura_pg_exec_simple(s, c, "COMMIT", "COMMIT");
}

/* Undo the open transaction, keeping the thread's error as it is. */
static void tx_rollback(pg_store *s, pg_conn *c)
{
	(void)s;
	if (!c->in_tx)
		return;
	c->in_tx = 0;
	if (c->base.broken)
		return;
	PGresult *r = PQexec(c->db, "ROLLBACK");
	if (!r || PQstatus(c->db) == CONNECTION_BAD)
		c->base.broken = 1;
	PQclear(r);
}

/* ---- sql/pool.h and sql/run.h -------------------------------------------------------- */

static int pool_open(void *store, dura_sql_conn **out)
{
	pg_conn *c;
	int rc = dura_pg_conn_open(store, &c);
	*out = rc ? NULL : &c->base;
	return rc;
}

static void pool_close(void *store, dura_sql_conn *c)
{
	(void)store;
	dura_pg_conn_close((pg_conn *)c);
}

static void pool_abandon(void *store, dura_sql_conn *c)
{
	(void)store;
	conn_abandon((pg_conn *)c);
}

/* A connection goes back idle, outside any transaction; one whose session
 * was left in a failed or unknown transaction state is closed. */
static void pool_reset(void *store, dura_sql_conn *c)
{
	pg_conn *pc = (pg_conn *)c;
	if (pc->in_tx)
		tx_rollback(store, pc);
	if (PQstatus(pc->db) != CONNECTION_OK || PQtransactionStatus(pc->db) != PQTRANS_IDLE)
		c->broken = 1;
}

const dura_sql_pool_ops dura_pg_pool_ops = {pool_open, pool_close, pool_abandon, pool_reset, NULL};

static int run_begin(void *store, dura_sql_conn *c)
{
	return tx_begin(store, (pg_conn *)c);
}

static int run_commit(void *store, dura_sql_conn *c)
{
	return tx_commit(store, (pg_conn *)c);
}

static void run_rollback(void *store, dura_sql_conn *c)
{
	tx_rollback(store, (pg_conn *)c);
}

static void run_clear(dura_sql_conn *c)
{
	((pg_conn *)c)->retryable = 0;
	((pg_conn *)c)->sqlstate[0] = '\0';
}

/* dura_pg_fail() marked the connection: broken when it is gone,
 * retryable on a serialization failure (40001) or deadlock (40P01). */
static dura_sql_failure run_classify(const dura_sql_conn *c)
{
	if (((const pg_conn *)c)->retryable)
		return DURA_SQL_RETRYABLE;
	return c->broken ? DURA_SQL_LOST : DURA_SQL_FAILED;
}

const dura_sql_driver dura_pg_driver = {
	PG, PG_BUSY_ATTEMPTS, PG_AGAIN_ATTEMPTS, run_begin, run_commit, run_rollback, run_clear, run_classify,
};
