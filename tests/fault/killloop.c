/*
 * The kill loop: several worker processes race each other on the same runs
 * of a 20-node workflow while the parent SIGKILLs them at random instants,
 * again and again, replacing each one with a new fork, until the requested
 * number of kills is reached; then the workers finish every run.
 *
 * The parent has used dura before it forks (store open, runs started, runs
 * read), so whatever process-global state dura keeps (id generators,
 * connection pools, prepared statements) exists in every child. Workers in
 * even slots keep using the parent's store and engine; workers in odd slots
 * open their own. A worker loops over the runs of its batch and executes
 * every run that is not final; DURA_ECONFLICT (another worker committed the
 * step first) is expected and only means "reload and go on".
 *
 * Node 7 goes through dura_cache_do with a global key shared by several
 * runs of a batch, node 13 with a run-scoped key, default cache options.
 * Their computation appends "begin KEY PID" to a log file (O_APPEND, one
 * write() per line) and takes 5-30 ms, so kills land in it; the node then
 * appends "done KEY PID" when dura_cache_do handed back what this process
 * computed. The parent appends "kill PID" once a killed worker is reaped.
 *
 * When every run of a batch is final before the kills are done, the parent
 * starts the next batch (new runs, new global keys).
 *
 * Checked at the end: every run completed; its steps are 0..19, dense, one
 * per node in order; its final state is that of an uninterrupted run of
 * the same input on a memory: store; per cache key at most one "done", no
 * "begin" after a "done", no "begin" while a process that began before is
 * alive and has not finished (two computations at once); a stored value
 * for every key, equal to what the computation gives. A "begin" that
 * follows a begin whose process was killed is a recomputation after a
 * kill: allowed and counted.
 *
 * With a fourth argument "workers", the worker processes are dura_workers
 * (worker_process) instead of loops over dura_run_execute: the same
 * checks then hold for claims, leases, heartbeats and rescue.
 *
 * usage: killloop_tests STORE_URL KILLS [TMPDIR [workers]]   (KILLLOOP_SEED=N to replay)
 */
#include "dura.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES 20
#define GLOBAL_NODE 7 /* dura_cache_do, global scope */
#define RUN_NODE 13   /* dura_cache_do, run scope */
#define WORKERS 4     /* processes racing at any time */
#define BATCH_RUNS 8  /* runs started per batch */
#define BATCH_KEYS 4  /* global keys per batch: run i uses key i % BATCH_KEYS */
#define MAX_RUNS 4096
#define WORKER_GIVE_UP_MS (300 * 1000) /* a wedged store must not hang the test */

static const char *g_url;
static int g_kills_wanted;
static char g_dir[400];
static char g_log_path[512];
static int g_log = -1;
static unsigned g_seed;
static char g_wf[64];
static char g_tag[16]; /* makes this invocation's global keys unique */
static char g_names[NODES][8];

/* the parent's store and engine, inherited by the workers of even slots */
static dura_store *g_store;
static dura_engine *g_eng;

/* every run started, and the batch each belongs to */
static char (*g_ids)[DURA_UUID_LEN + 1];
static int g_nruns;
static int g_batch_first; /* first run of the current batch */
static int g_batches;

static int g_violations;

