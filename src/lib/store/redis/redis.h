/*
 * redis.h - what the Redis store's files share: the handle, the key
 * layout, the scripts' calling convention and the reply decoders.
 *
 * Every key of one store URL starts with the namespace's hash tag and a
 * colon, "{dura}:" by default (?prefix=NAME gives "{NAME}:"), so every key
 * is on one slot and every operation is one Lua script there - on a single
 * server and on Redis Cluster alike. The layout, as redis-cli shows it:
 *
 *   {P}:schema                 hash  version -> "applied_at description"
 *   {P}:run:<id>               hash  the record (fields: DR_RECORD_FIELDS)
 *                                    plus last_event (the event id of the
 *                                    last commit: how a commit whose
 *                                    connection was lost is told apart);
 *                                    wait and parent_id (schema 2) are
 *                                    absent from older runs and read as "";
 *                                    so is workflow_version (schema 3),
 *                                    whose presence also marks the run as
 *                                    counted in the indexes of schema 3
 *                                    (index.h, index_run)
 *   {P}:steps:<id>             list  step step_base+i at index i (step_base: a field of the
 *                                    run, its step_no when the list began):
 *                                    "<created_at>\n<length of node_id>\n<node_id><state>",
 *                                    or with the step's workflow version V (schema 3)
 *                                    "<created_at>\n<length of node_id>:V\n<node_id><state>"
 *   {P}:runs                   zset  every run id, score 0 (lexicographic: newest last)
 *   {P}:runs:<workflow>        zset  the workflow's run ids, score 0
 *   {P}:workflows              set   every workflow name that has runs
 *   {P}:active                 hash  "<workflow>\0<foreign_id>" -> the active run's id
 *   {P}:latest                 hash  "<workflow>\0<foreign_id>" -> the newest run's id
 *   {P}:due:<workflow>         zset  runs of priority 0 that are running and not
 *                                    leased, score = next_run_at
 *   {P}:duep:<prio>:<workflow> zset  the same for a priority other than 0
 *   {P}:prios:<workflow>       zset  the other priorities in use, score = priority
 *   {P}:leased:<workflow>      zset  running runs with a lease, score = its expiry
 *   {P}:cp:<id>                hash  a checkpoint (run_id, step, state, created_at, updated_at)
 *   {P}:cps                    zset  checkpoint ids, score = updated_at
 *   {P}:cps:<run_id>           zset  the run's checkpoint ids, score = updated_at
 *   {P}:outbox                 stream the outbox, one entry per event (fields id,
 *                                    workflow_name, run_id, type, data, created_at)
 *   {P}:outbox:ids             hash  event id -> its stream entry id
 *   {P}:outbox:order           zset  every event id, score 0 (schema 4: byte order
 *                                    is id order, what outbox_list pages through)
 *   {P}:cache:<key>            hash  value, error, metadata, created_at, expires_at;
 *                                    native PX TTL when it expires
 *   {P}:cachekeys              zset  cache keys, score 0 (cache_list's order)
 *   {P}:claim:<key>            string the claimer's owner id, native PX TTL = the lease
 *   {P}:children:<parent_id>   zset  the run ids whose parent_id it is, score 0
 *   {P}:signal:<signal_id>     hash  a signal in an inbox (signal_id, run_id,
 *                                    name, payload, created_at)
 *   {P}:signals:<run_id>       zset  the run's signal ids, score 0 (lexicographic
 *                                    on the UUIDv7: oldest first)
 *   {P}:signalnames:<run_id>   zset  "<name>\0<signal_id>" of the same signals,
 *                                    score 0: a name's oldest is one ZRANGEBYLEX
 *   {P}:schedule:<name>        hash  a schedule (name, cron, zone, workflow_name,
 *                                    state, catch_up, next_tick, created_at,
 *                                    updated_at)
 *   {P}:schedules              zset  schedule names, score 0 (byte order)
 *   {P}:worker:<id>            hash  a registry row
 *   {P}:workers                zset  worker ids, score = started_at
 *   {P}:counts:<workflow>      hash  "<workflow_version>:<run_state>" -> how many runs
 *                                    (schema 3; a field of 0 is deleted)
 *   {P}:ended:<state>          zset  the runs in end state 3, 5, 6 or 7, score =
 *                                    updated_at (schema 3: what prune_runs reads)
 *   {P}:ended:<state>:<workflow> zset the same for one workflow
 *   {P}:slotruns               hash  "<workflow>\0<foreign_id>" -> how many runs have
 *                                    it (schema 3: whether pruning the latest
 *                                    leaves another)
 *   {P}:waiting                zset  the runs in an active run state whose wait is not "",
 *                                    score 0 (schema 5: what the gauges count)
 *   {P}:wfdefs                 zset  the workflow names with registered versions, score 0
 *   {P}:wfdef:<workflow>       hash  version -> "<first_seen_at>\n<last_seen_at>\n<definition>"
 *   {P}:changed:<run_id>       channel a commit or a state change of the run
 *   {P}:ready                  channel some run may have become claimable
 *
 * Scripts: KEYS[1] is a key of the namespace (the operation's main key, so
 * a cluster routes it); ARGV[1] the key prefix "{P}:", ARGV[2] the caller's
 * clock in ms ("now" is the client's, as the SQL stores bind it); the
 * rest is the operation's. A script builds the other key names from
 * ARGV[1] - they hash to the same slot. It reads or touches (EXISTS)
 * every key it writes before its first write, so that a resharding of
 * the slot stops it having done nothing (client.h, DR_NO_ASK). It answers
 * an array whose first element is 0 or a negative DURA_E* code; after a
 * code comes a message.
 */
