/* A test frontend that describes its build as LLB with the host's graph
 * builder (kiln/graph.h), for tests/integration/buildkit_build_test.sh:
 * `kiln build -f x.llb-test -o type=local,dest=out CONTEXT`.
 *
 * An .llb-test file has lines KEY=VALUE (blank lines and # comments
 * skipped): greeting=TEXT (required) and note=TEXT. The build:
 *
 *   busybox   docker-image://docker.io/library/busybox:latest
 *   context   local://context with the include pattern input.txt
 *   prep      on busybox: mkdir /work; copy context:*.txt to /work/ (so
 *             any other *.txt the session sent would show up); mkfile
 *             /work/note.txt (the note)
 *   run       on prep, cwd /work, env GREETING: writes out.txt (the
 *             greeting), cwd.txt (pwd) and combined.txt (input + note)
 *   result    on scratch: copy run:/work's contents to /; mkdir -p
 *             /made/deep (0750); mkfile /made/deep/file (0640)
 *
 * so the local export holds input.txt, note.txt, out.txt, cwd.txt,
 * combined.txt and made/deep/file. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

static const char *const patterns[] = { "*.llb-test", NULL };

/* Reads FILE into *greeting and *note (arena strings). */
static int read_spec(const struct kiln_host *host, struct kiln_arena *arena, const char *file,
		     const char **greeting, const char **note, struct kiln_err *err)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return host->error_at(err, KILN_E_NOTFOUND, file, 0, 0, "cannot read: %s",
				      strerror(errno));
	char line[4096];
	int lineno = 0, rc = 0;
	*greeting = NULL;
	*note = "";
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			rc = host->error_at(err, KILN_E_SYNTAX, file, lineno, 1,
					    "expected KEY=VALUE, got '%s'", line);
			break;
		}
		*eq = '\0';
		if (strcmp(line, "greeting") == 0) {
			*greeting = host->arena_strdup(arena, eq + 1);
		} else if (strcmp(line, "note") == 0) {
			*note = host->arena_strdup(arena, eq + 1);
		} else {
			rc = host->error_at(err, KILN_E_SYNTAX, file, lineno, 1,
					    "unknown key '%s' (greeting, note)", line);
			break;
		}
	}
	fclose(f);
	if (rc == 0 && !*greeting)
		rc = host->error_at(err, KILN_E_SYNTAX, file, 0, 0, "no greeting= line");
	return rc;
}

static int load(const struct kiln_host *host, struct kiln_arena *arena,
		const struct kiln_build_opts *opts, struct kiln_build_def *def,
		struct kiln_err *err)
{
	if (!KILN_HAS_FIELD(host, struct kiln_host, graph_marshal))
		return host->error(err, KILN_E_UNSUPPORTED, "this kiln has no graph builder");
	if (!opts->dockerfile)
		return host->error(err, KILN_E_INVALID, "llbtest needs -f FILE.llb-test");
	char ctx_abs[PATH_MAX];
	if (!opts->context || !realpath(opts->context, ctx_abs))
		return host->error(err, KILN_E_NOTFOUND, "cannot use the build context '%s'",
				   opts->context ? opts->context : "");

	const char *greeting = NULL, *note = "";
	int rc = read_spec(host, arena, opts->dockerfile, &greeting, &note, err);
	if (rc < 0)
		return rc;

	struct kiln_graph *g;
	struct kiln_graph_opts gopts = { .struct_size = sizeof(gopts), .platform = opts->platform };
	if ((rc = host->graph_new(&gopts, &g, err)) < 0)
		return rc;

	struct kiln_graph_ref busybox, context, prep, run, result;
	struct kiln_graph_source img = {
		.struct_size = sizeof(img),
		.kind = KILN_GRAPH_SOURCE_IMAGE,
		.ref = "docker.io/library/busybox:latest",
	};
	/* No session ID in the graph: the daemon pulls a source without
	 * local.session from the solve's own session. */
	const char *only[] = { "input.txt" };
	struct kiln_graph_source local = {
		.struct_size = sizeof(local),
		.kind = KILN_GRAPH_SOURCE_LOCAL,
		.ref = "context",
		.unique_id = "kiln-llbtest",
		.include_patterns = only,
		.n_include_patterns = 1,
		.shared_key_hint = "context",
		.name = "[llbtest] load input.txt",
	};
	if ((rc = host->graph_add_source(g, &img, &busybox, err)) < 0 ||
	    (rc = host->graph_add_source(g, &local, &context, err)) < 0)
		goto done;

