/*
 * dura/store.h - the store contract, for store authors.
 *
 * A store is a versioned table of operations (like libgit2's backends and
 * SQLite's VFS). The core checks the version, validates every argument
 * before calling a store (ids non-empty and at most DURA_MAX_ID_LEN bytes,
 * JSON well formed, a URL's prefix made of [A-Za-z0-9_], plus ':' for a
 * store whose prefix names keys rather than tables) and keeps per-handle
 * counters, so a store only does storage. New operations are only ever
 * appended, and the version bumped.
 *
 * Every operation gets the store's own handle (`impl`, from open) and
 * returns 0 or a DURA_E* code after dura_error_set_native(). Returned objects are
 * allocated with dura_malloc and friends; the caller frees them with the
 * public *_free functions.
 *
 * Thread-safety: the core calls every operation from any thread at any
 * time, concurrently; a store must be thread-safe.
 *
 * Fork: the core makes fork() wait until no store call is in flight, then
 * calls atfork_child in the child, so a handle opened before fork() keeps
 * working in both processes.
 */
#ifndef DURA_STORE_H
#define DURA_STORE_H

#include "../dura.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1: the first contract; 2: atfork_child; 3: extend_leases, wait_ready;
 * 4: claim (flow control and priority), run priority and concurrency key,
 * the worker registry; 5: durable waiting (a run's wait and parent,
 * signals, wakes, schedules); 6: workflow versions and retention; 7: import
 * (moving runs between stores); 8: gauges (dura_store_gauges_get) and the
 * run filter's due. A store may
 * implement any version up to this one; the core reads only the operations
 * its version has. */
#define DURA_STORE_ABI_VERSION 8

/** Parsed store URL. Strings are owned by the core; "" when absent. */
typedef struct dura_url {
	const char *scheme;   /**< "memory", "sqlite", "postgres", "mysql", "redis" */
	const char *raw;      /**< the URL as given: may contain a password, never print it */
	const char *redacted; /**< the URL with the password replaced by "***" */
	const char *user;
	const char *password;
	const char *host;
	int port;             /**< 0: the scheme's default */
	const char *socket;   /**< unix socket path (mysql DSN unix(...)), or "" */
	const char *database; /**< database name, or SQLite file path */
	int tls;              /**< rediss:// or a tls/sslmode option asked for TLS */
	const char *prefix;   /**< table or key prefix, validated */
	int pool_max;         /**< 0: store default */
	int pool_idle;        /**< -1: store default */
	int64_t conn_lifetime_ms;
	int64_t conn_idle_ms;
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	size_t nparams; /**< every query parameter, including the ones above */
	const char *const *param_names;
	const char *const *param_values;
	/** max_state and max_value (bytes; 0: not given). The core enforces
	 *  them for every store: a store lists them among its known options
	 *  and does nothing else with them. */
	size_t max_state_bytes;
	size_t max_value_bytes;
} dura_url;

/** Value of query parameter `name`, or NULL. */
DURA_EXTERN(const char *) dura_url_param(const dura_url *url, const char *name);

/**
 * Parse a store URL. DURA_EINVAL names the malformed part. Free with
 * dura_url_free. Exposed for store authors and tests.
 */
DURA_EXTERN(int) dura_url_parse(dura_url **out, const char *url);
DURA_EXTERN(void) dura_url_free(dura_url *url);

typedef struct dura_store_ops dura_store_ops;

struct dura_store_ops {
	/* Every operation is REQUIRED unless marked optional: the core refuses
	 * (DURA_EINVAL, naming it) a table that lacks one. The exact behaviour
	 * each owes is in docs/store-contract.md; the conformance suite checks
	 * it. The core has validated every argument before the call. */
	unsigned version; /**< DURA_STORE_ABI_VERSION it was written for (1 to 8) */
	const char *scheme; /**< the URL scheme it serves, lower case */
	uint32_t caps;      /**< static capabilities; info may report more */

	/* lifecycle */
	/** Connect (or open the file), check the schema, migrate when
	 *  opts->auto_migrate; *impl is the handle every other call gets. */
	int (*open)(void **impl, const dura_url *url, const dura_store_options *opts);
	/** Free everything open made; never fails. */
	void (*close)(void *impl);
	/** One round trip to the server (or a read of the file). */
	int (*ping)(void *impl);
	/** server_version, schema versions, caps, notes (the core adds scheme and location). */
	int (*info)(void *impl, dura_store_info *out);
	/** Pool numbers (the core adds commits and conflicts). */
	int (*stats)(void *impl, dura_store_stats *out);
	/** Create or upgrade the schema; *from and *to are the versions; idempotent. */
	int (*migrate)(void *impl, int *from, int *to);

