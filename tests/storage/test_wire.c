/* Text on the wire: strict UTF-8, NUL refused in requests, replies and
   events repaired (core/utf8.c, core/wire.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "greenmarket.pb-c.h"
#include "utf8.h"
#include "wire.h"

START_TEST(utf8_accepts_what_strict_decoders_accept) {
  static const char *good[] = {"",
                               "plain",
                               "é",
                               "碳排放",
                               "\xF0\x9F\x8C\xB1",
                               "\xEF\xBF\xBD",
                               "\xF4\x8F\xBF\xBF"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    ck_assert_msg(gm__utf8_valid(good[i], strlen(good[i])), "good %zu", i);
  static const char *bad[] = {"\xff",
                              "\xfe\xff",
                              "\xC0\xAF", /* overlong '/' */
                              "\xE0\x80\xAF",
                              "\xED\xA0\x80",     /* surrogate D800 */
                              "\xF4\x90\x80\x80", /* above U+10FFFF */
                              "\xC3",
                              "a\xE2\x82",
                              "\x80", /* cut, stray */
                              "\xF5\x80\x80\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(!gm__utf8_valid(bad[i], strlen(bad[i])), "bad %zu", i);
  /* A long ASCII run then a bad byte: the fast path stops at it. */
  char run[40];
  memset(run, 'a', sizeof run);
  run[37] = '\xff';
  ck_assert_uint_eq(gm__utf8_valid_prefix(run, sizeof run), 37);
}
END_TEST

START_TEST(utf8_repair_and_cut) {
  char out[64];
  size_t n = gm__utf8_repair(
      "a\xff"
      "b\xC3",
      4, out);
  ck_assert_uint_eq(n, 8);
  ck_assert_mem_eq(out,
                   "a\xEF\xBF\xBD"
                   "b\xEF\xBF\xBD",
                   8);
  ck_assert(gm__utf8_valid(out, n));
  /* "a" + "é" x 3 cut at 4 bytes: not inside the second é. */
  const char *s = "a\xC3\xA9\xC3\xA9\xC3\xA9";
  ck_assert_uint_eq(gm__utf8_cut(s, 7, 4), 3);
  ck_assert_uint_eq(gm__utf8_cut(s, 7, 5), 5);
  ck_assert_uint_eq(gm__utf8_cut(s, 7, 99), 7);
}
END_TEST

static size_t pack_request(const char *market, const char *key, size_t keylen,
                           uint8_t *buf) {
  Gm__Request r = GM__REQUEST__INIT;
  r.version = 1;
  r.market = (char *)market;
  r.method = "ping";
  /* protobuf-c packs strings with strlen: build the key field by hand. */
  size_t n = gm__request__pack(&r, buf);
  buf[n++] = (5 << 3) | 2;
  buf[n++] = (uint8_t)keylen;
  memcpy(buf + n, key, keylen);
  return n + keylen;
}

START_TEST(a_nul_in_a_text_field_is_named) {
  uint8_t buf[128];
  char why[256];
  size_t n = pack_request("gm", "k\0A", 3, buf);
  ck_assert_int_eq(
      gm__wire_check(&gm__request__descriptor, buf, n, why, sizeof why), -1);
  ck_assert_msg(strstr(why, "'idempotency_key'") && strstr(why, "NUL") &&
                    strstr(why, "byte 2"),
                "%s", why);
  n = pack_request("gm", "k-A", 3, buf);
  ck_assert_int_eq(
      gm__wire_check(&gm__request__descriptor, buf, n, why, sizeof why), 0);
}
END_TEST

START_TEST(invalid_utf8_is_named_never_echoed) {
  uint8_t buf[128];
  char why[256];
  size_t n = pack_request("\xff\xfe", "k", 1, buf);
  ck_assert_int_eq(
      gm__wire_check(&gm__request__descriptor, buf, n, why, sizeof why), -1);
  ck_assert_msg(strstr(why, "'market'") && strstr(why, "UTF-8"), "%s", why);
  ck_assert(gm__utf8_valid(why, strlen(why)));
  ck_assert_ptr_null(strchr(why, '\xff'));
}
END_TEST

