#!/usr/bin/env bash
# tests/integration/lua_pool_test.sh: kiln's builder pool on two real
# dockerds. TAP.
#
# The local engine (scripts/engine.sh, $DOCKER_HOST) is builder "one". The
# test starts a second engine for builder "two": its own state dir (socket,
# data root, exec root), registry port and bridge (two dockerds on one
# docker0 break each other's RUN networking), and stops it again.
#
#   1. a second `engine.sh up` next to the running engine;
#   2. 12 targets, each FROM busybox with a RUN that sleeps 2 s and writes a
#      string unique to the run, on builders "one" and "two" (max_jobs 3
#      each): exit 0, 12 'done' rows, both builders used; every image is in
#      the engine its row names (with the row's digest), not in the other,
#      and prints its string;
#   3. routing by platform: "one" declares linux/amd64, "two" linux/arm64;
#      the arm64 jobs of two-platform targets run on "two", the amd64 ones
#      on "one" (their `uname -m`, exported with type=local);
#   4. `engine.sh down` of the second engine stops only it: its processes
#      and bridge are gone, the first engine's dockerd and registry keep
#      their pids;
#   5. the 12 targets again, with a new run id: exactly one warning, that
#      "two" is unreachable; all 12 'done' on "one", images there.
#
# Needs root (for the second engine). Runs may overlap: each run takes a
# free slot N (0-9, under a lock): bridge kiln-poolN, 172.30.22N.1/24 and a
# free registry port from 52N0.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
case $DOCKER_HOST in
unix://*) ;;
*) echo "Bail out! DOCKER_HOST is not a unix socket: $DOCKER_HOST"; exit 1 ;;
esac
if [ "$(id -u)" != 0 ]; then
	skip "builder pool on two dockerds" "needs root to start a second engine"
	tap_done
	exit
fi

one=$DOCKER_HOST
# The first engine's state dir, when DOCKER_HOST is an engine.sh socket:
# its pids are checked to survive the second engine's `down`.
pdir=${DOCKER_HOST#unix://}
pdir=${pdir%/docker.sock}
[ -e "$pdir/.kiln-engine" ] || pdir=

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-lua-pool.XXXXXX")
eng_dir='' port='' bridge='' bip=''
eng2() { # engine.sh for the second engine only
	[ -n "$eng_dir" ] && [ "$eng_dir" != "$pdir" ] || return 1
	env KILN_ENGINE_DIR="$eng_dir" KILN_REGISTRY_PORT="$port" KILN_ENGINE_BRIDGE="$bridge" \
		KILN_ENGINE_BIP="$bip" KILN_ENGINE_DEBIAN=0 scripts/engine.sh "$@"
}
cleanup() {
	if [ -n "$eng_dir" ] && [ -e "$eng_dir/.kiln-engine" ]; then
		eng2 down >>"$tmp/eng2.log" 2>&1 || sed 's/^/# /' "$tmp/eng2.log"
	fi
	[ -n "$eng_dir" ] && [ -d "$eng_dir" ] && rmdir "$eng_dir" 2>/dev/null
	"$DOCKER" -H "$one" images --format '{{.Repository}}:{{.Tag}}' |
		grep "^kiln-pool-test/.*:$run_id-" | xargs -r "$DOCKER" -H "$one" rmi -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# alive PID: the process exists and is not a zombie
alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	case ${st%% *} in '' | Z | X) return 1 ;; esac
}
pidof_file() { tr -dc '0-9' <"$1" 2>/dev/null; }

# ---- 1. the second engine ---------------------------------------------------------------

engine_slot pool 172.30.22 52
bridge=$slot_bridge bip=$slot_bip port=$slot_port
eng_dir=$(mktemp -d /var/tmp/kiln-pool.XXXXXX)
two=unix://$eng_dir/docker.sock
ppids=
[ -z "$pdir" ] || ppids="$(pidof_file "$pdir/dockerd.pid") $(pidof_file "$pdir/registry.pid")"

if eng2 up >"$tmp/eng2.env" 2>"$tmp/eng2.log" && "$DOCKER" -H "$two" version >/dev/null 2>&1; then
	ok "a second engine next to the first ($bridge, $bip, registry :$port)"
else
	not_ok "a second engine next to the first ($bridge, $bip, registry :$port)" \
		"$(tail -n 20 "$tmp/eng2.log")"
	tap_done
	exit 1
