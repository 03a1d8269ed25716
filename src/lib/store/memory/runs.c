/*
 * runs.c - the memory store's runs: the slots that keep the one-active-run
 * rule and latest_run (dmem_reactivation_refused() and dmem_slot_track()
 * serve commit.c too), creating, reading and listing runs, run-state
 * changes (a cancel wakes the parent that waits for the run) and the
 * erasing of a run's data.
 */
#include "memory.h"

/* The slot key "workflow\0foreign_id" into buf (which holds 2 ids). */
static size_t slot_key(char *buf, size_t size, const char *wf, const char *fid)
{
	size_t a = strlen(wf), b = strlen(fid);
	if (a + 1 + b > size)
		return 0;
	memcpy(buf, wf, a);
	buf[a] = '\0';
	memcpy(buf + a + 1, fid, b);
	return a + 1 + b;
}

#define SLOT_KEY_MAX (2 * DURA_MAX_ID_LEN + 2)

static mem_slot *find_slot(mem_store *m, const char *wf, const char *fid)
{
	char key[SLOT_KEY_MAX];
	size_t n = slot_key(key, sizeof(key), wf, fid);
	mem_slot *s = NULL;
	if (n)
		HASH_FIND(hh, m->slots, key, n, s);
	return s;
}

/* Reactivating a run (failed -> running, or a commit that sets an active
 * state on an ended run) must not make a second active run for its key. */
int dmem_reactivation_refused(const mem_run *r, int to)
{
	if (!r->slot || dmem_active(r->d.run_state) || !dmem_active(to))
		return 0;
	const mem_run *other = r->slot->active;
	if (!other || other == r)
		return 0;
	return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL,
	                             "run %s cannot become %s: run %s of workflow %s with foreign id %s is already active",
	                             r->run_id, dura_run_state_name(to), other->run_id, r->workflow_name, r->foreign_id);
}

/* Keep the slot's active pointer in step with a run-state change. */
void dmem_slot_track(mem_run *r, int was, int now_state)
{
	if (!r->slot)
		return;
	int will = dmem_active(now_state);
	if (dmem_active(was) && !will && r->slot->active == r)
		r->slot->active = NULL;
	else if (!dmem_active(was) && will)
		r->slot->active = r;
}

static int add_run(mem_store *m, mem_run *r)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->runs, r->run_id, strlen(r->run_id), r);
	return hash_oom;
}

static int add_slot(mem_store *m, mem_slot *s)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->slots, s->key, s->keylen, s);
	return hash_oom;
}

