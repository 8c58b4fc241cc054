#!/usr/bin/env bash
# tests/dockerfile/run.sh: golden tests of the Dockerfile parser
# (plugins/frontend-dockerfile/parser.c) through tests/tools/dfparse.
#
#   cases/NAME.Dockerfile   `dfparse NAME.Dockerfile` (run in cases/, with
#                           the options in NAME.args if it exists) must print
#                           exactly NAME.json and exit 0;
#   errors/NAME.Dockerfile  it must print exactly NAME.err on stderr, nothing
#                           on stdout, and exit 1;
#   generated inputs        too big or too binary to commit (a 1 MB line,
#                           10,000 instructions, NUL bytes, deep nesting) are
#                           written at run time and checked here.
#
# Output is TAP. `run.sh --update` rewrites NAME.json / NAME.err from the
# current build: then read every changed file against BuildKit's behaviour
# before committing (that review is the test). BUILD (default build)
# picks $BUILD/tests/dfparse; WRAP (set by tests/run.sh for its valgrind
# pass) is a command to run it under.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

DFPARSE=${DFPARSE:-$BUILD/tests/dfparse}
case $DFPARSE in /*) ;; *) DFPARSE=$PWD/$DFPARSE ;; esac
read -r -a wrap <<< "${WRAP:-}"
for i in "${!wrap[@]}"; do
	case ${wrap[$i]} in /*) ;; */*) wrap[$i]=$PWD/${wrap[$i]} ;; esac
done
update=0
case "${1:-}" in
--update) update=1 ;;
"") ;;
*) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

if [ ! -x "$DFPARSE" ]; then
	echo "Bail out! $DFPARSE not found: build it first (make tests)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# dfparse ARGS...: runs the dumper (under WRAP); stdout, stderr to files.
dfparse() {
	"${wrap[@]}" "$DFPARSE" "$@" > "$tmp/out" 2> "$tmp/err"
}

shopt -s nullglob

