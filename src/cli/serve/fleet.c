/*
 * fleet.c - the pages about everything but single runs: the worker
 * registry (alive or dead, runs held, last heartbeat), the step cache
 * (its figures and a paginated list of entries, filtered by a key
 * substring), and the schedules. A store that keeps no registry or no
 * schedules says so instead of a table.
 */
#include "serve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void unsupported(sbuf *b, int rc, const char *what)
{
	if (rc == DURA_ENOTSUP) {
		sb_printf(b, "<p class=\"mute\">This store keeps no %s.</p>", what);
	} else {
		sb_puts(b, "<p class=\"err\">");
		sb_html(b, dura_error_last() ? dura_error_last()->message : dura_strerror(rc));
		sb_puts(b, "</p>");
	}
}

void page_workers(serve_req *r, serve_resp *o)
{
	page_begin(r, o, "Workers", "workers");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>Workers</h1>");
	dura_worker_list l = {0};
	int rc = dura_store_list_workers(r->ctx->store, &l);
	if (rc) {
		unsupported(b, rc, "worker registry");
		page_end(r, o);
		return;
	}
	size_t live = 0;
	for (size_t i = 0; i < l.count; i++)
		live += !l.items[i].dead;
	sb_printf(b, "<p>%zu live, %zu dead (no heartbeat within their lease).</p>", live, l.count - live);
	sb_puts(b, "<table id=\"workers\"><thead><tr><th>worker</th><th>name</th><th>host</th><th>pid</th><th>alive</th>"
	           "<th>threads</th><th>runs held</th><th>last heartbeat</th><th>started</th><th>serves</th></tr></thead><tbody>");
	for (size_t i = 0; i < l.count; i++) {
		const dura_worker_info *w = &l.items[i];
		sb_printf(b, "<tr class=\"%s\"><td class=\"mono\">", w->dead ? "dead" : "live");
		sb_html(b, w->id);
		sb_puts(b, "</td><td>");
		sb_html(b, w->name);
		sb_puts(b, "</td><td>");
		sb_html(b, w->host);
		sb_printf(b, "</td><td class=\"num\">%" PRId64 "</td><td>%s</td><td class=\"num\">%d</td>"
		             "<td class=\"num\">%" PRId64 "</td><td>",
		          w->pid, w->dead ? "<span class=\"st st-failed\">dead</span>" : "<span class=\"st st-completed\">alive</span>",
		          w->threads, w->held);
		sb_time(b, w->heartbeat_at);
		sb_puts(b, " <span class=\"mute\">(");
		sb_duration(b, l.now - w->heartbeat_at);
		sb_puts(b, " ago)</span></td><td>");
		sb_time(b, w->started_at);
		sb_puts(b, "</td><td class=\"mono\">");
		sb_html_cut(b, w->workflows, 300);
		sb_puts(b, "</td></tr>");
	}
	sb_puts(b, "</tbody></table>");
	dura_worker_list_free(&l);
	page_end(r, o);
}

