#!/usr/bin/env bash
# Parallel builds from a kiln.lua: 12 independent targets, each FROM busybox
# with its own `RUN … sleep 2`, built with -j 6 and with -j 1 on the local
# engine (the BuildKit inside its dockerd). Every run gets fresh step
# contents, so nothing comes from the cache. Prints the wall time of each
# and the ratio (aim: -j 6 well under half of -j 1).
#   eval "$(scripts/engine.sh up)"; bench/plan.sh [ROUNDS]   (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
KILN=${KILN:-build/kiln}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }
[ -n "${BUILDKIT_HOST:-}" ] || { echo "no engine: eval \"\$(scripts/engine.sh up)\"" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-plan.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/app"
printf 'FROM busybox\nARG NAME\nARG RUN_ID\nRUN echo "$NAME $RUN_ID" && sleep 2\n' > "$dir/app/Dockerfile"
cat > "$dir/kiln.lua" <<'EOF'
local names = {}
for i = 1, 12 do
  names[#names + 1] = "t" .. i
  target("t" .. i) { context = "app", args = { NAME = "t" .. i, RUN_ID = kiln.vars.run } }
end
group "default" { table.unpack(names) }
EOF

# wall MS JOBS: one build, fresh steps; prints its wall time in ms
wall() {
	local t0 t1
	t0=$(date +%s%N)
	(cd "$dir" && "$KILN" build -j "$1" --progress=quiet --var run="$$-$RANDOM-$RANDOM") \
		>/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

printf '%-6s %10s %10s %7s %s\n' round "-j 1 ms" "-j 6 ms" ratio aim
for ((r = 1; r <= rounds; r++)); do
	# alternate the order, so drift in the machine hits both alike
	if ((r % 2)); then s=$(wall 1); p=$(wall 6); else p=$(wall 6); s=$(wall 1); fi
	printf '%-6s %10s %10s %7s %s\n' "$r" "$s" "$p" "$(echo "scale=2; $p / $s" | bc)" "<0.50"
done
