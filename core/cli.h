/* cli.h: the table-driven command line. Each subcommand is one row of
 * kiln__commands[] (core/main.c) and parses its own options with
 * getopt_long. Exit codes are documented in docs/cli.md. */
#ifndef KILN_CORE_CLI_H
#define KILN_CORE_CLI_H

#include "loader.h"

/* Exit codes (docs/cli.md). */
enum kiln_exit {
	KILN_EXIT_OK = 0,
	KILN_EXIT_FAILED = 1,      /* build failed, lint found errors */
	KILN_EXIT_USAGE = 2,       /* bad flags, bad input file, refused plugin */
	KILN_EXIT_ENGINE = 3,      /* engine unreachable or protocol error */
	KILN_EXIT_SIGINT = 130,    /* interrupted (128 + SIGINT) */
	KILN_EXIT_SIGTERM = 143,   /* terminated (128 + SIGTERM) */
};

/* State shared by all commands of one process run. */
struct kiln_ctx {
	struct kiln_registry reg;
	bool plugins_loaded;
};

/* Command flags. */
#define KILN_CMD_PLUGINS 0x1u /* load plugins of every kind before run() */
#define KILN_CMD_HIDDEN 0x2u  /* not listed by `kiln help` */
/* Load only these kinds (core/loader.h, kiln__registry_load_kinds): a
 * command that needs no backend does not map gRPC or libcurl. */
#define KILN_CMD_FRONTENDS 0x4u
#define KILN_CMD_BACKENDS 0x8u
#define KILN_CMD_RENDERERS 0x10u
/* Loads no plugin before run(): run() asks the registry for the ones it
 * needs (loader.h, kiln__registry_want); `kiln build`. */
#define KILN_CMD_LAZY 0x20u

struct kiln_cmd {
	const char *name;
	int (*run)(struct kiln_ctx *ctx, int argc, char **argv);
	unsigned flags;
	const char *usage;   /* "kiln build [OPTIONS] PATH" */
	const char *summary; /* one line for `kiln help` */
	const char *help;    /* the options, preformatted, for `kiln help CMD` */
};

extern const struct kiln_cmd kiln__commands[];

/* Print "kiln: MSG" and "Run 'kiln help CMD' for usage." to stderr;
 * returns KILN_EXIT_USAGE. */
