/*
 * import.c - the store API of moving runs between stores (contract
 * version 7): a whole run inserted as another store had it, an outbox
 * event as it was, and the outbox read page by page. As in store.c, every
 * argument is validated here once, so that each store only stores.
 */
#include "handle.h"

#include <stdio.h>
#include <string.h>

#define IMPORT_OPS(X) X(import_run) X(import_event) X(outbox_list)

int dura__import_ops_valid(const dura_store_ops *ops)
{
	if (ops->version < 7)
		return 0;
#define X(name)                                                                                                 \
	if (!ops->name)                                                                                         \
		return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,                                 \
		                             "store '%s' (contract version 7) has no %s operation", ops->scheme, #name);
	IMPORT_OPS(X)
#undef X
	return 0;
}

static int has_import(const dura_store *s, const char *fn)
{
	if (s->ops->version >= 7)
		return 0;
	return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
	                             "%s: the %s store (contract version %u) cannot import (version 7)", fn, s->ops->scheme,
	                             s->ops->version);
}

static int check_time(int64_t t, const char *what, const char *id, const char *fn)
{
	if (t >= 0 && t <= INT64_C(253402300799999))
		return 0;
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %.255s: %s %lld is not a time", fn, id, what,
	                             (long long)t);
}

static int check_record(const dura_store *s, const dura_record *r, const char *fn)
{
	TRY(dura__check_id(r->run_id, "run id", fn));
	TRY(dura__check_id(r->workflow_name, "workflow name", fn));
	TRY(dura__check_opt_id(r->foreign_id, "foreign id", fn));
	TRY(dura__check_opt_id(r->status, "status", fn));
	TRY(dura__check_opt_id(r->concurrency_key, "concurrency key", fn));
	TRY(dura__check_opt_id(r->parent_id, "parent run id", fn));
	TRY(dura__check_opt_id(r->wait, "wait", fn));
	TRY(dura__check_run_state(r->run_state, 0, fn));
	if (r->workflow_version && *r->workflow_version)
		TRY(dura__check_version(r->workflow_version, 0, fn));
	if (!r->state)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run %.255s has no state", fn, r->run_id);
	TRY(dura__check_state_size(s, strlen(r->state), "state", fn));
	TRY(dura__json_valid(r->state, "run state"));
	if (r->meta && *r->meta)
		TRY(dura__json_valid(r->meta, "run metadata"));
	if (r->version < 1 || r->step_no < 0 || r->attempt < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "%s: run %.255s: version %lld, step_no %lld, attempt %d (version from 1, the others "
		                             "from 0)",
		                             fn, r->run_id, (long long)r->version, (long long)r->step_no, r->attempt);
	if (r->priority < DURA_PRIORITY_MIN || r->priority > DURA_PRIORITY_MAX)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run %.255s: priority %d is outside %d to %d", fn,
		                             r->run_id, r->priority, DURA_PRIORITY_MIN, DURA_PRIORITY_MAX);
	TRY(check_time(r->created_at, "created_at", r->run_id, fn));
	TRY(check_time(r->updated_at, "updated_at", r->run_id, fn));
	TRY(check_time(r->next_run_at, "next_run_at", r->run_id, fn));
	return 0;
}

