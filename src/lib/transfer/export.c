/*
 * export.c - dura_export: a store, or one workflow of it, as JSON lines
 * (docs/export.md). The order is the one an import needs: the versions
 * and schedules, then each run followed by its steps, checkpoints and
 * signals, then the outbox, the live cache entries, and an end line that
 * counts the lines between it and the header.
 */
#include "transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct exporter {
	dura_store *store;
	const dura_export_options *opts;
	dura_line_fn emit;
	void *payload;
	dura_transfer_stats st;
} exporter;

/* Write o (stolen) as one line. */
static int line(exporter *x, json_t *o)
{
	if (!o)
		return dura_error_oom("");
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(o);
	if (!text)
		return dura_error_oom("");
	size_t n = strlen(text);
	int rc = x->emit(text, n, x->payload);
	free(text); /* jansson's allocator */
	if (rc)
		return rc;
	x->st.lines++;
	x->st.bytes += (int64_t)n + 1;
	if (x->opts->progress && x->st.lines % 1000 == 0)
		x->opts->progress(&x->st, x->opts->progress_payload);
	return 0;
}

static int workflows(exporter *x)
{
	dura_workflow_def_list l;
	int rc = dura_store_workflow_list(x->store, x->opts->workflow, &l);
	if (rc == DURA_ENOTSUP)
		return 0; /* a store without versions has none to move */
	for (size_t i = 0; rc == 0 && i < l.count; i++)
		if ((rc = line(x, dura__line_workflow(&l.items[i]))) == 0)
			x->st.workflows++;
	dura_workflow_def_list_free(&l);
	return rc;
}

static int schedules(exporter *x)
{
	dura_schedules l;
	int rc = dura_store_schedule_list(x->store, &l);
	if (rc == DURA_ENOTSUP)
		return 0;
	for (size_t i = 0; rc == 0 && i < l.count; i++) {
		if (x->opts->workflow && strcmp(l.items[i].workflow_name, x->opts->workflow) != 0)
			continue;
		if ((rc = line(x, dura__line_schedule(&l.items[i]))) == 0)
			x->st.schedules++;
	}
	dura_schedules_free(&l);
	return rc;
}

/* One run whole: its steps up to the record's step_no (a commit after the
 * record was read is not the record's), its checkpoints and signals. */
static int run(exporter *x, const dura_record *r)
{
	dura_step_list steps;
	dura_checkpoint_list cps;
	dura_signal_list sigs;
	memset(&cps, 0, sizeof(cps));
	memset(&sigs, 0, sizeof(sigs));
	int rc = dura_store_history(x->store, r->run_id, 0, 0, &steps);
	if (rc)
		return rc;
	size_t n = 0;
	while (n < steps.count && steps.items[n].step < r->step_no)
		n++;
	if ((rc = dura_store_checkpoint_list(x->store, r->run_id, &cps)) == 0) {
		rc = dura_store_signal_list(x->store, r->run_id, &sigs);
		if (rc == DURA_ENOTSUP)
			rc = 0;
	}
	if (rc == 0 && (n != 0 && n != (size_t)r->step_no))
		rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
		                           "run %s changed while it was read (%zu of %lld steps): export again", r->run_id, n,
		                           (long long)r->step_no);
	if (rc == 0)
		rc = line(x, dura__line_run(r, n, cps.count, sigs.count));
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = line(x, dura__line_step(&steps.items[i]));
	/* checkpoints oldest first: the list is newest first */
	for (size_t i = cps.count; rc == 0 && i-- > 0;)
		rc = line(x, dura__line_checkpoint(&cps.items[i]));
	for (size_t i = 0; rc == 0 && i < sigs.count; i++)
		rc = line(x, dura__line_signal(&sigs.items[i]));
	if (rc == 0) {
		x->st.runs++;
		x->st.steps += (int64_t)n;
		x->st.checkpoints += (int64_t)cps.count;
		x->st.signals += (int64_t)sigs.count;
	}
	dura_step_list_free(&steps);
	dura_checkpoint_list_free(&cps);
	dura_signal_list_free(&sigs);
	return rc;
}

