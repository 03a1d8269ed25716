/*
 * oom.c - allocation failure beyond opening a store.
 *
 * For each operation (create_run, commit, commit_batch, history,
 * checkpoint save/load, the step cache from a store and from a node,
 * claim_runs, building an engine, and a whole dura_run_execute of a small
 * multi-node workflow) on memory: and on SQLite, the program first counts
 * the allocations the operation makes (N), then runs it N more times, each
 * time with allocation i failing (1 <= i <= N; malloc and realloc are one
 * sequence, so the i-th call of either fails), and N more times with
 * allocation i and every later one failing until the operation returns
 * (memory stays exhausted, so error paths that allocate are exercised).
 * Each run gets a fresh store handle, so first-use work (prepared
 * statements) is under test too.
 *
 * Two allocators are failed, in separate passes:
 *   dura    everything dura allocates (dura_set_allocator)
 *   sqlite  SQLite's own allocations (sqlite3_config(SQLITE_CONFIG_MALLOC)),
 *           which dura does not route through its hook: the test installs
 *           the failing allocator into SQLite itself.
 * jansson is not failed: dura does not route it (no json_set_alloc_funcs),
 * and jansson's parser is not safe under allocation failure (a failed
 * append while lexing silently drops a byte of a key; a failed string
 * allocation is reported as a syntax error), so failing it would test
 * jansson, not dura.
 *
 * After each injected failure:
 *   - the result is DURA_ENOMEM, or the operation succeeded anyway
 *     (SQLite recovers from some failures; a node's failure is retried by
 *     the engine) and then its result is checked as after any success;
 *   - nothing leaks (run under ASan with detect_leaks=1);
 *   - a failed write changed nothing: read back through a second handle
 *     (no step row, no event, the same version, no lease, no claim; the
 *     one exception: while memory stays exhausted, a failed cache
 *     computation cannot write the release of its claim, which then runs
 *     out with its lease like a crashed claimer's - counted and printed);
 *   - the same operation then succeeds with allocation working; a failed
 *     dura_run_execute is resumed and must end like an uninterrupted run,
 *     with the same dense steps.
 *
 * Usage: oom_tests TMPDIR [TEST_FILTER]   (SQLite files go to TMPDIR)
 */
#include "dura.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fault injection ------------------------------------------------------ */

enum { CH_NONE = -1, CH_DURA = 0, CH_SQLITE = 1, CH__COUNT = 2 };
static const char *const ch_name[CH__COUNT] = {"dura", "sqlite"};

static struct {
	int channel;  /* whose allocations are counted and failed */
	int on;       /* counting now (inside the operation) */
	long count;   /* allocations of the channel seen while on */
	long reallocs; /* of which reallocs */
	long fail_at; /* fail allocation number fail_at (from 1); 0: none */
	int sticky;   /* and every one after it (memory stays exhausted) */
	int injected; /* it was failed */
} F = {CH_NONE, 0, 0, 0, 0, 0, 0};

/* F is under a lock: the step cache's heartbeat thread allocates too. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_plan(int channel, long fail_at, int sticky)
{
	pthread_mutex_lock(&fault_lock);
	F.channel = channel;
	F.sticky = sticky;
	F.on = 0;
	F.count = 0;
	F.reallocs = 0;
	F.fail_at = fail_at;
	F.injected = 0;
	pthread_mutex_unlock(&fault_lock);
}

static void fault_on(void)
{
	pthread_mutex_lock(&fault_lock);
	F.on = 1;
	pthread_mutex_unlock(&fault_lock);
}

static void fault_off(void)
{
	pthread_mutex_lock(&fault_lock);
	F.on = 0;
	pthread_mutex_unlock(&fault_lock);
}

static int fault_hit(int channel, int is_realloc)
{
	int fail = 0;
	pthread_mutex_lock(&fault_lock);
	if (F.on && F.channel == channel) {
		F.count++;
		F.reallocs += is_realloc;
		fail = F.fail_at && (F.sticky ? F.count >= F.fail_at : F.count == F.fail_at);
		F.injected |= fail;
	}
	pthread_mutex_unlock(&fault_lock);
	return fail;
}

static void *t_malloc(size_t n)
{
	return fault_hit(CH_DURA, 0) ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
	return fault_hit(CH_DURA, 1) ? NULL : realloc(p, n);
}

static sqlite3_mem_methods sq_orig;
static int sq_hooked;

static void *sq_malloc(int n)
{
	return fault_hit(CH_SQLITE, 0) ? NULL : sq_orig.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
	return fault_hit(CH_SQLITE, 1) ? NULL : sq_orig.xRealloc(p, n);
}

/* Both hooks stay installed; outside an operation they only pass through. */
static void hooks_install(void)
{
	static const dura_allocator a = {t_malloc, t_realloc, free};
	dura_set_allocator(&a);
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sq_orig) == SQLITE_OK) {
		sqlite3_mem_methods mine = sq_orig;
		mine.xMalloc = sq_malloc;
		mine.xRealloc = sq_realloc;
		sq_hooked = sqlite3_config(SQLITE_CONFIG_MALLOC, &mine) == SQLITE_OK;
	}
}

/* ---- checks with context ---------------------------------------------------- */

static char g_ctx[200];
static int g_reported;

#define OCHECK(cond)                                                                                         \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			if (g_reported++ < 40)                                                               \
				fprintf(stderr, "    [%s] %s:%d: CHECK failed: %s\n", g_ctx, __FILE__, __LINE__, \
				        #cond);                                                              \
			test__failed_now = 1;                                                                \
		}                                                                                            \
	} while (0)

#define OCHECK_RC(expr, want)                                                                                  \
	do {                                                                                                   \
		int rc__ = (expr);                                                                             \
		if (rc__ != (want)) {                                                                          \
			const dura_error *e__ = dura_error_last();                                             \
			if (g_reported++ < 40)                                                                 \
				fprintf(stderr, "    [%s] %s:%d: %s returned %d, wanted %d (%s)\n", g_ctx,       \
				        __FILE__, __LINE__, #expr, rc__, (int)(want),                          \
				        e__ ? e__->message : "no error message");                              \
			test__failed_now = 1;                                                                  \
		}                                                                                              \
	} while (0)

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int json_text_eq(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
	int eq = x && y && json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return eq;
}

/* ---- data ------------------------------------------------------------------ */

/* States over a SQLite page (4096 bytes), so rows spill to overflow pages. */
static char g_big[7000];     /* {"blob":"xxx...","n":1} */
static char g_initial[7000]; /* the workflow's initial state */
static const char S0[] = "{\"n\":0}";
static const char CP_OLD[] = "{\"old\":true}";
static const char VALUE[] = "the computed value, bytes not text";

