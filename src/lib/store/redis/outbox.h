/*
 * outbox.h - the outbox's layout as Lua, for the scripts that write
 * events (the commit script pastes DR_LUA_OUTBOX_ADD in before its own
 * code), so that the stream's fields are written in one place: here,
 * beside outbox.c, which reads them back.
 *
 * outbox_add(prefix, id, workflow_name, run_id, type, data, created_at)
 * appends one entry to {P}:outbox (XADD *: the stream keeps the order
 * the events were written in, which outbox_poll returns), records
 * event id -> stream entry id in {P}:outbox:ids for outbox_ack, and adds
 * the event id to {P}:outbox:order (schema 4), the zset of score 0 whose
 * byte order is the event ids' order, which outbox_list pages through
 * (outbox.c). Every argument is a string (created_at may be a Lua
 * number: Redis writes an integral one as its digits). Returns the
 * stream entry id. The caller has touched the three keys.
 */
#ifndef DURA_REDIS_OUTBOX_H
#define DURA_REDIS_OUTBOX_H

#define DR_LUA_OUTBOX_ADD                                                                                     \
	"local function outbox_add(prefix, id, workflow_name, run_id, etype, data, created_at)\n"                \
	"  local sid = redis.call('XADD', prefix .. 'outbox', '*', 'id', id, 'workflow_name', workflow_name,\n" \
	"    'run_id', run_id, 'type', etype, 'data', data, 'created_at', created_at)\n"                         \
	"  redis.call('HSET', prefix .. 'outbox:ids', id, sid)\n"                                                \
	"  redis.call('ZADD', prefix .. 'outbox:order', 0, id)\n"                                                \
	"  return sid\n"                                                                                         \
	"end\n"

#endif /* DURA_REDIS_OUTBOX_H */
