/*
 * errors.c - the SQL stores' shared messages (errors.h). One function per
 * situation, each a single dura_error_set_native() call, so that the
 * compiler checks every format against its arguments.
 */
#include "errors.h"

#include "dura/store.h"

int dura_sql_err_run_not_found(const char *store, const char *run_id)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "run %s not found", run_id);
}

int dura_sql_err_no_run_with_fid(const char *store, const char *workflow, const char *fid)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "workflow %s has no run with foreign id %s", workflow,
	                             fid);
}

int dura_sql_err_no_step(const char *store, const char *run_id, int64_t step)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "run %s has no step %lld", run_id, (long long)step);
}

int dura_sql_err_no_committed_step(const char *store, const char *run_id)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "run %s has no committed step", run_id);
}

int dura_sql_err_checkpoint_not_found(const char *store, const char *cp_id)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "checkpoint %s not found", cp_id);
}

int dura_sql_err_cache_not_found(const char *store, const char *key)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "cache key %s not found (or expired)", key);
}

int dura_sql_err_cache_not_claimed(const char *store, const char *key, const char *owner)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "cache key %s is not claimed by %s", key, owner);
}

int dura_sql_err_version(const char *store, const char *run_id, int64_t have, int64_t expected)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL,
	                             "run %s is at version %lld, not the expected version %lld (another worker changed it)",
	                             run_id, (long long)have, (long long)expected);
}

int dura_sql_err_move(const char *store, const char *run_id, int from, int to)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL, "cannot move run %s from %s to %s", run_id,
	                             dura_run_state_name(from), dura_run_state_name(to));
}

int dura_sql_err_moved_meanwhile(const char *store, const char *run_id, int to)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL, "run %s changed while moving it to %s", run_id,
	                             dura_run_state_name(to));
}

int dura_sql_err_delete_live(const char *store, const char *run_id, int state)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL,
	                             "cannot delete the data of run %s: it is %s (only completed, cancelled or failed runs)",
	                             run_id, dura_run_state_name(state));
}

int dura_sql_err_leased_by(const char *store, const char *run_id, const char *holder, const char *owner)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL, "run %s is leased by %s, not by %s", run_id, holder,
	                             owner);
}

int dura_sql_err_not_leased(const char *store, const char *run_id, const char *owner)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL, "run %s is not leased (by %s or anyone)", run_id,
	                             owner);
}

int dura_sql_err_batch(const char *store, size_t failed, size_t n, const char *first)
{
	return dura_error_set_native(DURA_ECONFLICT, store, 0, NULL, "%zu of %zu commits in the batch did not go in (first: %s)",
	                             failed, n, first);
}

int dura_sql_err_cache_has_value(const char *store, const char *key)
{
	return dura_error_set_native(DURA_EEXISTS, store, 0, NULL, "cache key %s already has a value", key);
}

int dura_sql_err_cache_claimed(const char *store, const char *key, const char *holder, const char *until)
{
	return dura_error_set_native(DURA_EBUSY, store, 0, NULL, "cache key %s is claimed by %s until %s", key, holder,
	                             until);
}

int dura_sql_err_import_run_exists(const char *store, int native, const char *sqlstate, const char *run_id)
{
	return dura_error_set_native(DURA_EEXISTS, store, native, sqlstate,
	                             "cannot import run %s: a run with that id exists (nothing was written)", run_id);
}

int dura_sql_err_import_active(const char *store, int native, const char *sqlstate, const char *run_id,
                               const char *workflow, const char *fid, const char *active_id)
{
	if (active_id)
		return dura_error_set_native(DURA_EEXISTS, store, native, sqlstate,
		                             "cannot import run %s: workflow %s already has an active run %s with foreign id "
		                             "%s (nothing was written)",
		                             run_id, workflow, active_id, fid);
	return dura_error_set_native(DURA_EEXISTS, store, native, sqlstate,
	                             "cannot import run %s: workflow %s already has an active run with foreign id %s "
	                             "(nothing was written)",
	                             run_id, workflow, fid);
}

int dura_sql_err_import_taken(const char *store, int native, const char *sqlstate, const char *run_id,
                              const char *what, const char *id)
{
	return dura_error_set_native(DURA_EEXISTS, store, native, sqlstate,
	                             "cannot import run %s: %s %s exists already (nothing was written)", run_id, what, id);
}

int dura_sql_err_event_exists(const char *store, int native, const char *sqlstate, const char *event_id)
{
	return dura_error_set_native(DURA_EEXISTS, store, native, sqlstate,
	                             "cannot import outbox event %s: an event with that id exists (nothing was written)",
	                             event_id);
}

int dura_sql_err_schema_newer(const char *store, int version, int ours)
{
	return dura_error_set_native(DURA_EVERSION, store, 0, NULL,
	                             "database schema version %d is newer than this library's %d; upgrade dura", version, ours);
}

int dura_sql_err_schema_older(const char *store, int version, int ours)
{
	return dura_error_set_native(DURA_EVERSION, store, 0, NULL,
	                             "database schema version %d is older than this library's %d; run `dura init` to upgrade it",
	                             version, ours);
}

int dura_sql_err_schema_missing(const char *store, const char *where, const char *prefix)
{
	return dura_error_set_native(DURA_ENOTFOUND, store, 0, NULL, "%s has no dura tables%s%s; run `dura init` to create them",
	                             where, *prefix ? " with prefix " : "", prefix);
}
