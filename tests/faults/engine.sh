# tests/faults/engine.sh: dockerd killed in the middle of solves.
# Sourced by tests/integration/faults_test.sh. The private engine's dockerd
# is killed (SIGKILL, by the pid in its pid file) once, while two builds
# run on it:
#
#   1. `kiln build -o type=local,dest=out` on the private engine alone:
#      exit 1, one line naming the engine's address, the previous output
#      intact, no temporary sibling of it;
#   2. a kiln.lua pool of builders "shared" (the shared engine) and
#      "private", max_jobs 1 each, targets a and b: each builder runs one.
#      The job on "private" is retried once on "shared" (one warning
#      naming "private"), both targets end 'done' on "shared", exit 0.

[ -n "$PRIV_DIR" ] || priv_up
ew=$tmp/engine
mkdir -p "$ew/ctx" "$ew/out" "$ew/pool/app"
echo "previous output" >"$ew/out/r"
mark="kiln-fault-eng-$$-$RANDOM"
# shellcheck disable=SC2016 # $R: for the Dockerfile
printf 'FROM busybox\nARG R\nRUN echo "$R" > /r && echo %s-single && sleep 600\nFROM scratch\nCOPY --from=0 /r /r\n' \
	"$mark" >"$ew/ctx/Dockerfile"
DOCKER_HOST=$PRIV_HOST BUILDKIT_HOST= "$KILN" build --progress=plain --build-arg "R=$$" \
	-o "type=local,dest=$ew/out" "$ew/ctx" >/dev/null 2>"$ew/single.err" &
kp1=$!
# shellcheck disable=SC2016 # $N: for the Dockerfile
printf 'FROM busybox\nARG N\nARG RUN\nRUN echo "$N $RUN" > /r && echo %s-$N && sleep 20\nCMD ["cat", "/r"]\n' \
	"$mark" >"$ew/pool/app/Dockerfile"
cat >"$ew/pool/kiln.lua" <<'LUA'
builder "shared" { addr = kiln.vars.shared, max_jobs = 1 }
builder "private" { addr = kiln.vars.private, max_jobs = 1 }
target "a" { context = "app", args = { N = "a", RUN = kiln.vars.run } }
target "b" { context = "app", args = { N = "b", RUN = kiln.vars.run } }
group "default" { "a", "b" }
LUA
(cd "$ew/pool" && exec "$KILN" build --progress=plain --var shared="$DOCKER_HOST" \
	--var private="$PRIV_HOST" --var run="$$-$RANDOM") 2>"$ew/pool.err" &
kp2=$!
seen() { grep -q "[0-9] $1\$" "$2" 2>/dev/null; }
for _ in $(seq 1200); do
	seen "$mark-single" "$ew/single.err" && seen "$mark-a" "$ew/pool.err" &&
		seen "$mark-b" "$ew/pool.err" && break
	sleep 0.1
done
dp=$(priv_pid dockerd)
if seen "$mark-single" "$ew/single.err" && seen "$mark-a" "$ew/pool.err" &&
	seen "$mark-b" "$ew/pool.err" && [ -n "$dp" ]; then
	ok "dockerd (pid $dp): three solves running (one alone, one per builder of the pool)"
else
	not_ok "dockerd: three solves running" "$(tail -n 10 "$ew/single.err")" "$(tail -n 10 "$ew/pool.err")"
fi
[ -n "$dp" ] && kill -9 "$dp"
wait "$kp1"
rc=$?
expect_eq "dockerd killed mid-solve: exit 1" 1 "$rc"
expect_match "dockerd killed mid-solve: one line naming the engine" \
	"^(ERROR|kiln): .*lost the engine at .*$PRIV_DIR/docker.sock during the solve" \
	"$(grep -E '^(ERROR|kiln):' "$ew/single.err")"
expect_eq "dockerd killed mid-solve: the previous output is intact, no temporary sibling" \
	"previous output|ctx out pool pool.err single.err" \
	"$(cat "$ew/out/r" 2>&1)|$(ls -A "$ew" | sort | paste -sd' ')"
wait "$kp2"
rc=$?
expect_eq "pool, builder killed mid-solve: exit 0" 0 "$rc"
warn=$(grep -i 'warning' "$ew/pool.err")
expect_match "pool: one warning, the job on \"private\" is retried once elsewhere" \
	'^kiln: warning: builder "private" was lost during [ab]: .*; retrying the job once on another builder$' "$warn"
expect_eq "pool: both targets done on \"shared\"" "a shared done
b shared done" "$(grep -E '^[ab] +- ' "$ew/pool.err" | awk '{ print $1, $3, $4 }')"
