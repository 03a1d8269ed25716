#!/usr/bin/env bash
# tests/web/run.sh - `dura serve` as an operator and a browser meet it.
#
#   bash tests/web/run.sh DURA POPULATE URL OUTDIR
#
# (URL may hold "@PREFIX@", which becomes a fresh table prefix.)
#
# Populates the store at URL (tests/web/populate.c: shop runs with a
# failed attempt each, a hostile run made of markup, a run to pause),
# starts `dura serve` on it on a free loopback port, then:
#   - headless Chromium (--dump-dom) shows the runs list with the runs,
#     a run page's SVG with one bar per committed step, the hostile run's
#     markup as text (no element it names exists in the DOM);
#   - an action POSTed without the token is refused (401) and changes
#     nothing, with the token but without the CSRF token too (403), and
#     with both it pauses the run;
#   - malformed requests get 4xx and the server keeps answering: unknown
#     paths, a huge query string, bad %-escapes, bytes that are not
#     UTF-8, a body too large, a wrong method; slow clients (slowloris)
#     are cut off after the idle timeout while others are served;
#   - /metrics passes `promtool check metrics` and counts the runs;
#   - the store URL's password appears in no page and no header;
# and saves screenshots of the runs page and a run page in OUTDIR.
# Prints "ok - ..." / "not ok - ..." and "web: N passed, N failed, N skipped".
set -u
DURA=${1:?usage: run.sh DURA POPULATE URL OUTDIR}
POPULATE=${2:?}
URL=${3:?}
# "@PREFIX@" in the URL becomes a table prefix of its own, so that a run
# on a shared server counts only the runs it made
URL=${URL//@PREFIX@/web$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')_}
OUT=${4:?}
mkdir -p "$OUT"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dura-web.XXXXXX")
pass=0
fail=0
skip=0
serve_pid=
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { # check NAME COMMAND...: ok when the command succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
	echo "web: $pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ]
	exit $?
}

CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
	bad "chromium is installed (scripts/install-deps installs it)"
	finish
fi
# as root Chromium needs --no-sandbox; a fresh profile per run, no GPU
chrome() {
	timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
		--disable-extensions --disable-background-networking --user-data-dir="$tmp/profile" \
		--window-size=1400,1000 "$@" 2>>"$tmp/chrome.log"
}

# ---- the store and the server ------------------------------------------------

if ! "$POPULATE" "$URL" 5 >"$tmp/pop" 2>"$tmp/pop.err"; then
	bad "populate the store"
	cat "$tmp/pop.err"
	finish
fi
ok "populate the store"
shop=$(awk '/^SHOP/{print $2; exit}' "$tmp/pop")
shop_steps=$(awk '/^SHOP/{print $3; exit}' "$tmp/pop")
hostile=$(awk '/^HOSTILE/{print $2}' "$tmp/pop")
pausable=$(awk '/^PAUSABLE/{print $2}' "$tmp/pop")
printf 'tok-%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$tmp/token"
token=$(head -1 "$tmp/token")

"$DURA" --store "$URL" serve --listen 127.0.0.1:0 --token-file "$tmp/token" --timeout 2 2>"$tmp/serve.err" &
serve_pid=$!
base=
for _ in $(seq 1 100); do
	base=$(sed -n 's|^dura serve: \(http://127.0.0.1:[0-9]*\)/ on .*|\1|p' "$tmp/serve.err")
	[ -n "$base" ] && break
	sleep 0.1
done
if [ -z "$base" ]; then
	bad "dura serve starts and prints its address"
	cat "$tmp/serve.err"
	finish
fi
ok "dura serve listens on $base"
check "the token from --token-file is not printed" bash -c "! grep -qF '$token' '$tmp/serve.err'"

# curl: status code of a request (-o FILE keeps the body, -D the headers)
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }

# ---- pages in the browser ------------------------------------------------------

