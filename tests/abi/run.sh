#!/usr/bin/env bash
# Plugin-ABI tests: real test plugins (tests/abi/plugins/*.c, built to
# $BUILD/tests/abi/*.so) loaded by the real loader through build/kiln.
# Checks each refusal's one-line message and exit code (docs/plugins.md).
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
SO=$BUILD/tests/abi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A directory per case, so each run sees exactly one kind of trouble.
mkdir -p "$tmp"/{good,wrongabi,noentry,failing,dup}
cp "$SO/good.so" "$tmp/good/"
cp "$SO/wrong_abi.so" "$tmp/wrongabi/"
cp "$SO/no_entry.so" "$tmp/noentry/"
cp "$SO/failing_init.so" "$tmp/failing/"
cp "$SO/good.so" "$tmp/dup/a_good.so"
cp "$SO/dup_name.so" "$tmp/dup/b_dup.so"

run() { # run DIR ARGS...: sets out, err, rc
	out=$(KILN_PLUGIN_PATH=$1 "$KILN" "${@:2}" 2>"$tmp/stderr"); rc=$?
	err=$(cat "$tmp/stderr")
}
lines() { [ -z "$1" ] && echo 0 || printf '%s\n' "$1" | wc -l; }

run "$tmp/good" plugins
expect_eq "good plugin: kiln plugins exits 0" 0 "$rc"
expect_match "good plugin: listed with kind, version and path" \
	"abi-good +renderer +1\.2\.3 +$tmp/good/good.so" "$out"
expect_eq "good plugin: nothing on stderr" "" "$err"
expect_match "builtin renderers still found next to the binary" "plain +renderer" "$out"

printf '%s\n' '{"schema":1,"type":"job.started","time":"2026-01-01T00:00:00Z","job":{"id":"j","target":"t","platform":"","builder":"b","number":1}}' > "$tmp/one.jsonl"
run "$tmp/good" replay --progress=abi-good "$tmp/one.jsonl"
expect_eq "good plugin: its renderer runs (replay)" "abi-good: 1 events, 1 jobs" "$out"

run "$tmp/wrongabi" plugins
expect_eq "wrong ABI: kiln plugins exits 2" 2 "$rc"
expect_eq "wrong ABI: one line naming file and both versions" \
	"kiln: plugin $tmp/wrongabi/wrong_abi.so: built for kiln plugin ABI 2.0, this kiln has ABI 1.0" "$err"

run "$tmp/noentry" plugins
expect_eq "no entry symbol: exit 2" 2 "$rc"
expect_eq "no entry symbol: one line naming the file" \
	"kiln: plugin $tmp/noentry/no_entry.so: no kiln_plugin_init symbol (not a kiln plugin)" "$err"

run "$tmp/failing" plugins
expect_eq "failing init: exit 2" 2 "$rc"
expect_eq "failing init: one line with the plugin's own message" \
	"kiln: plugin $tmp/failing/failing_init.so: kiln_plugin_init returned an error: cannot find its configuration file" "$err"

run "$tmp/dup" plugins
expect_eq "duplicate name: exit 2" 2 "$rc"
expect_eq "duplicate name: second file refused, first named" \
	"kiln: plugin $tmp/dup/b_dup.so: renderer 'abi-good' is already provided by $tmp/dup/a_good.so" "$err"
expect_match "duplicate name: the first one stays loaded" "abi-good +renderer +1\.2\.3 +$tmp/dup/a_good.so" "$out"

# Other commands only warn about refused plugins and carry on.
run "$tmp/wrongabi:$tmp/noentry:$tmp/failing:$tmp/good" replay --progress=abi-good "$tmp/one.jsonl"
expect_eq "other commands: refused plugins are warnings, exit 0" 0 "$rc"
expect_eq "other commands: one warning line per refused plugin" 3 "$(lines "$err")"
expect_match "other commands: warnings are prefixed" "^kiln: warning: plugin $tmp/wrongabi/wrong_abi.so: built for" "$err"
expect_eq "other commands: the good plugin still works" "abi-good: 1 events, 1 jobs" "$out"

# Lazy loading: a command opens only the files of the plugin kinds it
# uses, told by the name's prefix; a file without one is always opened.
# Each file here is refused when opened, so a warning shows it was.
mkdir -p "$tmp/lazy" "$tmp/lint"
for f in backend-broken.so renderer-broken.so misc.so; do cp "$SO/no_entry.so" "$tmp/lazy/$f"; done
printf 'FROM scratch\n' >"$tmp/lint/Dockerfile"
run "$tmp/lazy" plugins
expect_eq "lazy: kiln plugins opens every file (3 refused)" 3 "$(printf '%s\n' "$err" | grep -c 'no kiln_plugin_init')"
run "$tmp/lazy" lint "$tmp/lint"
expect_eq "lazy: kiln lint exits 0" 0 "$rc"
expect_eq "lazy: kiln lint opens no backend or renderer, but the unprefixed file" \
	"kiln: warning: plugin $tmp/lazy/misc.so: no kiln_plugin_init symbol (not a kiln plugin)" \
	"$(printf '%s\n' "$err" | grep broken\\\|misc)"
