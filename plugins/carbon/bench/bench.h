/*
 * gm_bench_carbon: shared pieces of the carbon benchmark
 * (plugins/carbon/bench/run).
 *
 * Phases, in one run against one redis-server and one gmd:
 *   e2e.c     orders through libgmclient -> gmd -> Redis -> settlement, at a
 *             saturating load and paced at a fixed rate;
 *   direct.c  the ceiling (gmd's functions by FCALL, pipelined from C) and
 *             Redis memory per resting order;
 *   mix.c     the order mix both paths draw from;
 *   probe.c   what each side spent (CPU, Redis commandstats, INFO);
 *   projection.c  orders/s over Redis Cluster masters from those figures.
 * It prints figures; it is never a test and asserts no speed.
 */
#ifndef GM_BENCH_CARBON_H
#define GM_BENCH_CARBON_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include <greenmarket/client.h>

/* The fixed market the bench trades in: 100.00 yuan, band +/-10%. */
#define BENCH_REF_PRICE 10000
/* Resting orders sit on this many ticks each side of the reference. */
#define BENCH_REST_LEVELS 200
/* Crossing orders are IOC limits this far through the reference: they take
 * what the other side has and never rest (a resting cross would lock). */
#define BENCH_CROSS_OFFSET 500
/* Every account gets this much of each; far more than any run uses. */
#define BENCH_CASH_FEN INT64_C(1000000000000)
#define BENCH_ALLOWANCES_T INT64_C(1000000000)
/* Wednesday 2026-03-04 10:00 Asia/Shanghai: inside a listing session. */
#define BENCH_NOW_MS INT64_C(1772589600000)
/* Resting order ids remembered per account (for cancels). */
#define BENCH_POOL_CAP 4096

/* Book sizes one run may compare at (--book N,N...). */
#define BENCH_MAX_BOOKS 4
/* Instruments of the comparison's plain flow (compare.c). */
#define BENCH_CMP_SYMBOLS 16

typedef struct bench_opts {
  const char *endpoint;    /* gmd's ROUTER */
  const char *redis_path;  /* the redis-server's unix socket */
  const char *ledger_path; /* gmd's SQLite ledger */
  long gmd_pid;            /* for CPU accounting; 0: unknown */
  long redis_pid;
  long orders;        /* saturating run and ceiling; the paced run half */
  int accounts;       /* participants, one connection each */
  int threads;        /* load threads sharing the connections */
  int depth;          /* in flight per connection, saturating run */
  int ceiling_depth;  /* FCALL pipeline depth */
  double rate;        /* paced run, orders/s; 0: half the saturating rate */
  long tick_us;       /* paced run: a load thread wakes to send at most once
                         a tick, sending every order whose time has come
                         (latency still from each order's own time); 0: it
                         wakes for each order */
  long memory_orders; /* resting orders for the memory figure; 0: skip */
  uint64_t seed;
  long compare_orders;         /* per round of the bare comparison */
  int rounds;                  /* rounds of it, per script */
  long books[BENCH_MAX_BOOKS]; /* resting orders before a book phase */
  int nbooks;                  /* 0: no book phase */
  int compare_only;            /* skip end to end, ceiling, memory */
  int floor; /* the plain flow also runs carbon's commands alone (floor.c) */
  int plain_only; /* the comparison's plain flow only: no mix, no books */
  int ideal;      /* the plain flow also runs the ideal floor (ideal.c) */
} bench_opts;

/* ---- carbon against a bare match (compare.c) ---- */

/* What the comparison measured; -1: not run.  Pairs are [0] the bare
 * match, [1] carbon; costs are medians over the rounds of Redis CPU per
 * order, ratios medians of the rounds' own ratios. */
typedef struct bench_compare {
  double plain[2], plain_ratio; /* plain GTC limit flow, carbon / bare */
  double mix[2], mix_ratio;     /* the standard mix (mix.c) */
  double book[BENCH_MAX_BOOKS][2], book_ratio[BENCH_MAX_BOOKS];
  /* each script over opts.books[i] resting orders / over none, same round */
  double growth[BENCH_MAX_BOOKS][2];
  double book_bytes[BENCH_MAX_BOOKS][2]; /* Redis memory per book order */
} bench_compare;

/* The carbon instruments the comparison trades in (main creates and funds
 * them through gmd); returns how many, at most cap. */
size_t bench_compare_symbols(const bench_opts *o, char (*out)[24], size_t cap);
/* Runs every comparison phase, printing each round; fills *r. */
int bench_compare_run(const bench_opts *o, redisContext *rc, bench_compare *r);

/* ---- orders/s against Redis Cluster masters (projection.c) ---- */

/* Prints the projection from Redis's and gmd's CPU per order (gmd_us < 0:
 * unknown), measured by the phase `from`, for this run's instruments and
 * for 16, 64 and 256 symbols. */
void bench_projection_print(double redis_us, double gmd_us, const char *from,
                            const char *const *symbols, size_t nsym);

/* ---- the order mix (mix.c) ---- */

typedef struct bench_rng {
  uint64_t s; /* xorshift64* state, never 0 */
} bench_rng;

