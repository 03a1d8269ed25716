/*
 * catalog.h - the SQL text the SQL stores share, written once.
 *
 * The column lists the row decoders in rows.c read (REC_COLS, STEP_COLS,
 * CP_COLS, EVENT_COLS, in that order), the run states that count as
 * active, and every statement that means the same in every dialect. They
 * are templates in dialect.h's language: "?" parameters, each bound once
 * and in the order it appears (so a value used twice is bound twice), and
 * "?:type" where PostgreSQL could not infer the type ("? IS NULL"),
 * "{p}" for the table prefix, "{key}" for the quoted cache key column,
 * "{upsert:COL}" and "{new:COL}" for an upsert. A driver renders them
 * with its dialect when it opens. What differs in more than those tokens
 * (RETURNING against a read-back, MySQL's stored procedure, SQLite's
 * json_each against MySQL's JSON_CONTAINS, integer casts of aggregates)
 * stays in its driver's own table, and the driver's header says why.
 *
 * A driver's STATEMENTS(X) list starts with SQL_SHARED_STATEMENTS(X), so
 * every statement here gets that driver's ST_<name>, SQL text and name.
 * This header holds macros only and includes no driver header.
 */
#ifndef DURA_SQL_CATALOG_H
#define DURA_SQL_CATALOG_H

/* The columns of a dura_record, in the order dura_sql_row_record() reads them. */
#define REC_COLS                                                                                          \
	"run_id, workflow_name, foreign_id, run_state, status, object, version, step_no, attempt, error, meta, " \
	"lease_owner, lease_expires_at, next_run_at, created_at, updated_at, priority, concurrency_key, wait_for, "    \
	"parent_id, workflow_version"
/* dura_sql_row_step()'s and dura_sql_row_checkpoint()'s columns */
#define STEP_COLS "run_id, step, node_id, state, created_at, workflow_version"
#define CP_COLS "checkpoint_id, run_id, step, state, created_at, updated_at"
/* dura_sql_row_event()'s columns */
#define EVENT_COLS "id, workflow_name, run_id, type, data, created_at"
/* a worker registry row, in the order sql/workers.h's dura_sql_row_worker() reads it */
#define WORKER_COLS \
	"worker_id, name, host, pid, threads, lease_ms, workflows, held, started_at, heartbeat_at, dead_after"
#define ACTIVE_STATES "(1, 2, 4)" /* initiated, running, paused */
#define ENDED_STATES "(3, 5, 6, 7)" /* completed, cancelled, data_deleted, failed */
/* rows.h's dura_sql_row_signal()'s and dura_sql_row_schedule()'s columns (contract version 5) */
#define SIGNAL_COLS "signal_id, run_id, name, payload, created_at"
#define SCHEDULE_COLS "name, cron, zone, workflow_name, state, catch_up, next_tick, created_at, updated_at"
/* rows.h's dura_sql_row_workflow()'s and dura_sql_row_run_count()'s columns (contract version 6) */
#define WORKFLOW_COLS "workflow_name, version, definition, first_seen_at, last_seen_at"
#define RUN_COUNT_COLS "workflow_name, workflow_version, run_state, COUNT(*)"

/*
 * One batch of retention's runs (contract version 6, prune_runs): of one
 * end state, last changed before a time, of one workflow or any; not one
 * with a checkpoint, nor a child whose parent is there and has not ended;
 * the oldest change first. Bound (run_state, ended_before, workflow twice,
 * limit). The index on (run_state, updated_at) serves it.
 */
#define PRUNE_SELECT                                                                                              \
	"SELECT r.run_id FROM {p}workflow_records r WHERE r.run_state = ? AND r.updated_at < ? "                  \
	"AND (?:text IS NULL OR r.workflow_name = ?) "                                                            \
	"AND NOT EXISTS (SELECT 1 FROM {p}workflow_checkpoints k WHERE k.run_id = r.run_id) "                      \
	"AND NOT EXISTS (SELECT 1 FROM {p}workflow_records q WHERE r.parent_id <> '' AND q.run_id = r.parent_id " \
	"AND q.run_state NOT IN " ENDED_STATES ") "                                                               \
	"ORDER BY r.updated_at, r.run_id LIMIT ?"

/*
 * A due run (contract version 8: the run filter's due, the gauges'
 * due_runs): what a claim would take now, flow limits and versions
 * aside - running, due, its lease free or lapsed (as FLOW_PAGE). Bound:
 * now, now.
 */
