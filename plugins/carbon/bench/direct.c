/*
 * The carbon scripts straight from C: the ceiling and the memory figure.
 *
 * The calls are FCALLs of the functions gmd loaded: the function of a
 * script is found in the library (gm_carbon_<hash>) whose code holds the
 * script and its lib (declarations + lib.lua) as scripts.c registers them,
 * so the ceiling runs the very text gmd runs.  Calls use the host's KEYS/ARGV
 * layout (outbox, idempotency record, deadline set and claims, then the
 * plugin's keys; idem flag, now, participant, idem TTL, then its args).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "carbon.h"

extern const char bench_lua_lib[];
/* The declarations the plugin puts before lib.lua (../decl.c). */
char *carbon__lua_declarations(void);

/* The host's idempotency TTL default ([redis] idempotency_ttl). */
#define BENCH_IDEM_TTL "86400"

/* The reply field `key` of a FUNCTION LIST entry (a flat key/value array). */
static const redisReply *bench__field(const redisReply *e, const char *key) {
  for (size_t i = 0; e->type == REDIS_REPLY_ARRAY && i + 1 < e->elements;
       i += 2)
    if (e->element[i]->type == REDIS_REPLY_STRING &&
        !strcmp(e->element[i]->str, key))
      return e->element[i + 1];
  return NULL;
}

int bench_carbon_fn(redisContext *rc, const char *name, const char *script,
                    char fn[BENCH_FN_MAX]) {
  char *decl = carbon__lua_declarations();
  size_t n = strlen(decl) + strlen(bench_lua_lib) + 1;
  char *src = malloc(n);
  int rc_ = -1;
  if (!src) abort();
  snprintf(src, n, "%s%s", decl, bench_lua_lib);
  free(decl);
  char suffix[64];
  snprintf(suffix, sizeof suffix, "_%s", name);
  redisReply *r =
      redisCommand(rc, "FUNCTION LIST WITHCODE LIBRARYNAME gm_carbon_*");
  for (size_t i = 0;
       rc_ && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *code = bench__field(r->element[i], "library_code");
    const redisReply *fns = bench__field(r->element[i], "functions");
    if (!code || code->type != REDIS_REPLY_STRING || !strstr(code->str, src) ||
        !strstr(code->str, script) || !fns || fns->type != REDIS_REPLY_ARRAY)
      continue;
    for (size_t j = 0; rc_ && j < fns->elements; j++) {
      const redisReply *f = bench__field(fns->element[j], "name");
      size_t fl = f && f->type == REDIS_REPLY_STRING ? f->len : 0;
      if (fl > strlen(suffix) && fl < BENCH_FN_MAX &&
          !strcmp(f->str + fl - strlen(suffix), suffix)) {
        memcpy(fn, f->str, fl + 1);
        rc_ = 0;
      }
    }
  }
  if (rc_)
    fprintf(stderr,
            "carbon-bench: Redis has no function with the carbon %s script: "
            "gmd has not loaded it as this bench builds it.  Rebuild the "
            "bench with the same tree as gmd (it takes the scripts from "
            "plugins/carbon/), run it against gmd's Redis, and let gmd run "
            "a %s call first\n",
            name, name);
  if (r) freeReplyObject(r);
  free(src);
  return rc_;
}

/* The keys of instrument `symbol` in the host's layout; `outbox` names the
 * stream the calls append to (a bench stream no settler drains). */
void bench_keys_init(bench_keys *k, const char *symbol, const char *outbox) {
  snprintf(k->tag, sizeof k->tag, "carbon:%s", symbol);
  snprintf(k->outbox, sizeof k->outbox, "gm:{%s}:%s", k->tag, outbox);
  snprintf(k->inst, sizeof k->inst, "gm:{%s}:i", k->tag);
  snprintf(k->noidem, sizeof k->noidem, "gm:{%s}:idem:-", k->tag);
  snprintf(k->dl, sizeof k->dl, "gm:{%s}:dl", k->tag);
  snprintf(k->dlc, sizeof k->dlc, "gm:{%s}:dl:claims", k->tag);
}

