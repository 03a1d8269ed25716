/*
 * diff.c - what a step changed: the paths (".a.b", ".list") whose values
 * differ between the state before it and after it, walked through
 * objects key by key; arrays and scalars are compared whole. At most
 * MAX_LINES lines per step, values cut to MAX_VALUE bytes.
 */
#include "serve.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 40
#define MAX_VALUE 160
#define MAX_PATH 512

typedef struct walk {
	sbuf *b;
	int lines;
} walk;

static void value(sbuf *b, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	sb_html_cut(b, t ? t : "?", MAX_VALUE);
	free(t);
}

static void line(walk *w, const char *cls, const char *path, const json_t *a, const json_t *bv)
{
	if (w->lines++ == MAX_LINES) {
		sb_puts(w->b, "<li class=\"mute\">&hellip; more changes</li>");
		return;
	}
	if (w->lines > MAX_LINES)
		return;
	sb_printf(w->b, "<li class=\"%s\"><code>", cls);
	sb_html(w->b, *path ? path : ".");
	sb_puts(w->b, "</code> ");
	if (a && bv) {
		value(w->b, a);
		sb_puts(w->b, " &rarr; ");
		value(w->b, bv);
	} else {
		sb_puts(w->b, a ? "removed (was " : "= ");
		value(w->b, a ? a : bv);
		if (a)
			sb_puts(w->b, ")");
	}
	sb_puts(w->b, "</li>");
}

static void walk_values(walk *w, char *path, size_t plen, const json_t *a, const json_t *bv)
{
	if (json_is_object(a) && json_is_object(bv)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)a, k, v) {
			size_t kl = strlen(k);
			if (plen + kl + 2 >= MAX_PATH)
				continue;
			path[plen] = '.';
			memcpy(path + plen + 1, k, kl + 1);
			json_t *o = json_object_get(bv, k);
			if (!o)
				line(w, "del", path, v, NULL);
			else
				walk_values(w, path, plen + 1 + kl, v, o);
		}
		json_object_foreach((json_t *)bv, k, v) {
			size_t kl = strlen(k);
			if (json_object_get(a, k) || plen + kl + 2 >= MAX_PATH)
				continue;
			path[plen] = '.';
			memcpy(path + plen + 1, k, kl + 1);
			line(w, "add", path, NULL, v);
		}
		path[plen] = '\0';
		return;
	}
	if (!json_equal((json_t *)a, (json_t *)bv))
		line(w, "chg", path, a, bv);
}

void diff_html(sbuf *b, const char *atext, const char *btext)
{
	json_t *a = atext ? json_loads(atext, JSON_DECODE_ANY, NULL) : NULL;
	json_t *bv = btext ? json_loads(btext, JSON_DECODE_ANY, NULL) : NULL;
	walk w = {b, 0};
	char path[MAX_PATH] = "";
	sb_puts(b, "<ul class=\"diff\">");
	if (!bv)
		sb_puts(b, "<li class=\"mute\">(the state is not JSON)</li>");
	else if (!a && (a = json_object()) != NULL)
		walk_values(&w, path, 0, a, bv); /* the first step: everything is new */
	else if (a)
		walk_values(&w, path, 0, a, bv);
	if (bv && w.lines == 0)
		sb_puts(b, "<li class=\"mute\">no change</li>");
	sb_puts(b, "</ul>");
	json_decref(a);
	json_decref(bv);
}
