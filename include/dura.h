/*
 * dura.h - durable, resumable workflows for C.
 *
 * This is the only header a program includes. It declares the error model,
 * the store handle and every store operation (runs, steps, checkpoints,
 * step cache, leases, outbox). Store authors also include <dura/store.h>.
 *
 * Conventions
 *   - Every function returns 0 on success or a negative DURA_E* code; the
 *     details of the last failure on the calling thread are in
 *     dura_error_last().
 *   - Output parameters come first. Whatever a function allocates for the
 *     caller has a matching *_free function, named next to it.
 *   - Timestamps are UTC milliseconds since the Unix epoch (int64_t).
 *   - JSON crosses the API as NUL-terminated UTF-8 text; dura validates it.
 *
 * Thread-safety: a dura_store handle is safe to share between threads (it
 * holds a connection pool or a lock). Result objects belong to the caller
 * and are not shared by dura. dura_error_last() is per thread.
 */
#ifndef DURA_H
#define DURA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define DURA_EXTERN(type) __attribute__((visibility("default"))) type
#else
#define DURA_EXTERN(type) type
#endif

#define DURA_VERSION_MAJOR 0
#define DURA_VERSION_MINOR 1
#define DURA_VERSION_PATCH 0
#define DURA_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** Return codes. 0 is success; every error is negative. */
typedef enum {
	DURA_OK = 0,
	DURA_ERROR = -1,     /**< generic failure (see the message) */
	DURA_ENOTFOUND = -2, /**< no such run, step, checkpoint or entry */
	DURA_EEXISTS = -3,   /**< already exists (the existing object is returned) */
	DURA_ECONFLICT = -4, /**< version changed underneath (compare-and-swap lost) */
	DURA_EBUSY = -5,     /**< transient contention; retrying may succeed */
	DURA_EIO = -6,       /**< I/O error or connection lost */
	DURA_ETIMEOUT = -7,  /**< a deadline passed */
	DURA_ENOMEM = -8,    /**< out of memory */
	DURA_EINVAL = -9,    /**< invalid argument or malformed input */
	DURA_ENOTSUP = -10,  /**< not supported (scheme not built, capability missing) */
	DURA_EVERSION = -11, /**< schema or contract version mismatch */
	DURA_ECANCELED = -12, /**< operation or run was cancelled */
	/**
	 * Not an error: a node's durable wait (dura_ctx_wait_signal,
	 * dura_ctx_await_child) has nothing to return yet. The node returns it;
	 * the run is committed as waiting and the node runs again from its
	 * start when what it waits for happens.
	 */
	DURA_WAITING = 1
} dura_error_code;

/** Details of the last error on this thread. */
typedef struct dura_error {
	int code;             /**< a dura_error_code */
	const char *message;  /**< one line, never contains a password */
	const char *store;    /**< store scheme ("sqlite", ...) or "" */
	int native_code;      /**< driver code: SQLite extended code, errno, ... */
	const char *sqlstate; /**< SQLSTATE where the driver gives one, or "" */
} dura_error;

/**
 * The last error raised on the calling thread, or NULL if none since
 * dura_error_clear(). The pointer stays valid until the next dura call on
 * this thread.
 */
DURA_EXTERN(const dura_error *) dura_error_last(void);

/** Forget the last error of the calling thread. */
DURA_EXTERN(void) dura_error_clear(void);

/**
 * Set the calling thread's error from a callback (a cache computation, an
 * outbox handler) and return code, for `return dura_error_set(...)`.
 */
DURA_EXTERN(int) dura_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/** A static, human-readable name for a return code ("conflict", ...). */
DURA_EXTERN(const char *) dura_strerror(int code);

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

/**
 * Replace the allocator dura uses for everything it returns and keeps.
 * Call before any other dura function; NULL functions restore libc's.
 * Tests use it to fail the Nth allocation.
 */
typedef struct dura_allocator {
	void *(*malloc_fn)(size_t size);
	void *(*realloc_fn)(void *ptr, size_t size);
	void (*free_fn)(void *ptr);
} dura_allocator;
DURA_EXTERN(void) dura_set_allocator(const dura_allocator *alloc);

/** Free memory dura returned to the caller (strings, buffers). */
DURA_EXTERN(void) dura_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Identifiers and time                                                      */
/* ------------------------------------------------------------------------ */

#define DURA_UUID_LEN 36 /**< length of a textual UUID, without NUL */

/** Write a new UUIDv7 (time-ordered, monotonic within the process). */
DURA_EXTERN(int) dura_uuid7(char out[DURA_UUID_LEN + 1]);

/** UTC wall-clock time in milliseconds since the Unix epoch. */
DURA_EXTERN(int64_t) dura_now_ms(void);

/** Format ms as "YYYY-MM-DD HH:MM:SS.mmm" (UTC); out needs 24 bytes. */
DURA_EXTERN(void) dura_time_format(char out[24], int64_t ms);

/** Parse "YYYY-MM-DD HH:MM:SS[.mmm]" (UTC, 'T' accepted) into ms. */
DURA_EXTERN(int) dura_time_parse(int64_t *out, const char *text);

/** Limits that every store enforces, so bad input fails the same way. */
#define DURA_MAX_ID_LEN 255   /**< run ids, names, foreign ids, keys */
#define DURA_MAX_NAME_LEN 255 /**< workflow, node, signal and schedule names */
#define DURA_MAX_VERSION_LEN 64 /**< workflow versions: [A-Za-z0-9._-] */

/* ------------------------------------------------------------------------ */
/* Run states                                                                */
/* ------------------------------------------------------------------------ */

/**
 * The life cycle of a run. Numbers are stable: they are stored. Completed
 * is 3, as in the retention SQL of the reference documents.
 */
typedef enum {
	DURA_RUN_UNKNOWN = 0,
	DURA_RUN_INITIATED = 1,
	DURA_RUN_RUNNING = 2,
	DURA_RUN_COMPLETED = 3,
	DURA_RUN_PAUSED = 4,
	DURA_RUN_CANCELLED = 5,
	DURA_RUN_DATA_DELETED = 6,
	DURA_RUN_FAILED = 7
} dura_run_state;

#define DURA_RUN_STATE_MAX 7

/** "initiated", "running", ...; "unknown" for anything else. */
DURA_EXTERN(const char *) dura_run_state_name(int state);

/** Parse a run state name (case-insensitive) or its number. */
DURA_EXTERN(int) dura_run_state_parse(int *out, const char *name);

/** 1 if a run in this state can still make progress (initiated, running, paused). */
DURA_EXTERN(int) dura_run_state_active(int state);

/** 1 if set_run_state may move a run from `from` to `to`. */
DURA_EXTERN(int) dura_run_state_transition_ok(int from, int to);

/* ------------------------------------------------------------------------ */
/* Store handle                                                              */
/* ------------------------------------------------------------------------ */

typedef struct dura_store dura_store;

/** Capability bits of a store. */
#define DURA_CAP_SKIP_LOCKED (1u << 0)   /**< claims skip locked rows */
#define DURA_CAP_NOTIFY (1u << 1)        /**< can wait for a change of a run */
#define DURA_CAP_RETURNING (1u << 2)     /**< SQL RETURNING */
#define DURA_CAP_JSON (1u << 3)          /**< native JSON column type */
#define DURA_CAP_MULTI_PROCESS (1u << 4) /**< several processes may share it */
#define DURA_CAP_DURABLE (1u << 5)       /**< survives a process exit */
#define DURA_CAP_SQL (1u << 6)           /**< dura_store_exec_sql works */

/** Write the capability names, comma-separated, into buf. */
DURA_EXTERN(void) dura_caps_format(char *buf, size_t size, uint32_t caps);

#define DURA_STORE_OPTIONS_VERSION 1
typedef struct dura_store_options {
	unsigned version;
	/** Create or upgrade the schema on open (default 1). The CLI's
	 *  `dura init` is the explicit way; 0 makes open fail with a message
	 *  naming `dura init` if tables are missing. */
	int auto_migrate;
} dura_store_options;
#define DURA_STORE_OPTIONS_INIT {DURA_STORE_OPTIONS_VERSION, 1}

/**
 * Open a store by URL:
 *   memory:                       one process, lost at exit
 *   sqlite:PATH[?synchronous=normal&busy_timeout=MS]
 *   postgres://user:pass@host:5432/db?sslmode=...
 *   mysql://user:pass@host:3306/db (also mariadb://, and the DSN form
 *     user:pass@tcp(host:3306)/db?parseTime=true)
 *   redis://[user:pass@]host:6379/0, rediss:// for TLS (?tls_ca=FILE),
 *     redis://localhost/0?socket=PATH; a Redis Cluster by any node's URL
 * Common query options: prefix, pool_max, pool_idle, conn_lifetime,
 * connect_timeout, timeout.
 * Errors: DURA_EINVAL for a malformed URL (the message names the part),
 * DURA_ENOTSUP for a scheme whose store is not built, DURA_EVERSION for a
 * database written by a newer dura, DURA_EIO when it cannot be reached.
 * opts may be NULL. Close with dura_store_close().
 *
 * Thread-safety: a handle may be shared by any number of threads.
 * Fork: a handle opened before fork() keeps working in the parent and in
 * the child, and so does everything built on it (engines, the step
 * cache): fork() waits until no other thread is inside a store call, and
 * the child then drops its copies of the parent's connections without
 * ending them and opens its own on its next call; ids made in the child
 * never repeat the parent's or a sibling's. Data of a memory: store is
 * copied, the child's own from then on. The one exception: fork() from
 * inside a callback that runs during a store call (dura_store_exec_sql's
 * row callback) leaves the child's handles as they were; such a child may
 * exec() or _exit() but must not use dura.
 */
DURA_EXTERN(int) dura_store_open(dura_store **out, const char *url, const dura_store_options *opts);

/** Close the store and free it; NULL is ignored. */
DURA_EXTERN(void) dura_store_close(dura_store *store);

/** Round trip to the store (a trivial query). */
DURA_EXTERN(int) dura_store_ping(dura_store *store);

typedef struct dura_store_info {
	const char *scheme;         /**< "sqlite", "memory", ... */
	const char *location;       /**< the URL without its password */
	const char *server_version; /**< driver or server version */
	int schema_version;         /**< schema version of the store (0: none) */
	int library_schema_version; /**< schema version this library writes */
	uint32_t caps;              /**< DURA_CAP_* */
	const char *notes;          /**< options ignored or remarks, or "" */
} dura_store_info;

/** Describe the store. Strings stay valid until the store is closed. */
DURA_EXTERN(int) dura_store_info_get(dura_store *store, dura_store_info *out);

/**
 * Size limits, the same on every store. A run's state (the initial one,
 * every commit's and a checkpoint's) may be at most max_state bytes, a
 * cache value at most max_value bytes; a write over a limit is refused
 * with DURA_EINVAL naming both sizes and writes nothing. The URL options max_state=BYTES
 * and max_value=BYTES (1 to DURA_LIMIT_MAX_BYTES) set them; the defaults
 * below keep a step's two copies of its state well inside a server's
 * packet and a cache entry inside what every store takes in one value.
 * A node that leaves a state over the limit fails its attempt with
 * DURA_EINVAL (not retried by default), and the run keeps its last state.
 */
#define DURA_DEFAULT_MAX_STATE_BYTES ((size_t)8 << 20)  /**< 8 MiB */
#define DURA_DEFAULT_MAX_VALUE_BYTES ((size_t)64 << 20) /**< 64 MiB */
#define DURA_LIMIT_MAX_BYTES 1000000000                 /**< the largest either may be set to */
DURA_EXTERN(int) dura_store_limits_get(dura_store *store, size_t *max_state, size_t *max_value);