fi
expect_eq "the second engine: its own socket, data root, exec root and bridge" \
	"--host $two --data-root $eng_dir/docker --exec-root $eng_dir/exec --bridge $bridge" \
	"$(tr '\0' '\n' <"/proc/$(pidof_file "$eng_dir/dockerd.pid")/cmdline" 2>/dev/null |
		grep -A1 -xE -e '--(host|data-root|exec-root|bridge)' | grep -v -- '^--$' | paste -sd' ' -)"

host_of() { case $1 in one) echo "$one" ;; two) echo "$two" ;; esac; }
# rows: "TARGET BUILDER DIGEST" of the summary's platform-less 'done' rows
rows() {
	printf '%s\n' "$err" |
		grep -E '^t[0-9]{2} +- +[a-z]+ +done +[0-9.]+s +[0-9]+/[0-9]+ +sha256:[0-9a-f]{64}$' |
		awk '{ print $1, $3, $7 }'
}
# check_images RUN: each row's image is in its builder's engine with the
# row's digest, not in the other one, and prints "built TARGET RUN"; prints
# what is wrong
check_images() {
	local t b d host other tag
	while read -r t b d; do
		host=$(host_of "$b")
		tag=kiln-pool-test/$t:$1
		[ "$("$DOCKER" -H "$host" image inspect -f '{{.Id}}' "$tag" 2>/dev/null)" = "$d" ] ||
			echo "$t: not in $b's engine with digest $d"
		[ "$("$DOCKER" -H "$host" run --rm "$tag" 2>&1)" = "built $t $1" ] ||
			echo "$t: does not print 'built $t $1' on $b"
		if [ -n "${2:-}" ]; then
			other=$(host_of "$([ "$b" = one ] && echo two || echo one)")
			"$DOCKER" -H "$other" image inspect "$tag" >/dev/null 2>&1 &&
				echo "$t: also in the other engine"
		fi
	done < <(rows)
}

# ---- 2. twelve targets on two builders ------------------------------------------------------

p=$tmp/twelve
mkdir -p "$p/app"
# shellcheck disable=SC2016 # $NAME, $RUN_ID: for the Dockerfile
printf '%s\n' 'FROM busybox' 'ARG NAME' 'ARG RUN_ID' \
	'RUN echo "built $NAME $RUN_ID" > /built && sleep 2 && cat /built' \
	'CMD ["cat", "/built"]' > "$p/app/Dockerfile"
cat > "$p/kiln.lua" <<'EOF'
builder "one" { addr = kiln.vars.one, max_jobs = 3 }
builder "two" { addr = kiln.vars.two, max_jobs = 3 }
local names = {}
for i = 1, 12 do
  local name = string.format("t%02d", i)
  names[#names + 1] = name
  target(name) {
    context = "app",
    args = { NAME = name, RUN_ID = kiln.vars.run },
    tags = { "kiln-pool-test/" .. name .. ":" .. kiln.vars.run },
  }
end
group "default" { table.unpack(names) }
EOF

kbuild_in "$p" --progress=plain --var one="$one" --var two="$two" --var run="$run_id-a"
if [ $rc -eq 0 ]; then ok "two builders, 12 targets: exit 0"; else not_ok "two builders, 12 targets: exit $rc"; show_err; fi
expect_eq "two builders: 12 'done' rows, one per target, with digests" \
	"$(printf 't%02d\n' $(seq 1 12))" "$(rows | cut -d' ' -f1 | sort -u)"
n1=$(rows | grep -c ' one ') n2=$(rows | grep -c ' two ')
if [ "$n1" -ge 1 ] && [ "$n2" -ge 1 ] && [ $((n1 + n2)) -eq 12 ]; then
	ok "two builders: both used (one: $n1, two: $n2)"
else
	not_ok "two builders: both used" "one: $n1, two: $n2"; show_err
fi
expect_eq "two builders: no warning" 0 "$(printf '%s\n' "$err" | grep -ci 'warning')"
expect_eq "two builders: each image is in its builder's engine only, with its digest, and runs" \
	"" "$(check_images "$run_id-a" other)"

# ---- 3. routing by platform ---------------------------------------------------------------------

if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] &&
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	p=$tmp/route
	mkdir -p "$p/arch"
	# shellcheck disable=SC2016 # $RUN_ID: for the Dockerfile
	printf '%s\n' 'FROM busybox AS build' 'ARG RUN_ID' \
		'RUN echo "$RUN_ID" > /id && uname -m > /arch' \
		'FROM scratch' 'COPY --from=build /arch /id /' > "$p/arch/Dockerfile"
	cat > "$p/kiln.lua" <<'EOF'
