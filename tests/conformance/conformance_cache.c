/*
 * conformance_cache.c - checkpoints and the step cache (values, TTL,
 * purge, stats, list, single-flight claims).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- checkpoints -------------------------------------------------------- */

STORE_TEST(checkpoints_save_load)
{
	char wf[96], cp[96];
	conf_name(wf, sizeof wf, "conf-cp");
	conf_name(cp, sizeof cp, "cp");
	dura_record *rec = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &rec), 0);

	const char *s1 = "{\"phase\":1,\"items\":[\"a\",\"b\"]}";
	REQUIRE_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 1, s1), 0);
	dura_checkpoint *c = NULL;
	REQUIRE_RC(dura_store_checkpoint_load(s, cp, &c), 0);
	CHECK_STR(c->checkpoint_id, cp);
	CHECK_STR(c->run_id, rec->run_id);
	CHECK(c->step == 1);
	CHECK(conf_json_same(c->state, s1));
	CHECK(conf_near_now(c->created_at, 5000));
	CHECK(c->updated_at >= c->created_at);
	int64_t upd1 = c->updated_at;
	dura_checkpoint_free(c);
	c = NULL;

	/* overwrite by id */
	conf_sleep_ms(3);
	const char *s2 = "{\"phase\":2}";
	REQUIRE_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 7, s2), 0);
	REQUIRE_RC(dura_store_checkpoint_load(s, cp, &c), 0);
	CHECK(c->step == 7);
	CHECK(conf_json_same(c->state, s2));
	CHECK(c->updated_at >= upd1);
	CHECK(c->updated_at >= c->created_at);
	dura_checkpoint_free(c);
	c = NULL;

	/* still one checkpoint for the run */
	dura_checkpoint_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, rec->run_id, &l), 0);
	CHECK(l.count == 1);
	dura_checkpoint_list_free(&l);

	/* missing */
	char missing[96];
	conf_name(missing, sizeof missing, "nocp");
	CHECK_RC(dura_store_checkpoint_load(s, missing, &c), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(c == NULL);

	/* invalid JSON is refused and changes nothing */
	CHECK_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 8, "{broken"), DURA_EINVAL);
	CHECK(conf_error_ok(DURA_EINVAL));
	REQUIRE_RC(dura_store_checkpoint_load(s, cp, &c), 0);
	CHECK(c->step == 7);
	dura_checkpoint_free(c);
	CHECK_RC(dura_store_checkpoint_delete(s, cp), 0);
	dura_record_free(rec);
}

static long pos_in(const dura_checkpoint_list *l, const char *id)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].checkpoint_id, id) == 0)
			return (long)i;
	return -1;
}

