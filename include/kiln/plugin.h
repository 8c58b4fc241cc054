/*
 * plugin.h: the plugin ABI.
 *
 * A plugin is a shared object exporting exactly one symbol,
 * KILN_PLUGIN_ENTRY ("kiln_plugin_init"), of type kiln_plugin_init_fn. The
 * core calls it once with its host table and ABI version; the entry
 * registers one or more vtables (frontend, backend, renderer) through the
 * host table and returns 0, or fills *err and returns a negative code.
 *
 * Rules (docs/plugins.md has the long form):
 *  - every vtable and the host table begin with abi_version and
 *    struct_size; fields are only ever appended;
 *  - a vtable whose ABI major differs from the core's is refused, naming
 *    both versions; a plugin built for a newer minor must check
 *    KILN_HAS_FIELD(host, struct kiln_host, field) before using a newer
 *    host function;
 *  - plugins reach the core only through the host table, never exit the
 *    process, and report failures through struct kiln_err;
 *  - vtables passed to register_* must stay valid until the plugin is
 *    unloaded (use static const storage).
 */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/common.h"

#include "kiln/build.h"
#include "kiln/error.h"
#include "kiln/event.h"
#include "kiln/graph.h"
#include "kiln/ignore.h"

#define KILN_PLUGIN_ENTRY "kiln_plugin_init"

struct kiln_host;
struct kiln_plugin; /* opaque: the core's record of the loading plugin */
struct kiln_bus;    /* opaque: the event bus of the running build */

/* Log levels for kiln_host.log(). */
enum kiln_log_level {
	KILN_LOG_ERROR = 0,
	KILN_LOG_WARN = 1,
	KILN_LOG_INFO = 2,
	KILN_LOG_DEBUG = 3,
};

/* ---- renderer: turns events into output ------------------------------ */

/* How a renderer should write. Owned by the core, valid until close(). */
struct kiln_renderer_opts {
	uint32_t struct_size;
	int fd;           /* where to write (stderr unless redirected) */
	bool is_tty;      /* fd is a terminal */
	bool color;       /* colour allowed (false under NO_COLOR, TERM=dumb) */
	bool emoji;       /* non-ASCII symbols allowed (false: --no-emoji) */
	bool verbose;     /* --verbose: show every log line and raw event */
	int64_t start_ns; /* when the run started */
};

struct kiln_renderer {
	uint32_t abi_version; /* KILN_ABI_VERSION the plugin was built with */
	uint32_t struct_size; /* sizeof(struct kiln_renderer) */
	const char *name;     /* --progress=NAME; unique among renderers */
	const char *version;  /* the plugin's own version, for `kiln plugins` */
	const char *description;
	/* Make a renderer instance in *state. Returns 0 or a negative code. */
	int (*open)(const struct kiln_host *host,
		    const struct kiln_renderer_opts *opts, void **state,
		    struct kiln_err *err);
	/* Deliver one event. Never called concurrently for one instance. */
	void (*event)(void *state, const struct kiln_event *ev);
	/* Flush, write any summary, free the instance. Returns 0 or < 0. */
	int (*close)(void *state, struct kiln_err *err);
};

/* ---- frontend: turns an input format into a build definition ---------- */

struct kiln_frontend {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *name;      /* e.g. "dockerfile"; unique among frontends */
	const char *version;
	const char *description;
	/* File names this frontend reads, as fnmatch(3) patterns matched
	 * against the base name (e.g. "Dockerfile", "*.Dockerfile");
	 * NULL-terminated. */
	const char *const *patterns;
	/* Turn opts into *def, allocating from arena. A syntax error sets
	 * err->file/line. Returns 0 or a negative code. */
	int (*load)(const struct kiln_host *host, struct kiln_arena *arena,
		    const struct kiln_build_opts *opts, struct kiln_build_def *def,
		    struct kiln_err *err);
	/* Appended in ABI 1.0 before release; may be NULL (no checks).
	 * Statically check the input opts names (`kiln lint`, `kiln build
	 * --check`): syntax errors become KILN_SEV_ERROR findings, rules
	 * KILN_SEV_WARNING ones, in res (arena memory). Returns 0 when the
	 * file could be checked at all (even with findings), or a negative
	 * code when it could not be read (err says why). */
	int (*check)(const struct kiln_host *host, struct kiln_arena *arena,
		     const struct kiln_build_opts *opts,
		     struct kiln_check_result *res, struct kiln_err *err);
	/* Appended later; may be NULL (nothing after the export). Check
	 * KILN_HAS_FIELD(fe, struct kiln_frontend, package). A post-export
	 * step: the core calls it once per job after a successful solve
	 * whose one output was a local export, with export_dir the directory
	 * written (e.g. the melange frontend packages melange-out/<name>
	 * into .apk files). opts and def are the job's, as load() got and
	 * filled them. Returns 0 or a negative code; a failure fails the
	 * job (the export stays). */
	int (*package)(const struct kiln_host *host, struct kiln_arena *arena,
		       const struct kiln_build_opts *opts, const struct kiln_build_def *def,
		       const char *export_dir, struct kiln_err *err);
};

