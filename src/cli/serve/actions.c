/*
 * actions.c - what a signed-in operator can do to a run from its page:
 * pause, resume, cancel (its unfinished children too), fork from a step
 * or a checkpoint, and send a signal. http.c has checked the token and
 * the CSRF token before any of these is called. Each answers with a page
 * that says what happened: the run's state before and after, the fork's
 * new run, the signal's id, or why nothing changed (409 for a transition
 * the run's state does not allow, 400 for bad input, 404 for no run).
 */
#include "serve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void result(serve_req *r, serve_resp *o, const char *run_id, const char *title, const char *what,
                   const char *link_id)
{
	o->status = 200;
	page_begin(r, o, title, "runs");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>");
	sb_html(b, title);
	sb_puts(b, "</h1><div class=\"note\" id=\"result\">");
	sb_html(b, what);
	sb_puts(b, "</div><p><a id=\"back\" href=\"/runs/");
	sb_url(b, link_id ? link_id : run_id);
	sb_puts(b, "\">");
	sb_puts(b, link_id ? "the new run" : "back to the run");
	sb_puts(b, "</a></p>");
	page_end(r, o);
}

static int transition(serve_req *r, serve_resp *o, const char *run_id, const char *action)
{
	dura_engine *eng = r->ctx->engine;
	dura_record *before = NULL, *after = NULL;
	int rc = dura_store_get_run(r->ctx->store, run_id, &before);
	if (rc)
		return rc;
	if (strcmp(action, "pause") == 0)
		rc = dura_run_pause(eng, run_id);
	else if (strcmp(action, "resume") == 0)
		rc = dura_run_resume(eng, run_id);
	else
		rc = dura_run_cancel(eng, run_id);
	if (rc == 0)
		rc = dura_store_get_run(r->ctx->store, run_id, &after);
	if (rc == 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: %s -> %s (version %" PRId64 ")", action,
		         dura_run_state_name(before->run_state), dura_run_state_name(after->run_state), after->version);
		result(r, o, run_id, "Done", msg, NULL);
	}
	dura_record_free(before);
	dura_record_free(after);
	return rc;
}

static int fork_run(serve_req *r, serve_resp *o, const char *run_id)
{
	const char *cp = serve_param_opt(&r->form, "checkpoint");
	const char *st = serve_param_opt(&r->form, "step");
	int64_t step = -1;
	if (cp && st) {
		page_error(r, o, 400, "Fork from a step or from a checkpoint, not both.");
		return 0;
	}
	if (st) {
		char *end;
		long long v = strtoll(st, &end, 10);
		if (*end || v < 0) {
			page_error(r, o, 400, "The step must be a number from 0.");
			return 0;
		}
		step = v;
	}
	if (!cp && step < 0) {
		dura_record *rec = NULL;
		int rc = dura_store_get_run(r->ctx->store, run_id, &rec);
		if (rc)
			return rc;
		step = rec->step_no - 1;
		dura_record_free(rec);
		if (step < 0) {
			page_error(r, o, 409, "The run has no committed step to fork from.");
			return 0;
		}
	}
	char id[DURA_UUID_LEN + 1];
	int rc = dura_run_fork(r->ctx->engine, cp ? NULL : run_id, cp, cp ? 0 : step, id);
	if (rc)
		return rc;
	char msg[400];
	if (cp)
		snprintf(msg, sizeof(msg), "forked from checkpoint %.255s: new run %s", cp, id);
	else
		snprintf(msg, sizeof(msg), "forked from step %" PRId64 ": new run %s", step, id);
	result(r, o, run_id, "Forked", msg, id);
	return 0;
}

static int signal_run(serve_req *r, serve_resp *o, const char *run_id)
{
	const char *name = serve_param_opt(&r->form, "name");
	const char *payload = serve_param_opt(&r->form, "payload");
	if (!name) {
		page_error(r, o, 400, "A signal needs a name.");
		return 0;
	}
	char sid[DURA_UUID_LEN + 1];
	int rc = dura_store_signal_send(r->ctx->store, run_id, name, payload ? payload : "null", sid);
	if (rc)
		return rc;
	char msg[400];
	snprintf(msg, sizeof(msg), "signal %.255s sent: %s", name, sid);
	result(r, o, run_id, "Signal sent", msg, NULL);
	return 0;
}

void action_run(serve_req *r, serve_resp *o, const char *run_id, const char *action)
{
	int rc;
	if (strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0 || strcmp(action, "cancel") == 0)
		rc = transition(r, o, run_id, action);
	else if (strcmp(action, "fork") == 0)
		rc = fork_run(r, o, run_id);
	else if (strcmp(action, "signal") == 0)
		rc = signal_run(r, o, run_id);
	else {
		page_error(r, o, 404, "There is no such action.");
		return;
	}
	if (rc)
		page_dura_error(r, o, rc, action);
}
