/*
 * redis_extra.c - what only the Redis store promises, on the throwaway
 * servers of tests/servers: TLS (right CA, wrong CA, no verification),
 * the unix socket, ACL users and passwords kept out of messages, the key
 * layout redis.h documents, no SQL, durability as the server's
 * appendfsync and aof-load-truncated say, scripts reloaded after SCRIPT
 * FLUSH, commits under a SIGKILLed server, a commit torn in the
 * append-only file by a crash, commits while the store's slot is resharded
 * between cluster masters and back, the migration of a namespace of
 * schema 2 to schema 3 (workflow versions and retention), of schema 3
 * to schema 4 (the outbox in event-id order, for import), and of schema 4
 * to schema 5 (the runs that wait, for the gauges).
 *
 * Usage: redis_extra SERVERS_SCRIPT [FILTER]. SERVERS_SCRIPT is
 * tests/servers (for `restart DIR --kill redis`). The URLs come from the
 * environment tests/servers start prints: DURA_TEST_REDIS_URL,
 * DURA_TEST_REDIS_ACL_URL, DURA_TEST_REDIS_SOCKET, DURA_TEST_REDIS_TLS_URL,
 * DURA_TEST_REDIS_TLS_WRONG_CA, DURA_TEST_REDIS_PORT,
 * DURA_TEST_SERVERS_DIR, DURA_TEST_REDIS_CLUSTER_URL,
 * DURA_TEST_REDIS_CLUSTER_PORTS; a test whose variable is missing FAILS.
 *
 * Server-side actions (CONFIG SET, SCRIPT FLUSH, ACL SETUSER, CLUSTER
 * SETSLOT, MIGRATE) go through hiredis directly, not through the store.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dura.h>
#include <dura/store.h>

#include "server_extra.h"
#include "test.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

static const char *g_servers_script;
static const char *g_url, *g_acl_url, *g_socket, *g_tls_url, *g_wrong_ca, *g_port, *g_servers_dir, *g_cluster_url,
	*g_cluster_ports;

/* ---- helpers -------------------------------------------------------------- */

static dura_store *open_url(const char *url)
{
	dura_store *s = NULL;
	if (dura_store_open(&s, url, NULL) != 0) {
		fprintf(stderr, "    cannot open the store: %s\n", last_message());
		return NULL;
	}
	return s;
}

/* 1 when opening url without auto_migrate is refused for an older
 * schema (DURA_EVERSION, the message saying to run `dura init`). */
static int refuses_old_schema(const char *url)
{
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	opts.auto_migrate = 0;
	dura_store *s = NULL;
	int rc = dura_store_open(&s, url, &opts);
	int ok = rc == DURA_EVERSION && strstr(last_message(), "dura init") != NULL;
	dura_store_close(s);
	return ok;
}

/* A fresh key prefix (at most 32 bytes of [A-Za-z0-9_]). */
static void fresh_prefix(char *out, size_t size, const char *base)
{
	static atomic_int n;
	snprintf(out, size, "%s%d_%d_%lld", base, (int)getpid(), atomic_fetch_add(&n, 1),
	         (long long)(dura_now_ms() % 100000));
}

/* url with ?prefix=P */
static void url_prefixed(char *out, size_t size, const char *url, const char *prefix)
{
	char opt[64];
	snprintf(opt, sizeof(opt), "prefix=%s", prefix);
	url_with(out, size, url, opt);
}

/* A run committed to and read back: the whole round trip on one handle. */
static void run_commit_read(dura_store *s)
{
	char wf[96];
	unique(wf, sizeof(wf), "rx-rt");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
	CHECK(res.step == 0 && res.new_version == r->version + 1);
	dura_step *st = NULL;
	CHECK_RC(dura_store_get_step(s, r->run_id, 0, &st), 0);
	if (st) {
		CHECK_STR(st->node_id, "a");
		CHECK(strstr(st->state, "\"n\"") != NULL);
		dura_step_free(st);
	}
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
	if (got) {
		CHECK(got->version == r->version + 1);
		CHECK(got->step_no == 1);
		dura_record_free(got);
	}
	dura_record_free(r);
}

/* ---- admin connections (hiredis, straight to a server) -------------------- */

static redisContext *admin_port(int port)
{
	struct timeval tv = {10, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (!c || c->err) {
		fprintf(stderr, "    admin connection to 127.0.0.1:%d failed: %s\n", port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

static redisContext *admin_single(void)
{
	return admin_port(atoi(g_port));
}

/* The single server's store and an admin connection to it, or NULL (and
 * *a NULL) when either cannot be had. */
static dura_store *open_with_admin(redisContext **a)
{
	*a = admin_single();
	if (!*a)
		return NULL;
	dura_store *s = open_url(g_url);
	if (!s) {
		redisFree(*a);
		*a = NULL;
	}
	return s;
}

/* A command; NULL (printed) when the connection failed. An error reply is returned. */
static redisReply *acmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		fprintf(stderr, "    admin command '%s' failed: %s\n", fmt, c->errstr);
	return r;
}

/* A command that must answer OK (or anything but an error): 0 or -1 (printed). */
static int aok(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, "    admin command '%s' failed: %s\n", fmt, c->errstr);
		return -1;
	}
	int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
	if (rc)
		fprintf(stderr, "    admin command '%s': %s\n", fmt, r->str);
	freeReplyObject(r);
	return rc;
}

static long long ainteger(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *r = acmd(c, fmt, arg);
	long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
	if (r)
		freeReplyObject(r);
	return v;
}

static void astatus(redisContext *c, const char *fmt, const char *arg, char *out, size_t size)
{
	redisReply *r = acmd(c, fmt, arg);
	out[0] = '\0';
	if (r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING))
		snprintf(out, size, "%s", r->str);
	if (r)
		freeReplyObject(r);
}

static int notes_have(const dura_store_info *info, const char *want)
{
	if (info->notes && strstr(info->notes, want))
		return 1;
	fprintf(stderr, "    notes \"%s\" lack \"%s\"\n", info->notes ? info->notes : "(null)", want);
	return 0;
}

/* ---- 1. TLS ------------------------------------------------------------------ */

/* The TLS URL with its query replaced by `query`. */
static void tls_url_with(char *out, size_t size, const char *query)
{
	const char *q = strchr(g_tls_url, '?');
	size_t base = q ? (size_t)(q - g_tls_url) : strlen(g_tls_url);
	snprintf(out, size, "%.*s?%s", (int)base, g_tls_url, query);
}

static void tls_right_ca(void)
{
	if (!need_env(g_tls_url, "DURA_TEST_REDIS_TLS_URL"))
		return;
	dura_store *s = open_url(g_tls_url);
	REQUIRE(s);
	run_commit_read(s);
	dura_store_close(s);
}

static void tls_wrong_ca(void)
{
	if (!need_env(g_tls_url, "DURA_TEST_REDIS_TLS_URL") || !need_env(g_wrong_ca, "DURA_TEST_REDIS_TLS_WRONG_CA"))
		return;
	char q[1200], url[1400];
	snprintf(q, sizeof(q), "tls_ca=%s", g_wrong_ca);
	tls_url_with(url, sizeof(url), q);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EINVAL);
	CHECK(s == NULL);
	CHECK(message_has("certificate"));
	dura_store_close(s);
}

static void tls_skip_verify(void)
{
	if (!need_env(g_tls_url, "DURA_TEST_REDIS_TLS_URL") || !need_env(g_wrong_ca, "DURA_TEST_REDIS_TLS_WRONG_CA"))
		return;
	char q[1200], url[1400];
	snprintf(q, sizeof(q), "tls_ca=%s&tls_insecure_skip_verify=1", g_wrong_ca);
	tls_url_with(url, sizeof(url), q);
	dura_store *s = open_url(url);
	REQUIRE(s);
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	if (info.notes) {
		if (!strstr(info.notes, "certificate is NOT checked") && !strstr(info.notes, "not checked"))
			fprintf(stderr, "    notes \"%s\" do not say the certificate is not checked\n", info.notes), test__failed_now = 1;
	} else {
		CHECK(info.notes != NULL);
	}
	run_commit_read(s);
	dura_store_close(s);
}

static void tls_options_on_plain_url(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_wrong_ca, "DURA_TEST_REDIS_TLS_WRONG_CA"))
		return;
	char q[1200], url[1400];
	snprintf(q, sizeof(q), "tls_ca=%s", g_wrong_ca);
	url_with(url, sizeof(url), g_url, q);
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EINVAL);
	CHECK(s == NULL);
	CHECK(message_has("rediss://"));
	url_with(url, sizeof(url), g_url, "tls_insecure_skip_verify=1");
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EINVAL);
	CHECK(s == NULL);
}

/* An option the store does not use is named in the notes (set at open). */
static void unused_option_noted(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL"))
		return;
	char url[1200];
	url_with(url, sizeof(url), g_url, "frobnicate=1");
	dura_store *s = open_url(url);
	REQUIRE(s);
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(notes_have(&info, "frobnicate"));
	dura_store_close(s);
}

/* ---- 2. the unix socket -------------------------------------------------------- */

static void unix_socket(void)
{
	if (!need_env(g_socket, "DURA_TEST_REDIS_SOCKET"))
		return;
	char url[1200];
	snprintf(url, sizeof(url), "redis://localhost/0?socket=%s", g_socket);
	dura_store *s = open_url(url);
	REQUIRE(s);
	run_commit_read(s);
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	dura_store_close(s);
}

/* ---- 3. ACL and secrets -------------------------------------------------------- */

