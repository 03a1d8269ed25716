/*
 * fork.c - what makes dura safe in a process that forks after using it.
 *
 * Pre-fork servers, process pools and test harnesses open a store, start
 * runs, then fork workers. A child gets a copy of everything the parent
 * had: the id generator's random bytes, the connection pools, the SQLite
 * handles and the MySQL sessions (whose sockets it shares with the
 * parent). Used as they are, two children make the same ids and talk over
 * one server session at once.
 *
 * The rule dura keeps: a store handle opened before fork() may be used in
 * the child. At fork dura
 *
 *   - waits for the dura calls other threads have in flight to return
 *     (the "fork guard": each store call holds it shared, fork() takes it
 *     exclusively), so no pooled connection is mid-transaction and no
 *     internal lock is held when the copy is made;
 *   - in the child, gives every open store the chance to drop what it
 *     inherited without touching the parent's share of it (the store's
 *     atfork_child operation): SQLite closes its inherited connections
 *     and opens new ones on demand, MySQL lets go of the parent's
 *     sessions without ending them, memory keeps its copy of the data,
 *     which from then on is the child's own;
 *   - in the child, throws away the id generator's random bytes, so the
 *     child's ids share nothing with the parent's or a sibling's.
 *
 * fork() called from inside a dura callback that runs during a store call
 * (an exec_sql row callback) cannot wait for itself: the stores are then
 * left as they are and the child must not use them (it may exec).
 */
#include "internal.h"

#include <pthread.h>

/*
 * The guard is a writer-preferring rwlock, so a fork waiting for the calls
 * in flight is not starved by new ones. A thread-local depth makes it
 * reentrant: a store call that makes another one takes it once.
 */
static pthread_rwlock_t guard;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local unsigned depth;
static int held_by_fork; /* the forking thread holds the guard exclusively */

static void guard_init(void)
{
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	pthread_rwlock_init(&guard, &a);
	pthread_rwlockattr_destroy(&a);
}

static void prepare(void)
{
	held_by_fork = depth == 0;
	if (held_by_fork)
		pthread_rwlock_wrlock(&guard);
	dura__stores_atfork(DURA__FORK_PREPARE, held_by_fork);
	dura__uuid_atfork(DURA__FORK_PREPARE);
	dura__secrets_atfork(DURA__FORK_PREPARE);
}

static void parent(void)
{
	dura__secrets_atfork(DURA__FORK_PARENT);
	dura__uuid_atfork(DURA__FORK_PARENT);
	dura__stores_atfork(DURA__FORK_PARENT, held_by_fork);
	if (held_by_fork)
		pthread_rwlock_unlock(&guard);
}

static void child(void)
{
	dura__secrets_atfork(DURA__FORK_CHILD);
	dura__uuid_atfork(DURA__FORK_CHILD);
	dura__stores_atfork(DURA__FORK_CHILD, held_by_fork);
	/* the only thread left: a fresh guard is as good as the held one */
	if (held_by_fork)
		guard_init();
}

static void install(void)
{
	guard_init();
	pthread_atfork(prepare, parent, child);
}

void dura__fork_init(void)
{
	pthread_once(&once, install);
}

void dura__fork_enter(void)
{
	if (depth++ == 0) {
		pthread_once(&once, install);
		pthread_rwlock_rdlock(&guard);
	}
}

void dura__fork_leave(void)
{
	if (--depth == 0)
		pthread_rwlock_unlock(&guard);
}
