#!/usr/bin/env bash
# tests/integration/classic_test.sh: `kiln build` on the local dockerd's
# classic builder (the docker backend), chosen by DOCKER_BUILDKIT=0,
# --backend docker or KILN_BACKEND=docker, beside the BuildKit path that
# the same socket gets by default; TAP. The checks podman_test.sh makes on
# Podman, where Docker's classic builder allows them:
#
#   1. the choice: DOCKER_HOST alone -> buildkit (dockerd has BuildKit);
#      DOCKER_BUILDKIT=0 -> docker, said by --debug and in job.started;
#      --backend docker and KILN_BACKEND=docker force it;
#   2. examples/hello (multi-stage) builds, runs and prints its greeting;
#      its steps are "[N/M] INSTR" with their output; a rebuild is cached
#      and gives the same image; JSON's job.finished has the image ID;
#   3. a multi-stage Dockerfile with -f, --target, --build-arg;
#   4. what needs BuildKit (RUN --mount=type=cache, type=secret, a heredoc,
#      COPY --link) is refused before any upload: exit 2, naming the
#      Dockerfile's line and the engine's address; the same Dockerfile
#      builds through BuildKit on the same socket;
#   5. a kiln.lua builder at the socket with --backend docker.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
need_engine
need_tools jq
SOCK_ADDR=$DOCKER_HOST # unix://…/docker.sock
unset BUILDKIT_HOST KILN_BACKEND DOCKER_BUILDKIT

run_id=$$-$RANDOM
TAG=kiln-classic-test/hello:$run_id
OTHER=kiln-classic-test/other:$run_id
LUA=kiln-classic-test/lua:$run_id
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-classic.XXXXXX")
cleanup() {
	"$DOCKER" rmi -f "$TAG" "$OTHER" "$LUA" "kiln-classic-test/bk:$run_id" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

kbuild() { # kbuild ARGS...: kiln build; sets rc, out, err
	out=$(timeout 300 "$KILN" build "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}
started() { # started: "backend reason" of job.started in $err
	printf '%s\n' "$err" | jq -r 'select(.type == "job.started") | "\(.backend) \(.backend_reason)"' 2>/dev/null
}

# --- 1. the choice -------------------------------------------------------------------
kbuild --progress=json -t "$TAG" examples/hello
expect_match "DOCKER_HOST alone: BuildKit inside dockerd" "^buildkit DOCKER_HOST=$SOCK_ADDR is dockerd with BuildKit" "$(started)"

out=$(DOCKER_BUILDKIT=0 timeout 300 "$KILN" --debug build --progress=plain --no-cache -t "$TAG" examples/hello 2>&1)
rc=$?
expect_eq "DOCKER_BUILDKIT=0: exit 0" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
expect_match "DOCKER_BUILDKIT=0: --debug names the docker backend and why" \
	"^kiln: debug: engine: docker backend at $SOCK_ADDR: DOCKER_BUILDKIT=0: the classic builder of $SOCK_ADDR" "$out"

# --- 2. examples/hello on the classic builder -------------------------------------------
expect_eq "hello: the image runs and prints the greeting" "Hello from kiln!" \
	"$("$DOCKER" run --rm "$TAG" 2>&1 | head -n 1)"
expect_match "plain: steps are '[N/M] INSTR', the FROM of each stage too" \
	'^#[0-9]+ \[4/6\] FROM busybox$' "$out"
expect_match "plain: the RUN step's output is its log" '^#[0-9]+ [0-9.]+ prepared 2 lines$' "$out"
expect_match "plain: the image is named" "^#[0-9]+ naming to $TAG" "$out"
expect_eq "plain: the builder's chatter is not shown" 0 \
	"$(printf '%s\n' "$out" | grep -cE -- '--->|Removing intermediate|Successfully (built|tagged)')"
first_id=$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)

for how in "--backend docker" "KILN_BACKEND=docker"; do
	case $how in
	--backend*) kbuild --backend docker --progress=plain -t "$TAG" examples/hello ;;
	*) out=$(KILN_BACKEND=docker timeout 300 "$KILN" build --progress=plain -t "$TAG" \
		examples/hello 2>"$tmp/stderr"); rc=$?; err=$(cat "$tmp/stderr") ;;
	esac
	expect_eq "$how: exit 0" 0 "$rc"
	expect_eq "$how: the classic builder's cache serves the 4 steps after each FROM" 4 \
		"$(printf '%s\n' "$err" | grep -cE '^#[0-9]+ CACHED$')"
	expect_eq "$how: same image" "$first_id" "$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)"
