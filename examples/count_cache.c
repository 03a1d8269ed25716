/*
 * count_cache - the step cache, cold, warm and with a short TTL, on any
 * store (the reference document's Redis example, with the URL swapped):
 *
 *   run 1 (cold)   computes: the computation sleeps 200 ms; the entry is
 *                  then found in the store
 *   run 2 (warm)   served from the cache, also to a new connection
 *   run 3 (TTL)    a 100 ms entry: computed, then expired after 150 ms
 *                  and computed again
 *
 * Prints each duration; exits non-zero if a warm run recomputed or an
 * expired one did not.
 *
 * usage: count_cache [STORE_URL]     e.g. redis://localhost:6379/0
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
	printf("  [Computing] Count for \"%s\" (sleeping 200ms)...\n", text);
	usleep(200000);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%zu", strlen(text));
	return dura_cache_value_set(out, buf, (size_t)n, "{\"content_type\":\"text/plain\"}");
}

/* The same, quick, with a short TTL. */
static int count_short(dura_cache_value *out, void *payload)
{
	const char *text = payload;
	computations++;
	printf("  [Computing with short TTL] Count for \"%s\"\n", text);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%zu", strlen(text));
	return dura_cache_value_set(out, buf, (size_t)n, NULL);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int fetch(dura_store *s, const char *label, const char *key, const char *text)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = 60000;
	dura_cache_entry *e;
	if (label)
		printf("\n--- %s ---\n", label);
	int rc = dura_cache_do_store(s, key, &o, count_chars, (void *)text, &e);
	if (rc) {
		fprintf(stderr, "count_cache: %s\n", dura_error_last()->message);
		return rc;
	}
	if (label)
		printf("Result: Count = %.*s\nDuration: %.1fms\n", (int)e->value_len, (const char *)e->value, ms_since(&t0));
	dura_cache_entry_free(e);
	return 0;
}

static int fetch_short(dura_store *s, const char *key, const char *text)
{
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = 100;
	dura_cache_entry *e;
	int rc = dura_cache_do_store(s, key, &o, count_short, (void *)text, &e);
	if (rc) {
		fprintf(stderr, "count_cache: %s\n", dura_error_last()->message);
		return rc;
	}
	dura_cache_entry_free(e);
	return 0;
}

/* How many entries of the store have key in their name. */
static int entries_with(dura_store *s, const char *key)
{
	dura_cache_list l = {0};
	int n = 0;
	char *cursor = NULL;
	do {
		if (dura_store_cache_list(s, cursor, 1000, &l) != 0)
			return -1;
		for (size_t i = 0; i < l.count; i++)
			n += strstr(l.items[i].key, key) != NULL;
		dura_free(cursor);
		cursor = l.next_cursor;
		l.next_cursor = NULL;
		dura_cache_list_free(&l);
	} while (cursor);
	return n;
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
	dura_store_info info;
	dura_store_info_get(s, &info);
	printf("Connected to %s successfully\n", info.location);
	int bad = 0;
	bad |= fetch(s, "Run 1 (Cold)", key, text) != 0 || computations != 1;
	int found = entries_with(s, key);
	printf("Verified: Found %d key(s) in the %s store\n", found, info.scheme);
	bad |= found != 1;
	bad |= fetch(s, "Run 2 (Warm)", key, text) != 0 || computations != 1;
	/* a memory store is private to its handle: a new one starts empty */
	if ((info.caps & DURA_CAP_MULTI_PROCESS) && dura_store_open(&s2, url, NULL) == 0) {
		bad |= fetch(s2, NULL, key, text) != 0 || computations != 1;
		printf("Verified: a new connection is served from the store\n");
		dura_store_close(s2);
	}

	printf("\n--- Run 3 (TTL Test) ---\n");
	char shortkey[200];
	snprintf(shortkey, sizeof(shortkey), "%s:short", key);
	int before = computations;
	bad |= fetch_short(s, shortkey, "short ttl test") != 0 || computations != before + 1;
	printf("First call with short TTL done\n");
	printf("Waiting for TTL to expire... (150ms)\n");
	usleep(150000);
	bad |= fetch_short(s, shortkey, "short ttl test") != 0 || computations != before + 2;
	printf("\n%s: %s cache test %s!\n", bad ? "FAILED" : "SUCCESS", info.scheme, bad ? "failed" : "passed");
	dura_free(key);
	dura_store_close(s);
	return bad ? 1 : 0;
}
