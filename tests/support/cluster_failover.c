#include "cluster_failover.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_fixture.h"

/* The most nodes a cluster of cluster_fixture.c has. */
#define GM_TEST_CLUSTER_NODES 12

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

struct gm_test_cluster_reader {
  const gm_test_cluster *c;
  int last;                                  /* the node asked last */
  redisContext *conn[GM_TEST_CLUSTER_NODES]; /* NULL until needed */
};

gm_test_cluster_reader *gm_test_cluster_reader_new(const gm_test_cluster *c) {
  ck_assert_int_le(gm_test_cluster_size(c), GM_TEST_CLUSTER_NODES);
  gm_test_cluster_reader *r = calloc(1, sizeof *r);
  ck_assert_ptr_nonnull(r);
  r->c = c;
  while (gm_test_cluster_pid(c, r->last) <= 0) r->last++;
  return r;
}

void gm_test_cluster_reader_free(gm_test_cluster_reader **rp) {
  if (!rp || !*rp) return;
  for (int n = 0; n < GM_TEST_CLUSTER_NODES; n++)
    if ((*rp)->conn[n]) redisFree((*rp)->conn[n]);
  free(*rp);
  *rp = NULL;
}

static redisReply *reader_v(gm_test_cluster_reader *r, const char *fmt,
                            va_list ap) {
  for (int hops = 0; hops < 4; hops++) {
    if (!r->conn[r->last])
      r->conn[r->last] = gm_test_cluster_connect(r->c, r->last);
    va_list aq;
    va_copy(aq, ap);
    redisReply *rep = redisvCommand(r->conn[r->last], fmt, aq);
    va_end(aq);
    ck_assert_msg(rep, "no reply from node %d to %s", r->last, fmt);
    if (rep->type != REDIS_REPLY_ERROR) return rep;
    /* "MOVED <slot> <host>:<port>" */
    const char *port = strrchr(rep->str, ':');
    int to = -1;
    if (strncmp(rep->str, "MOVED ", 6) == 0 && port)
      for (int n = 0; n < gm_test_cluster_size(r->c); n++)
        if (gm_test_cluster_port(r->c, n) == atoi(port + 1)) to = n;
    ck_assert_msg(to >= 0, "%s: %s", fmt, rep->str);
    freeReplyObject(rep);
    r->last = to;
  }
  ck_abort_msg("%s: redirected 4 times", fmt);
  return NULL;
}

redisReply *gm_test_cluster_read(gm_test_cluster_reader *r, const char *fmt,
                                 ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = reader_v(r, fmt, ap);
  va_end(ap);
  return rep;
}

long long gm_test_cluster_read_int(gm_test_cluster_reader *r, const char *fmt,
                                   ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = reader_v(r, fmt, ap);
  va_end(ap);
  long long v = 0;
  if (rep->type == REDIS_REPLY_INTEGER)
    v = rep->integer;
  else if (rep->type == REDIS_REPLY_STRING)
    v = atoll(rep->str);
  else
    ck_abort_msg("%s: not an integer (reply type %d)", fmt, rep->type);
  freeReplyObject(rep);
  return v;
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
  return gm_test_cluster_promote(c, victim);
}

int gm_test_cluster_promote(gm_test_cluster *c, int victim) {
  int replica = most_advanced_replica_of(c, victim);
  redisContext *rc = gm_test_cluster_connect(c, replica);
  redisReply *r = gm_test_redis_cmd(rc, "CLUSTER FAILOVER TAKEOVER");
  ck_assert_msg(r->type == REDIS_REPLY_STATUS, "CLUSTER FAILOVER: %s",
                r->str ? r->str : "?");
  freeReplyObject(r);
  redisFree(rc);
  /* The takeover is immediate on the replica; the others learn it by
     gossip. */
  gm_test_sleep_ms(50);
  gm_test_cluster_wait_ok(c);
  return replica;
}
