/*
 * A store from outside the library, and what the core asks of one.
 *
 * The first half is a store as a third party would write it, from
 * <dura/store.h> alone: a shim over the memory store (found with
 * dura_store_find, as SQLite shims find the VFS they wrap) registered
 * under the scheme "memwrap" and declaring contract version 1, so the
 * members appended since (atfork_child) must read as absent. It counts
 * the calls it passes on. The conformance suite runs through it:
 * `conformance memwrap:`.
 *
 * The second half checks the registry itself on every run of the suite:
 * a vtable missing a required operation, of an unknown version, or
 * claiming a built-in scheme is refused with a message naming what is
 * wrong, and changes nothing.
 */
#include <dura/store.h>

#include "conformance.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the shim, from <dura/store.h> only ---------------------------------------------- */

static dura_store_ops memwrap;
static const dura_store_ops *inner;
static _Atomic long memwrap_commits;

/* Appended after version 1: a version-1 table's value here is never read. */
static void must_not_be_called(void *impl)
{
	(void)impl;
	abort();
}

static int must_not_extend(void *impl, const char *owner, const char *const *ids, size_t n, int64_t lease_ms, int *codes)
{
	(void)impl, (void)owner, (void)ids, (void)n, (void)lease_ms, (void)codes;
	abort();
}

static int must_not_claim(void *impl, const dura_claim *req, dura_record_list *out)
{
	(void)impl, (void)req, (void)out;
	abort();
}

static int memwrap_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res)
{
	atomic_fetch_add(&memwrap_commits, 1);
	return inner->commit(impl, c, event_id, res);
}

int conf_external_register(void)
{
	inner = dura_store_find("memory");
	if (!inner)
		return -1;
	/* the table as version 1 had it: the operations up to wait_change */
	memwrap = *inner;
	memwrap.version = 1;
	memwrap.scheme = "memwrap";
	memwrap.commit = memwrap_commit;
	memwrap.atfork_child = must_not_be_called; /* not part of version 1 */
	memwrap.extend_leases = must_not_extend;   /* nor this: the core loops extend_lease */
	memwrap.claim = must_not_claim;            /* nor this: claims go to claim_runs */
	return dura_store_register(&memwrap);
}

/* ---- the registry's checks ------------------------------------------------------------- */

static int message_names(const char *what)
{
	const dura_error *e = dura_error_last();
	return e && e->message && strstr(e->message, what) != NULL;
}

static void external_store_is_served(void)
{
	REQUIRE(dura_store_find("memwrap") == &memwrap);
	long before = atomic_load(&memwrap_commits);
	dura_store *s;
	REQUIRE_RC(dura_store_open(&s, "memwrap:", NULL), 0);
	dura_store_info info;
	REQUIRE_RC(dura_store_info_get(s, &info), 0);
	CHECK_STR(info.scheme, "memwrap");
	dura_record *r;
	REQUIRE_RC(conf_create(s, "ext-wf", NULL, "{\"a\":1}", &r), 0);
	dura_commit_result res;
	CHECK_RC(conf_commit(s, r->run_id, r->version, "n", "{\"a\":2}", 0, &res), 0);
	CHECK(atomic_load(&memwrap_commits) == before + 1); /* through the shim */
	/* fork with the handle open: the core must not call what version 1
	 * does not have */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int st;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	dura_record_free(r);
	dura_store_close(s);
}