	struct kiln_graph_file_action prep_acts[] = {
		{ .struct_size = sizeof(prep_acts[0]), .kind = KILN_GRAPH_FILE_MKDIR,
		  .path = "/work", .mode = 0755, .flags = KILN_GRAPH_MKDIR_PARENTS },
		{ .struct_size = sizeof(prep_acts[0]), .kind = KILN_GRAPH_FILE_COPY,
		  .src = context, .src_path = "*.txt", .path = "/work/",
		  .flags = KILN_GRAPH_COPY_DOCKERFILE },
		{ .struct_size = sizeof(prep_acts[0]), .kind = KILN_GRAPH_FILE_MKFILE,
		  .path = "/work/note.txt", .mode = 0644, .data = note, .data_len = strlen(note) },
	};
	struct kiln_graph_file prep_op = {
		.struct_size = sizeof(prep_op), .base = busybox, .actions = prep_acts,
		.n_actions = 3, .name = "[llbtest] prepare /work",
	};
	if ((rc = host->graph_add_file(g, &prep_op, &prep, err)) < 0)
		goto done;

	const char *args[] = { "/bin/sh", "-c",
			       "echo \"$GREETING\" > out.txt && pwd > cwd.txt && "
			       "cat input.txt note.txt > combined.txt" };
	struct kiln_kv env[] = {
		{ "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
		{ "GREETING", greeting },
	};
	struct kiln_graph_exec exec = {
		.struct_size = sizeof(exec), .rootfs = prep, .args = args, .n_args = 3,
		.env = env, .n_env = 2, .cwd = "/work", .name = "[llbtest] write out.txt",
	};
	if ((rc = host->graph_add_exec(g, &exec, &run, err)) < 0)
		goto done;

	static const char made[] = "made by a file op\n";
	struct kiln_graph_file_action result_acts[] = {
		{ .struct_size = sizeof(result_acts[0]), .kind = KILN_GRAPH_FILE_COPY,
		  .src = run, .src_path = "/work", .path = "/",
		  .flags = KILN_GRAPH_COPY_DIR_CONTENTS | KILN_GRAPH_COPY_CREATE_DEST_PATH },
		{ .struct_size = sizeof(result_acts[0]), .kind = KILN_GRAPH_FILE_MKDIR,
		  .path = "/made/deep", .mode = 0750, .flags = KILN_GRAPH_MKDIR_PARENTS },
		{ .struct_size = sizeof(result_acts[0]), .kind = KILN_GRAPH_FILE_MKFILE,
		  .path = "/made/deep/file", .mode = 0640, .data = made,
		  .data_len = sizeof(made) - 1 },
	};
	struct kiln_graph_file result_op = {
		.struct_size = sizeof(result_op), .base = KILN_GRAPH_SCRATCH,
		.actions = result_acts, .n_actions = 3, .name = "[llbtest] collect the result",
	};
	if ((rc = host->graph_add_file(g, &result_op, &result, err)) < 0)
		goto done;

	char digest[KILN_GRAPH_DIGEST_SIZE];
	rc = host->graph_marshal(g, result, arena, &def->llb, &def->llb_len, digest, err);
	if (rc < 0)
		goto done;
	struct kiln_kv *dirs = host->arena_alloc(arena, sizeof(*dirs));
	dirs[0].key = "context";
	dirs[0].value = host->arena_strdup(arena, ctx_abs);
	def->frontend = NULL;
	def->local_dirs = dirs;
	def->n_local_dirs = 1;
	def->steps = 3;
	host->log(KILN_LOG_DEBUG, "llbtest: LLB %zu bytes, result %s", def->llb_len, digest);
done:
	host->graph_free(g);
	return rc;
}

static const struct kiln_frontend vt = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_frontend),
	.name = "llbtest",
	.version = "0.1.0",
	.description = "test frontend: a fixed LLB graph made with the host's graph builder",
	.patterns = patterns,
	.load = load,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_frontend(plugin, &vt);
}
