/* The request arena: zeroed aligned memory, formatting, and what a reset
   keeps (bounded, whatever one request needed). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

START_TEST(allocations_are_zeroed_and_aligned) {
  gm__arena *a = gm__arena_new();
  for (size_t n = 1; n < 20000; n = n * 3 + 1) {
    unsigned char *p = gm__arena_alloc(a, n);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    for (size_t i = 0; i < n; i++) ck_assert_uint_eq(p[i], 0);
    memset(p, 0xab, n);
  }
  gm__arena_reset(a);
  unsigned char *p = gm__arena_alloc(a, 4096);
  for (size_t i = 0; i < 4096; i++) ck_assert_uint_eq(p[i], 0);
  gm__arena_destroy(&a);
  ck_assert_ptr_null(a);
}
END_TEST

START_TEST(sprintf_fits_and_overflows) {
  gm__arena *a = gm__arena_new();
  ck_assert_str_eq(gm__arena_sprintf(a, "%s:%d", "gm", 42), "gm:42");
  /* Longer than a block: formatted into a block of its own. */
  char *big = gm__arena_sprintf(a, "%20000d|", 7);
  ck_assert_uint_eq(strlen(big), 20001);
  ck_assert_int_eq(big[19999], '7');
  /* The head block's space after a failed fit is still usable. */
  char *s = gm__arena_sprintf(a, "%s", "after");
  ck_assert_str_eq(s, "after");
  ck_assert_str_eq(gm__arena_strndup(a, "abcdef", 3), "abc");
  gm__arena_destroy(&a);
}
END_TEST

/* A request that needed megabytes does not keep them: after reset the
   arena holds at most its first block and 64 KiB of spares. */
START_TEST(reset_bounds_what_is_kept) {
  gm__arena *a = gm__arena_new();
  size_t start = gm__arena_held(a);
  gm__arena_alloc(a, 100);
  gm__arena_alloc(a, 8 << 20); /* a big request body */
  for (int i = 0; i < 100; i++) gm__arena_alloc(a, 3000);
  ck_assert_uint_gt(gm__arena_held(a), 8u << 20);
  gm__arena_reset(a);
  ck_assert_uint_le(gm__arena_held(a), start + 64 * 1024);
  /* The same when the big block is the only other one (it sits last). */
  gm__arena_alloc(a, 8 << 20);
  gm__arena_reset(a);
  ck_assert_uint_le(gm__arena_held(a), start + 64 * 1024);
  /* Steady small requests reuse the spares: the holding stays put. */
  for (int i = 0; i < 1000; i++) {
    for (int k = 0; k < 6; k++) gm__arena_alloc(a, 3000);
    gm__arena_reset(a);
  }
  ck_assert_uint_le(gm__arena_held(a), start + 64 * 1024);
  gm__arena_destroy(&a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("arena");
  TCase *tc = tcase_create("arena");
  tcase_add_test(tc, allocations_are_zeroed_and_aligned);
  tcase_add_test(tc, sprintf_fits_and_overflows);
  tcase_add_test(tc, reset_bounds_what_is_kept);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
