#!/usr/bin/env bash
# scripts/engine.sh - start and stop the local engine kiln's integration
# tests run against: a private dockerd (BuildKit inside), a loopback
# docker-registry holding a locally made multi-platform busybox image and
# debootstrapped debian:bookworm and bookworm-slim images, and qemu-aarch64
# in binfmt_misc for linux/arm64 RUN steps.  See docs/engine.md.
#
#   scripts/engine.sh up        start (or reuse) everything; prints env lines
#   scripts/engine.sh down      stop what `up` started and remove the state dir
#   scripts/engine.sh down --keep   ... but keep the state dir
#   scripts/engine.sh env       print the env lines: eval "$(scripts/engine.sh env)"
#   scripts/engine.sh status    report what runs (exit 0 if dockerd and registry run)
#   scripts/engine.sh podman-up     start (or reuse) only Podman's service, beside
#                                   a running engine (`up` starts it too)
#   scripts/engine.sh podman-down   stop only Podman's service
#
# Progress goes to stderr; only `env`/`up` write to stdout, so
# `eval "$(scripts/engine.sh up)"` works.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib/registry.sh
. "$SELF_DIR/lib/registry.sh"
# shellcheck source=SCRIPTDIR/lib/image.sh
. "$SELF_DIR/lib/image.sh"
# shellcheck source=SCRIPTDIR/lib/debian.sh
. "$SELF_DIR/lib/debian.sh"

DIR=${KILN_ENGINE_DIR:-/var/tmp/kiln-engine}
PORT=${KILN_REGISTRY_PORT:-5000}
BRIDGE=${KILN_ENGINE_BRIDGE:-}
BIP=${KILN_ENGINE_BIP:-172.30.213.1/24}
CACHE=${KILN_ENGINE_CACHE:-/var/cache/kiln-engine}
# Empty: the machine's apt sources' mirror for the suite (resolve_mirrors).
DEBIAN_MIRROR=${KILN_DEBIAN_MIRROR:-}
DEBIAN_SECURITY_MIRROR=${KILN_DEBIAN_SECURITY_MIRROR:-}
DEBIAN_SUITE=${KILN_DEBIAN_SUITE:-bookworm}
# 1: also make and push the debootstrapped debian:<suite>[-slim] images
DEBIAN_IMAGES=${KILN_ENGINE_DEBIAN:-1}
TIMEOUT=${KILN_ENGINE_TIMEOUT:-60}

# Fixed binaries: /usr/local/bin/docker may be an unrelated (newer) client.
DOCKERD_BIN=/usr/sbin/dockerd
DOCKER_BIN=/usr/bin/docker
REGISTRY_BIN=/usr/bin/docker-registry
PODMAN_BIN=/usr/bin/podman
QEMU_AARCH64=/usr/bin/qemu-aarch64-static
BINFMT_CONF=/usr/lib/binfmt.d/qemu-aarch64.conf
BINFMT_DIR=/proc/sys/fs/binfmt_misc

# The image: platforms pushed, and the repositories they are pushed to.
ARCHES=(amd64 arm64)
REPOS=(library/busybox kiln/busybox)

REG="127.0.0.1:$PORT"
SOCK="$DIR/docker.sock"
# Podman's Docker-compatible service: its own storage, config and socket
PM_DIR="$DIR/podman"
PM_SOCK="$DIR/podman.sock"
# 1: `up` also starts Podman's service (when /usr/bin/podman is installed)
PODMAN=${KILN_ENGINE_PODMAN:-1}
MARKER="$DIR/.kiln-engine"

# The docker client must talk to our socket only.
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_TLS

log() { printf 'engine: %s\n' "$*" >&2; }
die() {
	printf 'engine: error: %s\n' "$*" >&2
	exit 1
}

TMP=
cleanup() {
	# --one-file-system: never into something still mounted in a rootfs
	if [ -n "$TMP" ]; then rm -rf --one-file-system -- "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mktmp() {
	if [ -z "$TMP" ]; then TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-engine.XXXXXX"); fi
}

dk() { "$DOCKER_BIN" -H "unix://$SOCK" "$@"; }

