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
};

dura__node *dura__workflow_node(const dura_workflow *wf, const char *name);
dura_workflow *dura__engine_workflow(dura_engine *eng, const char *name);

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

/* worker.c: wake the workers of this process serving the store (a run
 * was started or resumed) */
void dura__workers_kick(dura_store *store);

#endif
