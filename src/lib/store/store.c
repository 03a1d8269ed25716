/*
 * store.c - the store handle: the scheme registry, the version check, and
 * dispatch. Every public dura_store_* function validates its arguments
 * here, once, so that each store only stores and every store rejects bad
 * input the same way.
 */
#include "handle.h"
#include "../util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>


/* ---- open stores, and what each does in a forked child ------------------- */

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static dura_store *open_stores;

static void open_add(dura_store *s)
{
	pthread_mutex_lock(&open_lock);
	s->next = open_stores;
	if (open_stores)
		open_stores->prev = s;
	open_stores = s;
	pthread_mutex_unlock(&open_lock);
}

static void open_remove(dura_store *s)
{
	pthread_mutex_lock(&open_lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		open_stores = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&open_lock);
}

/* The atfork_child operation appeared in contract version 2. */
static void (*atfork_child_of(const dura_store_ops *ops))(void *)
{
	return ops->version >= 2 ? ops->atfork_child : NULL;
}

void dura__stores_atfork(int phase, int guarded)
{
	if (phase == DURA__FORK_PREPARE) {
		pthread_mutex_lock(&open_lock);
		return;
	}
	if (phase == DURA__FORK_CHILD && guarded)
		for (dura_store *s = open_stores; s; s = s->next)
			if (atfork_child_of(s->ops))
				atfork_child_of(s->ops)(s->impl);
	pthread_mutex_unlock(&open_lock);
}

/* ---- registry ------------------------------------------------------------ */

/* Schemes dura knows of, built or not, so a missing one gets a clear word. */
static const struct {
	const char *scheme;
	const dura_store_ops *ops;
	const char *package;
} builtins[] = {
	{"memory", &dura__memory_ops, NULL},
	{"sqlite", &dura__sqlite_ops, NULL},
#ifdef DURA_HAVE_POSTGRES
	{"postgres", &dura__postgres_ops, NULL},
#else
	{"postgres", NULL, "the PostgreSQL store"},
#endif
#ifdef DURA_HAVE_MYSQL
	{"mysql", &dura__mysql_ops, NULL},
#else
	{"mysql", NULL, "the MySQL/MariaDB store"},
#endif
#ifdef DURA_HAVE_REDIS
	{"redis", &dura__redis_ops, NULL},
#else
	{"redis", NULL, "the Redis store"},
#endif
};

#define MAX_EXTERNAL 16
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const dura_store_ops *external[MAX_EXTERNAL];

/* The operations every store must have (store.h says which are optional). */
#define REQUIRED_OPS(X)                                                                                     \
	X(open) X(close) X(ping) X(info) X(stats) X(migrate) X(create_run) X(get_run) X(latest_run)          \
	X(list_runs) X(set_run_state) X(delete_run_data) X(commit) X(commit_batch) X(history) X(get_step)  \
	X(load_latest) X(checkpoint_save) X(checkpoint_load) X(checkpoint_list) X(checkpoint_delete)        \
	X(cache_get) X(cache_put) X(cache_claim) X(cache_release) X(cache_delete) X(cache_purge_expired)    \
	X(cache_list) X(cache_stats) X(claim_runs) X(extend_lease) X(release_lease) X(outbox_poll)          \
	X(outbox_ack)

/* The first required operation ops lacks, or NULL. */
static const char *missing_op(const dura_store_ops *ops)
{
#define X(name)            \
	if (!ops->name)    \
		return #name;
	REQUIRED_OPS(X)
#undef X
	return NULL;
}

/* The worker registry (version 4) is all four operations or none. */
static int registry_ops_valid(const dura_store_ops *ops)
{
	if (ops->version < 4)
		return 0;
	int n = !!ops->worker_put + !!ops->worker_delete + !!ops->worker_list + !!ops->worker_prune;
	if (n != 0 && n != 4)
		return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,
		                             "store '%s' has some of the worker registry's operations (worker_put, "
		                             "worker_delete, worker_list, worker_prune) but not all", ops->scheme);
	return 0;
}

/* 0 if ops is a vtable this library can use: a known version, a scheme,
 * every required operation. */
static int ops_valid(const dura_store_ops *ops, const char *fn)
{
	if (!ops || !ops->scheme || !*ops->scheme)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: ops or scheme is missing", fn);
	if (ops->version < 1 || ops->version > DURA_STORE_ABI_VERSION)
		return dura_error_set_native(DURA_EVERSION, ops->scheme, 0, NULL,
		                             "store '%s' implements contract version %u, this library knows 1 to %u",
		                             ops->scheme, ops->version, DURA_STORE_ABI_VERSION);
	const char *missing = missing_op(ops);
	if (missing)
		return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,
		                             "store '%s' has no %s operation, which every store must have", ops->scheme, missing);
	TRY(registry_ops_valid(ops));
	TRY(dura__waiting_ops_valid(ops));
	TRY(dura__fleet_ops_valid(ops));
	TRY(dura__import_ops_valid(ops));
	return dura__gauges_ops_valid(ops);
}

