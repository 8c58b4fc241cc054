# shellcheck shell=bash
# scripts/lib/registry.sh - push blobs and manifests to a registry over the
# distribution HTTP API (v2) with curl.  Sourced by scripts/engine.sh; meant
# for a local, unauthenticated, plain-HTTP registry (the test engine's).
#
# Functions take the registry as "host:port" and a repository name such as
# "library/busybox".  They return non-zero (and print to stderr) on failure;
# they never exit, so callers decide.  Needs: curl, sha256sum.

# shellcheck disable=SC2034 # used by the scripts that source this file
# Media types (Docker schema 2; dockerd 20.10 and distribution 2.8 handle
# them everywhere, OCI types are accepted too but are not needed here).
REG_MT_MANIFEST='application/vnd.docker.distribution.manifest.v2+json'
REG_MT_LIST='application/vnd.docker.distribution.manifest.list.v2+json'
REG_MT_CONFIG='application/vnd.docker.container.image.v1+json'
REG_MT_LAYER='application/vnd.docker.image.rootfs.diff.tar.gzip'
REG_MT_OCI_MANIFEST='application/vnd.oci.image.manifest.v1+json'
REG_MT_OCI_INDEX='application/vnd.oci.image.index.v1+json'

# reg_sha256 FILE -> prints "sha256:<hex>"
reg_sha256() {
	local sum
	sum=$(sha256sum -- "$1") || return 1
	printf 'sha256:%s\n' "${sum%% *}"
}

# reg_file_size FILE -> prints the size in bytes
reg_file_size() {
	stat -c %s -- "$1"
}

# reg_ping REGISTRY -> 0 if GET /v2/ answers 200
reg_ping() {
	curl -fsS -o /dev/null --max-time 5 "http://$1/v2/" 2>/dev/null
}

# reg_blob_exists REGISTRY REPO DIGEST -> 0 if the repository has the blob
reg_blob_exists() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -I \
		"http://$1/v2/$2/blobs/$3") || return 1
	[ "$code" = 200 ]
}

# reg_push_blob REGISTRY REPO FILE -> uploads FILE unless present; prints digest
# Monolithic upload: POST /v2/<repo>/blobs/uploads/, then PUT <location>&digest=.
reg_push_blob() {
	local reg=$1 repo=$2 file=$3 digest hdrs location code
	digest=$(reg_sha256 "$file") || return 1
	if reg_blob_exists "$reg" "$repo" "$digest"; then
		printf '%s\n' "$digest"
		return 0
	fi
	hdrs=$(curl -sS -D - -o /dev/null --max-time 30 -X POST \
		-H 'Content-Length: 0' "http://$reg/v2/$repo/blobs/uploads/") || return 1
	location=$(printf '%s\n' "$hdrs" | tr -d '\r' |
		sed -n 's/^[Ll]ocation:[[:space:]]*//p' | tail -n 1)
	if [ -z "$location" ]; then
		printf 'registry: no upload location for %s (headers: %s)\n' \
			"$repo" "$hdrs" >&2
		return 1
	fi
	case $location in
	/*) location="http://$reg$location" ;;
	esac
	case $location in
	*\?*) location="$location&digest=$digest" ;;
	*) location="$location?digest=$digest" ;;
	esac
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 300 -X PUT \
		-H 'Content-Type: application/octet-stream' \
		--data-binary "@$file" "$location") || return 1
	if [ "$code" != 201 ]; then
		printf 'registry: blob upload of %s to %s failed: HTTP %s\n' \
			"$digest" "$repo" "$code" >&2
		return 1
	fi
	printf '%s\n' "$digest"
}

# reg_manifest_digest REGISTRY REPO REF ACCEPT -> prints the digest the
# registry reports for REF (a tag or digest), empty output if it has none.
reg_manifest_digest() {
	local hdrs
	hdrs=$(curl -sS -I -o /dev/null -D - --max-time 30 -H "Accept: $4" \
		"http://$1/v2/$2/manifests/$3" 2>/dev/null) || return 0
	case $(printf '%s\n' "$hdrs" | head -n 1) in
	*' 200'*) ;;
	*) return 0 ;;
	esac
	printf '%s\n' "$hdrs" | tr -d '\r' |
		sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest:[[:space:]]*//p' | tail -n 1
}

# reg_put_manifest REGISTRY REPO REF FILE MEDIATYPE -> PUT the manifest bytes
# of FILE as REF (tag or digest) unless REF already has that digest.
# Prints the digest.
reg_put_manifest() {
	local reg=$1 repo=$2 ref=$3 file=$4 mt=$5 digest have code
	digest=$(reg_sha256 "$file") || return 1
	have=$(reg_manifest_digest "$reg" "$repo" "$ref" "$mt")
	if [ "$have" = "$digest" ]; then
		printf '%s\n' "$digest"
		return 0
	fi
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 60 -X PUT \
		-H "Content-Type: $mt" --data-binary "@$file" \
		"http://$reg/v2/$repo/manifests/$ref") || return 1
	if [ "$code" != 201 ]; then
		printf 'registry: manifest PUT %s:%s failed: HTTP %s\n' \
			"$repo" "$ref" "$code" >&2
		return 1
	fi
	printf '%s\n' "$digest"
}

# reg_get_manifest REGISTRY REPO REF ACCEPT -> prints the manifest body
reg_get_manifest() {
	curl -fsS --max-time 30 -H "Accept: $4" "http://$1/v2/$2/manifests/$3"
}

# reg_get_blob REGISTRY REPO DIGEST -> prints the blob (follows redirects)
reg_get_blob() {
	curl -fsSL --max-time 60 "http://$1/v2/$2/blobs/$3"
}
