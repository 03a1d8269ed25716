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

static const char *const st_sql[ST__COUNT] = {STATEMENTS(X_SQL)};

/* ---- time ------------------------------------------------------------------------ */

/* now + ms, no later than DATETIME's end */
static int64_t add_ms(int64_t now, int64_t ms)
{
	int64_t t = dura__add_ms(now, ms);
	return t > MY_MAX_TIME_MS ? MY_MAX_TIME_MS : t;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void note(my_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

static void store_free(my_store *s)
{
	if (!s)
		return;
	dura_sql_pool_destroy(&s->pool);
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
	dura_sql_pool_atfork_child(&s->pool);
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
	                                    "sslmode",     "skip_locked",     "readTimeout", "writeTimeout"};
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
	s->pool.ops = &dura_my_pool_ops;
	s->pool.store = s;
	dura_sql_pool_init(&s->pool);
	if ((rc = parse_options(s, url)) != 0) {
		store_free(s);
		return rc;
	}
	s->pool.max = s->pool_max;
	s->pool.max_idle = s->pool_idle;
	s->pool.lifetime_ms = s->lifetime_ms;
	s->pool.idle_ms = s->idle_ms;
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
	dura_sql_pool_adopt(&s->pool, &c->base);
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
	dura_sql_pool_stats(&s->pool, out);
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

/* ---- runs ------------------------------------------------------------------------- */

struct create_arg {
	const dura_run_create *req;
	const char *run_id, *fid, *state, *status, *meta;
	int run_state;
	int64_t now, next;
	dura_record **out;
};

static int create_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct create_arg *a = arg;
	my_params p;
	p.n = 0;
	dura_my_pp_str(&p, a->run_id);
	dura_my_pp_str(&p, a->req->workflow_name);
	dura_my_pp_str(&p, a->fid);
	dura_my_pp_int(&p, a->run_state);
	dura_my_pp_str(&p, a->status);
	dura_my_pp_str(&p, a->state);
	dura_my_pp_str(&p, a->meta);
	dura_my_pp_time(&p, a->next);
	dura_my_pp_time(&p, a->now);
	dura_my_pp_time(&p, a->now);
	my_stmt *m;
	int rc = dura_my_st_run(s, c, ST_RUN_INSERT, &p, &m);
	if (rc == 0) {
		dura_my_st_done(m);
		if (a->out)
			return dura_sql_created_record(a->out, MY, a->run_id, a->req, a->fid, a->state, a->status, a->run_state,
			                               a->now, a->next < MY_MAX_TIME_MS ? a->next : MY_MAX_TIME_MS);
		return 0;
	}
	if (c->err != ER_DUP_ENTRY)
		return rc;
	const dura_error *e = dura_error_last();
	int on_primary = e && e->message && strstr(e->message, "PRIMARY") != NULL;
	dura_record *existing = NULL;
	if (on_primary) {
		p.n = 0;
		dura_my_pp_str(&p, a->run_id);
		rc = dura_my_fetch(s, c, ST_RUN_GET, &p, DURA_SQL_RECORD, (void **)&existing);
		if (rc == DURA_ENOTFOUND)
			return DURA_SQL_AGAIN; /* deleted since: try again */
		if (rc)
			return rc;
		/* after a lost connection, our own insert may be what is there */
		if (again && existing->created_at == a->now && strcmp(existing->workflow_name, a->req->workflow_name) == 0 &&
		    strcmp(existing->foreign_id, a->fid) == 0) {
			if (a->out)
				*a->out = existing;
			else
				dura_record_free(existing);
			return 0;
		}
		rc = dura_error_set_native(DURA_EEXISTS, MY, ER_DUP_ENTRY, "23000", "run %s already exists", a->run_id);
	} else {
		p.n = 0;
		dura_my_pp_str(&p, a->req->workflow_name);
		dura_my_pp_str(&p, a->fid);
		rc = dura_my_fetch(s, c, ST_RUN_ACTIVE, &p, DURA_SQL_RECORD, (void **)&existing);
		if (rc == DURA_ENOTFOUND)
			return DURA_SQL_AGAIN; /* the active run ended meanwhile */
		if (rc)
			return rc;
		rc = dura_error_set_native(DURA_EEXISTS, MY, ER_DUP_ENTRY, "23000",
		                           "workflow %s already has an active run %s with foreign id %s", a->req->workflow_name,
		                           existing->run_id, a->fid);
	}
	if (a->out)
		*a->out = existing;
	else
		dura_record_free(existing);
	return rc;
}

static int my_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	my_store *s = impl;
	struct create_arg a;
	a.req = req;
	a.run_id = run_id;
	a.fid = req->foreign_id ? req->foreign_id : "";
	a.state = req->state ? req->state : "{}";
	a.status = req->status ? req->status : "";
	a.meta = req->meta && *req->meta ? req->meta : NULL;
	a.run_state = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	a.now = dura_now_ms();
	a.next = req->next_run_at ? req->next_run_at : a.now;
	a.out = out;
	int rc = dura_my_check_size(s, strlen(a.state) + (a.meta ? strlen(a.meta) : 0), "the initial state");
	if (rc)
		return rc;
	return dura_my_run_op(s, create_body, &a, DURA_SQL_IDEMPOTENT);
}

