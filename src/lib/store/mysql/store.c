/*
 * store.c - the MySQL store's vtable (dura__mysql_ops) and every operation
 * in it but the step commits (commit.c): URL options, open (the first
 * connection, the statements expanded, the schema checked or migrated),
 * close and the fork handler, ping, info and stats, runs, step reads,
 * checkpoints, the step cache and its single-flight claims, leases, the
 * outbox and raw SQL. Each operation is a body run by dura_my_run_op()
 * (conn.c), which retries it as mysql.h describes.
 *
 * URL options: prefix, pool_max, pool_idle, conn_lifetime, conn_idle_time,
 * connect_timeout (or the DSN's timeout; default 10s), readTimeout and
 * writeTimeout (the DSN's), tls=true|skip-verify|preferred|false|<CA file>
 * (or libpq's sslmode=require|verify-ca|verify-full|disable),
 * skip_locked=0 (claim with plain FOR UPDATE even where SKIP LOCKED
 * exists). The Go driver's parseTime, loc, charset, collation, ... are
 * accepted and listed in info's notes: dura always reads times itself, in
 * UTC, in utf8mb4.
 */
#include "mysql.h"
#include "../sql/fleet.h"
#include "../sql/import.h"
#include "../sql/workers.h"

static const char *const st_sql[ST__COUNT] = {STATEMENTS(X_SQL)};

/* ---- lifecycle -------------------------------------------------------------------- */

