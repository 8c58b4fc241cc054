# tests/faults/registry.sh: the registry stopped during a push.
# Sourced by tests/integration/faults_test.sh. Private engine: its
# registry is the one killed (by the pid in its pid file), then restarted.
#
# A two-platform image whose layers are 32 MiB of random bytes each is
# built and pushed to the private registry (kiln pushes each platform,
# then writes the image index). As soon as the registry has answered the
# first blob upload, it is killed: kiln fails (exit 3, as for any registry or engine it cannot reach) with a line naming
# the ref; once the registry is back, the tag does not exist (no image
# index, no partial single-platform manifest under it).

[ -n "$PRIV_DIR" ] || priv_up
rw=$tmp/registry
mkdir -p "$rw/ctx"
# shellcheck disable=SC2016 # $R: for the Dockerfile
printf 'FROM busybox\nARG R\nRUN head -c 33554432 /dev/urandom > /blob && echo "$R" > /r\n' \
	>"$rw/ctx/Dockerfile"
ref=$PRIV_REG/kiln-fault/push:t$$
reg_log=$PRIV_DIR/registry.log
lines0=$(wc -l <"$reg_log")
DOCKER_HOST=$PRIV_HOST BUILDKIT_HOST= "$KILN" build --progress=plain --build-arg "R=$$-$RANDOM" \
	--platform linux/amd64,linux/arm64 -t "$ref" --push "$rw/ctx" >/dev/null 2>"$rw/push.err" &
kp=$!
killed=
for _ in $(seq 3000); do # the solves run first (qemu for arm64), then the push
	if tail -n +"$((lines0 + 1))" "$reg_log" | grep -q 'kiln-fault/push/blobs/uploads'; then
		rp=$(priv_pid registry)
		[ -n "$rp" ] && kill -9 "$rp" && killed=$rp
		break
	fi
	alive "$kp" || break
	sleep 0.05
done
wait "$kp"
rc=$?
if [ -n "$killed" ]; then ok "registry: killed (pid $killed) after the first blob upload"; else
	not_ok "registry: killed after the first blob upload" "$(tail -n 20 "$rw/push.err")"; fi
if [ "$rc" = 3 ]; then ok "registry stopped during the push: exit 3 (the registry cannot be reached)"; else
	not_ok "registry stopped during the push: exit 3 (the registry cannot be reached)" \
		"exit $rc; stderr: $(tail -n 40 "$rw/push.err")"; fi
expect_match "registry stopped during the push: one line naming the ref" \
	"^(kiln|ERROR): .*$ref" "$(grep -E '^(kiln|ERROR):' "$rw/push.err")"
if priv_restart; then
	code=$(curl -s -o /dev/null -w '%{http_code}' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$PRIV_REG/v2/kiln-fault/push/manifests/t$$")
	expect_eq "registry back: the tag does not exist (no index, no partial manifest)" 404 "$code"
else
	not_ok "registry back: engine.sh up restarts it" "$(tail -n 10 "$tmp/priv-engine.log")"
fi
