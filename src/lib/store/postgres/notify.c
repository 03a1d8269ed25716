/*
 * notify.c - the PostgreSQL store's wait_change (DURA_CAP_NOTIFY): a
 * waiter sleeps until the run it waits on changes, woken by LISTEN/NOTIFY
 * instead of polling.
 *
 * Every change of a run's row notifies channel <prefix>dura_runs with the
 * run id, from a trigger in the writing transaction (schema.c), so the
 * notification leaves when the change commits, whichever operation made
 * it. A handle keeps one dedicated listening connection, opened on the
 * first wait and opened again by itself after it was lost. Waiters share
 * it: one at a time reads the socket for everyone (the "driver"), the
 * others sleep on a condition variable; every notification read goes into
 * a small ring with a sequence number, and a waiter looks in the ring for
 * its run. A waiter reads the run's version only after LISTEN is in
 * place, and again whenever its run was named, the ring overflowed or the
 * connection was replaced, so no change is missed. A worker with nothing
 * to claim waits on <prefix>dura_ready the same way (wait_ready).
 */
#include "pg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static pg_listener *listener_of(pg_store *s)
{
	return &s->listen;
}

void dura_pg_listener_init(pg_store *s)
{
	pg_listener *l = listener_of(s);
	pthread_mutex_init(&l->mu, NULL);
	dura__cond_init_mono(&l->cv);
	l->db = NULL;
	l->driving = 0;
	l->seq = 0;
	l->epoch = 0;
}

/* In a forked child: the listening connection is the parent's session. */
void dura_pg_listener_atfork_child(pg_store *s)
{
	pg_listener *l = listener_of(s);
	if (l->db) {
		int fd = PQsocket(l->db);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0 && null >= 0)
			dup2(null, fd);
		if (null >= 0)
			close(null);
		PQfinish(l->db);
	}
	dura_pg_listener_init(s);
}

void dura_pg_listener_close(pg_store *s)
{
	pg_listener *l = listener_of(s);
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
}

/* Open the listening connection and LISTEN (l->mu held). */
static int listen_open(pg_store *s, pg_listener *l)
{
	pg_conn *c;
	int rc = dura_pg_conn_open(s, &c);
	if (rc)
		return rc;
	char *sql = dura_pg_expand(s, "LISTEN \"{p}dura_runs\"; LISTEN \"{p}dura_ready\"");
	if (!sql) {
		dura_pg_conn_close(c);
		return dura_error_oom(PG);
	}
	rc = dura_pg_exec_simple(s, c, sql, "LISTEN");
	dura_free(sql);
	if (rc) {
		dura_pg_conn_close(c);
		return rc;
	}
	l->db = c->db; /* keep the libpq connection, not the pool's wrapper */
	c->db = NULL;
	dura_pg_conn_close(c);
	l->epoch++;
	return 0;
}

/* Read what arrived on the socket into the ring (l->mu not held; only
 * the driver calls this). -1 when the connection is gone. */
static int drain(pg_listener *l, PGconn *db, const char **names, int *n, int *ready)
{
	*n = 0;
	*ready = 0;
	if (!PQconsumeInput(db))
		return -1;
	PGnotify *nt;
	while ((nt = PQnotifies(db)) != NULL) {
		size_t cl = strlen(nt->relname);
		if (cl >= 10 && strcmp(nt->relname + cl - 10, "dura_ready") == 0) {
			(*ready)++;
		} else if (*n < PG_NOTIFY_BATCH) {
			size_t len = strlen(nt->extra);
			char *copy = dura_malloc(len + 1);
			if (copy)
				memcpy(copy, nt->extra, len + 1);
			names[(*n)++] = copy; /* NULL (no memory) counts as "some run" */
		}
		PQfreemem(nt);
	}
	(void)l;
	return 0;
}

/*
 * One turn of a waiter, l->mu held (and held again on return): when
 * nobody reads the socket, read it for up to slice ms for everyone, put
 * what arrived into the ring and the ready count, and wake the others;
 * else sleep until the reader does (or slice passes).
 */