check_config() {
	case $DIR in
	/*) ;;
	*) die "KILN_ENGINE_DIR must be an absolute path: $DIR" ;;
	esac
	case $DIR in
	/ | */ | *//* | */./* | */../* | */. | */.. | *[[:space:]]*)
		die "KILN_ENGINE_DIR must be a plain absolute path without a trailing /, '.', '..' or spaces: $DIR"
		;;
	esac
	case $PORT in
	'' | *[!0-9]*) die "KILN_REGISTRY_PORT is not a number: $PORT" ;;
	esac
	case $TIMEOUT in
	'' | *[!0-9]*) die "KILN_ENGINE_TIMEOUT is not a number of seconds: $TIMEOUT" ;;
	esac
	case $CACHE in
	/*) ;;
	*) die "KILN_ENGINE_CACHE must be an absolute path: $CACHE" ;;
	esac
	case $DEBIAN_IMAGES in
	0 | 1) ;;
	*) die "KILN_ENGINE_DEBIAN must be 0 or 1: $DEBIAN_IMAGES" ;;
	esac
	case $PODMAN in
	0 | 1) ;;
	*) die "KILN_ENGINE_PODMAN must be 0 or 1: $PODMAN" ;;
	esac
	case $DEBIAN_SUITE in
	'' | *[!a-z0-9-]*) die "KILN_DEBIAN_SUITE is not a Debian suite name: $DEBIAN_SUITE" ;;
	esac
	if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
		die "KILN_REGISTRY_PORT out of range: $PORT"
	fi
	# containerd's sockets live under the exec root; sun_path holds 108 bytes.
	local longest="$DIR/exec/containerd/containerd-debug.sock"
	[ "${#longest}" -lt 100 ] ||
		die "KILN_ENGINE_DIR is too long for unix socket paths: $DIR"
	case $BRIDGE in
	'' | none) ;;
	*[!A-Za-z0-9_.-]* | ?????????????????*)
		die "KILN_ENGINE_BRIDGE must be an interface name (max 15 chars): $BRIDGE"
		;;
	esac
}

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (dockerd, binfmt_misc, mounts)"
}

# --- processes ---------------------------------------------------------------

# proc_alive PID -> 0 if the process exists and is not a zombie
proc_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# proc_cmdline PID -> the command line, arguments joined with spaces
proc_cmdline() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# pid_from PIDFILE NEEDLE -> prints the pid in PIDFILE if that process is
# alive and its command line contains NEEDLE (guards against reused pids).
pid_from() {
	local pid cmd
	[ -s "$1" ] || return 1
	pid=$(tr -dc '0-9' <"$1") || return 1
	[ -n "$pid" ] || return 1
	proc_alive "$pid" || return 1
	cmd=$(proc_cmdline "$pid") || return 1
	case $cmd in
	*"$2"*) printf '%s\n' "$pid" ;;
	*) return 1 ;;
	esac
}

DOCKERD_NEEDLE="--data-root $DIR/docker"
REGISTRY_NEEDLE="serve $DIR/registry.yml"
CONTAINERD_PIDFILE="$DIR/exec/containerd/containerd.pid"
CONTAINERD_NEEDLE="$DIR/exec/containerd/containerd.toml"

PODMAN_NEEDLE="--root $PM_DIR/root"

dockerd_pid() { pid_from "$DIR/dockerd.pid" "$DOCKERD_NEEDLE"; }
podman_pid() { pid_from "$DIR/podman.pid" "$PODMAN_NEEDLE"; }
registry_pid() { pid_from "$DIR/registry.pid" "$REGISTRY_NEEDLE"; }
containerd_pid() { pid_from "$CONTAINERD_PIDFILE" "$CONTAINERD_NEEDLE"; }

# wait_gone SECONDS PID... -> 0 once none of the pids is alive
wait_gone() {
	local secs=$1 p left i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		left=0
		for p in "$@"; do
			if proc_alive "$p"; then left=1; fi
		done
		[ "$left" = 1 ] || return 0
		sleep 0.1
	done
	return 1
}

# ancestors -> our own pid and all our ancestors' (never killed)
# (called in a subshell: starts from that subshell, so the subshells between
# it and the script are skipped too)
ancestors() {
	local p=${BASHPID:-$$} pp
	printf '%s\n' "$$" "$p"
	while [ "$p" -gt 1 ]; do
		pp=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null) || break
		[ -n "$pp" ] || break
		printf '%s\n' "$pp"
		p=$pp
	done
}

# engine_pids -> pids of live processes that belong to this engine: those
# whose command line names a path under $DIR (dockerd, containerd, shims,
# registry), and all their descendants (processes in our containers: seen
# from the host their root and cwd are just "/").  A process whose only link
# is a cwd under $DIR (a shell cd'ed there) is reported on stderr, not listed.
engine_pids() {
	local skip p pid ppid cmd cwd stat
	local -A kids=() ours=()
	local queue=()
	skip=" $(ancestors | tr '\n' ' ') "
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		case $skip in *" $pid "*) continue ;; esac
		stat=$(cat "$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		case ${stat%% *} in Z | X) continue ;; esac
		ppid=${stat#* }
		ppid=${ppid%% *}
		kids[$ppid]+=" $pid"
		cmd=$(proc_cmdline "$pid") || continue
		case "$cmd " in
		*"$DIR/"* | *"$DIR "*)
			queue+=("$pid")
			continue
			;;
		esac
		cwd=$(readlink "$p/cwd" 2>/dev/null) || cwd=
		case $cwd in
		"$DIR" | "$DIR"/*)
			log "note: pid $pid ($(cat "$p/comm" 2>/dev/null || true)) has its cwd in $DIR; not ours, left alone"
			;;
		esac
	done
	while [ "${#queue[@]}" -gt 0 ]; do
		pid=${queue[0]}
		queue=("${queue[@]:1}")
		[ -z "${ours[$pid]:-}" ] || continue
		ours[$pid]=1
		printf '%s\n' "$pid"
		# shellcheck disable=SC2206 # split the pid list on purpose
		queue+=(${kids[$pid]:-})
	done
}

# port_busy PORT -> 0 if something listens on 127.0.0.1:PORT
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- state directory ---------------------------------------------------------

prepare_dir() {
	if [ -d "$DIR" ] && [ ! -e "$MARKER" ]; then
		if [ -n "$(ls -A "$DIR")" ]; then
			die "$DIR exists, is not empty and is not a kiln engine dir (no .kiln-engine); refusing to use it"
		fi
	fi
	mkdir -p "$DIR"
	chmod 0711 "$DIR"
	[ -e "$MARKER" ] || printf 'kiln engine state; remove with scripts/engine.sh down\n' >"$MARKER"
}

# lock_dir: one `up`/`down` at a time per state dir (fd 9; daemons get it closed)
lock_dir() {
	exec 9>>"$DIR/engine.lock"
	flock -w 600 9 || die "timed out waiting for the lock on $DIR/engine.lock"
}

# --- registry ----------------------------------------------------------------

start_registry() {
	local pid i spawned=
	if pid=$(registry_pid); then
		log "registry already running (pid $pid) on $REG"
	else
		if port_busy "$PORT"; then
			die "127.0.0.1:$PORT is already in use by another process; set KILN_REGISTRY_PORT"
		fi
		mkdir -p "$DIR/registry"
		cat >"$DIR/registry.yml" <<EOF
# written by scripts/engine.sh
version: 0.1
log:
  level: info
  fields:
    service: kiln-engine-registry
storage:
  filesystem:
    rootdirectory: $DIR/registry
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$PORT
  headers:
    X-Content-Type-Options: [nosniff]
EOF
		rm -f "$DIR/registry.pid"
		# shellcheck disable=SC2016 # bash -c writes its own pid, then execs: the pid file is the registry's
		# whether or not setsid had to fork.  setsid -w: if it forks, it stays
		# until its child exits, so $! is alive exactly as long as the registry.
		setsid -w bash -c 'echo "$$" >"$1" && exec "$2" serve "$3"' kiln-registry \
			"$DIR/registry.pid" "$REGISTRY_BIN" "$DIR/registry.yml" \
			</dev/null >>"$DIR/registry.log" 2>&1 9>&- &
		spawned=$!
		log "started registry on $REG (log $DIR/registry.log)"
	fi
	for ((i = 0; i < TIMEOUT * 5; i++)); do
		if reg_ping "$REG"; then return 0; fi
		if [ -n "$spawned" ] && ! proc_alive "$spawned" && ! registry_pid >/dev/null; then
			tail -n 30 "$DIR/registry.log" >&2 || true
			die "docker-registry exited"
		fi
		sleep 0.2
	done
	tail -n 30 "$DIR/registry.log" >&2 || true
	die "registry did not answer on http://$REG/v2/ within ${TIMEOUT}s"
}

stop_registry() {
	local pid
	if pid=$(registry_pid); then
		log "stopping registry (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone 10 "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone 5 "$pid" || log "warning: registry pid $pid did not exit"
		fi
	fi
	rm -f "$DIR/registry.pid"
}

# --- binfmt_misc ---------------------------------------------------------------

ensure_binfmt() {
	local native line flags
	native=$(dpkg --print-architecture)
	if [ "$native" = arm64 ]; then
		log "binfmt: native arm64 host, qemu-aarch64 not needed"
		return 0
	fi
	if ! mountpoint -q "$BINFMT_DIR"; then
		log "binfmt: mounting binfmt_misc on $BINFMT_DIR"
		mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" ||
			die "cannot mount binfmt_misc on $BINFMT_DIR"
	fi
	if [ -e "$BINFMT_DIR/qemu-aarch64" ]; then
		flags=$(sed -n 's/^flags:[[:space:]]*//p' "$BINFMT_DIR/qemu-aarch64")
		case $flags in
		*F*) log "binfmt: qemu-aarch64 already registered (flags $flags)" ;;
		*) log "warning: qemu-aarch64 is registered without the F flag ($flags); arm64 RUN steps in containers will fail. Fix: echo -1 >$BINFMT_DIR/qemu-aarch64, then rerun up" ;;
		esac
	else
		[ -r "$BINFMT_CONF" ] || die "$BINFMT_CONF missing: apt-get install qemu-user-static"
		line=$(grep -v -e '^[#;]' -e '^[[:space:]]*$' "$BINFMT_CONF" | head -n 1)
		[ -n "$line" ] || die "no registration line in $BINFMT_CONF"
		flags=${line##*:}
		# F: the kernel opens the interpreter now, so it works in containers
		# whose root has no qemu binary.
		case $flags in
		*F*) ;;
		*) line="${line}F" ;;
		esac
		log "binfmt: registering qemu-aarch64 (flags ${line##*:})"
		printf '%s' "$line" >"$BINFMT_DIR/register" ||
			die "cannot register qemu-aarch64 in binfmt_misc"
	fi
	if [ "$(head -n 1 "$BINFMT_DIR/qemu-aarch64")" != enabled ]; then
		die "binfmt: qemu-aarch64 is registered but disabled"
	fi
}

