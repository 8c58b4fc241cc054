/* registry.h: image references and a small client of the registry HTTP API
 * (OCI distribution spec v1.1, "Pulling manifests" / "Pushing manifests";
 * Docker's token authentication), enough for kiln to write an image
 * index. Internal (kiln__ prefix). */
#ifndef KILN_REGISTRY_H
#define KILN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

/* A parsed, normalised image reference, as docker's reference package
 * normalises names: "busybox" -> docker.io/library/busybox:latest,
 * "localhost:5000/a/b:1" -> host localhost:5000, repo a/b, tag 1. Every
 * string is owned (kiln__ref_release). */
struct kiln_ref {
	char *host;   /* "docker.io", "127.0.0.1:5000" */
	char *repo;   /* "library/busybox" */
	char *tag;    /* "latest" when none was given and there is no digest */
	char *digest; /* "sha256:…", or NULL */
};

/* Parse s. Returns 0, or KILN_E_INVALID naming s (upper case in the
 * repository, an empty component, a bad tag or digest). */
int kiln__ref_parse(const char *s, struct kiln_ref *out, struct kiln_err *err);
void kiln__ref_release(struct kiln_ref *r);
/* "HOST/REPO:TAG" (or "@DIGEST"), malloc'd. */
char *kiln__ref_string(const struct kiln_ref *r);

/* One challenge of a WWW-Authenticate header ("Bearer realm=…,service=…,
 * scope=…" or "Basic realm=…"). Strings malloc'd; NULL when absent. */
struct kiln_auth_challenge {
	char *scheme; /* "bearer" or "basic" (lower case) */
	char *realm, *service, *scope;
};
/* Parse the first challenge of header value v. Returns 0 or
 * KILN_E_PROTOCOL (no scheme). */
int kiln__auth_challenge_parse(const char *v, struct kiln_auth_challenge *out,
			       struct kiln_err *err);
void kiln__auth_challenge_release(struct kiln_auth_challenge *c);

/* A client of one registry host. Plain HTTP when the host is localhost,
 * 127.0.0.0/8 or ::1, or when insecure is set (buildx's
 * registry.insecure=true); HTTPS with the system's CAs otherwise.
 * Credentials: kiln__docker_credentials(host), asked on the first 401;
 * a Bearer token is fetched from the challenge's realm with them (or
 * anonymously) and reused for the repository. */
struct kiln_registry;
struct kiln_registry *kiln__registry_new(const char *host, bool insecure);
void kiln__registry_free(struct kiln_registry *r);

/* What the registry says about a manifest. */
struct kiln_manifest_info {
	char digest[72];
	char media_type[128];
	uint64_t size;
};
/* HEAD /v2/REPO/manifests/REFERENCE (a tag or digest), accepting OCI and
 * Docker manifests and indexes. Returns 0, KILN_E_NOTFOUND (404),
 * KILN_E_DENIED (401/403 after authenticating), KILN_E_CONNECT (no
 * answer; the message names the URL) or KILN_E_PROTOCOL. */
int kiln__registry_manifest_head(struct kiln_registry *r, const char *repo,
				 const char *reference, struct kiln_manifest_info *out,
				 struct kiln_err *err);
/* PUT /v2/REPO/manifests/REFERENCE with body (len bytes) of media type
 * mt. *out gets the body's digest (checked against the registry's
 * Docker-Content-Digest when it sends one), mt and len. Errors as
 * above. */
int kiln__registry_manifest_put(struct kiln_registry *r, const char *repo,
				const char *reference, const char *mt, const char *body,
				size_t len, struct kiln_manifest_info *out, struct kiln_err *err);

/* The media types kiln writes and reads. */
#define KILN_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define KILN_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define KILN_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KILN_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"

/* One platform's manifest, for an index. */
struct kiln_index_entry {
	const char *platform; /* "linux/arm64/v8" */
	struct kiln_manifest_info m;
};
/* The image index for entries: a Docker manifest list when every entry is
 * a Docker manifest, else an OCI image index (image-spec image-index.md).
 * *mt is a static string; the JSON is malloc'd, stable key order. */
char *kiln__index_json(const struct kiln_index_entry *e, size_t n, const char **mt);

#endif
