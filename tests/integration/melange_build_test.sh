#!/usr/bin/env bash
# tests/integration/melange_build_test.sh: the melange frontend
# (plugins/frontend-melange, docs/melange.md) on the local engine. TAP.
#
#   1. every fixture of ../shared/fixtures/melange builds with
#      `kiln build FILE -o type=local,dest=DIR`; the melange-out trees have
#      the files, bytes, modes and symlinks melange's semantics give;
#   2. tests/melange/subpackages.yaml: subpackages in order, split/bin,
#      range (sorted), subpackage if: (quoted vars true, build.arch false),
#      sources synced from the file's directory;
#   3. the same file twice: the same definition digest (kiln print-llb, two
#      processes), and the second build is all CACHED;
#   4. no -o: the export goes to ./melange-out;
#   5. bad input (bad YAML, bad if:, unknown uses:, undefined ${{...}}):
#      FILE:LINE, exit 2, nothing exported;
#   6. a failing step: exit 1, the step's name and FILE:LINE, its exit
#      code and its last log lines; nothing exported; --debug-image TAG
#      holds the root before the failing step, runnable;
#   7. --arch aarch64 (QEMU): build.arch, uname -m and an arm64-only step;
#   8. packaging: next to each export, packages/<arch>/ holds one .apk per
#      package and subpackage (tar reads it; its tree, modes, links and
#      bytes are melange-out/<name>'s; .PKGINFO's fields) and an
#      APKINDEX.tar.gz listing them; the same build gives the same bytes;
#      a failed build leaves the packages; --signing-key signs both.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

need_engine
need_tools jq sha256sum

need_fixtures melange
T=tests/melange
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-melange.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# mbuild ARGS...: kiln build in $tmp/cwd; sets rc, out, err.
mkdir -p "$tmp/cwd"
mbuild() {
	out=$(cd "$tmp/cwd" && timeout 300 "$KILN" build --progress=plain "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}
# tree DIR: "path mode type [link-target] [sha256 of a regular file]" per entry
tree() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while read -r f; do
		if [ -L "$f" ]; then
			printf '%s %s l %s\n' "${f#./}" "$(stat -c %a "$f")" "$(readlink "$f")"
		elif [ -d "$f" ]; then
			printf '%s %s d\n' "${f#./}" "$(stat -c %a "$f")"
		else
			printf '%s %s f %s\n' "${f#./}" "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -c1-16)"
		fi
	done)
}
# expect_tree NAME DIR: DIR's tree equals the lines on stdin
expect_tree() { expect_eq "$1" "$(cat)" "$(tree "$2")"; }
h() { printf '%b' "$1" | sha256sum | cut -c1-16; } # h TEXT: a file's short hash (\n escapes)

# ---- 1. the fixtures -------------------------------------------------------------

abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$PWD" "$(basename "$1")"); }

mbuild "$(abs $FIX/synthetic-runs-basic.yaml)" -o "type=local,dest=$tmp/basic"
if [ $rc -eq 0 ]; then ok "synthetic-runs-basic builds"; else not_ok "synthetic-runs-basic builds" "$err"; fi
P=synthetic-runs-basic
S=$P/usr/share/$P
hello='#!/bin/sh\necho "hello from synthetic-runs-basic"\n'
expect_tree "synthetic-runs-basic: tree, modes and bytes" "$tmp/basic" <<EOF
$P 755 d
$P/etc 755 d
$P/etc/synthetic.conf 444 f $(h 'setting=1\n')
$P/usr 755 d
$P/usr/bin 755 d
$P/usr/bin/synthetic-hello 755 f $(h "$hello")
$P/usr/bin/synthetic-hi 777 l synthetic-hello
$P/usr/share 755 d
$S 755 d
$S/arch 644 f $(h 'x86_64\n')
$S/context-name 644 f $(h 'synthetic-runs-basic\n')
$S/default-workdir 644 f $(h '/home/build\n')
$S/epoch 644 f $(h '4\n')
$S/full-version 644 f $(h '1.2.3-r4\n')
$S/greeting 644 f $(h 'hello from environment\n')
$S/name 644 f $(h 'synthetic-runs-basic\n')
$S/version 644 f $(h '1.2.3\n')
EOF

