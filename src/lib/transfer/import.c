/*
 * import.c - dura_import_*: an export read back into a store, line by line
 * (docs/export.md).
 *
 * A run is written in one transaction once its record line and all the
 * step, checkpoint and signal lines it announced have been read; until
 * then it is only in memory. So a file that is cut short or goes bad in
 * the middle of a run leaves that run out entirely, and everything before
 * it is whole. A record already in the store is compared with the line:
 * the same is skipped (an import repeated changes nothing), a different
 * one is refused with the line's number. With resume, a record there is
 * skipped by its id without comparing.
 */
#include "transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WANT_HEADER, IN_BODY, ENDED, FAILED };

struct dura_importer {
	dura_store *store;
	dura_import_options opts;
	dura_transfer_stats st;
	int phase;
	/* the run being read: its record and what it announced */
	int have_run;
	int64_t run_line;
	dura_record rec;
	int64_t want_steps, want_cps, want_sigs;
	dura_step *steps;
	size_t nsteps, capsteps;
	dura_checkpoint *cps;
	size_t ncps, capcps;
	dura_signal *sigs;
	size_t nsigs, capsigs;
};

/* Fail the importer at the current line, with the thread's error (or msg). */
static int fail(dura_importer *im, int code, const char *msg)
{
	const dura_error *e = dura_error_last();
	char why[900];
	snprintf(why, sizeof(why), "%s", msg ? msg : e && e->message && *e->message ? e->message : dura_strerror(code));
	im->phase = FAILED;
	im->st.line = im->st.lines;
	return dura_error_set_native(code, "", 0, NULL, "line %lld: %s", (long long)im->st.lines, why);
}

static void run_clear(dura_importer *im)
{
	dura_record_clear(&im->rec);
	for (size_t i = 0; i < im->nsteps; i++)
		dura_step_clear(&im->steps[i]);
	for (size_t i = 0; i < im->ncps; i++)
		dura_checkpoint_clear(&im->cps[i]);
	for (size_t i = 0; i < im->nsigs; i++)
		dura_signal_clear(&im->sigs[i]);
	im->nsteps = im->ncps = im->nsigs = 0;
	im->have_run = 0;
}

int dura_import_new(dura_importer **out, dura_store *store, const dura_import_options *opts)
{
	static const char fn[] = "dura_import_new";
	dura_import_options defaults = DURA_IMPORT_OPTIONS_INIT;
	if (!out || !store)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out or store is NULL", fn);
	*out = NULL;
	if (opts && opts->version != DURA_IMPORT_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: options version %u, expected %u", fn,
		                             opts->version, DURA_IMPORT_OPTIONS_VERSION);
	dura_importer *im = dura_calloc(1, sizeof(*im));
	if (!im)
		return dura_error_oom("");
	im->store = store;
	im->opts = opts ? *opts : defaults;
	*out = im;
	return 0;
}

void dura_import_free(dura_importer *im)
{
	if (!im)
		return;
	run_clear(im);
	dura_free(im->steps);
	dura_free(im->cps);
	dura_free(im->sigs);
	dura_free(im);
}

void dura_import_stats(const dura_importer *im, dura_transfer_stats *out)
{
	if (!out)
		return;
	if (im)
		*out = im->st;
	else
		memset(out, 0, sizeof(*out));
}

/* ---- a run --------------------------------------------------------------------------- */

static int run_complete(const dura_importer *im)
{
	return (int64_t)im->nsteps == im->want_steps && (int64_t)im->ncps == im->want_cps &&
	       (int64_t)im->nsigs == im->want_sigs;
}

/* The same run as the store's: every change bumps a run's version. */
static int same_run(const dura_record *a, const dura_record *b)
{
	return a->version == b->version && a->step_no == b->step_no && a->run_state == b->run_state &&
	       a->updated_at == b->updated_at && strcmp(a->status, b->status) == 0 && dura__json_same(a->state, b->state);
}

