#!/usr/bin/env bash
# tests/apk/run.sh: packages from plugins/frontend-melange/apk.c (through
# $BUILD/tests/mkapk) as GNU tar and apk-tools see them. Standalone:
#   BUILD=build tests/apk/run.sh
# The apk-tools checks need an `apk` (2.12 or later): $APK, else `apk` on
# PATH; Debian 12 has no apk-tools package, so without one they are
# skipped. One built from apk-tools' source works:
#   make LUA=no && APK=$PWD/src/apk LD_LIBRARY_PATH=$PWD/src tests/apk/run.sh
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
MKAPK=$BUILD/tests/mkapk
[ -x "$MKAPK" ] || { echo "Bail out! $MKAPK is not built (make tests)"; exit 1; }
need_tools tar openssl cmp stat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
APK=${APK:-$(command -v apk || true)}
export SOURCE_DATE_EPOCH=1700000000

mk() { ${WRAP:-} "$MKAPK" "$@"; }

# The tree: an executable, a config file, a symlink, a hard link, a 0750
# directory; and a second package that depends on the first.
t=$tmp/tree
mkdir -p "$t/usr/bin" "$t/etc" "$t/var/lib/hello" "$tmp/tree2/usr/share/extra"
printf '#!/bin/sh\necho hello\n' > "$t/usr/bin/hello"
echo 'greeting = hi' > "$t/etc/hello.conf"
echo extra > "$tmp/tree2/usr/share/extra/README"
chmod 0755 "$t/usr/bin/hello"; chmod 0644 "$t/etc/hello.conf" "$tmp/tree2/usr/share/extra/README"
chmod 0750 "$t/var/lib/hello"
ln -s hello "$t/usr/bin/hi"
ln "$t/usr/bin/hello" "$t/usr/bin/hello-again"

check "mkapk writes an unsigned package" mk -r "$t" "$tmp/out" hello 1.0 0 x86_64
pkg=$tmp/out/x86_64/hello-1.0-r0.apk
list=$(tar -tzf "$pkg" 2>/dev/null | tr '\n' ' ')
expect_eq "tar -tzf reads control then data, sorted" \
	".PKGINFO etc etc/hello.conf usr usr/bin usr/bin/hello usr/bin/hello-again usr/bin/hi var var/lib var/lib/hello " \
	"$list"
long=$(tar -tvzf "$pkg" 2>/dev/null | awk '{print $1, $2, $6, $7, $8}' | tr '\n' '|')
expect_match "tar sees modes, owners and links" \
	'-rwxr-xr-x root/root usr/bin/hello  \|hrwxr-xr-x root/root usr/bin/hello-again link to\|lrwxrwxrwx root/root usr/bin/hi -> hello\|' "$long"
mk -r "$t" "$tmp/again" hello 1.0 0 x86_64 >/dev/null
check "the same tree twice gives the same bytes" cmp "$pkg" "$tmp/again/x86_64/hello-1.0-r0.apk"

mkdir -p "$tmp/keys"
openssl genrsa -out "$tmp/melange.rsa" 2048 2>/dev/null
openssl rsa -in "$tmp/melange.rsa" -pubout -out "$tmp/keys/melange.rsa.pub" 2>/dev/null
openssl genrsa -out "$tmp/other.rsa" 2048 2>/dev/null
repo=$tmp/repo
check "mkapk signs with RSA256" mk -r -k "$tmp/melange.rsa" "$t" "$repo" hello 1.0 0 x86_64
check "mkapk signs with RSA (SHA-1)" mk -r -1 -k "$tmp/melange.rsa" -d hello \
	"$tmp/tree2" "$repo" hello-extra 2.0 1 x86_64
expect_eq "signature comes first" ".SIGN.RSA256.melange.rsa.pub" \
	"$(tar -tzf "$repo/x86_64/hello-1.0-r0.apk" 2>/dev/null | head -n 1)"
check "mkapk --index writes a signed APKINDEX.tar.gz" \
	mk --index -k "$tmp/melange.rsa" "$repo/x86_64" "kiln test repository"
expect_eq "index holds the signature, DESCRIPTION, APKINDEX" \
	".SIGN.RSA256.melange.rsa.pub DESCRIPTION APKINDEX " \
	"$(tar -tzf "$repo/x86_64/APKINDEX.tar.gz" 2>/dev/null | tr '\n' ' ')"

