/* A well-behaved test plugin: a renderer that counts events and reports
 * the count when closed, so a test can see it really ran. */
#include <stdio.h>
#include <unistd.h>

#include <kiln/kiln.h>

struct state {
	const struct kiln_host *host;
	int fd;
	unsigned events, jobs;
};

static int open_(const struct kiln_host *host, const struct kiln_renderer_opts *opts,
		 void **state, struct kiln_err *err)
{
	(void)err;
	struct state *s = host->alloc(sizeof(*s));
	*s = (struct state){ .host = host, .fd = opts->fd };
	*state = s;
	return 0;
}

static void event(void *state, const struct kiln_event *ev)
{
	struct state *s = state;
	s->events++;
	if (ev->kind == KILN_EVENT_JOB_STARTED)
		s->jobs++;
}

static int close_(void *state, struct kiln_err *err)
{
	(void)err;
	struct state *s = state;
	char line[128];
	int n = snprintf(line, sizeof(line), "abi-good: %u events, %u jobs\n", s->events, s->jobs);
	if (write(s->fd, line, (size_t)n) < 0)
		n = 0;
	s->host->free(s);
	return 0;
}

static const struct kiln_renderer vt = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "abi-good",
	.version = "1.2.3",
	.description = "test renderer that counts events",
	.open = open_,
	.event = event,
	.close = close_,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_renderer(plugin, &vt);
}
