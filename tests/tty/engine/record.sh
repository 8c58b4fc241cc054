#!/usr/bin/env bash
# tests/tty/engine/record.sh SOCKET CONTEXT-DIR QUERY > FILE.stream
#
# Records an engine's /build response (Docker Engine API, or Podman's
# Docker-compatible API) for the docker backend's stream tests: one line
# per message as it arrived, "+MS JSON", MS being milliseconds since the
# request was sent. tests/unit/test_docker_stream.c feeds the messages to
# the backend's parser at those times. How each file was made is in
# tests/tty/README.md. Needs curl; the engine is the local one
# (scripts/engine.sh) or `podman system service`.
set -euo pipefail
sock=$1 dir=$2 query=$3
t0=$(date +%s%N)
tar -C "$dir" -cf - . |
	curl -sS -N --unix-socket "$sock" -X POST -H 'Content-Type: application/x-tar' \
		--data-binary @- "http://localhost/v1.41/build?$query" |
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		printf '+%d %s\n' $((($(date +%s%N) - t0) / 1000000)) "$line"
	done
