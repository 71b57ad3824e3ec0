#include "privfeed.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "frames.h"
#include "hash.h"
#include "interest.h"
#include "log.h"

/* Audiences whose sequence numbers are kept; past this the table starts
   over (every audience's count restarts at 1, as after a restart). */
#define GM__SEQ_MAX (1u << 20)
/* At most one refusal log line per this long. */
#define GM__LOG_EVERY_MS 10000

typedef struct gm__psub {
  char *req;       /* the prefix as the client asked it */
  size_t len;      /* its length */
  uint64_t h;      /* its hash: a resent prefix is found without memcmp */
  char **applied;  /* what of it this connection may see */
  size_t napplied; /* 1 or more */
} gm__psub;

typedef struct gm__pconn {
  uint8_t rid[256]; /* the ROUTER's routing id of the connection */
  size_t rid_len;   /* its length (1-255) */
  int fd;           /* the connection's socket (ZMQ_SRCFD) */
  uint32_t acc;     /* connections accepted on fd when it was made */
  char *who;        /* participant; NULL in development mode */
  char *key;        /* its CURVE key (Z85); NULL: a bootstrap admin */
  char *roles;      /* its roles in force, as last known */
  /* Its key is no longer its participant's: it holds nothing, and what it
     asks is refused without asking Redis again, until it goes silent for a
     lease or disconnects. */
  int revoked;
  int64_t lease_ms;      /* forgotten after this (monotonic ms) */
  gm__psub *subs;        /* its subscriptions */
  size_t nsubs, capsubs; /* used, allocated */
  /* Its subscriptions by their hash, so a resent prefix is found at once:
     open addressing over GM__SUBTAB slots, each 0 (free), GM__TOMB (was
     used) or the subscription's index + 1; allocated at the first. */
  uint16_t *subtab;
  size_t ntomb;
  /* Where delivery finds it (the index below): in the wide list while
     a kept prefix ends before its audience does ("", "@", "@r:"), and in
     the list of each audience its other kept prefixes lie in.  Each kept
     prefix is added and taken out alone, so a subscribe or unsubscribe
     costs what that prefix keeps, not what the connection holds. */
  size_t nwide;    /* kept prefixes that end before their audience */
  size_t wide_pos; /* its place in pf->wide while nwide > 0 */
  /* The same for public prefixes: in pf->pwide while one of them ends
     before its market's first '.' ("*", "mark"), else in the audience
     of that market ("mark."). */
  size_t npwide, pwide_pos;
  struct gm__memb **memb; /* its audiences */
  size_t nmemb, capmemb;
  size_t idx;              /* its place in pf->conns */
  struct gm__pconn *hnext; /* same routing-id bucket */
  struct gm__pconn *fnext; /* same fd bucket */
  int gone;                /* unreachable: forgotten once delivery is done */
} gm__pconn;

/* The connections with a prefix inside one audience ("@p:alice ",
   "@r:bank "): an event is offered to these and to the wide ones only. */
typedef struct gm__aud {
  char *key;
  struct gm__memb **members;
  size_t n, cap;
  struct gm__aud *next; /* same bucket */
} gm__aud;

/* One connection in one audience. */
typedef struct gm__memb {
  gm__aud *a;
  gm__pconn *c;
  size_t pos;  /* its place in a->members */
  size_t refs; /* c's kept prefixes inside a */
} gm__memb;

struct gm__privfeed {
  void *router;               /* the private feed socket */
  void *monitor;              /* PAIR: the router's disconnect events */
  int dev;                    /* no CURVE: subscriptions kept as asked */
  gm__pconn **conns;          /* connections holding subscriptions */
  size_t nconns, capconns;    /* used, allocated */
  gm__pconn **rids;           /* routing id -> connection (hash buckets) */
  size_t nrids;               /* buckets: a power of two */
  gm__pconn **fds;            /* fd -> its connections (nrids hash buckets): a
                                 disconnect finds the connections on its fd without
                                 looking at the others (a storm of N was N x N) */
  _Atomic size_t held;        /* nconns, for other threads (metrics) */
  uint64_t disc_looked;       /* connections looked at by disconnects, ever */
  _Atomic uint64_t applied;   /* subscriptions indexed, ever (metrics) */
  char **seq_keys;            /* audience ("@p:alice ") per slot, or NULL */
  uint64_t *seq_vals;         /* last sequence number per slot */
  size_t seq_cap, seq_n;      /* slots (a power of two), used */
  int64_t log_ms;             /* when the last refusal was logged */
  unsigned long refused;      /* refusals since then, not logged */
  unsigned long dropped;      /* events dropped for a full queue, since log */
  int64_t drop_log_ms;        /* when drops were last logged by expire: a
                                 clock of their own, so that lines about
                                 drops never hold back a refusal's */
  gm__privfeed_lookup lookup; /* the registry (CURVE), or NULL */
  void *lookup_ctx;
  gm__aud **buckets;      /* audience -> its connections */
  size_t nbuckets, nauds; /* a power of two; audiences indexed */
  gm__pconn **wide;       /* connections with a wide prefix */
  size_t nwide, capwide;  /* used, allocated */
  gm__pconn **pwide;      /* connections with a wide public prefix */
  size_t npwide, cappwide;
  gm__pconn **targets; /* one delivery's connections (scratch) */
  size_t captargets;
  /* Told of each audience the first time it is followed and of the first
     wide connection ("@": every private topic), so publishers skip events
     nobody here would get.  Never told to forget one: an audience whose
     last connection goes keeps its events counted, so a subscriber that
     comes back sees the gap in its count (the only way it can know it
     missed them), and re-indexing a connection never leaves a moment in
     which its audiences look unfollowed. */
  gm__interest *interest;
  size_t noted; /* audiences told so far */
  /* Per socket fd, from the monitor: connections accepted on it so far.
     A record made for a message on fd F belongs to the fd_acc[F]-th
     connection on F, so one left by an older connection on the same fd and
     routing id (its disconnect not read yet) is told from it. */
  uint32_t *fd_acc;
  /* And disconnected on it so far: a message read from fd F when every
     connection accepted on F has disconnected comes from a connection that
     is gone (it sent and closed before the broker read it), and makes no
     record (nobody to deliver to) and no answer. */
  uint32_t *fd_disc;
  size_t nfd;
  /* Registry answers (key -> owner, roles) for the new connections of one
     burst of messages, asked in one pipelined look-up once the burst is
     read and used for that burst only: after a restart every client
     reconnects at once, and events then waited one round trip per new
     connection; now one per burst of up to 256, each answer as fresh as
     when every connection asked alone (a key revoked before a connection's
     first subscription was read is refused at once). */
  struct gm__rcache *rc; /* GM__RC_SLOTS slots, allocated at the first */
  size_t nrc;            /* used */
  int redis_failed;      /* one failed in this burst: no more in it */
};

/* One registry answer. */
typedef struct gm__rcache {
  char key[41]; /* Z85; "" when the slot is free */
  char *owner;  /* NULL: the key is nobody's */
  char *roles;
} gm__rcache;

/* Answers kept at most (a burst is 256 messages; past this a key is asked
   alone). */
#define GM__RC_MAX 1024
#define GM__RC_SLOTS (2 * GM__RC_MAX)

