#!/usr/bin/env bash
# scripts/tty-screenshot.sh STREAM.jsonl EVENT|end COLSxROWS OUT.png
#
# A picture of kiln's tty view: replays STREAM with `kiln replay
# --progress=tty` in a private tmux at COLSxROWS (time from the events,
# KILN_TTY_CLOCK=event), holds after event EVENT (or lets it finish),
# captures the pane with its colours (tmux capture-pane -e), turns that
# into HTML (aha) and photographs it with headless Chromium, with DejaVu
# Sans Mono and Noto Color Emoji. Used for the pictures in docs/; needs
# the Debian packages aha, chromium, fonts-noto-color-emoji (scripts/deps.sh).
#   KILN=build/kiln scripts/tty-screenshot.sh tests/tty/streams/bk-parallel.jsonl 60 100x26 docs/tty-live.png
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
stream=$1 at=$2 size=$3 out=$4
cols=${size%x*} rows=${size#*x}
KILN=${KILN:-build/kiln}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
for t in tmux aha chromium; do
	command -v "$t" >/dev/null || { echo "needs $t (scripts/deps.sh)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-shot.XXXXXX")
sock="kiln-shot-$$"
tm() { tmux -L "$sock" -f "$tmp/tmux.conf" "$@"; }
trap 'tm kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT
printf 'set -g status off\nset -g default-terminal "screen-256color"\n' >"$tmp/tmux.conf"

pause=()
[ "$at" = end ] || pause=(--pause-at "$at")
cat >"$tmp/pane.sh" <<EOF
export LC_ALL=C.UTF-8 KILN_TTY_CLOCK=event
unset NO_COLOR
'$KILN' replay --progress=tty ${pause[*]} '$PWD/$stream'
exec sleep 600
EOF
tm new-session -d -x "$cols" -y "$rows" "bash --norc --noprofile $tmp/pane.sh"
prev="" still=0
for _ in $(seq 1 100); do
	sleep 0.2
	cur=$(tm capture-pane -p)
	if [ -n "$cur" ] && [ "$cur" = "$prev" ]; then still=$((still + 1)); else still=0; fi
	[ $still -ge 3 ] && break
	prev=$cur
done
tm capture-pane -p -e >"$tmp/screen.ansi"

# One cell: DejaVu Sans Mono at 15px is 9px wide; lines 18px apart.
cw=9 lh=18 pad=14
{
	cat <<EOF
<!doctype html><html><head><meta charset="utf-8"><style>
html, body { margin: 0; background: #1e1e2e; }
pre { margin: 0; padding: ${pad}px; color: #d8dee9; font: 15px/${lh}px "DejaVu Sans Mono", "Noto Color Emoji", monospace; white-space: pre; }
</style></head><body><pre>
EOF
	aha --no-header <"$tmp/screen.ansi"
	echo '</pre></body></html>'
} >"$tmp/screen.html"
w=$((cols * cw + 2 * pad)) h=$((rows * lh + 2 * pad))
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
	--window-size="$w,$h" --screenshot="$tmp/shot.png" "file://$tmp/screen.html" >/dev/null 2>&1
mkdir -p "$(dirname "$out")"
cp "$tmp/shot.png" "$out"
echo "$out: ${w}x${h}"
