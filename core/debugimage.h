/* debugimage.h: `kiln build --debug-image TAG` (docs/melange.md, "Debugging
 * a failed step"; melange2's debug image). When an LLB build fails, the
 * root filesystem the failing step ran on is exported as an image TAG in
 * the engine, so `docker run -it --rm TAG sh` opens the build root as the
 * step saw it (the step's own changes are lost: BuildKit keeps no result
 * of a failed op on dockerd 20.10). Internal to the core. */
#ifndef KILN_CORE_DEBUGIMAGE_H
#define KILN_CORE_DEBUGIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

#include "bus.h"

/* Which vertex failed, per job: a bus sink (kiln__debug_watch_sink) fed
 * every event of the run. Thread-safe. */
struct kiln_debug_watch;

struct kiln_debug_watch *kiln__debug_watch_new(void);
void kiln__debug_watch_sink(void *watch, const struct kiln_event *ev);
/* The digest of the vertex that failed in job job_id ("sha256:…"), a
 * malloc'd copy the caller frees, or NULL when none was seen; *name gets
 * its name (malloc'd, the caller frees) when one was seen. A vertex whose
 * error is a cancellation counts only when no other failed. */
char *kiln__debug_watch_failed(struct kiln_debug_watch *w, const char *job_id, char **name);
/* Free w; call after the bus it was added to is freed. */
void kiln__debug_watch_free(struct kiln_debug_watch *w);

/* The definition llb[llb_len] (a marshalled pb.Definition) with its
 * result moved to the root the op `failed` ran on: an exec op's "/"
 * mount input, else the op's first input. *out is arena memory.
 * Returns 0; KILN_E_NOTFOUND when failed is not in the definition or has
 * no input (a source op); KILN_E_INVALID when llb does not decode. */
int kiln__debug_root_def(const uint8_t *llb, size_t llb_len, const char *failed,
			 struct kiln_arena *arena, const uint8_t **out, size_t *out_len,
			 struct kiln_err *err);

#endif
