#!/usr/bin/env bash
# tests/golden/run.sh: golden tests of the progress renderers. For every
# recorded event stream tests/golden/X.jsonl (written by gen.py, in the json
# renderer's canonical form, docs/events.md):
#   - `kiln replay --progress=plain X.jsonl` must print exactly X.plain;
#   - with --verbose, exactly X.verbose.plain, when that file exists;
#   - `kiln replay --progress=json X.jsonl` must print X.jsonl again (the
#     decoder/encoder round trip), or X.json when that file exists (a
#     stream that is not canonical, to check normalisation).
# Renderers write to opts->fd, which for replay is stdout; stderr must stay
# empty and the exit status 0.
#
# Output is TAP. `run.sh --update` rewrites the expected files (X.plain,
# and X.verbose.plain / X.json where present) from the current build:
# review the diff before committing. KILN (default build/kiln) picks the
# binary; it finds the renderer plugins next to itself.
set -u
cd "$(dirname "$0")/../.."

KILN=${KILN:-${BUILD:-build}/kiln}
update=0
case "${1:-}" in
--update) update=1 ;;
"") ;;
*) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

if [ ! -x "$KILN" ]; then
	echo "Bail out! $KILN not found: build it first (make all)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
inputs=(tests/golden/*.jsonl)
plan=0
for in in "${inputs[@]}"; do
	plan=$((plan + 2))
	[ -e "${in%.jsonl}.verbose.plain" ] && plan=$((plan + 1))
done
echo "1..$plan"

n=0 failed=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { # fail NAME DETAIL-FILE
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	sed 's/^/#   /' "$2" | head -n 80
}

# check NAME EXPECTED-FILE ARGS...: replay with ARGS, compare stdout.
check() {
	local name=$1 expected=$2
	shift 2
	local out=$tmp/out err=$tmp/err rc=0
	"$KILN" replay "$@" >"$out" 2>"$err" || rc=$?
	if [ $update = 1 ] && [ $rc = 0 ] && [ ! -s "$err" ]; then
		cp "$out" "$expected"
	fi
	if [ $rc != 0 ] || [ -s "$err" ]; then
		{ echo "kiln replay $* exited with status $rc; stderr:"; cat "$err"; } >"$tmp/why"
		fail "$name" "$tmp/why"
	elif [ ! -e "$expected" ]; then
		echo "missing $expected (run.sh --update writes it)" >"$tmp/why"
		fail "$name" "$tmp/why"
	elif cmp -s "$expected" "$out"; then
		pass "$name"
	else
		diff -u "$expected" "$out" >"$tmp/why"
		fail "$name" "$tmp/why"
	fi
}

for in in "${inputs[@]}"; do
	base=${in%.jsonl}
	name=$(basename "$base")
	check "$name: plain" "$base.plain" --progress=plain "$in"
	if [ -e "$base.verbose.plain" ]; then
		check "$name: plain --verbose" "$base.verbose.plain" --progress=plain --verbose "$in"
	fi
	if [ -e "$base.json" ]; then
		check "$name: json normalises" "$base.json" --progress=json "$in"
	else
		# The input is its own expected output: never rewrite it.
		saved=$update
		update=0
		check "$name: json round trip" "$in" --progress=json "$in"
		update=$saved
	fi
done

[ $failed = 0 ]
