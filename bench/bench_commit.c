/*
 * bench_commit - what one durable step commit costs on SQLite, against the
 * raw driver in the same run, on the same file system.
 *
 * For each synchronous mode (FULL, the default, and NORMAL) it measures,
 * interleaved round by round so machine noise hits all alike:
 *   dura    dura_store_commit(): record CAS update + step row + outbox row
 *   raw-tx  the same transaction written by hand with sqlite3 prepared
 *           statements (BEGIN IMMEDIATE; UPDATE; INSERT; INSERT; COMMIT)
 *   raw-ins one prepared INSERT of a step row in its own transaction
 * and prints the medians, p99 and the ratios dura/raw-tx and dura/raw-ins.
 *
 * usage: bench_commit [DIR] [SAMPLES]   (DIR defaults to ./bench-tmp)
 */
#include "dura.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

static void die(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "bench_commit: %s: %s\n", what, e ? e->message : "?");
	exit(1);
}

static void sqlite_die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "bench_commit: %s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static const char STATE[] = "{\"order\":42,\"items\":[1,2,3],\"customer\":\"ada\",\"total\":99.5}";

typedef struct raw {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *upd, *step, *outbox, *ins;
	int64_t version, step_no;
	char run_id[DURA_UUID_LEN + 1];
} raw;

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		sqlite_die(db, sql);
	return st;
}

static void step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		sqlite_die(db, "step");
	sqlite3_reset(st);
}

/* The raw side works on a file whose schema dura created, so both write the
 * same tables with the same indexes. */
