/*
 * cache.c - the SQLite store's step cache: values with an expiry, read,
 * written (a write drops the key's claim), listed, purged and counted;
 * and the single-flight claims, taken under the database-wide write lock
 * (INSERT OR REPLACE) instead of a locked read.
 */
#include "sqlite.h"

/* ---- cache ------------------------------------------------------------------------ */

int dsq_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CACHE_GET, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		int b;
		if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, now_txt)))
			rc = bind_fail(c, st, b, "reading the cache");
		else
			rc = dsq_fetch(c, st, DURA_SQL_CACHE_VALUE, (void **)out, "reading the cache");
		if (rc == DURA_ENOTFOUND)
			rc = dura_sql_err_cache_not_found(SQ, key);
	}
	dsq_pool_put(s, c);
	return rc;
}

static int cache_put_tx(sq_store *s, sq_conn *c, const char *key, const void *value, size_t len, const char *error,
                        const char *metadata, int64_t ttl_ms)
{
	int64_t now = dura_now_ms();
	char now_txt[24], exp_txt[24];
	sqlite3_stmt *st;
	fmt_time(now_txt, now);
	if (ttl_ms)
		fmt_time(exp_txt, dura__add_ms(now, ttl_ms));
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CACHE_PUT, &st)) != 0)
		goto fail;
	/* a zero-length value is an empty blob, not NULL (bind_blob) */
	int b;
	if ((b = bind_text(st, 1, key)) || (b = bind_blob(st, 2, value, len)) || (b = bind_text(st, 3, error)) ||
	    (b = bind_text(st, 4, now_txt)) || (b = bind_text(st, 5, ttl_ms ? exp_txt : NULL)) ||
	    (b = bind_text(st, 6, metadata))) {
		rc = bind_fail(c, st, b, "writing to the cache");
		goto fail;
	}
	if ((rc = dsq_run_done(c, st, "writing to the cache")) != 0)
		goto fail;
	if ((rc = dsq_prep(s, c, ST_CLAIM_DROP, &st)) != 0)
		goto fail;
	if ((b = bind_text(st, 1, key)) != 0) {
		rc = bind_fail(c, st, b, "releasing the cache claim");
		goto fail;
	}
	if ((rc = dsq_run_done(c, st, "releasing the cache claim")) != 0)
		goto fail;
	return dsq_tx_commit(s, c);
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error,
                  const char *metadata, int64_t ttl_ms)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = cache_put_tx(s, c, key, value, len, error, metadata, ttl_ms);
	dsq_pool_put(s, c);
	return rc;
}

static int cache_claim_tx(sq_store *s, sq_conn *c, const char *key, const char *owner, int64_t lease_ms)
{
	int64_t now = dura_now_ms();
	char now_txt[24], exp_txt[24];
	sqlite3_stmt *st;
	fmt_time(now_txt, now);
	fmt_time(exp_txt, dura__add_ms(now, lease_ms));
	int rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	/* a value that is there and fresh: nothing to compute */
	if ((rc = dsq_prep(s, c, ST_CACHE_LIVE, &st)) != 0)
		goto fail;
	/* a failed bind's code goes to dsq_fail() below */
	if ((rc = bind_text(st, 1, key)) == SQLITE_OK && (rc = bind_text(st, 2, now_txt)) == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		rc = dura_sql_err_cache_has_value(SQ, key);
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = dsq_fail(c, rc, "reading the cache");
		goto fail;
	}
	/* another owner's claim that has not expired */
	if ((rc = dsq_prep(s, c, ST_CLAIM_GET, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, key)) == SQLITE_OK) /* else to dsq_fail() below */
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(st, 0);
		const char *until = (const char *)sqlite3_column_text(st, 1);
		if (holder && until && strcmp(holder, owner) != 0 && strcmp(until, now_txt) > 0) {
			rc = dura_sql_err_cache_claimed(SQ, key, holder, until);
			sqlite3_reset(st);
			goto fail;
		}
	} else if (rc != SQLITE_DONE) {
		rc = dsq_fail(c, rc, "reading a cache claim");
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	if ((rc = dsq_prep(s, c, ST_CLAIM_SET, &st)) != 0)
		goto fail;
	int b;
	if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, owner)) || (b = bind_text(st, 3, exp_txt))) {
		rc = bind_fail(c, st, b, "claiming a cache key");
		goto fail;
	}
	if ((rc = dsq_run_done(c, st, "claiming a cache key")) != 0)
		goto fail;
	return dsq_tx_commit(s, c);
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = cache_claim_tx(s, c, key, owner, lease_ms);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_cache_release(void *impl, const char *key, const char *owner)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int changes = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CLAIM_RELEASE, &st)) == 0) {
		int b;
		if ((b = bind_text(st, 1, key)) || (b = bind_text(st, 2, owner)))
			rc = bind_fail(c, st, b, "releasing a cache claim");
		else
			rc = dsq_write_one(c, st, "releasing a cache claim", &changes);
	}
	dsq_pool_put(s, c);
	if (rc == 0 && changes == 0)
		return dura_sql_err_cache_not_claimed(SQ, key, owner);
	return rc;
}

