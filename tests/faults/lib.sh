# tests/faults/lib.sh: a private engine for fault tests, which may be
# broken (dockerd killed, registry stopped) without touching the shared one.
# Source after tests/lib.sh, from the project root.
#
#   priv_up       start it: sets PRIV_DIR, PRIV_HOST (unix://…), PRIV_REG
#                 (127.0.0.1:PORT); bails out when it cannot start
#   priv_down     stop it (also from the EXIT trap: priv_cleanup)
#   priv_pid NAME the pid in PRIV_DIR/NAME.pid (dockerd, registry)
#   alive PID     the process exists and is not a zombie
#
# A free slot N (0-9, under a lock) gives bridge kiln-faultN,
# 172.30.23N.1/24 and a free registry port from 53N0, so parallel runs and
# the pool tests' engines (kiln-poolN, 172.30.22N) never meet.

PRIV_DIR='' PRIV_HOST='' PRIV_REG='' _priv_port='' _priv_bridge='' _priv_bip='' _priv_lock=''

_priv_engine() {
	[ -n "$PRIV_DIR" ] || return 1
	env KILN_ENGINE_DIR="$PRIV_DIR" KILN_REGISTRY_PORT="$_priv_port" \
		KILN_ENGINE_BRIDGE="$_priv_bridge" KILN_ENGINE_BIP="$_priv_bip" \
		KILN_ENGINE_DEBIAN=0 scripts/engine.sh "$@"
}

alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	case ${st%% *} in '' | Z | X) return 1 ;; esac
}

priv_pid() { tr -dc '0-9' <"$PRIV_DIR/$1.pid" 2>/dev/null; }

priv_up() {
	local log=${tmp:-/tmp}/priv-engine.log
	if [ "$(id -u)" != 0 ]; then
		echo "Bail out! fault tests need root to start a private engine"
		exit 1
	fi
	engine_slot fault 172.30.23 53
	_priv_bridge=$slot_bridge _priv_bip=$slot_bip _priv_port=$slot_port _priv_lock=$slot_lock_fd
	PRIV_DIR=$(mktemp -d /var/tmp/kiln-fault.XXXXXX)
	PRIV_HOST=unix://$PRIV_DIR/docker.sock
	PRIV_REG=127.0.0.1:$_priv_port
	if ! _priv_engine up >/dev/null 2>"$log" || ! /usr/bin/docker -H "$PRIV_HOST" version >/dev/null 2>&1; then
		echo "Bail out! cannot start a private engine in $PRIV_DIR:"
		tail -n 20 "$log" | sed 's/^/# /'
		exit 1
	fi
}

# priv_restart: engine.sh up again (after dockerd or the registry was
# killed); quiet unless it fails
priv_restart() {
	_priv_engine up >/dev/null 2>>"${tmp:-/tmp}/priv-engine.log"
}

priv_down() {
	[ -n "$PRIV_DIR" ] || return 0
	if [ -e "$PRIV_DIR/.kiln-engine" ]; then
		_priv_engine down >>"${tmp:-/tmp}/priv-engine.log" 2>&1 ||
			echo "# warning: engine.sh down of $PRIV_DIR failed"
	fi
	[ -d "$PRIV_DIR" ] && rmdir "$PRIV_DIR" 2>/dev/null
	PRIV_DIR=''
	[ -n "$_priv_lock" ] && exec {_priv_lock}>&-
	_priv_lock=''
}
