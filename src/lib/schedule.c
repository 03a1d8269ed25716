/*
 * schedule.c - firing schedules' ticks (a worker's scheduler thread calls
 * dura__schedules_fire).
 *
 * Every worker that serves a schedule's workflow fires its due ticks; the
 * store is the only coordinator. A tick's run has an id derived from the
 * schedule's name and the tick's time (dura__uuid_derived), so however
 * many workers fire a tick, and however often after a crash, the store
 * creates its run once (a second create of an id is DURA_EEXISTS). Only
 * then is the schedule's next_tick moved on, by a compare-and-swap: a
 * worker that crashes in between leaves the tick to be fired again, which
 * creates nothing new.
 *
 * Missed ticks (every worker down, or late): catch_up 0 fires only the
 * latest due tick; catch_up N fires the latest N, oldest first.
 */
#include "engine.h"

#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* how far one pass walks a schedule's missed ticks before jumping ahead */
#define WALK_MAX 100000

static int served(const char *wf, const char *const *workflows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(workflows[i], wf) == 0)
			return 1;
	return 0;
}

/* Create the run of tick t of schedule s: 0 also when it exists. */
static int fire_tick(dura_engine *eng, const dura_schedule *s, const dura_workflow *wf, int64_t t)
{
	char id[DURA_UUID_LEN + 1], meta[DURA_MAX_NAME_LEN * 2 + 96];
	dura__uuid_derived(id, t, "schedule", s->name, t);
	json_t *m = json_pack("{s:s, s:I}", "schedule", s->name, "tick", (json_int_t)t);
	char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!text)
		return dura_error_oom("");
	snprintf(meta, sizeof(meta), "%s", text);
	free(text); /* jansson's */
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.run_id = id;
	req.workflow_name = s->workflow_name;
	req.state = s->state;
	req.status = wf->start;
	req.run_state = DURA_RUN_RUNNING;
	if (dura__store_has_versions(eng->store))
		req.workflow_version = dura_workflow_version((dura_workflow *)wf);
	req.meta = meta;
	int rc = dura_store_create_run(eng->store, &req, NULL);
	return rc == DURA_EEXISTS ? 1 : rc;
}

/* Fire schedule s's due ticks; *next its next tick after now. */
static int fire_one(dura_engine *eng, const dura_schedule *s, int64_t now, int64_t *next, uint64_t *fired)
{
	const dura_workflow *wf = dura__engine_workflow(eng, s->workflow_name);
	if (!wf)
		return 0;
	dura__cron *cron;
	int rc = dura__cron_parse(&cron, s->cron);
	if (rc)
		return rc;
	int keep = s->catch_up > 0 ? s->catch_up : 1;
	int64_t ring[1000];
	int count = 0;
	int64_t t = s->next_tick;
	for (int walked = 0; t <= now; walked++) {
		ring[count++ % keep] = t;
		if (walked == WALK_MAX) { /* a long outage: on from the last few ticks before now */
			int64_t from = now - (int64_t)keep * 86400000;
			t = from > t ? from : t;
		}
		if ((rc = dura__cron_next(cron, s->zone, t, &t)) != 0)
			break;
	}
	dura__cron_free(cron);
	if (rc == DURA_ENOTFOUND) /* no tick after this one, ever: fire what is due, then stop */
		t = DURA__NEVER_MS, rc = 0;
	if (rc)
		return rc;
	*next = t;
	int n = count < keep ? count : keep;
	for (int i = 0; i < n; i++) {
		int64_t tick = ring[(count - n + i) % keep];
		int r = fire_tick(eng, s, wf, tick);
		if (r < 0)
			return r; /* next_tick stays: the next pass fires it again */
		if (r == 0)
			(*fired)++;
	}
	if (count > 0) {
		rc = dura_store_schedule_advance(eng->store, s->name, s->next_tick, t);
		if (rc == DURA_ECONFLICT || rc == DURA_ENOTFOUND) /* another worker did, or it was deleted */
			rc = 0;
	}
	return rc;
}

int64_t dura__schedules_fire(dura_engine *eng, const char *const *workflows, size_t n, uint64_t *fired)
{
	if (!dura__store_can_wait(eng->store))
		return 0;
	dura_schedules l;
	if (dura_store_schedule_list(eng->store, &l) != 0)
		return 0;
	int64_t now = dura_now_ms(), earliest = 0;
	int any = 0;
	for (size_t i = 0; i < l.count; i++) {
		const dura_schedule *s = &l.items[i];
		if (!served(s->workflow_name, workflows, n))
			continue;
		int64_t next = s->next_tick;
		if (s->next_tick <= now && fire_one(eng, s, now, &next, fired) != 0)
			next = now + 1000; /* a failing store: try again in a second */
		if (!any || next < earliest)
			earliest = next;
		any = 1;
	}
	if (any)
		dura__workers_kick(eng->store);
	dura_schedules_free(&l);
	return earliest;
}
