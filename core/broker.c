#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "clock.h"
#include "core_methods.h"
#include "deadlines.h"
#include "frames.h"
#include "host.h"
#include "identity.h"
#include "lease.h"
#include "ledger.h"
#include "ledger_route.h"
#include "loader.h"
#include "log.h"
#include "market.h"
#include "metrics.h"
#include "privfeed.h"
#include "publisher.h"
#include "redis.h"
#include "roles.h"
#include "settle.h"
#include "timers.h"
#include "timesync.h"
#include "worker.h"

#define WORKERS_ENDPOINT "inproc://gm-workers"
#define EVENTS_ENDPOINT "inproc://gm-events"
/* Messages the main thread moves per socket per wake-up, at most. */
#define BURST 256

struct gm__broker {
  const gm__config *cfg;  /* not owned */
  char name[128];         /* broker id in events and as settle consumer */
  char *endpoint;         /* client ROUTER endpoint */
  char *feed;             /* PUB endpoint */
  char *private_feed;     /* ROUTER endpoint of private events */
  long n_workers;         /* worker threads */
  long pipeline;          /* requests in flight per worker */
  long max_msg;           /* largest request accepted, bytes */
  long feed_queue;        /* [broker] feed_queue: events per slow subscriber */
  int public_sub;         /* [broker] public_feed_sub: the feed's SUB port */
  int dev_mode;           /* no CURVE: callers say who they are */
  int settle_on;          /* this broker may run the settlement writer
                             ([settle] settle = auto), under the lease */
  long lease_ms;          /* [settle] lease_ms */
  long read_timeout_ms;   /* [settle] read_timeout_ms */
  char *ledger_endpoint;  /* [settle] ledger_endpoint: where we bind */
  char *ledger_advertise; /* what other brokers connect to */
  gm__lease *lease;       /* the settle lease (held or watched) */
  gm__ledger_server *ledger_server; /* answers routed reads when holder */
  gm__ledger_link *timers_link;     /* the timer thread's routed reads */
  gm__ledger_link *deadlines_link;  /* the deadline thread's */
  long settle_batch;                /* entries per settle transaction */
  long settle_linger;       /* ms to gather entries after a small batch */
  long settle_retire_s;     /* [ledger] outbox_retire_s; 0: never */
  long settle_dead_after;   /* [ledger] dead_letter_after */
  char server_secret[41];   /* CURVE secret key (Z85) in curve mode */
  char *redis_unix;         /* [redis] unix, resolved */
  char *redis_host;         /* [redis] host */
  char *redis_cluster;      /* [redis] cluster: seed nodes, or "" */
  gm__redis_addr raddr;     /* the Redis address every thread uses */
  char *ledger_path;        /* [ledger] path, resolved */
  gm__host host;            /* what plugins see behind gm_host_api */
  gm_market **markets;      /* loaded plugins */
  size_t n_markets;         /* how many */
  size_t n_refused;         /* plugin files tried and refused at start */
  size_t n_unread;          /* [market.NAME] sections no plugin can read */
  gm__roles *roles;         /* admin + the markets' roles */
  void *zctx;               /* zmq context */
  gm__worker **workers;     /* n_workers of them (NULL until started) */
  gm__publisher *publisher; /* the feed */
  gm__events *events;       /* every thread's events to the publisher */
  gm__timers *timers;       /* plugin timers */
  gm__deadlines *deadlines; /* plugin deadlines: registry and poller */
  gm__timesync *timesync;   /* the clock kept to Redis's, or NULL */
  int clock_redis;          /* [clock] source = redis (and no manual) */
  int clock_start_set;      /* [testing] clock_start_ms was given */
  long dl_poll_ms;          /* [deadlines] poll_ms */
  long dl_claim_ms;         /* [deadlines] claim_ms */
  long dl_reconcile_s;      /* [deadlines] reconcile_s */
  gm__settler *settler;     /* the outbox drain, when settle_on */
  gm__auth *auth;           /* ZAP handler, in curve mode */
  _Atomic int stop;         /* set by gm__broker_stop, from the signal thread */
  uint64_t started_us;      /* monotonic, for uptime */
  gm__stats core_stats;     /* the "gm" market */
  gm__stats core_method_stats[GM__CORE_METHODS]; /* its methods */
  _Atomic uint64_t bad_frames; /* frames that were no Request */
  gm__metrics *metrics;        /* the HTTP metrics endpoint */
  /* Every Redis connection of the broker's threads (b->raddr.stop): cut
     when a stop takes longer than GM__STOP_GRACE_US (a stalled Redis). */
  gm__redis_stop *redis_stop;
  int own_stop; /* redis_stop is the broker's (else its caller's) */
  int wake_fd;  /* eventfd the serving loop polls: a stop wakes it (or -1) */
  _Atomic int serving; /* run reached its loop: a stop finishes work */
};

/* How long a stop may wait for its threads' Redis commands before it cuts
   their connections: far above the ~200 ms a stop takes while Redis
   answers, far below the 30 s read timeout each thread would wait out. */
#define GM__STOP_GRACE_US 2000000

/* ---- what the other parts of gmd read ---- */

const char *gm__broker_name(const gm__broker *b) {
  return b->name;
}

int gm__broker_dev_mode(const gm__broker *b) {
  return b->dev_mode;
}

size_t gm__broker_markets(const gm__broker *b) {
  return b->n_markets;
}

size_t gm__broker_refused(const gm__broker *b) {
  return b->n_refused;
}

size_t gm__broker_unread_sections(const gm__broker *b) {
  return b->n_unread;
}

gm_market *gm__broker_market(const gm__broker *b, size_t i) {
  return i < b->n_markets ? b->markets[i] : NULL;
}

gm_market *gm__broker_find_market(const gm__broker *b, const char *name) {
  for (size_t i = 0; i < b->n_markets; i++)
    if (strcmp(b->markets[i]->name, name) == 0) return b->markets[i];
  return NULL;
}

const gm__roles *gm__broker_roles(const gm__broker *b) {
  return b->roles;
}

gm__stats *gm__broker_core_stats(gm__broker *b) {
  return &b->core_stats;
}

gm__stats *gm__broker_core_method_stats(gm__broker *b) {
  return b->core_method_stats;
}

long gm__broker_max_message(const gm__broker *b) {
  return b->max_msg;
}

void gm__broker_count_bad_frame(gm__broker *b) {
  atomic_fetch_add(&b->bad_frames, 1);
}

uint64_t gm__broker_bad_frames(const gm__broker *b) {
  return atomic_load(&b->bad_frames);
}

