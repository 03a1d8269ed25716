/*
 * json.c - JSON validation at the API boundary (jansson), so that no store
 * ever receives text that is not JSON; the one writer of the default event
 * data, so that every store writes the same bytes.
 */
#include "internal.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* jansson fails to allocate without a message (or says so); a parse error
 * always has one */
static int out_of_memory(const json_error_t *err)
{
	return !err->text[0] || json_error_code(err) == json_error_out_of_memory;
}

int dura__json_valid(const char *text, const char *what)
{
	json_error_t err;
	if (!text)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s is missing", what);
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (!j && out_of_memory(&err))
		return dura_error_oom("");
	if (!j)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s is not valid JSON: %s at line %d column %d", what,
		                             err.text, err.line, err.column);
	json_decref(j);
	return 0;
}

int dura__json_object_valid(const char *text, const char *what)
{
	json_error_t err;
	if (!text)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s is missing", what);
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	if (!j && out_of_memory(&err))
		return dura_error_oom("");
	if (!j)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s is not a valid JSON object or array: %s", what,
		                             err.text);
	int ok = json_is_object(j);
	json_decref(j);
	if (!ok)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s must be a JSON object", what);
	return 0;
}

/* 1 if s is UTF-8 as JSON has it (RFC 3629: no overlong forms, surrogates
 * or code points past U+10FFFF); NULL is "". */
int dura__utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		int n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ? 2 : *p >= 0xf0 && *p <= 0xf4 ? 3 : 0;
		if (!n)
			return 0;
		uint32_t cp = *p & (0x3fu >> n);
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3fu);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* ---- the default event data ------------------------------------------------ */

/* Length of s as a JSON string with its quotes, as dura__json_quote() writes it. */
size_t dura__json_quote_len(const char *s)
{
	size_t n = 2;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' || *p == '\r' || *p == '\t')
			n += 2;
		else if (*p < 0x20)
			n += 6;
		else
			n++;
	}
	return n;
}

/*
 * Write s as a JSON string with its quotes at o (dura__json_quote_len(s)
 * bytes, no NUL); returns the end. The escapes are the short ones for
 * quote, backslash, \b \f \n \r \t, \u00xx (lowercase hex) for the other
 * control characters; everything else, '/' and UTF-8 included, is copied.
 */
char *dura__json_quote(char *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char e = 0;
		switch (*p) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '\b': e = 'b'; break;
		case '\f': e = 'f'; break;
		case '\n': e = 'n'; break;
		case '\r': e = 'r'; break;
		case '\t': e = 't'; break;
		default: break;
		}
		if (e) {
			*o++ = '\\';
			*o++ = e;
		} else if (*p < 0x20) {
			memcpy(o, "\\u00", 4);
			o[4] = hex[*p >> 4];
			o[5] = hex[*p & 15];
			o += 6;
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	return o;
}

/* v in decimal at o (at most 20 bytes, no NUL); its length. snprintf costs
 * more than the rest of the summary. */
static int dec(char *o, int64_t v)
{
	char t[20];
	int n = 0, neg = v < 0;
	uint64_t u = neg ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		t[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		t[n++] = '-';
	for (int i = 0; i < n; i++)
		o[i] = t[n - 1 - i];
	return n;
}

size_t dura_store_event_summary(char *buf, size_t size, const char *run_id, int64_t step, const char *node_id,
                                const char *status, int run_state)
{
	static const char k1[] = DURA__SUMMARY_RUN_ID, k2[] = DURA__SUMMARY_STEP, k3[] = DURA__SUMMARY_NODE_ID,
	                  k4[] = DURA__SUMMARY_STATUS, k5[] = DURA__SUMMARY_RUN_STATE;
	char nums[2][24];
	run_id = run_id ? run_id : "";
	node_id = node_id ? node_id : "";
	status = status ? status : "";
	int a = dec(nums[0], step);
	int b = dec(nums[1], run_state);
	size_t n = sizeof k1 + sizeof k2 + sizeof k3 + sizeof k4 + sizeof k5 - 5 + dura__json_quote_len(run_id) +
	           dura__json_quote_len(node_id) + dura__json_quote_len(status) + (size_t)a + (size_t)b + 1;
	if (n >= size) {
		if (size)
			buf[0] = '\0';
		return n;
	}
	char *o = buf;
	memcpy(o, k1, sizeof k1 - 1);
	o = dura__json_quote(o + sizeof k1 - 1, run_id);
	memcpy(o, k2, sizeof k2 - 1);
	o += sizeof k2 - 1;
	memcpy(o, nums[0], (size_t)a);
	o += a;
	memcpy(o, k3, sizeof k3 - 1);
	o = dura__json_quote(o + sizeof k3 - 1, node_id);
	memcpy(o, k4, sizeof k4 - 1);
	o = dura__json_quote(o + sizeof k4 - 1, status);
	memcpy(o, k5, sizeof k5 - 1);
	o += sizeof k5 - 1;
	memcpy(o, nums[1], (size_t)b);
	o += b;
	*o++ = '}';
	*o = '\0';
	return n;
}

char *dura__json_string_array(const char *const *v, size_t n)
{
	size_t size = 3;
	for (size_t i = 0; i < n; i++)
		size += dura__json_quote_len(v[i]) + 1;
	char *out = dura_malloc(size), *p = out;
	if (!out)
		return NULL;
	*p++ = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		p = dura__json_quote(p, v[i]);
	}
	*p++ = ']';
	*p = '\0';
	return out;
}

int dura__json_same(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	json_error_t err;
	json_t *ja = json_loads(a, JSON_DECODE_ANY, &err);
	json_t *jb = ja ? json_loads(b, JSON_DECODE_ANY, &err) : NULL;
	int same = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return same;
}
