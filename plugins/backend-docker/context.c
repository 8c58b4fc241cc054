/*
 * context.c: the build context as a tar stream, produced as curl asks for
 * the request body, so that neither memory nor a temporary file holds the
 * whole context. libarchive walks the directory (archive_read_disk) and
 * writes pax-restricted tar (plain ustar unless a name or size needs pax)
 * into a small buffer that docker_context_read() drains.
 *
 * Entries are relative to the context directory, owned by 0:0 without
 * user names, with mtimes but no atime/ctime, and symlinks are archived
 * as symlinks, as the docker CLI sends them.
 *
 * .dockerignore, through the host's ignore-file service (kiln/ignore.h:
 * Docker's patterns, exceptions and "**"): <Dockerfile>.dockerignore next
 * to the Dockerfile when it exists (as BuildKit's Dockerfile frontend reads
 * it), else <context>/.dockerignore. A path it matches, itself or through
 * a parent directory, is left out. An excluded directory is not even
 * walked unless an exception could re-include something below it: when
 * every exception is a plain path, only the directories on the way to one
 * are walked (fsutil's rule); an exception with a wildcard makes every
 * excluded directory walked. Inside a walked, excluded directory only the
 * re-included entries are written, not the directory itself, as the docker
 * CLI does. The Dockerfile (and the directories leading to it) and the
 * context's .dockerignore are always sent, as the docker CLI does: the
 * daemon needs them, and drops them from what COPY sees when the
 * .dockerignore matches them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "docker.h"

#define CHUNK (128 * 1024) /* file data read per step */

enum state {
	ST_ENTRY,      /* next entry of the directory walk */
	ST_DATA,       /* data of a regular file */
	ST_EXTRA,      /* the Dockerfile from outside the context */
	ST_EXTRA_DATA,
	ST_CLOSE,      /* end-of-archive blocks */
	ST_END,
	ST_ERROR,
};

struct docker_context {
	const struct kiln_host *host;
	struct archive *disk;
	struct archive *w;
	struct archive_entry *entry;
	char *root;          /* the directory as opened */
	size_t root_len;
	char *dockerfile;    /* its name in the tar: never excluded */
	char *extra_path;    /* the Dockerfile from outside, or NULL */
	struct kiln_patterns *ignore; /* the ignore file's, or NULL */
	char **ignore_text;  /* the same patterns as read (ignore_read) */
	bool exceptions;     /* the list has '!' exceptions */
	bool plain_exceptions; /* ... and all of them are plain paths */
	char note[256];      /* why .dockerignore is not applied, or "" */
	int extra_fd;
	enum state state;
	struct docker_buf out; /* tar bytes not yet read */
	size_t out_off;
	char *chunk;
	uint64_t bytes;
	char error[768];
};

static char *xstrdup(const struct kiln_host *host, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = host->alloc(n);
	memcpy(p, s, n);
	return p;
}

static void fail(struct docker_context *c, const char *fmt, ...) KILN_PRINTF(2, 3);
static void fail(struct docker_context *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	c->state = ST_ERROR;
}

static la_ssize_t write_cb(struct archive *a, void *ud, const void *buf, size_t n)
{
	(void)a;
	struct docker_context *c = ud;
	docker_buf_add(c->host, &c->out, buf, n);
	c->bytes += n;
	return (la_ssize_t)n;
}

/* Make an entry look the same whoever sends it. */
static void normalise(struct archive_entry *e)
{
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	archive_entry_unset_atime(e);
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	archive_entry_set_mtime(e, archive_entry_mtime(e), 0);
}

/* The entry's path relative to the root, or NULL for the root itself. */
static const char *relative(const struct docker_context *c, const char *path)
{
	if (strncmp(path, c->root, c->root_len) != 0)
		return path; /* cannot happen: the walk stays below root */
	path += c->root_len;
	while (*path == '/')
		path++;
	return *path ? path : NULL;
}

/* The length of an exception's text without a final '/' and "**", then
 * without a final '/' and '*' (fsutil's patternWithoutTrailingGlob). */
