/*
 * fleet.c - workflow versions and retention (contract version 6,
 * docs/store-contract.md "Versions and retention"): the versions engines
 * register, the counts of runs per version and state, moving a run to
 * another version, pruning ended runs and the outbox in batches, and the
 * migration pass that puts the runs of an older schema into the indexes
 * these read.
 *
 * The registered versions are a hash per workflow, {P}:wfdef:<workflow>,
 * version -> "<first_seen_at>\n<last_seen_at>\n<definition>", with the
 * names in {P}:wfdefs; a workflow has a handful of versions, so a list
 * reads them all and sorts in C (Lua compares strings with strcoll, not
 * byte by byte).
 *
 * The counts are kept on every write, not counted on demand: every script
 * that creates a run or changes its version or run state moves it in
 * {P}:counts:<wf> (index.h, retally), so run_counts reads one small hash
 * per workflow - the same few fields at 100 runs or at 100 000, where a
 * count by scanning would read every run's hash in one script and hold
 * the server for a good part of a second. The same writes keep the runs in
 * an end state in {P}:ended:<state> and {P}:ended:<state>:<wf>, scored by
 * updated_at, which is the order prune_runs takes them in.
 *
 * The gauges (contract version 8) read the same way, one script of counts
 * over indexes: the waiting runs are {P}:waiting (schema 5, index.h), the
 * due ones the due zsets up to now and the lapsed leases of each workflow
 * whose run is due, the live leases the leased zsets after now, the
 * outbox {P}:outbox:order and its first event.
 */
#include "index.h"
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_of(const dr_store *s, char *buf, size_t size, const char *kind, const char *id)
{
	if (dr_key(s, buf, size, kind, id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "a name is too long for a Redis key: %.80s",
		                             id ? id : kind);
	return 0;
}

/* ---- the versions engines register ----------------------------------------------------- */

/* KEYS[1] = {P}:wfdef:<name>; ARGV[3] = name, [4] = version, [5] =
 * definition. An upsert that keeps first_seen_at: a replay writes the same
 * again with a later last_seen_at, so it is retried as idempotent. */
static dr_script put_script = DR_SCRIPT("workflow_put",
	"local P, now = ARGV[1], ARGV[2]\n"
	"redis.call('EXISTS', KEYS[1], P..'wfdefs')\n"
	"local cur = redis.call('HGET', KEYS[1], ARGV[4])\n"
	"local first = cur and string.match(cur, '^(%-?%d+)\\n') or now\n"
	"redis.call('HSET', KEYS[1], ARGV[4], first..'\\n'..now..'\\n'..ARGV[5])\n"
	"redis.call('ZADD', P..'wfdefs', 0, ARGV[3])\n"
	"return {0}\n");

/* ARGV[3] = the workflow or "" for all. {0, then (name, version, value)
 * for each}. Read only. */
static dr_script defs_script = DR_SCRIPT("workflow_list",
	"local P = ARGV[1]\n"
	"local names = {ARGV[3]}\n"
	"if ARGV[3] == '' then names = redis.call('ZRANGE', P..'wfdefs', 0, -1) end\n"
	"local out = {0}\n"
	"for _, n in ipairs(names) do\n"
	"  local h = redis.call('HGETALL', P..'wfdef:'..n)\n"
	"  for i = 1, #h, 2 do out[#out + 1] = n; out[#out + 1] = h[i]; out[#out + 1] = h[i + 1] end\n"
	"end\n"
	"return out\n");

int dr_workflow_put(void *impl, const char *name, const char *version, const char *definition)
{
	dr_store *s = impl;
	char key[320];
	int rc = key_of(s, key, sizeof(key), "wfdef", name);
	if (rc)
		return rc;
	const char *argv[] = {name, version, definition};
	redisReply *r = NULL;
	rc = dr_run(s, &put_script, DR_IDEMPOTENT, &r, NULL, key, 3, argv, NULL);
	freeReplyObject(r);
	return rc;
}

static int def_order(const void *a, const void *b)
{
	const dura_workflow_def *x = a, *y = b;
	int c = strcmp(x->workflow_name, y->workflow_name);
	if (c)
		return c;
	if (x->first_seen_at != y->first_seen_at)
		return x->first_seen_at < y->first_seen_at ? -1 : 1;
	return strcmp(x->version, y->version);
}

/* "<first_seen_at>\n<last_seen_at>\n<definition>" into d. */
static int def_decode(redisReply *const *e, dura_workflow_def *d)
{
	memset(d, 0, sizeof(*d));
	const redisReply *v = e[2];
	if (v->type != REDIS_REPLY_STRING)
		goto bad;
	const char *p = v->str, *end = v->str + v->len;
	char *nl;
	d->first_seen_at = strtoll(p, &nl, 10);
	if (nl >= end || *nl != '\n')
		goto bad;
	d->last_seen_at = strtoll(nl + 1, &nl, 10);
	if (nl >= end || *nl != '\n')
		goto bad;
	d->workflow_name = dr_strdup_reply(e[0]);
	d->version = dr_strdup_reply(e[1]);
	d->definition = dura_strndup(nl + 1, (size_t)(end - (nl + 1)));
	if (!d->workflow_name || !d->version || !d->definition) {
		dura_workflow_def_clear(d);
		return dura_error_oom(DR_STORE);
	}
	return 0;
bad:
	return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a registered workflow version is malformed in Redis");
}

int dr_workflow_list(void *impl, const char *name, dura_workflow_def_list *out)
{
	dr_store *s = impl;
	char key[64];
	memset(out, 0, sizeof(*out));
	dr_key(s, key, sizeof(key), "wfdefs", NULL);
	const char *argv[] = {name ? name : ""};
	redisReply *r = NULL;
	int rc = dr_run(s, &defs_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL);
	if (rc)
		return rc;
	size_t n = (r->elements - 1) / 3;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		rc = dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = def_decode(r->element + 1 + 3 * i, &out->items[i])) == 0)
			out->count++;
	freeReplyObject(r);
	if (rc)
		dura_workflow_def_list_free(out);
	else if (out->count > 1)
		qsort(out->items, out->count, sizeof(*out->items), def_order);
	return rc;
}

