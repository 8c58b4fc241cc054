#!/usr/bin/env bash
# tests/fuzz/run.sh: a short, bounded run of each libFuzzer target (make
# fuzz-dockerfile's and make fuzz-melange's; FUZZ_TIME seconds each,
# default 5) as part of tests/run.sh. TAP. Runs for the plain build only
# (not again per sanitizer or memcheck build) and skips without clang.
# A finding (crash, leak, timeout) fails the suite; `make fuzz` with a
# longer FUZZ_TIME is the real search.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

t=${KILN_FUZZ_TIME:-5}
if [ "${BUILD:-build}" != build ] || [ -n "${WRAP:-}" ]; then
	echo "1..0 # SKIP the fuzz targets run once, for the plain build"
	exit 0
fi
if ! command -v clang >/dev/null 2>&1; then
	skip "fuzz: dockerfile" "clang is not installed (scripts/deps.sh)"
	skip "fuzz: melange" "clang is not installed (scripts/deps.sh)"
	tap_done
	exit
fi
for target in fuzz-dockerfile fuzz-melange; do
	out=$(make -s "$target" FUZZ_TIME="$t" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then
		ok "$target: ${t}s without findings"
	else
		not_ok "$target: ${t}s without findings" "$(printf '%s\n' "$out" | tail -n 20)"
	fi
done
tap_done
