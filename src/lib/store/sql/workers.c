/*
 * workers.c - the worker registry of the SQL stores: the decoder of a
 * <prefix>dura_workers row (every SQL store), and the four operations of
 * the server stores (MySQL/MariaDB, PostgreSQL), run by dura_sql_run_op()
 * with the catalog's WORKER_* statements. Times are the calling process's
 * wall clock, as for leases (docs/store-contract.md).
 */
#include "workers.h"

#include "catalog.h"

#include <string.h>

#define X_ENUM(name, sql) ST_##name,
enum { SQL_SHARED_STATEMENTS(X_ENUM) ST__SHARED_COUNT };
#undef X_ENUM

/* Copy text column i ("" for NULL); -1 when out of memory. */
static int col_text(const dura_sql_row *row, int i, char **out)
{
	const char *t;
	size_t n = 0;
	if (row->ops->text(row->impl, i, &t, &n) != 0)
		return -1;
	*out = t ? dura_strndup(t, n) : dura_strdup("");
	return *out ? 0 : -1;
}

int dura_sql_row_worker(const dura_sql_row *row, dura_worker_info *w)
{
	memset(w, 0, sizeof(*w));
	if (col_text(row, 0, &w->id) || col_text(row, 1, &w->name) || col_text(row, 2, &w->host) ||
	    col_text(row, 6, &w->workflows)) {
		dura_worker_info_clear(w);
		return dura_error_oom(row->ops->store);
	}
	w->pid = row->ops->int64(row->impl, 3);
	w->threads = (int)row->ops->int64(row->impl, 4);
	w->lease_ms = row->ops->int64(row->impl, 5);
	w->held = row->ops->int64(row->impl, 7);
	w->started_at = row->ops->time_ms(row->impl, 8);
	w->heartbeat_at = row->ops->time_ms(row->impl, 9);
	w->dead_after = row->ops->time_ms(row->impl, 10);
	return 0;
}

/* ---- the server stores' operations ------------------------------------------------ */

struct write_arg {
	int id;
	const dura_sql_params *p;
	uint64_t affected;
	int again;
};

static int write_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct write_arg *a = arg;
	a->again |= again;
	return dura_sql_st_write(s, c, a->id, a->p, &a->affected);
}

int dura_sql_worker_put(void *impl, const dura_worker_info *w)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	int64_t now = dura_now_ms();
	p.n = 0;
	dura_sql_p_str(&p, w->id);
	dura_sql_p_str(&p, w->name);
	dura_sql_p_str(&p, w->host);
	dura_sql_p_int(&p, w->pid);
	dura_sql_p_int(&p, w->threads);
	dura_sql_p_int(&p, w->lease_ms);
	dura_sql_p_str(&p, w->workflows);
	dura_sql_p_int(&p, w->held);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, now);
	dura_sql_p_time(&p, dura_sql_add_ms(s, now, w->lease_ms));
	struct write_arg a = {ST_WORKER_PUT, &p, 0, 0};
	return dura_sql_run_op(s, write_body, &a, DURA_SQL_IDEMPOTENT);
}

int dura_sql_worker_delete(void *impl, const char *worker_id)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, worker_id);
	struct write_arg a = {ST_WORKER_DELETE, &p, 0, 0};
	int rc = dura_sql_run_op(s, write_body, &a, DURA_SQL_IDEMPOTENT);
	/* after an unknown outcome, a miss means the first attempt deleted it */
	if (rc == 0 && a.affected == 0 && !a.again)
		return dura_error_set_native(DURA_ENOTFOUND, s->name, 0, NULL, "worker %s is not registered", worker_id);
	return rc;
}

static int list_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	dura_worker_list *out = arg;
	dura_sql_params p;
	void *res;
	size_t cap = 0;
	(void)again;
	dura_worker_list_free(out);
	p.n = 0;
	int rc = dura_sql_st_run(s, c, ST_WORKER_LIST, &p, &res);
	if (rc)
		return rc;
	dura_sql_row row = {s->x->row, res};
	while ((rc = dura_sql_st_next(s, c, res)) == 1) {
		if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) != 0) {
			rc = dura_error_oom(s->name);
			break;
		}
		if ((rc = dura_sql_row_worker(&row, &out->items[out->count])) != 0)
			break;
		out->count++;
	}
	dura_sql_st_done(s, res);
	if (rc) {
		dura_worker_list_free(out);
		return rc;
	}
	out->now = dura_now_ms();
	return 0;
}

int dura_sql_worker_list(void *impl, dura_worker_list *out)
{
	return dura_sql_run_op(impl, list_body, out, DURA_SQL_IDEMPOTENT);
}

int dura_sql_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	dura_sql_store *s = impl;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_time(&p, dura_now_ms() - dead_for_ms);
	struct write_arg a = {ST_WORKER_PRUNE, &p, 0, 0};
	int rc = dura_sql_run_op(s, write_body, &a, DURA_SQL_IDEMPOTENT);
	*count = rc == 0 ? (int64_t)a.affected : 0;
	return rc;
}
