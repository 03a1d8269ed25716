/*
 * fuzz_cron.c - cron expressions through dura__cron_parse, and the next
 * tick of those that parse (src/lib/cron.h).
 *
 * The input is the expression (up to its first NUL); 8 bytes after the
 * NUL, when there, pick one more instant to start from. A refused
 * expression must be DURA_EINVAL with a "cron: " message and no result.
 * A parsed one is asked for its next tick after a few instants - the
 * epoch, Europe/Berlin's DST changes of 2026, the one from the input - in
 * UTC and in Europe/Berlin, and every answer must be a tick: a whole
 * second, strictly after the instant asked about, and its own answer
 * when asked again from just before it; ENOTFOUND only if every instant
 * and zone say so.
 */
#include "fuzz.h"

#include "cron.h"

static void check_next(const dura__cron *c, const char *tz, int64_t after, int *found, int *notfound)
{
	int64_t next = 0, again = 0;
	int rc = dura__cron_next(c, tz, after, &next);
	fuzz_check_rc(rc);
	FUZZ_CHECK(rc == DURA_OK || rc == DURA_ENOTFOUND);
	if (rc == DURA_ENOTFOUND) {
		*notfound = 1;
		return;
	}
	*found = 1;
	FUZZ_CHECK(next > after);
	FUZZ_CHECK(next % 1000 == 0);
	/* a tick: asked from just before it, it is the answer again; and the
	 * answer is the FIRST tick after `after`, so from anywhere in
	 * [after, next) it is the same */
	FUZZ_CHECK(dura__cron_next(c, tz, next - 1, &again) == DURA_OK);
	FUZZ_CHECK(again == next);
	int64_t mid = after + (next - after) / 2;
	FUZZ_CHECK(dura__cron_next(c, tz, mid, &again) == DURA_OK);
	FUZZ_CHECK(again == next);
	/* and the next one is later */
	if (next < INT64_C(253402300799000)) {
		int rc2 = dura__cron_next(c, tz, next, &again);
		FUZZ_CHECK(rc2 == DURA_OK || rc2 == DURA_ENOTFOUND);
		if (rc2 == DURA_OK)
			FUZZ_CHECK(again > next);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parts p;
	fuzz_split(&p, data, size, 2);
	const char *expr = p.part[0];
	dura__cron *c = (dura__cron *)&p;
	int rc = dura__cron_parse(&c, expr);
	fuzz_check_rc(rc);
	if (rc != DURA_OK) {
		FUZZ_CHECK(rc == DURA_EINVAL);
		FUZZ_CHECK(c == NULL);
		const char *msg = dura_error_last()->message;
		FUZZ_CHECK(strncmp(msg, "cron: ", 6) == 0);
		/* messages quote at most 32 bytes of the input, never control bytes */
		for (const char *m = msg; *m; m++)
			FUZZ_CHECK((unsigned char)*m >= 0x20);
		fuzz_parts_free(&p);
		return 0;
	}
	FUZZ_CHECK(c != NULL);

	int64_t after[4] = {
		0,
		INT64_C(1774745940000), /* 2026-03-29T00:59:00Z, a minute before Berlin's gap */
		INT64_C(1792890000000), /* 2026-10-25T01:00:00Z, Berlin's repeated hour starts again */
		INT64_C(1735689600000), /* 2025-01-01, or what the input says */
	};
	if (p.n > 1) {
		const uint8_t *tail = (const uint8_t *)p.part[1];
		size_t n = size - (size_t)(p.part[1] - p.buf);
		uint64_t v = 0;
		for (size_t i = 0; i < n && i < 8; i++)
			v = v << 8 | tail[i];
		/* within 1970-2200, at any millisecond */
		after[3] = (int64_t)(v % UINT64_C(7258118400000));
	}
	int found = 0, notfound = 0;
	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
		check_next(c, NULL, after[i], &found, &notfound);
		check_next(c, "Europe/Berlin", after[i], &found, &notfound);
	}
	/* whether it ever ticks depends on the wall clock only: everywhere or nowhere */
	FUZZ_CHECK(!(found && notfound));
	dura__cron_free(c);
	fuzz_parts_free(&p);
	return 0;
}
