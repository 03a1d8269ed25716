/*
 * version.c - workflow versions: the version a workflow is given or its
 * fingerprint, the definition the store keeps of it, and the engine's
 * registry of several versions of one workflow.
 *
 * The fingerprint is FNV-1a (64 bits) over the workflow's shape, in an
 * order that does not depend on the order nodes were added in: the start
 * node, then each node by name with its static edge and the options that
 * change how it runs (attempts, backoff, timeout, whether it classifies
 * errors). A node's function is not in it - code may change behind the
 * same shape, which is what a given version is for. It reads "f" and 15
 * hex digits, which no user version is likely to look like.
 *
 * The registry: eng->workflows holds, per name, the version registered
 * last; each holds the ones before it in `older`, newest first. All of
 * them live until the engine closes, so a pointer the engine handed out
 * stays valid.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* Hash s with its NUL, so that "ab" + "c" and "a" + "bc" differ. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
	s = s ? s : "";
	return fnv(h, s, strlen(s) + 1);
}

static int node_by_name(const void *a, const void *b)
{
	const dura__node *x = *(const dura__node *const *)a, *y = *(const dura__node *const *)b;
	return strcmp(x->name, y->name);
}

/* The nodes by name (to dura_free), or NULL when out of memory or none. */
static dura__node **sorted_nodes(const dura_workflow *wf, size_t *n)
{
	*n = HASH_COUNT(wf->nodes);
	dura__node **v = *n ? dura_malloc(*n * sizeof(*v)) : NULL;
	if (!v)
		return NULL;
	size_t i = 0;
	for (dura__node *nd = wf->nodes; nd; nd = nd->hh.next)
		v[i++] = nd;
	qsort(v, *n, sizeof(*v), node_by_name);
	return v;
}

static void fingerprint(dura_workflow *wf)
{
	uint64_t h = fnv_str(FNV_OFFSET, wf->start);
	size_t n;
	dura__node **v = sorted_nodes(wf, &n);
	for (size_t i = 0; i < n && v; i++) {
		const dura__node *nd = v[i];
		char opts[160];
		snprintf(opts, sizeof(opts), "%d/%lld/%.17g/%lld/%.17g/%lld/%d", nd->opts.max_attempts,
		         (long long)nd->opts.backoff_initial_ms, nd->opts.backoff_multiplier, (long long)nd->opts.backoff_max_ms,
		         nd->opts.jitter, (long long)nd->opts.timeout_ms, nd->opts.retryable != NULL);
		h = fnv_str(fnv_str(fnv_str(h, nd->name), nd->edge), opts);
	}
	if (!v && n) /* out of memory: hash in the hash table's order rather than fail */
		for (dura__node *nd = wf->nodes; nd; nd = nd->hh.next)
			h = fnv_str(fnv_str(h, nd->name), nd->edge);
	dura_free(v);
	snprintf(wf->fingerprint, sizeof(wf->fingerprint), "f%015llx", (unsigned long long)(h >> 4));
}

int dura_workflow_set_version(dura_workflow *wf, const char *version)
{
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_set_version: workflow is NULL");
	if (wf->registered)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_workflow_set_version: workflow %s is registered already", wf->name);
	int rc = dura__check_version(version, 0, "dura_workflow_set_version");
	if (rc)
		return rc;
	char *copy = dura_strdup(version);
	if (!copy)
		return dura_error_oom("");
	dura_free(wf->version);
	wf->version = copy;
	return 0;
}

const char *dura_workflow_version(dura_workflow *wf)
{
	if (!wf)
		return NULL;
	if (wf->version)
		return wf->version;
	if (!wf->registered) /* the shape may still change: the fingerprint of now */
		fingerprint(wf);
	return wf->fingerprint;
}

