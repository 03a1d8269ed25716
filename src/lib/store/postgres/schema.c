/*
 * schema.c - the PostgreSQL store's tables, and the callbacks through
 * which sql/schema.c migrates them. PostgreSQL's DDL is transactional:
 * migrations run in one transaction that first takes an advisory lock
 * (per database and prefix), so processes opening a new database at once
 * migrate it once, and a failed migration leaves nothing behind.
 *
 * The reference documents' tables and columns. States are JSONB (stored
 * parsed: the store gives back the same JSON, not the same bytes); event
 * data is JSON, which keeps the bytes as written, so the default payload
 * is the core's text on every store. Times are TIMESTAMPTZ(3) in UTC,
 * cache values BYTEA. Text compares byte for byte (COLLATE "C"), as in
 * every other store, so cursors and orders agree. The one-active-run rule
 * is a partial unique index. Index names are per schema in PostgreSQL, so
 * they carry the prefix.
 */
#include "pg.h"

#include <stdio.h>
#include <string.h>

#define T "TEXT COLLATE \"C\""

static const char schema_table_sql[] =
	"CREATE TABLE IF NOT EXISTS {p}dura_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ(3) NOT NULL, "
	"description TEXT NOT NULL DEFAULT '')";

static const char *const migration1[] = {
	"CREATE TABLE {p}workflow_records ("
	"run_id " T " PRIMARY KEY, workflow_name " T " NOT NULL, foreign_id " T " NOT NULL DEFAULT '', "
	"run_state INTEGER NOT NULL, status " T " NOT NULL DEFAULT '', object {json} NOT NULL, "
	"version BIGINT NOT NULL, step_no BIGINT NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, "
	"error TEXT NOT NULL DEFAULT '', meta {json}, lease_owner " T " NOT NULL DEFAULT '', "
	"lease_expires_at {time}, next_run_at {time} NOT NULL, created_at {time} NOT NULL, "
	"updated_at {time} NOT NULL);"
	"CREATE INDEX {p}by_workflow_name_foreign_id_status ON {p}workflow_records (workflow_name, foreign_id, status);"
	"CREATE INDEX {p}by_run_state ON {p}workflow_records (run_state, next_run_at);"
	"CREATE INDEX {p}by_created_at ON {p}workflow_records (created_at);"
	"CREATE UNIQUE INDEX {p}one_active_run ON {p}workflow_records (workflow_name, foreign_id) "
	"WHERE foreign_id <> '' AND run_state IN " ACTIVE_STATES ";"
	"CREATE TABLE {p}workflow_steps ("
	"id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id " T " NOT NULL, step BIGINT NOT NULL, "
	"node_id " T " NOT NULL, state {json} NOT NULL, created_at {time} NOT NULL, UNIQUE (run_id, step));"
	"CREATE INDEX {p}idx_steps_created_at ON {p}workflow_steps (created_at);"
	"CREATE TABLE {p}workflow_checkpoints ("
	"id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, checkpoint_id " T " NOT NULL UNIQUE, "
	"run_id " T " NOT NULL, state {json} NOT NULL, step BIGINT NOT NULL, created_at {time} NOT NULL, "
	"updated_at {time} NOT NULL);"
	"CREATE INDEX {p}idx_checkpoints_run_id ON {p}workflow_checkpoints (run_id);"
	"CREATE TABLE {p}workflow_outbox ("
	"id " T " PRIMARY KEY, workflow_name " T " NOT NULL, run_id " T " NOT NULL, type " T " NOT NULL, "
	"data JSON, created_at {time} NOT NULL);"
	"CREATE INDEX {p}by_workflow_name ON {p}workflow_outbox (workflow_name);"
	"CREATE TABLE {p}step_cache ("
	"{key} " T " PRIMARY KEY, value BYTEA, error TEXT, created_at {time} NOT NULL, expires_at {time}, "
	"metadata {json});"
	"CREATE INDEX {p}idx_expires_at ON {p}step_cache (expires_at);"
	"CREATE TABLE {p}step_cache_claims ("
	"{key} " T " PRIMARY KEY, owner " T " NOT NULL, expires_at {time} NOT NULL);"
	/* every change of a run notifies its waiters (notify.c), at commit */
	"CREATE FUNCTION {p}dura_notify() RETURNS trigger LANGUAGE plpgsql AS "
	"$$BEGIN PERFORM pg_notify('{p}dura_runs', NEW.run_id); "
	/* and workers, when the run became claimable: running, unleased,
	 * newly so (created, resumed, released, rescheduled) */
	"IF NEW.run_state = 2 AND NEW.lease_owner = '' AND (TG_OP = 'INSERT' OR OLD.run_state <> 2 OR "
	"OLD.lease_owner <> '' OR OLD.next_run_at <> NEW.next_run_at) THEN "
	"PERFORM pg_notify('{p}dura_ready', ''); END IF; RETURN NULL; END$$;"
	"CREATE TRIGGER {p}dura_notify AFTER INSERT OR UPDATE ON {p}workflow_records "
	"FOR EACH ROW EXECUTE FUNCTION {p}dura_notify()",
	NULL,
};

