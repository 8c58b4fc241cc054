/* cmd_replay.c: `kiln replay FILE`: feed a recorded JSON event stream
 * through the bus to any renderer. Used by the golden and screen tests
 * and by users who want to look at a CI build again.
 *
 * Pacing, for looking at a live view again and for screen tests:
 * --speed F replays at F times the recorded pace (by the events' times);
 * --pause-at N holds after the Nth event until SIGUSR1 (go on) or
 * SIGINT/SIGTERM (stop: renderers are closed, exit 130/143). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "bus.h"
#include "cli.h"
#include "eventjson.h"
#include "util.h"

#define MAX_PAUSES 32

static volatile sig_atomic_t replay_signal;

static void on_signal(int sig)
{
	replay_signal = sig;
}

static bool stopping(void)
{
	return replay_signal == SIGINT || replay_signal == SIGTERM;
}

/* Sleep until the monotonic clock reads `until` (ns), or a stop signal. */
static void sleep_until(int64_t until)
{
	int64_t now;
	while (!stopping() && (now = kiln__mono_ns()) < until) {
		int64_t d = until - now;
		struct timespec ts = { .tv_sec = (time_t)(d / 1000000000),
				       .tv_nsec = (long)(d % 1000000000) };
		nanosleep(&ts, NULL); /* EINTR: the loop looks again */
	}
}

/* Hold until SIGUSR1 (returns true: go on) or a stop signal (false). */
static bool hold(void)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigset_t wait = old;
	sigdelset(&wait, SIGINT);
	sigdelset(&wait, SIGTERM);
	sigdelset(&wait, SIGUSR1);
	while (!replay_signal)
		sigsuspend(&wait);
	bool go_on = replay_signal == SIGUSR1;
	if (go_on)
		replay_signal = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return go_on;
}

int kiln__cmd_replay(struct kiln_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "progress", required_argument, NULL, 'P' },
		{ "no-emoji", no_argument, NULL, 'E' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "speed", required_argument, NULL, 'S' },
		{ "pause-at", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	struct kiln_progress_opts po = { .mode = "plain", .fd = 1 };
	double speed = 0;
	long pauses[MAX_PAUSES];
	size_t n_pauses = 0;
	char *end;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': po.mode = optarg; break;
		case 'E': po.no_emoji = true; break;
		case 'v': po.verbose = true; break;
		case 'S':
			errno = 0;
			speed = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(speed) || speed < 0)
				return kiln__usage_error("replay", "--speed expects a factor "
							 ">= 0 (0: no pacing), got '%s'", optarg);
			break;
		case 'A':
			errno = 0;
			pauses[n_pauses] = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pauses[n_pauses] < 1)
				return kiln__usage_error("replay", "--pause-at expects an event "
							 "number >= 1, got '%s'", optarg);
			if (++n_pauses == MAX_PAUSES)
				return kiln__usage_error("replay", "at most %d --pause-at",
							 MAX_PAUSES - 1);
			break;
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

	/* SIGINT/SIGTERM stop the replay cleanly (renderers restore the
	 * terminal); SIGUSR1 ends a --pause-at hold. No SA_RESTART: a read
	 * from a pipe is interrupted too. */
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term, old_usr1;
	sigemptyset(&sa.sa_mask);
	replay_signal = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGUSR1, &sa, &old_usr1);

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, status = KILN_EXIT_OK;
	long delivered = 0;
	int64_t first_ns = 0, wall0 = 0;
	for (;;) {
		errno = 0;
		if ((n = getline(&line, &cap, in)) <= 0) {
			if (n < 0 && errno == EINTR && !stopping()) {
				clearerr(in);
				continue;
			}
			break;
		}
		if (stopping())
			break;
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue; /* blank lines are not events */
		struct kiln_arena *arena = kiln__arena_new();
		struct kiln_event ev;
		rc = kiln__event_decode(line, arena, &ev, &err);
		if (rc == 0) {
			if (speed > 0 && ev.time_ns) {
				if (!first_ns) {
					first_ns = ev.time_ns;
					wall0 = kiln__mono_ns();
				} else if (ev.time_ns > first_ns) {
					double d = (double)(ev.time_ns - first_ns) / speed;
					sleep_until(wall0 + (int64_t)d);
				}
			}
			if (stopping()) {
				kiln__arena_free(arena);
				break;
			}
			kiln__bus_emit(bus, &ev);
			delivered++;
			bool paused = false;
			for (size_t i = 0; i < n_pauses; i++)
				paused |= pauses[i] == delivered;
			if (paused && !hold()) {
				kiln__arena_free(arena);
				break;
			}
			if (paused && first_ns) {
				/* pacing starts again from here */
				first_ns = ev.time_ns;
				wall0 = kiln__mono_ns();
			}
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
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGUSR1, &old_usr1, NULL);
	if (replay_signal == SIGINT)
		return KILN_EXIT_SIGINT;
	if (replay_signal == SIGTERM)
		return KILN_EXIT_SIGTERM;
	return status;
}
