/*
 * mysql_extra.c - what only the MySQL/MariaDB store promises, on the
 * throwaway server of tests/servers: clear connect errors without the
 * password (wrong password, unknown database, nothing listening), an
 * application user with only SELECT/INSERT/UPDATE/DELETE runs workflows
 * but cannot create the schema, a value larger than max_allowed_packet
 * fails with both sizes and writes nothing, the Go driver's DSN form, the
 * reference documents' SQL as printed, TLS, a newer schema, and
 * operations surviving connections the server killed.
 *
 * Usage: mysql_extra [FILTER]. The URLs come from the environment
 * (tests/servers start prints it): DURA_TEST_MYSQL_URL (a user with every
 * privilege on dura_*), DURA_TEST_MYSQL_APP_URL and
 * DURA_TEST_MYSQL_APP_EMPTY_URL (the limited user on dura_test and on the
 * empty dura_empty), DURA_TEST_MYSQL_TLS_CA (the server's CA, when TLS is on).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dura.h>
#include <dura/store.h>

#include "server_extra.h"
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_url, *g_app_url, *g_app_empty_url, *g_tls_ca;

/* ---- helpers -------------------------------------------------------------- */










/* Open the main store (migrating dura_test if needed). */
static dura_store *open_main(void)
{
	dura_store *s = NULL;
	if (dura_store_open(&s, g_url, NULL) != 0) {
		fprintf(stderr, "    cannot open %s: %s\n", "the main store", last_message());
		return NULL;
	}
	return s;
}



/* ---- connect errors --------------------------------------------------------- */

static void wrong_password(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char url[1024], pw[128];
	snprintf(pw, sizeof(pw), "Wrong%sPassword", u->password);
	snprintf(url, sizeof(url), "mysql://%s:%s@%s:%d/%s", u->user, pw, u->host, u->port, u->database);
	dura_url_free(u);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(s == NULL);
	CHECK(message_has("access denied"));
	CHECK(message_has("'dura'"));
	CHECK(strstr(last_message(), pw) == NULL);
	CHECK(dura_error_last() && dura_error_last()->native_code == 1045);
	CHECK_STR(dura_error_last()->store, "mysql");
}

static void unknown_database(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char url[1024];
	snprintf(url, sizeof(url), "mysql://%s:%s@%s:%d/dura_no_such_db_%d", u->user, u->password, u->host, u->port,
	         (int)getpid());
	dura_url_free(u);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_ENOTFOUND);
	CHECK(message_has("does not exist"));
	CHECK(message_has("CREATE DATABASE dura_no_such_db_"));
	CHECK(dura_error_last() && dura_error_last()->native_code == 1049);
}

static void nothing_listening(void)
{
	/* port 1: nothing listens there; connect_timeout bounds the wait
	 * (tests never assert a time) */
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, "mysql://u:SECRETpw99@127.0.0.1:1/db?connect_timeout=1s", NULL), DURA_EIO);
	CHECK(message_has("cannot connect"));
	CHECK(message_has("127.0.0.1:1"));
	CHECK(strstr(last_message(), "SECRETpw99") == NULL);
}

static void no_database_in_url(void)
{
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, "mysql://u:p@127.0.0.1:1/", NULL), DURA_EINVAL);
	CHECK(message_has("no database"));
	CHECK_RC(dura_store_open(&s, "mysql://u:p@127.0.0.1:1/db?tls=what-is-this", NULL), DURA_EINVAL);
	CHECK(message_has("tls"));
	CHECK_RC(dura_store_open(&s, "mysql://u:p@127.0.0.1:1/db?skip_locked=maybe", NULL), DURA_EINVAL);
	CHECK_RC(dura_store_open(&s, "mysql://u:p@127.0.0.1:1/db?readTimeout=soon", NULL), DURA_EINVAL);
}

/* ---- the server and the schema ---------------------------------------------- */

static void info_and_caps(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, "mysql");
	CHECK(strstr(info.server_version, "MariaDB") != NULL || strstr(info.server_version, "MySQL") != NULL);
	CHECK(info.caps & DURA_CAP_DURABLE);
	CHECK(info.caps & DURA_CAP_MULTI_PROCESS);
	CHECK(info.caps & DURA_CAP_SQL);
	CHECK(info.caps & DURA_CAP_JSON);
	if (strstr(info.server_version, "MariaDB 10.11") || strstr(info.server_version, "MariaDB 11")) {
		CHECK(info.caps & DURA_CAP_SKIP_LOCKED);
		CHECK(info.caps & DURA_CAP_RETURNING);
	}
	CHECK(strstr(info.location, "***") != NULL);
	dura_store_stats st;
	REQUIRE_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.max_open == 25); /* the documents' pool default */
	dura_store_close(s);

	/* skip_locked=0 is a choice that info reports */
	char url[1024];
	url_with(url, sizeof(url), g_url, "skip_locked=0&pool_max=3&pool_idle=1");
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "FOR UPDATE") != NULL);
	REQUIRE_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.max_open == 3);
	dura_store_close(s);
}

/* The tables are the documents', valid for MySQL: `key` quoted, VARCHAR keys,
 * DATETIME(3), and the one-active-run rule held by the database itself. */
