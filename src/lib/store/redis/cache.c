/*
 * cache.c - the Redis store's step cache: entries {P}:cache:<key>
 * (hashes; native PEXPIRE when they expire), the index {P}:cachekeys
 * (every key, score 0, for cache_list's key order) and single-flight
 * claims {P}:claim:<key> (the owner, with the lease as native PX).
 *
 * Expiry: Redis drops an expired entry's hash by itself, but not its
 * index entry, so the index is the "table" of the SQL stores: a key in
 * the index whose hash is gone (or whose expires_at has passed by the
 * caller's clock, should the two clocks differ) is an expired entry.
 * It counts in cache_stats (entries and expired; its size is unknown:
 * 0 bytes) until cache_purge_expired drops it and counts it, and
 * cache_delete of it succeeds, as a delete of an expired row does;
 * cache_list skips it (it has no size or metadata left to show).
 *
 * Work per script is bounded: list, stats and purge walk the index
 * DR_CACHE_BATCH keys per script and continue from C at the last key
 * seen, so no call blocks the server for long. Each step is atomic; the
 * whole walk is not a snapshot (nor is it on the SQL stores' pages).
 */
#include "redis.h"

#include <stdio.h>
#include <string.h>

/* Index keys one script looks at (list, stats, purge). */
#define DR_CACHE_BATCH 1000
/* TTLs and leases are capped so that now + ttl stays exact in Lua's
 * doubles and valid for PEXPIRE: 10^15 ms is over 30000 years. */
#define DR_CACHE_MAX_MS INT64_C(1000000000000000)
/* Redis's proto-max-bulk-len default: a larger value cannot be sent. */
#define DR_CACHE_MAX_VALUE ((size_t)512 * 1024 * 1024)

/*
 * ARGV[3] = key, [4] = value, [5] = error, [6] = metadata, [7] = which
 * of error and metadata there are ("10": error only), [8] = ttl ms.
 * DEL first: the new hash has none of the old fields, nor its TTL (the
 * PERSIST of a put without one). Idempotent: a replay writes the same
 * entry again, and no claim could have come in between (the value was
 * there), so it is retried after a lost connection.
 */
static dr_script put_script = DR_SCRIPT("cache_put",
	"redis.call('EXISTS', KEYS[1], ARGV[1] .. 'cachekeys', ARGV[1] .. 'claim:' .. ARGV[3])\n"
	"local ttl = tonumber(ARGV[8])\n"
	"local exp = 0\n"
	"if ttl > 0 then exp = tonumber(ARGV[2]) + ttl end\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('HSET', KEYS[1], 'value', ARGV[4], 'created_at', ARGV[2], 'expires_at', exp)\n"
	"if string.sub(ARGV[7], 1, 1) == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end\n"
	"if string.sub(ARGV[7], 2, 2) == '1' then redis.call('HSET', KEYS[1], 'metadata', ARGV[6]) end\n"
	"if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
	"redis.call('ZADD', ARGV[1] .. 'cachekeys', 0, ARGV[3])\n"
	"redis.call('DEL', ARGV[1] .. 'claim:' .. ARGV[3])\n"
	"return {0}\n");

/*
 * ARGV[3] = key, [4] = owner, [5] = lease ms. The look for a value and
 * the claim are one script, so no other claimer gets in between. The
 * lease is the claim's native PX. Idempotent: a replay by the holder
 * renews its own claim (or finds the value it went on to store).
 */
static dr_script claim_script = DR_SCRIPT("cache_claim",
	"local e = redis.call('HGET', KEYS[1], 'expires_at')\n"
	"if e then\n"
	"  e = tonumber(e)\n"
	"  if e == 0 or e > tonumber(ARGV[2]) then\n"
	"    return {-3, 'cache key ' .. ARGV[3] .. ' already has a value'} -- DURA_EEXISTS\n"
	"  end\n"
	"end\n"
	"local ck = ARGV[1] .. 'claim:' .. ARGV[3]\n"
	"local cur = redis.call('GET', ck)\n"
	"if cur and cur ~= ARGV[4] then\n"
	"  return {-5, 'cache key ' .. ARGV[3] .. ' is claimed by ' .. cur .. ' for ' .. redis.call('PTTL', ck) ..\n"
	"    ' ms more'} -- DURA_EBUSY\n"
	"end\n"
	"redis.call('SET', ck, ARGV[4], 'PX', ARGV[5])\n"
	"return {0}\n");

/* KEYS[1] = the claim; ARGV[3] = key, [4] = owner. An expired claim is
 * gone (native PX): nothing to release. */
