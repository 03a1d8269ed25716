/*
 * workers.h - the worker registry (store.h's worker_* operations) of the
 * SQL stores: the <prefix>dura_workers table's row decoder, shared by
 * every SQL store, and the operations of the server stores (workers.c),
 * with the signatures of dura_store_ops. No driver header here.
 */
#ifndef DURA_SQL_WORKERS_H
#define DURA_SQL_WORKERS_H

#include "exec.h"
#include "rows.h"

#include "dura/store.h"

/* The current row (WORKER_COLS) into *out: 0, or DURA_ENOMEM with *out empty. */
int dura_sql_row_worker(const dura_sql_row *row, dura_worker_info *out);

int dura_sql_worker_put(void *impl, const dura_worker_info *w);
int dura_sql_worker_delete(void *impl, const char *worker_id);
int dura_sql_worker_list(void *impl, dura_worker_list *out);
int dura_sql_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count);

#endif