int64_t gm__broker_uptime_ms(const gm__broker *b) {
  return (int64_t)((gm__clock_mono_us() - b->started_us) / 1000u);
}

uint64_t gm__broker_settled(const gm__broker *b) {
  return b->settler ? gm__settler_settled(b->settler) : 0;
}

gm__metrics *gm__broker_metrics(gm__broker *b) {
  return b->metrics;
}

/* ---- construction ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The plugin files to load: [plugins] load names, or every gm_*.so in dir. */
static char **plugin_paths(const gm__config *cfg, const char *dir, size_t *n) {
  const char *load = gm__config_get(cfg, "plugins", "load", "");
  char **paths = NULL;
  *n = 0;
  if (*load) {
    char *copy = strdup(load), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
      paths = realloc(paths, (*n + 1) * sizeof *paths);
      if (asprintf(&paths[*n], "%s/gm_%s.so", dir, tok) < 0) abort();
      (*n)++;
    }
    free(copy);
    return paths;
  }
  DIR *d = opendir(dir);
  if (!d) return NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strncmp(e->d_name, "gm_", 3) == 0 &&
        strcmp(e->d_name + len - 3, ".so") == 0) {
      paths = realloc(paths, (*n + 1) * sizeof *paths);
      if (asprintf(&paths[*n], "%s/%s", dir, e->d_name) < 0) abort();
      (*n)++;
    }
  }
  closedir(d);
  if (*n) qsort(paths, *n, sizeof *paths, cmp_str);
  return paths;
}

/*
 * A [plugins] load name with no gm_<name>.so in dir: says so and lists the
 * markets that are there, so a typo or a wrong dir shows at once.
 */
static void missing_plugin(const char *path, const char *dir) {
  char have[512] = "";
  size_t used = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strncmp(e->d_name, "gm_", 3) == 0 &&
        strcmp(e->d_name + len - 3, ".so") == 0 && used < sizeof have) {
      int w = snprintf(have + used, sizeof have - used, "%s%.*s",
                       used ? ", " : "", (int)(len - 6), e->d_name + 3);
      if (w > 0) used += (size_t)w;
    }
  }
  if (d) closedir(d);
  gm__log(GM_LOG_ERROR, "loader",
          "%s: refused: no such file; [plugins] load names a market by the "
          "X of gm_X.so in [plugins] dir (%s), which %s%s%s",
          path, dir,
          !d     ? "cannot be read"
          : used ? "holds: "
                 : "holds none",
          have, !d ? ": fix [plugins] dir" : "");
}

/*
 * [plugins] dir unset: the plugins installed beside this gmd
 * (<prefix>/bin/gmd: <prefix>/<libdir>/greenmarket/plugins, whatever prefix
 * cmake --install was given), else the configured install folder.
 */
static char *default_plugin_dir(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
  if (slash) {
    char *beside = NULL, real[PATH_MAX];
    *slash = '\0';
    if (asprintf(&beside, "%s/%s", exe, GM_RELATIVE_PLUGIN_DIR) < 0) abort();
    struct stat st;
    int there =
        realpath(beside, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode);
    free(beside);
    if (there) return strdup(real);
  }
  return strdup(GM_DEFAULT_PLUGIN_DIR);
}

/*
 * The [market.NAME] sections whose NAME is no loaded market and has no
 * gm_NAME.so in dir (a plugin there that was refused, or that [plugins] load
 * leaves out, keeps its section): a misspelt or stale name, whose keys no
 * market reads.  Each is logged with the nearest loaded market's name; how
 * many.
 */
static size_t unread_market_sections(const gm__broker *b, const gm__config *cfg,
                                     const char *dir) {
  const char *sections[64], *loaded[64];
  size_t n = gm__config_markets(cfg, sections, 64), nl = 0, unread = 0;
  for (size_t i = 0; i < b->n_markets && nl < 64; i++)
    loaded[nl++] = b->markets[i]->name;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < nl && strcasecmp(loaded[j], sections[i]) != 0) j++;
    if (j < nl) continue;
    char *file = NULL;
    if (asprintf(&file, "%s/gm_%s.so", dir, sections[i]) < 0) abort();
    int there = access(file, F_OK) == 0;
    free(file);
    if (there) continue;
    const char *near = gm__config_nearest(sections[i], loaded, nl);
    gm__log(GM_LOG_WARN, "loader",
            "[market.%s]: no market %s is loaded and [plugins] dir (%s) has "
            "no gm_%s.so, so no market reads this section's keys%s%s%s; "
            "give the section a loaded market's name (gm markets lists them) "
            "or delete it",
            sections[i], sections[i], dir, sections[i],
            near ? " (did you mean [market." : "", near ? near : "",
            near ? "]?)" : "");
    unread++;
  }
  return unread;
}

/* Whether users other than gmd's own can read a secret file: the others'
   bits, or the group's when the file's group is not gmd's (under systemd,
   mode 640 with group greenmarket is how gmd alone reads a file root owns;
   a supplementary group such as redis is shared with others). */
static int readable_by_others(const struct stat *st) {
  if (st->st_mode & 007) return 1;
  return (st->st_mode & 070) && st->st_gid != getegid();
}

/* Reads "secret = <z85>" from gm keygen's file into out (the one config
   reader: the key file is an INI file without sections). */
static int read_secret_key(const char *path, char out[41], char *err,
                           size_t errlen) {
  gm__config *keys = gm__config_load(path, err, errlen);
  if (!keys) return -1;
  struct stat st;
  if (stat(path, &st) == 0 && readable_by_others(&st))
    gm__log(GM_LOG_WARN, "gmd",
            "[security] secret_key_file %s can be read by other users (mode "
            "%03o, group id %u): whoever reads it can pose as this broker; "
            "chmod 600 it, or 640 with gmd's own group (chgrp)",
            path, (unsigned)(st.st_mode & 0777), (unsigned)st.st_gid);
  const char *secret = gm__config_get(keys, "", "secret", NULL);
  int ok = secret && gm__curve_key_valid(secret);
  if (ok)
    memcpy(out, secret, 41);
  else
    snprintf(err, errlen,
             "%s has no line 'secret = <40-character Z85 key>' (make one with "
             "gm keygen --out %s)",
             path, path);
  gm__config_destroy(&keys);
  return ok ? 0 : -1;
}

/* [settle] settle = auto | never; [ledger] settle = on | off, its older
   spelling, still read. */
