/*
 * rows.c - the SQL stores' row decoders: a row of one of sql/catalog.h's
 * column lists, read through the driver's column accessors (rows.h), into
 * a dura_record, dura_step, dura_checkpoint, dura_event,
 * dura_cache_entry, dura_signal, dura_schedule, dura_workflow_def or
 * dura_run_count. The only allocation failures are the copies made here
 * and a driver's own (its text accessor says so); either is DURA_ENOMEM.
 */
#include "rows.h"

#include <string.h>

/* Copy a text column; NULL becomes "" when empty is set, else stays NULL.
 * A value the driver cannot hand out as text is a failure, not "". */
static int col_str(const dura_sql_row *row, int i, int empty, char **out)
{
	const char *t;
	size_t n = 0;
	*out = NULL;
	if (row->ops->text(row->impl, i, &t, &n) != 0)
		return -1;
	if (!t) {
		if (!empty)
			return 0;
		*out = dura_strdup("");
	} else {
		*out = dura_strndup(t, n);
	}
	return *out ? 0 : -1;
}

static int64_t col_int(const dura_sql_row *row, int i)
{
	return row->ops->int64(row->impl, i);
}

static int64_t col_time(const dura_sql_row *row, int i)
{
	return row->ops->time_ms(row->impl, i);
}

int dura_sql_row_record(const dura_sql_row *row, dura_record *r)
{
	memset(r, 0, sizeof(*r));
	if (col_str(row, 0, 1, &r->run_id) || col_str(row, 1, 1, &r->workflow_name) ||
	    col_str(row, 2, 1, &r->foreign_id) || col_str(row, 4, 1, &r->status) || col_str(row, 5, 1, &r->state) ||
	    col_str(row, 9, 1, &r->error) || col_str(row, 10, 1, &r->meta) || col_str(row, 11, 1, &r->lease_owner) ||
	    col_str(row, 17, 1, &r->concurrency_key) || col_str(row, 18, 1, &r->wait) || col_str(row, 19, 1, &r->parent_id) ||
	    col_str(row, 20, 1, &r->workflow_version)) {
		dura_record_clear(r);
		return dura_error_oom(row->ops->store);
	}
	r->run_state = (int)col_int(row, 3);
	r->version = col_int(row, 6);
	r->step_no = col_int(row, 7);
	r->attempt = (int)col_int(row, 8);
	r->lease_expires_at = col_time(row, 12);
	r->next_run_at = col_time(row, 13);
	r->created_at = col_time(row, 14);
	r->updated_at = col_time(row, 15);
	r->priority = (int)col_int(row, 16);
	return 0;
}

int dura_sql_row_step(const dura_sql_row *row, dura_step *p)
{
	memset(p, 0, sizeof(*p));
	if (col_str(row, 0, 1, &p->run_id) || col_str(row, 2, 1, &p->node_id) || col_str(row, 3, 1, &p->state) ||
	    col_str(row, 5, 1, &p->workflow_version)) {
		dura_step_clear(p);
		return dura_error_oom(row->ops->store);
	}
	p->step = col_int(row, 1);
	p->created_at = col_time(row, 4);
	return 0;
}

int dura_sql_row_checkpoint(const dura_sql_row *row, dura_checkpoint *p)
{
	memset(p, 0, sizeof(*p));
	if (col_str(row, 0, 1, &p->checkpoint_id) || col_str(row, 1, 1, &p->run_id) || col_str(row, 3, 1, &p->state)) {
		dura_checkpoint_clear(p);
		return dura_error_oom(row->ops->store);
	}
	p->step = col_int(row, 2);
	p->created_at = col_time(row, 4);
	p->updated_at = col_time(row, 5);
	return 0;
}

int dura_sql_row_cache_entry(const dura_sql_row *row, dura_cache_entry *e, int with_value)
{
	memset(e, 0, sizeof(*e));
	if (col_str(row, 0, 1, &e->key) || col_str(row, 2, 0, &e->error) || col_str(row, 5, 0, &e->metadata))
		goto oom;
	if (with_value) {
		if (!row->ops->is_null(row->impl, 1)) {
			size_t n = 0;
			const void *v = row->ops->blob(row->impl, 1, &n);
			if (!v)
				goto oom;
			/* one more byte, NUL, so text values can be read as strings */
			e->value = dura_malloc(n + 1);
			if (!e->value)
				goto oom;
			if (n)
				memcpy(e->value, v, n);
			e->value[n] = '\0';
			e->value_len = n;
		}
	} else {
		e->value_len = (size_t)col_int(row, 1);
	}
	e->created_at = col_time(row, 3);
	e->expires_at = col_time(row, 4);
	return 0;
oom:
	dura_cache_entry_clear(e);
	return dura_error_oom(row->ops->store);
}

