/* main.c: kiln's entry point and command table. Only main() exits. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loader.h"
#include "plan.h"
#include "util.h"

static int cmd_help(struct kiln_ctx *ctx, int argc, char **argv);
static int cmd_version(struct kiln_ctx *ctx, int argc, char **argv);

/* buildctl's TLS flags, in the help of every command that connects. */
#define TLS_HELP \
	"      --tlscacert FILE       CA certificate (PEM) to verify a tcp:// engine with\n" \
	"      --tlscert FILE         Client certificate (PEM), with --tlskey\n" \
	"      --tlskey FILE          Client private key (PEM), with --tlscert\n" \
	"      --tlsservername NAME   Engine certificate's name (default: the address's host)\n" \
	"      --tlsdir DIR           DIR/ca.pem, DIR/cert.pem and DIR/key.pem\n"

const struct kiln_cmd kiln__commands[] = {
	{ "build", kiln__cmd_build, KILN_CMD_LAZY,
	  "kiln build [OPTIONS] PATH | -",
	  "Build an image from a Dockerfile and a build context",
	  "Options:\n"
	  "  -f, --file NAME            Dockerfile name (default: PATH/Dockerfile); '-' reads stdin\n"
	  "  -t, --tag NAME[:TAG]       Name and tag the image (repeatable)\n"
	  "      --build-arg KEY=VALUE  Set a build-time variable (repeatable)\n"
	  "      --label KEY=VALUE      Set image metadata (repeatable)\n"
	  "      --target STAGE         Build this stage\n"
	  "      --platform LIST        Target platforms (os/arch[/variant], comma separated)\n"
	  "  -o, --output CSV           Output destination (type=local,dest=DIR | type=tar,dest=FILE | …)\n"
	  "      --cache-from CSV       External cache sources (repeatable)\n"
	  "      --cache-to CSV         Cache export destinations (repeatable)\n"
	  "      --secret id=ID,src=FILE|env=VAR  Secret to expose to the build (repeatable)\n"
	  "      --ssh default|ID=SOCK  SSH agent socket to expose (repeatable)\n"
	  "      --add-host HOST:IP     Add a custom host-to-IP mapping (repeatable)\n"
	  "      --allow ENTITLEMENT    network.host, security.insecure (repeatable)\n"
	  "      --network MODE         Networking mode for RUN instructions\n"
	  "      --no-cache             Do not use the cache\n"
	  "      --no-cache-filter STAGE  Do not use the cache for STAGE (repeatable)\n"
	  "      --pull                 Always attempt to pull referenced images\n"
	  "      --build-context NAME=PATH|docker-image://REF|target:NAME|URL\n"
	  "                             An additional named build context (repeatable)\n"
	  "      --shm-size SIZE        Size of /dev/shm for RUN (bytes, or 64m, 1g)\n"
	  "      --ulimit NAME=SOFT[:HARD]  Resource limit for RUN (repeatable)\n"
	  "      --check                Check the Dockerfile (kiln lint); build nothing\n"
	  "      --push                 Push the image (shorthand for -o type=registry)\n"
	  "      --addr ADDRESS         BuildKit address (default: $BUILDKIT_HOST, then $DOCKER_HOST)\n"
	  "      --backend NAME         Use this backend plugin (buildkit, docker; $KILN_BACKEND)\n"
	  "      --opt KEY=VALUE        A frontend option (repeatable; docs/melange.md)\n"
	  "      --build-image REF      melange: the build root image (--opt build-image=REF)\n"
	  "      --source-dir DIR       melange: the sources (--opt source-dir=DIR)\n"
	  "      --signing-key FILE     melange: sign the .apk files and APKINDEX (--opt signing-key=FILE)\n"
	  "      --arch LIST            Target architectures (x86_64, aarch64, amd64, arm64)\n"
	  "      --print-llb            Print the LLB definition as JSON; build nothing\n"
	  "      --debug-image TAG      On failure, store the failing step's root as image TAG\n"
	  "      --export-context FILE  Also write the build context as sent (after\n"
	  "                             .dockerignore) to the tar file FILE\n"
	  TLS_HELP
	  "      --progress MODE        auto, tty, plain, json or quiet (default: auto)\n"
	  "      --no-emoji             ASCII symbols only in progress output\n"
	  "  -q, --quiet                No progress; print the image ID on success\n"
	  "  -v, --verbose              Show every log line and raw event\n"
	  "\nWith a kiln.lua (docs/kiln-lua.md): kiln build [OPTIONS] [TARGET|GROUP...]\n"
	  "builds the targets (default: the group \"default\") in dependency order.\n"
	  "  -f, --file FILE.lua        The script (default: ./kiln.lua)\n"
	  "      --set T.FIELD=VALUE    Override target fields (repeatable)\n"
	  "      --var KEY=VALUE        Set kiln.vars.KEY (repeatable)\n"
	  "  -j, --jobs N               Jobs (target x platform) in flight (default: 16)\n"
	  "      --fail-fast            Cancel the rest after a failure (default)\n"
	  "      --keep-going           Finish what does not depend on a failure\n"
	  "      --push                 Push every target (bake's --push)\n"
	  "  --addr, --backend, the TLS flags, --progress, --no-cache, --pull, -q, -v as above.\n" },
	{ "print-llb", kiln__cmd_print_llb, KILN_CMD_FRONTENDS,
	  "kiln print-llb [OPTIONS] FILE",
	  "Print the LLB definition a frontend makes of FILE, as JSON",
	  "Runs the frontend that reads FILE (e.g. a melange build file) and prints\n"
	  "its LLB definition as JSON: {\"digest\": the definition's (terminal op's)\n"
	  "digest, \"ops\": [{digest, op, metadata}...]}. No engine is contacted.\n"
	  "Takes kiln build's options (--platform, --arch, --opt, --build-image, ...).\n" },
	{ "lint", kiln__cmd_lint, KILN_CMD_FRONTENDS,
	  "kiln lint [OPTIONS] [PATH]",
	  "Check a Dockerfile: syntax errors and build-check rules",
	  "Parses PATH/Dockerfile (or -f FILE) as BuildKit does and reports\n"
	  "syntax errors and the rules of Docker's build checks, one finding per\n"
	  "line: FILE:LINE:COL: warning: RULE: MESSAGE (URL). Honours\n"
	  "'# check=skip=RULE,...;error=true'. Contacts no engine. Exit 1 when\n"
	  "there are errors, or warnings under error=true.\n\n"
	  "Options:\n"
	  "  -f, --file NAME            Dockerfile (default: PATH/Dockerfile)\n"
	  "      --build-arg KEY=VALUE  Build argument, as for build (repeatable)\n"
	  "      --format text|json     Output format (default: text)\n" },
	{ "print", kiln__cmd_print, 0,
	  "kiln print [-f FILE] [--set T.FIELD=V] [--var K=V] [TARGET|GROUP...]",
	  "Print the resolved plan of kiln.lua as JSON, building nothing",
	  "Evaluates kiln.lua (docs/kiln-lua.md) and prints the targets to build,\n"
	  "with inherits merged and --set applied, and the groups named on the way,\n"
	  "as 'docker buildx bake --print' does. Without names: the group\n"
	  "\"default\", else the only target. Secrets are shown as their specs.\n\n"
	  "Options:\n"
	  "  -f, --file FILE            The script (default: ./kiln.lua)\n"
	  "      --set T.FIELD=VALUE    Override a field of targets matching T ('*' for\n"
	  "                             all; FIELD+=VALUE appends to a list) (repeatable)\n"
	  "      --var KEY=VALUE        Set kiln.vars.KEY for the script (repeatable)\n" },
	{ "ls", kiln__cmd_ls, 0,
	  "kiln ls [-f FILE] [-q] [--format table|json]",
	  "List the targets and groups of kiln.lua",
	  "One line per target and group, by name, with its description (a group's\n"
	  "lists its members). Names starting with '_' are private and not listed.\n\n"
	  "Options:\n"
	  "  -f, --file FILE            The script (default: ./kiln.lua)\n"
	  "      --set T.FIELD=VALUE    As for print (repeatable)\n"
	  "      --var KEY=VALUE        As for print (repeatable)\n"
	  "      --format table|json    Output format (default: table)\n"
	  "  -q, --quiet                Names only, one per line\n" },
	{ "plugins", kiln__cmd_plugins, KILN_CMD_PLUGINS,
	  "kiln plugins [--format table|json]",
	  "List loaded plugins and where kiln looked for them",
	  "Lists each registered frontend, backend and renderer with its version\n"
	  "and the file that provides it, then the directories searched.\n"
	  "Plugins that were refused are listed with the reason; the exit code is\n"
	  "then 2.\n\n"
	  "Options:\n"
	  "      --format table|json    Output format (default: table)\n" },
	{ "replay", kiln__cmd_replay, KILN_CMD_RENDERERS,
	  "kiln replay [OPTIONS] FILE|-",
	  "Render a recorded JSON event stream (from --progress=json)",
	  "Reads the JSON event stream written by --progress=json and renders it\n"
	  "again with any renderer, on standard output. Elapsed times come from\n"
	  "the recorded timestamps, so the output is reproducible.\n\n"
	  "Options:\n"
	  "      --progress MODE        Renderer to use (default: plain)\n"
	  "      --no-emoji             ASCII symbols only\n"
	  "  -v, --verbose              Show every log line and raw event\n"
	  "      --speed FACTOR         Replay at FACTOR times the recorded pace (default 0:\n"
	  "                             as fast as possible)\n"
	  "      --pause-at N           Hold after the Nth event until SIGUSR1 (repeatable;\n"
	  "                             SIGINT/SIGTERM stop the replay)\n" },
	{ "workers", kiln__cmd_workers, KILN_CMD_BACKENDS,
	  "kiln workers [--addr ADDRESS] [--format table|json] [-v]",
	  "List the engine's workers and their platforms",
	  "Like 'buildctl debug workers': one line per worker with its platforms;\n"
	  "--verbose adds its labels.\n\n"
	  "Options:\n"
	  "      --push                 Push the image (shorthand for -o type=registry)\n"
	  "      --addr ADDRESS         BuildKit address (default: $BUILDKIT_HOST, then $DOCKER_HOST)\n"
	  "      --backend NAME         Use this backend plugin (buildkit, docker; $KILN_BACKEND)\n"
	  TLS_HELP
	  "      --format table|json    Output format (default: table)\n"
	  "  -v, --verbose              Show worker labels\n" },
	{ "du", kiln__cmd_du, KILN_CMD_BACKENDS,
	  "kiln du [--addr ADDRESS] [--filter F] [--format table|json] [-v]",
	  "Show the engine's build cache disk usage",
	  "Like 'buildctl du': one line per cache record (ID, reclaimable, size,\n"
	  "last access; '*' marks mutable records), then Shared, Private,\n"
	  "Reclaimable and Total. Sizes are decimal (kB = 1000 B).\n\n"
	  "Options:\n"
	  "      --addr ADDRESS         Engine address\n"
	  TLS_HELP
	  "      --filter KEY==VALUE    Filter records, as buildctl (repeatable)\n"
	  "      --format table|json    Output format (default: table)\n"
	  "  -v, --verbose              One block of details per record\n" },
	{ "prune", kiln__cmd_prune, KILN_CMD_BACKENDS,
	  "kiln prune [--addr ADDRESS] [--all] [--keep-duration D] [--keep-storage S] [--filter F]",
	  "Remove build cache",
	  "Like 'buildctl prune': prints each freed record as it goes, then Total.\n\n"
	  "Options:\n"
	  "      --addr ADDRESS         Engine address\n"
	  TLS_HELP
	  "      --all                  Include internal and frontend records\n"
	  "      --keep-duration D      Keep records used within D (e.g. 24h, 90m)\n"
	  "      --keep-storage SIZE    Keep this much cache (bytes; k, m, g, t suffixes)\n"
	  "      --filter KEY==VALUE    Filter records (repeatable)\n"
	  "      --format table|json    Output format (default: table)\n"
	  "  -v, --verbose              One block of details per freed record\n" },
	{ "history", kiln__cmd_history, 0,
	  "kiln history ls|inspect|logs|rm|trace [OPTIONS] [ID]",
	  "Show, print the logs of and remove build records",
	  "Each job kiln built on this machine (one solve) leaves a record under the\n"
	  "state directory ($KILN_STATE_DIR, else $XDG_STATE_HOME/kiln, else\n"
	  "~/.local/state/kiln) with its full step logs; docs/history.md. ID is a\n"
	  "record ID or a unique prefix of one, or ^N (the Nth build before the\n"
	  "newest); no ID means the newest. No engine is needed.\n\n"
	  "  kiln history ls [--filter KEY=VALUE] [--format table|json]\n"
	  "                             Newest first (KEY: status, name, target, platform;\n"
	  "                             KEY!=VALUE excludes)\n"
	  "  kiln history inspect [--format pretty|json] [ID]\n"
	  "                             Status, times, cache hits, image, every step\n"
	  "  kiln history logs [--step N] [ID]\n"
	  "                             The complete logs, as --progress=plain prints them;\n"
	  "                             --step N: step N's output, raw bytes\n"
	  "  kiln history rm ID... | --all\n"
	  "                             Remove records and their logs (not builds under way)\n"
	  "  kiln history trace [-o FILE] [--format html|svg] [ID]\n"
	  "                             The build's timeline as one self-contained file\n"
	  "                             (default: HTML on stdout)\n\n"
	  "Records older than $KILN_HISTORY_MAX_AGE (default 30d), the oldest beyond\n"
	  "$KILN_HISTORY_MAX_SIZE (default 1g) in all, and runs beyond the newest 200\n"
	  "are removed when a build starts.\n" },
	{ "stats", kiln__cmd_stats, 0,
	  "kiln stats [--since D] [--target NAME] [--format table|json]",
	  "Totals over the build records: success and cache hit rates, durations",
	  "Over the finished records (kiln history): builds, success rate, cache hit\n"
	  "rate, and per target the average and p95 (nearest rank) duration.\n\n"
	  "Options:\n"
	  "      --since D              Only builds started since D: a duration back from now\n"
	  "                             (24h, 7d, 90m) or a UTC date (2026-12-01[THH:MM:SSZ])\n"
	  "      --target NAME          Only this target (a record's name or kiln.lua target)\n"
	  "      --format table|json    Output format (default: table)\n" },
	{ "ps", kiln__cmd_ps, 0,
	  "kiln ps [--format table|json]",
	  "List the builds under way on this machine",
	  "One line per job of every kiln build running here (the records whose\n"
	  "builder still holds its lock), with its ID for 'kiln cancel'.\n\n"
	  "Options:\n"
	  "      --format table|json    Output format (default: table)\n" },
	{ "cancel", kiln__cmd_cancel, 0,
	  "kiln cancel ID...",
	  "Cancel a build under way",
	  "Sends SIGINT to the kiln process running build ID (see 'kiln ps'), which\n"
	  "cancels its solves on the engine and exits 130, as on Ctrl-C; the other\n"
	  "jobs of that process (a kiln.lua run) end with it. Waits up to 10 s for\n"
	  "the process to finish, then prints the ID.\n" },
	{ "version", cmd_version, 0, "kiln version", "Show kiln's version and plugin ABI",
	  "" },
	{ "help", cmd_help, 0, "kiln help [COMMAND]", "Show help for kiln or a command",
	  "" },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};