static int settle_mode(const gm__config *cfg, int *on, char *err,
                       size_t errlen) {
  const char *v = gm__config_get(cfg, "settle", "settle", NULL);
  if (!v || !*v)
    return gm__config_bool(cfg, "ledger", "settle", 1, on, err, errlen);
  if (strcmp(v, "auto") == 0) return *on = 1, 0;
  if (strcmp(v, "never") == 0) return *on = 0, 0;
  snprintf(err, errlen,
           "[settle] settle = %s: use auto (settle when this broker holds the "
           "lease) or never",
           v);
  return -1;
}

/* The client endpoint's port + 3 (tcp), or its path + ".ledger" (ipc). */
static int ledger_default_endpoint(const char *ep, char *out, size_t n) {
  if (strncmp(ep, "ipc://", 6) == 0) {
    int w = snprintf(out, n, "%s.ledger", ep);
    return w > 0 && (size_t)w < n ? 0 : -1;
  }
  const char *colon = strrchr(ep, ':');
  char *end;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (strncmp(ep, "tcp://", 6) != 0 || !colon || colon < ep + 6 || *end ||
      port < 1 || port > 65532)
    return -1;
  int w = snprintf(out, n, "%.*s:%ld", (int)(colon - ep), ep, port + 3);
  return w > 0 && (size_t)w < n ? 0 : -1;
}

/* What other brokers connect to: a wildcard host becomes this host's name. */
static char *advertised(const char *ep, const char *host) {
  char *out = NULL;
  const char *h = strncmp(ep, "tcp://", 6) == 0 ? ep + 6 : NULL;
  if (h && (strncmp(h, "*:", 2) == 0 || strncmp(h, "0.0.0.0:", 8) == 0)) {
    if (asprintf(&out, "tcp://%s%s", host, strchr(h, ':')) < 0) abort();
  } else {
    out = strdup(ep);
  }
  if (!out) abort();
  return out;
}

gm__ledger_link *gm__broker_ledger_link(gm__broker *b, void *zctx) {
  if (!b->lease) return NULL;
  return gm__ledger_link_new(zctx, b->lease,
                             b->dev_mode ? NULL : b->server_secret,
                             (int)b->read_timeout_ms);
}

/* greenmarket_settle_lease_held; nothing before the broker runs. */
static int lease_gauge(void *arg, double *value) {
  gm__broker *b = arg;
  if (!b->lease) return -1;
  *value = gm__lease_gate(b->lease) ? 1 : 0;
  return 0;
}

static int feed_subscribes(void *arg, double *value) {
  *value = (double)gm__publisher_subscribes(arg);
  return 0;
}

static int feed_private_subscribes(void *arg, double *value) {
  *value = (double)gm__publisher_private_subscribes(arg);
  return 0;
}

/* greenmarket_feed_redis_reconnects_total; none in development mode. */
static int feed_redis_reopens(void *arg, double *value) {
  if (!gm__publisher_has_redis(arg)) return -1;
  *value = (double)gm__publisher_redis_reopens(arg);
  return 0;
}

static int feed_private(void *arg, double *value) {
  *value = (double)gm__publisher_private_connections(arg);
  return 0;
}

static gm_market *route_find(void *arg, const char *market) {
  return gm__broker_find_market(arg, market);
}

static gm_settle_fn settle_lookup(void *arg, const char *market,
                                  gm_market **m) {
  gm__broker *b = arg;
  gm_market *found = gm__broker_find_market(b, market);
  if (m) *m = found;
  return found ? found->settle : NULL;
}

static gm_market *deadline_market(void *arg, const char *market) {
  return gm__broker_find_market(arg, market);
}

static int market_loaded(const gm__host *h, const char *name) {
  return gm__broker_find_market(h->owner, name) != NULL;
}

/*
 * [redis] user and password_file: the credentials of a Redis with
 * requirepass or ACL users.  The password is read from a file (its first
 * line), so it is in no config file, command line or log; read here to
 * refuse a bad file at start, then again at each new connection (redis.c),
 * so that it can change without a restart.  0, or -1 and err.
 */
static int gm__broker_redis_auth(const gm__config *cfg, char *err,
                                 size_t errlen) {
  const char *user = gm__config_get(cfg, "redis", "user", "");
  char *path = gm__config_path(cfg, "redis", "password_file", NULL);
  if (!path || !*path) {
    free(path);
    if (*user) {
      snprintf(err, errlen,
               "[redis] user = %s needs the user's password: set [redis] "
               "password_file to a file holding it",
               user);
      return -1;
    }
    gm__redis_set_auth(NULL, NULL);
    return 0;
  }
  char pass[513], why[96];
  if (gm__redis_password_read(path, pass, why, sizeof why) != 0) {
    snprintf(err, errlen,
             "[redis] password_file %s %s; write the password (1-512 bytes) "
             "on its first line, readable by gmd's user",
             path, why);
    free(path);
    return -1;
  }
  explicit_bzero(pass, sizeof pass);
  struct stat st;
  if (stat(path, &st) == 0 && readable_by_others(&st))
    gm__log(GM_LOG_WARN, "gmd",
            "[redis] password_file %s can be read by other users (mode "
            "%03o, group id %u); chmod 600 it, or 640 with gmd's own group "
            "(chgrp)",
            path, (unsigned)(st.st_mode & 0777), (unsigned)st.st_gid);
  gm__redis_set_auth(user, path);
  free(path);
  return 0;
}

/* Non-zero when `name` is a network interface whose every address is a
   loopback one (lo): ZeroMQ binds tcp://lo:PORT to its address.  A
   loopback interface that also holds another address (an anycast address
   on lo) is not local. */
static int interface_loopback(const char *name) {
  struct ifaddrs *all;
  if (getifaddrs(&all) != 0) return 0;
  int found = 0, other = 0;
  for (struct ifaddrs *i = all; i; i = i->ifa_next) {
    if (!i->ifa_name || strcmp(i->ifa_name, name) != 0 || !i->ifa_addr)
      continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
      found = 1;
      if ((ntohl(a->sin_addr.s_addr) >> 24) != 127) other = 1;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)i->ifa_addr;
      found = 1;
      if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) other = 1;
    }
  }
  freeifaddrs(all);
  return found && !other;
}

/* Non-zero when ZeroMQ endpoint ep can be reached from this machine only:
   ipc:// and inproc://, or tcp:// on a loopback address (127.0.0.0/8,
   [::1], [::ffff:127.x.x.x], localhost) or interface (lo). */
static int endpoint_local(const char *ep) {
  if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return 1;
  if (strncmp(ep, "tcp://", 6) != 0) return 0;
  const char *h = ep + 6;
  if (!strncmp(h, "127.", 4) || !strncmp(h, "[::1]:", 6) ||
      !strncmp(h, "[::ffff:127.", 12) || !strncmp(h, "localhost:", 10))
    return 1;
  const char *colon = strrchr(h, ':');
  size_t n = colon ? (size_t)(colon - h) : 0;
  char name[IF_NAMESIZE];
  if (n == 0 || n >= sizeof name) return 0;
  memcpy(name, h, n);
  name[n] = '\0';
  return interface_loopback(name);
}

