/* logstore.h: kiln's build records under its state directory: the
 * complete log of every vertex of every build (no clipping), one record
 * per job (kiln history, kiln stats), and the duration of the last
 * successful build of each target, for the tty renderer's ETA. Layout and
 * limits are documented in docs/history.md and docs/renderers.md:
 *
 *   STATE/logs/RUN/lock          the builder's pid, flock()ed while it runs
 *   STATE/logs/RUN/JOB/record.json  the job's record (written atomically
 *                                at job.started and at job.finished)
 *   STATE/logs/RUN/JOB/HEX.log   one vertex's output, bytes as received
 *   STATE/logs/RUN/JOB/index     "HEX<TAB>vertex name" per vertex
 *   STATE/history.json           {"version":1,"builds":{KEY:{…}}}
 *
 * STATE is $KILN_STATE_DIR, else $XDG_STATE_HOME/kiln, else
 * ~/.local/state/kiln. RUN is "YYYYMMDDTHHMMSSZ-PID"; JOB the job id with
 * '/' replaced by '_'; HEX the vertex digest without "sha256:". Internal. */
#ifndef KILN_CORE_LOGSTORE_H
#define KILN_CORE_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

/* Runs kept under STATE/logs; older ones are removed when a run starts,
 * as are runs older than the age limit and the oldest runs while all of
 * them take more than the size limit (runs under way are kept). */
#define KILN_LOGSTORE_KEEP_RUNS 200
/* Defaults of $KILN_HISTORY_MAX_AGE and $KILN_HISTORY_MAX_SIZE. */
#define KILN_HISTORY_MAX_AGE_S (30 * 86400)
#define KILN_HISTORY_MAX_BYTES ((uint64_t)1 << 30)
/* record.json's "version". */
#define KILN_RECORD_VERSION 1
/* Characters of a record ID. */
#define KILN_RECORD_ID_LEN 12

struct kiln_logstore_limits {
	int64_t max_age_s;  /* 0: no age limit */
	uint64_t max_bytes;
};
/* The limits in force: the defaults, or $KILN_HISTORY_MAX_AGE ("30d",
 * "48h", "90m", seconds) and $KILN_HISTORY_MAX_SIZE ("1g", "512m",
 * bytes); a bad value is warned about and the default kept. */
void kiln__logstore_limits(struct kiln_logstore_limits *l);
/* Entries kept in history.json (the least recently written go first). */
#define KILN_LOGSTORE_KEEP_HISTORY 500

struct kiln_logstore;

/* The state directory (malloc'd), or NULL when no HOME is known. */
char *kiln__state_dir(void);

/* For the state directory's small JSON files (history.json, images.json),
 * each {"version":N, MEMBER:{KEY:{…}}}:
 * kiln__json_load_versioned reads path (NULL: none) and returns its root
 * (the caller json_decref()s it), or a new empty one when the file is
 * missing, unreadable, or of another version or shape;
 * kiln__json_keep_newest drops from obj (an object of objects) the
 * members whose integer member time_key is smallest until at most keep
 * remain;
 * kiln__json_write_atomic writes root to path through a temporary file
 * (mkstemp, mode 0600) renamed over it, so a reader never sees half a
 * file and concurrent writers each write a whole one (the last rename
 * wins): 0, or -1 with errno. */
struct json_t;
struct json_t *kiln__json_load_versioned(const char *path, int version, const char *member);
void kiln__json_keep_newest(struct json_t *obj, const char *time_key, size_t keep);
int kiln__json_write_atomic(struct json_t *root, const char *path);

/* Start recording one run. key names what is built (the caller's choice,
 * e.g. the context directory and Dockerfile); the history is keyed by it
 * plus each job's target, platform and builder. keep_runs bounds
 * STATE/logs. Returns NULL (after one warning) when the directory cannot
 * be made; the build goes on without records. */
struct kiln_logstore *kiln__logstore_open(const char *key, size_t keep_runs);

/* See every event before the renderers do. For job.started, fills in
 * ev->u.job_started.log_dir and previous_duration_ns (ev is the bus's
 * copy; strings stay valid until kiln__logstore_free). */
void kiln__logstore_event(struct kiln_logstore *ls, struct kiln_event *ev);

/* What the records call this run: name (e.g. the context directory's
 * name; a kiln.lua target's records use the target), the context and the
 * build file. Strings are copied; any may be NULL. */
void kiln__logstore_set_info(struct kiln_logstore *ls, const char *name, const char *context,
			     const char *file);

/* The record ID of job job_id of run (STATE/logs/RUN): KILN_RECORD_ID_LEN
 * base-36 characters of SHA-256(RUN "/" JOB ID), stable for the record's
 * life. malloc'd. */
char *kiln__record_id(const char *run, const char *job_id);

/* Is the run in run_dir under way (its lock held by a live process)?
 * Then *pid (when pid is not NULL) is the builder's process id. */
bool kiln__logstore_run_active(const char *run_dir, long *pid);

/* Does a vertex of this name count as a build step for the cache hit
 * rate? Not BuildKit's bookkeeping vertices ("[internal] …", "exporting
 * …", "naming to …", "resolve image config …", …), which never hit, nor
 * base images ("[1/3] FROM …", "docker-image://…"): sources are
 * resolved or pulled, not run. */
bool kiln__vertex_is_step(const char *name);

/* The run's directory (STATE/logs/RUN), or NULL. */
const char *kiln__logstore_dir(const struct kiln_logstore *ls);

void kiln__logstore_free(struct kiln_logstore *ls);

#endif
