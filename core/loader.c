/* loader.c: dlopen-based plugin loading and the vtable registry. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

struct kiln_plugin {
	char *path;
	void *dl;
	struct kiln_registry *reg;
	/* Registrations are staged and only committed when the whole plugin
	 * loaded cleanly, so a refused plugin leaves no trace. */
	struct kiln_reg_entry *staged;
	size_t n_staged;
	struct kiln_err fail; /* first failed registration, code 0 if none */
};

const char *kiln__kind_name(enum kiln_plugin_kind kind)
{
	switch (kind) {
	case KILN_KIND_FRONTEND: return "frontend";
	case KILN_KIND_BACKEND: return "backend";
	case KILN_KIND_RENDERER: return "renderer";
	}
	return "unknown";
}

const char *kiln__plugin_file(const struct kiln_plugin *p)
{
	return p->path;
}

static void path_add(struct kiln_strv *dirs, const char *dir)
{
	if (!dir || !*dir)
		return;
	for (size_t i = 0; i < dirs->n; i++)
		if (strcmp(dirs->v[i], dir) == 0)
			return;
	kiln__strv_push(dirs, dir);
}

void kiln__plugin_path(struct kiln_strv *dirs)
{
	const char *env = getenv("KILN_PLUGIN_PATH");
	if (env) {
		char *copy = kiln__xstrdup(env), *save = NULL;
		/* strtok_r skips empty components, which in PATH-style lists
		 * would mean the current directory. */
		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
			path_add(dirs, d);
		free(copy);
	}
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	if (xdg && *xdg == '/') {
		char *d = kiln__xasprintf("%s/kiln/plugins", xdg);
		path_add(dirs, d);
		free(d);
	} else if (home && *home) {
		char *d = kiln__xasprintf("%s/.local/share/kiln/plugins", home);
		path_add(dirs, d);
		free(d);
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			char *d = kiln__xasprintf("%s/plugins", exe);
			path_add(dirs, d);
			free(d);
			d = kiln__xasprintf("%s/../lib/kiln/plugins", exe);
			char real[PATH_MAX];
			path_add(dirs, realpath(d, real) ? real : d);
			free(d);
		}
	}
	path_add(dirs, KILN_PLUGIN_DIR);
}

static int refuse(struct kiln_registry *reg, struct kiln_err *err, int code,
		  const char *path, const char *fmt, ...) KILN_PRINTF(5, 6);

static int refuse(struct kiln_registry *reg, struct kiln_err *err, int code,
		  const char *path, const char *fmt, ...)
{
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	kiln__sb_addf(&sb, "plugin %s: ", path);
	va_start(ap, fmt);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	kiln__err(err, code, "%s", kiln__sb_str(&sb));
	if (reg->warn_refused)
		kiln__log(KILN_LOG_WARN, "%s", kiln__sb_str(&sb));
	kiln__strv_push_owned(&reg->refused, kiln__sb_detach(&sb));
	return code;
}

static const struct kiln_reg_entry *find_in(const struct kiln_reg_entry *e, size_t n,
					    enum kiln_plugin_kind kind, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].kind == kind && strcmp(e[i].name, name) == 0)
			return &e[i];
	return NULL;
}

const struct kiln_reg_entry *kiln__registry_find(const struct kiln_registry *reg,
						 enum kiln_plugin_kind kind,
						 const char *name)
{
	return find_in(reg->entries, reg->n_entries, kind, name);
}

/* The fields every version of each vtable has had since ABI 1.0. */
static size_t min_size(enum kiln_plugin_kind kind)
{
	switch (kind) {
	case KILN_KIND_RENDERER: return offsetof(struct kiln_renderer, close) + sizeof(void *);
	case KILN_KIND_FRONTEND: return offsetof(struct kiln_frontend, load) + sizeof(void *);
	case KILN_KIND_BACKEND: return offsetof(struct kiln_backend, disconnect) + sizeof(void *);
	}
	return SIZE_MAX;
}

/* Header shared by all vtables; checked before anything else is read. */
struct vt_head {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *name;
	const char *version;
	const char *description;
};

static int callbacks_present(enum kiln_plugin_kind kind, const void *vt)
{
	switch (kind) {
	case KILN_KIND_RENDERER: {
		const struct kiln_renderer *r = vt;
		return r->open && r->event && r->close;
	}
	case KILN_KIND_FRONTEND: {
		const struct kiln_frontend *f = vt;
		return f->load != NULL;
	}
	case KILN_KIND_BACKEND: {
		const struct kiln_backend *b = vt;
		return b->probe && b->connect && b->solve && b->disconnect;
	}
	}
	return 0;
}