static void note(my_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(my_store *s)
{
	if (!s)
		return;
	dura_sql_pool_destroy(&s->base.pool);
	for (int i = 0; i < ST__COUNT; i++)
		dura_free(s->sql[i]);
	dura_free(s->host);
	dura_free(s->user);
	dura_free(s->password);
	dura_free(s->database);
	dura_free(s->socket);
	dura_free(s->prefix);
	dura_free(s->tls_ca);
	pthread_mutex_destroy(&s->mu);
	dura_free(s);
}

/*
 * In a forked child (store.h, atfork_child): the idle connections are the
 * parent's sessions. Let go of them without a goodbye on their sockets;
 * the child's next call opens its own. No connection is in use: the core
 * waited for every call in flight before forking.
 */
static void my_atfork_child(void *impl)
{
	my_store *s = impl;
	dura_sql_pool_atfork_child(&s->base.pool);
	pthread_mutex_init(&s->mu, NULL);
}

/* Whole seconds for Connector/C's timeouts (rounded up; 0 stays 0). */
static unsigned secs(int64_t ms)
{
	if (ms <= 0)
		return 0;
	int64_t sec = (ms + 999) / 1000;
	return sec > 86400 * 365 ? 86400 * 365 : (unsigned)sec;
}

/* The Go DSN's readTimeout and writeTimeout: a bare number is seconds. */
static int duration_param(const dura_url *url, const char *name, int64_t *out)
{
	const char *v = dura_url_param(url, name);
	return v ? dura__parse_duration(out, MY, name, v, 1000) : 0;
}

static int parse_options(my_store *s, const dura_url *url)
{
	/* understood here or by the core */
	static const char *const known[] = {"prefix",      "pool_max",        "pool_idle", "conn_lifetime",
	                                    "conn_idle_time", "connect_timeout", "timeout",   "tls",
	                                    "sslmode",     "skip_locked",     "readTimeout", "writeTimeout",
	                                    "max_state",   "max_value"};
	/* the Go driver's options that mean nothing here */
	static const struct {
		const char *name, *why;
	} go_opts[] = {
		{"parseTime", "dura always reads times itself"},
		{"loc", "times are always UTC"},
		{"charset", "dura always speaks utf8mb4"},
		{"collation", "dura's tables set their own collation"},
		{"maxAllowedPacket", "the server's max_allowed_packet is read at connect"},
	};
	const char *v;
	int64_t ms = 0;
	int rc;
	s->pool_max = url->pool_max > 0 ? url->pool_max : MY_DEFAULT_POOL;
	s->pool_idle = url->pool_idle >= 0 ? url->pool_idle : MY_DEFAULT_IDLE;
	if (s->pool_idle > s->pool_max)
		s->pool_idle = s->pool_max;
	s->lifetime_ms = url->conn_lifetime_ms > 0 ? url->conn_lifetime_ms : MY_DEFAULT_LIFETIME_MS;
	s->idle_ms = url->conn_idle_ms > 0 ? url->conn_idle_ms : MY_DEFAULT_IDLE_MS;
	s->connect_s = url->connect_timeout_ms > 0 ? secs(url->connect_timeout_ms) : MY_DEFAULT_CONNECT_S;
	if ((rc = duration_param(url, "readTimeout", &ms)) != 0)
		return rc;
	s->read_s = secs(ms);
	ms = 0;
	if ((rc = duration_param(url, "writeTimeout", &ms)) != 0)
		return rc;
	s->write_s = secs(ms);
	s->skip_locked_opt = 1;
	if ((v = dura_url_param(url, "skip_locked")) != NULL) {
		if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0)
			s->skip_locked_opt = 0;
		else if (!(strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0))
			return dura_error_set_native(DURA_EINVAL, MY, 0, NULL, "URL option skip_locked='%.40s' is not 0 or 1", v);
	}
	s->tls = 0;
	s->tls_verify = 1;
	if ((v = dura_url_param(url, "tls")) != NULL && *v) {
		if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
			s->tls = 1;
		} else if (strcasecmp(v, "skip-verify") == 0) {
			s->tls = 1;
			s->tls_verify = 0;
		} else if (strcasecmp(v, "preferred") == 0) {
			/* the Go driver's: TLS if the server offers it, unverified;
			 * Connector/C cannot fall back, so this is plain */
			note(s, "tls=%s: connecting without TLS (Connector/C cannot fall back)", v);
		} else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
			s->tls = 0;
		} else if (strchr(v, '/') || strchr(v, '.')) {
			s->tls = 1;
			if (!(s->tls_ca = dura_strdup(v)))
				return dura_error_oom(MY);
		} else {
			return dura_error_set_native(DURA_EINVAL, MY, 0, NULL,
			                             "URL option tls='%.60s' is not true, false, skip-verify, preferred or the path "
			                             "of a CA certificate file",
			                             v);
		}
	}
	if (!dura_url_param(url, "tls") && (v = dura_url_param(url, "sslmode")) != NULL) {
		/* libpq's words, for those who write them */
		if (strcmp(v, "verify-ca") == 0 || strcmp(v, "verify-full") == 0 || strcmp(v, "verify_identity") == 0) {
			s->tls = 1;
		} else if (strcmp(v, "require") == 0 || strcmp(v, "required") == 0) {
			s->tls = 1;
			s->tls_verify = 0;
		} else if (strcmp(v, "disable") == 0 || strcmp(v, "disabled") == 0) {
			s->tls = 0;
		} else {
			note(s, "sslmode=%s: connecting without TLS", v);
		}
	}
	for (size_t i = 0; i < url->nparams; i++) {
		const char *name = url->param_names[i];
		int ok = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= strcmp(name, known[k]) == 0;
		if (ok)
			continue;
		for (size_t k = 0; k < sizeof(go_opts) / sizeof(go_opts[0]) && !ok; k++) {
			if (strcmp(name, go_opts[k].name) == 0) {
				char buf[160];
				snprintf(buf, sizeof(buf), "ignored option %s (%s)", name, go_opts[k].why);
				note(s, "%s", buf);
				ok = 1;
			}
		}
		if (!ok)
			note(s, "ignored option %s", name);
	}
	return 0;
}

