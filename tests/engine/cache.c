/*
 * The step cache's single flight on one store (argv[1]): hits, misses,
 * expiry, scopes, cached failures, the key helper, and exactly-once
 * computation across threads and processes (counted outside the cache, in
 * a file that every computation appends a line to).
 */
#include "dura.h"
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *g_url;
static char g_counter[512]; /* a file: one line per computation */

static int count_computations(void)
{
	FILE *f = fopen(g_counter, "r");
	if (!f)
		return 0;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* The expensive computation: record that it ran, sleep, answer. */
static int compute(dura_cache_value *out, void *payload)
{
	int fd = open(g_counter, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		(void)!write(fd, "x\n", 2);
		close(fd);
	}
	usleep((useconds_t)(payload ? *(int *)payload : 0) * 1000);
	return dura_cache_value_set(out, "eleven", 6, "{\"content_type\":\"text/plain\"}");
}

static int compute_fails(dura_cache_value *out, void *payload)
{
	(void)out;
	(void)payload;
	int fd = open(g_counter, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		(void)!write(fd, "x\n", 2);
		close(fd);
	}
	return dura_error_set(DURA_EINVAL, "input is not a number");
}

static void unique_key(char *buf, size_t n, const char *what)
{
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(buf, n, "%s-%s", what, id);
}

static void reset_counter(void)
{
	unlink(g_counter);
}

static void hit_miss_and_ttl(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "hit");
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = 150;
	dura_cache_entry *e;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	CHECK(e->value_len == 6 && memcmp(e->value, "eleven", 6) == 0);
	CHECK(e->metadata && strstr(e->metadata, "text/plain"));
	CHECK(e->expires_at > 0);
	dura_cache_entry_free(e);
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 1); /* the second was a hit */
	usleep(250000);
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0); /* expired: computed again */
	dura_cache_entry_free(e);
	CHECK(count_computations() == 2);
	/* ttl 0 never expires */
	unique_key(key, sizeof(key), "forever");
	o.ttl_ms = 0;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	CHECK(e->expires_at == 0);
	dura_cache_entry_free(e);
	dura_store_close(s);
}

static void scopes(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "scoped");
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	dura_cache_entry *e;
	o.scope = DURA_CACHE_SCOPE_RUN;
	o.run_id = "run-a";
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 1);
	o.run_id = "run-b"; /* another run misses */
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 2);
	o.scope = DURA_CACHE_SCOPE_GLOBAL; /* global is its own namespace, shared */
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	o.run_id = "run-c";
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 3);
	/* the plain operations reach the same entries through the scoped key */
	char *sk;
	REQUIRE_RC(dura_cache_scoped_key(&sk, key, DURA_CACHE_SCOPE_RUN, "run-b"), 0);
	REQUIRE_RC(dura_store_cache_get(s, sk, &e), 0);
	CHECK(e->value_len == 6);
	dura_cache_entry_free(e);
	REQUIRE_RC(dura_store_cache_delete(s, sk), 0);
	dura_free(sk);
	o.scope = DURA_CACHE_SCOPE_RUN;
	o.run_id = "run-b";
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0); /* deleted: computed again */
	dura_cache_entry_free(e);
	CHECK(count_computations() == 4);
	CHECK_RC(dura_cache_scoped_key(&sk, key, DURA_CACHE_SCOPE_RUN, NULL), DURA_EINVAL);
	o.run_id = NULL;
	CHECK_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), DURA_EINVAL);
	/* a very long key is hashed, not refused */
	char longkey[1000];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	o.scope = DURA_CACHE_SCOPE_GLOBAL;
	REQUIRE_RC(dura_cache_do_store(s, longkey, &o, compute, NULL, &e), 0);
	CHECK(strlen(e->key) <= DURA_MAX_ID_LEN);
	dura_cache_entry_free(e);
	dura_store_close(s);
}

static void failures(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "fails");
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	dura_cache_entry *e;
	/* by default a failure is not cached: the next call computes again */
	CHECK_RC(dura_cache_do_store(s, key, &o, compute_fails, NULL, &e), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "not a number") != NULL);
	CHECK_RC(dura_cache_do_store(s, key, &o, compute_fails, NULL, &e), DURA_EINVAL);
	CHECK(count_computations() == 2);
	/* with error_ttl the failure text is cached for that long */
	unique_key(key, sizeof(key), "fails-cached");
	o.error_ttl_ms = 150;
	CHECK_RC(dura_cache_do_store(s, key, &o, compute_fails, NULL, &e), DURA_EINVAL);
	CHECK_RC(dura_cache_do_store(s, key, &o, compute_fails, NULL, &e), DURA_ERROR);
	REQUIRE(e != NULL);
	CHECK(e->error && strstr(e->error, "not a number"));
	dura_cache_entry_free(e);
	CHECK(count_computations() == 3);
	usleep(250000);
	CHECK_RC(dura_cache_do_store(s, key, &o, compute_fails, NULL, &e), DURA_EINVAL);
	CHECK(count_computations() == 4);
	dura_store_close(s);
}

