/*
 * flow.c - the flow-control ledger of a claim (flow.h).
 */
#include "flow.h"

#include <stdio.h>
#include <string.h>

/* a (workflow, concurrency key) with a max_per_key limit */
typedef struct flow_key {
	char *id; /* the workflow's index, a NUL, the key */
	size_t id_len;
	int64_t running;
	UT_hash_handle hh;
} flow_key;

typedef struct flow_wf {
	const char *name; /* the request's */
	int max_running, max_per_key;
	int64_t running;
} flow_wf;

struct dura_flow {
	const char *store;
	const dura_claim *req;
	size_t n;
	flow_wf *wf;
	flow_key *keys; /* uthash head */
};

int dura_flow_new(dura_flow **out, const dura_claim *req, const char *store)
{
	*out = NULL;
	int limited = 0;
	for (size_t i = 0; i < req->nworkflows; i++)
		limited |= req->workflows[i].max_running > 0 || req->workflows[i].max_per_key > 0;
	if (!limited && req->nversions == 0)
		return 0;
	dura_flow *f = dura_calloc(1, sizeof(*f));
	if (!f || !(f->wf = dura_calloc(req->nworkflows, sizeof(*f->wf)))) {
		dura_free(f);
		return dura_error_oom(store);
	}
	f->store = store;
	f->req = req;
	f->n = req->nworkflows;
	for (size_t i = 0; i < f->n; i++) {
		f->wf[i].name = req->workflows[i].name;
		f->wf[i].max_running = req->workflows[i].max_running;
		f->wf[i].max_per_key = req->workflows[i].max_per_key;
	}
	*out = f;
	return 0;
}

void dura_flow_free(dura_flow *f)
{
	if (!f)
		return;
	flow_key *k, *tmp;
	HASH_ITER(hh, f->keys, k, tmp)
	{
		HASH_DEL(f->keys, k);
		dura_free(k->id);
		dura_free(k);
	}
	dura_free(f->wf);
	dura_free(f);
}

static flow_wf *find_wf(const dura_flow *f, const char *wf)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->wf[i].name, wf) == 0)
			return &f->wf[i];
	return NULL;
}

/* The entry of (w, key), made when make is set: NULL when absent (or out
 * of memory, with *oom set). The lookup needs no allocation. */
static flow_key *find_key(dura_flow *f, const flow_wf *w, const char *key, int make, int *oom)
{
	char buf[320];
	int il = snprintf(buf, sizeof(buf), "%zu", (size_t)(w - f->wf));
	size_t kl = strlen(key), len = (size_t)il + 1 + kl;
	char *id = len < sizeof(buf) ? buf : dura_malloc(len + 1);
	if (!id) {
		*oom = 1;
		return NULL;
	}
	if (id != buf)
		memcpy(id, buf, (size_t)il + 1);
	memcpy(id + il + 1, key, kl + 1);
	flow_key *k = NULL;
	HASH_FIND(hh, f->keys, id, len, k);
	if (k || !make)
		goto out;
	if (!(k = dura_calloc(1, sizeof(*k))) || !(k->id = dura_malloc(len + 1))) {
		dura_free(k);
		k = NULL;
		*oom = 1;
		goto out;
	}
	memcpy(k->id, id, len + 1);
	k->id_len = len;
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, f->keys, k->id, k->id_len, k);
	if (hash_oom) {
		dura_free(k->id);
		dura_free(k);
		k = NULL;
		*oom = 1;
	}
out:
	if (id != buf)
		dura_free(id);
	return k;
}

int dura_flow_count(dura_flow *f, const char *wf, const char *key, int64_t n)
{
	flow_wf *w = find_wf(f, wf);
	if (!w)
		return 0;
	w->running += n;
	if (w->max_per_key > 0 && key && *key) {
		int oom = 0;
		flow_key *k = find_key(f, w, key, 1, &oom);
		if (!k)
			return dura_error_oom(f->store);
		k->running += n;
	}
	return 0;
}

int dura_claim_serves(const dura_claim *req, const char *wf, const char *version)
{
	int listed = req->nworkflows == 0;
	for (size_t i = 0; !listed && i < req->nworkflows; i++)
		listed = strcmp(req->workflows[i].name, wf) == 0;
	if (!listed)
		return 0;
	if (req->version < 2 || req->nversions == 0 || !version || !*version)
		return 1;
	int named = 0;
	for (size_t i = 0; i < req->nversions; i++) {
		if (strcmp(req->versions[i].workflow, wf) != 0)
			continue;
		if (strcmp(req->versions[i].version, version) == 0)
			return 1;
		named = 1;
	}
	return !named;
}

int dura_flow_admit(dura_flow *f, const char *wf, const char *version, const char *key)
{
	flow_wf *w = find_wf(f, wf);
	if (!w || !dura_claim_serves(f->req, wf, version))
		return 0;
	if (w->max_running > 0 && w->running >= w->max_running)
		return 0;
	flow_key *k = NULL;
	if (w->max_per_key > 0 && key && *key) {
		int oom = 0;
		if (!(k = find_key(f, w, key, 1, &oom))) {
			dura_error_oom(f->store);
			return -1;
		}
		if (k->running >= w->max_per_key)
			return 0;
		k->running++;
	}
	w->running++;
	return 1;
}

char *dura_flow_open_json(const dura_flow *f, int *none)
{
	const char **open = dura_calloc(f->n ? f->n : 1, sizeof(*open));
	if (!open)
		return NULL;
	size_t m = dura_flow_open(f, open, f->n);
	*none = m == 0;
	char *json = dura__json_string_array(open, m);
	dura_free(open);
	if (!json)
		*none = 0;
	return json;
}

size_t dura_flow_open(const dura_flow *f, const char **names, size_t cap)
{
	size_t m = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->wf[i].max_running <= 0 || f->wf[i].running < f->wf[i].max_running) {
			if (m < cap)
				names[m] = f->wf[i].name;
			m++;
		}
	return m;
}

int dura_flow_claim_runs(int (*claim)(void *, const dura_claim *, dura_record_list *), void *impl, const char *store,
                         const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                         int64_t lease_ms, dura_record_list *out)
{
	dura_claim_workflow *cw = NULL;
	if (nworkflows && !(cw = dura_calloc(nworkflows, sizeof(*cw))))
		return dura_error_oom(store);
	for (size_t i = 0; i < nworkflows; i++)
		cw[i].name = workflows[i];
	dura_claim req = DURA_CLAIM_INIT;
	req.owner = owner;
	req.workflows = cw;
	req.nworkflows = nworkflows;
	req.max = max;
	req.lease_ms = lease_ms;
	int rc = claim(impl, &req, out);
	dura_free(cw);
	return rc;
}
