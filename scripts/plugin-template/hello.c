/* A minimal kiln renderer plugin: prints one line per finished job.
 * Build with the Makefile beside it; see docs/plugins.md. */
#include <stdio.h>
#include <unistd.h>

#include <kiln/kiln.h>

struct hello {
	const struct kiln_host *host;
	int fd;
};

static int hello_open(const struct kiln_host *host, const struct kiln_renderer_opts *opts,
		      void **state, struct kiln_err *err)
{
	(void)err;
	struct hello *h = host->alloc(sizeof(*h));
	h->host = host;
	h->fd = opts->fd;
	*state = h;
	return 0;
}

static void hello_event(void *state, const struct kiln_event *ev)
{
	struct hello *h = state;
	if (ev->kind != KILN_EVENT_JOB_FINISHED)
		return;
	char line[256];
	int n = snprintf(line, sizeof(line), "hello: %s %s (%u steps, %u cached)\n",
			 ev->job->target, ev->u.job_finished.status ? "failed" : "done",
			 ev->u.job_finished.metrics.vertices, ev->u.job_finished.metrics.cached);
	if (n > 0 && write(h->fd, line, (size_t)n) < 0)
		return;
}

static int hello_close(void *state, struct kiln_err *err)
{
	(void)err;
	struct hello *h = state;
	h->host->free(h);
	return 0;
}

static const struct kiln_renderer hello_renderer = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "hello",
	.version = "0.1",
	.description = "example out-of-tree renderer",
	.open = hello_open,
	.event = hello_event,
	.close = hello_close,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_renderer(plugin, &hello_renderer);
}