# --- dockerd -----------------------------------------------------------------

DOCKERD_SPAWNED=

ensure_bridge() {
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		return 0
	fi
	log "creating bridge $BRIDGE ($BIP)"
	ip link add name "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
	printf '%s\n' "$BRIDGE" >"$DIR/bridge.created"
	ip addr add "$BIP" dev "$BRIDGE" || die "cannot set $BIP on $BRIDGE"
	ip link set "$BRIDGE" up || die "cannot bring $BRIDGE up"
}

start_dockerd() {
	local pid args
	if pid=$(dockerd_pid); then
		log "dockerd already running (pid $pid) on $SOCK"
		return 0
	fi
	clear_stale
	mkdir -p "$DIR/docker" "$DIR/exec"
	chmod 0711 "$DIR/docker" "$DIR/exec"
	printf '%s\n' '{' \
		'  "features": { "buildkit": true }' \
		'}' >"$DIR/daemon.json"
	args=(
		--host "unix://$SOCK"
		--data-root "$DIR/docker"
		--exec-root "$DIR/exec"
		--pidfile "$DIR/dockerd.pid"
		--config-file "$DIR/daemon.json"
		--registry-mirror "http://$REG"
		--insecure-registry "$REG"
		--insecure-registry "localhost:$PORT"
	)
	case $BRIDGE in
	'') ;;
	none) args+=(--bridge none) ;;
	*)
		ensure_bridge
		args+=(--bridge "$BRIDGE")
		;;
	esac
	rm -f "$SOCK" "$DIR/dockerd.pid"
	# -w: $! stays alive as long as dockerd even if setsid has to fork
	setsid -w "$DOCKERD_BIN" "${args[@]}" </dev/null >>"$DIR/dockerd.log" 2>&1 9>&- &
	DOCKERD_SPAWNED=$!
	log "started dockerd (log $DIR/dockerd.log)"
}

wait_dockerd() {
	local i
	for ((i = 0; i < TIMEOUT * 4; i++)); do
		if dk version >/dev/null 2>&1; then
			log "dockerd answers on $SOCK (pid $(dockerd_pid || echo '?'))"
			return 0
		fi
		if [ -n "$DOCKERD_SPAWNED" ] && ! proc_alive "$DOCKERD_SPAWNED" &&
			! dockerd_pid >/dev/null; then
			tail -n 40 "$DIR/dockerd.log" >&2 || true
			die "dockerd exited during start"
		fi
		sleep 0.25
	done
	tail -n 40 "$DIR/dockerd.log" >&2 || true
	die "dockerd did not answer on $SOCK within ${TIMEOUT}s"
}

stop_dockerd() {
	local pid ids
	if pid=$(dockerd_pid); then
		# Containers left running would cost dockerd their stop timeout (10s
		# each, SIGTERM is ignored by most pid 1s); kill them first.
		ids=$(timeout 20 "$DOCKER_BIN" -H "unix://$SOCK" ps -q 2>/dev/null || true)
		if [ -n "$ids" ]; then
			log "killing running containers: $(printf '%s' "$ids" | tr '\n' ' ')"
			# shellcheck disable=SC2086 # one id per word
			timeout 30 "$DOCKER_BIN" -H "unix://$SOCK" kill $ids >/dev/null 2>&1 || true
		fi
		log "stopping dockerd (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		# dockerd gives containers 15s (shutdown-timeout), then stops containerd.
		if ! wait_gone 45 "$pid"; then
			log "dockerd did not exit after SIGTERM; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone 10 "$pid" || log "warning: dockerd pid $pid did not exit"
		fi
	fi
	if pid=$(containerd_pid); then
		log "stopping leftover containerd (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone 15 "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone 5 "$pid" || true
		fi
	fi
}

# kill_pids GRACE PID... -> TERM, then KILL after GRACE seconds; 0 once all
# are gone
kill_pids() {
	local p grace=$1
	shift
	[ "$#" -gt 0 ] || return 0
	for p in "$@"; do
		log "leftover pid $p: $(proc_cmdline "$p" | cut -c1-160 || true); SIGTERM"
		kill -TERM "$p" 2>/dev/null || true
	done
	wait_gone "$grace" "$@" && return 0
	for p in "$@"; do
		if proc_alive "$p"; then
			log "leftover pid $p still alive; SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	wait_gone 5 "$@"
}

# kill_leftovers -> stops every remaining process of this engine
kill_leftovers() {
	local pids
	mapfile -t pids < <(engine_pids)
	kill_pids 10 "${pids[@]}"
}

