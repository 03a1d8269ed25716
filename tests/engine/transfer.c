/*
 * transfer.c - moving a deployment between stores: a populated SQLite
 * store (runs ended, paused half way, waiting for a signal with one
 * pending, a child, checkpoints, a schedule, cache entries, outbox events,
 * workflow versions) exported and imported into the store under test,
 * which must then export the same records, line for line; the paused run
 * resumes and completes there; and the bad files - cut short, corrupted,
 * conflicting - are refused at the bad line with everything before it
 * whole, an import repeated changes nothing, and --resume finishes one
 * that stopped.
 *
 * usage: transfer_tests TARGET_URL TMPDIR [FILTER]. Each case imports into
 * a target of its own: a fresh SQLite file, a fresh memory store, or a
 * fresh ?prefix= on a server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dura.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *g_target, *g_tmp;
static char g_src_url[1024];

/* ---- the source store ----------------------------------------------------------------- */

static int node(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_t *ran = json_object_get(state, "ran");
	if (!ran) {
		ran = json_array();
		json_object_set_new(state, "ran", ran);
	}
	json_array_append_new(ran, json_string(dura_ctx_node(ctx)));
	return 0;
}

static dura_workflow *linear(void)
{
	dura_workflow *wf = NULL;
	if (dura_workflow_new(&wf, "tr-linear") || dura_workflow_add_node(wf, "a", node, NULL, NULL) ||
	    dura_workflow_add_node(wf, "b", node, NULL, NULL) || dura_workflow_add_node(wf, "c", node, NULL, NULL) ||
	    dura_workflow_add_edge(wf, "a", "b") || dura_workflow_add_edge(wf, "b", "c") || dura_workflow_set_start(wf, "a") ||
	    dura_workflow_set_version(wf, "1")) {
		dura_workflow_free(wf);
		return NULL;
	}
	return wf;
}

static char g_paused[DURA_UUID_LEN + 1];

/* The source, once per program: a SQLite file with a bit of everything. */
static int populate(void)
{
	char path[900];
	snprintf(path, sizeof(path), "%s/transfer-source.db", g_tmp);
	unlink(path);
	snprintf(g_src_url, sizeof(g_src_url), "sqlite:%s", path);
	dura_store *s = NULL;
	dura_engine *eng = NULL;
	dura_engine_options eo = DURA_ENGINE_OPTIONS_INIT;
	eo.max_steps = 1;
	if (dura_store_open(&s, g_src_url, NULL) || dura_engine_open(&eng, s, &eo) || dura_engine_register(eng, linear()))
		return -1;
	char id[DURA_UUID_LEN + 1];
	/* ended runs, each of three steps */
	for (int i = 0; i < 5; i++) {
		char fid[32];
		snprintf(fid, sizeof(fid), "order-%d", i);
		if (dura_run_start(eng, "tr-linear", fid, "{\"i\":1}", NULL, id))
			return -1;
		for (int k = 0; k < 4; k++)
			if (dura_run_execute(eng, id, NULL))
				return -1;
	}
	/* one paused half way: at b */
	if (dura_run_start(eng, "tr-linear", "half", "{}", NULL, g_paused) || dura_run_execute(eng, g_paused, NULL) ||
	    dura_run_pause(eng, g_paused))
		return -1;
	if (dura_run_checkpoint(eng, g_paused, "tr-cp-1"))
		return -1;
	/* a run waiting on its inbox, with a pending signal, and a child of it */
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = "tr-inbox";
	req.status = "recv";
	dura_record *w = NULL;
	if (dura_store_create_run(s, &req, &w))
		return -1;
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = w->run_id;
	c.expect_version = w->version;
	c.node_id = "recv";
	c.state = "{\"waiting\":true}";
	c.status = "recv";
	c.wait = "signal:pay";
	c.next_run_at = INT64_C(253402300799000);
	dura_commit_result res;
	char sig[DURA_UUID_LEN + 1];
	if (dura_store_commit(s, &c, &res) || dura_store_signal_send(s, w->run_id, "other", "{\"n\":1}", sig))
		return -1;
	dura_run_create child = DURA_RUN_CREATE_INIT;
	child.workflow_name = "tr-child";
	child.parent_id = w->run_id;
	if (dura_store_create_run(s, &child, NULL))
		return -1;
	dura_record_free(w);
	/* a schedule, cache entries (one for ever, one for an hour, one binary) */
	dura_schedule_spec sp = DURA_SCHEDULE_SPEC_INIT;
	sp.name = "tr-nightly";
	sp.cron = "0 3 * * *";
	sp.workflow = "tr-linear";
	sp.state = "{\"nightly\":true}";
	if (dura_store_schedule_set(s, &sp))
		return -1;
	static const unsigned char bin[] = {0, 1, 2, 255, 254, '\n', 0};
	if (dura_store_cache_put(s, "tr:forever", "42", 2, NULL, "{\"unit\":\"n\"}", 0) ||
	    dura_store_cache_put(s, "tr:hour", "{\"x\":1}", 7, NULL, NULL, 3600000) ||
	    dura_store_cache_put(s, "tr:bin", bin, sizeof(bin), "it failed once", NULL, 3600000))
		return -1;
	dura_engine_close(eng);
	dura_store_close(s);
	return 0;
}