static int runs(exporter *x)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.workflow_name = x->opts->workflow;
	f.created_after = x->opts->since;
	f.limit = 500;
	char *cursor = NULL;
	int rc = 0;
	for (;;) {
		dura_record_list l;
		f.cursor = cursor;
		if ((rc = dura_store_list_runs(x->store, &f, &l)) != 0)
			break;
		for (size_t i = 0; rc == 0 && i < l.count; i++) {
			rc = run(x, &l.items[i]);
			if (rc == DURA_ECONFLICT) { /* changed between its record and its steps: read it again */
				dura_record *again = NULL;
				for (int tries = 0; rc == DURA_ECONFLICT && tries < 5; tries++) {
					dura_record_free(again);
					again = NULL;
					if ((rc = dura_store_get_run(x->store, l.items[i].run_id, &again)) == 0)
						rc = run(x, again);
				}
				dura_record_free(again);
				if (rc == DURA_ENOTFOUND) /* pruned meanwhile: nothing to move */
					rc = 0;
			}
		}
		dura_free(cursor);
		cursor = l.next_cursor ? dura_strdup(l.next_cursor) : NULL;
		int more = l.next_cursor != NULL;
		dura_record_list_free(&l);
		if (rc || !more)
			break;
		if (!cursor) {
			rc = dura_error_oom("");
			break;
		}
	}
	dura_free(cursor);
	return rc;
}

static int events(exporter *x)
{
	char after[DURA_MAX_ID_LEN + 1] = "";
	int rc = 0;
	for (;;) {
		dura_event_list l;
		if ((rc = dura_store_outbox_list(x->store, after, 1000, &l)) != 0)
			return rc == DURA_ENOTSUP ? 0 : rc;
		for (size_t i = 0; rc == 0 && i < l.count; i++) {
			const dura_event *ev = &l.items[i];
			if ((x->opts->workflow && strcmp(ev->workflow_name, x->opts->workflow) != 0) ||
			    (x->opts->since && ev->created_at < x->opts->since))
				continue;
			if ((rc = line(x, dura__line_event(ev))) == 0)
				x->st.events++;
		}
		size_t n = l.count;
		if (n)
			snprintf(after, sizeof(after), "%s", l.items[n - 1].id);
		dura_event_list_free(&l);
		if (rc || n < 1000)
			return rc;
	}
}

/* The live entries, with their values; one that expires or goes while
 * the export runs is passed over. */
static int cache(exporter *x)
{
	char *cursor = NULL;
	int rc = 0;
	for (;;) {
		dura_cache_list l;
		if ((rc = dura_store_cache_list(x->store, cursor, 500, &l)) != 0)
			break;
		for (size_t i = 0; rc == 0 && i < l.count; i++) {
			dura_cache_entry *e = NULL;
			rc = dura_store_cache_get(x->store, l.items[i].key, &e);
			if (rc == DURA_ENOTFOUND) {
				rc = 0;
				continue;
			}
			if (rc == 0 && (rc = line(x, dura__line_cache(e))) == 0)
				x->st.cache_entries++;
			dura_cache_entry_free(e);
		}
		dura_free(cursor);
		cursor = l.next_cursor ? dura_strdup(l.next_cursor) : NULL;
		int more = l.next_cursor != NULL;
		dura_cache_list_free(&l);
		if (rc || !more)
			break;
		if (!cursor) {
			rc = dura_error_oom("");
			break;
		}
	}
	dura_free(cursor);
	return rc;
}

int dura_export(dura_store *store, const dura_export_options *opts, dura_line_fn emit, void *payload,
                dura_transfer_stats *stats)
{
	static const char fn[] = "dura_export";
	dura_export_options defaults = DURA_EXPORT_OPTIONS_INIT;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!store || !emit)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: store or emit is NULL", fn);
	if (opts && opts->version != DURA_EXPORT_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: options version %u, expected %u", fn,
		                             opts->version, DURA_EXPORT_OPTIONS_VERSION);
	opts = opts ? opts : &defaults;
	if (opts->workflow && (!*opts->workflow || strlen(opts->workflow) > DURA_MAX_ID_LEN))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: the workflow name is empty or too long", fn);
	if (opts->since < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: since %lld is negative", fn, (long long)opts->since);
	exporter x = {store, opts, emit, payload, {0}};
	json_t *h = json_pack("{s:s, s:i, s:I, s:s, s:s?, s:I}", "kind", DURA__EXPORT_MAGIC, "format", DURA__EXPORT_FORMAT,
	                      "exported_at", (json_int_t)dura_now_ms(), "source", dura__store_scheme(store), "workflow",
	                      opts->workflow, "since", (json_int_t)opts->since);
	int rc = line(&x, h);
	if (rc == 0)
		rc = workflows(&x);
	if (rc == 0)
		rc = schedules(&x);
	if (rc == 0)
		rc = runs(&x);
	if (rc == 0)
		rc = events(&x);
	if (rc == 0 && !opts->workflow)
		rc = cache(&x);
	if (rc == 0)
		rc = line(&x, json_pack("{s:s, s:I}", "kind", "end", "records", (json_int_t)(x.st.lines - 1)));
	if (opts->progress)
		opts->progress(&x.st, opts->progress_payload);
	if (stats)
		*stats = x.st;
	return rc;
}