/* A computed value is returned even if its entry expires at once. */
static void short_ttl_returns_the_value(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = 1;
	int bad = 0;
	for (int i = 0; i < 50; i++) {
		char key[96];
		unique_key(key, sizeof(key), "ttl1");
		dura_cache_entry *e = NULL;
		int rc = dura_cache_do_store(s, key, &o, compute, NULL, &e);
		bad += rc != 0 || !e || e->value_len != 6;
		dura_cache_entry_free(e);
	}
	CHECK(bad == 0);
	dura_store_close(s);
}

static void key_helper(void)
{
	char *a, *b, *c;
	REQUIRE_RC(dura_cache_key(&a, "count", "{\"text\":\"hello\",\"lang\":\"en\"}"), 0);
	REQUIRE_RC(dura_cache_key(&b, "count", "{ \"lang\" : \"en\", \"text\" : \"hello\" }"), 0);
	REQUIRE_RC(dura_cache_key(&c, "count", "{\"text\":\"hello!\",\"lang\":\"en\"}"), 0);
	CHECK_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	CHECK(strncmp(a, "count:", 6) == 0 && strlen(a) == 6 + 64);
	dura_free(a);
	dura_free(b);
	dura_free(c);
	CHECK_RC(dura_cache_key(&a, "count", "{not json"), DURA_EINVAL);
	CHECK_RC(dura_cache_key(&a, "", "{}"), DURA_EINVAL);
}

typedef struct racer {
	dura_store *s;
	const char *key;
	int rc;
	char value[16];
} racer;

static void *race(void *p)
{
	racer *r = p;
	static int ms = 150;
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.lease_ms = 10000;
	dura_cache_entry *e = NULL;
	r->rc = dura_cache_do_store(r->s, r->key, &o, compute, &ms, &e);
	if (e)
		snprintf(r->value, sizeof(r->value), "%.*s", (int)e->value_len, (const char *)e->value);
	dura_cache_entry_free(e);
	return NULL;
}

static void exactly_once_threads(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "threads");
	racer r[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (racer){s, key, -100, ""};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].rc == 0);
		CHECK_STR(r[i].value, "eleven");
	}
	CHECK(count_computations() == 1);
	dura_store_close(s);
}

static int multi_process(dura_store *s)
{
	dura_store_info info;
	if (dura_store_info_get(s, &info))
		return 0;
	return (info.caps & DURA_CAP_MULTI_PROCESS) != 0;
}

static void exactly_once_processes(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	if (!multi_process(s)) {
		dura_store_close(s);
		SKIP("store is not shared between processes");
	}
	dura_store_close(s);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "procs");
	pid_t pids[4];
	for (int p = 0; p < 4; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			/* each process: its own connection, two racing threads */
			dura_store *cs;
			if (dura_store_open(&cs, g_url, NULL))
				_exit(3);
			racer r[2] = {{cs, key, -100, ""}, {cs, key, -100, ""}};
			pthread_t t[2];
			for (int i = 0; i < 2; i++)
				pthread_create(&t[i], NULL, race, &r[i]);
			for (int i = 0; i < 2; i++)
				pthread_join(t[i], NULL);
			dura_store_close(cs);
			_exit(r[0].rc == 0 && r[1].rc == 0 && strcmp(r[0].value, "eleven") == 0 ? 0 : 4);
		}
	}
	for (int p = 0; p < 4; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK(count_computations() == 1);
}

/*
 * A claimer SIGKILLed in the middle of its computation, with the default
 * lease: its heartbeat stops with it, the claim runs out, and a waiter
 * that was already waiting takes over and computes. (How fast is measured
 * in bench/bench_takeover.c; here the waiter must simply get there well
 * before it would give up.)
 */
