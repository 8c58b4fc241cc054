#!/usr/bin/env bash
# tests/tty/run.sh: screen tests of the tty renderer. TAP output.
#
# Recorded event streams (tests/tty/streams/*.jsonl; README.md says how
# each was made) are replayed with `kiln replay --progress=tty` inside a
# private tmux server at fixed sizes (80x24, 160x50), with
# KILN_TTY_CLOCK=event so that every time on screen comes from the
# stream. `--pause-at N` holds the replay after event N; the screen
# (`tmux capture-pane -p`) must then equal
# tests/tty/screens/STREAM.N.WxH.txt, and at the end STREAM.end.WxH.txt.
# After each full replay the scrollback must hold every step that
# started or finished exactly once. Then: NO_COLOR, --no-emoji, TERM=dumb
# and a C locale on a pseudo-terminal (script(1)), --verbose, log lines
# under a step (KILN_TTY_LOG_LINES), a resize mid-replay, Ctrl-C, and the
# redraw rate of a paced replay.
#
#   tests/tty/run.sh            KILN (default build/kiln) is the binary
#   tests/tty/run.sh --update   rewrite the golden screens (review the diff)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

update=0
case "${1:-}" in
--update) update=1 ;;
"") ;;
*) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

for tool in tmux jq script; do
	if ! command -v "$tool" >/dev/null; then
		echo "Bail out! $tool is needed (scripts/deps.sh installs it)"
		exit 1
	fi
done
if [ ! -x "${KILN%% *}" ] && ! command -v "$KILN" >/dev/null; then
	echo "Bail out! $KILN not found: build it first (make all)"
	exit 1
fi

S=tests/tty/streams
G=tests/tty/screens
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-tty-test.XXXXXX")
# One tmux server per pane (a server that is being killed may still
# answer a new client on its socket).
sock="kiln-tty-test-$$-0"
tm() { tmux -L "$sock" -f "$tmp/tmux.conf" "$@"; }
cleanup() {
	tm kill-server >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
cat >"$tmp/tmux.conf" <<'EOF'
set -g status off
set -g history-limit 50000
set -g default-terminal "screen-256color"
EOF

# The environment of every replay: UTF-8, time from the events, no
# settings from outside.
ENVSET="export LC_ALL=C.UTF-8 KILN_TTY_CLOCK=event; unset NO_COLOR KILN_TTY_LOG_LINES COLUMNS LINES"

# pane W H COMMAND: a new tmux server with one W×H pane running COMMAND
# (bash: it carries on after a child that exits 130 on Ctrl-C), then
# "[exit N]" and a long sleep.
n_pane=0
pane() {
	local w=$1 h=$2 cmd=$3
	tm kill-server >/dev/null 2>&1
	n_pane=$((n_pane + 1))
	sock="kiln-tty-test-$$-$n_pane"
	printf '%s\n%s\necho "[exit $?]"\nexec sleep 600\n' "$ENVSET" "$cmd" >"$tmp/pane$n_pane.sh"
	tm new-session -d -x "$w" -y "$h" "bash --norc --noprofile $tmp/pane$n_pane.sh"
}

screen() { tm capture-pane -p; }

# The pid of the command the pane's shell runs (kiln, or its wrapper).
child_pid() {
	local sh
	sh=$(tm display -p '#{pane_pid}' 2>/dev/null) || return 1
	ps -o pid= --ppid "$sh" 2>/dev/null | head -n 1 | tr -d ' '
}

# wait_pause: until kiln holds at --pause-at (it sleeps in rt_sigsuspend,
# syscall 130 on x86-64) and the screen has caught up; without /proc's
# word on it (under valgrind), until the screen has been still for 3 s.
wait_pause() {
	local i prev="" cur still=0 need=15 pid
	for i in $(seq 1 600); do
		sleep 0.2
		cur=$(screen)
		pid=$(child_pid)
		if [ -n "$pid" ] && [ "$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)" = 130 ]; then
			need=3
		fi
		[ -n "$(printf '%s' "$cur" | tr -d ' \n')" ] || continue
		case $cur in *"[exit "*) return 1 ;; esac
		if [ "$cur" = "$prev" ]; then still=$((still + 1)); else still=0; fi
		[ $still -ge $need ] && return 0
		prev=$cur
	done
	return 1
}

