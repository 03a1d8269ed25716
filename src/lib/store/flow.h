/*
 * flow.h - the ledger a store keeps while it takes a claim with flow
 * limits (dura_store_claim). Internal; never installed.
 *
 * A store that claims with limits first serialises its limited claims (a
 * lock row, its write lock), then feeds the ledger the live leases it
 * counts - runs executing now, per workflow and concurrency key - then
 * offers it the runnable runs in claim order: the ledger admits a run
 * when neither its workflow nor its (workflow, key) is at its limit, and
 * counts it. So every store applies the same rule, written once.
 */
#ifndef DURA_STORE_FLOW_H
#define DURA_STORE_FLOW_H

#include "../util.h"

typedef struct dura_flow dura_flow;

/* A ledger for req (validated by the core; it must outlive the ledger):
 * *out, or NULL when req has no limit and no versions at all (every run
 * is admitted and nothing need be counted). 0 or DURA_ENOMEM (set against
 * store). With a ledger the store reads its candidates page by page until
 * max are admitted or none are left. */
int dura_flow_new(dura_flow **out, const dura_claim *req, const char *store);
void dura_flow_free(dura_flow *f);

/* Count n live leases of workflow wf with concurrency key key ("" none).
 * Leases of workflows the claim does not serve are ignored. 0 or
 * DURA_ENOMEM. */
int dura_flow_count(dura_flow *f, const char *wf, const char *key, int64_t n);

/* 1 when a run of wf at version with key may be claimed now, and counts
 * it; 0 when its workflow or key is at its limit (or wf at that version is
 * not served: dura_claim_serves); -1 when out of memory (DURA_ENOMEM set
 * against the ledger's store). */
int dura_flow_admit(dura_flow *f, const char *wf, const char *version, const char *key);

/* The served workflows not at their max_running, as a JSON array of
 * names to dura_free(): the filter of the next page of candidates, so
 * that runs of a full workflow are not read at all. *none is set when no
 * served workflow has room (then the claim is over). NULL with *none
 * unset when out of memory. */
char *dura_flow_open_json(const dura_flow *f, int *none);

/* The served workflows not at their max_running: up to cap names into
 * names (the request's strings), and how many there are in all (more
 * than cap: the caller filters without a list, and admit() passes over
 * the rest). */
size_t dura_flow_open(const dura_flow *f, const char **names, size_t cap);

/* A store's claim_runs through its claim: the workflows without limits.
 * One writing for every store that has both. */
int dura_flow_claim_runs(int (*claim)(void *, const dura_claim *, dura_record_list *), void *impl, const char *store,
                         const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                         int64_t lease_ms, dura_record_list *out);

/* Whether the run with previous lease owner prev is a rescue for owner:
 * leased to another owner and never released (store.h taken_over). */
static inline int dura_flow_taken_over(const char *prev, const char *owner)
{
	return prev && *prev && strcmp(prev, owner) != 0;
}

#endif