/* ---- exports in memory --------------------------------------------------------------- */

typedef struct lines {
	char **v;
	size_t n, cap;
} lines;

static int keep(const char *line, size_t len, void *payload)
{
	lines *l = payload;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = strndup(line, len);
	return 0;
}

static void lines_free(lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int export_all(dura_store *s, lines *out)
{
	memset(out, 0, sizeof(*out));
	return dura_export(s, NULL, keep, out, NULL);
}

static int import_lines(dura_store *s, const lines *in, size_t upto, int resume, dura_transfer_stats *st)
{
	dura_import_options o = DURA_IMPORT_OPTIONS_INIT;
	o.resume = resume;
	dura_importer *im = NULL;
	int rc = dura_import_new(&im, s, &o);
	for (size_t i = 0; rc == 0 && i < in->n && i < upto; i++)
		rc = dura_import_line(im, in->v[i], strlen(in->v[i]));
	if (rc == 0)
		rc = dura_import_finish(im);
	dura_import_stats(im, st);
	dura_import_free(im);
	return rc;
}

/* Two lines say the same: the same JSON, but a cache entry's expiry may
 * move by the milliseconds the move took. */
static int same_line(const char *a, const char *b)
{
	json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
	int same = 0;
	if (x && y) {
		const char *k = json_string_value(json_object_get(x, "kind"));
		if (k && strcmp(k, "cache") == 0) {
			json_int_t ex = json_integer_value(json_object_get(x, "expires_at"));
			json_int_t ey = json_integer_value(json_object_get(y, "expires_at"));
			if (ex && ey && llabs((long long)(ex - ey)) < 60000) {
				json_object_del(x, "expires_at");
				json_object_del(y, "expires_at");
			}
			json_object_del(x, "created_at");
			json_object_del(y, "created_at");
		}
		same = json_equal(x, y);
	}
	json_decref(x);
	json_decref(y);
	return same;
}

/* The two exports hold the same records, the header aside. */
static int same_records(const lines *a, const lines *b)
{
	if (a->n != b->n) {
		fprintf(stderr, "    %zu lines, then %zu\n", a->n, b->n);
		return 0;
	}
	for (size_t i = 1; i < a->n; i++)
		if (!same_line(a->v[i], b->v[i])) {
			fprintf(stderr, "    line %zu differs:\n      %.300s\n      %.300s\n", i + 1, a->v[i], b->v[i]);
			return 0;
		}
	return 1;
}

/* A target of its own for each case. */
static int target_open(const char *tag, dura_store **out)
{
	char url[2048], u[DURA_UUID_LEN + 1];
	dura_uuid7(u);
	if (strncmp(g_target, "sqlite:", 7) == 0) {
		snprintf(url, sizeof(url), "sqlite:%s/transfer-%s-%.8s%s.db", g_tmp, tag, u + 28, u + 9);
	} else if (strncmp(g_target, "memory:", 7) == 0) {
		snprintf(url, sizeof(url), "memory:");
	} else {
		/* a prefix of its own: tr<tag><8 hex>_ */
		char pfx[32];
		snprintf(pfx, sizeof(pfx), "tr%.6s%.4s%.4s_", tag, u + 24, u + 32);
		for (char *p = pfx; *p; p++)
			if (*p == '-')
				*p = '_';
		snprintf(url, sizeof(url), "%s%sprefix=%s", g_target, strchr(g_target, '?') ? "&" : "?", pfx);
	}
	return dura_store_open(out, url, NULL);
}

static void source(lines *out)
{
	dura_store *s = NULL;
	REQUIRE(dura_store_open(&s, g_src_url, NULL) == 0);
	REQUIRE(export_all(s, out) == 0);
	dura_store_close(s);
}

/* ---- the cases ------------------------------------------------------------------------ */

static void moved_record_for_record(void)
{
	lines src, dst;
	source(&src);
	CHECK(src.n > 20);
	dura_store *t = NULL;
	REQUIRE(target_open("all", &t) == 0);
	dura_transfer_stats st;
	REQUIRE(import_lines(t, &src, src.n, 0, &st) == 0);
	CHECK(st.runs == 8 && st.steps == 17 && st.checkpoints == 1 && st.signals == 1 && st.schedules == 1 &&
	      st.cache_entries == 3 && st.workflows == 1 && st.events > 0 && st.unchanged == 0);
	REQUIRE(export_all(t, &dst) == 0);
	CHECK(same_records(&src, &dst));
	lines_free(&dst);

	/* again: nothing changes */
	REQUIRE(import_lines(t, &src, src.n, 0, &st) == 0);
	CHECK(st.runs == 0 && st.events == 0 && st.cache_entries == 0 && st.unchanged == (int64_t)src.n - 2 - 17 - 1 - 1);
	REQUIRE(export_all(t, &dst) == 0);
	CHECK(same_records(&src, &dst));
	lines_free(&dst);
	dura_store_close(t);
	lines_free(&src);
}

/* The run paused half way on SQLite resumes and completes on the target. */
static void paused_run_completes_there(void)
{
	lines src;
	source(&src);
	dura_store *t = NULL;
	dura_engine *eng = NULL;
	REQUIRE(target_open("paused", &t) == 0);
	dura_transfer_stats st;
	REQUIRE(import_lines(t, &src, src.n, 0, &st) == 0);
	REQUIRE(dura_engine_open(&eng, t, NULL) == 0);
	REQUIRE(dura_engine_register(eng, linear()) == 0);
	REQUIRE(dura_run_resume(eng, g_paused) == 0);
	dura_record *r = NULL;
	REQUIRE(dura_run_execute(eng, g_paused, &r) == 0);
	CHECK(r->run_state == DURA_RUN_COMPLETED && r->step_no == 3);
	json_t *state = json_loads(r->state, 0, NULL), *ran = json_object_get(state, "ran");
	CHECK(json_array_size(ran) == 3 && strcmp(json_string_value(json_array_get(ran, 2)), "c") == 0);
	json_decref(state);
	dura_record_free(r);
	dura_step_list h;
	REQUIRE(dura_store_history(t, g_paused, 0, 0, &h) == 0);
	CHECK(h.count == 3);
	dura_step_list_free(&h);
	/* its checkpoint came along, and forks there */
	char fork_id[DURA_UUID_LEN + 1];
	CHECK(dura_run_fork(eng, g_paused, "tr-cp-1", 0, fork_id) == 0);
	dura_engine_close(eng);
	dura_store_close(t);
	lines_free(&src);
}

/* Count the runs of the target and check each is whole: as many steps as step_no. */
static int whole_runs(dura_store *t, int *whole)
{
	dura_record_list l;
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.limit = 1000;
	*whole = 1;
	if (dura_store_list_runs(t, &f, &l) != 0)
		return -1;
	for (size_t i = 0; i < l.count; i++) {
		dura_step_list h;
		if (dura_store_history(t, l.items[i].run_id, 0, 0, &h) != 0 || (int64_t)h.count != l.items[i].step_no)
			*whole = 0;
		dura_step_list_free(&h);
	}
	int n = (int)l.count;
	dura_record_list_free(&l);
	return n;
}

/* The index of the first line of the kind after line `from`. */
static size_t line_of(const lines *l, const char *kind, size_t from)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "{\"kind\":\"%s\"", kind);
	for (size_t i = from; i < l->n; i++)
		if (strncmp(l->v[i], pat, strlen(pat)) == 0)
			return i;
	return l->n;
}

