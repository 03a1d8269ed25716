#!/usr/bin/env bash
# tests/cli/run.sh - the `dura` command as a user types it.
#
#   bash tests/cli/run.sh path/to/dura [path/to/examples/worker [path/to/examples/payment
#        [path/to/examples/fanout]]]
#
# With the example worker, `dura workers` is checked against worker
# processes it starts and stops (SIGTERM) or kills (SIGKILL). With the
# payment example, `signal`, `runs --waiting` and `show` are checked on a
# run that waits for a signal; with the fanout example (default: next to
# the payment example), `show` of a parent lists its children.
#
# Works in a temporary directory on sqlite:$tmp/cli.db. Prints "ok - name"
# or "not ok - name" per check, then "cli: N passed, N failed"; exits 1 if
# anything failed. DURA_VALGRIND=1 runs every command under valgrind and
# counts a leak or a memory error as a failure.
set -u

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 path/to/dura" >&2
	exit 2
fi
DURA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORKER=
if [ $# -ge 2 ]; then
	WORKER=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
fi
PAYMENT=
FANOUT=
if [ $# -ge 3 ]; then
	PAYMENT=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
	FANOUT=$(dirname "$PAYMENT")/fanout
fi
if [ $# -ge 4 ]; then
	FANOUT=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dura-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
unset DURA_STORE_URL
URL="sqlite:$tmp/cli.db"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
notok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	shift
	for line in "$@"; do echo "#   $line"; done
	echo "#   stdout: $(head -c 600 "$tmp/out")"
	echo "#   stderr: $(head -c 600 "$tmp/err")"
}

# d ARGS...: run dura with the test store; output in $tmp/out and
# $tmp/err, exit status in $rc.
VG=()
if [ "${DURA_VALGRIND:-0}" = 1 ]; then
	# shellcheck disable=SC2054 # commas are inside option values
	# still-reachable blocks are the library's process-wide tables (the
	# password scrub list), not leaks
	VG=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible
		--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99)
fi
raw() {
	${VG[@]+"${VG[@]}"} "$DURA" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" = 99 ]; then
		notok "valgrind: dura $*"
	fi
}
d() { raw --store "$URL" "$@"; }
# same, with stdin from a file
d_in() {
	local input=$1
	shift
	${VG[@]+"${VG[@]}"} "$DURA" --store "$URL" "$@" >"$tmp/out" 2>"$tmp/err" <"$input"
	rc=$?
	if [ "$rc" = 99 ]; then
		notok "valgrind: dura $*"
	fi
}
out() { cat "$tmp/out"; }

# expect NAME CODE [grep-pattern-on-stdout]
expect() {
	local name=$1 code=$2 pat=${3-}
	if [ "$rc" != "$code" ]; then
		notok "$name" "exit status $rc, expected $code"
	elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$tmp/out"; then
		notok "$name" "stdout does not match /$pat/"
	else
		ok "$name"
	fi
}
# one line on stderr, starting "dura: ", and nothing on stdout
expect_error() {
	local name=$1 code=$2 pat=${3-}
	local lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" != "$code" ]; then
		notok "$name" "exit status $rc, expected $code"
	elif [ "$lines" != 1 ] || ! grep -q '^dura: ' "$tmp/err"; then
		notok "$name" "stderr is not one 'dura: ' line ($lines lines)"
	elif [ -s "$tmp/out" ]; then
		notok "$name" "stdout is not empty"
	elif [ -n "$pat" ] && ! grep -Eqi -- "$pat" "$tmp/err"; then
		notok "$name" "stderr does not match /$pat/"
	else
		ok "$name"
	fi
}
check() { # check NAME COMMAND...: passes when the command succeeds
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else notok "$name" "failed: $*"; fi
}
is_json() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out"; }
# jq-less field access: py EXPR, with the parsed stdout as j
py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)" <"$tmp/out"; }
UUID='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- help, version, usage errors -------------------------------------------------

raw --help
expect "dura --help" 0 '^usage: dura'
raw help
expect "dura help" 0 '^usage: dura'
raw --version
expect "dura --version" 0 '^dura [0-9]+\.[0-9]+\.[0-9]+$'
raw version
expect "dura version" 0 '^dura [0-9]'
raw
expect_error "no command is a usage error" 2 'missing command'
raw frobnicate
expect_error "unknown command exits 2" 2 "unknown command 'frobnicate'"
raw --frob runs
expect_error "unknown global option exits 2" 2 'unknown option'
d runs --frob
expect_error "unknown command option exits 2" 2 "unknown option '--frob'"
d show
expect_error "missing argument exits 2" 2 'missing argument'
d runs --limit
expect_error "option without its value exits 2" 2 'needs a value'
d runs --limit nope
expect_error "bad number exits 2" 2 'limit'
d runs --state sleeping
expect_error "bad run state exits 2" 2 'unknown run state'
d cache
expect_error "cache without a subcommand exits 2" 2 'missing command'
d cache frob
expect_error "unknown cache subcommand exits 2" 2 'unknown command'
raw help frob
expect_error "help for an unknown command exits 2" 2 'unknown command'