static size_t exception_stem(const char *e)
{
	size_t n = strlen(e);
	if (n >= 3 && strcmp(e + n - 3, "/**") == 0)
		n -= 3;
	if (n >= 2 && strncmp(e + n - 2, "/*", 2) == 0)
		n -= 2;
	return n;
}

/* Use the ignore file, if any (see the top). A bad pattern or an
 * unreadable file fails the build, naming the file. */
static int ignore_load(struct docker_context *c, const char *dockerfile_path,
		       struct kiln_err *err)
{
	const struct kiln_host *host = c->host;
	if (!KILN_HAS_FIELD(host, struct kiln_host, ignore_free)) {
		snprintf(c->note, sizeof(c->note),
			 "this kiln (plugin ABI %u.%u) cannot read .dockerignore files: the "
			 "whole context is sent", KILN_ABI_MAJOR_OF(host->abi_version),
			 KILN_ABI_MINOR_OF(host->abi_version));
		return 0;
	}
	struct docker_buf file = { 0 };
	char **text = NULL;
	size_t n = 0;
	int rc = 0;
	if (dockerfile_path) {
		docker_buf_adds(host, &file, dockerfile_path);
		docker_buf_adds(host, &file, ".dockerignore");
		rc = host->ignore_read(file.p, &text, &n, err);
	}
	if (rc == 0 && !text) {
		file.len = 0;
		docker_buf_adds(host, &file, c->root);
		docker_buf_adds(host, &file, "/.dockerignore");
		rc = host->ignore_read(file.p, &text, &n, err);
	}
	if (rc < 0 || !text)
		goto out;
	host->log(KILN_LOG_DEBUG, "docker: build context: %zu patterns from %s", n, file.p);
	c->ignore_text = text;
	rc = host->patterns_compile((const char *const *)text, n, &c->ignore, err);
	if (rc < 0) {
		char msg[KILN_ERR_MSG_MAX];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		rc = host->error_at(err, rc, file.p, 0, 0, "%s", msg);
		goto out;
	}
	c->exceptions = host->patterns_has_exceptions(c->ignore);
	c->plain_exceptions = true;
	for (size_t i = 0; i < n; i++) {
		if (text[i][0] != '!')
			continue;
		const char *e = text[i] + 1;
		size_t len = exception_stem(e);
		for (size_t k = 0; k < len; k++)
			if (strchr("*[]?^\\", e[k]))
				c->plain_exceptions = false;
	}
out:
	docker_buf_release(host, &file);
	return rc;
}

/* Leave rel out of the tar? */
static bool ignored(const struct docker_context *c, const char *rel)
{
	if (!c->ignore || strcmp(rel, ".dockerignore") == 0)
		return false;
	size_t rl = strlen(rel);
	if (strcmp(rel, c->dockerfile) == 0 ||
	    (strncmp(c->dockerfile, rel, rl) == 0 && c->dockerfile[rl] == '/'))
		return false; /* the Dockerfile, or a directory on its way */
	return c->host->patterns_match(c->ignore, rel);
}

/* May the walk skip everything below the excluded directory rel? Yes
 * without exceptions; with exceptions that are all plain paths, unless one
 * is rel or below it; never with an exception holding a wildcard. */
static bool skip_below(const struct docker_context *c, const char *rel)
{
	if (!c->exceptions)
		return true;
	if (!c->plain_exceptions)
		return false;
	size_t rl = strlen(rel);
	for (char **t = c->ignore_text; *t; t++) {
		if ((*t)[0] != '!')
			continue;
		const char *e = *t + 1;
		size_t len = exception_stem(e);
		if (len >= rl && strncmp(e, rel, rl) == 0 && (len == rl || e[rl] == '/'))
			return false;
	}
	return true;
}