/* Audiences told to the interest map at most: past this every private
   event is built, as when a wide connection follows all of them. */
#define GM__NOTED_MAX 65536

/* Tells the interest map that audience p[0..n) is followed. */
static void gm__note(gm__privfeed *pf, const char *p, size_t n) {
  if (!pf->interest || pf->noted > GM__NOTED_MAX) return;
  if (pf->noted == GM__NOTED_MAX) {
    gm__interest_note(pf->interest, "", 0);
    pf->noted++;
    return;
  }
  pf->noted += (size_t)gm__interest_note(pf->interest, p, n);
}

/* What a connection whose key is not its participant's any more is told. */
static void gm__revoked_why(char *out, size_t cap, const char *who) {
  snprintf(out, cap,
           "the key this connection authenticated with is no longer "
           "registered to participant %s (revoked or replaced); reconnect "
           "with the participant's current key",
           who);
}

/* Why a subscription under a chosen routing id is refused. */
static const char gm__rid_why[] =
    "the private feed serves only connections under the routing id it "
    "assigns: do not set ZMQ_ROUTING_ID on the private feed socket (a "
    "chosen routing id can be taken by another client once this connection "
    "closes)";

/* ---- the rule ---- */

/* A public prefix or topic: not empty and not starting with '@' ("" on
   the private feed means every private topic of its holder). */
static int gm__public(const char *s, size_t n) {
  return n > 0 && s[0] != '@';
}

static int gm__starts(const char *s, size_t n, const char *prefix) {
  size_t p = strlen(prefix);
  return n >= p && memcmp(s, prefix, p) == 0;
}

size_t gm__privfeed_allowed(const char *participant, const char *roles,
                            const char *req, size_t len, char **out,
                            size_t max) {
  if (max == 0) return 0;
  if (!participant) { /* development mode: nobody to check against */
    out[0] = strndup(req, len);
    if (!out[0]) abort();
    return 1;
  }
  /* What this participant may see: its own topics and its roles' (an admin
     holds every role, never another participant's topics). */
  size_t nv = 0, cap = 2;
  for (const char *p = roles ? roles : ""; *p; p++) cap += *p == ',';
  char **v = calloc(cap + 1, sizeof *v);
  if (!v) abort();
  if (asprintf(&v[nv++], "@p:%s ", participant) < 0) abort();
  int admin = 0;
  for (const char *p = roles ? roles : ""; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 5 && memcmp(p, "admin", 5) == 0) admin = 1;
    if (n && nv < cap && asprintf(&v[nv++], "@r:%.*s ", (int)n, p) < 0) abort();
    p += n + (end != NULL);
  }
  if (admin) {
    for (size_t i = 1; i < nv; i++) free(v[i]);
    v[1] = strdup("@r:");
    if (!v[1]) abort();
    nv = 2;
  }
  /* The part of req's topics that is visible: req itself when it lies
     inside one visible prefix, else every visible prefix inside req. */
  size_t n = 0;
  for (size_t i = 0; i < nv; i++)
    if (gm__starts(req, len, v[i])) {
      out[0] = strndup(req, len);
      if (!out[0]) abort();
      n = 1;
      goto done;
    }
  for (size_t i = 0; i < nv && n < max; i++)
    if (strlen(v[i]) >= len && memcmp(v[i], req, len) == 0) {
      out[n++] = v[i];
      v[i] = NULL;
    }
done:
  for (size_t i = 0; i < nv; i++) free(v[i]);
  free(v);
  return n;
}

/* ---- the index: audience -> connections ---- */

/* The audience a topic or prefix lies in: its length up to and with the
   first space; 0 when it has none (a prefix that ends before it). */
static size_t gm__aud_len(const char *s, size_t n) {
  /* A public topic's audience is its market: up to its first '.'. */
  const char *sp = memchr(s, gm__public(s, n) ? '.' : ' ', n);
  return sp ? (size_t)(sp - s) + 1 : 0;
}

static gm__aud **gm__aud_slot(gm__privfeed *pf, const char *key, size_t n) {
  char k[GM_PRIVFEED_MAX_PREFIX + 1];
  if (n > GM_PRIVFEED_MAX_PREFIX) n = GM_PRIVFEED_MAX_PREFIX;
  memcpy(k, key, n);
  k[n] = 0;
  gm__aud **a = &pf->buckets[gm__hash(k) & (pf->nbuckets - 1)];
  while (*a && strcmp((*a)->key, k) != 0) a = &(*a)->next;
  return a;
}

static void gm__aud_grow(gm__privfeed *pf) {
  size_t old = pf->nbuckets;
  gm__aud **b = pf->buckets;
  pf->nbuckets = old ? old * 2 : 64;
  pf->buckets = calloc(pf->nbuckets, sizeof *pf->buckets);
  if (!pf->buckets) abort();
  for (size_t i = 0; i < old; i++)
    for (gm__aud *a = b[i], *next; a; a = next) {
      next = a->next;
      gm__aud **to = &pf->buckets[gm__hash(a->key) & (pf->nbuckets - 1)];
      a->next = *to;
      *to = a;
    }
  free(b);
}

/* Appends x to the array v of n used, cap allocated. */
#define GM__PUSH(v, n, cap, x)                 \
  do {                                         \
    if ((n) == (cap)) {                        \
      (cap) = (cap) ? 2 * (cap) : 4;           \
      (v) = realloc((v), (cap) * sizeof *(v)); \
      if (!(v)) abort();                       \
    }                                          \
    (v)[(n)++] = (x);                          \
  } while (0)

/* Takes c out of the wide list. */
static void gm__wide_del(gm__privfeed *pf, gm__pconn *c) {
  pf->wide[c->wide_pos] = pf->wide[--pf->nwide];
  if (c->wide_pos < pf->nwide) pf->wide[c->wide_pos]->wide_pos = c->wide_pos;
  c->nwide = 0;
}

/* Takes c out of the public wide list. */
static void gm__pwide_del(gm__privfeed *pf, gm__pconn *c) {
  pf->pwide[c->pwide_pos] = pf->pwide[--pf->npwide];
  if (c->pwide_pos < pf->npwide)
    pf->pwide[c->pwide_pos]->pwide_pos = c->pwide_pos;
  c->npwide = 0;
}

/* Takes c's membership mi out of its audience (the audience goes with its
   last connection) and out of c. */
static void gm__memb_del(gm__privfeed *pf, gm__pconn *c, size_t mi) {
  gm__memb *m = c->memb[mi];
  gm__aud *a = m->a;
  a->members[m->pos] = a->members[--a->n];
  if (m->pos < a->n) a->members[m->pos]->pos = m->pos;
  if (a->n == 0) { /* nobody left: the audience goes */
    gm__aud **slot = gm__aud_slot(pf, a->key, strlen(a->key));
    *slot = a->next;
    free(a->key);
    free(a->members);
    free(a);
    pf->nauds--;
  }
  c->memb[mi] = c->memb[--c->nmemb];
  free(m);
}

