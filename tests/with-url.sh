#!/usr/bin/env bash
# with-url.sh VAR PROGRAM [ARGS...]
#
# Run a test program against a server store whose URL tests/servers put in
# the environment variable VAR: every "@URL@" in ARGS becomes the URL
# ("@URL@?opt=v" appends the option with '?' or '&' as the URL needs).
# When VAR is empty the server is not running: that is a FAILURE with a
# message, never a silent pass.
set -u
var=${1:?usage: with-url.sh VAR PROGRAM [ARGS...]}
shift
url=${!var:-}
if [ -z "$url" ]; then
	echo "with-url: $var is empty: the test server is not running." >&2
	echo "with-url: start it with: eval \"\$(tests/servers start DIR)\" (make test does it for you)" >&2
	echo "server missing: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
case "$url" in
*\?*) join='&' ;;
*) join='?' ;;
esac
args=()
for a in "$@"; do
	a=${a//@URL@\?/$url$join}
	args+=("${a//@URL@/$url}")
done
exec "${args[@]}"
