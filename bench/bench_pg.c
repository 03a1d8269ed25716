/*
 * bench_pg - what dura costs on PostgreSQL, against raw libpq (prepared
 * statements on its own connections) in the same run, on the same server
 * and the same tables (dura creates them, and every run, so the schema,
 * indexes and the notify trigger are identical).
 *
 *   1. step commit latency, 1 thread, interleaved round by round:
 *        dura        dura_store_commit() (one statement: the CAS UPDATE
 *                    with the step and outbox INSERTs in CTEs)
 *        raw-tx      the same writes by hand: BEGIN; UPDATE (CAS on
 *                    version); INSERT step; INSERT outbox; COMMIT, the
 *                    three writes as prepared statements
 *        raw-insert  one prepared INSERT of a row into a plain table, in
 *                    its own (implicit) transaction: the floor
 *   2. steps per second, 8 threads each committing to its own run: one
 *      shared dura_store (pool_idle raised to 8, so the pool keeps all 8
 *      connections) against 8 raw connections doing raw-tx, alternating
 *      rounds; medians of the rounds
 *   3. cache hit latency: dura_store_cache_get against a raw prepared
 *      primary-key SELECT of the same row (text results, the value
 *      unescaped from BYTEA hex, as dura does)
 *   4. round trips per commit and per cache hit, counted at the client:
 *      this program interposes the libpq calls that send a request and
 *      wait for its reply (PQexec, PQprepare, PQexecPrepared,
 *      PQexecParams) and counts them, for dura (the static library calls
 *      libpq through them) and for the raw side alike; and from the
 *      server, write transactions per commit: transaction ids assigned,
 *      from pg_current_snapshot()'s xmax before and after (exact and at
 *      once; pg_stat_database.xact_commit reaches the server up to 10 s
 *      late). pg_stat_statements needs shared_preload_libraries and a
 *      restart, so it is not used.
 *
 * usage: bench_pg [URL] [SAMPLES]
 *   URL defaults to $DURA_TEST_PG_URL (postgres://user:pass@host:port/db;
 *   its prefix= option is honoured, default bench_: tables of its own,
 *   emptied of what it wrote at the end; its libpq options are passed on
 *   to the raw connections). The password is never printed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "raw.h"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 5 /* counted rounds of the threads test (plus one warm-up) */
#define RT_OPS 100

static const char CACHE_VALUE[] = "{\"count\":11,\"text\":\"hello dura\",\"model\":\"v2\"}";

/* ---- counting round trips: libpq's request/reply calls, interposed ----------------- */

static atomic_long g_trips;

typedef PGresult *(*exec_fn)(PGconn *, const char *);
typedef PGresult *(*prepare_fn)(PGconn *, const char *, const char *, int, const Oid *);
typedef PGresult *(*exec_prepared_fn)(PGconn *, const char *, int, const char *const *, const int *, const int *,
                                      int);
typedef PGresult *(*exec_params_fn)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
                                    const int *, int);

/* libpq's own definition of name, the next one after this program's */
static void *real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f) {
		fprintf(stderr, "bench_pg: dlsym %s failed\n", name);
		abort();
	}
	return f;
}

PGresult *PQexec(PGconn *conn, const char *query)
{
	static exec_fn f;
	if (!f)
		*(void **)&f = real("PQexec");
	atomic_fetch_add(&g_trips, 1);
	return f(conn, query);
}

PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes)
{
	static prepare_fn f;
	if (!f)
		*(void **)&f = real("PQprepare");
	atomic_fetch_add(&g_trips, 1);
	return f(conn, stmtName, query, nParams, paramTypes);
}

