/*
 * Fork after use: processes that fork after using dura are the normal
 * case (pre-fork servers, process pools, test harnesses). The parent here
 * always uses dura before it forks - it opens the store, makes ids, starts
 * runs, and often has another thread inside a store call at the instant of
 * fork() - and then checks, on one store (argv[1]):
 *
 *   - ids made in 8 children and the parent after fork are all distinct,
 *     valid UUIDv7, and ordered within each process;
 *   - 4 children racing dura_cache_do_store over the same 1000 keys, with
 *     the store handle they inherited or with one of their own, compute
 *     each key exactly once;
 *   - the parent's handle keeps working while children use, close or
 *     abandon their copies (its MySQL sessions survive, its SQLite file
 *     stays intact), and a fork while another thread is in a store call
 *     gives a child whose copy works (no lock was copied held).
 *
 * usage: fork_tests STORE_URL [FILTER]
 */
#include "dura.h"
#include "test.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *g_url;
static char g_log[512]; /* one line per computation: "<key>\n" */

static int multi_process(dura_store *s)
{
	dura_store_info info;
	return dura_store_info_get(s, &info) == 0 && (info.caps & DURA_CAP_MULTI_PROCESS);
}

/* Wait for every child; the number that did not exit with status 0. */
static int reap(const pid_t *pids, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "    child %d: %s %d\n", (int)pids[i], WIFSIGNALED(st) ? "signal" : "exit",
			        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			bad++;
		}
	}
	return bad;
}

/* ---- ids ------------------------------------------------------------------ */

#define ID_CHILDREN 8
#define IDS_EACH 10000

static int valid_uuid7(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[14] == '7' && strchr("89ab", s[19]) != NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, DURA_UUID_LEN);
}

static _Atomic int g_stop;
static _Atomic long g_made; /* ids the busy thread has made */

/* Another thread making ids (and so holding the generator's lock now and
 * then) while the main thread forks. */
static void *make_ids(void *p)
{
	(void)p;
	char id[DURA_UUID_LEN + 1];
	while (!atomic_load(&g_stop)) {
		dura_uuid7(id);
		atomic_fetch_add(&g_made, 1);
	}
	return NULL;
}

/* busy: another thread makes ids all the time, so fork() lands while it
 * holds the generator's lock now and then */
