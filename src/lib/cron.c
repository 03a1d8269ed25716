/*
 * cron.c - cron expressions (cron.h) and their next tick.
 *
 * A parsed expression is one bit set per field. The next tick is found on
 * the wall clock - civil date and time, with no zone - by moving the
 * fields forward as far as each set allows, and each matching wall-clock
 * time found is then mapped to an instant in the zone. That map (first
 * occurrence of a repeated time, end of the gap for a skipped one) never
 * goes backwards as the wall clock goes forward, so the first matching
 * time whose instant is late enough gives the answer.
 *
 * The zone's offsets come from GLib's GTimeZone, which reads the system's
 * tzdata; UTC needs none.
 */
#include "cron.h"
#include "internal.h"

#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dura__cron {
	uint64_t bits[6]; /* second, minute, hour, dom, month, dow: bit v set for value v */
	int dom_star;     /* the day fields began with '*' (Vixie's DOM_STAR, DOW_STAR) */
	int dow_star;
};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field {
	const char *name;
	int lo, hi;  /* the values an item may name */
	int star_hi; /* the highest value of "*" and "a/n" (6 for dow: 7 is 0 again) */
	const char *const *names; /* names[i] is value i + names_base */
	int nnames, names_base;
} fields[F_COUNT] = {
	{"second", 0, 59, 59, NULL, 0, 0},
	{"minute", 0, 59, 59, NULL, 0, 0},
	{"hour", 0, 23, 23, NULL, 0, 0},
	{"day of month", 1, 31, 31, NULL, 0, 0},
	{"month", 1, 12, 12, month_names, 12, 1},
	{"day of week", 0, 7, 6, day_names, 7, 0},
};

/* ---- parsing ---------------------------------------------------------------- */

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static int lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* n bytes of s for a message: at most 32, anything unprintable as '?', so
 * that a message never carries control bytes or a whole long input. */
static const char *shown(char buf[40], const char *s, size_t n)
{
	size_t i, m = n > 32 ? 32 : n;
	for (i = 0; i < m; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n > m) {
		memcpy(buf + m, "...", 3);
		m += 3;
	}
	buf[m] = '\0';
	return buf;
}

/* What one field is being parsed: for the messages, its position in the
 * expression as written (1-based) and its kind. */
typedef struct field_ctx {
	const struct field *f;
	int pos;
} field_ctx;

#define FIELD_ERR(fc, fmt, ...)                                                                               \
	dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: field %d (%s) " fmt, (fc)->pos, (fc)->f->name, \
	                      __VA_ARGS__)

/* A value at *p (digits, or a name where the field has names) into *v;
 * *p moves past it. */
static int parse_value(const field_ctx *fc, const char **p, const char *end, int *v)
{
	const char *s = *p;
	char buf[40];
	if (s < end && *s >= '0' && *s <= '9') {
		long n = 0;
		const char *q = s;
		/* the cap keeps n small; the range check below refuses it */
		for (; q < end && *q >= '0' && *q <= '9'; q++)
			if (n < 1000000)
				n = n * 10 + (*q - '0');
		*p = q;
		if (n < fc->f->lo || n > fc->f->hi)
			return FIELD_ERR(fc, "'%s' is out of range %d-%d", shown(buf, s, (size_t)(q - s)), fc->f->lo,
			                 fc->f->hi);
		*v = (int)n;
		return 0;
	}
	if (s < end && is_alpha(*s)) {
		const char *q = s;
		while (q < end && is_alpha(*q))
			q++;
		*p = q;
		size_t n = (size_t)(q - s);
		for (int i = 0; i < fc->f->nnames && n == 3; i++) {
			const char *name = fc->f->names[i];
			if (lower(s[0]) == name[0] && lower(s[1]) == name[1] && lower(s[2]) == name[2]) {
				*v = i + fc->f->names_base;
				return 0;
			}
		}
		if (fc->f->names)
			return FIELD_ERR(fc, "'%s' is not a number or a %s name (%s-%s)", shown(buf, s, n),
			                 fc->f == &fields[F_MON] ? "month" : "day", fc->f == &fields[F_MON] ? "JAN" : "SUN",
			                 fc->f == &fields[F_MON] ? "DEC" : "SAT");
		return FIELD_ERR(fc, "'%s' is not a number", shown(buf, s, n));
	}
	if (s >= end)
		return FIELD_ERR(fc, "%s", "has a value missing");
	return FIELD_ERR(fc, "has '%s' where a value should be", shown(buf, s, 1));
}

