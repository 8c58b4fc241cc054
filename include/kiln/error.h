/*
 * error.h: kiln's error codes and error report.
 *
 * Functions return 0 on success or a negative enum kiln_code; details go to
 * a caller-provided struct kiln_err, which is left untouched on success.
 * The report holds its strings inline, so there is nothing to free.
 */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

/* Error codes. Append only: the numbers are part of the ABI and appear in
 * the JSON event stream. kiln_host.strerror() names them. */
enum kiln_code {
	KILN_OK = 0,
	KILN_E_NOMEM = -1,       /* out of memory */
	KILN_E_INVALID = -2,     /* bad argument or option value */
	KILN_E_IO = -3,          /* a file or socket operation failed */
	KILN_E_NOTFOUND = -4,    /* file, plugin, target or stage not found */
	KILN_E_UNSUPPORTED = -5, /* the engine or plugin lacks the feature */
	KILN_E_ABI = -6,         /* plugin ABI mismatch */
	KILN_E_PLUGIN = -7,      /* plugin refused to load or misbehaved */
	KILN_E_SYNTAX = -8,      /* bad input file: see file/line/column */
	KILN_E_CONNECT = -9,     /* daemon unreachable */
	KILN_E_PROTOCOL = -10,   /* unexpected answer from a daemon */
	KILN_E_BUILD = -11,      /* the solve failed (a step failed) */
	KILN_E_CANCELLED = -12,  /* cancelled by a signal or --fail-fast */
	KILN_E_EXISTS = -13,     /* duplicate name */
	KILN_E_DENIED = -14,     /* permission or entitlement refused */
	KILN_E_ENGINE_LOST = -15, /* the engine went away during a solve (it
				   * answered, then its connection broke) */
};

/* Sizes of the inline buffers of struct kiln_err, in bytes incl. NUL. */
#define KILN_ERR_MSG_MAX 1024
#define KILN_ERR_FILE_MAX 512

/*
 * An error report. Owned by whoever declared it (usually on the stack);
 * strings are inline and truncated to fit. file is empty and line/column
 * are 0 when the error has no source position. Set it with
 * kiln_host.error() or kiln_host.error_at().
 */
struct kiln_err {
	int code;                     /* enum kiln_code, negative */
	int line;                     /* 1-based source line, or 0 */
	int column;                   /* 1-based source column, or 0 */
	char file[KILN_ERR_FILE_MAX]; /* source file of the problem, or "" */
	char msg[KILN_ERR_MSG_MAX];   /* one line, no trailing newline */
};

#endif
