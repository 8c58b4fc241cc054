#!/usr/bin/env bash
# `make install` into a DESTDIR, then build the out-of-tree plugin template
# against the installed kiln-plugin.pc and load it with the installed kiln.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/kiln-test

# SANITIZE must match the build being installed, or make would rebuild it.
san=0; case "$BUILD" in *asan*) san=1 ;; esac
check "make install PREFIX DESTDIR" make -s install BUILD="$BUILD" SANITIZE=$san \
	PREFIX=$prefix DESTDIR="$tmp/root"
root=$tmp/root$prefix
for f in bin/kiln include/kiln/kiln.h include/kiln/plugin.h include/kiln/event.h \
	lib/pkgconfig/kiln-plugin.pc lib/kiln/plugins/renderer-plain.so; do
	if [ -e "$root/$f" ]; then ok "installed $f"; else not_ok "installed $f"; fi
done

export PKG_CONFIG_PATH=$root/lib/pkgconfig
expect_eq "kiln-plugin.pc names the plugin dir" "$prefix/lib/kiln/plugins" \
	"$(pkg-config --variable=plugindir kiln-plugin)"
cp -r scripts/plugin-template "$tmp/tpl"
# The .pc file has the final prefix; point the compiler at the DESTDIR copy.
check "template plugin builds out of tree" make -s -C "$tmp/tpl" \
	CFLAGS="-O2 -Wall -Wextra -Werror -I$root/include"
cp "$tmp/tpl/renderer-hello.so" "$root/lib/kiln/plugins/"

# The installed kiln finds its plugins relative to itself (../lib/kiln/plugins).
out=$(HOME=$tmp KILN_PLUGIN_PATH= "$root/bin/kiln" plugins 2>&1); rc=$?
expect_eq "installed kiln plugins exits 0" 0 "$rc"
expect_match "installed kiln lists the built-in plain renderer" \
	"plain +renderer .* $root/lib/kiln/plugins/renderer-plain.so" "$out"
expect_match "installed kiln lists the out-of-tree plugin" "hello +renderer +0\.1" "$out"
printf '%s\n' \
 '{"schema":1,"type":"job.started","time":"2026-01-01T00:00:00Z","job":{"id":"j","target":"app","platform":"","builder":"b","number":1}}' \
 '{"schema":1,"type":"job.finished","time":"2026-01-01T00:00:01Z","job":{"id":"j","target":"app","platform":"","builder":"b","number":1},"status":0}' \
 > "$tmp/events.jsonl"
out=$(HOME=$tmp "$root/bin/kiln" replay --progress=hello "$tmp/events.jsonl" 2>&1)
expect_eq "out-of-tree renderer renders" "hello: app done (0 steps, 0 cached)" "$out"
tap_done
