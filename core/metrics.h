/*
 * The metrics and health endpoint: Prometheus text (exposition format
 * 0.0.4) at /metrics and a health check at /healthz, over HTTP on
 * [metrics] listen (off when empty), served by libmicrohttpd on a thread of
 * its own.  A scrape reads the broker's counters (atomics) through the view
 * the broker gives at start; Redis and the ledger are checked on a second
 * thread of its own, over its own connections, one check shared by the
 * requests waiting for it.  docs/operations.md lists every metric.
 *
 *   gm__metrics *m = gm__metrics_new(cfg, err, errlen);  // parses the config
 *   gm__metrics_start(m, &view, err, errlen);            // serves
 *   gm__metrics_stop(m);                                 // before the view
 *   gm__metrics_destroy(&m);                             // goes away
 */
#ifndef GM_CORE_METRICS_H
#define GM_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "market.h"
#include "redis.h"
#include "stats.h"

struct gm__settler;
struct gm__lease;

typedef struct gm__metrics gm__metrics;

/* One market as the metrics show it; "gm" is the broker's own methods. */
typedef struct gm__metrics_market {
  const char *name;              /* market name */
  const char *version;           /* its plugin's version ("" if none) */
  const gm__stats *stats;        /* every request to the market */
  const gm_method *methods;      /* its methods ... */
  size_t n_methods;              /* ... how many ... */
  const gm__stats *method_stats; /* ... and their counters, one each */
} gm__metrics_market;

/*
 * What the broker shows.  Everything it points to must stay valid and
 * unchanged (counters aside) until gm__metrics_stop returns; start copies
 * the view itself and the markets array.
 */
typedef struct gm__metrics_view {
  const char *broker;                 /* [broker] name */
  const gm__metrics_market *markets;  /* the loaded markets, "gm" first */
  size_t n_markets;                   /* how many */
  const _Atomic uint64_t *bad_frames; /* frames that were no Request */
  const struct gm__settler *settler;  /* NULL when this broker does not
                                         settle */
  struct gm__lease *lease;            /* the settle lease; NULL: none */
  gm__redis_addr redis;               /* where Redis is */
  const char *ledger_path;            /* the ledger file */
  /* gmd's own endpoints ("[broker] feed", "tcp://127.0.0.1:7471"; NULL
     ends): a listen port that is one of them is named so when the bind
     fails. */
  const char *own[4][2];
} gm__metrics_view;

/*
 * Reads [metrics] listen ("HOST:PORT"; empty or unset: off).  NULL and err
 * (naming the key and the expected form) when the value is not usable; an
 * object that serves nothing when off.
 */
gm__metrics *gm__metrics_new(const gm__config *cfg, char *err, size_t errlen);
/* Whether [metrics] listen's address is one of this machine's (a throwaway
   socket bound to it, port 0): 0, or -1 and err saying it is not and what
   to give instead.  Run by the broker at start and by `gmd --check`, which
   binds no port of its own; off: 0. */
int gm__metrics_check_address(const gm__metrics *m, char *err, size_t errlen);
/* Starts serving (nothing when off); 0, or -1 and err. */
int gm__metrics_start(gm__metrics *m, const gm__metrics_view *view, char *err,
                      size_t errlen);
/* Stops serving and waits for a scrape in progress; idempotent. */
void gm__metrics_stop(gm__metrics *m);
/* Stops, frees; nulls *m; idempotent. */
void gm__metrics_destroy(gm__metrics **m);
/* For tests, before gm__metrics_start: the time each step of a request
   (headers in, answer taken, the next request) may take before its
   connection is closed, instead of 10 s. */
void gm__metrics_set_request_deadline_ms(gm__metrics *m, unsigned ms);
/* For tests, before gm__metrics_start: fn(arg) runs on the checker thread
   before each outbox count's Redis commands (after that check's PING). */
void gm__metrics_set_count_hook(gm__metrics *m, void (*fn)(void *), void *arg);
/* The text s fit for a reply of at most cap - 1 bytes and its NUL: its
   invalid UTF-8 replaced (U+FFFD), then cut at a character, never inside
   one (the 503's body is sent as charset=utf-8, and what a check waits for
   names a ledger path, which may hold any bytes).  Into out (cap bytes);
   returns the length. */
size_t gm__metrics_fit_text(char *out, size_t cap, const char *s);
/* For tests, once serving: the HTTP thread's next poll fails with errno
   err (EBADF, EFAULT, EINVAL, bugs: it stops serving; any other: it waits
   and goes on; see metrics.c). */
void gm__metrics_fail_poll(gm__metrics *m, int err);
/* The port served (useful with port 0: any free port); 0 when off. */
int gm__metrics_port(const gm__metrics *m);

/*
 * An extra gauge, for services that keep their own numbers (the deadline
 * service: greenmarket_deadlines_pending and greenmarket_deadlines_late).
 * fn runs on the metrics thread at every scrape and must be thread-safe
 * (read atomics, or take the service's own lock briefly); 0 and *value, or
 * -1 to leave the sample out of this scrape.  name is a full metric name
 * ("greenmarket_..."), help one line; both are copied.  fn and arg must
 * stay valid until gm__metrics_stop.  Callable from any thread, before or
 * after start; m NULL is allowed and does nothing.
 */
typedef int (*gm__metrics_gauge_fn)(void *arg, double *value);
void gm__metrics_gauge_add(gm__metrics *m, const char *name, const char *help,
                           gm__metrics_gauge_fn fn, void *arg);
/* The same for a number that only grows (TYPE counter; name it _total). */
void gm__metrics_counter_add(gm__metrics *m, const char *name, const char *help,
                             gm__metrics_gauge_fn fn, void *arg);

/* Latency bounds exported as histogram buckets: 2^i us for i from
   GM__METRICS_LE_FIRST to GM__METRICS_LE_LAST (16 us .. 8.4 s), each the
   bound of a fine bucket of gm__stats, so every count is exact. */
#define GM__METRICS_LE_FIRST 4
#define GM__METRICS_LE_LAST 23

/* Text being built: a malloc'd buffer that grows. */
typedef struct gm__metrics_text {
  char *data; /* NUL-terminated when len > 0 */
  size_t len; /* bytes used */
  size_t cap; /* bytes allocated */
} gm__metrics_text;

/*
 * Appends the exposition of a histogram of gm__stats latencies to t:
 * name_bucket{labels,le="..."} per bound, then name_sum and name_count.
 * labels is 'k="v",...' or "".  Shared with the tests, which check that
 * the coarse buckets are exact sums of the fine ones.
 */
void gm__metrics_histogram(gm__metrics_text *t, const char *name,
                           const char *labels, const gm__stats *s);

#endif