struct get_arg {
	int id;
	const char *a1, *a2;
	dura_record **out;
};

static int get_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct get_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->a1);
	if (a->a2)
		dura_my_pp_str(&p, a->a2);
	return dura_my_fetch(s, c, a->id, &p, DURA_SQL_RECORD, (void **)a->out);
}

static int my_get_run(void *impl, const char *run_id, dura_record **out)
{
	struct get_arg a = {ST_RUN_GET, run_id, NULL, out};
	int rc = dura_my_run_op(impl, get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_run_not_found(MY, run_id);
	return rc;
}

static int my_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	struct get_arg a = {ST_RUN_LATEST, wf, fid, out};
	int rc = dura_my_run_op(impl, get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_run_with_fid(MY, wf, fid);
	return rc;
}

struct list_arg {
	const dura_run_filter *f;
	dura_record_list *out;
};

static int list_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct list_arg *a = arg;
	const dura_run_filter *f = a->f;
	const char *cursor = f->cursor && *f->cursor ? f->cursor : NULL;
	my_params p;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_my_pp_str(&p, f->workflow_name);
	dura_my_pp_str(&p, f->workflow_name);
	dura_my_pp_int(&p, f->run_state);
	dura_my_pp_int(&p, f->run_state);
	dura_my_pp_str(&p, f->status);
	dura_my_pp_str(&p, f->status);
	dura_my_pp_str(&p, f->foreign_id);
	dura_my_pp_str(&p, f->foreign_id);
	if (f->created_after) {
		dura_my_pp_time(&p, f->created_after);
		dura_my_pp_time(&p, f->created_after);
	} else {
		dura_my_pp_null(&p);
		dura_my_pp_null(&p);
	}
	if (f->created_before) {
		dura_my_pp_time(&p, f->created_before);
		dura_my_pp_time(&p, f->created_before);
	} else {
		dura_my_pp_null(&p);
		dura_my_pp_null(&p);
	}
	dura_my_pp_str(&p, cursor);
	dura_my_pp_str(&p, cursor);
	dura_my_pp_int(&p, (int64_t)f->limit);
	int rc = dura_my_collect(s, c, ST_RUN_LIST, &p, DURA_SQL_RECORD, (void **)&a->out->items, &a->out->count);
	if (rc)
		return rc;
	if (a->out->count == f->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].run_id);
		if (!a->out->next_cursor) {
			dura_record_list_free(a->out);
			memset(a->out, 0, sizeof(*a->out));
			return dura_error_oom(MY);
		}
	}
	return 0;
}

static int my_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	struct list_arg a = {f, out};
	return dura_my_run_op(impl, list_body, &a, DURA_SQL_IDEMPOTENT);
}

