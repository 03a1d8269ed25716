/*
 * fleet - worker processes share the runs of one store, and one of them
 * is killed with SIGKILL part-way.
 *
 * It starts RUNS runs of the "greet" workflow of examples/worker.c
 * (hello -> world, 100 ms a node), then WORKERS processes of that worker
 * program. Once a third of the runs have completed and worker 1 is in the
 * middle of a run, it kills worker 1 with SIGKILL and measures the rescue
 * two ways: the time from the kill to the first step another worker
 * commits on one of the killed worker's runs, and the time until every
 * one of those runs is leased to another worker (or done). When all runs
 * are final it stops the other workers with SIGTERM (a graceful stop) and
 * checks each run from its history: completed, steps 0..n-1 dense, each
 * node exactly once.
 *
 *   fleet [-w WORKERS] [-t THREADS] [-n RUNS] [-l LEASE_MS] STORE_URL [WORKER_PROGRAM]
 *
 * WORKER_PROGRAM defaults to the worker next to this program. Defaults:
 * 3 workers of 4 threads, 100 runs, a 1000 ms lease. The exit status is 0
 * when every run completed with each step exactly once.
 */
#include <dura.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 16
#define MAX_RUNS 10000
#define TIMEOUT_MS 60000 /* a hang guard: the demo takes a few seconds */

static const char *const nodes[] = {"hello", "world"}; /* greet, in order */
#define NODES 2

static int g_workers = 3, g_threads = 4, g_runs = 100;
static long long g_lease_ms = 1000;
static pid_t g_pid[MAX_WORKERS];
static char (*g_ids)[DURA_UUID_LEN + 1];

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "fleet: %s: %s\n", what, e ? e->message : "unknown error");
	for (int i = 0; i < g_workers; i++)
		if (g_pid[i] > 0) {
			kill(g_pid[i], SIGKILL);
			waitpid(g_pid[i], NULL, 0);
		}
	return 1;
}

