/*
 * tty.c: the `--progress=tty` renderer, kiln's live terminal view
 * (docs/renderers.md). The default of `--progress=auto` when stderr and
 * stdout are terminals.
 *
 * Events update the model (model.c) under a mutex and mark the view
 * dirty; a ticker thread redraws it (draw.c) at most every 100 ms, so a
 * flood of log lines costs no more frames than a quiet build, and timers
 * and spinners move while nothing arrives. Time is the newest event's
 * time plus the wall time since it came, so a replayed stream shows its
 * recorded times; KILN_TTY_CLOCK=event uses event time only and draws
 * after every event, for deterministic screen tests.
 *
 * The terminal is always left usable: the cursor is hidden only while a
 * live area is drawn and shown again at close, before a stop (Ctrl-Z;
 * redrawn after `fg`) and from a handler of crash signals (SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL, SIGABRT), which then lets the previous handler
 * act. SIGINT and SIGTERM are the commands' business: `kiln build`
 * cancels the solve and closes the renderers, `kiln replay` stops and
 * closes them. SIGWINCH makes the next frame fit the new size.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tty.h"

/* ---- signals: process-wide, so one renderer instance owns them -------------- */

static volatile sig_atomic_t sig_winch;   /* the terminal was resized */
static volatile sig_atomic_t sig_cont;    /* continued after a stop */
static volatile sig_atomic_t cursor_fd = -1; /* fd whose cursor is hidden */
static bool sig_owner;                    /* an instance installed them */

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
#define N_CRASH (sizeof(crash_signals) / sizeof(crash_signals[0]))
static struct sigaction old_crash[N_CRASH], old_winch, old_tstp;
static bool have_tstp;

static void show_cursor_now(void)
{
	int fd = cursor_fd;
	if (fd >= 0) {
		static const char show[] = "\x1b[0m\x1b[?25h";
		ssize_t w = write(fd, show, sizeof(show) - 1);
		(void)w;
	}
}

static void on_crash(int sig)
{
	show_cursor_now();
	cursor_fd = -1;
	for (size_t i = 0; i < N_CRASH; i++)
		if (crash_signals[i] == sig)
			sigaction(sig, &old_crash[i], NULL);
	/* Returning re-runs the faulting instruction (or abort() raises
	 * again): the previous handler, or the default action, takes over. */
}

static void on_winch(int sig)
{
	(void)sig;
	sig_winch = 1;
}

static void on_tstp(int sig)
{
	int saved = errno;
	show_cursor_now();
	struct sigaction dfl = { .sa_handler = SIG_DFL }, self;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, &self);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig); /* stops here until SIGCONT */
	sigaction(sig, &self, NULL);
	sig_cont = 1;
	errno = saved;
}

static void install_signals(void)
{
	if (sig_owner)
		return;
	sig_owner = true;
	struct sigaction sa = { .sa_handler = on_crash }, cur;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < N_CRASH; i++)
		sigaction(crash_signals[i], &sa, &old_crash[i]);
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, &old_winch);
	/* Ctrl-Z: only if nobody else handles it (a shell-less program
	 * ignores it, and so do we). */
	have_tstp = false;
	if (sigaction(SIGTSTP, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL) {
		sa.sa_handler = on_tstp;
		sigaction(SIGTSTP, &sa, &old_tstp);
		have_tstp = true;
	}
}

/* Put back what install_signals replaced, where it is still ours. */
static void restore_one(int sig, void (*ours)(int), const struct sigaction *old)
{
	struct sigaction cur;
	if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == ours)
		sigaction(sig, old, NULL);
}

static void uninstall_signals(void)
{
	if (!sig_owner)
		return;
	for (size_t i = 0; i < N_CRASH; i++)
		restore_one(crash_signals[i], on_crash, &old_crash[i]);
	restore_one(SIGWINCH, on_winch, &old_winch);
	if (have_tstp)
		restore_one(SIGTSTP, on_tstp, &old_tstp);
	sig_owner = false;
}

/* ---- time ---------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * TTY_NS + ts.tv_nsec;
}

int64_t tty_now(struct tty *st)
{
	if (st->event_clock)
		return st->last_ev_ns;
	if (!st->last_ev_ns)
		return st->host->now_ns();
	return st->last_ev_ns + (mono_ns() - st->last_ev_mono);
}

/* ---- redraws ------------------------------------------------------------------------ */

static bool any_running_job(const struct tty *st)
{
	for (size_t i = 0; i < st->n_jobs; i++)
		if (st->jobs[i]->started && !st->jobs[i]->finished)
			return true;
	return false;
}

/* Called with st->mu held. */
static void frame(struct tty *st)
{
	if (sig_cont && sig_owner) {
		/* after a stop the shell wrote below us: start afresh */
		sig_cont = 0;
		st->live_rows = 0;
		st->cursor_hidden = false;
	}
	sig_winch = 0;
	tty_settle(st);
	tty_draw(st, false);
	st->last_draw_mono = mono_ns();
	st->dirty = false;
	cursor_fd = st->cursor_hidden ? st->fd : -1;
}

