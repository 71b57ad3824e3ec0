/*
 * core/cluster.c without a cluster: key slots against the Redis Cluster
 * specification's vectors, the first key of the commands gmd sends, and
 * MOVED/ASK replies.  tests/broker/test_cluster.c checks the same slots
 * against a real cluster's CLUSTER KEYSLOT.
 */
#include <check.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "redis.h"

static int slot(const char *key) {
  return gm__cluster_keyslot(key, strlen(key));
}

START_TEST(test_keyslot_vectors) {
  /* The specification's CRC16 check value. */
  ck_assert_uint_eq(gm__cluster_crc16("123456789", 9), 0x31C3);
  ck_assert_int_eq(slot("123456789"), 0x31C3 % 16384);
  /* CLUSTER KEYSLOT foo / bar on any Redis 7. */
  ck_assert_int_eq(slot("foo"), 12182);
  ck_assert_int_eq(slot("bar"), 5061);
  /* Hash tags, as the specification's examples. */
  ck_assert_int_eq(slot("{user1000}.following"), slot("{user1000}.followers"));
  ck_assert_int_eq(slot("{user1000}.following"), slot("user1000"));
  ck_assert_int_eq(slot("foo{}{bar}"),
                   (int)(gm__cluster_crc16("foo{}{bar}", 10) & 16383));
  ck_assert_int_eq(slot("foo{{bar}}zap"),
                   (int)(gm__cluster_crc16("{bar", 4) & 16383));
  ck_assert_int_eq(slot("foo{bar}{zap}"), slot("bar"));
  ck_assert_int_eq(slot("foo{bar"), (int)(gm__cluster_crc16("foo{bar", 7) &
                                          16383)); /* no closing brace */
  /* gmd's keys: every key of one script call shares the tag's slot. */
  ck_assert_int_eq(slot("gm:{carbon:EUA-DEC26}:outbox"),
                   slot("gm:{carbon:EUA-DEC26}:idem:alice:order:k1"));
  ck_assert_int_eq(slot("gm:{carbon:EUA-DEC26}:dl"), slot("carbon:EUA-DEC26"));
  /* Binary keys: the length counts, not a NUL. */
  ck_assert_int_eq(gm__cluster_keyslot("a\0b", 3),
                   (int)(gm__cluster_crc16("a\0b", 3) & 16383));
}
END_TEST

/* The slot of a command formatted as hiredis formats it. */
static int cmd_slot(int argc, const char **argv) {
  char *cmd = NULL;
  long long len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
  ck_assert_int_ge(len, 0);
  int s = gm__cluster_command_slot(cmd, (size_t)len);
  ck_assert_int_eq(s, gm__cluster_argv_slot(argc, argv, NULL));
  redisFreeCommand(cmd);
  return s;
}

START_TEST(test_command_first_key) {
  const char *fcall[] = {"FCALL",           "gm_x_1_bump", "2",
                         "gm:{m:t}:outbox", "other",       "arg"};
  ck_assert_int_eq(cmd_slot(6, fcall), slot("m:t"));
  const char *fcall0[] = {"FCALL", "fn", "0", "arg"};
  ck_assert_int_eq(cmd_slot(4, fcall0), -1);
  const char *eval[] = {"eval", "return 1", "1", "{k}x"};
  ck_assert_int_eq(cmd_slot(4, eval), slot("k"));
  const char *xrg[] = {
      "XREADGROUP", "GROUP",           "g", "c", "COUNT", "10", "BLOCK", "10",
      "STREAMS",    "gm:{m:t}:outbox", ">"};
  ck_assert_int_eq(cmd_slot(11, xrg), slot("m:t"));
  const char *set[] = {"SET", "foo", "1"};
  ck_assert_int_eq(cmd_slot(3, set), 12182);
  const char *keyless[][2] = {
      {"TIME", NULL}, {"INFO", "server"}, {"FUNCTION", "LOAD"}, {"PING", NULL}};
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(cmd_slot(keyless[i][1] ? 2 : 1, keyless[i]), -1);
  /* Not RESP: no slot rather than a guess. */
  ck_assert_int_eq(gm__cluster_command_slot("PING\r\n", 6), -1);
  ck_assert_int_eq(gm__cluster_command_slot("*2\r\n$3\r\nGET\r\n$9\r\nfoo", 23),
                   -1);
}
END_TEST