run "$tmp/lazy" replay --progress=plain "$tmp/one.jsonl"
expect_eq "lazy: kiln replay opens renderers, not backends" \
	"$tmp/lazy/misc.so $tmp/lazy/renderer-broken.so" \
	"$(printf '%s\n' "$err" | sed -n 's/^kiln: warning: plugin \([^:]*\):.*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')"

# kiln build opens plugins one at a time as it needs them: the unprefixed
# file, frontend files in search order until one reads the input, the
# backend the engine rules name (backend-<name>.so), the renderer
# --progress names. Every other backend only when the name is not found.
cp "$SO/no_entry.so" "$tmp/lazy/frontend-broken.so"
opened() { printf '%s\n' "$err" | sed -n 's/^kiln: warning: plugin \([^:]*\):.*/\1/p' | tr '\n' ' ' | sed 's/ $//'; }
run "$tmp/lazy" build --check "$tmp/lint"
expect_eq "lazy build: --check exits 0" 0 "$rc"
expect_eq "lazy build: --check opens the unprefixed file and the frontends before dockerfile's" \
	"$tmp/lazy/misc.so $tmp/lazy/frontend-broken.so" "$(opened)"
run "$tmp/lazy" build --progress=plain --addr unix:///nonexistent/kiln-abi.sock "$tmp/lint"
expect_eq "lazy build: unreachable BuildKit address is exit 3" 3 "$rc"
expect_eq "lazy build: no other backend or renderer file is opened" \
	"$tmp/lazy/misc.so $tmp/lazy/frontend-broken.so" "$(opened)"
run "$tmp/lazy" build --backend nosuch "$tmp/lint"
expect_eq "lazy build: --backend with an unknown name is exit 2" 2 "$rc"
expect_eq "lazy build: an unknown backend name opens every backend file" \
	"$tmp/lazy/misc.so $tmp/lazy/backend-broken.so" "$(opened)"
expect_match "lazy build: and says no backend has that name" "no backend plugin is named 'nosuch'" "$err"
# libcurl and libarchive are opened on first use (core/lazylib.h), not at
# start-up: the dynamic loader's own log lists what it mapped.
maps=$(LD_DEBUG=files KILN_PLUGIN_PATH= "$KILN" build --check "$tmp/lint" 2>&1 >/dev/null | grep -o 'file=[^ ]*' | sort -u)
expect_match "lazy libs: kiln build --check maps the dockerfile frontend" "frontend-dockerfile.so" "$maps"
if printf '%s\n' "$maps" | grep -q 'libcurl\|libarchive\|frontend-melange\|backend-'; then
	not_ok "lazy libs: kiln build --check maps no libcurl, libarchive, melange frontend or backend" "$maps"
else ok "lazy libs: kiln build --check maps no libcurl, libarchive, melange frontend or backend"; fi
maps=$(LD_DEBUG=files KILN_PLUGIN_PATH= "$KILN" build --export-context "$tmp/ctx.tar" "$tmp/lint" 2>&1 >/dev/null | grep -o 'file=[^ ]*' | sort -u)
expect_match "lazy libs: --export-context opens libarchive when it writes the tar" "libarchive" "$maps"
expect_eq "lazy libs: the tar holds the context" "Dockerfile" "$(tar -tf "$tmp/ctx.tar" 2>&1)"

# The search path: never the current directory, and says where it looked.
cp "$SO/good.so" "$tmp/good-in-cwd.so"
out=$(cd "$tmp" && KILN_PLUGIN_PATH= "$KILN" plugins 2>&1); rc=$?
if printf '%s' "$out" | grep -q abi-good; then
	not_ok "current directory is not searched" "$out"
else ok "current directory is not searched"; fi
out=$(KILN_PLUGIN_PATH=/nonexistent "$KILN" plugins 2>&1); rc=$?
expect_eq "KILN_PLUGIN_PATH=/nonexistent: still works" 0 "$rc"
expect_match "KILN_PLUGIN_PATH=/nonexistent: says where it looked" "^  /nonexistent$" "$out"
out=$(KILN_PLUGIN_PATH="::$tmp/good::" "$KILN" plugins 2>&1)
expect_match "empty path components are skipped, others used" "abi-good" "$out"
if printf '%s' "$out" | grep -q '^  $'; then not_ok "no empty directory listed" "$out"; else ok "no empty directory listed"; fi

tap_done