/*
 * Development mode admits any client as any participant: its endpoints must
 * be this machine's only, unless the operator says the network is a test
 * network of its own ([security] dev_on_network = on).  0, or -1 and err.
 */
static int dev_mode_local(const gm__config *cfg, const gm__broker *b, char *err,
                          size_t errlen) {
  int on_network;
  if (gm__config_bool(cfg, "security", "dev_on_network", 0, &on_network, err,
                      errlen))
    return -1;
  if (on_network) return 0;
  const char *const ep[] = {b->endpoint, b->feed, b->private_feed,
                            b->ledger_endpoint};
  const char *const key[] = {"[broker] endpoint", "[broker] feed",
                             "[broker] private_feed",
                             "[settle] ledger_endpoint"};
  for (size_t i = 0; i < sizeof ep / sizeof ep[0]; i++)
    if (!endpoint_local(ep[i])) {
      snprintf(err, errlen,
               "[security] mode = dev admits any client as any participant, "
               "and %s = %s can be reached from other machines; bind it to "
               "127.0.0.1 or ipc://, or use mode = curve (docs/operations.md, "
               "CURVE keys); on a test network of your own only, set "
               "[security] dev_on_network = on",
               key[i], ep[i]);
      return -1;
    }
  return 0;
}

/*
 * A manual clock resumes where `gm clock set` left it before this start
 * (GM__MANUAL_CLOCK_KEY + the broker's name, written by clock.set), unless
 * [testing] clock_start_ms is later: a restarted trial broker does not go
 * back weeks, nor jump to today and fire every deadline due by then.
 * 0, or -1 (err) when Redis cannot say.
 */
static int manual_clock_resume(gm__broker *b, char *err, size_t errlen) {
  redisReply *r =
      gm__redis_callf(b->host.redis, "GET " GM__MANUAL_CLOCK_KEY "%s", b->name);
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
    snprintf(err, errlen,
             "[testing] clock = manual: cannot read where gm clock set left "
             "this broker's clock (%s at %s)",
             r && r->type == REDIS_REPLY_ERROR
                 ? r->str
                 : gm__redis_last_error(b->host.redis),
             gm__redis_where(b->host.redis));
    if (r) freeReplyObject(r);
    return -1;
  }
  long long saved = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
  freeReplyObject(r);
  int64_t start = gm__clock_now_ms();
  if (saved > 0 && (!b->clock_start_set || saved > start)) {
    gm__clock_set_manual(saved);
    gm__log(GM_LOG_INFO, "clock",
            "the manual clock resumes at %lld ms, where gm clock set left it "
            "before this start%s",
            saved,
            b->clock_start_set ? " (later than [testing] clock_start_ms)" : "");
  }
  return 0;
}

