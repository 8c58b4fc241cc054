/* lazylib.h: libcurl and libarchive, opened with dlopen(3) the first time
 * the core calls one of their functions, not at start-up.
 *
 * Why: loading libcurl maps about thirty libraries (GnuTLS, Kerberos,
 * LDAP, libssh2, ...) and libarchive brings libxml2 and ICU; the dynamic
 * loader's relocations alone cost ~6 MB of resident memory and a few ms
 * in every kiln process. Most commands never use them: `kiln build` on a
 * BuildKit address needs neither (bench/README.md, "compare.sh", has the
 * figures). Plugins that need them link them themselves (backend-docker,
 * frontend-melange), and dlopen then returns the copy already loaded.
 *
 * Include this header instead of <curl/curl.h> or <archive.h> and
 * <archive_entry.h>: every libcurl and libarchive function the core uses
 * becomes a macro that calls through a table filled on first use
 * (thread-safe). The library is found by the SONAME the core was built
 * against (KILN_LIBCURL_SONAME, KILN_LIBARCHIVE_SONAME from the
 * Makefile). If it cannot be opened, or lacks a function, kiln prints one
 * line ("kiln: cannot load libcurl.so.4: ...") and exits with status 1:
 * the installation is broken (the Debian packages libcurl4 and
 * libarchive13 are dependencies of kiln).
 *
 * To use a function not listed below, add it to its X-list.
 */
#ifndef KILN_CORE_LAZYLIB_H
#define KILN_CORE_LAZYLIB_H

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

#define KILN_CURL_FUNCS(X)                                                     \
	X(curl_easy_cleanup)                                                   \
	X(curl_easy_escape)                                                    \
	X(curl_easy_getinfo)                                                   \
	X(curl_easy_init)                                                      \
	X(curl_easy_perform)                                                   \
	X(curl_easy_setopt)                                                    \
	X(curl_easy_strerror)                                                  \
	X(curl_free)                                                           \
	X(curl_global_cleanup)                                                 \
	X(curl_global_init)                                                    \
	X(curl_slist_append)                                                   \
	X(curl_slist_free_all)

#define KILN_ARCHIVE_FUNCS(X)                                                  \
	X(archive_entry_copy_hardlink)                                         \
	X(archive_entry_copy_pathname)                                         \
	X(archive_entry_copy_stat)                                             \
	X(archive_entry_free)                                                  \
	X(archive_entry_hardlink)                                              \
	X(archive_entry_new)                                                   \
	X(archive_entry_pathname)                                              \
	X(archive_entry_set_pathname)                                          \
	X(archive_entry_set_size)                                              \
	X(archive_entry_set_symlink)                                           \
	X(archive_error_string)                                                \
	X(archive_read_data_block)                                             \
	X(archive_read_free)                                                   \
	X(archive_read_new)                                                    \
	X(archive_read_next_header)                                            \
	X(archive_read_open_filename)                                          \
	X(archive_read_support_filter_all)                                     \
	X(archive_read_support_format_tar)                                     \
	X(archive_write_close)                                                 \
	X(archive_write_data)                                                  \
	X(archive_write_data_block)                                            \
	X(archive_write_disk_new)                                              \
	X(archive_write_disk_set_options)                                      \
	X(archive_write_disk_set_standard_lookup)                              \
	X(archive_write_finish_entry)                                          \
	X(archive_write_free)                                                  \
	X(archive_write_header)                                                \
	X(archive_write_new)                                                   \
	X(archive_write_open_filename)                                         \
	X(archive_write_set_format_pax_restricted)

/* One pointer per function, of the function's own type (from the
 * library's header), named like the function. */
#define KILN__LAZY_MEMBER(name) __typeof__(name) *name;
struct kiln__curl_api {
	KILN_CURL_FUNCS(KILN__LAZY_MEMBER)
};
struct kiln__archive_api {
	KILN_ARCHIVE_FUNCS(KILN__LAZY_MEMBER)
};
#undef KILN__LAZY_MEMBER

/* The tables, loaded on the first call; never NULL (exit(1) instead).
 * Internal: call the functions by their own names. */
const struct kiln__curl_api *kiln__curl(void);
const struct kiln__archive_api *kiln__archive(void);

/* libcurl's type-checking macros (typecheck-gcc.h) wrap these two; the
 * table's pointers replace them. */
#undef curl_easy_setopt
#undef curl_easy_getinfo

#ifndef KILN__LAZYLIB_IMPL
#define curl_easy_cleanup (kiln__curl()->curl_easy_cleanup)
#define curl_easy_escape (kiln__curl()->curl_easy_escape)
#define curl_easy_getinfo (kiln__curl()->curl_easy_getinfo)
#define curl_easy_init (kiln__curl()->curl_easy_init)
#define curl_easy_perform (kiln__curl()->curl_easy_perform)
#define curl_easy_setopt (kiln__curl()->curl_easy_setopt)
#define curl_easy_strerror (kiln__curl()->curl_easy_strerror)
#define curl_free (kiln__curl()->curl_free)
#define curl_global_cleanup (kiln__curl()->curl_global_cleanup)
#define curl_global_init (kiln__curl()->curl_global_init)
#define curl_slist_append (kiln__curl()->curl_slist_append)
#define curl_slist_free_all (kiln__curl()->curl_slist_free_all)

#define archive_entry_copy_hardlink (kiln__archive()->archive_entry_copy_hardlink)
#define archive_entry_copy_pathname (kiln__archive()->archive_entry_copy_pathname)
#define archive_entry_copy_stat (kiln__archive()->archive_entry_copy_stat)
#define archive_entry_free (kiln__archive()->archive_entry_free)
#define archive_entry_hardlink (kiln__archive()->archive_entry_hardlink)
#define archive_entry_new (kiln__archive()->archive_entry_new)
#define archive_entry_pathname (kiln__archive()->archive_entry_pathname)
#define archive_entry_set_pathname (kiln__archive()->archive_entry_set_pathname)
#define archive_entry_set_size (kiln__archive()->archive_entry_set_size)
#define archive_entry_set_symlink (kiln__archive()->archive_entry_set_symlink)
#define archive_error_string (kiln__archive()->archive_error_string)
#define archive_read_data_block (kiln__archive()->archive_read_data_block)
#define archive_read_free (kiln__archive()->archive_read_free)
#define archive_read_new (kiln__archive()->archive_read_new)
#define archive_read_next_header (kiln__archive()->archive_read_next_header)
#define archive_read_open_filename (kiln__archive()->archive_read_open_filename)
#define archive_read_support_filter_all (kiln__archive()->archive_read_support_filter_all)
#define archive_read_support_format_tar (kiln__archive()->archive_read_support_format_tar)
#define archive_write_close (kiln__archive()->archive_write_close)
#define archive_write_data (kiln__archive()->archive_write_data)
#define archive_write_data_block (kiln__archive()->archive_write_data_block)
#define archive_write_disk_new (kiln__archive()->archive_write_disk_new)
#define archive_write_disk_set_options (kiln__archive()->archive_write_disk_set_options)
#define archive_write_disk_set_standard_lookup (kiln__archive()->archive_write_disk_set_standard_lookup)
#define archive_write_finish_entry (kiln__archive()->archive_write_finish_entry)
#define archive_write_free (kiln__archive()->archive_write_free)
#define archive_write_header (kiln__archive()->archive_write_header)
#define archive_write_new (kiln__archive()->archive_write_new)
#define archive_write_open_filename (kiln__archive()->archive_write_open_filename)
#define archive_write_set_format_pax_restricted (kiln__archive()->archive_write_set_format_pax_restricted)
#endif

#endif