static void data_init(void)
{
	char blob[6001];
	memset(blob, 'x', 6000);
	blob[6000] = '\0';
	snprintf(g_big, sizeof(g_big), "{\"blob\":\"%s\",\"n\":1}", blob);
	snprintf(g_initial, sizeof(g_initial), "{\"blob\":\"%s\",\"input\":21}", blob);
}

/* ---- the fixture ------------------------------------------------------------ */

enum { ST_MEMORY, ST_SQLITE };

typedef struct fx {
	dura_store *s;    /* the handle the operation runs on */
	dura_store *chk;  /* where results are read back (sqlite: another handle) */
	dura_engine *eng; /* for the engine operations */
	int iter;
	char wf[64], fid[64], key[64], cp[64], scoped[300];
	char run[3][DURA_UUID_LEN + 1];
	int64_t v[3];
	/* outputs of the operation */
	dura_record *rec;
	dura_record_list list;
	dura_step_list steps;
	dura_checkpoint *cpo;
	dura_cache_entry *entry, *entry2;
	dura_commit_result res[3];
	int node_rc1, node_rc2, node_ran;
	int sticky;      /* memory stays exhausted once the failure starts */
	int claim_left;  /* a cache claim the failed call could not give up */
} fx;

static int g_iter;

/* A run created with allocation working. */
static int new_run(fx *f, const char *wf, const char *fid, const char *state, const char *status, char *id,
                   int64_t *version)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.foreign_id = fid;
	req.state = state;
	req.status = status;
	dura_record *r = NULL;
	int rc = dura_store_create_run(f->s, &req, &r);
	if (rc == 0) {
		snprintf(id, DURA_UUID_LEN + 1, "%s", r->run_id);
		if (version)
			*version = r->version;
	}
	dura_record_free(r);
	return rc;
}

static int drain_outbox(dura_store *s)
{
	for (;;) {
		dura_event_list evs;
		int rc = dura_store_outbox_poll(s, 100, &evs);
		if (rc)
			return rc;
		size_t n = evs.count;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = dura_store_outbox_ack(s, evs.items[i].id);
		dura_event_list_free(&evs);
		if (rc || n == 0)
			return rc;
	}
}

/* Events now in the outbox (through the check handle). */
static size_t outbox_count(fx *f, dura_event_list *keep)
{
	dura_event_list evs;
	if (dura_store_outbox_poll(f->chk, 100, &evs) != 0) {
		OCHECK(!"outbox_poll failed");
		return (size_t)-1;
	}
	size_t n = evs.count;
	if (keep)
		*keep = evs;
	else
		dura_event_list_free(&evs);
	return n;
}

static size_t history_count(fx *f, const char *run_id)
{
	dura_step_list l;
	if (dura_store_history(f->chk, run_id, 0, 0, &l) != 0) {
		OCHECK(!"history failed");
		return (size_t)-1;
	}
	size_t n = l.count;
	dura_step_list_free(&l);
	return n;
}

/* The run as stored now, read through the check handle (NULL: missing). */
static dura_record *stored(fx *f, const char *run_id)
{
	dura_record *r = NULL;
	int rc = dura_store_get_run(f->chk, run_id, &r);
	OCHECK(rc == 0);
	return rc ? NULL : r;
}

static void free_outputs(fx *f)
{
	dura_record_free(f->rec);
	f->rec = NULL;
	dura_record_list_free(&f->list);
	dura_step_list_free(&f->steps);
	dura_checkpoint_free(f->cpo);
	f->cpo = NULL;
	dura_cache_entry_free(f->entry);
	f->entry = NULL;
}

/* ---- operations --------------------------------------------------------------- */

typedef struct op {
	const char *name;
	int (*setup)(fx *f);            /* allocation working; nonzero fails the test */
	int (*run)(fx *f);              /* the operation, with fault_on() around it */
	int ok_rc;                      /* what run returns when it works */
	void (*check_ok)(fx *f);        /* after a success */
	void (*check_unchanged)(fx *f); /* after DURA_ENOMEM, before the retry; NULL: none */
	int (*retry)(fx *f);            /* after DURA_ENOMEM, allocation working; NULL: run again */
} op;

/* -- create_run -- */

static int setup_names(fx *f)
{
	snprintf(f->wf, sizeof(f->wf), "wf-%d", f->iter);
	snprintf(f->fid, sizeof(f->fid), "fid-%d", f->iter);
	snprintf(f->key, sizeof(f->key), "key-%d", f->iter);
	snprintf(f->cp, sizeof(f->cp), "cp-%d", f->iter);
	return 0;
}

static int run_create(fx *f)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = f->wf;
	req.foreign_id = f->fid;
	req.state = g_big;
	req.status = "a";
	req.meta = "{\"m\":1}";
	fault_on();
	int rc = dura_store_create_run(f->s, &req, &f->rec);
	fault_off();
	return rc;
}

static size_t runs_of(fx *f, const char *wf)
{
	dura_run_filter flt = DURA_RUN_FILTER_INIT;
	flt.workflow_name = wf;
	dura_record_list l;
	if (dura_store_list_runs(f->chk, &flt, &l) != 0) {
		OCHECK(!"list_runs failed");
		return (size_t)-1;
	}
	size_t n = l.count;
	dura_record_list_free(&l);
	return n;
}

static void ok_create(fx *f)
{
	OCHECK(f->rec != NULL);
	if (!f->rec)
		return;
	OCHECK(str_eq(f->rec->workflow_name, f->wf));
	OCHECK(str_eq(f->rec->foreign_id, f->fid));
	OCHECK(str_eq(f->rec->status, "a"));
	OCHECK(str_eq(f->rec->state, g_big));
	OCHECK(json_text_eq(f->rec->meta, "{\"m\":1}"));
	OCHECK(f->rec->run_state == DURA_RUN_RUNNING && f->rec->step_no == 0);
	dura_record *r = stored(f, f->rec->run_id);
	if (r) {
		OCHECK(str_eq(r->state, g_big) && str_eq(r->status, "a") && r->version == f->rec->version);
		dura_record_free(r);
	}
	OCHECK(runs_of(f, f->wf) == 1);
}

static void unchanged_create(fx *f)
{
	OCHECK(f->rec == NULL);
	OCHECK(runs_of(f, f->wf) == 0);
	dura_record *r = NULL;
	OCHECK_RC(dura_store_latest_run(f->chk, f->wf, f->fid, &r), DURA_ENOTFOUND);
	dura_record_free(r);
}

/* -- commit: a step with its event -- */

