/*
 * Unit tests of cron expressions (src/lib/cron.h): the syntax, the
 * messages of refused expressions, the next tick over month and year
 * ends, and daylight saving time in named zones. Instants are written as
 * UTC dates (timegm), so nothing depends on the machine's TZ; the zones
 * come from the system's tzdata, and a missing zone fails the test.
 */
#include "dura.h"
#include "test.h"
#include "cron.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* y-mo-d h:mi:s UTC, in ms */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm) * 1000;
}

static void show(const char *what, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "      %s %s (%lld)\n", what, buf, (long long)ms);
}

/* The ticks of expr in tz after `after`, one after the other, are want[0..n):
 * 1, or 0 after printing what differed. */
static int ticks(const char *expr, const char *tz, int64_t after, const int64_t *want, size_t n)
{
	dura__cron *c = NULL;
	int rc = dura__cron_parse(&c, expr);
	if (rc) {
		fprintf(stderr, "    '%s': %s\n", expr, dura_error_last()->message);
		return 0;
	}
	int ok = 1;
	for (size_t i = 0; i < n && ok; i++) {
		int64_t next = 0;
		rc = dura__cron_next(c, tz, after, &next);
		if (rc || next != want[i]) {
			fprintf(stderr, "    '%s' in %s, tick %zu: rc %d %s\n", expr, tz ? tz : "(null)", i, rc,
			        rc ? dura_error_last()->message : "");
			show("after", after);
			show("got  ", next);
			show("want ", want[i]);
			ok = 0;
		}
		after = next;
	}
	dura__cron_free(c);
	return ok;
}

#define TICKS(expr, tz, after, ...)                                                            \
	do {                                                                                   \
		const int64_t want__[] = {__VA_ARGS__};                                        \
		CHECK(ticks(expr, tz, after, want__, sizeof(want__) / sizeof(want__[0]))); \
	} while (0)

/* expr is refused with DURA_EINVAL, no result, and a message containing want */
static int refused(const char *expr, const char *want)
{
	dura__cron *c = (dura__cron *)&c;
	int rc = dura__cron_parse(&c, expr);
	const dura_error *e = dura_error_last();
	if (rc != DURA_EINVAL || c != NULL || !e || !strstr(e->message, want)) {
		fprintf(stderr, "    '%s': rc %d, message \"%s\", wanted \"%s\"\n", expr ? expr : "(null)", rc,
		        e ? e->message : "", want);
		if (rc == 0)
			dura__cron_free(c);
		return 0;
	}
	return 1;
}

/* ---- syntax ------------------------------------------------------------------ */

