#!/usr/bin/env bash
# tests/integration/cache_test.sh: build cache export and import
# (--cache-to / --cache-from) across two real dockerds. TAP.
#
# The local engine (scripts/engine.sh, $DOCKER_HOST) is the warm engine.
# The test starts a second, cold one (its own state dir, registry port and
# bridge, as tests/integration/lua_pool_test.sh does) that has never built
# anything, and stops it again (by its pid files, `engine.sh down`).
#
#   1. warm: a Dockerfile with two RUN steps (and a string unique to the
#      run), `--cache-to type=inline --push` to the local registry at
#      127.0.0.1:5000: the pushed image config carries BuildKit's inline
#      cache ("moby.buildkit.cache.v0");
#   2. cold: the same Dockerfile with `--cache-from
#      type=registry,ref=127.0.0.1:5000/...`: every RUN vertex of the
#      --progress=json stream is cached (0 RUN steps run), and the image
#      prints what the warm build's RUN steps wrote;
#   3. the same with `--build-arg BUILDKIT_INLINE_CACHE=1` (buildx's and
#      docker build's spelling) and the shorthand `--cache-from REF`;
#   4. kiln.lua: `cache_to = { "type=inline" }` with `kiln build --push`,
#      then `cache_from` on the cold engine: 0 RUN steps;
#   5. the control: pushed with BUILDKIT_INLINE_CACHE=0, the config has no
#      cache and the cold engine runs both RUN steps (so 2-4 count the
#      import, not something the cold engine had);
#   6. what BuildKit v0.8 (dockerd 20.10) cannot do is refused before the
#      solve, one line naming the type (and the engine), exit 2:
#      `--cache-to type=registry,mode=max`, `type=local` and `type=gha`
#      exports, `type=local` imports (kiln serves no content store), and
#      malformed entries.
#
# Needs root (for the second engine). Runs may overlap: each run takes a
# free slot N (0-9, under a lock): bridge kiln-cacheN, 172.30.23N.1/24 and
# a free registry port from 53N0.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
need_tools curl jq
case $DOCKER_HOST in
unix://*) ;;
*) echo "Bail out! DOCKER_HOST is not a unix socket: $DOCKER_HOST"; exit 1 ;;
esac
REG=127.0.0.1:5000
if ! curl -fsS "http://$REG/v2/" >/dev/null 2>&1; then
	echo "Bail out! no registry at $REG (scripts/engine.sh up)"
	exit 1
