# shellcheck shell=bash
# scripts/lib/debian.sh - make a Debian base root filesystem the way Debian's
# own container images are made (debootstrap --variant=minbase, the
# container-friendly apt/dpkg settings, sources on deb.debian.org) and its
# "slim" variant (docs, man pages and locales dropped, and kept out by dpkg
# path-exclude rules).  Sourced by scripts/engine.sh; the layer tarball is
# made with img_layer from image.sh.  Needs: debootstrap, unshare, chroot,
# the debian-archive-keyring.  Runs as root.
#
# Functions return non-zero on failure and never exit.

DEB_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
DEB_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# deb_apt_sources -> prints "URI SUITE" for every enabled "deb" source of
# the machine's apt: one-line entries in sources.list and sources.list.d/
# *.list, and deb822 paragraphs in sources.list.d/*.sources.
deb_apt_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) {
				while (i <= NF && $i !~ /\]$/) i++
				i++
			}
			if (i + 1 <= NF) print $i, $(i + 1)
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; enabled = "yes"; key = ""
			for (l = 1; l <= NF; l++) {
				line = $l
				if (line ~ /^#/) continue
				if (line ~ /^[ \t]/) {          # continuation line
					val = line
				} else {
					key = tolower(line); sub(/:.*/, "", key)
					val = line; sub(/^[^:]*:/, "", val)
				}
				if (key == "types") types = types " " val
				else if (key == "uris") uris = uris " " val
				else if (key == "suites") suites = suites " " val
				else if (key == "enabled") enabled = val
			}
			gsub(/[ \t]+/, " ", enabled); gsub(/ /, "", enabled)
			if (enabled == "no" || (" " types " ") !~ /[ \t]deb[ \t]/) next
			nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
			for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
				if (u[i] != "" && s[j] != "") print u[i], s[j]
		}' "$f"
	done
}

# deb_apt_mirror SUITE -> prints the URI (no trailing /) of the first source
# of the machine's apt that serves SUITE ("bookworm", "bookworm-security"),
# nothing if none does.
deb_apt_mirror() {
	deb_apt_sources 2>/dev/null | awk -v s="$1" '$2 == s { sub(/\/+$/, "", $1); print $1; exit }'
}

# deb_chroot ROOT COMMAND... -> runs COMMAND in ROOT with /proc mounted, in a
# private mount namespace (the mount goes away with the command, even when
# it is killed), with a clean environment.
deb_chroot() {
	local root=$1
	shift
	# shellcheck disable=SC2016 # the script expands its own arguments
	unshare --mount --propagation private --fork -- /bin/sh -c '
		root=$1
		shift
		mount -t proc proc "$root/proc" || exit 1
		exec chroot "$root" /usr/bin/env -i PATH="$0" HOME=/root LC_ALL=C \
			DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
	' "$DEB_PATH" "$root" "$@"
}

# deb_sources_file OUT SUITE MIRROR SECURITY_MIRROR -> writes a deb822
# sources file: SUITE and SUITE-updates from MIRROR, SUITE-security from
# SECURITY_MIRROR, component main, signed by the Debian archive keyring.
deb_sources_file() {
	printf '%s\n' \
		'Types: deb' \
		"URIs: $3" \
		"Suites: $2 $2-updates" \
		'Components: main' \
		"Signed-By: $DEB_KEYRING" \
		'' \
		'Types: deb' \
		"URIs: $4" \
		"Suites: $2-security" \
		'Components: main' \
		"Signed-By: $DEB_KEYRING" >"$1"
}

