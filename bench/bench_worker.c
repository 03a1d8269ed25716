/*
 * bench_worker - the burn-down (issue 9, "Benchmark"): runs of
 * no-op nodes executed by one dura_worker at concurrency (worker threads)
 * 1, 8 and 32, with group commit off and on, against the raw driver's
 * single-row INSERT rate at the same concurrency, in the same run.
 *
 *   (a) N runs of one no-op node, (b) M runs of 10 no-op nodes, all
 *       created before the worker starts: durable steps/s.
 *   claim-to-start latency: after each burn-down, the same worker is fed
 *       L more runs created at a steady rate (R runs/s) while it runs; the
 *       latency of a run is its first node's start minus the moment just
 *       before its creation (next_run_at = now), on one monotonic clock.
 *   rescue: a forked worker process holding runs part-way is killed with
 *       SIGKILL; a second process's worker picks them up; time from the
 *       kill to the first step of a rescued run (lease_ms, poll_ms given).
 *   raw: T threads, each with its own connection, each committing its own
 *       single-row INSERT transaction, for S seconds: INSERT/s. SQLite
 *       (WAL, synchronous=FULL as dura's default), MariaDB (Connector/C,
 *       autocommit InnoDB), PostgreSQL (libpq), as the URL names.
 *
 * usage: bench_worker URL [-n N] [-m M] [-c LIST] [-l L] [-r R] [-s S]
 *                         [-k RESCUE_RUNS] [-L LEASE_MS]
 *   -n  runs of 1 node (default 10000)    -m  runs of 10 nodes (default 2000)
 *   -c  concurrencies, comma-separated (default 1,8,32)
 *   -l  latency runs per burn-down (default 200)  -r  their rate, runs/s (default 100)
 *   -s  seconds per raw INSERT measurement (default 3)
 *   -k  runs in the rescue test (default 64)      -L  its lease_ms (default 1000)
 *   -g  group commit settings, comma-separated: off, on (default off,on)
 */
#include "raw.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_HAVE_MARIADB
#include <mysql.h>
#endif
#ifdef BENCH_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#define MAXC 8
#define RESCUE_MAX 4096

static const char *g_url;   /* as given (printed with no password) */
static char g_durl[1400];   /* dura's URL (pool_idle added for servers) */
static char g_shown[1400];  /* the URL with its password masked */

/* ---- the nodes ------------------------------------------------------------- */

static double *g_created;   /* per run index: now_us() just before its creation */
static double *g_started;   /* per run index: its first node's start */
static int g_nidx;

typedef struct shared {
	_Atomic int midrun;         /* the victim is inside a node past step 0 */
	_Atomic int64_t killed_us;  /* when the parent killed it (now_us) */
	_Atomic int64_t first_us;   /* the rescuer's first step of a run the victim held */
	_Atomic int touched[RESCUE_MAX]; /* per run index: the victim executed a node of it */
} shared;
static shared *g_sh;
static int g_role;          /* 0 bench, 1 victim, 2 rescuer */

static int noop(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	if (g_started && dura_ctx_step(ctx) == 0) {
		json_t *i = json_object_get(state, "i");
		int k = i ? (int)json_integer_value(i) : -1;
		if (k >= 0 && k < g_nidx && g_started[k] == 0)
			g_started[k] = now_us();
	}
	return 0;
}

static int slow(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_t *i = json_object_get(state, "i");
	int k = i ? (int)json_integer_value(i) : -1;
	if (k < 0 || k >= RESCUE_MAX)
		return 0;
	if (g_role == 1) {
		atomic_store(&g_sh->touched[k], 1);
		if (dura_ctx_step(ctx) > 0)
			atomic_store(&g_sh->midrun, 1);
		usleep(20000);
	} else if (g_role == 2 && atomic_load(&g_sh->touched[k])) {
		/* a run the killed worker had touched and not completed (one it
		 * completed never runs here): a rescued run */
		int64_t zero = 0;
		atomic_compare_exchange_strong(&g_sh->first_us, &zero, (int64_t)now_us());
	}
	return 0;
}

static dura_workflow *chain(const char *name, int nodes, dura_node_fn fn)
{
	dura_workflow *wf;
	if (dura_workflow_new(&wf, name))
		return NULL;
	for (int n = 0; n < nodes; n++) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "n%d", n);
		dura_workflow_add_node(wf, a, fn, NULL, NULL);
		if (n) {
			snprintf(b, sizeof(b), "n%d", n - 1);
			dura_workflow_add_edge(wf, b, a);
		}
	}
	dura_workflow_set_start(wf, "n0");
	return wf;
}

