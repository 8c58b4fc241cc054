/*
 * event.h: the one event model that flows from every backend to every
 * renderer.
 *
 * Build-level events (job started/finished) come from kiln's core; the
 * others mirror BuildKit's SolveStatus message (Vertex, VertexStatus,
 * VertexLog, VertexWarning; see BuildKit's api/services/control/control.proto
 * and ../shared/docs/BUILDKIT-WIRE.md section "Status"). The Docker Engine
 * API backend normalises its JSON stream into the same events.
 *
 * Ownership: an event and everything it points to belong to the emitter and
 * are valid only during the call that delivers it; a renderer that keeps
 * anything must copy it. Strings are NUL-terminated UTF-8 unless stated.
 * Times are nanoseconds since the Unix epoch (UTC); 0 means "not set".
 *
 * The JSON form of every event is documented in docs/events.md.
 */
#ifndef KILN_EVENT_H
#define KILN_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/common.h"

/* Event kinds. Append only. */
enum kiln_event_kind {
	KILN_EVENT_JOB_STARTED = 1,
	KILN_EVENT_JOB_FINISHED = 2,
	KILN_EVENT_VERTEX = 3,
	KILN_EVENT_VERTEX_STATUS = 4,
	KILN_EVENT_VERTEX_LOG = 5,
	KILN_EVENT_WARNING = 6,
};

/* One job: one target built for one platform on one builder. */
struct kiln_job {
	const char *id;       /* unique within the run, e.g. "app@linux/arm64" */
	const char *target;   /* target name ("default" for a bare CLI build) */
	const char *platform; /* "linux/amd64"; "" = the engine's default */
	const char *builder;  /* builder name, or the engine address */
	int number;           /* 1-based position of the job in the plan */
};

/* Counters of one job, filled by the core's metrics collector from the
 * vertex events it saw (each vertex counted once, by digest). */
struct kiln_job_metrics {
	int64_t duration_ns;    /* job wall time */
	uint32_t vertices;      /* distinct vertices seen */
	uint32_t completed;     /* vertices that completed (incl. cached) */
	uint32_t cached;        /* vertices reported cached */
	uint32_t failed;        /* vertices that completed with an error */
	uint32_t warnings;      /* warnings seen */
	uint64_t log_bytes;     /* bytes of vertex logs */
};

/* KILN_EVENT_JOB_STARTED */
struct kiln_event_job_started {
	const char *frontend; /* frontend plugin name, or NULL */
	const char *backend;  /* backend plugin name, or NULL */
	int steps;            /* steps this build runs (Step N/M), 0 unknown */
	int jobs;             /* jobs in the whole run, 0 unknown */
	/* Appended in ABI 1.0 before release: check KILN_HAS_FIELD. Both are
	 * filled in by the core when it keeps build records (kiln build). */
	const char *log_dir;  /* where the core keeps this job's complete
			       * vertex logs, one file per vertex named after
			       * its digest (docs/events.md), or NULL */
	int64_t previous_duration_ns; /* wall time of the last successful
				       * build of the same target and platform
				       * kiln recorded, 0 when none */
	/* Appended: check KILN_HAS_FIELD. Why the core chose this backend
	 * for this engine, one line (docs/cli.md "Choosing the engine"),
	 * e.g. "DOCKER_HOST=unix:///… is dockerd with BuildKit (API 1.41)";
	 * NULL when not known (a replayed stream from before). */
	const char *backend_reason;
};

/* KILN_EVENT_JOB_FINISHED */
struct kiln_event_job_finished {
	int status;                      /* 0, or a negative enum kiln_code */
	const char *error;               /* one-line message when status != 0 */
	struct kiln_job_metrics metrics; /* filled in by the core */
	const char *image_digest;        /* exporter's image digest, or NULL */
	const char *config_digest;       /* image config digest, or NULL */
	/* Appended: check KILN_HAS_FIELD. Filled in by the core. */
	uint64_t context_bytes; /* bytes sent for the job's local sources
				 * (build context, Dockerfile, named contexts):
				 * the last `current` of each "transferring …"
				 * vertex status, summed; 0 when none was seen */
	int64_t image_size;     /* bytes of the image's layers as the engine's
				 * image store counts them (Docker's
				 * GET /images/{id}/json Size); 0 unknown */
	uint32_t image_layers;  /* layers of that image (RootFS.Layers); 0
				 * unknown (no image store, or not an image) */
};