gm__broker *gm__broker_new(const gm__config *cfg, gm__redis_stop *stop,
                           char *err, size_t errlen) {
  gm__broker *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->cfg = cfg;
  b->started_us = gm__clock_mono_us();
  b->own_stop = !stop;
  /* Signals are taken by a thread (main.c), so none interrupts the
     serving loop's poll: a stop wakes it by this. */
  b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  b->redis_stop = stop ? stop : gm__redis_stop_new();
  char host[64] = "localhost";
  gethostname(host, sizeof host - 1);
  b->endpoint =
      strdup(gm__config_get(cfg, "broker", "endpoint", "tcp://127.0.0.1:7470"));
  /* The name is the settler's consumer name too: it must stay the same
     across restarts, so a broker killed mid-batch takes its own pending
     entries back at once instead of after the stale-claim delay.  Two
     brokers on one host cannot share an endpoint, so host + endpoint is
     unique. */
  snprintf(b->name, sizeof b->name, "%s",
           gm__config_get(cfg, "broker", "name", ""));
  if (!b->name[0])
    snprintf(b->name, sizeof b->name, "%s/%s", host, b->endpoint);
  b->feed =
      strdup(gm__config_get(cfg, "broker", "feed", "tcp://127.0.0.1:7471"));
  char pf[1024];
  const char *pf_set = gm__config_get(cfg, "broker", "private_feed", "");
  if (*pf_set)
    snprintf(pf, sizeof pf, "%s", pf_set);
  else if (gm__privfeed_default_endpoint(b->feed, pf, sizeof pf)) {
    snprintf(err, errlen,
             "[broker] private_feed is needed: the feed %s is not tcp:// or "
             "ipc://, so no default can be made from it",
             b->feed);
    goto fail;
  }
  b->private_feed = strdup(pf);
  char le[1024];
  const char *le_set = gm__config_get(cfg, "settle", "ledger_endpoint", "");
  if (*le_set)
    snprintf(le, sizeof le, "%s", le_set);
  else if (ledger_default_endpoint(b->endpoint, le, sizeof le)) {
    snprintf(err, errlen,
             "[settle] ledger_endpoint is needed: the endpoint %s is not "
             "tcp:// or ipc://, so no default can be made from it",
             b->endpoint);
    goto fail;
  }
  b->ledger_endpoint = strdup(le);
  b->ledger_advertise = advertised(le, host);
  /* One worker per core by default: more threads than cores only add
     wake-ups (measured: ping at 16 in flight, 4 workers 0.41 of a plain
     ZeroMQ echo, 2 workers 0.51, on 2 cores). */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 2) cores = 2;
  if (cores > 16) cores = 16;
  if (gm__config_int(cfg, "broker", "workers", cores, 1, 256, &b->n_workers,
                     err, errlen) ||
      gm__config_int(cfg, "broker", "pipeline", 64, 1, 1024, &b->pipeline, err,
                     errlen) ||
      gm__config_int(cfg, "broker", "max_message_bytes", 1 << 20, 256, 64 << 20,
                     &b->max_msg, err, errlen) ||
      gm__config_int(cfg, "broker", "feed_queue", 10000, 100, 1000000,
                     &b->feed_queue, err, errlen) ||
      gm__config_bool(cfg, "broker", "public_feed_sub", 1, &b->public_sub, err,
                      errlen) ||
      settle_mode(cfg, &b->settle_on, err, errlen) ||
      gm__config_int(cfg, "settle", "lease_ms", 3000, 300, 600000, &b->lease_ms,
                     err, errlen) ||
      gm__config_int(cfg, "settle", "read_timeout_ms", 5000, 10, 600000,
                     &b->read_timeout_ms, err, errlen) ||
      gm__config_int(cfg, "ledger", "batch", 512, 1, 100000, &b->settle_batch,
                     err, errlen) ||
      gm__config_int(cfg, "ledger", "linger_ms", 5, 0, 1000, &b->settle_linger,
                     err, errlen) ||
      gm__config_int(cfg, "ledger", "outbox_retire_s", 3600, 0, 2592000,
                     &b->settle_retire_s, err, errlen) ||
      gm__config_int(cfg, "ledger", "dead_letter_after", 5, 1, 100,
                     &b->settle_dead_after, err, errlen) ||
      gm__config_int(cfg, "deadlines", "poll_ms", 100, 1, 3600000,
                     &b->dl_poll_ms, err, errlen) ||
      gm__config_int(cfg, "deadlines", "claim_ms", 30000, 100, 86400000,
                     &b->dl_claim_ms, err, errlen) ||
      gm__config_int(cfg, "deadlines", "reconcile_s", 300, 1, 86400,
                     &b->dl_reconcile_s, err, errlen))
    goto fail;
  const char *level = gm__config_get(cfg, "log", "level", "info");
  if (gm__log_set_level(level) != 0) {
    snprintf(err, errlen, "[log] level = %s: use debug, info, warn or error",
             level);
    goto fail;
  }
  const char *mode = gm__config_get(cfg, "security", "mode", "");
  if (strcmp(mode, "dev") == 0) {
    b->dev_mode = 1;
    if (dev_mode_local(cfg, b, err, errlen) != 0) goto fail;
  } else if (strcmp(mode, "curve") == 0) {
    char *path = gm__config_path(cfg, "security", "secret_key_file", NULL);
    int rc = path ? read_secret_key(path, b->server_secret, err, errlen) : -1;
    if (!path)
      snprintf(err, errlen,
               "[security] mode = curve needs secret_key_file (gm keygen "
               "--out FILE makes one)");
    free(path);
    if (rc) goto fail;
  } else {
    snprintf(err, errlen,
             "[security] mode must be 'curve' (with secret_key_file) or 'dev' "
             "(no authentication: for development only)");
    goto fail;
  }
  const char *clock = gm__config_get(cfg, "testing", "clock", "real");
  if (strcmp(clock, "manual") == 0) {
    /* A test that restarts gmd starts it at the test's time, so deadlines
       the test set are not all late at start-up (they would fire at once). */
    long start_ms;
    if (gm__config_int(cfg, "testing", "clock_start_ms", 0, 0, LONG_MAX,
                       &start_ms, err, errlen))
      goto fail;
    gm__clock_set_manual(start_ms ? start_ms : gm__clock_now_ms());
    b->clock_start_set = start_ms != 0;
  } else if (strcmp(clock, "real") != 0) {
    snprintf(err, errlen, "[testing] clock = %s: use real or manual", clock);
    goto fail;
  }
  long skew_ms;
  if (gm__config_int(cfg, "testing", "clock_skew_ms", 0, -31536000000L,
                     31536000000L, &skew_ms, err, errlen))
    goto fail;
  gm__clock_set_skew_ms(skew_ms);
  long clock_log_ms;
  if (gm__config_int(cfg, "testing", "clock_log_every_ms",
                     GM__TIMESYNC_LOG_EVERY_MS, 100, 86400000L, &clock_log_ms,
                     err, errlen))
    goto fail;
  long clock_rtt_us;
  if (gm__config_int(cfg, "testing", "clock_max_rtt_us",
                     GM__TIMESYNC_MAX_RTT_US, 1, 10000000L, &clock_rtt_us, err,
                     errlen))
    goto fail;
  const char *source = gm__config_get(cfg, "clock", "source", "redis");
  if (strcmp(source, "redis") != 0 && strcmp(source, "local") != 0) {
    snprintf(err, errlen,
             "[clock] source = %s: use redis (every broker keeps Redis's "
             "clock: the default) or local (this host's clock, kept by NTP)",
             source);
    goto fail;
  }
  b->clock_redis = !strcmp(source, "redis") && !gm__clock_is_manual();

  b->redis_unix = gm__config_path(cfg, "redis", "unix", NULL);
  b->redis_host = strdup(gm__config_get(cfg, "redis", "host", "127.0.0.1"));
  long port;
  if (gm__config_int(cfg, "redis", "port", 6379, 1, 65535, &port, err, errlen))
    goto fail;
  b->redis_cluster = strdup(gm__config_get(cfg, "redis", "cluster", ""));
  b->raddr = (gm__redis_addr){.unix_path = b->redis_unix,
                              .host = b->redis_host,
                              .port = (int)port,
                              .cluster = b->redis_cluster,
                              .stop = b->redis_stop};
  if (gm__broker_redis_auth(cfg, err, errlen) != 0) goto fail;
  b->ledger_path = gm__config_path(cfg, "ledger", "path", "ledger.sqlite");
  int scan_check;
  if (gm__config_bool(cfg, "ledger", "scan_check", 0, &scan_check, err, errlen))
    goto fail;
  gm__ledger_set_scan_check(scan_check);
  long ttl;
  if (gm__config_int(cfg, "redis", "idempotency_ttl", 86400, 60, 30 * 86400,
                     &ttl, err, errlen))
    goto fail;
  gm__scripts_set_idem_ttl(ttl);
  long wait_ms;
  if (gm__config_int(cfg, "redis", "cluster_wait_replicas", 0, 0,
                     GM__WAIT_REPLICAS_MAX_MS, &wait_ms, err, errlen)) {
    size_t n = strlen(err);
    snprintf(err + n, errlen - n,
             " (a longer WAIT would be taken for a Redis that stopped "
             "answering: gmd reconnects after 30 s without a reply)");
    goto fail;
  }
  gm__scripts_set_wait_replicas(wait_ms);
  b->metrics = gm__metrics_new(cfg, err, errlen);
  if (!b->metrics || gm__metrics_check_address(b->metrics, err, errlen) != 0)
    goto fail;

  b->host.config = cfg;
  b->host.broker_name = b->name;
  b->host.market_loaded = market_loaded;
  b->host.owner = b;
  b->host.redis = gm__redis_connect(&b->raddr, err, errlen);
  if (!b->host.redis) goto fail;
  /* Before anything reads the time (the ledger's book, plugins' init). */
  if (gm__clock_is_manual() && manual_clock_resume(b, err, errlen)) goto fail;
  if (b->clock_redis && !(b->timesync = gm__timesync_start(
                              &b->raddr, (uint64_t)clock_log_ms * 1000u,
                              clock_rtt_us, err, errlen)))
    goto fail;
  gm__metrics_gauge_add(b->metrics, "greenmarket_clock_offset_seconds",
                        "Redis's clock minus this host's, in seconds: what "
                        "gmd adds to this host's clock ([clock] source = "
                        "redis); 0 with source = local",
                        gm__timesync_gauge_offset, NULL);
  b->host.ledger = gm__ledger_open(b->ledger_path, 0, err, errlen);
  if (!b->host.ledger) goto fail;
  b->timers = b->host.timers = gm__timers_new();
  b->deadlines = b->host.deadlines = gm__deadlines_new();
  /* The deadlines outlive the metrics endpoint (stopped first). */
  gm__metrics_gauge_add(b->metrics, "greenmarket_deadlines_pending",
                        "tags (entities' hash tags) with a deadline not done "
                        "yet: members of the wake-up index gm:deadlines",
                        gm__deadlines_gauge_pending, b->deadlines);
  gm__metrics_gauge_add(b->metrics, "greenmarket_deadlines_late",
                        "of those, tags whose next deadline was due more than "
                        "1 s ago and is held by no live claim",
                        gm__deadlines_gauge_late, b->deadlines);
  gm__metrics_gauge_add(b->metrics, "greenmarket_settle_lease_held",
                        "1 while this broker holds the settle lease and may "
                        "settle: exactly one broker sharing a Redis shows 1, "
                        "except for about 4/3 lease_ms after a holder died",
                        lease_gauge, b);

  char *dir = gm__config_path(cfg, "plugins", "dir", NULL);
  if (!dir) dir = default_plugin_dir();
  size_t n = 0;
  char **paths = plugin_paths(cfg, dir, &n);
  if (n == 0) gm__log(GM_LOG_WARN, "loader", "no plugins found in %s", dir);
  for (size_t i = 0; i < n; i++) {
    char why[1024];
    gm_market *m = NULL;
    if (access(paths[i], F_OK) != 0 && errno == ENOENT)
      missing_plugin(paths[i], dir);
    else
      m = gm__plugin_load(paths[i], &b->host, why, sizeof why);
    if (m) {
      b->markets = realloc(b->markets, (b->n_markets + 1) * sizeof *b->markets);
      b->markets[b->n_markets++] = m;
    } else {
      b->n_refused++;
    }
    free(paths[i]);
  }
  free(paths);
  /* Only now, with every plugin loaded, may one market name another's
     roles. */
  size_t loaded = b->n_markets;
  gm__plugins_check_roles(b->markets, &b->n_markets);
  b->n_refused += loaded - b->n_markets;
  b->roles = gm__roles_new(b->markets, b->n_markets);
  b->n_unread = unread_market_sections(b, cfg, dir);
  free(dir);
  /* Migrations are done; the settler owns the writer connection from now. */
  gm__ledger_close(&b->host.ledger);
  return b;
