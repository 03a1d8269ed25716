/*
 * fuzz.h - what dura's libFuzzer harnesses share: splitting an input into
 * strings, and checks that abort (so libFuzzer keeps the input) when an
 * invariant of the library does not hold.
 */
#ifndef DURA_FUZZ_H
#define DURA_FUZZ_H

#include <dura.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort with a message when cond is false: a finding, like a crash. */
#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* Every public function returns 0 or one of the DURA_E* codes; a failure
 * leaves dura_error_last() set to that code, with a message. */
static inline void fuzz_check_rc(int rc)
{
	FUZZ_CHECK(rc == DURA_OK || (rc <= DURA_ERROR && rc >= DURA_ECANCELED));
	if (rc != DURA_OK) {
		const dura_error *e = dura_error_last();
		FUZZ_CHECK(e != NULL);
		FUZZ_CHECK(e->code == rc);
		FUZZ_CHECK(e->message != NULL && e->message[0] != '\0');
	}
}

#define FUZZ_MAX_PARTS 16

/* The input cut at its NUL bytes into at most max strings: part[i] for
 * i < n, NULL after. The last part keeps whatever follows (up to its own
 * first NUL, as C reads it). */
typedef struct fuzz_parts {
	char *buf;
	size_t n;
	const char *part[FUZZ_MAX_PARTS];
} fuzz_parts;

static inline void fuzz_split(fuzz_parts *p, const uint8_t *data, size_t size, size_t max)
{
	memset(p, 0, sizeof(*p));
	if (max > FUZZ_MAX_PARTS)
		max = FUZZ_MAX_PARTS;
	p->buf = malloc(size + 1);
	if (!p->buf)
		abort();
	memcpy(p->buf, data, size);
	p->buf[size] = '\0';
	p->part[p->n++] = p->buf;
	for (size_t i = 0; i < size && p->n < max; i++) {
		if (p->buf[i] == '\0')
			p->part[p->n++] = p->buf + i + 1;
	}
}

static inline void fuzz_parts_free(fuzz_parts *p)
{
	free(p->buf);
	p->buf = NULL;
}

#endif
