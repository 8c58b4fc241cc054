#!/usr/bin/env bash
# tests/integration/dockerfile_build_test.sh: what the dockerfile frontend
# does around a build, against the local engine's dockerd 20.10 (BuildKit
# v0.8 inside, reached as docker-unix://). TAP.
#
#   1. a syntax error stops `kiln build` with FILE:LINE before any engine
#      is contacted (the address given is unreachable); so does an unknown
#      --target;
#   2. `kiln build --check` and `kiln lint` contact no engine;
#   3. syntax BuildKit v0.8's built-in frontend lacks (heredoc, COPY
#      --link, RUN --network, a named context, --shm-size) is refused before
#      the solve, naming the construct, its line and the engine;
#      '# check=' only gives a warning; the classic builder (docker
#      backend) refuses a heredoc too;
#   4. -f - (Dockerfile on stdin) and PATH - (a context tarball, or a bare
#      Dockerfile, on stdin) build images that run;
#   5. --no-cache-filter STAGE re-runs that stage only; --target picks the
#      stage and Step N/M counts its steps (job.started in --progress=json).
#
#   tests/integration/dockerfile_build_test.sh     KILN=build/kiln by default
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker
run_id=$$-$RANDOM
need_engine
ADDR=${BUILDKIT_HOST:-docker-unix://${DOCKER_HOST#unix://}}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-df-build.XXXXXX")
images=()
cleanup() {
	for i in "${images[@]}"; do "$DOCKER" image rm -f "$i" >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# run CMD...: run CMD, keep its stdout+stderr in $out and its status in $rc.
run() { out=$("$@" 2>&1); rc=$?; }

# --- 1. syntax errors before any engine -------------------------------------
mkdir -p "$tmp/bad"
printf 'FROM busybox\nRUN true\nFROOM busybox\n' >"$tmp/bad/Dockerfile"
run "$KILN" build --addr tcp://127.0.0.1:1 "$tmp/bad"
expect_eq "syntax error: exit 2" 2 "$rc"
expect_match "syntax error names FILE:3" "$tmp/bad/Dockerfile:3(:[0-9]+)?: .*(unknown instruction|FROOM)" "$out"
case $out in *127.0.0.1:1*) not_ok "syntax error: engine not contacted" "$out" ;;
*) ok "syntax error: engine not contacted" ;; esac

printf 'FROM busybox AS one\nRUN true\n' >"$tmp/bad/Dockerfile.target"
run "$KILN" build --addr tcp://127.0.0.1:1 -f "$tmp/bad/Dockerfile.target" --target nope "$tmp/bad"
expect_eq "unknown --target: exit 2" 2 "$rc"
expect_match "unknown --target named" 'target stage "nope" could not be found' "$out"

# --- 2. --check and lint contact no engine ----------------------------------
mkdir -p "$tmp/lint"
printf 'FROM busybox as base\nMAINTAINER someone\nCMD echo hi\n' >"$tmp/lint/Dockerfile"
run "$KILN" build --check --addr tcp://127.0.0.1:1 "$tmp/lint"
expect_eq "build --check with warnings: exit 0" 0 "$rc"
expect_match "build --check: FromAsCasing at line 1" "Dockerfile:1:[0-9]+: warning: FromAsCasing" "$out"
expect_match "build --check: MaintainerDeprecated at line 2" "Dockerfile:2:[0-9]+: warning: MaintainerDeprecated" "$out"
printf '# check=error=true\nFROM busybox as base\n' >"$tmp/lint/Dockerfile.strict"
run "$KILN" build --check -f "$tmp/lint/Dockerfile.strict" "$tmp/lint"
expect_eq "build --check under error=true: exit 1" 1 "$rc"
run "$KILN" lint "$tmp/bad"
expect_eq "lint of a syntax error: exit 1" 1 "$rc"
expect_match "lint: the error at line 3" "Dockerfile:3:[0-9]+: error: " "$out"
run "$KILN" lint --format json "$tmp/lint"
expect_eq "lint --format json: exit 0" 0 "$rc"
if printf '%s' "$out" | jq -e '.fail == false and ([.diagnostics[].rule] | index("MaintainerDeprecated")) != null' >/dev/null 2>&1; then
	ok "lint --format json lists the rules"
else
	not_ok "lint --format json lists the rules" "$out"
fi

# --- 3. syntax the engine's frontend lacks -----------------------------------
mkdir -p "$tmp/new"
echo data >"$tmp/new/f"
# expect_refused NAME CONSTRUCT LINE DOCKERFILE-TEXT [EXTRA FLAGS...]
expect_refused() {
	local name=$1 construct=$2 line=$3 text=$4
	shift 4
	printf '%b' "$text" >"$tmp/new/Dockerfile"
	run "$KILN" build --addr "$ADDR" --progress=plain "$@" "$tmp/new"
	expect_eq "$name: exit 2" 2 "$rc"
	if [ "$line" = 0 ]; then
		expect_match "$name: names it and the engine" "$construct needs Dockerfile syntax .*BuildKit v0\\.8" "$out"
	else
		expect_match "$name: names it, line $line and the engine" \
			"Dockerfile:$line(:[0-9]+)?: $construct needs Dockerfile syntax [0-9.]+ .*BuildKit v0\\.8" "$out"
	fi
	# Refused before the solve: no step ran.
	case $out in *'#1 '*|*'[internal]'*) not_ok "$name: nothing was solved" "$out" ;;
	*) ok "$name: nothing was solved" ;; esac
}
expect_refused "heredoc" "heredoc" 3 'FROM busybox\nRUN true\nRUN <<EOF\necho hi\nEOF\n'
expect_refused "COPY --link" "COPY --link" 2 'FROM busybox\nCOPY --link f /f\n'
expect_refused "RUN --network" "RUN --network" 2 'FROM busybox\nRUN --network=none true\n'
expect_refused "named context" "named build context \\(--build-context\\)" 0 \
	'FROM busybox\nCOPY --from=extra f /f\n' --build-context "extra=$tmp/new"
