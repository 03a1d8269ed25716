/*
 * runs.c - creating, reading, listing and changing the state of runs.
 *
 * Each operation is one script on the run's hash and the indexes beside it
 * (index.h), so a create that races another on the same foreign id, or a
 * pause racing a claim, is decided by Redis running one script at a time.
 * Run-state rules stay in C (dura_run_state_transition_ok): the script
 * applies a change only when the run is still in the state C judged
 * (a compare on the current state), and C tries again when it moved.
 */
#include "index.h"

#include <stdio.h>
#include <string.h>

static const char *const record_fields[] = {DR_RECORD_FIELDS};

static int run_key(const dr_store *s, char *buf, size_t size, const char *id)
{
	if (dr_key(s, buf, size, "run", id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key: %s", id);
	return 0;
}

/* A record from elements [at, at + DR_RECORD_NFIELDS) of r, into a new one. */
static int record_new(const redisReply *r, size_t at, dura_record **out)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < at + DR_RECORD_NFIELDS)
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis run record came back incomplete");
	dura_record *rec = dura_malloc(sizeof(*rec));
	if (!rec)
		return dura_error_oom(DR_STORE);
	int rc = dr_record_decode(r->element + at, DR_RECORD_NFIELDS, rec);
	if (rc) {
		dura_free(rec);
		return rc;
	}
	*out = rec;
	return 0;
}

/* ---- create -------------------------------------------------------------- */

static dr_script create_script = DR_SCRIPT("create_run", DR_LUA_INDEX
	"local k, P, now = KEYS[1], ARGV[1], ARGV[2]\n"
	"local id, wf, fid, st = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
	"touch_run(P, id, wf, tonumber(ARGV[11]))\n"
	"local parent, wver = ARGV[13], ARGV[14]\n"
	"touch(P..'runs', P..'runs:'..wf, P..'workflows', P..'latest')\n"
	"touch_tally(P, wf, st, nil)\n"
	"if parent ~= '' then touch(P..'children:'..parent) end\n"
	"if redis.call('EXISTS', k) == 1 then return {-3, 'run id '..id..' already exists'} end\n"
	"local slot = nil\n"
	"if fid ~= '' then\n"
	"  slot = wf..'\\0'..fid\n"
	"  local other = redis.call('HGET', P..'active', slot)\n"
	"  if other then\n"
	"    local rec = redis.call('HMGET', P..'run:'..other, unpack(RF))\n"
	"    return {0, 1, 'workflow '..wf..' already has an active run '..other..' with foreign id '..fid, unpack(rec)}\n"
	"  end\n"
	"end\n"
	"local nra = ARGV[9]\n"
	"if nra == '0' then nra = now end\n"
	"redis.call('HSET', k, 'run_id', id, 'workflow_name', wf, 'foreign_id', fid, 'run_state', st,\n"
	"  'status', ARGV[8], 'state', ARGV[7], 'version', 1, 'step_no', 0, 'attempt', 0, 'error', '',\n"
	"  'meta', ARGV[10], 'lease_owner', '', 'lease_expires_at', 0, 'next_run_at', nra,\n"
	"  'created_at', now, 'updated_at', now, 'priority', ARGV[11], 'concurrency_key', ARGV[12],\n"
	"  'wait', '', 'parent_id', parent, 'step_base', 0, 'workflow_version', wver)\n"
	/* the counts and end-state indexes: from nothing to (wver, st) */
	"count(P, wf, wver, st, 1)\n"
	"retally(P, id, wf, wver, st, wver, st, now)\n"
	"slot_count(P, wf, fid, 1)\n"
	"if parent ~= '' then redis.call('ZADD', P..'children:'..parent, 0, id) end\n"
	"redis.call('ZADD', P..'runs', 0, id)\n"
	"redis.call('ZADD', P..'runs:'..wf, 0, id)\n"
	"redis.call('SADD', P..'workflows', wf)\n"
	"if slot then\n"
	"  if is_active(st) then redis.call('HSET', P..'active', slot, id) end\n"
	"  local cur = redis.call('HGET', P..'latest', slot)\n"
	"  if not cur or id > cur then redis.call('HSET', P..'latest', slot, id) end\n"
	"end\n"
	"reindex(P, k, id)\n"
	"if st == RUNNING then ready(P) end\n"
	"return {0, 0, '', unpack(redis.call('HMGET', k, unpack(RF)))}\n");

