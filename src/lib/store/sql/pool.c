/*
 * pool.c - the SQL stores' connection pool (pool.h). Connections are
 * opened and closed outside the lock: a slot is reserved (nopen counts
 * it) before an open starts and given back if the open fails, so the
 * lock is only ever held for list surgery.
 */
#include "pool.h"

#include "dura/store.h"

#include <stddef.h>

void dura_sql_pool_init(dura_sql_pool *p)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->idle = NULL;
	p->nopen = p->nidle = 0;
	p->waits = 0;
}

static void close_list(dura_sql_pool *p, dura_sql_conn *c)
{
	while (c) {
		dura_sql_conn *next = c->next_idle;
		p->ops->close(p->store, c);
		c = next;
	}
}

void dura_sql_pool_destroy(dura_sql_pool *p)
{
	close_list(p, p->idle);
	p->idle = NULL;
	p->nopen = p->nidle = 0;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

static int stale(const dura_sql_pool *p, const dura_sql_conn *c, int64_t now)
{
	return (p->lifetime_ms > 0 && now - c->opened_at >= p->lifetime_ms) ||
	       (p->idle_ms > 0 && now - c->idle_since >= p->idle_ms);
}

int dura_sql_pool_get(dura_sql_pool *p, dura_sql_conn **out)
{
	*out = NULL;
	int rc = p->ops->thread_init ? p->ops->thread_init() : 0;
	if (rc)
		return rc;
	dura_sql_conn *old = NULL, *c = NULL;
	int64_t now = (p->lifetime_ms > 0 || p->idle_ms > 0) ? dura_now_ms() : 0;
	int waited = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->idle && now && stale(p, p->idle, now)) {
			dura_sql_conn *x = p->idle;
			p->idle = x->next_idle;
			p->nidle--;
			p->nopen--;
			x->next_idle = old;
			old = x;
		}
		if (p->idle) {
			c = p->idle;
			p->idle = c->next_idle;
			p->nidle--;
			break;
		}
		if (p->nopen < p->max) {
			p->nopen++; /* reserve the slot while opening outside the lock */
			break;
		}
		if (!waited++)
			p->waits++;
		pthread_cond_wait(&p->cv, &p->mu);
		if (now)
			now = dura_now_ms();
	}
	pthread_mutex_unlock(&p->mu);
	close_list(p, old);
	if (c) {
		c->next_idle = NULL;
		*out = c;
		return 0;
	}
	if ((rc = p->ops->open(p->store, &c)) != 0) {
		pthread_mutex_lock(&p->mu);
		p->nopen--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return rc;
	}
	c->next_idle = NULL;
	c->broken = 0;
	c->opened_at = c->idle_since = dura_now_ms();
	*out = c;
	return 0;
}

void dura_sql_pool_put(dura_sql_pool *p, dura_sql_conn *c)
{
	if (!c->broken && p->ops->reset)
		p->ops->reset(p->store, c);
	dura_sql_conn *drop = NULL;
	pthread_mutex_lock(&p->mu);
	if (c->broken || p->nidle >= p->max_idle) {
		p->nopen--;
		c->next_idle = NULL;
		drop = c;
		if (c->broken) {
			while (p->idle) {
				dura_sql_conn *x = p->idle;
				p->idle = x->next_idle;
				p->nidle--;
				p->nopen--;
				x->next_idle = drop;
				drop = x;
			}
		}
	} else {
		if (p->lifetime_ms > 0 || p->idle_ms > 0)
			c->idle_since = dura_now_ms();
		c->next_idle = p->idle;
		p->idle = c;
		p->nidle++;
	}
	if (drop && drop->next_idle)
		pthread_cond_broadcast(&p->cv); /* several slots came free */
	else
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	close_list(p, drop);
}

void dura_sql_pool_discard(dura_sql_pool *p, dura_sql_conn *c)
{
	pthread_mutex_lock(&p->mu);
	p->nopen--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	p->ops->close(p->store, c);
}

void dura_sql_pool_adopt(dura_sql_pool *p, dura_sql_conn *c)
{
	c->broken = 0;
	c->opened_at = c->idle_since = dura_now_ms();
	pthread_mutex_lock(&p->mu);
	p->nopen++;
	pthread_mutex_unlock(&p->mu);
	dura_sql_pool_put(p, c);
}

void dura_sql_pool_atfork_child(dura_sql_pool *p)
{
	for (dura_sql_conn *c = p->idle, *next; c; c = next) {
		next = c->next_idle;
		(p->ops->abandon ? p->ops->abandon : p->ops->close)(p->store, c);
	}
	dura_sql_pool_init(p);
}

void dura_sql_pool_stats(dura_sql_pool *p, dura_store_stats *out)
{
	pthread_mutex_lock(&p->mu);
	out->open = p->nopen;
	out->idle = p->nidle;
	out->in_use = p->nopen - p->nidle;
	out->max_open = p->max;
	out->waits = p->waits;
	pthread_mutex_unlock(&p->mu);
}
