/*
 * import.h - import (store contract version 7) of the server SQL stores
 * (import.c), with the signatures of dura_store_ops: a driver whose
 * handle starts with a dura_sql_store (exec.h) puts them in its vtable as
 * they are. No driver header here.
 */
#ifndef DURA_SQL_IMPORT_H
#define DURA_SQL_IMPORT_H

#include "exec.h"

#include "dura/store.h"

int dura_sql_import_run(void *impl, const dura_import_run *r);
int dura_sql_import_event(void *impl, const dura_event *ev);
int dura_sql_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out);

#endif