static void acl_and_secrets(void)
{
	if (!need_env(g_acl_url, "DURA_TEST_REDIS_ACL_URL"))
		return;
	dura_url *u = NULL;
	REQUIRE_RC(dura_url_parse(&u, g_acl_url), 0);
	char right[128];
	snprintf(right, sizeof(right), "%s", u->password);
	CHECK(strlen(right) >= 8);
	dura_store *s = open_url(g_acl_url);
	if (s) {
		run_commit_read(s);
		dura_store_info info;
		CHECK_RC(dura_store_info_get(s, &info), 0);
		CHECK(info.location && !strstr(info.location, right));
		if (info.notes)
			CHECK(!strstr(info.notes, right));
		dura_store_close(s);
	} else {
		test__failed_now = 1;
	}
	const char *wrong = "Wr0ngPassw0rdXyz";
	char url[600];
	snprintf(url, sizeof(url), "redis://%s:%s@%s:%d/0", u->user, wrong, u->host, u->port);
	s = NULL;
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EINVAL);
	CHECK(s == NULL);
	const char *m = last_message();
	CHECK(*m != '\0');
	CHECK(!strstr(m, wrong));
	CHECK(!strstr(m, right));
	/* the right user name with no password at all, and a user that does not exist */
	snprintf(url, sizeof(url), "redis://nosuchuser:%s@%s:%d/0", right, u->host, u->port);
	CHECK_RC(dura_store_open(&s, url, NULL), DURA_EINVAL);
	m = last_message();
	CHECK(!strstr(m, right));
	dura_url_free(u);
}

/* ---- 4. the key layout ------------------------------------------------------------ */

static int list_has(char **keys, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], want) == 0)
			return 1;
	return 0;
}

static void keys_layout(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	char prefix[40], url[1024];
	fresh_prefix(prefix, sizeof(prefix), "rxkeys");
	url_prefixed(url, sizeof(url), g_url, prefix);
	dura_store *s = open_url(url);
	REQUIRE(s);
	char wf[96];
	unique(wf, sizeof(wf), "rx-keys");
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = "order-42";
	req.state = "{}";
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc != 0) {
		fprintf(stderr, "    create_run: %s\n", last_message());
		dura_store_close(s);
		REQUIRE(0);
	}
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
	CHECK_RC(commit(s, r->run_id, res.new_version, "b", "{\"n\":2}", 0, &res), 0);
	CHECK_RC(dura_store_cache_put(s, "ck1", "val", 3, NULL, NULL, 600000), 0);
	CHECK_RC(dura_store_cache_put(s, "ck-forever", "v", 1, NULL, NULL, 0), 0);
	CHECK_RC(dura_store_checkpoint_save(s, "cp1", r->run_id, 1, "{\"n\":2}"), 0);

	redisContext *a = admin_single();
	if (!a) {
		dura_record_free(r);
		dura_store_close(s);
		REQUIRE(0);
	}
	char pat[64];
	snprintf(pat, sizeof(pat), "{%s}*", prefix);
	char **keys = NULL;
	size_t n = 0, cap = 0;
	char cursor[32] = "0";
	do {
		redisReply *sr = acmd(a, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
		if (!sr || sr->type != REDIS_REPLY_ARRAY || sr->elements != 2) {
			if (sr)
				freeReplyObject(sr);
			test__failed_now = 1;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", sr->element[0]->str);
		for (size_t i = 0; i < sr->element[1]->elements; i++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				keys = realloc(keys, cap * sizeof(*keys));
			}
			keys[n++] = strdup(sr->element[1]->element[i]->str);
		}
		freeReplyObject(sr);
	} while (strcmp(cursor, "0") != 0);

	char want[400], colon[48];
	snprintf(colon, sizeof(colon), "{%s}:", prefix);
	for (size_t i = 0; i < n; i++)
		if (strncmp(keys[i], colon, strlen(colon)) != 0) {
			fprintf(stderr, "    key %s does not start with %s\n", keys[i], colon);
			test__failed_now = 1;
		}
	snprintf(want, sizeof(want), "%srun:%s", colon, r->run_id);
	CHECK(list_has(keys, n, want));
	char t[32];
	astatus(a, "TYPE %s", want, t, sizeof(t));
	CHECK_STR(t, "hash");
	snprintf(want, sizeof(want), "%ssteps:%s", colon, r->run_id);
	CHECK(list_has(keys, n, want));
	astatus(a, "TYPE %s", want, t, sizeof(t));
	CHECK_STR(t, "list");
	CHECK(ainteger(a, "LLEN %s", want) == 2);
	char due[400], leased[400];
	snprintf(due, sizeof(due), "%sdue:%s", colon, wf);
	snprintf(leased, sizeof(leased), "%sleased:%s", colon, wf);
	CHECK(list_has(keys, n, due) || list_has(keys, n, leased));
	if (list_has(keys, n, due)) {
		astatus(a, "TYPE %s", due, t, sizeof(t));
		CHECK_STR(t, "zset");
	}
	snprintf(want, sizeof(want), "%soutbox", colon);
	CHECK(list_has(keys, n, want));
	astatus(a, "TYPE %s", want, t, sizeof(t));
	CHECK_STR(t, "stream");
	CHECK(ainteger(a, "XLEN %s", want) == 2);
	snprintf(want, sizeof(want), "%soutbox:order", colon);
	CHECK(list_has(keys, n, want));
	astatus(a, "TYPE %s", want, t, sizeof(t));
	CHECK_STR(t, "zset");
	CHECK(ainteger(a, "ZCARD %s", want) == 2);
	snprintf(want, sizeof(want), "%scache:ck1", colon);
	CHECK(list_has(keys, n, want));
	astatus(a, "TYPE %s", want, t, sizeof(t));
	CHECK_STR(t, "hash");
	long long pttl = ainteger(a, "PTTL %s", want);
	CHECK(pttl > 0 && pttl <= 600000);
	snprintf(want, sizeof(want), "%scache:ck-forever", colon);
	CHECK(list_has(keys, n, want));
	CHECK(ainteger(a, "PTTL %s", want) == -1);
	snprintf(want, sizeof(want), "%scp:cp1", colon);
	CHECK(list_has(keys, n, want));
	snprintf(want, sizeof(want), "%sactive", colon);
	CHECK(list_has(keys, n, want));
	snprintf(want, sizeof(want), "%sschema", colon);
	CHECK(list_has(keys, n, want));
	if (test__failed_now) {
		fprintf(stderr, "    keys under %s:\n", colon);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "      %s\n", keys[i]);
	}
	/* clean up the namespace */
	for (size_t i = 0; i < n; i++) {
		redisReply *d = acmd(a, "DEL %s", keys[i]);
		if (d)
			freeReplyObject(d);
		free(keys[i]);
	}
	free(keys);
	redisFree(a);
	dura_record_free(r);
	dura_store_close(s);
}

/* ---- 5. no SQL ------------------------------------------------------------------ */

static void exec_sql_not_supported(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL"))
		return;
	dura_store *s = open_url(g_url);
	REQUIRE(s);
	dura_error_clear();
	CHECK_RC(dura_store_exec_sql(s, "SELECT 1", NULL, NULL), DURA_ENOTSUP);
	CHECK(*last_message() != '\0');
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(!(info.caps & DURA_CAP_SQL));
	dura_store_close(s);
}

/* ---- 6. durability as the server says -------------------------------------------- */

static void durability_reported(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	redisContext *a;
	dura_store *s = open_with_admin(&a);
	REQUIRE(s);
	dura_store_info info;
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(info.caps & DURA_CAP_DURABLE);
	CHECK(notes_have(&info, "appendfsync always"));

	CHECK(aok(a, "CONFIG SET appendfsync everysec") == 0);
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(!(info.caps & DURA_CAP_DURABLE));
	CHECK(notes_have(&info, "can lose"));
	dura_store *s2 = open_url(g_url); /* a fresh handle says the same */
	if (s2) {
		CHECK_RC(dura_store_info_get(s2, &info), 0);
		CHECK(!(info.caps & DURA_CAP_DURABLE));
		CHECK(notes_have(&info, "can lose"));
		dura_store_close(s2);
	} else {
		test__failed_now = 1;
	}
	CHECK(aok(a, "CONFIG SET appendfsync always") == 0);
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(info.caps & DURA_CAP_DURABLE);
	CHECK(notes_have(&info, "aof-load-truncated no"));

	/* a server that keeps half a block of a torn file is not durable */
	CHECK(aok(a, "CONFIG SET aof-load-truncated yes") == 0);
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(!(info.caps & DURA_CAP_DURABLE));
	CHECK(notes_have(&info, "aof-load-truncated yes"));
	CHECK(notes_have(&info, "redis-check-aof --fix"));
	CHECK(aok(a, "CONFIG SET aof-load-truncated no") == 0);
	CHECK_RC(dura_store_info_get(s, &info), 0);
	CHECK(info.caps & DURA_CAP_DURABLE);
	dura_store_close(s);

	/* an ACL user that may not run CONFIG */
	char user[64], pw[64];
	snprintf(user, sizeof(user), "noconfig%d", (int)getpid());
	snprintf(pw, sizeof(pw), "pw%dx", (int)getpid());
	redisReply *rr = acmd(a, "ACL SETUSER %s on >%s ~* &* +@all -config", user, pw);
	CHECK(rr && rr->type == REDIS_REPLY_STATUS);
	if (rr)
		freeReplyObject(rr);
	char url[600];
	snprintf(url, sizeof(url), "redis://%s:%s@127.0.0.1:%s/0", user, pw, g_port);
	s = open_url(url);
	if (s) {
		CHECK_RC(dura_store_info_get(s, &info), 0);
		CHECK(!(info.caps & DURA_CAP_DURABLE));
		CHECK(notes_have(&info, "durability unknown"));
		CHECK(notes_have(&info, "cannot"));
		CHECK(info.location && !strstr(info.location, pw));
		run_commit_read(s);
		dura_store_close(s);
	} else {
		test__failed_now = 1;
	}
	rr = acmd(a, "ACL DELUSER %s", user);
	if (rr)
		freeReplyObject(rr);
	redisFree(a);
}

/* ---- 7. SCRIPT FLUSH ------------------------------------------------------------- */

