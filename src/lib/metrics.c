/*
 * metrics.c - this process's counters, and the Prometheus text of them
 * and of a store's figures (dura_metrics_get, dura_metrics_format).
 *
 * The counters are process-wide atomics bumped where the work happens:
 * the store's commit paths (store.c) time each commit and count it, the
 * step loop (run.c) counts failed attempts, the cache lookup counts hits
 * and misses, workers (worker.c) count claims, rescues and outcomes.
 * Relaxed atomics: each counter is exact, a read of several is not a
 * snapshot (a scrape never needed one).
 *
 * The store's figures are read at format time, one call each, and a
 * figure the store does not keep is left out rather than shown as 0.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t bounds_us[DURA_METRICS_LATENCY_BUCKETS] = DURA_METRICS_LATENCY_BOUNDS_US;

static struct {
	_Atomic uint64_t commits, steps, conflicts, errors;
	_Atomic uint64_t le[DURA_METRICS_LATENCY_BUCKETS]; /* per bucket, not cumulative */
	_Atomic uint64_t timed, sum_us;
	_Atomic uint64_t failed_attempts, hits, misses, claimed, rescues, completed, failed;
} m;

#define BUMP(field, n) atomic_fetch_add_explicit(&m.field, (n), memory_order_relaxed)
#define READ(field) atomic_load_explicit(&m.field, memory_order_relaxed)

void dura__metrics_commit(int rc, int with_step, int64_t elapsed_us)
{
	if (rc == 0) {
		BUMP(commits, 1);
		if (with_step)
			BUMP(steps, 1);
	} else if (rc == DURA_ECONFLICT) {
		BUMP(conflicts, 1);
	} else {
		BUMP(errors, 1);
	}
	uint64_t us = elapsed_us > 0 ? (uint64_t)elapsed_us : 0;
	size_t i = 0;
	while (i < DURA_METRICS_LATENCY_BUCKETS && us > bounds_us[i])
		i++;
	if (i < DURA_METRICS_LATENCY_BUCKETS)
		BUMP(le[i], 1);
	BUMP(timed, 1);
	BUMP(sum_us, us);
}

void dura__metrics_failed_attempt(void) { BUMP(failed_attempts, 1); }
void dura__metrics_cache(int hit) { hit ? BUMP(hits, 1) : BUMP(misses, 1); }
void dura__metrics_claimed(uint64_t n) { BUMP(claimed, n); }
void dura__metrics_rescue(void) { BUMP(rescues, 1); }
void dura__metrics_outcome(int completed) { completed ? BUMP(completed, 1) : BUMP(failed, 1); }

int dura_metrics_get(dura_metrics *out)
{
	if (!out)
		return dura_error_set(DURA_EINVAL, "dura_metrics_get: out is NULL");
	if (out->version != DURA_METRICS_VERSION)
		return dura_error_set(DURA_EVERSION, "dura_metrics_get: version %u (this library has %d)", out->version,
		                      DURA_METRICS_VERSION);
	out->commits = READ(commits);
	out->steps_committed = READ(steps);
	out->commit_conflicts = READ(conflicts);
	out->commit_errors = READ(errors);
	uint64_t cum = 0;
	for (size_t i = 0; i < DURA_METRICS_LATENCY_BUCKETS; i++) {
		cum += READ(le[i]);
		out->commit_latency_le[i] = cum;
	}
	out->commit_latency_count = READ(timed);
	if (out->commit_latency_count < cum) /* read after the buckets: never fewer than they hold */
		out->commit_latency_count = cum;
	out->commit_latency_sum_us = READ(sum_us);
	out->failed_attempts = READ(failed_attempts);
	out->cache_hits = READ(hits);
	out->cache_misses = READ(misses);
	out->runs_claimed = READ(claimed);
	out->lease_rescues = READ(rescues);
	out->runs_completed = READ(completed);
	out->runs_failed = READ(failed);
	return 0;
}

