/*
 * publish.c: a target's images into a registry (see publish.h).
 *
 * For each repository among the target's refs (their tags grouped):
 *
 *   1. each platform's image becomes a manifest in that repository:
 *      pushed from the engine's store through the backend's push() (on
 *      dockerd, whose moby exporter keeps one platform per image:
 *      POST /images/{id}/tag + /push, under the repository's first tag),
 *      or already pushed by digest by BuildKit's image exporter;
 *   2. HEAD /v2/REPO/manifests/DIGEST gives its media type and length as
 *      the registry has them;
 *   3. with several platforms, kiln writes the image index (a Docker
 *      manifest list when every manifest is a Docker one, else an OCI
 *      index) under every tag; with one, the other tags get the manifest
 *      too (pushed again: layers are not sent twice).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cli.h"
#include "publish.h"
#include "registry.h"
#include "util.h"

struct repo_group {
	struct kiln_ref first;       /* host, repo, first tag */
	const char **tags;           /* every tag for this repository */
	size_t n_tags;
};

static int push_one(const struct kiln_publish_image *im, const char *ref,
		    struct kiln_push_result *res, struct kiln_err *err)
{
	void *conn = NULL;
	int rc = kiln__backend_connect(im->pusher, im->copts, &conn, err);
	if (rc < 0)
		return rc;
	struct kiln_push req = { .struct_size = sizeof(req), .image = im->image, .ref = ref };
	*res = (struct kiln_push_result){ .struct_size = sizeof(*res) };
	rc = im->pusher->push(conn, &req, res, err);
	im->pusher->disconnect(conn);
	return rc;
}

static void add_line(struct kiln_publish_out *out, char *line)
{
	out->lines = kiln__xrealloc(out->lines, (out->n_lines + 1) * sizeof(*out->lines));
	out->lines[out->n_lines++] = line;
}

static int publish_repo(const struct kiln_publish_req *req, const struct repo_group *g,
			struct kiln_publish_out *out, struct kiln_err *err)
{
	struct kiln_registry *reg = kiln__registry_new(g->first.host, req->insecure);
	struct kiln_index_entry *entries = kiln__xcalloc(req->n_images, sizeof(*entries));
	char *first = kiln__ref_string(&g->first);
	int rc = 0;

	for (size_t i = 0; i < req->n_images && rc == 0; i++) {
		const struct kiln_publish_image *im = &req->images[i];
		const char *digest = im->digest;
		struct kiln_push_result pr;
		if (im->pusher) {
			if ((rc = push_one(im, first, &pr, err)) < 0)
				break;
			digest = pr.digest;
		}
		if (!digest) {
			rc = kiln__err(err, KILN_E_PROTOCOL, "target \"%s\": the build of %s gave "
				       "no manifest digest to publish", req->target,
				       im->platform ? im->platform : "the image");
			break;
		}
		size_t at = im->rank < req->n_images ? im->rank : i;
		entries[at].platform = im->platform ? im->platform : "";
		rc = kiln__registry_manifest_head(reg, g->first.repo, digest, &entries[at].m, err);
	}
	if (rc == 0 && req->index) {
		const char *mt;
		char *body = kiln__index_json(entries, req->n_images, &mt);
		for (size_t t = 0; t < g->n_tags && rc == 0; t++) {
			struct kiln_manifest_info put;
			rc = kiln__registry_manifest_put(reg, g->first.repo, g->tags[t], mt, body,
							 strlen(body), &put, err);
			if (rc == 0) {
				struct kiln_sb sb = KILN_SB_INIT;
				for (size_t i = 0; i < req->n_images; i++)
					kiln__sb_addf(&sb, "%s%s", i ? ", " : "", entries[i].platform);
				add_line(out, kiln__xasprintf("%s/%s:%s %s (%s: %s)", g->first.host,
							      g->first.repo, g->tags[t], put.digest,
							      strcmp(mt, KILN_MT_OCI_INDEX) == 0
								      ? "OCI image index"
								      : "manifest list",
							      kiln__sb_str(&sb)));
				kiln__sb_release(&sb);
			}
		}
		free(body);
	} else if (rc == 0) {
		/* one image: its manifest under each tag */
		for (size_t t = 0; t < g->n_tags && rc == 0; t++) {
			const struct kiln_publish_image *im = &req->images[0];
			if (t > 0 && im->pusher) {
				char *ref = kiln__xasprintf("%s/%s:%s", g->first.host, g->first.repo,
							    g->tags[t]);
				struct kiln_push_result pr;
				rc = push_one(im, ref, &pr, err);
				free(ref);
			}
			if (rc == 0)
				add_line(out, kiln__xasprintf("%s/%s:%s %s (manifest%s%s)",
							      g->first.host, g->first.repo,
							      g->tags[t], entries[0].m.digest,
							      entries[0].platform[0] ? ": " : "",
							      entries[0].platform));
		}
	}
	if (rc < 0 && !strstr(err->msg, first)) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		kiln__err(err, err->code, "publishing %s: %s", first, msg);
	}
	free(first);
	free(entries);
	kiln__registry_free(reg);
	return rc;
}