static void noscript_reload(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	redisContext *a;
	dura_store *s = open_with_admin(&a);
	REQUIRE(s);
	char wf[96];
	unique(wf, sizeof(wf), "rx-noscript");
	dura_record *r = NULL;
	CHECK_RC(create_run(s, wf, &r), 0);
	if (r) {
		dura_commit_result res;
		CHECK_RC(commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &res), 0);
		CHECK(aok(a, "SCRIPT FLUSH") == 0);
		CHECK_RC(commit(s, r->run_id, res.new_version, "b", "{\"n\":2}", 0, &res), 0);
		CHECK(res.step == 1);
		CHECK(aok(a, "SCRIPT FLUSH") == 0);
		dura_step *st = NULL;
		CHECK_RC(dura_store_load_latest(s, r->run_id, &st), 0);
		if (st) {
			CHECK(st->step == 1);
			dura_step_free(st);
		}
		CHECK(aok(a, "SCRIPT FLUSH") == 0);
		CHECK(steps_of(s, r->run_id) == 2);
		dura_record_free(r);
	}
	dura_store_close(s);
	redisFree(a);
}

/* ---- writers under load (8 and 9) --------------------------------------------------- */

typedef struct ack {
	char run_id[40];
	int64_t step, version;
	int seq;
} ack;

typedef struct writer {
	const char *url;
	int id;
	atomic_int *stop;
	atomic_long acked; /* acknowledged commits so far (progress, read by main) */
	ack *acks;
	size_t n, cap;
	long errors;             /* failed calls, retried */
	long conflict_adopted;   /* ECONFLICT on a retry whose commit had gone in */
	long create_retries;
	long applied_after_error; /* a commit reported failed (not EIO) that had gone in */
	int fatal;
	char fatal_msg[400];
	char first_errors[3][300];
	int nfirst;
} writer;

static void w_error(writer *w, const char *what)
{
	w->errors++;
	if (w->nfirst < 3)
		snprintf(w->first_errors[w->nfirst++], sizeof(w->first_errors[0]), "%s: %d %s", what,
		         dura_error_last() ? dura_error_last()->code : 0, last_message());
}

static void w_fatal(writer *w, const char *fmt, const char *run, long long a, long long b)
{
	if (!w->fatal) {
		snprintf(w->fatal_msg, sizeof(w->fatal_msg), fmt, run, a, b);
		w->fatal = 1;
	}
}

static void w_ack(writer *w, const char *run, int64_t step, int64_t version, int seq)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->acks = realloc(w->acks, w->cap * sizeof(*w->acks));
	}
	ack *a = &w->acks[w->n++];
	snprintf(a->run_id, sizeof(a->run_id), "%s", run);
	a->step = step;
	a->version = version;
	a->seq = seq;
	atomic_fetch_add(&w->acked, 1);
}

#define STEPS_PER_RUN 6
#define MAX_RETRIES 600 /* 20 ms apart: 12 s */

static void *writer_main(void *arg)
{
	writer *w = arg;
	dura_store *s = NULL;
	for (int i = 0; i < MAX_RETRIES && dura_store_open(&s, w->url, NULL) != 0; i++) {
		w_error(w, "open");
		sleep_ms(20);
	}
	if (!s) {
		w_fatal(w, "cannot open %s%lld%lld", "the store", 0, 0);
		return NULL;
	}
	char wf[64];
	snprintf(wf, sizeof(wf), "rx-load-%d-%d", (int)getpid(), w->id);
	int seq = 0;
	while (!atomic_load(w->stop) && !w->fatal) {
		dura_record *r = NULL;
		int tries = 0;
		while (create_run(s, wf, &r) != 0) {
			w_error(w, "create_run");
			w->create_retries++;
			r = NULL;
			if (++tries > MAX_RETRIES || atomic_load(w->stop))
				break;
			sleep_ms(20);
		}
		if (!r)
			break;
		int64_t ver = r->version;
		for (int64_t step = 0; step < STEPS_PER_RUN && !w->fatal; step++) {
			char state[96];
			int my = seq++;
			snprintf(state, sizeof(state), "{\"w\":%d,\"seq\":%d}", w->id, my);
			int had_error = 0, done = 0, last_code = 0;
			for (int t = 0; t < MAX_RETRIES && !done; t++) {
				dura_commit_result res;
				int rc = commit(s, r->run_id, ver, "n", state, 0, &res);
				if (rc == 0) {
					if (res.step != step)
						w_fatal(w, "run %s: commit wrote step %lld, wanted %lld", r->run_id, (long long)res.step,
						        (long long)step);
					ver = res.new_version;
					w_ack(w, r->run_id, res.step, res.new_version, my);
					done = 1;
				} else if (rc == DURA_ECONFLICT && had_error) {
					/* did our commit go in before the connection broke? */
					dura_step *st = NULL;
					dura_record *cur = NULL;
					int ours = dura_store_get_step(s, r->run_id, step, &st) == 0 && strcmp(st->state, state) == 0;
					if (ours && dura_store_get_run(s, r->run_id, &cur) == 0 && cur->version == ver + 1) {
						w->conflict_adopted++;
						if (last_code != DURA_EIO && last_code != DURA_ETIMEOUT) {
							/* not "unsure": the store said the commit failed */
							if (w->applied_after_error++ < 3)
								fprintf(stderr, "    run %s: a commit the store reported failed (code %d, not EIO) "
								        "had gone in (step %lld)\n", r->run_id, last_code, (long long)step);
						}
						ver = cur->version;
						w_ack(w, r->run_id, step, ver, my);
						done = 1;
					} else {
						w_fatal(w, "run %s: ECONFLICT on a retry and the step is not ours (step %lld, version %lld)",
						        r->run_id, (long long)step, (long long)ver);
					}
					dura_step_free(st);
					dura_record_free(cur);
					if (!done)
						break;
				} else if (rc == DURA_ECONFLICT) {
					w_fatal(w, "run %s: ECONFLICT with no error before (step %lld, version %lld)", r->run_id,
					        (long long)step, (long long)ver);
					break;
				} else {
					had_error = 1;
					last_code = rc;
					w_error(w, "commit");
					sleep_ms(20);
				}
			}
			if (!done)
				break; /* gave up on the run (its last commit's fate unknown) */
			if (atomic_load(w->stop))
				break;
		}
		dura_record_free(r);
	}
	dura_store_close(s);
	return NULL;
}

/* Every acknowledged commit is there, the runs' versions are at least the
 * acknowledged ones, and each run's history is dense with no step twice. */
static void verify_acks(const char *url, writer *ws, int nw)
{
	dura_store *s = open_url(url);
	REQUIRE(s);
	long missing = 0, wrong = 0, runs = 0;
	for (int i = 0; i < nw; i++) {
		writer *w = &ws[i];
		for (size_t j = 0; j < w->n; j++) {
			ack *a = &w->acks[j];
			dura_step *st = NULL;
			char state[96];
			snprintf(state, sizeof(state), "{\"w\":%d,\"seq\":%d}", w->id, a->seq);
			if (dura_store_get_step(s, a->run_id, a->step, &st) != 0) {
				if (missing++ < 5)
					fprintf(stderr, "    acknowledged step %lld of run %s is missing: %s\n", (long long)a->step,
					        a->run_id, last_message());
			} else if (strcmp(st->state, state) != 0) {
				if (wrong++ < 5)
					fprintf(stderr, "    step %lld of run %s is %s, acknowledged %s\n", (long long)a->step, a->run_id,
					        st->state, state);
			}
			dura_step_free(st);
			/* the last ack of a run: the version and the history */
			if (j + 1 == w->n || strcmp(w->acks[j + 1].run_id, a->run_id) != 0) {
				runs++;
				dura_record *r = NULL;
				if (dura_store_get_run(s, a->run_id, &r) != 0) {
					fprintf(stderr, "    run %s is gone: %s\n", a->run_id, last_message());
					test__failed_now = 1;
					continue;
				}
				CHECK(r->version >= a->version);
				CHECK(r->step_no >= a->step + 1);
				dura_step_list l;
				memset(&l, 0, sizeof(l));
				CHECK_RC(dura_store_history(s, a->run_id, 0, 0, &l), 0);
				CHECK((int64_t)l.count == r->step_no);
				for (size_t k = 0; k < l.count; k++) {
					if (l.items[k].step != (int64_t)k) {
						fprintf(stderr, "    run %s: history item %zu is step %lld\n", a->run_id, k,
						        (long long)l.items[k].step);
						test__failed_now = 1;
					}
					for (size_t m = 0; m < k; m++)
						if (strcmp(l.items[m].state, l.items[k].state) == 0) {
							fprintf(stderr, "    run %s: steps %zu and %zu are the same commit %s\n", a->run_id, m, k,
							        l.items[k].state);
							test__failed_now = 1;
						}
				}
				dura_step_list_free(&l);
				dura_record_free(r);
			}
		}
	}
	CHECK(missing == 0);
	CHECK(wrong == 0);
	fprintf(stderr, "    verified: %ld runs\n", runs);
	dura_store_close(s);
}

static void writers_report(writer *ws, int nw)
{
	long acked = 0, errors = 0, adopted = 0, applied = 0;
	for (int i = 0; i < nw; i++) {
		acked += (long)ws[i].n;
		errors += ws[i].errors;
		adopted += ws[i].conflict_adopted;
		applied += ws[i].applied_after_error;
		if (ws[i].fatal) {
			fprintf(stderr, "    writer %d: %s\n", i, ws[i].fatal_msg);
			test__failed_now = 1;
		}
		for (int k = 0; k < ws[i].nfirst; k++)
			fprintf(stderr, "    writer %d error: %s\n", i, ws[i].first_errors[k]);
	}
	fprintf(stderr,
	        "    %ld acknowledged commits, %ld errors retried, %ld ECONFLICTs on a retry whose commit had gone in "
	        "(resolved by the test, not the store)\n",
	        acked, errors, adopted);
	CHECK(applied == 0);
	if (applied)
		fprintf(stderr, "    %ld of them came after the store had reported the commit FAILED (not EIO): the "
		        "commit went in all the same\n", applied);
}

