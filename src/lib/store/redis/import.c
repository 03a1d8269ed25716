/*
 * import.c - a whole run inserted as another store had it (contract
 * version 7, docs/store-contract.md "Import"): one script writes the
 * run's hash with every field as given, its steps, checkpoints and
 * signals with their own times, and every index a created and committed
 * run is in (index.h: due or leased, active and latest, the counts, the
 * end-state indexes, the runs per foreign id; {P}:runs, {P}:runs:<wf>,
 * {P}:workflows, its parent's {P}:children:<id>, {P}:cps and the inbox's
 * two zsets), so that the run is read, listed, counted, claimed and
 * pruned as any other. No outbox event and no wake: a running run is due
 * at its next_run_at, and the workers are told (the ready channel), as a
 * create tells them. Everything is checked before the first write, so a
 * refused import writes nothing.
 *
 * The steps are a list numbered from step_base (steps.c), and the next
 * commit appends step step_no: an imported run's steps must be
 * step_base .. step_no - 1 without a gap, or none (a run whose data was
 * deleted). The core refuses any other shape (store/import.c); should one
 * come here all the same, it is refused with DURA_ENOTSUP before anything
 * is sent, as the list could not number it.
 */
#include "index.h"

#include <stdio.h>
#include <string.h>

/* The record's arguments, ARGV[3] to ARGV[22]; the steps' count follows. */
#define RECORD_ARGS 20
#define STEP_ARGS 4   /* created_at, node_id, state, workflow_version */
#define CP_ARGS 5     /* checkpoint_id, step, state, created_at, updated_at */
#define SIGNAL_ARGS 4 /* signal_id, name, payload, created_at */

/*
 * KEYS[1] = {P}:run:<id>; ARGV[3..22] = run_id, workflow_name, foreign_id,
 * run_state, status, state, version, step_no, attempt, error, meta,
 * next_run_at, created_at, updated_at, priority, concurrency_key, wait,
 * parent_id, workflow_version, step_base; then the steps' count and
 * STEP_ARGS each, the checkpoints' count and CP_ARGS each, the signals'
 * count and SIGNAL_ARGS each. {0}, or DURA_EEXISTS with a message.
 */