if [ -z "$APK" ]; then
	for n in "apk verify: unsigned is UNTRUSTED" "apk add --allow-untrusted" \
		"installed modes and links" "apk audit --system" "apk verify --keys-dir" \
		"apk verify rejects another key" "apk verify rejects changed data" \
		"apk add from the signed index" "both packages installed"; do
		skip "$n" "no apk-tools (not in Debian 12; set APK=)"
	done
	tap_done
	exit
fi

out=$("$APK" verify "$pkg" 2>&1); rc=$?
expect_eq "apk verify: unsigned is UNTRUSTED" "$pkg: 0 - UNTRUSTED|1" "$out|$rc"
root=$tmp/root
mkdir "$root"
check "apk add --allow-untrusted" "$APK" add --root "$root" --initdb --allow-untrusted \
	--no-network --no-scripts --no-cache "$pkg"
modes=$(cd "$root" && stat -c '%a %U:%G %n' usr/bin/hello usr/bin/hello-again etc/hello.conf \
	var/lib/hello | tr '\n' '|')
links=$(readlink "$root/usr/bin/hi"):$(stat -c %i "$root/usr/bin/hello")
expect_eq "installed modes and links" \
	"755 root:root usr/bin/hello|755 root:root usr/bin/hello-again|644 root:root etc/hello.conf|750 root:root var/lib/hello|hello:$(stat -c %i "$root/usr/bin/hello-again")" \
	"$modes$links"
# every file's APK-TOOLS.checksum.SHA1 went into the database: a fresh
# install audits clean, an edited file does not
out=$("$APK" --root "$root" audit --system 2>&1)
echo changed >> "$root/usr/bin/hello"
out2=$("$APK" --root "$root" audit --system 2>&1)
expect_eq "apk audit --system" "|U usr/bin/hello U usr/bin/hello-again" \
	"$out|$(printf '%s\n' "$out2" | sort | tr '\n' ' ' | sed 's/ $//')"

out=$("$APK" verify --keys-dir "$tmp/keys" "$repo"/x86_64/*.apk 2>&1); rc=$?
expect_eq "apk verify --keys-dir" \
	"$repo/x86_64/hello-1.0-r0.apk: 0 - OK $repo/x86_64/hello-extra-2.0-r1.apk: 0 - OK |0" \
	"$(printf '%s' "$out" | tr '\n' ' ') |$rc"
mkdir -p "$tmp/other"
mk -r -k "$tmp/other.rsa" "$t" "$tmp/other" hello 1.0 0 x86_64 >/dev/null
out=$("$APK" verify --keys-dir "$tmp/keys" "$tmp/other/x86_64/hello-1.0-r0.apk" 2>&1); rc=$?
expect_match "apk verify rejects another key" "UNTRUSTED|FAILED" "$out rc=$rc"
# the signed control of one package before the data of another: datahash
# no longer matches
read -r _ sl cl _ < <(mk -r -k "$tmp/melange.rsa" "$t" "$tmp/a" hello 1.0 0 x86_64)
cp -r "$t" "$tmp/t3"; echo changed >> "$tmp/t3/etc/hello.conf"
read -r _ sl3 cl3 _ < <(mk -r -k "$tmp/melange.rsa" "$tmp/t3" "$tmp/c" hello 1.0 0 x86_64)
bad=$tmp/bad.apk
{ head -c $((sl + cl)) "$tmp/a/x86_64/hello-1.0-r0.apk"
  tail -c +$((sl3 + cl3 + 1)) "$tmp/c/x86_64/hello-1.0-r0.apk"; } > "$bad"
out=$("$APK" verify --keys-dir "$tmp/keys" "$bad" 2>&1); rc=$?
expect_match "apk verify rejects changed data" "BAD signature" "$out rc=$rc"

root2=$tmp/root2
mkdir "$root2"
check "apk add from the signed index" "$APK" add --root "$root2" --initdb \
	--keys-dir "$tmp/keys" --repository "$repo" --no-network --no-scripts --no-cache hello-extra
expect_eq "both packages installed" "hello-1.0-r0 hello-extra-2.0-r1 " \
	"$("$APK" --root "$root2" info -v 2>/dev/null | sort | tr '\n' ' ')"
tap_done
