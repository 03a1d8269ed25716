/*
 * conformance_misc.c - lifecycle (info, ping, stats, migrate, reopen),
 * exec_sql, bad input, and passwords kept out of error messages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

STORE_TEST(store_info)
{
	dura_store_info info;
	memset(&info, 0, sizeof info);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, g_scheme);
	CHECK(info.location != NULL);
	CHECK(info.server_version != NULL);
	CHECK(info.notes != NULL);
	CHECK(info.library_schema_version > 0);
	CHECK(info.schema_version == info.library_schema_version);
	if (conf_is_volatile()) {
		CHECK(!(info.caps & DURA_CAP_DURABLE));
		CHECK(!(info.caps & DURA_CAP_MULTI_PROCESS));
	} else {
		CHECK(info.caps & DURA_CAP_DURABLE);
	}
	/* the location never shows the password */
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	if (u->password && u->password[0])
		CHECK(info.location && strstr(info.location, u->password) == NULL);
	dura_url_free(u);

	/* exec_sql is there exactly when DURA_CAP_SQL says so */
	if (!(info.caps & DURA_CAP_SQL)) {
		CHECK_RC(dura_store_exec_sql(s, "SELECT 1", NULL, NULL), DURA_ENOTSUP);
		CHECK(conf_error_ok(DURA_ENOTSUP));
	}
}

STORE_TEST(store_ping_stats)
{
	CHECK_RC(dura_store_ping(s), 0);
	REQUIRE_RC(conf_create(s, "conf-ping", NULL, NULL, NULL), 0);
	dura_store_stats st;
	memset(&st, 0, sizeof st);
	REQUIRE_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.open >= 0 && st.idle >= 0 && st.in_use >= 0);
	CHECK(st.idle <= st.open && st.in_use <= st.open);
	if (!conf_is_memory()) {
		CHECK(st.open >= 1);
		CHECK(st.max_open >= st.open);
	}
	CHECK(st.in_use == 0); /* nothing is running now */
}

/* pool_max bounds the connections, also under load from many threads. */
struct pool_arg {
	dura_store *s;
	const char *run_id;
	int errors;
};

static void *pool_thread(void *p)
{
	struct pool_arg *a = p;
	for (int i = 0; i < 30; i++) {
		dura_record *r = NULL;
		int rc = dura_store_get_run(a->s, a->run_id, &r);
		if (rc != 0 && rc != DURA_EBUSY)
			a->errors++;
		dura_record_free(r);
	}
	return NULL;
}

