# shellcheck shell=bash
# scripts/lib/image.sh - make small single-layer container images from a
# directory, deterministically (same input files, same digests).  Sourced by
# scripts/engine.sh.  Needs: GNU tar, gzip, jq, sha256sum (and registry.sh
# for the media types and reg_sha256).
#
# Functions return non-zero on failure and never exit.

# Fixed timestamp for everything inside the image: the layer's mtimes and the
# config's "created".  Keeps digests stable across rebuilds.
IMG_EPOCH=0
IMG_CREATED='1970-01-01T00:00:00Z'
# gzip level of the layers (9: smallest; 6 is about three times faster on a
# Debian root filesystem for 1% more bytes).  Part of the digests.
IMG_GZIP_LEVEL=9

# img_busybox_rootfs ROOT PKGDIR APPLET_LIST -> fills ROOT (made afresh)
# with /bin/busybox from PKGDIR (a busybox-static .deb extracted with
# `dpkg-deb -x`), one symlink to /bin/busybox per applet named in APPLET_LIST
# (a file with the output of `busybox --list-full`), the package's copyright
# file, a minimal /etc/passwd and /etc/group, and /tmp.
img_busybox_rootfs() {
	local root=$1 x=$2 list=$3
	[ -f "$x/bin/busybox" ] || {
		printf 'image: %s has no bin/busybox\n' "$x" >&2
		return 1
	}
	rm -rf -- "$root" || return 1
	# Every step checks its status: callers use `img_busybox_rootfs ... || die`,
	# and in that context `set -e` is ignored, even inside a subshell.
	(
		umask 022
		mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
			"$root/etc" "$root/root" "$root/tmp" "$root/var/tmp" \
			"$root/home" "$root/usr/share/doc/busybox-static" || exit 1
		cp "$x/bin/busybox" "$root/bin/busybox" || exit 1
		chmod 0755 "$root/bin/busybox" || exit 1
		cp "$x/usr/share/doc/busybox-static/copyright" \
			"$root/usr/share/doc/busybox-static/copyright" || exit 1
		chmod 0644 "$root/usr/share/doc/busybox-static/copyright" || exit 1
		while IFS= read -r applet; do
			case $applet in
			*/*) ;;
			*) continue ;; # "linuxrc" and the like: no directory, skip
			esac
			applet=${applet#/}
			[ "$applet" != bin/busybox ] || continue
			mkdir -p "$root/${applet%/*}" || exit 1
			ln -sfn /bin/busybox "$root/$applet" || exit 1
		done <"$list" || exit 1
		printf '%s\n' \
			'root:x:0:0:root:/root:/bin/sh' \
			'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
			'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
			>"$root/etc/passwd" || exit 1
		printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'tty:x:5:' \
			'nogroup:x:65534:' >"$root/etc/group" || exit 1
		chmod 0644 "$root/etc/passwd" "$root/etc/group" || exit 1
		chmod 0700 "$root/root" || exit 1
		chmod 1777 "$root/tmp" "$root/var/tmp" || exit 1
	)
}

# img_layer ROOT OUT.tar.gz -> writes a gzip layer of ROOT; prints
# "<diff_id> <digest> <size>" (diff_id: sha256 of the uncompressed tar).
# Deterministic: names sorted bytewise, fixed mtime, owner 0:0 numeric, GNU
# format (no pax atime/ctime records), gzip -n (no name or timestamp).
img_layer() {
	local root=$1 out=$2 tarf diff_id digest size
	tarf="${out%.gz}"
	[ "$tarf" != "$out" ] || tarf="$out.tar"
	(cd "$root" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) |
		tar -C "$root" --no-recursion --null -T - \
			--format=gnu --numeric-owner --owner=0 --group=0 \
			--mtime="@$IMG_EPOCH" -cf "$tarf" || return 1
	diff_id=$(reg_sha256 "$tarf") || return 1
	gzip -n "-$IMG_GZIP_LEVEL" -c "$tarf" >"$out" || return 1
	rm -f -- "$tarf"
	digest=$(reg_sha256 "$out") || return 1
	size=$(stat -c %s -- "$out") || return 1
	printf '%s %s %s\n' "$diff_id" "$digest" "$size"
}

# img_config OUT ARCH VARIANT DIFF_ID COMMENT [CMD] -> writes the image
# config JSON (compact, keys sorted) for os linux / ARCH (VARIANT may be
# empty); CMD is the command as a JSON array (default ["sh"]); "created" is
# $IMG_CREATED.
img_config() {
	jq -cnS \
		--arg arch "$2" --arg variant "$3" --arg diff "$4" \
		--arg created "$IMG_CREATED" --arg comment "$5" \
		--argjson cmd "${6:-[\"sh\"]}" '
		{
			architecture: $arch,
			os: "linux",
			created: $created,
			config: {
				Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
				Cmd: $cmd
			},
			rootfs: { type: "layers", diff_ids: [$diff] },
			history: [ { created: $created, created_by: $comment } ]
		}
		+ (if $variant == "" then {} else { variant: $variant } end)
	' >"$1"
}

# img_manifest OUT CONFIG_FILE LAYER_DIGEST LAYER_SIZE -> writes a Docker
# schema 2 image manifest for one config and one gzip layer.
img_manifest() {
	local cdigest csize
	cdigest=$(reg_sha256 "$2") || return 1
	csize=$(stat -c %s -- "$2") || return 1
	jq -cnS \
		--arg mt "$REG_MT_MANIFEST" --arg cmt "$REG_MT_CONFIG" \
		--arg lmt "$REG_MT_LAYER" --arg cd "$cdigest" \
		--argjson cs "$csize" --arg ld "$3" --argjson ls "$4" '
		{
			schemaVersion: 2,
			mediaType: $mt,
			config: { mediaType: $cmt, size: $cs, digest: $cd },
			layers: [ { mediaType: $lmt, size: $ls, digest: $ld } ]
		}' >"$1"
}

# img_index OUT ENTRY... -> writes a Docker manifest list; each ENTRY is
# "<manifest file>:<arch>:<variant>" (variant may be empty).
img_index() {
	local out=$1 entry file arch variant digest size manifests='[]'
	shift
	for entry in "$@"; do
		IFS=: read -r file arch variant <<<"$entry"
		digest=$(reg_sha256 "$file") || return 1
		size=$(stat -c %s -- "$file") || return 1
		manifests=$(jq -cn --argjson m "$manifests" --arg mt "$REG_MT_MANIFEST" \
			--arg d "$digest" --argjson s "$size" --arg a "$arch" \
			--arg v "$variant" '
			$m + [ {
				mediaType: $mt, size: $s, digest: $d,
				platform: ({ architecture: $a, os: "linux" }
					+ (if $v == "" then {} else { variant: $v } end))
			} ]') || return 1
	done
	jq -cnS --arg mt "$REG_MT_LIST" --argjson m "$manifests" \
		'{ schemaVersion: 2, mediaType: $mt, manifests: $m }' >"$out"
}
