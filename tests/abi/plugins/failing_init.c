/* A plugin whose entry fails, e.g. because a resource it needs is missing. */
#include <kiln/kiln.h>

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	(void)host_abi, (void)plugin;
	return host->error(err, KILN_E_PLUGIN, "cannot find its configuration file");
}
