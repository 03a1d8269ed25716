/*
 * bench_mysql - what dura costs on MySQL/MariaDB, against the raw driver
 * (MariaDB Connector/C prepared statements on its own connections) in the
 * same run, on the same server and the same tables (dura creates them, and
 * every run, so the schema and indexes are identical).
 *
 *   1. step commit latency, 1 thread, interleaved round by round:
 *        dura      dura_store_commit() (one CALL dura_commit round trip)
 *        raw-tx    the same transaction by hand: START TRANSACTION; UPDATE
 *                  (CAS on version); INSERT step; INSERT outbox; COMMIT
 *        raw-call  CALL dura_commit(...) prepared and executed directly
 *   2. steps per second, 8 threads each committing to its own run: one
 *      shared dura_store (pool_idle raised to 8, so the pool keeps all 8
 *      connections) against 8 raw connections doing raw-tx, alternating
 *      rounds; medians of the rounds
 *   3. cache hit latency: dura_store_cache_get against a raw prepared
 *      primary-key SELECT of the same row
 *   4. round trips per commit and per cache hit, from the server's global
 *      counters (Questions + Com_stmt_prepare + Com_stmt_reset +
 *      Com_admin_commands) around K operations from one thread, less what
 *      the SHOW itself counts
 *
 * About 10,000 commits in all with the default SAMPLES (800): seconds on a
 * local server.
 *
 * usage: bench_mysql [URL] [SAMPLES]
 *   URL defaults to $DURA_TEST_MYSQL_URL; the raw side reads
 *   mysql://user:pass@host:port/db (or mariadb://, or the DSN form
 *   user:pass@tcp(host:port)/db) and its prefix= option.
 */
#include "raw.h"

#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 5 /* counted rounds of the threads test (plus one warm-up) */
#define RT_OPS 100

static const char CACHE_VALUE[] = "{\"count\":11,\"text\":\"hello dura\",\"model\":\"v2\"}";

/* ---- errors ------------------------------------------------------------------ */

static void my_die(MYSQL *db, const char *what)
{
	fail("%s: %s", what, mysql_error(db));
}

static void st_die(MYSQL_STMT *st, const char *what)
{
	fail("%s: %s", what, mysql_stmt_error(st));
}

/* ---- the server, as the raw side reaches it -------------------------------------- */

typedef struct target {
	char user[128], pass[128], host[256], db[128], prefix[64];
	unsigned port;
} target;

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

static void parse_target(target *t, const char *url)
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
	for (const char *x = p; x < (slash ? slash : end); x++)
		if (*x == '@')
			at = x; /* the last '@' before the path */
	if (!slash)
		fail("the URL names no database: %s", url);
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		pct_decode(t->user, sizeof(t->user), p, (size_t)((colon ? colon : at) - p));
		if (colon)
			pct_decode(t->pass, sizeof(t->pass), colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	/* host[:port], or the DSN's tcp(host:port) */
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
	if (q) {
		const char *v = strstr(q, "prefix=");
		if (v && (v[-1] == '?' || v[-1] == '&'))
			snprintf(t->prefix, sizeof(t->prefix), "%.*s", (int)strcspn(v + 7, "&"), v + 7);
	}
}

/* A connection set up as dura sets up its own: TCP, utf8mb4, UTC, strict,
 * READ COMMITTED, found rows. */
static MYSQL *raw_connect(const target *t)
{
	MYSQL *db = mysql_init(NULL);
	if (!db)
		fail("mysql_init");
	unsigned proto = MYSQL_PROTOCOL_TCP;
	mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(db, MYSQL_OPT_PROTOCOL, &proto);
	if (!mysql_real_connect(db, t->host, t->user, t->pass, t->db, t->port, NULL,
	                        CLIENT_FOUND_ROWS | CLIENT_MULTI_RESULTS))
		my_die(db, "raw connect");
	const char *setup[] = {"SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
	                       "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
	                       "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"};
	for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
		if (mysql_query(db, setup[i]))
			my_die(db, setup[i]);
	return db;
}

static MYSQL_STMT *raw_prepare(MYSQL *db, const char *prefix, const char *fmt)
{
	/* fmt has %s for each table name's prefix */
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, prefix, prefix, prefix);
	MYSQL_STMT *st = mysql_stmt_init(db);
	if (!st || mysql_stmt_prepare(st, sql, strlen(sql)))
		my_die(db, sql);
	return st;
}

/* ---- parameters ------------------------------------------------------------------- */

#define MAXP 20
typedef struct params {
	MYSQL_BIND b[MAXP];
	unsigned long len[MAXP];
	long long i[MAXP];
	MYSQL_TIME t[MAXP];
	my_bool null[MAXP];
	int n;
} params;