static void registry_refuses_bad_tables(void)
{
	const dura_store_ops *mem = dura_store_find("memory");
	REQUIRE(mem != NULL);
	static dura_store_ops bad;

	bad = *mem;
	bad.scheme = "noget";
	bad.cache_get = NULL;
	CHECK_RC(dura_store_register(&bad), DURA_EINVAL);
	CHECK(message_names("cache_get"));

	bad = *mem;
	bad.scheme = "noclose";
	bad.close = NULL;
	CHECK_RC(dura_store_register(&bad), DURA_EINVAL);
	CHECK(message_names("close"));

	bad = *mem;
	bad.scheme = "fromthefuture";
	bad.version = DURA_STORE_ABI_VERSION + 1;
	CHECK_RC(dura_store_register(&bad), DURA_EVERSION);
	CHECK(message_names("version"));

	bad = *mem;
	bad.version = 0;
	bad.scheme = "zero";
	CHECK_RC(dura_store_register(&bad), DURA_EVERSION);

	bad = *mem;
	bad.scheme = "sqlite"; /* built in: not to be replaced */
	CHECK_RC(dura_store_register(&bad), DURA_EEXISTS);

	CHECK_RC(dura_store_register(NULL), DURA_EINVAL);
	bad = *mem;
	bad.scheme = "";
	CHECK_RC(dura_store_register(&bad), DURA_EINVAL);

	/* none of them was registered */
	dura_store *s = NULL;
	CHECK_RC(dura_store_open(&s, "noget:", NULL), DURA_ENOTSUP);
	CHECK_RC(dura_store_open(&s, "fromthefuture:", NULL), DURA_ENOTSUP);
	CHECK(s == NULL);
	CHECK(dura_store_find("noget") == NULL);
	CHECK(dura_store_find(NULL) == NULL);
	CHECK(dura_store_find("") == NULL);
	/* optional operations may be absent: exec_sql is */
	CHECK(mem->exec_sql == NULL);
}

static int noop_node(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx, (void)state, (void)payload;
	return 0;
}

/* A store older than contract version 4 keeps no priority and no flow
 * limits: asking for them is refused, and workers without them still run
 * (their claims go to claim_runs). */
static void external_store_without_flow(void)
{
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, "memwrap:", NULL), 0);
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = "wf-old";
	req.priority = 3;
	CHECK_RC(dura_store_create_run(s, &req, NULL), DURA_ENOTSUP);
	req.priority = 0;
	req.concurrency_key = "k";
	CHECK_RC(dura_store_create_run(s, &req, NULL), DURA_ENOTSUP);
	dura_engine *eng = NULL;
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	dura_workflow *wf = NULL;
	REQUIRE_RC(dura_workflow_new(&wf, "wf-old"), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", noop_node, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "a"), 0);
	CHECK_RC(dura_workflow_set_concurrency(wf, -1, 0), DURA_EINVAL);
	CHECK_RC(dura_workflow_set_concurrency(NULL, 1, 0), DURA_EINVAL);
	REQUIRE_RC(dura_workflow_set_concurrency(wf, 2, 0), 0);
	REQUIRE_RC(dura_engine_register(eng, wf), 0);
	dura_worker *w = NULL;
	CHECK_RC(dura_worker_start(&w, eng, NULL), DURA_ENOTSUP);
	CHECK(w == NULL);
	CHECK(conf_error_ok(DURA_ENOTSUP));
	dura_engine_close(eng);
	/* without limits the worker runs, and completes a run */
	REQUIRE_RC(dura_engine_open(&eng, s, NULL), 0);
	REQUIRE_RC(dura_workflow_new(&wf, "wf-old"), 0);
	REQUIRE_RC(dura_workflow_add_node(wf, "a", noop_node, NULL, NULL), 0);
	REQUIRE_RC(dura_workflow_set_start(wf, "a"), 0);
	REQUIRE_RC(dura_engine_register(eng, wf), 0);
	char id[DURA_UUID_LEN + 1];
	REQUIRE_RC(dura_run_start(eng, "wf-old", NULL, NULL, NULL, id), 0);
	dura_worker_options o = DURA_WORKER_OPTIONS_INIT;
	o.poll_ms = 20;
	REQUIRE_RC(dura_worker_start(&w, eng, &o), 0);
	int done = 0;
	for (int i = 0; i < 3000 && !done; i++) {
		dura_record *r = NULL;
		if (dura_store_get_run(s, id, &r) == 0) {
			done = r->run_state == DURA_RUN_COMPLETED;
			dura_record_free(r);
		}
		if (!done)
			conf_sleep_ms(10);
	}
	CHECK(done);
	CHECK_RC(dura_worker_stop(w, 5000), 0);
	dura_engine_close(eng);
	dura_store_close(s);
}

const test_case conf_external_tests[] = {
	{"external_store_without_flow", external_store_without_flow},
	{"external_store_is_served", external_store_is_served},
	{"external_registry_refuses_bad_tables", registry_refuses_bad_tables},
};
const size_t conf_external_ntests = TEST_COUNT(conf_external_tests);
