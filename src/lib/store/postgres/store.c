/*
 * store.c - the PostgreSQL store's handle: URL options into libpq's
 * connection keywords, open and close, fork, ping, info, stats, migrate,
 * the claim of runs, raw SQL, and the vtable. Every other operation is
 * sql/server.c's (sql/workers.c's for the worker registry, sql/fleet.c's
 * for workflow versions and retention, sql/import.c's for import), and
 * the commits are commit.c's.
 *
 * URL options: prefix, pool_max, pool_idle, conn_lifetime, conn_idle_time,
 * connect_timeout (default 10s), timeout (the session's statement_timeout),
 * sslmode=disable|allow|prefer|require|verify-ca|verify-full with
 * sslrootcert, sslcert, sslkey, sslcrl, application_name (default dura),
 * service, passfile, target_session_attrs, skip_locked=0. What the URL
 * leaves out libpq takes from its environment as psql does (PGPASSWORD,
 * PGPASSFILE and ~/.pgpass, PGSERVICE, PGSSLMODE, ...).
 */
#include "pg.h"
#include "../sql/fleet.h"
#include "../sql/import.h"
#include "../sql/workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void note(pg_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(pg_store *s)
{
	if (!s)
		return;
	dura_sql_pool_destroy(&s->base.pool);
	dura_pg_listener_close(s);
	for (int i = 0; i < PG_NOTIFY_RING; i++)
		dura_free(s->listen.ring[i]);
	for (int i = 0; i < ST__COUNT; i++)
		dura_free(s->sql[i]);
	dura_free(s->keys);
	dura_free(s->vals);
	dura_free(s->kv_buf);
	dura_free(s->prefix);
	dura_free(s->database);
	dura_free(s->user);
	dura_free(s->where);
	dura_free(s);
}

static void pg_atfork_child(void *impl)
{
	dura_sql_pool_atfork_child(&((pg_store *)impl)->base.pool);
	dura_pg_listener_atfork_child(impl);
}

/* ---- options ---------------------------------------------------------------------- */

/* libpq keywords a URL may pass through as they are */
static const char *const passthrough[] = {"sslrootcert", "sslcert", "sslkey", "sslcrl", "service", "passfile",
                                          "target_session_attrs", "application_name"};

static int is_passthrough(const char *name)
{
	for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++)
		if (strcmp(name, passthrough[i]) == 0)
			return 1;
	return 0;
}

/* A keyword/value list for PQconnectdbParams, its strings in one buffer. */
typedef struct kv {
	const char *k[32];
	size_t v_off[32];
	int n;
	char *buf;
	size_t len, cap;
	int oom;
} kv;

static void kv_add(kv *b, const char *k, const char *v)
{
	if (!v || b->n >= 31)
		return;
	size_t n = strlen(v) + 1;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 512;
		while (cap < b->len + n)
			cap *= 2;
		char *p = dura_realloc(b->buf, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, v, n);
	b->k[b->n] = k;
	b->v_off[b->n] = b->len;
	b->len += n;
	b->n++;
}

