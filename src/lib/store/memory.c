/*
 * memory.c - the memory store ("memory:").
 *
 * One handle is one private store that lives in this process and is lost
 * at close: every dura_store_open("memory:") starts empty. It implements
 * the whole store contract (docs/store-contract.md) and waits for run
 * changes (DURA_CAP_NOTIFY); it is neither durable nor shared between
 * processes.
 *
 * Thread-safety: one mutex guards all state; a condition variable is
 * broadcast whenever a run's version changes, for wait_change.
 *
 * Atomicity: an operation allocates everything it needs before it changes
 * anything, so an allocation failure (DURA_ENOMEM) leaves the store as it
 * was. uthash is built with non-fatal OOM and dura's allocator, and every
 * hash insertion is done before the infallible part of a change.
 *
 * Layout: runs by run_id (each holding its steps as a dense array and its
 * mutable fields in one run_data that a commit swaps whole); "slots" by
 * workflow_name '\0' foreign_id pointing at the one active run and the
 * newest run with that key (so the uniqueness rule and latest_run cost no
 * scan); checkpoints, cache entries and claims by key; outbox events in a
 * list ordered by id (UUIDv7, so nearly always appended) plus a hash by id,
 * each event one allocation.
 *
 * Choices where the contract is silent: a run that would become active
 * again (failed -> running) while another run of its workflow is active
 * with the same foreign id is refused with DURA_ECONFLICT, so there is
 * never more than one; set_run_state to data_deleted erases like
 * delete_run_data; cache_list includes expired entries (as cache_stats
 * counts them); a claimer's own expired claim can still be released.
 */
#include "../internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* uthash on dura's allocator, reporting OOM (every function that adds to
 * a hash declares `int hash_oom = 0;`), and the monotonic-clock helpers */
#include "../util.h"
#include "flow.h"
#include "memory_waiting.h"
#include "memory_workers.h"

#define STORE "memory"
#define MEM_SCHEMA_VERSION 1

/* "" for absent text fields, shared so that they cost no allocation. */
static char mem_empty[1];
/* The default outbox event type. */
static char mem_type_step[] = "step";

/* ---- data ----------------------------------------------------------------- */

/* Reference-counted text: a commit's state is shared by the record and
 * the step row it writes. */
typedef struct mem_text {
	size_t refs;
	size_t len;
	char s[];
} mem_text;

/* The part of a run that changes; a commit builds a new one and swaps it
 * in, so the old one is there to undo or free. */
typedef struct run_data {
	mem_text *state;
	char *status;      /* mem_empty or owned */
	char *error;       /* mem_empty or owned */
	char *lease_owner; /* mem_empty or owned */
	char *wait;        /* mem_empty or owned */
	int run_state;
	int attempt;
	int64_t version;
	int64_t step_no;
	int64_t lease_expires_at;
	int64_t next_run_at;
	int64_t updated_at;
} run_data;

typedef struct mem_step {
	char *node_id;
	mem_text *state;
	int64_t created_at;
} mem_step;

struct mem_run;

/* workflow_name '\0' foreign_id -> the active run and the newest run. */
typedef struct mem_slot {
	UT_hash_handle hh;
	struct mem_run *active; /* the one active run with this key, or NULL */
	struct mem_run *latest; /* the run with the largest run_id */
	size_t keylen;
	char key[];
} mem_slot;

typedef struct mem_run {
	UT_hash_handle hh;
	char *run_id;
	char *workflow_name;
	char *foreign_id; /* mem_empty or owned */
	char *meta;       /* mem_empty or owned */
	char *concurrency_key; /* mem_empty or owned */
	char *parent_id;       /* mem_empty or owned */
	int priority;
	int64_t created_at;
	mem_slot *slot; /* NULL without a foreign id */
	run_data d;
	/* steps are dense: steps[i] is step step_base + i */
	mem_step *steps;
	size_t nsteps, capsteps;
	int64_t step_base;
} mem_run;

typedef struct mem_checkpoint {
	UT_hash_handle hh;
	char *id;
	char *run_id;
	int64_t step;
	char *state;
	int64_t created_at;
	int64_t updated_at;
} mem_checkpoint;

typedef struct mem_cache {
	UT_hash_handle hh;
	char *key;
	unsigned char *value; /* value_len bytes and a NUL */
	size_t value_len;
	char *error;    /* NULL when none */
	char *metadata; /* NULL when none */
	int64_t created_at;
	int64_t expires_at; /* 0: never */
} mem_cache;

typedef struct mem_claim {
	UT_hash_handle hh;
	char *key;
	char *owner;
	int64_t expires_at;
} mem_claim;

typedef struct mem_event {
	UT_hash_handle hh;
	struct mem_event *prev, *next; /* ordered by id */
	mem_run *run;                  /* runs live until close */
	char *type;                    /* mem_type_step, or in this block */
	char *data;                    /* in this block */
	int64_t created_at;
	char id[];
} mem_event;

typedef struct mem_store {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* broadcast when a run's version changes */
	mem_run *runs;
	mem_slot *slots;
	mem_checkpoint *checkpoints;
	mem_cache *cache;
	mem_claim *claims;
	mem_event *events; /* hash by id */
	mem_event *ev_head, *ev_tail;
	char *notes;
	dura__mem_workers *workers; /* the worker registry (memory_workers.c) */
	dura__mem_inbox *inbox;     /* signals, under lock (memory_waiting.c) */
	dura__mem_schedules *schedules;
} mem_store;

/* ---- small helpers -------------------------------------------------------- */

static void lock(mem_store *m)
{
	pthread_mutex_lock(&m->lock);
}

static void unlock(mem_store *m)
{
	pthread_mutex_unlock(&m->lock);
}

static int oom(void)
{
	return dura_error_oom(STORE);
}

static mem_text *text_new(const char *s)
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

static void text_unref(mem_text *t)
{
	if (t && --t->refs == 0)
		dura_free(t);
}

/* An optional text: mem_empty for NULL or "", else a copy (NULL: OOM). */
static char *opt_dup(const char *s)
{
	return s && *s ? dura_strdup(s) : mem_empty;
}

static void opt_free(char *s)
{
	if (s != mem_empty)
		dura_free(s);
}

static int active(int run_state)
{
	return dura_run_state_active(run_state);
}

static mem_run *find_run(mem_store *m, const char *run_id)
{
	mem_run *r = NULL;
	HASH_FIND_STR(m->runs, run_id, r);
	return r;
}

static int run_missing(const char *run_id)
{
	return dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s does not exist", run_id);
}

/* The slot key "workflow\0foreign_id" into buf (which holds 2 ids). */
static size_t slot_key(char *buf, size_t size, const char *wf, const char *fid)
{
	size_t a = strlen(wf), b = strlen(fid);
	if (a + 1 + b > size)
		return 0;
	memcpy(buf, wf, a);
	buf[a] = '\0';
	memcpy(buf + a + 1, fid, b);
	return a + 1 + b;
}

#define SLOT_KEY_MAX (2 * DURA_MAX_ID_LEN + 2)

static mem_slot *find_slot(mem_store *m, const char *wf, const char *fid)
{
	char key[SLOT_KEY_MAX];
	size_t n = slot_key(key, sizeof(key), wf, fid);
	mem_slot *s = NULL;
	if (n)
		HASH_FIND(hh, m->slots, key, n, s);
	return s;
}

/* Reactivating a run (failed -> running, or a commit that sets an active
 * state on an ended run) must not make a second active run for its key. */
static int reactivation_refused(const mem_run *r, int to)
{
	if (!r->slot || active(r->d.run_state) || !active(to))
		return 0;
	const mem_run *other = r->slot->active;
	if (!other || other == r)
		return 0;
	return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL,
	                             "run %s cannot become %s: run %s of workflow %s with foreign id %s is already active",
	                             r->run_id, dura_run_state_name(to), other->run_id, r->workflow_name, r->foreign_id);
}

