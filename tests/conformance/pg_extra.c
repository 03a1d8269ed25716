/*
 * pg_extra.c - what only the PostgreSQL store promises, on the throwaway
 * server of tests/servers: clear connect errors without the password
 * (wrong password, unknown database, nothing listening, missing tables,
 * no connection to spare, a read-only standby), values PostgreSQL
 * refuses, least privilege, a newer schema, TLS, libpq's keyword/value
 * form and PGPASSWORD, commits whose connection was lost, connections the
 * server terminated, the reference documents' SQL where it is valid
 * PostgreSQL, awaits woken by NOTIFY, and a handle used in a forked child.
 *
 * Usage: pg_extra [FILTER]. The URLs come from the environment
 * (tests/servers start prints it): DURA_TEST_PG_URL (the owner of
 * dura_test), DURA_TEST_PG_APP_URL and DURA_TEST_PG_APP_EMPTY_URL (the
 * limited role on dura_test and on the empty dura_empty),
 * DURA_TEST_PG_SUPER_URL (a superuser, for the roles the tests make and
 * for terminating backends: used through libpq directly),
 * DURA_TEST_PG_TLS_CA (the server's CA).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dura.h>
#include <dura/store.h>

#include "server_extra.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_url, *g_app_url, *g_app_empty_url, *g_super_url, *g_tls_ca;

/* ---- helpers -------------------------------------------------------------- */





static const char *last_sqlstate(void)
{
	const dura_error *e = dura_error_last();
	return e && e->sqlstate ? e->sqlstate : "";
}






/* Open a store (migrating it if needed). */
static dura_store *open_url(const char *url)
{
	dura_store *s = NULL;
	if (dura_store_open(&s, url, NULL) != 0) {
		fprintf(stderr, "    cannot open the store: %s\n", last_message());
		return NULL;
	}
	return s;
}

static dura_store *open_main(void)
{
	return open_url(g_url);
}

/* The main URL with ?prefix=P (a fresh set of tables per test). */
static void prefixed(char *url, size_t size, char *prefix, size_t psize, const char *base)
{
	char opt[64];
	snprintf(prefix, psize, "%s%d_", base, (int)getpid());
	snprintf(opt, sizeof(opt), "prefix=%s", prefix);
	url_with(url, size, g_url, opt);
}

static void drop_prefix(dura_store *s, const char *prefix)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "DROP TABLE IF EXISTS %sworkflow_records, %sworkflow_steps, %sworkflow_checkpoints, %sworkflow_outbox, "
	         "%sstep_cache, %sstep_cache_claims, %sdura_workers, %sdura_schema",
	         prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql), "DROP FUNCTION IF EXISTS %sdura_notify() CASCADE", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
}





/* ---- the superuser, through libpq ------------------------------------------------ */

