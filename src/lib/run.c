/*
 * run.c - running a workflow run: start, execute (the step loop), control
 * (pause, resume, cancel), await, checkpoints and forks.
 *
 * The step loop keeps the run's state parsed between steps and commits
 * each node's result as one store commit with the version it read; the
 * store refuses the commit if anything changed the run meanwhile, so two
 * executors of one run can never both commit a step.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dura_run_start(dura_engine *eng, const char *workflow, const char *foreign_id, const char *state,
                   const dura_run_options *opts, char run_id[DURA_UUID_LEN + 1])
{
	if (!eng || !workflow || !run_id)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_start: engine, workflow or run_id is NULL");
	run_id[0] = '\0';
	if (opts && (opts->version < 1 || opts->version > DURA_RUN_OPTIONS_VERSION))
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "run options version %u, expected 1 to %u",
		                             opts->version, DURA_RUN_OPTIONS_VERSION);
	const char *version = opts && opts->version >= 3 ? opts->workflow_version : NULL;
	dura_workflow *wf = dura__engine_workflow_at(eng, workflow, version);
	if (!wf && version && *version)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "workflow %.255s has no version %.64s registered",
		                             workflow, version);
	if (!wf)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "workflow %.255s is not registered", workflow);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = workflow;
	if (dura__store_has_versions(eng->store))
		req.workflow_version = dura_workflow_version(wf);
	req.foreign_id = foreign_id;
	req.state = state ? state : "{}";
	req.status = wf->start;
	req.run_state = DURA_RUN_RUNNING;
	if (opts) {
		req.next_run_at = opts->start_at;
		req.meta = opts->meta;
		if (opts->version >= 2) { /* a version-1 struct ends at meta */
			req.priority = opts->priority;
			req.concurrency_key = opts->concurrency_key;
		}
	}
	dura_record *rec = NULL;
	int rc = dura_store_create_run(eng->store, &req, &rec);
	if (rec) {
		snprintf(run_id, DURA_UUID_LEN + 1, "%s", rec->run_id);
		dura_record_free(rec);
	}
	if (rc == 0)
		dura__workers_kick(eng->store);
	return rc;
}

/* Replace *rec by a fresh read of the run. */
static int reload(dura_engine *eng, dura_record **rec)
{
	dura_record *fresh;
	int rc = dura_store_get_run(eng->store, (*rec)->run_id, &fresh);
	if (rc)
		return rc;
	dura_record_free(*rec);
	*rec = fresh;
	return 0;
}

/* Swap a string field of the local record for a new value. */
static int set_field(char **field, const char *value)
{
	char *c = dura_strdup(value ? value : "");
	if (!c)
		return dura_error_oom("");
	dura_free(*field);
	*field = c;
	return 0;
}

/*
 * Commit c for the run *recp holds. If the compare-and-swap is lost only
 * because the run's state was moved meanwhile - an operator's pause,
 * resume or cancel: same step count, node, state and lease owner - the
 * commit is still ours: make it at the new version, keeping the operator's
 * run state unless the run is running. Anything else means another
 * executor moved the run: DURA_ECONFLICT, and this executor stops.
 */
/* The lease the calling thread executes under (dura__run_execute_leased),
 * or NULL for dura_run_execute: the commits deep in the step loop read it
 * to wait out a busy store instead of giving the run up. */
static _Thread_local const dura__lease *tl_lease;
/* The version of the workflow whose code this thread executes now (the
 * step loop's), which its commits record. */
static _Thread_local const char *tl_version;

/* A busy store (SQLite's write lock held by another process) under a
 * lease: wait a jittered, growing pause and go again, as long as the
 * lease is ours, rather than drop a step the node already did. The
 * jitter keeps the writers of several processes from retrying in step. */
