#!/usr/bin/env bash
# CPU cost of the progress renderers: a generated event stream of LINES log
# lines (default 1,000,000; CHUNK lines per vertex.log event, default 1;
# four steps writing at once) replayed with `kiln replay` through each
# renderer to /dev/null. Prints CPU seconds (user + system, GNU time) per
# renderer, the best of RUNS runs, and the same for `--progress=quiet`
# (decoding the JSON and the event bus without a renderer), the floor
# every renderer stands on.
#   bench/render.sh [LINES [RUNS [CHUNK]]]       (default 1000000 3 1)
# tty writes to /dev/null as to a terminal it cannot measure (80x24): it
# still composes and writes its frames (at most 10 a second); tty -v also
# prints every log line.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
runs=${2:-3}
chunk=${3:-1}
KILN=${KILN:-build/kiln}
TIME=/usr/bin/time
[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }
export LC_ALL=C.UTF-8
unset KILN_TTY_CLOCK KILN_TTY_LOG_LINES
"$TIME" -f %U true 2>/dev/null || { echo "needs GNU time (Debian package time)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-render.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stream=$tmp/stream.jsonl

# The stream: job.started, four RUN vertices started, LINES log events
# round-robin over them (10 µs apart), the vertices completed, job.finished.
awk -v n="$lines" -v chunk="$chunk" '
function ts(ns,   s) { s = int(ns / 1000000000); return sprintf("2026-11-20T10:%02d:%02d.%09dZ", int(s / 60) % 60, s % 60, ns % 1000000000) }
function head(type, ns) { return "{\"schema\":1,\"type\":\"" type "\",\"time\":\"" ts(ns) "\",\"job\":{\"id\":\"default\",\"target\":\"default\",\"platform\":\"\",\"builder\":\"bench\",\"number\":1}" }
function dg(k) { return sprintf("sha256:%064d", k + 1) }
BEGIN {
	print head("job.started", 0) ",\"frontend\":\"dockerfile\",\"backend\":\"buildkit\",\"steps\":4}"
	for (k = 0; k < 4; k++)
		print head("vertex", 1000) ",\"digest\":\"" dg(k) "\",\"name\":\"[s" k " 2/2] RUN ./make-lots-of-output " k "\",\"inputs\":[],\"started\":\"" ts(1000) "\",\"cached\":false}"
	t = 2000
	for (i = 0; i < n; ) {
		t += 10000 * chunk
		k = int(i / chunk) % 4
		data = ""
		for (c = 0; c < chunk && i < n; c++) {
			data = data "[" i "] compiling src/module_" i % 977 ".c -> obj/module_" i % 977 ".o\\n"
			i++
		}
		print head("vertex.log", t) ",\"vertex\":\"" dg(k) "\",\"stream\":1,\"timestamp\":\"" ts(t) "\",\"data\":\"" data "\"}"
		events++
	}
	for (k = 0; k < 4; k++)
		print head("vertex", t + 1000) ",\"digest\":\"" dg(k) "\",\"name\":\"[s" k " 2/2] RUN ./make-lots-of-output " k "\",\"inputs\":[],\"started\":\"" ts(1000) "\",\"completed\":\"" ts(t + 1000) "\",\"cached\":false}"
	print head("job.finished", t + 2000) ",\"status\":0,\"metrics\":{\"duration_ns\":0,\"vertices\":0,\"completed\":0,\"cached\":0,\"failed\":0,\"warnings\":0,\"log_bytes\":0}}"
}' >"$stream"
size=$(du -m "$stream" | cut -f1)

cpu() { # cpu ARGS...: best user+sys seconds of RUNS replays
	local best="" r
	for ((i = 0; i < runs; i++)); do
		"$TIME" -f '%U %S' -o "$tmp/t" "$KILN" replay "$@" "$stream" >/dev/null 2>"$tmp/err" ||
			{ cat "$tmp/err" >&2; exit 1; }
		r=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/t")
		if [ -z "$best" ] || [ "$(echo "$r < $best" | bc)" = 1 ]; then best=$r; fi
	done
	echo "$best"
}

events=$(wc -l <"$stream")
echo "stream: $lines log lines, $chunk per event, $events events, ${size} MB; best of $runs runs"
floor=$(cpu --progress=quiet)
printf '%-22s %8s %18s\n' renderer "CPU s" "over quiet (s)"
printf '%-22s %8s %18s\n' "quiet (decode only)" "$floor" -
for r in "plain" "json" "tty" "tty -v"; do
	set -- $r
	args=(--progress="$1")
	[ $# -gt 1 ] && args+=(--verbose)
	s=$(cpu "${args[@]}")
	printf '%-22s %8s %18s\n' "$r" "$s" "$(echo "$s - $floor" | bc)"
done
