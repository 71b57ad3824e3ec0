/* greenmarket/uscc.h: the GB 32100-2015 check of a unified social credit
   code, on codes published on business licences and on the same codes
   with one character wrong. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/uscc.h>

/* Codes as published in the national enterprise credit information
   publicity system: Huawei Technologies Co., Ltd., Shenzhen Tencent
   Computer Systems Co., Ltd., Alibaba (China) Co., Ltd., Xiaomi Technology
   Co., Ltd., China Petroleum & Chemical Corporation, two more enterprises,
   and a government body (registration authority 1, an organ of the
   state). */
static const char *const published[] = {
    "914403001922038216", "9144030071526726XG", "91330100799655058B",
    "91110108551385082Q", "91110000710926094P", "91310000132200821H",
    "91440300708461136T", "11100000000013127D",
};

static int check(const char *code, char *why, size_t n) {
  return gm_uscc_check(code, strlen(code), why, n);
}

START_TEST(published_codes_pass) {
  char why[256] = "x";
  for (size_t i = 0; i < sizeof published / sizeof *published; i++) {
    ck_assert_msg(check(published[i], why, sizeof why) == 0, "%s: %s",
                  published[i], why);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(gm_uscc_check_char(published[i]), published[i][17]);
  }
}
END_TEST

/* Every other check character, in place of the right one, is refused and
   the message names the one the code calls for. */
START_TEST(every_wrong_check_character_fails) {
  static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  char why[256];
  for (size_t i = 0; i < sizeof published / sizeof *published; i++) {
    char code[19];
    memcpy(code, published[i], 19);
    int refused = 0;
    for (const char *a = alphabet; *a; a++) {
      code[17] = *a;
      if (*a == published[i][17]) continue;
      ck_assert_int_eq(check(code, why, sizeof why), -1);
      char want[8];
      snprintf(want, sizeof want, "'%c'", published[i][17]);
      ck_assert_msg(strstr(why, "character 18") && strstr(why, want), "%s",
                    why);
      refused++;
    }
    ck_assert_int_eq(refused, 30);
  }
}
END_TEST

/* One character changed anywhere in the first 17 breaks the check: the
   weights are all prime to 31. */
START_TEST(a_changed_character_fails) {
  char why[256];
  char code[19];
  memcpy(code, "914403001922038216", 19);
  code[8] = '3'; /* 1 -> 3 in the organisation code */
  ck_assert_int_eq(check(code, why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "check character"));
  memcpy(code, "914403001922038216", 19);
  char t = code[9]; /* two neighbours swapped */
  code[9] = code[10];
  code[10] = t;
  ck_assert_int_eq(check(code, why, sizeof why), -1);
}
END_TEST

START_TEST(malformed_codes_say_what_is_wrong) {
  char why[256];
  ck_assert_int_eq(check("91440300192203821", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "has 17"));
  ck_assert_int_eq(check("9144030071526726XGX", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "has 19"));
  ck_assert_int_eq(check("", why, sizeof why), -1);
  ck_assert_int_eq(check("9144030071526726xg", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "character 17"));
  ck_assert_ptr_nonnull(strstr(why, "capital"));
  ck_assert_int_eq(check("91440300O92203821X", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "character 9 is 'O'"));
  ck_assert_int_eq(check("9144A3001922038216", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "administrative division"));
  ck_assert_int_eq(check("91440300-922038216", why, sizeof why), -1);
  ck_assert_ptr_nonnull(strstr(why, "character 9 is not"));
  /* A byte outside ASCII is never quoted back (the reply stays UTF-8). */
  ck_assert_int_eq(check("9144030019220382\xc3\xa9", why, sizeof why), -1);
  ck_assert_ptr_null(strchr(why, '\xc3'));
  /* No room for the reason, or none asked for: the answer is the same. */
  ck_assert_int_eq(gm_uscc_check("914403001922038217", 18, NULL, 0), -1);
  ck_assert_int_eq(gm_uscc_check("914403001922038216", 18, NULL, 0), 0);
  char tiny[4];
  ck_assert_int_eq(gm_uscc_check("91440300192203821", 17, tiny, sizeof tiny),
                   -1);
  ck_assert_uint_eq(strlen(tiny), 3);
}
END_TEST

int main(void) {
  Suite *s = suite_create("uscc");
  TCase *tc = tcase_create("uscc");
  tcase_add_test(tc, published_codes_pass);
  tcase_add_test(tc, every_wrong_check_character_fails);
  tcase_add_test(tc, a_changed_character_fails);
  tcase_add_test(tc, malformed_codes_say_what_is_wrong);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