/* ---- counts ------------------------------------------------------------------------------ */

/* ARGV[3] = the workflow or "" for all (the names of {P}:workflows). {0,
 * then (name, "<version>:<run_state>", count) for each}. Read only. */
static dr_script counts_script = DR_SCRIPT("run_counts",
	"local P = ARGV[1]\n"
	"local names = {ARGV[3]}\n"
	"if ARGV[3] == '' then names = redis.call('SMEMBERS', P..'workflows') end\n"
	"local out = {0}\n"
	"for _, n in ipairs(names) do\n"
	"  local h = redis.call('HGETALL', P..'counts:'..n)\n"
	"  for i = 1, #h, 2 do out[#out + 1] = n; out[#out + 1] = h[i]; out[#out + 1] = h[i + 1] end\n"
	"end\n"
	"return out\n");

static int count_order(const void *a, const void *b)
{
	const dura_run_count *x = a, *y = b;
	int c = strcmp(x->workflow_name, y->workflow_name);
	if (!c)
		c = strcmp(x->workflow_version, y->workflow_version);
	if (!c)
		c = (x->run_state > y->run_state) - (x->run_state < y->run_state);
	return c;
}

int dr_run_counts(void *impl, const char *workflow, dura_run_count_list *out)
{
	dr_store *s = impl;
	char key[320];
	memset(out, 0, sizeof(*out));
	int rc = workflow ? key_of(s, key, sizeof(key), "counts", workflow) : key_of(s, key, sizeof(key), "workflows", NULL);
	if (rc)
		return rc;
	const char *argv[] = {workflow ? workflow : ""};
	redisReply *r = NULL;
	if ((rc = dr_run(s, &counts_script, DR_IDEMPOTENT, &r, NULL, key, 1, argv, NULL)) != 0)
		return rc;
	size_t n = (r->elements - 1) / 3;
	if (n && !(out->items = dura_calloc(n, sizeof(*out->items))))
		rc = dura_error_oom(DR_STORE);
	for (size_t i = 0; i < n && rc == 0; i++) {
		redisReply *const *e = r->element + 1 + 3 * i;
		int64_t c = dr_int(e[2]);
		const char *colon = e[1]->type == REDIS_REPLY_STRING ? strrchr(e[1]->str, ':') : NULL;
		if (!colon) {
			rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a run count is malformed in Redis");
			break;
		}
		if (c <= 0)
			continue;
		dura_run_count *o = &out->items[out->count];
		o->workflow_name = dr_strdup_reply(e[0]);
		o->workflow_version = dura_strndup(e[1]->str, (size_t)(colon - e[1]->str));
		o->run_state = atoi(colon + 1);
		o->count = c;
		if (!o->workflow_name || !o->workflow_version) {
			dura_run_count_clear(o);
			rc = dura_error_oom(DR_STORE);
			break;
		}
		out->count++;
	}
	freeReplyObject(r);
	if (rc)
		dura_run_count_list_free(out);
	else if (out->count > 1)
		qsort(out->items, out->count, sizeof(*out->items), count_order);
	return rc;
}