int dura_store_register(const dura_store_ops *ops)
{
	int valid = ops_valid(ops, "dura_store_register");
	if (valid)
		return valid;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (builtins[i].ops && strcmp(builtins[i].scheme, ops->scheme) == 0)
			return dura_error_set_native(DURA_EEXISTS, ops->scheme, 0, NULL, "scheme '%s' is built in", ops->scheme);
	int rc = dura_error_set_native(DURA_ENOMEM, ops->scheme, 0, NULL, "too many external stores (%d)", MAX_EXTERNAL);
	dura__fork_enter();
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_EXTERNAL; i++) {
		if (!external[i] || strcmp(external[i]->scheme, ops->scheme) == 0) {
			external[i] = ops;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	dura__fork_leave();
	if (rc == 0)
		dura_error_clear();
	return rc;
}

static int find_ops(const dura_store_ops **out, const char *scheme)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_EXTERNAL && external[i]; i++) {
		if (strcmp(external[i]->scheme, scheme) == 0) {
			*out = external[i];
			pthread_mutex_unlock(&reg_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strcmp(builtins[i].scheme, scheme) != 0)
			continue;
		if (!builtins[i].ops)
			return dura_error_set_native(DURA_ENOTSUP, scheme, 0, NULL,
			                             "the '%s' store is not built into this libdura (%s is not available yet)",
			                             scheme, builtins[i].package);
		*out = builtins[i].ops;
		return 0;
	}
	return dura_error_set_native(DURA_ENOTSUP, scheme, 0, NULL, "no store is registered for scheme '%s'", scheme);
}

const dura_store_ops *dura_store_find(const char *scheme)
{
	const dura_store_ops *ops = NULL;
	if (!scheme || !*scheme) {
		dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_find: scheme is missing");
		return NULL;
	}
	if (find_ops(&ops, scheme))
		return NULL;
	dura_error_clear();
	return ops;
}

/* ---- argument checks ------------------------------------------------------ */

int dura__check_id(const char *id, const char *what, const char *fn)
{
	if (!id)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is NULL", fn, what);
	size_t n = strnlen(id, DURA_MAX_ID_LEN + 1);
	if (n == 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is empty", fn, what);
	if (n > DURA_MAX_ID_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is longer than %d bytes", fn, what,
		                             DURA_MAX_ID_LEN);
	return 0;
}

/* An optional id: NULL and "" are allowed, but not an over-long one. */
int dura__check_opt_id(const char *id, const char *what, const char *fn)
{
	return id && *id ? dura__check_id(id, what, fn) : 0;
}

int dura__check_run_state(int st, int allow_zero, const char *fn)
{
	if ((allow_zero && st == 0) || (st >= 1 && st <= DURA_RUN_STATE_MAX))
		return 0;
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run state %d is not a known state", fn, st);
}

/* ---- lifecycle ------------------------------------------------------------ */

int dura_store_open(dura_store **out, const char *url, const dura_store_options *opts)
{
	dura_store_options defaults = DURA_STORE_OPTIONS_INIT;
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_open: out is NULL");
	*out = NULL;
	if (opts && opts->version != DURA_STORE_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "dura_store_options version %u, expected %u",
		                             opts->version, DURA_STORE_OPTIONS_VERSION);
	if (!opts)
		opts = &defaults;
	dura_url *u;
	TRY(dura_url_parse(&u, url));
	const dura_store_ops *ops = NULL;
	int rc = find_ops(&ops, u->scheme);
	if (rc == 0)
		rc = ops_valid(ops, "dura_store_open");
	if (rc) {
		dura_url_free(u);
		return rc;
	}
	dura_store *s = dura_calloc(1, sizeof(*s));
	if (!s) {
		dura_url_free(u);
		return dura_error_oom("");
	}
	s->ops = ops;
	s->url = u;
	s->max_state = u->max_state_bytes ? u->max_state_bytes : DURA_DEFAULT_MAX_STATE_BYTES;
	s->max_value = u->max_value_bytes ? u->max_value_bytes : DURA_DEFAULT_MAX_VALUE_BYTES;
	dura_error_clear();
	GUARD(rc, ops->open(&s->impl, u, opts));
	if (rc) {
		dura_url_free(u);
		dura_free(s);
		return rc;
	}
	open_add(s);
	*out = s;
	return 0;
}

void dura_store_close(dura_store *s)
{
	if (!s)
		return;
	open_remove(s);
	dura__fork_enter();
	s->ops->close(s->impl);
	dura__fork_leave();
	dura_url_free(s->url);
	dura_free(s);
}

int dura_store_ping(dura_store *s)
{
	CHECK_STORE(s);
	dura_error_clear();
	int rc_;
	GUARD(rc_, s->ops->ping(s->impl));
	return rc_;
}

int dura_store_info_get(dura_store *s, dura_store_info *out)
{
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_info_get: out is NULL");
	memset(out, 0, sizeof(*out));
	dura_error_clear();
	int rc_;
	GUARD(rc_, s->ops->info(s->impl, out));
	TRY(rc_);
	out->scheme = s->ops->scheme;
	out->location = s->url->redacted;
	if (!out->server_version)
		out->server_version = "";
	if (!out->notes)
		out->notes = "";
	return 0;
}

int dura_store_limits_get(dura_store *s, size_t *max_state, size_t *max_value)
{
	CHECK_STORE(s);
	if (max_state)
		*max_state = s->max_state;
	if (max_value)
		*max_value = s->max_value;
	return 0;
}

int dura__check_state_size(const dura_store *s, size_t len, const char *what, const char *fn)
{
	if (len <= s->max_state)
		return 0;
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
	                             "%s: the %s is %zu bytes, over the store's limit of %zu bytes (URL option max_state); "
	                             "nothing was written",
	                             fn, what, len, s->max_state);
}

int dura_store_stats_get(dura_store *s, dura_store_stats *out)
{
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_stats_get: out is NULL");
	memset(out, 0, sizeof(*out));
	dura_error_clear();
	int rc_;
	GUARD(rc_, s->ops->stats(s->impl, out));
	TRY(rc_);
	out->commits = atomic_load(&s->commits);
	out->conflicts = atomic_load(&s->conflicts);
	return 0;
}

int dura_store_migrate(dura_store *s, int *from, int *to)
{
	int f = 0, t = 0;
	CHECK_STORE(s);
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->migrate(s->impl, &f, &t));
	if (from)
		*from = f;
	if (to)
		*to = t;
	return rc;
}