typedef struct dura_store_stats {
	int open;         /**< connections open */
	int idle;         /**< connections idle in the pool */
	int in_use;       /**< connections lent out */
	int max_open;     /**< pool limit */
	uint64_t waits;   /**< times a caller waited for a connection */
	uint64_t commits; /**< step commits through this handle */
	uint64_t conflicts;
} dura_store_stats;

/**
 * Fill *out with the handle's pool numbers (the store's own) and its commit
 * and conflict counts; fields a store does not track are 0. Nothing is
 * allocated. Errors: DURA_EINVAL when store or out is NULL, or an error of
 * the store.
 */
DURA_EXTERN(int) dura_store_stats_get(dura_store *store, dura_store_stats *out);

/**
 * Create or upgrade the schema. *from and *to (either may be NULL) receive
 * the versions before and after. A schema newer than this library is
 * DURA_EVERSION and is left untouched.
 */
DURA_EXTERN(int) dura_store_migrate(dura_store *store, int *from, int *to);

/**
 * Run raw SQL on SQL stores (DURA_CAP_SQL), for operators and tests. The
 * callback gets each row (column values as text, NULL for SQL NULL);
 * returning non-zero stops. Never use it with untrusted text.
 */
typedef int (*dura_row_cb)(int ncols, char **values, char **names, void *payload);
DURA_EXTERN(int) dura_store_exec_sql(dura_store *store, const char *sql, dura_row_cb cb, void *payload);

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */
/* ------------------------------------------------------------------------ */

/** A run record (table workflow_records). */
typedef struct dura_record {
	char *run_id;
	char *workflow_name;
	char *foreign_id;  /**< "" when none */
	int run_state;     /**< dura_run_state */
	char *status;      /**< current node ("" once ended) */
	char *state;       /**< JSON */
	int64_t version;   /**< bumped by every change; the CAS token */
	int64_t step_no;   /**< number of committed steps = next step number */
	int attempt;       /**< failed attempts of the current node */
	char *error;       /**< last error text, or "" */
	char *meta;        /**< caller's JSON metadata, or "" */
	char *lease_owner; /**< "" when not leased */
	int64_t lease_expires_at;
	int64_t next_run_at; /**< not runnable before this */
	int64_t created_at;
	int64_t updated_at;
	int priority;          /**< claims take higher first (dura_run_options.priority) */
	char *concurrency_key; /**< "" when none (dura_run_options.concurrency_key) */
	/* store contract version 5 */
	char *wait;      /**< what the run waits for, "" when nothing: "sleep", "signal:NAME", "child:RUN_ID" */
	char *parent_id; /**< the run that started this one as a child (dura_ctx_start_child), or "" */
	/* store contract version 6 */
	char *workflow_version; /**< the workflow version the run executes on (dura_workflow_version), or ""
	                             for a run from before versions, which a worker of any version takes */
} dura_record;

/** Free a record a dura call returned, strings and all; NULL is ignored. */
DURA_EXTERN(void) dura_record_free(dura_record *rec);

typedef struct dura_record_list {
	size_t count;
	dura_record *items;
	char *next_cursor; /**< pass to the next list call; NULL at the end (after an
	                        exactly full last page the next page is empty) */
} dura_record_list;

/**
 * Free a list's records and its next_cursor, and zero the list (so it can
 * be passed to the next list call). The struct itself is the caller's and
 * is not freed; NULL is ignored.
 */
DURA_EXTERN(void) dura_record_list_free(dura_record_list *list);

#define DURA_RUN_CREATE_VERSION 4 /* 1 ends at meta, 2 at concurrency_key, 3 at parent_id */
typedef struct dura_run_create {
	unsigned version;
	const char *run_id;        /**< NULL: a new UUIDv7 */
	const char *workflow_name; /**< required */
	const char *foreign_id;    /**< NULL or "": none */
	const char *state;         /**< JSON, NULL: "{}" */
	const char *status;        /**< start node, NULL: "" */
	int run_state;             /**< 0: DURA_RUN_RUNNING */
	int64_t next_run_at;       /**< 0: now */
	const char *meta;          /**< JSON or NULL */
	/* version 2 */
	int priority;                /**< claims take higher priority first; -1000000 to 1000000, 0 default */
	const char *concurrency_key; /**< NULL or "": none; see dura_workflow_set_concurrency */
	/* version 3 */
	const char *parent_id; /**< NULL or "": none; the parent of a child run */
	/* version 4 */
	const char *workflow_version; /**< NULL or "": none (any worker of the workflow takes the run) */
} dura_run_create;
#define DURA_RUN_CREATE_INIT {DURA_RUN_CREATE_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Create a run (no outbox event is written for it). If the workflow already has an active run (initiated,
 * running or paused) with the same non-empty foreign id, nothing is created:
 * *out receives that run and the result is DURA_EEXISTS.
 * *out may be NULL when the caller does not want the record.
 */
DURA_EXTERN(int) dura_store_create_run(dura_store *store, const dura_run_create *req, dura_record **out);

/**
 * Read a run. *out gets a record the caller frees with dura_record_free;
 * it is NULL on any error. Errors: DURA_ENOTFOUND for no such run,
 * DURA_EINVAL for a NULL store or out or a run id that is empty or longer
 * than DURA_MAX_ID_LEN, or an error of the store.
 */
DURA_EXTERN(int) dura_store_get_run(dura_store *store, const char *run_id, dura_record **out);

/** The newest run of a workflow with this foreign id, any state. */
DURA_EXTERN(int) dura_store_latest_run(dura_store *store, const char *workflow_name, const char *foreign_id, dura_record **out);

#define DURA_RUN_FILTER_VERSION 4 /* 1 ends at limit, 2 at waiting, 3 at workflow_version */
typedef struct dura_run_filter {
	unsigned version;
	const char *workflow_name; /**< NULL: any */
	int run_state;             /**< 0: any */
	const char *status;        /**< NULL: any */
	const char *foreign_id;    /**< NULL: any */
	int64_t created_after;     /**< 0: unbounded (inclusive) */
	int64_t created_before;    /**< 0: unbounded (exclusive) */
	const char *cursor;        /**< next_cursor of the previous page */
	size_t limit;              /**< 0: 100 */
	/* version 2 */
	const char *parent_id; /**< NULL: any; else only the children of that run */
	int waiting;           /**< 1: only runs whose wait is not "" */
	/* version 3 */
	const char *workflow_version; /**< NULL: any; else only runs on that version ("" too: runs without one) */
	/* version 4 */
	int due; /**< 1: only due runs, as dura_store_gauges.due_runs counts them */
} dura_run_filter;
#define DURA_RUN_FILTER_INIT {DURA_RUN_FILTER_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Runs newest first (keyset pagination on run_id, which is time-ordered).
 * DURA_ENOTSUP for a filter on what an external store of an older
 * contract version does not keep: parent_id or waiting (version 5),
 * workflow_version (6), due (8).
 */
DURA_EXTERN(int) dura_store_list_runs(dura_store *store, const dura_run_filter *filter, dura_record_list *out);

/**
 * Move a run to another run state (pause, resume, cancel, ...), if
 * dura_run_state_transition_ok() allows it from the state it is in now.
 * A refused transition is DURA_ECONFLICT and changes nothing; so is
 * resuming a failed run while another run of the workflow with the same
 * foreign id is active. Moving to data_deleted erases the data exactly as
 * dura_store_delete_run_data does. The version is bumped (so an executor
 * holding the old version stops at its next commit); the new version is
 * written to *new_version when not NULL.
 */
DURA_EXTERN(int) dura_store_set_run_state(dura_store *store, const char *run_id, int to, int64_t *new_version);

/** Erase a finished run's state, steps and checkpoints (run_state data_deleted). */
DURA_EXTERN(int) dura_store_delete_run_data(dura_store *store, const char *run_id);

/* ------------------------------------------------------------------------ */
/* Steps                                                                     */
/* ------------------------------------------------------------------------ */

/** One committed node execution (table workflow_steps). */
typedef struct dura_step {
	char *run_id;
	int64_t step; /**< dense from 0 */
	char *node_id;
	char *state; /**< JSON after the step */
	int64_t created_at;
	/* store contract version 6 */
	char *workflow_version; /**< the version of the code that committed the step, or "" */
} dura_step;

/** Free a step a dura call returned; NULL is ignored. */
DURA_EXTERN(void) dura_step_free(dura_step *step);

typedef struct dura_step_list {
	size_t count;
	dura_step *items;
} dura_step_list;

/** Free a list's steps and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_step_list_free(dura_step_list *list);

/** Commit flags. */
#define DURA_COMMIT_NO_STEP (1u << 0) /**< update the record only (no step row) */
#define DURA_COMMIT_NO_EVENT (1u << 1) /**< write no outbox event */
#define DURA_COMMIT_RELEASE_LEASE (1u << 2) /**< also release the run's lease */

#define DURA_COMMIT_VERSION 3 /* 1 ends at flags, 2 at wake_wait */
/**
 * One atomic step commit: the record (state, status, run_state, version+1,
 * step_no+1), the step row (step = the record's step_no before) and an
 * outbox event, together or not at all, and only if the run's version is
 * still expect_version.
 */
typedef struct dura_commit {
	unsigned version;
	const char *run_id;
	int64_t expect_version; /**< compare-and-swap token */
	const char *node_id;    /**< node that ran (the step row) */
	const char *state;      /**< JSON after the step */
	const char *status;     /**< node to run next, NULL/"" at the end */
	int run_state;          /**< state after the commit (0: unchanged) */
	const char *error;      /**< error text to keep, NULL clears */
	int attempt;            /**< failed attempts of the next node */
	int64_t next_run_at;    /**< 0: now */
	const char *event_type; /**< outbox event type, NULL: "step" */
	const char *event_data; /**< outbox payload JSON, NULL: the default summary (dura_store_event_summary) */
	unsigned flags;         /**< DURA_COMMIT_* */
	/* version 2 (store contract version 5) */
	const char *wait;        /**< the record's wait after the commit, NULL: "" */
	const char *signal_id;   /**< NULL, or a signal of this run the commit consumes (deletes): gone is DURA_ECONFLICT */
	const char *wake_run_id; /**< NULL, or a run to wake with the commit (dura_store_wake) */
	const char *wake_wait;   /**< the wait wake_run_id must have to be woken */
	/* version 3 (store contract version 6) */
	const char *workflow_version; /**< NULL or "": none. The version of the code committing: the step row
	                                   keeps it, and a record without a version takes it on */
} dura_commit;
#define DURA_COMMIT_INIT {DURA_COMMIT_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

typedef struct dura_commit_result {
	int code;            /**< 0 or DURA_ECONFLICT / DURA_ENOTFOUND / ... */
	int64_t new_version; /**< version after the commit */
	int64_t step;        /**< step number written (-1 with NO_STEP) */
} dura_commit_result;

/**
 * Commit one step. A stale expect_version is DURA_ECONFLICT and nothing is
 * written; a missing run is DURA_ENOTFOUND. res may be NULL. The commit is
 * guarded by the version alone: it does not check run-state transitions
 * (set_run_state does), so whoever holds the current version decides.
 */
DURA_EXTERN(int) dura_store_commit(dura_store *store, const dura_commit *c, dura_commit_result *res);