static void ids_across_fork(int busy_thread)
{
	/* the parent uses dura first: its id generator has state to copy */
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	char id[DURA_UUID_LEN + 1];
	for (int i = 0; i < 100; i++)
		REQUIRE_RC(dura_uuid7(id), 0);
	atomic_store(&g_stop, 0);
	atomic_store(&g_made, 0);
	pthread_t busy;
	if (busy_thread) {
		REQUIRE(pthread_create(&busy, NULL, make_ids, NULL) == 0);
		/* fork once the thread is making ids, not while it is still being
		 * set up: a sanitizer's runtime allocates for a new thread, and a
		 * child forked in the middle of that inherits its allocator locked
		 * (a limitation of the sanitizer, not of dura: the test is about
		 * the generator's lock) */
		while (atomic_load(&g_made) < 1000)
			usleep(1000);
	}

	/* the children start together, when the parent closes the gate, so
	 * that they make ids in the same milliseconds */
	int gate[2];
	REQUIRE(pipe(gate) == 0);
	int fds[ID_CHILDREN][2];
	pid_t pids[ID_CHILDREN];
	for (int c = 0; c < ID_CHILDREN; c++) {
		REQUIRE(pipe(fds[c]) == 0);
		pids[c] = fork();
		REQUIRE(pids[c] >= 0);
		if (pids[c] == 0) {
			alarm(120); /* a lock copied held would hang the child */
			close(fds[c][0]);
			close(gate[1]);
			char b;
			(void)!read(gate[0], &b, 1);
			static char buf[IDS_EACH][DURA_UUID_LEN];
			for (int i = 0; i < IDS_EACH; i++) {
				if (dura_uuid7(id))
					_exit(3);
				memcpy(buf[i], id, DURA_UUID_LEN);
			}
			const char *p = (const char *)buf;
			size_t left = sizeof(buf);
			while (left) {
				ssize_t w = write(fds[c][1], p, left);
				if (w <= 0)
					_exit(4);
				p += w;
				left -= (size_t)w;
			}
			_exit(0);
		}
		close(fds[c][1]);
	}
	close(gate[0]);
	close(gate[1]);
	/* the parent goes on making ids while the children do */
	size_t total = (size_t)(ID_CHILDREN + 1) * IDS_EACH;
	char(*all)[DURA_UUID_LEN] = malloc(total * DURA_UUID_LEN);
	REQUIRE(all);
	for (int i = 0; i < IDS_EACH; i++) {
		REQUIRE_RC(dura_uuid7(id), 0);
		memcpy(all[(size_t)ID_CHILDREN * IDS_EACH + (size_t)i], id, DURA_UUID_LEN);
	}
	atomic_store(&g_stop, 1);
	if (busy_thread)
		pthread_join(busy, NULL);
	for (int c = 0; c < ID_CHILDREN; c++) {
		char *p = all[(size_t)c * IDS_EACH];
		size_t left = (size_t)IDS_EACH * DURA_UUID_LEN;
		while (left) {
			ssize_t r = read(fds[c][0], p, left);
			if (r <= 0)
				break;
			p += r;
			left -= (size_t)r;
		}
		CHECK(left == 0);
		close(fds[c][0]);
	}
	CHECK(reap(pids, ID_CHILDREN) == 0);

	int invalid = 0, unordered = 0, dups = 0;
	for (size_t i = 0; i < total; i++) {
		char one[DURA_UUID_LEN + 1];
		memcpy(one, all[i], DURA_UUID_LEN);
		one[DURA_UUID_LEN] = '\0';
		invalid += !valid_uuid7(one);
		if (i % IDS_EACH && memcmp(all[i - 1], all[i], DURA_UUID_LEN) >= 0)
			unordered++;
	}
	qsort(all, total, DURA_UUID_LEN, cmp_id);
	for (size_t i = 1; i < total; i++)
		dups += memcmp(all[i - 1], all[i], DURA_UUID_LEN) == 0;
	fprintf(stderr, "    %zu ids from %d processes: %d invalid, %d out of order, %d duplicates\n", total,
	        ID_CHILDREN + 1, invalid, unordered, dups);
	CHECK(invalid == 0);
	CHECK(unordered == 0);
	CHECK(dups == 0);
	free(all);
	dura_store_close(s);
}

static void ids_are_unique_across_fork(void)
{
	ids_across_fork(0);
}

static void ids_are_unique_across_fork_busy(void)
{
	ids_across_fork(1);
}

/* ---- the step cache in forked children -------------------------------------- */

#define KEYS 1000
#define RACERS 4

static int log_computation(dura_cache_value *out, void *payload)
{
	const char *key = payload;
	char line[128];
	int n = snprintf(line, sizeof(line), "%s\n", key);
	int fd = open(g_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		(void)!write(fd, line, (size_t)n);
		close(fd);
	}
	return dura_cache_value_set(out, key, strlen(key), NULL);
}

/* Computations per key in the log: the keys done more than once, and the
 * total number of lines. */
static int twice_in_log(int *lines)
{
	static int seen[KEYS];
	memset(seen, 0, sizeof(seen));
	FILE *f = fopen(g_log, "r");
	int twice = 0, n = 0;
	char line[128];
	while (f && fgets(line, sizeof(line), f)) {
		char *dash = strrchr(line, '-');
		int k = dash ? atoi(dash + 1) : -1;
		n++;
		if (k >= 0 && k < KEYS && ++seen[k] == 2)
			twice++;
	}
	if (f)
		fclose(f);
	*lines = n;
	return twice;
}

static int race_keys(dura_store *s, const char *tag)
{
	for (int k = 0; k < KEYS; k++) {
		char key[96];
		snprintf(key, sizeof(key), "%s-%d", tag, k);
		dura_cache_entry *e = NULL;
		if (dura_cache_do_store(s, key, NULL, log_computation, key, &e))
			return -1;
		int ok = e->value_len == strlen(key) && memcmp(e->value, key, e->value_len) == 0;
		dura_cache_entry_free(e);
		if (!ok)
			return -1;
	}
	return 0;
}

/* own: each child opens a store of its own (the inherited one stays open,
 * unused); else it uses the handle it inherited. start_run: the parent
 * also started a run before forking. */