static int setup_commit(fx *f)
{
	setup_names(f);
	int rc = new_run(f, f->wf, NULL, S0, "a", f->run[0], &f->v[0]);
	return rc ? rc : drain_outbox(f->s);
}

static int run_commit(fx *f)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = f->run[0];
	c.expect_version = f->v[0];
	c.node_id = "a";
	c.state = g_big;
	c.status = "b";
	fault_on();
	int rc = dura_store_commit(f->s, &c, &f->res[0]);
	fault_off();
	return rc;
}

static void ok_commit(fx *f)
{
	OCHECK(f->res[0].code == 0 && f->res[0].new_version == f->v[0] + 1 && f->res[0].step == 0);
	dura_record *r = stored(f, f->run[0]);
	if (r) {
		OCHECK(r->version == f->v[0] + 1 && r->step_no == 1);
		OCHECK(str_eq(r->state, g_big) && str_eq(r->status, "b"));
		dura_record_free(r);
	}
	dura_step_list l;
	OCHECK_RC(dura_store_history(f->chk, f->run[0], 0, 0, &l), 0);
	OCHECK(l.count == 1);
	if (l.count == 1)
		OCHECK(l.items[0].step == 0 && str_eq(l.items[0].node_id, "a") && str_eq(l.items[0].state, g_big));
	dura_step_list_free(&l);
	dura_event_list evs = {0, NULL};
	OCHECK(outbox_count(f, &evs) == 1);
	if (evs.count == 1)
		OCHECK(str_eq(evs.items[0].run_id, f->run[0]) && str_eq(evs.items[0].type, "step") &&
		       str_eq(evs.items[0].workflow_name, f->wf));
	dura_event_list_free(&evs);
}

static void unchanged_commit(fx *f)
{
	OCHECK(f->res[0].code != 0);
	dura_record *r = stored(f, f->run[0]);
	if (r) {
		OCHECK(r->version == f->v[0] && r->step_no == 0);
		OCHECK(str_eq(r->state, S0) && str_eq(r->status, "a"));
		dura_record_free(r);
	}
	OCHECK(history_count(f, f->run[0]) == 0);
	OCHECK(outbox_count(f, NULL) == 0);
}

/* -- commit: the end of a leased run with a foreign id (no step row, custom event) -- */

static int setup_commit_end(fx *f)
{
	setup_names(f);
	int rc = new_run(f, f->wf, f->fid, S0, "a", f->run[0], NULL);
	if (rc)
		return rc;
	const char *wfs[1] = {f->wf};
	dura_record_list l;
	if ((rc = dura_store_claim_runs(f->s, "owner", wfs, 1, 1, 600000, &l)) != 0)
		return rc;
	rc = l.count == 1 ? 0 : -1;
	if (rc == 0)
		f->v[0] = l.items[0].version;
	dura_record_list_free(&l);
	return rc ? rc : drain_outbox(f->s);
}

static int run_commit_end(fx *f)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = f->run[0];
	c.expect_version = f->v[0];
	c.state = g_big;
	c.status = "";
	c.run_state = DURA_RUN_COMPLETED;
	c.error = "it went wrong once";
	c.attempt = 2;
	c.event_type = "run_completed";
	c.event_data = "{\"x\":[1,2]}";
	c.flags = DURA_COMMIT_NO_STEP | DURA_COMMIT_RELEASE_LEASE;
	fault_on();
	int rc = dura_store_commit(f->s, &c, &f->res[0]);
	fault_off();
	return rc;
}

/* Whether another run with the same foreign id may start: only once the first ended. */
static int second_run_rc(fx *f)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = f->wf;
	req.foreign_id = f->fid;
	return dura_store_create_run(f->chk, &req, NULL);
}

static void ok_commit_end(fx *f)
{
	OCHECK(f->res[0].code == 0 && f->res[0].new_version == f->v[0] + 1 && f->res[0].step == -1);
	dura_record *r = stored(f, f->run[0]);
	if (r) {
		OCHECK(r->version == f->v[0] + 1 && r->step_no == 0 && r->run_state == DURA_RUN_COMPLETED);
		OCHECK(str_eq(r->state, g_big) && str_eq(r->status, "") && str_eq(r->error, "it went wrong once"));
		OCHECK(r->attempt == 2 && str_eq(r->lease_owner, ""));
		dura_record_free(r);
	}
	OCHECK(history_count(f, f->run[0]) == 0);
	dura_event_list evs = {0, NULL};
	OCHECK(outbox_count(f, &evs) == 1);
	if (evs.count == 1)
		OCHECK(str_eq(evs.items[0].type, "run_completed") && json_text_eq(evs.items[0].data, "{\"x\":[1,2]}") &&
		       str_eq(evs.items[0].workflow_name, f->wf) && str_eq(evs.items[0].run_id, f->run[0]));
	dura_event_list_free(&evs);
	OCHECK_RC(second_run_rc(f), 0);
}

static void unchanged_commit_end(fx *f)
{
	dura_record *r = stored(f, f->run[0]);
	if (r) {
		OCHECK(r->version == f->v[0] && r->run_state == DURA_RUN_RUNNING && str_eq(r->status, "a"));
		OCHECK(str_eq(r->state, S0) && str_eq(r->error, "") && str_eq(r->lease_owner, "owner"));
		dura_record_free(r);
	}
	OCHECK(outbox_count(f, NULL) == 0);
	OCHECK_RC(second_run_rc(f), DURA_EEXISTS);
}

/* -- commit_batch: three runs, the middle one stale -- */

static int setup_batch(fx *f)
{
	setup_names(f);
	int rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = new_run(f, f->wf, NULL, S0, "a", f->run[i], &f->v[i]);
	if (rc)
		return rc;
	/* move run 1 on, so the batch's commit for it is stale */
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = f->run[1];
	c.expect_version = f->v[1];
	c.state = S0;
	c.status = "a";
	c.flags = DURA_COMMIT_NO_STEP | DURA_COMMIT_NO_EVENT;
	if ((rc = dura_store_commit(f->s, &c, NULL)) != 0)
		return rc;
	return drain_outbox(f->s);
}

static int run_batch(fx *f)
{
	dura_commit c[3];
	for (int i = 0; i < 3; i++) {
		dura_commit one = DURA_COMMIT_INIT;
		one.run_id = f->run[i];
		one.expect_version = f->v[i];
		one.node_id = "a";
		one.state = g_big;
		one.status = "b";
		c[i] = one;
	}
	fault_on();
	int rc = dura_store_commit_batch(f->s, c, 3, f->res);
	fault_off();
	return rc;
}

