/* tests/unit/tmpfiles.h: a temporary directory for a cmocka test file and
 * files written into it. Include once per test program, after cmocka.h;
 * the test's group setup fills tmpdir (mkdtemp) and its teardown removes
 * it with nftw(tmpdir, rm_entry, …, FTW_DEPTH | FTW_PHYS). */
#ifndef KILN_TESTS_TMPFILES_H
#define KILN_TESTS_TMPFILES_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

/* tmpdir/name into buf. */
static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* tmpdir/name with content, mode set exactly (no umask). */
static void write_file(const char *name, const char *content, mode_t mode)
{
	char p[256];
	path_in(p, sizeof(p), name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t n = strlen(content);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
	chmod(p, mode);
}

#endif
