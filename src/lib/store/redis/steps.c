/*
 * steps.c - reading a run's steps back: history, one step, the latest.
 *
 * The steps are a list per run; element i is step step_base + i (the run's
 * step_no when the list began, 0 unless its data was erased and it went on
 * committing), "<created_at>\n<length of node_id>\n<node_id><state>", or
 * "<created_at>\n<length of node_id>:<workflow version>\n<node_id><state>"
 * for a step committed by code of a version (schema 3; a version has no
 * ':' or newline, and a step without one keeps the shorter form).
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {0, step_base, elements...}: ARGV[3] = from, ARGV[4] = count (0: all),
 * ARGV[5] = "latest" for the last one only. */
static dr_script steps_script = DR_SCRIPT("steps",
	"local base = tonumber(redis.call('HGET', ARGV[1]..'run:'..ARGV[6], 'step_base') or '0')\n"
	"if ARGV[5] == 'latest' then\n"
	"  local n = redis.call('LLEN', KEYS[1])\n"
	"  if n == 0 then return {0, base} end\n"
	"  return {0, base + n - 1, redis.call('LINDEX', KEYS[1], -1)}\n"
	"end\n"
	"local from = tonumber(ARGV[3]) - base\n"
	"if from < 0 then from = 0 end\n"
	"local last = -1\n"
	"if tonumber(ARGV[4]) > 0 then last = from + tonumber(ARGV[4]) - 1 end\n"
	"return {0, base + from, unpack(redis.call('LRANGE', KEYS[1], from, last))}\n");

/* One element into a step. */
static int step_decode(const char *run_id, int64_t step, const redisReply *e, dura_step *out)
{
	memset(out, 0, sizeof(*out));
	if (!e || e->type != REDIS_REPLY_STRING)
		goto bad;
	const char *p = e->str, *end = e->str + e->len;
	char *nl;
	out->created_at = strtoll(p, &nl, 10);
	if (nl >= end || *nl != '\n')
		goto bad;
	p = nl + 1;
	size_t nlen = (size_t)strtoull(p, &nl, 10);
	const char *q = nl, *ver = nl, *ver_end = nl;
	if (q < end && *q == ':') {
		ver = q + 1;
		if (!(ver_end = memchr(ver, '\n', (size_t)(end - ver))))
			goto bad;
		q = ver_end;
	}
	if (q >= end || *q != '\n' || (size_t)(end - (q + 1)) < nlen)
		goto bad;
	p = q + 1;
	out->run_id = dura_strdup(run_id);
	out->node_id = dura_strndup(p, nlen);
	out->state = dura_strndup(p + nlen, (size_t)(end - p - nlen));
	out->workflow_version = dura_strndup(ver, (size_t)(ver_end - ver));
	out->step = step;
	if (!out->run_id || !out->node_id || !out->state || !out->workflow_version) {
		dura_step_clear(out);
		return dura_error_oom(DR_STORE);
	}
	return 0;
bad:
	return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "step %lld of run %s is malformed in Redis",
	                             (long long)step, run_id);
}

static int steps_read(dr_store *s, const char *run_id, int64_t from, size_t limit, int latest, redisReply **out)
{
	char key[320], f[24], n[24];
	if (dr_key(s, key, sizeof(key), "steps", run_id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key");
	snprintf(f, sizeof(f), "%lld", (long long)from);
	snprintf(n, sizeof(n), "%zu", limit);
	const char *argv[] = {f, n, latest ? "latest" : "range", run_id};
	return dr_run(s, &steps_script, DR_IDEMPOTENT, out, NULL, key, 4, argv, NULL);
}

int dr_history(void *impl, const char *run_id, int64_t from, size_t limit, dura_step_list *out)
{
	redisReply *r;
	memset(out, 0, sizeof(*out));
	int rc = steps_read(impl, run_id, from, limit, 0, &r);
	if (rc)
		return rc;
	int64_t first = dr_int(r->element[1]);
	size_t n = r->elements - 2;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		rc = dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = step_decode(run_id, first + (int64_t)i, r->element[2 + i], &out->items[i])) == 0)
			out->count++;
	freeReplyObject(r);
	if (rc)
		dura_step_list_free(out);
	return rc;
}

static int one_step(dr_store *s, const char *run_id, int64_t step, int latest, dura_step **out)
{
	redisReply *r;
	int rc = steps_read(s, run_id, step, 1, latest, &r);
	if (rc)
		return rc;
	int64_t at = dr_int(r->element[1]);
	if (r->elements < 3 || (!latest && at != step)) {
		freeReplyObject(r);
		if (latest)
			return dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL, "run %s has no steps", run_id);
		return dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL, "run %s has no step %lld", run_id,
		                             (long long)step);
	}
	dura_step *st = dura_malloc(sizeof(*st));
	if (!st)
		rc = dura_error_oom(DR_STORE);
	else if ((rc = step_decode(run_id, at, r->element[2], st)) != 0)
		dura_free(st);
	else
		*out = st;
	freeReplyObject(r);
	return rc;
}

int dr_get_step(void *impl, const char *run_id, int64_t step, dura_step **out)
{
	return one_step(impl, run_id, step, 0, out);
}

int dr_load_latest(void *impl, const char *run_id, dura_step **out)
{
	return one_step(impl, run_id, 0, 1, out);
}
