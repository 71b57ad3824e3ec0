/*
 * greenmarket: cells of the text tables `gm` and the markets' friendly
 * commands print, so one row stays one line and columns line up on a
 * terminal whatever the text.
 *
 * A cell is shown on one line: a line feed, tab or carriage return shows
 * as \n, \t, \r; any other character gm_text_control names (C0 and C1
 * controls, DEL, the line and paragraph separators, the bidi marks and
 * controls) as \xHH (below U+0100) or \uHHHH; a byte that is not UTF-8 as
 * \xHH.  Backslashes stay as they are: the table is for reading, --json
 * gives the exact text.
 *
 * Columns are padded by display width, not bytes: an East Asian wide
 * character (a Chinese enterprise name) takes 2 columns, a combining mark
 * 0.  The widths are the C library's (wcwidth) under a UTF-8 LC_CTYPE
 * locale made for this with newlocale() and used by this thread only while
 * a cell is measured (uselocale()), so the program's own locale is never
 * changed: C.UTF-8 (in Debian's libc-bin since Debian 12), else the
 * user's locale when it is UTF-8, else en_US.UTF-8.  Where none exists (a
 * system without locale data), every character counts one column:
 * Latin, Cyrillic and the like still line up, wide characters push the
 * rest of their row right.  Widths are per character: an emoji sequence
 * a terminal may draw as one picture (characters joined by U+200D, a skin
 * tone modifier, U+FE0F after a text-style symbol) counts as the sum of
 * its characters' wcwidth, so on such a terminal its row stands off by the
 * difference; a cut may fall inside such a sequence (never inside a
 * character), which still shows as valid text.
 *
 * A cell wider than its column's limit is cut at a character boundary,
 * never inside a UTF-8 sequence, a wide character or an escape, and ends
 * with "...".
 *
 * Header-only, so a plugin links nothing; it needs POSIX.1-2008
 * (newlocale, uselocale: _POSIX_C_SOURCE 200809L, which gcc's and clang's
 * default -std=gnu* give, or _GNU_SOURCE).
 */
#ifndef GREENMARKET_TABLE_H
#define GREENMARKET_TABLE_H

#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <greenmarket/text.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The widest a cell is shown, in columns, where a table does not say
   (a SHA-256 in hex, 64, fits). */
#define GM_TABLE_CELL_MAX 72

/* wcwidth is X/Open (XSI): <wchar.h> declares it only with _XOPEN_SOURCE
   or _GNU_SOURCE, so in C the header declares it itself (the same
   declaration again where <wchar.h> gave one).  C++ compilers on glibc
   define _GNU_SOURCE, and a C++ redeclaration would differ in its
   exception specification. */
#ifndef __cplusplus
int wcwidth(wchar_t c);
#endif

/* A UTF-8 LC_CTYPE locale to measure widths in, made for the caller, who
   frees it (freelocale); (locale_t)0 when there is none.  Not kept in a
   static (gm_table_cell keeps one: gm__table_shared_locale). */
