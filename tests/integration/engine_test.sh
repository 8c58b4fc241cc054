#!/usr/bin/env bash
# tests/integration/engine_test.sh - checks the local test engine
# (scripts/engine.sh); TAP output.
#
#   tests/integration/engine_test.sh               engine must be up
#   tests/integration/engine_test.sh --after-down  run after `engine.sh down`
#
# The first form checks the running engine, then records the pids of every
# engine process (dockerd, containerd, shims, registry, and a container it
# leaves running on purpose, so that `down` has a live container and shim to
# clean up) in $KILN_ENGINE_TEST_RECORD.  The second form checks that none of
# those processes is alive any more and that the state dir is gone.
#
# Exit status: 0 if every case passed.
#
# Case functions are called through run_case; fail() exits the case subshell.
# shellcheck disable=SC2317
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENGINE="$ROOT/scripts/engine.sh"
DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client
SLEEPER=kiln-engine-test-sleeper

DIR=${KILN_ENGINE_DIR:-/var/tmp/kiln-engine}
RECORD=${KILN_ENGINE_TEST_RECORD:-$DIR.test-pids}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-engine-test.XXXXXX") || exit 1
trap 'rm -rf -- "$TMP"' EXIT

N=0
FAILED=0

# run_case DESCRIPTION FUNCTION: one TAP line; the function's output is shown
# as "# " diagnostics when it fails.
run_case() {
	local desc=$1 fn=$2 out
	N=$((N + 1))
	if out=$("$fn" 2>&1); then
		printf 'ok %d - %s\n' "$N" "$desc"
	else
		printf 'not ok %d - %s\n' "$N" "$desc"
		printf '%s\n' "$out" | tail -n 40 | sed 's/^/# /'
		FAILED=$((FAILED + 1))
	fi
}

# skip_case DESCRIPTION REASON: one TAP line, skipped
skip_case() {
	N=$((N + 1))
	printf 'ok %d - %s # SKIP %s\n' "$N" "$1" "$2"
}

# fail MESSAGE: ends the case (each case runs in its own subshell)
fail() {
	printf '%s\n' "$*" >&2
	exit 1
}

dk() { "$DOCKER" "$@"; } # DOCKER_HOST comes from `engine.sh env`

# starttime PID -> field 22 of /proc/PID/stat (distinguishes reused pids)
starttime() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# is_zombie PID -> 0 if the process has exited but is not reaped yet
is_zombie() {
	case $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) in
	Z | X | '') return 0 ;;
	*) return 1 ;;
	esac
}

# --- checks on the running engine ------------------------------------------------

pidfile() { tr -dc '0-9' <"$1" 2>/dev/null; }

case_up_again() {
	local d1 r1 d2 r2 out env
	d1=$(pidfile "$DIR/dockerd.pid")
	r1=$(pidfile "$DIR/registry.pid")
	if [ -z "$d1" ] || [ -z "$r1" ]; then fail "no pid files in $DIR"; fi
	out=$("$ENGINE" up 2>"$TMP/up.err") || {
		cat "$TMP/up.err"
		fail "second 'engine.sh up' failed"
	}
	d2=$(pidfile "$DIR/dockerd.pid")
	r2=$(pidfile "$DIR/registry.pid")
	[ "$d1" = "$d2" ] || fail "dockerd pid changed: $d1 -> $d2"
	[ "$r1" = "$r2" ] || fail "registry pid changed: $r1 -> $r2"
	env=$("$ENGINE" env) || fail "engine.sh env failed"
	[ "$out" = "$env" ] || fail "up printed '$out', env prints '$env'"
	dk version >/dev/null || fail "dockerd does not answer after the second up"
}

case_env() {
	[ "$DOCKER_HOST" = "unix://$DIR/docker.sock" ] || fail "DOCKER_HOST=$DOCKER_HOST"
	[ "$BUILDKIT_HOST" = "docker-unix://$DIR/docker.sock" ] || fail "BUILDKIT_HOST=$BUILDKIT_HOST"
	[ -S "$DIR/docker.sock" ] || fail "$DIR/docker.sock is not a socket"
	[ "$KILN_ENGINE_DIR" = "$DIR" ] || fail "KILN_ENGINE_DIR=$KILN_ENGINE_DIR"
	curl -fsS "http://$KILN_REGISTRY/v2/" >/dev/null || fail "no registry at $KILN_REGISTRY"
}