/* Lock a run's row; its run_state and version, or ENOTFOUND with a message. */
static int run_lock(my_store *s, my_conn *c, const char *run_id, int *state, int64_t *version)
{
	my_stmt *m;
	my_params p;
	p.n = 0;
	dura_my_pp_str(&p, run_id);
	int rc = dura_my_st_run(s, c, ST_RUN_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = dura_my_st_fetch(s, c, m);
	if (rc == 1) {
		*state = (int)dura_my_c_int(m, 0);
		*version = dura_my_c_int(m, 1);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_sql_err_run_not_found(MY, run_id);
	}
	dura_my_st_done(m);
	return rc;
}

/* Inside the open transaction: the run's state becomes {}, its run_state
 * data_deleted, its steps and checkpoints go. */
static int erase_run(my_store *s, my_conn *c, const char *run_id)
{
	my_params p;
	p.n = 0;
	dura_my_pp_time(&p, dura_now_ms());
	dura_my_pp_str(&p, run_id);
	int rc = dura_my_st_write(s, c, ST_RUN_ERASE, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	dura_my_pp_str(&p, run_id);
	if ((rc = dura_my_st_write(s, c, ST_STEPS_ERASE, &p, NULL)) != 0)
		return rc;
	return dura_my_st_write(s, c, ST_CPS_ERASE, &p, NULL);
}

struct state_arg {
	const char *run_id;
	int to;
	int64_t new_version;
};

static int set_state_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct state_arg *a = arg;
	int cur;
	int64_t version;
	int rc = run_lock(s, c, a->run_id, &cur, &version);
	if (rc)
		return rc;
	if (again && cur == a->to) { /* our earlier attempt went in */
		a->new_version = version;
		return 0;
	}
	if (!dura_run_state_transition_ok(cur, a->to))
		return dura_sql_err_move(MY, a->run_id, cur, a->to);
	if (a->to == DURA_RUN_DATA_DELETED) {
		if ((rc = erase_run(s, c, a->run_id)) != 0)
			return rc;
		a->new_version = version + 1;
		return 0;
	}
	my_params p;
	int64_t now = dura_now_ms();
	uint64_t n = 0;
	p.n = 0;
	if (a->to == DURA_RUN_RUNNING) {
		dura_my_pp_time(&p, now);
		dura_my_pp_time(&p, now);
	} else {
		dura_my_pp_int(&p, a->to);
		dura_my_pp_time(&p, now);
	}
	dura_my_pp_str(&p, a->run_id);
	dura_my_pp_int(&p, cur);
	rc = dura_my_st_write(s, c, a->to == DURA_RUN_RUNNING ? ST_RUN_SET_RUNNING : ST_RUN_SET_STATE, &p, &n);
	if (rc) {
		if (c->err == ER_DUP_ENTRY)
			return dura_error_set_native(DURA_ECONFLICT, MY, ER_DUP_ENTRY, "23000",
			                             "cannot move run %s to %s: its workflow already has an active run with the same "
			                             "foreign id",
			                             a->run_id, dura_run_state_name(a->to));
		return rc;
	}
	if (n == 0)
		return dura_sql_err_moved_meanwhile(MY, a->run_id, a->to);
	a->new_version = version + 1;
	return 0;
}

static int my_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	struct state_arg a = {run_id, to, 0};
	int rc = dura_my_run_op(impl, set_state_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	if (rc == 0 && new_version)
		*new_version = a.new_version;
	return rc;
}

static int delete_data_body(my_store *s, my_conn *c, void *arg, int again)
{
	const char *run_id = arg;
	int cur;
	int64_t version;
	int rc = run_lock(s, c, run_id, &cur, &version);
	if (rc)
		return rc;
	if (again && cur == DURA_RUN_DATA_DELETED)
		return 0;
	if (cur != DURA_RUN_COMPLETED && cur != DURA_RUN_CANCELLED && cur != DURA_RUN_FAILED)
		return dura_sql_err_delete_live(MY, run_id, cur);
	return erase_run(s, c, run_id);
}

static int my_delete_run_data(void *impl, const char *run_id)
{
	return dura_my_run_op(impl, delete_data_body, (void *)run_id, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

/* ---- steps ------------------------------------------------------------------------ */

struct steps_arg {
	int id;
	const char *run_id;
	int64_t from, step;
	size_t limit;
	dura_step_list *list;
	dura_step **one;
};

static int steps_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct steps_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->run_id);
	if (a->id == ST_HISTORY) {
		dura_my_pp_int(&p, a->from);
		dura_my_pp_int(&p, a->limit ? (int64_t)(a->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)a->limit) : INT64_MAX);
	} else if (a->id == ST_STEP_GET) {
		dura_my_pp_int(&p, a->step);
	}
	if (a->list) {
		dura_step_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_my_collect(s, c, a->id, &p, DURA_SQL_STEP, (void **)&a->list->items, &a->list->count);
	}
	return dura_my_fetch(s, c, a->id, &p, DURA_SQL_STEP, (void **)a->one);
}

