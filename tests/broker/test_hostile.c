/*
 * Hostile input through a real gmd and redis-server (issue 10): replies a
 * strict protobuf runtime can decode, text with a NUL refused instead of cut,
 * the routing-frame limit as documented, and a flood of garbage that cannot
 * flood the log.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "gmd_fixture.h"
#include "greenmarket.pb-c.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"
#include "utf8.h"

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *conn;

static void setup(void) {
  redis = gm_test_redis_start();
  gmd =
      gm_test_gmd_start(redis, TEST_PLUGIN_DIR, "[plugins]\nload = testmkt\n");
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void teardown(void) {
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

/* A request built field by field, so text may hold any byte (protobuf-c
   packs C strings and would stop at a NUL). */
typedef struct raw {
  uint8_t b[1024];
  size_t n;
} raw;

static void put_text(raw *r, unsigned field, const char *s, size_t len) {
  r->b[r->n++] = (uint8_t)(field << 3 | 2);
  r->b[r->n++] = (uint8_t)len;
  memcpy(r->b + r->n, s, len);
  r->n += len;
}

static raw request(const char *market, size_t mlen, const char *method,
                   const char *key, size_t klen, const char *as, size_t alen) {
  raw r = {.n = 0};
  r.b[r.n++] = 1 << 3; /* version 1 */
  r.b[r.n++] = 1;
  r.b[r.n++] = 2 << 3; /* request_id 9 */
  r.b[r.n++] = 9;
  put_text(&r, 3, market, mlen);
  put_text(&r, 4, method, strlen(method));
  if (klen) put_text(&r, 5, key, klen);
  if (alen) put_text(&r, 7, as, alen);
  return r;
}

/* Sends r; the reply, whose message must be strict UTF-8. */
static Gm__Reply *send_raw(const raw *r) {
  const void *d[] = {r->b};
  size_t s[] = {r->n};
  gm_test_conn_send_raw(conn, 1, d, s);
  Gm__Reply *rep = gm_test_conn_recv(conn, 5000);
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(gm__utf8_valid(rep->message, strlen(rep->message)),
                "reply message is not UTF-8: %s", rep->message);
  return rep;
}

static void expect(Gm__Reply *r, Gm__Status st, const char *text) {
  ck_assert_msg(r->status == st, "status %d (%s), want %d", r->status,
                r->message, st);
  ck_assert_msg(strstr(r->message, text), "'%s' not in '%s'", text, r->message);
  gm__reply__free_unpacked(r, NULL);
}

START_TEST(invalid_utf8_never_comes_back) {
  raw r = request("\xff\xfe", 2, "ping", NULL, 0, NULL, 0);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "'market'");
  r = request("gm", 2, "\xC3", NULL, 0, NULL, 0);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "'method'");
  /* A valid but unknown name is echoed, cut at a character boundary. */
  char name[200] = "x";
  for (int i = 0; i < 40; i++) strcat(name, "\xC3\xA9");
  r = request(name, strlen(name), "ping", NULL, 0, NULL, 0);
  Gm__Reply *rep = send_raw(&r);
  ck_assert_uint_lt(strlen(rep->message), 300);
  expect(rep, GM__STATUS__NOT_FOUND, "...");
}
END_TEST

START_TEST(a_nul_in_text_is_refused_not_cut) {
  /* Two keys that differ after a NUL were one key: the second bump got the
     first one's reply and never ran. */
  Gm__Testmkt__BumpRequest bump = GM__TESTMKT__BUMP_REQUEST__INIT;
  bump.note = "n";
  uint8_t body[64];
  size_t blen = gm__testmkt__bump_request__pack(&bump, body);
  for (int i = 0; i < 2; i++) {
    raw r = request("testmkt", 7, "bump", i ? "k\0B" : "k\0A", 3, NULL, 0);
    r.b[r.n++] = 6 << 3 | 2; /* body */
    r.b[r.n++] = (uint8_t)blen;
    memcpy(r.b + r.n, body, blen);
    r.n += blen;
    expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "NUL");
  }
  redisContext *rc = gm_test_redis_connect(redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS gm:{testmkt:all}:counter"), 0);
  redisFree(rc);
  raw r = request("testmkt\0xyz", 11, "echo", NULL, 0, NULL, 0);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "'market'");
  r = request("gm", 2, "ping", NULL, 0, "al\0ice", 6);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "'dev_participant'");
}
END_TEST

