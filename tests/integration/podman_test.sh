#!/usr/bin/env bash
# tests/integration/podman_test.sh: `kiln build` on Podman's Docker-compatible
# service (`podman system service`, started by scripts/engine.sh beside
# dockerd: $KILN_PODMAN_HOST), through the docker backend; TAP. The images
# are checked with podman itself (podman --remote on the same socket).
#
#   1. DOCKER_HOST at Podman: kiln picks the docker backend and says why
#      (--debug, job.started); examples/hello builds, runs and prints its
#      greeting; Podman's "[S/T] STEP N/M:" lines are steps named as BuildKit
#      names them ("[build 1/3] FROM busybox AS build"), with their output;
#   2. a rebuild is served from Podman's cache, same image;
#   3. a multi-stage Dockerfile with -f, --target, --build-arg, --label;
#   4. a failing RUN: exit 1, the error names the step and the exit code;
#   5. JSON progress: job.finished has status 0 and the image ID;
#   6. RUN --mount=type=cache and type=secret: Buildah builds them;
#   7. what Podman 4.3's Buildah cannot parse (heredoc, COPY --link, RUN
#      --network) is refused before any upload: exit 2, naming the
#      Dockerfile's line and the engine's address;
#   8. a kiln.lua builder at Podman's socket builds there;
#   9. SIGINT cancels a running step.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

