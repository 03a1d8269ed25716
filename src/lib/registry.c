/*
 * registry.c - the worker registry's result types, and the row a worker
 * keeps in it (dura.h, "The worker registry"): built once at start, sent
 * with every heartbeat, deleted at stop. A store without a registry
 * (DURA_ENOTSUP) is remembered and not asked again; any other failure is
 * the caller's to count, and the next heartbeat writes the row anyway.
 */
#include "internal.h"
#include "registry.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void dura_worker_info_clear(void *item)
{
	dura_worker_info *w = item;
	if (!w)
		return;
	dura_free(w->id);
	dura_free(w->name);
	dura_free(w->host);
	dura_free(w->workflows);
	memset(w, 0, sizeof(*w));
}

void dura_worker_list_free(dura_worker_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_worker_info_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

/* The workflow versions as a JSON array of {"workflow":W,"version":V}. */
static char *workflows_json(const dura_claim_version *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_pack("{s:s, s:s}", "workflow", v[i].workflow, "version", v[i].version)) != 0) {
			json_decref(a);
			a = NULL;
		}
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	char *out = dura_strdup(text);
	free(text); /* jansson's allocator */
	return out;
}

int dura__registry_init(dura__registry *r, dura_store *store, const char *id, const char *name, int threads,
                        int64_t lease_ms, const dura_claim_version *wfs, size_t nwfs)
{
	char host[65] = "";
	memset(r, 0, sizeof(*r));
	r->store = store;
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[64] = '\0';
	if (!dura__utf8_valid(host))
		snprintf(host, sizeof(host), "localhost");
	r->info.id = dura_strdup(id);
	r->info.name = dura_strdup(name);
	r->info.host = dura_strdup(host);
	r->info.workflows = workflows_json(wfs, nwfs);
	r->info.pid = (int64_t)getpid();
	r->info.threads = threads;
	r->info.lease_ms = lease_ms;
	if (!r->info.id || !r->info.name || !r->info.host || !r->info.workflows) {
		dura_worker_info_clear(&r->info);
		return dura_error_oom("");
	}
	return 0;
}

int dura__registry_put(dura__registry *r, int64_t held)
{
	if (r->unsupported || !r->info.id)
		return 0;
	r->info.held = held;
	int rc = dura_store_put_worker(r->store, &r->info);
	if (rc == DURA_ENOTSUP) {
		r->unsupported = 1;
		return 0;
	}
	if (rc == 0)
		r->written = 1;
	return rc;
}

int dura__registry_prune(dura__registry *r)
{
	if (r->unsupported || !r->written)
		return 0;
	return dura_store_prune_workers(r->store, DURA_WORKER_PRUNE_MS, NULL);
}

int dura__registry_delete(dura__registry *r)
{
	int rc = 0;
	if (!r->unsupported && r->info.id) {
		rc = dura_store_delete_worker(r->store, r->info.id);
		if (rc == DURA_ENOTFOUND) /* never written, or pruned: gone all the same */
			rc = 0;
	}
	return rc;
}

void dura__registry_free(dura__registry *r)
{
	dura_worker_info_clear(&r->info);
}
