/*
 * store.c - the Redis store's handle: the URL's options, the schema mark,
 * what `dura info` says about durability, and the table of operations.
 *
 * Durability is the server's: an acknowledged commit survives a crash of
 * the server only with appendonly yes, appendfsync always and
 * aof-load-truncated no (see learn_server). The store reads them with
 * CONFIG GET where the server allows it, sets
 * DURA_CAP_DURABLE only when they say so, and says plainly in the notes
 * when it cannot tell (CONFIG refused by an ACL or a managed service).
 */
#include "redis.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The schema of the keys this library writes, the layout of redis.h: 1;
 * 2 adds the run's wait and parent_id, children, signals and schedules;
 * 3 adds workflow versions and retention: the run's and the step's
 * workflow_version, the registered versions ({P}:wfdefs, {P}:wfdef:<wf>)
 * and three indexes ({P}:counts:<wf>, {P}:ended:<state>[:<wf>],
 * {P}:slotruns; index.h).
 * Going from 1 to 2 converts nothing: a run written before has neither
 * field, and reads them as "" (no wait, no parent). Going to 3 puts every
 * run into the new indexes (fleet.c, dr_index_runs: in batches, each run
 * once, marked by its workflow_version field, so that a migration cut
 * short, or two at once, or commits meanwhile count no run twice); only
 * then is the namespace marked 3. A namespace of an older schema opened
 * without auto_migrate is refused, as the SQL stores refuse theirs: its
 * counts and prunes would miss the runs not indexed yet.
 * 4 adds {P}:outbox:order, every event id in a zset of score 0 (outbox.c):
 * import (contract version 7) needs the outbox in event-id order, which
 * the stream, in write order, cannot give. Going to 4 puts every event
 * already in the stream into it (outbox.c, dr_index_outbox: in batches;
 * ZADD adds an id once, so a migration cut short, or two at once, or
 * commits meanwhile, which add their own, are all right); only then is
 * the namespace marked 4. A library of schema 3 refuses a namespace of 4
 * (newer than its own): its commits would leave their events out of the
 * zset, and an export would miss them.
 * 5 adds {P}:waiting, the runs in an active state that wait (index.h): the
 * gauges (contract version 8) count them with one ZCARD. Going to 5 walks
 * every run (fleet.c, dr_index_waiting: in batches; each run goes in or
 * out as it is, so a migration cut short, or two at once, or commits
 * meanwhile are all right); only then is the namespace marked 5, which a
 * library of schema 4 refuses: its commits would not keep the index. */
#define DR_SCHEMA_VERSION 5

static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;

static void note(dr_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->notes, sizeof(s->notes), fmt, arg);
}

/* A note about the URL, which every later info keeps. */
static void open_note(dr_store *s, const char *fmt, const char *arg)
{
	dura_store_note(s->open_notes, sizeof(s->open_notes), fmt, arg);
}

static int bool_option(const dura_url *url, const char *name, int *out)
{
	const char *v = dura_url_param(url, name);
	if (!v)
		return 0;
	if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0)
		*out = 1;
	else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0)
		*out = 0;
	else
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "URL option %s='%.40s' is not 0 or 1", name, v);
	return 0;
}

