/* include/greenmarket/text.h: the markets' text rule and safe echo. */
#include <check.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "greenmarket/text.h"

#include "check_loop.h"

/* Encodes cp as UTF-8 into out (NUL-terminated); its length. */
static size_t enc(long cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  size_t n;
  if (cp < 0x80)
    o[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800)
    o[0] = (unsigned char)(0xc0 | cp >> 6),
    o[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    o[0] = (unsigned char)(0xe0 | cp >> 12),
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
    o[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
  else
    o[0] = (unsigned char)(0xf0 | cp >> 18),
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
    o[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
  out[n] = '\0';
  return n;
}

/* The decoder takes every code point's UTF-8, and agrees with glibc's
   C.UTF-8 mbrtowc on every pair of a lead byte and a second byte, but past
   U+10FFFF. */
START_TEST(decoding_agrees_with_the_c_library) {
  ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
  char s[8];
  /* Every code point of the BMP, every 7th above (the 4-byte form's
     arithmetic is the same for all of them). */
  for (long cp = 1; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 7) {
    size_t len = enc(cp, s), n;
    long got = gm_utf8_decode((const unsigned char *)s, len, &n);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      gm_check_int_eq(got, -1);
      continue;
    }
    gm_check_int_eq(got, cp);
    gm_check_int_eq(n, len);
  }
  /* Two-byte prefixes of every lead byte with every continuation, and the
     rest filled with a valid continuation: mbrtowc says which are UTF-8. */
  for (int a = 0x80; a < 0x100; a++)
    for (int b = 0; b < 0x100; b++) {
      unsigned char u[4] = {(unsigned char)a, (unsigned char)b, 0x80, 0x80};
      size_t n;
      long got = gm_utf8_decode(u, 4, &n);
      mbstate_t st;
      memset(&st, 0, sizeof st);
      wchar_t w;
      size_t r = mbrtowc(&w, (const char *)u, 4, &st);
      /* glibc takes F4 90.. and up (past U+10FFFF), RFC 3629 does not. */
      if (r == (size_t)-1 || r == (size_t)-2 || (long)w > 0x10ffff) {
        gm_check_msg(got == -1, "%02x %02x: %ld", a, b, got);
      } else {
        gm_check_msg(got == (long)w && n == r, "%02x %02x", a, b);
      }
    }
  /* Truncated sequences are refused, not read past their end. */
  size_t n;
  ck_assert_int_eq(gm_utf8_decode((const unsigned char *)"\xe4\xb8", 2, &n),
                   -1);
  ck_assert_int_eq(gm_utf8_decode((const unsigned char *)"\xf0\x9f\x98", 3, &n),
                   -1);
  ck_assert_int_eq(gm_utf8_decode((const unsigned char *)"", 0, &n), -1);
}
END_TEST

static const char *why_of(const char *s, unsigned flags) {
  static char why[200];
  why[0] = '\0';
  return gm_text_check(s, flags, why, sizeof why) == 0 ? NULL : why;
}

START_TEST(plain_text_in_any_script_passes) {
  const char *ok[] = {"",
                      "Allowances 2025",
                      "全国碳排放权交易市场",
                      "Zürich Grün AG",
                      "عربي",
                      "😀 emoji",
                      "a\xc2\xa0"
                      "b"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    ck_assert_msg(why_of(ok[i], 0) == NULL, "%s: %s", ok[i], why_of(ok[i], 0));
  ck_assert_ptr_null(why_of("two\nlines\tand a tab", GM_TEXT_LINES));
  ck_assert_ptr_null(why_of(NULL, 0));
}
END_TEST

START_TEST(controls_bidi_and_bad_bytes_are_refused_with_where) {
  ck_assert_str_eq(why_of("e\x1b[2J", 0),
                   "contains the control character U+001B at byte 2; write "
                   "plain text on one line");
  ck_assert_str_eq(why_of("a\nb", 0),
                   "contains the control character U+000A at byte 2; write "
                   "plain text on one line");
  ck_assert_str_eq(why_of("a\rb", GM_TEXT_LINES),
                   "contains the control character U+000D at byte 2; write "
                   "plain text (line breaks and tabs are fine)");
  ck_assert_str_eq(why_of("ok\xe2\x80\xae"
                          "evil",
                          0),
                   "contains the bidi control character U+202E at byte 3; "
                   "remove it: it changes how the text shows");
  ck_assert_str_eq(why_of("x\xc2\x85", 0),
                   "contains the control character U+0085 at byte 2; write "
                   "plain text on one line");
  ck_assert_str_eq(why_of("a\xe2\x80\xa8", GM_TEXT_LINES),
                   "contains the control character U+2028 at byte 2; write "
                   "plain text (line breaks and tabs are fine)");
  ck_assert_str_eq(why_of("ab\xff", 0),
                   "is not valid UTF-8 (at byte 3); send UTF-8");
  ck_assert_str_eq(why_of("\xc0\xaf", 0),
                   "is not valid UTF-8 (at byte 1); send UTF-8");
  ck_assert_str_eq(why_of("\xed\xa0\x80", 0),
                   "is not valid UTF-8 (at byte 1); send UTF-8");
  /* Every character of the Basic Multilingual Plane (where every control,
     bidi mark and space is), and every 61st above it, alone: refused
     exactly when gm_text_control or gm_text_blank names it. */
  char s[8];
  for (long cp = 1; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 61) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    enc(cp, s);
    int refused = why_of(s, 0) != NULL;
    gm_check_msg(refused == (gm_text_control(cp) || gm_text_blank(cp)),
                 "U+%04lX", cp);
  }
}
END_TEST

START_TEST(only_spaces_is_refused) {
  const char *blank[] = {" ",         "   ",          "\xe3\x80\x80",
                         "\xc2\xa0 ", "\xe2\x80\x8b", "\xef\xbb\xbf"};
  for (size_t i = 0; i < sizeof blank / sizeof *blank; i++)
    ck_assert_str_eq(why_of(blank[i], 0),
                     "is only spaces; write some text or leave it empty");
  ck_assert_str_eq(why_of(" \n\t", GM_TEXT_LINES),
                   "is only spaces; write some text or leave it empty");
}
END_TEST

START_TEST(shown_text_is_safe_and_cut_on_a_character) {
  char out[96];
  ck_assert_str_eq(gm_text_shown("CEA-2025", 40, out, sizeof out), "CEA-2025");
  ck_assert_str_eq(gm_text_shown("a\x1b[2J\n\xff", 40, out, sizeof out),
                   "a?[2J??");
  ck_assert_str_eq(gm_text_shown("x\xe2\x80\xaey", 40, out, sizeof out), "x?y");
  ck_assert_str_eq(gm_text_shown(NULL, 40, out, sizeof out), "");
  /* 40 bytes pass whole; 41 are cut to at most 32 and counted. */
  char big[64];
  memset(big, 'a', 40);
  big[40] = '\0';
  ck_assert_str_eq(gm_text_shown(big, 40, out, sizeof out), big);
  big[40] = 'b', big[41] = '\0';
  ck_assert_str_eq(gm_text_shown(big, 40, out, sizeof out),
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... (41 bytes)");
  /* Three-byte characters are never split: 10 of them is 30 bytes, the
     eleventh would pass 32. */
  char cjk[64] = "";
  for (int i = 0; i < 15; i++) strcat(cjk, "\xe7\xa2\xb3");
  gm_text_shown(cjk, 40, out, sizeof out);
  ck_assert_uint_eq(strlen(out), 30 + strlen("... (45 bytes)"));
  ck_assert_str_eq(out + 30, "... (45 bytes)");
  /* A small buffer is never overrun. */
  char tiny[6];
  gm_text_shown("abcdefghij", 40, tiny, sizeof tiny);
  ck_assert_uint_lt(strlen(tiny), sizeof tiny);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sdk text");
  TCase *tc = tcase_create("text");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, decoding_agrees_with_the_c_library);
  tcase_add_test(tc, plain_text_in_any_script_passes);
  tcase_add_test(tc, controls_bidi_and_bad_bytes_are_refused_with_where);
  tcase_add_test(tc, only_spaces_is_refused);
  tcase_add_test(tc, shown_text_is_safe_and_cut_on_a_character);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
