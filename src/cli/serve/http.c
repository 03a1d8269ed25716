/*
 * http.c - the HTTP side of `dura serve`, on libmicrohttpd: the daemon
 * and its limits, reading a request, the token and CSRF checks, routing,
 * and sending the response.
 *
 * Limits, so that no client can crash or hold the server: a request's
 * header block must fit in the connection's memory (64 KiB; MHD answers
 * 431 or 414 beyond it), a target in SERVE_MAX_QUERY bytes (414), a POST
 * body in 256 KiB (413 when its length says so; a chunked body that grows
 * past it has its connection closed); a connection idle for the timeout
 * (--timeout, default 10 s) is closed, which is what a slowloris client
 * that stalls meets; at most 256 connections at once and 64 from one
 * address, so that slow clients of one address cannot hold them all.
 * On a loopback address, a request whose Host is not a loopback name of
 * our port is refused (421): that is DNS rebinding. A POST from a page of
 * another origin (Origin, Sec-Fetch-Site) is refused (403). A worker pool of threads answers, each
 * request reading the store on its own (the store handle is thread-safe).
 *
 * Reading needs nothing; every POST needs the token - a "dura_token"
 * cookie (set by POST /login) or "Authorization: Bearer TOKEN" - else
 * 401, and the CSRF token as the form's "csrf" field or an X-CSRF-Token
 * header, else 403. Tokens are compared in constant time. Every response
 * says Cache-Control: no-store and carries a Content-Security-Policy that
 * allows no script at all: the pages need none.
 */
#include "serve.h"
#include "serve_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_BODY (256 * 1024)
#define MAX_SEGMENTS 8

/* One request: its target as received (the URI callback's copy), then
 * the body as it arrives. */
typedef struct conn_req {
	char *target;
	sbuf body;
	int too_big; /* its Content-Length is over MAX_BODY */
	int started; /* a POST's first call is done */
} conn_req;

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
	(void)cls;
	(void)con;
	conn_req *q = calloc(1, sizeof(*q));
	if (q)
		q->target = strdup(uri ? uri : "");
	return q;
}

static void done_cb(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)con;
	(void)toe;
	conn_req *q = *con_cls;
	if (q) {
		free(q->target);
		sb_free(&q->body);
		free(q);
	}
	*con_cls = NULL;
}

static int token_eq(const char *given, const char *want)
{
	size_t n = strlen(want);
	return given && strlen(given) == n && n > 0 && CRYPTO_memcmp(given, want, n) == 0;
}

static enum MHD_Result send_resp(struct MHD_Connection *con, serve_resp *o, int head_only)
{
	if (o->body.oom) {
		sb_free(&o->body);
		o->status = 500;
		sb_puts(&o->body, "out of memory\n");
		o->content_type = "text/plain; charset=utf-8";
	}
	(void)head_only; /* MHD sends a HEAD's headers, Content-Length included, without the body */
	size_t len = o->body.len;
	char *data = o->body.data;
	o->body.data = NULL;
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", o->content_type ? o->content_type : "text/html; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
	                        "frame-ancestors 'none'; base-uri 'none'");
	if (o->location)
		MHD_add_response_header(r, "Location", o->location);
	if (o->set_cookie)
		MHD_add_response_header(r, "Set-Cookie", o->set_cookie);
	enum MHD_Result ret = MHD_queue_response(con, (unsigned)o->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void plain(serve_resp *o, int status, const char *msg)
{
	o->status = status;
	o->content_type = "text/plain; charset=utf-8";
	sb_puts(&o->body, msg);
	sb_puts(&o->body, "\n");
}

/* The token from the cookie or the Authorization header, checked. */
static int signed_in(serve_ctx *ctx, struct MHD_Connection *con)
{
	const char *cookie = MHD_lookup_connection_value(con, MHD_COOKIE_KIND, "dura_token");
	if (token_eq(cookie, ctx->token))
		return 1;
	const char *auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth && strncmp(auth, "Bearer ", 7) == 0)
		return token_eq(auth + 7, ctx->token);
	return 0;
}