/* Builds the FCALL of `a` for account `acct` (idem: a unique key, or
 * NULL for a call without one). */
void bench_call_build(bench_call *c, const bench_keys *k, const char *fn,
                      const char *script, int acct, const char *idem,
                      const bench_action *a) {
  int i = 0;
  bench_account_name(acct, c->who);
  c->acct = acct;
  c->cancel = a->kind == BENCH_CANCEL;
  if (idem)
    snprintf(c->idem, sizeof c->idem, "gm:{%s}:idem:%s:%s:%s", k->tag, c->who,
             script, idem);
  else
    snprintf(c->idem, sizeof c->idem, "%s", k->noidem);
  snprintf(c->now, sizeof c->now, "%" PRId64, BENCH_NOW_MS);
  c->argv[i++] = "FCALL";
  c->argv[i++] = fn;
  c->argv[i++] = "5";
  c->argv[i++] = k->outbox;
  c->argv[i++] = c->idem;
  c->argv[i++] = k->dl;
  c->argv[i++] = k->dlc;
  c->argv[i++] = k->inst;
  c->argv[i++] = idem ? "1" : "0";
  c->argv[i++] = c->now;
  c->argv[i++] = c->who;
  c->argv[i++] = BENCH_IDEM_TTL;
  if (c->cancel) {
    snprintf(c->id, sizeof c->id, "%s", a->cancel);
    c->argv[i++] = "cancel";
    c->argv[i++] = c->id;
    c->argv[i++] = "0";
  } else {
    snprintf(c->px, sizeof c->px, "%" PRId64, a->price);
    snprintf(c->qty, sizeof c->qty, "%" PRId64, a->quantity);
    c->argv[i++] = "new";
    c->argv[i++] = a->buy ? "b" : "s";
    c->argv[i++] = "L";
    c->argv[i++] = a->kind == BENCH_REST ? "0" : "3"; /* GTC : IOC */
    c->argv[i++] = c->px;
    c->argv[i++] = c->qty;
    c->argv[i++] = "0";  /* expire_ms */
    c->argv[i++] = "0";  /* post_only */
    c->argv[i++] = "0";  /* stp: the account's */
    c->argv[i++] = "";   /* client order id */
    c->argv[i++] = "64"; /* max steps (carbon.c's default) */
  }
  c->argc = i;
  for (int j = 0; j < i; j++) c->lens[j] = strlen(c->argv[j]);
}

/* The reply the script gave, out of the host's wrapper ({error "gm:host
 * <due> <emitted>", reply}: core/redis.c) that runs which append to the
 * outbox or set a deadline answer with. */
const redisReply *bench_reply_unwrap(const redisReply *r) {
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[0]->type == REDIS_REPLY_ERROR &&
      strncmp(r->element[0]->str, "gm:host ", 8) == 0)
    return r->element[1];
  return r;
}

/* Field i (0: the tag) of a reply record: an array of strings, or one
 * string of NUL-separated fields (lib.lua's packed records); NULL when it
 * has no such field.  A packed record's fields end at their NUL. */
static const char *bench__rec_field(const redisReply *rec, size_t i) {
  if (rec->type == REDIS_REPLY_ARRAY)
    return i < rec->elements && rec->element[i]->type == REDIS_REPLY_STRING
               ? rec->element[i]->str
               : NULL;
  if (rec->type != REDIS_REPLY_STRING) return NULL;
  const char *p = rec->str, *end = rec->str + rec->len;
  for (; i > 0; i--) {
    p += strlen(p) + 1;
    if (p > end) return NULL;
  }
  return p;
}