static void worker_fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "bench_worker: %s: %s\n", what, e ? e->message : "failed");
	exit(1);
}

/* ---- the burn-down ---------------------------------------------------------- */

/* The server's own counters around a burn-down (counters() below, MariaDB
 * only): statements received, transactions committed, log fsyncs. */
typedef struct counts {
	double stmts, commits, fsyncs;
} counts;
static int counters(counts *out);

typedef struct result {
	double steps_s, p50_ms, p99_ms;
	unsigned long long groups;
	int have_counts;
	counts per_step; /* the counters' growth during the burn-down, per step */
} result;

static void start_run(dura_engine *eng, const char *name, int idx)
{
	char st[48], id[DURA_UUID_LEN + 1];
	snprintf(st, sizeof(st), "{\"i\":%d}", idx);
	g_created[idx] = now_us();
	if (dura_run_start(eng, name, NULL, st, NULL, id))
		worker_fail("dura_run_start");
}

static void wait_done(dura_worker *w, unsigned long long n)
{
	for (;;) {
		dura_worker_stats st;
		dura_worker_stats_get(w, &st);
		if (st.completed >= n)
			return;
		if (st.errors || st.failed) {
			fprintf(stderr, "bench_worker: worker errors=%llu failed=%llu\n", (unsigned long long)st.errors,
			        (unsigned long long)st.failed);
			exit(1);
		}
		usleep(500);
	}
}

static result burn(int threads, int runs, int nodes, int group, int lat_runs, double rate)
{
	result res = {0};
	dura_store *s;
	dura_engine *eng;
	char name[64], id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(name, sizeof(name), "bw-%s", id + 24);
	if (dura_store_open(&s, g_durl, NULL) || dura_engine_open(&eng, s, NULL))
		worker_fail("open");
	dura_workflow *wf = chain(name, nodes, noop);
	if (!wf || dura_engine_register(eng, wf))
		worker_fail("register");
	g_nidx = runs + lat_runs;
	g_created = calloc((size_t)g_nidx, sizeof(double));
	g_started = calloc((size_t)g_nidx, sizeof(double));
	for (int i = 0; i < runs; i++)
		start_run(eng, name, i);
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = threads;
	o.poll_ms = 5;
	o.group_commit = group;
	dura_worker *w;
	counts c0, c1;
	int have = counters(&c0) == 0;
	double t0 = now_us();
	if (dura_worker_start(&w, eng, &o))
		worker_fail("dura_worker_start");
	wait_done(w, (unsigned long long)runs);
	double t1 = now_us();
	res.steps_s = (double)runs * nodes / ((t1 - t0) / 1e6);
	if (have && counters(&c1) == 0) {
		double steps = (double)runs * nodes;
		res.have_counts = 1;
		res.per_step.stmts = (c1.stmts - c0.stmts) / steps;
		res.per_step.commits = (c1.commits - c0.commits) / steps;
		res.per_step.fsyncs = (c1.fsyncs - c0.fsyncs) / steps;
	}
	/* claim-to-start: runs created at a steady rate while the worker runs */
	double next = now_us();
	for (int i = 0; i < lat_runs; i++) {
		while (now_us() < next)
			usleep(200);
		start_run(eng, name, runs + i);
		next += 1e6 / rate;
	}
	wait_done(w, (unsigned long long)(runs + lat_runs));
	dura_worker_stats st;
	dura_worker_stats_get(w, &st);
	res.groups = st.group_commits;
	dura_worker_stop(w, 10000);
	if (lat_runs > 0) {
		double *lat = malloc((size_t)lat_runs * sizeof(double));
		for (int i = 0; i < lat_runs; i++)
			lat[i] = (g_started[runs + i] - g_created[runs + i]) / 1e3;
		res.p50_ms = pct(lat, lat_runs, 0.50);
		res.p99_ms = pct(lat, lat_runs, 0.99);
		free(lat);
	}
	free(g_created);
	free(g_started);
	g_created = g_started = NULL;
	dura_engine_close(eng);
	dura_store_close(s);
	return res;
}

/* ---- rescue ---------------------------------------------------------------- */

