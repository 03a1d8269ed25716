/*
 * format.c - the lines of an export (transfer.h, docs/export.md): each
 * record of a store to a JSON object and back, with every member checked
 * on the way in, so that a line that is not what its kind says is refused
 * with the member named.
 */
#include "transfer.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- out: a store's record as a JSON object ------------------------------------ */

/* A store's JSON text as a JSON value (a copy of the text as a string when
 * it does not parse, which a store never holds); null for NULL and "". */
static json_t *json_of(const char *text)
{
	if (!text || !*text)
		return json_null();
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	return v ? v : json_string(text);
}

static json_t *str(const char *s)
{
	return json_string(s ? s : "");
}

/* Members set in order; NULL (out of memory) makes the object NULL. */
static json_t *put(json_t *o, const char *key, json_t *v)
{
	if (!o || !v || json_object_set_new(o, key, v)) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *kind(const char *k)
{
	json_t *o = json_object();
	return put(o, "kind", json_string(k));
}

json_t *dura__line_run(const dura_record *r, size_t nsteps, size_t ncheckpoints, size_t nsignals)
{
	json_t *o = kind("run");
	o = put(o, "run_id", str(r->run_id));
	o = put(o, "workflow_name", str(r->workflow_name));
	o = put(o, "workflow_version", str(r->workflow_version));
	o = put(o, "foreign_id", str(r->foreign_id));
	o = put(o, "run_state", json_string(dura_run_state_name(r->run_state)));
	o = put(o, "status", str(r->status));
	o = put(o, "state", json_of(r->state));
	o = put(o, "version", json_integer(r->version));
	o = put(o, "step_no", json_integer(r->step_no));
	o = put(o, "attempt", json_integer(r->attempt));
	o = put(o, "error", str(r->error));
	o = put(o, "meta", json_of(r->meta));
	o = put(o, "next_run_at", json_integer(r->next_run_at));
	o = put(o, "created_at", json_integer(r->created_at));
	o = put(o, "updated_at", json_integer(r->updated_at));
	o = put(o, "priority", json_integer(r->priority));
	o = put(o, "concurrency_key", str(r->concurrency_key));
	o = put(o, "wait", str(r->wait));
	o = put(o, "parent_id", str(r->parent_id));
	o = put(o, "steps", json_integer((json_int_t)nsteps));
	o = put(o, "checkpoints", json_integer((json_int_t)ncheckpoints));
	return put(o, "signals", json_integer((json_int_t)nsignals));
}

json_t *dura__line_step(const dura_step *st)
{
	json_t *o = kind("step");
	o = put(o, "run_id", str(st->run_id));
	o = put(o, "step", json_integer(st->step));
	o = put(o, "node_id", str(st->node_id));
	o = put(o, "state", json_of(st->state));
	o = put(o, "created_at", json_integer(st->created_at));
	return put(o, "workflow_version", str(st->workflow_version));
}

json_t *dura__line_checkpoint(const dura_checkpoint *cp)
{
	json_t *o = kind("checkpoint");
	o = put(o, "checkpoint_id", str(cp->checkpoint_id));
	o = put(o, "run_id", str(cp->run_id));
	o = put(o, "step", json_integer(cp->step));
	o = put(o, "state", json_of(cp->state));
	o = put(o, "created_at", json_integer(cp->created_at));
	return put(o, "updated_at", json_integer(cp->updated_at));
}

json_t *dura__line_signal(const dura_signal *sg)
{
	json_t *o = kind("signal");
	o = put(o, "signal_id", str(sg->signal_id));
	o = put(o, "run_id", str(sg->run_id));
	o = put(o, "name", str(sg->name));
	o = put(o, "payload", json_of(sg->payload));
	return put(o, "created_at", json_integer(sg->created_at));
}

json_t *dura__line_event(const dura_event *ev)
{
	json_t *o = kind("event");
	o = put(o, "id", str(ev->id));
	o = put(o, "workflow_name", str(ev->workflow_name));
	o = put(o, "run_id", str(ev->run_id));
	o = put(o, "type", str(ev->type));
	o = put(o, "data", json_of(ev->data));
	return put(o, "created_at", json_integer(ev->created_at));
}

json_t *dura__line_schedule(const dura_schedule *sch)
{
	json_t *o = kind("schedule");
	o = put(o, "name", str(sch->name));
	o = put(o, "cron", str(sch->cron));
	o = put(o, "zone", str(sch->zone));
	o = put(o, "workflow_name", str(sch->workflow_name));
	o = put(o, "state", json_of(sch->state));
	o = put(o, "catch_up", json_integer(sch->catch_up));
	return put(o, "next_tick", json_integer(sch->next_tick));
}

json_t *dura__line_workflow(const dura_workflow_def *d)
{
	json_t *o = kind("workflow");
	o = put(o, "workflow_name", str(d->workflow_name));
	o = put(o, "version", str(d->version));
	return put(o, "definition", json_of(d->definition));
}

json_t *dura__line_cache(const dura_cache_entry *e)
{
	if (e->value_len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	char *b64 = dura_malloc(4 * ((e->value_len + 2) / 3) + 1);
	if (!b64)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b64, e->value ? e->value : (const unsigned char *)"", (int)e->value_len);
	json_t *o = kind("cache");
	o = put(o, "key", str(e->key));
	o = put(o, "value", json_string(b64));
	dura_free(b64);
	o = put(o, "error", e->error ? json_string(e->error) : json_null());
	o = put(o, "metadata", json_of(e->metadata));
	o = put(o, "created_at", json_integer(e->created_at));
	return put(o, "expires_at", json_integer(e->expires_at));
}

/* ---- in: a JSON object back into a record ----------------------------------------- */

static int bad(const char *k, const char *member, const char *what)
{
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s line: \"%s\" %s", k, member, what);
}

