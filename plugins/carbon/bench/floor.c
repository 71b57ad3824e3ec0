/*
 * The floor of carbon's Lua (compare.c, --floor): the Redis commands carbon
 * issues for each order, run by floor.lua with none of carbon's logic.
 *
 * Recording: the keys of a set of carbon instruments (symbols starting
 * with `from`) are copied to the same keys under another prefix (`to`, of
 * the same length), then a connection in MONITOR mode takes, for every
 * FCALL of carbon's place function on `from`'s keys, the commands Redis
 * shows it ran ("[0 lua]" lines, right after the call's own line: Redis
 * runs one command at a time), the host's idempotency GET and SET and the
 * outbox XADDs included, every argument with `from` renamed `to`.  Each
 * call's commands are kept as one msgpack array of argument arrays.
 *
 * Replay: call i is EVALSHA floor.lua 0 <its commands>, on the copied
 * keys, in the recorded order, so those keys go through the same states as
 * the recorded ones did: same keys, same values, same command count.  What
 * the floor adds is the EVALSHA's one larger argument and its msgpack
 * unpack (a third of its instructions): EVALSHA floor.lua 0 <commands> n
 * does only that, and the comparison takes it off (compare.c).  What it
 * leaves out is everything carbon's Lua does around its commands, its
 * reply included.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

struct bench_floor {
  char from[16], to[16], fn[BENCH_FN_MAX], sentinel[64];
  size_t flen;
  redisContext *mon; /* the MONITOR connection */
  pthread_t thread;
  int running;
  /* The calls recorded: call i is blob[off[i] .. off[i + 1]). */
  char *blob;
  size_t len, cap;
  size_t *off;
  long n, ncap;
  /* The call being recorded: its commands (msgpack, no header yet). */
  char *cur;
  size_t clen, ccap;
  long ccmds;
  int in_call;
  char err[160];
};

static void floor__grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  char *b = realloc(*buf, c);
  if (!b) abort();
  *buf = b;
  *cap = c;
}

static void floor__put(char **buf, size_t *len, size_t *cap, const void *p,
                       size_t n) {
  floor__grow(buf, cap, *len + n);
  memcpy(*buf + *len, p, n);
  *len += n;
}

/* A msgpack array header of n items (fixarray or array 32). */
static void floor__array(char **buf, size_t *len, size_t *cap, size_t n) {
  unsigned char h[5];
  if (n < 16) {
    h[0] = (unsigned char)(0x90 | n);
    floor__put(buf, len, cap, h, 1);
    return;
  }
  h[0] = 0xdd;
  for (int i = 0; i < 4; i++) h[1 + i] = (unsigned char)(n >> (24 - 8 * i));
  floor__put(buf, len, cap, h, 5);
}

/* A msgpack string of n bytes (str 8, 16 or 32 header as needed). */
static void floor__str(char **buf, size_t *len, size_t *cap, const char *s,
                       size_t n) {
  unsigned char h[5];
  size_t hl;
  if (n < 32) {
    h[0] = (unsigned char)(0xa0 | n);
    hl = 1;
  } else if (n < 256) {
    h[0] = 0xd9;
    h[1] = (unsigned char)n;
    hl = 2;
  } else if (n < 65536) {
    h[0] = 0xda;
    h[1] = (unsigned char)(n >> 8);
    h[2] = (unsigned char)n;
    hl = 3;
  } else {
    h[0] = 0xdb;
    for (int i = 0; i < 4; i++) h[1 + i] = (unsigned char)(n >> (24 - 8 * i));
    hl = 5;
  }
  floor__put(buf, len, cap, h, hl);
  floor__put(buf, len, cap, s, n);
}

/* Ends the call being recorded: its header, then its commands. */
static void floor__end_call(bench_floor *f) {
  if (!f->in_call) return;
  f->in_call = 0;
  if (f->n + 1 >= f->ncap) {
    f->ncap = f->ncap ? 2 * f->ncap : 1 << 14;
    f->off = realloc(f->off, (size_t)f->ncap * sizeof *f->off);
    if (!f->off) abort();
  }
  if (f->n == 0) f->off[0] = 0;
  floor__array(&f->blob, &f->len, &f->cap, (size_t)f->ccmds);
  floor__put(&f->blob, &f->len, &f->cap, f->cur, f->clen);
  f->off[++f->n] = f->len;
}

