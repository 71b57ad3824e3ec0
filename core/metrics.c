/*
 * The metrics and health endpoint (see metrics.h).  libmicrohttpd parses
 * HTTP; one thread of ours runs it (its epoll descriptor, polled here) and
 * answers every request.  The health checks (Redis, the ledger, the outbox
 * count) run on a second thread, the checker, which alone owns the Redis
 * and ledger connections: a request that needs them is suspended
 * (libmicrohttpd's suspend/resume) until a check that was under way or
 * asked for when it came has finished, and every request waiting then is
 * answered from that one check.  So a stalled Redis or ledger holds up
 * only the requests that need a check, each for at most one check, never
 * the other requests behind them; N probes at once cost one check, not N;
 * and a flood opens no thread and no connection to Redis (two threads, one
 * Redis connection per node, at most 2 x MAX_CONNECTIONS HTTP
 * connections).  A /metrics scrape waits for its check at most
 * METRICS_WAIT_MS when an earlier check has finished: then it is answered
 * with that earlier check's results.
 *
 * If polling fails in a way that may pass (ENOMEM, EAGAIN, or an error poll
 * is not known to give), the thread logs it, waits a moment (50 ms,
 * doubling up to 1 s while it lasts) and goes on: it serves late, not
 * never.  A failure that is a bug and would come again at once (a
 * descriptor closed under the thread, a bad address or argument: EBADF,
 * POLLNVAL, EFAULT, EINVAL) is logged at ERROR, and the thread closes the
 * listening socket and every connection, so probes fail at once instead of
 * waiting on a port nobody answers; gmd goes on serving requests, without
 * metrics.
 *
 * A request whose check runs past the deadline is answered 503 saying
 * which step of the check (Redis's PING, the ledger's read, the outbox
 * count) had not answered: a load balancer reads "unhealthy", not a broken
 * connection.
 *
 * Slow clients: libmicrohttpd's idle timeout restarts at every byte, so a
 * client sending one byte every few seconds would hold a connection for
 * ever, and 16 such held every one.  The thread keeps its own list of
 * connections: each step of a request (its headers and body in, its answer
 * taken, the next request on a kept-alive connection) must be done within
 * REQUEST_DEADLINE_MS of the step before, or the connection is closed; and
 * a connection beyond MAX_CONNECTIONS closes one already open, taken from
 * the address that holds the most, the one waiting longest first, so a
 * newcomer (a Prometheus scrape, an orchestrator's probe) is served even
 * when every place is held.
 *
 * What a scrape costs: atomic loads of the counters; a PING and a read of
 * gm_schema (the health checks); and at most every outbox_count_ms,
 * whatever the scrape interval, SMEMBERS gm:outboxes, one XLEN per stream
 * (pipelined XLEN_CHUNK at a time: two round trips for a few thousand
 * streams) and a count of gm_dead_letter.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "clock.h"
#include "counters.h"
#include "lease.h"
#include "ledger.h"
#include "log.h"
#include "settle.h"
#include "utf8.h"

/* Outbox lengths and the dead-letter count are read at most this often. */
#define OUTBOX_EVERY_MS 5000 /* [metrics] outbox_count_ms's default */
/* XLEN commands per pipelined write. */
#define XLEN_CHUNK 1024
/* A settler that showed no sign of life for this long counts as stuck: its
   longest waits (a Redis command timeout, SQLite's busy timeout, the
   back-off) are far shorter. */
#define SETTLER_STUCK_US (60u * 1000000u)
/* A Redis that does not answer within this fails the health check (the
   scrape must finish well inside Prometheus's 10 s timeout). */
#define REDIS_TIMEOUT_S 2
/* Concurrent HTTP connections served; libmicrohttpd's own limit is twice
   that (connections being closed to make room still count there until the
   next turn of the loop closes them). */
#define MAX_CONNECTIONS 16
/* Seconds an idle connection is kept (libmicrohttpd's timeout). */
#define IDLE_TIMEOUT_S 10
/* Each step of a request must be done within this (see above). */
#define REQUEST_DEADLINE_MS 10000
/* The loop looks at the deadlines at least this often. */
#define LOOP_MS 250
/* A /metrics scrape waits at most about this long for its health check
   when an earlier one has finished (the sweep resumes it at its next turn,
   so up to LOOP_MS more). */
#define METRICS_WAIT_MS 200

/* What a request asks for. */
enum { PATH_OTHER, PATH_METRICS, PATH_HEALTHZ };

/* One open connection (libmicrohttpd's socket context). */
typedef struct peer {
  struct peer *prev, *next;
  struct MHD_Connection *conn;
  int fd;               /* libmicrohttpd's socket, shut down to close it */
  int family;           /* AF_INET, AF_INET6 */
  unsigned char ip[16]; /* the client's address (4 bytes for IPv4) */
  char text[64];        /* the same, for the log */
  uint64_t since_us;    /* when its current step began */
  int between;          /* no request under way: connected, or answered */
  int closing;          /* shut down; libmicrohttpd closes it next turn */
  uint64_t want;        /* its request's check (generation); 0: none yet */
  int path;             /* PATH_METRICS or PATH_HEALTHZ while it waits */
  int suspended;        /* waiting for its check (libmicrohttpd suspended) */
  int stale_ok;         /* a /metrics waited long: the last results do */
  int late;             /* its check ran past the deadline: answered 503 */
  uint64_t wait_us;     /* when it began to wait */
} peer;

typedef struct gauge {
  char *name;              /* full metric name */
  char *help;              /* one line */
  gm__metrics_gauge_fn fn; /* reads the value */
  void *arg;               /* for fn */
  const char *type;        /* "gauge" or "counter" */
} gauge;

struct gm__metrics {
  char *listen;                 /* [metrics] listen; NULL when off */
  struct sockaddr_storage addr; /* listen, resolved */
  int ipv6;                     /* addr is AF_INET6 */
  struct MHD_Daemon *daemon;    /* serving, or NULL */
  int port;                     /* the port bound */
  gm__metrics_view view;        /* the broker's, markets copied below */
  gm__metrics_market *markets;  /* view.markets, owned copy */
  uint64_t start_us;            /* monotonic, at gm__metrics_new */
  int64_t start_unix_ms;        /* wall clock, at gm__metrics_new */
  gm__redis *redis;             /* the checker's; NULL until connected */
  int redis_stale;              /* the checker's: reopen at the next check */
  gm__ledger *ledger;           /* read-only, the checker's; NULL until
                                   opened */
  uint64_t counted_us;          /* last outbox count; 0: never */
  uint64_t count_every_us;      /* [metrics] outbox_count_ms, in us */
  long long outbox_entries;     /* unsettled entries; -1: unknown (lock) */
  long long outbox_streams;     /* streams in gm:outboxes; -1: unknown */
  long long dead_letters;       /* rows of gm_dead_letter; -1: unknown */
  pthread_mutex_t lock;         /* gauges, the check's results and
                                   generations, one answer at a time */
  pthread_cond_t cond;          /* with lock: a check asked for, or stop */
  pthread_t checker;            /* runs the checks; valid while daemon */
  int stopping;                 /* the checker is to end (lock) */
  uint64_t want_gen;            /* checks asked for (lock) */
  uint64_t done_gen;            /* checks finished (lock) */
  int redis_ok, ledger_ok;      /* the last finished check's (lock) */
  char redis_why[512];          /* why Redis failed it (lock) */
  char ledger_why[512];         /* why the ledger failed it (lock) */
  char checking[640];           /* what the check under way waits for
                                   (lock), for a request answered 503 when
                                   it runs past the deadline */
  uint64_t checking_us;         /* since when (lock) */
  int done[2];                  /* pipe: the checker (or a test) wakes the
                                   HTTP thread */
  _Atomic int fail_poll;        /* a test's: the next poll fails with this
                                   errno (0: none) */
  void (*count_hook)(void *);   /* a test's: runs before a count's Redis
                                   commands */
  void *count_hook_arg;         /* for it */
  /* Refusals a client causes (a connection closed as too slow, or to make
     room) and libmicrohttpd's lines (one per request it refuses): anyone
     who reaches the port could write the log at the rate they connect, so
     a few a window, the next printed line counting the rest.  This
     server's own windows, not the process's. */
  gm__log_limit slow_log;
  gm__log_limit mhd_log;
  /* A failed outbox count: a line a minute at most while Redis stays in
     trouble (the checker's, counted at most every outbox_count_ms). */
  gm__log_limit count_log;
  gm__log_limit dead_log; /* the same for a failed count of gm_dead_letter */
  gauge *gauges;          /* extra gauges */
  size_t n_gauges;        /* how many */
  pthread_t thread;       /* runs libmicrohttpd; valid while daemon */
  int wake[2];            /* written to stop the thread */
  peer *peers;            /* open connections (the thread's) */
  size_t n_open;          /* of them, not closing */
  uint64_t deadline_us;   /* REQUEST_DEADLINE_MS, or a test's */
  int epoll_gone;         /* libmicrohttpd's epoll descriptor was closed
                             under the thread: libmicrohttpd is not called
                             again (gm__metrics_stop) */
};

/* ---- text ---- */