static void step_entry(struct docker_context *c)
{
	int r = archive_read_next_header2(c->disk, c->entry);
	if (r == ARCHIVE_EOF) {
		c->state = c->extra_path ? ST_EXTRA : ST_CLOSE;
		return;
	}
	if (r < ARCHIVE_WARN) {
		const char *p = archive_entry_pathname(c->entry);
		fail(c, "%s%s%s", p ? p : "", p ? ": " : "", archive_error_string(c->disk));
		return;
	}
	const char *path = archive_entry_pathname(c->entry);
	const char *rel = path ? relative(c, path) : NULL;
	if (rel && ignored(c, rel)) {
		/* an excluded directory is walked only for an exception */
		if (archive_read_disk_can_descend(c->disk) && !skip_below(c, rel))
			archive_read_disk_descend(c->disk);
		return;
	}
	if (archive_read_disk_can_descend(c->disk))
		archive_read_disk_descend(c->disk);
	if (!rel)
		return; /* the context directory itself */
	char *name = xstrdup(c->host, rel);
	archive_entry_copy_pathname(c->entry, name);
	normalise(c->entry);
	r = archive_write_header(c->w, c->entry);
	if (r == ARCHIVE_FAILED || r == ARCHIVE_WARN) {
		/* e.g. a socket, which tar cannot hold: leave it out */
		c->host->log(KILN_LOG_DEBUG, "docker: build context: %s: %s", name,
			     archive_error_string(c->w));
	}
	if (r < ARCHIVE_FAILED) {
		fail(c, "%s: %s", name, archive_error_string(c->w));
	} else if (r != ARCHIVE_FAILED && archive_entry_filetype(c->entry) == AE_IFREG &&
		   archive_entry_size(c->entry) > 0) {
		c->state = ST_DATA;
	}
	c->host->free(name);
}

static void step_data(struct docker_context *c)
{
	la_ssize_t n = archive_read_data(c->disk, c->chunk, CHUNK);
	if (n < 0) {
		fail(c, "%s: %s", archive_entry_pathname(c->entry),
		     archive_error_string(c->disk));
	} else if (n == 0) {
		if (archive_write_finish_entry(c->w) < ARCHIVE_WARN)
			fail(c, "%s", archive_error_string(c->w));
		else
			c->state = ST_ENTRY;
	} else if (archive_write_data(c->w, c->chunk, (size_t)n) < 0) {
		fail(c, "%s: %s", archive_entry_pathname(c->entry), archive_error_string(c->w));
	}
}

static void step_extra(struct docker_context *c)
{
	struct stat st;
	c->extra_fd = open(c->extra_path, O_RDONLY | O_CLOEXEC);
	if (c->extra_fd < 0 || fstat(c->extra_fd, &st) != 0) {
		fail(c, "%s: %s", c->extra_path, strerror(errno));
		return;
	}
	archive_entry_clear(c->entry);
	archive_entry_copy_pathname(c->entry, c->dockerfile);
	archive_entry_set_filetype(c->entry, AE_IFREG);
	archive_entry_set_perm(c->entry, 0644);
	archive_entry_set_size(c->entry, st.st_size);
	archive_entry_set_mtime(c->entry, st.st_mtime, 0);
	if (archive_write_header(c->w, c->entry) < ARCHIVE_WARN)
		fail(c, "%s: %s", c->extra_path, archive_error_string(c->w));
	else
		c->state = ST_EXTRA_DATA;
}

static void step_extra_data(struct docker_context *c)
{
	ssize_t n = read(c->extra_fd, c->chunk, CHUNK);
	if (n < 0 && errno == EINTR)
		return;
	if (n < 0) {
		fail(c, "%s: %s", c->extra_path, strerror(errno));
	} else if (n == 0) {
		close(c->extra_fd);
		c->extra_fd = -1;
		archive_write_finish_entry(c->w);
		c->state = ST_CLOSE;
	} else if (archive_write_data(c->w, c->chunk, (size_t)n) < 0) {
		fail(c, "%s: %s", c->extra_path, archive_error_string(c->w));
	}
}

static void step(struct docker_context *c)
{
	switch (c->state) {
	case ST_ENTRY: step_entry(c); break;
	case ST_DATA: step_data(c); break;
	case ST_EXTRA: step_extra(c); break;
	case ST_EXTRA_DATA: step_extra_data(c); break;
	case ST_CLOSE:
		if (archive_write_close(c->w) != ARCHIVE_OK)
			fail(c, "%s", archive_error_string(c->w));
		else
			c->state = ST_END;
		break;
	case ST_END:
	case ST_ERROR:
		break;
	}
}

