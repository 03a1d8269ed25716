/*
 * cmd_signal.c - `dura signal RUN NAME [JSON]`: send a signal to a run.
 *
 * The signal goes to the run's inbox (dura_store_signal_send) and wakes
 * the run if it waits for a signal of that name, in one atomic step of the
 * store; a signal sent before the run waits is kept until a node's
 * dura_ctx_wait_signal takes it.
 */
#include "cli.h"

#include <stdlib.h>

static int run_signal(cli *c, const cli_args *a)
{
	const char *run_id = a->pos[0], *name = a->pos[1], *payload = a->npos > 2 ? a->pos[2] : NULL;
	char signal_id[DURA_UUID_LEN + 1];
	if (payload) {
		json_error_t err;
		json_t *j = json_loads(payload, JSON_DECODE_ANY, &err);
		if (!j)
			return cli_usagef(c, "JSON: not valid JSON: %s (at character %d)", err.text, err.position);
		json_decref(j);
	}
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_signal_send(c->store, run_id, name, payload, signal_id);
	if (rc == DURA_ENOTFOUND) {
		char *id = cli_cell(run_id);
		cli_errorf("no run %s: the signal was not sent", id);
		free(id);
		return CLI_ERROR;
	}
	if (rc == DURA_ECONFLICT) {
		/* say how it ended */
		dura_record *rec = NULL;
		char *id = cli_cell(run_id);
		if (dura_store_get_run(c->store, run_id, &rec) == 0)
			cli_errorf("run %s has ended (%s): it takes no more signals", id, dura_run_state_name(rec->run_state));
		else
			cli_errorf("run %s has ended: it takes no more signals", id);
		free(id);
		dura_record_free(rec);
		return CLI_ERROR;
	}
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "signal_id", cli_jstr(signal_id));
		cli_jset(o, "run_id", cli_jstr(run_id));
		cli_jset(o, "name", cli_jstr(name));
		return cli_jprint(o);
	}
	printf("%s\n", signal_id);
	return CLI_OK;
}

const cli_command cli_cmd_signal = {
	.name = "signal",
	.args = "RUN NAME [JSON]",
	.summary = "send a signal to a run (it wakes a run waiting for it)",
	.help = "Appends a signal named NAME with payload JSON (default null) to the run's\n"
	        "inbox and prints the signal's id. A run waiting for a signal of that name\n"
	        "(dura_ctx_wait_signal) is woken at once; one that is not waiting yet finds\n"
	        "it when it does. A worker serving the run's workflow (or dura_run_execute)\n"
	        "continues it. Fails (exit 1) for an unknown run or one that has ended,\n"
	        "and (exit 2) for a payload that is not JSON. With --json:\n"
	        "{\"signal_id\": ..., \"run_id\": ..., \"name\": ...}.",
	.min_pos = 2,
	.max_pos = 3,
	.store = CLI_STORE,
	.run = run_signal,
};
