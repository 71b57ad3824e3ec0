/*
 * Redis Cluster routing: which master serves a key.  The Redis Cluster
 * specification's key slot (CRC16/XMODEM of the key's hash tag, mod 16384),
 * the slot map read with CLUSTER SLOTS, the slot of a command's first key,
 * and the MOVED/ASK redirections that correct the map.  Debian 12's hiredis
 * (0.14) knows nothing of clusters, so this is ours; core/redis.c keeps a
 * connection per node and sends each command where this file says.
 *
 * One map per connection object (one per thread): no locks.
 */
#ifndef GM_CORE_CLUSTER_H
#define GM_CORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define GM__CLUSTER_SLOTS 16384

/* CRC16/XMODEM (polynomial 0x1021, initial 0), as the specification's. */
unsigned gm__cluster_crc16(const char *buf, size_t len);
/* The key's slot: of the content of its first "{...}" when that is
   non-empty, else of the whole key. */
int gm__cluster_keyslot(const char *key, size_t len);
/* The slot of the first key of a command given as arguments (lens NULL:
   strlen of each), or -1 for a command without keys (PING, TIME, INFO,
   FUNCTION, EVAL with no keys...), which any master may serve. */
int gm__cluster_argv_slot(int argc, const char *const *argv,
                          const size_t *lens);
/* The same for a command in RESP form (redisFormatCommand's output). */
int gm__cluster_command_slot(const char *cmd, size_t len);

#define GM__CLUSTER_MOVED 1
#define GM__CLUSTER_ASK 2
/* An error reply's redirection: GM__CLUSTER_MOVED or GM__CLUSTER_ASK with
   *slot and the node's host and port ("MOVED 3999 127.0.0.1:6381"), or 0
   when the error is not one. */
int gm__cluster_redirect(const char *err, size_t len, int *slot, char *host,
                         size_t hostlen, int *port);

typedef struct gm__cluster gm__cluster;

/* A map with the seed nodes "host:port,host:port" and no slots yet; NULL
   and err when the list does not parse. */
gm__cluster *gm__cluster_new(const char *seeds, char *err, size_t errlen);
void gm__cluster_destroy(gm__cluster **c);
/*
 * Reads the whole slot map (CLUSTER SLOTS) from the first known node that
 * answers (masters, then the other known nodes, then the seeds), each with
 * a connect (its name resolved) and read timeout of timeout_us, each
 * connection listed in stop (NULL: none), which may cut it.  0; -1 and err
 * when no node answered with a map.
 */
typedef struct gm__redis_stop gm__redis_stop;
int gm__cluster_refresh(gm__cluster *c, int64_t timeout_us,
                        gm__redis_stop *stop, char *err, size_t errlen);
/* Counts the map reads and MOVED replies that gave a slot another node
   (a failover, a resharding): what a caller derived from the old owners
   is stale when it changes. */
unsigned gm__cluster_epoch(const gm__cluster *c);
/* The node serving `slot`, or -1 when no map says. */
int gm__cluster_slot_node(const gm__cluster *c, int slot);
/* Makes `node` serve `slot` (after a MOVED). */
void gm__cluster_set_slot(gm__cluster *c, int slot, int node);
/* The node at host:port, added when new: nodes are numbered in the order
   they became known, and a number never changes or goes away. */
int gm__cluster_node(gm__cluster *c, const char *host, int port);
size_t gm__cluster_nodes(const gm__cluster *c);
const char *gm__cluster_node_host(const gm__cluster *c, int node);
int gm__cluster_node_port(const gm__cluster *c, int node);
/* Non-zero when the last map had node serving slots (a master). */
int gm__cluster_node_master(const gm__cluster *c, int node);
/* A master for commands without keys (the first known), or -1. */
int gm__cluster_any_master(const gm__cluster *c);

#endif
