/*
 * index.h - the Lua every script that changes a run pastes in: keeping the
 * run's indexes (due, leased, active) in step with its hash, written once.
 *
 * A running run without a lease is in the due zset of its workflow and
 * priority, scored by next_run_at, so a claim reads the claimable ones as
 * one ZRANGEBYSCORE up to now, in claim order (next_run_at, then run id:
 * the zset's order). A running run with a lease is in its workflow's
 * leased zset instead, scored by the lease's expiry: the live ones (score
 * > now) are what flow limits count, the lapsed ones (score <= now) are
 * what a claim rescues, merged into the due ones by next_run_at.
 *
 * Durable waiting (contract version 5) adds wake_run, the one wake every
 * script shares (wake, signal_send, a commit's wake_run_id, a cancelled
 * child's parent), and the erasing of a run's inbox with its data.
 *
 * Workflow versions and retention (contract version 6, schema 3) add three
 * indexes kept on every write, so that neither run_counts nor prune_runs
 * reads the runs one by one: {P}:counts:<wf> (runs per version and run
 * state), {P}:ended:<state> and {P}:ended:<state>:<wf> (the runs in an end
 * state by updated_at, for prune_runs) and {P}:slotruns (runs per foreign
 * id, for pruning a slot's latest run). retally moves a run in them when
 * its version, run state or (in an end state) updated_at changes; a run
 * written before schema 3 has no workflow_version field and is not in
 * them yet: the first script that changes it calls index_run, and the
 * migration to schema 3 does so for every run (fleet.c, dr_index_runs).
 *
 * The gauges (contract version 8, schema 5) add {P}:waiting, the runs in
 * an active state whose wait is not "" (what waiting_runs counts with
 * one ZCARD): rewait moves a run in or out when its run state or its
 * wait changes (a commit, a change of run state, an import), and the
 * migration to schema 5 puts the runs there that wait already (fleet.c,
 * dr_index_waiting).
 */
#ifndef DURA_REDIS_INDEX_H
#define DURA_REDIS_INDEX_H

#include "redis.h"

