/*
 * gm_bench_ping: what gmd costs on top of ZeroMQ itself.
 *
 * For each K (requests in flight), in the same run:
 *   echo  a plain DEALER -> ROUTER echo: a ROUTER thread in this process
 *         that sends every frame straight back, over tcp loopback;
 *   gmd   gm.ping round trips through a running gmd, with the same frames a
 *         client sends (a packed gm.Request, market "gm", method "ping").
 * It prints both rates and gmd/echo.  The echo thread carries the same bytes
 * as the gmd requests, so the two differ only by what gmd does per request.
 * Prints figures; it is never a test.  bench/run-ping starts a private gmd.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "greenmarket.pb-c.h"

/* A reply frame larger than this is no ping reply. */
#define PING_MAX_REPLY 4096

typedef struct ping_opts {
  const char *endpoint; /* gmd's ROUTER */
  double seconds;       /* measuring time per K and path */
  int ks[16];           /* the K values */
  int nks;
  int timeout_ms; /* no reply for this long: give up */
} ping_opts;

typedef struct ping_result {
  uint64_t done;   /* round trips completed */
  uint64_t errors; /* replies with a status other than OK */
  double seconds;  /* wall time of the measurement */
  uint64_t p50_us; /* median round trip */
  uint64_t p99_us; /* 99th percentile round trip */
} ping_result;

static uint64_t ping__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the in-process ROUTER echo ---- */

typedef struct ping_echo {
  void *ctx;
  char endpoint[256]; /* where it listens: tcp://127.0.0.1:<ephemeral> */
  pthread_t thread;
  void *router;
} ping_echo;

static void *ping__echo_main(void *arg) {
  ping_echo *e = arg;
  zmq_msg_t id, body;

  zmq_msg_init(&id);
  zmq_msg_init(&body);
  for (;;) {
    /* [identity, payload] in, the same two frames out: nothing else. */
    if (zmq_msg_recv(&id, e->router, 0) < 0) break;
    if (!zmq_msg_more(&id)) continue;
    if (zmq_msg_recv(&body, e->router, 0) < 0) break;
    while (zmq_msg_more(&body)) { /* not from this bench: drop extra frames */
      if (zmq_msg_recv(&body, e->router, 0) < 0) goto done;
    }
    if (zmq_msg_send(&id, e->router, ZMQ_SNDMORE) < 0) break;
    if (zmq_msg_send(&body, e->router, 0) < 0) break;
  }
done:
  zmq_msg_close(&id);
  zmq_msg_close(&body);
  return NULL;
}

static int ping__echo_start(ping_echo *e, void *ctx) {
  size_t len = sizeof e->endpoint;
  int linger = 0;

  e->ctx = ctx;
  e->router = zmq_socket(ctx, ZMQ_ROUTER);
  if (!e->router) return -1;
  zmq_setsockopt(e->router, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_bind(e->router, "tcp://127.0.0.1:*") != 0 ||
      zmq_getsockopt(e->router, ZMQ_LAST_ENDPOINT, e->endpoint, &len) != 0) {
    fprintf(stderr, "ping: cannot bind the echo ROUTER on loopback: %s\n",
            zmq_strerror(errno));
    zmq_close(e->router);
    return -1;
  }
  if (pthread_create(&e->thread, NULL, ping__echo_main, e) != 0) {
    zmq_close(e->router);
    return -1;
  }
  return 0;
}

/* ---- the client side, shared by both paths ---- */

/* The request frame for request id `id`: a packed gm.Request ping. */
static size_t ping__pack_request(uint64_t id, uint8_t *buf, size_t cap) {
  static uint8_t body[64];
  static size_t body_len;
  Gm__Request req = GM__REQUEST__INIT;

  if (!body_len) {
    Gm__PingRequest p = GM__PING_REQUEST__INIT;
    p.echo = "bench";
    body_len = gm__ping_request__pack(&p, body);
  }
  req.version = 1;
  req.request_id = id;
  req.market = "gm";
  req.method = "ping";
  req.dev_participant = "bench";
  req.body.data = body;
  req.body.len = body_len;
  if (gm__request__get_packed_size(&req) > cap) return 0;
  return gm__request__pack(&req, buf);
}

static int ping__cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * Keeps `k` requests in flight on `dealer` for `seconds`, then drains them.
 * With `gmd` set, each reply is unpacked and must be an OK ping reply with a
 * request id this run sent; else the echo must return the bytes unchanged.
 */
