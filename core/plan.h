/* plan.h: what a kiln.lua script declares and what kiln builds from it.
 *
 * core/lua_script.c evaluates the script (Lua 5.4, sandboxed) into
 * declarations: targets as written, groups, builders. core/plan.c resolves
 * them the way `docker buildx bake` does (inherits merged in order, then
 * the target's own fields, then --set overrides), checks names and cycles,
 * and for the targets asked for makes the jobs: one per target × platform,
 * in dependency order. core/sched.c runs the jobs; core/cmd_print.c prints
 * the plan (kiln print, kiln ls). docs/kiln-lua.md is the user's view.
 *
 * Memory: everything a plan points to lives in its arena and goes with
 * kiln__plan_release(). A plan is read-only once loaded, so the
 * scheduler's threads may read it without locks. */
#ifndef KILN_CORE_PLAN_H
#define KILN_CORE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/kiln.h>

#include "util.h"

struct kiln_arena;

/* A list of strings, in order. */
struct kiln_plan_list {
	const char **v;
	size_t n;
};

/* String pairs sorted by key, keys unique. */
struct kiln_plan_map {
	struct kiln_kv *v;
	size_t n;
};

/* The fields of a target, in the order `kiln print` shows them. The bit
 * (1u << KILN_TF_x) in kiln_plan_target.set says the field was given. */
enum kiln_target_field {
	KILN_TF_DESCRIPTION,
	KILN_TF_CONTEXT,
	KILN_TF_CONTEXTS,
	KILN_TF_DOCKERFILE,
	KILN_TF_DOCKERFILE_INLINE,
	KILN_TF_FRONTEND,
	KILN_TF_ARGS,
	KILN_TF_LABELS,
	KILN_TF_TAGS,
	KILN_TF_CACHE_FROM,
	KILN_TF_CACHE_TO,
	KILN_TF_TARGET,
	KILN_TF_SECRETS,
	KILN_TF_SSH,
	KILN_TF_PLATFORMS,
	KILN_TF_OUTPUT,
	KILN_TF_PULL,
	KILN_TF_NO_CACHE,
	KILN_TF_NETWORK,
	KILN_TF_DEPENDS,
	KILN_TF_INHERITS,
	KILN_TF_COUNT
};

/* One target: as declared (kiln_plan.decls) or resolved (kiln_plan.targets,
 * inherits merged, defaults and --set applied, inherits empty). */
struct kiln_plan_target {
	const char *name;
	const char *file; /* where it was declared */
	int line;
	unsigned set;     /* 1u << enum kiln_target_field, for fields given */
	const char *description, *context, *dockerfile, *dockerfile_inline, *frontend,
		*target, *network;
	struct kiln_plan_map args, labels, contexts;
	struct kiln_plan_list tags, cache_from, cache_to, secrets, ssh, platforms, output,
		depends, inherits;
	bool pull, no_cache;
};

/* group "name" { "t1", "g2", description = "…" } */
struct kiln_plan_group {
	const char *name;
	const char *file;
	int line;
	const char *description; /* or NULL */
	struct kiln_plan_list members; /* targets and groups, as written */
};

/* builder "name" { addr = …, platforms = {…}, tls = {…}, max_jobs = n } */
struct kiln_plan_builder {
	const char *name;
	const char *file;
	int line;
	const char *addr;                 /* NULL: kiln's default engine */
	struct kiln_plan_list platforms;  /* native platforms, as declared */
	const char *tls_ca_cert, *tls_cert, *tls_key, *tls_server_name;
	int max_jobs;                     /* 0: no limit of its own */
};

/* One job: a target built for one platform. */
struct kiln_plan_job {
	const struct kiln_plan_target *target; /* resolved */
	const char *platform; /* NULL: the engine's default */
	const char *id;       /* "app", or "app@linux/arm64" */
	size_t *deps;         /* indices of jobs that must succeed first */
	size_t n_deps;
};

/* How to load a plan. */
struct kiln_plan_opts {
	const char *file;                 /* the script; NULL: "kiln.lua" */
	const char *const *sets;          /* --set PATTERN.FIELD[.KEY][+]=VALUE */
	size_t n_sets;
	const struct kiln_kv *vars;       /* --var KEY=VALUE: kiln.vars */
	size_t n_vars;
};

struct kiln_plan {
	struct kiln_arena *arena;
	const char *file;      /* the script as named (messages) */
	const char *dir;       /* its directory: relative paths start here */
	/* Declarations in the order the script made them. */
	struct kiln_plan_target **decls;
	size_t n_decls, cap_decls;
	struct kiln_plan_group **groups;
	size_t n_groups, cap_groups;
	struct kiln_plan_builder **builders;
	size_t n_builders, cap_builders;
	/* Resolved targets, sorted by name (same count as decls). */
	struct kiln_plan_target **targets;
	size_t n_targets;
	/* After kiln__plan_select: the targets to build (with everything
	 * they depend on) and the groups named on the way, both sorted by
	 * name, and the jobs in dependency order. */
	const struct kiln_plan_target **selected;
	size_t n_selected;
	const struct kiln_plan_group **selected_groups;
	size_t n_selected_groups;
	struct kiln_plan_job *jobs;
	size_t n_jobs;
	/* A Lua runtime error's traceback ("stack traceback:\n…"), or NULL. */
	char *traceback;
};

/* Evaluate the script and resolve every target. Returns 0, or a negative
 * code with err naming file:line (KILN_E_SYNTAX for Lua errors and bad
 * declarations, KILN_E_NOTFOUND for unknown names, KILN_E_INVALID for
 * cycles and bad --set values, KILN_E_IO when the script cannot be read).
 * Release the plan in every case. */
