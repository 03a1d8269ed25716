/*
 * bench_redis - what dura costs on Redis, against raw hiredis (its own
 * connections, redisConnect) in the same run, on the same server and the
 * same keys (dura creates the runs; the raw side writes their hashes, step
 * lists, the outbox stream and the due zset, so the key sizes and
 * encodings are dura's own).
 *
 *   1. step commit latency, 1 thread, interleaved round by round, a
 *      ~200-byte state:
 *        dura        dura_store_commit() (one EVALSHA of the commit script:
 *                    HMGET check, RPUSH step, HINCRBY/HSET run, XADD +
 *                    HSET outbox:ids, the reindex's HMGET + ZADD/ZREMs,
 *                    PUBLISH changed)
 *        raw-eval    one EVALSHA of a minimal script doing the same writes:
 *                    HGET version (the CAS), RPUSH step, HINCRBY version,
 *                    HSET run fields, XADD outbox, HSET outbox:ids, ZADD due
 *        raw-multi   the same commands as MULTI ... EXEC, pipelined in one
 *                    write (no CAS: that needs WATCH, one more round trip;
 *                    the outbox:ids value is the event's time, since the
 *                    stream entry id is unknown inside MULTI)
 *   2. steps per second, 8 threads each committing to its own run: one
 *      shared dura_store (pool_idle raised to 8) against 8 raw connections
 *      doing raw-eval and raw-multi, rounds rotating the order; medians
 *   3. cache hit latency: dura_store_cache_get and dura_cache_do_store (a
 *      hit: the compute function is never called) against a raw HGETALL
 *      of the same hash
 *   4. throughput floor: raw single SETs (the ~200-byte state) per second,
 *      1 and 8 threads, each its own connection and key
 *   5. round trips, counted two ways, RT_OPS ops each from one thread:
 *      at the client, dura's requests are its send() calls (the store
 *      writes each request with one send() on its own socket; this program
 *      interposes send(); hiredis writes with write(), so the raw side is
 *      not counted there); at the server, the deltas of INFO stats
 *      total_commands_processed and of INFO commandstats's cmdstat_evalsha
 *      and cmdstat_exec calls, less what the INFO itself adds. On Redis 7
 *      total_commands_processed also counts the commands a script calls
 *      (redis.call), so it is the server's work per commit, not round
 *      trips; the EVALSHA calls are the round trips.
 *
 * usage: bench_redis [URL] [SAMPLES]
 *   URL defaults to $DURA_TEST_REDIS_URL (redis://[user:pass@]host:port/db;
 *   the raw side speaks plain TCP only: hiredis 0.14 has no TLS). Keys go
 *   under prefix bench ({bench}:...) unless the URL names a prefix=; with
 *   the bench's own prefix every key it wrote is removed at the end (the
 *   schema mark stays). The password is never printed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "raw.h"

#include <dlfcn.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 5 /* counted rounds of the threads tests (plus one warm-up) */
#define RT_OPS 300

/* The step's state: about 200 bytes of JSON. */
static const char STATE[] =
	"{\"order\":42,\"items\":[{\"sku\":\"A-100\",\"qty\":1,\"price\":19.5},{\"sku\":\"B-220\",\"qty\":3,\"price\":7.25},"
	"{\"sku\":\"C-310\",\"qty\":2,\"price\":12}],\"customer\":\"ada\",\"total\":99.5,\"currency\":\"EUR\","
	"\"paid\":true}";

static const char CACHE_VALUE[] = "{\"count\":11,\"text\":\"hello dura\",\"model\":\"v2\"}";

/* ---- counting dura's requests: send(), interposed ---------------------------------- */

static atomic_long g_sends, g_sent_bytes;
/* the raw side's request bytes: hiredis's output buffer before it is sent */
static atomic_long g_raw_bytes;

typedef ssize_t (*send_fn)(int, const void *, size_t, int);

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static send_fn f;
	if (!f) {
		*(void **)&f = dlsym(RTLD_NEXT, "send");
		if (!f)
			abort();
	}
	atomic_fetch_add(&g_sends, 1);
	atomic_fetch_add(&g_sent_bytes, (long)len);
	return f(fd, buf, len, flags);
}

/* ---- the server, as the raw side reaches it -------------------------------------- */

typedef struct target {
	char host[256], user[128], pass[256];
	int port, db;
	char P[80]; /* the key prefix, "{bench}:" */
} target;