int docker_context_open(const struct kiln_host *host, const char *dir,
			const char *dockerfile, const char *dockerfile_path,
			const char *extra_path, struct docker_context **out,
			struct kiln_err *err)
{
	struct docker_context *c = host->alloc(sizeof(*c));
	*c = (struct docker_context){ .host = host, .extra_fd = -1 };
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	c->root = host->alloc(len + 1);
	memcpy(c->root, dir, len);
	c->root[len] = '\0';
	c->root_len = len;
	c->dockerfile = xstrdup(host, dockerfile);
	if (extra_path)
		c->extra_path = xstrdup(host, extra_path);
	c->chunk = host->alloc(CHUNK);
	int rc = ignore_load(c, dockerfile_path, err);
	if (rc < 0) {
		docker_context_free(c);
		return rc;
	}
	c->entry = archive_entry_new();
	c->disk = archive_read_disk_new();
	c->w = archive_write_new();
	if (!c->entry || !c->disk || !c->w) {
		docker_context_free(c);
		return host->error(err, KILN_E_NOMEM, "out of memory");
	}
	archive_read_disk_set_symlink_physical(c->disk);
	archive_read_disk_set_behavior(c->disk, ARCHIVE_READDISK_NO_XATTR |
						ARCHIVE_READDISK_NO_ACL |
						ARCHIVE_READDISK_NO_FFLAGS |
						ARCHIVE_READDISK_NO_SPARSE);
	/* no padding of the last block: the tar ends after its two zero
	 * blocks, as Go's archive/tar (the docker CLI) writes it */
	archive_write_set_bytes_in_last_block(c->w, 1);
	/* hdrcharset=BINARY: names go out as the bytes on disk (UTF-8 in
	 * practice), not converted from the process locale (often "C"),
	 * which would turn every non-ASCII byte into '?' */
	if (archive_write_set_format_pax_restricted(c->w) != ARCHIVE_OK ||
	    archive_write_set_format_option(c->w, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
	    archive_write_open(c->w, c, NULL, write_cb, NULL) != ARCHIVE_OK) {
		rc = host->error(err, KILN_E_IO, "cannot start the context tar: %s",
				 archive_error_string(c->w));
		docker_context_free(c);
		return rc;
	}
	if (archive_read_disk_open(c->disk, c->root) != ARCHIVE_OK) {
		rc = host->error_at(err, KILN_E_IO, c->root, 0, 0,
				    "cannot read the build context: %s",
				    archive_error_string(c->disk));
		docker_context_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

ssize_t docker_context_read(struct docker_context *c, char *buf, size_t len)
{
	while (c->out.len == c->out_off && c->state != ST_END && c->state != ST_ERROR)
		step(c);
	if (c->state == ST_ERROR)
		return -1;
	size_t n = c->out.len - c->out_off;
	if (n > len)
		n = len;
	memcpy(buf, c->out.p + c->out_off, n);
	c->out_off += n;
	if (c->out_off == c->out.len)
		c->out.len = c->out_off = 0;
	return (ssize_t)n;
}

const char *docker_context_note(const struct docker_context *c)
{
	return c->note[0] ? c->note : NULL;
}

const char *docker_context_error(const struct docker_context *c)
{
	return c->error[0] ? c->error : "unknown error";
}

uint64_t docker_context_bytes(const struct docker_context *c)
{
	return c->bytes;
}

void docker_context_free(struct docker_context *c)
{
	if (!c)
		return;
	if (c->w)
		archive_write_free(c->w); /* closes it first if still open */
	if (c->disk)
		archive_read_free(c->disk);
	if (c->entry)
		archive_entry_free(c->entry);
	if (c->extra_fd >= 0)
		close(c->extra_fd);
	docker_buf_release(c->host, &c->out);
	c->host->free(c->chunk);
	c->host->free(c->root);
	c->host->free(c->dockerfile);
	c->host->free(c->extra_path);
	if (c->ignore)
		c->host->patterns_free(c->ignore);
	if (c->ignore_text)
		c->host->ignore_free(c->ignore_text);
	c->host->free(c);
}