/* A superuser session on database `db` (NULL: the URL's own). */
static PGconn *admin(const char *db)
{
	const char *keys[] = {"dbname", db ? "dbname" : NULL, NULL};
	const char *vals[] = {g_super_url, db, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "    superuser connection failed: %s\n", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Run admin SQL; 0 or -1 (printed). The first value of the result into first. */
static int admin_exec(PGconn *c, const char *sql, char *first, size_t size)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
	if (rc)
		fprintf(stderr, "    admin SQL failed: %s      %s\n", PQerrorMessage(c), sql);
	else if (first && size) {
		first[0] = '\0';
		if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
			snprintf(first, size, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

static long long admin_int(PGconn *c, const char *sql)
{
	char v[64] = "";
	if (admin_exec(c, sql, v, sizeof(v)) != 0 || !*v)
		return -1;
	return strtoll(v, NULL, 10);
}

/* A login role on dura_test with read and write on its public tables
 * (dura's, migrated by the owner), and `extra` (e.g. CONNECTION LIMIT 1). */
static int make_role(const char *role, const char *password, const char *extra)
{
	PGconn *c = admin("dura_test");
	if (!c)
		return -1;
	char sql[1024];
	snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN PASSWORD '%s' %s", role, password, extra ? extra : "");
	int rc = admin_exec(c, sql, NULL, 0);
	snprintf(sql, sizeof(sql),
	         "GRANT CONNECT ON DATABASE dura_test TO %s; GRANT USAGE ON SCHEMA public TO %s; "
	         "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %s; "
	         "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %s",
	         role, role, role, role);
	if (rc == 0)
		rc = admin_exec(c, sql, NULL, 0);
	PQfinish(c);
	return rc;
}

static void drop_role(const char *role)
{
	PGconn *c = admin("dura_test");
	if (!c)
		return;
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'", role);
	admin_exec(c, sql, NULL, 0);
	snprintf(sql, sizeof(sql), "DROP OWNED BY %s; DROP ROLE %s", role, role);
	for (int i = 0; i < 50; i++) { /* terminated sessions take a moment to go */
		PGresult *r = PQexec(c, sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (ok)
			break;
		sleep_ms(20);
	}
	PQfinish(c);
}

/* A role URL on the server of the main URL. */
static void role_url(char *out, size_t size, const char *role, const char *password, const char *db)
{
	dura_url *u = NULL;
	out[0] = '\0';
	if (dura_url_parse(&u, g_url) != 0)
		return;
	snprintf(out, size, "postgres://%s:%s@%s:%d/%s", role, password, u->host, u->port, db);
	dura_url_free(u);
}

/* ---- connect errors --------------------------------------------------------- */

static void wrong_password(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char url[1024], pw[128];
	snprintf(pw, sizeof(pw), "Wrong%sPassword", u->password);
	snprintf(url, sizeof(url), "postgres://%s:%s@%s:%d/%s", u->user, pw, u->host, u->port, u->database);
	dura_url_free(u);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(s == NULL);
	CHECK(message_has("authentication failed"));
	CHECK(message_has("'dura'"));
	CHECK(message_has("check the password"));
	CHECK(strstr(last_message(), pw) == NULL);
	CHECK_STR(last_sqlstate(), "28P01");
	CHECK_STR(dura_error_last()->store, "postgres");
}

static void unknown_database(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char url[1024], pw[128];
	snprintf(pw, sizeof(pw), "%s", u->password);
	snprintf(url, sizeof(url), "postgres://%s:%s@%s:%d/dura_no_such_db_%d", u->user, u->password, u->host, u->port,
	         (int)getpid());
	dura_url_free(u);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_ENOTFOUND);
	CHECK(s == NULL);
	CHECK(message_has("does not exist"));
	CHECK(message_has("createdb dura_no_such_db_"));
	CHECK(strstr(last_message(), pw) == NULL);
	CHECK_STR(last_sqlstate(), "3D000");
}

/* A loopback port nobody listens on: bound and let go. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void nothing_listening(void)
{
	int port = free_port();
	REQUIRE(port > 0);
	char url[256], where[64];
	snprintf(url, sizeof(url), "postgres://u:SECRETpw99@127.0.0.1:%d/db?connect_timeout=2s", port);
	snprintf(where, sizeof(where), "127.0.0.1:%d", port);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(s == NULL);
	CHECK(message_has("cannot connect"));
	CHECK(message_has(where));
	CHECK(strstr(last_message(), "SECRETpw99") == NULL);
}

static int table_exists(dura_store *s, const char *table)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '%s'",
	         table);
	return (int)sql_int(s, sql);
}

/* With auto-migration off, a database without dura's tables is refused
 * with the way out, and nothing is created. */
static void missing_tables_no_migrate(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	char url[1024], prefix[32], table[64];
	prefixed(url, sizeof(url), prefix, sizeof(prefix), "xnm");
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, &opts);
	CHECK(rc < 0);
	CHECK(s == NULL);
	CHECK(message_has("dura init"));
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	snprintf(table, sizeof(table), "%sdura_schema", prefix);
	CHECK(table_exists(m, table) == 0);
	snprintf(table, sizeof(table), "%sworkflow_records", prefix);
	CHECK(table_exists(m, table) == 0);
	dura_store_close(m);
}

/* A role whose CONNECTION LIMIT is taken: DURA_EBUSY, said clearly. */
static void too_many_connections(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL") || !need_env(g_super_url, "DURA_TEST_PG_SUPER_URL"))
		return;
	dura_store *m = open_main(); /* dura_test is migrated */
	REQUIRE(m != NULL);
	dura_store_close(m);
	char role[48], url[1024];
	snprintf(role, sizeof(role), "pgx_one_%d", (int)getpid());
	REQUIRE(make_role(role, "OnePw123", "CONNECTION LIMIT 1") == 0);
	role_url(url, sizeof(url), role, "OnePw123", "dura_test");
	dura_store *a = NULL, *b = NULL;
	int rc = dura_store_open(&a, url, NULL); /* holds the role's one connection */
	CHECK_RC(rc, 0);
	if (rc == 0) {
		CHECK_RC(dura_store_open(&b, url, NULL), DURA_EBUSY);
		CHECK(b == NULL);
		CHECK(message_has("no connection to spare"));
		CHECK(message_has("CONNECTION LIMIT"));
		CHECK(strstr(last_message(), "OnePw123") == NULL);
		dura_store_close(a);
		/* once it is given back, a new one connects */
		rc = DURA_EBUSY;
		for (int i = 0; i < 100 && rc == DURA_EBUSY; i++) {
			rc = dura_store_open(&b, url, NULL);
			if (rc == DURA_EBUSY)
				sleep_ms(20);
		}
		CHECK_RC(rc, 0);
		if (rc == 0) {
			char wf[96];
			unique(wf, sizeof(wf), "extra-one");
			CHECK_RC(create_run(b, wf, NULL), 0);
			dura_store_close(b);
		}
	}
	drop_role(role);
}

/* A role whose transactions are read only, as on a hot standby: writes
 * fail with SQLSTATE 25006 and a message pointing at the primary. */
static void read_only_standby(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL") || !need_env(g_super_url, "DURA_TEST_PG_SUPER_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	char role[48], url[1024], sql[256], wf[96];
	snprintf(role, sizeof(role), "pgx_ro_%d", (int)getpid());
	REQUIRE(make_role(role, "RoPw123", NULL) == 0);
	PGconn *c = admin("dura_test");
	if (c) {
		snprintf(sql, sizeof(sql), "ALTER ROLE %s SET default_transaction_read_only = on", role);
		CHECK(admin_exec(c, sql, NULL, 0) == 0);
		PQfinish(c);
	}
	role_url(url, sizeof(url), role, "RoPw123", "dura_test");
	unique(wf, sizeof(wf), "extra-ro");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(m, wf, &r), 0);
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, NULL); /* reading the schema version is a read */
	CHECK_RC(rc, 0);
	if (rc == 0) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = wf;
		req.state = "{}";
		CHECK_RC(dura_store_create_run(s, &req, NULL), DURA_EIO);
		CHECK_STR(last_sqlstate(), "25006");
		CHECK(message_has("read-only standby"));
		CHECK(message_has("primary"));
		dura_commit_result res;
		CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), DURA_EIO);
		CHECK_STR(last_sqlstate(), "25006");
		CHECK(message_has("primary"));
		CHECK_RC(dura_store_cache_put(s, "extra:ro", "v", 1, NULL, NULL, 0), DURA_EIO);
		CHECK_STR(last_sqlstate(), "25006");
		/* reads work */
		dura_record *got = NULL;
		CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
		if (got)
			CHECK(got->version == r->version && got->step_no == 0);
		dura_record_free(got);
		dura_store_close(s);
	}
	CHECK(steps_of(m, r->run_id) == 0);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM workflow_records WHERE workflow_name = '%s'", wf);
	CHECK(sql_int(m, sql) == 1);
	dura_record_free(r);
	dura_store_close(m);
	drop_role(role);
}