static void killed_claimer_is_taken_over(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	if (!multi_process(s)) {
		dura_store_close(s);
		SKIP("store is not shared between processes");
	}
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "killed");
	pid_t pid = fork();
	if (pid == 0) {
		static int forever = 100000;
		dura_cache_entry *e;
		dura_cache_do_store(s, key, NULL, compute, &forever, &e);
		_exit(0);
	}
	/* wait until the child has claimed and started computing */
	for (int i = 0; i < 2000 && count_computations() == 0; i++)
		usleep(5000);
	REQUIRE(count_computations() == 1);
	/* a waiter in another process, then the claimer dies mid-heartbeat */
	pid_t waiter = fork();
	if (waiter == 0) {
		dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
		o.wait_timeout_ms = 30000;
		dura_cache_entry *e = NULL;
		int rc = dura_cache_do_store(s, key, &o, compute, NULL, &e);
		_exit(rc == 0 && e->value_len == 6 ? 0 : 1);
	}
	usleep(1300 * 1000); /* past the first heartbeat */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int st;
	REQUIRE(waitpid(waiter, &st, 0) == waiter);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(count_computations() == 2); /* the waiter took over */
	dura_store_close(s);
}

/* A claimer that is gone (its claim written by hand, never renewed): on
 * every store, the next caller computes once the claim runs out. */
static void dead_claimer_is_taken_over(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96], *full;
	unique_key(key, sizeof(key), "dead");
	REQUIRE_RC(dura_cache_scoped_key(&full, key, DURA_CACHE_SCOPE_GLOBAL, NULL), 0);
	REQUIRE_RC(dura_store_cache_claim(s, full, "gone-owner", 300), 0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.wait_timeout_ms = 30000;
	dura_cache_entry *e;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	CHECK(e->value_len == 6);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 1);
	/* the value is stored: nobody computes again */
	REQUIRE_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), 0);
	dura_cache_entry_free(e);
	CHECK(count_computations() == 1);
	dura_free(full);
	dura_store_close(s);
}

/*
 * A live computation four leases long is never duplicated: its heartbeat
 * keeps the claim, and the racers - threads here, and on stores shared
 * between processes, other processes too - wait for its value.
 */
static int g_long_ms = 4000;

static void *long_race(void *p)
{
	racer *r = p;
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	/* 1 s: room, on a loaded machine under ASan with ten racers polling,
	 * for a heartbeat that has to open a connection to a server store */
	o.lease_ms = 1000;
	o.wait_timeout_ms = 60000;
	dura_cache_entry *e = NULL;
	r->rc = dura_cache_do_store(r->s, r->key, &o, compute, &g_long_ms, &e);
	if (e)
		snprintf(r->value, sizeof(r->value), "%.*s", (int)e->value_len, (const char *)e->value);
	dura_cache_entry_free(e);
	return NULL;
}

static int race_threads(dura_store *s, const char *key, int n)
{
	racer r[4];
	pthread_t t[4];
	int bad = 0;
	for (int i = 0; i < n; i++) {
		r[i] = (racer){s, key, -100, ""};
		pthread_create(&t[i], NULL, long_race, &r[i]);
		usleep(50 * 1000);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		bad += r[i].rc != 0 || strcmp(r[i].value, "eleven") != 0;
	}
	return bad;
}

static void long_computation_is_not_duplicated(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	reset_counter();
	char key[96];
	unique_key(key, sizeof(key), "long");
	pid_t pids[3];
	int np = multi_process(s) ? 3 : 0;
	for (int p = 0; p < np; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			usleep((useconds_t)(100 + 300 * p) * 1000);
			_exit(race_threads(s, key, 2) ? 1 : 0);
		}
	}
	CHECK(race_threads(s, key, 4) == 0);
	for (int p = 0; p < np; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK(count_computations() == 1);
	dura_store_close(s);
}

static void waiter_times_out(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	char key[96], full[160];
	unique_key(key, sizeof(key), "stuck");
	snprintf(full, sizeof(full), "global:%s", key);
	/* someone else holds the claim for a long time */
	REQUIRE_RC(dura_store_cache_claim(s, full, "other-owner", 60000), 0);
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.wait_timeout_ms = 100;
	dura_cache_entry *e;
	CHECK_RC(dura_cache_do_store(s, key, &o, compute, NULL, &e), DURA_ETIMEOUT);
	CHECK(e == NULL);
	dura_store_close(s);
}

static int big_compute(dura_cache_value *out, void *payload)
{
	size_t n = *(size_t *)payload;
	unsigned char *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	int rc = dura_cache_value_set(out, buf, n, NULL);
	free(buf);
	return rc;
}