static void child(const char *name, int threads, int64_t lease, int role, int runs)
{
	g_role = role;
	dura_store *s;
	dura_engine *eng;
	if (dura_store_open(&s, g_durl, NULL) || dura_engine_open(&eng, s, NULL))
		_exit(3);
	dura_workflow *wf = chain(name, 10, slow);
	if (!wf || dura_engine_register(eng, wf))
		_exit(3);
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = threads;
	o.poll_ms = 10;
	o.lease_ms = lease;
	o.batch = runs;
	o.group_commit = 1;
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o))
		_exit(3);
	if (role == 1)
		for (;;)
			pause(); /* killed */
	for (int i = 0; i < 600000 && !atomic_load(&g_sh->first_us); i++)
		usleep(100);
	dura_worker_stats st;
	for (int i = 0; i < 60000; i++) {
		dura_worker_stats_get(w, &st);
		if (st.completed >= (unsigned long long)runs)
			break;
		usleep(1000);
	}
	dura_worker_stats_get(w, &st);
	printf("rescue: the second process rescued %llu run(s), completed %llu of %d\n", (unsigned long long)st.rescued,
	       (unsigned long long)st.completed, runs);
	fflush(stdout);
	dura_worker_stop(w, 10000);
	dura_engine_close(eng);
	dura_store_close(s);
	_exit(st.completed >= (unsigned long long)runs ? 0 : 4);
}

static double rescue(int runs, int64_t lease)
{
	char name[64], id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(name, sizeof(name), "br-%s", id + 24);
	g_sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED)
		return -1;
	memset(g_sh, 0, sizeof(*g_sh));
	{
		dura_store *s;
		dura_engine *eng;
		if (dura_store_open(&s, g_durl, NULL) || dura_engine_open(&eng, s, NULL))
			worker_fail("open");
		dura_workflow *wf = chain(name, 10, slow);
		if (!wf || dura_engine_register(eng, wf))
			worker_fail("register");
		for (int i = 0; i < runs; i++) {
			char st[48];
			snprintf(st, sizeof(st), "{\"i\":%d}", i);
			if (dura_run_start(eng, name, NULL, st, NULL, id))
				worker_fail("dura_run_start");
		}
		dura_engine_close(eng);
		dura_store_close(s);
	}
	fflush(stdout);
	pid_t victim = fork();
	if (victim == 0)
		child(name, 8, lease, 1, runs);
	for (int i = 0; i < 60000 && !atomic_load(&g_sh->midrun); i++)
		usleep(1000);
	usleep(50000);
	kill(victim, SIGKILL);
	atomic_store(&g_sh->killed_us, (int64_t)now_us());
	int stv;
	waitpid(victim, &stv, 0);
	pid_t rescuer = fork();
	if (rescuer == 0)
		child(name, 8, lease, 2, runs);
	int str;
	waitpid(rescuer, &str, 0);
	double ms = -1;
	if (WIFEXITED(str) && WEXITSTATUS(str) == 0 && atomic_load(&g_sh->first_us))
		ms = (double)(atomic_load(&g_sh->first_us) - atomic_load(&g_sh->killed_us)) / 1e3;
	munmap(g_sh, sizeof(shared));
	return ms;
}

/* ---- raw single-row INSERT, T threads, own connections ---------------------- */

enum { ST_SQLITE, ST_MYSQL, ST_PG };
static int g_kind;
static char g_sqlite_path[1024];
static double g_raw_secs = 3;
static _Atomic int g_go;

#ifdef BENCH_HAVE_MARIADB
typedef struct mtarget {
	char host[256], user[128], pass[256], db[128];
	unsigned port;
} mtarget;
static mtarget g_mt;

static void pct_decode(char *out, size_t size, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < size; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
}