/* ---- values PostgreSQL refuses ------------------------------------------------------ */

/* JSONB cannot hold \u0000: a clear DURA_EINVAL and the run unchanged. */
static void nul_in_json(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	char wf[96], key[96], cp[96];
	unique(wf, sizeof(wf), "extra-nul");
	unique(key, sizeof(key), "extra:nul");
	unique(cp, sizeof(cp), "extra-nul-cp");
	static const char bad[] = "{\"s\":\"a\\u0000b\"}";
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "nul", bad, 0, &res), DURA_EINVAL);
	CHECK(message_has("\\u0000"));
	dura_record *got = NULL;
	REQUIRE_RC(dura_store_get_run(s, r->run_id, &got), 0);
	CHECK(got->version == r->version && got->step_no == 0);
	CHECK(strstr(got->state, "\"n\"") != NULL);
	dura_record_free(got);
	CHECK(steps_of(s, r->run_id) == 0);
	CHECK(events_of(s, r->run_id) == 0);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.state = bad;
	CHECK_RC(dura_store_create_run(s, &req, NULL), DURA_EINVAL);
	CHECK_RC(dura_store_checkpoint_save(s, cp, r->run_id, 0, bad), DURA_EINVAL);
	dura_checkpoint *c = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, cp, &c), DURA_ENOTFOUND);
	/* a cache value is bytes: NUL bytes are fine there */
	static const char bytes[] = {'a', 0, 'b', 0};
	CHECK_RC(dura_store_cache_put(s, key, bytes, sizeof(bytes), NULL, NULL, 0), 0);
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, key, &e), 0);
	if (e) {
		CHECK(e->value_len == sizeof(bytes) && memcmp(e->value, bytes, sizeof(bytes)) == 0);
		dura_cache_entry_free(e);
	}
	dura_store_cache_delete(s, key);
	/* the run still commits normally */
	CHECK_RC(commit(s, r->run_id, r->version, "ok", "{\"ok\":true}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 0 && res.new_version == r->version + 1);
	dura_record_free(r);
	dura_store_close(s);
}

/* ---- least privilege ------------------------------------------------------------------ */

static int add_one(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	json_object_set_new(state, "n", json_integer(json_integer_value(json_object_get(state, "n")) + 1));
	return 0;
}

/* CONNECT, USAGE and SELECT/INSERT/UPDATE/DELETE run a workflow end to end. */
static void app_user_runs_workflow(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL") || !need_env(g_app_url, "DURA_TEST_PG_APP_URL"))
		return;
	dura_store *m = open_main(); /* dura_test is migrated */
	REQUIRE(m != NULL);
	dura_store_close(m);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, g_app_url, NULL), 0);
	dura_engine *eng = NULL;
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	char wf[96];
	unique(wf, sizeof(wf), "extra-app");
	dura_workflow *w = NULL;
	REQUIRE_RC(dura_workflow_new(&w, wf), 0);
	const char *names[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		CHECK_RC(dura_workflow_add_node(w, names[i], add_one, NULL, NULL), 0);
	CHECK_RC(dura_workflow_add_edge(w, "a", "b"), 0);
	CHECK_RC(dura_workflow_add_edge(w, "b", "c"), 0);
	CHECK_RC(dura_workflow_set_start(w, "a"), 0);
	REQUIRE_RC(dura_engine_register(eng, w), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(eng, wf, "app-fid", "{\"n\":10}", NULL, id), 0);
	dura_record *r = NULL;
	CHECK_RC(dura_run_execute(eng, id, &r), 0);
	if (r) {
		CHECK(r->run_state == DURA_RUN_COMPLETED);
		CHECK(r->step_no == 3);
		CHECK(strstr(r->state, "13") != NULL);
		dura_record_free(r);
	}
	dura_step_list h;
	memset(&h, 0, sizeof(h));
	CHECK_RC(dura_store_history(s, id, 0, 0, &h), 0);
	CHECK(h.count == 3);
	for (size_t i = 0; i < h.count && i < 3; i++) {
		CHECK(h.items[i].step == (int64_t)i);
		CHECK_STR(h.items[i].node_id, names[i]);
	}
	dura_step_list_free(&h);
	char key[96];
	unique(key, sizeof(key), "extra:app");
	CHECK_RC(dura_store_cache_claim(s, key, "me", 60000), 0);
	CHECK_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 0), 0);
	CHECK_RC(dura_store_cache_delete(s, key), 0);
	int from = -1, to = -1;
	CHECK_RC(dura_store_migrate(s, &from, &to), 0); /* nothing to do: no CREATE needed */
	CHECK(from == to && to > 0);
	dura_engine_close(eng);
	dura_store_close(s);
}

