/*
 * run.c - one run's page: the record, the actions, the step timeline
 * (timeline.c), each step's state with what it changed (diff.c), the
 * failed attempts, the checkpoints, the signals, the parent and the
 * children, and the run's outbox events.
 *
 * Steps come a page at a time (?from=N, STEP_PAGE steps); the timeline
 * draws the steps of the page. The outbox has no index by run, so the
 * run's events are found by scanning it in id order, at most EVENT_SCAN
 * events: the page says when the scan stopped short. A state is shown up
 * to STATE_SHOWN bytes, so that no page grows with the states it shows.
 */
#include "serve.h"

#include <dura/store.h> /* dura_malloc: a list dura_event_list_free frees */

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define STEP_PAGE 200
#define EVENT_SCAN 10000
#define EVENT_KEEP 500
#define STATE_SHOWN 65536   /* bytes of a state a page shows (each step's, the run's, a checkpoint's) */
#define STATE_DIFFED 262144 /* states over this are not parsed for the diff */

int serve_run_events(dura_store *s, const char *run_id, dura_event_list *out, int *complete)
{
	memset(out, 0, sizeof(*out));
	*complete = 0;
	char *after = strdup("");
	size_t scanned = 0, cap = 0;
	int rc = 0;
	while (after && scanned < EVENT_SCAN) {
		dura_event_list l = {0};
		if ((rc = dura_store_outbox_list(s, after, 1000, &l)) != 0)
			break;
		scanned += l.count;
		free(after);
		after = l.count == 1000 && l.items[999].id ? strdup(l.items[999].id) : NULL;
		if (!after)
			*complete = 1;
		for (size_t i = 0; i < l.count; i++) {
			if (!l.items[i].run_id || strcmp(l.items[i].run_id, run_id) != 0 || out->count >= EVENT_KEEP)
				continue;
			if (out->count == cap) {
				/* dura_malloc's, as dura_event_list_free frees it */
				size_t ncap = cap ? cap * 2 : 32;
				dura_event *n = dura_malloc(ncap * sizeof(*n));
				if (!n)
					break;
				if (out->count)
					memcpy(n, out->items, out->count * sizeof(*n));
				dura_free(out->items);
				out->items = n;
				cap = ncap;
			}
			/* moved, not copied: the page's list forgets them below */
			out->items[out->count++] = l.items[i];
			memset(&l.items[i], 0, sizeof(l.items[i]));
		}
		/* the moved entries are zeroed: freeing the list frees the rest */
		dura_event_list_free(&l);
	}
	free(after);
	return rc;
}

static void kv(sbuf *b, const char *k, const char *v)
{
	sb_printf(b, "<dt>%s</dt><dd>", k);
	sb_html(b, v && *v ? v : "-");
	sb_puts(b, "</dd>");
}

static void kv_time(sbuf *b, const char *k, int64_t ms)
{
	sb_printf(b, "<dt>%s</dt><dd>", k);
	sb_time(b, ms);
	sb_puts(b, "</dd>");
}

static void record(sbuf *b, const dura_record *x)
{
	sb_puts(b, "<dl class=\"kv\" id=\"record\">");
	kv(b, "run id", x->run_id);
	kv(b, "workflow", x->workflow_name);
	kv(b, "version", x->workflow_version);
	sb_printf(b, "<dt>run state</dt><dd><span class=\"st st-%s\" id=\"run-state\">%s</span></dd>",
	          dura_run_state_name(x->run_state), dura_run_state_name(x->run_state));
	kv(b, "node", x->status);
	kv(b, "foreign id", x->foreign_id);
	sb_printf(b, "<dt>steps</dt><dd>%" PRId64 "</dd><dt>version (CAS)</dt><dd>%" PRId64 "</dd>"
	             "<dt>attempt</dt><dd>%d</dd><dt>priority</dt><dd>%d</dd>",
	          x->step_no, x->version, x->attempt, x->priority);
	kv(b, "concurrency key", x->concurrency_key);
	kv(b, "waits for", x->wait);
	kv(b, "lease owner", x->lease_owner);
	if (x->lease_owner && *x->lease_owner)
		kv_time(b, "lease expires", x->lease_expires_at);
	kv_time(b, "next run at", x->next_run_at);
	kv_time(b, "created", x->created_at);
	kv_time(b, "updated", x->updated_at);
	if (x->error && *x->error) {
		sb_puts(b, "<dt>error</dt><dd class=\"err\" id=\"run-error\">");
		sb_html(b, x->error);
		sb_puts(b, "</dd>");
	}
	if (x->meta && *x->meta) {
		sb_puts(b, "<dt>meta</dt><dd class=\"mono\">");
		sb_html(b, x->meta);
		sb_puts(b, "</dd>");
	}
	sb_puts(b, "</dl>\n");
}