/*
 * DNS rebinding: a page of another site whose name an attacker points at
 * 127.0.0.1 reaches this server with its own name in Host. On a loopback
 * address only the loopback names of our port are answered; a server
 * bound to another address answers whatever name it is reached by.
 */
static int host_ok(const serve_ctx *ctx, const char *host)
{
	if (!ctx->loopback)
		return 1;
	if (!host)
		return 0;
	char want[96];
	static const char *const names[] = {"127.0.0.1", "localhost", "[::1]", NULL};
	for (size_t i = 0; names[i]; i++) {
		snprintf(want, sizeof(want), "%s:%d", names[i], ctx->port);
		if (strcasecmp(host, want) == 0)
			return 1;
	}
	snprintf(want, sizeof(want), "%s:%d", ctx->listen_host, ctx->port);
	return strcasecmp(host, want) == 0;
}

/* A POST from a page of another origin: refused whatever it carries. */
static int cross_origin(struct MHD_Connection *con)
{
	const char *site = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Sec-Fetch-Site");
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return 1;
	const char *origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (!origin || strcmp(origin, "null") == 0)
		return origin != NULL;
	return !host || strncmp(origin, "http://", 7) != 0 || strcasecmp(origin + 7, host) != 0;
}

static void route(serve_req *r, serve_resp *o, struct MHD_Connection *con)
{
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	const char *s0 = r->nseg > 0 ? r->seg[0] : "";
	if (get) {
		if (r->nseg == 0 || (r->nseg == 1 && strcmp(s0, "runs") == 0))
			page_runs(r, o);
		else if (r->nseg == 2 && strcmp(s0, "runs") == 0)
			page_run(r, o, r->seg[1]);
		else if (r->nseg == 1 && strcmp(s0, "workers") == 0)
			page_workers(r, o);
		else if (r->nseg == 1 && strcmp(s0, "cache") == 0)
			page_cache(r, o);
		else if (r->nseg == 1 && strcmp(s0, "schedules") == 0)
			page_schedules(r, o);
		else if (r->nseg == 1 && strcmp(s0, "metrics") == 0)
			page_metrics(r, o);
		else if (r->nseg == 1 && strcmp(s0, "login") == 0)
			page_login(r, o);
		else if (r->nseg == 1 && strcmp(s0, "style.css") == 0) {
			o->status = 200;
			o->content_type = "text/css; charset=utf-8";
			sb_puts(&o->body, serve_stylesheet);
		} else
			page_error(r, o, 404, "There is no page here.");
		return;
	}
	if (strcmp(r->method, "POST") != 0) {
		plain(o, 405, "method not allowed");
		return;
	}
	if (cross_origin(con)) {
		page_error(r, o, 403, "This request comes from a page of another origin.");
		return;
	}
	int is_login = r->nseg == 1 && strcmp(s0, "login") == 0;
	int is_logout = r->nseg == 1 && strcmp(s0, "logout") == 0;
	int is_action = r->nseg == 3 && strcmp(s0, "runs") == 0;
	if (!is_login && !is_logout && !is_action) {
		page_error(r, o, 404, "There is no action here.");
		return;
	}
	const char *csrf = serve_param_get(&r->form, "csrf");
	if (!csrf)
		csrf = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-CSRF-Token");
	if (is_login) {
		if (!token_eq(csrf, r->ctx->login_csrf)) {
			page_error(r, o, 403, "The form's CSRF token is missing or stale: reload the sign-in page.");
		} else if (!token_eq(serve_param_get(&r->form, "token"), r->ctx->token)) {
			page_error(r, o, 401, "That is not the token this server was started with.");
		} else {
			o->status = 303;
			o->location = strdup("/");
			o->set_cookie = malloc(strlen(r->ctx->token) + 64);
			if (o->set_cookie)
				sprintf(o->set_cookie, "dura_token=%s; Path=/; HttpOnly; SameSite=Strict", r->ctx->token);
			sb_puts(&o->body, "signed in\n");
		}
		return;
	}
	if (!r->signed_in) {
		page_error(r, o, 401, "Actions need the token: sign in first (or send Authorization: Bearer TOKEN).");
		return;
	}
	if (!token_eq(csrf, r->ctx->csrf)) {
		page_error(r, o, 403, "The request's CSRF token is missing or stale: reload the page and try again.");
		return;
	}
	if (is_logout) {
		o->status = 303;
		o->location = strdup("/");
		o->set_cookie = strdup("dura_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
		return;
	}
	action_run(r, o, r->seg[1], r->seg[2]);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)url;
	(void)version;
	serve_ctx *ctx = cls;
	conn_req *q = *con_cls;
	serve_resp o = {0};
	if (!q || !q->target)
		return MHD_NO; /* out of memory: drop the connection */
	int post = strcmp(method, "POST") == 0;
	if (post && *upload_size) {
		/* the body arrives in pieces; answer once it is whole */
		if (q->body.len + *upload_size > MAX_BODY)
			return MHD_NO; /* a body without a length that grew too large: no more reading */
		sb_put(&q->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (post && !q->started) {
		/* the first call of a POST has the headers only: answer once
		 * the body is whole (the call with nothing more to upload),
		 * unless its length says now that it is too large */
		q->started = 1;
		const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (!cl || strtoull(cl, NULL, 10) <= MAX_BODY)
			return MHD_YES;
		q->too_big = 1;
	}
	serve_req r = {0};
	r.ctx = ctx;
	r.method = method;
	char *seg[MAX_SEGMENTS];
	const char *query;
	size_t qlen;
	char err[160];
	int head = strcmp(method, "HEAD") == 0;
	if (!host_ok(ctx, MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))) {
		plain(&o, 421, "this server answers only to its loopback names (127.0.0.1, localhost, [::1]) and port");
		return send_resp(con, &o, head);
	}
	if (strlen(q->target) > SERVE_MAX_QUERY) {
		plain(&o, 414, "request target too long");
		return send_resp(con, &o, head);
	}
	if (q->too_big) {
		plain(&o, 413, "request body too large");
		return send_resp(con, &o, head);
	}
	r.nseg = serve_target_split(q->target, seg, MAX_SEGMENTS, &query, &qlen);
	if (r.nseg < 0) {
		plain(&o, 400, "bad request target");
		return send_resp(con, &o, head);
	}
	r.seg = seg;
	if (serve_params_parse(&r.query, query, qlen, 4096, err, sizeof(err)) != 0) {
		serve_segments_free(seg, r.nseg);
		plain(&o, 400, err);
		return send_resp(con, &o, head);
	}
	if (post) {
		const char *ct = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		if (ct && strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
			plain(&o, 415, "send the form as application/x-www-form-urlencoded");
			goto out;
		}
		if (serve_params_parse(&r.form, q->body.data ? q->body.data : "", q->body.len, MAX_BODY, err,
		                       sizeof(err)) != 0) {
			plain(&o, 400, err);
			goto out;
		}
	}
	r.signed_in = signed_in(ctx, con);
	route(&r, &o, con);
out:;
	enum MHD_Result ret = send_resp(con, &o, head);
	sb_free(&o.body);
	free(o.location);
	free(o.set_cookie);
	serve_params_free(&r.query);
	serve_params_free(&r.form);
	serve_segments_free(seg, r.nseg);
	return ret;
}

static void log_cb(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("dura serve: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int serve_http_start(serve_http **out, serve_ctx *ctx, const struct sockaddr *addr, unsigned timeout_s,
                     int *port_out)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* (the logger goes first, so that MHD logs nothing past it) */
	struct MHD_Daemon *d = MHD_start_daemon(
	    flags, 0, NULL, NULL, handler, ctx, MHD_OPTION_EXTERNAL_LOGGER, log_cb, NULL, MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_URI_LOG_CALLBACK, uri_cb, NULL, MHD_OPTION_NOTIFY_COMPLETED, done_cb, NULL, MHD_OPTION_END);
	if (!d)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info ? (int)info->port : 0;
	*out = (serve_http *)d;
	return 0;
}

void serve_http_stop(serve_http *h)
{
	if (h)
		MHD_stop_daemon((struct MHD_Daemon *)h);
}