int dmem_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	mem_store *m = impl;
	const char *fid = req->foreign_id ? req->foreign_id : "";
	int to = req->run_state ? req->run_state : DURA_RUN_RUNNING;
	int rc = 0;
	dmem_lock(m);
	if (dmem_find_run(m, run_id)) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "run id %s already exists", run_id);
		goto done;
	}
	mem_slot *slot = NULL, *new_slot = NULL;
	if (*fid) {
		slot = find_slot(m, req->workflow_name, fid);
		if (slot && slot->active) {
			rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL,
			                           "workflow %s already has an active run %s with foreign id %s",
			                           req->workflow_name, slot->active->run_id, fid);
			if (out && dmem_record_out(out, slot->active) != 0)
				rc = DURA_ENOMEM;
			goto done;
		}
		if (!slot) {
			char key[SLOT_KEY_MAX];
			size_t n = slot_key(key, sizeof(key), req->workflow_name, fid);
			new_slot = dura_calloc(1, sizeof(*new_slot) + n);
			if (!new_slot) {
				rc = dmem_oom();
				goto done;
			}
			memcpy(new_slot->key, key, n);
			new_slot->keylen = n;
			slot = new_slot;
		}
	}

	int64_t now = dura_now_ms();
	mem_run *r = dura_calloc(1, sizeof(*r));
	if (!r) {
		dura_free(new_slot);
		rc = dmem_oom();
		goto done;
	}
	r->run_id = dura_strdup(run_id);
	r->workflow_name = dura_strdup(req->workflow_name);
	r->foreign_id = dmem_opt_dup(fid);
	r->meta = dmem_opt_dup(req->meta);
	r->concurrency_key = dmem_opt_dup(req->concurrency_key);
	r->parent_id = dmem_opt_dup(req->parent_id);
	r->priority = req->priority;
	r->created_at = now;
	r->d.state = dmem_text_new(req->state ? req->state : "{}");
	r->d.status = dmem_opt_dup(req->status);
	r->d.error = dmem_empty;
	r->d.lease_owner = dmem_empty;
	r->d.wait = dmem_empty;
	r->d.wfver = dmem_opt_dup(req->workflow_version);
	r->d.run_state = to;
	r->d.version = 1;
	r->d.next_run_at = req->next_run_at ? req->next_run_at : now;
	r->d.updated_at = now;
	dura_record *rec = NULL;
	if (!r->run_id || !r->workflow_name || !r->foreign_id || !r->meta || !r->concurrency_key || !r->parent_id ||
	    !r->d.state || !r->d.status || !r->d.wfver ||
	    (out && dmem_record_out(&rec, r) != 0) || add_run(m, r)) {
		dura_record_free(rec);
		dmem_free_run(r);
		dura_free(new_slot);
		rc = dmem_oom();
		goto done;
	}
	if (new_slot && add_slot(m, new_slot)) {
		HASH_DEL(m->runs, r);
		dura_record_free(rec);
		dmem_free_run(r);
		dura_free(new_slot);
		rc = dmem_oom();
		goto done;
	}
	/* nothing can fail from here */
	if (slot) {
		r->slot = slot;
		if (dmem_active(to))
			slot->active = r;
		if (!slot->latest || strcmp(r->run_id, slot->latest->run_id) > 0)
			slot->latest = r;
	}
	if (out)
		*out = rec;
done:
	dmem_unlock(m);
	return rc;
}

int dmem_get_run(void *impl, const char *run_id, dura_record **out)
{
	mem_store *m = impl;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	int rc = r ? dmem_record_out(out, r) : dmem_run_missing(run_id);
	dmem_unlock(m);
	return rc;
}

int dmem_latest_run(void *impl, const char *wf, const char *fid, dura_record **out)
{
	mem_store *m = impl;
	dmem_lock(m);
	mem_slot *s = find_slot(m, wf, fid);
	int rc = s && s->latest ? dmem_record_out(out, s->latest)
	                        : dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL,
	                                                "workflow %s has no run with foreign id %s", wf, fid);
	dmem_unlock(m);
	return rc;
}

static int run_id_desc(const void *a, const void *b)
{
	const mem_run *x = *(const mem_run *const *)a, *y = *(const mem_run *const *)b;
	return strcmp(y->run_id, x->run_id);
}

static int run_matches(const mem_run *r, const dura_run_filter *f, int64_t now)
{
	if (f->workflow_name && *f->workflow_name && strcmp(r->workflow_name, f->workflow_name) != 0)
		return 0;
	if (f->run_state && r->d.run_state != f->run_state)
		return 0;
	if (f->status && *f->status && strcmp(r->d.status, f->status) != 0)
		return 0;
	if (f->foreign_id && *f->foreign_id && strcmp(r->foreign_id, f->foreign_id) != 0)
		return 0;
	if (f->created_after && r->created_at < f->created_after)
		return 0;
	if (f->created_before && r->created_at >= f->created_before)
		return 0;
	if (f->cursor && *f->cursor && strcmp(r->run_id, f->cursor) >= 0)
		return 0;
	if (f->parent_id && strcmp(r->parent_id, f->parent_id) != 0)
		return 0;
	if (f->waiting && !*r->d.wait)
		return 0;
	if (f->workflow_version && strcmp(r->d.wfver, f->workflow_version) != 0)
		return 0;
	if (f->due && !dmem_due(r, now))
		return 0;
	return 1;
}

int dmem_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	size_t limit = f->limit ? f->limit : 100;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->runs), n = 0;
	mem_run **sel = NULL;
	if (total) {
		sel = dura_malloc(total * sizeof(*sel));
		if (!sel) {
			rc = dmem_oom();
			goto done;
		}
	}
	int64_t now = dura_now_ms();
	for (mem_run *r = m->runs; r; r = r->hh.next)
		if (run_matches(r, f, now))
			sel[n++] = r;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), run_id_desc);
	if (n > limit)
		n = limit;
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_record,
	                    dura_record_clear, sel);
	if (rc == 0 && n == limit) {
		out->next_cursor = dura_strdup(sel[n - 1]->run_id);
		if (!out->next_cursor) {
			dura_record_list_free(out);
			rc = dmem_oom();
		}
	}
