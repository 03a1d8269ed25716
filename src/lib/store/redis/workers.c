/*
 * workers.c - the Redis store's worker registry: a hash {P}:worker:<id>
 * per row and the index {P}:workers (ids, score = started_at), whose
 * order - score, then id byte by byte - is worker_list's. Times are the
 * calling process's clock (the scripts' ARGV[2]), as for leases.
 *
 * A registry holds a few rows per worker process, so list and prune
 * read the whole index in one script.
 */
#include "redis.h"

#include <stdio.h>
#include <string.h>

/*
 * ARGV[3] = id, [4] = name, [5] = host, [6] = pid, [7] = threads,
 * [8] = lease_ms, [9] = workflows, [10] = held. started_at is kept on
 * replace. Idempotent: a replay is one more heartbeat.
 */
static dr_script put_script = DR_SCRIPT("worker_put",
	"local started = redis.call('HGET', KEYS[1], 'started_at') or ARGV[2]\n"
	"redis.call('EXISTS', ARGV[1] .. 'workers')\n"
	"redis.call('HSET', KEYS[1], 'id', ARGV[3], 'name', ARGV[4], 'host', ARGV[5], 'pid', ARGV[6],\n"
	"  'threads', ARGV[7], 'lease_ms', ARGV[8], 'workflows', ARGV[9], 'held', ARGV[10],\n"
	"  'started_at', started, 'heartbeat_at', ARGV[2], 'dead_after', tonumber(ARGV[2]) + tonumber(ARGV[8]))\n"
	"redis.call('ZADD', ARGV[1] .. 'workers', started, ARGV[3])\n"
	"return {0}\n");

/* ARGV[3] = id. */
static dr_script delete_script = DR_SCRIPT("worker_delete",
	"redis.call('EXISTS', KEYS[1], ARGV[1] .. 'workers')\n"
	"redis.call('ZREM', ARGV[1] .. 'workers', ARGV[3])\n"
	"if redis.call('DEL', KEYS[1]) == 0 then\n"
	"  return {-2, 'worker ' .. ARGV[3] .. ' is not registered'} -- DURA_ENOTFOUND\n"
	"end\n"
	"return {0}\n");

/* KEYS[1] = {P}:workers. Answers {0, now, then each row's fields in the
 * HMGET's order}, oldest started_at first, then id. Read-only. */
#define WORKER_NFIELDS 11
static dr_script list_script = DR_SCRIPT("worker_list",
	"local out = {0, tonumber(ARGV[2])}\n"
	"for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local h = redis.call('HMGET', ARGV[1] .. 'worker:' .. id, 'id', 'name', 'host', 'pid', 'threads',\n"
	"    'lease_ms', 'workflows', 'held', 'started_at', 'heartbeat_at', 'dead_after')\n"
	"  if h[1] then\n"
	"    for i = 1, 11 do out[#out + 1] = h[i] end\n"
	"  end\n"
	"end\n"
	"return out\n");

/* KEYS[1] = {P}:workers, ARGV[3] = dead_for_ms. Answers {0, count}. A
 * replay deletes what is left, so it is retried (the count may then miss
 * what the lost attempt deleted). An index entry without its row goes
 * too, uncounted. */
static dr_script prune_script = DR_SCRIPT("worker_prune",
	"local now, n = tonumber(ARGV[2]), 0\n"
	"for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local hk = ARGV[1] .. 'worker:' .. id\n"
	"  local d = redis.call('HGET', hk, 'dead_after')\n"
	"  if not d then\n"
	"    redis.call('ZREM', KEYS[1], id)\n"
	"  elseif tonumber(d) + tonumber(ARGV[3]) <= now then\n"
	"    redis.call('DEL', hk)\n"
	"    redis.call('ZREM', KEYS[1], id)\n"
	"    n = n + 1\n"
	"  end\n"
	"end\n"
	"return {0, n}\n");