need_tools jq podman
if [ -z "${KILN_PODMAN_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
PM_HOST=${KILN_PODMAN_HOST:-}
pm() { podman --remote --url "$PM_HOST" "$@"; }
if [ -z "$PM_HOST" ] || ! pm version >/dev/null 2>&1; then
	echo "Bail out! no Podman service at '$PM_HOST' (run: scripts/engine.sh up, or podman-up)"
	exit 1
fi
# the Podman socket decides alone: no BuildKit address, no forced backend
unset BUILDKIT_HOST KILN_BACKEND DOCKER_BUILDKIT
export DOCKER_HOST=$PM_HOST

run_id=$$-$RANDOM
TAG=kiln-pm-test/hello:$run_id
OTHER=kiln-pm-test/other:$run_id
LUA=kiln-pm-test/lua:$run_id
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-podman.XXXXXX")
kiln_pid=
cleanup() {
	[ -n "$kiln_pid" ] && kill "$kiln_pid" 2>/dev/null
	pm rmi -f "$TAG" "$OTHER" "$LUA" "kiln-pm-test/mount:$run_id" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

kbuild() { # kbuild ARGS...: kiln build; sets rc, out, err
	out=$(timeout 300 "$KILN" build "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}

# --- 1. the choice, the build, the image, the steps ------------------------------
out=$(timeout 300 "$KILN" --debug build --progress=plain --no-cache -t "$TAG" examples/hello 2>&1)
rc=$?
expect_eq "hello: exit 0" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
expect_match "--debug: the docker backend, because the socket is Podman's" \
	"^kiln: debug: engine: docker backend at $PM_HOST: DOCKER_HOST=$PM_HOST is Podman \(Libpod API [0-9.]+\), which has no BuildKit" "$out"
expect_eq "hello: podman runs the image and it prints the greeting" "Hello from kiln!" \
	"$(pm run --rm "$TAG" 2>&1 | head -n 1)"
expect_match "plain: a named stage's steps are '[build N/3]'" \
	'^#[0-9]+ \[build 1/3\] FROM busybox AS build$' "$out"
expect_match "plain: an unnamed stage's steps are '[stage-1 N/3]'" \
	'^#[0-9]+ \[stage-1 2/3\] COPY --from=build /out/greeting.txt /etc/greeting.txt$' "$out"
expect_match "plain: the RUN step's output is its log" '^#[0-9]+ [0-9.]+ prepared 2 lines$' "$out"
expect_match "plain: steps end with DONE" '^#[0-9]+ DONE [0-9.]+s' "$out"
expect_match "plain: the image is named" "^#[0-9]+ naming to $TAG done" "$out"
expect_eq "plain: Podman's own chatter is not shown" 0 \
	"$(printf '%s\n' "$out" | grep -cE -- 'STEP [0-9]|^#[0-9]+ [0-9.]+ (-->|COMMIT)')"

# --- 2. a cached rebuild ---------------------------------------------------------
# (Buildah's cache may answer with the layers of an older build of the same
# steps than the --no-cache one: the image of the first cached build is the
# one later builds give.)
kbuild --progress=plain -t "$TAG" examples/hello
expect_eq "rebuild: exit 0" 0 "$rc"
expect_eq "rebuild: the 4 steps after each FROM are CACHED" 4 \
	"$(printf '%s\n' "$err" | grep -cE '^#[0-9]+ CACHED$')"
cached_id=$(pm image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)

# --- 3. multi-stage: -f outside the context, --target, --build-arg, --label --------
multistage_ctx "$tmp"
kbuild --progress=plain -f "$tmp/df/app.Dockerfile" --target base --build-arg WORD=kiln \
	--label org.kiln.test=yes -t "$OTHER" "$tmp/ctx"
expect_eq "multi-stage -f, --target: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "--build-arg and the context file reach the build" "word=kiln from the context" \
	"$(pm run --rm "$OTHER" sh -c 'cat /word.txt /data.txt' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "--label is set" yes \
	"$(pm image inspect -f '{{index .Config.Labels "org.kiln.test"}}' "$OTHER" 2>&1)"
expect_eq "--target stops at the stage" no \
	"$(pm run --rm "$OTHER" sh -c 'test -e /never.txt && echo yes || echo no' 2>&1)"
expect_eq "--target: the final stage's step never ran" 0 \
	"$(printf '%s\n' "$err" | grep -c 'never-built')"

# --- 4. a failing RUN ---------------------------------------------------------------
mkdir -p "$tmp/fail"
printf 'FROM busybox\nRUN echo boom; exit 3\n' >"$tmp/fail/Dockerfile"
kbuild --progress=plain "$tmp/fail"
expect_eq "failing step: exit code 1" 1 "$rc"
expect_match "failing step: its output is shown" '^#[0-9]+ [0-9.]+ boom' "$err"
expect_match "failing step: the error names the step and exit code 3" \
	'^(kiln|ERROR): \[2/2\] RUN echo boom; exit 3: .*exit status 3' "$err"

# --- 5. JSON progress -----------------------------------------------------------------
kbuild --progress=json -t "$TAG" examples/hello
expect_eq "json: exit 0" 0 "$rc"
started=$(printf '%s\n' "$err" | jq -c 'select(.type == "job.started")' 2>/dev/null)
expect_eq "json: job.started names the docker backend" docker "$(printf '%s' "$started" | jq -r .backend)"
expect_match "json: job.started says why (Podman, no BuildKit)" "is Podman .*no BuildKit" \
	"$(printf '%s' "$started" | jq -r .backend_reason)"
fin=$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") | "\(.status) \(.config_digest)"' 2>/dev/null)
expect_eq "json: job.finished has status 0 and the image ID (the cached one again)" \
	"0 sha256:$cached_id" "$fin"

# --- 6. what Buildah can do that the classic builder cannot ---------------------------
mkdir -p "$tmp/mount"
cat >"$tmp/mount/Dockerfile" <<'EOF'
FROM busybox
RUN --mount=type=cache,target=/cache echo cached > /cache/f && cat /cache/f > /from-cache
RUN --mount=type=secret,id=tok cat /run/secrets/tok 2>/dev/null || echo "no secret" > /no-secret
EOF
kbuild --progress=plain -t "kiln-pm-test/mount:$run_id" "$tmp/mount"
expect_eq "RUN --mount=type=cache and type=secret: Buildah builds them (exit 0)" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "RUN --mount: the steps ran with the mounts" "cached no secret" \
	"$(pm run --rm "kiln-pm-test/mount:$run_id" cat /from-cache /no-secret 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# --- 7. refused before any upload, at the line, naming the engine -----------------------
# refuse NAME LINE CONSTRUCT DOCKERFILE-TEXT
refuse() {
	local d="$tmp/refuse-$2"
	mkdir -p "$d"
	printf '%b' "$4" >"$d/Dockerfile"
	kbuild --progress=json "$d"
	expect_eq "$1: exit code 2" 2 "$rc"
	expect_match "$1: the error names $d/Dockerfile:$2, the construct and the engine's address" \
		"^$d/Dockerfile:$2:[0-9]+: $3 needs Dockerfile syntax [0-9.]+ \(BuildKit v[0-9.]+\); Podman [0-9.]+ at $PM_HOST cannot build it" \
		"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") | .error' 2>/dev/null)"
	expect_eq "$1: nothing was sent (no build context vertex)" 0 \
		"$(printf '%s\n' "$err" | jq -r 'select(.type == "vertex") | .name' 2>/dev/null | grep -c 'load build context')"
}
refuse "heredoc" 3 "heredoc" 'FROM busybox\nRUN echo one\nRUN <<EOT\necho two\nEOT\n'
refuse "COPY --link" 2 "COPY --link" 'FROM busybox\nCOPY --link Dockerfile /x\n'
refuse "RUN --network" 4 "RUN --network" 'FROM busybox AS a\nRUN true\nFROM a\nRUN --network=none true\n'

# --- 8. a kiln.lua builder at Podman's socket ----------------------------------------------
mkdir -p "$tmp/lua"
cp -r examples/hello "$tmp/lua/app"
cat >"$tmp/lua/kiln.lua" <<'EOF'
builder "podman" { addr = kiln.env("KILN_PODMAN_HOST") }
target "default" { context = "app", tags = { kiln.vars.tag } }
EOF
# DOCKER_HOST elsewhere: the builder alone says where to build
DOCKER_HOST=unix:///nonexistent.sock kbuild_in "$tmp/lua" --progress=json --var tag="$LUA"
expect_eq "kiln.lua builder at Podman: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
started=$(printf '%s\n' "$err" | jq -c 'select(.type == "job.started")' 2>/dev/null)
expect_eq "kiln.lua builder: the job ran on the builder, with the docker backend" \
	"podman docker" "$(printf '%s' "$started" | jq -r '"\(.job.builder) \(.backend)"')"
expect_eq "kiln.lua builder: the image is in Podman and runs" "Hello from kiln!" \
	"$(pm run --rm "$LUA" 2>&1 | head -n 1)"

# --- 9. SIGINT cancels a running step -------------------------------------------------------
mark="kiln-pm-cancel-$run_id"
mkdir -p "$tmp/slow"
printf 'FROM busybox\nRUN echo %s; sleep 60\n' "$mark" >"$tmp/slow/Dockerfile"
"$KILN" build --progress=plain "$tmp/slow" 2>"$tmp/slow.err" &
kiln_pid=$!
for _ in $(seq 300); do grep -q "$mark" "$tmp/slow.err" 2>/dev/null && break; sleep 0.1; done
kill -INT "$kiln_pid"
wait "$kiln_pid"
rc=$?
kiln_pid=
expect_eq "SIGINT: exit code 130" 130 "$rc"

tap_done
