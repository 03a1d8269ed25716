/*
 * store.c - the memory store's vtable (dura__memory_ops) and its
 * lifecycle: open (the notes on ignored URL options), close, ping, info,
 * stats and migrate; and waiting for changes (wait_change, wait_ready)
 * and the fork handler. Every other operation is in the file of its
 * concern (memory.h lists them).
 */
#include "memory.h"

#define MEM_SCHEMA_VERSION 1

/* ---- lifecycle ------------------------------------------------------------ */

/* The core's size limits, the only options the memory store has. */
static int core_option(const char *name)
{
	return strcmp(name, "max_state") == 0 || strcmp(name, "max_value") == 0;
}

/* Name the URL options the memory store ignores (all but the core's). */
static int make_notes(char **out, const dura_url *url)
{
	size_t n = 0;
	for (size_t i = 0; i < url->nparams; i++)
		if (!core_option(url->param_names[i]))
			n += strlen(url->param_names[i]) + 2;
	if (n == 0) {
		*out = NULL;
		return 0;
	}
	static const char head[] = "ignored options (the memory store has none but max_state and max_value): ";
	char *s = dura_malloc(sizeof(head) + n);
	if (!s)
		return dmem_oom();
	size_t off = 0;
	memcpy(s, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (size_t i = 0, first = 1; i < url->nparams; i++) {
		if (core_option(url->param_names[i]))
			continue;
		size_t k = strlen(url->param_names[i]);
		if (!first) {
			memcpy(s + off, ", ", 2);
			off += 2;
		}
		memcpy(s + off, url->param_names[i], k);
		off += k;
		first = 0;
	}
	s[off] = '\0';
	*out = s;
	return 0;
}

static int mem_open(void **impl, const dura_url *url, const dura_store_options *opts)
{
	(void)opts; /* the schema is built in: nothing to migrate */
	*impl = NULL;
	mem_store *m = dura_calloc(1, sizeof(*m));
	if (!m)
		return dmem_oom();
	int rc = make_notes(&m->notes, url);
	if (rc) {
		dura_free(m);
		return rc;
	}
	if (dura__cond_init_mono(&m->changed) != 0) {
		dura_free(m->notes);
		dura_free(m);
		return dura_error_set_native(DURA_ERROR, STORE, 0, NULL, "cannot create a condition variable");
	}
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		pthread_cond_destroy(&m->changed);
		dura_free(m->notes);
		dura_free(m);
		return dura_error_set_native(DURA_ERROR, STORE, 0, NULL, "cannot create a mutex");
	}
	if (!(m->workers = dura__mem_workers_new()) || !(m->inbox = dura__mem_inbox_new()) ||
	    !(m->schedules = dura__mem_schedules_new())) {
		dura__mem_workers_free(m->workers);
		dura__mem_inbox_free(m->inbox);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->changed);
		dura_free(m->notes);
		dura_free(m);
		return DURA_ENOMEM;
	}
	*impl = m;
	return 0;
}

static void mem_close(void *impl)
{
	mem_store *m = impl;
	if (!m)
		return;
	dura__mem_workers_free(m->workers);
	dura__mem_inbox_free(m->inbox);
	dura__mem_schedules_free(m->schedules);
	dura__mem_versions_free(m->versions);
	mem_run *r, *rt;
	HASH_ITER(hh, m->runs, r, rt)
	{
		HASH_DEL(m->runs, r);
		dmem_free_run(r);
	}
	mem_slot *s, *st;
	HASH_ITER(hh, m->slots, s, st)
	{
		HASH_DEL(m->slots, s);
		dura_free(s);
	}
	mem_checkpoint *c, *ct;
	HASH_ITER(hh, m->checkpoints, c, ct)
	{
		HASH_DEL(m->checkpoints, c);
		dmem_free_checkpoint(c);
	}
	mem_cache *e, *et;
	HASH_ITER(hh, m->cache, e, et)
	{
		HASH_DEL(m->cache, e);
		dmem_free_cache(e);
	}
	mem_claim *cl, *clt;
	HASH_ITER(hh, m->claims, cl, clt)
	{
		HASH_DEL(m->claims, cl);
		dmem_free_claim(cl);
	}
	HASH_CLEAR(hh, m->events);
	for (mem_event *ev = m->ev_head, *next; ev; ev = next) {
		next = ev->next;
		dmem_free_event(ev);
	}
	pthread_cond_destroy(&m->changed);
	pthread_mutex_destroy(&m->lock);
	dura_free(m->notes);
	dura_free(m);
}

static int mem_ping(void *impl)
{
	(void)impl;
	return 0;
}

static int mem_info(void *impl, dura_store_info *out)
{
	mem_store *m = impl;
	out->server_version = "dura memory store";
	out->schema_version = MEM_SCHEMA_VERSION;
	out->library_schema_version = MEM_SCHEMA_VERSION;
	out->caps = DURA_CAP_NOTIFY;
	out->notes = m->notes ? m->notes : "";
	return 0;
}

static int mem_stats(void *impl, dura_store_stats *out)
{
	(void)impl;
	/* no connections: one "connection" that is always there and idle */
	out->open = 1;
	out->idle = 1;
	out->in_use = 0;
	out->max_open = 1;
	out->waits = 0;
	return 0;
}

static int mem_migrate(void *impl, int *from, int *to)
{
	(void)impl;
	if (from)
		*from = MEM_SCHEMA_VERSION;
	if (to)
		*to = MEM_SCHEMA_VERSION;
	return 0;
}

/* ---- notify --------------------------------------------------------------- */