static MYSQL_BIND *p_next(params *p)
{
	MYSQL_BIND *b = &p->b[p->n];
	memset(b, 0, sizeof(*b));
	return b;
}

static void p_str(params *p, const char *s)
{
	MYSQL_BIND *b = p_next(p);
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = (void *)s;
	p->len[p->n] = (unsigned long)strlen(s);
	b->buffer_length = p->len[p->n];
	b->length = &p->len[p->n];
	p->n++;
}

static void p_int(params *p, long long v)
{
	MYSQL_BIND *b = p_next(p);
	p->i[p->n] = v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &p->i[p->n];
	p->n++;
}

static void p_null(params *p)
{
	MYSQL_BIND *b = p_next(p);
	p->null[p->n] = 1;
	b->buffer_type = MYSQL_TYPE_NULL;
	b->is_null = &p->null[p->n];
	p->n++;
}

static void ms_to_time(MYSQL_TIME *t, int64_t ms)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	memset(t, 0, sizeof(*t));
	t->year = (unsigned)tm.tm_year + 1900;
	t->month = (unsigned)tm.tm_mon + 1;
	t->day = (unsigned)tm.tm_mday;
	t->hour = (unsigned)tm.tm_hour;
	t->minute = (unsigned)tm.tm_min;
	t->second = (unsigned)tm.tm_sec;
	t->second_part = (unsigned long)(ms % 1000) * 1000;
	t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

static void p_time(params *p, int64_t ms)
{
	MYSQL_BIND *b = p_next(p);
	ms_to_time(&p->t[p->n], ms);
	b->buffer_type = MYSQL_TYPE_DATETIME;
	b->buffer = &p->t[p->n];
	p->n++;
}

static void exec(MYSQL_STMT *st, params *p, const char *what)
{
	if (mysql_stmt_bind_param(st, p->b) || mysql_stmt_execute(st))
		st_die(st, what);
}

/* ---- the raw side -------------------------------------------------------------- */

typedef struct rawc {
	MYSQL *db;
	MYSQL_STMT *upd, *step, *outbox, *call;
	char run_id[DURA_UUID_LEN + 1];
	int64_t version, step_no;
} rawc;