for cmd in init ping info runs "runs list" "runs create" show commit pause resume cancel fork checkpoints \
	"checkpoints ls" "checkpoints save" "checkpoints rm" cache "cache ls" "cache get" "cache put" \
	"cache rm" "cache purge" "cache stats" outbox "outbox ls" "outbox ack" signal schedules "schedules ls" \
	"schedules set" "schedules rm" "runs migrate-version" versions prune export import migrate help version; do
	# shellcheck disable=SC2086
	raw $cmd --help
	if [ "$rc" = 0 ] && grep -q "^usage: dura $cmd" "$tmp/out" && grep -q -- '--help' "$tmp/out" &&
		[ ! -s "$tmp/err" ]; then
		ok "dura $cmd --help"
	else
		notok "dura $cmd --help" "exit status $rc"
	fi
	# shellcheck disable=SC2086
	raw help $cmd
	if [ "$rc" = 0 ] && grep -q "^usage: dura $cmd" "$tmp/out"; then
		ok "dura help $cmd"
	else
		notok "dura help $cmd" "exit status $rc"
	fi
done
check "--help needs no store" test ! -e "$tmp/dura.db"

# ---- bad stores ------------------------------------------------------------------

raw --store 'bogus://x' ping
expect_error "unknown scheme: one line, exit 1" 1
raw --store 'mysql://u:SECRETPW@127.0.0.1:1/db' ping
if [ "$rc" != 0 ] && ! grep -q SECRETPW "$tmp/out" "$tmp/err"; then
	ok "a password in --store is never printed"
else
	notok "a password in --store is never printed" "exit $rc"
fi
for cmd in info runs init "cache stats"; do
	# shellcheck disable=SC2086
	raw --store 'mysql://u:SECRETPW@127.0.0.1:1/db' $cmd
	if [ "$rc" != 0 ] && ! grep -q SECRETPW "$tmp/out" "$tmp/err" && [ "$(wc -l <"$tmp/err")" = 1 ]; then
		ok "no password with $cmd"
	else
		notok "no password with $cmd" "exit $rc"
	fi
done
raw --store 'postgres://bob:SECRETPW@127.0.0.1:1/db' --json info
if ! grep -q SECRETPW "$tmp/out" "$tmp/err"; then ok "no password, postgres URL"; else notok "no password, postgres URL"; fi
mkdir -p "$tmp/notadir.db"
raw --store "sqlite:$tmp/notadir.db" init
expect_error "a directory as the SQLite file fails in one line" 1

# ---- init, ping, info ---------------------------------------------------------------

d init
expect "init prints the schema version" 0 '^schema version [0-9]+ \(store .*cli\.db\)$'
d init
expect "init again is fine" 0 '^schema version [0-9]+'
d --json init
expect "init --json" 0 '"schema_version"'
d ping
expect "ping" 0 '^ok \([0-9.]+ ms\)$'
d info
expect "info" 0 '^scheme +sqlite$'
check "info shows the location" grep -Eq "^location +.*cli\.db" "$tmp/out"
check "info shows the schema versions" grep -Eq '^schema version +[0-9]+ \(library [0-9]+\)$' "$tmp/out"
check "info shows the capabilities" grep -Eq '^capabilities +.*durable' "$tmp/out"
check "info shows the pool" grep -Eq '^pool +open [0-9]+, idle [0-9]+, in use [0-9]+, max [0-9]+, waits [0-9]+$' \
	"$tmp/out"
d --json info
expect "info --json" 0
check "info --json parses" is_json
check "info --json has the scheme" test "$(py "j['scheme']")" = sqlite
check "info --json has the pool" test "$(py "'max_open' in j['pool']")" = True
check "info --json has the default limits" test "$(py "j['limits']['max_state'], j['limits']['max_value']")" = \
	"8388608 67108864"
raw --store "$URL?max_state=5000&max_value=700" info
expect "info with limits in the URL" 0 '^limits +state 5000 bytes, cache value 700 bytes'
raw --store "$URL?max_state=0" info
expect_error "info refuses max_state=0" 1 'max_state'

# DURA_STORE_URL is honoured, --store wins over it
DURA_STORE_URL="sqlite:$tmp/env.db" "$DURA" init >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "DURA_STORE_URL is honoured" 0 'env\.db'
check "DURA_STORE_URL created its database" test -e "$tmp/env.db"
DURA_STORE_URL="sqlite:$tmp/env.db" "$DURA" --store "$URL" info >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "--store wins over DURA_STORE_URL" 0 'cli\.db'
# commands other than init do not create a store
raw --store "sqlite:$tmp/fresh.db" runs
if [ "$rc" != 0 ]; then
	expect_error "runs on an uninitialised store names dura init" 1 'init'
else
	ok "runs on an uninitialised store (store auto-creates)"
fi

# ---- runs ------------------------------------------------------------------------