static void text_vprintf(gm__metrics_text *t, const char *fmt, va_list ap) {
  for (;;) {
    va_list cp;
    va_copy(cp, ap);
    size_t room = t->cap - t->len;
    int n = vsnprintf(t->data ? t->data + t->len : NULL, room, fmt, cp);
    va_end(cp);
    if (n < 0) abort();
    if ((size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap - t->len <= (size_t)n) cap *= 2;
    t->data = realloc(t->data, cap);
    if (!t->data) abort();
    t->cap = cap;
  }
}

__attribute__((format(printf, 2, 3))) static void text_printf(
    gm__metrics_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(t, fmt, ap);
  va_end(ap);
}

/* A label value as the exposition format escapes it (\\, \", \n). */
static void label_value(char *out, size_t outlen, const char *v) {
  size_t n = 0;
  for (; v && *v && n + 3 < outlen; v++) {
    if (*v == '\\' || *v == '"') {
      out[n++] = '\\';
      out[n++] = *v;
    } else if (*v == '\n') {
      out[n++] = '\\';
      out[n++] = 'n';
    } else {
      out[n++] = *v;
    }
  }
  out[n] = '\0';
}

static void family(gm__metrics_text *t, const char *name, const char *type,
                   const char *help) {
  text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample: name{labels} value, or name value when labels is "". */
static void sample_u(gm__metrics_text *t, const char *name, const char *labels,
                     uint64_t v) {
  text_printf(t, "%s%s%s%s %llu\n", name, *labels ? "{" : "", labels,
              *labels ? "}" : "", (unsigned long long)v);
}

static void sample_d(gm__metrics_text *t, const char *name, const char *labels,
                     double v) {
  text_printf(t, "%s%s%s%s %.15g\n", name, *labels ? "{" : "", labels,
              *labels ? "}" : "", v);
}

/* Microseconds as seconds, exactly: "0.000016". */
static void us_seconds(char *out, size_t outlen, uint64_t us) {
  snprintf(out, outlen, "%llu.%06llu", (unsigned long long)(us / 1000000u),
           (unsigned long long)(us % 1000000u));
}

/* A sample of a time in microseconds, in seconds. */
static void sample_us(gm__metrics_text *t, const char *name, uint64_t us) {
  char secs[32];
  us_seconds(secs, sizeof secs, us);
  text_printf(t, "%s %s\n", name, secs);
}

void gm__metrics_histogram(gm__metrics_text *t, const char *name,
                           const char *labels, const gm__stats *s) {
  uint64_t counts[GM_LATENCY_BUCKETS], total = 0;
  for (unsigned i = 0; i < GM_LATENCY_BUCKETS; i++)
    total += counts[i] = atomic_load(&s->latency[i]);
  const char *sep = *labels ? "," : "";
  uint64_t cum = 0;
  unsigned fine = 0;
  for (unsigned e = GM__METRICS_LE_FIRST; e <= GM__METRICS_LE_LAST; e++) {
    uint64_t le = (uint64_t)1 << e;
    /* Fine buckets hold [lower, bound) in whole microseconds: all of those
       with bound <= le are at most le. */
    while (fine < GM_LATENCY_BUCKETS && gm__stats_bucket_bound(fine) <= le)
      cum += counts[fine++];
    char secs[32];
    us_seconds(secs, sizeof secs, le);
    text_printf(t, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, secs,
                (unsigned long long)cum);
  }
  text_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
              (unsigned long long)total);
  char sum[32];
  us_seconds(sum, sizeof sum, atomic_load(&s->latency_sum_us));
  text_printf(t, "%s_sum%s%s%s %s\n", name, *labels ? "{" : "", labels,
              *labels ? "}" : "", sum);
  text_printf(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
              *labels ? "}" : "", (unsigned long long)total);
}

/* ---- config ---- */

static int parse_listen(gm__metrics *m, const char *v, char *err,
                        size_t errlen) {
  char host[256];
  const char *colon = strrchr(v, ':');
  const char *h = v;
  size_t hlen = colon ? (size_t)(colon - v) : 0;
  if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']') { /* [::1]:7479 */
    h = v + 1;
    hlen -= 2;
  }
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1] || *end ||
      port < 0 || port > 65535) {
    snprintf(err, errlen,
             "[metrics] listen = %s: expected HOST:PORT with a port from 0 to "
             "65535, e.g. 127.0.0.1:7479 or [::1]:7479 (0: any free port); "
             "leave it empty to turn the metrics endpoint off",
             v);
    return -1;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0 || !res || res->ai_addrlen > sizeof m->addr) {
    snprintf(err, errlen,
             "[metrics] listen = %s: cannot resolve host '%s' (%s); give an "
             "address of this machine, e.g. 127.0.0.1:7479",
             v, host, rc ? gai_strerror(rc) : "no address");
    if (res) freeaddrinfo(res);
    return -1;
  }
  memcpy(&m->addr, res->ai_addr, res->ai_addrlen);
  m->ipv6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  return 0;
}

static int64_t wall_ms(void) {
  /* Not gm__clock_now_ms: a test's manual clock must not move uptime or the
     settler's lag, which compare with Redis's own clock (stream ids); so
     this host's clock with the offset to Redis's ([clock] source = redis),
     or the host's alone with source = local. */
  return (gm__clock_local_us() + gm__clock_offset_us()) / 1000;
}

/* The port [metrics] listen names (0: any free one). */
static int listen_port(const gm__metrics *m) {
  if (m->addr.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&m->addr)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&m->addr)->sin_port);
}

/* The TCP port of a ZeroMQ endpoint ("tcp://host:port"), 0 for another
   transport or no number. */
static int endpoint_port(const char *endpoint) {
  const char *colon = strrchr(endpoint, ':');
  if (strncmp(endpoint, "tcp://", 6) != 0 || !colon || colon < endpoint + 6)
    return 0;
  char *end = NULL;
  long port = strtol(colon + 1, &end, 10);
  return end != colon + 1 && !*end && port > 0 && port <= 65535 ? (int)port : 0;
}

gm__metrics *gm__metrics_new(const gm__config *cfg, char *err, size_t errlen) {
  gm__metrics *m = calloc(1, sizeof *m);
  if (!m) abort();
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  /* The log limits are this server's: a test's many servers in one process
     (or a restart) do not share one window. */
  m->slow_log = (gm__log_limit)GM__LOG_LIMIT(5, 10000);
  m->mhd_log = (gm__log_limit)GM__LOG_LIMIT(5, 10000);
  m->count_log = (gm__log_limit)GM__LOG_LIMIT(1, 60000);
  m->dead_log = (gm__log_limit)GM__LOG_LIMIT(1, 60000);
  m->done[0] = m->done[1] = -1;
  m->start_us = gm__clock_mono_us();
  m->start_unix_ms = wall_ms();
  m->outbox_entries = m->outbox_streams = m->dead_letters = -1;
  m->wake[0] = m->wake[1] = -1;
  m->deadline_us = REQUEST_DEADLINE_MS * 1000ull;
  long every_ms = OUTBOX_EVERY_MS;
  if (gm__config_int(cfg, "metrics", "outbox_count_ms", OUTBOX_EVERY_MS, 100,
                     3600000, &every_ms, err, errlen) != 0) {
    gm__metrics_destroy(&m);
    return NULL;
  }
  m->count_every_us = (uint64_t)every_ms * 1000u;
  snprintf(m->checking, sizeof m->checking,
           "gmd's metrics checker thread to begin the check");
  const char *v = gm__config_get(cfg, "metrics", "listen", "");
  if (*v) {
    if (parse_listen(m, v, err, errlen) != 0) {
      gm__metrics_destroy(&m);
      return NULL;
    }
    m->listen = strdup(v);
    if (!m->listen) abort();
  }
  return m;
}

/* Whether listen is IPv6's any address ([::]): served on IPv4 too, as
   0.0.0.0 would be (for all of this machine's addresses, as the messages
   say); another IPv6 address is served on IPv6 only. */
static int dual_stack(const gm__metrics *m) {
  return m->addr.ss_family == AF_INET6 &&
         IN6_IS_ADDR_UNSPECIFIED(
             &((const struct sockaddr_in6 *)&m->addr)->sin6_addr);
}

/* errno of binding a socket to [metrics] listen's address (port: the
   configured one, or 0 for any), or 0 when the bind works; the socket is
   closed at once.  Options as libmicrohttpd sets them (SO_REUSEADDR, and
   IPv6 only on an IPv6 socket but [::]'s). */
static int bind_errno(const gm__metrics *m, int port) {
  struct sockaddr_storage a = m->addr;
  socklen_t len = sizeof(struct sockaddr_in);
  if (a.ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
    len = sizeof(struct sockaddr_in6);
  } else {
    ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
  }
  int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int on = 1, v6only = !dual_stack(m);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (a.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  int e = bind(fd, (struct sockaddr *)&a, len) == 0 ? 0 : errno;
  close(fd);
  return e;
}

/* The listen address's host part, as numbers. */
static void listen_host(const gm__metrics *m, char host[NI_MAXHOST]) {
  snprintf(host, NI_MAXHOST, "?");
  getnameinfo((const struct sockaddr *)&m->addr,
              m->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in),
              host, NI_MAXHOST, NULL, 0, NI_NUMERICHOST);
}

/* "[metrics] listen = V: ADDR is not an address of this machine ...". */
static void not_ours(const gm__metrics *m, char *err, size_t errlen) {
  char host[NI_MAXHOST];
  listen_host(m, host);
  snprintf(err, errlen,
           "[metrics] listen = %s: %s is not an address of this machine "
           "(%s), so gmd cannot serve metrics there; give one of its "
           "addresses (`ip -brief address` lists them): 127.0.0.1 (or [::1]) "
           "to serve this machine only, 0.0.0.0 (or [::]) for all of its "
           "addresses, or leave it empty to turn metrics off",
           m->listen, host, strerror(EADDRNOTAVAIL));
}

/* "[metrics] listen = V: ADDR cannot be listened on ..." (bind's EINVAL: a
   link-local IPv6 address without its interface, an IPv4-mapped one). */
