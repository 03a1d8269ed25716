/*
 * sqlite_extra.c - what only the SQLite store promises: several processes
 * on one file lose nothing, a damaged or foreign file is refused and left
 * as it was, a newer schema is DURA_EVERSION, the synchronous and WAL
 * settings, timestamps stored as UTC text, and the reference documents'
 * cleanup SQL running as printed (NOW() is registered by the store), and a
 * value over the connection's SQLITE_LIMIT_LENGTH failing its bind with
 * SQLITE_TOOBIG as the native code.
 *
 * Usage: sqlite_extra TMPDIR [FILTER]  (files are created in TMPDIR)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dura.h>

#include "test.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_dir;

/* ---- helpers -------------------------------------------------------------- */

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* A new unique file path in g_dir and its sqlite: URL (query may be ""). */
static void new_db(char *path, size_t psize, char *url, size_t usize, const char *name, const char *query)
{
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(path, psize, "%s/%s-%s.db", g_dir, name, id);
	snprintf(url, usize, "sqlite:%s%s", path, query);
}

static int read_all(const char *path, unsigned char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 4096, n = 0;
	unsigned char *b = malloc(cap);
	for (;;) {
		if (!b) {
			fclose(f);
			return -1;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (n < cap)
			break;
		cap *= 2;
		unsigned char *nb = realloc(b, cap);
		if (!nb) {
			free(b);
			b = NULL;
			continue;
		}
		b = nb;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

static int write_all(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(buf, 1, len, f);
	return fclose(f) == 0 && w == len ? 0 : -1;
}

/* 1 if the file at path still holds exactly (buf, len). */
static int same_file(const char *path, const unsigned char *buf, size_t len)
{
	unsigned char *now = NULL;
	size_t n = 0;
	if (read_all(path, &now, &n) != 0)
		return 0;
	int same = n == len && memcmp(now, buf, len) == 0;
	free(now);
	return same;
}

static int open_url(dura_store **s, const char *url)
{
	*s = NULL;
	int rc = dura_store_open(s, url, NULL);
	if (rc != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    open failed: %d (%s)\n", rc, e && e->message ? e->message : "");
	}
	return rc;
}

static int create(dura_store *s, const char *wf, char *id, size_t size)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc == 0)
		snprintf(id, size, "%s", r->run_id);
	dura_record_free(r);
	return rc;
}

/* Commit one step with compare-and-swap, retrying conflicts and busy. */
static int commit_retry(dura_store *s, const char *run_id, const char *node)
{
	for (int tries = 0; tries < 5000; tries++) {
		dura_record *r = NULL;
		int rc = dura_store_get_run(s, run_id, &r);
		if (rc == DURA_EBUSY) {
			sleep_ms(1);
			continue;
		}
		if (rc != 0)
			return rc;
		dura_commit c = DURA_COMMIT_INIT;
		char state[96];
		snprintf(state, sizeof state, "{\"node\":\"%s\",\"n\":%lld}", node, (long long)r->step_no);
		c.run_id = run_id;
		c.expect_version = r->version;
		c.node_id = node;
		c.state = state;
		c.status = node;
		c.flags = DURA_COMMIT_NO_EVENT;
		rc = dura_store_commit(s, &c, NULL);
		dura_record_free(r);
		if (rc == 0)
			return 0;
		if (rc == DURA_ECONFLICT)
			continue;
		if (rc == DURA_EBUSY) {
			sleep_ms(1);
			continue;
		}
		return rc;
	}
	return DURA_ETIMEOUT;
}

static int history_dense(dura_store *s, const char *run_id, long n)
{
	dura_step_list l;
	memset(&l, 0, sizeof l);
	if (dura_store_history(s, run_id, 0, 0, &l) != 0)
		return 0;
	int ok = (long)l.count == n;
	if (!ok)
		fprintf(stderr, "    history of %s: %zu steps, wanted %ld\n", run_id, l.count, n);
	for (size_t i = 0; ok && i < l.count; i++)
		ok = l.items[i].step == (int64_t)i;
	dura_step_list_free(&l);
	return ok;
}

/* exec_sql callback: keep the first column of the first row and its name. */
struct first {
	int rows;
	char value[128];
	char name[64];
	int null;
};

static int first_cb(int ncols, char **values, char **names, void *payload)
{
	struct first *f = payload;
	if (f->rows++ == 0 && ncols > 0) {
		f->null = values[0] == NULL;
		snprintf(f->value, sizeof f->value, "%s", values[0] ? values[0] : "");
		snprintf(f->name, sizeof f->name, "%s", names && names[0] ? names[0] : "");
	}
	return 0;
}

static int sql_first(dura_store *s, const char *sql, struct first *f)
{
	memset(f, 0, sizeof *f);
	int rc = dura_store_exec_sql(s, sql, first_cb, f);
	if (rc != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    exec_sql(%s) failed: %d (%s)\n", sql, rc, e && e->message ? e->message : "");
	}
	return rc;
}

/* ---- (a) two processes on one file ---------------------------------------- */

enum { OWN_STEPS = 200, SHARED_RUNS = 3, SHARED_STEPS = 40 };

static int child_work(const char *url, int idx, const char *own, char shared[SHARED_RUNS][128])
{
	dura_store *s = NULL;
	if (dura_store_open(&s, url, NULL) != 0)
		return 10;
	int bad = 0;
	char node[64];
	for (int k = 0; k < OWN_STEPS; k++) {
		snprintf(node, sizeof node, "p%d-own-%d", idx, k);
		if (commit_retry(s, own, node) != 0)
			bad++;
		if (k < SHARED_RUNS * SHARED_STEPS) {
			snprintf(node, sizeof node, "p%d-shared-%d", idx, k / SHARED_RUNS);
			if (commit_retry(s, shared[k % SHARED_RUNS], node) != 0)
				bad++;
		}
	}
	dura_store_close(s);
	return bad ? 11 : 0;
}

static void sqlite_two_processes(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "mp", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	char own[2][128], shared[SHARED_RUNS][128];
	int rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = create(s, "mp-own", own[i], sizeof own[i]);
	for (int i = 0; i < SHARED_RUNS && rc == 0; i++)
		rc = create(s, "mp-shared", shared[i], sizeof shared[i]);
	dura_store_close(s); /* no handle crosses fork */
	REQUIRE_RC(rc, 0);

	fflush(NULL);
	pid_t pids[2];
	int forked = 0;
	for (int i = 0; i < 2; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(child_work(url, i, own[i], shared));
		if (p < 0)
			break;
		pids[forked++] = p;
	}
	for (int i = 0; i < forked; i++) {
		int status = 0;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	REQUIRE(forked == 2);

	REQUIRE_RC(open_url(&s, url), 0);
	for (int i = 0; i < 2; i++)
		CHECK(history_dense(s, own[i], OWN_STEPS));
	int seen[2][SHARED_STEPS * SHARED_RUNS];
	memset(seen, 0, sizeof seen);
	for (int r = 0; r < SHARED_RUNS; r++) {
		CHECK(history_dense(s, shared[r], 2 * SHARED_STEPS));
		dura_record *rec = NULL;
		if (dura_store_get_run(s, shared[r], &rec) == 0) {
			CHECK(rec->step_no == 2 * SHARED_STEPS);
			dura_record_free(rec);
		}
		dura_step_list l;
		memset(&l, 0, sizeof l);
		if (dura_store_history(s, shared[r], 0, 0, &l) == 0) {
			for (size_t i = 0; i < l.count; i++) {
				int p = -1, k = -1;
				if (sscanf(l.items[i].node_id, "p%d-shared-%d", &p, &k) == 2 && p >= 0 && p < 2 && k >= 0 &&
				    k < SHARED_STEPS)
					seen[p][k * SHARED_RUNS + r]++;
			}
			dura_step_list_free(&l);
		}
	}
	for (int p = 0; p < 2; p++)
		for (int k = 0; k < SHARED_STEPS * SHARED_RUNS; k++)
			CHECK(seen[p][k] == 1);
	dura_store_close(s);
}

/* A process that dies without closing loses no committed step. */
static void sqlite_crash_keeps_commits(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "crash", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	char id[128];
	int rc = create(s, "crash", id, sizeof id);
	dura_store_close(s);
	REQUIRE_RC(rc, 0);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		dura_store *cs = NULL;
		if (dura_store_open(&cs, url, NULL) != 0)
			_exit(10);
		for (int i = 0; i < 5; i++)
			if (commit_retry(cs, id, "step") != 0)
				_exit(11);
		_exit(0); /* no close: as if killed */
	}
	REQUIRE(p > 0);
	int status = 0;
	CHECK(waitpid(p, &status, 0) == p);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	REQUIRE_RC(open_url(&s, url), 0);
	CHECK(history_dense(s, id, 5));
	dura_store_close(s);
}

/* ---- (b) damaged and foreign files ----------------------------------------- */

static void refuse_file(const unsigned char *content, size_t len, const char *name)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, name, "");
	REQUIRE(write_all(path, content, len) == 0);
	dura_store *s = NULL;
	dura_error_clear();
	/* not a database: DURA_EINVAL (docs/store-contract.md), naming the file */
	int rc = dura_store_open(&s, url, NULL);
	CHECK_RC(rc, DURA_EINVAL);
	if (rc == 0) {
		dura_store_close(s);
	} else {
		const dura_error *e = dura_error_last();
		CHECK(e && e->message && strstr(e->message, path) != NULL);
		CHECK(e && e->message && strstr(e->message, "not a SQLite database") != NULL);
		CHECK(e && (e->native_code & 0xff) == SQLITE_NOTADB);
	}
	CHECK(s == NULL);
	CHECK(same_file(path, content, len));
	/* a second attempt, and one without migration, behave the same */
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	rc = dura_store_open(&s, url, &opts);
	CHECK_RC(rc, DURA_EINVAL);
	if (rc == 0)
		dura_store_close(s);
	CHECK(same_file(path, content, len));
}

