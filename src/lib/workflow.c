/*
 * workflow.c - workflow graphs: nodes, static edges, the start node, the
 * reducer; validation at registration; the engine's registry.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

static int name_ok(const char *name, const char *what)
{
	if (!name || !*name)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s name is missing", what);
	if (strlen(name) > DURA_MAX_NAME_LEN)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s name is longer than %d bytes", what, DURA_MAX_NAME_LEN);
	/* names end up in JSON (the outbox's event data, the CLI's output) */
	if (!dura__utf8_valid(name))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s name is not UTF-8", what);
	return 0;
}

int dura_workflow_new(dura_workflow **out, const char *name)
{
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_new: out is NULL");
	*out = NULL;
	int rc = name_ok(name, "workflow");
	if (rc)
		return rc;
	dura_workflow *wf = dura_calloc(1, sizeof(*wf));
	if (!wf || !(wf->name = dura_strdup(name))) {
		dura_free(wf);
		return dura_error_oom("");
	}
	wf->reducer = dura_reducer_replace;
	*out = wf;
	return 0;
}

void dura_workflow_free(dura_workflow *wf)
{
	if (!wf)
		return;
	dura__node *n, *tmp;
	HASH_ITER(hh, wf->nodes, n, tmp)
	{
		HASH_DEL(wf->nodes, n);
		dura_free(n->name);
		dura_free(n->edge);
		dura_free(n);
	}
	dura_free(wf->name);
	dura_free(wf->start);
	dura_free(wf->version);
	dura_free(wf);
}

dura__node *dura__workflow_node(const dura_workflow *wf, const char *name)
{
	dura__node *n = NULL;
	if (name)
		HASH_FIND_STR(wf->nodes, name, n);
	return n;
}

int dura_workflow_add_node(dura_workflow *wf, const char *name, dura_node_fn fn, void *payload,
                           const dura_node_options *opts)
{
	dura_node_options defaults = DURA_NODE_OPTIONS_INIT;
	if (!wf || !fn)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_add_node: workflow or function is NULL");
	int rc = name_ok(name, "node");
	if (rc)
		return rc;
	if (opts && opts->version != DURA_NODE_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "node options version %u, expected %u", opts->version,
		                             DURA_NODE_OPTIONS_VERSION);
	if (dura__workflow_node(wf, name))
		return dura_error_set_native(DURA_EEXISTS, "", 0, NULL, "workflow %s already has a node named '%s'", wf->name, name);
	opts = opts ? opts : &defaults;
	/* written so that NaN fails too */
	if (opts->max_attempts < 0 || opts->backoff_initial_ms < 0 || opts->backoff_max_ms < 0 || opts->timeout_ms < 0 ||
	    !(opts->jitter >= 0 && opts->jitter <= 1) || !(opts->backoff_multiplier >= 0 && opts->backoff_multiplier <= 1e6))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "node '%s': negative option, jitter outside 0..1, or multiplier outside 0..1e6", name);
	dura__node *n = dura_calloc(1, sizeof(*n));
	if (!n || !(n->name = dura_strdup(name))) {
		dura_free(n);
		return dura_error_oom("");
	}
	n->fn = fn;
	n->payload = payload;
	n->opts = *opts;
	if (n->opts.max_attempts == 0)
		n->opts.max_attempts = 1;
	if (n->opts.backoff_initial_ms == 0)
		n->opts.backoff_initial_ms = 100;
	if (n->opts.backoff_multiplier == 0)
		n->opts.backoff_multiplier = 2.0;
	if (n->opts.backoff_max_ms == 0)
		n->opts.backoff_max_ms = 30000;
	int hash_oom = 0;
	HASH_ADD_KEYPTR(hh, wf->nodes, n->name, strlen(n->name), n);
	if (hash_oom) {
		dura_free(n->name);
		dura_free(n);
		return dura_error_oom("");
	}
	return 0;
}

int dura_workflow_add_edge(dura_workflow *wf, const char *from, const char *to)
{
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_add_edge: workflow is NULL");
	int rc = name_ok(from, "edge source");
	if (rc || (rc = name_ok(to, "edge target")))
		return rc;
	dura__node *n = dura__workflow_node(wf, from);
	if (!n)
		return dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL, "workflow %s: edge from unknown node '%s'", wf->name, from);
	if (n->edge)
		return dura_error_set_native(DURA_EEXISTS, "", 0, NULL,
		                             "workflow %s: node '%s' already has an edge (to '%s'); branch with dura_ctx_goto",
		                             wf->name, from, n->edge);
	if (!(n->edge = dura_strdup(to)))
		return dura_error_oom("");
	return 0;
}

