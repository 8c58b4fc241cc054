/*
 * graph.h: the LLB graph builder. A frontend plugin describes a build as a
 * graph of BuildKit ops (sources, execs, file ops) through the host table
 * (kiln_host.graph_*) and marshals it into a pb.Definition for
 * kiln_build_def.llb; the buildkit backend sends those bytes as
 * SolveRequest.Definition. docs/graph.md has a walk-through.
 *
 * Semantics follow BuildKit's Go client package client/llb (v0.8, the
 * BuildKit inside dockerd 20.10, and v0.11); the wire facts are in
 * ../shared/docs/BUILDKIT-WIRE.md section 3 (LLB messages, digests,
 * terminal op) and section 4 (source identifiers and attrs). Only features
 * BuildKit v0.8 can run are offered: no MergeOp or DiffOp, no v0.11-only
 * fields or caps.
 *
 * Conventions for every function below:
 *  - it returns 0, or a negative enum kiln_code with details in *err
 *    (KILN_E_INVALID for a bad argument, KILN_E_UNSUPPORTED for an option
 *    struct from a newer kiln with newer fields set); on error the graph is
 *    unchanged;
 *  - option structs begin with struct_size = sizeof(the struct) as the
 *    caller was compiled; fields are only ever appended, so zero-initialise
 *    the whole struct (designated initialisers do) and a missing field reads
 *    as zero; every zero value means "unset / the default";
 *  - everything passed in is borrowed for the call only: the graph copies
 *    what it keeps;
 *  - modes are POSIX permission bits (write them in octal, 0..0777), sizes
 *    and lengths are bytes, times are ns since the Unix epoch;
 *  - paths inside a filesystem are cleaned like Go's path.Clean and made
 *    absolute by joining a relative one onto "/";
 *  - a graph is not thread-safe; separate graphs are independent.
 *
 * Determinism: the same calls in the same order give byte-identical
 * marshalled bytes and digests, in any process, at any time (no pointers,
 * clocks or random IDs go into the bytes; map entries are sorted by key).
 */
#ifndef KILN_GRAPH_H
#define KILN_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/common.h"
#include "kiln/error.h"

struct kiln_arena;
/* Opaque: one LLB graph under construction. Make one per build job with
 * kiln_host.graph_new(); free it with kiln_host.graph_free(). */
struct kiln_graph;

/* Size of a digest string buffer: "sha256:" + 64 lowercase hex + NUL. */
#define KILN_GRAPH_DIGEST_SIZE 72

/*
 * A handle to one output of a vertex: a plain value, copy it freely, never
 * free it. node numbers vertices of one graph from 1 in the order they were
 * added; node 0 is scratch (the empty filesystem, llb.Scratch()), so a
 * zero-initialised ref means scratch. output is the vertex's output index:
 * always 0 for sources and file ops; for an exec, 0 is the root filesystem
 * and k >= 1 the k-th writable bind mount (see struct kiln_graph_mount).
 * A ref is only meaningful in the graph that returned it. Adding an op
 * identical to an existing vertex (same bytes, so same digest) returns
 * that vertex's ref and merges the metadata into it.
 */
struct kiln_graph_ref {
	uint32_t node;
	uint32_t output;
};

#define KILN_GRAPH_SCRATCH ((struct kiln_graph_ref){ 0, 0 })

/* ---- the graph ------------------------------------------------------- */

struct kiln_graph_opts {
	uint32_t struct_size;
	/* Default platform of image sources, execs and file ops that neither
	 * set one nor inherit one from their input, as "os/arch[/variant]"
	 * (e.g. "linux/arm64"; normalised like containerd: "x86_64" ->
	 * "amd64", "aarch64" -> "arm64"). NULL: such ops carry no platform and
	 * the daemon uses its own. */
	const char *platform;
	/* The BuildKit session ID (no ':') that local sources pull from
	 * (attr local.session); the backend must open its session with the
	 * same ID and put it in SolveRequest.Session. NULL: each local source
	 * must give session_id or unique_id itself. */
	const char *session_id;
};

