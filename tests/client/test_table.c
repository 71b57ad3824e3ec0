/*
 * greenmarket/table.h on its own: random bytes and UTF-8 through
 * gm_table_cell with small limits (run under the ASan build for overruns),
 * whole tables through gm_table_print, the locale made once when several
 * threads ask first.  table_header.c is the header as a plugin author
 * compiles it (ISO C with POSIX.1-2008 only, and C++).
 */
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/table.h>

#include "check_loop.h"

static uint64_t seed = 0x9e3779b97f4a7c15u;
static unsigned rnd(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return (unsigned)(seed >> 11);
}

/* Pieces a cell is made of: plain, wide, combining, joiner, emoji, the
   escaped controls, broken and forbidden UTF-8 (a lone lead byte, a cut
   sequence, a surrogate, an overlong form, past U+10FFFF). */
static const char *const frags[] = {"a",
                                    "\xe4\xb8\xad",
                                    "\xcc\x81",
                                    "\xe2\x80\x8d",
                                    "\xf0\x9f\x98\x80",
                                    "\n",
                                    "\t",
                                    "\r",
                                    "\x1b",
                                    "\xc2\x85",
                                    "\x7f",
                                    "\xe2\x80\xae",
                                    "\xe2\x80\xa8",
                                    "\xd8\x9c",
                                    "\xef\xb8\x8f",
                                    "\xff",
                                    "\xe4\xb8",
                                    "\xf0\x9f",
                                    "\xed\xa0\x80",
                                    "\xc0\xaf",
                                    "\xf4\x90\x80\x80",
                                    "\\",
                                    "...",
                                    "  "};

/* A random text of up to `max` pieces or random bytes (never NUL). */
static void random_text(char *buf, size_t pieces) {
  size_t o = 0, n = rnd() % (pieces + 1);
  for (size_t k = 0; k < n; k++) {
    if (rnd() % 3 == 0) {
      buf[o++] = (char)(1 + rnd() % 255);
    } else {
      const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
      memcpy(buf + o, f, strlen(f));
      o += strlen(f);
    }
  }
  buf[o] = '\0';
}

/* The width of `len` bytes of a cell, measured again; fails the test on
   bytes that are not UTF-8 or a control character left unescaped. Its
   locale is made once per test process: newlocale maps the locale's files
   each time, and the random tests measure some 20,000 cells. */
static size_t width_of(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  static locale_t loc;
  static int have_loc;
  if (!have_loc) loc = gm_table_locale(), have_loc = 1;
  locale_t old = (locale_t)0;
  size_t n, w = 0;
  if (loc) old = uselocale(loc);
  for (size_t i = 0; i < len; i += n) {
    long c = gm_utf8_decode(p + i, len - i, &n);
    gm_check_msg(c >= 0, "not UTF-8 at byte %zu of \"%s\"", i, s);
    gm_check_msg(!gm_text_control(c), "U+%04lX unescaped in \"%s\"", c, s);
    w += gm__table_cols(c, loc != (locale_t)0);
  }
  if (loc) uselocale(old);
  return w;
}

/*
 * Whatever the bytes and the limit: the cell is UTF-8 without controls,
 * its width is what it says and within the limit (4 at the least), a cut
 * one is the longest beginning of the whole one that leaves room for
 * "...", then "...", and an uncut one is the whole one.
 */
START_TEST(random_cells_stay_valid_and_within_their_limit) {
  char buf[24 * 4 + 1];
  for (int it = 0; it < 4000; it++) {
    random_text(buf, 24);
    size_t max = rnd() % 14, cols = 0, whole_cols = 0;
    int cut = 0, whole_cut = 0;
    char *whole = gm_table_cell(buf, 0, &whole_cols, &whole_cut);
    char *c = gm_table_cell(buf, max, &cols, &cut);
    ck_assert_ptr_nonnull(whole);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(whole_cut, 0);
    ck_assert_uint_eq(width_of(whole, strlen(whole)), whole_cols);
    ck_assert_uint_eq(width_of(c, strlen(c)), cols);
    size_t limit = max && max < 4 ? 4 : max;
    if (!limit || whole_cols <= limit) {
      ck_assert_int_eq(cut, 0);
      ck_assert_str_eq(c, whole);
    } else {
      size_t len = strlen(c);
      ck_assert_int_eq(cut, 1);
      ck_assert_uint_le(cols, limit);
      ck_assert_uint_ge(len, 3);
      ck_assert_str_eq(c + len - 3, "...");
      ck_assert_msg(!strncmp(c, whole, len - 3),
                    "\"%s\" is not a cut of \"%s\"", c, whole);
      /* The longest: the next piece of the whole (a character or an
         escape, with its combining marks) would not have fitted. */
      const unsigned char *rest = (const unsigned char *)whole + len - 3;
      size_t n, next = 0;
      if (*rest == '\\') {
        next = rest[1] == 'x' ? 4 : rest[1] == 'u' ? 6 : 2;
      } else {
        gm_utf8_decode(rest, strlen((const char *)rest), &n);
        next = width_of((const char *)rest, n);
      }
      ck_assert_msg(cols - 3 + next + 3 > limit,
                    "\"%s\" cut short of \"%s\" at %zu", c, whole, limit);
    }
    free(whole);
    free(c);
  }
}
END_TEST