static void ok_batch(fx *f)
{
	OCHECK(f->res[0].code == 0 && f->res[1].code == DURA_ECONFLICT && f->res[2].code == 0);
	for (int i = 0; i < 3; i++) {
		dura_record *r = stored(f, f->run[i]);
		if (!r)
			continue;
		OCHECK(r->version == f->v[i] + 1);
		OCHECK(r->step_no == (i == 1 ? 0 : 1));
		OCHECK(str_eq(r->state, i == 1 ? S0 : g_big));
		dura_record_free(r);
		OCHECK(history_count(f, f->run[i]) == (i == 1 ? 0u : 1u));
	}
	dura_event_list evs = {0, NULL};
	OCHECK(outbox_count(f, &evs) == 2);
	for (size_t i = 0; i < evs.count; i++)
		OCHECK(str_eq(evs.items[i].workflow_name, f->wf) &&
		       (str_eq(evs.items[i].run_id, f->run[0]) || str_eq(evs.items[i].run_id, f->run[2])));
	dura_event_list_free(&evs);
}

static void unchanged_batch(fx *f)
{
	for (int i = 0; i < 3; i++) {
		OCHECK(f->res[i].code != 0);
		dura_record *r = stored(f, f->run[i]);
		if (!r)
			continue;
		OCHECK(r->version == f->v[i] + (i == 1));
		OCHECK(r->step_no == 0 && str_eq(r->state, S0) && str_eq(r->status, "a"));
		dura_record_free(r);
		OCHECK(history_count(f, f->run[i]) == 0);
	}
	OCHECK(outbox_count(f, NULL) == 0);
}

/* -- history: 20 steps, some over a page -- */

#define HIST_STEPS 20

static void hist_state(char *buf, size_t n, int k)
{
	if (k % 5 == 4)
		snprintf(buf, n, "{\"k\":%d,\"big\":%s}", k, g_big);
	else
		snprintf(buf, n, "{\"k\":%d}", k);
}

static int setup_history(fx *f)
{
	setup_names(f);
	int rc = new_run(f, f->wf, NULL, S0, "n", f->run[0], &f->v[0]);
	static char st[sizeof(g_big) + 64];
	for (int k = 0; k < HIST_STEPS && rc == 0; k++) {
		hist_state(st, sizeof(st), k);
		dura_commit c = DURA_COMMIT_INIT;
		dura_commit_result res;
		c.run_id = f->run[0];
		c.expect_version = f->v[0];
		c.node_id = "n";
		c.state = st;
		c.status = "n";
		c.flags = DURA_COMMIT_NO_EVENT;
		if ((rc = dura_store_commit(f->s, &c, &res)) == 0)
			f->v[0] = res.new_version;
	}
	return rc;
}

static int run_history(fx *f)
{
	fault_on();
	int rc = dura_store_history(f->s, f->run[0], 0, 0, &f->steps);
	fault_off();
	return rc;
}

static void ok_history(fx *f)
{
	static char st[sizeof(g_big) + 64];
	OCHECK(f->steps.count == HIST_STEPS);
	for (size_t k = 0; k < f->steps.count && k < HIST_STEPS; k++) {
		hist_state(st, sizeof(st), (int)k);
		OCHECK(f->steps.items[k].step == (int64_t)k && str_eq(f->steps.items[k].node_id, "n"));
		OCHECK(str_eq(f->steps.items[k].state, st) && str_eq(f->steps.items[k].run_id, f->run[0]));
	}
}

static void unchanged_history(fx *f)
{
	OCHECK(f->steps.count == 0 && f->steps.items == NULL);
}

/* -- checkpoints -- */

static int setup_checkpoint(fx *f)
{
	setup_names(f);
	int rc = setup_commit(f);
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = f->run[0];
	c.expect_version = f->v[0];
	c.node_id = "a";
	c.state = S0;
	c.status = "b";
	c.flags = DURA_COMMIT_NO_EVENT;
	if (rc == 0)
		rc = dura_store_commit(f->s, &c, NULL);
	return rc;
}

static int setup_cp_overwrite(fx *f)
{
	int rc = setup_checkpoint(f);
	return rc ? rc : dura_store_checkpoint_save(f->s, f->cp, f->run[0], 0, CP_OLD);
}

static int run_cp_save(fx *f)
{
	fault_on();
	int rc = dura_store_checkpoint_save(f->s, f->cp, f->run[0], 0, g_big);
	fault_off();
	return rc;
}

static void ok_cp_save(fx *f)
{
	dura_checkpoint *cp = NULL;
	OCHECK_RC(dura_store_checkpoint_load(f->chk, f->cp, &cp), 0);
	if (cp)
		OCHECK(str_eq(cp->state, g_big) && str_eq(cp->run_id, f->run[0]) && cp->step == 0);
	dura_checkpoint_free(cp);
}

static void unchanged_cp_new(fx *f)
{
	dura_checkpoint *cp = NULL;
	OCHECK_RC(dura_store_checkpoint_load(f->chk, f->cp, &cp), DURA_ENOTFOUND);
	dura_checkpoint_free(cp);
}

static void unchanged_cp_overwrite(fx *f)
{
	dura_checkpoint *cp = NULL;
	OCHECK_RC(dura_store_checkpoint_load(f->chk, f->cp, &cp), 0);
	if (cp)
		OCHECK(str_eq(cp->state, CP_OLD) && cp->step == 0);
	dura_checkpoint_free(cp);
}

static int setup_cp_load(fx *f)
{
	int rc = setup_checkpoint(f);
	return rc ? rc : dura_store_checkpoint_save(f->s, f->cp, f->run[0], 0, g_big);
}

static int run_cp_load(fx *f)
{
	fault_on();
	int rc = dura_store_checkpoint_load(f->s, f->cp, &f->cpo);
	fault_off();
	return rc;
}

static void ok_cp_load(fx *f)
{
	OCHECK(f->cpo != NULL);
	if (f->cpo)
		OCHECK(str_eq(f->cpo->checkpoint_id, f->cp) && str_eq(f->cpo->run_id, f->run[0]) && f->cpo->step == 0 &&
		       str_eq(f->cpo->state, g_big));
}

static void unchanged_cp_load(fx *f)
{
	OCHECK(f->cpo == NULL);
}

/* -- the step cache from a store -- */

static int compute(dura_cache_value *out, void *payload)
{
	(void)payload;
	return dura_cache_value_set(out, VALUE, sizeof(VALUE) - 1, "{\"m\":1}");
}

static int value_ok(const dura_cache_entry *e)
{
	return e && e->value && e->value_len == sizeof(VALUE) - 1 && memcmp(e->value, VALUE, e->value_len) == 0 &&
	       !e->error && json_text_eq(e->metadata, "{\"m\":1}");
}

static long g_claims_left;