static void sqlite_corrupt_file(void)
{
	unsigned char buf[4096];
	uint32_t x = 2463534242u; /* xorshift: deterministic garbage */
	for (size_t i = 0; i < sizeof buf; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	refuse_file(buf, sizeof buf, "garbage");
}

static void sqlite_text_file(void)
{
	char text[2048] = "";
	for (int i = 0; i < 40; i++)
		strcat(text, "this is a plain text file, not a database\n");
	refuse_file((const unsigned char *)text, strlen(text), "text");
}

/* A real database whose pages after the header are damaged. */
static void sqlite_damaged_database(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "damaged", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	char id[128];
	CHECK_RC(create(s, "damaged", id, sizeof id), 0);
	dura_store_close(s);
	unsigned char *buf = NULL;
	size_t len = 0;
	REQUIRE(read_all(path, &buf, &len) == 0);
	if (len < 8192) {
		free(buf);
		REQUIRE(len >= 8192);
	}
	/* keep the 100-byte header, scramble everything else */
	for (size_t i = 100; i < len; i++)
		buf[i] = (unsigned char)(buf[i] ^ 0xA5 ^ (i * 7));
	int w = write_all(path, buf, len);
	if (w != 0) {
		free(buf);
		REQUIRE(w == 0);
	}
	int rc = dura_store_open(&s, url, NULL);
	if (rc == 0) {
		/* opening may be lazy; reading must then fail cleanly */
		dura_record *r = NULL;
		rc = dura_store_get_run(s, id, &r);
		dura_record_free(r);
		dura_store_close(s);
	}
	/* refused at open (the first read of the schema finds the damage) */
	CHECK_RC(rc, DURA_EINVAL);
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && strstr(e->message, "damaged") != NULL);
	CHECK(e && (e->native_code & 0xff) == SQLITE_CORRUPT);
	CHECK(same_file(path, buf, len));
	free(buf);
}