# ---- golden cases ----
for df in tests/dockerfile/cases/*.Dockerfile; do
	name=$(basename "$df" .Dockerfile)
	args=()
	[ -e "${df%.Dockerfile}.args" ] && read -r -a args < "${df%.Dockerfile}.args"
	( cd tests/dockerfile/cases && dfparse "${args[@]}" "$name.Dockerfile" )
	rc=$?
	want=${df%.Dockerfile}.json
	if [ $update = 1 ] && [ $rc = 0 ]; then
		cp "$tmp/out" "$want"
	fi
	if [ $rc != 0 ]; then
		not_ok "case $name" "exit status $rc" "$(cat "$tmp/err")"
	elif [ -s "$tmp/err" ]; then
		not_ok "case $name" "stderr not empty:" "$(cat "$tmp/err")"
	elif [ ! -e "$want" ]; then
		not_ok "case $name" "no $want (run.sh --update writes it)"
	elif ! cmp -s "$tmp/out" "$want"; then
		not_ok "case $name" "$(diff -u "$want" "$tmp/out" | head -n 40)"
	else
		ok "case $name"
	fi
done

# ---- malformed input ----
for df in tests/dockerfile/errors/*.Dockerfile; do
	name=$(basename "$df" .Dockerfile)
	( cd tests/dockerfile/errors && dfparse "$name.Dockerfile" )
	rc=$?
	want=${df%.Dockerfile}.err
	if [ $update = 1 ] && [ $rc = 1 ]; then
		cp "$tmp/err" "$want"
	fi
	if [ $rc != 1 ]; then
		not_ok "error $name" "exit status $rc, want 1" "$(cat "$tmp/err")"
	elif [ -s "$tmp/out" ]; then
		not_ok "error $name" "stdout not empty"
	elif [ ! -e "$want" ]; then
		not_ok "error $name" "no $want (run.sh --update writes it)"
	elif ! cmp -s "$tmp/err" "$want"; then
		not_ok "error $name" "expected: $(cat "$want")" "actual:   $(cat "$tmp/err")"
	else
		ok "error $name"
	fi
done

# ---- generated inputs ----
cd "$tmp"

# expect_error NAME FILE MESSAGE: dfparse FILE fails with exactly MESSAGE.
expect_error() {
	dfparse "$2"
	local rc=$?
	if [ $rc = 1 ] && [ ! -s out ] && [ "$(cat err)" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "exit status $rc (want 1), expected: $3" "actual:   $(cat err)"
	fi
}
# expect_steps NAME FILE N: dfparse --steps '' FILE prints N.
expect_steps() {
	dfparse --steps "" "$2"
	local rc=$?
	if [ $rc = 0 ] && [ "$(cat out)" = "$3" ] && [ ! -s err ]; then
		ok "$1"
	else
		not_ok "$1" "exit status $rc, expected $3 steps" "stdout: $(cat out)" "stderr: $(cat err)"
	fi
}

# A line over BuildKit's 64 KiB scanner limit: its error, at that line.
{ printf 'FROM busybox\nRUN echo '; head -c 1048576 /dev/zero | tr '\0' a; printf '\n'; } > long.Dockerfile
expect_error "1 MB single line" long.Dockerfile \
	"long.Dockerfile:2:1: dockerfile line greater than max allowed size of 65535"

# The longest lines the scanner takes: 65536 bytes with the newline,
# 65535 without one at the end of the file.
{ printf 'FROM busybox\nRUN '; head -c 65529 /dev/zero | tr '\0' b; printf ' x\n'; } > edge.Dockerfile
expect_steps "65536-byte line with its newline" edge.Dockerfile 2
{ printf 'FROM busybox\nRUN '; head -c 65529 /dev/zero | tr '\0' b; printf ' x'; } > edge2.Dockerfile
expect_steps "65535-byte last line" edge2.Dockerfile 2
{ printf 'FROM busybox\nRUN '; head -c 65530 /dev/zero | tr '\0' b; printf ' x'; } > edge3.Dockerfile
expect_error "65536-byte last line" edge3.Dockerfile \
	"edge3.Dockerfile:2:1: dockerfile line greater than max allowed size of 65535"

# 10,000 instructions in one stage, and 2,000 stages each from the last.
{
	echo 'FROM debian:bookworm AS base'
	for i in $(seq 1 3333); do
		echo "ENV V$i=\${V$((i - 1)):+v}$i"
		echo "RUN echo step $i \\"
		echo "    && true"
		echo "COPY --chown=\$V$i src$i /dst/"
	done
} > many.Dockerfile
expect_steps "10,000 instructions" many.Dockerfile 10000
{
	echo 'FROM busybox AS s0'
	for i in $(seq 1 1999); do
		echo "FROM s$((i - 1)) AS s$i"
		echo "ARG A$i=\${A$((i - 1))}+"
	done
} > chain.Dockerfile
expect_steps "2,000 chained stages" chain.Dockerfile 3999

# NUL bytes are refused where they are.
printf 'FROM busybox\nRUN echo a\0b\n' > nul.Dockerfile
expect_error "NUL byte" nul.Dockerfile "nul.Dockerfile:2:11: invalid NUL byte in the Dockerfile"
printf '\0' > nul1.Dockerfile
expect_error "NUL byte first" nul1.Dockerfile "nul1.Dockerfile:1:1: invalid NUL byte in the Dockerfile"

# Deep nesting takes no C stack: ${A:-${A:-...}} 10,000 levels deep.
{
	printf 'FROM busybox\nENV X='
	for i in $(seq 1 10000); do printf '${A:-'; done
	printf 'deep'
	for i in $(seq 1 10000); do printf '}'; done
	printf '\n'
} > deep.Dockerfile
expect_steps "10,000 nested substitutions" deep.Dockerfile 2

# ONBUILD ONBUILD ... 8,000 deep is an error, not a stack overflow.
{ printf 'FROM busybox\n'; for i in $(seq 1 8000); do printf 'ONBUILD '; done; printf 'RUN x\n'; } > onb.Dockerfile
expect_error "ONBUILD chain" onb.Dockerfile \
	"onb.Dockerfile:2:1: Chaining ONBUILD via \`ONBUILD ONBUILD\` isn't allowed"

# Expansion that doubles a value per instruction hits the size budget.
{
	printf 'ARG X=0123456789abcdef\n'
	for i in $(seq 1 40); do printf 'ARG X=$X$X\n'; done
	printf 'FROM busybox\n'
} > bomb.Dockerfile
dfparse bomb.Dockerfile
rc=$?
expect_match "doubling meta ARG stops at the budget (exit $rc)" \
	'^bomb.Dockerfile:[0-9]+:1: failed to process "\$X\$X": the expanded value exceeds the size limit$' \
	"$(cat err)"

# CRLF line endings parse like LF ones.
printf 'FROM busybox AS a\r\nRUN echo \\\r\n  two\r\nFROM a\r\nCOPY --from=a <<EOF /x\r\nhi\r\nEOF\r\n' > crlf.Dockerfile
expect_steps "CRLF line endings" crlf.Dockerfile 4

# --steps with a target, and an unknown one.
printf 'FROM busybox AS a\nRUN a\nFROM busybox AS b\nCOPY --from=a / /\nRUN b\nFROM busybox AS c\nRUN c\n' > tgt.Dockerfile
dfparse --steps b tgt.Dockerfile
expect_eq "--steps b counts a and b" "5" "$(cat out)"
dfparse --steps 2 tgt.Dockerfile
expect_eq "--steps 2 (an index)" "2" "$(cat out)"
dfparse --steps nope tgt.Dockerfile
rc=$?
expect_eq "--steps with an unknown target" \
	'1 dfparse: target stage "nope" could not be found' "$rc $(cat err)"

# df_expand() as an API: the lookup's values, unset names reported once
# each in order, errors worded as BuildKit's, both escape characters.
# expect_expand NAME WANT-STDOUT WANT-STDERR ARGS...
expect_expand() {
	local name=$1 want=$2 wanterr=$3; shift 3
	dfparse "$@"
	expect_eq "$name" "$want|$wanterr" "$(cat out)|$(cat err)"
}
expect_expand "expand: set, unset and defaults" "a-b-/x" "unset: U" \
	--build-arg A=a --build-arg B=b --expand '$A-${B:-z}-${U}/x'
expect_expand "expand: an unset name is reported once" "::" "$(printf 'unset: X\nunset: Y')" \
	--expand '$X:${X}:${Y:+y}'
expect_expand "expand: quotes and escapes" 'a b $c "d"' "" \
	--expand "\"a b\" '\$c' \\\"d\\\""
expect_expand "expand: backtick escape" 'C:\dir $HOME' "" \
	--escape '`' --expand 'C:\dir `$HOME'
expect_expand "expand: \${VAR:?msg} fails" "" \
	'failed to process "${TOKEN:?needs a token}": TOKEN: needs a token' \
	--expand '${TOKEN:?needs a token}'
expect_expand "expand: bad substitution" "" \
	'failed to process "${}": syntax error: bad substitution' --expand '${}'
expect_expand "expand: missing brace" "" \
	"failed to process \"\${A:-\${B\": syntax error: missing '}'" --expand '${A:-${B'
expect_expand "expand: patterns (brackets are literal)" "gz|archive|/usr/bin|a-b-" "" \
	--build-arg F=archive.tar.gz --build-arg P=/usr/local/bin --build-arg D=a-b- \
	--expand '${F##*.}|${F%%.*}|${P/local\//}|${D//[a-z]/x}'

tap_done
