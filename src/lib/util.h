/*
 * util.h - small helpers the library's files share: time arithmetic,
 * sleeping, and uthash set up on dura's allocator. Internal; never
 * installed.
 *
 * Each helper is written here once, so that a fix to one (an overflow, a
 * signal) reaches every caller; a file that needs one includes this
 * header rather than carrying a copy of its own.
 */
#ifndef DURA_UTIL_H
#define DURA_UTIL_H

#include "internal.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- time ----------------------------------------------------------------- */

/* a + b for times in ms, saturating instead of overflowing: a timeout of
 * INT64_MAX means "never", and must not wrap round into the past. */
static inline int64_t dura__add_ms(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

/* The CLOCK_MONOTONIC clock in ms, for intervals a wall-clock step must not bend. */
static inline int64_t dura__mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The CLOCK_MONOTONIC clock in microseconds, for timing a store call. */
static inline int64_t dura__mono_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The CLOCK_MONOTONIC time ms (>= 0) from now, as pthread_cond_timedwait
 * wants it for a condition variable set to that clock. Monotonic, so that
 * a wall-clock step neither cuts a wait short nor stretches it. */
static inline struct timespec dura__mono_after_ms(int64_t ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC (with
 * dura__mono_after_ms): 0, or pthread's error. */
static inline int dura__cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc)
		return rc;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

/* Sleep for ms (nothing for ms <= 0), resuming after signals so that the
 * whole time passes. clock.c. */
void dura__sleep_ms(int64_t ms);

/* A duration in *out (ms): "500ms", "5s", "2m", "1h", a bare number being
 * bare_unit_ms each; DURA_EINVAL naming URL option `name` in store's name
 * otherwise. url.c. */
int dura__parse_duration(int64_t *out, const char *store, const char *name, const char *v, int64_t bare_unit_ms);

/* ---- JSON ------------------------------------------------------------------ */

/* ["v0","v1",...] with each string JSON-quoted, as a new string to
 * dura_free(); NULL when out of memory. json.c. */
char *dura__json_string_array(const char *const *v, size_t n);

/* ---- uthash --------------------------------------------------------------- */

/* uthash through dura's allocator, reporting OOM instead of exiting: a
 * function that adds to a hash declares `int hash_oom = 0;` and checks it
 * after the HASH_ADD. These must be defined before <uthash.h> is read,
 * which is why that header is included from here and nowhere else. */
#define uthash_malloc(sz) dura_malloc(sz)
#define uthash_free(ptr, sz) dura_free(ptr)
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) ((void)(obj), hash_oom = 1)
#include <uthash.h>

/* retry.c: the delay before attempt `attempt + 1` after `attempt`
 * failures, exponential with jitter and a cap (node retries, and the
 * stores' own backoff). */
int64_t dura__backoff_ms(const dura_node_options *o, int attempt);

#endif
