#!/usr/bin/env bash
# tests/integration/engine_select_test.sh: how `kiln build` picks its backend
# from the standard variables alone (docs/cli.md "Choosing the engine"), and
# `kiln build --push` of a single build, against the local engine. TAP.
#
#   1. only DOCKER_HOST=unix://…: BuildKit inside dockerd, with --secret and
#      a cache mount; job.started says backend "buildkit" and why;
#   2. only BUILDKIT_HOST (docker-unix:// and a plain unix:// of dockerd's
#      socket): the buildkit backend; the same build;
#   3. DOCKER_BUILDKIT=0, KILN_BACKEND=docker, --backend: the classic
#      builder; an unknown --backend names itself, exit 2;
#   4. a socket that answers as neither engine (silent; not HTTP), through
#      DOCKER_HOST and BUILDKIT_HOST: exit 3 within 5 s, one line naming
#      the address and both protocols;
#   5. -t REG/app --push, -o type=registry,name=…, -o type=image,push=true:
#      the manifest is in the registry; docker pull + run print the build's
#      text; --push without a name is refused;
#   6. --platform linux/amd64,linux/arm64 --push: one manifest list, both
#      platforms run (arm64 under QEMU);
#   7. the main build suite (buildkit_build_test.sh) with only DOCKER_HOST
#      set, then with only BUILDKIT_HOST=docker-unix://…: every check of
#      both runs passes (secrets, cache mounts, exports, SIGINT).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
need_tools jq curl cc
REG=${KILN_REGISTRY:-127.0.0.1:5000}
SOCK=${DOCKER_HOST#unix://}
LIST=application/vnd.docker.distribution.manifest.list.v2+json
MANIFEST=application/vnd.docker.distribution.manifest.v2+json

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-engine-select.XXXXXX")
listener_pids=()
cleanup() {
	for p in "${listener_pids[@]}"; do kill "$p" 2>/dev/null; done
	"$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | grep "kiln-select" |
		grep -- "$run_id" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# kb ENV... -- ARGS...: kiln build with exactly the engine variables ENV
# (the others unset); sets rc, out, err, ms (wall time).
kb() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t0 t1
	t0=$(date +%s%N)
	out=$(env -u DOCKER_HOST -u BUILDKIT_HOST -u KILN_BACKEND -u DOCKER_BUILDKIT "${envs[@]}" \
		timeout 120 "$KILN" build "$@" 2>"$tmp/stderr")
	rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	err=$(cat "$tmp/stderr")
}
# started: the job.started event of the last --progress=json build
started() { printf '%s\n' "$err" | jq -c 'select(.type == "job.started")' 2>/dev/null | head -n 1; }

# A build that needs BuildKit: a secret and a cache mount.
ctx=$tmp/ctx
mkdir -p "$ctx"
printf 'kiln-select-secret-%s\n' "$run_id" > "$tmp/tok"
secret_len=$(wc -c < "$tmp/tok")
cat > "$ctx/Dockerfile" <<EOF
FROM busybox
RUN --mount=type=secret,id=tok --mount=type=cache,id=kiln-select-$run_id,target=/cache \\
	n=\$(cat /cache/n 2>/dev/null || echo 0); echo \$((n + 1)) > /cache/n; \\
	echo "run $run_id secret \$(wc -c < /run/secrets/tok) cache \$((n + 1))" > /proof
CMD ["cat", "/proof"]
EOF

# ---- 1 and 2: the standard variables alone --------------------------------------------------

# via NAME ENV...: the BuildKit build with only ENV; checks the export and
# the backend kiln says it chose
via() {
	local name=$1; shift
	rm -rf "$tmp/out"
	kb "$@" -- --progress=json --secret id=tok,src="$tmp/tok" -o "type=local,dest=$tmp/out" "$ctx"
	expect_eq "$name: the secret + cache mount build exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_err
	expect_match "$name: the export has the step's output" \
		"^run $run_id secret $secret_len cache [0-9]+\$" "$(cat "$tmp/out/proof" 2>/dev/null)"
	local s
	s=$(started)
	expect_eq "$name: job.started names the buildkit backend" buildkit \
		"$(printf '%s' "$s" | jq -r .backend)"
	reason=$(printf '%s' "$s" | jq -r .backend_reason)
}
via "DOCKER_HOST only" "DOCKER_HOST=$DOCKER_HOST"
expect_match "DOCKER_HOST only: the reason is the daemon's BuildKit" \
	"^DOCKER_HOST=$DOCKER_HOST is dockerd with BuildKit \\(.*API 1\\.[0-9]+\\)\$" "$reason"
expect_eq "DOCKER_HOST only: the builder is dockerd's BuildKit" "docker-unix://$SOCK" \
	"$(started | jq -r .job.builder)"
# --debug says the same on stderr
err=$(env -u BUILDKIT_HOST -u KILN_BACKEND -u DOCKER_BUILDKIT DOCKER_HOST="$DOCKER_HOST" \
	timeout 120 "$KILN" --debug build --progress=quiet --secret id=tok,src="$tmp/tok" "$ctx" 2>&1 >/dev/null)
expect_match "DOCKER_HOST only: --debug names the backend and why" \
	"^kiln: debug: engine: buildkit backend at docker-unix://$SOCK: DOCKER_HOST=" "$err"

via "BUILDKIT_HOST=docker-unix:// only" "BUILDKIT_HOST=docker-unix://$SOCK"
expect_eq "BUILDKIT_HOST only: the reason is the variable" \
	"BUILDKIT_HOST=docker-unix://$SOCK is a BuildKit address" "$reason"
# unix:// of dockerd's socket in BUILDKIT_HOST: gRPC first, then Docker's
via "BUILDKIT_HOST=unix://(dockerd) only" "BUILDKIT_HOST=unix://$SOCK"

# ---- 3. forcing a backend --------------------------------------------------------------------

printf 'FROM busybox\nRUN echo "classic %s" > /proof\nCMD ["cat", "/proof"]\n' "$run_id" \
	> "$tmp/Dockerfile.classic"
for how in "DOCKER_BUILDKIT=0" "KILN_BACKEND=docker" "--backend=docker"; do
	tag=kiln-select/classic:$run_id
	if [ "$how" = --backend=docker ]; then
		kb "DOCKER_HOST=$DOCKER_HOST" -- --backend=docker --progress=json -t "$tag" \
			-f "$tmp/Dockerfile.classic" "$ctx"
	else
		kb "DOCKER_HOST=$DOCKER_HOST" "$how" -- --progress=json -t "$tag" \
			-f "$tmp/Dockerfile.classic" "$ctx"
	fi
	expect_eq "$how: exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_err
	s=$(started)
	expect_eq "$how: the docker backend (classic builder)" docker "$(printf '%s' "$s" | jq -r .backend)"
	expect_match "$how: the reason names it" "^$how" "$(printf '%s' "$s" | jq -r .backend_reason)"
	expect_eq "$how: the image runs" "classic $run_id" "$("$DOCKER" run --rm "$tag" 2>&1)"
done
kb "DOCKER_HOST=$DOCKER_HOST" "DOCKER_BUILDKIT=0" -- --progress=plain --secret id=tok,src="$tmp/tok" "$ctx"
expect_match "DOCKER_BUILDKIT=0: a secret is refused by the classic builder" \
	"not supported by the docker backend" "$err"
kb "DOCKER_HOST=$DOCKER_HOST" -- --backend=nosuch "$ctx"
expect_eq "--backend=nosuch: exit 2" 2 "$rc"
expect_match "--backend=nosuch: names it" "no backend plugin is named 'nosuch'" "$err"

# ---- 4. neither engine -----------------------------------------------------------------------

cat > "$tmp/listen.c" <<'EOF'
/* listen SOCKET MODE: accept on a unix socket; MODE silent keeps each
 * connection open without a word, garbage writes a line and hangs up. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	if (argc < 3 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16))
		return 1;
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0 && strcmp(argv[2], "garbage") == 0) {
			const char *s = "SSH-2.0-not-an-engine\r\n";
			if (write(c, s, strlen(s)) < 0) {}
			close(c);
		}
	}
}
EOF
if cc -o "$tmp/listen" "$tmp/listen.c"; then
	for mode in silent garbage; do
		"$tmp/listen" "$tmp/$mode.sock" "$mode" &
		listener_pids+=($!)
	done
	for _ in $(seq 50); do [ -S "$tmp/silent.sock" ] && [ -S "$tmp/garbage.sock" ] && break; sleep 0.1; done
	for mode in silent garbage; do
		for var in DOCKER_HOST BUILDKIT_HOST; do
			a=unix://$tmp/$mode.sock
			kb "$var=$a" -- --progress=plain "$ctx"
			expect_eq "$mode socket via $var: exit 3 (engine)" 3 "$rc"
			if [ "$ms" -lt 5000 ]; then ok "$mode socket via $var: fails within 5 s (${ms} ms)"
			else not_ok "$mode socket via $var: fails within 5 s" "took ${ms} ms"; fi
			expect_eq "$mode socket via $var: one line" 1 "$(printf '%s\n' "$err" | wc -l)"
			expect_match "$mode socket via $var: names the address" "^kiln: cannot reach (the engine at )?$a" "$err"
			expect_match "$mode socket via $var: names both attempts" \
				"(BuildKit.*Docker Engine API|Docker Engine API.*BuildKit)" "$err"
		done
	done
else
	skip "neither engine" "cc could not build the listener"
fi

# ---- 5. a single build pushed ----------------------------------------------------------------

printf 'FROM busybox\nRUN echo "pushed %s" > /proof && uname -m > /arch\nCMD ["cat", "/proof", "/arch"]\n' \
	"$run_id" > "$tmp/Dockerfile.push"
# pulled REF: docker pull of REF after dropping any local copy, then run
pulled() {
	"$DOCKER" rmi -f "$1" >/dev/null 2>&1
	"$DOCKER" pull -q "$1" >/dev/null 2>&1 && "$DOCKER" run --rm "$1" 2>&1
}
n=0
for form in "--push -t" "-o type=registry,name=" "-o type=image,push=true,name="; do
	n=$((n + 1))
	repo=kiln-select/push$n
	ref=$REG/$repo:$run_id
	case $form in
	--push*) args=(--push -t "$ref") ;;
	*) args=(-o "${form#-o }$ref") ;;
	esac
	kb "DOCKER_HOST=$DOCKER_HOST" -- --progress=plain -f "$tmp/Dockerfile.push" "${args[@]}" "$ctx"
	expect_eq "push ($form): exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_err
	expect_match "push ($form): says what it pushed" "^pushed $ref sha256:[0-9a-f]{64} \\(manifest" "$err"
	expect_eq "push ($form): the registry has the manifest" 200 \
		"$(curl -s -o /dev/null -w '%{http_code}' -I -H "Accept: $MANIFEST" "http://$REG/v2/$repo/manifests/$run_id")"
	expect_eq "push ($form): docker pull + run print the build's text" \
		"pushed $run_id x86_64" "$(pulled "$ref" | tr '\n' ' ' | sed 's/ $//')"
done
kb "DOCKER_HOST=$DOCKER_HOST" -- --push "$ctx"
expect_eq "--push without a tag: exit 2" 2 "$rc"
expect_match "--push without a tag: says what is missing" "names no image" "$err"

# ---- 6. two platforms pushed: the index --------------------------------------------------------

if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	ref=$REG/kiln-select/multi:$run_id
	kb "DOCKER_HOST=$DOCKER_HOST" -- --progress=plain --platform linux/amd64,linux/arm64 --push \
		-t "$ref" -f "$tmp/Dockerfile.push" "$ctx"
	expect_eq "multi-platform --push: exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_err
	body=$(curl -sf -H "Accept: $LIST" "http://$REG/v2/kiln-select/multi/manifests/$run_id")
	expect_eq "multi-platform --push: a manifest list of amd64 then arm64" "$LIST amd64,arm64" \
		"$(printf '%s' "$body" | jq -r '.mediaType + " " + ([.manifests[].platform.architecture] | join(","))')"
	"$DOCKER" rmi -f "$ref" >/dev/null 2>&1
	expect_eq "multi-platform --push: linux/arm64 runs aarch64" "pushed $run_id aarch64" \
		"$("$DOCKER" run --rm --platform linux/arm64 "$ref" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
	"$DOCKER" rmi -f "$ref" >/dev/null 2>&1
	expect_eq "multi-platform --push: linux/amd64 runs x86_64" "pushed $run_id x86_64" \
		"$("$DOCKER" run --rm --platform linux/amd64 "$ref" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
else
	skip "multi-platform --push" "no qemu-aarch64 in binfmt_misc"
fi

# ---- 7. the main build suite through each variable alone ----------------------------------------

for via in docker_host buildkit_host; do
	suite=$(KILN_TEST_ENGINE_VIA=$via bash tests/integration/buildkit_build_test.sh 2>&1)
	src=$?
	n_ok=$(printf '%s\n' "$suite" | grep -Ec '^ok [0-9]+')
	# each failed check with its diagnostic lines ("#   …") after it
	n_bad=$(printf '%s\n' "$suite" | awk '/^not ok [0-9]+/ { p = 1; print; next }
		p && /^#/ { print; next } { p = 0 }' | head -n 40)
	if [ "$src" = 0 ] && [ -z "$n_bad" ] && [ "$n_ok" -gt 20 ]; then
		ok "buildkit_build_test.sh with only ${via^^}: $n_ok checks pass"
	else
		not_ok "buildkit_build_test.sh with only ${via^^}" "exit $src, $n_ok ok" "$n_bad"
	fi
done

tap_done
