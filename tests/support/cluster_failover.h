/*
 * A master's kill -9 and its replica's promotion, for the failover tests
 * of the markets (plugins/<market>/tests/test_failover.c) on a cluster of
 * tests/support/cluster_fixture.h with 2 replicas a master, gmd running
 * with [redis] cluster_wait_replicas:
 *
 *   gm_test_cluster *cl = gm_test_cluster_start(3, 2, 1000);
 *   gm_test_cluster_wait_streaming(cl);       before any mutating call
 *   int victim = gm_test_cluster_master_of(cl, "gm:{market:tag}:k");
 *   ... load from client threads ...
 *   int promoted = gm_test_cluster_fail_over(cl, victim);
 *   gm_test_cluster_wait_streaming(cl);       writes go through again
 *
 * Failures abort the running Check test.
 */
#ifndef GM_TEST_CLUSTER_FAILOVER_H
#define GM_TEST_CLUSTER_FAILOVER_H

#include <hiredis/hiredis.h>

#include "cluster_fixture.h"

/* The node (index) that serves `key`'s slot now, as CLUSTER KEYSLOT and a
   live node's map say. */
int gm_test_cluster_master_of(const gm_test_cluster *c, const char *key);
/*
 * Commands to whichever master serves their key, over one connection per
 * node kept for many reads (a new connection per read leaves a socket in
 * TIME_WAIT each, and thousands of those make the fixture's search for
 * free ports fail): a command goes to the node the last one went to and
 * follows MOVED.
 */
typedef struct gm_test_cluster_reader gm_test_cluster_reader;
gm_test_cluster_reader *gm_test_cluster_reader_new(const gm_test_cluster *c);
/* Runs the command (printf-style, as redisCommand); aborts the test on no
   reply or an error reply other than MOVED.  Free with freeReplyObject. */
redisReply *gm_test_cluster_read(gm_test_cluster_reader *r, const char *fmt,
                                 ...);
/* The same for a command that answers an integer, or a string holding
   one. */
long long gm_test_cluster_read_int(gm_test_cluster_reader *r, const char *fmt,
                                   ...);
void gm_test_cluster_reader_free(gm_test_cluster_reader **r);
/*
 * Waits (up to 30 s) until every live master's replicas stream: a write on
 * the master, then WAIT 1 until a replica acknowledged it.  A fresh replica
 * is listed online before its master streams to it (Redis 7.0 starts after
 * the replica's first REPLCONF ACK), so a kill in that window loses the
 * writes since its sync, and with cluster_wait_replicas gmd refuses writes
 * meanwhile.
 */
void gm_test_cluster_wait_streaming(const gm_test_cluster *c);
/*
 * kill -9 of master `victim`, then CLUSTER FAILOVER TAKEOVER on its replica
 * furthest along the dead master's stream (WAIT 1 saw each acknowledged
 * write on some replica, and every replica holds a prefix of the same
 * stream, so that one has them all); waits until every live node agrees on
 * the map.  Returns the promoted node.
 */
int gm_test_cluster_fail_over(gm_test_cluster *c, int victim);
/* The second half of that, for a test that acts while the master is dead
   (killed with gm_test_cluster_kill): the promotion and the wait. */
int gm_test_cluster_promote(gm_test_cluster *c, int victim);

#endif