static dr_script import_script = DR_SCRIPT("import_run", DR_LUA_INDEX
	"local k, P = KEYS[1], ARGV[1]\n"
	"local id, wf, fid, st = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
	"local upd, prio, parent, wver = ARGV[16], tonumber(ARGV[17]), ARGV[20], ARGV[21]\n"
	"local so = 24\n"
	"local nsteps = tonumber(ARGV[so - 1])\n"
	"local co = so + nsteps * 4 + 1\n"
	"local ncps = tonumber(ARGV[co - 1])\n"
	"local go = co + ncps * 5 + 1\n"
	"local nsig = tonumber(ARGV[go - 1])\n"
	/* every key written, touched before the first write */
	"touch_run(P, id, wf, prio)\n"
	"touch(P..'runs', P..'runs:'..wf, P..'workflows', P..'latest', P..'steps:'..id, P..'cps', P..'cps:'..id,\n"
	"  P..'signals:'..id, P..'signalnames:'..id)\n"
	"touch_tally(P, wf, st, nil)\n"
	"if parent ~= '' then touch(P..'children:'..parent) end\n"
	"if redis.call('EXISTS', k) == 1 then return {-3, 'run '..id..' already exists'} end\n"
	"local slot = nil\n"
	"if fid ~= '' then slot = wf..'\\0'..fid end\n"
	"if slot and is_active(st) then\n"
	"  local other = redis.call('HGET', P..'active', slot)\n"
	"  if other then\n"
	"    return {-3, 'run '..id..' is active, and workflow '..wf..' already has an active run '..other..\n"
	"      ' with foreign id '..fid}\n"
	"  end\n"
	"end\n"
	"local seen = {}\n"
	"for i = 0, ncps - 1 do\n"
	"  local c = ARGV[co + i * 5]\n"
	"  if seen[c] then return {-3, 'checkpoint '..c..' is given twice in the import of run '..id} end\n"
	"  if redis.call('EXISTS', P..'cp:'..c) == 1 then\n"
	"    return {-3, 'checkpoint '..c..' of run '..id..' already exists'}\n"
	"  end\n"
	"  seen[c] = true\n"
	"end\n"
	"seen = {}\n"
	"for i = 0, nsig - 1 do\n"
	"  local sid = ARGV[go + i * 4]\n"
	"  if seen[sid] then return {-3, 'signal '..sid..' is given twice in the import of run '..id} end\n"
	"  if redis.call('EXISTS', P..'signal:'..sid) == 1 then\n"
	"    return {-3, 'signal '..sid..' of run '..id..' already exists'}\n"
	"  end\n"
	"  seen[sid] = true\n"
	"end\n"
	/* the record, without a lease; workflow_version always (schema 3: counted) */
	"redis.call('HSET', k, 'run_id', id, 'workflow_name', wf, 'foreign_id', fid, 'run_state', st,\n"
	"  'status', ARGV[7], 'state', ARGV[8], 'version', ARGV[9], 'step_no', ARGV[10], 'attempt', ARGV[11],\n"
	"  'error', ARGV[12], 'meta', ARGV[13], 'lease_owner', '', 'lease_expires_at', 0, 'next_run_at', ARGV[14],\n"
	"  'created_at', ARGV[15], 'updated_at', upd, 'priority', ARGV[17], 'concurrency_key', ARGV[18],\n"
	"  'wait', ARGV[19], 'parent_id', parent, 'step_base', ARGV[22], 'workflow_version', wver)\n"
	/* the counts and end-state indexes: from nothing to (wver, st), ended at updated_at */
	"count(P, wf, wver, st, 1)\n"
	"retally(P, id, wf, wver, st, wver, st, tonumber(upd))\n"
	"slot_count(P, wf, fid, 1)\n"
	"rewait(P, id, false, waits(st, ARGV[19]))\n"
	"if parent ~= '' then redis.call('ZADD', P..'children:'..parent, 0, id) end\n"
	"redis.call('ZADD', P..'runs', 0, id)\n"
	"redis.call('ZADD', P..'runs:'..wf, 0, id)\n"
	"redis.call('SADD', P..'workflows', wf)\n"
	"if slot then\n"
	"  if is_active(st) then redis.call('HSET', P..'active', slot, id) end\n"
	"  local cur = redis.call('HGET', P..'latest', slot)\n"
	"  if not cur or id > cur then redis.call('HSET', P..'latest', slot, id) end\n"
	"end\n"
	/* the steps as commits write them (commit.c), 500 an RPUSH */
	"local sk = P..'steps:'..id\n"
	"redis.call('DEL', sk)\n"
	"local batch = {}\n"
	"for i = 0, nsteps - 1 do\n"
	"  local o = so + i * 4\n"
	"  local node, ver = ARGV[o + 1], ARGV[o + 3]\n"
	"  local vs = ''\n"
	"  if ver ~= '' then vs = ':'..ver end\n"
	"  batch[#batch + 1] = ARGV[o]..'\\n'..#node..vs..'\\n'..node..ARGV[o + 2]\n"
	"  if #batch == 500 or i == nsteps - 1 then redis.call('RPUSH', sk, unpack(batch)); batch = {} end\n"
	"end\n"
	"for i = 0, ncps - 1 do\n"
	"  local o = co + i * 5\n"
	"  local c, cu = ARGV[o], ARGV[o + 4]\n"
	"  redis.call('HSET', P..'cp:'..c, 'run_id', id, 'step', ARGV[o + 1], 'state', ARGV[o + 2],\n"
	"    'created_at', ARGV[o + 3], 'updated_at', cu)\n"
	"  redis.call('ZADD', P..'cps', cu, c)\n"
	"  redis.call('ZADD', P..'cps:'..id, cu, c)\n"
	"end\n"
	"for i = 0, nsig - 1 do\n"
	"  local o = go + i * 4\n"
	"  local sid, name = ARGV[o], ARGV[o + 1]\n"
	"  redis.call('HSET', P..'signal:'..sid, 'signal_id', sid, 'run_id', id, 'name', name,\n"
	"    'payload', ARGV[o + 2], 'created_at', ARGV[o + 3])\n"
	"  redis.call('ZADD', P..'signals:'..id, 0, sid)\n"
	"  redis.call('ZADD', P..'signalnames:'..id, 0, name..'\\0'..sid)\n"
	"end\n"
	"reindex(P, k, id)\n"
	"if st == RUNNING then ready(P) end\n"
	"return {0}\n");

/* The text of the numbers among the arguments, kept alive for the call. */
typedef char num[24];

static const char *str(const char *s)
{
	return s ? s : "";
}

/* The steps' shape: none, or step_base .. step_no - 1 one after another. */
static int steps_fit(const dura_import_run *r)
{
	const dura_record *rec = r->record;
	if (r->nsteps == 0)
		return 0;
	int64_t base = r->steps[0].step;
	for (size_t i = 0; i < r->nsteps; i++)
		if (r->steps[i].step != base + (int64_t)i)
			return dura_error_set_native(DURA_ENOTSUP, DR_STORE, 0, NULL,
			                             "run %s: the Redis store keeps a run's steps as one list without a gap, "
			                             "but step %lld follows step %lld",
			                             rec->run_id, (long long)r->steps[i].step, (long long)r->steps[i - 1].step);
	if (base + (int64_t)r->nsteps != rec->step_no)
		return dura_error_set_native(DURA_ENOTSUP, DR_STORE, 0, NULL,
		                             "run %s: the Redis store numbers the next step after the last one kept, but "
		                             "the steps end at %lld and step_no is %lld",
		                             rec->run_id, (long long)(base + (int64_t)r->nsteps - 1), (long long)rec->step_no);
	return 0;
}

