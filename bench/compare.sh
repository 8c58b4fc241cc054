#!/usr/bin/env bash
# Build speed and memory of kiln's buildkit backend against the Docker
# client's BuildKit builder (DOCKER_BUILDKIT=1 /usr/bin/docker build), on
# the same dockerd, the same Dockerfiles and contexts, interleaved:
#   (a) small   a fully cached rebuild of a small project (examples/hello);
#   (b) cached  a fully cached rebuild of a generated 20,000-file, ~180 MB
#               context (COPY . and du -s): the context transfer finds
#               every file unchanged;
#   (c) first   a first build (--no-cache, full context transfer) of (b).
# Prints median wall times, the ratio kiln/docker against the issue's aims
# and the peak RSS of each client process (docker's is the CLI client's
# only: the build runs in dockerd for both).
#   bench/compare.sh [SMALL_RUNS [CACHED_RUNS [FIRST_RUNS]]]  (default 20, 10, 5)
# Needs the local engine (eval "$(scripts/engine.sh up)"), cc and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
small_runs=${1:-20}
cached_runs=${2:-10}
first_runs=${3:-5}
KILN=${KILN:-build/kiln}
DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client

[ -x "$KILN" ] || { echo "build kiln first (make)" >&2; exit 2; }
if [ -z "${DOCKER_HOST:-}" ] || [ -z "${BUILDKIT_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
"$DOCKER" version >/dev/null 2>&1 ||
	{ echo "no engine at '${DOCKER_HOST:-}' (eval \"\$(scripts/engine.sh up)\")" >&2; exit 2; }
ADDR=${BUILDKIT_HOST:-docker-unix://${DOCKER_HOST#unix://}}
export DOCKER_BUILDKIT=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-build.XXXXXX")
LABEL=org.kiln.bench=build
# Build cache records (IDs) that exist before the benchmark: every large
# run leaves two ~180 MB records (its context transfer and its COPY), so
# the cleanup prunes the records that are new, and only those.
cache_ids() { # the IDs, sorted; fails when kiln du does
	local j
	j=$("$KILN" du --addr "$ADDR" --format json 2>/dev/null) && printf '%s\n' "$j" | jq -r '.[].id' | sort
}
have_du=0
cache_ids >"$tmp/cache.before" && have_du=1
cleanup() {
	"$DOCKER" rmi -f kiln-bench/cached:kiln kiln-bench/cached:docker \
		kiln-bench/large:kiln kiln-bench/large:docker >/dev/null 2>&1 || true
	"$DOCKER" image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true
	if [ $have_du = 1 ]; then
		# a record goes only after its children: a few passes
		for _ in 1 2 3 4 5; do
			local new=() id
			for id in $(cache_ids | comm -13 "$tmp/cache.before" -); do new+=(--filter "id==$id"); done
			[ ${#new[@]} = 0 ] && break
			"$KILN" prune --addr "$ADDR" --all "${new[@]}" >/dev/null 2>&1 || break
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# Peak RSS: GNU time's %M where it exists (Debian package `time`), else
# VmHWM from /proc polled every 10 ms (may miss growth in the last 10 ms).
if /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then rss_how="GNU time"; else rss_how="VmHWM polling"; fi

# run TOOL CMD...: runs CMD once; appends "ms rss_kb" to $tmp/TOOL.$bench_case;
# a failing run stops the benchmark with its output.
run() {
	local tool=$1 t0 t1 rc=0 rss=0 pid v
	shift
	t0=$(date +%s%N)
	if [ "$rss_how" = "GNU time" ]; then
		/usr/bin/time -f %M -o "$tmp/rss" "$@" >"$tmp/out" 2>&1 || rc=$?
		t1=$(date +%s%N)
		rss=$(tail -n 1 "$tmp/rss")
	else
		"$@" >"$tmp/out" 2>&1 &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && rss=$v
			sleep 0.01
		done
		wait "$pid" || rc=$?
		t1=$(date +%s%N)
	fi
	if [ "$rc" != 0 ]; then
		echo "$tool failed (exit $rc): $*" >&2
		tail -n 20 "$tmp/out" >&2
		exit 1
	fi
	echo "$(((t1 - t0) / 1000000)) $rss" >>"$tmp/$tool.$bench_case"
}
kiln_build() { run kiln "$KILN" build --addr "$ADDR" --progress=quiet --label "$LABEL" "$@"; }
docker_build() { run docker "$DOCKER" build -q --label "$LABEL" "$@"; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
col() { awk -v c="$1" '{ print $c }' "$2"; }
max() { sort -n | tail -n 1; }

# kiln must really use the buildkit backend for this address.
out=$("$KILN" build --addr "$ADDR" --progress=json --label "$LABEL" -t kiln-bench/cached:kiln \
	examples/hello 2>&1 >/dev/null) || {
	printf '%s\n' "$out" | tail -n 5 >&2
	echo "kiln build through $ADDR failed" >&2
	exit 1
}
backend=$(printf '%s\n' "$out" | jq -r 'select(.type == "job.started") | .backend' 2>/dev/null || true)
[ "$backend" = buildkit ] ||
	{ echo "kiln used the '$backend' backend for $ADDR, not buildkit" >&2; exit 1; }

# --- (a) small: a fully cached rebuild of examples/hello ------------------------
bench_case=small
"$DOCKER" build -q --label "$LABEL" -t kiln-bench/cached:docker examples/hello >/dev/null
for ((i = 0; i < small_runs; i++)); do
	if ((i % 2)); then
		docker_build -t kiln-bench/cached:docker examples/hello
		kiln_build -t kiln-bench/cached:kiln examples/hello
	else
		kiln_build -t kiln-bench/cached:kiln examples/hello
		docker_build -t kiln-bench/cached:docker examples/hello
	fi
done

# --- the large context: 20,000 files, ~180 MB ----------------------------------
# Files of varied sizes (70 % under 4 kB, a few up to 512 kB) of xorshift
# bytes with a fixed seed: the same tree on every run and machine.
cat >"$tmp/gen.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t s = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1du;
}

int main(int argc, char **argv)
{
	static unsigned char buf[(1 << 20) + 8];
	char path[4096];
	unsigned long long total = 0;
	long n = argc > 2 ? atol(argv[2]) : 0;
	for (long i = 0; i < n; i++) {
		if (i % 100 == 0) {
			snprintf(path, sizeof(path), "%s/d%03ld", argv[1], i / 1000);
			mkdir(path, 0755);
			snprintf(path, sizeof(path), "%s/d%03ld/e%02ld", argv[1], i / 1000, i / 100 % 10);
			mkdir(path, 0755);
		}
		uint64_t c = next() % 1000;
		size_t size = c < 700 ? 100 + next() % 3900
			    : c < 950 ? 4096 + next() % 12288
			    : c < 995 ? 16384 + next() % 114688
				      : 131072 + next() % 393216;
		for (size_t off = 0; off < size; off += 8) {
			uint64_t v = next();
			memcpy(buf + off, &v, 8);
		}
		snprintf(path, sizeof(path), "%s/d%03ld/e%02ld/f%05ld.bin", argv[1], i / 1000,
			 i / 100 % 10, i);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0) {
			perror(path);
			return 1;
		}
		total += size;
	}
	printf("%llu\n", total);
	return 0;
}
EOF
cc -O2 -o "$tmp/gen" "$tmp/gen.c"
mkdir -p "$tmp/large/ctx"
large_bytes=$("$tmp/gen" "$tmp/large/ctx" 20000)
printf 'FROM busybox\nCOPY . /ctx\nRUN du -s /ctx\n' >"$tmp/large.Dockerfile"
cur=$tmp/large/ctx
# --- (b) cached: rebuilds of the large context, nothing changed ---------------
# One untimed build by each client first: the transfers after it send file
# stats only, and every step is cached.
bench_case=cached
"$KILN" build --addr "$ADDR" --progress=quiet --label "$LABEL" -f "$tmp/large.Dockerfile" \
	-t kiln-bench/large:kiln "$cur" >/dev/null
"$DOCKER" build -q --label "$LABEL" -f "$tmp/large.Dockerfile" -t kiln-bench/large:docker \
	"$cur" >/dev/null
for ((i = 0; i < cached_runs; i++)); do
	for tool in $( ((i % 2)) && echo docker kiln || echo kiln docker); do
		if [ "$tool" = kiln ]; then
			kiln_build -f "$tmp/large.Dockerfile" -t kiln-bench/large:kiln "$cur"
		else
			docker_build -f "$tmp/large.Dockerfile" -t kiln-bench/large:docker "$cur"
		fi
	done
done

# --- (c) first: first builds of the large context -----------------------------
# Every build gets the context under a new directory name: BuildKit diffs a
# transfer against the last one with the same session shared key, which
# both clients derive from the context directory, so a new name means a
# full transfer. A rename keeps the files (and the page cache) as they are.
bench_case=first
fresh() { local next="$tmp/large/ctx-$1-$2"; mv "$cur" "$next"; cur=$next; }
for ((i = 0; i < first_runs; i++)); do
	for tool in $( ((i % 2)) && echo docker kiln || echo kiln docker); do
		fresh "$tool" "$i"
		if [ "$tool" = kiln ]; then
			kiln_build --no-cache -f "$tmp/large.Dockerfile" -t kiln-bench/large:kiln "$cur"
		else
			docker_build --no-cache -f "$tmp/large.Dockerfile" -t kiln-bench/large:docker "$cur"
		fi
	done
done

# --- report ------------------------------------------------------------------------
mb() { printf '%.1f' "$(echo "scale=2; $1 / 1024" | bc)"; }
echo "kiln build ($ADDR) vs DOCKER_BUILDKIT=1 $DOCKER build, same dockerd; peak RSS by $rss_how"
echo "(docker RSS is the docker CLI client's; both builds run in dockerd)"
printf '%-40s %5s %8s %9s %6s %6s %10s %10s %9s\n' case runs "kiln ms" "docker ms" ratio aim \
	"kiln RSS" "docker RSS" "RSS aim"
large_mb=$((large_bytes / 1000000))
for c in small cached first; do
	k=$(col 1 "$tmp/kiln.$c" | median)
	d=$(col 1 "$tmp/docker.$c" | median)
	kr=$(col 2 "$tmp/kiln.$c" | max)
	dr=$(col 2 "$tmp/docker.$c" | max)
	rss_aim=-
	case $c in
	small) name="(a) cached rebuild, examples/hello" runs=$small_runs aim=0.60 ;;
	cached) name="(b) cached rebuild, 20000 files, $large_mb MB" runs=$cached_runs aim=0.70 \
		rss_aim="<=20 MB" ;;
	first) name="(c) first build, 20000 files, $large_mb MB" runs=$first_runs aim=1.00 ;;
	esac
	printf '%-40s %5s %8s %9s %6s %6s %7s MB %7s MB %9s\n' "$name" "$runs" "$k" "$d" \
		"$(printf '%.2f' "$(echo "scale=3; $k / $d" | bc)")" "<=$aim" "$(mb "$kr")" "$(mb "$dr")" \
		"$rss_aim"
done