/* A place reply's order: its local id and state; 0 or -1. */
int bench_reply_order(const redisReply *r, const char **id, int *state,
                      long *fills) {
  *fills = 0;
  r = bench_reply_unwrap(r);
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return -1;
  for (size_t i = 0; i < r->elements; i++) {
    const char *tag = bench__rec_field(r->element[i], 0);
    if (tag && tag[0] == 'F') (*fills)++;
  }
  const char *oid = bench__rec_field(r->element[0], CARBON_ORD_id),
             *st = bench__rec_field(r->element[0], CARBON_ORD_st);
  if (!oid || !st || !bench__rec_field(r->element[0], CARBON_ORD_N - 1))
    return -1;
  *id = oid;
  *state = atoi(st);
  return 0;
}

int bench_ceiling_run(const bench_opts *o, redisContext *rc, const char *symbol,
                      bench_result *r) {
  char place_sha[BENCH_FN_MAX], amend_sha[BENCH_FN_MAX];
  int n = o->accounts, depth = o->ceiling_depth, rc_ = -1;
  bench_pool *pools = calloc((size_t)n, sizeof *pools);
  bench_rng *rngs = calloc((size_t)n, sizeof *rngs);
  uint64_t *seq = calloc((size_t)n, sizeof *seq);
  bench_call *ring = calloc((size_t)depth, sizeof *ring);
  bench_keys k;
  char first_error[512] = "";

  memset(r, 0, sizeof *r);
  if (!pools || !rngs || !seq || !ring) goto out;
  if (bench_carbon_fn(rc, "place", bench_lua_place, place_sha) ||
      bench_carbon_fn(rc, "amend", bench_lua_amend, amend_sha))
    goto out;
  for (int i = 0; i < n; i++) {
    if (bench_pool_init(&pools[i])) goto out;
    bench_rng_seed(&rngs[i], o->seed * 1000003u + (uint64_t)i);
  }
  /* An outbox stream of its own that no settler drains: the ceiling is the
   * script alone (the XADDs included), without the settler's Redis work. */
  bench_keys_init(&k, symbol, "outbox-ceiling");

  long sent = 0, done = 0;
  uint64_t t0 = bench_now_us();
  while (done < o->orders) {
    while (sent < o->orders && sent - done < depth) {
      bench_call *c = &ring[sent % depth];
      int acct = (int)(sent % n);
      bench_action a;
      char idem[48];
      bench_mix_next(&rngs[acct], &pools[acct], BENCH_REST_LEVELS, &a);
      bench_account_name(acct, c->who);
      snprintf(idem, sizeof idem, "%s-c%" PRIu64, c->who, ++seq[acct]);
      int cancel = a.kind == BENCH_CANCEL;
      bench_call_build(c, &k, cancel ? amend_sha : place_sha,
                       cancel ? "amend" : "place", acct, idem, &a);
      redisAppendCommandArgv(rc, c->argc, c->argv, c->lens);
      sent++;
    }
    redisReply *rep = NULL;
    if (redisGetReply(rc, (void **)&rep) != REDIS_OK || !rep) {
      fprintf(stderr, "carbon-bench: Redis connection failed: %s\n",
              rc->errstr);
      goto out;
    }
    bench_call *c = &ring[done % depth];
    const redisReply *body = bench_reply_unwrap(rep);
    if (body->type == REDIS_REPLY_ERROR) {
      if (c->cancel && strncmp(body->str, "NOT_FOUND", 9) == 0) {
        r->cancel_missed++;
      } else {
        if (!first_error[0])
          snprintf(first_error, sizeof first_error, "%s", body->str);
        r->errors++;
      }
    } else if (!c->cancel) {
      const char *id;
      int state;
      long fills;
      if (bench_reply_order(rep, &id, &state, &fills) == 0) {
        r->fills += fills;
        if (state == 1 || state == 2)
          bench_pool_add(&pools[c->acct], &rngs[c->acct], id);
      } else {
        r->errors++;
      }
    }
    freeReplyObject(rep);
    done++;
  }
  r->seconds = (double)(bench_now_us() - t0) / 1e6;
  r->orders = done;
  r->drain_s = -1;
  if (first_error[0])
    fprintf(stderr, "carbon-bench: ceiling: first error: %s\n", first_error);
  redisReply *d = redisCommand(rc, "DEL %s", k.outbox);
  if (d) freeReplyObject(d);
  rc_ = 0;
out:
  for (int i = 0; pools && i < n; i++) bench_pool_free(&pools[i]);
  free(pools);
  free(rngs);
  free(seq);
  free(ring);
  return rc_;
}

