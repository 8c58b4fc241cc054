/* publish.h: put a target's images in a registry under its tags: each
 * platform's manifest by digest, then, for several platforms, an image
 * index that kiln writes itself (buildx's push-by-digest followed by
 * `imagetools create`). Internal (kiln__ prefix). */
#ifndef KILN_PUBLISH_H
#define KILN_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/kiln.h>

/* One platform's image, as its job left it. */
struct kiln_publish_image {
	const char *platform;                   /* "linux/arm64"; NULL: engine default */
	const struct kiln_backend *pusher;      /* pushes from the engine's image store
						 * (Docker API); NULL: the exporter
						 * already pushed it by digest */
	const struct kiln_connect_opts *copts;  /* the engine that holds it */
	const char *image;                      /* image ID there (pusher) */
	const char *digest;                     /* manifest digest (no pusher) */
	size_t rank;                            /* its place in the index (the
						 * target's platforms order) */
};

struct kiln_publish_req {
	const char *target;                     /* for messages */
	const char *const *refs;                /* "NAME[:TAG]", docker-normalised here */
	size_t n_refs;
	bool insecure;                          /* registry.insecure=true: plain HTTP */
	bool index;                             /* several platforms: write an index */
	const struct kiln_publish_image *images;
	size_t n_images;
};

/* What was written: one line per ref for the summary. */
struct kiln_publish_out {
	char **lines;   /* "REF DIGEST (what)", malloc'd */
	size_t n_lines;
};

/* Publish. Pushes happen in image order for each repository (the last
 * image is the one a tag points at between pushes, when there is no
 * index yet); the index is PUT under every tag of the repository.
 * Returns 0, or the first error (KILN_E_INVALID: a bad reference;
 * KILN_E_CONNECT, KILN_E_DENIED, KILN_E_PROTOCOL from the engine or the
 * registry), naming the ref. */
int kiln__publish(const struct kiln_publish_req *req, struct kiln_publish_out *out,
		  struct kiln_err *err);
void kiln__publish_out_release(struct kiln_publish_out *out);

#endif