/* ---- moving a run to another version ------------------------------------------------------ */

/* KEYS[1] = the run's hash; ARGV[3] = run id, [4] = the expected version,
 * [5] = the workflow version. {0, record fields}. The workers are told
 * ({P}:ready) as for a resumed run: those of the new version may take it
 * now. */
static dr_script version_script = DR_SCRIPT("set_run_version", DR_LUA_INDEX
	"local k, P, now, id, wver = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5]\n"
	"local f = redis.call('HMGET', k, 'version', 'workflow_name', 'run_state', 'workflow_version')\n"
	"if not f[1] then return {-2, 'no run '..id} end\n"
	"if tonumber(f[1]) ~= tonumber(ARGV[4]) then\n"
	"  return {-4, 'run '..id..': expected version '..ARGV[4]..' but it is '..f[1]}\n"
	"end\n"
	"local st, ver0 = tonumber(f[3]), f[4]\n"
	"touch(k)\n"
	"touch_tally(P, f[2], st, nil)\n"
	"if not ver0 then index_run(P, k, id); ver0 = '' end\n"
	"local v = redis.call('HINCRBY', k, 'version', 1)\n"
	"redis.call('HSET', k, 'workflow_version', wver, 'updated_at', now)\n"
	"retally(P, id, f[2], ver0, st, wver, st, now)\n"
	"ready(P)\n"
	"changed(P, id, v)\n"
	"return {0, unpack(redis.call('HMGET', k, unpack(RF)))}\n");

static int record_of(const redisReply *r, dura_record **out)
{
	if (r->elements < 1 + DR_RECORD_NFIELDS)
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis run record came back incomplete");
	dura_record *rec = dura_malloc(sizeof(*rec));
	if (!rec)
		return dura_error_oom(DR_STORE);
	int rc = dr_record_decode(r->element + 1, DR_RECORD_NFIELDS, rec);
	if (rc) {
		dura_free(rec);
		return rc;
	}
	*out = rec;
	return 0;
}

