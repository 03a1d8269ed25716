/*
 * steps.c - the memory store's step reads (history, get_step,
 * load_latest), checkpoints and the outbox (poll and ack).
 */
#include "memory.h"

int dmem_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (!r || r->nsteps == 0)
		goto done;
	size_t start = from <= r->step_base ? 0 : (size_t)(from - r->step_base);
	if (start >= r->nsteps)
		goto done;
	size_t n = r->nsteps - start;
	if (limit && n > limit)
		n = limit;
	step_range range = {r, start};
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_step,
	                    dura_step_clear, &range);
done:
	dmem_unlock(m);
	return rc;
}

int dmem_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	mem_store *m = impl;
	int rc;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (r && r->nsteps && step >= r->step_base && step - r->step_base < (int64_t)r->nsteps)
		rc = dmem_step_out(out, r, (size_t)(step - r->step_base));
	else if (!r)
		rc = dmem_run_missing(run_id);
	else
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s has no step %lld", run_id,
		                           (long long)step);
	dmem_unlock(m);
	return rc;
}

int dmem_load_latest(void *impl, const char *run_id, dura_step **out)
{
	mem_store *m = impl;
	int rc;
	dmem_lock(m);
	mem_run *r = dmem_find_run(m, run_id);
	if (r && r->nsteps)
		rc = dmem_step_out(out, r, r->nsteps - 1);
	else if (!r)
		rc = dmem_run_missing(run_id);
	else
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "run %s has no steps", run_id);
	dmem_unlock(m);
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------- */

static int add_checkpoint(mem_store *m, mem_checkpoint *c)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->checkpoints, c->id, strlen(c->id), c);
	return hash_oom;
}

int dmem_checkpoint_save(void *impl, const char *cp_id, const char *run_id, int64_t step, const char *state)
{
	mem_store *m = impl;
	int rc = 0;
	char *rid = dura_strdup(run_id), *st = dura_strdup(state);
	if (!rid || !st) {
		dura_free(rid);
		dura_free(st);
		return dmem_oom();
	}
	dmem_lock(m);
	int64_t now = dura_now_ms();
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (c) {
		dura_free(c->run_id);
		dura_free(c->state);
		c->run_id = rid;
		c->state = st;
		c->step = step;
		c->updated_at = now;
		goto done;
	}
	c = dura_calloc(1, sizeof(*c));
	if (c)
		c->id = dura_strdup(cp_id);
	if (!c || !c->id || add_checkpoint(m, c)) {
		if (c)
			dura_free(c->id);
		dura_free(c);
		dura_free(rid);
		dura_free(st);
		rc = dmem_oom();
		goto done;
	}
	c->run_id = rid;
	c->state = st;
	c->step = step;
	c->created_at = c->updated_at = now;
done:
	dmem_unlock(m);
	return rc;
}

int dmem_checkpoint_load(void *impl, const char *cp_id, dura_checkpoint **out)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (!c) {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "checkpoint %s does not exist", cp_id);
		goto done;
	}
	dura_checkpoint *cp = dura_calloc(1, sizeof(*cp));
	if (!cp) {
		rc = dmem_oom();
		goto done;
	}
	rc = dmem_copy_checkpoint(cp, c);
	if (rc)
		dura_free(cp);
	else
		*out = cp;
done:
	dmem_unlock(m);
	return rc;
}

/* Newest first: updated_at descending, then checkpoint id. */
static int checkpoint_order(const void *a, const void *b)
{
	const mem_checkpoint *x = *(const mem_checkpoint *const *)a, *y = *(const mem_checkpoint *const *)b;
	if (x->updated_at != y->updated_at)
		return x->updated_at > y->updated_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

int dmem_checkpoint_list(void *impl, const char *run_id, dura_checkpoint_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	mem_checkpoint **sel = NULL;
	dmem_lock(m);
	size_t total = HASH_COUNT(m->checkpoints), n = 0;
	if (total == 0)
		goto done;
	sel = dura_malloc(total * sizeof(*sel));
	if (!sel) {
		rc = dmem_oom();
		goto done;
	}
	for (mem_checkpoint *c = m->checkpoints; c; c = c->hh.next)
		if (!run_id || strcmp(c->run_id, run_id) == 0)
			sel[n++] = c;
	if (n == 0)
		goto done;
	qsort(sel, n, sizeof(*sel), checkpoint_order);
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_checkpoint,
	                    dura_checkpoint_clear, sel);
done:
	dmem_unlock(m);
	dura_free(sel);
	return rc;
}

int dmem_checkpoint_delete(void *impl, const char *cp_id)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_checkpoint *c = NULL;
	HASH_FIND_STR(m->checkpoints, cp_id, c);
	if (c) {
		HASH_DEL(m->checkpoints, c);
		dmem_free_checkpoint(c);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "checkpoint %s does not exist", cp_id);
	}
	dmem_unlock(m);
	return rc;
}

/* ---- outbox --------------------------------------------------------------- */

int dmem_outbox_poll(void *impl, size_t limit, dura_event_list *out)
{
	mem_store *m = impl;
	int rc = 0;
	if (limit == 0)
		limit = 100;
	dmem_lock(m);
	size_t n = 0;
	for (mem_event *e = m->ev_head; e && n < limit; e = e->next)
		n++;
	mem_event *e = m->ev_head;
	rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_event, dura_event_clear, &e);
	dmem_unlock(m);
	return rc;
}

int dmem_outbox_ack(void *impl, const char *event_id)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_lock(m);
	mem_event *e = NULL;
	HASH_FIND_STR(m->events, event_id, e);
	if (e) {
		HASH_DEL(m->events, e);
		dmem_event_unlink(m, e);
		dmem_free_event(e);
	} else {
		rc = dura_error_set_native(DURA_ENOTFOUND, STORE, 0, NULL, "outbox event %s does not exist (already acknowledged?)",
		                           event_id);
	}
	dmem_unlock(m);
	return rc;
}

/* ---- import ------------------------------------------------------------------------ */

int dmem_import_event(void *impl, const dura_event *ev)
{
	mem_store *m = impl;
	int rc = 0;
	dmem_event_summary sum = {ev->workflow_name, ev->run_id, "", "", 0, 0};
	mem_event *e = dmem_event_new(ev->id, ev->type, ev->data, &sum, &rc);
	if (!e)
		return rc;
	e->created_at = ev->created_at;
	dmem_lock(m);
	mem_event *old = NULL;
	HASH_FIND_STR(m->events, ev->id, old);
	int hash_oom = 0;
	if (old) {
		rc = dura_error_set_native(DURA_EEXISTS, STORE, 0, NULL, "outbox event %s exists already", ev->id);
	} else {
		HASH_ADD_KEYPTR(hh, m->events, e->id, strlen(e->id), e);
		if (hash_oom)
			rc = dmem_oom();
		else
			dmem_event_link(m, e);
	}
	dmem_unlock(m);
	if (rc)
		dmem_free_event(e);
	return rc;
}

int dmem_outbox_list(void *impl, const char *after, size_t limit, dura_event_list *out)
{
	mem_store *m = impl;
	dmem_lock(m);
	mem_event *e = m->ev_head;
	while (e && strcmp(e->id, after) <= 0) /* the list is in id order */
		e = e->next;
	size_t n = 0;
	for (mem_event *x = e; x && n < limit; x = x->next)
		n++;
	int rc = dmem_copy_list((void **)&out->items, &out->count, n, sizeof(*out->items), dmem_item_event, dura_event_clear, &e);
	dmem_unlock(m);
	return rc;
}