/* Every run of the writers' workflows (all of them, acknowledged or not):
 * dense history, in its due index (running, not leased), and the outbox
 * holds one event per step (every commit wrote both, atomically). a: an
 * admin connection to the node with the namespace. */
static void verify_namespace(const char *url, const char *prefix, redisContext *a, writer *ws, int nw)
{
	dura_store *s = open_url(url);
	REQUIRE(s);
	long long steps = 0, runs = 0, not_dense = 0, not_indexed = 0;
	for (int i = 0; i < nw; i++) {
		char wf[64];
		snprintf(wf, sizeof(wf), "rx-load-%d-%d", (int)getpid(), ws[i].id);
		dura_run_filter f = DURA_RUN_FILTER_INIT;
		f.workflow_name = wf;
		f.limit = 100;
		dura_record_list l;
		memset(&l, 0, sizeof(l));
		char *cursor = NULL;
		for (;;) {
			f.cursor = cursor;
			int rc = dura_store_list_runs(s, &f, &l);
			free(cursor);
			cursor = NULL;
			if (rc != 0) {
				fprintf(stderr, "    list_runs: %s\n", last_message());
				test__failed_now = 1;
				break;
			}
			for (size_t j = 0; j < l.count; j++) {
				dura_record *r = &l.items[j];
				runs++;
				steps += r->step_no;
				long n = steps_of(s, r->run_id);
				if (n != r->step_no && not_dense++ < 5)
					fprintf(stderr, "    run %s: step_no %lld, history %ld (-2: a gap)\n", r->run_id,
					        (long long)r->step_no, n);
				char key[200];
				snprintf(key, sizeof(key), "{%s}:due:%s", prefix, wf);
				redisReply *z = redisCommand(a, "ZSCORE %s %s", key, r->run_id);
				if ((!z || z->type != REDIS_REPLY_STRING) && not_indexed++ < 5)
					fprintf(stderr, "    run %s (running, not leased) is not in %s\n", r->run_id, key);
				if (z)
					freeReplyObject(z);
			}
			if (l.next_cursor)
				cursor = strdup(l.next_cursor);
			dura_record_list_free(&l);
			if (!cursor)
				break;
		}
	}
	char key[100];
	snprintf(key, sizeof(key), "{%s}:outbox", prefix);
	long long xlen = ainteger(a, "XLEN %s", key);
	fprintf(stderr, "    namespace: %lld runs, %lld steps, %lld outbox events\n", runs, steps, xlen);
	CHECK(not_dense == 0);
	CHECK(not_indexed == 0);
	CHECK(xlen == steps);
	dura_store_close(s);
}

/* Drop every key of the namespace on node a (by SCAN). */
static void drop_namespace(redisContext *a, const char *prefix)
{
	char pat[64], cursor[32] = "0";
	snprintf(pat, sizeof(pat), "{%s}:*", prefix);
	do {
		redisReply *sr = redisCommand(a, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
		if (!sr || sr->type != REDIS_REPLY_ARRAY || sr->elements != 2) {
			if (sr)
				freeReplyObject(sr);
			return;
		}
		snprintf(cursor, sizeof(cursor), "%s", sr->element[0]->str);
		for (size_t i = 0; i < sr->element[1]->elements; i++) {
			redisReply *d = redisCommand(a, "DEL %b", sr->element[1]->element[i]->str, sr->element[1]->element[i]->len);
			if (d)
				freeReplyObject(d);
		}
		freeReplyObject(sr);
	} while (strcmp(cursor, "0") != 0);
}

/* Wait (no deadline in pass/fail, only a generous bound) until the writers
 * acknowledged `more` commits beyond now. */
static int wait_progress(writer *ws, int nw, long more)
{
	long start = 0;
	for (int i = 0; i < nw; i++)
		start += atomic_load(&ws[i].acked);
	for (int t = 0; t < 3000; t++) {
		long now = 0;
		int fatal = 0;
		for (int i = 0; i < nw; i++) {
			now += atomic_load(&ws[i].acked);
			fatal |= ws[i].fatal;
		}
		if (now - start >= more)
			return 1;
		if (fatal)
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "    the writers made no progress\n");
	return 0;
}

/* The server's run_id (new with every process) into out, "" if unknown. */
static void server_run_id(redisContext *a, char *out, size_t size)
{
	out[0] = '\0';
	redisReply *r = acmd(a, "INFO server");
	const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "run_id:") : NULL;
	if (p)
		snprintf(out, size, "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
	if (r)
		freeReplyObject(r);
}

/* ---- 8. SIGKILL under load -------------------------------------------------------- */

static void kill9_under_load(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_servers_dir, "DURA_TEST_SERVERS_DIR"))
		return;
	if (!g_servers_script) {
		fprintf(stderr, "    no tests/servers path: pass it as argument 1\n");
		test__failed_now = 1;
		return;
	}
	redisContext *a = admin_single();
	REQUIRE(a);
	char prefix[40], url[1024], run_id0[64], run_id[64];
	fresh_prefix(prefix, sizeof(prefix), "rxkill");
	url_prefixed(url, sizeof(url), g_url, prefix);
	enum { NW = 4 };
	atomic_int stop = 0;
	writer ws[NW];
	pthread_t th[NW];
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < NW; i++) {
		ws[i].url = url;
		ws[i].id = i;
		ws[i].stop = &stop;
		if (pthread_create(&th[i], NULL, writer_main, &ws[i]) != 0) {
			atomic_store(&stop, 1);
			for (int j = 0; j < i; j++)
				pthread_join(th[j], NULL);
			redisFree(a);
			REQUIRE(0);
		}
	}
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' --kill redis >/dev/null 2>&1", g_servers_script, g_servers_dir);
	server_run_id(a, run_id0, sizeof(run_id0));
	redisFree(a);
	a = NULL;
	for (int k = 0; k < 2; k++) {
		CHECK(wait_progress(ws, NW, 100));
		int rc = system(cmd);
		CHECK(rc == 0);
		if (rc != 0)
			fprintf(stderr, "    %s: exit %d\n", cmd, rc);
		/* it really was a new server process */
		a = admin_single();
		CHECK(a != NULL);
		if (a) {
			server_run_id(a, run_id, sizeof(run_id));
			if (!run_id[0] || strcmp(run_id, run_id0) == 0) {
				fprintf(stderr, "    the server's run_id did not change (%s): no restart?\n", run_id);
				test__failed_now = 1;
			}
			snprintf(run_id0, sizeof(run_id0), "%s", run_id);
			redisFree(a);
			a = NULL;
		}
	}
	CHECK(wait_progress(ws, NW, 100));
	atomic_store(&stop, 1);
	for (int i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	writers_report(ws, NW);
	verify_acks(url, ws, NW);
	a = admin_single();
	if (a) {
		verify_namespace(url, prefix, a, ws, NW);
		drop_namespace(a, prefix);
		redisFree(a);
	} else {
		test__failed_now = 1;
	}
	for (int i = 0; i < NW; i++)
		free(ws[i].acks);
}

/* ---- 8b. a torn append-only file ------------------------------------------------ */

/* SIGKILL the single server (its pid in DIR/redis/redis.pid) and wait
 * until its port refuses connections. 0 when it is gone. */
static int kill_single_server(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/redis/redis.pid", g_servers_dir);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		if (f)
			fclose(f);
		fprintf(stderr, "    no pid in %s\n", path);
		return -1;
	}
	fclose(f);
	if (kill((pid_t)pid, SIGKILL) != 0)
		return -1;
	for (int i = 0; i < 500; i++) {
		redisContext *c = redisConnect("127.0.0.1", atoi(g_port));
		int up = c && !c->err;
		if (c)
			redisFree(c);
		if (!up)
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "    the server on port %s still answers after SIGKILL\n", g_port);
	return -1;
}

/* The path of the server's last incremental append-only file (the last
 * "type i" line of its manifest) into out; 0 when found. */
static int last_incr_file(char *out, size_t size)
{
	char dir[1024], path[1100], line[600], name[512] = "";
	snprintf(dir, sizeof(dir), "%s/redis/data/appendonlydir", g_servers_dir);
	snprintf(path, sizeof(path), "%s/appendonly.aof.manifest", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char n[512];
		if (strstr(line, " type i") && sscanf(line, "file %511s", n) == 1)
			snprintf(name, sizeof(name), "%s", n);
	}
	fclose(f);
	if (!name[0])
		return -1;
	snprintf(out, size, "%s/%s", dir, name);
	return 0;
}

/* The offset just past the RESP command starting at buf[at] (an array
 * of bulk strings), or -1. */
static long resp_command_end(const char *buf, long len, long at)
{
	if (at >= len || buf[at] != '*')
		return -1;
	long n = strtol(buf + at + 1, NULL, 10);
	const char *p = memchr(buf + at, '\n', (size_t)(len - at));
	if (!p)
		return -1;
	long o = (long)(p - buf) + 1;
	for (long i = 0; i < n; i++) {
		if (o >= len || buf[o] != '$')
			return -1;
		long l = strtol(buf + o + 1, NULL, 10);
		p = memchr(buf + o, '\n', (size_t)(len - o));
		if (!p)
			return -1;
		o = (long)(p - buf) + 1 + l + 2;
	}
	return o <= len ? o : -1;
}

/*
 * The crash the server's append-only file must survive: killed in the
 * middle of writing a commit's MULTI/EXEC block, so that the file ends
 * with the block's MULTI and its first command whole and the second cut.
 * The commit was never acknowledged (the fsync did not finish), so the
 * worker sends it again once the server is back; after one more restart
 * the history holds that step once. A server that cuts such a file after
 * the block's last whole command (aof-load-truncated yes, Redis 7.0)
 * replays the half block at the second restart: the step twice. The
 * servers run with aof-load-truncated no, refuse the torn file, and
 * tests/servers repairs it with redis-check-aof --fix (docs/stores.md).
 */