/* MEMORY USAGE of `key` (every element sampled); 0 when absent. */
static long long bench__usage(redisContext *rc, const char *key) {
  redisReply *r = redisCommand(rc, "MEMORY USAGE %s SAMPLES 0", key);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r) freeReplyObject(r);
  return v;
}

/* The average size of up to 200 idempotency records of `symbol`; -1 when
 * it has none.  Split into the key's and the value's bytes, so the rest is
 * what Redis adds per key (its dict entry, the value's object header, the
 * allocator's size classes): the parts a smaller record would cut. */
double bench_idem_size(redisContext *rc, const char *symbol) {
  char match[128];
  long long total = 0, keys_b = 0, vals_b = 0, n = 0;
  snprintf(match, sizeof match, "gm:{carbon:%s}:idem:*", symbol);
  redisReply *r = redisCommand(rc, "SCAN 0 MATCH %s COUNT 5000", match);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
    const redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements && n < 200; i++, n++) {
      const redisReply *k = keys->element[i];
      total += bench__usage(rc, k->str);
      keys_b += (long long)k->len;
      redisReply *l = redisCommand(rc, "STRLEN %b", k->str, k->len);
      if (l && l->type == REDIS_REPLY_INTEGER) vals_b += l->integer;
      if (l) freeReplyObject(l);
    }
  }
  if (r) freeReplyObject(r);
  if (!n) return -1;
  double avg = (double)total / (double)n;
  printf(
      "  idempotency record of a mutating request (kept for [redis] "
      "idempotency_ttl, default 86400 s, not per order at rest): %.0f bytes "
      "on average, MEMORY USAGE of %lld from %s; target <= 100: %s\n"
      "    of which the key's text %.0f B, the stored reply (msgpack) %.0f B, "
      "Redis's own per key %.0f B (dict entry, object header, allocator "
      "size classes; the TTL's entry in the expires dict is not counted)\n",
      avg, n, symbol, avg <= 100 ? "met" : "NOT met",
      (double)keys_b / (double)n, (double)vals_b / (double)n,
      avg - (double)(keys_b + vals_b) / (double)n);
  return avg;
}