START_TEST(nested_fields_have_dotted_paths) {
  /* MarketsReply.markets[0].methods[0].name = "\xff" */
  Gm__MethodInfo mi = GM__METHOD_INFO__INIT;
  mi.name = "\xff";
  Gm__MethodInfo *mis[] = {&mi};
  Gm__MarketInfo m = GM__MARKET_INFO__INIT;
  m.name = "carbon";
  m.n_methods = 1;
  m.methods = mis;
  Gm__MarketInfo *ms[] = {&m};
  Gm__MarketsReply r = GM__MARKETS_REPLY__INIT;
  r.n_markets = 1;
  r.markets = ms;
  uint8_t buf[256];
  size_t n = gm__markets_reply__pack(&r, buf);
  char why[256];
  ck_assert_int_eq(
      gm__wire_check(&gm__markets_reply__descriptor, buf, n, why, sizeof why),
      -1);
  ck_assert_msg(strstr(why, "'markets.methods.name'"), "%s", why);

  /* Repair: a copy that decodes, the bad byte now U+FFFD, the rest kept. */
  gm__arena *a = gm__arena_new();
  size_t len;
  const uint8_t *fixed =
      gm__wire_repair(a, &gm__markets_reply__descriptor, buf, n, &len);
  ck_assert_ptr_nonnull(fixed);
  ck_assert_ptr_ne(fixed, buf);
  ck_assert_int_eq(gm__wire_check(&gm__markets_reply__descriptor, fixed, len,
                                  why, sizeof why),
                   0);
  Gm__MarketsReply *back = gm__markets_reply__unpack(NULL, len, fixed);
  ck_assert_ptr_nonnull(back);
  ck_assert_str_eq(back->markets[0]->name, "carbon");
  ck_assert_str_eq(back->markets[0]->methods[0]->name, "\xEF\xBF\xBD");
  gm__markets_reply__free_unpacked(back, NULL);
  /* Nothing to repair: the same bytes, no copy. */
  mi.name = "order.place";
  n = gm__markets_reply__pack(&r, buf);
  ck_assert_ptr_eq(
      gm__wire_repair(a, &gm__markets_reply__descriptor, buf, n, &len), buf);
  gm__arena_destroy(&a);
}
END_TEST

START_TEST(malformed_and_deep_bytes_are_refused) {
  char why[256];
  /* A length running past the end. */
  const uint8_t trunc[] = {(3 << 3) | 2, 50, 'a'};
  ck_assert_int_eq(gm__wire_check(&gm__request__descriptor, trunc, sizeof trunc,
                                  why, sizeof why),
                   -1);
  ck_assert_ptr_nonnull(strstr(why, "not a valid"));
  /* Field number 0, and a group. */
  const uint8_t zero[] = {0x00, 0x01};
  ck_assert_int_eq(gm__wire_check(&gm__request__descriptor, zero, sizeof zero,
                                  why, sizeof why),
                   -1);
  const uint8_t group[] = {(9 << 3) | 3};
  ck_assert_int_eq(gm__wire_check(&gm__request__descriptor, group, sizeof group,
                                  why, sizeof why),
                   -1);
  /* No bytes at all: the empty message, valid. */
  ck_assert_int_eq(
      gm__wire_check(&gm__markets_reply__descriptor, NULL, 0, why, sizeof why),
      0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("wire");
  TCase *tc = tcase_create("utf8 and wire");
  tcase_add_test(tc, utf8_accepts_what_strict_decoders_accept);
  tcase_add_test(tc, utf8_repair_and_cut);
  tcase_add_test(tc, a_nul_in_a_text_field_is_named);
  tcase_add_test(tc, invalid_utf8_is_named_never_echoed);
  tcase_add_test(tc, nested_fields_have_dotted_paths);
  tcase_add_test(tc, malformed_and_deep_bytes_are_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