int kiln__registry_add(struct kiln_plugin *p, enum kiln_plugin_kind kind, const void *vt)
{
	if (!p || !p->reg || p->reg->loading != p)
		return KILN_E_INVALID; /* registration outside the entry call */
	const struct vt_head *h = vt;
	const char *kname = kiln__kind_name(kind);
	if (p->fail.code)
		return p->fail.code;
	if (!h)
		return kiln__err(&p->fail, KILN_E_INVALID, "%s vtable is NULL", kname);
	if (KILN_ABI_MAJOR_OF(h->abi_version) != KILN_ABI_MAJOR)
		return kiln__err(&p->fail, KILN_E_ABI,
				 "built for kiln plugin ABI %u.%u, this kiln has ABI %u.%u",
				 KILN_ABI_MAJOR_OF(h->abi_version),
				 KILN_ABI_MINOR_OF(h->abi_version), KILN_ABI_MAJOR,
				 KILN_ABI_MINOR);
	if (h->struct_size < min_size(kind))
		return kiln__err(&p->fail, KILN_E_ABI,
				 "%s vtable is %u bytes, smaller than ABI %u.0's %zu",
				 kname, h->struct_size, KILN_ABI_MAJOR, min_size(kind));
	if (!h->name || !*h->name || !callbacks_present(kind, vt))
		return kiln__err(&p->fail, KILN_E_INVALID,
				 "%s vtable lacks a name or a required callback", kname);
	if (find_in(p->staged, p->n_staged, kind, h->name))
		return kiln__err(&p->fail, KILN_E_EXISTS,
				 "registers %s '%s' twice", kname, h->name);
	p->staged = kiln__xrealloc(p->staged, (p->n_staged + 1) * sizeof(*p->staged));
	p->staged[p->n_staged++] = (struct kiln_reg_entry){
		.kind = kind,
		.name = h->name,
		.version = h->version ? h->version : "",
		.description = h->description ? h->description : "",
		.vt = vt,
		.owner = p,
	};
	return 0;
}

static void plugin_free(struct kiln_plugin *p)
{
	if (!p)
		return;
	/* Under ASan keep the code mapped so leak reports can name it. */
	if (p->dl && !getenv("KILN_NO_DLCLOSE"))
		dlclose(p->dl);
	free(p->staged);
	free(p->path);
	free(p);
}

int kiln__registry_load(struct kiln_registry *reg, const char *path,
			struct kiln_err *err)
{
	struct kiln_err tmp;
	if (!err)
		err = &tmp;
	dlerror();
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		return refuse(reg, err, KILN_E_PLUGIN, path, "cannot load: %s",
			      why ? why : "unknown dlopen error");
	}
	void *sym = dlsym(dl, KILN_PLUGIN_ENTRY);
	if (!sym) {
		dlclose(dl);
		return refuse(reg, err, KILN_E_PLUGIN, path,
			      "no %s symbol (not a kiln plugin)", KILN_PLUGIN_ENTRY);
	}
	kiln_plugin_init_fn init;
	memcpy(&init, &sym, sizeof(init)); /* object-to-function pointer, POSIX */

	struct kiln_plugin *p = kiln__xcalloc(1, sizeof(*p));
	p->path = kiln__xstrdup(path);
	p->dl = dl;
	p->reg = reg;
	struct kiln_err perr = { 0 };
	reg->loading = p;
	int rc = init(&kiln__host, KILN_ABI_VERSION, p, &perr);
	reg->loading = NULL;

	if (p->fail.code) {
		rc = refuse(reg, err, p->fail.code, path, "%s", p->fail.msg);
	} else if (rc < 0) {
		rc = refuse(reg, err, rc == KILN_E_ABI ? KILN_E_ABI : KILN_E_PLUGIN, path,
			    "%s returned an error: %s", KILN_PLUGIN_ENTRY,
			    perr.msg[0] ? perr.msg : kiln__strerror(rc));
	} else if (p->n_staged == 0) {
		rc = refuse(reg, err, KILN_E_PLUGIN, path, "registered nothing");
	} else {
		rc = 0;
		for (size_t i = 0; i < p->n_staged; i++) {
			const struct kiln_reg_entry *e = &p->staged[i];
			const struct kiln_reg_entry *dup =
				kiln__registry_find(reg, e->kind, e->name);
			if (dup) {
				rc = refuse(reg, err, KILN_E_EXISTS, path,
					    "%s '%s' is already provided by %s",
					    kiln__kind_name(e->kind), e->name,
					    dup->owner->path);
				break;
			}
		}
	}
	if (rc < 0) {
		plugin_free(p);
		return rc;
	}
	reg->entries = kiln__xrealloc(reg->entries,
				      (reg->n_entries + p->n_staged) * sizeof(*reg->entries));
	memcpy(reg->entries + reg->n_entries, p->staged, p->n_staged * sizeof(*p->staged));
	reg->n_entries += p->n_staged;
	reg->plugins = kiln__xrealloc(reg->plugins, (reg->n_plugins + 1) * sizeof(*reg->plugins));
	reg->plugins[reg->n_plugins++] = p;
	return 0;
}

static int so_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