static void forms(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
	TICKS("*/15 * * * *", NULL, t0, utc(2026, 1, 1, 0, 15, 0), utc(2026, 1, 1, 0, 30, 0), utc(2026, 1, 1, 0, 45, 0),
	      utc(2026, 1, 1, 1, 0, 0));
	TICKS("5 * * * *", NULL, t0, utc(2026, 1, 1, 0, 5, 0), utc(2026, 1, 1, 1, 5, 0));
	TICKS("10-12 * * * *", NULL, t0, utc(2026, 1, 1, 0, 10, 0), utc(2026, 1, 1, 0, 11, 0), utc(2026, 1, 1, 0, 12, 0),
	      utc(2026, 1, 1, 1, 10, 0));
	TICKS("10-20/5 * * * *", NULL, t0, utc(2026, 1, 1, 0, 10, 0), utc(2026, 1, 1, 0, 15, 0),
	      utc(2026, 1, 1, 0, 20, 0), utc(2026, 1, 1, 1, 10, 0));
	/* a/n: from a to the highest value */
	TICKS("50/4 * * * *", NULL, t0, utc(2026, 1, 1, 0, 50, 0), utc(2026, 1, 1, 0, 54, 0), utc(2026, 1, 1, 0, 58, 0),
	      utc(2026, 1, 1, 1, 50, 0));
	TICKS("1,3-4,30-40/5 * * * *", NULL, t0, utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 3, 0),
	      utc(2026, 1, 1, 0, 4, 0), utc(2026, 1, 1, 0, 30, 0), utc(2026, 1, 1, 0, 35, 0), utc(2026, 1, 1, 0, 40, 0),
	      utc(2026, 1, 1, 1, 1, 0));
	TICKS("0 9-17/4 * * *", NULL, t0, utc(2026, 1, 1, 9, 0, 0), utc(2026, 1, 1, 13, 0, 0), utc(2026, 1, 1, 17, 0, 0),
	      utc(2026, 1, 2, 9, 0, 0));
	TICKS("0 0 1-10/3 * *", NULL, t0, utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 7, 0, 0, 0), utc(2026, 1, 10, 0, 0, 0),
	      utc(2026, 2, 1, 0, 0, 0));
	TICKS("0 0 1 */5 *", NULL, t0, utc(2026, 6, 1, 0, 0, 0), utc(2026, 11, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
	/* spaces and tabs between fields, and around the expression */
	TICKS("  \t0\t12  * *   *\n", NULL, t0, utc(2026, 1, 1, 12, 0, 0));
}

static void names(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0); /* a Thursday */
	TICKS("0 0 1 jan,MAR *", NULL, t0, utc(2026, 3, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
	TICKS("0 0 1 Oct-dec/2 *", NULL, t0, utc(2026, 10, 1, 0, 0, 0), utc(2026, 12, 1, 0, 0, 0),
	      utc(2027, 10, 1, 0, 0, 0));
	TICKS("0 12 * * MON-FRI", NULL, utc(2026, 1, 2, 13, 0, 0), utc(2026, 1, 5, 12, 0, 0), utc(2026, 1, 6, 12, 0, 0));
	/* 0, 7 and SUN are all Sunday */
	TICKS("0 0 * * 0", NULL, t0, utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 11, 0, 0, 0));
	TICKS("0 0 * * 7", NULL, t0, utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 11, 0, 0, 0));
	TICKS("0 0 * * sun", NULL, t0, utc(2026, 1, 4, 0, 0, 0));
	TICKS("0 0 * * 5-7", NULL, t0, utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0), utc(2026, 1, 4, 0, 0, 0),
	      utc(2026, 1, 9, 0, 0, 0));
	TICKS("0 0 * * tue,THU", NULL, t0, utc(2026, 1, 6, 0, 0, 0), utc(2026, 1, 8, 0, 0, 0));
	/* "*" in the day of week is 0-6: every second day from Sunday */
	TICKS("0 0 * * */2", NULL, t0, utc(2026, 1, 3, 0, 0, 0), utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 6, 0, 0, 0));
}

static void five_and_six_fields(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
	/* five: second 0; six: the seconds first */
	TICKS("* * * * *", NULL, t0, utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 2, 0));
	TICKS("30 * * * * *", NULL, t0, utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1, 30));
	TICKS("*/20 5 * * * *", NULL, t0, utc(2026, 1, 1, 0, 5, 0), utc(2026, 1, 1, 0, 5, 20), utc(2026, 1, 1, 0, 5, 40),
	      utc(2026, 1, 1, 1, 5, 0));
	TICKS("0 30 12 * * *", NULL, t0, utc(2026, 1, 1, 12, 30, 0), utc(2026, 1, 2, 12, 30, 0));
	TICKS("15,45 0 0 1 1 *", NULL, t0, utc(2026, 1, 1, 0, 0, 15), utc(2026, 1, 1, 0, 0, 45),
	      utc(2027, 1, 1, 0, 0, 15));
}

static void every_second(void)
{
	int64_t x = utc(2026, 5, 17, 8, 30, 0);
	TICKS("* * * * * *", NULL, x, x + 1000, x + 2000, x + 3000);
	/* strictly after, at whole seconds */
	TICKS("* * * * * *", NULL, x + 999, x + 1000);
	TICKS("* * * * * *", NULL, x - 1, x);
	TICKS("*/10 * * * * *", NULL, x + 1, x + 10000, x + 20000);
	/* before 1970 too */
	TICKS("* * * * * *", NULL, -1, 0);
	TICKS("* * * * * *", NULL, -1500, -1000);
	TICKS("0 0 0 1 1 *", NULL, utc(1969, 6, 1, 0, 0, 0), 0);
}

