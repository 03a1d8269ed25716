/*
 * bench_uuid - the cost of one run id (UUIDv7), against the generator as
 * it was before ids were made fork-safe, in the same run.
 *
 *   before    the old generator: the same code, no fork handling (ids
 *             collide across fork(); kept here only as the baseline)
 *   dura      dura_uuid7 today: the child forgets the random bytes at
 *             fork (pthread_atfork), nothing is checked per id
 *   pid check the alternative of comparing getpid() on every id
 *   getrandom the alternative of fresh randomness for every id
 *
 * usage: bench_uuid [IDS]
 */
#include "raw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- the baseline: the generator before fork safety -------------------------------- */

static pthread_mutex_t old_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local unsigned char old_pool[512];
static _Thread_local size_t old_left;
static int64_t old_last_ms;
static unsigned old_counter;

static void format(char *out, unsigned char *b, int64_t ms, unsigned c)
{
	b[0] = (unsigned char)(ms >> 40);
	b[1] = (unsigned char)(ms >> 32);
	b[2] = (unsigned char)(ms >> 24);
	b[3] = (unsigned char)(ms >> 16);
	b[4] = (unsigned char)(ms >> 8);
	b[5] = (unsigned char)ms;
	b[6] = (unsigned char)(0x70 | ((c >> 8) & 0x0F));
	b[7] = (unsigned char)(c & 0xFF);
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*out++ = '-';
		*out++ = hex[b[i] >> 4];
		*out++ = hex[b[i] & 15];
	}
	*out = '\0';
}

/* mode 0: pooled bytes; 1: pooled, with a getpid() check; 2: getrandom per id */
static int old_uuid7(char *out, int mode)
{
	static pid_t owner;
	unsigned char b[16];
	if (mode == 1) {
		pid_t p = getpid();
		if (p != owner) {
			owner = p;
			old_left = 0;
		}
	}
	if (mode == 2) {
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			return -1;
	} else {
		if (old_left < sizeof(b)) {
			if (getrandom(old_pool, sizeof(old_pool), 0) != (ssize_t)sizeof(old_pool))
				return -1;
			old_left = sizeof(old_pool);
		}
		memcpy(b, old_pool + sizeof(old_pool) - old_left, sizeof(b));
		memset(old_pool + sizeof(old_pool) - old_left, 0, sizeof(b));
		old_left -= sizeof(b);
	}
	int64_t ms = dura_now_ms();
	pthread_mutex_lock(&old_lock);
	if (ms <= old_last_ms) {
		if (++old_counter > 0xFFF) {
			old_last_ms++;
			old_counter = 0;
		}
		ms = old_last_ms;
	} else {
		old_last_ms = ms;
		old_counter = (unsigned)(b[6] & 0x03) << 8 | b[7];
	}
	unsigned c = old_counter;
	pthread_mutex_unlock(&old_lock);
	format(out, b, ms, c);
	return 0;
}

/* ns per id over n ids; the best of a few rounds (the machine is shared) */
static double ns_per_id(int which, int n)
{
	char id[DURA_UUID_LEN + 1];
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		double t0 = now_us();
		for (int i = 0; i < n; i++)
			if (which == 0 ? old_uuid7(id, 0) : which == 1 ? dura_uuid7(id) : old_uuid7(id, which - 1))
				die("uuid");
		double ns = (now_us() - t0) * 1000.0 / n;
		if (ns < best)
			best = ns;
	}
	return best;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000000;
	if (n <= 0)
		n = 1000000;
	static const char *const names[] = {"before", "dura", "pid check", "getrandom"};
	double t[4];
	/* interleaved, twice, so that drift hits every variant alike */
	for (int pass = 0; pass < 2; pass++)
		for (int w = 0; w < 4; w++) {
			double v = ns_per_id(w, n);
			if (pass == 0 || v < t[w])
				t[w] = v;
		}
	printf("bench_uuid: %d ids per round, best of 10 rounds\n", n);
	for (int w = 0; w < 4; w++)
		printf("  %-10s %7.1f ns/id  %5.2fx before\n", names[w], t[w], t[w] / t[0]);
	return 0;
}