/* Make an empty graph in *out. opts may be NULL (all defaults). Errors:
 * KILN_E_INVALID (bad platform or session ID). */
typedef int kiln_graph_new_fn(const struct kiln_graph_opts *opts,
			      struct kiln_graph **out, struct kiln_err *err);

/* Free a graph and everything it holds. Marshalled definitions are not
 * affected (they belong to the arena or heap they were put in). NULL is a
 * no-op. */
typedef void kiln_graph_free_fn(struct kiln_graph *graph);

/* ---- vertex metadata (pb.OpMetadata; not part of the digest) --------- */

/* These fields end every vertex option struct below:
 *  name          vertex name in progress output (description key
 *                "llb.customname"), NULL: BuildKit's default name;
 *  description   more description entries (key -> value), e.g.
 *                "com.docker.dockerfile.v1.command"; keys unique;
 *  ignore_cache  always re-run this vertex (--no-cache for one step). */

/* ---- sources (pb.SourceOp; BUILDKIT-WIRE.md section 4) --------------- */

enum kiln_graph_source_kind {
	KILN_GRAPH_SOURCE_IMAGE = 1, /* docker-image://REF */
	KILN_GRAPH_SOURCE_LOCAL = 2, /* local://NAME, a directory the session serves */
	KILN_GRAPH_SOURCE_GIT = 3,   /* git://HOST/PATH[#REF] */
	KILN_GRAPH_SOURCE_HTTP = 4,  /* https://URL or http://URL, one file */
};

/* Image resolve modes (attr image.resolvemode; llb.ResolveMode). */
enum kiln_graph_resolve_mode {
	KILN_GRAPH_RESOLVE_DEFAULT = 0, /* the daemon decides */
	KILN_GRAPH_RESOLVE_PULL = 1,    /* always ask the registry */
	KILN_GRAPH_RESOLVE_LOCAL = 2,   /* prefer the daemon's local copy */
};

/*
 * A source vertex: one output (0), no inputs. Fields after `ref` apply to
 * the kind named in their group; setting a field of another kind is
 * KILN_E_INVALID. The caps BuildKit checks (source.image, source.local,
 * source.local.sessionid, source.git, source.http, ...) are added to the
 * vertex metadata as client/llb does.
 */
struct kiln_graph_source {
	uint32_t struct_size;
	enum kiln_graph_source_kind kind;
	/* image: a reference, normalised like docker does ("alpine" ->
	 *        "docker.io/library/alpine:latest"; tag or @digest kept);
	 * local: the name of the directory the session serves ("context";
 *        no '/' or ':');
	 * git:   the remote ("https://github.com/o/r.git",
	 *        "git@github.com:o/r.git", "github.com/o/r");
	 * http:  the whole http:// or https:// URL. Required. */
	const char *ref;

	/* image */
	const char *platform; /* "os/arch[/variant]"; NULL: the graph's */
	enum kiln_graph_resolve_mode resolve_mode;

	/* local (patterns are .dockerignore-style; sent as JSON arrays) */
	const char *session_id; /* NULL: kiln_graph_opts.session_id */
	const char *unique_id;  /* local.unique: when there is no session ID,
				   keeps identical sources of two clients
				   apart; the daemon then uses the solve's
				   session */
	const char *const *include_patterns;
	size_t n_include_patterns;
	const char *const *exclude_patterns;
	size_t n_exclude_patterns;
	const char *const *follow_paths;
	size_t n_follow_paths;
	const char *shared_key_hint; /* which earlier transfer to diff against */

	/* git */
	const char *git_ref;            /* branch, tag or commit; NULL: default branch */
	bool keep_git_dir;              /* keep .git in the result */
	const char *auth_token_secret;  /* secret ID; NULL: "GIT_AUTH_TOKEN" */
	const char *auth_header_secret; /* secret ID; NULL: "GIT_AUTH_HEADER" */
	const char *known_ssh_hosts;    /* ssh remotes: known_hosts lines */
	const char *mount_ssh_sock;     /* ssh remotes: SSH ID; NULL: "default" */

