/*
 * internal.h - declarations shared by the library's own files; never
 * installed. Store implementations use <dura/store.h> only.
 */
#ifndef DURA_INTERNAL_H
#define DURA_INTERNAL_H

#include "dura.h"
#include "dura/store.h"

/* errors.c */
void dura__secret_add(const char *secret);
void dura__redact_secrets(char *msg);

/*
 * A copy of the thread's last error, for code that must make one more
 * call - a release, an unlock, a rollback - after a failure and then
 * report the failure, not whatever that call left behind. Save before the
 * call, restore after it: the error comes back exactly as it was (code,
 * message, store, native code, SQLSTATE), or cleared if none was set.
 * dura__error_restore returns the saved code (0 when none was set), for
 * `return dura__error_restore(&saved);`.
 */
typedef struct dura__error_saved {
	int set;
	int code;
	int native_code;
	char message[1024];
	char store[32];
	char sqlstate[8];
} dura__error_saved;
void dura__error_save(dura__error_saved *saved);
int dura__error_restore(const dura__error_saved *saved);

/* metrics.c: this process's counters (dura_metrics_get), bumped where the
 * work happens. commit: rc of one commit, whether it wrote a step, and the
 * store call's time; cache: 1 for a hit, 0 for a miss; outcome: 1 for a
 * run completed, 0 failed. */
void dura__metrics_commit(int rc, int with_step, int64_t elapsed_us);
void dura__metrics_failed_attempt(void);
void dura__metrics_cache(int hit);
void dura__metrics_claimed(uint64_t n);
void dura__metrics_rescue(void);
void dura__metrics_outcome(int completed);

/* fork.c: the fork guard (see fork.c for the rule it keeps). Every call
 * into a store runs between enter and leave; fork() waits for them. */
enum { DURA__FORK_PREPARE, DURA__FORK_PARENT, DURA__FORK_CHILD };
void dura__fork_init(void);
void dura__fork_enter(void);
void dura__fork_leave(void);
/* the pieces of process-global state fork.c looks after, each in its file;
 * `guarded` is 0 when fork() was called from inside a store call */
void dura__uuid_atfork(int phase);
void dura__secrets_atfork(int phase);
void dura__stores_atfork(int phase, int guarded);

/* uuid.c: the id of a derived run (a child, a schedule's tick): ms in the
 * place of a UUIDv7's time, the rest a hash of the parts, so that the same
 * parts always give the same id. */
void dura__uuid_derived(char out[DURA_UUID_LEN + 1], int64_t ms, const char *a, const char *b, int64_t n);

/* json.c */
int dura__json_valid(const char *text, const char *what);
int dura__json_object_valid(const char *text, const char *what);
/* 1 if s is UTF-8 as JSON has it; NULL is "" */
int dura__utf8_valid(const char *s);
/* 1 when a and b are the same JSON value (byte for byte, or once parsed:
 * a store may give a document back reformatted, as PostgreSQL's JSONB
 * does); 0 otherwise, and when either is NULL or not JSON. */
int dura__json_same(const char *a, const char *b);
/* s as a JSON string with its quotes: its length, and writing it at o
 * (no NUL; returns the end). The escaper of dura_store_event_summary(). */
size_t dura__json_quote_len(const char *s);
char *dura__json_quote(char *o, const char *s);
/* The default event data is these keys, in this order, each followed by its
 * value: a string through dura__json_quote() or a decimal integer; then "}".
 * The MySQL store puts the same pieces together around the two integers
 * only the server knows (the step and run_state). */
#define DURA__SUMMARY_RUN_ID "{\"run_id\":"
#define DURA__SUMMARY_STEP ",\"step\":"
#define DURA__SUMMARY_NODE_ID ",\"node_id\":"
#define DURA__SUMMARY_STATUS ",\"status\":"
#define DURA__SUMMARY_RUN_STATE ",\"run_state\":"

/* store/store.c: the engine's side doors */
/* A commit whose JSON the engine produced itself: no re-validation. */
int dura__store_commit_trusted(dura_store *s, const dura_commit *c, dura_commit_result *res);
/* Wait for a run's version to change (DURA_ENOTSUP when the store cannot). */
/* The scheme of the store an open handle serves ("sqlite", "postgres", ...), without asking the store. */
const char *dura__store_scheme(const dura_store *s);
/* A worker's wait for a claimable run (store.h wait_ready); DURA_ENOTSUP
 * when the store cannot notify. Not guarded. */
int dura__store_wait_ready(dura_store *s, int64_t timeout_ms);
int dura__store_can_wait_ready(const dura_store *s);
/* Whether the store claims with flow limits (contract version 4's claim). */
int dura__store_can_claim(const dura_store *s);
int dura__store_wait_change(dura_store *s, const char *run_id, int64_t version, int64_t timeout_ms);

/* store/waiting.c: durable waiting (contract version 5) */
int dura__waiting_ops_valid(const dura_store_ops *ops);
/* 1 if the store has contract version 5's waiting */
int dura__store_can_wait(const dura_store *s);
/* a signal's or schedule's name (1 to DURA_MAX_NAME_LEN bytes of UTF-8, no control characters) */
int dura__check_name(const char *name, const char *what, const char *fn);
/* What a run waits for ("signal:X", "child:Y"; wait NULL: the run's
 * stored wait) may have come while it could not be woken - before its
 * wait was committed, or while it was paused: if so, wake it. 1 when
 * woken, 0 when not, < 0 on an error. */
int dura__store_wait_recheck(dura_store *s, const char *run_id, const char *wait);
/* the version-2 fields of a commit */
int dura__check_commit_wait(const dura_store *s, const dura_commit *c, const char *fn);

/* store/fleet.c: workflow versions and retention (contract version 6) */
int dura__fleet_ops_valid(const dura_store_ops *ops);
/* 1 if the store keeps workflow versions (contract version 6) */
int dura__store_has_versions(const dura_store *s);
/* 1 if v is a workflow version: 1 to DURA_MAX_VERSION_LEN bytes of [A-Za-z0-9._-] */
int dura__version_valid(const char *v);
/* DURA_EINVAL unless v is a version ("" too when allow_empty) */
int dura__check_version(const char *v, int allow_empty, const char *fn);
int dura__check_claim_versions(const dura_claim *req, const char *fn);
/* dura_engine_register's write of a version's definition (0 on a store
 * without versions) */
int dura__store_workflow_put(dura_store *s, const char *name, const char *version, const char *definition);

/* store/import.c: moving runs between stores (contract version 7) */
int dura__import_ops_valid(const dura_store_ops *ops);

/* store/fleet.c: the gauges (contract version 8) */
int dura__gauges_ops_valid(const dura_store_ops *ops);

/* worker.c: wake the workers of this process serving the store (a run
 * was started, resumed or moved to another version) */
void dura__workers_kick(dura_store *store);

/* store/store.c: built-in stores (NULL when not compiled in) */
extern const dura_store_ops dura__memory_ops;
extern const dura_store_ops dura__sqlite_ops;
#ifdef DURA_HAVE_MYSQL
extern const dura_store_ops dura__mysql_ops;
#endif
#ifdef DURA_HAVE_POSTGRES
extern const dura_store_ops dura__postgres_ops;
#endif
#ifdef DURA_HAVE_REDIS
extern const dura_store_ops dura__redis_ops;
#endif

#endif