fi
warm=$DOCKER_HOST
pdir=${DOCKER_HOST#unix://}
pdir=${pdir%/docker.sock}
[ -e "$pdir/.kiln-engine" ] || pdir=

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cache.XXXXXX")
eng_dir='' port='' bridge='' bip=''
eng2() { # engine.sh for the cold engine only
	[ -n "$eng_dir" ] && [ "$eng_dir" != "$pdir" ] || return 1
	env KILN_ENGINE_DIR="$eng_dir" KILN_REGISTRY_PORT="$port" KILN_ENGINE_BRIDGE="$bridge" \
		KILN_ENGINE_BIP="$bip" KILN_ENGINE_DEBIAN=0 scripts/engine.sh "$@"
}
cleanup() {
	if [ -n "$eng_dir" ] && [ -e "$eng_dir/.kiln-engine" ]; then
		eng2 down >>"$tmp/eng2.log" 2>&1 || sed 's/^/# /' "$tmp/eng2.log"
	fi
	[ -n "$eng_dir" ] && [ -d "$eng_dir" ] && rmdir "$eng_dir" 2>/dev/null
	"$DOCKER" -H "$warm" images --format '{{.Repository}}:{{.Tag}}' |
		grep "kiln-cache-test/.*:$run_id" | xargs -r "$DOCKER" -H "$warm" rmi -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kb HOST ARGS...: `kiln build ARGS` against the engine at HOST (a unix://
# Docker socket) in $tmp; sets rc, out, err
kb() {
	local host=$1; shift
	out=$(cd "$tmp" && DOCKER_HOST=$host BUILDKIT_HOST='' timeout 300 "$KILN" build "$@" \
		2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}
# runs: the RUN vertices of the last --progress=json build ($err), one
# line each: "cached NAME" or "ran NAME" (a vertex counts once, by its
# last event)
runs() {
	printf '%s\n' "$err" | jq -r 'select(.type == "vertex" and (.name | test("^\\[[^]]*\\] RUN ")))
		| [.digest, (if .cached then "cached" else "ran" end), .name] | @tsv' 2>/dev/null |
		awk -F'\t' '{ st[$1] = $2; nm[$1] = $3 } END { for (d in st) print st[d], nm[d] }' | sort
}
n_ran() { runs | grep -c '^ran ' || true; }
n_cached() { runs | grep -c '^cached ' || true; }

# ---- the cold engine ------------------------------------------------------------------------

if [ "$(id -u)" != 0 ]; then
	skip "a cold second engine" "needs root to start a second engine"
	tap_done
	exit
fi
engine_slot cache 172.30.23 53
bridge=$slot_bridge bip=$slot_bip port=$slot_port
eng_dir=$(mktemp -d /var/tmp/kiln-cache.XXXXXX)
cold=unix://$eng_dir/docker.sock
if eng2 up >"$tmp/eng2.env" 2>"$tmp/eng2.log" && "$DOCKER" -H "$cold" version >/dev/null 2>&1; then
	ok "a cold second engine ($bridge, $bip, registry :$port)"
else
	not_ok "a cold second engine ($bridge, $bip, registry :$port)" \
		"$(tail -n 20 "$tmp/eng2.log")"
	tap_done
	exit 1
fi

# ---- 1. warm: inline cache, pushed ---------------------------------------------------------

# mkctx NAME: a context $tmp/NAME whose Dockerfile has two RUN steps and
# its own base (FROM the registry by address: the same bytes on both
# engines); the string it prints names the run and NAME, so no engine
# has these steps cached before the test
mkctx() {
	mkdir -p "$tmp/$1"
	cat >"$tmp/$1/Dockerfile" <<EOF
FROM $REG/library/busybox
RUN echo "cache test $run_id $1: one" > /one
RUN echo "two" > /two && cat /one /two > /msg
CMD ["cat", "/msg"]
EOF
}
want() { printf 'cache test %s %s: one\ntwo' "$run_id" "$1"; }
repo=kiln-cache-test/img
# config_has_cache TAG: the pushed image's config carries inline cache
config_has_cache() {
	local m cfg
	m=$(curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REG/v2/$repo/manifests/$1") || return 1
	cfg=$(printf '%s' "$m" | jq -r .config.digest) || return 1
	curl -fsS "http://$REG/v2/$repo/blobs/$cfg" | jq -e 'has("moby.buildkit.cache.v0")' >/dev/null
}
# warm_push NAME ARGS...: build context NAME on the warm engine with ARGS
# and --push to $REG/$repo:RUN-NAME; both RUN steps must run
warm_push() {
	local name=$1; shift
	mkctx "$name"
	kb "$warm" --progress=json "$@" --push -t "$REG/$repo:$run_id-$name" "$name"
	if [ "$rc" = 0 ] && [ "$(n_ran)" = 2 ]; then
		ok "warm: $* --push runs both RUN steps"
	else
		not_ok "warm: $* --push runs both RUN steps" "exit $rc" "$(runs)" \
			"$(printf '%s\n' "$err" | grep -v '"vertex' | tail -n 5)"
	fi
}
# cold_from NAME RAN CACHED ARGS...: build context NAME on the cold engine
# with ARGS; RAN RUN steps must run and CACHED come from the cache, and
# the image must print the string of the warm build
cold_from() {
	local name=$1 ran=$2 cached=$3; shift 3
	kb "$cold" --progress=json "$@" -t "kiln-cache-test/cold:$run_id-$name" "$name"
	if [ "$rc" = 0 ] && [ "$(n_ran)" = "$ran" ] && [ "$(n_cached)" = "$cached" ]; then
		ok "cold: $* runs $ran RUN steps ($cached cached)"
	else
		not_ok "cold: $* runs $ran RUN steps ($cached cached)" "exit $rc" "$(runs)" \
			"$(printf '%s\n' "$err" | grep -v '"vertex' | tail -n 5)"
	fi
	expect_eq "cold: the $name image prints what the RUN steps wrote" "$(want "$name")" \
		"$("$DOCKER" -H "$cold" run --rm "kiln-cache-test/cold:$run_id-$name" 2>&1)"
}

warm_push a --cache-to type=inline
check "warm: the pushed image's config carries the inline cache" config_has_cache "$run_id-a"

# ---- 2. cold: import from the registry: 0 RUN steps run -------------------------------------

cold_from a 0 2 --cache-from "type=registry,ref=$REG/$repo:$run_id-a"

# ---- 3. BUILDKIT_INLINE_CACHE=1 and --cache-from REF ----------------------------------------

warm_push b --build-arg BUILDKIT_INLINE_CACHE=1
check "warm: BUILDKIT_INLINE_CACHE=1: the config carries the inline cache" \
	config_has_cache "$run_id-b"
cold_from b 0 2 --build-arg BUILDKIT_INLINE_CACHE=1 --cache-from "$REG/$repo:$run_id-b"

# ---- 4. kiln.lua: cache_to / cache_from ------------------------------------------------------

mkctx d
cat >"$tmp/d/kiln.lua" <<EOF
target "warm" { context = ".", tags = { "$REG/$repo:$run_id-d" }, cache_to = { "type=inline" } }
target "cold" {
  context = ".", tags = { "kiln-cache-test/cold:$run_id-d" },
  cache_from = { "type=registry,ref=$REG/$repo:$run_id-d" },
}
EOF
# klua HOST ARGS...: `kiln build ARGS` with d's kiln.lua on the engine at HOST
klua() {
	local host=$1; shift
	out=$(cd "$tmp/d" && DOCKER_HOST=$host BUILDKIT_HOST='' timeout 300 "$KILN" build "$@" \
		2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}
klua "$warm" --progress=json --push warm
if [ "$rc" = 0 ] && [ "$(n_ran)" = 2 ] && config_has_cache "$run_id-d"; then
	ok "kiln.lua: cache_to = { \"type=inline\" } pushes the inline cache"
else
	not_ok "kiln.lua: cache_to = { \"type=inline\" } pushes the inline cache" "exit $rc" \
		"$(runs)" "$(printf '%s\n' "$err" | grep -v '"vertex' | tail -n 5)"
fi
klua "$cold" --progress=json cold
if [ "$rc" = 0 ] && [ "$(n_ran)" = 0 ] && [ "$(n_cached)" = 2 ]; then
	ok "kiln.lua: cache_from on the cold engine runs 0 RUN steps"
else
	not_ok "kiln.lua: cache_from on the cold engine runs 0 RUN steps" "exit $rc" \
		"$(runs)" "$(printf '%s\n' "$err" | jq -c 'select(.type == "vertex" or .type == "job.finished") | [.name, .error, .cached]' | uniq)"
fi
expect_eq "kiln.lua: the cold image prints what the RUN steps wrote" "$(want d)" \
	"$("$DOCKER" -H "$cold" run --rm "kiln-cache-test/cold:$run_id-d" 2>&1)"

# ---- 5. without inline cache, nothing to import ---------------------------------------------

# Last on the cold engine: once it has run RUN steps on a base image
# itself, BuildKit v0.8 stops matching inline cache imported for that base
# (`docker build --cache-from` on dockerd 20.10 does the same), so 2-4
# must come first.

warm_push c --build-arg BUILDKIT_INLINE_CACHE=0
if config_has_cache "$run_id-c"; then
	not_ok "warm: BUILDKIT_INLINE_CACHE=0: the config has no inline cache"
else
	ok "warm: BUILDKIT_INLINE_CACHE=0: the config has no inline cache"
fi
cold_from c 2 0 --cache-from "type=registry,ref=$REG/$repo:$run_id-c"

# ---- 6. what dockerd 20.10 cannot do: refused before the solve ------------------------------

# refused NAME REGEX ARGS...: `kiln build ARGS` on the warm engine exits 2
# before the solve: no vertex, and the job's error (one line, "kiln: " on
# stderr without --progress=json) matches REGEX
refused() {
	local name=$1 re=$2 msg; shift 2
	kb "$warm" --progress=json "$@" a
	msg=$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished" and
		.metrics.vertices == 0) | .error' 2>/dev/null)
	if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$msg" | grep -c .)" = 1 ] &&
		printf '%s\n' "$msg" | grep -Eq -- "$re"; then
		ok "$name"
	else
		not_ok "$name" "exit $rc, error: $msg" "$(printf '%s\n' "$err" | grep -v '^{')"
	fi
}
engine='BuildKit v0\.8 \(as in dockerd 20\.10\)'
refused "refused: --cache-to type=registry,mode=max (v0.8 exports only inline)" \
	"^--cache-to type=registry,ref=$REG/$repo:max,mode=max: $engine has no 'registry' cache exporter; it exports only inline cache" \
	--cache-to "type=registry,ref=$REG/$repo:max,mode=max"
refused "refused: --cache-to type=local (v0.8 exports only inline)" \
	"^--cache-to type=local,dest=$tmp/lc: $engine has no 'local' cache exporter" \
	--cache-to "type=local,dest=$tmp/lc"
if [ ! -e "$tmp/lc" ]; then
	ok "refused: nothing written to the local cache's dest"
else
	not_ok "refused: nothing written to the local cache's dest" "$(ls -la "$tmp/lc")"
fi
refused "refused: --cache-from type=local (no session content store)" \
	"^--cache-from type=local,src=$tmp: the local cache type needs the session's content store" \
	--cache-from "type=local,src=$tmp"
refused "refused: --cache-to type=gha names the engine" \
	"^--cache-to type=gha: $engine has no 'gha' cache" --cache-to type=gha
refused "refused: --cache-from type=inline (an export type)" \
	"^--cache-from type=inline: inline is an export type" --cache-from type=inline
refused "refused: --cache-to type=registry without ref" \
	"^--cache-to type=registry: the registry cache needs ref=" --cache-to type=registry
refused "refused: --cache-to mode=fast" \
	"^--cache-to type=inline,mode=fast: mode must be min or max" --cache-to type=inline,mode=fast

tap_done
