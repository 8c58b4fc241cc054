#!/usr/bin/env bash
# tests/integration/melange_lua_test.sh: melange build files as kiln.lua
# targets (docs/melange.md) on the local engine. TAP.
#
#   1. a matrix of 2 packages x 2 platforms (linux/amd64, linux/arm64
#      under QEMU), all exporting under out/, built at -j 4: four
#      melange-out trees, and out/packages/<arch>/ holds both packages'
#      .apk files (arch in .PKGINFO) and an APKINDEX listing both;
#   2. frontend = "melange" picks the frontend whatever the file is called;
#      a target with two platforms exports to DEST/<os>_<arch> and packages
#      to DEST/packages/<arch>.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

need_engine
need_tools tar

need_fixtures melange
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-melange-lua.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
p=$tmp/proj
mkdir -p "$p"
cp "$FIX/synthetic-runs-basic.yaml" "$FIX/synthetic-vars-env.yaml" "$p/"
cp "$FIX/synthetic-nested-workdir.yaml" "$p/nested.build"

pkginfo() { tar -xzOf "$1" .PKGINFO 2>/dev/null | sed -n "s/^$2 = //p"; }

# ---- 1. the matrix ------------------------------------------------------------------------

cat > "$p/kiln.lua" <<'EOF2'
local names = {}
for _, m in ipairs(matrix {
  pkg = { "synthetic-runs-basic", "synthetic-vars-env" },
  arch = { "amd64", "arm64" },
}) do
  local n = m.pkg .. "-" .. m.arch
  target(n) {
    dockerfile = m.pkg .. ".yaml",
    platforms = { "linux/" .. m.arch },
    output = { "type=local,dest=out/" .. n },
  }
  names[#names + 1] = n
end
group "default" (names)
target "nested" {
  dockerfile = "nested.build",
  frontend = "melange",
  platforms = { "linux/amd64", "linux/arm64" },
  output = { "type=local,dest=two/melange-out" },
}
EOF2
kbuild_in "$p" --progress=plain -j 4
if [ $rc -eq 0 ]; then ok "2 packages x 2 platforms build at -j 4"; else not_ok "2 packages x 2 platforms build at -j 4" "$err"; fi
for pkg in synthetic-runs-basic synthetic-vars-env; do
	for a in amd64:x86_64 arm64:aarch64; do
		go=${a%%:*} apk=${a#*:}
		check "$pkg $go: melange-out exported" test -d "$p/out/$pkg-$go/$pkg"
		f=$(ls "$p/out/packages/$apk/$pkg"-*.apk 2>/dev/null | head -1)
		if [ -n "$f" ] && tar -tzf "$f" >/dev/null 2>&1; then
			expect_eq "$pkg $go: the .apk says pkgname, arch" "$pkg $apk" \
				"$(pkginfo "$f" pkgname) $(pkginfo "$f" arch)"
		else
			not_ok "$pkg $go: out/packages/$apk/$pkg-*.apk is there and reads"
		fi
	done
done
expect_eq "arm64 steps ran as aarch64" aarch64 \
	"$(cat "$p/out/synthetic-runs-basic-arm64/synthetic-runs-basic/usr/share/synthetic-runs-basic/arch")"
for apk in x86_64 aarch64; do
	expect_eq "packages/$apk/APKINDEX lists both packages" "synthetic-runs-basic synthetic-vars-env " \
		"$(tar -xzOf "$p/out/packages/$apk/APKINDEX.tar.gz" APKINDEX 2>/dev/null | sed -n 's/^P://p' | LC_ALL=C sort | tr '\n' ' ')"
done

# ---- 2. frontend = "melange", two platforms in one target ------------------------------------

kbuild_in "$p" --progress=plain nested
if [ $rc -eq 0 ]; then ok "frontend = \"melange\" builds nested.build"; else not_ok "frontend = \"melange\" builds nested.build" "$err"; fi
check "two platforms: DEST/linux_amd64 and DEST/linux_arm64" \
	test -d "$p/two/melange-out/linux_amd64/synthetic-nested-workdir" -a -d "$p/two/melange-out/linux_arm64/synthetic-nested-workdir"
check "two platforms: packages in DEST/packages/x86_64 and aarch64" \
	test -f "$p/two/melange-out/packages/x86_64/synthetic-nested-workdir-2.0-r1.apk" -a \
	-f "$p/two/melange-out/packages/aarch64/synthetic-nested-workdir-2.0-r1.apk"

tap_done