static void sqlite_missing_directory(void)
{
	char url[600];
	snprintf(url, sizeof url, "sqlite:%s/no-such-dir-%lld/x.db", g_dir, (long long)dura_now_ms());
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, NULL);
	CHECK(rc == DURA_EIO);
	CHECK(s == NULL);
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && e->message[0]);
	CHECK(e && e->store && strcmp(e->store, "sqlite") == 0);
}

/* ---- (c) a schema newer than the library ----------------------------------- */

/* INSERT INTO dura_schema with version 9999, filling any other NOT NULL
 * column that has no default. */
static int insert_newer_schema(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	char cols[1024] = "version", vals[1024] = "9999";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA table_info(dura_schema)", -1, &st, NULL);
	int ncols = 0;
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		ncols++;
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *type = (const char *)sqlite3_column_text(st, 2);
		int notnull = sqlite3_column_int(st, 3);
		int has_default = sqlite3_column_type(st, 4) != SQLITE_NULL;
		if (!name || strcmp(name, "version") == 0 || !notnull || has_default)
			continue;
		const char *v = "''";
		if (type && (strcasestr(type, "INT") || strcasestr(type, "REAL") || strcasestr(type, "NUM")))
			v = "0";
		else if (type && strcasestr(type, "TEXT"))
			v = "'2099-01-01 00:00:00.000'";
		size_t cl = strlen(cols), vl = strlen(vals);
		snprintf(cols + cl, sizeof cols - cl, ", \"%s\"", name);
		snprintf(vals + vl, sizeof vals - vl, ", %s", v);
	}
	sqlite3_finalize(st);
	char sql[2200];
	snprintf(sql, sizeof sql, "INSERT INTO dura_schema(%s) VALUES (%s)", cols, vals);
	char *err = NULL;
	rc = ncols > 0 ? sqlite3_exec(db, sql, NULL, NULL, &err) : SQLITE_ERROR;
	if (rc != SQLITE_OK)
		fprintf(stderr, "    %s: %s\n", sql, err ? err : "no dura_schema table");
	sqlite3_free(err);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int schema_rows(const char *path, long *count, long *max)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	         sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(version) FROM dura_schema", -1, &st, NULL) == SQLITE_OK &&
	         sqlite3_step(st) == SQLITE_ROW;
	if (ok) {
		*count = (long)sqlite3_column_int64(st, 0);
		*max = (long)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok ? 0 : -1;
}

