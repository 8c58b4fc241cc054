#!/usr/bin/env bash
# tests/integration/buildkit_control_test.sh: `kiln workers`, `kiln du` and
# `kiln prune` through the buildkit backend (BuildKit's Control API) against
# the BuildKit inside the local engine's dockerd (docker-unix://), plus the
# ways a wrong address must fail: fast, exit 3, one line naming it; and
# buildctl's TLS flags against throwaway certificates and openssl s_server
# (no standalone buildkitd here: a TLS build itself is not tested). TAP.
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
tls_pids=
cleanup() {
	[ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null
	for p in $tls_pids; do kill "$p" 2>/dev/null; done
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
# expect_fast_fail NAME ADDR REGEX [FLAGS...]: kiln workers --addr ADDR
# FLAGS fails as it should.
expect_fast_fail() {
	local name=$1 addr=$2 re=$3
	shift 3
	k workers --addr "$addr" "$@"
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
	expect_fast_fail "silent unix peer" "unix://$tmp/silent.sock" 'no answer within 4 s, neither as BuildKit \(gRPC\) nor as a Docker Engine API'
	expect_fast_fail "silent docker-unix peer" "docker-unix://$tmp/silent.sock" 'no answer within 4 s'
else
	skip "silent peers time out" "no python3"
fi

k workers --addr 'http://localhost:1234'
expect_eq "an address no backend serves: exit 2" 2 "$rc"

# --- 4. TLS: buildctl's --tlscacert, --tlscert, --tlskey, --tlsservername, --tlsdir
# quote_re TEXT: TEXT as an extended regex matching itself.
quote_re() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }
# expect_usage NAME REGEX KILN-ARGS...: exit 2, the message matches REGEX.
expect_usage() {
	local name=$1 re=$2
	shift 2
	k "$@"
	expect_eq "$name: exit 2" 2 "$rc"
	expect_match "$name: says why" "$re" "$err"
	expect_eq "$name: nothing on stdout" "" "$out"
}
# free_port: a TCP port nothing listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_port PORT: until something accepts on 127.0.0.1:PORT (at most 5 s).
wait_port() {
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

k help workers
expect_match "help workers lists --tlscacert" '--tlscacert FILE' "$out"
k help build
expect_match "help build lists --tlsdir" '--tlsdir DIR' "$out"

if ! command -v openssl >/dev/null || ! command -v python3 >/dev/null; then
	skip "TLS flags" "needs openssl and python3"
	tap_done
	exit
fi

# A throwaway CA, a server certificate for 127.0.0.1 (and buildkitd.test),
# a client certificate: ca.pem, cert.pem, key.pem are buildctl's --tlsdir.
T=$tmp/tls
mkdir -p "$T"
if (
	cd "$T" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=kiln test CA' \
		-keyout ca-key.pem -out ca.pem &&
	openssl req -newkey rsa:2048 -nodes -subj '/CN=buildkitd.test' \
		-keyout server-key.pem -out server.csr &&
	printf 'subjectAltName=DNS:buildkitd.test,IP:127.0.0.1\n' >server.ext &&
	openssl x509 -req -days 1 -in server.csr -CA ca.pem -CAkey ca-key.pem \
		-CAcreateserial -extfile server.ext -out server.pem &&
	openssl req -newkey rsa:2048 -nodes -subj '/CN=kiln' -keyout key.pem -out client.csr &&
	printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
	openssl x509 -req -days 1 -in client.csr -CA ca.pem -CAkey ca-key.pem \
		-CAcreateserial -extfile client.ext -out cert.pem
) >"$tmp/openssl.out" 2>&1; then
	ok "openssl made a CA, a server and a client certificate"
else
	not_ok "openssl made a CA, a server and a client certificate" "$(tail -n 20 "$tmp/openssl.out")"
fi

# (a) files are read before dialling (port 1 would refuse: exit 3); a
# missing one is named.
expect_usage "--tlscacert with a missing file" "$(quote_re "$T/missing.pem"): No such file" \
	workers --addr tcp://127.0.0.1:1 --tlscacert "$T/missing.pem"
expect_eq "--tlscacert with a missing file: one line" 1 "$(lines "$err")"
expect_usage "--tlsdir without ca.pem" "$(quote_re "$tmp/ctx/ca.pem")" \
	du --addr tcp://127.0.0.1:1 --tlsdir "$tmp/ctx"
expect_usage "--tlscacert that is not PEM" "$(quote_re "$T/server.ext") is not PEM" \
	workers --addr tcp://127.0.0.1:1 --tlscacert "$T/server.ext"
expect_usage "--tlskey of another certificate" "$(quote_re "$T/server-key.pem") is not the key" \
	workers --addr tcp://127.0.0.1:1 --tlscert "$T/cert.pem" --tlskey "$T/server-key.pem"

# (b) a client certificate needs its key, and the reverse
expect_usage "--tlscert without --tlskey" '--tlscert needs --tlskey' \
	workers --addr tcp://127.0.0.1:1 --tlscert "$T/cert.pem"
expect_usage "--tlskey without --tlscert (build)" '--tlskey needs --tlscert' \
	build --addr tcp://127.0.0.1:1 --tlskey "$T/key.pem" "$tmp/ctx"
expect_usage "--tlsdir with --tlscacert" '--tlsdir cannot be combined' \
	prune --addr tcp://127.0.0.1:1 --tlsdir "$T" --tlscacert "$T/ca.pem"

# (c) TLS is for tcp:// only; the message names the address
expect_usage "--tlsdir with a docker-unix:// address" "'$(quote_re "$ADDR")'" \
	workers --addr "$ADDR" --tlsdir "$T"
expect_usage "--tlscacert with a unix:// address (du)" "'unix:///run/buildkit/x\\.sock'" \
	du --addr unix:///run/buildkit/x.sock --tlscacert "$T/ca.pem"
expect_usage "--tlsservername with a docker-unix:// address (build)" "$(quote_re "$ADDR")" \
	build --addr "$ADDR" --tlsservername buildkitd.test "$tmp/ctx"

# (d) peers that do not speak TLS: fail within the connect budget, exit 3
port=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
c = []
while True: c.append(s.accept())' "$port" &
tls_pids="$tls_pids $!"
wait_port "$port"
expect_fast_fail "TLS to a silent TCP peer" "tcp://127.0.0.1:$port" 'no gRPC answer within 4 s' \
	--tlsdir "$T"
expect_fast_fail "TLS to a plain HTTP server (registry)" tcp://127.0.0.1:5000 \
	'TLS handshake failed: wrong version number \(the server does not speak TLS\)' \
	--tlscacert "$T/ca.pem"

# (e) openssl s_server: TLS with our certificates, a client certificate
# required (-Verify 1), no HTTP/2. Its stdin is a FIFO opened read-write,
# so it never sees end of file (which would stop it).
mkfifo "$tmp/s_server.in"
# s_server PORT OUTFILE [FLAGS...]: start one in the background.
s_server() {
	local port=$1 outfile=$2
	shift 2
	openssl s_server -accept "$port" -cert "$T/server.pem" -key "$T/server-key.pem" \
		-Verify 1 -CAfile "$T/ca.pem" "$@" <>"$tmp/s_server.in" >"$outfile" 2>&1 &
	tls_pids="$tls_pids $!"
	wait_port "$port"
}
port=$(free_port)
s_server "$port" "$tmp/s_server.out"
expect_fast_fail "TLS to s_server (no ALPN h2)" "tcp://127.0.0.1:$port" \
	'TLS handshake done, but the server does not offer HTTP/2' --tlsdir "$T"
expect_fast_fail "TLS to s_server, a CA that did not sign it" "tcp://127.0.0.1:$port" \
	'certificate verify failed \(the daemon.s certificate is not signed by the --tlscacert CA\)' \
	--tlscacert "$T/cert.pem" --tlscert "$T/cert.pem" --tlskey "$T/key.pem"

port=$(free_port)
s_server "$port" "$tmp/s_server_h2.out" -alpn h2
# the handshake passes (the server name defaults to the address's host,
# 127.0.0.1, in the certificate), then no HTTP/2 SETTINGS come back
expect_fast_fail "TLS to s_server with ALPN h2 but no HTTP/2" "tcp://127.0.0.1:$port" \
	'no gRPC answer within 4 s' --tlsdir "$T"
expect_fast_fail "... with the files and --tlsservername buildkitd.test" "tcp://127.0.0.1:$port" \
	'no gRPC answer within 4 s' --tlscacert "$T/ca.pem" --tlscert "$T/cert.pem" \
	--tlskey "$T/key.pem" --tlsservername buildkitd.test
expect_eq "s_server verified kiln's client certificate and got HTTP/2, twice" 2 \
	"$(tr -d '\000' <"$tmp/s_server_h2.out" | grep -c 'PRI \* HTTP/2\.0')"
# gRPC checks the name after ALPN: this needs the h2 server
expect_fast_fail "TLS to s_server, wrong --tlsservername" "tcp://127.0.0.1:$port" \
	"certificate is not for other\\.test" --tlsdir "$T" --tlsservername other.test
expect_fast_fail "TLS to s_server without a client certificate" "tcp://127.0.0.1:$port" \
	'closed the TLS connection \(does the daemon want a client certificate' \
	--tlscacert "$T/ca.pem"

tap_done