/* Report a broken invariant (the first ones in detail) and fail the test. */
static void violation(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;
static void violation(const char *fmt, ...)
{
	g_violations++;
	test__failed_now = 1;
	if (g_violations > 30) {
		if (g_violations == 31)
			fprintf(stderr, "    (more violations not shown)\n");
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "    violation: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* One line, one write(), so lines of racing processes never interleave. */
static void logline(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;
static void logline(const char *fmt, ...)
{
	if (g_log < 0)
		return;
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	ssize_t w;
	do
		w = write(g_log, buf, (size_t)n);
	while (w < 0 && errno == EINTR);
}

/* ---- the workflow ------------------------------------------------------------ */

/* What the computation of a key produces: a function of the key alone. */
static void expected_value(char *out, size_t size, const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	snprintf(out, size, "%s=%016llx", key, (unsigned long long)h);
}

typedef struct node_conf {
	int index;
	int live; /* 0 in the uninterrupted reference run: no log, no sleeps */
} node_conf;
static node_conf g_live_nodes[NODES], g_ref_nodes[NODES];

typedef struct compute_call {
	const char *key; /* as logged: "g/..." or "r/..." */
	int live;
	int computed;
} compute_call;

static int compute(dura_cache_value *out, void *payload)
{
	compute_call *call = payload;
	char v[300];
	if (call->live) {
		logline("begin %s %d", call->key, (int)getpid());
		usleep((useconds_t)(5000 + rand() % 25000));
	}
	expected_value(v, sizeof(v), call->key);
	int rc = dura_cache_value_set(out, v, strlen(v), NULL);
	if (rc == 0)
		call->computed = 1;
	return rc;
}

/* dura_cache_do, logging "done" when the value is the one this process computed. */
static int cached_step(dura_ctx *ctx, const node_conf *nc, const char *key, const char *logkey, dura_cache_scope scope,
                       json_t *state, const char *field)
{
	compute_call call = {logkey, nc->live, 0};
	dura_cache_entry *e = NULL;
	int rc = dura_cache_do(ctx, key, 0, scope, compute, &call, &e);
	if (rc) {
		const dura_error *err = dura_error_last();
		const char *msg = err && err->message ? err->message : dura_strerror(rc);
		if (nc->live)
			logline("error %s %d %d %s", logkey, (int)getpid(), rc, msg);
		dura_cache_entry_free(e);
		return dura_ctx_fail(ctx, rc, "cache %s: %s", logkey, msg);
	}
	if (call.computed && nc->live)
		logline("done %s %d", logkey, (int)getpid());
	json_object_set_new(state, field, json_stringn((const char *)e->value, e->value_len));
	dura_cache_entry_free(e);
	return 0;
}

/* Each node appends its name to the trail and adds to the sum; two use the cache. */
static int node_fn(dura_ctx *ctx, json_t *state, void *payload)
{
	const node_conf *nc = payload;
	int b = (int)json_integer_value(json_object_get(state, "b"));
	int i = (int)json_integer_value(json_object_get(state, "i"));
	char key[96], logkey[128];
	int rc = 0;
	if (nc->index == GLOBAL_NODE) {
		snprintf(key, sizeof(key), "kl-%s-b%dk%d", g_tag, b, i % BATCH_KEYS);
		snprintf(logkey, sizeof(logkey), "g/%s", key);
		rc = cached_step(ctx, nc, key, logkey, DURA_CACHE_SCOPE_GLOBAL, state, "g");
	} else if (nc->index == RUN_NODE) {
		snprintf(logkey, sizeof(logkey), "r/%s-b%d.%d", g_tag, b, i);
		rc = cached_step(ctx, nc, "r", logkey, DURA_CACHE_SCOPE_RUN, state, "r");
	}
	if (rc)
		return rc;
	json_array_append_new(json_object_get(state, "trail"), json_string(g_names[nc->index]));
	json_int_t sum = json_integer_value(json_object_get(state, "sum"));
	json_object_set_new(state, "sum", json_integer(sum + (json_int_t)(nc->index + 1) * (i + 1) + b));
	if (nc->live)
		usleep((useconds_t)(rand() % 1500));
	return 0;
}

static int build_engine(dura_store **s, dura_engine **eng, const char *url, node_conf *confs)
{
	*s = NULL;
	*eng = NULL;
	int rc = dura_store_open(s, url, NULL);
	if (rc)
		return rc;
	if ((rc = dura_engine_open(eng, *s, NULL)))
		return rc;
	dura_workflow *wf;
	if ((rc = dura_workflow_new(&wf, g_wf)))
		return rc;
	/* only a cache call can fail (a store error, a waiter that timed out):
	 * retry it so that the run and the other invariants stay checkable;
	 * the failure itself is logged and counted as a violation */
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.max_attempts = 100;
	o.backoff_initial_ms = 5;
	o.backoff_multiplier = 1.5;
	o.backoff_max_ms = 200;
	for (int n = 0; n < NODES; n++)
		if ((rc = dura_workflow_add_node(wf, g_names[n], node_fn, &confs[n], &o)))
			return rc;
	for (int n = 0; n + 1 < NODES; n++)
		if ((rc = dura_workflow_add_edge(wf, g_names[n], g_names[n + 1])))
			return rc;
	if ((rc = dura_workflow_set_start(wf, g_names[0])))
		return rc;
	return dura_engine_register(*eng, wf);
}

static void initial_state(char *buf, size_t size, int batch, int i)
{
	snprintf(buf, size, "{\"b\":%d,\"i\":%d,\"trail\":[],\"sum\":0}", batch, i);
}

/* ---- workers ------------------------------------------------------------------ */

static void worker(int inherit, int first, int count)
{
	dura_store *s = g_store;
	dura_engine *eng = g_eng;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	if (!inherit && build_engine(&s, &eng, g_url, g_live_nodes)) {
		const dura_error *e = dura_error_last();
		logline("xerr %d open %s", (int)getpid(), e && e->message ? e->message : "?");
		_exit(3);
	}
	int64_t give_up = dura_now_ms() + WORKER_GIVE_UP_MS;
	for (;;) {
		int pending = 0;
		/* half the passes start at the first run, so workers collide on it */
		int off = rand() % 2 ? rand() % count : 0;
		for (int k = 0; k < count; k++) {
			const char *id = g_ids[first + (off + k) % count];
			dura_record *rec = NULL;
			int rc = dura_store_get_run(s, id, &rec);
			if (rc == 0 && !dura_run_state_active(rec->run_state)) {
				dura_record_free(rec);
				continue;
			}
			dura_record_free(rec);
			pending = 1;
			if (rc == 0)
				rc = dura_run_execute(eng, id, NULL);
			if (rc && rc != DURA_ECONFLICT) {
				const dura_error *e = dura_error_last();
				logline("xerr %d %d %s", (int)getpid(), rc, e && e->message ? e->message : dura_strerror(rc));
				usleep(2000);
			}
		}
		if (!pending)
			break;
		if (dura_now_ms() > give_up) {
			logline("xerr %d gave up: runs still not final", (int)getpid());
			_exit(5);
		}
	}
	/* a handle closed in the child must let go of the parent's connections */
	dura_engine_close(eng);
	dura_store_close(s);
	_exit(0);
}

/* With "workers": a worker process serves the workflow with a dura_worker
 * (2 threads, short leases, so a killed one's runs come back quickly)
 * until every run of its batch is final. */
static int g_use_workers;

static void worker_process(int inherit, int first, int count)
{
	dura_store *s = g_store;
	dura_engine *eng = g_eng;
	if (!inherit && build_engine(&s, &eng, g_url, g_live_nodes)) {
		const dura_error *e = dura_error_last();
		logline("xerr %d open %s", (int)getpid(), e && e->message ? e->message : "?");
		_exit(3);
	}
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = 2;
	o.lease_ms = 300;
	o.heartbeat_ms = 100;
	o.poll_ms = 20;
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o)) {
		const dura_error *e = dura_error_last();
		logline("xerr %d worker %s", (int)getpid(), e && e->message ? e->message : "?");
		_exit(3);
	}
	int64_t give_up = dura_now_ms() + WORKER_GIVE_UP_MS;
	for (;;) {
		int pending = 0;
		for (int k = 0; k < count && !pending; k++) {
			dura_record *rec = NULL;
			if (dura_store_get_run(s, g_ids[first + k], &rec) || dura_run_state_active(rec->run_state))
				pending = 1;
			dura_record_free(rec);
		}
		if (!pending)
			break;
		if (dura_now_ms() > give_up) {
			logline("xerr %d gave up: runs still not final", (int)getpid());
			_exit(5);
		}
		usleep(20000);
	}
	dura_worker_stats st;
	dura_worker_stats_get(w, &st);
	if (dura_worker_stop(w, 10000) != 0)
		logline("xerr %d worker stop: %s", (int)getpid(), dura_error_last()->message);
	if (st.errors)
		logline("xerr %d the worker counted %llu store errors", (int)getpid(), (unsigned long long)st.errors);
	dura_engine_close(eng);
	dura_store_close(s);
	_exit(0);
}

typedef struct slot {
	pid_t pid; /* 0: empty */
} slot;

static int g_forked, g_self_exits;

static int spawn(slot *sl, int index)
{
	fflush(stdout);
	fflush(stderr);
	int first = g_batch_first, count = g_nruns - g_batch_first;
	pid_t pid = fork();
	if (pid < 0) {
		violation("fork failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0 && g_use_workers)
		worker_process(index % 2 == 0, first, count);
	if (pid == 0)
		worker(index % 2 == 0, first, count);
	sl->pid = pid;
	g_forked++;
	return 0;
}

/* A worker that ended without our SIGKILL must have exited with 0. */
static void check_exit(pid_t pid, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		g_self_exits++;
		return;
	}
	if (WIFEXITED(status))
		violation("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		violation("worker %d died of signal %d", (int)pid, WTERMSIG(status));
}

/* Kill and reap; 1 if it died of our SIGKILL. */
static int kill_worker(slot *sl)
{
	int status;
	pid_t pid = sl->pid;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sl->pid = 0;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		logline("kill %d", (int)pid);
		return 1;
	}
	check_exit(pid, status);
	return 0;
}

static int start_batch(void)
{
	if (g_nruns + BATCH_RUNS > MAX_RUNS)
		return -1;
	g_batch_first = g_nruns;
	for (int i = 0; i < BATCH_RUNS; i++) {
		char st[128];
		initial_state(st, sizeof(st), g_batches, i);
		int rc = dura_run_start(g_eng, g_wf, NULL, st, NULL, g_ids[g_nruns]);
		if (rc) {
			violation("dura_run_start: %s", dura_error_last() ? dura_error_last()->message : dura_strerror(rc));
			return rc;
		}
		g_nruns++;
	}
	g_batches++;
	return 0;
}

/* 1 when every run of the current batch is final (read through the parent's handle). */
static int batch_final(void)
{
	for (int r = g_batch_first; r < g_nruns; r++) {
		dura_record *rec;
		if (dura_store_get_run(g_store, g_ids[r], &rec))
			return 0;
		int active = dura_run_state_active(rec->run_state);
		dura_record_free(rec);
		if (active)
			return 0;
	}
	return 1;
}

/* ---- the log ------------------------------------------------------------------ */

#define MAX_LIVE 16
typedef struct key_state {
	char key[160];
	int begins, dones;
	int live[MAX_LIVE]; /* pids that began and have neither finished nor died */
	int nlive;
	int dead; /* a claimer was killed mid-compute: the next begin is a takeover */
} key_state;

typedef struct log_stats {
	int computations, recomputations, keys;
	int cache_errors, exec_errors;
} log_stats;

static key_state *key_find(key_state **keys, int *n, int *cap, const char *key)
{
	for (int i = 0; i < *n; i++)
		if (strcmp((*keys)[i].key, key) == 0)
			return &(*keys)[i];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*keys = realloc(*keys, (size_t)*cap * sizeof(**keys));
		if (!*keys)
			abort();
	}
	key_state *k = &(*keys)[(*n)++];
	memset(k, 0, sizeof(*k));
	snprintf(k->key, sizeof(k->key), "%s", key);
	return k;
}

static int live_drop(key_state *k, int pid)
{
	for (int i = 0; i < k->nlive; i++)
		if (k->live[i] == pid) {
			k->live[i] = k->live[--k->nlive];
			return 1;
		}
	return 0;
}

static void analyse_log(log_stats *ls)
{
	memset(ls, 0, sizeof(*ls));
	FILE *f = fopen(g_log_path, "r");
	if (!f) {
		violation("cannot read the log %s", g_log_path);
		return;
	}
	key_state *keys = NULL;
	int nkeys = 0, cap = 0;
	char line[700];
	while (fgets(line, sizeof(line), f)) {
		char kind[16], key[160];
		int pid;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "kill %d", &pid) == 1) {
			for (int i = 0; i < nkeys; i++)
				if (live_drop(&keys[i], pid))
					keys[i].dead = 1;
			continue;
		}
		if (strncmp(line, "xerr ", 5) == 0) {
			ls->exec_errors++;
			violation("a worker's dura_run_execute failed: %s", line + 5);
			continue;
		}
		if (sscanf(line, "%15s %159s %d", kind, key, &pid) != 3) {
			violation("malformed log line: %s", line);
			continue;
		}
		key_state *k = key_find(&keys, &nkeys, &cap, key);
		if (strcmp(kind, "begin") == 0) {
			ls->computations++;
			k->begins++;
			if (k->dones)
				violation("%s: pid %d began computing after the value was done", key, pid);
			if (k->nlive) {
				char who[200] = "";
				for (int i = 0, off = 0; i < k->nlive && off < (int)sizeof(who) - 12; i++)
					off += snprintf(who + off, sizeof(who) - (size_t)off, " %d", k->live[i]);
				violation("%s: pid %d began computing while pid(s)%s, alive, had not finished", key, pid, who);
			} else if (k->dead) {
				ls->recomputations++;
			}
			k->dead = 0;
			if (k->nlive < MAX_LIVE)
				k->live[k->nlive++] = pid;
		} else if (strcmp(kind, "done") == 0) {
			if (!live_drop(k, pid))
				violation("%s: pid %d is done without having begun", key, pid);
			if (k->dones)
				violation("%s: done again, by pid %d", key, pid);
			k->dones++;
		} else if (strcmp(kind, "error") == 0) {
			ls->cache_errors++;
			live_drop(k, pid);
			violation("dura_cache_do failed: %s", line + 6);
		} else {
			violation("unknown log line: %s", line);
		}
	}
	fclose(f);
	for (int i = 0; i < nkeys; i++)
		if (keys[i].nlive)
			violation("%s: pid %d began computing, was not killed, and never finished", keys[i].key, keys[i].live[0]);
	ls->keys = nkeys;
	free(keys);
}

