/*
 * handle.h - the store handle and the argument checks and dispatch macros
 * every public dura_store_* function uses: store.c (runs, steps, cache,
 * leases, the registry) and waiting.c (signals, wakes, schedules).
 */
#ifndef DURA_STORE_HANDLE_H
#define DURA_STORE_HANDLE_H

#include "../internal.h"

#include <stdatomic.h>

struct dura_store {
	const dura_store_ops *ops;
	void *impl;
	dura_url *url;
	_Atomic uint64_t hits, misses, commits, conflicts;
	size_t max_state, max_value; /* the size limits (dura_store_limits_get) */
	struct dura_store *prev, *next; /* every open store, for fork */
};

/* DURA_EINVAL unless a state of len bytes is within the store's limit;
 * what: "state", "initial state". */
int dura__check_state_size(const dura_store *s, size_t len, const char *what, const char *fn);

/* An id: not NULL, not empty, at most DURA_MAX_ID_LEN bytes. */
int dura__check_id(const char *id, const char *what, const char *fn);
/* An optional id: NULL and "" are allowed, but not an over-long one. */
int dura__check_opt_id(const char *id, const char *what, const char *fn);
/* A known run state (or 0 when allow_zero). */
int dura__check_run_state(int st, int allow_zero, const char *fn);

#define CHECK_STORE(s)                                                                                \
	do {                                                                                          \
		if (!(s))                                                                             \
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: store is NULL", __func__); \
	} while (0)

#define TRY(expr)                      \
	do {                           \
		int rc__ = (expr);     \
		if (rc__)              \
			return rc__;   \
	} while (0)

/* Every call into a store runs inside the fork guard (fork.c). */
#define GUARD(rc, call)                 \
	do {                            \
		dura__fork_enter();     \
		(rc) = (call);          \
		dura__fork_leave();     \
	} while (0)

/* Clear the thread's error before a call, so success leaves none behind. */
#define DISPATCH(s, op, ...)                                                                                    \
	do {                                                                                                    \
		if (!(s)->ops->op)                                                                              \
			return dura_error_set_native(DURA_ENOTSUP, (s)->ops->scheme, 0, NULL, "the %s store has no %s", \
			                             (s)->ops->scheme, #op);                                          \
		dura_error_clear();                                                                             \
		int rc__;                                                                                       \
		GUARD(rc__, (s)->ops->op((s)->impl, __VA_ARGS__));                                              \
		return rc__;                                                                                    \
	} while (0)

#endif
