/*
 * docker.h: the parts of the `docker` backend (Docker Engine API /build,
 * the classic builder; also Podman's Docker-compatible API).
 *
 *   backend.c  the vtable: probe, connect (/_ping, /version), solve, cancel
 *   request.c  a dockerfile.v0 request + build options -> /build query
 *   context.c  the build context as a tar stream, made while it is sent
 *   stream.c   the daemon's JSON message stream -> kiln events
 *   push.c     push: POST /images/{name}/tag and /images/{name}/push
 *   util.c     a byte buffer, synthetic vertex digests
 *
 * Private to this plugin: names are docker_* (hidden symbols).
 */
#ifndef KILN_BACKEND_DOCKER_H
#define KILN_BACKEND_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/un.h>

#include <curl/curl.h>

#include <kiln/kiln.h>

/* ---- backend.c ---------------------------------------------------------- */

/* One connection to a daemon. */
struct docker_conn {
	const struct kiln_host *host;
	char *addr;                  /* as given, for messages */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char api[16];                /* "v1.41": the API version used */
	char engine[128];            /* "Docker 20.10.24", "Podman 4.3.1" */
	bool podman;
	atomic_bool cancelled;
};

/* An easy handle for path ("/_ping", "/build?…") on the daemon's socket,
 * under the negotiated API version once known; errbuf gets curl's error
 * text (CURL_ERROR_SIZE bytes). NULL when libcurl cannot start. */
CURL *docker_easy_new(const struct docker_conn *conn, const char *path, char *errbuf);
/* Why transfer c failed (rc), in a few words, into out. */
void docker_cause(CURL *c, CURLcode rc, const char *errbuf, char *out, size_t len);

/* ---- push.c ------------------------------------------------------------- */

/* The backend's push() (see kiln/plugin.h). */
int docker_push(void *conn, const struct kiln_push *req, struct kiln_push_result *res,
		struct kiln_err *err);

/* ---- util.c ------------------------------------------------------------- */

/* A growable byte buffer, always NUL-terminated once anything was added.
 * Memory from host->realloc (never NULL). Zero-initialise. */
struct docker_buf {
	char *p;
	size_t len, cap;
};
void docker_buf_add(const struct kiln_host *host, struct docker_buf *b,
		    const void *data, size_t len);
void docker_buf_adds(const struct kiln_host *host, struct docker_buf *b, const char *s);
/* Drop the first n bytes. */
void docker_buf_consume(struct docker_buf *b, size_t n);
void docker_buf_release(const struct kiln_host *host, struct docker_buf *b);

/* "sha256:" + hex SHA-256 of the parts, each followed by a NUL byte. */
#define DOCKER_DIGEST_SIZE 72
void docker_digest(char out[DOCKER_DIGEST_SIZE], const char *const *parts, size_t n);

/* ---- request.c ---------------------------------------------------------- */

/* What one /build call needs besides the context. Strings come from
 * host->alloc; docker_request_release() frees them. */
struct docker_request {
	char *query;        /* "t=a%3A1&dockerfile=Dockerfile&…" (URL-encoded) */
	char *context_dir;  /* absolute build context directory */
	char *dockerfile;   /* the Dockerfile's path on this machine */
	char *dockerfile_name; /* its name in the context tar (/build's dockerfile) */
	bool dockerfile_outside; /* not in the context: append it to the tar */
	char *tags;         /* the image names, comma-separated, or NULL */
};

/* Check that the classic builder can do what req asks (else
 * KILN_E_UNSUPPORTED naming the flag, or the Dockerfile line and the
 * engine: docker_syntax_check) and build the query. conn->podman selects
 * Podman's spelling of list parameters. */
int docker_request_make(const struct docker_conn *conn, const struct kiln_solve *req,
			struct docker_request *out, struct kiln_err *err);
/* Refuse, before anything is sent, Dockerfile syntax the engine's builder
 * cannot build (the frontend's kiln_syntax_need list): on Docker, all of it
 * (the classic builder knows Dockerfile 1.0 only: no RUN --mount, heredoc,
 * COPY --link, …); on Podman up to 4.3 (Buildah 1.28) all but RUN --mount,
 * which Buildah has. KILN_E_UNSUPPORTED at the construct's file:line,
 * naming the engine and its address; 0 when the build may go. */
