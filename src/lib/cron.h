/*
 * cron.h - cron expressions and their next tick, for schedules. Internal;
 * never installed.
 *
 * Syntax. Five fields, "min hour dom month dow", or six with seconds in
 * front, "sec min hour dom month dow", separated by spaces or tabs:
 *
 *   second 0-59, minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
 *   JAN-DEC, day of week 0-7 or SUN-SAT (0 and 7 are both Sunday); names
 *   in any case.
 *
 * Each field is a list "a,b,..." of items, each item one of (S is the
 * step "/n", written apart here only because a C comment would end)
 *   *        every value          a      one value
 *   a-b      a through b          * S    every n-th value from the lowest
 *   a-b S    every n-th of a-b    a S    every n-th from a to the highest
 * (the highest day of week of "*" and "a/n" is 6: Sunday is 0 there). A
 * step is 1 to the field's highest value; a range must not run backwards.
 * Without the seconds field a tick is at second 0.
 *
 * Instead of the fields, one macro: @yearly (or @annually) "0 0 1 1 *",
 * @monthly "0 0 1 * *", @weekly "0 0 * * 0", @daily (or @midnight)
 * "0 0 * * *", @hourly "0 * * * *". There is no @reboot or @minutely.
 *
 * Days (Vixie cron's rule): when both day fields are restricted, a day
 * matches if EITHER matches ("0 0 1 * MON" is the 1st and every Monday);
 * when either is unrestricted, both must match. As in Vixie cron and
 * cronie, a field is unrestricted when it begins with '*': "*" is, and so
 * is "* S" - "0 0 * S * MON" with S = "/2" is the odd days that are
 * Mondays.
 *
 * Anything else is DURA_EINVAL with a message naming the field by its
 * position and name, e.g. "cron: field 3 (day of month) '32' is out of
 * range 1-31". An expression is at most DURA__CRON_MAX_LEN bytes.
 *
 * Time zones. A tick is a wall-clock time in the schedule's zone: NULL,
 * "" or "UTC" is UTC; any other name is looked up in the system's tzdata
 * (/usr/share/zoneinfo, or $TZDIR) through GLib's GTimeZone, so the rules
 * are those of the installed tzdata package. Changes of a zone's offset
 * (daylight saving time, or a zone moving to another offset) follow the
 * rules of Vixie cron for fixed times:
 *
 *   - a wall-clock time that does not exist (the gap when clocks spring
 *     forward, e.g. 02:30 in Europe/Berlin on the last Sunday of March)
 *     fires once, at the first instant after the gap (03:00 CEST). All the
 *     times of the gap that match fire as that one tick, which is also
 *     the tick of 03:00 itself when that matches: nothing is lost, nothing
 *     fires twice.
 *   - a wall-clock time that happens twice (when clocks fall back) fires
 *     once, at its first occurrence. So an hourly schedule fires at 02:00
 *     CEST and next at 03:00 CET on the last Sunday of October: two hours
 *     apart in real time (every matching time of the repeated hour is
 *     skipped the second time round, also for schedules finer than an
 *     hour).
 *
 * Thread-safe: a parsed expression is read-only, and each thread keeps
 * the last few zones it loaded (reading them again after an hour, so that
 * an updated tzdata is seen) - no locks. GLib allocates the zones; it
 * aborts when out of memory, as GLib does.
 */
#ifndef DURA_CRON_H
#define DURA_CRON_H

#include <stdint.h>

/* the longest expression accepted, in bytes */
#define DURA__CRON_MAX_LEN 256

typedef struct dura__cron dura__cron;

/* Parse expr into *out (NULL on failure): 0, DURA_EINVAL naming the bad
 * field, or DURA_ENOMEM. Free with dura__cron_free. */
int dura__cron_parse(dura__cron **out, const char *expr);
void dura__cron_free(dura__cron *c);

/* The first tick of c strictly after after_ms (UTC, ms since the epoch),
 * in zone tz (see above), in *next_ms (a whole second): 0; DURA_EINVAL
 * for an unknown zone (named in the message) or an after_ms outside the
 * years 1-9999; DURA_ENOTFOUND when c never ticks ("0 0 30 2 *"). The
 * search covers 400 years of wall-clock time - the Gregorian calendar's
 * whole cycle, weekdays included - so ENOTFOUND means never, and comes
 * after a bounded search. */
int dura__cron_next(const dura__cron *c, const char *tz, int64_t after_ms, int64_t *next_ms);

/* 0 if tz names a zone dura__cron_next accepts, DURA_EINVAL naming it
 * otherwise: for checking a schedule's zone when it is created. */
int dura__cron_zone_check(const char *tz);

#endif