/* Adds one kept prefix p of c to the index. */
static void gm__index_add(gm__privfeed *pf, gm__pconn *c, const char *p) {
  size_t n = gm__aud_len(p, strlen(p));
  if (!n && gm__public(p, strlen(p))) {
    if (c->npwide++ == 0) {
      c->pwide_pos = pf->npwide;
      GM__PUSH(pf->pwide, pf->npwide, pf->cappwide, c);
    }
    /* "*" is every public topic: noted as everything. */
    if (strcmp(p, "*") == 0)
      gm__note(pf, "", 0);
    else
      gm__note(pf, p, strlen(p));
    return;
  }
  if (!n) {
    if (c->nwide++ == 0) {
      c->wide_pos = pf->nwide;
      GM__PUSH(pf->wide, pf->nwide, pf->capwide, c);
      gm__note(pf, "@", 1);
    }
    return;
  }
  /* A public prefix is noted itself, not its market: "m.x" wants no other
     event of m. */
  if (gm__public(p, n)) gm__note(pf, p, strlen(p));
  if (pf->nauds >= pf->nbuckets) gm__aud_grow(pf);
  gm__aud **slot = gm__aud_slot(pf, p, n);
  if (!*slot) {
    gm__aud *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->key = strndup(p, n);
    if (!a->key) abort();
    *slot = a;
    pf->nauds++;
    if (!gm__public(p, n)) gm__note(pf, p, n);
  } else /* two prefixes of one audience: listed once */
    for (size_t i = 0; i < c->nmemb; i++)
      if (c->memb[i]->a == *slot) {
        c->memb[i]->refs++;
        return;
      }
  gm__memb *m = calloc(1, sizeof *m);
  if (!m) abort();
  m->a = *slot;
  m->c = c;
  m->refs = 1;
  m->pos = m->a->n;
  GM__PUSH(m->a->members, m->a->n, m->a->cap, m);
  GM__PUSH(c->memb, c->nmemb, c->capmemb, m);
}

/* Takes one kept prefix p of c out of the index. */
static void gm__index_del(gm__privfeed *pf, gm__pconn *c, const char *p) {
  size_t n = gm__aud_len(p, strlen(p));
  if (!n && gm__public(p, strlen(p))) {
    if (c->npwide == 1)
      gm__pwide_del(pf, c);
    else if (c->npwide)
      c->npwide--;
    return;
  }
  if (!n) {
    if (c->nwide == 1)
      gm__wide_del(pf, c);
    else if (c->nwide)
      c->nwide--;
    return;
  }
  gm__aud *a = pf->nbuckets ? *gm__aud_slot(pf, p, n) : NULL;
  for (size_t i = 0; a && i < c->nmemb; i++)
    if (c->memb[i]->a == a) {
      if (--c->memb[i]->refs == 0) gm__memb_del(pf, c, i);
      return;
    }
}

/* Takes c out of the index. */
static void gm__conn_unindex(gm__privfeed *pf, gm__pconn *c) {
  if (c->nwide) gm__wide_del(pf, c);
  if (c->npwide) gm__pwide_del(pf, c);
  while (c->nmemb) gm__memb_del(pf, c, c->nmemb - 1);
}

/* Puts c into the index afresh, as all its subscriptions say. */
static void gm__conn_index(gm__privfeed *pf, gm__pconn *c) {
  gm__conn_unindex(pf, c);
  for (size_t i = 0; i < c->nsubs; i++)
    for (size_t j = 0; j < c->subs[i].napplied; j++)
      gm__index_add(pf, c, c->subs[i].applied[j]);
}

/* ---- connections ---- */

static void gm__pconn_free(gm__pconn *c) {
  for (size_t i = 0; i < c->nsubs; i++) {
    free(c->subs[i].req);
    for (size_t j = 0; j < c->subs[i].napplied; j++)
      free(c->subs[i].applied[j]);
    free(c->subs[i].applied);
  }
  free(c->subs);
  free(c->subtab);
  free(c->who);
  free(c->key);
  free(c->roles);
  for (size_t i = 0; i < c->nmemb; i++) free(c->memb[i]);
  free(c->memb);
  free(c);
}

/* ---- a connection's subscriptions by hash ---- */

#define GM__SUBTAB (2 * GM_PRIVFEED_MAX_SUBS) /* a power of two */
#define GM__TOMB 0xffffu
_Static_assert((GM__SUBTAB & (GM__SUBTAB - 1)) == 0 && GM__SUBTAB < GM__TOMB,
               "GM__SUBTAB must be a power of two below GM__TOMB");

/* The slot holding subscription i of c. */
static size_t gm__subtab_slot(const gm__pconn *c, size_t i) {
  size_t j = c->subs[i].h & (GM__SUBTAB - 1);
  while (c->subtab[j] != i + 1) j = (j + 1) & (GM__SUBTAB - 1);
  return j;
}

static void gm__subtab_put(gm__pconn *c, size_t i) {
  size_t j = c->subs[i].h & (GM__SUBTAB - 1);
  while (c->subtab[j] && c->subtab[j] != GM__TOMB)
    j = (j + 1) & (GM__SUBTAB - 1);
  if (c->subtab[j] == GM__TOMB) c->ntomb--;
  c->subtab[j] = (uint16_t)(i + 1);
}

/* Adds subscription i (the last) of c to its table. */
static void gm__subtab_add(gm__pconn *c, size_t i) {
  if (!c->subtab) {
    c->subtab = calloc(GM__SUBTAB, sizeof *c->subtab);
    if (!c->subtab) abort();
  }
  gm__subtab_put(c, i);
}

/* Frees subscription i of c, moving the last into its place (its kept
   prefixes already out of the index, or to be re-indexed at once). */
static void gm__psub_drop(gm__pconn *c, size_t i) {
  gm__psub s = c->subs[i];
  size_t last = c->nsubs - 1;
  c->subtab[gm__subtab_slot(c, i)] = GM__TOMB;
  c->ntomb++;
  if (i != last) c->subtab[gm__subtab_slot(c, last)] = (uint16_t)(i + 1);
  c->subs[i] = c->subs[--c->nsubs];
  /* Tombstones make a search longer: past half the live ones' room, the
     table is made again from the live ones. */
  if (c->ntomb > GM__SUBTAB / 4) {
    memset(c->subtab, 0, GM__SUBTAB * sizeof *c->subtab);
    c->ntomb = 0;
    for (size_t k = 0; k < c->nsubs; k++) gm__subtab_put(c, k);
  }
  free(s.req);
  for (size_t j = 0; j < s.napplied; j++) free(s.applied[j]);
  free(s.applied);
}

/* The bucket of routing id rid[0..n) (pf->nrids > 0). */
static gm__pconn **gm__rid_bucket(gm__privfeed *pf, const void *rid, size_t n) {
  return &pf->rids[gm__hash_update(GM__HASH_INIT, rid, n) & (pf->nrids - 1)];
}

/* The bucket of the connections on fd (pf->nrids > 0). */
static gm__pconn **gm__fd_bucket(gm__privfeed *pf, int fd) {
  return &pf->fds[gm__hash_update(GM__HASH_INIT, &fd, sizeof fd) &
                  (pf->nrids - 1)];
}

/* Puts c into both tables' buckets. */
static void gm__conn_hash(gm__privfeed *pf, gm__pconn *c) {
  gm__pconn **b = gm__rid_bucket(pf, c->rid, c->rid_len);
  c->hnext = *b;
  *b = c;
  b = gm__fd_bucket(pf, c->fd);
  c->fnext = *b;
  *b = c;
}