PGresult *PQexecPrepared(PGconn *conn, const char *stmtName, int nParams, const char *const *paramValues,
                         const int *paramLengths, const int *paramFormats, int resultFormat)
{
	static exec_prepared_fn f;
	if (!f)
		*(void **)&f = real("PQexecPrepared");
	atomic_fetch_add(&g_trips, 1);
	return f(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}

PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                       int resultFormat)
{
	static exec_params_fn f;
	if (!f)
		*(void **)&f = real("PQexecParams");
	atomic_fetch_add(&g_trips, 1);
	return f(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}

/* ---- the server, as the raw side reaches it -------------------------------------- */

typedef struct target {
	char base[1024];   /* the URL without its query: libpq parses it */
	char prefix[64];   /* dura's prefix= */
	const char *keys[24], *vals[24];
	char store[2048];  /* the option strings keys/vals point into */
} target;

/* dura's own URL options, which libpq does not know */
static int dura_only(const char *k, size_t n)
{
	static const char *const own[] = {"prefix", "pool_max", "pool_idle", "conn_lifetime", "conn_idle_time",
	                                  "connect_timeout", "timeout", "tls", "skip_locked"};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strlen(own[i]) == n && !strncmp(k, own[i], n))
			return 1;
	return 0;
}

static void parse_target(target *t, const char *url)
{
	memset(t, 0, sizeof(*t));
	const char *q = strchr(url, '?');
	size_t n = q ? (size_t)(q - url) : strlen(url);
	if (n >= sizeof(t->base))
		fail("the URL is too long");
	memcpy(t->base, url, n);
	int k = 0;
	t->keys[k] = "dbname"; /* expanded by libpq: the whole URL */
	t->vals[k++] = t->base;
	t->keys[k] = "application_name";
	t->vals[k++] = "bench_pg_raw";
	size_t used = 0;
	for (const char *p = q ? q + 1 : NULL; p && *p && k < 22;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		if (eq) {
			size_t kl = (size_t)(eq - p), vl = len - kl - 1;
			if (kl == 6 && !strncmp(p, "prefix", 6))
				snprintf(t->prefix, sizeof(t->prefix), "%.*s", (int)vl, eq + 1);
			else if (!dura_only(p, kl) && used + len + 2 < sizeof(t->store)) {
				char *key = t->store + used;
				memcpy(key, p, kl);
				key[kl] = 0;
				char *val = key + kl + 1;
				memcpy(val, eq + 1, vl);
				val[vl] = 0;
				used += len + 1;
				t->keys[k] = key;
				t->vals[k++] = val;
			}
		}
		p += len;
		if (*p == '&')
			p++;
	}
	t->keys[k] = NULL;
	t->vals[k] = NULL;
}

static PGconn *raw_connect(const target *t)
{
	PGconn *db = PQconnectdbParams(t->keys, t->vals, 1);
	if (!db || PQstatus(db) != CONNECTION_OK)
		fail("raw connect: %s", db ? PQerrorMessage(db) : "out of memory");
	PGresult *r = PQexec(db, "SET TIME ZONE 'UTC'");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail("raw SET TIME ZONE: %s", PQerrorMessage(db));
	PQclear(r);
	return db;
}

static void raw_prepare(PGconn *db, const char *name, const char *prefix, const char *fmt)
{
	/* fmt has %s for each table name's prefix */
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, prefix, prefix, prefix);
	PGresult *r = PQprepare(db, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail("prepare %s: %s", name, PQerrorMessage(db));
	PQclear(r);
}

static void simple(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail("%s: %s", sql, PQerrorMessage(db));
	PQclear(r);
}

