#!/usr/bin/env bash
# tests/fuzz/run.sh: a short, bounded run of each libFuzzer target (`make
# fuzz-NAME` for every NAME of the Makefile's FUZZ_TARGETS; KILN_FUZZ_TIME
# seconds each, default 5) as part of tests/run.sh. TAP. Runs for the plain
# build only (not again per sanitizer or memcheck build) and skips without
# clang. The targets are built first (not timed); a finding (crash, leak,
# timeout, out of memory) fails the suite. `make fuzz FUZZ_SECONDS=N` and
# bench/fuzz-long.sh are the real search (docs/reliability.md).
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

t=${KILN_FUZZ_TIME:-5}
targets=$(make -s --no-print-directory -f Makefile -f - fuzz-targets <<'MK'
fuzz-targets: ; @echo $(FUZZ_TARGETS)
MK
)
if [ "${BUILD:-build}" != build ] || [ -n "${WRAP:-}" ]; then
	echo "1..0 # SKIP the fuzz targets run once, for the plain build"
	exit 0
fi
if ! command -v clang >/dev/null 2>&1; then
	for name in $targets; do
		skip "fuzz: $name" "clang is not installed (scripts/deps.sh)"
	done
	tap_done
	exit
fi
for name in $targets; do
	out=$(make -s -j2 "build/fuzz/fuzz_$name" 2>&1 && FUZZ_FRESH=1 make -s "fuzz-$name" FUZZ_SECONDS="$t" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then
		ok "fuzz-$name: ${t}s without findings ($(printf '%s\n' "$out" | sed -n "s/^fuzz $name: [0-9]* s, //p"))"
	else
		not_ok "fuzz-$name: ${t}s without findings" "$(printf '%s\n' "$out" | tail -n 20)"
	fi
done
tap_done