	/* http */
	const char *checksum; /* "sha256:<hex>" the file must have, or NULL */
	const char *filename; /* name of the file in the result; NULL: from the URL */
	uint32_t perm;        /* mode of the file, 0..0777; 0: daemon's default (0600) */
	uint32_t uid, gid;    /* owner of the file; 0: root */

	/* metadata, see above */
	const char *name;
	const struct kiln_kv *description;
	size_t n_description;
	bool ignore_cache;
};

/* Add a source vertex; *out = its output 0. Errors: KILN_E_INVALID (no
 * ref, bad reference or platform, local source without a session or
 * unique ID, non-UTF-8 pattern, a field of another kind set). */
typedef int kiln_graph_add_source_fn(struct kiln_graph *graph,
				     const struct kiln_graph_source *src,
				     struct kiln_graph_ref *out,
				     struct kiln_err *err);

/* ---- exec (pb.ExecOp) ------------------------------------------------ */

/* Mount types; the values are pb.MountType's. */
enum kiln_graph_mount_type {
	KILN_GRAPH_MOUNT_BIND = 0,   /* a vertex output (or scratch) at dest */
	KILN_GRAPH_MOUNT_SECRET = 1, /* one secret file from the session */
	KILN_GRAPH_MOUNT_SSH = 2,    /* an SSH agent socket from the session */
	KILN_GRAPH_MOUNT_CACHE = 3,  /* a persistent cache directory */
	KILN_GRAPH_MOUNT_TMPFS = 4,  /* an empty tmpfs (no size limit on v0.8) */
};

/* Cache mount sharing; the values are pb.CacheSharingOpt's. */
enum kiln_graph_cache_sharing {
	KILN_GRAPH_CACHE_SHARED = 0,  /* concurrent writers share it */
	KILN_GRAPH_CACHE_PRIVATE = 1, /* a second writer gets a new one */
	KILN_GRAPH_CACHE_LOCKED = 2,  /* a second writer waits */
};

/* Exec network modes; the values are pb.NetMode's. host needs the
 * network.host entitlement (--allow). */
enum kiln_graph_network {
	KILN_GRAPH_NET_SANDBOX = 0,
	KILN_GRAPH_NET_HOST = 1,
	KILN_GRAPH_NET_NONE = 2,
};

/*
 * One mount of an exec besides the root filesystem (the Dockerfile's
 * RUN --mount). dest is the absolute mount point (not "/"; unique within
 * the exec).
 *  bind:   source is mounted at dest (scratch: an empty directory),
 *          selector its sub-path (NULL: its root). A writable bind
 *          (readonly false) is an output of the exec: the k-th writable
 *          bind in the order given is output k (the root is 0).
 *  cache:  id names the cache (NULL: dest), shared per sharing.
 *  secret: id (required) is the secret's ID; dest NULL:
 *          "/run/secrets/<id>"; mode 0: 0400.
 *  ssh:    id is the SSH ID (NULL: the daemon's "default"); dest NULL:
 *          "/run/buildkit/ssh_agent.<n>" (n counts ssh mounts from 0);
 *          mode 0: 0600. SSH_AUTH_SOCK is set to the first ssh mount
 *          unless env sets it.
 *  tmpfs:  nothing else.
 * Fields that do not apply to the type must be zero.
 */
struct kiln_graph_mount {
	uint32_t struct_size;
	enum kiln_graph_mount_type type;
	const char *dest;
	struct kiln_graph_ref source; /* bind */
	const char *selector;         /* bind */
	bool readonly;                /* bind */
	const char *id;               /* cache, secret, ssh */
	enum kiln_graph_cache_sharing sharing; /* cache */
	uint32_t uid, gid;            /* secret, ssh: owner of the file */
	uint32_t mode;                /* secret, ssh: 0..0777 */
	bool optional;                /* secret, ssh: absent is not an error */
};

/*
 * A process run in a container (RUN). rootfs is mounted read-write at "/"
 * and its result is the exec's output 0 (scratch allowed). Caps:
 * exec.meta.base, and exec.mount.bind / .cache / .cache.sharing / .tmpfs /
 * .secret / .ssh / .selector, exec.meta.network / .security / .proxyenv
 * for what is used.
 */