/* On an empty database the application role cannot create the schema, is
 * told why (the CREATE privilege), and leaves nothing behind. */
static void app_user_cannot_migrate(void)
{
	if (!need_env(g_app_empty_url, "DURA_TEST_PG_APP_EMPTY_URL") || !need_env(g_super_url, "DURA_TEST_PG_SUPER_URL"))
		return;
	dura_store *s = NULL;
	int rc = dura_store_open(&s, g_app_empty_url, NULL);
	CHECK(rc < 0);
	CHECK(s == NULL);
	CHECK(message_has("CREATE privilege"));
	CHECK(message_has("dura_app"));
	CHECK(message_has("dura init"));
	CHECK_STR(last_sqlstate(), "42501");
	dura_url *u = NULL;
	if (dura_url_parse(&u, g_app_empty_url) == 0) {
		CHECK(strstr(last_message(), u->password) == NULL);
		dura_url_free(u);
	}
	/* without auto-migration: the tables are missing, run dura init */
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	CHECK(dura_store_open(&s, g_app_empty_url, &opts) < 0);
	CHECK(message_has("dura init"));
	PGconn *c = admin("dura_empty");
	if (c) {
		CHECK(admin_int(c, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == 0);
		PQfinish(c);
	}
}

/* ---- the schema -------------------------------------------------------------------------- */

static void info_and_caps(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, "postgres");
	CHECK(strstr(info.server_version, "PostgreSQL") != NULL);
	CHECK(info.caps & DURA_CAP_DURABLE);
	CHECK(info.caps & DURA_CAP_MULTI_PROCESS);
	CHECK(info.caps & DURA_CAP_SQL);
	CHECK(info.caps & DURA_CAP_JSON);
	CHECK(info.caps & DURA_CAP_NOTIFY);
	CHECK(info.caps & DURA_CAP_SKIP_LOCKED);
	CHECK(info.schema_version == info.library_schema_version);
	dura_url *u = NULL;
	if (dura_url_parse(&u, g_url) == 0) {
		CHECK(strstr(info.location, u->password) == NULL);
		dura_url_free(u);
	}
	dura_store_close(s);
}

/* A schema written by a newer dura is refused, and nothing is written. */
static void newer_schema(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	char url[1024], prefix[32], sql[1024];
	prefixed(url, sizeof(url), prefix, sizeof(prefix), "xnew");
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO %sdura_schema (version, applied_at, description) VALUES (99, NOW(), 'future')", prefix);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_store *t = NULL;
	CHECK_RC(dura_store_open(&t, url, NULL), DURA_EVERSION);
	CHECK(t == NULL);
	CHECK(message_has("newer"));
	int from = 0, to = 0;
	CHECK_RC(dura_store_migrate(s, &from, &to), DURA_EVERSION);
	CHECK(from == 99);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), DURA_OK);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %sdura_schema", prefix);
	CHECK(sql_int(s, sql) == info.library_schema_version + 1);
	drop_prefix(s, prefix);
	dura_store_close(s);
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void tls(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	if (!g_tls_ca || !*g_tls_ca)
		SKIP("the test server has no TLS (openssl missing in tests/servers)");
	char url[1024], opt[700];
	dura_store *s = NULL;
	dura_store_info info;

	/* verified against our CA, host name included */
	snprintf(opt, sizeof(opt), "sslmode=verify-full&sslrootcert=%s", g_tls_ca);
	url_with(url, sizeof(url), g_url, opt);
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(strstr(info.notes, "TLS") != NULL);
	CHECK(sql_int(s, "SELECT COUNT(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl") == 1);
	char wf[96];
	unique(wf, sizeof(wf), "extra-tls");
	CHECK_RC(create_run(s, wf, NULL), 0);
	dura_store_close(s);

	/* a CA that did not sign the server's certificate */
	char dir[] = "/tmp/pg_extra_ca.XXXXXX";
	REQUIRE(mkdtemp(dir) != NULL);
	char cmd[1024], ca[256];
	snprintf(ca, sizeof(ca), "%s/other-ca.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=not the dura test CA' -keyout %s/key.pem "
	         "-out %s >/dev/null 2>&1",
	         dir, ca);
	int made = system(cmd) == 0;
	if (made) {
		snprintf(opt, sizeof(opt), "sslmode=verify-full&sslrootcert=%s", ca);
		url_with(url, sizeof(url), g_url, opt);
		CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
		CHECK(s == NULL);
		CHECK(message_has("TLS"));
		CHECK(message_has("certificate"));
	} else {
		fprintf(stderr, "    openssl could not make a CA: the wrong-CA case is not run\n");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	CHECK(made);

	/* a CA file that is not there */
	url_with(url, sizeof(url), g_url, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(message_has("TLS"));
}

/* ---- URL forms and the environment ------------------------------------------------------ */

/* libpq's keyword/value form opens and works. */
static void keyword_value(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char kv[1024], pw[128];
	snprintf(kv, sizeof(kv), "host=%s port=%d dbname=%s user=%s password=%s", u->host, u->port, u->database, u->user,
	         u->password);
	snprintf(pw, sizeof(pw), "%s", u->password);
	dura_url_free(u);
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, kv, NULL), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, "postgres");
	CHECK(strstr(info.location, pw) == NULL);
	char wf[96];
	unique(wf, sizeof(wf), "extra-kv");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"kv\":true}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 0);
	dura_record_free(r);
	dura_store_close(s);
}

