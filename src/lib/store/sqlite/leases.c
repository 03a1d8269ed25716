/*
 * leases.c - the SQLite store's leases: claims (claim and claim_runs),
 * counting the live leases into the flow ledger (flow.h) and choosing the
 * runs page by page in claim order, all in one write transaction;
 * extending and releasing a lease, one or a worker's batch; and the
 * worker registry the workers that hold the leases keep.
 */
#include "sqlite.h"

/* ---- leases ------------------------------------------------------------------------ */

/* A run a claim chose: its id and its lease owner until now. */
typedef struct sq_pick {
	char *run_id;
	char *prev;
} sq_pick;

/* The claim's candidates, page by page in claim order, offered to the flow
 * ledger (or all taken, without one) until max are chosen. A ledger
 * passes over the runs of workflows at their limits and of versions the
 * claim does not serve, so with one the claim reads on, page after page,
 * until max are chosen or no candidate is left. */
static int claim_pick(sq_store *s, sq_conn *c, const dura_claim *req, dura_flow *flow, const char *now_txt,
                      sq_pick *picks, size_t *npicks)
{
	sqlite3_stmt *st;
	int rc, prio = DURA_PRIORITY_MAX + 1, b;
	char due[64] = "", after[DURA_MAX_ID_LEN + 1] = ""; /* the keyset: the last row read */
	char *names = NULL;
	if (!flow && req->nworkflows) {
		const char **v = dura_calloc(req->nworkflows, sizeof(*v));
		if (!v)
			goto oom;
		for (size_t i = 0; i < req->nworkflows; i++)
			v[i] = req->workflows[i].name;
		names = dura__json_string_array(v, req->nworkflows);
		dura_free(v);
		if (!names)
			goto oom;
	}
	/* without limits every candidate is taken: one page of max */
	int64_t page = flow ? (int64_t)req->max * 4 + 16 : (int64_t)req->max;
	for (;;) {
		if (flow) {
			int none = 0;
			dura_free(names);
			if (!(names = dura_flow_open_json(flow, &none)))
				goto oom;
			if (none)
				break;
		}
		if ((rc = dsq_prep(s, c, ST_CLAIM_PAGE, &st)) != 0)
			goto out;
		if ((b = bind_text(st, 1, now_txt)) || (b = bind_text(st, 2, names)) || (b = bind_int(st, 3, prio)) ||
		    (b = bind_text(st, 4, due)) || (b = bind_text(st, 5, after)) || (b = bind_int64(st, 6, page))) {
			rc = bind_fail(c, st, b, "claiming runs");
			goto out;
		}
		int64_t rows = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			const char *id = (const char *)sqlite3_column_text(st, 0);
			const char *wf = (const char *)sqlite3_column_text(st, 1);
			const char *key = (const char *)sqlite3_column_text(st, 2);
			const char *prev = (const char *)sqlite3_column_text(st, 3);
			const char *at = (const char *)sqlite3_column_text(st, 5);
			const char *version = (const char *)sqlite3_column_text(st, 6);
			if (!id || !wf || !key || !prev || !at || !version) {
				sqlite3_reset(st);
				goto oom;
			}
			prio = sqlite3_column_int(st, 4);
			snprintf(due, sizeof(due), "%s", at);
			snprintf(after, sizeof(after), "%s", id);
			int ok = flow ? dura_flow_admit(flow, wf, version, key) : 1;
			if (ok < 0) {
				sqlite3_reset(st);
				rc = DURA_ENOMEM;
				goto out;
			}
			if (!ok)
				continue;
			sq_pick *p = &picks[*npicks];
			p->run_id = dura_strdup(id);
			p->prev = dura_strdup(prev);
			if (!p->run_id || !p->prev) {
				dura_free(p->run_id);
				dura_free(p->prev);
				sqlite3_reset(st);
				goto oom;
			}
			if (++*npicks == req->max)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = dsq_fail(c, rc, "claiming runs");
			sqlite3_reset(st);
			goto out;
		}
		sqlite3_reset(st);
		rc = 0;
		if (*npicks == req->max || rows < page || !flow)
			break;
	}
	rc = 0;
	goto out;
oom:
	rc = dura_error_oom(SQ);
out:
	dura_free(names);
	return rc;
}