done:
	dmem_unlock(m);
	dura_free(sel);
	return rc;
}

/* Drop a run's steps and checkpoints and put empty_state in its place
 * (delete_run_data, set_run_state to data_deleted, retention). Cannot fail. */
void dmem_erase_run_data(mem_store *m, mem_run *r, mem_text *empty_state)
{
	dmem_free_steps(r);
	dura__mem_inbox_erase_run(m->inbox, r->run_id);
	mem_checkpoint *c, *ct;
	HASH_ITER(hh, m->checkpoints, c, ct)
	{
		if (strcmp(c->run_id, r->run_id) == 0) {
			HASH_DEL(m->checkpoints, c);
			dmem_free_checkpoint(c);
		}
	}
	dmem_text_unref(r->d.state);
	r->d.state = empty_state;
}


/* The wait a parent has while it awaits child r: "child:" + run id. */
static void child_wait(char *buf, size_t size, const mem_run *r)
{
	snprintf(buf, size, "child:%s", r->run_id);
}

int dmem_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (!r) {
		rc = dmem_run_missing(run_id);
		goto done;
	}
	int from = r->d.run_state;
	if (!dura_run_state_transition_ok(from, to)) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s is %s and cannot become %s", run_id,
		                           dura_run_state_name(from), dura_run_state_name(to));
		goto done;
	}
	rc = dmem_reactivation_refused(r, to);
	if (rc)
		goto done;
	/* data_deleted means erased, whichever way a run gets there */
	mem_text *empty_state = NULL;
	if (to == DURA_RUN_DATA_DELETED) {
		empty_state = dmem_text_new("{}");
		if (!empty_state) {
			rc = dmem_oom();
			goto done;
		}
		dmem_erase_run_data(m, r, empty_state);
	}
	int64_t now = dura_now_ms();
	r->d.run_state = to;
	r->d.version++;
	r->d.updated_at = now;
	if (to == DURA_RUN_RUNNING) {
		if (!*r->d.wait) /* a resumed sleeper sleeps on */
			r->d.next_run_at = now;
		r->d.attempt = 0;
	}
	if (to == DURA_RUN_CANCELLED && *r->parent_id) {
		char w[DURA_MAX_ID_LEN + 8];
		child_wait(w, sizeof(w), r);
		dmem_wake_locked(m, r->parent_id, w, now, NULL);
	}
	dmem_slot_track(r, from, to);
	if (new_version)
		*new_version = r->d.version;
	pthread_cond_broadcast(&m->changed);
done:
	dmem_unlock(m);
	return rc;
}

int dmem_delete_run_data(void *impl, const char *run_id)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (!r) {
		rc = dmem_run_missing(run_id);
		goto done;
	}
	int st = r->d.run_state;
	if (st != DURA_RUN_COMPLETED && st != DURA_RUN_CANCELLED && st != DURA_RUN_FAILED) {
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL,
		                           "run %s is %s: only a completed, cancelled or failed run's data can be deleted",
		                           run_id, dura_run_state_name(st));
		goto done;
	}
	mem_text *empty_state = dmem_text_new("{}");
	if (!empty_state) {
		rc = dmem_oom();
		goto done;
	}
	dmem_erase_run_data(m, r, empty_state);
	r->d.run_state = DURA_RUN_DATA_DELETED;
	r->d.version++;
	r->d.updated_at = dura_now_ms();
	pthread_cond_broadcast(&m->changed);
done:
	dmem_unlock(m);
	return rc;
}

/* Take an ended run out of the store for good (retention of whole runs):
 * its data, its place in its slot, the run. Cannot fail. */