static void parse_target(target *t, const char *url)
{
	memset(t, 0, sizeof(*t));
	t->port = 6379;
	if (!strncmp(url, "rediss://", 9))
		fail("the raw side has no TLS (hiredis 0.14): give a redis:// URL");
	if (strncmp(url, "redis://", 8))
		fail("not a redis:// URL");
	const char *p = url + 8;
	const char *end = p + strcspn(p, "/?");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			snprintf(t->user, sizeof(t->user), "%.*s", (int)(colon - p), p);
			snprintf(t->pass, sizeof(t->pass), "%.*s", (int)(at - colon - 1), colon + 1);
		} else {
			snprintf(t->pass, sizeof(t->pass), "%.*s", (int)(at - p), p);
		}
		p = at + 1;
	}
	const char *colon = memchr(p, ':', (size_t)(end - p));
	if (*p == '[') /* [v6]:port */
		colon = strstr(p, "]:") ? strstr(p, "]:") + 1 : NULL, p++;
	size_t hl = colon ? (size_t)(colon - p) : (size_t)(end - p);
	if (hl && p[hl - 1] == ']')
		hl--;
	snprintf(t->host, sizeof(t->host), "%.*s", (int)hl, p);
	if (colon)
		t->port = atoi(colon + 1);
	if (*end == '/')
		t->db = atoi(end + 1);
	const char *q = strchr(url, '?');
	const char *pre = q ? strstr(q, "prefix=") : NULL;
	if (pre)
		snprintf(t->P, sizeof(t->P), "{%.*s}:", (int)strcspn(pre + 7, "&"), pre + 7);
	else
		snprintf(t->P, sizeof(t->P), "{dura}:");
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		fail("redis: %s", c->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		fail("redis %s: %s", fmt, r->str);
	return r;
}

static redisContext *raw_connect(const target *t)
{
	redisContext *c = redisConnect(t->host, t->port);
	if (!c || c->err)
		fail("raw connect %s:%d: %s", t->host, t->port, c ? c->errstr : "out of memory");
	if (t->pass[0]) {
		redisReply *r = t->user[0] ? cmd(c, "AUTH %s %s", t->user, t->pass) : cmd(c, "AUTH %s", t->pass);
		freeReplyObject(r);
	}
	if (t->db)
		freeReplyObject(cmd(c, "SELECT %d", t->db));
	return c;
}

/* ---- the raw side -------------------------------------------------------------- */

/* The same writes as dura's commit, minimal: the CAS, the step, the run's
 * fields, the outbox entry and its id, the due zset. */
static const char RAW_SCRIPT[] =
	"local k = KEYS[1]\n"
	"if tonumber(redis.call('HGET', k, 'version')) ~= tonumber(ARGV[1]) then\n"
	"  return redis.error_reply('conflict')\n"
	"end\n"
	"redis.call('RPUSH', KEYS[2], ARGV[6]..'\\n4\\nnode'..ARGV[3])\n"
	"local v = redis.call('HINCRBY', k, 'version', 1)\n"
	"redis.call('HSET', k, 'state', ARGV[3], 'status', 'next', 'step_no', ARGV[2] + 1, 'updated_at', ARGV[6],\n"
	"  'next_run_at', ARGV[6], 'last_event', ARGV[4])\n"
	"local sid = redis.call('XADD', KEYS[3], '*', 'id', ARGV[4], 'workflow_name', 'bench', 'run_id', ARGV[7],\n"
	"  'type', 'step', 'data', ARGV[5], 'created_at', ARGV[6])\n"
	"redis.call('HSET', KEYS[4], ARGV[4], sid)\n"
	"redis.call('ZADD', KEYS[5], ARGV[6], ARGV[7])\n"
	"return v\n";

typedef struct rawc {
	redisContext *c;
	char sha[48];
	char run_id[DURA_UUID_LEN + 1];
	char k_run[160], k_steps[160], k_outbox[120], k_ids[120], k_due[120], k_set[120];
	int64_t version, step_no;
} rawc;