static int ping__run(void *dealer, int k, double seconds, int gmd,
                     int timeout_ms, ping_result *r) {
  /* Replies come back in any order (gmd has several workers), so each
   * request takes a free slot and carries it in the low 16 bits of its id. */
  uint64_t *sent_at = calloc((size_t)k, sizeof *sent_at);
  uint64_t *slot_id = calloc((size_t)k, sizeof *slot_id);
  uint32_t *free_slots = malloc((size_t)k * sizeof *free_slots);
  size_t nfree = (size_t)k;
  size_t lat_cap = 1u << 20, nlat = 0;
  uint64_t *lat = malloc(lat_cap * sizeof *lat);
  uint8_t frame[256], reply[PING_MAX_REPLY];
  uint64_t next_id = 1, inflight = 0, start, stop_at;
  int rc = -1;

  memset(r, 0, sizeof *r);
  if (!sent_at || !slot_id || !free_slots || !lat) goto out;
  for (size_t i = 0; i < nfree; i++) free_slots[i] = (uint32_t)i;
  start = ping__now_us();
  stop_at = start + (uint64_t)(seconds * 1e6);
  for (;;) {
    uint64_t now = ping__now_us();
    /* Fill the window. */
    while (now < stop_at && nfree > 0) {
      uint32_t slot = free_slots[--nfree];
      uint64_t id = next_id << 16 | slot;
      size_t len = ping__pack_request(id, frame, sizeof frame);
      if (zmq_send(dealer, frame, len, 0) != (int)len) {
        fprintf(stderr, "ping: send failed: %s\n", zmq_strerror(errno));
        goto out;
      }
      sent_at[slot] = now;
      slot_id[slot] = id;
      next_id++;
      inflight++;
    }
    if (inflight == 0) break;

    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&item, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr,
              "ping: no reply in %d ms with %" PRIu64
              " in flight; is gmd running at that endpoint?"
              " (bench/run-ping starts one)\n",
              timeout_ms, inflight);
      goto out;
    }
    int len = zmq_recv(dealer, reply, sizeof reply, 0);
    if (len < 0) goto out;
    /* A reply that names no request in flight would leave its request
     * waiting forever: the figures would mean nothing, so stop. */
    uint64_t id = 0;
    int ok = 0;
    if (len <= (int)sizeof reply && gmd) {
      Gm__Reply *rep = gm__reply__unpack(NULL, (size_t)len, reply);
      if (rep) {
        id = rep->request_id;
        ok = rep->status == GM__STATUS__OK;
        if (!ok && r->errors == 0)
          fprintf(stderr, "ping: gmd replied status %d: %s\n", (int)rep->status,
                  rep->message);
        gm__reply__free_unpacked(rep, NULL);
      }
    } else if (len <= (int)sizeof reply) {
      Gm__Request *req = gm__request__unpack(NULL, (size_t)len, reply);
      if (req) {
        id = req->request_id;
        ok = 1;
        gm__request__free_unpacked(req, NULL);
      }
    }
    uint32_t slot = (uint32_t)(id & 0xffff);
    if (id == 0 || slot >= (uint32_t)k || slot_id[slot] != id) {
      fprintf(stderr,
              "ping: a reply of %d bytes names no request in flight"
              " (request id %" PRIu64 "); is %s a greenmarket broker?\n",
              len, id, gmd ? "the endpoint" : "the echo");
      goto out;
    }
    if (!ok) r->errors++;
    now = ping__now_us();
    if (nlat < lat_cap) lat[nlat++] = now - sent_at[slot];
    slot_id[slot] = 0;
    free_slots[nfree++] = slot;
    inflight--;
    if (ok) r->done++;
  }
  r->seconds = (double)(ping__now_us() - start) / 1e6;
  if (nlat) {
    qsort(lat, nlat, sizeof *lat, ping__cmp_u64);
    r->p50_us = lat[nlat / 2];
    r->p99_us = lat[nlat * 99 / 100];
  }
  rc = 0;
out:
  free(sent_at);
  free(slot_id);
  free(free_slots);
  free(lat);
  return rc;
}

static void *ping__dealer(void *ctx, const char *endpoint) {
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0, hwm = 100000;

  if (!s) return NULL;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  if (zmq_connect(s, endpoint) != 0) {
    fprintf(stderr, "ping: cannot connect to %s: %s\n", endpoint,
            zmq_strerror(errno));
    zmq_close(s);
    return NULL;
  }
  return s;
}