	/* runs */
	/** Insert a run with run_id; DURA_EEXISTS (and *out the active one) for a
	 *  workflow + foreign id that has an active run. */
	int (*create_run)(void *impl, const dura_run_create *req, const char *run_id, dura_record **out);
	/** The run, or DURA_ENOTFOUND. */
	int (*get_run)(void *impl, const char *run_id, dura_record **out);
	/** The newest run of workflow + foreign id, or DURA_ENOTFOUND. */
	int (*latest_run)(void *impl, const char *workflow_name, const char *foreign_id, dura_record **out);
	/** Runs newest first, filtered, keyset-paginated on run_id. */
	int (*list_runs)(void *impl, const dura_run_filter *filter, dura_record_list *out);
	/** Pause, resume, cancel... along the allowed transitions, else DURA_ECONFLICT. */
	int (*set_run_state)(void *impl, const char *run_id, int to, int64_t *new_version);
	/** Erase a final run's steps, checkpoints and state; DURA_ECONFLICT while active. */
	int (*delete_run_data)(void *impl, const char *run_id);

	/* steps: event_id is a fresh UUIDv7 per commit for the outbox row ("" with DURA_COMMIT_NO_EVENT) */
	/** The atomic step commit: record + step + event, or nothing; CAS on
	 *  expect_version, DURA_ECONFLICT when stale. */
	int (*commit)(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res);
	/** n commits in one transaction, each CAS-checked on its own; res[i] for each. */
	int (*commit_batch)(void *impl, const dura_commit *c, const char *const *event_ids, size_t n, dura_commit_result *res);
	/** Steps with step >= from, in order, at most limit (0: all); an unknown run: none. */
	int (*history)(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out);
	/** One step, or DURA_ENOTFOUND. */
	int (*get_step)(void *impl, const char *run_id, int64_t step, dura_step **out);
	/** The last committed step, or DURA_ENOTFOUND. */
	int (*load_latest)(void *impl, const char *run_id, dura_step **out);

	/* checkpoints */
	/** Upsert by checkpoint id. */
	int (*checkpoint_save)(void *impl, const char *checkpoint_id, const char *run_id, int64_t step, const char *state);
	/** One checkpoint, or DURA_ENOTFOUND. */
	int (*checkpoint_load)(void *impl, const char *checkpoint_id, dura_checkpoint **out);
	/** Checkpoints of a run (all when run_id is NULL), newest first. */
	int (*checkpoint_list)(void *impl, const char *run_id, dura_checkpoint_list *out);
	/** Delete, or DURA_ENOTFOUND. */
	int (*checkpoint_delete)(void *impl, const char *checkpoint_id);

	/* cache */
	/** A live entry, or DURA_ENOTFOUND (absent or expired). */
	int (*cache_get)(void *impl, const char *key, dura_cache_entry **out);
	/** Upsert with TTL (0: none); also drops any claim on the key. */
	int (*cache_put)(void *impl, const char *key, const void *value, size_t value_len, const char *error,
	                 const char *metadata, int64_t ttl_ms);
	/** Single-flight claim: DURA_EEXISTS (a live value), DURA_EBUSY (another
	 *  owner holds it), else owner holds it for lease_ms; a claim by its
	 *  holder renews it. Atomic across processes. */
	int (*cache_claim)(void *impl, const char *key, const char *owner, int64_t lease_ms);
	/** Drop owner's claim, or DURA_ENOTFOUND. */
	int (*cache_release)(void *impl, const char *key, const char *owner);
	/** Delete an entry, or DURA_ENOTFOUND. */
	int (*cache_delete)(void *impl, const char *key);
	/** Delete expired entries; *count of them. */
	int (*cache_purge_expired)(void *impl, int64_t *count);
	/** Entries in key order after cursor, without their values. */
	int (*cache_list)(void *impl, const char *cursor, size_t limit, dura_cache_list *out);
	/** Entries, expired, bytes (the core adds hits and misses). */
	int (*cache_stats)(void *impl, dura_cache_stats *out); /* entries, expired, bytes */

