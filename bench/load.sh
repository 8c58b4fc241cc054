#!/usr/bin/env bash
# bench/load.sh: kiln under load: N jobs from one kiln.lua at -j 16 on one
# dockerd. Each target is a tiny RUN on busybox with a build-arg of its
# index and of the run (so nothing is cached). For N=16 and N=64 (or the
# N given) it runs `kiln build -j 16 --progress=plain` once, polls
# /proc/PID every 50 ms for kiln's open fds and threads, and reads its
# peak RSS from /usr/bin/time -v. Prints one row per N:
#   N  JOBS_DONE  EXIT  WALL_S  PEAK_RSS_KIB  PEAK_FDS  PEAK_THREADS
# and the growth of peak RSS from the first N to the last, per extra job.
#   bench/load.sh [N...]        (default: 16 64)
# Needs the local engine (eval "$(scripts/engine.sh up)").
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/kiln}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }
if [ -z "${DOCKER_HOST:-}" ]; then eval "$(scripts/engine.sh env 2>/dev/null)" || true; fi
/usr/bin/docker version >/dev/null 2>&1 ||
	{ echo "no engine at '${DOCKER_HOST:-}' (eval \"\$(scripts/engine.sh up)\")" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
sizes=${*:-16 64}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-load.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/app"
# shellcheck disable=SC2016 # $I, $RUN: for the Dockerfile
printf 'FROM busybox\nARG I\nARG RUN\nRUN echo "job $I of $RUN" > /out && cat /out\n' >"$tmp/app/Dockerfile"
cat >"$tmp/kiln.lua" <<'LUA'
local n = tonumber(kiln.vars.n)
local names = {}
for i = 1, n do
  local name = string.format("j%03d", i)
  names[#names + 1] = name
  target(name) { context = "app", args = { I = tostring(i), RUN = kiln.vars.run } }
end
group "default" { table.unpack(names) }
LUA

printf '%-5s %-9s %-5s %-7s %-13s %-9s %s\n' N JOBS_DONE EXIT WALL_S PEAK_RSS_KIB PEAK_FDS PEAK_THREADS
first_n='' first_kb=''
for n in $sizes; do
	run="$$-$RANDOM-$n"
	t0=$(date +%s%N)
	(cd "$tmp" && exec /usr/bin/time -v -o "$tmp/time.$n" "$KILN" build -j 16 --progress=plain \
		--var n="$n" --var run="$run") 2>"$tmp/err.$n" &
	sub=$!
	fds=0 thr=0 pid=''
	while kill -0 "$sub" 2>/dev/null; do
		[ -n "$pid" ] || pid=$(pgrep -P "$(pgrep -P "$sub" -x time 2>/dev/null || echo "$sub")" -x kiln 2>/dev/null | head -n 1 || true)
		if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
			f=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
			t=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			if [ "${f:-0}" -gt "$fds" ]; then fds=$f; fi
			if [ "${t:-0}" -gt "$thr" ]; then thr=$t; fi
		fi
		sleep 0.05
	done
	rc=0
	wait "$sub" || rc=$?
	wall=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	kb=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$tmp/time.$n")
	done_n=$(grep -cE '^j[0-9]{3} +- +default +done ' "$tmp/err.$n" || true)
	printf '%-5s %-9s %-5s %-7s %-13s %-9s %s\n' "$n" "$done_n/$n" "$rc" "$wall" "$kb" "$fds" "$thr"
	if [ "$rc" != 0 ]; then tail -n 20 "$tmp/err.$n" | sed 's/^/# /'; fi
	if [ -z "$first_n" ]; then first_n=$n first_kb=$kb; fi
	last_n=$n last_kb=$kb
done
if [ -n "$first_n" ] && [ "$last_n" != "$first_n" ]; then
	awk -v a="$first_kb" -v b="$last_kb" -v n1="$first_n" -v n2="$last_n" 'BEGIN {
		printf "peak RSS growth %d -> %d jobs: %d KiB (%.1f KiB per extra job)\n",
			n1, n2, b - a, (b - a) / (n2 - n1) }'
fi