/* Keep the slot's active pointer in step with a run-state change. */
static void slot_track(mem_run *r, int was, int now_state)
{
	if (!r->slot)
		return;
	int will = active(now_state);
	if (active(was) && !will && r->slot->active == r)
		r->slot->active = NULL;
	else if (!active(was) && will)
		r->slot->active = r;
}

/* ---- copies for the caller ------------------------------------------------ */

/* Copy run r with mutable fields d (r->d, or what they are about to be). */
static int copy_record(dura_record *o, const mem_run *r, const run_data *d)
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
	if (!o->run_id || !o->workflow_name || !o->foreign_id || !o->status || !o->state || !o->error || !o->meta ||
	    !o->lease_owner || !o->concurrency_key || !o->wait || !o->parent_id) {
		dura_record_clear(o);
		return oom();
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

static int record_out(dura_record **out, const mem_run *r)
{
	dura_record *rec = dura_calloc(1, sizeof(*rec));
	if (!rec)
		return oom();
	int rc = copy_record(rec, r, &r->d);
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
	if (!o->run_id || !o->node_id || !o->state) {
		dura_step_clear(o);
		return oom();
	}
	o->step = r->step_base + (int64_t)i;
	o->created_at = st->created_at;
	return 0;
}

static int step_out(dura_step **out, const mem_run *r, size_t i)
{
	dura_step *st = dura_calloc(1, sizeof(*st));
	if (!st)
		return oom();
	int rc = copy_step(st, r, i);
	if (rc) {
		dura_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

static int copy_checkpoint(dura_checkpoint *o, const mem_checkpoint *c)
{
	memset(o, 0, sizeof(*o));
	o->checkpoint_id = dura_strdup(c->id);
	o->run_id = dura_strdup(c->run_id);
	o->state = dura_strdup(c->state);
	if (!o->checkpoint_id || !o->run_id || !o->state) {
		dura_checkpoint_clear(o);
		return oom();
	}
	o->step = c->step;
	o->created_at = c->created_at;
	o->updated_at = c->updated_at;
	return 0;
}

/* with_value 0: value NULL (lists carry only the size). */
static int copy_cache(dura_cache_entry *o, const mem_cache *e, int with_value)
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
		return oom();
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
	o->workflow_name = dura_strdup(e->run->workflow_name);
	o->run_id = dura_strdup(e->run->run_id);
	o->type = dura_strdup(e->type);
	o->data = dura_strdup(e->data);
	if (!o->id || !o->workflow_name || !o->run_id || !o->type || !o->data) {
		dura_event_clear(o);
		return oom();
	}
	o->created_at = e->created_at;
	return 0;
}

/*
 * Each kind of list item's copy (item i of src) and clearer on void *, so
 * that one copy_list() makes every kind of list (calling the typed
 * functions through a void * signature instead would be undefined
 * behaviour).
 */

/* src: the runs (mem_run **) */
static int item_record(void *item, void *src, size_t i)
{
	mem_run **runs = src;
	return copy_record(item, runs[i], &runs[i]->d);
}

/* src: a step_range, the run and the index of the first step listed */
typedef struct step_range {
	const mem_run *r;
	size_t start;
} step_range;

static int item_step(void *item, void *src, size_t i)
{
	const step_range *sr = src;
	return copy_step(item, sr->r, sr->start + i);
}

/* src: the checkpoints (mem_checkpoint **) */
static int item_checkpoint(void *item, void *src, size_t i)
{
	mem_checkpoint **sel = src;
	return copy_checkpoint(item, sel[i]);
}

/* src: the entries (mem_cache **); listed entries carry the value's
 * length, not the value */
static int item_cache(void *item, void *src, size_t i)
{
	mem_cache **sel = src;
	return copy_cache(item, sel[i], 0);
}

/* src: a cursor (mem_event **) into the outbox list, moved on one event a
 * copy: copy_list() copies in order, and a list has no index */
static int item_event(void *item, void *src, size_t i)
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
static int copy_list(void **items, size_t *count, size_t n, size_t item_size,
                     int (*copy)(void *item, void *src, size_t i), void (*clear)(void *item), void *src)
{
	if (n == 0)
		return 0;
	char *a = dura_calloc(n, item_size);
	if (!a)
		return oom();
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

static void free_steps(mem_run *r)
{
	for (size_t i = 0; i < r->nsteps; i++) {
		dura_free(r->steps[i].node_id);
		text_unref(r->steps[i].state);
	}
	dura_free(r->steps);
	r->steps = NULL;
	r->nsteps = r->capsteps = 0;
}

static void free_run_data(run_data *d)
{
	text_unref(d->state);
	opt_free(d->status);
	opt_free(d->error);
	opt_free(d->lease_owner);
	opt_free(d->wait);
}

static void free_run(mem_run *r)
{
	if (!r)
		return;
	free_steps(r);
	free_run_data(&r->d);
	dura_free(r->run_id);
	dura_free(r->workflow_name);
	opt_free(r->foreign_id);
	opt_free(r->meta);
	opt_free(r->concurrency_key);
	opt_free(r->parent_id);
	dura_free(r);
}

static void free_checkpoint(mem_checkpoint *c)
{
	if (!c)
		return;
	dura_free(c->id);
	dura_free(c->run_id);
	dura_free(c->state);
	dura_free(c);
}

static void free_cache(mem_cache *e)
{
	if (!e)
		return;
	dura_free(e->key);
	dura_free(e->value);
	dura_free(e->error);
	dura_free(e->metadata);
	dura_free(e);
}

static void free_claim(mem_claim *c)
{
	if (!c)
		return;
	dura_free(c->key);
	dura_free(c->owner);
	dura_free(c);
}

static void free_event(mem_event *e)
{
	dura_free(e); /* id, data and type are in the same block */
}

/* ---- outbox list ---------------------------------------------------------- */

/* Insert in id order; ids are UUIDv7 made just before the commit, so the
 * walk from the tail is nearly always zero steps. */
static void event_link(mem_store *m, mem_event *e)
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

static void event_unlink(mem_store *m, mem_event *e)
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

/* ---- lifecycle ------------------------------------------------------------ */

/* The core's size limits, the only options the memory store has. */
static int core_option(const char *name)
{
	return strcmp(name, "max_state") == 0 || strcmp(name, "max_value") == 0;
}

/* Name the URL options the memory store ignores (all but the core's). */
static int make_notes(char **out, const dura_url *url)
{
	size_t n = 0;
	for (size_t i = 0; i < url->nparams; i++)
		if (!core_option(url->param_names[i]))
			n += strlen(url->param_names[i]) + 2;
	if (n == 0) {
		*out = NULL;
		return 0;
	}
	static const char head[] = "ignored options (the memory store has none but max_state and max_value): ";
	char *s = dura_malloc(sizeof(head) + n);
	if (!s)
		return oom();
	size_t off = 0;
	memcpy(s, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (size_t i = 0, first = 1; i < url->nparams; i++) {
		if (core_option(url->param_names[i]))
			continue;
		size_t k = strlen(url->param_names[i]);
		if (!first) {
			memcpy(s + off, ", ", 2);
			off += 2;
		}
		memcpy(s + off, url->param_names[i], k);
		off += k;
		first = 0;
	}
	s[off] = '\0';
	*out = s;
	return 0;
}

static int mem_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	(void)opts; /* the schema is built in: nothing to migrate */
	*impl = NULL;
	mem_store *m = dura_calloc(1, sizeof(*m));
	if (!m)
		return oom();
	int rc = make_notes(&m->notes, url);
	if (rc) {
		dura_free(m);
		return rc;
	}
	if (dura__cond_init_mono(&m->changed) != 0) {
		dura_free(m->notes);
		dura_free(m);
		return dura_error_set_native(DURA_ERROR, STORE, 0, NULL, "cannot create a condition variable");
	}
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		pthread_cond_destroy(&m->changed);
		dura_free(m->notes);
		dura_free(m);
		return dura_error_set_native(DURA_ERROR, STORE, 0, NULL, "cannot create a mutex");
	}
	if (!(m->workers = dura__mem_workers_new()) || !(m->inbox = dura__mem_inbox_new()) ||
	    !(m->schedules = dura__mem_schedules_new())) {
		dura__mem_workers_free(m->workers);
		dura__mem_inbox_free(m->inbox);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->changed);
		dura_free(m->notes);
		dura_free(m);
		return DURA_ENOMEM;
	}
	*impl = m;
	return 0;
}

static void mem_close(void *impl)
{
	mem_store *m = impl;
	if (!m)
		return;
	dura__mem_workers_free(m->workers);
	dura__mem_inbox_free(m->inbox);
	dura__mem_schedules_free(m->schedules);
	mem_run *r, *rt;
	HASH_ITER(hh, m->runs, r, rt)
	{
		HASH_DEL(m->runs, r);
		free_run(r);
	}
	mem_slot *s, *st;
	HASH_ITER(hh, m->slots, s, st)
	{
		HASH_DEL(m->slots, s);
		dura_free(s);
	}
	mem_checkpoint *c, *ct;
	HASH_ITER(hh, m->checkpoints, c, ct)
	{
		HASH_DEL(m->checkpoints, c);
		free_checkpoint(c);
	}
	mem_cache *e, *et;
	HASH_ITER(hh, m->cache, e, et)
	{
		HASH_DEL(m->cache, e);
		free_cache(e);
	}
	mem_claim *cl, *clt;
	HASH_ITER(hh, m->claims, cl, clt)
	{
		HASH_DEL(m->claims, cl);
		free_claim(cl);
	}
	HASH_CLEAR(hh, m->events);
	for (mem_event *ev = m->ev_head, *next; ev; ev = next) {
		next = ev->next;
		free_event(ev);
	}
	pthread_cond_destroy(&m->changed);
	pthread_mutex_destroy(&m->lock);
	dura_free(m->notes);
	dura_free(m);
}

static int mem_ping(void *impl)
{
	(void)impl;
	return 0;
}

static int mem_info(void *impl, dura_store_info *out)
{
	mem_store *m = impl;
	out->server_version = "dura memory store";
	out->schema_version = MEM_SCHEMA_VERSION;
	out->library_schema_version = MEM_SCHEMA_VERSION;
	out->caps = DURA_CAP_NOTIFY;
	out->notes = m->notes ? m->notes : "";
	return 0;
}

static int mem_stats(void *impl, dura_store_stats *out)
{
	(void)impl;
	/* no connections: one "connection" that is always there and idle */
	out->open = 1;
	out->idle = 1;
	out->in_use = 0;
	out->max_open = 1;
	out->waits = 0;
	return 0;
}

static int mem_migrate(void *impl, int *from, int *to)
{
	(void)impl;
	if (from)
		*from = MEM_SCHEMA_VERSION;
	if (to)
		*to = MEM_SCHEMA_VERSION;
	return 0;
}

/* ---- runs ----------------------------------------------------------------- */

static int add_run(mem_store *m, mem_run *r)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->runs, r->run_id, strlen(r->run_id), r);
	return hash_oom;
}