int dr_set_run_version(void *impl, const char *run_id, int64_t expect_version, const char *workflow_version,
                       dura_record **out)
{
	dr_store *s = impl;
	char key[320], expect[24];
	int rc = key_of(s, key, sizeof(key), "run", run_id);
	if (rc)
		return rc;
	snprintf(expect, sizeof(expect), "%lld", (long long)expect_version);
	const char *argv[] = {run_id, expect, workflow_version};
	redisReply *r = NULL;
	int unsure = 0;
	rc = dr_run(s, &version_script, 0, &r, &unsure, key, 3, argv, NULL);
	if (unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT)) {
		/* it went in if the run is one version on, at the new version */
		dura_record *rec = NULL;
		if (dr_get_run(impl, run_id, &rec) == 0 && rec->version == expect_version + 1 &&
		    strcmp(rec->workflow_version, workflow_version) == 0) {
			*out = rec;
			return 0;
		}
		dura_record_free(rec);
		return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL,
		                             "the connection to Redis was lost while moving run %s to version %s", run_id,
		                             workflow_version);
	}
	if (rc)
		return rc;
	rc = record_of(r, out);
	freeReplyObject(r);
	return rc;
}

/* ---- retention: runs -------------------------------------------------------------------- */

/*
 * KEYS[1] = {P}:ended:<state> or {P}:ended:<state>:<wf>; ARGV[3] = the
 * state, [4] = ended_before, [5] = the workflow or "", [6] = whole, [7] =
 * limit, [8] = dry_run. {0, count}.
 *
 * The runs come from the end-state index, oldest updated_at first and then
 * by run id (the zset's own order), each checked against its hash (state,
 * updated_at, workflow): one the index has wrong is not taken. A run with
 * a checkpoint ({P}:cps:<id> exists) or whose parent is there and has not
 * ended is passed over, and the scan reads on past it until the batch is
 * full or no run older than ended_before is left: it has no bound, so that
 * a batch smaller than the limit means that nothing is left to prune, and
 * the runs passed over are read again by every batch (they are few: a
 * checkpoint is kept only while it is wanted, and a child's parent ends).
 *
 * Then, as every script, it touches what it writes and writes: without
 * whole each run as delete_run_data (erase, data_deleted, version + 1,
 * updated_at now, into {P}:ended:6); with whole its data and its hash, and
 * its place in {P}:runs, {P}:runs:<wf>, its parent's {P}:children:<id>,
 * the counts and the end-state index. The children of a run pruned whole
 * keep its id in their parent_id, and {P}:children:<id> stays with them,
 * as a child row keeps its parent_id on the SQL stores. When a run pruned
 * whole is the latest of its foreign id ({P}:latest) and {P}:slotruns
 * says that others remain, the newest of those becomes the latest: it is
 * looked for among the workflow's older runs, newest first, in the reading
 * part of the script (so only when a foreign id was used by several runs,
 * and then only as far back as the next run of it).
 */
