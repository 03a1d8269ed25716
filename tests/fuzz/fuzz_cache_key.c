/*
 * fuzz_cache_key.c - dura_cache_key(&out, step, inputs_json) and
 * dura_cache_scoped_key.
 *
 * The input is "STEP\0INPUTS" (without a NUL: the step "step" and the
 * whole input as the inputs); a third part, when present, is a run id for
 * the run-scoped key. A key must be "<step>:" and 64 lowercase hex digits,
 * and the same for the same JSON value written any other way (key order,
 * spacing, escapes), since it hashes the canonical form. Inputs that are
 * not JSON, an empty or over-long step must be DURA_EINVAL.
 */
#include "fuzz.h"

#include <jansson.h>

static void check_key(const char *key, const char *step)
{
	size_t n = strlen(step);
	FUZZ_CHECK(strncmp(key, step, n) == 0 && key[n] == ':');
	FUZZ_CHECK(strlen(key + n + 1) == 64);
	for (const char *h = key + n + 1; *h; h++)
		FUZZ_CHECK((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f'));
}

static void scoped(const char *key, const char *run_id)
{
	for (int scope = DURA_CACHE_SCOPE_RUN; scope <= DURA_CACHE_SCOPE_GLOBAL + 1; scope++) {
		char *out = NULL;
		int rc = dura_cache_scoped_key(&out, key, (dura_cache_scope)scope, run_id);
		fuzz_check_rc(rc);
		int valid = key && *key && strlen(key) <= 4096 &&
		            (scope == DURA_CACHE_SCOPE_GLOBAL ||
		             (scope == DURA_CACHE_SCOPE_RUN && run_id && *run_id && strlen(run_id) <= DURA_MAX_ID_LEN));
		FUZZ_CHECK(valid ? rc == DURA_OK : rc == DURA_EINVAL);
		if (rc == DURA_OK) {
			FUZZ_CHECK(out && *out && strlen(out) <= DURA_MAX_ID_LEN);
			FUZZ_CHECK(strncmp(out, scope == DURA_CACHE_SCOPE_RUN ? "run:" : "global:",
			                   scope == DURA_CACHE_SCOPE_RUN ? 4 : 7) == 0);
		} else {
			FUZZ_CHECK(out == NULL);
		}
		dura_free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parts p;
	fuzz_split(&p, data, size, 3);
	const char *step = p.n > 1 ? p.part[0] : "step";
	const char *inputs = p.n > 1 ? p.part[1] : p.part[0];

	char *key = NULL;
	int rc = dura_cache_key(&key, step, inputs);
	fuzz_check_rc(rc);
	json_t *j = json_loads(inputs, JSON_DECODE_ANY, NULL);
	int valid = *step && strlen(step) <= 180 && j;
	FUZZ_CHECK(valid ? rc == DURA_OK : rc == DURA_EINVAL);
	if (rc == DURA_OK) {
		check_key(key, step);
		/* the same value written another way gives the same key */
		char *other = json_dumps(j, JSON_INDENT(3) | JSON_ENCODE_ANY | JSON_ESCAPE_SLASH | JSON_ENSURE_ASCII);
		FUZZ_CHECK(other != NULL);
		char *key2 = NULL;
		FUZZ_CHECK(dura_cache_key(&key2, step, other) == DURA_OK);
		FUZZ_CHECK(strcmp(key, key2) == 0);
		dura_free(key2);
		free(other);
		scoped(key, p.part[2]);
	} else {
		FUZZ_CHECK(key == NULL);
	}
	json_decref(j);
	dura_free(key);
	/* the raw step text as a cache key, too */
	scoped(step, p.part[2]);
	/* NULL inputs are JSON null */
	if (*step && strlen(step) <= 180) {
		char *a = NULL, *b = NULL;
		FUZZ_CHECK(dura_cache_key(&a, step, NULL) == DURA_OK && dura_cache_key(&b, step, "null") == DURA_OK);
		FUZZ_CHECK(strcmp(a, b) == 0);
		dura_free(a);
		dura_free(b);
	}
	fuzz_parts_free(&p);
	return 0;
}
