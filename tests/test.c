#include "test.h"

int test__failed_now;
int test__skipped_now;

int test_run_all(const char *suite, const test_case *tests, size_t n, const char *filter)
{
	int passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < n; i++) {
		if (filter && *filter && !strstr(tests[i].name, filter))
			continue;
		test__failed_now = 0;
		test__skipped_now = 0;
		fflush(stdout);
		tests[i].fn();
		if (test__failed_now) {
			failed++;
			printf("FAIL %s: %s\n", suite, tests[i].name);
		} else if (test__skipped_now) {
			skipped++;
			printf("skip %s: %s\n", suite, tests[i].name);
		} else {
			passed++;
			printf("ok   %s: %s\n", suite, tests[i].name);
		}
		fflush(stdout);
	}
	printf("%s: %d passed, %d failed, %d skipped\n", suite, passed, failed, skipped);
	return failed ? 1 : 0;
}