static int my_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	struct steps_arg a = {ST_HISTORY, run_id, from, 0, limit, out, NULL};
	return dura_my_run_op(impl, steps_body, &a, DURA_SQL_IDEMPOTENT);
}

static int my_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	struct steps_arg a = {ST_STEP_GET, run_id, 0, step, 0, NULL, out};
	int rc = dura_my_run_op(impl, steps_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_step(MY, run_id, step);
	return rc;
}

static int my_load_latest(void *impl, const char *run_id, dura_step **out)
{
	struct steps_arg a = {ST_STEP_LATEST, run_id, 0, 0, 0, NULL, out};
	int rc = dura_my_run_op(impl, steps_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_no_committed_step(MY, run_id);
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* A write by one key, in autocommit. After an unknown outcome (again), a
 * miss means our first attempt did it. */
struct write_arg {
	int id;
	my_params *p;
	uint64_t affected;
	int again;
};

static int write_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct write_arg *a = arg;
	a->again |= again;
	return dura_my_st_write(s, c, a->id, a->p, &a->affected);
}

static int write_by(my_store *s, int id, my_params *p, uint64_t *affected, int *again)
{
	struct write_arg a = {id, p, 0, 0};
	int rc = dura_my_run_op(s, write_body, &a, DURA_SQL_IDEMPOTENT);
	if (affected)
		*affected = a.affected;
	if (again)
		*again = a.again;
	return rc;
}

/* A DELETE by one key: ENOTFOUND (with the message fmt, arg) when no row went. */
static int delete_by(my_store *s, int id, const char *key, const char *fmt)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_my_pp_str(&p, key);
	int rc = write_by(s, id, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_error_set_native(DURA_ENOTFOUND, MY, 0, NULL, fmt, key);
	return rc;
}

static int my_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	my_store *s = impl;
	int rc = dura_my_check_size(s, strlen(state), "the checkpoint's state");
	if (rc)
		return rc;
	my_params p;
	int64_t now = dura_now_ms();
	p.n = 0;
	dura_my_pp_str(&p, cp_id);
	dura_my_pp_str(&p, run_id);
	dura_my_pp_str(&p, state);
	dura_my_pp_int(&p, step);
	dura_my_pp_time(&p, now);
	dura_my_pp_time(&p, now);
	return write_by(s, ST_CP_SAVE, &p, NULL, NULL);
}

struct cp_arg {
	const char *key;
	dura_checkpoint **one;
	dura_checkpoint_list *list;
};

static int cp_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cp_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->key);
	if (a->list) {
		dura_my_pp_str(&p, a->key);
		dura_checkpoint_list_free(a->list);
		memset(a->list, 0, sizeof(*a->list));
		return dura_my_collect(s, c, ST_CP_LIST, &p, DURA_SQL_CHECKPOINT, (void **)&a->list->items, &a->list->count);
	}
	return dura_my_fetch(s, c, ST_CP_LOAD, &p, DURA_SQL_CHECKPOINT, (void **)a->one);
}

static int my_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	struct cp_arg a = {cp_id, out, NULL};
	int rc = dura_my_run_op(impl, cp_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_checkpoint_not_found(MY, cp_id);
	return rc;
}

static int my_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	struct cp_arg a = {run_id, NULL, out};
	return dura_my_run_op(impl, cp_body, &a, DURA_SQL_IDEMPOTENT);
}

static int my_checkpoint_delete(void *impl, const char *cp_id)
{
	return delete_by(impl, ST_CP_DELETE, cp_id, "checkpoint %s not found");
}

/* ---- cache ------------------------------------------------------------------------ */

struct cache_get_arg {
	const char *key;
	dura_cache_entry **out;
};