static int busy_again(int busy)
{
	if (!tl_lease || busy >= 200 || (tl_lease->stop && tl_lease->stop(tl_lease->payload, 1)))
		return 0;
	int64_t cap = (int64_t)2 << (busy < 5 ? busy : 5); /* 2 .. 64 ms */
	unsigned r;
	char b[DURA_UUID_LEN + 1];
	dura_uuid7(b); /* fork-safe randomness, without a shared rand() state */
	r = (unsigned)strtoul(b + 28, NULL, 16);
	dura__sleep_ms(1 + (int64_t)(r % (unsigned)cap));
	return 1;
}

static int commit_step(dura_engine *eng, dura_record **recp, dura_commit *c, dura_commit_result *res)
{
	/* a child's end wakes the parent that awaits it, in the same commit */
	char wake[DURA_MAX_ID_LEN + 8];
	const dura_record *rec = *recp;
	if (rec->parent_id && *rec->parent_id && (c->run_state == DURA_RUN_COMPLETED || c->run_state == DURA_RUN_FAILED)) {
		snprintf(wake, sizeof(wake), "child:%s", rec->run_id);
		c->wake_run_id = rec->parent_id;
		c->wake_wait = wake;
	}
	c->workflow_version = tl_version;
	for (int tries = 0, busy = 0;; tries++) {
		/* under a lease, the commit that ends the run gives the lease up
		 * with it: no release call after it */
		if (tl_lease && (c->run_state == DURA_RUN_COMPLETED || c->run_state == DURA_RUN_FAILED || (c->wait && *c->wait)))
			c->flags |= DURA_COMMIT_RELEASE_LEASE;
		else
			c->flags &= ~(unsigned)DURA_COMMIT_RELEASE_LEASE;
		int rc = tl_lease && tl_lease->commit ? tl_lease->commit(tl_lease->payload, c, res)
		                                      : dura__store_commit_trusted(eng->store, c, res);
		if (rc == DURA_EBUSY && busy_again(busy++)) {
			tries--;
			continue;
		}
		if (rc != DURA_ECONFLICT || tries == 3)
			return rc;
		dura_record *old = *recp, *now;
		if ((rc = dura_store_get_run(eng->store, old->run_id, &now)) != 0)
			return rc;
		int same = now->step_no == old->step_no && strcmp(now->status, old->status) == 0 &&
		           dura__json_same(now->state, old->state) && strcmp(now->lease_owner, old->lease_owner) == 0;
		if (!same) {
			dura_record_free(now);
			return dura_error_set_native(DURA_ECONFLICT, "", 0, NULL, "run %s was changed by another executor; stopping",
			                             old->run_id);
		}
		c->expect_version = now->version;
		if (now->run_state != DURA_RUN_RUNNING)
			c->run_state = 0; /* the operator's pause or cancel stands */
		old->version = now->version;
		old->run_state = now->run_state;
		dura_record_free(now);
	}
}

/*
 * A record-only commit (no step row): failures, completion, budget, a
 * durable wait (wait, NULL: none). The event tells consumers what
 * happened.
 */
static int commit_no_step(dura_engine *eng, dura_record **recp, int run_state, const char *error, int attempt,
                          int64_t next_run_at, const char *event_type, const char *wait)
{
	dura_record *rec = *recp;
	dura_commit c = DURA_COMMIT_INIT;
	dura_commit_result res;
	c.run_id = rec->run_id;
	c.expect_version = rec->version;
	c.state = rec->state;
	c.status = rec->status;
	c.run_state = run_state;
	c.error = error;
	c.attempt = attempt;
	c.next_run_at = next_run_at;
	c.event_type = event_type;
	c.wait = wait;
	c.flags = DURA_COMMIT_NO_STEP;
	/* a failure's event carries the error and the attempt besides the
	 * default summary's fields, so that a consumer (or the dashboard's
	 * timeline) knows what failed after the record moved on */
	char *data = NULL;
	if (error && *error) {
		json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:i, s:i, s:s}", "run_id", rec->run_id, "step", -1, "node_id", "",
		                      "status", rec->status ? rec->status : "", "run_state",
		                      run_state ? run_state : rec->run_state, "attempt", attempt, "error", error);
		/* (an error text that is not UTF-8 leaves the default summary) */
		data = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		c.event_data = data;
	}
	int rc = commit_step(eng, recp, &c, &res);
	free(data);
	if (rc)
		return rc;
	rec->version = res.new_version;
	if (c.run_state)
		rec->run_state = c.run_state;
	rec->attempt = attempt;
	rec->next_run_at = next_run_at ? next_run_at : dura_now_ms();
	if (((c.flags & DURA_COMMIT_RELEASE_LEASE) && set_field(&rec->lease_owner, "")) || set_field(&rec->wait, wait))
		return dura_error_oom("");
	return set_field(&rec->error, error);
}

