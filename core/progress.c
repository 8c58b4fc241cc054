/* progress.c: choosing renderers for --progress, as buildx does:
 * auto = tty when the output is a terminal, else plain. */
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "cli.h"
#include "logstore.h"
#include "util.h"

static bool env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

static bool utf8_locale(void)
{
	setlocale(LC_CTYPE, "");
	const char *cs = nl_langinfo(CODESET);
	bool ok = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
	setlocale(LC_CTYPE, "C");
	return ok;
}

int kiln__progress_open(struct kiln_ctx *ctx, const struct kiln_progress_opts *po,
			struct kiln_bus **busp, struct kiln_err *err)
{
	const char *mode = po->mode && *po->mode ? po->mode : "auto";
	int fd = po->fd;
	bool is_tty = isatty(fd) == 1;
	const char *term = getenv("TERM");
	bool dumb = term && strcmp(term, "dumb") == 0;

	const char *name = mode;
	if (strcmp(mode, "auto") == 0) {
		/* The live view only when both the progress stream and stdout
		 * are terminals; `kiln build . > log` gets plain lines. */
		bool live = is_tty && isatty(1) == 1 && !dumb &&
			    kiln__registry_want(&ctx->reg, KILN_KIND_RENDERER, "tty");
		name = live ? "tty" : "plain";
	} else if (strcmp(mode, "rawjson") == 0) {
		name = "json"; /* buildx's name for the raw event stream */
	}

	struct kiln_bus *bus = kiln__bus_new();
	if (strcmp(name, "quiet") != 0) {
		const struct kiln_reg_entry *e =
			kiln__registry_want(&ctx->reg, KILN_KIND_RENDERER, name);
		if (!e) {
			kiln__bus_free(bus);
			return kiln__err(err, KILN_E_NOTFOUND,
					 "no renderer '%s' for --progress (see 'kiln plugins')",
					 name);
		}
		struct kiln_renderer_opts ro = {
			.struct_size = sizeof(ro),
			.fd = fd,
			.is_tty = is_tty,
			.color = is_tty && !dumb && !env_set("NO_COLOR"),
			.emoji = !po->no_emoji && !dumb && utf8_locale(),
			.verbose = po->verbose,
			.start_ns = kiln__now_ns(),
		};
		int rc = kiln__bus_add_renderer(bus, e->vt, &ro, err);
		if (rc < 0) {
			kiln__bus_free(bus);
			return rc;
		}
	}
	if (po->record_key) {
		struct kiln_logstore *ls = kiln__logstore_open(po->record_key,
							       KILN_LOGSTORE_KEEP_RUNS);
		kiln__logstore_set_info(ls, po->record_name, po->record_context, po->record_file);
		kiln__bus_set_logstore(bus, ls);
	}
	*busp = bus;
	return 0;
}