static void schema_shape(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	char v[256];
	CHECK(sql_rows(s,
	               "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
	               "TABLE_NAME = 'step_cache' AND COLUMN_NAME = 'key'",
	               v, sizeof(v)) == 1);
	CHECK_STR(v, "varchar(255)");
	CHECK(sql_rows(s,
	               "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
	               "TABLE_NAME = 'workflow_records' AND COLUMN_NAME = 'created_at'",
	               v, sizeof(v)) == 1);
	CHECK_STR(v, "datetime");
	CHECK(sql_int(s, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME "
	                 "IN ('workflow_records', 'workflow_steps', 'workflow_checkpoints', 'workflow_outbox', "
	                 "'step_cache', 'step_cache_claims', 'dura_workers', 'dura_schema') AND ENGINE = 'InnoDB'") == 8);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(sql_int(s, "SELECT MAX(version) FROM dura_schema") == info.library_schema_version);
	CHECK(sql_int(s, "SELECT COUNT(*) FROM dura_schema") == info.library_schema_version);

	/* two active runs with one foreign id cannot exist, whoever writes */
	char wf[96], fid[96], sql[1024];
	unique(wf, sizeof(wf), "extra-active");
	unique(fid, sizeof(fid), "fid");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = fid;
	REQUIRE_RC(dura_store_create_run(s, &req, NULL), 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO workflow_records (run_id, workflow_name, foreign_id, run_state, object, created_at, "
	         "updated_at, version, error, next_run_at) VALUES ('by-hand-%s', '%s', '%s', 2, '{}', NOW(3), NOW(3), 1, '', "
	         "NOW(3))",
	         fid, wf, fid);
	CHECK(dura_store_exec_sql(s, sql, NULL, NULL) < 0);
	CHECK(message_has("one_active_run"));
	/* case and trailing spaces make other ids, as in every store */
	char upper[128];
	snprintf(upper, sizeof(upper), "%s ", fid);
	req.foreign_id = upper;
	CHECK_RC(dura_store_create_run(s, &req, NULL), 0);
	snprintf(upper, sizeof(upper), "FID%s", fid + 3);
	req.foreign_id = upper;
	CHECK_RC(dura_store_create_run(s, &req, NULL), 0);
	dura_store_close(s);
}

/* A schema written by a newer dura is refused, and nothing is written. */
static void newer_schema(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	char url[1024], prefix[32], sql[1024];
	snprintf(prefix, sizeof(prefix), "xnew%d_", (int)getpid());
	snprintf(sql, sizeof(sql), "prefix=%s", prefix);
	url_with(url, sizeof(url), g_url, sql);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO %sdura_schema (version, applied_at, description) VALUES (99, NOW(3), 'future')",
	         prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store *t = NULL;
	CHECK_RC(dura_store_open(&t, url, NULL), DURA_EVERSION);
	CHECK(message_has("newer"));
	int from = 0, to = 0;
	CHECK_RC(dura_store_migrate(s, &from, &to), DURA_EVERSION);
	CHECK(from == 99);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), DURA_OK);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %sdura_schema", prefix);
	CHECK(sql_int(s, sql) == info.library_schema_version + 1);
	snprintf(sql, sizeof(sql),
	         "DROP TABLE %sworkflow_records, %sworkflow_steps, %sworkflow_checkpoints, %sworkflow_outbox, "
	         "%sstep_cache, %sstep_cache_claims, %sdura_workers, %sdura_schema",
	         prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP PROCEDURE IF EXISTS %sdura_commit", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store_close(s);
}

/* A schema one migration behind is upgraded on open (or refused with
 * auto_migrate off); a table dropped under a running store is reported with
 * the way out. */
static void upgrade_and_missing_tables(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	char url[1024], prefix[32], sql[1024];
	snprintf(prefix, sizeof(prefix), "xup%d_", (int)getpid());
	snprintf(sql, sizeof(sql), "prefix=%s", prefix);
	url_with(url, sizeof(url), g_url, sql);
	dura_store *s = NULL, *t = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	int lib = info.library_schema_version;
	/* back to version 3, as an older dura left it: without the procedure
	 * of migration 4, the flow control of migration 5 and the worker
	 * registry of migration 6 */
	CHECK(lib >= 6);
	snprintf(sql, sizeof(sql), "DELETE FROM %sdura_schema WHERE version >= 4", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP PROCEDURE IF EXISTS %sdura_commit", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP TABLE %sdura_workers", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql),
	         "ALTER TABLE %sworkflow_records DROP INDEX by_claim_order, DROP INDEX by_lease_expires_at, "
	         "DROP COLUMN priority, DROP COLUMN concurrency_key",
	         prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP TABLE %sdura_flow", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	CHECK_RC(dura_store_open(&t, url, &opts), DURA_EVERSION);
	CHECK(message_has("older"));
	CHECK(message_has("dura init"));
	REQUIRE_RC(dura_store_open(&t, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(t, &info), 0);
	CHECK(info.schema_version == lib);
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = "
	         "'%sdura_commit'",
	         prefix);
	CHECK(sql_int(t, sql) == 1);
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	         "'%sdura_workers'",
	         prefix);
	CHECK(sql_int(t, sql) == 1);
	dura_worker_list wl;
	CHECK_RC(dura_store_list_workers(t, &wl), 0);
	dura_worker_list_free(&wl);
	char wf[96];
	unique(wf, sizeof(wf), "extra-upgrade");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(t, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(t, r->run_id, r->version, "a", "{}", 0, &res), 0);
	dura_store_close(t);

	/* a table dropped under the store */
	snprintf(sql, sizeof(sql), "DROP TABLE %sworkflow_steps", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	CHECK_RC(dura_store_history(s, r->run_id, 0, 0, &l), DURA_ENOTFOUND);
	CHECK(message_has("dura init"));
	dura_record_free(r);

	snprintf(sql, sizeof(sql),
	         "DROP TABLE %sworkflow_records, %sworkflow_checkpoints, %sworkflow_outbox, %sstep_cache, "
	         "%sstep_cache_claims, %sdura_workers, %sdura_schema",
	         prefix, prefix, prefix, prefix, prefix, prefix, prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP PROCEDURE IF EXISTS %sdura_commit", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store_close(s);
}

/* ---- the application user ---------------------------------------------------- */

/* SELECT, INSERT, UPDATE, DELETE are all a migrated database needs. */
static void app_user_runs_workflows(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL") || !need_env(g_app_url, "DURA_TEST_MYSQL_APP_URL"))
		return;
	dura_store *m = open_main(); /* dura_test is migrated */
	REQUIRE(m != NULL);
	dura_store_close(m);

	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, g_app_url, NULL), 0);
	char wf[96], key[96], cp[96];
	unique(wf, sizeof(wf), "extra-app");
	unique(key, sizeof(key), "extra:app");
	unique(cp, sizeof(cp), "extra-app-cp");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
	CHECK(res.step == 0);
	CHECK_RC(commit(s, r->run_id, res.new_version, "b", "{\"n\":2}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 1);
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	CHECK_RC(dura_store_history(s, r->run_id, 0, 0, &l), 0);
	CHECK(l.count == 2);
	dura_step_list_free(&l);
	CHECK_RC(dura_store_checkpoint_save(s, cp, r->run_id, 1, "{\"n\":2}"), 0);
	CHECK_RC(dura_store_checkpoint_delete(s, cp), 0);
	CHECK_RC(dura_store_cache_claim(s, key, "me", 60000), 0);
	CHECK_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 0), 0);
	CHECK_RC(dura_store_cache_delete(s, key), 0);
	const char *wfs[1] = {wf};
	dura_record_list rl;
	memset(&rl, 0, sizeof(rl));
	CHECK_RC(dura_store_claim_runs(s, "app-worker", wfs, 1, 5, 60000, &rl), 0);
	CHECK(rl.count == 1);
	dura_record_list_free(&rl);
	CHECK_RC(dura_store_release_lease(s, r->run_id, "app-worker"), 0);
	dura_event_list ev;
	memset(&ev, 0, sizeof(ev));
	CHECK_RC(dura_store_outbox_poll(s, 10, &ev), 0);
	dura_event_list_free(&ev);
	int from = -1, to = -1;
	CHECK_RC(dura_store_migrate(s, &from, &to), 0); /* nothing to do: no CREATE needed */
	CHECK(from == to && to > 0);
	dura_record_free(r);
	dura_store_close(s);
}

