#!/usr/bin/env bash
# bench/fuzz-long.sh MINUTES [JOBS]: the long fuzz run (docs/reliability.md,
# "Fuzzing"): builds every libFuzzer target, then runs each for MINUTES
# minutes under nice -n 19, JOBS at a time (default 1), keeping what they
# find in build/fuzz/corpus-NAME. Prints one line per target (seconds,
# execs, corpus size, findings) and a total; exits 1 when any target found
# something (the inputs: build/fuzz/NAME-crash-… and the like).
# BUILD=dir picks another build directory.
set -u
cd "$(dirname "$0")/.."
min=${1:?usage: bench/fuzz-long.sh MINUTES [JOBS]}
jobs=${2:-1}
build=${BUILD:-build}
secs=$((min * 60))
targets=$(make -s --no-print-directory -f Makefile -f - fuzz-targets 2>/dev/null <<'MK'
fuzz-targets: ; @echo $(FUZZ_TARGETS)
MK
)
[ -n "$targets" ] || { echo "fuzz-long: no FUZZ_TARGETS in the Makefile" >&2; exit 2; }
for t in $targets; do
	make -s -j2 BUILD="$build" "$build/fuzz/fuzz_$t" || exit 2
done
# the golden cases are the dockerfile and melange seeds (as make fuzz-NAME)
mkdir -p tests/fuzz/corpus/dockerfile tests/fuzz/corpus/melange
cp tests/dockerfile/cases/*.Dockerfile tests/dockerfile/errors/*.Dockerfile \
	tests/fuzz/corpus/dockerfile/
cp tests/melange/*.yaml tests/melange/bad/*.yaml tests/fuzz/corpus/melange/ 2>/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
running=0
for t in $targets; do
	nice -n 19 tests/fuzz/fuzz.sh "$build" "$t" "$secs" >"$out/$t" 2>&1 &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
rc=0 total=0
echo "target         seconds        execs   corpus  findings"
for t in $targets; do
	line=$(grep "^fuzz $t:" "$out/$t")
	execs=$(printf '%s\n' "$line" | sed -n 's/.* s, \([0-9]*\) execs.*/\1/p')
	corpus=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) corpus inputs.*/\1/p')
	found=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) findings.*/\1/p')
	printf '%-12s %9s %12s %8s %9s\n' "$t" "$secs" "${execs:-?}" "${corpus:-?}" "${found:-?}"
	total=$((total + ${execs:-0}))
	if [ "${found:-1}" != 0 ]; then
		rc=1
		sed -n '2,$p' "$out/$t" | sed 's/^/    /'
	fi
done
echo "total execs: $total"
exit $rc