d runs
expect "runs on an empty store prints the header" 0 '^RUN_ID +WORKFLOW +FOREIGN_ID +STATE +STATUS +STEPS +VERSION +UPDATED +WAIT +WF_VERSION$'
d runs create --workflow orders --foreign-id order-1 --state '{"n":0}' --status validate
expect "runs create prints a UUID" 0 "$UUID"
run1=$(out)
d runs create --workflow orders --foreign-id order-1
expect "second create with the same foreign id exits 3" 3 "^$run1\$"
check "... with one note on stderr" test "$(wc -l <"$tmp/err")" = 1
d runs create --workflow orders --foreign-id order-2
expect "another foreign id is another run" 0 "$UUID"
run2=$(out)
check "... with another id" test "$run1" != "$run2"
d runs create --workflow billing
expect "a run without a foreign id" 0 "$UUID"
run3=$(out)
d runs create --workflow billing --state 'not json'
expect_error "runs create with bad JSON fails in one line" 1 'json'
d runs create --foreign-id x
expect_error "runs create without --workflow exits 2" 2 'workflow'
d --json runs create --workflow orders --foreign-id order-1
if [ "$rc" = 3 ] && is_json && [ "$(py "j['run_id']")" = "$run1" ] && [ "$(py "j['created']")" = False ]; then
	ok "runs create --json, existing run"
else
	notok "runs create --json, existing run"
fi

d runs
expect "runs lists the runs" 0 "^$run3 +billing"
check "runs: newest first" test "$(sed -n 2p "$tmp/out" | cut -d' ' -f1)" = "$run3"
check "runs: empty foreign id shows as -" grep -Eq "^$run3 +billing +- +running" "$tmp/out"
check "runs: the first run's row" grep -Eq "^$run1 +orders +order-1 +running +validate +0 +1 +[0-9]{4}-" "$tmp/out"
d runs --workflow orders
expect "runs --workflow" 0 "$run1"
check "runs --workflow filters" test "$(grep -c billing "$tmp/out")" = 0
d runs --foreign-id order-2
expect "runs --foreign-id" 0 "$run2"
check "runs --foreign-id filters" test "$(wc -l <"$tmp/out")" = 2
d runs --status validate
expect "runs --status" 0 "$run1"
check "runs --status filters" test "$(wc -l <"$tmp/out")" = 2
d runs --state running
expect "runs --state by name" 0 "$run1"
d runs --state 2
expect "runs --state by number" 0 "$run1"
d runs --state completed
expect "runs --state filters" 0
check "runs --state completed is empty" test "$(wc -l <"$tmp/out")" = 1
d runs --limit 2
expect "runs --limit 2 prints a cursor" 0 '^next: --cursor '
cursor=$(sed -n 's/^next: --cursor //p' "$tmp/out")
check "runs --limit 2: two rows" test "$(cut -d' ' -f1 "$tmp/out" | grep -Ec "$UUID")" = 2
d runs --limit 2 --cursor "$cursor"
expect "runs --cursor continues" 0 "$run1"
check "runs --cursor: the last page has no cursor" test "$(grep -c '^next:' "$tmp/out")" = 0
d --json runs
expect "runs --json" 0
check "runs --json parses" is_json
check "runs --json: three runs" test "$(py "len(j['runs'])")" = 3
check "runs --json: next_cursor null" test "$(py "j['next_cursor']")" = None
check "runs --json: state is JSON" test "$(py "[r for r in j['runs'] if r['run_id']=='$run1'][0]['state']['n']")" = 0
d runs --json --limit 1
check "runs --json --limit 1: a cursor" test "$(py "j['next_cursor'] is not None")" = True

# ---- commit and show ----------------------------------------------------------------

d commit "$run1" --node validate --state '{"n":1}' --status charge
expect "commit prints step and version" 0 '^step 0 committed, version 2$'
d commit "$run1" --node charge --state '{"n":2,"paid":true}' --status ship
expect "second commit" 0 '^step 1 committed, version 3$'
d commit "$run1" --node ship --state '{}' --expect-version 2
expect_error "a stale --expect-version is a conflict" 1
d --json commit "$run1" --node ship --state '{"n":3}' --status ship --expect-version 3
if [ "$rc" = 0 ] && is_json && [ "$(py "j['step']")" = 2 ] && [ "$(py "j['version']")" = 4 ]; then
	ok "commit --json with --expect-version"
else
	notok "commit --json with --expect-version"
fi
d commit "$run1" --node x --state '{'
expect_error "commit with bad JSON fails in one line" 1
d commit "$run1" --state '{}'
expect_error "commit without --node exits 2" 2 'node'
d commit 01234567-0000-7000-8000-000000000000 --node a --state '{}'
expect_error "commit to a missing run fails" 1

d show "$run1"
expect "show lists step #0" 0 '^#0 +validate +[0-9]{4}-'
check "show lists step #1" grep -Eq '^#1 +charge +[0-9]{4}-' "$tmp/out"
check "show lists step #2" grep -Eq '^#2 +ship' "$tmp/out"
check "show: the record" grep -Eq "^run_id +$run1\$" "$tmp/out"
check "show: the run state" grep -Eq '^run_state +running \(2\)$' "$tmp/out"
check "show: the version" grep -Eq '^version +4$' "$tmp/out"
check "show: the state, pretty" grep -Eq '^  "n": 3' "$tmp/out"
check "show: no step states without --states" test "$(grep -c '"paid"' "$tmp/out")" = 0
d show "$run1" --states
expect "show --states" 0 '^ +"paid": true'
d --json show "$run1"
expect "show --json" 0
check "show --json parses" is_json
check "show --json: three steps" test "$(py "len(j['steps'])")" = 3
check "show --json: step 1 is charge" test "$(py "j['steps'][1]['node_id']")" = charge
check "show --json: record fields" test "$(py "j['run_state']")" = running
d show 01234567-0000-7000-8000-000000000000
expect_error "show of a missing run fails in one line" 1
d show "$run3"
expect "show of a run without steps" 0 '^steps \(0\):$'