/*
 * Migration 2: flow control. A run's priority and concurrency key; the
 * claim order's index; the live leases, which a claim with limits counts
 * (a partial index: only leased rows); and dura_flow, whose one row such a
 * claim locks, so that limited claims take turns.
 */
static const char *const migration2[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN priority INTEGER NOT NULL DEFAULT 0, "
	"ADD COLUMN concurrency_key " T " NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_claim_order ON {p}workflow_records (workflow_name, run_state, priority DESC, next_run_at, run_id);"
	"CREATE INDEX {p}by_live_lease ON {p}workflow_records (lease_expires_at) WHERE lease_owner <> '';"
	"CREATE TABLE {p}dura_flow (id INTEGER PRIMARY KEY);"
	"INSERT INTO {p}dura_flow (id) VALUES (1)",
	NULL,
};

/* The worker registry (see the MySQL store's schema.c). */
static const char *const migration3[] = {
	"CREATE TABLE {p}dura_workers ("
	"worker_id " T " PRIMARY KEY, name " T " NOT NULL DEFAULT '', host " T " NOT NULL DEFAULT '', "
	"pid BIGINT NOT NULL, threads INTEGER NOT NULL, lease_ms BIGINT NOT NULL, workflows TEXT NOT NULL, "
	"held BIGINT NOT NULL DEFAULT 0, started_at {time} NOT NULL, heartbeat_at {time} NOT NULL, "
	"dead_after {time} NOT NULL);"
	"CREATE INDEX {p}by_dead_after ON {p}dura_workers (dead_after)",
	NULL,
};

/*
 * Migration 4: durable waiting (store contract version 5). A run's wait
 * ("" when none) and parent (a child run's, "" when none; indexed for the
 * children of a run); the signal inbox, read by run, name and id; the
 * schedules. Payloads and schedule states are JSON, which keeps the bytes
 * as sent (the outbox's type, not the states' JSONB). next_tick is a time
 * like every other (at most 9999-12-31T23:59:59Z).
 */
static const char *const migration4[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN wait_for " T " NOT NULL DEFAULT '', "
	"ADD COLUMN parent_id " T " NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_parent_id ON {p}workflow_records (parent_id);"
	"CREATE TABLE {p}workflow_signals ("
	"signal_id " T " PRIMARY KEY, run_id " T " NOT NULL, name " T " NOT NULL, payload JSON NOT NULL, "
	"created_at {time} NOT NULL);"
	"CREATE INDEX {p}by_run_name_signal ON {p}workflow_signals (run_id, name, signal_id);"
	"CREATE TABLE {p}dura_schedules ("
	"name " T " PRIMARY KEY, cron TEXT NOT NULL, zone TEXT NOT NULL, workflow_name " T " NOT NULL, "
	"state JSON NOT NULL, catch_up INTEGER NOT NULL DEFAULT 0, next_tick {time} NOT NULL, "
	"created_at {time} NOT NULL, updated_at {time} NOT NULL)",
	NULL,
};

/*
 * Migration 5: workflow versions and retention (store contract version
 * 6). The workflow version a run executes on and the one each step was
 * committed by ("" for none: a run or step from before versions; a
 * constant default, so no table is rewritten); the versions engines
 * register, one row per workflow and version, the definition as JSON
 * (kept as written); the index a batch of retention reads (one end
 * state, the oldest change first, then the run id, without a sort); and
 * the trigger's function again, which now also tells the workers when a
 * claimable run (no lease, or one that lapsed) moved to another version
 * (set_run_version), as when one is resumed; a commit that gives a run
 * its first version holds a live lease and tells nobody.
 */
