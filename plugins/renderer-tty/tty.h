/*
 * tty.h: the parts of the `tty` renderer (the live terminal view).
 *
 *   tty.c    the vtable: open/event/close, the clock, the redraw ticker,
 *            signals (SIGWINCH, SIGTSTP, crashes) and terminal restore
 *   model.c  what the renderer knows: jobs, vertices, status items, the
 *            last log lines of each vertex; events update it and queue
 *            permanent lines (finished steps, warnings, summaries)
 *   draw.c   the live area under the permanent lines, and the frame that
 *            replaces the previous one
 *   names.c  friendly names and symbols of vertices and status items
 *   text.c   output lines: UTF-8 clean-up, display width, truncation,
 *            colour, symbols; byte, speed and duration formats
 *
 * docs/renderers.md describes what the user sees. Private to this plugin:
 * names are tty_* (hidden symbols).
 */
#ifndef KILN_RENDERER_TTY_H
#define KILN_RENDERER_TTY_H

#include <locale.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

#define TTY_NS INT64_C(1000000000)
#define TTY_MS INT64_C(1000000)
/* Redraws at most this often (10 per second). */
#define TTY_FRAME_NS (100 * TTY_MS)
/* Log lines kept per vertex: the failure block shows this many. */
#define TTY_FAIL_LINES 20
/* A finished step goes into the permanent log when it has not started
 * again for this long (or its job ended). */
#define TTY_SETTLE_NS (250 * TTY_MS)
/* Default count of log lines under each running step (KILN_TTY_LOG_LINES). */
#define TTY_LOG_LINES 4
#define TTY_LOG_LINES_MAX 50
/* A log line is kept up to this many bytes (the on-disk log has it all). */
#define TTY_LINE_CAP 4096

/* The host table, set once by the entry point (as SQLite's extensions keep
 * sqlite3_api): memory comes from it, so that OOM is handled as the core
 * does. */
extern const struct kiln_host *tty_host;
void *tty_alloc(size_t n);   /* zeroed, never NULL */
void *tty_realloc(void *p, size_t n);
void tty_free(void *p);

/* ---- text.c ---------------------------------------------------------------- */

struct tty_buf {
	char *p;
	size_t len, cap;
};

struct tty;

