#!/usr/bin/env bash
# Start-up cost of kiln's commands, against a peer on the same machine in
# the same run: `docker --version` (Debian's 20.10 client, also a native
# CLI). Prints mean milliseconds per run and the ratio to the peer.
#   bench/startup.sh [RUNS]        (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
KILN=${KILN:-build/kiln}
peer=/usr/bin/docker

mean_ms() { # mean_ms CMD...: mean wall time of RUNS runs, in ms
	local t0 t1
	t0=$(date +%s%N)
	for ((i = 0; i < runs; i++)); do "$@" >/dev/null 2>&1; done
	t1=$(date +%s%N)
	echo "scale=3; ($t1 - $t0) / $runs / 1000000" | bc
}

[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }
peer_ms=$(mean_ms "$peer" --version)
printf '%-28s %8s %8s\n' command ms/run ratio
printf '%-28s %8s %8s\n' "docker --version (peer)" "$peer_ms" 1.00
for args in "version" "plugins" "help"; do
	# shellcheck disable=SC2086
	ms=$(mean_ms "$KILN" $args)
	printf '%-28s %8s %8s\n' "kiln $args" "$ms" "$(echo "scale=2; $ms / $peer_ms" | bc)"
done
