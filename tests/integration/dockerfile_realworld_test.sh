#!/usr/bin/env bash
# tests/integration/dockerfile_realworld_test.sh: three real-world
# multi-stage Dockerfile projects (tests/integration/realworld/*) built with
# `kiln build` on the local engine's BuildKit (v0.8 inside dockerd), FROM the
# engine's debootstrapped debian:bookworm / bookworm-slim and its busybox,
# resolved through dockerd's registry mirror.  Each uses ARG before FROM,
# apt-get install with an apt cache mount, and COPY --from. TAP.
#
#   c-wordfreq  C + zlib (Debian's gcc), static binary in busybox
#   go-ledger   Go (Debian's golang-go), static binary in bookworm-slim
#   py-easter   Python (Debian's python3), zipapp in bookworm-slim
#
# Each image's output is checked byte for byte.  Then c-wordfreq is built
# again after a change to its C source: its apt step runs again and apt
# downloads nothing ("Need to get 0 B/..."), as the cache mount kept the
# .debs.  The builds need Debian's archive (deb.debian.org) through the
# engine's bridge; the engine must have been started with its debian images
# (scripts/engine.sh up; not KILN_ENGINE_DEBIAN=0).
#
#   tests/integration/dockerfile_realworld_test.sh     KILN=build/kiln by default
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client
RW=tests/integration/realworld
run_id=$$-$RANDOM

need_engine
if [ ! -x "$KILN" ]; then
	echo "Bail out! $KILN is not built (make)"
	exit 1
fi
if [ -n "${KILN_REGISTRY:-}" ] &&
	! curl -fsS -o /dev/null --max-time 10 \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		"http://$KILN_REGISTRY/v2/library/debian/manifests/bookworm-slim"; then
	echo "Bail out! no library/debian:bookworm-slim in the engine's registry $KILN_REGISTRY (scripts/engine.sh up makes it)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-realworld.XXXXXX")
