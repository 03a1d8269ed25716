/*
 * rows.h - row decoding shared by the SQL stores.
 *
 * A driver hands a result row to the decoders as a dura_sql_row: its own
 * statement or cursor (impl) and a small table of column accessors (ops).
 * The decoders turn a row of sql/catalog.h's column lists into the store
 * contract's types, so that which column is which, what a NULL becomes
 * ("" for a record's, step's, checkpoint's and event's text, NULL for a
 * cache entry's error and metadata) and how a failure is cleaned up are
 * written once. Columns are numbered from 0. No driver header here.
 */
#ifndef DURA_SQL_ROWS_H
#define DURA_SQL_ROWS_H

#include "dura/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dura_sql_row_ops {
	const char *store; /* the store name out-of-memory errors carry */
	/* 1 when column i is SQL NULL */
	int (*is_null)(void *impl, int i);
	/* Column i's text in *text (NUL-terminated, valid until the row
	 * moves on) and its length in bytes in *len; *text NULL for a NULL
	 * (or a column the driver does not read as text). -1 when the driver
	 * cannot hand out a value it has (out of memory). */
	int (*text)(void *impl, int i, const char **text, size_t *len);
	/* column i as an integer; NULL is 0 */
	int64_t (*int64)(void *impl, int i);
	/* column i's bytes and their number; asked only for a non-NULL column;
	 * NULL only when the driver cannot hand them out (out of memory) */
	const void *(*blob)(void *impl, int i, size_t *len);
	/* a time column in ms since the epoch (UTC); NULL, or an unreadable value, is 0 */
	int64_t (*time_ms)(void *impl, int i);
} dura_sql_row_ops;

typedef struct dura_sql_row {
	const dura_sql_row_ops *ops;
	void *impl;
} dura_sql_row;

/*
 * Each decoder fills *out from the current row (its columns in catalog.h's
 * order) and returns 0; on failure *out holds nothing to free and the
 * result is DURA_ENOMEM with the error set in the store's name.
 */
int dura_sql_row_record(const dura_sql_row *row, dura_record *out);       /* REC_COLS */
int dura_sql_row_step(const dura_sql_row *row, dura_step *out);           /* STEP_COLS */
int dura_sql_row_checkpoint(const dura_sql_row *row, dura_checkpoint *out); /* CP_COLS */
int dura_sql_row_event(const dura_sql_row *row, dura_event *out);         /* EVENT_COLS */
/* key, value (or, with with_value 0, the value's length), error,
 * created_at, expires_at, metadata */
int dura_sql_row_cache_entry(const dura_sql_row *row, dura_cache_entry *out, int with_value);
/* contract version 5: a signal ("" for NULL text) and a schedule */
int dura_sql_row_signal(const dura_sql_row *row, dura_signal *out);     /* SIGNAL_COLS */
int dura_sql_row_schedule(const dura_sql_row *row, dura_schedule *out); /* SCHEDULE_COLS */
/* contract version 6: a workflow version engines registered, and a count of runs */
int dura_sql_row_workflow(const dura_sql_row *row, dura_workflow_def *out);   /* WORKFLOW_COLS */
int dura_sql_row_run_count(const dura_sql_row *row, dura_run_count *out);     /* RUN_COUNT_COLS */

/*
 * Many rows and one row. A driver's next(cursor) moves its statement to
 * the next row: 1 when there is one (row then reads it), 0 at the end, or
 * a DURA_E* code with the thread's error set. Neither helper resets or
 * frees the driver's statement; the driver does that afterwards.
 */
typedef int (*dura_sql_next)(void *cursor);

typedef enum dura_sql_kind {
	DURA_SQL_RECORD,       /* dura_record, REC_COLS */
	DURA_SQL_STEP,         /* dura_step, STEP_COLS */
	DURA_SQL_CHECKPOINT,   /* dura_checkpoint, CP_COLS */
	DURA_SQL_CACHE_LISTED, /* dura_cache_entry with the value's length only */
	DURA_SQL_CACHE_VALUE,  /* dura_cache_entry with its value */
	DURA_SQL_EVENT,        /* dura_event, EVENT_COLS */
	DURA_SQL_SIGNAL,       /* dura_signal, SIGNAL_COLS */
	DURA_SQL_SCHEDULE,     /* dura_schedule, SCHEDULE_COLS */
	DURA_SQL_WORKFLOW,     /* dura_workflow_def, WORKFLOW_COLS */
	DURA_SQL_RUN_COUNT     /* dura_run_count, RUN_COUNT_COLS */
} dura_sql_kind;

/* Append every remaining row, decoded as kind, to the array *items of
 * *count items (empty on entry; grown with dura_store_grow). On failure
 * the items so far are cleared and freed and the list left empty, as its
 * list_free would leave it. */
int dura_sql_collect(const dura_sql_row *row, dura_sql_next next, void *cursor, dura_sql_kind kind, void **items,
                     size_t *count);

/* The next row as one new item of kind in *out (dura_free it with its
 * type's _free): 0, or DURA_ENOTFOUND with no error set when there is no
 * row (the caller words it), or the failure. With out NULL, only whether
 * there is a row. */
int dura_sql_fetch(const dura_sql_row *row, dura_sql_next next, void *cursor, dura_sql_kind kind, void **out);

/* The record a store's create_run just wrote (version 1, no error, lease
 * or metadata beyond the request's, wait "", parent_id and
 * workflow_version the request's or ""), built from what it wrote instead of read back: *out on 0,
 * DURA_ENOMEM in the store's name otherwise. */
int dura_sql_created_record(dura_record **out, const char *store, const char *run_id, const dura_run_create *req,
                            const char *fid, const char *state, const char *status, int run_state, int64_t now,
                            int64_t next);

#endif