static int add_slot(mem_store *m, mem_slot *s)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->slots, s->key, s->keylen, s);
	return hash_oom;
}

static int mem_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	mem_store *m = impl;
	const char *fid = req->foreign_id ? req->foreign_id : "";
	int to = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	int rc = 0;
	lock(m);
	if (find_run(m, run_id)) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "run id %s already exists", run_id);
		goto done;
	}
	mem_slot *slot = NULL, *new_slot = NULL;
	if (*fid) {
		slot = find_slot(m, req->workflow_name, fid);
		if (slot && slot->active) {
			rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL,
			                           "workflow %s already has an active run %s with foreign id %s",
			                           req->workflow_name, slot->active->run_id, fid);
			if (out && record_out(out, slot->active) != 0)
				rc = DURA_ENOMEM;
			goto done;
		}
		if (!slot) {
			char key[SLOT_KEY_MAX];
			size_t n = slot_key(key, sizeof(key), req->workflow_name, fid);
			new_slot = dura_calloc(1, sizeof(*new_slot) + n);
			if (!new_slot) {
				rc = oom();
				goto done;
			}
			memcpy(new_slot->key, key, n);
			new_slot->keylen = n;
			slot = new_slot;
		}
	}

	int64_t now = dura_now_ms();
	mem_run *r = dura_calloc(1, sizeof(*r));
	if (!r) {
		dura_free(new_slot);
		rc = oom();
		goto done;
	}
	r->run_id = dura_strdup(run_id);
	r->workflow_name = dura_strdup(req->workflow_name);
	r->foreign_id = opt_dup(fid);
	r->meta = opt_dup(req->meta);
	r->concurrency_key = opt_dup(req->concurrency_key);
	r->parent_id = opt_dup(req->parent_id);
	r->priority = req->priority;
	r->created_at = now;
	r->d.state = text_new(req->state ? req->state : "{}");
	r->d.status = opt_dup(req->status);
	r->d.error = mem_empty;
	r->d.lease_owner = mem_empty;
	r->d.wait = mem_empty;
	r->d.run_state = to;
	r->d.version = 1;
	r->d.next_run_at = req->next_run_at ? req->next_run_at : now;
	r->d.updated_at = now;
	dura_record *rec = NULL;
	if (!r->run_id || !r->workflow_name || !r->foreign_id || !r->meta || !r->concurrency_key || !r->parent_id ||
	    !r->d.state || !r->d.status ||
	    (out && record_out(&rec, r) != 0) || add_run(m, r)) {
		dura_record_free(rec);
		free_run(r);
		dura_free(new_slot);
		rc = oom();
		goto done;
	}
	if (new_slot && add_slot(m, new_slot)) {
		HASH_DEL(m->runs, r);
		dura_record_free(rec);
		free_run(r);
		dura_free(new_slot);
		rc = oom();
		goto done;
	}
	/* nothing can fail from here */
	if (slot) {
		r->slot = slot;
		if (active(to))
			slot->active = r;
		if (!slot->latest || strcmp(r->run_id, slot->latest->run_id) > 0)
			slot->latest = r;
	}
	if (out)
		*out = rec;
done:
	unlock(m);
	return rc;
}

static int mem_get_run(void *impl, const char *run_id, dura_record **out)
{
	mem_store *m = impl;
	lock(m);
	mem_run *r = find_run(m, run_id);
	int rc = r ? record_out(out, r) : run_missing(run_id);
	unlock(m);
	return rc;
}

static int mem_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	mem_store *m = impl;
	lock(m);
	mem_slot *s = find_slot(m, wf, fid);
	int rc = s && s->latest ? record_out(out, s->latest)
	                        : dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL,
	                                                "workflow %s has no run with foreign id %s", wf, fid);
	unlock(m);
	return rc;
}

static int run_id_desc(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	return strcmp(y->run_id, x->run_id);
}

static int run_matches(const mem_run *r, const dura_run_filter *f)
{
	if (f->workflow_name && *f->workflow_name && strcmp(r->workflow_name, f->workflow_name) != 0)
		return 0;
	if (f->run_state && r->d.run_state != f->run_state)
		return 0;
	if (f->status && *f->status && strcmp(r->d.status, f->status) != 0)
		return 0;
	if (f->foreign_id && *f->foreign_id && strcmp(r->foreign_id, f->foreign_id) != 0)
		return 0;
	if (f->created_after && r->created_at < f->created_after)
		return 0;
	if (f->created_before && r->created_at >= f->created_before)
		return 0;
	if (f->cursor && *f->cursor && strcmp(r->run_id, f->cursor) >= 0)
		return 0;
	if (f->parent_id && strcmp(r->parent_id, f->parent_id) != 0)
		return 0;
	if (f->waiting && !*r->d.wait)
		return 0;
	return 1;
}

