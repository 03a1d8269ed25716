/*
 * runs.c - the runs list: counts per run state at the top, the filters
 * (workflow, run state, node, foreign id, version, waiting, due), and one
 * page of runs newest first, with keyset pagination (the store's cursor,
 * carried in the "next" link with the filters).
 */
#include "serve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const filter_keys[] = {"workflow", "state", "node", "foreign_id", "version", "waiting", "due", NULL};

/* The filters as a query string (each key=value&), for links. */
static void filter_query(sbuf *b, const serve_params *q, const char *skip)
{
	for (size_t i = 0; filter_keys[i]; i++) {
		const char *v = serve_param_opt(q, filter_keys[i]);
		if (!v || (skip && strcmp(skip, filter_keys[i]) == 0))
			continue;
		sb_printf(b, "%s=", filter_keys[i]);
		sb_url(b, v);
		sb_puts(b, "&amp;");
	}
}

static void state_badge(sbuf *b, int state)
{
	const char *n = dura_run_state_name(state);
	sb_printf(b, "<span class=\"st st-%s\">%s</span>", n, n);
}

static void counts(serve_req *r, serve_resp *o, const char *workflow)
{
	dura_run_count_list l = {0};
	if (dura_store_run_counts(r->ctx->store, workflow, &l) != 0) {
		sb_puts(&o->body, "<p class=\"err\">counts: ");
		sb_html(&o->body, dura_error_last() ? dura_error_last()->message : "");
		sb_puts(&o->body, "</p>");
		return;
	}
	int64_t per[16] = {0}, total = 0;
	for (size_t i = 0; i < l.count; i++) {
		int s = l.items[i].run_state;
		if (s >= 0 && s < 16)
			per[s] += l.items[i].count;
		total += l.items[i].count;
	}
	dura_run_count_list_free(&l);
	sb_puts(&o->body, "<div class=\"counts\" id=\"counts\"><a href=\"/?");
	filter_query(&o->body, &r->query, "state");
	sb_printf(&o->body, "\">all<b>%" PRId64 "</b></a>", total);
	for (int s = 0; s <= DURA_RUN_STATE_MAX; s++) {
		if (!per[s])
			continue;
		const char *n = dura_run_state_name(s);
		sb_puts(&o->body, "<a href=\"/?");
		filter_query(&o->body, &r->query, "state");
		sb_printf(&o->body, "state=%s\" data-state=\"%s\">", n, n);
		state_badge(&o->body, s);
		sb_printf(&o->body, "<b>%" PRId64 "</b></a>", per[s]);
	}
	sb_puts(&o->body, "</div>\n");
}

static void input(sbuf *b, const serve_params *q, const char *name, const char *label)
{
	sb_printf(b, "<label>%s<input name=\"%s\" value=\"", label, name);
	sb_html(b, serve_param_get(q, name));
	sb_puts(b, "\"></label>");
}

static void check(sbuf *b, const serve_params *q, const char *name, const char *label)
{
	sb_printf(b, "<label>%s<input type=\"checkbox\" name=\"%s\" value=\"1\"%s></label>", label, name,
	          serve_param_opt(q, name) ? " checked" : "");
}

static void filters(serve_req *r, serve_resp *o)
{
	sbuf *b = &o->body;
	sb_puts(b, "<form class=\"filters\" method=\"get\" action=\"/\">");
	input(b, &r->query, "workflow", "workflow");
	sb_puts(b, "<label>run state<select name=\"state\"><option value=\"\">any</option>");
	const char *cur = serve_param_get(&r->query, "state");
	for (int s = 1; s <= DURA_RUN_STATE_MAX; s++) {
		const char *n = dura_run_state_name(s);
		int back = 0;
		if (!n || !*n || strcmp(n, "unknown") == 0 || dura_run_state_parse(&back, n) != 0 || back != s)
			continue;
		sb_printf(b, "<option%s>%s</option>", cur && strcmp(cur, n) == 0 ? " selected" : "", n);
	}
	sb_puts(b, "</select></label>");
	input(b, &r->query, "node", "node");
	input(b, &r->query, "foreign_id", "foreign id");
	input(b, &r->query, "version", "version");
	check(b, &r->query, "waiting", "waiting");
	check(b, &r->query, "due", "due");
	sb_puts(b, "<button type=\"submit\">filter</button> <a href=\"/\">clear</a></form>\n");
}

