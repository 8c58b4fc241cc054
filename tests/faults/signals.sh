# tests/faults/signals.sh: SIGINT and SIGTERM in the middle of a build.
# Sourced by tests/integration/faults_test.sh (TAP helpers, $tmp, $KILN).
# Runs on the shared engine: nothing here breaks it.
#
# For `kiln build DIR -o type=local` and for a kiln.lua of two targets:
# the signal arrives while a RUN step runs (its shell, whose argv carries a
# mark unique to the run, is a process); kiln exits 128+signal (130, 143,
# as buildctl and buildx), the step's processes are gone afterwards (the
# solve was cancelled on the engine, not left running), the previous
# output is untouched and no temporary sibling of it is left.

# step_procs MARK: the processes whose command line carries MARK
step_procs() { ps -eo pid=,args= | M=$1 awk 'index($0, ENVIRON["M"]) && !/awk/'; }
# wait_mark FILE MARK: until a build log line ends with MARK (the step's
# own output, not the RUN line that names it)
wait_mark() {
	local _
	for _ in $(seq 600); do
		grep -q "[0-9] $2\$" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# gone MARK: waits (bounded) for MARK's processes to end; prints what is left
gone() {
	local left= _
	for _ in $(seq 200); do
		left=$(step_procs "$1")
		[ -z "$left" ] && break
		sleep 0.1
	done
	printf '%s' "$left"
}
siblings() { # siblings DIR: entries of DIR other than "out" (temporary siblings)
	find "$1" -mindepth 1 -maxdepth 1 ! -name out ! -name ctx ! -name '*.err' -printf '%f\n'
}

sig_case() { # sig_case SIG CODE
	local sig=$1 want=$2 wd=$tmp/sig-$1 mark kp rc
	mark="kiln-fault-$sig-$$-$RANDOM"
	mkdir -p "$wd/ctx" "$wd/out"
	echo "previous $sig" >"$wd/out/result"
	# a loop, so that the shell (whose argv has the mark) stays the step's process
	printf 'FROM busybox\nRUN echo %s; while :; do sleep 1; done\nFROM scratch\nCOPY --from=0 /etc/hostname /result\n' \
		"$mark" >"$wd/ctx/Dockerfile"
	"$KILN" build --progress=plain -o "type=local,dest=$wd/out" "$wd/ctx" 2>"$wd/build.err" &
	kp=$!
	if wait_mark "$wd/build.err" "$mark" && [ -n "$(step_procs "$mark")" ]; then
		ok "$sig: the RUN step is running"
	else
		not_ok "$sig: the RUN step is running" "$(tail -n 20 "$wd/build.err")"
	fi
	kill "-$sig" "$kp"
	wait "$kp"
	rc=$?
	expect_eq "$sig: kiln build exits $want" "$want" "$rc"
	expect_eq "$sig: the step's processes are gone (the solve was cancelled on the engine)" \
		"" "$(gone "$mark")"
	expect_eq "$sig: the previous -o type=local output is intact, no temporary sibling" \
		"previous $sig|" "$(cat "$wd/out/result" 2>&1)|$(siblings "$wd")"
}
sig_case INT 130
sig_case TERM 143

# a kiln.lua of two targets, both running, then SIGTERM
wd=$tmp/sig-plan
mark="kiln-fault-plan-$$-$RANDOM"
mkdir -p "$wd/app"
# shellcheck disable=SC2016 # $N: for the Dockerfile
printf 'FROM busybox\nARG N\nRUN echo %s-$N; while :; do sleep 1; done\n' "$mark" >"$wd/app/Dockerfile"
cat >"$wd/kiln.lua" <<'LUA'
target "a" { context = "app", args = { N = "a" } }
target "b" { context = "app", args = { N = "b" } }
group "default" { "a", "b" }
LUA
(cd "$wd" && exec "$KILN" build --progress=plain -j 2) 2>"$wd/build.err" &
kp=$!
if wait_mark "$wd/build.err" "$mark-a" && wait_mark "$wd/build.err" "$mark-b"; then
	ok "kiln.lua, SIGTERM: both targets' steps are running"
else
	not_ok "kiln.lua, SIGTERM: both targets' steps are running" "$(tail -n 20 "$wd/build.err")"
fi
kill -TERM "$kp"
wait "$kp"
expect_eq "kiln.lua, SIGTERM: exit 143" 143 "$?"
expect_eq "kiln.lua, SIGTERM: both steps' processes are gone" "" "$(gone "$mark")"
expect_match "kiln.lua, SIGTERM: the summary says cancelled for both" \
	'^a +- +default +cancelled .*
b +- +default +cancelled ' "$(grep -E '^[ab] +-' "$wd/build.err")"