#ifndef DURA_REDIS_H
#define DURA_REDIS_H

#include "client.h"

#include <stdint.h>

typedef struct dr_store {
	dr_client *client;
	char prefix[40];   /* "{dura}:" */
	size_t prefix_len;
	int schema_version;
	char server_version[64];
	char open_notes[384]; /* what open found in the URL (unused options, no TLS check) */
	char notes[768];      /* open_notes and what the server says about durability */
	uint32_t caps;
} dr_store;

/* The record's hash fields, in the order scripts return them (HMGET). */
#define DR_RECORD_FIELDS                                                                                    \
	"run_id", "workflow_name", "foreign_id", "run_state", "status", "state", "version", "step_no",      \
	"attempt", "error", "meta", "lease_owner", "lease_expires_at", "next_run_at", "created_at",       \
	"updated_at", "priority", "concurrency_key", "wait", "parent_id", "workflow_version"
#define DR_RECORD_NFIELDS 21
/* The same list as Lua source, for the scripts that return records. */
#define DR_LUA_RECORD_FIELDS                                                                                \
	"local RF = {'run_id','workflow_name','foreign_id','run_state','status','state','version','step_no'," \
	"'attempt','error','meta','lease_owner','lease_expires_at','next_run_at','created_at','updated_at',"  \
	"'priority','concurrency_key','wait','parent_id','workflow_version'}\n"

/* "{P}:" kind ":" id into buf (NUL-terminated); -1 when it does not fit. */
int dr_key(const dr_store *s, char *buf, size_t size, const char *kind, const char *id);

/* The caller's clock, ms, as text in buf[24]. */
const char *dr_now_text(char buf[24], int64_t *now);

/*
 * Run sc with KEYS[1] = key, ARGV = prefix, now, then argv[0..argc).
 * Returns the script's own code (0 or a DURA_E* with its message set as
 * this thread's error) and, on 0, *out = the reply array (free with
 * freeReplyObject); a client error (DURA_EIO, ...) as dr_eval.
 */
int dr_run(dr_store *s, dr_script *sc, int flags, redisReply **out, int *unsure, const char *key, int argc,
           const char **argv, const size_t *lens);

/* Run sc page by page until it is done: ARGV (after prefix and now) the
 * cursor - `first` to begin - and the page size; the script answers {0,
 * next cursor}, "" when there is no next page. For the migrations that
 * walk a whole namespace a page a script. 0 or the first error. */
int dr_run_pages(dr_store *s, dr_script *sc, const char *key, const char *first, const char *page);

/* A delete by script sc (its ENOTFOUND when there is nothing to delete):
 * when the connection is lost after sending, it is asked again, and
 * ENOTFOUND then means the first one did it. */
int dr_run_delete(dr_store *s, dr_script *sc, const char *key, int argc, const char **argv);

/* An integer field of run_id's hash (one HGET): DURA_ENOTFOUND when the
 * run is absent. */
int dr_run_field(dr_store *s, const char *run_id, const char *field, int64_t *out);

/* Decoders: elements of a reply array into the public structs (strings
 * with dura_malloc; a nil is "" for records, NULL for cache entries'
 * error and metadata). 0 or DURA_ENOMEM / DURA_ERROR (malformed). */
