/*
 * uuid.c - UUIDv7 run ids (RFC 9562): 48 bits of Unix milliseconds, then
 * random bits. Within one process ids are strictly increasing: a 12-bit
 * counter in rand_a orders ids made in the same millisecond, so a listing
 * by run_id is a listing by creation time.
 *
 * Fork: a child must not make the ids its parent or a sibling makes. At
 * fork (fork.c) the child throws its copy of the random bytes away, so
 * its next id draws fresh ones from getrandom(); the timestamp and the
 * counter carry on, which keeps the child's ids ordered. Two processes
 * then differ in 62 fresh random bits even in the same millisecond at the
 * same count. The check costs nothing per id: it happens once, at fork.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;

/* Random bytes come from getrandom() in blocks of 512 per thread: one
 * system call per 64 ids instead of one each. */
static _Thread_local unsigned char pool[512];
static _Thread_local size_t pool_left;

static int random_bytes(unsigned char *out, size_t n)
{
	if (pool_left < n) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
			return -1;
		pool_left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - pool_left, n);
	/* never hand out the same bytes twice */
	memset(pool + sizeof(pool) - pool_left, 0, n);
	pool_left -= n;
	return 0;
}
static int64_t last_ms;
static unsigned counter;

void dura__uuid_atfork(int phase)
{
	switch (phase) {
	case DURA__FORK_PREPARE:
		pthread_mutex_lock(&uuid_lock);
		break;
	case DURA__FORK_PARENT:
		pthread_mutex_unlock(&uuid_lock);
		break;
	default:
		/* the forking thread is the child's only thread: its pool is the
		 * only one left, and it was the parent's */
		memset(pool, 0, sizeof(pool));
		pool_left = 0;
		pthread_mutex_unlock(&uuid_lock);
		break;
	}
}

int dura_uuid7(char out[DURA_UUID_LEN + 1])
{
	unsigned char b[16];
	dura__fork_init();
	if (random_bytes(b, sizeof(b)))
		return dura_error_set_native(DURA_EIO, "", 0, NULL, "getrandom failed while making a run id");

	int64_t ms = dura_now_ms();
	pthread_mutex_lock(&uuid_lock);
	if (ms <= last_ms) {
		/* same (or earlier, after a clock step) millisecond: count on */
		if (++counter > 0xFFF) {
			last_ms++;
			counter = 0;
		}
		ms = last_ms;
	} else {
		last_ms = ms;
		counter = (unsigned)(b[6] & 0x03) << 8 | b[7]; /* random start, room to count */
	}
	unsigned c = counter;
	pthread_mutex_unlock(&uuid_lock);

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
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

/*
 * A derived id in UUID form (version 8, RFC 9562's custom layout): the
 * first 48 bits are ms, as in a UUIDv7, so derived ids sort by that time
 * with the others; the other 74 bits are two FNV-1a 64-bit hashes of the
 * parts (a NUL between them) under two seeds. Not random and not secret:
 * the same parts give the same id, which is what makes a child's start
 * and a schedule's tick idempotent.
 */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint64_t parts_hash(uint64_t seed, const char *a, const char *b, int64_t n)
{
	uint64_t h = fnv1a(seed, a, strlen(a) + 1);
	h = fnv1a(h, b, strlen(b) + 1);
	unsigned char num[8];
	for (int i = 0; i < 8; i++)
		num[i] = (unsigned char)((uint64_t)n >> (8 * i));
	h = fnv1a(h, num, sizeof(num));
	/* a final mix, so that nearby n spread over every bit */
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

void dura__uuid_derived(char out[DURA_UUID_LEN + 1], int64_t ms, const char *a, const char *b, int64_t n)
{
	uint64_t h1 = parts_hash(UINT64_C(0xcbf29ce484222325), a, b, n);
	uint64_t h2 = parts_hash(UINT64_C(0x84222325cbf29ce4), a, b, n);
	unsigned char u[16];
	uint64_t t = (uint64_t)(ms < 0 ? 0 : ms);
	for (int i = 0; i < 6; i++)
		u[i] = (unsigned char)(t >> (40 - 8 * i));
	for (int i = 0; i < 8; i++)
		u[6 + i] = (unsigned char)(h1 >> (8 * i));
	u[14] = (unsigned char)h2;
	u[15] = (unsigned char)(h2 >> 8);
	u[6] = (unsigned char)(0x80 | (u[6] & 0x0f)); /* version 8 */
	u[8] = (unsigned char)(0x80 | (u[8] & 0x3f)); /* variant 10 */
	static const char hex[] = "0123456789abcdef";
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[u[i] >> 4];
		*o++ = hex[u[i] & 15];
	}
	*o = '\0';
}