# ---- pause, resume, cancel -------------------------------------------------------------

d pause "$run2"
expect "pause" 0 "^run $run2: running -> paused\$"
d pause "$run2"
expect_error "pause a paused run fails" 1
d resume "$run2"
expect "resume" 0 "^run $run2: paused -> running\$"
d cancel "$run2"
expect "cancel" 0 "^run $run2: running -> cancelled\$"
d resume "$run2"
expect_error "cancel then resume fails with one line" 1
d --json pause "$run1"
if [ "$rc" = 0 ] && is_json && [ "$(py "j['to']")" = paused ]; then ok "pause --json"; else notok "pause --json"; fi
d resume "$run1"
expect "resume after --json pause" 0 'paused -> running'
d runs create --workflow orders --foreign-id order-2
expect "a cancelled run's foreign id can be reused" 0 "$UUID"
check "... as a new run" test "$(out)" != "$run2"
d cancel 01234567-0000-7000-8000-000000000000
expect_error "cancel a missing run fails" 1

# ---- checkpoints -----------------------------------------------------------------------

d checkpoints
expect "checkpoints on none" 0 '^CHECKPOINT_ID +RUN_ID +STEP +UPDATED$'
d checkpoints save cp-1 "$run1" --step 1
expect "checkpoints save --step" 0 'step 1'
d checkpoints save cp-2 "$run1"
expect "checkpoints save (last step)" 0 'step 2'
d checkpoints save cp-3 "$run3"
expect_error "checkpoint of a run without steps fails" 1
d checkpoints "$run1"
expect "checkpoints RUN" 0 "^cp-[12] +$run1 +[12] "
check "checkpoints RUN: two rows" test "$(wc -l <"$tmp/out")" = 3
d checkpoints "$run3"
check "checkpoints of another run: none" test "$(wc -l <"$tmp/out")" = 1
d --json checkpoints
expect "checkpoints --json" 0
check "checkpoints --json parses" is_json
check "checkpoints --json: two" test "$(py "len(j['checkpoints'])")" = 2
# fork from a checkpoint and from a step (time travel)
d fork --checkpoint cp-2
expect "fork --checkpoint" 0 '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-'
fork1=$(out)
d --json show "$run1"
state_run1=$(py "json.dumps(j['state'], sort_keys=True)")
check "run1's state was read" test -n "$state_run1"
d --json show "$fork1"
check "fork meta names the checkpoint" grep -q 'cp-2' "$tmp/out"
check "forked run has the checkpoint's state" test "$(py "json.dumps(j['state'], sort_keys=True)")" = "$state_run1"
check "forked run starts with no steps" test "$(py "j['step_no']")" = 0
d fork "$run1" --step 0
expect "fork RUN --step 0" 0 '^[0-9a-f]{8}-'
fork2=$(out)
d --json show "$fork2"
check "fork meta names its source" grep -q "$run1" "$tmp/out"
d fork "$run1" --step 99
expect_error "fork from a step that does not exist fails" 1 'no step 99'
d fork "$run1"
expect_error "fork needs --step or --checkpoint" 2 'either'
d fork --checkpoint no-such-cp
expect_error "fork from a missing checkpoint fails" 1
d checkpoints rm cp-1
expect "checkpoints rm" 0 'cp-1'
d checkpoints rm cp-1
expect_error "checkpoints rm of a missing one fails" 1

# ---- cache ------------------------------------------------------------------------

d cache ls
expect "cache ls, empty" 0 '^KEY +SIZE +EXPIRES +CREATED$'
d cache put greeting hello
expect "cache put" 0 'greeting'
d cache put short-lived soon --ttl 1
expect "cache put --ttl" 0
d cache put meta-key v --metadata '{"source":"test"}' --error 'it broke'
expect "cache put with metadata and error" 0
printf 'a\000b\001c' >"$tmp/bin"
d_in "$tmp/bin" cache put binary -
expect "cache put from stdin" 0 '5 bytes'
d cache put bad x --metadata '[1]'
expect_error "cache put with metadata that is not an object fails" 1
d cache put k v --ttl -5
expect_error "cache put with a negative ttl exits 2" 2
sleep 0.05
d cache get greeting
expect "cache get prints text" 0 '^value +hello$'
check "cache get: size" grep -Eq '^size +5$' "$tmp/out"
check "cache get: expires never" grep -Eq '^expires +never$' "$tmp/out"
d cache get binary
sha=$(printf 'a\000b\001c' | sha256sum | cut -d' ' -f1)
expect "cache get of bytes prints size and sha256" 0 "^value +<5 bytes, sha256 $sha>\$"
d cache get binary --raw
if cmp -s "$tmp/out" "$tmp/bin"; then ok "cache get --raw"; else notok "cache get --raw"; fi
d --json cache get binary
if [ "$rc" = 0 ] && is_json && [ "$(py "j['sha256']")" = "$sha" ] && [ "$(py "j['value']")" = None ] &&
	[ "$(py "j['value_base64']")" = "$(base64 <"$tmp/bin")" ]; then
	ok "cache get --json of bytes"
