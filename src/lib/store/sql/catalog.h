/*
 * catalog.h - the SQL text the SQL stores share, written once.
 *
 * The column lists the row decoders in rows.c read (REC_COLS, STEP_COLS,
 * CP_COLS, in that order), the run states that count as active, and the
 * statements whose text is the same in every dialect: plain "?"
 * placeholders, each bound once and in the order it appears (SQLite
 * numbers a bare "?" one past the largest so far, so these read exactly as
 * its ?1, ?2, ... did), "{p}" for the table prefix, no quoted identifier,
 * no upsert, no RETURNING. A statement that differs in any of those stays
 * in its driver's own table.
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
	"lease_owner, lease_expires_at, next_run_at, created_at, updated_at"
/* dura_sql_row_step()'s and dura_sql_row_checkpoint()'s columns */
#define STEP_COLS "run_id, step, node_id, state, created_at"
#define CP_COLS "checkpoint_id, run_id, step, state, created_at, updated_at"
/* dura_sql_row_event()'s columns */
#define EVENT_COLS "id, workflow_name, run_id, type, data, created_at"
#define ACTIVE_STATES "(1, 2, 4)" /* initiated, running, paused */

#define SQL_SHARED_STATEMENTS(X)                                                                                   \
	/* runs */                                                                                                 \
	X(RUN_GET, "SELECT " REC_COLS " FROM {p}workflow_records WHERE run_id = ?")                                \
	X(RUN_ACTIVE, "SELECT " REC_COLS " FROM {p}workflow_records WHERE workflow_name = ? AND foreign_id = ? "   \
	              "AND run_state IN " ACTIVE_STATES " ORDER BY run_id DESC LIMIT 1")                           \
	X(RUN_LATEST, "SELECT " REC_COLS " FROM {p}workflow_records WHERE workflow_name = ? AND foreign_id = ? "   \
	              "ORDER BY run_id DESC LIMIT 1")                                                              \
	X(STEPS_ERASE, "DELETE FROM {p}workflow_steps WHERE run_id = ?")                                           \
	X(CPS_ERASE, "DELETE FROM {p}workflow_checkpoints WHERE run_id = ?")                                       \
	/* steps */                                                                                                \
	X(RUN_VERSION, "SELECT version FROM {p}workflow_records WHERE run_id = ?")                                 \
	X(STEP_INSERT, "INSERT INTO {p}workflow_steps (" STEP_COLS ") VALUES (?, ?, ?, ?, ?)")                     \
	X(HISTORY, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? AND step >= ? "                   \
	           "ORDER BY step LIMIT ?")                                                                        \
	X(STEP_GET, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? AND step = ?")                   \
	X(STEP_LATEST, "SELECT " STEP_COLS " FROM {p}workflow_steps WHERE run_id = ? ORDER BY step DESC LIMIT 1")  \
	/* checkpoints */                                                                                          \
	X(CP_LOAD, "SELECT " CP_COLS " FROM {p}workflow_checkpoints WHERE checkpoint_id = ?")                      \
	X(CP_DELETE, "DELETE FROM {p}workflow_checkpoints WHERE checkpoint_id = ?")                                \
	/* cache */                                                                                                \
	X(CACHE_PURGE, "DELETE FROM {p}step_cache WHERE expires_at IS NOT NULL AND expires_at <= ?")               \
	X(CLAIM_PURGE, "DELETE FROM {p}step_cache_claims WHERE expires_at <= ?")                                   \
	/* leases */                                                                                               \
	X(LEASE_RELEASE, "UPDATE {p}workflow_records SET lease_owner = '', lease_expires_at = NULL "               \
	                 "WHERE run_id = ? AND lease_owner = ?")                                                   \
	X(LEASE_OWNER, "SELECT lease_owner FROM {p}workflow_records WHERE run_id = ?")                             \
	/* outbox */                                                                                               \
	X(OUTBOX_POLL, "SELECT " EVENT_COLS " FROM {p}workflow_outbox ORDER BY id LIMIT ?")                        \
	X(OUTBOX_ACK, "DELETE FROM {p}workflow_outbox WHERE id = ?")

#endif