static int parse_options(pg_store *s, const dura_url *url)
{
	static const char *const known[] = {"prefix", "pool_max", "pool_idle", "conn_lifetime", "conn_idle_time",
	                                    "connect_timeout", "timeout", "tls", "sslmode", "skip_locked",
	                                    "max_state", "max_value"};
	static const char *const sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
	const char *v;
	kv b;
	memset(&b, 0, sizeof(b));
	s->pool_max = url->pool_max > 0 ? url->pool_max : PG_DEFAULT_POOL;
	s->pool_idle = url->pool_idle >= 0 ? url->pool_idle : PG_DEFAULT_IDLE;
	if (s->pool_idle > s->pool_max)
		s->pool_idle = s->pool_max;
	s->lifetime_ms = url->conn_lifetime_ms > 0 ? url->conn_lifetime_ms : PG_DEFAULT_LIFETIME_MS;
	s->idle_ms = url->conn_idle_ms > 0 ? url->conn_idle_ms : PG_DEFAULT_IDLE_MS;
	s->skip_locked = 1;
	if ((v = dura_url_param(url, "skip_locked")) != NULL) {
		if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0)
			s->skip_locked = 0;
		else if (!(strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0))
			return dura_error_set_native(DURA_EINVAL, PG, 0, NULL, "URL option skip_locked='%.40s' is not 0 or 1", v);
	}
	const char *sslmode = dura_url_param(url, "sslmode");
	if (sslmode) {
		int ok = 0;
		for (size_t i = 0; i < sizeof(sslmodes) / sizeof(sslmodes[0]); i++)
			ok |= strcmp(sslmode, sslmodes[i]) == 0;
		if (!ok)
			return dura_error_set_native(DURA_EINVAL, PG, 0, NULL,
			                             "URL option sslmode='%.40s' is not disable, allow, prefer, require, verify-ca "
			                             "or verify-full",
			                             sslmode);
	} else if (url->tls) {
		sslmode = "require";
	}
	char port[16], timeout[32], options[160];
	snprintf(port, sizeof(port), "%d", url->port);
	int64_t cs = url->connect_timeout_ms > 0 ? (url->connect_timeout_ms + 999) / 1000 : PG_DEFAULT_CONNECT_S;
	snprintf(timeout, sizeof(timeout), "%lld", (long long)(cs < 2 ? 2 : cs)); /* libpq: below 2 s means 2 */
	/* the session the statements expect: UTC times in ISO form, hex bytes */
	int n = snprintf(options, sizeof(options), "-c TimeZone=UTC -c DateStyle=ISO,YMD -c bytea_output=hex");
	if (url->timeout_ms > 0)
		snprintf(options + n, sizeof(options) - (size_t)n, " -c statement_timeout=%lld", (long long)url->timeout_ms);
	const char *host = url->socket && *url->socket ? url->socket : url->host;
	kv_add(&b, "host", host && *host ? host : NULL);
	kv_add(&b, "port", url->port > 0 ? port : NULL);
	kv_add(&b, "dbname", url->database && *url->database ? url->database : NULL);
	kv_add(&b, "user", url->user && *url->user ? url->user : NULL);
	kv_add(&b, "password", url->password && *url->password ? url->password : NULL);
	kv_add(&b, "sslmode", sslmode);
	kv_add(&b, "connect_timeout", timeout);
	kv_add(&b, "options", options);
	kv_add(&b, "client_encoding", "UTF8");
	if (!dura_url_param(url, "application_name"))
		kv_add(&b, "application_name", "dura");
	for (size_t i = 0; i < url->nparams; i++) {
		const char *name = url->param_names[i];
		if (is_passthrough(name)) {
			kv_add(&b, name, url->param_values[i]);
			continue;
		}
		int k = 0;
		for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			k |= strcmp(name, known[j]) == 0;
		if (!k)
			note(s, "URL option %s is not used by the PostgreSQL store", name);
	}
	if (b.oom) {
		dura_free(b.buf);
		return dura_error_oom(PG);
	}
	s->keys = dura_calloc((size_t)b.n + 1, sizeof(char *));
	s->vals = dura_calloc((size_t)b.n + 1, sizeof(char *));
	s->kv_buf = b.buf;
	if (!s->keys || !s->vals)
		return dura_error_oom(PG);
	for (int i = 0; i < b.n; i++) {
		s->keys[i] = b.k[i];
		s->vals[i] = s->kv_buf + b.v_off[i];
	}
	char where[300];
	if (url->socket && *url->socket)
		snprintf(where, sizeof(where), "socket %s", url->socket);
	else
		snprintf(where, sizeof(where), "%s:%d", host && *host ? host : "localhost", url->port > 0 ? url->port : 5432);
	s->where = dura_strdup(where);
	s->database = dura_strdup(url->database && *url->database ? url->database : "(the default)");
	s->user = dura_strdup(url->user && *url->user ? url->user : "(the default)");
	s->prefix = dura_strdup(url->prefix ? url->prefix : "");
	if (!s->where || !s->database || !s->user || !s->prefix)
		return dura_error_oom(PG);
	return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int pg_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	pg_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(PG);
	s->base.name = PG;
	s->base.x = &dura_pg_exec;
	s->base.drv = &dura_pg_driver;
	s->base.pool.ops = &dura_pg_pool_ops;
	s->base.pool.store = s;
	dura_sql_pool_init(&s->base.pool);
	dura_pg_listener_init(s);
	int rc = parse_options(s, url);
	if (rc == 0)
		rc = dura_pg_expand_all(s, NULL);
	if (rc) {
		store_free(s);
		return rc;
	}
	s->base.pool.max = s->pool_max;
	s->base.pool.max_idle = s->pool_idle;
	s->base.pool.lifetime_ms = s->lifetime_ms;
	s->base.pool.idle_ms = s->idle_ms;
	s->caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL | DURA_CAP_RETURNING | DURA_CAP_JSON |
	          DURA_CAP_NOTIFY | (s->skip_locked ? DURA_CAP_SKIP_LOCKED : 0);
	if (!s->skip_locked)
		note(s, "%s", "skip_locked=0: claims use plain FOR UPDATE");
	pg_conn *c;
	if ((rc = dura_pg_conn_open(s, &c)) != 0) {
		store_free(s);
		return rc;
	}
	if (PQsslInUse(c->db)) {
		const char *cipher = PQsslAttribute(c->db, "cipher");
		note(s, "TLS %s", cipher ? cipher : "(cipher unknown)");
	}
	if ((rc = dura_pg_check_and_migrate(s, c, opts)) != 0) {
		dura_pg_conn_close(c);
		store_free(s);
		return rc;
	}
	dura_sql_pool_adopt(&s->base.pool, &c->base);
	*impl = s;
	return 0;
}