static int mem_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	size_t limit = f->limit ? f->limit : 100;
	lock(m);
	size_t total = HASH_COUNT(m->runs), n = 0;
	mem_run **sel = NULL;
	if (total) {
		sel = dura_malloc(total * sizeof(*sel));
		if (!sel) {
			rc = oom();
			goto done;
		}
	}
	for (mem_run *r = m->runs; r; r = r->hh.next)
		if (run_matches(r, f))
			sel[n++] = r;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), run_id_desc);
	if (n > limit)
		n = limit;
	rc = copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_record, dura_record_clear, sel);
	if (rc == 0 && n == limit) {
		out->next_cursor = dura_strdup(sel[n - 1]->run_id);
		if (!out->next_cursor) {
			dura_record_list_free(out);
			rc = oom();
		}
	}
done:
	unlock(m);
	dura_free(sel);
	return rc;
}

/* Drop a run's steps and checkpoints and put empty_state in its place
 * (delete_run_data, or set_run_state to data_deleted). Cannot fail. */
static void erase_run_data(mem_store *m, mem_run *r, mem_text *empty_state)
{
	free_steps(r);
	dura__mem_inbox_erase_run(m->inbox, r->run_id);
	mem_checkpoint *c, *ct;
	HASH_ITER(hh, m->checkpoints, c, ct)
	{
		if (strcmp(c->run_id, r->run_id) == 0) {
			HASH_DEL(m->checkpoints, c);
			free_checkpoint(c);
		}
	}
	text_unref(r->d.state);
	r->d.state = empty_state;
}

/* What a wake changed, to undo it with a batch. */
typedef struct wake_undo {
	mem_run *run; /* NULL: nothing woken */
	int64_t version, next_run_at, updated_at;
} wake_undo;

/* Wake run_id if it is running and waits for `wait` (contract 5's wake);
 * u (may be NULL) records the change. Cannot fail; 1 if woken. */
static int wake_locked(mem_store *m, const char *run_id, const char *wait, int64_t now, wake_undo *u)
{
	mem_run *r = find_run(m, run_id);
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

/* The wait a parent has while it awaits child r: "child:" + run id. */
static void child_wait(char *buf, size_t size, const mem_run *r)
{
	snprintf(buf, size, "child:%s", r->run_id);
}

static int mem_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (!r) {
		rc = run_missing(run_id);
		goto done;
	}
	int from = r->d.run_state;
	if (!dura_run_state_transition_ok(from, to)) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is %s and cannot become %s", run_id,
		                           dura_run_state_name(from), dura_run_state_name(to));
		goto done;
	}
	rc = reactivation_refused(r, to);
	if (rc)
		goto done;
	/* data_deleted means erased, whichever way a run gets there */
	mem_text *empty_state = NULL;
	if (to == DURA_RUN_DATA_DELETED) {
		empty_state = text_new("{}");
		if (!empty_state) {
			rc = oom();
			goto done;
		}
		erase_run_data(m, r, empty_state);
	}
	int64_t now = dura_now_ms();
	r->d.run_state = to;
	r->d.version++;
	r->d.updated_at = now;
	if (to == DURA_RUN_RUNNING) {
		if (!*r->d.wait) /* a resumed sleeper sleeps on */
			r->d.next_run_at = now;
		r->d.attempt = 0;
	}
	if (to == DURA_RUN_CANCELLED && *r->parent_id) {
		char w[DURA_MAX_ID_LEN + 8];
		child_wait(w, sizeof(w), r);
		wake_locked(m, r->parent_id, w, now, NULL);
	}
	slot_track(r, from, to);
	if (new_version)
		*new_version = r->d.version;
	pthread_cond_broadcast(&m->changed);
done:
	unlock(m);
	return rc;
}

static int mem_delete_run_data(void *impl, const char *run_id)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (!r) {
		rc = run_missing(run_id);
		goto done;
	}
	int st = r->d.run_state;
	if (st != DURA_RUN_COMPLETED && st != DURA_RUN_CANCELLED && st != DURA_RUN_FAILED) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL,
		                           "run %s is %s: only a completed, cancelled or failed run's data can be deleted",
		                           run_id, dura_run_state_name(st));
		goto done;
	}
	mem_text *empty_state = text_new("{}");
	if (!empty_state) {
		rc = oom();
		goto done;
	}
	erase_run_data(m, r, empty_state);
	r->d.run_state = DURA_RUN_DATA_DELETED;
	r->d.version++;
	r->d.updated_at = dura_now_ms();
	pthread_cond_broadcast(&m->changed);
done:
	unlock(m);
	return rc;
}

/* ---- steps ---------------------------------------------------------------- */

/* What the default event data is made of (dura_store_event_summary()). */
typedef struct event_summary {
	const char *run_id, *node_id, *status;
	int64_t step;
	int run_state;
} event_summary;

/*
 * A new event in one allocation: the struct, its id, its data and (when
 * not the default) its type. data NULL: the default event data of sum.
 * NULL with *rc set on failure.
 */
static mem_event *event_new(const char *id, const char *type, const char *data, const event_summary *sum, int *rc)
{
	size_t ld = data ? strlen(data)
	                 : dura_store_event_summary(NULL, 0, sum->run_id, sum->step, sum->node_id, sum->status, sum->run_state);
	size_t li = strlen(id), lt = type ? strlen(type) + 1 : 0;
	mem_event *e = dura_calloc(1, sizeof(*e) + li + 1 + ld + 1 + lt);
	if (!e) {
		*rc = oom();
		return NULL;
	}
	memcpy(e->id, id, li + 1);
	e->data = e->id + li + 1;
	if (data)
		memcpy(e->data, data, ld + 1);
	else
		dura_store_event_summary(e->data, ld + 1, sum->run_id, sum->step, sum->node_id, sum->status, sum->run_state);
	e->type = mem_type_step;
	if (type) {
		e->type = e->data + ld + 1;
		memcpy(e->type, type, lt);
	}
	return e;
}

/* What one applied commit changed, to undo it (a batch that runs out of
 * memory) or to free what it replaced. */
typedef struct commit_undo {
	mem_run *run; /* NULL: nothing applied */
	run_data old, nd;
	int stepped;
	mem_event *ev;
	mem_run *old_active;
	void *signal; /* the signal the commit consumed (memory_waiting.c), or NULL */
	wake_undo woke;
} commit_undo;

static int add_event(mem_store *m, mem_event *e)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->events, e->id, strlen(e->id), e);
	return hash_oom;
}

/*
 * Check and apply one commit under the lock. On error nothing is changed
 * (and u->run stays NULL). Everything is allocated, and the event hashed,
 * before the first change.
 */
