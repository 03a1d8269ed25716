/*
 * signals.c - a run's signal inbox and the wake of a waiting run
 * (contract version 5, docs/store-contract.md "Waiting").
 *
 * A signal is a hash {P}:signal:<signal_id>; the run's inbox is two zsets
 * of score 0 beside it: {P}:signals:<run_id> holds the signal ids, whose
 * byte order is the order they were sent in (UUIDv7), and
 * {P}:signalnames:<run_id> holds "<name>\0<signal_id>", so that the
 * oldest signal of one name is a single ZRANGEBYLEX (a name has no
 * control character, so the NUL ends it). Sending is one script with the
 * run's hash: the run's state is checked, the signal added and the run
 * woken if it waits for that name, all in one step of the server, so a
 * signal is never lost between a sender and a run starting to wait. A
 * commit consumes a signal in its own script (commit.c); erasing a run's
 * data erases its inbox (index.h, erase).
 */
#include "index.h"

#include <stdio.h>
#include <string.h>

#define SIGNAL_NFIELDS 5
#define LUA_SIGNAL_FIELDS "'signal_id', 'run_id', 'name', 'payload', 'created_at'"

/* KEYS[1] = the run's hash; ARGV[3] = signal id, [4] = run id, [5] = name,
 * [6] = payload. {0, woken}. A replay of a send that went in (the signal
 * is there) does nothing and answers 0, so the call is retried. */
static dr_script send_script = DR_SCRIPT("signal_send", DR_LUA_INDEX
	"local k, P, now = KEYS[1], ARGV[1], ARGV[2]\n"
	"local sid, id, name = ARGV[3], ARGV[4], ARGV[5]\n"
	"local f = redis.call('HMGET', k, 'run_state', 'wait', 'workflow_name', 'priority')\n"
	"if not f[1] then return {-2, 'no run '..id} end\n"
	"local sk = P..'signal:'..sid\n"
	"if redis.call('EXISTS', sk) == 1 then return {0, 0} end\n"
	"local st = tonumber(f[1])\n"
	"local ended = {[3] = 'completed', [5] = 'cancelled', [6] = 'data_deleted', [7] = 'failed'}\n"
	"if ended[st] then\n"
	"  return {-4, 'run '..id..' is '..ended[st]..': it takes no more signals'}\n"
	"end\n"
	"local w = 'signal:'..name\n"
	"local wakes = st == RUNNING and (f[2] or '') == w\n"
	"touch(P..'signals:'..id, P..'signalnames:'..id)\n"
	"if wakes then touch_run(P, id, f[3], tonumber(f[4]) or 0) end\n"
	"redis.call('HSET', sk, 'signal_id', sid, 'run_id', id, 'name', name, 'payload', ARGV[6], 'created_at', now)\n"
	"redis.call('ZADD', P..'signals:'..id, 0, sid)\n"
	"redis.call('ZADD', P..'signalnames:'..id, 0, name..'\\0'..sid)\n"
	"if wakes then wake_run(P, id, w, now); return {0, 1} end\n"
	"return {0, 0}\n");

/* KEYS[1] = {P}:signalnames:<run>; ARGV[3] = name, [4] = run id. Read only. */
static dr_script next_script = DR_SCRIPT("signal_next",
	"local name = ARGV[3]\n"
	"local m = redis.call('ZRANGEBYLEX', KEYS[1], '['..name..'\\0', '('..name..'\\1', 'LIMIT', 0, 1)\n"
	"if #m == 1 then\n"
	"  local h = redis.call('HMGET', ARGV[1]..'signal:'..string.sub(m[1], #name + 2), " LUA_SIGNAL_FIELDS ")\n"
	"  if h[1] then return {0, unpack(h)} end\n"
	"end\n"
	"return {-2, 'run '..ARGV[4]..' has no signal named '..name}\n");

