/*
 * workers.c - the memory store's worker registry: the rows in an array
 * under a lock of their own (a registry holds a few rows per worker
 * process, so a scan is the whole index), and the store's worker_*
 * operations on it. Times are this process's wall clock. Every change
 * allocates first, so DURA_ENOMEM leaves the table as it was.
 */
#include "memory.h"

struct dura__mem_workers {
	pthread_mutex_t lock;
	dura_worker_info *rows;
	size_t count, cap;
};

dura__mem_workers *dura__mem_workers_new(void)
{
	dura__mem_workers *t = dura_calloc(1, sizeof(*t));
	if (!t) {
		dura_error_oom(STORE);
		return NULL;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		dura_free(t);
		dura_error_set_native(DURA_ERROR, STORE, 0, NULL, "cannot create a mutex");
		return NULL;
	}
	return t;
}

void dura__mem_workers_free(dura__mem_workers *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		dura_worker_info_clear(&t->rows[i]);
	dura_free(t->rows);
	pthread_mutex_destroy(&t->lock);
	dura_free(t);
}

void dura__mem_workers_atfork_child(dura__mem_workers *t)
{
	if (t)
		pthread_mutex_init(&t->lock, NULL);
}

static dura_worker_info *find(dura__mem_workers *t, const char *id)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->rows[i].id, id) == 0)
			return &t->rows[i];
	return NULL;
}

/* A deep copy of w's text into o (times and numbers copied as they are). */
static int copy_row(dura_worker_info *o, const dura_worker_info *w)
{
	*o = *w;
	o->id = dura_strdup(w->id);
	o->name = dura_strdup(w->name ? w->name : "");
	o->host = dura_strdup(w->host ? w->host : "");
	o->workflows = dura_strdup(w->workflows ? w->workflows : "[]");
	if (!o->id || !o->name || !o->host || !o->workflows) {
		dura_worker_info_clear(o);
		return dura_error_oom(STORE);
	}
	return 0;
}

int dura__mem_workers_put(dura__mem_workers *t, const dura_worker_info *w)
{
	dura_worker_info row;
	int64_t now = dura_now_ms();
	int rc = copy_row(&row, w);
	if (rc)
		return rc;
	row.heartbeat_at = now;
	row.dead_after = now + w->lease_ms;
	row.dead = 0;
	pthread_mutex_lock(&t->lock);
	dura_worker_info *old = find(t, w->id);
	if (old) {
		row.started_at = old->started_at;
		dura_worker_info_clear(old);
		*old = row;
	} else if (dura_store_grow((void **)&t->rows, t->count, &t->cap, sizeof(*t->rows)) != 0) {
		rc = dura_error_oom(STORE);
		dura_worker_info_clear(&row);
	} else {
		row.started_at = now;
		t->rows[t->count++] = row;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Remove row i (t->lock held). */
static void drop(dura__mem_workers *t, size_t i)
{
	dura_worker_info_clear(&t->rows[i]);
	memmove(&t->rows[i], &t->rows[i + 1], (t->count - i - 1) * sizeof(*t->rows));
	t->count--;
}

int dura__mem_workers_delete(dura__mem_workers *t, const char *worker_id)
{
	int rc = DURA_ENOTFOUND;
	pthread_mutex_lock(&t->lock);
	dura_worker_info *row = find(t, worker_id);
	if (row) {
		drop(t, (size_t)(row - t->rows));
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc)
		return dura_error_set_native(rc, STORE, 0, NULL, "worker %s is not registered", worker_id);
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const dura_worker_info *x = a, *y = b;
	if (x->started_at != y->started_at)
		return x->started_at < y->started_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

int dura__mem_workers_list(dura__mem_workers *t, dura_worker_list *out)
{
	int rc = 0;
	pthread_mutex_lock(&t->lock);
	out->now = dura_now_ms();
	if (t->count && !(out->items = dura_calloc(t->count, sizeof(*out->items))))
		rc = dura_error_oom(STORE);
	for (size_t i = 0; rc == 0 && i < t->count; i++) {
		rc = copy_row(&out->items[i], &t->rows[i]);
		if (rc == 0)
			out->count++;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc) {
		dura_worker_list_free(out);
		return rc;
	}
	if (out->count > 1)
		qsort(out->items, out->count, sizeof(*out->items), by_start);
	return 0;
}

int dura__mem_workers_prune(dura__mem_workers *t, int64_t dead_for_ms, int64_t *count)
{
	int64_t now = dura_now_ms();
	*count = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = t->count; i-- > 0;)
		if (t->rows[i].dead_after + dead_for_ms <= now) {
			drop(t, i);
			(*count)++;
		}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* ---- the operations ------------------------------------------------------- */

int dmem_worker_put(void *impl, const dura_worker_info *w)
{
	return dura__mem_workers_put(((mem_store *)impl)->workers, w);
}

int dmem_worker_delete(void *impl, const char *worker_id)
{
	return dura__mem_workers_delete(((mem_store *)impl)->workers, worker_id);
}

int dmem_worker_list(void *impl, dura_worker_list *out)
{
	return dura__mem_workers_list(((mem_store *)impl)->workers, out);
}

int dmem_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	return dura__mem_workers_prune(((mem_store *)impl)->workers, dead_for_ms, count);
}
