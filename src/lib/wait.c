/*
 * wait.c - durable waiting inside a node (dura_ctx_sleep,
 * dura_ctx_wait_signal, dura_ctx_start_child, dura_ctx_await_child), and
 * the engine's side of signals and schedules.
 *
 * A node that waits does not block: the call records in the ctx what the
 * attempt ends with - a sleep after the step, or a wait instead of it -
 * and the step loop (run.c) commits it: the run's wait (dura_record.wait)
 * and its deadline as next_run_at, with the lease given up. Whatever the
 * run waits for makes it due again through the store, atomically with
 * its own write: a signal's send (signal_send), a child's end (its last
 * commit, or its cancel, wakes the parent). The one window the store
 * cannot close - the signal sent, or the child ended, after the node
 * looked and before its wait was committed - is closed by looking again
 * after the commit (dura__wait_recheck).
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

static int no_ctx(const char *fn)
{
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: ctx is NULL", fn);
}

static int need_store(const dura_ctx *ctx, const char *fn)
{
	if (dura__store_can_wait(ctx->eng->store))
		return 0;
	return dura_error_set_native(DURA_ENOTSUP, dura__store_scheme(ctx->eng->store), 0, NULL,
	                             "%s: the %s store has no durable waiting (store contract version 5)", fn,
	                             dura__store_scheme(ctx->eng->store));
}

void dura__ctx_wait_clear(dura_ctx *ctx)
{
	dura_free(ctx->wait);
	dura_free(ctx->signal_id);
	ctx->wait = NULL;
	ctx->signal_id = NULL;
}

/* End the attempt with wait w until `until`: DURA_WAITING. */
static int wait_for(dura_ctx *ctx, const char *kind, const char *what, int64_t until)
{
	size_t n = strlen(kind) + strlen(what) + 1;
	char *w = dura_malloc(n);
	if (!w)
		return dura_error_oom("");
	snprintf(w, n, "%s%s", kind, what);
	dura_free(ctx->wait);
	ctx->wait = w;
	ctx->wait_until = until;
	dura_error_clear();
	return DURA_WAITING;
}

/* A wait of ctx's run that goes on from an earlier attempt: the same
 * wait, committed before this run of the node. */
static int same_wait(const dura_ctx *ctx, const char *kind, const char *what)
{
	const char *w = ctx->rec->wait ? ctx->rec->wait : "";
	size_t k = strlen(kind);
	return strncmp(w, kind, k) == 0 && strcmp(w + k, what) == 0;
}

int dura_ctx_sleep(dura_ctx *ctx, int64_t ms)
{
	static const char fn[] = "dura_ctx_sleep";
	if (!ctx)
		return no_ctx(fn);
	int rc = need_store(ctx, fn);
	if (rc)
		return rc;
	if (ms < 0 || ms > INT64_C(3155760000000))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %lld ms is not 0 to 100 years", fn,
		                             (long long)ms);
	if (ctx->wait)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: this attempt already waits for %s", fn,
		                             ctx->wait);
	ctx->sleep_set = 1;
	ctx->sleep_until = dura__add_ms(dura_now_ms(), ms);
	if (ctx->sleep_until > DURA__NEVER_MS)
		ctx->sleep_until = DURA__NEVER_MS;
	return 0;
}

