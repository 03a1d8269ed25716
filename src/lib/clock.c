/*
 * clock.c - UTC milliseconds and the one text form of a timestamp dura
 * stores in SQL: "YYYY-MM-DD HH:MM:SS.mmm", which sorts as time does and
 * compares with the SQL servers' own DATETIME(3) text.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t dura_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dura__sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), so no timegm/TZ is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t yy = (int64_t)yoe + era * 400;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

void dura_time_format(char out[24], int64_t ms)
{
	int64_t days = ms / 86400000, rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	int y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	unsigned s = (unsigned)(rem / 1000), milli = (unsigned)(rem % 1000);
	if (y < 0 || y > 9999) {
		snprintf(out, 24, "%s", y < 0 ? "0000-01-01 00:00:00.000" : "9999-12-31 23:59:59.999");
		return;
	}
	/* fixed-width digits by hand: every field is in range here */
	unsigned v[] = {(unsigned)y, mo, d, s / 3600, s / 60 % 60, s % 60, milli};
	static const int width[] = {4, 2, 2, 2, 2, 2, 3};
	static const char sep[] = "-- ::.";
	char *o = out;
	for (int i = 0; i < 7; i++) {
		for (int k = width[i] - 1; k >= 0; k--) {
			o[k] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
		o += width[i];
		if (i < 6)
			*o++ = sep[i];
	}
	*o = '\0';
}

static int digits(const char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

int dura_time_parse(int64_t *out, const char *t)
{
	int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
	if (!out || !t || strlen(t) < 10)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "timestamp is missing or too short");
	if (digits(t, 4, &y) || t[4] != '-' || digits(t + 5, 2, &mo) || t[7] != '-' || digits(t + 8, 2, &d))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "timestamp '%.32s' is not YYYY-MM-DD", t);
	const char *p = t + 10;
	if (*p == ' ' || *p == 'T') {
		if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) || p[6] != ':' || digits(p + 7, 2, &s))
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "timestamp '%.32s' has a bad time", t);
		p += 9;
		if (*p == '.') {
			int scale = 100;
			p++;
			while (*p >= '0' && *p <= '9') {
				ms += (*p - '0') * scale;
				scale /= 10;
				p++;
			}
		}
		if (*p == 'Z')
			p++;
		else if (*p == '+' && strcmp(p, "+00") == 0)
			p += 3;
		else if (*p == '+' && strcmp(p, "+00:00") == 0)
			p += 6;
	}
	if (*p != '\0')
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "timestamp '%.32s' has trailing text", t);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
	    s > 60)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "timestamp '%.32s' is out of range", t);
	*out = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
	return 0;
}
