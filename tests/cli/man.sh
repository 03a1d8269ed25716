#!/usr/bin/env bash
# tests/cli/man.sh - the man pages dura(1) and libdura(3) render cleanly and
# match what they document.
#
#   bash tests/cli/man.sh BUILD_DIR path/to/dura
#
# Renders BUILD_DIR/man/dura.1 and BUILD_DIR/man/libdura.3 (built by scdoc
# from docs/man/*.scd) with `man -l`, and checks that:
#   - each renders without a warning from man or groff;
#   - dura(1) has a section for every command `dura --help` lists, with every
#     subcommand its --help lists, and names every --option of every
#     command's and subcommand's --help within that command's section (the
#     options every command takes, --store, --json and --help, in the page);
#   - the exit statuses of `dura --help` are in dura(1)'s EXIT STATUS;
#   - libdura(3) names the main functions of include/dura.h, and every
#     dura_* and DURA_* name it mentions is declared in include/dura.h or
#     include/dura/store.h (a name followed by "(" must be a function), so
#     the page cannot drift from the headers. dura_metrics_* / DURA_METRICS_*
#     names are exempt while that API is being added.
# The commands are taken from the binary, so commands it does not have yet
# are not asked for, and a new command without a section fails.
#
# Prints "ok - name" or "not ok - name" per check, then "man: N passed, N
# failed"; exits 1 if anything failed.
set -u