chrome --dump-dom "$base/" >"$tmp/runs.html"
check "the runs list (Chromium DOM) shows the shop run" grep -q "data-run=\"$shop\"" "$tmp/runs.html"
check "the runs list shows the hostile run" grep -q "data-run=\"$hostile\"" "$tmp/runs.html"
check "the runs list has counts per state" grep -q 'id="counts"' "$tmp/runs.html"
chrome --dump-dom "$base/?workflow=shop&state=completed" >"$tmp/shop.html"
n=$(grep -o 'class="run"' "$tmp/shop.html" | wc -l)
check "filtering by workflow and state lists the 5 shop runs ($n)" [ "$n" -eq 5 ]
check "... and not the others" bash -c "! grep -q 'data-run=\"$hostile\"' '$tmp/shop.html'"
chrome --dump-dom "$base/?limit=2" >"$tmp/page1.html"
next=$(sed -n 's|.*id="next" href="\([^"]*\)".*|\1|p' "$tmp/page1.html" | head -1 | sed 's/&amp;/\&/g')
n1=$(grep -o 'class="run"' "$tmp/page1.html" | wc -l)
check "a page of 2 runs has 2 runs and a next link" [ "$n1" -eq 2 -a -n "$next" ]
if [ -n "$next" ]; then
	chrome --dump-dom "$base$next" >"$tmp/page2.html"
	dup=0
	for id in $(grep -o 'data-run="[^"]*"' "$tmp/page1.html"); do
		grep -qF "$id" "$tmp/page2.html" && dup=1
	done
	n2=$(grep -o 'class="run"' "$tmp/page2.html" | wc -l)
	check "the next page (keyset) has 2 other runs" [ "$n2" -eq 2 -a "$dup" -eq 0 ]
fi

chrome --dump-dom "$base/runs/$shop" >"$tmp/run.html"
bars=$(grep -o '<rect class="step' "$tmp/run.html" | wc -l)
check "the run page's SVG has one bar per committed step ($bars of $shop_steps)" [ "$bars" -eq "$shop_steps" -a "$bars" -gt 0 ]
fails=$(grep -o '<line class="failed"' "$tmp/run.html" | wc -l)
check "the timeline marks the failed attempt ($fails)" [ "$fails" -eq 1 ]
check "the failed attempt's error is shown" grep -q 'card network timeout (attempt 1)' "$tmp/run.html"
check "each step's state diff is shown" grep -q 'class="add"><code>.charged</code>' "$tmp/run.html"
check "a removed key shows in the diff" grep -q 'class="del"><code>.validated</code>' "$tmp/run.html"
check "the checkpoint is listed" grep -q 'after-ship' "$tmp/run.html"
check "the run's outbox events are listed" grep -q 'attempt_failed' "$tmp/run.html"
chrome --screenshot="$OUT/runs.png" "$base/" >/dev/null
chrome --screenshot="$OUT/run.png" "$base/runs/$shop" >/dev/null
check "screenshots saved ($OUT/runs.png, $OUT/run.png)" test -s "$OUT/runs.png" -a -s "$OUT/run.png"

# the hostile run: its markup is text in the DOM, no element of it exists
chrome --dump-dom "$base/runs/$hostile" >"$tmp/hostile.html"
check "the hostile run's page renders" grep -q 'id="record"' "$tmp/hostile.html"
check "no <script> element in the DOM" bash -c "! grep -qi '<script' '$tmp/hostile.html'"
check "no <b> or <img> element from the store" bash -c "! grep -qiE '<b>bold|<img' '$tmp/hostile.html'"
check "the SVG is not closed early by </svg> in a value" \
	bash -c "[ \$(grep -o '</svg>' '$tmp/hostile.html' | wc -l) -eq 1 ]"