int bench_memory_run(const bench_opts *o, redisContext *rc, const char *symbol,
                     double *per_order) {
  char place_sha[BENCH_FN_MAX];
  int n = o->accounts, depth = o->ceiling_depth, rc_ = -1;
  bench_call *ring = calloc((size_t)depth, sizeof *ring);
  bench_rng rng;
  bench_keys k;
  long errors = 0;

  *per_order = -1;
  char first_error[512] = "";

  if (!ring || bench_carbon_fn(rc, "place", bench_lua_place, place_sha))
    goto out;
  bench_rng_seed(&rng, o->seed ^ 0x6d656d6f7279ull);
  /* The outbox is transient (the settler drains and trims it), so the
   * orders' entries go to a stream of their own, deleted before measuring:
   * the figure is the book's state alone. */
  bench_keys_init(&k, symbol, "outbox-memory");
  long long before = bench_info_field(rc, "memory", "used_memory");

  long sent = 0, done = 0;
  uint64_t t0 = bench_now_us();
  while (done < o->memory_orders) {
    while (sent < o->memory_orders && sent - done < depth) {
      bench_action a = {.kind = BENCH_REST};
      int64_t off = 1 + bench_rng_below(&rng, 1000); /* the whole band */
      a.buy = bench_rng_below(&rng, 2) == 0;
      a.price = a.buy ? BENCH_REF_PRICE - off : BENCH_REF_PRICE + off;
      a.quantity = 1 + bench_rng_below(&rng, 10);
      /* No idempotency key: its record is per request, not per resting
       * order, and is reported apart. */
      bench_call_build(&ring[sent % depth], &k, place_sha, "place",
                       (int)(sent % n), NULL, &a);
      redisAppendCommandArgv(rc, ring[sent % depth].argc,
                             ring[sent % depth].argv, ring[sent % depth].lens);
      sent++;
    }
    redisReply *rep = NULL;
    if (redisGetReply(rc, (void **)&rep) != REDIS_OK || !rep) {
      fprintf(stderr, "carbon-bench: Redis connection failed: %s\n",
              rc->errstr);
      goto out;
    }
    const char *id;
    int state;
    long fills;
    const redisReply *body = bench_reply_unwrap(rep);
    if (body->type == REDIS_REPLY_ERROR ||
        bench_reply_order(rep, &id, &state, &fills) || state != 1 || fills) {
      if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s",
                 body->type == REDIS_REPLY_ERROR ? body->str
                                                 : "an order did not rest");
      errors++;
    }
    freeReplyObject(rep);
    done++;
  }
  double secs = (double)(bench_now_us() - t0) / 1e6;
  redisReply *d = redisCommand(rc, "DEL %s", k.outbox);
  if (d) freeReplyObject(d);
  long long after = bench_info_field(rc, "memory", "used_memory");
  long resting = done - errors;

  printf(
      "\nRedis memory per resting order (%ld orders placed by FCALL "
      "of the place script in %.1f s, prices over the whole band, %d "
      "accounts):\n",
      done, secs, n);
  if (errors)
    printf("  %ld orders did not rest; first: %s\n", errors, first_error);
  if (resting <= 0 || before < 0 || after < 0) {
    printf("  no figure: INFO memory did not answer or nothing rested\n");
    goto out;
  }
  double per = (double)(after - before) / (double)resting;
  printf(
      "  used_memory %lld -> %lld bytes: %.0f bytes per resting order "
      "(target <= 250: %s)\n",
      before, after, per, per <= 250 ? "met" : "NOT met");
  *per_order = per;
  /* Which structure holds it (MEMORY USAGE, every element sampled). */
  static const char *const parts[][2] = {
      {"o", "order records (one hash)"}, {"bz:b", "bid book (zset)"},
      {"bz:s", "ask book (zset)"},       {"lv:b", "bid levels (zset)"},
      {"lv:s", "ask levels (zset)"},     {"lq:b", "bid level qty (hash)"},
      {"lq:s", "ask level qty (hash)"},
  };
  long long listed = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    char key[160];
    snprintf(key, sizeof key, "gm:{%s}:%s", k.tag, parts[i][0]);
    long long u = bench__usage(rc, key);
    listed += u;
    printf("    %-28s %12lld bytes %7.1f per order\n", parts[i][1], u,
           (double)u / (double)resting);
  }
  long long open = 0;
  for (int i = 0; i < n; i++) {
    char key[160], who[16];
    bench_account_name(i, who);
    snprintf(key, sizeof key, "gm:{%s}:op:%s", k.tag, who);
    open += bench__usage(rc, key);
  }
  listed += open;
  printf("    %-28s %12lld bytes %7.1f per order\n",
         "open-order sets per account", open, (double)open / (double)resting);
  printf(
      "    %-28s %12lld bytes %7.1f per order (allocator and "
      "dict overhead MEMORY USAGE leaves out)\n",
      "rest of used_memory", (after - before) - listed,
      (double)((after - before) - listed) / (double)resting);
  rc_ = 0;
out:
  free(ring);
  return rc_;
}