/**
 * Commit steps of several runs in one transaction (one round trip on
 * server stores). Each commit is checked on its own: res[i].code tells
 * which went in; conflicting ones write nothing. Returns 0 when all went
 * in, DURA_ECONFLICT when some did not, or another error when none did.
 */
DURA_EXTERN(int) dura_store_commit_batch(dura_store *store, const dura_commit *c, size_t n, dura_commit_result *res);

/** Steps of a run from step `from`, at most limit (0: all), in order. */
DURA_EXTERN(int) dura_store_history(dura_store *store, const char *run_id, int64_t from, size_t limit, dura_step_list *out);

/**
 * Read step `step` (from 0) of a run. *out gets a step the caller frees
 * with dura_step_free; NULL on any error. Errors: DURA_ENOTFOUND when the
 * run has no such step (or there is no such run), DURA_EINVAL for a NULL
 * store or out, a bad run id or a negative step.
 */
DURA_EXTERN(int) dura_store_get_step(dura_store *store, const char *run_id, int64_t step, dura_step **out);

/** The last committed step of a run (DURA_ENOTFOUND when none). */
DURA_EXTERN(int) dura_store_load_latest(dura_store *store, const char *run_id, dura_step **out);

/* ------------------------------------------------------------------------ */
/* Durable waiting: signals, wakes and schedules (store contract version 5)  */
/* ------------------------------------------------------------------------ */

/** A signal in a run's inbox (table workflow_signals; a hash per signal on Redis). */
typedef struct dura_signal {
	char *signal_id; /**< UUIDv7 given when it was sent: the inbox is in this order */
	char *run_id;
	char *name;
	char *payload; /**< JSON */
	int64_t created_at;
} dura_signal;

typedef struct dura_signal_list {
	size_t count;
	dura_signal *items;
} dura_signal_list;

/** Free a signal a dura call returned; NULL is ignored. */
DURA_EXTERN(void) dura_signal_free(dura_signal *sig);
/** Free a list's signals and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_signal_list_free(dura_signal_list *list);

/**
 * Append a signal to a run's inbox and, if the run waits for a signal of
 * this name, wake it - in one atomic step, so a signal is never lost
 * between a sender and a run starting to wait. payload is JSON (NULL:
 * "null"); the signal's id (UUIDv7) is written to signal_id when not
 * NULL. DURA_ENOTFOUND for no such run, DURA_ECONFLICT for a run that has
 * ended (completed, failed, cancelled, data deleted), DURA_EINVAL for a
 * bad name (empty, longer than DURA_MAX_NAME_LEN) or payload.
 */
DURA_EXTERN(int) dura_store_signal_send(dura_store *store, const char *run_id, const char *name, const char *payload,
                                        char signal_id[DURA_UUID_LEN + 1]);

/** The oldest pending signal of the run with this name, or DURA_ENOTFOUND. */
DURA_EXTERN(int) dura_store_signal_next(dura_store *store, const char *run_id, const char *name, dura_signal **out);

/** Every pending signal of the run, oldest first (an unknown run: none). */
DURA_EXTERN(int) dura_store_signal_list(dura_store *store, const char *run_id, dura_signal_list *out);

/**
 * Make a waiting run due now, if it is running and its wait is exactly
 * `wait` (version + 1, next_run_at = now): 0, or DURA_ENOTFOUND when no run
 * waits so. A waiting run woken by anything but what it waits for simply
 * waits again.
 */
DURA_EXTERN(int) dura_store_wake(dura_store *store, const char *run_id, const char *wait);

/** A stored schedule (table dura_schedules). */
typedef struct dura_schedule {
	char *name;
	char *cron;          /**< 5 or 6 fields, or a macro (docs/schedules.md) */
	char *zone;          /**< "UTC" or an IANA zone name */
	char *workflow_name;
	char *state;         /**< the initial state of each tick's run, JSON */
	int catch_up;        /**< missed ticks fired after an outage: 0 none (only the latest), else at most this many */
	int64_t next_tick;   /**< ms since the epoch of the next tick not yet fired */
	int64_t created_at;
	int64_t updated_at;
} dura_schedule;

typedef struct dura_schedules {
	size_t count;
	dura_schedule *items;
} dura_schedules;

DURA_EXTERN(void) dura_schedule_free(dura_schedule *sch);
DURA_EXTERN(void) dura_schedules_free(dura_schedules *list);

#define DURA_SCHEDULE_SPEC_VERSION 1
/** What dura_schedule_set and dura_store_schedule_set take. */
typedef struct dura_schedule_spec {
	unsigned version;
	const char *name;     /**< required, at most DURA_MAX_NAME_LEN bytes */
	const char *cron;     /**< required */
	const char *zone;     /**< NULL or "": "UTC" */
	const char *workflow; /**< required */
	const char *state;    /**< JSON, NULL: "{}" */
	int catch_up;         /**< 0 to 1000 */
} dura_schedule_spec;
#define DURA_SCHEDULE_SPEC_INIT {DURA_SCHEDULE_SPEC_VERSION, 0, 0, 0, 0, 0, 0}

/**
 * Create or replace a schedule in the store: the cron line and zone are
 * checked (DURA_EINVAL naming the bad field or zone) and the next tick
 * after now is computed. It does not check that a worker registers the
 * workflow (dura_schedule_set does): a worker fires only the schedules of
 * workflows it registers.
 */
DURA_EXTERN(int) dura_store_schedule_set(dura_store *store, const dura_schedule_spec *spec);
/** One schedule, or DURA_ENOTFOUND. */
DURA_EXTERN(int) dura_store_schedule_get(dura_store *store, const char *name, dura_schedule **out);
/** Delete a schedule (its runs stay), or DURA_ENOTFOUND. */
DURA_EXTERN(int) dura_store_schedule_delete(dura_store *store, const char *name);
/** Every schedule, by name. */
DURA_EXTERN(int) dura_store_schedule_list(dura_store *store, dura_schedules *out);
/**
 * Move a schedule's next tick from `from` to `to` if it is still `from`
 * (a compare-and-swap among workers): 0, DURA_ECONFLICT, DURA_ENOTFOUND.
 */
DURA_EXTERN(int) dura_store_schedule_advance(dura_store *store, const char *name, int64_t from, int64_t to);

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                               */
/* ------------------------------------------------------------------------ */

/** A named snapshot (table workflow_checkpoints). */
typedef struct dura_checkpoint {
	char *checkpoint_id;
	char *run_id;
	int64_t step;
	char *state; /**< JSON */
	int64_t created_at;
	int64_t updated_at;
} dura_checkpoint;

/** Free a checkpoint a dura call returned; NULL is ignored. */
DURA_EXTERN(void) dura_checkpoint_free(dura_checkpoint *cp);

typedef struct dura_checkpoint_list {
	size_t count;
	dura_checkpoint *items;
} dura_checkpoint_list;

/** Free a list's checkpoints and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_checkpoint_list_free(dura_checkpoint_list *list);

/** Save (insert or overwrite by checkpoint_id). */
DURA_EXTERN(int) dura_store_checkpoint_save(dura_store *store, const char *checkpoint_id, const char *run_id, int64_t step, const char *state);
/**
 * Read a checkpoint. *out gets one the caller frees with
 * dura_checkpoint_free; NULL on any error. Errors: DURA_ENOTFOUND for no
 * such checkpoint, DURA_EINVAL for a NULL store or out or a bad id.
 */
DURA_EXTERN(int) dura_store_checkpoint_load(dura_store *store, const char *checkpoint_id, dura_checkpoint **out);
/** Checkpoints of one run, or of all runs when run_id is NULL; newest first. */
DURA_EXTERN(int) dura_store_checkpoint_list(dura_store *store, const char *run_id, dura_checkpoint_list *out);
/** Delete a checkpoint (the run is not touched); DURA_ENOTFOUND if there is none by that id. */
DURA_EXTERN(int) dura_store_checkpoint_delete(dura_store *store, const char *checkpoint_id);

/* ------------------------------------------------------------------------ */
/* Step cache                                                                */
/* ------------------------------------------------------------------------ */

/** A cache entry (table step_cache). value is bytes, not text. */
typedef struct dura_cache_entry {
	char *key;
	unsigned char *value;
	size_t value_len;
	char *error;    /**< cached error text, or NULL */
	char *metadata; /**< JSON object or NULL */
	int64_t created_at;
	int64_t expires_at; /**< 0: never */
} dura_cache_entry;

/** Free a cache entry a dura call returned, value and all; NULL is ignored. */
DURA_EXTERN(void) dura_cache_entry_free(dura_cache_entry *e);

typedef struct dura_cache_list {
	size_t count;
	dura_cache_entry *items; /**< values are not loaded: value is NULL, value_len is the size */
	char *next_cursor;
} dura_cache_list;

/** Free a list's entries and next_cursor and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_cache_list_free(dura_cache_list *list);

typedef struct dura_cache_stats {
	int64_t entries;
	int64_t expired;
	int64_t bytes;
	uint64_t hits;   /**< through this handle */
	uint64_t misses; /**< through this handle */
} dura_cache_stats;

/** Look up a key; an expired entry is DURA_ENOTFOUND (a miss). */
DURA_EXTERN(int) dura_store_cache_get(dura_store *store, const char *key, dura_cache_entry **out);

/**
 * Insert or replace an entry. ttl_ms 0 means no expiry. error and metadata
 * may be NULL. Also releases any single-flight claim on the key.
 */
DURA_EXTERN(int) dura_store_cache_put(dura_store *store, const char *key, const void *value, size_t value_len,
                                      const char *error, const char *metadata, int64_t ttl_ms);

/**
 * Single-flight claim: 0 if `owner` now holds the key for lease_ms
 * (taking over an expired claim), DURA_EBUSY if another owner holds it,
 * DURA_EEXISTS if an unexpired value is already cached.
 */
DURA_EXTERN(int) dura_store_cache_claim(dura_store *store, const char *key, const char *owner, int64_t lease_ms);

/** Give up a claim (only the owner's); DURA_ENOTFOUND if not held by owner. */
DURA_EXTERN(int) dura_store_cache_release(dura_store *store, const char *key, const char *owner);

/** Delete an entry; DURA_ENOTFOUND if there is none, DURA_EINVAL for a bad key. */
DURA_EXTERN(int) dura_store_cache_delete(dura_store *store, const char *key);

/** Delete expired entries; *count (may be NULL) receives how many. */
DURA_EXTERN(int) dura_store_cache_purge_expired(dura_store *store, int64_t *count);

/** Entries in key order from cursor, at most limit (0: 100). */
DURA_EXTERN(int) dura_store_cache_list(dura_store *store, const char *cursor, size_t limit, dura_cache_list *out);

/**
 * Fill *out: entries (expired ones included), expired, bytes (sum of value
 * sizes) from the store, and hits and misses of dura_store_cache_get
 * through this handle. Nothing is allocated. Errors: DURA_EINVAL when
 * store or out is NULL, or an error of the store.
 */
DURA_EXTERN(int) dura_store_cache_stats(dura_store *store, dura_cache_stats *out);

/* ------------------------------------------------------------------------ */
/* Leases                                                                    */
/* ------------------------------------------------------------------------ */

/**
 * Claim up to max runnable runs: run_state running, next_run_at due, lease
 * free or expired, workflow in the list (NULL/0: any). Each claimed run is
 * leased to owner for lease_ms; a run is never held by two owners at once.
 * Claiming bumps the run's version: it is the fencing token, so a worker
 * whose expired lease was taken over loses its next commit (DURA_ECONFLICT).
 */
