/* Registers a renderer named like good.c's: the second to load is refused. */
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
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "abi-good",
	.version = "0.0.1",
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
