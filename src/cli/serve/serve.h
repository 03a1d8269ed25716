/*
 * serve.h - what the files of `dura serve` share: the text buffer pages
 * are written into (with the escaping every value from the store goes
 * through), the request's parameters, the request and response, and the
 * pages.
 *
 *   buf.c      the growable buffer; HTML, URL and JSON-in-HTML escaping
 *   query.c    query strings and form bodies: split, percent-decoded,
 *              UTF-8 checked, bounded (fuzzed: tests/fuzz/fuzz_query.c)
 *   http.c     libmicrohttpd: the daemon, limits, reading a request,
 *              the token and CSRF checks, routing
 *   layout.c   the page around every page, the stylesheet
 *   runs.c     the runs list;  run.c  one run;  timeline.c  its SVG
 *   diff.c     the difference between two states
 *   fleet.c    workers, the cache, schedules
 *   actions.c  pause, resume, cancel, fork, signal (POST)
 *
 * Every page is rendered from the store at request time; nothing is kept
 * between requests but the store handle, the token and the CSRF token.
 */
#ifndef DURA_SERVE_H
#define DURA_SERVE_H

#include <dura.h>
#include <stddef.h>
#include <stdint.h>

/* ---- buf.c ------------------------------------------------------------------ */

typedef struct sbuf {
	char *data; /* NUL-terminated once anything was written; NULL before */
	size_t len, cap;
	int oom;    /* an allocation failed: the text is cut short */
} sbuf;