static void large_value(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	char key[96];
	unique_key(key, sizeof(key), "big");
	size_t n = (size_t)16 << 20;
	dura_cache_entry *e;
	REQUIRE_RC(dura_cache_do_store(s, key, NULL, big_compute, &n, &e), 0);
	CHECK(e->value_len == n);
	int same = 1;
	for (size_t i = 0; i < n && same; i += 4099)
		same = e->value[i] == (unsigned char)(i * 31 + 7);
	CHECK(same);
	dura_cache_entry_free(e);
	dura_store_close(s);
}

static void over_the_limit_writes_nothing(void)
{
	char url[600];
	snprintf(url, sizeof(url), "%s%smax_value=1000", g_url, strchr(g_url, '?') ? "&" : "?");
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	char key[96];
	unique_key(key, sizeof(key), "toobig");
	size_t n = 2000;
	dura_cache_entry *e;
	CHECK_RC(dura_cache_do_store(s, key, NULL, big_compute, &n, &e), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "2000 bytes") != NULL);
	CHECK(strstr(dura_error_last()->message, "1000") != NULL);
	char full[160];
	snprintf(full, sizeof(full), "global:%s", key);
	CHECK_RC(dura_store_cache_get(s, full, &e), DURA_ENOTFOUND);
	/* and the claim was released: a smaller value can be computed at once */
	n = 500;
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.wait_timeout_ms = 200;
	REQUIRE_RC(dura_cache_do_store(s, key, &o, big_compute, &n, &e), 0);
	CHECK(e->value_len == 500);
	dura_cache_entry_free(e);
	dura_store_close(s);
}

static int node_with_cache(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	dura_cache_entry *e;
	int rc = dura_cache_do(ctx, "lookup", 0, DURA_CACHE_SCOPE_RUN, compute, NULL, &e);
	if (rc)
		return rc;
	json_object_set_new(state, "v", json_stringn((const char *)e->value, e->value_len));
	dura_cache_entry_free(e);
	return 0;
}

static void from_a_node(void)
{
	dura_store *s;
	dura_engine *eng;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	reset_counter();
	char wfname[64];
	unique_key(wfname, sizeof(wfname), "cachewf");
	dura_workflow *wf;
	dura_workflow_new(&wf, wfname);
	dura_workflow_add_node(wf, "a", node_with_cache, NULL, NULL);
	dura_workflow_add_node(wf, "b", node_with_cache, NULL, NULL);
	dura_workflow_add_edge(wf, "a", "b");
	dura_workflow_set_start(wf, "a");
	REQUIRE_RC(dura_engine_register(eng, wf), 0);
	char r1[DURA_UUID_LEN + 1], r2[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(eng, wfname, NULL, "{}", NULL, r1), 0);
	REQUIRE_RC(dura_run_start(eng, wfname, NULL, "{}", NULL, r2), 0);
	dura_record *rec;
	REQUIRE_RC(dura_run_execute(eng, r1, &rec), 0);
	CHECK(strstr(rec->state, "eleven") != NULL);
	dura_record_free(rec);
	CHECK(count_computations() == 1); /* b hit a's entry: same run */
	REQUIRE_RC(dura_run_execute(eng, r2, NULL), 0);
	CHECK(count_computations() == 2); /* run scope: another run misses */
	dura_engine_close(eng);
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cache_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	snprintf(g_counter, sizeof(g_counter), "/tmp/dura-cache-count-%d", (int)getpid());
	static const test_case tests[] = {
		{"hit_miss_and_ttl", hit_miss_and_ttl},
		{"scopes", scopes},
		{"failures", failures},
		{"key_helper", key_helper},
		{"short_ttl_returns_the_value", short_ttl_returns_the_value},
		{"exactly_once_threads", exactly_once_threads},
		{"exactly_once_processes", exactly_once_processes},
		{"killed_claimer_is_taken_over", killed_claimer_is_taken_over},
		{"dead_claimer_is_taken_over", dead_claimer_is_taken_over},
		{"long_computation_is_not_duplicated", long_computation_is_not_duplicated},
		{"waiter_times_out", waiter_times_out},
		{"large_value", large_value},
		{"over_the_limit_writes_nothing", over_the_limit_writes_nothing},
		{"from_a_node", from_a_node},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "cache %.*s", (int)strcspn(g_url, ":"), g_url);
	int rc = test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
	unlink(g_counter);
	return rc;
}