static void rawc_open(rawc *r, const target *t, const char *run_id, int64_t version, int id)
{
	memset(r, 0, sizeof(*r));
	r->c = raw_connect(t);
	redisReply *x = cmd(r->c, "SCRIPT LOAD %s", RAW_SCRIPT);
	snprintf(r->sha, sizeof(r->sha), "%s", x->str);
	freeReplyObject(x);
	if (run_id) {
		memcpy(r->run_id, run_id, DURA_UUID_LEN + 1);
		snprintf(r->k_run, sizeof(r->k_run), "%srun:%s", t->P, run_id);
		snprintf(r->k_steps, sizeof(r->k_steps), "%ssteps:%s", t->P, run_id);
	}
	snprintf(r->k_outbox, sizeof(r->k_outbox), "%soutbox", t->P);
	snprintf(r->k_ids, sizeof(r->k_ids), "%soutbox:ids", t->P);
	snprintf(r->k_due, sizeof(r->k_due), "%sdue:bench", t->P);
	snprintf(r->k_set, sizeof(r->k_set), "%sraw:set:%d", t->P, id);
	r->version = version;
}

static void rawc_close(rawc *r)
{
	redisFree(r->c);
	r->c = NULL;
}

/* The commit's arguments as the raw side sends them. */
typedef struct rawargs {
	char ver[24], step[24], now[24], ev[DURA_UUID_LEN + 1], data[320];
} rawargs;

static void rawargs_fill(const rawc *r, rawargs *a)
{
	snprintf(a->ver, sizeof(a->ver), "%lld", (long long)r->version);
	snprintf(a->step, sizeof(a->step), "%lld", (long long)r->step_no);
	snprintf(a->now, sizeof(a->now), "%lld", (long long)dura_now_ms());
	dura_uuid7(a->ev);
	snprintf(a->data, sizeof(a->data),
	         "{\"run_id\":\"%s\",\"step\":%lld,\"node_id\":\"node\",\"status\":\"next\",\"run_state\":2}", r->run_id,
	         (long long)r->step_no);
}