static dr_script prune_script = DR_SCRIPT("prune_runs", DR_LUA_INDEX
	"local P, now = ARGV[1], ARGV[2]\n"
	"local st, before, wf = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]\n"
	"local whole, limit, dry = ARGV[6] == '1', tonumber(ARGV[7]), ARGV[8] == '1'\n"
	"local chosen, off = {}, 0\n"
	"while #chosen < limit do\n"
	"  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '('..ARGV[4], 'LIMIT', off, 1000)\n"
	"  if #ids == 0 then break end\n"
	"  off = off + #ids\n"
	"  for _, id in ipairs(ids) do\n"
	"    local f = redis.call('HMGET', P..'run:'..id, 'run_state', 'updated_at', 'workflow_name', 'parent_id',\n"
	"      'workflow_version', 'foreign_id')\n"
	"    local ok = f[1] and tonumber(f[1]) == st and (tonumber(f[2]) or 0) < before and (wf == '' or f[3] == wf)\n"
	"    ok = ok and redis.call('EXISTS', P..'cps:'..id) == 0\n"
	"    local parent = f[4] or ''\n"
	"    if ok and parent ~= '' then\n"
	"      local ps = redis.call('HGET', P..'run:'..parent, 'run_state')\n"
	"      ok = not ps or ENDED[tonumber(ps)] == true\n"
	"    end\n"
	"    if ok then\n"
	"      chosen[#chosen + 1] = {id = id, wf = f[3], ver = f[5] or '', fid = f[6] or '', parent = parent}\n"
	"      if #chosen == limit then break end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if dry then return {0, #chosen} end\n"
	/* whole: the foreign ids whose latest run goes, and the newest of
	 * each that stays (read before any write, as everything else) */
	"local gone, slots = {}, {}\n"
	"if whole then\n"
	"  for _, c in ipairs(chosen) do gone[c.id] = true end\n"
	"  local seen = {}\n"
	"  for _, c in ipairs(chosen) do\n"
	"    if c.fid ~= '' then\n"
	"      local slot = c.wf..'\\0'..c.fid\n"
	"      local sl = seen[slot]\n"
	"      if not sl then\n"
	"        sl = {slot = slot, wf = c.wf, fid = c.fid, n = 0}\n"
	"        seen[slot] = sl\n"
	"        slots[#slots + 1] = sl\n"
	"      end\n"
	"      sl.n = sl.n + 1\n"
	"    end\n"
	"  end\n"
	"  for _, sl in ipairs(slots) do\n"
	"    local cur = redis.call('HGET', P..'latest', sl.slot)\n"
	"    if cur and gone[cur] then\n"
	"      sl.fix = true\n"
	"      local left = (tonumber(redis.call('HGET', P..'slotruns', sl.slot)) or 0) - sl.n\n"
	"      local max = '('..cur\n"
	"      while left > 0 and not sl.newest do\n"
	"        local ids = redis.call('ZREVRANGEBYLEX', P..'runs:'..sl.wf, max, '-', 'LIMIT', 0, 200)\n"
	"        if #ids == 0 then break end\n"
	"        for _, o in ipairs(ids) do\n"
	"          if not gone[o] and redis.call('HGET', P..'run:'..o, 'foreign_id') == sl.fid then sl.newest = o; break end\n"
	"        end\n"
	"        max = '('..ids[#ids]\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"for _, c in ipairs(chosen) do\n"
	"  local id = c.id\n"
	"  touch(P..'run:'..id, P..'steps:'..id, P..'cps', P..'cps:'..id, P..'counts:'..c.wf, ended_keys(P, st, c.wf))\n"
	"  touch_signals(P, id)\n"
	"  if whole then\n"
	"    touch(P..'runs', P..'runs:'..c.wf, P..'slotruns', P..'latest', P..'active')\n"
	"    if c.parent ~= '' then touch(P..'children:'..c.parent) end\n"
	"  else\n"
	"    touch(ended_keys(P, 6, c.wf))\n"
	"  end\n"
	"end\n"
	"for _, c in ipairs(chosen) do\n"
	"  local id, k = c.id, P..'run:'..c.id\n"
	"  erase(P, k, id)\n"
	"  if whole then\n"
	"    redis.call('DEL', k)\n"
	"    redis.call('ZREM', P..'runs', id)\n"
	"    redis.call('ZREM', P..'runs:'..c.wf, id)\n"
	"    if c.parent ~= '' then redis.call('ZREM', P..'children:'..c.parent, id) end\n"
	"    count(P, c.wf, c.ver, st, -1)\n"
	"    local a, b = ended_keys(P, st, c.wf)\n"
	"    redis.call('ZREM', a, id); redis.call('ZREM', b, id)\n"
	"    if c.fid ~= '' then\n"
	"      local slot = c.wf..'\\0'..c.fid\n"
	"      slot_count(P, c.wf, c.fid, -1)\n"
	"      if redis.call('HGET', P..'active', slot) == id then redis.call('HDEL', P..'active', slot) end\n"
	"    end\n"
	"    changed(P, id, 0)\n"
	"  else\n"
	"    local v = redis.call('HINCRBY', k, 'version', 1)\n"
	"    redis.call('HSET', k, 'run_state', 6, 'updated_at', now)\n"
	"    retally(P, id, c.wf, c.ver, st, c.ver, 6, now)\n"
	"    changed(P, id, v)\n"
	"  end\n"
	"end\n"
	"for _, sl in ipairs(slots) do\n"
	"  if sl.fix and sl.newest then redis.call('HSET', P..'latest', sl.slot, sl.newest)\n"
	"  elseif sl.fix then redis.call('HDEL', P..'latest', sl.slot) end\n"
	"end\n"
	"return {0, #chosen}\n");

