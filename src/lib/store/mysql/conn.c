/*
 * conn.c - the MySQL store's connections: Connector/C's library and
 * thread setup, opening a connection and setting its session up (UTC,
 * strict, READ COMMITTED, utf8mb4), what the first connection tells about
 * the server (dura_my_learn_server()), the pool (dura_my_pool_get(),
 * dura_my_pool_put()), transactions, the retry loop (dura_my_run_op())
 * with its backoff, and the classification of MySQL's error numbers into
 * dura's codes (dura_my_fail()).
 *
 * Everything that talks to the server goes through dura_my_run_op(): it is
 * the one place that decides whether a failed operation runs again (the
 * rules for deadlocks, lock wait timeouts and lost connections are in
 * mysql.h's opening comment). The lost-commit test hook
 * (dura__mysql_test_hook, DURA_TEST_HOOKS only) is here too, next to the
 * COMMIT it fakes losing.
 */
#include "mysql.h"

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
int dura_my_thread(void)
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
int dura_my_fail(my_store *s, my_conn *c, MYSQL_STMT *st, const char *what)
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
		c->base.broken = 1;
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

/* ---- connections ------------------------------------------------------------------- */

void dura_my_conn_close(my_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		dura_my_stmt_clear(&c->st[i]);
	if (c->db)
		mysql_close(c->db);
	dura_free(c);
}

/*
 * Free a connection inherited from the parent process without ending the
 * parent's session: its socket is pointed at /dev/null first, so the
 * goodbyes mysql_close() sends go nowhere.
 */
void dura_my_conn_abandon(my_conn *c)
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
	dura_my_conn_close(c);
}

/* A text query's first column of the first row of its first result set
 * as a number (NULL: *isnull); the other results are read and dropped. */
int dura_my_q_int(my_store *s, my_conn *c, const char *sql, const char *what, int64_t *out, int *isnull)
{
	int got = 0;
	*out = 0;
	if (isnull)
		*isnull = 1;
	if (mysql_real_query(c->db, sql, strlen(sql)))
		return dura_my_fail(s, c, NULL, what);
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
			return dura_my_fail(s, c, NULL, what);
		}
		int nr = mysql_next_result(c->db);
		if (nr > 0)
			return dura_my_fail(s, c, NULL, what);
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
void dura_my_learn_server(my_store *s, MYSQL *db)
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
int dura_my_conn_open(my_store *s, my_conn **out)
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
		dura_my_conn_close(c);
		return rc;
	}
	static const char setup[] = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
	                            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'; "
	                            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; "
	                            "SELECT @@max_allowed_packet";
	int64_t packet = 0;
	int rc = dura_my_q_int(s, c, setup, "setting up the session", &packet, NULL);
	if (rc) {
		dura_my_conn_close(c);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	if (packet > 0)
		s->max_packet = (unsigned long)packet;
	pthread_mutex_unlock(&s->mu);
	*out = c;
	return 0;
}

/* ---- the pool --------------------------------------------------------------------- */

static void tx_rollback(my_store *s, my_conn *c);

/* sql/pool.h's operations: the pool lends connections that are fresh
 * (pool_lifetime, pool_idle_time), keeps pool_idle of them, and closes
 * the idle ones with a lost one (a restarted server lost them all). */
static int pool_open(void *store, dura_sql_conn **out)
{
	my_conn *c;
	int rc = dura_my_conn_open(store, &c);
	*out = rc ? NULL : &c->base;
	return rc;
}

static void pool_close(void *store, dura_sql_conn *c)
{
	(void)store;
	dura_my_conn_close((my_conn *)c);
}

static void pool_abandon(void *store, dura_sql_conn *c)
{
	(void)store;
	dura_my_conn_abandon((my_conn *)c);
}

static void pool_reset(void *store, dura_sql_conn *c)
{
	my_conn *mc = (my_conn *)c;
	if (mc->in_tx)
		tx_rollback(store, mc);
}

const dura_sql_pool_ops dura_my_pool_ops = {pool_open, pool_close, pool_abandon, pool_reset, dura_my_thread};

int dura_my_pool_get(my_store *s, my_conn **out)
{
	dura_sql_conn *c;
	int rc = dura_sql_pool_get(&s->base.pool, &c);
	*out = (my_conn *)c;
	return rc;
}

void dura_my_pool_put(my_store *s, my_conn *c)
{
	dura_sql_pool_put(&s->base.pool, &c->base);
}