DURA_EXTERN(int) dura_store_claim_runs(dura_store *store, const char *owner, const char *const *workflows,
                                       size_t nworkflows, size_t max, int64_t lease_ms, dura_record_list *out);

/** One workflow a claim serves, with its flow limits. */
typedef struct dura_claim_workflow {
	const char *name; /**< the workflow name */
	int max_running;  /**< at most this many of its runs leased at once, 0: no limit */
	int max_per_key;  /**< at most this many leased at once per concurrency key, 0: no limit */
} dura_claim_workflow;

/** A workflow version a claim serves (dura_claim.versions). */
typedef struct dura_claim_version {
	const char *workflow; /**< a workflow name among dura_claim.workflows */
	const char *version;  /**< a version of it, 1 to DURA_MAX_VERSION_LEN bytes */
} dura_claim_version;

#define DURA_CLAIM_VERSION 2 /* 1 is accepted: it ends at taken_over */
/** A claim with flow control (dura_store_claim). */
typedef struct dura_claim {
	unsigned version;   /**< DURA_CLAIM_VERSION */
	const char *owner;  /**< the lease owner id */
	const dura_claim_workflow *workflows; /**< NULL (and 0): any workflow, no limits */
	size_t nworkflows;  /**< at most 256 */
	size_t max;         /**< 1 to 1000 */
	int64_t lease_ms;   /**< positive */
	int *taken_over;    /**< NULL, or max ints: [i] is 1 when out->items[i] was leased to another owner
	                         whose lease lapsed unreleased (a rescue), else 0 */
	/* version 2 */
	const dura_claim_version *versions; /**< NULL (and 0): runs of any version. Else a run of a workflow
	                                         named here is claimed only when its workflow_version is one
	                                         listed for it, or "" (a run from before versions); a
	                                         workflow not named here is claimed at any version */
	size_t nversions;                   /**< at most 4096 */
} dura_claim;
#define DURA_CLAIM_INIT {DURA_CLAIM_VERSION, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * dura_store_claim_runs with flow control: up to max runnable runs, higher
 * priority first, then the earliest due, then run id; a workflow with a
 * max_running limit gets no more runs than keep its live leases (of every
 * owner) within it, and likewise for each concurrency key with
 * max_per_key. The count and the claim are one atomic step of the store:
 * concurrent claims, in any process, never exceed a limit together. A
 * run of a workflow or key at its limit is passed over, and the claim
 * goes on to the next. Errors: DURA_EINVAL for bad arguments (nothing is
 * claimed), DURA_ENOTSUP when limits are asked of a store without flow
 * control (contract version 3 or older; without limits such a store is
 * served by its claim_runs), or an error of the store. Thread-safe.
 */
DURA_EXTERN(int) dura_store_claim(dura_store *store, const dura_claim *req, dura_record_list *out);

/** Extend owner's lease (also an expired one nobody took over);
 *  DURA_ECONFLICT if another owner holds the run now. */
DURA_EXTERN(int) dura_store_extend_lease(dura_store *store, const char *run_id, const char *owner, int64_t lease_ms);

/**
 * Extend owner's leases on n runs (1 to 10000) at once, to now + lease_ms:
 * a worker's heartbeat, one store call however many runs it holds (one
 * transaction on SQL stores; a store without the operation is served one
 * extend_lease per run). codes (n ints, required) gets each run's
 * outcome: 0 extended, DURA_ECONFLICT when owner does not hold the run any
 * more (another owner took it over, or it was released), DURA_ENOTFOUND
 * for no such run. Returns 0 when every lease was extended,
 * DURA_ECONFLICT or DURA_ENOTFOUND (the first such code) when some were
 * not - the others are extended all the same - DURA_EINVAL for bad
 * arguments (nothing is changed, every code is DURA_EINVAL), or an error
 * of the store, which every code then repeats. Thread-safe.
 */
DURA_EXTERN(int) dura_store_extend_leases(dura_store *store, const char *owner, const char *const *run_ids, size_t n,
                                          int64_t lease_ms, int *codes);

/** Release owner's lease; DURA_ECONFLICT if owner does not hold it. */
DURA_EXTERN(int) dura_store_release_lease(dura_store *store, const char *run_id, const char *owner);

/* ------------------------------------------------------------------------ */
/* Workflow versions                                                         */
/* ------------------------------------------------------------------------ */

/*
 * A deploy changes workflow code while runs are under way. dura keeps the
 * versions apart: a run records the workflow version it started on
 * (dura_record.workflow_version), each step the version that committed it,
 * and a worker claims only runs of the versions its engine registered - so
 * old runs finish on old code while new runs start on new code. Every
 * engine writes the definition of each version it registers to the store
 * (dura_engine_register), which is what dura_store_migrate_run checks
 * against and `dura versions` lists.
 */

/** A workflow version as an engine registered it (dura_store_workflow_list). */
typedef struct dura_workflow_def {
	char *workflow_name;
	char *version;
	char *definition;      /**< JSON: {"start":NODE,"nodes":[{"name":N,"next":M or null}, ...]} */
	int64_t first_seen_at; /**< its first registration, in any process */
	int64_t last_seen_at;  /**< its latest registration */
} dura_workflow_def;

typedef struct dura_workflow_def_list {
	size_t count;
	dura_workflow_def *items; /**< by workflow name, then first_seen_at, then version */
} dura_workflow_def_list;

/** Free a list's items and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_workflow_def_list_free(dura_workflow_def_list *list);

/** The versions of workflow `name` (NULL: of every workflow) the store knows. */
DURA_EXTERN(int) dura_store_workflow_list(dura_store *store, const char *name, dura_workflow_def_list *out);

/** One count of runs (dura_store_run_counts). */
typedef struct dura_run_count {
	char *workflow_name;
	char *workflow_version; /**< "" for runs from before versions */
	int run_state;
	int64_t count;
} dura_run_count;

typedef struct dura_run_count_list {
	size_t count;
	dura_run_count *items; /**< by workflow name, version, then run state */
} dura_run_count_list;

/** Free a list's items and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_run_count_list_free(dura_run_count_list *list);

/** How many runs each workflow (`workflow`, or every one when NULL) has
 *  per version and run state; only non-zero counts are listed. */
DURA_EXTERN(int) dura_store_run_counts(dura_store *store, const char *workflow, dura_run_count_list *out);

/** What a dashboard or /metrics reads from the store, shared by every process using it
 *  (dura_store_gauges_get; store contract version 8). */
typedef struct dura_store_gauges {
	int64_t waiting_runs;     /* runs in an active run state (dura_run_state_active) whose wait is not "" */
	int64_t due_runs;         /* runs in run state running, next_run_at <= now, lease free or expired: what claims would take now (flow limits and versions aside) */
	int64_t leased_runs;      /* runs whose lease has not expired (being executed now): run state running, lease_owner not "", lease_expires_at > now, as flow limits count them */
	int64_t outbox_pending;   /* outbox events not acknowledged */
	int64_t outbox_oldest_at; /* created_at of the oldest pending event (the first in id order, as outbox_list reads them), 0 when there is none */
	int64_t now;              /* the store's clock when it counted (ms since epoch) */
} dura_store_gauges;

/**
 * The store's gauges, counted now with bounded cost (from indexes, never
 * a read of every run), for every process that shares the store: what a
 * worker's own counters cannot see. One reading (one statement, one
 * script, or under the store's lock), at the store's clock `now`; a due
 * run is one that dura_run_filter.due lists. Errors:
 * DURA_EINVAL for a NULL store or out, DURA_ENOTSUP on an external store
 * of contract version 7 or older, or an error of the store (then *out is
 * zeroed). Thread-safe.
 */
DURA_EXTERN(int) dura_store_gauges_get(dura_store *store, dura_store_gauges *out);

/**
 * Move a run to another version of its workflow, explicitly: workers of
 * `version` take it from there. The version must be known to the store (an
 * engine registered it: DURA_ENOTFOUND otherwise) and have the node the
 * run is at (DURA_EINVAL naming the node otherwise). A run that ended is
 * DURA_ECONFLICT, and so is one leased by a worker now (pause it first, or
 * wait for the lease to end); the move is compare-and-swap on the run's
 * version, so a worker that claims it meanwhile wins and the move is
 * refused. *out (may be NULL) gets the moved record. Thread-safe.
 */
DURA_EXTERN(int) dura_store_migrate_run(dura_store *store, const char *run_id, const char *version, dura_record **out);

/* ------------------------------------------------------------------------ */
/* Retention                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Retention keeps tables bounded: runs that ended go after a while, their
 * data (steps, checkpoints, state, signals: what dura_store_delete_run_data
 * removes, leaving the record as data_deleted) or the whole run. Workers
 * apply each workflow's policy (dura_workflow_set_retention) in small
 * batches; dura_store_prune is one batch, which `dura prune` repeats.
 *
 * What retention keeps, whatever its age: a run with a named checkpoint
 * (checkpoints are kept to fork from: delete the checkpoint to let the run
 * go), and a child run whose parent has not ended (the parent may still
 * await it).
 */

#define DURA_PRUNE_VERSION 1
typedef struct dura_prune {
	unsigned version;     /**< DURA_PRUNE_VERSION */
	const char *workflow; /**< NULL: every workflow */
	int run_state;        /**< the end state: completed, failed, cancelled, or data_deleted (whole only) */
	int64_t ended_before; /**< runs whose last change (updated_at) is before this time (ms) */
	int whole;            /**< 0: delete the run's data; 1: delete the run itself, data and record */
	size_t limit;         /**< runs in this batch, 1 to 10000 */
	int dry_run;          /**< 1: count what this batch would prune, change nothing */
} dura_prune;
#define DURA_PRUNE_INIT {DURA_PRUNE_VERSION, 0, 0, 0, 0, 0, 0}

/**
 * One batch of retention, one short transaction: prune up to req->limit
 * runs that match, oldest change first, and *count (may be NULL) how many.
 * Fewer than the limit means nothing matching is left (but for what
 * concurrent changes bring). Errors: DURA_EINVAL for a bad request,
 * DURA_ENOTSUP on an external store of contract version 5 or older.
 */
DURA_EXTERN(int) dura_store_prune(dura_store *store, const dura_prune *req, int64_t *count);

/** Retention of a workflow's ended runs (dura_workflow_set_retention). */
#define DURA_RETENTION_VERSION 1
typedef struct dura_retention {
	unsigned version;     /**< DURA_RETENTION_VERSION */
	int64_t completed_ms; /**< keep completed runs this long after they end; 0: forever */
	int64_t failed_ms;    /**< failed runs; 0: forever */
	int64_t cancelled_ms; /**< cancelled runs; 0: forever */
	int whole;            /**< 0: delete the data (the record stays, data_deleted); 1: the whole run */
} dura_retention;
#define DURA_RETENTION_INIT {DURA_RETENTION_VERSION, 0, 0, 0, 0}

/* ------------------------------------------------------------------------ */
/* Outbox                                                                    */
/* ------------------------------------------------------------------------ */

/** An event written in the same transaction as its step (table workflow_outbox). */
typedef struct dura_event {
	char *id; /**< UUIDv7 */
	char *workflow_name;
	char *run_id;
	char *type; /**< "run_started", "step", ... */
	char *data; /**< JSON */
	int64_t created_at;
} dura_event;

typedef struct dura_event_list {
	size_t count;
	dura_event *items;
} dura_event_list;