static void cache_race(int own, int start_run)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	if (!multi_process(s)) {
		dura_store_close(s);
		SKIP("store is not shared between processes");
	}
	if (start_run) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = "fork-before";
		req.state = "{}";
		dura_record *r;
		REQUIRE_RC(dura_store_create_run(s, &req, &r), 0);
		dura_record_free(r);
	}
	char tag[64], id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_uuid7(id), 0);
	snprintf(tag, sizeof(tag), "fork-%s-%.8s%.4s", own ? "own" : "inh", id + 24, id + 9);
	unlink(g_log);
	pid_t pids[RACERS];
	for (int c = 0; c < RACERS; c++) {
		pids[c] = fork();
		REQUIRE(pids[c] >= 0);
		if (pids[c] == 0) {
			alarm(300);
			dura_store *cs = s;
			if (own && dura_store_open(&cs, g_url, NULL))
				_exit(3);
			int rc = race_keys(cs, tag);
			if (own)
				dura_store_close(cs);
			_exit(rc ? 4 : 0);
		}
	}
	CHECK(reap(pids, RACERS) == 0);
	int lines, twice = twice_in_log(&lines);
	fprintf(stderr, "    %d keys, %d computations, %d keys computed twice\n", KEYS, lines, twice);
	CHECK(twice == 0);
	CHECK(lines == KEYS);
	/* and the parent's handle still answers */
	char key[96];
	snprintf(key, sizeof(key), "%s-7", tag);
	char *full;
	REQUIRE_RC(dura_cache_scoped_key(&full, key, DURA_CACHE_SCOPE_GLOBAL, NULL), 0);
	dura_cache_entry *e;
	CHECK_RC(dura_store_cache_get(s, full, &e), 0);
	dura_cache_entry_free(e);
	dura_free(full);
	dura_store_close(s);
	unlink(g_log);
}

static void cache_inherited_handle(void)
{
	cache_race(0, 0);
}

static void cache_inherited_handle_after_a_run(void)
{
	cache_race(0, 1);
}

static void cache_own_handle(void)
{
	cache_race(1, 1);
}

/* ---- the parent's handle across its children's use ---------------------------- */

typedef struct {
	dura_store *s;
	char run_id[DURA_UUID_LEN + 1];
	int64_t version, steps;
	int errors;
} committer;

/* Commit steps to one run until told to stop, with a breath between
 * commits: on SQLite a writer that never lets go of the file would starve
 * the children's writers past their busy timeout, which is SQLite's
 * locking and not what this test is about. */
static void *commit_loop(void *p)
{
	committer *c = p;
	while (!atomic_load(&g_stop)) {
		usleep(300);
		dura_commit cm = DURA_COMMIT_INIT;
		cm.run_id = c->run_id;
		cm.expect_version = c->version;
		cm.node_id = "n";
		cm.status = "n";
		cm.state = "{\"k\":1}";
		dura_commit_result res;
		if (dura_store_commit(c->s, &cm, &res)) {
			fprintf(stderr, "    parent commit: %s\n", dura_error_last()->message);
			c->errors++;
			break;
		}
		c->version = res.new_version;
		c->steps++;
	}
	return NULL;
}

static int start_run(dura_store *s, char *id, int64_t *version)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = "fork-parent";
	req.state = "{}";
	req.run_state = DURA_RUN_RUNNING;
	dura_record *r;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc)
		return rc;
	snprintf(id, DURA_UUID_LEN + 1, "%s", r->run_id);
	*version = r->version;
	dura_record_free(r);
	return 0;
}

/* What a child does with its inherited handle: 0 use it, 1 use then close
 * it, 2 close it at once, 3 leave it alone and exit. */
static int child_work(dura_store *s, int how)
{
	if (how == 3)
		return 0;
	if (how == 2) {
		dura_store_close(s);
		return 0;
	}
	char id[DURA_UUID_LEN + 1];
	int64_t v;
	if (start_run(s, id, &v)) {
		fprintf(stderr, "    child: start_run: %s\n", dura_error_last()->message);
		return 5;
	}
	for (int i = 0; i < 5; i++) {
		dura_commit cm = DURA_COMMIT_INIT;
		cm.run_id = id;
		cm.expect_version = v;
		cm.node_id = "c";
		cm.status = "c";
		cm.state = "{\"c\":1}";
		dura_commit_result res;
		if (dura_store_commit(s, &cm, &res))
			return 6;
		v = res.new_version;
	}
	dura_step_list h;
	if (dura_store_history(s, id, 0, 100, &h) || h.count != 5)
		return 7;
	dura_step_list_free(&h);
	if (how == 1)
		dura_store_close(s);
	return 0;
}