static dr_script release_script = DR_SCRIPT("cache_release",
	"if redis.call('GET', KEYS[1]) ~= ARGV[4] then\n"
	"  return {-2, 'cache key ' .. ARGV[3] .. ' is not claimed by ' .. ARGV[4]} -- DURA_ENOTFOUND\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"return {0}\n");

/* ARGV[3] = key. An entry Redis expired is still in the index: deleting
 * it succeeds, as deleting an expired row does. Claims stay. */
static dr_script delete_script = DR_SCRIPT("cache_delete",
	"redis.call('EXISTS', KEYS[1], ARGV[1] .. 'cachekeys')\n"
	"local n = redis.call('DEL', KEYS[1]) + redis.call('ZREM', ARGV[1] .. 'cachekeys', ARGV[3])\n"
	"if n == 0 then return {-2, 'cache key ' .. ARGV[3] .. ': no entry'} end -- DURA_ENOTFOUND\n"
	"return {0}\n");

/*
 * The walks: KEYS[1] = {P}:cachekeys, ARGV[3] = the last key seen ("" at
 * the start: "(" alone is "after the empty string"), ARGV[4] = how many
 * index keys to look at. Each answers, after its figures, the last key it
 * looked at and 1 when it reached the end of the index.
 */
#define LUA_WALK                                                                                 \
	"local batch = tonumber(ARGV[4])\n"                                                       \
	"local keys = redis.call('ZRANGEBYLEX', KEYS[1], '(' .. ARGV[3], '+', 'LIMIT', 0, batch)\n" \
	"local now = tonumber(ARGV[2])\n"

/* ARGV[5] = items wanted. Answers {0, last, end, key, size, error,
 * metadata, created_at, expires_at, ...}; stops early once it has them
 * (then the end is 0). Read-only. */
static dr_script list_script = DR_SCRIPT("cache_list",
	LUA_WALK
	"local want, got, last, seen = tonumber(ARGV[5]), 0, ARGV[3], 0\n"
	"local out = {0, '', 0}\n"
	"for _, k in ipairs(keys) do\n"
	"  if got == want then break end\n"
	"  last, seen = k, seen + 1\n"
	"  local hk = ARGV[1] .. 'cache:' .. k\n"
	"  local h = redis.call('HMGET', hk, 'error', 'metadata', 'created_at', 'expires_at')\n"
	"  if h[3] then\n"
	"    got = got + 1\n"
	"    out[#out + 1] = k\n"
	"    out[#out + 1] = redis.call('HSTRLEN', hk, 'value')\n"
	"    for i = 1, 4 do out[#out + 1] = h[i] end\n"
	"  end\n"
	"end\n"
	"out[2] = last\n"
	"if #keys < batch and seen == #keys then out[3] = 1 end\n"
	"return out\n");

/* Answers {0, entries, expired, bytes, last, end}. Read-only: an expired
 * entry stays counted until purged. */
static dr_script stats_script = DR_SCRIPT("cache_stats",
	LUA_WALK
	"local expired, bytes = 0, 0\n"
	"for _, k in ipairs(keys) do\n"
	"  local hk = ARGV[1] .. 'cache:' .. k\n"
	"  local e = redis.call('HGET', hk, 'expires_at')\n"
	"  if not e then\n"
	"    expired = expired + 1\n"
	"  else\n"
	"    bytes = bytes + redis.call('HSTRLEN', hk, 'value')\n"
	"    e = tonumber(e)\n"
	"    if e ~= 0 and e <= now then expired = expired + 1 end\n"
	"  end\n"
	"end\n"
	"local fin = 0\n"
	"if #keys < batch then fin = 1 end\n"
	"return {0, #keys, expired, bytes, keys[#keys] or ARGV[3], fin}\n");

/* Answers {0, purged, last, end}. A replay after a lost connection
 * purges what is left, so it is retried (the count may then miss what
 * the lost attempt purged). */
static dr_script purge_script = DR_SCRIPT("cache_purge_expired",
	LUA_WALK
	"local n = 0\n"
	"for _, k in ipairs(keys) do\n"
	"  local hk = ARGV[1] .. 'cache:' .. k\n"
	"  local e = redis.call('HGET', hk, 'expires_at')\n"
	"  if not e or (tonumber(e) ~= 0 and tonumber(e) <= now) then\n"
	"    redis.call('DEL', hk)\n"
	"    redis.call('ZREM', KEYS[1], k)\n"
	"    n = n + 1\n"
	"  end\n"
	"end\n"
	"local fin = 0\n"
	"if #keys < batch then fin = 1 end\n"
	"return {0, n, keys[#keys] or ARGV[3], fin}\n");

static int key_error(const dr_store *s)
{
	return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "a key of prefix %s is too long", s->prefix);
}

