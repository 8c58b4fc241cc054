#!/usr/bin/env bash
# tests/fuzz/fuzz.sh BUILD NAME SECONDS: run the libFuzzer target
# BUILD/fuzz/fuzz_NAME (built by `make fuzz-NAME`) for SECONDS seconds on
# one core, from the seeds in tests/fuzz/corpus/NAME/ plus what earlier runs
# found (BUILD/fuzz/corpus-NAME/, where new inputs go), with
# tests/fuzz/NAME.dict when there is one. Prints one summary line:
#   fuzz NAME: 30 s, 123456 execs, 789 corpus inputs, 0 findings
# and exits 1 when the fuzzer found something: a crash, a leak, a timeout
# or an out-of-memory input, saved as BUILD/fuzz/NAME-crash-… (reproduce
# with `BUILD/fuzz/fuzz_NAME FILE`). The full log: BUILD/fuzz/NAME.log.
# FUZZ_FLAGS adds libFuzzer flags (the Makefile's default: -max_len=8192
# -timeout=10 -rss_limit_mb=2048). FUZZ_FRESH=1 starts from the seeds only
# and keeps nothing (tests/fuzz/run.sh: a bounded time, whatever earlier
# runs found).
set -u
build=$1 name=$2 secs=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(cd "$build" && pwd)/fuzz
bin=$out/fuzz_$name
seeds=$root/tests/fuzz/corpus/$name
found=$out/corpus-$name
if [ "${FUZZ_FRESH:-0}" = 1 ]; then
	found=$(mktemp -d "$out/fresh-$name.XXXXXX")
	trap 'rm -rf "$found"' EXIT
fi
log=$out/$name.log
[ -x "$bin" ] || { echo "fuzz $name: $bin is not built (make fuzz-$name)" >&2; exit 2; }
mkdir -p "$found" "$seeds"
dict=()
[ -f "$root/tests/fuzz/$name.dict" ] && dict=(-dict="$root/tests/fuzz/$name.dict")
rm -f "$out/$name"-{crash,leak,timeout,oom,slow-unit}-*
# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
(cd "$out" && ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1 "$bin" \
	${FUZZ_FLAGS:--max_len=8192 -timeout=10 -rss_limit_mb=2048} \
	-max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$out/$name-" "${dict[@]}" "$found" "$seeds") >"$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
inputs=$(find "$found" -type f | wc -l)
findings=$(find "$out" -maxdepth 1 -name "$name-*-*" -type f | wc -l)
if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then
	findings=1 # died without an artifact (e.g. a deadly signal in setup)
fi
echo "fuzz $name: $secs s, ${execs:-0} execs, $inputs corpus inputs, $findings findings"
if [ "$findings" -ne 0 ]; then
	grep -E 'ERROR|SUMMARY|check failed|runtime error|Test unit written' "$log" | head -n 8 >&2
	echo "fuzz $name: see $log and $out/$name-*" >&2
	exit 1
fi
exit 0
