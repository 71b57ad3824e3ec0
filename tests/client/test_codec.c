/*
 * The descriptor-driven codec of `gm`: key=value and JSON in, JSON and
 * tables out, with clear errors.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/table.h>

#include "codec.h"
#include "codec_legacy.pb-c.h"
#include "codec_test.pb-c.h"
#include "greenmarket.pb-c.h"

#define ARGS(...) ((char *[]){__VA_ARGS__})

/* Builds an Everything from words; fails the test with the codec's error. */
static Gmtest__Everything *build(int argc, char **argv) {
  char *err = NULL;
  ProtobufCMessage *m =
      gm_codec_from_args(&gmtest__everything__descriptor, argc, argv, &err);
  ck_assert_msg(m != NULL, "codec error: %s", err ? err : "(none)");
  ck_assert_ptr_null(err);
  return (Gmtest__Everything *)m;
}

/* The codec's error for words that must be refused. */
static char *refuse(const ProtobufCMessageDescriptor *d, int argc,
                    char **argv) {
  char *err = NULL;
  ProtobufCMessage *m = gm_codec_from_args(d, argc, argv, &err);
  ck_assert_msg(m == NULL, "accepted what must be refused");
  ck_assert_ptr_nonnull(err);
  return err;
}

static json_t *to_json(const Gmtest__Everything *e) {
  return gm_codec_to_json(&e->base);
}

START_TEST(every_scalar_round_trips) {
  char **w =
      ARGS("i32=-2147483648", "i64=-9223372036854775808", "u32=4294967295",
           "u64=18446744073709551615", "s32=-7", "s64=-9007199254740993",
           "f32=4000000000", "f64=12345678901234567890", "sf32=-5", "sf64=-6",
           "fl=1.5", "db=-2.25", "flag=true", "text=héllo wörld", "blob=AAH/",
           "side=SIDE_SELL");
  Gmtest__Everything *e = build(16, w);
  ck_assert_int_eq(e->i32, INT32_MIN);
  ck_assert(e->i64 == INT64_MIN);
  ck_assert_uint_eq(e->u32, UINT32_MAX);
  ck_assert(e->u64 == UINT64_MAX);
  ck_assert_int_eq(e->s32, -7);
  ck_assert(e->s64 ==
            -9007199254740993LL); /* past 2^53: no double on the way */
  ck_assert_uint_eq(e->f32, 4000000000u);
  ck_assert(e->f64 == 12345678901234567890ull);
  ck_assert_int_eq(e->sf32, -5);
  ck_assert(e->sf64 == -6);
  ck_assert(e->fl == 1.5f);
  ck_assert(e->db == -2.25);
  ck_assert(e->flag);
  ck_assert_str_eq(e->text, "héllo wörld");
  ck_assert_uint_eq(e->blob.len, 3);
  ck_assert(e->blob.data[0] == 0 && e->blob.data[1] == 1 &&
            e->blob.data[2] == 0xff);
  ck_assert_int_eq(e->side, GMTEST__SIDE__SIDE_SELL);

  json_t *j = to_json(e);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "i32")), INT32_MIN);
  ck_assert(json_integer_value(json_object_get(j, "i64")) == INT64_MIN);
  ck_assert(json_integer_value(json_object_get(j, "u32")) == UINT32_MAX);
  /* Past INT64_MAX a JSON integer cannot hold it: a string keeps it exact. */
  ck_assert_str_eq(json_string_value(json_object_get(j, "u64")),
                   "18446744073709551615");
  ck_assert(json_integer_value(json_object_get(j, "s64")) ==
            -9007199254740993LL);
  ck_assert_str_eq(json_string_value(json_object_get(j, "f64")),
                   "12345678901234567890");
  ck_assert(json_real_value(json_object_get(j, "fl")) == 1.5);
  ck_assert(json_real_value(json_object_get(j, "db")) == -2.25);
  ck_assert(json_is_true(json_object_get(j, "flag")));
  ck_assert_str_eq(json_string_value(json_object_get(j, "text")),
                   "héllo wörld");
  ck_assert_str_eq(json_string_value(json_object_get(j, "blob")), "AAH/");
  ck_assert_str_eq(json_string_value(json_object_get(j, "side")), "SIDE_SELL");

  /* And back: JSON out is JSON in, to the same bytes on the wire. */
  char *err = NULL;
  ProtobufCMessage *again =
      gm_codec_from_value(&gmtest__everything__descriptor, j, &err);
  ck_assert_msg(again != NULL, "%s", err ? err : "");
  size_t n1 = protobuf_c_message_get_packed_size(&e->base);
  size_t n2 = protobuf_c_message_get_packed_size(again);
  ck_assert_uint_eq(n1, n2);
  uint8_t *b1 = malloc(n1), *b2 = malloc(n2);
  protobuf_c_message_pack(&e->base, b1);
  protobuf_c_message_pack(again, b2);
  ck_assert_int_eq(memcmp(b1, b2, n1), 0);
  free(b1);
  free(b2);
  protobuf_c_message_free_unpacked(again, NULL);
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}
END_TEST