# deb_container_config ROOT -> the settings Debian's container images carry
# for apt and dpkg: no service starts in RUN steps (policy-rc.d), no fsync
# by dpkg, apt's package cache emptied after every install ("docker-clean",
# the file Docker's docs tell cache-mount users to remove), compressed
# package lists, no translations, and autoremove that also drops packages
# only kept by a Suggests.
deb_container_config() {
	local r=$1
	(
		umask 022
		cat >"$r/usr/sbin/policy-rc.d" <<'EOF' || exit 1
#!/bin/sh
# Written by kiln's scripts/engine.sh, as in Debian's container images:
# packages installed in a container build must not start services.
exit 101
EOF
		chmod 0755 "$r/usr/sbin/policy-rc.d" || exit 1
		cat >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF' || exit 1
# Container builds are thrown away on failure: dpkg need not fsync.
force-unsafe-io
EOF
		cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF' || exit 1
# Keeps image layers small: the downloaded .debs and apt's binary caches
# are deleted after every dpkg run and every "apt-get update".
# To keep downloads in a build cache mount on /var/cache/apt, delete this
# file and set Binary::apt::APT::Keep-Downloaded-Packages "true".
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
		cat >"$r/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF' || exit 1
# Package lists stay compressed on disk (smaller "apt-get update" layers).
Acquire::GzipIndexes "true";
EOF
		cat >"$r/etc/apt/apt.conf.d/docker-no-languages" <<'EOF' || exit 1
# No Translation-* files: faster "apt-get update".
Acquire::Languages "none";
EOF
		cat >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF' || exit 1
# "apt-get purge --auto-remove" also removes packages that another package
# only suggests.
Apt::AutoRemove::SuggestsImportant "false";
EOF
		chmod 0644 "$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" \
			"$r"/etc/apt/apt.conf.d/docker-* || exit 1
	)
}

# deb_epoch ROOT -> prints the newest Date of the Release files apt holds in
# ROOT (seconds since 1970): when the archive state the rootfs was made
# from was published.
deb_epoch() {
	local f d e max=0
	for f in "$1"/var/lib/apt/lists/*Release; do
		[ -f "$f" ] || continue
		d=$(sed -n 's/^Date: //p' "$f" | head -n 1)
		[ -n "$d" ] || continue
		e=$(date -u -d "$d" +%s) || continue
		[ "$e" -le "$max" ] || max=$e
	done
	[ "$max" -gt 0 ] || return 1
	printf '%s\n' "$max"
}

# deb_rootfs ROOT SUITE ARCH MIRROR SECURITY_MIRROR DEBCACHE EPOCH_OUT LOG ->
# makes ROOT (must not exist): debootstrap --variant=minbase of SUITE for
# ARCH from MIRROR (downloaded .debs kept in DEBCACHE), the container
# settings, a full-upgrade from SUITE, -updates and -security (MIRROR,
# SECURITY_MIRROR), every package marked automatically installed (as in
# Debian's images, so "apt-mark showmanual" starts empty), then the final
# apt sources on deb.debian.org.  Logs, apt's caches and lists and other
# per-run files are removed; the archive's date goes to EPOCH_OUT.
# Command output goes to LOG.
deb_rootfs() {
	local root=$1 suite=$2 arch=$3 mirror=$4 secmirror=$5 debcache=$6
	local epoch_out=$7 log=$8 epoch
	[ ! -e "$root" ] || {
		printf 'debian: %s already exists\n' "$root" >&2
		return 1
	}
	mkdir -p "$debcache" || return 1
	# debootstrap mounts /proc and /sys in ROOT: in a namespace of its own,
	# they cannot outlive it.
	if ! unshare --mount --propagation private --fork -- \
		debootstrap --variant=minbase --arch="$arch" --force-check-gpg \
		--keyring="$DEB_KEYRING" --cache-dir="$debcache" \
		"$suite" "$root" "$mirror" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		[ ! -f "$root/debootstrap/debootstrap.log" ] ||
			tail -n 20 "$root/debootstrap/debootstrap.log" >&2
		printf 'debian: debootstrap %s (%s) from %s failed\n' "$suite" "$arch" "$mirror" >&2
		return 1
	fi
	deb_container_config "$root" || return 1
	rm -f "$root/etc/apt/sources.list" || return 1
	mkdir -p "$root/etc/apt/sources.list.d" || return 1
	deb_sources_file "$root/etc/apt/sources.list.d/debian.sources" \
		"$suite" "$mirror" "$secmirror" || return 1
	if ! deb_chroot "$root" apt-get -q update >>"$log" 2>&1 ||
		! deb_chroot "$root" apt-get -q -y \
			-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
			full-upgrade >>"$log" 2>&1 ||
		! deb_chroot "$root" apt-mark auto '.*' >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		printf 'debian: apt-get full-upgrade in the new rootfs failed\n' >&2
		return 1
	fi
	epoch=$(deb_epoch "$root") || {
		printf 'debian: no Release file with a Date in %s/var/lib/apt/lists\n' "$root" >&2
		return 1
	}
	deb_sources_file "$root/etc/apt/sources.list.d/debian.sources" "$suite" \
		http://deb.debian.org/debian http://deb.debian.org/debian-security || return 1
	(
		umask 022
		# the host's, copied by debootstrap; the engine mounts its own
		printf 'localhost\n' >"$root/etc/hostname" || exit 1
		: >"$root/etc/resolv.conf" || exit 1
		chmod 0644 "$root/etc/hostname" "$root/etc/resolv.conf" || exit 1
	) || return 1
	chmod 0644 "$root/etc/apt/sources.list.d/debian.sources" || return 1
	# Per-run files: logs, caches, lists (apt recreates what it needs),
	# the machine id (a container has never booted), the host kernel's name
	# (01autoremove-kernels), the device nodes (the engine makes /dev).
	rm -rf "$root/var/cache/apt/"* "$root/var/lib/apt/lists/"* \
		"$root/var/log/dpkg.log" "$root/var/log/bootstrap.log" \
		"$root/var/log/alternatives.log" "$root/var/log/apt/"*.log \
		"$root/var/cache/ldconfig/aux-cache" "$root/var/cache/debconf/"*-old \
		"$root/var/lib/dpkg/"*-old \
		"$root/etc/machine-id" "$root/etc/apt/apt.conf.d/01autoremove-kernels" \
		"$root/debootstrap" "$root/run/mount/utab" || return 1
	find "$root/dev" "$root/proc" "$root/sys" "$root/tmp" \
		-mindepth 1 -xdev -delete || return 1
	mkdir -p "$root/var/lib/apt/lists/partial" "$root/var/cache/apt/archives/partial" ||
		return 1
	if ! chown 0:0 "$root" || ! chmod 0755 "$root"; then return 1; fi
	printf '%s\n' "$epoch" >"$epoch_out"
}

# Paths the slim variant leaves out (dpkg path-exclude globs), and the ones
# it keeps below them anyway (path-include): the facts are Debian's
# (debuerreotype's slimify lists), the code is ours.
DEB_SLIM_EXCLUDE=(
	'/usr/share/doc/*'
	'/usr/share/groff/*'
	'/usr/share/info/*'
	'/usr/share/linda/*'
	'/usr/share/lintian/overrides/*'
	'/usr/share/locale/*'
	'/usr/share/man/*'
)
DEB_SLIM_INCLUDE=(
	'/usr/share/doc/*/copyright'
	'/usr/share/doc/kde/HTML/C/*'
	'/usr/share/gnome/help/*/C/*'
	'/usr/share/locale/all_languages'
	'/usr/share/locale/currency/*'
	'/usr/share/locale/l10n/*'
	'/usr/share/locale/languages'
	'/usr/share/locale/locale.alias'
	'/usr/share/omf/*/*-C.emf'
)

