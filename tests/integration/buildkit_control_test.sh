#!/usr/bin/env bash
# tests/integration/buildkit_control_test.sh: `kiln workers`, `kiln du` and
# `kiln prune` through the buildkit backend (BuildKit's Control API) against
# the BuildKit inside the local engine's dockerd (docker-unix://), plus the
# ways a wrong address must fail: fast, exit 3, one line naming it. TAP.
# The engine comes from `eval "$(scripts/engine.sh env)"`; /usr/bin/docker
# makes build cache for du/prune to find.
#
#   tests/integration/buildkit_control_test.sh     KILN=build/kiln by default
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client

if [ -z "${DOCKER_HOST:-}" ] || [ -z "${BUILDKIT_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
if [ -z "${DOCKER_HOST:-}" ] || ! "$DOCKER" version >/dev/null 2>&1; then
	echo "Bail out! no engine at '${DOCKER_HOST:-}' (run: eval \"\$(scripts/engine.sh up)\")"
	exit 1
fi
ADDR=${BUILDKIT_HOST:-docker-unix://${DOCKER_HOST#unix://}}
case $ADDR in
docker-unix://*) ;;
*) echo "Bail out! BUILDKIT_HOST=$ADDR is not docker-unix:// (this test is for dockerd's BuildKit)"; exit 1 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-buildkit-control.XXXXXX")
silent_pid=
cleanup() {
	[ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null
	[ -s "$tmp/iid" ] && "$DOCKER" rmi -f "$(cat "$tmp/iid")" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# k ARGS...: runs kiln; sets rc, out (stdout), err (stderr) and ms (wall).
k() {
	local t0 t1
	t0=$(date +%s%N)
	out=$(timeout 60 "$KILN" "$@" 2>"$tmp/stderr")
	rc=$?
	t1=$(date +%s%N)
	err=$(cat "$tmp/stderr")
	ms=$(((t1 - t0) / 1000000))
}

lines() { [ -z "$1" ] && echo 0 || printf '%s\n' "$1" | wc -l; }

# --- 1. workers ---------------------------------------------------------------
k workers --addr "$ADDR"
expect_eq "workers: exits 0" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$err" | sed 's/^/#   /'
expect_match "workers: a worker with linux/amd64" 'linux/amd64' "$out"
if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
	expect_match "workers: linux/arm64 (qemu binfmt) among its platforms" 'linux/arm64' "$out"
else
	skip "workers: linux/arm64 among its platforms" "no qemu-aarch64 binfmt"
fi

k workers --addr "$ADDR" --format json
expect_eq "workers --format json: exits 0" 0 "$rc"
expect_match "workers --format json: platforms listed" '"linux/amd64"' "$out"

# BUILDKIT_HOST is what kiln uses without --addr.
k workers
expect_eq "workers without --addr (BUILDKIT_HOST): exits 0" 0 "$rc"

# unix:// naming Docker's socket: the backend notices HTTP/1.1 and uses
# dockerd's /grpc, as docker-unix:// does.
k workers --addr "unix://${ADDR#docker-unix://}"
expect_eq "workers --addr unix://DOCKER_SOCKET: exits 0" 0 "$rc"
expect_match "workers --addr unix://DOCKER_SOCKET: lists linux/amd64" 'linux/amd64' "$out"

# --- 2. du and prune around a build -------------------------------------------
k du --addr "$ADDR"
expect_eq "du: exits 0" 0 "$rc"
expect_match "du: prints Total:" '^Total:' "$out"

stamp="kiln-du-test-$$-$(date +%s%N)"
mkdir -p "$tmp/ctx"
printf 'FROM busybox\nRUN echo %s > /stamp\n' "$stamp" >"$tmp/ctx/Dockerfile"
if DOCKER_BUILDKIT=1 "$DOCKER" -H "$DOCKER_HOST" build -q --iidfile "$tmp/iid" "$tmp/ctx" \
	>"$tmp/build.out" 2>&1; then
	ok "docker build (BuildKit) made build cache"
else
	not_ok "docker build (BuildKit) made build cache" "$(tail -n 20 "$tmp/build.out")"
fi

k du --addr "$ADDR"
expect_eq "du after a build: exits 0" 0 "$rc"
expect_match "du after a build: a table header" '^ID +RECLAIMABLE +SIZE' "$out"
expect_match "du after a build: records (25-char BuildKit IDs)" '^[a-z0-9]{25} ' "$out"
expect_match "du after a build: Total:" '^Total:' "$out"

k du --addr "$ADDR" --verbose
expect_eq "du --verbose: exits 0" 0 "$rc"
expect_match "du --verbose: the RUN step's record is described" "exec /bin/sh -c echo $stamp" "$out"

k du --addr "$ADDR" --filter "description~=$stamp" --verbose
expect_eq "du --filter: exits 0" 0 "$rc"
expect_match "du --filter: keeps the matching record" "$stamp" "$out"
expect_eq "du --filter: drops the others (no source.local record)" 0 \
	"$(printf '%s\n' "$out" | grep -c 'local source')"

k du --addr "$ADDR" --filter 'not a filter'
expect_eq "du --filter with a bad filter: exit 2" 2 "$rc"
expect_eq "du --filter with a bad filter: one line" 1 "$(lines "$err")"

k prune --addr "$ADDR" --keep-duration 24h
expect_eq "prune --keep-duration 24h: exits 0" 0 "$rc"
k du --addr "$ADDR" --verbose
expect_match "prune --keep-duration 24h: keeps the new records" "$stamp" "$out"

k prune --addr "$ADDR" --all --verbose
expect_eq "prune --all: exits 0" 0 "$rc"
expect_match "prune --all: prints Total:" '^Total:' "$out"
expect_match "prune --all: lists what it freed (the RUN step)" "$stamp" "$out"
k du --addr "$ADDR" --verbose
expect_eq "prune --all: the records are gone from du" 0 \
	"$(printf '%s\n' "$out" | grep -c -- "$stamp")"

# --- 3. wrong addresses: exit 3 within 5 s, one line naming the address ---------
# expect_fast_fail NAME ADDR REGEX: kiln workers --addr ADDR fails as it should.
expect_fast_fail() {
	local name=$1 addr=$2 re=$3
	k workers --addr "$addr"
	expect_eq "$name: exit 3" 3 "$rc"
	if [ "$ms" -lt 5000 ]; then ok "$name: within 5 s (${ms} ms)"; else not_ok "$name: within 5 s" "took ${ms} ms"; fi
	expect_eq "$name: one line on stderr" 1 "$(lines "$err")"
	expect_match "$name: the line names the address" "$(printf '%s' "$addr" | sed 's/[][\.*^$]/\\&/g')" "$err"
	expect_match "$name: and the cause" "$re" "$err"
	expect_eq "$name: nothing on stdout" "" "$out"
}

expect_fast_fail "unreachable unix socket" unix:///nonexistent.sock 'No such file or directory'
expect_fast_fail "unreachable docker-unix socket" docker-unix:///nonexistent.sock 'No such file or directory'
# the local registry: an HTTP/1.1 server, not gRPC
expect_fast_fail "wrong protocol (registry, tcp://127.0.0.1:5000)" tcp://127.0.0.1:5000 'HTTP/1'
expect_fast_fail "refused tcp port" tcp://127.0.0.1:1 'refused'
expect_fast_fail "not a socket" unix:///etc/hostname 'not a socket'

# A peer that accepts and never answers: the connect budget (4 s) ends it.
if command -v python3 >/dev/null; then
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
c = []
while True: c.append(s.accept())' "$tmp/silent.sock" &
	silent_pid=$!
	for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$tmp/silent.sock" ] && break; sleep 0.1; done
	expect_fast_fail "silent unix peer" "unix://$tmp/silent.sock" 'no gRPC answer within 4 s'
	expect_fast_fail "silent docker-unix peer" "docker-unix://$tmp/silent.sock" 'no answer within 4 s'
else
	skip "silent peers time out" "no python3"
fi

k workers --addr 'http://localhost:1234'
expect_eq "an address no backend serves: exit 2" 2 "$rc"

tap_done