/* The password from PGPASSWORD, as psql takes it; without it, a clear failure. */
static void pgpassword(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_url), 0);
	char url[1024], pw[128];
	snprintf(url, sizeof(url), "postgres://%s@%s:%d/%s", u->user, u->host, u->port, u->database);
	snprintf(pw, sizeof(pw), "%s", u->password);
	dura_url_free(u);
	const char *old_file = getenv("PGPASSFILE");
	char *saved_file = old_file ? strdup(old_file) : NULL;
	setenv("PGPASSFILE", "/nonexistent/pgpass", 1); /* no ~/.pgpass of whoever runs the tests */
	setenv("PGPASSWORD", pw, 1);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), 0);
	if (s) {
		CHECK_RC(dura_store_ping(s), 0);
		dura_store_close(s);
	}
	unsetenv("PGPASSWORD");
	s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EIO);
	CHECK(s == NULL);
	CHECK(message_has("authentication failed"));
	CHECK(message_has("PGPASSWORD"));
	if (saved_file)
		setenv("PGPASSFILE", saved_file, 1);
	else
		unsetenv("PGPASSFILE");
	free(saved_file);
}

/* ---- lost commits ----------------------------------------------------------------------- */

/* The store's test hook (src/lib/store/postgres/conn.c, in the archive the
 * tests link): the next N commits lose their connection, after the server
 * applied them or before. */
extern struct dura__pg_test_hook {
	_Atomic int commits, applied;
} dura__pg_test_hook;

static void lose_commits(int n, int applied)
{
	atomic_store(&dura__pg_test_hook.applied, applied);
	atomic_store(&dura__pg_test_hook.commits, n);
}

/* A connection lost while committing: whether the server applied the
 * commit or never saw it, it lands exactly once and is reported as such. */
static void lost_commit(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
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
			CHECK(atomic_load(&dura__pg_test_hook.commits) == 0); /* the hook did fire */
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
			CHECK(strstr(got->state, state + 1) != NULL || strstr(got->state, "\"i\"") != NULL);
			dura_record_free(got);
		}
		CHECK(steps_of(s, r->run_id) == want_steps);
		CHECK(events_of(s, r->run_id) == want_events);

		/* a batch: one transaction of these statements */
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
		CHECK(atomic_load(&dura__pg_test_hook.commits) == 0);
		for (int i = 0; i < 3; i++) {
			CHECK(rs[i].code == 0 && rs[i].step == 0 && rs[i].new_version == b[i]->version + 1);
			CHECK(steps_of(s, b[i]->run_id) == 1);
			CHECK(events_of(s, b[i]->run_id) == 1);
			dura_record *got = NULL;
			CHECK_RC(dura_store_get_run(s, b[i]->run_id, &got), 0);
			if (got)
				CHECK(got->version == b[i]->version + 1 && got->step_no == 1);
			dura_record_free(got);
			dura_record_free(b[i]);
		}
		/* two lost in a row: the third attempt lands, once */
		lose_commits(2, applied);
		dura_commit_result res;
		CHECK_RC(commit(s, r->run_id, v, "twice", "{\"twice\":1}", 0, &res), 0);
		CHECK(res.new_version == v + 1 && res.step == want_steps);
		CHECK(steps_of(s, r->run_id) == want_steps + 1);
		CHECK(events_of(s, r->run_id) == 1);
		lose_commits(0, 0);
		dura_record_free(r);
	}
	lose_commits(0, 0);
	dura_store_close(s);
}

/* ---- terminated connections ----------------------------------------------------------- */

/* The superuser terminates every backend of application_name `app`; how many. */
static long long terminate(PGconn *su, const char *app)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
	         "'%s' AND pid <> pg_backend_pid()) t",
	         app);
	return admin_int(su, sql);
}