/* mysql://user:pass@host:port/db[?...] (also tcp(host:port)) */
static void parse_mysql(mtarget *t, const char *url)
{
	memset(t, 0, sizeof(*t));
	t->port = 3306;
	snprintf(t->host, sizeof(t->host), "127.0.0.1");
	const char *p = url, *q = strchr(url, '?');
	const char *end = q ? q : url + strlen(url);
	if (!strncmp(p, "mysql://", 8))
		p += 8;
	else if (!strncmp(p, "mariadb://", 10))
		p += 10;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	const char *at = NULL;
	if (!slash) {
		fprintf(stderr, "bench_worker: the URL names no database\n");
		exit(1);
	}
	for (const char *x = p; x < slash; x++)
		if (*x == '@')
			at = x;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		pct_decode(t->user, sizeof(t->user), p, (size_t)((colon ? colon : at) - p));
		if (colon)
			pct_decode(t->pass, sizeof(t->pass), colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	const char *h = p, *hend = slash;
	if (!strncmp(h, "tcp(", 4)) {
		h += 4;
		if (hend > h && hend[-1] == ')')
			hend--;
	}
	const char *colon = NULL;
	for (const char *x = h; x < hend; x++)
		if (*x == ':')
			colon = x;
	if (colon) {
		t->port = (unsigned)atoi(colon + 1);
		hend = colon;
	}
	if (hend > h)
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(hend - h), h);
	pct_decode(t->db, sizeof(t->db), slash + 1, (size_t)(end - slash - 1));
}

static MYSQL *my_connect(void)
{
	MYSQL *db = mysql_init(NULL);
	unsigned proto = MYSQL_PROTOCOL_TCP;
	mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(db, MYSQL_OPT_PROTOCOL, &proto);
	if (!mysql_real_connect(db, g_mt.host, g_mt.user, g_mt.pass, g_mt.db, g_mt.port, NULL, CLIENT_FOUND_ROWS)) {
		fprintf(stderr, "bench_worker: raw connect: %s\n", mysql_error(db));
		exit(1);
	}
	return db;
}
#endif

#ifdef BENCH_HAVE_LIBPQ
static char g_pgbase[1400]; /* the URL without dura's query */
static PGconn *pg_connect(void)
{
	PGconn *db = PQconnectdb(g_pgbase);
	if (!db || PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "bench_worker: raw connect: %s\n", db ? PQerrorMessage(db) : "out of memory");
		exit(1);
	}
	return db;
}
static void pg_exec(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench_worker: %s: %s\n", sql, PQerrorMessage(db));
		exit(1);
	}
	PQclear(r);
}
#endif

#define RAW_COLS "(run_id VARCHAR(36) NOT NULL, step BIGINT NOT NULL, node_id VARCHAR(64) NOT NULL, " \
                 "state TEXT NOT NULL, created_at VARCHAR(32) NOT NULL)"