static void sqlite_newer_schema(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "newer", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	char id[128];
	CHECK_RC(create(s, "newer", id, sizeof id), 0);
	dura_store_info info;
	memset(&info, 0, sizeof info);
	CHECK_RC(dura_store_info_get(s, &info), 0);
	int lib = info.library_schema_version;
	dura_store_close(s);
	REQUIRE(lib > 0 && lib < 9999);
	REQUIRE(insert_newer_schema(path) == 0);

	long n0 = 0, max0 = 0;
	REQUIRE(schema_rows(path, &n0, &max0) == 0);
	CHECK(max0 == 9999);
	unsigned char *before = NULL;
	size_t len = 0;
	REQUIRE(read_all(path, &before, &len) == 0);

	dura_error_clear();
	int rc = dura_store_open(&s, url, NULL);
	CHECK(rc == DURA_EVERSION);
	if (rc == 0)
		dura_store_close(s);
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && e->message[0]);
	if (e && e->message)
		CHECK(strstr(e->message, "9999") != NULL);

	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	rc = dura_store_open(&s, url, &opts);
	CHECK(rc == DURA_EVERSION);
	if (rc == 0)
		dura_store_close(s);

	CHECK(same_file(path, before, len));
	free(before);
	long n1 = 0, max1 = 0;
	CHECK(schema_rows(path, &n1, &max1) == 0);
	CHECK(n1 == n0 && max1 == 9999);
}

/* An old-style database without tables opens with auto_migrate=0 only to
 * say `dura init`. */
static void sqlite_no_auto_migrate(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "noinit", "");
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, &opts);
	CHECK(rc < 0);
	if (rc == 0) {
		dura_store_close(s);
	} else {
		const dura_error *e = dura_error_last();
		CHECK(e && e->message && strstr(e->message, "dura init") != NULL);
	}
	/* then a default open creates the schema, and auto_migrate=0 works */
	REQUIRE_RC(open_url(&s, url), 0);
	dura_store_close(s);
	CHECK_RC(dura_store_open(&s, url, &opts), 0);
	dura_store_close(s);
}

/* ---- (d) PRAGMAs ------------------------------------------------------------ */