fail:
  gm__broker_destroy(&b);
  return NULL;
}

void gm__broker_stop(gm__broker *b) {
  b->stop = 1;
  if (b->wake_fd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(b->wake_fd, &one, sizeof one); /* async-signal-safe */
    (void)w;
  }
}

int gm__broker_served(gm__broker *b) {
  return atomic_load(&b->serving);
}

void gm__broker_interrupt(gm__broker *b) {
  gm__broker_stop(b);
  if (!atomic_load(&b->serving)) {
    gm__log(GM_LOG_INFO, "broker",
            "asked to stop while starting: what the start waits for from "
            "Redis is cut now");
    gm__redis_stop_now(b->redis_stop);
  }
}

static sigset_t gm__stop_signals; /* SIGINT and SIGTERM */

static void gm__unblock_in_child(void) {
  pthread_sigmask(SIG_UNBLOCK, &gm__stop_signals, NULL);
}

static void gm__atfork_register(void) {
  /* A failed registration (ENOMEM) leaves forked children with the
     signals blocked, as they were before it existed. */
  pthread_atfork(NULL, NULL, gm__unblock_in_child);
}

void gm__broker_block_signals(sigset_t *set) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  sigemptyset(&gm__stop_signals);
  sigaddset(&gm__stop_signals, SIGINT);
  sigaddset(&gm__stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &gm__stop_signals, NULL);
  *set = gm__stop_signals;
  pthread_once(&once, gm__atfork_register);
}

/* Forwards one message, if one is waiting, from `from` to `to`; 1 if so. */
static int forward(void *from, void *to) {
  int more = 1, first = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, from, first ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&m);
      return 0;
    }
    first = 0;
    more = zmq_msg_more(&m);
    zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0);
    zmq_msg_close(&m);
  }
  return 1;
}

/*
 * Client -> worker, if a request is waiting: adds the auth frame in front of
 * the client's frames.  1 if a message was taken.
 */
static int forward_request(gm__broker *b, void *front, void *back) {
  zmq_msg_t f[GM__MAX_PREFIX_FRAMES + 2]; /* [id][prefix...][payload] */
  int n;
  if (gm__recv_frames(front, f, GM__MAX_PREFIX_FRAMES + 2, &n, ZMQ_DONTWAIT) <
          0 ||
      n == 0)
    return 0;
  if (n < 0 || n < 2) { /* too many frames, or no payload after the id */
    for (int i = 0; i < (n < 0 ? -n : n); i++) zmq_msg_close(&f[i]);
    gm__broker_count_bad_frame(b);
    gm__log(GM_LOG_WARN, "broker", "dropped a message with %s frames",
            n < 0 ? "too many" : "no payload");
    return 1;
  }
  char auth[512];
  size_t alen = 0;
  if (!b->dev_mode &&
      !gm__rid_assigned(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]))) {
    auth[0] = GM__AUTH_CHOSEN_RID;
    alen = 1;
  } else if (!b->dev_mode) {
    const char *user = zmq_msg_gets(&f[n - 1], "User-Id");
    const char *roles = zmq_msg_gets(&f[n - 1], "X-Roles");
    const char *key = zmq_msg_gets(&f[n - 1], "X-Key");
    int w = snprintf(auth, sizeof auth, "%s%c%s%c%s", user ? user : "", '\0',
                     roles ? roles : "", '\0', key ? key : "");
    alen = w > 0 && (size_t)w < sizeof auth ? (size_t)w : 0;
  }
  zmq_send(back, auth, alen, ZMQ_SNDMORE);
  for (int i = 0; i < n; i++) {
    zmq_msg_send(&f[i], back, i + 1 < n ? ZMQ_SNDMORE : 0);
    zmq_msg_close(&f[i]);
  }
  return 1;
}