#define DR_LUA_INDEX                                                                                         \
	DR_LUA_RECORD_FIELDS                                                                                 \
	"local RUNNING = 2\n"                                                                                \
	/* touch every key a script writes before its first write: during a     \
	 * resharding a key already moved stops the script here, having done     \
	 * nothing, and the client runs it again once the slot is whole          \
	 * (client.h, DR_NO_ASK) */                                                                         \
	"local function touch(...) redis.call('EXISTS', ...) end\n"                                          \
	"local function is_active(st) return st == 1 or st == 2 or st == 4 end\n"                           \
	/* in {P}:waiting: an active run whose wait (nil: "") is not "" */                                  \
	"local function waits(st, w) return is_active(st) and (w or '') ~= '' end\n"                        \
	/* a run that waited (was) and waits (now): in or out of {P}:waiting */                             \
	"local function rewait(P, id, was, now)\n"                                                           \
	"  if was and not now then redis.call('ZREM', P..'waiting', id)\n"                                   \
	"  elseif now and not was then redis.call('ZADD', P..'waiting', 0, id) end\n"                        \
	"end\n"                                                                                              \
	"local function due_key(P, wf, prio)\n"                                                              \
	"  if prio == 0 then return P..'due:'..wf end\n"                                                     \
	"  return P..'duep:'..prio..':'..wf\n"                                                               \
	"end\n"                                                                                              \
	/* the index keys a change of run id (workflow wf, priority prio) may write */                      \
	"local function touch_run(P, id, wf, prio)\n"                                                        \
	"  touch(P..'run:'..id, P..'active', due_key(P, wf, prio), P..'prios:'..wf, P..'leased:'..wf,\n"    \
	"    P..'waiting')\n"                                                                                \
	"end\n"                                                                                              \
	/* place run id (hash key k) in the due and leased zsets per its fields */                          \
	"local function reindex(P, k, id)\n"                                                                 \
	"  local f = redis.call('HMGET', k, 'workflow_name', 'run_state', 'priority', 'next_run_at',"        \
	"    'lease_owner', 'lease_expires_at')\n"                                                           \
	"  local wf, st, prio = f[1], tonumber(f[2]), tonumber(f[3]) or 0\n"                                 \
	"  local nra, lo, le = tonumber(f[4]) or 0, f[5] or '', tonumber(f[6]) or 0\n"                       \
	"  local dk = due_key(P, wf, prio)\n"                                                                \
	"  if st == RUNNING and lo == '' then\n"                                                             \
	"    redis.call('ZADD', dk, nra, id)\n"                                                              \
	"    if prio ~= 0 then redis.call('ZADD', P..'prios:'..wf, prio, prio) end\n"                       \
	"  elseif redis.call('ZREM', dk, id) == 1 and prio ~= 0 and redis.call('EXISTS', dk) == 0 then\n"   \
	"    redis.call('ZREM', P..'prios:'..wf, prio)\n"                                                    \
	"  end\n"                                                                                            \
	"  if st == RUNNING and lo ~= '' then redis.call('ZADD', P..'leased:'..wf, le, id)\n"               \
	"  else redis.call('ZREM', P..'leased:'..wf, id) end\n"                                              \
	"end\n"                                                                                              \
	/* the (workflow, foreign id) slot: NUL cannot be in either */                                      \
	"local function slot_of(k)\n"                                                                        \
	"  local f = redis.call('HMGET', k, 'workflow_name', 'foreign_id')\n"                               \
	"  if not f[2] or f[2] == '' then return nil end\n"                                                 \
	"  return f[1]..'\\0'..f[2]\n"                                                                       \
	"end\n"                                                                                              \
	/* DURA_ECONFLICT when run id would become active while another run holds its slot */               \
	"local function reactivation_refused(P, k, id, from, to)\n"                                          \
	"  if is_active(from) or not is_active(to) then return nil end\n"                                   \
	"  local slot = slot_of(k)\n"                                                                        \
	"  if not slot then return nil end\n"                                                                \
	"  local other = redis.call('HGET', P..'active', slot)\n"                                            \
	"  if other and other ~= id then\n"                                                                  \
	"    return {-4, 'run '..id..' cannot become active: run '..other..' of its workflow with the same'"    \
	"      ..' foreign id is already active'}\n"                                                         \
	"  end\n"                                                                                            \
	"  return nil\n"                                                                                     \
	"end\n"                                                                                              \
	/* keep the slot's active run in step with a change of run state */                                 \
	"local function track_active(P, k, id, from, to)\n"                                                  \
	"  local slot = slot_of(k)\n"                                                                        \
	"  if not slot then return end\n"                                                                    \
	"  if is_active(from) and not is_active(to) then\n"                                                 \
	"    if redis.call('HGET', P..'active', slot) == id then redis.call('HDEL', P..'active', slot) end\n" \
	"  elseif is_active(to) and not is_active(from) then\n"                                             \
	"    redis.call('HSET', P..'active', slot, id)\n"                                                    \
	"  end\n"                                                                                            \
	"end\n"                                                                                              \
	/* wake the workers waiting for work (wait_ready) */                                                \
	"local function ready(P) redis.call('PUBLISH', P..'ready', '1') end\n"                              \
	"local function changed(P, id, v) redis.call('PUBLISH', P..'changed:'..id, v) end\n"                \
	/* the keys of run id's inbox, every signal's hash included */                                      \
	"local function touch_signals(P, id)\n"                                                              \
	"  touch(P..'signals:'..id, P..'signalnames:'..id)\n"                                                \
	"  for _, sid in ipairs(redis.call('ZRANGE', P..'signals:'..id, 0, -1)) do touch(P..'signal:'..sid) end\n" \
	"end\n"                                                                                              \
	/* erase a run's data: its steps, checkpoints and signals (delete_run_data) */                      \
	"local function erase(P, k, id)\n"                                                                   \
	"  redis.call('DEL', P..'steps:'..id)\n"                                                             \
	"  local cps = redis.call('ZRANGE', P..'cps:'..id, 0, -1)\n"                                         \
	"  for _, c in ipairs(cps) do redis.call('DEL', P..'cp:'..c); redis.call('ZREM', P..'cps', c) end\n" \
	"  redis.call('DEL', P..'cps:'..id)\n"                                                               \
	"  for _, sid in ipairs(redis.call('ZRANGE', P..'signals:'..id, 0, -1)) do\n"                        \
	"    redis.call('DEL', P..'signal:'..sid)\n"                                                         \
	"  end\n"                                                                                            \
	"  redis.call('DEL', P..'signals:'..id, P..'signalnames:'..id)\n"                                    \
	"  redis.call('HSET', k, 'state', '{}')\n"                                                           \
	"end\n"                                                                                              \
	/* the keys wake_run(P, id) may write, touched (nothing when no run) */                             \
	"local function touch_wake(P, id)\n"                                                                 \
	"  local f = redis.call('HMGET', P..'run:'..id, 'workflow_name', 'priority')\n"                     \
	"  if f[1] then touch_run(P, id, f[1], tonumber(f[2]) or 0) end\n"                                  \
	"end\n"                                                                                              \
	/* wake run id if it is running and waits for w: due now, version + 1,  \
	 * the workers told (wait_ready); the wait stays (the next commit       \
	 * replaces it). The new version, or nil when no run waits so. */      \
	"local function wake_run(P, id, w, now)\n"                                                           \
	"  local k = P..'run:'..id\n"                                                                        \
	"  local f = redis.call('HMGET', k, 'run_state', 'wait')\n"                                         \
	"  if not f[1] or tonumber(f[1]) ~= RUNNING or (f[2] or '') ~= w then return nil end\n"            \
	"  local v = redis.call('HINCRBY', k, 'version', 1)\n"                                               \
	"  redis.call('HSET', k, 'next_run_at', now, 'updated_at', now)\n"                                  \
	"  reindex(P, k, id)\n"                                                                              \
	"  ready(P)\n"                                                                                       \
	"  changed(P, id, v)\n"                                                                              \
	"  return v\n"                                                                                       \
	"end\n"                                                                                              \
	DR_LUA_TALLY

