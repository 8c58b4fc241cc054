#!/usr/bin/env bash
# tests/integration/buildkit_build_test.sh: `kiln build` through the buildkit
# backend (Solve, Status and the session: build context upload, secrets,
# SSH forwarding, local and tar exports) against the BuildKit inside the
# local engine's dockerd (v0.8, reached as docker-unix://). TAP.
#
#   1. a generated context (400+ files, names around '/' in byte order, a
#      symlink, an empty dir, 0755 / 04755 files, a setgid dir, a hard
#      link) and a multi-stage Dockerfile with cache, secret and ssh
#      mounts: the image runs and has the modes; the secret never shows;
#   2. .dockerignore; a one-file change re-runs only the steps after its
#      COPY; a no-change rebuild is all CACHED;
#   3. -o type=local and type=tar write exactly the tree; a failing build
#      leaves an existing export untouched, with no temp siblings;
#   4. a failing RUN: exit 1, the step, exit code 3, its last log lines;
#   5. --secret id=,env= and --ssh ID=SOCKET; a missing secret file;
#   6. an LLB build from a frontend plugin that uses the host's graph
#      builder (tests/abi/plugins/frontend_llbtest.c);
#   7. SIGINT cancels the running step; 8. an unreachable address.
# kiln workers / du / prune: buildkit_control_test.sh. Every run uses its
# own image tag, cache mount and step contents, so runs may overlap.
#
# Needs: the engine (eval "$(scripts/engine.sh env)"), cc (a static
# helper that asks an ssh-agent for its keys, since busybox has no ssh
# client), jq, and ssh-agent/ssh-add/ssh-keygen for the SSH parts
# (skipped without them). /usr/bin/docker checks the images.
#
#   tests/integration/buildkit_build_test.sh     KILN=build/kiln by default
#
# KILN_TEST_ENGINE_VIA chooses how kiln is told the engine:
#   (unset)        --addr docker-unix://PATH on every build
#   docker_host    no --addr; kiln sees only DOCKER_HOST=unix://PATH
#   buildkit_host  no --addr; kiln sees only BUILDKIT_HOST=docker-unix://PATH
# (engine_select_test.sh runs the suite in the last two).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

DOCKER=/usr/bin/docker # not /usr/local/bin/docker: that is another client
# Per run: two runs at once must not share an image, a cache mount or a
# step (BuildKit runs an identical step of two concurrent builds once).
run_id=$$-$RANDOM
TAG=kiln-bk-t1:$run_id

if [ -z "${DOCKER_HOST:-}" ] || [ -z "${BUILDKIT_HOST:-}" ]; then
	eval "$(scripts/engine.sh env 2>/dev/null)" || true
fi
if [ -z "${DOCKER_HOST:-}" ] || ! "$DOCKER" version >/dev/null 2>&1; then
	echo "Bail out! no engine at '${DOCKER_HOST:-}' (run: eval \"\$(scripts/engine.sh up)\")"
	exit 1
