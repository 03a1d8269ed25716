/*
 * fleet.c - the store API of operating a fleet (contract version 6):
 * workflow versions (the definitions engines register, counts of runs per
 * version, moving a run to another version) and retention (pruning ended
 * runs and the outbox in batches), and the gauges a dashboard reads
 * (contract version 8). As in store.c, every argument is validated here
 * once, so that each store only stores.
 */
#include "handle.h"

#include <stdio.h>
#include <string.h>

#define FLEET_OPS(X) \
	X(workflow_put) X(workflow_list) X(run_counts) X(set_run_version) X(prune_runs) X(outbox_prune)

int dura__fleet_ops_valid(const dura_store_ops *ops)
{
	if (ops->version < 6)
		return 0;
#define X(name)                                                                                                 \
	if (!ops->name)                                                                                         \
		return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,                                 \
		                             "store '%s' (contract version 6) has no %s operation", ops->scheme, #name);
	FLEET_OPS(X)
#undef X
	return 0;
}

int dura__store_has_versions(const dura_store *s)
{
	return s && s->ops->version >= 6;
}

static int has_fleet(const dura_store *s, const char *fn)
{
	if (s->ops->version >= 6)
		return 0;
	return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
	                             "%s: the %s store (contract version %u) has no workflow versions or retention (version 6)",
	                             fn, s->ops->scheme, s->ops->version);
}

int dura__version_valid(const char *v)
{
	size_t n = v ? strnlen(v, DURA_MAX_VERSION_LEN + 1) : 0;
	if (n == 0 || n > DURA_MAX_VERSION_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

int dura__check_version(const char *v, int allow_empty, const char *fn)
{
	if (allow_empty && v && !*v)
		return 0;
	if (dura__version_valid(v))
		return 0;
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
	                             "%s: workflow version %s%.80s%s must be 1 to %d bytes of [A-Za-z0-9._-]", fn,
	                             v ? "'" : "", v ? v : "NULL", v ? "'" : "", DURA_MAX_VERSION_LEN);
}

int dura__check_claim_versions(const dura_claim *req, const char *fn)
{
	if (req->nversions == 0)
		return 0;
	if (!req->versions)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu versions but the list is NULL", fn,
		                             req->nversions);
	if (req->nversions > 4096)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: %zu versions (at most 4096)", fn, req->nversions);
	for (size_t i = 0; i < req->nversions; i++) {
		const dura_claim_version *v = &req->versions[i];
		TRY(dura__check_id(v->workflow, "version's workflow name", fn));
		TRY(dura__check_version(v->version, 0, fn));
		size_t j = 0;
		while (j < req->nworkflows && strcmp(req->workflows[j].name, v->workflow) != 0)
			j++;
		if (j == req->nworkflows)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
			                             "%s: version %s is of workflow %.255s, which the claim does not list", fn,
			                             v->version, v->workflow);
	}
	return 0;
}

/* ---- the versions engines register ------------------------------------------------ */

void dura_workflow_def_clear(void *item)
{
	dura_workflow_def *d = item;
	if (!d)
		return;
	dura_free(d->workflow_name);
	dura_free(d->version);
	dura_free(d->definition);
	memset(d, 0, sizeof(*d));
}