/* The live leases, per workflow and key, into the ledger. */
static int claim_count(sq_store *s, sq_conn *c, dura_flow *flow, const char *now_txt)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_FLOW_COUNT, &st), b;
	if (rc)
		return rc;
	if ((b = bind_text(st, 1, now_txt)) != 0)
		return bind_fail(c, st, b, "counting leases");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *wf = (const char *)sqlite3_column_text(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 1);
		if (!wf || !key) {
			sqlite3_reset(st);
			return dura_error_oom(SQ);
		}
		if ((rc = dura_flow_count(flow, wf, key, sqlite3_column_int64(st, 2))) != 0) {
			sqlite3_reset(st);
			return rc;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = dsq_fail(c, rc, "counting leases");
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/*
 * A claim is one write transaction (BEGIN IMMEDIATE): counting the live
 * leases, choosing the runs and leasing them is one step, so no run is
 * claimed twice and no limit exceeded, here or in another process. A
 * claim with versions but no limits has a ledger with nothing to count.
 * The runs are leased one UPDATE each, in claim order, which is the order
 * they are handed back in.
 */
int dsq_claim(void *impl, const dura_claim *req, dura_record_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], exp_txt[24];
	dura_flow *flow = NULL;
	sq_pick *picks = NULL;
	size_t npicks = 0;
	int64_t now = dura_now_ms();
	int limited = 0;
	for (size_t i = 0; i < req->nworkflows; i++)
		limited |= req->workflows[i].max_running > 0 || req->workflows[i].max_per_key > 0;
	int rc = dura_flow_new(&flow, req, SQ);
	if (rc)
		return rc;
	if (!(picks = dura_calloc(req->max, sizeof(*picks)))) {
		dura_flow_free(flow);
		return dura_error_oom(SQ);
	}
	if ((rc = dsq_pool_get(s, &c)) != 0) {
		dura_free(picks);
		dura_flow_free(flow);
		return rc;
	}
	fmt_time(now_txt, now);
	fmt_time(exp_txt, dura__add_ms(now, req->lease_ms));
	if ((rc = dsq_tx_begin(s, c)) == 0 && (!flow || !limited || (rc = claim_count(s, c, flow, now_txt)) == 0))
		rc = claim_pick(s, c, req, flow, now_txt, picks, &npicks);
	if (rc == 0 && npicks && !(out->items = dura_calloc(npicks, sizeof(*out->items))))
		rc = dura_error_oom(SQ);
	for (size_t i = 0; rc == 0 && i < npicks; i++) {
		int b;
		dura_record *r = NULL;
		if ((rc = dsq_prep(s, c, ST_CLAIM_ONE, &st)) != 0)
			break;
		if ((b = bind_text(st, 1, req->owner)) || (b = bind_text(st, 2, exp_txt)) ||
		    (b = bind_text(st, 3, picks[i].run_id))) {
			rc = bind_fail(c, st, b, "claiming runs");
			break;
		}
		if ((rc = dsq_fetch(c, st, DURA_SQL_RECORD, (void **)&r, "claiming runs")) != 0)
			break;
		out->items[out->count++] = *r;
		dura_free(r);
		if (req->taken_over)
			req->taken_over[i] = dura_flow_taken_over(picks[i].prev, req->owner);
	}
	if (rc == 0 && (rc = dsq_tx_commit(s, c)) == 0) {
		/* done */
	} else {
		dsq_tx_rollback(s, c);
		dura_record_list_free(out);
		if (req->taken_over)
			memset(req->taken_over, 0, req->max * sizeof(*req->taken_over));
	}
	dsq_pool_put(s, c);
	for (size_t i = 0; i < npicks; i++) {
		dura_free(picks[i].run_id);
		dura_free(picks[i].prev);
	}
	dura_free(picks);
	dura_flow_free(flow);
	return rc;
}

int dsq_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                   int64_t lease_ms, dura_record_list *out)
{
	return dura_flow_claim_runs(dsq_claim, impl, SQ, owner, workflows, nworkflows, max, lease_ms, out);
}

/* A lease update that matched nothing: why not. */
static int lease_miss(sq_store *s, sq_conn *c, const char *run_id, const char *owner)
{
	sqlite3_stmt *st;
	int rc = dsq_prep(s, c, ST_LEASE_OWNER, &st);
	if (rc)
		return rc;
	if ((rc = bind_text(st, 1, run_id)) != 0)
		return bind_fail(c, st, rc, "reading a lease");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(st, 0);
		if (holder && *holder)
			rc = dura_sql_err_leased_by(SQ, run_id, holder, owner);
		else
			rc = dura_sql_err_not_leased(SQ, run_id, owner);
	} else if (rc == SQLITE_DONE) {
		rc = dura_sql_err_run_not_found(SQ, run_id);
	} else {
		rc = dsq_fail(c, rc, "reading a lease");
	}
	sqlite3_reset(st);
	return rc;
}

static int lease_op(sq_store *s, int id, const char *run_id, const char *owner, int64_t lease_ms)
{
	sq_conn *c;
	sqlite3_stmt *st;
	char exp_txt[24];
	int changes = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, id, &st)) == 0) {
		const char *what = id == ST_LEASE_EXTEND ? "extending a lease" : "releasing a lease";
		int b;
		if (id == ST_LEASE_EXTEND) {
			int64_t now = dura_now_ms();
			fmt_time(exp_txt, dura__add_ms(now, lease_ms));
		}
		/* LEASE_EXTEND: (expiry, run_id, owner); LEASE_RELEASE: (run_id, owner) */
		int o = id == ST_LEASE_EXTEND;
		if ((o && (b = bind_text(st, 1, exp_txt))) || (b = bind_text(st, 1 + o, run_id)) ||
		    (b = bind_text(st, 2 + o, owner)))
			rc = bind_fail(c, st, b, what);
		else
			rc = dsq_write_one(c, st, what, &changes);
		if (rc == 0 && changes == 0)
			rc = lease_miss(s, c, run_id, owner);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	return lease_op(impl, ST_LEASE_EXTEND, run_id, owner, lease_ms);
}