/* A string member, copied into *out (dura_free). */
static int get_str(json_t *o, const char *k, const char *member, char **out)
{
	json_t *v = json_object_get(o, member);
	if (!json_is_string(v))
		return bad(k, member, v ? "is not a string" : "is missing");
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return bad(k, member, "has a NUL");
	if (!(*out = dura_strdup(s)))
		return dura_error_oom("");
	return 0;
}

static int get_int(json_t *o, const char *k, const char *member, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, member);
	if (!json_is_integer(v))
		return bad(k, member, v ? "is not an integer" : "is missing");
	json_int_t n = json_integer_value(v);
	if (n < min || n > max)
		return bad(k, member, "is out of range");
	*out = (int64_t)n;
	return 0;
}

#define MAX_TIME INT64_C(253402300799999)

static int get_time(json_t *o, const char *k, const char *member, int64_t *out)
{
	return get_int(o, k, member, 0, MAX_TIME, out);
}

/* A JSON-valued member as the store's JSON text (dura_free); null as NULL
 * when allow_null, else as "null". */
static int get_json(json_t *o, const char *k, const char *member, int allow_null, char **out)
{
	json_t *v = json_object_get(o, member);
	if (!v)
		return bad(k, member, "is missing");
	if (json_is_null(v) && allow_null) {
		*out = NULL;
		return 0;
	}
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (!text)
		return dura_error_oom("");
	*out = dura_strdup(text);
	free(text); /* jansson's allocator */
	return *out ? 0 : dura_error_oom("");
}

#define TRY_(expr)                     \
	do {                           \
		int rc__ = (expr);     \
		if (rc__)              \
			return rc__;   \
	} while (0)

int dura__line_run_from(json_t *o, dura_record *r, int64_t *nsteps, int64_t *ncheckpoints, int64_t *nsignals)
{
	static const char k[] = "run";
	int64_t v;
	char *st = NULL;
	TRY_(get_str(o, k, "run_id", &r->run_id));
	TRY_(get_str(o, k, "workflow_name", &r->workflow_name));
	TRY_(get_str(o, k, "workflow_version", &r->workflow_version));
	TRY_(get_str(o, k, "foreign_id", &r->foreign_id));
	TRY_(get_str(o, k, "run_state", &st));
	int rc = dura_run_state_parse(&r->run_state, st);
	dura_free(st);
	if (rc)
		return bad(k, "run_state", "is not a run state");
	TRY_(get_str(o, k, "status", &r->status));
	TRY_(get_json(o, k, "state", 0, &r->state));
	TRY_(get_int(o, k, "version", 1, INT64_MAX, &r->version));
	TRY_(get_int(o, k, "step_no", 0, INT64_MAX, &r->step_no));
	TRY_(get_int(o, k, "attempt", 0, INT_MAX, &v));
	r->attempt = (int)v;
	TRY_(get_str(o, k, "error", &r->error));
	TRY_(get_json(o, k, "meta", 1, &r->meta));
	if (!r->meta && !(r->meta = dura_strdup("")))
		return dura_error_oom("");
	TRY_(get_time(o, k, "next_run_at", &r->next_run_at));
	TRY_(get_time(o, k, "created_at", &r->created_at));
	TRY_(get_time(o, k, "updated_at", &r->updated_at));
	TRY_(get_int(o, k, "priority", DURA_PRIORITY_MIN, DURA_PRIORITY_MAX, &v));
	r->priority = (int)v;
	TRY_(get_str(o, k, "concurrency_key", &r->concurrency_key));
	TRY_(get_str(o, k, "wait", &r->wait));
	TRY_(get_str(o, k, "parent_id", &r->parent_id));
	if (!(r->lease_owner = dura_strdup("")))
		return dura_error_oom("");
	TRY_(get_int(o, k, "steps", 0, INT64_MAX, nsteps));
	TRY_(get_int(o, k, "checkpoints", 0, INT64_MAX, ncheckpoints));
	return get_int(o, k, "signals", 0, INT64_MAX, nsignals);
}

