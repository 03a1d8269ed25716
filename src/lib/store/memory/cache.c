/*
 * cache.c - the memory store's step cache and its single-flight claims.
 */
#include "memory.h"

static int expired(const mem_cache *e, int64_t now)
{
	return e->expires_at != 0 && e->expires_at <= now;
}

static mem_cache *find_cache(mem_store *m, const char *key)
{
	mem_cache *e = NULL;
	HASH_FIND_STR(m->cache, key, e);
	return e;
}

static mem_claim *find_claim(mem_store *m, const char *key)
{
	mem_claim *c = NULL;
	HASH_FIND_STR(m->claims, key, c);
	return c;
}

static int add_cache(mem_store *m, mem_cache *e)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->cache, e->key, strlen(e->key), e);
	return hash_oom;
}

static int add_claim(mem_store *m, mem_claim *c)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->claims, c->key, strlen(c->key), c);
	return hash_oom;
}

static void drop_claim(mem_store *m, const char *key)
{
	mem_claim *c = find_claim(m, key);
	if (c) {
		HASH_DEL(m->claims, c);
		dmem_free_claim(c);
	}
}

int dmem_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_cache *e = find_cache(m, key);
	if (!e || expired(e, dura_now_ms())) {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s: %s", key,
		                           e ? "the entry has expired" : "no entry");
		goto done;
	}
	dura_cache_entry *ce = dura_calloc(1, sizeof(*ce));
	if (!ce) {
		rc = dmem_oom();
		goto done;
	}
	rc = dmem_copy_cache(ce, e, 1);
	if (rc)
		dura_free(ce);
	else
		*out = ce;
done:
	dmem_unlock(m);
	return rc;
}

int dmem_cache_put(void *impl, const char *key, const void *value, size_t value_len, const char *error,
                   const char *metadata, int64_t ttl_ms)
{
	mem_store *m = impl;
	/* everything the new entry needs, before the lock */
	unsigned char *v = dura_malloc(value_len + 1);
	char *err = error ? dura_strdup(error) : NULL;
	char *meta = metadata ? dura_strdup(metadata) : NULL;
	if (!v || (error && !err) || (metadata && !meta)) {
		dura_free(v);
		dura_free(err);
		dura_free(meta);
		return dmem_oom();
	}
	if (value_len)
		memcpy(v, value, value_len);
	v[value_len] = '\0';
	int rc = 0;
	dmem_lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e = find_cache(m, key);
	if (!e) {
		e = dura_calloc(1, sizeof(*e));
		if (e)
			e->key = dura_strdup(key);
		if (!e || !e->key || add_cache(m, e)) {
			if (e)
				dura_free(e->key);
			dura_free(e);
			dura_free(v);
			dura_free(err);
			dura_free(meta);
			rc = dmem_oom();
			goto done;
		}
	} else {
		dura_free(e->value);
		dura_free(e->error);
		dura_free(e->metadata);
	}
	e->value = v;
	e->value_len = value_len;
	e->error = err;
	e->metadata = meta;
	e->created_at = now;
	e->expires_at = ttl_ms ? now + ttl_ms : 0;
	drop_claim(m, key);
done:
	dmem_unlock(m);
	return rc;
}

int dmem_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	mem_store *m = impl;
	int rc = 0;
	char *own = dura_strdup(owner);
	if (!own)
		return dmem_oom();
	dmem_lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e = find_cache(m, key);
	if (e && !expired(e, now)) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "cache key %s already has a value", key);
		goto done;
	}
	mem_claim *c = find_claim(m, key);
	if (c && strcmp(c->owner, owner) != 0 && c->expires_at > now) {
		rc = dura_error_set_native(DURA_EBUSY, STORE, 0, NULL, "cache key %s is claimed by %s for %lld ms more", key,
		                           c->owner, (long long)(c->expires_at - now));
		goto done;
	}
	if (!c) {
		c = dura_calloc(1, sizeof(*c));
		if (c)
			c->key = dura_strdup(key);
		if (!c || !c->key || add_claim(m, c)) {
			if (c)
				dura_free(c->key);
			dura_free(c);
			rc = dmem_oom();
			goto done;
		}
	} else {
		dura_free(c->owner);
	}
	c->owner = own;
	own = NULL;
	c->expires_at = now + lease_ms;
done:
	dmem_unlock(m);
	dura_free(own);
	return rc;
}

int dmem_cache_release(void *impl, const char *key, const char *owner)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_claim *c = find_claim(m, key);
	if (c && strcmp(c->owner, owner) == 0) {
		HASH_DEL(m->claims, c);
		dmem_free_claim(c);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s is not claimed by %s", key, owner);
	}
	dmem_unlock(m);
	return rc;
}

int dmem_cache_delete(void *impl, const char *key)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_cache *e = find_cache(m, key);
	if (e) {
		HASH_DEL(m->cache, e);
		dmem_free_cache(e);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s: no entry", key);
	}
	dmem_unlock(m);
	return rc;
}

int dmem_cache_purge_expired(void *impl, int64_t *count)
{
	mem_store *m = impl;
	int64_t n = 0;
	dmem_lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e, *et;
	HASH_ITER(hh, m->cache, e, et)
	{
		if (expired(e, now)) {
			HASH_DEL(m->cache, e);
			dmem_free_cache(e);
			n++;
		}
	}
	dmem_unlock(m);
	if (count)
		*count = n;
	return 0;
}

static int cache_key_order(const void *a, const void *b)
{
	const mem_cache *x = *(const mem_cache *const *)a, *y = *(const mem_cache *const *)b;
	return strcmp(x->key, y->key);
}

int dmem_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_cache **sel = NULL;
	if (limit == 0)
		limit = 100;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->cache), n = 0;
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = dmem_oom();
		goto done;
	}
	for (mem_cache *e = m->cache; e; e = e->hh.next)
		if (!cursor || strcmp(e->key, cursor) > 0)
			sel[n++] = e;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), cache_key_order);
	if (n > limit)
		n = limit;
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_cache,
	                    dura_cache_entry_clear, sel);
	if (rc == 0 && n == limit) {
		out->next_cursor = dura_strdup(sel[n - 1]->key);
		if (!out->next_cursor) {
			dura_cache_list_free(out);
			rc = dmem_oom();
		}
	}
done:
	dmem_unlock(m);
	dura_free(sel);
	return rc;
}

int dmem_cache_stats(void *impl, dura_cache_stats *out)
{
	mem_store *m = impl;
	dmem_lock(m);
	int64_t now = dura_now_ms(), entries = 0, exp = 0, bytes = 0;
	for (mem_cache *e = m->cache; e; e = e->hh.next) {
		entries++;
		exp += expired(e, now);
		bytes += (int64_t)e->value_len;
	}
	dmem_unlock(m);
	out->entries = entries;
	out->expired = exp;
	out->bytes = bytes;
	return 0;
}
