/*
 * waiting.c - the memory store's durable waiting (contract version 5):
 * the signal inbox and the schedules, and the operations on them; and
 * dmem_wake_locked(), the wake that a signal, a commit and a cancel make.
 *
 * The inbox is one array of signals in signal_id order (UUIDv7: a send
 * nearly always appends), scanned for a run's signals: the memory store
 * serves one process's tests and tools, not a fleet. Each signal is one
 * allocation, so that a commit can take it out and put it back (undo)
 * without allocating. The schedules are an array in name order under
 * their own lock.
 */
#include "memory.h"

typedef struct mem_signal {
	long pos; /* where it was, while taken out */
	int64_t created_at;
	char *run_id, *name, *payload; /* in this block */
	char id[];
} mem_signal;

struct dura__mem_inbox {
	mem_signal **items;
	size_t count, cap;
};

dura__mem_inbox *dura__mem_inbox_new(void)
{
	dura__mem_inbox *in = dura_calloc(1, sizeof(*in));
	if (!in)
		dura_error_oom(STORE);
	return in;
}

void dura__mem_inbox_free(dura__mem_inbox *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->count; i++)
		dura_free(in->items[i]);
	dura_free(in->items);
	dura_free(in);
}

int dura__mem_inbox_add(dura__mem_inbox *in, const char *signal_id, const char *run_id, const char *name,
                        const char *payload, int64_t now)
{
	size_t li = strlen(signal_id) + 1, lr = strlen(run_id) + 1, ln = strlen(name) + 1, lp = strlen(payload) + 1;
	if (dura_store_grow((void **)&in->items, in->count, &in->cap, sizeof(*in->items)))
		return dura_error_oom(STORE);
	mem_signal *g = dura_malloc(sizeof(*g) + li + lr + ln + lp);
	if (!g)
		return dura_error_oom(STORE);
	memcpy(g->id, signal_id, li);
	g->run_id = g->id + li;
	memcpy(g->run_id, run_id, lr);
	g->name = g->run_id + lr;
	memcpy(g->name, name, ln);
	g->payload = g->name + ln;
	memcpy(g->payload, payload, lp);
	g->created_at = now;
	g->pos = -1;
	size_t at = in->count;
	while (at > 0 && strcmp(in->items[at - 1]->id, signal_id) > 0)
		at--;
	memmove(in->items + at + 1, in->items + at, (in->count - at) * sizeof(*in->items));
	in->items[at] = g;
	in->count++;
	return 0;
}

static int copy_signal(dura_signal *o, const mem_signal *g)
{
	memset(o, 0, sizeof(*o));
	o->signal_id = dura_strdup(g->id);
	o->run_id = dura_strdup(g->run_id);
	o->name = dura_strdup(g->name);
	o->payload = dura_strdup(g->payload);
	o->created_at = g->created_at;
	if (!o->signal_id || !o->run_id || !o->name || !o->payload) {
		dura_signal_clear(o);
		return dura_error_oom(STORE);
	}
	return 0;
}

int dura__mem_inbox_next(const dura__mem_inbox *in, const char *run_id, const char *name, dura_signal **out)
{
	for (size_t i = 0; i < in->count; i++) {
		const mem_signal *g = in->items[i];
		if (strcmp(g->run_id, run_id) != 0 || strcmp(g->name, name) != 0)
			continue;
		dura_signal *o = dura_malloc(sizeof(*o));
		if (!o)
			return dura_error_oom(STORE);
		int rc = copy_signal(o, g);
		if (rc) {
			dura_free(o);
			return rc;
		}
		*out = o;
		return 0;
	}
	return dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s has no signal named %s", run_id, name);
}

int dura__mem_inbox_list(const dura__mem_inbox *in, const char *run_id, dura_signal_list *out)
{
	size_t cap = 0;
	for (size_t i = 0; i < in->count; i++) {
		const mem_signal *g = in->items[i];
		if (strcmp(g->run_id, run_id) != 0)
			continue;
		int rc = dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) ? dura_error_oom(STORE)
		                                                                                      : 0;
		if (rc == 0)
			rc = copy_signal(&out->items[out->count], g);
		if (rc) {
			dura_signal_list_free(out);
			return rc;
		}
		out->count++;
	}
	return 0;
}

long dura__mem_inbox_find(const dura__mem_inbox *in, const char *run_id, const char *signal_id)
{
	for (size_t i = 0; i < in->count; i++)
		if (strcmp(in->items[i]->id, signal_id) == 0)
			return strcmp(in->items[i]->run_id, run_id) == 0 ? (long)i : -1;
	return -1;
}

