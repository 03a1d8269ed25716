/*
 * commit.c - the step commit, the one rule of durability: record, step and
 * outbox event in one script, only if the run's version is still the one
 * the worker read; and reading the steps back.
 *
 * A script runs whole or not at all, and checks everything before its
 * first write, so a commit that fails writes nothing and a batch applies
 * each of its commits on its own. A connection lost after the script was
 * sent leaves the outcome unknown: the commit then reads the run's
 * last_event, the token every commit leaves in the hash, and either
 * reports the commit it finds there, sends it again (the version is
 * still the expected one: it never ran), or reports the conflict.
 */
#include "index.h"
#include "outbox.h"

#include <stdio.h>
#include <string.h>

#define COMMIT_ARGS 20

/*
 * commit_read(o): the run's fields a commit needs, for the commit whose 20
 * arguments start at ARGV[o], with every key it writes touched (the signal
 * it consumes and the run it wakes included).
 * commit_one(o, f): that commit, on fields f (read again when nil): code,
 * then version and step (or a message). Nothing is written unless
 * everything checks: the version, and the signal it consumes (ARGV[o+16])
 * still being in the run's inbox. The usual commit of a leased running run
 * is one read and five writes; the indexes are written only when the
 * commit moves the run in or out of them. After its own writes it wakes
 * ARGV[o+17] if that run waits for ARGV[o+18] (wake_run, index.h).
 * ARGV[o+19] is the committing code's workflow version ("" for none): the
 * step keeps it, and a run without a version takes it on (and moves in
 * {P}:counts:<wf>, retally); a step of a version is written as
 * "<created_at>\n<length of node_id>:<version>\n<node_id><state>". A
 * commit that makes the run wait, or stop waiting, moves it in or out of
 * {P}:waiting (rewait: no write when it stays as it was).
 */