/* A connection with nothing subscribed yet, added to pf's list. */
static gm__pconn *gm__conn_new(gm__privfeed *pf, const void *rid,
                               size_t rid_len, int fd, const char *who,
                               const char *key, const char *roles,
                               int64_t now_ms) {
  gm__pconn *c = calloc(1, sizeof *c);
  if (!c) abort();
  memcpy(c->rid, rid, rid_len);
  c->rid_len = rid_len;
  c->fd = fd;
  c->acc = fd >= 0 && (size_t)fd < pf->nfd ? pf->fd_acc[fd] : 0;
  c->who = who ? strdup(who) : NULL;
  c->key = key && *key ? strdup(key) : NULL;
  c->roles = strdup(roles ? roles : "");
  if (!c->roles) abort();
  c->lease_ms = now_ms + GM_PRIVFEED_LEASE_MS;
  if (pf->nconns == pf->capconns) {
    pf->capconns = pf->capconns ? 2 * pf->capconns : 16;
    pf->conns = realloc(pf->conns, pf->capconns * sizeof *pf->conns);
    if (!pf->conns) abort();
  }
  c->idx = pf->nconns;
  pf->conns[pf->nconns++] = c;
  if (pf->nconns > pf->nrids) { /* one connection a bucket at most, on
                                   average: rehash into twice as many */
    free(pf->rids);
    free(pf->fds);
    pf->nrids = pf->nrids ? 2 * pf->nrids : 64;
    pf->rids = calloc(pf->nrids, sizeof *pf->rids);
    pf->fds = calloc(pf->nrids, sizeof *pf->fds);
    if (!pf->rids || !pf->fds) abort();
    for (size_t i = 0; i < pf->nconns; i++) gm__conn_hash(pf, pf->conns[i]);
  } else
    gm__conn_hash(pf, c);
  atomic_store(&pf->held, pf->nconns);
  return c;
}

static void gm__conn_remove(gm__privfeed *pf, size_t i) {
  gm__pconn *c = pf->conns[i];
  gm__conn_unindex(pf, c);
  gm__pconn **b = gm__rid_bucket(pf, c->rid, c->rid_len);
  while (*b != c) b = &(*b)->hnext;
  *b = c->hnext;
  b = gm__fd_bucket(pf, c->fd);
  while (*b != c) b = &(*b)->fnext;
  *b = c->fnext;
  gm__pconn_free(c);
  pf->conns[i] = pf->conns[--pf->nconns];
  if (i < pf->nconns) pf->conns[i]->idx = i;
  atomic_store(&pf->held, pf->nconns);
}

static gm__pconn *gm__conn_find(gm__privfeed *pf, const void *rid, size_t n) {
  if (!pf->nrids) return NULL;
  gm__pconn *c = *gm__rid_bucket(pf, rid, n);
  while (c && (c->rid_len != n || memcmp(c->rid, rid, n) != 0)) c = c->hnext;
  return c;
}

/* ---- registry answers for new connections ---- */

static void gm__rc_clear(gm__privfeed *pf) {
  for (size_t i = 0; pf->nrc && i < GM__RC_SLOTS; i++)
    if (pf->rc[i].key[0]) {
      free(pf->rc[i].owner);
      free(pf->rc[i].roles);
      pf->rc[i].key[0] = 0;
      pf->nrc--;
    }
}

/* The slot of key (40 Z85 characters): its answer, or the free slot where
   it goes. */
static gm__rcache *gm__rc_slot(gm__privfeed *pf, const char *key) {
  if (!pf->rc) {
    pf->rc = calloc(GM__RC_SLOTS, sizeof *pf->rc);
    if (!pf->rc) abort();
  }
  size_t j = gm__hash(key) & (GM__RC_SLOTS - 1);
  while (pf->rc[j].key[0] && strcmp(pf->rc[j].key, key) != 0)
    j = (j + 1) & (GM__RC_SLOTS - 1);
  return &pf->rc[j];
}

/* key's answer asked in this burst, or NULL. */
static const gm__rcache *gm__rc_find(gm__privfeed *pf, const char *key) {
  if (!pf->nrc || strlen(key) != 40) return NULL;
  const gm__rcache *e = gm__rc_slot(pf, key);
  return e->key[0] ? e : NULL;
}

/* Keeps key's answer (a key that is not 40 characters is never kept). */
static void gm__rc_put(gm__privfeed *pf, const char *key, const char *owner,
                       const char *roles) {
  if (strlen(key) != 40) return;
  if (pf->nrc >= GM__RC_MAX) gm__rc_clear(pf);
  gm__rcache *e = gm__rc_slot(pf, key);
  if (e->key[0]) {
    free(e->owner);
    free(e->roles);
  } else
    pf->nrc++;
  memcpy(e->key, key, 41);
  e->owner = owner ? strdup(owner) : NULL;
  e->roles = strdup(roles ? roles : "");
  if ((owner && !e->owner) || !e->roles) abort();
}

/* Printable ASCII copy of a client's bytes, for messages (valid UTF-8). */
static void gm__printable(char *out, size_t cap, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 4 < cap; i++)
    out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  if (n && o + 4 >= cap) memcpy(out + o, "...", 3), o += 3;
  out[o] = 0;
}