/* ---- the text format ------------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped, as the format wants. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	head(f, name, "counter", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	head(f, name, "gauge", help);
	fprintf(f, "%s %.17g\n", name, v);
}

static void process_text(FILE *f, const dura_metrics *x)
{
	counter(f, "dura_commits_total", "Successful store commits by this process, record-only ones included.",
	        x->commits);
	counter(f, "dura_steps_committed_total", "Steps committed by this process.", x->steps_committed);
	counter(f, "dura_commit_conflicts_total", "Commits refused for a stale run version (fencing), this process.",
	        x->commit_conflicts);
	counter(f, "dura_commit_errors_total", "Commits that failed with a store error, this process.", x->commit_errors);
	head(f, "dura_step_commit_duration_seconds", "histogram",
	     "Time of the store call of each commit by this process.");
	for (size_t i = 0; i < DURA_METRICS_LATENCY_BUCKETS; i++)
		fprintf(f, "dura_step_commit_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", (double)bounds_us[i] / 1e6,
		        x->commit_latency_le[i]);
	fprintf(f, "dura_step_commit_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", x->commit_latency_count);
	fprintf(f, "dura_step_commit_duration_seconds_sum %.6f\n", (double)x->commit_latency_sum_us / 1e6);
	fprintf(f, "dura_step_commit_duration_seconds_count %" PRIu64 "\n", x->commit_latency_count);
	counter(f, "dura_failed_attempts_total", "Node attempts that failed in this process.", x->failed_attempts);
	counter(f, "dura_cache_hits_total", "Step cache hits in this process.", x->cache_hits);
	counter(f, "dura_cache_misses_total", "Step cache misses in this process.", x->cache_misses);
	counter(f, "dura_runs_claimed_total", "Runs claimed by this process's workers.", x->runs_claimed);
	counter(f, "dura_lease_rescues_total",
	        "Runs this process's workers took over from a worker whose lease lapsed.", x->lease_rescues);
	counter(f, "dura_runs_completed_total", "Runs this process's workers completed.", x->runs_completed);
	counter(f, "dura_runs_failed_total", "Runs this process's workers brought to failed.", x->runs_failed);
}

/* The store's figures; returns 0 when the store answered the first call. */
static int store_text(FILE *f, dura_store *store)
{
	dura_run_count_list rc = {0};
	if (dura_store_run_counts(store, NULL, &rc) != 0)
		return -1;
	head(f, "dura_runs", "gauge", "Runs in the store by workflow and run state (every version summed).");
	for (size_t i = 0; i < rc.count; i++) {
		/* versions are listed apart, and together in this figure */
		int64_t n = rc.items[i].count;
		size_t j = i + 1;
		int dup = 0;
		for (size_t k = 0; k < i; k++)
			if (strcmp(rc.items[k].workflow_name, rc.items[i].workflow_name) == 0 &&
			    rc.items[k].run_state == rc.items[i].run_state)
				dup = 1;
		if (dup)
			continue;
		for (; j < rc.count; j++)
			if (strcmp(rc.items[j].workflow_name, rc.items[i].workflow_name) == 0 &&
			    rc.items[j].run_state == rc.items[i].run_state)
				n += rc.items[j].count;
		fputs("dura_runs{workflow=\"", f);
		label(f, rc.items[i].workflow_name);
		fprintf(f, "\",state=\"%s\"} %" PRId64 "\n", dura_run_state_name(rc.items[i].run_state), n);
	}
	dura_run_count_list_free(&rc);

	dura_store_gauges g;
	if (dura_store_gauges_get(store, &g) == 0) {
		gauge(f, "dura_runs_waiting", "Active runs waiting (sleep, signal, child) in the store.",
		      (double)g.waiting_runs);
		gauge(f, "dura_runs_due", "Runs due now that no live lease holds: what claims would take.",
		      (double)g.due_runs);
		gauge(f, "dura_runs_leased", "Runs leased now (being executed).", (double)g.leased_runs);
		gauge(f, "dura_outbox_pending", "Outbox events not yet acknowledged.", (double)g.outbox_pending);
		gauge(f, "dura_outbox_oldest_age_seconds", "Age of the oldest unacknowledged outbox event (0: none).",
		      g.outbox_oldest_at > 0 && g.now > g.outbox_oldest_at ? (double)(g.now - g.outbox_oldest_at) / 1e3 : 0);
	}
	dura_cache_stats cs;
	if (dura_store_cache_stats(store, &cs) == 0) {
		gauge(f, "dura_cache_entries", "Step cache entries in the store, expired ones included.", (double)cs.entries);
		gauge(f, "dura_cache_expired_entries", "Expired step cache entries not yet purged.", (double)cs.expired);
		gauge(f, "dura_cache_bytes", "Bytes of the step cache's values.", (double)cs.bytes);
	}
	dura_worker_list wl = {0};
	if (dura_store_list_workers(store, &wl) == 0) {
		size_t live = 0;
		for (size_t i = 0; i < wl.count; i++)
			live += !wl.items[i].dead;
		gauge(f, "dura_workers_live", "Workers in the registry that heartbeat within their lease.", (double)live);
		gauge(f, "dura_workers_dead", "Workers in the registry past their lease without a heartbeat.",
		      (double)(wl.count - live));
		dura_worker_list_free(&wl);
	}
	dura_error_clear();
	return 0;
}

int dura_metrics_format(dura_store *store, char **out)
{
	if (!out)
		return dura_error_set(DURA_EINVAL, "dura_metrics_format: out is NULL");
	*out = NULL;
	dura_metrics x = DURA_METRICS_INIT;
	dura_metrics_get(&x);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return dura_error_oom("");
	process_text(f, &x);
	if (store) {
		int up = store_text(f, store) == 0;
		gauge(f, "dura_store_up", "1 when the store answered this scrape.", up);
	}
	if (fclose(f) != 0 || !text) {
		free(text);
		return dura_error_oom("");
	}
	*out = dura_malloc(len + 1);
	if (!*out) {
		free(text);
		return dura_error_oom("");
	}
	memcpy(*out, text, len + 1);
	free(text);
	return 0;
}