static void *ticker_main(void *arg)
{
	struct tty *st = arg;
	pthread_mutex_lock(&st->mu);
	while (!st->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += TTY_FRAME_NS;
		if (until.tv_nsec >= TTY_NS) {
			until.tv_sec++;
			until.tv_nsec -= TTY_NS;
		}
		int rc = 0;
		while (!st->stopping && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&st->cv, &st->mu, &until);
		if (st->stopping)
			break;
		if (st->dirty || sig_winch || sig_cont || any_running_job(st))
			frame(st);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

static void start_ticker(struct tty *st)
{
	/* No signal may land in this thread: SIGINT belongs to the
	 * command's own handling (kiln build waits for it in sigwait). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	st->ticker_running = pthread_create(&st->ticker, NULL, ticker_main, st) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the vtable -------------------------------------------------------------------- */

static void tty_event(void *state, const struct kiln_event *ev)
{
	struct tty *st = state;
	pthread_mutex_lock(&st->mu);
	if (ev->time_ns > st->last_ev_ns) {
		st->last_ev_ns = ev->time_ns;
		st->last_ev_mono = mono_ns();
	}
	tty_on_event(st, ev);
	st->dirty = true;
	if (!st->live || st->event_clock)
		frame(st);
	else if (!st->ticker_running && mono_ns() - st->last_draw_mono >= TTY_FRAME_NS)
		frame(st);
	pthread_mutex_unlock(&st->mu);
}

static int env_int(const char *name, int def, int min, int max)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < min || n > max)
		return def;
	return (int)n;
}

static int tty_open(const struct kiln_host *host, const struct kiln_renderer_opts *opts,
		    void **statep, struct kiln_err *err)
{
	if (!opts || !KILN_HAS_FIELD(opts, struct kiln_renderer_opts, start_ns) ||
	    opts->fd < 0)
		return host->error(err, KILN_E_INVALID, "tty progress: no output");
	struct tty *st = tty_alloc(sizeof(*st));
	st->host = host;
	st->fd = opts->fd;
	st->is_tty = opts->is_tty;
	st->color = opts->color;
	st->ascii = !opts->emoji;
	st->verbose = opts->verbose;
	const char *term = getenv("TERM");
	st->live = !(term && strcmp(term, "dumb") == 0);
	const char *clock = getenv("KILN_TTY_CLOCK");
	st->event_clock = clock && strcmp(clock, "event") == 0;
	st->log_lines = env_int("KILN_TTY_LOG_LINES", TTY_LOG_LINES, 0, TTY_LOG_LINES_MAX);
	st->ring_cap = st->log_lines > TTY_FAIL_LINES ? (size_t)st->log_lines : TTY_FAIL_LINES;
	st->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (!st->utf8)
		st->utf8 = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
	/* Not a terminal (--progress=tty 2>file): COLUMNS/LINES, or 80x24. */
	st->cols = env_int("COLUMNS", 80, 20, 10000);
	st->rows = env_int("LINES", 24, 5, 10000);
	struct winsize ws;
	if (st->is_tty && ioctl(st->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		st->cols = ws.ws_col;
		st->rows = ws.ws_row;
	}
	st->last_ev_ns = 0;
	pthread_mutex_init(&st->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (st->live && st->is_tty)
		install_signals();
	if (st->live && !st->event_clock)
		start_ticker(st);
	*statep = st;
	return 0;
}

static int tty_close(void *state, struct kiln_err *err)
{
	struct tty *st = state;
	const struct kiln_host *h = st->host;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (st->ticker_running)
		pthread_join(st->ticker, NULL);

	pthread_mutex_lock(&st->mu);
	tty_finish_all(st);
	tty_draw(st, true);
	cursor_fd = -1;
	int e = st->write_errno;
	pthread_mutex_unlock(&st->mu);
	if (st->live && st->is_tty)
		uninstall_signals();

	tty_free_model(st);
	tty_buf_release(&st->perm);
	tty_free(st->perm_w);
	tty_buf_release(&st->out);
	tty_free(st->live_w);
	if (st->utf8)
		freelocale(st->utf8);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	tty_free(st);
	if (e)
		return h->error(err, KILN_E_IO, "tty progress: write: %s", strerror(e));
	return 0;
}

static const struct kiln_renderer tty_renderer = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "tty",
	.version = "1.0.0",
	.description = "live terminal view: running steps, logs, progress and a summary",
	.open = tty_open,
	.event = tty_event,
	.close = tty_close,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	if (rc < 0)
		return rc;
	tty_host = host;
	return host->register_renderer(plugin, &tty_renderer);
}
