/*
 * commit.h - what a step commit writes, decided once for every SQL store
 * from the dura_commit's flags: a step row, an outbox event, the lease
 * released, and whether the run's UPDATE must also set run_state and the
 * lease (the "full" statement) or may leave them alone, so that the
 * common commit does not rewrite the indexes on run_state. No driver
 * header here.
 */
#ifndef DURA_SQL_COMMIT_H
#define DURA_SQL_COMMIT_H

#include "dura/store.h"

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

#endif