#define LUA_COMMIT_ONE                                                                                       \
	"local CF = {'version', 'run_state', 'step_no', 'workflow_name', 'priority', 'lease_owner',"         \
	"  'workflow_version', 'wait'}\n"                                                                   \
	"local function commit_read(P, o)\n"                                                                 \
	"  local id = ARGV[o]\n"                                                                             \
	"  local f = redis.call('HMGET', P..'run:'..id, unpack(CF))\n"                                      \
	"  if f[1] then\n"                                                                                   \
	"    local wf = f[4]\n"                                                                              \
	"    touch(P..'active', due_key(P, wf, tonumber(f[5]) or 0), P..'prios:'..wf, P..'leased:'..wf,\n"   \
	"      P..'steps:'..id, P..'outbox', P..'outbox:ids', P..'outbox:order', P..'waiting')\n"             \
	"    local to = tonumber(ARGV[o+5])\n"                                                              \
	"    if to == 0 then to = nil end\n"                                                                \
	"    touch_tally(P, wf, tonumber(f[2]), to)\n"                                                      \
	"    local sid, wk = ARGV[o+16], ARGV[o+17]\n"                                                       \
	"    if sid ~= '' then touch(P..'signal:'..sid, P..'signals:'..id, P..'signalnames:'..id) end\n"    \
	"    if wk ~= '' then touch_wake(P, wk) end\n"                                                       \
	"  end\n"                                                                                            \
	"  return f\n"                                                                                       \
	"end\n"                                                                                              \
	"local function commit_one(P, now, o, f)\n"                                                          \
	"  local id, expect, fl = ARGV[o], tonumber(ARGV[o+1]), tonumber(ARGV[o+2])\n"                       \
	"  local k = P..'run:'..id\n"                                                                        \
	"  f = f or redis.call('HMGET', k, unpack(CF))\n"                                                   \
	"  if not f[1] then return -2, 'no run '..id end\n"                                                  \
	"  if tonumber(f[1]) ~= expect then\n"                                                               \
	"    return -4, 'run '..id..': expected version '..ARGV[o+1]..' but it is '..f[1]\n"                  \
	"  end\n"                                                                                            \
	"  local from, to = tonumber(f[2]), tonumber(ARGV[o+5])\n"                                           \
	"  if to == 0 then to = from end\n"                                                                  \
	"  local refused = reactivation_refused(P, k, id, from, to)\n"                                       \
	"  if refused then return refused[1], refused[2] end\n"                                              \
	"  local sid, sname = ARGV[o+16], nil\n"                                                             \
	"  if sid ~= '' then\n"                                                                              \
	"    local g = redis.call('HMGET', P..'signal:'..sid, 'run_id', 'name')\n"                          \
	"    if g[1] ~= id then\n"                                                                           \
	"      return -4, 'run '..id..': signal '..sid..' is no longer in its inbox (another commit consumed it)'\n" \
	"    end\n"                                                                                          \
	"    sname = g[2]\n"                                                                                 \
	"  end\n"                                                                                            \
	"  local no_step, no_event, release = fl % 2 == 1, math.floor(fl / 2) % 2 == 1, math.floor(fl / 4) % 2 == 1\n" \
	"  local nra = ARGV[o+8]\n"                                                                          \
	"  if nra == '0' then nra = now end\n"                                                               \
	"  local v, step = expect + 1, -1\n"                                                                 \
	"  local ver0, cver = f[7], ARGV[o+19]\n"                                                           \
	"  if not ver0 then index_run(P, k, id); ver0 = '' end\n"                                           \
	"  local ver1 = ver0\n"                                                                             \
	"  if ver0 == '' and cver ~= '' then ver1 = cver end\n"                                             \
	"  local h = {'version', v, 'state', ARGV[o+3], 'status', ARGV[o+4], 'run_state', to,\n"           \
	"    'error', ARGV[o+6], 'attempt', ARGV[o+7], 'next_run_at', nra, 'updated_at', now,\n"            \
	"    'last_event', ARGV[o+10], 'wait', ARGV[o+15]}\n"                                                \
	"  if not no_step then\n"                                                                            \
	"    step = tonumber(f[3])\n"                                                                        \
	"    local vs = ''\n"                                                                               \
	"    if cver ~= '' then vs = ':'..cver end\n"                                                       \
	"    local n = redis.call('RPUSH', P..'steps:'..id,\n"                                             \
	"      now..'\\n'..#ARGV[o+9]..vs..'\\n'..ARGV[o+9]..ARGV[o+3])\n"                                \
	"    h[#h + 1] = 'step_no'; h[#h + 1] = step + 1\n"                                                 \
	"    if n == 1 then h[#h + 1] = 'step_base'; h[#h + 1] = step end\n"                                \
	"  end\n"                                                                                            \
	"  h[#h + 1] = 'last_step'; h[#h + 1] = step\n"                                                     \
	"  if ver1 ~= ver0 then h[#h + 1] = 'workflow_version'; h[#h + 1] = ver1 end\n"                    \
	"  local lo = f[6] or ''\n"                                                                          \
	"  if release then\n"                                                                                \
	"    h[#h + 1] = 'lease_owner'; h[#h + 1] = ''; h[#h + 1] = 'lease_expires_at'; h[#h + 1] = 0\n"   \
	"  end\n"                                                                                            \
	"  redis.call('HSET', k, unpack(h))\n"                                                               \
	"  if sname then\n"                                                                                  \
	"    redis.call('DEL', P..'signal:'..sid)\n"                                                         \
	"    redis.call('ZREM', P..'signals:'..id, sid)\n"                                                   \
	"    redis.call('ZREM', P..'signalnames:'..id, sname..'\\0'..sid)\n"                                \
	"  end\n"                                                                                            \
	"  if not no_event then\n"                                                                           \
	"    local data = ARGV[o+12]\n"                                                                      \
	"    if ARGV[o+13] == '1' then data = data..step..ARGV[o+14]..to..'}' end\n"                         \
	"    outbox_add(P, ARGV[o+10], f[4], id, ARGV[o+11], data, now)\n"                                   \
	"  end\n"                                                                                            \
	"  if is_active(from) ~= is_active(to) then track_active(P, k, id, from, to) end\n"                 \
	"  rewait(P, id, waits(from, f[8]), waits(to, ARGV[o+15]))\n"                                       \
	"  retally(P, id, f[4], ver0, from, ver1, to, now)\n"                                               \
	"  if from ~= to or (release and lo ~= '') then reindex(P, k, id)\n"                               \
	"  elseif to == RUNNING and lo == '' then\n"                                                        \
	"    redis.call('ZADD', due_key(P, f[4], tonumber(f[5]) or 0), nra, id)\n"                          \
	"  end\n"                                                                                            \
	"  if to == RUNNING and (release or from ~= to) then ready(P) end\n"                                \
	"  changed(P, id, v)\n"                                                                              \
	"  if ARGV[o+17] ~= '' then wake_run(P, ARGV[o+17], ARGV[o+18], now) end\n"                         \
	"  return 0, v, step\n"                                                                              \
	"end\n"

