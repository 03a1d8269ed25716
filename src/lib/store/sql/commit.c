/*
 * commit.c - what the server SQL stores' step commits share (commit.h):
 * the pieces of the default event data their servers complete, the check
 * after a connection was lost while committing (did that commit land?),
 * and the batch: several commits in one transaction, each CAS-checked on
 * its own, over the driver's single commit.
 */
#include "commit.h"

#include "catalog.h"
#include "errors.h"
#include "server.h"

#include "../../internal.h"

#include <stdio.h>
#include <string.h>

#define X_ENUM(name, sql) ST_##name,
enum { SQL_SHARED_STATEMENTS(X_ENUM) SQL_SERVER_STATEMENTS(X_ENUM) ST__SERVER_COUNT };
#undef X_ENUM

/* Why a CAS update matched no row: the run is gone, or at another version. */
int dura_sql_commit_miss(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm)
{
	void *m;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, cm->run_id);
	int rc = dura_sql_st_run(s, c, ST_RUN_VERSION, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc == 1)
		rc = dura_sql_err_version(s->name, cm->run_id, dura_sql_c_int(s, m, 0), cm->expect_version);
	else if (rc == 0)
		rc = dura_sql_err_run_not_found(s->name, cm->run_id);
	dura_sql_st_done(s, m);
	return rc;
}

int dura_sql_commit_extras(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm)
{
	if (!dura_sql_commit_has_extras(cm))
		return 0;
	int rc;
	if (cm->signal_id) {
		dura_sql_params p;
		uint64_t n = 0;
		p.n = 0;
		dura_sql_p_str(&p, cm->signal_id);
		dura_sql_p_str(&p, cm->run_id);
		if ((rc = dura_sql_st_write(s, c, ST_SIGNAL_DELETE, &p, &n)) != 0)
			return rc;
		if (n == 0)
			return dura_error_set_native(DURA_ECONFLICT, s->name, 0, NULL, "run %s has no signal %s (consumed already?)",
			                             cm->run_id, cm->signal_id);
	}
	if (cm->wake_run_id && (rc = dura_sql_wake_in(s, c, cm->wake_run_id, cm->wake_wait ? cm->wake_wait : "", NULL)) != 0)
		return rc;
	return 0;
}

size_t dura_sql_commit_size(const dura_commit *cm)
{
	return strlen(cm->state) + (cm->event_data ? strlen(cm->event_data) : 0) + (cm->error ? strlen(cm->error) : 0);
}


/*
 * After a connection was lost while committing: did that commit land?
 * Reads the run locked (so a commit still in flight on the dead session
 * finishes first). 1: it did (res filled), 0: it did not and the run is
 * still at the expected version (commit again), < 0: an error, or another
 * writer got there (DURA_ECONFLICT).
 */
