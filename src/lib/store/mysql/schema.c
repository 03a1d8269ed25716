/*
 * schema.c - the MySQL store's schema: the bookkeeping table, the
 * numbered migrations (the tables, and the dura_commit procedure that
 * commits a step in one round trip: see commit.c), reading the version a
 * database is at, and running the migrations it lacks under an advisory
 * lock so that processes opening a new database at once migrate it once.
 *
 * MY_SCHEMA_VERSION (mysql.h) is the number of migrations; a
 * _Static_assert below holds the two together.
 */
#include "mysql.h"

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
	"run_state INT NOT NULL, status VARCHAR(255) NOT NULL DEFAULT '', object {json} NOT NULL, "
	"created_at {time} NOT NULL, updated_at {time} NOT NULL, meta {json} NULL, "
	"version BIGINT NOT NULL, step_no BIGINT NOT NULL DEFAULT 0, attempt INT NOT NULL DEFAULT 0, "
	"error TEXT NOT NULL, lease_owner VARCHAR(255) NOT NULL DEFAULT '', lease_expires_at {time} NULL, "
	"next_run_at {time} NOT NULL, "
	"active_key TINYINT AS (IF(run_state IN (1, 2, 4) AND foreign_id <> '', 1, NULL)) STORED, "
	"PRIMARY KEY (run_id), "
	"INDEX by_workflow_name_foreign_id_status (workflow_name, foreign_id, status), "
	"INDEX by_run_state (run_state, next_run_at), "
	"INDEX by_workflow_due (workflow_name, run_state, next_run_at), "
	"INDEX by_created_at (created_at), "
	"UNIQUE INDEX one_active_run (workflow_name, foreign_id, active_key))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_steps ("
	"id BIGINT NOT NULL AUTO_INCREMENT, run_id VARCHAR(255) NOT NULL, step BIGINT NOT NULL, "
	"node_id VARCHAR(255) NOT NULL, state {json} NOT NULL, created_at {time} NOT NULL, "
	"PRIMARY KEY (id), UNIQUE KEY unique_run_step (run_id, step), INDEX idx_created_at (created_at))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_checkpoints ("
	"id BIGINT NOT NULL AUTO_INCREMENT, checkpoint_id VARCHAR(255) NOT NULL, run_id VARCHAR(255) NOT NULL, "
	"state {json} NOT NULL, step BIGINT NOT NULL, created_at {time} NOT NULL, updated_at {time} NOT NULL, "
	"PRIMARY KEY (id), UNIQUE KEY unique_checkpoint_id (checkpoint_id), "
	"INDEX idx_checkpoints_run_id (run_id))" TABLE_OPTS,
	"CREATE TABLE {p}workflow_outbox ("
	"id VARCHAR(255) NOT NULL, workflow_name VARCHAR(255) NOT NULL, run_id VARCHAR(255) NOT NULL, "
	"type VARCHAR(255) NOT NULL, data {json} NULL, created_at {time} NOT NULL, "
	"PRIMARY KEY (id), INDEX by_workflow_name (workflow_name))" TABLE_OPTS,
	"CREATE TABLE {p}step_cache ("
	"{key} VARCHAR(255) NOT NULL, value LONGBLOB NULL, error TEXT NULL, created_at {time} NOT NULL, "
	"expires_at {time} NULL, metadata {json} NULL, "
	"PRIMARY KEY ({key}), INDEX idx_expires_at (expires_at))" TABLE_OPTS,
	"CREATE TABLE {p}step_cache_claims ("
	"{key} VARCHAR(255) NOT NULL, owner VARCHAR(255) NOT NULL, expires_at {time} NOT NULL, "
	"PRIMARY KEY ({key}))" TABLE_OPTS,
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

/*
 * Migration 5: flow control. A run's priority and concurrency key; the
 * claim order's index, led by the workflow as the claims are (led by
 * run_state, the locking claims of several workers deadlocked on it);
 * the lease expiry, which a claim with limits counts
 * live leases by; and dura_flow, whose one row such a claim locks, so
 * that limited claims take turns.
 */