/* ---- backend: runs a build definition on an engine -------------------- */

/* A request to solve one job. Owned by the core. */
struct kiln_solve {
	uint32_t struct_size;
	const struct kiln_job *job;
	const struct kiln_build_opts *opts;
	const struct kiln_build_def *def;
	struct kiln_arena *arena; /* for the result's strings */
	struct kiln_bus *bus;     /* pass to kiln_host.emit() */
};

/* A worker of the engine (BuildKit's ListWorkers: WorkerRecord). */
struct kiln_worker {
	const char *id;
	const char *const *platforms;  /* "linux/amd64", … */
	size_t n_platforms;
	const struct kiln_kv *labels;  /* e.g. org.mobyproject.buildkit.worker.executor */
	size_t n_labels;
};

/* One build-cache record (BuildKit's DiskUsage / Prune: UsageRecord). */
struct kiln_usage_record {
	const char *id;
	const char *description;
	const char *record_type;       /* "regular", "internal", "frontend", … */
	const char *const *parents;
	size_t n_parents;
	int64_t size;                  /* bytes */
	int64_t created_ns;
	int64_t last_used_ns;          /* 0 = never */
	int64_t usage_count;
	bool mutable_;
	bool in_use;
	bool shared;
};

/* What `kiln prune` asks for (buildctl prune flags). */
struct kiln_prune_opts {
	uint32_t struct_size;
	bool all;                      /* --all: also internal/frontend records */
	int64_t keep_duration_ns;      /* --keep-duration, 0 = none */
	int64_t keep_storage_bytes;    /* --keep-storage, 0 = none */
	const char *const *filters;    /* --filter KEY==VALUE, as buildctl */
	size_t n_filters;
};

/* Called once per record a prune freed; record valid during the call. */
typedef void (*kiln_prune_cb)(void *ctx, const struct kiln_usage_record *record);

/* How to connect (buildctl's --tls* flags). Owned by the core, valid
 * during connect_opts(). A TLS field set on an address other than tcp://
 * is refused by the core before the backend sees it. */
struct kiln_connect_opts {
	uint32_t struct_size;
	const char *addr;
	const char *tls_ca_cert;     /* --tlscacert PEM file, or NULL */
	const char *tls_cert;        /* --tlscert client certificate PEM, or NULL */
	const char *tls_key;         /* --tlskey client key PEM, or NULL */
	const char *tls_server_name; /* --tlsservername, or NULL */
};

struct kiln_backend {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *name;      /* e.g. "buildkit"; unique among backends */
	const char *version;
	const char *description;
	/* How well this backend serves address addr ("unix:///…",
	 * "docker-unix:///…", "tcp://…"): 0 not at all, higher is better. */
	int (*probe)(const char *addr);
	/* Connect to addr; *conn is the backend's connection state. */
	int (*connect)(const struct kiln_host *host, const char *addr,
		       void **conn, struct kiln_err *err);
	/* Run one solve, emitting vertex events through host->emit(); fill
	 * *res on success. Returns 0 or a negative code (KILN_E_BUILD when a
	 * step failed, KILN_E_CANCELLED after cancel()). */
	int (*solve)(void *conn, const struct kiln_solve *req,
		     struct kiln_solve_result *res, struct kiln_err *err);
	/* Ask running solves on conn to stop; callable from another thread. */
	void (*cancel)(void *conn);
	/* Close the connection and free *conn. */
	void (*disconnect)(void *conn);