/* The first run line of a run of three steps, and how many runs come before it. */
static size_t three_step_run(const lines *l, int *before)
{
	*before = 0;
	for (size_t i = line_of(l, "run", 0); i < l->n; i = line_of(l, "run", i + 1)) {
		if (strstr(l->v[i], "\"steps\":3,"))
			return i;
		++*before;
	}
	return l->n;
}

static void cut_short_then_resumed(void)
{
	lines src, dst;
	source(&src);
	/* cut in the middle of the second step line of a run of three steps */
	int before = 0;
	size_t r2 = three_step_run(&src, &before), s2 = r2 + 2;
	REQUIRE(s2 < src.n && strncmp(src.v[s2], "{\"kind\":\"step\"", 14) == 0);
	lines cut = {0};
	for (size_t i = 0; i < s2; i++)
		keep(src.v[i], strlen(src.v[i]), &cut);
	keep(src.v[s2], strlen(src.v[s2]) / 2, &cut);
	dura_store *t = NULL;
	REQUIRE(target_open("cut", &t) == 0);
	dura_transfer_stats st;
	CHECK(import_lines(t, &cut, cut.n, 0, &st) == DURA_EINVAL);
	CHECK(st.line == (int64_t)s2 + 1);
	char want[32];
	snprintf(want, sizeof(want), "line %zu:", s2 + 1);
	CHECK(strstr(dura_error_last()->message, want) != NULL);
	/* the runs before it whole, it not at all */
	int whole = 0;
	CHECK(whole_runs(t, &whole) == before && whole);
	/* without the last line: the file ends inside a run */
	CHECK(import_lines(t, &cut, cut.n - 1, 0, &st) == DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "ends inside a run") != NULL);
	CHECK(whole_runs(t, &whole) == before && whole);
	/* cut right after a whole run: no end line */
	CHECK(import_lines(t, &src, r2, 0, &st) == DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "end line") != NULL);
	/* the whole file, resumed: what was there is skipped, the rest goes in */
	REQUIRE(import_lines(t, &src, src.n, 1, &st) == 0);
	CHECK(st.unchanged >= 1);
	REQUIRE(export_all(t, &dst) == 0);
	CHECK(same_records(&src, &dst));
	lines_free(&dst);
	lines_free(&cut);
	dura_store_close(t);
	lines_free(&src);
}