/* Write the run read so far (it is complete). */
static int run_write(dura_importer *im)
{
	dura_record *there = NULL;
	int rc = dura_store_get_run(im->store, im->rec.run_id, &there);
	if (rc == 0) {
		int same = im->opts.resume || same_run(there, &im->rec);
		char msg[600];
		snprintf(msg, sizeof(msg), "run %s (from line %lld) is in the store already, and differs (version %lld there, %lld here)",
		         im->rec.run_id, (long long)im->run_line, (long long)there->version, (long long)im->rec.version);
		dura_record_free(there);
		if (!same)
			return fail(im, DURA_ECONFLICT, msg);
		im->st.unchanged++;
		run_clear(im);
		return 0;
	}
	if (rc != DURA_ENOTFOUND)
		return fail(im, rc, NULL);
	dura_import_run r = {&im->rec, im->steps, im->nsteps, im->cps, im->ncps, im->sigs, im->nsigs};
	if ((rc = dura_store_import_run(im->store, &r)) != 0)
		return fail(im, rc == DURA_EEXISTS ? DURA_ECONFLICT : rc, NULL);
	im->st.runs++;
	im->st.steps += (int64_t)im->nsteps;
	im->st.checkpoints += (int64_t)im->ncps;
	im->st.signals += (int64_t)im->nsigs;
	run_clear(im);
	return 0;
}

/* The run being read ends here (another kind of line, or the end). */
static int run_end(dura_importer *im)
{
	if (!im->have_run)
		return 0;
	if (!run_complete(im)) {
		char msg[600];
		snprintf(msg, sizeof(msg),
		         "run %s (line %lld) announced %lld steps, %lld checkpoints and %lld signals; %zu, %zu and %zu came",
		         im->rec.run_id, (long long)im->run_line, (long long)im->want_steps, (long long)im->want_cps,
		         (long long)im->want_sigs, im->nsteps, im->ncps, im->nsigs);
		return fail(im, DURA_EINVAL, msg);
	}
	return run_write(im);
}

/* Room for one more of a run's parts. */
static int grow(void **items, size_t n, size_t *cap, size_t size)
{
	return dura_store_grow(items, n, cap, size) ? dura_error_oom("") : 0;
}

static int run_part(dura_importer *im, const char *kind, json_t *o)
{
	if (!im->have_run)
		return fail(im, DURA_EINVAL, "a step, checkpoint or signal line that follows no run line");
	int rc;
	const char *rid;
	if (strcmp(kind, "step") == 0) {
		if ((int64_t)im->nsteps >= im->want_steps)
			return fail(im, DURA_EINVAL, "more steps than the run line announced");
		if ((rc = grow((void **)&im->steps, im->nsteps, &im->capsteps, sizeof(*im->steps))) != 0)
			return fail(im, rc, NULL);
		dura_step *st = &im->steps[im->nsteps++];
		memset(st, 0, sizeof(*st));
		rc = dura__line_step_from(o, st);
		rid = st->run_id;
	} else if (strcmp(kind, "checkpoint") == 0) {
		if ((int64_t)im->ncps >= im->want_cps)
			return fail(im, DURA_EINVAL, "more checkpoints than the run line announced");
		if ((rc = grow((void **)&im->cps, im->ncps, &im->capcps, sizeof(*im->cps))) != 0)
			return fail(im, rc, NULL);
		dura_checkpoint *cp = &im->cps[im->ncps++];
		memset(cp, 0, sizeof(*cp));
		rc = dura__line_checkpoint_from(o, cp);
		rid = cp->run_id;
	} else {
		if ((int64_t)im->nsigs >= im->want_sigs)
			return fail(im, DURA_EINVAL, "more signals than the run line announced");
		if ((rc = grow((void **)&im->sigs, im->nsigs, &im->capsigs, sizeof(*im->sigs))) != 0)
			return fail(im, rc, NULL);
		dura_signal *sg = &im->sigs[im->nsigs++];
		memset(sg, 0, sizeof(*sg));
		rc = dura__line_signal_from(o, sg);
		rid = sg->run_id;
	}
	if (rc)
		return fail(im, rc, NULL);
	if (!rid || strcmp(rid, im->rec.run_id) != 0)
		return fail(im, DURA_EINVAL, "a line of another run than the run line before it");
	return run_complete(im) ? run_write(im) : 0;
}

static int run_begin(dura_importer *im, json_t *o)
{
	memset(&im->rec, 0, sizeof(im->rec));
	im->have_run = 1;
	im->run_line = im->st.lines;
	int rc = dura__line_run_from(o, &im->rec, &im->want_steps, &im->want_cps, &im->want_sigs);
	if (rc)
		return fail(im, rc, NULL);
	return run_complete(im) ? run_write(im) : 0;
}

/* ---- the other records ------------------------------------------------------------- */

