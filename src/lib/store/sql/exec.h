/*
 * exec.h - the statement interface a server SQL driver gives the shared
 * operations (server.h), and the typed parameters they bind.
 *
 * An operation written once (create a run, read a step, claim a cache
 * key, ...) binds its parameters as typed values (text, integer, time,
 * bytes, NULL) in the order its catalog statement names them, runs the
 * statement by its catalog id, and reads the result through sql/rows.h's
 * column accessors. The driver turns the values into its own binding
 * (MYSQL_BIND, libpq's text and binary parameters), prepares each
 * statement once per connection, and says what its server's failures
 * mean. No driver header here.
 */
#ifndef DURA_SQL_EXEC_H
#define DURA_SQL_EXEC_H

#include "pool.h"
#include "rows.h"
#include "run.h"

#include <stddef.h>
#include <stdint.h>

enum { DURA_SQL_NULL, DURA_SQL_TEXT, DURA_SQL_INT, DURA_SQL_TIME, DURA_SQL_BLOB };

typedef struct dura_sql_value {
	int type;
	const char *s; /* TEXT (NUL-terminated) and BLOB (n bytes); the caller's memory */
	size_t n;
	int64_t i; /* INT, and TIME in ms since the epoch (UTC) */
} dura_sql_value;

#define DURA_SQL_MAX_PARAMS 32

typedef struct dura_sql_params {
	int n;
	dura_sql_value v[DURA_SQL_MAX_PARAMS];
} dura_sql_params;

/* Append a value. Text NULL is SQL NULL. More than DURA_SQL_MAX_PARAMS is
 * a programming error the driver's run() reports (n counts past the end). */
void dura_sql_p_null(dura_sql_params *p);
void dura_sql_p_str(dura_sql_params *p, const char *v);
void dura_sql_p_int(dura_sql_params *p, int64_t v);
void dura_sql_p_time(dura_sql_params *p, int64_t ms);
void dura_sql_p_blob(dura_sql_params *p, const void *v, size_t n);

typedef struct dura_sql_exec {
	/* Run catalog statement id with p on c: its result in *res (read with
	 * next(), then done()), and for a write the rows it changed in
	 * *affected (may be NULL). 0, or the failure set and c marked (broken,
	 * retryable) for sql/run.h's classifier. */
	int (*run)(void *store, dura_sql_conn *c, int id, const dura_sql_params *p, void **res, uint64_t *affected);
	/* the next row of res: 1, 0 at the end, or the failure */
	int (*next)(void *store, dura_sql_conn *c, void *res);
	/* free what res holds */
	void (*done)(void *res);
	/* the column accessors over res */
	const dura_sql_row_ops *row;
	/* 1 when c's last failure broke a unique key; *primary (may be NULL)
	 * 1 when that key is the table's primary key */
	int (*duplicate)(const dura_sql_conn *c, int *primary);
	/* refuse a value the server would refuse, before writing anything
	 * (NULL: every size goes) */
	int (*check_size)(void *store, size_t n, const char *what);
	int64_t max_time_ms;    /* the latest time the server's time column holds */
	int dup_native;         /* the native code a duplicate carries in dura's own errors */
	const char *dup_state;  /* and its SQLSTATE */
} dura_sql_exec;

/* The part of a server SQL store's handle the shared operations use; the
 * driver's handle starts with it. */
typedef struct dura_sql_store {
	const char *name;          /* the store's name in errors */
	const dura_sql_exec *x;    /* statements */
	const dura_sql_driver *drv; /* transactions and the failure classifier (run.h) */
	dura_sql_pool pool;
} dura_sql_store;

/* ---- running statements --------------------------------------------------------- */

int dura_sql_st_run(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, void **res);
int dura_sql_st_next(dura_sql_store *s, dura_sql_conn *c, void *res);
void dura_sql_st_done(dura_sql_store *s, void *res);
/* a write: the rows it changed in *affected (may be NULL) */
int dura_sql_st_write(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, uint64_t *affected);
/* does the statement return a row? 1, 0, or the failure */
int dura_sql_st_exists(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p);
/* the first row as an item of kind (DURA_ENOTFOUND without a message), or every row */
int dura_sql_st_fetch(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, dura_sql_kind kind,
                      void **out);
int dura_sql_st_collect(dura_sql_store *s, dura_sql_conn *c, int id, const dura_sql_params *p, dura_sql_kind kind,
                        void **items, size_t *count);
/* column i of the current row of res */
int64_t dura_sql_c_int(dura_sql_store *s, void *res, int i);
int64_t dura_sql_c_time(dura_sql_store *s, void *res, int i);
const char *dura_sql_c_str(dura_sql_store *s, void *res, int i); /* NULL for SQL NULL */

/* now + ms, saturating at the server's latest time */
int64_t dura_sql_add_ms(const dura_sql_store *s, int64_t now, int64_t ms);

/* An operation's body, run by dura_sql_run_op() on a pooled connection
 * with DURA_SQL_TX / DURA_SQL_IDEMPOTENT (run.h). */
typedef int (*dura_sql_op)(dura_sql_store *s, dura_sql_conn *c, void *arg, int again);
int dura_sql_run_op(dura_sql_store *s, dura_sql_op fn, void *arg, unsigned flags);

#endif