# clear_stale -> before starting dockerd when none runs: stop what a dead
# dockerd left (containerd, shims, container processes; not the registry)
# and drop containerd's pid file, which dockerd would otherwise trust even
# when it names a dead (zombie) process, then time out waiting for it.
clear_stale() {
	local pids=() p reg pm
	reg=$(registry_pid || true)
	pm=$(podman_pid || true)
	while IFS= read -r p; do
		[ "$p" = "$reg" ] || [ "$p" = "$pm" ] || pids+=("$p")
	done < <(engine_pids)
	if [ "${#pids[@]}" -gt 0 ]; then
		log "dockerd is not running; stopping what it left behind"
		kill_pids 2 "${pids[@]}" || log "warning: some stale engine processes did not exit"
	fi
	rm -f "$CONTAINERD_PIDFILE"
}

# unmount_dir -> unmount everything mounted below $DIR, deepest first
unmount_dir() {
	local m
	awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' \
		/proc/self/mountinfo | LC_ALL=C sort -r |
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
				log "warning: cannot unmount $m"
		done
}

remove_bridge() {
	local br
	[ -s "$DIR/bridge.created" ] || return 0
	br=$(cat "$DIR/bridge.created")
	if ip link show "$br" >/dev/null 2>&1; then
		log "removing bridge $br"
		ip link delete "$br" type bridge || log "warning: cannot delete bridge $br"
	fi
	rm -f "$DIR/bridge.created"
}

# --- podman ----------------------------------------------------------------------

# pm ARGS... -> podman on this engine's storage and configuration
pm() {
	CONTAINERS_CONF="$PM_DIR/containers.conf" \
		CONTAINERS_REGISTRIES_CONF="$PM_DIR/registries.conf" \
		"$PODMAN_BIN" --root "$PM_DIR/root" --runroot "$PM_DIR/run" \
		--tmpdir "$PM_DIR/tmp" "$@"
}

# hard_limit FLAG CAP -> the shell's hard limit (`ulimit -H FLAG`), at most CAP
hard_limit() {
	local v
	v=$(ulimit -H "$1")
	if [ "$v" = unlimited ] || [ "$v" -gt "$2" ]; then v=$2; fi
	printf '%s\n' "$v"
}

# podman_config -> containers.conf and registries.conf under $PM_DIR
podman_config() {
	local nofile nproc
	# Podman gives a root container RLIMIT_NOFILE and RLIMIT_NPROC of 1048576,
	# and lowers its own RLIMIT_NPROC to 32768. Without CAP_SYS_RESOURCE (in a
	# container, as on the test machines) runc may not set a limit above the
	# service's hard one, and every `podman run` fails with "error setting
	# rlimit type 7" (NOFILE; type 6 is NPROC). So containers get the
	# service's own hard limits.
	nofile=$(hard_limit -n 1048576)
	nproc=$(hard_limit -u 32768)
	mkdir -p "$PM_DIR/root" "$PM_DIR/run" "$PM_DIR/tmp" "$PM_DIR/net"
	cat >"$PM_DIR/containers.conf" <<EOF
# written by scripts/engine.sh
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM_DIR/events.log"

[network]
network_config_dir = "$PM_DIR/net"
EOF
	# docker.io through the local registry, as dockerd's --registry-mirror
	cat >"$PM_DIR/registries.conf" <<EOF
# written by scripts/engine.sh
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "$REG"
insecure = true

[[registry]]
location = "$REG"
insecure = true

[[registry]]
location = "localhost:$PORT"
insecure = true
EOF
}

podman_ping() {
	curl -fsS --max-time 5 --unix-socket "$PM_SOCK" http://podman/_ping >/dev/null 2>&1
}

start_podman() {
	local pid i spawned=
	[ -x "$PODMAN_BIN" ] || die "$PODMAN_BIN not found (apt-get install podman; or KILN_ENGINE_PODMAN=0)"
	if pid=$(podman_pid); then
		log "podman already running (pid $pid) on $PM_SOCK"
	else
		podman_config
		rm -f "$PM_SOCK" "$DIR/podman.pid"
		# shellcheck disable=SC2016 # as for the registry: the pid file is podman's
		setsid -w bash -c 'echo "$$" >"$1" && shift && exec "$@"' kiln-podman \
			"$DIR/podman.pid" env CONTAINERS_CONF="$PM_DIR/containers.conf" \
			CONTAINERS_REGISTRIES_CONF="$PM_DIR/registries.conf" \
			"$PODMAN_BIN" --root "$PM_DIR/root" --runroot "$PM_DIR/run" \
			--tmpdir "$PM_DIR/tmp" system service --time=0 "unix://$PM_SOCK" \
			</dev/null >>"$DIR/podman.log" 2>&1 9>&- &
		spawned=$!
		log "started podman system service (log $DIR/podman.log)"
	fi
	for ((i = 0; i < TIMEOUT * 4; i++)); do
		if podman_ping; then break; fi
		if [ -n "$spawned" ] && ! proc_alive "$spawned" && ! podman_pid >/dev/null; then
			tail -n 30 "$DIR/podman.log" >&2 || true
			die "podman system service exited"
		fi
		sleep 0.25
	done
	podman_ping || {
		tail -n 30 "$DIR/podman.log" >&2 || true
		die "podman did not answer on $PM_SOCK within ${TIMEOUT}s"
	}
	log "podman answers on $PM_SOCK (pid $(podman_pid || echo '?'))"
	# busybox where `FROM busybox` finds it, from the local registry
	if ! pm image exists docker.io/library/busybox:latest; then
		log "podman: pulling busybox through the mirror $REG"
		pm pull -q docker.io/library/busybox:latest >/dev/null ||
			die "podman pull busybox (through the mirror $REG) failed"
	fi
}

stop_podman() {
	local pid ids
	if pid=$(podman_pid); then
		ids=$(timeout 20 "$PODMAN_BIN" --remote --url "unix://$PM_SOCK" ps -q 2>/dev/null || true)
		if [ -n "$ids" ]; then
			log "podman: removing running containers"
			# shellcheck disable=SC2086 # one id per word
			timeout 30 "$PODMAN_BIN" --remote --url "unix://$PM_SOCK" rm -f -t 0 $ids \
				>/dev/null 2>&1 || true
		fi
		log "stopping podman (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone 20 "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone 5 "$pid" || log "warning: podman pid $pid did not exit"
		fi
	fi
	rm -f "$DIR/podman.pid" "$PM_SOCK"
}

# --- the busybox image ---------------------------------------------------------

# shellcheck disable=SC2034 # set by fetch_debs via printf -v, read as ${!var}
DEB_amd64='' DEB_arm64=''