void dmem_remove_run(mem_store *m, mem_run *r)
{
	mem_text *none = NULL;
	dmem_erase_run_data(m, r, none);
	HASH_DEL(m->runs, r);
	mem_slot *slot = r->slot;
	if (slot) {
		if (slot->active == r)
			slot->active = NULL;
		if (slot->latest == r) { /* the next newest run of the key, if any */
			slot->latest = NULL;
			for (mem_run *o = m->runs; o; o = o->hh.next)
				if (o->slot == slot && (!slot->latest || strcmp(o->run_id, slot->latest->run_id) > 0))
					slot->latest = o;
		}
		if (!slot->latest && !slot->active) {
			HASH_DEL(m->slots, slot);
			dura_free(slot);
		}
	}
	dmem_free_run(r);
}

/* ---- import ------------------------------------------------------------------------ */

static int signal_by_id(const void *a, const void *b)
{
	return strcmp(((const dura_signal *)a)->signal_id, ((const dura_signal *)b)->signal_id);
}

static void free_checkpoints(mem_checkpoint **cps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dmem_free_checkpoint(cps[i]);
	dura_free(cps);
}

/* A run as another store had it (import_run): everything is allocated
 * and every check made before the first change, as in create. */
int dmem_import_run(void *impl, const dura_import_run *ir)
{
	mem_store *m = impl;
	const dura_record *rec = ir->record;
	const char *fid = rec->foreign_id ? rec->foreign_id : "";
	int rc = 0, active = dmem_active(rec->run_state);
	mem_run *r = NULL;
	mem_slot *slot = NULL, *new_slot = NULL;
	mem_checkpoint **cps = ir->ncheckpoints ? dura_calloc(ir->ncheckpoints, sizeof(*cps)) : NULL;
	dura_signal *sigs = ir->nsignals ? dura_malloc(ir->nsignals * sizeof(*sigs)) : NULL;
	if ((ir->ncheckpoints && !cps) || (ir->nsignals && !sigs)) {
		dura_free(cps);
		dura_free(sigs);
		return dmem_oom();
	}
	if (ir->nsignals) { /* the inbox is in signal id order */
		memcpy(sigs, ir->signals, ir->nsignals * sizeof(*sigs));
		qsort(sigs, ir->nsignals, sizeof(*sigs), signal_by_id);
	}
	dmem_lock(m);
	if (dmem_find_run(m, rec->run_id)) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "run %s exists already", rec->run_id);
		goto fail;
	}
	for (size_t i = 0; i < ir->ncheckpoints; i++) {
		mem_checkpoint *c = NULL;
		HASH_FIND_STR(m->checkpoints, ir->checkpoints[i].checkpoint_id, c);
		if (c) {
			rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "checkpoint %s exists already",
			                           ir->checkpoints[i].checkpoint_id);
			goto fail;
		}
	}
	for (size_t i = 0; i < ir->nsignals; i++)
		if (dura__mem_inbox_find(m->inbox, rec->run_id, sigs[i].signal_id) >= 0 ||
		    (i > 0 && strcmp(sigs[i].signal_id, sigs[i - 1].signal_id) == 0)) {
			rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "signal %s exists already", sigs[i].signal_id);
			goto fail;
		}
	if (*fid) {
		slot = find_slot(m, rec->workflow_name, fid);
		if (slot && slot->active && active) {
			rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL,
			                           "workflow %s already has an active run %s with foreign id %s",
			                           rec->workflow_name, slot->active->run_id, fid);
			goto fail;
		}
		if (!slot) {
			char key[SLOT_KEY_MAX];
			size_t n = slot_key(key, sizeof(key), rec->workflow_name, fid);
			if (!(new_slot = dura_calloc(1, sizeof(*new_slot) + n)))
				goto oom;
			memcpy(new_slot->key, key, n);
			new_slot->keylen = n;
		}
	}
	if (!(r = dura_calloc(1, sizeof(*r))))
		goto oom;
	r->run_id = dura_strdup(rec->run_id);
	r->workflow_name = dura_strdup(rec->workflow_name);
	r->foreign_id = dmem_opt_dup(fid);
	r->meta = dmem_opt_dup(rec->meta);
	r->concurrency_key = dmem_opt_dup(rec->concurrency_key);
	r->parent_id = dmem_opt_dup(rec->parent_id);
	r->priority = rec->priority;
	r->created_at = rec->created_at;
	r->d.state = dmem_text_new(rec->state);
	r->d.status = dmem_opt_dup(rec->status);
	r->d.error = dmem_opt_dup(rec->error);
	r->d.lease_owner = dmem_empty;
	r->d.wait = dmem_opt_dup(rec->wait);
	r->d.wfver = dmem_opt_dup(rec->workflow_version);
	r->d.run_state = rec->run_state;
	r->d.attempt = rec->attempt;
	r->d.version = rec->version;
	r->d.step_no = rec->step_no;
	r->d.next_run_at = rec->next_run_at;
	r->d.updated_at = rec->updated_at;
	if (!r->run_id || !r->workflow_name || !r->foreign_id || !r->meta || !r->concurrency_key || !r->parent_id ||
	    !r->d.state || !r->d.status || !r->d.error || !r->d.wait || !r->d.wfver)
		goto oom;
	/* steps are dense here: step_base + i (the core checked they run up to step_no - 1) */
	if (ir->nsteps) {
		if (!(r->steps = dura_calloc(ir->nsteps, sizeof(*r->steps))))
			goto oom;
		r->capsteps = ir->nsteps;
		r->step_base = ir->steps[0].step;
		for (size_t i = 0; i < ir->nsteps; i++) {
			mem_step *st = &r->steps[i];
			st->node_id = dura_strdup(ir->steps[i].node_id);
			st->wfver = dmem_opt_dup(ir->steps[i].workflow_version);
			st->state = dmem_text_new(ir->steps[i].state);
			st->created_at = ir->steps[i].created_at;
			r->nsteps = i + 1;
			if (!st->node_id || !st->wfver || !st->state)
				goto oom;
		}
	}
	for (size_t i = 0; i < ir->ncheckpoints; i++) {
		const dura_checkpoint *src = &ir->checkpoints[i];
		mem_checkpoint *c = cps[i] = dura_calloc(1, sizeof(*c));
		if (!c || !(c->id = dura_strdup(src->checkpoint_id)) || !(c->run_id = dura_strdup(src->run_id)) ||
		    !(c->state = dura_strdup(src->state)))
			goto oom;
		c->step = src->step;
		c->created_at = src->created_at;
		c->updated_at = src->updated_at;
	}
	/* into the store: each insertion undone if a later one fails */
	if (add_run(m, r))
		goto oom;
	if (new_slot && add_slot(m, new_slot)) {
		HASH_DEL(m->runs, r);
		goto oom;
	}
	size_t added = 0;
	for (; added < ir->ncheckpoints; added++) {
		int hash_oom = 0;
		HASH_ADD_KEYPTR(hh, m->checkpoints, cps[added]->id, strlen(cps[added]->id), cps[added]);
		if (hash_oom)
			break;
	}
	int bad = added < ir->ncheckpoints;
	for (size_t i = 0; !bad && i < ir->nsignals; i++)
		bad = dura__mem_inbox_add(m->inbox, sigs[i].signal_id, rec->run_id, sigs[i].name,
		                          sigs[i].payload && *sigs[i].payload ? sigs[i].payload : "null", sigs[i].created_at) != 0;
	if (bad) {
		dura__mem_inbox_erase_run(m->inbox, rec->run_id);
		for (size_t i = 0; i < added; i++)
			HASH_DEL(m->checkpoints, cps[i]);
		if (new_slot)
			HASH_DEL(m->slots, new_slot);
		HASH_DEL(m->runs, r);
		goto oom;
	}
	/* nothing can fail from here */
	if (new_slot)
		slot = new_slot;
	if (slot) {
		r->slot = slot;
		if (active)
			slot->active = r;
		if (!slot->latest || strcmp(r->run_id, slot->latest->run_id) > 0)
			slot->latest = r;
	}
	pthread_cond_broadcast(&m->changed);
	dmem_unlock(m);
	dura_free(cps);
	dura_free(sigs);
	return 0;
oom:
	rc = dmem_oom();
fail:
	dmem_unlock(m);
	dmem_free_run(r);
	dura_free(new_slot);
	free_checkpoints(cps, ir->ncheckpoints);
	dura_free(sigs);
	return rc;
}