int dura_store_exec_sql(dura_store *s, const char *sql, dura_row_cb cb, void *payload)
{
	CHECK_STORE(s);
	if (!sql || !*sql)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_exec_sql: sql is empty");
	DISPATCH(s, exec_sql, sql, cb, payload);
}

/* ---- runs ----------------------------------------------------------------- */

int dura_store_create_run(dura_store *s, const dura_run_create *req, dura_record **out)
{
	static const char fn[] = "dura_store_create_run";
	char id[DURA_UUID_LEN + 1];
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!req)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: request is NULL", fn);
	if (req->version < 1 || req->version > DURA_RUN_CREATE_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: request version %u, expected 1 to %u", fn,
		                             req->version, DURA_RUN_CREATE_VERSION);
	/* the store always gets a request of this version: a version-1 one
	 * ends at meta, so only that much of it is read */
	dura_run_create r = DURA_RUN_CREATE_INIT;
	r.run_id = req->run_id;
	r.workflow_name = req->workflow_name;
	r.foreign_id = req->foreign_id;
	r.state = req->state;
	r.status = req->status;
	r.run_state = req->run_state;
	r.next_run_at = req->next_run_at;
	r.meta = req->meta;
	if (req->version >= 2) {
		r.priority = req->priority;
		r.concurrency_key = req->concurrency_key;
	}
	if (req->version >= 3)
		r.parent_id = req->parent_id;
	if (req->version >= 4)
		r.workflow_version = req->workflow_version;
	if (!r.workflow_version)
		r.workflow_version = "";
	TRY(dura__check_version(r.workflow_version, 1, fn));
	if (*r.workflow_version && s->ops->version < 6)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) keeps no workflow version", fn,
		                             s->ops->scheme, s->ops->version);
	if (!r.concurrency_key)
		r.concurrency_key = "";
	if (!r.parent_id)
		r.parent_id = "";
	TRY(dura__check_opt_id(r.parent_id, "parent run id", fn));
	if (*r.parent_id && s->ops->version < 5)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) keeps no parent run", fn, s->ops->scheme,
		                             s->ops->version);
	TRY(dura__check_id(r.workflow_name, "workflow name", fn));
	TRY(dura__check_opt_id(r.foreign_id, "foreign id", fn));
	TRY(dura__check_opt_id(r.status, "status", fn));
	TRY(dura__check_opt_id(r.concurrency_key, "concurrency key", fn));
	if (*r.concurrency_key && !dura__utf8_valid(r.concurrency_key))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: the concurrency key is not UTF-8", fn);
	if (r.priority < DURA_PRIORITY_MIN || r.priority > DURA_PRIORITY_MAX)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: priority %d is outside %d to %d", fn, r.priority,
		                             DURA_PRIORITY_MIN, DURA_PRIORITY_MAX);
	if ((r.priority || *r.concurrency_key) && s->ops->version < 4)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) keeps no priority or concurrency key", fn,
		                             s->ops->scheme, s->ops->version);
	TRY(dura__check_run_state(r.run_state, 1, fn));
	if (r.state) {
		TRY(dura__check_state_size(s, strlen(r.state), "initial state", fn));
		TRY(dura__json_valid(r.state, "initial state"));
	}
	if (r.meta && *r.meta)
		TRY(dura__json_valid(r.meta, "run metadata"));
	if (r.run_id)
		TRY(dura__check_id(r.run_id, "run id", fn));
	else
		TRY(dura_uuid7(id));
	dura_error_clear();
	int rc_;
	GUARD(rc_, s->ops->create_run(s->impl, &r, r.run_id ? r.run_id : id, out));
	return rc_;
}

int dura_store_get_run(dura_store *s, const char *run_id, dura_record **out)
{
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_get_run: out is NULL");
	TRY(dura__check_id(run_id, "run id", "dura_store_get_run"));
	DISPATCH(s, get_run, run_id, out);
}

int dura_store_latest_run(dura_store *s, const char *wf, const char *foreign_id, dura_record **out)
{
	static const char fn[] = "dura_store_latest_run";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(wf, "workflow name", fn));
	TRY(dura__check_id(foreign_id, "foreign id", fn));
	DISPATCH(s, latest_run, wf, foreign_id, out);
}

int dura_store_list_runs(dura_store *s, const dura_run_filter *f, dura_record_list *out)
{
	static const char fn[] = "dura_store_list_runs";
	dura_run_filter defaults = DURA_RUN_FILTER_INIT;
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	if (!f)
		f = &defaults;
	if (f->version < 1 || f->version > DURA_RUN_FILTER_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: filter version %u, expected 1 to %u", fn,
		                             f->version, DURA_RUN_FILTER_VERSION);
	TRY(dura__check_opt_id(f->workflow_name, "workflow name", fn));
	TRY(dura__check_opt_id(f->foreign_id, "foreign id", fn));
	TRY(dura__check_opt_id(f->status, "status", fn));
	TRY(dura__check_opt_id(f->cursor, "cursor", fn));
	TRY(dura__check_run_state(f->run_state, 1, fn));
	/* the store always gets a filter of this version */
	dura_run_filter copy = defaults;
	memcpy(&copy, f,
	       f->version == 1   ? offsetof(dura_run_filter, parent_id)
	       : f->version == 2 ? offsetof(dura_run_filter, workflow_version)
	       : f->version == 3 ? offsetof(dura_run_filter, due)
	                         : sizeof(copy));
	copy.version = DURA_RUN_FILTER_VERSION;
	if (copy.workflow_version) {
		TRY(dura__check_version(copy.workflow_version, 1, fn));
		if (s->ops->version < 6)
			return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
			                             "%s: the %s store (contract version %u) keeps no workflow version", fn,
			                             s->ops->scheme, s->ops->version);
	}
	TRY(dura__check_opt_id(copy.parent_id, "parent run id", fn));
	if ((copy.parent_id || copy.waiting) && s->ops->version < 5)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) keeps no parent run or wait", fn,
		                             s->ops->scheme, s->ops->version);
	copy.waiting = copy.waiting != 0;
	copy.due = copy.due != 0;
	if (copy.due && s->ops->version < 8)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) cannot list due runs (version 8)", fn,
		                             s->ops->scheme, s->ops->version);
	if (copy.limit == 0)
		copy.limit = 100;
	if (copy.limit > 10000)
		copy.limit = 10000;
	DISPATCH(s, list_runs, &copy, out);
}