static void turn(pg_listener *l, int64_t slice)
{
	if (l->driving) {
		struct timespec t = dura__mono_after_ms(slice);
		pthread_cond_timedwait(&l->cv, &l->mu, &t);
		return;
	}
	l->driving = 1;
	PGconn *db = l->db;
	pthread_mutex_unlock(&l->mu);
	struct pollfd pfd = {PQsocket(db), POLLIN, 0};
	int pr = poll(&pfd, 1, (int)slice);
	const char *names[PG_NOTIFY_BATCH];
	int n = 0, ready = 0, dead = pr < 0 && errno != EINTR ? -1 : 0;
	if (!dead && pr > 0)
		dead = drain(l, db, names, &n, &ready);
	pthread_mutex_lock(&l->mu);
	l->driving = 0;
	for (int i = 0; i < n; i++) {
		char **slot = &l->ring[l->seq % PG_NOTIFY_RING];
		dura_free(*slot);
		*slot = (char *)names[i];
		l->seq++;
	}
	l->ready += (uint64_t)ready;
	if (dead) {
		PQfinish(l->db); /* lost: the next turn opens it again */
		l->db = NULL;
		l->ready++; /* what was missed meanwhile may be claimable */
	}
	pthread_cond_broadcast(&l->cv);
}

/* The run's version now: 0 with *v, or the failure (DURA_ENOTFOUND). */
struct version_arg {
	const char *run_id;
	int64_t v;
};

static int version_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct version_arg *a = arg;
	dura_sql_params p;
	void *m;
	(void)again;
	p.n = 0;
	dura_sql_p_str(&p, a->run_id);
	int rc = dura_sql_st_run(s, c, ST_RUN_VERSION, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1) {
		a->v = dura_sql_c_int(s, m, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = dura_sql_err_run_not_found(PG, a->run_id);
	}
	dura_sql_st_done(s, m);
	return rc;
}

static int version_now(pg_store *s, const char *run_id, int64_t *v)
{
	struct version_arg a = {run_id, 0};
	int rc = dura_sql_run_op(&s->base, version_body, &a, DURA_SQL_IDEMPOTENT);
	*v = a.v;
	return rc;
}

int dura_pg_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms)
{
	pg_store *s = impl;
	pg_listener *l = listener_of(s);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : dura__add_ms(dura_now_ms(), timeout_ms);
	int rc = 0, look = 1;
	pthread_mutex_lock(&l->mu);
	uint64_t seen = l->seq, epoch = l->epoch;
	for (;;) {
		if (!l->db && !l->driving) {
			if ((rc = listen_open(s, l)) != 0)
				break;
			look = 1; /* notifications before LISTEN are lost: read the run */
		}
		if (l->epoch != epoch) {
			epoch = l->epoch;
			look = 1;
		}
		if (l->seq - seen > PG_NOTIFY_RING) {
			look = 1; /* the ring went round: maybe ours was in it */
			seen = l->seq - PG_NOTIFY_RING;
		}
		for (; seen < l->seq; seen++) {
			const char *name = l->ring[seen % PG_NOTIFY_RING];
			if (!name || strcmp(name, run_id) == 0)
				look = 1;
		}
		if (look) {
			int64_t v = 0;
			look = 0;
			pthread_mutex_unlock(&l->mu);
			rc = version_now(s, run_id, &v);
			pthread_mutex_lock(&l->mu);
			if (rc)
				break;
			if (v != version)
				break;
			continue; /* something may have arrived while we read */
		}
		int64_t now = dura_now_ms();
		if (now >= deadline) {
			rc = dura_error_set_native(DURA_ETIMEOUT, PG, 0, NULL, "run %s is still at version %lld after %lld ms",
			                           run_id, (long long)version, (long long)timeout_ms);
			break;
		}
		turn(l, deadline - now > 1000 ? 1000 : deadline - now);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

/* A worker's wait for a claimable run (store.h wait_ready): a
 * notification on <prefix>dura_ready (schema.c's trigger sends one when a
 * run becomes claimable), or the time out. */
int dura_pg_wait_ready(void *impl, int64_t timeout_ms)
{
	pg_store *s = impl;
	pg_listener *l = listener_of(s);
	int64_t deadline = dura__add_ms(dura_now_ms(), timeout_ms > 0 ? timeout_ms : 0);
	int rc = DURA_ETIMEOUT;
	pthread_mutex_lock(&l->mu);
	uint64_t seen = l->ready;
	for (;;) {
		if (!l->db && !l->driving && (rc = listen_open(s, l)) != 0)
			break; /* cannot listen: the caller polls */
		rc = DURA_ETIMEOUT;
		if (l->ready != seen) {
			rc = 0;
			break;
		}
		int64_t now = dura_now_ms();
		if (now >= deadline)
			break;
		turn(l, deadline - now > 1000 ? 1000 : deadline - now);
	}
	pthread_mutex_unlock(&l->mu);
	if (rc == DURA_ETIMEOUT)
		dura_error_clear();
	return rc;
}
