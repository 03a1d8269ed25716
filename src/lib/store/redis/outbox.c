/*
 * outbox.c - the Redis store's outbox: polling the stream {P}:outbox
 * and acknowledging (deleting) its events. The commit script writes the
 * events with outbox.h's outbox_add, so the layout below and the one
 * written are the same by construction.
 *
 * The stream is in write order: XADD * gives each entry an id from the
 * server's clock, so "oldest first" is the order the commits happened
 * in (event ids are UUIDv7 from the writers' clocks, nearly the same
 * order; the stream's is the one a consumer can page through).
 *
 * Import (contract version 7) needs the outbox in event-id order, which
 * the stream cannot give: XADD only appends (an explicit entry id must be
 * above the last one), so an imported event, older than the events there,
 * lands at the stream's end, and even without imports two writers' clocks
 * can put ids out of write order. So every event id is also in
 * {P}:outbox:order (schema 4), a zset of score 0: its byte order is the
 * ids' order, outbox_list is a ZRANGEBYLEX from the id after `after`, and
 * each id finds its entry through {P}:outbox:ids (HGET, then an XRANGE
 * of that one entry). Every write of the outbox (outbox_add, ack, prune)
 * keeps the three keys together; the migration to schema 4 puts the
 * events already there into the zset (dr_index_outbox). outbox_poll
 * stays on the stream: write order, one XRANGE, and an imported event
 * comes after the events already waiting.
 */
#include "outbox.h"
#include "redis.h"

#include <stdio.h>
#include <string.h>

/* The stream's fields of one event, in the order the poll returns them. */
#define EVENT_NFIELDS 6

/* ARGV[3] = limit. Read-only. */
static dr_script poll_script = DR_SCRIPT("outbox_poll",
	"local es = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[3])\n"
	"local out = {0}\n"
	"for _, e in ipairs(es) do\n"
	"  local f, m = e[2], {}\n"
	"  for i = 1, #f, 2 do m[f[i]] = f[i + 1] end\n"
	"  out[#out + 1] = m['id'] or false\n"
	"  out[#out + 1] = m['workflow_name'] or false\n"
	"  out[#out + 1] = m['run_id'] or false\n"
	"  out[#out + 1] = m['type'] or false\n"
	"  out[#out + 1] = m['data'] or false\n"
	"  out[#out + 1] = m['created_at'] or false\n"
	"end\n"
	"return out\n");

/* ARGV[3] = the event id. The index finds the stream entry; all three go. */
static dr_script ack_script = DR_SCRIPT("outbox_ack",
	"local ids, order = ARGV[1] .. 'outbox:ids', ARGV[1] .. 'outbox:order'\n"
	"redis.call('EXISTS', KEYS[1], ids, order)\n"
	"local sid = redis.call('HGET', ids, ARGV[3])\n"
	"if not sid then\n"
	"  return {-2, 'outbox event ' .. ARGV[3] .. ' does not exist (already acknowledged?)'} -- DURA_ENOTFOUND\n"
	"end\n"
	"redis.call('XDEL', KEYS[1], sid)\n"
	"redis.call('HDEL', ids, ARGV[3])\n"
	"redis.call('ZREM', order, ARGV[3])\n"
	"return {0}\n");

static int decode_event(redisReply *const *f, dura_event *o)
{
	memset(o, 0, sizeof(*o));
	o->id = dr_strdup_reply(f[0]);
	o->workflow_name = dr_strdup_reply(f[1]);
	o->run_id = dr_strdup_reply(f[2]);
	o->type = dr_strdup_reply(f[3]);
	o->data = dr_strdup_reply(f[4]);
	if (!o->id || !o->workflow_name || !o->run_id || !o->type || !o->data) {
		dura_event_clear(o);
		return dura_error_oom(DR_STORE);
	}
	o->created_at = dr_int(f[5]);
	return 0;
}

/* {0, then EVENT_NFIELDS elements an event} into out. */
static int decode_events(const redisReply *r, dura_event_list *out)
{
	size_t n = (r->elements - 1) / EVENT_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		return dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n; i++) {
		int rc = decode_event(r->element + 1 + i * EVENT_NFIELDS, &out->items[i]);
		if (rc) {
			dura_event_list_free(out);
			return rc;
		}
		out->count++;
	}
	return 0;
}

int dr_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	dr_store *s = impl;
	char key[64], lim[24];
	if (limit == 0)
		limit = 100;
	if (dr_key(s, key, sizeof(key), "outbox", NULL) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the key prefix %s is too long", s->prefix);
	snprintf(lim, sizeof(lim), "%zu", limit);
	const char *argv[] = {lim};
	redisReply *r = NULL;
	int rc = dr_run(s, &poll_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL);
	if (rc)
		return rc;
	rc = decode_events(r, out);
	freeReplyObject(r);
	return rc;
}

/*
 * Not retried blindly after a lost connection: a second ack would find
 * the event gone and answer DURA_ENOTFOUND for an ack that worked. When
 * the outcome is unknown it runs again, and a miss then means the first
 * one did it.
 */