struct killer {
	PGconn *su;
	const char *app;
	atomic_int stop;
	atomic_int progress; /* operations the test finished */
	long long killed;
};

/* Terminates the store's backends again and again, while the operations
 * run, but never twice within one operation: after a kill it waits for
 * the test to finish two more (each may retry twice; a reconnect takes
 * tens of milliseconds, so a fixed period would not be enough). */
static void *killer_main(void *arg)
{
	struct killer *k = arg;
	while (!atomic_load(&k->stop)) {
		int seen = atomic_load(&k->progress);
		long long n = terminate(k->su, k->app);
		if (n > 0)
			k->killed += n;
		sleep_ms(10);
		while (!atomic_load(&k->stop) && atomic_load(&k->progress) < seen + 2)
			sleep_ms(1);
	}
	return NULL;
}

/*
 * The server terminates the pooled connections (pg_terminate_backend, a
 * restart): the next operations reconnect and go on, and commits land
 * exactly once, also with backends terminated while the commits run.
 */
static void killed_connections(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL") || !need_env(g_super_url, "DURA_TEST_PG_SUPER_URL"))
		return;
	char app[64], url[1024], opt[128];
	snprintf(app, sizeof(app), "pgx_killed_%d", (int)getpid());
	snprintf(opt, sizeof(opt), "pool_max=2&application_name=%s", app);
	url_with(url, sizeof(url), g_url, opt);
	dura_store *s = open_url(url);
	REQUIRE(s != NULL);
	PGconn *su = admin(NULL);
	if (!su)
		dura_store_close(s);
	REQUIRE(su != NULL);

	char wf[96], key[96];
	unique(wf, sizeof(wf), "extra-killed");
	unique(key, sizeof(key), "extra:killed");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	int64_t v = r->version;
	for (int round = 0; round < 6; round++) {
		CHECK(terminate(su, app) >= 1);
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
		case 1: /* a commit */
			CHECK_RC(commit(s, r->run_id, v, "after-kill", "{\"k\":1}", 0, &res), 0);
			v = res.new_version;
			break;
		default: /* a cache write */
			CHECK_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 0), 0);
			break;
		}
	}
	CHECK(steps_of(s, r->run_id) == 2);

	/* backends terminated again and again while commits and reads run */
	struct killer k;
	memset(&k, 0, sizeof(k));
	k.su = su;
	k.app = app;
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, killer_main, &k) == 0);
	enum { N = 60 };
	int ok = 0;
	for (int i = 0; i < N; i++) {
		char state[64];
		snprintf(state, sizeof(state), "{\"i\":%d}", i);
		dura_commit_result res;
		int rc = commit(s, r->run_id, v, "under-fire", state, DURA_COMMIT_NO_EVENT, &res);
		if (rc != 0) {
			fprintf(stderr, "    commit %d failed: %s\n", i, last_message());
			break;
		}
		CHECK(res.new_version == v + 1 && res.step == 2 + i);
		v = res.new_version;
		dura_record *got = NULL;
		CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
		dura_record_free(got);
		ok++;
		atomic_fetch_add(&k.progress, 1);
		sleep_ms(1);
	}
	atomic_store(&k.stop, 1);
	pthread_join(t, NULL);
	CHECK(ok == N);
	CHECK(k.killed >= 5);
	fprintf(stderr, "    %lld backends terminated under %d commits\n", k.killed, N);

	/* every commit exactly once */
	CHECK(steps_of(s, r->run_id) == 2 + ok);
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
	if (got)
		CHECK(got->version == r->version + 2 + ok && got->step_no == 2 + ok);
	dura_record_free(got);
	CHECK(terminate(su, app) >= 1);
	CHECK_RC(dura_store_ping(s), 0);
	dura_store_stats st;
	CHECK_RC(dura_store_stats_get(s, &st), 0);
	CHECK(st.open <= 2 && st.in_use == 0);
	dura_store_cache_delete(s, key);
	dura_record_free(r);
	PQfinish(su);
	dura_store_close(s);
}

/* ---- the reference documents' SQL ------------------------------------------------------ */

/*
 * The reference documents' SQL that is valid PostgreSQL runs as printed
 * with the tables' prefix: 001's history query, 000's expired-entry count,
 * listing and cleanup. Their retention deletes are MySQL's (DATE_SUB,
 * INTERVAL 30 DAY, DELETE ... LIMIT): refused here, as the documents'
 * defect says; in PostgreSQL's words they delete what they should.
 */
