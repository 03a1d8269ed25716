/*
 * cmd_ping.c - `dura ping`: one round trip to the store, timed.
 */
#include "cli.h"

#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int run_ping(cli *c, const cli_args *a)
{
	(void)a;
	double t0 = now_ms();
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_ping(c->store);
	double ms = now_ms() - t0;
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "ok", json_true());
		cli_jset(o, "ms", json_real(ms));
		return cli_jprint(o);
	}
	printf("ok (%.3f ms)\n", ms);
	return CLI_OK;
}

const cli_command cli_cmd_ping = {
	.name = "ping",
	.summary = "check that the store answers, and how fast",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_ping,
};