/* ---- metrics: what the broker shows the metrics endpoint ---- */

/* Starts the metrics endpoint (when [metrics] listen is set) on a view of
   the broker that stays valid until gm__metrics_stop. */
static int metrics_start(gm__broker *b, char *err, size_t errlen) {
  gm__metrics_market *mk = calloc(b->n_markets + 1, sizeof *mk);
  if (!mk) abort();
  mk[0] = (gm__metrics_market){.name = "gm",
                               .version = GM_VERSION,
                               .stats = &b->core_stats,
                               .methods = gm__core_methods,
                               .n_methods = GM__CORE_METHODS,
                               .method_stats = b->core_method_stats};
  for (size_t i = 0; i < b->n_markets; i++) {
    const gm_market *m = b->markets[i];
    mk[i + 1] = (gm__metrics_market){
        .name = m->name,
        .version = m->plugin->version ? m->plugin->version : "",
        .stats = &m->stats,
        .methods = m->plugin->methods,
        .n_methods = m->plugin->n_methods,
        .method_stats = m->method_stats};
  }
  gm__metrics_view v = {.broker = b->name,
                        .markets = mk,
                        .n_markets = b->n_markets + 1,
                        .bad_frames = &b->bad_frames,
                        .settler = b->settler,
                        .lease = b->lease,
                        .redis = b->raddr,
                        .ledger_path = b->ledger_path,
                        .own = {{"[broker] endpoint", b->endpoint},
                                {"[broker] feed", b->feed},
                                {"[broker] private_feed", b->private_feed}}};
  int rc = gm__metrics_start(b->metrics, &v, err, errlen);
  free(mk);
  return rc;
}