static void store_pool_max(void)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%spool_max=2", g_url, strchr(g_url, '?') ? "&" : "?");
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	if (!(conf_caps(s) & DURA_CAP_DURABLE)) {
		dura_store_close(s);
		SKIP("store lacks DURA_CAP_DURABLE (an in-process store has no connection pool)");
	}
	dura_record *r = NULL;
	int rc = conf_create(s, "conf-pool", NULL, NULL, &r);
	if (rc != 0) {
		dura_store_close(s);
		REQUIRE_RC(rc, 0);
	}
	enum { N = 6 };
	pthread_t th[N];
	struct pool_arg args[N];
	int started = 0;
	for (int i = 0; i < N; i++) {
		args[i] = (struct pool_arg){s, r->run_id, 0};
		if (pthread_create(&th[i], NULL, pool_thread, &args[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	CHECK(started == N);
	for (int i = 0; i < started; i++)
		CHECK(args[i].errors == 0);
	dura_store_stats st;
	memset(&st, 0, sizeof st);
	CHECK_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.max_open == 2);
	CHECK(st.open >= 1 && st.open <= 2);
	CHECK(st.in_use == 0);
	dura_record_free(r);
	dura_store_close(s);
}

STORE_TEST(store_migrate)
{
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	int from = -1, to = -1;
	REQUIRE_RC(dura_store_migrate(s, &from, &to), 0);
	CHECK(from == info.library_schema_version);
	CHECK(to == info.library_schema_version);
	from = to = -1;
	REQUIRE_RC(dura_store_migrate(s, &from, &to), 0);
	CHECK(from == to);
	CHECK(to == info.library_schema_version);
	CHECK_RC(dura_store_migrate(s, NULL, NULL), 0);
	/* still usable */
	CHECK_RC(conf_create(s, "conf-migrate", NULL, NULL, NULL), 0);
}

/* A durable store keeps everything across close and reopen, and opens
 * without auto-migration once migrated. */
static void store_reopen(void)
{
	dura_store *s = conf_open();
	REQUIRE(s != NULL);
	if (!(conf_caps(s) & DURA_CAP_DURABLE)) {
		dura_store_close(s);
		SKIP("store lacks DURA_CAP_DURABLE");
	}
	char wf[96], key[96];
	conf_name(wf, sizeof wf, "conf-reopen");
	conf_name(key, sizeof key, "conf:reopen");
	dura_record *r = NULL;
	int rc = conf_create(s, wf, "fid", "{\"a\":1}", &r);
	if (rc == 0)
		rc = conf_commit_n(s, r->run_id, 3, "n");
	if (rc == 0)
		rc = dura_store_cache_put(s, key, "v\0w", 3, NULL, NULL, 0);
	dura_store_close(s);
	if (rc != 0)
		dura_record_free(r);
	REQUIRE_RC(rc, 0);

	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	s = NULL;
	rc = dura_store_open(&s, g_url, &opts);
	CHECK_RC(rc, 0);
	if (rc == 0) {
		dura_record *got = NULL;
		CHECK_RC(dura_store_latest_run(s, wf, "fid", &got), 0);
		if (got) {
			CHECK_STR(got->run_id, r->run_id);
			CHECK(got->step_no == 3);
			CHECK(got->version == r->version + 3);
			dura_record_free(got);
		}
		CHECK(conf_history_count(s, r->run_id) == 3);
		dura_cache_entry *e = NULL;
		CHECK_RC(dura_store_cache_get(s, key, &e), 0);
		if (e) {
			CHECK(e->value_len == 3 && memcmp(e->value, "v\0w", 3) == 0);
			dura_cache_entry_free(e);
		}
		dura_store_cache_delete(s, key);
		dura_store_close(s);
	}
	dura_record_free(r);
}

/* exec_sql: the reference documents' history query runs as printed. */
struct rows {
	int n;
	int bad;
	char node[8][32];
	long step[8];
};

static int collect(int ncols, char **values, char **names, void *payload)
{
	struct rows *r = payload;
	if (ncols != 4 || !names || strcmp(names[0], "run_id") != 0 || strcmp(names[1], "step") != 0 ||
	    strcmp(names[2], "node_id") != 0 || strcmp(names[3], "created_at") != 0 || !values[0] || !values[1] ||
	    !values[2] || !values[3])
		r->bad++;
	if (r->n < 8 && ncols >= 3 && values[1] && values[2]) {
		r->step[r->n] = strtol(values[1], NULL, 10);
		snprintf(r->node[r->n], sizeof r->node[r->n], "%s", values[2]);
	}
	r->n++;
	return 0;
}

static int stop_after_one(int ncols, char **values, char **names, void *payload)
{
	(void)ncols;
	(void)values;
	(void)names;
	(*(int *)payload)++;
	return 1;
}

static int count_rows(int ncols, char **values, char **names, void *payload)
{
	(void)ncols;
	(void)values;
	(void)names;
	(*(int *)payload)++;
	return 0;
}

STORE_TEST(store_exec_sql)
{
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	if (!(info.caps & DURA_CAP_SQL))
		SKIP("store lacks DURA_CAP_SQL");
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	int prefixed = u->prefix && u->prefix[0];
	dura_url_free(u);
	if (prefixed)
		SKIP("tables are prefixed");

	char wf[96];
	conf_name(wf, sizeof wf, "conf-sql");
	dura_record *r = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, NULL, &r), 0);
	char run_id[128];
	snprintf(run_id, sizeof run_id, "%s", r->run_id);
	dura_record_free(r);
	REQUIRE_RC(conf_commit_n(s, run_id, 3, "node-"), 0);

	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT run_id, step, node_id, created_at\nFROM workflow_steps\nWHERE run_id = '%s'\nORDER BY step;",
	         run_id);
	struct rows rows;
	memset(&rows, 0, sizeof rows);
	REQUIRE_RC(dura_store_exec_sql(s, sql, collect, &rows), 0);
	CHECK(rows.n == 3);
	CHECK(rows.bad == 0);
	for (int i = 0; i < rows.n && i < 3; i++) {
		char want[32];
		snprintf(want, sizeof want, "node-%d", i);
		CHECK(rows.step[i] == i);
		CHECK_STR(rows.node[i], want);
	}

	/* a callback returning non-zero stops the rows; that is a success */
	int seen = 0;
	CHECK_RC(dura_store_exec_sql(s, sql, stop_after_one, &seen), 0);
	CHECK(seen == 1);

	/* NULL callback: statements without rows */
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);

	/* bad SQL is an error with a message */
	int rc = dura_store_exec_sql(s, "SELEC nonsense FROM nowhere", NULL, NULL);
	CHECK(rc < 0);
	CHECK(conf_error_ok(rc));
}