/** Free a list's events and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_event_list_free(dura_event_list *list);

/** Oldest events first, at most limit (0: 100). Polling does not remove them. */
DURA_EXTERN(int) dura_store_outbox_poll(dura_store *store, size_t limit, dura_event_list *out);

/** Delete a delivered event; DURA_ENOTFOUND if already gone. */
DURA_EXTERN(int) dura_store_outbox_ack(dura_store *store, const char *event_id);

/**
 * Retention of the outbox: delete up to limit (1 to 10000) events created
 * before `before` (ms), oldest first, delivered or not; *count (may be
 * NULL) how many. Workers do it for events older than
 * dura_worker_options.outbox_keep_ms. DURA_ENOTSUP on an external store
 * of contract version 5 or older.
 */
DURA_EXTERN(int) dura_store_outbox_prune(dura_store *store, int64_t before, size_t limit, int64_t *count);

/* ------------------------------------------------------------------------ */
/* Moving runs between stores                                                */
/* ------------------------------------------------------------------------ */

/*
 * A deployment moves from SQLite to a server store, or between servers,
 * with dura_export and dura_import (`dura export`, `dura import`, `dura
 * migrate`): JSON lines, one record a line after a versioned header
 * (docs/export.md). These are their store-level parts.
 */

/** A run as another store had it (dura_store_import_run). */
typedef struct dura_import_run {
	const dura_record *record;       /**< every field; the lease is not imported */
	const dura_step *steps;          /**< in step order */
	size_t nsteps;
	const dura_checkpoint *checkpoints;
	size_t ncheckpoints;
	const dura_signal *signals;      /**< its pending signals */
	size_t nsignals;
} dura_import_run;

/**
 * Insert a run, its steps, checkpoints and signals as given, in one
 * transaction, with their versions and times: what dura_import does per
 * run. The record's lease is not kept (a run that was leased is runnable
 * at once). DURA_EEXISTS, writing nothing, when the run id is taken, or
 * when an active run has the workflow and foreign id already; DURA_EINVAL
 * for a bad run (steps that are not the run's last ones in order, up to
 * step_no - 1; a checkpoint or signal of another run; text that is not
 * JSON where JSON is due); DURA_ENOTSUP on an external store of contract version 6 or
 * older. Thread-safe.
 */
DURA_EXTERN(int) dura_store_import_run(dura_store *store, const dura_import_run *r);

/** Insert an outbox event as given; DURA_EEXISTS when its id is there. */
DURA_EXTERN(int) dura_store_import_event(dura_store *store, const dura_event *ev);

/** Outbox events in id order after event id `after` (NULL or "": from the
 *  first), at most limit (0: 100; at most 10000): the whole outbox, page
 *  by page. */
DURA_EXTERN(int) dura_store_outbox_list(dura_store *store, const char *after, size_t limit, dura_event_list *out);

/** What an export or an import did so far. */
typedef struct dura_transfer_stats {
	int64_t lines;  /**< lines written or read, the header and the end line included */
	int64_t bytes;  /**< their bytes, newlines included */
	int64_t runs, steps, checkpoints, signals, events, schedules, cache_entries, workflows;
	int64_t unchanged; /**< import: records that were there already, the same (skipped) */
	int64_t skipped;   /**< import: cache entries that had expired on the way */
	int64_t line;      /**< import: the line a failure is at (from 1), 0 when none */
} dura_transfer_stats;

/** One line of an export, without its newline: 0, or non-zero to stop the
 *  export (which returns that code). */
typedef int (*dura_line_fn)(const char *line, size_t len, void *payload);
/** Progress, every 1000 lines and once at the end. */
typedef void (*dura_progress_fn)(const dura_transfer_stats *stats, void *payload);

#define DURA_EXPORT_OPTIONS_VERSION 1
typedef struct dura_export_options {
	unsigned version;
	const char *workflow; /**< NULL: every workflow, the schedules, the outbox and the live cache entries;
	                           else that workflow's versions, schedules, runs and their events (no cache) */
	int64_t since;        /**< 0: everything; else only runs created at or after this time (ms) and
	                           events written at or after it */
	dura_progress_fn progress;
	void *progress_payload;
} dura_export_options;
#define DURA_EXPORT_OPTIONS_INIT {DURA_EXPORT_OPTIONS_VERSION, NULL, 0, NULL, NULL}

/**
 * Export the store (or a part: opts) as JSON lines (docs/export.md): a
 * header, then workflow versions, schedules, runs each followed by its
 * steps, checkpoints and signals, outbox events, live cache entries, then
 * an end line that counts them. Each run is read whole (its record, then
 * the steps up to its step_no), so an export of a store in use has every
 * run as it was at one moment. stats (may be NULL) gets the counts. 0, the
 * emitter's code, or a store error. Thread-safe.
 */
DURA_EXTERN(int) dura_export(dura_store *store, const dura_export_options *opts, dura_line_fn emit, void *payload,
                             dura_transfer_stats *stats);

typedef struct dura_importer dura_importer;

#define DURA_IMPORT_OPTIONS_VERSION 1
typedef struct dura_import_options {
	unsigned version;
	int resume; /**< 1: a run, event or entry already there is skipped by its id, not compared:
	                 to continue an import that stopped */
	dura_progress_fn progress;
	void *progress_payload;
} dura_import_options;
#define DURA_IMPORT_OPTIONS_INIT {DURA_IMPORT_OPTIONS_VERSION, 0, NULL, NULL}

/**
 * Import an export into a store, line by line (dura_import_line), then
 * dura_import_finish. Safe to repeat: a record already in the store and
 * the same is skipped (counted as unchanged), so importing a file twice
 * changes nothing the second time; a record that differs from the one
 * there is refused (DURA_ECONFLICT). A bad line - not JSON, not a record
 * of this format, a record out of place, a file cut short (no end line, or
 * counts that do not match) - is refused (DURA_EINVAL) with its line
 * number in the message and in stats.line; a run is written whole when
 * its last line is read, so what was imported before a bad line is whole
 * and the run the bad line is in is not written at all. After a failure
 * the importer refuses every further line.
 */
DURA_EXTERN(int) dura_import_new(dura_importer **out, dura_store *store, const dura_import_options *opts);
/** One line (without its newline; a trailing '\r' is taken off). */
DURA_EXTERN(int) dura_import_line(dura_importer *im, const char *line, size_t len);
/** The end of the input: DURA_EINVAL when the file was cut short. */
DURA_EXTERN(int) dura_import_finish(dura_importer *im);
DURA_EXTERN(void) dura_import_stats(const dura_importer *im, dura_transfer_stats *out);
DURA_EXTERN(void) dura_import_free(dura_importer *im);


/* ------------------------------------------------------------------------ */
/* Workflows and the engine                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A workflow is a graph of named nodes (C functions) over a JSON state.
 * The engine runs a run node by node; each node execution ends in exactly
 * one atomic store commit (record, step row, outbox event, compare-and-swap
 * on the run's version). After a crash, dura_run_execute() resumes at the
 * first uncommitted node with the committed state.
 *
 * Thread-safety: an engine is safe to share between threads once its
 * workflows are registered (register them all first). A dura_ctx belongs
 * to the one node call it is passed to.
 */
typedef struct dura_engine dura_engine;
typedef struct dura_workflow dura_workflow;
typedef struct dura_ctx dura_ctx;

/**
 * A node. It may change `state` in place, or hand a delta to
 * dura_ctx_set_delta() for the workflow's reducer to merge. It returns 0,
 * or a negative code (with dura_ctx_fail() for a message) to fail this
 * attempt. What follows is dura_ctx_goto()'s node, else the static edge,
 * else the end of the run.
 */
typedef int (*dura_node_fn)(dura_ctx *ctx, json_t *state, void *payload);

/** Merge `delta` into `state` (both owned by the engine). */
typedef int (*dura_reducer_fn)(json_t *state, json_t *delta, void *payload);

/** Decide whether a failed attempt may be retried (1) or not (0). */
typedef int (*dura_retry_classifier_fn)(int code, const char *error, void *payload);

#define DURA_NODE_OPTIONS_VERSION 1
typedef struct dura_node_options {
	unsigned version;
	int max_attempts;           /**< attempts in all, 0: 1 (no retry) */
	int64_t backoff_initial_ms; /**< 0: 100 */
	double backoff_multiplier;  /**< 0: 2.0 */
	int64_t backoff_max_ms;     /**< cap, 0: 30000 */
	double jitter;              /**< 0..1, fraction of the delay randomised; default 0 */
	int64_t timeout_ms;         /**< per attempt, 0: none */
	dura_retry_classifier_fn retryable; /**< NULL: every error but DURA_EINVAL and DURA_ECANCELED */
	void *retryable_payload;
} dura_node_options;
#define DURA_NODE_OPTIONS_INIT {DURA_NODE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0}

/** A new, empty workflow. Free with dura_workflow_free unless registered. */
DURA_EXTERN(int) dura_workflow_new(dura_workflow **out, const char *name);
/** Free an unregistered workflow and its nodes; NULL is ignored. Never
 *  call it on a workflow passed to dura_engine_register. */
DURA_EXTERN(void) dura_workflow_free(dura_workflow *wf);

/** Add a node; opts may be NULL. A duplicate name is DURA_EEXISTS. */
DURA_EXTERN(int) dura_workflow_add_node(dura_workflow *wf, const char *name, dura_node_fn fn, void *payload,
                                        const dura_node_options *opts);

/** The static edge from `from` to `to` (one per node). Checked at register. */
DURA_EXTERN(int) dura_workflow_add_edge(dura_workflow *wf, const char *from, const char *to);

/**
 * Name the node a new run starts at (required; a second call replaces the
 * first). The name is copied. That the node exists is checked by
 * dura_engine_register. Errors: DURA_EINVAL for a NULL workflow or a name
 * that is missing, longer than DURA_MAX_NAME_LEN or not UTF-8;
 * DURA_ENOMEM.
 */
DURA_EXTERN(int) dura_workflow_set_start(dura_workflow *wf, const char *node);

/**
 * Flow control: at most max_running runs of this workflow execute at once
 * across every worker of the store, and at most max_per_key of those with
 * the same concurrency key (dura_run_options.concurrency_key; runs without
 * a key count only toward max_running). 0: no limit (the default); each
 * from 0 to 1000000. A run counts from its claim by a worker until its
 * lease ends (released, or expired after a worker died): the store counts
 * live leases and takes its claims atomically (dura_store_claim), so the
 * limit holds for any number of worker processes on any number of
 * machines, given that they all register the workflow with the same
 * limits. dura_run_execute called by hand takes no lease and is not
 * limited. A store without flow control (an external store of contract
 * version 3 or older) makes dura_worker_start fail with DURA_ENOTSUP.
 * Errors: DURA_EINVAL for a NULL workflow or a limit out of range.
 */
DURA_EXTERN(int) dura_workflow_set_concurrency(dura_workflow *wf, int max_running, int max_per_key);

/**
 * Give the workflow a version: 1 to DURA_MAX_VERSION_LEN bytes of
 * [A-Za-z0-9._-] ("2", "2026-12-01", "v2.1"). Without one, the version is
 * a fingerprint of the workflow's shape - its start node, node names,
 * edges and node options - so a deploy that changes the shape is a new
 * version by itself, and one that changes only a node's body is not.
 * Errors: DURA_EINVAL for a NULL workflow or a bad version.
 */
DURA_EXTERN(int) dura_workflow_set_version(dura_workflow *wf, const char *version);

/** The workflow's version: the one given, or its fingerprint ("f" and 15
 *  hex digits); the workflow's string. NULL for a NULL workflow. */