/* One item of a field's list, [s, end): its values into *bits. */
static int parse_item(const field_ctx *fc, const char *s, const char *end, uint64_t *bits)
{
	const struct field *f = fc->f;
	const char *p = s;
	char buf[40], buf2[40];
	int lo, hi, step = 1, single = 0, rc;
	if (s == end)
		return FIELD_ERR(fc, "%s", "has an empty list item");
	if (*p == '*') {
		lo = f->lo;
		hi = f->star_hi;
		p++;
	} else {
		if ((rc = parse_value(fc, &p, end, &lo)))
			return rc;
		hi = lo;
		single = 1;
		if (p < end && *p == '-') {
			p++;
			if ((rc = parse_value(fc, &p, end, &hi)))
				return rc;
			single = 0;
			if (hi < lo)
				return FIELD_ERR(fc, "range '%s' runs backwards", shown(buf, s, (size_t)(p - s)));
		}
	}
	if (p < end && *p == '/') {
		const char *q = ++p;
		long n = 0;
		for (; q < end && *q >= '0' && *q <= '9'; q++)
			if (n < 1000000)
				n = n * 10 + (*q - '0');
		if (q == p)
			return FIELD_ERR(fc, "step in '%s' is not a number", shown(buf, s, (size_t)(end - s)));
		if (n < 1 || n > f->hi)
			return FIELD_ERR(fc, "step '%s' is out of range 1-%d", shown(buf, p, (size_t)(q - p)), f->hi);
		step = (int)n;
		p = q;
		/* "a/n": from a up to the highest value */
		if (single)
			hi = f->star_hi > lo ? f->star_hi : lo;
	}
	if (p != end)
		return FIELD_ERR(fc, "has '%s' after '%s'", shown(buf, p, (size_t)(end - p)),
		                 shown(buf2, s, (size_t)(p - s)));
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;
}

/* One field, [s, end): its bit set into c. */
static int parse_field(dura__cron *c, int kind, int pos, const char *s, const char *end)
{
	field_ctx fc = {&fields[kind], pos};
	uint64_t bits = 0;
	int rc;
	for (const char *p = s;; p++) {
		const char *comma = p;
		while (comma < end && *comma != ',')
			comma++;
		if ((rc = parse_item(&fc, p, comma, &bits)))
			return rc;
		if (comma == end)
			break;
		p = comma;
	}
	if (kind == F_DOW && (bits & (UINT64_C(1) << 7))) /* 7 is Sunday too */
		bits = (bits & ~(UINT64_C(1) << 7)) | 1;
	c->bits[kind] = bits;
	/* Vixie's rule looks at the field's first character only */
	if (kind == F_DOM)
		c->dom_star = *s == '*';
	if (kind == F_DOW)
		c->dow_star = *s == '*';
	return 0;
}