static inline locale_t gm_table_locale(void) {
  static const char *const names[] = {"C.UTF-8", "", "en_US.UTF-8"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    locale_t l = newlocale(LC_CTYPE_MASK, names[i], (locale_t)0);
    if (!l) continue;
    const char *cs = nl_langinfo_l(CODESET, l);
    if (cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"))) return l;
    freelocale(l);
  }
  return (locale_t)0;
}

/* gm_table_locale() made once for this program or plugin (making one
   costs about 200 us: a table of a thousand cells took a quarter of a
   second), freed when it is unloaded or exits; (locale_t)0 when there is
   none.  Two threads making it at once keep one and free the other's. */
static locale_t gm__table_loc;
static int gm__table_loc_made;
static inline locale_t gm__table_shared_locale(void) {
  if (__atomic_load_n(&gm__table_loc_made, __ATOMIC_ACQUIRE))
    return __atomic_load_n(&gm__table_loc, __ATOMIC_ACQUIRE);
  locale_t l = gm_table_locale(), none = (locale_t)0;
  if (l && !__atomic_compare_exchange_n(&gm__table_loc, &none, l, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    freelocale(l);
  }
  __atomic_store_n(&gm__table_loc_made, 1, __ATOMIC_RELEASE);
  return __atomic_load_n(&gm__table_loc, __ATOMIC_ACQUIRE);
}
__attribute__((destructor)) static void gm__table_locale_free(void) {
  locale_t l =
      __atomic_exchange_n(&gm__table_loc, (locale_t)0, __ATOMIC_ACQ_REL);
  if (l) freelocale(l);
}

/* The columns code point c takes: wcwidth's in the UTF-8 locale (a
   character it calls unprintable, 1), or 1 without one.  Call between
   uselocale(gm_table_locale()) and the restore (gm_table_cell does). */
static inline size_t gm__table_cols(long c, int have_locale) {
#ifdef __STDC_ISO_10646__
  /* wchar_t holds the code point itself. */
  if (have_locale) {
    int w = wcwidth((wchar_t)c);
    return w < 0 ? 1 : (size_t)w;
  }
#else
  (void)c;
  (void)have_locale;
#endif
  return 1;
}

/*
 * `s` (NULL reads as empty) as a table shows it: on one line, escaped as
 * above, cut with "..." to at most `max` columns (0: never cut).  Returns
 * malloc()ed text, NULL when out of memory; *cols gets its width and *cut
 * (when not NULL) is set to 1 when it was cut, else left alone.
 */
static inline char *gm_table_cell(const char *s, size_t max, size_t *cols,
                                  int *cut) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t len = strlen((const char *)p), n;
  /* An escape is at most 6 bytes for a byte or character of 1-3. */
  char *out = (char *)malloc(len * 6 + 4);
  if (!out) return NULL;
  /* ASCII text needs no locale (a printable character takes 1 column,
     the others are escaped). */
  int ascii = 1;
  for (size_t i = 0; i < len && ascii; i++) ascii = p[i] < 0x80;
  locale_t loc = ascii ? (locale_t)0 : gm__table_shared_locale();
  locale_t old = (locale_t)0;
  if (loc) old = uselocale(loc);
  size_t o = 0, w = 0;
  /* The longest beginning that leaves room for "...": where a cut ends the
     text.  A combining mark (0 columns) moves it with its character. */
  size_t fit_o = 0, fit_w = 0;
  int over = 0;
  if (max && max < 4) max = 4;
  for (size_t i = 0; i < len; i += n) {
    long c = gm_utf8_decode(p + i, len - i, &n);
    char esc[8];
    const char *piece;
    size_t plen, pw;
    if (c < 0) {
      snprintf(esc, sizeof esc, "\\x%02X", p[i]);
      piece = esc, plen = pw = 4;
    } else if (c == '\n' || c == '\t' || c == '\r') {
      snprintf(esc, sizeof esc, "\\%c",
               c == '\n'   ? 'n'
               : c == '\t' ? 't'
                           : 'r');
      piece = esc, plen = pw = 2;
    } else if (gm_text_control(c)) {
      snprintf(esc, sizeof esc, c < 0x100 ? "\\x%02lX" : "\\u%04lX",
               (unsigned long)c);
      piece = esc, plen = pw = strlen(esc);
    } else {
      piece = (const char *)p + i, plen = n, pw = gm__table_cols(c, !!loc);
    }
    if (max && w + pw > max) {
      over = 1;
      break;
    }
    memcpy(out + o, piece, plen);
    o += plen;
    w += pw;
    if (max && w + 3 <= max) fit_o = o, fit_w = w;
  }
  if (over) {
    /* Everything up to where "..." still fitted, then "...". */
    o = fit_o, w = fit_w;
    memcpy(out + o, "...", 3);
    o += 3, w += 3;
    if (cut) *cut = 1;
  }
  out[o] = '\0';
  if (loc) uselocale(old);
  *cols = w;
  return out;
}

/* Prints a cell (from gm_table_cell, `cols` wide) padded with spaces to
   `width` columns, on the left when `right`. */
static inline void gm_table_pad(FILE *out, const char *cell, size_t cols,
                                size_t width, int right) {
  if (right)
    for (size_t i = cols; i < width; i++) fputc(' ', out);
  fputs(cell, out);
  if (!right)
    for (size_t i = cols; i < width; i++) fputc(' ', out);
}

/*
 * A whole table: rows of `ncols` cells under a header, printed with every
 * cell through gm_table_cell (each column cut at GM_TABLE_CELL_MAX but the
 * last) and padded to its column's widest:
 *
 *   gm_table t = {3, (const char *const[]){"SYMBOL", "PRICE", "NAME"},
 *                 0x2, NULL, 0, 0};      // bit c: column c right-aligned
 *   gm_table_row(&t, "CEA-2025", "85.50", "全国碳排放权");
 *   gm_table_print(&t, stdout);          // prints, then frees the rows
 */
typedef struct gm_table {
  int ncols;               /* columns */
  const char *const *head; /* column titles */
  unsigned right;          /* bit c: column c is right-aligned (numbers) */
  char **cells;            /* rows * ncols copied texts */
  size_t rows, cap;        /* rows used, rows allocated */
} gm_table;

/* Adds a row: t->ncols texts (NULL reads as empty), copied.  Out of
   memory: the whole row is left out (never shown with cells blanked) and
   stderr says so. */
static inline void gm_table_add(gm_table *t, const char *const *texts) {
  size_t nc = t->ncols > 0 ? (size_t)t->ncols : 0;
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **n = (char **)realloc(t->cells, cap * (nc ? nc : 1) * sizeof *n);
    if (!n) {
      fputs("(out of memory: a table row is left out)\n", stderr);
      return;
    }
    t->cells = n;
    t->cap = cap;
  }
  char **row = t->cells + t->rows * nc;
  for (size_t c = 0; c < nc; c++) {
    row[c] = strdup(texts[c] ? texts[c] : "");
    if (!row[c]) {
      while (c > 0) free(row[--c]);
      fputs("(out of memory: a table row is left out)\n", stderr);
      return;
    }
  }
  t->rows++;
}