static int workflow(dura_importer *im, json_t *o)
{
	dura_workflow_def d;
	memset(&d, 0, sizeof(d));
	int rc = dura__line_workflow_from(o, &d);
	dura_workflow_def_list l;
	memset(&l, 0, sizeof(l));
	if (rc == 0)
		rc = dura_store_workflow_list(im->store, d.workflow_name, &l);
	int there = 0, same = 0;
	for (size_t i = 0; rc == 0 && i < l.count; i++)
		if (strcmp(l.items[i].version, d.version) == 0) {
			there = 1;
			same = dura__json_same(l.items[i].definition, d.definition);
		}
	dura_workflow_def_list_free(&l);
	if (rc == 0 && there && !same && !im->opts.resume)
		rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
		                           "workflow %.255s version %s is in the store already with another definition",
		                           d.workflow_name, d.version);
	else if (rc == 0 && there)
		im->st.unchanged++;
	else if (rc == 0 && (rc = dura__store_workflow_put(im->store, d.workflow_name, d.version, d.definition)) == 0)
		im->st.workflows++;
	dura_workflow_def_clear(&d);
	return rc ? fail(im, rc, NULL) : 0;
}

static int same_schedule(const dura_schedule *a, const dura_schedule *b)
{
	return strcmp(a->cron, b->cron) == 0 && strcmp(a->zone, b->zone) == 0 &&
	       strcmp(a->workflow_name, b->workflow_name) == 0 && a->catch_up == b->catch_up &&
	       dura__json_same(a->state, b->state);
}

static int schedule(dura_importer *im, json_t *o)
{
	dura_schedule sch, *there = NULL;
	memset(&sch, 0, sizeof(sch));
	int rc = dura__line_schedule_from(o, &sch);
	if (rc == 0 && (rc = dura_store_schedule_get(im->store, sch.name, &there)) == 0) {
		if (!im->opts.resume && !same_schedule(there, &sch))
			rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
			                           "schedule %.255s is in the store already, and differs", sch.name);
		else
			im->st.unchanged++;
	} else if (rc == DURA_ENOTFOUND) {
		dura_schedule_spec spec = DURA_SCHEDULE_SPEC_INIT;
		spec.name = sch.name;
		spec.cron = sch.cron;
		spec.zone = sch.zone;
		spec.workflow = sch.workflow_name;
		spec.state = sch.state;
		spec.catch_up = sch.catch_up;
		if ((rc = dura_store_schedule_set(im->store, &spec)) == 0 &&
		    (rc = dura_store_schedule_get(im->store, sch.name, &there)) == 0) {
			/* the tick it was at, not the next one after now: one due meanwhile still fires */
			if (there->next_tick != sch.next_tick)
				rc = dura_store_schedule_advance(im->store, sch.name, there->next_tick, sch.next_tick);
			if (rc == 0)
				im->st.schedules++;
		}
	}
	dura_schedule_free(there);
	dura_schedule_clear(&sch);
	return rc ? fail(im, rc, NULL) : 0;
}

static int event(dura_importer *im, json_t *o)
{
	dura_event ev;
	memset(&ev, 0, sizeof(ev));
	int rc = dura__line_event_from(o, &ev);
	if (rc == 0) {
		rc = dura_store_import_event(im->store, &ev);
		if (rc == 0)
			im->st.events++;
		else if (rc == DURA_EEXISTS) { /* an event id is a UUIDv7: the same event */
			im->st.unchanged++;
			rc = 0;
		}
	}
	dura_event_clear(&ev);
	return rc ? fail(im, rc, NULL) : 0;
}

static int same_entry(const dura_cache_entry *a, const dura_cache_entry *b, const unsigned char *value)
{
	return a->value_len == b->value_len && memcmp(a->value ? a->value : (const unsigned char *)"", value, a->value_len) == 0 &&
	       ((!a->error && !b->error) || (a->error && b->error && strcmp(a->error, b->error) == 0)) &&
	       ((!a->metadata || !*a->metadata) ? (!b->metadata || !*b->metadata)
	                                        : (b->metadata && dura__json_same(a->metadata, b->metadata)));
}

static int cache_entry(dura_importer *im, json_t *o)
{
	dura_cache_entry e, *there = NULL;
	unsigned char *value = NULL;
	memset(&e, 0, sizeof(e));
	int rc = dura__line_cache_from(o, &e, &value);
	if (rc == 0 && (rc = dura_store_cache_get(im->store, e.key, &there)) == 0) {
		if (!im->opts.resume && !same_entry(there, &e, value))
			rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
			                           "cache key %.255s is in the store already with another value", e.key);
		else
			im->st.unchanged++;
	} else if (rc == DURA_ENOTFOUND) {
		int64_t ttl = e.expires_at ? e.expires_at - dura_now_ms() : 0;
		rc = 0;
		if (e.expires_at && ttl <= 0)
			im->st.skipped++; /* it expired on the way */
		else if ((rc = dura_store_cache_put(im->store, e.key, value, e.value_len, e.error, e.metadata, ttl)) == 0)
			im->st.cache_entries++;
	}
	dura_cache_entry_free(there);
	dura_cache_entry_clear(&e);
	dura_free(value);
	return rc ? fail(im, rc, NULL) : 0;
}

