/*
 * fuzz_query.c - `dura serve`'s request parsing (src/cli/serve/query.c)
 * and the HTML escaping (buf.c) on arbitrary bytes.
 *
 * The input is a request target: it is split into path segments and a
 * query, the query parsed into parameters, and the same bytes parsed as
 * a form body. Checks: every decoded key and value is valid UTF-8 with
 * no NUL; escaped as HTML, none holds a raw < > " or '; percent-encoded
 * and parsed again, each value comes back unchanged; a segment holds no
 * '/'.
 */
#include "fuzz.h"
#include "serve/serve.h"

static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (!len)
			return 0;
		for (size_t i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += len;
	}
	return 1;
}

static void check_params(const serve_params *p)
{
	FUZZ_CHECK(p->count <= SERVE_MAX_PARAMS);
	for (size_t i = 0; i < p->count; i++) {
		const char *k = p->items[i].key, *v = p->items[i].value;
		FUZZ_CHECK(k && v && utf8_ok(k) && utf8_ok(v) && strlen(k) <= SERVE_MAX_KEY);
		sbuf b = {0};
		sb_html(&b, v);
		FUZZ_CHECK(!b.data || strpbrk(b.data, "<>\"'") == NULL);
		sb_free(&b);
		/* encode and parse again: the same value */
		sb_puts(&b, "k=");
		sb_url(&b, v);
		serve_params again;
		char err[160];
		FUZZ_CHECK(serve_params_parse(&again, b.data, b.len, SERVE_MAX_VALUE, err, sizeof(err)) == 0);
		FUZZ_CHECK(again.count == 1 && strcmp(again.items[0].value, v) == 0);
		serve_params_free(&again);
		sb_free(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	if (!t)
		return 0;
	memcpy(t, data, size);
	t[size] = '\0';
	char err[160];
	serve_params p;
	if (serve_params_parse(&p, t, size, 4096, err, sizeof(err)) == 0)
		check_params(&p);
	else
		FUZZ_CHECK(p.count == 0 && err[0]);
	serve_params_free(&p);

	char *seg[8];
	const char *q;
	size_t qlen;
	int n = serve_target_split(t, seg, 8, &q, &qlen);
	FUZZ_CHECK(n >= -1 && n <= 8);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(utf8_ok(seg[i]) && !strchr(seg[i], '/') && seg[i][0]);
	if (n >= 0) {
		FUZZ_CHECK(qlen == 0 || (q > t && q + qlen <= t + strlen(t)));
		if (serve_params_parse(&p, q, qlen, 4096, err, sizeof(err)) == 0)
			check_params(&p);
		serve_params_free(&p);
	}
	serve_segments_free(seg, n > 0 ? n : 0);
	free(t);
	return 0;
}