int dr_create_run(void *impl, const dura_run_create *req, const char *run_id, dura_record **out)
{
	dr_store *s = impl;
	char key[320], st[12], nra[24], prio[16];
	int rc = run_key(s, key, sizeof(key), run_id);
	if (rc)
		return rc;
	snprintf(st, sizeof(st), "%d", req->run_state ? req->run_state : DURA_RUN_RUNNING);
	snprintf(nra, sizeof(nra), "%lld", (long long)req->next_run_at);
	snprintf(prio, sizeof(prio), "%d", req->version >= 2 ? req->priority : 0);
	const char *ckey = req->version >= 2 && req->concurrency_key ? req->concurrency_key : "";
	const char *parent = req->version >= 3 && req->parent_id ? req->parent_id : "";
	const char *wver = req->version >= 4 && req->workflow_version ? req->workflow_version : "";
	const char *argv[] = {run_id,   req->workflow_name,
	                      req->foreign_id ? req->foreign_id : "", st,
	                      req->state ? req->state : "{}",         req->status ? req->status : "",
	                      nra,      req->meta ? req->meta : "",
	                      prio,     ckey,
	                      parent,   wver};
	redisReply *r;
	for (int attempt = 0;; attempt++) {
		int unsure = 0;
		rc = dr_run(s, &create_script, 0, &r, &unsure, key, 12, argv, NULL);
		if (!unsure || (rc != DURA_EIO && rc != DURA_ETIMEOUT))
			break;
		/* the create may have gone in: it did if the run is there now */
		dura_record *rec = NULL;
		int found = dr_get_run(impl, run_id, &rec);
		if (found == 0) {
			if (out)
				*out = rec;
			else
				dura_record_free(rec);
			return 0;
		}
		if (found != DURA_ENOTFOUND || attempt == 2)
			return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL,
			                             "the connection to Redis was lost while creating run %s", run_id);
		/* it never ran: send it again */
	}
	if (rc)
		return rc;
	int existed = (int)dr_int(r->element[1]);
	if (out || !existed) {
		dura_record *rec = NULL;
		rc = record_new(r, 3, &rec);
		if (rc == 0 && out)
			*out = rec;
		else
			dura_record_free(rec);
	}
	if (rc == 0 && existed)
		rc = dura_error_set_native(DURA_EEXISTS, DR_STORE, 0, NULL, "%s", r->element[2]->str);
	freeReplyObject(r);
	return rc;
}

/* ---- reads --------------------------------------------------------------- */

int dr_get_run(void *impl, const char *run_id, dura_record **out)
{
	dr_store *s = impl;
	char key[320];
	int rc = run_key(s, key, sizeof(key), run_id);
	if (rc)
		return rc;
	const char *argv[2 + DR_RECORD_NFIELDS] = {"HMGET", key};
	for (int i = 0; i < DR_RECORD_NFIELDS; i++)
		argv[2 + i] = record_fields[i];
	redisReply *r;
	if ((rc = dr_command(s->client, DR_IDEMPOTENT, &r, NULL, 2 + DR_RECORD_NFIELDS, argv, NULL)) != 0)
		return rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "Redis HMGET of run %s: %s", run_id, r->str);
	else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type == REDIS_REPLY_NIL)
		rc = dura_error_set_native(DURA_ENOTFOUND, DR_STORE, 0, NULL, "no run %s", run_id);
	else
		rc = record_new(r, 0, out);
	freeReplyObject(r);
	return rc;
}

static dr_script latest_script = DR_SCRIPT("latest_run", DR_LUA_RECORD_FIELDS
	"local id = redis.call('HGET', KEYS[1], ARGV[3]..'\\0'..ARGV[4])\n"
	"local f = id and redis.call('HMGET', ARGV[1]..'run:'..id, unpack(RF))\n"
	"if not f or not f[1] then return {-2, 'no run of workflow '..ARGV[3]..' with foreign id '..ARGV[4]} end\n"
	"return {0, unpack(f)}\n");