int dura__line_step_from(json_t *o, dura_step *st)
{
	static const char k[] = "step";
	TRY_(get_str(o, k, "run_id", &st->run_id));
	TRY_(get_int(o, k, "step", 0, INT64_MAX, &st->step));
	TRY_(get_str(o, k, "node_id", &st->node_id));
	TRY_(get_json(o, k, "state", 0, &st->state));
	TRY_(get_time(o, k, "created_at", &st->created_at));
	return get_str(o, k, "workflow_version", &st->workflow_version);
}

int dura__line_checkpoint_from(json_t *o, dura_checkpoint *cp)
{
	static const char k[] = "checkpoint";
	TRY_(get_str(o, k, "checkpoint_id", &cp->checkpoint_id));
	TRY_(get_str(o, k, "run_id", &cp->run_id));
	TRY_(get_int(o, k, "step", 0, INT64_MAX, &cp->step));
	TRY_(get_json(o, k, "state", 0, &cp->state));
	TRY_(get_time(o, k, "created_at", &cp->created_at));
	return get_time(o, k, "updated_at", &cp->updated_at);
}

int dura__line_signal_from(json_t *o, dura_signal *sg)
{
	static const char k[] = "signal";
	TRY_(get_str(o, k, "signal_id", &sg->signal_id));
	TRY_(get_str(o, k, "run_id", &sg->run_id));
	TRY_(get_str(o, k, "name", &sg->name));
	TRY_(get_json(o, k, "payload", 0, &sg->payload));
	return get_time(o, k, "created_at", &sg->created_at);
}

int dura__line_event_from(json_t *o, dura_event *ev)
{
	static const char k[] = "event";
	TRY_(get_str(o, k, "id", &ev->id));
	TRY_(get_str(o, k, "workflow_name", &ev->workflow_name));
	TRY_(get_str(o, k, "run_id", &ev->run_id));
	TRY_(get_str(o, k, "type", &ev->type));
	TRY_(get_json(o, k, "data", 0, &ev->data));
	return get_time(o, k, "created_at", &ev->created_at);
}

int dura__line_schedule_from(json_t *o, dura_schedule *sch)
{
	static const char k[] = "schedule";
	int64_t v;
	TRY_(get_str(o, k, "name", &sch->name));
	TRY_(get_str(o, k, "cron", &sch->cron));
	TRY_(get_str(o, k, "zone", &sch->zone));
	TRY_(get_str(o, k, "workflow_name", &sch->workflow_name));
	TRY_(get_json(o, k, "state", 0, &sch->state));
	TRY_(get_int(o, k, "catch_up", 0, 1000, &v));
	sch->catch_up = (int)v;
	return get_time(o, k, "next_tick", &sch->next_tick);
}

int dura__line_workflow_from(json_t *o, dura_workflow_def *d)
{
	static const char k[] = "workflow";
	TRY_(get_str(o, k, "workflow_name", &d->workflow_name));
	TRY_(get_str(o, k, "version", &d->version));
	return get_json(o, k, "definition", 0, &d->definition);
}

int dura__line_cache_from(json_t *o, dura_cache_entry *e, unsigned char **value)
{
	static const char k[] = "cache";
	char *b64 = NULL;
	*value = NULL;
	TRY_(get_str(o, k, "key", &e->key));
	TRY_(get_str(o, k, "value", &b64));
	size_t n = strlen(b64);
	int rc = 0;
	if (n % 4 != 0 || n > (size_t)INT_MAX)
		rc = bad(k, "value", "is not base64");
	else if (!(*value = dura_malloc(n / 4 * 3 + 1)))
		rc = dura_error_oom("");
	else {
		int got = EVP_DecodeBlock(*value, (const unsigned char *)b64, (int)n);
		if (got < 0)
			rc = bad(k, "value", "is not base64");
		else {
			/* EVP_DecodeBlock counts the padding as zero bytes */
			size_t len = (size_t)got;
			for (size_t i = n; i > 0 && b64[i - 1] == '=' && len > 0; i--)
				len--;
			e->value_len = len;
		}
	}
	dura_free(b64);
	if (rc)
		return rc;
	json_t *err = json_object_get(o, "error");
	if (!err || (!json_is_null(err) && !json_is_string(err)))
		return bad(k, "error", "is not a string or null");
	if (json_is_string(err) && !(e->error = dura_strdup(json_string_value(err))))
		return dura_error_oom("");
	TRY_(get_json(o, k, "metadata", 1, &e->metadata));
	TRY_(get_time(o, k, "created_at", &e->created_at));
	return get_time(o, k, "expires_at", &e->expires_at);
}
