/*
 * fuzz_url.c - store URLs and the Go MySQL DSN through dura_url_parse, and
 * memory: URLs through dura_store_open.
 *
 * The input is the URL (up to its first NUL). A parsed URL must hold what
 * the store contract promises: a scheme, every string set ("" when
 * absent), options in their ranges, a printable form that hides the
 * password. A failure must be a DURA_E* code with a message that does not
 * echo a long URL. Only memory: URLs are opened (nothing reaches the
 * network or the file system).
 */
#include "fuzz.h"

#include <dura/store.h>

static void check_url(const dura_url *u, const char *input)
{
	/* a known scheme in its canonical name, or another one (for a store
	 * registered from outside) as RFC 3986 spells a scheme, in lower case */
	FUZZ_CHECK(u->scheme != NULL && u->scheme[0] >= 'a' && u->scheme[0] <= 'z');
	for (const char *c = u->scheme; *c; c++)
		FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.');
	FUZZ_CHECK(strcmp(u->scheme, "sqlite3") != 0 && strcmp(u->scheme, "mariadb") != 0 &&
	           strcmp(u->scheme, "postgresql") != 0 && strcmp(u->scheme, "rediss") != 0);
	FUZZ_CHECK(u->raw != NULL && strcmp(u->raw, input) == 0);
	const char *strings[] = {u->redacted, u->user, u->password, u->host, u->socket, u->database, u->prefix};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		FUZZ_CHECK(strings[i] != NULL);
		(void)strlen(strings[i]);
	}
	FUZZ_CHECK(u->port >= 0 && u->port <= 65535);
	FUZZ_CHECK(u->pool_max == 0 || (u->pool_max >= 1 && u->pool_max <= 10000));
	FUZZ_CHECK(u->pool_idle >= -1 && u->pool_idle <= 10000);
	FUZZ_CHECK(u->conn_lifetime_ms >= 0 && u->conn_idle_ms >= 0 && u->connect_timeout_ms >= 0 && u->timeout_ms >= 0);
	FUZZ_CHECK(dura_store_prefix_valid(u->prefix));
	if (u->password[0])
		FUZZ_CHECK(strstr(u->redacted, "***") != NULL);
	FUZZ_CHECK(u->nparams == 0 || (u->param_names && u->param_values));
	for (size_t i = 0; i < u->nparams; i++) {
		FUZZ_CHECK(u->param_names[i] && u->param_names[i][0] && u->param_values[i]);
		/* a name is given once: the lookup finds this very value */
		FUZZ_CHECK(dura_url_param(u, u->param_names[i]) == u->param_values[i]);
	}
	const char *pw = dura_url_param(u, "password");
	/* read back, the printable form has no password but "***" (a
	 * ?password= after a '#' is dropped with the fragment) */
	dura_url *r = NULL;
	if ((u->password[0] || (pw && *pw)) && dura_url_parse(&r, u->redacted) == DURA_OK) {
		const char *rpw = dura_url_param(r, "password");
		FUZZ_CHECK(!rpw || !*rpw || strcmp(rpw, "***") == 0);
		FUZZ_CHECK(!r->password[0] || strcmp(r->password, "***") == 0);
		dura_url_free(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parts p;
	fuzz_split(&p, data, size, 1);
	const char *input = p.part[0];
	dura_url *u = NULL;
	int rc = dura_url_parse(&u, input);
	fuzz_check_rc(rc);
	if (rc != DURA_OK) {
		FUZZ_CHECK(u == NULL);
		/* messages name the malformed part, never the whole URL */
		if (strlen(input) > 48)
			FUZZ_CHECK(strstr(dura_error_last()->message, input) == NULL);
		fuzz_parts_free(&p);
		return 0;
	}
	FUZZ_CHECK(u != NULL);
	check_url(u, input);
	int is_memory = strcmp(u->scheme, "memory") == 0;
	dura_url_free(u);

	if (is_memory) {
		dura_store *s = NULL;
		rc = dura_store_open(&s, input, NULL);
		fuzz_check_rc(rc);
		if (rc == DURA_OK) {
			dura_store_info info;
			FUZZ_CHECK(dura_store_info_get(s, &info) == DURA_OK);
			FUZZ_CHECK(info.scheme && strcmp(info.scheme, "memory") == 0);
			FUZZ_CHECK(info.location && info.notes);
			FUZZ_CHECK(dura_store_ping(s) == DURA_OK);
			dura_store_close(s);
		} else {
			FUZZ_CHECK(s == NULL);
		}
	}
	fuzz_parts_free(&p);
	return 0;
}