DURA_EXTERN(const char *) dura_workflow_version(dura_workflow *wf);

/**
 * How long this workflow's runs stay after they end (Retention, above);
 * workers serving the workflow apply it. NULL or all zero: forever (the
 * default). Errors: DURA_EINVAL for a NULL workflow, a negative time or
 * another struct version.
 */
DURA_EXTERN(int) dura_workflow_set_retention(dura_workflow *wf, const dura_retention *policy);

/** Replace the reducer (default: dura_reducer_replace). */
DURA_EXTERN(int) dura_workflow_set_reducer(dura_workflow *wf, dura_reducer_fn fn, void *payload);

/** The delta becomes the whole state. */
DURA_EXTERN(int) dura_reducer_replace(json_t *state, json_t *delta, void *payload);
/** RFC 7386 JSON merge patch of the delta into the state. */
DURA_EXTERN(int) dura_reducer_merge_patch(json_t *state, json_t *delta, void *payload);

#define DURA_ENGINE_OPTIONS_VERSION 1
typedef struct dura_engine_options {
	unsigned version;
	int64_t max_steps;             /**< per dura_run_execute call, 0: unlimited */
	int auto_pause_after_failures; /**< pause a run after N failed attempts in a row, 0: never */
	int64_t run_timeout_ms;        /**< wall-clock budget of a run from its creation, 0: none */
} dura_engine_options;
#define DURA_ENGINE_OPTIONS_INIT {DURA_ENGINE_OPTIONS_VERSION, 0, 0, 0}

/** An engine on a store (borrowed: close the engine before the store). */
DURA_EXTERN(int) dura_engine_open(dura_engine **out, dura_store *store, const dura_engine_options *opts);
/** Free the engine and the workflows registered with it; the store stays
 *  open. No thread may be using the engine. NULL is ignored. */
DURA_EXTERN(void) dura_engine_close(dura_engine *eng);

/**
 * Validate and register a workflow; the engine owns it afterwards (also on
 * failure). A missing start node, an edge to an unknown node or a name and
 * version already registered fail with a message naming it. Several
 * versions of one workflow may be registered (dura_workflow_set_version):
 * new runs start on the one registered last, and runs of each execute on
 * their own. The definition of the version is written to the store
 * (dura_store_workflow_list), so a store error fails the registration.
 */
DURA_EXTERN(int) dura_engine_register(dura_engine *eng, dura_workflow *wf);

#define DURA_RUN_OPTIONS_VERSION 3 /* 1 ends at meta, 2 at concurrency_key */
typedef struct dura_run_options {
	unsigned version;
	int64_t start_at;  /**< not runnable before this time (ms), 0: now */
	const char *meta;  /**< JSON metadata, or NULL */
	/* version 2 */
	int priority;      /**< workers claim higher priority first, then the earliest due;
	                        DURA_PRIORITY_MIN to DURA_PRIORITY_MAX, 0 default */
	const char *concurrency_key; /**< NULL or "": none. Runs of the workflow with the same key
	                                  execute at most max_per_key at once (dura_workflow_set_concurrency);
	                                  at most DURA_MAX_ID_LEN bytes, UTF-8 */
	/* version 3 */
	const char *workflow_version; /**< NULL: the version registered last; else one registered */
} dura_run_options;
#define DURA_RUN_OPTIONS_INIT {DURA_RUN_OPTIONS_VERSION, 0, 0, 0, 0, 0}
#define DURA_PRIORITY_MIN (-1000000)
#define DURA_PRIORITY_MAX 1000000

/**
 * Start a run of a registered workflow with an initial state (JSON text,
 * NULL: {}). With a foreign id, a second start while a run is active
 * writes the active run's id and returns DURA_EEXISTS.
 */
DURA_EXTERN(int) dura_run_start(dura_engine *eng, const char *workflow, const char *foreign_id, const char *state,
                                const dura_run_options *opts, char run_id[DURA_UUID_LEN + 1]);

/**
 * Execute a run in the calling thread until it completes, fails, is paused
 * or cancelled, or max_steps is reached. Resumes after a crash at the first
 * uncommitted node. The thread also waits out retry backoffs and a delayed
 * start, reading the run every 100 ms so that a pause or cancel stops it.
 * A pause or cancel that arrives while a node runs takes effect when the
 * node returns: its step (or its failed attempt) is committed, then the
 * call returns. Returns 0 when it stopped for any of those reasons (*out,
 * when not NULL, gets the record: look at run_state), DURA_ECONFLICT when
 * another executor moved the run on, or another error of the store.
 */
DURA_EXTERN(int) dura_run_execute(dura_engine *eng, const char *run_id, dura_record **out);

/**
 * Pause a run (from initiated or running). An executor of the run stops
 * after the node it is running has committed; dura_run_resume continues.
 * Errors as for dura_store_set_run_state: DURA_ECONFLICT from any other
 * state (nothing changes), DURA_ENOTFOUND for no such run, DURA_EINVAL for
 * a NULL engine.
 */
DURA_EXTERN(int) dura_run_pause(dura_engine *eng, const char *run_id);
/** Resume a paused run, or retry a failed one from its failed node. */
DURA_EXTERN(int) dura_run_resume(dura_engine *eng, const char *run_id);
/**
 * Cancel a run (from initiated, running, paused or failed); final. An
 * executor stops as for a pause. Errors as for dura_run_pause. Then its
 * unfinished children (dura_ctx_start_child) are cancelled, and theirs,
 * depth first; cancelling a run that is already cancelled cancels the
 * children still unfinished (after a crash in between) and returns 0.
 * A cancelled child wakes a parent that awaits it.
 */
DURA_EXTERN(int) dura_run_cancel(dura_engine *eng, const char *run_id);

/** What dura_run_await waits for: any field left 0/NULL is not checked. */
typedef struct dura_await_cond {
	int run_state;      /**< wait for this run state */
	const char *status; /**< or for this current node */
	int any_end;        /**< or for any final state (completed, failed, cancelled, data_deleted) */
} dura_await_cond;

/**
 * Wait until the run matches cond or timeout_ms passes (DURA_ETIMEOUT).
 * Uses the store's notifications when it has them, else polls with backoff.
 */
DURA_EXTERN(int) dura_run_await(dura_engine *eng, const char *run_id, const dura_await_cond *cond, int64_t timeout_ms,
                                dura_record **out);

/**
 * Save a named checkpoint of a run's committed state: the state after its
 * last committed step, which is the checkpoint's step (DURA_EINVAL when
 * the run has no committed step yet). Saving an existing name overwrites.
 */
DURA_EXTERN(int) dura_run_checkpoint(dura_engine *eng, const char *run_id, const char *checkpoint_id);

/**
 * Start a new run from a checkpoint (checkpoint_id not NULL) or from step
 * `step` of run `run_id`: the new run has that state and continues with the
 * node that followed. The new run id is written to new_run_id.
 */
DURA_EXTERN(int) dura_run_fork(dura_engine *eng, const char *run_id, const char *checkpoint_id, int64_t step,
                               char new_run_id[DURA_UUID_LEN + 1]);

/* ---- inside a node -------------------------------------------------------- */

