#!/usr/bin/env bash
# tests/cli/payment.sh - examples/payment.c across process restarts.
#
#   bash tests/cli/payment.sh path/to/examples/payment
#
# On sqlite:$tmp/payment.db, each step its own process: an order started
# (it ends waiting), paid, resumed - it must print "shipped"; a second
# order with a 200 ms timeout, resumed after it - it must print
# "cancelled". Prints "ok - name" or "not ok - name" per check, then
# "payment: N passed, N failed"; exits 1 if anything failed.
set -u
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 path/to/payment" >&2
	exit 2
fi
PAY=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dura-payment.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
URL="sqlite:$tmp/payment.db"
passed=0
failed=0
# check NAME PATTERN: the last command's output (in $tmp/out) matches
check() {
	if grep -Eq -- "$2" "$tmp/out"; then
		passed=$((passed + 1))
		echo "ok - $1"
	else
		failed=$((failed + 1))
		echo "not ok - $1"
		sed 's/^/#   /' "$tmp/out"
	fi
}
run() { "$PAY" "$URL" "$@" >"$tmp/out" 2>&1; echo "exit $?" >>"$tmp/out"; cat "$tmp/out"; }

run start A-1
check "start: the order waits for its payment" 'order A-1: waiting for payment \(signal:payment\)'
check "start exits 0" '^exit 0$'
id=$(awk '/^RUN /{print $2}' "$tmp/out")
run resume "$id"
check "resume before the payment: still waiting" 'order A-1: waiting for payment'
run pay "$id" 12.50
check "pay (a new process) sends the signal" 'payment \{"amount_cents":1250\} sent'
run resume "$id"
check "resume (a third process) ships it" 'order A-1: shipped'
check "... once paid" 'payment of 12.50 received'
run pay "$id"
check "paying an ended run fails" '^exit 1$'

run start B-1 --timeout-ms 200
check "start with --timeout-ms" 'order B-1: waiting for payment'
id2=$(awk '/^RUN /{print $2}' "$tmp/out")
sleep 0.4
run resume "$id2"
check "resume after the timeout cancels it" 'order B-1: cancelled'
check "... and releases the reservation" 'reservation released'

run all
check "all: one order shipped" 'shipped \(run'
check "all: one order cancelled" 'cancelled \(run'
check "all exits 0" '^exit 0$'

echo "payment: $passed passed, $failed failed"
[ "$failed" = 0 ]