void bench_rng_seed(bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(bench_rng *r);
/* Uniform in [0, n). */
uint32_t bench_rng_below(bench_rng *r, uint32_t n);

typedef enum bench_kind {
  BENCH_REST,   /* a limit that does not cross: it rests (GTC) */
  BENCH_CROSS,  /* an IOC limit through the reference: it trades */
  BENCH_CANCEL, /* cancel one of the account's own resting orders */
} bench_kind;

/* One account's resting order ids (the local 12-hex part). */
typedef struct bench_pool {
  char (*ids)[16]; /* BENCH_POOL_CAP slots */
  size_t n;        /* in use */
} bench_pool;

int bench_pool_init(bench_pool *p);
void bench_pool_free(bench_pool *p);
/* Remembers a resting order; when full, a random slot is overwritten. */
void bench_pool_add(bench_pool *p, bench_rng *r, const char *id);

typedef struct bench_action {
  bench_kind kind;
  int buy;          /* side */
  int64_t price;    /* fen */
  int64_t quantity; /* t */
  char cancel[16];  /* BENCH_CANCEL: the local order id, taken from the pool */
} bench_action;

/*
 * The next action of an account: 60% resting limits, 25% crossing IOC
 * limits, 15% cancels of its own resting orders (a resting limit when it has
 * none).  `levels` is how many ticks resting prices spread over.
 */
void bench_mix_next(bench_rng *r, bench_pool *pool, int levels,
                    bench_action *a);

/* ---- latency figures ---- */

typedef struct bench_lat {
  uint32_t *us; /* one per completed order, microseconds */
  size_t n, cap;
} bench_lat;

int bench_lat_add(bench_lat *l, uint64_t us);
void bench_lat_sort(bench_lat *l);
/* The q-quantile (0..1) of a sorted bench_lat; 0 when empty. */
uint64_t bench_lat_quantile(const bench_lat *l, double q);
void bench_lat_free(bench_lat *l);

uint64_t bench_now_us(void);

/* ---- what each side spent (probe.c) ---- */

#define BENCH_MAX_CMDS 64
typedef struct bench_probe {
  double wall_s;
  double cpu_bench_s; /* this process, every thread */
  double cpu_gmd_s;   /* from /proc/<pid>/stat; -1 unknown */
  double cpu_redis_s;
  size_t ncmds;
  struct {
    char name[40];
    uint64_t calls, usec;
  } cmds[BENCH_MAX_CMDS]; /* INFO commandstats */
} bench_probe;

/* What was spent between two snapshots. */
typedef struct bench_cost {
  double wall_s;
  double cpu_redis_s;    /* -1: redis-server's pid unknown */
  double cpu_gmd_s;      /* -1: gmd's pid unknown */
  uint64_t script_calls; /* EVALSHA, EVAL, FCALL: one per order */
  uint64_t script_usec;  /* their time inside Redis, as commandstats counts */
  uint64_t data_calls;   /* every other data command: those the scripts ran
                            (and the little gmd runs meanwhile) */
} bench_cost;

/* Takes a snapshot; -1 when Redis cannot answer. */
int bench_probe_take(redisContext *rc, const bench_opts *o, bench_probe *p);
/* Prints where the time went between two snapshots, per order. */
void bench_probe_print(const bench_probe *a, const bench_probe *b, long orders);
void bench_probe_cost(const bench_probe *a, const bench_probe *b,
                      bench_cost *c);
/* One integer field of INFO <section>; -1 when absent. */
long long bench_info_field(redisContext *rc, const char *section,
                           const char *field);
redisContext *bench_redis_connect(const char *path);

/* ---- phases ---- */

typedef struct bench_result {
  long orders;        /* replies received */
  long fills;         /* fills in the replies */
  long errors;        /* replies with an unexpected status */
  long cancel_missed; /* cancels that found the order gone (filled first) */
  double seconds;     /* first send to last reply */
  double drain_s;     /* last reply until the ledger had every fill; <0 never */
  bench_lat lat;      /* per order; paced: from the scheduled send time */
} bench_result;

/* e2e.c */
typedef struct bench_e2e bench_e2e;
/* Connects every account, sets the manual clock (gmd needs [testing] clock =
 * manual), creates `symbols` and funds every account in each. */
bench_e2e *bench_e2e_new(const bench_opts *o, const char *const *symbols,
                         size_t nsymbols);
void bench_e2e_destroy(bench_e2e **e);
/* Saturating (rate 0: each connection keeps o->depth in flight, o->orders
 * orders) or paced at `rate` orders/s in open loop (o->orders / 2); then
 * waits for settlement of every fill. */
int bench_e2e_run(bench_e2e *e, const char *symbol, double rate,
                  bench_result *r);
/* The broker's own view of carbon requests (gm.stats). */
void bench_e2e_print_broker_stats(bench_e2e *e);
/* The participant name of account i. */
void bench_account_name(int i, char out[16]);

/* direct.c: carbon's scripts straight from C, as gmd calls them */
/* One pipelined call's argv; strings live in the struct. */
typedef struct bench_call {
  const char *argv[24];
  size_t lens[24];
  int argc;
  char idem[160], who[16], now[24], px[24], qty[24], id[24];
  int acct;   /* account index */
  int cancel; /* amend cancel rather than place */
  int sym;    /* the comparison's instrument index (compare.c) */
  int buy;    /* its side */
} bench_call;

typedef struct bench_keys {
  char outbox[128]; /* the stream the script appends to */
  char inst[128];   /* KEYS[1] of the plugin: gm:{carbon:<SYM>}:i */
  char noidem[128]; /* the record key the host passes without an idem key */
  char dl[128];     /* the tag's deadline set (the host's third key) */
  char dlc[128];    /* and its claims (the fourth) */
  char tag[64];     /* "carbon:<SYM>" */
} bench_keys;

/* The script texts embedded at build time (CMakeLists.txt). */
extern const char bench_lua_place[], bench_lua_amend[], bench_lua_bare[],
    bench_lua_floor[], bench_lua_ideal[];
/* Room for the name of a function gmd loaded (core/redis.c, GM__FN_MAX). */
#define BENCH_FN_MAX 160
/* The function gmd runs for carbon's `script` (name: "place", "amend");
 * -1, said on stderr, when gmd has not loaded that exact text. */
int bench_carbon_fn(redisContext *rc, const char *name, const char *script,
                    char fn[BENCH_FN_MAX]);
/* The keys of carbon instrument `symbol`; the calls append to the stream
 * `outbox` of its tag, which no settler drains. */
void bench_keys_init(bench_keys *k, const char *symbol, const char *outbox);
/* The FCALL of `a` (place, or amend for a cancel) for account `acct`, in
 * the host's KEYS/ARGV layout; idem: a unique key, or NULL for none. */
void bench_call_build(bench_call *c, const bench_keys *k, const char *fn,
                      const char *script, int acct, const char *idem,
                      const bench_action *a);
/* The script's own reply inside the host's {"gm:host ...", reply} wrapper. */
const redisReply *bench_reply_unwrap(const redisReply *r);
/* A place reply's order: its local id, state and fills; 0 or -1. */
int bench_reply_order(const redisReply *r, const char **id, int *state,
                      long *fills);
/* The ceiling: o->orders of the same mix by FCALL of gmd's place and amend
 * functions, pipelined o->ceiling_depth deep. */
int bench_ceiling_run(const bench_opts *o, redisContext *rc, const char *symbol,
                      bench_result *r);
/* Places o->memory_orders resting orders; prints bytes per order (-1:
 * unknown). */
int bench_memory_run(const bench_opts *o, redisContext *rc, const char *symbol,
                     double *per_order);
/* Prints the average size of the idempotency records of `symbol`'s
 * mutating requests (MEMORY USAGE of up to 200); -1 when it has none. */
double bench_idem_size(redisContext *rc, const char *symbol);

/* ---- carbon's commands without its logic (floor.c) ---- */

typedef struct bench_floor bench_floor;
/* Copies every key of the carbon instruments whose symbols start with
 * `from` to the same name with `to` (as long) instead, then records, on a
 * MONITOR connection of its own, the commands of every FCALL of place_fn
 * on `from`'s keys, renamed the same way, until bench_floor_stop.  NULL,
 * said on stderr, on failure. */
bench_floor *bench_floor_start(const bench_opts *o, redisContext *rc,
                               const char *from, const char *to,
                               const char *place_fn);
/* Ends the recording once the calls' replies came back; -1 on failure. */
int bench_floor_stop(bench_floor *f, redisContext *rc);
/* The calls recorded. */
long bench_floor_calls(const bench_floor *f);
/* EVALSHA of floor.lua (sha) with recorded call i's commands, into c;
 * run 0: it only unpacks them. */
void bench_floor_build(bench_call *c, const bench_floor *f, const char *sha,
                       long i, int run);
void bench_floor_destroy(bench_floor **f);

/* ---- the fewest commands an order needs, without logic (ideal.c) ---- */

typedef struct bench_ideal bench_ideal;
bench_ideal *bench_ideal_new(void);
/* Builds the ideal commands of the plain-flow order c (instrument sym,
 * side buy) from the bare match's reply to it; -1 when the reply is not
 * bare's {id, state, left, fills...} or the order is outside the flow. */
int bench_ideal_note(bench_ideal *d, const bench_call *c, int sym, int buy,
                     const redisReply *rep);
long bench_ideal_calls(const bench_ideal *d);
/* Commands per call, over every call noted. */
double bench_ideal_commands(const bench_ideal *d);
/* Hands calls first .. first + n - 1 to ideal.lua (ideal_load); -1 on
 * failure. */
int bench_ideal_load(bench_ideal *d, redisContext *rc, long first, long n);
/* The FCALL of call i, an order call's KEYS and ARGV: ideal_run (run 1),
 * which runs its commands, or ideal_empty (run 0), which does nothing. */
void bench_ideal_build(bench_call *c, const bench_ideal *d, long i, int run);
void bench_ideal_destroy(bench_ideal **d);

#endif