struct kiln_graph_exec {
	uint32_t struct_size;
	struct kiln_graph_ref rootfs;
	const char *const *args; /* argv, non-empty; args[0] looked up in PATH */
	size_t n_args;
	/* Environment, in this order, as KEY=VALUE (no default PATH is
	 * added: the daemon adds one when env has none). */
	const struct kiln_kv *env;
	size_t n_env;
	const char *cwd;      /* working directory; NULL: "/" */
	const char *user;     /* "user[:group]", names or IDs; NULL: root */
	const char *hostname; /* NULL: the daemon's */
	const struct kiln_kv *extra_hosts; /* /etc/hosts entries: host -> IP */
	size_t n_extra_hosts;
	const struct kiln_graph_mount *mounts; /* each with the same struct_size */
	size_t n_mounts;
	enum kiln_graph_network network;
	bool insecure; /* security.insecure: privileged (needs --allow) */
	/* Proxy variables hidden from the cache key; NULL: unset. */
	const char *http_proxy, *https_proxy, *ftp_proxy, *no_proxy;
	/* "os/arch[/variant]"; NULL: rootfs's platform, else the graph's. */
	const char *platform;

	/* metadata, see above */
	const char *name;
	const struct kiln_kv *description;
	size_t n_description;
	bool ignore_cache;
};

/* Add an exec vertex; *out = its output 0 (the root filesystem). Errors:
 * KILN_E_INVALID (no args, unknown ref or output, env key empty or with
 * '=', mount dest "/" or given twice, secret without id, field of another
 * mount type set). */
typedef int kiln_graph_add_exec_fn(struct kiln_graph *graph,
				   const struct kiln_graph_exec *exec,
				   struct kiln_graph_ref *out,
				   struct kiln_err *err);

/* ---- file ops (pb.FileOp) -------------------------------------------- */

enum kiln_graph_file_kind {
	KILN_GRAPH_FILE_COPY = 1,   /* copy src:src_path to path */
	KILN_GRAPH_FILE_MKDIR = 2,  /* make directory path */
	KILN_GRAPH_FILE_MKFILE = 3, /* write data to file path */
	KILN_GRAPH_FILE_RM = 4,     /* remove path */
};

/* Flags of a file action (pb.FileAction* booleans); each is valid only for
 * the kind in its name, except KILN_GRAPH_FILE_CREATED. */
enum {
	KILN_GRAPH_COPY_FOLLOW_SYMLINKS = 1u << 0,   /* resolve a symlink src */
	KILN_GRAPH_COPY_DIR_CONTENTS = 1u << 1,      /* a directory src: copy its contents */
	KILN_GRAPH_COPY_UNPACK = 1u << 2,            /* an archive src: unpack it (ADD) */
	KILN_GRAPH_COPY_CREATE_DEST_PATH = 1u << 3,  /* make missing parents of path */
	KILN_GRAPH_COPY_ALLOW_WILDCARD = 1u << 4,    /* src_path may hold wildcards */
	KILN_GRAPH_COPY_ALLOW_EMPTY_WILDCARD = 1u << 5, /* ... matching nothing */
	KILN_GRAPH_MKDIR_PARENTS = 1u << 6,          /* mkdir -p */
	KILN_GRAPH_RM_ALLOW_NOT_FOUND = 1u << 7,     /* rm -f */
	KILN_GRAPH_RM_ALLOW_WILDCARD = 1u << 8,      /* path may hold wildcards */
	KILN_GRAPH_FILE_CREATED = 1u << 9,           /* created_ns is set */
};

/* The copy flags of the Dockerfile's COPY (BUILDKIT-WIRE.md section 3.1). */
#define KILN_GRAPH_COPY_DOCKERFILE                                            \
	(KILN_GRAPH_COPY_FOLLOW_SYMLINKS | KILN_GRAPH_COPY_DIR_CONTENTS |       \
	 KILN_GRAPH_COPY_CREATE_DEST_PATH | KILN_GRAPH_COPY_ALLOW_WILDCARD |   \
	 KILN_GRAPH_COPY_ALLOW_EMPTY_WILDCARD)