int dr_prune_runs(void *impl, const dura_prune *req, int64_t *count)
{
	dr_store *s = impl;
	char key[320], kind[24], st[12], before[24], limit[24];
	snprintf(kind, sizeof(kind), "ended:%d", req->run_state);
	int rc = req->workflow ? key_of(s, key, sizeof(key), kind, req->workflow) : key_of(s, key, sizeof(key), kind, NULL);
	if (rc)
		return rc;
	snprintf(st, sizeof(st), "%d", req->run_state);
	snprintf(before, sizeof(before), "%lld", (long long)req->ended_before);
	snprintf(limit, sizeof(limit), "%zu", req->limit);
	const char *argv[] = {st, before, req->workflow ? req->workflow : "", req->whole ? "1" : "0", limit,
	                      req->dry_run ? "1" : "0"};
	redisReply *r = NULL;
	int unsure = 0;
	rc = dr_run(s, &prune_script, req->dry_run ? DR_IDEMPOTENT : 0, &r, &unsure, key, 6, argv, NULL);
	if (rc) {
		if (unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT))
			rc = dura_error_set_native(rc, DR_STORE, 0, NULL,
			                           "the connection to Redis was lost during a prune: the batch may or may not "
			                           "have gone in (the next batch takes what is left)");
		return rc;
	}
	*count = dr_int(r->element[1]);
	freeReplyObject(r);
	return 0;
}

/* ---- retention: the outbox ----------------------------------------------------------------- */

/*
 * KEYS[1] = {P}:outbox; ARGV[3] = before, [4] = limit. {0, count}. The
 * stream is in the order the events were written, which is the outbox's
 * order (outbox.c); created_at is the writer's clock, so an event older
 * than `before` may come after a newer one from another process. The
 * scan reads on past the newer ones and stops at the first event written
 * a minute or more after `before` (writers' clocks are not that far
 * apart), at the limit, or at the end. XRANGE's exclusive start is Redis
 * 6.2's: the next page starts at the entry id after the last one. An
 * imported event (import_event) is appended with its own, older
 * created_at: the scan reaches it once the events written before the
 * import are gone (acknowledged, or pruned in their turn), so it goes at
 * most the retention time after its import. Each event leaves the stream,
 * {P}:outbox:ids and {P}:outbox:order together.
 */
static dr_script outbox_prune_script = DR_SCRIPT("outbox_prune",
	"local P, before, limit = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local ids, order = P..'outbox:ids', P..'outbox:order'\n"
	"redis.call('EXISTS', KEYS[1], ids, order)\n"
	"local start, sel, stop = '-', {}, false\n"
	"while #sel < limit and not stop do\n"
	"  local es = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 500)\n"
	"  if #es == 0 then break end\n"
	"  for _, e in ipairs(es) do\n"
	"    local f, m = e[2], {}\n"
	"    for i = 1, #f, 2 do m[f[i]] = f[i + 1] end\n"
	"    local at = tonumber(m['created_at']) or 0\n"
	"    if at < before then\n"
	"      sel[#sel + 1] = {e[1], m['id']}\n"
	"      if #sel == limit then break end\n"
	"    elseif at >= before + 60000 then stop = true; break end\n"
	"  end\n"
	"  local ms, seq = string.match(es[#es][1], '^(%d+)-(%d+)$')\n"
	"  start = ms..'-'..(tonumber(seq) + 1)\n"
	"end\n"
	"for _, e in ipairs(sel) do\n"
	"  redis.call('XDEL', KEYS[1], e[1])\n"
	"  if e[2] then redis.call('HDEL', ids, e[2]); redis.call('ZREM', order, e[2]) end\n"
	"end\n"
	"return {0, #sel}\n");

