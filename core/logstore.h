/* logstore.h: kiln's build records under its state directory: the
 * complete log of every vertex of every build (no clipping), and the
 * duration of the last successful build of each target, for the tty
 * renderer's ETA. Layout and limits are documented in docs/renderers.md:
 *
 *   STATE/logs/RUN/JOB/HEX.log   one vertex's output, bytes as received
 *   STATE/logs/RUN/JOB/index     "HEX<TAB>vertex name" per vertex
 *   STATE/history.json           {"version":1,"builds":{KEY:{…}}}
 *
 * STATE is $KILN_STATE_DIR, else $XDG_STATE_HOME/kiln, else
 * ~/.local/state/kiln. RUN is "YYYYMMDDTHHMMSSZ-PID"; JOB the job id with
 * '/' replaced by '_'; HEX the vertex digest without "sha256:". Internal. */
#ifndef KILN_CORE_LOGSTORE_H
#define KILN_CORE_LOGSTORE_H

#include <stddef.h>

#include <kiln/kiln.h>

/* Runs kept under STATE/logs; older ones are removed when a run starts. */
#define KILN_LOGSTORE_KEEP_RUNS 20
/* Entries kept in history.json (the least recently written go first). */
#define KILN_LOGSTORE_KEEP_HISTORY 500

struct kiln_logstore;

/* The state directory (malloc'd), or NULL when no HOME is known. */
char *kiln__state_dir(void);

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

/* The run's directory (STATE/logs/RUN), or NULL. */
const char *kiln__logstore_dir(const struct kiln_logstore *ls);

void kiln__logstore_free(struct kiln_logstore *ls);

#endif