void sb_free(sbuf *b);
void sb_put(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as HTML text or an attribute value (quotes too): & < > " ' escaped,
 * control characters but tab and newline dropped, bytes that are not
 * UTF-8 as U+FFFD. NULL is "". */
void sb_html(sbuf *b, const char *s);
/* the first max bytes of s (at a character boundary) as sb_html, then "…" if cut */
void sb_html_cut(sbuf *b, const char *s, size_t max);
/* s percent-encoded for a URL's path segment or query value */
void sb_url(sbuf *b, const char *s);
/* a time (ms since the epoch) as "YYYY-MM-DD HH:MM:SS.mmm", "-" for 0 */
void sb_time(sbuf *b, int64_t ms);
/* a duration in ms as "950ms", "12.3s", "4m05s", "2h10m", "3d04h" */
void sb_duration(sbuf *b, int64_t ms);
/* JSON text re-indented (2 spaces), escaped as HTML, cut after max bytes;
 * invalid JSON as it is */
void sb_json_pretty(sbuf *b, const char *json, size_t max);

/* ---- query.c ------------------------------------------------------------------ */

#define SERVE_MAX_PARAMS 64
#define SERVE_MAX_KEY 64
#define SERVE_MAX_VALUE 65536
#define SERVE_MAX_QUERY 8192

typedef struct serve_param {
	char *key, *value; /* decoded, NUL-terminated, valid UTF-8 */
} serve_param;

typedef struct serve_params {
	size_t count;
	serve_param items[SERVE_MAX_PARAMS];
} serve_params;

/*
 * Parse "a=1&b=x%20y" (a query string without '?', or an
 * application/x-www-form-urlencoded body) of len bytes into p: '+' is a
 * space, %XX a byte, an empty pair is skipped, a key without '=' has the
 * value "". 0, or -1 with the reason in err (at most errsize bytes) for
 * a bad %-escape, a key or value that is not UTF-8 or holds a NUL, more
 * than SERVE_MAX_PARAMS pairs, a key over SERVE_MAX_KEY or a value over
 * max_value bytes. p is reset first and freed with serve_params_free in
 * every case.
 */
int serve_params_parse(serve_params *p, const char *s, size_t len, size_t max_value, char *err, size_t errsize);
void serve_params_free(serve_params *p);
/* the value of the first pair named key, or NULL */
const char *serve_param_get(const serve_params *p, const char *key);
/* the value as NULL when absent or "" */
const char *serve_param_opt(const serve_params *p, const char *key);

/*
 * Split a request target "/runs/ID/pause?x=1" into its decoded path
 * segments (at most nmax, each percent-decoded and UTF-8 checked) and
 * its raw query (after '?', not decoded: *query and *qlen). Returns the
 * number of segments, or -1 for a target that does not start with '/',
 * is over SERVE_MAX_QUERY bytes, has more than nmax segments, or a bad
 * segment. The segments are allocated; free with serve_segments_free.
 */
int serve_target_split(const char *target, char **seg, int nmax, const char **query, size_t *qlen);
void serve_segments_free(char **seg, int n);

/* ---- requests and responses (http.c) ------------------------------------------ */

typedef struct serve_ctx {
	dura_store *store;
	dura_engine *engine;   /* opened on the store, no workflows: fork and cancel */
	char token[65];        /* what actions need */
	char csrf[65];         /* what every action's form carries (shown only to a signed-in reader) */
	char login_csrf[65];   /* what the sign-in form carries */
	const char *store_url; /* redacted */
	int loopback;          /* listening on a loopback address: Host is checked */
	char listen_host[64];  /* the address listened on, as a Host names it ("[::1]" for IPv6) */
	int port;
} serve_ctx;

typedef struct serve_req {
	serve_ctx *ctx;
	const char *method;
	char **seg; /* the decoded path's segments */
	int nseg;
	serve_params query;
	serve_params form; /* a POST's body */
	int signed_in;     /* the token came with the request (cookie or Authorization) */
} serve_req;

typedef struct serve_resp {
	int status;
	const char *content_type; /* NULL: text/html; charset=utf-8 */
	sbuf body;
	char *location;   /* a redirect's target (allocated) */
	char *set_cookie; /* allocated */
} serve_resp;

/* ---- pages ------------------------------------------------------------------------ */

/* layout.c: the document up to the page's content, and after it */
void page_begin(serve_req *r, serve_resp *o, const char *title, const char *nav);
void page_end(serve_req *r, serve_resp *o);
/* an error page: status, and a message (escaped) */
void page_error(serve_req *r, serve_resp *o, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* the error dura left for the last call, as an error page (404 for ENOTFOUND, 409 for ECONFLICT, else 500) */
void page_dura_error(serve_req *r, serve_resp *o, int rc, const char *what);
/* a form's hidden CSRF field (the sign-in form's own for a reader not signed in) */
void page_csrf_field(serve_req *r, serve_resp *o);
extern const char serve_stylesheet[];

void page_runs(serve_req *r, serve_resp *o);
void page_run(serve_req *r, serve_resp *o, const char *run_id);
void page_workers(serve_req *r, serve_resp *o);
void page_cache(serve_req *r, serve_resp *o);
void page_schedules(serve_req *r, serve_resp *o);
void page_login(serve_req *r, serve_resp *o);
void page_metrics(serve_req *r, serve_resp *o);
/* actions.c: POST /runs/ID/ACTION (pause, resume, cancel, fork, signal) */
void action_run(serve_req *r, serve_resp *o, const char *run_id, const char *action);

/* timeline.c: the SVG of a run's steps (one <rect class="step"> each) and
 * failed attempts (one <line class="failed"> each at its time) */
typedef struct timeline_fail {
	int64_t at;
	const char *node, *error;
	int attempt;
} timeline_fail;
void timeline_svg(sbuf *b, const dura_record *rec, const dura_step *steps, size_t nsteps,
                  const timeline_fail *fails, size_t nfails);

/* diff.c: what changed from state a to state b (JSON texts), as an HTML
 * list of paths: added, removed, changed (old -> new); a or b NULL: the
 * whole other one is new */
void diff_html(sbuf *b, const char *a, const char *bjson);

/* the run's outbox events, scanned from the outbox in id order up to a
 * bound (run.c); *scanned tells whether the whole outbox was scanned */
int serve_run_events(dura_store *s, const char *run_id, dura_event_list *out, int *complete);

#endif