int dura_store_set_run_state(dura_store *s, const char *run_id, int to, int64_t *new_version)
{
	static const char fn[] = "dura_store_set_run_state";
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_run_state(to, 0, fn));
	/* data_deleted means the data is gone, whichever door the caller used */
	if (to == DURA_RUN_DATA_DELETED) {
		dura_error_clear();
		int rc;
		GUARD(rc, s->ops->delete_run_data(s->impl, run_id));
		if (rc == 0 && new_version) {
			dura_record *r;
			GUARD(rc, s->ops->get_run(s->impl, run_id, &r));
			if (rc == 0) {
				*new_version = r->version;
				dura_record_free(r);
			}
		}
		return rc;
	}
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->set_run_state(s->impl, run_id, to, new_version));
	if (rc == 0 && to == DURA_RUN_RUNNING && s->ops->version >= 5) {
		/* a signal sent, or a child ended, while the run was paused could
		 * not wake it: look now (a failed look leaves the run to its deadline) */
		if (dura__store_wait_recheck(s, run_id, NULL) == 1 && new_version) {
			dura_record *r = NULL;
			if (dura_store_get_run(s, run_id, &r) == 0)
				*new_version = r->version;
			dura_record_free(r);
		}
		dura_error_clear();
	}
	return rc;
}

int dura_store_delete_run_data(dura_store *s, const char *run_id)
{
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", "dura_store_delete_run_data"));
	DISPATCH(s, delete_run_data, run_id);
}

/* ---- steps ---------------------------------------------------------------- */

/* *out = c as a commit of this version: a version-1 one ends at flags, a
 * version-2 one at wake_wait. */
static void commit_upgrade(dura_commit *out, const dura_commit *c)
{
	dura_commit z = DURA_COMMIT_INIT;
	*out = z;
	memcpy(out, c,
	       c->version == 1   ? offsetof(dura_commit, wait)
	       : c->version == 2 ? offsetof(dura_commit, workflow_version)
	                         : sizeof(*out));
	out->version = DURA_COMMIT_VERSION;
}

static int check_commit(const dura_store *s, const dura_commit *c, const char *fn)
{
	if (!c)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: commit is NULL", fn);
	if (c->version < 1 || c->version > DURA_COMMIT_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: commit version %u, expected 1 to %u", fn,
		                             c->version, DURA_COMMIT_VERSION);
	if (c->version >= 2)
		TRY(dura__check_commit_wait(s, c, fn));
	if (c->version >= 3 && c->workflow_version)
		TRY(dura__check_version(c->workflow_version, 1, fn));
	TRY(dura__check_id(c->run_id, "run id", fn));
	if (!(c->flags & DURA_COMMIT_NO_STEP))
		TRY(dura__check_id(c->node_id, "node id", fn));
	else
		TRY(dura__check_opt_id(c->node_id, "node id", fn));
	TRY(dura__check_opt_id(c->status, "status", fn));
	TRY(dura__check_run_state(c->run_state, 1, fn));
	if (c->expect_version < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: expected version %lld is negative", fn,
		                             (long long)c->expect_version);
	if (c->state)
		TRY(dura__check_state_size(s, strlen(c->state), "state", fn));
	TRY(dura__json_valid(c->state, "step state"));
	if (c->event_type)
		TRY(dura__check_id(c->event_type, "event type", fn));
	if (c->event_data)
		TRY(dura__json_valid(c->event_data, "event data"));
	/* the default event data (dura_store_event_summary(), which every store
	 * calls) is JSON that holds these: refuse text that is not UTF-8 here,
	 * rather than write an event that is not JSON */
	if (!c->event_data && !(c->flags & DURA_COMMIT_NO_EVENT) &&
	    !(dura__utf8_valid(c->run_id) && dura__utf8_valid(c->node_id) && dura__utf8_valid(c->status)))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "%s: run id, node id and status must be UTF-8 (the event data is JSON made of them)", fn);
	return 0;
}

int dura_store_commit(dura_store *s, const dura_commit *c, dura_commit_result *res)
{
	static const char fn[] = "dura_store_commit";
	dura_commit_result local;
	char ev[DURA_UUID_LEN + 1];
	dura_commit up;
	CHECK_STORE(s);
	TRY(check_commit(s, c, fn));
	commit_upgrade(&up, c);
	c = &up;
	ev[0] = '\0';
	if (!(c->flags & DURA_COMMIT_NO_EVENT))
		TRY(dura_uuid7(ev));
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	dura_error_clear();
	int rc;
	int64_t t0 = dura__mono_us();
	GUARD(rc, s->ops->commit(s->impl, c, ev, res));
	dura__metrics_commit(rc, !(c->flags & DURA_COMMIT_NO_STEP), dura__mono_us() - t0);
	res->code = rc;
	if (rc == 0)
		atomic_fetch_add(&s->commits, 1);
	else if (rc == DURA_ECONFLICT)
		atomic_fetch_add(&s->conflicts, 1);
	return rc;
}