/* The schema-3 indexes (counts, end states, runs per foreign id), for
 * DR_LUA_INDEX and for the scripts that need only them. Uses touch. */
#define DR_LUA_TALLY                                                                                         \
	"local ENDED = {[3] = true, [5] = true, [6] = true, [7] = true}\n"                                   \
	"local function ended_keys(P, st, wf) return P..'ended:'..st, P..'ended:'..st..':'..wf end\n"      \
	/* the keys retally and index_run may write for a run of wf going from \
	 * state st0 to st1 (nil: the same) */                                                             \
	"local function touch_tally(P, wf, st0, st1)\n"                                                      \
	"  touch(P..'counts:'..wf, P..'slotruns')\n"                                                         \
	"  if ENDED[st0] then touch(ended_keys(P, st0, wf)) end\n"                                          \
	"  if st1 and ENDED[st1] then touch(ended_keys(P, st1, wf)) end\n"                                  \
	"end\n"                                                                                              \
	"local function count(P, wf, ver, st, d)\n"                                                          \
	"  local ck, field = P..'counts:'..wf, ver..':'..st\n"                                              \
	"  if redis.call('HINCRBY', ck, field, d) <= 0 then redis.call('HDEL', ck, field) end\n"            \
	"end\n"                                                                                              \
	/* run id of wf goes from version ver0 in state st0 to ver1 in st1,    \
	 * updated at `at`: nothing to do for a running run that stays so */                               \
	"local function retally(P, id, wf, ver0, st0, ver1, st1, at)\n"                                      \
	"  if ver0 ~= ver1 or st0 ~= st1 then count(P, wf, ver0, st0, -1); count(P, wf, ver1, st1, 1) end\n" \
	"  if ENDED[st0] and st0 ~= st1 then\n"                                                              \
	"    local a, b = ended_keys(P, st0, wf)\n"                                                          \
	"    redis.call('ZREM', a, id); redis.call('ZREM', b, id)\n"                                         \
	"  end\n"                                                                                            \
	"  if ENDED[st1] then\n"                                                                             \
	"    local a, b = ended_keys(P, st1, wf)\n"                                                          \
	"    redis.call('ZADD', a, at, id); redis.call('ZADD', b, at, id)\n"                                 \
	"  end\n"                                                                                            \
	"end\n"                                                                                              \
	"local function slot_count(P, wf, fid, d)\n"                                                         \
	"  if fid == '' then return 0 end\n"                                                                 \
	"  local n = redis.call('HINCRBY', P..'slotruns', wf..'\\0'..fid, d)\n"                              \
	"  if n <= 0 then redis.call('HDEL', P..'slotruns', wf..'\\0'..fid) end\n"                           \
	"  return n\n"                                                                                       \
	"end\n"                                                                                              \
	/* a run of before schema 3 (hash k, without workflow_version) joins   \
	 * the indexes as it is, of version "" (keys: touch_tally) */                                      \
	"local function index_run(P, k, id)\n"                                                               \
	"  local f = redis.call('HMGET', k, 'workflow_name', 'run_state', 'updated_at', 'foreign_id')\n"    \
	"  local wf, st = f[1], tonumber(f[2]) or 0\n"                                                       \
	"  count(P, wf, '', st, 1)\n"                                                                        \
	"  if ENDED[st] then\n"                                                                              \
	"    local a, b = ended_keys(P, st, wf)\n"                                                           \
	"    local at = tonumber(f[3]) or 0\n"                                                               \
	"    redis.call('ZADD', a, at, id); redis.call('ZADD', b, at, id)\n"                                 \
	"  end\n"                                                                                            \
	"  slot_count(P, wf, f[4] or '', 1)\n"                                                               \
	"  redis.call('HSET', k, 'workflow_version', '')\n"                                                 \
	"end\n"

#endif /* DURA_REDIS_INDEX_H */
