#!/usr/bin/env bash
# tests/integration/secrets_audit_test.sh: a build secret leaks nowhere
# kiln writes (issue 14 item 4, for what exists now). TAP.
#
# A secret value unique to the run, given as --secret id=tok,src=FILE and
# as --secret id=envtok,env=VAR, is used by a RUN step (mounted, hashed,
# never printed). After `kiln --debug build --progress=plain` and
# `--progress=json` of the single build and a kiln.lua build of a target
# with the same secrets, and `kiln print`: the value is in no stdout,
# stderr, JSON event stream, debug log, `kiln print` output, file of
# kiln's state directory (KILN_STATE_DIR) or exported output; the step
# really read it (the hash it printed matches).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
need_engine
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-secrets.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export KILN_STATE_DIR=$tmp/state
secret="kiln-secret-$$-$RANDOM$RANDOM"
envsecret="kiln-envsecret-$$-$RANDOM$RANDOM"
printf '%s' "$secret" >"$tmp/secret.txt"
export KILN_AUDIT_ENV=$envsecret
want_sum=$(printf '%s' "$secret" | sha256sum | cut -c1-64)
mkdir -p "$tmp/ctx"
cat >"$tmp/ctx/Dockerfile" <<'DF'
FROM busybox
ARG NONCE
RUN --mount=type=secret,id=tok --mount=type=secret,id=envtok \
    echo "nonce $NONCE" && sha256sum /run/secrets/tok && test -s /run/secrets/envtok && \
    cp /run/secrets/tok /tmp/x && rm /tmp/x && echo hashed > /done
FROM scratch
COPY --from=0 /done /done
DF
sargs=(--secret "id=tok,src=$tmp/secret.txt" --secret id=envtok,env=KILN_AUDIT_ENV)
"$KILN" --debug build --progress=plain --build-arg "NONCE=$$-$RANDOM" "${sargs[@]}" \
	-o "type=local,dest=$tmp/out1" "$tmp/ctx" >"$tmp/plain.out" 2>"$tmp/plain.err"
rc=$?
expect_eq "single build, --debug --progress=plain: exit 0" 0 "$rc"
expect_match "the step read the secret (its sha256 is printed)" "$want_sum" "$(cat "$tmp/plain.err")"
"$KILN" build --progress=json --build-arg "NONCE=$$-$RANDOM" "${sargs[@]}" \
	-o "type=tar,dest=$tmp/out2.tar" "$tmp/ctx" >"$tmp/json.out" 2>"$tmp/json.err"
expect_eq "single build, --progress=json: exit 0" 0 "$?"
cat >"$tmp/kiln.lua" <<LUA
target "app" {
  context = "ctx",
  args = { NONCE = "$$-plan" },
  secrets = { "id=tok,src=$tmp/secret.txt", "id=envtok,env=KILN_AUDIT_ENV" },
  output = { "type=local,dest=out3" },
}
group "default" { "app" }
LUA
(cd "$tmp" && "$KILN" --debug build --progress=plain) >"$tmp/plan.out" 2>"$tmp/plan.err"
expect_eq "kiln.lua build with secrets: exit 0" 0 "$?"
(cd "$tmp" && "$KILN" print) >"$tmp/print.out" 2>"$tmp/print.err"
expect_eq "kiln print: exit 0" 0 "$?"
for v in "$secret" "$envsecret"; do
	name=file; [ "$v" = "$envsecret" ] && name=env
	leaks=$(grep -rlaF --exclude=secret.txt -- "$v" "$tmp" 2>/dev/null)
	expect_eq "the $name secret is in no stdout, stderr, JSON stream, debug log, kiln print, state file or output" \
		"" "$leaks"
done
expect_match "the state dir was written (records exist to audit)" '.' \
	"$(find "$KILN_STATE_DIR" -type f 2>/dev/null | head -n 1)"
tap_done
