/*
 * store.c - the SQLite store's vtable (dura__sqlite_ops) and its
 * lifecycle: URL options, open (the statements expanded, the first
 * connection, its schema checked before WAL mode is set, then migrated),
 * close, ping, info, stats and migrate; and raw SQL (exec_sql). Every other
 * operation is in the file of its concern (sqlite.h lists them).
 *
 * URL options: synchronous=off|normal|full|extra (default full),
 * busy_timeout=MS (default 5000), prefix, pool_max (default 8).
 */
#include "sqlite.h"

/* ---- lifecycle ---------------------------------------------------------------- */

static void note(sq_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(sq_store *s)
{
	if (!s)
		return;
	dura_sql_pool_destroy(&s->pool);
	for (int i = 0; i < ST__COUNT; i++)
		dura_free(s->sql[i]);
	dura_free(s->path);
	dura_free(s->prefix);
	dura_free(s);
}

static int parse_options(sq_store *s, const dura_url *url)
{
	static const char *const known[] = {"synchronous", "busy_timeout", "prefix", "pool_max", "max_state",
	                                    "max_value"};
	const char *v;
	s->synchronous = "FULL";
	if ((v = dura_url_param(url, "synchronous")) != NULL) {
		static const char *const modes[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
		s->synchronous = NULL;
		for (int i = 0; i < 4; i++)
			if (strcasecmp(v, modes[i]) == 0 || (v[0] == '0' + i && v[1] == '\0'))
				s->synchronous = modes[i];
		if (!s->synchronous)
			return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL,
			                             "URL option synchronous='%.40s' is not off, normal, full or extra", v);
	}
	s->busy_ms = SQ_DEFAULT_BUSY_MS;
	if ((v = dura_url_param(url, "busy_timeout")) != NULL) {
		char *end;
		long ms = strtol(v, &end, 10);
		if (!*v || *end || ms < 0 || ms > INT_MAX)
			return dura_error_set_native(DURA_EINVAL, SQ, 0, NULL,
			                             "URL option busy_timeout='%.40s' is not a number of milliseconds", v);
		s->busy_ms = (int)ms;
	}
	/* max_state and max_value are the core's (dura_store_limits_get): their
	 * ceiling, 10^9, is SQLite's own for a value (SQLITE_MAX_LENGTH) */
	s->pool_max = url->pool_max > 0 ? url->pool_max : SQ_DEFAULT_POOL;
	for (size_t i = 0; i < url->nparams; i++) {
		int ok = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= strcmp(url->param_names[i], known[k]) == 0;
		if (!ok)
			note(s, "ignored option %s", url->param_names[i]);
	}
	return 0;
}

static int sq_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	sq_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(SQ);
	s->pool.ops = &dsq_pool_ops;
	s->pool.store = s;
	dura_sql_pool_init(&s->pool);
	int rc = parse_options(s, url);
	if (rc) {
		store_free(s);
		return rc;
	}
	s->path = dura_strdup(url->database);
	s->prefix = dura_strdup(url->prefix ? url->prefix : "");
	s->no_create = !opts->auto_migrate && strcmp(url->database, ":memory:") != 0;
	int ok = s->path && s->prefix;
	for (int i = 0; ok && i < ST__COUNT; i++)
		ok = (s->sql[i] = dsq_expand(dsq_st_sql[i], s->prefix)) != NULL;
	if (!ok) {
		store_free(s);
		return dura_error_oom(SQ);
	}
	s->caps = DURA_CAP_RETURNING | DURA_CAP_JSON | DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL;
	if (strcmp(s->path, ":memory:") == 0) {
		/* every connection would be a database of its own */
		s->pool_max = 1;
		s->caps &= ~(DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE);
		note(s, "%s database: one connection, lost at close", "in-memory");
	}
	snprintf(s->server_version, sizeof(s->server_version), "SQLite %s", sqlite3_libversion());

	sq_conn *c;
	if ((rc = dsq_conn_open(s, &c)) != 0) {
		store_free(s);
		return rc;
	}
	if ((rc = dsq_check_and_migrate(s, c, opts)) != 0) {
		dsq_conn_close(c);
		store_free(s);
		return rc;
	}
	s->pool.max = s->pool.max_idle = s->pool_max;
	dura_sql_pool_adopt(&s->pool, &c->base);
	*impl = s;
	return 0;
}

static void sq_close(void *impl)
{
	store_free(impl);
}

static int sq_ping(void *impl)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = dsq_run_simple(s, c, ST_PING);
	dsq_pool_put(s, c);
	return rc;
}

