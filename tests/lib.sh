# tests/lib.sh: TAP helpers shared by kiln's shell tests. Source it.
# Each test prints "ok N - name" or "not ok N - name"; tap_done prints the
# plan and exits 1 if anything failed.

BUILD=${BUILD:-build}
KILN=${KILN:-$BUILD/kiln}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
_tap_n=0
_tap_failed=0

ok() {        # ok NAME: record a pass
	_tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1"
}
not_ok() {    # not_ok NAME [DETAIL...]: record a failure, DETAIL as comments
	_tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	shift
	for d in "$@"; do printf '%s\n' "$d" | sed 's/^/#   /'; done
}
skip() {      # skip NAME REASON
	_tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"
}
check() {     # check NAME COMMAND...: pass when COMMAND exits 0
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "command: $*" "$out"; fi
}
expect_eq() { # expect_eq NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "actual:   $3"; fi
}
expect_match() { # expect_match NAME REGEX TEXT
	if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1" "no match for /$2/ in:" "$3"; fi
}
show_err() {  # show_err: the tail of the last build's stderr ($err) as TAP comments
	printf '%s\n' "$err" | tail -n 30 | sed 's/^/#   /'
}
kbuild_in() { # kbuild_in DIR ARGS...: `kiln build ARGS` in DIR (a kiln.lua's);
	# sets rc, out (stdout), err (stderr). Needs $tmp.
	local dir=$1; shift
	out=$(cd "$dir" && timeout 300 "$KILN" build "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}
need_engine() { # need_engine: the local engine's env (DOCKER_HOST, BUILDKIT_HOST,
	# KILN_REGISTRY) from `scripts/engine.sh env` unless already set; bail
	# out when /usr/bin/docker cannot reach it. Run from the project root.
	if [ -z "${DOCKER_HOST:-}" ] || [ -z "${BUILDKIT_HOST:-}" ]; then
		eval "$(scripts/engine.sh env 2>/dev/null)" || true
	fi
	if [ -z "${DOCKER_HOST:-}" ] || ! /usr/bin/docker version >/dev/null 2>&1; then
		echo "Bail out! no engine at '${DOCKER_HOST:-}' (run: eval \"\$(scripts/engine.sh up)\")"
		exit 1
	fi
}
# multistage_ctx DIR: the multi-stage build the docker-API suites share
# (build_docker, classic, podman): DIR/ctx/data.txt and, outside that
# context, DIR/df/app.Dockerfile with stages base (ARG WORD, COPY of
# data.txt, a RUN writing /word.txt) and final (never built with
# --target base).
multistage_ctx() {
	mkdir -p "$1/ctx" "$1/df"
	echo "from the context" >"$1/ctx/data.txt"
	cat >"$1/df/app.Dockerfile" <<'DF'
FROM busybox AS base
ARG WORD=unset
COPY data.txt /data.txt
RUN echo "word=$WORD" > /word.txt

FROM base AS final
RUN echo never-built > /never.txt
DF
}

# engine_slot NAME NET PORTS: a free slot for a second private engine
# (scripts/engine.sh with KILN_ENGINE_BRIDGE/BIP/REGISTRY_PORT): slot n of
# 0-9 is free when its lock /tmp/kiln-NAME-test.n.lock can be taken, no
# bridge kiln-NAMEn exists (a killed run's), no route covers NETn.1, and a
# port of PORTSn0-PORTSn9 is free. Sets slot_bridge, slot_bip
# (NETn.1/24), slot_port and slot_lock_fd (the lock, held until the test
# exits); bails out when no slot is free.
engine_slot() {
	local name=$1 net=$2 ports=$3 n p
	slot_bridge='' slot_bip='' slot_port='' slot_lock_fd=''
	for n in 0 1 2 3 4 5 6 7 8 9; do
		exec {slot_lock_fd}>"/tmp/kiln-$name-test.$n.lock"
		if flock -n "$slot_lock_fd" && ! ip link show "kiln-$name$n" >/dev/null 2>&1 &&
			! ip -4 route show to match "$net$n.1" | grep -vq '^default'; then
			for p in $(seq "$ports${n}0" "$ports${n}9"); do
				(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { slot_port=$p; break; }
			done
			if [ -n "$slot_port" ]; then
				slot_bridge=kiln-$name$n slot_bip=$net$n.1/24
				return 0
			fi
		fi
		exec {slot_lock_fd}>&-
	done
	slot_lock_fd=''
	echo "Bail out! no free slot for a second engine (bridge kiln-${name}0-9, ports ${ports}00-${ports}99)"
	exit 1
}
need_tools() { # need_tools CMD...: bail out unless each is installed
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "Bail out! $t is not installed (scripts/deps.sh)"; exit 1; }
	done
}
need_fixtures() { # need_fixtures SUBDIR: sets FIX to the absolute path of
	# shared/fixtures/SUBDIR: $KILN_FIXTURES, else ../shared/fixtures beside
	# the checkout, else /work/shared/fixtures (a clone elsewhere); bails out
	# naming the places looked in when none has it.
	local d
	for d in ${KILN_FIXTURES:+"$KILN_FIXTURES"} ../shared/fixtures /work/shared/fixtures; do
		if [ -d "$d/$1" ]; then FIX=$(cd "$d/$1" && pwd); return 0; fi
	done
	echo "Bail out! fixtures $1 not found in \$KILN_FIXTURES, ../shared/fixtures or /work/shared/fixtures"
	exit 1
}
tap_done() {
	echo "1..$_tap_n"
	[ "$_tap_failed" -eq 0 ]
}