/* A prepared statement that must change `want` rows (-1: any). */
static void exec_prep(PGconn *db, const char *name, int n, const char *const *v, long want)
{
	PGresult *r = PQexecPrepared(db, name, n, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail("%s: %s", name, PQerrorMessage(db));
	if (want >= 0 && atol(PQcmdTuples(r)) != want)
		fail("%s: %s rows, wanted %ld", name, PQcmdTuples(r), want);
	PQclear(r);
}

/* Milliseconds since the epoch as PostgreSQL text in UTC, as dura sends them. */
static void pg_time(char out[64], int64_t ms)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- the raw side -------------------------------------------------------------- */

typedef struct rawc {
	PGconn *db;
	char run_id[DURA_UUID_LEN + 1];
	int64_t version, step_no, inserts;
} rawc;

static void rawc_open(rawc *r, const target *t, const char *run_id, int64_t version, int64_t step_no)
{
	memset(r, 0, sizeof(*r));
	r->db = raw_connect(t);
	const char *p = t->prefix;
	raw_prepare(r->db, "upd", p,
	            "UPDATE %sworkflow_records SET object = CAST($1 AS JSONB), status = $2, error = $3, attempt = $4, "
	            "next_run_at = $5, updated_at = $6, version = version + 1, step_no = step_no + 1 "
	            "WHERE run_id = $7 AND version = $8");
	raw_prepare(r->db, "step", p,
	            "INSERT INTO %sworkflow_steps (run_id, step, node_id, state, created_at) "
	            "VALUES ($1, $2, $3, CAST($4 AS JSONB), $5)");
	raw_prepare(r->db, "outbox", p,
	            "INSERT INTO %sworkflow_outbox (id, workflow_name, run_id, type, data, created_at) "
	            "VALUES ($1, $2, $3, $4, CAST($5 AS JSON), $6)");
	raw_prepare(r->db, "ins", p,
	            "INSERT INTO %sbench_raw_steps (run_id, step, state, created_at) VALUES ($1, $2, CAST($3 AS JSONB), $4)");
	memcpy(r->run_id, run_id, DURA_UUID_LEN + 1);
	r->version = version;
	r->step_no = step_no;
}

static void rawc_close(rawc *r)
{
	PQfinish(r->db);
}

/* dura's commit transaction, by hand: 5 round trips. */
static void raw_tx_commit(rawc *r)
{
	char now[64], ver[24], step[24], ev[DURA_UUID_LEN + 1], data[200];
	pg_time(now, dura_now_ms());
	dura_uuid7(ev);
	snprintf(ver, sizeof(ver), "%lld", (long long)r->version);
	snprintf(step, sizeof(step), "%lld", (long long)r->step_no);
	simple(r->db, "BEGIN");
	const char *u[] = {BENCH_STATE, "next", "", "0", now, now, r->run_id, ver};
	exec_prep(r->db, "upd", 8, u, 1);
	const char *s[] = {r->run_id, step, "node", BENCH_STATE, now};
	exec_prep(r->db, "step", 5, s, 1);
	snprintf(data, sizeof(data),
	         "{\"run_id\":\"%s\",\"step\":%lld,\"node_id\":\"node\",\"status\":\"next\",\"run_state\":2}", r->run_id,
	         (long long)r->step_no);
	const char *o[] = {ev, "bench", r->run_id, "step", data, now};
	exec_prep(r->db, "outbox", 6, o, 1);
	simple(r->db, "COMMIT");
	r->version++;
	r->step_no++;
}

/* One row into a plain table in its own transaction: 1 round trip. */
static void raw_row_insert(rawc *r)
{
	char now[64], step[24];
	pg_time(now, dura_now_ms());
	snprintf(step, sizeof(step), "%lld", (long long)r->inserts++);
	const char *v[] = {r->run_id, step, BENCH_STATE, now};
	exec_prep(r->db, "ins", 4, v, 1);
}

/* ---- cache -------------------------------------------------------------------------- */

typedef struct rawcache {
	PGconn *db;
	const char *key;
} rawcache;

static void rawcache_open(rawcache *c, const target *t, const char *key)
{
	memset(c, 0, sizeof(*c));
	c->db = raw_connect(t);
	c->key = key;
	raw_prepare(c->db, "get", t->prefix,
	            "SELECT key, value, error, created_at, expires_at, metadata FROM %sstep_cache WHERE key = $1 "
	            "AND (expires_at IS NULL OR expires_at > $2)");
}

/* One hit: the row by its primary key, its value unescaped as any caller must. */
static void rawcache_get(void *arg)
{
	rawcache *c = arg;
	char now[64];
	pg_time(now, dura_now_ms());
	const char *v[] = {c->key, now};
	PGresult *r = PQexecPrepared(c->db, "get", 2, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail("raw cache SELECT: %s", PQntuples(r) == 0 ? "no row" : PQerrorMessage(c->db));
	size_t n = 0;
	unsigned char *value = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &n);
	if (!value || n != sizeof(CACHE_VALUE) - 1)
		fail("raw cache SELECT: the value has %zu bytes", n);
	PQfreemem(value);
	PQclear(r);
}

/* ---- threads -------------------------------------------------------------------------- */

typedef struct worker {
	bench_thread h; /* first: run_threads(); mode 0 dura, 1 raw-tx */
	drun d;
	rawc r;
	const target *t;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	if (w->h.mode) {
		/* a fresh connection each round, opened before the clock starts;
		 * the run's version and step_no carry over in w->r */
		char id[DURA_UUID_LEN + 1];
		int64_t version = w->r.version, step_no = w->r.step_no;
		memcpy(id, w->r.run_id, sizeof(id));
		rawc_open(&w->r, w->t, id, version, step_no);
	}
	thread_ready(&w->h);
	for (int i = 0; i < w->h.n; i++) {
		if (w->h.mode)
			raw_tx_commit(&w->r);
		else
			commit_dura(&w->d);
	}
	if (w->h.mode)
		rawc_close(&w->r);
	return NULL;
}


/* ---- round trips ----------------------------------------------------------------------- */

static void op_raw_tx(void *arg)
{
	raw_tx_commit(arg);
}

static void op_raw_insert(void *arg)
{
	raw_row_insert(arg);
}

/* Client round trips per op over RT_OPS ops from this thread. */
static double count_trips(bench_op fn, void *arg)
{
	long a = atomic_load(&g_trips);
	for (int i = 0; i < RT_OPS; i++)
		fn(arg);
	return (double)(atomic_load(&g_trips) - a) / RT_OPS;
}

/* The next transaction id the server will assign: pg_current_snapshot()
 * assigns none itself, so the difference of two readings is the number of
 * write transactions committed or aborted in between, at once (the
 * statistics of pg_stat_database.xact_commit reach the server up to 10 s
 * late, from idle backends). The bench is the only writer. */
static long long next_xid(PGconn *admin)
{
	PGresult *r = PQexec(admin, "SELECT pg_snapshot_xmax(pg_current_snapshot())");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail("pg_current_snapshot: %s", PQerrorMessage(admin));
	long long v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* Server write transactions per op. */
static double count_xacts(PGconn *admin, bench_op fn, void *arg)
{
	long long a = next_xid(admin);
	for (int i = 0; i < RT_OPS; i++)
		fn(arg);
	return (double)(next_xid(admin) - a) / RT_OPS;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *server_value(PGconn *db, const char *sql)
{
	static char buf[4][128];
	static int k;
	char *out = buf[k++ % 4];
	snprintf(out, 128, "?");
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(out, 128, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

int main(int argc, char **argv)
{
	bench_name = "bench_pg";
	const char *url = argc > 1 ? argv[1] : getenv("DURA_TEST_PG_URL");
	int samples = argc > 2 ? atoi(argv[2]) : 800;
	if (!url || !*url) {
		fprintf(stderr, "usage: bench_pg [URL] [SAMPLES]   (URL defaults to $DURA_TEST_PG_URL)\n");
		return 2;
	}
	if (samples < 20)
		samples = 20;
	/* tables of its own (prefix bench_) unless the URL names a prefix:
	 * thousands of unacknowledged outbox events are no one else's business */
	char purl[1200];
	url_option(purl, sizeof(purl), url, "prefix", "bench_");
	url = purl;
	target t;
	parse_target(&t, url);

	/* the shared handle keeps all THREADS connections idle between uses */
	char durl[1300], idle[16];
	snprintf(idle, sizeof(idle), "%d", THREADS);
	url_option(durl, sizeof(durl), url, "pool_idle", idle);
	dura_store_info info;
	dura_store *s = bench_store_open(durl, &info);

	PGconn *admin = raw_connect(&t);
	{
		char sql[512];
		snprintf(sql, sizeof(sql),
		         "CREATE TABLE IF NOT EXISTS %sbench_raw_steps (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
		         "run_id TEXT NOT NULL, step BIGINT NOT NULL, state JSONB NOT NULL, created_at TIMESTAMPTZ(3) NOT NULL)",
		         t.prefix);
		simple(admin, sql);
	}
	int v = PQlibVersion();
	printf("bench_pg: dura %s against libpq %d.%d, same server, same tables, %ld CPUs\n", DURA_VERSION_STRING,
	       v / 10000, v % 10000, sysconf(_SC_NPROCESSORS_ONLN));
	printf("server %s, fsync=%s, synchronous_commit=%s, wal_level=%s; TLS: dura %s, raw %s\n",
	       server_value(admin, "SHOW server_version"), server_value(admin, "SHOW fsync"),
	       server_value(admin, "SHOW synchronous_commit"), server_value(admin, "SHOW wal_level"),
	       strstr(info.notes, "TLS") ? "on" : "off", PQsslInUse(admin) ? "on" : "off");
	printf("dura store: %s (schema %d)\n\n", info.location, info.schema_version);

	/* ---- 1. commit latency, one thread ---- */
	drun d;
	drun_make(&d, s, BENCH_STATE);
	rawc r, ri;
	{
		char id[DURA_UUID_LEN + 1];
		int64_t ver;
		make_run(s, BENCH_STATE, id, &ver);
		rawc_open(&r, &t, id, ver, 0);
		make_run(s, BENCH_STATE, id, &ver);
		rawc_open(&ri, &t, id, ver, 0);
	}
	int warm = samples / 10 + 10;
	bench_variant lat[3] = {{commit_dura, &d, samples_alloc(samples)},
	                        {op_raw_tx, &r, samples_alloc(samples)},
	                        {op_raw_insert, &ri, samples_alloc(samples)}};
	double l = interleave(lat, 3, warm, samples);
	double d50, d99, t50, t99, i50, i99;
	printf("1. step commit latency, 1 thread, %d samples each, interleaved (%.1f s)\n", samples, l / 1e6);
	latency_line("dura_store_commit", 29, 8, lat[0].v, samples, &d50, &d99);
	latency_line("raw transaction (5 requests)", 29, 8, lat[1].v, samples, &t50, &t99);
	latency_line("raw single-row INSERT", 29, 8, lat[2].v, samples, &i50, &i99);
	printf("  ratio dura/raw-tx  p50 %.3fx  p99 %.3fx   dura/raw-insert  p50 %.3fx  p99 %.3fx\n\n", d50 / t50,
	       d99 / t99, d50 / i50, d99 / i99);
	for (int k = 0; k < 3; k++)
		free(lat[k].v);

	/* ---- 2. steps per second, THREADS threads ---- */
	int per = samples / 8 < 50 ? 50 : samples / 8;
	worker ws[THREADS];
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < THREADS; i++) {
		ws[i].t = &t;
		drun_make(&ws[i].d, s, BENCH_STATE);
		make_run(s, BENCH_STATE, ws[i].r.run_id, &ws[i].r.version);
	}
	/* dura and raw alternate which goes first; round -1 warms both up */
	double rates[2][ROUNDS];
	double m = thread_rounds(ws, sizeof(*ws), THREADS, worker_main, 2, per, ROUNDS, &rates[0][0], NULL);
	double dmed = median(rates[0], ROUNDS), rmed = median(rates[1], ROUNDS);
	dura_store_stats st;
	dura_store_stats_get(s, &st);
	printf("2. steps per second, %d threads x %d commits, each thread its own run, %d rounds + warm-up (%.1f s)\n",
	       THREADS, per, ROUNDS, m / 1e6);
	printf("  dura, one shared store (pool: %d open, max %d)  %8.0f steps/s\n", st.open, st.max_open, dmed);
	printf("  raw, %d connections, 5-request transaction     %8.0f steps/s\n", THREADS, rmed);
	printf("  ratio dura/raw %.3fx   (rounds dura:", dmed / rmed);
	print_rates(rates[0], ROUNDS);
	printf("  raw:");
	print_rates(rates[1], ROUNDS);
	printf(")\n\n");

	/* ---- 3. cache hit latency ---- */
	const char *key = "global:bench-pg-k1";
	if (dura_store_cache_put(s, key, CACHE_VALUE, sizeof(CACHE_VALUE) - 1, NULL,
	                         "{\"content_type\":\"application/json\"}", 0))
		die("cache put");
	rawcache rcache;
	rawcache_open(&rcache, &t, key);
	dcache dc = {s, key, key};
	int nc = samples * 4;
	/* interleaved, the order swapped every other sample */
	bench_variant cv[2] = {{dura_cache_hit, &dc, samples_alloc(nc)}, {rawcache_get, &rcache, samples_alloc(nc)}};
	interleave(cv, 2, warm, nc);
	double cd50, cd99, cr50, cr99;
	printf("3. cache hit latency, %d samples each, interleaved\n", nc);
	latency_line("dura_store_cache_get", 29, 8, cv[0].v, nc, &cd50, &cd99);
	latency_line("raw prepared SELECT by key", 29, 8, cv[1].v, nc, &cr50, &cr99);
	printf("  ratio dura/raw  p50 %.3fx  p99 %.3fx\n\n", cd50 / cr50, cd99 / cr99);
	for (int k = 0; k < 2; k++)
		free(cv[k].v);

	/* ---- 4. round trips ---- */
	double rt_d = count_trips(commit_dura, &d);
	double rt_t = count_trips(op_raw_tx, &r);
	double rt_i = count_trips(op_raw_insert, &ri);
	double rt_gd = count_trips(dura_cache_hit, &dc);
	double rt_gr = count_trips(rawcache_get, &rcache);
	printf("4. round trips, counted at the client (libpq's PQexec, PQprepare, PQexecPrepared, PQexecParams, "
	       "interposed), %d ops each, one at a time\n",
	       RT_OPS);
	printf("  round trips per commit: dura %.2f, raw-tx %.2f, raw-insert %.2f\n", rt_d, rt_t, rt_i);
	printf("  round trips per cache hit: dura %.2f, raw %.2f\n", rt_gd, rt_gr);
	double x_d = count_xacts(admin, commit_dura, &d);
	double x_t = count_xacts(admin, op_raw_tx, &r);
	double x_i = count_xacts(admin, op_raw_insert, &ri);
	printf("  server write transactions per commit (transaction ids assigned): dura %.2f, raw-tx %.2f, raw-insert "
	       "%.2f\n",
	       x_d, x_t, x_i);

	{
		/* what the bench wrote goes: the tables stay for the next run */
		char sql[1024];
		snprintf(sql, sizeof(sql),
		         "DROP TABLE IF EXISTS %sbench_raw_steps; DELETE FROM %sworkflow_outbox WHERE workflow_name = 'bench'; "
		         "DELETE FROM %sworkflow_steps WHERE run_id IN (SELECT run_id FROM %sworkflow_records WHERE "
		         "workflow_name = 'bench'); DELETE FROM %sworkflow_records WHERE workflow_name = 'bench'; "
		         "DELETE FROM %sstep_cache WHERE key = '%s'",
		         t.prefix, t.prefix, t.prefix, t.prefix, t.prefix, t.prefix, key);
		simple(admin, sql);
	}
	PQfinish(rcache.db);
	rawc_close(&r);
	rawc_close(&ri);
	PQfinish(admin);
	dura_store_close(s);
	return 0;
}