static void sqlite_pragmas(void)
{
	char path[512], url[600];
	struct first f;
	dura_store *s = NULL;

	new_db(path, sizeof path, url, sizeof url, "sync-default", "");
	REQUIRE_RC(open_url(&s, url), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_RC(sql_first(s, "PRAGMA synchronous", &f), 0);
		CHECK(f.rows == 1);
		CHECK_STR(f.value, "2"); /* FULL */
	}
	CHECK_RC(sql_first(s, "PRAGMA journal_mode", &f), 0);
	CHECK_STR(f.value, "wal");
	dura_store_close(s);

	new_db(path, sizeof path, url, sizeof url, "sync-normal", "?synchronous=normal&busy_timeout=1234");
	REQUIRE_RC(open_url(&s, url), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_RC(sql_first(s, "PRAGMA synchronous", &f), 0);
		CHECK_STR(f.value, "1"); /* NORMAL */
	}
	CHECK_RC(sql_first(s, "PRAGMA journal_mode", &f), 0);
	CHECK_STR(f.value, "wal");
	CHECK_RC(sql_first(s, "PRAGMA busy_timeout", &f), 0);
	CHECK_STR(f.value, "1234");
	dura_store_close(s);

	/* an unknown synchronous value is refused */
	new_db(path, sizeof path, url, sizeof url, "sync-bad", "?synchronous=sometimes");
	int rc = dura_store_open(&s, url, NULL);
	CHECK(rc == DURA_EINVAL);
	if (rc == 0)
		dura_store_close(s);
	const dura_error *e = dura_error_last();
	CHECK(e && e->message && strstr(e->message, "synchronous") != NULL);
}

/* ---- (e) timestamps and the reference cleanup SQL -------------------------- */

static void sqlite_now_and_timestamps(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "time", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	struct first f;
	CHECK_RC(sql_first(s, "SELECT NOW()", &f), 0);
	CHECK(strlen(f.value) == 23);
	int64_t t = 0;
	CHECK_RC(dura_time_parse(&t, f.value), 0);
	int64_t now = dura_now_ms();
	CHECK(t > now - 5000 && t <= now);

	/* steps: created_at is UTC text with milliseconds, equal to the API's */
	char id[128];
	REQUIRE_RC(create(s, "time", id, sizeof id), 0);
	REQUIRE_RC(commit_retry(s, id, "a"), 0);
	dura_step *st = NULL;
	REQUIRE_RC(dura_store_get_step(s, id, 0, &st), 0);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT created_at FROM workflow_steps WHERE run_id = '%s' AND step = 0", id);
	CHECK_RC(sql_first(s, sql, &f), 0);
	CHECK(f.rows == 1);
	CHECK(strlen(f.value) == 23 && f.value[10] == ' ' && f.value[19] == '.');
	t = 0;
	CHECK_RC(dura_time_parse(&t, f.value), 0);
	CHECK(t == st->created_at);
	dura_step_free(st);
	snprintf(sql, sizeof sql, "SELECT typeof(created_at) FROM workflow_records WHERE run_id = '%s'", id);
	CHECK_RC(sql_first(s, sql, &f), 0);
	CHECK_STR(f.value, "text");
	dura_store_close(s);
}

