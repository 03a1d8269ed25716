/*
 * memory_waiting.h - the memory store's signal inbox and schedules
 * (memory_waiting.c), each owned by one memory store handle.
 *
 * The inbox has no lock of its own: the memory store calls it under its
 * one lock, because a signal's send and consumption are atomic with
 * changes of runs (a wake, a commit). The schedules have their own lock:
 * nothing else changes with them.
 */
#ifndef DURA_MEMORY_WAITING_H
#define DURA_MEMORY_WAITING_H

#include "dura/store.h"

typedef struct dura__mem_inbox dura__mem_inbox;
typedef struct dura__mem_schedules dura__mem_schedules;

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

#endif