apt_private() {
	local a="$CACHE/apt"
	apt-get -q \
		-o Dir::Etc::SourceList="$a/sources.list" \
		-o Dir::Etc::SourceParts="$a/sources.list.d" \
		-o Dir::Etc::Preferences="$a/preferences" \
		-o Dir::Etc::PreferencesParts="$a/preferences.d" \
		-o Dir::State::Lists="$a/lists" \
		-o Dir::Cache="$a/cache" \
		-o APT::Architectures::=amd64 \
		-o APT::Architectures::=arm64 \
		-o Acquire::Languages=none \
		-o APT::Sandbox::User=root \
		"$@"
}

# fetch_debs -> sets DEB_<arch> to cached busybox-static .debs, downloading
# them once.  Uses a private apt configuration (own sources list and lists
# dir), so the machine's dpkg architectures and apt lists stay untouched.
fetch_debs() {
	local d="$CACHE/debs" a="$CACHE/apt" arch missing=0 opts pkgs=()
	mkdir -p "$d"
	exec 8>>"$CACHE/.lock"
	flock -w 600 8 || die "timed out waiting for $CACHE/.lock"
	for arch in "${ARCHES[@]}"; do
		set -- "$d"/busybox-static_*_"$arch".deb
		[ -e "$1" ] || missing=1
	done
	if [ "$missing" = 1 ]; then
		log "downloading busybox-static for ${ARCHES[*]} from $DEBIAN_MIRROR ($DEBIAN_SUITE)"
		rm -rf "$a"
		mkdir -p "$a/lists/partial" "$a/cache/archives/partial" \
			"$a/sources.list.d" "$a/preferences.d"
		opts="arch=$(
			IFS=,
			echo "${ARCHES[*]}"
		) signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
		for arch in "${ARCHES[@]}"; do pkgs+=("busybox-static:$arch"); done
		printf 'deb [%s] %s %s main\n' \
			"$opts" "$DEBIAN_MIRROR" "$DEBIAN_SUITE" \
			"$opts" "$DEBIAN_MIRROR" "$DEBIAN_SUITE-updates" >"$a/sources.list"
		apt_private update >&2 || die "apt-get update (private lists in $a) failed"
		rm -f "$d"/busybox-static_*.deb
		(cd "$d" && apt_private download "${pkgs[@]}") >&2 ||
			die "apt-get download busybox-static failed"
		rm -rf "$a"
	fi
	for arch in "${ARCHES[@]}"; do
		set -- "$d"/busybox-static_*_"$arch".deb
		[ -e "$1" ] || die "no busybox-static .deb for $arch in $d"
		[ "$#" = 1 ] || log "warning: several busybox-static .debs for $arch in $d; using $1"
		printf -v "DEB_$arch" '%s' "$1"
	done
	exec 8>&-
}

INDEX_FILE=
declare -A CONFIG_DIGEST=()