char *dura__workflow_definition(const dura_workflow *wf)
{
	json_t *doc = json_object(), *nodes = json_array();
	size_t n;
	dura__node **v = sorted_nodes(wf, &n);
	int bad = !doc || !nodes || (n && !v) || json_object_set_new(doc, "start", json_string(wf->start ? wf->start : ""));
	for (size_t i = 0; !bad && i < n; i++) {
		json_t *o = json_pack("{s:s, s:s?}", "name", v[i]->name, "next", v[i]->edge);
		bad = !o || json_array_append_new(nodes, o);
	}
	dura_free(v);
	if (!bad) {
		bad = json_object_set_new(doc, "nodes", nodes);
		nodes = NULL;
	}
	json_decref(nodes);
	char *text = bad ? NULL : json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	char *out = dura_strdup(text);
	free(text); /* jansson's allocator */
	return out;
}

/* ---- the engine's registry ------------------------------------------------------------ */

dura_workflow *dura__engine_workflow_at(dura_engine *eng, const char *name, const char *version)
{
	dura_workflow *wf = NULL;
	dura__fork_enter();
	pthread_mutex_lock(&eng->lock);
	HASH_FIND_STR(eng->workflows, name, wf);
	if (version && *version)
		while (wf && strcmp(dura_workflow_version(wf), version) != 0)
			wf = wf->older;
	pthread_mutex_unlock(&eng->lock);
	dura__fork_leave();
	return wf;
}

int dura__engine_add_version(dura_engine *eng, dura_workflow *wf)
{
	const char *version = dura_workflow_version(wf);
	wf->registered = 1; /* the fingerprint is final */
	if (dura__engine_workflow_at(eng, wf->name, version))
		return dura_error_set_native(DURA_EEXISTS, "", 0, NULL, "workflow %s version %s is already registered",
		                             wf->name, version);
	char *def = dura__workflow_definition(wf);
	if (!def)
		return dura_error_oom("");
	int rc = dura__store_workflow_put(eng->store, wf->name, version, def);
	dura_free(def);
	if (rc)
		return rc;
	dura__fork_enter(); /* the engine's lock is never copied held into a child */
	pthread_mutex_lock(&eng->lock);
	dura_workflow *cur = NULL;
	HASH_FIND_STR(eng->workflows, wf->name, cur);
	for (dura_workflow *o = cur; o; o = o->older)
		if (strcmp(dura_workflow_version(o), version) == 0)
			rc = dura_error_set_native(DURA_EEXISTS, "", 0, NULL, "workflow %s version %s is already registered",
			                           wf->name, version);
	if (rc == 0) {
		int hash_oom = 0;
		if (cur)
			HASH_DEL(eng->workflows, cur);
		HASH_ADD_KEYPTR(hh, eng->workflows, wf->name, strlen(wf->name), wf);
		if (hash_oom) {
			if (cur) /* the delete made room: putting it back cannot fail */
				HASH_ADD_KEYPTR(hh, eng->workflows, cur->name, strlen(cur->name), cur);
			rc = dura_error_oom("");
		} else {
			wf->older = cur;
		}
	}
	pthread_mutex_unlock(&eng->lock);
	dura__fork_leave();
	return rc;
}

int dura__engine_versions(dura_engine *eng, const char *const *names, size_t n, dura_claim_version **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	size_t cap = 0;
	int rc = 0;
	dura__fork_enter();
	pthread_mutex_lock(&eng->lock);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		dura_workflow *wf = NULL;
		HASH_FIND_STR(eng->workflows, names[i], wf);
		for (; rc == 0 && wf; wf = wf->older) {
			if (dura_store_grow((void **)out, *nout, &cap, sizeof(**out)))
				rc = dura_error_oom("");
			else {
				(*out)[*nout].workflow = wf->name;
				(*out)[*nout].version = dura_workflow_version(wf);
				++*nout;
			}
		}
	}
	pthread_mutex_unlock(&eng->lock);
	dura__fork_leave();
	if (rc) {
		dura_free(*out);
		*out = NULL;
		*nout = 0;
	}
	return rc;
}