static void rawc_open(rawc *r, const target *t, const char *run_id, int64_t version, int64_t step_no)
{
	memset(r, 0, sizeof(*r));
	r->db = raw_connect(t);
	const char *p = t->prefix;
	r->upd = raw_prepare(r->db, p,
	                     "UPDATE %sworkflow_records SET object = ?, status = ?, error = ?, attempt = ?, next_run_at = ?, "
	                     "updated_at = ?, version = version + 1, step_no = step_no + 1 WHERE run_id = ? AND version = ?");
	r->step = raw_prepare(r->db, p,
	                      "INSERT INTO %sworkflow_steps (run_id, step, node_id, state, created_at) VALUES (?, ?, ?, ?, ?)");
	r->outbox = raw_prepare(r->db, p,
	                        "INSERT INTO %sworkflow_outbox (id, workflow_name, run_id, type, data, created_at) "
	                        "VALUES (?, ?, ?, ?, ?, ?)");
	r->call = raw_prepare(r->db, p, "CALL %sdura_commit(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	memcpy(r->run_id, run_id, DURA_UUID_LEN + 1);
	r->version = version;
	r->step_no = step_no;
}

static void rawc_close(rawc *r)
{
	mysql_stmt_close(r->upd);
	mysql_stmt_close(r->step);
	mysql_stmt_close(r->outbox);
	mysql_stmt_close(r->call);
	mysql_close(r->db);
}

/* dura's commit transaction, by hand: 5 round trips. */
static void raw_tx_commit(rawc *r)
{
	int64_t now = dura_now_ms();
	char ev[DURA_UUID_LEN + 1], data[200];
	dura_uuid7(ev);
	params p;
	if (mysql_query(r->db, "START TRANSACTION"))
		my_die(r->db, "START TRANSACTION");
	p.n = 0;
	p_str(&p, BENCH_STATE);
	p_str(&p, "next");
	p_str(&p, "");
	p_int(&p, 0);
	p_time(&p, now);
	p_time(&p, now);
	p_str(&p, r->run_id);
	p_int(&p, r->version);
	exec(r->upd, &p, "raw UPDATE");
	if (mysql_stmt_affected_rows(r->upd) != 1)
		fail("raw UPDATE: run %s is not at version %lld", r->run_id, (long long)r->version);
	p.n = 0;
	p_str(&p, r->run_id);
	p_int(&p, r->step_no);
	p_str(&p, "node");
	p_str(&p, BENCH_STATE);
	p_time(&p, now);
	exec(r->step, &p, "raw INSERT step");
	snprintf(data, sizeof(data),
	         "{\"run_id\":\"%s\",\"step\":%lld,\"node_id\":\"node\",\"status\":\"next\",\"run_state\":2}", r->run_id,
	         (long long)r->step_no);
	p.n = 0;
	p_str(&p, ev);
	p_str(&p, "bench");
	p_str(&p, r->run_id);
	p_str(&p, "step");
	p_str(&p, data);
	p_time(&p, now);
	exec(r->outbox, &p, "raw INSERT outbox");
	if (mysql_commit(r->db))
		my_die(r->db, "COMMIT");
	r->version++;
	r->step_no++;
}

/* The same commit through dura's stored procedure, called directly. */
static void raw_call_commit(rawc *r)
{
	int64_t now = dura_now_ms();
	char ev[DURA_UUID_LEN + 1];
	dura_uuid7(ev);
	params p;
	p.n = 0;
	p_str(&p, r->run_id);
	p_int(&p, r->version);
	p_str(&p, BENCH_STATE);
	p_str(&p, "next");
	p_str(&p, "");
	p_int(&p, 0);
	p_time(&p, now);
	p_time(&p, now);
	p_int(&p, 1);
	p_null(&p);
	p_int(&p, 0);
	p_str(&p, "node");
	p_str(&p, ev);
	p_str(&p, "step");
	p_null(&p);
	char head[160];
	snprintf(head, sizeof(head), "{\"run_id\":\"%s\",\"step\":", r->run_id);
	p_str(&p, head);
	p_str(&p, ",\"node_id\":\"node\",\"status\":\"next\",\"run_state\":");
	exec(r->call, &p, "raw CALL dura_commit");
	long long ok = -1, v = 0;
	my_bool v_null = 0;
	int rc;
	do {
		if (mysql_stmt_field_count(r->call) > 0) {
			MYSQL_BIND b[2];
			memset(b, 0, sizeof(b));
			b[0].buffer_type = MYSQL_TYPE_LONGLONG;
			b[0].buffer = &ok;
			b[1].buffer_type = MYSQL_TYPE_LONGLONG;
			b[1].buffer = &v;
			b[1].is_null = &v_null;
			if (mysql_stmt_bind_result(r->call, b) || mysql_stmt_store_result(r->call))
				st_die(r->call, "raw CALL result");
			while (mysql_stmt_fetch(r->call) == 0) {
			}
			mysql_stmt_free_result(r->call);
		}
		rc = mysql_stmt_next_result(r->call);
	} while (rc == 0);
	if (rc > 0)
		st_die(r->call, "raw CALL dura_commit");
	if (ok != 1 || v != r->step_no)
		fail("raw CALL dura_commit: run %s did not commit (%lld, %lld)", r->run_id, ok, v);
	r->version++;
	r->step_no++;
}

/* ---- server counters ----------------------------------------------------------------- */

typedef struct counters {
	long long questions, prepare, reset, admin, call;
} counters;

static void read_counters(MYSQL *db, counters *out)
{
	memset(out, 0, sizeof(*out));
	if (mysql_query(db, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_stmt_prepare', "
	                    "'Com_stmt_reset', 'Com_admin_commands', 'Com_call_procedure')"))
		my_die(db, "SHOW GLOBAL STATUS");
	MYSQL_RES *res = mysql_store_result(db);
	if (!res)
		my_die(db, "SHOW GLOBAL STATUS");
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res))) {
		long long v = atoll(row[1]);
		if (!strcasecmp(row[0], "Questions"))
			out->questions = v;
		else if (!strcasecmp(row[0], "Com_stmt_prepare"))
			out->prepare = v;
		else if (!strcasecmp(row[0], "Com_stmt_reset"))
			out->reset = v;
		else if (!strcasecmp(row[0], "Com_admin_commands"))
			out->admin = v;
		else if (!strcasecmp(row[0], "Com_call_procedure"))
			out->call = v;
	}
	mysql_free_result(res);
}

/* round trips between two readings: every command that waits for a reply */
static long long trips(const counters *a, const counters *b)
{
	return (b->questions - a->questions) + (b->prepare - a->prepare) + (b->reset - a->reset) + (b->admin - a->admin);
}