void tty_buf_add(struct tty_buf *b, const void *data, size_t len);
void tty_buf_adds(struct tty_buf *b, const char *s);
void tty_buf_addf(struct tty_buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
void tty_buf_release(struct tty_buf *b);
char *tty_strdup(const char *s);
char *tty_strndup(const char *s, size_t n);

/* Symbols: an emoji (or other non-ASCII glyph) and its ASCII stand-in. */
enum tty_sym {
	SYM_NONE,
	SYM_DONE,      /* ✅ a step finished */
	SYM_CACHED,    /* ♻️ a step came from the cache */
	SYM_FAILED,    /* ❌ a step failed */
	SYM_CANCELLED, /* ⛔ a step was cancelled */
	SYM_WARN,      /* ⚠️ a warning */
	SYM_BASE,      /* 🏗️ base image setup (FROM) */
	SYM_PULL,      /* 📦 resolving / pulling an image */
	SYM_DOWNLOAD,  /* 📥 a layer download */
	SYM_COPY,      /* 📄 COPY / ADD / build context / Dockerfile */
	SYM_RUN,       /* ⚙️ RUN */
	SYM_WORKDIR,   /* 📁 WORKDIR */
	SYM_PORT,      /* 🔌 EXPOSE */
	SYM_ENTRY,     /* 🚀 ENTRYPOINT / CMD */
	SYM_META,      /* 📝 ENV, LABEL, USER, … */
	SYM_COMMIT,    /* 💾 committing / writing the image */
	SYM_TAG,       /* 🏷️ naming (tagging) the image */
	SYM_EXPORT,    /* 📤 exporting / pushing */
	SYM_JOB,       /* 🔨 a job's header */
	SYM_SUCCESS,   /* 🎉 a job succeeded */
	SYM__COUNT
};

/* Colours (SGR parameters); only written when colour is allowed. */
#define TTY_BOLD "1"
#define TTY_DIM "2"
#define TTY_RED "31"
#define TTY_GREEN "32"
#define TTY_YELLOW "33"
#define TTY_BLUE "34"
#define TTY_MAGENTA "35"
#define TTY_CYAN "36"

/* One output line under construction: bytes, and the columns they take.
 * Text added past the limit is cut with an ellipsis; nothing wraps. */
struct tty_line {
	struct tty *st;
	struct tty_buf b;
	int width;  /* columns used */
	int limit;  /* at most this many columns; 0 = no limit */
	bool full;  /* cut: further text is dropped */
	bool sgr;   /* a colour is on (reset at the end) */
};

void tty_line_init(struct tty_line *l, struct tty *st, int limit);
void tty_line_release(struct tty_line *l);
/* Start a colour (SGR parameters, e.g. TTY_RED ";" TTY_BOLD); NULL resets. */
void tty_line_color(struct tty_line *l, const char *sgr);
/* Text from the build or the user: invalid UTF-8 becomes U+FFFD ('?' in
 * ASCII mode), control characters and escape sequences are dropped, tabs
 * become spaces, anything non-ASCII becomes '?' in ASCII mode. */
void tty_line_text(struct tty_line *l, const char *s, size_t n);
void tty_line_str(struct tty_line *l, const char *s);
void tty_line_printf(struct tty_line *l, const char *fmt, ...) KILN_PRINTF(2, 3);
/* A symbol and one space after it; nothing for SYM_NONE, or for a kind
 * symbol (SYM_BASE…SYM_EXPORT) in ASCII mode, where the name says it. */
void tty_line_sym(struct tty_line *l, enum tty_sym sym);
/* Spaces up to column col. */
void tty_line_pad(struct tty_line *l, int col);
/* Display columns that s would take (after the same clean-up). */
int tty_text_width(struct tty *st, const char *s, size_t n);
/* Columns the line may use when its suffix takes suffix_w columns. */
int tty_line_room(const struct tty_line *l, int suffix_w);
/* Append another finished line (e.g. a right-aligned suffix). */
void tty_line_append(struct tty_line *l, const struct tty_line *other);
/* Right-aligned suffixes: text added between tty_line_body() and
 * tty_line_suffix() is cut so that suffix fits at the end of the line;
 * without a limit, suffix follows after two spaces. */
int tty_line_body(struct tty_line *l, int suffix_w);
void tty_line_suffix(struct tty_line *l, int saved, const struct tty_line *suffix);
/* End colour; the line's bytes are l->b (NUL-terminated). */
void tty_line_finish(struct tty_line *l);

/* "412B", "1.23kB", "49.55MB" (decimal units, as BuildKit). */
void tty_fmt_bytes(char *out, size_t size, int64_t bytes);
/* "0.4s", "12.3s", "1m05s", "2h03m". */
void tty_fmt_duration(char *out, size_t size, int64_t ns);

/* ---- names.c --------------------------------------------------------------- */

/* What a vertex is, from its name. */
struct tty_desc {
	enum tty_sym kind;
	char *text;       /* friendly name, e.g. "RUN make" or "resolve alpine:3.20" */
	char *tag;        /* the stage and step, e.g. "build 2/5", or NULL */
	bool is_step;     /* counts as a step (not BuildKit's [internal] work) */
	int named_total;  /* M of a "[N/M]" name without a stage, else 0 */
};

void tty_describe(const char *name, struct tty_desc *d);
void tty_desc_release(struct tty_desc *d);
/* The symbol and display text of a status item ("sha256:…" layer,
 * "naming to …", "transferring context:"). *text is malloc'd. */
enum tty_sym tty_describe_item(const char *id, int64_t total, char **text);
/* An image reference without "docker.io/library/" and with its digest
 * cut to 12 hex digits. malloc'd. */
char *tty_short_ref(const char *ref, size_t n);
/* The exit code in a failed step's error ("exit code: 3", "non-zero
 * code: 3", "exit status 3"), or -1. */
int tty_exit_code(const char *error);

/* ---- model.c --------------------------------------------------------------- */

/* One progress item of a vertex (BuildKit's VertexStatus). */
struct tty_item {
	char *id, *name;
	enum tty_sym sym;
	char *text;           /* display text */
	int64_t current, total;
	int64_t started_ns, completed_ns, timestamp_ns;
	int64_t first_ts, first_current; /* first sample, for the speed */
	size_t order;
};

struct tty_job {
	size_t index;
	char *id, *target, *platform, *builder, *frontend, *backend, *log_dir;
	int declared_steps;
	int run_jobs;
	int64_t previous_ns;  /* last successful build's duration, 0 unknown */
	int64_t started_ns, finished_ns;
	bool started, finished;
	int status;
	char *error;
	char *image_digest, *config_digest;
	int64_t image_size;     /* bytes, 0 unknown (job.finished) */
	uint32_t image_layers;
	char **tags;
	size_t n_tags;
	int named_total;      /* largest M of "[N/M]" step names */
	uint32_t warnings;
};

struct tty_vtx {
	struct tty_job *job;
	char *digest, *name;
	struct tty_desc desc;
	int number;           /* #N, by first sight (verbose lines) */
	int64_t started_ns, completed_ns;
	size_t start_order;   /* order of starting, for the live list */
	bool started, done, cached, failed, cancelled, printed;
	char *error;
	struct tty_buf partial; /* a log line without its '\n' yet */
	bool has_partial;
	bool partial_cr;        /* a '\r' ended the last chunk */
	int partial_stream;
	struct tty_buf *ring;   /* last log lines (st->ring_cap of them) */
	size_t ring_next, ring_n;
	uint64_t log_bytes, log_lines;
	struct tty_item *items;
	size_t n_items, cap_items;
	int64_t downloaded;   /* bytes of finished layer downloads */
};

/* ---- the renderer ------------------------------------------------------------ */

struct tty {
	const struct kiln_host *host;
	int fd;
	bool is_tty;
	bool color, ascii, verbose;
	bool live;            /* redraw a live area (not TERM=dumb) */
	bool event_clock;     /* KILN_TTY_CLOCK=event: time = event time */
	int log_lines;        /* KILN_TTY_LOG_LINES */
	size_t ring_cap;      /* log lines kept per vertex */
	locale_t utf8;        /* for wcwidth(), or (locale_t)0 */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t ticker;
	bool ticker_running, stopping;

	int cols, rows;       /* terminal size */
	int64_t last_ev_ns;   /* newest event time */
	int64_t last_ev_mono; /* monotonic time when it came */
	int64_t last_draw_mono;
	bool dirty;

	struct tty_job **jobs;
	size_t n_jobs, cap_jobs;
	struct tty_vtx **v;   /* in order of first sight */
	size_t n_v, cap_v;
	struct tty_vtx **tab; /* (job, digest) -> vertex */
	size_t tab_cap;
	int next_number;
	size_t next_start, next_item;

	struct tty_buf perm;  /* permanent lines not yet written */
	int *perm_w;          /* their widths */
	size_t n_perm, cap_perm;
	struct tty_buf out;   /* the frame being written */
	int *live_w;          /* widths of the live lines on screen */
	int live_rows, live_cap;
	int live_cols;        /* terminal width they were drawn at */
	bool cursor_hidden;
	int write_errno;
	uint64_t frames;      /* frames written (for tests: KILN_TTY_STATS) */
};

/* model.c */
struct tty_job *tty_job_get(struct tty *st, const struct kiln_job *kj);
void tty_on_event(struct tty *st, const struct kiln_event *ev);
/* Put settled finished steps into the permanent log. */
void tty_settle(struct tty *st);
/* At close: summaries of jobs that never finished. */
void tty_finish_all(struct tty *st);
void tty_free_model(struct tty *st);
/* Log line i (0 = oldest kept) of v. */
const struct tty_buf *tty_vtx_line(const struct tty *st, const struct tty_vtx *v, size_t i);
/* The current time as the renderer sees it (tty.c). */
int64_t tty_now(struct tty *st);

/* draw.c */
/* Queue a finished line for the permanent log (it ends with '\n' there). */
void tty_perm_line(struct tty *st, struct tty_line *l);
/* Write pending permanent lines and, when final is false, a new live
 * area; when final, leave no live area. */
void tty_draw(struct tty *st, bool final);
/* Write st->out to the terminal. */
void tty_flush(struct tty *st);
/* Columns for permanent lines that are cut to the width. */
int tty_perm_width(const struct tty *st);

#endif
