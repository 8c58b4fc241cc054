/* imageinfo.h: the size and layer count of a built image, from the
 * engine's image store (Docker Engine API GET /images/{id}/json: Size and
 * RootFS.Layers), for job.finished and the build records. Internal. */
#ifndef KILN_CORE_IMAGEINFO_H
#define KILN_CORE_IMAGEINFO_H

#include <stdint.h>

#include <kiln/kiln.h>

/* Images kept in STATE/images.json, the memo below. */
#define KILN_IMAGE_INFO_KEEP 100

/* Fill e->image_size and e->image_layers for the image e->config_digest
 * (else e->image_digest) when the engine at addr, spoken to by backend
 * (a plugin name), keeps images in a Docker image store: dockerd with
 * BuildKit ("docker-unix://PATH") or the docker backend ("unix://PATH").
 * Leaves them 0 when there is no such store or no such image; never
 * fails the build. Waits at most 3 s.
 *
 * An image ID is the digest of the image's config, which names its
 * layers, so its size never changes: the answers are remembered in
 * STATE/images.json ({"version":1,"images":{ID:{size, layers,
 * added_ns}}}, the newest KILN_IMAGE_INFO_KEEP, written atomically), and
 * a cached rebuild, which yields the same ID, asks the engine nothing
 * (and does not load libcurl). STATE is kiln__state_dir(); without one
 * the engine is asked every time. */
void kiln__image_info_fill(const char *backend, const char *addr,
			   struct kiln_event_job_finished *e);

#endif
