/*
 * schema.c - the SQLite store's schema: the bookkeeping table, the
 * numbered migrations, reading the version a database is at, and running
 * the migrations it lacks through sql/schema.h, in one transaction
 * (BEGIN IMMEDIATE serialises processes that migrate at once). Opening
 * checks the schema before anything writes to the file (WAL mode
 * included), so a database of a newer dura is refused untouched.
 *
 * SQ_SCHEMA_VERSION (sqlite.h) is the number of migrations; a
 * _Static_assert below holds the two together.
 */
#include "sqlite.h"

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

/*
 * Migration 5: workflow versions and retention (store contract version
 * 6). The workflow version a run executes on and the one each step was
 * committed by ("" for none: a run or step from before versions); the
 * versions engines register, one row per workflow and version, with the
 * definition as JSON text; and the index a batch of retention reads
 * (sql/catalog.h, PRUNE_SELECT: one end state, the oldest change first,
 * then the run id, without a sort).
 */
static const char *const migration5[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN workflow_version TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE {p}workflow_steps ADD COLUMN workflow_version TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_run_state_updated_at ON {p}workflow_records (run_state, updated_at, run_id);"
	"CREATE TABLE {p}dura_workflows ("
	"workflow_name TEXT NOT NULL, version TEXT NOT NULL, definition {json} NOT NULL, "
	"first_seen_at {time} NOT NULL, last_seen_at {time} NOT NULL, PRIMARY KEY (workflow_name, version));",
	NULL,
};

/*
 * Migration 6: the gauges (store contract version 8). The runs that wait
 * (wait_for not ''), indexed apart, so that counting the waiting ones
 * (sql/catalog.h, GAUGES_SELECT) reads them and no other, from the index
 * alone (SQLite reads wait_for to check the condition the index implies);
 * a commit of a run that waits for nothing writes no page of it.
 */
static const char *const migration6[] = {
	"CREATE INDEX {p}by_waiting ON {p}workflow_records (run_state, wait_for) WHERE wait_for <> '';",
	NULL,
};

static const dura_sql_migration migrations[] = {
	{"workflow_records, workflow_steps, workflow_checkpoints, workflow_outbox, step_cache", migration1, NULL},
	{"flow control: workflow_records.priority and concurrency_key, by_claim_order, by_live_lease", migration2, NULL},
	{"dura_workers (the worker registry)", migration3, NULL},
	{"durable waiting: workflow_records.wait_for and parent_id, workflow_signals, dura_schedules", migration4, NULL},
	{"workflow versions and retention: workflow_records.workflow_version, workflow_steps.workflow_version, "
	 "dura_workflows, by_run_state_updated_at",
	 migration5, NULL},
	{"gauges: by_waiting", migration6, NULL},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == SQ_SCHEMA_VERSION,
               "one migration per schema version");

/* The schema version recorded in the database (0: none yet). */
int dsq_read_schema_version(sq_store *s, sq_conn *c, int *out)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_SCHEMA_EXISTS, &st);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = dsq_fail(c, rc, "reading the schema");
		sqlite3_reset(st);
		return rc;
	}
	int exists = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	*out = 0;
	if (!exists)
		return 0;
	if ((rc = dsq_prep(s, c, ST_SCHEMA_VERSION, &st)) != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = dsq_fail(c, rc, "reading the schema version");
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
	return dsq_read_schema_version(d->s, d->c, out);
}

static int schema_lock(void *drv)
{
	sq_schema *d = drv;
	return dsq_tx_begin(d->s, d->c);
}

static int schema_unlock(void *drv, int ok)
{
	sq_schema *d = drv;
	if (ok)
		return dsq_tx_commit(d->s, d->c);
	dsq_tx_rollback(d->s, d->c);
	return 0;
}

static int schema_exec(void *drv, const char *tmpl, int version, int optional)
{
	sq_schema *d = drv;
	(void)optional; /* SQLite has no privileges */
	char *sql = dsq_expand(tmpl, d->s->prefix);
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
	return dsq_fail(d->c, rc, what);
}

static int schema_record(void *drv, int version, const char *description)
{
	sq_schema *d = drv;
	sqlite3_stmt *st;
	int rc = dsq_prep(d->s, d->c, ST_SCHEMA_RECORD, &st);
	if (rc)
		return rc;
	int b;
	if ((b = bind_int(st, 1, version)) || (b = bind_text(st, 2, description)))
		return bind_fail(d->c, st, b, "recording a schema migration");
	return dsq_run_done(d->c, st, "recording a schema migration");
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

int dsq_migrate_conn(sq_store *s, sq_conn *c, int *from, int *to)
{
	sq_schema d = {s, c};
	dura_sql_schema sc = schema_of(s, &d);
	return dura_sql_schema_migrate(&sc, from, to);
}

/*
 * Before anything writes to the file: the schema must be one this library
 * knows. Only then WAL mode (which writes the header) and migrations.
 * dsq_conn_open() has read the file already: it is a database.
 */
int dsq_check_and_migrate(sq_store *s, sq_conn *c, const dura_store_options *opts)
{
	sq_schema d = {s, c};
	dura_sql_schema sc = schema_of(s, &d);
	int v, from, to, rc = dura_sql_schema_check(&sc, opts->auto_migrate, &v);
	if (rc == 0)
		rc = dsq_conn_wal(c);
	if (rc == 0 && v < SQ_SCHEMA_VERSION)
		rc = dura_sql_schema_migrate(&sc, &from, &to);
	return rc;
}