/* ?prefix= puts a store's data in other tables or keys. */
static void store_prefix_isolation(void)
{
	if (conf_is_volatile())
		SKIP("store lacks DURA_CAP_DURABLE (every handle is a store of its own)");
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	int prefixed = u->prefix && u->prefix[0];
	dura_url_free(u);
	if (prefixed)
		SKIP("the store URL already has a prefix");
	char url[1024];
	snprintf(url, sizeof url, "%s%sprefix=conf_pfx_", g_url, strchr(g_url, '?') ? "&" : "?");
	dura_store *a = NULL, *b = NULL;
	REQUIRE_RC(dura_store_open(&a, url, NULL), 0);
	int rc = dura_store_open(&b, g_url, NULL);
	if (rc != 0)
		dura_store_close(a);
	REQUIRE_RC(rc, 0);

	char wf[96], key[96], cp[96];
	conf_name(wf, sizeof wf, "conf-prefix");
	conf_name(key, sizeof key, "conf:prefix");
	conf_name(cp, sizeof cp, "conf-prefix-cp");
	dura_record *r = NULL, *got = NULL;
	CHECK_RC(conf_create(a, wf, "fid", NULL, &r), 0);
	if (r) {
		CHECK_RC(dura_store_get_run(a, r->run_id, &got), 0);
		dura_record_free(got);
		got = NULL;
		CHECK_RC(dura_store_get_run(b, r->run_id, &got), DURA_ENOTFOUND);
		CHECK_RC(dura_store_latest_run(b, wf, "fid", &got), DURA_ENOTFOUND);
		/* the same foreign id in the other store is a different run */
		CHECK_RC(conf_create(b, wf, "fid", NULL, NULL), 0);
		CHECK_RC(dura_store_checkpoint_save(a, cp, r->run_id, 0, "{}"), 0);
		dura_checkpoint *c = NULL;
		CHECK_RC(dura_store_checkpoint_load(b, cp, &c), DURA_ENOTFOUND);
		CHECK_RC(dura_store_checkpoint_delete(a, cp), 0);
	}
	CHECK_RC(dura_store_cache_put(a, key, "x", 1, NULL, NULL, 0), 0);
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(b, key, &e), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_get(a, key, &e), 0);
	dura_cache_entry_free(e);
	dura_store_cache_delete(a, key);

	dura_store_info info;
	if (dura_store_info_get(a, &info) == 0 && (info.caps & DURA_CAP_SQL) && r) {
		char sql[512];
		snprintf(sql, sizeof sql, "SELECT run_id FROM conf_pfx_workflow_records WHERE run_id = '%s'", r->run_id);
		int rows = 0;
		CHECK_RC(dura_store_exec_sql(a, sql, count_rows, &rows), 0);
		CHECK(rows == 1);
	}
	dura_record_free(r);
	dura_store_close(a);
	dura_store_close(b);
}

/* ---- bad input ------------------------------------------------------------ */

#define CHECK_EINVAL(expr)                                   \
	do {                                                 \
		dura_error_clear();                          \
		CHECK_RC((expr), DURA_EINVAL);               \
		CHECK(conf_error_ok(DURA_EINVAL));           \
	} while (0)

static void no_run_of(dura_store *s, const char *wf)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	CHECK_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
}