static void unusable(const gm__metrics *m, char *err, size_t errlen) {
  char host[NI_MAXHOST];
  listen_host(m, host);
  snprintf(err, errlen,
           "[metrics] listen = %s: gmd cannot listen on %s (%s): a "
           "link-local IPv6 address needs its interface, e.g. "
           "[fe80::1%%eth0]:7479, and an IPv4 address is given as such, "
           "e.g. 10.0.0.5:7479, not as [::ffff:10.0.0.5]; or give 127.0.0.1 "
           "(or [::1]) to serve this machine only, 0.0.0.0 (or [::]) for all "
           "of its addresses, or leave it empty to turn metrics off",
           m->listen, host, strerror(EINVAL));
}

int gm__metrics_check_address(const gm__metrics *m, char *err, size_t errlen) {
  if (!m || !m->listen) return 0;
  int e = bind_errno(m, 0);
  if (e == EADDRNOTAVAIL)
    not_ours(m, err, errlen);
  else if (e == EINVAL)
    unusable(m, err, errlen);
  else
    return 0;
  return -1;
}

/* ---- Redis and the ledger, on the checker thread ---- */

/* Where the checker's Redis is, for messages: as its connection says, or
   from the address before it first connected. */
static const char *redis_where(const gm__metrics *m, char *buf, size_t len) {
  if (m->redis) return gm__redis_where(m->redis);
  return gm__redis_addr_where(&m->view.redis, buf, len);
}

/* What the check under way waits for from now on ("Redis at ... to answer
   PING"): a request whose check runs past the deadline is answered 503
   saying so.  On the checker thread, before each step that waits on Redis
   or the ledger. */
size_t gm__metrics_fit_text(char *out, size_t cap, const char *s) {
  if (!cap) return 0;
  /* Repaired whole, then cut: a character cut before the repair would be
     replaced, not left out. */
  size_t len = strlen(s);
  char *fixed = malloc(3 * len + 1);
  if (!fixed) abort();
  size_t n = gm__utf8_repair(s, len, fixed);
  n = gm__utf8_cut(fixed, n, cap - 1);
  memcpy(out, fixed, n);
  out[n] = '\0';
  free(fixed);
  return n;
}

__attribute__((format(printf, 2, 3))) static void checking(gm__metrics *m,
                                                           const char *fmt,
                                                           ...) {
  /* Formatted whole, then made fit (gm__metrics_fit_text). */
  char raw[2 * sizeof m->checking], fixed[sizeof m->checking];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  gm__metrics_fit_text(fixed, sizeof fixed, raw);
  pthread_mutex_lock(&m->lock);
  memcpy(m->checking, fixed, sizeof fixed);
  m->checking_us = gm__clock_mono_us();
  pthread_mutex_unlock(&m->lock);
}

/* Whether a connection of r failed earlier: the first master's or, on a
   cluster, any master's.  Such a node connection is opened again at the
   start of the next check (with the map read again: a failover moves the
   masters), not at the end of the check that saw it fail: a master that is
   stopped, not dead, still accepts a connection, and with a password the
   new connection's AUTH waited out a second timeout, failed, and was kept,
   so the first check after the master went on reported it down again. */
static int broken(gm__redis *r) {
  if (gm__redis_context(r)->err) return 1;
  if (!gm__redis_is_cluster(r)) return 0;
  redisContext *masters[64];
  size_t n = gm__redis_masters(r, masters, 64);
  for (size_t i = 0; i < n && i < 64; i++)
    if (!masters[i] || masters[i]->err) return 1;
  return 0;
}

/* The thread's Redis connection, (re)opened when needed; NULL and why. */
static redisContext *redis_ready(gm__metrics *m, char *why, size_t whylen) {
  if (!m->redis) {
    /* The probe's timeout from the first connection on, for every
       connection of it (on a cluster one per node) and every reopening: a
       stopped Redis (the kernel still accepts) fails the connect's PING in
       2 s. */
    gm__redis_addr addr = m->view.redis;
    addr.io_us = REDIS_TIMEOUT_S * 1000000LL;
    m->redis = gm__redis_connect(&addr, why, whylen);
    if (!m->redis) return NULL;
  } else if (m->redis_stale || broken(m->redis)) {
    if (gm__redis_reconnect(m->redis) != GM_OK) {
      gm__count(GM__COUNT_REDIS_ERRORS);
      /* Why the new connection failed (on a cluster, why reading the slot
         map did), in words: "no reply within 2 s" for a stalled Redis's
         AUTH, not hiredis's "Resource temporarily unavailable".  Up but
         refusing the password is not "down": say which. */
      char buf[256];
      const char *e =
          gm__redis_is_cluster(m->redis)
              ? gm__redis_last_error(m->redis)
              : gm__redis_ctx_error(m->redis, gm__redis_context(m->redis), buf,
                                    sizeof buf);
      if (gm__redis_auth_failed(e))
        gm__redis_auth_message(why, whylen, gm__redis_where(m->redis), e);
      else if (gm__redis_is_cluster(m->redis))
        snprintf(why, whylen, "Redis is not reachable at %s (%s)",
                 gm__redis_where(m->redis), e);
      else
        gm__redis_unreachable_message(m->redis, e, why, whylen);
      return NULL;
    }
    m->redis_stale = 0;
  }
  return gm__redis_context(m->redis);
}

/* Redis answers PING (on a cluster, every master the map names: a broker
   whose calls reach a master that is down fails them); 1, or 0 and why;
   *closed is set when the failure was a connection Redis had closed (end of
   file, broken pipe, reset), which a new connection may not meet. */
static int redis_check_once(gm__metrics *m, char *why, size_t whylen,
                            int *closed) {
  *closed = 0;
  redisContext *c = redis_ready(m, why, whylen);
  if (!c) return 0;
  redisContext *masters[64];
  size_t n = gm__redis_masters(m->redis, masters, 64);
  if (n > 64) n = 64;
  int ok = 1;
  /* After a closed connection the other masters are tried too: theirs may
     be closed as well (all of gmd's connections closed, a restart), and
     each found so is opened again at the start of the retry.  Any other
     failure ends the check (a stalled master's timeout is not waited out
     twice). */
  for (size_t i = 0; i < n && (ok || *closed); i++) {
    c = masters[i];
    if (gm__redis_is_cluster(m->redis) && c) {
      /* The node waited on, not the cluster's seeds. */
      char node[300];
      gm__redis_ctx_where(c, node, sizeof node);
      checking(m, "Redis at %s to answer PING", node);
    }
    errno = 0;
    redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
    int io_errno = errno;
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
      freeReplyObject(r);
      continue;
    }
    /* Not a read timeout (EAGAIN): a stalled Redis is not retried. */
    int was_closed = !r && c &&
                     (c->err == REDIS_ERR_EOF ||
                      (c->err == REDIS_ERR_IO &&
                       (io_errno == EPIPE || io_errno == ECONNRESET)));
    gm__count(GM__COUNT_REDIS_ERRORS);
    /* The first failure is the one reported, unless it was a closed
       connection (opened again below) and this one is not: this master is
       the one that is down or stalled. */
    int first = ok, report = ok || (*closed && !was_closed);
    ok = 0;
    *closed = first ? was_closed : *closed && was_closed;
    if (!report) {
      if (r) freeReplyObject(r);
      continue;
    }
    char where[300];
    if (c)
      gm__redis_ctx_where(c, where, sizeof where);
    else
      snprintf(where, sizeof where, "%s", gm__redis_where(m->redis));
    int noauth =
        r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOAUTH", 6);
    /* In words: "no reply within 2 s" for a stalled Redis, not hiredis's
       "Resource temporarily unavailable". */
    char ebuf[256];
    snprintf(why, whylen, "Redis at %s does not answer PING (%s)%s", where,
             r && r->type == REDIS_REPLY_ERROR ? r->str
             : c && c->err ? gm__redis_ctx_error(m->redis, c, ebuf, sizeof ebuf)
             : !c          ? "not connected"
                           : "unexpected reply",
             noauth ? ": it requires a password; set [redis] "
                      "password_file and restart gmd"
                    : "");
    if (r) freeReplyObject(r);
  }
  return ok;
}

static int redis_check(gm__metrics *m, char *why, size_t whylen) {
  int closed;
  if (redis_check_once(m, why, whylen, &closed)) return 1;
  /* A connection Redis closed since the last scrape (a restart, or a
     cluster node's connection closed while gmd could not authenticate)
     fails its first command: try once more on a new one, so a Redis that is
     back is not reported down for one scrape.  Not after a timeout or an
     error reply: the same wait or answer again would only double the
     probe. */
  if (!closed) return 0;
  char first[512];
  snprintf(first, sizeof first, "%s", why);
  if (redis_check_once(m, why, whylen, &closed)) return 1;
  /* The first failure is the one to report (Redis gone: the new
     connection is refused), unless the retry reached Redis and a master
     failed PING (on a cluster maybe another than the first, whose
     connection was only closed: the one down or stalled), or found Redis
     refusing the password, or gmd without one (its file unreadable). */
  if (!strstr(why, "[redis] password_file") &&
      !strstr(why, "does not answer PING"))
    snprintf(why, whylen, "%s", first);
  return 0;
}