STORE_TEST(checkpoints_list_delete)
{
	char wf[96], a[96], b[96], c3[96];
	conf_name(wf, sizeof wf, "conf-cplist");
	conf_name(a, sizeof a, "cpa");
	conf_name(b, sizeof b, "cpb");
	conf_name(c3, sizeof c3, "cpc");
	dura_record *r1 = NULL, *r2 = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r1), 0);
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r2), 0);
	REQUIRE_RC(dura_store_checkpoint_save(s, a, r1->run_id, 1, "{\"cp\":\"a\"}"), 0);
	conf_sleep_ms(3);
	REQUIRE_RC(dura_store_checkpoint_save(s, b, r1->run_id, 2, "{\"cp\":\"b\"}"), 0);
	conf_sleep_ms(3);
	REQUIRE_RC(dura_store_checkpoint_save(s, c3, r2->run_id, 1, "{\"cp\":\"c\"}"), 0);

	dura_checkpoint_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, r1->run_id, &l), 0);
	CHECK(l.count == 2);
	CHECK(pos_in(&l, b) == 0 && pos_in(&l, a) == 1); /* newest first */
	for (size_t i = 0; i < l.count; i++)
		CHECK_STR(l.items[i].run_id, r1->run_id);
	if (l.count == 2) {
		CHECK(l.items[0].step == 2);
		CHECK(conf_json_same(l.items[0].state, "{\"cp\":\"b\"}"));
	}
	dura_checkpoint_list_free(&l);

	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, r2->run_id, &l), 0);
	CHECK(l.count == 1 && pos_in(&l, c3) == 0);
	dura_checkpoint_list_free(&l);

	/* all runs */
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, NULL, &l), 0);
	long pa = pos_in(&l, a), pb = pos_in(&l, b), pc = pos_in(&l, c3);
	CHECK(pa >= 0 && pb >= 0 && pc >= 0);
	CHECK(pc < pb && pb < pa);
	dura_checkpoint_list_free(&l);

	/* delete */
	CHECK_RC(dura_store_checkpoint_delete(s, a), 0);
	dura_checkpoint *c = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, a, &c), DURA_ENOTFOUND);
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, r1->run_id, &l), 0);
	CHECK(l.count == 1 && pos_in(&l, b) == 0);
	dura_checkpoint_list_free(&l);
	CHECK_RC(dura_store_checkpoint_delete(s, a), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	/* the others are untouched */
	REQUIRE_RC(dura_store_checkpoint_load(s, c3, &c), 0);
	CHECK(conf_json_same(c->state, "{\"cp\":\"c\"}"));
	dura_checkpoint_free(c);

	/* a run without checkpoints */
	dura_record *r3 = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r3), 0);
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_checkpoint_list(s, r3->run_id, &l), 0);
	CHECK(l.count == 0);
	dura_checkpoint_list_free(&l);

	dura_store_checkpoint_delete(s, b);
	dura_store_checkpoint_delete(s, c3);
	dura_record_free(r1);
	dura_record_free(r2);
	dura_record_free(r3);
}

/* ---- cache -------------------------------------------------------------- */

static const unsigned char BIN[] = {'a', 0, 'b', 0xff, 0, 0x80, '\n', 0};

STORE_TEST(cache_put_get)
{
	char key[96];
	conf_name(key, sizeof key, "conf:cache:bin");
	dura_cache_entry *e = NULL;

	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK(e == NULL);

	REQUIRE_RC(dura_store_cache_put(s, key, BIN, sizeof BIN, "upstream said no", "{\"src\":\"conf\",\"n\":[1,2]}", 0), 0);
	REQUIRE_RC(dura_store_cache_get(s, key, &e), 0);
	REQUIRE(e != NULL);
	CHECK_STR(e->key, key);
	CHECK(e->value_len == sizeof BIN);
	CHECK(e->value != NULL && e->value_len == sizeof BIN && memcmp(e->value, BIN, sizeof BIN) == 0);
	CHECK_STR(e->error, "upstream said no");
	CHECK(conf_json_same(e->metadata, "{\"src\":\"conf\",\"n\":[1,2]}"));
	CHECK(conf_near_now(e->created_at, 5000));
	CHECK(e->expires_at == 0);
	dura_cache_entry_free(e);
	e = NULL;

	/* replace: new value, no error, no metadata, a TTL */
	const char *v2 = "second value";
	REQUIRE_RC(dura_store_cache_put(s, key, v2, strlen(v2), NULL, NULL, 60000), 0);
	REQUIRE_RC(dura_store_cache_get(s, key, &e), 0);
	CHECK(e->value_len == strlen(v2) && memcmp(e->value, v2, strlen(v2)) == 0);
	CHECK(e->error == NULL);
	CHECK(e->metadata == NULL);
	CHECK(e->expires_at > dura_now_ms() + 50000 && e->expires_at <= dura_now_ms() + 60000 + 1000);
	CHECK(e->expires_at >= e->created_at + 59000);
	dura_cache_entry_free(e);
	e = NULL;

	/* an empty value */
	char key2[96];
	conf_name(key2, sizeof key2, "conf:cache:empty");
	REQUIRE_RC(dura_store_cache_put(s, key2, NULL, 0, NULL, NULL, 0), 0);
	REQUIRE_RC(dura_store_cache_get(s, key2, &e), 0);
	CHECK(e->value_len == 0);
	dura_cache_entry_free(e);
	e = NULL;

	/* a large value */
	size_t big = 256 * 1024;
	unsigned char *buf = malloc(big);
	REQUIRE(buf != NULL);
	for (size_t i = 0; i < big; i++)
		buf[i] = (unsigned char)(i * 131u + 7u);
	int rc = dura_store_cache_put(s, key2, buf, big, NULL, NULL, 0);
	CHECK_RC(rc, 0);
	if (rc == 0 && dura_store_cache_get(s, key2, &e) == 0) {
		CHECK(e->value_len == big && memcmp(e->value, buf, big) == 0);
		dura_cache_entry_free(e);
		e = NULL;
	} else {
		test__failed_now = 1;
	}
	free(buf);

	/* keys are data: quotes, wildcards, UTF-8 */
	char odd[160];
	char uid[DURA_UUID_LEN + 1];
	dura_uuid7(uid);
	snprintf(odd, sizeof odd, "conf:odd 'k' \"q\" %%_ \\ \xe2\x82\xac;--%s", uid);
	REQUIRE_RC(dura_store_cache_put(s, odd, "odd", 3, "it's \"bad\"", NULL, 0), 0);
	REQUIRE_RC(dura_store_cache_get(s, odd, &e), 0);
	CHECK_STR(e->key, odd);
	CHECK(e->value_len == 3 && memcmp(e->value, "odd", 3) == 0);
	CHECK_STR(e->error, "it's \"bad\"");
	dura_cache_entry_free(e);
	e = NULL;
	CHECK_RC(dura_store_cache_claim(s, odd, "o", 1000), DURA_EEXISTS);
	CHECK_RC(dura_store_cache_delete(s, odd), 0);

	/* delete */
	CHECK_RC(dura_store_cache_delete(s, key), 0);
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_delete(s, key), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	REQUIRE_RC(dura_store_cache_get(s, key2, &e), 0); /* others untouched */
	dura_cache_entry_free(e);
	dura_store_cache_delete(s, key2);
}