/* On an empty database the application user cannot create the schema, is
 * told why, and leaves nothing behind. */
static void app_user_cannot_migrate(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL") || !need_env(g_app_empty_url, "DURA_TEST_MYSQL_APP_EMPTY_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	/* make sure dura_empty is empty (the main user has every privilege on dura_*) */
	CHECK_RC(dura_store_exec_sql(m,
	                             "DROP TABLE IF EXISTS dura_empty.workflow_records, dura_empty.workflow_steps, "
	                             "dura_empty.workflow_checkpoints, dura_empty.workflow_outbox, dura_empty.step_cache, "
	                             "dura_empty.step_cache_claims, dura_empty.dura_workers, dura_empty.dura_schema",
	                             NULL, NULL),
	         0);
	dura_store *s = NULL;
	int rc = dura_store_open(&s, g_app_empty_url, NULL);
	CHECK(rc < 0);
	CHECK(s == NULL);
	CHECK(message_has("CREATE privilege"));
	CHECK(message_has("dura_app"));
	CHECK(message_has("dura init"));
	dura_url *u = NULL;
	if (dura_url_parse(&u, g_app_empty_url) == 0) {
		CHECK(strstr(last_message(), u->password) == NULL);
		dura_url_free(u);
	}
	/* without auto-migration: the tables are missing, run dura init */
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	CHECK_RC(dura_store_open(&s, g_app_empty_url, &opts), DURA_ENOTFOUND);
	CHECK(message_has("dura init"));
	CHECK(sql_int(m, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dura_empty'") == 0);
	dura_store_close(m);
}

/* Claims over more workflows than the indexed statement has slots, and more
 * runs than one lease UPDATE takes. */
static void claim_many(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	enum { WFS = 11, PER = 3 };
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	char names[WFS][96];
	const char *wfs[WFS];
	for (int i = 0; i < WFS; i++) {
		unique(names[i], sizeof(names[i]), "extra-many");
		wfs[i] = names[i];
		for (int k = 0; k < PER; k++)
			REQUIRE_RC(create_run(s, names[i], NULL), 0);
	}
	dura_record_list l;
	memset(&l, 0, sizeof(l));
	int64_t t0 = dura_now_ms();
	REQUIRE_RC(dura_store_claim_runs(s, "many", wfs, WFS, 1000, 60000, &l), 0);
	CHECK(l.count == WFS * PER);
	for (size_t i = 0; i < l.count; i++) {
		CHECK_STR(l.items[i].lease_owner, "many");
		CHECK(l.items[i].version == 2);
		CHECK(l.items[i].lease_expires_at >= t0 + 59000);
		if (i + 1 < l.count)
			CHECK(l.items[i].next_run_at <= l.items[i + 1].next_run_at);
		dura_record *got = NULL;
		CHECK_RC(dura_store_get_run(s, l.items[i].run_id, &got), 0);
		if (got) {
			CHECK(got->version == 2);
			CHECK_STR(got->lease_owner, "many");
			CHECK(got->lease_expires_at == l.items[i].lease_expires_at);
			dura_record_free(got);
		}
	}
	dura_record_list_free(&l);
	memset(&l, 0, sizeof(l));
	CHECK_RC(dura_store_claim_runs(s, "other", wfs, WFS, 1000, 60000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
	/* eight workflows: the indexed statement */
	memset(&l, 0, sizeof(l));
	CHECK_RC(dura_store_claim_runs(s, "other", wfs, 8, 1000, 60000, &l), 0);
	CHECK(l.count == 0);
	dura_record_list_free(&l);
	dura_store_close(s);
}

/* A handle used in a forked child opens its own connections: the parent's
 * sessions go on undisturbed. */
static void forked_child(void)
{
	if (!need_env(g_app_url, "DURA_TEST_MYSQL_APP_URL"))
		return;
	dura_store *m = open_main(); /* the tables, migrated by the owner */
	REQUIRE(m != NULL);
	dura_store_close(m);
	extra_forked_child(g_app_url);
}

/* The store's test hook (src/lib/store/mysql/conn.c, in the archive the
 * tests link): the next N COMMITs lose their connection, after the server
 * applied them or before. */
extern struct dura__mysql_test_hook {
	_Atomic int commits, applied;
} dura__mysql_test_hook;

static void lose_commits(int n, int applied)
{
	atomic_store(&dura__mysql_test_hook.applied, applied);
	atomic_store(&dura__mysql_test_hook.commits, n);
}



/* ---- the one-round-trip commit -------------------------------------------------- */

struct status_row {
	long long value;
};

static int status_cb(int ncols, char **values, char **names, void *payload)
{
	(void)names;
	if (ncols >= 2 && values[1])
		((struct status_row *)payload)->value = strtoll(values[1], NULL, 10);
	return 0;
}

static long long com_call_procedure(dura_store *s)
{
	struct status_row r = {-1};
	if (dura_store_exec_sql(s, "SHOW GLOBAL STATUS LIKE 'Com_call_procedure'", status_cb, &r) != 0)
		return -1;
	return r.value;
}

/* A commit is one CALL where the procedure can be used; a user who may not
 * create it (migration) or call it (no EXECUTE) commits the long way. */
static void commit_procedure(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	CHECK(sql_int(s, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND "
	                 "ROUTINE_NAME = 'dura_commit'") == 1);
	char wf[96];
	unique(wf, sizeof(wf), "extra-proc");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	long long before = com_call_procedure(s);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
	CHECK_RC(commit(s, r->run_id, res.new_version, "b", "{\"n\":2}", DURA_COMMIT_NO_EVENT, &res), 0);
	long long after = com_call_procedure(s);
	CHECK(before >= 0 && after >= before + 2);
	CHECK(res.step == 1);
	/* a conflict and a missing run, through the procedure */
	CHECK_RC(commit(s, r->run_id, r->version, "c", "{}", 0, &res), DURA_ECONFLICT);
	CHECK(message_has("not the expected version"));
	char ghost[DURA_UUID_LEN + 1];
	dura_uuid7(ghost);
	CHECK_RC(commit(s, ghost, 1, "c", "{}", 0, &res), DURA_ENOTFOUND);
	CHECK(steps_of(s, r->run_id) == 2);
	CHECK(events_of(s, r->run_id) == 1);
	dura_record_free(r);
	dura_store_close(s);
}

/* The default event data is the same bytes through the procedure, the
 * several-statement commit, and a procedure left from before migration 4
 * (the old argument count: the commit goes the long way). */
static void default_payload_every_path(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	char url[1024], prefix[32], sql[1024], got[2048], want[2048];
	snprintf(prefix, sizeof(prefix), "xdp%d_", (int)getpid());
	snprintf(sql, sizeof(sql), "prefix=%s", prefix);
	url_with(url, sizeof(url), g_url, sql);
	dura_store *s = NULL, *t = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	char wf[96];
	unique(wf, sizeof(wf), "extra-payload");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	long long before = com_call_procedure(s);
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{}", 0, &res), 0); /* CALL */
	CHECK(com_call_procedure(s) > before);
	dura_commit b = DURA_COMMIT_INIT;
	dura_commit_result bres;
	b.run_id = r->run_id;
	b.expect_version = res.new_version;
	b.node_id = "b";
	b.state = "{}";
	b.status = "b";
	CHECK_RC(dura_store_commit_batch(s, &b, 1, &bres), 0); /* several statements */
	/* a procedure with the old argument count, as before migration 4 */
	snprintf(sql, sizeof(sql), "DROP PROCEDURE IF EXISTS %sdura_commit", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "CREATE PROCEDURE %sdura_commit(IN a INT) SELECT a", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	REQUIRE_RC(dura_store_open(&t, url, NULL), 0);
	CHECK_RC(commit(t, r->run_id, bres.new_version, "c", "{}", DURA_COMMIT_NO_STEP, &res), 0);
	dura_store_close(t);
	static const struct {
		const char *node;
		int step;
	} want_rows[] = {{"a", 0}, {"b", 1}, {"c", -1}};
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "SELECT data FROM %sworkflow_outbox WHERE run_id = '%s' ORDER BY id LIMIT 1 OFFSET %d",
		         prefix, r->run_id, i);
		CHECK(sql_rows(s, sql, got, sizeof(got)) == 1);
		snprintf(want, sizeof(want),
		         "{\"run_id\":\"%s\",\"step\":%d,\"node_id\":\"%s\",\"status\":\"%s\",\"run_state\":2}",
		         r->run_id, want_rows[i].step, want_rows[i].node, want_rows[i].node);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "    outbox data\n      is   %s\n      want %s\n", got, want);
		CHECK(strcmp(got, want) == 0);
	}
	dura_record_free(r);
	snprintf(sql, sizeof(sql),
	         "DROP TABLE %sworkflow_records, %sworkflow_steps, %sworkflow_checkpoints, %sworkflow_outbox, "
	         "%sstep_cache, %sstep_cache_claims, %sdura_workers, %sdura_schema",
	         prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP PROCEDURE IF EXISTS %sdura_commit", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store_close(s);
}

/* A user with CREATE but not CREATE ROUTINE migrates without the procedure
 * and commits the long way. */
static void no_routine_privilege(void)
{
	const char *ddl_url = getenv("DURA_TEST_MYSQL_DDL_URL");
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL") || !need_env(ddl_url, "DURA_TEST_MYSQL_DDL_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	CHECK_RC(dura_store_exec_sql(m,
	                             "DROP TABLE IF EXISTS dura_noroutine.workflow_records, dura_noroutine.workflow_steps, "
	                             "dura_noroutine.workflow_checkpoints, dura_noroutine.workflow_outbox, "
	                             "dura_noroutine.step_cache, dura_noroutine.step_cache_claims, dura_noroutine.dura_workers, "
	                             "dura_noroutine.dura_schema, dura_noroutine.dura_flow",
	                             NULL, NULL),
	         0);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, ddl_url, NULL), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(info.schema_version == info.library_schema_version);
	char v[256] = "";
	/* migration 4 (re)creates the procedure */
	CHECK(sql_rows(s, "SELECT description FROM dura_schema WHERE version = 4", v, sizeof(v)) == 1);
	CHECK(strstr(v, "skipped") != NULL);
	CHECK(sql_int(s, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'dura_noroutine'") == 0);
	char wf[96];
	unique(wf, sizeof(wf), "extra-noroutine");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
	CHECK_RC(commit(s, r->run_id, res.new_version, "b", "{\"n\":2}", 0, &res), 0);
	CHECK(steps_of(s, r->run_id) == 2);
	CHECK(events_of(s, r->run_id) == 2);
	dura_record_free(r);
	dura_store_close(s);
	dura_store_close(m);
}

/* A server (or user) without a connection to spare: DURA_EBUSY, said clearly. */
static void no_connection_to_spare(void)
{
	const char *one_url = getenv("DURA_TEST_MYSQL_ONE_URL");
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL") || !need_env(one_url, "DURA_TEST_MYSQL_ONE_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	dura_store_close(m);
	dura_store *a = NULL, *b = NULL;
	REQUIRE_RC(dura_store_open(&a, one_url, NULL), 0); /* holds the user's one connection */
	CHECK_RC(dura_store_open(&b, one_url, NULL), DURA_EBUSY);
	CHECK(message_has("no connection to spare"));
	CHECK(b == NULL);
	dura_store_close(a);
	/* once it is given back, a new one can connect */
	int rc = DURA_EBUSY;
	for (int i = 0; i < 50 && rc == DURA_EBUSY; i++) {
		rc = dura_store_open(&b, one_url, NULL);
		if (rc == DURA_EBUSY)
			sleep_ms(20);
	}
	CHECK_RC(rc, 0);
	dura_store_close(b);
}

/* ---- sizes --------------------------------------------------------------------- */

/* A state bigger than max_allowed_packet fails with both sizes and writes nothing. */
static void packet_too_large(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	long long limit = sql_int(s, "SELECT @@max_allowed_packet");
	REQUIRE(limit > 0);
	/* the core's limits raised past the server's packet: the store's own
	 * refusal is what is tested here */
	dura_store_close(s);
	s = NULL;
	char opt[80], url[1200];
	REQUIRE(limit * 2 <= DURA_LIMIT_MAX_BYTES);
	snprintf(opt, sizeof(opt), "max_state=%lld&max_value=%lld", limit * 2, limit * 2);
	url_with(url, sizeof(url), g_url, opt);
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	size_t n = (size_t)limit + 1024;
	char *state = malloc(n + 32);
	REQUIRE(state != NULL);
	memcpy(state, "{\"blob\":\"", 9);
	memset(state + 9, 'x', n - 11);
	memcpy(state + n - 2, "\"}", 3);
	char wf[96], sizes[2][32], key[96], cp[96];
	unique(wf, sizeof(wf), "extra-packet");
	unique(key, sizeof(key), "extra:packet");
	unique(cp, sizeof(cp), "extra-packet-cp");
	snprintf(sizes[0], sizeof(sizes[0]), "%zu bytes", strlen(state));
	snprintf(sizes[1], sizeof(sizes[1]), "%lld bytes", limit);
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "big", state, 0, &res), DURA_EINVAL);
	CHECK(message_has(sizes[0]));
	CHECK(message_has(sizes[1]));
	CHECK(message_has("max_allowed_packet"));
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, r->run_id, &got), 0);
	CHECK(got->version == r->version && got->step_no == 0);
	dura_record_free(got);
	dura_step *st = NULL;
	CHECK_RC(dura_store_load_latest(s, r->run_id, &st), DURA_ENOTFOUND);
	/* the same for a cache value and a checkpoint */
	CHECK_RC(dura_store_cache_put(s, key, state, strlen(state), NULL, NULL, 0), DURA_EINVAL);
	CHECK(message_has(sizes[1]));
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	CHECK_RC(dura_store_checkpoint_save(s, cp, r->run_id, 0, state), DURA_EINVAL);
	dura_checkpoint *c = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &c), DURA_ENOTFOUND);
	/* and the run still commits normally */
	CHECK_RC(commit(s, r->run_id, r->version, "small", "{\"ok\":true}", DURA_COMMIT_NO_EVENT, &res), 0);
	free(state);
	dura_record_free(r);
	dura_store_close(s);
}

