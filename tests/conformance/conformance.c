/*
 * conformance.c - the store-conformance suite: helpers and main().
 *
 * Usage: conformance URL [FILTER]
 * Runs every contract test against the store at URL (memory:, sqlite:PATH,
 * mysql://..., postgres://..., redis://...). FILTER keeps the tests whose
 * name contains it. The tests themselves are in conformance_*.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "conformance.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *g_url;
char g_scheme[32];
int g_volatile;

dura_store *conf_open(void)
{
	dura_store *s = NULL;
	int rc = dura_store_open(&s, g_url, NULL);
	if (rc != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    cannot open the store: %d (%s)\n", rc, e && e->message ? e->message : "no message");
		return NULL;
	}
	return s;
}

uint32_t conf_caps(dura_store *s)
{
	dura_store_info info;
	memset(&info, 0, sizeof info);
	if (dura_store_info_get(s, &info) != 0) {
		fprintf(stderr, "    dura_store_info_get failed\n");
		test__failed_now = 1;
		return 0;
	}
	return info.caps;
}

/* memwrap: is the memory store, seen through a shim from outside */
int conf_is_memory(void)
{
	return strcmp(g_scheme, "memory") == 0 || strcmp(g_scheme, "memwrap") == 0;
}

int conf_is_volatile(void)
{
	return g_volatile;
}

void conf_name(char *out, size_t size, const char *base)
{
	char id[DURA_UUID_LEN + 1];
	if (dura_uuid7(id) != 0)
		snprintf(id, sizeof id, "%lld", (long long)dura_now_ms());
	snprintf(out, size, "%s-%s", base, id);
}

void conf_sleep_ms(int64_t ms)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int conf_json_same(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	json_error_t err;
	json_t *ja = json_loads(a, JSON_DECODE_ANY, &err);
	json_t *jb = json_loads(b, JSON_DECODE_ANY, &err);
	int same = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return same;
}

int conf_json_valid(const char *a)
{
	if (!a)
		return 0;
	json_error_t err;
	json_t *j = json_loads(a, JSON_DECODE_ANY, &err);
	int ok = j != NULL;
	json_decref(j);
	return ok;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int conf_is_uuid7(const char *id)
{
	if (!id || strlen(id) != DURA_UUID_LEN)
		return 0;
	for (int i = 0; i < DURA_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return 0;
		} else if (!is_hex(id[i])) {
			return 0;
		}
	}
	if (id[14] != '7')
		return 0;
	return strchr("89abAB", id[19]) != NULL;
}

int conf_near_now(int64_t t, int64_t slack)
{
	int64_t now = dura_now_ms();
	int64_t d = now > t ? now - t : t - now;
	return d <= slack;
}

int conf_error_ok(int code)
{
	const dura_error *e = dura_error_last();
	if (!e) {
		fprintf(stderr, "    no dura_error_last() after a failure\n");
		return 0;
	}
	if (!e->message || !e->message[0]) {
		fprintf(stderr, "    empty error message for code %d\n", code);
		return 0;
	}
	if (e->code != code) {
		fprintf(stderr, "    dura_error_last()->code %d, wanted %d (%s)\n", e->code, code, e->message);
		return 0;
	}
	return 1;
}

int conf_create(dura_store *s, const char *wf, const char *foreign_id, const char *state, dura_record **out)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = foreign_id;
	req.state = state;
	return dura_store_create_run(s, &req, out);
}

int conf_commit(dura_store *s, const char *run_id, int64_t expect, const char *node, const char *state,
                unsigned flags, dura_commit_result *res)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = expect;
	c.node_id = node;
	c.state = state;
	c.status = node;
	c.flags = flags;
	return dura_store_commit(s, &c, res);
}

int conf_commit_n(dura_store *s, const char *run_id, int n, const char *node_prefix)
{
	dura_record *rec = NULL;
	int rc = dura_store_get_run(s, run_id, &rec);
	if (rc != 0)
		return rc;
	int64_t v = rec->version;
	dura_record_free(rec);
	for (int i = 0; i < n; i++) {
		char node[64], state[64];
		snprintf(node, sizeof node, "%s%d", node_prefix, i);
		snprintf(state, sizeof state, "{\"i\":%d}", i);
		dura_commit_result res;
		rc = conf_commit(s, run_id, v, node, state, DURA_COMMIT_NO_EVENT, &res);
		if (rc != 0)
			return rc;
		v = res.new_version;
	}
	return 0;
}

/* The most one poll returns (the core caps limit at 10000). */
#define CONF_POLL_LIMIT 10000