/* ---- lines ---------------------------------------------------------------------------- */

static int header(dura_importer *im, json_t *o, const char *kind)
{
	if (strcmp(kind, DURA__EXPORT_MAGIC) != 0)
		return fail(im, DURA_EINVAL, "not a dura export: the first line is not its header");
	json_t *f = json_object_get(o, "format");
	if (!json_is_integer(f))
		return fail(im, DURA_EINVAL, "the header has no format number");
	if (json_integer_value(f) != DURA__EXPORT_FORMAT) {
		char msg[128];
		snprintf(msg, sizeof(msg), "export format %lld: this dura reads format %d", (long long)json_integer_value(f),
		         DURA__EXPORT_FORMAT);
		return fail(im, DURA_EVERSION, msg);
	}
	im->phase = IN_BODY;
	return 0;
}

static int end(dura_importer *im, json_t *o)
{
	int rc = run_end(im);
	if (rc)
		return rc;
	json_t *n = json_object_get(o, "records");
	if (!json_is_integer(n) || json_integer_value(n) != im->st.lines - 2) {
		char msg[160];
		snprintf(msg, sizeof(msg), "the end line counts %lld records, the file had %lld before it",
		         json_is_integer(n) ? (long long)json_integer_value(n) : -1LL, (long long)(im->st.lines - 2));
		return fail(im, DURA_EINVAL, msg);
	}
	im->phase = ENDED;
	return 0;
}

int dura_import_line(dura_importer *im, const char *text, size_t len)
{
	if (!im || (!text && len))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_import_line: importer or line is NULL");
	if (im->phase == FAILED)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_import_line: line %lld failed already",
		                             (long long)im->st.line);
	im->st.lines++;
	im->st.bytes += (int64_t)len + 1;
	if (len && text[len - 1] == '\r')
		len--;
	if (im->phase == ENDED)
		return fail(im, DURA_EINVAL, "a line after the end line");
	json_error_t je;
	json_t *o = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		char msg[300];
		snprintf(msg, sizeof(msg), "not JSON (%s, at column %d): a corrupted or cut line", je.text, je.column);
		return fail(im, DURA_EINVAL, msg);
	}
	const char *kind = json_string_value(json_object_get(o, "kind"));
	int rc;
	if (!json_is_object(o) || !kind)
		rc = fail(im, DURA_EINVAL, "not a record: no \"kind\"");
	else if (im->phase == WANT_HEADER)
		rc = header(im, o, kind);
	else if (strcmp(kind, "step") == 0 || strcmp(kind, "checkpoint") == 0 || strcmp(kind, "signal") == 0)
		rc = run_part(im, kind, o);
	else if ((rc = run_end(im)) != 0)
		;
	else if (strcmp(kind, "run") == 0)
		rc = run_begin(im, o);
	else if (strcmp(kind, "workflow") == 0)
		rc = workflow(im, o);
	else if (strcmp(kind, "schedule") == 0)
		rc = schedule(im, o);
	else if (strcmp(kind, "event") == 0)
		rc = event(im, o);
	else if (strcmp(kind, "cache") == 0)
		rc = cache_entry(im, o);
	else if (strcmp(kind, "end") == 0)
		rc = end(im, o);
	else
		rc = fail(im, DURA_EINVAL, "an unknown kind of record");
	json_decref(o);
	if (rc == 0 && im->opts.progress && im->st.lines % 1000 == 0)
		im->opts.progress(&im->st, im->opts.progress_payload);
	return rc;
}

int dura_import_finish(dura_importer *im)
{
	if (!im)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_import_finish: importer is NULL");
	if (im->phase == FAILED)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_import_finish: line %lld failed",
		                             (long long)im->st.line);
	int rc = 0;
	if (im->phase != ENDED) {
		im->st.lines++; /* the line that is missing */
		if (im->phase == WANT_HEADER)
			rc = fail(im, DURA_EINVAL, "the file is empty: no header");
		else if (im->have_run && !run_complete(im))
			rc = fail(im, DURA_EINVAL, "the file ends inside a run, which is not imported (cut short?)");
		else
			rc = fail(im, DURA_EINVAL, "the file ends without its end line (cut short?)");
		im->st.lines--;
	}
	if (im->opts.progress)
		im->opts.progress(&im->st, im->opts.progress_payload);
	return rc;
}