/* ---- refused expressions: the message names the field ------------------------- */

static void errors_name_the_field(void)
{
	CHECK(refused(NULL, "cron: no expression"));
	CHECK(refused("", "cron: empty expression"));
	CHECK(refused(" \t ", "cron: empty expression"));
	CHECK(refused("* * * *", "cron: expected 5 or 6 fields, got 4"));
	CHECK(refused("* * * * * * *", "cron: expected 5 or 6 fields, got 7"));
	CHECK(refused("0 0 32 * *", "cron: field 3 (day of month) '32' is out of range 1-31"));
	CHECK(refused("0 0 0 * *", "cron: field 3 (day of month) '0' is out of range 1-31"));
	CHECK(refused("60 * * * *", "cron: field 1 (minute) '60' is out of range 0-59"));
	CHECK(refused("60 * * * * *", "cron: field 1 (second) '60' is out of range 0-59"));
	CHECK(refused("0 60 * * * *", "cron: field 2 (minute) '60' is out of range 0-59"));
	CHECK(refused("0 24 * * *", "cron: field 2 (hour) '24' is out of range 0-23"));
	CHECK(refused("0 0 * 13 *", "cron: field 4 (month) '13' is out of range 1-12"));
	CHECK(refused("0 0 * 0 *", "cron: field 4 (month) '0' is out of range 1-12"));
	CHECK(refused("0 0 * * 8", "cron: field 5 (day of week) '8' is out of range 0-7"));
	CHECK(refused("0 0 0 * * 8", "cron: field 6 (day of week) '8' is out of range 0-7"));
	CHECK(refused("99999999999999999999 * * * *", "cron: field 1 (minute) '99999999999999999999' is out of range"));
	CHECK(refused("0 0 * FOO *", "cron: field 4 (month) 'FOO' is not a number or a month name (JAN-DEC)"));
	CHECK(refused("0 0 * * FUN", "cron: field 5 (day of week) 'FUN' is not a number or a day name (SUN-SAT)"));
	CHECK(refused("0 0 * * MONDAY", "cron: field 5 (day of week) 'MONDAY' is not a number"));
	CHECK(refused("0 0 * * MON-FUN", "'FUN' is not a number or a day name"));
	CHECK(refused("x * * * *", "cron: field 1 (minute) 'x' is not a number"));
	CHECK(refused("0 0 JAN * *", "cron: field 3 (day of month) 'JAN' is not a number"));
	CHECK(refused("0 0 L * *", "cron: field 3 (day of month) 'L' is not a number"));
	CHECK(refused("0 0 ? * *", "cron: field 3 (day of month) has '?' where a value should be"));
	CHECK(refused("1,,2 * * * *", "cron: field 1 (minute) has an empty list item"));
	CHECK(refused("0 1, * * *", "cron: field 2 (hour) has an empty list item"));
	CHECK(refused("0 ,1 * * *", "cron: field 2 (hour) has an empty list item"));
	CHECK(refused("1- * * * *", "cron: field 1 (minute) has a value missing"));
	CHECK(refused("*/0 * * * *", "cron: field 1 (minute) step '0' is out of range 1-59"));
	CHECK(refused("* */24 * * *", "cron: field 2 (hour) step '24' is out of range 1-23"));
	CHECK(refused("*/ * * * *", "cron: field 1 (minute) step in '*/' is not a number"));
	CHECK(refused("*/x * * * *", "cron: field 1 (minute) step in '*/x' is not a number"));
	CHECK(refused("5-3 * * * *", "cron: field 1 (minute) range '5-3' runs backwards"));
	CHECK(refused("0 0 * * FRI-MON", "cron: field 5 (day of week) range 'FRI-MON' runs backwards"));
	CHECK(refused("5x * * * *", "cron: field 1 (minute) has 'x' after '5'"));
	CHECK(refused("*-5 * * * *", "cron: field 1 (minute) has '-5' after '*'"));
	CHECK(refused("0 0 0 * * 1#2", "cron: field 6 (day of week) has '#2' after '1'"));
	CHECK(refused("0 0 * * 1/2/3", "cron: field 5 (day of week) has '/3' after '1/2'"));
	CHECK(refused("@fortnightly", "cron: unknown macro '@fortnightly'"));
	CHECK(refused("@reboot", "cron: unknown macro '@reboot'"));
	CHECK(refused("@daily *", "cron: a macro such as '@daily' takes no other fields"));
	CHECK(refused("* * @daily * *", "cron: field 3 (day of month) has '@' where a value should be"));
	/* unprintable bytes are not copied into the message */
	CHECK(refused("\x01 * * * *", "cron: field 1 (minute) has '?' where a value should be"));

	/* too long: refused whole, and a long item is cut in the message */
	char longexpr[DURA__CRON_MAX_LEN + 2];
	memset(longexpr, '1', sizeof(longexpr) - 1);
	longexpr[sizeof(longexpr) - 1] = '\0';
	CHECK(refused(longexpr, "cron: expression is longer than 256 bytes"));
	char item[120];
	memset(item, '7', 100);
	strcpy(item + 100, " * * * *");
	CHECK(refused(item, "is out of range 0-59"));
	CHECK(strlen(dura_error_last()->message) < 120);
	/* exactly the cap is fine */
	char fits[DURA__CRON_MAX_LEN + 1];
	memset(fits, ' ', DURA__CRON_MAX_LEN);
	memcpy(fits, "* * * * *", 9);
	fits[DURA__CRON_MAX_LEN] = '\0';
	dura__cron *c = NULL;
	CHECK_RC(dura__cron_parse(&c, fits), 0);
	dura__cron_free(c);
	CHECK_RC(dura__cron_parse(NULL, "* * * * *"), DURA_EINVAL);
}