void dura_workflow_def_list_free(dura_workflow_def_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_workflow_def_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

void dura_run_count_clear(void *item)
{
	dura_run_count *c = item;
	if (!c)
		return;
	dura_free(c->workflow_name);
	dura_free(c->workflow_version);
	memset(c, 0, sizeof(*c));
}

void dura_run_count_list_free(dura_run_count_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_run_count_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

int dura__store_workflow_put(dura_store *s, const char *name, const char *version, const char *definition)
{
	static const char fn[] = "dura_engine_register";
	CHECK_STORE(s);
	if (!dura__store_has_versions(s))
		return 0; /* an older external store keeps no versions */
	TRY(dura__check_id(name, "workflow name", fn));
	TRY(dura__check_version(version, 0, fn));
	TRY(dura__json_object_valid(definition, "workflow definition"));
	DISPATCH(s, workflow_put, name, version, definition);
}

int dura_store_workflow_list(dura_store *s, const char *name, dura_workflow_def_list *out)
{
	static const char fn[] = "dura_store_workflow_list";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_opt_id(name, "workflow name", fn));
	TRY(has_fleet(s, fn));
	DISPATCH(s, workflow_list, name && *name ? name : NULL, out);
}

int dura_store_run_counts(dura_store *s, const char *workflow, dura_run_count_list *out)
{
	static const char fn[] = "dura_store_run_counts";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	TRY(dura__check_opt_id(workflow, "workflow name", fn));
	TRY(has_fleet(s, fn));
	DISPATCH(s, run_counts, workflow && *workflow ? workflow : NULL, out);
}

static int run_ended(int st)
{
	return st == DURA_RUN_COMPLETED || st == DURA_RUN_FAILED || st == DURA_RUN_CANCELLED || st == DURA_RUN_DATA_DELETED;
}

/* 1 when the definition (JSON, as workflow_put got it) has node `name`. */
static int def_has_node(const char *definition, const char *name)
{
	json_t *doc = json_loads(definition, 0, NULL);
	json_t *nodes = json_object_get(doc, "nodes");
	int found = 0;
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n)
	{
		const char *nn = json_string_value(json_object_get(n, "name"));
		if (nn && strcmp(nn, name) == 0) {
			found = 1;
			break;
		}
	}
	json_decref(doc);
	return found;
}

/* The definition of wf at version (to dura_free), or NULL with the error set. */
static char *find_definition(dura_store *s, const char *wf, const char *version, const char *fn)
{
	dura_workflow_def_list defs;
	int rc;
	dura_error_clear();
	GUARD(rc, s->ops->workflow_list(s->impl, wf, &defs));
	if (rc)
		return NULL;
	char *def = NULL;
	for (size_t i = 0; i < defs.count; i++)
		if (strcmp(defs.items[i].workflow_name, wf) == 0 && strcmp(defs.items[i].version, version) == 0) {
			def = defs.items[i].definition;
			defs.items[i].definition = NULL;
			break;
		}
	dura_workflow_def_list_free(&defs);
	if (!def)
		dura_error_set_native(DURA_ENOTFOUND, "", 0, NULL,
		                      "%s: workflow %.255s has no version %s in the store (no engine registered it)", fn, wf,
		                      version);
	return def;
}

int dura_store_migrate_run(dura_store *s, const char *run_id, const char *version, dura_record **out)
{
	static const char fn[] = "dura_store_migrate_run";
	if (out)
		*out = NULL;
	CHECK_STORE(s);
	TRY(dura__check_id(run_id, "run id", fn));
	TRY(dura__check_version(version, 0, fn));
	TRY(has_fleet(s, fn));
	dura_record *rec = NULL;
	int rc;
	dura_error_clear();
	GUARD(rc, s->ops->get_run(s->impl, run_id, &rec));
	if (rc)
		return rc;
	char *def = NULL;
	if (run_ended(rec->run_state)) {
		rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL, "%s: run %s is %s: only a run that has not ended moves",
		                           fn, run_id, dura_run_state_name(rec->run_state));
		goto out;
	}
	if (rec->lease_owner && *rec->lease_owner && rec->lease_expires_at > dura_now_ms()) {
		rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
		                           "%s: run %s is leased by worker %s now: pause it, or wait for the lease to end", fn,
		                           run_id, rec->lease_owner);
		goto out;
	}
	if (!(def = find_definition(s, rec->workflow_name, version, fn))) {
		rc = dura_error_last()->code;
		goto out;
	}
	if (rec->status && *rec->status && !def_has_node(def, rec->status)) {
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                           "%s: run %s is at node '%s', which version %s of workflow %.255s does not have", fn,
		                           run_id, rec->status, version, rec->workflow_name);
		goto out;
	}
	dura_record *moved = NULL;
	dura_error_clear();
	GUARD(rc, s->ops->set_run_version(s->impl, run_id, rec->version, version, &moved));
	if (rc == DURA_ECONFLICT)
		rc = dura_error_set_native(DURA_ECONFLICT, "", 0, NULL,
		                           "%s: run %s changed while it was being moved (a worker took it): try again", fn, run_id);
	if (rc == 0) {
		dura__workers_kick(s); /* workers of the new version in this process */
		if (out)
			*out = moved;
		else
			dura_record_free(moved);
	}