/* One measurement on a fresh connection, after a short warm-up. */
static int ping__measure(void *ctx, const char *endpoint, int k, int gmd,
                         const ping_opts *o, ping_result *r) {
  void *s = ping__dealer(ctx, endpoint);
  ping_result warm;
  int rc = -1;

  if (!s) return -1;
  if (ping__run(s, k, o->seconds / 10, gmd, o->timeout_ms, &warm) == 0 &&
      ping__run(s, k, o->seconds, gmd, o->timeout_ms, r) == 0)
    rc = 0;
  zmq_close(s);
  return rc;
}

static void ping__usage(FILE *f) {
  fprintf(f,
          "usage: gm_bench_ping [--endpoint E] [--seconds S] [--k 1,16,256]\n"
          "  Prints plain ZeroMQ echo and gm.ping-through-gmd round trips per\n"
          "  second for each K requests in flight, and their ratio.\n"
          "  --endpoint E  gmd's endpoint (default tcp://127.0.0.1:7470)\n"
          "  --seconds S   measuring time per K and path (default 3)\n"
          "  --k LIST      requests in flight, comma list (default 1,16,256)\n"
          "  --timeout MS  give up after MS without a reply (default 5000)\n"
          "  bench/run-ping starts a private redis-server and gmd for it.\n");
}

static int ping__parse_ks(const char *s, ping_opts *o) {
  char *end;
  o->nks = 0;
  while (*s) {
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 10000 || o->nks == 16) return -1;
    o->ks[o->nks++] = (int)v;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return o->nks ? 0 : -1;
}

int main(int argc, char **argv) {
  ping_opts o = {"tcp://127.0.0.1:7470", 3.0, {1, 16, 256}, 3, 5000};
  static const struct option longs[] = {
      {"endpoint", required_argument, NULL, 'e'},
      {"seconds", required_argument, NULL, 's'},
      {"k", required_argument, NULL, 'k'},
      {"timeout", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  ping_echo echo = {0};
  int c, rc = 1, worst_met = 1;
  void *ctx;

  while ((c = getopt_long(argc, argv, "e:s:k:t:h", longs, NULL)) != -1) {
    switch (c) {
      case 'e':
        o.endpoint = optarg;
        break;
      case 's':
        o.seconds = atof(optarg);
        if (o.seconds <= 0) {
          fprintf(stderr, "ping: --seconds wants a positive number\n");
          return 2;
        }
        break;
      case 'k':
        if (ping__parse_ks(optarg, &o) != 0) {
          fprintf(stderr, "ping: --k wants a comma list of 1..10000\n");
          return 2;
        }
        break;
      case 't':
        o.timeout_ms = atoi(optarg);
        break;
      case 'h':
        ping__usage(stdout);
        return 0;
      default:
        ping__usage(stderr);
        return 2;
    }
  }

  ctx = zmq_ctx_new();
  if (!ctx || ping__echo_start(&echo, ctx) != 0) return 1;
  printf("gm_bench_ping: echo %s, gmd %s, %.1f s per measurement\n",
         echo.endpoint, o.endpoint, o.seconds);
  printf("%6s %14s %14s %7s %16s %16s\n", "K", "echo rt/s", "gmd rt/s", "ratio",
         "echo p50/p99 us", "gmd p50/p99 us");
  for (int i = 0; i < o.nks; i++) {
    ping_result e, g;
    int k = o.ks[i];
    if (ping__measure(ctx, echo.endpoint, k, 0, &o, &e) != 0) goto out;
    if (ping__measure(ctx, o.endpoint, k, 1, &o, &g) != 0) goto out;
    double er = (double)e.done / e.seconds, gr = (double)g.done / g.seconds;
    double ratio = er > 0 ? gr / er : 0;
    if (ratio < 0.5) worst_met = 0;
    printf("%6d %14.0f %14.0f %7.2f %8" PRIu64 "/%-7" PRIu64 " %8" PRIu64
           "/%-7" PRIu64 "\n",
           k, er, gr, ratio, e.p50_us, e.p99_us, g.p50_us, g.p99_us);
    if (g.errors || e.errors)
      printf("       (errors: echo %" PRIu64 ", gmd %" PRIu64 ")\n", e.errors,
             g.errors);
    fflush(stdout);
  }
  printf("target gmd/echo >= 0.5 at every K: %s\n",
         worst_met ? "met" : "NOT met");
  rc = 0;
out:
  /* Closing the context makes the echo thread's recv fail with ETERM. */
  zmq_ctx_shutdown(ctx);
  if (echo.router) {
    pthread_join(echo.thread, NULL);
    zmq_close(echo.router);
  }
  zmq_ctx_term(ctx);
  return rc;
}
