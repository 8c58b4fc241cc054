/*
 * check.h: what a frontend's static check reports (`kiln lint`,
 * `kiln build --check`), and the syntax a build definition needs from the
 * engine's frontend.
 *
 * Rule names and meanings follow Docker's "Build checks" reference
 * (https://docs.docker.com/reference/build-checks/); severities and the
 * `# check=skip=…;error=true` directive follow BuildKit's linter
 * (moby/buildkit frontend/dockerfile/linter).
 */
#ifndef KILN_CHECK_H
#define KILN_CHECK_H

#include "kiln/common.h"

enum kiln_severity {
	KILN_SEV_WARNING = 1, /* a build-check rule (exit 1 only under error=true) */
	KILN_SEV_ERROR = 2,   /* a syntax error: the build cannot run */
};

/* One finding. Strings live in the arena given to kiln_frontend.check(). */
struct kiln_diagnostic {
	enum kiln_severity severity;
	const char *rule;    /* "FromAsCasing", …; NULL for a syntax error */
	const char *message; /* one line, no trailing newline */
	const char *url;     /* the rule's documentation page, or NULL */
	const char *file;    /* the file the position is in */
	int line, column;    /* 1-based; 0 = unknown */
	int end_line;        /* last line of the instruction, or 0 */
};

/* A check's result. fail is set when the findings should fail the command:
 * any error, or any warning when the file says `# check=error=true`. */
struct kiln_check_result {
	uint32_t struct_size;
	struct kiln_diagnostic *diags; /* sorted by line, then column */
	size_t n_diags;
	bool fail;
	int skipped_rules;             /* findings dropped by check=skip= */
};

/*
 * A construct of the input that the engine's built-in frontend may not
 * build (e.g. a heredoc under BuildKit 0.8). The frontend lists what it
 * found; the backend compares it with the engine's version before it sends
 * anything and refuses with a message naming the construct, file:line and
 * the engine version. Strings live in the job's arena.
 */
struct kiln_syntax_need {
	const char *construct;   /* "heredoc", "COPY --link", "named context", … */
	const char *file;
	int line, column;        /* 0 when it comes from an option, not the file */
	const char *syntax;      /* the Dockerfile syntax that introduced it, "1.4" */
	const char *buildkit;    /* first BuildKit release whose built-in
				  * frontend has it, "0.10" */
};

#endif
