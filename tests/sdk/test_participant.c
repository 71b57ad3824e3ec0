/* include/greenmarket/participant.h: the participant id rule. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "greenmarket/participant.h"

START_TEST(ids_the_core_registers_pass) {
  ck_assert(gm_participant_id_valid("alice"));
  ck_assert(gm_participant_id_valid("A-1_b.c"));
  ck_assert(gm_participant_id_valid("0"));
  char max[GM_PARTICIPANT_ID_MAX + 1];
  memset(max, 'x', GM_PARTICIPANT_ID_MAX);
  max[GM_PARTICIPANT_ID_MAX] = 0;
  ck_assert(gm_participant_id_valid(max));
}
END_TEST

START_TEST(others_are_refused) {
  ck_assert(!gm_participant_id_valid(NULL));
  ck_assert(!gm_participant_id_valid(""));
  const char *bad[] = {
      "x#y{z}", "x:y",       "a b",     "a|b",   "d\xc3\xa4v\xc3\xa9",
      "tab\t",  "new\nline", "\x1b[2J", "{tag}", "a/b"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(!gm_participant_id_valid(bad[i]), "%s", bad[i]);
  char over[GM_PARTICIPANT_ID_MAX + 2];
  memset(over, 'x', GM_PARTICIPANT_ID_MAX + 1);
  over[GM_PARTICIPANT_ID_MAX + 1] = 0;
  ck_assert(!gm_participant_id_valid(over));
  /* Every byte outside the rule, alone. */
  for (int c = 1; c < 256; c++) {
    char s[2] = {(char)c, 0};
    int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    ck_assert_int_eq(gm_participant_id_valid(s), want);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("participant");
  TCase *tc = tcase_create("rule");
  tcase_add_test(tc, ids_the_core_registers_pass);
  tcase_add_test(tc, others_are_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