# wait_exit: until the pane's command has ended; prints its status.
wait_exit() {
	local i cur
	for i in $(seq 1 600); do
		cur=$(screen)
		case $cur in
		*"[exit "*)
			sleep 0.2
			printf '%s\n' "$cur" | sed -n 's/.*\[exit \([0-9]*\)\].*/\1/p' | tail -n 1
			return 0
			;;
		esac
		sleep 0.2
	done
	return 1
}

# golden NAME FILE: FILE must equal $G/NAME.txt (or becomes it, --update).
golden() {
	local name=$1 file=$2 want="$G/$1.txt"
	if [ $update = 1 ]; then
		mkdir -p "$G"
		cp "$file" "$want"
	fi
	if [ ! -e "$want" ]; then
		not_ok "screen $name" "missing $want (run.sh --update writes it)"
	elif cmp -s "$want" "$file"; then
		ok "screen $name"
	else
		not_ok "screen $name" "$(diff -u "$want" "$file" | head -n 60)"
	fi
}

# Lines of finished steps in a screen or scrollback.
step_lines() { grep -E '^(✅|♻️|❌|⛔) ' "$1" | grep -vE '^(❌|⛔) (Build |Interrupted )'; }

# check_scrollback STREAM FILE [WIDE]: every vertex that started or
# finished in the stream has exactly one line; with one job on a wide
# pane (WIDE=1: names under 120 characters are not cut), each "[stage
# N/M]" tag appears on exactly one of them.
check_scrollback() {
	local stream=$1 file=$2 wide=${3:-0} want got dups tag bad=""
	want=$(jq -r 'select(.type=="vertex" and (.started or .completed)) | .job.id + " " + .digest' \
		"$S/$stream.jsonl" | sort -u | wc -l)
	got=$(step_lines "$file" | wc -l)
	dups=$(step_lines "$file" | sort | uniq -d)
	if [ "$want" != "$got" ] || [ -n "$dups" ]; then
		not_ok "$stream: scrollback has each of $want steps once" "got $got step lines" \
			"duplicates: $dups" "$(cat "$file")"
		return
	fi
	if [ "$wide" = 1 ] &&
		[ "$(jq -r 'select(.type=="job.started") | .job.id' "$S/$stream.jsonl" | sort -u | wc -l)" = 1 ]; then
		while IFS= read -r tag; do
			[ "$(step_lines "$file" | grep -cF -- "[$tag]")" = 1 ] || bad="$bad [$tag]"
		done < <(jq -r 'select(.type=="vertex" and (.started or .completed) and
				(.name // "" | length) < 120) | .name // ""' \
			"$S/$stream.jsonl" | sed -n 's/^\[\([^]]*\)\].*/\1/p' | grep -v '^internal$' | sort -u)
	fi
	if [ -n "$bad" ]; then
		not_ok "$stream: scrollback has each of $want steps once" "tags not once:$bad" "$(cat "$file")"
	else
		ok "$stream: scrollback has each of $want steps once"
	fi
}

# ---- 1. golden screens ---------------------------------------------------------
# STREAM MOMENT...: the events to hold after, then "end".
cases=(
	"bk-parallel 41 60 end"   # BuildKit, 3 stages at once, a layer download
	"bk-cached 30 end"        # the same build again: all cached, ETA from history
	"bk-failing 46 end"       # a failing RUN, the parallel step cancelled
	"bk-platforms 78 end"     # two platforms, one job each
	"podman-pull 9 end"       # Podman's /build stream through the docker backend
	"docker-pull 11 end"      # Docker's classic builder, with a pull
)
for size in 80x24 160x50; do
	w=${size%x*} h=${size#*x}
	for c in "${cases[@]}"; do
		set -- $c
		stream=$1
		shift
		for at in "$@"; do
			if [ "$at" = end ]; then
				pane "$w" "$h" "$KILN replay --progress=tty $S/$stream.jsonl"
				if ! rc=$(wait_exit); then
					not_ok "screen $stream.end.$size" "replay did not end" "$(screen)"
					continue
				fi
				screen >"$tmp/screen"
				golden "$stream.end.$size" "$tmp/screen"
				expect_eq "$stream.end.$size: replay exits 0" 0 "$rc"
				tm capture-pane -p -S - -E - >"$tmp/scrollback"
				check_scrollback "$stream" "$tmp/scrollback" $((w >= 160))
			else
				pane "$w" "$h" "$KILN replay --progress=tty --pause-at $at $S/$stream.jsonl"
				if ! wait_pause; then
					not_ok "screen $stream.$at.$size" "replay did not hold at event $at" "$(screen)"
					continue
				fi
				screen >"$tmp/screen"
				golden "$stream.$at.$size" "$tmp/screen"
			fi
		done
	done
done

# ---- 2. plain fallbacks, on a pseudo-terminal --------------------------------------
# raw FILE ENV... -- ARGS...: the bytes kiln writes to a 100x30 terminal.
raw() {
	local out=$1
	shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	env -u NO_COLOR LC_ALL=C.UTF-8 KILN_TTY_CLOCK=event "${envs[@]}" \
		script -q -e -c "stty cols 100 rows 30; $KILN replay $*" /dev/null </dev/null >"$out" 2>&1
}
ESC=$'\x1b'
raw "$tmp/color" -- --progress=tty "$S/bk-failing.jsonl"
raw "$tmp/nocolor" NO_COLOR=1 -- --progress=tty "$S/bk-failing.jsonl"
expect_match "colour: SGR sequences without NO_COLOR (control)" "$ESC\\[[0-9;]*m" "$(cat "$tmp/color")"
if grep -q "$ESC\\[[0-9;]*m" "$tmp/nocolor"; then
	not_ok "NO_COLOR=1: no colour sequences" "$(grep -o "$ESC\\[[0-9;]*m" "$tmp/nocolor" | sort -u | cat -v)"
else
	ok "NO_COLOR=1: no colour sequences"
fi
expect_match "NO_COLOR=1: still emoji and a live view" "❌.*$ESC\\[[0-9]+A|$ESC\\[[0-9]+A.*❌" \
	"$(tr '\r\n' '  ' <"$tmp/nocolor")"

raw "$tmp/noemoji" -- --progress=tty --no-emoji "$S/bk-parallel.jsonl"
if LC_ALL=C grep -qP '[\x80-\xff]' "$tmp/noemoji"; then
	not_ok "--no-emoji: output is pure ASCII" "$(LC_ALL=C grep -naP '[\x80-\xff]' "$tmp/noemoji" | head -n 5)"
else
	ok "--no-emoji: output is pure ASCII"
fi
expect_match "--no-emoji: ASCII marks for done steps and the bar" '\+ RUN .*\[#+\.*\][^ ]* Step' \
	"$(tr '\r\n' '  ' <"$tmp/noemoji")"
if LC_ALL=C grep -qP '[\x80-\xff]' "$tmp/color"; then ok "emoji without --no-emoji (control)"; else not_ok "emoji without --no-emoji (control)"; fi

raw "$tmp/clocale" LC_ALL=C -- --progress=tty "$S/bk-parallel.jsonl"
if LC_ALL=C grep -qP '[\x80-\xff]' "$tmp/clocale"; then
	not_ok "C locale: pure ASCII"
else
	ok "C locale: pure ASCII"
fi

raw "$tmp/dumb" TERM=dumb -- --progress=tty "$S/bk-failing.jsonl"
if grep -qE "$ESC\\[" "$tmp/dumb" || LC_ALL=C grep -qP '[\x80-\xff]' "$tmp/dumb"; then
	not_ok "TERM=dumb: no escape sequences, ASCII" "$(cat -v "$tmp/dumb" | head -n 20)"
else
	ok "TERM=dumb: no escape sequences, ASCII"
fi
expect_match "TERM=dumb: the same lines (failed step, its block, the end)" \
	'x RUN for i in .*\+- x RUN for i in.*\| configure: error: libfoo not found.*x Build failed after 1\.5s' \
	"$(tr '\r\n' '  ' <"$tmp/dumb")"

# ---- 3. --verbose: every log line and raw event ----------------------------------------
raw "$tmp/verbose" -- --progress=tty --verbose "$S/bk-parallel.jsonl"
want=$(jq -r 'select(.type=="vertex.log") | .data' "$S/bk-parallel.jsonl" | grep -c .)
got=$(grep -cE '#[0-9]+ │ ' "$tmp/verbose")
expect_eq "--verbose: every log line of every step" "$want" "$got"
want=$(jq -r 'select(.type=="vertex") | .digest' "$S/bk-parallel.jsonl" | sort -u | wc -l)
got=$(grep -oE 'vertex sha256:[0-9a-f]{64}' "$tmp/verbose" | sort -u | wc -l)
expect_eq "--verbose: every vertex digest" "$want" "$got"
want=$(jq -c 'select(.type=="vertex.status")' "$S/bk-parallel.jsonl" | wc -l)
got=$(grep -cE '#[0-9]+ status ' "$tmp/verbose")
expect_eq "--verbose: every status event" "$want" "$got"

# ---- 4. log lines under a running step -----------------------------------------------------
for n in 1 0; do
	pane 100 40 "KILN_TTY_LOG_LINES=$n $KILN replay --progress=tty --pause-at 60 $S/bk-parallel.jsonl"
	if wait_pause; then
		got=$(screen | grep -c '│ ')
		expect_eq "KILN_TTY_LOG_LINES=$n: $n line(s) under each of 3 running steps" $((3 * n)) "$got"
	else
		not_ok "KILN_TTY_LOG_LINES=$n" "replay did not hold" "$(screen)"
	fi
done

# ---- 5. a resize while the live area is up (SIGWINCH) ------------------------------------------
pane 120 40 "$KILN replay --progress=tty --pause-at 60 $S/bk-parallel.jsonl"
if wait_pause; then
	tm resize-window -x 60 -y 20
	sleep 0.5
	kill -USR1 "$(child_pid)"
	wait_exit >/dev/null
	screen >"$tmp/resized"
	expect_match "resize to 60x20: lines after it are cut to the new width, not wrapped" \
		'^✅ 💾 exporting to image {20,}0\.1s$' "$(cat "$tmp/resized")"
	tm capture-pane -p -S - -E - >"$tmp/scrollback"
	check_scrollback bk-parallel "$tmp/scrollback"
else
	not_ok "resize" "replay did not hold" "$(screen)"
fi

# ---- 6. Ctrl-C: terminal restored, exit 130 ---------------------------------------------------------
pane 100 30 "$KILN replay --progress=tty --pause-at 46 $S/bk-failing.jsonl"
if wait_pause; then
	expect_eq "while live: the cursor is hidden" 0 "$(tm display -p '#{cursor_flag}')"
	tm send-keys C-c
	rc=$(wait_exit)
	expect_eq "Ctrl-C: replay exits 130" 130 "$rc"
	expect_eq "Ctrl-C: the cursor is visible again" 1 "$(tm display -p '#{cursor_flag}')"
	expect_match "Ctrl-C: running steps end as cancelled, the job as interrupted" \
		'⛔ ⚙️  RUN for i in .*⛔ Interrupted after' "$(screen | tr '\n' ' ')"
	if screen | grep -qE '\^\[|\[\?25|\[[0-9]+A'; then
		not_ok "Ctrl-C: no stray escape sequences on screen" "$(screen)"
	else
		ok "Ctrl-C: no stray escape sequences on screen"
	fi
else
	not_ok "Ctrl-C" "replay did not hold" "$(screen)"
fi

# ---- 7. redraws are throttled -----------------------------------------------------------------------
# The live clock (no KILN_TTY_CLOCK), paced: at most 10 frames a second
# (a frame clears the live area with ESC[J), however many events come.
start=$(date +%s%N)
env -u KILN_TTY_CLOCK LC_ALL=C.UTF-8 script -q -e -c \
	"stty cols 100 rows 30; $KILN replay --progress=tty --speed 2 $S/bk-parallel.jsonl" \
	/dev/null </dev/null >"$tmp/paced" 2>&1
secs=$((($(date +%s%N) - start) / 1000000))
frames=$(grep -oE $'\r'"$ESC\\[[0-9]+A" "$tmp/paced" | wc -l)
events=$(wc -l <"$S/bk-parallel.jsonl")
if [ "$frames" -le $((secs / 100 + 2)) ] && [ "$frames" -lt "$events" ]; then
	ok "throttle: $frames frames for $events events in ${secs} ms"
else
	not_ok "throttle: at most 10 frames a second" "$frames frames for $events events in ${secs} ms"
fi

tap_done
