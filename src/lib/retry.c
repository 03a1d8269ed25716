/*
 * retry.c - exponential backoff with jitter and a cap.
 */
#include "engine.h"

#include <math.h>
#include <sys/random.h>

/* Delay before attempt `attempt + 1`, after `attempt` failures (>= 1). */
int64_t dura__backoff_ms(const dura_node_options *o, int attempt)
{
	double d = (double)o->backoff_initial_ms;
	for (int i = 1; i < attempt && d < (double)o->backoff_max_ms; i++)
		d *= o->backoff_multiplier;
	if (d > (double)o->backoff_max_ms)
		d = (double)o->backoff_max_ms;
	if (o->jitter > 0) {
		/* "equal jitter": keep (1 - jitter) of the delay, randomise the rest */
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint32_t)dura_now_ms();
		d = d * (1.0 - o->jitter) + d * o->jitter * ((double)r / 4294967296.0);
	}
	return d >= 9.0e18 ? INT64_MAX : (int64_t)d;
}