	/* leases */
	/** Up to max runnable runs leased to owner (version + 1 each); never one run to two owners. */
	int (*claim_runs)(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
	                  int64_t lease_ms, dura_record_list *out);
	/** Extend owner's lease; DURA_ECONFLICT if not owner's, DURA_ENOTFOUND if no run. */
	int (*extend_lease)(void *impl, const char *run_id, const char *owner, int64_t lease_ms);
	/** Release owner's lease; the same checks. */
	int (*release_lease)(void *impl, const char *run_id, const char *owner);

	/* outbox */
	/** Oldest events first, at most limit. */
	int (*outbox_poll)(void *impl, size_t limit, dura_event_list *out);
	/** Delete an event, or DURA_ENOTFOUND. */
	int (*outbox_ack)(void *impl, const char *event_id);

	/* optional (NULL when absent) */
	/** Optional (DURA_CAP_SQL): raw SQL, rows to cb; cb returning non-zero stops, and the call returns 0. */
	int (*exec_sql)(void *impl, const char *sql, dura_row_cb cb, void *payload);
	/** Optional (DURA_CAP_NOTIFY): wait until the run's version differs from
	 *  `version`, or DURA_ETIMEOUT. Called without the fork guard: it may block. */
	int (*wait_change)(void *impl, const char *run_id, int64_t version, int64_t timeout_ms);

	/* version 2 */
	/**
	 * Optional. Called in a child process right after fork(), in its only thread,
	 * while no other store call is in flight (the core waited for them
	 * before forking). Drop what the child inherited and must not share
	 * with the parent - connections, sessions, sockets, prepared
	 * statements - without ending the parent's use of them (no goodbye on
	 * a shared socket, no checkpoint or rollback on a shared file), and
	 * make the handle usable again: the child's next call opens its own.
	 * NULL: the store has nothing to drop.
	 */
	void (*atfork_child)(void *impl);

	/* version 3 */
	/**
	 * Optional. A worker's heartbeat: extend owner's lease on each of the n
	 * runs (n >= 1, ids validated) to now + lease_ms, in one call - one
	 * transaction, one statement per batch where the store can. codes[i]
	 * gets 0 (extended), DURA_ECONFLICT (the run is not owner's now: taken
	 * over or released) or DURA_ENOTFOUND (no such run); leases of the
	 * others are extended all the same. Returns 0, or a store error when
	 * the call failed as a whole (then nothing is known; the core sets
	 * every code to it). NULL: the core calls extend_lease once per run.
	 */
	int (*extend_leases)(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
	                     int *codes);
	/**
	 * Optional (DURA_CAP_NOTIFY). A worker with nothing to claim waits
	 * here: until some run may have become claimable (created running,
	 * resumed, its lease released) or timeout_ms passed: 0 when woken,
	 * DURA_ETIMEOUT otherwise. A wake may be spurious: the caller claims to
	 * find out. Called without the fork guard: it may block. NULL: the
	 * worker polls.
	 */
	int (*wait_ready)(void *impl, int64_t timeout_ms);

	/* version 4 */
	/*
	 * From version 4 create_run gets a dura_run_create of version 2 and must
	 * keep priority and concurrency_key (the core passes "" for none), and
	 * every record returned carries them back.
	 */
	/**
	 * Optional. dura_store_claim: claim_runs with priority order (priority
	 * descending, then next_run_at, then run_id) and flow limits. The count
	 * of live leases (run_state running, lease_owner not "", lease not
	 * expired) per limited workflow and per (workflow, key) and the claim
	 * are one atomic step across processes: serialise limited claims (a
	 * lock row, the write lock). req->taken_over, when not NULL, gets 1 for
	 * each run whose previous lease_owner was not "" and not req->owner. The
	 * core has validated req (owner, names, limits 0 to 1000000, max 1 to
	 * 1000, lease_ms > 0). NULL: the core serves a claim without limits
	 * with claim_runs and refuses one with limits (DURA_ENOTSUP). A store
	 * with claim should order claim_runs by priority too.
	 */
	int (*claim)(void *impl, const dura_claim *req, dura_record_list *out);

	/* version 4: the worker registry */
	/**
	 * Optional, all four or none (the core refuses a table with some).
	 * worker_put: insert or replace the row of w->id with w's name, host,
	 * pid, threads, lease_ms, workflows and held; heartbeat_at = the
	 * store's now, dead_after = now + lease_ms, started_at = now on insert
	 * only (kept on replace). The core has validated w.
	 */
	int (*worker_put)(void *impl, const dura_worker_info *w);
	/** Delete the row of worker_id, or DURA_ENOTFOUND. */
	int (*worker_delete)(void *impl, const char *worker_id);
	/** Every row, oldest started_at first, then by id; out->now the
	 *  store's clock (0: the core takes its own). The core sets dead. */
	int (*worker_list)(void *impl, dura_worker_list *out);
	/** Delete the rows with dead_after + dead_for_ms <= now; *count of them. */
	int (*worker_prune)(void *impl, int64_t dead_for_ms, int64_t *count);

