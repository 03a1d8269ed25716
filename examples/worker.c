/*
 * worker - a worker process: copy it, put your workflows in, run as many
 * of them as you like on as many machines as you like against one store.
 *
 * It registers one small workflow ("greet": hello -> world), serves it
 * with a dura_worker of THREADS threads, and stops gracefully on SIGTERM
 * or SIGINT: it stops claiming, lets the nodes that run finish (at most
 * 10 s), commits their steps and releases its leases, so another worker
 * continues those runs at once. Killed with SIGKILL instead, its runs are
 * picked up by the other workers once their leases run out (3 s by
 * default, LEASE_MS with -l).
 *
 *   worker [-q] [-l LEASE_MS] STORE_URL [THREADS] [RUNS]
 *
 * -q prints no line per node. RUNS > 0 starts that many runs first (to
 * have something to do), e.g.
 *
 *   ./worker sqlite:dura.db 4 20 &     # starts 20 runs and serves them
 *   ./worker sqlite:dura.db 4 &        # a second worker sharing them
 *   dura --store sqlite:dura.db workers  # both listed, live
 *   kill -TERM %1 %2
 */
#include <dura.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static int g_quiet;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1; /* the main thread stops the worker: nothing else is safe here */
}

static int hello(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	usleep(100000); /* some work */
	json_object_set_new(state, "hello", json_integer(getpid()));
	if (!g_quiet)
		printf("[pid %d] run %s: hello\n", (int)getpid(), dura_ctx_run_id(ctx));
	return 0;
}

static int world(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	usleep(100000);
	json_object_set_new(state, "world", json_integer(getpid()));
	if (!g_quiet)
		printf("[pid %d] run %s: world\n", (int)getpid(), dura_ctx_run_id(ctx));
	return 0;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "worker: %s: %s\n", what, e ? e->message : "unknown error");
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: worker [-q] [-l LEASE_MS] STORE_URL [THREADS] [RUNS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int64_t lease_ms = 3000;
	int opt;
	while ((opt = getopt(argc, argv, "ql:")) != -1) {
		if (opt == 'q')
			g_quiet = 1;
		else if (opt == 'l')
			lease_ms = atoll(optarg);
		else
			return usage();
	}
	if (optind >= argc)
		return usage();
	const char *url = argv[optind];
	int threads = optind + 1 < argc ? atoi(argv[optind + 1]) : 4;
	int runs = optind + 2 < argc ? atoi(argv[optind + 2]) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	dura_store *store;
	dura_engine *eng;
	dura_workflow *wf;
	if (dura_store_open(&store, url, NULL))
		return fail("opening the store");
	if (dura_engine_open(&eng, store, NULL))
		return fail("opening the engine");
	if (dura_workflow_new(&wf, "greet") || dura_workflow_add_node(wf, "hello", hello, NULL, NULL) ||
	    dura_workflow_add_node(wf, "world", world, NULL, NULL) || dura_workflow_add_edge(wf, "hello", "world") ||
	    dura_workflow_set_start(wf, "hello") || dura_engine_register(eng, wf))
		return fail("registering the workflow");
	for (int i = 0; i < runs; i++) {
		char id[DURA_UUID_LEN + 1];
		if (dura_run_start(eng, "greet", NULL, "{}", NULL, id))
			return fail("starting a run");
	}

	/* SIGTERM and SIGINT set a flag; the main thread stops the worker */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* blocked until sigsuspend below, so that none is missed; the
	 * worker's threads, started after this, inherit the mask and never
	 * take them */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);

	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.threads = threads;
	o.lease_ms = lease_ms; /* heartbeats every lease_ms / 3 */
	o.name = "example";
	dura_worker *w;
	if (dura_worker_start(&w, eng, &o))
		return fail("starting the worker");
	printf("worker %s serving 'greet' with %d threads, lease %lld ms; SIGTERM stops it\n", dura_worker_id(w), threads,
	       (long long)lease_ms);
	while (!g_stop)
		sigsuspend(&old); /* unblocks them while it waits */

	dura_worker_stats st;
	dura_worker_stats_get(w, &st);
	int rc = dura_worker_stop(w, 10000); /* drain for at most 10 s */
	printf("worker pid %d stopped%s: claimed %llu, completed %llu, failed %llu, rescued %llu, abandoned %llu\n",
	       (int)getpid(), rc == DURA_ETIMEOUT ? " (some nodes outran the drain)" : "", (unsigned long long)st.claimed,
	       (unsigned long long)st.completed, (unsigned long long)st.failed, (unsigned long long)st.rescued,
	       (unsigned long long)st.abandoned);
	dura_engine_close(eng);
	dura_store_close(store);
	return 0;
}
