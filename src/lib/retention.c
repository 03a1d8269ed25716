/*
 * retention.c - a worker's retention (dura.h, "Retention"): the policies of
 * the workflows it serves, the outbox and the expired cache entries, in
 * batches of DURA_RETENTION_BATCH, each one short transaction of the store.
 *
 * A pass is a series of steps, each one batch: the runs of each (workflow,
 * end state) whose policy keeps them for a limited time, until a batch
 * comes back short; then the outbox; then the expired cache entries. The worker's scheduler thread takes a step, and
 * when a batch came back full takes the next one after a pause
 * (DURA__RETENTION_PAUSE_MS, or twice what the step took) - so a long
 * purge leaves the store two thirds of its time for the commits of runs,
 * and a commit waits for one batch at most.
 * Several workers may prune at once: a run one of them pruned is not
 * matched again, so they only share the work.
 */
#include "engine.h"

#include <string.h>

/* One batch of runs of wf in state st that ended keep_ms ago or more:
 * how many went (< 0: the store's error). */
static int64_t prune_batch(dura_engine *eng, const dura_workflow *wf, int st, int64_t keep_ms)
{
	dura_prune req = DURA_PRUNE_INIT;
	req.workflow = wf->name;
	req.run_state = st;
	req.ended_before = dura_now_ms() - keep_ms;
	req.whole = wf->retention.whole;
	req.limit = DURA_RETENTION_BATCH;
	int64_t n = 0;
	int rc = dura_store_prune(eng->store, &req, &n);
	return rc ? rc : n;
}

/* What a pass walks through, in order: per workflow its three end
 * states, then the outbox, then the expired cache entries. */
enum { ITEM_COMPLETED, ITEM_FAILED, ITEM_CANCELLED, ITEMS_PER_WORKFLOW };

int dura__retention_step(dura_engine *eng, const char *const *names, size_t n, int64_t outbox_keep_ms,
                         dura__retention_cursor *cur, uint64_t *pruned)
{
	if (!dura__store_has_versions(eng->store)) {
		cur->done = 1; /* an external store of contract version 5 or older prunes nothing */
		return 0;
	}
	static const int states[] = {DURA_RUN_COMPLETED, DURA_RUN_FAILED, DURA_RUN_CANCELLED};
	cur->done = 0;
	/* the next item with something to do: one batch of it */
	for (; cur->at < n * ITEMS_PER_WORKFLOW; cur->at++) {
		const dura_workflow *wf = dura__engine_workflow(eng, names[cur->at / ITEMS_PER_WORKFLOW]);
		if (!wf) /* the policy is that of the version registered last */
			continue;
		int item = (int)(cur->at % ITEMS_PER_WORKFLOW);
		int64_t keep = item == ITEM_COMPLETED ? wf->retention.completed_ms
		               : item == ITEM_FAILED  ? wf->retention.failed_ms
		                                      : wf->retention.cancelled_ms;
		if (keep <= 0)
			continue;
		int64_t got = prune_batch(eng, wf, states[item], keep);
		if (got < 0) {
			cur->at++; /* on with the next item: this one's turn comes in the next pass */
			return (int)got;
		}
		*pruned += (uint64_t)got;
		if (got < DURA_RETENTION_BATCH)
			cur->at++;
		return 0;
	}
	size_t outbox = n * ITEMS_PER_WORKFLOW, cache = outbox + 1;
	if (cur->at == outbox) {
		if (outbox_keep_ms <= 0) {
			cur->at++;
		} else {
			int64_t gone = 0;
			int rc = dura_store_outbox_prune(eng->store, dura_now_ms() - outbox_keep_ms, DURA_RETENTION_BATCH, &gone);
			*pruned += (uint64_t)gone;
			if (rc || gone < DURA_RETENTION_BATCH)
				cur->at++;
			return rc;
		}
	}
	if (cur->at == cache) {
		int64_t gone = 0;
		int rc = dura_store_cache_purge_expired(eng->store, &gone);
		*pruned += (uint64_t)gone;
		cur->at++;
		return rc;
	}
	cur->at = 0;
	cur->done = 1;
	return 0;
}
