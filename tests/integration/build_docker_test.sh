#!/usr/bin/env bash
# tests/integration/build_docker_test.sh: `kiln build` through the docker
# backend (Engine API /build, classic builder) against the local engine's
# dockerd; TAP output. DOCKER_HOST comes from the engine
# (eval "$(scripts/engine.sh env)"); /usr/bin/docker checks the results.
#
#   tests/integration/build_docker_test.sh       KILN=build/kiln by default
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client
TAG=kiln-test/hello:1
OTHER=kiln-test/other:1
IGN=kiln-test/ignore:1

if [ -z "${DOCKER_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
# kiln picks BuildKit first when it is set, and the buildkit backend also
# serves Docker's socket; this test is about the docker backend.
unset BUILDKIT_HOST
export KILN_BACKEND=docker
if [ -z "${DOCKER_HOST:-}" ] || ! "$DOCKER" version >/dev/null 2>&1; then
	echo "Bail out! no engine at '${DOCKER_HOST:-}' (run: eval \"\$(scripts/engine.sh up)\")"
	exit 1
fi
ADDR=$DOCKER_HOST
case $ADDR in
unix://*) ;;
*) echo "Bail out! DOCKER_HOST=$ADDR is not a unix:// socket"; exit 1 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-build-docker.XXXXXX")
cleanup() {
	"$DOCKER" rmi -f "$TAG" "$OTHER" "$IGN" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# kbuild ARGS...: runs kiln build on the engine; sets rc, out (stdout),
# err (stderr, where the progress goes) and secs (wall time).
kbuild() {
	local t0 t1
	t0=$(date +%s%N)
	out=$(timeout 300 "$KILN" build --addr "$ADDR" "$@" 2>"$tmp/stderr")
	rc=$?
	t1=$(date +%s%N)
	err=$(cat "$tmp/stderr")
	secs=$(((t1 - t0) / 1000000000))
}

# --- 1. build and run the example -------------------------------------------
# --no-cache: every step runs (and fills the cache for the rebuild below)
kbuild --progress=plain --no-cache -t "$TAG" examples/hello
expect_eq "hello: kiln build exits 0" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$err" | tail -n 30 | sed 's/^/#   /'
run_out=$("$DOCKER" run --rm "$TAG" 2>&1)
expect_match "hello: the image prints the greeting" "^Hello from kiln!" "$run_out"

# --- 2. plain progress looks like BuildKit's ----------------------------------
expect_match "plain: steps are vertices '#N [1/M] FROM busybox'" \
	'^#[0-9]+ \[1/[0-9]+\] FROM busybox' "$err"
expect_match "plain: a RUN step with its output" '^#[0-9]+ [0-9.]+ prepared 2 lines' "$err"
expect_match "plain: steps end with DONE" '^#[0-9]+ DONE [0-9.]+s' "$err"
expect_match "plain: the image is named" '^#[0-9]+ naming to kiln-test/hello:1' "$err"
expect_eq "plain: the builder's own chatter is not shown" 0 \
	"$(printf '%s\n' "$err" | grep -cE -- '--->|Removing intermediate|Successfully (built|tagged)')"

# --- 3. a second build is served from the cache --------------------------------
first_id=$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)
kbuild --progress=plain -t "$TAG" examples/hello
expect_eq "rebuild: exits 0" 0 "$rc"
cached=$(printf '%s\n' "$err" | grep -cE '^#[0-9]+ CACHED$')
expect_eq "rebuild: the 4 steps after each FROM are CACHED" 4 "$cached"
expect_eq "rebuild: same image" "$first_id" "$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)"

# --- 4. a failing RUN step ------------------------------------------------------
mkdir -p "$tmp/fail"
printf 'FROM busybox\nRUN echo boom; exit 3\n' >"$tmp/fail/Dockerfile"
kbuild --progress=plain "$tmp/fail"
expect_eq "failing step: exit code 1" 1 "$rc"
expect_match "failing step: its output is shown" '^#[0-9]+ [0-9.]+ boom' "$err"
expect_match "failing step: the error names the step and exit code 3" \
	'^(kiln|ERROR): \[2/2\] RUN echo boom; exit 3: .*returned a non-zero code: 3$' "$err"

# --- 5. JSON progress -------------------------------------------------------------
kbuild --progress=json -t "$TAG" examples/hello
expect_eq "json: exits 0" 0 "$rc"
bad=$(printf '%s\n' "$err" | jq -R -c 'fromjson? // "BAD" | if type == "object" then empty else . end' 2>&1)
expect_eq "json: one JSON object per line" "" "$bad"
types=$(printf '%s\n' "$err" | jq -r '.type' 2>/dev/null | sort -u | tr '\n' ' ')
expect_match "json: job.started and job.finished" 'job\.finished .*job\.started' "$types"
fin=$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") | "\(.status) \(.config_digest)"' 2>/dev/null)
expect_eq "json: job.finished has status 0 and the image ID" "0 $first_id" "$fin"