/** The run's id; the engine's string, valid during the node call (NULL ctx: NULL). */
DURA_EXTERN(const char *) dura_ctx_run_id(const dura_ctx *ctx);
/** The name of the node being run; valid during the node call (NULL ctx: NULL). */
DURA_EXTERN(const char *) dura_ctx_node(const dura_ctx *ctx);
/** The step number this node's commit will have: the run's committed steps so far (NULL ctx: -1). */
DURA_EXTERN(int64_t) dura_ctx_step(const dura_ctx *ctx);
/** Attempt number of this node, from 1. */
DURA_EXTERN(int) dura_ctx_attempt(const dura_ctx *ctx);
/** The attempt's deadline in ms (0: none). */
DURA_EXTERN(int64_t) dura_ctx_deadline(const dura_ctx *ctx);
/** 1 once the deadline or the run's budget has passed: stop early. */
DURA_EXTERN(int) dura_ctx_canceled(const dura_ctx *ctx);
/** Go to `node` next instead of the static edge (NULL or "": end the run). */
DURA_EXTERN(int) dura_ctx_goto(dura_ctx *ctx, const char *node);
/** Hand a delta to the reducer (the ctx takes the reference). */
DURA_EXTERN(int) dura_ctx_set_delta(dura_ctx *ctx, json_t *delta);
/** Record why this attempt failed; returns code for `return dura_ctx_fail(...)`. */
DURA_EXTERN(int) dura_ctx_fail(dura_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
/** The engine's store, for the step cache and other store calls. */
DURA_EXTERN(dura_store *) dura_ctx_store(const dura_ctx *ctx);

/*
 * Durable waiting inside a node. A run that waits holds no thread and no
 * lease: the node ends, the run is committed with what it waits for
 * (dura_record.wait) and any worker, on any machine, after any restart,
 * resumes it when that happens. A node that waits for a signal or a child
 * runs again from its start when it resumes: the work before the wait is
 * done again unless the node caches it (dura_cache_do) or moves it to an
 * earlier node. docs/waiting.md has the whole story.
 */

/**
 * Once this node's step is committed, the run is not runnable for ms
 * milliseconds (0 to 100 years): a worker, or a later dura_run_execute,
 * continues with the next node when it is due. A paused run stays paused
 * past its wake-up time; a cancelled one never wakes. DURA_EINVAL for a
 * negative ms.
 */
DURA_EXTERN(int) dura_ctx_sleep(dura_ctx *ctx, int64_t ms);

/**
 * Receive the oldest pending signal named `name` sent to this run
 * (dura_run_signal). If there is one, *json gets its payload (free it
 * with dura_free) and the signal is consumed by this node's step commit:
 * exactly once, even with racing workers and crashes - if the node fails
 * or its commit is lost, the signal stays in the inbox. One signal per
 * node attempt: a second call is DURA_EINVAL.
 *
 * If there is none, it returns DURA_WAITING and the node must return that
 * code: the run waits without a thread until a signal of that name
 * arrives, and the node then runs again from its start. timeout_ms < 0
 * waits forever; otherwise, when timeout_ms has passed since the wait
 * began with no signal, the call (in the node's run after the deadline)
 * returns DURA_ETIMEOUT, and the node decides what follows.
 */
DURA_EXTERN(int) dura_ctx_wait_signal(dura_ctx *ctx, const char *name, int64_t timeout_ms, char **json);

/**
 * Start a child run of `workflow` (registered in this engine) with
 * state_json (NULL: "{}"): its id goes to child_id. The id is derived from
 * this run, its step and the order of the call in the node, so a retry or
 * a resumed node starts no second child: it gets the same id back.
 * The child's parent_id is this run. Cancelling a run cancels its
 * unfinished children (dura_run_cancel).
 */
DURA_EXTERN(int) dura_ctx_start_child(dura_ctx *ctx, const char *workflow, const char *state_json,
                                      char child_id[DURA_UUID_LEN + 1]);

/**
 * Wait for a child of this run to end (completed, failed, cancelled):
 * 0 with the child's record in *child (when not NULL; free with
 * dura_record_free), or DURA_WAITING, which the node returns; the child's
 * end wakes this run and the node runs again. DURA_ENOTFOUND for no such
 * run, DURA_EINVAL for a run that is not this run's child.
 */
DURA_EXTERN(int) dura_ctx_await_child(dura_ctx *ctx, const char *child_id, dura_record **child);

/* ---- signals and schedules ------------------------------------------------ */

/**
 * Send a signal to a run (dura_store_signal_send): it is kept in the run's
 * inbox until a node's dura_ctx_wait_signal consumes it, so a signal sent
 * before the run waits is not lost. DURA_ENOTFOUND for an unknown run,
 * DURA_ECONFLICT for a run that has ended. Thread-safe.
 */
DURA_EXTERN(int) dura_run_signal(dura_engine *eng, const char *run_id, const char *name, const char *json);

/**
 * The same, to the active run (initiated, running or paused) of a workflow
 * with this foreign id: DURA_ENOTFOUND when there is none.
 */
DURA_EXTERN(int) dura_run_signal_foreign(dura_engine *eng, const char *workflow, const char *foreign_id,
                                         const char *name, const char *json);

/**
 * Create or replace a schedule (dura_store_schedule_set) for a workflow
 * registered in this engine (DURA_ENOTFOUND otherwise). Workers that
 * register the workflow fire each tick exactly once across all processes
 * and machines: the tick's run id is derived from the schedule's name and
 * the tick's time, so a tick fired twice creates one run.
 */
DURA_EXTERN(int) dura_schedule_set(dura_engine *eng, const dura_schedule_spec *spec);
DURA_EXTERN(int) dura_schedule_delete(dura_engine *eng, const char *name);
DURA_EXTERN(int) dura_schedule_list(dura_engine *eng, dura_schedules *out);

/* ---- outbox consumers ------------------------------------------------------ */

/** Handle one event; 0 acks it, anything else leaves it for the next poll. */
typedef int (*dura_event_fn)(const dura_event *ev, void *payload);

/**
 * Deliver pending events (oldest first, at most max, 0: all pending) to
 * handler, at least once: an event is acked only after the handler
 * returned 0. *delivered (may be NULL) gets the number acked.
 */
DURA_EXTERN(int) dura_outbox_consume(dura_engine *eng, dura_event_fn handler, void *payload, size_t max,
                                     size_t *delivered);

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A worker executes runs in threads of its own: it claims runnable runs
 * (running, due, lease free or expired) of the workflows it serves, in
 * batches, each under a lease (owner id + expiry) in the store, and runs
 * them through the engine's step loop. Any number of workers in any
 * number of processes on any number of machines may share one store; the
 * store is the only coordinator.
 *
 *   - Fencing: claiming bumps a run's version, and every commit is a
 *     compare-and-swap on it, so a worker that lost its lease (stopped,
 *     partitioned, too slow) can never commit again: its commit gets
 *     DURA_ECONFLICT and it abandons the run without retrying the step.
 *   - Heartbeats: a thread of the worker extends every lease it holds
 *     every heartbeat_ms, in one store call (dura_store_extend_leases). A
 *     lease reported lost makes the worker drop the run after the node
 *     that runs.
 *   - Rescue: a dead worker's leases run out after at most lease_ms; the
 *     other workers claim its runs on their next poll, so they run again
 *     within lease_ms + poll_ms (3.5 s with the defaults). Each step
 *     committed before the death stays committed exactly once; a node that
 *     was running when the worker died runs again (at-least-once; use the
 *     step cache for exactly-once side effects).
 *   - Wake-ups: a worker with nothing to claim polls, backing off from
 *     1 ms to poll_ms; a run started, resumed or forked through an engine
 *     of this process on the same store handle wakes it at once. A run
 *     waiting for a retry's backoff holds no thread and no lease: it is
 *     released and claimed again when due.
 *   - A busy store (SQLite's write lock held by another process) is waited
 *     out with a jittered, growing pause, never turned into a failed run.
 */
typedef struct dura_worker dura_worker;

#define DURA_WORKER_MAX_THREADS 256
#define DURA_WORKER_MIN_LEASE_MS 50

#define DURA_WORKER_OPTIONS_VERSION 2 /* 1 is accepted: it ends at group_commit */
typedef struct dura_worker_options {
	unsigned version;        /**< DURA_WORKER_OPTIONS_VERSION */
	int threads;             /**< executor threads, 1 to DURA_WORKER_MAX_THREADS (default 1) */
	int64_t lease_ms;        /**< a lease's life without a heartbeat, at least DURA_WORKER_MIN_LEASE_MS
	                              (default 3000): a dead worker's runs are claimable again after it */
	int64_t heartbeat_ms;    /**< how often leases are extended; 0: lease_ms / 3. At most lease_ms / 2,
	                              so that one failed heartbeat does not lose the leases */
	int64_t poll_ms;         /**< the longest pause between two claims when there is nothing to claim,
	                              1 to 60000 (default 500) */
	int batch;               /**< runs claimed at most per claim, 0: threads; at most 1000 */
	const char *const *workflows; /**< the workflows to serve (names registered in the engine); NULL: all
	                                   registered when the worker starts */
	size_t nworkflows;       /**< entries in workflows, at most 256 */
	const char *name;        /**< display name (logs, dura_worker_id), NULL: "worker"; at most 64 bytes */
	int group_commit;        /**< 1: when several threads have a step ready, one transaction
	                              (commit_batch) commits them all, each still CAS-checked on its own;
	                              -1: each commit alone; 0 (default): on for SQLite, PostgreSQL and
	                              MySQL/MariaDB, where a batch is one transaction of a few statements
	                              (measured against off at 8 and 32 threads: SQLite 1.5x to 3.2x the
	                              steps/s, PostgreSQL 0.9x to 6.8x, MariaDB 0.8x to 1.8x), off on memory */
	/* version 2 */
	int64_t retention_ms;    /**< how often the worker applies retention (the policies of the workflows
	                              it serves, expired cache entries, the outbox), in batches of
	                              DURA_RETENTION_BATCH runs, the first pass this long after the
	                              start; 0: every 60 s; -1: never */
	int64_t outbox_keep_ms;  /**< outbox events older than this are deleted, delivered or not;
	                              0: 7 days; -1: kept until acknowledged */
} dura_worker_options;
#define DURA_WORKER_OPTIONS_INIT {DURA_WORKER_OPTIONS_VERSION, 1, 3000, 0, 500, 0, NULL, 0, NULL, 0, 0, 0}
#define DURA_RETENTION_BATCH 500

/** What a worker did so far (counters since start) and holds now. */
typedef struct dura_worker_stats {
	uint64_t claimed;    /**< runs claimed (each claim of a run counts once) */
	uint64_t completed;  /**< runs this worker brought to completed */
	uint64_t failed;     /**< runs this worker brought to failed (their node gave up) */
	uint64_t rescued;    /**< runs taken over from another worker whose lease lapsed without a release
	                          (it died, hung or lost the store): exact, told by the store's claim
	                          (dura_claim.taken_over). A run released by a worker that stopped is
	                          not a rescue. 0 on an external store of contract version 3 or older */
	uint64_t abandoned;  /**< runs given up because the lease was lost (DURA_ECONFLICT or a heartbeat's report) */
	uint64_t errors;     /**< store errors (other than busy) while claiming, executing, releasing or
	                          writing the worker registry */
	uint64_t heartbeats; /**< heartbeat calls that reached the store */
	uint64_t held;       /**< runs leased now (queued or executing) */
	uint64_t group_batches; /**< group commit: commit_batch calls of more than one commit */
	uint64_t group_commits; /**< group commit: commits written in those */
	uint64_t ticks_fired;   /**< schedule ticks whose run this worker created (dura_schedule_set) */
	uint64_t pruned;        /**< runs, outbox events and cache entries this worker's retention deleted */
} dura_worker_stats;

/**
 * Start a worker on an engine whose workflows are registered (register
 * them all first; the engine and its store must outlive the worker).
 * opts may be NULL for the defaults. *out gets the handle, which
 * dura_worker_stop stops and frees.
 *
 * The worker writes its row in the store's worker registry (see "The
 * worker registry" below) before it starts claiming, and prunes the rows
 * of workers dead for over DURA_WORKER_PRUNE_MS. A store that fails the
 * write does not stop the worker: the failure is counted in its errors
 * and the heartbeat writes the row again; a store without a registry is
 * not asked again.
 *
 * Errors, with nothing started and *out NULL: DURA_EINVAL for a NULL out
 * or engine, an option out of range (threads, lease_ms, heartbeat_ms,
 * poll_ms, batch, nworkflows, a NULL or over-long workflow name or
 * name), or an engine without workflows; DURA_EVERSION for an unknown
 * opts->version; DURA_ENOTFOUND for a workflow that is not registered
 * in the engine; DURA_ENOTSUP when a workflow has flow limits
 * (dura_workflow_set_concurrency) and the store has no flow control (an
 * external store of contract version 3 or older); DURA_ENOMEM;
 * DURA_ERROR when a thread cannot be started.
 *
 * Thread-safety: the handle may be used from any thread (stats, id); stop
 * it from one thread only. Fork: the worker's threads do not exist in a
 * forked child; there an inherited handle is not a running worker
 * (dura_worker_stop returns DURA_EINVAL and frees nothing). A child may
 * start workers of its own; their ids never repeat the parent's.
 */
DURA_EXTERN(int) dura_worker_start(dura_worker **out, dura_engine *eng, const dura_worker_options *opts);

/**
 * Stop a worker and free it, deleting its row from the worker registry
 * (one left behind by a failing store shows it dead after its lease, and
 * is pruned later). It stops claiming at once and releases the
 * runs it claimed but has not begun; nodes that are running may finish
 * until drain_ms has passed (negative: no limit), and their steps are
 * committed; then each run is released where it stands, and a run not
 * finished is runnable for other workers at once. A node still running
 * at drain_ms loses its lease then (it is released, so another worker can
 * take the run over); the call still waits for that node to return, and
 * its commit lands only if no other worker moved the run on meanwhile.
 *
 * Returns 0, or DURA_ETIMEOUT when nodes were still running at drain_ms
 * (the worker is stopped and freed all the same). DURA_EINVAL, and
 * nothing happens, for NULL or a handle that is not a running worker of
 * this process - one already stopped (as long as its memory has not been
 * reused by a newer worker: do not rely on it) or inherited across fork -
 * and when called from inside a node the worker runs (it would wait for
 * itself).
 */
DURA_EXTERN(int) dura_worker_stop(dura_worker *w, int64_t drain_ms);

/** Fill *out with the worker's counters. DURA_EINVAL for NULL arguments. Thread-safe. */
DURA_EXTERN(int) dura_worker_stats_get(dura_worker *w, dura_worker_stats *out);

/**
 * The worker's lease owner id, "HOST:PID:UUID" (HOST cut at 64 bytes): the
 * UUIDv7 makes it unique per worker, across processes, forks and
 * machines; host and pid are there for people reading it. The string
 * belongs to the worker (valid until dura_worker_stop). NULL for NULL.
 */
DURA_EXTERN(const char *) dura_worker_id(const dura_worker *w);

/** The worker's display name (opts->name, or "worker"). NULL for NULL. */
DURA_EXTERN(const char *) dura_worker_name(const dura_worker *w);

/* ------------------------------------------------------------------------ */
/* The worker registry                                                       */
/* ------------------------------------------------------------------------ */

/*
 * A store of contract version 4 may keep a registry of live workers (the
 * <prefix>dura_workers table of the SQL stores; a table in memory for the
 * memory store). A worker writes its row when it starts, rewrites it with
 * its heartbeat (one store call per heartbeat period, whatever it holds)
 * and deletes it when dura_worker_stop stops it. A worker that stops
 * heartbeating (killed, frozen, cut off) keeps its row, shown as dead once
 * its last heartbeat is older than its lease; a worker prunes the rows
 * dead for more than DURA_WORKER_PRUNE_MS when it registers, and
 * dura_store_prune_workers (`dura workers --prune`) prunes on demand. A
 * store without a registry answers DURA_ENOTSUP; its workers run all the
 * same, unlisted.
 */

#define DURA_WORKER_PRUNE_MS 3600000 /**< a registering worker prunes rows dead for longer (an hour) */

/** One registered worker. Times are ms since the epoch (UTC), stamped by the store's clock. */
typedef struct dura_worker_info {
	char *id;             /**< the worker's id (dura_worker_id), at most DURA_MAX_ID_LEN bytes */
	char *name;           /**< its display name (dura_worker_name) */
	char *host;           /**< the host it runs on */
	int64_t pid;          /**< its process id there */
	int threads;          /**< its executor threads */
	int64_t lease_ms;     /**< its lease: a heartbeat older than this means it is dead */
	char *workflows;      /**< the workflow versions it serves, a JSON array of
	                           {"workflow":NAME,"version":VERSION} (a worker from before versions
	                           wrote names alone) */
	int64_t held;         /**< runs it held at its last heartbeat */
	int64_t started_at;   /**< when it registered */
	int64_t heartbeat_at; /**< its last heartbeat */
	int64_t dead_after;   /**< heartbeat_at + lease_ms */
	int dead;             /**< 1 when dead_after <= the list's now: no heartbeat within its lease */
} dura_worker_info;

typedef struct dura_worker_list {
	size_t count;
	dura_worker_info *items; /**< oldest start first, then by id */
	int64_t now;             /**< the store's clock when it listed, which `dead` was judged against */
} dura_worker_list;

/** Free a list's workers and zero the list (not the struct itself); NULL is ignored. */
DURA_EXTERN(void) dura_worker_list_free(dura_worker_list *list);

/**
 * The workers registered in the store, live and dead: each item's dead is
 * 1 when its last heartbeat is older than its lease, judged against the
 * store's clock at the list (out->now; for every built-in store, the wall
 * clock of this process, as for leases: machines sharing a store need
 * clocks that agree well within a lease). Free with dura_worker_list_free.
 * Errors: DURA_EINVAL for a NULL store or out, DURA_ENOTSUP when the store
 * keeps no registry (contract version 3 or older, or an external store
 * without it), or an error of the store. Thread-safe.
 */
DURA_EXTERN(int) dura_store_list_workers(dura_store *store, dura_worker_list *out);

/**
 * Write a worker's row (insert or replace it, by w->id): name, host, pid,
 * threads, lease_ms, workflows and held from w; the store stamps
 * heartbeat_at with its clock, dead_after as heartbeat_at + lease_ms, and
 * started_at on insert only (w's times and dead are ignored). A worker
 * calls it when it starts and on every heartbeat; exposed for tools and
 * tests. Errors: DURA_EINVAL for a NULL store or w, an id that is empty or
 * longer than DURA_MAX_ID_LEN, a name or host longer than
 * DURA_MAX_ID_LEN, text that is not UTF-8, workflows that are not a JSON
 * array of strings, a negative pid or held, threads outside 1 to
 * DURA_WORKER_MAX_THREADS, lease_ms outside DURA_WORKER_MIN_LEASE_MS to
 * 86400000; DURA_ENOTSUP without a registry; or an error of the store.
 * Thread-safe.
 */
DURA_EXTERN(int) dura_store_put_worker(dura_store *store, const dura_worker_info *w);

/** Delete a worker's row; DURA_ENOTFOUND when there is none, DURA_EINVAL
 *  for a bad id, DURA_ENOTSUP without a registry. Thread-safe. */
DURA_EXTERN(int) dura_store_delete_worker(dura_store *store, const char *worker_id);

/**
 * Delete the rows of workers dead for at least dead_for_ms (0: every dead
 * row; 0 to 31536000000): dead_after + dead_for_ms <= the store's now.
 * *count (may be NULL) gets how many went. Live rows are never deleted.
 * DURA_EINVAL for a bad argument, DURA_ENOTSUP without a registry.
 * Thread-safe.
 */
DURA_EXTERN(int) dura_store_prune_workers(dura_store *store, int64_t dead_for_ms, int64_t *count);

/* ------------------------------------------------------------------------ */
/* Step cache with single-flight                                             */
/* ------------------------------------------------------------------------ */

/** Where a cache key lives: one run only, or shared by all runs and processes. */
typedef enum { DURA_CACHE_SCOPE_RUN = 0, DURA_CACHE_SCOPE_GLOBAL = 1 } dura_cache_scope;

/** What a computation hands back: bytes, and optional metadata (JSON object). */
typedef struct dura_cache_value {
	unsigned char *data; /**< set with dura_cache_value_set */
	size_t len;
	char *metadata;
} dura_cache_value;

/** Copy bytes (and optional metadata JSON) into a computation's result. */
DURA_EXTERN(int) dura_cache_value_set(dura_cache_value *v, const void *data, size_t len, const char *metadata);

/**
 * Compute a value for the cache. Return 0 after dura_cache_value_set, or a
 * negative code (dura_error_set() gives it a message) when it failed.
 */
typedef int (*dura_compute_fn)(dura_cache_value *out, void *payload);

#define DURA_CACHE_OPTIONS_VERSION 1
typedef struct dura_cache_options {
	unsigned version;
	int64_t ttl_ms;          /**< 0: never expires */
	int scope;               /**< dura_cache_scope */
	const char *run_id;      /**< the run, for DURA_CACHE_SCOPE_RUN */
	int64_t lease_ms;        /**< a claim's life without a heartbeat, 0: 2000 (see below) */
	int64_t wait_timeout_ms; /**< how long a waiter waits, 0: 60000 */
	int64_t error_ttl_ms;    /**< > 0: cache a failure's text for this long */
} dura_cache_options;
#define DURA_CACHE_OPTIONS_INIT {DURA_CACHE_OPTIONS_VERSION, 0, DURA_CACHE_SCOPE_GLOBAL, 0, 0, 0, 0}

/**
 * The cached value of `key`, computed exactly once across threads,
 * processes and machines sharing the store: a hit returns at once; on a
 * miss one caller claims the key (a lease) and computes, the others wait
 * for its value. While the claimer computes, a thread of its own renews
 * the claim every lease_ms/2, so a computation may take far longer than
 * the lease; a claimer that dies is replaced once its lease runs out,
 * within lease_ms (two heartbeat intervals) plus one waiter's poll (at
 * most 50 ms). Waiters give up with DURA_ETIMEOUT after wait_timeout_ms.
 * Safe in a process that forks (see dura_store_open). A failed computation is not cached
 * unless error_ttl_ms is set; a cached failure is returned as DURA_ERROR
 * with the entry (its error field set). *value is freed with
 * dura_cache_entry_free.
 */
DURA_EXTERN(int) dura_cache_do_store(dura_store *store, const char *key, const dura_cache_options *opts,
                                     dura_compute_fn fn, void *payload, dura_cache_entry **value);

/** dura_cache_do_store from inside a node: the run scope is the node's run. */
DURA_EXTERN(int) dura_cache_do(dura_ctx *ctx, const char *key, int64_t ttl_ms, dura_cache_scope scope,
                               dura_compute_fn fn, void *payload, dura_cache_entry **value);

/**
 * The key under which dura_cache_do stores `key` for a scope (and run), so
 * the plain operations - dura_store_cache_get, _put, _delete - reach the
 * same entry: "global:KEY" or "run:N:RUN_ID:KEY" (N the run id's length),
 * or a SHA-256 form when that
 * would exceed DURA_MAX_ID_LEN. Free with dura_free.
 */
DURA_EXTERN(int) dura_cache_scoped_key(char **out, const char *key, dura_cache_scope scope, const char *run_id);

/**
 * A stable key for a step and its inputs: "<step>:" followed by the
 * SHA-256 (hex) of the inputs as canonical JSON (sorted keys, compact), so
 * equal inputs give equal keys whatever their key order. Free with
 * dura_free.
 */
DURA_EXTERN(int) dura_cache_key(char **out, const char *step, const char *inputs_json);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Two kinds of figures describe a deployment. The store's are shared by
 * every process using it: runs per workflow and run state
 * (dura_store_run_counts), waiting, due and leased runs and the outbox
 * backlog (dura_store_gauges_get), cache entries (dura_store_cache_stats)
 * and live workers (dura_store_list_workers). A process's are counted in
 * that process by everything libdura does there, whatever store and
 * engine: the counters below, kept with atomics (thread-safe, lock-free).
 * A child of fork() starts with its parent's counts at the fork; counters
 * only grow, so a scraper sees each process as its own series.
 */

/** The upper bounds, in microseconds, of the commit latency histogram's
 *  buckets (the last bucket, +Inf, is count). */
#define DURA_METRICS_LATENCY_BOUNDS_US                                                               \
	{250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000}
#define DURA_METRICS_LATENCY_BUCKETS 14

#define DURA_METRICS_VERSION 1
/** This process's counters since it started (dura_metrics_get). */
typedef struct dura_metrics {
	unsigned version;           /**< DURA_METRICS_VERSION (set by the caller) */
	uint64_t commits;           /**< successful store commits, record-only ones included */
	uint64_t steps_committed;   /**< successful commits that wrote a step row */
	uint64_t commit_conflicts;  /**< commits refused with DURA_ECONFLICT (a stale version: fencing) */
	uint64_t commit_errors;     /**< commits that failed otherwise */
	/** commits (successful or not) whose store call took at most
	 *  DURA_METRICS_LATENCY_BOUNDS_US[i]: cumulative, as Prometheus
	 *  histograms are; a commit of a group commit counts its batch's time */
	uint64_t commit_latency_le[DURA_METRICS_LATENCY_BUCKETS];
	uint64_t commit_latency_count;  /**< every commit timed */
	uint64_t commit_latency_sum_us; /**< their total time */
	uint64_t failed_attempts;   /**< node attempts that failed (retried, paused or failing the run) */
	uint64_t cache_hits;        /**< dura_store_cache_get hits, every store handle of the process */
	uint64_t cache_misses;      /**< and misses (an expired entry is a miss) */
	uint64_t runs_claimed;      /**< runs workers of this process claimed */
	uint64_t lease_rescues;     /**< runs they took over from a worker whose lease lapsed */
	uint64_t runs_completed;    /**< runs workers of this process brought to completed */
	uint64_t runs_failed;       /**< and to failed */
} dura_metrics;
#define DURA_METRICS_INIT {DURA_METRICS_VERSION, 0, 0, 0, 0, {0}, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/** Read this process's counters into *out (whose version the caller set).
 *  DURA_EINVAL for NULL, DURA_EVERSION for an unknown version. */
DURA_EXTERN(int) dura_metrics_get(dura_metrics *out);

/**
 * The Prometheus text exposition format (version 0.0.4) of this process's
 * counters and, when store is not NULL, the store's figures (each read
 * once; a figure the store does not keep - an older external store, a
 * store without a worker registry - is left out, and dura_store_up says
 * whether the store answered at all). *out is NUL-terminated, freed with
 * dura_free. What it names, with the labels, is in docs/metrics.md: a
 * worker program serves this text on its own HTTP endpoint to be scraped
 * like `dura serve`'s /metrics. Thread-safe.
 */
DURA_EXTERN(int) dura_metrics_format(dura_store *store, char **out);

#ifdef __cplusplus
}
#endif
#endif /* DURA_H */