START_TEST(zero_values_are_shown) {
  Gmtest__Everything *e = build(0, NULL);
  json_t *j = to_json(e);
  ck_assert(json_integer_value(json_object_get(j, "i64")) == 0);
  ck_assert(json_is_false(json_object_get(j, "flag")));
  ck_assert_str_eq(json_string_value(json_object_get(j, "text")), "");
  ck_assert_str_eq(json_string_value(json_object_get(j, "side")),
                   "SIDE_UNSPECIFIED");
  ck_assert(json_is_array(json_object_get(j, "legs")));
  ck_assert_ptr_null(json_object_get(j, "inner"));   /* absent message */
  ck_assert_ptr_null(json_object_get(j, "account")); /* unset oneof */
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}
END_TEST

START_TEST(enums_by_name_short_name_or_number) {
  Gmtest__Everything *e =
      build(4, ARGS("side=buy", "sides=SIDE_SELL", "sides=2", "sides=Buy"));
  ck_assert_int_eq(e->side, GMTEST__SIDE__SIDE_BUY);
  ck_assert_uint_eq(e->n_sides, 3);
  ck_assert_int_eq(e->sides[0], GMTEST__SIDE__SIDE_SELL);
  ck_assert_int_eq(e->sides[1], GMTEST__SIDE__SIDE_SELL);
  ck_assert_int_eq(e->sides[2], GMTEST__SIDE__SIDE_BUY);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  char *err = refuse(&gmtest__everything__descriptor, 1, ARGS("side=hold"));
  ck_assert_msg(strstr(err, "'side'") && strstr(err, "SIDE_BUY|SIDE_SELL"),
                "%s", err);
  free(err);
  err = refuse(&gmtest__everything__descriptor, 1, ARGS("side=7"));
  ck_assert_msg(strstr(err, "\"7\" is not one of"), "%s", err);
  free(err);
}
END_TEST

START_TEST(nested_with_dotted_keys) {
  Gmtest__Everything *e =
      build(4, ARGS("inner.a=3", "inner.leg.symbol=CEA-2025",
                    "inner.leg.qty=100", "inner.leg.side=SIDE_BUY"));
  ck_assert_ptr_nonnull(e->inner);
  ck_assert_int_eq(e->inner->a, 3);
  ck_assert_ptr_nonnull(e->inner->leg);
  ck_assert_str_eq(e->inner->leg->symbol, "CEA-2025");
  ck_assert(e->inner->leg->qty == 100);
  json_t *j = to_json(e);
  json_t *leg = json_object_get(json_object_get(j, "inner"), "leg");
  ck_assert_str_eq(json_string_value(json_object_get(leg, "symbol")),
                   "CEA-2025");
  ck_assert_str_eq(json_string_value(json_object_get(leg, "side")), "SIDE_BUY");
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  char *err = refuse(&gmtest__everything__descriptor, 1, ARGS("i64.x=1"));
  ck_assert_msg(strstr(err, "'i64' is a int64, not a message"), "%s", err);
  free(err);
}
END_TEST