int dr_record_decode(redisReply *const *fields, size_t n, dura_record *out);
int64_t dr_int(const redisReply *r);           /* integer or numeric string; 0 for nil */
char *dr_strdup_reply(const redisReply *r);    /* string or integer as text; "" for nil; NULL: ENOMEM */

/* The operations, one file per concern. */
/* runs.c */
int dr_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out);
int dr_get_run(void *impl, const char *run_id, dura_record **out);
int dr_latest_run(void *impl, const char *workflow_name, const char *foreign_id, dura_record **out);
int dr_list_runs(void *impl, const dura_run_filter *filter, dura_record_list *out);
int dr_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version);
int dr_delete_run_data(void *impl, const char *run_id);
/* commit.c */
int dr_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res);
int dr_commit_batch(void *impl, const dura_commit *c, const char *const *event_ids, size_t n, dura_commit_result *res);
int dr_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out);
int dr_get_step(void *impl, const char *run_id, int64_t step, dura_step **out);
int dr_load_latest(void *impl, const char *run_id, dura_step **out);
/* claim.c */
int dr_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                  int64_t lease_ms, dura_record_list *out);
int dr_claim(void *impl, const dura_claim *req, dura_record_list *out);
int dr_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms);
int dr_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms, int *codes);
int dr_release_lease(void *impl, const char *run_id, const char *owner);
/* notify.c */
int dr_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms);
int dr_wait_ready(void *impl, int64_t timeout_ms);
/* checkpoints.c */
int dr_checkpoint_save(void *impl, const char *checkpoint_id, const char *run_id, int64_t step, const char *state);
int dr_checkpoint_load(void *impl, const char *checkpoint_id, dura_checkpoint **out);
int dr_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out);
int dr_checkpoint_delete(void *impl, const char *checkpoint_id);
/* cache.c */
int dr_cache_get(void *impl, const char *key, dura_cache_entry **out);
int dr_cache_put(void *impl, const char *key, const void *value, size_t value_len, const char *error,
                 const char *metadata, int64_t ttl_ms);
int dr_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms);
int dr_cache_release(void *impl, const char *key, const char *owner);
int dr_cache_delete(void *impl, const char *key);
int dr_cache_purge_expired(void *impl, int64_t *count);
int dr_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out);
int dr_cache_stats(void *impl, dura_cache_stats *out);
/* outbox.c */
int dr_outbox_poll(void *impl, size_t limit, dura_event_list *out);
int dr_outbox_ack(void *impl, const char *event_id);
/* outbox.c (contract version 7) */
int dr_outbox_import(void *impl, const dura_event *ev);
int dr_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out);
/* outbox.c: the schema-4 pass over the events written before it (store.c's
 * migration): each joins {P}:outbox:order. */
int dr_index_outbox(dr_store *s);
/* fleet.c (contract version 8) */
int dr_gauges(void *impl, dura_store_gauges *out);
/* fleet.c: the schema-5 pass (store.c's migration): each run that waits
 * joins {P}:waiting. */
int dr_index_waiting(dr_store *s);
/* import.c (contract version 7) */
int dr_import_run(void *impl, const dura_import_run *r);
/* workers.c */
int dr_worker_put(void *impl, const dura_worker_info *w);
int dr_worker_delete(void *impl, const char *worker_id);
int dr_worker_list(void *impl, dura_worker_list *out);
int dr_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count);
/* signals.c */
int dr_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload);
int dr_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out);
int dr_signal_list(void *impl, const char *run_id, dura_signal_list *out);
int dr_wake(void *impl, const char *run_id, const char *wait);
/* schedules.c */
int dr_schedule_put(void *impl, const dura_schedule *sch);
int dr_schedule_get(void *impl, const char *name, dura_schedule **out);
int dr_schedule_delete(void *impl, const char *name);
int dr_schedule_list(void *impl, dura_schedules *out);
int dr_schedule_advance(void *impl, const char *name, int64_t from, int64_t to);
/* fleet.c (contract version 6) */
int dr_workflow_put(void *impl, const char *name, const char *version, const char *definition);
int dr_workflow_list(void *impl, const char *name, dura_workflow_def_list *out);
int dr_run_counts(void *impl, const char *workflow, dura_run_count_list *out);
int dr_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                       dura_record **out);
int dr_prune_runs(void *impl, const dura_prune *req, int64_t *count);
int dr_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count);
/* fleet.c: the schema-3 pass over the runs written before it (store.c's
 * migration): each joins the counts and the end-state indexes. */
int dr_index_runs(dr_store *s);

#endif /* DURA_REDIS_H */