static int commit_record(dura_engine *eng, dura_record **recp, int run_state, const char *error, int attempt,
                         int64_t next_run_at, const char *event_type)
{
	return commit_no_step(eng, recp, run_state, error, attempt, next_run_at, event_type, NULL);
}

/*
 * The attempt waits (ctx->wait): commit the run as waiting - no step, the
 * state and node as they were, next_run_at the wait's deadline, the lease
 * given up - then look once more for what it waits for (wait.c).
 * Returns 1 when the run is due again at once, 0 when it waits, < 0.
 */
static int commit_wait(dura_engine *eng, dura_record **recp, const dura_ctx *ctx)
{
	int rc = commit_no_step(eng, recp, 0, NULL, (*recp)->attempt, ctx->wait_until, "run_waiting", ctx->wait);
	return rc ? rc : dura__wait_recheck(eng, (*recp)->run_id, ctx);
}

/*
 * Wait for a backoff or a delayed start to end, in slices of at most
 * 100 ms, reading the run after each so that a pause or cancel stops the
 * wait (a store that notifies wakes us at once).
 */
static int wait_due(dura_engine *eng, dura_record **recp)
{
	int64_t left = (*recp)->next_run_at - dura_now_ms();
	if (left <= 0)
		return 0;
	int64_t slice = left < 100 ? left : 100;
	int rc = dura__store_wait_change(eng->store, (*recp)->run_id, (*recp)->version, slice);
	if (rc == DURA_ENOTSUP)
		dura__sleep_ms(slice);
	else if (rc && rc != DURA_ETIMEOUT)
		return rc;
	return reload(eng, recp);
}

static int default_retryable(int code)
{
	return code != DURA_EINVAL && code != DURA_ECANCELED;
}

/*
 * One attempt of the current node failed with `code`. Persist the attempt
 * (so a crash does not forget it), then either schedule the retry after a
 * backoff, pause the run (auto-pause), or fail it.
 * Returns 1 to go on with the loop, 0 to stop, <0 on a store error.
 */
static int attempt_failed(dura_engine *eng, dura_record **recp, const dura__node *n, int code, const char *msg)
{
	int attempts = (*recp)->attempt + 1;
	dura__metrics_failed_attempt();
	int retry = n->opts.retryable ? n->opts.retryable(code, msg, n->opts.retryable_payload) : default_retryable(code);
	char error[700];
	snprintf(error, sizeof(error), "node %s attempt %d: %s", n->name, attempts, msg);
	int rc;
	if (retry && attempts < n->opts.max_attempts) {
		int pause = eng->opts.auto_pause_after_failures && attempts >= eng->opts.auto_pause_after_failures;
		int64_t due = dura__add_ms(dura_now_ms(), dura__backoff_ms(&n->opts, attempts));
		rc = commit_record(eng, recp, pause ? DURA_RUN_PAUSED : 0, error, attempts, due,
		                   pause ? "run_paused" : "attempt_failed");
		if (rc)
			return rc;
		return pause ? 0 : 1; /* the loop waits for `due` */
	}
	rc = commit_record(eng, recp, DURA_RUN_FAILED, error, attempts, 0, "run_failed");
	return rc ? rc : 0;
}

/*
 * Commit a successful attempt of node n: the state the node left (work),
 * and the node to run next (next; "" ends the run). The local record
 * follows the commit, so the step loop needs no read per step.
 */