long conf_events(dura_store *s, const char *run_id, const char *type, dura_event_list *out)
{
	dura_event_list all;
	memset(&all, 0, sizeof all);
	if (out)
		memset(out, 0, sizeof *out);
	int rc = dura_store_outbox_poll(s, CONF_POLL_LIMIT, &all);
	if (rc != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "    outbox_poll failed: %d (%s)\n", rc, e && e->message ? e->message : "");
		return -1;
	}
	long n = 0;
	for (size_t i = 0; i < all.count; i++) {
		dura_event *ev = &all.items[i];
		if (!ev->run_id || strcmp(ev->run_id, run_id) != 0)
			continue;
		if (type && (!ev->type || strcmp(ev->type, type) != 0))
			continue;
		if (out) {
			/* Move the matching event to the front of `all` and hand
			 * the list over: the rest are freed below. */
			dura_event tmp = all.items[n];
			all.items[n] = *ev;
			*ev = tmp;
		}
		n++;
	}
	if (out) {
		/* Free the strings of the non-matching tail; the array and the
		 * first n events go to the caller (dura_event_list_free). */
		for (size_t i = (size_t)n; i < all.count; i++) {
			dura_free(all.items[i].id);
			dura_free(all.items[i].workflow_name);
			dura_free(all.items[i].run_id);
			dura_free(all.items[i].type);
			dura_free(all.items[i].data);
			memset(&all.items[i], 0, sizeof all.items[i]);
		}
		all.count = (size_t)n;
		*out = all;
	} else {
		dura_event_list_free(&all);
	}
	return n;
}

void conf_outbox_sweep(dura_store *s)
{
	/* Events are polled oldest first, at most CONF_POLL_LIMIT at a time:
	 * on a store that outlives the suite, leftovers of earlier runs of
	 * this suite (workflows named "conf-...", older than a minute, so no
	 * concurrent run of the suite is disturbed) would hide new events. */
	int64_t old = dura_now_ms() - 60000;
	for (int round = 0; round < 100; round++) {
		dura_event_list all;
		memset(&all, 0, sizeof all);
		if (dura_store_outbox_poll(s, CONF_POLL_LIMIT, &all) != 0)
			return;
		size_t acked = 0;
		for (size_t i = 0; i < all.count; i++) {
			dura_event *ev = &all.items[i];
			if (ev->workflow_name && strncmp(ev->workflow_name, "conf-", 5) == 0 && ev->created_at < old &&
			    dura_store_outbox_ack(s, ev->id) == 0)
				acked++;
		}
		size_t count = all.count;
		dura_event_list_free(&all);
		if (acked == 0 || count < CONF_POLL_LIMIT)
			return;
	}
}

void conf_ack_run_events(dura_store *s, const char *run_id)
{
	dura_event_list evs;
	long n = conf_events(s, run_id, NULL, &evs);
	for (long i = 0; i < n; i++)
		dura_store_outbox_ack(s, evs.items[i].id);
	if (n >= 0)
		dura_event_list_free(&evs);
}

long conf_history_count(dura_store *s, const char *run_id)
{
	dura_step_list l;
	memset(&l, 0, sizeof l);
	if (dura_store_history(s, run_id, 0, 0, &l) != 0)
		return -1;
	long n = (long)l.count;
	dura_step_list_free(&l);
	return n;
}

static int scheme_of(const char *url, char *out, size_t size)
{
	dura_url *u = NULL;
	if (dura_url_parse(&u, url) != 0)
		return -1;
	snprintf(out, size, "%s", u->scheme ? u->scheme : "");
	/* memory: and SQLite's in-memory database: each handle is a store */
	g_volatile = strcmp(out, "memory") == 0 || strcmp(out, "memwrap") == 0 ||
	             (strcmp(out, "sqlite") == 0 && u->database && strcmp(u->database, ":memory:") == 0);
	dura_url_free(u);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s STORE_URL [TEST_FILTER]\n", argv[0]);
		return 2;
	}
	g_url = argv[1];
	if (conf_external_register() != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "conformance: cannot register the memwrap store: %s\n", e && e->message ? e->message : "");
		return 2;
	}
	if (scheme_of(g_url, g_scheme, sizeof g_scheme) != 0) {
		const dura_error *e = dura_error_last();
		fprintf(stderr, "conformance: cannot parse the store URL: %s\n", e && e->message ? e->message : "");
		return 2;
	}

	const struct {
		const test_case *t;
		size_t n;
	} groups[] = {
		{conf_runs_tests, conf_runs_ntests},   {conf_steps_tests, conf_steps_ntests},
		{conf_cache_tests, conf_cache_ntests}, {conf_leases_tests, conf_leases_ntests},
		{conf_flow_tests, conf_flow_ntests},
		{conf_misc_tests, conf_misc_ntests},   {conf_external_tests, conf_external_ntests},
		{conf_workers_tests, conf_workers_ntests},
		{conf_waiting_tests, conf_waiting_ntests},
		{conf_fleet_tests, conf_fleet_ntests},
		{conf_import_tests, conf_import_ntests},
		{conf_gauges_tests, conf_gauges_ntests},
	};
	size_t total = 0;
	for (size_t g = 0; g < TEST_COUNT(groups); g++)
		total += groups[g].n;
	test_case *all = calloc(total, sizeof *all);
	if (!all)
		return 2;
	size_t k = 0;
	for (size_t g = 0; g < TEST_COUNT(groups); g++)
		for (size_t i = 0; i < groups[g].n; i++)
			all[k++] = groups[g].t[i];

	char suite[64];
	snprintf(suite, sizeof suite, "conformance %s", g_scheme);
	int rc = test_run_all(suite, all, total, argc > 2 ? argv[2] : NULL);
	free(all);
	return rc;
}
