/* host.c: the host table, the only way plugins reach the core. */
#include <stdarg.h>
#include <stdlib.h>

#include "arena.h"
#include "bus.h"
#include "dockercfg.h"
#include "graph_internal.h"
#include "loader.h"
#include "patterns.h"
#include "util.h"


static int reg_renderer(struct kiln_plugin *p, const struct kiln_renderer *vt)
{
	return kiln__registry_add(p, KILN_KIND_RENDERER, vt);
}

static int reg_frontend(struct kiln_plugin *p, const struct kiln_frontend *vt)
{
	return kiln__registry_add(p, KILN_KIND_FRONTEND, vt);
}

static int reg_backend(struct kiln_plugin *p, const struct kiln_backend *vt)
{
	return kiln__registry_add(p, KILN_KIND_BACKEND, vt);
}

static int host_error(struct kiln_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__verr_at(err, code, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return code;
}

static int host_error_at(struct kiln_err *err, int code, const char *file,
			 int line, int column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__verr_at(err, code, file, line, column, fmt, ap);
	va_end(ap);
	return code;
}

static void host_log(enum kiln_log_level level, const char *fmt, ...)
{
	if (level > kiln__log_level)
		return;
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	kiln__log(level, "%s", kiln__sb_str(&sb));
	kiln__sb_release(&sb);
}

const struct kiln_host kiln__host = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_host),
	.kiln_version = KILN_VERSION,
	.register_renderer = reg_renderer,
	.register_frontend = reg_frontend,
	.register_backend = reg_backend,
	.error = host_error,
	.error_at = host_error_at,
	.strerror = kiln__strerror,
	.log = host_log,
	.alloc = kiln__xmalloc,
	.realloc = kiln__xrealloc,
	.free = free,
	.arena_alloc = kiln__arena_alloc,
	.arena_strdup = kiln__arena_strdup,
	.emit = kiln__bus_emit,
	.now_ns = kiln__now_ns,
	.graph_new = kiln__graph_new,
	.graph_free = kiln__graph_free,
	.graph_add_source = kiln__graph_add_source,
	.graph_add_exec = kiln__graph_add_exec,
	.graph_add_file = kiln__graph_add_file,
	.graph_marshal = kiln__graph_marshal,
	.graph_digest = kiln__graph_digest,
	.patterns_compile = kiln__patterns_compile,
	.patterns_match = kiln__patterns_match,
	.patterns_has_exceptions = kiln__patterns_has_exceptions,
	.patterns_free = kiln__patterns_free,
	.ignore_read = kiln__ignore_read,
	.ignore_free = kiln__ignore_free,
	/* malloc'd strings: the same allocator as .alloc / .free */
	.registry_credentials = kiln__docker_credentials,
};
