#!/usr/bin/env bash
# tests/integration/tty_live_test.sh: the tty view of real builds on the
# local engine (BuildKit inside dockerd), in tmux; TAP output.
#   1. parallel stages are on separate lines while they run (the pane is
#      captured mid-build), the build ends with its summary;
#   2. the full log of a step is on disk, every line (5000, slow enough
#      for BuildKit's own 200 KiB/s log limit), and a failing step's
#      block names that file;
#   3. Ctrl-C restores the terminal (cursor visible, no escape sequences
#      left on screen, the cursor shown again after the last hide in the
#      bytes written) and kiln exits 130;
#   4. a second build of the same context shows an ETA from the first.
# Build records go to a temporary KILN_STATE_DIR.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

if [ -z "${BUILDKIT_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
if [ -z "${BUILDKIT_HOST:-}" ] || ! /usr/bin/docker version >/dev/null 2>&1; then
	echo "Bail out! no engine (run: eval \"\$(scripts/engine.sh up)\")"
	exit 1
fi
command -v tmux >/dev/null || { echo "Bail out! tmux is needed"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-tty-live.XXXXXX")
sock="kiln-tty-live-$$-0"
n=0
tm() { tmux -L "$sock" -f "$tmp/tmux.conf" "$@"; }
cleanup() {
	tm kill-server >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
printf 'set -g status off\nset -g history-limit 50000\n' >"$tmp/tmux.conf"
export KILN_STATE_DIR=$tmp/state

# pane W H COMMAND: a fresh tmux server running COMMAND in bash, its raw
# output also copied to $tmp/raw (pipe-pane), then "[exit N]".
pane() {
	tm kill-server >/dev/null 2>&1
	n=$((n + 1))
	sock="kiln-tty-live-$$-$n"
	rm -f "$tmp/raw" "$tmp/go"
	cat >"$tmp/pane.sh" <<EOF
export LC_ALL=C.UTF-8 KILN_STATE_DIR='$KILN_STATE_DIR' BUILDKIT_HOST='$BUILDKIT_HOST'
unset NO_COLOR KILN_TTY_CLOCK KILN_TTY_LOG_LINES
while [ ! -e '$tmp/go' ]; do sleep 0.05; done
$3
echo "[exit \$?]"
exec sleep 600
EOF
	tm new-session -d -x "$1" -y "$2" "bash --norc --noprofile $tmp/pane.sh"
	tm pipe-pane -o "cat >> '$tmp/raw'"
	touch "$tmp/go"
}
screen() { tm capture-pane -p; }
# wait_for REGEX [SECONDS]: until the screen matches.
wait_for() {
	local i
	for i in $(seq 1 $((${2:-120} * 5))); do
		screen | grep -qE -- "$1" && return 0
		sleep 0.2
	done
	return 1
}
exit_status() { screen | sed -n 's/.*\[exit \([0-9]*\)\].*/\1/p' | tail -n 1; }

# Three stages that run at once, then one that needs all of them.
mkdir -p "$tmp/par"
cat >"$tmp/par/Dockerfile" <<'EOF'
FROM busybox AS a
RUN for i in $(seq 1 12); do echo "a: step $i"; sleep 0.5; done
FROM busybox AS b
RUN for i in $(seq 1 12); do echo "b: step $i"; sleep 0.5; done
FROM busybox AS c
RUN i=0; while [ $i -lt 5000 ]; do echo "c: line $i of the full log"; i=$((i + 1)); [ $((i % 500)) -ne 0 ] || sleep 0.3; done
FROM busybox
COPY --from=a /bin/busybox /a
COPY --from=b /bin/busybox /b
COPY --from=c /bin/busybox /c
EOF

# ---- 1. parallel stages side by side ------------------------------------------
pane 120 40 "$KILN build --no-cache --progress=tty $tmp/par"
if wait_for '^  . ⚙️  RUN for i in .*a: step' 120 && wait_for 'a: step 3' 30; then
	screen >"$tmp/mid"
	running=$(grep -cE '^  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ⚙️  RUN for i in \$\(seq 1 12\)' "$tmp/mid")
	expect_eq "mid-build: two RUN steps running, each on its own line" 2 "$running"
	expect_match "mid-build: the bar counts steps" 'Step [0-9]+/[0-9]+ ' "$(cat "$tmp/mid")"
	expect_match "mid-build: log lines under the steps" '│ a: step [0-9]+' "$(cat "$tmp/mid")"
else
	not_ok "mid-build: two RUN steps running" "$(screen)"
fi
if wait_for '\[exit [0-9]+\]' 180; then
	expect_eq "parallel build: exit 0" 0 "$(exit_status)"
	expect_match "parallel build: summary" '🎉 Built in [0-9.m]+s' "$(screen)"
else
	not_ok "parallel build ends" "$(screen)"
fi

# ---- 2. full logs on disk ------------------------------------------------------------
log=$(grep -l "c: line 0 of the full log" "$KILN_STATE_DIR"/logs/*/*/*.log 2>/dev/null | head -n 1)
if [ -n "$log" ]; then
	expect_eq "full log: every one of 5000 lines kept" 5000 "$(grep -c '^c: line [0-9]* of the full log$' "$log")"
	expect_eq "full log: the last line" "c: line 4999 of the full log" "$(tail -n 1 "$log")"
	expect_match "full log: the index names the step" \
		"^$(basename "$log" .log)	\\[c 2/2\\] RUN i=0" "$(cat "$(dirname "$log")/index")"
else
	not_ok "full log: a file with the step's output under \$KILN_STATE_DIR/logs" \
		"$(find "$KILN_STATE_DIR" | head -n 20)"
fi

mkdir -p "$tmp/fail"
printf 'FROM busybox\nRUN for i in $(seq 1 40); do echo "checking $i"; done; sleep 0.3; echo oops >&2; exit 7\n' \
	>"$tmp/fail/Dockerfile"
pane 120 40 "$KILN build --progress=tty $tmp/fail"
if wait_for '\[exit [0-9]+\]' 120; then
	tm capture-pane -p -J -S - -E - >"$tmp/failed"
	expect_eq "failing RUN: exit 1" 1 "$(exit_status)"
	expect_match "failing RUN: its block with the exit code" '┌─ ❌ RUN for i in .* exit code 7' "$(cat "$tmp/failed")"
	expect_eq "failing RUN: the block's last 20 lines end with the error" \
		"$(printf '│ checking %s\n' $(seq 22 40); echo '│ oops')" \
		"$(grep '^│ ' "$tmp/failed")"
	file=$(sed -n 's/^└─ full log: \(.*\.log\)$/\1/p' "$tmp/failed" | tr -d '\n')
	if [ -n "$file" ] && [ -f "$file" ] && [ "$(grep -c '^checking' "$file")" = 40 ]; then
		ok "failing RUN: the block names the full log, all 40 lines"
	else
		not_ok "failing RUN: the block names the full log" "file: '$file'" "$(cat "$tmp/failed")"
	fi
else
	not_ok "failing RUN ends" "$(screen)"
fi

# ---- 3. Ctrl-C during a live build ------------------------------------------------------------
pane 100 30 "$KILN build --no-cache --progress=tty $tmp/par"
if wait_for 'a: step 2' 120; then
	expect_eq "while live: cursor hidden" 0 "$(tm display -p '#{cursor_flag}')"
	tm send-keys C-c
	if wait_for '\[exit [0-9]+\]' 60; then
		expect_eq "Ctrl-C: kiln exits 130" 130 "$(exit_status)"
		expect_eq "Ctrl-C: cursor visible" 1 "$(tm display -p '#{cursor_flag}')"
		expect_match "Ctrl-C: the build is reported cancelled" '⛔ Build cancelled after' "$(screen)"
		if screen | grep -qE '\^\[|\[\?25|\[[0-9]+[AJK]'; then
			not_ok "Ctrl-C: no stray escape sequences on screen" "$(screen)"
		else
			ok "Ctrl-C: no stray escape sequences on screen"
		fi
		# in the bytes written: no hide without a show after it
		last=$(grep -aoE $'\x1b\\[\\?25[hl]' "$tmp/raw" | tail -n 1 | cat -v)
		expect_eq "Ctrl-C: the last cursor sequence written shows it" '^[[?25h' "$last"
	else
		not_ok "Ctrl-C: kiln ends" "$(screen)"
	fi
else
	not_ok "Ctrl-C: build started" "$(screen)"
fi

# ---- 4. an ETA from the previous build of the same target -----------------------------------------
mkdir -p "$tmp/eta"
printf 'FROM busybox\nRUN for i in $(seq 1 8); do echo "tick $i"; sleep 0.5; done\n' >"$tmp/eta/Dockerfile"
pane 100 30 "$KILN build --no-cache --progress=quiet $tmp/eta"
wait_for '\[exit [0-9]+\]' 120 >/dev/null
pane 100 30 "$KILN build --no-cache --progress=tty --verbose $tmp/eta"
if wait_for 'tick 2' 120; then
	expect_match "second build: job.started carries the first one's duration" \
		'job default@native started: .*, last build [0-9.m]+s' "$(tm capture-pane -p -J -S - -E -)"
	expect_match "second build: the bar shows an ETA" 'Step [0-9]+/[0-9]+ .*ETA [0-9]' "$(screen)"
	wait_for '\[exit [0-9]+\]' 120 >/dev/null
else
	not_ok "second build: running" "$(screen)"
fi
expect_match "history: the build's duration is recorded" '"duration_ns": [0-9]+' \
	"$(cat "$KILN_STATE_DIR/history.json" 2>/dev/null)"

tap_done
