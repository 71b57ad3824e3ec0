/*
 * Redis Cluster routing (see cluster.h): key slots, the slot map, and
 * redirections.  The rules are those of the Redis Cluster specification
 * (https://redis.io/docs/reference/cluster-spec/): "Keys distribution model"
 * for the slot and hash tags, "Redirection and resharding" for MOVED and ASK.
 */
#include "cluster.h"
#include "redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

/* Arguments of a RESP command looked at for its key: every command gmd
   sends has its first key well before this. */
#define GM__CLUSTER_ARGS_SEEN 64

typedef struct gm__cluster_node_t {
  char *host; /* as the map names it */
  int port;   /* TCP port */
  int master; /* serves slots in the last map read */
} gm__cluster_node_t;

struct gm__cluster {
  int16_t slot[GM__CLUSTER_SLOTS]; /* node per slot, -1: unknown */
  gm__cluster_node_t *node;        /* every node ever known */
  size_t nnode, capnode;           /* in use, allocated */
  char **seed_host;                /* the configured seeds */
  int *seed_port;                  /* their ports */
  size_t nseed;                    /* how many */
  unsigned epoch;                  /* changes of a slot's node */
};

/* CRC16/XMODEM of each byte value (the specification's table; a byte at a
   time: every command a worker sends computes one). */
static const uint16_t gm__crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108,
    0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef, 0x1231, 0x0210,
    0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6, 0x9339, 0x8318, 0xb37b,
    0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de, 0x2462, 0x3443, 0x0420, 0x1401,
    0x64e6, 0x74c7, 0x44a4, 0x5485, 0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee,
    0xf5cf, 0xc5ac, 0xd58d, 0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6,
    0x5695, 0x46b4, 0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d,
    0xc7bc, 0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b, 0x5af5,
    0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12, 0xdbfd, 0xcbdc,
    0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a, 0x6ca6, 0x7c87, 0x4ce4,
    0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41, 0xedae, 0xfd8f, 0xcdec, 0xddcd,
    0xad2a, 0xbd0b, 0x8d68, 0x9d49, 0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13,
    0x2e32, 0x1e51, 0x0e70, 0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a,
    0x9f59, 0x8f78, 0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e,
    0xe16f, 0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e, 0x02b1,
    0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256, 0xb5ea, 0xa5cb,
    0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d, 0x34e2, 0x24c3, 0x14a0,
    0x0481, 0x7466, 0x6447, 0x5424, 0x4405, 0xa7db, 0xb7fa, 0x8799, 0x97b8,
    0xe75f, 0xf77e, 0xc71d, 0xd73c, 0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657,
    0x7676, 0x4615, 0x5634, 0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9,
    0xb98a, 0xa9ab, 0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882,
    0x28a3, 0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92, 0xfd2e,
    0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9, 0x7c26, 0x6c07,
    0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1, 0xef1f, 0xff3e, 0xcf5d,
    0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8, 0x6e17, 0x7e36, 0x4e55, 0x5e74,
    0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

unsigned gm__cluster_crc16(const char *buf, size_t len) {
  unsigned crc = 0;
  for (size_t i = 0; i < len; i++)
    crc = ((crc << 8) ^
           gm__crc16_table[((crc >> 8) ^ (unsigned char)buf[i]) & 0xff]) &
          0xffff;
  return crc;
}

int gm__cluster_keyslot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open) {
    size_t from = (size_t)(open - key) + 1;
    const char *close = memchr(open + 1, '}', len - from);
    /* "{}" hashes the whole key: an empty tag would put every such key in
       one slot by accident. */
    if (close && close > open + 1)
      return (int)(gm__cluster_crc16(open + 1, (size_t)(close - open - 1)) &
                   (GM__CLUSTER_SLOTS - 1));
  }
  return (int)(gm__cluster_crc16(key, len) & (GM__CLUSTER_SLOTS - 1));
}