/*
 * No claim may be left behind: the key is free (0) or already cached
 * (EEXISTS). Only while memory stays exhausted can a failed call not give
 * its claim up (the release is a write too); the claim then runs out with
 * its lease, as a crashed claimer's does. Returns 1 then.
 */
static int claim_left(fx *f, dura_store *s, const char *scoped)
{
	int rc = dura_store_cache_claim(s, scoped, "probe", 60000);
	if (rc == DURA_EBUSY && f->sticky) {
		g_claims_left++;
		f->claim_left = 1;
		return 1;
	}
	OCHECK(rc == 0 || rc == DURA_EEXISTS);
	if (rc == 0)
		OCHECK_RC(dura_store_cache_release(s, scoped, "probe"), 0);
	return 0;
}

static int setup_cache(fx *f)
{
	setup_names(f);
	char *k = NULL;
	int rc = dura_cache_scoped_key(&k, f->key, DURA_CACHE_SCOPE_GLOBAL, NULL);
	if (rc == 0)
		snprintf(f->scoped, sizeof(f->scoped), "%s", k);
	dura_free(k);
	return rc;
}

static int run_cache(fx *f)
{
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.ttl_ms = 600000;
	/* a claim left behind (only while memory stays exhausted) is taken
	 * over by the retry once its lease runs out */
	o.lease_ms = f->sticky ? 20 : 100;
	o.wait_timeout_ms = 5000;
	fault_on();
	int rc = dura_cache_do_store(f->s, f->key, &o, compute, f, &f->entry);
	fault_off();
	return rc;
}

static void ok_cache(fx *f)
{
	OCHECK(value_ok(f->entry));
	dura_cache_entry *e = NULL;
	OCHECK_RC(dura_store_cache_get(f->chk, f->scoped, &e), 0);
	OCHECK(value_ok(e));
	dura_cache_entry_free(e);
}

static void unchanged_cache(fx *f)
{
	OCHECK(f->entry == NULL);
	claim_left(f, f->chk, f->scoped);
}

/* -- the step cache from a node: the node fails its own dura_cache_do -- */

static int node_cache(dura_ctx *ctx, json_t *state, void *payload)
{
	fx *f = payload;
	dura_cache_entry *e = NULL;
	f->node_ran++;
	fault_on();
	f->node_rc1 = dura_cache_do(ctx, f->key, 0, DURA_CACHE_SCOPE_RUN, compute, f, &e);
	fault_off();
	const dura_error *err = dura_error_last();
	OCHECK(f->node_rc1 == 0 || (err && err->code == f->node_rc1));
	if (f->node_rc1 == 0) {
		f->entry = e;
	} else {
		OCHECK(e == NULL);
		dura_cache_entry_free(e);
		if (f->node_rc1 == DURA_ENOMEM) {
			char *k = NULL;
			int left = 0;
			if (dura_cache_scoped_key(&k, f->key, DURA_CACHE_SCOPE_RUN, dura_ctx_run_id(ctx)) == 0)
				left = claim_left(f, dura_ctx_store(ctx), k);
			dura_free(k);
			/* dura_cache_do's lease is 30 s: a claim left behind is not waited out */
			if (!left)
				f->node_rc2 = dura_cache_do(ctx, f->key, 0, DURA_CACHE_SCOPE_RUN, compute, f, &f->entry2);
		}
	}
	return json_object_set_new(state, "cached", json_true()) ? DURA_ENOMEM : 0;
}

static int setup_engine_one(fx *f, const char *node, dura_node_fn fn)
{
	setup_names(f);
	dura_workflow *wf = NULL;
	int rc = dura_engine_open(&f->eng, f->s, NULL);
	if (rc == 0)
		rc = dura_workflow_new(&wf, f->wf);
	if (rc == 0)
		rc = dura_workflow_add_node(wf, node, fn, f, NULL);
	if (rc == 0)
		rc = dura_workflow_set_start(wf, node);
	if (rc) {
		dura_workflow_free(wf);
		return rc;
	}
	if ((rc = dura_engine_register(f->eng, wf)) != 0)
		return rc;
	return dura_run_start(f->eng, f->wf, NULL, S0, NULL, f->run[0]);
}

static int setup_cache_node(fx *f)
{
	return setup_engine_one(f, "c", node_cache);
}

static int run_cache_node(fx *f)
{
	int rc = dura_run_execute(f->eng, f->run[0], &f->rec);
	OCHECK(rc == 0 && f->node_ran == 1);
	return rc ? rc : f->node_rc1;
}

static void ok_cache_node(fx *f)
{
	dura_record *r = stored(f, f->run[0]);
	if (r) {
		OCHECK(r->run_state == DURA_RUN_COMPLETED && json_text_eq(r->state, "{\"n\":0,\"cached\":true}"));
		dura_record_free(r);
	}
	if (f->claim_left)
		return; /* nothing was computed again */
	OCHECK(value_ok(f->entry));
	char *k = NULL;
	dura_cache_entry *e = NULL;
	OCHECK_RC(dura_cache_scoped_key(&k, f->key, DURA_CACHE_SCOPE_RUN, f->run[0]), 0);
	if (k)
		OCHECK_RC(dura_store_cache_get(f->chk, k, &e), 0);
	OCHECK(value_ok(e));
	dura_cache_entry_free(e);
	dura_free(k);
}

/* The node retried on its own, with allocation working. */
static int retry_cache_node(fx *f)
{
	dura_cache_entry_free(f->entry);
	f->entry = f->entry2;
	f->entry2 = NULL;
	return f->node_rc2;
}

/* -- claim_runs -- */

static int setup_claim(fx *f)
{
	setup_names(f);
	int rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = new_run(f, f->wf, NULL, S0, "a", f->run[i], &f->v[i]);
	return rc;
}

static int run_claim(fx *f)
{
	const char *wfs[1] = {f->wf};
	fault_on();
	int rc = dura_store_claim_runs(f->s, "worker-1", wfs, 1, 10, 600000, &f->list);
	fault_off();
	return rc;
}

static void ok_claim(fx *f)
{
	OCHECK(f->list.count == 3);
	for (size_t i = 0; i < f->list.count; i++)
		OCHECK(str_eq(f->list.items[i].lease_owner, "worker-1") && str_eq(f->list.items[i].workflow_name, f->wf));
	for (int i = 0; i < 3; i++) {
		dura_record *r = stored(f, f->run[i]);
		if (r)
			OCHECK(str_eq(r->lease_owner, "worker-1") && r->version > f->v[i]);
		dura_record_free(r);
	}
}

