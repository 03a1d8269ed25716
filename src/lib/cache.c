/*
 * cache.c - the step cache's single flight: exactly one caller computes a
 * missing key while the others wait for its value.
 *
 * The claim is a lease in the store (cache_claim), so it holds across
 * threads, processes and machines; the store's put of the value releases
 * it. While the claimer computes, a heartbeat thread renews the claim
 * every lease/3, so a computation may run far longer than the lease and
 * is still never duplicated, even when one renewal is slow, while a
 * claimer that dies (SIGKILL, power) is replaced within one lease - three
 * heartbeat intervals - plus one poll of a waiter. A failed heartbeat is retried at once, every 50 ms, until the
 * lease is gone. The only case where two callers compute is a claimer
 * that cannot reach the store for a whole lease.
 */
#include "engine.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_LEASE_MS 2000
#define HEARTBEAT_RETRY_MS 50

int dura_cache_value_set(dura_cache_value *v, const void *data, size_t len, const char *metadata)
{
	if (!v || (!data && len))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_value_set: value or data is NULL");
	unsigned char *d = dura_malloc(len);
	char *m = metadata ? dura_strdup(metadata) : NULL;
	if (!d || (metadata && !m)) {
		dura_free(d);
		dura_free(m);
		return dura_error_oom("");
	}
	if (len)
		memcpy(d, data, len);
	dura_free(v->data);
	dura_free(v->metadata);
	v->data = d;
	v->len = len;
	v->metadata = m;
	return 0;
}

int dura_cache_key(char **out, const char *step, const char *inputs_json)
{
	if (!out || !step || !*step)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_key: out or step is missing");
	*out = NULL;
	if (strlen(step) > 180)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_key: step name is longer than 180 bytes");
	json_error_t err;
	json_t *j = json_loads(inputs_json ? inputs_json : "null", JSON_DECODE_ANY, &err);
	if (!j && (!err.text[0] || json_error_code(&err) == json_error_out_of_memory))
		return dura_error_oom(""); /* jansson gives no message when it cannot allocate */
	if (!j)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_key: inputs are not JSON: %s", err.text);
	char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	if (!canon)
		return dura_error_oom("");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok = EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
	free(canon);
	if (!ok)
		return dura_error_set_native(DURA_ERROR, "", 0, NULL, "dura_cache_key: SHA-256 failed");
	size_t n = strlen(step) + 1 + 2 * mdlen + 1;
	char *k = dura_malloc(n);
	if (!k)
		return dura_error_oom("");
	int off = snprintf(k, n, "%s:", step);
	for (unsigned i = 0; i < mdlen; i++)
		off += snprintf(k + off, n - (size_t)off, "%02x", md[i]);
	*out = k;
	return 0;
}

/* The key as stored: scoped, and hashed when the scoped form is too long. */
static int scoped_key(char *buf, size_t size, const char *key, int scope, const char *run_id)
{
	/* the run id's length makes "run:" keys unambiguous whatever they contain */
	int n = scope == DURA_CACHE_SCOPE_RUN ? snprintf(buf, size, "run:%zu:%s:%s", strlen(run_id), run_id, key)
	                                      : snprintf(buf, size, "global:%s", key);
	if (n < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cache key cannot be formatted");
	if ((size_t)n <= DURA_MAX_ID_LEN)
		return 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha256(), NULL))
		return dura_error_set_native(DURA_ERROR, "", 0, NULL, "cache key: SHA-256 failed");
	int off = snprintf(buf, size, "%s:sha256:", scope == DURA_CACHE_SCOPE_RUN ? "run" : "global");
	for (unsigned i = 0; i < mdlen; i++)
		off += snprintf(buf + off, size - (size_t)off, "%02x", md[i]);
	return 0;
}

int dura_cache_scoped_key(char **out, const char *key, dura_cache_scope scope, const char *run_id)
{
	if (!out || !key || !*key || strlen(key) > 4096)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_scoped_key: out or key is missing, or key is too long");
	*out = NULL;
	if (scope != DURA_CACHE_SCOPE_GLOBAL && (scope != DURA_CACHE_SCOPE_RUN || !run_id || !*run_id || strlen(run_id) > DURA_MAX_ID_LEN))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_scoped_key: run scope needs a run id");
	char full[4096 + DURA_MAX_ID_LEN + 16];
	int rc = scoped_key(full, sizeof(full), key, (int)scope, run_id);
	if (rc)
		return rc;
	if (!(*out = dura_strdup(full)))
		return dura_error_oom("");
	return 0;
}

