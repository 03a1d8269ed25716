/*
 * worker.c - workers: threads that claim runnable runs from the store,
 * under leases, and execute them (dura.h, "Workers").
 *
 * One worker is `threads` executor threads and one heartbeat thread around
 * a small queue of claimed runs:
 *
 *   - an idle executor takes a queued run; when the queue is empty one
 *     idle executor at a time (the claimer) claims a batch of at most as
 *     many runs as there are idle executors (and at most `batch`), and
 *     when there was nothing to claim waits before the next claim,
 *     doubling the pause from 1 ms up to poll_ms; a kick (a run started
 *     in this process on the same store) or a known due time cuts it;
 *   - an executor runs a run through the engine's step loop under the
 *     lease (run.c, dura__run_execute_leased): the loop asks between steps
 *     whether to stop (the worker is stopping, or the lease was reported
 *     lost) and stops by itself on a conflict - the run's version is the
 *     fencing token - and when the run must wait (a retry's backoff);
 *     then the executor releases the lease;
 *   - the heartbeat thread extends every lease the worker holds, queued or
 *     executing, in one store call every heartbeat_ms, and marks the runs
 *     whose lease the store reports lost; a failed heartbeat is tried
 *     again after 50 ms (at most heartbeat_ms);
 *   - the worker's row in the store's worker registry (registry.c) is
 *     written at start, rewritten by the heartbeat thread once per
 *     heartbeat_ms with the number of runs held, and deleted at stop. The
 *     registry is for people watching: a failure to write it is counted
 *     in the errors and never stops the worker.
 *
 * One mutex (w->mu) guards the queue, the slots and the flags; nothing
 * holds it across a store call or a node. Live workers are kept in a
 * process-wide list, for kicks, for refusing a stop of a handle that is
 * not running, and for fork: a forked child has none of the threads, so
 * its list starts empty.
 */
#include "engine.h"
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HB_RETRY_MS 50
#define NAME_MAX_LEN 64

typedef struct queued {
	dura_record *rec;
	int lost;
} queued;

/* An executor's current run. */
typedef struct slot {
	struct dura_worker *w;
	pthread_t thread;
	int started;
	int busy;        /* executing run_id */
	int lost;        /* the heartbeat found the lease lost */
	int released;    /* stop gave the lease up (past drain_ms) */
	char run_id[DURA_MAX_ID_LEN + 1];
} slot;

/* A commit waiting for the group committer. */
typedef struct pending {
	const dura_commit *c;
	dura_commit_result *res;
	int rc;
	int done;
	struct pending *next;
} pending;

#define GROUP_MAX 64 /* commits per commit_batch */


struct dura_worker {
	dura_engine *eng;
	dura_store *store;
	int threads;
	int64_t lease_ms, heartbeat_ms, poll_ms;
	size_t batch;
	char **workflows;
	size_t nworkflows;
	dura_claim_workflow *claim_wf; /* the workflows with their flow limits, as claims name them */
	dura_claim_version *claim_ver; /* every registered version of them (the engine's strings) */
	size_t nclaim_ver;
	int64_t retention_ms, outbox_keep_ms; /* -1: no retention, no outbox pruning */
	int *taken_over;               /* batch ints, for each claim */
	char *name;
	char id[DURA_MAX_ID_LEN + 1];

	pthread_mutex_t mu;
	pthread_cond_t cv;   /* queue, kicks, stop; CLOCK_MONOTONIC */
	pthread_cond_t idle; /* an executor finished a run (stop's drain waits on it) */
	pthread_cond_t hbcv; /* the heartbeat's timer; signalled only to stop it */
	queued *queue;
	size_t nqueue;
	slot *slots;
	int executing;
	int claiming;
	int kicked;
	int stopping;
	int hb_stop;
	int64_t next_due; /* wall ms of the earliest run this worker released to wait, 0: none */
	pthread_t hb;
	int hb_started;
	pthread_t sched; /* the scheduler thread: fires the ticks of schedules (schedule.c) */
	int sched_started;

	/* group commit: the first executor with a commit ready and no
	 * committer at work becomes the committer and writes every commit
	 * queued by then in one commit_batch */
	int group;
	pthread_mutex_t gmu;
	pthread_cond_t gcv;
	pending *ghead, **gtail;
	int gleader;

	_Atomic uint64_t claimed, completed, failed, rescued, abandoned, errors, heartbeats, batches, batched;
	uint64_t ticks; /* schedule ticks fired, by the scheduler thread (under mu) */
	uint64_t pruned; /* what retention deleted, by the scheduler thread (under mu) */
	struct dura_worker *next; /* in the live list */

	dura__registry reg; /* this worker's row in the store's worker registry */
	int64_t reg_at;     /* wall ms of its last write, by the heartbeat thread */
};

/* ---- the live list (kicks, fork) ------------------------------------------------ */

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static dura_worker *live;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;

static void live_prepare(void)
{
	pthread_mutex_lock(&live_mu);
}

static void live_parent(void)
{
	pthread_mutex_unlock(&live_mu);
}

/* The child has none of the workers' threads: none of them runs there. */
static void live_child(void)
{
	live = NULL;
	pthread_mutex_init(&live_mu, NULL);
}

