/*
 * claim.c - leases: claiming runnable runs (with flow limits and
 * priorities), extending and releasing them.
 *
 * One script reads the due zsets of the asked workflows up to now, and
 * their lapsed leases, highest priority first, and leases what it takes: counting the live leases and
 * claiming are one step of the server, so concurrent claims in any number
 * of processes never exceed a workflow's or a key's limit together (the
 * SQL stores get the same from a lock row). Within a priority, runs come
 * by next_run_at, then by run id, as on every store.
 * The version is bumped: it is the fencing token that makes a worker whose
 * lease was taken over lose its next commit.
 *
 * Workflow versions (a dura_claim of version 2, dura_claim_serves): a run
 * of a workflow the claim lists versions for is taken only when its
 * workflow_version is one of them or "". The script checks each
 * candidate's version as it checks its key's limit, and a run it skips
 * does not end the scan: it reads on through the due zset, page by page,
 * as for a run at its key's limit. The one bound is the one every claim
 * has, 5000 due runs read per workflow and priority (so that a claim never
 * holds the server long): only when more than that many runs of versions
 * this claimer does not serve are due ahead of one it serves does it come
 * back without that one, which the workers of those versions then free.
 */
#include "index.h"
#include "../flow.h"

#include <stdio.h>
#include <string.h>

/* ARGV: owner, lease_ms, max, n, then n times (workflow, max_running,
 * max_per_key); n 0: every workflow, no limits; then m and m times
 * (workflow, version): the versions served. Answer: {0, n, then n times
 * (taken_over, record fields)}. */