static void reference_sql(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	char url[1024], p[32], sql[2048], key[96], keep[96];
	prefixed(url, sizeof(url), p, sizeof(p), "xref");
	dura_store *s = open_url(url);
	REQUIRE(s != NULL);
	dura_record *r = NULL, *old = NULL;
	REQUIRE_RC(create_run(s, "refsql", &r), 0);
	REQUIRE_RC(create_run(s, "refsql", &old), 0);
	dura_commit_result res;
	REQUIRE_RC(commit(s, r->run_id, r->version, "old", "{\"n\":1}", 0, &res), 0);
	REQUIRE_RC(commit(s, r->run_id, res.new_version, "new", "{\"n\":2}", 0, &res), 0);

	/* our timestamps are "now" to the server's NOW() */
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM %sworkflow_steps WHERE run_id = '%s' AND created_at BETWEEN NOW() - INTERVAL '1 "
	         "minute' AND NOW() + INTERVAL '1 minute'",
	         p, r->run_id);
	CHECK(sql_int(s, sql) == 2);

	/* 001's history query */
	snprintf(sql, sizeof(sql),
	         "SELECT run_id, step, node_id, created_at\nFROM %sworkflow_steps\nWHERE run_id = '%s'\nORDER BY step;", p,
	         r->run_id);
	char first[256];
	CHECK(sql_rows(s, sql, first, sizeof(first)) == 2);
	CHECK_STR(first, r->run_id);

	/* 002's check that the table is there (its schema is public here) */
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = "
	         "'%sworkflow_records'",
	         p);
	CHECK(sql_int(s, sql) == 1);

	/* the documents' MySQL retention is not PostgreSQL */
	snprintf(sql, sizeof(sql), "DELETE FROM %sworkflow_steps\nWHERE created_at < DATE_SUB(NOW(), INTERVAL 30 DAY);", p);
	CHECK(dura_store_exec_sql(s, sql, NULL, NULL) < 0);
	snprintf(sql, sizeof(sql),
	         "DELETE FROM %sworkflow_outbox\nWHERE created_at < NOW() - INTERVAL 7 DAY\nLIMIT 1000;", p);
	CHECK(dura_store_exec_sql(s, sql, NULL, NULL) < 0);

	/* 30-day retention in PostgreSQL's words: a step, an event and a
	 * completed run aged 40 days go, the young ones stay */
	snprintf(sql, sizeof(sql),
	         "UPDATE %sworkflow_steps SET created_at = NOW() - INTERVAL '40 days' WHERE run_id = '%s' AND step = 0; "
	         "UPDATE %sworkflow_outbox SET created_at = NOW() - INTERVAL '40 days' WHERE run_id = '%s'; "
	         "UPDATE %sworkflow_records SET run_state = 3, created_at = NOW() - INTERVAL '40 days' WHERE run_id = '%s'",
	         p, r->run_id, p, old->run_id, p, old->run_id);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	snprintf(sql, sizeof(sql),
	         "-- Delete workflow steps older than 30 days\n"
	         "DELETE FROM %sworkflow_steps\n"
	         "WHERE created_at < NOW() - INTERVAL '30 days';\n"
	         "\n"
	         "-- Delete checkpoints older than 90 days\n"
	         "DELETE FROM %sworkflow_checkpoints\n"
	         "WHERE created_at < NOW() - INTERVAL '90 days';\n"
	         "\n"
	         "-- Archive completed workflows older than 30 days\n"
	         "DELETE FROM %sworkflow_records \n"
	         "WHERE run_state = 3  -- Completed\n"
	         "  AND created_at < NOW() - INTERVAL '30 days';\n"
	         "\n"
	         "-- Clean outbox events older than 7 days\n"
	         "DELETE FROM %sworkflow_outbox\n"
	         "WHERE created_at < NOW() - INTERVAL '7 days';",
	         p, p, p, p);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	REQUIRE_RC(dura_store_history(s, r->run_id, 0, 0, &l), 0);
	CHECK(l.count == 1);
	if (l.count == 1)
		CHECK(l.items[0].step == 1);
	dura_step_list_free(&l);
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, old->run_id, &got), DURA_ENOTFOUND);
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0); /* young: kept */
	dura_record_free(got);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %sworkflow_outbox", p);
	CHECK(sql_int(s, sql) == 2); /* r's two events */

	/* 000's cache monitoring and cleanup: one entry expired, one kept */
	unique(key, sizeof(key), "extra:refsql");
	unique(keep, sizeof(keep), "extra:refsql-keep");
	REQUIRE_RC(dura_store_cache_put(s, key, "v", 1, NULL, NULL, 50), 0);
	REQUIRE_RC(dura_store_cache_put(s, keep, "v", 1, NULL, NULL, 0), 0);
	sleep_ms(150);
	char count_sql[512];
	snprintf(count_sql, sizeof(count_sql),
	         "SELECT COUNT(*) as expired_count\nFROM %sstep_cache\nWHERE expires_at IS NOT NULL\n  AND expires_at < "
	         "NOW();",
	         p);
	CHECK(sql_int(s, count_sql) == 1);
	/* "view cached entries" without MySQL's TIMESTAMPDIFF (key is not reserved here) */
	snprintf(sql, sizeof(sql),
	         "SELECT\n    key,\n    created_at,\n    expires_at\nFROM %sstep_cache\nORDER BY created_at DESC\nLIMIT 10;",
	         p);
	CHECK(sql_rows(s, sql, NULL, 0) == 2);
	snprintf(sql, sizeof(sql),
	         "-- Run periodically via cron or scheduled job\nDELETE FROM %sstep_cache\nWHERE expires_at IS NOT NULL\n  "
	         "AND expires_at < NOW();",
	         p);
	CHECK_RC(dura_store_exec_sql(s, sql, NULL, NULL), 0);
	CHECK(sql_int(s, count_sql) == 0);
	dura_cache_entry *e = NULL;
	CHECK_RC(dura_store_cache_get(s, key, &e), DURA_ENOTFOUND);
	CHECK_RC(dura_store_cache_get(s, keep, &e), 0);
	dura_cache_entry_free(e);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %sstep_cache", p);
	CHECK(sql_int(s, sql) == 1);
	dura_record_free(r);
	dura_record_free(old);
	drop_prefix(s, p);
	dura_store_close(s);
}

