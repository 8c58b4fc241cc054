#!/usr/bin/env bash
# tests/integration/lua_publish_test.sh: targets of a kiln.lua pushed to the
# local engine's registry (docker-registry on loopback) from dockerd, whose
# BuildKit cannot push: each platform goes through the Docker API, then kiln
# writes the image index. TAP.
#
#   1. platforms = {amd64, arm64}, output type=registry, two tags: both tags
#      hold the same manifest list with both platforms (in declared order);
#      `docker pull --platform linux/arm64` and a run under QEMU print
#      aarch64, linux/amd64 prints x86_64; the summary lists what was pushed;
#   2. one platform, type=image,push=true,name=…: a plain manifest under
#      that name, which pulls and runs;
#   3. --fail-fast (default): a failing target cancels a slow pushing one;
#      nothing reaches the registry;
#   4. --keep-going: a target that succeeded is pushed although another
#      failed; with --publish after-all it is not, and the summary says so;
#   5. a registry nobody listens on: the failure names the push and the
#      address, exit code not 0.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
need_tools jq curl
REG=${KILN_REGISTRY:-127.0.0.1:5000}
LIST=application/vnd.docker.distribution.manifest.list.v2+json
MANIFEST=application/vnd.docker.distribution.manifest.v2+json

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-lua-publish.XXXXXX")
areg_pid=
cleanup() {
	[ -n "$areg_pid" ] && kill "$areg_pid" 2>/dev/null
	"$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | grep "^$REG/kiln-publish-test/" |
		grep ":[a-z]*-*$run_id" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# manifest REPO REF: the registry's answer (body) for a manifest, or "" (404)
manifest() {
	curl -sf -H "Accept: $LIST, $MANIFEST" "http://$REG/v2/$1/manifests/$2" 2>/dev/null
}
# status REPO REF: the HTTP status of a manifest HEAD
status() {
	curl -s -o /dev/null -w '%{http_code}' -I -H "Accept: $LIST, $MANIFEST" \
		"http://$REG/v2/$1/manifests/$2"
}

# ---- 1. two platforms, an index -----------------------------------------------------------

if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	p=$tmp/multi
	mkdir -p "$p/app"
	printf 'FROM busybox\nARG RUN_ID\nRUN echo "$RUN_ID" > /run_id && uname -m > /arch\nCMD ["cat", "/arch"]\n' \
		> "$p/app/Dockerfile"
	cat > "$p/kiln.lua" <<'EOF'
local reg = kiln.env("KILN_REGISTRY", "127.0.0.1:5000")
target "multi" {
  context = "app",
  args = { RUN_ID = kiln.vars.run },
  platforms = { "linux/amd64", "linux/arm64" },
  tags = { reg .. "/kiln-publish-test/multi:" .. kiln.vars.tag,
           reg .. "/kiln-publish-test/multi:also-" .. kiln.vars.tag },
  output = { "type=registry" },
}
EOF
	kbuild_in "$p" --progress=plain --var run="$run_id-a" --var tag="$run_id"
	if [ "$rc" -eq 0 ]; then ok "two platforms, type=registry: exit 0"; else not_ok "two platforms, type=registry: exit $rc"; show_err; fi
	idx=$(manifest kiln-publish-test/multi "$run_id")
	expect_eq "the tag holds a Docker manifest list" "$LIST" "$(printf '%s' "$idx" | jq -r .mediaType 2>/dev/null)"
	expect_eq "the list names linux/amd64 then linux/arm64" "linux/amd64 linux/arm64" \
		"$(printf '%s' "$idx" | jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' 2>/dev/null)"
	bad=
	for d in $(printf '%s' "$idx" | jq -r '.manifests[].digest' 2>/dev/null); do
		[ "$(status kiln-publish-test/multi "$d")" = 200 ] || bad="$bad $d"
	done
	expect_eq "each platform's manifest is in the repository by digest" "" "$bad"
	d1=$(curl -s -I -H "Accept: $LIST" "http://$REG/v2/kiln-publish-test/multi/manifests/$run_id" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	d2=$(curl -s -I -H "Accept: $LIST" "http://$REG/v2/kiln-publish-test/multi/manifests/also-$run_id" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	expect_eq "the second tag holds the same index" "$d1" "$d2"
	expect_match "the summary lists the pushed index" \
		"^  $REG/kiln-publish-test/multi:$run_id $d1 \\(manifest list: linux/amd64, linux/arm64\\)" "$err"
	ref=$REG/kiln-publish-test/multi:$run_id
	"$DOCKER" rmi -f "$ref" >/dev/null 2>&1
	if "$DOCKER" pull -q --platform linux/arm64 "$ref" >/dev/null 2>&1; then
		expect_eq "docker pull --platform linux/arm64, run under QEMU: aarch64" aarch64 \
			"$("$DOCKER" run --rm --platform linux/arm64 "$ref" 2>&1)"
	else
		not_ok "docker pull --platform linux/arm64 $ref"
	fi
	"$DOCKER" rmi -f "$ref" >/dev/null 2>&1
	if "$DOCKER" pull -q --platform linux/amd64 "$ref" >/dev/null 2>&1; then
		expect_eq "docker pull --platform linux/amd64, run: x86_64" x86_64 \
			"$("$DOCKER" run --rm "$ref" 2>&1)"
	else
		not_ok "docker pull --platform linux/amd64 $ref"
	fi
else
	skip "two platforms pushed" "qemu-aarch64 is not registered in binfmt_misc"
fi

# ---- 2. one platform, type=image,push=true ---------------------------------------------------

p=$tmp/one
mkdir -p "$p/app"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "one $RUN_ID" > /msg\nCMD ["cat", "/msg"]\n' > "$p/app/Dockerfile"
cat > "$p/kiln.lua" <<'EOF'
local reg = kiln.env("KILN_REGISTRY", "127.0.0.1:5000")
target "one" {
  context = "app",
  args = { RUN_ID = kiln.vars.run },
  output = { "type=image,name=" .. reg .. "/kiln-publish-test/one:" .. kiln.vars.tag .. ",push=true" },
}
EOF
kbuild_in "$p" --progress=plain --var run="$run_id-b" --var tag="$run_id"
if [ "$rc" -eq 0 ]; then ok "one platform, type=image,push=true: exit 0"; else not_ok "one platform, push=true: exit $rc"; show_err; fi
expect_eq "the name holds a plain manifest" "$MANIFEST" \
	"$(manifest kiln-publish-test/one "$run_id" | jq -r .mediaType 2>/dev/null)"
ref=$REG/kiln-publish-test/one:$run_id
"$DOCKER" rmi -f "$ref" >/dev/null 2>&1
"$DOCKER" pull -q "$ref" >/dev/null 2>&1
expect_eq "pulled back, it runs" "one $run_id-b" "$("$DOCKER" run --rm "$ref" 2>&1)"

# ---- 3. --fail-fast: nothing pushed -------------------------------------------------------------

p=$tmp/fail
mkdir -p "$p/slow" "$p/quick" "$p/bad"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "slow $RUN_ID" && sleep 20\n' > "$p/slow/Dockerfile"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "quick $RUN_ID"\n' > "$p/quick/Dockerfile"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "bad $RUN_ID" && sleep 2 && exit 5\n' > "$p/bad/Dockerfile"
cat > "$p/kiln.lua" <<'EOF'
local reg = kiln.env("KILN_REGISTRY", "127.0.0.1:5000")
for _, n in ipairs({ "slow", "quick" }) do
  target(n) {
    context = n,
    args = { RUN_ID = kiln.vars.run },
    tags = { reg .. "/kiln-publish-test/" .. n .. ":" .. kiln.vars.tag },
    output = { "type=registry" },
  }
end
target "bad" { context = "bad", args = { RUN_ID = kiln.vars.run } }
EOF
kbuild_in "$p" --progress=plain --var run="$run_id-c" --var tag="ff-$run_id" slow bad
expect_eq "--fail-fast: exit 1" 1 "$rc"
expect_match "--fail-fast: the slow target is cancelled" '^slow +- +default +cancelled ' "$err"
expect_eq "--fail-fast: nothing pushed" 404 "$(status kiln-publish-test/slow "ff-$run_id")"

# ---- 4. --keep-going, with and without --publish after-all ---------------------------------------

kbuild_in "$p" --keep-going --progress=plain --var run="$run_id-d" --var tag="kg-$run_id" quick bad
expect_eq "--keep-going: exit 1" 1 "$rc"
expect_eq "--keep-going: the target that succeeded is pushed" 200 \
	"$(status kiln-publish-test/quick "kg-$run_id")"

kbuild_in "$p" --keep-going --publish after-all --progress=plain --var run="$run_id-e" \
	--var tag="aa-$run_id" quick bad
expect_eq "--publish after-all --keep-going: exit 1" 1 "$rc"
expect_eq "--publish after-all: with a failure, nothing is pushed" 404 \
	"$(status kiln-publish-test/quick "aa-$run_id")"
expect_match "--publish after-all: the summary says what was held" '^not pushed \(.*\): quick$' "$err"

kbuild_in "$p" --publish after-all --progress=plain --var run="$run_id-f" --var tag="ok-$run_id" quick
expect_eq "--publish after-all, all succeed: exit 0" 0 "$rc"
expect_eq "--publish after-all, all succeed: pushed" 200 "$(status kiln-publish-test/quick "ok-$run_id")"

# ---- 5. an unreachable registry ----------------------------------------------------------------

port=$((20000 + RANDOM % 20000))
cat > "$p/kiln.lua" <<EOF
target "quick" {
  context = "quick",
  args = { RUN_ID = kiln.vars.run },
  tags = { "127.0.0.1:$port/kiln-publish-test/quick:x" },
  output = { "type=registry" },
}
EOF
kbuild_in "$p" --progress=plain --var run="$run_id-g"
expect_eq "unreachable registry: exit code is not 0" 1 "$([ "$rc" -ne 0 ] && echo 1 || echo 0)"
expect_match "unreachable registry: the failure names the push and the address" \
	"publish quick: .*127\\.0\\.0\\.1:$port" "$err"
[ "$rc" -ne 0 ] || show_err

# ---- 6. a registry that wants a password ------------------------------------------------------

# docker-registry with htpasswd (Basic auth), started here on loopback:
# dockerd's push gets the credentials as X-Registry-Auth, kiln's own
# client answers the Basic challenge, both from $DOCKER_CONFIG/config.json.
if [ -x /usr/bin/docker-registry ] && command -v htpasswd >/dev/null; then
	aport=$((40000 + RANDOM % 20000))
	adir=$tmp/authreg
	mkdir -p "$adir/data" "$adir/cfg" "$adir/nocfg"
	htpasswd -Bbn kiln s3cret | sed '/^$/d' > "$adir/htpasswd" # bcrypt: all distribution reads
	printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\nauth:\n  htpasswd:\n    realm: kiln-test\n    path: %s/htpasswd\n' \
		"$adir" "$aport" "$adir" > "$adir/config.yml"
	/usr/bin/docker-registry serve "$adir/config.yml" >"$adir/log" 2>&1 &
	areg_pid=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$aport/v2/" && break
		sleep 0.1
	done
	printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$aport" "$(printf kiln:s3cret | base64)" \
		> "$adir/cfg/config.json"
	plats='"linux/amd64"'
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && plats='"linux/amd64", "linux/arm64"'
	p=$tmp/auth
	mkdir -p "$p"
	cp -r "$tmp/one/app" "$p/app"
	cat > "$p/kiln.lua" <<LUA
target "locked" {
  context = "app",
  args = { RUN_ID = kiln.vars.run },
  platforms = { $plats },
  tags = { "127.0.0.1:$aport/kiln-publish-test/locked:v1" },
  output = { "type=registry" },
}
LUA
	DOCKER_CONFIG=$adir/nocfg kbuild_in "$p" --progress=plain --var run="$run_id-h"
	expect_eq "password registry, no credentials: exit code is not 0" 1 "$([ "$rc" -ne 0 ] && echo 1 || echo 0)"
	expect_match "password registry, no credentials: the failure says so" \
		"publish locked: .*(unauthorized|authentication required|denied|no basic auth credentials|user name and password)" "$err"
	DOCKER_CONFIG=$adir/cfg kbuild_in "$p" --progress=plain --var run="$run_id-h"
	if [ "$rc" -eq 0 ]; then ok "password registry, config.json auths: exit 0"; else not_ok "password registry: exit $rc"; show_err; fi
	want=$MANIFEST
	case $plats in *arm64*) want=$LIST ;; esac
	expect_eq "password registry: the tag holds what kiln wrote" "$want" \
		"$(curl -sf -u kiln:s3cret -H "Accept: $LIST, $MANIFEST" \
			"http://127.0.0.1:$aport/v2/kiln-publish-test/locked/manifests/v1" | jq -r .mediaType 2>/dev/null)"
	kill "$areg_pid" 2>/dev/null
	wait "$areg_pid" 2>/dev/null
	areg_pid=
	"$DOCKER" rmi -f "127.0.0.1:$aport/kiln-publish-test/locked:v1" >/dev/null 2>&1
else
	skip "password registry" "docker-registry or htpasswd (apache2-utils) is missing"
fi

tap_done
