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