static const char *const migration5[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN priority INT NOT NULL DEFAULT 0, "
	"ADD COLUMN concurrency_key VARCHAR(255) NOT NULL DEFAULT '', "
	"ADD INDEX by_claim_order (workflow_name, run_state, priority DESC, next_run_at, run_id), "
	"ADD INDEX by_lease_expires_at (lease_expires_at)",
	"CREATE TABLE {p}dura_flow (id INT NOT NULL, PRIMARY KEY (id))" TABLE_OPTS,
	"INSERT INTO {p}dura_flow (id) VALUES (1)",
	NULL,
};

/*
 * The worker registry: one row per live worker (and per dead one until it
 * is pruned), written at start and by every heartbeat, deleted at stop.
 * dead_after (heartbeat_at + lease_ms) is indexed for the prune.
 */
static const char *const migration6[] = {
	"CREATE TABLE {p}dura_workers ("
	"worker_id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL DEFAULT '', host VARCHAR(255) NOT NULL DEFAULT '', "
	"pid BIGINT NOT NULL, threads INT NOT NULL, lease_ms BIGINT NOT NULL, workflows TEXT NOT NULL, "
	"held BIGINT NOT NULL DEFAULT 0, started_at {time} NOT NULL, heartbeat_at {time} NOT NULL, "
	"dead_after {time} NOT NULL, PRIMARY KEY (worker_id), INDEX by_dead_after (dead_after))" TABLE_OPTS,
	NULL,
};

/*
 * Migration 7: durable waiting (store contract version 5). A run's wait
 * (wait_for: WAIT is a keyword of MySQL's; "" when none) and parent ("" when
 * none; indexed for the children of a run); the signal inbox, read by run,
 * name and id; the schedules. Payloads and schedule states are LONGTEXT,
 * which keeps the bytes as sent on MySQL too (its JSON type rewrites them);
 * the core checked they are JSON. next_tick is a DATETIME(3) like every
 * other time (9999-12-31T23:59:59Z fits). DDL is not transactional: a
 * migration cut off halfway runs again from its first statement, so from
 * this one on a statement whose effect is already there counts as done
 * (the tables IF NOT EXISTS, a column or index already added: see
 * schema_exec()).
 */
static const char *const migration7[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN wait_for VARCHAR(512) NOT NULL DEFAULT ''",
	"ALTER TABLE {p}workflow_records ADD COLUMN parent_id VARCHAR(255) NOT NULL DEFAULT ''",
	"ALTER TABLE {p}workflow_records ADD INDEX by_parent_id (parent_id)",
	"CREATE TABLE IF NOT EXISTS {p}workflow_signals ("
	"signal_id VARCHAR(255) NOT NULL, run_id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, "
	"payload LONGTEXT NOT NULL, created_at {time} NOT NULL, "
	"PRIMARY KEY (signal_id), INDEX by_run_name_signal (run_id, name, signal_id))" TABLE_OPTS,
	"CREATE TABLE IF NOT EXISTS {p}dura_schedules ("
	"name VARCHAR(255) NOT NULL, cron VARCHAR(255) NOT NULL, zone VARCHAR(255) NOT NULL, "
	"workflow_name VARCHAR(255) NOT NULL, state LONGTEXT NOT NULL, catch_up INT NOT NULL DEFAULT 0, "
	"next_tick {time} NOT NULL, created_at {time} NOT NULL, updated_at {time} NOT NULL, "
	"PRIMARY KEY (name))" TABLE_OPTS,
	NULL,
};

/*
 * The procedure of migration 4 with the record's wait (p_wait, the last
 * argument). A CALL of the old 17-argument procedure (a migrating user
 * without CREATE ROUTINE left it) fails with ER_SP_WRONG_NO_OF_ARGS and
 * the commit goes the long way. A commit that consumes a signal or wakes a
 * run always goes the long way (commit.c).
 */