check "the foreign id shows as text" grep -qF "&lt;script&gt;document.title='pwned'&lt;/script&gt;" "$tmp/hostile.html"
check "the error text shows as text" grep -qF '&lt;script&gt;alert("err")&lt;/script&gt;&lt;/svg&gt;' "$tmp/hostile.html"
check "the page title is not rewritten by a script" bash -c "! grep -q '<title>pwned' '$tmp/hostile.html'"
chrome --dump-dom "$base/" >"$tmp/runs2.html"
check "the runs list escapes the hostile foreign id" bash -c "! grep -qi '<script' '$tmp/runs2.html'"
chrome --dump-dom "$base/cache" >"$tmp/cache.html"
check "the cache page lists the entry, escaped" grep -qF 'price:&lt;b&gt;sku-1&lt;/b&gt;' "$tmp/cache.html"
chrome --dump-dom "$base/workers" >"$tmp/workers.html"
check "the workers page renders" grep -q '<h1>Workers</h1>' "$tmp/workers.html"
chrome --dump-dom "$base/schedules" >"$tmp/schedules.html"
check "the schedules page renders" grep -q '<h1>Schedules</h1>' "$tmp/schedules.html"

# ---- actions -------------------------------------------------------------------

run_state() { "$DURA" --store "$URL" --json show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_state"])'; }
csrf=$(curl -s -H "Authorization: Bearer $token" "$base/runs/$pausable" |
	sed -n 's|.*name="csrf-token" content="\([0-9a-f]*\)".*|\1|p')
check "a page read with the token carries the CSRF token" [ -n "$csrf" ]
check "a page read without it does not" bash -c "! curl -s '$base/runs/$pausable' | grep -qF '$csrf'"
login_csrf=$(curl -s "$base/login" | sed -n 's|.*name="csrf" value="\([0-9a-f]*\)".*|\1|p' | head -1)
check "the sign-in form has a CSRF token of its own" [ -n "$login_csrf" -a "$login_csrf" != "$csrf" ]
c=$(code -X POST -d "csrf=$csrf" "$base/runs/$pausable/pause")
check "pause without the token: 401 ($c)" [ "$c" = 401 ]
check "... and the run is still running" [ "$(run_state "$pausable")" = running ]
c=$(code -X POST -H "Authorization: Bearer wrong-token-0000000" -d "csrf=$csrf" "$base/runs/$pausable/pause")
check "pause with a wrong token: 401 ($c)" [ "$c" = 401 ]
c=$(code -X POST -H "Authorization: Bearer $token" "$base/runs/$pausable/pause")
check "pause with the token but no CSRF token: 403 ($c)" [ "$c" = 403 ]
check "... and the run is still running" [ "$(run_state "$pausable")" = running ]
# the browser's way: sign in for the cookie, then the form
c=$(code -c "$tmp/jar" -X POST -d "csrf=$csrf&token=$token" "$base/login")
check "signing in with another form's CSRF token: 403 ($c)" [ "$c" = 403 ]
c=$(code -c "$tmp/jar" -X POST -d "csrf=$login_csrf&token=$token" "$base/login")
check "signing in answers 303 ($c)" [ "$c" = 303 ]
check "... with an HttpOnly, SameSite cookie" grep -q 'dura_token' "$tmp/jar"
c=$(curl -s -b "$tmp/jar" -o "$tmp/paused.html" -w '%{http_code}' -X POST -d "csrf=$csrf" "$base/runs/$pausable/pause")
check "pause with the cookie and the CSRF token: 200 ($c)" [ "$c" = 200 ]
check "... says what happened" grep -q 'pause: running -&gt; paused' "$tmp/paused.html"
check "... and the run is paused" [ "$(run_state "$pausable")" = paused ]
c=$(curl -s -b "$tmp/jar" -o "$tmp/again.html" -w '%{http_code}' -X POST -d "csrf=$csrf" "$base/runs/$pausable/pause")
check "pausing a paused run: 409 ($c)" [ "$c" = 409 ]
c=$(code -H "Authorization: Bearer $token" -X POST -d "csrf=$csrf" "$base/runs/$pausable/resume")
check "resume with the bearer token: 200 ($c)" [ "$c" = 200 ]
check "... and the run is running" [ "$(run_state "$pausable")" = running ]
curl -s -H "Authorization: Bearer $token" -o "$tmp/fork.html" -X POST -d "csrf=$csrf&step=1" "$base/runs/$shop/fork"
forked=$(sed -n 's|.*new run \([0-9a-f-]*\).*|\1|p' "$tmp/fork.html" | head -1)
check "fork from step 1 makes a new run ($forked)" [ -n "$forked" ]
[ -n "$forked" ] && check "... that is running" [ "$(run_state "$forked")" = running ]
c=$(code -H "Authorization: Bearer $token" -X POST -d "csrf=$csrf&name=go&payload=%7B%22n%22%3A1%7D" \
	"$base/runs/$pausable/signal")
check "signal: 200 ($c)" [ "$c" = 200 ]
check "... and the run holds 2 signals now" \
	bash -c "[ \$(curl -s '$base/runs/$pausable' | grep -o '<td>go</td>' | wc -l) -eq 2 ]"
c=$(code -H "Authorization: Bearer $token" -X POST -d "csrf=$csrf" "$base/runs/$forked/cancel")
check "cancel: 200 ($c)" [ "$c" = 200 ]
[ -n "$forked" ] && check "... and the fork is cancelled" [ "$(run_state "$forked")" = cancelled ]

# DNS rebinding and other origins
c=$(code -H "Host: attacker.example:${base##*:}" "$base/")
check "a Host that is not a loopback name: 421 ($c)" [ "$c" = 421 ]
c=$(code -H "Host: localhost:${base##*:}" "$base/")
check "Host localhost:PORT is served: 200 ($c)" [ "$c" = 200 ]
c=$(code -H "Authorization: Bearer $token" -H "Origin: http://attacker.example" -X POST -d "csrf=$csrf" \
	"$base/runs/$pausable/pause")
check "a POST from another origin: 403 ($c)" [ "$c" = 403 ]
c=$(code -H "Authorization: Bearer $token" -H "Sec-Fetch-Site: cross-site" -X POST -d "csrf=$csrf" \
	"$base/runs/$pausable/pause")
check "a POST a browser marks cross-site: 403 ($c)" [ "$c" = 403 ]
check "... and the run is still running" [ "$(run_state "$pausable")" = running ]
c=$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' --max-time 20 "$base/")
check "HEAD: 200 and no body ($c)" [ "$c" = "200 0" ]

# ---- bad requests ----------------------------------------------------------------

c=$(code "$base/no/such/page")
check "an unknown path: 404 ($c)" [ "$c" = 404 ]
c=$(code "$base/runs/no-such-run")
check "an unknown run: 404 ($c)" [ "$c" = 404 ]
c=$(code "$base/?workflow=%ZZ")
check "a bad %-escape: 400 ($c)" [ "$c" = 400 ]
c=$(code "$base/?workflow=%FF%FE")
check "a value that is not UTF-8: 400 ($c)" [ "$c" = 400 ]
c=$(code "$base/?state=bogus")
check "an unknown run state: 400 ($c)" [ "$c" = 400 ]
c=$(code "$base/?limit=100000")
check "a limit out of range: 400 ($c)" [ "$c" = 400 ]
huge=$(head -c 100000 /dev/zero | tr '\0' 'a')
c=$(code "$base/?workflow=$huge")
check "a 100 KB query string: 4xx ($c)" [ "${c:0:1}" = 4 ]
c=$(code "$base/?$(printf 'a%d=1&' $(seq 1 100))")
check "100 parameters: 400 ($c)" [ "$c" = 400 ]
c=$(code -X PUT "$base/")
check "PUT: 405 ($c)" [ "$c" = 405 ]
head -c 300000 /dev/zero | tr '\0' 'x' >"$tmp/big"
c=$(code -H "Authorization: Bearer $token" -X POST --data-binary @"$tmp/big" "$base/runs/$pausable/pause")
check "a 300 KB body: 413 ($c)" [ "$c" = 413 ]
c=$(code -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X POST -d '{}' "$base/runs/$pausable/pause")
check "a JSON body: 415 ($c)" [ "$c" = 415 ]
check "raw bytes that are not UTF-8 in the path: 400" python3 - "$base" <<'EOF'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(b"GET /runs/\xff\xfe HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % u.netloc.encode())
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
sys.exit(0 if data.startswith(b"HTTP/1.1 400") else 1)
EOF
# slowloris: 40 connections that send a header a byte at a time; the
# server must keep serving others, and cut the slow ones off after its
# idle timeout (--timeout 2) once they stall
check "slow clients are cut off and others are served meanwhile" python3 - "$base" <<'EOF'
import socket, sys, time, urllib.parse, urllib.request
u = urllib.parse.urlparse(sys.argv[1])
slow = []
for i in range(40):
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % u.netloc.encode())
    slow.append(s)
# others are served while the slow ones hold their connections
t = time.time()
with urllib.request.urlopen(sys.argv[1] + "/", timeout=20) as r:
    if r.status != 200:
        sys.exit("served %d" % r.status)
# now stall: every slow connection must be closed by the server
closed = 0
for s in slow:
    s.settimeout(30)
    try:
        while s.recv(4096):
            pass
        closed += 1
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
    except socket.timeout:
        pass
sys.exit(0 if closed == len(slow) else "%d of %d closed" % (closed, len(slow)))
EOF
c=$(code "$base/")
check "the server still answers after all that: 200 ($c)" [ "$c" = 200 ]

# ---- /metrics ---------------------------------------------------------------------

curl -s -D "$tmp/metrics.h" -o "$tmp/metrics.txt" "$base/metrics"
if command -v promtool >/dev/null 2>&1; then
	check "promtool check metrics accepts /metrics" bash -c "promtool check metrics <'$tmp/metrics.txt' >'$tmp/promtool.out' 2>&1 || { cat '$tmp/promtool.out'; false; }"
else
	bad "promtool is installed (Debian package prometheus; scripts/install-deps installs it)"
fi
check "/metrics is the Prometheus text format" grep -qi 'content-type: text/plain; version=0.0.4' "$tmp/metrics.h"
check "/metrics counts the 5 completed shop runs" grep -qx 'dura_runs{workflow="shop",state="completed"} 5' "$tmp/metrics.txt"
check "/metrics counts the failed hostile run" grep -qx 'dura_runs{workflow="hostile",state="failed"} 1' "$tmp/metrics.txt"
for m in dura_steps_committed_total dura_step_commit_duration_seconds_bucket dura_failed_attempts_total \
	dura_cache_hits_total dura_cache_misses_total dura_cache_entries dura_lease_rescues_total dura_outbox_pending \
	dura_outbox_oldest_age_seconds dura_workers_live dura_runs_waiting dura_store_up; do
	check "/metrics has $m" grep -q "^$m" "$tmp/metrics.txt"
done
check "the store answered the scrape" grep -qx 'dura_store_up 1' "$tmp/metrics.txt"
cp "$tmp/metrics.txt" "$OUT/metrics.txt"

# ---- the password ---------------------------------------------------------------------

pw=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).password or "")' "$URL" 2>/dev/null)
if [ -n "$pw" ]; then
	leak=0
	for p in / "/runs/$shop" /workers /cache /schedules /metrics /login /no/such; do
		curl -s -D - "$base$p" | grep -qF "$pw" && leak=1
	done
	grep -qF "$pw" "$tmp/serve.err" && leak=1
	check "the store URL's password is in no page, header or log line" [ "$leak" -eq 0 ]
	check "the pages show the store without its password" grep -q '\*\*\*' "$tmp/runs.html"
fi

# ---- stopping ---------------------------------------------------------------------------

kill -TERM "$serve_pid"
wait "$serve_pid"
rc=$?
serve_pid=
check "SIGTERM stops dura serve cleanly ($rc)" [ "$rc" -eq 0 ]
finish