/* Round trips per op, and CALLs per op, over RT_OPS ops from this thread. */
static void count_trips(MYSQL *admin, long long base, bench_op fn, void *arg, double *rt, double *calls)
{
	counters a, b;
	read_counters(admin, &a);
	for (int i = 0; i < RT_OPS; i++)
		fn(arg);
	read_counters(admin, &b);
	*rt = (double)(trips(&a, &b) - base) / RT_OPS;
	*calls = (double)(b.call - a.call) / RT_OPS;
}

static void op_raw_tx(void *arg)
{
	raw_tx_commit(arg);
}

static void op_raw_call(void *arg)
{
	raw_call_commit(arg);
}

/* ---- cache -------------------------------------------------------------------------- */

typedef struct rawcache {
	MYSQL *db;
	MYSQL_STMT *st;
	MYSQL_BIND rb[5];
	unsigned char value[4096];
	char error[1024], metadata[1024];
	MYSQL_TIME created, expires;
	unsigned long len[5];
	my_bool null[5];
	const char *key;
} rawcache;

static void rawcache_open(rawcache *c, const target *t, const char *key)
{
	memset(c, 0, sizeof(*c));
	c->db = raw_connect(t);
	c->key = key;
	c->st = raw_prepare(c->db, t->prefix,
	                    "SELECT value, error, created_at, expires_at, metadata FROM %sstep_cache WHERE `key` = ? "
	                    "AND (expires_at IS NULL OR expires_at > NOW(3))");
	MYSQL_BIND *b = c->rb;
	b[0].buffer_type = MYSQL_TYPE_BLOB;
	b[0].buffer = c->value;
	b[0].buffer_length = sizeof(c->value);
	b[1].buffer_type = MYSQL_TYPE_STRING;
	b[1].buffer = c->error;
	b[1].buffer_length = sizeof(c->error);
	b[2].buffer_type = MYSQL_TYPE_DATETIME;
	b[2].buffer = &c->created;
	b[3].buffer_type = MYSQL_TYPE_DATETIME;
	b[3].buffer = &c->expires;
	b[4].buffer_type = MYSQL_TYPE_STRING;
	b[4].buffer = c->metadata;
	b[4].buffer_length = sizeof(c->metadata);
	for (int i = 0; i < 5; i++) {
		b[i].length = &c->len[i];
		b[i].is_null = &c->null[i];
	}
	if (mysql_stmt_bind_result(c->st, c->rb))
		st_die(c->st, "raw cache bind");
}

/* One hit: the row by its primary key, its value copied out as any caller must. */
static void rawcache_get(void *arg)
{
	rawcache *c = arg;
	params p;
	p.n = 0;
	p_str(&p, c->key);
	exec(c->st, &p, "raw cache SELECT");
	if (mysql_stmt_store_result(c->st))
		st_die(c->st, "raw cache SELECT");
	if (mysql_stmt_fetch(c->st) != 0)
		fail("raw cache SELECT: no row for %s", c->key);
	void *copy = malloc(c->len[0] + 1);
	memcpy(copy, c->value, c->len[0]);
	mysql_stmt_free_result(c->st);
	free(copy);
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
		mysql_thread_init();
		rawc_open(&w->r, w->t, id, version, step_no);
	}
	thread_ready(&w->h);
	for (int i = 0; i < w->h.n; i++) {
		if (w->h.mode)
			raw_tx_commit(&w->r);
		else
			commit_dura(&w->d);
	}
	if (w->h.mode) {
		rawc_close(&w->r);
		mysql_thread_end();
	}
	return NULL;
}


/* ---- main ------------------------------------------------------------------------------ */

static char *server_var(MYSQL *db, const char *sql)
{
	static char buf[4][128];
	static int k;
	char *out = buf[k++ % 4];
	snprintf(out, 128, "?");
	if (mysql_query(db, sql) == 0) {
		MYSQL_RES *res = mysql_store_result(db);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		if (row && row[0])
			snprintf(out, 128, "%s", row[0]);
		mysql_free_result(res);
	}
	return out;
}

