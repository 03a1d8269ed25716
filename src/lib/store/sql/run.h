/*
 * run.h - the retry loop of the server SQL stores: one store operation
 * run on a pooled connection, in a transaction or not, and what to do
 * when the server throws something at it.
 *
 * The driver says what a failure was (its classifier reads the server's
 * error number the driver recorded on the connection):
 *   retryable       a deadlock, a lock wait timeout, a serialisation
 *                   failure: run the whole operation again after a jittered
 *                   backoff, DURA_EBUSY after busy_attempts;
 *   connection lost the session is gone: before COMMIT nothing was
 *                   applied, so run it again on a new connection; lost
 *                   during COMMIT the outcome is unknown, so run it again
 *                   only when the body can tell (DURA_SQL_IDEMPOTENT, and
 *                   the body sees again = 1), and otherwise say exactly
 *                   that (DURA_EIO, "may or may not have been applied").
 * A body may also ask to be rolled back and run again (DURA_SQL_AGAIN:
 * it lost a race it can see), up to again_attempts times.
 *
 * SQLite has no such failures (its busy handler waits; a file does not go
 * away) and does not use this loop. No driver header here.
 */
#ifndef DURA_SQL_RUN_H
#define DURA_SQL_RUN_H

#include "pool.h"

enum {
	DURA_SQL_TX = 1,         /* the body runs in a transaction */
	DURA_SQL_IDEMPOTENT = 2, /* after an unknown outcome the body may run again (with again = 1) */
};

#define DURA_SQL_AGAIN 1 /* a body's "roll back and run me again" */

typedef enum dura_sql_failure {
	DURA_SQL_FAILED,    /* anything else: report it */
	DURA_SQL_RETRYABLE, /* deadlock, lock wait timeout: run it again */
	DURA_SQL_LOST       /* the connection is gone (and marked broken) */
} dura_sql_failure;

typedef struct dura_sql_driver {
	const char *store;  /* the store's name in errors */
	int busy_attempts;  /* runs of an operation that keeps meeting retryable failures */
	int again_attempts; /* runs a body may ask for */
	int (*begin)(void *store, dura_sql_conn *c);
	int (*commit)(void *store, dura_sql_conn *c);
	/* undo the open transaction, if any, keeping the thread's error */
	void (*rollback)(void *store, dura_sql_conn *c);
	/* forget the last failure, before an attempt */
	void (*clear)(dura_sql_conn *c);
	/* what the connection's last failure was */
	dura_sql_failure (*classify)(const dura_sql_conn *c);
} dura_sql_driver;

/* An operation's body: 0, a DURA_E* code, or DURA_SQL_AGAIN. `again` is 1
 * when an earlier run's outcome is unknown (its connection was lost after
 * the server may have applied it). */
typedef int (*dura_sql_body)(void *store, dura_sql_conn *c, void *arg, int again);

/* Run fn(store, c, arg, again) on a connection of pool (pool->store is the
 * store) with flags, as the header comment says: 0 or the failure. */
int dura_sql_run(dura_sql_pool *pool, const dura_sql_driver *d, dura_sql_body fn, void *arg, unsigned flags);

#endif
