/*
 * raw.c - baselines for the benchmarks (see raw.h).
 */
#include "raw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *bench_name = "bench_commit";

const char BENCH_STATE[] = "{\"order\":42,\"items\":[1,2,3],\"customer\":\"ada\",\"total\":99.5}";

double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double cpu_us(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
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

double median(const double *v, int n)
{
	double *tmp = samples_alloc(n);
	memcpy(tmp, v, (size_t)n * sizeof(double));
	double m = pct(tmp, n, 0.5);
	free(tmp);
	return m;
}

void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", bench_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void die(const char *what)
{
	const dura_error *e = dura_error_last();
	fail("%s: %s", what, e ? e->message : "?");
}

double *samples_alloc(int n)
{
	double *v = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
	if (!v)
		fail("out of memory");
	return v;
}

int url_option(char *out, size_t size, const char *url, const char *name, const char *value)
{
	char key[64];
	snprintf(key, sizeof(key), "%s=", name);
	if (strstr(url, key)) {
		snprintf(out, size, "%s", url);
		return 0;
	}
	snprintf(out, size, "%s%c%s%s", url, strchr(url, '?') ? '&' : '?', key, value);
	return 1;
}

dura_store *bench_store_open(const char *url, dura_store_info *info)
{
	dura_store *s;
	if (dura_store_open(&s, url, NULL))
		die("open the dura store");
	if (dura_store_info_get(s, info))
		die("store info");
	return s;
}

/* ---- the dura side ---- */

void make_run(dura_store *s, const char *state, char run_id[DURA_UUID_LEN + 1], int64_t *version)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	dura_record *rec;
	req.workflow_name = "bench";
	req.state = state;
	req.status = "node";
	if (dura_store_create_run(s, &req, &rec))
		die("create run");
	memcpy(run_id, rec->run_id, DURA_UUID_LEN + 1);
	*version = rec->version;
	dura_record_free(rec);
}

void drun_make(drun *d, dura_store *s, const char *state)
{
	memset(d, 0, sizeof(*d));
	d->s = s;
	d->state = state;
	make_run(s, state ? state : BENCH_STATE, d->run_id, &d->version);
}

void commit_dura(void *arg)
{
	drun *d = arg;
	dura_commit c = DURA_COMMIT_INIT;
	dura_commit_result res;
	c.run_id = d->run_id;
	c.expect_version = d->version;
	c.node_id = "node";
	c.state = d->state ? d->state : BENCH_STATE;
	c.status = "next";
	if (dura_store_commit(d->s, &c, &res))
		die("dura_store_commit");
	d->version = res.new_version;
}

void dura_cache_hit(void *arg)
{
	dcache *d = arg;
	dura_cache_entry *e;
	if (dura_store_cache_get(d->s, d->full, &e))
		die("dura_store_cache_get");
	dura_cache_entry_free(e);
}

/* ---- measuring ---- */

double interleave(bench_variant *vs, int n, int warm, int samples)
{
	double l0 = now_us();
	for (int i = -warm; i < samples; i++) {
		for (int k = 0; k < n; k++) {
			bench_variant *x = &vs[(i + k + warm) % n];
			double t0 = now_us();
			x->op(x->arg);
			double t1 = now_us();
			if (i >= 0)
				x->v[i] = t1 - t0;
		}
	}
	return now_us() - l0;
}

void latency_line(const char *name, int width, int num_width, double *v, int n, double *p50, double *p99)
{
	*p50 = pct(v, n, 0.5);
	*p99 = pct(v, n, 0.99);
	printf("  %-*s p50 %*.1f us   p99 %*.1f us\n", width, name, num_width, *p50, num_width, *p99);
}

double thread_rounds(void *workers, size_t size, int nth, void *(*fn)(void *), int nmodes, int n, int rounds,
                     double *rates, double *cpu)
{
	double m0 = now_us();
	for (int round = -1; round < rounds; round++) {
		for (int k = 0; k < nmodes; k++) {
			int m = (round + 1 + k) % nmodes; /* rotate which goes first; round -1 warms all up */
			double c0 = cpu ? cpu_us() : 0;
			double r = run_threads(workers, size, nth, fn, m, n);
			if (round >= 0) {
				rates[m * rounds + round] = r;
				if (cpu)
					cpu[m] += cpu_us() - c0;
			}
		}
	}
	return now_us() - m0;
}

void print_rates(const double *v, int n)
{
	for (int i = 0; i < n; i++)
		printf(" %.0f", v[i]);
}

void thread_ready(bench_thread *t)
{
	pthread_barrier_wait(t->go);
}

double run_threads(void *workers, size_t size, int nth, void *(*fn)(void *), int mode, int n)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, (unsigned)nth + 1);
	for (int i = 0; i < nth; i++) {
		bench_thread *t = (bench_thread *)((char *)workers + (size_t)i * size);
		t->go = &go;
		t->mode = mode;
		t->n = n;
		if (pthread_create(&t->th, NULL, fn, t))
			fail("pthread_create");
	}
	pthread_barrier_wait(&go);
	double t0 = now_us();
	for (int i = 0; i < nth; i++)
		pthread_join(((bench_thread *)((char *)workers + (size_t)i * size))->th, NULL);
	double t1 = now_us();
	pthread_barrier_destroy(&go);
	return (double)nth * n / ((t1 - t0) / 1e6);
}

static void sqlite_die(sqlite3 *db, const char *what)
{
	fail("%s: %s", what, sqlite3_errmsg(db));
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
	make_run(tmp, BENCH_STATE, r->run_id, &r->version);
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