START_TEST(repeated_by_repeating_the_key_or_json) {
  Gmtest__Everything *e =
      build(7, ARGS("nums=1", "nums=-2", "tags=a", "tags=[\"b\",\"c\"]",
                    "legs.symbol=X", "legs.qty=1", "legs.symbol=Y"));
  ck_assert_uint_eq(e->n_nums, 2);
  ck_assert(e->nums[0] == 1 && e->nums[1] == -2);
  ck_assert_uint_eq(e->n_tags, 3);
  ck_assert_str_eq(e->tags[2], "c");
  /* Naming symbol again started a second leg. */
  ck_assert_uint_eq(e->n_legs, 2);
  ck_assert_str_eq(e->legs[0]->symbol, "X");
  ck_assert(e->legs[0]->qty == 1);
  ck_assert_str_eq(e->legs[1]->symbol, "Y");
  ck_assert(e->legs[1]->qty == 0);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  char *err = NULL;
  ProtobufCMessage *m = gm_codec_from_json(
      &gmtest__everything__descriptor,
      "{\"legs\":[{\"symbol\":\"A\",\"qty\":5},{\"symbol\":\"B\",\"side\":2}],"
      "\"nums\":[7,\"9007199254740993\"]}",
      &err);
  ck_assert_msg(m != NULL, "%s", err ? err : "");
  e = (Gmtest__Everything *)m;
  ck_assert_uint_eq(e->n_legs, 2);
  ck_assert(e->legs[0]->qty == 5);
  ck_assert_int_eq(e->legs[1]->side, GMTEST__SIDE__SIDE_SELL);
  ck_assert(e->nums[1] == 9007199254740993LL);
  protobuf_c_message_free_unpacked(m, NULL);

  err = refuse(&gmtest__everything__descriptor, 2, ARGS("i32=1", "i32=2"));
  ck_assert_msg(strstr(err, "'i32' is given twice"), "%s", err);
  free(err);
}
END_TEST

START_TEST(oneof_and_presence) {
  Gmtest__Everything *e = build(1, ARGS("account_no=42"));
  ck_assert_int_eq(e->target_case, GMTEST__EVERYTHING__TARGET_ACCOUNT_NO);
  ck_assert(e->account_no == 42);
  json_t *j = to_json(e);
  ck_assert(json_integer_value(json_object_get(j, "account_no")) == 42);
  ck_assert_ptr_null(json_object_get(j, "account"));
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  char *err = refuse(&gmtest__everything__descriptor, 2,
                     ARGS("account=a", "account_no=1"));
  ck_assert_msg(strstr(err, "alternatives (oneof)"), "%s", err);
  free(err);

  err = NULL;
  ProtobufCMessage *m = gm_codec_from_args(&gmtest__legacy__descriptor, 2,
                                           ARGS("name=n", "count=0"), &err);
  ck_assert_msg(m != NULL, "%s", err ? err : "");
  Gmtest__Legacy *l = (Gmtest__Legacy *)m;
  ck_assert(l->has_count && l->count == 0); /* set to zero, not unset */
  ck_assert(!l->has_data);
  j = gm_codec_to_json(m);
  ck_assert_ptr_nonnull(json_object_get(j, "count"));
  ck_assert_ptr_null(json_object_get(j, "data"));
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);

  err = refuse(&gmtest__legacy__descriptor, 1, ARGS("count=1"));
  ck_assert_msg(strstr(err, "needs field 'name' (string): it is required"),
                "%s", err);
  free(err);
}
END_TEST

