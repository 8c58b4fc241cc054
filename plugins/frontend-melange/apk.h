/*
 * apk.h: writes apk v2 packages and APKINDEX.tar.gz files, as melange
 * (and abuild) lay them out, for the melange frontend.
 *
 * A package is three gzip members, one after the other in one file:
 *
 *   [signature]  tar: .SIGN.RSA256.<key>.pub (or .SIGN.RSA.<key>.pub);
 *                no end-of-archive blocks; only when a key is given
 *   control      tar: .PKGINFO, then any extra control files (scriptlets,
 *                .melange.yaml) in name order; no end-of-archive blocks
 *   data         tar of the tree, with end-of-archive blocks
 *
 * The signature is RSA PKCS#1 v1.5 over the exact bytes of the control
 * member; .PKGINFO's datahash is the hex SHA-256 of the data member's
 * bytes; an index's C: field is "Q1" + base64 of the SHA-1 of the control
 * member's bytes (apk-tools' package identity).
 *
 * Data tar: entries in lexical walk order (each directory's names sorted
 * by bytes, a directory before its contents), root left out, relative
 * paths without "./" or a trailing '/'; every mtime = builddate; mode bits
 * (07777) as on disk; symlinks as symlinks; a second path to an inode as
 * a hard link to the first path seen; char/block devices and fifos kept.
 * Each regular file, hard link and symlink has the pax record
 * APK-TOOLS.checksum.SHA1 = hex SHA-1 of its content (of the link target
 * text for a symlink); regular files and directories carry their extended
 * attributes as SCHILY.xattr.* records (not system.* nor security.selinux).
 * Headers are POSIX ustar with a pax 'x' header before every entry that
 * has records; long names, links, sizes and ids also go to pax records.
 *
 * Output is reproducible: the same tree, metadata and key give the same
 * bytes (gzip headers carry no time or name). Files are written to a
 * temporary sibling and renamed into place, so a reader never sees half a
 * package.
 *
 * Errors: every function returns 0 or a negative enum kiln_code and then
 * fills *err (err may be NULL): KILN_E_INVALID for bad metadata,
 * KILN_E_IO for file system failures, KILN_E_NOTFOUND for a missing tree,
 * key or directory, KILN_E_UNSUPPORTED for entries an apk cannot hold
 * (sockets) or keys that are not RSA, KILN_E_SYNTAX for an .apk that does
 * not parse, KILN_E_NOMEM. Nothing keeps state between calls; two calls
 * may run in different threads.
 */
#ifndef KILN_MELANGE_APK_H
#define KILN_MELANGE_APK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/error.h"

/* Digest under the RSA signature: melange signs SHA-256 (".SIGN.RSA256."),
 * abuild's classic form is SHA-1 (".SIGN.RSA."). apk-tools 2.12 and later
 * read both. */
enum apk_sig_hash {
	APK_SIG_SHA256 = 0,
	APK_SIG_SHA1 = 1,
};

/* A signing key. All strings are borrowed for the call. */
struct apk_key {
	const char *path;       /* PEM RSA private key (PKCS#1 or PKCS#8) */
	const char *name;       /* public key name, e.g. "melange.rsa.pub"
	                         * minus ".pub"; NULL = basename of path */
	enum apk_sig_hash hash;
};

/* An extra file of the control section (".pre-install", ".melange.yaml"):
 * written root:root with this mode, mtime = builddate. Borrowed. */
struct apk_control_file {
	const char *name;       /* starts with '.', no '/' */
	const void *data;
	size_t len;
	unsigned mode;          /* e.g. 0644, 0755 for scriptlets */
};

/* What .PKGINFO says. All strings are borrowed for the call; NULL and ""
 * mean "not given". Arrays of strings may be NULL when their count is 0. */
struct apk_meta {
	const char *name;        /* pkgname; required, [A-Za-z0-9][A-Za-z0-9+_.-]* */
	const char *version;     /* required, without "-r" */
	unsigned epoch;          /* pkgver = version-r<epoch> */
	const char *arch;        /* required, apk spelling: x86_64, aarch64 */
	const char *description; /* pkgdesc */
	const char *url;
	const char *origin;      /* main package's name; NULL = name */
	const char *commit;
	const char *maintainer;  /* written only when given */
	uint64_t builddate;      /* SOURCE_DATE_EPOCH: every mtime; the
	                          * builddate line only when non-zero */
	const char *const *licenses; size_t n_licenses;  /* license =, one line
	                                                   * each (the index
	                                                   * joins them: " AND ") */
	const char *const *depends;  size_t n_depends;   /* depend = */
	const char *const *provides; size_t n_provides;  /* provides = */
	const char *const *replaces; size_t n_replaces;  /* replaces = */
	unsigned provider_priority; /* written when non-zero */
	unsigned replaces_priority; /* written when non-zero */
};

/* How apk_write() treats the tree and signs. Zero-initialised = keep the
 * owners on disk, no passwd/group names except root, unsigned. */
struct apk_options {
	bool root_owner;         /* every entry 0:0 root:root */
	const char *passwd;      /* file naming uids (an /etc/passwd), or NULL */
	const char *group;       /* file naming gids (an /etc/group), or NULL */
	const struct apk_control_file *control_files; size_t n_control_files;
	const struct apk_key *key; /* NULL = unsigned */
};

/* What apk_write() wrote. Caller-owned, filled only on success. */
struct apk_result {
	char path[4096];         /* <outdir>/<arch>/<name>-<version>-r<epoch>.apk */
	uint64_t size;           /* bytes of the .apk */
	uint64_t installed_size; /* .PKGINFO size: regular files (each inode
	                          * once) plus symlink target lengths */
	uint64_t sig_len, control_len, data_len; /* member sizes, in order */
	char datahash[65];       /* hex SHA-256 of the data member */
	char identity[31];       /* "Q1" + base64 SHA-1 of the control member */
};

/* Package the tree `root` (a melange-out/<name> directory; not followed
 * when it is a symlink) into <outdir>/<arch>/<name>-<version>-r<epoch>.apk,
 * creating <outdir>/<arch> (0755) when needed and replacing an older file
 * atomically. opts may be NULL; res may be NULL. */
int apk_write(const char *root, const char *outdir, const struct apk_meta *meta,
	      const struct apk_options *opts, struct apk_result *res,
	      struct kiln_err *err);

/* Write <dir>/APKINDEX.tar.gz for every *.apk in dir (not below it), in
 * file name order: a tar (with end-of-archive) of DESCRIPTION (when
 * description is non-NULL) and APKINDEX, root-owned, mode 0644, mtime 0,
 * gzipped; signed like a package when key is non-NULL (the signature
 * covers the index member). Replaces an older index atomically. An empty
 * directory gives an index with no entries. n_packages (may be NULL)
 * receives the number of entries. */
int apk_index_write(const char *dir, const char *description,
		    const struct apk_key *key, size_t *n_packages,
		    struct kiln_err *err);

/* The gzip members of an apk (or a signed index) held in memory: stores
 * the offset where each member begins in off[0..*n-1] (off[0] = 0) and
 * their count in *n; at most cap members. Used by apk_index_write() and
 * the tests. KILN_E_SYNTAX when the bytes are not whole gzip members or
 * there are more than cap. */
int apk_split_members(const void *buf, size_t len, size_t *off, size_t cap,
		      size_t *n, struct kiln_err *err);

#endif