static int key_error(const dr_store *s)
{
	return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "a key of prefix %s is too long", s->prefix);
}

int dr_worker_put(void *impl, const dura_worker_info *w)
{
	dr_store *s = impl;
	char key[384], pid[24], threads[24], lease[24], held[24];
	if (dr_key(s, key, sizeof(key), "worker", w->id) != 0)
		return key_error(s);
	snprintf(pid, sizeof(pid), "%lld", (long long)w->pid);
	snprintf(threads, sizeof(threads), "%d", w->threads);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->lease_ms);
	snprintf(held, sizeof(held), "%lld", (long long)w->held);
	const char *argv[] = {w->id, w->name ? w->name : "", w->host ? w->host : "", pid, threads, lease,
	                      w->workflows ? w->workflows : "[]", held};
	redisReply *r = NULL;
	int rc = dr_run(s, &put_script, DR_IDEMPOTENT, &r, NULL, key, 8, argv, NULL);
	freeReplyObject(r);
	return rc;
}

/*
 * Not retried blindly after a lost connection (the replay would answer
 * DURA_ENOTFOUND for a delete that worked); when the outcome is unknown
 * it runs again, and a miss then means the first one did it.
 */
int dr_worker_delete(void *impl, const char *worker_id)
{
	dr_store *s = impl;
	char key[384];
	if (dr_key(s, key, sizeof(key), "worker", worker_id) != 0)
		return key_error(s);
	const char *argv[] = {worker_id};
	return dr_run_delete(s, &delete_script, key, 1, argv);
}

/* f: the WORKER_NFIELDS fields of a row, as list_script answers them. */
static int decode_worker(redisReply *const *f, dura_worker_info *w)
{
	memset(w, 0, sizeof(*w));
	w->id = dr_strdup_reply(f[0]);
	w->name = dr_strdup_reply(f[1]);
	w->host = dr_strdup_reply(f[2]);
	w->workflows = dr_strdup_reply(f[6]);
	if (!w->id || !w->name || !w->host || !w->workflows) {
		dura_worker_info_clear(w);
		return dura_error_oom(DR_STORE);
	}
	w->pid = dr_int(f[3]);
	w->threads = (int)dr_int(f[4]);
	w->lease_ms = dr_int(f[5]);
	w->held = dr_int(f[7]);
	w->started_at = dr_int(f[8]);
	w->heartbeat_at = dr_int(f[9]);
	w->dead_after = dr_int(f[10]);
	return 0;
}

int dr_worker_list(void *impl, dura_worker_list *out)
{
	dr_store *s = impl;
	char key[64];
	if (dr_key(s, key, sizeof(key), "workers", NULL) != 0)
		return key_error(s);
	redisReply *r = NULL;
	int rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 0, NULL, NULL);
	if (rc)
		return rc;
	if (r->elements < 2) {
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script worker_list answered %zu elements",
		                           r->elements);
		freeReplyObject(r);
		return rc;
	}
	size_t n = (r->elements - 2) / WORKER_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items)))) {
		freeReplyObject(r);
		return dura_error_oom(DR_STORE);
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = decode_worker(r->element + 2 + i * WORKER_NFIELDS, &out->items[i])) != 0) {
			dura_worker_list_free(out);
			break;
		}
		out->count++;
	}
	if (rc == 0)
		out->now = dr_int(r->element[1]);
	freeReplyObject(r);
	return rc;
}

int dr_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	dr_store *s = impl;
	char key[64], dead_for[24];
	if (dr_key(s, key, sizeof(key), "workers", NULL) != 0)
		return key_error(s);
	snprintf(dead_for, sizeof(dead_for), "%lld", (long long)dead_for_ms);
	const char *argv[] = {dead_for};
	redisReply *r = NULL;
	int rc = dr_run(s, &prune_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL);
	if (rc)
		return rc;
	if (count)
		*count = r->elements > 1 ? dr_int(r->element[1]) : 0;
	freeReplyObject(r);
	return 0;
}