/* A one-number query on the read-only ledger; -1 and why on failure. */
static long long ledger_count(gm__metrics *m, const char *sql, char *why,
                              size_t whylen) {
  if (!m->ledger) {
    m->ledger = gm__ledger_open(m->view.ledger_path, 1, why, whylen);
    if (!m->ledger) return -1;
  }
  sqlite3 *db = gm__ledger_db(m->ledger);
  sqlite3_stmt *st = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  if (n < 0) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    snprintf(why, whylen, "the ledger %s is not readable (%s)",
             m->view.ledger_path, sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return n;
}

/* Settler alive: 1 yes, 0 stuck (or waiting for a lease its file may not
   take while nobody holds it), -1 this broker does not settle. */
static int settler_check(const gm__metrics *m, char *why, size_t whylen) {
  if (!m->view.settler) return -1;
  if (m->view.lease && gm__lease_refused(m->view.lease)) {
    /* The thread beats on while it waits for a lease it may not take. */
    snprintf(why, whylen,
             "nothing settles: no broker holds the settle lease, and this "
             "broker's ledger file is not the book of record (the gmd log "
             "names both); after a restore, delete the book's mark "
             "(docs/operations.md, Restore)");
    return 0;
  }
  gm__settle_stats ss;
  gm__settler_stats(m->view.settler, &ss);
  uint64_t now = gm__clock_mono_us();
  if (now - ss.beat_us < SETTLER_STUCK_US) return 1;
  snprintf(why, whylen,
           "the settler has shown no sign of life for %llu s (see the gmd "
           "log for what it is waiting on)",
           (unsigned long long)((now - ss.beat_us) / 1000000u));
  return 0;
}

/* A count that failed on c (reply r, or none): said at WARN, at most a line
   a minute while it lasts, in words ("no reply within 2 s", not hiredis's
   "Resource temporarily unavailable") and naming the Redis node. */
static void count_failed(gm__metrics *m, const redisContext *c,
                         const redisReply *r, const char *command) {
  char where[300], ebuf[256];
  gm__redis_ctx_where(c, where, sizeof where);
  gm__log_limited(
      &m->count_log, GM_LOG_WARN, "metrics",
      "could not count the outbox streams: Redis at %s did not answer %s "
      "(%s); greenmarket_outbox_entries and greenmarket_outbox_streams are "
      "left out of scrapes until a count works (tried again at most every "
      "%llu ms, [metrics] outbox_count_ms)",
      where, command,
      r && r->type == REDIS_REPLY_ERROR
          ? r->str
          : gm__redis_ctx_error(m->redis, c, ebuf, sizeof ebuf),
      (unsigned long long)(m->count_every_us / 1000u));
}

/* Sums XLEN over gm:outboxes, at most every [metrics] outbox_count_ms:
   0 when not due, or 1 and out[] = {entries, streams, dead letters}, -1
   each where unknown.  A count that fails marks the connection to be
   reopened at the start of the next check (redis_ready), not at once: a
   Redis that stalled in the middle still accepts a connection, and the new
   connection's PING (and AUTH) would wait out another timeout in this very
   check, doubling the probe's wait. */
static int count_outboxes(gm__metrics *m, int redis_ok, long long out[3]) {
  uint64_t now = gm__clock_mono_us();
  if (m->counted_us && now - m->counted_us < m->count_every_us) return 0;
  /* Also after a failure: a Redis in trouble is not asked at every scrape. */
  m->counted_us = now;
  out[0] = out[1] = -1;
  char why[512], where[300];
  checking(m, "the ledger %s to count gm_dead_letter", m->view.ledger_path);
  out[2] =
      ledger_count(m, "SELECT count(*) FROM gm_dead_letter", why, sizeof why);
  if (out[2] < 0)
    gm__log_limited(&m->dead_log, GM_LOG_WARN, "metrics",
                    "could not count the dead letters (gm_dead_letter): %s; "
                    "greenmarket_dead_letters is left out of scrapes until a "
                    "count works (tried again at most every %llu ms, "
                    "[metrics] outbox_count_ms)",
                    why, (unsigned long long)(m->count_every_us / 1000u));
  if (!redis_ok || !redis_ready(m, why, sizeof why)) return 1;
  /* Each key on the context of its node (on a cluster, the master of its
     slot; on one Redis, the one context), which a 503 names. */
  static const char registry[] = "gm:outboxes";
  redisContext *c =
      gm__redis_context_for(m->redis, registry, sizeof registry - 1);
  gm__redis_ctx_where(c, where, sizeof where);
  checking(m,
           "Redis at %s to answer the outbox count (SMEMBERS gm:outboxes, "
           "then XLEN of each stream)",
           where);
  if (m->count_hook) m->count_hook(m->count_hook_arg);
  redisReply *set = redisCommand(c, "SMEMBERS %s", registry);
  if (!set || set->type != REDIS_REPLY_ARRAY) {
    gm__count(GM__COUNT_REDIS_ERRORS);
    count_failed(m, c, set, "SMEMBERS gm:outboxes");
    if (!set || (set->type == REDIS_REPLY_ERROR &&
                 gm__redis_transient(set->str, set->len)))
      m->redis_stale = 1;
    if (set) freeReplyObject(set);
    return 1;
  }
  long long total = 0;
  int ok = 1, stale = 0;
  redisContext **on = malloc(XLEN_CHUNK * sizeof *on);
  if (!on) abort();
  for (size_t i = 0; ok && i < set->elements; i += XLEN_CHUNK) {
    size_t end =
        i + XLEN_CHUNK < set->elements ? i + XLEN_CHUNK : set->elements;
    for (size_t k = i; k < end; k++) {
      on[k - i] = gm__redis_context_for(m->redis, set->element[k]->str,
                                        set->element[k]->len);
      redisAppendCommand(on[k - i], "XLEN %b", set->element[k]->str,
                         set->element[k]->len);
    }
    /* Every reply is read, even after a failure: another node's
       connection must not keep replies nobody read. */
    for (size_t k = i; k < end; k++) {
      if (on[k - i] != c) {
        /* Another node of a cluster: the one waited on from now. */
        c = on[k - i];
        gm__redis_ctx_where(c, where, sizeof where);
        checking(m,
                 "Redis at %s to answer the outbox count (XLEN of each "
                 "stream)",
                 where);
      }
      redisReply *r = NULL;
      if (redisGetReply(on[k - i], (void **)&r) != REDIS_OK || !r) {
        if (ok) count_failed(m, on[k - i], NULL, "XLEN");
        ok = 0;
        stale = 1;
        continue; /* that connection is broken: no reply follows */
      }
      if (r->type == REDIS_REPLY_INTEGER) {
        total += r->integer;
      } else if (r->type == REDIS_REPLY_ERROR &&
                 gm__redis_transient(r->str, r->len)) {
        if (ok) count_failed(m, on[k - i], r, "XLEN");
        ok = 0; /* MOVED (a map older than a resharding), a failover... */
        stale = 1;
      }
      freeReplyObject(r);
    }
    if (!ok) gm__count(GM__COUNT_REDIS_ERRORS);
  }
  free(on);
  /* redis_ready checks one context only (on a cluster, the first
     master's): a broken connection to another node, or a slot map older
     than a MOVED, is repaired at the start of the next check (the map read
     again, broken node connections reopened), or every later count would
     fail the same way. */
  if (stale) m->redis_stale = 1;
  if (ok) {
    out[0] = total;
    out[1] = (long long)set->elements;
  }
  freeReplyObject(set);
  return 1;
}

/* The checker thread: runs a check whenever one is asked for (a request
   that found none under way), publishes its results, wakes the HTTP
   thread to answer the requests waiting on it. */
static void *check_loop(void *arg) {
  gm__metrics *m = arg;
  pthread_setname_np(pthread_self(), "gmd-metrics-chk");
  pthread_mutex_lock(&m->lock);
  for (;;) {
    while (!m->stopping && m->want_gen == m->done_gen)
      pthread_cond_wait(&m->cond, &m->lock);
    if (m->stopping) break;
    uint64_t gen = m->want_gen;
    pthread_mutex_unlock(&m->lock);
    char rwhy[512] = "", lwhy[512] = "", where[300];
    checking(m, "Redis at %s to answer PING",
             redis_where(m, where, sizeof where));
    int rok = redis_check(m, rwhy, sizeof rwhy);
    checking(m, "the ledger %s to answer a read of gm_schema",
             m->view.ledger_path);
    int lok = ledger_count(m, "SELECT count(*) FROM gm_schema", lwhy,
                           sizeof lwhy) >= 0;
    long long counts[3];
    int counted = count_outboxes(m, rok, counts);
    pthread_mutex_lock(&m->lock);
    m->redis_ok = rok;
    m->ledger_ok = lok;
    memcpy(m->redis_why, rwhy, sizeof rwhy);
    memcpy(m->ledger_why, lwhy, sizeof lwhy);
    if (counted) {
      m->outbox_entries = counts[0];
      m->outbox_streams = counts[1];
      m->dead_letters = counts[2];
    }
    m->done_gen = gen;
    snprintf(m->checking, sizeof m->checking,
             "gmd's metrics checker thread to begin the check");
    m->checking_us = gm__clock_mono_us();
    ssize_t w = write(m->done[1], "", 1); /* full pipe: already woken */
    (void)w;
  }
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/* ---- the exposition ---- */

/* Errors by status: slots of unknown statuses count as INTERNAL, as the
   wire names them, so no two samples share a label set. */
static void errors_by_status(gm__metrics_text *t, const char *name,
                             const char *labels, const gm__stats *s) {
  uint64_t by[GM_STATUS_SLOTS] = {0};
  for (unsigned i = 1; i < GM_STATUS_SLOTS; i++) {
    const char *n = gm__status_name((gm_status)i);
    int j = gm__status_parse(n, strlen(n));
    by[j > 0 ? j : GM_INTERNAL] += atomic_load(&s->status[i]);
  }
  for (unsigned i = 1; i < GM_STATUS_SLOTS; i++) {
    if (!by[i]) continue;
    char l[800];
    snprintf(l, sizeof l, "%s%sstatus=\"%s\"", labels, *labels ? "," : "",
             gm__status_name((gm_status)i));
    sample_u(t, name, l, by[i]);
  }
}

static void requests(gm__metrics_text *t, const gm__metrics *m) {
  const gm__metrics_view *v = &m->view;
  char mk[256], me[256], l[640];
  family(t, "greenmarket_market_requests_total", "counter",
         "Requests addressed to a market (\"gm\": the broker's own methods), "
         "answered, whatever their status.");
  for (size_t i = 0; i < v->n_markets; i++) {
    label_value(mk, sizeof mk, v->markets[i].name);
    snprintf(l, sizeof l, "market=\"%s\"", mk);
    sample_u(t, "greenmarket_market_requests_total", l,
             atomic_load(&v->markets[i].stats->requests));
  }
  family(t, "greenmarket_market_request_errors_total", "counter",
         "Requests to a market answered with a status other than OK, by "
         "status.");
  for (size_t i = 0; i < v->n_markets; i++) {
    label_value(mk, sizeof mk, v->markets[i].name);
    snprintf(l, sizeof l, "market=\"%s\"", mk);
    errors_by_status(t, "greenmarket_market_request_errors_total", l,
                     v->markets[i].stats);
  }
  family(t, "greenmarket_market_request_duration_seconds", "histogram",
         "Time from a request reaching a worker to its reply being sent, per "
         "market.");
  for (size_t i = 0; i < v->n_markets; i++) {
    label_value(mk, sizeof mk, v->markets[i].name);
    snprintf(l, sizeof l, "market=\"%s\"", mk);
    gm__metrics_histogram(t, "greenmarket_market_request_duration_seconds", l,
                          v->markets[i].stats);
  }
  family(t, "greenmarket_method_requests_total", "counter",
         "Requests that reached a method, answered, whatever their status.");
  for (size_t i = 0; i < v->n_markets; i++)
    for (size_t k = 0; k < v->markets[i].n_methods; k++) {
      label_value(mk, sizeof mk, v->markets[i].name);
      label_value(me, sizeof me, v->markets[i].methods[k].name);
      snprintf(l, sizeof l, "market=\"%s\",method=\"%s\"", mk, me);
      sample_u(t, "greenmarket_method_requests_total", l,
               atomic_load(&v->markets[i].method_stats[k].requests));
    }
  family(t, "greenmarket_method_request_errors_total", "counter",
         "Requests that reached a method and were answered with a status "
         "other than OK, by status.");
  for (size_t i = 0; i < v->n_markets; i++)
    for (size_t k = 0; k < v->markets[i].n_methods; k++) {
      label_value(mk, sizeof mk, v->markets[i].name);
      label_value(me, sizeof me, v->markets[i].methods[k].name);
      snprintf(l, sizeof l, "market=\"%s\",method=\"%s\"", mk, me);
      errors_by_status(t, "greenmarket_method_request_errors_total", l,
                       &v->markets[i].method_stats[k]);
    }
  family(t, "greenmarket_method_request_duration_seconds", "histogram",
         "Time from a request reaching a worker to its reply being sent, per "
         "method.");
  for (size_t i = 0; i < v->n_markets; i++)
    for (size_t k = 0; k < v->markets[i].n_methods; k++) {
      label_value(mk, sizeof mk, v->markets[i].name);
      label_value(me, sizeof me, v->markets[i].methods[k].name);
      snprintf(l, sizeof l, "market=\"%s\",method=\"%s\"", mk, me);
      gm__metrics_histogram(t, "greenmarket_method_request_duration_seconds", l,
                            &v->markets[i].method_stats[k]);
    }
}

static void settlement(gm__metrics_text *t, const gm__metrics *m, int alive) {
  gm__settle_stats ss;
  gm__settler_stats(m->view.settler, &ss);
  family(t, "greenmarket_settle_running", "gauge",
         "1 while this broker's settler thread shows signs of life (0: stuck "
         "for over a minute, or nothing settles because this broker's file "
         "is not the book of record and no broker holds the lease).");
  sample_u(t, "greenmarket_settle_running", "", alive == 1);
  family(t, "greenmarket_settle_lag_seconds", "gauge",
         "Age of the oldest outbox entry in the batch the settler has in "
         "hand (0 when its last read found nothing to settle).");
  int64_t lag_ms = ss.oldest_ms > 0 ? wall_ms() - ss.oldest_ms : 0;
  sample_us(t, "greenmarket_settle_lag_seconds",
            lag_ms > 0 ? (uint64_t)lag_ms * 1000u : 0);
  family(t, "greenmarket_settle_entries_total", "counter",
         "Outbox entries written to the ledger (entries found settled "
         "already are not counted).");
  sample_u(t, "greenmarket_settle_entries_total", "", ss.settled);
  family(t, "greenmarket_settle_batches_total", "counter",
         "Settlement transactions committed.");
  sample_u(t, "greenmarket_settle_batches_total", "", ss.batches);
  family(t, "greenmarket_settle_batch_failures_total", "counter",
         "Settlement transactions rolled back (a settle callback or SQLite "
         "failed); their entries are read again.");
  sample_u(t, "greenmarket_settle_batch_failures_total", "", ss.batch_failures);
  family(t, "greenmarket_settle_batch_size", "histogram",
         "Outbox entries per committed settlement transaction.");
  uint64_t cum = 0;
  for (unsigned i = 0; i + 1 < GM__SETTLE_SIZE_BUCKETS; i++) {
    cum += ss.batch_size[i];
    text_printf(t, "greenmarket_settle_batch_size_bucket{le=\"%llu\"} %llu\n",
                (unsigned long long)gm__settle_size_bound(i),
                (unsigned long long)cum);
  }
  cum += ss.batch_size[GM__SETTLE_SIZE_BUCKETS - 1];
  text_printf(t, "greenmarket_settle_batch_size_bucket{le=\"+Inf\"} %llu\n",
              (unsigned long long)cum);
  sample_u(t, "greenmarket_settle_batch_size_sum", "", ss.batch_entries);
  sample_u(t, "greenmarket_settle_batch_size_count", "", cum);
}

/* The exposition, from the last finished check (m->lock held). */
static void exposition(gm__metrics_text *t, gm__metrics *m) {
  const gm__metrics_view *v = &m->view;
  char why[512], b[256], l[512];
  int redis_ok = m->redis_ok;
  int ledger_ok = m->ledger_ok;
  int alive = settler_check(m, why, sizeof why);

  family(t, "greenmarket_build_info", "gauge",
         "Always 1; the labels say which gmd this is.");
  label_value(b, sizeof b, v->broker);
  snprintf(l, sizeof l, "version=\"%s\",broker=\"%s\"", GM_VERSION, b);
  sample_u(t, "greenmarket_build_info", l, 1);
  family(t, "greenmarket_market_info", "gauge",
         "Always 1 per loaded market; the labels give its plugin's version.");
  for (size_t i = 0; i < v->n_markets; i++) {
    char mk[160], ver[160];
    label_value(mk, sizeof mk, v->markets[i].name);
    label_value(ver, sizeof ver, v->markets[i].version);
    snprintf(l, sizeof l, "market=\"%s\",version=\"%s\"", mk, ver);
    sample_u(t, "greenmarket_market_info", l, 1);
  }
  family(t, "greenmarket_start_time_seconds", "gauge",
         "When gmd started, in seconds since 1970.");
  sample_us(t, "greenmarket_start_time_seconds",
            (uint64_t)m->start_unix_ms * 1000u);
  family(t, "greenmarket_uptime_seconds", "gauge",
         "Seconds since gmd started.");
  sample_us(t, "greenmarket_uptime_seconds", gm__clock_mono_us() - m->start_us);
  family(t, "greenmarket_redis_up", "gauge",
         "1 when Redis answered PING at this scrape.");
  sample_u(t, "greenmarket_redis_up", "", redis_ok);
  family(t, "greenmarket_ledger_up", "gauge",
         "1 when the ledger was readable at this scrape.");
  sample_u(t, "greenmarket_ledger_up", "", ledger_ok);
  family(t, "greenmarket_bad_frames_total", "counter",
         "Frames that were not a request gmd could read (dropped or "
         "answered INVALID_ARGUMENT or RESOURCE_EXHAUSTED).");
  sample_u(t, "greenmarket_bad_frames_total", "", atomic_load(v->bad_frames));
  family(t, "greenmarket_redis_errors_total", "counter",
         "Redis commands that did not reach Redis or whose reply could not "
         "be read (refused connections, I/O errors, timeouts).");
  sample_u(t, "greenmarket_redis_errors_total", "",
           gm__count_get(GM__COUNT_REDIS_ERRORS));
  family(t, "greenmarket_ledger_errors_total", "counter",
         "Ledger statements SQLite refused or failed.");
  sample_u(t, "greenmarket_ledger_errors_total", "",
           gm__count_get(GM__COUNT_LEDGER_ERRORS));
  requests(t, m);
  if (v->settler) settlement(t, m, alive);
  if (m->outbox_entries >= 0) {
    family(t, "greenmarket_outbox_entries", "gauge",
           "Entries in the outbox streams, that is not settled yet (read at "
           "most every 5 s).");
    sample_u(t, "greenmarket_outbox_entries", "", (uint64_t)m->outbox_entries);
    family(t, "greenmarket_outbox_streams", "gauge",
           "Outbox streams (gm:outboxes; read at most every 5 s).");
    sample_u(t, "greenmarket_outbox_streams", "", (uint64_t)m->outbox_streams);
  }
  if (m->dead_letters >= 0) {
    family(t, "greenmarket_dead_letters", "gauge",
           "Outbox entries set aside in the ledger because their settle "
           "callback kept failing (gm admin dead-letters lists them; read at "
           "most every 5 s).");
    sample_u(t, "greenmarket_dead_letters", "", (uint64_t)m->dead_letters);
  }
  for (size_t i = 0; i < m->n_gauges; i++) {
    double value;
    if (m->gauges[i].fn(m->gauges[i].arg, &value) != 0) continue;
    family(t, m->gauges[i].name, m->gauges[i].type, m->gauges[i].help);
    sample_d(t, m->gauges[i].name, "", value);
  }
}

/* ---- HTTP ---- */

static peer *peer_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}

/* A step of the connection's request is done: the next is due within the
   deadline from now.  between: the step done was the answer taken (no
   request under way until the next one's bytes come). */
static void step(struct MHD_Connection *conn, int between) {
  peer *p = peer_of(conn);
  if (!p) return;
  p->since_us = gm__clock_mono_us();
  p->between = between;
}

/* Closes p's connection: its socket shut down (not closed: the descriptor
   is libmicrohttpd's), which libmicrohttpd reads as the client gone and
   closes at its next turn.  On the thread that runs libmicrohttpd only. */
static void peer_close(gm__metrics *m, peer *p) {
  if (p->closing) return;
  p->closing = 1;
  m->n_open--;
  if (p->fd >= 0) shutdown(p->fd, SHUT_RDWR);
  /* A request waiting for its check: resumed now, so libmicrohttpd sees
     the socket shut and closes it (on_request refuses to answer it). */
  if (p->suspended) {
    p->suspended = 0;
    MHD_resume_connection(p->conn);
  }
}

/* Resumes the requests whose check has finished, and the /metrics scrapes
   that waited METRICS_WAIT_MS for theirs while an earlier check's results
   are there to serve.  On the HTTP thread. */
static void resume_ready(gm__metrics *m) {
  pthread_mutex_lock(&m->lock);
  uint64_t done = m->done_gen;
  pthread_mutex_unlock(&m->lock);
  uint64_t now = gm__clock_mono_us();
  for (peer *p = m->peers; p; p = p->next) {
    if (!p->suspended) continue;
    int long_wait = p->path == PATH_METRICS && done > 0 &&
                    now - p->wait_us >= METRICS_WAIT_MS * 1000ull;
    if (p->want > done && !long_wait) continue;
    p->stale_ok = long_wait;
    p->suspended = 0;
    MHD_resume_connection(p->conn);
  }
}

static int same_ip(const peer *a, const peer *b) {
  return a->family == b->family &&
         !memcmp(a->ip, b->ip, a->family == AF_INET6 ? 16 : 4);
}

/* One connection more than MAX_CONNECTIONS: closes one of the others, from
   the address holding the most (a single client cannot crowd out others),
   among them the one whose current step began first (a newcomer sends its
   request at once; a slow client is the one waiting). */
static void make_room(gm__metrics *m, peer *newcomer) {
  peer *victim = NULL;
  size_t most = 0;
  for (peer *p = m->peers; p; p = p->next) {
    if (p->closing || p == newcomer) continue;
    size_t same = 0;
    for (peer *q = m->peers; q; q = q->next)
      same += !q->closing && same_ip(p, q);
    if (!victim || same > most ||
        (same == most && p->since_us < victim->since_us)) {
      victim = p;
      most = same;
    }
  }
  if (!victim) return;
  gm__log_limited(&m->slow_log, GM_LOG_WARN, "metrics",
                  "closed a connection from %s to serve a new one: %d open "
                  "at most (the address holding the most gives one up, its "
                  "longest waiting); many connections from one address are "
                  "a broken scraper or an attack",
                  victim->text, MAX_CONNECTIONS);
  peer_close(m, victim);
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  gm__metrics *m = cls;
  if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
    peer *p = *socket_context;
    if (!p) return;
    if (p->prev)
      p->prev->next = p->next;
    else
      m->peers = p->next;
    if (p->next) p->next->prev = p->prev;
    if (!p->closing) m->n_open--;
    free(p);
    *socket_context = NULL;
    return;
  }
  if (toe != MHD_CONNECTION_NOTIFY_STARTED) return;
  peer *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->conn = conn;
  p->fd = -1;
  p->since_us = gm__clock_mono_us();
  p->between = 1;
  snprintf(p->text, sizeof p->text, "?");
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (i) p->fd = i->connect_fd;
  i = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = i ? i->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    p->family = AF_INET6;
    memcpy(p->ip, &a->sin6_addr, 16);
    inet_ntop(AF_INET6, &a->sin6_addr, p->text, sizeof p->text);
  } else if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    p->family = AF_INET;
    memcpy(p->ip, &a->sin_addr, 4);
    inet_ntop(AF_INET, &a->sin_addr, p->text, sizeof p->text);
  }
  p->next = m->peers;
  if (m->peers) m->peers->prev = p;
  m->peers = p;
  m->n_open++;
  *socket_context = p;
  if (m->n_open > MAX_CONNECTIONS) make_room(m, p);
}