int dura__store_commit_trusted(dura_store *s, const dura_commit *c, dura_commit_result *res)
{
	char ev[DURA_UUID_LEN + 1] = "";
	if (c->state)
		TRY(dura__check_state_size(s, strlen(c->state), "state", "commit"));
	if (!(c->flags & DURA_COMMIT_NO_EVENT))
		TRY(dura_uuid7(ev));
	memset(res, 0, sizeof(*res));
	dura_error_clear();
	int rc;
	int64_t t0 = dura__mono_us();
	GUARD(rc, s->ops->commit(s->impl, c, ev, res));
	dura__metrics_commit(rc, !(c->flags & DURA_COMMIT_NO_STEP), dura__mono_us() - t0);
	res->code = rc;
	if (rc == 0)
		atomic_fetch_add(&s->commits, 1);
	else if (rc == DURA_ECONFLICT)
		atomic_fetch_add(&s->conflicts, 1);
	return rc;
}

const char *dura__store_scheme(const dura_store *s)
{
	return s && s->ops && s->ops->scheme ? s->ops->scheme : "";
}

int dura__store_wait_change(dura_store *s, const char *run_id, int64_t version, int64_t timeout_ms)
{
	if (!s->ops->wait_change)
		return DURA_ENOTSUP;
	/* not guarded: it blocks, and holds no connection while it does */
	return s->ops->wait_change(s->impl, run_id, version, timeout_ms);
}

int dura_store_commit_batch(dura_store *s, const dura_commit *c, size_t n, dura_commit_result *res)
{
	static const char fn[] = "dura_store_commit_batch";
	CHECK_STORE(s);
	if (!c || !res || n == 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: commits, results and a count > 0 are required", fn);
	if (n > 10000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu commits in one batch (at most 10000)", fn, n);
	/* until the store answers, every result is the error that stops us */
	memset(res, 0, n * sizeof(*res));
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = check_commit(s, &c[i], fn);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			res[i].code = rc;
		return rc;
	}
	char *ids = dura_malloc(n * (DURA_UUID_LEN + 1));
	const char **ptrs = dura_calloc(n, sizeof(char *));
	dura_commit *up = dura_malloc(n * sizeof(*up));
	if (up)
		for (size_t i = 0; i < n; i++)
			commit_upgrade(&up[i], &c[i]);
	c = up;
	if (!ids || !ptrs || !up) {
		dura_free(up);
		dura_free(ids);
		dura_free(ptrs);
		for (size_t i = 0; i < n; i++)
			res[i].code = DURA_ENOMEM;
		return dura_error_oom(s->ops->scheme);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		ptrs[i] = ids + i * (DURA_UUID_LEN + 1);
		rc = dura_uuid7(ids + i * (DURA_UUID_LEN + 1));
	}
	if (rc == 0) {
		dura_error_clear();
		int64_t t0 = dura__mono_us();
		GUARD(rc, s->ops->commit_batch(s->impl, c, (const char *const *)ptrs, n, res));
		int64_t took = dura__mono_us() - t0;
		/* as the handle's counters below: a result of 0 is a commit only
		 * when the batch went through (or only some of it conflicted) */
		for (size_t i = 0; i < n; i++)
			dura__metrics_commit(res[i].code ? res[i].code : rc == 0 || rc == DURA_ECONFLICT ? 0 : rc,
			                     !(c[i].flags & DURA_COMMIT_NO_STEP), took);
	} else {
		for (size_t i = 0; i < n; i++)
			res[i].code = rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (res[i].code == 0 && (rc == 0 || rc == DURA_ECONFLICT))
			atomic_fetch_add(&s->commits, 1);
		else if (res[i].code == DURA_ECONFLICT)
			atomic_fetch_add(&s->conflicts, 1);
	}
	dura_free(up);
	dura_free(ids);
	dura_free(ptrs);
	return rc;
}

int dura_store_history(dura_store *s, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	static const char fn[] = "dura_store_history";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(run_id, "run id", fn));
	if (from < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: from step %lld is negative", fn, (long long)from);
	DISPATCH(s, history, run_id, from, limit, out);
}

int dura_store_get_step(dura_store *s, const char *run_id, int64_t step, dura_step **out)
{
	static const char fn[] = "dura_store_get_step";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(run_id, "run id", fn));
	if (step < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: step %lld is negative", fn, (long long)step);
	DISPATCH(s, get_step, run_id, step, out);
}

int dura_store_load_latest(dura_store *s, const char *run_id, dura_step **out)
{
	static const char fn[] = "dura_store_load_latest";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(run_id, "run id", fn));
	DISPATCH(s, load_latest, run_id, out);
}

/* ---- checkpoints ---------------------------------------------------------- */

int dura_store_checkpoint_save(dura_store *s, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	static const char fn[] = "dura_store_checkpoint_save";
	CHECK_STORE(s);
	TRY(dura__check_id(cp_id, "checkpoint id", fn));
	TRY(dura__check_id(run_id, "run id", fn));
	if (step < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: step %lld is negative", fn, (long long)step);
	if (state)
		TRY(dura__check_state_size(s, strlen(state), "checkpoint state", fn));
	TRY(dura__json_valid(state, "checkpoint state"));
	DISPATCH(s, checkpoint_save, cp_id, run_id, step, state);
}

int dura_store_checkpoint_load(dura_store *s, const char *cp_id, dura_checkpoint **out)
{
	static const char fn[] = "dura_store_checkpoint_load";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(cp_id, "checkpoint id", fn));
	DISPATCH(s, checkpoint_load, cp_id, out);
}