static const struct kiln_cmd *find_cmd(const char *name)
{
	for (const struct kiln_cmd *c = kiln__commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int kiln__usage_error(const char *cmd, const char *fmt, ...)
{
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	fprintf(stderr, "kiln: %s\n", kiln__sb_str(&sb));
	if (cmd)
		fprintf(stderr, "Run 'kiln help %s' for usage.\n", cmd);
	else
		fprintf(stderr, "Run 'kiln help' for usage.\n");
	kiln__sb_release(&sb);
	return KILN_EXIT_USAGE;
}

void kiln__print_help(const struct kiln_cmd *cmd)
{
	printf("Usage: %s\n\n%s.\n", cmd->usage, cmd->summary);
	if (cmd->help && *cmd->help)
		printf("\n%s", cmd->help);
}

int kiln__exit_code(int code)
{
	switch (code) {
	case KILN_OK: return KILN_EXIT_OK;
	case KILN_E_BUILD:
	case KILN_E_ENGINE_LOST: return KILN_EXIT_FAILED; /* as buildx: the build failed */
	case KILN_E_CONNECT:
	case KILN_E_PROTOCOL: return KILN_EXIT_ENGINE;
	case KILN_E_CANCELLED: return KILN_EXIT_SIGINT;
	default: return KILN_EXIT_USAGE;
	}
}

static void print_usage(FILE *f)
{
	fprintf(f, "Usage: kiln [--debug] COMMAND [OPTIONS]\n\n"
		   "kiln drives BuildKit and the Docker Engine API to build container images.\n\n"
		   "Commands:\n");
	for (const struct kiln_cmd *c = kiln__commands; c->name; c++)
		if (!(c->flags & KILN_CMD_HIDDEN))
			fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'kiln help COMMAND' for a command's options.\n"
		   "Environment: BUILDKIT_HOST, DOCKER_HOST, KILN_PLUGIN_PATH, NO_COLOR.\n");
}

static int cmd_help(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc < 2) {
		print_usage(stdout);
		return KILN_EXIT_OK;
	}
	const struct kiln_cmd *c = find_cmd(argv[1]);
	if (!c)
		return kiln__usage_error(NULL, "unknown command '%s'", argv[1]);
	kiln__print_help(c);
	return KILN_EXIT_OK;
}