else
	notok "cache get --json of bytes"
fi
d cache get meta-key
expect "cache get shows the error" 0 '^error +it broke$'
check "cache get shows the metadata" grep -q '"source"' "$tmp/out"
d --json cache get greeting
if [ "$rc" = 0 ] && is_json && [ "$(py "j['value']")" = hello ]; then ok "cache get --json"; else notok "cache get --json"; fi
d cache get short-lived
expect_error "an expired entry is a miss" 1
d cache get nope
expect_error "cache get of a missing key fails in one line" 1
d cache ls
expect "cache ls" 0 '^binary +5 +never +[0-9]{4}-'
check "cache ls: key order" test "$(sed -n 2p "$tmp/out" | cut -d' ' -f1)" = binary
check "cache ls: the expired one is marked" grep -Eq '^short-lived +4 +.*\(expired\)' "$tmp/out"
d cache ls --limit 2
expect "cache ls --limit prints a cursor" 0 '^next: --cursor '
ccur=$(sed -n 's/^next: --cursor //p' "$tmp/out")
d cache ls --limit 2 --cursor "$ccur"
expect "cache ls --cursor continues" 0 '^short-lived'
d --json cache ls
expect "cache ls --json" 0
check "cache ls --json parses" is_json
check "cache ls --json: four entries" test "$(py "len(j['entries'])")" = 4
d cache stats
expect "cache stats" 0 '^entries +4$'
check "cache stats: expired" grep -Eq '^expired +1$' "$tmp/out"
check "cache stats: bytes" grep -Eq '^bytes +15$' "$tmp/out"
check "cache stats: hits and misses" grep -Eq '^misses +0$' "$tmp/out"
d cache purge
expect "cache purge" 0 '^purged 1 expired entries$'
d cache purge
expect "cache purge again" 0 '^purged 0 expired entries$'
d --json cache stats
if [ "$rc" = 0 ] && is_json && [ "$(py "j['entries']")" = 3 ]; then ok "cache stats --json"; else notok "cache stats --json"; fi
d cache rm greeting
expect "cache rm" 0 'greeting'
d cache rm greeting
expect_error "cache rm of a missing key fails" 1
d cache get greeting
expect_error "a removed entry is gone" 1

# ---- outbox ----------------------------------------------------------------------

d outbox
expect "outbox lists the commits' events" 0 '^EVENT_ID +TYPE +RUN_ID +CREATED$'
nev=$(grep -c "$run1" "$tmp/out")
check "outbox: an event per commit of run 1" test "$nev" -ge 3
d outbox --limit 1
check "outbox --limit 1" test "$(wc -l <"$tmp/out")" = 2
ev=$(sed -n 2p "$tmp/out" | cut -d' ' -f1)
d --json outbox
expect "outbox --json" 0
check "outbox --json parses" is_json
check "outbox --json: oldest first" test "$(py "j['events'][0]['id']")" = "$ev"
d outbox ack "$ev"
expect "outbox ack" 0 "$ev"
d outbox ack "$ev"
expect_error "outbox ack twice fails" 1
d outbox
check "outbox: one fewer" test "$(grep -c "$run1" "$tmp/out")" = $((nev - 1))

# ---- workers ------------------------------------------------------------------------

d workers
expect "workers: none yet, a header" 0 '^ID +NAME +HOST +PID +THREADS +HELD +STARTED +HEARTBEAT +STATE +SERVES$'
d --json workers
check "workers --json parses" is_json
check "workers --json: an empty list" test "$(py "len(j['workers'])")" = 0
raw --store memory: --json workers
check "workers on the memory store" test "$(py "len(j['workers'])")" = 0
d workers --older-than 5
expect_error "workers --older-than without --prune" 2 'prune'
d workers --prune --older-than -1
expect_error "workers --prune --older-than -1" 2 'older-than'
d workers extra
expect_error "workers takes no argument" 2

