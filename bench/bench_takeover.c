/*
 * bench_takeover - how long a key stays blocked after its claimer is
 * killed with SIGKILL in the middle of a computation, with the default
 * claim lease (2000 ms; the claimer's heartbeat renews it every 1000 ms).
 *
 * Each trial: a claimer process starts computing a key (and never
 * finishes), a waiter process asks for the same key, the claimer is
 * killed at a random moment of its heartbeat cycle, and the time from the
 * kill to the waiter's own computation starting is the takeover time. The
 * bound dura promises is the lease (two heartbeat intervals) plus one
 * waiter's poll (at most 50 ms).
 *
 * usage: bench_takeover STORE_URL [TRIALS]
 */
#include "raw.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEASE_MS 2000 /* DURA_CACHE_OPTIONS_INIT's lease */

static int g_fd; /* where a computation reports the time it started */

static int compute(dura_cache_value *out, void *payload)
{
	double t = now_us();
	(void)!write(g_fd, &t, sizeof(t));
	if (payload)
		for (;;)
			pause(); /* the claimer: computes until killed */
	return dura_cache_value_set(out, "v", 1, NULL);
}

static double read_time(int fd)
{
	double t = 0;
	if (read(fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
		die("a child did not report");
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_takeover STORE_URL [TRIALS]\n");
		return 2;
	}
	int trials = argc > 2 ? atoi(argv[2]) : 20;
	if (trials < 1)
		trials = 20;
	dura_store *s;
	if (dura_store_open(&s, argv[1], NULL))
		die(dura_error_last()->message);
	double *took = calloc((size_t)trials, sizeof(double));
	srand((unsigned)getpid());
	for (int t = 0; t < trials; t++) {
		char key[64], id[DURA_UUID_LEN + 1];
		dura_uuid7(id);
		snprintf(key, sizeof(key), "takeover-%s", id);
		int claimer_pipe[2], waiter_pipe[2];
		if (pipe(claimer_pipe) || pipe(waiter_pipe))
			die("pipe");
		pid_t claimer = fork();
		if (claimer == 0) {
			g_fd = claimer_pipe[1];
			dura_cache_entry *e;
			dura_cache_do_store(s, key, NULL, compute, "forever", &e);
			_exit(0);
		}
		read_time(claimer_pipe[0]);
		pid_t waiter = fork();
		if (waiter == 0) {
			g_fd = waiter_pipe[1];
			dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
			o.wait_timeout_ms = 60000;
			dura_cache_entry *e = NULL;
			int rc = dura_cache_do_store(s, key, &o, compute, NULL, &e);
			dura_cache_entry_free(e);
			_exit(rc ? 1 : 0);
		}
		/* anywhere in the heartbeat cycle, after the first renewal */
		usleep((useconds_t)(1000 + rand() % LEASE_MS) * 1000);
		double killed = now_us();
		kill(claimer, SIGKILL);
		waitpid(claimer, NULL, 0);
		took[t] = (read_time(waiter_pipe[0]) - killed) / 1000.0;
		int st;
		waitpid(waiter, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("the waiter failed");
		close(claimer_pipe[0]);
		close(claimer_pipe[1]);
		close(waiter_pipe[0]);
		close(waiter_pipe[1]);
	}
	double mx = 0;
	for (int t = 0; t < trials; t++)
		mx = took[t] > mx ? took[t] : mx;
	double med = pct(took, trials, 0.5);
	double hb = LEASE_MS / 2.0;
	printf("bench_takeover %.*s: %d trials, heartbeat %.0f ms, lease %d ms\n", (int)strcspn(argv[1], ":"), argv[1],
	       trials, hb, LEASE_MS);
	printf("  kill to takeover: median %.0f ms (%.2fx heartbeat), max %.0f ms (%.2fx heartbeat); bound 2x "
	       "heartbeat + 50 ms poll = %.0f ms\n",
	       med, med / hb, mx, mx / hb, 2 * hb + 50);
	free(took);
	dura_store_close(s);
	return 0;
}