/* ---- await, woken by NOTIFY ------------------------------------------------------------ */

struct later {
	dura_store *s;
	const char *run_id;
	int64_t version;
	int rc;
};

static void *commit_later(void *arg)
{
	struct later *l = arg;
	sleep_ms(200);
	dura_commit_result res;
	l->rc = commit(l->s, l->run_id, l->version, "done", "{\"done\":true}", 0, &res);
	return NULL;
}

static void await_notify(void)
{
	if (!need_env(g_url, "DURA_TEST_PG_URL"))
		return;
	dura_store *s = open_main();
	REQUIRE(s != NULL);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK(info.caps & DURA_CAP_NOTIFY);
	dura_engine *eng = NULL;
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	char wf[96];
	unique(wf, sizeof(wf), "extra-await");
	for (int round = 0; round < 2; round++) {
		dura_record *r = NULL;
		REQUIRE_RC(create_run(s, wf, &r), 0);
		/* round 0: the change comes from another thread of this process;
		 * round 1: from another process, through its own store */
		struct later l = {s, r->run_id, r->version, -1};
		pthread_t t;
		pid_t pid = -1;
		if (round == 0) {
			REQUIRE(pthread_create(&t, NULL, commit_later, &l) == 0);
		} else {
			fflush(NULL);
			pid = fork();
			if (pid == 0) {
				dura_store *c = NULL;
				int rc = dura_store_open(&c, g_url, NULL);
				if (rc == 0) {
					l.s = c;
					commit_later(&l);
					rc = l.rc;
					dura_store_close(c);
				}
				_exit(rc == 0 ? 0 : 1);
			}
			REQUIRE(pid > 0);
		}
		dura_await_cond cond = {0, "done", 0};
		dura_record *got = NULL;
		int rc = dura_run_await(eng, r->run_id, &cond, 30000, &got);
		CHECK_RC(rc, 0); /* woken, not timed out */
		if (got) {
			CHECK_STR(got->status, "done");
			CHECK(strstr(got->state, "\"done\"") != NULL);
			CHECK(got->version == r->version + 1);
			dura_record_free(got);
		}
		if (round == 0) {
			pthread_join(t, NULL);
			CHECK_RC(l.rc, 0);
		} else {
			int status = 0;
			CHECK(waitpid(pid, &status, 0) == pid);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		dura_record_free(r);
	}
	/* nothing changes: the wait ends at its timeout */
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_await_cond cond = {0, "never", 0};
	CHECK_RC(dura_run_await(eng, r->run_id, &cond, 300, NULL), DURA_ETIMEOUT);
	dura_record_free(r);
	dura_engine_close(eng);
	dura_store_close(s);
}

/* ---- fork --------------------------------------------------------------------------------- */

/* A handle used in a forked child opens its own connections: the parent's
 * sessions go on undisturbed. */
static void forked_child(void)
{
	if (!need_env(g_app_url, "DURA_TEST_PG_APP_URL"))
		return;
	dura_store *m = open_main();
	REQUIRE(m != NULL);
	dura_store_close(m);
	extra_forked_child(g_app_url);
}

int main(int argc, char **argv)
{
	g_url = getenv("DURA_TEST_PG_URL");
	g_app_url = getenv("DURA_TEST_PG_APP_URL");
	g_app_empty_url = getenv("DURA_TEST_PG_APP_EMPTY_URL");
	g_super_url = getenv("DURA_TEST_PG_SUPER_URL");
	g_tls_ca = getenv("DURA_TEST_PG_TLS_CA");
	static const test_case tests[] = {
		{"wrong_password", wrong_password},
		{"unknown_database", unknown_database},
		{"nothing_listening", nothing_listening},
		{"missing_tables_no_migrate", missing_tables_no_migrate},
		{"too_many_connections", too_many_connections},
		{"read_only_standby", read_only_standby},
		{"nul_in_json", nul_in_json},
		{"app_user_runs_workflow", app_user_runs_workflow},
		{"app_user_cannot_migrate", app_user_cannot_migrate},
		{"info_and_caps", info_and_caps},
		{"newer_schema", newer_schema},
		{"tls", tls},
		{"keyword_value", keyword_value},
		{"pgpassword", pgpassword},
		{"lost_commit", lost_commit},
		{"killed_connections", killed_connections},
		{"reference_sql", reference_sql},
		{"await_notify", await_notify},
		{"forked_child", forked_child},
	};
	return test_run_all("pg_extra", tests, TEST_COUNT(tests), argc > 1 ? argv[1] : NULL);
}