#define DUE_RUN                                                                                                    \
	"run_state = 2 AND next_run_at <= ? AND (lease_owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?)"

/*
 * The gauges (contract version 8), one statement and so one reading, each
 * count from an index: the waiting runs from the index of the runs that
 * wait (PostgreSQL's by_waiting, partial; MySQL's by_run_state_wait), the
 * due ones as the running ones due (by_run_state, which covers it) less
 * those due under a live lease, and the live leases (by_live_lease,
 * partial; MySQL's by_lease_expires_at), the outbox's count and its first
 * event in id order (its primary key). Bound: now four times. The server
 * stores run it as it is (SQL_SERVER_STATEMENTS); SQLite, whose planner
 * without statistics takes by_run_state for the leases, names each index
 * (sqlite.h). INDEX(name) is where SQLite says INDEXED BY.
 */
#define GAUGES_SELECT(INDEX)                                                                                       \
	"SELECT (SELECT COUNT(*) FROM {p}workflow_records " INDEX(by_waiting) " WHERE run_state IN " ACTIVE_STATES     \
	" AND wait_for <> ''), "                                                                                       \
	"(SELECT COUNT(*) FROM {p}workflow_records " INDEX(by_run_state) " WHERE run_state = 2 AND next_run_at <= ?), " \
	"(SELECT COUNT(*) FROM {p}workflow_records " INDEX(by_live_lease) " WHERE lease_owner <> '' "                 \
	"AND lease_expires_at > ? AND run_state = 2), "                                                                \
	"(SELECT COUNT(*) FROM {p}workflow_records " INDEX(by_live_lease) " WHERE lease_owner <> '' "                 \
	"AND lease_expires_at > ? AND run_state = 2 AND next_run_at <= ?), "                                           \
	"(SELECT COUNT(*) FROM {p}workflow_outbox), "                                                                  \
	"(SELECT created_at FROM {p}workflow_outbox ORDER BY id LIMIT 1)"
#define GAUGES_ANY_INDEX(name) ""

