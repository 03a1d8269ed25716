/*
 * registry.h - a worker's row in the store's worker registry (registry.c).
 * Used by worker.c only.
 */
#ifndef DURA_REGISTRY_H
#define DURA_REGISTRY_H

#include "dura.h"

typedef struct dura__registry {
	dura_store *store;
	dura_worker_info info; /* what every put writes; held is the last count */
	int unsupported;       /* the store keeps no registry: never asked again */
	int written;           /* a put went through */
} dura__registry;

/* Build the row (host and pid of this process, the workflow versions
 * served as JSON); 0 or DURA_ENOMEM. */
int dura__registry_init(dura__registry *r, dura_store *store, const char *id, const char *name, int threads,
                        int64_t lease_ms, const dura_claim_version *wfs, size_t nwfs);
/* Write the row with held runs: 0 (also when the store has no registry), or the store's error. */
int dura__registry_put(dura__registry *r, int64_t held);
/* Prune rows dead for over DURA_WORKER_PRUNE_MS, after a first put went through. */
int dura__registry_prune(dura__registry *r);
/* Delete the row (one already gone is fine): 0 or the store's error. */
int dura__registry_delete(dura__registry *r);
void dura__registry_free(dura__registry *r);

#endif