/* The parent commits from another thread, all the time, while the main
 * thread forks children that use, close or abandon their copy: the fork
 * lands while a store call is in flight, and the parent never notices. */
static void parent_keeps_working(void)
{
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	int mp = multi_process(s);
	committer c = {s, "", 0, 0, 0};
	REQUIRE_RC(start_run(s, c.run_id, &c.version), 0);
	atomic_store(&g_stop, 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, commit_loop, &c) == 0);
	enum { CHILDREN = 24 };
	pid_t pids[CHILDREN];
	for (int i = 0; i < CHILDREN; i++) {
		usleep(2000);
		pids[i] = fork();
		REQUIRE(pids[i] >= 0);
		if (pids[i] == 0) {
			alarm(60); /* a lock copied held would hang the child */
			_exit(child_work(s, i % 4));
		}
	}
	CHECK(reap(pids, CHILDREN) == 0);
	usleep(20000);
	atomic_store(&g_stop, 1);
	pthread_join(t, NULL);
	CHECK(c.errors == 0);
	CHECK(c.steps > 0);
	/* every step the parent committed is there, dense, and nothing else */
	dura_record *r;
	REQUIRE_RC(dura_store_get_run(s, c.run_id, &r), 0);
	CHECK(r->version == c.version);
	CHECK(r->step_no == c.steps);
	dura_record_free(r);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(s, c.run_id, 0, 100000, &h), 0);
	CHECK((int64_t)h.count == c.steps);
	for (size_t i = 0; i < h.count; i++)
		CHECK(h.items[i].step == (int64_t)i);
	dura_step_list_free(&h);
	if (mp) {
		/* the children's runs were written to the same database */
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.workflow_name = "fork-parent";
		f.limit = 10000;
		dura_record_list l;
		REQUIRE_RC(dura_store_list_runs(s, &f, &l), 0);
		CHECK(l.count >= 1 + 2 * (CHILDREN / 4));
		dura_record_list_free(&l);
	}
	fprintf(stderr, "    parent committed %lld steps while %d children forked\n", (long long)c.steps, CHILDREN);
	dura_store_close(s);
}

/* A SQLite file that parent and children shared is intact afterwards. */
static int integrity_row(int ncols, char **values, char **names, void *payload)
{
	(void)ncols;
	(void)names;
	snprintf(payload, 64, "%s", values[0] ? values[0] : "(null)");
	return 0;
}

static void sqlite_file_intact(void)
{
	if (strncmp(g_url, "sqlite:", 7) != 0)
		SKIP("SQLite only");
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, g_url, NULL), 0);
	char result[64] = "";
	REQUIRE_RC(dura_store_exec_sql(s, "PRAGMA integrity_check", integrity_row, result), 0);
	CHECK_STR(result, "ok");
	dura_store_close(s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fork_tests STORE_URL [FILTER]\n");
		return 2;
	}
	g_url = argv[1];
	snprintf(g_log, sizeof(g_log), "/tmp/dura-fork-log-%d", (int)getpid());
	static const test_case tests[] = {
		{"ids_are_unique_across_fork", ids_are_unique_across_fork},
		{"ids_are_unique_across_fork_busy", ids_are_unique_across_fork_busy},
		{"cache_inherited_handle", cache_inherited_handle},
		{"cache_inherited_handle_after_a_run", cache_inherited_handle_after_a_run},
		{"cache_own_handle", cache_own_handle},
		{"parent_keeps_working", parent_keeps_working},
		{"sqlite_file_intact", sqlite_file_intact},
	};
	char suite[64];
	snprintf(suite, sizeof(suite), "fork %.*s", (int)strcspn(g_url, ":"), g_url);
	int rc = test_run_all(suite, tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
	unlink(g_log);
	return rc;
}