void page_runs(serve_req *r, serve_resp *o)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	const serve_params *q = &r->query;
	f.workflow_name = serve_param_opt(q, "workflow");
	f.status = serve_param_opt(q, "node");
	f.foreign_id = serve_param_opt(q, "foreign_id");
	f.workflow_version = serve_param_opt(q, "version");
	f.waiting = serve_param_opt(q, "waiting") != NULL;
	f.due = serve_param_opt(q, "due") != NULL;
	f.cursor = serve_param_opt(q, "cursor");
	const char *st = serve_param_opt(q, "state");
	if (st && dura_run_state_parse(&f.run_state, st) != 0) {
		page_error(r, o, 400, "unknown run state \"%s\"", st);
		return;
	}
	const char *lim = serve_param_opt(q, "limit");
	f.limit = 50;
	if (lim) {
		char *end;
		long v = strtol(lim, &end, 10);
		if (*end || v < 1 || v > 500) {
			page_error(r, o, 400, "limit must be from 1 to 500");
			return;
		}
		f.limit = (size_t)v;
	}
	dura_record_list l = {0};
	int rc = dura_store_list_runs(r->ctx->store, &f, &l);
	if (rc) {
		page_dura_error(r, o, rc, "listing runs");
		return;
	}
	page_begin(r, o, "Runs", "runs");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>Runs</h1>");
	counts(r, o, f.workflow_name);
	filters(r, o);
	sb_puts(b, "<table id=\"runs\"><thead><tr><th>run</th><th>workflow</th><th>version</th><th>state</th><th>node</th>"
	           "<th>foreign id</th><th>steps</th><th>attempt</th><th>waits for</th><th>updated</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < l.count; i++) {
		const dura_record *x = &l.items[i];
		sb_puts(b, "<tr class=\"run\" data-run=\"");
		sb_html(b, x->run_id);
		sb_puts(b, "\"><td class=\"mono\"><a href=\"/runs/");
		sb_url(b, x->run_id);
		sb_puts(b, "\">");
		sb_html(b, x->run_id);
		sb_puts(b, "</a></td><td>");
		sb_html(b, x->workflow_name);
		sb_puts(b, "</td><td class=\"mono\">");
		sb_html(b, x->workflow_version);
		sb_puts(b, "</td><td>");
		state_badge(b, x->run_state);
		sb_puts(b, "</td><td>");
		sb_html(b, x->status);
		sb_puts(b, "</td><td class=\"foreign\">");
		sb_html_cut(b, x->foreign_id, 80);
		sb_printf(b, "</td><td class=\"num\">%" PRId64 "</td><td class=\"num\">%d</td><td>", x->step_no, x->attempt);
		sb_html(b, x->wait);
		sb_puts(b, "</td><td>");
		sb_time(b, x->updated_at);
		sb_puts(b, "</td></tr>\n");
	}
	sb_puts(b, "</tbody></table>\n");
	if (l.count == 0)
		sb_puts(b, "<p class=\"mute\">No runs match.</p>");
	if (l.next_cursor) {
		sb_puts(b, "<p class=\"pager\"><a id=\"next\" href=\"/?");
		filter_query(b, q, NULL);
		if (lim)
			sb_printf(b, "limit=%zu&amp;", f.limit);
		sb_puts(b, "cursor=");
		sb_url(b, l.next_cursor);
		sb_puts(b, "\">next page &rarr;</a></p>");
	}
	dura_record_list_free(&l);
	page_end(r, o);
}
