/*
 * fsutil.h: internals of fsutil.c shared with its unit test. The handlers
 * themselves are declared in session.h.
 */
#ifndef KILN_BUILDKIT_FSUTIL_H
#define KILN_BUILDKIT_FSUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes of file data per DATA packet the sender sends. */
#define BUILDKIT_FSUTIL_CHUNK (256 * 1024)

/* Most file requests (REQ) the receiver keeps outstanding at once: each
 * holds an open file, and the daemon's sender queues at most 128. */
#define BUILDKIT_FSUTIL_INFLIGHT 64

/* Go os.FileMode bits (Stat.mode). */
#define BUILDKIT_GO_DIR (1u << 31)
#define BUILDKIT_GO_SYMLINK (1u << 27)
#define BUILDKIT_GO_DEVICE (1u << 26)
#define BUILDKIT_GO_NAMEDPIPE (1u << 25)
#define BUILDKIT_GO_SOCKET (1u << 24)
#define BUILDKIT_GO_SETUID (1u << 23)
#define BUILDKIT_GO_SETGID (1u << 22)
#define BUILDKIT_GO_CHARDEVICE (1u << 21)
#define BUILDKIT_GO_STICKY (1u << 20)
#define BUILDKIT_GO_IRREGULAR (1u << 19)
#define BUILDKIT_GO_TYPE                                                                  \
	(BUILDKIT_GO_DIR | BUILDKIT_GO_SYMLINK | BUILDKIT_GO_NAMEDPIPE | BUILDKIT_GO_SOCKET | \
	 BUILDKIT_GO_DEVICE | BUILDKIT_GO_CHARDEVICE | BUILDKIT_GO_IRREGULAR)

/* POSIX st_mode -> Go os.FileMode, as fsutil sends it (the socket bit is
 * cleared). */
uint32_t buildkit_go_mode(mode_t m);
/* Go os.FileMode -> POSIX st_mode (type, permissions, setuid, setgid,
 * sticky). */
mode_t buildkit_posix_mode(uint32_t go);
/* Both sides' test for an entry whose data may be requested. */
bool buildkit_go_has_data(uint32_t go);

#endif