int dura_store_checkpoint_list(dura_store *s, const char *run_id, dura_checkpoint_list *out)
{
	static const char fn[] = "dura_store_checkpoint_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_opt_id(run_id, "run id", fn));
	DISPATCH(s, checkpoint_list, run_id && *run_id ? run_id : NULL, out);
}

int dura_store_checkpoint_delete(dura_store *s, const char *cp_id)
{
	CHECK_STORE(s);
	TRY(dura__check_id(cp_id, "checkpoint id", "dura_store_checkpoint_delete"));
	DISPATCH(s, checkpoint_delete, cp_id);
}

/* ---- cache ---------------------------------------------------------------- */

int dura_store_cache_get(dura_store *s, const char *key, dura_cache_entry **out)
{
	static const char fn[] = "dura_store_cache_get";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(key, "cache key", fn));
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->cache_get(s->impl, key, out));
	if (rc == 0 || rc == DURA_ENOTFOUND)
		dura__metrics_cache(rc == 0);
	if (rc == 0)
		atomic_fetch_add(&s->hits, 1);
	else if (rc == DURA_ENOTFOUND)
		atomic_fetch_add(&s->misses, 1);
	return rc;
}

int dura_store_cache_put(dura_store *s, const char *key, const void *value, size_t len, const char *error,
                         const char *metadata, int64_t ttl_ms)
{
	static const char fn[] = "dura_store_cache_put";
	CHECK_STORE(s);
	TRY(dura__check_id(key, "cache key", fn));
	if (!value && len)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: value is NULL but its length is %zu", fn, len);
	if (ttl_ms < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: ttl %lld ms is negative", fn, (long long)ttl_ms);
	if (len > s->max_value)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "%s: the value for %s is %zu bytes, over the store's limit of %zu bytes (URL "
		                             "option max_value); nothing was written",
		                             fn, key, len, s->max_value);
	if (metadata)
		TRY(dura__json_object_valid(metadata, "cache metadata"));
	DISPATCH(s, cache_put, key, value, len, error, metadata, ttl_ms);
}

int dura_store_cache_claim(dura_store *s, const char *key, const char *owner, int64_t lease_ms)
{
	static const char fn[] = "dura_store_cache_claim";
	CHECK_STORE(s);
	TRY(dura__check_id(key, "cache key", fn));
	TRY(dura__check_id(owner, "owner", fn));
	if (lease_ms <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease %lld ms must be positive", fn,
		                             (long long)lease_ms);
	DISPATCH(s, cache_claim, key, owner, lease_ms);
}

int dura_store_cache_release(dura_store *s, const char *key, const char *owner)
{
	static const char fn[] = "dura_store_cache_release";
	CHECK_STORE(s);
	TRY(dura__check_id(key, "cache key", fn));
	TRY(dura__check_id(owner, "owner", fn));
	DISPATCH(s, cache_release, key, owner);
}

int dura_store_cache_delete(dura_store *s, const char *key)
{
	CHECK_STORE(s);
	TRY(dura__check_id(key, "cache key", "dura_store_cache_delete"));
	DISPATCH(s, cache_delete, key);
}

int dura_store_cache_purge_expired(dura_store *s, int64_t *count)
{
	int64_t local = 0;
	CHECK_STORE(s);
	DISPATCH(s, cache_purge_expired, count ? count : &local);
}

int dura_store_cache_list(dura_store *s, const char *cursor, size_t limit, dura_cache_list *out)
{
	static const char fn[] = "dura_store_cache_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_opt_id(cursor, "cursor", fn));
	if (limit == 0)
		limit = 100;
	if (limit > 10000)
		limit = 10000;
	DISPATCH(s, cache_list, cursor && *cursor ? cursor : NULL, limit, out);
}

int dura_store_cache_stats(dura_store *s, dura_cache_stats *out)
{
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_cache_stats: out is NULL");
	memset(out, 0, sizeof(*out));
	dura_error_clear();
	int rc_;
	GUARD(rc_, s->ops->cache_stats(s->impl, out));
	TRY(rc_);
	out->hits = atomic_load(&s->hits);
	out->misses = atomic_load(&s->misses);
	return 0;
}

/* ---- leases --------------------------------------------------------------- */

int dura_store_claim_runs(dura_store *s, const char *owner, const char *const *wfs, size_t nwfs, size_t max,
                          int64_t lease_ms, dura_record_list *out)
{
	static const char fn[] = "dura_store_claim_runs";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(owner, "owner", fn));
	if (nwfs && !wfs)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu workflows but the list is NULL", fn, nwfs);
	if (nwfs > 256)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu workflows (at most 256)", fn, nwfs);
	for (size_t i = 0; i < nwfs; i++)
		TRY(dura__check_id(wfs[i], "workflow name", fn));
	if (max == 0 || max > 1000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: max %zu must be from 1 to 1000", fn, max);
	if (lease_ms <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease %lld ms must be positive", fn,
		                             (long long)lease_ms);
	DISPATCH(s, claim_runs, owner, nwfs ? wfs : NULL, nwfs, max, lease_ms, out);
}

/* The claim operation appeared in contract version 4. */
static int (*claim_of(const dura_store_ops *ops))(void *, const dura_claim *, dura_record_list *)
{
	return ops->version >= 4 ? ops->claim : NULL;
}

int dura__store_can_claim(const dura_store *s)
{
	return s && claim_of(s->ops) != NULL;
}

