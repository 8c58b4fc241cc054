/*
 * parser.h: the Dockerfile parser of the `dockerfile` frontend plugin.
 *
 * It reads a Dockerfile as BuildKit's frontend/dockerfile/parser and
 * instructions packages do (moby/buildkit, dockerfile syntax 1.x):
 * parser directives, comments, line continuations, heredocs, JSON and
 * shell forms, instruction flags, every instruction; and it expands
 * variables in the places BuildKit expands them (FROM with the meta ARGs;
 * ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and
 * their flags, with the stage's ARG/ENV values).
 *
 * The parser does not depend on the host table, so the lint code, the
 * plugin, tests/tools/dfparse (the golden-file dumper) and tests/fuzz link
 * the same object. Everything a struct df_file holds is owned by it and
 * freed by df_free(). Lines and columns are 1-based; 0 means unknown.
 */
#ifndef KILN_DF_PARSER_H
#define KILN_DF_PARSER_H

#include <stdbool.h>
#include <stddef.h>

enum df_kind {
	DF_ADD, DF_ARG, DF_CMD, DF_COPY, DF_ENTRYPOINT, DF_ENV, DF_EXPOSE,
	DF_FROM, DF_HEALTHCHECK, DF_LABEL, DF_MAINTAINER, DF_ONBUILD, DF_RUN,
	DF_SHELL, DF_STOPSIGNAL, DF_USER, DF_VOLUME, DF_WORKDIR,
	DF_KIND_COUNT
};

/* "ADD", "ARG", …: the canonical upper-case keyword. */
const char *df_kind_name(enum df_kind kind);

/* An instruction flag: --name=value, or --name alone (value NULL, e.g.
 * --link). Repeated flags (--mount) are separate entries, in order. */
struct df_flag {
	char *name;     /* without the dashes: "from", "mount", "chmod" */
	char *value;    /* as written (raw, before expansion), or NULL */
	char *expanded; /* value after variable expansion where BuildKit
			 * expands this flag (COPY/ADD --from/--chown/--chmod,
			 * FROM --platform, …), else NULL */
	int line, column;
};

/* A heredoc body (<<EOF, <<-EOF, <<"EOF", <<'EOF'). */
struct df_heredoc {
	char *name;     /* the delimiter word, unquoted */
	char *content;  /* the body, each line ending in '\n'; with <<- the
			 * leading tabs removed */
	bool expand;    /* false when the delimiter was quoted */
	bool chomp;     /* <<- */
	int line;       /* line of the first body line */
};

/* A KEY=VALUE pair of ENV, LABEL or ARG (value NULL for ARG without a
 * default). key/value are after quote removal and expansion as BuildKit
 * applies them; raw_value is as written. */
struct df_kv {
	char *key;
	char *value;
	char *raw_value;
	bool legacy; /* "ENV KEY value" (space-separated) form */
};

struct df_instruction {
	enum df_kind kind;
	char *keyword;          /* as written ("from", "Run"): lint checks casing */
	int line, end_line;     /* first and last source line, heredoc bodies included */
	int column;             /* column of the keyword */
	char *original;         /* the logical line as read (continuations joined,
				 * without heredoc bodies) */

	struct df_flag *flags;
	size_t n_flags;

	/* Arguments after the flags.
	 * - JSON (exec) form: json = true, args = the array's strings.
	 * - shell form: json = false, args[0] = the rest of the line (one
	 *   string, not split), except for instructions whose arguments
	 *   BuildKit splits into words (ADD/COPY sources and destination,
	 *   EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, FROM, MAINTAINER,
	 *   HEALTHCHECK NONE, ONBUILD's keyword): one entry per word, raw.
	 * - ENV, LABEL, ARG: pairs in kvs, args empty. */
	char **args;
	size_t n_args;
	bool json;
	/* args after expansion, where BuildKit expands (same length as args);
	 * NULL where this instruction is not expanded. */
	char **expanded;

	struct df_kv *kvs;
	size_t n_kvs;

	struct df_heredoc *heredocs;
	size_t n_heredocs;

	/* ONBUILD: the trigger instruction, parsed (NULL otherwise). */
	struct df_instruction *onbuild;

	/* HEALTHCHECK: none = HEALTHCHECK NONE; CMD's args as above. */
	bool healthcheck_none;
};