static int my_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	int rc = dura_my_thread();
	if (rc)
		return rc;
	my_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(MY);
	pthread_mutex_init(&s->mu, NULL);
	s->base.name = MY;
	s->base.x = &dura_my_exec;
	s->base.drv = &dura_my_driver;
	s->base.pool.ops = &dura_my_pool_ops;
	s->base.pool.store = s;
	dura_sql_pool_init(&s->base.pool);
	if ((rc = parse_options(s, url)) != 0) {
		store_free(s);
		return rc;
	}
	s->base.pool.max = s->pool_max;
	s->base.pool.max_idle = s->pool_idle;
	s->base.pool.lifetime_ms = s->lifetime_ms;
	s->base.pool.idle_ms = s->idle_ms;
	s->host = dura_strdup(url->host ? url->host : "");
	s->user = dura_strdup(url->user ? url->user : "");
	s->password = dura_strdup(url->password ? url->password : "");
	s->database = dura_strdup(url->database ? url->database : "");
	s->socket = dura_strdup(url->socket ? url->socket : "");
	s->prefix = dura_strdup(url->prefix ? url->prefix : "");
	s->port = url->port > 0 ? (unsigned)url->port : 3306;
	if (!s->host || !s->user || !s->password || !s->database || !s->socket || !s->prefix) {
		store_free(s);
		return dura_error_oom(MY);
	}
	if (!*s->database) {
		store_free(s);
		return dura_error_set_native(DURA_EINVAL, MY, 0, NULL,
		                             "the MySQL store URL names no database (like mysql://user:pass@host:3306/DBNAME)");
	}
	if (strchr(s->database, '/') || strlen(s->database) > 64) {
		store_free(s);
		return dura_error_set_native(DURA_EINVAL, MY, 0, NULL, "'%.80s' is not a MySQL database name", s->database);
	}

	my_conn *c;
	if ((rc = dura_my_conn_open(s, &c)) != 0) {
		store_free(s);
		return rc;
	}
	dura_my_learn_server(s, c->db);
	if (!s->skip_locked_opt && (s->caps & DURA_CAP_SKIP_LOCKED))
		note(s, "%s", "skip_locked=0: claims use plain FOR UPDATE");
	else if (!(s->caps & DURA_CAP_SKIP_LOCKED))
		note(s, "%s", "the server has no SKIP LOCKED: claims use plain FOR UPDATE");
	if (s->tls) {
		const char *cipher = mysql_get_ssl_cipher(c->db);
		note(s, "TLS %s", cipher ? cipher : "(cipher unknown)");
	}
	for (int i = 0; i < ST__COUNT && rc == 0; i++)
		if (!(s->sql[i] = dura_my_expand(s, st_sql[i])))
			rc = dura_error_oom(MY);
	if (rc == 0)
		rc = dura_my_check_and_migrate(s, c, opts);
	atomic_store(&s->use_proc, 1); /* until a CALL says it cannot be used */
	if (rc) {
		dura_my_conn_close(c);
		store_free(s);
		return rc;
	}
	dura_sql_pool_adopt(&s->base.pool, &c->base);
	*impl = s;
	return 0;
}

static void my_close(void *impl)
{
	store_free(impl);
}

static int ping_body(my_store *s, my_conn *c, void *arg, int again)
{
	(void)arg;
	(void)again;
	if (mysql_ping(c->db))
		return dura_my_fail(s, c, NULL, "ping");
	return 0;
}

static int my_ping(void *impl)
{
	return dura_my_run_op(impl, ping_body, NULL, DURA_SQL_IDEMPOTENT);
}

static int info_body(my_store *s, my_conn *c, void *arg, int again)
{
	(void)again;
	return dura_my_read_schema_version(s, c, arg);
}

static int my_info(void *impl, dura_store_info *out)
{
	my_store *s = impl;
	int v = 0;
	int rc = dura_my_run_op(s, info_body, &v, DURA_SQL_IDEMPOTENT);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = MY_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int my_stats(void *impl, dura_store_stats *out)
{
	my_store *s = impl;
	dura_sql_pool_stats(&s->base.pool, out);
	return 0;
}

struct migrate_arg {
	int *from, *to;
};

static int migrate_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct migrate_arg *a = arg;
	(void)again;
	return dura_my_migrate_conn(s, c, a->from, a->to);
}

static int my_migrate(void *impl, int *from, int *to)
{
	struct migrate_arg a = {from, to};
	return dura_my_run_op(impl, migrate_body, &a, DURA_SQL_IDEMPOTENT);
}

/* ---- raw SQL ------------------------------------------------------------------------- */

/*
 * Text protocol, several statements allowed; every result set goes to the
 * callback. The connection is closed afterwards, not pooled: the SQL may
 * have changed its session (USE, SET, an open transaction).
 */