/* ---- URL forms ------------------------------------------------------------------ */

/* The Go driver's DSN from the reference documents opens and works. */
static void go_dsn(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char dsn[1024];
	snprintf(dsn, sizeof(dsn), "%s:%s@tcp(%s:%d)/%s?parseTime=true&loc=UTC&timeout=5s&readTimeout=10s&writeTimeout=10s",
	         u->user, u->password, u->host, u->port, u->database);
	char pw[128];
	snprintf(pw, sizeof(pw), "%s", u->password);
	dura_url_free(u);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, dsn, NULL), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "parseTime") != NULL);
	CHECK(strstr(info.notes, "loc") != NULL);
	CHECK(strstr(info.location, pw) == NULL);
	char wf[96];
	unique(wf, sizeof(wf), "extra-dsn");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"dsn\":true}", DURA_COMMIT_NO_EVENT, &res), 0);
	dura_record_free(r);
	dura_store_close(s);

	/* mariadb:// is the same store */
	char url[1024];
	snprintf(url, sizeof(url), "mariadb%s", strchr(g_url, ':'));
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, "mysql");
	dura_store_close(s);
}

/* ---- the reference documents' SQL ------------------------------------------------- */

/* Timestamps are UTC with milliseconds, so NOW() in the documents' SQL
 * compares with them; the retention, archive and monitoring SQL of the
 * documents runs as printed (the "view cached entries" query of 000
 * selects `key` unquoted, which is invalid on MySQL: quoted, it runs). */