# deb_slimify ROOT -> turns ROOT into the slim variant: writes
# /etc/dpkg/dpkg.cfg.d/docker (path-exclude/path-include rules, so packages
# installed later stay slim too) and deletes what those rules exclude from
# the packages already there: files first, then, until nothing changes,
# dangling symlinks and empty directories.  find runs inside ROOT, so that
# absolute symlinks resolve there.
deb_slimify() {
	local root=$1 p dir incl=() removed
	for p in "${DEB_SLIM_INCLUDE[@]}"; do
		[ "${#incl[@]}" = 0 ] || incl+=(-o)
		incl+=(-path "$p")
	done
	{
		printf '%s\n' \
			'# The "slim" variant of this Debian image (made by kiln scripts/engine.sh):' \
			'# documentation, manual pages and translations are not installed.' \
			'# Delete this file to get them with the packages installed from now on.' ''
		printf 'path-exclude %s\n' "${DEB_SLIM_EXCLUDE[@]}"
		printf 'path-include %s\n' "${DEB_SLIM_INCLUDE[@]}"
	} >"$root/etc/dpkg/dpkg.cfg.d/docker" || return 1
	chmod 0644 "$root/etc/dpkg/dpkg.cfg.d/docker" || return 1
	for p in "${DEB_SLIM_EXCLUDE[@]}"; do
		dir=${p%/\*}
		[ -d "$root$dir" ] || continue
		deb_chroot "$root" find "$dir" -mindepth 1 ! -type d ! -type l \
			! \( "${incl[@]}" \) -delete || return 1
		while :; do
			removed=$(deb_chroot "$root" find "$dir" -depth -mindepth 1 \
				\( -xtype l -o -type d -empty \) -print -delete | wc -l) || return 1
			[ "$removed" -gt 0 ] || break
		done
	done
}
