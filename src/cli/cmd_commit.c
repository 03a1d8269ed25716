/*
 * cmd_commit.c - `dura commit RUN`: commit one step by hand, as a worker
 * would (for operators, tests and demos). Without --expect-version the
 * run's current version is read first; the commit is still a
 * compare-and-swap, so a concurrent change makes it fail, not overwrite.
 */
#include "cli.h"

#include <inttypes.h>

static const cli_opt commit_opts[] = {
	{"node", 'n', "NODE", "the node that ran (required)"},
	{"state", 0, "JSON", "the state after the step (required)"},
	{"status", 0, "NEXT", "the node to run next (default: none, the end)"},
	{"run-state", 0, "S", "the run state after the commit (default: unchanged)"},
	{"expect-version", 0, "V", "fail unless the run is at version V (default: its current one)"},
	{NULL, 0, NULL, NULL},
};

static int run_commit(cli *c, const cli_args *a)
{
	dura_commit cm = DURA_COMMIT_INIT;
	dura_commit_result res;
	const char *v;
	int rc;
	cm.run_id = a->pos[0];
	cm.node_id = cli_opt_get(a, "node");
	cm.state = cli_opt_get(a, "state");
	cm.status = cli_opt_get(a, "status");
	if (!cm.node_id)
		return cli_usagef(c, "--node is required");
	if (!cm.state)
		return cli_usagef(c, "--state is required");
	if ((v = cli_opt_get(a, "run-state")) && (rc = cli_parse_run_state(c, "run-state", v, &cm.run_state)))
		return rc;
	if ((v = cli_opt_get(a, "expect-version")) &&
	    (rc = cli_parse_i64(c, "expect-version", v, 0, &cm.expect_version)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	if (!v) {
		dura_record *rec = NULL;
		rc = dura_store_get_run(c->store, cm.run_id, &rec);
		if (rc)
			return cli_fail(rc);
		cm.expect_version = rec->version;
		dura_record_free(rec);
	}
	rc = dura_store_commit(c->store, &cm, &res);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "run_id", cli_jstr(cm.run_id));
		cli_jset(o, "step", cli_jint(res.step));
		cli_jset(o, "version", cli_jint(res.new_version));
		return cli_jprint(o);
	}
	printf("step %" PRId64 " committed, version %" PRId64 "\n", res.step, res.new_version);
	return CLI_OK;
}

const cli_command cli_cmd_commit = {
	.name = "commit",
	.args = "RUN",
	.summary = "commit a step of a run by hand",
	.help = "Writes the record, a step row and an outbox event in one transaction,\n"
	        "only if the run is still at the expected version. Prints the step number\n"
	        "written and the run's new version.",
	.opts = commit_opts,
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_commit,
};