/*
 * One action of a file op. path is the target in the filesystem being
 * changed (for copy, a trailing '/' means "into this directory"); src and
 * src_path (copy only) say what is copied. mode: copy 0 keeps the source's
 * mode, mkdir 0 means 0755, mkfile 0 means 0644. owner: "user[:group]",
 * each a name (looked up in the base's /etc/passwd and /etc/group), a
 * number or "root"; NULL leaves ownership alone (copy) or uses root.
 */
struct kiln_graph_file_action {
	uint32_t struct_size;
	enum kiln_graph_file_kind kind;
	const char *path;
	struct kiln_graph_ref src; /* copy */
	const char *src_path;      /* copy */
	const void *data;          /* mkfile: contents */
	size_t data_len;           /* mkfile: bytes */
	uint32_t mode;             /* copy, mkdir, mkfile: 0..0777 */
	const char *owner;         /* copy, mkdir, mkfile */
	uint32_t flags;            /* KILN_GRAPH_COPY_* / _MKDIR_* / _RM_* */
	int64_t created_ns;        /* copy, mkdir, mkfile, with FILE_CREATED */
};

/*
 * A file op (COPY, ADD, WORKDIR's mkdir, ...): the actions run in order,
 * the first on base (scratch allowed), each later one on the result of the
 * one before; the last result is output 0. Cap: file.base (and
 * file.rm.wildcard when used).
 */
struct kiln_graph_file {
	uint32_t struct_size;
	struct kiln_graph_ref base;
	const struct kiln_graph_file_action *actions; /* each with the same struct_size */
	size_t n_actions;                             /* at least 1 */
	/* "os/arch[/variant]"; NULL: base's platform, else the graph's. */
	const char *platform;

	/* metadata, see above */
	const char *name;
	const struct kiln_kv *description;
	size_t n_description;
	bool ignore_cache;
};

/* Add a file-op vertex; *out = its output 0. Errors: KILN_E_INVALID (no
 * actions, empty path, unknown ref, mode above 0777, flag of another kind,
 * mkfile data_len without data). */
typedef int kiln_graph_add_file_fn(struct kiln_graph *graph,
				   const struct kiln_graph_file *file,
				   struct kiln_graph_ref *out,
				   struct kiln_err *err);

/* ---- results --------------------------------------------------------- */

/*
 * Marshal the part of the graph that result depends on into a
 * pb.Definition (BUILDKIT-WIRE.md section 3.2): def lists each op once (an
 * identical op added twice is one vertex), inputs before the ops that use
 * them, then the terminal op (no op, one input: result); metadata has one
 * entry per op keyed by its digest, sorted, with the caps each op needs
 * (the terminal's: "constraints", "platform", plus meta.description /
 * meta.ignorecache when used). Vertices result does not reach are left
 * out. The graph is unchanged and can grow and be marshalled again.
 *
 * *data (*len bytes) is allocated from arena and freed with it; when arena
 * is NULL it is one heap block the caller frees with kiln_host.free().
 * digest, when not NULL, receives the terminal op's digest
 * ("sha256:<hex>", NUL-terminated). Errors: KILN_E_INVALID (result is
 * scratch or unknown).
 */
typedef int kiln_graph_marshal_fn(struct kiln_graph *graph,
				  struct kiln_graph_ref result,
				  struct kiln_arena *arena, const uint8_t **data,
				  size_t *len,
				  char digest[KILN_GRAPH_DIGEST_SIZE],
				  struct kiln_err *err);

/* The digest of the op behind ref ("sha256:<hex>"): the vertex ID that
 * BuildKit's Status stream reports, e.g. to map progress to steps.
 * Errors: KILN_E_INVALID (scratch or unknown ref). */
typedef int kiln_graph_digest_fn(const struct kiln_graph *graph,
				 struct kiln_graph_ref ref,
				 char digest[KILN_GRAPH_DIGEST_SIZE],
				 struct kiln_err *err);

#endif