	/* version 5: durable waiting (docs/store-contract.md, "Waiting") */
	/*
	 * From version 5 every record carries wait and parent_id; create_run
	 * gets a dura_run_create of version 3 and keeps parent_id (""
	 * for none); list_runs gets a dura_run_filter of version 2 (parent_id,
	 * waiting); commit and commit_batch get dura_commit of version 2 and
	 * write c->wait ("" for NULL) with the record, delete c->signal_id
	 * (DURA_ECONFLICT and nothing written when it is not there) and wake
	 * c->wake_run_id as wake() does, in the commit's transaction;
	 * set_run_state to running keeps the next_run_at of a run whose wait
	 * is not "", and to cancelled wakes the parent that waits for it
	 * ("child:" + run_id); delete_run_data also deletes the run's signals.
	 * All nine operations are required from version 5.
	 */
	/** Insert the signal and wake the run if its wait is "signal:" + name,
	 *  atomically; DURA_ENOTFOUND (no run), DURA_ECONFLICT (run ended). */
	int (*signal_send)(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload);
	/** The run's oldest signal named name (smallest signal_id), or DURA_ENOTFOUND. */
	int (*signal_next)(void *impl, const char *run_id, const char *name, dura_signal **out);
	/** The run's signals, oldest first. */
	int (*signal_list)(void *impl, const char *run_id, dura_signal_list *out);
	/** If the run is running and its wait is `wait`: next_run_at = now,
	 *  version + 1, 0 (and a worker waiting in wait_ready is woken);
	 *  else DURA_ENOTFOUND. */
	int (*wake)(void *impl, const char *run_id, const char *wait);
	/** Insert or replace the schedule by name (created_at kept on replace;
	 *  the store sets created_at and updated_at). The core validated it. */
	int (*schedule_put)(void *impl, const dura_schedule *sch);
	/** One schedule, or DURA_ENOTFOUND. */
	int (*schedule_get)(void *impl, const char *name, dura_schedule **out);
	/** Delete, or DURA_ENOTFOUND. */
	int (*schedule_delete)(void *impl, const char *name);
	/** Every schedule by name. */
	int (*schedule_list)(void *impl, dura_schedules *out);
	/** next_tick = to if it is from: 0, DURA_ECONFLICT, DURA_ENOTFOUND. */
	int (*schedule_advance)(void *impl, const char *name, int64_t from, int64_t to);

	/* version 6: workflow versions and retention (docs/store-contract.md,
	 * "Versions and retention") */
	/*
	 * From version 6 every record carries workflow_version and every step
	 * its workflow_version ("" for none). create_run gets a dura_run_create
	 * of version 4 and keeps workflow_version; list_runs gets a
	 * dura_run_filter of version 3 (workflow_version: NULL any, else equal);
	 * commit and commit_batch get a dura_commit of version 3: the step row
	 * keeps c->workflow_version ("" for NULL), and a record whose
	 * workflow_version is "" takes it on when it is not ""; claim gets a
	 * dura_claim of version 2 and claims a run only when
	 * dura_claim_serves() says so - on a page of candidates, which then
	 * goes on to the next page as a claim with limits does, so that runs of
	 * versions not served never hide runs that are. All six operations are
	 * required from version 6.
	 */
	/** Insert (first_seen_at = last_seen_at = now) or update (definition,
	 *  last_seen_at = now) the row of name + version. */
	int (*workflow_put)(void *impl, const char *name, const char *version, const char *definition);
	/** The rows of workflow name (NULL: all), by name, first_seen_at, version. */
	int (*workflow_list)(void *impl, const char *name, dura_workflow_def_list *out);
	/** Counts of runs per workflow_name, workflow_version, run_state (of
	 *  workflow only, when not NULL), in that order, none of 0. */
	int (*run_counts)(void *impl, const char *workflow, dura_run_count_list *out);
	/** If the run's version is expect_version: workflow_version = the
	 *  given one, version + 1, updated_at = now, *out (not NULL) the
	 *  record, and a worker waiting in wait_ready is woken; DURA_ECONFLICT
	 *  when it is not, DURA_ENOTFOUND for no run. */
	int (*set_run_version)(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
	                       dura_record **out);
	/**
	 * One batch of retention (dura_store_prune; the core validated req).
	 * The runs: run_state is req->run_state, updated_at < req->ended_before,
	 * workflow_name is req->workflow unless NULL; not one with a checkpoint;
	 * not one whose parent_id names a run that is not completed, failed,
	 * cancelled or data_deleted. The oldest updated_at first, at most
	 * req->limit, in one transaction: without req->whole each as
	 * delete_run_data (steps, checkpoints, signals deleted, state "{}",
	 * run_state data_deleted, version + 1, updated_at now), with it each
	 * run's data and record deleted. *count gets how many (with dry_run:
	 * how many would be, changing nothing).
	 */
	int (*prune_runs)(void *impl, const dura_prune *req, int64_t *count);
	/** Delete up to limit outbox events with created_at < before, oldest
	 *  first, in one transaction; *count of them. */
	int (*outbox_prune)(void *impl, int64_t before, size_t limit, int64_t *count);

