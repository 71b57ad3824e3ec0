/*
 * A private Redis Cluster for one test: `masters` redis-server masters (and
 * `replicas` replicas of each) on free loopback ports, joined with
 * `redis-cli --cluster create`, their folders inside a Redis fixture's
 * folder (whose server is there for gmd's fixture, which needs one), each
 * stopped by pid.
 *
 *   gm_test_cluster *cl = gm_test_cluster_start(3, 1, 1000);
 *   gm_test_gmd *g = gm_test_gmd_start(gm_test_cluster_home(cl), dir,
 *                                      gm_test_cluster_conf(cl));
 *   ...
 *   gm_test_gmd_stop(&g); gm_test_cluster_stop(&cl);
 *
 * Nodes are numbered 0.. in start order: masters first, then replicas
 * (redis-cli pairs them).  Failures abort the running Check test.
 */
#ifndef GM_TEST_CLUSTER_FIXTURE_H
#define GM_TEST_CLUSTER_FIXTURE_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include "redis_fixture.h"

typedef struct gm_test_cluster gm_test_cluster;

/* Starts the nodes, creates the cluster and waits (up to 30 s) until every
   node says cluster_state:ok.  node_timeout_ms: cluster-node-timeout. */
gm_test_cluster *gm_test_cluster_start(int masters, int replicas,
                                       int node_timeout_ms);
/* Stops every node still running (SIGTERM, waitpid), then the home fixture;
   nulls *c. */
void gm_test_cluster_stop(gm_test_cluster **c);
/* The Redis fixture whose folder holds the nodes' (give it to gmd's). */
gm_test_redis *gm_test_cluster_home(const gm_test_cluster *c);
/* "127.0.0.1:<port>,..." of every node. */
const char *gm_test_cluster_seeds(const gm_test_cluster *c);
/* "[redis]\ncluster = <seeds>\n", for gmd's extra_conf. */
const char *gm_test_cluster_conf(const gm_test_cluster *c);
int gm_test_cluster_size(const gm_test_cluster *c);
int gm_test_cluster_port(const gm_test_cluster *c, int node);
pid_t gm_test_cluster_pid(const gm_test_cluster *c, int node);
/* A new hiredis connection to the node; aborts the test on failure. */
redisContext *gm_test_cluster_connect(const gm_test_cluster *c, int node);
/* The node's id (CLUSTER MYID), in a static buffer per node. */
const char *gm_test_cluster_id(gm_test_cluster *c, int node);
/* The node the map of a live node says serves `slot`, or -1. */
int gm_test_cluster_owner(const gm_test_cluster *c, int slot);
/* kill -9 of the node, reaped. */
void gm_test_cluster_kill(gm_test_cluster *c, int node);
/* Waits (up to 30 s) until every live node says cluster_state:ok and names
   the same owner for every slot. */
void gm_test_cluster_wait_ok(const gm_test_cluster *c);
/* Starts `redis-cli --cluster reshard` moving `slots` slots from node
   `from` to node `to` in the background (its output in the home folder's
   redis.log); returns its pid for gm_test_cluster_reshard_done. */
pid_t gm_test_cluster_reshard(gm_test_cluster *c, int from, int to, int slots);
/* -1 while that reshard runs; then its exit status (0: done), reaped. */
int gm_test_cluster_reshard_done(pid_t pid);

#endif
