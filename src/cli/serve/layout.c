/*
 * layout.c - what every page has around its content (the head, the
 * navigation, the store it reads), error pages, the sign-in page, the
 * /metrics text, and the stylesheet, which is built into the binary like
 * everything else the pages use: the dashboard needs no network.
 */
#include "serve.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char serve_stylesheet[] =
    ":root{--fg:#1d2330;--mute:#667085;--line:#d9dee7;--bg:#f7f8fa;--acc:#2957c4;--bad:#c4322b;--ok:#1f8a4c;"
    "--warn:#b7791f}\n"
    "*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "color:var(--fg);background:var(--bg)}\n"
    "header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#1d2330;color:#fff}\n"
    "header a{color:#cfd8ea;text-decoration:none}header a.on{color:#fff;font-weight:600}"
    "header .brand{font-weight:700;color:#fff}header .store{margin-left:auto;color:#9aa6bd;font-size:12px}\n"
    "main{padding:1em 1.2em;max-width:1400px}h1{font-size:20px;margin:.2em 0 .6em}h2{font-size:16px;margin:1.4em 0 .5em}\n"
    "table{border-collapse:collapse;background:#fff;width:100%}th,td{padding:.3em .6em;border-bottom:1px solid "
    "var(--line);text-align:left;vertical-align:top}th{background:#eef1f6;font-weight:600}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}code,pre,.mono{font-family:ui-monospace,Menlo,"
    "Consolas,monospace;font-size:12.5px}pre{background:#fff;border:1px solid var(--line);padding:.6em;"
    "overflow:auto;max-height:30em;white-space:pre-wrap;word-break:break-all}\n"
    "td.mono{white-space:nowrap}a{color:var(--acc)}.mute{color:var(--mute)}.err{color:var(--bad)}\n"
    ".st{display:inline-block;padding:0 .45em;border-radius:3px;font-size:12px;background:#e4e8ef}"
    ".st-running{background:#dbe6ff}.st-completed{background:#d9f2e3}.st-failed{background:#fbdcdc}"
    ".st-paused{background:#fdf0d2}.st-cancelled{background:#e4e4e4}\n"
    ".counts{display:flex;flex-wrap:wrap;gap:.5em;margin:.3em 0 1em}.counts a{background:#fff;border:1px solid "
    "var(--line);padding:.3em .7em;border-radius:4px;text-decoration:none;color:var(--fg)}.counts b{margin-left:.4em}\n"
    "form.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin-bottom:1em}form.filters label{"
    "display:flex;flex-direction:column;font-size:12px;color:var(--mute)}input,select,textarea{font:inherit;"
    "padding:.2em .4em}\n"
    ".actions{display:flex;flex-wrap:wrap;gap:.6em;margin:.6em 0}.actions form{background:#fff;border:1px solid "
    "var(--line);padding:.4em .6em;border-radius:4px;display:flex;gap:.4em;align-items:center}\n"
    ".kv{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1.2em;background:#fff;border:1px solid "
    "var(--line);padding:.6em}.kv dt{color:var(--mute)}.kv dd{margin:0;word-break:break-all}\n"
    "svg.timeline{background:#fff;border:1px solid var(--line);width:100%;height:auto}svg .step{fill:#5b8def}"
    "svg .step.last{fill:#1f8a4c}svg .failed{stroke:var(--bad);stroke-width:2}svg text{font-size:11px;fill:#667085}\n"
    "ul.diff{margin:0;padding-left:1.2em}ul.diff .add{color:var(--ok)}ul.diff .del{color:var(--bad)}"
    "ul.diff .chg{color:var(--warn)}\n"
    ".note{background:#fff;border-left:4px solid var(--acc);padding:.6em 1em;margin:.6em 0}"
    ".note.bad{border-color:var(--bad)}.pager{margin:.8em 0}\n";