static dr_script claim_script = DR_SCRIPT("claim", DR_LUA_INDEX
	"local P, now = ARGV[1], tonumber(ARGV[2])\n"
	"local owner, lease, max, nwf = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"local wfs = {}\n"
	"if nwf == 0 then\n"
	"  for _, w in ipairs(redis.call('SMEMBERS', P..'workflows')) do wfs[#wfs + 1] = {name = w, maxr = 0, maxk = 0} end\n"
	"else\n"
	"  for i = 0, nwf - 1 do\n"
	"    local o = 7 + i * 3\n"
	"    wfs[#wfs + 1] = {name = ARGV[o], maxr = tonumber(ARGV[o + 1]), maxk = tonumber(ARGV[o + 2])}\n"
	"  end\n"
	"end\n"
	/* dura_claim_serves: a workflow with versions listed takes those and "" */
	"local vo, vers = 7 + nwf * 3, {}\n"
	"for i = 1, tonumber(ARGV[vo] or '0') do\n"
	"  local w, v = ARGV[vo + 2 * i - 1], ARGV[vo + 2 * i]\n"
	"  vers[w] = vers[w] or {}\n"
	"  vers[w][v] = true\n"
	"end\n"
	"local function serves(wf, ver)\n"
	"  if ver == '' or not vers[wf] then return true end\n"
	"  return vers[wf][ver] == true\n"
	"end\n"
	/* the live leases (flow limits count them, per workflow and per key)
	 * and the lapsed ones (to rescue, by priority, in next_run_at order) */
	"local levels, seen = {0}, {[0] = true}\n"
	"local function level(n) if not seen[n] then seen[n] = true; levels[#levels + 1] = n end end\n"
	"for _, w in ipairs(wfs) do\n"
	"  local lk = P..'leased:'..w.name\n"
	"  w.running, w.keys, w.lapsed = 0, {}, {}\n"
	"  if w.maxr > 0 or w.maxk > 0 then\n"
	"    w.running = redis.call('ZCOUNT', lk, '('..now, '+inf')\n"
	"    if w.maxk > 0 then\n"
	"      for _, id in ipairs(redis.call('ZRANGEBYSCORE', lk, '('..now, '+inf')) do\n"
	"        local ck = redis.call('HGET', P..'run:'..id, 'concurrency_key')\n"
	"        if ck and ck ~= '' then w.keys[ck] = (w.keys[ck] or 0) + 1 end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  for _, id in ipairs(redis.call('ZRANGEBYSCORE', lk, '-inf', now, 'LIMIT', 0, 5000)) do\n"
	"    local f = redis.call('HMGET', P..'run:'..id, 'priority', 'next_run_at')\n"
	"    local prio, nra = tonumber(f[1]) or 0, tonumber(f[2]) or 0\n"
	"    if nra <= now then\n"
	"      w.lapsed[prio] = w.lapsed[prio] or {}\n"
	"      table.insert(w.lapsed[prio], {id = id, score = nra})\n"
	"      level(prio)\n"
	"    end\n"
	"  end\n"
	"  for _, b in pairs(w.lapsed) do\n"
	"    table.sort(b, function(a, c) if a.score ~= c.score then return a.score < c.score end return a.id < c.id end)\n"
	"  end\n"
	"  for _, p in ipairs(redis.call('ZRANGE', P..'prios:'..w.name, 0, -1)) do level(tonumber(p)) end\n"
	"end\n"
	"table.sort(levels, function(a, b) return a > b end)\n"
	/* the eligible runs of workflow w at priority prio, in claim order, at
	 * most need: the due zset's pages merged with the lapsed leases */
	"local function eligible(w, prio, need)\n"
	"  local list, key, off, scanned, page, pi, done = {}, due_key(P, w.name, prio), 0, 0, {}, 1, false\n"
	"  local lapsed, li = w.lapsed[prio] or {}, 1\n"
	"  local function next_due()\n"
	"    if pi > #page then\n"
	"      if done or scanned >= 5000 then return nil end\n"
	"      page, pi = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES', 'LIMIT', off, 100), 1\n"
	"      off = off + 100\n"
	"      if #page == 0 then done = true; return nil end\n"
	"    end\n"
	"    local c = {id = page[pi], score = tonumber(page[pi + 1])}\n"
	"    pi = pi + 2\n"
	"    scanned = scanned + 1\n"
	"    return c\n"
	"  end\n"
	"  local d = next_due()\n"
	"  while #list < need do\n"
	"    if w.maxr > 0 and w.running >= w.maxr then break end\n"
	"    local c, e = nil, lapsed[li]\n"
	"    if d and (not e or d.score < e.score or (d.score == e.score and d.id < e.id)) then c = d; d = next_due()\n"
	"    elseif e then c = e; li = li + 1\n"
	"    else break end\n"
	"    local f = redis.call('HMGET', P..'run:'..c.id, 'run_state', 'next_run_at', 'lease_owner', 'lease_expires_at',\n"
	"      'concurrency_key', 'workflow_version')\n"
	"    local ok = tonumber(f[1]) == RUNNING and (tonumber(f[2]) or 0) <= now and serves(w.name, f[6] or '')\n"
	"    ok = ok and ((f[3] or '') == '' or (tonumber(f[4]) or 0) <= now)\n"
	"    local ck = f[5] or ''\n"
	"    if ok and w.maxk > 0 and ck ~= '' and (w.keys[ck] or 0) >= w.maxk then ok = false end\n"
	"    if ok then\n"
	"      c.w, c.ck = w, ck\n"
	"      list[#list + 1] = c\n"
	"      w.running = w.running + 1\n"
	"      if ck ~= '' then w.keys[ck] = (w.keys[ck] or 0) + 1 end\n"
	"    end\n"
	"  end\n"
	"  return list\n"
	"end\n"
	/* choose everything first (reads only), then write: a key moved away
	 * by a resharding stops the script before it has written anything */
	"local chosen = {}\n"
	"for _, prio in ipairs(levels) do\n"
	"  if #chosen >= max then break end\n"
	"  local all = {}\n"
	"  for _, w in ipairs(wfs) do\n"
	"    for _, c in ipairs(eligible(w, prio, max - #chosen)) do all[#all + 1] = c end\n"
	"  end\n"
	"  table.sort(all, function(a, b) if a.score ~= b.score then return a.score < b.score end return a.id < b.id end)\n"
	"  for _, c in ipairs(all) do\n"
	"    if #chosen < max then chosen[#chosen + 1] = c\n"
	"    else\n"
	/* not taken after all: give back what it counted */
	"      c.w.running = c.w.running - 1\n"
	"      if c.ck ~= '' then c.w.keys[c.ck] = c.w.keys[c.ck] - 1 end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"local out, taken = {0, 0}, 0\n"
	"for _, c in ipairs(chosen) do\n"
	"  local k = P..'run:'..c.id\n"
	"  local prev = redis.call('HGET', k, 'lease_owner') or ''\n"
	"  redis.call('HINCRBY', k, 'version', 1)\n"
	"  redis.call('HSET', k, 'lease_owner', owner, 'lease_expires_at', now + lease, 'updated_at', now)\n"
	"  reindex(P, k, c.id)\n"
	"  out[#out + 1] = (prev ~= '' and prev ~= owner) and 1 or 0\n"
	"  for _, v in ipairs(redis.call('HMGET', k, unpack(RF))) do out[#out + 1] = v end\n"
	"  taken = taken + 1\n"
	"end\n"
	"out[2] = taken\n"
	"return out\n");