int dr_outbox_prune(void *impl, int64_t before, size_t limit, int64_t *count)
{
	dr_store *s = impl;
	char key[64], b[24], l[24];
	int rc = key_of(s, key, sizeof(key), "outbox", NULL);
	if (rc)
		return rc;
	snprintf(b, sizeof(b), "%lld", (long long)before);
	snprintf(l, sizeof(l), "%zu", limit);
	const char *argv[] = {b, l};
	redisReply *r = NULL;
	int unsure = 0;
	rc = dr_run(s, &outbox_prune_script, 0, &r, &unsure, key, 2, argv, NULL);
	if (rc) {
		if (unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT))
			rc = dura_error_set_native(rc, DR_STORE, 0, NULL,
			                           "the connection to Redis was lost during an outbox prune: the batch may or "
			                           "may not have gone in");
		return rc;
	}
	*count = dr_int(r->element[1]);
	freeReplyObject(r);
	return 0;
}

/* ---- the migration to schema 3 ------------------------------------------------------------ */

/* KEYS[1] = {P}:runs; ARGV[3] = the last run id of the previous page ("":
 * from the start), [4] = the page's size. Each run of the page without a
 * workflow_version field joins the indexes (index_run). {0, the page's
 * last id or "" at the end, how many were indexed}. */
static dr_script index_script = DR_SCRIPT("index_runs", DR_LUA_INDEX
	"local P, size = ARGV[1], tonumber(ARGV[4])\n"
	"local min = '-'\n"
	"if ARGV[3] ~= '' then min = '('..ARGV[3] end\n"
	"local ids = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, size)\n"
	"local unindexed = {}\n"
	"for _, id in ipairs(ids) do\n"
	"  local f = redis.call('HMGET', P..'run:'..id, 'run_id', 'workflow_version', 'workflow_name', 'run_state')\n"
	"  if f[1] and not f[2] then\n"
	"    unindexed[#unindexed + 1] = id\n"
	"    touch(P..'run:'..id)\n"
	"    touch_tally(P, f[3], tonumber(f[4]), nil)\n"
	"  end\n"
	"end\n"
	"for _, id in ipairs(unindexed) do index_run(P, P..'run:'..id, id) end\n"
	"local last = ''\n"
	"if #ids == size then last = ids[#ids] end\n"
	"return {0, last, #unindexed}\n");

int dr_index_runs(dr_store *s)
{
	char key[64];
	dr_key(s, key, sizeof(key), "runs", NULL);
	return dr_run_pages(s, &index_script, key, "", "1000"); /* a few ms of the server's time a page */
}

/* ---- the migration to schema 5 ------------------------------------------------------------ */

/* KEYS[1] = {P}:runs; ARGV[3] = the last run id of the previous page ("":
 * from the start), [4] = the page's size. Each run of the page goes in or
 * out of {P}:waiting as its run state and wait say (ZADD and ZREM do
 * nothing twice, so a migration cut short, or two at once, or commits
 * meanwhile, which move their own runs, are all right). Reads first, then
 * writes. {0, the page's last id or "" at the end}. */
static dr_script waiting_script = DR_SCRIPT("index_waiting", DR_LUA_INDEX
	"local P, size = ARGV[1], tonumber(ARGV[4])\n"
	"local min = '-'\n"
	"if ARGV[3] ~= '' then min = '('..ARGV[3] end\n"
	"local ids = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, size)\n"
	"local now = {}\n"
	"for i, id in ipairs(ids) do\n"
	"  local f = redis.call('HMGET', P..'run:'..id, 'run_state', 'wait')\n"
	"  now[i] = waits(tonumber(f[1]), f[2])\n"
	"end\n"
	"touch(P..'waiting')\n"
	"for i, id in ipairs(ids) do\n"
	"  if now[i] then redis.call('ZADD', P..'waiting', 0, id) else redis.call('ZREM', P..'waiting', id) end\n"
	"end\n"
	"local last = ''\n"
	"if #ids == size then last = ids[#ids] end\n"
	"return {0, last}\n");