static int cache_get_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_get_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->key);
	dura_my_pp_time(&p, dura_now_ms());
	return dura_my_fetch(s, c, ST_CACHE_GET, &p, DURA_SQL_CACHE_VALUE, (void **)a->out);
}

static int my_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	struct cache_get_arg a = {key, out};
	int rc = dura_my_run_op(impl, cache_get_body, &a, DURA_SQL_IDEMPOTENT);
	if (rc == DURA_ENOTFOUND)
		return dura_sql_err_cache_not_found(MY, key);
	return rc;
}

struct cache_put_arg {
	const char *key;
	const void *value;
	size_t len;
	const char *error, *metadata;
	int64_t now, ttl_ms;
};

/* The value first, then the claim goes: a claimer that sees no claim sees
 * the value (cache_claim locks the claim row before it looks). */
static int cache_put_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_put_arg *a = arg;
	my_params p;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->key);
	dura_my_pp_blob(&p, a->value, a->len);
	dura_my_pp_str(&p, a->error);
	dura_my_pp_time(&p, a->now);
	if (a->ttl_ms)
		dura_my_pp_time(&p, add_ms(a->now, a->ttl_ms));
	else
		dura_my_pp_null(&p);
	dura_my_pp_str(&p, a->metadata);
	int rc = dura_my_st_write(s, c, ST_CACHE_PUT, &p, NULL);
	if (rc)
		return rc;
	p.n = 0;
	dura_my_pp_str(&p, a->key);
	return dura_my_st_write(s, c, ST_CLAIM_DROP, &p, NULL);
}

static int my_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	my_store *s = impl;
	int rc = dura_my_check_size(s, len + (error ? strlen(error) : 0) + (metadata ? strlen(metadata) : 0),
	                            "the cache value");
	if (rc)
		return rc;
	struct cache_put_arg a = {key, value, len, error, metadata, dura_now_ms(), ttl_ms};
	return dura_my_run_op(s, cache_put_body, &a, DURA_SQL_IDEMPOTENT);
}

struct claim_key_arg {
	const char *key, *owner;
	int64_t lease_ms;
};

/*
 * Single flight: lock the claim row first (a claimer that is storing its
 * value holds it until its put commits), then look for a live value, then
 * take or refresh the claim. Two claimers of a key nobody holds both
 * insert; the unique key lets one in and the other runs again and sees it.
 * A new claim row looks for the value once more (see below).
 */
/* 0 if key has no live value, DURA_EEXISTS if it has, or the error. */
static int no_live_value(my_store *s, my_conn *c, const char *key, int64_t now)
{
	my_params p;
	p.n = 0;
	dura_my_pp_str(&p, key);
	dura_my_pp_time(&p, now);
	int rc = dura_my_st_exists(s, c, ST_CACHE_LIVE, &p);
	if (rc < 0)
		return rc;
	return rc == 1 ? dura_sql_err_cache_has_value(MY, key) : 0;
}

static int cache_claim_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct claim_key_arg *a = arg;
	int64_t now = dura_now_ms(), until = 0;
	char holder[DURA_MAX_ID_LEN + 1] = "";
	int have = 0;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	dura_my_pp_str(&p, a->key);
	int rc = dura_my_st_run(s, c, ST_CLAIM_LOCK, &p, &m);
	if (rc)
		return rc;
	rc = dura_my_st_fetch(s, c, m);
	if (rc == 1) {
		have = 1;
		snprintf(holder, sizeof(holder), "%s", dura_my_c_str(m, 0) ? dura_my_c_str(m, 0) : "");
		until = dura_my_c_time(m, 1);
		rc = 0;
	}
	dura_my_st_done(m);
	if (rc)
		return rc;
	if ((rc = no_live_value(s, c, a->key, now)) != 0)
		return rc;
	if (have && strcmp(holder, a->owner) != 0 && until > now) {
		char t[24];
		dura_time_format(t, until);
		return dura_sql_err_cache_claimed(MY, a->key, holder, t);
	}
	p.n = 0;
	if (have) {
		dura_my_pp_str(&p, a->owner);
		dura_my_pp_time(&p, add_ms(now, a->lease_ms));
		dura_my_pp_str(&p, a->key);
		return dura_my_st_write(s, c, ST_CLAIM_UPDATE, &p, NULL);
	}
	dura_my_pp_str(&p, a->key);
	dura_my_pp_str(&p, a->owner);
	dura_my_pp_time(&p, add_ms(now, a->lease_ms));
	rc = dura_my_st_write(s, c, ST_CLAIM_INSERT, &p, NULL);
	if (rc && c->err == ER_DUP_ENTRY)
		return DURA_SQL_AGAIN;
	if (rc)
		return rc;
	/* With no claim row there was nothing to lock: between our look and
	 * our insert another claimer may have claimed, stored its value and
	 * let go. Now that the new row is ours, look again; a value found
	 * rolls our claim back. */
	return no_live_value(s, c, a->key, now);
}