static void pg_close(void *impl)
{
	store_free(impl);
}

static int ping_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	(void)arg;
	(void)again;
	return dura_pg_exec_simple((pg_store *)s, (pg_conn *)c, "SELECT 1", "ping");
}

static int pg_ping(void *impl)
{
	return dura_sql_run_op(impl, ping_body, NULL, DURA_SQL_IDEMPOTENT);
}

static int info_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	(void)again;
	return dura_pg_read_schema_version((pg_store *)s, (pg_conn *)c, arg);
}

static int pg_info(void *impl, dura_store_info *out)
{
	pg_store *s = impl;
	int v = 0;
	int rc = dura_sql_run_op(impl, info_body, &v, DURA_SQL_IDEMPOTENT);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = PG_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int pg_stats(void *impl, dura_store_stats *out)
{
	dura_sql_pool_stats(&((pg_store *)impl)->base.pool, out);
	return 0;
}

struct migrate_arg {
	int *from, *to;
};

static int migrate_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct migrate_arg *a = arg;
	(void)again;
	return dura_pg_migrate((pg_store *)s, (pg_conn *)c, a->from, a->to);
}

static int pg_migrate(void *impl, int *from, int *to)
{
	struct migrate_arg a = {from, to};
	return dura_sql_run_op(impl, migrate_body, &a, DURA_SQL_IDEMPOTENT);
}

/* ---- raw SQL ------------------------------------------------------------------------- */

/* Several statements allowed; every result set goes to the callback. The
 * connection is closed afterwards, not pooled: the SQL may have changed
 * its session. */
static int pg_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	pg_store *s = impl;
	dura_sql_conn *bc;
	int rc = dura_sql_pool_get(&s->base.pool, &bc);
	if (rc)
		return rc;
	pg_conn *c = (pg_conn *)bc;
	if (!PQsendQuery(c->db, sql)) {
		rc = dura_pg_fail(s, c, NULL, "SQL failed");
	} else {
		int stopped = 0;
		PGresult *r;
		while ((r = PQgetResult(c->db)) != NULL) {
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_TUPLES_OK && !stopped && rc == 0) {
				int nf = PQnfields(r), nt = PQntuples(r);
				char **names = dura_calloc((size_t)nf + 1, sizeof(char *));
				char **vals = dura_calloc((size_t)nf + 1, sizeof(char *));
				if (!names || !vals) {
					rc = dura_error_oom(PG);
				} else {
					for (int i = 0; i < nf; i++)
						names[i] = PQfname(r, i);
					for (int t = 0; t < nt && !stopped; t++) {
						for (int i = 0; i < nf; i++)
							vals[i] = PQgetisnull(r, t, i) ? NULL : PQgetvalue(r, t, i);
						if (cb && cb(nf, vals, names, payload) != 0)
							stopped = 1;
					}
				}
				dura_free(names);
				dura_free(vals);
			} else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY && rc == 0) {
				rc = dura_pg_fail(s, c, r, "SQL failed");
			}
			PQclear(r);
		}
	}
	dura_sql_pool_discard(&s->base.pool, bc);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__postgres_ops = {
	.version = 8,
	.scheme = "postgres",
	.caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL | DURA_CAP_RETURNING | DURA_CAP_JSON |
	        DURA_CAP_NOTIFY,
	.open = pg_open,
	.close = pg_close,
	.ping = pg_ping,
	.info = pg_info,
	.stats = pg_stats,
	.migrate = pg_migrate,
	.create_run = dura_sql_create_run,
	.get_run = dura_sql_get_run,
	.latest_run = dura_sql_latest_run,
	.list_runs = dura_sql_list_runs,
	.set_run_state = dura_sql_set_run_state,
	.delete_run_data = dura_sql_delete_run_data,
	.commit = dura_pg_commit,
	.commit_batch = dura_pg_commit_batch,
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
	.exec_sql = pg_exec_sql,
	.wait_change = dura_pg_wait_change,
	.atfork_child = pg_atfork_child,
	.extend_leases = dura_sql_extend_leases,
	.wait_ready = dura_pg_wait_ready,
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