/* ---- days: Vixie's rule -------------------------------------------------------- */

static void day_of_month_or_day_of_week(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0); /* Thursday the 1st, itself not after t0 */
	/* both restricted: the 1st OR a Monday */
	TICKS("0 0 1 * MON", NULL, t0, utc(2026, 1, 5, 0, 0, 0), utc(2026, 1, 12, 0, 0, 0), utc(2026, 1, 19, 0, 0, 0),
	      utc(2026, 1, 26, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0), utc(2026, 2, 2, 0, 0, 0));
	TICKS("0 0 13 * 5", NULL, t0, utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 9, 0, 0, 0), utc(2026, 1, 13, 0, 0, 0),
	      utc(2026, 1, 16, 0, 0, 0));
	/* one unrestricted: that one's '*' matches every day, the other decides */
	TICKS("0 0 * * MON", NULL, t0, utc(2026, 1, 5, 0, 0, 0), utc(2026, 1, 12, 0, 0, 0));
	TICKS("0 0 13 * *", NULL, t0, utc(2026, 1, 13, 0, 0, 0), utc(2026, 2, 13, 0, 0, 0));
	/* a field beginning with '*' counts as unrestricted (Vixie, cronie):
	 * odd days AND Mondays */
	TICKS("0 0 */2 * MON", NULL, t0, utc(2026, 1, 5, 0, 0, 0), utc(2026, 1, 19, 0, 0, 0), utc(2026, 2, 9, 0, 0, 0),
	      utc(2026, 2, 23, 0, 0, 0));
	/* the 13th AND a Sunday or Friday ("*" + "/5" is {0, 5}) */
	TICKS("0 0 13 * */5", NULL, t0, utc(2026, 2, 13, 0, 0, 0), utc(2026, 3, 13, 0, 0, 0), utc(2026, 9, 13, 0, 0, 0),
	      utc(2026, 11, 13, 0, 0, 0));
}

static void macros(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
	TICKS("@yearly", NULL, utc(2026, 3, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), utc(2028, 1, 1, 0, 0, 0));
	TICKS("@annually", NULL, t0, utc(2027, 1, 1, 0, 0, 0));
	TICKS("@monthly", NULL, utc(2026, 1, 15, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0));
	TICKS("@weekly", NULL, t0, utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 11, 0, 0, 0));
	TICKS("@daily", NULL, utc(2026, 1, 1, 13, 0, 0), utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0));
	TICKS("@midnight", NULL, t0, utc(2026, 1, 2, 0, 0, 0));
	TICKS("@hourly", NULL, utc(2026, 1, 1, 0, 59, 59), utc(2026, 1, 1, 1, 0, 0), utc(2026, 1, 1, 2, 0, 0));
	TICKS("  @DAILY \n", NULL, t0, utc(2026, 1, 2, 0, 0, 0));
}

