/*
 * greenmarket/table.h on its own: the edges of gm_table_print (no rows, one
 * column, NULL cells and titles) and running out of memory, which the
 * allocation wrappers below make happen at the n-th call (the header is
 * inline: its calls in this file go through them).
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0: never; n: the n-th allocation from now fails (and only it). */
static int fail_at;
static int fails(void) {
  return fail_at > 0 && --fail_at == 0;
}
static void *t_malloc(size_t n) {
  return fails() ? NULL : malloc(n);
}
static void *t_calloc(size_t n, size_t s) {
  return fails() ? NULL : calloc(n, s);
}
static void *t_realloc(void *p, size_t n) {
  return fails() ? NULL : realloc(p, n);
}
static char *t_strdup(const char *s) {
  return fails() ? NULL : strdup(s);
}
#define malloc t_malloc
#define calloc t_calloc
#define realloc t_realloc
#define strdup t_strdup
#include <greenmarket/table.h>
#undef malloc
#undef calloc
#undef realloc
#undef strdup

/* What print writes, malloc'd. */
static char *printed(gm_table *t) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  gm_table_print(t, f);
  fclose(f);
  return buf;
}

START_TEST(no_rows_prints_the_header) {
  gm_table t = {2, (const char *const[]){"ID", "NAME"}, 0, NULL, 0, 0};
  char *out = printed(&t);
  ck_assert_str_eq(out, "ID  NAME\n");
  free(out);
  ck_assert_ptr_null(t.cells);
}
END_TEST

START_TEST(one_column_and_null_texts) {
  gm_table t = {1, (const char *const[]){NULL}, 0, NULL, 0, 0};
  gm_table_row(&t, "a\tb");
  gm_table_row(&t, (const char *)NULL);
  char *out = printed(&t);
  /* An empty title, then the rows: the last (only) column is not padded. */
  ck_assert_str_eq(out, "\na\\tb\n\n");
  free(out);
  gm_table r = {2, (const char *const[]){"N", "X"}, 1, NULL, 0, 0};
  gm_table_row(&r, "7", "x");
  gm_table_row(&r, "123", (const char *)NULL);
  out = printed(&r);
  ck_assert_str_eq(out, "  N  X\n  7  x\n123  \n");
  free(out);
}
END_TEST

/* A row whose copy runs out of memory is left out whole, never shown with
   a blank cell in place of a value; the others are shown. */
START_TEST(a_row_out_of_memory_is_left_out_whole) {
  gm_table t = {3, (const char *const[]){"ID", "AMOUNT", "NOTE"}, 0, NULL, 0,
                0};
  gm_table_row(&t, "1", "10.00", "one");
  /* The row's texts array, its first and second copies: the second fails. */
  fail_at = 3;
  gm_table_row(&t, "2", "20.00", "two");
  ck_assert_int_eq(fail_at, 0);
  gm_table_row(&t, "3", "30.00", "three");
  ck_assert_uint_eq(t.rows, 2);
  char *out = printed(&t);
  ck_assert_str_eq(out,
                   "ID  AMOUNT  NOTE\n1   10.00   one\n3   30.00   three\n");
  free(out);
}
END_TEST

/* Print out of memory says so, shows nothing else and frees the rows. */
START_TEST(print_out_of_memory_says_so) {
  for (int at = 1; at <= 6; at++) {
    gm_table t = {2, (const char *const[]){"A", "B"}, 0, NULL, 0, 0};
    gm_table_row(&t, "x", "y");
    fail_at = at;
    char *out = printed(&t);
    fail_at = 0;
    ck_assert_msg(!strcmp(out, "A  B\nx  y\n") ||
                      !strcmp(out, "(out of memory: the table is not shown)\n"),
                  "failure at allocation %d: %s", at, out);
    ck_assert_ptr_null(t.cells);
    ck_assert_uint_eq(t.rows, 0);
    free(out);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("sdk table");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, no_rows_prints_the_header);
  tcase_add_test(tc, one_column_and_null_texts);
  tcase_add_test(tc, a_row_out_of_memory_is_left_out_whole);
  tcase_add_test(tc, print_out_of_memory_says_so);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
