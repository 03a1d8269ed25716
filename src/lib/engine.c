/*
 * engine.c - the engine handle, what a node sees (dura_ctx), and outbox
 * consumers.
 */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dura_engine_open(dura_engine **out, dura_store *store, const dura_engine_options *opts)
{
	dura_engine_options defaults = DURA_ENGINE_OPTIONS_INIT;
	if (!out || !store)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_engine_open: out or store is NULL");
	*out = NULL;
	if (opts && opts->version != DURA_ENGINE_OPTIONS_VERSION)
		return dura_error_set_native(DURA_EVERSION, "", 0, NULL, "engine options version %u, expected %u", opts->version,
		                             DURA_ENGINE_OPTIONS_VERSION);
	opts = opts ? opts : &defaults;
	if (opts->max_steps < 0 || opts->auto_pause_after_failures < 0 || opts->run_timeout_ms < 0)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_engine_open: negative option");
	dura_engine *eng = dura_calloc(1, sizeof(*eng));
	if (!eng)
		return dura_error_oom("");
	eng->store = store;
	eng->opts = *opts;
	pthread_mutex_init(&eng->lock, NULL);
	*out = eng;
	return 0;
}

void dura_engine_close(dura_engine *eng)
{
	if (!eng)
		return;
	dura_workflow *wf, *tmp;
	HASH_ITER(hh, eng->workflows, wf, tmp)
	{
		HASH_DEL(eng->workflows, wf);
		while (wf) { /* and the versions registered before it */
			dura_workflow *older = wf->older;
			dura_workflow_free(wf);
			wf = older;
		}
	}
	pthread_mutex_destroy(&eng->lock);
	dura_free(eng);
}

/* ---- dura_ctx ------------------------------------------------------------ */

const char *dura_ctx_run_id(const dura_ctx *ctx)
{
	return ctx ? ctx->rec->run_id : NULL;
}

const char *dura_ctx_node(const dura_ctx *ctx)
{
	return ctx ? ctx->node->name : NULL;
}

int64_t dura_ctx_step(const dura_ctx *ctx)
{
	return ctx ? ctx->rec->step_no : -1;
}

int dura_ctx_attempt(const dura_ctx *ctx)
{
	return ctx ? ctx->attempt : 0;
}

int64_t dura_ctx_deadline(const dura_ctx *ctx)
{
	if (!ctx)
		return 0;
	if (ctx->deadline && ctx->run_deadline)
		return ctx->deadline < ctx->run_deadline ? ctx->deadline : ctx->run_deadline;
	return ctx->deadline ? ctx->deadline : ctx->run_deadline;
}

int dura_ctx_canceled(const dura_ctx *ctx)
{
	int64_t d = dura_ctx_deadline(ctx);
	return d && dura_now_ms() >= d;
}

int dura_ctx_goto(dura_ctx *ctx, const char *node)
{
	if (!ctx)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_ctx_goto: ctx is NULL");
	char *copy = NULL;
	if (node && *node) {
		if (strlen(node) > DURA_MAX_NAME_LEN)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_ctx_goto: node name is too long");
		if (!(copy = dura_strdup(node)))
			return dura_error_oom("");
	}
	dura_free(ctx->goto_node);
	ctx->goto_node = copy;
	ctx->goto_set = 1;
	return 0;
}

int dura_ctx_set_delta(dura_ctx *ctx, json_t *delta)
{
	if (!ctx || !delta) {
		json_decref(delta);
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_ctx_set_delta: ctx or delta is NULL");
	}
	json_decref(ctx->delta);
	ctx->delta = delta;
	return 0;
}

int dura_ctx_fail(dura_ctx *ctx, int code, const char *fmt, ...)
{
	if (!ctx)
		return code;
	ctx->error[0] = '\0';
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
		va_end(ap);
	}
	return code < 0 ? code : DURA_ERROR;
}

dura_store *dura_ctx_store(const dura_ctx *ctx)
{
	return ctx ? ctx->eng->store : NULL;
}

/* ---- outbox consumers ------------------------------------------------------ */

int dura_outbox_consume(dura_engine *eng, dura_event_fn handler, void *payload, size_t max, size_t *delivered)
{
	size_t done = 0;
	if (delivered)
		*delivered = 0;
	if (!eng || !handler)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_outbox_consume: engine or handler is NULL");
	for (;;) {
		size_t want = max ? max - done : 100;
		if (max && done >= max)
			break;
		dura_event_list evs;
		int rc = dura_store_outbox_poll(eng->store, want > 100 ? 100 : want, &evs);
		if (rc)
			return rc;
		size_t acked_now = 0, refused = 0;
		for (size_t i = 0; i < evs.count; i++) {
			if (handler(&evs.items[i], payload) != 0) {
				refused++;
				continue;
			}
			rc = dura_store_outbox_ack(eng->store, evs.items[i].id);
			if (rc == 0) {
				acked_now++;
			} else if (rc != DURA_ENOTFOUND) { /* another consumer acked it first: fine */
				dura_event_list_free(&evs);
				if (delivered)
					*delivered = done + acked_now;
				return rc;
			}
		}
		size_t n = evs.count;
		dura_event_list_free(&evs);
		done += acked_now;
		/* stop at the end, or when the handler refuses what is left */
		if (n == 0 || acked_now == 0 || refused)
			break;
	}
	if (delivered)
		*delivered = done;
	return 0;
}
