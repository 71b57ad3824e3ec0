/* Fibers: start, yield, resume, reuse, and a deep stack. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"

static char trace[64];
static size_t tlen;

static void note(char c) {
  if (tlen + 1 < sizeof trace) trace[tlen++] = c;
  trace[tlen] = '\0';
}

static void two_yields(void *arg) {
  char c = *(const char *)arg;
  ck_assert_ptr_nonnull(gm__fiber_current());
  note(c);
  gm__fiber_yield();
  note(c);
  gm__fiber_yield();
  note((char)(c - 'a' + 'A'));
}

START_TEST(fibers_interleave_where_they_yield) {
  tlen = 0;
  gm__fiber *a = gm__fiber_new(64 * 1024), *b = gm__fiber_new(64 * 1024);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_null(gm__fiber_current());
  char ca = 'a', cb = 'b';
  ck_assert_int_eq(gm__fiber_start(a, two_yields, &ca), 0);
  ck_assert_int_eq(gm__fiber_start(b, two_yields, &cb), 0);
  ck_assert_ptr_null(gm__fiber_current());
  ck_assert_int_eq(gm__fiber_resume(b), 0);
  ck_assert_int_eq(gm__fiber_resume(a), 0);
  ck_assert_int_eq(gm__fiber_resume(a), 1);
  ck_assert_int_eq(gm__fiber_resume(b), 1);
  ck_assert_str_eq(trace, "abbaAB");
  /* A finished fiber runs a new function. */
  tlen = 0;
  ck_assert_int_eq(gm__fiber_start(a, two_yields, &cb), 0);
  ck_assert_int_eq(gm__fiber_resume(a), 0);
  ck_assert_int_eq(gm__fiber_resume(a), 1);
  ck_assert_str_eq(trace, "bbB");
  gm__fiber_destroy(&a);
  gm__fiber_destroy(&b);
  ck_assert_ptr_null(a);
}
END_TEST

/* Uses about depth KiB of stack, yielding at the bottom. */
static unsigned deep(int depth) {
  volatile unsigned char buf[1024];
  memset((void *)buf, depth & 0xff, sizeof buf);
  if (depth == 0) {
    gm__fiber_yield();
    return buf[0];
  }
  return buf[1023] + deep(depth - 1);
}

static void deep_run(void *arg) {
  *(unsigned *)arg = deep(180);
}

START_TEST(deep_stack_survives_a_yield) {
  gm__fiber *f = gm__fiber_new(256 * 1024);
  unsigned sum = 0;
  ck_assert_int_eq(gm__fiber_start(f, deep_run, &sum), 0);
  ck_assert_int_eq(gm__fiber_resume(f), 1);
  unsigned want = 0;
  for (int d = 1; d <= 180; d++) want += (unsigned)(d & 0xff);
  ck_assert_uint_eq(sum, want);
  gm__fiber_destroy(&f);
}
END_TEST

/* Values the compiler keeps in callee-saved registers and floating point
   state survive switches to other fibers that clobber theirs. */
static void clobber(void *arg) {
  volatile double *out = arg;
  double x = 1.0;
  for (int i = 0; i < 50; i++) {
    x = x * 1.000001 + (double)i;
    gm__fiber_yield();
  }
  *out = x;
}

START_TEST(registers_survive_switches) {
  gm__fiber *a = gm__fiber_new(64 * 1024), *b = gm__fiber_new(64 * 1024);
  volatile double ra = 0, rb = 0;
  gm__fiber_start(a, clobber, (void *)&ra);
  gm__fiber_start(b, clobber, (void *)&rb);
  long sum = 0;
  for (long i = 0; i < 50; i++) {
    sum += i * 3;
    gm__fiber_resume(a);
    sum -= i;
    gm__fiber_resume(b);
  }
  double want = 1.0;
  for (int i = 0; i < 50; i++) want = want * 1.000001 + (double)i;
  ck_assert(ra == want && rb == want);
  ck_assert_int_eq(sum, 2450);
  gm__fiber_destroy(&a);
  gm__fiber_destroy(&b);
}
END_TEST

static void count_to_three(void *arg) {
  int *n = arg;
  for (int i = 0; i < 3; i++) {
    (*n)++;
    gm__fiber_yield();
  }
}

START_TEST(many_fibers_round_robin) {
  enum { N = 200 };
  gm__fiber *f[N];
  int n[N] = {0};
  for (int i = 0; i < N; i++) {
    f[i] = gm__fiber_new(32 * 1024);
    ck_assert_ptr_nonnull(f[i]);
    ck_assert_int_eq(gm__fiber_start(f[i], count_to_three, &n[i]), 0);
  }
  int finished = 0;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < N; i++) finished += gm__fiber_resume(f[i]);
  ck_assert_int_eq(finished, N);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(n[i], 3);
    gm__fiber_destroy(&f[i]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("fiber");
  TCase *tc = tcase_create("fiber");
  tcase_add_test(tc, fibers_interleave_where_they_yield);
  tcase_add_test(tc, deep_stack_survives_a_yield);
  tcase_add_test(tc, many_fibers_round_robin);
  tcase_add_test(tc, registers_survive_switches);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
