/*
 * bench_cache - step cache hit latency, against the raw driver in the same
 * run: on SQLite, a prepared primary-key SELECT of the same row through
 * sqlite3 directly; on memory, the store call itself and dura_cache_do.
 *
 * usage: bench_cache [DIR] [SAMPLES]
 */
#include "raw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char VALUE[] = "{\"count\":11,\"text\":\"hello dura\",\"model\":\"v2\"}";

static int never(dura_cache_value *out, void *payload)
{
	(void)out;
	(void)payload;
	die("a warm cache computed");
	return -1;
}

static void put(dura_store *s, const char *key)
{
	if (dura_store_cache_put(s, key, VALUE, sizeof(VALUE) - 1, NULL, "{\"content_type\":\"application/json\"}", 0))
		die("put");
}

/* Median latency of n calls of dura_store_cache_get and of dura_cache_do. */
static void dura_hits(dura_store *s, const char *key, int n, double *get50, double *do50)
{
	double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double));
	char full[200];
	snprintf(full, sizeof(full), "global:%s", key);
	put(s, full);
	for (int i = 0; i < n; i++) {
		dura_cache_entry *e;
		double t0 = now_us();
		if (dura_store_cache_get(s, full, &e))
			die("get");
		double t1 = now_us();
		dura_cache_entry_free(e);
		double t2 = now_us();
		if (dura_cache_do_store(s, key, NULL, never, NULL, &e))
			die("cache_do");
		double t3 = now_us();
		dura_cache_entry_free(e);
		a[i] = t1 - t0;
		b[i] = t3 - t2;
	}
	*get50 = pct(a, n, 0.5);
	*do50 = pct(b, n, 0.5);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "bench-tmp";
	int n = argc > 2 ? atoi(argv[2]) : 20000;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	printf("bench_cache: cache hit latency, %d samples (medians)\n", n);

	dura_store *m;
	if (dura_store_open(&m, "memory:", NULL))
		die("memory");
	double g, d;
	dura_hits(m, "k1", n, &g, &d);
	printf("memory   dura_store_cache_get %7.3f us   dura_cache_do %7.3f us\n", g, d);
	dura_store_close(m);

	char path[512], url[600];
	snprintf(path, sizeof(path), "%s/cache.db", dir);
	remove_db(path);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	dura_store *s;
	if (dura_store_open(&s, url, NULL))
		die("sqlite");
	put(s, "global:k1");

	/* the raw baseline: the same row by its primary key, same file */
	sqlite3 *db;
	sqlite3_stmt *st;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	if (sqlite3_prepare_v3(db,
	                       "SELECT value, error, created_at, expires_at, metadata FROM step_cache WHERE \"key\" = ?1 "
	                       "AND (expires_at IS NULL OR expires_at > ?2)",
	                       -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_cache: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	double *raw = calloc((size_t)n, sizeof(double)), *dg = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++) {
		/* interleaved: raw, then dura */
		double t0 = now_us();
		char now[24];
		dura_time_format(now, dura_now_ms());
		sqlite3_bind_text(st, 1, "global:k1", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			die("raw select");
		/* copy the row out, as any caller must */
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		void *copy = malloc(len);
		memcpy(copy, sqlite3_column_blob(st, 0), len);
		sqlite3_reset(st);
		double t1 = now_us();
		free(copy);
		dura_cache_entry *e;
		double t2 = now_us();
		if (dura_store_cache_get(s, "global:k1", &e))
			die("get");
		double t3 = now_us();
		dura_cache_entry_free(e);
		raw[i] = t1 - t0;
		dg[i] = t3 - t2;
	}
	double r50 = pct(raw, n, 0.5), g50 = pct(dg, n, 0.5);
	dura_hits(s, "k2", n / 4, &g, &d);
	printf("sqlite   raw prepared SELECT %7.3f us   dura_store_cache_get %7.3f us   ratio %.3fx\n", r50, g50,
	       g50 / r50);
	printf("sqlite   dura_cache_do hit %7.3f us (get + scoping)   ratio to raw %.3fx\n", d, d / r50);
	free(raw);
	free(dg);
	sqlite3_finalize(st);
	sqlite3_close(db);
	dura_store_close(s);
	return 0;
}