/* One EVALSHA: 1 round trip. */
static void raw_eval_commit(rawc *r)
{
	rawargs a;
	rawargs_fill(r, &a);
	const char *av[] = {"EVALSHA", r->sha, "5", r->k_run, r->k_steps, r->k_outbox, r->k_ids, r->k_due,
	                    a.ver, a.step, STATE, a.ev, a.data, a.now, r->run_id};
	redisReply *x = NULL;
	if (redisAppendCommandArgv(r->c, 15, av, NULL) != REDIS_OK)
		fail("raw EVALSHA: %s", r->c->errstr);
	atomic_fetch_add(&g_raw_bytes, (long)strlen(r->c->obuf));
	if (redisGetReply(r->c, (void **)&x) != REDIS_OK)
		fail("raw EVALSHA: %s", r->c->errstr);
	if (x->type != REDIS_REPLY_INTEGER || x->integer != r->version + 1)
		fail("raw EVALSHA: %s", x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
	freeReplyObject(x);
	r->version++;
	r->step_no++;
}

/* MULTI, the six writes, EXEC in one write: 1 round trip, 8 replies. */
static void raw_multi_commit(rawc *r)
{
	rawargs a;
	rawargs_fill(r, &a);
	char item[512], stepn[24];
	int il = snprintf(item, sizeof(item), "%s\n4\nnode%s", a.now, STATE);
	snprintf(stepn, sizeof(stepn), "%lld", (long long)r->step_no + 1);
	redisAppendCommand(r->c, "MULTI");
	redisAppendCommand(r->c, "RPUSH %s %b", r->k_steps, item, (size_t)il);
	redisAppendCommand(r->c, "HINCRBY %s version 1", r->k_run);
	redisAppendCommand(r->c, "HSET %s state %s status next step_no %s updated_at %s next_run_at %s last_event %s",
	                   r->k_run, STATE, stepn, a.now, a.now, a.ev);
	redisAppendCommand(r->c, "XADD %s * id %s workflow_name bench run_id %s type step data %s created_at %s",
	                   r->k_outbox, a.ev, r->run_id, a.data, a.now);
	redisAppendCommand(r->c, "HSET %s %s %s", r->k_ids, a.ev, a.now);
	redisAppendCommand(r->c, "ZADD %s %s %s", r->k_due, a.now, r->run_id);
	redisAppendCommand(r->c, "EXEC");
	atomic_fetch_add(&g_raw_bytes, (long)strlen(r->c->obuf));
	for (int i = 0; i < 8; i++) {
		redisReply *x;
		if (redisGetReply(r->c, (void **)&x) != REDIS_OK)
			fail("raw MULTI: %s", r->c->errstr);
		if (x->type == REDIS_REPLY_ERROR)
			fail("raw MULTI reply %d: %s", i, x->str);
		if (i == 7 && (x->type != REDIS_REPLY_ARRAY || x->elements != 6 ||
		               x->element[1]->integer != r->version + 1))
			fail("raw EXEC: unexpected reply");
		freeReplyObject(x);
	}
	r->version++;
	r->step_no++;
}

/* One SET of the state: 1 round trip. */
static void raw_set(rawc *r)
{
	const char *av[] = {"SET", r->k_set, STATE};
	redisReply *x = redisCommandArgv(r->c, 3, av, NULL);
	if (!x || x->type != REDIS_REPLY_STATUS)
		fail("raw SET: %s", x ? x->str : r->c->errstr);
	freeReplyObject(x);
}

/* ---- cache ----------------------------------------------------------------------- */

typedef struct rawcache {
	redisContext *c;
	char key[200];
} rawcache;

static void rawcache_get(void *arg)
{
	rawcache *c = arg;
	const char *av[] = {"HGETALL", c->key};
	redisReply *x = redisCommandArgv(c->c, 2, av, NULL);
	if (!x || x->type != REDIS_REPLY_ARRAY || x->elements < 2)
		fail("raw HGETALL: %s", x && x->type == REDIS_REPLY_ERROR ? x->str : "no entry");
	int found = 0;
	for (size_t i = 0; i + 1 < x->elements; i += 2)
		if (!strcmp(x->element[i]->str, "value"))
			found = x->element[i + 1]->len == sizeof(CACHE_VALUE) - 1;
	if (!found)
		fail("raw HGETALL: the value is not there");
	freeReplyObject(x);
}

static int never(dura_cache_value *out, void *payload)
{
	(void)out;
	(void)payload;
	fail("the cached value was computed again");
	return -1;
}

static void dura_cache_do_hit(void *arg)
{
	dcache *d = arg;
	dura_cache_entry *e;
	if (dura_cache_do_store(d->s, d->key, NULL, never, NULL, &e))
		die("dura_cache_do_store");
	dura_cache_entry_free(e);
}

/* ---- threads ----------------------------------------------------------------------- */

enum { W_DURA, W_EVAL, W_MULTI, W_SET };
static const char *const MODE_NAME[] = {"dura", "raw-eval", "raw-multi", "raw-set"};

typedef struct worker {
	bench_thread h; /* first: run_threads(); its mode is a W_ */
	drun d;
	rawc r;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	thread_ready(&w->h);
	for (int i = 0; i < w->h.n; i++) {
		switch (w->h.mode) {
		case W_DURA:
			commit_dura(&w->d);
			break;
		case W_EVAL:
			raw_eval_commit(&w->r);
			break;
		case W_MULTI:
			raw_multi_commit(&w->r);
			break;
		default:
			raw_set(&w->r);
			break;
		}
	}
	return NULL;
}

/* One round: nth threads, n ops each; ops per second. */
static double round_rate(worker *ws, int nth, int mode, int n)
{
	return run_threads(ws, sizeof(*ws), nth, worker_main, mode, n);
}

/* ---- round trips --------------------------------------------------------------------- */

static void op_eval(void *arg)
{
	raw_eval_commit(arg);
}
static void op_multi(void *arg)
{
	raw_multi_commit(arg);
}
static void op_set(void *arg)
{
	raw_set(arg);
}

typedef struct counters {
	long long total, evalsha, exec, evalsha_us, exec_us, aof;
} counters;

static long long field(const char *info, const char *name)
{
	const char *p = strstr(info, name);
	return p ? atoll(p + strlen(name)) : 0;
}

/* One INFO: total_commands_processed (which does not count this INFO yet)
 * and the EVALSHA and EXEC calls. */
static counters read_counters(redisContext *admin)
{
	redisReply *r = cmd(admin, "INFO everything");
	counters c = {field(r->str, "total_commands_processed:"), field(r->str, "cmdstat_evalsha:calls="),
	              field(r->str, "cmdstat_exec:calls="), 0, 0, field(r->str, "aof_current_size:")};
	const char *e = strstr(r->str, "cmdstat_evalsha:");
	if (e)
		c.evalsha_us = field(e, "usec=");
	e = strstr(r->str, "cmdstat_exec:");
	if (e)
		c.exec_us = field(e, "usec=");
	freeReplyObject(r);
	return c;
}

typedef struct trips {
	double sends, total, evalsha, exec;
	double bytes; /* request bytes: dura's send()s, the raw side's buffer */
	double server_us; /* EVALSHA and EXEC execution time on the server */
	double aof;   /* bytes appended to the AOF */
} trips;

static trips count_trips(redisContext *admin, bench_op fn, void *arg)
{
	counters a = read_counters(admin);
	long s0 = atomic_load(&g_sends), y0 = atomic_load(&g_sent_bytes), w0 = atomic_load(&g_raw_bytes);
	for (int i = 0; i < RT_OPS; i++)
		fn(arg);
	long s1 = atomic_load(&g_sends), y1 = atomic_load(&g_sent_bytes), w1 = atomic_load(&g_raw_bytes);
	counters b = read_counters(admin);
	trips t = {(double)(s1 - s0) / RT_OPS, (double)(b.total - a.total - 1) / RT_OPS, /* less the first INFO */
	           (double)(b.evalsha - a.evalsha) / RT_OPS, (double)(b.exec - a.exec) / RT_OPS,
	           (double)(y1 - y0 + w1 - w0) / RT_OPS,
	           (double)(b.evalsha_us - a.evalsha_us + b.exec_us - a.exec_us) / RT_OPS,
	           (double)(b.aof - a.aof) / RT_OPS};
	return t;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *config_get(redisContext *c, const char *name)
{
	static char buf[4][64];
	static int k;
	char *out = buf[k++ % 4];
	snprintf(out, 64, "?");
	redisReply *r = redisCommand(c, "CONFIG GET %s", name);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		snprintf(out, 64, "%s", r->element[1]->str);
	if (r)
		freeReplyObject(r);
	return out;
}

/* Remove every key under the prefix but the schema mark. */
static void cleanup(redisContext *c, const char *P)
{
	char match[100], schema[100], cursor[32] = "0";
	snprintf(match, sizeof(match), "%s*", P);
	snprintf(schema, sizeof(schema), "%sschema", P);
	do {
		redisReply *r = cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++)
			if (strcmp(r->element[1]->element[i]->str, schema))
				freeReplyObject(cmd(c, "UNLINK %s", r->element[1]->element[i]->str));
		freeReplyObject(r);
	} while (strcmp(cursor, "0"));
}

int main(int argc, char **argv)
{
	bench_name = "bench_redis";
	const char *url = argc > 1 ? argv[1] : getenv("DURA_TEST_REDIS_URL");
	int samples = argc > 2 ? atoi(argv[2]) : 3000;
	if (!url || !*url) {
		fprintf(stderr, "usage: bench_redis [URL] [SAMPLES]   (URL defaults to $DURA_TEST_REDIS_URL)\n");
		return 2;
	}
	if (samples < 20)
		samples = 20;
	char purl[1200];
	int own_prefix = url_option(purl, sizeof(purl), url, "prefix", "bench");
	url = purl;
	target t;
	parse_target(&t, url);

	char durl[1300], idle[16];
	snprintf(idle, sizeof(idle), "%d", THREADS);
	url_option(durl, sizeof(durl), url, "pool_idle", idle);
	dura_store_info info;
	dura_store *s = bench_store_open(durl, &info);

	redisContext *admin = raw_connect(&t);
	char version[32] = "?";
	{
		redisReply *r = cmd(admin, "INFO server");
		const char *v = strstr(r->str, "redis_version:");
		if (v)
			snprintf(version, sizeof(version), "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
		freeReplyObject(r);
	}
	printf("bench_redis: dura %s against hiredis %d.%d.%d, same server, same keys, %ld CPUs\n", DURA_VERSION_STRING,
	       HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, sysconf(_SC_NPROCESSORS_ONLN));
	printf("server Redis %s on %s:%d, appendonly=%s, appendfsync=%s; state %zu bytes\n", version, t.host, t.port,
	       config_get(admin, "appendonly"), config_get(admin, "appendfsync"), sizeof(STATE) - 1);
	printf("dura store: %s (schema %d), keys %s*\n\n", info.location, info.schema_version, t.P);

	/* ---- 1. commit latency, one thread ---- */
	drun d;
	drun_make(&d, s, STATE);
	rawc re, rm;
	{
		char id[DURA_UUID_LEN + 1];
		int64_t ver;
		make_run(s, STATE, id, &ver);
		rawc_open(&re, &t, id, ver, 100);
		make_run(s, STATE, id, &ver);
		rawc_open(&rm, &t, id, ver, 101);
	}
	int warm = samples / 10 + 10;
	bench_variant lat[3] = {{commit_dura, &d, samples_alloc(samples)},
	                        {op_eval, &re, samples_alloc(samples)},
	                        {op_multi, &rm, samples_alloc(samples)}};
	double l = interleave(lat, 3, warm, samples);
	double d50, d99, e50, e99, m50, m99;
	printf("1. step commit latency, 1 thread, %d samples each, interleaved (%.1f s)\n", samples, l / 1e6);
	latency_line("dura_store_commit", 34, 8, lat[0].v, samples, &d50, &d99);
	latency_line("raw EVALSHA, minimal script", 34, 8, lat[1].v, samples, &e50, &e99);
	latency_line("raw MULTI/EXEC, same commands", 34, 8, lat[2].v, samples, &m50, &m99);
	printf("  ratio dura/raw-eval  p50 %.3fx  p99 %.3fx   dura/raw-multi  p50 %.3fx  p99 %.3fx\n\n", d50 / e50,
	       d99 / e99, d50 / m50, d99 / m99);
	for (int k = 0; k < 3; k++)
		free(lat[k].v);

	/* ---- 2. steps per second, THREADS threads ---- */
	int per = samples / 8 < 50 ? 50 : samples / 8;
	worker ws[THREADS];
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < THREADS; i++) {
		char id[DURA_UUID_LEN + 1];
		int64_t ver;
		drun_make(&ws[i].d, s, STATE);
		make_run(s, STATE, id, &ver);
		rawc_open(&ws[i].r, &t, id, ver, i);
	}
	/* raw-eval and raw-multi commit to the same run in turn: its version
	 * and step_no carry over in ws[i].r */
	double rates[3][ROUNDS], cpu[3] = {0, 0, 0};
	/* modes W_DURA, W_EVAL, W_MULTI: 0, 1, 2 */
	double m = thread_rounds(ws, sizeof(*ws), THREADS, worker_main, 3, per, ROUNDS, &rates[0][0], cpu);
	double med[3];
	for (int k = 0; k < 3; k++)
		med[k] = median(rates[k], ROUNDS);
	dura_store_stats st;
	dura_store_stats_get(s, &st);
	printf("2. steps per second, %d threads x %d commits, each thread its own run, %d rounds + warm-up (%.1f s)\n",
	       THREADS, per, ROUNDS, m / 1e6);
	printf("  dura, one shared store (pool: %d open, max %d)   %8.0f steps/s\n", st.open, st.max_open, med[0]);
	printf("  raw EVALSHA, %d connections                     %8.0f steps/s\n", THREADS, med[1]);
	printf("  raw MULTI/EXEC, %d connections                  %8.0f steps/s\n", THREADS, med[2]);
	printf("  ratio dura/raw-eval %.3fx   dura/raw-multi %.3fx\n", med[0] / med[1], med[0] / med[2]);
	for (int k = 0; k < 3; k++)
		cpu[k] /= (double)ROUNDS * THREADS * per;
	printf("  client CPU per commit (this process, user + system): dura %.1f us, raw-eval %.1f us, raw-multi %.1f us\n",
	       cpu[0], cpu[1], cpu[2]);
	for (int k = 0; k < 3; k++) {
		printf("  rounds %-10s", MODE_NAME[k]);
		print_rates(rates[k], ROUNDS);
		printf("\n");
	}
	printf("\n");

	/* ---- 3. cache hit latency ---- */
	const char *ckey = "bench-redis-k1";
	char *full;
	if (dura_cache_scoped_key(&full, ckey, DURA_CACHE_SCOPE_GLOBAL, NULL))
		die("cache scoped key");
	if (dura_store_cache_put(s, full, CACHE_VALUE, sizeof(CACHE_VALUE) - 1, NULL,
	                         "{\"content_type\":\"application/json\"}", 0))
		die("cache put");
	rawcache rcache;
	rcache.c = raw_connect(&t);
	snprintf(rcache.key, sizeof(rcache.key), "%scache:%s", t.P, full);
	dcache dc = {s, ckey, full};
	int nc = samples * 2;
	bench_variant cv[3] = {{dura_cache_hit, &dc, samples_alloc(nc)},
	                       {dura_cache_do_hit, &dc, samples_alloc(nc)},
	                       {rawcache_get, &rcache, samples_alloc(nc)}};
	interleave(cv, 3, warm, nc);
	double cd50, cd99, cx50, cx99, cr50, cr99;
	printf("3. cache hit latency, %d samples each, interleaved\n", nc);
	latency_line("dura_store_cache_get", 34, 8, cv[0].v, nc, &cd50, &cd99);
	latency_line("dura_cache_do_store (hit)", 34, 8, cv[1].v, nc, &cx50, &cx99);
	latency_line("raw HGETALL of the same hash", 34, 8, cv[2].v, nc, &cr50, &cr99);
	printf("  ratio to raw  cache_get p50 %.3fx p99 %.3fx   cache_do p50 %.3fx p99 %.3fx\n\n", cd50 / cr50,
	       cd99 / cr99, cx50 / cr50, cx99 / cr99);
	for (int k = 0; k < 3; k++)
		free(cv[k].v);

	/* ---- 4. raw SET throughput ---- */
	int nset = samples / 3 < 100 ? 100 : samples / 3;
	double set1[ROUNDS], set8[ROUNDS];
	for (int round = -1; round < ROUNDS; round++) {
		double a = round_rate(ws, 1, W_SET, nset);
		double b = round_rate(ws, THREADS, W_SET, per);
		if (round >= 0) {
			set1[round] = a;
			set8[round] = b;
		}
	}
	printf("4. raw SET of the state, ops/s, 1 thread x %d, %d threads x %d (medians of %d rounds)\n", nset, THREADS, per,
	       ROUNDS);
	double s1 = median(set1, ROUNDS), s8 = median(set8, ROUNDS);
	printf("  1 thread   %8.0f SET/s   (dura 1-thread commits: %.0f/s at p50)\n", s1, 1e6 / d50);
	printf("  %d threads  %8.0f SET/s   dura %d-thread steps/s / SET/s %.3fx\n\n", THREADS, s8, THREADS, med[0] / s8);

	/* ---- 5. round trips ---- */
	trips rd = count_trips(admin, commit_dura, &d);
	trips rev = count_trips(admin, op_eval, &re);
	trips rmu = count_trips(admin, op_multi, &rm);
	trips rst = count_trips(admin, op_set, &ws[0].r);
	trips rcg = count_trips(admin, dura_cache_hit, &dc);
	trips rcd = count_trips(admin, dura_cache_do_hit, &dc);
	trips rcr = count_trips(admin, rawcache_get, &rcache);
	printf("5. round trips, %d ops each, one at a time: dura's requests = its send() calls (interposed); server: "
	       "INFO deltas\n",
	       RT_OPS);
	printf("  %-20s %10s %8s %6s %11s %9s %10s %9s\n", "per op", "dura sends", "EVALSHA", "EXEC", "server cmds",
	       "req bytes", "server us", "AOF bytes");
	const char *names[] = {"dura commit", "raw EVALSHA commit", "raw MULTI commit", "raw SET", "dura cache_get",
	                       "dura cache_do (hit)", "raw HGETALL"};
	trips all[] = {rd, rev, rmu, rst, rcg, rcd, rcr};
	for (int i = 0; i < 7; i++) {
		char sends[16];
		if (i == 0 || i == 4 || i == 5)
			snprintf(sends, sizeof(sends), "%.2f", all[i].sends);
		else
			snprintf(sends, sizeof(sends), "-");
		printf("  %-20s %10s %8.2f %6.2f %11.2f %9.0f %10.1f %9.0f\n", names[i], sends, all[i].evalsha, all[i].exec,
		       all[i].total, all[i].bytes, all[i].server_us, all[i].aof);
	}
	printf("  server cmds: total_commands_processed, which on Redis 7 counts every redis.call inside a script\n"
	       "  and each command of a MULTI; server us: cmdstat_evalsha + cmdstat_exec usec (the script's or the\n"
	       "  transaction's run, not the AOF write and fsync); AOF bytes: aof_current_size; req bytes: dura's\n"
	       "  send()s, hiredis's output buffer for the raw side (SET and HGETALL go unmeasured: 0)\n");

	if (own_prefix)
		cleanup(admin, t.P);
	redisFree(rcache.c);
	dura_free(full);
	for (int i = 0; i < THREADS; i++)
		rawc_close(&ws[i].r);
	rawc_close(&re);
	rawc_close(&rm);
	redisFree(admin);
	dura_store_close(s);
	return 0;
}