static void action_form(serve_req *r, serve_resp *o, const char *run_id, const char *action, const char *extra,
                        const char *label)
{
	sbuf *b = &o->body;
	sb_puts(b, "<form method=\"post\" action=\"/runs/");
	sb_url(b, run_id);
	sb_printf(b, "/%s\" id=\"action-%s\">", action, action);
	page_csrf_field(r, o);
	if (extra)
		sb_puts(b, extra);
	sb_printf(b, "<button type=\"submit\">%s</button></form>", label);
}

static void actions(serve_req *r, serve_resp *o, const dura_record *x)
{
	sbuf *b = &o->body;
	sb_puts(b, "<h2>Actions</h2>");
	if (!r->signed_in)
		sb_puts(b, "<p class=\"mute\">Actions need the token: <a href=\"/login\">sign in</a>.</p>");
	sb_puts(b, "<div class=\"actions\">");
	int st = x->run_state;
	if (dura_run_state_transition_ok(st, DURA_RUN_PAUSED))
		action_form(r, o, x->run_id, "pause", NULL, "pause");
	if (dura_run_state_transition_ok(st, DURA_RUN_RUNNING))
		action_form(r, o, x->run_id, "resume", NULL, "resume");
	if (dura_run_state_transition_ok(st, DURA_RUN_CANCELLED))
		action_form(r, o, x->run_id, "cancel", NULL, "cancel");
	if (x->step_no > 0)
		action_form(r, o, x->run_id, "fork",
		            "<label>from step <input name=\"step\" size=\"5\" placeholder=\"last\"></label>"
		            "<label>or checkpoint <input name=\"checkpoint\" size=\"12\"></label>",
		            "fork");
	if (dura_run_state_active(st))
		action_form(r, o, x->run_id, "signal",
		            "<label>signal <input name=\"name\" size=\"12\" required></label>"
		            "<label>payload <input name=\"payload\" size=\"24\" placeholder=\"null\"></label>",
		            "send");
	sb_puts(b, "</div>\n");
}

/* The failed attempts the run's events tell of (their data has the error
 * since the events carry it; an older event shows none). */
static size_t failures(const dura_event_list *ev, timeline_fail *out, json_t **keep)
{
	size_t n = 0;
	for (size_t i = 0; i < ev->count; i++) {
		const dura_event *e = &ev->items[i];
		if (!e->type || !e->data)
			continue;
		if (strcmp(e->type, "attempt_failed") != 0 && strcmp(e->type, "run_failed") != 0 &&
		    !(strcmp(e->type, "run_paused") == 0 && strstr(e->data, "\"error\"")))
			continue;
		json_t *d = json_loads(e->data, 0, NULL);
		out[n].at = e->created_at;
		out[n].node = d ? json_string_value(json_object_get(d, "status")) : NULL;
		out[n].error = d ? json_string_value(json_object_get(d, "error")) : NULL;
		out[n].attempt = d ? (int)json_integer_value(json_object_get(d, "attempt")) : 0;
		keep[n] = d;
		n++;
	}
	return n;
}