static void raw_prepare_table(void)
{
	if (g_kind == ST_SQLITE) {
		sqlite3 *db;
		if (sqlite3_open(g_sqlite_path, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "PRAGMA journal_mode=WAL; DROP TABLE IF EXISTS bench_raw_ins; CREATE TABLE bench_raw_ins"
		                 RAW_COLS, NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "bench_worker: raw sqlite: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_close(db);
	}
#ifdef BENCH_HAVE_MARIADB
	if (g_kind == ST_MYSQL) {
		MYSQL *db = my_connect();
		if (mysql_query(db, "DROP TABLE IF EXISTS bench_raw_ins") ||
		    mysql_query(db, "CREATE TABLE bench_raw_ins (id BIGINT AUTO_INCREMENT PRIMARY KEY, run_id VARCHAR(36) NOT NULL, "
		                    "step BIGINT NOT NULL, node_id VARCHAR(64) NOT NULL, state TEXT NOT NULL, "
		                    "created_at VARCHAR(32) NOT NULL) ENGINE=InnoDB")) {
			fprintf(stderr, "bench_worker: raw create: %s\n", mysql_error(db));
			exit(1);
		}
		mysql_close(db);
	}
#endif
#ifdef BENCH_HAVE_LIBPQ
	if (g_kind == ST_PG) {
		PGconn *db = pg_connect();
		pg_exec(db, "SET client_min_messages=warning");
		pg_exec(db, "DROP TABLE IF EXISTS bench_raw_ins");
		pg_exec(db, "CREATE TABLE bench_raw_ins (id BIGSERIAL PRIMARY KEY, run_id VARCHAR(36) NOT NULL, step BIGINT NOT NULL, "
		            "node_id VARCHAR(64) NOT NULL, state TEXT NOT NULL, created_at VARCHAR(32) NOT NULL)");
		PQfinish(db);
	}
#endif
}

static void *raw_thread(void *arg)
{
	long long *count = arg, n = 0;
	char ts[24], id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	if (g_kind == ST_SQLITE) {
		sqlite3 *db;
		sqlite3_stmt *ins;
		if (sqlite3_open(g_sqlite_path, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;", NULL, NULL,
		                 NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, "INSERT INTO bench_raw_ins VALUES(?1,?2,'node',?3,?4)", -1, &ins, NULL) != SQLITE_OK) {
			fprintf(stderr, "bench_worker: raw sqlite: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		while (!atomic_load(&g_go))
			usleep(100);
		while (atomic_load(&g_go) == 1) {
			dura_time_format(ts, dura_now_ms());
			sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, n);
			sqlite3_bind_text(ins, 3, BENCH_STATE, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 4, ts, -1, SQLITE_STATIC);
			int rc = sqlite3_step(ins); /* autocommit: its own transaction */
			sqlite3_reset(ins);
			if (rc == SQLITE_DONE)
				n++;
			else if (rc != SQLITE_BUSY) {
				fprintf(stderr, "bench_worker: raw insert: %s\n", sqlite3_errmsg(db));
				exit(1);
			}
		}
		sqlite3_finalize(ins);
		sqlite3_close(db);
	}
#ifdef BENCH_HAVE_MARIADB
	if (g_kind == ST_MYSQL) {
		MYSQL *db = my_connect();
		MYSQL_STMT *st = mysql_stmt_init(db);
		const char *sql = "INSERT INTO bench_raw_ins(run_id, step, node_id, state, created_at) VALUES(?,?,'node',?,?)";
		if (mysql_stmt_prepare(st, sql, strlen(sql))) {
			fprintf(stderr, "bench_worker: raw prepare: %s\n", mysql_stmt_error(st));
			exit(1);
		}
		MYSQL_BIND b[4];
		memset(b, 0, sizeof(b));
		unsigned long idl = strlen(id), stl = strlen(BENCH_STATE), tsl = 0;
		long long step = 0;
		b[0].buffer_type = MYSQL_TYPE_STRING, b[0].buffer = id, b[0].length = &idl;
		b[1].buffer_type = MYSQL_TYPE_LONGLONG, b[1].buffer = &step;
		b[2].buffer_type = MYSQL_TYPE_STRING, b[2].buffer = (void *)BENCH_STATE, b[2].length = &stl;
		b[3].buffer_type = MYSQL_TYPE_STRING, b[3].buffer = ts, b[3].length = &tsl;
		mysql_stmt_bind_param(st, b);
		while (!atomic_load(&g_go))
			usleep(100);
		while (atomic_load(&g_go) == 1) {
			dura_time_format(ts, dura_now_ms());
			tsl = strlen(ts);
			step = n;
			if (mysql_stmt_execute(st)) { /* autocommit: its own transaction */
				fprintf(stderr, "bench_worker: raw insert: %s\n", mysql_stmt_error(st));
				exit(1);
			}
			n++;
		}
		mysql_stmt_close(st);
		mysql_close(db);
	}
#endif
#ifdef BENCH_HAVE_LIBPQ
	if (g_kind == ST_PG) {
		PGconn *db = pg_connect();
		PGresult *r = PQprepare(db, "ins", "INSERT INTO bench_raw_ins(run_id, step, node_id, state, created_at) "
		                                   "VALUES($1,$2,'node',$3,$4)", 4, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "bench_worker: raw prepare: %s\n", PQerrorMessage(db));
			exit(1);
		}
		PQclear(r);
		char sn[24];
		while (!atomic_load(&g_go))
			usleep(100);
		while (atomic_load(&g_go) == 1) {
			dura_time_format(ts, dura_now_ms());
			snprintf(sn, sizeof(sn), "%lld", n);
			const char *v[4] = {id, sn, BENCH_STATE, ts};
			r = PQexecPrepared(db, "ins", 4, v, NULL, NULL, 0); /* autocommit: its own transaction */
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				fprintf(stderr, "bench_worker: raw insert: %s\n", PQerrorMessage(db));
				exit(1);
			}
			PQclear(r);
			n++;
		}
		PQfinish(db);
	}
#endif
	*count = n;
	return NULL;
}

static double raw_rate(int threads)
{
	pthread_t *t = malloc((size_t)threads * sizeof(*t));
	long long *c = calloc((size_t)threads, sizeof(*c));
	atomic_store(&g_go, 0);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, raw_thread, &c[i]);
	usleep(300000); /* connected */
	double t0 = now_us();
	atomic_store(&g_go, 1);
	usleep((useconds_t)(g_raw_secs * 1e6));
	atomic_store(&g_go, 2);
	double t1 = now_us();
	long long sum = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += c[i];
	}
	free(t);
	free(c);
	return (double)sum / ((t1 - t0) / 1e6);
}

