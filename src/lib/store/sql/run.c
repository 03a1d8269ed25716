/*
 * run.c - the server SQL stores' retry loop (run.h).
 */
#include "run.h"

#include "../../util.h"

#include <stdio.h>
#include <stdlib.h>

/* 1..2, 2..4, ... 32..64 ms: jittered, so that two operations that
 * deadlocked each other do not meet again at once. */
static void backoff(int attempt)
{
	int64_t base = (int64_t)2 << (attempt < 5 ? attempt : 5);
	dura__sleep_ms(base / 2 + rand() % (base / 2 + 1));
}

int dura_sql_run(dura_sql_pool *pool, const dura_sql_driver *d, dura_sql_body fn, void *arg, unsigned flags)
{
	int again = 0, busy = 0, agains = 0, lost = 0;
	void *store = pool->store;
	for (;;) {
		dura_sql_conn *c;
		int rc = dura_sql_pool_get(pool, &c);
		if (rc)
			return rc;
		d->clear(c);
		int at_commit = 0;
		if (flags & DURA_SQL_TX)
			rc = d->begin(store, c);
		if (rc == 0)
			rc = fn(store, c, arg, again);
		if (flags & DURA_SQL_TX) {
			if (rc == 0) {
				at_commit = 1;
				rc = d->commit(store, c);
			} else {
				d->rollback(store, c);
			}
		}
		dura_sql_failure why = rc && rc != DURA_SQL_AGAIN ? d->classify(c) : DURA_SQL_FAILED;
		dura_sql_pool_put(pool, c);
		if (rc == 0)
			return 0;
		if (rc == DURA_SQL_AGAIN) {
			if (++agains < d->again_attempts)
				continue;
			return dura_error_set_native(DURA_EBUSY, d->store, 0, NULL, "gave up after %d attempts in a busy store",
			                             agains);
		}
		if (why == DURA_SQL_RETRYABLE && ++busy < d->busy_attempts) {
			backoff(busy);
			continue;
		}
		if (why == DURA_SQL_LOST && lost++ < 2) {
			if ((flags & DURA_SQL_TX) && !at_commit)
				continue; /* the server rolls the transaction back */
			if (flags & DURA_SQL_IDEMPOTENT) {
				again = 1;
				continue;
			}
			if (flags & DURA_SQL_TX) {
				const dura_error *e = dura_error_last();
				char msg[512];
				snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "");
				return dura_error_set_native(DURA_EIO, d->store, e ? e->native_code : 0, NULL,
				                             "the connection was lost while committing: the change may or may not "
				                             "have been applied (%s)",
				                             msg);
			}
		}
		return rc;
	}
}
