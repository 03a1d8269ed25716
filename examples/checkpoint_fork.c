/*
 * checkpoint_fork - save a checkpoint mid-run, then fork new runs from it
 * and from an earlier step (time travel) with a different path.
 *
 * usage: checkpoint_fork [STORE_URL]
 */
#include <dura.h>

#include <stdio.h>
#include <string.h>

static int add(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	json_int_t by = *(const int *)payload;
	json_object_set_new(state, "total", json_integer(json_integer_value(json_object_get(state, "total")) + by));
	return 0;
}

static int fail(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "checkpoint_fork: %s: %s\n", what, e ? e->message : "unknown error");
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "sqlite:dura.db";
	static const int one = 1, ten = 10, hundred = 100;
	dura_store *s;
	dura_engine *eng, *first_two;
	dura_engine_options two = DURA_ENGINE_OPTIONS_INIT;
	two.max_steps = 2;
	if (dura_store_open(&s, url, NULL) || dura_engine_open(&eng, s, NULL) || dura_engine_open(&first_two, s, &two))
		return fail("open");
	dura_engine *engines[] = {eng, first_two};
	for (int i = 0; i < 2; i++) {
		dura_workflow *wf;
		dura_workflow_new(&wf, "checkpoint_fork");
		dura_workflow_add_node(wf, "plus1", add, (void *)&one, NULL);
		dura_workflow_add_node(wf, "plus10", add, (void *)&ten, NULL);
		dura_workflow_add_node(wf, "plus100", add, (void *)&hundred, NULL);
		dura_workflow_add_edge(wf, "plus1", "plus10");
		dura_workflow_add_edge(wf, "plus10", "plus100");
		dura_workflow_set_start(wf, "plus1");
		if (dura_engine_register(engines[i], wf))
			return fail("register");
	}
	char run_id[DURA_UUID_LEN + 1], cp[64], f1[DURA_UUID_LEN + 1], f2[DURA_UUID_LEN + 1];
	if (dura_run_start(eng, "checkpoint_fork", NULL, "{\"total\":0}", NULL, run_id))
		return fail("start");
	dura_run_execute(first_two, run_id, NULL); /* plus1, plus10 */
	snprintf(cp, sizeof(cp), "after-two-%.8s", run_id + 28);
	if (dura_run_checkpoint(eng, run_id, cp))
		return fail("checkpoint");
	printf("run %s: checkpoint %s saved after 2 steps (total 11)\n", run_id, cp);
	dura_record *r;
	dura_run_execute(eng, run_id, &r);
	printf("original run finished: %s\n", r->state);
	dura_record_free(r);

	if (dura_run_fork(eng, NULL, cp, 0, f1))
		return fail("fork from checkpoint");
	dura_run_execute(eng, f1, &r);
	printf("fork %s from the checkpoint: %s\n", f1, r->state);
	int ok = strstr(r->state, "111") != NULL;
	dura_record_free(r);

	if (dura_run_fork(eng, run_id, NULL, 0, f2))
		return fail("fork from step 0");
	dura_run_execute(eng, f2, &r);
	printf("fork %s from step 0 (time travel): %s\n", f2, r->state);
	ok = ok && strstr(r->state, "111") != NULL;
	dura_record_free(r);
	printf("RUN %s\n", f1);
	dura_engine_close(first_two);
	dura_engine_close(eng);
	dura_store_close(s);
	return ok ? 0 : 1;
}
