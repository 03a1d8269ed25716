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

const test_case conf_external_tests[] = {
	{"external_store_is_served", external_store_is_served},
	{"external_registry_refuses_bad_tables", registry_refuses_bad_tables},
};
const size_t conf_external_ntests = TEST_COUNT(conf_external_tests);