static const struct macro {
	const char *name, *fields;
} macros[] = {
	{"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
	{"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
	{"@hourly", "0 0 * * * *"},
};

static int parse_fields(dura__cron *c, const char *s, const char *end)
{
	const char *start[8], *stop[8];
	int n = 0;
	char buf[40];
	for (const char *p = s; p < end;) {
		while (p < end && is_space(*p))
			p++;
		if (p == end)
			break;
		const char *q = p;
		while (q < end && !is_space(*q))
			q++;
		if (n < 8) {
			start[n] = p;
			stop[n] = q;
		}
		n++;
		p = q;
	}
	if (n == 1 && *start[0] == '@') {
		size_t len = (size_t)(stop[0] - start[0]);
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
			const char *m = macros[i].name;
			size_t k = 0;
			while (k < len && m[k] && lower(start[0][k]) == m[k])
				k++;
			if (k == len && !m[k])
				return parse_fields(c, macros[i].fields, macros[i].fields + strlen(macros[i].fields));
		}
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "cron: unknown macro '%s' (@yearly, @annually, @monthly, @weekly, "
		                             "@daily, @midnight or @hourly)",
		                             shown(buf, start[0], len));
	}
	if (n > 1 && *start[0] == '@')
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: a macro such as '%s' takes no other fields",
		                             shown(buf, start[0], (size_t)(stop[0] - start[0])));
	if (n != 5 && n != 6)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: expected 5 or 6 fields, got %d", n);
	int first = n == 6 ? F_SEC : F_MIN;
	if (n == 5)
		c->bits[F_SEC] = 1; /* second 0 */
	for (int i = 0; i < n; i++) {
		int rc = parse_field(c, first + i, i + 1, start[i], stop[i]);
		if (rc)
			return rc;
	}
	return 0;
}

