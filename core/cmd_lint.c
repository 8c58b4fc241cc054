/* cmd_lint.c: `kiln lint [-f FILE] [--format text|json] [PATH]` and the
 * printer `kiln build --check` shares: a frontend's static check (syntax
 * errors and BuildKit's build-check rules), without contacting any engine.
 * Output formats are in docs/cli.md. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "cli.h"
#include "util.h"

static const char *severity_name(enum kiln_severity s)
{
	return s == KILN_SEV_ERROR ? "error" : "warning";
}

static void print_text(const struct kiln_check_result *res)
{
	for (size_t i = 0; i < res->n_diags; i++) {
		const struct kiln_diagnostic *d = &res->diags[i];
		printf("%s:%d:%d: %s: ", d->file ? d->file : "", d->line, d->column,
		       severity_name(d->severity));
		if (d->rule)
			printf("%s: ", d->rule);
		fputs(d->message ? d->message : "", stdout);
		if (d->url)
			printf(" (%s)", d->url);
		putchar('\n');
	}
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void print_json(const struct kiln_check_result *res)
{
	json_t *root = json_object(), *list = json_array();
	for (size_t i = 0; i < res->n_diags; i++) {
		const struct kiln_diagnostic *d = &res->diags[i];
		json_t *o = json_object();
		json_object_set_new(o, "file", str_or_null(d->file));
		json_object_set_new(o, "line", json_integer(d->line));
		json_object_set_new(o, "column", json_integer(d->column));
		json_object_set_new(o, "end_line", json_integer(d->end_line ? d->end_line
									 : d->line));
		json_object_set_new(o, "severity", json_string(severity_name(d->severity)));
		json_object_set_new(o, "rule", str_or_null(d->rule));
		json_object_set_new(o, "message", str_or_null(d->message));
		json_object_set_new(o, "url", str_or_null(d->url));
		json_array_append_new(list, o);
	}
	json_object_set_new(root, "diagnostics", list);
	json_object_set_new(root, "fail", json_boolean(res->fail));
	char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	if (s)
		puts(s);
	free(s);
	json_decref(root);
}

int kiln__check_run(struct kiln_ctx *ctx, const struct kiln_build_opts *o,
		    const char *format)
{
	const char *file = o->dockerfile ? o->dockerfile : "Dockerfile";
	const struct kiln_frontend *fe = kiln__pick_frontend(ctx, file);
	if (!fe) {
		fprintf(stderr, "kiln: no frontend plugin reads '%s' (see 'kiln plugins')\n", file);
		return KILN_EXIT_USAGE;
	}
	if (!KILN_HAS_FIELD(fe, struct kiln_frontend, check) || !fe->check) {
		fprintf(stderr, "kiln: the %s frontend has no static checks\n", fe->name);
		return KILN_EXIT_USAGE;
	}
	struct kiln_arena *arena = kiln__arena_new();
	struct kiln_check_result res = { .struct_size = sizeof(res) };
	struct kiln_err err = { 0 };
	int rc = fe->check(&kiln__host, arena, o, &res, &err);
	if (rc < 0) {
		kiln__err_print(&err);
		kiln__arena_free(arena);
		return kiln__exit_code(rc);
	}
	if (strcmp(format, "json") == 0)
		print_json(&res);
	else
		print_text(&res);
	fflush(stdout);
	/* A summary on stderr, worded as `docker build --check` words it. */
	size_t warnings = 0, errors = 0;
	for (size_t i = 0; i < res.n_diags; i++)
		*(res.diags[i].severity == KILN_SEV_ERROR ? &errors : &warnings) += 1;
	if (strcmp(format, "json") != 0) {
		if (errors)
			fprintf(stderr, "Check failed: %zu error%s, %zu warning%s.\n", errors,
				errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
		else if (warnings)
			fprintf(stderr, "Check complete, %zu warning%s found%s.\n", warnings,
				warnings == 1 ? "" : "s",
				res.fail ? " (check=error=true: failing)" : "");
		else
			fprintf(stderr, "Check complete, no warnings found.\n");
	}
	rc = res.fail ? KILN_EXIT_FAILED : KILN_EXIT_OK;
	kiln__arena_free(arena);
	return rc;
}

enum { OPT_FORMAT = 256, OPT_BUILD_ARG };

int kiln__cmd_lint(struct kiln_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "build-arg", required_argument, NULL, OPT_BUILD_ARG },
		{ NULL, 0, NULL, 0 },
	};
	struct kiln_build_opts o = { .struct_size = sizeof(o) };
	struct kiln_kvlist args = { 0 };
	const char *format = "text";
	int c, rc = 0;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.dockerfile = optarg; break;
		case OPT_FORMAT: format = optarg; break;
		case OPT_BUILD_ARG:
			rc = kiln__kv_add(&args, optarg, true, "lint", "--build-arg");
			break;
		case ':':
			rc = kiln__usage_error("lint", "option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			rc = kiln__usage_error("lint", "unknown option '%s'", argv[optind - 1]);
			break;
		}
	}
	if (rc == 0 && strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
		rc = kiln__usage_error("lint", "--format must be text or json, not '%s'", format);
	if (rc == 0 && argc - optind > 1)
		rc = kiln__usage_error("lint", "'kiln lint' takes at most one PATH");
	if (rc == 0) {
		o.context = optind < argc ? argv[optind] : ".";
		o.build_args = args.v;
		o.n_build_args = args.n;
		o.check = true;
		rc = kiln__check_run(ctx, &o, format);
	}
	kiln__kv_release(&args);
	return rc;
}