/* ---- verification --------------------------------------------------------------- */

/* The state each run must end with: the same input run uninterrupted in memory. */
static json_t *reference_state(dura_engine *ref, int batch, int i)
{
	char st[128], id[DURA_UUID_LEN + 1];
	initial_state(st, sizeof(st), batch, i);
	dura_record *rec = NULL;
	if (dura_run_start(ref, g_wf, NULL, st, NULL, id) || dura_run_execute(ref, id, &rec) || !rec ||
	    rec->run_state != DURA_RUN_COMPLETED) {
		dura_record_free(rec);
		return NULL;
	}
	json_t *j = json_loads(rec->state, 0, NULL);
	dura_record_free(rec);
	return j;
}

static void check_value(const char *scoped, const char *logkey)
{
	dura_cache_entry *e = NULL;
	char want[300];
	expected_value(want, sizeof(want), logkey);
	int rc = dura_store_cache_get(g_store, scoped, &e);
	if (rc) {
		violation("cache key %s has no value (%s)", logkey, dura_strerror(rc));
		return;
	}
	if (e->error || e->value_len != strlen(want) || memcmp(e->value, want, e->value_len) != 0)
		violation("cache key %s holds \"%.*s\", the computation gives \"%s\"", logkey, (int)e->value_len,
		          e->value ? (const char *)e->value : "", want);
	dura_cache_entry_free(e);
}