#define STATE_TOO_BIG 1 /* commit_success: the state is over max_state, too_big says so */

static int commit_success(dura_engine *eng, dura_record **recp, const dura__node *n, const char *next,
                          const json_t *work, const dura_ctx *ctx, char *too_big, size_t too_big_size)
{
	dura_commit c = DURA_COMMIT_INIT;
	dura_commit_result res;
	dura_record *rec = *recp;
	int rc;

	char *text = json_dumps(work, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return dura_error_oom("");
	size_t max_state = 0;
	dura_store_limits_get(eng->store, &max_state, NULL);
	if (strlen(text) > max_state) {
		/* not a store error: the node's attempt failed (the caller says so) */
		snprintf(too_big, too_big_size, "left a state of %zu bytes, over the store's limit of %zu bytes (URL option "
		         "max_state)", strlen(text), max_state);
		free(text);
		return STATE_TOO_BIG;
	}
	c.run_id = rec->run_id;
	c.expect_version = rec->version;
	c.node_id = n->name;
	c.state = text;
	c.status = next;
	c.run_state = *next ? 0 : DURA_RUN_COMPLETED;
	/* the run stays due since when it was due: a claim takes the earliest
	 * due first, so a run taken over part-way goes before the runs started
	 * after it, rather than behind every run started before its last step */
	int64_t now = dura_now_ms();
	c.next_run_at = rec->next_run_at > 0 && rec->next_run_at <= now ? rec->next_run_at : 0;
	c.signal_id = ctx->signal_id; /* the signal it received goes with its step */
	if (ctx->sleep_set && *next && ctx->sleep_until > now) {
		c.next_run_at = ctx->sleep_until;
		c.wait = "sleep";
	}
	if ((rc = commit_step(eng, recp, &c, &res)) != 0)
		goto cleanup;
	if (c.flags & DURA_COMMIT_RELEASE_LEASE)
		rc = set_field(&rec->lease_owner, "");
	rec->version = res.new_version;
	rec->step_no++;
	rec->attempt = 0;
	if (c.run_state)
		rec->run_state = c.run_state;
	rec->next_run_at = c.next_run_at ? c.next_run_at : now;
	if (rc || set_field(&rec->status, next) || set_field(&rec->error, "") || set_field(&rec->state, text) ||
	    set_field(&rec->wait, c.wait))
		rc = dura_error_oom("");
cleanup:
	free(text); /* jansson's allocation */
	return rc;
}

/* What one attempt leaves the step loop to do; an error is < 0. */
enum {
	ATTEMPT_STOP = 0,  /* the run failed, paused or ended: return */
	ATTEMPT_RETRY = 1, /* the attempt failed and a retry is due later */
	ATTEMPT_STEP = 2,  /* the node's step is committed */
	ATTEMPT_WAIT = 3,  /* the run waits (durably), committed so */
	ATTEMPT_WOKEN = 4  /* it waited, and what it waits for came already */
};

/*
 * One attempt of node n of the run *recp holds. *statep is the run's
 * parsed state, or NULL to parse the stored text; the node works on it in
 * place, so the attempt takes it. After a committed step *statep is the
 * new state, which spares the next step a parse; after anything else it
 * is NULL and the next attempt parses the committed text again.
 * The commits update *recp in place, never replace it.
 */
static int run_attempt(dura_engine *eng, const dura_workflow *wf, dura_record **recp, const dura__node *n,
                       int64_t run_deadline, json_t **statep)
{
	dura_record *rec = *recp;
	json_t *work = *statep;
	dura_ctx ctx;
	int rc;

	*statep = NULL;
	memset(&ctx, 0, sizeof(ctx));
	if (!work) {
		json_error_t jerr;
		work = json_loads(rec->state, JSON_DECODE_ANY, &jerr);
		if (!work && (!jerr.text[0] || json_error_code(&jerr) == json_error_out_of_memory))
			return dura_error_oom(""); /* jansson gives no message when it cannot allocate */
		if (!work)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "run %s: stored state is not JSON: %s", rec->run_id,
			                             jerr.text);
	}
	ctx.eng = eng;
	ctx.rec = rec;
	ctx.node = n;
	ctx.attempt = rec->attempt + 1;
	ctx.deadline = n->opts.timeout_ms ? dura__add_ms(dura_now_ms(), n->opts.timeout_ms) : 0;
	ctx.run_deadline = run_deadline;
	int nrc = n->fn(&ctx, work, n->payload);
	if (ctx.wait && nrc >= 0) {
		/* a durable wait: the node runs again from its start when it is over */
		json_decref(ctx.delta);
		ctx.delta = NULL;
		rc = commit_wait(eng, recp, &ctx);
		if (rc >= 0)
			rc = rc ? ATTEMPT_WOKEN : ATTEMPT_WAIT;
		goto cleanup;
	}
	if (nrc == DURA_WAITING) {
		nrc = DURA_EINVAL;
		snprintf(ctx.error, sizeof(ctx.error), "returned DURA_WAITING without a wait (dura_ctx_wait_signal, "
		                                       "dura_ctx_await_child)");
	} else if (nrc > 0) {
		snprintf(ctx.error, sizeof(ctx.error), "returned %d (a node returns 0, a negative code, or DURA_WAITING)", nrc);
		nrc = DURA_EINVAL;
	}
	if (nrc == 0 && ctx.deadline && dura_now_ms() >= ctx.deadline) {
		nrc = DURA_ETIMEOUT;
		snprintf(ctx.error, sizeof(ctx.error), "overran its timeout of %lld ms", (long long)n->opts.timeout_ms);
	}
	if (nrc == 0 && ctx.delta) {
		nrc = wf->reducer(work, ctx.delta, wf->reducer_payload);
		if (nrc && !ctx.error[0]) {
			const dura_error *e = dura_error_last();
			snprintf(ctx.error, sizeof(ctx.error), "reducer: %s", e ? e->message : dura_strerror(nrc));
		}
	}
	json_decref(ctx.delta);
	if (nrc != 0) {
		/* a node that returns a dura call's code keeps that call's message */
		const dura_error *le = dura_error_last();
		if (!ctx.error[0] && le && le->code == nrc && le->message && *le->message)
			snprintf(ctx.error, sizeof(ctx.error), "%s", le->message);
		else if (!ctx.error[0])
			snprintf(ctx.error, sizeof(ctx.error), "%s (%d)", dura_strerror(nrc), nrc);
		rc = attempt_failed(eng, recp, n, nrc, ctx.error);
		goto cleanup;
	}

	const char *next = ctx.goto_set ? (ctx.goto_node ? ctx.goto_node : "") : (n->edge ? n->edge : "");
	if (*next && !dura__workflow_node(wf, next)) {
		char msg[600];
		snprintf(msg, sizeof(msg), "node %s chose unknown node '%s'", n->name, next);
		rc = commit_record(eng, recp, DURA_RUN_FAILED, msg, rec->attempt + 1, 0, "run_failed");
		goto cleanup; /* ATTEMPT_STOP when the commit went in */
	}
	char too_big[200];
	if ((rc = commit_success(eng, recp, n, next, work, &ctx, too_big, sizeof(too_big))) == STATE_TOO_BIG) {
		rc = attempt_failed(eng, recp, n, DURA_EINVAL, too_big);
		goto cleanup;
	}
	if (rc != 0)
		goto cleanup;
	*statep = work;
	work = NULL;
	rc = ATTEMPT_STEP;
cleanup:
	json_decref(work);
	dura_free(ctx.goto_node);
	dura__ctx_wait_clear(&ctx);
	return rc;
}