int dura__cron_parse(dura__cron **out, const char *expr)
{
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: no place for the result");
	*out = NULL;
	if (!expr)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: no expression");
	size_t len = strnlen(expr, DURA__CRON_MAX_LEN + 1);
	if (len > DURA__CRON_MAX_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: expression is longer than %d bytes",
		                             DURA__CRON_MAX_LEN);
	const char *s = expr, *end = expr + len;
	while (s < end && is_space(*s))
		s++;
	if (s == end)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: empty expression");
	dura__cron *c = dura_malloc(sizeof(*c));
	if (!c)
		return dura_error_oom("");
	memset(c, 0, sizeof(*c));
	int rc = parse_fields(c, s, end);
	if (rc) {
		dura_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void dura__cron_free(dura__cron *c)
{
	dura_free(c);
}

/* ---- the civil calendar --------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms: exact for any year here). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : n[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* the lowest value >= v in bits, or -1 */
static int next_bit(uint64_t bits, int v)
{
	if (v > 63)
		return -1;
	bits &= ~UINT64_C(0) << v;
	return bits ? __builtin_ctzll(bits) : -1;
}

static int day_matches(const dura__cron *c, int64_t days, int d)
{
	int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
	int dom = (int)(c->bits[F_DOM] >> d & 1), dow = (int)(c->bits[F_DOW] >> wd & 1);
	return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* The first wall-clock time (seconds since 1970-01-01 00:00:00 on the
 * wall clock) >= w that c matches, into *w: 1, or 0 when there is none
 * within the 400 years after w. Each step moves one field to the next
 * value its set allows, or carries into the field above, zeroing those
 * below. */
static int next_wall(const dura__cron *c, int64_t *w)
{
	int64_t days = floor_div(*w, 86400), y;
	int secs = (int)(*w - days * 86400), mo, d;
	int h = secs / 3600, mi = secs / 60 % 60, s = secs % 60;
	civil_from_days(days, &y, &mo, &d);
	int64_t last_year = y + 400;
	for (;;) {
		if (y > last_year)
			return 0;
		if (mo > 12 || !(c->bits[F_MON] >> mo & 1)) {
			int m2 = next_bit(c->bits[F_MON], mo);
			if (m2 < 0) {
				y++;
				m2 = next_bit(c->bits[F_MON], 1);
			}
			mo = m2;
			d = 1;
			h = mi = s = 0;
			continue;
		}
		if (d > days_in_month(y, mo)) {
			mo++;
			d = 1;
			h = mi = s = 0;
			continue;
		}
		if (!day_matches(c, days_from_civil(y, mo, d), d)) {
			/* with the day of week unrestricted, the day of month must match */
			int d2 = c->dow_star ? next_bit(c->bits[F_DOM], d + 1) : d + 1;
			d = d2 < 0 ? 32 : d2;
			h = mi = s = 0;
			continue;
		}
		int h2 = next_bit(c->bits[F_HOUR], h);
		if (h2 < 0) {
			d++;
			h = mi = s = 0;
			continue;
		}
		if (h2 != h) {
			h = h2;
			mi = s = 0;
		}
		int mi2 = next_bit(c->bits[F_MIN], mi);
		if (mi2 < 0) {
			h++;
			mi = s = 0;
			continue;
		}
		if (mi2 != mi) {
			mi = mi2;
			s = 0;
		}
		int s2 = next_bit(c->bits[F_SEC], s);
		if (s2 < 0) {
			mi++;
			s = 0;
			continue;
		}
		*w = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s2;
		return 1;
	}
}

/* ---- zones ------------------------------------------------------------------------- */

/* The zone's offset (seconds east of UTC) at instant u (seconds); NULL is UTC. */
static int64_t zone_off(GTimeZone *z, int64_t u)
{
	if (!z)
		return 0;
	return g_time_zone_get_offset(z, g_time_zone_find_interval(z, G_TIME_TYPE_UNIVERSAL, u));
}

/* The first instant in (lo, hi] whose offset is not lo's, given that hi's
 * is not: the instant the zone changed offset. */
static int64_t zone_change(GTimeZone *z, int64_t lo, int64_t hi)
{
	int64_t off = zone_off(z, lo);
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (zone_off(z, mid) == off)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* The instant (seconds) of wall-clock time w: its first occurrence, or
 * the first instant after the gap it falls in (cron.h). Offsets are less
 * than a day and tzdata's zones change theirs far less often than daily,
 * so the offsets a day either side of w are the only two candidates: w
 * exists once, twice (both valid: the first) or not at all (neither). */
static int64_t wall_to_instant(GTimeZone *z, int64_t w)
{
	if (!z)
		return w;
	int64_t oa = zone_off(z, w - 86400), ob = zone_off(z, w + 86400);
	int64_t ca = w - oa, cb = w - ob;
	int va = zone_off(z, ca) == oa, vb = zone_off(z, cb) == ob;
	if (va && vb)
		return ca < cb ? ca : cb;
	if (va)
		return ca;
	if (vb)
		return cb;
	if (ob > oa) /* a gap: the zone changed offset between cb and ca */
		return zone_change(z, cb, ca);
	return ca; /* no rule of tzdata comes here; keep going forward */
}

/* A zone name as tzdata spells one: letters, digits and "/_+-", no
 * leading '/' or '-' and no empty part, so that the lookup never leaves
 * the tzdata directory nor reads a POSIX TZ rule with punctuation. */
static int zone_name_ok(const char *tz)
{
	size_t n = strlen(tz);
	if (n > 64 || tz[0] == '/' || tz[0] == '-' || tz[n - 1] == '/')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = tz[i];
		if (!(is_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '+' || ch == '-'))
			return 0;
		if (ch == '/' && tz[i + 1] == '/')
			return 0;
	}
	return 1;
}

static int is_utc(const char *tz)
{
	return !tz || !*tz || strcmp(tz, "UTC") == 0;
}

/* Each thread keeps the zones it used last: GLib reads and parses the
 * zone's file on every g_time_zone_new_identifier (a few hundred us),
 * against well under a microsecond for an offset. Per thread, so there is
 * no lock (nor one for fork() to leave locked); an entry is read again
 * after an hour, so that an updated tzdata package is seen. */
#define ZONE_CACHE 8
#define ZONE_CACHE_SECONDS 3600
typedef struct zone_cache {
	struct {
		char name[72];
		GTimeZone *z;
		int64_t loaded; /* CLOCK_MONOTONIC seconds */
	} e[ZONE_CACHE];
	int next; /* the entry to replace next */
} zone_cache;

static pthread_key_t zone_cache_key;
static pthread_once_t zone_cache_once = PTHREAD_ONCE_INIT;
static int zone_cache_ok;

static void zone_cache_free(void *p)
{
	zone_cache *zc = p;
	for (int i = 0; i < ZONE_CACHE; i++)
		if (zc->e[i].z)
			g_time_zone_unref(zc->e[i].z);
	free(zc);
}

static void zone_cache_init(void)
{
	zone_cache_ok = pthread_key_create(&zone_cache_key, zone_cache_free) == 0;
}

/* A new reference to zone `tz` (a name zone_name_ok accepts), or NULL
 * when the system has no such zone. The cache is the C library's memory,
 * not dura's allocator's: without it, zones are only slower. */
static GTimeZone *zone_load(const char *tz)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec;
	pthread_once(&zone_cache_once, zone_cache_init);
	zone_cache *zc = zone_cache_ok ? pthread_getspecific(zone_cache_key) : NULL;
	if (!zc && zone_cache_ok && (zc = calloc(1, sizeof(*zc))) && pthread_setspecific(zone_cache_key, zc)) {
		free(zc);
		zc = NULL;
	}
	if (zc) {
		for (int i = 0; i < ZONE_CACHE; i++)
			if (zc->e[i].z && strcmp(zc->e[i].name, tz) == 0 && now - zc->e[i].loaded < ZONE_CACHE_SECONDS)
				return g_time_zone_ref(zc->e[i].z);
	}
	GTimeZone *z = g_time_zone_new_identifier(tz);
	if (z && zc) {
		int i = zc->next;
		zc->next = (i + 1) % ZONE_CACHE;
		if (zc->e[i].z)
			g_time_zone_unref(zc->e[i].z);
		snprintf(zc->e[i].name, sizeof(zc->e[i].name), "%s", tz);
		zc->e[i].z = g_time_zone_ref(z);
		zc->e[i].loaded = now;
	}
	return z;
}

/* The zone tz into *z (NULL for UTC; g_time_zone_unref it otherwise). */
static int zone_open(const char *tz, GTimeZone **z)
{
	char buf[40];
	*z = NULL;
	if (is_utc(tz))
		return 0;
	if (zone_name_ok(tz))
		*z = zone_load(tz);
	if (!*z)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "cron: unknown time zone '%s' (not a name in the system's tzdata)",
		                             shown(buf, tz, strlen(tz)));
	return 0;
}

int dura__cron_zone_check(const char *tz)
{
	GTimeZone *z;
	int rc = zone_open(tz, &z);
	if (z)
		g_time_zone_unref(z);
	return rc;
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */
#define MIN_AFTER_MS INT64_C(-62135596800000)
#define MAX_AFTER_MS INT64_C(253402300799999)

int dura__cron_next(const dura__cron *c, const char *tz, int64_t after_ms, int64_t *next_ms)
{
	if (!c || !next_ms)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "cron: no expression or no place for the result");
	if (after_ms < MIN_AFTER_MS || after_ms > MAX_AFTER_MS)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "cron: time %lld ms is outside the years 1-9999", (long long)after_ms);
	GTimeZone *z;
	int rc = zone_open(tz, &z);
	if (rc)
		return rc;
	/* ticks are whole seconds: the first candidate instant is t */
	int64_t t = floor_div(after_ms, 1000) + 1;
	/* The wall-clock time just after t - 1's is the earliest that can map
	 * to t or later; but when t is in the second pass of a repeated hour,
	 * the times up to the end of that hour map to their first pass, before
	 * t, so start at its end. */
	int64_t w = t - 1 + zone_off(z, t - 1) + 1;
	int64_t first = wall_to_instant(z, w);
	if (first < t)
		w = zone_change(z, first, t) + zone_off(z, first);
	rc = DURA_ENOTFOUND;
	while (next_wall(c, &w)) {
		int64_t u = wall_to_instant(z, w);
		if (u >= t) {
			*next_ms = u * 1000;
			rc = 0;
			break;
		}
		w++; /* mapped before t: only next to an odd change of offset */
	}
	if (z)
		g_time_zone_unref(z);
	if (rc)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
		                             "cron: the expression has no tick in the 400 years after the time given");
	return 0;
}