int kiln__publish(const struct kiln_publish_req *req, struct kiln_publish_out *out,
		  struct kiln_err *err)
{
	*out = (struct kiln_publish_out){ 0 };
	struct repo_group *groups = kiln__xcalloc(req->n_refs + 1, sizeof(*groups));
	size_t n_groups = 0;
	int rc = 0;
	for (size_t i = 0; i < req->n_refs && rc == 0; i++) {
		struct kiln_ref r;
		if ((rc = kiln__ref_parse(req->refs[i], &r, err)) < 0)
			break;
		if (r.digest) {
			rc = kiln__err(err, KILN_E_INVALID, "target \"%s\": cannot push to '%s', "
				       "a reference by digest", req->target, req->refs[i]);
			kiln__ref_release(&r);
			break;
		}
		size_t g = 0;
		while (g < n_groups && !(strcmp(groups[g].first.host, r.host) == 0 &&
					 strcmp(groups[g].first.repo, r.repo) == 0))
			g++;
		struct repo_group *gr = &groups[g];
		gr->tags = kiln__xrealloc(gr->tags, (gr->n_tags + 1) * sizeof(*gr->tags));
		gr->tags[gr->n_tags++] = kiln__xstrdup(r.tag);
		if (g == n_groups) {
			gr->first = r; /* the group owns it now */
			n_groups++;
		} else {
			kiln__ref_release(&r);
		}
	}
	for (size_t g = 0; g < n_groups && rc == 0; g++)
		rc = publish_repo(req, &groups[g], out, err);
	for (size_t g = 0; g < n_groups; g++) {
		for (size_t t = 0; t < groups[g].n_tags; t++)
			free((char *)groups[g].tags[t]);
		free(groups[g].tags);
		kiln__ref_release(&groups[g].first);
	}
	free(groups);
	return rc;
}

void kiln__publish_out_release(struct kiln_publish_out *out)
{
	for (size_t i = 0; i < out->n_lines; i++)
		free(out->lines[i]);
	free(out->lines);
	*out = (struct kiln_publish_out){ 0 };
}

/* ---- which builds push, and how their jobs export ------------------------------------ */

char *kiln__csv_value(const char *o, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = o; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && (p[kl] == '=' || p[kl] == ',' || !p[kl])) {
			const char *v = p[kl] == '=' ? p + kl + 1 : p + kl;
			return kiln__xasprintf("%.*s", (int)strcspn(v, ","), v);
		}
	}
	return NULL;
}

bool kiln__output_pushes(const char *o)
{
	if (!strchr(o, '='))
		return false; /* a bare path: type=local */
	char *type = kiln__csv_value(o, "type"), *push = kiln__csv_value(o, "push");
	bool r = type && (strcmp(type, "registry") == 0 ||
			  (strcmp(type, "image") == 0 && push &&
			   (!*push || strcmp(push, "true") == 0)));
	free(type);
	free(push);
	return r;
}

int kiln__publish_dest(const char *const *outputs, size_t n_outputs, const char *const *tags,
		       size_t n_tags, bool push_all, struct kiln_publish_dest *d)
{
	*d = (struct kiln_publish_dest){ 0 };
	bool pushes = push_all;
	for (size_t k = 0; k < n_outputs && !push_all; k++) {
		const char *o = outputs[k];
		if (!kiln__output_pushes(o))
			continue;
		pushes = true;
		char *name = kiln__csv_value(o, "name");
		char *insecure = kiln__csv_value(o, "registry.insecure");
		if (name && *name)
			kiln__strv_push(&d->refs, name);
		if (insecure && strcmp(insecure, "true") == 0)
			d->insecure = true;
		free(name);
		free(insecure);
	}
	if (!pushes)
		return 0;
	if (d->refs.n == 0)
		for (size_t k = 0; k < n_tags; k++)
			kiln__strv_push(&d->refs, tags[k]);
	if (d->refs.n == 0)
		return KILN_E_INVALID;
	const char *r0 = d->refs.v[0];
	const char *slash = strrchr(r0, '/');
	const char *colon = strrchr(slash ? slash : r0, ':');
	d->by_digest_name = colon ? kiln__xasprintf("%.*s", (int)(colon - r0), r0)
				  : kiln__xstrdup(r0);
	return 1;
}

void kiln__publish_dest_release(struct kiln_publish_dest *d)
{
	kiln__strv_release(&d->refs);
	free(d->by_digest_name);
	*d = (struct kiln_publish_dest){ 0 };
}

char *kiln__publish_job_output(const char *o, bool has_store, size_t n_platforms,
			       const char *by_digest_name)
{
	if (has_store)
		return kiln__xstrdup("type=image");
	if (n_platforms <= 1)
		return kiln__xstrdup(o);
	if (by_digest_name)
		return kiln__xasprintf("type=image,push=true,push-by-digest=true,name=%s",
				       by_digest_name);
	return kiln__xstrdup("type=image,push=true,push-by-digest=true");
}

static char native_arch[sizeof(((struct utsname *)0)->machine)];

static void native_arch_init(void)
{
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(native_arch, sizeof(native_arch), "%s",
			 strcmp(u.machine, "x86_64") == 0    ? "amd64"
			 : strcmp(u.machine, "aarch64") == 0 ? "arm64"
							      : u.machine);
}

bool kiln__platform_is_native(const char *platform)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, native_arch_init);
	const char *arch = platform && strchr(platform, '/') ? strchr(platform, '/') + 1 : NULL;
	return !arch || strncmp(arch, native_arch, strlen(native_arch)) == 0;
}