int dura_sql_row_event(const dura_sql_row *row, dura_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (col_str(row, 0, 1, &ev->id) || col_str(row, 1, 1, &ev->workflow_name) || col_str(row, 2, 1, &ev->run_id) ||
	    col_str(row, 3, 1, &ev->type) || col_str(row, 4, 1, &ev->data)) {
		dura_event_clear(ev);
		return dura_error_oom(row->ops->store);
	}
	ev->created_at = col_time(row, 5);
	return 0;
}

int dura_sql_row_signal(const dura_sql_row *row, dura_signal *sg)
{
	memset(sg, 0, sizeof(*sg));
	if (col_str(row, 0, 1, &sg->signal_id) || col_str(row, 1, 1, &sg->run_id) || col_str(row, 2, 1, &sg->name) ||
	    col_str(row, 3, 1, &sg->payload)) {
		dura_signal_clear(sg);
		return dura_error_oom(row->ops->store);
	}
	sg->created_at = col_time(row, 4);
	return 0;
}

int dura_sql_row_schedule(const dura_sql_row *row, dura_schedule *sc)
{
	memset(sc, 0, sizeof(*sc));
	if (col_str(row, 0, 1, &sc->name) || col_str(row, 1, 1, &sc->cron) || col_str(row, 2, 1, &sc->zone) ||
	    col_str(row, 3, 1, &sc->workflow_name) || col_str(row, 4, 1, &sc->state)) {
		dura_schedule_clear(sc);
		return dura_error_oom(row->ops->store);
	}
	sc->catch_up = (int)col_int(row, 5);
	sc->next_tick = col_time(row, 6);
	sc->created_at = col_time(row, 7);
	sc->updated_at = col_time(row, 8);
	return 0;
}

int dura_sql_row_workflow(const dura_sql_row *row, dura_workflow_def *d)
{
	memset(d, 0, sizeof(*d));
	if (col_str(row, 0, 1, &d->workflow_name) || col_str(row, 1, 1, &d->version) ||
	    col_str(row, 2, 1, &d->definition)) {
		dura_workflow_def_clear(d);
		return dura_error_oom(row->ops->store);
	}
	d->first_seen_at = col_time(row, 3);
	d->last_seen_at = col_time(row, 4);
	return 0;
}

int dura_sql_row_run_count(const dura_sql_row *row, dura_run_count *c)
{
	memset(c, 0, sizeof(*c));
	if (col_str(row, 0, 1, &c->workflow_name) || col_str(row, 1, 1, &c->workflow_version)) {
		dura_run_count_clear(c);
		return dura_error_oom(row->ops->store);
	}
	c->run_state = (int)col_int(row, 2);
	c->count = col_int(row, 3);
	return 0;
}

int dura_sql_created_record(dura_record **out, const char *store, const char *run_id, const dura_run_create *req,
                            const char *fid, const char *state, const char *status, int run_state, int64_t now,
                            int64_t next)
{
	dura_record *r = dura_calloc(1, sizeof(*r));
	if (!r)
		return dura_error_oom(store);
	r->run_id = dura_strdup(run_id);
	r->workflow_name = dura_strdup(req->workflow_name);
	r->foreign_id = dura_strdup(fid);
	r->status = dura_strdup(status);
	r->state = dura_strdup(state);
	r->error = dura_strdup("");
	r->meta = dura_strdup(req->meta ? req->meta : "");
	r->lease_owner = dura_strdup("");
	r->concurrency_key = dura_strdup(req->concurrency_key ? req->concurrency_key : "");
	r->wait = dura_strdup("");
	/* the core hands every store a dura_run_create of the current version */
	r->parent_id = dura_strdup(req->parent_id ? req->parent_id : "");
	r->workflow_version = dura_strdup(req->workflow_version ? req->workflow_version : "");
	if (!r->run_id || !r->workflow_name || !r->foreign_id || !r->status || !r->state || !r->error || !r->meta ||
	    !r->lease_owner || !r->concurrency_key || !r->wait || !r->parent_id || !r->workflow_version) {
		dura_record_free(r);
		return dura_error_oom(store);
	}
	r->run_state = run_state;
	r->priority = req->priority;
	r->version = 1;
	r->next_run_at = next;
	r->created_at = r->updated_at = now;
	*out = r;
	return 0;
}

