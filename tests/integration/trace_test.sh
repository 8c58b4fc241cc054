#!/usr/bin/env bash
# tests/integration/trace_test.sh: the build timeline (core/trace.c,
# docs/trace.md) of real builds on the local engine, opened in headless
# Chromium. TAP.
#
#   1. a 5-stage build: four independent stages that each `RUN sleep 2`,
#      and a last stage that COPYs from all four, with --progress=json;
#      `kiln history trace -o FILE` draws its record into one HTML file
#      (tests/tools/trace_render, the same writer fed the event stream,
#      is checked to draw the same bars);
#   2. Chromium opens the page in a network namespace of its own (no
#      network at all) and it renders: one .bar per vertex that started;
#      Chromium's net log shows no request from the page (a control page
#      with a remote image and stylesheet shows that such requests would
#      be seen);
#   3. through the DOM (a copy of the page with a measuring script): every
#      bar's start, end, cache state and error match the event stream; the
#      four RUN bars sit in four lanes and their rendered rectangles
#      overlap in time (x) and not in space (y); hovering shows the name
#      and duration (<title>);
#   4. a no-change rebuild: every step's bar is cached and marked CACHED;
#   5. a failing RUN: its bar is red in Chromium, with the engine's error;
#   6. --format svg is a well-formed SVG document with the same bars.
#
# Needs: the engine (eval "$(scripts/engine.sh env)"), build/tests/
# trace_render (make tests), chromium, xmllint (libxml2-utils), jq,
# unshare. TRACE_SCREENSHOT=FILE also saves a picture of the page
# (docs/history-trace.png is made so).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