static void sqlite_reference_cleanup_sql(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "cleanup", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0);
	char keys[6][64];
	for (int i = 0; i < 6; i++) {
		snprintf(keys[i], sizeof keys[i], "cleanup:%d", i);
		int64_t ttl = i < 3 ? 50 : i < 5 ? 0 : 3600 * 1000;
		CHECK_RC(dura_store_cache_put(s, keys[i], "val", 3, NULL, NULL, ttl), 0);
	}
	sleep_ms(150);

	/* as printed in the reference documents */
	static const char count_sql[] = "SELECT COUNT(*) as expired_count\n"
	                                "FROM step_cache\n"
	                                "WHERE expires_at IS NOT NULL\n"
	                                "  AND expires_at < NOW();";
	static const char delete_sql[] = "DELETE FROM step_cache\n"
	                                 "WHERE expires_at IS NOT NULL\n"
	                                 "  AND expires_at < NOW();";
	struct first f;
	CHECK_RC(sql_first(s, count_sql, &f), 0);
	CHECK(f.rows == 1);
	CHECK_STR(f.name, "expired_count");
	CHECK_STR(f.value, "3");

	/* expires_at is stored as the same UTC text */
	CHECK_RC(sql_first(s, "SELECT expires_at FROM step_cache WHERE expires_at IS NOT NULL ORDER BY expires_at DESC",
	                   &f),
	         0);
	CHECK(f.rows == 4);
	int64_t t = 0;
	CHECK(strlen(f.value) == 23);
	CHECK_RC(dura_time_parse(&t, f.value), 0);
	CHECK(t > dura_now_ms() + 3500 * 1000 && t <= dura_now_ms() + 3600 * 1000);

	CHECK_RC(dura_store_exec_sql(s, delete_sql, NULL, NULL), 0);
	CHECK_RC(sql_first(s, count_sql, &f), 0);
	CHECK_STR(f.value, "0");
	for (int i = 0; i < 6; i++) {
		dura_cache_entry *e = NULL;
		int rc = dura_store_cache_get(s, keys[i], &e);
		CHECK(rc == (i < 3 ? DURA_ENOTFOUND : 0));
		dura_cache_entry_free(e);
	}
	dura_cache_stats cs;
	memset(&cs, 0, sizeof cs);
	CHECK_RC(dura_store_cache_stats(s, &cs), 0);
	CHECK(cs.entries == 3);
	CHECK(cs.expired == 0);
	int64_t purged = -1;
	CHECK_RC(dura_store_cache_purge_expired(s, &purged), 0);
	CHECK(purged == 0);
	dura_store_close(s);
}

/* ---- (f) a value SQLite refuses to bind ----------------------------------- */

enum { LOW_LENGTH_LIMIT = 100000, OVER_LIMIT = 2 * LOW_LENGTH_LIMIT };

/* An auto extension: every connection opened while it is registered gets
 * SQLITE_LIMIT_LENGTH lowered, so a bind of a value over it fails with
 * SQLITE_TOOBIG without gigabytes of memory. */
static int low_length_limit(sqlite3 *db, const char **err, const sqlite3_api_routines *api)
{
	(void)err;
	(void)api;
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, LOW_LENGTH_LIMIT);
	return SQLITE_OK;
}

/* rc and the thread's error are the SQLITE_TOOBIG of a bind: DURA_EINVAL,
 * native code 18 exactly (not another code ORed in), the limit named. */
static void check_toobig(int rc, const char *what)
{
	const dura_error *e = dura_error_last();
	if (rc != DURA_EINVAL || !e || e->native_code != SQLITE_TOOBIG)
		fprintf(stderr, "    %s: rc %d, native code %d (%s)\n", what, rc, e ? e->native_code : 0,
		        e && e->message ? e->message : "no error");
	CHECK(rc == DURA_EINVAL);
	REQUIRE(e != NULL);
	CHECK(e->code == DURA_EINVAL);
	CHECK(e->native_code == SQLITE_TOOBIG);
	CHECK(e->store && strcmp(e->store, "sqlite") == 0);
	CHECK(e->message && strstr(e->message, "SQLITE_LIMIT_LENGTH") != NULL);
	CHECK(e->message && strstr(e->message, "100000 bytes") != NULL);
}