	/* Engine management (BuildKit's Control API). Each may be NULL when
	 * the engine has no such thing; records are allocated from arena. */
	int (*workers)(void *conn, struct kiln_arena *arena, struct kiln_worker **out,
		       size_t *n, struct kiln_err *err);
	int (*disk_usage)(void *conn, const char *const *filters, size_t n_filters,
			  struct kiln_arena *arena, struct kiln_usage_record **out,
			  size_t *n, struct kiln_err *err);
	int (*prune)(void *conn, const struct kiln_prune_opts *opts, kiln_prune_cb cb,
		     void *ctx, struct kiln_err *err);

	/* connect() with options: opts->addr and TLS (any tls_* field set
	 * means TLS; tls_cert and tls_key come together). Files named are
	 * read before dialing; a missing one is KILN_E_NOTFOUND naming it.
	 * May be NULL: the core then calls connect() and refuses TLS
	 * options with KILN_E_UNSUPPORTED. */
	int (*connect_opts)(const struct kiln_host *host,
			    const struct kiln_connect_opts *opts, void **conn,
			    struct kiln_err *err);

	/* Push an image of the engine's store (req->image) to a registry as
	 * req->ref and fill *res with the manifest the registry now holds.
	 * Credentials come from host->registry_credentials for the ref's
	 * host. Returns 0, KILN_E_NOTFOUND (no such image), KILN_E_CONNECT
	 * (engine gone), KILN_E_DENIED (the registry refused the
	 * credentials), KILN_E_PROTOCOL (any other refusal, with the
	 * registry's message), or KILN_E_CANCELLED after cancel(). NULL
	 * when the engine has no image
	 * store to push from (standalone buildkitd pushes in its exporter).
	 * Newer than the rest: check KILN_HAS_FIELD(be, struct kiln_backend,
	 * push) first. */
	int (*push)(void *conn, const struct kiln_push *req, struct kiln_push_result *res,
		    struct kiln_err *err);
};

/* ---- the host table: every way a plugin reaches the core ------------- */

struct kiln_host {
	uint32_t abi_version; /* KILN_ABI_VERSION of the running core */
	uint32_t struct_size; /* sizeof(struct kiln_host) in the core */
	const char *kiln_version;

	/* Registration; only valid during the entry call. Each returns 0, or
	 * KILN_E_ABI (vtable built for another ABI major), KILN_E_EXISTS
	 * (name taken), KILN_E_INVALID (missing name or callbacks). */
	int (*register_renderer)(struct kiln_plugin *plugin,
				 const struct kiln_renderer *vt);
	int (*register_frontend)(struct kiln_plugin *plugin,
				 const struct kiln_frontend *vt);
	int (*register_backend)(struct kiln_plugin *plugin,
				const struct kiln_backend *vt);

	/* Fill *err (code, message) and return code. */
	int (*error)(struct kiln_err *err, int code, const char *fmt, ...)
		KILN_PRINTF(3, 4);
	/* Same, with a source position (file:line:column; 0 = unknown). */
	int (*error_at)(struct kiln_err *err, int code, const char *file,
			int line, int column, const char *fmt, ...)
		KILN_PRINTF(6, 7);
	/* Static description of a kiln_code. */
	const char *(*strerror)(int code);
	/* A diagnostic line to stderr, prefixed "kiln: ", filtered by level. */
	void (*log)(enum kiln_log_level level, const char *fmt, ...)
		KILN_PRINTF(2, 3);

	/* Heap memory; alloc never returns NULL (kiln aborts on OOM, as
	 * git's xmalloc does). Free what you alloc with free. */
	void *(*alloc)(size_t size);
	void *(*realloc)(void *ptr, size_t size);
	void (*free)(void *ptr);
	/* Arena memory (zeroed), freed with the job; never NULL. */
	void *(*arena_alloc)(struct kiln_arena *arena, size_t size);
	char *(*arena_strdup)(struct kiln_arena *arena, const char *s);

