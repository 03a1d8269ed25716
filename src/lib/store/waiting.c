/*
 * waiting.c - the store API of durable waiting (contract version 5):
 * signals, wakes and schedules, and the checks of the commit fields that
 * go with them. As in store.c, every argument is validated here once, so
 * that each store only stores.
 */
#include "handle.h"

#include "../cron.h"

#include <stdio.h>
#include <string.h>

#define WAITING_OPS(X) \
	X(signal_send) X(signal_next) X(signal_list) X(wake) X(schedule_put) X(schedule_get) X(schedule_delete) \
	X(schedule_list) X(schedule_advance)

int dura__waiting_ops_valid(const dura_store_ops *ops)
{
	if (ops->version < 5)
		return 0;
#define X(name)                                                                                                 \
	if (!ops->name)                                                                                         \
		return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,                                 \
		                             "store '%s' (contract version 5) has no %s operation", ops->scheme, #name);
	WAITING_OPS(X)
#undef X
	return 0;
}

int dura__store_can_wait(const dura_store *s)
{
	return s && s->ops->version >= 5;
}

static int has_waiting(const dura_store *s, const char *fn)
{
	if (s->ops->version >= 5)
		return 0;
	return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
	                             "%s: the %s store (contract version %u) has no durable waiting (version 5)", fn,
	                             s->ops->scheme, s->ops->version);
}

/* A signal's or a schedule's name: 1 to DURA_MAX_NAME_LEN bytes of UTF-8
 * without control characters (it is shown, and part of a run's wait). */
int dura__check_name(const char *name, const char *what, const char *fn)
{
	if (!name || !*name)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is %s", fn, what, name ? "empty" : "NULL");
	size_t n = strnlen(name, DURA_MAX_NAME_LEN + 1);
	if (n > DURA_MAX_NAME_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is longer than %d bytes", fn, what,
		                             DURA_MAX_NAME_LEN);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s has a control character", fn, what);
	/* MySQL's PAD SPACE collations compare "a " equal to "a" */
	if (name[n - 1] == ' ')
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s ends with a space", fn, what);
	if (!dura__utf8_valid(name))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %s is not UTF-8", fn, what);
	return 0;
}

/* A run's wait: "", "sleep", "signal:NAME" or "child:RUN_ID". */
static int check_wait(const char *w, const char *fn)
{
	if (!w || !*w || strcmp(w, "sleep") == 0)
		return 0;
	if (strncmp(w, "signal:", 7) == 0)
		return dura__check_name(w + 7, "the signal name of a wait", fn);
	if (strncmp(w, "child:", 6) == 0)
		return dura__check_id(w + 6, "the child run id of a wait", fn);
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
	                             "%s: wait '%.64s' is not sleep, signal:NAME or child:RUN_ID", fn, w);
}

int dura__check_commit_wait(const dura_store *s, const dura_commit *c, const char *fn)
{
	int used = (c->wait && *c->wait) || c->signal_id || c->wake_run_id;
	if (!used)
		return 0;
	TRY(has_waiting(s, fn));
	TRY(check_wait(c->wait, fn));
	if (c->signal_id)
		TRY(dura__check_id(c->signal_id, "signal id", fn));
	if (c->wake_run_id) {
		TRY(dura__check_id(c->wake_run_id, "run id to wake", fn));
		if (!c->wake_wait || !*c->wake_wait)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: wake_run_id without wake_wait", fn);
		TRY(check_wait(c->wake_wait, fn));
	}
	return 0;
}

/* ---- signals -------------------------------------------------------------- */

int dura_store_signal_send(dura_store *s, const char *run_id, const char *name, const char *payload,
                           char signal_id[DURA_UUID_LEN + 1])
{
	static const char fn[] = "dura_store_signal_send";
	char id[DURA_UUID_LEN + 1];
	if (signal_id)
		signal_id[0] = '\0';
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_name(name, "signal name", fn));
	if (!payload)
		payload = "null";
	TRY(dura__json_valid(payload, "signal payload"));
	TRY(has_waiting(s, fn));
	TRY(dura_uuid7(id));
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->signal_send(s->impl, id, run_id, name, payload));
	if (rc == 0 && signal_id)
		memcpy(signal_id, id, sizeof(id));
	return rc;
}

int dura_store_signal_next(dura_store *s, const char *run_id, const char *name, dura_signal **out)
{
	static const char fn[] = "dura_store_signal_next";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_name(name, "signal name", fn));
	TRY(has_waiting(s, fn));
	DISPATCH(s, signal_next, run_id, name, out);
}

int dura_store_signal_list(dura_store *s, const char *run_id, dura_signal_list *out)
{
	static const char fn[] = "dura_store_signal_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(has_waiting(s, fn));
	DISPATCH(s, signal_list, run_id, out);
}

