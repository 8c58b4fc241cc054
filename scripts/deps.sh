#!/usr/bin/env bash
# Install every Debian package kiln and its tests need. Idempotent: runs
# apt-get only when something is missing. Debian 12 (bookworm), as root
# (or with sudo available).
set -euo pipefail

PKGS=(
	# build
	build-essential pkg-config
	liblua5.4-dev libyaml-dev libprotobuf-c-dev protobuf-c-compiler
	libgrpc-dev libarchive-dev
	libjansson-dev   # JSON: event stream, plans, Docker API (well kept, small)
	libcmocka-dev    # unit tests
	libxml2-dev      # tests/unit/test_trace.c parses the trace's SVG and HTML (tests only)
	libxml2-utils    # xmllint: trace_test.sh reads Chromium's DOM of the trace page
	libcurl4-openssl-dev  # HTTP for the Docker Engine API backend (well kept)
	libssl-dev       # libcrypto: base64, TLS keys for tcp:// BuildKit
	nettle-dev       # SHA-256 for digests (no set-up cost, unlike OpenSSL 3's EVP)
	zlib1g-dev       # gzip members of .apk packages (plugins/frontend-melange/apk.c)
	# apk-tools (tests/apk/run.sh) is not in Debian 12: those checks skip
	# unless APK= names an apk built from apk-tools' source
	# the local engine (scripts/engine.sh) and integration tests
	docker.io docker-registry qemu-user-static busybox-static
	debootstrap debian-archive-keyring  # the engine's debian:bookworm[-slim] images
	curl jq bc tmux valgrind
	apache2-utils    # htpasswd: a registry that wants a password (lua_publish_test.sh)
	clang libclang-rt-14-dev  # make fuzz: the libFuzzer targets (docs/reliability.md)
	openssh-client   # ssh-agent/ssh-keygen for the --ssh forwarding test
	pandoc           # the man page kiln.1 from docs/cli.md (make man / make install)
	zsh              # tests/install/run.sh runs the zsh completion function
	time             # GNU time: peak RSS in bench/, CPU seconds in bench/render.sh
	podman           # records Podman /build streams (tests/tty/engine/record.sh); tests replay the recordings
	aha chromium fonts-noto-color-emoji  # pictures of the tty view in docs/ (scripts/tty-screenshot.sh)
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