enum kiln_plugin_kind kiln__plugin_file_kind(const char *name)
{
	static const struct {
		const char *prefix;
		enum kiln_plugin_kind kind;
	} kinds[] = {
		{ "frontend-", KILN_KIND_FRONTEND },
		{ "backend-", KILN_KIND_BACKEND },
		{ "renderer-", KILN_KIND_RENDERER },
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(name, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
			return kinds[i].kind;
	return 0;
}

size_t kiln__registry_load_all(struct kiln_registry *reg)
{
	return kiln__registry_load_kinds(reg, KILN_KINDS_ALL);
}

static bool was_opened(const struct kiln_registry *reg, const char *path)
{
	for (size_t i = 0; i < reg->opened.n; i++)
		if (strcmp(reg->opened.v[i], path) == 0)
			return true;
	return false;
}

/* Which files a walk of the search path opens. */
struct pick {
	unsigned kinds;    /* KILN_KIND_BIT mask of prefixed files to open */
	bool others;       /* files without a kind prefix too */
	const char *exact; /* only this file name (kinds and others ignored) */
	size_t max;        /* stop after opening this many; 0: no limit */
};

/* Open, in search-path and name order, the files pick selects that are
 * not open yet. Returns how many were opened. */
static size_t walk(struct kiln_registry *reg, const struct pick *pk)
{
	size_t opened = 0;
	struct kiln_strv dirs = { 0 };
	kiln__plugin_path(&dirs);
	for (size_t i = 0; i < dirs.n && !(pk->max && opened >= pk->max); i++) {
		bool listed = false;
		for (size_t k = 0; k < reg->searched.n && !listed; k++)
			listed = strcmp(reg->searched.v[k], dirs.v[i]) == 0;
		if (!listed)
			kiln__strv_push(&reg->searched, dirs.v[i]);
		struct dirent **names = NULL;
		int n = scandir(dirs.v[i], &names, so_filter, alphasort);
		for (int j = 0; j < n; j++) {
			const char *base = names[j]->d_name;
			enum kiln_plugin_kind k = kiln__plugin_file_kind(base);
			bool want = pk->exact ? strcmp(base, pk->exact) == 0
					      : k ? (pk->kinds & KILN_KIND_BIT(k)) != 0 : pk->others;
			if (want && !(pk->max && opened >= pk->max)) {
				char *path = kiln__xasprintf("%s/%s", dirs.v[i], base);
				struct stat st;
				if (!was_opened(reg, path) && stat(path, &st) == 0 &&
				    S_ISREG(st.st_mode)) {
					kiln__strv_push(&reg->opened, path);
					kiln__registry_load(reg, path, NULL);
					opened++;
				}
				free(path);
			}
			free(names[j]);
		}
		free(names);
	}
	kiln__strv_release(&dirs);
	return opened;
}

size_t kiln__registry_load_kinds(struct kiln_registry *reg, unsigned kinds)
{
	size_t before = reg->refused.n;
	walk(reg, &(struct pick){ .kinds = kinds & ~reg->kinds_done, .others = !reg->others_done });
	reg->kinds_done |= kinds;
	reg->others_done = true;
	return reg->refused.n - before;
}

static void others_once(struct kiln_registry *reg)
{
	if (!reg->others_done) {
		walk(reg, &(struct pick){ .others = true });
		reg->others_done = true;
	}
}

const struct kiln_reg_entry *kiln__registry_want(struct kiln_registry *reg,
						 enum kiln_plugin_kind kind,
						 const char *name)
{
	others_once(reg);
	const struct kiln_reg_entry *e = kiln__registry_find(reg, kind, name);
	if (e || (reg->kinds_done & KILN_KIND_BIT(kind)))
		return e;
	char *file = kiln__xasprintf("%s-%s.so", kiln__kind_name(kind), name);
	if (!strchr(name, '/'))
		walk(reg, &(struct pick){ .exact = file });
	free(file);
	if ((e = kiln__registry_find(reg, kind, name)))
		return e;
	kiln__registry_want_kind(reg, kind);
	return kiln__registry_find(reg, kind, name);
}

void kiln__registry_want_kind(struct kiln_registry *reg, enum kiln_plugin_kind kind)
{
	others_once(reg);
	if (!(reg->kinds_done & KILN_KIND_BIT(kind))) {
		walk(reg, &(struct pick){ .kinds = KILN_KIND_BIT(kind) });
		reg->kinds_done |= KILN_KIND_BIT(kind);
	}
}

bool kiln__registry_load_next(struct kiln_registry *reg, enum kiln_plugin_kind kind)
{
	others_once(reg);
	if (reg->kinds_done & KILN_KIND_BIT(kind))
		return false;
	if (walk(reg, &(struct pick){ .kinds = KILN_KIND_BIT(kind), .max = 1 }))
		return true;
	reg->kinds_done |= KILN_KIND_BIT(kind);
	return false;
}

void kiln__registry_release(struct kiln_registry *reg)
{
	for (size_t i = 0; i < reg->n_plugins; i++)
		plugin_free(reg->plugins[i]);
	free(reg->plugins);
	free(reg->entries);
	kiln__strv_release(&reg->searched);
	kiln__strv_release(&reg->refused);
	kiln__strv_release(&reg->opened);
	memset(reg, 0, sizeof(*reg));
}