/* A negative timeout waits without a deadline. */
/*
 * In a forked child the data is a copy, the child's own from now on: what
 * either process writes, the other does not see. Waiters of the parent's
 * other threads do not exist here, so the lock and the condition
 * variable start afresh.
 */
static void mem_atfork_child(void *impl)
{
	mem_store *m = impl;
	pthread_mutex_init(&m->lock, NULL);
	dura__cond_init_mono(&m->changed);
	dura__mem_workers_atfork_child(m->workers);
	dura__mem_schedules_atfork_child(m->schedules);
}

static int mem_wait_change(void *impl, const char *run_id, int64_t version, int64_t timeout_ms)
{
	mem_store *m = impl;
	struct timespec deadline = dura__mono_after_ms(timeout_ms > 0 ? timeout_ms : 0);
	int rc;
	dmem_lock(m);
	for (;;) {
		mem_run *r = dmem_find_run(m, run_id);
		if (!r) {
			rc = dmem_run_missing(run_id);
			break;
		}
		if (r->d.version != version) {
			rc = 0;
			break;
		}
		int w = 0;
		if (timeout_ms < 0)
			w = pthread_cond_wait(&m->changed, &m->lock);
		else if (timeout_ms > 0)
			w = pthread_cond_timedwait(&m->changed, &m->lock, &deadline);
		if (timeout_ms == 0 || w == ETIMEDOUT) {
			/* one last look: a change may have come with the timeout */
			r = dmem_find_run(m, run_id);
			rc = r && r->d.version != version
			             ? 0
			             : dura_error_set_native(DURA_ETIMEOUT, STORE, 0, NULL,
			                                     "run %s is still at version %lld after %lld ms", run_id,
			                                     (long long)version, (long long)timeout_ms);
			break;
		}
	}
	dmem_unlock(m);
	return rc;
}

/* Any change of any run wakes the waiters (spuriously for most): the
 * worker claims to find out. */
static int mem_wait_ready(void *impl, int64_t timeout_ms)
{
	mem_store *m = impl;
	struct timespec deadline = dura__mono_after_ms(timeout_ms > 0 ? timeout_ms : 0);
	int w = 0;
	dmem_lock(m);
	if (timeout_ms > 0)
		w = pthread_cond_timedwait(&m->changed, &m->lock, &deadline);
	dmem_unlock(m);
	return timeout_ms <= 0 || w == ETIMEDOUT ? DURA_ETIMEOUT : 0;
}

/* ---- the table ------------------------------------------------------------ */

const dura_store_ops dura__memory_ops = {
	.version = 8,
	.scheme = "memory",
	.caps = DURA_CAP_NOTIFY,
	.open = mem_open,
	.close = mem_close,
	.ping = mem_ping,
	.info = mem_info,
	.stats = mem_stats,
	.migrate = mem_migrate,
	.create_run = dmem_create_run,
	.get_run = dmem_get_run,
	.latest_run = dmem_latest_run,
	.list_runs = dmem_list_runs,
	.set_run_state = dmem_set_run_state,
	.delete_run_data = dmem_delete_run_data,
	.commit = dmem_commit,
	.commit_batch = dmem_commit_batch,
	.history = dmem_history,
	.get_step = dmem_get_step,
	.load_latest = dmem_load_latest,
	.checkpoint_save = dmem_checkpoint_save,
	.checkpoint_load = dmem_checkpoint_load,
	.checkpoint_list = dmem_checkpoint_list,
	.checkpoint_delete = dmem_checkpoint_delete,
	.cache_get = dmem_cache_get,
	.cache_put = dmem_cache_put,
	.cache_claim = dmem_cache_claim,
	.cache_release = dmem_cache_release,
	.cache_delete = dmem_cache_delete,
	.cache_purge_expired = dmem_cache_purge_expired,
	.cache_list = dmem_cache_list,
	.cache_stats = dmem_cache_stats,
	.claim_runs = dmem_claim_runs,
	.extend_lease = dmem_extend_lease,
	.release_lease = dmem_release_lease,
	.outbox_poll = dmem_outbox_poll,
	.outbox_ack = dmem_outbox_ack,
	.exec_sql = NULL,
	.wait_change = mem_wait_change,
	.atfork_child = mem_atfork_child,
	.wait_ready = mem_wait_ready,
	.extend_leases = dmem_extend_leases,
	.claim = dmem_claim_flow,
	/* version 4: the worker registry */
	.worker_put = dmem_worker_put,
	.worker_delete = dmem_worker_delete,
	.worker_list = dmem_worker_list,
	.worker_prune = dmem_worker_prune,
	/* version 5: durable waiting */
	.signal_send = dmem_signal_send,
	.signal_next = dmem_signal_next,
	.signal_list = dmem_signal_list,
	.wake = dmem_wake,
	.schedule_put = dmem_schedule_put,
	.schedule_get = dmem_schedule_get,
	.schedule_delete = dmem_schedule_delete,
	.schedule_list = dmem_schedule_list,
	.schedule_advance = dmem_schedule_advance,
	.workflow_put = dmem_workflow_put,
	.workflow_list = dmem_workflow_list,
	.run_counts = dmem_run_counts,
	.set_run_version = dmem_set_run_version,
	.prune_runs = dmem_prune_runs,
	.outbox_prune = dmem_outbox_prune,
	.import_run = dmem_import_run,
	.import_event = dmem_import_event,
	.outbox_list = dmem_outbox_list,
	/* version 8 */
	.gauges = dmem_gauges,
};