static int config_of(dr_store *s, const dura_url *url, dr_client_config *cfg)
{
	/* conn_lifetime and conn_idle_time are not among them: a Redis
	 * connection has no server-side state to renew, so the pool keeps its
	 * connections until one breaks, and dura info says the options are unused */
	static const char *const known[] = {"prefix",   "pool_max", "pool_idle", "connect_timeout",
	                                    "timeout",  "tls_ca",   "tls_cert",  "tls_key",
	                                    "tls_insecure_skip_verify", "socket", "retry_time",
	                                    "max_state", "max_value"};
	memset(cfg, 0, sizeof(*cfg));
	cfg->socket = url->socket && *url->socket ? url->socket : dura_url_param(url, "socket");
	if (!cfg->socket)
		cfg->socket = "";
	cfg->host = url->host && *url->host ? url->host : "127.0.0.1";
	cfg->port = url->port;
	cfg->user = url->user ? url->user : "";
	cfg->password = url->password ? url->password : "";
	cfg->tls = url->tls;
	cfg->tls_ca = dura_url_param(url, "tls_ca");
	cfg->tls_cert = dura_url_param(url, "tls_cert");
	cfg->tls_key = dura_url_param(url, "tls_key");
	if (!cfg->tls_ca)
		cfg->tls_ca = "";
	if (!cfg->tls_cert)
		cfg->tls_cert = "";
	if (!cfg->tls_key)
		cfg->tls_key = "";
	int rc = bool_option(url, "tls_insecure_skip_verify", &cfg->tls_skip_verify);
	if (rc)
		return rc;
	if (!cfg->tls && (*cfg->tls_ca || *cfg->tls_cert || cfg->tls_skip_verify))
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
		                             "TLS options given for a redis:// URL: use rediss:// for TLS");
	if (cfg->tls_skip_verify)
		open_note(s, "%s", "tls_insecure_skip_verify=1: the server's certificate is NOT checked; anyone on the path can "
		              "pose as the server");
	const char *db = url->database && *url->database ? url->database : "0";
	char *end;
	long n = strtol(db, &end, 10);
	if (*end || n < 0 || n > 1000000)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "Redis database '%.40s' is not a number", db);
	cfg->db = (int)n;
	cfg->connect_timeout_ms = url->connect_timeout_ms;
	cfg->timeout_ms = url->timeout_ms;
	cfg->pool_max = url->pool_max;
	cfg->pool_idle = url->pool_idle;
	const char *rt = dura_url_param(url, "retry_time");
	if (rt) {
		long long v = strtoll(rt, &end, 10);
		if (*end || v < 0 || v > 3600000)
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
			                             "URL option retry_time='%.40s' is not milliseconds (0 to 3600000)", rt);
		cfg->retry_ms = v;
	}
	for (size_t i = 0; i < url->nparams; i++) {
		int k = 0;
		for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			k |= strcmp(url->param_names[i], known[j]) == 0;
		if (!k)
			open_note(s, "URL option %s is not used by the Redis store", url->param_names[i]);
	}
	return 0;
}

/* The value of field `name` in an INFO answer, into buf. */
static int info_field(const char *info, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);
	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			size_t l = strcspn(p + n + 1, "\r\n");
			snprintf(buf, size, "%.*s", (int)l, p + n + 1);
			return 0;
		}
	}
	return -1;
}

/* CONFIG GET name into buf; -1 when the server refuses or lacks it. */
static int config_get(dr_store *s, const char *name, char *buf, size_t size)
{
	redisReply *r;
	if (dr_commandv(s->client, DR_IDEMPOTENT, &r, "CONFIG", "GET", name, NULL) != 0)
		return -1;
	int rc = -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
		snprintf(buf, size, "%s", r->element[1]->str);
		rc = 0;
	}
	freeReplyObject(r);
	return rc;
}

/* Server version, cluster or not, and what durability the server gives. */
static int learn_server(dr_store *s)
{
	redisReply *r;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "INFO", "server", NULL);
	if (rc)
		return rc;
	char v[48] = "?";
	if (r->type == REDIS_REPLY_STRING)
		info_field(r->str, "redis_version", v, sizeof(v));
	freeReplyObject(r);
	snprintf(s->server_version, sizeof(s->server_version), "Redis %s%s", v,
	         dr_client_is_cluster(s->client) ? " (cluster)" : "");
	char aof[16], fsync[16];
	snprintf(s->notes, sizeof(s->notes), "%s", s->open_notes);
	s->caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_NOTIFY;
	if (config_get(s, "appendonly", aof, sizeof(aof)) != 0 || config_get(s, "appendfsync", fsync, sizeof(fsync)) != 0) {
		note(s, "%s", "durability unknown: the server refused CONFIG GET appendonly/appendfsync, so dura cannot "
		              "tell whether an acknowledged commit survives a server crash");
	} else if (strcmp(aof, "yes") == 0 && strcmp(fsync, "always") == 0) {
		/* With aof-load-truncated yes, a server that died while writing
		 * a script's MULTI/EXEC block cuts the file after the block's last
		 * whole command instead of before its MULTI (Redis 7.0; Valkey
		 * fixed it in 2026): the next start ignores the half block, but
		 * the start after that runs it with the next EXEC, so a commit
		 * that was never acknowledged, and then sent again, is there
		 * twice (its step appended twice), and writes made between the
		 * two restarts can be dropped. "no" stops the server at a torn
		 * tail instead, for redis-check-aof --fix, which cuts before the
		 * MULTI. */
		char trunc[16];
		if (config_get(s, "aof-load-truncated", trunc, sizeof(trunc)) == 0 && strcmp(trunc, "no") != 0) {
			note(s, "%s", "appendonly yes, appendfsync always, but aof-load-truncated yes: after a crash in the "
			              "middle of writing a commit, the server keeps half of it, a later restart replays that "
			              "half (a step twice) and can drop the commits made in between; set aof-load-truncated "
			              "no and repair a torn file with redis-check-aof --fix");
		} else {
			s->caps |= DURA_CAP_DURABLE;
			note(s, "%s", "appendonly yes, appendfsync always, aof-load-truncated no: an acknowledged commit "
			              "survives a server crash");
		}
	} else if (strcmp(aof, "yes") == 0) {
		char buf[200];
		snprintf(buf, sizeof(buf),
		         "appendonly yes, appendfsync %s: a server crash can lose the commits of about the last second "
		         "(appendfsync always keeps them)",
		         fsync);
		note(s, "%s", buf);
	} else {
		note(s, "%s", "appendonly no: a server crash loses every commit since the last snapshot (set appendonly "
		              "yes and appendfsync always to keep them)");
	}
	return 0;
}