void *dura__mem_inbox_take(dura__mem_inbox *in, long pos)
{
	mem_signal *g = in->items[pos];
	memmove(in->items + pos, in->items + pos + 1, (in->count - (size_t)pos - 1) * sizeof(*in->items));
	in->count--;
	g->pos = pos;
	return g;
}

void dura__mem_inbox_put_back(dura__mem_inbox *in, void *taken)
{
	mem_signal *g = taken;
	size_t pos = (size_t)g->pos; /* undone latest first, so pos is right again */
	memmove(in->items + pos + 1, in->items + pos, (in->count - pos) * sizeof(*in->items));
	in->items[pos] = g;
	in->count++;
	g->pos = -1;
}

void dura__mem_inbox_drop(void *taken)
{
	dura_free(taken);
}

void dura__mem_inbox_erase_run(dura__mem_inbox *in, const char *run_id)
{
	size_t k = 0;
	for (size_t i = 0; i < in->count; i++) {
		if (strcmp(in->items[i]->run_id, run_id) == 0)
			dura_free(in->items[i]);
		else
			in->items[k++] = in->items[i];
	}
	in->count = k;
}

/* ---- schedules ------------------------------------------------------------ */

struct dura__mem_schedules {
	pthread_mutex_t lock;
	dura_schedule *items; /* by name */
	size_t count, cap;
};