static void sqlite_bind_too_big(void)
{
	char path[512], url[600];
	new_db(path, sizeof path, url, sizeof url, "toobig", "");
	dura_store *s = NULL;
	REQUIRE_RC(open_url(&s, url), 0); /* the schema, at SQLite's own limits */
	dura_store_close(s);

	/* {"x":"aaa..."}: valid JSON over the limit */
	char *big = malloc(OVER_LIMIT + 16);
	REQUIRE(big != NULL);
	memcpy(big, "{\"x\":\"", 6);
	memset(big + 6, 'a', OVER_LIMIT);
	memcpy(big + 6 + OVER_LIMIT, "\"}", 3);

	REQUIRE(sqlite3_auto_extension((void (*)(void))low_length_limit) == SQLITE_OK);
	int rc = open_url(&s, url);
	if (rc != 0) {
		sqlite3_reset_auto_extension();
		free(big);
		REQUIRE_RC(rc, 0);
	}

	/* create_run: nothing is created */
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.run_id = id;
	req.workflow_name = "toobig";
	req.state = big;
	dura_error_clear();
	check_toobig(dura_store_create_run(s, &req, NULL), "create_run");
	dura_record *r = NULL;
	CHECK_RC(dura_store_get_run(s, id, &r), DURA_ENOTFOUND);
	dura_record_free(r);
	r = NULL;

	/* the same statements on the same connections still work */
	req.state = "{\"small\":true}";
	CHECK_RC(dura_store_create_run(s, &req, &r), 0);
	int64_t version = r ? r->version : 0;
	dura_record_free(r);

	/* commit: a state over the limit, then event data over it (bound
	 * after the record and the step were written: all rolled back) */
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = id;
	c.expect_version = version;
	c.node_id = "n";
	c.state = big;
	check_toobig(dura_store_commit(s, &c, NULL), "commit (state)");
	c.state = "{\"n\":1}";
	c.event_data = big;
	check_toobig(dura_store_commit(s, &c, NULL), "commit (event data)");
	r = NULL;
	CHECK_RC(dura_store_get_run(s, id, &r), 0);
	CHECK(r && r->version == version);
	CHECK(r && r->step_no == 0);
	CHECK(r && strstr(r->state, "small") != NULL);
	dura_record_free(r);
	CHECK(history_dense(s, id, 0));
	dura_event_list evs;
	memset(&evs, 0, sizeof evs);
	CHECK_RC(dura_store_outbox_poll(s, 100, &evs), 0);
	CHECK(evs.count == 0);
	dura_event_list_free(&evs);
	c.event_data = NULL;
	CHECK_RC(dura_store_commit(s, &c, NULL), 0);
	CHECK(history_dense(s, id, 1));

	/* a checkpoint and a cache value (a BLOB) over the limit */
	check_toobig(dura_store_checkpoint_save(s, "toobig-cp", id, 0, big), "checkpoint_save");
	dura_checkpoint *cp = NULL;
	CHECK_RC(dura_store_checkpoint_load(s, "toobig-cp", &cp), DURA_ENOTFOUND);
	dura_checkpoint_free(cp);
	check_toobig(dura_store_cache_put(s, "toobig-key", big, OVER_LIMIT, NULL, NULL, 0), "cache_put");
	dura_cache_entry *ce = NULL;
	CHECK_RC(dura_store_cache_get(s, "toobig-key", &ce), DURA_ENOTFOUND);
	dura_cache_entry_free(ce);
	ce = NULL;
	CHECK_RC(dura_store_cache_put(s, "toobig-key", "v", 1, NULL, NULL, 0), 0);
	CHECK_RC(dura_store_cache_get(s, "toobig-key", &ce), 0);
	CHECK(ce && ce->value_len == 1);
	dura_cache_entry_free(ce);

	dura_store_close(s);
	sqlite3_reset_auto_extension();
	free(big);
}

static const test_case tests[] = {
	{"sqlite_two_processes", sqlite_two_processes},
	{"sqlite_crash_keeps_commits", sqlite_crash_keeps_commits},
	{"sqlite_corrupt_file", sqlite_corrupt_file},
	{"sqlite_text_file", sqlite_text_file},
	{"sqlite_damaged_database", sqlite_damaged_database},
	{"sqlite_missing_directory", sqlite_missing_directory},
	{"sqlite_newer_schema", sqlite_newer_schema},
	{"sqlite_no_auto_migrate", sqlite_no_auto_migrate},
	{"sqlite_pragmas", sqlite_pragmas},
	{"sqlite_now_and_timestamps", sqlite_now_and_timestamps},
	{"sqlite_reference_cleanup_sql", sqlite_reference_cleanup_sql},
	{"sqlite_bind_too_big", sqlite_bind_too_big},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s TMPDIR [TEST_FILTER]\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	struct stat stb;
	if (stat(g_dir, &stb) != 0 || !S_ISDIR(stb.st_mode)) {
		if (mkdir(g_dir, 0700) != 0) {
			fprintf(stderr, "sqlite_extra: %s is not a directory\n", g_dir);
			return 2;
		}
	}
	return test_run_all("sqlite_extra", tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
}