/* ---- many rows, one row ------------------------------------------------------ */

/* Each kind's decoder and clearer on void *, so that one collect() fills
 * every kind of list (calling the typed functions through a void *
 * signature instead would be undefined behaviour). */
static int item_record(const dura_sql_row *row, void *item)
{
	return dura_sql_row_record(row, item);
}

static int item_step(const dura_sql_row *row, void *item)
{
	return dura_sql_row_step(row, item);
}

static int item_checkpoint(const dura_sql_row *row, void *item)
{
	return dura_sql_row_checkpoint(row, item);
}

static int item_cache_listed(const dura_sql_row *row, void *item)
{
	return dura_sql_row_cache_entry(row, item, 0);
}

static int item_cache_value(const dura_sql_row *row, void *item)
{
	return dura_sql_row_cache_entry(row, item, 1);
}

static int item_event(const dura_sql_row *row, void *item)
{
	return dura_sql_row_event(row, item);
}

static int item_signal(const dura_sql_row *row, void *item)
{
	return dura_sql_row_signal(row, item);
}

static int item_schedule(const dura_sql_row *row, void *item)
{
	return dura_sql_row_schedule(row, item);
}

static int item_workflow(const dura_sql_row *row, void *item)
{
	return dura_sql_row_workflow(row, item);
}

static int item_run_count(const dura_sql_row *row, void *item)
{
	return dura_sql_row_run_count(row, item);
}

static void clear_record(void *p)
{
	dura_record_clear(p);
}

static void clear_step(void *p)
{
	dura_step_clear(p);
}

static void clear_checkpoint(void *p)
{
	dura_checkpoint_clear(p);
}

static void clear_cache(void *p)
{
	dura_cache_entry_clear(p);
}

static void clear_event(void *p)
{
	dura_event_clear(p);
}

static const struct {
	size_t size;
	int (*decode)(const dura_sql_row *, void *);
	void (*clear)(void *);
} kinds[] = {
	[DURA_SQL_RECORD] = {sizeof(dura_record), item_record, clear_record},
	[DURA_SQL_STEP] = {sizeof(dura_step), item_step, clear_step},
	[DURA_SQL_CHECKPOINT] = {sizeof(dura_checkpoint), item_checkpoint, clear_checkpoint},
	[DURA_SQL_CACHE_LISTED] = {sizeof(dura_cache_entry), item_cache_listed, clear_cache},
	[DURA_SQL_CACHE_VALUE] = {sizeof(dura_cache_entry), item_cache_value, clear_cache},
	[DURA_SQL_EVENT] = {sizeof(dura_event), item_event, clear_event},
	[DURA_SQL_SIGNAL] = {sizeof(dura_signal), item_signal, dura_signal_clear},
	[DURA_SQL_SCHEDULE] = {sizeof(dura_schedule), item_schedule, dura_schedule_clear},
	[DURA_SQL_WORKFLOW] = {sizeof(dura_workflow_def), item_workflow, dura_workflow_def_clear},
	[DURA_SQL_RUN_COUNT] = {sizeof(dura_run_count), item_run_count, dura_run_count_clear},
};

int dura_sql_collect(const dura_sql_row *row, dura_sql_next next, void *cursor, dura_sql_kind kind, void **items,
                     size_t *count)
{
	size_t cap = 0, size = kinds[kind].size;
	int rc;
	while ((rc = next(cursor)) == 1) {
		if (dura_store_grow(items, *count, &cap, size)) {
			rc = dura_error_oom(row->ops->store);
			break;
		}
		if ((rc = kinds[kind].decode(row, (char *)*items + *count * size)) != 0)
			break;
		(*count)++;
	}
	if (rc == 0)
		return 0;
	for (size_t i = 0; i < *count; i++)
		kinds[kind].clear((char *)*items + i * size);
	dura_free(*items);
	*items = NULL;
	*count = 0;
	return rc;
}

int dura_sql_fetch(const dura_sql_row *row, dura_sql_next next, void *cursor, dura_sql_kind kind, void **out)
{
	int rc = next(cursor);
	if (rc == 0)
		return DURA_ENOTFOUND;
	if (rc != 1)
		return rc;
	if (!out)
		return 0;
	void *item = dura_malloc(kinds[kind].size);
	if (!item)
		return dura_error_oom(row->ops->store);
	if ((rc = kinds[kind].decode(row, item)) != 0) {
		dura_free(item);
		return rc;
	}
	*out = item;
	return 0;
}