static void raw_open(raw *r, const char *path, const char *sync)
{
	if (sqlite3_open(path, &r->db) != SQLITE_OK)
		sqlite_die(r->db, "open");
	char pragmas[128];
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA busy_timeout=5000;", sync);
	if (sqlite3_exec(r->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		sqlite_die(r->db, "pragmas");
	r->begin = prep(r->db, "BEGIN IMMEDIATE");
	r->commit = prep(r->db, "COMMIT");
	r->upd = prep(r->db, "UPDATE workflow_records SET object=?1, status=?2, version=version+1, step_no=step_no+1, "
	                     "updated_at=?3, next_run_at=?3, error='', attempt=0 WHERE run_id=?4 AND version=?5 "
	                     "RETURNING step_no, workflow_name");
	r->step = prep(r->db, "INSERT INTO workflow_steps(run_id, step, node_id, state, created_at) VALUES(?1,?2,?3,?4,?5)");
	r->outbox = prep(r->db, "INSERT INTO workflow_outbox(id, workflow_name, run_id, type, data, created_at) "
	                        "VALUES(?1,?2,?3,'step',?4,?5)");
	r->ins = prep(r->db, "INSERT INTO raw_steps(run_id, step, node_id, state, created_at) VALUES(?1,?2,?3,?4,?5)");
}

static void raw_close(raw *r)
{
	sqlite3_stmt *all[] = {r->begin, r->commit, r->upd, r->step, r->outbox, r->ins};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(r->db);
}

/* The same transaction dura's commit performs, by hand. */
static void raw_tx(raw *r)
{
	char ts[24], ev[DURA_UUID_LEN + 1], data[160];
	dura_time_format(ts, dura_now_ms());
	dura_uuid7(ev);
	step_done(r->db, r->begin);
	sqlite3_bind_text(r->upd, 1, STATE, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->upd, 2, "next", -1, SQLITE_STATIC);
	sqlite3_bind_text(r->upd, 3, ts, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->upd, 4, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->upd, 5, r->version);
	if (sqlite3_step(r->upd) != SQLITE_ROW)
		sqlite_die(r->db, "raw update");
	char wf[64];
	snprintf(wf, sizeof(wf), "%s", (const char *)sqlite3_column_text(r->upd, 1));
	sqlite3_reset(r->upd);
	sqlite3_bind_text(r->step, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->step, 2, r->step_no);
	sqlite3_bind_text(r->step, 3, "node", -1, SQLITE_STATIC);
	sqlite3_bind_text(r->step, 4, STATE, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->step, 5, ts, -1, SQLITE_STATIC);
	step_done(r->db, r->step);
	snprintf(data, sizeof(data), "{\"run_id\":\"%s\",\"step\":%lld}", r->run_id, (long long)r->step_no);
	sqlite3_bind_text(r->outbox, 1, ev, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->outbox, 2, wf, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->outbox, 3, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->outbox, 4, data, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->outbox, 5, ts, -1, SQLITE_STATIC);
	step_done(r->db, r->outbox);
	step_done(r->db, r->commit);
	r->version++;
	r->step_no++;
}

/* One INSERT in its own transaction: the floor of any durable write. */
static void raw_insert(raw *r, int64_t i)
{
	char ts[24];
	dura_time_format(ts, dura_now_ms());
	step_done(r->db, r->begin);
	sqlite3_bind_text(r->ins, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->ins, 2, i);
	sqlite3_bind_text(r->ins, 3, "node", -1, SQLITE_STATIC);
	sqlite3_bind_text(r->ins, 4, STATE, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->ins, 5, ts, -1, SQLITE_STATIC);
	step_done(r->db, r->ins);
	step_done(r->db, r->commit);
}

static void make_run(dura_store *s, char run_id[DURA_UUID_LEN + 1], int64_t *version)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	dura_record *rec;
	req.workflow_name = "bench";
	req.state = STATE;
	req.status = "node";
	if (dura_store_create_run(s, &req, &rec))
		die("create run");
	memcpy(run_id, rec->run_id, DURA_UUID_LEN + 1);
	*version = rec->version;
	dura_record_free(rec);
}

static void bench_mode(const char *dir, const char *sync, int samples)
{
	char dpath[512], rpath[512], url[600];
	snprintf(dpath, sizeof(dpath), "%s/dura-%s.db", dir, sync);
	snprintf(rpath, sizeof(rpath), "%s/raw-%s.db", dir, sync);
	const char *suffixes[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s%s", dpath, suffixes[i]);
		unlink(p);
		snprintf(p, sizeof(p), "%s%s", rpath, suffixes[i]);
		unlink(p);
	}

	dura_store *s;
	snprintf(url, sizeof(url), "sqlite:%s?synchronous=%s", dpath, sync);
	if (dura_store_open(&s, url, NULL))
		die("open dura store");

	/* raw file: dura's schema, plus a plain steps table for raw-ins */
	raw r;
	memset(&r, 0, sizeof(r));
	{
		dura_store *tmp;
		snprintf(url, sizeof(url), "sqlite:%s", rpath);
		if (dura_store_open(&tmp, url, NULL))
			die("create raw schema");
		make_run(tmp, r.run_id, &r.version);
		dura_store_close(tmp);
		sqlite3 *db;
		sqlite3_open(rpath, &db);
		if (sqlite3_exec(db, "CREATE TABLE raw_steps(id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, "
		                     "node_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(run_id, step))",
		                 NULL, NULL, NULL) != SQLITE_OK)
			sqlite_die(db, "raw_steps");
		sqlite3_close(db);
	}
	raw_open(&r, rpath, sync);

	char run_id[DURA_UUID_LEN + 1];
	int64_t version;
	make_run(s, run_id, &version);

	double *td = calloc((size_t)samples, sizeof(double));
	double *tt = calloc((size_t)samples, sizeof(double));
	double *ti = calloc((size_t)samples, sizeof(double));
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.node_id = "node";
	c.state = STATE;
	c.status = "next";
	dura_commit_result res;

	int warm = samples / 10 + 5;
	for (int i = -warm; i < samples; i++) {
		double t0, t1, t2, t3;
		/* rotate the order each round so none always goes first */
		for (int k = 0; k < 3; k++) {
			switch ((i + k + warm) % 3) {
			case 0:
				c.expect_version = version;
				t0 = now_us();
				if (dura_store_commit(s, &c, &res))
					die("commit");
				t1 = now_us();
				version = res.new_version;
				if (i >= 0)
					td[i] = t1 - t0;
				break;
			case 1:
				t2 = now_us();
				raw_tx(&r);
				t3 = now_us();
				if (i >= 0)
					tt[i] = t3 - t2;
				break;
			default:
				t2 = now_us();
				raw_insert(&r, i + warm);
				t3 = now_us();
				if (i >= 0)
					ti[i] = t3 - t2;
				break;
			}
		}
	}
	double d50 = pct(td, samples, 0.5), d99 = pct(td, samples, 0.99);
	double t50 = pct(tt, samples, 0.5), t99 = pct(tt, samples, 0.99);
	double i50 = pct(ti, samples, 0.5), i99 = pct(ti, samples, 0.99);
	printf("sqlite synchronous=%-6s samples=%d\n", sync, samples);
	printf("  dura commit          p50 %9.1f us   p99 %9.1f us\n", d50, d99);
	printf("  raw same transaction p50 %9.1f us   p99 %9.1f us\n", t50, t99);
	printf("  raw single INSERT    p50 %9.1f us   p99 %9.1f us\n", i50, i99);
	printf("  ratio dura/raw-tx  %.3fx   dura/raw-insert  %.3fx\n", d50 / t50, d50 / i50);
	free(td);
	free(tt);
	free(ti);
	raw_close(&r);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "bench-tmp";
	int samples = argc > 2 ? atoi(argv[2]) : 0;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	printf("bench_commit: one durable step commit (medians of interleaved rounds, same file system: %s)\n", dir);
	bench_mode(dir, "full", samples ? samples : 400);
	bench_mode(dir, "normal", samples ? samples * 5 : 5000);
	return 0;
}
