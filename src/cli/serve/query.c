/*
 * query.c - a request's target and parameters, parsed by hand and
 * bounded: the path split into decoded segments, the query string and
 * form bodies into key/value pairs.
 *
 * Whatever a client sends comes through here before any page sees it, so
 * this file refuses rather than repairs: a bad %-escape, bytes that are
 * not UTF-8, a NUL, too many pairs or an over-long key or value make the
 * request a 400. tests/fuzz/fuzz_query.c feeds it arbitrary bytes.
 */
#include "serve.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1 when s (n bytes) is UTF-8 without a NUL */
static int utf8_ok(const unsigned char *s, size_t n)
{
	return !memchr(s, '\0', n) && cli_utf8_valid(s, n);
}

/*
 * Decode s (n bytes) into a new string: %XX a byte, '+' a space when
 * plus is set. NULL for a bad escape, a result over max bytes, not
 * UTF-8, holding a NUL, or out of memory (*why says which).
 */
static char *decode(const char *s, size_t n, int plus, size_t max, const char **why)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	if (!out) {
		*why = "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int l = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (h < 0 || l < 0) {
				free(out);
				*why = "a bad %-escape";
				return NULL;
			}
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (plus && s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
		if (o > max) {
			free(out);
			*why = "a key or value too long";
			return NULL;
		}
	}
	out[o] = '\0';
	if (!utf8_ok((const unsigned char *)out, o)) {
		free(out);
		*why = "text that is not UTF-8 (or holds a NUL)";
		return NULL;
	}
	return out;
}

void serve_params_free(serve_params *p)
{
	for (size_t i = 0; i < p->count; i++) {
		free(p->items[i].key);
		free(p->items[i].value);
	}
	p->count = 0;
}

int serve_params_parse(serve_params *p, const char *s, size_t len, size_t max_value, char *err, size_t errsize)
{
	p->count = 0;
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && s[end] != '&')
			end++;
		if (end > i) {
			size_t eq = i;
			while (eq < end && s[eq] != '=')
				eq++;
			if (p->count == SERVE_MAX_PARAMS) {
				snprintf(err, errsize, "more than %d parameters", SERVE_MAX_PARAMS);
				serve_params_free(p);
				return -1;
			}
			const char *why = NULL;
			char *k = decode(s + i, eq - i, 1, SERVE_MAX_KEY, &why);
			char *v = k ? decode(s + eq + (eq < end), end - eq - (eq < end), 1, max_value, &why) : NULL;
			if (!k || !v) {
				snprintf(err, errsize, "parameter %d: %s", (int)p->count + 1, why);
				free(k);
				serve_params_free(p);
				return -1;
			}
			p->items[p->count].key = k;
			p->items[p->count].value = v;
			p->count++;
		}
		i = end + 1;
	}
	return 0;
}

const char *serve_param_get(const serve_params *p, const char *key)
{
	for (size_t i = 0; i < p->count; i++)
		if (strcmp(p->items[i].key, key) == 0)
			return p->items[i].value;
	return NULL;
}

const char *serve_param_opt(const serve_params *p, const char *key)
{
	const char *v = serve_param_get(p, key);
	return v && *v ? v : NULL;
}

void serve_segments_free(char **seg, int n)
{
	for (int i = 0; i < n; i++)
		free(seg[i]);
}

int serve_target_split(const char *target, char **seg, int nmax, const char **query, size_t *qlen)
{
	size_t n = strlen(target);
	*query = "";
	*qlen = 0;
	if (n == 0 || target[0] != '/' || n > SERVE_MAX_QUERY)
		return -1;
	const char *q = memchr(target, '?', n);
	size_t plen = q ? (size_t)(q - target) : n;
	if (q) {
		*query = q + 1;
		*qlen = n - plen - 1;
	}
	int count = 0;
	size_t i = 1;
	while (i <= plen) {
		size_t end = i;
		while (end < plen && target[end] != '/')
			end++;
		if (end > i) {
			const char *why;
			if (count == nmax) {
				serve_segments_free(seg, count);
				return -1;
			}
			char *d = decode(target + i, end - i, 0, SERVE_MAX_QUERY, &why);
			if (!d || strchr(d, '/')) {
				free(d);
				serve_segments_free(seg, count);
				return -1;
			}
			seg[count++] = d;
		}
		i = end + 1;
	}
	return count;
}