STORE_TEST(cache_ttl)
{
	char k1[96], k2[96];
	conf_name(k1, sizeof k1, "conf:ttl:short");
	conf_name(k2, sizeof k2, "conf:ttl:never");
	dura_cache_entry *e = NULL;
	int64_t t0 = dura_now_ms();
	REQUIRE_RC(dura_store_cache_put(s, k1, "v", 1, NULL, NULL, 100), 0);
	REQUIRE_RC(dura_store_cache_put(s, k2, "w", 1, NULL, NULL, 0), 0);
	int rc = dura_store_cache_get(s, k1, &e);
	if (dura_now_ms() - t0 < 90) { /* only meaningful while surely unexpired */
		CHECK_RC(rc, 0);
		if (e)
			CHECK(e->expires_at >= t0 + 100 && e->expires_at <= dura_now_ms() + 100);
	}
	dura_cache_entry_free(e);
	e = NULL;

	conf_sleep_ms(200);
	CHECK_RC(dura_store_cache_get(s, k1, &e), DURA_ENOTFOUND);
	CHECK(e == NULL);
	REQUIRE_RC(dura_store_cache_get(s, k2, &e), 0);
	CHECK(e->value_len == 1 && e->value[0] == 'w');
	CHECK(e->expires_at == 0);
	dura_cache_entry_free(e);
	e = NULL;

	/* putting again revives the key */
	REQUIRE_RC(dura_store_cache_put(s, k1, "x", 1, NULL, NULL, 60000), 0);
	REQUIRE_RC(dura_store_cache_get(s, k1, &e), 0);
	CHECK(e->value_len == 1 && e->value[0] == 'x');
	dura_cache_entry_free(e);
	dura_store_cache_delete(s, k1);
	dura_store_cache_delete(s, k2);
}

