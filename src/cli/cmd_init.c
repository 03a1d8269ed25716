/*
 * cmd_init.c - `dura init`: create or upgrade the store's schema.
 *
 * The store is opened with auto_migrate on and then migrated explicitly,
 * so that init reports the version even when open already did the work.
 */
#include "cli.h"

static int run_init(cli *c, const cli_args *a)
{
	int from = 0, to = 0;
	dura_store_info info;
	(void)a;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_migrate(c->store, &from, &to);
	if (rc)
		return cli_fail(rc);
	rc = dura_store_info_get(c->store, &info);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "schema_version", cli_jint(to));
		cli_jset(o, "previous_schema_version", cli_jint(from));
		cli_jset(o, "scheme", cli_jstr(info.scheme));
		cli_jset(o, "location", cli_jstr(info.location));
		return cli_jprint(o);
	}
	printf("schema version %d (store %s)\n", to, info.location);
	return CLI_OK;
}

const cli_command cli_cmd_init = {
	.name = "init",
	.summary = "create or upgrade the store's schema",
	.help = "Creates the tables (or upgrades them to this library's schema) and prints\n"
	        "the schema version. Safe to run again. Other commands do not create tables.",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE_MIGRATE,
	.run = run_init,
};