#define SQL_SHARED_STATEMENTS(X)                                                                                   \
	X(SCHEMA_VERSION, "SELECT COALESCE(MAX(version), 0) FROM {p}dura_schema")                                   \
	/* runs */                                                                                                 \
	X(RUN_INSERT, "INSERT INTO {p}workflow_records (" REC_COLS ") VALUES "                                     \
	              "(?, ?, ?, ?, ?, ?, 1, 0, 0, '', ?, '', NULL, ?, ?, ?, ?, ?, '', ?, ?)")                           \
	X(RUN_LIST, "SELECT " REC_COLS " FROM {p}workflow_records WHERE (?:text IS NULL OR workflow_name = ?) "    \
	            "AND (?:int = 0 OR run_state = ?) AND (?:text IS NULL OR status = ?) "                         \
	            "AND (?:text IS NULL OR foreign_id = ?) AND (?:time IS NULL OR created_at >= ?) "              \
	            "AND (?:time IS NULL OR created_at < ?) AND (?:text IS NULL OR run_id < ?) "                   \
	            "AND (?:text IS NULL OR parent_id = ?) AND (?:int = 0 OR wait_for <> '') "                         \
	            "AND (?:text IS NULL OR workflow_version = ?) "                                                \
	            "AND (?:int = 0 OR (" DUE_RUN ")) "                                                             \
	            "ORDER BY run_id DESC LIMIT ?")                                                                \
	X(RUN_GET, "SELECT " REC_COLS " FROM {p}workflow_records WHERE run_id = ?")                                \
	X(RUN_ACTIVE, "SELECT " REC_COLS " FROM {p}workflow_records WHERE workflow_name = ? AND foreign_id = ? "   \
	              "AND run_state IN " ACTIVE_STATES " ORDER BY run_id DESC LIMIT 1")                           \
	X(RUN_LATEST, "SELECT " REC_COLS " FROM {p}workflow_records WHERE workflow_name = ? AND foreign_id = ? "   \
	              "ORDER BY run_id DESC LIMIT 1")                                                              \
	X(STEPS_ERASE, "DELETE FROM {p}workflow_steps WHERE run_id = ?")                                           \
	X(CPS_ERASE, "DELETE FROM {p}workflow_checkpoints WHERE run_id = ?")                                       \
	/* steps */                                                                                                \
	X(RUN_VERSION, "SELECT version FROM {p}workflow_records WHERE run_id = ?")                                 \
	X(STEP_INSERT, "INSERT INTO {p}workflow_steps (" STEP_COLS ") VALUES (?, ?, ?, ?, ?, ?)")                  \
	X(HISTORY, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? AND step >= ? "                   \
	           "ORDER BY step LIMIT ?")                                                                        \
	X(STEP_GET, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? AND step = ?")                   \
	X(STEP_LATEST, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? ORDER BY step DESC LIMIT 1")  \
	/* checkpoints */                                                                                          \
	X(CP_LOAD, "SELECT " CP_COLS " FROM {p}workflow_checkpoints WHERE checkpoint_id = ?")                      \
	X(CP_DELETE, "DELETE FROM {p}workflow_checkpoints WHERE checkpoint_id = ?")                                \
	X(CP_SAVE, "INSERT INTO {p}workflow_checkpoints (checkpoint_id, run_id, state, step, created_at, "         \
	           "updated_at) VALUES (?, ?, ?, ?, ?, ?) {upsert:checkpoint_id} run_id = {new:run_id}, "          \
	           "state = {new:state}, step = {new:step}, updated_at = {new:updated_at}")                        \
	X(CP_LIST, "SELECT " CP_COLS " FROM {p}workflow_checkpoints WHERE (?:text IS NULL OR run_id = ?) "         \
	           "ORDER BY updated_at DESC, id DESC")                                                            \
	/* cache */                                                                                                \
	X(CACHE_GET, "SELECT {key}, value, error, created_at, expires_at, metadata FROM {p}step_cache "            \
	             "WHERE {key} = ? AND (expires_at IS NULL OR expires_at > ?)")                                 \
	X(CACHE_PUT, "INSERT INTO {p}step_cache ({key}, value, error, created_at, expires_at, metadata) "          \
	             "VALUES (?, ?, ?, ?, ?, ?) {upsert:key} value = {new:value}, error = {new:error}, "           \
	             "created_at = {new:created_at}, expires_at = {new:expires_at}, metadata = {new:metadata}")    \
	X(CACHE_LIVE, "SELECT 1 FROM {p}step_cache WHERE {key} = ? AND (expires_at IS NULL OR expires_at > ?)")    \
	X(CACHE_DELETE, "DELETE FROM {p}step_cache WHERE {key} = ?")                                               \
	X(CACHE_LIST, "SELECT {key}, LENGTH(value), error, created_at, expires_at, metadata FROM {p}step_cache "   \
	              "WHERE (?:text IS NULL OR {key} > ?) ORDER BY {key} LIMIT ?")                                \
	X(CLAIM_RELEASE, "DELETE FROM {p}step_cache_claims WHERE {key} = ? AND owner = ?")                         \
	X(CLAIM_DROP, "DELETE FROM {p}step_cache_claims WHERE {key} = ?")                                          \
	X(CACHE_PURGE, "DELETE FROM {p}step_cache WHERE expires_at IS NOT NULL AND expires_at <= ?")               \
	X(CLAIM_PURGE, "DELETE FROM {p}step_cache_claims WHERE expires_at <= ?")                                   \
	/* leases */                                                                                               \
	X(LEASE_RELEASE, "UPDATE {p}workflow_records SET lease_owner = '', lease_expires_at = NULL "               \
	                 "WHERE run_id = ? AND lease_owner = ?")                                                   \
	X(LEASE_OWNER, "SELECT lease_owner FROM {p}workflow_records WHERE run_id = ?")                             \
	X(LEASE_EXTEND, "UPDATE {p}workflow_records SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?") \
	/* outbox */                                                                                               \
	X(OUTBOX_POLL, "SELECT " EVENT_COLS " FROM {p}workflow_outbox ORDER BY id LIMIT ?")                        \
	X(OUTBOX_ACK, "DELETE FROM {p}workflow_outbox WHERE id = ?")                                              \
	/* the worker registry (sql/workers.c; SQLite's own binding in sqlite/leases.c) */                        \
	X(WORKER_PUT, "INSERT INTO {p}dura_workers (" WORKER_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "     \
	              "{upsert:worker_id} name = {new:name}, host = {new:host}, pid = {new:pid}, "                 \
	              "threads = {new:threads}, lease_ms = {new:lease_ms}, workflows = {new:workflows}, "          \
	              "held = {new:held}, heartbeat_at = {new:heartbeat_at}, dead_after = {new:dead_after}")      \
	X(WORKER_DELETE, "DELETE FROM {p}dura_workers WHERE worker_id = ?")                                        \
	X(WORKER_LIST, "SELECT " WORKER_COLS " FROM {p}dura_workers ORDER BY started_at, worker_id")               \
	X(WORKER_PRUNE, "DELETE FROM {p}dura_workers WHERE dead_after <= ?")                                       \
	/* durable waiting (contract version 5): a wake is (now, now, run_id, wait) and leaves the wait */         \
	/* as it is; a signal is consumed by (signal_id, run_id); SCHEDULE_LIST is by name in the column's */      \
	/* collation, which must be byte order (binary) for the contract's order */                              \
	X(RUN_WAKE, "UPDATE {p}workflow_records SET next_run_at = ?, version = version + 1, updated_at = ? "        \
	            "WHERE run_id = ? AND run_state = 2 AND wait_for = ?")                                         \
	X(SIGNAL_INSERT, "INSERT INTO {p}workflow_signals (" SIGNAL_COLS ") VALUES (?, ?, ?, ?, ?)")               \
	X(SIGNAL_NEXT, "SELECT " SIGNAL_COLS " FROM {p}workflow_signals WHERE run_id = ? AND name = ? "            \
	               "ORDER BY signal_id LIMIT 1")                                                               \
	X(SIGNAL_LIST, "SELECT " SIGNAL_COLS " FROM {p}workflow_signals WHERE run_id = ? ORDER BY signal_id")      \
	X(SIGNAL_DELETE, "DELETE FROM {p}workflow_signals WHERE signal_id = ? AND run_id = ?")                     \
	X(SIGNAL_ERASE, "DELETE FROM {p}workflow_signals WHERE run_id = ?")                                        \
	X(SCHEDULE_PUT, "INSERT INTO {p}dura_schedules (" SCHEDULE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "    \
	                "{upsert:name} cron = {new:cron}, zone = {new:zone}, workflow_name = {new:workflow_name}, " \
	                "state = {new:state}, catch_up = {new:catch_up}, next_tick = {new:next_tick}, "            \
	                "updated_at = {new:updated_at}")                                                           \
	X(SCHEDULE_GET, "SELECT " SCHEDULE_COLS " FROM {p}dura_schedules WHERE name = ?")                          \
	X(SCHEDULE_LIST, "SELECT " SCHEDULE_COLS " FROM {p}dura_schedules ORDER BY name")                          \
	X(SCHEDULE_DELETE, "DELETE FROM {p}dura_schedules WHERE name = ?")                                         \
	X(SCHEDULE_ADVANCE, "UPDATE {p}dura_schedules SET next_tick = ?, updated_at = ? "                          \
	                    "WHERE name = ? AND next_tick = ?")                                                    \
	/* workflow versions and retention (contract version 6): a version is (name, version, definition, */   \
	/* now, now), its upsert keeping first_seen_at; the lists are in byte order (binary collations); */    \
	/* a batch of retention is PRUNE_SELECT counted (a dry run) or locked ({lock}: nothing in SQLite, */  \
	/* which holds the write lock; SKIP LOCKED passes over a run another pruner has); the outbox's */     \
	/* oldest events by id, through a derived table (MySQL takes no LIMIT in an IN subquery, nor the */  \
	/* table it deletes from in one) */                                                                    \
	X(WORKFLOW_PUT, "INSERT INTO {p}dura_workflows (" WORKFLOW_COLS ") VALUES (?, ?, ?, ?, ?) "                \
	                "{upsert:workflow_name,version} definition = {new:definition}, "                             \
	                "last_seen_at = {new:last_seen_at}")                                                       \
	X(WORKFLOW_LIST, "SELECT " WORKFLOW_COLS " FROM {p}dura_workflows "                                        \
	                 "WHERE (?:text IS NULL OR workflow_name = ?) ORDER BY workflow_name, first_seen_at, version") \
	X(RUN_COUNTS, "SELECT " RUN_COUNT_COLS " FROM {p}workflow_records "                                        \
	              "WHERE (?:text IS NULL OR workflow_name = ?) GROUP BY workflow_name, workflow_version, run_state " \
	              "ORDER BY workflow_name, workflow_version, run_state")                                       \
	X(PRUNE_COUNT, "SELECT COUNT(*) FROM (" PRUNE_SELECT ") x")                                                \
	X(PRUNE_PICK, PRUNE_SELECT " {lock}")                                                                      \
	X(RUN_DELETE, "DELETE FROM {p}workflow_records WHERE run_id = ?")                                          \
	/* import (contract version 7; sqlite/import.c, sql/import.c): a record with every field as */            \
	/* given but the lease, which stays behind ('', no expiry); a checkpoint with its times; an */            \
	/* outbox event as it was; the outbox page by page, in id order after an id ("" before the */             \
	/* first); a run's steps and signals go in with STEP_INSERT and SIGNAL_INSERT */                          \
	X(RUN_IMPORT, "INSERT INTO {p}workflow_records (" REC_COLS ") VALUES "                                     \
	              "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL, ?, ?, ?, ?, ?, ?, ?, ?)")                          \
	X(CP_IMPORT, "INSERT INTO {p}workflow_checkpoints (" CP_COLS ") VALUES (?, ?, ?, ?, ?, ?)")                \
	X(OUTBOX_IMPORT, "INSERT INTO {p}workflow_outbox (" EVENT_COLS ") VALUES (?, ?, ?, ?, ?, ?)")              \
	X(OUTBOX_LIST, "SELECT " EVENT_COLS " FROM {p}workflow_outbox WHERE id > ? ORDER BY id LIMIT ?")

/* The outbox's retention (outbox_prune; bound: before, limit) as SQLite
 * and PostgreSQL say it. MySQL says it its own way (SQL_SERVER_OUTBOX_PRUNE
 * in mysql.h): there an IN (subquery) of a DELETE is a dependent subquery,
 * run once a row, and a single-table DELETE takes ORDER BY and LIMIT. */
#define SQL_OUTBOX_PRUNE                                                                                           \
	"DELETE FROM {p}workflow_outbox WHERE id IN (SELECT id FROM {p}workflow_outbox WHERE created_at < ? "       \
	"ORDER BY id LIMIT ?)"

/* sixteen parameters, a statement's list of up to 16 run ids ("" for a slot not used) */
#define IN_16 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

/*
 * The statements of the server stores (MySQL/MariaDB, PostgreSQL), which
 * sql/server.c runs: valid in both dialects, not in SQLite's (FOR UPDATE;
 * SQLite's own write lock covers the whole database). Their driver lists
 * them right after the shared ones, so their ids agree too.
 */
#define SQL_SERVER_STATEMENTS(X)                                                                                   \
	X(RUN_LOCK, "SELECT run_state, version, wait_for, parent_id FROM {p}workflow_records WHERE run_id = ? "    \
	            "FOR UPDATE")                                                                                  \
	X(RUN_SET_STATE, "UPDATE {p}workflow_records SET run_state = ?, version = version + 1, updated_at = ? "   \
	                 "WHERE run_id = ? AND run_state = ?")                                                     \
	X(RUN_SET_RUNNING, "UPDATE {p}workflow_records SET run_state = 2, version = version + 1, updated_at = ?, " \
	                   "next_run_at = CASE WHEN wait_for <> '' THEN next_run_at ELSE ?:time END, attempt = 0 "   \
	                   "WHERE run_id = ? AND run_state = ?")                                                   \
	X(RUN_ERASE, "UPDATE {p}workflow_records SET object = '{}', run_state = 6, version = version + 1, "        \
	             "updated_at = ? WHERE run_id = ?")                                                            \
	X(CACHE_STATS, "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN expires_at IS NOT NULL AND expires_at <= ? "  \
	               "THEN 1 ELSE 0 END), 0) AS {bigint}), CAST(COALESCE(SUM(LENGTH(value)), 0) AS {bigint}) "     \
	               "FROM {p}step_cache")                                                                       \
	X(CLAIM_LOCK, "SELECT owner, expires_at FROM {p}step_cache_claims WHERE {key} = ? FOR UPDATE")             \
	X(CLAIM_INSERT, "INSERT INTO {p}step_cache_claims ({key}, owner, expires_at) VALUES (?, ?, ?)")            \
	X(CLAIM_UPDATE, "UPDATE {p}step_cache_claims SET owner = ?, expires_at = ? WHERE {key} = ?")             \
	/* a worker's heartbeat: the leases of up to 16 runs at once (sql/server.c) */                                \
	X(LEASE_EXTEND_MANY, "UPDATE {p}workflow_records SET lease_expires_at = ? WHERE lease_owner = ? "         \
	                     "AND run_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")                      \
	/* did a commit whose connection was lost land? (sql/commit.c) */                                          \
	X(COMMIT_VERIFY, "SELECT version, step_no, updated_at, object FROM {p}workflow_records "                   \
	                 "WHERE run_id = ? FOR UPDATE")                                                            \
	/* the driver's SQL_SERVER_OUTBOX_PRUNE, defined before its statement list expands */                      \
	X(OUTBOX_PRUNE, SQL_SERVER_OUTBOX_PRUNE)                                                            \
	X(STEP_FIND, "SELECT step, state FROM {p}workflow_steps WHERE run_id = ? AND created_at = ? "             \
	             "AND node_id = ? ORDER BY step DESC LIMIT 1")                                                 \
	X(EVENT_CHECK, "SELECT 1 FROM {p}workflow_outbox WHERE id = ?")                                           \
	/* did a signal_send whose connection was lost land? (sql/server.c) */                                     \
	X(SIGNAL_CHECK, "SELECT 1 FROM {p}workflow_signals WHERE signal_id = ?")                                  \
	/* a claim: leasing up to 16 locked runs at once; with flow limits, the */                                  \
	/* lock row that serialises such claims, the live leases, the candidates */                                 \
	/* page by page (a keyset on the claim order), the workflows as up to 8 */                                  \
	/* names or none (sql/server.c) */                                                                           \
	X(CLAIM_APPLY, "UPDATE {p}workflow_records SET lease_owner = ?, lease_expires_at = ?, "                    \
	               "version = version + 1 WHERE run_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")   \
	X(FLOW_LOCK, "SELECT id FROM {p}dura_flow WHERE id = 1 FOR UPDATE")                                        \
	X(FLOW_COUNT, "SELECT workflow_name, concurrency_key, COUNT(*) FROM {p}workflow_records "                  \
	              "WHERE lease_owner <> '' AND lease_expires_at > ? AND run_state = 2 "                        \
	              "GROUP BY workflow_name, concurrency_key")                                                   \
	X(FLOW_PAGE, "SELECT " REC_COLS " FROM {p}workflow_records WHERE run_state = 2 AND next_run_at <= ? "       \
	             "AND (lease_owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?) "                \
	             "AND (?:text IS NULL OR workflow_name IN (?, ?, ?, ?, ?, ?, ?, ?)) "                          \
	             "AND (priority < ? OR (priority = ? AND (next_run_at > ? OR "                                 \
	             "(next_run_at = ? AND run_id > ?)))) "                                                        \
	             "ORDER BY priority DESC, next_run_at, run_id LIMIT ? {lock}")                                 \
	/* contract version 6 (sql/fleet.c): a run moved to another workflow version (CAS on its */              \
	/* version; the record read back with RUN_GET), and the writes of a batch of retention, up to */         \
	/* 16 runs at once: their data erased as RUN_ERASE does, or their rows deleted */                          \
	X(RUN_SET_VERSION, "UPDATE {p}workflow_records SET workflow_version = ?, version = version + 1, "          \
	                   "updated_at = ? WHERE run_id = ? AND version = ?")                                      \
	X(PRUNE_STEPS, "DELETE FROM {p}workflow_steps WHERE run_id IN " IN_16)                                     \
	X(PRUNE_CPS, "DELETE FROM {p}workflow_checkpoints WHERE run_id IN " IN_16)                                 \
	X(PRUNE_SIGNALS, "DELETE FROM {p}workflow_signals WHERE run_id IN " IN_16)                                 \
	X(PRUNE_RECORDS, "DELETE FROM {p}workflow_records WHERE run_id IN " IN_16)                                 \
	X(PRUNE_ERASE, "UPDATE {p}workflow_records SET object = '{}', run_state = 6, version = version + 1, "      \
	               "updated_at = ? WHERE run_id IN " IN_16)                                                    \
	/* contract version 7 (sql/import.c): is the event there after an unknown outcome ours? */                \
	X(EVENT_GET, "SELECT " EVENT_COLS " FROM {p}workflow_outbox WHERE id = ?")                                 \
	/* contract version 8 (sql/fleet.c): the gauges */                                                        \
	X(GAUGES, GAUGES_SELECT(GAUGES_ANY_INDEX))

#endif