/* ---- the schema mark ---------------------------------------------------- */

static int schema_read(dr_store *s, int *version)
{
	char key[64];
	dr_key(s, key, sizeof(key), "schema", NULL);
	redisReply *r;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "HGET", key, "version", NULL);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "Redis HGET %s: %s", key, r->str);
	else
		*version = (int)dr_int(r);
	freeReplyObject(r);
	return rc;
}

static int check_version(const dr_store *s, int v)
{
	if (v > DR_SCHEMA_VERSION)
		return dura_error_set_native(DURA_EVERSION, DR_STORE, 0, NULL,
		                             "the keys under %s are of schema version %d, newer than this library's %d: "
		                             "upgrade dura",
		                             s->prefix, v, DR_SCHEMA_VERSION);
	return 0;
}

static dr_script migrate_script = DR_SCRIPT("migrate",
	"local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')\n"
	"if v > tonumber(ARGV[3]) then return {-11, 'the keys are of a newer schema version '..v} end\n"
	"if v < tonumber(ARGV[3]) then\n"
	"  redis.call('HSET', KEYS[1], 'version', ARGV[3], 'applied_at', ARGV[2], 'description', ARGV[4])\n"
	"end\n"
	"return {0, v, tonumber(ARGV[3])}\n");

static int dr_migrate(void *impl, int *from, int *to)
{
	dr_store *s = impl;
	char key[64], v[12];
	dr_key(s, key, sizeof(key), "schema", NULL);
	snprintf(v, sizeof(v), "%d", DR_SCHEMA_VERSION);
	const char *argv[] = {v, "the key layout of runs, steps, indexes, checkpoints, cache, outbox, workers, signals, "
	                         "schedules, workflow versions and retention, the outbox in id order, the runs that "
	                         "wait"};
	int cur = 0;
	int rc = schema_read(s, &cur);
	if (rc == 0)
		rc = check_version(s, cur);
	if (rc == 0 && cur < 3)
		rc = dr_index_runs(s);
	if (rc == 0 && cur < 4)
		rc = dr_index_outbox(s);
	if (rc == 0 && cur < 5)
		rc = dr_index_waiting(s);
	if (rc)
		return rc;
	redisReply *r;
	rc = dr_run(s, &migrate_script, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL);
	if (rc)
		return rc;
	if (from)
		*from = (int)dr_int(r->element[1]);
	if (to)
		*to = (int)dr_int(r->element[2]);
	s->schema_version = (int)dr_int(r->element[2]);
	freeReplyObject(r);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

static void store_free(dr_store *s)
{
	if (!s)
		return;
	if (s->client)
		dr_client_close(s->client);
	dura_free(s);
}

static int dr_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	*impl = NULL;
	dr_store *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(DR_STORE);
	const char *prefix = url->prefix && *url->prefix ? url->prefix : "dura";
	int n = snprintf(s->prefix, sizeof(s->prefix), "{%s}:", prefix);
	s->prefix_len = (size_t)n;
	dr_client_config cfg;
	int rc = config_of(s, url, &cfg);
	if (rc == 0)
		rc = dr_client_open(&s->client, &cfg);
	if (rc == 0)
		rc = learn_server(s);
	int v = 0;
	if (rc == 0)
		rc = schema_read(s, &v);
	if (rc == 0)
		rc = check_version(s, v);
	if (rc == 0 && v < DR_SCHEMA_VERSION && !(opts && !opts->auto_migrate))
		rc = dr_migrate(s, NULL, &v);
	else if (rc == 0 && v == 0)
		rc = dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL,
		                           "no dura keys under %s in this Redis database: run `dura init` first", s->prefix);
	else if (rc == 0 && v < DR_SCHEMA_VERSION)
		rc = dura_error_set_native(DURA_EVERSION, DR_STORE, 0, NULL,
		                           "the keys under %s are of schema version %d, older than this library's %d: run "
		                           "`dura init` to upgrade them",
		                           s->prefix, v, DR_SCHEMA_VERSION);
	if (rc) {
		store_free(s);
		return rc;
	}
	s->schema_version = v;
	*impl = s;
	return 0;
}

