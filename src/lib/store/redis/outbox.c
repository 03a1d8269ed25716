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

/* ARGV[3] = the event id. The index finds the stream entry; both go. */
static dr_script ack_script = DR_SCRIPT("outbox_ack",
	"local ids = ARGV[1] .. 'outbox:ids'\n"
	"redis.call('EXISTS', KEYS[1], ids)\n"
	"local sid = redis.call('HGET', ids, ARGV[3])\n"
	"if not sid then\n"
	"  return {-2, 'outbox event ' .. ARGV[3] .. ' does not exist (already acknowledged?)'} -- DURA_ENOTFOUND\n"
	"end\n"
	"redis.call('XDEL', KEYS[1], sid)\n"
	"redis.call('HDEL', ids, ARGV[3])\n"
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
	size_t n = (r->elements - 1) / EVENT_NFIELDS;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items)))) {
		freeReplyObject(r);
		return dura_error_oom(DR_STORE);
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = decode_event(r->element + 1 + i * EVENT_NFIELDS, &out->items[i])) != 0) {
			dura_event_list_free(out);
			break;
		}
		out->count++;
	}
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