void page_cache(serve_req *r, serve_resp *o)
{
	const char *match = serve_param_opt(&r->query, "key");
	const char *cursor = serve_param_opt(&r->query, "cursor");
	page_begin(r, o, "Cache", "cache");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>Step cache</h1>");
	dura_cache_stats cs;
	int rc = dura_store_cache_stats(r->ctx->store, &cs);
	if (rc) {
		unsupported(b, rc, "step cache");
		page_end(r, o);
		return;
	}
	sb_printf(b, "<dl class=\"kv\" id=\"cache-stats\"><dt>entries</dt><dd>%" PRId64 "</dd><dt>expired</dt><dd>%" PRId64
	             "</dd><dt>bytes</dt><dd>%" PRId64 "</dd></dl>",
	          cs.entries, cs.expired, cs.bytes);
	sb_puts(b, "<form class=\"filters\" method=\"get\" action=\"/cache\"><label>key contains<input name=\"key\" value=\"");
	sb_html(b, match);
	sb_puts(b, "\"></label><button type=\"submit\">filter</button></form>");
	/* a page is 50 matching entries, from up to 20 store pages of 500 */
	char *next = cursor ? strdup(cursor) : NULL;
	size_t shown = 0;
	int64_t now = dura_now_ms();
	sb_puts(b, "<table id=\"cache\"><thead><tr><th>key</th><th>bytes</th><th>created</th><th>expires</th><th>error</th>"
	           "<th>metadata</th></tr></thead><tbody>");
	for (int pages = 0; pages < 20 && shown < 50; pages++) {
		dura_cache_list l = {0};
		if ((rc = dura_store_cache_list(r->ctx->store, next, 500, &l)) != 0)
			break;
		free(next);
		next = NULL;
		size_t i = 0;
		for (; i < l.count && shown < 50; i++) {
			const dura_cache_entry *e = &l.items[i];
			if (match && !strstr(e->key, match))
				continue;
			shown++;
			sb_puts(b, "<tr><td class=\"mono\">");
			sb_html_cut(b, e->key, 160);
			sb_printf(b, "</td><td class=\"num\">%zu</td><td>", e->value_len);
			sb_time(b, e->created_at);
			sb_puts(b, "</td><td>");
			if (e->expires_at == 0)
				sb_puts(b, "never");
			else
				sb_time(b, e->expires_at);
			if (e->expires_at && e->expires_at <= now)
				sb_puts(b, " <span class=\"mute\">(expired)</span>");
			sb_puts(b, "</td><td class=\"err\">");
			sb_html_cut(b, e->error, 200);
			sb_puts(b, "</td><td class=\"mono\">");
			sb_html_cut(b, e->metadata, 200);
			sb_puts(b, "</td></tr>");
		}
		/* stopped inside the page: go on after the last entry shown */
		if (i < l.count)
			next = strdup(l.items[i - 1].key);
		else if (l.next_cursor)
			next = strdup(l.next_cursor);
		dura_cache_list_free(&l);
		if (!next)
			break;
	}
	sb_puts(b, "</tbody></table>");
	if (rc)
		unsupported(b, rc, "step cache");
	if (next) {
		sb_puts(b, "<p class=\"pager\"><a id=\"next\" href=\"/cache?");
		if (match) {
			sb_puts(b, "key=");
			sb_url(b, match);
			sb_puts(b, "&amp;");
		}
		sb_puts(b, "cursor=");
		sb_url(b, next);
		sb_puts(b, "\">next page &rarr;</a></p>");
	}
	free(next);
	page_end(r, o);
}

void page_schedules(serve_req *r, serve_resp *o)
{
	page_begin(r, o, "Schedules", "schedules");
	sbuf *b = &o->body;
	sb_puts(b, "<h1>Schedules</h1>");
	dura_schedules l = {0};
	int rc = dura_store_schedule_list(r->ctx->store, &l);
	if (rc) {
		unsupported(b, rc, "schedules");
		page_end(r, o);
		return;
	}
	if (l.count == 0)
		sb_puts(b, "<p class=\"mute\">No schedules.</p>");
	else {
		sb_puts(b, "<table id=\"schedules\"><thead><tr><th>name</th><th>cron</th><th>zone</th><th>workflow</th>"
		           "<th>next tick</th><th>catch up</th><th>state</th></tr></thead><tbody>");
		for (size_t i = 0; i < l.count; i++) {
			const dura_schedule *s = &l.items[i];
			sb_puts(b, "<tr><td>");
			sb_html(b, s->name);
			sb_puts(b, "</td><td class=\"mono\">");
			sb_html(b, s->cron);
			sb_puts(b, "</td><td>");
			sb_html(b, s->zone);
			sb_puts(b, "</td><td><a href=\"/?workflow=");
			sb_url(b, s->workflow_name);
			sb_puts(b, "\">");
			sb_html(b, s->workflow_name);
			sb_puts(b, "</a></td><td>");
			sb_time(b, s->next_tick);
			sb_printf(b, "</td><td class=\"num\">%d</td><td class=\"mono\">", s->catch_up);
			sb_html_cut(b, s->state, 200);
			sb_puts(b, "</td></tr>");
		}
		sb_puts(b, "</tbody></table>");
	}
	dura_schedules_free(&l);
	page_end(r, o);
}