# the state ("live", "dead", "gone") of the worker with pid $1, polled until
# it is $2 (the bound guards a hang only)
worker_state() {
	d --json workers
	py "next((('dead' if w['dead'] else 'live') for w in j['workers'] if w['pid'] == $1), 'gone')"
}
wait_state() {
	local i s
	for i in $(seq 1 600); do
		s=$(worker_state "$1")
		[ "$s" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
if [ -n "$WORKER" ]; then
	"$WORKER" "$URL" 2 >"$tmp/w1.out" 2>"$tmp/w1.err" &
	w1=$!
	check "a started worker is listed live" wait_state "$w1" live
	d --json workers
	check "workers --json: its fields" py "[w for w in j['workers'] if w['pid'] == $w1 and w['name'] == 'example' and w['threads'] == 2 and w['lease_ms'] == 3000 and [x['workflow'] for x in w['workflows']] == ['greet'] and len(w['workflows'][0]['version']) == 16 and w['held'] == 0 and w['started_at'] and w['heartbeat_at'] and w['dead'] is False][0]"
	d workers
	check "workers: its row says live" grep -Eq "^[^ ]+ +example +[^ ]+ +$w1 +2 +0 +.* live +greet@f[0-9a-f]{15}$" "$tmp/out"
	kill -TERM "$w1"
	wait "$w1"
	check "a worker stopped with SIGTERM exits 0" test $? = 0
	check "... and its row is gone" test "$(worker_state "$w1")" = gone

	"$WORKER" "$URL" 1 >"$tmp/w2.out" 2>"$tmp/w2.err" &
	w2=$!
	check "a second worker is listed live" wait_state "$w2" live
	kill -KILL "$w2"
	wait "$w2" 2>/dev/null
	check "a SIGKILLed worker is shown dead after its lease" wait_state "$w2" dead
	d workers
	check "workers: its row says dead" grep -Eq "^[^ ]+ +example +[^ ]+ +$w2 +1 +.* dead +greet@f[0-9a-f]{15}$" "$tmp/out"
	d workers --prune --older-than 3600000
	expect "workers --prune --older-than an hour keeps it" 0 '^pruned 0 dead workers$'
	d --json workers --prune
	check "workers --prune --json" test "$(py "j['pruned']")" = 1
	check "... and the dead row is gone" test "$(worker_state "$w2")" = gone
else
	notok "workers: no example worker given (tests/cli/run.sh DURA WORKER)"
fi

# ---- workflow versions and retention -----------------------------------------------------

d runs create --workflow greet --version old1 --status hello
expect "runs create --version" 0 "$UUID"
old_run=$(out)
d runs create --workflow greet --version old1 --status gone
gone_run=$(out)
d runs create --workflow greet --version "no good"
expect_error "runs create with a bad version" 1 'workflow version'
d runs --version old1
check "runs --version: both, on old1, marked unserved" test "$(grep -c ' old1 (unserved)$' "$tmp/out")" = 2
check "... and counted on stderr" grep -q '2 runs above are on a workflow version no live worker serves' "$tmp/err"
d --json runs --version old1
check "runs --json: workflow_version and unserved" test "$(py "[r['workflow_version'] + str(r['unserved']) for r in j['runs']]")" = "['old1True', 'old1True']"
d versions
expect "versions lists old1 as unserved" 0 '^greet +old1 +- +0 \(unserved\) +2 +0 +0 +0 +0$'
d workers
check "workers names the unserved version" grep -q '^unserved: workflow greet version old1 has 2 runs to execute and no live worker serving it$' "$tmp/out"
d runs migrate-version "$old_run"
expect_error "migrate-version without --to" 2 'to is required'
d runs migrate-version --to nosuch "$old_run"
expect_error "migrate-version to a version nobody registered" 1 'no version nosuch'
if [ -n "$WORKER" ]; then
	"$WORKER" "$URL" 1 >"$tmp/w3.out" 2>"$tmp/w3.err" &
	w3=$!
	check "a worker of the current greet starts" wait_state "$w3" live
	d --json versions --workflow greet
	fp=$(py "[v['version'] for v in j['versions'] if v['registered']][0]")
	check "versions --json: the worker's version is registered with its nodes" test "$(py "[v['definition']['start'] for v in j['versions'] if v['registered']][0]")" = hello
	d runs migrate-version --to "$fp" "$gone_run"
	expect_error "migrate-version of a run at a node the version lacks" 1 "at node 'gone'"
	d runs migrate-version --to "$fp" --workflow greet --from old1
	check "migrate-version by workflow: one moved, one refused" grep -q '^1 run moved, 1 refused$' "$tmp/out"
	check "... exit 1 for the refusal" test "$rc" = 1
	for i in $(seq 1 300); do
		d --json show "$old_run"
		[ "$(py "j['run_state']")" = completed ] && break
		sleep 0.1
	done
	check "the moved run completes on the new version" test "$(py "j['run_state'] + ' ' + j['workflow_version']")" = "completed $fp"
	kill -TERM "$w3"
	wait "$w3"
fi
d prune
expect_error "prune without --older-than" 2 'older-than is required'
d prune --older-than 3x
expect_error "prune with a bad age" 2 'not a duration'
d prune --older-than 0 --state running
expect_error "prune of running runs" 2 'completed, failed or cancelled'
d cancel "$gone_run"
d prune --older-than 0 --workflow greet --dry-run
expect "prune --dry-run counts" 0 '^would prune [0-9]+ completed runs?'
check "... and the cancelled one" grep -q '^would prune 1 cancelled run$' "$tmp/out"
d show "$gone_run"
check "... changing nothing" grep -q 'cancelled' "$tmp/out"
d --json prune --older-than 0 --workflow greet --state cancelled
check "prune --json: one cancelled run emptied" test "$(py "str(j['pruned']['cancelled']) + str(j['whole'])")" = 1False
d --json show "$gone_run"
check "... its record stays, data_deleted" test "$(py "j['run_state']")" = data_deleted
d prune --older-than 0 --workflow greet --state data_deleted --whole
expect "prune --whole of the emptied run" 0 '^deleted 1 data_deleted run$'
d show "$gone_run"
expect_error "... and it is gone" 1 'not found'
d prune --older-than 30d --outbox
expect "prune --outbox keeps recent events" 0 '^pruned 0 outbox events$'
d prune --older-than 0 --outbox --workflow greet
expect_error "prune --outbox --workflow" 2 'outbox goes without'

# ---- moving between stores ---------------------------------------------------------------

d export
expect "export writes JSON lines" 0 '^\{"kind":"dura-export","format":1,'
cp "$tmp/out" "$tmp/dump.jsonl"
check "... ending with the end line" grep -q '^{"kind":"end","records":[0-9]*}$' "$tmp/dump.jsonl"
check "... the counts on stderr" grep -q '^exported [0-9]* runs' "$tmp/err"
${VG[@]+"${VG[@]}"} "$DURA" --store "sqlite:$tmp/moved.db" import <"$tmp/dump.jsonl" >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "import reads it into another store" 0
check "... and says what it moved" grep -q '^imported [0-9]* runs' "$tmp/err"
${VG[@]+"${VG[@]}"} "$DURA" --store "sqlite:$tmp/moved.db" import <"$tmp/dump.jsonl" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "import again: nothing new, all unchanged" grep -q '^imported 0 runs.*already there, unchanged' "$tmp/err"
raw --store "sqlite:$tmp/moved.db" export
# (a cache entry's created_at is when it was put in: the import's time)
records() { tail -n +2 "$1" | grep -v '^{"kind":"cache"'; }
records "$tmp/out" >"$tmp/again.jsonl"
check "the moved store exports the same records" cmp -s <(records "$tmp/dump.jsonl") "$tmp/again.jsonl"
check "... and the same cache keys" test "$(grep -c '^{"kind":"cache"' "$tmp/out")" = "$(grep -c '^{"kind":"cache"' "$tmp/dump.jsonl")"
head -c 300 "$tmp/dump.jsonl" >"$tmp/cut.jsonl"
${VG[@]+"${VG[@]}"} "$DURA" --store "sqlite:$tmp/cut.db" import <"$tmp/cut.jsonl" >"$tmp/out" 2>"$tmp/err"
rc=$?
expect_error "import of a file cut short names its line" 1 '^dura: line [0-9]+: '
raw --store "$URL" migrate
expect_error "migrate without --to" 2 'to URL is required'
raw --store "$URL" migrate --to "sqlite:$tmp/migrated.db"
check "migrate moves in one pass" grep -q '^migrated [0-9]* runs' "$tmp/err"
raw --store "sqlite:$tmp/migrated.db" export
check "... the same records" cmp -s <(records "$tmp/dump.jsonl") <(records "$tmp/out")

# ---- signals ---------------------------------------------------------------------

d signal 01234567-0000-7000-8000-000000000000 payment '{"amount":1}'
expect_error "signal to an unknown run fails" 1 'no run 01234567-0000-7000-8000-000000000000'
d signal "$run1" payment '{"amount":'
expect_error "signal with a payload that is not JSON exits 2" 2 'not valid JSON'
d signal "$run1"
expect_error "signal without a name exits 2" 2 'missing argument'
d signal "$run2" payment
expect_error "signal to a run that has ended fails" 1 'has ended \(cancelled\)'
d signal "$run3" nudge '{"why":"test"}'
expect "signal prints the signal's id" 0 "$UUID"
sig1=$(out)
d show "$run3"
expect "show lists a pending signal" 0 "^signals pending \(1\):\$"
check "... its id, name and payload" grep -Eq "^$sig1 +nudge +[0-9]{4}-.* \{\"why\":\"test\"\}\$" "$tmp/out"
d --json show "$run3"
check "show --json: the signal" test "$(py "j['signals'][0]['name'] + ':' + j['signals'][0]['payload']['why']")" = nudge:test
check "show --json: waits for nothing" test "$(py "j['waiting_for'] is None and j['wait'] is None")" = True
d --json signal "$run3" nudge
check "signal --json" test "$(py "j['name'] + ' ' + str(len(j['signal_id']))")" = "nudge 36"

# ---- schedules ---------------------------------------------------------------------

d schedules
expect "schedules: none yet, a header" 0 '^NAME +CRON +ZONE +WORKFLOW +CATCH_UP +NEXT_TICK$'
d schedules set bad '61 * * * *' orders
expect_error "schedules set with a bad cron fails naming the field" 1 'minute'
d schedules set badzone '0 3 * * *' orders --zone Mars/Olympus
expect_error "schedules set with an unknown zone fails" 1 'Mars/Olympus'
d schedules set x '0 3 * * *' orders --catch-up 5000
expect_error "schedules set --catch-up over 1000 exits 2" 2 'catch-up'
d schedules ls
check "... and schedules ls lists none of them" test "$(wc -l <"$tmp/out")" = 1
d schedules set nightly '30 2 * * *' orders --zone Europe/Paris --state '{"batch":true}' --catch-up 3
expect "schedules set prints the next tick" 0 '^schedule nightly: workflow orders, next tick [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ \(Europe/Paris\)$'
d schedules set hourly '@hourly' billing
expect "schedules set with a macro" 0 '^schedule hourly:'
d schedules ls
expect "schedules ls lists them by name" 0 '^nightly +30 2 \* \* \* +Europe/Paris +orders +3 +[0-9]{4}-'
check "... hourly first" test "$(sed -n 2p "$tmp/out" | cut -d' ' -f1)" = hourly
check "... two rows" test "$(wc -l <"$tmp/out")" = 3
d --json schedules
expect "schedules --json" 0
check "schedules --json: the fields" test "$(py "[(s['zone'], s['workflow'], s['catch_up'], s['state']['batch'], s['next_tick'] is not None) for s in j['schedules'] if s['name'] == 'nightly'][0]")" = "('Europe/Paris', 'orders', 3, True, True)"
d schedules set nightly '0 4 * * *' orders
expect "schedules set replaces" 0 '\(UTC\)$'
d schedules rm nightly
expect "schedules rm" 0 '^deleted schedule nightly$'
d schedules rm nightly
expect_error "schedules rm of a missing one fails" 1 'no schedule named nightly'
d --json schedules rm hourly
check "schedules rm --json" test "$(py "j['deleted']")" = hourly
d schedules ls
check "schedules ls: none left" test "$(wc -l <"$tmp/out")" = 1

# ---- a run that waits, its children ---------------------------------------------------

if [ -n "$PAYMENT" ]; then
	"$PAYMENT" "$URL" start C-1 >"$tmp/out" 2>"$tmp/err"
	rc=$?
	expect "the payment example leaves a run waiting" 0 '^RUN '
	wrun=$(sed -n 's/^RUN //p' "$tmp/out")
	d runs --waiting
	expect "runs --waiting lists the waiting run" 0 "^$wrun +payment_order +C-1 +running +await_payment +1 +[0-9]+ +[0-9]{4}-.* signal:payment +f[0-9a-f]{15} \\(unserved\\)\$"
	check "runs --waiting: only it" test "$(wc -l <"$tmp/out")" = 2
	d runs
	check "runs: the wait column" grep -Eq "^$run1 .* - +[^ ]+\$" "$tmp/out"
	d --json runs --waiting
	check "runs --waiting --json: its wait" test "$(py "[r['wait'] for r in j['runs']]")" = "['signal:payment']"
	d show "$wrun"
	expect "show: what a waiting run waits for" 0 '^wait +signal payment, deadline [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+$'
	check "show: no parent" grep -Eq '^parent_id +-$' "$tmp/out"
	d --json show "$wrun"
	check "show --json: waiting_for" test "$(py "(j['waiting_for']['kind'], j['waiting_for']['name'], j['waiting_for']['deadline'] == j['next_run_at'])")" = "('signal', 'payment', True)"
	d signal "$wrun" payment '{"amount_cents":950}'
	expect "signal wakes the waiting run" 0 "$UUID"
	d show "$wrun"
	check "show: the payment pending" grep -Eq '^[-0-9a-f]{36} +payment +.*\{"amount_cents":950\}$' "$tmp/out"
	"$PAYMENT" "$URL" resume "$wrun" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	expect "another process resumes it: shipped" 0 'order C-1: shipped'
	d runs --waiting
	check "runs --waiting: none now" test "$(wc -l <"$tmp/out")" = 1
	d show "$wrun"
	check "show: the signal was consumed" test "$(grep -c '^signals pending' "$tmp/out")" = 0
	check "show: waits for nothing now" grep -Eq '^wait +-$' "$tmp/out"
	d signal "$wrun" payment
	expect_error "signal to a completed run fails" 1 'has ended \(completed\)'
else
	notok "waiting: no payment example given (tests/cli/run.sh DURA WORKER PAYMENT)"
fi
if [ -n "$FANOUT" ] && [ -x "$FANOUT" ]; then
	"$FANOUT" "$URL" 3 >"$tmp/out" 2>"$tmp/err"
	rc=$?
	expect "the fanout example's parent completes" 0 'completed, 3 children, sum 14$'
	prun=$(sed -n 's/^parent run \([^:]*\):.*/\1/p' "$tmp/out")
	d show "$prun"
	expect "show lists a parent's children" 0 '^children \(3\):$'
	check "... with their states" test "$(grep -Ec '^[-0-9a-f]{36} +fanout_child +completed +- +-$' "$tmp/out")" = 3
	kid=$(grep -E '^[-0-9a-f]{36} +fanout_child' "$tmp/out" | head -1 | cut -d' ' -f1)
	d --json show "$prun"
	check "show --json: the children" test "$(py "sorted(set(k['run_state'] for k in j['children'])) + [len(j['children'])]")" = "['completed', 3]"
	d show "$kid"
	check "show of a child: its parent" grep -Eq "^parent_id +$prun\$" "$tmp/out"
	d --json runs --workflow fanout_child
	check "runs --json: parent_id" test "$(py "set(r['parent_id'] for r in j['runs']) == {'$prun'}")" = True
else
	notok "children: no fanout example next to the payment example"
fi

# ---- output that is not a terminal, odd input ---------------------------------------

d runs create --workflow "$(printf 'tab\there')" --foreign-id "$(printf 'nl\nx')"
expect "odd characters in names" 0 "$UUID"
d runs --workflow "$(printf 'tab\there')"
check "a control character cannot break the table" test "$(wc -l <"$tmp/out")" = 2
d --json runs --workflow "$(printf 'tab\there')"
check "... and JSON escapes it" is_json
d runs create --workflow "$(printf 'bad\377utf8')"
d --json runs
check "invalid UTF-8 still gives valid JSON" is_json
d show ""
expect_error "an empty run id fails in one line" 1

echo "cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
