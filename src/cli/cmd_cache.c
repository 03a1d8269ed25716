/*
 * cmd_cache.c - `dura cache ls|get|put|rm|purge|stats`: the step cache.
 *
 * Values are bytes. `get` prints a value as text when it is printable
 * UTF-8 (no NULs, no control characters but tab and newlines), otherwise
 * its size and SHA-256; --raw writes the bytes as they are.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "2025-01-02 03:04:05.678", "never", or the time and "(expired)". */
static char *expires_text(int64_t expires_at, int64_t now)
{
	char t[24];
	if (expires_at == 0)
		return cli_strdup("never");
	dura_time_format(t, expires_at);
	return expires_at <= now ? cli_asprintf("%s (expired)", t) : cli_strdup(t);
}

/* ---- ls ---------------------------------------------------------------------- */

static const cli_opt ls_opts[] = {
	{"cursor", 0, "K", "continue after key K (the 'next:' line of the previous page)"},
	{"limit", 'n', "N", "at most N entries (default 100, at most 10000)"},
	{NULL, 0, NULL, NULL},
};

static int run_ls(cli *c, const cli_args *a)
{
	dura_cache_list list;
	size_t limit = 0;
	const char *v;
	int rc;
	if ((v = cli_opt_get(a, "limit")) && (rc = cli_parse_size(c, "limit", v, 10000, &limit)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_cache_list(c->store, cli_opt_get(a, "cursor"), limit, &list);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject(), *arr = cli_jarray();
		for (size_t i = 0; i < list.count; i++) {
			const dura_cache_entry *e = &list.items[i];
			json_t *j = cli_jobject();
			cli_jset(j, "key", cli_jstr(e->key));
			cli_jset(j, "size", cli_jint((int64_t)e->value_len));
			cli_jset(j, "error", cli_jstr(e->error));
			cli_jset(j, "metadata", cli_jparse(e->metadata));
			cli_jset(j, "created_at", cli_jtime(e->created_at));
			cli_jset(j, "expires_at", cli_jtime(e->expires_at));
			cli_jappend(arr, j);
		}
		cli_jset(o, "entries", arr);
		cli_jset(o, "next_cursor", cli_jstr(list.next_cursor));
		dura_cache_list_free(&list);
		return cli_jprint(o);
	}
	static const char *const hdr[] = {"KEY", "SIZE", "EXPIRES", "CREATED"};
	cli_table *t = cli_table_new(4, hdr);
	int64_t now = dura_now_ms();
	for (size_t i = 0; i < list.count; i++) {
		const dura_cache_entry *e = &list.items[i];
		char size[24], created[24];
		snprintf(size, sizeof(size), "%zu", e->value_len);
		char *exp = expires_text(e->expires_at, now);
		const char *row[] = {e->key, size, exp, cli_time(created, e->created_at)};
		cli_table_add(t, row);
		free(exp);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (list.next_cursor)
		printf("next: --cursor %s\n", list.next_cursor);
	dura_cache_list_free(&list);
	return CLI_OK;
}

static const cli_command cmd_cache_ls = {
	.name = "ls",
	.summary = "list entries in key order: KEY SIZE EXPIRES CREATED",
	.opts = ls_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_ls,
};

/* ---- get ----------------------------------------------------------------------- */

static const cli_opt get_opts[] = {
	{"raw", 0, NULL, "write the value's bytes to stdout, nothing else"},
	{NULL, 0, NULL, NULL},
};

static char *base64(const unsigned char *p, size_t n)
{
	if (n > INT_MAX / 4 * 3 - 3)
		return NULL;
	char *out = cli_malloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static int run_get(cli *c, const cli_args *a)
{
	dura_cache_entry *e = NULL;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_cache_get(c->store, a->pos[0], &e);
	if (rc)
		return cli_fail(rc);
	int text = cli_printable(e->value, e->value_len);
	char *sha = cli_sha256_hex(e->value ? (const void *)e->value : "", e->value_len);
	int64_t now = dura_now_ms();
	if (cli_flag(a, "raw")) {
		if (e->value_len)
			fwrite(e->value, 1, e->value_len, stdout);
	} else if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "key", cli_jstr(e->key));
		cli_jset(o, "size", cli_jint((int64_t)e->value_len));
		if (text) {
			char *s = cli_malloc(e->value_len + 1);
			if (e->value_len)
				memcpy(s, e->value, e->value_len);
			s[e->value_len] = '\0';
			cli_jset(o, "value", cli_jstr(s));
			free(s);
		} else {
			char *b = base64(e->value, e->value_len);
			cli_jset(o, "value", json_null());
			cli_jset(o, "value_base64", b ? cli_jstr(b) : json_null());
			free(b);
		}
		cli_jset(o, "sha256", cli_jstr(sha));
		cli_jset(o, "error", cli_jstr(e->error));
		cli_jset(o, "metadata", cli_jparse(e->metadata));
		cli_jset(o, "created_at", cli_jtime(e->created_at));
		cli_jset(o, "expires_at", cli_jtime(e->expires_at));
		cli_jprint(o);
	} else {
		char t[24], *s;
		cli_kv(stdout, 8, "key", e->key);
		s = cli_asprintf("%zu", e->value_len);
		cli_kv(stdout, 8, "size", s);
		free(s);
		cli_kv(stdout, 8, "error", e->error);
		s = cli_json_oneline(e->metadata);
		cli_kv(stdout, 8, "metadata", s);
		free(s);
		cli_kv(stdout, 8, "created", cli_time(t, e->created_at));
		s = expires_text(e->expires_at, now);
		cli_kv(stdout, 8, "expires", s);
		free(s);
		printf("%-8s  ", "value");
		if (text && e->value_len) {
			fwrite(e->value, 1, e->value_len, stdout);
			if (e->value[e->value_len - 1] != '\n')
				fputc('\n', stdout);
		} else if (text) {
			fputs("-\n", stdout);
		} else {
			printf("<%zu bytes, sha256 %s>\n", e->value_len, sha);
		}
	}
	free(sha);
	dura_cache_entry_free(e);
	return CLI_OK;
}

static const cli_command cmd_cache_get = {
	.name = "get",
	.args = "KEY",
	.summary = "show an entry (a miss if it expired)",
	.help = "The value is printed as text when it is printable UTF-8, otherwise as\n"
	        "\"<N bytes, sha256 HEX>\". With --json a binary value is in value_base64.",
	.opts = get_opts,
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_get,
};

/* ---- put ----------------------------------------------------------------------- */

static const cli_opt put_opts[] = {
	{"ttl", 0, "MS", "expire after MS milliseconds (default 0: never)"},
	{"error", 0, "TEXT", "cache an error text with the value"},
	{"metadata", 0, "JSON", "a JSON object to keep with the entry"},
	{NULL, 0, NULL, NULL},
};

static int run_put(cli *c, const cli_args *a)
{
	const char *key = a->pos[0], *value = a->pos[1], *v;
	unsigned char *buf = NULL;
	size_t len;
	int64_t ttl = 0;
	int rc;
	if ((v = cli_opt_get(a, "ttl")) && (rc = cli_parse_i64(c, "ttl", v, 0, &ttl)))
		return rc;
	if (strcmp(value, "-") == 0) {
		if (cli_read_all(stdin, &buf, &len) != 0)
			return cli_errorf("cannot read the value from stdin: %s", strerror(errno));
	} else {
		len = strlen(value);
	}
	if (cli_open(c))
		return CLI_ERROR;
	rc = dura_store_cache_put(c->store, key, buf ? (const void *)buf : value, len, cli_opt_get(a, "error"),
	                          cli_opt_get(a, "metadata"), ttl);
	free(buf);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "key", cli_jstr(key));
		cli_jset(o, "size", cli_jint((int64_t)len));
		cli_jset(o, "ttl_ms", cli_jint(ttl));
		return cli_jprint(o);
	}
	char *k = cli_cell(key);
	if (ttl)
		printf("stored %s (%zu byte%s, expires in %" PRId64 " ms)\n", k, len, len == 1 ? "" : "s", ttl);
	else
		printf("stored %s (%zu byte%s, no expiry)\n", k, len, len == 1 ? "" : "s");
	free(k);
	return CLI_OK;
}