/* A request answered: on a kept-alive connection the next one's headers
   are due within the deadline from now. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)req_cls;
  (void)toe;
  peer *p = peer_of(conn);
  if (p) {
    p->want = 0;
    p->stale_ok = 0;
    p->late = 0;
    p->path = PATH_OTHER;
  }
  step(conn, 1);
}

/* Whether p's client sent anything since its current step began (the
   kernel's time since the socket last received data; it cannot say: yes). */
static int sent_since_step(const peer *p, uint64_t now) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (p->fd < 0 || getsockopt(p->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_last_data_recv) +
                sizeof ti.tcpi_last_data_recv)
    return 1;
  /* Jiffies, in ms: a margin for their rounding. */
  return (uint64_t)ti.tcpi_last_data_recv + 50 < (now - p->since_us) / 1000;
}

/* Closes the connections whose current step is overdue.  One that sent
   nothing since it connected or since its last answer is only idle, as a
   kept-alive scraper is between scrapes (Prometheus: every 15 s): closed
   as libmicrohttpd's idle timeout does, without a line in the log. */
static void sweep(gm__metrics *m) {
  uint64_t now = gm__clock_mono_us();
  for (peer *p = m->peers; p; p = p->next) {
    if (p->closing || now - p->since_us <= m->deadline_us) continue;
    if (p->between && !sent_since_step(p, now)) {
      peer_close(m, p);
      continue;
    }
    /* Waiting for its health check: the check is the slow one (Redis or
       the ledger answering slowly), not the client.  Answered 503 saying
       which check (on_request), not closed: a load balancer or an
       orchestrator must read "unhealthy", not a broken connection. */
    if (p->suspended) {
      char what[sizeof m->checking];
      pthread_mutex_lock(&m->lock);
      snprintf(what, sizeof what, "%s", m->checking);
      pthread_mutex_unlock(&m->lock);
      gm__log_limited(&m->slow_log, GM_LOG_WARN, "metrics",
                      "answered 503 to a request from %s: it waited %llu ms "
                      "for a health check that had not finished (still "
                      "waiting for %s: the check is slow, not the client)",
                      p->text, (unsigned long long)((now - p->wait_us) / 1000),
                      what);
      p->late = 1;
      p->suspended = 0;
      /* Its answer is due to be taken within the deadline from now. */
      p->since_us = now;
      MHD_resume_connection(p->conn);
      continue;
    }
    gm__log_limited(&m->slow_log, GM_LOG_WARN, "metrics",
                    "closed a connection from %s: its request was not in, "
                    "or its answer not taken, within %llu ms (a client too "
                    "slow, or holding the connection)",
                    p->text, (unsigned long long)(m->deadline_us / 1000));
    peer_close(m, p);
  }
}

