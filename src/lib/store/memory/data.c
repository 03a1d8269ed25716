/*
 * data.c - the memory store's small helpers (the lock, reference-counted
 * and optional text, finding a run), the copies it hands the caller (one
 * of each kind, and dmem_copy_list() for every kind of list), the freeing
 * of its structures and the outbox's list in id order.
 */
#include "memory.h"

/* "" for absent text fields, shared so that they cost no allocation. */
char dmem_empty[1];

/* ---- small helpers -------------------------------------------------------- */

void dmem_lock(mem_store *m)
{
	pthread_mutex_lock(&m->lock);
}

void dmem_unlock(mem_store *m)
{
	pthread_mutex_unlock(&m->lock);
}

int dmem_oom(void)
{
	return dura_error_oom(STORE);
}

mem_text *dmem_text_new(const char *s)
{
	size_t n = strlen(s);
	mem_text *t = dura_malloc(sizeof(*t) + n + 1);
	if (!t)
		return NULL;
	t->refs = 1;
	t->len = n;
	memcpy(t->s, s, n + 1);
	return t;
}

void dmem_text_unref(mem_text *t)
{
	if (t && --t->refs == 0)
		dura_free(t);
}

/* An optional text: dmem_empty for NULL or "", else a copy (NULL: OOM). */
char *dmem_opt_dup(const char *s)
{
	return s && *s ? dura_strdup(s) : dmem_empty;
}

void dmem_opt_free(char *s)
{
	if (s != dmem_empty)
		dura_free(s);
}

int dmem_active(int run_state)
{
	return dura_run_state_active(run_state);
}

int dmem_leased(const mem_run *r, int64_t now)
{
	return r->d.run_state == DURA_RUN_RUNNING && r->d.lease_owner[0] && r->d.lease_expires_at > now;
}

int dmem_due(const mem_run *r, int64_t now)
{
	return r->d.run_state == DURA_RUN_RUNNING && r->d.next_run_at <= now &&
	       (!r->d.lease_owner[0] || r->d.lease_expires_at <= now);
}

mem_run *dmem_find_run(mem_store *m, const char *run_id)
{
	mem_run *r = NULL;
	HASH_FIND_STR(m->runs, run_id, r);
	return r;
}

int dmem_run_missing(const char *run_id)
{
	return dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s does not exist", run_id);
}

/* ---- copies for the caller ------------------------------------------------ */

/* Copy run r with mutable fields d (r->d, or what they are about to be). */
int dmem_copy_record(dura_record *o, const mem_run *r, const run_data *d)
{
	memset(o, 0, sizeof(*o));
	o->run_id = dura_strdup(r->run_id);
	o->workflow_name = dura_strdup(r->workflow_name);
	o->foreign_id = dura_strdup(r->foreign_id);
	o->status = dura_strdup(d->status);
	o->state = dura_strndup(d->state->s, d->state->len);
	o->error = dura_strdup(d->error);
	o->meta = dura_strdup(r->meta);
	o->lease_owner = dura_strdup(d->lease_owner);
	o->concurrency_key = dura_strdup(r->concurrency_key);
	o->wait = dura_strdup(d->wait);
	o->parent_id = dura_strdup(r->parent_id);
	o->workflow_version = dura_strdup(d->wfver);
	if (!o->run_id || !o->workflow_name || !o->foreign_id || !o->status || !o->state || !o->error || !o->meta ||
	    !o->lease_owner || !o->concurrency_key || !o->wait || !o->parent_id || !o->workflow_version) {
		dura_record_clear(o);
		return dmem_oom();
	}
	o->run_state = d->run_state;
	o->version = d->version;
	o->step_no = d->step_no;
	o->attempt = d->attempt;
	o->lease_expires_at = d->lease_expires_at;
	o->next_run_at = d->next_run_at;
	o->created_at = r->created_at;
	o->updated_at = d->updated_at;
	o->priority = r->priority;
	return 0;
}

int dmem_record_out(dura_record **out, const mem_run *r)
{
	dura_record *rec = dura_calloc(1, sizeof(*rec));
	if (!rec)
		return dmem_oom();
	int rc = dmem_copy_record(rec, r, &r->d);
	if (rc) {
		dura_free(rec);
		return rc;
	}
	*out = rec;
	return 0;
}

static int copy_step(dura_step *o, const mem_run *r, size_t i)
{
	const mem_step *st = &r->steps[i];
	memset(o, 0, sizeof(*o));
	o->run_id = dura_strdup(r->run_id);
	o->node_id = dura_strdup(st->node_id);
	o->state = dura_strndup(st->state->s, st->state->len);
	o->workflow_version = dura_strdup(st->wfver);
	if (!o->run_id || !o->node_id || !o->state || !o->workflow_version) {
		dura_step_clear(o);
		return dmem_oom();
	}
	o->step = r->step_base + (int64_t)i;
	o->created_at = st->created_at;
	return 0;
}

