/*
 * engine.h - the engine's internal types, shared by workflow.c, engine.c
 * and run.c. The engine sees stores only through the public store API.
 */
#ifndef DURA_ENGINE_H
#define DURA_ENGINE_H

#include "internal.h"
#include "util.h"

#include <pthread.h>

typedef struct dura__node {
	char *name;
	dura_node_fn fn;
	void *payload;
	dura_node_options opts;
	char *edge; /* static next node, or NULL */
	UT_hash_handle hh;
} dura__node;

struct dura_workflow {
	char *name;
	char *start;
	dura__node *nodes;
	dura_reducer_fn reducer;
	void *reducer_payload;
	int max_running, max_per_key; /* flow limits, 0: none (dura_workflow_set_concurrency) */
	char *version;                /* given (dura_workflow_set_version), or NULL */
	char fingerprint[24];         /* the version when none is given (version.c) */
	int registered;               /* frozen: its version is what register wrote */
	dura_retention retention;     /* dura_workflow_set_retention; all 0: forever */
	struct dura_workflow *older;  /* the versions of this name registered before it */
	UT_hash_handle hh;
};

struct dura_engine {
	dura_store *store;
	dura_engine_options opts;
	pthread_mutex_t lock; /* guards the registry */
	dura_workflow *workflows;
};

struct dura_ctx {
	dura_engine *eng;
	const dura_record *rec;
	const dura__node *node;
	int attempt;
	int64_t deadline;
	int64_t run_deadline;
	int goto_set;
	char *goto_node;
	json_t *delta;
	char error[512];
	/* durable waiting (wait.c) */
	int sleep_set;
	int64_t sleep_until; /* dura_ctx_sleep: the next node's due time */
	char *wait;          /* the wait this attempt ends with (dura_malloc), or NULL */
	int64_t wait_until;  /* its deadline (DURA__NEVER_MS: none) */
	char *signal_id;     /* the signal this attempt consumes, or NULL */
	int children;        /* dura_ctx_start_child calls so far */
};

/* The latest time the stores keep, 9999-12-31T23:59:59Z: the deadline of
 * a wait without one. */
#define DURA__NEVER_MS INT64_C(253402300799000)

/* wait.c: the end of an attempt that waits (run.c calls them) */
/* Drop what a ctx's waiting calls allocated. */
void dura__ctx_wait_clear(dura_ctx *ctx);
/* After the waiting commit of ctx's wait: if what it waits for came
 * meanwhile (a signal sent, a child ended, before the wait was
 * committed), wake the run now. 1 when woken, 0 when not, < 0 on error. */
int dura__wait_recheck(dura_engine *eng, const char *run_id, const dura_ctx *ctx);
/* Cancel the unfinished children of run_id, and theirs. */
int dura__cancel_children(dura_engine *eng, const char *run_id, int depth);

/* schedule.c: a worker's scheduler pass over the schedules of the
 * workflows it serves (n names): fire every due tick, once per tick
 * across all workers. Returns the wall time of the earliest next tick
 * among them (0: none); *fired counts runs created. */
int64_t dura__schedules_fire(dura_engine *eng, const char *const *workflows, size_t n, uint64_t *fired);


dura__node *dura__workflow_node(const dura_workflow *wf, const char *name);
/* The version of name registered last (new runs start on it), or NULL. */
dura_workflow *dura__engine_workflow(dura_engine *eng, const char *name);

/* version.c: workflow versions */
/* The registered workflow name at version (NULL or "": the one registered
 * last), or NULL. */
dura_workflow *dura__engine_workflow_at(dura_engine *eng, const char *name, const char *version);
/* The workflow's definition as the store keeps it (JSON, to dura_free), or NULL when out of memory. */
char *dura__workflow_definition(const dura_workflow *wf);
/* Register wf's version with the store and into the engine's registry
 * (the engine's lock is not held): what dura_engine_register does once wf
 * is valid. */
int dura__engine_add_version(dura_engine *eng, dura_workflow *wf);
/* Every registered version of every workflow served (names[], n):
 * *out an array of *nout (workflow, version) pairs to dura_free (the
 * strings are the engine's), for a claim. */
int dura__engine_versions(dura_engine *eng, const char *const *names, size_t n, dura_claim_version **out,
                          size_t *nout);

/* retention.c: a worker's retention pass over the workflows it serves (n
 * names), one batch per step: the runs of each policy, the outbox
 * (outbox_keep_ms > 0), the expired cache entries. cur (zeroed to start)
 * is where the pass is; cur->done is set once it is over. *pruned counts
 * what went. 0 or the store's error (the pass goes on with the next item
 * all the same). */
typedef struct dura__retention_cursor {
	size_t at; /* the item: workflow * 3 + end state, then the outbox, then the cache */
	int done;
} dura__retention_cursor;
int dura__retention_step(dura_engine *eng, const char *const *names, size_t n, int64_t outbox_keep_ms,
                         dura__retention_cursor *cur, uint64_t *pruned);
/* The least pause between two steps of a pass (twice the step when that
 * is longer, up to 20 times this): the store is the commits' at least two thirds of the time,
 * and a writer asleep in SQLite's busy handler (whose longest sleep is
 * 100 ms) wakes before the next batch takes the lock. */
#define DURA__RETENTION_PAUSE_MS 100

/* run.c: execute a run under a worker's lease. stop(payload, busy) is
 * asked between steps (busy 0) and while a busy store is waited out
 * (busy 1); non-zero stops: the worker is stopping, or lost the lease. */
typedef struct dura__lease {
	const char *owner;
	int (*stop)(void *payload, int busy);
	/* the step commits, or NULL for the store's commit (a worker's group
	 * commit hands them to one committer) */
	int (*commit)(void *payload, const dura_commit *c, dura_commit_result *res);
	void *payload;
} dura__lease;
/*
 * Run the claimed run *recp holds (from claim_runs; the lease is the
 * caller's) until it ends, pauses, is not due, or stop says so; *recp
 * follows the commits (the caller frees it). 0, DURA_ECONFLICT when
 * another executor moved the run on (the lease was lost: the run is
 * abandoned, the step not retried), or an error of the store.
 */
int dura__run_execute_leased(dura_engine *eng, dura_record **recp, const dura__lease *lease);


#endif
