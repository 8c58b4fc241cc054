#!/usr/bin/env bash
# tests/lint/run.sh: `kiln lint` over the Dockerfiles in tests/lint/cases/.
# For every cases/NAME.Dockerfile, run from cases/ as
#   kiln lint -f NAME.Dockerfile [the words of NAME.args]
# stdout must be exactly NAME.txt and the exit status NAME.rc (the summary
# on stderr is not compared). What realistic.Dockerfile must report is
# listed in tests/lint/README.md.
#
# Output is TAP (tests/lib.sh). `run.sh --update` rewrites NAME.txt and
# NAME.rc from the current build: review the diff before committing.
# KILN (default $BUILD/kiln) picks the binary.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. tests/lib.sh

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
for df in "$here"/cases/*.Dockerfile; do
	name=$(basename "$df" .Dockerfile)
	args=()
	if [ -e "$here/cases/$name.args" ]; then
		read -r -a args < "$here/cases/$name.args"
	fi
	rc=0
	(cd "$here/cases" && "$KILN" lint -f "$name.Dockerfile" "${args[@]}") \
		>"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ $update = 1 ]; then
		cp "$tmp/out" "$here/cases/$name.txt"
		echo "$rc" > "$here/cases/$name.rc"
	fi
	if [ ! -e "$here/cases/$name.txt" ] || [ ! -e "$here/cases/$name.rc" ]; then
		not_ok "$name: output" "missing $name.txt or $name.rc (run.sh --update)"
		continue
	fi
	if cmp -s "$tmp/out" "$here/cases/$name.txt"; then
		ok "$name: output"
	else
		not_ok "$name: output" "$(diff -u "$here/cases/$name.txt" "$tmp/out" | head -n 60)" \
			"stderr:" "$(head -n 20 "$tmp/err")"
	fi
	expect_eq "$name: exit status" "$(cat "$here/cases/$name.rc")" "$rc"
done

# The realistic file must report exactly its ten known problems (ten rules)
# at these lines, whatever realistic.txt says (so --update cannot bless a
# regression).
realistic_expected="5 FromAsCasing
15 InvalidDefaultArgInFrom
16 MaintainerDeprecated
17 LegacyKeyValueFormat
19 SecretsUsedInArgOrEnv
20 ConsistentInstructionCasing
21 WorkdirRelativePath
23 UndefinedVar
24 ExposeProtoCasing
27 JSONArgsRecommended"
if [ -e "$here/cases/realistic.Dockerfile" ]; then
	read -r -a args < "$here/cases/realistic.args"
	got=$(cd "$here/cases" && "$KILN" lint -f realistic.Dockerfile "${args[@]}" 2>/dev/null |
		sed -n 's/^realistic\.Dockerfile:\([0-9]*\):[0-9]*: warning: \([A-Za-z]*\): .*/\1 \2/p')
	expect_eq "realistic: the ten known problems" "$realistic_expected" "$got"
fi
tap_done