int dsq_cache_delete(void *impl, const char *key)
{
	return dsq_delete_by(impl, ST_CACHE_DELETE, key, "cache key %s not found");
}

static int purge_tx(sq_store *s, sq_conn *c, int64_t *count)
{
	char now_txt[24];
	sqlite3_stmt *st;
	int changes = 0, rc = dsq_tx_begin(s, c);
	if (rc)
		return rc;
	fmt_time(now_txt, dura_now_ms());
	if ((rc = dsq_prep(s, c, ST_CACHE_PURGE, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, now_txt)) != 0) {
		rc = bind_fail(c, st, rc, "purging the cache");
		goto fail;
	}
	if ((rc = dsq_write_one(c, st, "purging the cache", &changes)) != 0)
		goto fail;
	/* expired claims are litter too; they are not counted */
	if ((rc = dsq_prep(s, c, ST_CLAIM_PURGE, &st)) != 0)
		goto fail;
	if ((rc = bind_text(st, 1, now_txt)) != 0) {
		rc = bind_fail(c, st, rc, "purging cache claims");
		goto fail;
	}
	if ((rc = dsq_write_one(c, st, "purging cache claims", NULL)) != 0)
		goto fail;
	if ((rc = dsq_tx_commit(s, c)) != 0)
		return rc;
	*count = changes;
	return 0;
fail:
	dsq_tx_rollback(s, c);
	return rc;
}

int dsq_cache_purge_expired(void *impl, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	rc = purge_tx(s, c, count);
	dsq_pool_put(s, c);
	return rc;
}

int dsq_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CACHE_LIST, &st)) != 0)
		goto out;
	if ((rc = bind_text(st, 1, cursor)) || (rc = bind_text(st, 2, cursor)) || (rc = bind_int64(st, 3, (int64_t)limit))) {
		rc = bind_fail(c, st, rc, "listing the cache");
		goto out;
	}
	if ((rc = dsq_collect(c, st, DURA_SQL_CACHE_LISTED, (void **)&out->items, &out->count, "listing the cache")) != 0)
		goto out;
	if (out->count == limit && out->count > 0) {
		out->next_cursor = dura_strdup(out->items[out->count - 1].key);
		if (!out->next_cursor) {
			rc = dura_error_oom(SQ);
			dura_cache_list_free(out);
		}
	}
out:
	dsq_pool_put(s, c);
	return rc;
}

int dsq_cache_stats(void *impl, dura_cache_stats *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24];
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_CACHE_STATS, &st)) == 0) {
		fmt_time(now_txt, dura_now_ms());
		if ((rc = bind_text(st, 1, now_txt)) == SQLITE_OK) /* else to dsq_fail() below */
			rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			out->entries = sqlite3_column_int64(st, 0);
			out->expired = sqlite3_column_int64(st, 1);
			out->bytes = sqlite3_column_int64(st, 2);
			rc = 0;
		} else {
			rc = dsq_fail(c, rc, "reading cache statistics");
		}
		sqlite3_reset(st);
	}
	dsq_pool_put(s, c);
	return rc;
}