static int commit_apply(mem_store *m, const dura_commit *c, const char *event_id, dura_commit_result *res,
                        commit_undo *u)
{
	memset(u, 0, sizeof(*u));
	mem_run *r = find_run(m, c->run_id);
	if (!r)
		return run_missing(c->run_id);
	if (r->d.version != c->expect_version)
		return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s: expected version %lld but it is %lld",
		                             c->run_id, (long long)c->expect_version, (long long)r->d.version);
	int to = c->run_state ? c->run_state : r->d.run_state;
	int rc = reactivation_refused(r, to);
	if (rc)
		return rc;
	int with_step = !(c->flags & DURA_COMMIT_NO_STEP);
	int with_event = !(c->flags & DURA_COMMIT_NO_EVENT);
	int64_t now = dura_now_ms();
	int64_t step = with_step ? r->d.step_no : -1;

	long signal_pos = -1;
	if (c->signal_id && (signal_pos = dura__mem_inbox_find(m->inbox, r->run_id, c->signal_id)) < 0)
		return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s has no signal %s (consumed already?)",
		                             c->run_id, c->signal_id);

	/* allocate */
	run_data nd = r->d;
	nd.state = text_new(c->state);
	nd.status = opt_dup(c->status);
	nd.error = opt_dup(c->error);
	nd.wait = opt_dup(c->wait);
	char *node = NULL;
	mem_event *ev = NULL;
	int bad = !nd.state || !nd.status || !nd.error || !nd.wait;
	if (!bad && with_step) {
		if (r->nsteps == r->capsteps) {
			size_t cap = r->capsteps ? r->capsteps * 2 : 8;
			mem_step *grown = dura_realloc(r->steps, cap * sizeof(*grown));
			if (grown) {
				r->steps = grown; /* only capacity: no visible change */
				r->capsteps = cap;
			}
			bad = !grown;
		}
		if (!bad) {
			node = dura_strdup(c->node_id);
			bad = !node;
		}
	}
	if (!bad && with_event) {
		event_summary sum = {r->run_id, c->node_id, c->status, step, to};
		ev = event_new(event_id, c->event_type, c->event_data, &sum, &rc);
		bad = !ev;
		if (ev) {
			ev->run = r;
			ev->created_at = now;
		}
	}
	if (!bad && ev && add_event(m, ev))
		bad = 1;
	if (bad) {
		text_unref(nd.state);
		if (nd.status)
			opt_free(nd.status);
		if (nd.error)
			opt_free(nd.error);
		if (nd.wait)
			opt_free(nd.wait);
		dura_free(node);
		free_event(ev);
		return rc ? rc : oom();
	}

	/* apply: nothing can fail from here */
	nd.run_state = to;
	nd.attempt = c->attempt;
	nd.next_run_at = c->next_run_at ? c->next_run_at : now;
	nd.version++;
	nd.updated_at = now;
	if (c->flags & DURA_COMMIT_RELEASE_LEASE) {
		nd.lease_owner = mem_empty;
		nd.lease_expires_at = 0;
	}
	if (with_step) {
		if (r->nsteps == 0)
			r->step_base = r->d.step_no;
		r->steps[r->nsteps].node_id = node;
		r->steps[r->nsteps].state = nd.state;
		r->steps[r->nsteps].created_at = now;
		r->nsteps++;
		nd.state->refs++;
		nd.step_no++;
		u->stepped = 1;
	}
	if (ev)
		event_link(m, ev);
	u->run = r;
	u->old = r->d;
	u->nd = nd;
	u->ev = ev;
	u->old_active = r->slot ? r->slot->active : NULL;
	int was = r->d.run_state;
	r->d = nd;
	slot_track(r, was, to);
	if (signal_pos >= 0)
		u->signal = dura__mem_inbox_take(m->inbox, signal_pos);
	if (c->wake_run_id)
		wake_locked(m, c->wake_run_id, c->wake_wait, now, &u->woke);
	res->new_version = nd.version;
	res->step = step;
	return 0;
}

/* Free what an applied commit replaced. */
static void commit_finish(commit_undo *u)
{
	if (!u->run)
		return;
	text_unref(u->old.state);
	opt_free(u->old.status);
	opt_free(u->old.error);
	opt_free(u->old.wait);
	if (u->old.lease_owner != u->nd.lease_owner)
		opt_free(u->old.lease_owner);
	if (u->signal)
		dura__mem_inbox_drop(u->signal);
}

/* Undo an applied commit (the latest applied one first). */
static void commit_undo_apply(mem_store *m, commit_undo *u)
{
	mem_run *r = u->run;
	if (!r)
		return;
	if (u->woke.run) {
		u->woke.run->d.version = u->woke.version;
		u->woke.run->d.next_run_at = u->woke.next_run_at;
		u->woke.run->d.updated_at = u->woke.updated_at;
	}
	if (u->signal)
		dura__mem_inbox_put_back(m->inbox, u->signal);
	u->signal = NULL;
	if (r->slot)
		r->slot->active = u->old_active;
	if (u->ev) {
		event_unlink(m, u->ev);
		HASH_DEL(m->events, u->ev);
		free_event(u->ev);
	}
	if (u->stepped) {
		mem_step *st = &r->steps[--r->nsteps];
		dura_free(st->node_id);
		text_unref(st->state);
	}
	r->d = u->old;
	text_unref(u->nd.state);
	opt_free(u->nd.status);
	opt_free(u->nd.error);
	opt_free(u->nd.wait);
	if (u->nd.lease_owner != u->old.lease_owner)
		opt_free(u->nd.lease_owner);
	u->run = NULL;
}

static int mem_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res)
{
	mem_store *m = impl;
	commit_undo u;
	lock(m);
	int rc = commit_apply(m, c, event_id, res, &u);
	if (rc == 0) {
		commit_finish(&u);
		pthread_cond_broadcast(&m->changed);
	}
	unlock(m);
	return rc;
}

static int mem_commit_batch(void *impl, const dura_commit *c, const char *const *event_ids, size_t n,
                            dura_commit_result *res)
{
	mem_store *m = impl;
	commit_undo *undo = dura_calloc(n, sizeof(*undo));
	if (!undo) {
		int rc = oom();
		for (size_t i = 0; i < n; i++)
			res[i].code = rc;
		return rc;
	}
	size_t failed = 0, first_failed = 0;
	char first_msg[256] = "";
	int rc = 0;
	lock(m);
	for (size_t i = 0; i < n; i++) {
		res[i].code = commit_apply(m, &c[i], event_ids[i], &res[i], &undo[i]);
		if (res[i].code == DURA_ENOMEM || (res[i].code && res[i].code != DURA_ECONFLICT &&
		                                   res[i].code != DURA_ENOTFOUND && res[i].code != DURA_EINVAL)) {
			/* the batch fails as a whole: undo what went in */
			rc = res[i].code;
			for (size_t k = i; k-- > 0;)
				commit_undo_apply(m, &undo[k]);
			for (size_t k = 0; k < n; k++) {
				res[k].code = rc;
				res[k].new_version = 0;
				res[k].step = 0;
			}
			break;
		}
		if (res[i].code && failed++ == 0) {
			const dura_error *e = dura_error_last();
			first_failed = i;
			snprintf(first_msg, sizeof(first_msg), "%s", e && e->message ? e->message : "");
		}
	}
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			commit_finish(&undo[i]);
		if (failed < n)
			pthread_cond_broadcast(&m->changed);
	}
	unlock(m);
	dura_free(undo);
	if (rc == 0 && failed)
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "%zu of %zu commits did not go in (commit %zu: %s)",
		                           failed, n, first_failed, first_msg);
	return rc;
}

static int mem_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (!r || r->nsteps == 0)
		goto done;
	size_t start = from <= r->step_base ? 0 : (size_t)(from - r->step_base);
	if (start >= r->nsteps)
		goto done;
	size_t n = r->nsteps - start;
	if (limit && n > limit)
		n = limit;
	step_range range = {r, start};
	rc = copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_step, dura_step_clear, &range);
done:
	unlock(m);
	return rc;
}

static int mem_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	mem_store *m = impl;
	int rc;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (r && r->nsteps && step >= r->step_base && step - r->step_base < (int64_t)r->nsteps)
		rc = step_out(out, r, (size_t)(step - r->step_base));
	else if (!r)
		rc = run_missing(run_id);
	else
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s has no step %lld", run_id,
		                           (long long)step);
	unlock(m);
	return rc;
}

static int mem_load_latest(void *impl, const char *run_id, dura_step **out)
{
	mem_store *m = impl;
	int rc;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (r && r->nsteps)
		rc = step_out(out, r, r->nsteps - 1);
	else if (!r)
		rc = run_missing(run_id);
	else
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s has no steps", run_id);
	unlock(m);
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------- */

static int add_checkpoint(mem_store *m, mem_checkpoint *c)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->checkpoints, c->id, strlen(c->id), c);
	return hash_oom;
}