mbuild "$(abs $FIX/synthetic-nested-workdir.yaml)" -o "type=local,dest=$tmp/nested"
if [ $rc -eq 0 ]; then ok "synthetic-nested-workdir builds"; else not_ok "synthetic-nested-workdir builds" "$err"; fi
P=synthetic-nested-workdir
W=$P/wd
expect_tree "synthetic-nested-workdir: tree and bytes" "$tmp/nested" <<EOF
$P 755 d
$P/usr 755 d
$P/usr/share 755 d
$P/usr/share/$P 755 d
$P/usr/share/$P/marker 644 f $(h 'created-in-place\n')
$W 755 d
$W/absolute 644 f $(h '/home/build/abs-dir\n')
$W/child-relative 644 f $(h '/home/build/child-rel\n')
$W/grandchild 644 f $(h '/home/build/level2\n')
$W/great-grandchild-override 644 f $(h '/home/build/level3\n')
$W/inherited 644 f $(h '/home/build/parent\n')
$W/order 644 f $(h 'parent\nchild1\ngrandchild\nchild2\nafter\n')
$W/overridden 644 f $(h '/home/build/child-override\n')
$W/relative 644 f $(h '/home/build/rel/dir\n')
EOF

mbuild "$(abs $FIX/synthetic-vars-env.yaml)" -o "type=local,dest=$tmp/vars"
if [ $rc -eq 0 ]; then ok "synthetic-vars-env builds"; else not_ok "synthetic-vars-env builds" "$err"; fi
P=synthetic-vars-env
S=$P/usr/share/synthetic
expect_tree "synthetic-vars-env: tree and bytes" "$tmp/vars" <<EOF
$P 755 d
$P/usr 755 d
$P/usr/share 755 d
$S 755 d
$S/cflags 644 f $(h '-O2 -pipe\n')
$S/greeting 644 f $(h 'hello\n')
$S/major-minor 644 f $(h '1.20\n')
$S/pkg-tag 644 f $(h 'synthetic-vars-env-1.20\n')
$S/underscored-version 644 f $(h '1_20_3\n')
EOF

# ---- 2. subpackages ----------------------------------------------------------------

mbuild "$(abs $T/subpackages.yaml)" -o "type=local,dest=$tmp/sub"
if [ $rc -eq 0 ]; then ok "subpackages.yaml builds"; else not_ok "subpackages.yaml builds" "$err"; fi
P=kiln-subpkg
expect_tree "subpackages: trees, split/bin, range, if:" "$tmp/sub" <<EOF
$P 755 d
$P-bin 755 d
$P-bin/usr 755 d
$P-bin/usr/bin 755 d
$P-bin/usr/bin/kiln-tool 750 f $(h '#!/bin/sh\necho kiln tool\n')
$P-bitter 755 d
$P-bitter/etc 755 d
$P-bitter/etc/flavour 644 f $(h 'bitter=hops in kiln-subpkg-bitter\n')
$P-doc 755 d
$P-doc/usr 755 d
$P-doc/usr/share 755 d
$P-doc/usr/share/doc 755 d
$P-doc/usr/share/doc/$P 755 d
$P-doc/usr/share/doc/$P/README 644 f $(h 'docs of kiln-subpkg\n')
$P-sweet 755 d
$P-sweet/etc 755 d
$P-sweet/etc/flavour 644 f $(h 'sweet=sugar in kiln-subpkg-sweet\n')
$P/usr 755 d
$P/usr/share 755 d
EOF
expect_match "subpackage steps run after the main ones, in order" \
	'kiln-subpkg 1/5.*kiln-subpkg-bin 2/5.*kiln-subpkg-doc 3/5.*kiln-subpkg-bitter 4/5.*kiln-subpkg-sweet 5/5' \
	"$(printf '%s\n' "$err" | grep -E '^#[0-9]+ \[kiln-subpkg' | tr '\n' ' ')"

# ---- 3. determinism and the cache -------------------------------------------------------

