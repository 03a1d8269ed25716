/*
 * json.c - JSON validation at the API boundary (jansson), so that no store
 * ever receives text that is not JSON.
 */
#include "internal.h"

#include <jansson.h>

int dura__json_valid(const char *text, const char *what)
{
	json_error_t err;
	if (!text)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is missing", what);
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
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
	if (!j)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s is not a valid JSON object or array: %s", what,
		                       err.text);
	int ok = json_is_object(j);
	json_decref(j);
	if (!ok)
		return dura__error_set(DURA_EINVAL, "", 0, NULL, "%s must be a JSON object", what);
	return 0;
}