done

DOCKER_BUILDKIT=0 kbuild --progress=json -t "$TAG" examples/hello
expect_match "json: job.started names the docker backend and why" \
	"^docker DOCKER_BUILDKIT=0: the classic builder of $SOCK_ADDR$" "$(started)"
expect_eq "json: job.finished has status 0 and the image ID" "0 $first_id" \
	"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") | "\(.status) \(.config_digest)"' 2>/dev/null)"

# --- 3. multi-stage: -f, --target, --build-arg ------------------------------------------
multistage_ctx "$tmp"
DOCKER_BUILDKIT=0 kbuild --progress=plain -f "$tmp/df/app.Dockerfile" --target base \
	--build-arg WORD=kiln -t "$OTHER" "$tmp/ctx"
expect_eq "multi-stage -f, --target: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "--build-arg and the context file reach the build" "word=kiln from the context" \
	"$("$DOCKER" run --rm "$OTHER" sh -c 'cat /word.txt /data.txt' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "--target stops at the stage" no \
	"$("$DOCKER" run --rm "$OTHER" sh -c 'test -e /never.txt && echo yes || echo no' 2>&1)"

# --- 4. what needs BuildKit: refused before any upload ------------------------------------
ENGINE_RE="Docker [0-9][^ ]* at $SOCK_ADDR builds with the classic builder"
# refuse NAME LINE CONSTRUCT DOCKERFILE-TEXT [KILN-OPTION...]
refuse() {
	local name=$1 line=$2 construct=$3 text=$4 d
	shift 4
	d="$tmp/refuse-$line-$RANDOM"
	mkdir -p "$d"
	printf '%b' "$text" >"$d/Dockerfile"
	kbuild --progress=json "$@" "$d"
	expect_eq "$name: exit code 2" 2 "$rc"
	expect_match "$name: the error names $d/Dockerfile:$line, the construct and the engine's address" \
		"^$d/Dockerfile:$line:[0-9]+: $construct needs BuildKit \(Dockerfile syntax [0-9.]+\); $ENGINE_RE" \
		"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") | .error' 2>/dev/null)"
	expect_eq "$name: nothing was sent (no build context vertex)" 0 \
		"$(printf '%s\n' "$err" | jq -r 'select(.type == "vertex") | .name' 2>/dev/null | grep -c 'load build context')"
}
CACHE_DF='FROM busybox\nRUN echo one\nRUN --mount=type=cache,target=/c echo x > /c/f && cp /c/f /f\n'
DOCKER_BUILDKIT=0 refuse "DOCKER_BUILDKIT=0, RUN --mount=type=cache" 3 "RUN --mount=type=cache" "$CACHE_DF"
refuse "--backend docker, RUN --mount=type=secret" 2 "RUN --mount=type=secret" \
	'FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok || true\n' --backend docker
refuse "--backend docker, a heredoc" 4 "heredoc" \
	'FROM busybox AS a\nRUN true\nFROM a\nRUN <<EOT\ntrue\nEOT\n' --backend docker
KILN_BACKEND=docker refuse "KILN_BACKEND=docker, COPY --link" 2 "COPY --link" \
	'FROM busybox\nCOPY --link Dockerfile /x\n'

# the cache mount's Dockerfile builds through BuildKit on the same socket
mkdir -p "$tmp/bk"
printf '%b' "$CACHE_DF" >"$tmp/bk/Dockerfile"
kbuild --progress=quiet -t "kiln-classic-test/bk:$run_id" "$tmp/bk"
expect_eq "the same RUN --mount=type=cache through BuildKit: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err

# --- 5. a kiln.lua builder at the socket, --backend docker -----------------------------------
mkdir -p "$tmp/lua"
cp -r examples/hello "$tmp/lua/app"
cat >"$tmp/lua/kiln.lua" <<'EOF'
builder "dockerd" { addr = kiln.env("DOCKER_HOST") }
target "default" { context = "app", tags = { kiln.vars.tag } }
EOF
kbuild_in "$tmp/lua" --backend docker --progress=json --var tag="$LUA"
expect_eq "kiln.lua builder, --backend docker: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "kiln.lua builder: the job ran on the builder with the docker backend" "dockerd docker" \
	"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.started") | "\(.job.builder) \(.backend)"' 2>/dev/null)"
expect_eq "kiln.lua builder: the image runs" "Hello from kiln!" \
	"$("$DOCKER" run --rm "$LUA" 2>&1 | head -n 1)"

tap_done