STORE_TEST(cache_purge_expired)
{
	/* start from a store without expired entries */
	int64_t n = -1;
	REQUIRE_RC(dura_store_cache_purge_expired(s, &n), 0);
	CHECK(n >= 0);

	char keys[6][96];
	for (int i = 0; i < 6; i++) {
		conf_name(keys[i], sizeof keys[i], "conf:purge");
		int64_t ttl = i < 3 ? 50 : i < 5 ? 0 : 3600 * 1000;
		REQUIRE_RC(dura_store_cache_put(s, keys[i], "abc", 3, NULL, NULL, ttl), 0);
	}
	conf_sleep_ms(150);
	n = -1;
	REQUIRE_RC(dura_store_cache_purge_expired(s, &n), 0);
	CHECK(n == 3);
	for (int i = 0; i < 6; i++) {
		dura_cache_entry *e = NULL;
		int rc = dura_store_cache_get(s, keys[i], &e);
		CHECK(rc == (i < 3 ? DURA_ENOTFOUND : 0));
		dura_cache_entry_free(e);
	}
	/* nothing left to purge; NULL count is allowed */
	n = -1;
	REQUIRE_RC(dura_store_cache_purge_expired(s, &n), 0);
	CHECK(n == 0);
	CHECK_RC(dura_store_cache_purge_expired(s, NULL), 0);
	for (int i = 3; i < 6; i++)
		dura_store_cache_delete(s, keys[i]);
}

STORE_TEST(cache_stats)
{
	dura_cache_stats a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	REQUIRE_RC(dura_store_cache_purge_expired(s, NULL), 0);
	REQUIRE_RC(dura_store_cache_stats(s, &a), 0);
	CHECK(a.entries >= 0 && a.bytes >= 0 && a.expired >= 0);

	char k1[96], k2[96], k3[96], miss[96];
	conf_name(k1, sizeof k1, "conf:stats");
	conf_name(k2, sizeof k2, "conf:stats");
	conf_name(k3, sizeof k3, "conf:stats:short");
	conf_name(miss, sizeof miss, "conf:stats:miss");
	REQUIRE_RC(dura_store_cache_put(s, k1, "0123456789", 10, NULL, NULL, 0), 0);
	REQUIRE_RC(dura_store_cache_put(s, k2, "01234567890123456789", 20, NULL, NULL, 0), 0);
	REQUIRE_RC(dura_store_cache_stats(s, &b), 0);
	CHECK(b.entries == a.entries + 2);
	CHECK(b.bytes >= a.bytes + 30);
	CHECK(b.hits == a.hits && b.misses == a.misses);

	dura_cache_entry *e = NULL;
	REQUIRE_RC(dura_store_cache_get(s, k1, &e), 0);
	dura_cache_entry_free(e);
	e = NULL;
	REQUIRE_RC(dura_store_cache_get(s, k2, &e), 0);
	dura_cache_entry_free(e);
	e = NULL;
	CHECK_RC(dura_store_cache_get(s, miss, &e), DURA_ENOTFOUND);
	REQUIRE_RC(dura_store_cache_stats(s, &b), 0);
	CHECK(b.hits == a.hits + 2);
	CHECK(b.misses == a.misses + 1);

	/* an expired entry counts as expired, and reading it is a miss */
	REQUIRE_RC(dura_store_cache_put(s, k3, "x", 1, NULL, NULL, 50), 0);
	conf_sleep_ms(150);
	REQUIRE_RC(dura_store_cache_stats(s, &b), 0);
	CHECK(b.expired == a.expired + 1);
	CHECK_RC(dura_store_cache_get(s, k3, &e), DURA_ENOTFOUND);
	REQUIRE_RC(dura_store_cache_stats(s, &b), 0);
	CHECK(b.misses == a.misses + 2);

	/* delete and purge bring the counts back */
	REQUIRE_RC(dura_store_cache_delete(s, k1), 0);
	REQUIRE_RC(dura_store_cache_delete(s, k2), 0);
	REQUIRE_RC(dura_store_cache_purge_expired(s, NULL), 0);
	REQUIRE_RC(dura_store_cache_stats(s, &b), 0);
	CHECK(b.entries == a.entries);
	CHECK(b.bytes == a.bytes);
	CHECK(b.expired == a.expired);
}