STORE_TEST(bad_input_runs)
{
	char wf[96], long_id[301], max_id[DURA_MAX_ID_LEN + 1];
	conf_name(wf, sizeof wf, "conf-bad");
	memset(long_id, 'x', 300);
	long_id[300] = 0;
	dura_record *r = NULL;
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;

	/* NULL store and arguments */
	CHECK_EINVAL(dura_store_create_run(NULL, &req, &r));
	CHECK_EINVAL(dura_store_create_run(s, NULL, &r));
	CHECK_EINVAL(dura_store_get_run(NULL, "x", &r));
	CHECK_EINVAL(dura_store_get_run(s, NULL, &r));
	CHECK_EINVAL(dura_store_get_run(s, "x", NULL));
	CHECK_EINVAL(dura_store_latest_run(s, NULL, "f", &r));
	CHECK_EINVAL(dura_store_list_runs(s, NULL, NULL));
	CHECK_EINVAL(dura_store_set_run_state(NULL, "x", DURA_RUN_PAUSED, NULL));
	CHECK_EINVAL(dura_store_delete_run_data(s, NULL));
	CHECK_EINVAL(dura_store_ping(NULL));
	CHECK_EINVAL(dura_store_info_get(s, NULL));
	CHECK_EINVAL(dura_store_stats_get(NULL, NULL));
	CHECK(r == NULL);

	/* ids: empty, too long */
	CHECK_EINVAL(dura_store_get_run(s, "", &r));
	CHECK_EINVAL(dura_store_get_run(s, long_id, &r));
	CHECK_EINVAL(dura_store_set_run_state(s, "", DURA_RUN_PAUSED, NULL));
	CHECK_EINVAL(dura_store_set_run_state(s, long_id, DURA_RUN_PAUSED, NULL));
	req.run_id = "";
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.run_id = long_id;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.run_id = NULL;
	req.workflow_name = NULL;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.workflow_name = "";
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.workflow_name = long_id;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.workflow_name = wf;
	req.foreign_id = long_id;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.foreign_id = NULL;

	/* JSON */
	req.state = "{\"a\":";
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.state = "{'single':1}";
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.state = NULL;
	req.meta = "[1,2";
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.meta = NULL;

	/* run states */
	req.run_state = 99;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.run_state = -3;
	CHECK_EINVAL(dura_store_create_run(s, &req, &r));
	req.run_state = 0;
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.run_state = 99;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	CHECK_EINVAL(dura_store_list_runs(s, &f, &l));
	dura_record_list_free(&l);

	/* an options struct from the future */
	req.version = 999;
	CHECK_RC(dura_store_create_run(s, &req, &r), DURA_EVERSION);
	CHECK(conf_error_ok(DURA_EVERSION));
	req.version = DURA_RUN_CREATE_VERSION;

	CHECK(r == NULL);
	no_run_of(s, wf);

	/* the longest allowed id works */
	memset(max_id, 'm', DURA_MAX_ID_LEN);
	max_id[DURA_MAX_ID_LEN] = 0;
	char uid[DURA_UUID_LEN + 1];
	dura_uuid7(uid);
	memcpy(max_id, uid, DURA_UUID_LEN); /* unique on shared stores */
	req.run_id = max_id;
	REQUIRE_RC(dura_store_create_run(s, &req, &r), 0);
	CHECK_STR(r->run_id, max_id);
	dura_record_free(r);
	r = NULL;
	REQUIRE_RC(dura_store_get_run(s, max_id, &r), 0);
	CHECK(strlen(r->run_id) == DURA_MAX_ID_LEN);
	dura_record_free(r);
}