int dr_outbox_ack(void *impl, const char *event_id)
{
	dr_store *s = impl;
	char key[64];
	if (dr_key(s, key, sizeof(key), "outbox", NULL) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the key prefix %s is too long", s->prefix);
	const char *argv[] = {event_id};
	return dr_run_delete(s, &ack_script, key, 1, argv);
}

/* ---- import (contract version 7) ------------------------------------------ */

/* ARGV[3..8] = id, workflow_name, run_id, type, data, created_at: the
 * event as it was, appended (outbox_add) unless its id is there. */
static dr_script import_script = DR_SCRIPT("import_event", DR_LUA_OUTBOX_ADD
	"local P = ARGV[1]\n"
	"redis.call('EXISTS', KEYS[1], P..'outbox:ids', P..'outbox:order')\n"
	"if redis.call('HEXISTS', P..'outbox:ids', ARGV[3]) == 1 then\n"
	"  return {-3, 'outbox event '..ARGV[3]..' already exists'} -- DURA_EEXISTS\n"
	"end\n"
	"outbox_add(P, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])\n"
	"return {0}\n");

/* 1 when event id is in {P}:outbox:ids, 0 when not, or an error. */
static int event_there(dr_store *s, const char *id)
{
	char key[64];
	dr_key(s, key, sizeof(key), "outbox:ids", NULL);
	redisReply *r;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "HEXISTS", key, id, NULL);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_INTEGER)
		rc = r->integer == 1;
	else
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "Redis HEXISTS %s: %s", key,
		                           r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
	freeReplyObject(r);
	return rc;
}

/*
 * A connection lost after sending leaves it unknown whether the event
 * went in: it did if its id is there now (the script is all or nothing),
 * and it is sent again if not.
 */
int dr_outbox_import(void *impl, const dura_event *ev)
{
	dr_store *s = impl;
	char key[64], at[24];
	if (dr_key(s, key, sizeof(key), "outbox", NULL) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the key prefix %s is too long", s->prefix);
	snprintf(at, sizeof(at), "%lld", (long long)ev->created_at);
	const char *argv[] = {ev->id, ev->workflow_name, ev->run_id, ev->type, ev->data ? ev->data : "", at};
	for (int attempt = 0;; attempt++) {
		redisReply *r = NULL;
		int unsure = 0;
		int rc = dr_run(s, &import_script, 0, &r, &unsure, key, 6, argv, NULL);
		freeReplyObject(r);
		if (!unsure || (rc != DURA_EIO && rc != DURA_ETIMEOUT))
			return rc;
		int there = event_there(s, ev->id);
		if (there == 1)
			return 0;
		if (there != 0 || attempt == 2)
			return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL,
			                             "the connection to Redis was lost while importing outbox event %s", ev->id);
	}
}

/*
 * KEYS[1] = {P}:outbox:order; ARGV[3] = after ("": from the first), [4] =
 * limit. {0, then the events' fields}. Read only. An id whose entry is
 * gone (no writer of this library leaves one) is passed over.
 */
static dr_script list_script = DR_SCRIPT("outbox_list",
	"local P, limit = ARGV[1], tonumber(ARGV[4])\n"
	"local min = '-'\n"
	"if ARGV[3] ~= '' then min = '('..ARGV[3] end\n"
	"local out, n = {0}, 0\n"
	"while n < limit do\n"
	"  local ids = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, limit - n)\n"
	"  if #ids == 0 then break end\n"
	"  for _, id in ipairs(ids) do\n"
	"    local sid = redis.call('HGET', P..'outbox:ids', id)\n"
	"    local es = sid and redis.call('XRANGE', P..'outbox', sid, sid) or {}\n"
	"    if es[1] then\n"
	"      local f, m = es[1][2], {}\n"
	"      for i = 1, #f, 2 do m[f[i]] = f[i + 1] end\n"
	"      out[#out + 1] = id\n"
	"      out[#out + 1] = m['workflow_name'] or false\n"
	"      out[#out + 1] = m['run_id'] or false\n"
	"      out[#out + 1] = m['type'] or false\n"
	"      out[#out + 1] = m['data'] or false\n"
	"      out[#out + 1] = m['created_at'] or false\n"
	"      n = n + 1\n"
	"    end\n"
	"  end\n"
	"  min = '('..ids[#ids]\n"
	"end\n"
	"return out\n");

int dr_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out)
{
	dr_store *s = impl;
	char key[64], lim[24];
	if (dr_key(s, key, sizeof(key), "outbox:order", NULL) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the key prefix %s is too long", s->prefix);
	snprintf(lim, sizeof(lim), "%zu", limit ? limit : 100);
	const char *argv[] = {after ? after : "", lim};
	redisReply *r = NULL;
	int rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL);
	if (rc)
		return rc;
	rc = decode_events(r, out);
	freeReplyObject(r);
	return rc;
}

/* ---- the migration to schema 4 ----------------------------------------------------- */

/* KEYS[1] = {P}:outbox; ARGV[3] = the first stream entry id of the page
 * ("-": from the start), [4] = the page's size. Each event of the page
 * joins {P}:outbox:order (ZADD: an id there already stays as it is, so a
 * migration cut short, or two at once, add nothing twice). {0, the next
 * page's first entry id or "" at the end}. */
static dr_script order_script = DR_SCRIPT("index_outbox",
	"local order, size = ARGV[1]..'outbox:order', tonumber(ARGV[4])\n"
	"redis.call('EXISTS', KEYS[1], order)\n"
	"local es = redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', size)\n"
	"for _, e in ipairs(es) do\n"
	"  local f = e[2]\n"
	"  for i = 1, #f, 2 do\n"
	"    if f[i] == 'id' then redis.call('ZADD', order, 0, f[i + 1]); break end\n"
	"  end\n"
	"end\n"
	"if #es < size then return {0, ''} end\n"
	"local ms, seq = string.match(es[#es][1], '^(%d+)-(%d+)$')\n"
	"return {0, ms..'-'..(tonumber(seq) + 1)}\n");

int dr_index_outbox(dr_store *s)
{
	char key[64];
	dr_key(s, key, sizeof(key), "outbox", NULL);
	return dr_run_pages(s, &order_script, key, "-", "1000"); /* as dr_index_runs */
}
