#ifndef GM_TEST_CHECK_LOOP_H
#define GM_TEST_CHECK_LOOP_H

/* Assertions for loops of many thousand checks. Check's ck_assert_* record
   every passing assertion's file and line for the runner (one write(2) to
   its result file each): 150,000 iterations of four cost 5 to 30 s of wall
   time on a loaded machine, more under ASan. These fail as ck_assert_*
   would (ck_abort_msg at this file and line, the same message) and cost
   nothing when they pass; outside hot loops keep ck_assert_*, whose passing
   marks tell where a test that crashed or timed out last got to. */

#include <check.h>
#include <stdint.h>

#define gm_check_msg(expr, ...)             \
  do {                                      \
    if (!(expr)) ck_abort_msg(__VA_ARGS__); \
  } while (0)

#define gm_check(expr) gm_check_msg(expr, "Assertion '%s' failed", #expr)

#define gm_check_int_eq(x, y)                                                 \
  do {                                                                        \
    intmax_t gm_check_x_ = (x), gm_check_y_ = (y);                            \
    gm_check_msg(gm_check_x_ == gm_check_y_,                                  \
                 "Assertion '%s == %s' failed: %s == %jd, %s == %jd", #x, #y, \
                 #x, gm_check_x_, #y, gm_check_y_);                           \
  } while (0)

#endif