STORE_TEST(bad_input_steps)
{
	char wf[96], long_id[301];
	conf_name(wf, sizeof wf, "conf-bad-steps");
	memset(long_id, 'y', 300);
	long_id[300] = 0;
	dura_record *r = NULL;
	REQUIRE_RC(conf_create(s, wf, NULL, "{\"x\":1}", &r), 0);
	int64_t v = r->version;

	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = r->run_id;
	c.expect_version = v;
	c.node_id = "n";
	c.state = "{}";
	CHECK_EINVAL(dura_store_commit(NULL, &c, NULL));
	CHECK_EINVAL(dura_store_commit(s, NULL, NULL));
	c.run_id = "";
	CHECK_EINVAL(dura_store_commit(s, &c, NULL));
	c.run_id = long_id;
	CHECK_EINVAL(dura_store_commit(s, &c, NULL));
	c.run_id = r->run_id;
	c.state = "{\"x\":}";
	CHECK_EINVAL(dura_store_commit(s, &c, NULL));
	c.state = "{}";
	c.run_state = 42;
	CHECK_EINVAL(dura_store_commit(s, &c, NULL));
	c.run_state = 0;
	c.node_id = long_id;
	CHECK_EINVAL(dura_store_commit(s, &c, NULL));
	c.node_id = "n";
	CHECK_EINVAL(dura_store_commit_batch(s, NULL, 1, NULL));

	dura_step_list sl;
	memset(&sl, 0, sizeof sl);
	CHECK_EINVAL(dura_store_history(s, NULL, 0, 0, &sl));
	CHECK_EINVAL(dura_store_history(s, "", 0, 0, &sl));
	CHECK_EINVAL(dura_store_history(s, r->run_id, 0, 0, NULL));
	dura_step *st = NULL;
	CHECK_EINVAL(dura_store_get_step(s, long_id, 0, &st));
	CHECK_EINVAL(dura_store_load_latest(s, "", &st));
	CHECK_EINVAL(dura_store_outbox_poll(s, 10, NULL));
	CHECK_EINVAL(dura_store_outbox_ack(s, ""));

	/* checkpoints */
	CHECK_EINVAL(dura_store_checkpoint_save(s, "", r->run_id, 0, "{}"));
	CHECK_EINVAL(dura_store_checkpoint_save(s, long_id, r->run_id, 0, "{}"));
	CHECK_EINVAL(dura_store_checkpoint_save(s, "cp", r->run_id, 0, "nope"));
	CHECK_EINVAL(dura_store_checkpoint_save(s, "cp", NULL, 0, "{}"));
	dura_checkpoint *cp = NULL;
	CHECK_EINVAL(dura_store_checkpoint_load(s, NULL, &cp));
	CHECK_EINVAL(dura_store_checkpoint_delete(s, ""));

	/* nothing changed */
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, r->run_id, &got), 0);
	CHECK(got->version == v);
	CHECK(got->step_no == 0);
	CHECK(conf_json_same(got->state, "{\"x\":1}"));
	dura_record_free(got);
	CHECK(conf_history_count(s, r->run_id) == 0);
	CHECK(conf_events(s, r->run_id, "step", NULL) == 0);
	dura_record_free(r);
}

STORE_TEST(bad_input_cache_leases)
{
	char long_key[301], key[96];
	memset(long_key, 'k', 300);
	long_key[300] = 0;
	conf_name(key, sizeof key, "conf:bad");
	dura_cache_entry *e = NULL;
	CHECK_EINVAL(dura_store_cache_put(NULL, key, "v", 1, NULL, NULL, 0));
	CHECK_EINVAL(dura_store_cache_put(s, NULL, "v", 1, NULL, NULL, 0));
	CHECK_EINVAL(dura_store_cache_put(s, "", "v", 1, NULL, NULL, 0));
	CHECK_EINVAL(dura_store_cache_put(s, long_key, "v", 1, NULL, NULL, 0));
	CHECK_EINVAL(dura_store_cache_put(s, key, NULL, 5, NULL, NULL, 0));
	CHECK_EINVAL(dura_store_cache_put(s, key, "v", 1, NULL, "{bad json", 0));
	CHECK_EINVAL(dura_store_cache_get(s, "", &e));
	CHECK_EINVAL(dura_store_cache_get(s, key, NULL));
	CHECK_EINVAL(dura_store_cache_claim(s, key, "", 1000));
	CHECK_EINVAL(dura_store_cache_claim(s, key, NULL, 1000));
	CHECK_EINVAL(dura_store_cache_claim(s, long_key, "o", 1000));
	CHECK_EINVAL(dura_store_cache_release(s, key, NULL));
	CHECK_EINVAL(dura_store_cache_delete(s, ""));
	CHECK_EINVAL(dura_store_cache_list(s, NULL, 10, NULL));
	CHECK_EINVAL(dura_store_cache_stats(s, NULL));
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND); /* nothing was written */

	dura_record_list l;
	memset(&l, 0, sizeof l);
	const char *wfs[1] = {"conf-bad-lease"};
	CHECK_EINVAL(dura_store_claim_runs(NULL, "o", wfs, 1, 1, 1000, &l));
	CHECK_EINVAL(dura_store_claim_runs(s, NULL, wfs, 1, 1, 1000, &l));
	CHECK_EINVAL(dura_store_claim_runs(s, "", wfs, 1, 1, 1000, &l));
	CHECK_EINVAL(dura_store_claim_runs(s, "o", wfs, 1, 1, 1000, NULL));
	CHECK_EINVAL(dura_store_extend_lease(s, "", "o", 1000));
	CHECK_EINVAL(dura_store_extend_lease(s, "x", "", 1000));
	CHECK_EINVAL(dura_store_release_lease(s, "x", NULL));
}