static void bad_lines_refused(void)
{
	lines src;
	source(&src);
	int before = 0;
	/* a corrupted line: a run's step line no longer JSON */
	size_t bad = three_step_run(&src, &before) + 1;
	REQUIRE(bad < src.n && strncmp(src.v[bad], "{\"kind\":\"step\"", 14) == 0);
	char *keep_line = src.v[bad];
	src.v[bad] = strdup("{\"kind\":\"step\",\"run_id\":\"x\x01\"");
	dura_store *t = NULL;
	REQUIRE(target_open("bad", &t) == 0);
	dura_transfer_stats st;
	CHECK(import_lines(t, &src, src.n, 0, &st) == DURA_EINVAL && st.line == (int64_t)bad + 1);
	int whole = 0;
	CHECK(whole_runs(t, &whole) == before && whole);
	free(src.v[bad]);
	/* a step of another run inside a run */
	src.v[bad] = strdup(keep_line);
	char *p = strstr(src.v[bad], "\"run_id\":\"");
	REQUIRE(p != NULL);
	p[10] = p[10] == '0' ? '1' : '0';
	CHECK(import_lines(t, &src, src.n, 0, &st) == DURA_EINVAL && st.line == (int64_t)bad + 1);
	CHECK(strstr(dura_error_last()->message, "another run") != NULL);
	free(src.v[bad]);
	src.v[bad] = keep_line;
	/* not an export at all, and a format from the future */
	lines other = {0};
	keep("{\"kind\":\"run\"}", 14, &other);
	CHECK(import_lines(t, &other, 1, 0, &st) == DURA_EINVAL && st.line == 1);
	free(other.v[0]);
	other.v[0] = strdup("{\"kind\":\"dura-export\",\"format\":99}");
	CHECK(import_lines(t, &other, 1, 0, &st) == DURA_EVERSION);
	lines_free(&other);
	/* the end line's count wrong */
	char *end = src.v[src.n - 1];
	src.v[src.n - 1] = strdup("{\"kind\":\"end\",\"records\":3}");
	CHECK(import_lines(t, &src, src.n, 0, &st) == DURA_EINVAL && st.line == (int64_t)src.n);
	free(src.v[src.n - 1]);
	src.v[src.n - 1] = end;
	dura_store_close(t);
	lines_free(&src);
}