static int my_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	struct claim_key_arg a = {key, owner, lease_ms};
	/* running it again is safe: the same owner may claim again */
	return dura_my_run_op(impl, cache_claim_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
}

static int my_cache_release(void *impl, const char *key, const char *owner)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_my_pp_str(&p, key);
	dura_my_pp_str(&p, owner);
	int rc = write_by(impl, ST_CLAIM_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0 && !again)
		return dura_sql_err_cache_not_claimed(MY, key, owner);
	return rc;
}

static int my_cache_delete(void *impl, const char *key)
{
	return delete_by(impl, ST_CACHE_DELETE, key, "cache key %s not found");
}

static int purge_body(my_store *s, my_conn *c, void *arg, int again)
{
	int64_t *count = arg;
	my_params p;
	uint64_t n = 0;
	int64_t now = dura_now_ms();
	(void)again;
	p.n = 0;
	dura_my_pp_time(&p, now);
	int rc = dura_my_st_write(s, c, ST_CACHE_PURGE, &p, &n);
	if (rc)
		return rc;
	*count = (int64_t)n;
	/* expired claims are litter too; they are not counted */
	return dura_my_st_write(s, c, ST_CLAIM_PURGE, &p, NULL);
}

static int my_cache_purge_expired(void *impl, int64_t *count)
{
	*count = 0;
	return dura_my_run_op(impl, purge_body, count, DURA_SQL_IDEMPOTENT);
}

struct cache_list_arg {
	const char *cursor;
	size_t limit;
	dura_cache_list *out;
};

static int cache_list_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct cache_list_arg *a = arg;
	my_params p;
	(void)again;
	dura_cache_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_my_pp_str(&p, a->cursor);
	dura_my_pp_str(&p, a->cursor);
	dura_my_pp_int(&p, (int64_t)a->limit);
	int rc = dura_my_collect(s, c, ST_CACHE_LIST, &p, DURA_SQL_CACHE_LISTED, (void **)&a->out->items, &a->out->count);
	if (rc == 0 && a->out->count == a->limit && a->out->count > 0) {
		a->out->next_cursor = dura_strdup(a->out->items[a->out->count - 1].key);
		if (!a->out->next_cursor)
			rc = dura_error_oom(MY);
	}
	if (rc) {
		dura_cache_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

static int my_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	struct cache_list_arg a = {cursor, limit, out};
	return dura_my_run_op(impl, cache_list_body, &a, DURA_SQL_IDEMPOTENT);
}

static int cache_stats_body(my_store *s, my_conn *c, void *arg, int again)
{
	dura_cache_stats *out = arg;
	my_params p;
	my_stmt *m;
	(void)again;
	p.n = 0;
	dura_my_pp_time(&p, dura_now_ms());
	int rc = dura_my_st_run(s, c, ST_CACHE_STATS, &p, &m);
	if (rc)
		return rc;
	rc = dura_my_st_fetch(s, c, m);
	if (rc == 1) {
		out->entries = dura_my_c_int(m, 0);
		out->expired = dura_my_c_int(m, 1);
		out->bytes = dura_my_c_int(m, 2);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_error_set_native(DURA_ERROR, MY, 0, NULL, "reading cache statistics: no row");
	}
	dura_my_st_done(m);
	return rc;
}

static int my_cache_stats(void *impl, dura_cache_stats *out)
{
	return dura_my_run_op(impl, cache_stats_body, out, DURA_SQL_IDEMPOTENT);
}

/* ---- leases ------------------------------------------------------------------------ */

