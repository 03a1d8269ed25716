/*
 * server.h - the store operations every server SQL store shares
 * (server.c), with the signatures of dura_store_ops: a driver whose
 * handle starts with a dura_sql_store (exec.h) puts them in its vtable
 * as they are. No driver header here.
 */
#ifndef DURA_SQL_SERVER_H
#define DURA_SQL_SERVER_H

#include "exec.h"

#include "dura/store.h"

int dura_sql_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out);
int dura_sql_get_run(void *impl, const char *run_id, dura_record **out);
int dura_sql_latest_run(void *impl, const char *wf, const char *fid, dura_record **out);
int dura_sql_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out);
int dura_sql_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version);
int dura_sql_delete_run_data(void *impl, const char *run_id);
int dura_sql_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out);
int dura_sql_get_step(void *impl, const char *run_id, int64_t step, dura_step **out);
int dura_sql_load_latest(void *impl, const char *run_id, dura_step **out);
int dura_sql_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state);
int dura_sql_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out);
int dura_sql_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out);
int dura_sql_checkpoint_delete(void *impl, const char *cp_id);
int dura_sql_cache_get(void *impl, const char *key, dura_cache_entry **out);
int dura_sql_cache_put(void *impl, const char *key, const void *value, size_t len, const char *error, const char *metadata, int64_t ttl_ms);
int dura_sql_cache_claim(void *impl, const char *key, const char *owner, int64_t lease_ms);
int dura_sql_cache_release(void *impl, const char *key, const char *owner);
int dura_sql_cache_delete(void *impl, const char *key);
int dura_sql_cache_purge_expired(void *impl, int64_t *count);
int dura_sql_cache_list(void *impl, const char *cursor, size_t limit, dura_cache_list *out);
int dura_sql_cache_stats(void *impl, dura_cache_stats *out);
int dura_sql_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms);
int dura_sql_release_lease(void *impl, const char *run_id, const char *owner);
int dura_sql_outbox_poll(void *impl, size_t limit, dura_event_list *out);
int dura_sql_outbox_ack(void *impl, const char *event_id);
int dura_sql_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                           int *codes);
/* claims in priority order, with flow limits (store.h claim); claim_runs is one without them */
int dura_sql_claim(void *impl, const dura_claim *req, dura_record_list *out);
int dura_sql_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                        int64_t lease_ms, dura_record_list *out);

/* contract version 5: durable waiting (signals, wakes, schedules) */
int dura_sql_signal_send(void *impl, const char *signal_id, const char *run_id, const char *name, const char *payload);
int dura_sql_signal_next(void *impl, const char *run_id, const char *name, dura_signal **out);
int dura_sql_signal_list(void *impl, const char *run_id, dura_signal_list *out);
int dura_sql_wake(void *impl, const char *run_id, const char *wait);
int dura_sql_schedule_put(void *impl, const dura_schedule *sch);
int dura_sql_schedule_get(void *impl, const char *name, dura_schedule **out);
int dura_sql_schedule_delete(void *impl, const char *name);
int dura_sql_schedule_list(void *impl, dura_schedules *out);
int dura_sql_schedule_advance(void *impl, const char *name, int64_t from, int64_t to);
/* Inside the open transaction: wake run_id if it is running and waits for
 * wait (as wake() does, without its error); *woke (may be NULL) says
 * whether it did. 0 or the failure. */
int dura_sql_wake_in(dura_sql_store *s, dura_sql_conn *c, const char *run_id, const char *wait, int *woke);

#endif
