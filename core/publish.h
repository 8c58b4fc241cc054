/* publish.h: put a target's images in a registry under its tags: each
 * platform's manifest by digest, then, for several platforms, an image
 * index that kiln writes itself (buildx's push-by-digest followed by
 * `imagetools create`). Internal (kiln__ prefix). */
#ifndef KILN_PUBLISH_H
#define KILN_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/kiln.h>

#include "util.h"

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

/* ---- which builds push, and how their jobs export ------------------------------ */

/* The value of key in output CSV o ("type=image,push=true"), malloc'd,
 * or NULL. Plain CSV: a quoted value with commas is not split out. */
char *kiln__csv_value(const char *o, const char *key);
/* Does output o push to a registry (type=registry, or type=image with
 * push=true)? buildx's --push is -o type=registry. */
bool kiln__output_pushes(const char *o);

/* Where a build that pushes goes. */
struct kiln_publish_dest {
	struct kiln_strv refs;  /* NAME[:TAG]: the outputs' name=, else the tags */
	char *by_digest_name;   /* the first ref without its tag, for an
				 * exporter that pushes by digest (malloc'd) */
	bool insecure;          /* an output's registry.insecure=true */
};
/* Fill *d from the outputs and tags of a build; push_all: --push (every
 * output is type=registry). Returns 1 when the build pushes, 0 when it
 * does not (*d empty), KILN_E_INVALID when it pushes but names no
 * reference (no tag, no name=). */
int kiln__publish_dest(const char *const *outputs, size_t n_outputs, const char *const *tags,
		       size_t n_tags, bool push_all, struct kiln_publish_dest *d);
void kiln__publish_dest_release(struct kiln_publish_dest *d);

/* What a job of a pushing build gives its exporter for the pushing
 * output o: type=image into the engine's image store when it has one
 * (has_store: dockerd; the publish step pushes it), else o itself, or,
 * for several platforms, BuildKit's image exporter pushing by digest
 * only under by_digest_name (kiln writes the index). malloc'd. */
char *kiln__publish_job_output(const char *o, bool has_store, size_t n_platforms,
			       const char *by_digest_name);

/* Is platform ("linux/arm64"; NULL: the engine's default) the machine's
 * own? Its image is pushed last, so a tag serves a runnable image in the
 * window before the index is written. Thread-safe. */
bool kiln__platform_is_native(const char *platform);

#endif
