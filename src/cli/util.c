/*
 * util.c - the CLI's shared helpers: errors, allocation, text checks,
 * aligned tables, timestamps and JSON output.
 *
 * Allocation failures end the process with one line on stderr (as git's
 * xmalloc does): a command-line tool has nothing better to do, and it keeps
 * every command free of out-of-memory branches.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ----------------------------------------------------------------- */

int cli_fail(int rc)
{
	const dura_error *e = dura_error_last();
	if (e && e->message && *e->message)
		fprintf(stderr, "dura: %s\n", e->message);
	else
		fprintf(stderr, "dura: %s\n", dura_strerror(rc));
	return CLI_ERROR;
}

static void vline(const char *fmt, va_list ap, const char *suffix)
{
	char *msg;
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0) {
		fprintf(stderr, "dura: error\n");
		return;
	}
	msg = cli_malloc((size_t)n + 1);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	/* one line, whatever the arguments held */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "dura: %s%s\n", msg, suffix ? suffix : "");
	free(msg);
}

int cli_errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(fmt, ap, NULL);
	va_end(ap);
	return CLI_ERROR;
}

int cli_usagef(const cli *c, const char *fmt, ...)
{
	char *suffix = cli_asprintf(" (try 'dura %s%s--help')", c && c->path ? c->path : "",
	                            c && c->path && *c->path ? " " : "");
	va_list ap;
	va_start(ap, fmt);
	vline(fmt, ap, suffix);
	va_end(ap);
	free(suffix);
	return CLI_USAGE;
}

/* ---- memory ----------------------------------------------------------------- */

static void oom(void)
{
	fputs("dura: out of memory\n", stderr);
	exit(CLI_ERROR);
}

void *cli_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *cli_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *cli_strdup(const char *s)
{
	size_t n = strlen(s);
	char *d = cli_malloc(n + 1);
	memcpy(d, s, n + 1);
	return d;
}

char *cli_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	char *s = cli_malloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* ---- options -------------------------------------------------------------- */

const char *cli_opt_get(const cli_args *a, const char *name)
{
	if (!a->cmd->opts)
		return NULL;
	for (size_t i = 0; a->cmd->opts[i].name; i++)
		if (strcmp(a->cmd->opts[i].name, name) == 0)
			return a->values[i];
	return NULL;
}

int cli_flag(const cli_args *a, const char *name)
{
	return cli_opt_get(a, name) != NULL;
}

int cli_parse_i64(const cli *c, const char *opt, const char *text, int64_t min, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (!*text || *end || errno || v < min)
		return cli_usagef(c, "--%s: '%s' is not an integer >= %" PRId64, opt, text, min);
	*out = (int64_t)v;
	return 0;
}

int cli_parse_size(const cli *c, const char *opt, const char *text, size_t max, size_t *out)
{
	char *end;
	errno = 0;
	if (*text < '0' || *text > '9')
		return cli_usagef(c, "--%s: '%s' is not a number from 1 to %zu", opt, text, max);
	unsigned long long v = strtoull(text, &end, 10);
	if (*end || errno || v < 1 || v > max)
		return cli_usagef(c, "--%s: '%s' is not a number from 1 to %zu", opt, text, max);
	*out = (size_t)v;
	return 0;
}

int cli_parse_duration(const cli *c, const char *opt, const char *text, int64_t *ms)
{
	char *end;
	errno = 0;
	if (*text < '0' || *text > '9')
		return cli_usagef(c, "--%s: '%s' is not a duration (30d, 12h, 15m, 10s, 500ms)", opt, text);
	unsigned long long v = strtoull(text, &end, 10);
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	for (size_t i = 0; !errno && i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0 && v <= (unsigned long long)(INT64_MAX / units[i].ms)) {
			*ms = (int64_t)v * units[i].ms;
			return 0;
		}
	return cli_usagef(c, "--%s: '%s' is not a duration (30d, 12h, 15m, 10s, 500ms)", opt, text);
}

int cli_parse_run_state(const cli *c, const char *opt, const char *text, int *out)
{
	if (dura_run_state_parse(out, text) == 0)
		return 0;
	const dura_error *e = dura_error_last();
	return cli_usagef(c, "--%s: %s", opt, e ? e->message : "unknown run state");
}

/* ---- text ----------------------------------------------------------------- */

const char *cli_time(char buf[24], int64_t ms)
{
	if (ms == 0)
		return "-";
	dura_time_format(buf, ms);
	return buf;
}