static void live_install(void)
{
	pthread_atfork(live_prepare, live_parent, live_child);
}

static int live_remove(dura_worker *w)
{
	int found = 0;
	pthread_mutex_lock(&live_mu);
	for (dura_worker **p = &live; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&live_mu);
	return found;
}

void dura__workers_kick(dura_store *store)
{
	pthread_once(&live_once, live_install);
	pthread_mutex_lock(&live_mu);
	for (dura_worker *w = live; w; w = w->next) {
		if (w->store != store)
			continue;
		pthread_mutex_lock(&w->mu);
		w->kicked = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_mutex_unlock(&live_mu);
}

/* ---- helpers ------------------------------------------------------------------ */

/* A jittered pause in [ms/2, ms], from fork-safe randomness. */
static int64_t jitter(int64_t ms)
{
	char b[DURA_UUID_LEN + 1];
	if (ms <= 1 || dura_uuid7(b))
		return ms > 0 ? ms : 0;
	unsigned r = (unsigned)strtoul(b + 28, NULL, 16);
	return ms / 2 + (int64_t)(r % (unsigned)(ms / 2 + 1));
}

/* Wait on w->cv (w->mu held) for at most ms. */
static void wait_ms(dura_worker *w, pthread_cond_t *cv, int64_t ms)
{
	struct timespec until = dura__mono_after_ms(ms > 0 ? ms : 0);
	pthread_cond_timedwait(cv, &w->mu, &until);
}

/* Give a lease up; a busy store is waited out, a lease already gone is fine. */
static void release(dura_worker *w, const char *run_id)
{
	for (int busy = 0;; busy++) {
		int rc = dura_store_release_lease(w->store, run_id, w->id);
		if (rc == DURA_EBUSY && busy < 100) {
			dura__sleep_ms(jitter((int64_t)2 << (busy < 5 ? busy : 5)));
			continue;
		}
		if (rc && rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			atomic_fetch_add(&w->errors, 1);
		return;
	}
}

/* ---- executing ---------------------------------------------------------------- */

/* The step loop's question between steps (dura__lease.stop). */
static int should_stop(void *payload, int busy)
{
	slot *sl = payload;
	dura_worker *w = sl->w;
	pthread_mutex_lock(&w->mu);
	/* a busy store is waited out while the lease is ours, also while stopping */
	int stop = sl->lost || sl->released || (!busy && w->stopping);
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* Write the queued commits b[0..n) (w->gmu not held): one commit_batch,
 * each commit still CAS-checked on its own. */
static void group_write(dura_worker *w, pending **b, size_t n)
{
	if (n == 1) {
		b[0]->rc = dura__store_commit_trusted(w->store, b[0]->c, b[0]->res);
		return;
	}
	dura_commit cs[GROUP_MAX];
	dura_commit_result rs[GROUP_MAX];
	memset(cs, 0, sizeof(cs));
	memset(rs, 0, sizeof(rs));
	if (n > GROUP_MAX)
		n = GROUP_MAX; /* never: the committer takes at most that many */
	for (size_t i = 0; i < n; i++)
		cs[i] = *b[i]->c;
	int rc = dura_store_commit_batch(w->store, cs, n, rs);
	atomic_fetch_add(&w->batches, 1);
	atomic_fetch_add(&w->batched, n);
	for (size_t i = 0; i < n; i++) {
		*b[i]->res = rs[i];
		b[i]->rc = rc == 0 || rc == DURA_ECONFLICT ? rs[i].code : rc;
	}
}

/* The step loop's commit under group commit (dura__lease.commit). */
static int group_commit(void *payload, const dura_commit *c, dura_commit_result *res)
{
	dura_worker *w = ((slot *)payload)->w;
	pending me = {c, res, 0, 0, NULL};
	int alone = 1;
	pthread_mutex_lock(&w->gmu);
	*w->gtail = &me;
	w->gtail = &me.next;
	while (!me.done) {
		if (w->gleader) {
			pthread_cond_wait(&w->gcv, &w->gmu);
			continue;
		}
		w->gleader = 1;
		pending *b[GROUP_MAX];
		size_t n = 0;
		while (w->ghead && n < GROUP_MAX) {
			b[n++] = w->ghead;
			w->ghead = w->ghead->next;
		}
		if (!w->ghead)
			w->gtail = &w->ghead;
		pthread_mutex_unlock(&w->gmu);
		group_write(w, b, n);
		alone = alone && n == 1 && b[0] == &me;
		pthread_mutex_lock(&w->gmu);
		for (size_t i = 0; i < n; i++)
			b[i]->done = 1;
		w->gleader = 0;
		pthread_cond_broadcast(&w->gcv);
	}
	pthread_mutex_unlock(&w->gmu);
	/* a commit written alone keeps the store's own error; one written in a
	 * group gets its outcome in this thread's error */
	if (me.rc && !alone)
		return dura_error_set_native(me.rc, "", 0, NULL, "run %s: the commit of its step (in a group commit): %s",
		                             c->run_id, dura_strerror(me.rc));
	if (me.rc == 0)
		dura_error_clear();
	return me.rc;
}

static void execute(dura_worker *w, slot *sl, dura_record *rec)
{
	dura__lease lease = {w->id, should_stop, w->group ? group_commit : NULL, sl};
	int rc = dura__run_execute_leased(w->eng, &rec, &lease);
	int state = rec->run_state;
	int64_t due = rec->next_run_at;
	int partway = state == DURA_RUN_RUNNING;
	pthread_mutex_lock(&w->mu);
	int lost = sl->lost || sl->released;
	pthread_mutex_unlock(&w->mu);
	if (rc == 0 && state == DURA_RUN_COMPLETED) {
		atomic_fetch_add(&w->completed, 1);
		dura__metrics_outcome(1);
	} else if (rc == 0 && state == DURA_RUN_FAILED) {
		atomic_fetch_add(&w->failed, 1);
		dura__metrics_outcome(0);
	} else if (rc == DURA_ECONFLICT || lost)
		atomic_fetch_add(&w->abandoned, 1);
	else if (rc)
		atomic_fetch_add(&w->errors, 1);
	/* the lease goes back unless it is gone already (a run's last commit
	 * released it); a run that stays runnable is claimable by anyone at
	 * once */
	int ended = rc == 0 && (state == DURA_RUN_COMPLETED || state == DURA_RUN_FAILED);
	/* a waiting run's commit gave its lease up too (lease_owner "") */
	if (!lost && !ended && rc != DURA_ECONFLICT && rec->lease_owner && *rec->lease_owner)
		release(w, rec->run_id);
	pthread_mutex_lock(&w->mu);
	if (partway && !lost && rc == 0 && due > dura_now_ms() && (!w->next_due || due < w->next_due))
		w->next_due = due; /* claim it again when due, not a poll later */
	sl->busy = 0;
	sl->lost = 0;
	sl->released = 0;
	sl->run_id[0] = '\0';
	w->executing--;
	pthread_cond_broadcast(&w->idle);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	dura_record_free(rec);
}

/* Claim a batch for the idle executors. Called with w->mu held and
 * w->claiming set; returns with w->mu held. *pause is the claimer's
 * back-off, reset by a claim that got runs. */
static void claim_batch(dura_worker *w, int64_t *pause)
{
	size_t idle = (size_t)(w->threads - w->executing) > w->nqueue ? (size_t)(w->threads - w->executing) - w->nqueue : 0;
	size_t want = idle < w->batch ? idle : w->batch;
	if (want == 0)
		return;
	w->kicked = 0;
	pthread_mutex_unlock(&w->mu);
	dura_record_list l;
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = w->id;
	req.workflows = w->claim_wf;
	req.nworkflows = w->nworkflows;
	req.versions = w->claim_ver;
	req.nversions = w->nclaim_ver;
	req.max = want;
	req.lease_ms = w->lease_ms;
	req.taken_over = w->taken_over; /* only the claimer uses it */
	int rc = dura_store_claim(w->store, &req, &l);
	pthread_mutex_lock(&w->mu);
	if (rc == 0 && l.count > 0) {
		atomic_fetch_add(&w->claimed, l.count);
		dura__metrics_claimed(l.count);
		for (size_t i = 0; i < l.count; i++) {
			dura_record *r = dura_malloc(sizeof(*r));
			if (!r) {
				/* it comes back when its lease expires */
				dura_record_clear(&l.items[i]);
				atomic_fetch_add(&w->errors, 1);
				continue;
			}
			*r = l.items[i];
			/* our own lease ran out while an executor of ours is still
			 * inside the run (a heartbeat outage), and we claimed it
			 * again: that executor goes on under the new lease (the
			 * heartbeat extends it), the run is not queued twice */
			int running = 0;
			for (int t = 0; t < w->threads; t++)
				if (w->slots[t].busy && !w->slots[t].released && strcmp(w->slots[t].run_id, r->run_id) == 0) {
					w->slots[t].lost = 0; /* the lease is ours again */
					running = 1;
				}
			if (running) {
				dura_record_free(r);
				continue;
			}
			if (w->taken_over[i]) {
				atomic_fetch_add(&w->rescued, 1);
				dura__metrics_rescue();
			}
			w->queue[w->nqueue].rec = r;
			w->queue[w->nqueue].lost = 0;
			w->nqueue++;
		}
		dura_free(l.items);
		dura_free(l.next_cursor);
		*pause = 1;
		pthread_cond_broadcast(&w->cv);
		return;
	}
	if (rc == 0)
		dura_record_list_free(&l);
	else if (rc != DURA_EBUSY)
		atomic_fetch_add(&w->errors, 1);
	/* nothing to claim (or a busy or failing store): back off, bounded by
	 * poll_ms, cut short by a kick, a stop or a run we know falls due */
	int64_t wait = rc == 0 ? *pause : jitter(*pause > 2 ? *pause : 2);
	if (w->next_due) {
		int64_t left = w->next_due - dura_now_ms();
		if (left <= 0) {
			w->next_due = 0;
			wait = 0;
		} else if (left < wait) {
			wait = left;
		}
	}
	if (!w->kicked && !w->stopping && wait > 0) {
		if (dura__store_can_wait_ready(w->store)) {
			/* a store that notifies wakes us when a run becomes
			 * claimable, wherever it was made so; a stop is seen
			 * when this wait ends (at most poll_ms) */
			int64_t t0 = dura_now_ms();
			pthread_mutex_unlock(&w->mu);
			int wr = dura__store_wait_ready(w->store, wait);
			pthread_mutex_lock(&w->mu);
			/* a store that cannot listen now (unreachable) must not turn
			 * the wait into a busy loop: sleep out the rest */
			int64_t left = wait - (dura_now_ms() - t0);
			if (wr != 0 && wr != DURA_ETIMEOUT && left > 0 && !w->kicked && !w->stopping)
				wait_ms(w, &w->cv, left);
		} else {
			wait_ms(w, &w->cv, wait);
		}
	}
	*pause = *pause * 2 < w->poll_ms ? *pause * 2 : w->poll_ms;
	if (w->kicked)
		*pause = 1;
}

/* The worker whose executor this thread is (a stop from its own node
 * would wait for itself). */
static _Thread_local dura_worker *tl_worker;

static void *executor_main(void *arg)
{
	slot *sl = arg;
	dura_worker *w = sl->w;
	tl_worker = w;
	int64_t pause = 1;
	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		if (w->nqueue > 0) {
			queued q = w->queue[0];
			memmove(w->queue, w->queue + 1, (w->nqueue - 1) * sizeof(*w->queue));
			w->nqueue--;
			if (q.lost) {
				atomic_fetch_add(&w->abandoned, 1);
				dura_record_free(q.rec);
				continue;
			}
			sl->busy = 1;
			sl->lost = 0;
			sl->released = 0;
			snprintf(sl->run_id, sizeof(sl->run_id), "%s", q.rec->run_id);
			w->executing++;
			pthread_mutex_unlock(&w->mu);
			execute(w, sl, q.rec);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->claiming) {
			wait_ms(w, &w->cv, w->poll_ms);
			continue;
		}
		w->claiming = 1;
		claim_batch(w, &pause);
		w->claiming = 0;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the worker registry --------------------------------------------------------- */

/* Runs leased now, queued or executing. */
static int64_t held_now(dura_worker *w)
{
	pthread_mutex_lock(&w->mu);
	int64_t n = (int64_t)w->nqueue + w->executing;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Write the worker's row; a failure is counted, and the next beat writes it again. */
static int registry_write(dura_worker *w)
{
	w->reg_at = dura_now_ms();
	int rc = dura__registry_put(&w->reg, held_now(w));
	if (rc && rc != DURA_EBUSY)
		atomic_fetch_add(&w->errors, 1);
	return rc;
}

/* The heartbeat thread's registry write, once per heartbeat_ms (a failed
 * lease heartbeat is retried sooner; the registry is not). w->mu not held. */
static void registry_beat(dura_worker *w)
{
	int64_t since = dura_now_ms() - w->reg_at;
	if (since >= w->heartbeat_ms || since < 0)
		registry_write(w);
}

/* At start, before the threads run: the first write, then the rows dead
 * for over DURA_WORKER_PRUNE_MS go, so the table stays bounded. Only
 * running out of memory fails the start (as every allocation of start
 * does); a store that fails is counted and the worker works unlisted
 * until a heartbeat's write goes through. */
static int registry_join(dura_worker *w)
{
	int rc = registry_write(w);
	if (rc == 0 && (rc = dura__registry_prune(&w->reg)) != 0)
		atomic_fetch_add(&w->errors, 1);
	if (rc == DURA_ENOMEM)
		return rc;
	dura_error_clear();
	return 0;
}

/* At stop, after the threads ended: the row goes, keeping the thread's
 * error as stop left it. A row that cannot be deleted shows the worker
 * dead after its lease, and is pruned later. */
static void registry_leave(dura_worker *w)
{
	dura__error_saved why;
	dura__error_save(&why);
	dura__registry_delete(&w->reg);
	dura__error_restore(&why);
}

/* ---- heartbeats ------------------------------------------------------------------ */

static int by_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *heartbeat_main(void *arg)
{
	dura_worker *w = arg;
	size_t cap = w->batch + (size_t)w->threads;
	char **ids = dura_calloc(cap, sizeof(char *));
	char *buf = dura_malloc(cap * (DURA_MAX_ID_LEN + 1));
	int *codes = dura_calloc(cap, sizeof(int));
	int64_t wait = w->heartbeat_ms;
	pthread_mutex_lock(&w->mu);
	while (!w->hb_stop) {
		wait_ms(w, &w->hbcv, wait);
		if (w->hb_stop)
			break;
		/* the registry first: once the leases are extended, the thread
		 * makes no store call until the next period */
		pthread_mutex_unlock(&w->mu);
		registry_beat(w);
		pthread_mutex_lock(&w->mu);
		if (w->hb_stop)
			break;
		size_t n = 0;
		if (!ids || !buf || !codes) {
			wait = HB_RETRY_MS;
			continue;
		}
		for (size_t i = 0; i < w->nqueue && n < cap; i++, n++) {
			ids[n] = buf + n * (DURA_MAX_ID_LEN + 1);
			snprintf(ids[n], DURA_MAX_ID_LEN + 1, "%s", w->queue[i].rec->run_id);
		}
		for (int t = 0; t < w->threads && n < cap; t++)
			if (w->slots[t].busy && !w->slots[t].released) {
				ids[n] = buf + n * (DURA_MAX_ID_LEN + 1);
				snprintf(ids[n], DURA_MAX_ID_LEN + 1, "%s", w->slots[t].run_id);
				n++;
			}
		pthread_mutex_unlock(&w->mu);
		/* in key order, as a batch of commits locks its runs: the two
		 * never wait for each other in a cycle (a deadlock) */
		qsort(ids, n, sizeof(*ids), by_id);
		int rc = 0;
		if (n > 0)
			rc = dura_store_extend_leases(w->store, w->id, (const char *const *)ids, n, w->lease_ms, codes);
		pthread_mutex_lock(&w->mu);
		if (n > 0 && (rc == 0 || rc == DURA_ECONFLICT || rc == DURA_ENOTFOUND)) {
			atomic_fetch_add(&w->heartbeats, 1);
			for (size_t i = 0; i < n; i++) {
				if (codes[i] == 0)
					continue;
				for (size_t q = 0; q < w->nqueue; q++)
					if (strcmp(w->queue[q].rec->run_id, ids[i]) == 0)
						w->queue[q].lost = 1;
				for (int t = 0; t < w->threads; t++)
					if (w->slots[t].busy && strcmp(w->slots[t].run_id, ids[i]) == 0)
						w->slots[t].lost = 1;
			}
			rc = 0;
		} else if (n > 0 && rc != DURA_EBUSY) {
			atomic_fetch_add(&w->errors, 1);
		}
		wait = rc == 0 ? w->heartbeat_ms : (HB_RETRY_MS < w->heartbeat_ms ? HB_RETRY_MS : w->heartbeat_ms);
	}
	pthread_mutex_unlock(&w->mu);
	dura_free(ids);
	dura_free(buf);
	dura_free(codes);
	return NULL;
}

/* ---- the scheduler ---------------------------------------------------------------- */

/*
 * Fire the due ticks of the schedules of the workflows this worker
 * serves, then sleep until the earliest next tick - at most a second, so
 * that a schedule set or changed elsewhere is seen within one. Every
 * retention_ms it also starts a retention pass (retention.c), whose steps
 * follow each other, while batches come back full, after a pause
 * (DURA__RETENTION_PAUSE_MS, or twice what the step took when longer,
 * up to 2 s).
 */
static void *scheduler_main(void *arg)
{
	dura_worker *w = arg;
	/* the first pass one interval after the start: a fleet that starts at
	 * once does not prune at once, and a short-lived worker never writes */
	int64_t retention_at = w->retention_ms > 0 ? dura__mono_ms() + w->retention_ms : -1, step_ms = -1;
	dura__retention_cursor cur = {0, 0};
	pthread_mutex_lock(&w->mu);
	while (!w->hb_stop && !w->stopping) {
		pthread_mutex_unlock(&w->mu);
		uint64_t fired = 0, pruned = 0;
		int64_t next = dura__schedules_fire(w->eng, (const char *const *)w->workflows, w->nworkflows, &fired);
		step_ms = -1;
		if (retention_at >= 0 && dura__mono_ms() >= retention_at) {
			int64_t t0 = dura__mono_ms();
			if (dura__retention_step(w->eng, (const char *const *)w->workflows, w->nworkflows, w->outbox_keep_ms, &cur,
			                         &pruned) != 0 &&
			    dura_error_last()->code != DURA_EBUSY)
				atomic_fetch_add(&w->errors, 1);
			if (!cur.done) {
				step_ms = 2 * (dura__mono_ms() - t0);
				step_ms = step_ms < DURA__RETENTION_PAUSE_MS ? DURA__RETENTION_PAUSE_MS
				          : step_ms > 20 * DURA__RETENTION_PAUSE_MS ? 20 * DURA__RETENTION_PAUSE_MS
				                                                    : step_ms;
			} else {
				retention_at = dura__mono_ms() + w->retention_ms;
			}
		}
		pthread_mutex_lock(&w->mu);
		w->ticks += fired;
		w->pruned += pruned;
		if (w->hb_stop || w->stopping)
			break;
		int64_t wait = 1000, left = next ? next - dura_now_ms() : wait;
		if (left < wait)
			wait = left > 0 ? left : 0;
		if (step_ms >= 0 && step_ms < wait)
			wait = step_ms;
		if (wait > 0)
			wait_ms(w, &w->hbcv, wait);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- start, stop ------------------------------------------------------------------ */

static void worker_free(dura_worker *w)
{
	for (size_t i = 0; i < w->nworkflows; i++)
		dura_free(w->workflows[i]);
	dura_free(w->workflows);
	dura_free(w->claim_wf);
	dura_free(w->claim_ver);
	dura_free(w->taken_over);
	dura_free(w->name);
	for (size_t i = 0; i < w->nqueue; i++)
		dura_record_free(w->queue[i].rec);
	dura_free(w->queue);
	dura_free(w->slots);
	dura__registry_free(&w->reg);
	dura_free(w);
}

static int invalid(const char *what, long long v, const char *range)
{
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_start: %s %lld is out of range (%s)", what, v,
	                             range);
}

/* Check the options; nothing is allocated. */
static int check_options(const dura_worker_options *o, int64_t *hb)
{
	if (o->threads < 1 || o->threads > DURA_WORKER_MAX_THREADS)
		return invalid("threads", o->threads, "1 to 256");
	if (o->lease_ms < DURA_WORKER_MIN_LEASE_MS || o->lease_ms > 86400000)
		return invalid("lease_ms", (long long)o->lease_ms, "50 to 86400000");
	*hb = o->heartbeat_ms ? o->heartbeat_ms : o->lease_ms / 3;
	if (o->heartbeat_ms < 0 || *hb < 1 || *hb > o->lease_ms / 2)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_worker_start: heartbeat_ms %lld must be from 1 to lease_ms / 2 (%lld), so "
		                             "that one lost heartbeat does not lose the leases",
		                             (long long)o->heartbeat_ms, (long long)(o->lease_ms / 2));
	if (o->poll_ms < 1 || o->poll_ms > 60000)
		return invalid("poll_ms", (long long)o->poll_ms, "1 to 60000");
	if (o->batch < 0 || o->batch > 1000)
		return invalid("batch", o->batch, "0 to 1000");
	if (o->group_commit < -1 || o->group_commit > 1)
		return invalid("group_commit", o->group_commit, "-1, 0 or 1");
	if (o->nworkflows > 256)
		return invalid("nworkflows", (long long)o->nworkflows, "0 to 256");
	if (o->nworkflows && !o->workflows)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_start: %zu workflows but the list is NULL",
		                             o->nworkflows);
	if (o->name && (!*o->name || strlen(o->name) > NAME_MAX_LEN || !dura__utf8_valid(o->name)))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_worker_start: name must be 1 to %d bytes of UTF-8", NAME_MAX_LEN);
	if (o->version >= 2 && (o->retention_ms < -1 || o->retention_ms > 86400000))
		return invalid("retention_ms", (long long)o->retention_ms, "-1 to 86400000");
	if (o->version >= 2 && o->outbox_keep_ms < -1)
		return invalid("outbox_keep_ms", (long long)o->outbox_keep_ms, "-1 or more");
	return 0;
}

/* The workflows to serve, copied: the ones named (each registered), or all. */
static int copy_workflows(dura_worker *w, dura_engine *eng, const dura_worker_options *o)
{
	if (o->nworkflows) {
		if (!(w->workflows = dura_calloc(o->nworkflows, sizeof(char *))))
			return dura_error_oom("");
		for (size_t i = 0; i < o->nworkflows; i++) {
			const char *name = o->workflows[i];
			if (!name || !*name || strlen(name) > DURA_MAX_NAME_LEN)
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
				                             "dura_worker_start: workflow %zu is NULL, empty or too long", i);
			if (!dura__engine_workflow(eng, name))
				return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
				                             "dura_worker_start: workflow %.255s is not registered in the engine", name);
			if (!(w->workflows[i] = dura_strdup(name)))
				return dura_error_oom("");
			w->nworkflows = i + 1;
		}
		return 0;
	}
	int rc = 0;
	pthread_mutex_lock(&eng->lock);
	size_t n = HASH_COUNT(eng->workflows);
	if (n == 0)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_start: the engine has no workflows registered");
	else if (n > 256)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                           "dura_worker_start: %zu workflows registered: name at most 256 to serve", n);
	else if (!(w->workflows = dura_calloc(n, sizeof(char *))))
		rc = dura_error_oom("");
	for (dura_workflow *wf = eng->workflows; rc == 0 && wf; wf = wf->hh.next) {
		if (!(w->workflows[w->nworkflows] = dura_strdup(wf->name)))
			rc = dura_error_oom("");
		else
			w->nworkflows++;
	}
	pthread_mutex_unlock(&eng->lock);
	return rc;
}

/* Each workflow served, with the flow limits it was registered with;
 * DURA_ENOTSUP when there are limits and the store cannot keep them. */
static int claim_workflows(dura_worker *w, dura_engine *eng)
{
	if (!(w->claim_wf = dura_calloc(w->nworkflows, sizeof(*w->claim_wf))))
		return dura_error_oom("");
	int limited = 0;
	for (size_t i = 0; i < w->nworkflows; i++) {
		const dura_workflow *wf = dura__engine_workflow(eng, w->workflows[i]);
		w->claim_wf[i].name = w->workflows[i];
		if (wf) {
			w->claim_wf[i].max_running = wf->max_running;
			w->claim_wf[i].max_per_key = wf->max_per_key;
			limited |= wf->max_running > 0 || wf->max_per_key > 0;
		}
	}
	int rc = dura__engine_versions(eng, (const char *const *)w->workflows, w->nworkflows, &w->claim_ver,
	                               &w->nclaim_ver);
	if (rc)
		return rc;
	if (limited && !dura__store_can_claim(w->store))
		return dura_error_set_native(DURA_ENOTSUP, dura__store_scheme(w->store), 0, NULL,
		                             "dura_worker_start: a workflow has flow limits and the %s store has no flow control",
		                             dura__store_scheme(w->store));
	return 0;
}

static int make_id(dura_worker *w)
{
	char host[65] = "";
	char uuid[DURA_UUID_LEN + 1];
	int rc = dura_uuid7(uuid);
	if (rc)
		return rc;
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[64] = '\0';
	snprintf(w->id, sizeof(w->id), "%s:%ld:%s", host, (long)getpid(), uuid);
	return 0;
}

static void stop_threads(dura_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	w->hb_stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_cond_broadcast(&w->hbcv);
	pthread_mutex_unlock(&w->mu);
	for (int t = 0; t < w->threads; t++)
		if (w->slots[t].started)
			pthread_join(w->slots[t].thread, NULL);
	if (w->hb_started)
		pthread_join(w->hb, NULL);
	if (w->sched_started)
		pthread_join(w->sched, NULL);
}

/* The worker's locks and condition variables, once its threads are gone. */
static void sync_destroy(dura_worker *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->hbcv);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->gcv);
	pthread_mutex_destroy(&w->gmu);
}

