#!/usr/bin/env bash
# tests/integration/faults_test.sh: kiln under faults and hostile input
# (issue 14). TAP. The cases live in tests/faults/ and are sourced here in
# order, so they run once in the test command (tests/*/run.sh would run
# per build) and share one private engine:
#
#   signals.sh   SIGINT/SIGTERM mid-build: 130/143, the solve cancelled
#   hostile.sh   symlinks and .. out of the context, COPY ../x, a 10 MB
#                Dockerfile line, a 1 GB sparse file: refused or built,
#                nothing outside read, memory bounded
#   diskfull.sh  a local export into a full filesystem: clear error, the
#                previous output intact
#   registry.sh  the registry stopped during a push (private engine)
#   engine.sh    dockerd killed mid-solve, alone and in a builder pool
#                (private engine, killed by the pid in its pid file)
#
# The private engine (tests/faults/lib.sh) is the only one stopped or
# killed; the shared engine ($DOCKER_HOST) is only built on.
# FAULTS=signals,hostile runs a subset.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/faults/lib.sh

need_engine
need_tools ps awk flock ip mount
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-faults.XXXXXX")
cleanup() {
	priv_down
	local m
	for m in $(awk -v d="$tmp" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cases=${FAULTS:-signals,hostile,diskfull,registry,engine}
for c in ${cases//,/ }; do
	echo "# --- tests/faults/$c.sh"
	# shellcheck disable=SC1090
	. "tests/faults/$c.sh"
done
tap_done