/* A record there already and different is refused, with its line. */
static void conflict_refused(void)
{
	lines src;
	source(&src);
	dura_store *t = NULL;
	REQUIRE(target_open("conflict", &t) == 0);
	dura_transfer_stats st;
	REQUIRE(import_lines(t, &src, src.n, 0, &st) == 0);
	/* the paused run moves on in the target */
	dura_record *r = NULL;
	REQUIRE(dura_store_get_run(t, g_paused, &r) == 0);
	REQUIRE(dura_store_set_run_state(t, g_paused, DURA_RUN_RUNNING, NULL) == 0);
	dura_record_free(r);
	size_t at = 0;
	for (size_t i = 0; i < src.n; i++)
		if (strstr(src.v[i], g_paused) && strncmp(src.v[i], "{\"kind\":\"run\"", 13) == 0)
			at = i;
	REQUIRE(at > 0);
	CHECK(import_lines(t, &src, src.n, 0, &st) == DURA_ECONFLICT);
	CHECK(st.line >= (int64_t)at + 1);
	CHECK(strstr(dura_error_last()->message, g_paused) != NULL && strstr(dura_error_last()->message, "differs"));
	/* with --resume it is skipped by its id */
	CHECK(import_lines(t, &src, src.n, 1, &st) == 0);
	dura_store_close(t);
	lines_free(&src);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: transfer_tests TARGET_URL TMPDIR [FILTER]\n");
		return 2;
	}
	g_target = argv[1];
	g_tmp = argv[2];
	if (populate() != 0) {
		fprintf(stderr, "transfer_tests: making the source store: %s\n",
		        dura_error_last() ? dura_error_last()->message : "?");
		return 1;
	}
	static const test_case tests[] = {
		{"moved_record_for_record", moved_record_for_record},
		{"paused_run_completes_there", paused_run_completes_there},
		{"cut_short_then_resumed", cut_short_then_resumed},
		{"bad_lines_refused", bad_lines_refused},
		{"conflict_refused", conflict_refused},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "transfer %.*s", (int)strcspn(g_target, ":"), g_target);
	return test_run_all(suite, tests, TEST_COUNT(tests), argc > 3 ? argv[3] : NULL);
}