int dmem_step_out(dura_step **out, const mem_run *r, size_t i)
{
	dura_step *st = dura_calloc(1, sizeof(*st));
	if (!st)
		return dmem_oom();
	int rc = copy_step(st, r, i);
	if (rc) {
		dura_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

int dmem_copy_checkpoint(dura_checkpoint *o, const mem_checkpoint *c)
{
	memset(o, 0, sizeof(*o));
	o->checkpoint_id = dura_strdup(c->id);
	o->run_id = dura_strdup(c->run_id);
	o->state = dura_strdup(c->state);
	if (!o->checkpoint_id || !o->run_id || !o->state) {
		dura_checkpoint_clear(o);
		return dmem_oom();
	}
	o->step = c->step;
	o->created_at = c->created_at;
	o->updated_at = c->updated_at;
	return 0;
}

/* with_value 0: value NULL (lists carry only the size). */
int dmem_copy_cache(dura_cache_entry *o, const mem_cache *e, int with_value)
{
	memset(o, 0, sizeof(*o));
	o->key = dura_strdup(e->key);
	int bad = !o->key;
	if (with_value) {
		o->value = dura_malloc(e->value_len + 1);
		if (o->value) {
			memcpy(o->value, e->value, e->value_len);
			o->value[e->value_len] = '\0';
		}
		bad |= !o->value;
	}
	if (e->error) {
		o->error = dura_strdup(e->error);
		bad |= !o->error;
	}
	if (e->metadata) {
		o->metadata = dura_strdup(e->metadata);
		bad |= !o->metadata;
	}
	if (bad) {
		dura_cache_entry_clear(o);
		return dmem_oom();
	}
	o->value_len = e->value_len;
	o->created_at = e->created_at;
	o->expires_at = e->expires_at;
	return 0;
}

static int copy_event(dura_event *o, const mem_event *e)
{
	memset(o, 0, sizeof(*o));
	o->id = dura_strdup(e->id);
	o->workflow_name = dura_strdup(e->workflow_name);
	o->run_id = dura_strdup(e->run_id);
	o->type = dura_strdup(e->type);
	o->data = dura_strdup(e->data);
	if (!o->id || !o->workflow_name || !o->run_id || !o->type || !o->data) {
		dura_event_clear(o);
		return dmem_oom();
	}
	o->created_at = e->created_at;
	return 0;
}

/*
 * Each kind of list item's copy (item i of src) and clearer on void *, so
 * that one dmem_copy_list() makes every kind of list (calling the typed
 * functions through a void * signature instead would be undefined
 * behaviour).
 */

/* src: the runs (mem_run **) */
int dmem_item_record(void *item, void *src, size_t i)
{
	mem_run **runs = src;
	return dmem_copy_record(item, runs[i], &runs[i]->d);
}

/* src: a step_range, the run and the index of the first step listed */
int dmem_item_step(void *item, void *src, size_t i)
{
	const step_range *sr = src;
	return copy_step(item, sr->r, sr->start + i);
}

/* src: the checkpoints (mem_checkpoint **) */
int dmem_item_checkpoint(void *item, void *src, size_t i)
{
	mem_checkpoint **sel = src;
	return dmem_copy_checkpoint(item, sel[i]);
}

/* src: the entries (mem_cache **); listed entries carry the value's
 * length, not the value */
int dmem_item_cache(void *item, void *src, size_t i)
{
	mem_cache **sel = src;
	return dmem_copy_cache(item, sel[i], 0);
}

/* src: a cursor (mem_event **) into the outbox list, moved on one event a
 * copy: dmem_copy_list() copies in order, and a list has no index */
int dmem_item_event(void *item, void *src, size_t i)
{
	mem_event **e = src;
	(void)i;
	int rc = copy_event(item, *e);
	*e = (*e)->next;
	return rc;
}

/*
 * A result array of n item_size-byte items, item i made by copy(item, src,
 * i), in order: all of them (*items and *count set) or, on failure, none
 * (the copies so far cleared and freed, *items and *count untouched).
 */
int dmem_copy_list(void **items, size_t *count, size_t n, size_t item_size,
                   int (*copy)(void *item, void *src, size_t i), void (*clear)(void *item), void *src)
{
	if (n == 0)
		return 0;
	char *a = dura_calloc(n, item_size);
	if (!a)
		return dmem_oom();
	for (size_t i = 0; i < n; i++) {
		int rc = copy(a + i * item_size, src, i);
		if (rc) {
			for (size_t k = 0; k < i; k++)
				clear(a + k * item_size);
			dura_free(a);
			return rc;
		}
	}
	*items = a;
	*count = n;
	return 0;
}

/* ---- freeing -------------------------------------------------------------- */

void dmem_free_steps(mem_run *r)
{
	for (size_t i = 0; i < r->nsteps; i++) {
		dura_free(r->steps[i].node_id);
		dmem_opt_free(r->steps[i].wfver);
		dmem_text_unref(r->steps[i].state);
	}
	dura_free(r->steps);
	r->steps = NULL;
	r->nsteps = r->capsteps = 0;
}

static void free_run_data(run_data *d)
{
	dmem_text_unref(d->state);
	dmem_opt_free(d->status);
	dmem_opt_free(d->error);
	dmem_opt_free(d->lease_owner);
	dmem_opt_free(d->wait);
	dmem_opt_free(d->wfver);
}

void dmem_free_run(mem_run *r)
{
	if (!r)
		return;
	dmem_free_steps(r);
	free_run_data(&r->d);
	dura_free(r->run_id);
	dura_free(r->workflow_name);
	dmem_opt_free(r->foreign_id);
	dmem_opt_free(r->meta);
	dmem_opt_free(r->concurrency_key);
	dmem_opt_free(r->parent_id);
	dura_free(r);
}

void dmem_free_checkpoint(mem_checkpoint *c)
{
	if (!c)
		return;
	dura_free(c->id);
	dura_free(c->run_id);
	dura_free(c->state);
	dura_free(c);
}

void dmem_free_cache(mem_cache *e)
{
	if (!e)
		return;
	dura_free(e->key);
	dura_free(e->value);
	dura_free(e->error);
	dura_free(e->metadata);
	dura_free(e);
}

void dmem_free_claim(mem_claim *c)
{
	if (!c)
		return;
	dura_free(c->key);
	dura_free(c->owner);
	dura_free(c);
}

void dmem_free_event(mem_event *e)
{
	dura_free(e); /* id, data and type are in the same block */
}

/* ---- outbox list ---------------------------------------------------------- */

/* The default outbox event type. */
static char mem_type_step[] = "step";



/*
 * A new event in one allocation: the struct, its id, its data, its run id
 * and workflow name and (when not the default) its type. data NULL: the
 * default event data of sum.
 * NULL with *rc set on failure.
 */
mem_event *dmem_event_new(const char *id, const char *type, const char *data, const dmem_event_summary *sum, int *rc)
{
	size_t ld = data ? strlen(data)
	                 : dura_store_event_summary(NULL, 0, sum->run_id, sum->step, sum->node_id, sum->status, sum->run_state);
	size_t li = strlen(id), lt = type ? strlen(type) + 1 : 0;
	size_t lr = strlen(sum->run_id) + 1, lw = strlen(sum->workflow_name) + 1;
	mem_event *e = dura_calloc(1, sizeof(*e) + li + 1 + ld + 1 + lt + lr + lw);
	if (!e) {
		*rc = dmem_oom();
		return NULL;
	}
	memcpy(e->id, id, li + 1);
	e->data = e->id + li + 1;
	if (data)
		memcpy(e->data, data, ld + 1);
	else
		dura_store_event_summary(e->data, ld + 1, sum->run_id, sum->step, sum->node_id, sum->status, sum->run_state);
	e->run_id = e->data + ld + 1;
	memcpy(e->run_id, sum->run_id, lr);
	e->workflow_name = e->run_id + lr;
	memcpy(e->workflow_name, sum->workflow_name, lw);
	e->type = mem_type_step;
	if (type) {
		e->type = e->workflow_name + lw;
		memcpy(e->type, type, lt);
	}
	return e;
}


/* Insert in id order; ids are UUIDv7 made just before the commit, so the
 * walk from the tail is nearly always zero steps. */
void dmem_event_link(mem_store *m, mem_event *e)
{
	mem_event *after = m->ev_tail;
	while (after && strcmp(after->id, e->id) > 0)
		after = after->prev;
	e->prev = after;
	e->next = after ? after->next : m->ev_head;
	if (e->next)
		e->next->prev = e;
	else
		m->ev_tail = e;
	if (after)
		after->next = e;
	else
		m->ev_head = e;
}

void dmem_event_unlink(mem_store *m, mem_event *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		m->ev_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->ev_tail = e->prev;
	e->prev = e->next = NULL;
}