static dr_script commit_script = DR_SCRIPT("commit", DR_LUA_INDEX DR_LUA_OUTBOX_ADD LUA_COMMIT_ONE
	"local code, a, b = commit_one(ARGV[1], ARGV[2], 3, commit_read(ARGV[1], 3))\n"
	"if code ~= 0 then return {code, a} end\n"
	"return {0, a, b}\n");

/* ARGV[3] commits; answers {0, code, version or message, step, ...} */
static dr_script batch_script = DR_SCRIPT("commit_batch", DR_LUA_INDEX DR_LUA_OUTBOX_ADD LUA_COMMIT_ONE
	"local out = {0}\n"
	"for i = 0, tonumber(ARGV[3]) - 1 do commit_read(ARGV[1], 4 + i * 20) end\n"
	"for i = 0, tonumber(ARGV[3]) - 1 do\n"
	"  local code, a, b = commit_one(ARGV[1], ARGV[2], 4 + i * 20, nil)\n"
	"  out[#out + 1] = code\n"
	"  out[#out + 1] = a\n"
	"  out[#out + 1] = b or -1\n"
	"end\n"
	"return out\n");

/* For each of ARGV[3] (run id, token, expected version): 1 and the step
 * when the token's commit went in, 0 when the run is still at the version
 * (it never ran), -4 or -2 otherwise. */
static dr_script verify_script = DR_SCRIPT("commit_verify",
	"local out = {0}\n"
	"for i = 0, tonumber(ARGV[3]) - 1 do\n"
	"  local o = 4 + i * 3\n"
	"  local f = redis.call('HMGET', ARGV[1]..'run:'..ARGV[o], 'version', 'last_event', 'last_step')\n"
	"  if not f[1] then out[#out + 1] = -2; out[#out + 1] = -1\n"
	"  elseif f[2] == ARGV[o+1] then out[#out + 1] = 1; out[#out + 1] = tonumber(f[3])\n"
	"  elseif tonumber(f[1]) == tonumber(ARGV[o+2]) then out[#out + 1] = 0; out[#out + 1] = -1\n"
	"  else out[#out + 1] = -4; out[#out + 1] = -1 end\n"
	"end\n"
	"return out\n");

/* The text of one commit's arguments, kept alive for the call. */
typedef struct commit_args {
	char expect[24], flags[12], run_state[12], attempt[12], next[24];
	char token[DURA_UUID_LEN + 1];
	char *p1, *p2; /* the default event data around step and run_state */
} commit_args;

/* Split the default event data at its two integers: the script puts in
 * the step and the run state it knows (dura_store_event_summary's bytes). */
static int summary_parts(const dura_commit *c, commit_args *a)
{
	size_t n = dura_store_event_summary(NULL, 0, c->run_id, 0, c->node_id, c->status, 0);
	char *buf = dura_malloc(n + 1);
	if (!buf)
		return dura_error_oom(DR_STORE);
	dura_store_event_summary(buf, n + 1, c->run_id, 0, c->node_id, c->status, 0);
	/* inside the JSON strings every quote is escaped, so the first
	 * ,"step": and the last ,"run_state": are the keys themselves */
	char *step = strstr(buf, ",\"step\":0");
	char *rs = NULL;
	for (char *p = buf; (p = strstr(p, ",\"run_state\":0")); p++)
		rs = p;
	if (!step || !rs) {
		dura_free(buf);
		return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the event summary has an unexpected form");
	}
	size_t l1 = (size_t)(step - buf) + strlen(",\"step\":");
	char *after_step = step + strlen(",\"step\":0");
	size_t l2 = (size_t)(rs - after_step) + strlen(",\"run_state\":");
	a->p1 = dura_strndup(buf, l1);
	a->p2 = dura_strndup(after_step, l2);
	dura_free(buf);
	if (!a->p1 || !a->p2)
		return dura_error_oom(DR_STORE);
	return 0;
}

