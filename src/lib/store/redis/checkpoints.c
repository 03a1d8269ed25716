/*
 * checkpoints.c - the Redis store's checkpoints: a hash {P}:cp:<id> each,
 * indexed by updated_at in {P}:cps (all) and {P}:cps:<run_id> (the run's,
 * which delete_run_data empties). Every operation is one script, so the
 * hash and both indexes never disagree.
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fields a checkpoint comes back with, after its id. */
#define CP_NFIELDS 6

/*
 * ARGV[3] = id, [4] = run_id, [5] = step, [6] = state. An upsert: a
 * replay after a lost connection writes the same again (created_at kept,
 * updated_at later), so it is retried as idempotent. A checkpoint moved
 * to another run leaves the old run's index.
 */
static dr_script save_script = DR_SCRIPT("checkpoint_save",
	"local old = redis.call('HGET', KEYS[1], 'run_id')\n"
	"redis.call('EXISTS', ARGV[1] .. 'cps', ARGV[1] .. 'cps:' .. ARGV[4], ARGV[1] .. 'cps:' .. (old or ARGV[4]))\n"
	"if old and old ~= ARGV[4] then redis.call('ZREM', ARGV[1] .. 'cps:' .. old, ARGV[3]) end\n"
	"if not old then redis.call('HSET', KEYS[1], 'created_at', ARGV[2]) end\n"
	"redis.call('HSET', KEYS[1], 'run_id', ARGV[4], 'step', ARGV[5], 'state', ARGV[6], 'updated_at', ARGV[2])\n"
	"redis.call('ZADD', ARGV[1] .. 'cps', ARGV[2], ARGV[3])\n"
	"redis.call('ZADD', ARGV[1] .. 'cps:' .. ARGV[4], ARGV[2], ARGV[3])\n"
	"return {0}\n");

/* ARGV[3] = id. Read-only. */
static dr_script load_script = DR_SCRIPT("checkpoint_load",
	"local h = redis.call('HMGET', KEYS[1], 'run_id', 'step', 'state', 'created_at', 'updated_at')\n"
	"if not h[1] then return {-2, 'checkpoint ' .. ARGV[3] .. ' does not exist'} end -- DURA_ENOTFOUND\n"
	"return {0, ARGV[3], h[1], h[2], h[3], h[4], h[5]}\n");

/*
 * KEYS[1] = {P}:cps or {P}:cps:<run_id>; ARGV[3] = the run id or "" for
 * all. Read-only. The order is made in C: Lua compares strings with
 * strcoll, not byte by byte. The contract has no paging here, so this
 * reads the whole index at once: a run keeps a handful of checkpoints.
 */
static dr_script list_script = DR_SCRIPT("checkpoint_list",
	"local out = {0}\n"
	"for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local h = redis.call('HMGET', ARGV[1] .. 'cp:' .. id, 'run_id', 'step', 'state', 'created_at', 'updated_at')\n"
	"  if h[1] and (ARGV[3] == '' or h[1] == ARGV[3]) then\n"
	"    out[#out + 1] = id\n"
	"    for i = 1, 5 do out[#out + 1] = h[i] end\n"
	"  end\n"
	"end\n"
	"return out\n");

/* ARGV[3] = id. */
static dr_script delete_script = DR_SCRIPT("checkpoint_delete",
	"local run = redis.call('HGET', KEYS[1], 'run_id')\n"
	"if not run then return {-2, 'checkpoint ' .. ARGV[3] .. ' does not exist'} end -- DURA_ENOTFOUND\n"
	"redis.call('EXISTS', ARGV[1] .. 'cps', ARGV[1] .. 'cps:' .. run)\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('ZREM', ARGV[1] .. 'cps', ARGV[3])\n"
	"redis.call('ZREM', ARGV[1] .. 'cps:' .. run, ARGV[3])\n"
	"return {0}\n");

static int key_error(const dr_store *s)
{
	return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "a key of prefix %s is too long", s->prefix);
}