static int malformed(const dr_script *sc, const redisReply *r)
{
	return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script %s answered %zu elements", sc->name,
	                             r->elements);
}

/* A string element (nil: NULL) into *out; -1 when out of memory. */
static int opt_text(const redisReply *r, char **out)
{
	*out = NULL;
	if (r->type != REDIS_REPLY_STRING)
		return 0;
	*out = dura_strndup(r->str, r->len);
	return *out ? 0 : -1;
}

/* One HMGET, the cheapest hit there is: one key needs no script. A hash
 * whose expires_at has passed by the caller's clock is expired even if
 * the server has not dropped it yet. */
int dr_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	dr_store *s = impl;
	char k[384];
	if (dr_key(s, k, sizeof(k), "cache", key) != 0)
		return key_error(s);
	redisReply *r = NULL;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "HMGET", k, "value", "error", "metadata", "created_at",
	                     "expires_at", NULL);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "Redis HMGET of cache key %s: %s", key,
		                           r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected answer");
		freeReplyObject(r);
		return rc;
	}
	const redisReply *v = r->element[0];
	int64_t exp = dr_int(r->element[4]);
	if (v->type != REDIS_REPLY_STRING || (exp != 0 && exp <= dura_now_ms())) {
		rc = v->type != REDIS_REPLY_STRING;
		freeReplyObject(r);
		return dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL, "cache key %s: %s", key,
		                             rc ? "no entry" : "the entry has expired");
	}
	dura_cache_entry *e = dura_calloc(1, sizeof(*e));
	if (e) {
		e->key = dura_strdup(key);
		e->value = dura_malloc(v->len + 1); /* NUL-terminated for callers that treat it as text */
	}
	if (!e || !e->key || !e->value || opt_text(r->element[1], &e->error) || opt_text(r->element[2], &e->metadata)) {
		dura_cache_entry_free(e);
		freeReplyObject(r);
		return dura_error_oom(DR_STORE);
	}
	memcpy(e->value, v->str, v->len);
	e->value[v->len] = '\0';
	e->value_len = v->len;
	e->created_at = dr_int(r->element[3]);
	e->expires_at = exp;
	freeReplyObject(r);
	*out = e;
	return 0;
}

int dr_cache_put(void *impl, const char *key, const void *value, size_t value_len, const char *error,
                 const char *metadata, int64_t ttl_ms)
{
	dr_store *s = impl;
	char k[384], ttl[24];
	if (value_len > DR_CACHE_MAX_VALUE)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
		                             "cache value of %zu bytes: the Redis store holds at most 512 MiB (proto-max-bulk-len)",
		                             value_len);
	if (dr_key(s, k, sizeof(k), "cache", key) != 0)
		return key_error(s);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_ms > DR_CACHE_MAX_MS ? DR_CACHE_MAX_MS : ttl_ms));
	const char *has = error ? (metadata ? "11" : "10") : (metadata ? "01" : "00");
	const char *argv[] = {key, value_len ? (const char *)value : "", error ? error : "", metadata ? metadata : "", has,
	                      ttl};
	size_t lens[6];
	for (int i = 0; i < 6; i++)
		lens[i] = i == 1 ? value_len : strlen(argv[i]);
	redisReply *r = NULL;
	int rc = dr_run(s, &put_script, DR_IDEMPOTENT, &r, NULL, k, 6, argv, lens);
	freeReplyObject(r);
	return rc;
}

int dr_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	dr_store *s = impl;
	char k[384], lease[24];
	if (dr_key(s, k, sizeof(k), "cache", key) != 0)
		return key_error(s);
	snprintf(lease, sizeof(lease), "%lld", (long long)(lease_ms > DR_CACHE_MAX_MS ? DR_CACHE_MAX_MS : lease_ms));
	const char *argv[] = {key, owner, lease};
	redisReply *r = NULL;
	int rc = dr_run(s, &claim_script, DR_IDEMPOTENT, &r, NULL, k, 3, argv, NULL);
	freeReplyObject(r);
	return rc;
}

int dr_cache_release(void *impl, const char *key, const char *owner)
{
	dr_store *s = impl;
	char k[384];
	if (dr_key(s, k, sizeof(k), "claim", key) != 0)
		return key_error(s);
	const char *argv[] = {key, owner};
	return dr_run_delete(s, &release_script, k, 2, argv);
}

int dr_cache_delete(void *impl, const char *key)
{
	dr_store *s = impl;
	char k[384];
	if (dr_key(s, k, sizeof(k), "cache", key) != 0)
		return key_error(s);
	const char *argv[] = {key};
	return dr_run_delete(s, &delete_script, k, 1, argv);
}

