#include "cluster_failover.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_fixture.h"

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A live node's connection (the first that answers). */
static redisContext *any_live(const gm_test_cluster *c) {
  for (int n = 0; n < gm_test_cluster_size(c); n++)
    if (gm_test_cluster_pid(c, n) > 0) return gm_test_cluster_connect(c, n);
  ck_abort_msg("no live node in the cluster");
  return NULL;
}

int gm_test_cluster_master_of(const gm_test_cluster *c, const char *key) {
  redisContext *rc = any_live(c);
  long long slot = gm_test_redis_int(rc, "CLUSTER KEYSLOT %s", key);
  redisFree(rc);
  int node = gm_test_cluster_owner(c, (int)slot);
  ck_assert_msg(node >= 0, "no node serves slot %lld of %s", slot, key);
  return node;
}

redisContext *gm_test_cluster_connect_key(const gm_test_cluster *c,
                                          const char *key) {
  return gm_test_cluster_connect(c, gm_test_cluster_master_of(c, key));
}

/* Non-zero when live node n says ROLE master. */
static int is_master(const gm_test_cluster *c, int n) {
  redisContext *rc = gm_test_cluster_connect(c, n);
  redisReply *role = gm_test_redis_cmd(rc, "ROLE");
  int master = role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
               strcmp(role->element[0]->str, "master") == 0;
  freeReplyObject(role);
  redisFree(rc);
  return master;
}

void gm_test_cluster_wait_streaming(const gm_test_cluster *c) {
  for (int m = 0; m < gm_test_cluster_size(c); m++) {
    if (gm_test_cluster_pid(c, m) <= 0 || !is_master(c, m)) continue;
    char key[40];
    for (int i = 0;; i++) {
      snprintf(key, sizeof key, "gm:{sync:%d}:probe", i);
      if (gm_test_cluster_master_of(c, key) == m) break;
      ck_assert_msg(i < 100000, "master %d serves no slot", m);
    }
    redisContext *rc = gm_test_cluster_connect(c, m);
    freeReplyObject(gm_test_redis_cmd(rc, "SET %s 1", key));
    long long acked = 0;
    for (int i = 0; i < 300 && !acked; i++)
      acked = gm_test_redis_int(rc, "WAIT 1 100");
    ck_assert_msg(acked >= 1, "master %d's replicas do not stream in 30 s", m);
    redisFree(rc);
  }
}

/* Of the replicas of dead master `victim`, the one furthest along its
   stream.  ROLE says -1 once the master is gone; INFO keeps the offset of
   the stream received (the cached master's). */
static int most_advanced_replica_of(const gm_test_cluster *c, int victim) {
  int best = -1;
  long long best_off = -1;
  char want[32];
  snprintf(want, sizeof want, "master_port:%d\r\n",
           gm_test_cluster_port(c, victim));
  for (int n = 0; n < gm_test_cluster_size(c); n++) {
    if (gm_test_cluster_pid(c, n) <= 0) continue;
    redisContext *rc = gm_test_cluster_connect(c, n);
    redisReply *info = gm_test_redis_cmd(rc, "INFO replication");
    const char *off = strstr(info->str, "slave_repl_offset:");
    if (strstr(info->str, want) && off &&
        atoll(off + strlen("slave_repl_offset:")) > best_off) {
      best = n;
      best_off = atoll(off + strlen("slave_repl_offset:"));
    }
    freeReplyObject(info);
    redisFree(rc);
  }
  ck_assert_msg(best >= 0, "master %d had no replica", victim);
  return best;
}

int gm_test_cluster_fail_over(gm_test_cluster *c, int victim) {
  gm_test_cluster_kill(c, victim);
  int replica = most_advanced_replica_of(c, victim);
  redisContext *rc = gm_test_cluster_connect(c, replica);
  redisReply *r = gm_test_redis_cmd(rc, "CLUSTER FAILOVER TAKEOVER");
  ck_assert_msg(r->type == REDIS_REPLY_STATUS, "CLUSTER FAILOVER: %s",
                r->str ? r->str : "?");
  freeReplyObject(r);
  redisFree(rc);
  /* The takeover is immediate on the replica; the others learn it by
     gossip. */
  nap_ms(50);
  gm_test_cluster_wait_ok(c);
  return replica;
}