need_engine
need_tools chromium xmllint jq unshare base64 date
RENDER=${TRACE_RENDER:-$BUILD/tests/trace_render}
# The build records live in a state dir of this test's own.
[ -x "$RENDER" ] || { echo "Bail out! $RENDER is missing (make tests)"; exit 1; }
ADDR=${BUILDKIT_HOST:-docker-unix://${DOCKER_HOST#unix://}}

run_id=$$-$RANDOM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-trace.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export KILN_STATE_DIR=$tmp/state
# trace OUT [ARGS...]: `kiln history trace` of the newest record
trace() {
	local out=$1
	shift
	"$KILN" history trace "$@" -o "$out"
}

# chrome ARGS...: headless Chromium, without any network when the kernel
# lets us have a network namespace (else with a proxy that is not there
# and a resolver that finds nothing), its own profile, no background
# fetches of its own.
offline=(unshare -n)
"${offline[@]}" true 2>/dev/null ||
	offline=(env) chrome_net=(--proxy-server=127.0.0.1:9 '--host-resolver-rules=MAP * ~NOTFOUND')
chrome() {
	timeout 120 "${offline[@]}" chromium --headless --no-sandbox --disable-gpu \
		--user-data-dir="$tmp/profile" --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --disable-default-apps \
		--hide-scrollbars ${chrome_net[@]+"${chrome_net[@]}"} "$@" 2>>"$tmp/chrome.log"
}
# measure PAGE: the page with a script that reads every .bar through the
# DOM (data-*, class, <title>, the rectangle's client box and computed
# fill) and writes it as base64 JSON into <pre id="kiln-measure">;
# prints that JSON. The page's CSP (no script) is left out of the copy.
measure() {
	sed '/Content-Security-Policy/d; s|</body>||' "$1" >"$tmp/measure.html"
	cat >>"$tmp/measure.html" <<'EOF'
<script>
(function () {
	var out = [];
	document.querySelectorAll('.bar').forEach(function (g) {
		var rect = g.querySelector('rect'), box = rect.getBoundingClientRect();
		var title = g.querySelector('title');
		out.push({ digest: g.dataset.digest, name: g.dataset.name,
			start: g.dataset.startMs, end: g.dataset.endMs, cached: g.dataset.cached,
			lane: Number(g.dataset.lane), error: g.dataset.error,
			cls: g.getAttribute('class'), title: title ? title.textContent : null,
			text: g.querySelector('text').textContent,
			left: box.left, right: box.right, top: box.top, bottom: box.bottom,
			fill: getComputedStyle(rect).fill });
	});
	var pre = document.createElement('pre');
	pre.id = 'kiln-measure';
	pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(out))));
	document.body.appendChild(pre);
})();
</script>
</body></html>
EOF
	chrome --dump-dom "file://$tmp/measure.html" >"$tmp/measure.dom" || return 1
	sed -n 's|.*<pre id="kiln-measure">\([A-Za-z0-9+/=]*\)</pre>.*|\1|p' "$tmp/measure.dom" | base64 -d
}
# ns TIME: an RFC 3339 time of the stream in ns since the epoch
ns() { date -u -d "$1" +%s%N; }
# vertices EVENTS: the last state of each vertex of the stream (a later
# vertex event supersedes earlier ones, docs/events.md), one JSON a line,
# but with the earliest start seen: a build record keeps that one
# (docs/history.md), and `kiln history trace` draws the record. Times are
# compared with their fractions padded to nine digits.
vertices() {
	jq -Rnc 'def key: if test("\\.[0-9]+Z$") then sub("\\.(?<f>[0-9]+)Z$"; ".\(.f + "000000000" | .[0:9])Z")
			else sub("Z$"; ".000000000Z") end;
		[inputs | fromjson? | select(.type? == "vertex")] | group_by(.digest) |
		map((map(.started // empty) | min_by(key)) as $s | last | .started = ($s // .started)) | .[]' "$1"
}
# expected EVENTS: per vertex that started, from the stream alone:
# "digest start_ms end_ms cached" (ms after the build's start, three
# decimals, cut; negative for a vertex shared with an earlier build:
# docs/trace.md), sorted by digest
expected() {
	local t0 tf d s c cached start end x
	t0=$(ns "$(jq -Rr 'fromjson? | select(.type? == "job.started") | .time' "$1" | head -n 1)")
	tf=$(ns "$(jq -Rr 'fromjson? | select(.type? == "job.finished") | .time' "$1" | tail -n 1)")
	# the axis: from the job's start (or the first vertex start when all
	# began before it) to the job's end or a later vertex time
	local first=-1 after=0
	while read -r s; do
		s=$(ns "$s")
		{ [ "$first" = -1 ] || [ "$s" -lt "$first" ]; } && first=$s
		[ "$s" -ge "$t0" ] && after=1
	done < <(vertices "$1" | jq -r 'select(.started != null) | .started')
	[ $after = 0 ] && [ "$first" != -1 ] && t0=$first
	while read -r x; do
		x=$(ns "$x")
		[ "$x" -gt "$tf" ] && tf=$x
	done < <(vertices "$1" | jq -r 'select(.started != null) | .started, (.completed // empty)')
	vertices "$1" | jq -r 'select(.started != null) | [.digest, .started, .completed // "-", .cached] | @tsv' |
	LC_ALL=C sort | while IFS=$'\t' read -r d s c cached; do
		start=$(($(ns "$s") - t0))
		if [ "$c" = - ]; then end=$((tf - t0)); else end=$(($(ns "$c") - t0)); fi
		[ "$end" -lt "$start" ] && end=$start
		printf '%s %s %s %s\n' "$d" "$(ms "$start")" "$(ms "$end")" "$cached"
	done
}
# ms NS: NS as milliseconds with three decimals, cut toward zero
ms() {
	local v=$1 sign=
	[ "$v" -lt 0 ] && sign=- v=$((-v))
	printf '%s%d.%03d' "$sign" $((v / 1000000)) $((v / 1000 % 1000))
}

# --- 1. a 5-stage parallel build --------------------------------------------
mkdir -p "$tmp/ctx"
{
	for s in a b c d; do
		printf 'FROM busybox AS %s\nRUN sleep 2 && echo %s-%s > /%s\n' "$s" "$run_id" "$s" "$s"
	done
	printf 'FROM busybox\n'
	for s in a b c d; do printf 'COPY --from=%s /%s /%s\n' "$s" "$s" "$s"; done
} >"$tmp/ctx/Dockerfile"
timeout 300 "$KILN" build --addr "$ADDR" --progress=json "$tmp/ctx" 2>"$tmp/events.jsonl" >/dev/null
rc=$?
err=$(grep -v '^{' "$tmp/events.jsonl")
expect_eq "5-stage build succeeds" 0 "$rc"
id1=$("$KILN" history ls --format json | jq -r '.[0].id')
check "kiln history trace -o FILE writes the build's timeline" trace "$tmp/trace.html" "$id1"
expect_match "the page names the record" "$id1" "$(cat "$tmp/trace.html" 2>&1)"
"$RENDER" -o "$tmp/trace-stream.html" "$tmp/events.jsonl"
bars() { grep -o '<g class="bar[^>]*>' "$1" | sed 's/ data-[a-z]*-ms="[^"]*"//g'; }
expect_eq "the record and the event stream give the same bars" \
	"$(bars "$tmp/trace-stream.html")" "$(bars "$tmp/trace.html")"

# --- 2. Chromium, without network --------------------------------------------
n_started=$(vertices "$tmp/events.jsonl" | jq -r 'select(.started != null) | .digest' | wc -l)
chrome --dump-dom --log-net-log="$tmp/netlog.json" "file://$tmp/trace.html" >"$tmp/trace.dom"
n_bars=$(xmllint --html --xpath 'count(//g[contains(concat(" ", @class, " "), " bar ")])' "$tmp/trace.dom" 2>/dev/null)
expect_eq "offline Chromium renders one bar per vertex that started ($n_started)" "$n_started" "$n_bars"
# requests a page makes carry its file:// origin in the net log (the
# browser's own carry none); a control page shows they are seen
page_requests() {
	jq -r '.events[] | select(.params.url? != null and
		(.params.network_isolation_key? // "" | startswith("file://"))) | .params.url' "$1" | sort -u
}
expect_eq "the page makes no request" "" "$(page_requests "$tmp/netlog.json")"
cat >"$tmp/control.html" <<'EOF'
<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="https://fonts.kiln-trace.invalid/x.css"></head>
<body><img src="http://kiln-trace.invalid/x.png"></body></html>
EOF
chrome --dump-dom --log-net-log="$tmp/netlog-control.json" "file://$tmp/control.html" >/dev/null
expect_eq "a page that fetches is seen in the net log (control)" \
	"http://kiln-trace.invalid/x.png https://fonts.kiln-trace.invalid/x.css" \
	"$(page_requests "$tmp/netlog-control.json" | tr '\n' ' ' | sed 's/ $//')"

# --- 3. the DOM against the event stream -------------------------------------
m=$(measure "$tmp/trace.html")
expect_eq "bars measured in Chromium" "$n_started" "$(printf '%s' "$m" | jq length 2>/dev/null)"
want=$(expected "$tmp/events.jsonl")
have=$(printf '%s' "$m" | jq -r '.[] | "\(.digest) \(.start) \(.end) \(.cached)"' | LC_ALL=C sort)
expect_eq "every bar's start, end and cache state match the events" "$want" "$have"
want=$(vertices "$tmp/events.jsonl" | jq -r 'select(.started != null) | "\(.digest) \(.name)"' | LC_ALL=C sort)
have=$(printf '%s' "$m" | jq -r '.[] | "\(.digest) \(.name)"' | LC_ALL=C sort)
expect_eq "every bar's name matches the events" "$want" "$have"
runs=$(printf '%s' "$m" | jq -c '[.[] | select(.name | test("^\\[[a-d] 2/2\\] RUN sleep 2"))]')
expect_eq "four RUN bars" 4 "$(printf '%s' "$runs" | jq length)"
expect_eq "the RUN bars sit in four lanes" 4 "$(printf '%s' "$runs" | jq '[.[].lane] | unique | length')"
# every pair: overlapping in x (time) in the browser's layout, apart in y
pairs=$(printf '%s' "$runs" | jq -r '[combinations(2) | select(.[0].digest < .[1].digest)
	| select(.[0].left < .[1].right and .[1].left < .[0].right)
	| select(.[0].bottom <= .[1].top or .[1].bottom <= .[0].top)] | length')
expect_eq "the RUN bars overlap in time and not in space (6 pairs)" 6 "$pairs"
# the same from the data: the four intervals overlap pairwise
over=$(printf '%s' "$runs" | jq -r '[combinations(2) | select(.[0].digest < .[1].digest)
	| select((.[0].start | tonumber) < (.[1].end | tonumber) and (.[1].start | tonumber) < (.[0].end | tonumber))] | length')
expect_eq "the RUN intervals overlap pairwise" 6 "$over"
bad=$(printf '%s' "$runs" | jq -r '.[] | . as $b | select(($b.title | startswith($b.name) | not) or ($b.title | test("\n[0-9]+\\.[0-9]{2}s, ran") | not)) | $b.title')
expect_eq "hovering a RUN bar shows its name, duration and state" "" "$bad"
expect_eq "the RUN bars are drawn in the 'ran' colour" "rgb(59, 125, 216)" \
	"$(printf '%s' "$runs" | jq -r '[.[].fill] | unique | join(",")')"
[ -n "${TRACE_SCREENSHOT:-}" ] &&
	chrome --window-size=1010,780 --screenshot="$TRACE_SCREENSHOT" "file://$tmp/trace.html" >/dev/null

# --- 4. a no-change rebuild: all cached -----------------------------------------
timeout 300 "$KILN" build --addr "$ADDR" --progress=json "$tmp/ctx" 2>"$tmp/events2.jsonl" >/dev/null
expect_eq "the rebuild succeeds" 0 "$?"
trace "$tmp/trace2.html"
m=$(measure "$tmp/trace2.html")
steps=$(printf '%s' "$m" | jq -c '[.[] | select(.name | test("^\\[[^]]* [0-9]+/[0-9]+\\] (RUN|COPY)"))]')
expect_eq "the rebuild has the 8 RUN and COPY bars" 8 "$(printf '%s' "$steps" | jq length)"
expect_eq "each is cached, classed so and marked CACHED" "true cached CACHED" \
	"$(printf '%s' "$steps" | jq -r '[.[] | "\(.cached) \(.cls | split(" ") | .[1]) \(.text | split(" ") | .[0])"] | unique | join(",")')"
want=$(expected "$tmp/events2.jsonl")
have=$(printf '%s' "$m" | jq -r '.[] | "\(.digest) \(.start) \(.end) \(.cached)"' | LC_ALL=C sort)
expect_eq "the rebuild's bars match its events" "$want" "$have"

# --- 5. a failing RUN: red ---------------------------------------------------
mkdir -p "$tmp/fail"
printf 'FROM busybox\nRUN echo %s; exit 3\n' "$run_id" >"$tmp/fail/Dockerfile"
timeout 300 "$KILN" build --addr "$ADDR" --progress=json "$tmp/fail" 2>"$tmp/events3.jsonl" >/dev/null
expect_eq "the failing build exits 1" 1 "$?"
trace "$tmp/trace3.html"
m=$(measure "$tmp/trace3.html")
failed=$(printf '%s' "$m" | jq -c '[.[] | select(.error != "")]')
want=$(vertices "$tmp/events3.jsonl" | jq -r 'select(.started != null and .error != null) | "\(.digest) \(.error)"')
expect_eq "one failed bar, with the engine's error" "$want" \
	"$(printf '%s' "$failed" | jq -r '.[] | "\(.digest) \(.error)"')"
expect_eq "it is classed failed and drawn red" "bar failed rgb(209, 36, 47)" \
	"$(printf '%s' "$failed" | jq -r '.[] | "\(.cls) \(.fill)"')"
expect_match "the page says the build failed" 'failed \(status 1\)' "$(cat "$tmp/trace3.html")"

# --- 6. --format svg -----------------------------------------------------------
trace "$tmp/trace.svg" --format svg "$id1"
check "the SVG is well-formed XML" xmllint --noout "$tmp/trace.svg"
expect_eq "the SVG has the same bars" "$n_started" \
	"$(xmllint --xpath 'count(//*[local-name() = "g"][contains(concat(" ", @class, " "), " bar ")])' "$tmp/trace.svg")"
expect_eq "its root is an SVG element" "svg http://www.w3.org/2000/svg" \
	"$(xmllint --xpath 'concat(local-name(/*), " ", namespace-uri(/*))' "$tmp/trace.svg")"

[ -n "$err" ] && [ "$_tap_failed" -gt 0 ] && printf '%s\n' "$err" | tail -n 20 | sed 's/^/#   /'
tap_done
