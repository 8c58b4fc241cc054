/* lazylib.c: the tables of lazylib.h, filled by dlopen(3)/dlsym(3) on first
 * use, once per process (pthread_once). */
#define KILN__LAZYLIB_IMPL
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef KILN_LIBCURL_SONAME
#define KILN_LIBCURL_SONAME "libcurl.so.4"
#endif
#ifndef KILN_LIBARCHIVE_SONAME
#define KILN_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

/* Open soname (RTLD_NOW: a missing symbol shows here, not mid-build);
 * exit(1) with one line if that fails. The handle stays open for the
 * life of the process. */
static void *open_lib(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "kiln: cannot load %s: %s\n", soname, dlerror());
		exit(1);
	}
	return h;
}

static void *sym(void *h, const char *soname, const char *name)
{
	void *p = dlsym(h, name);
	if (!p) {
		fprintf(stderr, "kiln: cannot load %s: it has no %s\n", soname, name);
		exit(1);
	}
	return p;
}

/* kiln__NAME(): the table of struct kiln__NAME_api, filled from SONAME by
 * the X-list FUNCS the first time it is asked for. */
#define LAZY_LIBRARY(name, FUNCS, soname)                                      \
	static struct kiln__##name##_api name##_api;                           \
	static pthread_once_t name##_once = PTHREAD_ONCE_INIT;                 \
	static void name##_load(void)                                          \
	{                                                                      \
		void *h = open_lib(soname);                                    \
		FUNCS(LOAD_##name)                                             \
	}                                                                      \
	const struct kiln__##name##_api *kiln__##name(void)                    \
	{                                                                      \
		pthread_once(&name##_once, name##_load);                       \
		return &name##_api;                                            \
	}

#define LOAD_curl(f) curl_api.f = (__typeof__(curl_api.f))sym(h, KILN_LIBCURL_SONAME, #f);
#define LOAD_archive(f) \
	archive_api.f = (__typeof__(archive_api.f))sym(h, KILN_LIBARCHIVE_SONAME, #f);

LAZY_LIBRARY(curl, KILN_CURL_FUNCS, KILN_LIBCURL_SONAME)
LAZY_LIBRARY(archive, KILN_ARCHIVE_FUNCS, KILN_LIBARCHIVE_SONAME)