static void steps_section(serve_req *r, serve_resp *o, const dura_record *x, const dura_event_list *ev)
{
	sbuf *b = &o->body;
	int64_t from = 0;
	const char *fs = serve_param_opt(&r->query, "from");
	if (fs) {
		char *end;
		long long v = strtoll(fs, &end, 10);
		if (*end || v < 0)
			v = 0;
		from = v;
	}
	dura_step_list sl = {0};
	int rc = dura_store_history(r->ctx->store, x->run_id, from, STEP_PAGE, &sl);
	if (rc) {
		sb_puts(b, "<p class=\"err\">steps: ");
		sb_html(b, dura_error_last() ? dura_error_last()->message : "");
		sb_puts(b, "</p>");
		return;
	}
	timeline_fail *fails = calloc(ev->count + 1, sizeof(*fails));
	json_t **keep = calloc(ev->count + 1, sizeof(*keep));
	size_t nf = fails && keep ? failures(ev, fails, keep) : 0;

	sb_printf(b, "<h2>Timeline</h2><p class=\"mute\">One bar per committed step (steps %" PRId64 " to %" PRId64
	             " of %" PRId64 "), from the commit before it to its own; a red mark per failed attempt.</p>",
	          sl.count ? sl.items[0].step : from, sl.count ? sl.items[sl.count - 1].step : from, x->step_no);
	timeline_svg(b, x, sl.items, sl.count, fails, nf);

	if (nf) {
		sb_puts(b, "<h2>Failed attempts</h2><table id=\"failures\"><thead><tr><th>at</th><th>node</th><th>attempt</th>"
		           "<th>error</th></tr></thead><tbody>");
		for (size_t i = 0; i < nf; i++) {
			sb_puts(b, "<tr><td>");
			sb_time(b, fails[i].at);
			sb_puts(b, "</td><td>");
			sb_html(b, fails[i].node);
			sb_printf(b, "</td><td class=\"num\">%d</td><td class=\"err\">", fails[i].attempt);
			sb_html(b, fails[i].error ? fails[i].error : "(the event does not say)");
			sb_puts(b, "</td></tr>");
		}
		sb_puts(b, "</tbody></table>\n");
	}

	/* each step's state and what it changed from the one before */
	dura_step *prev = NULL;
	if (from > 0 && sl.count)
		dura_store_get_step(r->ctx->store, x->run_id, sl.items[0].step - 1, &prev);
	sb_puts(b, "<h2>States</h2><table id=\"steps\"><thead><tr><th>step</th><th>node</th><th>committed</th>"
	           "<th>took</th><th>changed</th><th>state after</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < sl.count; i++) {
		const dura_step *s = &sl.items[i];
		const char *before = i ? sl.items[i - 1].state : prev ? prev->state : NULL;
		int64_t t0 = i ? sl.items[i - 1].created_at : prev ? prev->created_at : x->created_at;
		sb_printf(b, "<tr class=\"step\" id=\"step-%" PRId64 "\"><td class=\"num\">%" PRId64 "</td><td>", s->step,
		          s->step);
		sb_html(b, s->node_id);
		sb_puts(b, "</td><td>");
		sb_time(b, s->created_at);
		sb_puts(b, "</td><td class=\"num\">");
		sb_duration(b, s->created_at - t0);
		sb_puts(b, "</td><td>");
		if ((before && strlen(before) > STATE_DIFFED) || (s->state && strlen(s->state) > STATE_DIFFED))
			sb_puts(b, "<span class=\"mute\">(states too large to compare here)</span>");
		else
			diff_html(b, before, s->state);
		sb_puts(b, "</td><td><details><summary>state</summary><pre>");
		sb_json_pretty(b, s->state, STATE_SHOWN);
		sb_puts(b, "</pre></details></td></tr>\n");
	}
	sb_puts(b, "</tbody></table>");
	if (sl.count == STEP_PAGE && from + STEP_PAGE < x->step_no) {
		sb_puts(b, "<p class=\"pager\"><a href=\"/runs/");
		sb_url(b, x->run_id);
		sb_printf(b, "?from=%" PRId64 "\">later steps &rarr;</a></p>", from + STEP_PAGE);
	}
	dura_step_free(prev);
	for (size_t i = 0; i < nf; i++)
		json_decref(keep[i]);
	free(keep);
	free(fails);
	dura_step_list_free(&sl);
}

static void checkpoints(serve_req *r, serve_resp *o, const dura_record *x)
{
	sbuf *b = &o->body;
	dura_checkpoint_list cl = {0};
	if (dura_store_checkpoint_list(r->ctx->store, x->run_id, &cl) != 0 || cl.count == 0) {
		dura_checkpoint_list_free(&cl);
		return;
	}
	sb_puts(b, "<h2>Checkpoints</h2><table id=\"checkpoints\"><thead><tr><th>checkpoint</th><th>step</th><th>saved</th>"
	           "<th>state</th></tr></thead><tbody>");
	for (size_t i = 0; i < cl.count; i++) {
		sb_puts(b, "<tr><td class=\"mono\">");
		sb_html(b, cl.items[i].checkpoint_id);
		sb_printf(b, "</td><td class=\"num\">%" PRId64 "</td><td>", cl.items[i].step);
		sb_time(b, cl.items[i].updated_at);
		sb_puts(b, "</td><td><details><summary>state</summary><pre>");
		sb_json_pretty(b, cl.items[i].state, STATE_SHOWN);
		sb_puts(b, "</pre></details></td></tr>");
	}
	sb_puts(b, "</tbody></table>\n");
	dura_checkpoint_list_free(&cl);
}

static void signals(serve_req *r, serve_resp *o, const dura_record *x)
{
	sbuf *b = &o->body;
	dura_signal_list gl = {0};
	if (dura_store_signal_list(r->ctx->store, x->run_id, &gl) != 0 || gl.count == 0) {
		dura_signal_list_free(&gl);
		return;
	}
	sb_puts(b, "<h2>Signals waiting to be received</h2><table id=\"signals\"><thead><tr><th>signal</th><th>name</th>"
	           "<th>sent</th><th>payload</th></tr></thead><tbody>");
	for (size_t i = 0; i < gl.count; i++) {
		sb_puts(b, "<tr><td class=\"mono\">");
		sb_html(b, gl.items[i].signal_id);
		sb_puts(b, "</td><td>");
		sb_html(b, gl.items[i].name);
		sb_puts(b, "</td><td>");
		sb_time(b, gl.items[i].created_at);
		sb_puts(b, "</td><td class=\"mono\">");
		sb_html_cut(b, gl.items[i].payload, 400);
		sb_puts(b, "</td></tr>");
	}
	sb_puts(b, "</tbody></table>\n");
	dura_signal_list_free(&gl);
}