/* KILN_EVENT_VERTEX: a vertex (one LLB op) appeared or changed state.
 * The same digest may be sent many times; later sends supersede earlier. */
struct kiln_event_vertex {
	const char *digest;        /* "sha256:…", the vertex identity */
	const char *name;          /* e.g. "[build 2/5] RUN make" */
	const char *const *inputs; /* digests of input vertices */
	size_t n_inputs;
	int64_t started_ns;        /* 0 while not started */
	int64_t completed_ns;      /* 0 while not completed */
	bool cached;               /* result came from the cache */
	const char *error;         /* set when the vertex failed, else NULL */
};

/* KILN_EVENT_VERTEX_STATUS: progress of one part of a vertex, such as a
 * layer download ("sha256:…" id) or "transferring context". */
struct kiln_event_vertex_status {
	const char *id;       /* stable id of this progress item */
	const char *vertex;   /* digest of the owning vertex */
	const char *name;     /* display name, or NULL (then use id) */
	int64_t current;      /* units done (bytes unless total is a count) */
	int64_t total;        /* units in all, 0 when unknown */
	int64_t timestamp_ns; /* when the daemon measured current */
	int64_t started_ns;
	int64_t completed_ns; /* 0 while running */
};

/* KILN_EVENT_VERTEX_LOG: a chunk of a vertex's output. Not NUL-terminated,
 * not split at line boundaries; may contain any bytes. */
struct kiln_event_vertex_log {
	const char *vertex;   /* digest of the owning vertex */
	int stream;           /* 1 stdout, 2 stderr */
	const uint8_t *data;
	size_t len;
	int64_t timestamp_ns;
};

/* KILN_EVENT_WARNING: a warning from the frontend or the daemon. */
struct kiln_event_warning {
	const char *vertex;        /* owning vertex digest, or NULL */
	int level;                 /* BuildKit's level: 0 info .. 2 severe */
	const char *message;       /* short one-line message */
	const char *const *detail; /* further lines, or NULL */
	size_t n_detail;
	const char *url;           /* documentation link, or NULL */
	const char *file;          /* source file (e.g. Dockerfile), or NULL */
	int line;                  /* 1-based line in file, or 0 */
};

/*
 * One event. struct_size lets the receiver know which trailing members of
 * the union exist; receivers must ignore kinds they do not know.
 */
struct kiln_event {
	uint32_t struct_size;       /* sizeof(struct kiln_event) at the sender */
	enum kiln_event_kind kind;
	int64_t time_ns;            /* when the event happened (or was received) */
	const struct kiln_job *job; /* the job it belongs to; never NULL */
	union {
		struct kiln_event_job_started job_started;
		struct kiln_event_job_finished job_finished;
		struct kiln_event_vertex vertex;
		struct kiln_event_vertex_status status;
		struct kiln_event_vertex_log log;
		struct kiln_event_warning warning;
	} u;
};

/* Name of an event kind as used in the JSON stream ("job.started",
 * "vertex", …), or NULL for an unknown kind. Static strings. */
static inline const char *kiln_event_kind_name(enum kiln_event_kind kind)
{
	switch (kind) {
	case KILN_EVENT_JOB_STARTED: return "job.started";
	case KILN_EVENT_JOB_FINISHED: return "job.finished";
	case KILN_EVENT_VERTEX: return "vertex";
	case KILN_EVENT_VERTEX_STATUS: return "vertex.status";
	case KILN_EVENT_VERTEX_LOG: return "vertex.log";
	case KILN_EVENT_WARNING: return "warning";
	}
	return NULL;
}

#endif
