/*
 * memory.h - the memory store ("memory:"): what its files share.
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
 *
 * The store is ten files, one concern each:
 *   data.c     the small helpers (the lock, text, finding a run), the
 *              copies for the caller and the lists of them, freeing, and
 *              the outbox's list in id order
 *   runs.c     the slots, creating, reading and listing runs, run-state
 *              changes, the erasing of a run's data, importing a run
 *   commit.c   step commits, one or a batch (undone as a whole on OOM)
 *   steps.c    step reads, checkpoints and the outbox (and importing to it)
 *   cache.c    the step cache and its single-flight claims
 *   leases.c   claims (flow control), lease extensions and releases
 *   waiting.c  durable waiting: the signal inbox, the schedules, wakes
 *              and the operations on them
 *   workers.c  the worker registry and its operations
 *   fleet.c    workflow versions and retention: the definitions engines
 *              register, counts per version, moving a run, pruning; the
 *              gauges
 *   store.c    open and close, ping, info, stats, migrate, waiting for
 *              changes, the fork handler and the vtable (dura__memory_ops)
 * This header holds the structures and the functions the files call
 * across; what one file alone uses stays static in it. Names shared
 * between files are dmem_*; the inbox's, the schedules' and the worker
 * registry's are dura__mem_* (their structures are private to waiting.c
 * and workers.c).
 */
#ifndef DURA_STORE_MEMORY_H
#define DURA_STORE_MEMORY_H

#include "dura/store.h"
#include "../../internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* uthash on dura's allocator, reporting OOM (every function that adds to
 * a hash declares `int hash_oom = 0;`), and the monotonic-clock helpers */
#include "../../util.h"
#include "../flow.h"

#define STORE "memory"

/* "" for absent text fields (data.c). */
extern char dmem_empty[1];

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
	char *status;      /* dmem_empty or owned */
	char *error;       /* dmem_empty or owned */
	char *lease_owner; /* dmem_empty or owned */
	char *wait;        /* dmem_empty or owned */
	char *wfver;       /* the workflow version: dmem_empty or owned, shared by
	                      a commit's new data until a commit pins a version */
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
	char *wfver; /* the version that committed it: dmem_empty or owned */
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
	char *foreign_id; /* dmem_empty or owned */
	char *meta;       /* dmem_empty or owned */
	char *concurrency_key; /* dmem_empty or owned */
	char *parent_id;       /* dmem_empty or owned */
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
	char *run_id;                  /* in this block: the run may be pruned first */
	char *workflow_name;           /* in this block */
	char *type;                    /* mem_type_step, or in this block */
	char *data;                    /* in this block */
	int64_t created_at;
	char id[];
} mem_event;

/* The signal inbox and the schedules (waiting.c) and the worker registry
 * (workers.c), each owned by one memory store handle. */
typedef struct dura__mem_inbox dura__mem_inbox;
typedef struct dura__mem_schedules dura__mem_schedules;
typedef struct dura__mem_workers dura__mem_workers;
typedef struct dura__mem_versions dura__mem_versions; /* fleet.c */

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
	dura__mem_workers *workers; /* the worker registry (workers.c) */
	dura__mem_inbox *inbox;     /* signals, under lock (waiting.c) */
	dura__mem_schedules *schedules;
	dura__mem_versions *versions; /* the workflow versions engines registered (fleet.c) */
} mem_store;

/* What a wake changed, to undo it with a batch. */
typedef struct wake_undo {
	mem_run *run; /* NULL: nothing woken */
	int64_t version, next_run_at, updated_at;
} wake_undo;

/* A run's steps from index start: dmem_item_step()'s src (data.c). */
typedef struct step_range {
	const mem_run *r;
	size_t start;
} step_range;

/* ---- data.c --------------------------------------------------------------- */

void dmem_lock(mem_store *m);
void dmem_unlock(mem_store *m);
int dmem_oom(void);
mem_text *dmem_text_new(const char *s);
void dmem_text_unref(mem_text *t);
char *dmem_opt_dup(const char *s);
void dmem_opt_free(char *s);
int dmem_active(int run_state);
/* A live lease (run_state running, an owner, not expired), as flow limits
 * count them; a due run (running, next_run_at <= now, no live lease), as
 * a claim takes them: the gauges and list_runs's due filter. */