/* Waits after a poll that failed (but for a bug, below): 50 ms, doubling
   up to 1 s while it lasts. */
#define POLL_BACKOFF_MIN_MS 50
#define POLL_BACKOFF_MAX_MS 1000
/* While polling keeps failing, a line at most this often. */
#define POLL_LOG_EVERY_US (60u * 1000000u)

/* Whether poll's error e is a bug of gmd's, which would come again at
   once: a descriptor closed under the thread (EBADF; poll itself reports
   it as POLLNVAL), a bad address or count (EFAULT, EINVAL).  Any other
   error (ENOMEM, EAGAIN, one poll is not documented to give) may pass:
   the thread waits and serves on. */
static int poll_bug(int e) {
  return e == EBADF || e == EFAULT || e == EINVAL;
}

/* What a passing poll error e means, for the log. */
static const char *poll_cause(int e) {
  return e == ENOMEM || e == EAGAIN
             ? "the host is short of memory"
             : "an error poll is not known to give; if it lasts, report it "
               "with this line";
}

/* A bug: the listening socket and every connection closed, so a probe
   fails at once (connection refused) instead of waiting on a port nobody
   answers; said at ERROR, gmd serves requests on.  epoll_ok: libmicrohttpd's
   epoll descriptor is still open (its quiesce takes the listening socket
   out of it, and aborts the process when it cannot); else the listening
   socket is shut down in place, which stops it listening. */
static void stop_serving(gm__metrics *m, const char *why, int epoll_ok) {
  gm__log(GM_LOG_ERROR, "metrics",
          "no longer serving /metrics and /healthz: %s, a bug in gmd (please "
          "report this line); port %d closed, so probes fail at once; gmd "
          "serves requests and settles on; restart gmd to serve metrics "
          "again",
          why, m->port);
  for (peer *p = m->peers; p; p = p->next)
    if (!p->closing) {
      p->closing = 1;
      m->n_open--;
      if (p->fd >= 0) shutdown(p->fd, SHUT_RDWR);
    }
  if (epoll_ok) {
    MHD_socket l = MHD_quiesce_daemon(m->daemon);
    if (l != MHD_INVALID_SOCKET) close(l);
  } else {
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (i && i->listen_fd != MHD_INVALID_SOCKET)
      shutdown(i->listen_fd, SHUT_RDWR);
  }
}