START_TEST(unknown_field_names_the_valid_ones) {
  char *err = refuse(&gm__ping_request__descriptor, 1, ARGS("ech=hi"));
  ck_assert_msg(strstr(err, "unknown field 'ech'") &&
                    strstr(err, "gm.PingRequest") &&
                    strstr(err, "valid fields: echo"),
                "%s", err);
  free(err);
  err = refuse(&gm__register_request__descriptor, 1,
               ARGS("participant.role=buyer"));
  ck_assert_msg(strstr(err, "'participant.role'") &&
                    strstr(err, "id, public_key, roles, name"),
                "%s", err);
  free(err);
  err = NULL;
  ck_assert_ptr_null(gm_codec_from_json(&gm__ping_request__descriptor,
                                        "{\"echo\":\"x\",\"nope\":1}", &err));
  ck_assert_msg(strstr(err, "unknown field 'nope'"), "%s", err);
  free(err);
  err = refuse(&gm__ping_request__descriptor, 1, ARGS("echo"));
  ck_assert_msg(strstr(err, "not field=value"), "%s", err);
  free(err);
}
END_TEST

START_TEST(bad_numbers_are_refused) {
  static const struct {
    const char *word, *expect;
  } cases[] = {
      {"i32=2147483648", "out of range [-2147483648, 2147483647]"},
      {"i32=1.5", "\"1.5\" is not an integer"},
      {"i64=9223372036854775808", "out of range"},
      {"i64=12abc", "is not an integer"},
      {"i64=", "needs an integer"},
      {"i64= 5", "needs an integer"},
      {"u32=-1", "must be a plain number"},
      {"u32=4294967296", "out of range [0, 4294967295]"},
      {"u64=18446744073709551616", "out of range"},
      {"f32=-1", "must be a plain number"},
      {"fl=1e39", "out of range"},
      {"db=abc", "is not a number"},
      {"flag=maybe", "needs true or false"},
      {"blob=not base64!", "needs base64"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *w = (char *)cases[i].word;
    char *err = refuse(&gmtest__everything__descriptor, 1, &w);
    ck_assert_msg(strstr(err, cases[i].expect), "%s -> %s", w, err);
    free(err);
  }
  char *err = NULL;
  ck_assert_ptr_null(gm_codec_from_json(&gmtest__everything__descriptor,
                                        "{\"i32\": 1.5}", &err));
  ck_assert_msg(strstr(err, "'i32'"), "%s", err);
  free(err);
  err = NULL;
  ck_assert_ptr_null(
      gm_codec_from_json(&gmtest__everything__descriptor, "{\"i32\": ", &err));
  ck_assert_msg(strstr(err, "not valid at line 1"), "%s", err);
  free(err);
}
END_TEST

START_TEST(base64_both_ways) {
  static const char *const plain[] = {"",     "f",     "fo",    "foo",
                                      "foob", "fooba", "foobar"};
  static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    char *e =
        gm_codec_base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
    ck_assert_str_eq(e, coded[i]);
    size_t n;
    uint8_t *d = gm_codec_base64_decode(coded[i], &n);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(n, strlen(plain[i]));
    ck_assert_int_eq(memcmp(d, plain[i], n), 0);
    free(e);
    free(d);
  }
  size_t n;
  ck_assert_ptr_null(gm_codec_base64_decode("Zg=", &n));
  ck_assert_ptr_null(gm_codec_base64_decode("Z=g=", &n));
  ck_assert_ptr_null(gm_codec_base64_decode("Zm9v!A==", &n));
}
END_TEST

/* Captures what a print function writes. */
static char *capture(void (*fn)(FILE *, const void *), const void *arg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  fn(f, arg);
  fclose(f);
  return buf;
}

static void print_table(FILE *f, const void *m) {
  gm_codec_print_table(f, m);
}

static void print_fields(FILE *f, const void *d) {
  gm_codec_print_fields(f, d);
}

START_TEST(table_shows_rows_under_a_header) {
  Gmtest__Everything *e =
      build(6, ARGS("text=hi", "inner.a=5", "tags=x", "tags=y",
                    "legs.symbol=CEA-2025", "legs.symbol=CCER-1"));
  char *out = capture(print_table, e);
  ck_assert_msg(strstr(out, "text  ") && strstr(out, "hi\n"), "%s", out);
  ck_assert_msg(strstr(out, "inner.a"), "%s", out);
  ck_assert_msg(strstr(out, "x, y"), "%s", out);
  ck_assert_msg(strstr(out, "legs (2):\nsymbol    qty  side\n"), "%s", out);
  ck_assert_msg(strstr(out, "CEA-2025  0    SIDE_UNSPECIFIED\n"), "%s", out);
  ck_assert_msg(strstr(out, "CCER-1    0    SIDE_UNSPECIFIED\n"), "%s", out);
  free(out);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}