static const char *const migration5[] = {
	"ALTER TABLE {p}workflow_records ADD COLUMN workflow_version " T " NOT NULL DEFAULT '';"
	"ALTER TABLE {p}workflow_steps ADD COLUMN workflow_version " T " NOT NULL DEFAULT '';"
	"CREATE INDEX {p}by_run_state_updated_at ON {p}workflow_records (run_state, updated_at, run_id);"
	"CREATE TABLE {p}dura_workflows ("
	"workflow_name " T " NOT NULL, version " T " NOT NULL, definition JSON NOT NULL, "
	"first_seen_at {time} NOT NULL, last_seen_at {time} NOT NULL, PRIMARY KEY (workflow_name, version));"
	"CREATE OR REPLACE FUNCTION {p}dura_notify() RETURNS trigger LANGUAGE plpgsql AS "
	"$$BEGIN PERFORM pg_notify('{p}dura_runs', NEW.run_id); "
	"IF NEW.run_state = 2 AND ((NEW.lease_owner = '' AND (TG_OP = 'INSERT' OR OLD.run_state <> 2 OR "
	"OLD.lease_owner <> '' OR OLD.next_run_at <> NEW.next_run_at)) OR "
	"(OLD.workflow_version <> NEW.workflow_version AND "
	"(NEW.lease_owner = '' OR NEW.lease_expires_at <= now()))) THEN "
	"PERFORM pg_notify('{p}dura_ready', ''); END IF; RETURN NULL; END$$",
	NULL,
};

/*
 * Migration 6: the gauges (store contract version 8). The runs that wait
 * (wait_for not ''), indexed apart (a partial index), so that counting
 * the waiting ones (sql/catalog.h, GAUGES_SELECT) reads them and no other.
 */
static const char *const migration6[] = {
	"CREATE INDEX {p}by_waiting ON {p}workflow_records (run_state) WHERE wait_for <> ''",
	NULL,
};

static const dura_sql_migration migrations[] = {
	{"workflow_records, workflow_steps, workflow_checkpoints, workflow_outbox, step_cache", migration1, NULL},
	{"flow control: workflow_records.priority and concurrency_key, by_claim_order, by_live_lease, dura_flow",
	 migration2, NULL},
	{"dura_workers (the worker registry)", migration3, NULL},
	{"durable waiting: workflow_records.wait_for and parent_id, workflow_signals, dura_schedules", migration4, NULL},
	{"workflow versions and retention: workflow_records.workflow_version, workflow_steps.workflow_version, "
	 "dura_workflows, by_run_state_updated_at, dura_notify() for a moved run",
	 migration5, NULL},
	{"gauges: by_waiting", migration6, NULL},
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PG_SCHEMA_VERSION, "one migration per schema version");

