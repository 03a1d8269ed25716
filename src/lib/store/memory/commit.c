/*
 * commit.c - the memory store's step commits, one or a batch: a commit is
 * checked and allocated in full before it changes anything, and what it
 * changed is kept so that a batch that runs out of memory undoes the
 * commits that went in.
 */
#include "memory.h"

/* What one applied commit changed, to undo it (a batch that runs out of
 * memory) or to free what it replaced. */
typedef struct commit_undo {
	mem_run *run; /* NULL: nothing applied */
	run_data old, nd;
	int stepped;
	mem_event *ev;
	mem_run *old_active;
	void *signal; /* the signal the commit consumed (waiting.c), or NULL */
	wake_undo woke;
} commit_undo;

static int add_event(mem_store *m, mem_event *e)
{
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, m->events, e->id, strlen(e->id), e);
	return hash_oom;
}

/*
 * Check and apply one commit under the lock. On error nothing is changed
 * (and u->run stays NULL). Everything is allocated, and the event hashed,
 * before the first change.
 */
static int commit_apply(mem_store *m, const dura_commit *c, const char *event_id, dura_commit_result *res,
                        commit_undo *u)
{
	memset(u, 0, sizeof(*u));
	mem_run *r = dmem_find_run(m, c->run_id);
	if (!r)
		return dmem_run_missing(c->run_id);
	if (r->d.version != c->expect_version)
		return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s: expected version %lld but it is %lld",
		                             c->run_id, (long long)c->expect_version, (long long)r->d.version);
	int to = c->run_state ? c->run_state : r->d.run_state;
	int rc = dmem_reactivation_refused(r, to);
	if (rc)
		return rc;
	int with_step = !(c->flags & DURA_COMMIT_NO_STEP);
	int with_event = !(c->flags & DURA_COMMIT_NO_EVENT);
	int64_t now = dura_now_ms();
	int64_t step = with_step ? r->d.step_no : -1;

	long signal_pos = -1;
	if (c->signal_id && (signal_pos = dura__mem_inbox_find(m->inbox, r->run_id, c->signal_id)) < 0)
		return dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "run %s has no signal %s (consumed already?)",
		                             c->run_id, c->signal_id);

	/* allocate */
	run_data nd = r->d;
	nd.state = dmem_text_new(c->state);
	nd.status = dmem_opt_dup(c->status);
	nd.error = dmem_opt_dup(c->error);
	nd.wait = dmem_opt_dup(c->wait);
	/* a run without a version takes on the committer's */
	const char *cv = c->workflow_version ? c->workflow_version : "";
	if (*cv && !*r->d.wfver)
		nd.wfver = dmem_opt_dup(cv);
	char *node = NULL, *step_ver = dmem_empty;
	mem_event *ev = NULL;
	int bad = !nd.state || !nd.status || !nd.error || !nd.wait || !nd.wfver;
	if (!bad && with_step) {
		if (r->nsteps == r->capsteps) {
			size_t cap = r->capsteps ? r->capsteps * 2 : 8;
			mem_step *grown = dura_realloc(r->steps, cap * sizeof(*grown));
			if (grown) {
				r->steps = grown; /* only capacity: no visible change */
				r->capsteps = cap;
			}
			bad = !grown;
		}
		if (!bad) {
			node = dura_strdup(c->node_id);
			step_ver = dmem_opt_dup(cv);
			bad = !node || !step_ver;
		}
	}
	if (!bad && with_event) {
		dmem_event_summary sum = {r->workflow_name, r->run_id, c->node_id, c->status, step, to};
		ev = dmem_event_new(event_id, c->event_type, c->event_data, &sum, &rc);
		bad = !ev;
		if (ev)
			ev->created_at = now;
	}
	if (!bad && ev && add_event(m, ev))
		bad = 1;
	if (bad) {
		dmem_text_unref(nd.state);
		if (nd.status)
			dmem_opt_free(nd.status);
		if (nd.error)
			dmem_opt_free(nd.error);
		if (nd.wait)
			dmem_opt_free(nd.wait);
		if (nd.wfver && nd.wfver != r->d.wfver)
			dmem_opt_free(nd.wfver);
		if (step_ver)
			dmem_opt_free(step_ver);
		dura_free(node);
		dmem_free_event(ev);
		return rc ? rc : dmem_oom();
	}

	/* apply: nothing can fail from here */
	nd.run_state = to;
	nd.attempt = c->attempt;
	nd.next_run_at = c->next_run_at ? c->next_run_at : now;
	nd.version++;
	nd.updated_at = now;
	if (c->flags & DURA_COMMIT_RELEASE_LEASE) {
		nd.lease_owner = dmem_empty;
		nd.lease_expires_at = 0;
	}
	if (with_step) {
		if (r->nsteps == 0)
			r->step_base = r->d.step_no;
		r->steps[r->nsteps].node_id = node;
		r->steps[r->nsteps].wfver = step_ver;
		r->steps[r->nsteps].state = nd.state;
		r->steps[r->nsteps].created_at = now;
		r->nsteps++;
		nd.state->refs++;
		nd.step_no++;
		u->stepped = 1;
	}
	if (ev)
		dmem_event_link(m, ev);
	u->run = r;
	u->old = r->d;
	u->nd = nd;
	u->ev = ev;
	u->old_active = r->slot ? r->slot->active : NULL;
	int was = r->d.run_state;
	r->d = nd;
	dmem_slot_track(r, was, to);
	if (signal_pos >= 0)
		u->signal = dura__mem_inbox_take(m->inbox, signal_pos);
	if (c->wake_run_id)
		dmem_wake_locked(m, c->wake_run_id, c->wake_wait, now, &u->woke);
	res->new_version = nd.version;
	res->step = step;
	return 0;
}