int dura_store_claim(dura_store *s, const dura_claim *req, dura_record_list *out)
{
	static const char fn[] = "dura_store_claim";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out || !req)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is NULL", fn, out ? "req" : "out");
	if (req->version < 1 || req->version > DURA_CLAIM_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: request version %u, expected 1 to %u", fn,
		                             req->version, DURA_CLAIM_VERSION);
	/* the store always gets a request of this version: a version-1 one
	 * ends at taken_over */
	dura_claim up = DURA_CLAIM_INIT;
	memcpy(&up, req, req->version == 1 ? offsetof(dura_claim, versions) : sizeof(up));
	up.version = DURA_CLAIM_VERSION;
	if (s->ops->version < 6) { /* the store keeps no versions: every run is of none */
		up.versions = NULL;
		up.nversions = 0;
	}
	req = &up;
	TRY(dura__check_id(req->owner, "owner", fn));
	if (req->nworkflows && !req->workflows)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu workflows but the list is NULL", fn,
		                             req->nworkflows);
	if (req->nworkflows > 256)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu workflows (at most 256)", fn, req->nworkflows);
	int limited = 0;
	for (size_t i = 0; i < req->nworkflows; i++) {
		const dura_claim_workflow *w = &req->workflows[i];
		TRY(dura__check_id(w->name, "workflow name", fn));
		if (w->max_running < 0 || w->max_running > 1000000 || w->max_per_key < 0 || w->max_per_key > 1000000)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
			                             "%s: workflow %s: limits %d and %d must be from 0 to 1000000", fn, w->name,
			                             w->max_running, w->max_per_key);
		for (size_t j = 0; j < i; j++)
			if (strcmp(req->workflows[j].name, w->name) == 0)
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: workflow %s is listed twice", fn, w->name);
		limited |= w->max_running > 0 || w->max_per_key > 0;
	}
	TRY(dura__check_claim_versions(req, fn));
	if (req->max == 0 || req->max > 1000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: max %zu must be from 1 to 1000", fn, req->max);
	if (req->lease_ms <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease %lld ms must be positive", fn,
		                             (long long)req->lease_ms);
	if (req->taken_over)
		memset(req->taken_over, 0, req->max * sizeof(*req->taken_over));
	dura_error_clear();
	int rc;
	if (claim_of(s->ops)) {
		GUARD(rc, claim_of(s->ops)(s->impl, req, out));
		return rc;
	}
	if (limited)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) has no flow control", fn, s->ops->scheme,
		                             s->ops->version);
	/* an older store: its claim_runs, which cannot tell a rescue */
	const char **names = NULL;
	if (req->nworkflows && !(names = dura_calloc(req->nworkflows, sizeof(*names))))
		return dura_error_oom("");
	for (size_t i = 0; i < req->nworkflows; i++)
		names[i] = req->workflows[i].name;
	GUARD(rc, s->ops->claim_runs(s->impl, req->owner, names, req->nworkflows, req->max, req->lease_ms, out));
	dura_free(names);
	return rc;
}

int dura_store_extend_lease(dura_store *s, const char *run_id, const char *owner, int64_t lease_ms)
{
	static const char fn[] = "dura_store_extend_lease";
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_id(owner, "owner", fn));
	if (lease_ms <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease %lld ms must be positive", fn,
		                             (long long)lease_ms);
	DISPATCH(s, extend_lease, run_id, owner, lease_ms);
}

/* wait_ready appeared in contract version 3 */
int dura__store_can_wait_ready(const dura_store *s)
{
	return s && s->ops->version >= 3 && s->ops->wait_ready;
}

int dura__store_wait_ready(dura_store *s, int64_t timeout_ms)
{
	if (!dura__store_can_wait_ready(s))
		return DURA_ENOTSUP;
	/* not guarded: it blocks, and holds no connection while it does */
	return s->ops->wait_ready(s->impl, timeout_ms);
}

/* The extend_leases operation appeared in contract version 3. */
static int (*extend_leases_of(const dura_store_ops *ops))(void *, const char *, const char *const *, size_t, int64_t,
                                                           int *)
{
	return ops->version >= 3 ? ops->extend_leases : NULL;
}

int dura_store_extend_leases(dura_store *s, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                             int *codes)
{
	static const char fn[] = "dura_store_extend_leases";
	int rc = 0;
	if (!codes)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: codes is NULL", fn);
	if (!s)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: store is NULL", fn);
	else if (n == 0 || n > 10000 || !run_ids)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu runs (1 to 10000, and a list) are required", fn, n);
	else if (lease_ms <= 0)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease %lld ms must be positive", fn,
		                           (long long)lease_ms);
	if (rc == 0)
		rc = dura__check_id(owner, "owner", fn);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dura__check_id(run_ids[i], "run id", fn);
	if (rc) {
		for (size_t i = 0; i < n && run_ids; i++)
			codes[i] = rc;
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		codes[i] = 0;
	dura_error_clear();
	if (extend_leases_of(s->ops)) {
		GUARD(rc, extend_leases_of(s->ops)(s->impl, owner, run_ids, n, lease_ms, codes));
		if (rc) {
			for (size_t i = 0; i < n; i++)
				codes[i] = rc;
			return rc;
		}
	} else {
		/* a store of contract version 1 or 2: one call per run */
		for (size_t i = 0; i < n; i++) {
			int one;
			GUARD(one, s->ops->extend_lease(s->impl, run_ids[i], owner, lease_ms));
			if (one != 0 && one != DURA_ECONFLICT && one != DURA_ENOTFOUND) {
				for (size_t j = 0; j < n; j++)
					codes[j] = one;
				return one;
			}
			codes[i] = one;
		}
	}
	/* the first lost lease is the answer, with a message naming it */
	for (size_t i = 0; i < n; i++)
		if (codes[i])
			return dura_error_set_native(codes[i], s->ops->scheme, 0, NULL, "%s: the lease on run %s is %s", fn,
			                             run_ids[i], codes[i] == DURA_ENOTFOUND ? "gone with its run" : "not owner's any more");
	dura_error_clear();
	return 0;
}