static int mem_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	mem_store *m = impl;
	int rc = 0;
	char *rid = dura_strdup(run_id), *st = dura_strdup(state);
	if (!rid || !st) {
		dura_free(rid);
		dura_free(st);
		return oom();
	}
	lock(m);
	int64_t now = dura_now_ms();
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (c) {
		dura_free(c->run_id);
		dura_free(c->state);
		c->run_id = rid;
		c->state = st;
		c->step = step;
		c->updated_at = now;
		goto done;
	}
	c = dura_calloc(1, sizeof(*c));
	if (c)
		c->id = dura_strdup(cp_id);
	if (!c || !c->id || add_checkpoint(m, c)) {
		if (c)
			dura_free(c->id);
		dura_free(c);
		dura_free(rid);
		dura_free(st);
		rc = oom();
		goto done;
	}
	c->run_id = rid;
	c->state = st;
	c->step = step;
	c->created_at = c->updated_at = now;
done:
	unlock(m);
	return rc;
}

static int mem_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (!c) {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "checkpoint %s does not exist", cp_id);
		goto done;
	}
	dura_checkpoint *cp = dura_calloc(1, sizeof(*cp));
	if (!cp) {
		rc = oom();
		goto done;
	}
	rc = copy_checkpoint(cp, c);
	if (rc)
		dura_free(cp);
	else
		*out = cp;
done:
	unlock(m);
	return rc;
}

/* Newest first: updated_at descending, then checkpoint id. */
static int checkpoint_order(const void *a, const void *b)
{
	const mem_checkpoint *x = *(const mem_checkpoint *const *)a, *y = *(const mem_checkpoint *const *)b;
	if (x->updated_at != y->updated_at)
		return x->updated_at > y->updated_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int mem_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_checkpoint **sel = NULL;
	lock(m);
	size_t total = HASH_COUNT(m->checkpoints), n = 0;
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = oom();
		goto done;
	}
	for (mem_checkpoint *c = m->checkpoints; c; c = c->hh.next)
		if (!run_id || strcmp(c->run_id, run_id) == 0)
			sel[n++] = c;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), checkpoint_order);
	rc = copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_checkpoint, dura_checkpoint_clear,
	               sel);
done:
	unlock(m);
	dura_free(sel);
	return rc;
}

static int mem_checkpoint_delete(void *impl, const char *cp_id)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (c) {
		HASH_DEL(m->checkpoints, c);
		free_checkpoint(c);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "checkpoint %s does not exist", cp_id);
	}
	unlock(m);
	return rc;
}

/* ---- cache ---------------------------------------------------------------- */

static int expired(const mem_cache *e, int64_t now)
{
	return e->expires_at != 0 && e->expires_at <= now;
}

static mem_cache *find_cache(mem_store *m, const char *key)
{
	mem_cache *e = NULL;
	HASH_FIND_STR(m->cache, key, e);
	return e;
}

static mem_claim *find_claim(mem_store *m, const char *key)
{
	mem_claim *c = NULL;
	HASH_FIND_STR(m->claims, key, c);
	return c;
}

static int add_cache(mem_store *m, mem_cache *e)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->cache, e->key, strlen(e->key), e);
	return hash_oom;
}

static int add_claim(mem_store *m, mem_claim *c)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->claims, c->key, strlen(c->key), c);
	return hash_oom;
}

static void drop_claim(mem_store *m, const char *key)
{
	mem_claim *c = find_claim(m, key);
	if (c) {
		HASH_DEL(m->claims, c);
		free_claim(c);
	}
}

static int mem_cache_get(void *impl, const char *key, dura_cache_entry **out)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_cache *e = find_cache(m, key);
	if (!e || expired(e, dura_now_ms())) {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s: %s", key,
		                           e ? "the entry has expired" : "no entry");
		goto done;
	}
	dura_cache_entry *ce = dura_calloc(1, sizeof(*ce));
	if (!ce) {
		rc = oom();
		goto done;
	}
	rc = copy_cache(ce, e, 1);
	if (rc)
		dura_free(ce);
	else
		*out = ce;
done:
	unlock(m);
	return rc;
}

static int mem_cache_put(void *impl, const char *key, const void *value, size_t value_len, const char *error,
                         const char *metadata, int64_t ttl_ms)
{
	mem_store *m = impl;
	/* everything the new entry needs, before the lock */
	unsigned char *v = dura_malloc(value_len + 1);
	char *err = error ? dura_strdup(error) : NULL;
	char *meta = metadata ? dura_strdup(metadata) : NULL;
	if (!v || (error && !err) || (metadata && !meta)) {
		dura_free(v);
		dura_free(err);
		dura_free(meta);
		return oom();
	}
	if (value_len)
		memcpy(v, value, value_len);
	v[value_len] = '\0';
	int rc = 0;
	lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e = find_cache(m, key);
	if (!e) {
		e = dura_calloc(1, sizeof(*e));
		if (e)
			e->key = dura_strdup(key);
		if (!e || !e->key || add_cache(m, e)) {
			if (e)
				dura_free(e->key);
			dura_free(e);
			dura_free(v);
			dura_free(err);
			dura_free(meta);
			rc = oom();
			goto done;
		}
	} else {
		dura_free(e->value);
		dura_free(e->error);
		dura_free(e->metadata);
	}
	e->value = v;
	e->value_len = value_len;
	e->error = err;
	e->metadata = meta;
	e->created_at = now;
	e->expires_at = ttl_ms ? now + ttl_ms : 0;
	drop_claim(m, key);
done:
	unlock(m);
	return rc;
}

static int mem_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms)
{
	mem_store *m = impl;
	int rc = 0;
	char *own = dura_strdup(owner);
	if (!own)
		return oom();
	lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e = find_cache(m, key);
	if (e && !expired(e, now)) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "cache key %s already has a value", key);
		goto done;
	}
	mem_claim *c = find_claim(m, key);
	if (c && strcmp(c->owner, owner) != 0 && c->expires_at > now) {
		rc = dura_error_set_native(DURA_EBUSY, STORE, 0, NULL, "cache key %s is claimed by %s for %lld ms more", key,
		                           c->owner, (long long)(c->expires_at - now));
		goto done;
	}
	if (!c) {
		c = dura_calloc(1, sizeof(*c));
		if (c)
			c->key = dura_strdup(key);
		if (!c || !c->key || add_claim(m, c)) {
			if (c)
				dura_free(c->key);
			dura_free(c);
			rc = oom();
			goto done;
		}
	} else {
		dura_free(c->owner);
	}
	c->owner = own;
	own = NULL;
	c->expires_at = now + lease_ms;
done:
	unlock(m);
	dura_free(own);
	return rc;
}

static int mem_cache_release(void *impl, const char *key, const char *owner)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_claim *c = find_claim(m, key);
	if (c && strcmp(c->owner, owner) == 0) {
		HASH_DEL(m->claims, c);
		free_claim(c);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s is not claimed by %s", key, owner);
	}
	unlock(m);
	return rc;
}

static int mem_cache_delete(void *impl, const char *key)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_cache *e = find_cache(m, key);
	if (e) {
		HASH_DEL(m->cache, e);
		free_cache(e);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "cache key %s: no entry", key);
	}
	unlock(m);
	return rc;
}

static int mem_cache_purge_expired(void *impl, int64_t *count)
{
	mem_store *m = impl;
	int64_t n = 0;
	lock(m);
	int64_t now = dura_now_ms();
	mem_cache *e, *et;
	HASH_ITER(hh, m->cache, e, et)
	{
		if (expired(e, now)) {
			HASH_DEL(m->cache, e);
			free_cache(e);
			n++;
		}
	}
	unlock(m);
	if (count)
		*count = n;
	return 0;
}

