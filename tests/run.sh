#!/usr/bin/env bash
# tests/run.sh: run kiln's test suites and print one closing line,
# "check: N passed, N failed, N skipped".
#   tests/run.sh           unit, plugin-ABI, golden and integration tests
#   tests/run.sh --unit    everything that needs no engine
#   tests/run.sh --engine  all, starting the local engine first and stopping
#                          it after, then checking nothing of it is left
# KILN_TEST_BUILDS="build build-asan valgrind:build" runs the engine-free
# suites against each build directory, "valgrind:DIR" under memcheck (the
# first one also runs the integration tests).
set -u
cd "$(dirname "$0")/.."

unit_only=0 with_engine=0
case "${1:-}" in
--unit) unit_only=1 ;;
--engine) with_engine=1 ;;
esac
builds=${KILN_TEST_BUILDS:-build}
passed=0 failed=0 skipped=0
failures=()

# Sanitizer reports go to files (log_path appends the pid), so that each
# is printed under the suite whose process wrote it, even when a test kept
# the process's stderr to itself (exit 86 alone says little).
san_dir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-sanitizer.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86:log_path=$san_dir/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$san_dir/ubsan}
export CMOCKA_MESSAGE_OUTPUT=TAP

# run_suite NAME COMMAND...: runs a TAP-emitting program, counts results.
# A program that exits non-zero without a failing test line counts as one
# failure (a crash, a sanitizer report, a missing plan).
run_suite() {
	local name=$1; shift
	local out rc p=0 f=0 s=0
	echo "# suite: $name"
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	p=$(printf '%s\n' "$out" | grep -Ec '^ok [0-9]+' || true)
	s=$(printf '%s\n' "$out" | grep -Ec '^ok [0-9]+.*# (SKIP|skip)' || true)
	f=$(printf '%s\n' "$out" | grep -Ec '^not ok [0-9]+' || true)
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "    not ok - $name exited with status $rc"
	fi
	local r
	for r in "$san_dir"/asan.* "$san_dir"/ubsan.*; do
		[ -f "$r" ] || continue
		f=$((f + 1))
		echo "    not ok - $name: a sanitizer report ($(basename "$r")):"
		head -n 80 "$r" | sed 's/^/    #   /'
		rm -f "$r"
	done
	[ "$f" -gt 0 ] && failures+=("$name")
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

engine_up=0
if [ $with_engine = 1 ]; then
	if engine_env=$(scripts/engine.sh up); then
		eval "$engine_env"
		engine_up=1
		trap '[ $engine_up = 1 ] && scripts/engine.sh down >&2' EXIT
	else
		echo "not ok - scripts/engine.sh up failed"
		failed=$((failed + 1)); failures+=("engine up")
		unit_only=1
	fi
fi

first=1
for spec in $builds; do
	# "valgrind:DIR" runs DIR's binaries under memcheck (tests/valgrind.sh).
	b=${spec#valgrind:}
	wrap=() kiln="$b/kiln"
	if [ "$spec" != "$b" ]; then
		wrap=(tests/valgrind.sh)
		kiln=$(mktemp)
		printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$PWD/tests/valgrind.sh" "$PWD/$b/kiln" > "$kiln"
		chmod +x "$kiln"
	fi
	for t in "$b"/tests/unit/test_*; do
		[ -x "$t" ] && run_suite "$spec: unit $(basename "$t")" "${wrap[@]}" "$t"
	done
	# Engine-free shell suites: tests/<suite>/run.sh (abi, golden, install);
	# install only for plain builds (it rebuilds nothing, but copies them).
	for t in tests/*/run.sh; do
		[ -x "$t" ] || continue
		[ "$spec" != "$b" ] && [ "$t" = tests/install/run.sh ] && continue
		# WRAP: the memcheck wrapper, for suites that run their own tools
		run_suite "$spec: $(basename "$(dirname "$t")")" \
			env BUILD="$b" KILN="$kiln" WRAP="${wrap[*]}" "$t"
	done
	[ "$spec" != "$b" ] && rm -f "$kiln"
	if [ $first = 1 ] && [ $unit_only = 0 ]; then
		for t in tests/integration/*_test.sh; do
			[ -e "$t" ] && run_suite "$b: integration $(basename "$t" .sh)" \
				env BUILD="$b" KILN="$b/kiln" bash "$t"
		done
	fi
	first=0
done

if [ $engine_up = 1 ]; then
	engine_up=0
	if scripts/engine.sh down >&2; then
		run_suite "engine down" bash tests/integration/engine_test.sh --after-down
	else
		echo "not ok - scripts/engine.sh down failed"
		failed=$((failed + 1)); failures+=("engine down")
	fi
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "# failed suites:"
	printf '#   %s\n' "${failures[@]}"
fi
rm -rf "$san_dir"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
