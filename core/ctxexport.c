/* ctxexport.c: `kiln build --export-context FILE.tar`: the build context
 * as the engine receives it, after the ignore rules, as a tar file for
 * debugging ("why is my context 2 GB", "is .env excluded"). The ignore
 * file is chosen as docker build and BuildKit choose it:
 * <Dockerfile>.dockerignore next to the Dockerfile, else
 * <context>/.dockerignore (kiln/ignore.h has the pattern rules). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "lazylib.h"
#include "cli.h"
#include "patterns.h"
#include "util.h"

struct walk {
	struct archive *a;
	struct kiln_patterns *pat;
	bool exceptions;
	struct kiln_err *err;
	const char *root;
	uint64_t files;
};

static int cmp_name(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int add_file(struct walk *w, const char *path, const char *rel, const struct stat *st,
		    bool matched)
{
	if (matched)
		return 0;
	struct archive_entry *e = archive_entry_new();
	archive_entry_copy_stat(e, st);
	archive_entry_set_pathname(e, rel);
	int rc = 0;
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			rc = kiln__err(w->err, KILN_E_IO, "%s: %s", path, strerror(errno));
		else {
			target[n] = '\0';
			archive_entry_set_symlink(e, target);
			archive_entry_set_size(e, 0);
		}
	} else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		archive_entry_free(e);
		return 0; /* sockets, fifos, devices: fsutil sends none either */
	}
	if (S_ISDIR(st->st_mode))
		archive_entry_set_size(e, 0);
	if (rc == 0 && archive_write_header(w->a, e) != ARCHIVE_OK)
		rc = kiln__err(w->err, KILN_E_IO, "%s", archive_error_string(w->a));
	if (rc == 0 && S_ISREG(st->st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			rc = kiln__err(w->err, KILN_E_IO, "%s: %s", path, strerror(errno));
		char buf[65536];
		ssize_t n;
		while (rc == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			if (archive_write_data(w->a, buf, (size_t)n) != n)
				rc = kiln__err(w->err, KILN_E_IO, "%s", archive_error_string(w->a));
		if (fd >= 0)
			close(fd);
		w->files++;
	}
	archive_entry_free(e);
	return rc;
}

/* Walk dir (rel: its path in the context, "" at the root), in byte order. */
static int walk_dir(struct walk *w, const char *dir, const char *rel)
{
	DIR *d = opendir(dir);
	if (!d)
		return kiln__err(w->err, KILN_E_IO, "%s: %s", dir, strerror(errno));
	struct kiln_strv names = { 0 };
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			kiln__strv_push(&names, de->d_name);
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_name);
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		char *path = kiln__xasprintf("%s/%s", dir, names.v[i]);
		char *r = *rel ? kiln__xasprintf("%s/%s", rel, names.v[i]) : kiln__xstrdup(names.v[i]);
		struct stat st;
		if (lstat(path, &st) < 0) {
			rc = kiln__err(w->err, KILN_E_IO, "%s: %s", path, strerror(errno));
		} else {
			bool matched = kiln__patterns_match(w->pat, r);
			rc = add_file(w, path, r, &st, matched);
			/* a matched directory may hold a re-included path */
			if (rc == 0 && S_ISDIR(st.st_mode) && (!matched || w->exceptions))
				rc = walk_dir(w, path, r);
		}
		free(path);
		free(r);
	}
	kiln__strv_release(&names);
	return rc;
}

int kiln__context_export(const char *context, const char *dockerfile, const char *out,
			 struct kiln_err *err)
{
	struct stat st;
	if (stat(context, &st) < 0 || !S_ISDIR(st.st_mode))
		return kiln__err(err, KILN_E_INVALID, "--export-context: the context '%s' is not a "
				 "local directory", context);
	/* <Dockerfile>.dockerignore wins over <context>/.dockerignore */
	char **pats = NULL;
	size_t n = 0;
	char *df = dockerfile ? (dockerfile[0] == '/' ? kiln__xstrdup(dockerfile)
				 : kiln__xasprintf("%s/%s", context, dockerfile))
			      : kiln__xasprintf("%s/Dockerfile", context);
	char *file = kiln__xasprintf("%s.dockerignore", df);
	int rc = kiln__ignore_read(file, &pats, &n, err);
	if (rc == 0 && !pats) {
		free(file);
		file = kiln__xasprintf("%s/.dockerignore", context);
		rc = kiln__ignore_read(file, &pats, &n, err);
	}
	free(df);
	struct walk w = { .err = err, .root = context };
	if (rc == 0)
		rc = kiln__patterns_compile((const char *const *)pats, n, &w.pat, err);
	kiln__ignore_free(pats);
	if (rc < 0) {
		if (!err->file[0])
			snprintf(err->file, sizeof(err->file), "%s", file);
		free(file);
		return rc;
	}
	free(file);
	w.exceptions = kiln__patterns_has_exceptions(w.pat);

	char *tmp = kiln__xasprintf("%s.tmp.%ld", out, (long)getpid());
	w.a = archive_write_new();
	archive_write_set_format_pax_restricted(w.a);
	if (archive_write_open_filename(w.a, tmp) != ARCHIVE_OK)
		rc = kiln__err(err, KILN_E_IO, "--export-context: cannot write %s: %s", out,
			       archive_error_string(w.a));
	if (rc == 0)
		rc = walk_dir(&w, context, "");
	if (archive_write_close(w.a) != ARCHIVE_OK && rc == 0)
		rc = kiln__err(err, KILN_E_IO, "--export-context: %s: %s", out,
			       archive_error_string(w.a));
	archive_write_free(w.a);
	kiln__patterns_free(w.pat);
	if (rc == 0 && rename(tmp, out) < 0)
		rc = kiln__err(err, KILN_E_IO, "--export-context: cannot write %s: %s", out,
			       strerror(errno));
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}