int dura_worker_start(dura_worker **out, dura_engine *eng, const dura_worker_options *opts)
{
	dura_worker_options defaults = DURA_WORKER_OPTIONS_INIT;
	int64_t hb = 0;
	if (out)
		*out = NULL;
	if (!out || !eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_start: out or engine is NULL");
	if (opts && (opts->version < 1 || opts->version > DURA_WORKER_OPTIONS_VERSION))
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "worker options version %u, expected 1 to %u",
		                             opts->version, DURA_WORKER_OPTIONS_VERSION);
	opts = opts ? opts : &defaults;
	int rc = check_options(opts, &hb);
	if (rc)
		return rc;
	dura_worker *w = dura_calloc(1, sizeof(*w));
	if (!w)
		return dura_error_oom("");
	w->eng = eng;
	w->store = eng->store;
	w->threads = opts->threads;
	w->lease_ms = opts->lease_ms;
	w->heartbeat_ms = hb;
	w->poll_ms = opts->poll_ms;
	w->batch = (size_t)(opts->batch ? opts->batch : opts->threads);
	w->group = opts->group_commit > 0;
	int64_t every = opts->version >= 2 ? opts->retention_ms : 0, keep = opts->version >= 2 ? opts->outbox_keep_ms : 0;
	w->retention_ms = every == 0 ? 60000 : every;
	w->outbox_keep_ms = keep == 0 ? INT64_C(7) * 86400000 : keep;
	if (opts->group_commit == 0) {
		/* on where it was measured to pay (docs/benchmarks.md): the
		 * SQL stores, whose batch is one transaction of a few
		 * statements; off on memory, where a commit costs no I/O */
		const char *scheme = dura__store_scheme(w->store);
		w->group = strcmp(scheme, "sqlite") == 0 || strcmp(scheme, "mysql") == 0 || strcmp(scheme, "postgres") == 0;
	}
	if ((rc = copy_workflows(w, eng, opts)) != 0 || (rc = claim_workflows(w, eng)) != 0 || (rc = make_id(w)) != 0) {
		worker_free(w);
		return rc;
	}
	w->name = dura_strdup(opts->name ? opts->name : "worker");
	w->queue = dura_calloc(w->batch + (size_t)w->threads, sizeof(*w->queue));
	w->slots = dura_calloc((size_t)w->threads, sizeof(*w->slots));
	w->taken_over = dura_calloc(w->batch, sizeof(*w->taken_over));
	if (!w->name || !w->queue || !w->slots || !w->taken_over) {
		worker_free(w);
		return dura_error_oom("");
	}
	if ((rc = dura__registry_init(&w->reg, w->store, w->id, w->name, w->threads, w->lease_ms, w->claim_ver,
	                              w->nclaim_ver)) != 0) {
		worker_free(w);
		return rc;
	}
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		worker_free(w);
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL, "dura_worker_start: no mutex");
	}
	if (pthread_mutex_init(&w->gmu, NULL) != 0 || pthread_cond_init(&w->gcv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		worker_free(w);
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL, "dura_worker_start: no mutex");
	}
	w->gtail = &w->ghead;
	if (dura__cond_init_mono(&w->cv) != 0 || dura__cond_init_mono(&w->idle) != 0 || dura__cond_init_mono(&w->hbcv) != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->gcv);
		pthread_mutex_destroy(&w->gmu);
		worker_free(w);
		return dura_error_set_native(DURA_ENOMEM, "", 0, NULL, "dura_worker_start: no condition variable");
	}
	rc = registry_join(w);
	for (int t = 0; t < w->threads && rc == 0; t++) {
		w->slots[t].w = w;
		if (pthread_create(&w->slots[t].thread, NULL, executor_main, &w->slots[t]) != 0)
			rc = dura_error_set_native(DURA_ERROR, "", 0, NULL, "dura_worker_start: cannot start executor thread %d", t);
		else
			w->slots[t].started = 1;
	}
	if (rc == 0) {
		if (pthread_create(&w->hb, NULL, heartbeat_main, w) != 0)
			rc = dura_error_set_native(DURA_ERROR, "", 0, NULL, "dura_worker_start: cannot start the heartbeat thread");
		else
			w->hb_started = 1;
	}
	if (rc == 0 && dura__store_can_wait(w->store)) {
		if (pthread_create(&w->sched, NULL, scheduler_main, w) != 0)
			rc = dura_error_set_native(DURA_ERROR, "", 0, NULL, "dura_worker_start: cannot start the scheduler thread");
		else
			w->sched_started = 1;
	}
	if (rc) {
		dura__error_saved why;
		dura__error_save(&why);
		stop_threads(w);
		for (size_t i = 0; i < w->nqueue; i++)
			release(w, w->queue[i].rec->run_id);
		sync_destroy(w);
		dura__registry_delete(&w->reg);
		worker_free(w);
		return dura__error_restore(&why);
	}
	pthread_once(&live_once, live_install);
	pthread_mutex_lock(&live_mu);
	w->next = live;
	live = w;
	pthread_mutex_unlock(&live_mu);
	*out = w;
	return 0;
}