# --- 6. an engine that is not there ---------------------------------------------
t0=$(date +%s%N)
out=$(timeout 20 "$KILN" build --progress=quiet --addr unix:///nonexistent.sock examples/hello 2>"$tmp/stderr")
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
err=$(cat "$tmp/stderr")
expect_eq "unreachable engine: exit code 3" 3 "$rc"
if [ "$ms" -lt 5000 ]; then ok "unreachable engine: fails within 5 s (${ms} ms)"; else
	not_ok "unreachable engine: fails within 5 s" "took ${ms} ms"; fi
expect_eq "unreachable engine: one line naming the address and the cause" \
	"kiln: cannot reach docker at unix:///nonexistent.sock: connect: No such file or directory" "$err"

# --- 7. what the classic builder cannot do -----------------------------------------
kbuild --progress=quiet --secret id=x,src=/etc/hostname examples/hello
expect_eq "--secret: exit code 2" 2 "$rc"
expect_match "--secret: one clear line pointing to the buildkit backend" \
	'^kiln: --secret id=x,src=/etc/hostname: not supported by the docker backend .*buildkit backend' "$err"
kbuild --progress=quiet -o type=local,dest="$tmp/out" examples/hello
expect_match "-o type=local: refused the same way" '^kiln: -o type=local,dest=.*not supported by the docker backend' "$err"

# --- 8. -f outside the context, --build-arg, --label, --target ------------------------
multistage_ctx "$tmp"
kiln_abs=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
(cd "$tmp" && timeout 300 "$kiln_abs" build --addr "$ADDR" --progress=quiet \
	-f df/app.Dockerfile --target base --build-arg WORD=kiln --label org.kiln.test=yes \
	-t "$OTHER" ctx) >/dev/null 2>"$tmp/stderr"
rc=$?
expect_eq "-f outside the context (relative to the cwd), --target: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/stderr"
expect_eq "--build-arg and the context file reach the build" "word=kiln from the context" \
	"$("$DOCKER" run --rm "$OTHER" sh -c 'cat /word.txt /data.txt' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "--label is set" yes "$("$DOCKER" image inspect -f '{{index .Config.Labels "org.kiln.test"}}' "$OTHER" 2>&1)"
expect_eq "--target stops at the stage" no "$("$DOCKER" run --rm "$OTHER" sh -c 'test -e /never.txt && echo yes || echo no' 2>&1)"

# --- 9. a missing Dockerfile ---------------------------------------------------------
kbuild --progress=quiet -f "$tmp/nope/Dockerfile" examples/hello
expect_eq "missing Dockerfile: exit code 2" 2 "$rc"
expect_eq "missing Dockerfile: one line naming it" \
	"kiln: $tmp/nope/Dockerfile: cannot read the Dockerfile: No such file or directory" "$err"

# --- 10. SIGINT cancels a running step -----------------------------------------------
mark="kiln-cancel-$$-$RANDOM"
mkdir -p "$tmp/slow"
printf 'FROM busybox\nRUN echo %s; sleep 60\n' "$mark" >"$tmp/slow/Dockerfile"
"$KILN" build --addr "$ADDR" --progress=plain "$tmp/slow" 2>"$tmp/slow.err" &
pid=$!
for _ in $(seq 100); do grep -q "$mark" "$tmp/slow.err" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s%N)
kill -INT "$pid"
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "SIGINT: exit code 130" 130 "$rc"
if [ "$ms" -lt 5000 ]; then ok "SIGINT: stops within 5 s (${ms} ms)"; else
	not_ok "SIGINT: stops within 5 s" "took ${ms} ms"; fi
left=""
for _ in $(seq 50); do
	left=$("$DOCKER" ps -a --no-trunc --format '{{.ID}} {{.Command}}' | grep -- "$mark")
	[ -z "$left" ] && break
	sleep 0.1
done
expect_eq "SIGINT: the step's container is gone" "" "$left"

# --- 11. .dockerignore: exceptions, "**", the files always sent ----------------------
ign=$tmp/ign
mkdir -p "$ign/logs" "$ign/sub/deep" "$ign/empty"
for f in app.txt secret.txt a.tmp keep.tmp logs/x.log sub/deep/old.bak sub/deep/ok.txt; do
	echo "$f" >"$ign/$f"
done
printf 'FROM busybox\nCOPY . /ctx/\n' >"$ign/Dockerfile"
printf '\xef\xbb\xbf# comment\r\nsecret.txt\r\n/logs/\n*.tmp\n!keep.tmp\n**/*.bak\nDockerfile\n.dockerignore\n' \
	>"$ign/.dockerignore"
kbuild --progress=quiet -t "$IGN" "$ign"
expect_eq ".dockerignore: exit 0 (the ignored Dockerfile is still sent)" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$err" | tail -n 20 | sed 's/^/#   /'
expect_eq ".dockerignore: ignored files are absent from the image, '!keep.tmp' is back" \
	"/ctx /ctx/app.txt /ctx/empty /ctx/keep.tmp /ctx/sub /ctx/sub/deep /ctx/sub/deep/ok.txt" \
	"$("$DOCKER" run --rm "$IGN" find /ctx 2>&1 | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"

# <Dockerfile>.dockerignore next to the Dockerfile wins over the context's
printf 'FROM busybox\nCOPY . /ctx/\n' >"$ign/sub/app.Dockerfile"
printf 'app.txt\nsub/deep\n' >"$ign/sub/app.Dockerfile.dockerignore"
kbuild --progress=quiet -f "$ign/sub/app.Dockerfile" -t "$IGN" "$ign"
expect_eq "<Dockerfile>.dockerignore: exit 0" 0 "$rc"
expect_eq "<Dockerfile>.dockerignore: it is applied instead of .dockerignore" \
	"secret.txt a.tmp logs/x.log sub/app.Dockerfile" \
	"$("$DOCKER" run --rm "$IGN" sh -c 'cd /ctx && for f in app.txt secret.txt a.tmp \
		logs/x.log sub/deep/ok.txt sub/app.Dockerfile; do test -e $f && echo $f; done' 2>&1 |
		tr '\n' ' ' | sed 's/ $//')"

# a bad pattern fails the build before anything is sent, naming the file
printf 'ok\n[a-\n' >"$ign/.dockerignore"
kbuild --progress=quiet "$ign"
expect_eq "bad .dockerignore pattern: exit code 2" 2 "$rc"
expect_eq "bad .dockerignore pattern: one line naming the file and the pattern" \
	"kiln: $ign/.dockerignore: invalid pattern '[a-': unterminated character class" "$err"

tap_done