size_t cli_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int cli_utf8_valid(const unsigned char *s, size_t n)
{
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t l = cli_utf8_seq(s + i, n - i, &cp);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static int is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

int cli_printable(const unsigned char *s, size_t n)
{
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t l = cli_utf8_seq(s + i, n - i, &cp);
		if (!l)
			return 0;
		if (is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r')
			return 0;
		i += l;
	}
	return 1;
}

/* A copy of s with invalid UTF-8 bytes (and, when `controls`, control
 * characters) replaced by `repl`. */
static char *sanitize(const char *s, int controls, const char *repl)
{
	size_t n = strlen(s), rl = strlen(repl), cap = n + 1, o = 0;
	char *d = cli_malloc(cap);
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t l = cli_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		const char *src = s + i;
		size_t sl = l;
		if (!l || (controls && is_control(cp))) {
			src = repl;
			sl = rl;
			if (!l)
				l = 1;
		}
		if (o + sl + 1 > cap) {
			cap = (o + sl + 1) * 2;
			d = cli_realloc(d, cap);
		}
		memcpy(d + o, src, sl);
		o += sl;
		i += l;
	}
	d[o] = '\0';
	return d;
}

char *cli_cell(const char *s)
{
	if (!s || !*s)
		return cli_strdup("-");
	return sanitize(s, 1, "?");
}

char *cli_sha256_hex(const void *data, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL))
		return cli_strdup("(sha256 failed)");
	char *out = cli_malloc((size_t)mdlen * 2 + 1);
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * mdlen] = '\0';
	return out;
}

void cli_print_json_text(FILE *f, const char *text, int indent)
{
	json_t *j = text && *text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	if (!j) {
		fprintf(f, "%s\n", text && *text ? text : "-");
		return;
	}
	char *s = json_dumps(j, JSON_INDENT(indent) | JSON_ENCODE_ANY);
	json_decref(j);
	if (!s)
		oom();
	fprintf(f, "%s\n", s);
	free(s);
}

char *cli_json_oneline(const char *text)
{
	if (!text)
		return NULL;
	json_t *j = *text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	if (!j)
		return cli_strdup(text);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!s)
		oom();
	return s;
}

int cli_read_all(FILE *f, unsigned char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	unsigned char *buf = cli_malloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap > SIZE_MAX / 2) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			buf = cli_realloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				int err = errno;
				free(buf);
				errno = err ? err : EIO;
				return -1;
			}
			break;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

/* ---- tables ----------------------------------------------------------------- */

struct cli_table {
	size_t ncols, nrows, cap; /* rows include the header */
	char **cells;
};

cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	cli_table *t = cli_malloc(sizeof(*t));
	t->ncols = ncols;
	t->nrows = 0;
	t->cap = 0;
	t->cells = NULL;
	cli_table_add(t, headers);
	return t;
}

void cli_table_add(cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		if (t->cap > SIZE_MAX / sizeof(char *) / t->ncols)
			oom();
		t->cells = cli_realloc(t->cells, t->cap * t->ncols * sizeof(char *));
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = cli_cell(cells[i]);
	t->nrows++;
}

/* Display width: code points (cells hold valid UTF-8 only). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void cli_table_print(cli_table *t, FILE *f)
{
	size_t *w = cli_malloc(t->ncols * sizeof(size_t));
	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = 0;
		for (size_t r = 0; r < t->nrows; r++) {
			size_t x = width(t->cells[r * t->ncols + c]);
			if (x > w[c])
				w[c] = x;
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols) {
				fprintf(f, "%s\n", s);
			} else {
				fputs(s, f);
				for (size_t pad = width(s); pad < w[c] + 2; pad++)
					fputc(' ', f);
			}
		}
	}
	free(w);
}

void cli_table_free(cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void cli_kv(FILE *f, int w, const char *name, const char *value)
{
	char *v = cli_cell(value);
	fprintf(f, "%-*s  %s\n", w, name, v);
	free(v);
}

/* ---- JSON ----------------------------------------------------------------- */

void cli_jset(json_t *obj, const char *key, json_t *val)
{
	if (!val || json_object_set_new(obj, key, val) != 0)
		oom();
}

void cli_jappend(json_t *arr, json_t *val)
{
	if (!val || json_array_append_new(arr, val) != 0)
		oom();
}

json_t *cli_jobject(void)
{
	json_t *o = json_object();
	if (!o)
		oom();
	return o;
}

json_t *cli_jarray(void)
{
	json_t *a = json_array();
	if (!a)
		oom();
	return a;
}

json_t *cli_jstr(const char *s)
{
	json_t *j;
	if (!s)
		j = json_null();
	else if (cli_utf8_valid((const unsigned char *)s, strlen(s)))
		j = json_string(s);
	else {
		char *clean = sanitize(s, 0, "\xef\xbf\xbd"); /* U+FFFD */
		j = json_string(clean);
		free(clean);
	}
	if (!j)
		oom();
	return j;
}

json_t *cli_jstr_opt(const char *s)
{
	return s && *s ? cli_jstr(s) : json_null();
}

json_t *cli_jint(int64_t v)
{
	json_t *j = json_integer((json_int_t)v);
	if (!j)
		oom();
	return j;
}

json_t *cli_jtime(int64_t ms)
{
	char buf[24];
	if (ms == 0)
		return json_null();
	dura_time_format(buf, ms);
	return cli_jstr(buf);
}