int dmem_leased(const mem_run *r, int64_t now);
int dmem_due(const mem_run *r, int64_t now);
mem_run *dmem_find_run(mem_store *m, const char *run_id);
int dmem_run_missing(const char *run_id);
int dmem_copy_record(dura_record *o, const mem_run *r, const run_data *d);
int dmem_record_out(dura_record **out, const mem_run *r);
int dmem_step_out(dura_step **out, const mem_run *r, size_t i);
int dmem_copy_checkpoint(dura_checkpoint *o, const mem_checkpoint *c);
int dmem_copy_cache(dura_cache_entry *o, const mem_cache *e, int with_value);
int dmem_item_record(void *item, void *src, size_t i);
int dmem_item_step(void *item, void *src, size_t i);
int dmem_item_checkpoint(void *item, void *src, size_t i);
int dmem_item_cache(void *item, void *src, size_t i);
int dmem_item_event(void *item, void *src, size_t i);
int dmem_copy_list(void **items, size_t *count, size_t n, size_t item_size,
                   int (*copy)(void *item, void *src, size_t i), void (*clear)(void *item), void *src);
void dmem_free_steps(mem_run *r);
void dmem_free_run(mem_run *r);
void dmem_free_checkpoint(mem_checkpoint *c);
void dmem_free_cache(mem_cache *e);
void dmem_free_claim(mem_claim *c);
void dmem_free_event(mem_event *e);
/* A new event in one allocation (data NULL: the default event data of
 * sum); NULL with *rc set when out of memory. */
typedef struct dmem_event_summary {
	const char *workflow_name, *run_id, *node_id, *status;
	int64_t step;
	int run_state;
} dmem_event_summary;
mem_event *dmem_event_new(const char *id, const char *type, const char *data, const dmem_event_summary *sum, int *rc);
void dmem_event_link(mem_store *m, mem_event *e);
void dmem_event_unlink(mem_store *m, mem_event *e);

/* ---- runs.c --------------------------------------------------------------- */

int dmem_reactivation_refused(const mem_run *r, int to);
void dmem_slot_track(mem_run *r, int was, int now_state);
int dmem_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out);
int dmem_get_run(void *impl, const char *run_id, dura_record **out);
int dmem_latest_run(void *impl, const char *wf, const char *fid, dura_record **out);
int dmem_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out);
int dmem_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version);
int dmem_delete_run_data(void *impl, const char *run_id);
void dmem_erase_run_data(mem_store *m, mem_run *r, mem_text *empty_state);
void dmem_remove_run(mem_store *m, mem_run *r);
int dmem_import_run(void *impl, const dura_import_run *ir);

/* ---- commit.c ------------------------------------------------------------- */

int dmem_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res);
int dmem_commit_batch(void *impl, const dura_commit *c, const char *const *event_ids, size_t n,
                      dura_commit_result *res);

/* ---- steps.c -------------------------------------------------------------- */

int dmem_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out);
int dmem_get_step(void *impl, const char *run_id, int64_t step, dura_step **out);
int dmem_load_latest(void *impl, const char *run_id, dura_step **out);
int dmem_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state);
int dmem_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out);
int dmem_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out);
int dmem_checkpoint_delete(void *impl, const char *cp_id);
int dmem_outbox_poll(void *impl, size_t limit, dura_event_list *out);
int dmem_outbox_ack(void *impl, const char *event_id);
int dmem_import_event(void *impl, const dura_event *ev);
int dmem_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out);

/* ---- cache.c -------------------------------------------------------------- */

int dmem_cache_get(void *impl, const char *key, dura_cache_entry **out);
int dmem_cache_put(void *impl, const char *key, const void *value, size_t value_len, const char *error,
                   const char *metadata, int64_t ttl_ms);
int dmem_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms);
int dmem_cache_release(void *impl, const char *key, const char *owner);
int dmem_cache_delete(void *impl, const char *key);
int dmem_cache_purge_expired(void *impl, int64_t *count);
int dmem_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out);
int dmem_cache_stats(void *impl, dura_cache_stats *out);

/* ---- leases.c ------------------------------------------------------------- */

int dmem_claim_flow(void *impl, const dura_claim *req, dura_record_list *out);
int dmem_claim_runs(void *impl, const char *owner, const char *const *wfs, size_t nwfs, size_t max,
                    int64_t lease_ms, dura_record_list *out);
int dmem_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms);
int dmem_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                       int *codes);
int dmem_release_lease(void *impl, const char *run_id, const char *owner);

/* ---- waiting.c ------------------------------------------------------------ */

/*
 * The inbox has no lock of its own: the memory store calls it under its
 * one lock, because a signal's send and consumption are atomic with
 * changes of runs (a wake, a commit). The schedules have their own lock:
 * nothing else changes with them.
 */

