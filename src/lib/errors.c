/*
 * errors.c - the thread-local last error, return-code names and the
 * allocation hook every part of dura allocates through.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct error_slot {
	dura_error pub;
	int set;
	char message[1024];
	char store[32];
	char sqlstate[8];
} error_slot;

static _Thread_local error_slot tls_error;

/* dura__error_saved (internal.h) copies the slot's buffers whole */
_Static_assert(sizeof(((dura__error_saved *)0)->message) == sizeof(((error_slot *)0)->message), "message size");
_Static_assert(sizeof(((dura__error_saved *)0)->store) == sizeof(((error_slot *)0)->store), "store size");
_Static_assert(sizeof(((dura__error_saved *)0)->sqlstate) == sizeof(((error_slot *)0)->sqlstate), "sqlstate size");

const dura_error *dura_error_last(void)
{
	return tls_error.set ? &tls_error.pub : NULL;
}

void dura_error_clear(void)
{
	tls_error.set = 0;
}

/*
 * Every message goes through here; the password scrub happens in the
 * callers (URLs are only ever formatted in their redacted form), and once
 * more here for the one password dura knows of on this thread.
 */
int dura_error_set_native(int code, const char *store, int native_code, const char *sqlstate, const char *fmt, ...)
{
	error_slot *e = &tls_error;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	/* one line: fold newlines that drivers put in their messages */
	for (char *p = e->message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	size_t n = strlen(e->message);
	while (n && e->message[n - 1] == ' ')
		e->message[--n] = '\0';
	snprintf(e->store, sizeof(e->store), "%s", store ? store : "");
	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate ? sqlstate : "");
	dura__redact_secrets(e->message);
	e->pub.code = code;
	e->pub.message = e->message;
	e->pub.store = e->store;
	e->pub.native_code = native_code;
	e->pub.sqlstate = e->sqlstate;
	e->set = 1;
	return code;
}

/*
 * The saved copy has the slot's own sizes, so nothing is cut, and the
 * restore copies the fields back as they are: they were folded and
 * scrubbed when first set, and running them through dura_error_set_native again
 * would only repeat that.
 */
void dura__error_save(dura__error_saved *saved)
{
	const error_slot *e = &tls_error;
	memset(saved, 0, sizeof(*saved));
	if (!e->set)
		return;
	saved->set = 1;
	saved->code = e->pub.code;
	saved->native_code = e->pub.native_code;
	memcpy(saved->message, e->message, sizeof(saved->message));
	memcpy(saved->store, e->store, sizeof(saved->store));
	memcpy(saved->sqlstate, e->sqlstate, sizeof(saved->sqlstate));
}

int dura__error_restore(const dura__error_saved *saved)
{
	error_slot *e = &tls_error;
	if (!saved->set) {
		e->set = 0;
		return 0;
	}
	memcpy(e->message, saved->message, sizeof(e->message));
	memcpy(e->store, saved->store, sizeof(e->store));
	memcpy(e->sqlstate, saved->sqlstate, sizeof(e->sqlstate));
	e->pub.code = saved->code;
	e->pub.message = e->message;
	e->pub.store = e->store;
	e->pub.native_code = saved->native_code;
	e->pub.sqlstate = e->sqlstate;
	e->set = 1;
	return saved->code;
}

int dura_error_set(int code, const char *fmt, ...)
{
	char msg[1024] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	return dura_error_set_native(code < 0 ? code : DURA_ERROR, "", 0, NULL, "%s", msg);
}

int dura_error_oom(const char *store)
{
	return dura_error_set_native(DURA_ENOMEM, store, 0, NULL, "out of memory");
}

const char *dura_strerror(int code)
{
	switch (code) {
	case DURA_OK: return "ok";
	case DURA_ERROR: return "error";
	case DURA_ENOTFOUND: return "not found";
	case DURA_EEXISTS: return "already exists";
	case DURA_ECONFLICT: return "conflict";
	case DURA_EBUSY: return "busy";
	case DURA_EIO: return "I/O error";
	case DURA_ETIMEOUT: return "timed out";
	case DURA_ENOMEM: return "out of memory";
	case DURA_EINVAL: return "invalid argument";
	case DURA_ENOTSUP: return "not supported";
	case DURA_EVERSION: return "version mismatch";
	case DURA_ECANCELED: return "cancelled";
	default: return "unknown error";
	}
}

/* ---- secrets ------------------------------------------------------------ */

/*
 * Passwords of open stores are remembered (in a small table) so that any
 * message that would echo one - a driver repeating a connection string,
 * say - is scrubbed before the caller can see it.
 */
#include <pthread.h>
#define MAX_SECRETS 64
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static unsigned secrets_next;

void dura__secret_add(const char *secret)
{
	if (!secret || strlen(secret) < 3)
		return;
	pthread_mutex_lock(&secrets_lock);
	int i;
	for (i = 0; i < MAX_SECRETS && secrets[i]; i++)
		if (strcmp(secrets[i], secret) == 0)
			break;
	if (i == MAX_SECRETS || !secrets[i]) {
		/* a ring: when full, the oldest password makes room for the newest */
		i = i < MAX_SECRETS ? i : (int)(secrets_next++ % MAX_SECRETS);
		char *copy = strdup(secret); /* libc: the list outlives any allocator swap */
		if (copy) {
			free(secrets[i]);
			secrets[i] = copy;
		}
	}
	pthread_mutex_unlock(&secrets_lock);
}

void dura__secrets_atfork(int phase)
{
	if (phase == DURA__FORK_PREPARE)
		pthread_mutex_lock(&secrets_lock);
	else
		pthread_mutex_unlock(&secrets_lock);
}

void dura__redact_secrets(char *msg)
{
	pthread_mutex_lock(&secrets_lock);
	for (int i = 0; i < MAX_SECRETS; i++) {
		if (!secrets[i])
			continue;
		size_t len = strlen(secrets[i]);
		char *from = msg, *p;
		while ((p = strstr(from, secrets[i])) != NULL) {
			/* replace with "***", close the gap, and scan on after it
			 * (a secret that is itself "***" must not match again) */
			memcpy(p, "***", 3);
			memmove(p + 3, p + len, strlen(p + len) + 1);
			from = p + 3;
		}
	}
	pthread_mutex_unlock(&secrets_lock);
}

/* ---- allocation --------------------------------------------------------- */

static dura_allocator g_alloc = {malloc, realloc, free};

void dura_set_allocator(const dura_allocator *a)
{
	g_alloc.malloc_fn = a && a->malloc_fn ? a->malloc_fn : malloc;
	g_alloc.realloc_fn = a && a->realloc_fn ? a->realloc_fn : realloc;
	g_alloc.free_fn = a && a->free_fn ? a->free_fn : free;
}

void *dura_malloc(size_t n)
{
	return g_alloc.malloc_fn(n ? n : 1);
}

void *dura_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t total = n * size;
	void *p = g_alloc.malloc_fn(total ? total : 1);
	if (p)
		memset(p, 0, total);
	return p;
}

void *dura_realloc(void *p, size_t n)
{
	return g_alloc.realloc_fn(p, n ? n : 1);
}

void dura_free(void *p)
{
	if (p)
		g_alloc.free_fn(p);
}

char *dura_strndup(const char *s, size_t n)
{
	if (!s)
		return NULL;
	char *d = dura_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *dura_strdup(const char *s)
{
	return s ? dura_strndup(s, strlen(s)) : NULL;
}