/* ---- month ends, leap years, year ends ------------------------------------------- */

static void month_ends_and_leap_years(void)
{
	/* the 31st: months without one are passed over */
	TICKS("0 0 31 * *", NULL, utc(2026, 1, 31, 0, 0, 0), utc(2026, 3, 31, 0, 0, 0), utc(2026, 5, 31, 0, 0, 0),
	      utc(2026, 7, 31, 0, 0, 0), utc(2026, 8, 31, 0, 0, 0), utc(2026, 10, 31, 0, 0, 0));
	TICKS("0 0 30 * *", NULL, utc(2026, 1, 30, 0, 0, 0), utc(2026, 3, 30, 0, 0, 0));
	/* Feb 29: leap years only; 2100 is not one, 2000 was */
	TICKS("0 0 29 2 *", NULL, utc(2025, 1, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0));
	TICKS("0 0 29 2 *", NULL, utc(2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0));
	TICKS("0 0 29 2 *", NULL, utc(1999, 3, 1, 0, 0, 0), utc(2000, 2, 29, 0, 0, 0));
	TICKS("0 12 28-29 2 *", NULL, utc(2027, 2, 28, 12, 0, 0), utc(2028, 2, 28, 12, 0, 0), utc(2028, 2, 29, 12, 0, 0),
	      utc(2029, 2, 28, 12, 0, 0));
	/* last second of February in a leap year, then March */
	TICKS("* * * * * *", NULL, utc(2028, 2, 29, 23, 59, 58), utc(2028, 2, 29, 23, 59, 59), utc(2028, 3, 1, 0, 0, 0));
	/* Feb 29 on a Sunday (AND: the day of week begins with '*'): 28 years
	 * apart, and 40 across 2100 - far past five years */
	TICKS("0 0 29 2 */7", NULL, utc(2005, 1, 1, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0), utc(2060, 2, 29, 0, 0, 0),
	      utc(2088, 2, 29, 0, 0, 0), utc(2128, 2, 29, 0, 0, 0));
}

