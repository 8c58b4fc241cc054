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

static struct kiln__curl_api curl_api;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_load(void)
{
	void *h = open_lib(KILN_LIBCURL_SONAME);
#define LOAD(f) curl_api.f = (__typeof__(curl_api.f))sym(h, KILN_LIBCURL_SONAME, #f);
	KILN_CURL_FUNCS(LOAD)
#undef LOAD
}

const struct kiln__curl_api *kiln__curl(void)
{
	pthread_once(&curl_once, curl_load);
	return &curl_api;
}

static struct kiln__archive_api archive_api;
static pthread_once_t archive_once = PTHREAD_ONCE_INIT;

static void archive_load(void)
{
	void *h = open_lib(KILN_LIBARCHIVE_SONAME);
#define LOAD(f) archive_api.f = (__typeof__(archive_api.f))sym(h, KILN_LIBARCHIVE_SONAME, #f);
	KILN_ARCHIVE_FUNCS(LOAD)
#undef LOAD
}

const struct kiln__archive_api *kiln__archive(void)
{
	pthread_once(&archive_once, archive_load);
	return &archive_api;
}
