/*
 * json.c - JSON validation at the API boundary (jansson), so that no store
 * ever receives text that is not JSON.
 */
#include "internal.h"

#include <jansson.h>

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
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is missing", what);
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (!j && out_of_memory(&err))
		return dura__oom("");
	if (!j)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is not valid JSON: %s at line %d column %d", what,
		                       err.text, err.line, err.column);
	json_decref(j);
	return 0;
}

int dura__json_object_valid(const char *text, const char *what)
{
	json_error_t err;
	if (!text)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is missing", what);
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	if (!j && out_of_memory(&err))
		return dura__oom("");
	if (!j)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is not a valid JSON object or array: %s", what,
		                       err.text);
	int ok = json_is_object(j);
	json_decref(j);
	if (!ok)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s must be a JSON object", what);
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