json_t *cli_jparse(const char *text)
{
	if (!text || !*text)
		return json_null();
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	return j ? j : cli_jstr(text);
}

int cli_jprint(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	json_decref(v);
	if (!s)
		oom();
	fputs(s, stdout);
	fputc('\n', stdout);
	free(s);
	return CLI_OK;
}

json_t *cli_json_record(const dura_record *r)
{
	json_t *o = cli_jobject();
	cli_jset(o, "run_id", cli_jstr(r->run_id));
	cli_jset(o, "workflow_name", cli_jstr(r->workflow_name));
	cli_jset(o, "foreign_id", cli_jstr_opt(r->foreign_id));
	cli_jset(o, "run_state", cli_jstr(dura_run_state_name(r->run_state)));
	cli_jset(o, "run_state_code", cli_jint(r->run_state));
	cli_jset(o, "status", cli_jstr_opt(r->status));
	cli_jset(o, "state", cli_jparse(r->state));
	cli_jset(o, "version", cli_jint(r->version));
	cli_jset(o, "step_no", cli_jint(r->step_no));
	cli_jset(o, "attempt", cli_jint(r->attempt));
	cli_jset(o, "error", cli_jstr_opt(r->error));
	cli_jset(o, "meta", cli_jparse(r->meta));
	cli_jset(o, "priority", cli_jint(r->priority));
	cli_jset(o, "concurrency_key", cli_jstr_opt(r->concurrency_key));
	cli_jset(o, "wait", cli_jstr_opt(r->wait));
	cli_jset(o, "parent_id", cli_jstr_opt(r->parent_id));
	cli_jset(o, "workflow_version", cli_jstr_opt(r->workflow_version));
	cli_jset(o, "lease_owner", cli_jstr_opt(r->lease_owner));
	cli_jset(o, "lease_expires_at", cli_jtime(r->lease_expires_at));
	cli_jset(o, "next_run_at", cli_jtime(r->next_run_at));
	cli_jset(o, "created_at", cli_jtime(r->created_at));
	cli_jset(o, "updated_at", cli_jtime(r->updated_at));
	return o;
}

/* ---- what a waiting run waits for ------------------------------------------ */

/* next_run_at of a signal wait without a timeout (9999-12-31 23:59:59 UTC) */
#define CLI_NO_DEADLINE INT64_C(253402300799000)

char *cli_wait_text(const dura_record *r)
{
	char t[24];
	const char *w = r->wait ? r->wait : "";
	if (!*w)
		return NULL;
	if (strcmp(w, "sleep") == 0)
		return cli_asprintf("sleep until %s", cli_time(t, r->next_run_at));
	if (strncmp(w, "signal:", 7) == 0) {
		if (r->next_run_at >= CLI_NO_DEADLINE)
			return cli_asprintf("signal %s, no deadline", w + 7);
		return cli_asprintf("signal %s, deadline %s", w + 7, cli_time(t, r->next_run_at));
	}
	if (strncmp(w, "child:", 6) == 0)
		return cli_asprintf("child %s", w + 6);
	return cli_strdup(w);
}

json_t *cli_json_wait(const dura_record *r)
{
	const char *w = r->wait ? r->wait : "";
	if (!*w)
		return json_null();
	json_t *o = cli_jobject();
	if (strcmp(w, "sleep") == 0) {
		cli_jset(o, "kind", cli_jstr("sleep"));
		cli_jset(o, "until", cli_jtime(r->next_run_at));
	} else if (strncmp(w, "signal:", 7) == 0) {
		cli_jset(o, "kind", cli_jstr("signal"));
		cli_jset(o, "name", cli_jstr(w + 7));
		cli_jset(o, "deadline", r->next_run_at >= CLI_NO_DEADLINE ? json_null() : cli_jtime(r->next_run_at));
	} else if (strncmp(w, "child:", 6) == 0) {
		cli_jset(o, "kind", cli_jstr("child"));
		cli_jset(o, "run_id", cli_jstr(w + 6));
	} else {
		cli_jset(o, "kind", cli_jstr(w));
	}
	return o;
}

json_t *cli_json_step(const dura_step *s, int with_state)
{
	json_t *o = cli_jobject();
	cli_jset(o, "step", cli_jint(s->step));
	cli_jset(o, "node_id", cli_jstr(s->node_id));
	cli_jset(o, "workflow_version", cli_jstr_opt(s->workflow_version));
	cli_jset(o, "created_at", cli_jtime(s->created_at));
	if (with_state)
		cli_jset(o, "state", cli_jparse(s->state));
	return o;
}

int cli_done(const cli *c, const char *key, const char *what, const char *id)
{
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, key, cli_jstr(id));
		return cli_jprint(o);
	}
	char *cell = cli_cell(id);
	printf("%s %s\n", what, cell);
	free(cell);
	return CLI_OK;
}