static const char *const migration7_optional[] = {
	"DROP PROCEDURE IF EXISTS {p}dura_commit",
	"CREATE PROCEDURE {p}dura_commit(IN p_run_id VARCHAR(255), IN p_expect BIGINT, IN p_state LONGTEXT, "
	"IN p_status VARCHAR(255), IN p_error TEXT, IN p_attempt INT, IN p_next DATETIME(3), IN p_now DATETIME(3), "
	"IN p_do_step TINYINT, IN p_run_state INT, IN p_release TINYINT, IN p_node VARCHAR(255), "
	"IN p_event_id VARCHAR(255), IN p_type VARCHAR(255), IN p_data LONGTEXT, "
	"IN p_sum_head TEXT CHARACTER SET utf8mb4, IN p_sum_tail TEXT CHARACTER SET utf8mb4, "
	"IN p_wait VARCHAR(512) CHARACTER SET utf8mb4) "
	"MODIFIES SQL DATA SQL SECURITY INVOKER "
	"BEGIN "
	"DECLARE v_step BIGINT DEFAULT -1; "
	"DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END; "
	"START TRANSACTION; "
	"UPDATE {p}workflow_records SET object = p_state, status = p_status, error = p_error, "
	"wait_for = COALESCE(p_wait, ''), attempt = p_attempt, "
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

/*
 * Migration 8: workflow versions and retention (store contract version
 * 6). The workflow version a run executes on and the one each step was
 * committed by ("" for none: a run or step from before versions; at most
 * 64 bytes of [A-Za-z0-9._-]); the versions engines register, one row per
 * workflow and version, the definition as LONGTEXT (kept as sent, like a
 * signal's payload); and the index a batch of retention reads (one end
 * state, the oldest change first: InnoDB's secondary index carries the
 * run id after it, the order's tie-break). As in migration 7, a
 * statement whose effect is already there counts as done.
 */
static const char *const migration8[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN workflow_version VARCHAR(64) NOT NULL DEFAULT ''",
	"ALTER TABLE {p}workflow_steps ADD COLUMN workflow_version VARCHAR(64) NOT NULL DEFAULT ''",
	"ALTER TABLE {p}workflow_records ADD INDEX by_run_state_updated_at (run_state, updated_at)",
	"CREATE TABLE IF NOT EXISTS {p}dura_workflows ("
	"workflow_name VARCHAR(255) NOT NULL, version VARCHAR(64) NOT NULL, definition LONGTEXT NOT NULL, "
	"first_seen_at {time} NOT NULL, last_seen_at {time} NOT NULL, "
	"PRIMARY KEY (workflow_name, version))" TABLE_OPTS,
	NULL,
};

/*
 * The procedure of migration 7 with the commit's workflow version
 * (p_version, the last argument): the step row keeps it, and a record
 * without one takes it on. A CALL of the old 18-argument procedure fails
 * with ER_SP_WRONG_NO_OF_ARGS and the commit goes the long way.
 */
static const char *const migration8_optional[] = {
	"DROP PROCEDURE IF EXISTS {p}dura_commit",
	"CREATE PROCEDURE {p}dura_commit(IN p_run_id VARCHAR(255), IN p_expect BIGINT, IN p_state LONGTEXT, "
	"IN p_status VARCHAR(255), IN p_error TEXT, IN p_attempt INT, IN p_next DATETIME(3), IN p_now DATETIME(3), "
	"IN p_do_step TINYINT, IN p_run_state INT, IN p_release TINYINT, IN p_node VARCHAR(255), "
	"IN p_event_id VARCHAR(255), IN p_type VARCHAR(255), IN p_data LONGTEXT, "
	"IN p_sum_head TEXT CHARACTER SET utf8mb4, IN p_sum_tail TEXT CHARACTER SET utf8mb4, "
	"IN p_wait VARCHAR(512) CHARACTER SET utf8mb4, IN p_version VARCHAR(64) CHARACTER SET utf8mb4) "
	"MODIFIES SQL DATA SQL SECURITY INVOKER "
	"BEGIN "
	"DECLARE v_step BIGINT DEFAULT -1; "
	"DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END; "
	"START TRANSACTION; "
	"UPDATE {p}workflow_records SET object = p_state, status = p_status, error = p_error, "
	"wait_for = COALESCE(p_wait, ''), "
	"workflow_version = IF(workflow_version = '', COALESCE(p_version, ''), workflow_version), attempt = p_attempt, "
	"next_run_at = p_next, updated_at = p_now, version = version + 1, step_no = step_no + p_do_step, "
	"run_state = COALESCE(p_run_state, run_state), lease_owner = IF(p_release, '', lease_owner), "
	"lease_expires_at = IF(p_release, NULL, lease_expires_at) WHERE run_id = p_run_id AND version = p_expect; "
	"IF ROW_COUNT() = 0 THEN "
	"ROLLBACK; "
	"SELECT 0, (SELECT version FROM {p}workflow_records WHERE run_id = p_run_id); "
	"ELSE "
	"IF p_do_step THEN "
	"SELECT step_no - 1 INTO v_step FROM {p}workflow_records WHERE run_id = p_run_id; "
	"INSERT INTO {p}workflow_steps (run_id, step, node_id, state, created_at, workflow_version) "
	"VALUES (p_run_id, v_step, p_node, p_state, p_now, COALESCE(p_version, '')); "
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

/*
 * Migration 9: the gauges (store contract version 8). MySQL has no
 * partial index: the runs by (run_state, wait_for), so that counting the
 * waiting ones (sql/catalog.h, GAUGES_SELECT: an active state and a wait
 * not '') reads a range of this index for each active state - the runs
 * that wait, and no others - without the rows. As in migration 7, an
 * index already added counts as done.
 */
static const char *const migration9[] = {
	"ALTER TABLE {p}workflow_records ADD INDEX by_run_state_wait (run_state, wait_for)",
	NULL,
};

/* optional: skipped when the user may not create routines */
static const dura_sql_migration migrations[] = {
	{"workflow_records, workflow_steps, workflow_checkpoints, workflow_outbox, step_cache", migration1, no_statements},
	{"dura_commit procedure (a step commit in one round trip)", no_statements, migration2_optional},
	{"dura_commit procedure again: the step in default event data is a JSON number", no_statements,
	 migration2_optional},
	{"dura_commit procedure again: default event data from the client pieces, the same bytes as every store",
	 no_statements, migration4_optional},
	{"flow control: workflow_records.priority and concurrency_key, by_claim_order, by_lease_expires_at, dura_flow",
	 migration5, no_statements},
	{"dura_workers (the worker registry)", migration6, no_statements},
	{"durable waiting: workflow_records.wait_for and parent_id, workflow_signals, dura_schedules; dura_commit "
	 "procedure again with the wait",
	 migration7, migration7_optional},
	{"workflow versions and retention: workflow_records and workflow_steps .workflow_version, dura_workflows, "
	 "by_run_state_updated_at; dura_commit procedure again with the version",
	 migration8, migration8_optional},
	{"gauges: by_run_state_wait", migration9, no_statements},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == MY_SCHEMA_VERSION, "one migration per schema version");

/* The schema version recorded in the database (0: none yet). */
int dura_my_read_schema_version(my_store *s, my_conn *c, int *out)
{
	char sql[256];
	int64_t n = 0, v = 0;
	*out = 0;
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
	         "TABLE_NAME = '%sdura_schema'",
	         s->prefix);
	int rc = dura_my_q_int(s, c, sql, "reading the schema", &n, NULL);
	if (rc || n == 0)
		return rc;
	my_stmt *m;
	my_params p;
	p.n = 0;
	if ((rc = dura_my_st_run(s, c, ST_SCHEMA_VERSION, &p, &m)) != 0)
		return rc;
	rc = dura_my_st_fetch(s, c, m);
	if (rc == 1) {
		v = dura_my_c_int(m, 0);
		rc = 0;
	}
	dura_my_st_done(m);
	*out = (int)v;
	return rc;
}

/* A failed migration statement, worded for the usual cause. */
static int migrate_fail(my_store *s, my_conn *c, int version)
{
	unsigned e = mysql_errno(c->db);
	char what[64];
	if (version)
		snprintf(what, sizeof(what), "schema migration %d", version);
	else
		snprintf(what, sizeof(what), "creating dura_schema");
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
	return dura_my_fail(s, c, NULL, what);
}

/* ---- sql/schema.h's callbacks ---------------------------------------------------- */

typedef struct my_schema {
	my_store *s;
	my_conn *c;
	char where[300];
} my_schema;

static int schema_read(void *drv, int *out)
{
	my_schema *d = drv;
	return dura_my_read_schema_version(d->s, d->c, out);
}

/* The advisory lock that serialises migrators of this database and prefix
 * (GET_LOCK waits up to a minute for another process's migration). */
static void lock_sql(char *buf, size_t size, const char *fn, const char *prefix, const char *more)
{
	snprintf(buf, size, "%s(CONCAT('dura_migrate_', SHA1(CONCAT(DATABASE(), '.', '%s')))%s)", fn, prefix, more);
}

static int schema_lock(void *drv)
{
	my_schema *d = drv;
	char sql[256];
	int64_t got = 0;
	int isnull = 1;
	lock_sql(sql, sizeof(sql), "SELECT GET_LOCK", d->s->prefix, ", 60");
	int rc = dura_my_q_int(d->s, d->c, sql, "taking the migration lock", &got, &isnull);
	if (rc)
		return rc;
	if (isnull || got != 1)
		return dura_error_set_native(DURA_EBUSY, MY, 0, NULL,
		                             "another process has been migrating database '%s' for a minute; try again",
		                             d->s->database);
	return 0;
}

static int schema_unlock(void *drv, int ok)
{
	my_schema *d = drv;
	char sql[256];
	(void)ok; /* DDL is not transactional: what went through stays */
	if (d->c->base.broken)
		return 0; /* the server let go of the lock with the session */
	lock_sql(sql, sizeof(sql), "DO RELEASE_LOCK", d->s->prefix, "");
	mysql_real_query(d->c->db, sql, strlen(sql));
	return 0;
}

static int schema_exec(void *drv, const char *tmpl, int version, int optional)
{
	my_schema *d = drv;
	char *sql = dura_my_expand(d->s, tmpl);
	if (!sql)
		return dura_error_oom(MY);
	int failed = mysql_real_query(d->c->db, sql, strlen(sql)) != 0;
	dura_free(sql);
	if (!failed)
		return 0;
	unsigned e = mysql_errno(d->c->db);
	if (version >= 7 && (e == ER_DUP_FIELDNAME || e == ER_DUP_KEYNAME))
		return 0; /* added by an earlier run of this migration (see migration7, 8 and 9) */
	if (optional && (e == ER_DBACCESS_DENIED_ERROR || e == ER_TABLEACCESS_DENIED_ERROR ||
	                 e == ER_SPECIFIC_ACCESS_DENIED_ERROR || e == ER_PROCACCESS_DENIED_ERROR ||
	                 e == ER_ACCESS_DENIED_ERROR))
		return 1;
	return migrate_fail(d->s, d->c, version);
}

static int schema_record(void *drv, int version, const char *description)
{
	my_schema *d = drv;
	my_params p;
	uint64_t n;
	p.n = 0;
	dura_my_pp_int(&p, version);
	dura_my_pp_str(&p, description);
	int rc = dura_my_st_write(d->s, d->c, ST_SCHEMA_RECORD, &p, &n);
	return rc ? migrate_fail(d->s, d->c, version) : 0;
}

static dura_sql_schema schema_of(my_store *s, my_conn *c, my_schema *d)
{
	d->s = s;
	d->c = c;
	snprintf(d->where, sizeof(d->where), "database '%s'", s->database);
	return (dura_sql_schema){
		.store = MY,
		.where = d->where,
		.prefix = s->prefix,
		.table = schema_table_sql,
		.migrations = migrations,
		.version = MY_SCHEMA_VERSION,
		.transactional = 0,
		.drv = d,
		.read_version = schema_read,
		.lock = schema_lock,
		.unlock = schema_unlock,
		.exec = schema_exec,
		.record = schema_record,
	};
}

/* Run the migrations this database lacks, under the advisory lock, so
 * that processes opening a new database at once migrate it once. */
int dura_my_migrate_conn(my_store *s, my_conn *c, int *from, int *to)
{
	my_schema d;
	dura_sql_schema sc = schema_of(s, c, &d);
	return dura_sql_schema_migrate(&sc, from, to);
}

/* Before anything writes: the schema must be one this library knows. */
int dura_my_check_and_migrate(my_store *s, my_conn *c, const dura_store_options *opts)
{
	my_schema d;
	dura_sql_schema sc = schema_of(s, c, &d);
	int v, from, to, rc = dura_sql_schema_check(&sc, opts->auto_migrate, &v);
	if (rc == 0 && v < MY_SCHEMA_VERSION)
		rc = dura_sql_schema_migrate(&sc, &from, &to);
	return rc;
}