expect_refused "--shm-size" "--shm-size" 0 'FROM busybox\nRUN true\n' --shm-size 64m

printf '# check=skip=JSONArgsRecommended\nFROM busybox\nCMD echo %s\n' "$run_id" >"$tmp/new/Dockerfile"
run "$KILN" build --addr "$ADDR" -q -t "kiln-df-check:$run_id" "$tmp/new"
expect_eq "# check= on v0.8: builds" 0 "$rc"
images+=("kiln-df-check:$run_id")
expect_match "# check= on v0.8: warns at line 1" "Dockerfile:1: the '# check=' directive needs Dockerfile syntax 1.8" "$out"

printf 'FROM busybox\nRUN <<EOF\necho hi\nEOF\n' >"$tmp/new/Dockerfile"
run env KILN_BACKEND=docker "$KILN" build --addr "$DOCKER_HOST" "$tmp/new"
expect_eq "classic builder, heredoc: exit 2" 2 "$rc"
expect_match "classic builder, heredoc: line 2" "Dockerfile:2(:[0-9]+)?: heredoc .*classic builder" "$out"

# --- 4. stdin ------------------------------------------------------------------
mkdir -p "$tmp/stdin/sub" "$tmp/stdin/docker"
echo "tar-$run_id" >"$tmp/stdin/sub/hello"
printf 'FROM busybox\nCOPY sub/hello /hello\nCMD ["cat","/hello"]\n' >"$tmp/stdin/docker/Build.Dockerfile"
run sh -c "tar -C '$tmp/stdin' -cz . | '$KILN' build --addr '$ADDR' -q -t kiln-df-tar:$run_id -f docker/Build.Dockerfile -"
expect_eq "context tarball on stdin: exit 0" 0 "$rc"
images+=("kiln-df-tar:$run_id")
expect_eq "context tarball on stdin: the image runs" "tar-$run_id" "$("$DOCKER" run --rm "kiln-df-tar:$run_id" 2>&1)"

run sh -c "printf 'FROM busybox\nCMD [\"echo\",\"df-$run_id\"]\n' | '$KILN' build --addr '$ADDR' -q -t kiln-df-stdin:$run_id -f - '$tmp/stdin'"
expect_eq "-f - : exit 0" 0 "$rc"
images+=("kiln-df-stdin:$run_id")
expect_eq "-f - : the image runs" "df-$run_id" "$("$DOCKER" run --rm "kiln-df-stdin:$run_id" 2>&1)"

run sh -c "printf 'FROM busybox\nCMD [\"echo\",\"bare-$run_id\"]\n' | '$KILN' build --addr '$ADDR' -q -t kiln-df-bare:$run_id -"
expect_eq "bare Dockerfile on stdin: exit 0" 0 "$rc"
images+=("kiln-df-bare:$run_id")
expect_eq "bare Dockerfile on stdin: the image runs" "bare-$run_id" "$("$DOCKER" run --rm "kiln-df-bare:$run_id" 2>&1)"
left=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'kiln-stdin-*' -newer "$tmp" 2>/dev/null)
expect_eq "stdin temp dirs removed" "" "$left"
run sh -c "'$KILN' build -f - - </dev/null"
expect_eq "stdin for both: exit 2" 2 "$rc"
expect_match "stdin for both: says so" "can't use stdin for both" "$out"

# --- 5. --no-cache-filter, --target and Step N/M ----------------------------------
mkdir -p "$tmp/stages"
cat >"$tmp/stages/Dockerfile" <<EOF
FROM busybox AS a
RUN echo a-$run_id > /a
FROM busybox AS b
RUN echo b-$run_id > /b
FROM busybox AS c
COPY --from=a /a /a
COPY --from=b /b /b
CMD ["cat", "/a", "/b"]
FROM busybox AS unused
RUN echo unused
EOF
run "$KILN" build --addr "$ADDR" --progress=json -t "kiln-df-stages:$run_id" --target c "$tmp/stages"
expect_eq "--target c: exit 0" 0 "$rc"
images+=("kiln-df-stages:$run_id")
steps=$(printf '%s\n' "$out" | jq -r 'select(.type=="job.started") | .steps' 2>/dev/null | head -1)
expect_eq "--target c: Step M counts stages a, b and c (8)" 8 "$steps"
expect_eq "--target c: the image runs" "a-$run_id
b-$run_id" "$("$DOCKER" run --rm "kiln-df-stages:$run_id" 2>&1)"
# Re-prime right before: on a shared engine other builds may have pushed
# stage a's cache out since the first build.
"$KILN" build --addr "$ADDR" -q --target c "$tmp/stages" >/dev/null 2>&1
run "$KILN" build --addr "$ADDR" --progress=plain -t "kiln-df-stages:$run_id" --target c --no-cache-filter b "$tmp/stages"
expect_eq "--no-cache-filter b: exit 0" 0 "$rc"
b_done=$(printf '%s\n' "$out" | grep -E "^#[0-9]+ \[b 2/2\] RUN" -A3 | grep -c CACHED)
case $(printf '%s\n' "$out" | grep -E "\[a 2/2\]" -A1 | grep -c CACHED) in
0) not_ok "--no-cache-filter b: stage a still CACHED" "$out" ;;
*) ok "--no-cache-filter b: stage a still CACHED" ;;
esac
expect_eq "--no-cache-filter b: stage b re-ran" 0 "$b_done"

tap_done