static int sq_info(void *impl, dura_store_info *out)
{
	sq_store *s = impl;
	sq_conn *c;
	int v = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = dsq_read_schema_version(s, c, &v);
	dsq_pool_put(s, c);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = SQ_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int sq_stats(void *impl, dura_store_stats *out)
{
	sq_store *s = impl;
	dura_sql_pool_stats(&s->pool, out);
	return 0;
}

static int sq_migrate(void *impl, int *from, int *to)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = dsq_migrate_conn(s, c, from, to);
	dsq_pool_put(s, c);
	return rc;
}

/* ---- raw SQL ------------------------------------------------------------------------- */

struct exec_adapter {
	dura_row_cb cb;
	void *payload;
	int stopped;
};

static int exec_row(void *p, int ncols, char **values, char **names)
{
	struct exec_adapter *a = p;
	if (a->cb(ncols, values, names, a->payload) != 0) {
		a->stopped = 1;
		return 1;
	}
	return 0;
}

static int sq_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	sq_store *s = impl;
	sq_conn *c;
	struct exec_adapter a = {cb, payload, 0};
	char *err = NULL;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = sqlite3_exec(c->db, sql, cb ? exec_row : NULL, &a, &err);
	if (rc == SQLITE_OK || (rc == SQLITE_ABORT && a.stopped)) {
		rc = 0;
	} else {
		int code = dsq_code_of(rc) == DURA_EBUSY ? DURA_EBUSY : DURA_ERROR;
		rc = dura_error_set_native(code, SQ, sqlite3_extended_errcode(c->db), NULL, "SQL failed: %s",
		                           err ? err : sqlite3_errstr(rc));
	}
	sqlite3_free(err);
	/* whatever the SQL left open is not handed to the next caller
	 * (dsq_pool_put rolls back an open transaction) */
	dsq_pool_put(s, c);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__sqlite_ops = {
	.version = 8,
	.scheme = "sqlite",
	.caps = DURA_CAP_RETURNING | DURA_CAP_JSON | DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL,
	.open = sq_open,
	.close = sq_close,
	.ping = sq_ping,
	.info = sq_info,
	.stats = sq_stats,
	.migrate = sq_migrate,
	.create_run = dsq_create_run,
	.get_run = dsq_get_run,
	.latest_run = dsq_latest_run,
	.list_runs = dsq_list_runs,
	.set_run_state = dsq_set_run_state,
	.delete_run_data = dsq_delete_run_data,
	.commit = dsq_commit,
	.commit_batch = dsq_commit_batch,
	.history = dsq_history,
	.get_step = dsq_get_step,
	.load_latest = dsq_load_latest,
	.checkpoint_save = dsq_checkpoint_save,
	.checkpoint_load = dsq_checkpoint_load,
	.checkpoint_list = dsq_checkpoint_list,
	.checkpoint_delete = dsq_checkpoint_delete,
	.cache_get = dsq_cache_get,
	.cache_put = dsq_cache_put,
	.cache_claim = dsq_cache_claim,
	.cache_release = dsq_cache_release,
	.cache_delete = dsq_cache_delete,
	.cache_purge_expired = dsq_cache_purge_expired,
	.cache_list = dsq_cache_list,
	.cache_stats = dsq_cache_stats,
	.claim_runs = dsq_claim_runs,
	.extend_lease = dsq_extend_lease,
	.release_lease = dsq_release_lease,
	.outbox_poll = dsq_outbox_poll,
	.outbox_ack = dsq_outbox_ack,
	.exec_sql = sq_exec_sql,
	.wait_change = NULL,
	.atfork_child = dsq_atfork_child,
	.extend_leases = dsq_extend_leases,
	.claim = dsq_claim,
	/* version 4: the worker registry */
	.worker_put = dsq_worker_put,
	.worker_delete = dsq_worker_delete,
	.worker_list = dsq_worker_list,
	.worker_prune = dsq_worker_prune,
	/* version 5: durable waiting */
	.signal_send = dsq_signal_send,
	.signal_next = dsq_signal_next,
	.signal_list = dsq_signal_list,
	.wake = dsq_wake,
	.schedule_put = dsq_schedule_put,
	.schedule_get = dsq_schedule_get,
	.schedule_delete = dsq_schedule_delete,
	.schedule_list = dsq_schedule_list,
	.schedule_advance = dsq_schedule_advance,
	/* version 6: workflow versions and retention */
	.workflow_put = dsq_workflow_put,
	.workflow_list = dsq_workflow_list,
	.run_counts = dsq_run_counts,
	.set_run_version = dsq_set_run_version,
	.prune_runs = dsq_prune_runs,
	.outbox_prune = dsq_outbox_prune,
	/* version 7: import */
	.import_run = dsq_import_run,
	.import_event = dsq_import_event,
	.outbox_list = dsq_outbox_list,
	/* version 8 */
	.gauges = dsq_gauges,
};