int dura_store_wake(dura_store *s, const char *run_id, const char *wait)
{
	static const char fn[] = "dura_store_wake";
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	if (!wait || !*wait)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: wait is empty", fn);
	TRY(check_wait(wait, fn));
	TRY(has_waiting(s, fn));
	DISPATCH(s, wake, run_id, wait);
}

int dura__store_wait_recheck(dura_store *s, const char *run_id, const char *wait)
{
	if (s->ops->version < 5)
		return 0;
	dura_record *rec = NULL;
	int rc = 0, came = 0;
	if (!wait) {
		if ((rc = dura_store_get_run(s, run_id, &rec)) != 0)
			return rc;
		wait = rec->wait ? rec->wait : "";
	}
	if (strncmp(wait, "signal:", 7) == 0) {
		dura_signal *sig = NULL;
		rc = dura_store_signal_next(s, run_id, wait + 7, &sig);
		came = rc == 0;
		dura_signal_free(sig);
	} else if (strncmp(wait, "child:", 6) == 0) {
		dura_record *c = NULL;
		rc = dura_store_get_run(s, wait + 6, &c);
		came = rc == 0 && !dura_run_state_active(c->run_state);
		dura_record_free(c);
	}
	if (came) {
		rc = dura_store_wake(s, run_id, wait);
		came = rc == 0;
	}
	dura_record_free(rec);
	if (rc == DURA_ENOTFOUND) /* woken already, or moved on */
		rc = 0;
	return rc ? rc : came;
}

/* ---- schedules ------------------------------------------------------------ */

int dura_store_schedule_set(dura_store *s, const dura_schedule_spec *spec)
{
	static const char fn[] = "dura_store_schedule_set";
	CHECK_STORE(s);
	if (!spec)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: spec is NULL", fn);
	if (spec->version != DURA_SCHEDULE_SPEC_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: spec version %u, expected %u", fn, spec->version,
		                             DURA_SCHEDULE_SPEC_VERSION);
	TRY(dura__check_name(spec->name, "schedule name", fn));
	TRY(dura__check_id(spec->workflow, "workflow name", fn));
	if (!spec->cron)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: cron is NULL", fn);
	const char *zone = spec->zone && *spec->zone ? spec->zone : "UTC";
	if (strlen(zone) > 64)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: zone name is longer than 64 bytes", fn);
	const char *state = spec->state ? spec->state : "{}";
	TRY(dura__json_valid(state, "schedule state"));
	if (spec->catch_up < 0 || spec->catch_up > 1000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: catch_up %d is outside 0 to 1000", fn,
		                             spec->catch_up);
	TRY(has_waiting(s, fn));
	dura__cron *cron;
	TRY(dura__cron_parse(&cron, spec->cron));
	int64_t next = 0;
	int rc = dura__cron_zone_check(zone);
	if (rc == 0)
		rc = dura__cron_next(cron, zone, dura_now_ms(), &next);
	dura__cron_free(cron);
	if (rc == DURA_ENOTFOUND)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: cron '%s' never ticks", fn, spec->cron);
	if (rc)
		return rc;
	dura_schedule sch;
	memset(&sch, 0, sizeof(sch));
	sch.name = (char *)spec->name;
	sch.cron = (char *)spec->cron;
	sch.zone = (char *)zone;
	sch.workflow_name = (char *)spec->workflow;
	sch.state = (char *)state;
	sch.catch_up = spec->catch_up;
	sch.next_tick = next;
	DISPATCH(s, schedule_put, &sch);
}

int dura_store_schedule_get(dura_store *s, const char *name, dura_schedule **out)
{
	static const char fn[] = "dura_store_schedule_get";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_name(name, "schedule name", fn));
	TRY(has_waiting(s, fn));
	DISPATCH(s, schedule_get, name, out);
}

int dura_store_schedule_delete(dura_store *s, const char *name)
{
	static const char fn[] = "dura_store_schedule_delete";
	CHECK_STORE(s);
	TRY(dura__check_name(name, "schedule name", fn));
	TRY(has_waiting(s, fn));
	DISPATCH(s, schedule_delete, name);
}

int dura_store_schedule_list(dura_store *s, dura_schedules *out)
{
	static const char fn[] = "dura_store_schedule_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(has_waiting(s, fn));
	DISPATCH(s, schedule_list, out);
}

int dura_store_schedule_advance(dura_store *s, const char *name, int64_t from, int64_t to)
{
	static const char fn[] = "dura_store_schedule_advance";
	CHECK_STORE(s);
	TRY(dura__check_name(name, "schedule name", fn));
	if (from < 0 || to <= from)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: ticks %lld to %lld do not move forward", fn,
		                             (long long)from, (long long)to);
	TRY(has_waiting(s, fn));
	DISPATCH(s, schedule_advance, name, from, to);
}