int dura_ctx_wait_signal(dura_ctx *ctx, const char *name, int64_t timeout_ms, char **json)
{
	static const char fn[] = "dura_ctx_wait_signal";
	if (json)
		*json = NULL;
	if (!ctx)
		return no_ctx(fn);
	if (!json)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: json is NULL", fn);
	int rc = dura__check_name(name, "signal name", fn);
	if (rc)
		return rc;
	if ((rc = need_store(ctx, fn)) != 0)
		return rc;
	if (ctx->signal_id || ctx->wait || ctx->sleep_set)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "%s: this attempt has received, waited or slept already (one signal per node "
		                             "attempt: receive the next in the next node)", fn);
	dura_signal *sig = NULL;
	rc = dura_store_signal_next(ctx->eng->store, ctx->rec->run_id, name, &sig);
	if (rc == 0) {
		ctx->signal_id = dura_strdup(sig->signal_id);
		*json = dura_strdup(sig->payload);
		dura_signal_free(sig);
		if (!ctx->signal_id || !*json) {
			dura__ctx_wait_clear(ctx);
			dura_free(*json);
			*json = NULL;
			return dura_error_oom("");
		}
		return 0;
	}
	if (rc != DURA_ENOTFOUND)
		return rc;
	int64_t now = dura_now_ms();
	int resumed = same_wait(ctx, "signal:", name);
	if (timeout_ms == 0 || (resumed && ctx->rec->next_run_at <= now && ctx->rec->next_run_at < DURA__NEVER_MS))
		return dura_error_set_native(DURA_ETIMEOUT, "", 0, NULL, "run %s: no signal %s came within %lld ms",
		                             ctx->rec->run_id, name, (long long)timeout_ms);
	/* the deadline is the first wait's: a run woken early (by a signal of
	 * another name, an operator) waits on to the same time */
	int64_t until = resumed ? ctx->rec->next_run_at
	                        : timeout_ms < 0 ? DURA__NEVER_MS : dura__add_ms(now, timeout_ms);
	if (until > DURA__NEVER_MS)
		until = DURA__NEVER_MS;
	return wait_for(ctx, "signal:", name, until);
}

int dura_ctx_start_child(dura_ctx *ctx, const char *workflow, const char *state_json, char child_id[DURA_UUID_LEN + 1])
{
	static const char fn[] = "dura_ctx_start_child";
	if (child_id)
		child_id[0] = '\0';
	if (!ctx)
		return no_ctx(fn);
	if (!workflow || !child_id)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: workflow or child_id is NULL", fn);
	int rc = need_store(ctx, fn);
	if (rc)
		return rc;
	dura_workflow *wf = dura__engine_workflow(ctx->eng, workflow);
	if (!wf)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "%s: workflow %.255s is not registered", fn, workflow);
	char id[DURA_UUID_LEN + 1];
	/* the n-th child of this step: the same on every attempt and resume */
	char step[24];
	snprintf(step, sizeof(step), "%lld", (long long)ctx->rec->step_no);
	dura__uuid_derived(id, ctx->rec->created_at, ctx->rec->run_id, step, ctx->children);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	if (dura__store_has_versions(ctx->eng->store))
		req.workflow_version = dura_workflow_version(wf);
	req.run_id = id;
	req.workflow_name = workflow;
	req.state = state_json ? state_json : "{}";
	req.status = wf->start;
	req.run_state = DURA_RUN_RUNNING;
	req.parent_id = ctx->rec->run_id;
	rc = dura_store_create_run(ctx->eng->store, &req, NULL);
	if (rc == DURA_EEXISTS) {
		/* started by an earlier attempt - or a different run under our id */
		dura_record *r = NULL;
		if ((rc = dura_store_get_run(ctx->eng->store, id, &r)) != 0)
			return rc;
		if (strcmp(r->parent_id ? r->parent_id : "", ctx->rec->run_id) != 0 || strcmp(r->workflow_name, workflow) != 0)
			rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
			                           "%s: child %d of step %lld was started before as a run of %s; this attempt "
			                           "asks for %s (a node must start its children in the same order each time)",
			                           fn, ctx->children, (long long)ctx->rec->step_no, r->workflow_name, workflow);
		dura_record_free(r);
		if (rc)
			return rc;
	} else if (rc) {
		return rc;
	} else {
		dura__workers_kick(ctx->eng->store);
	}
	ctx->children++;
	memcpy(child_id, id, sizeof(id));
	return 0;
}

int dura_ctx_await_child(dura_ctx *ctx, const char *child_id, dura_record **child)
{
	static const char fn[] = "dura_ctx_await_child";
	if (child)
		*child = NULL;
	if (!ctx)
		return no_ctx(fn);
	int rc = need_store(ctx, fn);
	if (rc)
		return rc;
	if (ctx->wait || ctx->sleep_set)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: this attempt already waits or sleeps", fn);
	dura_record *r = NULL;
	if ((rc = dura_store_get_run(ctx->eng->store, child_id, &r)) != 0)
		return rc;
	if (strcmp(r->parent_id ? r->parent_id : "", ctx->rec->run_id) != 0) {
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: run %s is not a child of run %s", fn, r->run_id,
		                           ctx->rec->run_id);
		dura_record_free(r);
		return rc;
	}
	if (!dura_run_state_active(r->run_state)) {
		if (child)
			*child = r;
		else
			dura_record_free(r);
		return 0;
	}
	dura_record_free(r);
	return wait_for(ctx, "child:", child_id, DURA__NEVER_MS);
}