fi
ADDR=${BUILDKIT_HOST:-docker-unix://${DOCKER_HOST#unix://}}
case $ADDR in
docker-unix://*) ;;
*) echo "Bail out! BUILDKIT_HOST=$ADDR is not docker-unix:// (this test is for dockerd's BuildKit)"; exit 1 ;;
esac
# kaddr / kenv: how each kiln build reaches the engine
case ${KILN_TEST_ENGINE_VIA:-} in
'') kaddr=(--addr "$ADDR") kenv=(env) ;;
docker_host) kaddr=() kenv=(env -u BUILDKIT_HOST "DOCKER_HOST=unix://${ADDR#docker-unix://}") ;;
buildkit_host) kaddr=() kenv=(env -u DOCKER_HOST "BUILDKIT_HOST=$ADDR") ;;
*) echo "Bail out! KILN_TEST_ENGINE_VIA=$KILN_TEST_ENGINE_VIA (docker_host or buildkit_host)"; exit 1 ;;
esac
for t in cc jq tar sha256sum; do
	command -v "$t" >/dev/null || { echo "Bail out! $t is not installed (scripts/deps.sh)"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-buildkit-build.XXXXXX")
agent_pid=
kiln_pid=
images=() # every image ID the builds made (a rebuild leaves the one before untagged)
cleanup() {
	[ -n "$kiln_pid" ] && kill "$kiln_pid" 2>/dev/null
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
	"$DOCKER" rmi -f "$TAG" "${images[@]}" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# kbuild ARGS...: runs kiln build on the engine; sets rc, out (stdout),
# err (stderr, where the progress goes).
kbuild() {
	out=$(timeout 300 "${kenv[@]}" "$KILN" build "${kaddr[@]}" "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}

# listing DIR: every entry below DIR as "path mode type link-target"
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %m %y %l\n' | LC_ALL=C sort); }
# sums DIR: sha256 of every regular file below DIR
sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }
# snapshot DIR: listing, sizes, mtimes and contents, to see that nothing changed
snapshot() {
	(cd "$1" && find . -printf '%P %m %y %l %s %T@ %i\n' | LC_ALL=C sort)
	sums "$1"
}
# vertex_states: from a --progress=json stream on stdin, the last state of
# each Dockerfile step vertex (not FROM) as "cached|run [stage N/M]", sorted
vertex_states() {
	jq -Rrn '[inputs | fromjson? | select(.type == "vertex")] | group_by(.digest) | map(last) | .[]
		| select(.name // "" | test("^\\[[^]]* [0-9]+/[0-9]+\\] ") and (test("\\] FROM ") | not))
		| "\(if .cached then "cached" else "run" end) \(.name | capture("^(?<s>\\[[^]]*\\])").s)"' |
		LC_ALL=C sort
}
json_lines_ok() { # the text of every line that is not one JSON object
	printf '%s\n' "$1" | jq -R -c 'fromjson? // "BAD" | if type == "object" then empty else . end' 2>&1
}

# --- the build context (deterministic) -----------------------------------------
# make_context DIR: DIR/tree (what the Dockerfile copies), DIR/tools and
# DIR/.dockerignore.
make_context() {
	local c=$1 t=$1/tree d s f i=0 n name
	umask 022
	# 400 files in nested directories, 0 B to ~190 kB
	for d in 0 1 2 3 4 5 6 7 8 9; do
		for s in 0 1 2 3; do
			mkdir -p "$t/d$d/s$s"
			for f in 00 01 02 03 04 05 06 07 08 09; do
				n=$(((i * 7919) % 97))
				if [ $((i % 50)) = 7 ]; then
					yes "d$d/s$s/f$f.txt $i" | head -c $((n * 2000)) >"$t/d$d/s$s/f$f.txt"
				elif [ $((i % 40)) = 3 ]; then
					: >"$t/d$d/s$s/f$f.txt"
				else
					yes "d$d/s$s/f$f.txt $i" | head -n "$n" >"$t/d$d/s$s/f$f.txt"
				fi
				i=$((i + 1))
			done
		done
	done
	# names around '/' in byte order (' ' < '-' < '.' < '/' < '0'), UTF-8, 200 bytes
	mkdir -p "$t/sort/a" "$t/sort/a.d"
	for name in "a/x" "a b" "a-b" "a.txt" "a.d/y" "a0" "a~" "A" "b" "ä.txt" \
		"$(printf 'L%.0s' $(seq 200))"; do
		printf '%s\n' "$name" >"$t/sort/$name"
	done
	mkdir -p "$t/links"
	ln -s ../sort/a.txt "$t/links/rel"
	ln -s ../sort/a "$t/links/dir"
	ln -s does-not-exist "$t/links/dangling"
	mkdir -p "$t/empty" "$t/bin" "$t/modes/private-dir" "$t/shared" "$t/hard" "$t/change"
	printf '#!/bin/sh\necho "hello from a 0755 script"\n' >"$t/bin/hello.sh"
	chmod 0755 "$t/bin/hello.sh"
	printf 'setuid\n' >"$t/bin/suid"
	chmod 04755 "$t/bin/suid"
	printf 'read-only\n' >"$t/modes/ro"
	chmod 0444 "$t/modes/ro"
	printf 'private\n' >"$t/modes/private"
	chmod 0600 "$t/modes/private"
	chmod 0700 "$t/modes/private-dir"
	printf 'in a setgid directory\n' >"$t/shared/file"
	chmod 02775 "$t/shared"
	printf 'one inode, two names\n' >"$t/hard/one"
	ln "$t/hard/one" "$t/hard/two"
	printf 'version 1\n' >"$t/change/me.txt"
	# what .dockerignore drops (and one file it keeps with '!')
	mkdir -p "$t/keep" "$t/d9/s3/deep/er" "$t/cache-dir/sub"
	printf 'scratch\n' >"$t/scratch.tmp"
	printf 'log\n' >"$t/d0/s0/debug.log"
	printf 'log\n' >"$t/d9/s3/deep/er/x.log"
	printf 'kept\n' >"$t/keep/important.log"
	printf 'log\n' >"$t/keep/other.log"
	printf 'cache\n' >"$t/cache-dir/sub/blob"
	cat >"$c/.dockerignore" <<'EOF'
# .dockerignore of kiln's buildkit build test
tree/*.tmp
tree/**/*.log
!tree/keep/important.log
tree/cache-dir
EOF
}
IGNORED="scratch.tmp d0/s0/debug.log d9/s3/deep/er/x.log keep/other.log cache-dir"

# agentq: asks the ssh-agent at $SSH_AUTH_SOCK for its identities
# (SSH2_AGENTC_REQUEST_IDENTITIES, answer SSH2_AGENT_IDENTITIES_ANSWER) and
# prints "keys N" and "comment C" per key. Static: it runs in busybox.
make_agentq() {
	cat >"$tmp/agentq.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static unsigned char buf[1 << 16];

static int full(int fd, unsigned char *p, size_t n, int rd)
{
	while (n > 0) {
		ssize_t k = rd ? read(fd, p, n) : write(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int main(void)
{
	const char *path = getenv("SSH_AUTH_SOCK");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "agentq: SSH_AUTH_SOCK is not set\n");
		return 2;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("agentq: connect");
		return 2;
	}
	unsigned char req[5] = { 0, 0, 0, 1, 11 };
	if (full(fd, req, 5, 0) < 0 || full(fd, buf, 4, 1) < 0) {
		fprintf(stderr, "agentq: no answer\n");
		return 2;
	}
	uint32_t len = be32(buf);
	if (len < 5 || len > sizeof(buf) || full(fd, buf, len, 1) < 0 || buf[0] != 12) {
		fprintf(stderr, "agentq: not an identities answer\n");
		return 2;
	}
	uint32_t n = be32(buf + 1), off = 5;
	printf("keys %u\n", n);
	for (uint32_t i = 0; i < n; i++) {
		for (int s = 0; s < 2; s++) { /* key blob, then comment */
			if (off + 4 > len || be32(buf + off) > len - off - 4) {
				fprintf(stderr, "agentq: truncated answer\n");
				return 2;
			}
			uint32_t sl = be32(buf + off);
			if (s == 1)
				printf("comment %.*s\n", (int)sl, (const char *)buf + off + 4);
			off += 4 + sl;
		}
	}
	return 0;
}
EOF
	cc -static -O2 -o "$1" "$tmp/agentq.c"
}

ctx=$tmp/ctx
mkdir -p "$ctx/tools"
(make_context "$ctx")
if make_agentq "$ctx/tools/agentq" >"$tmp/cc.log" 2>&1; then :; else
	echo "Bail out! cannot build the static agentq helper: $(tail -n 3 "$tmp/cc.log")"
	exit 1
fi
# the expected tree: the context minus what .dockerignore drops
cp -a "$ctx/tree" "$tmp/expected"
for p in $IGNORED; do rm -rf "${tmp:?}/expected/$p"; done

secret="kiln-bk-secret-$$-$RANDOM$RANDOM"
printf '%s' "$secret" >"$tmp/tok"
secret_sha=$(printf '%s' "$secret" | sha256sum | cut -c1-64)

# An ssh-agent with one fresh key, whose comment the build must read.
key_comment="kiln-bk-key-$$-$RANDOM"
have_ssh=0
if command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null &&
	command -v ssh-keygen >/dev/null; then
	ssh-keygen -q -t ed25519 -N '' -C "$key_comment" -f "$tmp/id" </dev/null &&
		agent_out=$(ssh-agent -s -a "$tmp/agent.sock") &&
		agent_pid=$(printf '%s\n' "$agent_out" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p') &&
		SSH_AUTH_SOCK=$tmp/agent.sock ssh-add "$tmp/id" 2>/dev/null &&
		have_ssh=1
fi
if [ $have_ssh = 1 ]; then
	export SSH_AUTH_SOCK=$tmp/agent.sock
	ssh_step='RUN --mount=type=ssh --mount=type=bind,source=tools,target=/tools test -S "$SSH_AUTH_SOCK" && /tools/agentq > /out/agent.txt'
	ssh_flag=(--ssh default)
	agent_expect="keys 1
comment $key_comment"
else
	unset SSH_AUTH_SOCK
	ssh_step='RUN echo "keys (no ssh-agent on the host)" > /out/agent.txt'
	ssh_flag=()
	agent_expect="keys (no ssh-agent on the host)"
fi

cat >"$tmp/Dockerfile" <<EOF
# kiln buildkit build test: cache, secret, ssh and bind mounts, three stages
FROM busybox AS build
RUN mkdir -p /out && echo "built in stage build by run $run_id" > /out/stamp
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /out/secret.sha256
$ssh_step
COPY tree /ctx/
RUN --mount=type=cache,id=kiln-bk-counter-$run_id,target=/cache n=\$(cat /cache/n 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > /cache/n; echo \$n > /out/counter
RUN /ctx/bin/hello.sh > /out/report && cat /ctx/change/me.txt >> /out/report && echo "secret-sha256 \$(cat /out/secret.sha256)" >> /out/report && cat /out/agent.txt >> /out/report

FROM scratch AS export
COPY --from=build /ctx /

FROM busybox
COPY --from=build /ctx /ctx
COPY --from=build /out /out
CMD ["sh", "-c", "cat /out/report; echo counter \$(cat /out/counter)"]
EOF
build_flags=(-f "$tmp/Dockerfile" --secret "id=tok,src=$tmp/tok" "${ssh_flag[@]}")

# report_of IMAGE: what the image prints, less the counter line
report_of() { "$DOCKER" run --rm "$1" 2>&1 | grep -v '^counter '; }
counter_of() { "$DOCKER" run --rm "$1" 2>&1 | sed -n 's/^counter //p'; }
expected_report="hello from a 0755 script
version 1
secret-sha256 $secret_sha
$agent_expect"

# --- 1. the first build: every step runs -----------------------------------------
kbuild --progress=json --no-cache -t "$TAG" "${build_flags[@]}" "$ctx"
expect_eq "build: exits 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "build: --progress=json is one JSON object per line" "" "$(json_lines_ok "$err")"
expect_eq "build: the buildkit backend ran it" buildkit \
	"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.started") | .backend' 2>/dev/null)"
expect_eq "build: nothing on stdout" "" "$out"
image_id=$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)
expect_match "build: the image exists" '^sha256:[0-9a-f]{64}$' "$image_id"
[ -n "$image_id" ] && images+=("$image_id")
fin=$(printf '%s\n' "$err" | jq -r 'select(.type == "job.finished") |
	"\(.status) \(.image_digest == $id or .config_digest == $id)"' --arg id "$image_id" 2>/dev/null)
expect_eq "build: job.finished has status 0 and the image ID as a digest" "0 true" "$fin"
build1_json=$err

report=$(report_of "$TAG")
expect_eq "image: prints the script's output, the context file, the secret's sha256, the agent's key" \
	"$expected_report" "$report"
if [ $have_ssh = 1 ]; then
	expect_match "--ssh default: the build listed the host agent's key" "^comment $key_comment\$" "$report"
else
	skip "--ssh default: the build listed the host agent's key" "no ssh-agent, ssh-add or ssh-keygen"
fi
c1=$(counter_of "$TAG")
expect_match "image: the cache-mount counter is a number" '^[0-9]+$' "$c1"

if printf '%s\n%s\n' "$build1_json" "$out" | grep -qF -- "$secret"; then
	not_ok "secret: its value is not in kiln's output (--progress=json)"
else
	ok "secret: its value is not in kiln's output (--progress=json)"
fi
expect_eq "secret: not left in the image (/run/secrets, /out, /ctx)" "absent" \
	"$("$DOCKER" run --rm "$TAG" sh -c "test -e /run/secrets/tok || grep -rqsF '$secret' /out /ctx || echo absent" 2>&1)"

modes=$("$DOCKER" run --rm "$TAG" sh -c '
	cd /ctx && stat -c "%n %a %F" bin/hello.sh bin/suid shared empty modes/ro modes/private modes/private-dir
	echo "empty: [$(ls -A empty)]"
	echo "links/rel -> $(readlink links/rel): $(cat links/rel)"
	echo "links/dir -> $(readlink links/dir): $(ls links/dir/)"
	echo "links/dangling -> $(readlink links/dangling)"
	[ "$(stat -c %i hard/one)" = "$(stat -c %i hard/two)" ] && echo "hard/one hard/two: one inode, $(stat -c %h hard/one) links"
	"./bin/hello.sh"' 2>&1)
expect_eq "image: modes, symlinks, empty dir and hard link are intact" \
	"bin/hello.sh 755 regular file
bin/suid 4755 regular file
shared 2775 directory
empty 755 directory
modes/ro 444 regular file
modes/private 600 regular file
modes/private-dir 700 directory
empty: []
links/rel -> ../sort/a.txt: a.txt
links/dir -> ../sort/a: x
links/dangling -> does-not-exist
hard/one hard/two: one inode, 2 links
hello from a 0755 script" "$modes"

# Every entry with its mode and type, in the image and in the expected tree.
img_list=$("$DOCKER" run --rm "$TAG" sh -c 'cd /ctx && find . -mindepth 1 -exec stat -c "%n|%a|%F" {} +' 2>&1 |
	LC_ALL=C sort)
exp_list=$(cd "$tmp/expected" && find . -mindepth 1 -exec stat -c "%n|%a|%F" {} + | LC_ALL=C sort)
if [ "$img_list" = "$exp_list" ]; then
	ok "image: /ctx holds exactly the context's $(printf '%s\n' "$exp_list" | wc -l) entries with their modes"
else
	not_ok "image: /ctx holds exactly the context's entries with their modes" \
		"$(diff <(printf '%s\n' "$exp_list") <(printf '%s\n' "$img_list") | head -n 20)"
fi
img_sums=$("$DOCKER" run --rm "$TAG" sh -c 'cd /ctx && find . -type f -exec sha256sum {} +' 2>&1 | LC_ALL=C sort)
exp_sums=$(cd "$tmp/expected" && find . -type f -exec sha256sum {} + | LC_ALL=C sort)
if [ "$img_sums" = "$exp_sums" ]; then ok "image: every file's bytes match the context"; else
	not_ok "image: every file's bytes match the context" \
		"$(diff <(printf '%s\n' "$exp_sums") <(printf '%s\n' "$img_sums") | head -n 20)"
fi

# --- 2. .dockerignore and the cache ------------------------------------------------
expect_eq ".dockerignore: '*.tmp', '**/*.log' and a directory are dropped, '!' keeps one" \
	"gone gone gone gone gone kept" \
	"$("$DOCKER" run --rm "$TAG" sh -c 'cd /ctx; for p in scratch.tmp d0/s0/debug.log d9/s3/deep/er/x.log keep/other.log cache-dir; do
		test -e "$p" && echo "present:$p" || echo gone; done; test -f keep/important.log && echo kept' 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# One context file changes: the steps before its COPY come from the cache.
# (New content never built before: an earlier run of this test must not
# have cached the steps after the COPY.)
version2="version 2 ($$-$RANDOM$RANDOM)"
printf '%s\n' "$version2" >"$ctx/tree/change/me.txt"
kbuild --progress=json -t "$TAG" "${build_flags[@]}" "$ctx"
expect_eq "one file changed: rebuild exits 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "one file changed: steps before its COPY are cached, the COPY and the rest run" \
	"cached [build 2/7]
cached [build 3/7]
cached [build 4/7]
run [build 5/7]
run [build 6/7]
run [build 7/7]
run [stage-2 2/3]
run [stage-2 3/3]" "$(printf '%s\n' "$err" | vertex_states)"
expect_eq "one file changed: the image has the new content" "$version2" \
	"$("$DOCKER" run --rm "$TAG" cat /ctx/change/me.txt 2>&1)"
expect_eq "one file changed: the cache mount kept its counter across builds" \
	"$((${c1:-0} + 1))" "$(counter_of "$TAG")"
if printf '%s\n' "$err" | grep -qF -- "$secret"; then
	not_ok "one file changed: the secret is not in the output"
else ok "one file changed: the secret is not in the output"; fi
image_id=$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)
[ -n "$image_id" ] && images+=("$image_id")

# Nothing changed: every step is CACHED (plain progress) and the image is the same.
kbuild --progress=plain -t "$TAG" "${build_flags[@]}" "$ctx"
expect_eq "no change: rebuild exits 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
states=$(printf '%s\n' "$err" | awk '
	/^#[0-9]+ \[/ { n = $1; sub(/^#[0-9]+ /, ""); name[n] = $0; next }
	/^#[0-9]+ CACHED$/ { st[$1] = "CACHED"; next }
	/^#[0-9]+ DONE / { st[$1] = "DONE"; next }
	/^#[0-9]+ ERROR/ { st[$1] = "ERROR" }
	END { for (n in name) if (name[n] ~ /^\[[^]]* [0-9]+\/[0-9]+\] / && name[n] !~ /\] FROM /) {
		s = name[n]; sub(/\].*/, "]", s); print st[n], s } }' | LC_ALL=C sort)
expect_eq "no change: all 8 steps print CACHED" \
	"CACHED [build 2/7]
CACHED [build 3/7]
CACHED [build 4/7]
CACHED [build 5/7]
CACHED [build 6/7]
CACHED [build 7/7]
CACHED [stage-2 2/3]
CACHED [stage-2 3/3]" "$states"
if [ -n "$image_id" ]; then
	expect_eq "no change: same image" "$image_id" "$("$DOCKER" image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)"
else not_ok "no change: same image" "no image from the build before"; fi

# --- 3. exports ----------------------------------------------------------------------
# (the expected tree gets the changed file too)
printf '%s\n' "$version2" >"$tmp/expected/change/me.txt"
mkdir -p "$tmp/exp"
kbuild --progress=plain --target export -o "type=local,dest=$tmp/exp/out" "${build_flags[@]}" "$ctx"
expect_eq "-o type=local: exits 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
want=$(listing "$tmp/expected")
got=$(listing "$tmp/exp/out" 2>&1)
if [ "$want" = "$got" ]; then ok "-o type=local: exactly the expected tree (paths, modes, types, link targets)"; else
	not_ok "-o type=local: exactly the expected tree" "$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -n 20)"
fi
expect_eq "-o type=local: every file's bytes" "$(sums "$tmp/expected")" "$(sums "$tmp/exp/out" 2>&1)"
expect_eq "-o type=local: the hard link is one inode" \
	"$(stat -c %i "$tmp/exp/out/hard/one" 2>&1)" "$(stat -c %i "$tmp/exp/out/hard/two" 2>&1)"
expect_eq "-o type=local: the export leaves nothing else next to it" "out" "$(ls -A "$tmp/exp")"

kbuild --progress=plain --target export -o "type=tar,dest=$tmp/exp/ctx.tar" "${build_flags[@]}" "$ctx"
expect_eq "-o type=tar: exits 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
want_names=$(cd "$tmp/expected" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort)
got_names=$(tar -tf "$tmp/exp/ctx.tar" 2>&1 | sed 's|^\./||; s|/$||' | grep -v '^$' | LC_ALL=C sort)
if [ "$want_names" = "$got_names" ]; then ok "-o type=tar: tar -tf lists exactly the expected entries"; else
	not_ok "-o type=tar: tar -tf lists exactly the expected entries" \
		"$(diff <(printf '%s\n' "$want_names") <(printf '%s\n' "$got_names") | head -n 20)"
fi
tvf=$(tar -tvf "$tmp/exp/ctx.tar" 2>&1)
expect_match "-o type=tar: tar -tvf shows the setuid file" '^-rwsr-xr-x .* (\./)?bin/suid$' "$tvf"
expect_match "-o type=tar: tar -tvf shows the setgid directory" '^drwxrwsr-x .* (\./)?shared/?$' "$tvf"
expect_match "-o type=tar: tar -tvf shows the symlink" '^lrwxrwxrwx .* (\./)?links/rel -> \.\./sort/a\.txt$' "$tvf"
mkdir -p "$tmp/untar"
tar -xpf "$tmp/exp/ctx.tar" -C "$tmp/untar" 2>/dev/null
expect_eq "-o type=tar: unpacked, the same tree as -o type=local" "$want" "$(listing "$tmp/untar")"
expect_eq "-o type=tar: unpacked, the same bytes" "$(sums "$tmp/expected")" "$(sums "$tmp/untar")"

# A failing build must leave an existing export exactly as it was.
mkdir -p "$tmp/fail"
printf 'FROM busybox\nRUN echo partial > /partial\nRUN echo "about to fail"; exit 7\n' >"$tmp/fail/Dockerfile"
before=$(snapshot "$tmp/exp/out" 2>&1)
kbuild --progress=plain -o "type=local,dest=$tmp/exp/out" "$tmp/fail"
expect_eq "failing build with -o type=local: exit 1" 1 "$rc"
after=$(snapshot "$tmp/exp/out" 2>&1)
if [ ! -f "$tmp/exp/out/hard/one" ]; then
	not_ok "failing build with -o type=local: the existing out/ is untouched" "no out/ from the export before"
elif [ "$before" = "$after" ]; then ok "failing build with -o type=local: the existing out/ is untouched"; else
	not_ok "failing build with -o type=local: the existing out/ is untouched" \
		"$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | head -n 20)"
fi
tar_sum=$(sha256sum "$tmp/exp/ctx.tar" 2>&1)
had_tar=0
[ -s "$tmp/exp/ctx.tar" ] && had_tar=1
kbuild --progress=plain -o "type=tar,dest=$tmp/exp/ctx.tar" "$tmp/fail"
expect_eq "failing build with -o type=tar: exit 1" 1 "$rc"
if [ $had_tar = 1 ]; then
	expect_eq "failing build with -o type=tar: the existing tar is untouched" "$tar_sum" "$(sha256sum "$tmp/exp/ctx.tar" 2>&1)"
else not_ok "failing build with -o type=tar: the existing tar is untouched" "no tar from the export before"; fi
expect_eq "failing builds: no temp siblings left next to the outputs" "ctx.tar out" \
	"$(ls -A "$tmp/exp" | tr '\n' ' ' | sed 's/ $//')"

# --- 4. a failing RUN ----------------------------------------------------------------
mkdir -p "$tmp/fail3"
cat >"$tmp/fail3/Dockerfile" <<'EOF'
FROM busybox
RUN for i in 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15; do echo "fail-line-$i"; done; exit 3
EOF
kbuild --progress=plain "$tmp/fail3"
expect_eq "failing RUN: exit code 1" 1 "$rc"
expect_match "failing RUN: the step is named, with an ERROR and exit code 3" \
	'^#[0-9]+ ERROR: .*exit code: 3' "$err"
expect_match "failing RUN: the step's header" '^#[0-9]+ \[2/2\] RUN for i in 01' "$err"
frame=$(printf '%s\n' "$err" | awk '/^------$/ { f = !f; next } f')
expect_match "failing RUN: the error block names the step" '^ > \[2/2\] RUN for i in 01.*:$' "$frame"
expect_match "failing RUN: the error block shows the last log lines" 'fail-line-06 .*fail-line-15' \
	"$(printf '%s\n' "$frame" | tr '\n' ' ')"
expect_match "failing RUN: the final ERROR line says exit code 3" '^ERROR: .*exit code: 3' "$err"
kbuild --progress=quiet "$tmp/fail3"
expect_eq "failing RUN, --progress=quiet: exit code 1" 1 "$rc"
expect_match "failing RUN, --progress=quiet: still one line saying why" '^kiln: .*exit code: 3' "$err"

# --- 5. --secret env=, --ssh ID=SOCKET ------------------------------------------------
if [ $have_ssh = 1 ]; then ssh_mount='--mount=type=ssh,id=mykey'; ssh_cmd='/tools/agentq'; else
	ssh_mount=''; ssh_cmd='echo no-agent'; fi
cat >"$tmp/forms.Dockerfile" <<EOF
FROM busybox
RUN --mount=type=secret,id=tok2 $ssh_mount --mount=type=bind,source=tools,target=/tools mkdir /proof && echo $run_id > /proof/run && sha256sum /run/secrets/tok2 | cut -c1-64 > /proof/tok2.sha256 && $ssh_cmd > /proof/agent.txt
FROM scratch
COPY --from=0 /proof /
EOF
secret2="kiln-bk-env-secret-$$-$RANDOM$RANDOM"
forms_ssh=()
[ $have_ssh = 1 ] && forms_ssh=(--ssh "mykey=$tmp/agent.sock")
out=$(KILN_BK_TOK2=$secret2 SSH_AUTH_SOCK='' timeout 300 "${kenv[@]}" "$KILN" build "${kaddr[@]}" --progress=plain --no-cache \
	-f "$tmp/forms.Dockerfile" --secret id=tok2,env=KILN_BK_TOK2 "${forms_ssh[@]}" \
	-o "type=local,dest=$tmp/forms" "$ctx" 2>"$tmp/stderr")
rc=$?
err=$(cat "$tmp/stderr")
expect_eq "--secret id=,env= and --ssh ID=SOCKET: exit 0" 0 "$rc"
[ "$rc" = 0 ] || show_err
expect_eq "--secret id=,env=: the build read the variable's value" \
	"$(printf '%s' "$secret2" | sha256sum | cut -c1-64)" "$(cat "$tmp/forms/tok2.sha256" 2>&1)"
if [ $have_ssh = 1 ]; then
	expect_eq "--ssh mykey=SOCKET: the agent at SOCKET answered inside the build" \
		"keys 1 comment $key_comment" "$(tr '\n' ' ' <"$tmp/forms/agent.txt" 2>&1 | sed 's/ $//')"
else
	skip "--ssh mykey=SOCKET: the agent at SOCKET answered inside the build" "no ssh-agent"
fi
if printf '%s\n%s\n' "$out" "$err" | grep -qF -- "$secret2"; then
	not_ok "--secret id=,env=: its value is not in kiln's output (--progress=plain)"
else ok "--secret id=,env=: its value is not in kiln's output (--progress=plain)"; fi

kbuild --progress=plain --secret "id=tok,src=$tmp/no-such-file" -f "$tmp/Dockerfile" "$ctx"
expect_eq "--secret src=MISSING: exit code 2" 2 "$rc"
expect_match "--secret src=MISSING: one line naming the file" "^(kiln|ERROR): .*$tmp/no-such-file" "$err"

# --- 6. LLB from a frontend plugin (the host's graph builder) --------------------------
so=$BUILD/tests/abi/frontend_llbtest.so
if [ -f "$so" ]; then
	ok "the test frontend is built ($so)"
	# its own directory: $BUILD/tests/abi also holds the refused ABI plugins
	mkdir -p "$tmp/plugins" "$tmp/llbctx"
	cp "$so" "$tmp/plugins/"
	echo "from the context" >"$tmp/llbctx/input.txt"
	echo "not included" >"$tmp/llbctx/other.txt"
	printf '# kiln llbtest\ngreeting=hello from LLB %s\nnote=a note\n' "$$" >"$tmp/x.llb-test"
	out=$(KILN_PLUGIN_PATH=$tmp/plugins timeout 300 "${kenv[@]}" "$KILN" build "${kaddr[@]}" --progress=json \
		-f "$tmp/x.llb-test" -o "type=local,dest=$tmp/llbout" "$tmp/llbctx" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
	expect_eq "LLB: kiln build -f x.llb-test exits 0" 0 "$rc"
	[ "$rc" = 0 ] || show_err
	expect_eq "LLB: the llbtest frontend and the buildkit backend ran it" "llbtest buildkit" \
		"$(printf '%s\n' "$err" | jq -r 'select(.type == "job.started") | "\(.frontend) \(.backend)"' 2>/dev/null)"
	expect_match "LLB: the exec's custom name shows in the progress" \
		'"name":"\[llbtest\] write out\.txt"' "$err"
	expect_eq "LLB: the export holds the exec's files and the file ops' results" \
		"combined.txt cwd.txt input.txt made made/deep made/deep/file note.txt out.txt" \
		"$(cd "$tmp/llbout" 2>/dev/null && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
	expect_eq "LLB: env reached the exec (out.txt)" "hello from LLB $$" "$(cat "$tmp/llbout/out.txt" 2>&1)"
	expect_eq "LLB: cwd was /work (cwd.txt)" "/work" "$(cat "$tmp/llbout/cwd.txt" 2>&1)"
	expect_eq "LLB: copy from the context and mkfile (combined.txt)" \
		"from the context
a note" "$(cat "$tmp/llbout/combined.txt" 2>&1)"
	expect_eq "LLB: mkdir and mkfile modes" "750 640 made by a file op" \
		"$(stat -c %a "$tmp/llbout/made/deep" 2>&1) $(stat -c %a "$tmp/llbout/made/deep/file" 2>&1) $(cat "$tmp/llbout/made/deep/file" 2>&1)"
else
	not_ok "the test frontend is built ($so)" "run: make tests"
fi

# --- 7. SIGINT cancels the running step ------------------------------------------------
mark="kiln-bk-cancel-$$-$RANDOM"
mkdir -p "$tmp/slow"
# a loop, so that the shell (whose argv has the mark) stays the step's process
printf 'FROM busybox\nRUN echo %s; while :; do sleep 1; done\n' "$mark" >"$tmp/slow/Dockerfile"
"${kenv[@]}" "$KILN" build "${kaddr[@]}" --progress=plain "$tmp/slow" 2>"$tmp/slow.err" &
kiln_pid=$!
for _ in $(seq 300); do grep -q "[0-9] $mark" "$tmp/slow.err" 2>/dev/null && break; sleep 0.1; done
step_procs() { ps -eo pid=,args= | M=$mark awk 'index($0, ENVIRON["M"])'; }
if [ -n "$(step_procs)" ]; then ok "SIGINT: the step runs first (its shell is a process)"; else
	not_ok "SIGINT: the step runs first (its shell is a process)" "$(tail -n 20 "$tmp/slow.err")"; fi
t0=$(date +%s%N)
kill -INT "$kiln_pid"
wait "$kiln_pid"
rc=$?
kiln_pid=
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "SIGINT: exit code 130" 130 "$rc"
if [ "$ms" -lt 5000 ]; then ok "SIGINT: stops within 5 s (${ms} ms)"; else
	not_ok "SIGINT: stops within 5 s" "took ${ms} ms"; fi
left=
for _ in $(seq 100); do
	left=$(step_procs)
	[ -z "$left" ] && break
	sleep 0.1
done
expect_eq "SIGINT: the step's process is gone (BuildKit cancelled it)" "" "$left"

# --- 8. an engine that is not there -----------------------------------------------------
out=$(timeout 60 "$KILN" build --progress=quiet --addr docker-unix:///nonexistent.sock "$tmp/fail3" 2>"$tmp/stderr")
rc=$?
err=$(cat "$tmp/stderr")
expect_eq "unreachable docker-unix:// engine: exit code 3" 3 "$rc"
expect_match "unreachable docker-unix:// engine: one line naming the address" \
	'^kiln: cannot reach buildkit at docker-unix:///nonexistent\.sock' "$err"

tap_done