int dr_claim(void *impl, const dura_claim *req, dura_record_list *out)
{
	dr_store *s = impl;
	char key[64], lease[24], max[24], nwf[24], nver[24];
	size_t n = req->workflows ? req->nworkflows : 0;
	size_t nv = req->version >= 2 && req->versions ? req->nversions : 0;
	char (*lim)[2][12] = n ? dura_calloc(n, sizeof(*lim)) : NULL;
	const char **argv = dura_malloc(sizeof(*argv) * (5 + 3 * n + 2 * nv));
	memset(out, 0, sizeof(*out));
	int rc = 0;
	if ((n && !lim) || !argv) {
		rc = dura_error_oom(DR_STORE);
		goto done;
	}
	dr_key(s, key, sizeof(key), "workflows", NULL);
	snprintf(lease, sizeof(lease), "%lld", (long long)req->lease_ms);
	snprintf(max, sizeof(max), "%zu", req->max);
	snprintf(nwf, sizeof(nwf), "%zu", n);
	argv[0] = req->owner, argv[1] = lease, argv[2] = max, argv[3] = nwf;
	for (size_t i = 0; i < n; i++) {
		snprintf(lim[i][0], sizeof(lim[i][0]), "%d", req->workflows[i].max_running);
		snprintf(lim[i][1], sizeof(lim[i][1]), "%d", req->workflows[i].max_per_key);
		argv[4 + 3 * i] = req->workflows[i].name;
		argv[5 + 3 * i] = lim[i][0];
		argv[6 + 3 * i] = lim[i][1];
	}
	snprintf(nver, sizeof(nver), "%zu", nv);
	argv[4 + 3 * n] = nver;
	for (size_t i = 0; i < nv; i++) {
		argv[5 + 3 * n + 2 * i] = req->versions[i].workflow;
		argv[6 + 3 * n + 2 * i] = req->versions[i].version;
	}
	/* A claim whose answer was lost is not sent again: the runs it leased
	 * stay leased to no one who knows, and are rescued after the lease. */
	redisReply *r;
	if ((rc = dr_run(s, &claim_script, 0, &r, NULL, key, (int)(5 + 3 * n + 2 * nv), argv, NULL)) != 0)
		goto done;
	size_t got = (size_t)dr_int(r->element[1]);
	if (r->elements < 2 + got * (1 + DR_RECORD_NFIELDS)) {
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "a Redis claim came back incomplete");
	} else if (got && !(out->items = dura_calloc(got, sizeof(*out->items)))) {
		rc = dura_error_oom(DR_STORE);
	}
	for (size_t i = 0; i < got && rc == 0; i++) {
		redisReply *const *e = r->element + 2 + i * (1 + DR_RECORD_NFIELDS);
		if (req->taken_over)
			req->taken_over[i] = (int)dr_int(e[0]);
		if ((rc = dr_record_decode(e + 1, DR_RECORD_NFIELDS, &out->items[i])) == 0)
			out->count++;
	}
	freeReplyObject(r);
	if (rc)
		dura_record_list_free(out);