static void year_rollover(void)
{
	TICKS("59 23 31 12 *", NULL, utc(2026, 12, 31, 23, 59, 0), utc(2027, 12, 31, 23, 59, 0));
	TICKS("0 0 1 1 *", NULL, utc(2027, 1, 1, 0, 0, 0) - 1, utc(2027, 1, 1, 0, 0, 0));
	TICKS("* * * * * *", NULL, utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1, 0, 0, 0));
	TICKS("0 0 * * *", NULL, utc(2026, 12, 31, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
	TICKS("0 0 1 1,7 *", NULL, utc(2026, 7, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), utc(2027, 7, 1, 0, 0, 0));
	/* near the end of the range: 9999, and past it */
	TICKS("0 0 31 12 *", NULL, utc(9999, 1, 1, 0, 0, 0), utc(9999, 12, 31, 0, 0, 0), utc(10000, 12, 31, 0, 0, 0));
}

static void never_is_enotfound(void)
{
	const char *never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 31 2 *", "0 0 0 30-31 2 *"};
	for (size_t i = 0; i < TEST_COUNT(never); i++) {
		dura__cron *c = NULL;
		REQUIRE_RC(dura__cron_parse(&c, never[i]), 0);
		int64_t next = -7;
		CHECK_RC(dura__cron_next(c, NULL, utc(2026, 1, 1, 0, 0, 0), &next), DURA_ENOTFOUND);
		CHECK(next == -7);
		CHECK(strstr(dura_error_last()->message, "400 years") != NULL);
		CHECK_RC(dura__cron_next(c, "Europe/Berlin", utc(2026, 1, 1, 0, 0, 0), &next), DURA_ENOTFOUND);
		dura__cron_free(c);
	}
	/* the times outside the years 1-9999 */
	dura__cron *c = NULL;
	REQUIRE_RC(dura__cron_parse(&c, "* * * * *"), 0);
	int64_t next;
	CHECK_RC(dura__cron_next(c, NULL, INT64_MAX, &next), DURA_EINVAL);
	CHECK_RC(dura__cron_next(c, NULL, INT64_MIN, &next), DURA_EINVAL);
	CHECK_RC(dura__cron_next(c, NULL, utc(10000, 1, 1, 0, 0, 0), &next), DURA_EINVAL);
	CHECK_RC(dura__cron_next(c, NULL, 0, NULL), DURA_EINVAL);
	CHECK_RC(dura__cron_next(NULL, NULL, 0, &next), DURA_EINVAL);
	dura__cron_free(c);
}

/* ---- time zones ------------------------------------------------------------------ */

static void zones(void)
{
	int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
	/* NULL, "" and "UTC" are UTC */
	TICKS("0 9 * * *", NULL, t0, utc(2026, 1, 1, 9, 0, 0));
	TICKS("0 9 * * *", "", t0, utc(2026, 1, 1, 9, 0, 0));
	TICKS("0 9 * * *", "UTC", t0, utc(2026, 1, 1, 9, 0, 0));
	TICKS("0 9 * * *", "Etc/UTC", t0, utc(2026, 1, 1, 9, 0, 0));
	/* 09:00 in Tokyo (+09, no DST) and in Kolkata (+05:30) */
	TICKS("0 9 * * *", "Asia/Tokyo", t0, utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0));
	TICKS("0 9 * * *", "Asia/Kolkata", t0, utc(2026, 1, 1, 3, 30, 0));
	/* the system's tzdata, not an old copy: Mexico City has had no DST since
	 * October 2022 (tzdata 2022f), so 09:00 is 15:00Z in July */
	TICKS("0 9 * * *", "America/Mexico_City", utc(2026, 7, 1, 0, 0, 0), utc(2026, 7, 1, 15, 0, 0));
	/* a whole day in the gap: Samoa went from -10 to +14 at the end of
	 * 29 December 2011, so its 30th never was; noon that day fires at the
	 * first instant after (00:00 on the 31st, 10:00Z on the 30th) */
	TICKS("0 12 * * *", "Pacific/Apia", utc(2011, 12, 29, 0, 0, 0), utc(2011, 12, 29, 22, 0, 0),
	      utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 30, 22, 0, 0));

	const char *unknown[] = {"Mars/Olympus", "Europe/Berlin ", "../etc/passwd", "/etc/localtime", "Europe//Berlin",
	                         "Europe/", "<+05>-5", "a\nb"};
	dura__cron *c = NULL;
	REQUIRE_RC(dura__cron_parse(&c, "* * * * *"), 0);
	for (size_t i = 0; i < TEST_COUNT(unknown); i++) {
		int64_t next = -7;
		CHECK_RC(dura__cron_next(c, unknown[i], t0, &next), DURA_EINVAL);
		CHECK(next == -7);
		CHECK(strstr(dura_error_last()->message, "cron: unknown time zone") != NULL);
		CHECK_RC(dura__cron_zone_check(unknown[i]), DURA_EINVAL);
	}
	CHECK(strstr(dura_error_last()->message, "'a?b'") != NULL);
	CHECK_RC(dura__cron_next(c, "Mars/Olympus", t0, &(int64_t){0}), DURA_EINVAL);
	CHECK(strstr(dura_error_last()->message, "'Mars/Olympus'") != NULL);
	CHECK_RC(dura__cron_zone_check("America/New_York"), 0);
	CHECK_RC(dura__cron_zone_check(NULL), 0);
	CHECK_RC(dura__cron_zone_check("UTC"), 0);
	dura__cron_free(c);
}

/* Europe/Berlin, 2026: CET (+01) to CEST (+02) on Sunday 29 March at
 * 01:00Z (02:00 becomes 03:00), back on Sunday 25 October at 01:00Z
 * (03:00 becomes 02:00, so 02:00-02:59 happens twice). */