static void reference_sql(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	char wf[96], key[96], sql[1024];
	unique(wf, sizeof(wf), "extra-refsql");
	unique(key, sizeof(key), "extra:refsql");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	REQUIRE_RC(commit(s, r->run_id, r->version, "old", "{\"n\":1}", DURA_COMMIT_NO_EVENT, &res), 0);
	REQUIRE_RC(commit(s, r->run_id, res.new_version, "new", "{\"n\":2}", DURA_COMMIT_NO_EVENT, &res), 0);

	/* our timestamps are "now" to the server's NOW() (both UTC) */
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM workflow_steps WHERE run_id = '%s' AND created_at BETWEEN NOW() - INTERVAL 1 MINUTE "
	         "AND NOW() + INTERVAL 1 MINUTE",
	         r->run_id);
	CHECK(sql_int(s, sql) == 2);

	/* 001's history query */
	snprintf(sql, sizeof(sql),
	         "SELECT run_id, step, node_id, created_at\nFROM workflow_steps\nWHERE run_id = '%s'\nORDER BY step;",
	         r->run_id);
	CHECK(sql_rows(s, sql, NULL, 0) == 2);

	/* 001's retention: age one step by 40 days, delete older than 30 */
	snprintf(sql, sizeof(sql),
	         "UPDATE workflow_steps SET created_at = NOW(3) - INTERVAL 40 DAY WHERE run_id = '%s' AND step = 0",
	         r->run_id);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	CHECK_RC(dura_store_exec_sql(s,
	                             "-- Delete workflow steps older than 30 days\n"
	                             "DELETE FROM workflow_steps\n"
	                             "WHERE created_at < DATE_SUB(NOW(), INTERVAL 30 DAY);\n"
	                             "\n"
	                             "-- Delete checkpoints older than 90 days\n"
	                             "DELETE FROM workflow_checkpoints\n"
	                             "WHERE created_at < DATE_SUB(NOW(), INTERVAL 90 DAY);",
	                             NULL, NULL),
	         0);
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	REQUIRE_RC(dura_store_history(s, r->run_id, 0, 0, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK(l.items[0].step == 1);
	dura_step_list_free(&l);

	/* 002's archive and outbox cleanup (run_state 3 is completed) */
	CHECK_RC(dura_store_exec_sql(s,
	                             "-- Archive completed workflows older than 30 days\n"
	                             "DELETE FROM workflow_records \n"
	                             "WHERE run_state = 3  -- Completed\n"
	                             "  AND created_at < NOW() - INTERVAL 30 DAY\n"
	                             "LIMIT 1000;\n"
	                             "\n"
	                             "-- Clean outbox events older than 7 days\n"
	                             "DELETE FROM workflow_outbox\n"
	                             "WHERE created_at < NOW() - INTERVAL 7 DAY\n"
	                             "LIMIT 1000;",
	                             NULL, NULL),
	         0);
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0); /* young: kept */
	dura_record_free(got);

	/* 002's monitoring */
	CHECK(sql_rows(s,
	               "SELECT \n    table_name AS 'Table',\n    ROUND(((data_length + index_length) / 1024 / 1024), 2) AS "
	               "'Size (MB)'\nFROM information_schema.TABLES\nWHERE table_schema = 'workflow_db'\nORDER BY "
	               "(data_length + index_length) DESC;",
	               NULL, 0) >= 0);
	CHECK(sql_rows(s, "SHOW INDEX FROM workflow_records;", NULL, 0) > 0);
	CHECK(sql_rows(s,
	               "EXPLAIN SELECT * FROM workflow_records \nWHERE workflow_name = 'order-processor' \n  AND foreign_id = "
	               "'order-123' \n  AND status = 2;",
	               NULL, 0) > 0);

	/* 000's cache monitoring and cleanup: an entry that expired is counted
	 * (NOW() has whole seconds: an entry expired this second shows at the
	 * next one) */
	REQUIRE_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 50), 0);
	sleep_ms(1100);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) as expired_count\nFROM step_cache\nWHERE expires_at IS NOT NULL\n  AND "
	                           "expires_at < NOW()\n  AND `key` = '%s';",
	         key);
	CHECK(sql_int(s, sql) == 1);
	CHECK(sql_int(s, "SELECT COUNT(*) as expired_count\nFROM step_cache\nWHERE expires_at IS NOT NULL\n  AND expires_at "
	                 "< NOW();") >= 1);
	CHECK(sql_rows(s,
	               "SELECT\n    table_name,\n    ROUND((data_length + index_length) / 1024 / 1024, 2) AS size_mb,\n    "
	               "table_rows\nFROM information_schema.TABLES\nWHERE table_schema = 'docket_test'\n  AND table_name = "
	               "'step_cache';",
	               NULL, 0) >= 0);
	CHECK(sql_rows(s,
	               "SELECT\n    `key`,\n    created_at,\n    expires_at,\n    TIMESTAMPDIFF(SECOND, NOW(), expires_at) AS "
	               "ttl_seconds\nFROM step_cache\nORDER BY created_at DESC\nLIMIT 10;",
	               NULL, 0) >= 1);
	CHECK_RC(dura_store_exec_sql(s, "DELETE FROM step_cache\nWHERE expires_at IS NOT NULL\n  AND expires_at < NOW();",
	                             NULL, NULL),
	         0);
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	CHECK(sql_int(s, sql) == 0);
	dura_record_free(r);
	dura_store_close(s);
}