/* ---- the server's counters ---------------------------------------------------- */

/* MariaDB: Questions (statements from clients; a procedure's own
 * statements not counted), Com_commit + Com_call_procedure (explicit
 * commits and procedure calls), Innodb_data_fsyncs. Not on PostgreSQL,
 * whose statistics reach the views late (a backend reports when idle). */
static int counters(counts *out)
{
	out->stmts = out->commits = out->fsyncs = -1;
#ifdef BENCH_HAVE_MARIADB
	if (g_kind == ST_MYSQL) {
		MYSQL *db = my_connect();
		int rc = mysql_query(db, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_commit', "
		                         "'Com_call_procedure', 'Innodb_data_fsyncs')");
		MYSQL_RES *r = rc ? NULL : mysql_store_result(db);
		if (r) {
			out->commits = 0;
			for (MYSQL_ROW row; (row = mysql_fetch_row(r));) {
				double v = atof(row[1]);
				if (!strcmp(row[0], "Questions"))
					out->stmts = v - 1; /* this SHOW */
				else if (!strcmp(row[0], "Innodb_data_fsyncs"))
					out->fsyncs = v;
				else
					out->commits += v;
			}
			mysql_free_result(r);
		}
		mysql_close(db);
		return r ? 0 : -1;
	}
#endif
	return -1;
}

/* ---- main -------------------------------------------------------------------- */

