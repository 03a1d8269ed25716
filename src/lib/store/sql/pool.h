/*
 * pool.h - the connection pool every SQL store shares.
 *
 * A driver's connection struct starts with a dura_sql_conn, the part the
 * pool reads and writes; the pool hands connections out as dura_sql_conn *
 * and the driver casts back (its struct's first member, so the cast is
 * exact). A handle's pool lends an idle connection that is still fresh,
 * opens a new one while fewer than max are open, or waits for one to come
 * back. A connection given back broken (its session lost: the server went
 * away or restarted) is closed, and every idle one with it, because a
 * restarted server lost them all. At most max_idle stay idle.
 *
 * Thread-safe: any thread may get and put. Fork: in a forked child the
 * driver's atfork_child calls dura_sql_pool_atfork_child(), which lets go
 * of the parent's connections without ending their sessions (the fork
 * guard has made sure none was in use). No driver header here.
 */
#ifndef DURA_SQL_POOL_H
#define DURA_SQL_POOL_H

#include "dura/store.h"

#include <pthread.h>
#include <stdint.h>

typedef struct dura_sql_conn {
	struct dura_sql_conn *next_idle;
	int64_t opened_at;  /* dura_now_ms() when opened (the pool sets it) */
	int64_t idle_since; /* when last given back */
	int broken;         /* set by the driver: the session is lost */
} dura_sql_conn;

typedef struct dura_sql_pool_ops {
	/* open a connection and set its session up; 0 or an error set */
	int (*open)(void *store, dura_sql_conn **out);
	/* end the session and free the connection */
	void (*close)(void *store, dura_sql_conn *c);
	/* free a forked child's copy of a connection, leaving the session (the
	 * parent's) alone; NULL: close() may be used */
	void (*abandon)(void *store, dura_sql_conn *c);
	/* before a healthy connection goes back: undo what it left open (an
	 * unfinished transaction); may set broken; NULL: nothing to undo */
	void (*reset)(void *store, dura_sql_conn *c);
	/* run by every thread before it first uses the driver; NULL: none */
	int (*thread_init)(void);
} dura_sql_pool_ops;

typedef struct dura_sql_pool {
	const dura_sql_pool_ops *ops;
	void *store;         /* the driver's handle, passed to each op */
	int max;             /* open connections at most */
	int max_idle;        /* idle connections kept at most */
	int64_t lifetime_ms; /* a connection's life; 0: unlimited */
	int64_t idle_ms;     /* how long one may stay idle; 0: unlimited */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	dura_sql_conn *idle; /* stack of idle connections */
	int nopen, nidle;
	uint64_t waits; /* gets that had to wait for a connection */
} dura_sql_pool;

/* Set the pool up (the fields above mu filled in by the caller). */
void dura_sql_pool_init(dura_sql_pool *p);
/* Close every idle connection and destroy the lock; none may be lent out. */
void dura_sql_pool_destroy(dura_sql_pool *p);
/* Borrow a connection: 0 with *out, or the open's error. */
int dura_sql_pool_get(dura_sql_pool *p, dura_sql_conn **out);
/* Count c, opened by the driver itself (its first connection, which read
 * the schema), as one of the pool's, and give it back. */
void dura_sql_pool_adopt(dura_sql_pool *p, dura_sql_conn *c);
/* Give c back (reset first, unless broken). */
void dura_sql_pool_put(dura_sql_pool *p, dura_sql_conn *c);
/* Close c instead of giving it back (a session left in a state nobody
 * else should inherit); the idle ones stay. */
void dura_sql_pool_discard(dura_sql_pool *p, dura_sql_conn *c);
/* In a forked child: abandon every connection and start empty. */
void dura_sql_pool_atfork_child(dura_sql_pool *p);
/* The pool's part of a store's stats: open, idle, in use, max_open, waits. */
void dura_sql_pool_stats(dura_sql_pool *p, dura_store_stats *out);

#endif