/* ---- TLS -------------------------------------------------------------------------- */

static void tls(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	if (!g_tls_ca || !*g_tls_ca)
		SKIP("the test server has no TLS (openssl missing in tests/servers)");
	char url[1024], opt[600];
	dura_store *s = NULL;
	dura_store_info info;

	/* verified against our CA */
	snprintf(opt, sizeof(opt), "tls=%s", g_tls_ca);
	url_with(url, sizeof(url), g_url, opt);
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "TLS") != NULL);
	CHECK(sql_rows(s, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", NULL, 0) == 1);
	char wf[96];
	unique(wf, sizeof(wf), "extra-tls");
	CHECK_RC(create_run(s, wf, NULL), 0);
	dura_store_close(s);

	/* encrypted, not verified */
	url_with(url, sizeof(url), g_url, "tls=skip-verify");
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	CHECK_RC(create_run(s, wf, NULL), 0);
	dura_store_close(s);

	/* libpq's words */
	url_with(url, sizeof(url), g_url, "sslmode=require");
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "TLS") != NULL);
	dura_store_close(s);

	/* verified against the system's CAs: our test CA is not one of them */
	url_with(url, sizeof(url), g_url, "tls=true");
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(message_has("TLS") || message_has("SSL") || message_has("certificate"));

	/* a CA file that is not there */
	url_with(url, sizeof(url), g_url, "tls=/nonexistent/ca.pem");
	CHECK(dura_store_open(&s, url, NULL) < 0);
}