/* ---- transactions and the retry loop ----------------------------------------------- */

static int tx_begin(my_store *s, my_conn *c)
{
	if (mysql_real_query(c->db, "START TRANSACTION", 17))
		return dura_my_fail(s, c, NULL, "START TRANSACTION");
	c->in_tx = 1;
	return 0;
}

/*
 * The test hook, compiled only into the archive the tests link
 * (DURA_TEST_HOOKS; tests/conformance/mysql_extra.c): the next N commits
 * lose their connection, after the server committed (applied = 1) or
 * before the commit left (applied = 0), so that the recovery paths run
 * deterministically. dura_my_lost_commit() takes one of the N; in libdura it is 0.
 */
#ifdef DURA_TEST_HOOKS
struct dura__mysql_test_hook {
	_Atomic int commits, applied;
} dura__mysql_test_hook;

int dura_my_lost_commit(int *applied)
{
	int n = atomic_load(&dura__mysql_test_hook.commits);
	while (n > 0 && !atomic_compare_exchange_weak(&dura__mysql_test_hook.commits, &n, n - 1)) {
	}
	*applied = atomic_load(&dura__mysql_test_hook.applied);
	return n > 0;
}
#else
int dura_my_lost_commit(int *applied)
{
	*applied = 0;
	return 0;
}
#endif

static int fault_commit(my_store *s, my_conn *c)
{
	int applied;
	if (!dura_my_lost_commit(&applied))
		return 0;
	(void)s;
	if (applied)
		mysql_real_query(c->db, "COMMIT", 6);
	c->base.broken = 1;
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
		return dura_my_fail(s, c, NULL, "COMMIT");
	return 0;
}

/* Undo the open transaction, keeping the thread's error as it is. */
static void tx_rollback(my_store *s, my_conn *c)
{
	(void)s;
	if (!c->in_tx)
		return;
	c->in_tx = 0;
	if (c->base.broken)
		return;
	if (mysql_real_query(c->db, "ROLLBACK", 8) && lost_code(mysql_errno(c->db)))
		c->base.broken = 1;
}

/* ---- sql/run.h's driver ----------------------------------------------------------- */

static int run_begin(void *store, dura_sql_conn *c)
{
	return tx_begin(store, (my_conn *)c);
}

static int run_commit(void *store, dura_sql_conn *c)
{
	return tx_commit(store, (my_conn *)c);
}

static void run_rollback(void *store, dura_sql_conn *c)
{
	tx_rollback(store, (my_conn *)c);
}

static void run_clear(dura_sql_conn *c)
{
	((my_conn *)c)->retryable = 0;
	((my_conn *)c)->err = 0;
}

/* dura_my_fail() has marked the connection: broken on a lost connection,
 * retryable on a deadlock (1213) or lock wait timeout (1205). */
static dura_sql_failure run_classify(const dura_sql_conn *c)
{
	if (((const my_conn *)c)->retryable)
		return DURA_SQL_RETRYABLE;
	return c->broken ? DURA_SQL_LOST : DURA_SQL_FAILED;
}

const dura_sql_driver dura_my_driver = {
	MY, MY_BUSY_ATTEMPTS, MY_AGAIN_ATTEMPTS, run_begin, run_commit, run_rollback, run_clear, run_classify,
};

/* A body of ours, called through sql/run.h's signature. */
struct body_call {
	my_body fn;
	void *arg;
};

static int body_tramp(void *store, dura_sql_conn *c, void *arg, int again)
{
	struct body_call *b = arg;
	return b->fn(store, (my_conn *)c, b->arg, again);
}

/*
 * Run an operation on a pooled connection (in a transaction with
 * DURA_SQL_TX) through sql/run.h's loop: deadlocks and lock wait timeouts
 * run it again after a backoff (DURA_EBUSY after MY_BUSY_ATTEMPTS); a lost
 * connection runs it again on a new one when nothing can have been
 * applied (lost before COMMIT) or when the body can tell
 * (DURA_SQL_IDEMPOTENT).
 */
int dura_my_run_op(my_store *s, my_body fn, void *arg, unsigned flags)
{
	struct body_call b = {fn, arg};
	return dura_sql_run(&s->base.pool, &dura_my_driver, body_tramp, &b, flags);
}

/* Refuse a value the server would refuse, before writing anything. */
int dura_my_check_size(my_store *s, size_t n, const char *what)
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