int dura_sql_commit_verify(dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm, const char *event_id, int64_t now,
                         dura_commit_result *res)
{
	const dura_sql_commit_plan plan = dura_sql_commit_plan_of(cm);
	const int do_step = plan.do_step, do_event = plan.do_event;
	void *m;
	dura_sql_params p;
	p.n = 0;
	dura_sql_p_str(&p, cm->run_id);
	int rc = dura_sql_st_run(s, c, ST_COMMIT_VERIFY, &p, &m);
	if (rc)
		return rc;
	rc = dura_sql_st_next(s, c, m);
	if (rc <= 0) {
		dura_sql_st_done(s, m);
		return rc ? rc : dura_sql_err_run_not_found(s->name, cm->run_id);
	}
	int64_t version = dura_sql_c_int(s, m, 0), step_no = dura_sql_c_int(s, m, 1), updated = dura_sql_c_time(s, m, 2);
	int ours = version == cm->expect_version + 1 && updated == now && dura__json_same(dura_sql_c_str(s, m, 3), cm->state);
	dura_sql_st_done(s, m);
	if (version == cm->expect_version)
		return 0;
	if (ours) {
		res->new_version = cm->expect_version + 1;
		res->step = do_step ? step_no - 1 : -1;
		return 1;
	}
	/* the run moved on since: our event or step row tells */
	int64_t step = -1;
	int found = 0;
	if (do_step) {
		p.n = 0;
		dura_sql_p_str(&p, cm->run_id);
		dura_sql_p_time(&p, now);
		dura_sql_p_str(&p, cm->node_id);
		if ((rc = dura_sql_st_run(s, c, ST_STEP_FIND, &p, &m)) != 0)
			return rc;
		while ((rc = dura_sql_st_next(s, c, m)) == 1 && !found) {
			if (dura__json_same(dura_sql_c_str(s, m, 1), cm->state)) {
				found = 1;
				step = dura_sql_c_int(s, m, 0);
			}
		}
		dura_sql_st_done(s, m);
		if (rc < 0)
			return rc;
	}
	if (!found && do_event && *event_id) {
		p.n = 0;
		dura_sql_p_str(&p, event_id);
		if ((rc = dura_sql_st_exists(s, c, ST_EVENT_CHECK, &p)) < 0)
			return rc;
		found = rc;
	}
	if (found) {
		res->new_version = cm->expect_version + 1;
		res->step = step;
		return 1;
	}
	return dura_error_set_native(DURA_ECONFLICT, s->name, 0, NULL,
	                             "run %s is at version %lld, not the expected version %lld (the connection was lost while "
	                             "committing, and another writer changed the run)",
	                             cm->run_id, (long long)version, (long long)cm->expect_version);
}

/*
 * The default event data (dura_store_event_summary()) but for the integers the
 * server supplies. With step NULL (the procedure): the head runs up to the
 * step's place and *tail from there to the run_state's place; with a step
 * (the several-statement commit, which has it from LAST_INSERT_ID): the
 * head runs, step included, up to the run_state's place. The server
 * appends the run_state and "}" (see OUTBOX_INSERT and migration 4). In
 * buf when it fits, else in *heap (the caller frees it); NULL when out of
 * memory.
 */
const char *dura_sql_summary_pieces(char *buf, size_t size, const dura_commit *cm, const int64_t *step,
                                  const char **tail, char **heap)
{
	static const char k1[] = DURA__SUMMARY_RUN_ID, k2[] = DURA__SUMMARY_STEP, k3[] = DURA__SUMMARY_NODE_ID,
	                  k4[] = DURA__SUMMARY_STATUS, k5[] = DURA__SUMMARY_RUN_STATE;
	const char *node = cm->node_id ? cm->node_id : "", *status = cm->status ? cm->status : "";
	size_t need = sizeof k1 + sizeof k2 + sizeof k3 + sizeof k4 + sizeof k5 + 24 + dura__json_quote_len(cm->run_id) +
	              dura__json_quote_len(node) + dura__json_quote_len(status);
	char *o = buf;
	*heap = NULL;
	if (need > size && !(o = *heap = dura_malloc(need)))
		return NULL;
	char *head = o;
	memcpy(o, k1, sizeof k1 - 1);
	o = dura__json_quote(o + sizeof k1 - 1, cm->run_id);
	memcpy(o, k2, sizeof k2 - 1);
	o += sizeof k2 - 1;
	if (step) {
		o += sprintf(o, "%lld", (long long)*step);
	} else {
		*o++ = '\0';
		*tail = o;
	}
	memcpy(o, k3, sizeof k3 - 1);
	o = dura__json_quote(o + sizeof k3 - 1, node);
	memcpy(o, k4, sizeof k4 - 1);
	o = dura__json_quote(o + sizeof k4 - 1, status);
	memcpy(o, k5, sizeof k5 - 1);
	o[sizeof k5 - 1] = '\0';
	return head;
}


void dura_sql_tally_reset(dura_sql_tally *t)
{
	t->failed = 0;
	t->first[0] = '\0';
	for (size_t i = 0; i < t->n; i++) {
		memset(&t->res[i], 0, sizeof(t->res[i]));
		t->res[i].step = -1;
	}
}