/*
 * The step loop, on the record *recp holds, until the run ends, pauses or
 * is cancelled, max_steps, an error - or, under a lease, until the lease's
 * stop says so between steps, or the run is not due (a retry's backoff):
 * a worker does not wait holding a thread and a lease.
 */
static int step_loop(dura_engine *eng, const dura_workflow *wf, dura_record **recp, const dura__lease *lease)
{
	json_t *state = NULL;
	int64_t steps = 0;
	int rc = 0;
	const char *outer_version = tl_version;
	tl_version = dura__store_has_versions(eng->store) ? dura_workflow_version((dura_workflow *)wf) : NULL;
	for (;;) {
		dura_record *rec = *recp;
		if (rec->run_state == DURA_RUN_INITIATED && !lease) {
			if ((rc = dura_store_set_run_state(eng->store, rec->run_id, DURA_RUN_RUNNING, NULL)) ||
			    (rc = reload(eng, recp)))
				break;
			continue;
		}
		if (rec->run_state != DURA_RUN_RUNNING)
			break; /* completed, failed, paused, cancelled: stop */
		if (eng->opts.max_steps && steps >= eng->opts.max_steps)
			break;
		if (lease && lease->stop && lease->stop(lease->payload, 0))
			break; /* the worker stops, or lost the lease: the run stays runnable */
		int64_t now = dura_now_ms();
		if (!*rec->status) {
			rc = commit_record(eng, recp, DURA_RUN_COMPLETED, NULL, 0, 0, "run_completed");
			break;
		}
		int64_t run_deadline = eng->opts.run_timeout_ms ? dura__add_ms(rec->created_at, eng->opts.run_timeout_ms) : 0;
		if (run_deadline && now >= run_deadline) {
			char msg[128];
			snprintf(msg, sizeof(msg), "run exceeded its budget of %lld ms", (long long)eng->opts.run_timeout_ms);
			rc = commit_record(eng, recp, DURA_RUN_FAILED, msg, rec->attempt, 0, "run_failed");
			break;
		}
		const dura__node *n = dura__workflow_node(wf, rec->status);
		if (!n) {
			char msg[400];
			snprintf(msg, sizeof(msg), "workflow %s has no node named '%s'", wf->name, rec->status);
			rc = commit_record(eng, recp, DURA_RUN_FAILED, msg, rec->attempt, 0, "run_failed");
			break;
		}
		if (rec->next_run_at > now) { /* a retry's backoff, a delayed start, a durable wait */
			if (lease || (rec->wait && *rec->wait))
				break; /* released, it comes back when due (a wait holds no thread) */
			int64_t version = rec->version;
			if ((rc = wait_due(eng, recp)) != 0)
				break;
			if ((*recp)->version != version) { /* moved meanwhile: start over from what is stored */
				json_decref(state);
				state = NULL;
			}
			continue;
		}
		rc = run_attempt(eng, wf, recp, n, run_deadline, &state);
		if (rc < 0 || rc == ATTEMPT_STOP)
			break;
		if (rc == ATTEMPT_WAIT) {
			rc = 0;
			break; /* committed as waiting: any worker resumes it */
		}
		if (rc == ATTEMPT_WOKEN) {
			if (lease) {
				rc = 0;
				break; /* the lease is given up: it is claimable again now */
			}
			if ((rc = reload(eng, recp)) != 0)
				break;
			continue;
		}
		if (rc == ATTEMPT_STEP)
			steps++;
		rc = 0;
	}
	tl_version = outer_version;
	json_decref(state);
	return rc > 0 ? 0 : rc;
}