/* Append a query parameter to the store URL. */
static void url_with(char *out, size_t size, const char *param)
{
	snprintf(out, size, "%s%s%s", g_url, strchr(g_url, '?') ? "&" : "?", param);
}

static void bad_input_open(void)
{
	char url[1024];
	dura_store *s = NULL;
	url_with(url, sizeof url, "prefix=a;drop");
	CHECK_EINVAL(dura_store_open(&s, url, NULL));
	CHECK(s == NULL);
	url_with(url, sizeof url, "prefix=a%3Bdrop");
	CHECK_EINVAL(dura_store_open(&s, url, NULL));
	url_with(url, sizeof url, "prefix=x'--");
	CHECK_EINVAL(dura_store_open(&s, url, NULL));
	url_with(url, sizeof url, "prefix=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK_EINVAL(dura_store_open(&s, url, NULL));
	url_with(url, sizeof url, "pool_max=lots");
	CHECK_EINVAL(dura_store_open(&s, url, NULL));
	CHECK(s == NULL);
	CHECK_EINVAL(dura_store_open(NULL, g_url, NULL));
	CHECK_EINVAL(dura_store_open(&s, NULL, NULL));
	CHECK_EINVAL(dura_store_open(&s, "", NULL));
	/* a scheme no store serves (none built in, none registered) is
	 * DURA_ENOTSUP naming it; a URL without a scheme is malformed */
	int rc = dura_store_open(&s, "nosuchscheme://host/db", NULL);
	CHECK_RC(rc, DURA_ENOTSUP);
	CHECK(conf_error_ok(DURA_ENOTSUP));
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && strstr(e->message, "nosuchscheme") != NULL);
	CHECK(s == NULL);
	CHECK_RC(dura_store_open(&s, "nosuchscheme:whatever", NULL), DURA_ENOTSUP);
	CHECK_EINVAL(dura_store_open(&s, "no scheme here", NULL));
	CHECK_EINVAL(dura_store_open(&s, "9bad://host/db", NULL));
	CHECK(s == NULL);
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.version = 999;
	rc = dura_store_open(&s, g_url, &opts);
	CHECK_RC(rc, DURA_EVERSION);
	CHECK(conf_error_ok(DURA_EVERSION));
	if (rc == 0)
		dura_store_close(s);
	dura_store_close(NULL); /* ignored */
}