static void torn_aof_tail(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_servers_dir, "DURA_TEST_SERVERS_DIR") ||
	    !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	if (!g_servers_script) {
		fprintf(stderr, "    no tests/servers path: pass it as argument 1\n");
		test__failed_now = 1;
		return;
	}
	char prefix[40], url[1024], wf[96], file[1200], cmd[2048];
	fresh_prefix(prefix, sizeof(prefix), "rxtorn");
	url_prefixed(url, sizeof(url), g_url, prefix);
	unique(wf, sizeof(wf), "rx-torn");
	dura_store *s = open_url(url);
	REQUIRE(s);
	dura_record *r = NULL;
	dura_commit_result a, b;
	const char *state_b = "{\"torn\":\"the second commit\"}";
	int ok = create_run(s, wf, &r) == 0 && commit(s, r->run_id, r->version, "a", "{\"n\":1}", 0, &a) == 0 &&
	         commit(s, r->run_id, a.new_version, "b", state_b, 0, &b) == 0;
	CHECK(ok);
	if (!ok) {
		dura_record_free(r);
		dura_store_close(s);
		return;
	}

	/* crash, and cut the last block (the second commit's) inside */
	CHECK(kill_single_server() == 0);
	char *buf = NULL;
	long len = 0, cut = -1;
	FILE *f = last_incr_file(file, sizeof(file)) == 0 ? fopen(file, "rb") : NULL;
	CHECK(f != NULL);
	if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && (buf = malloc((size_t)len)) &&
	    fseek(f, 0, SEEK_SET) == 0 && fread(buf, 1, (size_t)len, f) == (size_t)len) {
		static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
		long at = -1;
		for (long i = len - (long)strlen(multi); i >= 0; i--)
			if (memcmp(buf + i, multi, strlen(multi)) == 0) {
				at = i;
				break;
			}
		/* it is the second commit's block, and the first write in it is whole */
		long first_end = at >= 0 ? resp_command_end(buf, len, at + (long)strlen(multi)) : -1;
		CHECK(at >= 0 && memmem(buf + at, (size_t)(len - at), state_b, strlen(state_b)) != NULL);
		CHECK(first_end > 0 && first_end + 8 < len);
		if (at >= 0 && first_end > 0 && first_end + 8 < len)
			cut = first_end + 8;
	}
	if (f)
		fclose(f);
	free(buf);
	CHECK(cut > 0 && truncate(file, cut) == 0);

	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' redis >/dev/null 2>&1", g_servers_script, g_servers_dir);
	CHECK(system(cmd) == 0);
	dura_record *cur = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &cur), 0);
	if (cur) {
		/* the torn commit is not there: the worker sends it again */
		CHECK(cur->version == a.new_version);
		CHECK(cur->step_no == 1);
		dura_record_free(cur);
		cur = NULL;
	}
	CHECK(steps_of(s, r->run_id) == 1);
	CHECK_RC(commit(s, r->run_id, a.new_version, "b", state_b, 0, &b), 0);
	CHECK(b.step == 1);

	/* the restart that replays a half block kept by a cut after it */
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' --kill redis >/dev/null 2>&1", g_servers_script, g_servers_dir);
	CHECK(system(cmd) == 0);
	CHECK_RC(dura_store_get_run(s, r->run_id, &cur), 0);
	if (cur) {
		CHECK(cur->version == b.new_version);
		CHECK(cur->step_no == 2);
		dura_record_free(cur);
	}
	long n = steps_of(s, r->run_id);
	if (n != 2)
		fprintf(stderr, "    the history holds %ld steps, wanted 2 (a replayed half block?)\n", n);
	CHECK(n == 2);
	dura_step *st = NULL;
	CHECK_RC(dura_store_get_step(s, r->run_id, 1, &st), 0);
	CHECK(st && strcmp(st->state, state_b) == 0);
	dura_step_free(st);
	dura_record_free(r);
	dura_store_close(s);
	redisContext *adm = admin_single();
	CHECK(adm != NULL);
	if (adm) {
		char key[100];
		snprintf(key, sizeof(key), "{%s}:outbox", prefix);
		CHECK(ainteger(adm, "XLEN %s", key) == 2); /* one event per step */
		drop_namespace(adm, prefix);
		redisFree(adm);
	}
}

/* ---- 9. resharding the store's slot ------------------------------------------------ */

typedef struct cnode {
	int port;
	char id[64];
	redisContext *c;
} cnode;

/* The port of the master that serves slot, from CLUSTER SLOTS on c; -1 if none. */
static int slot_owner(redisContext *c, long long slot)
{
	redisReply *r = acmd(c, "CLUSTER SLOTS");
	int port = -1;
	if (r && r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *e = r->element[i];
			if (e->elements >= 3 && e->element[0]->integer <= slot && slot <= e->element[1]->integer)
				port = (int)e->element[2]->element[1]->integer;
		}
	if (r)
		freeReplyObject(r);
	return port;
}

/* Move slot from src to dst (the third node told too); counts MIGRATE
 * errors. 0, or -1 when an admin command failed. */
static int move_slot(long long slot, cnode *src, cnode *dst, cnode *third, long *migrated, long *busykey)
{
	char sl[24];
	snprintf(sl, sizeof(sl), "%lld", slot);
	if (aok(dst->c, "CLUSTER SETSLOT %s IMPORTING %s", sl, src->id) != 0 ||
	    aok(src->c, "CLUSTER SETSLOT %s MIGRATING %s", sl, dst->id) != 0)
		return -1;
	char dport[16];
	snprintf(dport, sizeof(dport), "%d", dst->port);
	int rc = 0;
	for (int round = 0; round < 10000; round++) {
		redisReply *k = acmd(src->c, "CLUSTER GETKEYSINSLOT %s 100", sl);
		if (!k || k->type != REDIS_REPLY_ARRAY) {
			if (k)
				freeReplyObject(k);
			rc = -1;
			break;
		}
		size_t n = k->elements;
		if (n == 0) {
			freeReplyObject(k);
			break;
		}
		const char **argv = malloc((n + 8) * sizeof(*argv));
		size_t *lens = malloc((n + 8) * sizeof(*lens));
		size_t a = 0;
		const char *head[] = {"MIGRATE", "127.0.0.1", dport, "", "0", "5000", "KEYS"};
		for (size_t i = 0; i < 7; i++)
			argv[a++] = head[i];
		for (size_t i = 0; i < n; i++)
			argv[a++] = k->element[i]->str;
		for (size_t i = 0; i < a; i++)
			lens[i] = i >= 7 ? k->element[i - 7]->len : strlen(argv[i]);
		redisReply *m = redisCommandArgv(src->c, (int)a, argv, lens);
		if (m && m->type == REDIS_REPLY_ERROR && strstr(m->str, "BUSYKEY")) {
			/* a key of the slot exists on both nodes: the store wrote it on
			 * the target while its twin was still on the source */
			(*busykey)++;
			fprintf(stderr, "    MIGRATE: %s (keys:", m->str);
			for (size_t i = 0; i < n; i++) {
				redisReply *as = redisCommand(dst->c, "ASKING"); /* the slot is importing there */
				if (as)
					freeReplyObject(as);
				redisReply *ex = redisCommand(dst->c, "EXISTS %b", k->element[i]->str, k->element[i]->len);
				redisReply *ex2 = redisCommand(src->c, "EXISTS %b", k->element[i]->str, k->element[i]->len);
				if (ex && ex->integer == 1 && ex2 && ex2->integer == 1)
					fprintf(stderr, " %s", k->element[i]->str);
				if (ex2)
					freeReplyObject(ex2);
				if (ex)
					freeReplyObject(ex);
			}
			fprintf(stderr, " on both); moving with REPLACE to leave the cluster whole\n");
			freeReplyObject(m);
			argv[a] = "REPLACE"; /* REPLACE goes before KEYS */
			const char **av2 = malloc((a + 1) * sizeof(*av2));
			size_t *l2 = malloc((a + 1) * sizeof(*l2));
			for (size_t i = 0; i < 6; i++)
				av2[i] = argv[i], l2[i] = lens[i];
			av2[6] = "REPLACE", l2[6] = 7;
			for (size_t i = 6; i < a; i++)
				av2[i + 1] = argv[i], l2[i + 1] = lens[i];
			m = redisCommandArgv(src->c, (int)a + 1, av2, l2);
			free(av2);
			free(l2);
		}
		if (!m || m->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "    MIGRATE failed: %s\n", m ? m->str : src->c->errstr);
			rc = -1;
		} else {
			*migrated += (long)n;
		}
		if (m)
			freeReplyObject(m);
		free(argv);
		free(lens);
		freeReplyObject(k);
		if (rc)
			break;
	}
	/* assign it whatever happened, so the cluster is whole again */
	if (aok(dst->c, "CLUSTER SETSLOT %s NODE %s", sl, dst->id) != 0)
		rc = -1;
	if (aok(src->c, "CLUSTER SETSLOT %s NODE %s", sl, dst->id) != 0)
		rc = -1;
	if (aok(third->c, "CLUSTER SETSLOT %s NODE %s", sl, dst->id) != 0)
		rc = -1;
	return rc;
}

/* Keys of the slot on a node. */
static long long keys_in_slot(redisContext *c, long long slot)
{
	char sl[24];
	snprintf(sl, sizeof(sl), "%lld", slot);
	return ainteger(c, "CLUSTER COUNTKEYSINSLOT %s", sl);
}