LIST_MT='application/vnd.docker.distribution.manifest.list.v2+json'
ACCEPT="Accept: $LIST_MT, application/vnd.oci.image.index.v1+json"
ACCEPT_ONE='Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'

index_of() {
	curl -fsS -H "$ACCEPT" "http://$KILN_REGISTRY/v2/$1/manifests/latest"
}

case_index_platforms() {
	local idx plats repo
	for repo in library/busybox kiln/busybox; do
		idx=$(index_of "$repo") || fail "no $repo:latest in the registry"
		plats=$(jq -r '.manifests[].platform | "\(.os)/\(.architecture)"' <<<"$idx" |
			LC_ALL=C sort | tr '\n' ' ')
		[ "$plats" = "linux/amd64 linux/arm64 " ] ||
			fail "$repo:latest lists platforms '$plats'"
		jq -e --arg mt "$LIST_MT" '.mediaType == $mt' <<<"$idx" >/dev/null ||
			fail "$repo:latest is not a manifest list: $idx"
	done
	[ "$(index_of library/busybox | sha256sum)" = "$(index_of kiln/busybox | sha256sum)" ] ||
		fail "library/busybox and kiln/busybox differ"
}

# config_arch ARCH -> the architecture in the registry's config for ARCH
config_arch() {
	local idx digest man cfg
	idx=$(index_of library/busybox) || return 1
	digest=$(jq -r --arg a "$1" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$idx")
	[ -n "$digest" ] || fail "no $1 entry in the index"
	man=$(curl -fsS -H "$ACCEPT_ONE" "http://$KILN_REGISTRY/v2/library/busybox/manifests/$digest") || return 1
	cfg=$(jq -r .config.digest <<<"$man")
	curl -fsSL "http://$KILN_REGISTRY/v2/library/busybox/blobs/$cfg" |
		jq -r '"\(.os)/\(.architecture) \(.config.Cmd | join(" ")) \(.rootfs.diff_ids | length)"'
}

case_config_arch() {
	local a got
	for a in amd64 arm64; do
		got=$(config_arch "$a") || fail "cannot read the $a config"
		[ "$got" = "linux/$a sh 1" ] || fail "$a config: '$got'"
		got=$(dk image inspect -f '{{.Os}}/{{.Architecture}}' "busybox:$a") ||
			fail "no busybox:$a in dockerd"
		[ "$got" = "linux/$a" ] || fail "docker image inspect busybox:$a: $got"
	done
	got=$(dk image inspect -f '{{.Architecture}}' busybox:latest) || fail "no busybox:latest"
	[ "$got" = "$(dpkg --print-architecture)" ] || fail "busybox:latest is $got"
}

case_buildkit_arm64() {
	local ctx="$TMP/ctx" out digest
	mkdir -p "$ctx"
	printf 'FROM busybox\nRUN uname -m\n' >"$ctx/Dockerfile"
	out=$(DOCKER_BUILDKIT=1 timeout 300 "$DOCKER" build --platform linux/arm64 \
		--progress plain --no-cache "$ctx" 2>&1) || {
		printf '%s\n' "$out"
		fail "docker build failed"
	}
	grep -q 'aarch64' <<<"$out" || {
		printf '%s\n' "$out"
		fail "no aarch64 in the build output"
	}
	# FROM busybox resolved through the registry mirror: BuildKit pins the
	# manifest list it got from our registry.
	digest=$(curl -fsS -I -H "$ACCEPT" "http://$KILN_REGISTRY/v2/library/busybox/manifests/latest" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
	grep -q "docker.io/library/busybox@$digest" <<<"$out" || {
		printf '%s\n' "$out"
		fail "build did not use docker.io/library/busybox@$digest from the mirror"
	}
}

case_run_arm64() {
	local out
	out=$(timeout 120 "$DOCKER" run --rm --platform linux/arm64 busybox:arm64 uname -m) ||
		fail "docker run failed: $out"
	[ "$out" = aarch64 ] || fail "uname -m printed '$out'"
}

case_run_amd64() {
	local out
	out=$(timeout 120 "$DOCKER" run --rm busybox:amd64 uname -m) || fail "docker run failed: $out"
	[ "$out" = x86_64 ] || fail "uname -m printed '$out'"
}

# --- the debian images -------------------------------------------------------------

# debian_list TAG -> the manifest list of library/debian:TAG
debian_list() {
	curl -fsS -H "$ACCEPT" "http://$KILN_REGISTRY/v2/library/debian/manifests/$1"
}

# debian_config TAG -> "os/arch Cmd" of the (only) image in TAG's list
debian_config() {
	local idx digest man cfg
	idx=$(debian_list "$1") || return 1
	digest=$(jq -r '.manifests[0].digest' <<<"$idx")
	man=$(curl -fsS -H "$ACCEPT_ONE" "http://$KILN_REGISTRY/v2/library/debian/manifests/$digest") || return 1
	cfg=$(jq -r .config.digest <<<"$man")
	curl -fsSL "http://$KILN_REGISTRY/v2/library/debian/blobs/$cfg" |
		jq -r '"\(.os)/\(.architecture) \(.config.Cmd | join(" "))"'
}

case_debian_tags() {
	local native tag d plats version had
	native=$(dpkg --print-architecture)
	for tag in bookworm bookworm-slim; do
		debian_list "$tag" >/dev/null || fail "no library/debian:$tag in the registry"
		plats=$(debian_list "$tag" | jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(" ")')
		[ "$plats" = "linux/$native" ] || fail "debian:$tag lists platforms '$plats'"
		d=$(debian_config "$tag") || fail "cannot read the config of debian:$tag"
		[ "$d" = "linux/$native bash" ] || fail "debian:$tag config: '$d'"
	done
	had=$(dk image inspect -f '{{.Id}}' debian:bookworm-slim 2>/dev/null || true)
	dk pull -q debian:bookworm-slim >/dev/null || fail "docker pull debian:bookworm-slim failed"
	version=$(dk run --rm debian:bookworm-slim cat /etc/debian_version 2>&1) ||
		fail "docker run debian:bookworm-slim: $version"
	[ -n "$had" ] || dk rmi debian:bookworm-slim >/dev/null 2>&1 || true
	[[ $version =~ ^12\.[0-9]+$ ]] || fail "/etc/debian_version is '$version'"
	for tag in 12 "$version" latest; do
		[ "$(debian_list "$tag" | sha256sum)" = "$(debian_list bookworm | sha256sum)" ] ||
			fail "debian:$tag is not the same manifest list as debian:bookworm"
	done
	for tag in 12-slim "$version-slim"; do
		[ "$(debian_list "$tag" | sha256sum)" = "$(debian_list bookworm-slim | sha256sum)" ] ||
			fail "debian:$tag is not the same manifest list as debian:bookworm-slim"
	done
}

# docker pull through the mirror; what Debian's own images hold: apt sources
# on deb.debian.org (bookworm, -updates, -security), no manually installed
# package, the docker-clean apt config; slim: no docs but copyrights, no
# man pages, info or locales (and the full image has them).
case_debian_pull() {
	local out tag had
	for tag in bookworm bookworm-slim; do
		had=$(dk image inspect -f '{{.Id}}' "debian:$tag" 2>/dev/null || true)
		dk pull -q "debian:$tag" >/dev/null || fail "docker pull debian:$tag failed"
		# shellcheck disable=SC2016 # the script runs in the container
		out=$(dk run --rm "debian:$tag" sh -c '
			sed -n "s/^\(URIs\|Suites\): //p" /etc/apt/sources.list.d/debian.sources | tr "\n" " "
			echo "manual=$(apt-mark showmanual | wc -l)"
			test -f /etc/apt/apt.conf.d/docker-clean && echo docker-clean
			echo "docs=$(find /usr/share/doc -type f ! -name copyright | wc -l)"
			echo "man=$(find /usr/share/man /usr/share/info /usr/share/locale -type f 2>/dev/null | wc -l)"' 2>&1) ||
			fail "docker run debian:$tag: $out"
		[ -n "$had" ] || dk rmi "debian:$tag" >/dev/null 2>&1 || true
		printf 'debian:%s: %s\n' "$tag" "$(printf '%s' "$out" | tr '\n' ' ')"
		[ "$(head -n 1 <<<"$out")" = 'http://deb.debian.org/debian bookworm bookworm-updates http://deb.debian.org/debian-security bookworm-security manual=0' ] ||
			fail "debian:$tag: apt sources or apt-mark showmanual differ from Debian's images"
		grep -qx docker-clean <<<"$out" || fail "debian:$tag: no /etc/apt/apt.conf.d/docker-clean"
		case $tag in
		*-slim)
			grep -qx 'docs=0' <<<"$out" || fail "debian:$tag keeps docs other than copyright files"
			grep -qx 'man=0' <<<"$out" || fail "debian:$tag keeps man pages, info or locales"
			;;
		*)
			! grep -qx 'docs=0' <<<"$out" || fail "debian:$tag has no docs (slimmed?)"
			! grep -qx 'man=0' <<<"$out" || fail "debian:$tag has no man pages (slimmed?)"
			;;
		esac
	done
}

# BuildKit resolves an unmodified FROM debian:bookworm[-slim] through the
# mirror (--pull: not from dockerd's image store), and apt-get in a RUN step
# reaches Debian's archive through the engine's bridge; in the slim image
# dpkg leaves the new package's man page out and keeps its copyright file.
case_debian_apt_build() {
	local ctx="$TMP/debctx" out d tag
	mkdir -p "$ctx"
	# shellcheck disable=SC1003,SC2016 # Dockerfile lines, as they are
	printf '%s\n' \
		'FROM debian:bookworm AS full' \
		'RUN apt-get update && apt-get install -y --no-install-recommends hello \' \
		'    && echo "full: $(hello) man=$(ls /usr/share/man/man1/hello.1.gz)"' \
		'FROM debian:bookworm-slim' \
		'COPY --from=full /etc/hostname /tmp/full-built' \
		'RUN apt-get update && apt-get install -y --no-install-recommends hello \' \
		'    && echo "slim: $(hello) man=$(ls /usr/share/man/man1/hello.1.gz 2>/dev/null) doc=$(ls /usr/share/doc/hello)"' \
		>"$ctx/Dockerfile"
	out=$(DOCKER_BUILDKIT=1 timeout 600 "$DOCKER" build --pull --no-cache \
		--iidfile "$TMP/debian.iid" --progress plain "$ctx" 2>&1)
	if [ -s "$TMP/debian.iid" ]; then dk rmi "$(cat "$TMP/debian.iid")" >/dev/null 2>&1 || true; fi
	[ -s "$TMP/debian.iid" ] || {
		printf '%s\n' "$out"
		fail "docker build with apt-get install failed"
	}
	grep -Eq '^#[0-9]+ [0-9.]+ full: Hello, world! man=/usr/share/man/man1/hello.1.gz$' <<<"$out" || {
		printf '%s\n' "$out"
		fail "no 'full: Hello, world! man=...' line"
	}
	grep -Eq '^#[0-9]+ [0-9.]+ slim: Hello, world! man= doc=copyright$' <<<"$out" || {
		printf '%s\n' "$out"
		fail "no 'slim: Hello, world! man= doc=copyright' line"
	}
	for tag in bookworm bookworm-slim; do
		d=$(curl -fsS -I -H "$ACCEPT" "http://$KILN_REGISTRY/v2/library/debian/manifests/$tag" |
			tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
		grep -q "FROM docker.io/library/debian:$tag@$d" <<<"$out" || {
			printf '%s\n' "$out"
			fail "build did not use docker.io/library/debian:$tag@$d from the mirror"
		}
	done
}

# engine_procs -> "pid starttime command" for every engine process: command
# line names a path under $DIR, or a descendant of one (container processes).
engine_procs() {
	local p pid ppid stat cmd
	local -A kids=() seen=()
	local queue=()
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		stat=$(cat "$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		ppid=${stat#* }
		ppid=${ppid%% *}
		kids[$ppid]+=" $pid"
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case $cmd in *"$DIR/"*) queue+=("$pid") ;; esac
	done
	while [ "${#queue[@]}" -gt 0 ]; do
		pid=${queue[0]}
		queue=("${queue[@]:1}")
		[ -z "${seen[$pid]:-}" ] || continue
		seen[$pid]=1
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
		printf '%s %s %s\n' "$pid" "$(starttime "$pid")" "${cmd:0:120}"
		# shellcheck disable=SC2206 # split the pid list on purpose
		queue+=(${kids[$pid]:-})
	done
}

# record_pids: starts an arm64 container that keeps running (its shim and
# qemu-run sleep must be cleaned up by `down`), then writes
# "pid starttime command" for every engine process to $RECORD.
case_record_pids() {
	local n
	dk rm -f "$SLEEPER" >/dev/null 2>&1 || true
	dk run -d --name "$SLEEPER" --platform linux/arm64 busybox:arm64 sleep 86400 >/dev/null ||
		fail "cannot start $SLEEPER"
	engine_procs >"$RECORD.new" || fail "cannot write $RECORD.new"
	mv "$RECORD.new" "$RECORD" || fail "cannot write $RECORD"
	cat "$RECORD"
	grep -q dockerd "$RECORD" || fail "dockerd not found among the recorded processes"
	grep -q docker-registry "$RECORD" || fail "docker-registry not found"
	grep -q 'containerd --config' "$RECORD" || fail "containerd not found"
	grep -q containerd-shim "$RECORD" || fail "no containerd-shim found"
	grep -q 'sleep 86400' "$RECORD" || fail "the container's sleep was not found"
	n=$(wc -l <"$RECORD")
	[ "$n" -ge 5 ] || fail "only $n engine processes found"
}

# --- after `engine.sh down` --------------------------------------------------------

check_down_clean() {
	local pid st cmd alive=0 p
	[ -s "$RECORD" ] || fail "no pid record $RECORD (run the test before down)"
	while read -r pid st cmd; do
		# A zombie is dead; some inits (e.g. a VM's minimal pid 1) reap late.
		if [ -d "/proc/$pid" ] && [ "$(starttime "$pid")" = "$st" ] &&
			! is_zombie "$pid"; then
			printf 'still alive: %s %s\n' "$pid" "$cmd"
			alive=1
		fi
	done <"$RECORD"
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case $cmd in
		*"$DIR/"*)
			! is_zombie "${p#/proc/}" || continue
			printf 'process refers to %s: %s %s\n' "$DIR" "${p#/proc/}" "$cmd"
			alive=1
			;;
		esac
	done
	[ "$alive" = 0 ] || fail "engine processes survived down"
	[ ! -e "$DIR" ] || fail "$DIR still exists"
	! grep -q " $DIR/" /proc/self/mountinfo || fail "mounts under $DIR remain"
}

case_down_clean() {
	check_down_clean && rm -f "$RECORD"
}

# --- main ------------------------------------------------------------------------

if [ "${1:-}" = --after-down ]; then
	echo '1..1'
	run_case "after down: no recorded engine process alive, state dir removed" case_down_clean
	exit $((FAILED > 0))
fi

env_lines=$("$ENGINE" env) || {
	echo 'Bail out! scripts/engine.sh env failed'
	exit 1
}
eval "$env_lines"
if ! "$DOCKER" version >/dev/null 2>&1; then
	echo "Bail out! engine not up ($DOCKER_HOST); run scripts/engine.sh up"
	exit 1
fi

echo '1..11'
run_case "engine.sh up a second time is harmless (same dockerd and registry pids)" case_up_again
run_case "env: DOCKER_HOST, BUILDKIT_HOST=docker-unix://<path>, KILN_REGISTRY answer" case_env
run_case "registry: busybox:latest index lists linux/amd64 and linux/arm64" case_index_platforms
run_case "image configs: amd64 says amd64, arm64 says arm64 (registry and dockerd)" case_config_arch
run_case "BuildKit: FROM busybox (via mirror) RUN uname -m on linux/arm64 prints aarch64" case_buildkit_arm64
run_case "docker run --platform linux/arm64 busybox:arm64 uname -m prints aarch64" case_run_arm64
run_case "docker run busybox:amd64 uname -m prints x86_64" case_run_amd64
if [ "${KILN_ENGINE_DEBIAN:-1}" = 0 ]; then
	for d in "registry: debian:bookworm, :12, :12.N, :latest and the -slim tags" \
		"docker pull debian:bookworm[-slim]: Debian's apt setup; slim has no docs" \
		"BuildKit: FROM debian:bookworm[-slim] via mirror, apt-get install from deb.debian.org"; do
		skip_case "$d" "KILN_ENGINE_DEBIAN=0"
	done
else
	run_case "registry: debian:bookworm, :12, :12.N, :latest and the -slim tags, linux/$(dpkg --print-architecture), Cmd bash" case_debian_tags
	run_case "docker pull debian:bookworm[-slim]: Debian's apt setup; slim has no docs, man pages or locales" case_debian_pull
	run_case "BuildKit: FROM debian:bookworm[-slim] via mirror, apt-get install from deb.debian.org, slim drops the man page" case_debian_apt_build
fi
run_case "record engine pids for --after-down (with a running arm64 container)" case_record_pids
exit $((FAILED > 0))