/* The HTTP thread: libmicrohttpd's epoll descriptor and the wake pipe
   polled, libmicrohttpd run, the deadlines looked at. */
static void *serve(void *arg) {
  gm__metrics *m = arg;
  pthread_setname_np(pthread_self(), "gmd-metrics");
  const union MHD_DaemonInfo *i =
      MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  struct pollfd fds[3] = {{.fd = i ? i->epoll_fd : -1, .events = POLLIN},
                          {.fd = m->wake[0], .events = POLLIN},
                          {.fd = m->done[0], .events = POLLIN}};
  static const char *const fd_name[3] = {"libmicrohttpd's epoll descriptor",
                                         "the stop pipe", "the check pipe"};
  /* Polls failed in a row, since when, the last line. */
  unsigned failed = 0;
  uint64_t failed_since = 0, failed_logged = 0;
  int backoff_ms = POLL_BACKOFF_MIN_MS;
  for (;;) {
    int ms = LOOP_MS;
    MHD_UNSIGNED_LONG_LONG due;
    if (MHD_get_timeout(m->daemon, &due) == MHD_YES && due < (unsigned)ms)
      ms = (int)due;
    int rc = poll(fds, 3, ms);
    int e = rc < 0 ? errno : 0;
    int injected = atomic_exchange(&m->fail_poll, 0);
    if (injected) {
      rc = -1;
      e = injected;
    }
    /* A descriptor closed under the thread: poll says so per descriptor
       and at once, every time (before, a closed stop pipe ended the thread
       with the port left accepting, and a closed epoll descriptor spun). */
    int nval = -1;
    for (int k = 0; rc > 0 && k < 3 && nval < 0; k++)
      if (fds[k].revents & POLLNVAL) nval = k;
    if (nval >= 0) {
      char why[160];
      snprintf(why, sizeof why, "%s (descriptor %d) was closed under it",
               fd_name[nval], fds[nval].fd);
      stop_serving(m, why, nval != 0);
      /* Its number is no longer ours: whoever opens a file next may be
         given it, and closing it at the stop would close theirs. */
      if (nval == 0)
        m->epoll_gone = 1;
      else if (nval == 1)
        m->wake[0] = -1;
      else
        m->done[0] = -1;
      break;
    }
    if (rc < 0 && poll_bug(e)) {
      char why[160];
      snprintf(why, sizeof why, "poll failed (%s)", strerror(e));
      stop_serving(m, why, 1);
      break;
    } else if (rc < 0 && e != EINTR) {
      /* Passing (the kernel short of memory, or an error poll is not known
         to give): served on, late. */
      uint64_t now = gm__clock_mono_us();
      if (!failed++) failed_since = now;
      if (failed == 1 || now - failed_logged >= POLL_LOG_EVERY_US) {
        char run[64] = "";
        if (failed > 1)
          snprintf(run, sizeof run, ", %u times in a row over %.1f s", failed,
                   (double)(now - failed_since) / 1e6);
        gm__log(GM_LOG_WARN, "metrics",
                "polling for /metrics and /healthz requests failed (%s)%s; "
                "trying again in %d ms (doubling up to %d ms while it "
                "fails), so they are answered late meanwhile; %s",
                strerror(e), run, backoff_ms, POLL_BACKOFF_MAX_MS,
                poll_cause(e));
        failed_logged = now;
      }
      struct timespec wait = {backoff_ms / 1000,
                              (long)(backoff_ms % 1000) * 1000000L};
      nanosleep(&wait, NULL);
      backoff_ms = 2 * backoff_ms < POLL_BACKOFF_MAX_MS ? 2 * backoff_ms
                                                        : POLL_BACKOFF_MAX_MS;
      /* The failed poll said nothing: a stop is read from the wake pipe
         (non-blocking), and libmicrohttpd is run as after a timeout. */
      char c;
      if (read(m->wake[0], &c, 1) == 1) break;
      fds[0].revents = fds[1].revents = 0;
      fds[2].revents = POLLIN; /* the done pipe drained, if anything */
    } else if (rc < 0) {       /* EINTR: nothing known, the loop goes on */
      fds[0].revents = fds[1].revents = fds[2].revents = 0;
    } else if (failed) {
      gm__log(GM_LOG_INFO, "metrics",
              "polling for /metrics and /healthz requests works again, "
              "after %u failure(s) over %.1f s",
              failed, (double)(gm__clock_mono_us() - failed_since) / 1e6);
      failed = 0;
      backoff_ms = POLL_BACKOFF_MIN_MS;
    }
    if (fds[1].revents) break;
    if (fds[2].revents) {
      char drain[64];
      while (read(m->done[0], drain, sizeof drain) > 0) {
      }
    }
    resume_ready(m);
    MHD_run(m->daemon);
    sweep(m);
  }
  return NULL;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *type, gm__metrics_text *body) {
  /* Every body is UTF-8 text: what it echoes (a path the server
     percent-decoded, a method, a cut message) is repaired, not sent as
     the bytes that came. */
  if (body->data && !gm__utf8_valid(body->data, body->len)) {
    body->cap = 3 * body->len + 1;
    char *fixed = malloc(body->cap);
    if (!fixed) abort();
    body->len = gm__utf8_repair(body->data, body->len, fixed);
    fixed[body->len] = '\0';
    free(body->data);
    body->data = fixed;
  }
  struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
      body->len, body->data ? body->data : strdup(""), free);
  if (!r) {
    free(body->data);
    return MHD_NO;
  }
  body->data = NULL;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls) {
  (void)version;
  (void)upload;
  gm__metrics *m = cls;
  static int seen;
  /* The first call only announces the request (its headers are in: the
     body, none expected, is due within the deadline from now); a body
     arrives in the calls after it and is skipped. */
  if (!*req_cls) {
    *req_cls = &seen;
    step(conn, 0);
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  peer *p = peer_of(conn);
  /* Closed while it waited for its check (too slow, or to make room). */
  if (p && p->closing) return MHD_NO;
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  int path = !get                           ? PATH_OTHER
             : strcmp(url, "/metrics") == 0 ? PATH_METRICS
             : strcmp(url, "/healthz") == 0 ? PATH_HEALTHZ
                                            : PATH_OTHER;
  gm__metrics_text body = {0};
  const char *text = "text/plain; charset=utf-8";
  unsigned status = MHD_HTTP_OK;
  pthread_mutex_lock(&m->lock);
  if (path != PATH_OTHER && p) {
    /* The check this request is answered from: the one under way (or
       asked for) when it came, else a new one; asked once per request. */
    if (!p->want) {
      if (m->want_gen == m->done_gen) {
        m->want_gen++;
        pthread_cond_signal(&m->cond);
      }
      p->want = m->want_gen;
      p->path = path;
      p->wait_us = gm__clock_mono_us();
    }
    if (p->want > m->done_gen && !p->stale_ok && !p->late) {
      /* Waits without holding up the thread: resumed by resume_ready, or
         by sweep when its check runs past the deadline. */
      pthread_mutex_unlock(&m->lock);
      p->suspended = 1;
      MHD_suspend_connection(conn);
      return MHD_YES;
    }
  }
  if (path != PATH_OTHER && p && p->late && p->want > m->done_gen) {
    /* Its check is still under way past the deadline: unhealthy, saying
       which step of the check did not answer in time. */
    status = MHD_HTTP_SERVICE_UNAVAILABLE;
    text_printf(&body,
                "the health check did not answer within %g s: it has been "
                "waiting %.1f s for %s: stalled, or busy with something "
                "slow (the gmd log says more)\n",
                (double)m->deadline_us / 1e6,
                (double)(gm__clock_mono_us() - m->checking_us) / 1e6,
                m->checking);
  } else if (!get) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    text_printf(&body, "%s is not served here: use GET\n", method);
  } else if (path == PATH_METRICS) {
    text = "text/plain; version=0.0.4; charset=utf-8";
    exposition(&body, m);
  } else if (path == PATH_HEALTHZ) {
    char why[3][512] = {"", "", ""};
    snprintf(why[0], sizeof why[0], "%s", m->redis_why);
    snprintf(why[1], sizeof why[1], "%s", m->ledger_why);
    int ok[3] = {m->redis_ok, m->ledger_ok,
                 settler_check(m, why[2], sizeof why[2]) != 0};
    if (ok[0] && ok[1] && ok[2]) {
      text_printf(&body, "ok\n");
    } else {
      status = MHD_HTTP_SERVICE_UNAVAILABLE;
      for (int i = 0; i < 3; i++)
        if (!ok[i]) text_printf(&body, "%s\n", why[i]);
    }
  } else {
    status = MHD_HTTP_NOT_FOUND;
    text_printf(&body, "%s: not found; gmd serves /metrics and /healthz\n",
                url);
  }
  pthread_mutex_unlock(&m->lock);
  /* The answer is due to be taken within the deadline from now, however
     long the checks took. */
  step(conn, 0);
  return respond(conn, status, text, &body);
}