static void dst_berlin(void)
{
	const char *z = "Europe/Berlin";
	/* hourly, spring: 02:00 does not exist; its tick is 03:00 CEST, which is
	 * 03:00's own: one tick, none lost */
	TICKS("0 * * * *", z, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 0, 0, 0), utc(2026, 3, 29, 1, 0, 0),
	      utc(2026, 3, 29, 2, 0, 0));
	/* hourly, autumn: 02:00 CEST (00:00Z), not 02:00 CET again (01:00Z), then 03:00 CET */
	TICKS("0 * * * *", z, utc(2026, 10, 24, 23, 0, 0), utc(2026, 10, 25, 0, 0, 0), utc(2026, 10, 25, 2, 0, 0),
	      utc(2026, 10, 25, 3, 0, 0));
	/* ... also when asked from inside the repeated hour */
	TICKS("0 * * * *", z, utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 25, 2, 0, 0));
	TICKS("0 * * * *", z, utc(2026, 10, 25, 1, 0, 0), utc(2026, 10, 25, 2, 0, 0));
	TICKS("0 * * * *", z, utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 25, 2, 0, 0));
	/* daily at 02:30, spring: at the end of the gap, 03:00 CEST = 01:00Z */
	TICKS("30 2 * * *", z, utc(2026, 3, 28, 1, 30, 0), utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 30, 0, 30, 0));
	/* daily at 02:30, autumn: the first 02:30 (CEST, 00:30Z) only */
	TICKS("30 2 * * *", z, utc(2026, 10, 24, 0, 30, 0), utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 26, 1, 30, 0));
	TICKS("30 2 * * *", z, utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 26, 1, 30, 0));
	/* every 15 minutes of 02:xx: the whole gap is one tick */
	TICKS("*/15 2 * * *", z, utc(2026, 3, 28, 1, 45, 0), utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 30, 0, 0, 0));
	/* every minute: straight from 01:59 CET to 03:00 CEST */
	TICKS("* * * * *", z, utc(2026, 3, 29, 0, 58, 0), utc(2026, 3, 29, 0, 59, 0), utc(2026, 3, 29, 1, 0, 0),
	      utc(2026, 3, 29, 1, 1, 0));
	/* every minute in autumn: 02:59 CEST, then 03:00 CET an hour later */
	TICKS("* * * * *", z, utc(2026, 10, 25, 0, 58, 0), utc(2026, 10, 25, 0, 59, 0), utc(2026, 10, 25, 2, 0, 0));
	/* every second across the gap */
	TICKS("* * * * * *", z, utc(2026, 3, 29, 0, 59, 58), utc(2026, 3, 29, 0, 59, 59), utc(2026, 3, 29, 1, 0, 0),
	      utc(2026, 3, 29, 1, 0, 1));
	/* 2100: past the transitions tzdata lists, from its rule for the future */
	TICKS("30 2 * * *", z, utc(2100, 3, 27, 12, 0, 0), utc(2100, 3, 28, 1, 0, 0), utc(2100, 3, 29, 0, 30, 0));
}

/* America/New_York, 2026: EST (-05) to EDT (-04) on Sunday 8 March at
 * 07:00Z (02:00 becomes 03:00), back on Sunday 1 November at 06:00Z
 * (02:00 becomes 01:00, so 01:00-01:59 happens twice). */
