/* cmd_replay.c: `kiln replay FILE`: feed a recorded JSON event stream
 * through the bus to any renderer. Used by the golden tests and by users
 * who want to look at a CI build again. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bus.h"
#include "cli.h"
#include "eventjson.h"
#include "util.h"

int kiln__cmd_replay(struct kiln_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "progress", required_argument, NULL, 'P' },
		{ "no-emoji", no_argument, NULL, 'E' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct kiln_progress_opts po = { .mode = "plain", .fd = 1 };
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': po.mode = optarg; break;
		case 'E': po.no_emoji = true; break;
		case 'v': po.verbose = true; break;
		default:
			return kiln__usage_error("replay", "unknown or incomplete option '%s'",
						 argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return kiln__usage_error("replay", "'kiln replay' takes one FILE (or -)");
	const char *path = argv[optind];
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!in) {
		fprintf(stderr, "kiln: %s: %s\n", path, strerror(errno));
		return KILN_EXIT_USAGE;
	}

	struct kiln_err err = { 0 };
	struct kiln_bus *bus = NULL;
	int rc = kiln__progress_open(ctx, &po, &bus, &err);
	if (rc < 0) {
		kiln__err_print(&err);
		if (in != stdin)
			fclose(in);
		return kiln__exit_code(rc);
	}

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, status = KILN_EXIT_OK;
	while ((n = getline(&line, &cap, in)) > 0) {
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue; /* blank lines are not events */
		struct kiln_arena *arena = kiln__arena_new();
		struct kiln_event ev;
		rc = kiln__event_decode(line, arena, &ev, &err);
		if (rc == 0) {
			kiln__bus_emit(bus, &ev);
		} else if (rc != KILN_E_UNSUPPORTED) {
			fprintf(stderr, "kiln: %s:%d: %s\n", path, lineno, err.msg);
			status = KILN_EXIT_USAGE;
			kiln__arena_free(arena);
			break;
		}
		kiln__arena_free(arena);
	}
	free(line);
	if (in != stdin)
		fclose(in);
	if (kiln__bus_close(bus, &err) < 0) {
		kiln__err_print(&err);
		status = KILN_EXIT_USAGE;
	}
	kiln__bus_free(bus);
	return status;
}
