/*
 * banned.h: functions kiln's own code must not call (force-included by the
 * Makefile into every kiln source, plugins included). Use snprintf, memcpy with explicit sizes, or a strbuf. After
 * git's banned.h.
 */
#ifndef KILN_BANNED_H
#define KILN_BANNED_H

/* The real declarations first, so the macros below only hit callers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KILN_BANNED(func) sorry_##func##_is_banned_in_kiln

#undef strcpy
#define strcpy(x, y) KILN_BANNED(strcpy)
#undef strcat
#define strcat(x, y) KILN_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) KILN_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) KILN_BANNED(strncat)
#undef sprintf
#define sprintf(...) KILN_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) KILN_BANNED(vsprintf)
#undef gets
#define gets(x) KILN_BANNED(gets)

#endif