/* Error messages never contain a password. */
static void secrets_not_in_errors(void)
{
	static const char *urls[] = {
		"mysql://u:SECRETMARKER123@127.0.0.1:1/db?connect_timeout=1",
		"mariadb://u:SECRETMARKER123@127.0.0.1:1/db?connect_timeout=1",
		"u:SECRETMARKER123@tcp(127.0.0.1:1)/db?parseTime=true",
		"postgres://u:SECRETMARKER123@127.0.0.1:1/db?connect_timeout=1",
		"postgres://u:SECRETMARKER123@bad host/db",
		"postgres://u:SECRETMARKER123@127.0.0.1:notaport/db",
		"mysql://u:SECRETMARKER123@127.0.0.1:1/db?pool_max=oops",
		"redis://:SECRETMARKER123@127.0.0.1:1/0?connect_timeout=1",
		"rediss://u:SECRETMARKER123@127.0.0.1:1/0?connect_timeout=1",
		"mysql://u:SECRETMARKER123@127.0.0.1:1/db?prefix=a;drop",
		"nosuch://u:SECRETMARKER123@127.0.0.1:1/db",
	};
	for (size_t i = 0; i < TEST_COUNT(urls); i++) {
		dura_store *s = NULL;
		dura_error_clear();
		int rc = dura_store_open(&s, urls[i], NULL);
		CHECK(rc < 0);
		if (rc == 0) {
			dura_store_close(s);
			continue;
		}
		const dura_error *e = dura_error_last();
		CHECK(e != NULL && e->message != NULL && e->message[0] != 0);
		if (e && e->message && strstr(e->message, "SECRETMARKER123")) {
			fprintf(stderr, "    url #%zu: message shows the password\n", i);
			test__failed_now = 1;
		}
		if (e && e->sqlstate)
			CHECK(strstr(e->sqlstate, "SECRETMARKER123") == NULL);
		/* the parsed URL's redacted form hides it too */
		dura_url *u = NULL;
		if (dura_url_parse(&u, urls[i]) == 0) {
			CHECK(strstr(u->redacted, "SECRETMARKER123") == NULL);
			if (u->password && u->password[0])
				CHECK(strstr(u->redacted, "***") != NULL);
			dura_url_free(u);
		} else {
			const dura_error *pe = dura_error_last();
			CHECK(pe && pe->message && strstr(pe->message, "SECRETMARKER123") == NULL);
		}
	}
}

/* A JSON object of exactly n bytes (n >= 10) into a new buffer. */
static char *json_of_size(size_t n)
{
	char *j = malloc(n + 1);
	if (!j)
		return NULL;
	memcpy(j, "{\"b\":\"", 6);
	memset(j + 6, 'x', n - 8);
	memcpy(j + n - 2, "\"}", 3);
	return j;
}

/* 1 when the last error is DURA_EINVAL and its message names both sizes. */
static int names_sizes(const char *a, const char *b)
{
	const dura_error *e = dura_error_last();
	int ok = e && e->code == DURA_EINVAL && e->message && strstr(e->message, a) && strstr(e->message, b);
	if (!ok)
		fprintf(stderr, "    wanted DURA_EINVAL naming %s and %s, got: %s\n", a, b, e && e->message ? e->message : "-");
	return ok;
}

/*
 * The size limits are the same on every store: the defaults, the URL's
 * max_state and max_value, and a write over one refused with DURA_EINVAL
 * naming both sizes, having written nothing.
 */