static void args_clear(commit_args *a)
{
	dura_free(a->p1);
	dura_free(a->p2);
	a->p1 = a->p2 = NULL;
}

/* Fill argv[0..COMMIT_ARGS) for commit c. */
static int args_fill(const dura_commit *c, const char *event_id, commit_args *a, const char **argv)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->expect, sizeof(a->expect), "%lld", (long long)c->expect_version);
	snprintf(a->flags, sizeof(a->flags), "%u", c->flags);
	snprintf(a->run_state, sizeof(a->run_state), "%d", c->run_state);
	snprintf(a->attempt, sizeof(a->attempt), "%d", c->attempt);
	snprintf(a->next, sizeof(a->next), "%lld", (long long)c->next_run_at);
	/* every commit leaves a token, the event's id or one of its own */
	if (event_id && *event_id)
		snprintf(a->token, sizeof(a->token), "%s", event_id);
	else if (dura_uuid7(a->token) != 0)
		return dura_error_oom(DR_STORE);
	int with_default = !(c->flags & DURA_COMMIT_NO_EVENT) && !c->event_data;
	if (with_default) {
		int rc = summary_parts(c, a);
		if (rc)
			return rc;
	}
	argv[0] = c->run_id;
	argv[1] = a->expect;
	argv[2] = a->flags;
	argv[3] = c->state;
	argv[4] = c->status ? c->status : "";
	argv[5] = a->run_state;
	argv[6] = c->error ? c->error : "";
	argv[7] = a->attempt;
	argv[8] = a->next;
	argv[9] = c->node_id ? c->node_id : "";
	argv[10] = a->token;
	argv[11] = c->event_type ? c->event_type : "step";
	argv[12] = with_default ? a->p1 : c->event_data ? c->event_data : "";
	argv[13] = with_default ? "1" : "0";
	argv[14] = with_default ? a->p2 : "";
	/* version 2: the wait, the signal consumed, the run woken ("": none) */
	int v2 = c->version >= 2;
	argv[15] = v2 && c->wait ? c->wait : "";
	argv[16] = v2 && c->signal_id ? c->signal_id : "";
	argv[17] = v2 && c->wake_run_id ? c->wake_run_id : "";
	argv[18] = v2 && c->wake_run_id && c->wake_wait ? c->wake_wait : "";
	/* version 3: the committing code's workflow version ("": none) */
	argv[19] = c->version >= 3 && c->workflow_version ? c->workflow_version : "";
	return 0;
}

/*
 * After a lost connection: which of the n commits went in. codes[i] gets
 * 1 (it did: steps[i] its step), 0 (it never ran) or an error code.
 */
static int verify(dr_store *s, const dura_commit *c, commit_args *a, size_t n, int *codes, int64_t *steps)
{
	size_t argc = 1 + 3 * n;
	const char **argv = dura_malloc(sizeof(*argv) * argc);
	char count[24], key[320];
	if (!argv)
		return dura_error_oom(DR_STORE);
	snprintf(count, sizeof(count), "%zu", n);
	argv[0] = count;
	for (size_t i = 0; i < n; i++) {
		argv[1 + 3 * i] = c[i].run_id;
		argv[2 + 3 * i] = a[i].token;
		argv[3 + 3 * i] = a[i].expect;
	}
	dr_key(s, key, sizeof(key), "run", c[0].run_id);
	redisReply *r;
	int rc = dr_run(s, &verify_script, DR_IDEMPOTENT, &r, NULL, key, (int)argc, argv, NULL);
	dura_free(argv);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		codes[i] = (int)dr_int(r->element[1 + 2 * i]);
		steps[i] = dr_int(r->element[2 + 2 * i]);
	}
	freeReplyObject(r);
	return 0;
}

