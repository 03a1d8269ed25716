/*
 * crash_resume - a run survives its process being killed.
 *
 * The parent starts a 6-step run and forks a child to execute it; each
 * step takes ~150 ms. After ~400 ms the parent kills the child with
 * SIGKILL - mid-step - then resumes the run itself. The run completes with
 * each step committed exactly once: the killed step is simply run again.
 *
 * usage: crash_resume [STORE_URL]    (a durable store: sqlite:, postgres:, ...)
 */
#include <dura.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int work(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	printf("  [pid %d] step %lld: %s\n", (int)getpid(), (long long)dura_ctx_step(ctx), dura_ctx_node(ctx));
	fflush(stdout);
	usleep(150000);
	json_t *done = json_object_get(state, "done");
	json_array_append_new(done, json_string(dura_ctx_node(ctx)));
	return 0;
}

static int setup(const char *url, dura_store **s, dura_engine **eng)
{
	static const char *const steps[] = {"fetch", "parse", "enrich", "score", "store", "report"};
	if (dura_store_open(s, url, NULL) || dura_engine_open(eng, *s, NULL))
		return -1;
	dura_workflow *wf;
	dura_workflow_new(&wf, "crash_resume");
	for (int i = 0; i < 6; i++) {
		dura_workflow_add_node(wf, steps[i], work, NULL, NULL);
		if (i)
			dura_workflow_add_edge(wf, steps[i - 1], steps[i]);
	}
	dura_workflow_set_start(wf, steps[0]);
	return dura_engine_register(*eng, wf);
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "crash_resume: %s: %s\n", what, e ? e->message : "unknown error");
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	dura_store *s;
	dura_engine *eng;
	if (setup(url, &s, &eng))
		return fail("setup");
	char run_id[DURA_UUID_LEN + 1];
	if (dura_run_start(eng, "crash_resume", NULL, "{\"done\":[]}", NULL, run_id))
		return fail("start");
	printf("run %s started\n", run_id);
	fflush(stdout);

	pid_t pid = fork();
	if (pid == 0) {
		dura_store *cs;
		dura_engine *ceng;
		if (setup(url, &cs, &ceng))
			_exit(3);
		dura_run_execute(ceng, run_id, NULL);
		_exit(0);
	}
	usleep(400000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	dura_record *r;
	if (dura_store_get_run(s, run_id, &r))
		return fail("get");
	printf("killed pid %d with SIGKILL after %lld committed steps; resuming in pid %d\n", (int)pid,
	       (long long)r->step_no, (int)getpid());
	dura_record_free(r);

	if (dura_run_execute(eng, run_id, &r))
		return fail("resume");
	printf("run %s: %s, %lld steps, state %s\n", run_id, dura_run_state_name(r->run_state), (long long)r->step_no,
	       r->state);
	int ok = r->run_state == DURA_RUN_COMPLETED && r->step_no == 6;
	json_t *st = json_loads(r->state, 0, NULL);
	ok = ok && json_array_size(json_object_get(st, "done")) == 6;
	json_decref(st);
	dura_record_free(r);
	printf("each step committed exactly once: %s\n", ok ? "yes" : "NO");
	printf("RUN %s\n", run_id);
	dura_engine_close(eng);
	dura_store_close(s);
	return ok ? 0 : 1;
}
