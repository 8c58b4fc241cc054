/*
 * parser_int.h: internals shared by parser.c, shell.c and parser_json.c
 * (the Dockerfile parser). Not part of the plugin's API: parser.h is.
 */
#ifndef KILN_DF_PARSER_INT_H
#define KILN_DF_PARSER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser.h"

/* Go's utf8.RuneError and the scanner's EOF. */
#define DF_RUNE_ERROR 0xFFFDu
#define DF_EOF (-1)

/* The limit of BuildKit's line scanner (bufio.MaxScanTokenSize - 1). */
#define DF_MAX_LINE 65535

/* A growable byte buffer, always NUL-terminated once anything was added.
 * After an allocation failure it keeps failing (oom) and drops writes. */
struct df_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

void kiln__df_buf_add(struct df_buf *b, const void *s, size_t n);
void kiln__df_buf_addc(struct df_buf *b, char c);
void kiln__df_buf_addstr(struct df_buf *b, const char *s);
/* Appends r as UTF-8 as Go's WriteRune does (invalid runes as U+FFFD). */
void kiln__df_buf_addrune(struct df_buf *b, int32_t r);
void kiln__df_buf_reset(struct df_buf *b);
void kiln__df_buf_release(struct df_buf *b);
/* Hands the bytes over (NUL-terminated, "" when empty); NULL after oom. */
char *kiln__df_buf_detach(struct df_buf *b);

/* Decodes one rune as Go's utf8.DecodeRune: an invalid or short sequence
 * is U+FFFD of width 1. n must be > 0. Returns the width. */
size_t kiln__df_utf8_decode(const char *s, size_t n, int32_t *r);

/* Go's unicode.IsSpace, unicode.IsLetter, unicode.IsDigit, strconv.IsPrint. */
bool kiln__df_is_space(int32_t r);
bool kiln__df_is_letter(int32_t r);
bool kiln__df_is_digit(int32_t r);
bool kiln__df_is_print(int32_t r);

/* Appends s as Go's strconv.Quote (and so fmt's %q and %#v) writes it. */
void kiln__df_goquote(struct df_buf *b, const char *s, size_t n);

/* BuildKit's shell.Lex settings. */
struct df_lex_opts {
	char escape;               /* '\\' or '`' */
	bool raw_quotes;           /* keep quote characters */
	bool raw_escapes;          /* keep escape characters */
	bool skip_process_quotes;  /* quotes are plain characters */
	bool skip_unset_env;       /* leave unset variables as written */
};

/* What a lexer run produced. */
struct df_lex_out {
	char *word;        /* ProcessWord's result (malloc'd) */
	char **words;      /* ProcessWords' result when asked for (malloc'd) */
	size_t n_words;
};

/*
 * Runs BuildKit's shell lexer over word[0..len): ProcessWord, and with
 * want_words also ProcessWords. *budget is how many bytes the run may
 * still produce (decremented; exceeding it is an error). Unset names go
 * to unset once each (after a successful run). Returns 0, or -1 with
 * message (BuildKit's wording, "failed to process ...") in err.
 */
int kiln__df_lex(const char *word, size_t len, const struct df_lex_opts *opts,
		 bool want_words, df_lookup_fn lookup, df_unset_fn unset,
		 void *ctx, size_t *budget, struct df_lex_out *out,
		 char *err, size_t errlen);
void kiln__df_lex_out_release(struct df_lex_out *out);

/* Levenshtein distance over runes, as github.com/agext/levenshtein. */
size_t kiln__df_levenshtein(const char *a, const char *b);

/*
 * Decodes rest as Go's json.Unmarshal into []any does for the exec form.
 * Returns 0 with the strings in *out (malloc'd array of malloc'd strings),
 * DF_JSON_INVALID when rest is no JSON array (BuildKit then falls back to
 * the shell form), DF_JSON_NOT_STRINGS for an array holding anything but
 * strings, DF_JSON_NUL for a "\u0000" in a string.
 */
enum { DF_JSON_INVALID = -1, DF_JSON_NOT_STRINGS = -2, DF_JSON_NUL = -3,
       DF_JSON_OOM = -4 };
int kiln__df_json_array(const char *rest, size_t len, char ***out, size_t *n);

#endif
