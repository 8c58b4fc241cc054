/* A shared object that is not a kiln plugin: no kiln_plugin_init. */
#include <kiln/kiln.h>

KILN_EXPORT int some_other_library_function(int x);
KILN_EXPORT int some_other_library_function(int x)
{
	return x + 1;
}