START_TEST(test_redirect_replies) {
  char host[64];
  int s = -1, port = -1;
  const char *moved = "MOVED 3999 127.0.0.1:6381";
  ck_assert_int_eq(
      gm__cluster_redirect(moved, strlen(moved), &s, host, sizeof host, &port),
      GM__CLUSTER_MOVED);
  ck_assert_int_eq(s, 3999);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_int_eq(port, 6381);
  const char *ask = "ASK 12182 ::1:7002";
  ck_assert_int_eq(
      gm__cluster_redirect(ask, strlen(ask), &s, host, sizeof host, &port),
      GM__CLUSTER_ASK);
  ck_assert_int_eq(s, 12182);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 7002);
  const char *bad[] = {
      "ERR unknown command", "MOVED 16384 h:1",
      "MOVED 1 h:0",         "MOVED x h:1",
      "ASK 1 nocolon",       "CLUSTERDOWN The cluster is down"};
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq(gm__cluster_redirect(bad[i], strlen(bad[i]), &s, host,
                                          sizeof host, &port),
                     0);
}
END_TEST

START_TEST(test_bad_seeds) {
  char err[256];
  const char *bad[] = {"",           "127.0.0.1", "127.0.0.1:0",
                       "host:70000", ":7000",     "127.0.0.1:7000,oops"};
  for (int i = 0; i < 6; i++) {
    gm__redis_addr addr = {.cluster = bad[i]};
    err[0] = '\0';
    if (!*bad[i]) { /* empty: not a cluster, the single Redis default */
      gm__cluster *c = gm__cluster_new(bad[i], err, sizeof err);
      ck_assert_ptr_null(c);
      ck_assert_msg(strstr(err, "is empty"), "%s", err);
      continue;
    }
    ck_assert_ptr_null(gm__redis_connect(&addr, err, sizeof err));
    ck_assert_msg(strstr(err, "[redis] cluster"), "%s: %s", bad[i], err);
  }
  /* Seeds that parse but where nothing listens: the connect says so. */
  gm__redis_addr none = {.cluster = "127.0.0.1:1"};
  ck_assert_ptr_null(gm__redis_connect(&none, err, sizeof err));
  ck_assert_msg(strstr(err, "Redis Cluster is not reachable at 127.0.0.1:1"),
                "%s", err);
}
END_TEST

/* The epoch counts changes of a slot's node only. */
START_TEST(test_epoch_counts_owner_changes) {
  char err[128];
  gm__cluster *c = gm__cluster_new("127.0.0.1:1", err, sizeof err);
  ck_assert_ptr_nonnull(c);
  int a = gm__cluster_node(c, "127.0.0.1", 7000);
  int b = gm__cluster_node(c, "127.0.0.1", 7001);
  unsigned e = gm__cluster_epoch(c);
  gm__cluster_set_slot(c, 5, a);
  ck_assert_uint_eq(gm__cluster_epoch(c), e + 1);
  gm__cluster_set_slot(c, 5, a);
  ck_assert_uint_eq(gm__cluster_epoch(c), e + 1);
  gm__cluster_set_slot(c, 5, b);
  ck_assert_uint_eq(gm__cluster_epoch(c), e + 2);
  ck_assert_int_eq(gm__cluster_slot_node(c, 5), b);
  gm__cluster_destroy(&c);
  ck_assert_ptr_null(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cluster");
  TCase *tc = tcase_create("slots");
  tcase_add_test(tc, test_keyslot_vectors);
  tcase_add_test(tc, test_command_first_key);
  tcase_add_test(tc, test_redirect_replies);
  tcase_add_test(tc, test_bad_seeds);
  tcase_add_test(tc, test_epoch_counts_owner_changes);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