/* The code a run executes on: its workflow at its version (a run without
 * one: the version registered last). */
static int run_workflow(dura_engine *eng, const dura_record *rec, dura_workflow **wf)
{
	const char *v = rec->workflow_version ? rec->workflow_version : "";
	if ((*wf = dura__engine_workflow_at(eng, rec->workflow_name, v)) != NULL)
		return 0;
	if (*v && dura__engine_workflow(eng, rec->workflow_name))
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
		                             "run %s is on version %s of workflow %s, which this engine has not registered "
		                             "(register that version, or move the run: dura runs migrate-version)",
		                             rec->run_id, v, rec->workflow_name);
	return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "run %s: workflow %s is not registered in this engine",
	                             rec->run_id, rec->workflow_name);
}

int dura_run_execute(dura_engine *eng, const char *run_id, dura_record **out)
{
	dura_record *rec = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_execute: engine is NULL");
	if ((rc = dura_store_get_run(eng->store, run_id, &rec)) != 0)
		return rc;
	dura_workflow *wf = NULL;
	if ((rc = run_workflow(eng, rec, &wf)) != 0)
		goto cleanup;
	rc = step_loop(eng, wf, &rec, NULL);
	if (rc == 0 && out) {
		/* hand back what the store holds now */
		rc = reload(eng, &rec);
		if (rc == 0) {
			*out = rec;
			rec = NULL;
		}
	}
cleanup:
	dura_record_free(rec);
	return rc;
}