int dr_latest_run(void *impl, const char *workflow_name, const char *foreign_id, dura_record **out)
{
	dr_store *s = impl;
	char key[64];
	dr_key(s, key, sizeof(key), "latest", NULL);
	const char *argv[] = {workflow_name, foreign_id};
	redisReply *r;
	int rc = dr_run(s, &latest_script, DR_IDEMPOTENT, &r, NULL, key, 2, argv, NULL);
	if (rc)
		return rc;
	rc = record_new(r, 1, out);
	freeReplyObject(r);
	return rc;
}

/* ---- list ---------------------------------------------------------------- */

/*
 * One page, scanning at most ARGV[11] ids newest first from the cursor so
 * that a filter matching little never holds the server for long; C calls
 * again from where it stopped. Answer: {0, done, resume, n, fields...}.
 * KEYS[1] is the zset scanned: {P}:runs, a workflow's {P}:runs:<wf>, or
 * a parent's {P}:children:<id> for the children of one run; the waiting
 * filter (wait <> "") and the due one (running, next_run_at <= now, no
 * live lease: what a claim would take) are a check of each run scanned.
 */
static dr_script list_script = DR_SCRIPT("list_runs", DR_LUA_RECORD_FIELDS
	"local P = ARGV[1]\n"
	"local wf, st, has_status, status = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]\n"
	"local has_fid, fid = ARGV[7] == '1', ARGV[8]\n"
	"local after, before, limit, budget = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[12]), tonumber(ARGV[13])\n"
	"local has_parent, parent, waiting = ARGV[14] == '1', ARGV[15], ARGV[16] == '1'\n"
	"local has_ver, ver = ARGV[17] == '1', ARGV[18]\n"
	"local due, now = ARGV[19] == '1', tonumber(ARGV[2])\n"
	"local max = '+'\n"
	"if ARGV[11] ~= '' then max = '('..ARGV[11] end\n"
	"local out, n, scanned, last = {}, 0, 0, ''\n"
	"while true do\n"
	"  local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], max, '-', 'LIMIT', 0, 100)\n"
	"  if #ids == 0 then return {0, 1, last, n, unpack(out)} end\n"
	"  for _, id in ipairs(ids) do\n"
	"    scanned = scanned + 1\n"
	"    last = id\n"
	"    local f = redis.call('HMGET', P..'run:'..id, unpack(RF))\n"
	"    local ok = f[1] and (wf == '' or f[2] == wf) and (st == 0 or tonumber(f[4]) == st)\n"
	"    ok = ok and (not has_status or f[5] == status) and (not has_fid or f[3] == fid)\n"
	"    local c = tonumber(f[15]) or 0\n"
	"    ok = ok and (after == 0 or c >= after) and (before == 0 or c < before)\n"
	"    ok = ok and (not has_parent or (f[20] or '') == parent) and (not waiting or (f[19] or '') ~= '')\n"
	"    ok = ok and (not has_ver or (f[21] or '') == ver)\n"
	"    ok = ok and (not due or (tonumber(f[4]) == 2 and (tonumber(f[14]) or 0) <= now and\n"
	"      ((f[12] or '') == '' or (tonumber(f[13]) or 0) <= now)))\n"
	"    if ok then\n"
	"      for i = 1, #RF do out[#out + 1] = f[i] end\n"
	"      n = n + 1\n"
	"      if n == limit then return {0, 0, last, n, unpack(out)} end\n"
	"    end\n"
	"    if scanned >= budget then return {0, 0, last, n, unpack(out)} end\n"
	"  end\n"
	"  max = '('..ids[#ids]\n"
	"end\n");

