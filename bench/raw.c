/*
 * raw.c - baselines for the benchmarks (see raw.h).
 */
#include "raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char BENCH_STATE[] = "{\"order\":42,\"items\":[1,2,3],\"customer\":\"ada\",\"total\":99.5}";

double now_us(void)
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

double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

void die(const char *what)
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

void raw_close(raw *r)
{
	sqlite3_stmt *all[] = {r->begin, r->commit, r->upd, r->step, r->outbox, r->ins};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(r->db);
}

/* The same transaction dura's commit performs, by hand. */
void raw_tx(raw *r)
{
	char ts[24], ev[DURA_UUID_LEN + 1], data[160];
	dura_time_format(ts, dura_now_ms());
	dura_uuid7(ev);
	step_done(r->db, r->begin);
	sqlite3_bind_text(r->upd, 1, BENCH_STATE, -1, SQLITE_STATIC);
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
	sqlite3_bind_text(r->step, 4, BENCH_STATE, -1, SQLITE_STATIC);
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
void raw_insert(raw *r, int64_t i)
{
	char ts[24];
	dura_time_format(ts, dura_now_ms());
	step_done(r->db, r->begin);
	sqlite3_bind_text(r->ins, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->ins, 2, i);
	sqlite3_bind_text(r->ins, 3, "node", -1, SQLITE_STATIC);
	sqlite3_bind_text(r->ins, 4, BENCH_STATE, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->ins, 5, ts, -1, SQLITE_STATIC);
	step_done(r->db, r->ins);
	step_done(r->db, r->commit);
}

void remove_db(const char *path)
{
	const char *suffixes[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
}

void raw_setup(raw *r, const char *path, const char *sync)
{
	char url[600];
	memset(r, 0, sizeof(*r));
	remove_db(path);
	dura_store *tmp;
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (dura_store_open(&tmp, url, NULL))
		die("create raw schema");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	dura_record *rec;
	req.workflow_name = "bench";
	req.state = BENCH_STATE;
	req.status = "node";
	if (dura_store_create_run(tmp, &req, &rec))
		die("create run");
	memcpy(r->run_id, rec->run_id, DURA_UUID_LEN + 1);
	r->version = rec->version;
	dura_record_free(rec);
	dura_store_close(tmp);
	sqlite3 *db;
	sqlite3_open(path, &db);
	if (sqlite3_exec(db, "CREATE TABLE raw_steps(id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, "
	                     "node_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(run_id, step))",
	                 NULL, NULL, NULL) != SQLITE_OK)
		sqlite_die(db, "raw_steps");
	sqlite3_close(db);
	raw_open(r, path, sync);
}