void page_begin(serve_req *r, serve_resp *o, const char *title, const char *nav)
{
	static const char *const items[][2] = {
	    {"runs", "/"}, {"workers", "/workers"}, {"cache", "/cache"}, {"schedules", "/schedules"}, {"metrics", "/metrics"},
	};
	if (!o->status)
		o->status = 200;
	sb_puts(&o->body, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	                  "<link rel=\"stylesheet\" href=\"/style.css\">");
	/* for scripts that POST actions: every page read with the token says
	 * the CSRF token */
	if (r->signed_in)
		sb_printf(&o->body, "<meta name=\"csrf-token\" content=\"%s\">", r->ctx->csrf);
	sb_puts(&o->body, "<title>");
	sb_html(&o->body, title);
	sb_puts(&o->body, " - dura</title></head>\n<body><header><a class=\"brand\" href=\"/\">dura</a>");
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
		sb_printf(&o->body, "<a href=\"%s\"%s>%s</a>", items[i][1],
		          nav && strcmp(nav, items[i][0]) == 0 ? " class=\"on\"" : "", items[i][0]);
	if (r->signed_in) {
		sb_puts(&o->body, "<form method=\"post\" action=\"/logout\" style=\"margin:0\">");
		page_csrf_field(r, o);
		sb_puts(&o->body, "<button type=\"submit\">sign out</button></form>");
	} else {
		sb_puts(&o->body, "<a href=\"/login\">sign in</a>");
	}
	sb_puts(&o->body, "<span class=\"store\">");
	sb_html(&o->body, r->ctx->store_url);
	sb_puts(&o->body, "</span></header>\n<main>\n");
}

void page_end(serve_req *r, serve_resp *o)
{
	(void)r;
	sb_puts(&o->body, "\n</main></body></html>\n");
}

void page_csrf_field(serve_req *r, serve_resp *o)
{
	sb_printf(&o->body, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
	          r->signed_in ? r->ctx->csrf : r->ctx->login_csrf);
}

void page_error(serve_req *r, serve_resp *o, int status, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_free(&o->body);
	o->status = status;
	page_begin(r, o, status == 404 ? "Not found" : "Error", NULL);
	sb_printf(&o->body, "<h1>%d</h1><div class=\"note bad\" id=\"error\">", status);
	sb_html(&o->body, msg);
	sb_puts(&o->body, "</div>");
	page_end(r, o);
}

void page_dura_error(serve_req *r, serve_resp *o, int rc, const char *what)
{
	const dura_error *e = dura_error_last();
	int status = rc == DURA_ENOTFOUND ? 404 : rc == DURA_ECONFLICT ? 409 : rc == DURA_EINVAL ? 400 : 500;
	page_error(r, o, status, "%s: %s", what, e && e->message[0] ? e->message : dura_strerror(rc));
}

void page_login(serve_req *r, serve_resp *o)
{
	page_begin(r, o, "Sign in", NULL);
	sb_puts(&o->body, "<h1>Sign in</h1><p class=\"mute\">Actions (pause, resume, cancel, fork, signal) need the "
	                  "token <code>dura serve</code> was started with: the first line of its --token-file, or the "
	                  "one it printed when it started.</p><form method=\"post\" action=\"/login\" class=\"filters\">");
	page_csrf_field(r, o);
	sb_puts(&o->body, "<label>token<input type=\"password\" name=\"token\" size=\"40\" autocomplete=\"off\"></label>"
	                  "<button type=\"submit\">sign in</button></form>");
	page_end(r, o);
}

void page_metrics(serve_req *r, serve_resp *o)
{
	char *text = NULL;
	int rc = dura_metrics_format(r->ctx->store, &text);
	if (rc) {
		o->status = 500;
		o->content_type = "text/plain; charset=utf-8";
		sb_puts(&o->body, "metrics: out of memory\n");
		return;
	}
	o->status = 200;
	o->content_type = "text/plain; version=0.0.4; charset=utf-8";
	sb_puts(&o->body, text);
	dura_free(text);
}