/* A statement's first column of its first row as an integer. */
static int q_int(pg_store *s, pg_conn *c, int id, int64_t *out)
{
	dura_sql_params p;
	void *m;
	p.n = 0;
	int rc = dura_sql_st_run(&s->base, &c->base, id, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(&s->base, &c->base, m);
	if (rc == 1) {
		*out = dura_sql_c_int(&s->base, m, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, PG, 0, NULL, "reading the schema: no row");
	}
	dura_sql_st_done(&s->base, m);
	return rc;
}

int dura_pg_read_schema_version(pg_store *s, pg_conn *c, int *out)
{
	int64_t n = 0, v = 0;
	*out = 0;
	int rc = q_int(s, c, ST_SCHEMA_EXISTS, &n);
	if (rc || n == 0)
		return rc;
	if ((rc = q_int(s, c, ST_SCHEMA_VERSION, &v)) == 0)
		*out = (int)v;
	return rc;
}

/* ---- sql/schema.h's callbacks ------------------------------------------------------ */

typedef struct pg_schema {
	pg_store *s;
	pg_conn *c;
	char where[300];
} pg_schema;

static int schema_read(void *drv, int *out)
{
	pg_schema *d = drv;
	return dura_pg_read_schema_version(d->s, d->c, out);
}

static int schema_lock(void *drv)
{
	pg_schema *d = drv;
	/* the migration's notices ("relation ... already exists, skipping" of
	 * dura_schema IF NOT EXISTS) would go to the process's stderr */
	char *sql = dura_pg_expand(d->s, "BEGIN; SET LOCAL client_min_messages = warning; "
	                                 "SELECT pg_advisory_xact_lock(hashtext(current_database() || "
	                                 "'.{p}dura_migrate'))");
	if (!sql)
		return dura_error_oom(PG);
	int rc = dura_pg_exec_simple(d->s, d->c, sql, "taking the migration lock");
	dura_free(sql);
	return rc;
}

static int schema_unlock(void *drv, int ok)
{
	pg_schema *d = drv;
	if (d->c->base.broken)
		return 0;
	if (ok)
		return dura_pg_exec_simple(d->s, d->c, "COMMIT", "COMMIT");
	PQclear(PQexec(d->c->db, "ROLLBACK"));
	return 0;
}

static int schema_exec(void *drv, const char *tmpl, int version, int optional)
{
	pg_schema *d = drv;
	(void)optional; /* no optional statements */
	char *sql = dura_pg_expand(d->s, tmpl);
	if (!sql)
		return dura_error_oom(PG);
	PGresult *r = PQexec(d->c->db, sql);
	dura_free(sql);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		char what[64];
		if (version)
			snprintf(what, sizeof(what), "schema migration %d", version);
		else
			snprintf(what, sizeof(what), "creating dura_schema");
		if (state && strcmp(state, "42501") == 0) {
			const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			rc = dura_error_set_native(DURA_ERROR, PG, 0, state,
			                           "cannot create dura's tables in database '%s': role '%s' lacks the CREATE "
			                           "privilege on the schema (%s). Run `dura init` once as the database owner, or "
			                           "GRANT CREATE ON SCHEMA to the role; afterwards CONNECT, USAGE and SELECT, "
			                           "INSERT, UPDATE, DELETE on the tables are enough",
			                           d->s->database, d->s->user, msg ? msg : "permission denied");
		} else if (state && strcmp(state, "42P07") == 0) {
			const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			rc = dura_error_set_native(DURA_ERROR, PG, 0, state,
			                           "%s: %s, but %sdura_schema does not record this migration: the table belongs to "
			                           "another program (drop it, or give dura its own tables with ?prefix=)",
			                           what, msg ? msg : "a table exists", d->s->prefix);
		} else {
			rc = dura_pg_fail(d->s, d->c, r, what);
		}
	}
	PQclear(r);
	return rc;
}

static int schema_record(void *drv, int version, const char *description)
{
	pg_schema *d = drv;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_int(&p, version);
	dura_sql_p_str(&p, description);
	return dura_sql_st_write(&d->s->base, &d->c->base, ST_SCHEMA_RECORD, &p, NULL);
}

static dura_sql_schema schema_of(pg_store *s, pg_conn *c, pg_schema *d)
{
	d->s = s;
	d->c = c;
	snprintf(d->where, sizeof(d->where), "database '%s'", s->database);
	return (dura_sql_schema){
		.store = PG,
		.where = d->where,
		.prefix = s->prefix,
		.table = schema_table_sql,
		.migrations = migrations,
		.version = PG_SCHEMA_VERSION,
		.transactional = 1,
		.drv = d,
		.read_version = schema_read,
		.lock = schema_lock,
		.unlock = schema_unlock,
		.exec = schema_exec,
		.record = schema_record,
	};
}

int dura_pg_migrate(pg_store *s, pg_conn *c, int *from, int *to)
{
	pg_schema d;
	dura_sql_schema sc = schema_of(s, c, &d);
	return dura_sql_schema_migrate(&sc, from, to);
}

int dura_pg_check_and_migrate(pg_store *s, pg_conn *c, const dura_store_options *opts)
{
	pg_schema d;
	dura_sql_schema sc = schema_of(s, c, &d);
	int v, from, to, rc = dura_sql_schema_check(&sc, opts->auto_migrate, &v);
	if (rc == 0 && v < PG_SCHEMA_VERSION)
		rc = dura_sql_schema_migrate(&sc, &from, &to);
	return rc;
}
