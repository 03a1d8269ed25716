/*
 * schedules.c - the stored schedules (contract version 5): a hash
 * {P}:schedule:<name> per schedule and the index {P}:schedules, the names
 * with score 0, whose order (byte by byte) is schedule_list's. The core
 * computes every next tick; the store keeps them and moves one forward
 * only from the tick it was at (schedule_advance, a compare-and-set), so
 * that of several workers seeing the same tick due exactly one fires it.
 * Times are the calling process's clock (the scripts' ARGV[2]).
 *
 * Numbers are passed to Redis as the text C formatted: a tick may be as
 * late as 253402300799000, more digits than Lua prints a number with.
 */
#include "redis.h"

#include <stdio.h>
#include <string.h>

#define SCHEDULE_NFIELDS 9
#define LUA_SCHEDULE_FIELDS \
	"'name', 'cron', 'zone', 'workflow_name', 'state', 'catch_up', 'next_tick', 'created_at', 'updated_at'"

/* KEYS[1] = the schedule's hash; ARGV[3..8] = name, cron, zone, workflow,
 * state, catch_up, [9] = next_tick. created_at is kept on replace, so a
 * replay is harmless. */
static dr_script put_script = DR_SCRIPT("schedule_put",
	"local created = redis.call('HGET', KEYS[1], 'created_at') or ARGV[2]\n"
	"redis.call('EXISTS', ARGV[1]..'schedules')\n"
	"redis.call('HSET', KEYS[1], 'name', ARGV[3], 'cron', ARGV[4], 'zone', ARGV[5], 'workflow_name', ARGV[6],\n"
	"  'state', ARGV[7], 'catch_up', ARGV[8], 'next_tick', ARGV[9], 'created_at', created, 'updated_at', ARGV[2])\n"
	"redis.call('ZADD', ARGV[1]..'schedules', 0, ARGV[3])\n"
	"return {0}\n");

/* KEYS[1] = the schedule's hash; ARGV[3] = name. Read only. */
static dr_script get_script = DR_SCRIPT("schedule_get",
	"local h = redis.call('HMGET', KEYS[1], " LUA_SCHEDULE_FIELDS ")\n"
	"if not h[1] then return {-2, 'no schedule '..ARGV[3]} end\n"
	"return {0, unpack(h)}\n");

/* KEYS[1] = the schedule's hash; ARGV[3] = name. */
static dr_script delete_script = DR_SCRIPT("schedule_delete",
	"redis.call('EXISTS', KEYS[1], ARGV[1]..'schedules')\n"
	"redis.call('ZREM', ARGV[1]..'schedules', ARGV[3])\n"
	"if redis.call('DEL', KEYS[1]) == 0 then return {-2, 'no schedule '..ARGV[3]} end\n"
	"return {0}\n");

/* KEYS[1] = {P}:schedules. {0, fields...} by name. Read only. */
static dr_script list_script = DR_SCRIPT("schedule_list",
	"local out = {0}\n"
	"for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local h = redis.call('HMGET', ARGV[1]..'schedule:'..name, " LUA_SCHEDULE_FIELDS ")\n"
	"  if h[1] then for i = 1, 9 do out[#out + 1] = h[i] end end\n"
	"end\n"
	"return out\n");

/* KEYS[1] = the schedule's hash; ARGV[3] = name, [4] = from, [5] = to. */
static dr_script advance_script = DR_SCRIPT("schedule_advance",
	"local cur = redis.call('HGET', KEYS[1], 'next_tick')\n"
	"if not cur then return {-2, 'no schedule '..ARGV[3]} end\n"
	"if tonumber(cur) ~= tonumber(ARGV[4]) then\n"
	"  return {-4, 'schedule '..ARGV[3]..': its next tick is '..cur..', not '..ARGV[4]}\n"
	"end\n"
	"redis.call('HSET', KEYS[1], 'next_tick', ARGV[5], 'updated_at', ARGV[2])\n"
	"return {0}\n");

static int schedule_key(const dr_store *s, char *buf, size_t size, const char *name)
{
	if (dr_key(s, buf, size, "schedule", name) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "schedule name too long for a Redis key: %s", name);
	return 0;
}