/* Start a worker process: WORKER_PROGRAM -q -l LEASE_MS URL THREADS. */
static pid_t spawn(const char *program, const char *url)
{
	char lease[32], threads[16];
	snprintf(lease, sizeof(lease), "%lld", g_lease_ms);
	snprintf(threads, sizeof(threads), "%d", g_threads);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl(program, program, "-q", "-l", lease, url, threads, (char *)NULL);
		fprintf(stderr, "fleet: cannot run %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Does the lease owner id ("HOST:PID:UUID") belong to a worker of pid? */
static int owned_by(const char *owner, pid_t pid)
{
	char mark[32];
	snprintf(mark, sizeof(mark), ":%d:", (int)pid);
	return strstr(owner, mark) != NULL;
}

/*
 * The fleet's runs as they stand: how many are final, and how many are
 * leased to pid in all and part-way (a step committed, not done). One
 * list call: the fleet's runs are the only runs of greet created since
 * `since` (runs of greet from earlier demos are older).
 */
static int census(dura_store *s, int64_t since, pid_t pid, int *final, int *held, int *partway)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = "greet";
	f.created_after = since;
	f.limit = MAX_RUNS;
	dura_record_list l;
	if (dura_store_list_runs(s, &f, &l))
		return -1;
	*final = *held = *partway = 0;
	for (size_t i = 0; i < l.count; i++) {
		const dura_record *r = &l.items[i];
		if (!dura_run_state_active(r->run_state))
			(*final)++;
		else if (owned_by(r->lease_owner, pid) && r->lease_expires_at > dura_now_ms()) {
			(*held)++;
			*partway += r->step_no > 0;
		}
	}
	dura_record_list_free(&l);
	return 0;
}

/* One of the killed worker's runs, as it stood at the kill. */
typedef struct victim_run {
	const char *id;
	int64_t step_no;
	int stepped, moved; /* another worker committed a step / holds it or it is done */
} victim_run;

/*
 * Watch the killed worker's runs until each has moved on: print when the
 * first one gets a step from another worker, and when all are picked up.
 */
static int watch_rescue(dura_store *s, victim_run *v, int n, pid_t dead, int64_t killed_at)
{
	int stepped = 0, moved = 0;
	while (n > 0 && (moved < n || stepped == 0)) {
		if (dura_now_ms() - killed_at > TIMEOUT_MS) {
			fprintf(stderr, "fleet: the killed worker's runs were not rescued in %d s\n", TIMEOUT_MS / 1000);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			dura_record *r;
			if (dura_store_get_run(s, v[i].id, &r))
				return -1;
			int64_t now = dura_now_ms();
			if (!v[i].stepped && r->step_no > v[i].step_no) {
				v[i].stepped = 1;
				if (stepped++ == 0)
					printf("fleet: rescue: first step committed by another worker on one of its runs %lld ms after "
					       "the kill\n",
					       (long long)(now - killed_at));
			}
			if (!v[i].moved && (!dura_run_state_active(r->run_state) || !owned_by(r->lease_owner, dead))) {
				v[i].moved = 1;
				if (++moved == n)
					printf("fleet: rescue: all %d of its runs picked up by other workers %lld ms after the kill\n", n,
					       (long long)(now - killed_at));
			}
			dura_record_free(r);
		}
		sleep_ms(2);
	}
	return 0;
}

/*
 * Check one run from its history: completed, one step per node, the steps
 * numbered 0..NODES-1 with each node exactly once and in order. Returns
 * the number of problems (printed); *begun_by gets the pid that ran the
 * first node and *ended_by the one that ran the last (the state's
 * "hello" and "world").
 */
static int check_run(dura_store *s, const char *id, long long *begun_by, long long *ended_by, size_t *steps)
{
	int bad = 0;
	dura_record *r;
	if (dura_store_get_run(s, id, &r)) {
		fprintf(stderr, "fleet: run %s: %s\n", id, dura_error_last()->message);
		return 1;
	}
	if (r->run_state != DURA_RUN_COMPLETED) {
		fprintf(stderr, "fleet: run %s is %s\n", id, dura_run_state_name(r->run_state));
		bad++;
	}
	json_t *st = json_loads(r->state, 0, NULL);
	*begun_by = json_integer_value(json_object_get(st, "hello"));
	*ended_by = json_integer_value(json_object_get(st, "world"));
	json_decref(st);
	dura_record_free(r);

	dura_step_list h;
	if (dura_store_history(s, id, 0, 0, &h)) {
		fprintf(stderr, "fleet: run %s: history: %s\n", id, dura_error_last()->message);
		return bad + 1;
	}
	*steps += h.count;
	if (h.count != NODES) {
		fprintf(stderr, "fleet: run %s has %zu steps, not %d\n", id, h.count, NODES);
		bad++;
	}
	for (size_t i = 0; i < h.count && i < NODES; i++)
		if (h.items[i].step != (int64_t)i || strcmp(h.items[i].node_id, nodes[i]) != 0) {
			fprintf(stderr, "fleet: run %s: step %zu is #%lld %s, not #%zu %s\n", id, i, (long long)h.items[i].step,
			        h.items[i].node_id, i, nodes[i]);
			bad++;
		}
	dura_step_list_free(&h);
	return bad;
}

static int usage(void)
{
	fprintf(stderr, "usage: fleet [-w WORKERS] [-t THREADS] [-n RUNS] [-l LEASE_MS] STORE_URL [WORKER_PROGRAM]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "w:t:n:l:")) != -1) {
		if (opt == 'w')
			g_workers = atoi(optarg);
		else if (opt == 't')
			g_threads = atoi(optarg);
		else if (opt == 'n')
			g_runs = atoi(optarg);
		else if (opt == 'l')
			g_lease_ms = atoll(optarg);
		else
			return usage();
	}
	if (optind >= argc || g_workers < 2 || g_workers > MAX_WORKERS || g_runs < 1 || g_runs > MAX_RUNS ||
	    g_threads < 1 || g_lease_ms < DURA_WORKER_MIN_LEASE_MS)
		return usage();
	const char *url = argv[optind];
	char program[4096];
	if (optind + 1 < argc) {
		snprintf(program, sizeof(program), "%s", argv[optind + 1]);
	} else { /* the worker next to this program */
		const char *slash = strrchr(argv[0], '/');
		snprintf(program, sizeof(program), "%.*sworker", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	dura_store *s;
	if (dura_store_open(&s, url, NULL))
		return fail("opening the store");
	g_ids = calloc((size_t)g_runs, sizeof(*g_ids));
	if (!g_ids)
		return fail("memory");

	/* A run is a record in the store - its workflow and the node it starts
	 * at - so any process can start one, without the workflow's code; the
	 * workers have the code. */
	int64_t t0 = dura_now_ms();
	for (int i = 0; i < g_runs; i++) {
		dura_run_create req = DURA_RUN_CREATE_INIT;
		req.workflow_name = "greet";
		req.status = nodes[0];
		dura_record *r;
		if (dura_store_create_run(s, &req, &r))
			return fail("starting a run");
		snprintf(g_ids[i], sizeof(g_ids[i]), "%s", r->run_id);
		dura_record_free(r);
	}
	printf("fleet: %d runs of greet (hello -> world, 100 ms a node) on %s\n", g_runs, url);
	printf("fleet: %d workers x %d threads, lease %lld ms (heartbeat every %lld ms, idle poll at most 500 ms)\n",
	       g_workers, g_threads, g_lease_ms, g_lease_ms / 3);

	for (int i = 0; i < g_workers; i++)
		if ((g_pid[i] = spawn(program, url)) < 0)
			return fail("fork");
	pid_t victim = g_pid[0];

	/* Part-way: a third of the runs done and worker 1 inside a run. */
	int final = 0, held = 0, partway = 0;
	for (;;) {
		if (census(s, t0, victim, &final, &held, &partway))
			return fail("listing the runs");
		if ((final >= g_runs / 3 && partway > 0) || final == g_runs)
			break;
		if (dura_now_ms() - t0 > TIMEOUT_MS) {
			fprintf(stderr, "fleet: worker 1 never got part-way\n");
			return fail("waiting");
		}
		sleep_ms(5);
	}
	if (final == g_runs) {
		fprintf(stderr, "fleet: every run finished before worker 1 held one part-way\n");
		return fail("waiting");
	}

	/* The kill. Dead, worker 1 commits nothing more, so its runs can be
	 * listed as they stand; their leases run out within lease_ms. */
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	g_pid[0] = 0;
	int64_t killed_at = dura_now_ms();
	victim_run *v = calloc((size_t)g_runs, sizeof(*v));
	int nv = 0;
	int64_t expiry_min = INT64_MAX, expiry_max = 0;
	if (!v)
		return fail("memory");
	for (int i = 0; i < g_runs; i++) {
		dura_record *r;
		if (dura_store_get_run(s, g_ids[i], &r))
			return fail("reading a run");
		if (dura_run_state_active(r->run_state) && owned_by(r->lease_owner, victim)) {
			v[nv++] = (victim_run){g_ids[i], r->step_no, 0, 0};
			expiry_min = r->lease_expires_at < expiry_min ? r->lease_expires_at : expiry_min;
			expiry_max = r->lease_expires_at > expiry_max ? r->lease_expires_at : expiry_max;
		}
		dura_record_free(r);
	}
	int midrun = 0;
	for (int i = 0; i < nv; i++)
		midrun += v[i].step_no > 0;
	printf("fleet: %d of %d runs completed; SIGKILL to worker 1 (pid %d), which held %d runs (%d part-way)\n", final,
	       g_runs, (int)victim, nv, midrun);
	if (nv > 0)
		printf("fleet: its leases run out %lld to %lld ms after the kill (its last heartbeat + lease)\n",
		       (long long)(expiry_min - killed_at), (long long)(expiry_max - killed_at));
	if (watch_rescue(s, v, nv, victim, killed_at))
		return fail("rescue");

	/* Every run final: stop the others gracefully. */
	for (;;) {
		if (census(s, t0, victim, &final, &held, &partway))
			return fail("listing the runs");
		if (final == g_runs)
			break;
		if (dura_now_ms() - t0 > TIMEOUT_MS) {
			fprintf(stderr, "fleet: %d of %d runs final after %d s\n", final, g_runs, TIMEOUT_MS / 1000);
			return fail("waiting");
		}
		sleep_ms(10);
	}
	printf("fleet: all %d runs final %.1f s after they were started; SIGTERM to the other workers\n", g_runs,
	       (double)(dura_now_ms() - t0) / 1000.0);
	int stopped_ok = 1;
	for (int i = 1; i < g_workers; i++)
		kill(g_pid[i], SIGTERM);
	for (int i = 1; i < g_workers; i++) {
		int st;
		waitpid(g_pid[i], &st, 0);
		stopped_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
		g_pid[i] = 0;
	}

	/* The proof, from each run's history. */
	int bad = 0, rescued = 0, completed = 0;
	size_t steps = 0;
	for (int i = 0; i < g_runs; i++) {
		long long begun_by = 0, ended_by = 0;
		int b = check_run(s, g_ids[i], &begun_by, &ended_by, &steps);
		bad += b;
		completed += b == 0;
		rescued += begun_by == victim && ended_by != victim;
	}
	printf("fleet: checked from each run's history: %d of %d runs completed, %zu steps, %s\n", completed, g_runs,
	       steps, bad ? "NOT each step exactly once" : "each step exactly once (steps 0..1 dense, hello and world once each)");
	printf("fleet: runs begun by the killed worker and finished by another: %d\n", rescued);
	if (!stopped_ok)
		fprintf(stderr, "fleet: a worker did not stop cleanly\n");
	free(v);
	free(g_ids);
	dura_store_close(s);
	return bad == 0 && stopped_ok ? 0 : 1;
}
