/*
 * leases.c - the memory store's claims (in claim order, under flow
 * control: flow.h), lease extensions and releases.
 */
#include "memory.h"

/* Claim order: higher priority first, then the earliest due, then run id. */
static int claim_order(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->d.next_run_at != y->d.next_run_at)
		return x->d.next_run_at < y->d.next_run_at ? -1 : 1;
	return strcmp(x->run_id, y->run_id);
}

static int leased_now(const mem_run *r, int64_t now)
{
	return r->d.lease_owner[0] && r->d.lease_expires_at > now;
}

/* Under the store's lock, so counting the live leases and taking the
 * claim are one step (flow.h). */
int dmem_claim_flow(void *impl, const dura_claim *req, dura_record_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_run **sel = NULL;
	run_data *nd = NULL;
	dura_record *items = NULL;
	dura_flow *flow = NULL;
	size_t n = 0, done_copies = 0;
	if ((rc = dura_flow_new(&flow, req, STORE)) != 0)
		return rc;
	dmem_lock(m);
	int64_t now = dura_now_ms();
	size_t total = HASH_COUNT(m->runs);
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = dmem_oom();
		goto done;
	}
	for (mem_run *r = m->runs; r; r = r->hh.next) {
		if (r->d.run_state != DURA_RUN_RUNNING)
			continue;
		if (leased_now(r, now)) {
			if (flow && (rc = dura_flow_count(flow, r->workflow_name, r->concurrency_key, 1)) != 0)
				goto done;
			continue;
		}
		if (r->d.next_run_at <= now && dura_claim_serves(req, r->workflow_name, r->d.wfver))
			sel[n++] = r;
	}
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), claim_order);
	size_t k = 0;
	for (size_t i = 0; i < n && k < req->max; i++) {
		int ok = flow ? dura_flow_admit(flow, sel[i]->workflow_name, sel[i]->d.wfver, sel[i]->concurrency_key) : 1;
		if (ok < 0) {
			rc = DURA_ENOMEM;
			goto done;
		}
		if (ok)
			sel[k++] = sel[i];
	}
	n = k;
	if (n == 0)
		goto done;
	/* build the new fields and the caller's copies before changing a run */
	nd = dura_calloc(n, sizeof(*nd));
	items = dura_calloc(n, sizeof(*items));
	if (!nd || !items) {
		rc = dmem_oom();
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		nd[i] = sel[i]->d;
		nd[i].lease_owner = dura_strdup(req->owner);
		if (!nd[i].lease_owner) {
			rc = dmem_oom();
			goto done;
		}
		nd[i].lease_expires_at = now + req->lease_ms;
		nd[i].version++;
		nd[i].updated_at = now;
		rc = dmem_copy_record(&items[i], sel[i], &nd[i]);
		if (rc) {
			dura_free(nd[i].lease_owner);
			goto done;
		}
		done_copies = i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (req->taken_over)
			req->taken_over[i] = dura_flow_taken_over(sel[i]->d.lease_owner, req->owner);
		dmem_opt_free(sel[i]->d.lease_owner);
		sel[i]->d = nd[i];
	}
	out->items = items;
	out->count = n;
	items = NULL;
	pthread_cond_broadcast(&m->changed);
done:
	dmem_unlock(m);
	if (items) {
		for (size_t i = 0; i < done_copies; i++) {
			dura_record_clear(&items[i]);
			dura_free(nd[i].lease_owner);
		}
		dura_free(items);
	}
	dura_free(nd);
	dura_free(sel);
	dura_flow_free(flow);
	return rc;
}

int dmem_claim_runs(void *impl, const char *owner, const char *const *wfs, size_t nwfs, size_t max,
                    int64_t lease_ms, dura_record_list *out)
{
	return dura_flow_claim_runs(dmem_claim_flow, impl, STORE, owner, wfs, nwfs, max, lease_ms, out);
}

static mem_run *leased_run(mem_store *m, const char *run_id, const char *owner, int *rc)
{
	mem_run *r = dmem_find_run(m, run_id);
	if (!r) {
		*rc = dmem_run_missing(run_id);
		return NULL;
	}
	if (strcmp(r->d.lease_owner, owner) != 0) {
		*rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is not leased to %s (%s%s)", run_id, owner,
		                            r->d.lease_owner[0] ? "its lease owner is " : "it has no lease owner",
		                            r->d.lease_owner);
		return NULL;
	}
	return r;
}

int dmem_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_run *r = leased_run(m, run_id, owner, &rc);
	if (r)
		r->d.lease_expires_at = dura_now_ms() + lease_ms;
	dmem_unlock(m);
	return rc;
}

/* A worker's heartbeat: every lease of the batch under one lock. */
int dmem_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                       int *codes)
{
	mem_store *m = impl;
	dmem_lock(m);
	int64_t until = dura_now_ms() + lease_ms;
	for (size_t i = 0; i < n; i++) {
		int rc = 0;
		mem_run *r = leased_run(m, run_ids[i], owner, &rc);
		if (r)
			r->d.lease_expires_at = until;
		codes[i] = rc;
	}
	dmem_unlock(m);
	dura_error_clear(); /* the codes tell; the call itself worked */
	return 0;
}

int dmem_release_lease(void *impl, const char *run_id, const char *owner)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_run *r = leased_run(m, run_id, owner, &rc);
	if (r) {
		dmem_opt_free(r->d.lease_owner);
		r->d.lease_owner = dmem_empty;
		r->d.lease_expires_at = 0;
	}
	dmem_unlock(m);
	return rc;
}