/*
 * One step of a walk over the index from *last (NULL: the start): the
 * script's reply in *out, and *last moved on to the last key it saw
 * (dura_malloc'd; the caller frees it). at is where the script put that
 * key in its reply.
 */
static int walk_step(dr_store *s, dr_script *sc, char **last, size_t want, size_t at, redisReply **out)
{
	char idx[64], batch[24], wanted[24];
	if (dr_key(s, idx, sizeof(idx), "cachekeys", NULL) != 0)
		return key_error(s);
	snprintf(batch, sizeof(batch), "%d", DR_CACHE_BATCH);
	snprintf(wanted, sizeof(wanted), "%zu", want);
	const char *argv[] = {*last ? *last : "", batch, wanted};
	/* every walk is safe to replay: the reads, and purge (see above) */
	int rc = dr_run(s, sc, DR_IDEMPOTENT, out, NULL, idx, want ? 3 : 2, argv, NULL);
	if (rc)
		return rc;
	if ((*out)->elements < at + 2) {
		rc = malformed(sc, *out);
		freeReplyObject(*out);
		*out = NULL;
		return rc;
	}
	char *next = dr_strdup_reply((*out)->element[at]);
	if (!next) {
		freeReplyObject(*out);
		*out = NULL;
		return dura_error_oom(DR_STORE);
	}
	dura_free(*last);
	*last = next;
	return 0;
}

int dr_cache_purge_expired(void *impl, int64_t *count)
{
	dr_store *s = impl;
	char *last = NULL;
	int64_t n = 0;
	int rc, fin = 0;
	while (!fin) {
		redisReply *r = NULL;
		if ((rc = walk_step(s, &purge_script, &last, 0, 2, &r)) != 0)
			break;
		n += dr_int(r->element[1]);
		fin = dr_int(r->element[3]) != 0;
		freeReplyObject(r);
	}
	dura_free(last);
	if (rc == 0 && count)
		*count = n;
	return rc;
}

int dr_cache_stats(void *impl, dura_cache_stats *out)
{
	dr_store *s = impl;
	char *last = NULL;
	int64_t entries = 0, expired = 0, bytes = 0;
	int rc, fin = 0;
	while (!fin) {
		redisReply *r = NULL;
		if ((rc = walk_step(s, &stats_script, &last, 0, 4, &r)) != 0)
			break;
		entries += dr_int(r->element[1]);
		expired += dr_int(r->element[2]);
		bytes += dr_int(r->element[3]);
		fin = dr_int(r->element[5]) != 0;
		freeReplyObject(r);
	}
	dura_free(last);
	if (rc)
		return rc;
	out->entries = entries;
	out->expired = expired;
	out->bytes = bytes;
	return 0;
}

/* Item fields: key, size, error, metadata, created_at, expires_at. */
#define ITEM_NFIELDS 6

static int decode_item(redisReply *const *f, dura_cache_entry *o)
{
	memset(o, 0, sizeof(*o));
	if (!(o->key = dr_strdup_reply(f[0])) || opt_text(f[2], &o->error) || opt_text(f[3], &o->metadata)) {
		dura_cache_entry_clear(o);
		return dura_error_oom(DR_STORE);
	}
	o->value_len = (size_t)dr_int(f[1]);
	o->created_at = dr_int(f[4]);
	o->expires_at = dr_int(f[5]);
	return 0;
}

int dr_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	dr_store *s = impl;
	char *last = NULL;
	size_t cap = 0;
	int rc = 0, fin = 0;
	if (limit == 0)
		limit = 100;
	if (cursor && !(last = dura_strdup(cursor)))
		return dura_error_oom(DR_STORE);
	while (rc == 0 && !fin && out->count < limit) {
		redisReply *r = NULL;
		if ((rc = walk_step(s, &list_script, &last, limit - out->count, 1, &r)) != 0)
			break;
		fin = dr_int(r->element[2]) != 0;
		for (size_t i = 3; rc == 0 && i + ITEM_NFIELDS <= r->elements && out->count < limit; i += ITEM_NFIELDS) {
			if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) != 0)
				rc = dura_error_oom(DR_STORE);
			else if ((rc = decode_item(r->element + i, &out->items[out->count])) == 0)
				out->count++;
		}
		freeReplyObject(r);
	}
	dura_free(last);
	if (rc == 0 && out->count == limit && !(out->next_cursor = dura_strdup(out->items[limit - 1].key)))
		rc = dura_error_oom(DR_STORE);
	if (rc)
		dura_cache_list_free(out);
	return rc;
}