static int my_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	my_store *s = impl;
	my_conn *c;
	int rc = dura_my_pool_get(s, &c);
	if (rc)
		return rc;
	if (mysql_real_query(c->db, sql, strlen(sql))) {
		rc = dura_my_fail(s, c, NULL, "SQL failed");
		goto out;
	}
	int stopped = 0;
	for (;;) {
		MYSQL_RES *res = mysql_store_result(c->db);
		if (res) {
			unsigned nf = mysql_num_fields(res);
			MYSQL_FIELD *f = mysql_fetch_fields(res);
			char **names = dura_calloc(nf ? nf : 1, sizeof(char *));
			if (!names) {
				mysql_free_result(res);
				rc = dura_error_oom(MY);
				break;
			}
			for (unsigned i = 0; i < nf; i++)
				names[i] = f[i].name;
			MYSQL_ROW row;
			while (!stopped && (row = mysql_fetch_row(res)) != NULL)
				if (cb && cb((int)nf, row, names, payload) != 0)
					stopped = 1;
			dura_free(names);
			mysql_free_result(res);
		} else if (mysql_field_count(c->db)) {
			rc = dura_my_fail(s, c, NULL, "SQL failed");
			break;
		}
		int nr = mysql_next_result(c->db);
		if (nr > 0) {
			rc = dura_my_fail(s, c, NULL, "SQL failed");
			break;
		}
		if (nr < 0)
			break;
	}
out:
	/* closed, not pooled (and the idle ones are kept) */
	dura_sql_pool_discard(&s->base.pool, &c->base);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__mysql_ops = {
	.version = 8,
	.scheme = "mysql",
	.caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL,
	.open = my_open,
	.close = my_close,
	.ping = my_ping,
	.info = my_info,
	.stats = my_stats,
	.migrate = my_migrate,
	.create_run = dura_sql_create_run,
	.get_run = dura_sql_get_run,
	.latest_run = dura_sql_latest_run,
	.list_runs = dura_sql_list_runs,
	.set_run_state = dura_sql_set_run_state,
	.delete_run_data = dura_sql_delete_run_data,
	.commit = dura_my_commit,
	.commit_batch = dura_my_commit_batch,
	.history = dura_sql_history,
	.get_step = dura_sql_get_step,
	.load_latest = dura_sql_load_latest,
	.checkpoint_save = dura_sql_checkpoint_save,
	.checkpoint_load = dura_sql_checkpoint_load,
	.checkpoint_list = dura_sql_checkpoint_list,
	.checkpoint_delete = dura_sql_checkpoint_delete,
	.cache_get = dura_sql_cache_get,
	.cache_put = dura_sql_cache_put,
	.cache_claim = dura_sql_cache_claim,
	.cache_release = dura_sql_cache_release,
	.cache_delete = dura_sql_cache_delete,
	.cache_purge_expired = dura_sql_cache_purge_expired,
	.cache_list = dura_sql_cache_list,
	.cache_stats = dura_sql_cache_stats,
	.claim_runs = dura_sql_claim_runs,
	.extend_lease = dura_sql_extend_lease,
	.release_lease = dura_sql_release_lease,
	.outbox_poll = dura_sql_outbox_poll,
	.outbox_ack = dura_sql_outbox_ack,
	.exec_sql = my_exec_sql,
	.wait_change = NULL,
	.atfork_child = my_atfork_child,
	.extend_leases = dura_sql_extend_leases,
	.claim = dura_sql_claim,
	/* version 4: the worker registry (sql/workers.c) */
	.worker_put = dura_sql_worker_put,
	.worker_delete = dura_sql_worker_delete,
	.worker_list = dura_sql_worker_list,
	.worker_prune = dura_sql_worker_prune,
	/* version 5: durable waiting (sql/server.c) */
	.signal_send = dura_sql_signal_send,
	.signal_next = dura_sql_signal_next,
	.signal_list = dura_sql_signal_list,
	.wake = dura_sql_wake,
	.schedule_put = dura_sql_schedule_put,
	.schedule_get = dura_sql_schedule_get,
	.schedule_delete = dura_sql_schedule_delete,
	.schedule_list = dura_sql_schedule_list,
	.schedule_advance = dura_sql_schedule_advance,
	/* version 6: workflow versions and retention (sql/fleet.c) */
	.workflow_put = dura_sql_workflow_put,
	.workflow_list = dura_sql_workflow_list,
	.run_counts = dura_sql_run_counts,
	.set_run_version = dura_sql_set_run_version,
	.prune_runs = dura_sql_prune_runs,
	.outbox_prune = dura_sql_outbox_prune,
	/* version 7: import (sql/import.c) */
	.import_run = dura_sql_import_run,
	.import_event = dura_sql_import_event,
	.outbox_list = dura_sql_outbox_list,
	/* version 8 */
	.gauges = dura_sql_gauges,
};
