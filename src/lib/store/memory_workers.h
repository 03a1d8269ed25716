/*
 * memory_workers.h - the memory store's worker registry: a table in
 * memory with its own lock, owned by one memory store handle
 * (memory_workers.c). The operations are store.h's worker_* ones.
 */
#ifndef DURA_MEMORY_WORKERS_H
#define DURA_MEMORY_WORKERS_H

#include "dura/store.h"

typedef struct dura__mem_workers dura__mem_workers;

/* NULL when out of memory (the error set). */
dura__mem_workers *dura__mem_workers_new(void);
void dura__mem_workers_free(dura__mem_workers *t);
/* In a forked child: the lock starts afresh (the table is the child's copy). */
void dura__mem_workers_atfork_child(dura__mem_workers *t);
int dura__mem_workers_put(dura__mem_workers *t, const dura_worker_info *w);
int dura__mem_workers_delete(dura__mem_workers *t, const char *worker_id);
int dura__mem_workers_list(dura__mem_workers *t, dura_worker_list *out);
int dura__mem_workers_prune(dura__mem_workers *t, int64_t dead_for_ms, int64_t *count);

#endif