static int gm__is(const char *arg, size_t len, const char *name) {
  return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

/* Commands gmd or an operator's tooling sends that name no key: they go to
   any master. */
static const char *const gm__keyless[] = {
    "PING",    "TIME",     "INFO",     "FUNCTION",  "COMMAND", "SCRIPT",
    "CLUSTER", "ASKING",   "READONLY", "READWRITE", "CLIENT",  "CONFIG",
    "DBSIZE",  "SCAN",     "ECHO",     "HELLO",     "AUTH",    "SELECT",
    "MULTI",   "EXEC",     "DISCARD",  "FLUSHALL",  "FLUSHDB", "WAIT",
    "PUBLISH", "LASTSAVE", "SAVE",     "BGSAVE",    "MEMORY",  "SLOWLOG"};

int gm__cluster_argv_slot(int argc, const char *const *argv,
                          const size_t *lens) {
  if (argc < 1) return -1;
  size_t len0 = lens ? lens[0] : strlen(argv[0]);
#define GM__LEN(i) (lens ? lens[i] : strlen(argv[i]))
  int key = 1;
  if (gm__is(argv[0], len0, "FCALL") || gm__is(argv[0], len0, "FCALL_RO") ||
      gm__is(argv[0], len0, "EVAL") || gm__is(argv[0], len0, "EVALSHA") ||
      gm__is(argv[0], len0, "EVAL_RO") || gm__is(argv[0], len0, "EVALSHA_RO")) {
    if (argc < 4 || atoi(argv[2]) <= 0) return -1;
    key = 3;
  } else if (gm__is(argv[0], len0, "XREAD") ||
             gm__is(argv[0], len0, "XREADGROUP")) {
    key = 0;
    for (int i = 1; i + 1 < argc && !key; i++)
      if (gm__is(argv[i], GM__LEN(i), "STREAMS")) key = i + 1;
    if (!key) return -1;
  } else {
    for (size_t i = 0; i < sizeof gm__keyless / sizeof *gm__keyless; i++)
      if (gm__is(argv[0], len0, gm__keyless[i])) return -1;
  }
  if (key >= argc) return -1;
  return gm__cluster_keyslot(argv[key], GM__LEN(key));
#undef GM__LEN
}

int gm__cluster_command_slot(const char *cmd, size_t len) {
  const char *argv[GM__CLUSTER_ARGS_SEEN];
  size_t lens[GM__CLUSTER_ARGS_SEEN];
  const char *p = cmd, *end = cmd + len;
  if (p >= end || *p != '*') return -1;
  char *q;
  long n = strtol(p + 1, &q, 10);
  if (q + 2 > end || q[0] != '\r') return -1;
  p = q + 2;
  int argc = 0;
  while (argc < n && argc < GM__CLUSTER_ARGS_SEEN) {
    if (p >= end || *p != '$') return -1;
    long l = strtol(p + 1, &q, 10);
    if (l < 0 || q + 2 > end || q[0] != '\r') return -1;
    p = q + 2;
    if (p + l + 2 > end) return -1;
    argv[argc] = p;
    lens[argc++] = (size_t)l;
    p += l + 2;
  }
  return gm__cluster_argv_slot(argc, argv, lens);
}

int gm__cluster_redirect(const char *err, size_t len, int *slot, char *host,
                         size_t hostlen, int *port) {
  int kind = len > 6 && memcmp(err, "MOVED ", 6) == 0 ? GM__CLUSTER_MOVED
             : len > 4 && memcmp(err, "ASK ", 4) == 0 ? GM__CLUSTER_ASK
                                                      : 0;
  if (!kind) return 0;
  /* "MOVED <slot> <host>:<port>": the host may be an IPv6 address, so the
     port is after the last colon. */
  char buf[320];
  if (len >= sizeof buf) return 0;
  memcpy(buf, err, len);
  buf[len] = '\0';
  char *s = strchr(buf, ' ') + 1, *q;
  long sl = strtol(s, &q, 10);
  if (q == s || *q != ' ' || sl < 0 || sl >= GM__CLUSTER_SLOTS) return 0;
  char *addr = q + 1, *colon = strrchr(addr, ':');
  if (!colon || colon == addr) return 0;
  long pt = strtol(colon + 1, &q, 10);
  if (*q || pt <= 0 || pt > 65535 || (size_t)(colon - addr) >= hostlen)
    return 0;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  *slot = (int)sl;
  *port = (int)pt;
  return kind;
}

gm__cluster *gm__cluster_new(const char *seeds, char *err, size_t errlen) {
  gm__cluster *c = calloc(1, sizeof *c);
  if (!c) abort();
  for (int i = 0; i < GM__CLUSTER_SLOTS; i++) c->slot[i] = -1;
  char *list = strdup(seeds ? seeds : ""), *save = NULL;
  if (!list) abort();
  for (char *t = strtok_r(list, ", ", &save); t;
       t = strtok_r(NULL, ", ", &save)) {
    char *colon = strrchr(t, ':'), *q;
    long port = colon ? strtol(colon + 1, &q, 10) : 0;
    if (!colon || colon == t || *q || port <= 0 || port > 65535) {
      snprintf(err, errlen,
               "[redis] cluster: \"%s\" is not host:port; list the seed "
               "nodes as host:port,host:port",
               t);
      free(list);
      gm__cluster_destroy(&c);
      return NULL;
    }
    *colon = '\0';
    c->seed_host = realloc(c->seed_host, (c->nseed + 1) * sizeof *c->seed_host);
    c->seed_port = realloc(c->seed_port, (c->nseed + 1) * sizeof *c->seed_port);
    if (!c->seed_host || !c->seed_port) abort();
    c->seed_host[c->nseed] = strdup(t);
    if (!c->seed_host[c->nseed]) abort();
    c->seed_port[c->nseed++] = (int)port;
  }
  free(list);
  if (!c->nseed) {
    snprintf(err, errlen,
             "[redis] cluster is empty; list the seed nodes as "
             "host:port,host:port");
    gm__cluster_destroy(&c);
  }
  return c;
}

void gm__cluster_destroy(gm__cluster **cp) {
  if (!cp || !*cp) return;
  gm__cluster *c = *cp;
  for (size_t i = 0; i < c->nnode; i++) free(c->node[i].host);
  for (size_t i = 0; i < c->nseed; i++) free(c->seed_host[i]);
  free(c->node);
  free(c->seed_host);
  free(c->seed_port);
  free(c);
  *cp = NULL;
}

int gm__cluster_node(gm__cluster *c, const char *host, int port) {
  for (size_t i = 0; i < c->nnode; i++)
    if (c->node[i].port == port && strcmp(c->node[i].host, host) == 0)
      return (int)i;
  if (c->nnode == c->capnode) {
    c->capnode = c->capnode ? c->capnode * 2 : 8;
    c->node = realloc(c->node, c->capnode * sizeof *c->node);
    if (!c->node) abort();
  }
  c->node[c->nnode] = (gm__cluster_node_t){strdup(host), port, 0};
  if (!c->node[c->nnode].host) abort();
  return (int)c->nnode++;
}

size_t gm__cluster_nodes(const gm__cluster *c) {
  return c->nnode;
}

const char *gm__cluster_node_host(const gm__cluster *c, int node) {
  return c->node[node].host;
}

int gm__cluster_node_port(const gm__cluster *c, int node) {
  return c->node[node].port;
}

int gm__cluster_node_master(const gm__cluster *c, int node) {
  return c->node[node].master;
}

int gm__cluster_any_master(const gm__cluster *c) {
  for (size_t i = 0; i < c->nnode; i++)
    if (c->node[i].master) return (int)i;
  return -1;
}

int gm__cluster_slot_node(const gm__cluster *c, int slot) {
  return slot >= 0 && slot < GM__CLUSTER_SLOTS ? c->slot[slot] : -1;
}

unsigned gm__cluster_epoch(const gm__cluster *c) {
  return c->epoch;
}

void gm__cluster_set_slot(gm__cluster *c, int slot, int node) {
  if (slot < 0 || slot >= GM__CLUSTER_SLOTS) return;
  if (c->slot[slot] != node) c->epoch++;
  c->slot[slot] = (int16_t)node;
  c->node[node].master = 1;
}

/* Reads CLUSTER SLOTS from host:port into c: 0, or -1 and err. */
static int gm__cluster_read(gm__cluster *c, const char *host, int port,
                            int64_t timeout_us, gm__redis_stop *stop, char *err,
                            size_t errlen) {
  /* On the stop's list, its name resolved within the timeout too: a stop
     cuts a read from a node that does not answer (core/redis.h). */
  redisContext *rc = gm__redis_connect_node(host, port, timeout_us, stop);
  if (!rc || rc->err) {
    snprintf(err, errlen, "%s:%d: %s", host, port,
             rc ? rc->errstr : "out of memory");
    gm__redis_close_node(stop, rc);
    return -1;
  }
  if (gm__redis_auth(rc) != 0) {
    snprintf(err, errlen, "%s:%d: %s", host, port, rc->errstr);
    gm__redis_close_node(stop, rc);
    return -1;
  }
  redisReply *r = redisCommand(rc, "CLUSTER SLOTS");
  int rc_ = -1;
  if (!r) {
    snprintf(err, errlen, "%s:%d: %s", host, port, rc->errstr);
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
    snprintf(err, errlen, "%s:%d answers CLUSTER SLOTS with %s", host, port,
             r->type == REDIS_REPLY_ERROR ? r->str : "no slots");
  } else {
    int16_t slot[GM__CLUSTER_SLOTS];
    for (int i = 0; i < GM__CLUSTER_SLOTS; i++) slot[i] = -1;
    for (size_t i = 0; i < c->nnode; i++) c->node[i].master = 0;
    for (size_t i = 0; i < r->elements; i++) {
      redisReply *e = r->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
          e->element[0]->type != REDIS_REPLY_INTEGER ||
          e->element[1]->type != REDIS_REPLY_INTEGER ||
          e->element[2]->type != REDIS_REPLY_ARRAY ||
          e->element[2]->elements < 2 ||
          e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
          e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        continue;
      const char *ip = e->element[2]->element[0]->str;
      /* An empty address means "the one you asked" (the specification);
         "?" a node whose address is not known yet: skip its slots. */
      if (strcmp(ip, "?") == 0) continue;
      int node = gm__cluster_node(c, *ip ? ip : host,
                                  (int)e->element[2]->element[1]->integer);
      c->node[node].master = 1;
      long long from = e->element[0]->integer, to = e->element[1]->integer;
      for (long long s = from; s <= to && s < GM__CLUSTER_SLOTS; s++)
        if (s >= 0) slot[s] = (int16_t)node;
    }
    /* The first map is no change: nothing was derived from an empty one. */
    for (int i = 0; i < GM__CLUSTER_SLOTS; i++)
      if (c->slot[i] >= 0 && c->slot[i] != slot[i]) {
        c->epoch++;
        break;
      }
    memcpy(c->slot, slot, sizeof slot);
    rc_ = 0;
  }
  if (r) freeReplyObject(r);
  gm__redis_close_node(stop, rc);
  return rc_;
}

int gm__cluster_refresh(gm__cluster *c, int64_t timeout_us,
                        gm__redis_stop *stop, char *err, size_t errlen) {
  /* Masters first: they are the nodes most likely up to date; then every
     other known node (a replica promoted since), then the seeds. */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < c->nnode; i++)
      if (c->node[i].master == !pass &&
          gm__cluster_read(c, c->node[i].host, c->node[i].port, timeout_us,
                           stop, err, errlen) == 0)
        return 0;
  for (size_t i = 0; i < c->nseed; i++)
    if (gm__cluster_read(c, c->seed_host[i], c->seed_port[i], timeout_us, stop,
                         err, errlen) == 0)
      return 0;
  return -1;
}