int dura_store_release_lease(dura_store *s, const char *run_id, const char *owner)
{
	static const char fn[] = "dura_store_release_lease";
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_id(owner, "owner", fn));
	DISPATCH(s, release_lease, run_id, owner);
}

/* ---- outbox --------------------------------------------------------------- */

int dura_store_outbox_poll(dura_store *s, size_t limit, dura_event_list *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_store_outbox_poll: out is NULL");
	if (limit == 0)
		limit = 100;
	if (limit > 10000)
		limit = 10000;
	DISPATCH(s, outbox_poll, limit, out);
}

int dura_store_outbox_ack(dura_store *s, const char *event_id)
{
	CHECK_STORE(s);
	TRY(dura__check_id(event_id, "event id", "dura_store_outbox_ack"));
	DISPATCH(s, outbox_ack, event_id);
}

/* ---- the worker registry (contract version 4) ----------------------------- */

/* The registry's operations appeared in contract version 4. */
static int has_registry(const dura_store *s, const char *fn)
{
	if (s->ops->version >= 4 && s->ops->worker_put)
		return 0;
	return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
	                             "%s: the %s store keeps no worker registry (it needs contract version 4 and "
	                             "the worker_* operations)", fn, s->ops->scheme);
}

/* Optional text of a worker's row: at most DURA_MAX_ID_LEN bytes of UTF-8. */
static int check_worker_text(const char *v, const char *what, const char *fn)
{
	if (v && strnlen(v, DURA_MAX_ID_LEN + 1) > DURA_MAX_ID_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is longer than %d bytes", fn, what,
		                             DURA_MAX_ID_LEN);
	if (!dura__utf8_valid(v))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is not UTF-8", fn, what);
	return 0;
}

/* A JSON array, at most 64 KiB, of {"workflow":W,"version":V} (a worker
 * from before versions wrote names alone, which are still taken). */
static int check_workflows_json(const char *v, const char *fn)
{
	if (!v || strnlen(v, 65537) > 65536)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: workflows must be a JSON array of at most 64 KiB", fn);
	json_error_t je;
	json_t *a = json_loads(v, JSON_REJECT_DUPLICATES, &je);
	int ok = a && json_is_array(a);
	for (size_t i = 0; ok && i < json_array_size(a); i++) {
		json_t *e = json_array_get(a, i);
		ok = json_is_string(e) || (json_is_object(e) && json_is_string(json_object_get(e, "workflow")) &&
		                           json_is_string(json_object_get(e, "version")));
	}
	json_decref(a);
	return ok ? 0
	          : dura_error_set_native(DURA_EINVAL, "", 0, NULL,
	                                  "%s: workflows is not a JSON array of {\"workflow\":W,\"version\":V}", fn);
}

static int check_worker(const dura_worker_info *w, const char *fn)
{
	if (!w)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: worker is NULL", fn);
	TRY(dura__check_id(w->id, "worker id", fn));
	TRY(check_worker_text(w->id, "worker id", fn));
	TRY(check_worker_text(w->name, "name", fn));
	TRY(check_worker_text(w->host, "host", fn));
	TRY(check_workflows_json(w->workflows, fn));
	if (w->pid < 0 || w->held < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: pid %lld and held %lld must not be negative", fn,
		                             (long long)w->pid, (long long)w->held);
	if (w->threads < 1 || w->threads > DURA_WORKER_MAX_THREADS)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: threads %d is out of range (1 to %d)", fn,
		                             w->threads, DURA_WORKER_MAX_THREADS);
	if (w->lease_ms < DURA_WORKER_MIN_LEASE_MS || w->lease_ms > 86400000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: lease_ms %lld is out of range (%d to 86400000)", fn,
		                             (long long)w->lease_ms, DURA_WORKER_MIN_LEASE_MS);
	return 0;
}

int dura_store_put_worker(dura_store *s, const dura_worker_info *w)
{
	static const char fn[] = "dura_store_put_worker";
	CHECK_STORE(s);
	TRY(check_worker(w, fn));
	TRY(has_registry(s, fn));
	/* a store gets "" for absent text */
	dura_worker_info copy = *w;
	copy.name = w->name ? w->name : "";
	copy.host = w->host ? w->host : "";
	DISPATCH(s, worker_put, &copy);
}

int dura_store_delete_worker(dura_store *s, const char *worker_id)
{
	static const char fn[] = "dura_store_delete_worker";
	CHECK_STORE(s);
	TRY(dura__check_id(worker_id, "worker id", fn));
	TRY(has_registry(s, fn));
	DISPATCH(s, worker_delete, worker_id);
}

int dura_store_list_workers(dura_store *s, dura_worker_list *out)
{
	static const char fn[] = "dura_store_list_workers";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(has_registry(s, fn));
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->worker_list(s->impl, out));
	if (rc) {
		dura_worker_list_free(out);
		return rc;
	}
	if (out->now == 0)
		out->now = dura_now_ms();
	for (size_t i = 0; i < out->count; i++)
		out->items[i].dead = out->items[i].dead_after <= out->now;
	return 0;
}

int dura_store_prune_workers(dura_store *s, int64_t dead_for_ms, int64_t *count)
{
	static const char fn[] = "dura_store_prune_workers";
	int64_t local = 0;
	if (count)
		*count = 0;
	CHECK_STORE(s);
	if (dead_for_ms < 0 || dead_for_ms > INT64_C(31536000000))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: dead_for_ms %lld is out of range (0 to a year)", fn,
		                             (long long)dead_for_ms);
	TRY(has_registry(s, fn));
	DISPATCH(s, worker_prune, dead_for_ms, count ? count : &local);
}