/* f: id, run_id, step, state, created_at, updated_at. */
static int decode_checkpoint(redisReply *const *f, dura_checkpoint *o)
{
	memset(o, 0, sizeof(*o));
	o->checkpoint_id = dr_strdup_reply(f[0]);
	o->run_id = dr_strdup_reply(f[1]);
	o->state = dr_strdup_reply(f[3]);
	if (!o->checkpoint_id || !o->run_id || !o->state) {
		dura_checkpoint_clear(o);
		return dura_error_oom(DR_STORE);
	}
	o->step = dr_int(f[2]);
	o->created_at = dr_int(f[4]);
	o->updated_at = dr_int(f[5]);
	return 0;
}

int dr_checkpoint_save(void *impl, const char *checkpoint_id, const char *run_id, int64_t step, const char *state)
{
	dr_store *s = impl;
	char key[384], st[24];
	if (dr_key(s, key, sizeof(key), "cp", checkpoint_id) != 0)
		return key_error(s);
	snprintf(st, sizeof(st), "%lld", (long long)step);
	const char *argv[] = {checkpoint_id, run_id, st, state};
	redisReply *r = NULL;
	int rc = dr_run(s, &save_script, DR_IDEMPOTENT, &r, NULL, key, 4, argv, NULL);
	freeReplyObject(r);
	return rc;
}

int dr_checkpoint_load(void *impl, const char *checkpoint_id, dura_checkpoint **out)
{
	dr_store *s = impl;
	char key[384];
	if (dr_key(s, key, sizeof(key), "cp", checkpoint_id) != 0)
		return key_error(s);
	const char *argv[] = {checkpoint_id};
	redisReply *r = NULL;
	int rc = dr_run(s, &load_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL);
	if (rc)
		return rc;
	dura_checkpoint *cp = NULL;
	if (r->elements < 1 + CP_NFIELDS)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "checkpoint_load answered %zu elements", r->elements);
	else if (!(cp = dura_calloc(1, sizeof(*cp))))
		rc = dura_error_oom(DR_STORE);
	else if ((rc = decode_checkpoint(r->element + 1, cp)) != 0)
		dura_free(cp);
	else
		*out = cp;
	freeReplyObject(r);
	return rc;
}

/* Newest first: updated_at descending, then checkpoint id (as memory/steps.c). */
static int newest_first(const void *a, const void *b)
{
	const dura_checkpoint *x = a, *y = b;
	if (x->updated_at != y->updated_at)
		return x->updated_at > y->updated_at ? -1 : 1;
	return strcmp(x->checkpoint_id, y->checkpoint_id);
}

int dr_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	dr_store *s = impl;
	char key[384];
	if (dr_key(s, key, sizeof(key), "cps", run_id) != 0)
		return key_error(s);
	const char *argv[] = {run_id ? run_id : ""};
	redisReply *r = NULL;
	int rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL);
	if (rc)
		return rc;
	size_t n = (r->elements - 1) / CP_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items)))) {
		freeReplyObject(r);
		return dura_error_oom(DR_STORE);
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = decode_checkpoint(r->element + 1 + i * CP_NFIELDS, &out->items[i])) != 0) {
			dura_checkpoint_list_free(out);
			break;
		}
		out->count++;
	}
	freeReplyObject(r);
	if (rc == 0 && out->count > 1)
		qsort(out->items, out->count, sizeof(*out->items), newest_first);
	return rc;
}

/*
 * Not retried blindly after a lost connection (a replay would find it
 * gone: DURA_ENOTFOUND for a delete that worked); when the outcome is
 * unknown it runs again, and a miss then means the first one did it.
 */
int dr_checkpoint_delete(void *impl, const char *checkpoint_id)
{
	dr_store *s = impl;
	char key[384];
	if (dr_key(s, key, sizeof(key), "cp", checkpoint_id) != 0)
		return key_error(s);
	const char *argv[] = {checkpoint_id};
	return dr_run_delete(s, &delete_script, key, 1, argv);
}