int main(int argc, char **argv)
{
	bench_name = "bench_mysql";
	const char *url = argc > 1 ? argv[1] : getenv("DURA_TEST_MYSQL_URL");
	int samples = argc > 2 ? atoi(argv[2]) : 800;
	if (!url || !*url) {
		fprintf(stderr, "usage: bench_mysql [URL] [SAMPLES]   (URL defaults to $DURA_TEST_MYSQL_URL)\n");
		return 2;
	}
	if (samples < 20)
		samples = 20;
	if (mysql_library_init(0, NULL, NULL))
		fail("mysql_library_init");
	target t;
	parse_target(&t, url);

	/* the shared handle keeps all THREADS connections idle between uses */
	char durl[1200], idle[16];
	snprintf(idle, sizeof(idle), "%d", THREADS);
	url_option(durl, sizeof(durl), url, "pool_idle", idle);
	dura_store_info info;
	dura_store *s = bench_store_open(durl, &info);

	MYSQL *admin = raw_connect(&t);
	printf("bench_mysql: dura %s against MariaDB Connector/C %s, same server, same tables, %ld CPUs\n",
	       DURA_VERSION_STRING, mysql_get_client_info(), sysconf(_SC_NPROCESSORS_ONLN));
	printf("server %s at %s:%u, innodb_flush_log_at_trx_commit=%s, sync_binlog=%s, log_bin=%s\n",
	       mysql_get_server_info(admin), t.host, t.port, server_var(admin, "SELECT @@innodb_flush_log_at_trx_commit"),
	       server_var(admin, "SELECT @@sync_binlog"), server_var(admin, "SELECT @@log_bin"));
	printf("dura store: %s (schema %d)\n\n", info.location, info.schema_version);

	/* ---- 1. commit latency, one thread ---- */
	drun d;
	drun_make(&d, s, BENCH_STATE);
	rawc r, rc;
	{
		char id[DURA_UUID_LEN + 1];
		int64_t v;
		make_run(s, BENCH_STATE, id, &v);
		rawc_open(&r, &t, id, v, 0);
		make_run(s, BENCH_STATE, id, &v);
		rawc_open(&rc, &t, id, v, 0);
	}
	int warm = samples / 10 + 10;
	bench_variant lat[3] = {{commit_dura, &d, samples_alloc(samples)},
	                        {op_raw_tx, &r, samples_alloc(samples)},
	                        {op_raw_call, &rc, samples_alloc(samples)}};
	double l = interleave(lat, 3, warm, samples);
	double d50, d99, t50, t99, c50, c99;
	printf("1. step commit latency, 1 thread, %d samples each, interleaved (%.1f s)\n", samples, l / 1e6);
	latency_line("dura_store_commit", 29, 8, lat[0].v, samples, &d50, &d99);
	latency_line("raw transaction (5 stmts)", 29, 8, lat[1].v, samples, &t50, &t99);
	latency_line("raw CALL dura_commit", 29, 8, lat[2].v, samples, &c50, &c99);
	printf("  ratio dura/raw-tx  p50 %.3fx  p99 %.3fx   dura/raw-call  p50 %.3fx  p99 %.3fx\n\n", d50 / t50,
	       d99 / t99, d50 / c50, d99 / c99);
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
	printf("  raw, %d connections, 5-stmt transaction        %8.0f steps/s\n", THREADS, rmed);
	printf("  ratio dura/raw %.3fx   (rounds dura:", dmed / rmed);
	print_rates(rates[0], ROUNDS);
	printf("  raw:");
	print_rates(rates[1], ROUNDS);
	printf(")\n\n");

	/* ---- 3. cache hit latency ---- */
	const char *key = "global:bench-mysql-k1";
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

	/* ---- 4. round trips, from the server's counters, one thread at a time ---- */
	counters a, b;
	read_counters(admin, &a);
	read_counters(admin, &b);
	long long base = trips(&a, &b); /* what one SHOW counts */
	double rt_d, rt_t, rt_c, rt_gd, rt_gr, call_d, call_t, call_c, unused;
	count_trips(admin, base, commit_dura, &d, &rt_d, &call_d);
	count_trips(admin, base, op_raw_tx, &r, &rt_t, &call_t);
	count_trips(admin, base, op_raw_call, &rc, &rt_c, &call_c);
	count_trips(admin, base, dura_cache_hit, &dc, &rt_gd, &unused);
	count_trips(admin, base, rawcache_get, &rcache, &rt_gr, &unused);
	printf("4. round trips (server's global Questions + Com_stmt_prepare + Com_stmt_reset + Com_admin_commands, "
	       "%d ops each, one at a time, less the SHOW's own %lld)\n",
	       RT_OPS, base);
	printf("  round trips per commit: dura %.2f, raw %.2f, raw CALL %.2f   (CALLs per commit: dura %.2f, raw %.2f, "
	       "raw CALL %.2f)\n",
	       rt_d, rt_t, rt_c, call_d, call_t, call_c);
	printf("  round trips per cache hit: dura %.2f, raw %.2f\n", rt_gd, rt_gr);

	mysql_stmt_close(rcache.st);
	mysql_close(rcache.db);
	rawc_close(&r);
	rawc_close(&rc);
	mysql_close(admin);
	dura_store_close(s);
	mysql_library_end();
	return 0;
}
