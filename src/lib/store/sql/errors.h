/*
 * errors.h - the messages every SQL store gives for the same situation,
 * written once so that a run that is not found, a lost lease or a schema
 * too new reads the same on SQLite, MySQL and PostgreSQL, and a caller or
 * a test can rely on the wording.
 *
 * Each function sets the thread's error in the store's name (no native
 * code: these are dura's verdicts, not the server's; but an import's
 * duplicates carry the broken key's) and returns the code it set, for
 * `return dura_sql_err_...(...)`. Messages a single driver gives (a
 * connection refused, a privilege missing, a file that is not a database)
 * stay in that driver. No driver header here.
 */
#ifndef DURA_SQL_ERRORS_H
#define DURA_SQL_ERRORS_H

#include <stddef.h>
#include <stdint.h>

/* DURA_ENOTFOUND */
int dura_sql_err_run_not_found(const char *store, const char *run_id);
int dura_sql_err_no_run_with_fid(const char *store, const char *workflow, const char *fid);
int dura_sql_err_no_step(const char *store, const char *run_id, int64_t step);
int dura_sql_err_no_committed_step(const char *store, const char *run_id);
int dura_sql_err_checkpoint_not_found(const char *store, const char *cp_id);
int dura_sql_err_cache_not_found(const char *store, const char *key);
int dura_sql_err_cache_not_claimed(const char *store, const char *key, const char *owner);

/* DURA_ECONFLICT */
int dura_sql_err_version(const char *store, const char *run_id, int64_t have, int64_t expected);
int dura_sql_err_move(const char *store, const char *run_id, int from, int to);
int dura_sql_err_moved_meanwhile(const char *store, const char *run_id, int to);
int dura_sql_err_delete_live(const char *store, const char *run_id, int state);
int dura_sql_err_leased_by(const char *store, const char *run_id, const char *holder, const char *owner);
int dura_sql_err_not_leased(const char *store, const char *run_id, const char *owner);
int dura_sql_err_batch(const char *store, size_t failed, size_t n, const char *first);

/* DURA_EEXISTS, DURA_EBUSY */
int dura_sql_err_cache_has_value(const char *store, const char *key);
int dura_sql_err_cache_claimed(const char *store, const char *key, const char *holder, const char *until);

/* DURA_EEXISTS of an import (contract version 7), nothing written: the
 * run id is taken; an active run (active_id, NULL when not known) has the
 * workflow and foreign id; a row of the run (what: "checkpoint",
 * "signal", "step") is there under its id; an outbox event is there. The
 * native code and SQLSTATE are the driver's duplicate key (0, NULL for none). */
int dura_sql_err_import_run_exists(const char *store, int native, const char *sqlstate, const char *run_id);
int dura_sql_err_import_active(const char *store, int native, const char *sqlstate, const char *run_id,
                               const char *workflow, const char *fid, const char *active_id);
int dura_sql_err_import_taken(const char *store, int native, const char *sqlstate, const char *run_id,
                              const char *what, const char *id);
int dura_sql_err_event_exists(const char *store, int native, const char *sqlstate, const char *event_id);

/* DURA_EVERSION and DURA_ENOTFOUND for a schema: where names the
 * database ("database 'x'", or a file's path) */
int dura_sql_err_schema_newer(const char *store, int version, int ours);
int dura_sql_err_schema_older(const char *store, int version, int ours);
int dura_sql_err_schema_missing(const char *store, const char *where, const char *prefix);

#endif