struct claim_arg {
	const char *owner;
	const char *const *wfs;
	size_t nwfs, max;
	int64_t lease_ms;
	const char *json;
	dura_record_list *out;
};

/*
 * Claim: the due runs, oldest first, locked as they are read (SKIP LOCKED
 * passes over the ones another claimer holds; without it a claimer waits
 * for them, then sees them leased and passes), then leased in one UPDATE
 * per MY_APPLY_SLOTS runs. The rows are locked, so the records read are
 * the records as the UPDATE leaves them but for owner, expiry and version.
 */
static int claim_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct claim_arg *a = arg;
	int64_t now = dura_now_ms(), until = add_ms(now, a->lease_ms);
	my_params p;
	int id;
	(void)again;
	dura_record_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_my_pp_time(&p, now);
	dura_my_pp_time(&p, now);
	if (a->nwfs == 0) {
		id = ST_CLAIM_ANY;
	} else if (a->nwfs <= MY_WF_SLOTS) {
		id = ST_CLAIM_WF;
		for (size_t i = 0; i < MY_WF_SLOTS; i++)
			dura_my_pp_str(&p, a->wfs[i < a->nwfs ? i : 0]);
	} else {
		id = ST_CLAIM_JSON;
		dura_my_pp_str(&p, a->json);
	}
	dura_my_pp_int(&p, (int64_t)a->max);
	int rc = dura_my_collect(s, c, id, &p, DURA_SQL_RECORD, (void **)&a->out->items, &a->out->count);
	if (rc)
		return rc;
	for (size_t at = 0; at < a->out->count; at += MY_APPLY_SLOTS) {
		size_t k = a->out->count - at < MY_APPLY_SLOTS ? a->out->count - at : MY_APPLY_SLOTS;
		uint64_t n = 0;
		p.n = 0;
		dura_my_pp_str(&p, a->owner);
		dura_my_pp_time(&p, until);
		for (size_t i = 0; i < MY_APPLY_SLOTS; i++)
			dura_my_pp_str(&p, i < k ? a->out->items[at + i].run_id : "");
		if ((rc = dura_my_st_write(s, c, ST_CLAIM_APPLY, &p, &n)) != 0)
			break;
		if (n != k) {
			rc = dura_error_set_native(DURA_ERROR, MY, 0, NULL, "claiming runs: %llu of %zu locked runs were leased",
			                           (unsigned long long)n, k);
			break;
		}
	}
	for (size_t i = 0; rc == 0 && i < a->out->count; i++) {
		dura_record *r = &a->out->items[i];
		char *owner = dura_strdup(a->owner);
		if (!owner) {
			rc = dura_error_oom(MY);
			break;
		}
		dura_free(r->lease_owner);
		r->lease_owner = owner;
		r->lease_expires_at = until;
		r->version++;
	}
	if (rc) {
		dura_record_list_free(a->out);
		memset(a->out, 0, sizeof(*a->out));
	}
	return rc;
}

static int my_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                         int64_t lease_ms, dura_record_list *out)
{
	struct claim_arg a = {owner, workflows, nworkflows, max, lease_ms, NULL, out};
	char *json = NULL;
	if (nworkflows > MY_WF_SLOTS && !(json = dura__json_string_array(workflows, nworkflows)))
		return dura_error_oom(MY);
	a.json = json;
	/* not DURA_SQL_IDEMPOTENT: a claim whose COMMIT was lost is not rerun (it
	 * would claim more); its runs come back when the lease expires */
	int rc = dura_my_run_op(impl, claim_body, &a, DURA_SQL_TX);
	dura_free(json);
	return rc;
}

/* A lease update that matched nothing: why not. */
static int lease_miss(my_store *s, const char *run_id, const char *owner, int again)
{
	my_conn *c;
	my_params p;
	my_stmt *m;
	int rc = dura_my_pool_get(s, &c);
	if (rc)
		return rc;
	p.n = 0;
	dura_my_pp_str(&p, run_id);
	if ((rc = dura_my_st_run(s, c, ST_LEASE_OWNER, &p, &m)) == 0) {
		rc = dura_my_st_fetch(s, c, m);
		if (rc == 1) {
			const char *holder = dura_my_c_str(m, 0);
			if (again && (!holder || !*holder))
				rc = 0; /* released by our first attempt */
			else if (holder && *holder)
				rc = dura_sql_err_leased_by(MY, run_id, holder, owner);
			else
				rc = dura_sql_err_not_leased(MY, run_id, owner);
		} else if (rc == 0) {
			rc = dura_sql_err_run_not_found(MY, run_id);
		}
		dura_my_st_done(m);
	}
	dura_my_pool_put(s, c);
	return rc;
}