/* ---- lost connections ------------------------------------------------------------- */

struct ids {
	int n;
	long long id[64];
};

static int ids_cb(int ncols, char **values, char **names, void *payload)
{
	struct ids *x = payload;
	(void)names;
	if (ncols > 0 && values[0] && x->n < 64)
		x->id[x->n++] = strtoll(values[0], NULL, 10);
	return 0;
}

/* Kill every other connection of the application user (a user may see and
 * kill its own threads); how many went. */
static int kill_app_connections(dura_store *killer)
{
	struct ids x;
	memset(&x, 0, sizeof(x));
	if (dura_store_exec_sql(killer,
	                        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'dura_app' AND ID <> "
	                        "CONNECTION_ID()",
	                        ids_cb, &x) != 0)
		return -1;
	int killed = 0;
	for (int i = 0; i < x.n; i++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "KILL CONNECTION %lld", x.id[i]);
		if (dura_store_exec_sql(killer, sql, NULL, NULL) == 0)
			killed++;
	}
	return killed;
}

/*
 * The server drops the pooled connections (a restart, a KILL, wait_timeout):
 * the next operations reconnect and go on, and a commit lands exactly once.
 */
static void killed_connections(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL") || !need_env(g_app_url, "DURA_TEST_MYSQL_APP_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	dura_store_close(m);
	char url[1024];
	url_with(url, sizeof(url), g_app_url, "pool_max=2");
	dura_store *s = NULL, *killer = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	int rc = dura_store_open(&killer, g_app_url, NULL);
	if (rc)
		dura_store_close(s);
	REQUIRE_RC(rc, 0);

	char wf[96], key[96];
	unique(wf, sizeof(wf), "extra-killed");
	unique(key, sizeof(key), "extra:killed");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	int64_t v = r->version;
	for (int round = 0; round < 6; round++) {
		CHECK(kill_app_connections(killer) >= 1);
		sleep_ms(20);
		dura_record *got = NULL;
		dura_commit_result res;
		switch (round % 3) {
		case 0: /* a read */
			CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
			if (got)
				CHECK(got->version == v);
			dura_record_free(got);
			break;
		case 1: /* a commit in a transaction */
			CHECK_RC(commit(s, r->run_id, v, "after-kill", "{\"k\":1}", 0, &res), 0);
			v = res.new_version;
			break;
		default: /* a single-statement write, then a claim */
			CHECK_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 0), 0);
			break;
		}
	}
	/* exactly the two commits, each once */
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	CHECK_RC(dura_store_history(s, r->run_id, 0, 0, &l), 0);
	CHECK(l.count == 2);
	for (size_t i = 0; i < l.count; i++)
		CHECK(l.items[i].step == (int64_t)i);
	dura_step_list_free(&l);
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
	if (got)
		CHECK(got->version == r->version + 2 && got->step_no == 2);
	dura_record_free(got);
	CHECK(kill_app_connections(killer) >= 1);
	CHECK_RC(dura_store_ping(s), 0);
	dura_store_stats st;
	CHECK_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.open <= 2 && st.in_use == 0);
	dura_store_cache_delete(s, key);
	dura_record_free(r);
	dura_store_close(killer);
	dura_store_close(s);
}

/*
 * A connection lost while committing: whether the server applied the
 * COMMIT or never saw it, the commit ends up applied exactly once and
 * reported as such (the store reads the run back to tell).
 */