static void store_size_limits(void)
{
	dura_store *d = conf_open();
	REQUIRE(d != NULL);
	size_t ms = 0, mv = 0;
	CHECK_RC(dura_store_limits_get(d, &ms, &mv), 0);
	CHECK(ms == DURA_DEFAULT_MAX_STATE_BYTES);
	CHECK(mv == DURA_DEFAULT_MAX_VALUE_BYTES);
	dura_store_close(d);

	char url[1200];
	const char *sep = strchr(g_url, '?') ? "&" : "?";
	static const char *const bad[] = {"max_state=0", "max_state=abc", "max_value=1000000001", "max_value=-5"};
	for (size_t i = 0; i < TEST_COUNT(bad); i++) {
		snprintf(url, sizeof url, "%s%s%s", g_url, sep, bad[i]);
		d = NULL;
		CHECK_RC(dura_store_open(&d, url, NULL), DURA_EINVAL);
		CHECK(d == NULL);
		dura_store_close(d);
	}

	snprintf(url, sizeof url, "%s%smax_state=2000&max_value=1000", g_url, sep);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	CHECK_RC(dura_store_limits_get(s, &ms, &mv), 0);
	CHECK(ms == 2000 && mv == 1000);
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "ignored option max_") == NULL); /* every store knows them */
	char *over = json_of_size(2001), *at = json_of_size(2000);
	char wf[96], key[128];
	conf_name(wf, sizeof wf, "conf-limits");
	dura_record *rec = NULL;
	if (!over || !at)
		goto out;
	CHECK_RC(conf_create(s, wf, NULL, over, &rec), DURA_EINVAL);
	CHECK(names_sizes("2001 bytes", "2000 bytes"));
	CHECK(rec == NULL);
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = wf;
	dura_record_list l;
	memset(&l, 0, sizeof l);
	CHECK_RC(dura_store_list_runs(s, &f, &l), 0);
	CHECK(l.count == 0); /* the refused run is not there */
	dura_record_list_free(&l);

	REQUIRE_RC(conf_create(s, wf, NULL, "{\"n\":1}", &rec), 0);
	dura_commit_result res;
	CHECK_RC(conf_commit(s, rec->run_id, rec->version, "big", over, 0, &res), DURA_EINVAL);
	CHECK(names_sizes("2001 bytes", "2000 bytes"));
	dura_commit batch[2] = {DURA_COMMIT_INIT, DURA_COMMIT_INIT};
	dura_commit_result bres[2];
	for (int i = 0; i < 2; i++) {
		batch[i].run_id = rec->run_id;
		batch[i].expect_version = rec->version;
		batch[i].node_id = "b";
		batch[i].flags = DURA_COMMIT_NO_EVENT;
	}
	batch[0].state = "{\"n\":2}";
	batch[1].state = over;
	CHECK_RC(dura_store_commit_batch(s, batch, 2, bres), DURA_EINVAL);
	CHECK(bres[0].code == DURA_EINVAL && bres[1].code == DURA_EINVAL);
	dura_record *now = NULL;
	CHECK_RC(dura_store_get_run(s, rec->run_id, &now), 0);
	if (now) {
		CHECK(now->version == rec->version); /* nothing was written */
		CHECK(now->step_no == 0);
		CHECK(conf_json_same(now->state, "{\"n\":1}"));
		dura_record_free(now);
	}
	CHECK(conf_history_count(s, rec->run_id) == 0);
	char cp[96];
	conf_name(cp, sizeof cp, "conf-limits-cp");
	CHECK_RC(dura_store_checkpoint_save(s, cp, rec->run_id, 0, over), DURA_EINVAL);
	CHECK(names_sizes("2001 bytes", "2000 bytes"));
	dura_checkpoint *ck = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &ck), DURA_ENOTFOUND);
	dura_checkpoint_free(ck);
	/* at the limit is allowed */
	CHECK_RC(conf_commit(s, rec->run_id, rec->version, "at", at, DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(conf_history_count(s, rec->run_id) == 1);

	conf_name(key, sizeof key, "conf-limits-key");
	unsigned char value[1001];
	memset(value, 'v', sizeof value);
	CHECK_RC(dura_store_cache_put(s, key, value, 1001, NULL, NULL, 60000), DURA_EINVAL);
	CHECK(names_sizes("1001 bytes", "1000 bytes"));
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	dura_cache_entry_free(e);
	e = NULL;
	CHECK_RC(dura_store_cache_put(s, key, value, 1000, NULL, NULL, 60000), 0);
	CHECK_RC(dura_store_cache_get(s, key, &e), 0);
	CHECK(e && e->value_len == 1000);
	dura_cache_entry_free(e);
	dura_store_cache_delete(s, key);
	conf_ack_run_events(s, rec->run_id);
out:
	dura_record_free(rec);
	free(over);
	free(at);
	dura_store_close(s);
}

const test_case conf_misc_tests[] = {
	{"store_info", store_info},
	{"store_ping_stats", store_ping_stats},
	{"store_pool_max", store_pool_max},
	{"store_migrate", store_migrate},
	{"store_reopen", store_reopen},
	{"store_exec_sql", store_exec_sql},
	{"store_prefix_isolation", store_prefix_isolation},
	{"bad_input_runs", bad_input_runs},
	{"bad_input_steps", bad_input_steps},
	{"bad_input_cache_leases", bad_input_cache_leases},
	{"bad_input_open", bad_input_open},
	{"secrets_not_in_errors", secrets_not_in_errors},
	{"store_size_limits", store_size_limits},
};
const size_t conf_misc_ntests = TEST_COUNT(conf_misc_tests);
