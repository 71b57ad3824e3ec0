/* The procurement rules without Redis: placeholder filled below. */
#include <check.h>
#include <stdlib.h>

#include "rules.h"

START_TEST(yuan_round_trip) {
  char buf[32];
  ck_assert_str_eq(pr_yuan(123456, buf), "1234.56");
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement rules");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, yuan_round_trip);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