/* NULL when out of memory (the error set). */
dura__mem_inbox *dura__mem_inbox_new(void);
void dura__mem_inbox_free(dura__mem_inbox *in);
/* Append a signal: 0 or DURA_ENOMEM (nothing added). */
int dura__mem_inbox_add(dura__mem_inbox *in, const char *signal_id, const char *run_id, const char *name,
                        const char *payload, int64_t now);
/* The run's oldest signal named name, or DURA_ENOTFOUND. */
int dura__mem_inbox_next(const dura__mem_inbox *in, const char *run_id, const char *name, dura_signal **out);
int dura__mem_inbox_list(const dura__mem_inbox *in, const char *run_id, dura_signal_list *out);
/* The position of the run's signal signal_id, or -1. */
long dura__mem_inbox_find(const dura__mem_inbox *in, const char *run_id, const char *signal_id);
/* Take the signal at pos out (a commit consumed it) and hand it back for
 * dura__mem_inbox_put_back or dura__mem_inbox_drop; cannot fail. */
void *dura__mem_inbox_take(dura__mem_inbox *in, long pos);
/* Undo a take (the commit was undone): cannot fail, the room is kept. */
void dura__mem_inbox_put_back(dura__mem_inbox *in, void *taken);
void dura__mem_inbox_drop(void *taken);
/* Delete every signal of a run. */
void dura__mem_inbox_erase_run(dura__mem_inbox *in, const char *run_id);

dura__mem_schedules *dura__mem_schedules_new(void);
void dura__mem_schedules_free(dura__mem_schedules *t);
/* In a forked child: the lock starts afresh. */
void dura__mem_schedules_atfork_child(dura__mem_schedules *t);
int dura__mem_schedules_put(dura__mem_schedules *t, const dura_schedule *sch);
int dura__mem_schedules_get(dura__mem_schedules *t, const char *name, dura_schedule **out);
int dura__mem_schedules_delete(dura__mem_schedules *t, const char *name);
int dura__mem_schedules_list(dura__mem_schedules *t, dura_schedules *out);
int dura__mem_schedules_advance(dura__mem_schedules *t, const char *name, int64_t from, int64_t to);

int dmem_wake_locked(mem_store *m, const char *run_id, const char *wait, int64_t now, wake_undo *u);
int dmem_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload);
int dmem_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out);
int dmem_signal_list(void *impl, const char *run_id, dura_signal_list *out);
int dmem_wake(void *impl, const char *run_id, const char *wait);
int dmem_schedule_put(void *impl, const dura_schedule *sch);
int dmem_schedule_get(void *impl, const char *name, dura_schedule **out);
int dmem_schedule_delete(void *impl, const char *name);
int dmem_schedule_list(void *impl, dura_schedules *out);
int dmem_schedule_advance(void *impl, const char *name, int64_t from, int64_t to);

/* ---- workers.c ------------------------------------------------------------ */

/* The registry is a table in memory with its own lock; the operations are
 * store.h's worker_* ones. */

/* NULL when out of memory (the error set). */
dura__mem_workers *dura__mem_workers_new(void);
void dura__mem_workers_free(dura__mem_workers *t);
/* In a forked child: the lock starts afresh (the table is the child's copy). */
void dura__mem_workers_atfork_child(dura__mem_workers *t);
int dura__mem_workers_put(dura__mem_workers *t, const dura_worker_info *w);
int dura__mem_workers_delete(dura__mem_workers *t, const char *worker_id);
int dura__mem_workers_list(dura__mem_workers *t, dura_worker_list *out);
int dura__mem_workers_prune(dura__mem_workers *t, int64_t dead_for_ms, int64_t *count);

int dmem_worker_put(void *impl, const dura_worker_info *w);
int dmem_worker_delete(void *impl, const char *worker_id);
int dmem_worker_list(void *impl, dura_worker_list *out);
int dmem_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count);

/* ---- fleet.c -------------------------------------------------------------- */

void dura__mem_versions_free(dura__mem_versions *head);
int dmem_workflow_put(void *impl, const char *name, const char *version, const char *definition);
int dmem_workflow_list(void *impl, const char *name, dura_workflow_def_list *out);
int dmem_run_counts(void *impl, const char *workflow, dura_run_count_list *out);
int dmem_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *version,
                         dura_record **out);
int dmem_prune_runs(void *impl, const dura_prune *req, int64_t *count);
int dmem_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count);
int dmem_gauges(void *impl, dura_store_gauges *out);

#endif /* DURA_STORE_MEMORY_H */
