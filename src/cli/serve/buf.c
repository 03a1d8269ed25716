/*
 * buf.c - the buffer pages are written into, and the escaping every
 * value from the store passes through on its way into a page.
 *
 * HTML escaping is the one defence against a run whose foreign id, node
 * names, state or error text holds markup: sb_html is the only way a
 * store value reaches a page, in text and in attributes (always quoted
 * with "), in SVG <title>s as in HTML. It also makes the text valid
 * UTF-8, so a browser never guesses at an encoding.
 */
#include "serve.h"
#include "cli.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_free(sbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int grow(sbuf *b, size_t n)
{
	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d) {
		b->oom = 1;
		return -1;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void sb_put(sbuf *b, const char *s, size_t n)
{
	if (grow(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sb_puts(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char small[512];
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sb_put(b, small, (size_t)n);
		return;
	}
	if (grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void html_n(sbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0; /* [i - run, i) is copied as it is */
	uint32_t cp;
	while (i < n) {
		const char *rep = NULL;
		size_t k = 1;
		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n')
				rep = "";
			else if (s[i] == 0x7f)
				rep = "";
			else if (s[i] >= 0x80 && (k = cli_utf8_seq(s + i, n - i, &cp)) == 0)
				rep = "\xef\xbf\xbd", k = 1;
		}
		if (rep) {
			sb_put(b, str + i - run, run);
			sb_puts(b, rep);
			run = 0;
			i += k;
		} else {
			run += k;
			i += k;
		}
	}
	sb_put(b, str + i - run, run);
}

void sb_html(sbuf *b, const char *s)
{
	if (s)
		html_n(b, s, strlen(s));
}

void sb_html_cut(sbuf *b, const char *s, size_t max)
{
	if (!s)
		return;
	size_t n = strlen(s);
	if (n <= max) {
		html_n(b, s, n);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	html_n(b, s, max);
	sb_puts(b, "\xe2\x80\xa6");
}

void sb_url(sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.' || *p == '~') {
			sb_put(b, (const char *)p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			sb_put(b, e, 3);
		}
	}
}

void sb_time(sbuf *b, int64_t ms)
{
	if (ms <= 0) {
		sb_puts(b, "-");
		return;
	}
	char t[24];
	dura_time_format(t, ms);
	/* "2026-12-02T18:21:48.123Z" shown as "2026-12-02 18:21:48.123" */
	if (strlen(t) >= 23) {
		t[10] = ' ';
		t[23] = '\0';
	}
	sb_puts(b, t);
}

void sb_duration(sbuf *b, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		sb_printf(b, "%dms", (int)ms);
	else if (ms < 60000)
		sb_printf(b, "%.1fs", (double)ms / 1000);
	else if (ms < 3600000)
		sb_printf(b, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000 % 60));
	else if (ms < 86400000)
		sb_printf(b, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000 % 60));
	else
		sb_printf(b, "%lldd%02dh", (long long)(ms / 86400000), (int)(ms / 3600000 % 24));
}

void sb_json_pretty(sbuf *b, const char *json, size_t max)
{
	/* a state far over what a page shows is cut as it is, not parsed */
	json_t *v = json && strlen(json) <= max ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
	char *text = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
	sb_html_cut(b, text ? text : json, max);
	free(text);
	json_decref(v);
}
