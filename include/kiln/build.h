/*
 * build.h: what one build job asks for (struct kiln_build_opts, from the CLI
 * or a kiln.lua target), what a frontend makes of it (struct
 * kiln_build_def), and what a backend reports back (struct
 * kiln_solve_result).
 *
 * Flag semantics follow `docker buildx build`
 * (https://docs.docker.com/reference/cli/docker/buildx/build/).
 */
#ifndef KILN_BUILD_H
#define KILN_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/check.h"
#include "kiln/common.h"

/* Opaque per-job memory arena; see kiln_host.arena_alloc(). Everything
 * allocated from it is freed together when the job ends. */
struct kiln_arena;

/*
 * The options of one job. Owned by the core and read-only for plugins;
 * valid for the duration of the job. Arrays of strings hold the raw CSV
 * values as the user typed them (e.g. "type=local,dest=out").
 */
struct kiln_build_opts {
	uint32_t struct_size;
	const char *context;    /* build context directory, or "-" (stdin) */
	const char *dockerfile; /* -f; NULL: "Dockerfile" in the context */
	const char *target;     /* --target stage, or NULL */
	const char *platform;   /* this job's platform ("linux/arm64"), or NULL */
	const struct kiln_kv *build_args; /* --build-arg KEY=VALUE */
	size_t n_build_args;
	const struct kiln_kv *labels;     /* --label KEY=VALUE */
	size_t n_labels;
	const char *const *tags;          /* -t NAME:TAG */
	size_t n_tags;
	const char *const *outputs;       /* -o CSV */
	size_t n_outputs;
	const char *const *cache_from;    /* --cache-from CSV */
	size_t n_cache_from;
	const char *const *cache_to;      /* --cache-to CSV */
	size_t n_cache_to;
	const char *const *secrets;       /* --secret id=x,src=f | id=x,env=V */
	size_t n_secrets;
	const char *const *ssh;           /* --ssh default | id=path */
	size_t n_ssh;
	const char *const *add_hosts;     /* --add-host host:ip */
	size_t n_add_hosts;
	const char *const *allow;         /* --allow network.host, … */
	size_t n_allow;
	const char *network;              /* --network, or NULL */
	bool no_cache;                    /* --no-cache */
	bool pull;                        /* --pull */
	/* Appended in ABI 1.0 before release; check struct_size. */
	const char *const *no_cache_filter; /* --no-cache-filter STAGE */
	size_t n_no_cache_filter;
	const struct kiln_kv *build_contexts; /* --build-context NAME=PATH|URL */
	size_t n_build_contexts;
	int64_t shm_size;                 /* --shm-size, bytes; 0 = engine default */
	const char *const *ulimits;       /* --ulimit nofile=1024:2048 */
	size_t n_ulimits;
	bool check;                       /* --check: lint only, build nothing */
	/* Appended in ABI 1.0 before release; check KILN_HAS_FIELD.
	 * Frontend options, KEY=VALUE, in the order given: `--opt KEY=VALUE`
	 * (buildctl's --opt), and the shorthands `--build-image REF` and
	 * `--source-dir DIR` (build-image=, source-dir=). A frontend reads
	 * the keys it knows and ignores the others; a key may repeat (the
	 * last one wins). docs/melange.md lists the melange frontend's. */
	const struct kiln_kv *frontend_opts;
	size_t n_frontend_opts;
};

/*
 * What a frontend hands to a backend: either a frontend request (BuildKit's
 * own frontend, e.g. "dockerfile.v0", converts it to LLB) or a marshalled
 * LLB definition (pb.Definition). Filled by the frontend with memory from
 * the job's arena; the core frees it with the arena.
 */
struct kiln_build_def {
	uint32_t struct_size;
	const char *frontend;           /* "dockerfile.v0", or NULL for LLB */
	struct kiln_kv *frontend_attrs; /* e.g. filename, target, build-arg:X */
	size_t n_frontend_attrs;
	struct kiln_kv *local_dirs;     /* session dirs: "context" -> path */
	size_t n_local_dirs;
	const uint8_t *llb;             /* marshalled pb.Definition, or NULL */
	size_t llb_len;
	int steps;                      /* steps to run (Step N/M), 0 unknown */
	/* Appended in ABI 1.0 before release. */
	const char *syntax;             /* "# syntax=" frontend image, or NULL:
					 * the engine's built-in frontend */
	const struct kiln_syntax_need *syntax_needs; /* see kiln/check.h */
	size_t n_syntax_needs;
	/* Appended in ABI 1.0 before release; the core checks struct_size.
	 * The output (an -o CSV, e.g. "type=local,dest=melange-out") the
	 * core uses when the user gave no -o, or NULL: no export. */
	const char *default_output;
};

/* What a solve produced. Filled by the backend with memory from the job's
 * arena; fields it does not know stay NULL. */
struct kiln_solve_result {
	uint32_t struct_size;
	const char *image_digest;  /* exporter response containerimage.digest */
	const char *config_digest; /* containerimage.config.digest */
	struct kiln_kv *exporter_response; /* all exporter response entries */
	size_t n_exporter_response;
};

/*
 * One image pushed from an engine's image store to a registry: the Docker
 * Engine API's POST /images/{name}/tag, then POST /images/{name}/push,
 * whose aux message carries the manifest's digest and size
 * (https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Image/operation/ImagePush).
 * The core fills it from the plan (sched.c's publish step); strings are
 * borrowed for the call.
 */
struct kiln_push {
	uint32_t struct_size;
	const struct kiln_job *job; /* the job that built the image (events) */
	struct kiln_bus *bus;       /* for host->emit() */
	const char *image;          /* in the engine's store: an image ID
				     * "sha256:<hex>" or a reference */
	const char *ref;            /* where to: "HOST[:PORT]/REPO:TAG", with a
				     * registry host and a tag */
};

/* What a push stored in the registry. Filled by the backend. */
struct kiln_push_result {
	uint32_t struct_size;
	char digest[72];     /* the manifest's digest, "sha256:<64 hex>" */
	uint64_t size;       /* the manifest's length in bytes; 0 unknown */
	char media_type[96]; /* the manifest's media type; "" unknown */
};

#endif
