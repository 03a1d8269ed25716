/*
 * count_cache - the step cache, cold, warm and across connections.
 *
 *   run 1 (cold)           computes: the computation sleeps 200 ms
 *   run 2 (warm)           served from the cache
 *   run 3 (new connection) served from the store by a fresh handle
 *   then a 300 ms TTL entry: a hit, then expired and computed again
 *
 * Prints each duration; exits non-zero if a warm run recomputed.
 *
 * usage: count_cache [STORE_URL]
 */
#include <dura.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int computations;

/* The expensive step: count the characters of a text. */
static int count_chars(dura_cache_value *out, void *payload)
{
	const char *text = payload;
	computations++;
	printf("  [computing] count of \"%s\" (sleeping 200 ms)...\n", text);
	usleep(200000);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%zu", strlen(text));
	return dura_cache_value_set(out, buf, (size_t)n, "{\"content_type\":\"text/plain\"}");
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int fetch(dura_store *s, const char *label, const char *key, int64_t ttl_ms, const char *text)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = ttl_ms;
	dura_cache_entry *e;
	int rc = dura_cache_do_store(s, key, &o, count_chars, (void *)text, &e);
	if (rc) {
		fprintf(stderr, "count_cache: %s: %s\n", label, dura_error_last()->message);
		return rc;
	}
	printf("--- %s ---\nResult: Count = %.*s\nDuration: %.1f ms\n", label, (int)e->value_len, (const char *)e->value,
	       ms_since(&t0));
	dura_cache_entry_free(e);
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	const char *text = "hello dura";
	char *key;
	char inputs[128];
	snprintf(inputs, sizeof(inputs), "{\"text\":\"%s\",\"at\":%lld}", text, (long long)dura_now_ms());
	if (dura_cache_key(&key, "count", inputs)) {
		fprintf(stderr, "count_cache: %s\n", dura_error_last()->message);
		return 1;
	}
	dura_store *s, *s2;
	if (dura_store_open(&s, url, NULL)) {
		fprintf(stderr, "count_cache: %s\n", dura_error_last()->message);
		return 1;
	}
	int bad = 0;
	bad |= fetch(s, "Run 1 (Cold)", key, 60000, text) != 0 || computations != 1;
	bad |= fetch(s, "Run 2 (Warm)", key, 60000, text) != 0 || computations != 1;
	if (dura_store_open(&s2, url, NULL) == 0) {
		bad |= fetch(s2, "Run 3 (New Connection)", key, 60000, text) != 0;
		dura_store_info info;
		dura_store_info_get(s2, &info);
		/* a memory store is private to its handle: a new one starts empty */
		if (info.caps & DURA_CAP_DURABLE)
			bad |= computations != 1;
		dura_store_close(s2);
	}
	int before = computations;
	char shortkey[200];
	snprintf(shortkey, sizeof(shortkey), "%s:short", key);
	bad |= fetch(s, "Short TTL (300 ms), cold", shortkey, 300, text) != 0 || computations != before + 1;
	bad |= fetch(s, "Short TTL, warm", shortkey, 300, text) != 0 || computations != before + 1;
	usleep(400000);
	bad |= fetch(s, "Short TTL, after expiry", shortkey, 300, text) != 0 || computations != before + 2;
	printf("%s: %d computations\n", bad ? "FAILED" : "SUCCESS", computations);
	dura_free(key);
	dura_store_close(s);
	return bad ? 1 : 0;
}