static void unchanged_claim(fx *f)
{
	OCHECK(f->list.count == 0 && f->list.items == NULL);
	for (int i = 0; i < 3; i++) {
		dura_record *r = stored(f, f->run[i]);
		if (r)
			OCHECK(str_eq(r->lease_owner, "") && r->version == f->v[i] && r->lease_expires_at == 0);
		dura_record_free(r);
	}
}

/* -- a whole workflow: fetch (cached) -> fan (a delta, merge patch) -> loop x3 (goto) -> finish -- */

static int compute_fetch(dura_cache_value *out, void *payload)
{
	(void)payload;
	return dura_cache_value_set(out, "42", 2, NULL);
}

static int node_fetch(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	dura_cache_entry *e = NULL;
	/* dura_cache_do's with a short lease: while memory stays exhausted a
	 * failed computation cannot give its claim up, and the retry waits
	 * for the lease to run out */
	dura_cache_options o = DURA_CACHE_OPTIONS_INIT;
	o.scope = DURA_CACHE_SCOPE_RUN;
	o.run_id = dura_ctx_run_id(ctx);
	o.lease_ms = 20;
	int rc = dura_cache_do_store(dura_ctx_store(ctx), "fetch", &o, compute_fetch, NULL, &e);
	if (rc)
		return rc;
	char num[16] = ""; /* the value is bytes, not NUL-terminated */
	memcpy(num, e->value, e->value_len < sizeof(num) - 1 ? e->value_len : sizeof(num) - 1);
	json_int_t v = (json_int_t)atoi(num);
	dura_cache_entry_free(e);
	json_int_t in = json_integer_value(json_object_get(state, "input"));
	return json_object_set_new(state, "fetched", json_integer(v + in)) ? DURA_ENOMEM : 0;
}

static int node_fan(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)state;
	(void)payload;
	json_t *d = json_pack("{s:[i,i,i], s:{s:s}, s:n}", "items", 1, 2, 3, "meta", "k", "v", "input");
	return d ? dura_ctx_set_delta(ctx, d) : DURA_ENOMEM;
}

static int node_loop(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)payload;
	json_int_t i = json_integer_value(json_object_get(state, "i")) + 1;
	if (json_object_set_new(state, "i", json_integer(i)))
		return DURA_ENOMEM;
	return dura_ctx_goto(ctx, i < 3 ? "loop" : "finish");
}

static int node_finish(dura_ctx *ctx, json_t *state, void *payload)
{
	(void)ctx;
	(void)payload;
	return json_object_set_new(state, "done", json_true()) ? DURA_ENOMEM : 0;
}

/* Build the engine and the workflow, and start a run (foreign id fid, may be NULL). */
static int build_flow(fx *f, const char *fid)
{
	dura_node_options no = DURA_NODE_OPTIONS_INIT;
	no.max_attempts = 3; /* a node that runs out of memory is retried */
	no.backoff_initial_ms = 1;
	no.backoff_max_ms = 1;
	dura_workflow *wf = NULL;
	int rc = dura_engine_open(&f->eng, f->s, NULL);
	if (rc == 0)
		rc = dura_workflow_new(&wf, "flow");
	if (rc == 0)
		rc = dura_workflow_add_node(wf, "fetch", node_fetch, NULL, &no);
	if (rc == 0)
		rc = dura_workflow_add_node(wf, "fan", node_fan, NULL, &no);
	if (rc == 0)
		rc = dura_workflow_add_node(wf, "loop", node_loop, NULL, &no);
	if (rc == 0)
		rc = dura_workflow_add_node(wf, "finish", node_finish, NULL, &no);
	if (rc == 0)
		rc = dura_workflow_add_edge(wf, "fetch", "fan");
	if (rc == 0)
		rc = dura_workflow_add_edge(wf, "fan", "loop");
	if (rc == 0)
		rc = dura_workflow_set_start(wf, "fetch");
	if (rc == 0)
		rc = dura_workflow_set_reducer(wf, dura_reducer_merge_patch, NULL);
	if (rc) {
		dura_workflow_free(wf);
		return rc;
	}
	if ((rc = dura_engine_register(f->eng, wf)) != 0) /* owns wf, also on failure */
		return rc;
	return dura_run_start(f->eng, "flow", fid, g_initial, NULL, f->run[0]);
}

/* The uninterrupted run, recorded by the first (counting) pass of each store. */
static struct {
	int set;
	char *final_state;
	size_t nsteps;
	char *node[16];
	char *state[16];
} g_ref;

static void ref_clear(void)
{
	free(g_ref.final_state);
	for (size_t i = 0; i < g_ref.nsteps; i++) {
		free(g_ref.node[i]);
		free(g_ref.state[i]);
	}
	memset(&g_ref, 0, sizeof(g_ref));
}

static int setup_flow(fx *f)
{
	setup_names(f);
	return build_flow(f, NULL);
}

static int run_flow(fx *f)
{
	dura_record_free(f->rec);
	f->rec = NULL;
	fault_on();
	int rc = dura_run_execute(f->eng, f->run[0], &f->rec);
	fault_off();
	return rc;
}

/* Steps so far are dense and a prefix of the uninterrupted run's (all of
 * them when complete is set). */
static void flow_steps(fx *f, int complete)
{
	dura_step_list l;
	OCHECK_RC(dura_store_history(f->chk, f->run[0], 0, 0, &l), 0);
	if (complete)
		OCHECK(l.count == g_ref.nsteps);
	OCHECK(l.count <= g_ref.nsteps);
	for (size_t i = 0; i < l.count && i < g_ref.nsteps; i++) {
		OCHECK(l.items[i].step == (int64_t)i);
		OCHECK(str_eq(l.items[i].node_id, g_ref.node[i]) && json_text_eq(l.items[i].state, g_ref.state[i]));
	}
	dura_step_list_free(&l);
}

static void ok_flow(fx *f)
{
	OCHECK(f->rec != NULL);
	if (!f->rec)
		return;
	OCHECK(f->rec->run_state == DURA_RUN_COMPLETED && str_eq(f->rec->status, ""));
	if (!g_ref.set) {
		/* the counting pass: nothing fails, this is the reference */
		dura_step_list l;
		OCHECK_RC(dura_store_history(f->chk, f->run[0], 0, 0, &l), 0);
		OCHECK(l.count == 6 && l.count <= 16);
		for (size_t i = 0; i < l.count && i < 16; i++) {
			g_ref.node[i] = strdup(l.items[i].node_id);
			g_ref.state[i] = strdup(l.items[i].state);
		}
		g_ref.nsteps = l.count < 16 ? l.count : 16;
		dura_step_list_free(&l);
		g_ref.final_state = strdup(f->rec->state);
		g_ref.set = 1;
		json_t *j = json_loads(f->rec->state, 0, NULL);
		OCHECK(json_integer_value(json_object_get(j, "fetched")) == 63 &&
		       json_integer_value(json_object_get(j, "i")) == 3 && json_is_true(json_object_get(j, "done")) &&
		       json_array_size(json_object_get(j, "items")) == 3 && !json_object_get(j, "input"));
		json_decref(j);
		return;
	}
	OCHECK(json_text_eq(f->rec->state, g_ref.final_state) && f->rec->step_no == (int64_t)g_ref.nsteps);
	flow_steps(f, 1);
}

