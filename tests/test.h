/*
 * test.h - the tiny test harness every dura test program uses.
 *
 * A test is a function `static void name(void)` registered in a table;
 * CHECK() records a failure with file and line and goes on, REQUIRE()
 * returns from the test. SKIP() marks the test skipped. The runner prints
 * one line per test and closes with "N passed, N failed, N skipped"; the
 * program exits non-zero when anything failed.
 */
#ifndef DURA_TEST_H
#define DURA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_case {
	const char *name;
	void (*fn)(void);
} test_case;

extern int test__failed_now;
extern int test__skipped_now;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "    %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			test__failed_now = 1;                                         \
		}                                                                     \
	} while (0)

#define REQUIRE(cond)                                                                   \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "    %s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
			test__failed_now = 1;                                           \
			return;                                                         \
		}                                                                       \
	} while (0)

/* Check that an int-returning call gives the expected code, and print the
 * dura error message when it does not. */
#define CHECK_RC(expr, want)                                                                      \
	do {                                                                                      \
		int rc__ = (expr);                                                                \
		if (rc__ != (want)) {                                                             \
			const dura_error *e__ = dura_error_last();                                \
			fprintf(stderr, "    %s:%d: %s returned %d, wanted %d (%s)\n", __FILE__, __LINE__, #expr, \
			        rc__, (int)(want), e__ ? e__->message : "no error message");      \
			test__failed_now = 1;                                                     \
		}                                                                                 \
	} while (0)

#define REQUIRE_RC(expr, want)                                                                    \
	do {                                                                                      \
		int rc__ = (expr);                                                                \
		if (rc__ != (want)) {                                                             \
			const dura_error *e__ = dura_error_last();                                \
			fprintf(stderr, "    %s:%d: %s returned %d, wanted %d (%s)\n", __FILE__, __LINE__, #expr, \
			        rc__, (int)(want), e__ ? e__->message : "no error message");      \
			test__failed_now = 1;                                                     \
			return;                                                                   \
		}                                                                                 \
	} while (0)

#define CHECK_STR(a, b)                                                                              \
	do {                                                                                         \
		const char *a__ = (a), *b__ = (b);                                                   \
		if (!a__ || !b__ || strcmp(a__, b__) != 0) {                                         \
			fprintf(stderr, "    %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a__ ? a__ : "(null)", \
			        b__ ? b__ : "(null)");                                               \
			test__failed_now = 1;                                                        \
		}                                                                                    \
	} while (0)

#define SKIP(why)                                           \
	do {                                                \
		fprintf(stderr, "    skipped: %s\n", (why)); \
		test__skipped_now = 1;                      \
		return;                                     \
	} while (0)

/* Run the tests whose name contains `filter` (NULL: all). */
int test_run_all(const char *suite, const test_case *tests, size_t n, const char *filter);

#define TEST_COUNT(arr) (sizeof(arr) / sizeof((arr)[0]))

#endif
