/*
 * lint.h: the static checks of the `dockerfile` frontend (`kiln lint`,
 * `kiln build --check`): BuildKit's Dockerfile build-check rules
 * (moby/buildkit frontend/dockerfile/linter, documented at
 * https://docs.docker.com/reference/build-checks/), run over a parsed
 * struct df_file without an engine and without the base images' configs.
 *
 * Names, messages and URLs are BuildKit's; a finding sits on the lines
 * BuildKit reports (the instruction's, for most rules), with the column of
 * the instruction's keyword. The `# check=skip=…;error=true` directive and
 * the BUILDKIT_DOCKERFILE_CHECK build argument (which replaces it) are
 * honoured as BuildKit honours them. docs/lint.md lists the rules.
 *
 * Like the parser, this code does not use the host table: plain malloc.
 */
#ifndef KILN_DF_LINT_H
#define KILN_DF_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "parser.h"

/* One rule of the rule set. Strings are static. */
struct df_lint_rule {
	const char *name;        /* "FromAsCasing" */
	const char *description; /* BuildKit's one-line description */
	const char *url;         /* https://docs.docker.com/go/dockerfile/rule/<kebab-name>/ */
	bool experimental;       /* off unless `check=experimental=` names it */
	bool implemented;        /* false: needs what a static check lacks */
};

/* Every rule of BuildKit's rule set (implemented or not), by name. */
const struct df_lint_rule *df_lint_rules(size_t *n);

/* One finding. rule and url are static; message is owned by the result. */
struct df_finding {
	const char *rule;
	char *message;     /* one line, BuildKit's wording */
	const char *url;
	int line, column;  /* 1-based */
	int end_line;      /* last line of the instruction (>= line) */
};

/* Options; zero-initialise. */
struct df_lint_opts {
	/* --build-arg values, key i is build_args[2*i], value build_args[2*i+1]
	 * (as in struct df_parse_opts). They override meta ARG defaults and
	 * ARG values as in a build; BUILDKIT_DOCKERFILE_CHECK replaces the
	 * file's check directive. */
	const char *const *build_args;
	size_t n_build_args;
};

struct df_lint_result {
	struct df_finding *findings; /* sorted by line, then column, then
				      * the order BuildKit raises them */
	size_t n;
	bool error;     /* check error=true is in effect: any finding fails */
	size_t skipped; /* findings dropped by check=skip= */
};

/*
 * Lint file. On success fills *res (free with df_lint_result_free) and
 * returns 0. Returns -1 with *err filled, and *res empty, when the check
 * configuration is invalid, as BuildKit then refuses the build:
 *   failed to parse check options: invalid check option "foo"
 *   (err->line = the directive's line), or
 *   failed to parse BUILDKIT_DOCKERFILE_CHECK: … (err->line = 0);
 * or when memory runs out ("out of memory"). Never aborts.
 */
int df_lint(const struct df_file *file, const struct df_lint_opts *opts,
	    struct df_lint_result *res, struct df_error *err);

void df_lint_result_free(struct df_lint_result *res);

#endif
