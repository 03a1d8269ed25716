/*
 * fleet.c - the memory store's workflow versions (the definitions engines
 * register, counts of runs per version, moving a run to another version)
 * and retention (pruning ended runs and the outbox in batches).
 *
 * The definitions are a hash by workflow_name '\0' version under the
 * store's lock. The counts, the gauges and the choice of runs to prune
 * walk every run: the memory store holds what one process made, and a
 * walk is what its list_runs does too. The outbox's pending events are
 * its hash, the oldest the head of its list in id order.
 */
#include "memory.h"

struct dura__mem_versions {
	UT_hash_handle hh;
	char *name, *version, *definition;
	int64_t first_seen_at, last_seen_at;
	size_t keylen;
	char key[]; /* name '\0' version */
};

void dura__mem_versions_free(dura__mem_versions *head)
{
	dura__mem_versions *v, *tmp;
	HASH_ITER(hh, head, v, tmp)
	{
		HASH_DEL(head, v);
		dura_free(v->definition);
		dura_free(v);
	}
}

int dmem_workflow_put(void *impl, const char *name, const char *version, const char *definition)
{
	mem_store *m = impl;
	size_t ln = strlen(name), lv = strlen(version), n = ln + 1 + lv;
	char *def = dura_strdup(definition);
	dura__mem_versions *fresh = dura_calloc(1, sizeof(*fresh) + n + 1 + lv + 1 + ln + 1);
	if (!def || !fresh) {
		dura_free(def);
		dura_free(fresh);
		return dmem_oom();
	}
	memcpy(fresh->key, name, ln + 1);
	memcpy(fresh->key + ln + 1, version, lv + 1);
	fresh->keylen = n;
	int rc = 0;
	dmem_lock(m);
	int64_t now = dura_now_ms();
	dura__mem_versions *v = NULL;
	HASH_FIND(hh, m->versions, fresh->key, n, v);
	if (v) {
		dura_free(v->definition);
		v->definition = def;
		v->last_seen_at = now;
		dura_free(fresh);
	} else {
		fresh->name = fresh->key;
		fresh->version = fresh->key + ln + 1;
		fresh->definition = def;
		fresh->first_seen_at = fresh->last_seen_at = now;
		int hash_oom = 0;
		HASH_ADD(hh, m->versions, key[0], n, fresh);
		if (hash_oom) {
			dura_free(def);
			dura_free(fresh);
			rc = dmem_oom();
		}
	}
	dmem_unlock(m);
	return rc;
}

static int def_order(const void *a, const void *b)
{
	const dura__mem_versions *x = *(dura__mem_versions *const *)a, *y = *(dura__mem_versions *const *)b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->first_seen_at != y->first_seen_at)
		return x->first_seen_at < y->first_seen_at ? -1 : 1;
	return strcmp(x->version, y->version);
}

static int item_def(void *item, void *src, size_t i)
{
	dura_workflow_def *o = item;
	const dura__mem_versions *v = ((dura__mem_versions **)src)[i];
	o->workflow_name = dura_strdup(v->name);
	o->version = dura_strdup(v->version);
	o->definition = dura_strdup(v->definition);
	if (!o->workflow_name || !o->version || !o->definition) {
		dura_workflow_def_clear(o);
		return dmem_oom();
	}
	o->first_seen_at = v->first_seen_at;
	o->last_seen_at = v->last_seen_at;
	return 0;
}

int dmem_workflow_list(void *impl, const char *name, dura_workflow_def_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->versions), n = 0;
	dura__mem_versions **sel = total ? dura_malloc(total * sizeof(*sel)) : NULL;
	if (total && !sel) {
		rc = dmem_oom();
		goto done;
	}
	for (dura__mem_versions *v = m->versions; v; v = v->hh.next)
		if (!name || strcmp(v->name, name) == 0)
			sel[n++] = v;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), def_order);
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), item_def, dura_workflow_def_clear,
	                    sel);
done:
	dmem_unlock(m);
	dura_free(sel);
	return rc;
}

/* ---- counts -------------------------------------------------------------------------- */

static int count_order(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	int c = strcmp(x->workflow_name, y->workflow_name);
	if (!c)
		c = strcmp(x->d.wfver, y->d.wfver);
	if (!c)
		c = x->d.run_state - y->d.run_state;
	return c;
}

int dmem_run_counts(void *impl, const char *workflow, dura_run_count_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	size_t cap = 0;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->runs), n = 0;
	mem_run **sel = total ? dura_malloc(total * sizeof(*sel)) : NULL;
	if (total && !sel) {
		rc = dmem_oom();
		goto done;
	}
	for (mem_run *r = m->runs; r; r = r->hh.next)
		if (!workflow || strcmp(r->workflow_name, workflow) == 0)
			sel[n++] = r;
	if (n)
		qsort(sel, n, sizeof(*sel), count_order);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && count_order(&sel[i], &sel[j]) == 0)
			j++;
		if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items))) {
			rc = dmem_oom();
			break;
		}
		dura_run_count *c = &out->items[out->count];
		memset(c, 0, sizeof(*c));
		c->workflow_name = dura_strdup(sel[i]->workflow_name);
		c->workflow_version = dura_strdup(sel[i]->d.wfver);
		c->run_state = sel[i]->d.run_state;
		c->count = (int64_t)(j - i);
		out->count++;
		if (!c->workflow_name || !c->workflow_version) {
			rc = dmem_oom();
			break;
		}
		i = j;
	}
	if (rc)
		dura_run_count_list_free(out);