void dura_sql_tally_fail(dura_sql_tally *t, size_t i, int code)
{
	t->res[i].code = code;
	t->res[i].new_version = 0;
	t->res[i].step = -1;
	if (!t->failed++) {
		const dura_error *e = dura_error_last();
		snprintf(t->first, sizeof(t->first), "%s", e && e->message ? e->message : "");
	}
}

int dura_sql_tally_end(const dura_sql_tally *t, const char *store, int rc)
{
	if (rc) {
		for (size_t i = 0; i < t->n; i++) {
			t->res[i].code = rc;
			t->res[i].new_version = 0;
			t->res[i].step = -1;
		}
		return rc;
	}
	if (!t->failed)
		return 0;
	return dura_sql_err_batch(store, t->failed, t->n, t->first);
}

int dura_sql_tally_pending(dura_sql_tally *t, dura_sql_store *s, dura_sql_conn *c, const dura_commit *cm,
                           const char *const *event_ids, int64_t now, int again, size_t *unwritten)
{
	size_t k = 0;
	dura_sql_tally_reset(t);
	for (size_t i = 0; i < t->n; i++) {
		if (again) {
			int v = dura_sql_commit_verify(s, c, &cm[i], event_ids[i], now, &t->res[i]);
			if (v == 1)
				continue;
			if (v == DURA_ECONFLICT || v == DURA_ENOTFOUND) {
				dura_sql_tally_fail(t, i, v);
				continue;
			}
			if (v < 0)
				return v;
		}
		unwritten[k++] = i;
	}
	return (int)k;
}

struct batch_arg {
	dura_sql_commit_one one;
	const dura_commit *cm;
	const char *const *ids;
	int64_t now;
	int *poisoned; /* commits that failed after their update: left out of the rerun */
	dura_sql_tally t;
};

static int batch_body(dura_sql_store *s, dura_sql_conn *c, void *arg, int again)
{
	struct batch_arg *a = arg;
	dura_sql_tally_reset(&a->t);
	for (size_t i = 0; i < a->t.n; i++) {
		const dura_commit *cm = &a->cm[i];
		dura_commit_result *r = &a->t.res[i];
		if (a->poisoned[i]) {
			dura_sql_tally_fail(&a->t, i, a->poisoned[i]);
			continue;
		}
		int rc = 0, updated = 0;
		if (again) {
			/* the whole batch landed or none of it did */
			rc = dura_sql_commit_verify(s, c, cm, a->ids[i], a->now, r);
			if (rc == 1)
				continue;
		}
		if (rc == 0)
			rc = a->one(s, c, cm, a->ids[i], a->now, r, &updated);
		if (rc == 0)
			continue;
		if (rc != DURA_ECONFLICT && rc != DURA_ENOTFOUND)
			return rc;
		if (updated) {
			/* this commit wrote before failing: run the batch again without it */
			a->poisoned[i] = rc;
			return DURA_SQL_AGAIN;
		}
		dura_sql_tally_fail(&a->t, i, rc);
	}
	return 0;
}

int dura_sql_commit_batch(dura_sql_store *s, dura_sql_commit_one one, const dura_commit *cm,
                          const char *const *event_ids, size_t n, dura_commit_result *res)
{
	struct batch_arg a;
	memset(&a, 0, sizeof(a));
	a.one = one;
	a.cm = cm;
	a.ids = event_ids;
	a.t.n = n;
	a.t.res = res;
	a.now = dura_now_ms();
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = s->x->check_size ? s->x->check_size(s, dura_sql_commit_size(&cm[i]), "a step's state") : 0;
	if (rc == 0 && !(a.poisoned = dura_calloc(n, sizeof(int))))
		rc = dura_error_oom(s->name);
	if (rc == 0)
		rc = dura_sql_run_op(s, batch_body, &a, DURA_SQL_TX | DURA_SQL_IDEMPOTENT);
	dura_free(a.poisoned);
	return dura_sql_tally_end(&a.t, s->name, rc);
}

/* ---- a batch as one document ------------------------------------------------------ */

