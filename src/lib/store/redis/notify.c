/*
 * notify.c - waiting for a run to change and for work to appear, on the
 * channels the scripts publish to ({P}:changed:<run_id>, {P}:ready).
 *
 * Subscribe first, then look: a change between the look and the wait is
 * then a message, never missed. Pub/sub reaches every node of a cluster,
 * so the subscriber may sit on any of them. A subscription that breaks (a
 * server restart, a failover) is made again until the deadline.
 */
#include "redis.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* 1 when the run's version is not `version` any more, 0 when it still is;
 * a negative code when the run is gone or it cannot tell. */
static int run_moved(dr_store *s, const char *run_id, int64_t version)
{
	int64_t v;
	int rc = dr_run_field(s, run_id, "version", &v);
	return rc ? rc : v != version;
}

/* Wait on channel until a message, the deadline (none when timeout_ms is
 * negative), or (with run_id) the run having moved past version. */
static int wait_on(dr_store *s, const char *channel, const char *run_id, int64_t version, int64_t timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX / 2 : mono_ms() + timeout_ms;
	for (;;) {
		dr_sub *sub = NULL;
		int rc = dr_sub_open(s->client, channel, &sub);
		if (rc == 0 && run_id) {
			int moved = run_moved(s, run_id, version);
			if (moved != 0) {
				dr_sub_close(sub);
				return moved > 0 ? 0 : moved;
			}
		}
		int64_t left = deadline - mono_ms();
		if (rc == 0) {
			rc = left > 0 ? dr_sub_wait(sub, left) : DURA_ETIMEOUT;
			dr_sub_close(sub);
			if (rc == DURA_ETIMEOUT && run_id) {
				/* one last look: a change may have come with the timeout */
				int moved = run_moved(s, run_id, version);
				if (moved != 0)
					return moved > 0 ? 0 : moved;
				left = 0;
			} else if (rc != DURA_EIO) {
				return rc;
			}
		}
		/* broken or not made: try again in a while, until the deadline */
		left = deadline - mono_ms();
		if (left <= 0) {
			if (run_id)
				return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL,
				                             "run %s is still at version %lld after %lld ms", run_id,
				                             (long long)version, (long long)timeout_ms);
			return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL, "no run became ready within %lld ms",
			                             (long long)timeout_ms);
		}
		struct timespec nap = {0, (left < 100 ? left : 100) * 1000000L};
		nanosleep(&nap, NULL);
	}
}

int dr_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms)
{
	dr_store *s = impl;
	char channel[320];
	if (dr_key(s, channel, sizeof(channel), "changed", run_id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis channel");
	return wait_on(s, channel, run_id, version, timeout_ms);
}

int dr_wait_ready(void *impl, int64_t timeout_ms)
{
	dr_store *s = impl;
	char channel[64];
	dr_key(s, channel, sizeof(channel), "ready", NULL);
	return wait_on(s, channel, NULL, 0, timeout_ms);
}