	/* version 7: import (docs/store-contract.md, "Import"); all three
	 * are required from version 7 */
	/**
	 * Insert a run as another store had it, in one transaction: the
	 * record with every field as given (version, step_no, attempt, error,
	 * wait, next_run_at, created_at, updated_at; the core has cleared the
	 * lease), its steps (each with its step number, state, created_at and
	 * workflow_version), its checkpoints (with their times) and its
	 * signals (with theirs). No outbox event. DURA_EEXISTS, writing
	 * nothing, when a run with the id exists, or when the record is active
	 * and its workflow + foreign id has an active run already, or a
	 * checkpoint or signal id is taken. The core validated r (ids, JSON,
	 * the steps the last nsteps of the run in order - step_no - nsteps to
	 * step_no - 1 - checkpoints and signals of this run).
	 */
	int (*import_run)(void *impl, const dura_import_run *r);
	/** Insert an outbox event as given (id, workflow_name, run_id, type,
	 *  data, created_at); DURA_EEXISTS, writing nothing, when the id is there. */
	int (*import_event)(void *impl, const dura_event *ev);
	/** Outbox events in id order with id > after ("": from the first), at most limit. */
	int (*outbox_list)(void *impl, const char *after, size_t limit, dura_event_list *out);

	/* version 8: gauges (docs/store-contract.md, "Gauges") */
	/*
	 * From version 8 list_runs gets a dura_run_filter of version 4 and
	 * honours due (1: only runs with run_state running, next_run_at <= now,
	 * and lease_owner "" or lease_expires_at <= now - what claim_runs would
	 * take). gauges is required from version 8.
	 */
	/**
	 * What a dashboard reads, in one reading (one statement, one script,
	 * under the store's lock) at the store's now, each count from an index
	 * (bounded cost: never a read of every run or event): waiting_runs
	 * (run_state initiated, running or paused, wait not ""), due_runs (as
	 * the due filter), leased_runs (run_state running, lease_owner not "",
	 * lease_expires_at > now: the live leases flow limits count),
	 * outbox_pending (the events not acknowledged), outbox_oldest_at (the
	 * created_at of the pending event first in id order, 0 when none) and
	 * now (the clock it counted at). The core zeroed *out.
	 */
	int (*gauges)(void *impl, dura_store_gauges *out);
};

/**
 * Register an external store for its scheme (replacing a built-in one of
 * the same name is refused). DURA_EVERSION if ops->version differs.
 */
DURA_EXTERN(int) dura_store_register(const dura_store_ops *ops);

/**
 * The operations serving `scheme` (a built-in store, or one registered),
 * as SQLite's sqlite3_vfs_find: to wrap a store (a shim that counts, logs
 * or injects faults, then calls the real one) or to register it again
 * under another scheme. NULL with DURA_ENOTSUP (or DURA_EINVAL for a
 * missing scheme) in dura_error_last() when no store serves it. The table
 * is static: it stays valid for the life of the process.
 */
DURA_EXTERN(const dura_store_ops *) dura_store_find(const char *scheme);

/* ---- helpers for store implementations ---------------------------------- */

/**
 * Set this thread's error (dura_error_last) with what the driver said:
 * code is a DURA_E* code and is returned; store the scheme ("" for the
 * core); native_code the driver's own code (SQLite's extended result code,
 * the server's error number, 0 when none); sqlstate the SQLSTATE or NULL.
 * fmt is printf-style. Any registered password in the message is replaced
 * with "***". Every failing store operation sets its error this way.
 */