	/* Deliver an event to every renderer and the metrics collector.
	 * Thread-safe; copies nothing it does not need after returning. */
	void (*emit)(struct kiln_bus *bus, const struct kiln_event *ev);
	/* Wall-clock time in ns since the Unix epoch. */
	int64_t (*now_ns)(void);

	/* LLB graph builder (kiln/graph.h has the contracts): make and free
	 * a graph, add source / exec / file-op vertices, marshal the part a
	 * result needs into a pb.Definition, look up a vertex digest. */
	kiln_graph_new_fn *graph_new;
	kiln_graph_free_fn *graph_free;
	kiln_graph_add_source_fn *graph_add_source;
	kiln_graph_add_exec_fn *graph_add_exec;
	kiln_graph_add_file_fn *graph_add_file;
	kiln_graph_marshal_fn *graph_marshal;
	kiln_graph_digest_fn *graph_digest;

	/* .dockerignore patterns (kiln/ignore.h has the contracts): compile
	 * a list, match a path against it, ask whether it has '!'
	 * exceptions, free it; read an ignore file, free what it gave.
	 * Newer than the rest: check KILN_HAS_FIELD(host, struct kiln_host,
	 * ignore_free) first. */
	kiln_patterns_compile_fn *patterns_compile;
	kiln_patterns_match_fn *patterns_match;
	kiln_patterns_has_exceptions_fn *patterns_has_exceptions;
	kiln_patterns_free_fn *patterns_free;
	kiln_ignore_read_fn *ignore_read;
	kiln_ignore_free_fn *ignore_free;

	/* Registry credentials for reg, a registry host as an image
	 * reference names it ("127.0.0.1:5000", "docker.io", "ghcr.io"),
	 * found as buildx finds them (BuildKit's session/auth/authprovider
	 * over docker/cli's config file; see
	 * https://docs.docker.com/reference/cli/docker/#configuration-files):
	 * $DOCKER_CONFIG/config.json, else ~/.docker/config.json;
	 * credHelpers[reg], else credsStore, runs `docker-credential-NAME
	 * get`; else auths[reg] ("identitytoken", "auth" = base64 of
	 * "user:password", or "username" and "password"). Docker Hub's hosts
	 * are looked up as "https://index.docker.io/v1/".
	 * Returns 0 with *username and *secret set, or KILN_E_NOTFOUND with
	 * both NULL: anonymous, because nothing is configured or because the
	 * config or a helper failed (the core has then logged a warning;
	 * no credential is ever logged). On 0 *secret is never NULL (maybe
	 * ""), and *username is NULL only when *secret is an identity token
	 * (BuildKit sends it with no username). Both strings come from the
	 * host's allocator: explicit_bzero them, then host->free them.
	 * Thread-safe; may block up to 10 s on a credential helper. Newer
	 * than the rest: check KILN_HAS_FIELD(host, struct kiln_host,
	 * registry_credentials) first. */
	int (*registry_credentials)(const char *reg, char **username, char **secret);
};

/* The entry point every plugin exports (use KILN_EXPORT). host_abi equals
 * host->abi_version; a plugin that needs a newer host refuses by returning
 * KILN_E_ABI with a message. */
typedef int (*kiln_plugin_init_fn)(const struct kiln_host *host,
				   uint32_t host_abi,
				   struct kiln_plugin *plugin,
				   struct kiln_err *err);

/* For the top of kiln_plugin_init: 0 when the host speaks this plugin's
 * ABI major, else fills *err (naming both versions) and returns
 * KILN_E_ABI, which the entry should return. */
static inline int kiln_check_host_abi(const struct kiln_host *host, uint32_t host_abi,
				      struct kiln_err *err)
{
	if (KILN_ABI_MAJOR_OF(host_abi) == KILN_ABI_MAJOR)
		return 0;
	return host->error(err, KILN_E_ABI,
			   "built for kiln plugin ABI %u.%u, this kiln has ABI %u.%u",
			   (unsigned)KILN_ABI_MAJOR, (unsigned)KILN_ABI_MINOR,
			   KILN_ABI_MAJOR_OF(host_abi), KILN_ABI_MINOR_OF(host_abi));
}

/* The entry point itself, declared here so that a plugin's definition is
 * checked against kiln_plugin_init_fn. Define it with KILN_EXPORT. */
KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err);

#endif