STORE_TEST(cache_list)
{
	enum { N = 10, LIMIT = 3 };
	char prefix[96], keys[N][128];
	conf_name(prefix, sizeof prefix, "conf:list");
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "%s:k%02d", prefix, i);
		char val[32];
		int len = snprintf(val, sizeof val, "value-%d", i * 111);
		REQUIRE_RC(dura_store_cache_put(s, keys[i], val, (size_t)len, NULL, i == 4 ? "{\"i\":4}" : NULL, 0), 0);
	}
	int seen[N];
	memset(seen, 0, sizeof seen);
	char *cursor = NULL;
	int pages = 0;
	int last_mine = -1;
	for (;;) {
		dura_cache_list l;
		memset(&l, 0, sizeof l);
		int rc = dura_store_cache_list(s, cursor, LIMIT, &l);
		free(cursor);
		cursor = NULL;
		REQUIRE_RC(rc, 0);
		pages++;
		CHECK(l.count <= LIMIT);
		for (size_t i = 0; i < l.count; i++) {
			dura_cache_entry *e = &l.items[i];
			CHECK(e->value == NULL);
			for (int k = 0; k < N; k++) {
				if (strcmp(e->key, keys[k]) != 0)
					continue;
				seen[k]++;
				CHECK(k > last_mine); /* key order */
				last_mine = k;
				char val[32];
				int len = snprintf(val, sizeof val, "value-%d", k * 111);
				CHECK(e->value_len == (size_t)len);
				if (k == 4)
					CHECK(conf_json_same(e->metadata, "{\"i\":4}"));
			}
		}
		if (l.next_cursor)
			cursor = strdup(l.next_cursor);
		dura_cache_list_free(&l);
		if (!cursor || pages > 1000000)
			break;
	}
	free(cursor);
	for (int k = 0; k < N; k++)
		CHECK(seen[k] == 1);
	CHECK(pages >= (N + LIMIT - 1) / LIMIT);

	/* limit 0 is 100 */
	dura_cache_list l;
	memset(&l, 0, sizeof l);
	REQUIRE_RC(dura_store_cache_list(s, NULL, 0, &l), 0);
	CHECK(l.count >= 1 && l.count <= 100);
	dura_cache_list_free(&l);
	for (int i = 0; i < N; i++)
		dura_store_cache_delete(s, keys[i]);
}

/* Single-flight claims. */
STORE_TEST(cache_claim)
{
	char k[96], k2[96], k3[96], k4[96];
	conf_name(k, sizeof k, "conf:claim");
	conf_name(k2, sizeof k2, "conf:claim:lease");
	conf_name(k3, sizeof k3, "conf:claim:put");
	conf_name(k4, sizeof k4, "conf:claim:expired");

	CHECK_RC(dura_store_cache_claim(s, k, "owner-1", 60000), 0);
	CHECK_RC(dura_store_cache_claim(s, k, "owner-2", 60000), DURA_EBUSY);
	CHECK(conf_error_ok(DURA_EBUSY));
	CHECK_RC(dura_store_cache_claim(s, k, "owner-1", 60000), 0); /* the owner still holds it */
	/* a claim is not a value */
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, k, &e), DURA_ENOTFOUND);
	/* only the owner releases */
	CHECK_RC(dura_store_cache_release(s, k, "owner-2"), DURA_ENOTFOUND);
	CHECK(conf_error_ok(DURA_ENOTFOUND));
	CHECK_RC(dura_store_cache_claim(s, k, "owner-2", 60000), DURA_EBUSY);
	CHECK_RC(dura_store_cache_release(s, k, "owner-1"), 0);
	CHECK_RC(dura_store_cache_release(s, k, "owner-1"), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_claim(s, k, "owner-2", 60000), 0);
	CHECK_RC(dura_store_cache_release(s, k, "owner-2"), 0);

	/* an expired lease is taken over */
	CHECK_RC(dura_store_cache_claim(s, k2, "owner-1", 50), 0);
	conf_sleep_ms(150);
	CHECK_RC(dura_store_cache_claim(s, k2, "owner-2", 60000), 0);
	CHECK_RC(dura_store_cache_claim(s, k2, "owner-1", 60000), DURA_EBUSY);
	CHECK_RC(dura_store_cache_release(s, k2, "owner-1"), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_release(s, k2, "owner-2"), 0);

	/* put releases the claim; then the cached value blocks new claims */
	CHECK_RC(dura_store_cache_claim(s, k3, "owner-1", 60000), 0);
	REQUIRE_RC(dura_store_cache_put(s, k3, "done", 4, NULL, NULL, 0), 0);
	CHECK_RC(dura_store_cache_release(s, k3, "owner-1"), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_claim(s, k3, "owner-2", 60000), DURA_EEXISTS);
	CHECK(conf_error_ok(DURA_EEXISTS));
	CHECK_RC(dura_store_cache_claim(s, k3, "owner-1", 60000), DURA_EEXISTS);
	REQUIRE_RC(dura_store_cache_get(s, k3, &e), 0);
	CHECK(e->value_len == 4 && memcmp(e->value, "done", 4) == 0);
	dura_cache_entry_free(e);
	e = NULL;

	/* an expired value does not block a claim */
	REQUIRE_RC(dura_store_cache_put(s, k4, "old", 3, NULL, NULL, 50), 0);
	conf_sleep_ms(150);
	CHECK_RC(dura_store_cache_claim(s, k4, "owner-1", 60000), 0);
	CHECK_RC(dura_store_cache_claim(s, k4, "owner-2", 60000), DURA_EBUSY);
	REQUIRE_RC(dura_store_cache_put(s, k4, "new", 3, NULL, NULL, 0), 0);
	REQUIRE_RC(dura_store_cache_get(s, k4, &e), 0);
	CHECK(e->value_len == 3 && memcmp(e->value, "new", 3) == 0);
	dura_cache_entry_free(e);

	/* deleting the value lets a claim in again */
	REQUIRE_RC(dura_store_cache_delete(s, k3), 0);
	CHECK_RC(dura_store_cache_claim(s, k3, "owner-2", 60000), 0);
	CHECK_RC(dura_store_cache_release(s, k3, "owner-2"), 0);

	dura_store_cache_delete(s, k4);
}

