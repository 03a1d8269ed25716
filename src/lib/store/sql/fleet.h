/*
 * fleet.h - workflow versions and retention (store contract version 6)
 * and the gauges (version 8) of the server SQL stores (fleet.c), with
 * the signatures of dura_store_ops: a driver whose handle starts with a
 * dura_sql_store (exec.h) puts them in its vtable as they are. No driver
 * header here.
 */
#ifndef DURA_SQL_FLEET_H
#define DURA_SQL_FLEET_H

#include "exec.h"

#include "dura/store.h"

int dura_sql_workflow_put(void *impl, const char *name, const char *version, const char *definition);
int dura_sql_workflow_list(void *impl, const char *name, dura_workflow_def_list *out);
int dura_sql_run_counts(void *impl, const char *workflow, dura_run_count_list *out);
int dura_sql_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                             dura_record **out);
int dura_sql_prune_runs(void *impl, const dura_prune *req, int64_t *count);
int dura_sql_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count);
/* contract version 8 */
int dura_sql_gauges(void *impl, dura_store_gauges *out);

#endif
