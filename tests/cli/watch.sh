#!/usr/bin/env bash
# tests/cli/watch.sh - `dura watch RUN` on runs moved along by hand
# (`dura commit`, `dura cancel`) in a temporary SQLite store.
#
#   bash tests/cli/watch.sh path/to/dura
#
# Piped, watch prints one line per change and exits with the run's
# outcome: 0 completed, 4 ended otherwise, 1 for no such run; on a
# terminal (script(1) gives it one) it redraws one line in place.
# Prints "ok - ..." / "not ok - ..." and "watch: N passed, N failed".
set -u
DURA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dura-watch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export DURA_STORE_URL="sqlite:$tmp/watch.db"
pass=0
fail=0
check() {
	local name=$1
	shift
	if "$@"; then echo "ok - $name"; pass=$((pass + 1)); else echo "not ok - $name"; fail=$((fail + 1)); fi
}
"$DURA" init >/dev/null
# wait (up to 30 s) until FILE has a line matching PATTERN: watch saw the
# change before the next one is made, however slow the machine
wait_for() {
	for _ in $(seq 1 300); do
		grep -q "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# a run that completes: watched from the start, committed step by step
run=$("$DURA" runs create -w pipeline --status fetch)
"$DURA" watch "$run" --interval 20 >"$tmp/out" 2>&1 &
w=$!
wait_for 'node fetch  steps 0' "$tmp/out"
"$DURA" commit "$run" -n fetch --state '{"n":1}' --status parse >/dev/null
wait_for 'node parse  steps 1' "$tmp/out"
"$DURA" commit "$run" -n parse --state '{"n":2}' --status store >/dev/null
wait_for 'node store  steps 2' "$tmp/out"
"$DURA" commit "$run" -n store --state '{"n":3}' --run-state completed >/dev/null
wait $w
rc=$?
check "watch exits 0 when the run completes ($rc)" [ "$rc" -eq 0 ]
check "piped, it prints one line per change (4: $(wc -l <"$tmp/out"))" [ "$(wc -l <"$tmp/out")" -eq 4 ]
check "the first line is the run at its start node" grep -q '^running  node fetch  steps 0' "$tmp/out"
check "a line per step, with the node and the steps done" grep -q '^running  node store  steps 2' "$tmp/out"
check "the last line is the outcome" bash -c "tail -1 '$tmp/out' | grep -q '^completed  node -  steps 3'"
check "each line has the elapsed time" bash -c "! grep -vqE '[0-9]+\.[0-9]s$' '$tmp/out'"

# an ended run is printed once, at once
"$DURA" watch "$run" >"$tmp/done"
check "watching a completed run: one line, exit 0" [ "$?" -eq 0 -a "$(wc -l <"$tmp/done")" -eq 1 ]

# a run that is cancelled: exit 4
run2=$("$DURA" runs create -w pipeline --status fetch)
"$DURA" watch "$run2" --interval 20 >"$tmp/out2" 2>&1 &
w=$!
wait_for 'node fetch' "$tmp/out2"
"$DURA" cancel "$run2" >/dev/null
wait $w
rc=$?
check "watch exits 4 when the run is cancelled ($rc)" [ "$rc" -eq 4 ]
check "... and says so last" bash -c "tail -1 '$tmp/out2' | grep -q '^cancelled'"

# --json: one object per change
"$DURA" --json watch "$run" >"$tmp/json"
check "--json prints the run as JSON" python3 -c "
import json,sys
o=json.loads(open('$tmp/json').read())
sys.exit(0 if o['run_state']=='completed' and o['steps']==3 else 1)"

# on a terminal: one line redrawn in place
if command -v script >/dev/null 2>&1; then
	run3=$("$DURA" runs create -w pipeline --status fetch)
	( sleep 0.5; "$DURA" commit "$run3" -n fetch --state '{}' --run-state completed >/dev/null ) &
	script -qec "'$DURA' watch '$run3' --interval 50" /dev/null >"$tmp/tty" 2>&1
	rc=$?
	check "on a terminal, it exits 0 when the run completes ($rc)" [ "$rc" -eq 0 ]
	check "on a terminal, it redraws the line in place (CR, erase line)" grep -q $'\r\033\[K' "$tmp/tty"
else
	echo "not ok - script(1) (util-linux) is installed"
	fail=$((fail + 1))
fi

# errors
"$DURA" watch no-such-run >/dev/null 2>"$tmp/err"
rc=$?
check "watching no such run exits 1 ($rc)" [ "$rc" -eq 1 ]
check "... with a message" grep -q 'dura:' "$tmp/err"
"$DURA" watch "$run" --interval 5 >/dev/null 2>&1
check "an --interval out of range is a usage error (2)" [ "$?" -eq 2 ]
echo "watch: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
