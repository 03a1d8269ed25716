/*
 * reply.c - key names, the scripts' calling convention and reading their
 * replies into the public structs.
 */
#include "redis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dr_key(const dr_store *s, char *buf, size_t size, const char *kind, const char *id)
{
	int n = id ? snprintf(buf, size, "%s%s:%s", s->prefix, kind, id) : snprintf(buf, size, "%s%s", s->prefix, kind);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

const char *dr_now_text(char buf[24], int64_t *now)
{
	int64_t t = dura_now_ms();
	if (now)
		*now = t;
	snprintf(buf, 24, "%" PRId64, t);
	return buf;
}

/* The script's code and message: {code, message} when code is not 0. */
static int script_status(const dr_script *sc, const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script %s answered something unexpected",
		                             sc->name);
	long long code = r->element[0]->integer;
	if (code == 0)
		return 0;
	const char *msg = "";
	if (r->elements > 1 && (r->element[1]->type == REDIS_REPLY_STRING || r->element[1]->type == REDIS_REPLY_STATUS))
		msg = r->element[1]->str;
	if (code > 0 || code < DURA_ECANCELED)
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script %s answered code %lld: %s",
		                             sc->name, code, msg);
	return dura_error_set_native((int)code, DR_STORE, 0, NULL, "%s", msg);
}

int dr_run(dr_store *s, dr_script *sc, int flags, redisReply **out, int *unsure, const char *key, int argc,
           const char **argv, const size_t *lens)
{
	enum { STACK_ARGS = 24 };
	const char *sa[STACK_ARGS];
	size_t sl[STACK_ARGS];
	const char **a = sa;
	size_t *l = sl;
	int total = argc + 3;
	*out = NULL;
	if (total > STACK_ARGS) {
		a = dura_malloc(sizeof(*a) * (size_t)total);
		l = dura_malloc(sizeof(*l) * (size_t)total);
		if (!a || !l) {
			dura_free(a);
			dura_free(l);
			return dura_error_oom(DR_STORE);
		}
	}
	char now[24];
	dr_now_text(now, NULL);
	a[0] = key, l[0] = strlen(key);
	a[1] = s->prefix, l[1] = s->prefix_len;
	a[2] = now, l[2] = strlen(now);
	for (int i = 0; i < argc; i++) {
		a[3 + i] = argv[i];
		l[3 + i] = lens ? lens[i] : strlen(argv[i]);
	}
	redisReply *r = NULL;
	int rc = dr_eval(s->client, sc, flags, &r, unsure, 1, total, a, l);
	if (a != sa) {
		dura_free(a);
		dura_free(l);
	}
	if (rc != 0)
		return rc;
	if ((rc = script_status(sc, r)) != 0) {
		freeReplyObject(r);
		return rc;
	}
	*out = r;
	return 0;
}

int dr_run_delete(dr_store *s, dr_script *sc, const char *key, int argc, const char **argv)
{
	redisReply *r = NULL;
	int unsure = 0;
	int rc = dr_run(s, sc, 0, &r, &unsure, key, argc, argv, NULL);
	if (rc && unsure) {
		/* lost after sending: ask again; gone now is what we wanted */
		rc = dr_run(s, sc, DR_IDEMPOTENT, &r, NULL, key, argc, argv, NULL);
		if (rc == DURA_ENOTFOUND)
			rc = 0;
	}
	freeReplyObject(r);
	return rc;
}

int dr_run_field(dr_store *s, const char *run_id, const char *field, int64_t *out)
{
	char key[320];
	if (dr_key(s, key, sizeof(key), "run", run_id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key: %s", run_id);
	redisReply *r;
	int rc = dr_commandv(s->client, DR_IDEMPOTENT, &r, "HGET", key, field, NULL);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_NIL)
		rc = dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL, "no run %s", run_id);
	else if (r->type == REDIS_REPLY_ERROR)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "Redis HGET of run %s: %s", run_id, r->str);
	else
		*out = dr_int(r);
	freeReplyObject(r);
	return rc;
}

int64_t dr_int(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return strtoll(r->str, NULL, 10);
	return 0;
}

char *dr_strdup_reply(const redisReply *r)
{
	if (!r || r->type == REDIS_REPLY_NIL)
		return dura_strdup("");
	if (r->type == REDIS_REPLY_INTEGER) {
		char buf[24];
		snprintf(buf, sizeof(buf), "%lld", r->integer);
		return dura_strdup(buf);
	}
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return dura_strndup(r->str, r->len);
	return dura_strdup("");
}

/* Fields in DR_RECORD_FIELDS order. */
int dr_record_decode(redisReply *const *f, size_t n, dura_record *out)
{
	memset(out, 0, sizeof(*out));
	if (n < DR_RECORD_NFIELDS)
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis run record came back with %zu fields", n);
	char **strs[] = {&out->run_id, &out->workflow_name, &out->foreign_id, &out->status, &out->state,
	                 &out->error, &out->meta, &out->lease_owner, &out->concurrency_key,
	                 &out->wait, &out->parent_id, &out->workflow_version};
	/* wait and parent_id are nil in a run written before schema 2, and
	 * workflow_version in one not yet indexed for schema 3: "" */
	const int idx[] = {0, 1, 2, 4, 5, 9, 10, 11, 17, 18, 19, 20};
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		if (!(*strs[i] = dr_strdup_reply(f[idx[i]]))) {
			dura_record_clear(out);
			return dura_error_oom(DR_STORE);
		}
	if (!*out->state) { /* a record always has a state: "{}" when erased */
		dura_free(out->state);
		if (!(out->state = dura_strdup("{}"))) {
			dura_record_clear(out);
			return dura_error_oom(DR_STORE);
		}
	}
	out->run_state = (int)dr_int(f[3]);
	out->version = dr_int(f[6]);
	out->step_no = dr_int(f[7]);
	out->attempt = (int)dr_int(f[8]);
	out->lease_expires_at = dr_int(f[12]);
	out->next_run_at = dr_int(f[13]);
	out->created_at = dr_int(f[14]);
	out->updated_at = dr_int(f[15]);
	out->priority = (int)dr_int(f[16]);
	return 0;
}

int dr_run_pages(dr_store *s, dr_script *sc, const char *key, const char *first, const char *page)
{
	char *cursor = dura_strdup(first);
	if (!cursor)
		return dura_error_oom(DR_STORE);
	int rc = 0;
	for (;;) {
		const char *argv[] = {cursor, page};
		redisReply *r = NULL;
		if ((rc = dr_run(s, sc, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL)) != 0)
			break;
		char *next = dr_strdup_reply(r->element[1]);
		freeReplyObject(r);
		if (!next) {
			rc = dura_error_oom(DR_STORE);
			break;
		}
		dura_free(cursor);
		cursor = next;
		if (!*cursor)
			break;
	}
	dura_free(cursor);
	return rc;
}