int dr_import_run(void *impl, const dura_import_run *r)
{
	dr_store *s = impl;
	const dura_record *rec = r->record;
	char key[320];
	if (dr_key(s, key, sizeof(key), "run", rec->run_id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key: %s", rec->run_id);
	int rc = steps_fit(r);
	if (rc)
		return rc;
	if (r->nsteps > 10000000 || r->ncheckpoints > 10000000 || r->nsignals > 10000000)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run %s: too many steps, checkpoints or signals",
		                             rec->run_id);
	size_t argc = RECORD_ARGS + 3 + r->nsteps * STEP_ARGS + r->ncheckpoints * CP_ARGS + r->nsignals * SIGNAL_ARGS;
	size_t nnums = 12 + r->nsteps + 3 * r->ncheckpoints + r->nsignals; /* every NUM below */
	const char **argv = dura_malloc(argc * sizeof(*argv));
	num *nums = dura_malloc(nnums * sizeof(*nums));
	if (!argv || !nums) {
		dura_free(argv);
		dura_free(nums);
		return dura_error_oom(DR_STORE);
	}
	size_t a = 0, n = 0;
#define NUM(v) (snprintf(nums[n], sizeof(nums[n]), "%lld", (long long)(v)), nums[n++])
	argv[a++] = rec->run_id;
	argv[a++] = rec->workflow_name;
	argv[a++] = str(rec->foreign_id);
	argv[a++] = NUM(rec->run_state);
	argv[a++] = str(rec->status);
	argv[a++] = rec->state;
	argv[a++] = NUM(rec->version);
	argv[a++] = NUM(rec->step_no);
	argv[a++] = NUM(rec->attempt);
	argv[a++] = str(rec->error);
	argv[a++] = str(rec->meta);
	argv[a++] = NUM(rec->next_run_at);
	argv[a++] = NUM(rec->created_at);
	argv[a++] = NUM(rec->updated_at);
	argv[a++] = NUM(rec->priority);
	argv[a++] = str(rec->concurrency_key);
	argv[a++] = str(rec->wait);
	argv[a++] = str(rec->parent_id);
	argv[a++] = str(rec->workflow_version);
	argv[a++] = NUM(r->nsteps ? r->steps[0].step : 0); /* step_base */
	argv[a++] = NUM(r->nsteps);
	for (size_t i = 0; i < r->nsteps; i++) {
		const dura_step *st = &r->steps[i];
		argv[a++] = NUM(st->created_at);
		argv[a++] = st->node_id;
		argv[a++] = st->state;
		argv[a++] = str(st->workflow_version);
	}
	argv[a++] = NUM(r->ncheckpoints);
	for (size_t i = 0; i < r->ncheckpoints; i++) {
		const dura_checkpoint *cp = &r->checkpoints[i];
		argv[a++] = cp->checkpoint_id;
		argv[a++] = NUM(cp->step);
		argv[a++] = cp->state;
		argv[a++] = NUM(cp->created_at);
		argv[a++] = NUM(cp->updated_at);
	}
	argv[a++] = NUM(r->nsignals);
	for (size_t i = 0; i < r->nsignals; i++) {
		const dura_signal *sg = &r->signals[i];
		argv[a++] = sg->signal_id;
		argv[a++] = sg->name;
		argv[a++] = str(sg->payload);
		argv[a++] = NUM(sg->created_at);
	}
#undef NUM
	/* a connection lost after sending: the import went in if the run is
	 * there now (the script is all or nothing), and is sent again if not */
	for (int attempt = 0;; attempt++) {
		redisReply *rep = NULL;
		int unsure = 0;
		rc = dr_run(s, &import_script, 0, &rep, &unsure, key, (int)a, argv, NULL);
		freeReplyObject(rep);
		if (!unsure || (rc != DURA_EIO && rc != DURA_ETIMEOUT))
			break;
		int64_t v;
		int found = dr_run_field(s, rec->run_id, "version", &v);
		if (found == 0) {
			rc = 0;
			break;
		}
		if (found != DURA_ENOTFOUND || attempt == 2) {
			rc = dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL,
			                           "the connection to Redis was lost while importing run %s", rec->run_id);
			break;
		}
	}
	dura_free(argv);
	dura_free(nums);
	return rc;
}