int dura_worker_stop(dura_worker *w, int64_t drain_ms)
{
	if (!w)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_stop: worker is NULL");
	if (tl_worker == w)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_worker_stop: called from inside a node of the worker it would stop");
	pthread_once(&live_once, live_install);
	if (!live_remove(w))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_worker_stop: not a running worker of this process (stopped already?)");
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	/* what was claimed and not begun goes back at once */
	size_t nq = w->nqueue;
	queued *q = NULL;
	if (nq && (q = dura_malloc(nq * sizeof(*q))) != NULL) {
		memcpy(q, w->queue, nq * sizeof(*q));
		w->nqueue = 0;
	}
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; q && i < nq; i++) {
		if (!q[i].lost)
			release(w, q[i].rec->run_id);
		dura_record_free(q[i].rec);
	}
	dura_free(q);

	/* the nodes running may finish until drain_ms; their steps commit */
	int64_t end = drain_ms >= 0 ? dura__add_ms(dura_now_ms(), drain_ms) : 0;
	pthread_mutex_lock(&w->mu);
	while (w->executing > 0) {
		if (drain_ms < 0) {
			pthread_cond_wait(&w->idle, &w->mu);
			continue;
		}
		int64_t left = end - dura_now_ms();
		if (left <= 0)
			break;
		wait_ms(w, &w->idle, left);
	}
	int late = w->executing > 0;
	char (*give_up)[DURA_MAX_ID_LEN + 1] = NULL;
	int ngive = 0;
	if (late) {
		/* past drain_ms: the leases go now, so that another worker can
		 * take the runs over; the nodes' commits are fenced by version */
		rc = dura_error_set_native(DURA_ETIMEOUT, "", 0, NULL,
		                           "dura_worker_stop: %d node(s) still running after %lld ms; their leases were released",
		                           w->executing, (long long)drain_ms);
		give_up = dura_calloc((size_t)w->threads, sizeof(*give_up));
		for (int t = 0; t < w->threads; t++)
			if (w->slots[t].busy && !w->slots[t].lost && give_up) {
				w->slots[t].released = 1;
				memcpy(give_up[ngive++], w->slots[t].run_id, sizeof(give_up[0]));
			}
	}
	pthread_mutex_unlock(&w->mu);
	if (late) {
		dura__error_saved why;
		dura__error_save(&why);
		for (int i = 0; i < ngive; i++)
			release(w, give_up[i]);
		dura_free(give_up);
		dura__error_restore(&why);
	}
	stop_threads(w);
	registry_leave(w);
	/* a run an executor queued after we emptied the queue goes back too */
	for (size_t i = 0; i < w->nqueue; i++)
		if (!w->queue[i].lost)
			release(w, w->queue[i].rec->run_id);
	sync_destroy(w);
	worker_free(w);
	if (rc == 0)
		dura_error_clear();
	return rc;
}

int dura_worker_stats_get(dura_worker *w, dura_worker_stats *out)
{
	if (!w || !out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_worker_stats_get: worker or out is NULL");
	memset(out, 0, sizeof(*out));
	out->claimed = atomic_load(&w->claimed);
	out->completed = atomic_load(&w->completed);
	out->failed = atomic_load(&w->failed);
	out->rescued = atomic_load(&w->rescued);
	out->abandoned = atomic_load(&w->abandoned);
	out->errors = atomic_load(&w->errors);
	out->heartbeats = atomic_load(&w->heartbeats);
	out->group_batches = atomic_load(&w->batches);
	out->group_commits = atomic_load(&w->batched);
	pthread_mutex_lock(&w->mu);
	out->ticks_fired = w->ticks;
	out->pruned = w->pruned;
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_lock(&w->mu);
	out->held = w->nqueue + (uint64_t)w->executing;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

const char *dura_worker_id(const dura_worker *w)
{
	return w ? w->id : NULL;
}

const char *dura_worker_name(const dura_worker *w)
{
	return w ? w->name : NULL;
}
