/*
 * common.h: versions, the export macro and small types shared by every
 * public header. Included by all of them; include kiln/kiln.h instead.
 */
#ifndef KILN_COMMON_H
#define KILN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Version of kiln itself (the program), for display only. */
#define KILN_VERSION "0.1.0"

/*
 * Plugin ABI version, packed as (major << 16) | minor.
 * Major changes break compatibility: a plugin built for another major is
 * refused at load time. Minor changes only append fields to the end of the
 * host table or a vtable; check struct_size before reading a newer field
 * (KILN_HAS_FIELD below).
 */
#define KILN_ABI_MAJOR 1
#define KILN_ABI_MINOR 0
#define KILN_ABI_VERSION ((uint32_t)((KILN_ABI_MAJOR << 16) | KILN_ABI_MINOR))
#define KILN_ABI_MAJOR_OF(v) ((unsigned)((uint32_t)(v) >> 16))
#define KILN_ABI_MINOR_OF(v) ((unsigned)((uint32_t)(v) & 0xffffu))

/* True when the struct *p (whose first fields are abi_version and
 * struct_size) is large enough to hold member `field`. */
#define KILN_HAS_FIELD(p, type, field)                                        \
	((p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Marks the symbols a shared object exports; everything else is hidden
 * (the build uses -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define KILN_EXPORT __attribute__((visibility("default")))
#define KILN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KILN_EXPORT
#define KILN_PRINTF(fmt, args)
#endif

/* A key/value pair; both strings are NUL-terminated. Who owns them is
 * stated where the pair is used. */
struct kiln_kv {
	const char *key;
	const char *value;
};

#endif
