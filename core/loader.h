/* loader.h: finds plugin shared objects, loads them through their entry
 * symbol and keeps the registry of the vtables they register.
 * See include/kiln/plugin.h for the ABI and docs/plugins.md for the rules. */
#ifndef KILN_CORE_LOADER_H
#define KILN_CORE_LOADER_H

#include <kiln/kiln.h>

#include "util.h"

enum kiln_plugin_kind {
	KILN_KIND_FRONTEND = 1,
	KILN_KIND_BACKEND = 2,
	KILN_KIND_RENDERER = 3,
};

/* One registered vtable. */
struct kiln_reg_entry {
	enum kiln_plugin_kind kind;
	const char *name;           /* from the vtable */
	const char *version;
	const char *description;
	const void *vt;             /* struct kiln_renderer * etc. */
	struct kiln_plugin *owner;
};

/* Every plugin loaded, every vtable registered, and what was refused.
 * One per process run; no globals, so tests can load twice. */
struct kiln_registry {
	struct kiln_plugin **plugins;
	size_t n_plugins;
	struct kiln_reg_entry *entries;
	size_t n_entries;
	struct kiln_strv searched;  /* directories looked in, in order */
	struct kiln_strv refused;   /* one-line reasons, "plugin FILE: …" */
	struct kiln_plugin *loading; /* plugin whose entry is running */
	/* Lazy loading (kiln__registry_want and friends): */
	struct kiln_strv opened;    /* every file opened so far, refused or not */
	unsigned kinds_done;        /* KILN_KIND_BIT of kinds fully loaded */
	bool others_done;           /* files without a kind prefix opened */
	bool warn_refused;          /* log each refusal as a warning when it happens */
};

const char *kiln__kind_name(enum kiln_plugin_kind kind);

/* The plugin search path, in order: $KILN_PLUGIN_PATH (colon separated,
 * empty components skipped), the user's plugin directory
 * ($XDG_DATA_HOME/kiln/plugins or ~/.local/share/kiln/plugins), the
 * directory "plugins" next to the kiln binary (a build tree), then
 * <exe>/../lib/kiln/plugins and the compiled-in install directory.
 * Never the current directory. Appends to *dirs (deduplicated). */
void kiln__plugin_path(struct kiln_strv *dirs);

/* Bit of a kind in the kinds mask of kiln__registry_load_kinds. */
#define KILN_KIND_BIT(kind) (1u << (kind))
#define KILN_KINDS_ALL \
	(KILN_KIND_BIT(KILN_KIND_FRONTEND) | KILN_KIND_BIT(KILN_KIND_BACKEND) | \
	 KILN_KIND_BIT(KILN_KIND_RENDERER))

/* Load every "*.so" in the search path, in path order and, within a
 * directory, in name order. A plugin that is refused is recorded in
 * reg->refused and skipped; the first plugin to register a name wins.
 * Returns the number refused. */
size_t kiln__registry_load_all(struct kiln_registry *reg);

/* As kiln__registry_load_all, but skips (without opening) every file whose
 * name says it holds only a kind outside kinds (KILN_KIND_BIT mask):
 * "frontend-*.so", "backend-*.so", "renderer-*.so". Files named otherwise
 * are always loaded. docs/plugins.md, "Where kiln looks". */
size_t kiln__registry_load_kinds(struct kiln_registry *reg, unsigned kinds);

/*
 * Lazy loading, for commands that load plugins as they need them (`kiln
 * build`). Each of these first opens every file without a kind prefix
 * (once), then only what it needs; no file is opened twice.
 *
 * kiln__registry_want: the vtable of kind and name, opening the files
 * named "<kind>-<name>.so" in search-path order, and only if none of them
 * registers it, every other file of that kind. NULL when no plugin has it.
 *
 * kiln__registry_want_kind: opens every file of kind (for a choice among
 * all of them, e.g. the backends' probe()).
 *
 * kiln__registry_load_next: opens the next file of kind in search-path
 * and name order that is not open yet; false when there is none (kind is
 * then fully loaded). kiln__pick_frontend calls it until a frontend's
 * patterns match, so a Dockerfile build opens frontend-dockerfile.so and
 * not frontend-melange.so.
 */
const struct kiln_reg_entry *kiln__registry_want(struct kiln_registry *reg,
						 enum kiln_plugin_kind kind,
						 const char *name);
void kiln__registry_want_kind(struct kiln_registry *reg, enum kiln_plugin_kind kind);
bool kiln__registry_load_next(struct kiln_registry *reg, enum kiln_plugin_kind kind);

/* The kind a plugin file's name promises ("renderer-tty.so": renderer),
 * or 0 when the name has no kind prefix. */
enum kiln_plugin_kind kiln__plugin_file_kind(const char *file_name);

/* Load one file. Returns 0, or a negative code with the one-line reason in
 * *err (also appended to reg->refused). */
int kiln__registry_load(struct kiln_registry *reg, const char *path,
			struct kiln_err *err);

/* The vtable of a kind and name, or NULL. */
const struct kiln_reg_entry *kiln__registry_find(const struct kiln_registry *reg,
						 enum kiln_plugin_kind kind,
						 const char *name);

/* Path of the shared object that registered entry e. */
const char *kiln__plugin_file(const struct kiln_plugin *p);

/* Unload every plugin and free the registry's contents. */
void kiln__registry_release(struct kiln_registry *reg);

/* Called by the host table's register_* functions. */
int kiln__registry_add(struct kiln_plugin *plugin, enum kiln_plugin_kind kind,
		       const void *vt);

/* The host table handed to every plugin (core/host.c). */
extern const struct kiln_host kiln__host;

#endif