static void dr_close(void *impl)
{
	store_free(impl);
}

static void dr_atfork_child(void *impl)
{
	dr_client_atfork_child(((dr_store *)impl)->client);
}

static int dr_ping(void *impl)
{
	dr_store *s = impl;
	redisReply *r;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "PING", NULL);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "Redis PING: %s", r->str);
	freeReplyObject(r);
	return rc;
}

static int dr_info(void *impl, dura_store_info *out)
{
	dr_store *s = impl;
	int v = 0;
	int rc = schema_read(s, &v);
	if (rc)
		return rc;
	/* the durability may have changed (CONFIG SET): look again */
	pthread_mutex_lock(&info_lock);
	rc = learn_server(s);
	pthread_mutex_unlock(&info_lock);
	if (rc)
		return rc;
	out->server_version = s->server_version;
	out->schema_version = v;
	out->library_schema_version = DR_SCHEMA_VERSION;
	out->caps = s->caps;
	out->notes = s->notes;
	return 0;
}

static int dr_stats(void *impl, dura_store_stats *out)
{
	dr_client_stats(((dr_store *)impl)->client, out);
	return 0;
}

static int dr_exec_sql(void *impl, const char *sql, dura_row_cb cb, void *payload)
{
	(void)impl, (void)sql, (void)cb, (void)payload;
	return dura_error_set_native(DURA_ENOTSUP, DR_STORE, 0, NULL,
	                             "the Redis store runs no SQL: its data are Redis keys (see `redis-cli --scan "
	                             "--pattern '{dura}:*'`)");
}

const dura_store_ops dura__redis_ops = {
	.version = 8,
	.scheme = "redis",
	.caps = DURA_CAP_MULTI_PROCESS | DURA_CAP_NOTIFY,
	.open = dr_open,
	.close = dr_close,
	.ping = dr_ping,
	.info = dr_info,
	.stats = dr_stats,
	.migrate = dr_migrate,
	.create_run = dr_create_run,
	.get_run = dr_get_run,
	.latest_run = dr_latest_run,
	.list_runs = dr_list_runs,
	.set_run_state = dr_set_run_state,
	.delete_run_data = dr_delete_run_data,
	.commit = dr_commit,
	.commit_batch = dr_commit_batch,
	.history = dr_history,
	.get_step = dr_get_step,
	.load_latest = dr_load_latest,
	.checkpoint_save = dr_checkpoint_save,
	.checkpoint_load = dr_checkpoint_load,
	.checkpoint_list = dr_checkpoint_list,
	.checkpoint_delete = dr_checkpoint_delete,
	.cache_get = dr_cache_get,
	.cache_put = dr_cache_put,
	.cache_claim = dr_cache_claim,
	.cache_release = dr_cache_release,
	.cache_delete = dr_cache_delete,
	.cache_purge_expired = dr_cache_purge_expired,
	.cache_list = dr_cache_list,
	.cache_stats = dr_cache_stats,
	.claim_runs = dr_claim_runs,
	.extend_lease = dr_extend_lease,
	.release_lease = dr_release_lease,
	.outbox_poll = dr_outbox_poll,
	.outbox_ack = dr_outbox_ack,
	.exec_sql = dr_exec_sql,
	.wait_change = dr_wait_change,
	.atfork_child = dr_atfork_child,
	.extend_leases = dr_extend_leases,
	.wait_ready = dr_wait_ready,
	.claim = dr_claim,
	.worker_put = dr_worker_put,
	.worker_delete = dr_worker_delete,
	.worker_list = dr_worker_list,
	.worker_prune = dr_worker_prune,
	.signal_send = dr_signal_send,
	.signal_next = dr_signal_next,
	.signal_list = dr_signal_list,
	.wake = dr_wake,
	.schedule_put = dr_schedule_put,
	.schedule_get = dr_schedule_get,
	.schedule_delete = dr_schedule_delete,
	.schedule_list = dr_schedule_list,
	.schedule_advance = dr_schedule_advance,
	.workflow_put = dr_workflow_put,
	.workflow_list = dr_workflow_list,
	.run_counts = dr_run_counts,
	.set_run_version = dr_set_run_version,
	.prune_runs = dr_prune_runs,
	.outbox_prune = dr_outbox_prune,
	.import_run = dr_import_run,
	.import_event = dr_outbox_import,
	.outbox_list = dr_outbox_list,
	/* version 8 */
	.gauges = dr_gauges,
};