done:
	dura_free(lim);
	dura_free(argv);
	return rc;
}

int dr_claim_runs(void *impl, const char *owner, const char *const *workflows, size_t nworkflows, size_t max,
                  int64_t lease_ms, dura_record_list *out)
{
	return dura_flow_claim_runs(dr_claim, impl, DR_STORE, owner, workflows, nworkflows, max, lease_ms, out);
}

/* ARGV: owner, lease_ms (0: release), n, ids: {0, code, message, ...}
 * with each run's outcome. Writing the same expiry twice is harmless, so
 * a lost answer is simply asked again. */
static dr_script lease_script = DR_SCRIPT("leases", DR_LUA_INDEX
	"local P, now, owner, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])\n"
	"local out, any_released = {0}, false\n"
	"for i = 1, tonumber(ARGV[5]) do\n"
	"  local f = redis.call('HMGET', P..'run:'..ARGV[5 + i], 'workflow_name', 'priority')\n"
	"  if f[1] then touch_run(P, ARGV[5 + i], f[1], tonumber(f[2]) or 0) end\n"
	"end\n"
	"for i = 1, tonumber(ARGV[5]) do\n"
	"  local id = ARGV[5 + i]\n"
	"  local k = P..'run:'..id\n"
	"  local lo = redis.call('HGET', k, 'lease_owner')\n"
	"  if not lo then\n"
	"    out[#out + 1] = -2; out[#out + 1] = 'no run '..id\n"
	"  elseif lo ~= owner then\n"
	"    local why = 'it has no lease owner'\n"
	"    if lo ~= '' then why = 'its lease owner is '..lo end\n"
	"    out[#out + 1] = -4; out[#out + 1] = 'run '..id..' is not leased to '..owner..' ('..why..')'\n"
	"  else\n"
	"    if lease > 0 then redis.call('HSET', k, 'lease_expires_at', now + lease)\n"
	"    else redis.call('HSET', k, 'lease_owner', '', 'lease_expires_at', 0); any_released = true end\n"
	"    reindex(P, k, id)\n"
	"    out[#out + 1] = 0; out[#out + 1] = ''\n"
	"  end\n"
	"end\n"
	"if any_released then ready(P) end\n"
	"return out\n");

static int leases(dr_store *s, const char *owner, const char *const *ids, size_t n, int64_t lease_ms, int *codes,
                  int single)
{
	char key[320], lease[24], count[24];
	const char **argv = dura_malloc(sizeof(*argv) * (3 + n));
	if (!argv)
		return dura_error_oom(DR_STORE);
	if (dr_key(s, key, sizeof(key), "run", ids[0]) != 0) {
		dura_free(argv);
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key");
	}
	snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
	snprintf(count, sizeof(count), "%zu", n);
	argv[0] = owner, argv[1] = lease, argv[2] = count;
	for (size_t i = 0; i < n; i++)
		argv[3 + i] = ids[i];
	redisReply *r;
	int rc = dr_run(s, &lease_script, DR_IDEMPOTENT, &r, NULL, key, (int)(3 + n), argv, NULL);
	dura_free(argv);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		codes[i] = (int)dr_int(r->element[1 + 2 * i]);
	if (single && codes[0])
		rc = dura_error_set_native(codes[0], DR_STORE, 0, NULL, "%s", r->element[2]->str ? r->element[2]->str : "");
	freeReplyObject(r);
	return rc;
}

int dr_extend_lease(void *impl, const char *run_id, const char *owner, int64_t lease_ms)
{
	int code;
	return leases(impl, owner, &run_id, 1, lease_ms, &code, 1);
}

int dr_extend_leases(void *impl, const char *owner, const char *const *run_ids, size_t n, int64_t lease_ms, int *codes)
{
	return leases(impl, owner, run_ids, n, lease_ms, codes, 0);
}

int dr_release_lease(void *impl, const char *run_id, const char *owner)
{
	int code;
	return leases(impl, owner, &run_id, 1, 0, &code, 1);
}