done:
	dmem_unlock(m);
	dura_free(sel);
	return rc;
}

/* ---- moving a run to another version ------------------------------------------------ */

int dmem_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *version,
                         dura_record **out)
{
	mem_store *m = impl;
	int rc = 0;
	char *ver = dmem_opt_dup(version);
	if (!ver)
		return dmem_oom();
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (!r) {
		rc = dmem_run_missing(run_id);
		goto done;
	}
	if (r->d.version != expect_version) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is at version %lld, not %lld", run_id,
		                           (long long)r->d.version, (long long)expect_version);
		goto done;
	}
	char *old = r->d.wfver;
	r->d.wfver = ver;
	r->d.version++;
	r->d.updated_at = dura_now_ms();
	if ((rc = dmem_record_out(out, r)) != 0) { /* undo: nothing changed */
		r->d.wfver = old;
		r->d.version--;
		goto done;
	}
	ver = NULL;
	dmem_opt_free(old);
	pthread_cond_broadcast(&m->changed);
done:
	dmem_unlock(m);
	if (ver)
		dmem_opt_free(ver);
	return rc;
}

/* ---- retention ----------------------------------------------------------------------- */

static int prune_order(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	if (x->d.updated_at != y->d.updated_at)
		return x->d.updated_at < y->d.updated_at ? -1 : 1;
	return strcmp(x->run_id, y->run_id);
}

static int has_checkpoint(const mem_store *m, const mem_run *r)
{
	for (const mem_checkpoint *c = m->checkpoints; c; c = c->hh.next)
		if (strcmp(c->run_id, r->run_id) == 0)
			return 1;
	return 0;
}

/* A child stays while its parent has not ended (the parent may await it). */
static int kept_for_parent(mem_store *m, const mem_run *r)
{
	if (!*r->parent_id)
		return 0;
	const mem_run *p = dmem_find_run(m, r->parent_id);
	if (!p)
		return 0;
	int st = p->d.run_state;
	return st != DURA_RUN_COMPLETED && st != DURA_RUN_FAILED && st != DURA_RUN_CANCELLED && st != DURA_RUN_DATA_DELETED;
}

int dmem_prune_runs(void *impl, const dura_prune *req, int64_t *count)
{
	mem_store *m = impl;
	int rc = 0;
	mem_text *empty = NULL;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->runs), n = 0;
	mem_run **sel = total ? dura_malloc(total * sizeof(*sel)) : NULL;
	if (total && !sel) {
		rc = dmem_oom();
		goto done;
	}
	for (mem_run *r = m->runs; r; r = r->hh.next)
		if (r->d.run_state == req->run_state && r->d.updated_at < req->ended_before &&
		    (!req->workflow || strcmp(r->workflow_name, req->workflow) == 0))
			sel[n++] = r;
	if (n)
		qsort(sel, n, sizeof(*sel), prune_order);
	size_t k = 0;
	for (size_t i = 0; i < n && k < req->limit; i++)
		if (!has_checkpoint(m, sel[i]) && !kept_for_parent(m, sel[i]))
			sel[k++] = sel[i];
	*count = (int64_t)k;
	if (req->dry_run || k == 0)
		goto done;
	int64_t now = dura_now_ms();
	for (size_t i = 0; i < k; i++) {
		mem_run *r = sel[i];
		if (req->whole) {
			dmem_remove_run(m, r);
			continue;
		}
		if (!empty && !(empty = dmem_text_new("{}"))) { /* none changed yet: the first needs it */
			rc = dmem_oom();
			*count = (int64_t)i;
			break;
		}
		empty->refs++;
		dmem_erase_run_data(m, r, empty);
		r->d.run_state = DURA_RUN_DATA_DELETED;
		r->d.version++;
		r->d.updated_at = now;
	}
	pthread_cond_broadcast(&m->changed);
done:
	dmem_unlock(m);
	dmem_text_unref(empty);
	dura_free(sel);
	return rc;
}

int dmem_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count)
{
	mem_store *m = impl;
	int64_t n = 0;
	dmem_lock(m);
	for (mem_event *e = m->ev_head, *next; e && (size_t)n < limit; e = next) {
		next = e->next;
		if (e->created_at >= before)
			continue; /* ids are UUIDv7, so the old ones come first, nearly always */
		HASH_DEL(m->events, e);
		dmem_event_unlink(m, e);
		dmem_free_event(e);
		n++;
	}
	dmem_unlock(m);
	*count = n;
	return 0;
}

/* ---- gauges (contract version 8) ------------------------------------------------------ */

int dmem_gauges(void *impl, dura_store_gauges *out)
{
	mem_store *m = impl;
	dmem_lock(m);
	int64_t now = dura_now_ms();
	for (mem_run *r = m->runs; r; r = r->hh.next) {
		if (dmem_active(r->d.run_state) && r->d.wait[0])
			out->waiting_runs++;
		if (dmem_due(r, now))
			out->due_runs++;
		if (dmem_leased(r, now))
			out->leased_runs++;
	}
	out->outbox_pending = (int64_t)HASH_COUNT(m->events);
	out->outbox_oldest_at = m->ev_head ? m->ev_head->created_at : 0;
	out->now = now;
	dmem_unlock(m);
	return 0;
}