static int cache_key_order(const void *a, const void *b)
{
	const mem_cache *x = *(const mem_cache *const *)a, *y = *(const mem_cache *const *)b;
	return strcmp(x->key, y->key);
}

static int mem_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_cache **sel = NULL;
	if (limit == 0)
		limit = 100;
	lock(m);
	size_t total = HASH_COUNT(m->cache), n = 0;
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = oom();
		goto done;
	}
	for (mem_cache *e = m->cache; e; e = e->hh.next)
		if (!cursor || strcmp(e->key, cursor) > 0)
			sel[n++] = e;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), cache_key_order);
	if (n > limit)
		n = limit;
	rc = copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_cache, dura_cache_entry_clear, sel);
	if (rc == 0 && n == limit) {
		out->next_cursor = dura_strdup(sel[n - 1]->key);
		if (!out->next_cursor) {
			dura_cache_list_free(out);
			rc = oom();
		}
	}
done:
	unlock(m);
	dura_free(sel);
	return rc;
}

static int mem_cache_stats(void *impl, dura_cache_stats *out)
{
	mem_store *m = impl;
	lock(m);
	int64_t now = dura_now_ms(), entries = 0, exp = 0, bytes = 0;
	for (mem_cache *e = m->cache; e; e = e->hh.next) {
		entries++;
		exp += expired(e, now);
		bytes += (int64_t)e->value_len;
	}
	unlock(m);
	out->entries = entries;
	out->expired = exp;
	out->bytes = bytes;
	return 0;
}

/* ---- leases --------------------------------------------------------------- */

/* Claim order: higher priority first, then the earliest due, then run id. */
static int claim_order(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->d.next_run_at != y->d.next_run_at)
		return x->d.next_run_at < y->d.next_run_at ? -1 : 1;
	return strcmp(x->run_id, y->run_id);
}

static int workflow_served(const char *wf, const dura_claim *req)
{
	if (req->nworkflows == 0)
		return 1;
	for (size_t i = 0; i < req->nworkflows; i++)
		if (strcmp(wf, req->workflows[i].name) == 0)
			return 1;
	return 0;
}

static int leased_now(const mem_run *r, int64_t now)
{
	return r->d.lease_owner[0] && r->d.lease_expires_at > now;
}

/* Under the store's lock, so counting the live leases and taking the
 * claim are one step (flow.h). */
static int mem_claim_flow(void *impl, const dura_claim *req, dura_record_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_run **sel = NULL;
	run_data *nd = NULL;
	dura_record *items = NULL;
	dura_flow *flow = NULL;
	size_t n = 0, done_copies = 0;
	if ((rc = dura_flow_new(&flow, req, STORE)) != 0)
		return rc;
	lock(m);
	int64_t now = dura_now_ms();
	size_t total = HASH_COUNT(m->runs);
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = oom();
		goto done;
	}
	for (mem_run *r = m->runs; r; r = r->hh.next) {
		if (r->d.run_state != DURA_RUN_RUNNING)
			continue;
		if (leased_now(r, now)) {
			if (flow && (rc = dura_flow_count(flow, r->workflow_name, r->concurrency_key, 1)) != 0)
				goto done;
			continue;
		}
		if (r->d.next_run_at <= now && workflow_served(r->workflow_name, req))
			sel[n++] = r;
	}
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), claim_order);
	size_t k = 0;
	for (size_t i = 0; i < n && k < req->max; i++) {
		int ok = flow ? dura_flow_admit(flow, sel[i]->workflow_name, sel[i]->concurrency_key) : 1;
		if (ok < 0) {
			rc = DURA_ENOMEM;
			goto done;
		}
		if (ok)
			sel[k++] = sel[i];
	}
	n = k;
	if (n == 0)
		goto done;
	/* build the new fields and the caller's copies before changing a run */
	nd = dura_calloc(n, sizeof(*nd));
	items = dura_calloc(n, sizeof(*items));
	if (!nd || !items) {
		rc = oom();
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		nd[i] = sel[i]->d;
		nd[i].lease_owner = dura_strdup(req->owner);
		if (!nd[i].lease_owner) {
			rc = oom();
			goto done;
		}
		nd[i].lease_expires_at = now + req->lease_ms;
		nd[i].version++;
		nd[i].updated_at = now;
		rc = copy_record(&items[i], sel[i], &nd[i]);
		if (rc) {
			dura_free(nd[i].lease_owner);
			goto done;
		}
		done_copies = i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (req->taken_over)
			req->taken_over[i] = dura_flow_taken_over(sel[i]->d.lease_owner, req->owner);
		opt_free(sel[i]->d.lease_owner);
		sel[i]->d = nd[i];
	}
	out->items = items;
	out->count = n;
	items = NULL;
	pthread_cond_broadcast(&m->changed);
done:
	unlock(m);
	if (items) {
		for (size_t i = 0; i < done_copies; i++) {
			dura_record_clear(&items[i]);
			dura_free(nd[i].lease_owner);
		}
		dura_free(items);
	}
	dura_free(nd);
	dura_free(sel);
	dura_flow_free(flow);
	return rc;
}

static int mem_claim_runs(void *impl, const char *owner, const char *const *wfs, size_t nwfs, size_t max,
                          int64_t lease_ms, dura_record_list *out)
{
	return dura_flow_claim_runs(mem_claim_flow, impl, STORE, owner, wfs, nwfs, max, lease_ms, out);
}

static mem_run *leased_run(mem_store *m, const char *run_id, const char *owner, int *rc)
{
	mem_run *r = find_run(m, run_id);
	if (!r) {
		*rc = run_missing(run_id);
		return NULL;
	}
	if (strcmp(r->d.lease_owner, owner) != 0) {
		*rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is not leased to %s (%s%s)", run_id, owner,
		                            r->d.lease_owner[0] ? "its lease owner is " : "it has no lease owner",
		                            r->d.lease_owner);
		return NULL;
	}
	return r;
}

static int mem_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_run *r = leased_run(m, run_id, owner, &rc);
	if (r)
		r->d.lease_expires_at = dura_now_ms() + lease_ms;
	unlock(m);
	return rc;
}

/* A worker's heartbeat: every lease of the batch under one lock. */
static int mem_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                             int *codes)
{
	mem_store *m = impl;
	lock(m);
	int64_t until = dura_now_ms() + lease_ms;
	for (size_t i = 0; i < n; i++) {
		int rc = 0;
		mem_run *r = leased_run(m, run_ids[i], owner, &rc);
		if (r)
			r->d.lease_expires_at = until;
		codes[i] = rc;
	}
	unlock(m);
	dura_error_clear(); /* the codes tell; the call itself worked */
	return 0;
}

static int mem_release_lease(void *impl, const char *run_id, const char *owner)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_run *r = leased_run(m, run_id, owner, &rc);
	if (r) {
		opt_free(r->d.lease_owner);
		r->d.lease_owner = mem_empty;
		r->d.lease_expires_at = 0;
	}
	unlock(m);
	return rc;
}

/* ---- outbox --------------------------------------------------------------- */

static int mem_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	if (limit == 0)
		limit = 100;
	lock(m);
	size_t n = 0;
	for (mem_event *e = m->ev_head; e && n < limit; e = e->next)
		n++;
	mem_event *e = m->ev_head;
	rc = copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_event, dura_event_clear, &e);
	unlock(m);
	return rc;
}

static int mem_outbox_ack(void *impl, const char *event_id)
{
	mem_store *m = impl;
	int rc = 0;
	lock(m);
	mem_event *e = NULL;
	HASH_FIND_STR(m->events, event_id, e);
	if (e) {
		HASH_DEL(m->events, e);
		event_unlink(m, e);
		free_event(e);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "outbox event %s does not exist (already acknowledged?)",
		                           event_id);
	}
	unlock(m);
	return rc;
}

/* ---- notify --------------------------------------------------------------- */