END_TEST

/* Whether the C library has a UTF-8 locale to measure widths in (Debian's
   libc-bin ships C.UTF-8); without one every character counts 1. */
static int have_utf8_locale(void) {
  locale_t l = gm_table_locale();
  if (l) freelocale(l);
  return l != (locale_t)0;
}

/*
 * Columns are padded by display width: a Chinese name (2 columns a
 * character, 3 bytes) or a letter with a combining accent (1 column, 3
 * bytes) lines up the columns after it with a plain one.
 */
START_TEST(table_pads_by_display_width) {
  if (!have_utf8_locale()) {
    fprintf(stderr, "no UTF-8 locale: display widths not checked\n");
    return;
  }
  Gmtest__Everything *e =
      build(6, ARGS("legs.symbol=天津绿色建材", "legs.qty=1",
                    "legs.symbol=Cafe\xcc\x81", "legs.qty=2",
                    "legs.symbol=ABCDEFGHIJKL", "legs.qty=3"));
  char *out = capture(print_table, e);
  /* 12 columns wide: "天津绿色建材" is 18 bytes, "Café" 6 bytes. */
  ck_assert_msg(strstr(out, "symbol        qty  side\n"), "%s", out);
  ck_assert_msg(strstr(out, "天津绿色建材  1    SIDE_"), "%s", out);
  ck_assert_msg(strstr(out, "Cafe\xcc\x81          2    SIDE_"), "%s", out);
  ck_assert_msg(strstr(out, "ABCDEFGHIJKL  3    SIDE_"), "%s", out);
  free(out);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}
END_TEST

/*
 * One row, one line: a newline, tab or carriage return shows as \n, \t,
 * \r, another control character or a byte that is not UTF-8 as \xHH, a
 * bidi control as \uHHHH; in the "name  value" lines too.
 */
START_TEST(table_cells_stay_on_one_line) {
  Gmtest__Everything *e = build(
      5, ARGS("text=two\nlines", "legs.symbol=a\tb\r\x1b[31m", "legs.qty=1",
              "legs.symbol=\xe2\x80\xae"
              "evil",
              "legs.qty=2"));
  char *out = capture(print_table, e);
  ck_assert_msg(strstr(out, "\ntext   two\\nlines\n"), "%s", out);
  ck_assert_msg(strstr(out,
                       "\nsymbol          qty  side\n"
                       "a\\tb\\r\\x1B[31m  1    SIDE_UNSPECIFIED\n"
                       "\\u202Eevil      2    SIDE_UNSPECIFIED\n"),
                "%s", out);
  free(out);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  /* Bytes that are not UTF-8 (the codec's JSON never holds them, a
     market's own table may): \xHH, 4 columns each. */
  size_t cols;
  char *c = gm_table_cell("x\xff\xc3y\x7f\xc2\x85", 0, &cols, NULL);
  ck_assert_str_eq(c, "x\\xFF\\xC3y\\x7F\\x85");
  ck_assert_uint_eq(cols, 18);
  free(c);
}
END_TEST

/*
 * A cell wider than its column's limit is cut at a character boundary
 * (never inside a UTF-8 sequence or a wide character, a combining mark
 * kept with its letter) and ends with "..."; the last column is never cut.
 */