int dura_workflow_set_start(dura_workflow *wf, const char *node)
{
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_set_start: workflow is NULL");
	int rc = name_ok(node, "start node");
	if (rc)
		return rc;
	char *s = dura_strdup(node);
	if (!s)
		return dura_error_oom("");
	dura_free(wf->start);
	wf->start = s;
	return 0;
}

int dura_workflow_set_reducer(dura_workflow *wf, dura_reducer_fn fn, void *payload)
{
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_set_reducer: workflow is NULL");
	wf->reducer = fn ? fn : dura_reducer_replace;
	wf->reducer_payload = payload;
	return 0;
}

int dura_workflow_set_concurrency(dura_workflow *wf, int max_running, int max_per_key)
{
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_workflow_set_concurrency: workflow is NULL");
	if (max_running < 0 || max_running > 1000000 || max_per_key < 0 || max_per_key > 1000000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "dura_workflow_set_concurrency: limits %d and %d must be from 0 to 1000000",
		                             max_running, max_per_key);
	wf->max_running = max_running;
	wf->max_per_key = max_per_key;
	return 0;
}

int dura_reducer_replace(json_t *state, json_t *delta, void *payload)
{
	(void)payload;
	if (json_is_object(state) && json_is_object(delta)) {
		json_object_clear(state);
		return json_object_update(state, delta) ? dura_error_oom("") : 0;
	}
	if (json_is_array(state) && json_is_array(delta)) {
		json_array_clear(state);
		return json_array_extend(state, delta) ? dura_error_oom("") : 0;
	}
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "replace reducer: the delta must have the state's type (object or array)");
}

/* RFC 7386: objects merge recursively, null deletes, anything else replaces. */
static int merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *value;
	json_object_foreach(patch, key, value)
	{
		if (json_is_null(value)) {
			json_object_del(target, key);
		} else if (json_is_object(value)) {
			json_t *t = json_object_get(target, key);
			if (!json_is_object(t)) {
				t = json_object();
				if (!t || json_object_set_new(target, key, t))
					return dura_error_oom("");
			}
			int rc = merge_patch(t, value);
			if (rc)
				return rc;
		} else if (json_object_set(target, key, value)) {
			return dura_error_oom("");
		}
	}
	return 0;
}

int dura_reducer_merge_patch(json_t *state, json_t *delta, void *payload)
{
	(void)payload;
	if (!json_is_object(state))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "merge-patch reducer: the state is not a JSON object");
	if (!json_is_object(delta))
		return dura_reducer_replace(state, delta, NULL);
	return merge_patch(state, delta);
}

int dura_engine_register(dura_engine *eng, dura_workflow *wf)
{
	if (!eng || !wf) {
		dura_workflow_free(wf);
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_engine_register: engine or workflow is NULL");
	}
	int rc = 0;
	if (!wf->start)
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "workflow %s has no start node (dura_workflow_set_start)", wf->name);
	else if (!dura__workflow_node(wf, wf->start))
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "workflow %s: start node '%s' is not a node", wf->name, wf->start);
	dura__node *n, *tmp;
	HASH_ITER(hh, wf->nodes, n, tmp)
	{
		if (rc == 0 && n->edge && !dura__workflow_node(wf, n->edge))
			rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "workflow %s: edge from '%s' to unknown node '%s'", wf->name,
			                           n->name, n->edge);
	}
	if (rc == 0)
		rc = dura__engine_add_version(eng, wf);
	if (rc)
		dura_workflow_free(wf);
	return rc;
}

dura_workflow *dura__engine_workflow(dura_engine *eng, const char *name)
{
	return dura__engine_workflow_at(eng, name, NULL);
}

int dura_workflow_set_retention(dura_workflow *wf, const dura_retention *policy)
{
	static const char fn[] = "dura_workflow_set_retention";
	dura_retention none = DURA_RETENTION_INIT;
	if (!wf)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: workflow is NULL", fn);
	if (!policy)
		policy = &none;
	if (policy->version != DURA_RETENTION_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: policy version %u, expected %u", fn,
		                             policy->version, DURA_RETENTION_VERSION);
	if (policy->completed_ms < 0 || policy->failed_ms < 0 || policy->cancelled_ms < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: a negative time", fn);
	wf->retention = *policy;
	wf->retention.whole = policy->whole != 0;
	return 0;
}