START_TEST(a_nul_in_a_body_field_names_the_field) {
  raw r = request("testmkt", 7, "echo", NULL, 0, NULL, 0);
  raw b = {.n = 0};
  put_text(&b, 1, "a\0b", 3);
  r.b[r.n++] = 6 << 3 | 2;
  r.b[r.n++] = (uint8_t)b.n;
  memcpy(r.b + r.n, b.b, b.n);
  r.n += b.n;
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT,
         "the body of testmkt echo: field 'text' holds a NUL");
}
END_TEST

START_TEST(dev_participants_are_ids) {
  char longid[80];
  memset(longid, 'a', 65);
  longid[65] = '\0';
  raw r = request("gm", 2, "whoami", NULL, 0, longid, 65);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "1-64 letters");
  r = request("gm", 2, "whoami", NULL, 0, "a b", 3);
  expect(send_raw(&r), GM__STATUS__INVALID_ARGUMENT, "not a participant id");
  r = request("gm", 2, "whoami", NULL, 0, "alice-1.x_y", 11);
  Gm__Reply *rep = send_raw(&r);
  ck_assert_int_eq(rep->status, GM__STATUS__OK);
  gm__reply__free_unpacked(rep, NULL);
}
END_TEST

/* Sends `prefix` empty frames then a ping; 1 when a reply came back. */
static int ping_behind(int prefix) {
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0, timeout = 1500;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  ck_assert_int_eq(zmq_connect(s, gm_test_gmd_endpoint(gmd)), 0);
  raw r = request("gm", 2, "ping", NULL, 0, NULL, 0);
  for (int i = 0; i < prefix; i++) zmq_send(s, "", 0, ZMQ_SNDMORE);
  zmq_send(s, r.b, r.n, 0);
  int frames = 0, more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
      zmq_msg_close(&m);
      break;
    }
    frames++;
    more = zmq_msg_more(&m);
    zmq_msg_close(&m);
  }
  zmq_close(s);
  zmq_ctx_term(ctx);
  if (frames) ck_assert_int_eq(frames, prefix + 1);
  return frames > 0;
}

START_TEST(eight_prefix_frames_are_answered_nine_are_not) {
  ck_assert(ping_behind(0));
  ck_assert(ping_behind(1));
  ck_assert(ping_behind(8));
  ck_assert(!ping_behind(9));
}
END_TEST

static int log_count(const char *text) {
  FILE *f = fopen(gm_test_gmd_log(gmd), "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, text) != NULL;
  fclose(f);
  return n;
}

START_TEST(a_garbage_flood_cannot_flood_the_log) {
  const char junk[] = "\xff\xff\xff\xff garbage";
  for (int i = 0; i < 300; i++) {
    const void *d[] = {junk};
    size_t s[] = {sizeof junk - 1};
    gm_test_conn_send_raw(conn, 1, d, s);
    Gm__Reply *r = gm_test_conn_recv(conn, 5000);
    ck_assert_ptr_nonnull(r);
    gm__reply__free_unpacked(r, NULL);
  }
  int n = log_count("undecodable frame");
  ck_assert_msg(n >= 1 && n <= 10, "%d log lines for 300 bad frames", n);
}
END_TEST

int main(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("gmd");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, invalid_utf8_never_comes_back);
  tcase_add_test(tc, a_nul_in_text_is_refused_not_cut);
  tcase_add_test(tc, a_nul_in_a_body_field_names_the_field);
  tcase_add_test(tc, dev_participants_are_ids);
  tcase_add_test(tc, eight_prefix_frames_are_answered_nine_are_not);
  tcase_add_test(tc, a_garbage_flood_cannot_flood_the_log);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