int dsq_release_lease(void *impl, const char *run_id, const char *owner)
{
	return lease_op(impl, ST_LEASE_RELEASE, run_id, owner, 0);
}

/* A worker's heartbeat: every lease of the batch in one transaction, so
 * the write lock is taken once, not once per run. */
int dsq_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms,
                      int *codes)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char exp_txt[24];
	int64_t now = dura_now_ms();
	fmt_time(exp_txt, dura__add_ms(now, lease_ms));
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_tx_begin(s, c)) == 0) {
		for (size_t i = 0; rc == 0 && i < n; i++) {
			int changes = 0, b;
			codes[i] = 0;
			if ((rc = dsq_prep(s, c, ST_LEASE_EXTEND, &st)) != 0)
				break;
			/* LEASE_EXTEND: (expiry, run_id, owner) */
			if ((b = bind_text(st, 1, exp_txt)) || (b = bind_text(st, 2, run_ids[i])) || (b = bind_text(st, 3, owner)))
				rc = bind_fail(c, st, b, "extending leases");
			else
				rc = dsq_write_one(c, st, "extending leases", &changes);
			if (rc == 0 && changes == 0) {
				int why = lease_miss(s, c, run_ids[i], owner);
				if (why == DURA_ECONFLICT || why == DURA_ENOTFOUND)
					codes[i] = why;
				else
					rc = why;
			}
		}
		if (rc == 0)
			rc = dsq_tx_commit(s, c);
		else
			dsq_tx_rollback(s, c);
	}
	dsq_pool_put(s, c);
	if (rc == 0)
		dura_error_clear(); /* the codes tell which leases are lost */
	return rc;
}

/* ---- the worker registry (sql/workers.h decodes its rows) --------------------------------- */

int dsq_worker_put(void *impl, const dura_worker_info *w)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char now_txt[24], dead_txt[24];
	int64_t now = dura_now_ms();
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_WORKER_PUT, &st)) == 0) {
		fmt_time(now_txt, now);
		fmt_time(dead_txt, now + w->lease_ms);
		int b;
		if ((b = bind_text(st, 1, w->id)) || (b = bind_text(st, 2, w->name)) || (b = bind_text(st, 3, w->host)) ||
		    (b = bind_int64(st, 4, w->pid)) || (b = bind_int(st, 5, w->threads)) ||
		    (b = bind_int64(st, 6, w->lease_ms)) || (b = bind_text(st, 7, w->workflows)) ||
		    (b = bind_int64(st, 8, w->held)) || (b = bind_text(st, 9, now_txt)) || (b = bind_text(st, 10, now_txt)) ||
		    (b = bind_text(st, 11, dead_txt)))
			rc = bind_fail(c, st, b, "registering a worker");
		else
			rc = dsq_write_one(c, st, "registering a worker", NULL);
	}
	dsq_pool_put(s, c);
	return rc;
}

int dsq_worker_delete(void *impl, const char *worker_id)
{
	return dsq_delete_by(impl, ST_WORKER_DELETE, worker_id, "worker %s is not registered");
}

int dsq_worker_list(void *impl, dura_worker_list *out)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_WORKER_LIST, &st)) == 0) {
		sq_cursor k = {c, st, "listing workers"};
		while ((rc = dsq_next(&k)) == 1) {
			if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) != 0) {
				rc = dura_error_oom(SQ);
				break;
			}
			if ((rc = dura_sql_row_worker(SQ_ROW(st), &out->items[out->count])) != 0)
				break;
			out->count++;
		}
		sqlite3_reset(st);
		out->now = dura_now_ms();
	}
	dsq_pool_put(s, c);
	if (rc)
		dura_worker_list_free(out);
	return rc;
}

int dsq_worker_prune(void *impl, int64_t dead_for_ms, int64_t *count)
{
	sq_store *s = impl;
	sq_conn *c;
	sqlite3_stmt *st;
	char before[24];
	int changes = 0, rc = dsq_pool_get(s, &c);
	if (rc)
		return rc;
	if ((rc = dsq_prep(s, c, ST_WORKER_PRUNE, &st)) == 0) {
		fmt_time(before, dura_now_ms() - dead_for_ms);
		int b = bind_text(st, 1, before);
		rc = b ? bind_fail(c, st, b, "pruning workers") : dsq_write_one(c, st, "pruning workers", &changes);
	}
	dsq_pool_put(s, c);
	*count = rc == 0 ? changes : 0;
	return rc;
}