static void verify_runs(dura_engine *ref)
{
	for (int r = 0; r < g_nruns; r++) {
		int batch = r / BATCH_RUNS, i = r % BATCH_RUNS;
		const char *id = g_ids[r];
		dura_record *rec = NULL;
		int rc = dura_store_get_run(g_store, id, &rec);
		if (rc) {
			violation("run %s: get_run: %s", id, dura_error_last() ? dura_error_last()->message : "?");
			continue;
		}
		if (rec->run_state != DURA_RUN_COMPLETED)
			violation("run %s ended %s (error: %s)", id, dura_run_state_name(rec->run_state), rec->error);
		if (rec->step_no != NODES)
			violation("run %s has step_no %lld, not %d", id, (long long)rec->step_no, NODES);
		json_t *got = json_loads(rec->state, 0, NULL), *want = reference_state(ref, batch, i);
		if (!want)
			violation("run %s: the reference run failed", id);
		else if (!got || !json_equal(got, want)) {
			char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
			violation("run %s: state %s, an uninterrupted run gives %s", id, rec->state, w ? w : "?");
			free(w);
		}
		json_decref(got);
		json_decref(want);
		dura_record_free(rec);

		dura_step_list h;
		if ((rc = dura_store_history(g_store, id, 0, 0, &h))) {
			violation("run %s: history: %s", id, dura_strerror(rc));
			continue;
		}
		if (h.count != NODES)
			violation("run %s has %zu steps, not %d", id, h.count, NODES);
		for (size_t s = 0; s < h.count; s++) {
			if (h.items[s].step != (int64_t)s)
				violation("run %s: step %zu is numbered %lld", id, s, (long long)h.items[s].step);
			if (s < NODES && strcmp(h.items[s].node_id, g_names[s]) != 0)
				violation("run %s: step %zu is node %s, not %s", id, s, h.items[s].node_id, g_names[s]);
		}
		dura_step_list_free(&h);

		/* the run-scoped key, and the batch's global keys once */
		char logkey[128], *scoped = NULL;
		snprintf(logkey, sizeof(logkey), "r/%s-b%d.%d", g_tag, batch, i);
		if (dura_cache_scoped_key(&scoped, "r", DURA_CACHE_SCOPE_RUN, id) == 0)
			check_value(scoped, logkey);
		dura_free(scoped);
		if (i < BATCH_KEYS) {
			char key[96];
			snprintf(key, sizeof(key), "kl-%s-b%dk%d", g_tag, batch, i);
			snprintf(logkey, sizeof(logkey), "g/%s", key);
			scoped = NULL;
			if (dura_cache_scoped_key(&scoped, key, DURA_CACHE_SCOPE_GLOBAL, NULL) == 0)
				check_value(scoped, logkey);
			dura_free(scoped);
		}
	}
}

