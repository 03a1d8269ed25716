/*
 * commit.h - what a step commit writes, decided once for every SQL store
 * from the dura_commit's flags: a step row, an outbox event, the lease
 * released, and whether the run's UPDATE must also set run_state and the
 * lease (the "full" statement) or may leave them alone, so that the
 * common commit does not rewrite the indexes on run_state; and what the
 * server stores' commits share (commit.c). No driver header here.
 */
#ifndef DURA_SQL_COMMIT_H
#define DURA_SQL_COMMIT_H

#include "exec.h"

#include "dura/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dura_sql_commit_plan {
	int do_step;        /* write the step row */
	int do_event;       /* write the outbox event */
	int release;        /* release the run's lease */
	int full;           /* the UPDATE sets run_state and the lease too */
	const char *status; /* the run's status, "" for none */
} dura_sql_commit_plan;

static inline dura_sql_commit_plan dura_sql_commit_plan_of(const dura_commit *cm)
{
	dura_sql_commit_plan p;
	p.do_step = !(cm->flags & DURA_COMMIT_NO_STEP);
	p.do_event = !(cm->flags & DURA_COMMIT_NO_EVENT);
	p.release = (cm->flags & DURA_COMMIT_RELEASE_LEASE) != 0;
	p.full = cm->run_state != 0 || p.release;
	p.status = cm->status ? cm->status : "";
	return p;
}

/* Contract version 5: the record's wait after the commit ("" for none),
 * and whether the commit also consumes a signal or wakes a run (then it
 * needs a transaction: dura_sql_commit_extras() after its CAS update). A
 * dura_commit of version 1 has neither (the core upgrades it anyway). */
static inline const char *dura_sql_commit_wait(const dura_commit *cm)
{
	return cm->version >= 2 && cm->wait ? cm->wait : "";
}

static inline int dura_sql_commit_has_extras(const dura_commit *cm)
{
	return cm->version >= 2 && (cm->signal_id || cm->wake_run_id);
}

/* Contract version 6: the workflow version of the code committing ("" for
 * none), which the step row keeps and a record without a version takes on
 * (in the commit's UPDATE: CASE WHEN workflow_version = '' THEN it ELSE
 * workflow_version END). A dura_commit of version 2 has none. */
static inline const char *dura_sql_commit_version(const dura_commit *cm)
{
	return cm->version >= 3 && cm->workflow_version ? cm->workflow_version : "";
}

/* Inside the commit's open transaction, after its CAS update went in: the
 * signal it consumes deleted (none there: DURA_ECONFLICT, and the caller
 * rolls back), and the run it wakes woken (a run that does not wait so is
 * left alone). 0, or the failure. */
int dura_sql_commit_extras(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm);

/* Why a CAS update matched no row: the run is gone (DURA_ENOTFOUND), or
 * at another version (DURA_ECONFLICT). */
int dura_sql_commit_miss(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm);

/* The bytes a commit sends (state, event data, error), for a size check. */
size_t dura_sql_commit_size(const dura_commit *cm);

/*
 * The default event data (dura_store_event_summary()) but for the integers
 * the server supplies. With step NULL: the head runs up to the step's
 * place and *tail from there to the run_state's place; with a step: the
 * head runs, step included, up to the run_state's place. The server
 * appends the run_state and "}". In buf when it fits (DURA_SQL_SUMMARY_BUF
 * is enough for ids of DURA_MAX_ID_LEN bytes), else in *heap (the caller
 * frees it); NULL when out of memory.
 */
#define DURA_SQL_SUMMARY_BUF (3 * (6 * DURA_MAX_ID_LEN + 2) + 128)
const char *dura_sql_summary_pieces(char *buf, size_t size, const dura_commit *cm, const int64_t *step,
                                    const char **tail, char **heap);

/*
 * After a connection was lost while committing: did that commit land?
 * Reads the run locked (COMMIT_VERIFY, so a commit still in flight on the
 * dead session finishes first), then its step row (STEP_FIND) or its
 * event (EVENT_CHECK). 1: it did (res filled), 0: it did not and the run
 * is still at the expected version (commit again), < 0: an error, or
 * another writer got there (DURA_ECONFLICT).
 */
int dura_sql_commit_verify(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm, const char *event_id,
                           int64_t now, dura_commit_result *res);

/* A driver's one commit inside the open transaction: 0, or the failure;
 * *updated says whether its CAS update went in before a later failure. */
typedef int (*dura_sql_commit_one)(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm, const char *event_id,
                                   int64_t now, dura_commit_result *res, int *updated);

/*
 * A batch's results as its commits fail one by one: res (n of them), how
 * many failed and the first failure's message, for the batch's answer.
 * Every batch path (the one-by-one batch here, PostgreSQL's one statement,
 * MariaDB's bulk executions) keeps one.
 */
typedef struct dura_sql_tally {
	dura_commit_result *res;
	size_t n;
	size_t failed;
	char first[256];
} dura_sql_tally;

/* Every result back to "not written yet" (an attempt begins). */
void dura_sql_tally_reset(dura_sql_tally *t);
/* Commit i failed with code (its message is the thread's error now). */
void dura_sql_tally_fail(dura_sql_tally *t, size_t i, int code);
/* The batch's answer: rc (every result gets it) when the batch failed as a
 * whole, else 0, or the failures counted, named after the first. */
int dura_sql_tally_end(const dura_sql_tally *t, const char *store, int rc);
/* A batch attempt's start: the results reset, and after a lost connection
 * (again) each commit checked first - one that landed is done, one refused
 * is failed. The indexes of the commits still to write go to unwritten (n of
 * room); how many, or an error. */
int dura_sql_tally_pending(dura_sql_tally *t, dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm,
                           const char *const *event_ids, int64_t now, int again, size_t *unwritten);

/*
 * commit_batch: the n commits in one transaction through one(), each
 * CAS-checked on its own. A commit that misses (DURA_ECONFLICT,
 * DURA_ENOTFOUND) gets its code in res[i] and the others go in; one that
 * failed after its update made the batch run again without it. Returns
 * 0, DURA_ECONFLICT naming how many did not go in, or the failure (then
 * in every res[i]).
 */
int dura_sql_commit_batch(dura_sql_store *s, dura_sql_commit_one one, const dura_commit *cm,
                          const char *const *event_ids, size_t n, dura_commit_result *res);

/*
 * The commits cm[idx[0..k)] as one JSON array, for a server store's batch
 * in one statement (the server reads it as a table: PostgreSQL's
 * json_to_recordset). Per commit: i its index in cm, r run id, v expected
 * version, s state, st status, er error, w the wait, wv the workflow version
 * (contract version 6), a attempt, nx next_run_at (ms,
 * now when 0, at most max_time), ds write the step (0/1), rs run_state
 * (null: unchanged), rl release the lease, nd node id, ei event id, et
 * event type, ed event data (null: the default, from sh and tl around the
 * step and the run_state, as summary_pieces() says), de write the event.
 * Every text is a JSON string, states and event data too (escaped, never
 * spliced), so no commit's bytes can change another's fields. The caller
 * frees it; NULL when out of memory.
 */
char *dura_sql_batch_json(const dura_commit *cm, const char *const *event_ids, const size_t *idx, size_t k,
                          int64_t now, int64_t max_time);

#endif