struct df_stage {
	char *name;            /* lower-cased AS name, or NULL */
	char *name_as_written; /* as written, or NULL */
	char *base;            /* FROM image after meta-ARG expansion */
	char *base_raw;        /* as written */
	char *platform;        /* --platform after expansion, or NULL */
	int base_stage;        /* index of the stage named by base, or -1 */
	int line;              /* line of the FROM */
	size_t first;          /* index in df_file.instructions of its FROM */
	size_t count;          /* instructions of the stage, FROM included */
	/* Stages this one needs (base_stage, COPY --from=stage,
	 * RUN --mount=from=stage), indices, sorted, no duplicates. */
	int *deps;
	size_t n_deps;
};

/* A parser directive (# syntax=, # escape=, # check=), in file order. */
struct df_directive {
	char *name;  /* lower-cased */
	char *value;
	int line;
};

/* A non-fatal finding while parsing (BuildKit's parser warnings, e.g. an
 * empty continuation line); lint reports them. */
struct df_warning {
	char *message;
	int line;
};

struct df_file {
	char *filename;
	char escape;                  /* '\\' or '`' */
	char *syntax;                 /* # syntax= value, or NULL */
	struct df_directive *directives;
	size_t n_directives;

	/* Every instruction in file order; meta ARGs (before the first FROM)
	 * come first, then each stage's FROM and its instructions. */
	struct df_instruction *instructions;
	size_t n_instructions;
	size_t n_meta_args;           /* leading ARGs before the first FROM */

	struct df_stage *stages;
	size_t n_stages;

	struct df_warning *warnings;
	size_t n_warnings;
};

/* Parse options; zero-initialise. */
struct df_parse_opts {
	/* --build-arg values (override meta ARG defaults in FROM expansion);
	 * key i is build_args[2*i], value build_args[2*i+1]. */
	const char *const *build_args;
	size_t n_build_args;
};

/* Where parsing failed. message is a fixed buffer: no freeing. */
struct df_error {
	int line, column;  /* 1-based; line 0 = whole file */
	char message[256];
};

/*
 * Parse len bytes of buf (need not be NUL-terminated; NUL bytes inside are
 * an error) as the Dockerfile named filename (used in messages only).
 * On success *out is a new df_file (free with df_free) and 0 is returned;
 * on a syntax error, *out is NULL, *err says where and why, and -1 is
 * returned. Never aborts on bad input; bounded by the input's size in
 * time and memory (no recursion deeper than ONBUILD's one level).
 *
 * Syntax errors, worded as BuildKit words them where it has a message:
 * unknown instruction, unterminated heredoc, a flag the instruction does
 * not take ("unknown flag: chown"), a missing or malformed argument, an
 * instruction before the first FROM other than ARG, no FROM at all (an
 * empty or ARG-only file), a NUL byte, an invalid stage name. Style and
 * semantic problems (casing, duplicate stage names, undefined variables)
 * are lint's, not errors here.
 */
int df_parse(const char *filename, const char *buf, size_t len,
	     const struct df_parse_opts *opts, struct df_file **out,
	     struct df_error *err);

void df_free(struct df_file *file);

/* The stage index named by name (case-insensitive AS name, or a decimal
 * index), or -1. */
int df_stage_index(const struct df_file *file, const char *name);

/*
 * The number of steps a build of target (NULL or "" = the last stage) runs:
 * the instructions (FROM included, meta ARGs excluded) of the target stage
 * and every stage it needs, transitively. This is the M of "Step N/M".
 * Returns -1 when target names no stage.
 */
int df_steps(const struct df_file *file, const char *target);

/*
 * Expand $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word},
 * ${VAR+word}, ${VAR:?msg} in word as BuildKit's shell lexer
 * (ProcessWordWithMatches) does for escape: quotes are removed, escape
 * characters honoured. lookup returns a variable's value or NULL (unset).
 * Unset variables expand to "" and are reported through unset (may be
 * NULL) once per name. Returns a malloc'd string, or NULL with *err
 * filled (e.g. "${VAR:?msg}" with VAR unset, bad substitution).
 */
typedef const char *(*df_lookup_fn)(void *ctx, const char *name);
typedef void (*df_unset_fn)(void *ctx, const char *name);
char *df_expand(const char *word, char escape, df_lookup_fn lookup,
		df_unset_fn unset, void *ctx, struct df_error *err);

/* The whole parse result as JSON (the golden-file format of
 * tests/golden/dockerfile/), keys in a fixed order. malloc'd. */
char *df_to_json(const struct df_file *file);

#endif