/* KEYS[1] = {P}:signals:<run>. {0, fields...} oldest first. Read only. */
static dr_script list_script = DR_SCRIPT("signal_list",
	"local out = {0}\n"
	"for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local h = redis.call('HMGET', ARGV[1]..'signal:'..sid, " LUA_SIGNAL_FIELDS ")\n"
	"  if h[1] then for i = 1, 5 do out[#out + 1] = h[i] end end\n"
	"end\n"
	"return out\n");

/* KEYS[1] = the run's hash; ARGV[3] = run id, [4] = wait. {0, version}. */
static dr_script wake_script = DR_SCRIPT("wake", DR_LUA_INDEX
	"local P, id, w = ARGV[1], ARGV[3], ARGV[4]\n"
	"touch_wake(P, id)\n"
	"local v = wake_run(P, id, w, ARGV[2])\n"
	"if not v then return {-2, 'run '..id..' is not a running run waiting for '..w} end\n"
	"return {0, v}\n");

static int key_of(const dr_store *s, char *buf, size_t size, const char *kind, const char *id)
{
	if (dr_key(s, buf, size, kind, id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "id too long for a Redis key: %s", id);
	return 0;
}

static int signal_decode(redisReply *const *f, dura_signal *out)
{
	memset(out, 0, sizeof(*out));
	out->signal_id = dr_strdup_reply(f[0]);
	out->run_id = dr_strdup_reply(f[1]);
	out->name = dr_strdup_reply(f[2]);
	out->payload = dr_strdup_reply(f[3]);
	out->created_at = dr_int(f[4]);
	if (!out->signal_id || !out->run_id || !out->name || !out->payload) {
		dura_signal_clear(out);
		return dura_error_oom(DR_STORE);
	}
	return 0;
}

int dr_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	dr_store *s = impl;
	char key[320];
	int rc = key_of(s, key, sizeof(key), "run", run_id);
	if (rc)
		return rc;
	const char *argv[] = {signal_id, run_id, name, payload};
	redisReply *r = NULL;
	rc = dr_run(s, &send_script, DR_IDEMPOTENT, &r, NULL, key, 4, argv, NULL);
	freeReplyObject(r);
	return rc;
}

int dr_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	dr_store *s = impl;
	char key[320];
	int rc = key_of(s, key, sizeof(key), "signalnames", run_id);
	if (rc)
		return rc;
	const char *argv[] = {name, run_id};
	redisReply *r = NULL;
	if ((rc = dr_run(s, &next_script, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL)) != 0)
		return rc;
	if (r->elements < 1 + SIGNAL_NFIELDS) {
		freeReplyObject(r);
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis signal came back incomplete");
	}
	dura_signal *sig = dura_malloc(sizeof(*sig));
	if (!sig)
		rc = dura_error_oom(DR_STORE);
	else if ((rc = signal_decode(r->element + 1, sig)) != 0)
		dura_free(sig);
	else
		*out = sig;
	freeReplyObject(r);
	return rc;
}

int dr_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	dr_store *s = impl;
	char key[320];
	int rc = key_of(s, key, sizeof(key), "signals", run_id);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	redisReply *r = NULL;
	if ((rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 0, NULL, NULL)) != 0)
		return rc;
	size_t n = (r->elements - 1) / SIGNAL_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		rc = dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = signal_decode(r->element + 1 + i * SIGNAL_NFIELDS, &out->items[i])) == 0)
			out->count++;
	freeReplyObject(r);
	if (rc)
		dura_signal_list_free(out);
	return rc;
}

/* A replay after a lost connection wakes once more (the wait is left as
 * it is): one more version, which a waiting run does not mind. */
int dr_wake(void *impl, const char *run_id, const char *wait)
{
	dr_store *s = impl;
	char key[320];
	int rc = key_of(s, key, sizeof(key), "run", run_id);
	if (rc)
		return rc;
	const char *argv[] = {run_id, wait};
	redisReply *r = NULL;
	rc = dr_run(s, &wake_script, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL);
	freeReplyObject(r);
	return rc;
}