/* Many threads claim one key at once: exactly one wins. */
struct claim_arg {
	dura_store *s;
	const char *key;
	char owner[32];
	atomic_int *go;
	int rc;
};

static void *claim_thread(void *p)
{
	struct claim_arg *a = p;
	while (!atomic_load(a->go)) {
	}
	a->rc = dura_store_cache_claim(a->s, a->key, a->owner, 60000);
	return NULL;
}

STORE_TEST(cache_claim_race)
{
	enum { N = 8 };
	char key[96];
	conf_name(key, sizeof key, "conf:claim:race");
	atomic_int go = 0;
	struct claim_arg args[N];
	pthread_t th[N];
	int started = 0;
	for (int i = 0; i < N; i++) {
		args[i].s = s;
		args[i].key = key;
		snprintf(args[i].owner, sizeof args[i].owner, "racer-%d", i);
		args[i].go = &go;
		args[i].rc = -999;
		if (pthread_create(&th[i], NULL, claim_thread, &args[i]) != 0)
			break;
		started++;
	}
	atomic_store(&go, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	REQUIRE(started == N);
	int won = -1, wins = 0, busy = 0;
	for (int i = 0; i < N; i++) {
		if (args[i].rc == 0) {
			wins++;
			won = i;
		} else if (args[i].rc == DURA_EBUSY) {
			busy++;
		} else {
			fprintf(stderr, "    racer %d: rc %d\n", i, args[i].rc);
		}
	}
	CHECK(wins == 1);
	CHECK(busy == N - 1);
	if (won >= 0) {
		for (int i = 0; i < N; i++)
			if (i != won)
				CHECK_RC(dura_store_cache_release(s, key, args[i].owner), DURA_ENOTFOUND);
		CHECK_RC(dura_store_cache_release(s, key, args[won].owner), 0);
	}
}

const test_case conf_cache_tests[] = {
	{"checkpoints_save_load", checkpoints_save_load},
	{"checkpoints_list_delete", checkpoints_list_delete},
	{"cache_put_get", cache_put_get},
	{"cache_ttl", cache_ttl},
	{"cache_purge_expired", cache_purge_expired},
	{"cache_stats", cache_stats},
	{"cache_list", cache_list},
	{"cache_claim", cache_claim},
	{"cache_claim_race", cache_claim_race},
};
const size_t conf_cache_ntests = TEST_COUNT(conf_cache_tests);