static void cluster_reshard_while_committing(void)
{
	if (!need_env(g_cluster_url, "DURA_TEST_REDIS_CLUSTER_URL") ||
	    !need_env(g_cluster_ports, "DURA_TEST_REDIS_CLUSTER_PORTS"))
		return;
	cnode nodes[3];
	memset(nodes, 0, sizeof(nodes));
	int nn = sscanf(g_cluster_ports, "%d %d %d", &nodes[0].port, &nodes[1].port, &nodes[2].port);
	REQUIRE(nn == 3);
	int ok = 1;
	for (int i = 0; i < 3 && ok; i++) {
		nodes[i].c = admin_port(nodes[i].port);
		ok = nodes[i].c != NULL;
		if (ok)
			astatus(nodes[i].c, "CLUSTER MYID%s", "", nodes[i].id, sizeof(nodes[i].id));
		ok = ok && nodes[i].id[0];
	}
	char prefix[40], url[1024], tag[48];
	fresh_prefix(prefix, sizeof(prefix), "rxclu");
	snprintf(tag, sizeof(tag), "{%s}", prefix);
	long long slot = ok ? ainteger(nodes[0].c, "CLUSTER KEYSLOT %s", tag) : -1;
	int owner = ok ? slot_owner(nodes[0].c, slot) : -1;
	int si = -1;
	for (int i = 0; i < 3; i++)
		if (nodes[i].port == owner)
			si = i;
	if (!ok || slot < 0 || si < 0) {
		fprintf(stderr, "    cannot learn the cluster (slot %lld, owner %d)\n", slot, owner);
		for (int i = 0; i < 3; i++)
			if (nodes[i].c)
				redisFree(nodes[i].c);
		REQUIRE(0);
	}
	int di = (si + 1) % 3, ti = (si + 2) % 3;
	fprintf(stderr, "    prefix %s: slot %lld on %d, moving to %d and back\n", prefix, slot, nodes[si].port,
	        nodes[di].port);
	url_prefixed(url, sizeof(url), g_cluster_url, prefix);

	enum { NW = 2 };
	atomic_int stop = 0;
	writer ws[NW];
	pthread_t th[NW];
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < NW; i++) {
		ws[i].url = url;
		ws[i].id = i;
		ws[i].stop = &stop;
		if (pthread_create(&th[i], NULL, writer_main, &ws[i]) != 0) {
			atomic_store(&stop, 1);
			for (int j = 0; j < i; j++)
				pthread_join(th[j], NULL);
			REQUIRE(0);
		}
	}
	long migrated = 0, busy = 0;
	CHECK(wait_progress(ws, NW, 60));
	fprintf(stderr, "    moving slot %lld from %d to %d\n", slot, nodes[si].port, nodes[di].port);
	CHECK(move_slot(slot, &nodes[si], &nodes[di], &nodes[ti], &migrated, &busy) == 0);
	int mid_owner = slot_owner(nodes[ti].c, slot);
	CHECK(mid_owner == nodes[di].port);
	long long on_src_mid = keys_in_slot(nodes[si].c, slot), on_dst_mid = keys_in_slot(nodes[di].c, slot);
	CHECK(wait_progress(ws, NW, 60));
	fprintf(stderr, "    moving slot %lld back from %d to %d\n", slot, nodes[di].port, nodes[si].port);
	CHECK(move_slot(slot, &nodes[di], &nodes[si], &nodes[ti], &migrated, &busy) == 0);
	CHECK(wait_progress(ws, NW, 60));
	atomic_store(&stop, 1);
	for (int i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	writers_report(ws, NW);
	fprintf(stderr, "    %ld keys migrated; after the first move %lld keys on the source, %lld on the target\n",
	        migrated, on_src_mid, on_dst_mid);
	CHECK(busy == 0);
	CHECK(on_src_mid == 0);
	CHECK(on_dst_mid > 0);
	int final_owner = slot_owner(nodes[di].c, slot);
	CHECK(final_owner == nodes[si].port);
	CHECK(keys_in_slot(nodes[di].c, slot) == 0);
	CHECK(keys_in_slot(nodes[si].c, slot) > 0);
	/* the keys are back on the source: the run of the first ack, by name */
	if (ws[0].n > 0) {
		char k[200];
		snprintf(k, sizeof(k), "%s:run:%s", tag, ws[0].acks[0].run_id);
		redisReply *ex = acmd(nodes[si].c, "EXISTS %s", k);
		CHECK(ex && ex->type == REDIS_REPLY_INTEGER && ex->integer == 1);
		if (ex)
			freeReplyObject(ex);
	}
	verify_acks(url, ws, NW);
	verify_namespace(url, prefix, nodes[si].c, ws, NW);
	drop_namespace(nodes[si].c, prefix);
	for (int i = 0; i < NW; i++)
		free(ws[i].acks);
	for (int i = 0; i < 3; i++)
		redisFree(nodes[i].c);
}

/* ---- schema 3: a namespace of schema 2 migrated ----------------------------------------- */

/* A run of wf with foreign id fid (NULL: none), two steps, ended in st; its id into id. */
static int ended_run(dura_store *s, const char *wf, const char *fid, int st, char *id, size_t size)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = fid;
	req.state = "{}";
	dura_record *r = NULL;
	int rc = dura_store_create_run(s, &req, &r);
	if (rc)
		return rc;
	snprintf(id, size, "%s", r->run_id);
	int64_t v = r->version;
	dura_record_free(r);
	dura_commit_result res;
	if ((rc = commit(s, id, v, "a", "{\"n\":1}", 0, &res)) != 0)
		return rc;
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = id;
	c.expect_version = res.new_version;
	c.node_id = "b";
	c.state = "{\"n\":2}";
	c.status = "";
	c.run_state = st;
	return dura_store_commit(s, &c, &res);
}

/* The count of wf's runs at version ver in state st (0 when not listed), -1 on error. */
static long long count_of(dura_store *s, const char *wf, const char *ver, int st)
{
	dura_run_count_list l;
	if (dura_store_run_counts(s, wf, &l) != 0) {
		fprintf(stderr, "    run_counts: %s\n", last_message());
		return -1;
	}
	long long n = 0;
	for (size_t i = 0; i < l.count; i++)
		if (strcmp(l.items[i].workflow_name, wf) == 0 && strcmp(l.items[i].workflow_version, ver) == 0 &&
		    l.items[i].run_state == st)
			n = l.items[i].count;
	dura_run_count_list_free(&l);
	return n;
}

static int64_t prune_of(dura_store *s, const char *wf, int st, int whole)
{
	dura_prune req = DURA_PRUNE_INIT;
	req.workflow = wf;
	req.run_state = st;
	req.ended_before = dura_now_ms() + 1000;
	req.whole = whole;
	req.limit = 100;
	int64_t n = -1;
	if (dura_store_prune(s, &req, &n) != 0)
		fprintf(stderr, "    prune: %s\n", last_message());
	return n;
}

/*
 * The keys of schema 2 (no workflow_version fields, none of the counts,
 * end-state or foreign-id indexes) under schema mark 2: an open without
 * auto_migrate is refused, an open migrates, the counts and prunes see
 * every old run once, a second migration counts nothing twice, and a run
 * the migration did not see (written by an older library meanwhile) joins
 * the counts with its next commit. Pruning the latest run of a foreign id
 * leaves the one before it as the latest.
 */