int dr_index_waiting(dr_store *s)
{
	char key[64];
	dr_key(s, key, sizeof(key), "runs", NULL);
	return dr_run_pages(s, &waiting_script, key, "", "1000"); /* as dr_index_runs */
}

/* ---- gauges (contract version 8) ---------------------------------------------------------- */

/*
 * KEYS[1] = {P}:workflows. Read only. {0, waiting, due, leased, pending,
 * oldest_at, now}: per workflow, the due zset of each priority up to now
 * (running runs without a lease, by next_run_at), the leased zset after
 * now (live leases) and, of the lapsed leases (score <= now), the runs
 * due by next_run_at - as a claim reads them (claim.c); the outbox's
 * count and its first event in id order.
 */
static dr_script gauges_script = DR_SCRIPT("gauges", DR_LUA_INDEX
	"local P, now = ARGV[1], tonumber(ARGV[2])\n"
	"local due, leased = 0, 0\n"
	"for _, wf in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"  due = due + redis.call('ZCOUNT', due_key(P, wf, 0), '-inf', now)\n"
	"  for _, p in ipairs(redis.call('ZRANGE', P..'prios:'..wf, 0, -1)) do\n"
	"    due = due + redis.call('ZCOUNT', due_key(P, wf, tonumber(p)), '-inf', now)\n"
	"  end\n"
	"  local lk = P..'leased:'..wf\n"
	"  leased = leased + redis.call('ZCOUNT', lk, '('..now, '+inf')\n"
	"  for _, id in ipairs(redis.call('ZRANGEBYSCORE', lk, '-inf', now)) do\n"
	"    if (tonumber(redis.call('HGET', P..'run:'..id, 'next_run_at')) or 0) <= now then due = due + 1 end\n"
	"  end\n"
	"end\n"
	"local order = P..'outbox:order'\n"
	"local oldest, first = 0, redis.call('ZRANGE', order, 0, 0)\n"
	"if first[1] then\n"
	"  local sid = redis.call('HGET', P..'outbox:ids', first[1])\n"
	"  local es = sid and redis.call('XRANGE', P..'outbox', sid, sid) or {}\n"
	"  if es[1] then\n"
	"    local f = es[1][2]\n"
	"    for i = 1, #f, 2 do if f[i] == 'created_at' then oldest = tonumber(f[i + 1]) or 0 end end\n"
	"  end\n"
	"end\n"
	"return {0, redis.call('ZCARD', P..'waiting'), due, leased, redis.call('ZCARD', order), oldest, now}\n");

int dr_gauges(void *impl, dura_store_gauges *out)
{
	dr_store *s = impl;
	char key[64];
	int rc = key_of(s, key, sizeof(key), "workflows", NULL);
	if (rc)
		return rc;
	redisReply *r = NULL;
	if ((rc = dr_run(s, &gauges_script, DR_IDEMPOTENT, &r, NULL, key, 0, NULL, NULL)) != 0)
		return rc;
	if (r->elements < 7)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis gauges came back incomplete");
	else {
		out->waiting_runs = dr_int(r->element[1]);
		out->due_runs = dr_int(r->element[2]);
		out->leased_runs = dr_int(r->element[3]);
		out->outbox_pending = dr_int(r->element[4]);
		out->outbox_oldest_at = dr_int(r->element[5]);
		out->now = dr_int(r->element[6]);
	}
	freeReplyObject(r);
	return rc;
}