int docker_syntax_check(const struct docker_conn *conn, const struct kiln_build_def *d,
			struct kiln_err *err);
void docker_request_release(const struct kiln_host *host, struct docker_request *r);

/* ---- context.c ---------------------------------------------------------- */

struct docker_context;

/* Start a tar stream of directory dir: entries relative to it, uid/gid 0,
 * symlinks not followed, minus what the ignore file excludes: the
 * Dockerfile's own dockerfile_path + ".dockerignore" when it exists (and
 * dockerfile_path is not NULL), else dir/.dockerignore (see context.c).
 * dockerfile is the Dockerfile's name in the tar (never excluded); when
 * extra_path is set, that file is appended under this name. The ignore
 * file is read here: KILN_E_INVALID (a bad pattern) or KILN_E_IO, naming
 * it. Nothing else is read until docker_context_read(). */
int docker_context_open(const struct kiln_host *host, const char *dir,
			const char *dockerfile, const char *dockerfile_path,
			const char *extra_path, struct docker_context **out,
			struct kiln_err *err);
/* Why no ignore file is applied although there may be one (a kiln
 * without the ignore-file service), or NULL. */
const char *docker_context_note(const struct docker_context *c);
/* Copy up to len bytes of the tar stream to buf. Returns the count, 0 at
 * the end, or -1 on error (then docker_context_error() says why). */
ssize_t docker_context_read(struct docker_context *c, char *buf, size_t len);
const char *docker_context_error(const struct docker_context *c);
/* Bytes of tar produced so far. */
uint64_t docker_context_bytes(const struct docker_context *c);
void docker_context_free(struct docker_context *c);

/* ---- stream.c ----------------------------------------------------------- */

/* One progress item of a pull (a layer's download or its extraction). */
struct docker_item {
	char *id;
	int64_t started_ns, completed_ns;
};

/* A vertex kiln made up: a step, the context upload, or the export. */
struct docker_vertex {
	char digest[DOCKER_DIGEST_SIZE]; /* "" while there is none */
	char input[DOCKER_DIGEST_SIZE];  /* the step before in its stage, or "" */
	char *name;
	int64_t started_ns, completed_ns;
	bool cached;
};

/* State of one build's message stream. Zero-initialise, then
 * docker_stream_init(). */
struct docker_stream {
	const struct kiln_host *host;
	const struct kiln_solve *req;
	struct docker_buf json;   /* an incomplete JSON line */
	struct docker_buf text;   /* builder text awaiting its end of line */
	int step, steps;          /* the last "Step N/M" */
	int stage, stages;        /* Podman's "[S/T] STEP N/M:" (0: no prefix) */
	char stage_name[64];      /* "build" (FROM … AS build), else "stage-<S-1>" */
	struct docker_vertex cur; /* the step (or export) under way */
	struct docker_vertex ctx; /* "[internal] load build context" */
	int64_t ctx_status_ns;    /* last "transferring context" event */
	struct docker_item *items; /* pull progress of the current step */
	size_t n_items, cap_items;
	bool exporting;           /* "Successfully built" (or COMMIT) seen */
	bool pulling;             /* in a FROM step: Podman's pull lines count */
	bool wrote_image;         /* "writing image" status sent */
	char *image_id;           /* last aux.ID, "sha256:…" */
	char *short_id;           /* from "Successfully built X" */
	char *error;              /* first errorDetail.message */
	char *error_vertex;       /* name of the step that failed, or NULL */
	uint32_t messages;        /* JSON messages decoded */
};

void docker_stream_init(struct docker_stream *s, const struct kiln_host *host,
			const struct kiln_solve *req);
/* Feed response bytes (any split). */
void docker_stream_feed(struct docker_stream *s, const char *data, size_t len);
/* The context upload: begin, progress (bytes sent), end. */
void docker_stream_context_begin(struct docker_stream *s);
void docker_stream_context_progress(struct docker_stream *s, uint64_t bytes, bool done);
/* A warning about the build (not from the daemon). */
void docker_stream_warning(struct docker_stream *s, const char *msg);
/* End of the response: flush, complete the open vertex; error (or NULL)
 * marks it failed (e.g. "cancelled"). */
void docker_stream_finish(struct docker_stream *s, const char *error);
void docker_stream_release(struct docker_stream *s);

#endif