int dura__run_execute_leased(dura_engine *eng, dura_record **recp, const dura__lease *lease)
{
	dura_workflow *wf = NULL;
	int rc = run_workflow(eng, *recp, &wf);
	if (rc)
		return rc;
	const dura__lease *outer = tl_lease;
	tl_lease = lease;
	rc = step_loop(eng, wf, recp, lease);
	tl_lease = outer;
	return rc;
}

static int control(dura_engine *eng, const char *run_id, int to)
{
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "engine is NULL");
	return dura_store_set_run_state(eng->store, run_id, to, NULL);
}

int dura_run_pause(dura_engine *eng, const char *run_id)
{
	return control(eng, run_id, DURA_RUN_PAUSED);
}

int dura_run_resume(dura_engine *eng, const char *run_id)
{
	int rc = control(eng, run_id, DURA_RUN_RUNNING);
	if (rc == 0)
		dura__workers_kick(eng->store);
	return rc;
}

int dura_run_cancel(dura_engine *eng, const char *run_id)
{
	int rc = control(eng, run_id, DURA_RUN_CANCELLED);
	if (rc == DURA_ECONFLICT) {
		/* cancelled already: finish cancelling its children (a crash may
		 * have come in between); any other state keeps the refusal */
		dura__error_saved saved;
		dura__error_save(&saved);
		dura_record *r = NULL;
		int cancelled = dura_store_get_run(eng->store, run_id, &r) == 0 && r->run_state == DURA_RUN_CANCELLED;
		dura_record_free(r);
		if (!cancelled)
			return dura__error_restore(&saved);
		rc = 0;
	}
	if (rc == 0)
		rc = dura__cancel_children(eng, run_id, 0);
	return rc;
}

static int is_end(int s)
{
	return s == DURA_RUN_COMPLETED || s == DURA_RUN_FAILED || s == DURA_RUN_CANCELLED || s == DURA_RUN_DATA_DELETED;
}

static int matches(const dura_record *r, const dura_await_cond *c)
{
	if (c->run_state && r->run_state == c->run_state)
		return 1;
	if (c->status && *c->status && strcmp(r->status, c->status) == 0)
		return 1;
	if (c->any_end && is_end(r->run_state))
		return 1;
	return 0;
}

int dura_run_await(dura_engine *eng, const char *run_id, const dura_await_cond *cond, int64_t timeout_ms,
                   dura_record **out)
{
	if (out)
		*out = NULL;
	if (!eng || !cond)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_await: engine or condition is NULL");
	if (!cond->run_state && !(cond->status && *cond->status) && !cond->any_end)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_await: the condition checks nothing");
	int64_t end = dura__add_ms(dura_now_ms(), timeout_ms > 0 ? timeout_ms : 0);
	int64_t pause = 1;
	for (;;) {
		dura_record *r;
		int rc = dura_store_get_run(eng->store, run_id, &r);
		if (rc)
			return rc;
		if (matches(r, cond)) {
			if (out)
				*out = r;
			else
				dura_record_free(r);
			return 0;
		}
		int64_t version = r->version;
		dura_record_free(r);
		int64_t left = end - dura_now_ms();
		if (left <= 0)
			return dura_error_set_native(DURA_ETIMEOUT, "", 0, NULL, "run %s did not reach the awaited state within %lld ms",
			                             run_id, (long long)timeout_ms);
		/* a store that can notify wakes us on the change; others are polled */
		rc = dura__store_wait_change(eng->store, run_id, version, left);
		if (rc == DURA_ENOTSUP) {
			dura__sleep_ms(pause < left ? pause : left);
			pause = pause * 2 > 200 ? 200 : pause * 2;
		} else if (rc && rc != DURA_ETIMEOUT) {
			return rc;
		}
	}
}