static int cmd_version(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc > 1 && strcmp(argv[1], "--help") && strcmp(argv[1], "-h"))
		return kiln__usage_error("version", "'kiln version' takes no arguments");
	printf("kiln %s (plugin ABI %u.%u)\n", KILN_VERSION, KILN_ABI_MAJOR, KILN_ABI_MINOR);
	return KILN_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct kiln_ctx ctx = { 0 };
	const char *lvl = getenv("KILN_LOG_LEVEL");
	if (lvl && strcmp(lvl, "debug") == 0)
		kiln__log_level = KILN_LOG_DEBUG;

	/* Global options stop at the first non-option: the command. */
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--debug") || !strcmp(argv[i], "-D")) {
			kiln__log_level = KILN_LOG_DEBUG;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_usage(stdout);
			return KILN_EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			return cmd_version(&ctx, 1, argv);
		} else {
			return kiln__usage_error(NULL, "unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc) {
		print_usage(stderr);
		return KILN_EXIT_USAGE;
	}
	const struct kiln_cmd *cmd = find_cmd(argv[i]);
	if (!cmd)
		return kiln__usage_error(NULL, "unknown command '%s'", argv[i]);
	for (int k = i + 1; k < argc; k++) {
		if (!strcmp(argv[k], "--"))
			break;
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			kiln__print_help(cmd);
			return KILN_EXIT_OK;
		}
	}
	/* A closed pipe (kiln … | head) ends output, not the process. */
	signal(SIGPIPE, SIG_IGN);

	/* Only the kinds the command needs (the KILN_CMD_* flags). */
	unsigned kinds = cmd->flags & KILN_CMD_PLUGINS ? KILN_KINDS_ALL
			 : (cmd->flags & KILN_CMD_FRONTENDS ? KILN_KIND_BIT(KILN_KIND_FRONTEND) : 0) |
			   (cmd->flags & KILN_CMD_BACKENDS ? KILN_KIND_BIT(KILN_KIND_BACKEND) : 0) |
			   (cmd->flags & KILN_CMD_RENDERERS ? KILN_KIND_BIT(KILN_KIND_RENDERER) : 0);
	/* `kiln plugins` reports refusals itself; others warn as they
	 * happen (a KILN_CMD_LAZY command loads plugins while it runs). */
	ctx.reg.warn_refused = cmd->run != kiln__cmd_plugins;
	if (kinds) {
		kiln__registry_load_kinds(&ctx.reg, kinds);
		ctx.plugins_loaded = true;
	}
	optind = 1;
	int rc = cmd->run(&ctx, argc - i, argv + i);
	fflush(stdout);
	kiln__registry_release(&ctx.reg);
	return rc;
}