static void progress_flow(fx *f)
{
	OCHECK(f->rec == NULL);
	flow_steps(f, 0);
}

/* -- building an engine and starting a run -- */

static int run_build(fx *f)
{
	fault_on();
	int rc = build_flow(f, f->fid);
	fault_off();
	if (rc) {
		dura_engine_close(f->eng);
		f->eng = NULL;
	}
	return rc;
}

static void ok_build(fx *f)
{
	OCHECK(f->eng != NULL);
	dura_record *r = NULL;
	OCHECK_RC(dura_store_latest_run(f->chk, "flow", f->fid, &r), 0);
	if (r)
		OCHECK(str_eq(r->run_id, f->run[0]) && str_eq(r->status, "fetch") && str_eq(r->state, g_initial));
	dura_record_free(r);
}

static void unchanged_build(fx *f)
{
	OCHECK(f->eng == NULL);
	dura_record *r = NULL;
	OCHECK_RC(dura_store_latest_run(f->chk, "flow", f->fid, &r), DURA_ENOTFOUND);
	dura_record_free(r);
}

/* ---- the driver ------------------------------------------------------------------ */

/* Two modes: allocation i fails once, or it and all after it fail. */
enum { MODE_ONCE, MODE_FROM, MODE__COUNT };
static const char *const mode_name[MODE__COUNT] = {"once", "from then on"};

typedef struct stats {
	long sites, reallocs;            /* allocations of the channel the operation makes */
	long enomem[MODE__COUNT];        /* failures that gave DURA_ENOMEM */
	long absorbed[MODE__COUNT];      /* failures after which the operation still worked */
	long unreached[MODE__COUNT];     /* planned failures the operation did not reach this time */
	long claims_left;                /* cache claims a failed call could not give up */
	long bad;                        /* anything else */
} stats;

#define MAX_ROWS 64
static struct {
	char op[32];
	int kind;
	stats st[CH__COUNT];
	int have[CH__COUNT];
} g_rows[MAX_ROWS];
static int g_nrows;

static const char *g_dir;
static const char *const kind_name[] = {"memory", "sqlite"};

static void sqlite_path(char *buf, size_t n, const op *o)
{
	snprintf(buf, n, "%s/oom-%s.db", g_dir, o->name);
}

/*
 * One run of the operation with allocation fail_at of channel ch failing
 * (0: none), on a fresh handle. Returns 1 when the failure was injected.
 */
static int iterate(const op *o, int kind, const char *url, dura_store *chk, int ch, int mode, long fail_at,
                   stats *st, long *count, long *reallocs)
{
	fx f;
	memset(&f, 0, sizeof(f));
	f.sticky = mode == MODE_FROM;
	f.iter = ++g_iter;
	snprintf(g_ctx, sizeof(g_ctx), "%s on %s, %s allocation %ld fails %s", o->name, kind_name[kind], ch_name[ch],
	         fail_at, mode_name[mode]);
	int rc = dura_store_open(&f.s, url, NULL);
	OCHECK_RC(rc, 0);
	if (rc)
		return 0;
	f.chk = chk ? chk : f.s;
	int injected = 0;
	rc = o->setup(&f);
	OCHECK_RC(rc, 0);
	if (rc)
		goto out;
	fault_plan(ch, fail_at, mode == MODE_FROM);
	rc = o->run(&f);
	fault_off();
	injected = F.injected;
	if (count)
		*count = F.count;
	if (reallocs)
		*reallocs = F.reallocs;
	fault_plan(CH_NONE, 0, 0);
	if (!injected || rc == o->ok_rc) {
		if (injected)
			st->absorbed[mode]++;
		else if (fail_at)
			st->unreached[mode]++;
		OCHECK_RC(rc, o->ok_rc);
		o->check_ok(&f);
	} else if (rc == DURA_ENOMEM) {
		const dura_error *e = dura_error_last();
		OCHECK(o->retry || (e && e->code == DURA_ENOMEM)); /* a node's call checks its own */
		st->enomem[mode]++;
		if (o->check_unchanged)
			o->check_unchanged(&f);
		if (o->retry) {
			rc = o->retry(&f);
		} else {
			free_outputs(&f);
			rc = o->run(&f);
		}
		OCHECK_RC(rc, o->ok_rc);
		if (rc == o->ok_rc)
			o->check_ok(&f);
	} else {
		st->bad++;
		const dura_error *e = dura_error_last();
		if (g_reported++ < 40)
			fprintf(stderr, "    [%s] returned %d (%s), wanted %d or DURA_ENOMEM\n", g_ctx, rc,
			        e ? e->message : "no message", o->ok_rc);
		test__failed_now = 1;
	}
out:
	free_outputs(&f);
	dura_cache_entry_free(f.entry2);
	dura_engine_close(f.eng);
	dura_store_close(f.s);
	return injected;
}

static void remove_db(const char *path)
{
	char p[600];
	const char *suffix[] = {"", "-wal", "-shm", "-journal"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (unlink(p) != 0 && errno != ENOENT)
			fprintf(stderr, "    cannot remove %s\n", p);
	}
}

