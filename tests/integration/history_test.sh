#!/usr/bin/env bash
# tests/integration/history_test.sh: build records and what reads them
# (docs/history.md), against the local engine. TAP.
#
#   1. three builds of one context: cold, cached, failing (a step that
#      prints 120000 lines, then exits 3): `kiln history ls` lists them
#      newest first with status, duration and cache hits; inspect of the
#      cached one says 100% cache hits; logs of the failing one print every
#      byte the engine sent (as the --progress=json stream has it); the
#      record's image size and layers are the engine's;
#   2. `kiln stats --format json` equals what jq recomputes from the
#      record files; --target and --since select;
#   3. `kiln ps` shows a running build, `kiln cancel ID` ends it: the
#      builder exits 130 and is gone; its record says canceled;
#   4. --secret id=x,src=FILE and id=y,env=VAR: the step used both (their
#      sha256 in its log), and no file under the state dir holds either;
#   5. a kiln.lua target leaves a record named after it; a run older than
#      $KILN_HISTORY_MAX_AGE is pruned when a build starts;
#   6. --export-context writes the context after .dockerignore;
#   7. history trace writes one file or none; history rm; bad references.
# Every build uses its own step contents (run_id) and KILN_STATE_DIR.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
need_tools jq tar sha256sum

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-history.XXXXXX")
export KILN_STATE_DIR=$tmp/state
TAG=kiln-history-test:$run_id
bg_pid=
cleanup() {
	[ -n "$bg_pid" ] && kill "$bg_pid" 2>/dev/null
	"$DOCKER" rmi -f "$TAG" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

hist() { "$KILN" history "$@"; }
# records: every record file's JSON, one per line
records() { find "$KILN_STATE_DIR/logs" -name record.json -exec jq -c . {} +; }

# ---- 1. cold, cached, failing ----------------------------------------------------------

ctx=$tmp/ctx
mkdir -p "$ctx"
echo "data $run_id" >"$ctx/data.txt"
cat >"$ctx/Dockerfile" <<EOF
FROM busybox
COPY data.txt /data.txt
RUN echo "step \$(cat /data.txt)" && sleep 1
ARG FAIL=0
RUN if [ "\$FAIL" = 1 ]; then seq 1 120000; echo "the-last-line-$run_id"; exit 3; fi; echo fine-$run_id
EOF
build() { # build ARGS...: kiln build in $ctx; sets rc, err
	err=$(timeout 300 "$KILN" build --progress=plain -t "$TAG" "$@" "$ctx" 2>&1 >/dev/null)
	rc=$?
}
build
expect_eq "cold build: exit 0" 0 "$rc"
expect_match "plain summary: the image's size and layers" '#0 image size [0-9.]+[kMG]?B, [0-9]+ layers' "$err"
build
expect_eq "cached build: exit 0" 0 "$rc"
timeout 300 "$KILN" build --progress=json -t "$TAG" --build-arg FAIL=1 "$ctx" 2>"$tmp/fail.jsonl" >/dev/null
expect_eq "failing build: exit 1" 1 "$?"

ls_json=$(hist ls --format json)
expect_eq "ls --format json: three records, newest first" "error completed completed" \
	"$(printf '%s' "$ls_json" | jq -r '[.[].status] | join(" ")')"
expect_eq "ls: newest first by start time" "true" \
	"$(printf '%s' "$ls_json" | jq '[.[].started_ns] | . == (sort | reverse)')"
id_fail=$(printf '%s' "$ls_json" | jq -r '.[0].id')
id_cached=$(printf '%s' "$ls_json" | jq -r '.[1].id')
id_cold=$(printf '%s' "$ls_json" | jq -r '.[2].id')
expect_match "IDs are short base-36" '^[0-9a-z]{12} [0-9a-z]{12} [0-9a-z]{12}$' "$id_fail $id_cached $id_cold"
table=$(hist ls)
expect_eq "ls table: the three IDs in that order under the header" \
	"BUILD ID $id_fail $id_cached $id_cold" "$(printf '%s\n' "$table" | awk '{print $1 ($1 == "BUILD" ? " ID" : "")}' | tr '\n' ' ' | sed 's/ $//')"
expect_match "ls table: status, duration and cache hits of the cached build" \
	"^$id_cached +ctx +- +Completed +.* ago +[0-9.]+s +[0-9]+/[0-9]+ \(100%\)\$" "$table"
expect_match "ls table: the failing build's status" "^$id_fail +ctx +- +Error " "$table"
check "ls --filter status=error: the failing one only" \
	test "$(hist ls --format json --filter status=error | jq -r '[.[].id] | join(" ")')" = "$id_fail"

insp=$(hist inspect "$id_cached")
expect_match "inspect of the cached build: 100% cache hits" 'Build Steps: +[0-9]+ \([0-9]+ cached, 0 run: 100% cache hits\)' "$insp"
expect_eq "inspect --format json: hits = steps, no misses" "true" \
	"$(hist inspect --format json "$id_cached" | jq '.cache.hits > 0 and .cache.misses == 0 and .cache.hits == .cache.steps')"
expect_eq "inspect of the cold build: the RUN steps missed the cache" "true" \
	"$(hist inspect --format json "$id_cold" | jq '.cache.misses >= 2')"
expect_eq "^1 is the cached build, a prefix finds the cold one" "$id_cached $id_cold" \
	"$(hist inspect --format json ^1 | jq -r .id) $(hist inspect --format json "${id_cold:0:6}" | jq -r .id)"

cold=$(hist inspect --format json "$id_cold")
expect_eq "record: image size and layers are the engine's" \
	"$("$DOCKER" image inspect -f '{{.Size}} {{len .RootFS.Layers}}' "$(printf '%s' "$cold" | jq -r .config_digest)" 2>&1)" \
	"$(printf '%s' "$cold" | jq -r '"\(.image_size) \(.image_layers)"')"
cold_id=$(printf '%s' "$cold" | jq -r .config_digest)
expect_eq "images.json remembers the image's size and layers by its ID" \
	"$(printf '%s' "$cold" | jq -r '"\(.image_size) \(.image_layers)"')" \
	"$(jq -r --arg id "$cold_id" '.images[$id] | "\(.size) \(.layers)"' "$KILN_STATE_DIR/images.json" 2>&1)"
# A cached rebuild makes the same image ID: its size comes from the memo,
# with no request to the engine, so libcurl is never loaded. (In a state
# dir of its own holding only the memo: the records here stay three.)
mkdir -p "$tmp/state-memo" && cp "$KILN_STATE_DIR/images.json" "$tmp/state-memo/"
memo_out=$(KILN_STATE_DIR=$tmp/state-memo LD_DEBUG=files timeout 300 "$KILN" build --progress=plain -t "$TAG" "$ctx" 2>&1 >/dev/null)
expect_match "cached rebuild: prints the remembered size" \
	"image size .*, $(printf '%s' "$cold" | jq -r .image_layers) layers" "$memo_out"
if printf '%s' "$memo_out" | grep -q 'file=libcurl'; then
	not_ok "cached rebuild: libcurl is not loaded" "$(printf '%s' "$memo_out" | grep 'file=libcurl')"
else ok "cached rebuild: libcurl is not loaded"; fi
expect_eq "record: context bytes were counted, platform, exit status" "true 0 completed" \
	"$(printf '%s' "$cold" | jq -r '"\(.context_bytes > 0) \(.exit_code) \(.status)"')"
expect_eq "record: every vertex has a time; the RUN steps a duration" "true" \
	"$(printf '%s' "$cold" | jq '[.vertices[] | select(.name | test("RUN")) | .duration_ns > 0] | all')"

fail=$(hist inspect --format json "$id_fail")
expect_eq "failing record: exit code 1, the step's exit code 3, its step named" "1 3 true" \
	"$(printf '%s' "$fail" | jq -r '"\(.exit_code) \(.step_exit_code) \(.failed_step | test("RUN if"))"')"
n=$(printf '%s' "$fail" | jq -r '.vertices[] | select(.error != null) | .n' | head -n 1)
digest=$(printf '%s' "$fail" | jq -r ".vertices[$((n - 1))].digest")
# Every byte the engine sent (BuildKit itself clips a step's output past
# its size and rate limits; kiln keeps all it received, beyond any
# renderer's tail): the kept log is the stream's vertex.log chunks.
hist logs --step "$n" "$id_fail" >"$tmp/step.log"
jq -j --arg d "$digest" 'select(.type == "vertex.log" and .vertex == $d) | .data' \
	"$tmp/fail.jsonl" >"$tmp/step.want"
expect_eq "logs --step N: the step's output, byte for byte as received" \
	"$(sha256sum <"$tmp/step.want")" "$(sha256sum <"$tmp/step.log")"
expect_eq "logs --step N: hundreds of kB, up to the last line" "true the-last-line-$run_id" \
	"$([ "$(wc -c <"$tmp/step.log")" -gt 400000 ] && echo true) $(tail -n 1 "$tmp/step.log")"
all=$(hist logs "$id_fail")
expect_eq "logs ID: the whole log as plain lines, one per received line (+ name, ERROR)" \
	"$(($(grep -c '' "$tmp/step.log") + 2))" "$(printf '%s\n' "$all" | grep -c "^#$n ")"
expect_match "logs ID: its last line" "#$n the-last-line-$run_id" "$all"
expect_match "logs ID: the error at the end" "ERROR: .*exit code: 3" "$(printf '%s\n' "$all" | tail -n 3)"

# ---- 2. stats ---------------------------------------------------------------------------

stats=$(timeout 60 "$KILN" stats --format json)
want=$(records | jq -s '
	[.[] | select(.status != "running")] as $r |
	($r | map(.duration_ns) | sort) as $d |
	{builds: ($r | length),
	 succeeded: ($r | map(select(.status == "completed")) | length),
	 hits: ($r | map(.cache.hits) | add), misses: ($r | map(.cache.misses) | add),
	 avg: (($d | add) / ($d | length) | floor),
	 p95: $d[(((95 * ($d | length)) + 99) / 100 | floor) - 1]} |
	.success_rate = (.succeeded / .builds) | .hit_rate = (.hits / (.hits + .misses))')
expect_eq "stats --format json: the numbers jq recomputes from the records" \
	"$(printf '%s' "$want" | jq -c '[.builds, .succeeded, .success_rate, .hits, .misses, .hit_rate, .avg, .p95]')" \
	"$(printf '%s' "$stats" | jq -c '[.builds, .succeeded, .success_rate, .cache_hits, .cache_misses, .cache_hit_rate, .average_duration_ns, .p95_duration_ns]')"
expect_eq "stats: one target, ctx, with the same totals" "ctx 3 2" \
	"$(printf '%s' "$stats" | jq -r '.targets | map("\(.name) \(.builds) \(.succeeded)") | join(",")')"
expect_eq "stats --target nothing-like-it: no builds" "0" \
	"$("$KILN" stats --format json --target nothing-like-it | jq .builds)"
expect_eq "stats --since 2100-01-01: no builds" "0" \
	"$("$KILN" stats --format json --since 2100-01-01 | jq .builds)"
"$KILN" stats --since yesterday >/dev/null 2>&1
expect_eq "stats --since yesterday: a usage error" 2 "$?"

# ---- 3. ps and cancel -------------------------------------------------------------------

slow=$tmp/slow
mkdir -p "$slow"
mark="kiln-history-cancel-$run_id"
printf 'FROM busybox\nRUN echo %s; while :; do sleep 1; done\n' "$mark" >"$slow/Dockerfile"
"$KILN" build --progress=plain "$slow" 2>"$tmp/slow.err" &
bg_pid=$!
for _ in $(seq 300); do grep -q "[0-9] $mark" "$tmp/slow.err" 2>/dev/null && break; sleep 0.1; done
ps_json=$("$KILN" ps --format json)
expect_eq "ps: the running build, with the builder's pid" "1 $bg_pid" \
	"$(printf '%s' "$ps_json" | jq -r '"\(length) \(.[0].pid)"')"
id_slow=$(printf '%s' "$ps_json" | jq -r '.[0].id')
expect_match "ps table: its ID and name" "^$id_slow +slow " "$("$KILN" ps)"
expect_eq "history ls: it is Running" "running" \
	"$(hist inspect --format json "$id_slow" | jq -r .status)"
t0=$(date +%s%N)
cancel_out=$("$KILN" cancel "$id_slow" 2>&1)
cancel_rc=$?
wait "$bg_pid"
rc=$?
bg_pid=
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "cancel: exit 0, prints the ID" "0 $id_slow" "$cancel_rc $cancel_out"
expect_eq "cancel: the builder exits 130" 130 "$rc"
if [ "$ms" -lt 5000 ]; then ok "cancel: the build ends within 5 s (${ms} ms)"; else
	not_ok "cancel: the build ends within 5 s" "took ${ms} ms"; fi
left=
for _ in $(seq 100); do
	left=$(ps -eo pid=,args= | M=$mark awk 'index($0, ENVIRON["M"])')
	[ -z "$left" ] && break
	sleep 0.1
done
expect_eq "cancel: the step's process is gone (the solve was cancelled)" "" "$left"
expect_eq "cancel: its record says canceled, exit 130; ps lists nothing" "canceled 130 0" \
	"$(hist inspect --format json "$id_slow" | jq -r '"\(.status) \(.exit_code)"') $("$KILN" ps --format json | jq length)"
"$KILN" cancel "$id_slow" >/dev/null 2>&1
expect_eq "cancel of a finished build: exit 1" 1 "$?"

# ---- 4. secrets never reach the records -------------------------------------------------

sec=$tmp/sec
mkdir -p "$sec"
file_secret="kiln-hist-file-secret-$run_id-$RANDOM$RANDOM"
env_secret="kiln-hist-env-secret-$run_id-$RANDOM$RANDOM"
printf '%s' "$file_secret" >"$tmp/secret.txt"
printf 'FROM busybox\nRUN --mount=type=secret,id=x --mount=type=secret,id=y sha256sum /run/secrets/x /run/secrets/y && echo %s\n' \
	"$run_id" >"$sec/Dockerfile"
err=$(KILN_HIST_SECRET=$env_secret timeout 300 "$KILN" build --progress=plain \
	--secret "id=x,src=$tmp/secret.txt" --secret id=y,env=KILN_HIST_SECRET "$sec" 2>&1 >/dev/null)
rc=$?
expect_eq "secret build: exit 0" 0 "$rc"
logs=$(hist logs)
expect_eq "secret build: the step saw both secrets (their sha256 in the kept log)" "2" \
	"$(printf '%s\n' "$logs" | grep -cE "$(printf '%s' "$file_secret" | sha256sum | cut -c1-64)|$(printf '%s' "$env_secret" | sha256sum | cut -c1-64)")"
expect_eq "secrets: no file under the state dir holds either value" "0" \
	"$(grep -rlF -e "$file_secret" -e "$env_secret" "$KILN_STATE_DIR" | wc -l)"

# ---- 5. kiln.lua records; retention -----------------------------------------------------

plan=$tmp/plan
mkdir -p "$plan/app" "$KILN_STATE_DIR/logs/20200101T000000Z-1/default@native"
printf 'FROM busybox\nRUN echo plan-%s\n' "$run_id" >"$plan/app/Dockerfile"
printf 'target("histapp") { context = "app" }\n' >"$plan/kiln.lua"
echo '{"version":1,"id":"oldoldoldold","status":"completed","started_ns":1}' \
	>"$KILN_STATE_DIR/logs/20200101T000000Z-1/default@native/record.json"
expect_eq "an old record is listed before the next build" "oldoldoldold" \
	"$(hist ls --format json | jq -r '.[-1].id')"
out=$(cd "$plan" && KILN_HISTORY_MAX_AGE=30d timeout 300 "$KILN" build --progress=plain histapp 2>&1)
rc=$?
expect_eq "kiln.lua build: exit 0" 0 "$rc"
expect_eq "kiln.lua build: a record named after the target, completed" "histapp completed histapp" \
	"$(hist ls --format json --filter name=histapp | jq -r '.[] | "\(.name) \(.status) \(.job.target)"')"
check "retention: the 2020 run is gone (older than 30d)" test ! -e "$KILN_STATE_DIR/logs/20200101T000000Z-1"

# ---- 6. --export-context ----------------------------------------------------------------

ex=$tmp/ex
mkdir -p "$ex/src" "$ex/skip"
printf 'FROM busybox\nCOPY . /c\nRUN ls -R /c >/dev/null\n' >"$ex/Dockerfile"
printf 'skip\n*.log\n!keep.log\n' >"$ex/.dockerignore"
echo a >"$ex/src/a.c"; echo b >"$ex/skip/b"; echo c >"$ex/x.log"; echo d >"$ex/keep.log"
ln -s src/a.c "$ex/link"
err=$(timeout 300 "$KILN" build --progress=quiet --export-context "$tmp/ctx.tar" "$ex" 2>&1 >/dev/null)
rc=$?
expect_eq "export-context: the build ran (exit 0)" 0 "$rc"
expect_eq "export-context: the tar holds the context after .dockerignore" \
	".dockerignore Dockerfile keep.log link src src/a.c" \
	"$(tar -tf "$tmp/ctx.tar" 2>&1 | sed 's,/$,,' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "export-context: contents and the symlink kept" "a src/a.c" \
	"$(tar -xOf "$tmp/ctx.tar" src/a.c 2>&1) $(tar -tvf "$tmp/ctx.tar" link | sed 's/.* -> //')"
"$KILN" build --export-context "$tmp/no.tar" https://example.invalid/repo.git >/dev/null 2>&1
expect_eq "export-context of a context that is no directory: exit 2, no file" "2 absent" \
	"$? $([ -e "$tmp/no.tar" ] && echo present || echo absent)"

# ---- 7. trace, rm, bad references ------------------------------------------------------

mkdir -p "$tmp/tr"
hist trace "$id_cold" -o "$tmp/tr/build.html" 2>"$tmp/trace.err"
trc=$?
expect_eq "trace: no temporary file left behind" "" \
	"$(cd "$tmp/tr" && ls -A | grep -v '^build.html$')"
if [ "$trc" = 0 ]; then
	expect_match "trace: one HTML file naming the build" "$id_cold" "$(cat "$tmp/tr/build.html")"
	hist trace --format svg -o "$tmp/tr/build.svg" "$id_cold"
	expect_match "trace --format svg: an SVG document" "<svg" "$(cat "$tmp/tr/build.svg" 2>&1)"
elif grep -q "not implemented" "$tmp/trace.err"; then
	check "trace: the placeholder writer leaves no file" test ! -e "$tmp/tr/build.html"
	skip "trace --format svg" "the timeline writer (core/trace.c) is a placeholder here"
else
	not_ok "trace: exit 0" "$(cat "$tmp/trace.err")"
fi

hist inspect nosuchbuild >/dev/null 2>"$tmp/e"
expect_eq "inspect of an unknown ID: exit 1 and a message" "1 yes" \
	"$? $(grep -q "no build record 'nosuchbuild'" "$tmp/e" && echo yes)"
hist logs ^999 >/dev/null 2>&1
expect_eq "logs ^999: exit 1" 1 "$?"
before=$(hist ls --format json | jq length)
expect_eq "rm ID: prints the ID" "$id_cold" "$(hist rm "$id_cold")"
expect_eq "rm ID: one record fewer, the cold one gone" "$((before - 1)) 0" \
	"$(hist ls --format json | jq length) $(hist ls --format json | jq --arg id "$id_cold" '[.[] | select(.id == $id)] | length')"
hist rm --all >/dev/null
expect_eq "rm --all: nothing left" "0" "$(hist ls --format json | jq length)"
hist bogus >/dev/null 2>&1
expect_eq "history bogus: a usage error" 2 "$?"

tap_done