static void lost_commit(void)
{
	if (!need_env(g_url, "DURA_TEST_MYSQL_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	char wf[96];
	unique(wf, sizeof(wf), "extra-lost-commit");
	for (int applied = 0; applied <= 1; applied++) {
		dura_record *r = NULL;
		REQUIRE_RC(create_run(s, wf, &r), 0);
		int64_t v = r->version;
		const unsigned flags[] = {0, DURA_COMMIT_NO_EVENT, DURA_COMMIT_NO_STEP, 0};
		long want_steps = 0;
		int want_events = 0;
		for (int i = 0; i < 4; i++) {
			char state[64];
			snprintf(state, sizeof(state), "{\"i\":%d,\"applied\":%d}", i, applied);
			dura_commit_result res;
			lose_commits(1, applied);
			CHECK_RC(commit(s, r->run_id, v, "n", state, flags[i], &res), 0);
			CHECK(atomic_load(&dura__mysql_test_hook.commits) == 0);
			CHECK(res.new_version == v + 1);
			if (!(flags[i] & DURA_COMMIT_NO_STEP)) {
				CHECK(res.step == want_steps);
				want_steps++;
			} else {
				CHECK(res.step == -1);
			}
			if (!(flags[i] & DURA_COMMIT_NO_EVENT))
				want_events++;
			v = res.new_version;
			dura_record *got = NULL;
			REQUIRE_RC(dura_store_get_run(s, r->run_id, &got), 0);
			CHECK(got->version == v);
			CHECK(got->step_no == want_steps);
			CHECK(strstr(got->state, "\"i\"") != NULL);
			dura_record_free(got);
		}
		CHECK(steps_of(s, r->run_id) == want_steps);
		CHECK(events_of(s, r->run_id) == want_events);

		/* a batch */
		dura_record *b[3];
		dura_commit cs[3];
		dura_commit_result rs[3];
		for (int i = 0; i < 3; i++) {
			REQUIRE_RC(create_run(s, wf, &b[i]), 0);
			dura_commit c = DURA_COMMIT_INIT;
			c.run_id = b[i]->run_id;
			c.expect_version = b[i]->version;
			c.node_id = "batch";
			c.state = "{\"batch\":true}";
			cs[i] = c;
		}
		lose_commits(1, applied);
		CHECK_RC(dura_store_commit_batch(s, cs, 3, rs), 0);
		for (int i = 0; i < 3; i++) {
			CHECK(rs[i].code == 0 && rs[i].step == 0 && rs[i].new_version == b[i]->version + 1);
			CHECK(steps_of(s, b[i]->run_id) == 1);
			CHECK(events_of(s, b[i]->run_id) == 1);
			dura_record_free(b[i]);
		}

		/* run control and cache claims run again safely */
		lose_commits(1, applied);
		int64_t nv = 0;
		CHECK_RC(dura_store_set_run_state(s, r->run_id, DURA_RUN_PAUSED, &nv), 0);
		CHECK(nv == v + 1);
		char key[96];
		unique(key, sizeof(key), "extra:lost");
		lose_commits(1, applied);
		CHECK_RC(dura_store_cache_claim(s, key, "me", 60000), 0);
		CHECK_RC(dura_store_cache_claim(s, key, "other", 60000), DURA_EBUSY);
		CHECK_RC(dura_store_cache_release(s, key, "me"), 0);

		/* a claim of runs is not run again: its outcome is reported unknown */
		CHECK_RC(dura_store_set_run_state(s, r->run_id, DURA_RUN_RUNNING, NULL), 0);
		const char *wfs[1] = {wf};
		dura_record_list l;
		memset(&l, 0, sizeof(l));
		lose_commits(1, applied);
		int rc = dura_store_claim_runs(s, "claimer", wfs, 1, 100, 60000, &l);
		CHECK(rc == DURA_EIO);
		CHECK(message_has("may or may not"));
		dura_record_list_free(&l);
		memset(&l, 0, sizeof(l));
		CHECK_RC(dura_store_claim_runs(s, "claimer", wfs, 1, 100, 60000, &l), 0);
		CHECK(applied ? l.count == 0 : l.count >= 1);
		dura_record_list_free(&l);
		dura_record_free(r);
	}
	lose_commits(0, 0);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	g_url = getenv("DURA_TEST_MYSQL_URL");
	g_app_url = getenv("DURA_TEST_MYSQL_APP_URL");
	g_app_empty_url = getenv("DURA_TEST_MYSQL_APP_EMPTY_URL");
	g_tls_ca = getenv("DURA_TEST_MYSQL_TLS_CA");
	static const test_case tests[] = {
		{"wrong_password", wrong_password},
		{"unknown_database", unknown_database},
		{"nothing_listening", nothing_listening},
		{"no_database_in_url", no_database_in_url},
		{"info_and_caps", info_and_caps},
		{"schema_shape", schema_shape},
		{"newer_schema", newer_schema},
		{"upgrade_and_missing_tables", upgrade_and_missing_tables},
		{"app_user_runs_workflows", app_user_runs_workflows},
		{"app_user_cannot_migrate", app_user_cannot_migrate},
		{"packet_too_large", packet_too_large},
		{"go_dsn", go_dsn},
		{"reference_sql", reference_sql},
		{"tls", tls},
		{"killed_connections", killed_connections},
		{"lost_commit", lost_commit},
		{"commit_procedure", commit_procedure},
		{"default_payload_every_path", default_payload_every_path},
		{"no_routine_privilege", no_routine_privilege},
		{"no_connection_to_spare", no_connection_to_spare},
		{"forked_child", forked_child},
		{"claim_many", claim_many},
	};
	return test_run_all("mysql_extra", tests, TEST_COUNT(tests), argc > 1 ? argv[1] : NULL);
}