static void run_op(const op *o, int kind)
{
	char path[512], url[600];
	dura_store *chk = NULL;
	if (kind == ST_SQLITE) {
		sqlite_path(path, sizeof(path), o);
		remove_db(path);
		/* synchronous=off: durability is not under test here, and fsyncs are slow */
		snprintf(url, sizeof(url), "sqlite:%s?synchronous=off", path);
		REQUIRE_RC(dura_store_open(&chk, url, NULL), 0);
	} else {
		snprintf(url, sizeof(url), "memory:");
	}
	ref_clear();
	g_reported = 0;
	REQUIRE(g_nrows < MAX_ROWS);
	int row = g_nrows++;
	snprintf(g_rows[row].op, sizeof(g_rows[row].op), "%s", o->name);
	g_rows[row].kind = kind;
	printf("    %s on %s:", o->name, kind_name[kind]);
	for (int ch = 0; ch < CH__COUNT; ch++) {
		if (ch == CH_SQLITE && (kind != ST_SQLITE || !sq_hooked))
			continue;
		stats *st = &g_rows[row].st[ch];
		memset(st, 0, sizeof(*st));
		g_rows[row].have[ch] = 1;
		long n = 0, re = 0;
		/* count (and, for the workflow, record the reference run) */
		iterate(o, kind, url, chk, ch, MODE_ONCE, 0, st, &n, &re);
		st->sites = n;
		st->reallocs = re;
		g_claims_left = 0;
		for (int mode = 0; mode < MODE__COUNT; mode++)
			for (long i = 1; i <= n; i++)
				iterate(o, kind, url, chk, ch, mode, i, st, NULL, NULL);
		st->claims_left = g_claims_left;
		printf("\n      %-6s %4ld sites (%ld malloc, %ld realloc):", ch_name[ch], st->sites, st->sites - st->reallocs,
		       st->reallocs);
		for (int mode = 0; mode < MODE__COUNT; mode++) {
			printf(" %s %ld ENOMEM, %ld absorbed", mode_name[mode], st->enomem[mode], st->absorbed[mode]);
			if (st->unreached[mode])
				printf(", %ld not reached", st->unreached[mode]);
			printf("%s", mode + 1 < MODE__COUNT ? ";" : "");
		}
		if (st->claims_left)
			printf(" (%ld cache claims left to run out)", st->claims_left);
		CHECK(st->bad == 0);
		CHECK(st->sites > 0 || (ch == CH_DURA && kind == ST_SQLITE));
	}
	printf("\n");
	fflush(stdout);
	ref_clear();
	dura_store_close(chk);
	if (kind == ST_SQLITE)
		remove_db(path);
}

/* ---- the operations and the tests --------------------------------------------------- */

static const op op_create_run = {"create_run", setup_names, run_create, 0, ok_create, unchanged_create, NULL};
static const op op_commit = {"commit", setup_commit, run_commit, 0, ok_commit, unchanged_commit, NULL};
static const op op_commit_end = {"commit_end", setup_commit_end, run_commit_end, 0, ok_commit_end,
                                 unchanged_commit_end, NULL};
static const op op_commit_batch = {"commit_batch", setup_batch, run_batch, DURA_ECONFLICT, ok_batch,
                                   unchanged_batch, NULL};
static const op op_history = {"history", setup_history, run_history, 0, ok_history, unchanged_history, NULL};
static const op op_checkpoint_new = {"checkpoint_new", setup_checkpoint, run_cp_save, 0, ok_cp_save,
                                     unchanged_cp_new, NULL};
static const op op_checkpoint_overwrite = {"checkpoint_overwrite", setup_cp_overwrite, run_cp_save, 0, ok_cp_save,
                                           unchanged_cp_overwrite, NULL};
static const op op_checkpoint_load = {"checkpoint_load", setup_cp_load, run_cp_load, 0, ok_cp_load,
                                      unchanged_cp_load, NULL};
static const op op_cache_do_store = {"cache_do_store", setup_cache, run_cache, 0, ok_cache, unchanged_cache, NULL};
static const op op_cache_do_node = {"cache_do_node", setup_cache_node, run_cache_node, 0, ok_cache_node, NULL,
                                    retry_cache_node};
static const op op_claim_runs = {"claim_runs", setup_claim, run_claim, 0, ok_claim, unchanged_claim, NULL};
static const op op_engine_build = {"engine_build", setup_names, run_build, 0, ok_build, unchanged_build, NULL};
static const op op_run_execute = {"run_execute", setup_flow, run_flow, 0, ok_flow, progress_flow, NULL};

#define OP_TESTS(name)                            \
	static void memory_##name(void)           \
	{                                         \
		run_op(&op_##name, ST_MEMORY);    \
	}                                         \
	static void sqlite_##name(void)           \
	{                                         \
		run_op(&op_##name, ST_SQLITE);    \
	}

OP_TESTS(create_run)
OP_TESTS(commit)
OP_TESTS(commit_end)
OP_TESTS(commit_batch)
OP_TESTS(history)
OP_TESTS(checkpoint_new)
OP_TESTS(checkpoint_overwrite)
OP_TESTS(checkpoint_load)
OP_TESTS(cache_do_store)
OP_TESTS(cache_do_node)
OP_TESTS(claim_runs)
OP_TESTS(engine_build)
OP_TESTS(run_execute)

#define OP_ENTRIES(name) {"memory_" #name, memory_##name}, {"sqlite_" #name, sqlite_##name},

static void print_summary(void)
{
	long total[CH__COUNT] = {0, 0};
	printf("allocation sites failed (each once, then from then on), per operation and store:\n");
	printf("  %-22s %-7s %14s %14s\n", "operation", "store", "dura", "sqlite");
	for (int r = 0; r < g_nrows; r++) {
		char cell[CH__COUNT][32];
		for (int ch = 0; ch < CH__COUNT; ch++) {
			if (g_rows[r].have[ch]) {
				snprintf(cell[ch], sizeof(cell[ch]), "%ld", g_rows[r].st[ch].sites);
				total[ch] += g_rows[r].st[ch].sites;
			} else {
				snprintf(cell[ch], sizeof(cell[ch]), "-");
			}
		}
		printf("  %-22s %-7s %14s %14s\n", g_rows[r].op, kind_name[g_rows[r].kind], cell[0], cell[1]);
	}
	printf("  %-22s %-7s %14ld %14ld\n", "total", "", total[0], total[1]);
}

int main(int argc, char **argv)
{
	hooks_install(); /* before anything initialises SQLite or allocates */
	static const test_case tests[] = {
		OP_ENTRIES(create_run) OP_ENTRIES(commit) OP_ENTRIES(commit_end) OP_ENTRIES(commit_batch)
		OP_ENTRIES(history) OP_ENTRIES(checkpoint_new) OP_ENTRIES(checkpoint_overwrite)
		OP_ENTRIES(checkpoint_load) OP_ENTRIES(cache_do_store) OP_ENTRIES(cache_do_node)
		OP_ENTRIES(claim_runs) OP_ENTRIES(engine_build) OP_ENTRIES(run_execute)
	};
	if (argc < 2) {
		fprintf(stderr, "usage: %s TMPDIR [TEST_FILTER]\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	struct stat stb;
	if ((stat(g_dir, &stb) != 0 || !S_ISDIR(stb.st_mode)) && mkdir(g_dir, 0700) != 0) {
		fprintf(stderr, "oom: %s is not a directory\n", g_dir);
		return 2;
	}
	if (!sq_hooked)
		printf("note: SQLite's allocator could not be replaced; SQLite's own allocations are not failed\n");
	data_init();
	int rc = test_run_all("oom", tests, TEST_COUNT(tests), argc > 2 ? argv[2] : NULL);
	print_summary();
	return rc;
}
