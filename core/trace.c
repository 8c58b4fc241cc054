/* trace.c: placeholder until the timeline writer lands (see trace.h). */
#include <errno.h>

#include "trace.h"

int kiln__trace_write(FILE *out, const struct kiln_trace *t, enum kiln_trace_format format)
{
	(void)out; (void)t; (void)format;
	errno = ENOSYS;
	return -1;
}
