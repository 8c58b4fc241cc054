#!/usr/bin/env bash
# tests/integration/lua_build_test.sh: `kiln build` with a kiln.lua on the
# local engine (the BuildKit inside its dockerd). TAP.
#
#   1. 12 independent targets, each FROM busybox with its own RUN ... sleep 2,
#      at -j 6: all built and tagged; every plain progress line belongs to
#      one target; the summary lists each; at most 6 jobs in flight (and
#      more than 1), counted from the JSON event stream; -j 1 runs one at
#      a time (the speed-up is measured in bench/, not here);
#   2. depends: the dependent starts after its dependency finished;
#   3. --keep-going with a failing target: the others' images exist, the
#      failure names its step and exit code, its dependent is skipped,
#      exit 1; --fail-fast (the default) cancels the running jobs, which
#      export nothing;
#   4. a target with two platforms and a type=local output: dest/linux_amd64
#      and dest/linux_arm64 hold each platform's `uname -m` (QEMU);
#   5. a builder pool where one builder is unreachable: reported once, its
#      jobs run on the other; with none reachable, exit 3 and the reason;
#   6. SIGINT cancels the running jobs: exit 130.
# Every run uses its own tags and step contents (run_id), so runs may overlap.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
need_tools jq

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-lua-build.XXXXXX")
kiln_pid=
cleanup() {
	[ -n "$kiln_pid" ] && kill "$kiln_pid" 2>/dev/null
	"$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | grep "^kiln-lua-test/.*:$run_id" |
		xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# in_flight EVENTS: the most jobs between job.started and job.finished at once
in_flight() {
	jq -rs '[.[] | select(.type == "job.started" or .type == "job.finished") | .type] |
		reduce .[] as $t ({n: 0, max: 0};
			.n += (if $t == "job.started" then 1 else -1 end) | .max = ([.max, .n] | max)) |
		.max' "$1"
}

# ---- 1. twelve targets ------------------------------------------------------------------

p=$tmp/twelve
mkdir -p "$p/app"
printf 'FROM busybox\nARG NAME\nARG RUN_ID\nRUN echo "building $NAME $RUN_ID" && sleep 2 && echo "done $NAME"\n' \
	> "$p/app/Dockerfile"
cat > "$p/kiln.lua" <<'EOF'
local names = {}
for i = 1, 12 do
  local name = string.format("t%02d", i)
  names[#names + 1] = name
  target(name) {
    context = "app",
    args = { NAME = name, RUN_ID = kiln.vars.run },
    tags = { "kiln-lua-test/" .. name .. ":" .. kiln.vars.tag },
  }
end
group "default" { table.unpack(names) }
EOF

kbuild_in "$p" -j 6 --progress=plain --var run="$run_id-a" --var tag="$run_id"
if [ $rc -eq 0 ]; then ok "12 targets, -j 6: exit 0"; else not_ok "12 targets, -j 6: exit $rc"; show_err; fi
missing=
for i in $(seq -w 1 12); do
	"$DOCKER" image inspect "kiln-lua-test/t$i:$run_id" >/dev/null 2>&1 || missing="$missing t$i"
done
expect_eq "12 targets: every image is tagged in the engine" "" "$missing"

# Plain output: vertex numbers are per run; the header "#N [tXX ...]" of
# each says its target, and every later "#N" line belongs to that vertex.
attrib=$(printf '%s\n' "$err" | awk '
	/^#[0-9]+ \[/ {
		id = $1; lab = $2; sub(/^\[/, "", lab); sub(/\]$/, "", lab)
		if (id == "#0") next
		if (id in owner && owner[id] != lab) { print "two targets for " id ": " owner[id] ", " lab; bad++ }
		owner[id] = lab; next
	}
	/^#[0-9]+ / { if (!($1 in owner) && $1 != "#0") { print "no target for: " $0; bad++ } }
	END { print bad + 0 }')
expect_eq "plain output: every #N line belongs to exactly one target" "0" "$(printf '%s\n' "$attrib" | tail -1)"
for i in $(seq -w 1 12); do
	printf '%s\n' "$err" | grep -Eq "^#[0-9]+ [0-9.]+ done t$i\$" || missing="$missing t$i"
	id=$(printf '%s\n' "$err" | grep -E "^#[0-9]+ \[t$i [0-9]/[0-9]\] RUN" | head -1 | cut -d' ' -f1)
	[ -n "$id" ] && printf '%s\n' "$err" | grep -E "^$id [0-9.]+ done " | grep -vq "done t$i\$" &&
		missing="$missing t$i-misattributed"
done
expect_eq "plain output: each target's RUN log line is under its own vertex" "" "$missing"
rows=$(printf '%s\n' "$err" | grep -cE "^t[0-9]{2} +- +default +done +[0-9.]+s +[0-9]+/[0-9]+ +sha256:[0-9a-f]{64}$")
expect_eq "summary: 12 rows, done, on builder default, with digests" 12 "$rows"
expect_match "summary: header" "^TARGET +PLATFORM +BUILDER +STATUS +DURATION +CACHED +DIGEST$" \
	"$(printf '%s\n' "$err" | grep '^TARGET')"

kbuild_in "$p" -j 6 --progress=json --var run="$run_id-b" --var tag="$run_id"
printf '%s\n' "$err" | grep '^{' > "$tmp/j6.jsonl"
n=$(in_flight "$tmp/j6.jsonl")
if [ $rc -eq 0 ] && [ "$n" -le 6 ] && [ "$n" -ge 2 ]; then
	ok "-j 6: between 2 and 6 jobs in flight (saw $n)"
else
	not_ok "-j 6: between 2 and 6 jobs in flight" "exit $rc, max in flight $n"
fi
expect_eq "-j 6 --progress=json: 12 job.finished events, status 0" 12 \
	"$(jq -s '[.[] | select(.type == "job.finished" and .status == 0)] | length' "$tmp/j6.jsonl")"
kbuild_in "$p" -j 1 --progress=json --var run="$run_id-c" --var tag="$run_id" t01 t02 t03
printf '%s\n' "$err" | grep '^{' > "$tmp/j1.jsonl"
expect_eq "-j 1: one job at a time (3 targets)" "0 1 3" \
	"$rc $(in_flight "$tmp/j1.jsonl") $(jq -s '[.[] | select(.type == "job.finished")] | length' "$tmp/j1.jsonl")"

# ---- 2. depends ----------------------------------------------------------------------------

p=$tmp/deps
mkdir -p "$p/app"
cp "$tmp/twelve/app/Dockerfile" "$p/app/"
cat > "$p/kiln.lua" <<'EOF'
target "base" { context = "app", args = { NAME = "base", RUN_ID = kiln.vars.run } }
target "app" { context = "app", depends = { "base" }, args = { NAME = "app", RUN_ID = kiln.vars.run } }
target "ctx" { context = "app", contexts = { b = "target:base" } }
EOF
kbuild_in "$p" --progress=json --var run="$run_id-d" app
order=$(printf '%s\n' "$err" | grep '^{' | jq -r 'select(.type == "job.started" or .type == "job.finished") | .type + ":" + .job.target' | tr '\n' ' ')
expect_eq "depends: base finishes before app starts" \
	"0 job.started:base job.finished:base job.started:app job.finished:app " "$rc $order"
kbuild_in "$p" --progress=plain --var run="$run_id-d" ctx
expect_eq "contexts = { b = \"target:base\" } without a tag on base: exit 2" 2 "$rc"
expect_match "…with a message naming the context" \
	"target \"ctx\": context 'b' comes from target \"base\", which has no tags" "$err"

# ---- 3. failures ------------------------------------------------------------------------------

p=$tmp/fail
mkdir -p "$p/app" "$p/bad"
cp "$tmp/twelve/app/Dockerfile" "$p/app/"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "partial $RUN_ID"\nRUN echo "about to fail" && exit 3\n' > "$p/bad/Dockerfile"
cat > "$p/kiln.lua" <<'EOF'
target "bad" { context = "bad", args = { RUN_ID = kiln.vars.run } }
target "after-bad" { context = "app", depends = { "bad" }, args = { NAME = "after", RUN_ID = kiln.vars.run } }
for _, n in ipairs({ "ok1", "ok2", "ok3" }) do
  target(n) {
    context = "app",
    args = { NAME = n, RUN_ID = kiln.vars.run },
    tags = { "kiln-lua-test/" .. n .. ":" .. kiln.vars.tag },
  }
end
group "default" { "bad", "after-bad", "ok1", "ok2", "ok3" }
EOF
kbuild_in "$p" --keep-going -j 4 --progress=plain --var run="$run_id-e" --var tag="$run_id"
expect_eq "--keep-going: exit 1" 1 "$rc"
missing=
for n in ok1 ok2 ok3; do
	"$DOCKER" image inspect "kiln-lua-test/$n:$run_id" >/dev/null 2>&1 || missing="$missing $n"
done
expect_eq "--keep-going: the other targets' images exist" "" "$missing"
expect_match "--keep-going: the failure names its step and exit code" \
	'^  bad: \[3/3\] RUN echo "about to fail" && exit 3: .*exit code: 3$' "$err"
expect_match "--keep-going: one of five failed" '^1 of 5 jobs failed:$' "$err"
expect_match "--keep-going: the dependent is skipped" '^after-bad +- +- +skipped ' "$err"

# --fail-fast: the failure comes at once, the others are still sleeping;
# they are cancelled and export nothing. (That nothing reaches a registry
# is checked in lua_publish_test.sh.)
printf 'FROM busybox\nARG RUN_ID\nRUN echo "fail at once $RUN_ID" && exit 4\n' > "$p/bad/Dockerfile"
sed -i 's/sleep 2/sleep 20/' "$p/app/Dockerfile"
kbuild_in "$p" -j 5 --progress=plain --var run="$run_id-f" --var tag="ff-$run_id" bad ok1 ok2 ok3
expect_eq "--fail-fast (default): exit 1" 1 "$rc"
expect_eq "--fail-fast: the others are cancelled" 3 \
	"$(printf '%s\n' "$err" | grep -cE '^ok[123] +- +(default|-) +cancelled ')"
made=
for n in ok1 ok2 ok3; do
	"$DOCKER" image inspect "kiln-lua-test/$n:ff-$run_id" >/dev/null 2>&1 && made="$made $n"
done
expect_eq "--fail-fast: the cancelled targets exported nothing" "" "$made"
expect_match "--fail-fast: the failure is listed" '^  bad: \[2/2\] RUN echo "fail at once .*exit code: 4$' "$err"

# ---- 4. two platforms, local output ----------------------------------------------------------

if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	p=$tmp/multi
	mkdir -p "$p/arch"
	printf 'FROM busybox AS build\nARG RUN_ID\nRUN echo "$RUN_ID" >/dev/null && uname -m > /arch\nFROM scratch\nCOPY --from=build /arch /arch\n' \
		> "$p/arch/Dockerfile"
	cat > "$p/kiln.lua" <<'EOF'
target "arch" {
  context = "arch",
  args = { RUN_ID = kiln.vars.run },
  platforms = { "linux/amd64", "linux/arm64" },
  output = { "type=local,dest=out" },
}
EOF
	kbuild_in "$p" --progress=plain --var run="$run_id-g"
	got="$rc $(cat "$p/out/linux_amd64/arch" 2>/dev/null) $(cat "$p/out/linux_arm64/arch" 2>/dev/null)"
	expect_eq "two platforms, type=local: out/linux_amd64/arch and out/linux_arm64/arch" \
		"0 x86_64 aarch64" "$got"
	expect_eq "two platforms: two summary rows" 2 \
		"$(printf '%s\n' "$err" | grep -cE '^arch +linux/(amd64|arm64) +default +done ')"
else
	skip "two platforms, type=local" "no qemu-aarch64 in binfmt_misc"
	skip "two platforms: two summary rows" "no qemu-aarch64 in binfmt_misc"
fi

# ---- 5. builder pool with an unreachable builder -----------------------------------------------

p=$tmp/pool
mkdir -p "$p/app"
cp "$tmp/twelve/app/Dockerfile" "$p/app/"
sed -i 's/sleep 2/sleep 1/' "$p/app/Dockerfile"
cat > "$p/kiln.lua" <<EOF
builder "gone" { addr = "unix://$tmp/no-such-dir/buildkitd.sock", max_jobs = 2 }
builder "engine" { addr = "$BUILDKIT_HOST", max_jobs = 2 }
for i = 1, 4 do
  target("p" .. i) { context = "app", args = { NAME = "p" .. i, RUN_ID = kiln.vars.run } }
end
group "default" { "p1", "p2", "p3", "p4" }
EOF
kbuild_in "$p" --progress=plain --var run="$run_id-h"
expect_eq "pool: exit 0" 0 "$rc"
expect_eq "pool: the unreachable builder is reported once" 1 \
	"$(printf '%s\n' "$err" | grep -c '^kiln: warning: builder "gone" is unreachable: .*; its jobs go to other builders$')"
expect_eq "pool: all four ran on the other builder" 4 \
	"$(printf '%s\n' "$err" | grep -cE '^p[1-4] +- +engine +done ')"
cat > "$p/kiln.lua" <<EOF
builder "gone" { addr = "unix://$tmp/no-such-dir/buildkitd.sock" }
target "p1" { context = "app" }
EOF
kbuild_in "$p" --progress=plain
expect_eq "pool: no builder reachable: exit 3" 3 "$rc"
expect_match "pool: no builder reachable: the reason" \
	"^  p1: no reachable builder for the job \\(gone: cannot reach buildkit at unix://$tmp/no-such-dir/buildkitd.sock: " "$err"

# ---- 6. SIGINT ------------------------------------------------------------------------------------

p=$tmp/sig
mkdir -p "$p/app"
printf 'FROM busybox\nARG RUN_ID\nRUN echo "start $RUN_ID" && sleep 60\n' > "$p/app/Dockerfile"
printf 'target "a" { context = "app", args = { RUN_ID = kiln.vars.run .. "a" } }\ntarget "b" { context = "app", args = { RUN_ID = kiln.vars.run .. "b" } }\ngroup "default" { "a", "b" }\n' \
	> "$p/kiln.lua"
(cd "$p" && exec timeout 120 "$KILN" build --progress=plain --var run="$run_id-i" 2>"$tmp/sig.err") &
kiln_pid=$!
for _ in $(seq 1 300); do
	[ "$(grep -c '^#[0-9]* [0-9.]* start ' "$tmp/sig.err" 2>/dev/null)" = 2 ] && break
	sleep 0.1
done
kill -INT "$kiln_pid" 2>/dev/null # timeout(1) passes it on to kiln
wait "$kiln_pid"
rc=$?
kiln_pid=
expect_eq "SIGINT during two running jobs: exit 130" 130 "$rc"

tap_done