int dura_store_import_run(dura_store *s, const dura_import_run *r)
{
	static const char fn[] = "dura_store_import_run";
	CHECK_STORE(s);
	if (!r || !r->record)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run or record is NULL", fn);
	if ((r->nsteps && !r->steps) || (r->ncheckpoints && !r->checkpoints) || (r->nsignals && !r->signals))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: a count without its list", fn);
	const dura_record *rec = r->record;
	TRY(check_record(s, rec, fn));
	for (size_t i = 0; i < r->nsteps; i++) {
		const dura_step *st = &r->steps[i];
		if (!st->run_id || strcmp(st->run_id, rec->run_id) != 0)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: step %zu is not of run %.255s", fn, i,
			                             rec->run_id);
		/* a run's history is whole (steps 0 to step_no - 1) or gone (its data deleted) */
		if (st->step != rec->step_no - (int64_t)r->nsteps + (int64_t)i)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
			                             "%s: run %.255s: step %lld where %lld is due (steps run in order up to step_no "
			                             "%lld - 1)",
			                             fn, rec->run_id, (long long)st->step,
			                             (long long)(rec->step_no - (int64_t)r->nsteps + (int64_t)i), (long long)rec->step_no);
		TRY(dura__check_id(st->node_id, "node id", fn));
		if (!st->state)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run %.255s: step %lld has no state", fn,
			                             rec->run_id, (long long)st->step);
		TRY(dura__check_state_size(s, strlen(st->state), "step state", fn));
		TRY(dura__json_valid(st->state, "step state"));
		if (st->workflow_version && *st->workflow_version)
			TRY(dura__check_version(st->workflow_version, 0, fn));
		TRY(check_time(st->created_at, "a step's created_at", rec->run_id, fn));
	}
	for (size_t i = 0; i < r->ncheckpoints; i++) {
		const dura_checkpoint *cp = &r->checkpoints[i];
		TRY(dura__check_id(cp->checkpoint_id, "checkpoint id", fn));
		if (!cp->run_id || strcmp(cp->run_id, rec->run_id) != 0)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: checkpoint %.255s is not of run %.255s", fn,
			                             cp->checkpoint_id, rec->run_id);
		if (!cp->state || cp->step < 0)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: checkpoint %.255s: no state, or a negative step",
			                             fn, cp->checkpoint_id);
		TRY(dura__check_state_size(s, strlen(cp->state), "checkpoint state", fn));
		TRY(dura__json_valid(cp->state, "checkpoint state"));
		TRY(check_time(cp->created_at, "created_at", cp->checkpoint_id, fn));
		TRY(check_time(cp->updated_at, "updated_at", cp->checkpoint_id, fn));
	}
	for (size_t i = 0; i < r->nsignals; i++) {
		const dura_signal *sg = &r->signals[i];
		TRY(dura__check_id(sg->signal_id, "signal id", fn));
		if (!sg->run_id || strcmp(sg->run_id, rec->run_id) != 0)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: signal %.255s is not of run %.255s", fn,
			                             sg->signal_id, rec->run_id);
		TRY(dura__check_name(sg->name, "signal name", fn));
		if (sg->payload && *sg->payload)
			TRY(dura__json_valid(sg->payload, "signal payload"));
		TRY(check_time(sg->created_at, "created_at", sg->signal_id, fn));
	}
	TRY(has_import(s, fn));
	/* the lease stays behind: the run is runnable at once in its new store */
	dura_record copy = *rec;
	copy.lease_owner = (char *)"";
	copy.lease_expires_at = 0;
	dura_import_run up = *r;
	up.record = &copy;
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->import_run(s->impl, &up));
	if (rc == 0)
		dura__workers_kick(s);
	return rc;
}

int dura_store_import_event(dura_store *s, const dura_event *ev)
{
	static const char fn[] = "dura_store_import_event";
	CHECK_STORE(s);
	if (!ev)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: event is NULL", fn);
	TRY(dura__check_id(ev->id, "event id", fn));
	TRY(dura__check_id(ev->workflow_name, "workflow name", fn));
	TRY(dura__check_id(ev->run_id, "run id", fn));
	TRY(dura__check_id(ev->type, "event type", fn));
	TRY(dura__json_valid(ev->data, "event data"));
	TRY(check_time(ev->created_at, "created_at", ev->id, fn));
	TRY(has_import(s, fn));
	DISPATCH(s, import_event, ev);
}

int dura_store_outbox_list(dura_store *s, const char *after, size_t limit, dura_event_list *out)
{
	static const char fn[] = "dura_store_outbox_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_opt_id(after, "event id", fn));
	if (limit == 0)
		limit = 100;
	if (limit > 10000)
		limit = 10000;
	TRY(has_import(s, fn));
	DISPATCH(s, outbox_list, after ? after : "", limit, out);
}
