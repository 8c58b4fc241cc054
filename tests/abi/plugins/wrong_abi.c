// CFLAGS: -DFAKE_MAJOR=2
/* A plugin built for a future ABI major: its vtable says 2.0. It ignores
 * host_abi on purpose, so the core's own check is what refuses it. */
#include <kiln/kiln.h>

static int open_(const struct kiln_host *h, const struct kiln_renderer_opts *o, void **s,
		 struct kiln_err *e)
{
	(void)h, (void)o, (void)s, (void)e;
	return 0;
}
static void event(void *s, const struct kiln_event *ev) { (void)s, (void)ev; }
static int close_(void *s, struct kiln_err *e) { (void)s, (void)e; return 0; }

static const struct kiln_renderer vt = {
	.abi_version = (uint32_t)(FAKE_MAJOR << 16),
	.struct_size = sizeof(struct kiln_renderer),
	.name = "abi-future",
	.version = "9.0",
	.open = open_,
	.event = event,
	.close = close_,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	(void)host_abi, (void)err;
	return host->register_renderer(plugin, &vt);
}
