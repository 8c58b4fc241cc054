/* stdin.c: build inputs on standard input, as `docker build` takes them
 * (https://docs.docker.com/reference/cli/docker/buildx/build/ "-" context,
 * "-f -"): the bytes are spooled to a private temp dir and the build then
 * reads ordinary files. Archives are unpacked with libarchive, refusing
 * absolute paths, ".." and writes through symlinks. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "lazylib.h"
#include "cli.h"
#include "util.h"

/* Copy all of fd 0 into path (mode 0600). */
static int spool_stdin(const char *path, struct kiln_err *err)
{
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return kiln__err(err, KILN_E_IO, "cannot create %s: %s", path, strerror(errno));
	char buf[65536];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(out);
			return kiln__err(err, KILN_E_IO, "cannot read standard input: %s",
					 strerror(errno));
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				close(out);
				return kiln__err(err, KILN_E_IO, "cannot write %s: %s", path,
						 strerror(errno));
			}
			off += w;
		}
	}
	if (close(out) < 0)
		return kiln__err(err, KILN_E_IO, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

/* 1 when file is a (possibly compressed) tar archive, 0 when not. */
static int is_tar(const char *file)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	struct archive_entry *e;
	int tar = archive_read_open_filename(a, file, 65536) == ARCHIVE_OK &&
		  archive_read_next_header(a, &e) != ARCHIVE_FATAL;
	archive_read_free(a);
	return tar;
}

/* Unpack the tar archive file into the existing directory dir. */
static int extract(const char *file, const char *dir, struct kiln_err *err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	struct archive *w = archive_write_disk_new();
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(w, flags);
	archive_write_disk_set_standard_lookup(w);
	int rc = 0;
	if (archive_read_open_filename(a, file, 65536) != ARCHIVE_OK) {
		rc = kiln__err(err, KILN_E_IO, "cannot read the context on standard input: %s",
			       archive_error_string(a));
		goto out;
	}
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		/* Entry paths are relative to dir; hard link targets too.
		 * An absolute entry is refused here, ".." by libarchive. */
		if (archive_entry_pathname(e)[0] == '/') {
			rc = kiln__err(err, KILN_E_INVALID, "bad context tarball on standard "
				       "input: absolute path '%s'", archive_entry_pathname(e));
			goto out;
		}
		char *path = kiln__xasprintf("%s/%s", dir, archive_entry_pathname(e));
		archive_entry_copy_pathname(e, path);
		free(path);
		const char *hl = archive_entry_hardlink(e);
		if (hl) {
			char *t = kiln__xasprintf("%s/%s", dir, hl);
			archive_entry_copy_hardlink(e, t);
			free(t);
		}
		if (archive_write_header(w, e) < ARCHIVE_WARN) {
			rc = kiln__err(err, KILN_E_INVALID, "bad context tarball on standard "
				       "input: %s", archive_error_string(w));
			goto out;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
				rc = kiln__err(err, KILN_E_IO, "cannot unpack the context: %s",
					       archive_error_string(w));
				goto out;
			}
		if (r != ARCHIVE_EOF) {
			rc = kiln__err(err, KILN_E_INVALID, "bad context tarball on standard "
				       "input: %s", archive_error_string(a));
			goto out;
		}
		if (archive_write_finish_entry(w) < ARCHIVE_WARN) {
			rc = kiln__err(err, KILN_E_IO, "cannot unpack the context: %s",
				       archive_error_string(w));
			goto out;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = kiln__err(err, KILN_E_INVALID, "bad context tarball on standard input: %s",
			       archive_error_string(a));
out:
	archive_read_free(a);
	archive_write_free(w);
	return rc;
}

int kiln__stdin_prepare(struct kiln_stdin_input *in, struct kiln_build_opts *o,
			struct kiln_err *err)
{
	bool ctx_stdin = o->context && strcmp(o->context, "-") == 0;
	bool df_stdin = o->dockerfile && strcmp(o->dockerfile, "-") == 0;
	if (!ctx_stdin && !df_stdin)
		return 0;
	if (ctx_stdin && df_stdin)
		return kiln__err(err, KILN_E_INVALID, "invalid argument: can't use stdin for "
				 "both build context and dockerfile");
	const char *tmp = getenv("TMPDIR");
	char *dir = kiln__xasprintf("%s/kiln-stdin-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		int rc = kiln__err(err, KILN_E_IO, "cannot make a temp dir in %s: %s",
				   tmp && *tmp ? tmp : "/tmp", strerror(errno));
		free(dir);
		return rc;
	}
	in->dir = dir;
	char *spool = kiln__xasprintf("%s/stdin", dir);
	int rc = spool_stdin(spool, err);
	if (rc < 0)
		goto out;
	if (df_stdin) {
		/* The Dockerfile keeps its usual name, next to nothing else. */
		in->dockerfile = kiln__xasprintf("%s/Dockerfile", dir);
		if (rename(spool, in->dockerfile) < 0)
			rc = kiln__err(err, KILN_E_IO, "%s: %s", in->dockerfile, strerror(errno));
		o->dockerfile = in->dockerfile;
		goto out;
	}
	in->context = kiln__xasprintf("%s/context", dir);
	if (mkdir(in->context, 0755) < 0) {
		rc = kiln__err(err, KILN_E_IO, "%s: %s", in->context, strerror(errno));
		goto out;
	}
	o->context = in->context;
	if (is_tar(spool)) {
		rc = extract(spool, in->context, err);
		/* -f names a file inside the tarball, as with docker. */
		if (rc == 0 && o->dockerfile) {
			if (o->dockerfile[0] == '/' || strstr(o->dockerfile, "..")) {
				rc = kiln__err(err, KILN_E_INVALID, "-f '%s' must be a relative "
					       "path inside the context tarball", o->dockerfile);
				goto out;
			}
			in->dockerfile = kiln__xasprintf("%s/%s", in->context, o->dockerfile);
			o->dockerfile = in->dockerfile;
		}
	} else {
		/* Not an archive: a Dockerfile, and the context is empty. */
		in->dockerfile = kiln__xasprintf("%s/Dockerfile", dir);
		if (rename(spool, in->dockerfile) < 0)
			rc = kiln__err(err, KILN_E_IO, "%s: %s", in->dockerfile, strerror(errno));
		o->dockerfile = in->dockerfile;
	}
out:
	unlink(spool);
	free(spool);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void kiln__stdin_cleanup(struct kiln_stdin_input *in)
{
	if (in->dir) {
		/* Children first (FTW_DEPTH), never following symlinks. */
		nftw(in->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		rmdir(in->dir);
	}
	free(in->dir);
	free(in->context);
	free(in->dockerfile);
	*in = (struct kiln_stdin_input){ 0 };
}