/* libmicrohttpd's lines: one per request it refuses (a path or headers too
   big: 414, 431), so anyone who reaches the port could write the log at
   the rate they send; a few a window, the next printed one counting the
   rest.  Its lines at start (a bind that fails) come before any request. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  gm__metrics *m = cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  /* Given the address as a sockaddr, libmicrohttpd names the port it was
     passed apart (none: 0); say the address the operator configured. */
  static const char bind0[] = "Failed to bind to port 0";
  if (m && m->listen && strncmp(line, bind0, sizeof bind0 - 1) == 0)
    gm__log(GM_LOG_WARN, "metrics", "Failed to bind to %s%s", m->listen,
            line + sizeof bind0 - 1);
  else
    gm__log_limited(&m->mhd_log, GM_LOG_WARN, "metrics", "%s", line);
}

int gm__metrics_start(gm__metrics *m, const gm__metrics_view *view, char *err,
                      size_t errlen) {
  if (!m->listen) return 0;
  m->view = *view;
  m->markets = calloc(view->n_markets + 1, sizeof *m->markets);
  if (!m->markets) abort();
  if (view->n_markets)
    memcpy(m->markets, view->markets, view->n_markets * sizeof *m->markets);
  m->view.markets = m->markets;
  /* No thread of libmicrohttpd's: serve() runs it, so the connection list
     and the deadlines are that one thread's. */
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME |
                   (dual_stack(m) ? MHD_USE_DUAL_STACK
                    : m->ipv6     ? MHD_USE_IPv6
                                  : 0);
  m->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&m->addr,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * MAX_CONNECTIONS),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, m,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, m, MHD_OPTION_END);
  if (!m->daemon) {
    const char *key = NULL, *endpoint = NULL;
    int want = listen_port(m);
    for (size_t i = 0; want && !key && i < sizeof view->own / sizeof *view->own;
         i++)
      if (view->own[i][0] && view->own[i][1] &&
          endpoint_port(view->own[i][1]) == want) {
        key = view->own[i][0];
        endpoint = view->own[i][1];
      }
    /* libmicrohttpd does not say why; a bind of the same address does. */
    int e = key ? 0 : bind_errno(m, want);
    if (key) {
      snprintf(err, errlen,
               "cannot serve metrics on %s: port %d is gmd's own %s (%s); set "
               "[metrics] listen to another port",
               m->listen, want, key, endpoint);
    } else if (e == EADDRNOTAVAIL) {
      not_ours(m, err, errlen);
    } else if (e == EINVAL) {
      unusable(m, err, errlen);
    } else if (e == EACCES && want > 0 && want < 1024) {
      snprintf(err, errlen,
               "cannot serve metrics on %s (%s): ports below 1024 need "
               "privileges gmd should not run with; set [metrics] listen to a "
               "port from 1024 up, e.g. 127.0.0.1:7479",
               m->listen, strerror(e));
    } else if (e == EADDRINUSE) {
      snprintf(err, errlen,
               "cannot serve metrics on %s: port %d is in use by another "
               "program (another gmd?); set [metrics] listen to a free "
               "HOST:PORT, or leave it empty to turn metrics off",
               m->listen, want);
    } else {
      snprintf(err, errlen,
               "cannot serve metrics on %s (the line above says why; is the "
               "port in use by another program, another gmd?); set [metrics] "
               "listen to a free HOST:PORT, or leave it empty to turn metrics "
               "off",
               m->listen);
    }
    return -1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
  m->port = info ? info->port : 0;
  int checker = 0;
  if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
      pipe2(m->done, O_CLOEXEC | O_NONBLOCK) != 0 ||
      !(checker = !pthread_create(&m->checker, NULL, check_loop, m)) ||
      pthread_create(&m->thread, NULL, serve, m) != 0) {
    snprintf(err, errlen, "cannot serve metrics on %s: no thread (%s)",
             m->listen, strerror(errno));
    if (checker) {
      pthread_mutex_lock(&m->lock);
      m->stopping = 1;
      pthread_cond_signal(&m->cond);
      pthread_mutex_unlock(&m->lock);
      pthread_join(m->checker, NULL);
    }
    MHD_stop_daemon(m->daemon);
    m->daemon = NULL;
    m->port = 0;
    return -1;
  }
  gm__log(GM_LOG_INFO, "metrics",
          "serving /metrics and /healthz on %s (port %d)", m->listen, m->port);
  return 0;
}

/* Daemons given up on (abandon): kept reachable, never freed. */
typedef struct abandoned {
  struct abandoned *next;
  struct MHD_Daemon *daemon;
} abandoned;
static abandoned *abandoned_daemons;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The stop of a server whose epoll descriptor was closed under it
 * (m->epoll_gone).  MHD_stop_daemon would take each connection out of that
 * descriptor (epoll_ctl) and close it, and libmicrohttpd panics, aborting
 * gmd in its stop, when the first fails or the close fails with EBADF
 * (MHD_PANIC, whose default calls abort(); libmicrohttpd 0.9.75's
 * MHD_cleanup_connections and MHD_stop_daemon); and if another file has
 * been given the number since,
 * the stop would close that file, another thread's, instead.  So
 * libmicrohttpd is not called again: the sockets gmd knows are its (each
 * connection's, shut down already, and the listening socket) are closed
 * here, and the daemon's memory (and its own wake-up descriptor) is left
 * as it is, once, after a bug already logged at ERROR.
 */
static void abandon(gm__metrics *m) {
  for (peer *p = m->peers, *next; p; p = next) {
    next = p->next;
    if (p->fd >= 0) close(p->fd);
    free(p);
  }
  m->peers = NULL;
  m->n_open = 0;
  const union MHD_DaemonInfo *i =
      MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  if (i && i->listen_fd != MHD_INVALID_SOCKET) close(i->listen_fd);
  abandoned *a = malloc(sizeof *a);
  if (!a) abort();
  a->daemon = m->daemon;
  pthread_mutex_lock(&abandoned_lock);
  a->next = abandoned_daemons;
  abandoned_daemons = a;
  pthread_mutex_unlock(&abandoned_lock);
}

void gm__metrics_stop(gm__metrics *m) {
  if (!m || !m->daemon) return;
  ssize_t w = write(m->wake[1], "", 1);
  (void)w;
  pthread_join(m->thread, NULL);
  /* The checker finishes the check under way (bounded by the Redis
     timeout), then ends. */
  pthread_mutex_lock(&m->lock);
  m->stopping = 1;
  pthread_cond_signal(&m->cond);
  pthread_mutex_unlock(&m->lock);
  pthread_join(m->checker, NULL);
  m->stopping = 0;
  /* A pipe's end closed under the thread is no longer ours (-1). */
  for (int i = 0; i < 2; i++) {
    if (m->wake[i] >= 0) close(m->wake[i]);
    if (m->done[i] >= 0) close(m->done[i]);
    m->wake[i] = m->done[i] = -1;
  }
  if (m->epoll_gone) {
    abandon(m);
  } else {
    /* libmicrohttpd stops only with no connection suspended. */
    for (peer *p = m->peers; p; p = p->next)
      if (p->suspended) {
        p->suspended = 0;
        MHD_resume_connection(p->conn);
      }
    /* Closes every connection (on_connection frees each peer). */
    MHD_stop_daemon(m->daemon);
  }
  m->epoll_gone = 0;
  m->daemon = NULL;
  m->port = 0;
  gm__redis_destroy(&m->redis);
  gm__ledger_close(&m->ledger);
}

void gm__metrics_destroy(gm__metrics **mp) {
  if (!mp || !*mp) return;
  gm__metrics *m = *mp;
  gm__metrics_stop(m);
  for (size_t i = 0; i < m->n_gauges; i++) {
    free(m->gauges[i].name);
    free(m->gauges[i].help);
  }
  free(m->gauges);
  free(m->markets);
  free(m->listen);
  for (int i = 0; i < 2; i++) {
    if (m->wake[i] >= 0) close(m->wake[i]);
    if (m->done[i] >= 0) close(m->done[i]);
  }
  pthread_cond_destroy(&m->cond);
  pthread_mutex_destroy(&m->lock);
  free(m);
  *mp = NULL;
}

void gm__metrics_set_request_deadline_ms(gm__metrics *m, unsigned ms) {
  if (m) m->deadline_us = (uint64_t)ms * 1000u;
}

void gm__metrics_set_count_hook(gm__metrics *m, void (*fn)(void *), void *arg) {
  if (!m) return;
  m->count_hook = fn;
  m->count_hook_arg = arg;
}

void gm__metrics_fail_poll(gm__metrics *m, int err) {
  if (!m || !m->daemon) return;
  atomic_store(&m->fail_poll, err ? err : EINVAL);
  ssize_t w = write(m->done[1], "", 1);
  (void)w;
}

int gm__metrics_port(const gm__metrics *m) {
  return m ? m->port : 0;
}

static void gm__metrics_extra(gm__metrics *m, const char *type,
                              const char *name, const char *help,
                              gm__metrics_gauge_fn fn, void *arg) {
  if (!m) return;
  pthread_mutex_lock(&m->lock);
  m->gauges = realloc(m->gauges, (m->n_gauges + 1) * sizeof *m->gauges);
  if (!m->gauges) abort();
  gauge *g = &m->gauges[m->n_gauges++];
  g->name = strdup(name);
  g->help = strdup(help);
  if (!g->name || !g->help) abort();
  g->fn = fn;
  g->arg = arg;
  g->type = type;
  pthread_mutex_unlock(&m->lock);
}

void gm__metrics_gauge_add(gm__metrics *m, const char *name, const char *help,
                           gm__metrics_gauge_fn fn, void *arg) {
  gm__metrics_extra(m, "gauge", name, help, fn, arg);
}

void gm__metrics_counter_add(gm__metrics *m, const char *name, const char *help,
                             gm__metrics_gauge_fn fn, void *arg) {
  gm__metrics_extra(m, "counter", name, help, fn, arg);
}