static int my_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	my_params p;
	uint64_t n = 0;
	p.n = 0;
	dura_my_pp_time(&p, add_ms(dura_now_ms(), lease_ms));
	dura_my_pp_str(&p, run_id);
	dura_my_pp_str(&p, owner);
	int rc = write_by(impl, ST_LEASE_EXTEND, &p, &n, NULL);
	if (rc == 0 && n == 0)
		return lease_miss(impl, run_id, owner, 0);
	return rc;
}

static int my_release_lease(void *impl, const char *run_id, const char *owner)
{
	my_params p;
	uint64_t n = 0;
	int again = 0;
	p.n = 0;
	dura_my_pp_str(&p, run_id);
	dura_my_pp_str(&p, owner);
	int rc = write_by(impl, ST_LEASE_RELEASE, &p, &n, &again);
	if (rc == 0 && n == 0)
		return lease_miss(impl, run_id, owner, again);
	return rc;
}

/* ---- outbox ------------------------------------------------------------------------ */

struct poll_arg {
	size_t limit;
	dura_event_list *out;
};

static int poll_body(my_store *s, my_conn *c, void *arg, int again)
{
	struct poll_arg *a = arg;
	my_params p;
	(void)again;
	dura_event_list_free(a->out);
	memset(a->out, 0, sizeof(*a->out));
	p.n = 0;
	dura_my_pp_int(&p, (int64_t)a->limit);
	return dura_my_collect(s, c, ST_OUTBOX_POLL, &p, DURA_SQL_EVENT, (void **)&a->out->items, &a->out->count);
}

static int my_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	struct poll_arg a = {limit, out};
	return dura_my_run_op(impl, poll_body, &a, DURA_SQL_IDEMPOTENT);
}

static int my_outbox_ack(void *impl, const char *event_id)
{
	return delete_by(impl, ST_OUTBOX_ACK, event_id, "outbox event %s not found (already acknowledged?)");
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
	dura_sql_pool_discard(&s->pool, &c->base);
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------ */

const dura_store_ops dura__mysql_ops = {
	.version = DURA_STORE_ABI_VERSION,
	.scheme = "mysql",
	.caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_DURABLE | DURA_CAP_SQL,
	.open = my_open,
	.close = my_close,
	.ping = my_ping,
	.info = my_info,
	.stats = my_stats,
	.migrate = my_migrate,
	.create_run = my_create_run,
	.get_run = my_get_run,
	.latest_run = my_latest_run,
	.list_runs = my_list_runs,
	.set_run_state = my_set_run_state,
	.delete_run_data = my_delete_run_data,
	.commit = dura_my_commit,
	.commit_batch = dura_my_commit_batch,
	.history = my_history,
	.get_step = my_get_step,
	.load_latest = my_load_latest,
	.checkpoint_save = my_checkpoint_save,
	.checkpoint_load = my_checkpoint_load,
	.checkpoint_list = my_checkpoint_list,
	.checkpoint_delete = my_checkpoint_delete,
	.cache_get = my_cache_get,
	.cache_put = my_cache_put,
	.cache_claim = my_cache_claim,
	.cache_release = my_cache_release,
	.cache_delete = my_cache_delete,
	.cache_purge_expired = my_cache_purge_expired,
	.cache_list = my_cache_list,
	.cache_stats = my_cache_stats,
	.claim_runs = my_claim_runs,
	.extend_lease = my_extend_lease,
	.release_lease = my_release_lease,
	.outbox_poll = my_outbox_poll,
	.outbox_ack = my_outbox_ack,
	.exec_sql = my_exec_sql,
	.wait_change = NULL,
	.atfork_child = my_atfork_child,
};