/* Free what an applied commit replaced. */
static void commit_finish(commit_undo *u)
{
	if (!u->run)
		return;
	dmem_text_unref(u->old.state);
	dmem_opt_free(u->old.status);
	dmem_opt_free(u->old.error);
	dmem_opt_free(u->old.wait);
	if (u->old.lease_owner != u->nd.lease_owner)
		dmem_opt_free(u->old.lease_owner);
	if (u->old.wfver != u->nd.wfver)
		dmem_opt_free(u->old.wfver);
	if (u->signal)
		dura__mem_inbox_drop(u->signal);
}

/* Undo an applied commit (the latest applied one first). */
static void commit_undo_apply(mem_store *m, commit_undo *u)
{
	mem_run *r = u->run;
	if (!r)
		return;
	if (u->woke.run) {
		u->woke.run->d.version = u->woke.version;
		u->woke.run->d.next_run_at = u->woke.next_run_at;
		u->woke.run->d.updated_at = u->woke.updated_at;
	}
	if (u->signal)
		dura__mem_inbox_put_back(m->inbox, u->signal);
	u->signal = NULL;
	if (r->slot)
		r->slot->active = u->old_active;
	if (u->ev) {
		dmem_event_unlink(m, u->ev);
		HASH_DEL(m->events, u->ev);
		dmem_free_event(u->ev);
	}
	if (u->stepped) {
		mem_step *st = &r->steps[--r->nsteps];
		dura_free(st->node_id);
		dmem_opt_free(st->wfver);
		dmem_text_unref(st->state);
	}
	r->d = u->old;
	dmem_text_unref(u->nd.state);
	dmem_opt_free(u->nd.status);
	dmem_opt_free(u->nd.error);
	dmem_opt_free(u->nd.wait);
	if (u->nd.lease_owner != u->old.lease_owner)
		dmem_opt_free(u->nd.lease_owner);
	if (u->nd.wfver != u->old.wfver)
		dmem_opt_free(u->nd.wfver);
	u->run = NULL;
}

int dmem_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res)
{
	mem_store *m = impl;
	commit_undo u;
	dmem_lock(m);
	int rc = commit_apply(m, c, event_id, res, &u);
	if (rc == 0) {
		commit_finish(&u);
		pthread_cond_broadcast(&m->changed);
	}
	dmem_unlock(m);
	return rc;
}

int dmem_commit_batch(void *impl, const dura_commit *c, const char *const *event_ids, size_t n,
                      dura_commit_result *res)
{
	mem_store *m = impl;
	commit_undo *undo = dura_calloc(n, sizeof(*undo));
	if (!undo) {
		int rc = dmem_oom();
		for (size_t i = 0; i < n; i++)
			res[i].code = rc;
		return rc;
	}
	size_t failed = 0, first_failed = 0;
	char first_msg[256] = "";
	int rc = 0;
	dmem_lock(m);
	for (size_t i = 0; i < n; i++) {
		res[i].code = commit_apply(m, &c[i], event_ids[i], &res[i], &undo[i]);
		if (res[i].code == DURA_ENOMEM || (res[i].code && res[i].code != DURA_ECONFLICT &&
		                                   res[i].code != DURA_ENOTFOUND && res[i].code != DURA_EINVAL)) {
			/* the batch fails as a whole: undo what went in */
			rc = res[i].code;
			for (size_t k = i; k-- > 0;)
				commit_undo_apply(m, &undo[k]);
			for (size_t k = 0; k < n; k++) {
				res[k].code = rc;
				res[k].new_version = 0;
				res[k].step = 0;
			}
			break;
		}
		if (res[i].code && failed++ == 0) {
			const dura_error *e = dura_error_last();
			first_failed = i;
			snprintf(first_msg, sizeof(first_msg), "%s", e && e->message ? e->message : "");
		}
	}
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			commit_finish(&undo[i]);
		if (failed < n)
			pthread_cond_broadcast(&m->changed);
	}
	dmem_unlock(m);
	dura_free(undo);
	if (rc == 0 && failed)
		rc = dura_error_set_native(DURA_ECONFLICT, STORE, 0, NULL, "%zu of %zu commits did not go in (commit %zu: %s)",
		                           failed, n, first_failed, first_msg);
	return rc;
}