static void mask(char *out, size_t n, const char *url)
{
	snprintf(out, n, "%s", url);
	char *sch = strstr(out, "://");
	if (!sch)
		return;
	char *p = sch + 3, *slash = strchr(p, '/'), *at = NULL;
	for (char *x = p; *x && (!slash || x < slash); x++)
		if (*x == '@')
			at = x;
	char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (colon) {
		memmove(colon + 4, at, strlen(at) + 1);
		memcpy(colon, ":***", 4);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: bench_worker URL [-n N] [-m M] [-c 1,8,32] [-l L] [-r R] [-s SECS] [-k RUNS] [-L LEASE_MS] [-g off,on]\n");
		return 2;
	}
	g_url = argv[1];
	int n1 = 10000, m10 = 2000, lat = 200, krun = 64;
	double rate = 100;
	int64_t lease = 1000;
	int conc[MAXC] = {1, 8, 32}, nc = 3;
	int gset[2] = {1, 1}; /* group commit off, on: measured or not */
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (!strcmp(o, "-n"))
			n1 = atoi(v);
		else if (!strcmp(o, "-m"))
			m10 = atoi(v);
		else if (!strcmp(o, "-l"))
			lat = atoi(v);
		else if (!strcmp(o, "-r"))
			rate = atof(v);
		else if (!strcmp(o, "-s"))
			g_raw_secs = atof(v);
		else if (!strcmp(o, "-k"))
			krun = atoi(v);
		else if (!strcmp(o, "-L"))
			lease = atoll(v);
		else if (!strcmp(o, "-g")) {
			gset[0] = strstr(v, "off") != NULL;
			gset[1] = strstr(v, "on") != NULL;
		} else if (!strcmp(o, "-c")) {
			nc = 0;
			for (const char *p = v; *p && nc < MAXC; p += strcspn(p, ","), p += *p == ',')
				conc[nc++] = atoi(p);
		} else {
			fprintf(stderr, "bench_worker: unknown option %s\n", o);
			return 2;
		}
	}
	if (rate <= 0)
		rate = 100;
	mask(g_shown, sizeof(g_shown), g_url);
	if (!strncmp(g_url, "sqlite:", 7)) {
		g_kind = ST_SQLITE;
		const char *p = g_url + 7;
		if (!strncmp(p, "//", 2))
			p += 2;
		snprintf(g_sqlite_path, sizeof(g_sqlite_path), "%.*s", (int)strcspn(p, "?"), p);
		/* the raw side in a file of its own beside dura's */
		snprintf(g_sqlite_path + strlen(g_sqlite_path), sizeof(g_sqlite_path) - strlen(g_sqlite_path), ".raw");
		remove_db(g_sqlite_path);
		snprintf(g_durl, sizeof(g_durl), "%s", g_url);
	} else {
		if (!strncmp(g_url, "mysql:", 6) || !strncmp(g_url, "mariadb:", 8)) {
#ifdef BENCH_HAVE_MARIADB
			g_kind = ST_MYSQL;
			parse_mysql(&g_mt, g_url);
#else
			fprintf(stderr, "bench_worker: built without MariaDB Connector/C\n");
			return 1;
#endif
		} else {
#ifdef BENCH_HAVE_LIBPQ
			g_kind = ST_PG;
			snprintf(g_pgbase, sizeof(g_pgbase), "%.*s", (int)strcspn(g_url, "?"), g_url);
#else
			fprintf(stderr, "bench_worker: built without libpq\n");
			return 1;
#endif
		}
		int maxc = 1;
		for (int i = 0; i < nc; i++)
			maxc = conc[i] > maxc ? conc[i] : maxc;
		/* dura's tables of its own (prefix bench_), so that the test
		 * suites' tables in the same database stay as they were */
		snprintf(g_durl, sizeof(g_durl), "%s", g_url);
		if (!strstr(g_url, "pool_idle="))
			snprintf(g_durl + strlen(g_durl), sizeof(g_durl) - strlen(g_durl), "%cpool_idle=%d",
			         strchr(g_durl, '?') ? '&' : '?', maxc + 2);
		if (!strstr(g_url, "prefix="))
			snprintf(g_durl + strlen(g_durl), sizeof(g_durl) - strlen(g_durl), "%cprefix=bench_",
			         strchr(g_durl, '?') ? '&' : '?');
	}
	printf("bench_worker %s: N=%d runs x 1 node, M=%d runs x 10 nodes; latency: %d runs at %.0f/s after each burn-down; "
	       "raw: %.1f s per concurrency\n", g_shown, n1, m10, lat, rate, g_raw_secs);
	fflush(stdout);
	raw_prepare_table();
	double raw[MAXC];
	for (int c = 0; c < nc; c++) {
		raw[c] = raw_rate(conc[c]);
		printf("raw single-row INSERT, %2d thread(s), own connections: %8.0f INSERT/s\n", conc[c], raw[c]);
		fflush(stdout);
	}
	struct { int runs, nodes; } shapes[2] = {{n1, 1}, {m10, 10}};
	for (int sh = 0; sh < 2; sh++) {
		if (shapes[sh].runs <= 0)
			continue;
		double one[2] = {0, 0};
		for (int c = 0; c < nc; c++)
			for (int g = 0; g < 2; g++) {
				if (!gset[g])
					continue;
				int group = g ? 1 : -1;
				result r = burn(conc[c], shapes[sh].runs, shapes[sh].nodes, group, lat, rate);
				if (conc[c] == 1)
					one[g] = r.steps_s;
				printf("worker %5d runs x %2d node(s) threads=%2d group_commit=%s: %8.0f steps/s, "
				       "claim-to-start p50 %6.1f ms p99 %6.1f ms, %llu commits in groups; "
				       "/ raw INSERT(%d) = %.2fx",
				       shapes[sh].runs, shapes[sh].nodes, conc[c], g ? "on " : "off", r.steps_s, r.p50_ms, r.p99_ms,
				       r.groups, conc[c], raw[c] > 0 ? r.steps_s / raw[c] : 0);
				if (one[g] > 0)
					printf(", / dura 1-thread = %.2fx", r.steps_s / one[g]);
				if (r.have_counts)
					printf("; server per step: %.2f statements, %.2f commits, %.2f log fsyncs", r.per_step.stmts,
					       r.per_step.commits, r.per_step.fsyncs);
				printf("\n");
				fflush(stdout);
			}
	}
	if (krun > RESCUE_MAX)
		krun = RESCUE_MAX;
	if (krun > 0) {
		double ms = rescue(krun, lease);
		if (ms < 0)
			printf("rescue: FAILED\n");
		else
			printf("rescue: %d runs of 10 nodes held by an 8-thread worker process killed with SIGKILL part-way; "
			       "first step of a rescued run in the second process %.0f ms after the kill (lease_ms %lld, poll_ms 10)\n",
			       krun, ms, (long long)lease);
	}
	if (g_kind == ST_SQLITE)
		remove_db(g_sqlite_path);
	return 0;
}