/* Append a JSON string (or null for NULL) to o, with its key. */
static char *put_str(char *o, const char *key, const char *v)
{
	size_t k = strlen(key);
	memcpy(o, key, k);
	o += k;
	if (!v) {
		memcpy(o, "null", 4);
		return o + 4;
	}
	return dura__json_quote(o, v);
}

static char *put_int(char *o, const char *key, long long v)
{
	return o + sprintf(o, "%s%lld", key, v);
}

/* The bytes put_str() writes for v. */
static size_t str_len(const char *v)
{
	return v ? dura__json_quote_len(v) : 4;
}

char *dura_sql_batch_json(const dura_commit *cm, const char *const *event_ids, const size_t *idx, size_t k,
                          int64_t now, int64_t max_time)
{
	/* the keys and the integers: 20 keys of at most 5 bytes, 8 integers of at most 21 */
	const size_t fixed = 20 * 6 + 8 * 21 + 4;
	size_t need = 3;
	for (size_t j = 0; j < k; j++) {
		const dura_commit *c = &cm[idx[j]];
		need += fixed + str_len(c->run_id) + str_len(c->state) + str_len(c->status ? c->status : "") +
		        str_len(c->error ? c->error : "") + str_len(dura_sql_commit_wait(c)) +
		        str_len(dura_sql_commit_version(c)) +
		        str_len(c->node_id ? c->node_id : "") +
		        str_len(event_ids[idx[j]] ? event_ids[idx[j]] : "") +
		        str_len(c->event_type ? c->event_type : "step") + str_len(c->event_data) +
		        /* sh and tl quote quoted text: at most twice its bytes */
		        256 + 2 * (dura__json_quote_len(c->run_id) + str_len(c->node_id) + str_len(c->status));
	}
	char *doc = dura_malloc(need), *o = doc;
	if (!doc)
		return NULL;
	*o++ = '[';
	for (size_t j = 0; j < k; j++) {
		const dura_commit *c = &cm[idx[j]];
		const dura_sql_commit_plan plan = dura_sql_commit_plan_of(c);
		char buf[DURA_SQL_SUMMARY_BUF], *heap = NULL;
		const char *head = "", *tail = "";
		if (plan.do_event && !c->event_data &&
		    !(head = dura_sql_summary_pieces(buf, sizeof buf, c, NULL, &tail, &heap))) {
			dura_free(doc);
			return NULL;
		}
		int64_t next = c->next_run_at ? c->next_run_at : now;
		if (j)
			*o++ = ',';
		o = put_int(o, "{\"i\":", (long long)idx[j]);
		o = put_str(o, ",\"r\":", c->run_id);
		o = put_int(o, ",\"v\":", (long long)c->expect_version);
		o = put_str(o, ",\"s\":", c->state);
		o = put_str(o, ",\"st\":", plan.status);
		o = put_str(o, ",\"er\":", c->error ? c->error : "");
		o = put_str(o, ",\"w\":", dura_sql_commit_wait(c));
		o = put_str(o, ",\"wv\":", dura_sql_commit_version(c));
		o = put_int(o, ",\"a\":", (long long)c->attempt);
		o = put_int(o, ",\"nx\":", (long long)(next > max_time ? max_time : next));
		o = put_int(o, ",\"ds\":", plan.do_step);
		if (c->run_state)
			o = put_int(o, ",\"rs\":", (long long)c->run_state);
		else
			o = put_str(o, ",\"rs\":", NULL);
		o = put_int(o, ",\"rl\":", plan.release);
		o = put_str(o, ",\"nd\":", c->node_id ? c->node_id : "");
		o = put_str(o, ",\"ei\":", event_ids[idx[j]] ? event_ids[idx[j]] : "");
		o = put_str(o, ",\"et\":", c->event_type ? c->event_type : "step");
		o = put_str(o, ",\"ed\":", c->event_data);
		o = put_str(o, ",\"sh\":", head);
		o = put_str(o, ",\"tl\":", tail);
		o = put_int(o, ",\"de\":", plan.do_event);
		*o++ = '}';
		dura_free(heap);
	}
	*o++ = ']';
	*o = '\0';
	return doc;
}