int dura_run_checkpoint(dura_engine *eng, const char *run_id, const char *checkpoint_id)
{
	if (!eng)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_checkpoint: engine is NULL");
	dura_record *r;
	int rc = dura_store_get_run(eng->store, run_id, &r);
	if (rc)
		return rc;
	/* a checkpoint holds the state after its step: the last committed one */
	if (r->step_no == 0)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "run %s has no committed step to checkpoint yet", r->run_id);
	else
		rc = dura_store_checkpoint_save(eng->store, checkpoint_id, r->run_id, r->step_no - 1, r->state);
	dura_record_free(r);
	return rc;
}

/*
 * Fork at position `pos` (steps applied) of run `src`: the node that ran
 * at step pos is the one to run next; past the last step, the run's
 * current node.
 */
static int next_node_at(dura_engine *eng, const dura_record *src, int64_t pos, char **out)
{
	dura_step *st;
	int rc = dura_store_get_step(eng->store, src->run_id, pos, &st);
	if (rc == 0) {
		*out = dura_strdup(st->node_id);
		dura_step_free(st);
		return *out ? 0 : dura_error_oom("");
	}
	if (rc != DURA_ENOTFOUND)
		return rc;
	if (pos != src->step_no)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "run %s has no step %lld", src->run_id, (long long)pos);
	*out = dura_strdup(src->status);
	return *out ? 0 : dura_error_oom("");
}

int dura_run_fork(dura_engine *eng, const char *run_id, const char *checkpoint_id, int64_t step,
                  char new_run_id[DURA_UUID_LEN + 1])
{
	if (!eng || !new_run_id)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_fork: engine or new_run_id is NULL");
	new_run_id[0] = '\0';
	dura_checkpoint *cp = NULL;
	dura_step *st = NULL;
	dura_record *src = NULL;
	char *next = NULL, *meta = NULL;
	const char *state;
	int64_t pos;
	int rc;
	if (checkpoint_id) {
		if ((rc = dura_store_checkpoint_load(eng->store, checkpoint_id, &cp)))
			goto out;
		run_id = cp->run_id;
		pos = cp->step + 1;
		state = cp->state;
	} else {
		if (step < 0) {
			rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_run_fork: step %lld is negative", (long long)step);
			goto out;
		}
		if ((rc = dura_store_get_step(eng->store, run_id, step, &st)))
			goto out;
		pos = step + 1;
		state = st->state;
	}
	if ((rc = dura_store_get_run(eng->store, run_id, &src)) || (rc = next_node_at(eng, src, pos, &next)))
		goto out;
	json_t *m = json_pack("{s:s, s:I, s:s?}", "forked_from", src->run_id, "at_step", (json_int_t)pos, "checkpoint",
	                      checkpoint_id);
	meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = src->workflow_name;
	req.workflow_version = src->workflow_version; /* the fork runs on the code of its source */
	req.state = state;
	req.status = next;
	req.run_state = *next ? DURA_RUN_RUNNING : DURA_RUN_COMPLETED;
	req.meta = meta;
	dura_record *rec = NULL;
	rc = dura_store_create_run(eng->store, &req, &rec);
	if (rc == 0) {
		snprintf(new_run_id, DURA_UUID_LEN + 1, "%s", rec->run_id);
		dura_record_free(rec);
		dura__workers_kick(eng->store);
	}
out:
	free(meta);
	dura_free(next);
	dura_record_free(src);
	dura_step_free(st);
	dura_checkpoint_free(cp);
	return rc;
}