static void family(serve_req *r, serve_resp *o, const dura_record *x)
{
	sbuf *b = &o->body;
	if (x->parent_id && *x->parent_id) {
		sb_puts(b, "<h2>Parent</h2><p><a id=\"parent\" class=\"mono\" href=\"/runs/");
		sb_url(b, x->parent_id);
		sb_puts(b, "\">");
		sb_html(b, x->parent_id);
		sb_puts(b, "</a></p>");
	}
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.parent_id = x->run_id;
	f.limit = 100;
	dura_record_list l = {0};
	if (dura_store_list_runs(r->ctx->store, &f, &l) != 0 || l.count == 0) {
		dura_record_list_free(&l);
		return;
	}
	sb_puts(b, "<h2>Children</h2><table id=\"children\"><thead><tr><th>run</th><th>workflow</th><th>state</th>"
	           "<th>node</th><th>steps</th></tr></thead><tbody>");
	for (size_t i = 0; i < l.count; i++) {
		const dura_record *c = &l.items[i];
		sb_puts(b, "<tr><td class=\"mono\"><a href=\"/runs/");
		sb_url(b, c->run_id);
		sb_puts(b, "\">");
		sb_html(b, c->run_id);
		sb_puts(b, "</a></td><td>");
		sb_html(b, c->workflow_name);
		sb_printf(b, "</td><td><span class=\"st st-%s\">%s</span></td><td>", dura_run_state_name(c->run_state),
		          dura_run_state_name(c->run_state));
		sb_html(b, c->status);
		sb_printf(b, "</td><td class=\"num\">%" PRId64 "</td></tr>", c->step_no);
	}
	sb_puts(b, "</tbody></table>");
	if (l.next_cursor)
		sb_puts(b, "<p class=\"mute\">(the first 100 children)</p>");
	sb_puts(b, "\n");
	dura_record_list_free(&l);
}

static void events(sbuf *b, const dura_event_list *ev, int complete)
{
	sb_printf(b, "<h2>Outbox events</h2>");
	if (!complete)
		sb_printf(b, "<p class=\"mute\">The outbox holds more than %d events: these are the run's among the "
		             "oldest %d.</p>", EVENT_SCAN, EVENT_SCAN);
	if (ev->count == 0) {
		sb_puts(b, "<p class=\"mute\">None in the outbox (delivered and pruned, or never written).</p>");
		return;
	}
	sb_puts(b, "<table id=\"events\"><thead><tr><th>event</th><th>type</th><th>at</th><th>data</th></tr></thead><tbody>");
	for (size_t i = 0; i < ev->count; i++) {
		sb_puts(b, "<tr><td class=\"mono\">");
		sb_html(b, ev->items[i].id);
		sb_puts(b, "</td><td>");
		sb_html(b, ev->items[i].type);
		sb_puts(b, "</td><td>");
		sb_time(b, ev->items[i].created_at);
		sb_puts(b, "</td><td class=\"mono\">");
		sb_html_cut(b, ev->items[i].data, 600);
		sb_puts(b, "</td></tr>");
	}
	sb_puts(b, "</tbody></table>\n");
}

void page_run(serve_req *r, serve_resp *o, const char *run_id)
{
	dura_record *x = NULL;
	int rc = dura_store_get_run(r->ctx->store, run_id, &x);
	if (rc) {
		page_dura_error(r, o, rc, "reading the run");
		return;
	}
	dura_event_list ev = {0};
	int complete = 1;
	int evrc = serve_run_events(r->ctx->store, x->run_id, &ev, &complete);
	page_begin(r, o, x->run_id, "runs");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>Run <span class=\"mono\">");
	sb_html(b, x->run_id);
	sb_puts(b, "</span></h1>");
	record(b, x);
	actions(r, o, x);
	steps_section(r, o, x, &ev);
	sb_puts(b, "<h2>State now</h2><pre id=\"state\">");
	sb_json_pretty(b, x->state, STATE_SHOWN);
	sb_puts(b, "</pre>");
	checkpoints(r, o, x);
	signals(r, o, x);
	family(r, o, x);
	if (evrc) {
		sb_puts(b, "<h2>Outbox events</h2><p class=\"err\">reading the outbox: ");
		sb_html(b, dura_error_last() ? dura_error_last()->message : dura_strerror(evrc));
		sb_puts(b, "</p>");
	} else {
		events(b, &ev, complete);
	}
	page_end(r, o);
	dura_event_list_free(&ev);
	dura_record_free(x);
}