/* ---- the claim's heartbeat ----------------------------------------------------- */

typedef struct heartbeat {
	dura_store *store;
	const char *key, *owner;
	int64_t lease_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	int stop;
	pthread_t thread;
} heartbeat;

static void *heartbeat_main(void *arg)
{
	heartbeat *hb = arg;
	int64_t interval = hb->lease_ms / 3 > 0 ? hb->lease_ms / 3 : 1;
	int64_t wait = interval;
	pthread_mutex_lock(&hb->mu);
	while (!hb->stop) {
		struct timespec until = dura__mono_after_ms(wait);
		while (!hb->stop && pthread_cond_timedwait(&hb->cv, &hb->mu, &until) == 0)
			;
		if (hb->stop)
			break;
		pthread_mutex_unlock(&hb->mu);
		/* a claim by its holder renews it (docs/store-contract.md) */
		int rc = dura_store_cache_claim(hb->store, hb->key, hb->owner, hb->lease_ms);
		pthread_mutex_lock(&hb->mu);
		if (rc == DURA_EBUSY || rc == DURA_EEXISTS)
			break; /* taken over, or filled: nothing left to keep alive */
		wait = rc == 0 ? interval : (HEARTBEAT_RETRY_MS < interval ? HEARTBEAT_RETRY_MS : interval);
	}
	pthread_mutex_unlock(&hb->mu);
	return NULL;
}

static int heartbeat_start(heartbeat *hb, dura_store *store, const char *key, const char *owner, int64_t lease_ms)
{
	memset(hb, 0, sizeof(*hb));
	hb->store = store;
	hb->key = key;
	hb->owner = owner;
	hb->lease_ms = lease_ms;
	if (dura__cond_init_mono(&hb->cv) != 0)
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL, "cache claim heartbeat: no condition variable");
	if (pthread_mutex_init(&hb->mu, NULL) != 0) {
		pthread_cond_destroy(&hb->cv);
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL, "cache claim heartbeat: no mutex");
	}
	if (pthread_create(&hb->thread, NULL, heartbeat_main, hb) != 0) {
		pthread_mutex_destroy(&hb->mu);
		pthread_cond_destroy(&hb->cv);
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL,
		                             "cache claim heartbeat: cannot start a thread; not computing without one");
	}
	return 0;
}

static void heartbeat_stop(heartbeat *hb)
{
	pthread_mutex_lock(&hb->mu);
	hb->stop = 1;
	pthread_cond_signal(&hb->cv);
	pthread_mutex_unlock(&hb->mu);
	pthread_join(hb->thread, NULL);
	pthread_mutex_destroy(&hb->mu);
	pthread_cond_destroy(&hb->cv);
}

static int cached_failure(dura_cache_entry *e, dura_cache_entry **value)
{
	int rc = dura_error_set_native(DURA_ERROR, "", 0, NULL, "cached failure: %s", e->error);
	*value = e;
	return rc;
}