/* One MONITOR argument, "..." with sdscatrepr's escapes, from *p; its
 * bytes into out (room for the line's length).  -1 when malformed. */
static int floor__arg(const char **p, const char *end, char *out,
                      size_t *olen) {
  const char *s = *p;
  size_t n = 0;
  while (s < end && *s == ' ') s++;
  if (s >= end || *s != '"') return -1;
  for (s++; s < end && *s != '"'; s++) {
    if (*s != '\\') {
      out[n++] = *s;
      continue;
    }
    if (++s >= end) return -1;
    switch (*s) {
      case 'n':
        out[n++] = '\n';
        break;
      case 'r':
        out[n++] = '\r';
        break;
      case 't':
        out[n++] = '\t';
        break;
      case 'a':
        out[n++] = '\a';
        break;
      case 'b':
        out[n++] = '\b';
        break;
      case 'x': {
        char hex[3] = {0};
        if (end - s < 3) return -1;
        memcpy(hex, s + 1, 2);
        out[n++] = (char)strtol(hex, NULL, 16);
        s += 2;
        break;
      }
      default:
        out[n++] = *s;
        break; /* \\ and \" */
    }
  }
  if (s >= end) return -1;
  *p = s + 1;
  *olen = n;
  return 0;
}

/* Renames every `from` in a[0..n) to `to` (same length). */
static void floor__rename(const bench_floor *f, char *a, size_t n) {
  for (size_t i = 0; i + f->flen <= n; i++)
    if (memcmp(a + i, f->from, f->flen) == 0) memcpy(a + i, f->to, f->flen);
}

/* One MONITOR line; 1 once the sentinel came, -1 when malformed. */
static int floor__line(bench_floor *f, const char *s, size_t len) {
  const char *end = s + len, *b = memchr(s, '[', len);
  const char *e = b ? memchr(b, ']', (size_t)(end - b)) : NULL;
  if (!e) return -1;
  const char *client = memchr(b, ' ', (size_t)(e - b));
  int lua = client && e - client == 4 && memcmp(client + 1, "lua", 3) == 0;
  char *arg = malloc(len + 1);
  if (!arg) abort();
  const char *p = e + 1;
  size_t alen;
  int rc = 0;
  if (!lua) {
    /* A call of its own: ours when it is place's FCALL on `from`'s keys. */
    floor__end_call(f);
    if (floor__arg(&p, end, arg, &alen)) goto bad;
    if (alen == 4 && strncasecmp(arg, "ECHO", 4) == 0) {
      if (floor__arg(&p, end, arg, &alen) == 0 && alen == strlen(f->sentinel) &&
          memcmp(arg, f->sentinel, alen) == 0)
        rc = 1;
    } else if (alen == 5 && strncasecmp(arg, "FCALL", 5) == 0 &&
               floor__arg(&p, end, arg, &alen) == 0 && alen == strlen(f->fn) &&
               memcmp(arg, f->fn, alen) == 0 &&
               memmem(p, (size_t)(end - p), f->from, f->flen)) {
      f->in_call = 1;
      f->clen = 0;
      f->ccmds = 0;
    }
    free(arg);
    return rc;
  }
  if (!f->in_call) {
    free(arg);
    return 0;
  }
  /* The command's arguments: counted first for the array header. */
  size_t nargs = 0;
  for (const char *q = p; floor__arg(&q, end, arg, &alen) == 0;) nargs++;
  if (nargs == 0) goto bad;
  floor__array(&f->cur, &f->clen, &f->ccap, nargs);
  while (floor__arg(&p, end, arg, &alen) == 0) {
    floor__rename(f, arg, alen);
    floor__str(&f->cur, &f->clen, &f->ccap, arg, alen);
  }
  f->ccmds++;
  free(arg);
  return 0;
bad:
  free(arg);
  return -1;
}

static void *floor__monitor(void *arg) {
  bench_floor *f = arg;
  for (;;) {
    redisReply *r = NULL;
    if (redisGetReply(f->mon, (void **)&r) != REDIS_OK || !r) {
      snprintf(f->err, sizeof f->err, "MONITOR connection failed: %s",
               f->mon->errstr);
      return NULL;
    }
    int rc = r->type == REDIS_REPLY_STATUS ? floor__line(f, r->str, r->len) : 0;
    if (rc < 0 && !f->err[0])
      snprintf(f->err, sizeof f->err, "a MONITOR line not understood: %.100s",
               r->str);
    freeReplyObject(r);
    if (rc == 1) return NULL;
  }
}

