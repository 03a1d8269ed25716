/*
 * conformance.h - shared helpers of the store-conformance suite.
 *
 * The suite is one program run once per store URL. Every test opens its own
 * handle on g_url (for memory: a fresh empty store, so a test keeps one
 * handle for its whole body), uses names made unique with a UUIDv7 suffix
 * so tests sharing one database never see each other's rows, and skips
 * what the store declares it lacks (dura_store_info.caps).
 */
#ifndef DURA_CONFORMANCE_H
#define DURA_CONFORMANCE_H

#include <dura.h>
#include <dura/store.h>

#include "test.h"

#include <stdint.h>

/* The store URL under test (argv[1]) and its parsed scheme. */
extern const char *g_url;
extern char g_scheme[32];

/* Open a handle on g_url with default options (auto-migrate); NULL and a
 * printed message when that fails. */
dura_store *conf_open(void);

/*
 * STORE_TEST(name) { ...body using `s`... } defines a test that opens a
 * handle `s`, runs the body (REQUIRE returns from the body only) and closes
 * the handle whatever happened.
 */
#define STORE_TEST(name)                                   \
	static void name##__body(dura_store *s);           \
	static void name(void)                             \
	{                                                  \
		dura_store *s__ = conf_open();             \
		REQUIRE(s__ != NULL);                      \
		name##__body(s__);                         \
		dura_store_close(s__);                     \
	}                                                  \
	static void name##__body(dura_store *s)

/* Capability bits of the store (0 on failure, which is reported). */
uint32_t conf_caps(dura_store *s);
int conf_is_memory(void);
/* 1 when every handle is a store of its own, lost at close (memory:,
 * sqlite::memory:). */
int conf_is_volatile(void);

/* "base-<uuid7>" into out. */
void conf_name(char *out, size_t size, const char *base);

/* Sleep for ms milliseconds. */
void conf_sleep_ms(int64_t ms);

/* 1 if a and b are both valid JSON and semantically equal. */
int conf_json_same(const char *a, const char *b);
/* 1 if a is valid JSON. */
int conf_json_valid(const char *a);

/* 1 if id looks like a textual UUIDv7 (36 chars, version nibble 7). */
int conf_is_uuid7(const char *id);

/* 1 if t is within slack ms of now. */
int conf_near_now(int64_t t, int64_t slack);

/* 1 if the last error has a non-empty message and the given code. */
int conf_error_ok(int code);

/* Create a running run of wf (foreign id, state may be NULL). */
int conf_create(dura_store *s, const char *wf, const char *foreign_id, const char *state, dura_record **out);

/* Commit one step on run with expect_version; event and flags as given. */
int conf_commit(dura_store *s, const char *run_id, int64_t expect, const char *node, const char *state,
                unsigned flags, dura_commit_result *res);

/* Commit n steps to a run (NO_EVENT), refreshing the version; 0 or error. */
int conf_commit_n(dura_store *s, const char *run_id, int n, const char *node_prefix);

/*
 * Events currently in the outbox for run_id (all types when type is NULL),
 * oldest first. Returns the count, or -1 when the poll failed. When out is
 * not NULL it receives copies (free with dura_event_list_free).
 */
long conf_events(dura_store *s, const char *run_id, const char *type, dura_event_list *out);

/* Acknowledge this suite's outbox leftovers older than a minute. */
void conf_outbox_sweep(dura_store *s);

/* Acknowledge every outbox event of run_id (test hygiene on shared stores). */
void conf_ack_run_events(dura_store *s, const char *run_id);

/* Number of steps in a run's history, or -1 on error. */
long conf_history_count(dura_store *s, const char *run_id);

/* The test tables of each file. */
extern const test_case conf_runs_tests[];
extern const size_t conf_runs_ntests;
extern const test_case conf_steps_tests[];
extern const size_t conf_steps_ntests;
extern const test_case conf_cache_tests[];
extern const size_t conf_cache_ntests;
extern const test_case conf_leases_tests[];
extern const size_t conf_flow_ntests;
extern const test_case conf_flow_tests[];
extern const size_t conf_leases_ntests;
extern const test_case conf_misc_tests[];
extern const size_t conf_misc_ntests;
extern const test_case conf_external_tests[];
extern const size_t conf_external_ntests;
extern const test_case conf_workers_tests[];
extern const size_t conf_workers_ntests;
extern const test_case conf_waiting_tests[];
extern const size_t conf_waiting_ntests;
extern const test_case conf_fleet_tests[];
extern const size_t conf_fleet_ntests;
extern const test_case conf_import_tests[];
extern const size_t conf_import_ntests;
extern const test_case conf_gauges_tests[];
extern const size_t conf_gauges_ntests;

/* Register the "memwrap" store (conformance_external.c): 0 or an error. */
int conf_external_register(void);

#endif