int kiln__usage_error(const char *cmd, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Print the command's help to stdout. */
void kiln__print_help(const struct kiln_cmd *cmd);
/* Map a kiln_code to an exit code. */
int kiln__exit_code(int code);

/* Where an engine address came from (docs/cli.md "Choosing the engine"). */
enum kiln_addr_source {
	KILN_ADDR_FLAG,              /* --addr */
	KILN_ADDR_BUILDKIT_HOST,     /* $BUILDKIT_HOST */
	KILN_ADDR_DOCKER_HOST,       /* $DOCKER_HOST */
	KILN_ADDR_BUILDKITD_DEFAULT, /* /run/buildkit/buildkitd.sock, which exists */
	KILN_ADDR_DOCKER_DEFAULT,    /* unix:///var/run/docker.sock */
	KILN_ADDR_BUILDER,           /* a kiln.lua builder's addr */
};

/* The engine address: flag (--addr), else $BUILDKIT_HOST, else
 * $DOCKER_HOST, else buildkitd's default socket if it exists, else
 * Docker's. *src says which. Static, argv or env storage. */
const char *kiln__engine_addr_from(const char *flag, enum kiln_addr_source *src);
/* The same without the source. */
const char *kiln__engine_addr(const char *flag);

/* What GET /_ping on a Docker Engine API socket said. */
struct kiln_docker_ping {
	bool connected;          /* the socket accepted the connection */
	bool answered;           /* an HTTP response came back */
	bool timed_out;          /* connected, but no answer in time */
	long status;             /* its HTTP status */
	char api_version[32];    /* Api-Version header, "" if none */
	char builder_version[16];/* Builder-Version: "2" = BuildKit */
	char libpod_version[32]; /* Libpod-Api-Version: Podman */
	char server[64];         /* Server header */
	char error[256];         /* libcurl's reason when it failed */
};
/* GET /_ping on the unix socket at sock, giving up after timeout_ms. */
void kiln__docker_ping(const char *sock, int timeout_ms, struct kiln_docker_ping *p);

/* What a command needs of a backend. */
enum kiln_need {
	KILN_NEED_SOLVE,
	KILN_NEED_WORKERS,
	KILN_NEED_DISK_USAGE,
	KILN_NEED_PRUNE,
	KILN_NEED_PUSH,   /* push from the engine's image store */
};
/* The backend that serves addr best (highest probe() score > 0) among
 * those providing `need`, or NULL. */
const struct kiln_backend *kiln__pick_backend(struct kiln_ctx *ctx, const char *addr,
					      enum kiln_need need);

/* The backend a command uses, and why. */
struct kiln_engine_choice {
	const struct kiln_backend *backend;
	char addr[4200];        /* the address backend connects to (dockerd
				 * with BuildKit: docker-unix://PATH) */
	char why[640];          /* one line: the rule that chose it */
	/* With want_store: the backend that pushes from the engine's image
	 * store (a Docker Engine API, via store_addr), or NULL. */
	const struct kiln_backend *pusher;
	char store_addr[4200];
};
/* Choose the backend for the engine at flag_addr (or the environment's,
 * kiln__engine_addr_from), by these rules in order:
 *   1. --backend (flag_backend), else $KILN_BACKEND: that backend;
 *   2. --addr, $BUILDKIT_HOST, buildkitd's default socket, any
 *      docker-unix:// or tcp:// address: the buildkit backend;
 *   3. a unix socket from $DOCKER_HOST or Docker's default: GET /_ping;
 *      Podman (Libpod-Api-Version) -> docker; DOCKER_BUILDKIT=0 -> docker;
 *      Builder-Version 2, API >= 1.39 or DOCKER_BUILDKIT=1 -> buildkit at
 *      docker-unix://PATH; an older API -> docker (the classic builder);
 *      a socket that speaks no HTTP -> buildkit (gRPC);
 *   4. else the backend whose probe() scores the address highest.
 * Returns 0, or KILN_E_NOTFOUND (no such backend, none for the address)
 * or KILN_E_CONNECT (a socket that answers as neither engine), naming the
 * address. The choice is logged at debug level. */
int kiln__engine_choose(struct kiln_ctx *ctx, const char *flag_addr, const char *flag_backend,
			enum kiln_need need, bool want_store, struct kiln_engine_choice *out,
			struct kiln_err *err);
/* The same for addr, whose source is src. */
int kiln__engine_choose_at(struct kiln_ctx *ctx, const char *addr, enum kiln_addr_source src,
			   const char *flag_backend, enum kiln_need need, bool want_store,
			   struct kiln_engine_choice *out, struct kiln_err *err);

/* buildctl's TLS flags, taken by build, workers, du and prune: getopt_long
 * values for their option tables (clear of each command's own 256+). */
enum {
	KILN_OPT_TLSCACERT = 0x200,
	KILN_OPT_TLSCERT,
	KILN_OPT_TLSKEY,
	KILN_OPT_TLSSERVERNAME,
	KILN_OPT_TLSDIR,
};
/* Their entries, for a command's struct option table. */
#define KILN_TLS_LONGOPTS \
	{ "tlscacert", required_argument, NULL, KILN_OPT_TLSCACERT }, \
	{ "tlscert", required_argument, NULL, KILN_OPT_TLSCERT }, \
	{ "tlskey", required_argument, NULL, KILN_OPT_TLSKEY }, \
	{ "tlsservername", required_argument, NULL, KILN_OPT_TLSSERVERNAME }, \
	{ "tlsdir", required_argument, NULL, KILN_OPT_TLSDIR }

/* The TLS flags as given (strings borrowed from argv). */
struct kiln_tls_cli {
	const char *ca_cert, *cert, *key, *server_name, *dir;
	char *dir_files[3]; /* --tlsdir's ca.pem, cert.pem, key.pem (owned) */
};

/* Take getopt_long's option o and its arg if o is a KILN_OPT_TLS* value;
 * false when it is not. */
bool kiln__tls_cli_take(struct kiln_tls_cli *t, int o, const char *arg);
/* Check the flags against the engine address addr and fill *opts, which
 * borrows from t and addr: --tlsdir DIR means DIR/ca.pem, DIR/cert.pem
 * and DIR/key.pem, as buildctl. Returns 0, or KILN_E_INVALID (a usage
 * error: TLS for an address other than tcp://, --tlscert without
 * --tlskey or the reverse, --tlsdir with the file flags). */
int kiln__tls_cli_resolve(struct kiln_tls_cli *t, const char *addr,
			  struct kiln_connect_opts *opts, struct kiln_err *err);
void kiln__tls_cli_release(struct kiln_tls_cli *t);

/* Connect to opts->addr through be: its connect_opts() if it has one,
 * else connect(), which cannot take TLS options (KILN_E_UNSUPPORTED naming
 * the first one given). */
int kiln__backend_connect(const struct kiln_backend *be, const struct kiln_connect_opts *opts,
			  void **conn, struct kiln_err *err);

/* KEY=VALUE flags (--build-arg, --label, --build-context): pairs that own
 * their strings. */
struct kiln_kvlist {
	struct kiln_kv *v;
	size_t n;
	struct kiln_strv store; /* owns the strings */
};
/* Append arg ("KEY=VALUE"; with from_env, "KEY" takes $KEY and is skipped
 * when unset, as docker's --build-arg does). A bad arg is a usage error
 * of cmd naming flag: returns KILN_EXIT_USAGE. */
int kiln__kv_add(struct kiln_kvlist *l, const char *arg, bool from_env, const char *cmd,
		 const char *flag);
void kiln__kv_release(struct kiln_kvlist *l);

/* The frontend whose patterns match file's base name, or NULL. */
const struct kiln_frontend *kiln__pick_frontend(struct kiln_ctx *ctx, const char *file);

/* The frontend's post-export step (kiln_frontend.package), when it has
 * one and opts has one output, a local export: called with the export's
 * directory, one call at a time. Returns 0 when there is nothing to do. */
int kiln__frontend_package(const struct kiln_frontend *fe, struct kiln_arena *arena,
			   const struct kiln_build_opts *opts, const struct kiln_build_def *def,
			   struct kiln_err *err);

/* Run the frontend's static check for o (kiln lint, kiln build --check) and
 * print the findings to stdout in format "text" or "json" (docs/cli.md);
 * returns the exit code: 0 clean, 1 findings that fail, 2 no check. */
int kiln__check_run(struct kiln_ctx *ctx, const struct kiln_build_opts *o,
		    const char *format);

/* Build inputs read from stdin (core/stdin.c), as docker build reads them:
 * `-f -` is the Dockerfile; PATH `-` is a context tarball (tar, optionally
 * gzip/bzip2/xz/zstd compressed; -f then names a file inside it) or, when
 * not an archive, a Dockerfile with an empty context. They are written to
 * a private temp dir whose paths replace o->context / o->dockerfile. */
struct kiln_stdin_input {
	char *dir;         /* the temp dir, removed by cleanup; NULL: unused */
	char *context;     /* owned replacements for o->context/o->dockerfile */
	char *dockerfile;
};
int kiln__stdin_prepare(struct kiln_stdin_input *in, struct kiln_build_opts *o,
			struct kiln_err *err);
void kiln__stdin_cleanup(struct kiln_stdin_input *in);

/* kiln build --export-context FILE (core/ctxexport.c): write the build
 * context directory as the engine gets it, after the ignore file
 * (<Dockerfile>.dockerignore, else <context>/.dockerignore), to the tar
 * file out, atomically (a temporary sibling, renamed). dockerfile may be
 * NULL ("Dockerfile"). Returns 0 or KILN_E_INVALID (not a directory, a
 * bad pattern), KILN_E_IO. */
int kiln__context_export(const char *context, const char *dockerfile, const char *out,
			 struct kiln_err *err);

/* Commands (core/cmd_*.c). */
int kiln__cmd_lint(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_build(struct kiln_ctx *ctx, int argc, char **argv);
/* `kiln print-llb FILE`: `kiln build --print-llb FILE`. */
int kiln__cmd_print_llb(struct kiln_ctx *ctx, int argc, char **argv);
/* Print a marshalled pb.Definition as indented JSON (core/llbjson.c):
 * {"digest": terminal op digest, "ops": [{digest, op, metadata}…]}.
 * Returns 0, or -1 when data is not a pb.Definition. */
int kiln__llb_print(FILE *out, const uint8_t *data, size_t len);
int kiln__cmd_replay(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_plugins(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_workers(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_du(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_prune(struct kiln_ctx *ctx, int argc, char **argv);
/* The build records (core/cmd_history.c, docs/history.md). */
int kiln__cmd_history(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_stats(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_ps(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_cancel(struct kiln_ctx *ctx, int argc, char **argv);

/* Shared by commands that show progress (core/progress.c). */
struct kiln_progress_opts {
	const char *mode; /* auto|tty|plain|json|quiet|rawjson… or any renderer name */
	bool verbose;
	bool no_emoji;
	int fd;           /* output, default 2 (stderr), like buildx */
	/* Non-NULL: keep build records (full vertex logs, durations for the
	 * ETA; core/logstore.h) keyed by this, e.g. context + Dockerfile. */
	const char *record_key;
	/* What the records call the build (docs/history.md): a name, the
	 * context and the build file; NULL when not known. */
	const char *record_name, *record_context, *record_file;
};
struct kiln_bus;
/* Choose and open the renderer(s) of opts->mode on a new bus. */
int kiln__progress_open(struct kiln_ctx *ctx, const struct kiln_progress_opts *opts,
			struct kiln_bus **bus, struct kiln_err *err);

#endif