static const cli_command cmd_cache_put = {
	.name = "put",
	.args = "KEY VALUE",
	.summary = "store an entry (VALUE '-' reads the bytes from stdin)",
	.opts = put_opts,
	.min_pos = 2,
	.max_pos = 2,
	.store = CLI_STORE,
	.run = run_put,
};

/* ---- rm ------------------------------------------------------------------------ */

static int run_rm(cli *c, const cli_args *a)
{
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_cache_delete(c->store, a->pos[0]);
	if (rc)
		return cli_fail(rc);
	return cli_done(c, "deleted", "deleted", a->pos[0]);
}

static const cli_command cmd_cache_rm = {
	.name = "rm",
	.args = "KEY",
	.summary = "delete an entry",
	.min_pos = 1,
	.max_pos = 1,
	.store = CLI_STORE,
	.run = run_rm,
};

/* ---- purge ----------------------------------------------------------------------- */

static int run_purge(cli *c, const cli_args *a)
{
	int64_t n = 0;
	(void)a;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_cache_purge_expired(c->store, &n);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "purged", cli_jint(n));
		return cli_jprint(o);
	}
	printf("purged %" PRId64 " expired entries\n", n);
	return CLI_OK;
}

static const cli_command cmd_cache_purge = {
	.name = "purge",
	.summary = "delete the expired entries",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_purge,
};

/* ---- stats ----------------------------------------------------------------------- */

static int run_stats(cli *c, const cli_args *a)
{
	dura_cache_stats st;
	(void)a;
	if (cli_open(c))
		return CLI_ERROR;
	int rc = dura_store_cache_stats(c->store, &st);
	if (rc)
		return cli_fail(rc);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "entries", cli_jint(st.entries));
		cli_jset(o, "expired", cli_jint(st.expired));
		cli_jset(o, "bytes", cli_jint(st.bytes));
		cli_jset(o, "hits", cli_jint((int64_t)st.hits));
		cli_jset(o, "misses", cli_jint((int64_t)st.misses));
		return cli_jprint(o);
	}
	printf("entries  %" PRId64 "\n", st.entries);
	printf("expired  %" PRId64 "\n", st.expired);
	printf("bytes    %" PRId64 "\n", st.bytes);
	printf("hits     %" PRIu64 "\n", st.hits);
	printf("misses   %" PRIu64 "\n", st.misses);
	return CLI_OK;
}

static const cli_command cmd_cache_stats = {
	.name = "stats",
	.summary = "count entries, expired entries and bytes",
	.help = "Hits and misses are counted per store handle, so they are those of\n"
	        "this command only.",
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_stats,
};

static const cli_command *const cache_subs[] = {&cmd_cache_ls,    &cmd_cache_get,   &cmd_cache_put,
                                                &cmd_cache_rm,    &cmd_cache_purge, &cmd_cache_stats,
                                                NULL};

const cli_command cli_cmd_cache = {
	.name = "cache",
	.summary = "the step cache: ls, get, put, rm, purge, stats",
	.subs = cache_subs,
};
