/*
 * transition.c - what pause, resume and cancel share: move a run to
 * another run state and say from which.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>

int cli_transition(cli *c, const cli_args *a, int to)
{
	dura_record *rec = NULL;
	int64_t version = 0;
	const char *run_id = a->pos[0];
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_get_run(c->store, run_id, &rec);
	if (rc)
		return cli_fail(rc);
	int from = rec->run_state;
	dura_record_free(rec);
	rc = dura_store_set_run_state(c->store, run_id, to, &version);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "run_id", cli_jstr(run_id));
		cli_jset(o, "from", cli_jstr(dura_run_state_name(from)));
		cli_jset(o, "to", cli_jstr(dura_run_state_name(to)));
		cli_jset(o, "version", cli_jint(version));
		return cli_jprint(o);
	}
	char *id = cli_cell(run_id);
	printf("run %s: %s -> %s\n", id, dura_run_state_name(from), dura_run_state_name(to));
	free(id);
	return CLI_OK;
}