tags=()
cleanup() {
	local ids
	ids=$("$DOCKER" image inspect -f '{{.Id}}' "${tags[@]}" 2>/dev/null)
	# shellcheck disable=SC2086 # one id per word
	"$DOCKER" rmi -f "${tags[@]}" $ids >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# kbuild NAME DIR [ARGS...]: kiln build -t kiln-rw-NAME:RUN DIR; sets rc and
# log (the plain progress)
kbuild() {
	local name=$1 dir=$2
	shift 2
	tag="kiln-rw-$name:$run_id"
	tags+=("$tag")
	timeout 900 "$KILN" build --progress=plain -t "$tag" "$@" "$dir" >"$tmp/$name.log" 2>&1
	rc=$?
	log=$(cat "$tmp/$name.log")
}
# show_log: the tail of the last build's progress as TAP comments
show_log() { printf '%s\n' "$log" | tail -n 30 | sed 's/^/#   /'; }

# --- the three projects ------------------------------------------------------------

# shellcheck disable=SC2034 # read through ${!var}
wordfreq_out='bytes: 1110
words: 209
distinct: 117
crc32: 2639cc2d
adler32: 0f2b8973
top:
     27 the
     11 a
     10 and
      6 is
      6 kiln'

ledger_out='transactions: 8 (2026-01-01 to 2026-03-01)
  assets:bank               6465.18
  assets:cash                 56.90
  equity:opening           -2269.55
  expenses:food               87.47
  expenses:household          17.85
  expenses:rent             1900.00
  income:salary            -6240.00
  liabilities:card           -17.85
assets                      6522.08
equity                     -2269.55
expenses                    2005.32
income                     -6240.00
liabilities                  -17.85
net worth                   6504.23'

# shellcheck disable=SC2034 # read through ${!var}
easter_out='2024: western 2024-03-31 (Sun), orthodox 2024-05-05 (Sun), 35 days apart
2025: western 2025-04-20 (Sun), orthodox 2025-04-20 (Sun), 0 days apart
2026: western 2026-04-05 (Sun), orthodox 2026-04-12 (Sun), 7 days apart
2027: western 2027-03-28 (Sun), orthodox 2027-05-02 (Sun), 35 days apart
2028: western 2028-04-16 (Sun), orthodox 2028-04-16 (Sun), 0 days apart
same day in: 2025, 2028'

for p in "c-wordfreq wordfreq_out" "go-ledger ledger_out" "py-easter easter_out"; do
	read -r name var <<<"$p"
	kbuild "$name" "$RW/$name"
	expect_eq "$name: kiln build exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_log
	expect_eq "$name: docker run prints what the program computes" \
		"${!var}" "$("$DOCKER" run --rm "$tag" 2>&1)"
done

# The stage layout shows in the images: the toolchains stayed in the build
# stages; the final stages are busybox and the slim Debian.
# shellcheck disable=SC2016 # the scripts run in the containers
expect_eq "c-wordfreq: final stage is busybox, the binary is static, no gcc" \
	"busybox static no-gcc" \
	"$("$DOCKER" run --rm "kiln-rw-c-wordfreq:$run_id" sh -c '
		b=$(readlink /bin/sh); [ "$b" = /bin/busybox ] && printf "busybox "
		[ ! -e /lib64 ] && [ ! -e /lib/x86_64-linux-gnu ] && [ -x /usr/local/bin/wordfreq ] && printf "static "
		command -v gcc >/dev/null || printf no-gcc' 2>&1)"
# shellcheck disable=SC2016 # likewise
expect_eq "go-ledger: final stage is bookworm-slim (dpkg excludes docs), no go" \
	"12 slim no-go" \
	"$("$DOCKER" run --rm --entrypoint sh "kiln-rw-go-ledger:$run_id" -c '
		v=$(cat /etc/debian_version); printf "%s " "${v%%.*}"
		grep -q "^path-exclude /usr/share/doc/\*" /etc/dpkg/dpkg.cfg.d/docker && printf "slim "
		command -v go >/dev/null || printf no-go' 2>&1)"
out=$("$DOCKER" run --rm "kiln-rw-py-easter:$run_id" 1500 2>&1)
expect_eq "py-easter: the zipapp runs on Debian's python3; a bad year exits 1" \
	"1: easter: 1500: the Gregorian computus starts in 1583" "$?: $out"

# --- ARG before FROM ------------------------------------------------------------------
# DEBIAN_TAG=12 names both FROMs of go-ledger: the engine's debian:12 and
# debian:12-slim (the same images as bookworm and bookworm-slim).
kbuild go-ledger-12 "$RW/go-ledger" --build-arg DEBIAN_TAG=12
expect_eq "ARG before FROM: --build-arg DEBIAN_TAG=12 builds" 0 "$rc"
[ "$rc" = 0 ] || show_log
expect_eq "ARG before FROM: the FROM lines name debian:12 and debian:12-slim" \
	"docker.io/library/debian:12
docker.io/library/debian:12-slim" \
	"$(printf '%s\n' "$log" | sed -n 's/^#[0-9]* \[[^]]*\] FROM \([^@ ]*\).*/\1/p' | LC_ALL=C sort -u)"
expect_eq "ARG before FROM: the debian:12 build prints the same" \
	"$ledger_out" "$("$DOCKER" run --rm "$tag" 2>&1)"

# --- the apt cache mount across a source change -----------------------------------------
# c-wordfreq installs its build dependencies in the RUN step that follows the
# COPY of its sources, so any source change runs apt-get again.  Two changed
# copies: the first run primes the cache mount (whatever earlier runs left),
# the second must find every .deb there.
cp -a "$RW/c-wordfreq" "$tmp/c-wordfreq"
for pass in prime reuse; do
	printf '/* %s %s */\n' "$pass" "$run_id" >>"$tmp/c-wordfreq/wordfreq.c"
	kbuild "c-wordfreq-$pass" "$tmp/c-wordfreq"
	expect_eq "source change ($pass): kiln build exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_log
done
expect_match "source change: the apt step ran again and found every package in the cache mount" \
	'#[0-9]+ [0-9.]+ Need to get 0 B/[0-9.,]+ [kM]?B of archives\.' "$log"
if printf '%s\n' "$log" | grep -E 'Need to get [1-9]|Get:[0-9]+ [^ ]+ [^ ]+/main [^ ]+ [^ ]+ [^ ]+ [^ ]+ \['; then
	not_ok "source change: apt downloaded no package" "$(printf '%s\n' "$log" | grep -E 'Need to get|Get:' | head -n 10)"
else
	ok "source change: apt downloaded no package"
fi
expect_match "source change: the C program was compiled again" \
	'#[0-9]+ [0-9.]+ check: ok' "$log"
expect_eq "source change: the rebuilt image prints the same" \
	"$wordfreq_out" "$("$DOCKER" run --rm "$tag" 2>&1)"

tap_done