/* gm_table_add with the row's t->ncols texts (const char *) as arguments. */
static inline void gm_table_row(gm_table *t, ...) {
  const char **texts =
      (const char **)calloc(t->ncols > 0 ? (size_t)t->ncols : 1, sizeof *texts);
  va_list ap;
  if (!texts) {
    fputs("(out of memory: a table row is left out)\n", stderr);
    return;
  }
  va_start(ap, t);
  for (int c = 0; c < t->ncols; c++) texts[c] = va_arg(ap, const char *);
  va_end(ap);
  gm_table_add(t, texts);
  free(texts);
}

/* Frees t's rows (the header is the caller's); t can take rows again. */
static inline void gm_table_free(gm_table *t) {
  size_t nc = t->ncols > 0 ? (size_t)t->ncols : 0;
  for (size_t i = 0; i < t->rows * nc; i++) free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->rows = t->cap = 0;
}

/* Prints the header and the rows, a note under them when a cell was cut,
   and frees the rows. */
static inline void gm_table_print(gm_table *t, FILE *out) {
  size_t nc = t->ncols > 0 ? (size_t)t->ncols : 0, n = (t->rows + 1) * nc;
  char **cell = (char **)calloc(n ? n : 1, sizeof *cell);
  size_t *cw = (size_t *)calloc(n ? n : 1, sizeof *cw);
  size_t *w = (size_t *)calloc(nc ? nc : 1, sizeof *w);
  int cut = 0, oom = !cell || !cw || !w;
  for (size_t r = 0; !oom && r <= t->rows; r++)
    for (size_t c = 0; !oom && c < nc; c++) {
      size_t at = r * nc + c;
      const char *s = r ? t->cells[(r - 1) * nc + c] : t->head[c];
      cell[at] =
          gm_table_cell(s, c + 1 < nc ? GM_TABLE_CELL_MAX : 0, &cw[at], &cut);
      if (!cell[at])
        oom = 1;
      else if (cw[at] > w[c])
        w[c] = cw[at];
    }
  for (size_t r = 0; !oom && r <= t->rows; r++) {
    for (size_t c = 0; c < nc; c++) {
      size_t at = r * nc + c;
      int last = c + 1 == nc, right = !!(t->right & (1u << c));
      if (last && !right)
        fputs(cell[at], out);
      else
        gm_table_pad(out, cell[at], cw[at], w[c], right);
      if (!last) fputs("  ", out);
    }
    fputc('\n', out);
  }
  if (oom) fprintf(out, "(out of memory: the table is not shown)\n");
  if (cut)
    fprintf(out,
            "(cells cut at %d columns end with \"...\": --json shows them "
            "whole)\n",
            GM_TABLE_CELL_MAX);
  for (size_t i = 0; cell && i < n; i++) free(cell[i]);
  free(cell);
  free(cw);
  free(w);
  gm_table_free(t);
}

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_TABLE_H */