/* A negative timeout waits without a deadline. */
/*
 * In a forked child the data is a copy, the child's own from now on: what
 * either process writes, the other does not see. Waiters of the parent's
 * other threads do not exist here, so the lock and the condition
 * variable start afresh.
 */
static void mem_atfork_child(void *impl)
{
	mem_store *m = impl;
	pthread_mutex_init(&m->lock, NULL);
	dura__cond_init_mono(&m->changed);
	dura__mem_workers_atfork_child(m->workers);
	dura__mem_schedules_atfork_child(m->schedules);
}

static int mem_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms)
{
	mem_store *m = impl;
	struct timespec deadline = dura__mono_after_ms(timeout_ms > 0 ? timeout_ms : 0);
	int rc;
	lock(m);
	for (;;) {
		mem_run *r = find_run(m, run_id);
		if (!r) {
			rc = run_missing(run_id);
			break;
		}
		if (r->d.version != version) {
			rc = 0;
			break;
		}
		int w = 0;
		if (timeout_ms < 0)
			w = pthread_cond_wait(&m->changed, &m->lock);
		else if (timeout_ms > 0)
			w = pthread_cond_timedwait(&m->changed, &m->lock, &deadline);
		if (timeout_ms == 0 || w == ETIMEDOUT) {
			/* one last look: a change may have come with the timeout */
			r = find_run(m, run_id);
			rc = r && r->d.version != version
			             ? 0
			             : dura_error_set_native(DURA_ETIMEOUT, STORE, 0, NULL,
			                                     "run %s is still at version %lld after %lld ms", run_id,
			                                     (long long)version, (long long)timeout_ms);
			break;
		}
	}
	unlock(m);
	return rc;
}

/* Any change of any run wakes the waiters (spuriously for most): the
 * worker claims to find out. */
static int mem_wait_ready(void *impl, int64_t timeout_ms)
{
	mem_store *m = impl;
	struct timespec deadline = dura__mono_after_ms(timeout_ms > 0 ? timeout_ms : 0);
	int w = 0;
	lock(m);
	if (timeout_ms > 0)
		w = pthread_cond_timedwait(&m->changed, &m->lock, &deadline);
	unlock(m);
	return timeout_ms <= 0 || w == ETIMEDOUT ? DURA_ETIMEOUT : 0;
}

/* ---- the worker registry (memory_workers.c) ------------------------------- */

static int mem_worker_put(void *impl, const dura_worker_info *w)
{
	return dura__mem_workers_put(((mem_store *)impl)->workers, w);
}

static int mem_worker_delete(void *impl, const char *worker_id)
{
	return dura__mem_workers_delete(((mem_store *)impl)->workers, worker_id);
}

static int mem_worker_list(void *impl, dura_worker_list *out)
{
	return dura__mem_workers_list(((mem_store *)impl)->workers, out);
}

static int mem_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	return dura__mem_workers_prune(((mem_store *)impl)->workers, dead_for_ms, count);
}

/* ---- durable waiting (contract version 5; memory_waiting.c) --------------- */

static int mem_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload)
{
	mem_store *m = impl;
	int rc;
	lock(m);
	mem_run *r = find_run(m, run_id);
	if (!r) {
		rc = run_missing(run_id);
	} else if (!active(r->d.run_state)) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is %s: it takes no more signals", run_id,
		                           dura_run_state_name(r->d.run_state));
	} else {
		int64_t now = dura_now_ms();
		rc = dura__mem_inbox_add(m->inbox, signal_id, run_id, name, payload, now);
		char w[DURA_MAX_NAME_LEN + 8];
		snprintf(w, sizeof(w), "signal:%s", name);
		if (rc == 0 && wake_locked(m, run_id, w, now, NULL))
			pthread_cond_broadcast(&m->changed);
	}
	unlock(m);
	return rc;
}

static int mem_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out)
{
	mem_store *m = impl;
	lock(m);
	int rc = dura__mem_inbox_next(m->inbox, run_id, name, out);
	unlock(m);
	return rc;
}

static int mem_signal_list(void *impl, const char *run_id, dura_signal_list *out)
{
	mem_store *m = impl;
	lock(m);
	int rc = dura__mem_inbox_list(m->inbox, run_id, out);
	unlock(m);
	return rc;
}

static int mem_wake(void *impl, const char *run_id, const char *wait)
{
	mem_store *m = impl;
	lock(m);
	int woke = wake_locked(m, run_id, wait, dura_now_ms(), NULL);
	if (woke)
		pthread_cond_broadcast(&m->changed);
	unlock(m);
	return woke ? 0
	            : dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s is not running and waiting for %s", run_id,
	                                    wait);
}

static int mem_schedule_put(void *impl, const dura_schedule *sch)
{
	return dura__mem_schedules_put(((mem_store *)impl)->schedules, sch);
}

static int mem_schedule_get(void *impl, const char *name, dura_schedule **out)
{
	return dura__mem_schedules_get(((mem_store *)impl)->schedules, name, out);
}

static int mem_schedule_delete(void *impl, const char *name)
{
	return dura__mem_schedules_delete(((mem_store *)impl)->schedules, name);
}

static int mem_schedule_list(void *impl, dura_schedules *out)
{
	return dura__mem_schedules_list(((mem_store *)impl)->schedules, out);
}

static int mem_schedule_advance(void *impl, const char *name, int64_t from, int64_t to)
{
	return dura__mem_schedules_advance(((mem_store *)impl)->schedules, name, from, to);
}

/* ---- the table ------------------------------------------------------------ */

const dura_store_ops dura__memory_ops = {
	.version = 5,
	.scheme = "memory",
	.caps = DURA_CAP_NOTIFY,
	.open = mem_open,
	.close = mem_close,
	.ping = mem_ping,
	.info = mem_info,
	.stats = mem_stats,
	.migrate = mem_migrate,
	.create_run = mem_create_run,
	.get_run = mem_get_run,
	.latest_run = mem_latest_run,
	.list_runs = mem_list_runs,
	.set_run_state = mem_set_run_state,
	.delete_run_data = mem_delete_run_data,
	.commit = mem_commit,
	.commit_batch = mem_commit_batch,
	.history = mem_history,
	.get_step = mem_get_step,
	.load_latest = mem_load_latest,
	.checkpoint_save = mem_checkpoint_save,
	.checkpoint_load = mem_checkpoint_load,
	.checkpoint_list = mem_checkpoint_list,
	.checkpoint_delete = mem_checkpoint_delete,
	.cache_get = mem_cache_get,
	.cache_put = mem_cache_put,
	.cache_claim = mem_cache_claim,
	.cache_release = mem_cache_release,
	.cache_delete = mem_cache_delete,
	.cache_purge_expired = mem_cache_purge_expired,
	.cache_list = mem_cache_list,
	.cache_stats = mem_cache_stats,
	.claim_runs = mem_claim_runs,
	.extend_lease = mem_extend_lease,
	.release_lease = mem_release_lease,
	.outbox_poll = mem_outbox_poll,
	.outbox_ack = mem_outbox_ack,
	.exec_sql = NULL,
	.wait_change = mem_wait_change,
	.atfork_child = mem_atfork_child,
	.wait_ready = mem_wait_ready,
	.extend_leases = mem_extend_leases,
	.claim = mem_claim_flow,
	/* version 4: the worker registry */
	.worker_put = mem_worker_put,
	.worker_delete = mem_worker_delete,
	.worker_list = mem_worker_list,
	.worker_prune = mem_worker_prune,
	/* version 5: durable waiting */
	.signal_send = mem_signal_send,
	.signal_next = mem_signal_next,
	.signal_list = mem_signal_list,
	.wake = mem_wake,
	.schedule_put = mem_schedule_put,
	.schedule_get = mem_schedule_get,
	.schedule_delete = mem_schedule_delete,
	.schedule_list = mem_schedule_list,
	.schedule_advance = mem_schedule_advance,
};
