/* trace.h: one build's timeline as a self-contained HTML page (inline SVG,
 * no script or style fetched from the network) or as a bare SVG document,
 * for `kiln history trace ID -o FILE [--format html|svg]` (docs/history.md).
 *
 * One bar per vertex on a shared time axis; vertices that overlap in time
 * go in separate lanes; cached vertices are marked, the failing one drawn
 * red; each bar carries its name, duration and cache state (a <title> for
 * hover, and data-* attributes a test can read through the DOM).
 * Internal to the core. */
#ifndef KILN_CORE_TRACE_H
#define KILN_CORE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One vertex of the record. Times are Unix epoch nanoseconds, 0 = unknown
 * (a vertex never started or never completed). Strings are borrowed. */
struct kiln_trace_vertex {
	const char *digest;    /* "sha256:…" */
	const char *name;      /* e.g. "[build 2/5] RUN make" */
	int64_t started_ns;
	int64_t completed_ns;
	bool cached;
	const char *error;     /* non-NULL when this vertex failed */
};

/* One build. vertices[n_vertices] in any order; the writer sorts by start. */
struct kiln_trace {
	const char *id;        /* the history ID, shown in the header */
	const char *title;     /* target / job name, or NULL */
	int64_t started_ns;    /* the job's start and end, 0 = from vertices */
	int64_t finished_ns;
	int status;            /* 0 succeeded, else failed */
	const struct kiln_trace_vertex *vertices;
	size_t n_vertices;
};

enum kiln_trace_format { KILN_TRACE_HTML, KILN_TRACE_SVG };

/* Write t to out in the given format. Returns 0, or -1 with errno set
 * when writing fails. Never reads the network or any file. */
int kiln__trace_write(FILE *out, const struct kiln_trace *t, enum kiln_trace_format format);

#endif