d1=$("$KILN" print-llb "$FIX/synthetic-runs-basic.yaml" | jq -r .digest)
basic=$(abs $FIX/synthetic-runs-basic.yaml)
d2=$(cd "$tmp/cwd" && "$KILN" print-llb "$basic" | jq -r .digest)
expect_match "print-llb prints a digest" '^sha256:[0-9a-f]{64}$' "$d1"
expect_eq "the same file gives the same digest in two processes" "$d1" "$d2"
d3=$("$KILN" print-llb --arch aarch64 "$FIX/synthetic-runs-basic.yaml" | jq -r .digest)
if [ "$d3" != "$d1" ]; then ok "another arch gives another digest"; else not_ok "another arch gives another digest"; fi
mbuild "$(abs $FIX/synthetic-runs-basic.yaml)" -o "type=local,dest=$tmp/basic2"
# every step vertex of the rebuild says CACHED (plain: "#N CACHED")
ran=$(printf '%s\n' "$err" | awk '/^#[0-9]+ \[synthetic-runs-basic [0-9]+\/7\]/ { v[$1] = 1 }
	/^#[0-9]+ CACHED/ { c[$1] = 1 } END { n = 0; for (k in v) if (!(k in c)) n++; print n }')
steps=$(printf '%s\n' "$err" | grep -cE '^#[0-9]+ \[synthetic-runs-basic [0-9]+/7\]' || true)
if [ $rc -eq 0 ] && [ "$steps" -ge 7 ] && [ "$ran" = 0 ]; then
	ok "a second build is all CACHED"
else
	not_ok "a second build is all CACHED" "rc=$rc steps=$steps not cached=$ran" "$err"
fi
expect_eq "the rebuild exports the same tree" "$(tree "$tmp/basic")" "$(tree "$tmp/basic2")"

# ---- 4. the default output ---------------------------------------------------------------

cp "$FIX/synthetic-vars-env.yaml" "$tmp/cwd/pkg.yaml"
mbuild pkg.yaml
if [ $rc -eq 0 ] && [ -f "$tmp/cwd/melange-out/synthetic-vars-env/usr/share/synthetic/pkg-tag" ]; then
	ok "without -o the export goes to ./melange-out"
else
	not_ok "without -o the export goes to ./melange-out" "$err"
fi
check "without -o the packages go to ./packages" \
	test -f "$tmp/cwd/packages/x86_64/synthetic-vars-env-1.20.3-r0.apk"
rm -rf "$tmp/cwd/melange-out" "$tmp/cwd/pkg.yaml" "$tmp/cwd/packages"

# ---- 5. bad input --------------------------------------------------------------------------

for c in "bad-yaml:6:bad YAML" "bad-if:6:bad if" "unknown-uses:5:unknown pipeline" \
	"undefined-var:6:undefined variable"; do
	name=${c%%:*} rest=${c#*:}
	line=${rest%%:*} what=${rest#*:}
	mbuild "$(abs $T/bad/$name.yaml)" -o "type=local,dest=$tmp/bad-$name"
	if [ $rc -eq 2 ] && printf '%s' "$err" | grep -q "$name.yaml:$line:.*$what" &&
		[ ! -e "$tmp/bad-$name" ]; then
		ok "$name: FILE:$line, exit 2, nothing exported"
	else
		not_ok "$name: FILE:$line, exit 2, nothing exported" "rc=$rc" "$err"
	fi
done
mbuild "$(abs $T/bad/undefined-var.yaml)" -o "type=local,dest=$tmp/bad-w"
expect_match "an unknown key is a warning with FILE:LINE" 'undefined-var.yaml:4: unknown key "frobnicate"' "$err"

# ---- 6. a failing step -----------------------------------------------------------------------

mkdir -p "$tmp/fail-dest" && echo keep > "$tmp/fail-dest/old"
pkgs_before=$(cd "$tmp/packages" && find . -type f | LC_ALL=C sort | xargs sha256sum)
mbuild "$(abs $T/failing-step.yaml)" -o "type=local,dest=$tmp/fail-dest"
expect_eq "a failing step exits 1" 1 "$rc"
expect_match "the failure names the step and its FILE:LINE" '\[x 2/2\] failing step \(failing-step.yaml:8\)' "$err"
expect_match "the failure gives the exit code" 'exit code: 7' "$err"
expect_match "the failure shows the log tail" 'line two' "$err"
expect_eq "a failed build leaves the destination as it was" "old keep" \
	"$(ls "$tmp/fail-dest" | tr '\n' ' ')$(cat "$tmp/fail-dest/old")"
expect_eq "a failed build leaves the packages as they were" "$pkgs_before" \
	"$(cd "$tmp/packages" && find . -type f | LC_ALL=C sort | xargs sha256sum)"

# --debug-image TAG: the root the failing step ran on, as an image
dbg_tag=kiln-test-debug:$$
mbuild "$(abs $T/debug-step.yaml)" --debug-image "$dbg_tag" -o "type=local,dest=$tmp/dbg-dest"
expect_eq "--debug-image: the build still fails, exit 1" 1 "$rc"
expect_match "--debug-image: says where the image is and which step" \
	"debug image $dbg_tag: the root filesystem .*break \\(debug-step.yaml:11\\)\" ran on" "$err"
expect_eq "--debug-image: the image holds the workspace before the failing step" \
	"made by step one|into destdir|no lost" \
	"$(/usr/bin/docker run --rm "$dbg_tag" sh -c 'cd /home/build && cat marker &&
		cat melange-out/dbg/usr/share/dbg && { test -e lost && echo lost || echo no lost; }' 2>&1 | paste -sd'|')"
/usr/bin/docker rmi -f "$dbg_tag" >/dev/null 2>&1
mbuild "$(abs $T/debug-step.yaml)" --debug-image "$dbg_tag" --platform linux/amd64,linux/arm64
expect_eq "--debug-image with two platforms: exit 2" 2 "$rc"
(cd "$tmp" && printf 'FROM scratch\n' > Dockerfile)
mbuild --debug-image "$dbg_tag" "$tmp"
expect_match "--debug-image with a Dockerfile: refused, exit 2" "rc=2 .*needs an LLB definition" "rc=$rc $err"

# ---- 7. arm64 ----------------------------------------------------------------------------------

mbuild "$(abs $T/arch.yaml)" --arch aarch64 -o "type=local,dest=$tmp/arm"
if [ $rc -eq 0 ]; then
	expect_eq "--arch aarch64: build.arch, goarch, triplet" "aarch64 arm64 aarch64-unknown-linux-gnu" "$(cat "$tmp/arm/kiln-arch/vars")"
	expect_eq "--arch aarch64: the steps run as aarch64" "aarch64" "$(cat "$tmp/arm/kiln-arch/uname")"
	check "--arch aarch64: the arm64-only step ran" test -f "$tmp/arm/kiln-arch/arm-only"
else
	not_ok "--arch aarch64 builds" "$err"
fi
mbuild "$(abs $T/arch.yaml)" --platform linux/amd64 -o "type=local,dest=$tmp/amd"
expect_eq "--platform linux/amd64: x86_64, no arm64-only step" "x86_64 amd64 x86_64-pc-linux-gnu x86_64 no" \
	"$(cat "$tmp/amd/kiln-arch/vars" "$tmp/amd/kiln-arch/uname" | tr '\n' ' ')$(test -f "$tmp/amd/kiln-arch/arm-only" && echo yes || echo no)"

# ---- 8. packaging --------------------------------------------------------------------------------

# pkginfo APK KEY: the values of KEY in the .apk's .PKGINFO, one a line
pkginfo() { tar -xzOf "$1" .PKGINFO 2>/dev/null | sed -n "s/^$2 = //p"; }
# apk_check NAME APK TREE ORIGIN: tar reads APK; its data is TREE's (paths,
# modes, types, link targets, bytes); every mtime is 0; .PKGINFO's size is
# TREE's; origin, arch
apk_check() {
	local x=$tmp/x/$1
	rm -rf "$x" && mkdir -p "$x"
	if ! tar -tzf "$2" >/dev/null 2>&1; then not_ok "$1: tar -tzf reads the .apk"; return; fi
	ok "$1: tar -tzf reads the .apk"
	tar -xpzf "$2" -C "$x" 2>/dev/null
	expect_eq "$1: .PKGINFO comes first" ".PKGINFO" "$(tar -tzf "$2" 2>/dev/null | grep -v '^\.SIGN' | head -1)"
	rm -f "$x/.PKGINFO"
	expect_eq "$1: the .apk holds melange-out/$1 (paths, modes, links, bytes)" "$(tree "$3")" "$(tree "$x")"
	expect_eq "$1: every mtime is the builddate (0)" "" \
		"$(tar -tzvf "$2" 2>/dev/null | grep -v ' 1970-01-01 00:00 ' || true)"
	local size
	size=$( (cd "$3" && find . -type f -printf '%s\n'; find . -type l -printf '%l\n' | tr -d '\n' | wc -c) |
		awk '{ n += $1 } END { print n + 0 }')
	expect_eq "$1: .PKGINFO name, origin, arch, size" "$1|$4|x86_64|$size" \
		"$(pkginfo "$2" pkgname)|$(pkginfo "$2" origin)|$(pkginfo "$2" arch)|$(pkginfo "$2" size)"
}
R=$tmp/packages/x86_64
b=$R/synthetic-runs-basic-1.2.3-r4.apk
apk_check synthetic-runs-basic "$b" "$tmp/basic/synthetic-runs-basic" synthetic-runs-basic
expect_eq "synthetic-runs-basic: pkgver, pkgdesc, license, depend" \
	"1.2.3-r4|synthetic: plain runs steps and built-in substitutions|Apache-2.0|busybox" \
	"$(pkginfo "$b" pkgver)|$(pkginfo "$b" pkgdesc)|$(pkginfo "$b" license)|$(pkginfo "$b" depend)"
expect_match "synthetic-runs-basic: datahash" '^[0-9a-f]{64}$' "$(pkginfo "$b" datahash)"
apk_check synthetic-nested-workdir "$R/synthetic-nested-workdir-2.0-r1.apk" \
	"$tmp/nested/synthetic-nested-workdir" synthetic-nested-workdir
apk_check synthetic-vars-env "$R/synthetic-vars-env-1.20.3-r0.apk" \
	"$tmp/vars/synthetic-vars-env" synthetic-vars-env
for n in kiln-subpkg kiln-subpkg-bin kiln-subpkg-doc kiln-subpkg-bitter kiln-subpkg-sweet; do
	apk_check $n "$R/$n-0.3.1-r0.apk" "$tmp/sub/$n" kiln-subpkg
done
check "a subpackage whose if: is false gets no .apk" test ! -e "$R/kiln-subpkg-never-0.3.1-r0.apk"
check "--arch aarch64 packages go to packages/aarch64" test -f "$tmp/packages/aarch64/kiln-arch-"*.apk
expect_eq "packages/aarch64/*.apk say arch = aarch64" aarch64 \
	"$(pkginfo "$(ls "$tmp/packages/aarch64/"*.apk | head -1)" arch)"
idx=$(tar -xzOf "$R/APKINDEX.tar.gz" APKINDEX 2>/dev/null | sed -n 's/^P://p' | LC_ALL=C sort | tr '\n' ' ')
expect_eq "APKINDEX lists every package of the directory" \
	"$(cd "$R" && ls *.apk | sed 's/-[^-]*-r[0-9]*\.apk$//' | LC_ALL=C sort | tr '\n' ' ')" "$idx"
expect_match "APKINDEX lists the fixtures and subpackages" \
	'kiln-subpkg kiln-subpkg-bin kiln-subpkg-bitter kiln-subpkg-doc kiln-subpkg-sweet .*synthetic-nested-workdir synthetic-runs-basic synthetic-vars-env' "$idx"
mbuild "$(abs $FIX/synthetic-runs-basic.yaml)" -o "type=local,dest=$tmp/again/out"
check "the same build gives the same .apk bytes" cmp "$b" "$tmp/again/packages/x86_64/synthetic-runs-basic-1.2.3-r4.apk"
openssl genrsa -out "$tmp/melange.rsa" 2048 2>/dev/null
mbuild "$(abs $FIX/synthetic-runs-basic.yaml)" --signing-key "$tmp/melange.rsa" -o "type=local,dest=$tmp/signed/out"
expect_eq "--signing-key: the .apk and the index start with .SIGN.RSA256.melange.rsa.pub" \
	".SIGN.RSA256.melange.rsa.pub .SIGN.RSA256.melange.rsa.pub" \
	"$(tar -tzf "$tmp/signed/packages/x86_64/synthetic-runs-basic-1.2.3-r4.apk" 2>/dev/null | head -1) $(tar -tzf "$tmp/signed/packages/x86_64/APKINDEX.tar.gz" 2>/dev/null | head -1)"
mbuild "$(abs $FIX/synthetic-runs-basic.yaml)" --signing-key "$tmp/nonexistent.rsa" -o "type=local,dest=$tmp/badkey/out"
if [ $rc -ne 0 ] && [ ! -e "$tmp/badkey/packages/x86_64" ]; then
	ok "a missing signing key fails the build and writes no packages"
else
	not_ok "a missing signing key fails the build and writes no packages" "rc=$rc" "$err"
fi

tap_done