DURA_EXTERN(int) dura_error_set_native(int code, const char *store, int native_code, const char *sqlstate, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/**
 * Allocation through the allocator of dura_set_allocator, so that tests
 * can fail the Nth one. Everything a store returns to the core (records,
 * lists, the strings in them) is allocated with these; the caller frees
 * it with dura_free or the matching *_free. NULL when out of memory.
 * dura_strdup(NULL) and dura_strndup(NULL, n) are NULL; dura_strndup
 * copies the first n bytes of s (which must have that many) and adds a
 * NUL.
 */
DURA_EXTERN(void *) dura_malloc(size_t n);
DURA_EXTERN(void *) dura_calloc(size_t n, size_t size);
DURA_EXTERN(void *) dura_realloc(void *p, size_t n);
DURA_EXTERN(char *) dura_strdup(const char *s);
DURA_EXTERN(char *) dura_strndup(const char *s, size_t n);

/** Set DURA_ENOMEM (with store as the store's name) and return it. */
DURA_EXTERN(int) dura_error_oom(const char *store);

/** Free the strings inside (not the struct itself). They take `void *` so
 *  that a store can hand them to a generic list helper as they are:
 *  dura_record_clear takes a dura_record, dura_step_clear a dura_step, and
 *  so on. */
DURA_EXTERN(void) dura_record_clear(void *rec);
DURA_EXTERN(void) dura_step_clear(void *step);
DURA_EXTERN(void) dura_checkpoint_clear(void *cp);
DURA_EXTERN(void) dura_cache_entry_clear(void *e);
DURA_EXTERN(void) dura_event_clear(void *ev);
DURA_EXTERN(void) dura_worker_info_clear(void *w);
DURA_EXTERN(void) dura_signal_clear(void *sig);
DURA_EXTERN(void) dura_schedule_clear(void *sch);
DURA_EXTERN(void) dura_workflow_def_clear(void *def);
DURA_EXTERN(void) dura_run_count_clear(void *count);

/** Append "; " and fmt (with one string argument) to a store's notes for
 *  dura_store_info, dropping what does not fit. */
DURA_EXTERN(void) dura_store_note(char *notes, size_t size, const char *fmt, const char *arg);

/** Make room for one more item in a result array (items, count, capacity
 *  of `size`-byte items): 0, or -1 when out of memory (items unchanged). */
DURA_EXTERN(int) dura_store_grow(void **items, size_t count, size_t *cap, size_t size);

/**
 * The default event data of a commit without c->event_data, the same bytes
 * on every store (the conformance suite compares them):
 *
 *     {"run_id":R,"step":N,"node_id":D,"status":S,"run_state":N}
 *
 * no spaces, R/D/S JSON strings (quote, backslash, \b \f \n \r \t escaped
 * short, other control characters as \u00xx in lowercase hex, '/' and UTF-8
 * copied; NULL is ""), the integers in decimal. run_id is c->run_id, step
 * the step written (-1 with DURA_COMMIT_NO_STEP), node_id c->node_id,
 * status and run_state the record's after the commit.
 *
 * As snprintf: returns the length without the NUL, and writes the text and
 * a NUL only when it fits in size bytes (else "" when size > 0); buf may be
 * NULL when size is 0.
 */
DURA_EXTERN(size_t) dura_store_event_summary(char *buf, size_t size, const char *run_id, int64_t step, const char *node_id,
                                             const char *status, int run_state);

/**
 * 1 when a claim (validated by the core) takes a run of workflow wf at
 * version (NULL counts as ""): wf is among req->workflows (or there are
 * none), and req->versions lists version for wf, or lists no version of
 * wf at all, or version is "". 0 otherwise.
 */
DURA_EXTERN(int) dura_claim_serves(const dura_claim *req, const char *wf, const char *version);

/**
 * 1 if s (NULL counts as "") is a valid prefix: at most 32 bytes of
 * [A-Za-z0-9_:]. ':' is there for key prefixes (Redis, "app:"); it is
 * never valid in a table name, and the URL parser refuses it in ?prefix=
 * for every scheme but the key-value ones. A SQL store that takes a prefix
 * from elsewhere than dura_url.prefix must refuse ':' itself.
 */
DURA_EXTERN(int) dura_store_prefix_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* DURA_STORE_H */