int dr_commit(void *impl, const dura_commit *c, const char *event_id, dura_commit_result *res)
{
	dr_store *s = impl;
	char key[320];
	if (dr_key(s, key, sizeof(key), "run", c->run_id) != 0)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "run id too long for a Redis key");
	commit_args a;
	const char *argv[COMMIT_ARGS];
	int rc = args_fill(c, event_id, &a, argv);
	for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
		redisReply *r;
		int unsure = 0;
		rc = dr_run(s, &commit_script, 0, &r, &unsure, key, COMMIT_ARGS, argv, NULL);
		if (rc == 0) {
			res->new_version = dr_int(r->element[1]);
			res->step = dr_int(r->element[2]);
			freeReplyObject(r);
			break;
		}
		if (!unsure || (rc != DURA_EIO && rc != DURA_ETIMEOUT))
			break;
		int code = 0;
		int64_t step = -1;
		if ((rc = verify(s, c, &a, 1, &code, &step)) != 0)
			break;
		if (code == 1) {
			res->new_version = c->expect_version + 1;
			res->step = step;
			break;
		}
		if (code != 0) {
			rc = dura_error_set_native(code, DR_STORE, 0, NULL,
			                           "run %s: the connection was lost during the commit, which did not go in: %s",
			                           c->run_id, code == DURA_ENOTFOUND ? "the run is gone" : "the version moved on");
			break;
		}
		rc = 0; /* it never ran: send it again */
	}
	args_clear(&a);
	return rc;
}

int dr_commit_batch(void *impl, const dura_commit *c, const char *const *event_ids, size_t n, dura_commit_result *res)
{
	dr_store *s = impl;
	char key[320], count[24];
	commit_args *a = dura_calloc(n, sizeof(*a));
	const char **argv = dura_malloc(sizeof(*argv) * (1 + COMMIT_ARGS * n));
	int *codes = dura_calloc(n, sizeof(*codes));
	int64_t *steps = dura_calloc(n, sizeof(*steps));
	int rc = 0, per_item = 0;
	if (!a || !argv || !codes || !steps) {
		rc = dura_error_oom(DR_STORE);
		goto done;
	}
	dr_key(s, key, sizeof(key), "run", c[0].run_id);
	snprintf(count, sizeof(count), "%zu", n);
	argv[0] = count;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = args_fill(&c[i], event_ids[i], &a[i], argv + 1 + COMMIT_ARGS * i);
	if (rc)
		goto done;
	redisReply *r;
	int unsure = 0;
	rc = dr_run(s, &batch_script, 0, &r, &unsure, key, (int)(1 + COMMIT_ARGS * n), argv, NULL);
	if (unsure && (rc == DURA_EIO || rc == DURA_ETIMEOUT)) {
		/* what went in is reported; what never ran is sent again, one by
		 * one (each checks its version again) */
		if ((rc = verify(s, c, a, n, codes, steps)) != 0)
			goto done;
		per_item = 1;
		size_t failed = 0;
		for (size_t i = 0; i < n; i++) {
			if (codes[i] == 1)
				res[i] = (dura_commit_result){0, c[i].expect_version + 1, steps[i]};
			else if (codes[i] == 0)
				res[i].code = dr_commit(impl, &c[i], event_ids[i], &res[i]);
			else
				res[i].code = codes[i];
			failed += res[i].code != 0;
		}
		if (failed)
			rc = dura_error_set_native(DURA_ECONFLICT, DR_STORE, 0, NULL,
			                           "%zu of %zu commits did not go in (the connection was lost during the batch)",
			                           failed, n);
		goto done;
	}
	if (rc)
		goto done;
	size_t failed = 0, first_failed = 0;
	char first_msg[256] = "";
	for (size_t i = 0; i < n; i++) {
		int code = (int)dr_int(r->element[1 + 3 * i]);
		res[i].code = code;
		if (code == 0) {
			res[i].new_version = dr_int(r->element[2 + 3 * i]);
			res[i].step = dr_int(r->element[3 + 3 * i]);
		} else if (failed++ == 0) {
			first_failed = i;
			snprintf(first_msg, sizeof(first_msg), "%s", r->element[2 + 3 * i]->str ? r->element[2 + 3 * i]->str : "");
		}
	}
	freeReplyObject(r);
	if (failed)
		rc = dura_error_set_native(DURA_ECONFLICT, DR_STORE, 0, NULL, "%zu of %zu commits did not go in (commit %zu: %s)",
		                           failed, n, first_failed, first_msg);
done:
	if (rc && rc != DURA_ECONFLICT && !per_item) /* failed as a whole */
		for (size_t i = 0; i < n; i++)
			res[i] = (dura_commit_result){rc, 0, 0};
	if (a)
		for (size_t i = 0; i < n; i++)
			args_clear(&a[i]);
	dura_free(a);
	dura_free(argv);
	dura_free(codes);
	dura_free(steps);
	return rc;
}