/* ---- the test ------------------------------------------------------------------- */

static int parent_compute(dura_cache_value *out, void *payload)
{
	(void)payload;
	return dura_cache_value_set(out, "parent", 6, NULL);
}

static void kill_loop(void)
{
	REQUIRE_RC(build_engine(&g_store, &g_eng, g_url, g_live_nodes), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(g_store, &info), 0);
	char scheme[32];
	snprintf(scheme, sizeof(scheme), "%s", info.scheme);
	if (!(info.caps & DURA_CAP_DURABLE) || !(info.caps & DURA_CAP_MULTI_PROCESS)) {
		dura_engine_close(g_eng);
		dura_store_close(g_store);
		SKIP("the store lives in one process: forked workers cannot share it, so there is nothing to kill");
	}
	REQUIRE((g_ids = calloc(MAX_RUNS, sizeof(*g_ids))) != NULL);
	snprintf(g_log_path, sizeof(g_log_path), "%s/killloop-%s-%d.log", g_dir, g_tag, (int)getpid());
	g_log = open(g_log_path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
	REQUIRE(g_log >= 0);
	/* the parent uses dura before it forks: runs, reads, the cache */
	REQUIRE(start_batch() == 0);
	REQUIRE(!batch_final());
	char pkey[64];
	dura_cache_entry *pe = NULL;
	snprintf(pkey, sizeof(pkey), "kl-%s-parent", g_tag);
	REQUIRE_RC(dura_cache_do_store(g_store, pkey, NULL, parent_compute, NULL, &pe), 0);
	dura_cache_entry_free(pe);

	slot slots[WORKERS];
	memset(slots, 0, sizeof(slots));
	int kills = 0;
	while (kills < g_kills_wanted) {
		/* reap workers that finished their batch */
		for (int w = 0; w < WORKERS; w++) {
			int status;
			if (slots[w].pid && waitpid(slots[w].pid, &status, WNOHANG) == slots[w].pid) {
				check_exit(slots[w].pid, status);
				slots[w].pid = 0;
			}
		}
		if (batch_final() && start_batch() != 0)
			break;
		int fresh = -1, broken = 0;
		for (int w = 0; w < WORKERS && !broken; w++)
			if (!slots[w].pid) {
				broken = spawn(&slots[w], w) != 0;
				fresh = w;
			}
		if (broken)
			break;
		/* now and then kill one right after its fork, else any one after 0-30 ms */
		int victim;
		if (fresh >= 0 && rand_r(&g_seed) % 5 == 0) {
			victim = fresh;
			usleep((useconds_t)(rand_r(&g_seed) % 300));
		} else {
			victim = (int)(rand_r(&g_seed) % WORKERS);
			usleep((useconds_t)(rand_r(&g_seed) % 30000));
		}
		if (slots[victim].pid)
			kills += kill_worker(&slots[victim]);
	}
	/* let the last workers finish every run */
	for (int w = 0; w < WORKERS; w++)
		if (!slots[w].pid && spawn(&slots[w], w) != 0)
			break;
	for (int w = 0; w < WORKERS; w++) {
		int status;
		if (!slots[w].pid)
			continue;
		while (waitpid(slots[w].pid, &status, 0) < 0 && errno == EINTR)
			;
		check_exit(slots[w].pid, status);
		slots[w].pid = 0;
	}
	CHECK(kills == g_kills_wanted);
	CHECK(batch_final());

	log_stats ls;
	analyse_log(&ls);
	dura_store *ms;
	dura_engine *ref;
	REQUIRE_RC(build_engine(&ms, &ref, "memory:", g_ref_nodes), 0);
	verify_runs(ref);
	dura_engine_close(ref);
	dura_store_close(ms);

	printf("killloop %s: %d kills, %d runs, %d workers, %d recomputations after a kill, %d violations\n", scheme,
	       kills, g_nruns, g_forked, ls.recomputations, g_violations);
	printf("    (%d batches, %d cache keys, %d computations, %d cache errors, %d execute errors, "
	       "%d workers finished their batch)\n",
	       g_batches, ls.keys, ls.computations, ls.cache_errors, ls.exec_errors, g_self_exits);
	close(g_log);
	g_log = -1;
	if (g_violations)
		printf("    the log is kept: %s\n", g_log_path);
	else
		unlink(g_log_path);
	free(g_ids);
	dura_engine_close(g_eng);
	dura_store_close(g_store);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: killloop_tests STORE_URL KILLS [TMPDIR [workers]]\n");
		return 2;
	}
	g_use_workers = argc > 4 && strcmp(argv[4], "workers") == 0;
	g_url = argv[1];
	g_kills_wanted = atoi(argv[2]);
	const char *dir = argc > 3 ? argv[3] : getenv("TMPDIR");
	snprintf(g_dir, sizeof(g_dir), "%s", dir && *dir ? dir : "/tmp");
	const char *seed = getenv("KILLLOOP_SEED");
	g_seed = seed && *seed ? (unsigned)strtoul(seed, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
	printf("killloop: seed %u (KILLLOOP_SEED), %d kills\n", g_seed, g_kills_wanted);
	srand(g_seed);
	for (int n = 0; n < NODES; n++) {
		snprintf(g_names[n], sizeof(g_names[n]), "n%02d", n);
		g_live_nodes[n].index = g_ref_nodes[n].index = n;
		g_live_nodes[n].live = 1;
	}
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(g_tag, sizeof(g_tag), "%.12s", id + 24);
	snprintf(g_wf, sizeof(g_wf), "killloop-%s", g_tag);
	static const test_case tests[] = {{"kill_loop", kill_loop}};
	return test_run_all("killloop", tests, TEST_COUNT(tests), NULL);
}
