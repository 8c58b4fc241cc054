#!/usr/bin/env bash
# Cost of planning: `kiln print` on a generated kiln.lua of 1,000 matrix
# targets (a 10 x 10 x 10 matrix, each target inheriting a template and
# setting args, labels, tags and two platforms, all in one group), and
# `kiln version`, the floor of any kiln run. `docker buildx bake --print`,
# the natural peer, is not installed here, so the numbers are absolute.
# Prints the median and mean wall time per run and kiln print's peak RSS,
# and /bin/true's time: what starting any process costs on this machine.
#   bench/print.sh [RUNS]          (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
KILN=${KILN:-build/kiln}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-print.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cat > "$dir/kiln.lua" <<'EOF'
local registry = kiln.env("REGISTRY", "localhost:5000")
target "_base" {
  context = "app",
  args = { BASE = "debian:bookworm", COMMIT = kiln.vars.commit or "dev" },
  labels = { ["org.opencontainers.image.vendor"] = "kiln" },
  cache_from = { "type=registry,ref=" .. registry .. "/cache:base" },
  secrets = { "id=token,env=TOKEN" },
}
local names = {}
for _, m in ipairs(matrix {
  app = { "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9" },
  os = { "o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9" },
  version = { "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9" },
}) do
  local name = m.app .. "-" .. m.os .. "-" .. m.version
  names[#names + 1] = name
  target(name) {
    inherits = { "_base" },
    args = { APP = m.app, OS = m.os, VERSION = m.version },
    labels = { ["org.example.matrix"] = name },
    tags = { registry .. "/" .. m.app .. ":" .. m.version .. "-" .. m.os },
    platforms = { "linux/amd64", "linux/arm64" },
  }
end
group "default" { table.unpack(names) }
EOF
targets=$(cd "$dir" && "$KILN" print --var commit=abc | jq '.target | length')
[ "$targets" = 1000 ] || { echo "expected 1000 targets, kiln print gave $targets" >&2; exit 1; }
bytes=$(cd "$dir" && "$KILN" print --var commit=abc | wc -c)

# stats CMD...: "median mean" of RUNS runs, in ms (after one warm-up run)
stats() {
	local t0 t1
	"$@" >/dev/null 2>&1
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000))
	done | sort -n | awk '{ v[NR] = $1; s += $1 }
		END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		      printf "%.2f %.2f\n", m / 1000, s / NR / 1000 }'
}

rss="-"
if /usr/bin/time -f %M true >/dev/null 2>&1; then
	rss=$(cd "$dir" && /usr/bin/time -f %M "$KILN" print --var commit=abc 2>&1 >/dev/null | tail -1)
	rss=$(echo "scale=1; $rss / 1024" | bc)" MB"
fi
read -r p_med p_mean < <(cd "$dir" && stats "$KILN" print --var commit=abc)
read -r v_med v_mean < <(stats "$KILN" version)
read -r t_med t_mean < <(stats /bin/true)
printf '%-44s %6s %9s %9s %7s %9s\n' case runs "median ms" "mean ms" aim "peak RSS"
printf '%-44s %6s %9s %9s %7s %9s\n' "kiln print, 1000 matrix targets ($bytes B)" "$runs" \
	"$p_med" "$p_mean" "<50" "$rss"
printf '%-44s %6s %9s %9s %7s %9s\n' "kiln version" "$runs" "$v_med" "$v_mean" "<5" "-"
printf '%-44s %6s %9s %9s %7s %9s\n' "/bin/true (fork+exec floor of this machine)" "$runs" \
	"$t_med" "$t_mean" "-" "-"