/* Copies every key of the `from` instruments to its `to` name. */
static int floor__copy_keys(bench_floor *f, redisContext *rc) {
  char cursor[32] = "0", pattern[64];
  long copied = 0;
  snprintf(pattern, sizeof pattern, "gm:{carbon:%s*", f->from);
  do {
    redisReply *r =
        redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      fprintf(stderr, "carbon-bench: floor: SCAN failed\n");
      if (r) freeReplyObject(r);
      return -1;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      const redisReply *k = r->element[1]->element[i];
      char *to = malloc(k->len + 1);
      if (!to) abort();
      memcpy(to, k->str, k->len + 1);
      floor__rename(f, to, k->len);
      redisReply *c =
          redisCommand(rc, "COPY %b %b REPLACE", k->str, k->len, to, k->len);
      int ok = c && c->type == REDIS_REPLY_INTEGER && c->integer == 1;
      if (c) freeReplyObject(c);
      free(to);
      if (!ok) {
        fprintf(stderr, "carbon-bench: floor: COPY of %s failed\n", k->str);
        freeReplyObject(r);
        return -1;
      }
      copied++;
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  if (copied == 0) {
    fprintf(stderr, "carbon-bench: floor: no keys of %s* to copy\n", f->from);
    return -1;
  }
  return 0;
}

bench_floor *bench_floor_start(const bench_opts *o, redisContext *rc,
                               const char *from, const char *to,
                               const char *place_fn) {
  bench_floor *f = calloc(1, sizeof *f);
  if (!f) abort();
  snprintf(f->from, sizeof f->from, "%s", from);
  snprintf(f->to, sizeof f->to, "%s", to);
  snprintf(f->fn, sizeof f->fn, "%s", place_fn);
  snprintf(f->sentinel, sizeof f->sentinel, "gm-floor-end-%p", (void *)f);
  f->flen = strlen(from);
  if (strlen(to) != f->flen || floor__copy_keys(f, rc)) goto fail;
  f->mon = redisConnectUnix(o->redis_path);
  if (!f->mon || f->mon->err) {
    fprintf(stderr, "carbon-bench: floor: no MONITOR connection\n");
    goto fail;
  }
  redisReply *r = redisCommand(f->mon, "MONITOR");
  int ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  if (!ok || pthread_create(&f->thread, NULL, floor__monitor, f)) {
    fprintf(stderr, "carbon-bench: floor: MONITOR failed\n");
    goto fail;
  }
  f->running = 1;
  return f;
fail:
  bench_floor_destroy(&f);
  return NULL;
}

int bench_floor_stop(bench_floor *f, redisContext *rc) {
  redisReply *r = redisCommand(rc, "ECHO %s", f->sentinel);
  if (r) freeReplyObject(r);
  pthread_join(f->thread, NULL);
  f->running = 0;
  floor__end_call(f);
  redisFree(f->mon);
  f->mon = NULL;
  if (f->err[0]) {
    fprintf(stderr, "carbon-bench: floor: %s\n", f->err);
    return -1;
  }
  return 0;
}

long bench_floor_calls(const bench_floor *f) {
  return f->n;
}

void bench_floor_build(bench_call *c, const bench_floor *f, const char *sha,
                       long i, int run) {
  c->argv[0] = "EVALSHA";
  c->argv[1] = sha;
  c->argv[2] = "0";
  c->argv[3] = f->blob + f->off[i];
  c->argv[4] = "n";
  c->argc = run ? 4 : 5;
  for (int j = 0; j < c->argc; j++) c->lens[j] = strlen(c->argv[j]);
  c->lens[3] = f->off[i + 1] - f->off[i];
  c->cancel = 0;
}

void bench_floor_destroy(bench_floor **fp) {
  bench_floor *f = *fp;
  if (!f) return;
  if (f->running) {
    /* Not stopped: the thread waits in read(), a cancellation point. */
    pthread_cancel(f->thread);
    pthread_join(f->thread, NULL);
  }
  if (f->mon) redisFree(f->mon);
  free(f->blob);
  free(f->off);
  free(f->cur);
  free(f);
  *fp = NULL;
}