if [ $# -lt 2 ] || [ ! -d "$1" ] || [ ! -x "$2" ]; then
	echo "usage: $0 BUILD_DIR path/to/dura" >&2
	exit 2
fi
BUILD=$1
DURA=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HEADERS=("$SRC/include/dura.h" "$SRC/include/dura/store.h")
MAN1=$BUILD/man/dura.1
MAN3=$BUILD/man/libdura.3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dura-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset DURA_STORE_URL MANPATH MANOPT MANROFFOPT MAN_KEEP_FORMATTING
export LC_ALL=C.UTF-8 MANWIDTH=100 MANPAGER=cat PAGER=cat

passed=0
failed=0
ok() {
	echo "ok - $1"
	passed=$((passed + 1))
}
not_ok() {
	echo "not ok - $1"
	failed=$((failed + 1))
}
check() { # check NAME COMMAND...: ok when the command succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# Render a page to text: $1 page, $2 output, with every groff warning on
# ("w": "all" leaves out undefined macros). Formatting (overstrikes) is
# removed; lines broken by hyphenation are joined again: groff's own hyphen
# (U+2010) goes, a break after a real hyphen ("--older-" / "than") keeps
# it. man's and groff's messages go to $2.err.
render() {
	man --warnings=w -l "$1" 2>"$2.err" | sed 's/.\x08//g' >"$2.raw" || return 1
	awk -v hy="$(printf '\342\200\220')" '
		{ line = $0 }
		held != "" { sub(/^[ \t]+/, "", line); line = held line; held = "" }
		length(line) > length(hy) && substr(line, length(line) - length(hy) + 1) == hy {
			held = substr(line, 1, length(line) - length(hy)); next
		}
		line ~ /[A-Za-z0-9]-$/ { held = line; next }
		{ print line }
		END { if (held != "") print held }
	' "$2.raw" >"$2"
}

# The lines of a top-level command's section in the text of dura(1): from
# its subsection heading "   dura CMD" to the next heading.
section() {
	awk -v h="   dura $1" '
		$0 == h { on = 1; next }
		on && (/^[^ ]/ || /^   [^ ]/) { exit }
		on { print }
	' "$tmp/dura.txt"
}

# The commands and the options of a command's --help.
commands_of() { # the "commands:" list of `dura ARGS --help`
	"$DURA" "$@" --help | awk '/^commands:$/ { on = 1; next } on && /^  [^ ]/ { print $1; next } on { exit }'
}
options_of() { # every --option of `dura ARGS --help`
	"$DURA" "$@" --help | awk '/^options:$/ { on = 1; next } on' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# ---- rendering ---------------------------------------------------------------

for page in "$MAN1" "$MAN3"; do
	name=$(basename "$page")
	if [ ! -s "$page" ]; then
		not_ok "$name is built ($page missing: is scdoc installed? scripts/install-deps)"
		continue
	fi
	ok "$name is built"
	text=$tmp/${name%.*}.txt
	if render "$page" "$text" && [ -s "$text" ]; then
		ok "$name renders with man -l"
	else
		not_ok "$name renders with man -l"
	fi
	if [ ! -s "$text.err" ]; then
		ok "$name renders without warnings"
	else
		not_ok "$name renders without warnings:"
		sed 's/^/#   /' "$text.err"
	fi
	check "$name has a NAME section" grep -q '^NAME$' "$text"
done

# ---- dura(1) ------------------------------------------------------------------

if [ -s "$tmp/dura.txt" ]; then
	top=$(commands_of)
	if [ -n "$top" ]; then ok "dura --help lists commands"; else not_ok "dura --help lists commands"; fi
	for cmd in $top; do
		sec=$(section "$cmd")
		if [ -z "$sec" ]; then
			not_ok "dura(1) has a section for 'dura $cmd'"
			continue
		fi
		ok "dura(1) has a section for 'dura $cmd'"
		# the command and its subcommands, two levels deep, with their options
		paths=$cmd
		for sub in $(commands_of "$cmd"); do
			paths="$paths|$cmd $sub"
			for sub2 in $(commands_of "$cmd" "$sub"); do
				paths="$paths|$cmd $sub $sub2"
			done
		done
		IFS='|' read -r -a list <<<"$paths"
		for path in "${list[@]}"; do
			if [ "$path" != "$cmd" ]; then
				# "dura runs create", or the default "dura runs [list]"
				pat="dura ${path// / \\[?}"
				if grep -qE -- "(^| )${pat}\\]?( |$)" <<<"$sec"; then
					ok "dura(1) documents 'dura $path'"
				else
					not_ok "dura(1) documents 'dura $path'"
				fi
			fi
			# shellcheck disable=SC2086
			for opt in $(options_of $path); do
				case $opt in
				--store | --json | --help)
					continue ;; # every command's: checked once below
				esac
				if grep -qE -- "(^|[^a-z0-9-])${opt}([^a-z0-9-]|$)" <<<"$sec"; then
					ok "dura(1) documents 'dura $path $opt'"
				else
					not_ok "dura(1) documents 'dura $path $opt' (in its section 'dura $cmd')"
				fi
			done
		done
	done
	for opt in --store --json --help --version; do
		check "dura(1) documents the global option $opt" grep -qE -- "(^|[^a-z0-9-])${opt}([^a-z0-9-]|$)" "$tmp/dura.txt"
	done
	check "dura(1) documents DURA_STORE_URL (ENVIRONMENT)" \
		bash -c "awk '/^ENVIRONMENT\$/{on=1;next} /^[^ ]/{on=0} on' '$tmp/dura.txt' | grep -q DURA_STORE_URL"
	status=$(awk '/^EXIT STATUS$/ { on = 1; next } /^[^ ]/ { on = 0 } on' "$tmp/dura.txt")
	for code in $("$DURA" --help | awk '/^exit status:$/ { on = 1; next } on' | grep -oE '(^|[ ,])[0-9]+ ' | tr -dc '0-9\n'); do
		check "dura(1) EXIT STATUS has $code" grep -qE "^ +$code$" <<<"$status"
	done
	check "dura(1) EXIT STATUS has 4 (dura watch)" grep -qE '^ +4$' <<<"$status"
	for url in 'memory:' 'sqlite:' 'postgres://' 'mysql://' 'redis://' 'rediss://' 'Cluster'; do
		check "dura(1) STORE URLS has $url" \
			bash -c "awk '/^STORE URLS\$/{on=1;next} /^[^ ]/{on=0} on' '$tmp/dura.txt' | grep -qF -- '$url'"
	done
	check "dura(1) has EXAMPLES" grep -q '^EXAMPLES$' "$tmp/dura.txt"
	check "dura(1) SEE ALSO libdura(3)" \
		bash -c "awk '/^SEE ALSO\$/{on=1;next} /^[^ ]/{on=0} on' '$tmp/dura.txt' | grep -qF 'libdura(3)'"
fi

# ---- libdura(3) ---------------------------------------------------------------

if [ -s "$tmp/libdura.txt" ]; then
	# Every identifier the headers declare, and the functions among them.
	cat "${HEADERS[@]}" >"$tmp/headers.h"
	grep -ohE '\b(dura|DURA)_[A-Za-z0-9_]+' "$tmp/headers.h" | sort -u >"$tmp/idents"
	grep -ohE 'DURA_EXTERN\([^)]*\)[ *]*dura_[a-z0-9_]+' "$tmp/headers.h" | grep -oE 'dura_[a-z0-9_]+$' | sort -u >"$tmp/funcs"
	for f in dura_store_open dura_store_close dura_engine_open dura_engine_register dura_run_start \
		dura_run_execute dura_worker_start dura_worker_stop dura_error_last dura_free dura_cache_do \
		dura_outbox_consume dura_ctx_wait_signal dura_export; do
		if ! grep -qx "$f" "$tmp/funcs"; then
			not_ok "include/dura.h declares $f (the list of key functions in man.sh is stale)"
		elif grep -qE "(^|[^A-Za-z0-9_])$f\\(" "$tmp/libdura.txt"; then
			ok "libdura(3) mentions $f()"
		else
			not_ok "libdura(3) mentions $f()"
		fi
	done
	# Every name the page mentions ("dura_x_" followed by "*" is a family, "DURA_E*").
	names=$(grep -oE '\b(dura|DURA)_[A-Za-z0-9_]+[(*]?' "$tmp/libdura.txt" | sort -u)
	bad=0
	for n in $names; do
		case $n in
		*\*) continue ;;
		dura_metrics_* | DURA_METRICS_*) continue ;;
		esac
		if [ "${n%(}" != "$n" ]; then
			n=${n%(}
			if ! grep -qx "$n" "$tmp/funcs"; then
				not_ok "libdura(3) names $n(), which include/dura.h does not declare"
				bad=$((bad + 1))
			fi
		elif ! grep -qx "$n" "$tmp/idents"; then
			not_ok "libdura(3) names $n, which the headers do not have"
			bad=$((bad + 1))
		fi
	done
	count=$(wc -w <<<"$names")
	if [ "$bad" -eq 0 ] && [ "$count" -gt 50 ]; then
		ok "libdura(3)'s $count dura_/DURA_ names are all in the headers"
	elif [ "$bad" -eq 0 ]; then
		not_ok "libdura(3) names only $count dura_/DURA_ names"
	fi
	for s in ERRORS MEMORY 'THREAD SAFETY' FORK 'OPTION STRUCTS' STORES WORKERS 'DURABLE WAITING' \
		'STEP CACHE' OUTBOX 'VERSIONS AND RETENTION' 'EXPORT AND IMPORT' METRICS LINKING 'SEE ALSO'; do
		check "libdura(3) has a section $s" grep -qx "$s" "$tmp/libdura.txt"
	done
	check "libdura(3) tells how to link (pkg-config, find_package)" \
		bash -c "grep -qF 'pkg-config --cflags --libs dura' '$tmp/libdura.txt' && grep -qF 'find_package(dura' '$tmp/libdura.txt'"
	check "libdura(3) SEE ALSO dura(1)" grep -qF 'dura(1)' "$tmp/libdura.txt"
fi

echo "man: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