builder "one" { addr = kiln.vars.one, platforms = { "linux/amd64" } }
builder "two" { addr = kiln.vars.two, platforms = { "linux/arm64" } }
for _, n in ipairs({ "r1", "r2" }) do
  target(n) {
    context = "arch",
    args = { RUN_ID = kiln.vars.run },
    platforms = { "linux/amd64", "linux/arm64" },
    output = { "type=local,dest=out-" .. n },
  }
end
group "default" { "r1", "r2" }
EOF
	kbuild_in "$p" --progress=plain --var one="$one" --var two="$two" --var run="$run_id-r"
	got=$(printf '%s\n' "$err" | grep -E '^r[12] +linux/[a-z0-9]+ +[a-z]+ +done ' |
		awk '{ print $1, $2, $3 }' | sort)
	expect_eq "routing: amd64 jobs on one (linux/amd64), arm64 jobs on two (linux/arm64)" \
		"0
r1 linux/amd64 one
r1 linux/arm64 two
r2 linux/amd64 one
r2 linux/arm64 two" "$rc
$got"
	got=
	for n in r1 r2; do
		for pl in amd64 arm64; do
			got="$got $(cat "$p/out-$n/linux_$pl/arch" "$p/out-$n/linux_$pl/id" 2>/dev/null | paste -sd: -)"
		done
	done
	expect_eq "routing: each platform's uname -m, from this run" \
		" x86_64:$run_id-r aarch64:$run_id-r x86_64:$run_id-r aarch64:$run_id-r" "$got"
else
	skip "routing by platform" "needs an amd64 host with qemu-aarch64 in binfmt_misc"
	skip "routing: each platform's uname -m" "needs an amd64 host with qemu-aarch64 in binfmt_misc"
fi

# ---- 4. the second engine goes down ----------------------------------------------------------

epids="$(pidof_file "$eng_dir/dockerd.pid") $(pidof_file "$eng_dir/registry.pid") $(pidof_file "$eng_dir/exec/containerd/containerd.pid")"
if eng2 down >>"$tmp/eng2.log" 2>&1; then
	ok "engine.sh down of the second engine: exit 0"
else
	not_ok "engine.sh down of the second engine" "$(tail -n 20 "$tmp/eng2.log")"
fi
left=
for pid in $epids; do alive "$pid" && left="$left $pid"; done
ip link show "$bridge" >/dev/null 2>&1 && left="$left bridge:$bridge"
[ -e "$eng_dir" ] && left="$left dir:$eng_dir"
"$DOCKER" -H "$two" version >/dev/null 2>&1 && left="$left socket:$two"
expect_eq "down: the second engine's dockerd, containerd, registry, bridge and dir are gone" \
	"" "$left"
if [ -n "$pdir" ]; then
	after="$(pidof_file "$pdir/dockerd.pid") $(pidof_file "$pdir/registry.pid")"
	gone=
	for pid in $ppids; do alive "$pid" || gone="$gone $pid"; done
	expect_eq "down: the first engine's dockerd and registry live on, same pids" \
		"$ppids" "$after$gone"
else
	skip "down: the first engine's dockerd and registry live on" "DOCKER_HOST is not an engine.sh socket"
fi
check "down: the first engine still answers" "$DOCKER" -H "$one" version

# ---- 5. the same plan without "two" -----------------------------------------------------------

p=$tmp/twelve
kbuild_in "$p" --progress=plain --var one="$one" --var two="$two" --var run="$run_id-b"
if [ $rc -eq 0 ]; then ok "\"two\" down: exit 0"; else not_ok "\"two\" down: exit $rc"; show_err; fi
warn=$(printf '%s\n' "$err" | grep -i 'warning')
expect_eq "\"two\" down: one warning line" 1 "$(printf '%s' "$warn" | grep -c '^')"
expect_match "\"two\" down: it says \"two\" is unreachable, its jobs go elsewhere" \
	"^kiln: warning: builder \"two\" is unreachable: .*$eng_dir/docker.sock.*; its jobs go to other builders$" \
	"$warn"
expect_eq "\"two\" down: all 12 'done' on one" \
	"$(printf 't%02d one\n' $(seq 1 12))" "$(rows | cut -d' ' -f1,2 | sort -u)"
expect_eq "\"two\" down: each image is in the first engine, with its digest, and runs" \
	"" "$(check_images "$run_id-b")"

tap_done