int gm__broker_run(gm__broker *b, char *err, size_t errlen) {
  int rc = -1;
  void *front = NULL, *back = NULL;
  const char *secret = b->dev_mode ? NULL : b->server_secret;
  b->zctx = zmq_ctx_new();
  if (!b->dev_mode) {
    b->auth =
        gm__auth_start(b->zctx, &b->raddr,
                       gm__config_get(b->cfg, "security", "admin_keys", ""),
                       b->roles, err, errlen);
    if (!b->auth) goto done;
  }
  front = zmq_socket(b->zctx, ZMQ_ROUTER);
  back = zmq_socket(b->zctx, ZMQ_DEALER);
  /* A hard cap well above the reply limit: a bigger frame drops the peer,
     a merely large one gets a RESOURCE_EXHAUSTED reply. */
  int64_t hard = (int64_t)b->max_msg * 4 + 4096;
  zmq_setsockopt(front, ZMQ_MAXMSGSIZE, &hard, sizeof hard);
  if (secret) {
    int one = 1;
    zmq_setsockopt(front, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(front, ZMQ_CURVE_SECRETKEY, secret, 40);
    zmq_setsockopt(front, ZMQ_ZAP_DOMAIN, "greenmarket", 11);
  }
  if (zmq_bind(back, WORKERS_ENDPOINT)) {
    snprintf(err, errlen, "inproc bind: %s", zmq_strerror(zmq_errno()));
    goto done;
  }
  if (zmq_bind(front, b->endpoint)) {
    snprintf(err, errlen,
             "cannot bind %s: %s (is another gmd running? set "
             "[broker] endpoint)",
             b->endpoint, zmq_strerror(zmq_errno()));
    goto done;
  }
  b->publisher = gm__publisher_start(
      b->zctx, EVENTS_ENDPOINT, b->feed, b->private_feed, (int)b->feed_queue,
      b->public_sub, secret, &b->raddr, b->roles, err, errlen);
  if (!b->publisher) goto done;
  b->host.interest = gm__publisher_interest(b->publisher);
  /* The metrics endpoint stops before the publisher goes. */
  gm__metrics_counter_add(
      b->metrics, "greenmarket_feed_subscribes_total",
      "SUBSCRIBE messages the public feed has taken in: each connection's "
      "each prefix, again after a reconnect; once counted, events sent "
      "reach that subscription",
      feed_subscribes, b->publisher);
  gm__metrics_counter_add(
      b->metrics, "greenmarket_feed_private_subscribes_total",
      "subscriptions the private feed has applied (a refused one is not "
      "counted); once counted, events said afterwards reach it",
      feed_private_subscribes, b->publisher);
  gm__metrics_counter_add(
      b->metrics, "greenmarket_feed_redis_reconnects_total",
      "times the publisher thread reopened its Redis connection (it "
      "re-checks private feed subscribers' keys and roles every second) "
      "after it failed or timed out; absent in development mode",
      feed_redis_reopens, b->publisher);
  gm__metrics_gauge_add(b->metrics, "greenmarket_feed_private_connections",
                        "private feed connections the broker keeps: those "
                        "holding a subscription, and refused ones until "
                        "they disconnect or their lease runs out",
                        feed_private, b->publisher);
  b->events = gm__events_open(b->zctx, EVENTS_ENDPOINT, err, errlen);
  if (!b->events) goto done;
  /* Before the workers: their ledger reads follow it from the start. */
  gm__lease_config lc = {.redis = b->raddr,
                         .name = b->name,
                         .endpoint = b->ledger_advertise,
                         .ledger_path = b->ledger_path,
                         .lease_ms = b->lease_ms,
                         .take = b->settle_on};
  b->lease = gm__lease_start(&lc, err, errlen);
  if (!b->lease) goto done;
  b->workers = calloc((size_t)b->n_workers, sizeof *b->workers);
  if (!b->workers) abort();
  for (long i = 0; i < b->n_workers; i++) {
    gm__worker_config wc = {.broker = b,
                            .zctx = b->zctx,
                            .requests = WORKERS_ENDPOINT,
                            .events = b->events,
                            .redis = &b->raddr,
                            .ledger_path = b->ledger_path,
                            .pipeline = b->pipeline,
                            .dev_mode = b->dev_mode,
                            .index = (int)i};
    b->workers[i] = gm__worker_start(&wc, err, errlen);
    if (!b->workers[i]) goto done;
  }
  /* Timers and deadline callbacks read the book too (a market may check
     the ledger holds an entity's final state before Redis forgets it). */
  b->timers_link = gm__broker_ledger_link(b, b->zctx);
  b->deadlines_link = gm__broker_ledger_link(b, b->zctx);
  gm__timers_set_remote(b->timers, gm__ledger_link_remote(b->timers_link));
  if (gm__timers_start(b->timers, &b->raddr, b->ledger_path, b->events, err,
                       errlen))
    goto done;
  gm__deadlines_config dc = {
      .redis = &b->raddr,
      .ledger_path = b->ledger_path,
      .events = b->events,
      .broker = b->name,
      .poll_ms = b->dl_poll_ms,
      .claim_ms = b->dl_claim_ms,
      .reconcile_s = b->dl_reconcile_s,
      .find = deadline_market,
      .find_arg = b,
      .remote = gm__ledger_link_remote(b->deadlines_link)};
  if (gm__deadlines_start(b->deadlines, &dc, err, errlen)) goto done;
  if (b->settle_on) {
    gm__ledger_server_config lc = {.endpoint = b->ledger_endpoint,
                                   .ledger_path = b->ledger_path,
                                   .secret_key = secret,
                                   .lease = b->lease,
                                   .find = route_find,
                                   .find_arg = b};
    b->ledger_server = gm__ledger_server_start(&lc, err, errlen);
    if (!b->ledger_server) goto done;
    gm__settle_config sc = {
        .redis = b->raddr,
        .ledger_path = b->ledger_path,
        .consumer = b->name,
        .batch_size = (int)b->settle_batch,
        .block_ms = 100,
        .linger_ms = (int)b->settle_linger,
        .claim_idle_ms = 30000,
        .retire_idle_ms = (int64_t)b->settle_retire_s * 1000,
        .dead_letter_after = (int)b->settle_dead_after,
        .lookup = settle_lookup,
        .lookup_arg = b,
        .gate = gm__lease_gate,
        .gate_arg = b->lease,
        .committed = gm__lease_committed};
    b->settler = gm__settler_start(&sc, err, errlen);
    if (!b->settler) goto done;
  }
  if (metrics_start(b, err, errlen) != 0) goto done;
  if (b->dev_mode)
    gm__log(GM_LOG_WARN, "broker",
            "DEVELOPMENT MODE: no CURVE keys, no authentication; any client "
            "may act as any participant. Never expose %s beyond this machine.",
            b->endpoint);
  gm__log(GM_LOG_INFO, "broker",
          "%s serving %zu market(s) on %s, feed %s, private feed %s, %ld "
          "workers, ledger %s",
          b->name, b->n_markets, b->endpoint, b->feed, b->private_feed,
          b->n_workers, b->ledger_path);

  zmq_pollitem_t items[] = {{front, 0, ZMQ_POLLIN, 0},
                            {back, 0, ZMQ_POLLIN, 0},
                            {NULL, b->wake_fd, ZMQ_POLLIN, 0}};
  atomic_store(&b->serving, 1);
  while (!b->stop) {
    int n = zmq_poll(items, b->wake_fd >= 0 ? 3 : 2, 200);
    if (n < 0) {
      if (zmq_errno() == EINTR) continue;
      snprintf(err, errlen, "poll: %s", zmq_strerror(zmq_errno()));
      goto done;
    }
    /* Replies first: they free clients and workers.  Each socket is
       drained in bursts, so one wake-up moves many messages under load
       while no socket can starve the others. */
    for (int i = 0; i < BURST && (items[1].revents & ZMQ_POLLIN); i++)
      if (!forward(back, front)) break;
    for (int i = 0; i < BURST && (items[0].revents & ZMQ_POLLIN); i++)
      if (!forward_request(b, front, back)) break;
  }
  rc = 0;
  gm__log(GM_LOG_INFO, "broker", "stopping");
done:
  /* Each thread below ends after the Redis command in hand; a stalled
     Redis would hold each for its read timeout, one after the other:
     past the grace their connections are cut, and the threads end at once
     (the settler's SQLite transaction ends as it would have, commit or
     rollback, since it sends nothing to Redis within one). */
  gm__redis_stop_after(b->redis_stop, GM__STOP_GRACE_US);
  /* Metrics first: a scrape reads the settler's and the workers' counters. */
  gm__metrics_stop(b->metrics);
  /* Timers, deadlines and settler next: they finish what they hold. */
  gm__timers_destroy(&b->timers);
  b->host.timers = NULL;
  /* Only stopped: workers still finishing requests check kinds in it. */
  gm__deadlines_stop(b->deadlines);
  gm__ledger_link_destroy(&b->timers_link);
  gm__ledger_link_destroy(&b->deadlines_link);
  gm__settler_stop(&b->settler);
  int linger = 0;
  void *socks[] = {front, back};
  for (int i = 0; i < 2; i++)
    if (socks[i]) {
      zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(socks[i]);
    }
  /* Threads holding sockets end on ETERM once the context shuts down. */
  zmq_ctx_shutdown(b->zctx);
  for (long i = 0; b->workers && i < b->n_workers; i++)
    gm__worker_destroy(&b->workers[i]);
  free(b->workers);
  b->workers = NULL;
  /* Nothing sends events any more: timers are gone, the deadline thread
     and the workers have stopped. */
  gm__events_close(&b->events);
  /* After the workers: their last requests still read its interest. */
  b->host.interest = NULL;
  gm__publisher_destroy(&b->publisher);
  gm__ledger_server_stop(&b->ledger_server);
  /* Released last, once nothing here settles or answers for the ledger:
     another broker takes it at once instead of after lease_ms. */
  gm__lease_stop(&b->lease);
  gm__auth_stop(&b->auth);
  zmq_ctx_term(b->zctx);
  b->zctx = NULL;
  return rc;
}

void gm__broker_destroy(gm__broker **bp) {
  if (!bp || !*bp) return;
  gm__broker *b = *bp;
  /* Plugins first: unloading removes their timers and deadline kinds.  The
     roles point into the markets: they go before. */
  gm__roles_destroy(&b->roles);
  for (size_t i = 0; i < b->n_markets; i++) gm__plugin_unload(&b->markets[i]);
  free(b->markets);
  gm__metrics_destroy(&b->metrics);
  gm__timers_destroy(&b->timers);
  b->host.timers = NULL;
  gm__deadlines_destroy(&b->deadlines);
  b->host.deadlines = NULL;
  gm__timesync_stop(&b->timesync);
  gm__redis_destroy(&b->host.redis);
  /* After every connection of it is closed. */
  if (b->own_stop) gm__redis_stop_destroy(&b->redis_stop);
  if (b->wake_fd >= 0) close(b->wake_fd);
  gm__ledger_close(&b->host.ledger);
  free(b->endpoint);
  free(b->feed);
  free(b->private_feed);
  free(b->ledger_endpoint);
  free(b->ledger_advertise);
  free(b->redis_unix);
  free(b->redis_host);
  free(b->redis_cluster);
  free(b->ledger_path);
  free(b);
  *bp = NULL;
}