static int schedule_decode(redisReply *const *f, dura_schedule *out)
{
	memset(out, 0, sizeof(*out));
	out->name = dr_strdup_reply(f[0]);
	out->cron = dr_strdup_reply(f[1]);
	out->zone = dr_strdup_reply(f[2]);
	out->workflow_name = dr_strdup_reply(f[3]);
	out->state = dr_strdup_reply(f[4]);
	out->catch_up = (int)dr_int(f[5]);
	out->next_tick = dr_int(f[6]);
	out->created_at = dr_int(f[7]);
	out->updated_at = dr_int(f[8]);
	if (!out->name || !out->cron || !out->zone || !out->workflow_name || !out->state) {
		dura_schedule_clear(out);
		return dura_error_oom(DR_STORE);
	}
	return 0;
}

int dr_schedule_put(void *impl, const dura_schedule *sch)
{
	dr_store *s = impl;
	char key[400], catch_up[16], next[24];
	int rc = schedule_key(s, key, sizeof(key), sch->name);
	if (rc)
		return rc;
	snprintf(catch_up, sizeof(catch_up), "%d", sch->catch_up);
	snprintf(next, sizeof(next), "%lld", (long long)sch->next_tick);
	const char *argv[] = {sch->name,
	                      sch->cron ? sch->cron : "",
	                      sch->zone && *sch->zone ? sch->zone : "UTC",
	                      sch->workflow_name ? sch->workflow_name : "",
	                      sch->state ? sch->state : "{}",
	                      catch_up,
	                      next};
	redisReply *r = NULL;
	rc = dr_run(s, &put_script, DR_IDEMPOTENT, &r, NULL, key, 7, argv, NULL);
	freeReplyObject(r);
	return rc;
}

int dr_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	dr_store *s = impl;
	char key[400];
	int rc = schedule_key(s, key, sizeof(key), name);
	if (rc)
		return rc;
	const char *argv[] = {name};
	redisReply *r = NULL;
	if ((rc = dr_run(s, &get_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL)) != 0)
		return rc;
	dura_schedule *sch = NULL;
	if (r->elements < 1 + SCHEDULE_NFIELDS)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis schedule came back incomplete");
	else if (!(sch = dura_malloc(sizeof(*sch))))
		rc = dura_error_oom(DR_STORE);
	else if ((rc = schedule_decode(r->element + 1, sch)) != 0)
		dura_free(sch);
	else
		*out = sch;
	freeReplyObject(r);
	return rc;
}

/* Asked again after a lost connection: a miss then means the first one did it. */
int dr_schedule_delete(void *impl, const char *name)
{
	dr_store *s = impl;
	char key[400];
	int rc = schedule_key(s, key, sizeof(key), name);
	if (rc)
		return rc;
	const char *argv[] = {name};
	return dr_run_delete(s, &delete_script, key, 1, argv);
}

int dr_schedule_list(void *impl, dura_schedules *out)
{
	dr_store *s = impl;
	char key[64];
	memset(out, 0, sizeof(*out));
	if (dr_key(s, key, sizeof(key), "schedules", NULL) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "a key of prefix %s is too long", s->prefix);
	redisReply *r = NULL;
	int rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 0, NULL, NULL);
	if (rc)
		return rc;
	size_t n = (r->elements - 1) / SCHEDULE_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		rc = dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = schedule_decode(r->element + 1 + i * SCHEDULE_NFIELDS, &out->items[i])) == 0)
			out->count++;
	freeReplyObject(r);
	if (rc)
		dura_schedules_free(out);
	return rc;
}

/*
 * Not retried blindly: a replay of an advance that went in would find the
 * tick moved and answer DURA_ECONFLICT. When the outcome is unknown the
 * tick is read: at `to` means it went in.
 */
int dr_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	dr_store *s = impl;
	char key[400], froms[24], tos[24];
	int rc = schedule_key(s, key, sizeof(key), name);
	if (rc)
		return rc;
	snprintf(froms, sizeof(froms), "%lld", (long long)from);
	snprintf(tos, sizeof(tos), "%lld", (long long)to);
	const char *argv[] = {name, froms, tos};
	redisReply *r = NULL;
	int unsure = 0;
	rc = dr_run(s, &advance_script, 0, &r, &unsure, key, 3, argv, NULL);
	freeReplyObject(r);
	if (rc && unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT)) {
		r = NULL;
		int again = dr_run(s, &advance_script, DR_IDEMPOTENT, &r, NULL, key, 3, argv, NULL);
		freeReplyObject(r);
		if (again == DURA_ECONFLICT) {
			redisReply *t = NULL;
			if (dr_commandv(s->client, DR_IDEMPOTENT, &t, "HGET", key, "next_tick", NULL) == 0 &&
			    t->type == REDIS_REPLY_STRING && dr_int(t) == to)
				again = 0;
			freeReplyObject(t);
		}
		rc = again;
	}
	return rc;
}