out:
	dura_free(def);
	dura_record_free(rec);
	return rc;
}

/* ---- retention ---------------------------------------------------------------------- */

static int check_limit(size_t limit, const char *fn)
{
	if (limit == 0 || limit > 10000)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: a batch of %zu (1 to 10000)", fn, limit);
	return 0;
}

int dura_store_prune(dura_store *s, const dura_prune *req, int64_t *count)
{
	static const char fn[] = "dura_store_prune";
	int64_t local = 0;
	if (!count)
		count = &local;
	*count = 0;
	CHECK_STORE(s);
	if (!req)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: request is NULL", fn);
	if (req->version != DURA_PRUNE_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "%s: request version %u, expected %u", fn, req->version,
		                             DURA_PRUNE_VERSION);
	TRY(dura__check_opt_id(req->workflow, "workflow name", fn));
	int st = req->run_state;
	if (st != DURA_RUN_COMPLETED && st != DURA_RUN_FAILED && st != DURA_RUN_CANCELLED &&
	    !(st == DURA_RUN_DATA_DELETED && req->whole))
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                             "%s: run state %d: completed, failed or cancelled (or data_deleted, whole) are pruned",
		                             fn, st);
	if (req->ended_before <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: ended_before %lld must be a positive time", fn,
		                             (long long)req->ended_before);
	TRY(check_limit(req->limit, fn));
	TRY(has_fleet(s, fn));
	dura_prune copy = *req;
	copy.workflow = req->workflow && *req->workflow ? req->workflow : NULL;
	copy.whole = req->whole != 0;
	copy.dry_run = req->dry_run != 0;
	DISPATCH(s, prune_runs, &copy, count);
}

int dura_store_outbox_prune(dura_store *s, int64_t before, size_t limit, int64_t *count)
{
	static const char fn[] = "dura_store_outbox_prune";
	int64_t local = 0;
	if (!count)
		count = &local;
	*count = 0;
	CHECK_STORE(s);
	if (before <= 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: before %lld must be a positive time", fn,
		                             (long long)before);
	TRY(check_limit(limit, fn));
	TRY(has_fleet(s, fn));
	DISPATCH(s, outbox_prune, before, limit, count);
}

/* ---- gauges (contract version 8) ------------------------------------------------------ */

int dura__gauges_ops_valid(const dura_store_ops *ops)
{
	if (ops->version < 8 || ops->gauges)
		return 0;
	return dura_error_set_native(DURA_EINVAL, ops->scheme, 0, NULL,
	                             "store '%s' (contract version 8) has no gauges operation", ops->scheme);
}

int dura_store_gauges_get(dura_store *s, dura_store_gauges *out)
{
	static const char fn[] = "dura_store_gauges_get";
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK_STORE(s);
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s: out is NULL", fn);
	if (s->ops->version < 8)
		return dura_error_set_native(DURA_ENOTSUP, s->ops->scheme, 0, NULL,
		                             "%s: the %s store (contract version %u) keeps no gauges (version 8)", fn,
		                             s->ops->scheme, s->ops->version);
	dura_error_clear();
	int rc;
	GUARD(rc, s->ops->gauges(s->impl, out));
	if (rc)
		memset(out, 0, sizeof(*out));
	else if (out->now <= 0)
		out->now = dura_now_ms();
	return rc;
}