int kiln__plan_load(struct kiln_plan *plan, const struct kiln_plan_opts *opts,
		    struct kiln_err *err);

/* What a script may use: bytes of Lua memory (1 GiB) and seconds of run
 * time (60), checked every million Lua instructions. Only tests change
 * them (tests/fuzz/fuzz_lua.c lowers both). */
extern size_t kiln__script_mem_max;
extern int kiln__script_seconds_max;

/* Choose what to build: names of targets or groups (groups expand,
 * nested); none means the group "default", else the only target. Adds
 * what the chosen targets depend on (depends, contexts "target:NAME")
 * and makes the jobs. */
int kiln__plan_select(struct kiln_plan *plan, const char *const *names, size_t n,
		      struct kiln_err *err);

/* The resolved target or the group of that name, or NULL. */
const struct kiln_plan_target *kiln__plan_target(const struct kiln_plan *plan,
						 const char *name);
const struct kiln_plan_group *kiln__plan_group(const struct kiln_plan *plan,
					       const char *name);

/* Print err as kiln__err_print does, then the traceback if there is one. */
void kiln__plan_err_print(const struct kiln_plan *plan, const struct kiln_err *err);

void kiln__plan_release(struct kiln_plan *plan);

/* ---- the plan's command line (core/cmd_print.c) ---- */

/* -f FILE, --set and --var, taken by kiln print, kiln ls and kiln build
 * with a script. */
struct kiln_plan_cli {
	const char *file;          /* -f; NULL: kiln.lua */
	struct kiln_strv sets;     /* --set values */
	struct kiln_strv var_store; /* owns --var keys and values */
	struct kiln_kv *vars;
	size_t n_vars;
};
/* getopt_long values of the three options (clear of each command's own). */
enum {
	KILN_OPT_SET = 0x300,
	KILN_OPT_VAR,
};
/* Take getopt_long's option o if it is one of the three ('f' is -f);
 * returns 1 when taken, 0 when not, or KILN_EXIT_USAGE after a usage error
 * of command cmd. */
int kiln__plan_cli_take(struct kiln_plan_cli *c, const char *cmd, int o, const char *arg);
/* Load the plan the options name; on failure prints the error (and any
 * traceback) and returns the exit code, else 0. */
int kiln__plan_cli_load(struct kiln_plan_cli *c, struct kiln_plan *plan);
/* kiln__plan_cli_load, then kiln__plan_select of the n names (targets and
 * groups); a selection error is printed and KILN_EXIT_USAGE. */
int kiln__plan_cli_open(struct kiln_plan_cli *c, struct kiln_plan *plan,
			const char *const *names, size_t n);
void kiln__plan_cli_release(struct kiln_plan_cli *c);

/* Should `kiln build ARGS` run a script? Yes when -f/--file names a
 * "*.lua" file, or when there is no -f, ./kiln.lua exists and no
 * positional argument looks like a path ("-", ".", "..", or with a '/'). */
bool kiln__build_wants_script(int argc, char **argv);

/* Commands. */
struct kiln_ctx;
int kiln__cmd_print(struct kiln_ctx *ctx, int argc, char **argv);
int kiln__cmd_ls(struct kiln_ctx *ctx, int argc, char **argv);
/* `kiln build` with a script (core/sched.c). */
int kiln__cmd_build_plan(struct kiln_ctx *ctx, int argc, char **argv);

/* ---- between plan.c and lua_script.c ---- */

/* Run the script into plan->decls, groups and builders. */
int kiln__script_eval(struct kiln_plan *plan, const struct kiln_plan_opts *opts,
		      struct kiln_err *err);

/* How a target field is typed and how a later definition (an inherits
 * entry after an earlier one, the target after its parents) merges into
 * an earlier one, as bake merges: */
enum kiln_field_type { KILN_FT_STRING, KILN_FT_BOOL, KILN_FT_LIST, KILN_FT_MAP };
enum kiln_field_merge {
	KILN_FM_REPLACE, /* the later value wins */
	KILN_FM_MAP,     /* per key, the later value wins */
	KILN_FM_UNION,   /* the earlier list, then later entries not in it */
	KILN_FM_BY_ID,   /* like UNION, but a later entry replaces one of the
			  * same id (secrets: the id= field; ssh: before '=') */
	KILN_FM_NONE,    /* not merged (inherits) */
};
struct kiln_target_field_desc {
	const char *name; /* as the script spells it */
	enum kiln_field_type type;
	enum kiln_field_merge merge;
	size_t offset;    /* in struct kiln_plan_target */
};
/* By enum kiln_target_field. */
extern const struct kiln_target_field_desc kiln__target_fields[KILN_TF_COUNT];

/* Edit distance of two short strings (99 past 64 bytes), for "did you
 * mean" suggestions. */
size_t kiln__plan_distance(const char *a, const char *b);

/* Valid target, group and builder names: [A-Za-z0-9_][A-Za-z0-9_.-]*. */
bool kiln__plan_name_ok(const char *name);

/* Append item to a heap array (arr, n, cap) that the plan owns; it grows
 * by doubling and never fails (kiln__xrealloc). */
#define KILN_PLAN_PUSH(arr, n, cap, item)                                     \
	do {                                                                  \
		if ((n) == (cap)) {                                           \
			(cap) = (cap) ? 2 * (cap) : 16;                       \
			(arr) = kiln__xrealloc((arr), (cap) * sizeof(*(arr))); \
		}                                                             \
		(arr)[(n)++] = (item);                                        \
	} while (0)

#endif
