/*
 * melange.h: internals of the melange frontend (docs/melange.md).
 *
 * The pipeline is: doc.c reads YAML into a tree of nodes with line
 * numbers; config.c turns the tree into a struct mel_config and runs the
 * parse phase of substitution (package.*, vars.*, var-transforms,
 * range.*); compile.c resolves `uses:`, `with:`, `if:`, environment and
 * working-directory into a flat list of execs (struct mel_plan); llb.c
 * turns the plan into LLB with the host's graph builder. subst.c is the
 * ${{...}} substitution, cond.c melange's `if:` language, pipelines.c the
 * built-in `uses:` pipelines.
 *
 * Everything but llb.c and frontend.c is independent of the host table,
 * so unit tests and the fuzz target link these files alone. Memory comes
 * from a struct mel_pool, freed as a whole. Functions return 0, or -1
 * with *err filled (file, line, message).
 */
#ifndef KILN_MELANGE_H
#define KILN_MELANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- memory and errors ----------------------------------------------- */

struct mel_pool;
struct mel_pool *mel_pool_new(void);
void mel_pool_free(struct mel_pool *p);
/* Zeroed memory that lives as long as the pool; never NULL (aborts). */
void *mel_alloc(struct mel_pool *p, size_t n);
char *mel_strdup(struct mel_pool *p, const char *s);
char *mel_strndup(struct mel_pool *p, const char *s, size_t n);
char *mel_printf(struct mel_pool *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* memcpy that accepts (NULL, 0), as empty lists have. */
static inline void mel_copy(void *dst, const void *src, size_t n)
{
	if (n)
		memcpy(dst, src, n);
}

/* A growable heap string: always NUL-terminated once something was added. */
struct mel_buf {
	char *s;
	size_t len, cap;
};
void mel_buf_add(struct mel_buf *b, const char *s, size_t n);
void mel_buf_adds(struct mel_buf *b, const char *s);
void mel_buf_free(struct mel_buf *b);

/* An error with its source position (line 0: none). */
struct mel_err {
	int line, column;
	char file[512];
	char msg[1024];
};
/* Fill *err and return -1. */
int mel_fail(struct mel_err *err, const char *file, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Warnings (unknown keys, ignored fields), in the order found. */
struct mel_diag {
	const char *file;
	int line, column;
	const char *msg;
};
struct mel_diags {
	struct mel_diag *v;
	size_t n, cap;
};
void mel_warn(struct mel_pool *p, struct mel_diags *d, const char *file, int line, int column,
	      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- YAML (doc.c) ------------------------------------------------------ */

enum mel_kind { MEL_SCALAR = 1, MEL_SEQ = 2, MEL_MAP = 3 };

struct mel_node {
	enum mel_kind kind;
	int line, column;       /* 1-based */
	const char *str;        /* scalar: its literal text */
	bool null_;             /* scalar: plain "", "~", "null" or "Null" */
	struct mel_node **v;    /* seq: items; map: key, value, key, value, … */
	size_t n;               /* entries of v (a map has n / 2 pairs) */
};

/* Parse one YAML document (a stream with more than one is an error; an
 * empty one gives an empty map). Map keys must be scalars and unique.
 * Aliases are expanded, up to a budget of nodes. */
int mel_yaml_load(struct mel_pool *p, const char *file, const char *text, size_t len,
		  struct mel_node **root, struct mel_err *err);

/* ---- substitution (subst.c) -------------------------------------------- */

/* A scope of ${{name}} values: its own pairs, then the parent's. */
struct mel_scope {
	const struct mel_scope *parent;
	const char **keys, **values;
	size_t n, cap;
};
void mel_scope_set(struct mel_pool *p, struct mel_scope *s, const char *key, const char *value);
/* The value of name (len bytes), or NULL. The nearest scope wins. */
const char *mel_scope_get(const struct mel_scope *s, const char *name, size_t len);

enum mel_subst_mode {
	MEL_SUBST_PARSE = 0,  /* known names pasted raw; others left as they are */
	MEL_SUBST_RAW = 1,    /* all pasted raw; unknown or malformed: error */
	MEL_SUBST_QUOTED = 2, /* as RAW, pasted as "double-quoted" literals (if:) */
};

/* Substitute ${{ name }} in `in` into *out (pool memory). Returns 0, or
 * -1 with *bad set to the offending text (an unknown name or a malformed
 * ${{, pool memory) in the RAW and QUOTED modes. */
int mel_subst(struct mel_pool *p, const char *in, enum mel_subst_mode mode,
	      const struct mel_scope *scope, const char **out, const char **bad);

/* ---- if: conditions (cond.c) ------------------------------------------- */

/* Evaluate melange's condition language (MELANGE.md 2.5): comparisons
 * A == B / A != B of 'single' or "double" quoted literals or ${{name}}
 * (which reads as ""), joined by && and || (equal precedence, left to
 * right), parentheses. Returns 0 with *result, or -1 with a message in
 * msg (and the 0-based offset of the problem in *offset). */
int mel_cond_eval(const char *expr, bool *result, char *msg, size_t msgsz, size_t *offset);

/* ---- the build file (config.c) ----------------------------------------- */

struct mel_kv {
	const char *key, *value;
	int line;
};
struct mel_kvs {
	struct mel_kv *v;
	size_t n;
};
struct mel_strs {
	const char **v;
	size_t n;
};

/* A pipeline input declared by a reusable pipeline. */
struct mel_input {
	const char *name, *def;
	bool required;
};

struct mel_step {
	const char *file;        /* the file the step is written in */
	int line;                /* its first key */
	const char *name, *uses, *runs, *if_, *wd;
	int name_line, uses_line, runs_line, if_line, wd_line, with_line;
	struct mel_kvs with, env;
	struct mel_step *steps;  /* nested pipeline */
	size_t n_steps;
	bool has_pipeline;
	struct mel_strs needs;   /* needs.packages */
	struct mel_input *inputs; /* reusable pipelines only */
	size_t n_inputs;
	long required_steps;     /* assertions.required-steps, -1 unset */
};

struct mel_deps {
	struct mel_strs runtime, provides, replaces;
	const char *provider_priority, *replaces_priority;
};

struct mel_subpkg {
	int line;
	const char *name, *if_, *range, *description, *url, *commit;
	int if_line, range_line, name_line;
	struct mel_deps deps;
	struct mel_step *steps;
	size_t n_steps;
};

struct mel_transform {
	const char *from, *match, *replace, *to;
	int line;
};

struct mel_data {
	const char *name;
	struct mel_kvs items;
	int line;
};

struct mel_config {
	const char *file;
	/* package */
	const char *name, *version, *description, *url, *commit;
	uint64_t epoch;
	struct mel_strs licenses, target_archs;
	struct mel_deps deps;
	/* environment */
	struct mel_strs packages;      /* contents.packages */
	struct mel_strs repositories;  /* contents.repositories */
	struct mel_kvs env;            /* environment (defaults filled) */
	/* main pipeline and subpackages (ranged ones expanded, in order) */
	struct mel_step *steps;
	size_t n_steps;
	struct mel_subpkg *subs;
	size_t n_subs;
	/* vars incl. var-transform outputs, in file order */
	struct mel_kvs vars;
	struct mel_transform *transforms;
	size_t n_transforms;
	struct mel_data *data;
	size_t n_data;
};

/* Read a build file: YAML, the schema (unknown keys are warnings in
 * *warn), then the parse phase of substitution and range expansion.
 * Subpackage if: is evaluated here (with its parse-phase text): a false
 * one is dropped. */
int mel_config_parse(struct mel_pool *p, const char *file, const char *text, size_t len,
		     struct mel_config **out, struct mel_diags *warn, struct mel_err *err);

/* Decode a reusable pipeline file (a step with inputs) from its tree. */
int mel_step_parse(struct mel_pool *p, const char *file, const struct mel_node *n,
		   struct mel_step *out, struct mel_diags *warn, struct mel_err *err);

/* ---- built-in pipelines (pipelines.c) ---------------------------------- */

/* The YAML text of built-in pipeline `name` ("autoconf/make"), or NULL. */
const char *mel_pipeline_text(const char *name);
/* The names of the built-in pipelines, NULL-terminated, sorted. */
extern const char *const mel_pipeline_names[];

/* ---- compiling (compile.c) --------------------------------------------- */

/* What the build targets. */
struct mel_target {
	const char *arch;            /* apk arch: "x86_64", "aarch64" */
	const char *source_date_epoch; /* "0" by default */
};

/* Map "linux/amd64", "amd64", "x86_64", "linux/arm64", "arm64",
 * "aarch64", "linux/arm64/v8" to the apk arch, or NULL. */
const char *mel_apk_arch(const char *platform);
/* The OCI/Go arch of an apk arch ("amd64" for "x86_64"), or NULL. */
const char *mel_goarch(const char *apk_arch);

/* One process to run: a step with runs (or with a working-directory to make). */
struct mel_exec {
	const char *pkg;      /* the package whose pipeline it belongs to */
	const char *label;    /* step name, "uses: X", or the first line of runs */
	const char *file;     /* where its runs: (or uses:) is written */
	int line;
	const char *wd;       /* absolute working directory */
	const char *script;   /* the whole /bin/sh -c script */
	struct mel_kvs env;   /* sorted by key, unique */
};

/* One package output: the main package first, then each subpackage. */
struct mel_output {
	const char *name;
	size_t first_exec, n_execs; /* its range of plan->execs */
};

struct mel_plan {
	const struct mel_config *cfg;
	const char *arch;
	struct mel_exec *execs;
	size_t n_execs, cap_execs;
	struct mel_output *outputs;
	size_t n_outputs;
};

/* The script prelude of every step, as melange: set -eo pipefail, make and
 * enter the working directory; then runs; then "exit 0". */
int mel_compile(struct mel_pool *p, const struct mel_config *cfg, const struct mel_target *t,
		struct mel_plan **out, struct mel_diags *warn, struct mel_err *err);

/* ---- LLB (llb.c; the one part that needs the host table) ---------------- */

struct kiln_host;
struct kiln_arena;
struct kiln_err;

struct mel_llb_opts {
	const char *build_image; /* image reference of the build root */
	const char *platform;    /* "linux/amd64" or "linux/arm64" */
	const char *source_name; /* the session's local directory name */
	const char *file_base;   /* the build file's base name, for vertex names */
};

/* The plan as one LLB graph: the build image, the sources copied to
 * /home/build, one exec per step in order (a mkdir before each
 * subpackage), and a last copy of /home/build/melange-out to the result's
 * root. The definition goes to arena memory; digest gets 72 bytes. */
int mel_llb(const struct kiln_host *host, const struct mel_plan *plan,
	    const struct mel_llb_opts *o, struct kiln_arena *arena, const uint8_t **data,
	    size_t *len, char *digest, struct kiln_err *err);

#endif