# build_image -> makes the layers, configs, manifests and the manifest list
# under $DIR/image (deterministic: same .debs, same digests).
build_image() {
	local arch deb deb_var x list variant out version layer diff digest size native
	local stamp entries=()
	mktmp
	fetch_debs
	native=$(dpkg --print-architecture)
	out="$DIR/image"
	INDEX_FILE="$out/index.json"
	# Reuse the last build when its inputs (the .debs, this script and its
	# libraries) are unchanged.
	stamp=$(for arch in "${ARCHES[@]}"; do
		deb_var="DEB_$arch"
		sha256sum <"${!deb_var}"
	done
	cat "${BASH_SOURCE[0]}" "$SELF_DIR/lib/image.sh" "$SELF_DIR/lib/registry.sh" | sha256sum)
	if [ -s "$INDEX_FILE" ] && [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$stamp" ]; then
		for arch in "${ARCHES[@]}"; do
			CONFIG_DIGEST[$arch]=$(reg_sha256 "$out/$arch.config.json")
		done
		log "image: manifest list $(reg_sha256 "$INDEX_FILE") (inputs unchanged)"
		return 0
	fi
	rm -rf "$out"
	mkdir -p "$out"
	for arch in "${ARCHES[@]}"; do
		deb_var="DEB_$arch"
		deb=${!deb_var}
		version=$(dpkg-deb -f "$deb" Version)
		x="$TMP/pkg-$arch"
		rm -rf "$x"
		mkdir -p "$x"
		dpkg-deb -x "$deb" "$x" || die "cannot extract $deb"
		list="$TMP/applets-$arch"
		# The applet list from the binary itself: natively, or under qemu
		# (run directly, no binfmt needed); else the native build's list
		# (Debian builds every architecture from the same config).
		if [ "$arch" = "$native" ]; then
			"$x/bin/busybox" --list-full >"$list"
		elif [ "$arch" = arm64 ] && [ -x "$QEMU_AARCH64" ]; then
			"$QEMU_AARCH64" "$x/bin/busybox" --list-full >"$list"
		else
			list="$TMP/applets-$native"
		fi
		[ -s "$list" ] || die "empty applet list for $arch"
		img_busybox_rootfs "$TMP/rootfs-$arch" "$x" "$list" ||
			die "cannot make the $arch rootfs"
		layer=$(img_layer "$TMP/rootfs-$arch" "$out/$arch.layer.tar.gz") ||
			die "cannot make the $arch layer"
		read -r diff digest size <<<"$layer"
		variant=
		[ "$arch" != arm64 ] || variant=v8
		img_config "$out/$arch.config.json" "$arch" "$variant" "$diff" \
			"kiln scripts/engine.sh: Debian busybox-static $version ($arch)" ||
			die "cannot write the $arch config"
		img_manifest "$out/$arch.manifest.json" "$out/$arch.config.json" \
			"$digest" "$size" || die "cannot write the $arch manifest"
		CONFIG_DIGEST[$arch]=$(reg_sha256 "$out/$arch.config.json")
		entries+=("$out/$arch.manifest.json:$arch:$variant")
	done
	img_index "$INDEX_FILE" "${entries[@]}" || die "cannot write the manifest list"
	printf '%s\n' "$stamp" >"$out/inputs.sha256"
	log "image: manifest list $(reg_sha256 "$INDEX_FILE")"
}

# push_image -> pushes blobs, per-platform manifests (also tagged <arch>) and
# the manifest list (tagged latest) to every repository in REPOS; skips a
# repository whose latest already is this manifest list.
push_image() {
	local repo want have arch out="$DIR/image"
	want=$(reg_sha256 "$INDEX_FILE")
	for repo in "${REPOS[@]}"; do
		have=$(reg_manifest_digest "$REG" "$repo" latest "$REG_MT_LIST")
		if [ "$have" = "$want" ]; then
			log "registry: $repo:latest is already $want"
			continue
		fi
		log "registry: pushing $repo:latest"
		for arch in "${ARCHES[@]}"; do
			reg_push_blob "$REG" "$repo" "$out/$arch.layer.tar.gz" >/dev/null ||
				die "blob push ($arch layer) to $repo failed"
			reg_push_blob "$REG" "$repo" "$out/$arch.config.json" >/dev/null ||
				die "blob push ($arch config) to $repo failed"
			reg_put_manifest "$REG" "$repo" "$(reg_sha256 "$out/$arch.manifest.json")" \
				"$out/$arch.manifest.json" "$REG_MT_MANIFEST" >/dev/null ||
				die "manifest push ($arch) to $repo failed"
			reg_put_manifest "$REG" "$repo" "$arch" \
				"$out/$arch.manifest.json" "$REG_MT_MANIFEST" >/dev/null ||
				die "manifest push ($repo:$arch) failed"
		done
		reg_put_manifest "$REG" "$repo" latest "$INDEX_FILE" "$REG_MT_LIST" >/dev/null ||
			die "manifest list push ($repo:latest) failed"
	done
}

# load_images -> pulls the image into dockerd: busybox:<arch> for every
# platform, busybox:latest for the native one.  Skips what is already there.
load_images() {
	local arch native have want src="$REG/library/busybox:latest" plat
	native=$(dpkg --print-architecture)
	# native last, so that $src ends up tagged to the native image
	for arch in $(printf '%s\n' "${ARCHES[@]}" | grep -vx "$native") "$native"; do
		want="${CONFIG_DIGEST[$arch]}"
		have=$(dk image inspect -f '{{.Id}}' "busybox:$arch" 2>/dev/null || true)
		if [ "$have" != "$want" ]; then
			log "dockerd: pulling $src for linux/$arch"
			dk pull -q --platform "linux/$arch" "$src" >&2 ||
				die "docker pull --platform linux/$arch $src failed"
			dk tag "$src" "busybox:$arch"
			have=$(dk image inspect -f '{{.Id}}' "busybox:$arch")
			[ "$have" = "$want" ] ||
				die "busybox:$arch is $have, expected $want"
		fi
		plat=$(dk image inspect -f '{{.Os}}/{{.Architecture}}' "busybox:$arch")
		[ "$plat" = "linux/$arch" ] ||
			die "busybox:$arch has platform $plat, expected linux/$arch"
	done
	dk tag "busybox:$native" busybox:latest
	dk tag "busybox:$native" "$src"
	log "dockerd: images busybox:latest ($native), $(printf 'busybox:%s ' "${ARCHES[@]}")"
}

# --- the debian images -----------------------------------------------------------

# resolve_mirrors -> DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR: the KILN_
# variables if set, else what the machine's apt uses for the suite (and
# <suite>-security), else deb.debian.org.
resolve_mirrors() {
	[ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=$(deb_apt_mirror "$DEBIAN_SUITE")
	[ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=http://deb.debian.org/debian
	[ -n "$DEBIAN_SECURITY_MIRROR" ] ||
		DEBIAN_SECURITY_MIRROR=$(deb_apt_mirror "$DEBIAN_SUITE-security")
	[ -n "$DEBIAN_SECURITY_MIRROR" ] ||
		DEBIAN_SECURITY_MIRROR=http://deb.debian.org/debian-security
}

DEBIAN_REPO=library/debian
DEBIAN_VARIANTS=(full slim)
DEBIAN_ARCH=
DEBIAN_CACHE=
DEBIAN_STAMP=

# debian_setup -> DEBIAN_ARCH (the native one), DEBIAN_CACHE (where the made
# layers live) and DEBIAN_STAMP (what they were made by: the recipe in
# lib/debian.sh, the layer writer, suite, architecture, gzip level).
debian_setup() {
	DEBIAN_ARCH=$(dpkg --print-architecture)
	DEBIAN_CACHE="$CACHE/debian/$DEBIAN_SUITE-$DEBIAN_ARCH"
	DEBIAN_STAMP=$({
		cat "$SELF_DIR/lib/debian.sh"
		declare -f img_layer
		printf '%s %s gzip-6\n' "$DEBIAN_SUITE" "$DEBIAN_ARCH"
	} | sha256sum | cut -c1-64)
}

# debian_cached -> 0 if DEBIAN_CACHE holds layers made by this recipe
debian_cached() {
	local info="$DEBIAN_CACHE/info.json" v size
	[ -s "$info" ] || return 1
	[ "$(jq -r .stamp "$info" 2>/dev/null)" = "$DEBIAN_STAMP" ] || return 1
	for v in "${DEBIAN_VARIANTS[@]}"; do
		size=$(jq -r --arg v "$v" '.layers[$v].size' "$info") || return 1
		[ "$(stat -c %s -- "$DEBIAN_CACHE/$v.layer.tar.gz" 2>/dev/null)" = "$size" ] ||
			return 1
	done
}

# make_debian -> debootstraps the rootfs, makes its slim copy and writes
# both layers and info.json to DEBIAN_CACHE (replaced as a whole, by rename).
make_debian() {
	local work root out epoch version v x diff digest size layers='{}' t0=$SECONDS
	local dlog="$DIR/debian.log"
	mktmp
	work="$TMP/debian"
	root="$work/rootfs"
	out="$work/out"
	mkdir -p "$work" "$out"
	: >"$dlog"
	log "debian: making $DEBIAN_SUITE ($DEBIAN_ARCH): debootstrap --variant=minbase from $DEBIAN_MIRROR, updates from $DEBIAN_SECURITY_MIRROR (log $dlog)"
	deb_rootfs "$root" "$DEBIAN_SUITE" "$DEBIAN_ARCH" "$DEBIAN_MIRROR" \
		"$DEBIAN_SECURITY_MIRROR" "$CACHE/debian/debs" "$work/epoch" "$dlog" ||
		die "cannot make the $DEBIAN_SUITE root filesystem (log $dlog)"
	epoch=$(cat "$work/epoch")
	version=$(cat "$root/etc/debian_version")
	log "debian: rootfs made in $((SECONDS - t0))s (Debian $version, archive date $(date -u -d "@$epoch" +%F))"
	cp -a "$root" "$root-slim" || die "cannot copy the rootfs for the slim variant"
	deb_slimify "$root-slim" || die "cannot make the slim variant"
	for v in "${DEBIAN_VARIANTS[@]}"; do
		if [ "$v" = full ]; then x=$root; else x="$root-$v"; fi
		read -r diff digest size < <(IMG_EPOCH=$epoch IMG_GZIP_LEVEL=6 \
			img_layer "$x" "$out/$v.layer.tar.gz") || die "cannot make the $v layer"
		[ -n "$size" ] || die "cannot make the $v layer"
		layers=$(jq -cn --argjson l "$layers" --arg v "$v" --arg d "$diff" \
			--arg g "$digest" --argjson s "$size" '$l + {($v): {diff_id: $d, digest: $g, size: $s}}')
	done
	jq -n --arg stamp "$DEBIAN_STAMP" --arg suite "$DEBIAN_SUITE" \
		--arg arch "$DEBIAN_ARCH" --argjson epoch "$epoch" --arg version "$version" \
		--arg mirror "$DEBIAN_MIRROR" --argjson layers "$layers" \
		'{stamp: $stamp, suite: $suite, arch: $arch, epoch: $epoch,
		  version: $version, mirror: $mirror, layers: $layers}' >"$out/info.json" ||
		die "cannot write info.json"
	rm -rf "$DEBIAN_CACHE.new"
	mkdir -p "$CACHE/debian"
	mv -T "$out" "$DEBIAN_CACHE.new" || die "cannot move the layers to $DEBIAN_CACHE.new"
	rm -rf "$DEBIAN_CACHE"
	mv -T "$DEBIAN_CACHE.new" "$DEBIAN_CACHE" || die "cannot rename $DEBIAN_CACHE.new"
	rm -rf --one-file-system -- "$work"
	log "debian: layers in $DEBIAN_CACHE ($((SECONDS - t0))s): full $(jq -r .layers.full.size "$DEBIAN_CACHE/info.json") B, slim $(jq -r .layers.slim.size "$DEBIAN_CACHE/info.json") B"
}

# debian_tags VARIANT -> the tags of that variant, one per line: the suite,
# the major and full version (when numeric), and latest for the full one
debian_tags() {
	local version sfx=
	version=$(jq -r .version "$DEBIAN_CACHE/info.json")
	[ "$1" = full ] || sfx="-$1"
	printf '%s\n' "$DEBIAN_SUITE$sfx"
	if [[ $version =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
		printf '%s\n' "${version%%.*}$sfx"
		[ "$version" = "${version%%.*}" ] || printf '%s\n' "$version$sfx"
	fi
	[ "$1" != full ] || printf 'latest\n'
}

# debian_manifests -> configs, manifests and manifest lists of both variants
# under $DIR/debian, from the layers' info.json (deterministic; kept while
# info.json is unchanged)
debian_manifests() {
	local info="$DEBIAN_CACHE/info.json" out="$DIR/debian" v epoch version variant=
	local created comment stamp
	stamp=$(cat "$info" "$SELF_DIR/lib/image.sh" | sha256sum)
	if [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$stamp" ]; then return 0; fi
	epoch=$(jq -r .epoch "$info")
	version=$(jq -r .version "$info")
	created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
	[ "$DEBIAN_ARCH" != arm64 ] || variant=v8
	rm -rf "$out"
	mkdir -p "$out"
	for v in "${DEBIAN_VARIANTS[@]}"; do
		comment="kiln scripts/engine.sh: debootstrap --variant=minbase $DEBIAN_SUITE, Debian $version ($DEBIAN_ARCH)"
		[ "$v" = full ] || comment="$comment, $v"
		IMG_CREATED=$created img_config "$out/$v.config.json" "$DEBIAN_ARCH" "$variant" \
			"$(jq -r --arg v "$v" '.layers[$v].diff_id' "$info")" "$comment" '["bash"]' ||
			die "cannot write the debian $v config"
		img_manifest "$out/$v.manifest.json" "$out/$v.config.json" \
			"$(jq -r --arg v "$v" '.layers[$v].digest' "$info")" \
			"$(jq -r --arg v "$v" '.layers[$v].size' "$info")" ||
			die "cannot write the debian $v manifest"
		img_index "$out/$v.index.json" "$out/$v.manifest.json:$DEBIAN_ARCH:$variant" ||
			die "cannot write the debian $v manifest list"
	done
	printf '%s\n' "$stamp" >"$out/inputs.sha256"
}

# push_debian -> pushes each variant's layer, config, manifest and manifest
# list, the list under every tag of debian_tags; skips a variant whose tags
# all are that list already.
push_debian() {
	local v tag want have todo out="$DIR/debian"
	for v in "${DEBIAN_VARIANTS[@]}"; do
		want=$(reg_sha256 "$out/$v.index.json")
		todo=0
		for tag in $(debian_tags "$v"); do
			have=$(reg_manifest_digest "$REG" "$DEBIAN_REPO" "$tag" "$REG_MT_LIST")
			[ "$have" = "$want" ] || todo=1
		done
		if [ "$todo" = 0 ]; then
			log "registry: $DEBIAN_REPO:$(debian_tags "$v" | head -n 1) is already $want"
			continue
		fi
		log "registry: pushing $DEBIAN_REPO:$(debian_tags "$v" | paste -sd, -)"
		reg_push_blob "$REG" "$DEBIAN_REPO" "$DEBIAN_CACHE/$v.layer.tar.gz" >/dev/null ||
			die "blob push (debian $v layer) failed"
		reg_push_blob "$REG" "$DEBIAN_REPO" "$out/$v.config.json" >/dev/null ||
			die "blob push (debian $v config) failed"
		reg_put_manifest "$REG" "$DEBIAN_REPO" "$(reg_sha256 "$out/$v.manifest.json")" \
			"$out/$v.manifest.json" "$REG_MT_MANIFEST" >/dev/null ||
			die "manifest push (debian $v) failed"
		for tag in $(debian_tags "$v"); do
			reg_put_manifest "$REG" "$DEBIAN_REPO" "$tag" "$out/$v.index.json" \
				"$REG_MT_LIST" >/dev/null || die "manifest list push ($DEBIAN_REPO:$tag) failed"
		done
	done
}

# debian_image -> the debian images in the registry: made once (cached in
# $CACHE/debian, one maker at a time), pushed when the registry lacks them
debian_image() {
	debian_setup
	if ! debian_cached; then
		exec 8>>"$CACHE/.lock"
		flock -w 900 8 || die "timed out waiting for $CACHE/.lock"
		# another engine may have made it while we waited
		debian_cached || make_debian
		exec 8>&-
	else
		log "debian: layers cached in $DEBIAN_CACHE (Debian $(jq -r .version "$DEBIAN_CACHE/info.json"))"
	fi
	debian_manifests
	push_debian
}

# --- commands ----------------------------------------------------------------

cmd_env() {
	printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
	printf 'export BUILDKIT_HOST=%q\n' "docker-unix://$SOCK"
	printf 'export KILN_REGISTRY=%q\n' "$REG"
	printf 'export KILN_ENGINE_DIR=%q\n' "$DIR"
	if [ "$PODMAN" = 1 ] && [ -x "$PODMAN_BIN" ]; then
		printf 'export KILN_PODMAN_HOST=%q\n' "unix://$PM_SOCK"
	fi
}

cmd_up() {
	local t0=$SECONDS b
	need_root
	for b in "$DOCKERD_BIN" "$DOCKER_BIN" "$REGISTRY_BIN"; do
		[ -x "$b" ] || die "$b not found (apt-get install docker.io docker-registry)"
	done
	for b in curl jq flock setsid dpkg-deb apt-get tar gzip sha256sum ip mountpoint; do
		command -v "$b" >/dev/null || die "$b not found"
	done
	if [ "$DEBIAN_IMAGES" = 1 ]; then
		for b in debootstrap unshare chroot; do
			command -v "$b" >/dev/null ||
				die "$b not found (scripts/deps.sh; or KILN_ENGINE_DEBIAN=0 for no debian images)"
		done
	fi
	prepare_dir
	lock_dir
	mkdir -p "$CACHE"
	resolve_mirrors
	start_registry
	start_dockerd # starts in the background while the images are made
	ensure_binfmt
	build_image
	push_image
	if [ "$DEBIAN_IMAGES" = 1 ]; then debian_image; fi
	wait_dockerd
	load_images
	if [ "$PODMAN" = 1 ] && [ -x "$PODMAN_BIN" ]; then start_podman; fi
	log "up in $((SECONDS - t0))s; state in $DIR"
	cmd_env
}

cmd_down() {
	local keep=0 rc=0
	case ${1:-} in
	'') ;;
	--keep) keep=1 ;;
	*) die "usage: engine.sh down [--keep]" ;;
	esac
	need_root
	if [ ! -d "$DIR" ]; then
		log "nothing to stop: $DIR does not exist"
		return 0
	fi
	[ -e "$MARKER" ] ||
		die "$DIR has no .kiln-engine marker; not a kiln engine dir, refusing"
	lock_dir
	stop_podman
	stop_dockerd
	stop_registry
	kill_leftovers || {
		log "warning: some engine processes did not exit"
		rc=1
	}
	unmount_dir
	remove_bridge
	rm -f "$DIR/dockerd.pid" "$SOCK"
	if [ "$keep" = 1 ]; then
		log "down; state kept in $DIR"
	else
		exec 9>&-
		rm -rf --one-file-system -- "$DIR" || {
			log "warning: could not remove all of $DIR"
			rc=1
		}
		log "down; removed $DIR"
	fi
	return "$rc"
}

# status_debian -> one line per debian tag in the registry
status_debian() {
	local tags tag
	tags=$(curl -fsS --max-time 10 "http://$REG/v2/$DEBIAN_REPO/tags/list" 2>/dev/null |
		jq -r '.tags // [] | .[]' 2>/dev/null | LC_ALL=C sort) || tags=
	if [ -z "$tags" ]; then
		printf 'image:       %s/%s: none%s\n' "$REG" "$DEBIAN_REPO" \
			"$([ "$DEBIAN_IMAGES" = 1 ] || echo ' (KILN_ENGINE_DEBIAN=0)')"
		return 0
	fi
	for tag in $tags; do
		printf 'image:       %s/%s:%s %s\n' "$REG" "$DEBIAN_REPO" "$tag" \
			"$(reg_manifest_digest "$REG" "$DEBIAN_REPO" "$tag" "$REG_MT_LIST")"
	done
}

cmd_status() {
	local pid rc=0 flags
	printf 'state dir:   %s%s\n' "$DIR" "$([ -d "$DIR" ] || echo ' (absent)')"
	if pid=$(dockerd_pid); then
		printf 'dockerd:     running, pid %s, %s\n' "$pid" "unix://$SOCK"
		printf 'server:      %s\n' "$(dk version -f '{{.Server.Version}}' 2>/dev/null || echo 'not answering')"
	else
		printf 'dockerd:     not running\n'
		rc=1
	fi
	if pid=$(containerd_pid); then
		printf 'containerd:  running, pid %s (managed by dockerd)\n' "$pid"
	else
		printf 'containerd:  not running\n'
	fi
	if pid=$(registry_pid); then
		printf 'registry:    running, pid %s, http://%s\n' "$pid" "$REG"
		for repo in "${REPOS[@]}"; do
			printf 'image:       %s/%s:latest %s\n' "$REG" "$repo" \
				"$(reg_manifest_digest "$REG" "$repo" latest "$REG_MT_LIST")"
		done
		status_debian
	else
		printf 'registry:    not running\n'
		rc=1
	fi
	if pid=$(podman_pid); then
		printf 'podman:      running, pid %s, %s\n' "$pid" "unix://$PM_SOCK"
	else
		printf 'podman:      not running%s\n' "$([ "$PODMAN" = 1 ] || echo ' (KILN_ENGINE_PODMAN=0)')"
	fi
	if [ -e "$BINFMT_DIR/qemu-aarch64" ]; then
		flags=$(sed -n 's/^flags:[[:space:]]*//p' "$BINFMT_DIR/qemu-aarch64")
		printf 'binfmt:      qemu-aarch64 %s, flags %s\n' \
			"$(head -n 1 "$BINFMT_DIR/qemu-aarch64")" "$flags"
	else
		printf 'binfmt:      qemu-aarch64 not registered\n'
	fi
	if [ "$rc" = 0 ]; then
		dk image ls --format 'docker:      {{.Repository}}:{{.Tag}} {{.ID}}' \
			--filter reference=busybox --filter reference=debian 2>/dev/null || true
	fi
	return "$rc"
}

# podman-up: Podman's service beside an engine that `up` started
cmd_podman_up() {
	need_root
	[ -e "$MARKER" ] || die "no engine in $DIR (run: scripts/engine.sh up)"
	registry_pid >/dev/null || die "the registry of $DIR is not running (run: scripts/engine.sh up)"
	lock_dir
	start_podman
	cmd_env
}

cmd_podman_down() {
	need_root
	[ -e "$MARKER" ] || die "no engine in $DIR"
	lock_dir
	stop_podman
}

main() {
	local cmd=${1:-}
	[ "$#" = 0 ] || shift
	check_config
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	env) cmd_env ;;
	status) cmd_status ;;
	podman-up) cmd_podman_up ;;
	podman-down) cmd_podman_down ;;
	-h | --help | help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		;;
	*)
		printf 'usage: %s up|down [--keep]|env|status|podman-up|podman-down\n' "$0" >&2
		exit 2
		;;
	esac
}

main "$@"