START_TEST(long_cells_are_cut_at_a_character) {
  int cut = 0;
  size_t cols;
  char *c = gm_table_cell("abcdefghij", 10, &cols, &cut);
  ck_assert_str_eq(c, "abcdefghij"); /* fits exactly */
  ck_assert_int_eq(cut, 0);
  free(c);
  c = gm_table_cell("abcdefghijk", 10, &cols, &cut);
  ck_assert_str_eq(c, "abcdefg...");
  ck_assert_uint_eq(cols, 10);
  ck_assert_int_eq(cut, 1);
  free(c);
  /* An escape is not split either. */
  c = gm_table_cell("abcde\nfghij", 10, &cols, NULL);
  ck_assert_str_eq(c, "abcde\\n...");
  free(c);
  c = gm_table_cell("abcdef\nghij", 10, &cols, NULL);
  ck_assert_str_eq(c, "abcdef...");
  free(c);
  if (have_utf8_locale()) {
    /* 6 wide characters are 12 columns: 3 of them and "..." fit 10. */
    c = gm_table_cell("天津绿色建材", 10, &cols, NULL);
    ck_assert_str_eq(c, "天津绿...");
    ck_assert_uint_eq(cols, 9);
    free(c);
    /* e + combining acute: the accent stays with its e. */
    c = gm_table_cell("abcdefe\xcc\x81xyzw", 10, &cols, NULL);
    ck_assert_str_eq(c, "abcdefe\xcc\x81...");
    ck_assert_uint_eq(cols, 10);
    free(c);
    c = gm_table_cell("abcdefe\xcc\x81xyz", 10, &cols, NULL);
    ck_assert_str_eq(c, "abcdefe\xcc\x81xyz"); /* 10 columns: fits */
    free(c);
  }
  /* Whatever the locale: the text kept is whole UTF-8. */
  for (size_t max = 4; max < 16; max++) {
    c = gm_table_cell("天津绿色建材有限公司", max, &cols, NULL);
    ck_assert_uint_le(cols, max);
    size_t len = strlen(c);
    ck_assert_str_eq(c + len - 3, "...");
    ck_assert_int_eq((len - 3) % 3, 0);
    free(c);
  }
  /* Through the printer: a middle column is cut, the last is not. */
  char big[200];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char sym[220], tag[220];
  snprintf(sym, sizeof sym, "legs.symbol=%s", big);
  snprintf(tag, sizeof tag, "text=%s", big);
  Gmtest__Everything *e = build(2, ARGS(sym, tag));
  char *out = capture(print_table, e);
  char want[120];
  snprintf(want, sizeof want, "\n%.*s...  0    SIDE_UNSPECIFIED\n",
           GM_TABLE_CELL_MAX - 3, big);
  ck_assert_msg(strstr(out, want), "%s", out);
  ck_assert_msg(strstr(out, big), "the last column was cut: %s", out);
  ck_assert_msg(strstr(out, "--json shows them whole"), "%s", out);
  free(out);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}
END_TEST

START_TEST(help_lists_fields_with_types) {
  char *out = capture(print_fields, &gmtest__everything__descriptor);
  ck_assert_msg(strstr(out, "u64") && strstr(out, "uint64"), "%s", out);
  ck_assert_msg(strstr(out, "inner.leg.qty") && strstr(out, "int64"), "%s",
                out);
  ck_assert_msg(strstr(out, "repeated gmtest.Leg"), "%s", out);
  ck_assert_msg(strstr(out, "gmtest.Side: SIDE_UNSPECIFIED|SIDE_BUY|SIDE_SELL"),
                "%s", out);
  ck_assert_msg(strstr(out, "bytes (base64)"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codec");
  TCase *tc = tcase_create("codec");
  tcase_add_test(tc, every_scalar_round_trips);
  tcase_add_test(tc, zero_values_are_shown);
  tcase_add_test(tc, enums_by_name_short_name_or_number);
  tcase_add_test(tc, nested_with_dotted_keys);
  tcase_add_test(tc, repeated_by_repeating_the_key_or_json);
  tcase_add_test(tc, oneof_and_presence);
  tcase_add_test(tc, unknown_field_names_the_valid_ones);
  tcase_add_test(tc, bad_numbers_are_refused);
  tcase_add_test(tc, base64_both_ways);
  tcase_add_test(tc, table_shows_rows_under_a_header);
  tcase_add_test(tc, table_pads_by_display_width);
  tcase_add_test(tc, table_cells_stay_on_one_line);
  tcase_add_test(tc, long_cells_are_cut_at_a_character);
  tcase_add_test(tc, help_lists_fields_with_types);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