int dura__wait_recheck(dura_engine *eng, const char *run_id, const dura_ctx *ctx)
{
	int rc = dura__store_wait_recheck(eng->store, run_id, ctx->wait);
	if (rc < 0) {
		/* not known whether it came: make the run due, and the node will
		 * look again (a wake for nothing only runs it once more) */
		dura__error_saved saved;
		dura__error_save(&saved);
		if (dura_store_wake(eng->store, run_id, ctx->wait) == 0)
			rc = 1;
		else
			return dura__error_restore(&saved);
	}
	if (rc == 1)
		dura__workers_kick(eng->store);
	return rc;
}

int dura__cancel_children(dura_engine *eng, const char *run_id, int depth)
{
	if (!dura__store_can_wait(eng->store))
		return 0;
	if (depth > 64)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "run %s: children nested deeper than 64 runs", run_id);
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = run_id;
	f.limit = 500;
	char *cursor = NULL;
	int rc = 0;
	for (;;) {
		dura_record_list l;
		f.cursor = cursor;
		rc = dura_store_list_runs(eng->store, &f, &l);
		if (rc)
			break;
		for (size_t i = 0; i < l.count && rc == 0; i++) {
			const dura_record *c = &l.items[i];
			if (dura_run_state_active(c->run_state)) {
				rc = dura_store_set_run_state(eng->store, c->run_id, DURA_RUN_CANCELLED, NULL);
				if (rc == DURA_ECONFLICT) /* it ended meanwhile */
					rc = 0;
			}
			if (rc == 0)
				rc = dura__cancel_children(eng, c->run_id, depth + 1);
		}
		dura_free(cursor);
		cursor = l.next_cursor ? dura_strdup(l.next_cursor) : NULL;
		int more = l.next_cursor != NULL;
		dura_record_list_free(&l);
		if (rc || !more)
			break;
		if (!cursor) {
			rc = dura_error_oom("");
			break;
		}
	}
	dura_free(cursor);
	return rc;
}

/* ---- signals -------------------------------------------------------------- */

int dura_run_signal(dura_engine *eng, const char *run_id, const char *name, const char *json)
{
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_signal: engine is NULL");
	int rc = dura_store_signal_send(eng->store, run_id, name, json, NULL);
	if (rc == 0)
		dura__workers_kick(eng->store);
	return rc;
}

int dura_run_signal_foreign(dura_engine *eng, const char *workflow, const char *foreign_id, const char *name,
                            const char *json)
{
	static const char fn[] = "dura_run_signal_foreign";
	if (!eng || !workflow || !foreign_id || !*foreign_id)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: engine, workflow or foreign id is missing", fn);
	dura_record *r = NULL;
	int rc = dura_store_latest_run(eng->store, workflow, foreign_id, &r);
	if (rc == 0 && !dura_run_state_active(r->run_state))
		rc = dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
		                           "%s: workflow %s has no active run with foreign id %s (the latest, %s, is %s)", fn,
		                           workflow, foreign_id, r->run_id, dura_run_state_name(r->run_state));
	if (rc == 0)
		rc = dura_run_signal(eng, r->run_id, name, json);
	dura_record_free(r);
	return rc;
}

/* ---- schedules ------------------------------------------------------------ */

int dura_schedule_set(dura_engine *eng, const dura_schedule_spec *spec)
{
	if (!eng || !spec)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_schedule_set: engine or spec is NULL");
	if (spec->workflow && !dura__engine_workflow(eng, spec->workflow))
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
		                             "dura_schedule_set: workflow %.255s is not registered in this engine",
		                             spec->workflow);
	return dura_store_schedule_set(eng->store, spec);
}

int dura_schedule_delete(dura_engine *eng, const char *name)
{
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_schedule_delete: engine is NULL");
	return dura_store_schedule_delete(eng->store, name);
}

int dura_schedule_list(dura_engine *eng, dura_schedules *out)
{
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_schedule_list: engine is NULL");
	return dura_store_schedule_list(eng->store, out);
}