static void schema3_migration(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	char prefix[40], url[1024], wf[96];
	fresh_prefix(prefix, sizeof(prefix), "rxmig");
	url_prefixed(url, sizeof(url), g_url, prefix);
	unique(wf, sizeof(wf), "rx-mig");
	dura_store *s = open_url(url);
	REQUIRE(s);
	char live[64], f1_old[64], f1_new[64], done2[64], failed[64];
	dura_record *r = NULL;
	int rc = create_run(s, wf, &r);
	if (rc == 0) {
		snprintf(live, sizeof(live), "%s", r->run_id);
		dura_record_free(r);
	}
	if (rc == 0)
		rc = ended_run(s, wf, "f1", DURA_RUN_FAILED, f1_old, sizeof(f1_old));
	if (rc == 0)
		rc = ended_run(s, wf, "f1", DURA_RUN_COMPLETED, f1_new, sizeof(f1_new));
	if (rc == 0)
		rc = ended_run(s, wf, NULL, DURA_RUN_COMPLETED, done2, sizeof(done2));
	if (rc == 0)
		rc = ended_run(s, wf, NULL, DURA_RUN_FAILED, failed, sizeof(failed));
	dura_store_close(s);
	if (rc)
		fprintf(stderr, "    setup: %s\n", last_message());
	REQUIRE_RC(rc, 0);

	/* back to the keys of schema 2 */
	redisContext *a = admin_single();
	REQUIRE(a);
	char k[400], colon[48];
	snprintf(colon, sizeof(colon), "{%s}:", prefix);
	const char *ids[] = {live, f1_old, f1_new, done2, failed};
	for (size_t i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "%srun:%s", colon, ids[i]);
		CHECK(aok(a, "HDEL %s workflow_version", k) == 0);
	}
	CHECK(aok(a, "DEL %scounts:%s %sended:3 %sended:3:%s %sended:7 %sended:7:%s %sslotruns", colon, wf, colon, colon,
	          wf, colon, colon, wf, colon) == 0);
	CHECK(aok(a, "HSET %sschema version 2", colon) == 0);

	CHECK(refuses_old_schema(url));

	s = open_url(url);
	if (!s) {
		drop_namespace(a, prefix);
		redisFree(a);
		REQUIRE(0);
	}
	char v[16];
	snprintf(k, sizeof(k), "%sschema", colon);
	redisReply *sv = acmd(a, "HGET %s version", k);
	snprintf(v, sizeof(v), "%s", sv && sv->type == REDIS_REPLY_STRING ? sv->str : "?");
	if (sv)
		freeReplyObject(sv);
	CHECK_STR(v, "5");
	for (size_t i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "%srun:%s", colon, ids[i]);
		CHECK(ainteger(a, "HEXISTS %s workflow_version", k) == 1);
	}
	CHECK(count_of(s, wf, "", DURA_RUN_RUNNING) == 1);
	CHECK(count_of(s, wf, "", DURA_RUN_COMPLETED) == 2);
	CHECK(count_of(s, wf, "", DURA_RUN_FAILED) == 2);
	int from = -1, to = -1;
	CHECK_RC(dura_store_migrate(s, &from, &to), 0);
	CHECK(from == 5 && to == 5);
	CHECK(count_of(s, wf, "", DURA_RUN_COMPLETED) == 2);

	/* the newer run of foreign id f1 pruned: the older one is the latest again */
	dura_prune req = DURA_PRUNE_INIT;
	req.workflow = wf;
	req.run_state = DURA_RUN_COMPLETED;
	req.ended_before = dura_now_ms() + 1000;
	req.whole = 1;
	req.limit = 1;
	int64_t n = -1;
	CHECK_RC(dura_store_prune(s, &req, &n), 0);
	CHECK(n == 1);
	dura_record *g = NULL;
	CHECK_RC(dura_store_get_run(s, f1_new, &g), DURA_ENOTFOUND);
	CHECK_RC(dura_store_latest_run(s, wf, "f1", &g), 0);
	if (g)
		CHECK_STR(g->run_id, f1_old);
	dura_record_free(g);
	g = NULL;
	/* and when it goes too, f1 has none */
	CHECK(prune_of(s, wf, DURA_RUN_FAILED, 1) == 2);
	CHECK_RC(dura_store_latest_run(s, wf, "f1", &g), DURA_ENOTFOUND);
	dura_record_free(g);
	CHECK(prune_of(s, wf, DURA_RUN_COMPLETED, 0) == 1);
	CHECK(count_of(s, wf, "", DURA_RUN_DATA_DELETED) == 1);
	CHECK(count_of(s, wf, "", DURA_RUN_COMPLETED) == 0);

	/* a run the migration never saw joins the counts with its next commit */
	snprintf(k, sizeof(k), "%srun:%s", colon, live);
	CHECK(aok(a, "HDEL %s workflow_version", k) == 0);
	CHECK(aok(a, "HDEL %scounts:%s :2", colon, wf) == 0);
	CHECK(count_of(s, wf, "", DURA_RUN_RUNNING) == 0);
	g = NULL;
	REQUIRE_RC(dura_store_get_run(s, live, &g), 0);
	CHECK_STR(g->workflow_version, "");
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = live;
	c.expect_version = g->version;
	c.node_id = "a";
	c.state = "{}";
	c.status = "";
	c.run_state = DURA_RUN_COMPLETED;
	c.workflow_version = "v9";
	dura_commit_result res;
	CHECK_RC(dura_store_commit(s, &c, &res), 0);
	dura_record_free(g);
	CHECK(count_of(s, wf, "", DURA_RUN_RUNNING) == 0);
	CHECK(count_of(s, wf, "v9", DURA_RUN_COMPLETED) == 1);
	dura_step *st = NULL;
	CHECK_RC(dura_store_load_latest(s, live, &st), 0);
	if (st)
		CHECK_STR(st->workflow_version, "v9");
	dura_step_free(st);
	CHECK(prune_of(s, wf, DURA_RUN_COMPLETED, 1) == 1);
	CHECK(count_of(s, wf, "v9", DURA_RUN_COMPLETED) == 0);

	/* the two newest runs of a foreign id pruned in one batch: the one before them is the latest */
	char f2[3][64];
	REQUIRE_RC(ended_run(s, wf, "f2", DURA_RUN_FAILED, f2[0], sizeof(f2[0])), 0);
	REQUIRE_RC(ended_run(s, wf, "f2", DURA_RUN_COMPLETED, f2[1], sizeof(f2[1])), 0);
	REQUIRE_RC(ended_run(s, wf, "f2", DURA_RUN_COMPLETED, f2[2], sizeof(f2[2])), 0);
	CHECK(prune_of(s, wf, DURA_RUN_COMPLETED, 1) == 2);
	g = NULL;
	CHECK_RC(dura_store_latest_run(s, wf, "f2", &g), 0);
	if (g)
		CHECK_STR(g->run_id, f2[0]);
	dura_record_free(g);
	snprintf(k, sizeof(k), "%sslotruns", colon);
	CHECK(ainteger(a, "HLEN %s", k) == 1);

	dura_store_close(s);
	drop_namespace(a, prefix);
	redisFree(a);
}

/* ---- schema 4: the outbox in event-id order ------------------------------------------ */

/* The ids outbox_list gives, page by page (pages of `page`), into ids[max]; how many, -1 on error. */
static long list_all(dura_store *s, size_t page, char ids[][DURA_UUID_LEN + 8], long max)
{
	char after[DURA_UUID_LEN + 8] = "";
	long n = 0;
	for (;;) {
		dura_event_list l;
		if (dura_store_outbox_list(s, after, page, &l) != 0) {
			fprintf(stderr, "    outbox_list: %s\n", last_message());
			return -1;
		}
		for (size_t i = 0; i < l.count && n < max; i++)
			snprintf(ids[n++], sizeof(ids[0]), "%s", l.items[i].id);
		size_t got = l.count;
		if (got)
			snprintf(after, sizeof(after), "%s", l.items[got - 1].id);
		dura_event_list_free(&l);
		if (got < page)
			return n;
	}
}

/*
 * The events of schema 3 (in the stream, not in {P}:outbox:order) under
 * schema mark 3: an open without auto_migrate is refused, an open
 * migrates, and outbox_list then gives every event in id order, an
 * imported older one first though the stream has it last. Ack and prune
 * take an event out of the order with the stream.
 */
static void schema4_migration(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	char prefix[40], url[1024], wf[96], k[400], colon[48];
	fresh_prefix(prefix, sizeof(prefix), "rxobx");
	url_prefixed(url, sizeof(url), g_url, prefix);
	snprintf(colon, sizeof(colon), "{%s}:", prefix);
	unique(wf, sizeof(wf), "rx-obx");
	dura_store *s = open_url(url);
	REQUIRE(s);
	dura_record *r = NULL;
	int rc = create_run(s, wf, &r);
	int64_t v = r ? r->version : 0;
	/* 1200 events: the migration's pages are 1000 */
	for (int i = 0; rc == 0 && i < 1200; i++) {
		dura_commit_result res;
		rc = commit(s, r->run_id, v, "a", "{}", DURA_COMMIT_NO_STEP, &res);
		v = res.new_version;
	}
	dura_store_close(s);
	if (rc)
		fprintf(stderr, "    setup: %s\n", last_message());
	REQUIRE_RC(rc, 0);
	redisContext *a = admin_single();
	REQUIRE(a);
	char order[460];
	snprintf(order, sizeof(order), "%soutbox:order", colon);
	CHECK(ainteger(a, "ZCARD %s", order) == 1200);
	/* back to the keys of schema 3 */
	CHECK(aok(a, "DEL %s", order) == 0);
	CHECK(aok(a, "HSET %sschema version 3", colon) == 0);

	CHECK(refuses_old_schema(url));
	s = open_url(url);
	if (!s) {
		dura_record_free(r);
		drop_namespace(a, prefix);
		redisFree(a);
		REQUIRE(0);
	}
	snprintf(k, sizeof(k), "%sschema", colon);
	redisReply *sv = acmd(a, "HGET %s version", k);
	CHECK(sv && sv->type == REDIS_REPLY_STRING && strcmp(sv->str, "5") == 0);
	if (sv)
		freeReplyObject(sv);
	CHECK(ainteger(a, "ZCARD %s", order) == 1200);
	int from = -1, to = -1;
	CHECK_RC(dura_store_migrate(s, &from, &to), 0);
	CHECK(from == 5 && to == 5);
	CHECK(ainteger(a, "ZCARD %s", order) == 1200);

	/* an event older than all of them, imported: the stream's last, the list's first */
	const char *old_id = "01800000-0000-7000-8000-000000000001";
	dura_event ev = {(char *)old_id, wf, r->run_id, (char *)"step", (char *)"{\"old\":true}", 1000};
	CHECK_RC(dura_store_import_event(s, &ev), 0);
	CHECK_RC(dura_store_import_event(s, &ev), DURA_EEXISTS);
	CHECK(message_has(old_id));
	static char ids[1300][DURA_UUID_LEN + 8];
	long n = list_all(s, 500, ids, 1300);
	CHECK(n == 1201);
	if (n > 0)
		CHECK_STR(ids[0], old_id);
	int ordered = 1;
	for (long i = 1; i < n; i++)
		ordered &= strcmp(ids[i - 1], ids[i]) < 0;
	CHECK(ordered);
	dura_event_list l;
	REQUIRE_RC(dura_store_outbox_list(s, old_id, 1, &l), 0);
	CHECK(l.count == 1 && n > 1 && strcmp(l.items[0].id, ids[1]) == 0);
	dura_event_list_free(&l);
	REQUIRE_RC(dura_store_outbox_list(s, NULL, 1, &l), 0);
	CHECK(l.count == 1 && strcmp(l.items[0].id, old_id) == 0 && l.items[0].created_at == 1000 &&
	      strcmp(l.items[0].data, "{\"old\":true}") == 0 && strcmp(l.items[0].run_id, r->run_id) == 0 &&
	      strcmp(l.items[0].workflow_name, wf) == 0 && strcmp(l.items[0].type, "step") == 0);
	dura_event_list_free(&l);

	/* ack and prune keep the order with the stream */
	CHECK_RC(dura_store_outbox_ack(s, old_id), 0);
	CHECK(ainteger(a, "ZCARD %s", order) == 1200);
	CHECK_RC(dura_store_outbox_ack(s, ids[1]), 0);
	CHECK(ainteger(a, "ZCARD %s", order) == 1199);
	int64_t pruned = 0;
	CHECK_RC(dura_store_outbox_prune(s, dura_now_ms() + 1000, 10000, &pruned), 0);
	CHECK(pruned == 1199);
	CHECK(ainteger(a, "EXISTS %s", order) == 0);
	snprintf(k, sizeof(k), "%soutbox:ids", colon);
	CHECK(ainteger(a, "EXISTS %s", k) == 0);
	REQUIRE_RC(dura_store_outbox_list(s, NULL, 10, &l), 0);
	CHECK(l.count == 0);
	dura_event_list_free(&l);

	dura_record_free(r);
	dura_store_close(s);
	drop_namespace(a, prefix);
	redisFree(a);
}

