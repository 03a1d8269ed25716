/*
 * cmd_info.c - `dura info`: what the store is, its schema, capabilities and
 * connection pool. The location is the redacted URL (no password).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Every capability name, comma-separated, fits many times over. */
#define CAPS_BUF 256

static json_t *caps_array(const char *caps)
{
	json_t *arr = cli_jarray();
	const char *p = caps;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		cli_jappend(arr, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	return arr;
}

static int run_info(cli *c, const cli_args *a)
{
	dura_store_info info;
	dura_store_stats st;
	char caps[CAPS_BUF];
	(void)a;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_info_get(c->store, &info);
	if (rc)
		return cli_fail(rc);
	rc = dura_store_stats_get(c->store, &st);
	if (rc)
		return cli_fail(rc);
	dura_caps_format(caps, sizeof(caps), info.caps);
	size_t max_state = 0, max_value = 0;
	dura_store_limits_get(c->store, &max_state, &max_value);
	if (c->json) {
		json_t *o = cli_jobject(), *pool = cli_jobject();
		cli_jset(o, "scheme", cli_jstr(info.scheme));
		cli_jset(o, "location", cli_jstr(info.location));
		cli_jset(o, "server_version", cli_jstr(info.server_version));
		cli_jset(o, "schema_version", cli_jint(info.schema_version));
		cli_jset(o, "library_schema_version", cli_jint(info.library_schema_version));
		cli_jset(o, "library_version", cli_jstr(DURA_VERSION_STRING));
		cli_jset(o, "capabilities", caps_array(caps));
		cli_jset(pool, "open", cli_jint(st.open));
		cli_jset(pool, "idle", cli_jint(st.idle));
		cli_jset(pool, "in_use", cli_jint(st.in_use));
		cli_jset(pool, "max_open", cli_jint(st.max_open));
		cli_jset(pool, "waits", cli_jint((int64_t)st.waits));
		cli_jset(o, "pool", pool);
		json_t *limits = cli_jobject();
		cli_jset(limits, "max_state", cli_jint((int64_t)max_state));
		cli_jset(limits, "max_value", cli_jint((int64_t)max_value));
		cli_jset(o, "limits", limits);
		cli_jset(o, "notes", cli_jstr(info.notes));
		return cli_jprint(o);
	}
	char *schema = cli_asprintf("%d (library %d)", info.schema_version, info.library_schema_version);
	char *pool = cli_asprintf("open %d, idle %d, in use %d, max %d, waits %" PRIu64, st.open, st.idle,
	                          st.in_use, st.max_open, st.waits);
	char *limits = cli_asprintf("state %zu bytes, cache value %zu bytes (max_state, max_value)", max_state, max_value);
	cli_kv(stdout, 14, "scheme", info.scheme);
	cli_kv(stdout, 14, "location", info.location);
	cli_kv(stdout, 14, "server version", info.server_version);
	cli_kv(stdout, 14, "schema version", schema);
	cli_kv(stdout, 14, "library", DURA_VERSION_STRING);
	cli_kv(stdout, 14, "capabilities", caps);
	cli_kv(stdout, 14, "pool", pool);
	cli_kv(stdout, 14, "limits", limits);
	cli_kv(stdout, 14, "notes", info.notes);
	free(schema);
	free(pool);
	free(limits);
	return CLI_OK;
}

const cli_command cli_cmd_info = {
	.name = "info",
	.summary = "describe the store: location, versions, capabilities, pool, limits",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_info,
};