dura__mem_schedules *dura__mem_schedules_new(void)
{
	dura__mem_schedules *t = dura_calloc(1, sizeof(*t));
	if (!t) {
		dura_error_oom(STORE);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void dura__mem_schedules_free(dura__mem_schedules *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		dura_schedule_clear(&t->items[i]);
	dura_free(t->items);
	pthread_mutex_destroy(&t->lock);
	dura_free(t);
}

void dura__mem_schedules_atfork_child(dura__mem_schedules *t)
{
	pthread_mutex_init(&t->lock, NULL);
}

/* Where name is, or where it goes (*found 0). */
static size_t sch_find(const dura__mem_schedules *t, const char *name, int *found)
{
	size_t lo = 0, hi = t->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(t->items[mid].name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static int sch_copy(dura_schedule *o, const dura_schedule *s)
{
	*o = *s;
	o->name = dura_strdup(s->name);
	o->cron = dura_strdup(s->cron);
	o->zone = dura_strdup(s->zone);
	o->workflow_name = dura_strdup(s->workflow_name);
	o->state = dura_strdup(s->state);
	if (!o->name || !o->cron || !o->zone || !o->workflow_name || !o->state) {
		dura_schedule_clear(o);
		return dura_error_oom(STORE);
	}
	return 0;
}

static int sch_missing(const char *name)
{
	return dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "no schedule named %s", name);
}

int dura__mem_schedules_put(dura__mem_schedules *t, const dura_schedule *sch)
{
	dura_schedule n;
	int found, rc = sch_copy(&n, sch);
	if (rc)
		return rc;
	int64_t now = dura_now_ms();
	n.updated_at = now;
	pthread_mutex_lock(&t->lock);
	size_t at = sch_find(t, sch->name, &found);
	if (found) {
		n.created_at = t->items[at].created_at;
		dura_schedule_clear(&t->items[at]);
		t->items[at] = n;
	} else if (dura_store_grow((void **)&t->items, t->count, &t->cap, sizeof(*t->items))) {
		dura_schedule_clear(&n);
		rc = dura_error_oom(STORE);
	} else {
		n.created_at = now;
		memmove(t->items + at + 1, t->items + at, (t->count - at) * sizeof(*t->items));
		t->items[at] = n;
		t->count++;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int dura__mem_schedules_get(dura__mem_schedules *t, const char *name, dura_schedule **out)
{
	int found, rc;
	pthread_mutex_lock(&t->lock);
	size_t at = sch_find(t, name, &found);
	if (!found) {
		rc = sch_missing(name);
	} else {
		dura_schedule *o = dura_malloc(sizeof(*o));
		rc = o ? sch_copy(o, &t->items[at]) : dura_error_oom(STORE);
		if (rc == 0)
			*out = o;
		else
			dura_free(o);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int dura__mem_schedules_delete(dura__mem_schedules *t, const char *name)
{
	int found, rc = 0;
	pthread_mutex_lock(&t->lock);
	size_t at = sch_find(t, name, &found);
	if (!found) {
		rc = sch_missing(name);
	} else {
		dura_schedule_clear(&t->items[at]);
		memmove(t->items + at, t->items + at + 1, (t->count - at - 1) * sizeof(*t->items));
		t->count--;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int dura__mem_schedules_list(dura__mem_schedules *t, dura_schedules *out)
{
	int rc = 0;
	pthread_mutex_lock(&t->lock);
	if (t->count) {
		out->items = dura_calloc(t->count, sizeof(*out->items));
		if (!out->items)
			rc = dura_error_oom(STORE);
		for (size_t i = 0; rc == 0 && i < t->count; i++)
			if ((rc = sch_copy(&out->items[i], &t->items[i])) == 0)
				out->count++;
		if (rc)
			dura_schedules_free(out);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int dura__mem_schedules_advance(dura__mem_schedules *t, const char *name, int64_t from, int64_t to)
{
	int found, rc = 0;
	pthread_mutex_lock(&t->lock);
	size_t at = sch_find(t, name, &found);
	if (!found) {
		rc = sch_missing(name);
	} else if (t->items[at].next_tick != from) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "schedule %s: next tick is %lld, not %lld", name,
		                           (long long)t->items[at].next_tick, (long long)from);
	} else {
		t->items[at].next_tick = to;
		t->items[at].updated_at = dura_now_ms();
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* ---- the operations ------------------------------------------------------- */

/* Wake run_id if it is running and waits for `wait` (contract 5's wake);
 * u (may be NULL) records the change. Cannot fail; 1 if woken. */
int dmem_wake_locked(mem_store *m, const char *run_id, const char *wait, int64_t now, wake_undo *u)
{
	mem_run *r = dmem_find_run(m, run_id);
	if (u)
		u->run = NULL;
	if (!r || r->d.run_state != DURA_RUN_RUNNING || strcmp(r->d.wait, wait) != 0)
		return 0;
	if (u) {
		u->run = r;
		u->version = r->d.version;
		u->next_run_at = r->d.next_run_at;
		u->updated_at = r->d.updated_at;
	}
	r->d.next_run_at = now;
	r->d.version++;
	r->d.updated_at = now;
	return 1;
}

int dmem_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	mem_store *m = impl;
	int rc;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (!r) {
		rc = dmem_run_missing(run_id);
	} else if (!dmem_active(r->d.run_state)) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is %s: it takes no more signals", run_id,
		                           dura_run_state_name(r->d.run_state));
	} else {
		int64_t now = dura_now_ms();
		rc = dura__mem_inbox_add(m->inbox, signal_id, run_id, name, payload, now);
		char w[DURA_MAX_NAME_LEN + 8];
		snprintf(w, sizeof(w), "signal:%s", name);
		if (rc == 0 && dmem_wake_locked(m, run_id, w, now, NULL))
			pthread_cond_broadcast(&m->changed);
	}
	dmem_unlock(m);
	return rc;
}

int dmem_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	mem_store *m = impl;
	dmem_lock(m);
	int rc = dura__mem_inbox_next(m->inbox, run_id, name, out);
	dmem_unlock(m);
	return rc;
}

int dmem_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	mem_store *m = impl;
	dmem_lock(m);
	int rc = dura__mem_inbox_list(m->inbox, run_id, out);
	dmem_unlock(m);
	return rc;
}

int dmem_wake(void *impl, const char *run_id, const char *wait)
{
	mem_store *m = impl;
	dmem_lock(m);
	int woke = dmem_wake_locked(m, run_id, wait, dura_now_ms(), NULL);
	if (woke)
		pthread_cond_broadcast(&m->changed);
	dmem_unlock(m);
	return woke ? 0
	            : dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s is not running and waiting for %s", run_id,
	                                    wait);
}

int dmem_schedule_put(void *impl, const dura_schedule *sch)
{
	return dura__mem_schedules_put(((mem_store *)impl)->schedules, sch);
}

int dmem_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	return dura__mem_schedules_get(((mem_store *)impl)->schedules, name, out);
}

int dmem_schedule_delete(void *impl, const char *name)
{
	return dura__mem_schedules_delete(((mem_store *)impl)->schedules, name);
}

int dmem_schedule_list(void *impl, dura_schedules *out)
{
	return dura__mem_schedules_list(((mem_store *)impl)->schedules, out);
}

int dmem_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	return dura__mem_schedules_advance(((mem_store *)impl)->schedules, name, from, to);
}