int dr_list_runs(void *impl, const dura_run_filter *f, dura_record_list *out)
{
	dr_store *s = impl;
	char key[320];
	const char *parent = f->version >= 2 ? f->parent_id : NULL;
	int waiting = f->version >= 2 && f->waiting;
	const char *wver = f->version >= 3 ? f->workflow_version : NULL;
	int due = f->version >= 4 && f->due;
	if (parent && *parent) {
		if (dr_key(s, key, sizeof(key), "children", parent))
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "parent run id too long for a Redis key");
	} else if (f->workflow_name && *f->workflow_name ? dr_key(s, key, sizeof(key), "runs", f->workflow_name)
	                                                 : dr_key(s, key, sizeof(key), "runs", NULL))
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "workflow name too long for a Redis key");
	size_t limit = f->limit ? f->limit : 100, cap = 0;
	memset(out, 0, sizeof(*out));
	char st[12], after[24], before[24], lim[24];
	snprintf(st, sizeof(st), "%d", f->run_state);
	snprintf(after, sizeof(after), "%lld", (long long)f->created_after);
	snprintf(before, sizeof(before), "%lld", (long long)f->created_before);
	char *cursor = dura_strdup(f->cursor ? f->cursor : "");
	if (!cursor)
		return dura_error_oom(DR_STORE);
	int rc = 0;
	for (;;) {
		snprintf(lim, sizeof(lim), "%zu", limit - out->count);
		const char *argv[] = {f->workflow_name ? f->workflow_name : "", st, f->status ? "1" : "0",
		                      f->status ? f->status : "", f->foreign_id ? "1" : "0",
		                      f->foreign_id ? f->foreign_id : "", after, before, cursor, lim, "2000",
		                      parent ? "1" : "0", parent ? parent : "", waiting ? "1" : "0",
		                      wver ? "1" : "0", wver ? wver : "", due ? "1" : "0"};
		redisReply *r;
		if ((rc = dr_run(s, &list_script, DR_IDEMPOTENT, &r, NULL, key, 17, argv, NULL)) != 0)
			break;
		int done = (int)dr_int(r->element[1]);
		size_t n = (size_t)dr_int(r->element[3]);
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (dura_store_grow((void **)&out->items, out->count, &cap, sizeof(*out->items)) != 0) {
				rc = dura_error_oom(DR_STORE);
				break;
			}
			if (r->elements < 4 + (i + 1) * DR_RECORD_NFIELDS) {
				rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis run list came back incomplete");
				break;
			}
			if ((rc = dr_record_decode(r->element + 4 + i * DR_RECORD_NFIELDS, DR_RECORD_NFIELDS,
			                           &out->items[out->count])) == 0)
				out->count++;
		}
		char *resume = rc == 0 ? dr_strdup_reply(r->element[2]) : NULL;
		freeReplyObject(r);
		if (rc)
			break;
		if (!resume) {
			rc = dura_error_oom(DR_STORE);
			break;
		}
		dura_free(cursor);
		cursor = resume;
		if (done || out->count == limit || !*cursor)
			break;
	}
	if (rc == 0 && out->count == limit && !(out->next_cursor = dura_strdup(out->items[limit - 1].run_id)))
		rc = dura_error_oom(DR_STORE);
	dura_free(cursor);
	if (rc)
		dura_record_list_free(out);
	return rc;
}

/* ---- state changes ------------------------------------------------------- */

/* Apply ARGV[3] (to) if the run is still in ARGV[4] (from):
 * {0, 1, version} applied, {0, 0, current} moved meanwhile. A run that
 * waits keeps its next_run_at when resumed (a sleeper sleeps on); a
 * cancelled child wakes its parent if the parent waits for it; erasing
 * the data erases the inbox too. */