/* Tells the client why a subscription was not kept: ["!", prefix, why]. */
static void gm__refuse(gm__privfeed *pf, const void *rid, size_t rid_len,
                       const char *req, size_t len, const char *who,
                       const char *why, int64_t now_ms) {
  /* Nothing more when the routing id fails (gone, or its queue full): the
     next frame would be taken for another routing id. */
  if (zmq_send(pf->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
    goto log;
  zmq_send(pf->router, "!", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(pf->router, req, len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_send(pf->router, why, strlen(why), ZMQ_DONTWAIT);
log:
  pf->refused++;
  if (now_ms - pf->log_ms < GM__LOG_EVERY_MS) return;
  char shown[80];
  gm__printable(shown, sizeof shown, req, len);
  gm__log(GM_LOG_WARN, "feed",
          "refused private subscription \"%s\" of %s: %s (%lu refused, %lu "
          "events dropped for full queues since the last such line)",
          shown, who ? who : "a development client", why, pf->refused,
          pf->dropped);
  pf->log_ms = now_ms;
  pf->refused = pf->dropped = 0;
}

/* The index of c's subscription req[0..len), or c->nsubs when none. */
static size_t gm__psub_find(const gm__pconn *c, const char *req, size_t len) {
  if (!c->subtab) return c->nsubs;
  uint64_t h = gm__hash_update(GM__HASH_INIT, req, len);
  for (size_t j = h & (GM__SUBTAB - 1); c->subtab[j];
       j = (j + 1) & (GM__SUBTAB - 1)) {
    if (c->subtab[j] == GM__TOMB) continue;
    const gm__psub *s = &c->subs[c->subtab[j] - 1];
    if (s->h == h && s->len == len && memcmp(s->req, req, len) == 0)
      return c->subtab[j] - 1u;
  }
  return c->nsubs;
}

/* Remembers a connection refused for a revoked key, so its next messages
   (a client resends its subscriptions every few seconds) are refused
   without a Redis round trip each. */
static void gm__conn_add_revoked(gm__privfeed *pf, const void *rid,
                                 size_t rid_len, int fd, const char *who,
                                 int64_t now_ms) {
  gm__conn_new(pf, rid, rid_len, fd, who, NULL, "", now_ms)->revoked = 1;
}

/* One message from a subscriber: [routing id, 1|0 + prefix]. */
static void gm__privfeed_handle(gm__privfeed *pf, zmq_msg_t *rid,
                                zmq_msg_t *body, int64_t now_ms) {
  const char *d = zmq_msg_data(body);
  size_t n = zmq_msg_size(body);
  const char *who = NULL, *roles = NULL, *key = NULL;
  if (!pf->dev) {
    /* Set by the ZAP handler for every admitted CURVE connection; a client
       cannot supply its own (ZAP properties win over the client's).  X-Key
       is absent for a bootstrap admin key (nothing to re-check). */
    who = zmq_msg_gets(body, "User-Id");
    roles = zmq_msg_gets(body, "X-Roles");
    key = zmq_msg_gets(body, "X-Key");
    if (!who || !*who) return;
  }
  const void *id = zmq_msg_data(rid);
  size_t idn = zmq_msg_size(rid);
  if (n < 1 || (d[0] != 0 && d[0] != 1) || idn == 0 || idn > 255) return;
  const char *req = d + 1;
  size_t len = n - 1;
  int fd = zmq_msg_get(body, ZMQ_SRCFD);
  int known = fd >= 0 && (size_t)fd < pf->nfd;
  if (known && pf->fd_disc[fd] >= pf->fd_acc[fd]) return; /* sender gone */
  /* With participants to keep apart, a connection is named by the routing
     id the ROUTER gave it, which no later connection gets. */
  if (!pf->dev && !gm__rid_assigned(id, idn)) {
    if (d[0] == 1) gm__refuse(pf, id, idn, req, len, who, gm__rid_why, now_ms);
    return;
  }
  gm__pconn *c = gm__conn_find(pf, id, idn);
  /* In development mode a client may choose its routing id: a connection
     that reuses one whose owner went away starts afresh (a disconnect
     already forgets its subscriptions, see gm__privfeed_read_monitor; this
     covers a race with it). */
  if (c && (c->fd != fd || (known && c->acc != pf->fd_acc[fd]) ||
            (!pf->dev && (!c->who || strcmp(c->who, who) != 0)))) {
    gm__conn_remove(pf, c->idx);
    c = NULL;
  }

  if (c && c->revoked) {
    c->lease_ms = now_ms + GM_PRIVFEED_LEASE_MS;
    if (d[0] == 1) {
      char why[256];
      gm__revoked_why(why, sizeof why, who);
      gm__refuse(pf, id, idn, req, len, who, why, now_ms);
    }
    return;
  }
  /* Roles as last re-checked, not as admitted at the handshake. */
  if (c) roles = c->roles;
  if (d[0] == 0) { /* unsubscribe: drop exactly what that prefix kept */
    if (!c) return;
    c->lease_ms = now_ms + GM_PRIVFEED_LEASE_MS;
    size_t i = gm__psub_find(c, req, len);
    if (i < c->nsubs) {
      for (size_t j = 0; j < c->subs[i].napplied; j++)
        gm__index_del(pf, c, c->subs[i].applied[j]);
      gm__psub_drop(c, i);
    }
    if (c->nsubs == 0) gm__conn_remove(pf, c->idx);
    return;
  }
  if (memchr(req, 0, len) || len > GM_PRIVFEED_MAX_PREFIX) {
    gm__refuse(pf, id, idn, req, len, who,
               "a prefix must be at most 255 bytes without NUL (no topic is "
               "longer or holds one)",
               now_ms);
    return;
  }
  if (c) {
    c->lease_ms = now_ms + GM_PRIVFEED_LEASE_MS;
    if (gm__psub_find(c, req, len) < c->nsubs)
      return; /* sent again to keep the lease: nothing new */
    if (c->nsubs >= GM_PRIVFEED_MAX_SUBS) {
      gm__refuse(
          pf, id, idn, req, len, who,
          "a connection holds at most 256 prefixes (private and public); "
          "unsubscribe some or use a shorter prefix",
          now_ms);
      return;
    }
  }
  /* A new connection: its key as the registry said once this burst was
     read (gm__privfeed_read asked for the burst's new keys at once), so one
     revoked since the handshake (or since its subscriptions were dropped
     for it) gets nothing.  Not asked then (a connection that ended earlier
     in this burst and came back): asked now.  Redis unreachable: the
     handshake's word stands. */
  if (!c && pf->lookup && key && *key) {
    const gm__rcache *e = gm__rc_find(pf, key);
    if (!e && !pf->redis_failed) {
      const char *keys[1] = {key};
      char *owner = NULL, *now_roles = NULL;
      if (pf->lookup(pf->lookup_ctx, keys, 1, &owner, &now_roles) == 0) {
        gm__rc_put(pf, key, owner, now_roles);
        e = gm__rc_find(pf, key);
      } else
        pf->redis_failed = 1;
    }
    if (e) {
      if (!e->owner || strcmp(e->owner, who) != 0) {
        char why[256];
        gm__revoked_why(why, sizeof why, who);
        gm__refuse(pf, id, idn, req, len, who, why, now_ms);
        gm__conn_add_revoked(pf, id, idn, fd, who, now_ms);
        return;
      }
      roles = e->roles;
    }
  }
  char *applied[64];
  size_t na;
  if (gm__public(req, len)) { /* a public prefix: anyone may hold it */
    applied[0] = strndup(req, len);
    if (!applied[0]) abort();
    na = 1;
  } else
    na = gm__privfeed_allowed(pf->dev ? NULL : who, roles, req, len, applied,
                              64);
  if (na == 0) {
    char why[512];
    snprintf(why, sizeof why,
             "participant %s may see only private topics starting with "
             "\"@p:%s \" or \"@r:<role> \" for a role it holds (%s); "
             "subscribe \"@\" for all of them; a prefix not starting "
             "with \"@\" is a public one",
             who, who, roles && *roles ? roles : "none");
    gm__refuse(pf, id, idn, req, len, who, why, now_ms);
    return;
  }
  if (!c) c = gm__conn_new(pf, id, idn, fd, who, key, roles, now_ms);
  if (c->nsubs == c->capsubs) {
    c->capsubs = c->capsubs ? 2 * c->capsubs : 4;
    c->subs = realloc(c->subs, c->capsubs * sizeof *c->subs);
    if (!c->subs) abort();
  }
  gm__psub *s = &c->subs[c->nsubs++];
  s->req = strndup(req, len);
  s->len = len;
  s->h = gm__hash_update(GM__HASH_INIT, req, len);
  s->applied = malloc(na * sizeof *s->applied);
  if (!s->req || !s->applied) abort();
  memcpy(s->applied, applied, na * sizeof *applied);
  s->napplied = na;
  gm__subtab_add(c, c->nsubs - 1);
  for (size_t j = 0; j < na; j++) gm__index_add(pf, c, applied[j]);
  /* Counted once indexed and its audiences noted: an event said after
     the count moved reaches it. */
  atomic_fetch_add_explicit(&pf->applied, 1, memory_order_release);
}

/* ---- the socket ---- */

int gm__privfeed_default_endpoint(const char *feed, char *out, size_t n) {
  if (strncmp(feed, "ipc://", 6) == 0) {
    int w = snprintf(out, n, "%s.private", feed);
    return w > 0 && (size_t)w < n ? 0 : -1;
  }
  const char *colon = strrchr(feed, ':');
  char *end;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (strncmp(feed, "tcp://", 6) != 0 || !colon || colon < feed + 6 || *end ||
      port < 1 || port >= 65535)
    return -1;
  int w = snprintf(out, n, "%.*s:%ld", (int)(colon - feed), feed, port + 1);
  return w > 0 && (size_t)w < n ? 0 : -1;
}

gm__privfeed *gm__privfeed_new(void *zctx, const char *endpoint,
                               const char *curve_secret, int queue, char *err,
                               size_t errlen) {
  gm__privfeed *pf = calloc(1, sizeof *pf);
  if (!pf) abort();
  pf->dev = curve_secret == NULL;
  pf->router = zmq_socket(zctx, ZMQ_ROUTER);
  int one = 1, zero = 0;
  /* A subscription is a few bytes: anything far larger drops the peer. */
  int64_t maxmsg = 4096;
  zmq_setsockopt(pf->router, ZMQ_LINGER, &zero, sizeof zero);
  /* Sending to a connection that is gone fails (EHOSTUNREACH) instead of
     vanishing, so its subscriptions are forgotten at once. */
  zmq_setsockopt(pf->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
  zmq_setsockopt(pf->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  if (queue > 0) zmq_setsockopt(pf->router, ZMQ_SNDHWM, &queue, sizeof queue);
  if (curve_secret) {
    zmq_setsockopt(pf->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(pf->router, ZMQ_CURVE_SECRETKEY, curve_secret, 40);
    zmq_setsockopt(pf->router, ZMQ_ZAP_DOMAIN, "greenmarket", 11);
  }
  if (zmq_bind(pf->router, endpoint)) {
    snprintf(err, errlen,
             "cannot bind the private feed %s: %s (set [broker] "
             "private_feed)",
             endpoint, zmq_strerror(zmq_errno()));
    gm__privfeed_destroy(&pf);
    return NULL;
  }
  /* A connection's subscriptions go when it does, before another peer can
     connect under its routing id and be sent what was meant for it. */
  char mon[64];
  snprintf(mon, sizeof mon, "inproc://gm-privfeed-monitor-%p", (void *)pf);
  pf->monitor = zmq_socket(zctx, ZMQ_PAIR);
  if (zmq_socket_monitor(pf->router, mon,
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) ||
      zmq_connect(pf->monitor, mon)) {
    snprintf(err, errlen, "cannot monitor the private feed: %s",
             zmq_strerror(zmq_errno()));
    gm__privfeed_destroy(&pf);
    return NULL;
  }
  return pf;
}

void gm__privfeed_destroy(gm__privfeed **pfp) {
  if (!pfp || !*pfp) return;
  gm__privfeed *pf = *pfp;
  /* The router's monitor stopped first: events it would send while the
     router closes (its connections' DISCONNECTED, CLOSED) to a monitor
     socket already closed are lost in libzmq with their memory
     (LeakSanitizer: an event's 39-byte endpoint frame). */
  if (pf->router && pf->monitor) zmq_socket_monitor(pf->router, NULL, 0);
  if (pf->monitor) {
    int zero = 0;
    zmq_setsockopt(pf->monitor, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(pf->monitor);
  }
  if (pf->router) zmq_close(pf->router);
  for (size_t i = 0; i < pf->nconns; i++) gm__pconn_free(pf->conns[i]);
  free(pf->conns);
  free(pf->rids);
  free(pf->fds);
  for (size_t i = 0; i < pf->nbuckets; i++)
    for (gm__aud *a = pf->buckets[i], *next; a; a = next) {
      next = a->next;
      free(a->key);
      free(a->members);
      free(a);
    }
  free(pf->buckets);
  free(pf->wide);
  free(pf->pwide);
  free(pf->targets);
  for (size_t i = 0; i < pf->seq_cap; i++) free(pf->seq_keys[i]);
  free(pf->seq_keys);
  free(pf->seq_vals);
  free(pf->fd_acc);
  free(pf->fd_disc);
  gm__rc_clear(pf);
  free(pf->rc);
  free(pf);
  *pfp = NULL;
}

void *gm__privfeed_socket(gm__privfeed *pf) {
  return pf->router;
}

void *gm__privfeed_monitor_socket(gm__privfeed *pf) {
  return pf->monitor;
}

void gm__privfeed_read_monitor(gm__privfeed *pf) {
  for (;;) {
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, pf->monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&ev);
      zmq_msg_close(&addr);
      return;
    }
    if (zmq_msg_more(&ev)) zmq_msg_recv(&addr, pf->monitor, 0);
    /* [event: u16, value: u32 (the fd)], then the endpoint. */
    if (zmq_msg_size(&ev) == 6) {
      uint16_t event;
      uint32_t fd;
      memcpy(&event, zmq_msg_data(&ev), 2);
      memcpy(&fd, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
      if (event == ZMQ_EVENT_ACCEPTED && fd < (1u << 24)) {
        if (fd >= pf->nfd) {
          size_t n = pf->nfd ? pf->nfd : 64;
          while (n <= fd) n *= 2;
          pf->fd_acc = realloc(pf->fd_acc, n * sizeof *pf->fd_acc);
          pf->fd_disc = realloc(pf->fd_disc, n * sizeof *pf->fd_disc);
          if (!pf->fd_acc || !pf->fd_disc) abort();
          memset(pf->fd_acc + pf->nfd, 0, (n - pf->nfd) * sizeof *pf->fd_acc);
          memset(pf->fd_disc + pf->nfd, 0, (n - pf->nfd) * sizeof *pf->fd_disc);
          pf->nfd = n;
        }
        pf->fd_acc[fd]++;
      }
      if (event == ZMQ_EVENT_DISCONNECTED && fd < pf->nfd) pf->fd_disc[fd]++;
      /* Every connection on fd goes (one not on it shares its bucket). */
      if (event == ZMQ_EVENT_DISCONNECTED && pf->nrids)
        for (gm__pconn *c = *gm__fd_bucket(pf, (int)fd), *next; c; c = next) {
          next = c->fnext;
          pf->disc_looked++;
          if (c->fd == (int)fd) gm__conn_remove(pf, c->idx);
        }
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
  }
}

/* Asks the registry at once for the keys of the new connections among
   msgs[0..n) (their first subscription), so that handling them costs one
   pipelined round trip, not one each. */
static void gm__privfeed_ask_new(gm__privfeed *pf, zmq_msg_t (*msgs)[2],
                                 const int *ok, int n) {
  if (pf->dev || !pf->lookup || pf->redis_failed) return;
  const char **keys = malloc((size_t)n * sizeof *keys);
  char **owners = malloc((size_t)n * sizeof *owners);
  char **roles = malloc((size_t)n * sizeof *roles);
  if (!keys || !owners || !roles) abort();
  size_t nk = 0;
  for (int i = 0; i < n; i++) {
    if (!ok[i] || zmq_msg_size(&msgs[i][1]) < 1 ||
        ((const char *)zmq_msg_data(&msgs[i][1]))[0] != 1)
      continue;
    const char *key = zmq_msg_gets(&msgs[i][1], "X-Key");
    const char *who = zmq_msg_gets(&msgs[i][1], "User-Id");
    size_t idn = zmq_msg_size(&msgs[i][0]);
    int fd = zmq_msg_get(&msgs[i][1], ZMQ_SRCFD);
    if (!key || strlen(key) != 40 || !who || gm__rc_find(pf, key) ||
        !gm__rid_assigned(zmq_msg_data(&msgs[i][0]), idn) ||
        (fd >= 0 && (size_t)fd < pf->nfd && pf->fd_disc[fd] >= pf->fd_acc[fd]))
      continue; /* refused, or its sender gone: no look-up */
    gm__pconn *c = idn && idn <= 255
                       ? gm__conn_find(pf, zmq_msg_data(&msgs[i][0]), idn)
                       : NULL;
    if (c && c->fd == fd && c->who && strcmp(c->who, who) == 0 &&
        (fd < 0 || (size_t)fd >= pf->nfd || c->acc == pf->fd_acc[fd]))
      continue; /* a connection already known: re-checked each second */
    size_t j = 0;
    while (j < nk && strcmp(keys[j], key) != 0) j++;
    if (j == nk) keys[nk++] = key;
  }
  if (nk) {
    if (pf->nrc + nk > GM__RC_MAX) gm__rc_clear(pf);
    if (pf->lookup(pf->lookup_ctx, keys, nk, owners, roles) == 0)
      for (size_t j = 0; j < nk; j++)
        gm__rc_put(pf, keys[j], owners[j], roles[j]);
    else
      pf->redis_failed = 1; /* the handshake's word, until the re-check */
  }
  free(keys);
  free(owners);
  free(roles);
}

int gm__privfeed_read(gm__privfeed *pf, int burst, int64_t now_ms) {
  if (burst <= 0) return 0;
  zmq_msg_t(*msgs)[2] = malloc((size_t)burst * sizeof *msgs);
  int *ok = malloc((size_t)burst * sizeof *ok);
  if (!msgs || !ok) abort();
  int done = 0;
  for (; done < burst; done++) {
    zmq_msg_t *rid = &msgs[done][0], *body = &msgs[done][1];
    zmq_msg_init(rid);
    zmq_msg_init(body);
    if (zmq_msg_recv(rid, pf->router, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(rid);
      zmq_msg_close(body);
      break;
    }
    ok[done] = zmq_msg_more(rid) &&
               zmq_msg_recv(body, pf->router, ZMQ_DONTWAIT) >= 0 &&
               !zmq_msg_more(body);
    /* Drop the rest of a message of more frames than a subscription has. */
    zmq_msg_t rest;
    zmq_msg_init(&rest);
    int more = zmq_msg_more(body);
    while (more && zmq_msg_recv(&rest, pf->router, ZMQ_DONTWAIT) >= 0)
      more = zmq_msg_more(&rest);
    zmq_msg_close(&rest);
  }
  if (done) {
    /* Disconnects and accepts up to now: a disconnect of a connection
       before these messages' own (each was accepted before it sent) is
       applied before them, so none of them lands in a gone connection's
       record that shares its routing id and fd. */
    gm__privfeed_read_monitor(pf);
    gm__rc_clear(pf); /* answers serve the burst they were asked for */
    gm__privfeed_ask_new(pf, msgs, ok, done);
  }
  for (int i = 0; i < done; i++) {
    if (ok[i]) gm__privfeed_handle(pf, &msgs[i][0], &msgs[i][1], now_ms);
    zmq_msg_close(&msgs[i][0]);
    zmq_msg_close(&msgs[i][1]);
  }
  free(msgs);
  free(ok);
  return done;
}

void gm__privfeed_expire(gm__privfeed *pf, int64_t now_ms) {
  for (size_t i = pf->nconns; i-- > 0;)
    if (pf->conns[i]->lease_ms < now_ms) gm__conn_remove(pf, i);
  /* Drops are said even when no refusal comes to carry them. */
  if (pf->dropped && now_ms - pf->drop_log_ms >= GM__LOG_EVERY_MS) {
    gm__log(GM_LOG_WARN, "feed",
            "private feed: %lu events dropped since the last such line: their "
            "subscribers read slower than events came and each had [broker] "
            "feed_queue events waiting (they see the gap in their seq); "
            "raise feed_queue or have them read faster",
            pf->dropped);
    pf->drop_log_ms = now_ms;
    pf->dropped = 0;
  }
}

/* ---- re-checking keys and roles ---- */

/* The key is no longer c's participant's: every subscription goes, each
   with its reason, and c is kept as revoked (what it asks next is refused
   without a lookup) until its lease runs out or it disconnects. */
static void gm__pconn_revoke(gm__privfeed *pf, gm__pconn *c, int64_t now_ms) {
  char why[256];
  gm__revoked_why(why, sizeof why, c->who);
  gm__log(GM_LOG_WARN, "feed",
          "private feed: a connection of participant %s dropped its %zu "
          "subscriptions: its key is no longer registered to it",
          c->who, c->nsubs);
  while (c->nsubs) {
    gm__refuse(pf, c->rid, c->rid_len, c->subs[0].req, strlen(c->subs[0].req),
               c->who, why, now_ms);
    gm__psub_drop(c, 0);
  }
  gm__conn_index(pf, c);
  c->revoked = 1;
}

/* c's participant holds `roles` now: each subscription keeps what they let
   it see; one they let see nothing goes, with its reason. */
static void gm__pconn_reapply(gm__privfeed *pf, gm__pconn *c, const char *roles,
                              int64_t now_ms) {
  char *r = strdup(roles);
  if (!r) abort();
  free(c->roles);
  c->roles = r;
  for (size_t i = c->nsubs; i-- > 0;) {
    gm__psub *s = &c->subs[i];
    if (gm__public(s->req, s->len)) continue; /* roles do not matter */
    char *applied[64];
    size_t na = gm__privfeed_allowed(c->who, c->roles, s->req, strlen(s->req),
                                     applied, 64);
    if (na == 0) {
      char why[512];
      snprintf(why, sizeof why,
               "participant %s no longer holds a role that may see this "
               "prefix (roles now: %s)",
               c->who, *c->roles ? c->roles : "none");
      gm__refuse(pf, c->rid, c->rid_len, s->req, strlen(s->req), c->who, why,
                 now_ms);
      gm__psub_drop(c, i);
      continue;
    }
    for (size_t j = 0; j < s->napplied; j++) free(s->applied[j]);
    free(s->applied);
    s->applied = malloc(na * sizeof *s->applied);
    if (!s->applied) abort();
    memcpy(s->applied, applied, na * sizeof *applied);
    s->napplied = na;
  }
  gm__conn_index(pf, c);
}

void gm__privfeed_set_interest(gm__privfeed *pf, gm__interest *interest) {
  pf->interest = interest;
}

void gm__privfeed_set_lookup(gm__privfeed *pf, gm__privfeed_lookup lookup,
                             void *ctx) {
  pf->lookup = lookup;
  pf->lookup_ctx = ctx;
}

void gm__privfeed_recheck(gm__privfeed *pf, int64_t now_ms) {
  pf->redis_failed = 0; /* each re-check tries Redis again */
  if (pf->dev || !pf->lookup || pf->nconns == 0) return;
  const char **keys = malloc(pf->nconns * sizeof *keys);
  gm__pconn **of = malloc(pf->nconns * sizeof *of);
  char **owners = malloc(pf->nconns * sizeof *owners);
  char **roles = malloc(pf->nconns * sizeof *roles);
  if (!keys || !of || !owners || !roles) abort();
  size_t n = 0;
  for (size_t i = 0; i < pf->nconns; i++)
    if (pf->conns[i]->key && !pf->conns[i]->revoked) {
      of[n] = pf->conns[i];
      keys[n++] = pf->conns[i]->key;
    }
  /* Redis unreachable: nothing is known, nothing changes until it is. */
  if (n && pf->lookup(pf->lookup_ctx, keys, n, owners, roles) == 0)
    for (size_t i = 0; i < n; i++) {
      gm__pconn *c = of[i];
      if (!owners[i] || strcmp(owners[i], c->who) != 0)
        gm__pconn_revoke(pf, c, now_ms);
      else if (strcmp(roles[i] ? roles[i] : "", c->roles) != 0)
        gm__pconn_reapply(pf, c, roles[i] ? roles[i] : "", now_ms);
    }
  /* A connection a role change left with no subscription is forgotten, as
     after its last unsubscribe; a revoked one stays to be refused. */
  for (size_t i = pf->nconns; i-- > 0;)
    if (pf->conns[i]->nsubs == 0 && !pf->conns[i]->revoked)
      gm__conn_remove(pf, i);
  free(keys);
  free(of);
  free(owners);
  free(roles);
}

/* ---- delivery ---- */

uint64_t gm__privfeed_next_seq(gm__privfeed *pf, const char *topic,
                               size_t len) {
  const char *sp = memchr(topic, ' ', len);
  size_t kn = sp ? (size_t)(sp - topic) + 1 : len;
  if (pf->seq_n * 2 >= pf->seq_cap) {
    size_t old = pf->seq_cap;
    char **keys = pf->seq_keys;
    uint64_t *vals = pf->seq_vals;
    pf->seq_cap = old && old < GM__SEQ_MAX ? old * 2 : 64;
    pf->seq_keys = calloc(pf->seq_cap, sizeof *pf->seq_keys);
    pf->seq_vals = calloc(pf->seq_cap, sizeof *pf->seq_vals);
    if (!pf->seq_keys || !pf->seq_vals) abort();
    size_t kept = 0;
    for (size_t i = 0; i < old; i++) {
      if (!keys[i]) continue;
      if (old >= GM__SEQ_MAX) { /* full: start over */
        free(keys[i]);
        continue;
      }
      size_t j = gm__hash(keys[i]) & (pf->seq_cap - 1);
      while (pf->seq_keys[j]) j = (j + 1) & (pf->seq_cap - 1);
      pf->seq_keys[j] = keys[i];
      pf->seq_vals[j] = vals[i];
      kept++;
    }
    pf->seq_n = kept;
    free(keys);
    free(vals);
  }
  char key[GM_PRIVFEED_MAX_PREFIX + 1];
  if (kn > GM_PRIVFEED_MAX_PREFIX) kn = GM_PRIVFEED_MAX_PREFIX;
  memcpy(key, topic, kn);
  key[kn] = 0;
  size_t j = gm__hash(key) & (pf->seq_cap - 1);
  while (pf->seq_keys[j] && strcmp(pf->seq_keys[j], key) != 0)
    j = (j + 1) & (pf->seq_cap - 1);
  if (!pf->seq_keys[j]) {
    pf->seq_keys[j] = strdup(key);
    if (!pf->seq_keys[j]) abort();
    pf->seq_n++;
  }
  return ++pf->seq_vals[j];
}

/* Non-zero when one of c's kept prefixes starts the topic. */
static int gm__pconn_wants(const gm__pconn *c, const char *topic, size_t n) {
  int pub = gm__public(topic, n);
  for (size_t i = 0; i < c->nsubs; i++)
    for (size_t j = 0; j < c->subs[i].napplied; j++) {
      const char *p = c->subs[i].applied[j];
      /* A public topic matches public prefixes only ("" and "@" are
         every private topic), "*" every public topic. */
      if (gm__public(p, strlen(p)) != pub) continue;
      if ((pub && strcmp(p, "*") == 0) || gm__starts(topic, n, p)) return 1;
    }
  return 0;
}

void gm__privfeed_deliver(gm__privfeed *pf, const void *topic, size_t tlen,
                          const void *body, size_t blen) {
  /* The audience's connections and the wide ones, not every connection:
     the cost follows who may see the event. */
  size_t n = 0, an = gm__aud_len(topic, tlen);
  gm__aud *a = an && pf->nbuckets ? *gm__aud_slot(pf, topic, an) : NULL;
  int pub = gm__public(topic, tlen);
  gm__pconn **wide = pub ? pf->pwide : pf->wide;
  size_t nw = pub ? pf->npwide : pf->nwide;
  size_t need = (a ? a->n : 0) + nw;
  if (need > pf->captargets) {
    pf->captargets = need * 2;
    free(pf->targets);
    pf->targets = malloc(pf->captargets * sizeof *pf->targets);
    if (!pf->targets) abort();
  }
  /* A wide connection is offered the event once, from the wide list. */
  for (size_t i = 0; a && i < a->n; i++)
    if (!(pub ? a->members[i]->c->npwide : a->members[i]->c->nwide))
      pf->targets[n++] = a->members[i]->c;
  for (size_t i = 0; i < nw; i++) pf->targets[n++] = wide[i];
  int gone = 0;
  for (size_t i = 0; i < n; i++) {
    gm__pconn *c = pf->targets[i];
    if (!gm__pconn_wants(c, topic, tlen)) continue;
    /* The routing id goes first; with ZMQ_ROUTER_MANDATORY it fails at
       once for a connection that is gone, and nothing else is queued. */
    if (zmq_send(pf->router, c->rid, c->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
        0) {
      if (zmq_errno() == EHOSTUNREACH)
        c->gone = gone = 1;
      else
        pf->dropped++; /* its queue is full: a slow subscriber misses it */
      continue;
    }
    zmq_send(pf->router, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(pf->router, body, blen, ZMQ_DONTWAIT);
  }
  /* The gone ones are among this delivery's (each there once). */
  if (gone)
    for (size_t i = 0; i < n; i++)
      if (pf->targets[i]->gone) gm__conn_remove(pf, pf->targets[i]->idx);
}

uint64_t gm__privfeed_disconnect_looks(const gm__privfeed *pf) {
  return pf->disc_looked;
}

size_t gm__privfeed_connections(const gm__privfeed *pf) {
  return pf ? atomic_load(&((gm__privfeed *)pf)->held) : 0;
}

uint64_t gm__privfeed_subscribes(const gm__privfeed *pf) {
  return pf ? atomic_load_explicit(&((gm__privfeed *)pf)->applied,
                                   memory_order_acquire)
            : 0;
}