static void dst_new_york(void)
{
	const char *z = "America/New_York";
	/* hourly, spring: 01:00 EST (06:00Z), 02:00 -> 03:00 EDT (07:00Z) once, 04:00 EDT */
	TICKS("0 * * * *", z, utc(2026, 3, 8, 5, 30, 0), utc(2026, 3, 8, 6, 0, 0), utc(2026, 3, 8, 7, 0, 0),
	      utc(2026, 3, 8, 8, 0, 0));
	/* hourly, autumn: 01:00 EDT (05:00Z), not 01:00 EST (06:00Z), 02:00 EST (07:00Z) */
	TICKS("0 * * * *", z, utc(2026, 11, 1, 4, 0, 0), utc(2026, 11, 1, 5, 0, 0), utc(2026, 11, 1, 7, 0, 0),
	      utc(2026, 11, 1, 8, 0, 0));
	TICKS("0 * * * *", z, utc(2026, 11, 1, 6, 0, 0), utc(2026, 11, 1, 7, 0, 0));
	/* daily at 02:30, spring: 03:00 EDT = 07:00Z; then 02:30 EDT = 06:30Z */
	TICKS("30 2 * * *", z, utc(2026, 3, 7, 12, 0, 0), utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 6, 30, 0));
	/* daily at 02:30, autumn: 02:30 happens once, in EST (07:30Z) */
	TICKS("30 2 * * *", z, utc(2026, 10, 31, 12, 0, 0), utc(2026, 11, 1, 7, 30, 0), utc(2026, 11, 2, 7, 30, 0));
	/* daily at 01:30, autumn: the first 01:30 (EDT, 05:30Z), not the second (06:30Z) */
	TICKS("30 1 * * *", z, utc(2026, 10, 31, 12, 0, 0), utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0));
	TICKS("30 1 * * *", z, utc(2026, 11, 1, 6, 0, 0), utc(2026, 11, 2, 6, 30, 0));
}

/* ---- allocation, threads ----------------------------------------------------------- */

static int fail_now;
static void *failing_malloc(size_t n)
{
	return fail_now ? NULL : malloc(n);
}

static void allocation_failure(void)
{
	dura_allocator a = {failing_malloc, NULL, NULL};
	dura_set_allocator(&a);
	fail_now = 1;
	dura__cron *c = (dura__cron *)&c;
	int rc = dura__cron_parse(&c, "0 0 * * *");
	fail_now = 0;
	CHECK(rc == DURA_ENOMEM);
	CHECK(c == NULL);
	CHECK_RC(dura__cron_parse(&c, "0 0 * * *"), 0);
	dura__cron_free(c);
	dura_set_allocator(NULL);
	dura__cron_free(NULL);
}

static dura__cron *shared_cron;

static void *next_in_loop(void *arg)
{
	const char *tz = arg;
	int64_t after = utc(2026, 3, 28, 0, 0, 0), next = 0;
	for (int i = 0; i < 200; i++) {
		if (dura__cron_next(shared_cron, tz, after, &next) != 0)
			return "failed";
		after = next;
	}
	/* 200 hours after 2026-03-28T00:00Z, in Berlin's hours (one hour of the
	 * 29th is missing in local time, but not in instants) */
	return next == utc(2026, 3, 28, 0, 0, 0) + 200 * INT64_C(3600000) ? NULL : "wrong tick";
}

static void threads(void)
{
	REQUIRE_RC(dura__cron_parse(&shared_cron, "0 * * * *"), 0);
	pthread_t t[4];
	const char *tz[4] = {"Europe/Berlin", "UTC", "Europe/Berlin", "Asia/Tokyo"};
	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, next_in_loop, (void *)tz[i]) == 0);
	for (int i = 0; i < 4; i++) {
		void *res = NULL;
		pthread_join(t[i], &res);
		if (res)
			fprintf(stderr, "    thread %d (%s): %s\n", i, tz[i], (const char *)res);
		CHECK(res == NULL);
	}
	dura__cron_free(shared_cron);
}

int main(int argc, char **argv)
{
	static const test_case tests[] = {
		{"forms", forms},
		{"names", names},
		{"five_and_six_fields", five_and_six_fields},
		{"every_second", every_second},
		{"errors_name_the_field", errors_name_the_field},
		{"day_of_month_or_day_of_week", day_of_month_or_day_of_week},
		{"macros", macros},
		{"month_ends_and_leap_years", month_ends_and_leap_years},
		{"year_rollover", year_rollover},
		{"never_is_enotfound", never_is_enotfound},
		{"zones", zones},
		{"dst_berlin", dst_berlin},
		{"dst_new_york", dst_new_york},
		{"allocation_failure", allocation_failure},
		{"threads", threads},
	};
	return test_run_all("cron", tests, TEST_COUNT(tests), argc > 1 ? argv[1] : NULL);
}