static dr_script state_script = DR_SCRIPT("set_run_state", DR_LUA_INDEX
	"local k, P, now, id = KEYS[1], ARGV[1], ARGV[2], ARGV[5]\n"
	"local to, from = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local cur = redis.call('HGET', k, 'run_state')\n"
	"if not cur then return {-2, 'no run '..id} end\n"
	"if tonumber(cur) ~= from then return {0, 0, tonumber(cur)} end\n"
	"local f = redis.call('HMGET', k, 'workflow_name', 'priority', 'wait', 'parent_id', 'workflow_version')\n"
	"local wait, parent, wver = f[3] or '', f[4] or '', f[5]\n"
	"touch_run(P, id, f[1], tonumber(f[2]) or 0)\n"
	"touch_tally(P, f[1], from, to)\n"
	"if to == 6 then\n"
	"  touch(P..'steps:'..id, P..'cps', P..'cps:'..id)\n"
	"  for _, c in ipairs(redis.call('ZRANGE', P..'cps:'..id, 0, -1)) do touch(P..'cp:'..c) end\n"
	"  touch_signals(P, id)\n"
	"end\n"
	"if to == 5 and parent ~= '' then touch_wake(P, parent) end\n"
	"local refused = reactivation_refused(P, k, id, from, to)\n"
	"if refused then return refused end\n"
	"if not wver then index_run(P, k, id); wver = '' end\n"
	"if to == 6 then erase(P, k, id) end\n"
	"local v = redis.call('HINCRBY', k, 'version', 1)\n"
	"redis.call('HSET', k, 'run_state', to, 'updated_at', now)\n"
	"retally(P, id, f[1], wver, from, wver, to, now)\n"
	"if to == RUNNING then\n"
	"  if wait == '' then redis.call('HSET', k, 'next_run_at', now, 'attempt', 0)\n"
	"  else redis.call('HSET', k, 'attempt', 0) end\n"
	"end\n"
	"track_active(P, k, id, from, to)\n"
	"rewait(P, id, waits(from, wait), waits(to, wait))\n"
	"reindex(P, k, id)\n"
	"if to == RUNNING then ready(P) end\n"
	"changed(P, id, v)\n"
	"if to == 5 and parent ~= '' then wake_run(P, parent, 'child:'..id, now) end\n"
	"return {0, 1, v}\n");

static int current_state(dr_store *s, const char *run_id, int *st)
{
	int64_t v;
	int rc = dr_run_field(s, run_id, "run_state", &v);
	if (rc == 0)
		*st = (int)v;
	return rc;
}

/* Move run_id to `to` when allowed from where it is; `allowed` judges. */
static int change_state(dr_store *s, const char *run_id, int to, int (*allowed)(int from, int to), int64_t *new_version)
{
	char key[320], tos[12], froms[12];
	int rc = run_key(s, key, sizeof(key), run_id);
	if (rc)
		return rc;
	int from;
	if ((rc = current_state(s, run_id, &from)) != 0)
		return rc;
	for (int tries = 0; tries < 100; tries++) {
		if (!allowed(from, to)) {
			if (allowed == dura_run_state_transition_ok)
				return dura_error_set_native(DURA_ECONFLICT, DR_STORE, 0, NULL, "run %s is %s and cannot become %s",
				                             run_id, dura_run_state_name(from), dura_run_state_name(to));
			return dura_error_set_native(DURA_ECONFLICT, DR_STORE, 0, NULL,
			                             "run %s is %s: only a completed, cancelled or failed run's data can be deleted",
			                             run_id, dura_run_state_name(from));
		}
		snprintf(tos, sizeof(tos), "%d", to);
		snprintf(froms, sizeof(froms), "%d", from);
		const char *argv[] = {tos, froms, run_id};
		redisReply *r;
		int unsure = 0;
		rc = dr_run(s, &state_script, 0, &r, &unsure, key, 3, argv, NULL);
		if (unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT)) {
			/* it went in if the run is where it was going */
			int now_st;
			if (current_state(s, run_id, &now_st) == 0 && now_st == to && from != to)
				return 0;
			return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL,
			                             "the connection to Redis was lost while changing run %s's state", run_id);
		}
		if (rc)
			return rc;
		int applied = (int)dr_int(r->element[1]);
		int64_t v = dr_int(r->element[2]);
		freeReplyObject(r);
		if (applied) {
			if (new_version)
				*new_version = v;
			return 0;
		}
		from = (int)v; /* it moved meanwhile: judge again */
	}
	return dura_error_set_native(DURA_EBUSY, DR_STORE, 0, NULL, "run %s kept changing state; try again", run_id);
}

int dr_set_run_state(void *impl, const char *run_id, int to, int64_t *new_version)
{
	return change_state(impl, run_id, to, dura_run_state_transition_ok, new_version);
}

static int data_deletable(int from, int to)
{
	(void)to;
	return from == DURA_RUN_COMPLETED || from == DURA_RUN_CANCELLED || from == DURA_RUN_FAILED;
}

int dr_delete_run_data(void *impl, const char *run_id)
{
	return change_state(impl, run_id, DURA_RUN_DATA_DELETED, data_deletable, NULL);
}