/* ---- schema 5: the runs that wait ------------------------------------------------------ */

/* A commit of run id at version *v that leaves it waiting for wait (NULL: nothing). */
static int commit_wait(dura_store *s, const char *id, int64_t *v, const char *wait)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = id;
	c.expect_version = *v;
	c.node_id = "a";
	c.state = "{}";
	c.status = "a";
	c.wait = wait;
	c.next_run_at = wait ? INT64_C(253402300799000) : 0;
	c.flags = DURA_COMMIT_NO_STEP | DURA_COMMIT_NO_EVENT;
	dura_commit_result res;
	int rc = dura_store_commit(s, &c, &res);
	if (rc == 0)
		*v = res.new_version;
	return rc;
}

static int64_t waiting_of(dura_store *s)
{
	dura_store_gauges g;
	if (dura_store_gauges_get(s, &g) != 0) {
		fprintf(stderr, "    gauges: %s\n", last_message());
		return -1;
	}
	return g.waiting_runs;
}

/*
 * The runs of schema 4 (no {P}:waiting) under schema mark 4: an open
 * without auto_migrate is refused, an open migrates, and the gauges then
 * count every run that waits (1100 of them running, the pages are 1000,
 * and a paused one), not one that waited and was cancelled, nor one put
 * in the index by hand that does not wait; a second migration changes
 * nothing, and commits keep the index from there.
 */
static void schema5_migration(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	char prefix[40], url[1024], wf[96], k[400], colon[48], waiting[460];
	fresh_prefix(prefix, sizeof(prefix), "rxwait");
	url_prefixed(url, sizeof(url), g_url, prefix);
	snprintf(colon, sizeof(colon), "{%s}:", prefix);
	snprintf(waiting, sizeof(waiting), "%swaiting", colon);
	unique(wf, sizeof(wf), "rx-wait");
	dura_store *s = open_url(url);
	REQUIRE(s);
	int rc = 0;
	char first[64] = "", idle[64] = "";
	int64_t first_v = 0;
	for (int i = 0; rc == 0 && i < 1103; i++) {
		dura_record *r = NULL;
		if ((rc = create_run(s, wf, &r)) != 0)
			break;
		int64_t v = r->version;
		if (i < 1102)
			rc = commit_wait(s, r->run_id, &v, "signal:go");
		if (rc == 0 && i == 1100) /* waiting and paused */
			rc = dura_store_set_run_state(s, r->run_id, DURA_RUN_PAUSED, NULL);
		if (rc == 0 && i == 1101) /* waited, then cancelled */
			rc = dura_store_set_run_state(s, r->run_id, DURA_RUN_CANCELLED, NULL);
		if (i == 0) {
			snprintf(first, sizeof(first), "%s", r->run_id);
			first_v = v;
		}
		if (i == 1102) /* waits for nothing */
			snprintf(idle, sizeof(idle), "%s", r->run_id);
		dura_record_free(r);
	}
	if (rc)
		fprintf(stderr, "    setup: %s\n", last_message());
	REQUIRE_RC(rc, 0);
	CHECK(waiting_of(s) == 1101);
	dura_store_close(s);
	redisContext *a = admin_single();
	REQUIRE(a);
	CHECK(ainteger(a, "ZCARD %s", waiting) == 1101);
	/* back to the keys of schema 4, with one run in the index that does not wait */
	CHECK(aok(a, "DEL %s", waiting) == 0);
	CHECK(aok(a, "ZADD %s 0 %s", waiting, idle) == 0);
	CHECK(aok(a, "HSET %sschema version 4", colon) == 0);

	CHECK(refuses_old_schema(url));
	s = open_url(url);
	if (!s) {
		drop_namespace(a, prefix);
		redisFree(a);
		REQUIRE(0);
	}
	snprintf(k, sizeof(k), "%sschema", colon);
	redisReply *sv = acmd(a, "HGET %s version", k);
	CHECK(sv && sv->type == REDIS_REPLY_STRING && strcmp(sv->str, "5") == 0);
	if (sv)
		freeReplyObject(sv);
	CHECK(ainteger(a, "ZCARD %s", waiting) == 1101);
	CHECK(waiting_of(s) == 1101);
	int from = -1, to = -1;
	CHECK_RC(dura_store_migrate(s, &from, &to), 0);
	CHECK(from == 5 && to == 5);
	CHECK(waiting_of(s) == 1101);
	/* from here the commits keep it: one stops waiting, the idle one starts */
	CHECK_RC(commit_wait(s, first, &first_v, NULL), 0);
	CHECK(waiting_of(s) == 1100);
	dura_record *g = NULL;
	REQUIRE_RC(dura_store_get_run(s, idle, &g), 0);
	int64_t v = g->version;
	dura_record_free(g);
	CHECK_RC(commit_wait(s, idle, &v, "sleep"), 0);
	CHECK(waiting_of(s) == 1101);
	CHECK(ainteger(a, "ZCARD %s", waiting) == 1101);

	dura_store_close(s);
	drop_namespace(a, prefix);
	redisFree(a);
}

/* ---- import: the shape of the steps ---------------------------------------------------- */

/*
 * The steps are a list numbered from its first (steps.c, step_base): an
 * imported run whose steps run on to step_no - 1 from a first step other
 * than 0 reads them back by number, and its next commit is the step after
 * them; a run without steps (its data deleted) has none.
 */
static void import_steps_shape(void)
{
	if (!need_env(g_url, "DURA_TEST_REDIS_URL") || !need_env(g_port, "DURA_TEST_REDIS_PORT"))
		return;
	char prefix[40], url[1024];
	fresh_prefix(prefix, sizeof(prefix), "rximp");
	url_prefixed(url, sizeof(url), g_url, prefix);
	dura_store *s = open_url(url);
	REQUIRE(s);
	char wf[96], id[DURA_UUID_LEN + 1];
	unique(wf, sizeof(wf), "rx-imp");
	dura_uuid7(id);
	dura_record rec = {0};
	rec.run_id = id;
	rec.workflow_name = wf;
	rec.run_state = DURA_RUN_RUNNING;
	rec.state = (char *)"{}";
	rec.version = 4;
	rec.step_no = 4;
	rec.created_at = 1000;
	rec.updated_at = 2000;
	dura_step steps[3];
	static const int64_t nums[3] = {1, 2, 3};
	for (int i = 0; i < 3; i++)
		steps[i] = (dura_step){id, nums[i], (char *)"n", (char *)"{}", 1000 + i, (char *)""};
	dura_import_run run = {&rec, steps, 3, NULL, 0, NULL, 0};
	/* 1 to 3 of 4: taken, and the next commit is step 4 */
	REQUIRE_RC(dura_store_import_run(s, &run), 0);
	dura_commit_result res;
	CHECK_RC(commit(s, id, 4, "m", "{\"n\":4}", 0, &res), 0);
	CHECK(res.step == 4);
	dura_step_list h;
	REQUIRE_RC(dura_store_history(s, id, 0, 0, &h), 0);
	CHECK(h.count == 4);
	for (size_t i = 0; i < h.count; i++)
		CHECK(h.items[i].step == (int64_t)i + 1);
	dura_step_list_free(&h);
	dura_step *st = NULL;
	CHECK_RC(dura_store_get_step(s, id, 2, &st), 0);
	CHECK(st && st->created_at == 1001);
	dura_step_free(st);
	/* no steps at all (its data deleted) */
	char id2[DURA_UUID_LEN + 1];
	dura_uuid7(id2);
	rec.run_id = id2;
	rec.run_state = DURA_RUN_DATA_DELETED;
	run.nsteps = 0;
	CHECK_RC(dura_store_import_run(s, &run), 0);
	REQUIRE_RC(dura_store_history(s, id2, 0, 0, &h), 0);
	CHECK(h.count == 0);
	dura_step_list_free(&h);
	dura_store_close(s);
	redisContext *a = admin_single();
	if (a) {
		drop_namespace(a, prefix);
		redisFree(a);
	}
}

/* ---- the table ---------------------------------------------------------------------- */

static const test_case tests[] = {
	{"tls_right_ca", tls_right_ca},
	{"tls_wrong_ca", tls_wrong_ca},
	{"tls_skip_verify", tls_skip_verify},
	{"tls_options_on_plain_url", tls_options_on_plain_url},
	{"unused_option_noted", unused_option_noted},
	{"unix_socket", unix_socket},
	{"acl_and_secrets", acl_and_secrets},
	{"keys_layout", keys_layout},
	{"exec_sql_not_supported", exec_sql_not_supported},
	{"durability_reported", durability_reported},
	{"noscript_reload", noscript_reload},
	{"kill9_under_load", kill9_under_load},
	{"torn_aof_tail", torn_aof_tail},
	{"cluster_reshard_while_committing", cluster_reshard_while_committing},
	{"schema3_migration", schema3_migration},
	{"schema4_migration", schema4_migration},
	{"schema5_migration", schema5_migration},
	{"import_steps_shape", import_steps_shape},
};

int main(int argc, char **argv)
{
	g_servers_script = argc > 1 && argv[1][0] ? argv[1] : NULL;
	g_url = getenv("DURA_TEST_REDIS_URL");
	g_acl_url = getenv("DURA_TEST_REDIS_ACL_URL");
	g_socket = getenv("DURA_TEST_REDIS_SOCKET");
	g_tls_url = getenv("DURA_TEST_REDIS_TLS_URL");
	g_wrong_ca = getenv("DURA_TEST_REDIS_TLS_WRONG_CA");
	g_port = getenv("DURA_TEST_REDIS_PORT");
	g_servers_dir = getenv("DURA_TEST_SERVERS_DIR");
	g_cluster_url = getenv("DURA_TEST_REDIS_CLUSTER_URL");
	g_cluster_ports = getenv("DURA_TEST_REDIS_CLUSTER_PORTS");
	return test_run_all("redis extra", tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL) ? 1 : 0;
}