int dura_cache_do_store(dura_store *store, const char *key, const dura_cache_options *opts, dura_compute_fn fn,
                        void *payload, dura_cache_entry **value)
{
	dura_cache_options defaults = DURA_CACHE_OPTIONS_INIT;
	if (value)
		*value = NULL;
	if (!store || !key || !*key || !fn || !value)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: store, key, function and value are required");
	if (opts && opts->version != DURA_CACHE_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "cache options version %u, expected %u", opts->version,
		                             DURA_CACHE_OPTIONS_VERSION);
	opts = opts ? opts : &defaults;
	if (opts->ttl_ms < 0 || opts->lease_ms < 0 || opts->wait_timeout_ms < 0 || opts->error_ttl_ms < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: negative time option");
	if (opts->scope != DURA_CACHE_SCOPE_RUN && opts->scope != DURA_CACHE_SCOPE_GLOBAL)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: unknown scope %d", opts->scope);
	if (opts->scope == DURA_CACHE_SCOPE_RUN && !(opts->run_id && *opts->run_id))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: run scope needs a run id");
	if (opts->scope == DURA_CACHE_SCOPE_RUN && strlen(opts->run_id) > DURA_MAX_ID_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: run id is longer than %d bytes",
		                             DURA_MAX_ID_LEN);
	if (strlen(key) > 4096)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: key is longer than 4096 bytes");
	char full[4096 + DURA_MAX_ID_LEN + 16];
	int rc = scoped_key(full, sizeof(full), key, opts->scope, opts->run_id);
	if (rc)
		return rc;
	int64_t lease = opts->lease_ms ? opts->lease_ms : DEFAULT_LEASE_MS;
	int64_t deadline = dura__add_ms(dura_now_ms(), opts->wait_timeout_ms ? opts->wait_timeout_ms : 60000);
	char owner[DURA_UUID_LEN + 1];
	if ((rc = dura_uuid7(owner)))
		return rc;
	int64_t pause = 1;
	for (;;) {
		dura_cache_entry *e = NULL;
		rc = dura_store_cache_get(store, full, &e);
		if (rc == 0)
			return e->error ? cached_failure(e, value) : (*value = e, 0);
		if (rc != DURA_ENOTFOUND)
			return rc;
		rc = dura_store_cache_claim(store, full, owner, lease);
		if (rc == DURA_EEXISTS)
			continue; /* filled between our get and claim */
		if (rc == DURA_EBUSY) {
			int64_t left = deadline - dura_now_ms();
			if (left <= 0)
				return dura_error_set_native(DURA_ETIMEOUT, "", 0, NULL,
				                             "waited for another caller to compute cache key %.200s; gave up", key);
			dura__sleep_ms(pause < left ? pause : left);
			pause = pause * 2 > 50 ? 50 : pause * 2;
			continue;
		}
		if (rc)
			return rc;

		/* We hold the claim: keep it alive, compute, then publish (which
		 * releases it). */
		heartbeat hb;
		if ((rc = heartbeat_start(&hb, store, full, owner, lease)) != 0) {
			/* report why there is no heartbeat, not how the release went */
			dura__error_saved why;
			dura__error_save(&why);
			dura_store_cache_release(store, full, owner);
			dura__error_restore(&why);
			return rc;
		}
		dura_cache_value v = {NULL, 0, NULL};
		int64_t computed_at = 0;
		int crc = fn(&v, payload);
		heartbeat_stop(&hb);
		if (crc == 0) {
			computed_at = dura_now_ms();
			rc = dura_store_cache_put(store, full, v.data, v.len, NULL, v.metadata, opts->ttl_ms);
		} else {
			const dura_error *ce = dura_error_last();
			char msg[600];
			snprintf(msg, sizeof(msg), "%s", ce && ce->message[0] ? ce->message : dura_strerror(crc));
			if (opts->error_ttl_ms > 0)
				dura_store_cache_put(store, full, NULL, 0, msg, NULL, opts->error_ttl_ms);
			else
				dura_store_cache_release(store, full, owner);
			dura_free(v.data);
			dura_free(v.metadata);
			return dura_error_set_native(crc < 0 ? crc : DURA_ERROR, "", 0, NULL, "computing cache key %.200s failed: %s",
			                             key, msg);
		}
		if (rc) {
			dura_free(v.data);
			dura_free(v.metadata);
			/* keep the put's error: the release below would clear it */
			dura__error_saved why;
			dura__error_save(&why);
			dura_store_cache_release(store, full, owner);
			if (!why.set)
				return dura_error_set_native(rc, "", 0, NULL, "%s", dura_strerror(rc));
			dura__error_restore(&why);
			return rc;
		}
		/* hand back what we computed: no read back, which a short TTL or a
		 * purge could turn into a miss */
		dura_cache_entry *mine = dura_calloc(1, sizeof(*mine));
		char *k = dura_strdup(full);
		if (!mine || !k) {
			dura_free(mine);
			dura_free(k);
			dura_free(v.data);
			dura_free(v.metadata);
			return dura_error_oom("");
		}
		mine->key = k;
		mine->value = v.data;
		mine->value_len = v.len;
		mine->metadata = v.metadata;
		mine->created_at = computed_at;
		mine->expires_at = opts->ttl_ms ? dura__add_ms(computed_at, opts->ttl_ms) : 0;
		*value = mine;
		return 0;
	}
}

int dura_cache_do(dura_ctx *ctx, const char *key, int64_t ttl_ms, dura_cache_scope scope, dura_compute_fn fn,
                  void *payload, dura_cache_entry **value)
{
	if (!ctx)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_cache_do: ctx is NULL");
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = ttl_ms;
	o.scope = (int)scope;
	o.run_id = ctx->rec->run_id;
	return dura_cache_do_store(ctx->eng->store, key, &o, fn, payload, value);
}