/*
 * Random tables: every row one line, UTF-8, and every row's columns but
 * the last start at the same display column.
 */
START_TEST(random_tables_line_up) {
  for (int it = 0; it < 200; it++) {
    int nc = 1 + (int)(rnd() % 5);
    char *head[5];
    const char *heads[5];
    for (int c = 0; c < nc; c++) {
      head[c] = malloc(80 * 4 + 1);
      random_text(head[c], rnd() % 4 ? 6 : 80);
      heads[c] = head[c];
    }
    gm_table t = {nc, heads, rnd() % 32, NULL, 0, 0};
    size_t rows = rnd() % 6, last[7];
    int last_right = !!(t.right & (1u << (nc - 1)));
    char *x = gm_table_cell(heads[nc - 1], 0, &last[0], NULL);
    free(x);
    for (size_t r = 0; r < rows; r++) {
      char cells[5][80 * 4 + 1];
      const char *texts[5];
      for (int c = 0; c < nc; c++) {
        random_text(cells[c], rnd() % 4 ? 6 : 80);
        texts[c] = rnd() % 7 ? cells[c] : NULL;
      }
      gm_table_add(&t, texts);
      x = gm_table_cell(texts[nc - 1], 0, &last[r + 1], NULL);
      free(x);
    }
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    ck_assert_ptr_nonnull(f);
    gm_table_print(&t, f);
    fclose(f);
    size_t line = 0, start = (size_t)-1;
    for (char *p = out; *p; line++) {
      char *e = strchr(p, '\n');
      ck_assert_msg(e != NULL, "a line without its end: %s", p);
      size_t w = width_of(p, (size_t)(e - p));
      if (line <= rows) {
        size_t before = w - (last_right ? 0 : last[line]);
        ck_assert_uint_ge(w, last_right ? 0 : last[line]);
        if (start == (size_t)-1) start = before;
        ck_assert_msg(before == start, "row %zu out of line:\n%s", line, out);
      } else {
        ck_assert_msg(!strncmp(p, "(cells cut at", 13), "extra line: %s", p);
      }
      p = e + 1;
    }
    ck_assert_uint_ge(line, rows + 1);
    free(out);
    for (int c = 0; c < nc; c++) free(head[c]);
  }
}
END_TEST

static pthread_barrier_t start_line;

static void *measure_chinese(void *arg) {
  size_t *cols = arg;
  pthread_barrier_wait(&start_line);
  char *c = gm_table_cell("\xe4\xb8\xad\xe6\x96\x87", 0, cols, NULL);
  free(c);
  return NULL;
}

/*
 * Threads that measure at once, none before them: each sees the locale
 * (the same widths as after), none a half-made one.  The locale used to
 * be made behind an unguarded "tried" flag, a data race that could give
 * one thread 1 column a character; a race shows only sometimes, so this
 * runs the first call from 8 threads in 20 fresh processes.
 */
START_TEST(the_first_measure_from_several_threads) {
  pthread_t th[8];
  size_t cols[8];
  pthread_barrier_init(&start_line, NULL, 8);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, measure_chinese, &cols[i]),
                     0);
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start_line);
  locale_t have = gm_table_locale();
  size_t want = have ? 4 : 2;
  if (have) freelocale(have);
  for (int i = 0; i < 8; i++) ck_assert_uint_eq(cols[i], want);
}
END_TEST

/*
 * A module using the header (a market plugin's CLI part) loaded, used and
 * unloaded 100 times leaves the heap as it was: no locale stays behind
 * (one kept in a static did, 240 bytes and more each time, and
 * LeakSanitizer reported it when gm unloaded the plugins at exit).
 */
START_TEST(an_unloaded_module_leaves_no_locale_behind) {
  size_t before = 0;
  locale_t have = gm_table_locale();
  size_t want = have ? 4 : 2;
  if (have) freelocale(have);
  for (int i = 0; i < 101; i++) {
    void *h = dlopen(TABLE_MODULE, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "%s", dlerror());
    size_t (*measure)(void) = (size_t(*)(void))dlsym(h, "table_module_measure");
    ck_assert_ptr_nonnull(measure);
    ck_assert_uint_eq(measure(), want);
    dlclose(h);
    /* The first load's own allocations (the loader's) stay. */
    if (i == 0) before = mallinfo2().uordblks;
  }
  size_t after = mallinfo2().uordblks;
  ck_assert_msg(after < before + 100 * 100,
                "the heap grew by %zu bytes over 100 loads", after - before);
}
END_TEST

int main(void) {
  Suite *s = suite_create("table");
  TCase *tc = tcase_create("table");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, random_cells_stay_valid_and_within_their_limit);
  tcase_add_test(tc, random_tables_line_up);
  tcase_add_test(tc, an_unloaded_module_leaves_no_locale_behind);
  /* Each run in a process of its own (Check forks), so the locale is made
     by the threads. */
  tcase_add_loop_test(tc, the_first_measure_from_several_threads, 0, 20);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
