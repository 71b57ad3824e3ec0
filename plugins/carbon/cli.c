/*
 * `gm carbon ...`: the carbon market's friendly commands for people (buy,
 * sell, cancel, book, trades, holdings, ...), run by `gm` from this plugin
 * (include/greenmarket/cli.h).  Every other word takes gm's generic
 * `gm carbon <method> field=value` path.
 *
 * Prices and cash are typed and shown in yuan with two decimals and sent as
 * int64 fen; quantities are whole tonnes.  Requests and replies are the
 * plugin's own generated messages, so the commands always speak exactly the
 * methods beside them.  With --json every command prints the method's reply
 * unchanged (fen).  Everything asked of gm goes through the gm_cli_api
 * table: this file links no gm symbol.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/cli.h>
#include <greenmarket/date.h>
#include <greenmarket/table.h>

#include "carbon.pb-c.h"
#include "price.h"
#include "rules.h"

/* What every command gets: gm's run and the services it offers. */
typedef struct gm__carbon_cli {
  gm_cli *cli;
  const gm_cli_api *api;
} gm__carbon_cli;

/* ---- amounts: yuan, fen, tonnes ---- */

/*
 * Parses yuan as people type them ("85", "85.5", "85.50") into fen with
 * integer arithmetic only, accepting 0.01 .. max_fen.  On error returns -1
 * with the cause and the fix in err ("what" names the value in it).
 */
static int gm__carbon_parse_yuan(const char *what, const char *text,
                                 int64_t max_fen, int64_t *fen, char *err,
                                 size_t errlen) {
  int64_t whole = 0, frac = 0;
  int nwhole = 0, nfrac = 0, dot = 0, big = 0;
  char maxtext[32], shown[96];
  /* What the user typed, as a message may echo it: cut between
     characters, controls as '?' (gm__carbon_shown). */
  const char *echo = gm__carbon_shown(text, shown);
  if (!text || !*text) {
    snprintf(err, errlen, "%s is empty; write yuan like 85.50", what);
    return -1;
  }
  if (text[0] == '-') {
    snprintf(err, errlen,
             "%s %s is negative; write a positive amount of yuan like 85.50",
             what, echo);
    return -1;
  }
  for (const char *p = text; *p; p++) {
    if (*p == '.' && !dot) {
      dot = 1;
    } else if (*p >= '0' && *p <= '9') {
      if (dot) {
        if (++nfrac <= 2) frac = frac * 10 + (*p - '0');
      } else {
        nwhole++;
        /* Stop accumulating once past the limit: no int64 overflow. */
        if (!big) whole = whole * 10 + (*p - '0');
        if (whole > max_fen / 100) big = 1;
      }
    } else {
      nwhole = 0; /* not a number at all */
      break;
    }
  }
  if (nwhole == 0 || (dot && nfrac == 0)) {
    snprintf(err, errlen,
             "%s \"%s\" is not an amount of yuan; write digits with at most "
             "two decimals, like 85.50",
             what, echo);
    return -1;
  }
  if (nfrac > 2) {
    snprintf(err, errlen,
             "%s %s is finer than the 0.01 yuan tick (1 fen); use at most "
             "two decimals, like 85.50",
             what, echo);
    return -1;
  }
  if (nfrac == 1) frac *= 10;
  if (big || frac > max_fen - whole * 100) {
    snprintf(err, errlen, "%s %s is above the largest accepted, %s yuan", what,
             echo, gm__carbon_format_price(max_fen, maxtext));
    return -1;
  }
  if (whole == 0 && frac == 0) {
    snprintf(err, errlen, "%s must be at least 0.01 yuan, not %s", what, echo);
    return -1;
  }
  *fen = whole * 100 + frac;
  return 0;
}

/* Parses a whole number of tonnes, 1 .. max; -1 with why in err. */
static int gm__carbon_parse_tonnes(const char *what, const char *text,
                                   int64_t max, int64_t *t, char *err,
                                   size_t errlen) {
  int64_t v = 0;
  const char *p = text ? text : "";
  char shown[96];
  const char *echo = gm__carbon_shown(p, shown);
  if (*p == '-' && p[1]) {
    snprintf(err, errlen, "%s %s is negative; give whole tonnes like 100", what,
             echo);
    return -1;
  }
  for (; *p >= '0' && *p <= '9'; p++)
    if (v <= max) v = v * 10 + (*p - '0'); /* past max: stop, no overflow */
  if (!text || !*text || *p) {
    snprintf(err, errlen,
             "%s \"%s\" is not a whole number of tonnes; give digits like 100",
             what, echo);
    return -1;
  }
  if (v < 1 || v > max) {
    snprintf(err, errlen, "%s must be 1..%lld t, not %s", what, (long long)max,
             echo);
    return -1;
  }
  *t = v;
  return 0;
}

/* The same as the parsers above, printing the error; for commands. */
static int gm__carbon_yuan_arg(const gm__carbon_cli *g, const char *what,
                               const char *text, int64_t max_fen,
                               int64_t *fen) {
  char err[256];
  if (gm__carbon_parse_yuan(what, text, max_fen, fen, err, sizeof err) == 0)
    return 0;
  g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s", err);
  return -1;
}

static int gm__carbon_tonnes_arg(const gm__carbon_cli *g, const char *what,
                                 const char *text, int64_t max, int64_t *t) {
  char err[256];
  if (gm__carbon_parse_tonnes(what, text, max, t, err, sizeof err) == 0)
    return 0;
  g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s", err);
  return -1;
}

/*
 * A date "YYYY-MM-DD" (the Asia/Shanghai day, as the market counts days) or
 * a full time as gm takes it (api->parse_time), as ms.  `end` moves a bare
 * date to the start of the next day, so "--to DATE" includes the whole day.
 * Dates are the market's own rules (rules.c), so gm and the plugin agree on
 * every day.  A zone offset must be a real one (-14:00 .. +14:00, minutes
 * under 60), as gm's parser also checks (checked here too: an older gm took
 * any two digits).
 */
static int gm__carbon_parse_when(const gm_cli_api *api, const char *text,
                                 int end, int64_t *ms) {
  int64_t day;
  if (gm__carbon_parse_date(text, &day) == 0) {
    *ms = gm__carbon_day_start_ms(day + (end ? 1 : 0));
    return 0;
  }
  if (gm__carbon_bad_offset(text)) return -1;
  return api->parse_time(text, ms);
}

/* ms since the epoch as Asia/Shanghai "YYYY-MM-DD HH:MM:SS". */
static const char *gm__carbon_time(int64_t ms, char out[32]) {
  /* Up to the end of 9999-12-31 in Beijing: later is no time a broker
     sends. */
  if (ms <= 0 || ms > INT64_C(253402271999999)) return strcpy(out, "-");
  return gm_date_format_time(ms, GM_CARBON_TZ_MS, out);
}

/* ---- reading replies ---- */

/* An enum value's name without its prefix, lower-cased: SIDE_BUY -> "buy",
 * STATE_CANCEL_PENDING -> "cancel pending". */
static const char *gm__carbon_enum(const ProtobufCEnumDescriptor *d, int value,
                                   char out[32]) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
  const char *s = v ? v->name : "", *u = strchr(s, '_');
  size_t i = 0;
  for (s = u ? u + 1 : s; *s && i < 31; s++)
    out[i++] = *s == '_' ? ' ' : (char)tolower((unsigned char)*s);
  out[i] = '\0';
  return out;
}

/* A time in force as traders write it: "GTC", "IOC". */
static const char *gm__carbon_tif(Gm__Carbon__TimeInForce tif, char out[32]) {
  gm__carbon_enum(&gm__carbon__time_in_force__descriptor, (int)tif, out);
  for (char *p = out; *p; p++) *p = (char)toupper((unsigned char)*p);
  return out;
}

#define GM__CARBON_SIDE(v, out) \
  gm__carbon_enum(&gm__carbon__side__descriptor, (int)(v), out)

/* fen as yuan, or "-" for 0 (no price: no trade yet). */
static const char *gm__carbon_px(int64_t fen, char out[32]) {
  return fen ? gm__carbon_format_price(fen, out) : strcpy(out, "-");
}

/* An integer as text, for table cells. */
static const char *gm__carbon_num(int64_t v, char out[24]) {
  snprintf(out, 24, "%lld", (long long)v);
  return out;
}

/* ---- aligned tables ---- */

/* gm_table (greenmarket/table.h): cells on one line, padded by display
   width. */

/* `label` and a text from a reply on one line, escaped as a table cell
   would show it (a reason stored before the text rule may hold control
   characters). */
static void gm__carbon_text(const char *label, const char *text) {
  size_t cols;
  char *cell = gm_table_cell(text, 0, &cols, NULL);
  printf("%s%s\n", label, cell ? cell : "");
  free(cell);
}

/* ---- calling the market ---- */

/* Calls carbon.<method>; on success sets *reply (gm__carbon_free it). */
static int gm__carbon_call(const gm__carbon_cli *g, const char *method,
                           const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  return g->api->call(g->cli, "carbon", method, req, reply);
}

static void gm__carbon_free(ProtobufCMessage **m) {
  if (*m) protobuf_c_message_free_unpacked(*m, NULL);
  *m = NULL;
}

/* Calls a method and prints its reply with `print` (or JSON). */
static int gm__carbon_show(const gm__carbon_cli *g, const char *method,
                           const ProtobufCMessage *req,
                           void (*print)(const ProtobufCMessage *)) {
  ProtobufCMessage *reply;
  int code = gm__carbon_call(g, method, req, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    print(reply);
  fflush(stdout);
  gm__carbon_free(&reply);
  return GM_CLI_EXIT_OK;
}

/* ---- commands ---- */

typedef struct gm__carbon_cmd {
  const char *name;
  const char *usage; /* one or more "gm carbon ..." lines + a summary */
  int (*run)(const gm__carbon_cli *g, int argc, char **argv,
             const struct gm__carbon_cmd *self);
} gm__carbon_cmd;

static int gm__carbon_usage_error(const gm__carbon_cmd *self, const char *fmt,
                                  const char *arg) {
  fprintf(stderr, "error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage: %s", self->usage);
  return GM_CLI_EXIT_ERROR;
}

/* Non-zero when `arg` is a long option of opts that takes the next
   argument as its value ("--reason", not "--reason=x"). */
static int gm__carbon_takes_value(const struct option *opts, const char *arg) {
  if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') || !arg[2]) return 0;
  /* The option getopt_long takes it for: the exact name, else the only
     one it abbreviates. */
  const struct option *hit = NULL;
  size_t n = strlen(arg + 2), hits = 0;
  for (const struct option *o = opts; o && o->name; o++) {
    if (!strcmp(o->name, arg + 2)) return o->has_arg == required_argument;
    if (!strncmp(o->name, arg + 2, n)) hit = o, hits++;
  }
  return hits == 1 && hit->has_arg == required_argument;
}

/* Long options take any position: collect positionals in order. */
static int gm__carbon_args(int argc, char **argv, const struct option *opts,
                           const gm__carbon_cmd *self, char **pos, int maxpos,
                           int *npos,
                           int (*take)(int c, const char *arg, void *ctx),
                           void *ctx) {
  *npos = 0;
  /* No option starts with a digit: "-85" is a negative number, which
     getopt would take for the options -8 -5; unless it is the value of the
     option before it (--reason -10%-breach, --client-id -1). */
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (argv[i][0] == '-' &&
        (isdigit((unsigned char)argv[i][1]) || argv[i][1] == '.') &&
        !gm__carbon_takes_value(opts, argv[i - 1]))
      return gm__carbon_usage_error(
          self,
          !strcmp(argv[i - 1], "@")
              ? "price %s is negative; write a positive amount of yuan like "
                "85.50"
          /* "-100 @ 85" or "-100@85": the quantity, before its "@" */
          : (i + 1 < argc && argv[i + 1][0] == '@') || strchr(argv[i], '@')
              ? "quantity %s is negative; give whole tonnes like 100"
              : "%s is negative: prices and quantities are positive",
          argv[i]);
  optind = 0; /* 0: GNU getopt starts over, re-reading the optstring */
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "-h", opts, NULL);
    if (c == -1) break;
    if (c == 1) { /* a positional, in order ("-" in optstring) */
      if (*npos >= maxpos)
        return gm__carbon_usage_error(self, "unexpected argument \"%s\"",
                                      optarg);
      pos[(*npos)++] = optarg;
      continue;
    }
    if (c == 'h') {
      printf("usage: %s", self->usage);
      return -1;
    }
    if (c == '?') {
      const char *bad = argv[optind - 1];
      if (bad[0] == '-' && isdigit((unsigned char)bad[1]))
        return gm__carbon_usage_error(
            self, "%s is negative: prices and quantities are positive", bad);
      return gm__carbon_usage_error(self, "unknown option or missing value: %s",
                                    bad);
    }
    if (take(c, optarg, ctx)) return GM_CLI_EXIT_ERROR;
  }
  return 0;
}

/* getopt exit: -1 means help was printed (exit 0). */
#define GM__CARBON_ARGS(...)                                        \
  do {                                                              \
    int rc_ = gm__carbon_args(__VA_ARGS__);                         \
    if (rc_) return rc_ == -1 ? GM_CLI_EXIT_OK : GM_CLI_EXIT_ERROR; \
  } while (0)

static int gm__carbon_no_opts(int c, const char *arg, void *ctx) {
  (void)c;
  (void)arg;
  (void)ctx;
  return 0;
}

/* Prints an order as key/value lines. */
static void gm__carbon_print_order(const Gm__Carbon__Order *o) {
  static const Gm__Carbon__Order none = GM__CARBON__ORDER__INIT;
  char side[32], state[32], tif[32], px[32], when[32];
  if (!o) o = &none;
  int market = o->type == GM__CARBON__ORDER_TYPE__TYPE_MARKET;
  printf("order      %s\n", o->id);
  printf("side       %s %lld t @ %s %s\n", GM__CARBON_SIDE(o->side, side),
         (long long)o->quantity,
         market ? "market" : gm__carbon_px(o->price, px),
         gm__carbon_tif(o->tif, tif));
  if (*o->client_order_id) gm__carbon_text("client id  ", o->client_order_id);
  printf("state      %s: %lld t filled, %lld t open\n",
         gm__carbon_enum(&gm__carbon__order_state__descriptor, (int)o->state,
                         state),
         (long long)o->filled, (long long)o->remaining);
  if (*o->reason) gm__carbon_text("reason     ", o->reason);
  if (o->expire_ms)
    printf("expires    %s Asia/Shanghai\n",
           gm__carbon_time(o->expire_ms, when));
}

static void gm__carbon_print_order_msg(const ProtobufCMessage *m) {
  gm__carbon_print_order((const Gm__Carbon__Order *)m);
}

/* Prints a PlaceReply: the order, then its fills. */
static void gm__carbon_print_place(const ProtobufCMessage *m) {
  const Gm__Carbon__PlaceReply *r = (const Gm__Carbon__PlaceReply *)m;
  gm__carbon_print_order(r->order);
  if (r->duplicate)
    printf(
        "duplicate  this client order id was used before: the first "
        "result, nothing new placed\n");
  if (!r->n_fills) return;
  printf("\nfills:\n");
  gm_table t = {
      5,    (const char *[]){"TRADE", "QTY", "PRICE", "AMOUNT", "TIME"},
      0x0e, NULL,
      0,    0};
  for (size_t i = 0; i < r->n_fills; i++) {
    const Gm__Carbon__Fill *f = r->fills[i];
    char q[24], px[32], amt[32], when[32];
    gm_table_row(&t, f->trade_id, gm__carbon_num(f->quantity, q),
                 gm__carbon_px(f->price, px), gm__carbon_px(f->amount, amt),
                 gm__carbon_time(f->time_ms, when));
  }
  gm_table_print(&t, stdout);
}

/* -- buy / sell -- */

typedef struct gm__carbon_place {
  int tif; /* a Gm__Carbon__TimeInForce, or -1: not given (GTC) */
  int market, post_only;
  const char *client_id, *gtd;
  Gm__Carbon__StpMode stp;
} gm__carbon_place;

enum {
  GM__CARBON_IOC = 256,
  GM__CARBON_FOK,
  GM__CARBON_POST,
  GM__CARBON_MARKET,
  GM__CARBON_DAY,
  GM__CARBON_GTD,
  GM__CARBON_CLIENT,
  GM__CARBON_STP,
  GM__CARBON_ALL,
  GM__CARBON_BUY,
  GM__CARBON_SELL,
  GM__CARBON_PRICE,
  GM__CARBON_QTY,
  GM__CARBON_FROM,
  GM__CARBON_TO,
  GM__CARBON_LIMIT,
  GM__CARBON_DEPTH,
  GM__CARBON_OUT,
  GM__CARBON_CASH,
  GM__CARBON_ALLOWANCES,
  GM__CARBON_REFERENCE,
  GM__CARBON_PARTICIPANT,
  GM__CARBON_REASON,
  GM__CARBON_NAME,
  GM__CARBON_KIND,
  GM__CARBON_SESSIONS,
  GM__CARBON_BLOCK_SESSIONS,
  GM__CARBON_REF_PRICE,
  GM__CARBON_COUNTERPARTY,
  GM__CARBON_WAIT,
  GM__CARBON_AFTER,
};

static int gm__carbon_place_opt(int c, const char *arg, void *ctx) {
  gm__carbon_place *p = ctx;
  int tif;
  switch (c) {
    case GM__CARBON_IOC:
      tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
      break;
    case GM__CARBON_FOK:
      tif = GM__CARBON__TIME_IN_FORCE__TIF_FOK;
      break;
    case GM__CARBON_DAY:
      tif = GM__CARBON__TIME_IN_FORCE__TIF_DAY;
      break;
    case GM__CARBON_GTD:
      tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
      p->gtd = arg;
      break;
    case GM__CARBON_POST:
      p->post_only = 1;
      return 0;
    case GM__CARBON_MARKET:
      p->market = 1;
      return 0;
    case GM__CARBON_CLIENT:
      p->client_id = arg;
      return 0;
    case GM__CARBON_STP:
      if (!strcmp(arg, "incoming"))
        p->stp = GM__CARBON__STP_MODE__STP_CANCEL_INCOMING;
      else if (!strcmp(arg, "resting"))
        p->stp = GM__CARBON__STP_MODE__STP_CANCEL_RESTING;
      else if (!strcmp(arg, "both"))
        p->stp = GM__CARBON__STP_MODE__STP_CANCEL_BOTH;
      else {
        fprintf(stderr,
                "error: --stp is incoming, resting or both (what to cancel "
                "when you would trade with yourself), not \"%s\"\n",
                arg);
        return -1;
      }
      return 0;
    default:
      return 0;
  }
  if (p->tif >= 0 && p->tif != tif) {
    fprintf(stderr,
            "error: choose one of --ioc, --fok, --day, --gtd (time in "
            "force); the default is good till cancelled\n");
    return -1;
  }
  p->tif = tif;
  return 0;
}

/*
 * Splits the positionals around "@" into at most max words, so "100 @ 85.50",
 * "100 @85.50" and "100@85.50" all give "100", "85.50".  Returns the number
 * of words (more than max: max + 1, so callers see too many).
 */
static int gm__carbon_words(char **pos, int npos, char **words, int max) {
  int n = 0;
  for (int i = 0; i < npos; i++) {
    char *at = strchr(pos[i], '@'), *part[2] = {pos[i], NULL};
    if (at) {
      *at = '\0';
      part[1] = at + 1;
    }
    for (int k = 0; k < 2; k++) {
      if (!part[k] || (at && !*part[k])) continue;
      if (n == max) return max + 1;
      words[n++] = part[k];
    }
  }
  return n;
}

static int gm__carbon_place_run(const gm__carbon_cli *g, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"ioc", no_argument, NULL, GM__CARBON_IOC},
      {"fok", no_argument, NULL, GM__CARBON_FOK},
      {"post-only", no_argument, NULL, GM__CARBON_POST},
      {"market", no_argument, NULL, GM__CARBON_MARKET},
      {"day", no_argument, NULL, GM__CARBON_DAY},
      {"gtd", required_argument, NULL, GM__CARBON_GTD},
      {"client-id", required_argument, NULL, GM__CARBON_CLIENT},
      {"stp", required_argument, NULL, GM__CARBON_STP},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_place p = {.tif = -1, .stp = GM__CARBON__STP_MODE__STP_DEFAULT};
  char *pos[5] = {NULL};
  int npos;
  int64_t qty, price = 0, expire = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 4, &npos, gm__carbon_place_opt,
                  &p);
  char *words[4];
  int n = gm__carbon_words(pos, npos, words, 4);
  if (n < 2 || n > 3 || (n == 2 && !p.market))
    return gm__carbon_usage_error(
        self, "%s needs SYMBOL QTY @ PRICE (or SYMBOL QTY --market)", argv[0]);
  if (p.market && n == 3)
    return gm__carbon_usage_error(
        self, "%s",
        "a --market order takes no price: it trades at the best "
        "prices within the band");
  if (p.market && p.post_only)
    return gm__carbon_usage_error(self, "%s",
                                  "--post-only never trades on arrival; a "
                                  "--market order only trades: choose one");
  if (p.post_only && (p.tif == GM__CARBON__TIME_IN_FORCE__TIF_IOC ||
                      p.tif == GM__CARBON__TIME_IN_FORCE__TIF_FOK))
    return gm__carbon_usage_error(
        self,
        "--post-only never trades on arrival; an %s order only trades "
        "on arrival: choose one",
        p.tif == GM__CARBON__TIME_IN_FORCE__TIF_IOC ? "--ioc" : "--fok");
  if (p.market && (p.tif == GM__CARBON__TIME_IN_FORCE__TIF_DAY ||
                   p.tif == GM__CARBON__TIME_IN_FORCE__TIF_GTD))
    return gm__carbon_usage_error(
        self, "%s",
        "a --market order never rests: --day and --gtd do not "
        "apply (use --fok to fill in full or not at all)");
  if (gm__carbon_tonnes_arg(g, "quantity", words[1], GM_CARBON_MAX_QTY, &qty))
    return GM_CLI_EXIT_ERROR;
  if (!p.market &&
      gm__carbon_yuan_arg(g, "price", words[2], GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  /* A date alone: the order lives through that trading day (Asia/Shanghai)
     and expires at its end, as --to takes a whole day. */
  if (p.gtd && gm__carbon_parse_when(g->api, p.gtd, 1, &expire)) {
    fprintf(stderr,
            "error: --gtd \"%s\" is not a time; write a date 2026-11-24 (the "
            "order expires at the end of that day, Asia/Shanghai), a time "
            "with its zone 2026-11-24T15:00:00+08:00 (offsets -14:00..+14:00) "
            "or ms since 1970\n",
            p.gtd);
    return GM_CLI_EXIT_ERROR;
  }
  /* ms 0 (or before) is a time long past; the broker would read it as no
     expiry at all and name its field. */
  if (p.gtd && expire <= 0) {
    fprintf(stderr,
            "error: --gtd %s is not in the future (it is "
            "1970-01-01T08:00:00+08:00 or earlier); give the time the order "
            "expires: a date 2026-11-24 (the end of that day, "
            "Asia/Shanghai), a time with its zone 2026-11-24T15:00:00+08:00 "
            "or ms since 1970\n",
            p.gtd);
    return GM_CLI_EXIT_ERROR;
  }
  Gm__Carbon__PlaceRequest req = GM__CARBON__PLACE_REQUEST__INIT;
  req.symbol = words[0];
  req.side = strcmp(argv[0], "buy") ? GM__CARBON__SIDE__SIDE_SELL
                                    : GM__CARBON__SIDE__SIDE_BUY;
  req.type = p.market ? GM__CARBON__ORDER_TYPE__TYPE_MARKET
                      : GM__CARBON__ORDER_TYPE__TYPE_LIMIT;
  req.tif = p.tif >= 0 ? (Gm__Carbon__TimeInForce)p.tif
                       : GM__CARBON__TIME_IN_FORCE__TIF_GTC;
  req.price = price;
  req.quantity = qty;
  req.expire_ms = expire;
  req.post_only = p.post_only;
  req.stp = p.stp;
  req.client_order_id = p.client_id ? (char *)p.client_id : "";
  if (!p.gtd)
    return gm__carbon_show(g, "order.place", &req.base, gm__carbon_print_place);
  /* The broker names expire_ms; the user typed --gtd. */
  ProtobufCMessage *reply;
  gm_status status;
  const char *msg;
  int code = g->api->call_quiet(g->cli, "carbon", "order.place", &req.base,
                                &reply, &status, &msg);
  if (code != GM_CLI_EXIT_OK) {
    /* "expire_ms N (TIME) is not in the future: it is now ..." */
    const char *past =
        !strncmp(msg, "expire_ms ", 10) && strstr(msg, " is not in the future")
            ? strstr(msg, " (")
            : NULL;
    if (past)
      g->api->error(g->cli, status, "--gtd %s%s", p.gtd, past);
    else if (!strncmp(msg, "expire_ms is more than 366 days ahead", 37))
      g->api->error(g->cli, status, "--gtd %s%s", p.gtd, msg + 9);
    else
      g->api->error(g->cli, status, "%s", msg);
    return code;
  }
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    gm__carbon_print_place(reply);
  fflush(stdout);
  gm__carbon_free(&reply);
  return GM_CLI_EXIT_OK;
}

/* -- cancel / replace -- */

typedef struct gm__carbon_cancel {
  int all;
  Gm__Carbon__Side side;
} gm__carbon_cancel;

static int gm__carbon_cancel_opt(int c, const char *arg, void *ctx) {
  gm__carbon_cancel *k = ctx;
  Gm__Carbon__Side side = c == GM__CARBON_BUY    ? GM__CARBON__SIDE__SIDE_BUY
                          : c == GM__CARBON_SELL ? GM__CARBON__SIDE__SIDE_SELL
                                                 : k->side;
  (void)arg;
  if (c == GM__CARBON_ALL) k->all = 1;
  if (k->side != GM__CARBON__SIDE__SIDE_UNSPECIFIED && side != k->side) {
    fprintf(stderr,
            "error: give --buy or --sell, not both (neither cancels both "
            "sides)\n");
    return -1;
  }
  k->side = side;
  return 0;
}

/*
 * Moves *cursor to a reply's next_cursor (NULL when it has none), copied:
 * the reply is freed before the next call.  The request carries a cursor
 * only after a reply handed one out.
 */
static int gm__carbon_next_cursor(const char *next, char **cursor) {
  free(*cursor);
  *cursor = *next ? strdup(next) : NULL;
  return *next && !*cursor ? -1 : 0;
}

/* Calls to follow a walk before gm gives up: far above any real walk, and
 * a stop for a market that kept handing out cursors. */
#define GM__CARBON_MAX_PAGES 100000

/* The items of a paged list, in the order they came, each id once; the
 * pages' replies own them. */
typedef struct gm__carbon_list {
  ProtobufCMessage **pages; /* every reply, freed together */
  size_t npages;
  const void **items; /* Gm__Carbon__Order or Gm__Carbon__BlockOffer */
  const char **ids;   /* items[i]'s id */
  size_t n, cap;
} gm__carbon_list;

static void gm__carbon_list_free(gm__carbon_list *l) {
  for (size_t i = 0; i < l->npages; i++) gm__carbon_free(&l->pages[i]);
  free(l->pages);
  free(l->items);
  free(l->ids);
  memset(l, 0, sizeof *l);
}

static int gm__carbon_list_add(gm__carbon_list *l, const void *item,
                               const char *id) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    const void **items = realloc(l->items, cap * sizeof *items);
    if (items) l->items = items;
    const char **ids = realloc(l->ids, cap * sizeof *ids);
    if (ids) l->ids = ids;
    if (!items || !ids) return -1;
    l->cap = cap;
  }
  l->items[l->n] = item;
  l->ids[l->n++] = id;
  return 0;
}

/* An item's id and place in arrival order, for sorting. */
typedef struct gm__carbon_key {
  const char *id;
  size_t at;
} gm__carbon_key;

/* By id, then by arrival: the first of equal ids leads. */
static int gm__carbon_by_key(const void *a, const void *b) {
  const gm__carbon_key *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  return c ? c : (x->at > y->at) - (x->at < y->at);
}

/*
 * Keeps each id once, the first that came: a walk over a set that was
 * resized between two pages may list an id twice (docs/carbon.md).
 */
static int gm__carbon_list_unique(gm__carbon_list *l) {
  gm__carbon_key *keys = malloc((l->n ? l->n : 1) * sizeof *keys);
  unsigned char *drop = calloc(l->n ? l->n : 1, 1);
  size_t out = 0;
  if (!keys || !drop) {
    free(keys);
    free(drop);
    return -1;
  }
  for (size_t i = 0; i < l->n; i++) keys[i] = (gm__carbon_key){l->ids[i], i};
  qsort(keys, l->n, sizeof *keys, gm__carbon_by_key);
  for (size_t i = 1; i < l->n; i++)
    if (!strcmp(keys[i].id, keys[i - 1].id)) drop[keys[i].at] = 1;
  for (size_t i = 0; i < l->n; i++) {
    if (drop[i]) continue;
    l->items[out] = l->items[i];
    l->ids[out++] = l->ids[i];
  }
  l->n = out;
  free(keys);
  free(drop);
  return 0;
}

/*
 * Every item of a paged list method (order.list, or block.list with
 * `offers`) for `symbol` ("" for every instrument), following its cursors
 * from the first page to the last, into *l (gm__carbon_list_free it).
 * `limit` is the page size to ask for (0: the market's default).  With
 * --json and print_pages each page is printed as it comes.  Returns the
 * exit code, after printing why on failure.
 */
static int gm__carbon_walk(const gm__carbon_cli *g, int offers,
                           const char *symbol, int limit, int print_pages,
                           gm__carbon_list *l) {
  const char *method = offers ? "block.list" : "order.list";
  char *cursor = NULL;
  int code = GM_CLI_EXIT_OK;
  memset(l, 0, sizeof *l);
  for (long page = 0;; page++) {
    if (page == GM__CARBON_MAX_PAGES) {
      code = g->api->error(g->cli, GM_INTERNAL,
                           "%s still had pages after %d calls; the carbon "
                           "market keeps handing out cursors: report it",
                           method, GM__CARBON_MAX_PAGES);
      break;
    }
    Gm__Carbon__ListOrdersRequest oq = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
    Gm__Carbon__ListOffersRequest fq = GM__CARBON__LIST_OFFERS_REQUEST__INIT;
    oq.symbol = fq.symbol = (char *)symbol;
    oq.limit = fq.limit = limit;
    oq.cursor = fq.cursor = cursor ? cursor : "";
    ProtobufCMessage *reply, **pages;
    code = gm__carbon_call(g, method, offers ? &fq.base : &oq.base, &reply);
    if (code != GM_CLI_EXIT_OK) break;
    pages = realloc(l->pages, (l->npages + 1) * sizeof *pages);
    if (!pages) {
      gm__carbon_free(&reply);
      code = g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                           "out of memory after %zu items of %s", l->n, method);
      break;
    }
    l->pages = pages;
    l->pages[l->npages++] = reply;
    if (print_pages && g->api->json(g->cli)) g->api->print(g->cli, reply);
    const char *next;
    int failed = 0;
    if (offers) {
      const Gm__Carbon__OfferList *r = (const Gm__Carbon__OfferList *)reply;
      for (size_t i = 0; i < r->n_offers && !failed; i++)
        failed = gm__carbon_list_add(l, r->offers[i], r->offers[i]->id);
      next = r->next_cursor;
    } else {
      const Gm__Carbon__OrderList *r = (const Gm__Carbon__OrderList *)reply;
      for (size_t i = 0; i < r->n_orders && !failed; i++)
        failed = gm__carbon_list_add(l, r->orders[i], r->orders[i]->id);
      next = r->next_cursor;
    }
    if (failed || gm__carbon_next_cursor(next, &cursor)) {
      code = g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                           "out of memory after %zu items of %s", l->n, method);
      break;
    }
    if (!cursor) break;
  }
  free(cursor);
  if (code == GM_CLI_EXIT_OK && gm__carbon_list_unique(l))
    code = g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                         "out of memory sorting %zu items of %s", l->n, method);
  return code;
}

/* order.list's largest page: a trader with many orders needs fewer calls
 * (each costs the market the same per order as a smaller page). */
#define GM__CARBON_ORDERS_PAGE 1000

/* Cancels all own orders of one symbol, calling again while some remain. */
static int gm__carbon_mass_cancel(const gm__carbon_cli *g, const char *symbol,
                                  Gm__Carbon__Side side, int64_t *count) {
  /* Each call looks at up to the plugin's per-call bound (mass_cancel_max)
   * and hands back a cursor to go on with; the loop is bounded too, in
   * case orders arrive as fast as we cancel. */
  char *cursor = NULL;
  int code = GM_CLI_EXIT_OK;
  for (int round = 0; round < 1000; round++) {
    Gm__Carbon__MassCancelRequest req = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
    ProtobufCMessage *reply;
    req.symbol = (char *)symbol;
    req.side = side;
    req.cursor = cursor ? cursor : "";
    code = gm__carbon_call(g, "order.mass_cancel", &req.base, &reply);
    if (code != GM_CLI_EXIT_OK) break;
    const Gm__Carbon__MassCancelReply *r =
        (const Gm__Carbon__MassCancelReply *)reply;
    if (g->api->json(g->cli)) g->api->print(g->cli, reply);
    for (size_t i = 0; i < r->n_cancelled; i++) {
      if (!g->api->json(g->cli)) printf("cancelled  %s\n", r->cancelled[i]);
      (*count)++;
    }
    int64_t more = r->remaining;
    int failed = gm__carbon_next_cursor(r->next_cursor, &cursor);
    gm__carbon_free(&reply);
    if (failed) {
      code = g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                           "out of memory cancelling the orders of %s", symbol);
      break;
    }
    if (more <= 0) {
      free(cursor);
      return GM_CLI_EXIT_OK;
    }
  }
  free(cursor);
  if (code != GM_CLI_EXIT_OK) return code;
  fprintf(stderr,
          "error: RESOURCE_EXHAUSTED: orders of %s remain after 1000 mass "
          "cancels; run the command again\n",
          symbol);
  return GM_CLI_EXIT_ERROR;
}

static int gm__carbon_cancel_run(const gm__carbon_cli *g, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"all", no_argument, NULL, GM__CARBON_ALL},
      {"buy", no_argument, NULL, GM__CARBON_BUY},
      {"sell", no_argument, NULL, GM__CARBON_SELL},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_cancel k = {0, GM__CARBON__SIDE__SIDE_UNSPECIFIED};
  char *pos[2] = {NULL};
  int npos, code = GM_CLI_EXIT_OK;
  int64_t count = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_cancel_opt,
                  &k);
  if (!k.all) {
    if (npos != 1)
      return gm__carbon_usage_error(self, "%s needs an ORDER_ID or --all",
                                    argv[0]);
    if (k.side != GM__CARBON__SIDE__SIDE_UNSPECIFIED)
      return gm__carbon_usage_error(
          self, "%s",
          "--buy and --sell choose a side for --all; one ORDER_ID has its "
          "own side");
    Gm__Carbon__OrderRequest req = GM__CARBON__ORDER_REQUEST__INIT;
    req.order_id = pos[0];
    return gm__carbon_show(g, "order.cancel", &req.base,
                           gm__carbon_print_order_msg);
  }
  if (npos == 1) {
    code = gm__carbon_mass_cancel(g, pos[0], k.side, &count);
  } else {
    /* Every instrument with an open order of ours: keys are per
     * instrument, so mass cancel goes one instrument at a time. */
    gm__carbon_list orders;
    code = gm__carbon_walk(g, 0, "", GM__CARBON_ORDERS_PAGE, 0, &orders);
    const char **syms = malloc((orders.n ? orders.n : 1) * sizeof *syms);
    size_t nsyms = 0;
    if (code == GM_CLI_EXIT_OK && !syms)
      code = g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                           "out of memory listing %zu orders", orders.n);
    for (size_t i = 0; code == GM_CLI_EXIT_OK && i < orders.n; i++) {
      const char *sym = ((const Gm__Carbon__Order *)orders.items[i])->symbol;
      size_t s = 0;
      while (s < nsyms && strcmp(syms[s], sym)) s++;
      if (s == nsyms) syms[nsyms++] = sym;
    }
    for (size_t s = 0; code == GM_CLI_EXIT_OK && s < nsyms; s++)
      code = gm__carbon_mass_cancel(g, syms[s], k.side, &count);
    free(syms);
    gm__carbon_list_free(&orders);
  }
  if (code == GM_CLI_EXIT_OK && !g->api->json(g->cli))
    printf("%lld order%s cancelled\n", (long long)count, count == 1 ? "" : "s");
  return code;
}

typedef struct gm__carbon_replace {
  const char *price, *qty;
} gm__carbon_replace;

static int gm__carbon_replace_opt(int c, const char *arg, void *ctx) {
  gm__carbon_replace *r = ctx;
  if (c == GM__CARBON_PRICE) r->price = arg;
  if (c == GM__CARBON_QTY) r->qty = arg;
  return 0;
}

static int gm__carbon_replace_run(const gm__carbon_cli *g, int argc,
                                  char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"price", required_argument, NULL, GM__CARBON_PRICE},
      {"qty", required_argument, NULL, GM__CARBON_QTY},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_replace r = {0};
  char *pos[2] = {NULL};
  int npos;
  int64_t price = 0, qty = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_replace_opt,
                  &r);
  if (npos != 1 || (!r.price && !r.qty))
    return gm__carbon_usage_error(
        self, "%s needs ORDER_ID and --price and/or --qty", argv[0]);
  if (r.price &&
      gm__carbon_yuan_arg(g, "--price", r.price, GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  if (r.qty &&
      gm__carbon_tonnes_arg(g, "--qty", r.qty, GM_CARBON_MAX_QTY, &qty))
    return GM_CLI_EXIT_ERROR;
  Gm__Carbon__ReplaceRequest req = GM__CARBON__REPLACE_REQUEST__INIT;
  req.order_id = pos[0];
  req.price = price;
  req.quantity = qty;
  return gm__carbon_show(g, "order.replace", &req.base, gm__carbon_print_place);
}

/* -- orders -- */

/* Orders by id: ids grow with placement within an instrument. */
static int gm__carbon_order_by_id(const void *a, const void *b) {
  return strcmp((*(const Gm__Carbon__Order *const *)a)->id,
                (*(const Gm__Carbon__Order *const *)b)->id);
}

static void gm__carbon_print_orders(const gm__carbon_list *l) {
  const Gm__Carbon__Order **sorted = calloc(l->n ? l->n : 1, sizeof *sorted);
  if (!sorted) return;
  for (size_t i = 0; i < l->n; i++) sorted[i] = l->items[i];
  qsort(sorted, l->n, sizeof *sorted, gm__carbon_order_by_id);
  gm_table t = {8,
                (const char *[]){"ORDER", "SIDE", "PRICE", "QTY", "FILLED",
                                 "OPEN", "TIF", "PLACED"},
                0x3c,
                NULL,
                0,
                0};
  for (size_t i = 0; i < l->n; i++) {
    const Gm__Carbon__Order *o = sorted[i];
    char side[32], tif[32], px[32], q[24], f[24], rem[24], when[32];
    gm_table_row(&t, o->id, GM__CARBON_SIDE(o->side, side),
                 gm__carbon_px(o->price, px), gm__carbon_num(o->quantity, q),
                 gm__carbon_num(o->filled, f),
                 gm__carbon_num(o->remaining, rem), gm__carbon_tif(o->tif, tif),
                 gm__carbon_time(o->created_ms, when));
  }
  free(sorted);
  if (t.rows == 0)
    printf("no open orders\n");
  else
    gm_table_print(&t, stdout);
}

static int gm__carbon_orders_run(const gm__carbon_cli *g, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  /* Every page, shown as one table (--json: each page's reply). */
  gm__carbon_list orders;
  int code = gm__carbon_walk(g, 0, npos ? pos[0] : "", GM__CARBON_ORDERS_PAGE,
                             1, &orders);
  if (code == GM_CLI_EXIT_OK && !g->api->json(g->cli))
    gm__carbon_print_orders(&orders);
  fflush(stdout);
  gm__carbon_list_free(&orders);
  return code;
}

/* -- trades / statement -- */

typedef struct gm__carbon_range {
  const char *from, *to, *limit, *out, *after;
} gm__carbon_range;

static int gm__carbon_range_opt(int c, const char *arg, void *ctx) {
  gm__carbon_range *r = ctx;
  if (c == GM__CARBON_FROM) r->from = arg;
  if (c == GM__CARBON_TO) r->to = arg;
  if (c == GM__CARBON_LIMIT) r->limit = arg;
  if (c == GM__CARBON_OUT) r->out = arg;
  if (c == GM__CARBON_AFTER) r->after = arg;
  return 0;
}

/* `recent`: the range reaches now, where a fill may not be settled yet. */
/* The market returns the oldest trades first, a page of --limit; when more
   follow, the reply's next_cursor says where the next page starts. */
static void gm__carbon_print_trades(const ProtobufCMessage *m, int recent) {
  const Gm__Carbon__TradeList *r = (const Gm__Carbon__TradeList *)m;
  gm_table t = {8,
                (const char *[]){"TIME", "SYMBOL", "PRICE", "QTY", "AMOUNT",
                                 "BUYER", "SELLER", "TRADE"},
                0x1c,
                NULL,
                0,
                0};
  for (size_t i = 0; i < r->n_trades; i++) {
    const Gm__Carbon__Trade *o = r->trades[i];
    char px[32], q[24], amt[32], when[32], trade[96];
    snprintf(trade, sizeof trade, "%s%s", o->trade_id,
             o->block ? " (block)" : "");
    gm_table_row(&t, gm__carbon_time(o->time_ms, when), o->symbol,
                 gm__carbon_px(o->price, px), gm__carbon_num(o->quantity, q),
                 gm__carbon_px(o->amount, amt), *o->buyer ? o->buyer : "-",
                 *o->seller ? o->seller : "-", trade);
  }
  if (t.rows == 0 && recent)
    printf(
        "no settled trades (a fill reaches the ledger a moment after "
        "it happens)\n");
  else if (t.rows == 0)
    printf("no settled trades in that range\n");
  else
    gm_table_print(&t, stdout);
  if (r->next_cursor[0])
    printf(
        "%zu trade(s) shown, the oldest first, and more follow: for the next "
        "page run the same command with --after %s\n",
        r->n_trades, r->next_cursor);
  else if (r->resume_cursor[0] && recent)
    printf(
        "every trade of the range settled so far is shown; one that settles "
        "later (a fill reaches the ledger a moment after it happens) is shown "
        "by the same command with --after %s\n",
        r->resume_cursor);
  /* A range that ended can still gain trades: settlement runs behind the
     fills (by seconds, or longer while the settler is behind), and the
     market cannot say when a range is final.  Reconciling page by page
     needs the cursor that lists them once they settle. */
  else if (r->resume_cursor[0])
    printf(
        "every trade of the range settled so far is shown; one of the range "
        "that settles later (settlement can run behind the fills) is shown "
        "by the same command with --after %s\n",
        r->resume_cursor);
}

/* Says a refusal of records.trades in the command's terms: the market
   names the request's fields (cursor, from_ms, to_ms), the user typed
   --after, --from and --to. */
static int gm__carbon_trades_refused(const gm__carbon_cli *g, int code,
                                     gm_status status, const char *msg) {
  /* 'cursor "TEXT" is ...': TEXT as the market showed it (control
     characters replaced, cut at a character). */
  const char *text = !strncmp(msg, "cursor \"", 8) ? msg + 8 : NULL;
  const char *end = text ? strstr(text, "\" is ") : NULL;
  int n = end ? (int)(end - text) : 0;
  if (status != GM_INVALID_ARGUMENT || !end)
    g->api->error(g->cli, status, "%s", msg);
  else if (strstr(end, "an earlier release of the broker"))
    g->api->error(
        g->cli, status,
        "--after \"%.*s\" is a cursor an earlier release of the broker "
        "printed: its pages could miss a trade that settled after them, so "
        "it is not followed; run the command again without --after (the "
        "trades of the range are listed again, each once)",
        n, text);
  else
    g->api->error(
        g->cli, status,
        "--after \"%.*s\" is not a cursor this command printed for the same "
        "SYMBOL, --from and --to (as the same user); copy the --after CURSOR "
        "of the last line printed, unchanged, into the same command, or leave "
        "--after out to start again from the first page",
        n, text);
  return code;
}

static int gm__carbon_trades_run(const gm__carbon_cli *g, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"from", required_argument, NULL, GM__CARBON_FROM},
      {"to", required_argument, NULL, GM__CARBON_TO},
      {"limit", required_argument, NULL, GM__CARBON_LIMIT},
      {"after", required_argument, NULL, GM__CARBON_AFTER},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_range r = {0};
  char *pos[2] = {NULL};
  int npos;
  int64_t from = 0, to = 0, limit = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_range_opt,
                  &r);
  if ((r.from && gm__carbon_parse_when(g->api, r.from, 0, &from)) ||
      (r.to && gm__carbon_parse_when(g->api, r.to, 1, &to))) {
    fprintf(stderr,
            "error: --from and --to are dates YYYY-MM-DD (Asia/Shanghai; "
            "--to includes its day) or times like 2026-11-24T09:30:00+08:00 "
            "(offsets -14:00..+14:00)\n");
    return GM_CLI_EXIT_ERROR;
  }
  if (r.from && r.to && from >= to) {
    fprintf(stderr,
            "error: --from %s is not before --to %s; give a --from before --to "
            "(--to "
            "DATE includes its day)\n",
            r.from, r.to);
    return GM_CLI_EXIT_ERROR;
  }
  char err[256];
  if (r.limit && gm__carbon_parse_tonnes("--limit", r.limit, 10000, &limit, err,
                                         sizeof err)) {
    fprintf(stderr, "error: --limit is a number of trades, 1..10000\n");
    return GM_CLI_EXIT_ERROR;
  }
  Gm__Carbon__TradesRequest req = GM__CARBON__TRADES_REQUEST__INIT;
  req.symbol = npos ? pos[0] : "";
  req.from_ms = from;
  req.to_ms = to;
  req.limit = (int32_t)limit;
  req.cursor = (char *)(r.after ? r.after : "");
  ProtobufCMessage *reply;
  gm_status status;
  const char *msg;
  int code = g->api->call_quiet(g->cli, "carbon", "records.trades", &req.base,
                                &reply, &status, &msg);
  if (code != GM_CLI_EXIT_OK)
    return gm__carbon_trades_refused(g, code, status, msg);
  /* This machine's clock: the broker's may differ by a little, which only
     decides whether the hint is shown. */
  int64_t now = (int64_t)time(NULL) * 1000;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    gm__carbon_print_trades(reply, from <= now && (!r.to || to > now));
  fflush(stdout);
  gm__carbon_free(&reply);
  return code;
}

static int gm__carbon_statement_run(const gm__carbon_cli *g, int argc,
                                    char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"from", required_argument, NULL, GM__CARBON_FROM},
      {"to", required_argument, NULL, GM__CARBON_TO},
      {"out", required_argument, NULL, GM__CARBON_OUT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_range r = {0};
  char *pos[2] = {NULL};
  int npos;
  ProtobufCMessage *reply;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_range_opt,
                  &r);
  if (npos != 1 || !r.from)
    return gm__carbon_usage_error(
        self, "%s needs SYMBOL and --from DATE (YYYY-MM-DD)", argv[0]);
  Gm__Carbon__StatementRequest req = GM__CARBON__STATEMENT_REQUEST__INIT;
  req.symbol = pos[0];
  req.from = (char *)r.from;
  req.to = (char *)(r.to ? r.to : r.from);
  int code = gm__carbon_call(g, "records.statement", &req.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  const Gm__Carbon__Statement *st = (const Gm__Carbon__Statement *)reply;
  if (r.out) {
    /* Whole or not at all: a failed write leaves an earlier statement as
       it was. */
    if (!GM_CLI_API_HAS(g->api, write_file))
      code = g->api->error(g->cli, GM_UNIMPLEMENTED,
                           "this gm is older than its carbon commands and "
                           "cannot write %s; install gm and its markets "
                           "together",
                           r.out);
    else
      code = g->api->write_file(g->cli, r.out, st->csv, strlen(st->csv));
    if (code != GM_CLI_EXIT_OK) {
      /* said */
    } else if (g->api->json(g->cli)) {
      g->api->print(g->cli, reply);
    } else {
      printf("wrote %lld trade%s to %s\n", (long long)st->rows,
             st->rows == 1 ? "" : "s", r.out);
    }
  } else if (g->api->json(g->cli)) {
    g->api->print(g->cli, reply);
  } else {
    fputs(st->csv, stdout);
  }
  gm__carbon_free(&reply);
  return code;
}

/* -- market data -- */

static void gm__carbon_print_depth(const ProtobufCMessage *m) {
  const Gm__Carbon__Depth *r = (const Gm__Carbon__Depth *)m;
  size_t n = r->n_bids > r->n_asks ? r->n_bids : r->n_asks;
  printf("%s\n", r->symbol);
  if (n == 0) {
    printf("the book is empty\n");
    return;
  }
  gm_table t = {5,    (const char *[]){"BID QTY", "BID", "|", "ASK", "ASK QTY"},
                0x1b, NULL,
                0,    0};
  for (size_t i = 0; i < n; i++) {
    char bq[24] = "", bp[32] = "", aq[24] = "", ap[32] = "";
    if (i < r->n_bids) {
      gm__carbon_num(r->bids[i]->quantity, bq);
      gm__carbon_px(r->bids[i]->price, bp);
    }
    if (i < r->n_asks) {
      gm__carbon_num(r->asks[i]->quantity, aq);
      gm__carbon_px(r->asks[i]->price, ap);
    }
    gm_table_row(&t, bq, bp, "|", ap, aq);
  }
  gm_table_print(&t, stdout);
}

typedef struct gm__carbon_depth {
  const char *depth;
} gm__carbon_depth;

static int gm__carbon_depth_opt(int c, const char *arg, void *ctx) {
  if (c == GM__CARBON_DEPTH) ((gm__carbon_depth *)ctx)->depth = arg;
  return 0;
}

static int gm__carbon_book_run(const gm__carbon_cli *g, int argc, char **argv,
                               const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"depth", required_argument, NULL, GM__CARBON_DEPTH},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_depth d = {0};
  char *pos[2] = {NULL}, err[256];
  int npos;
  int64_t levels = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_depth_opt,
                  &d);
  if (npos != 1)
    return gm__carbon_usage_error(self, "%s needs a SYMBOL", argv[0]);
  if (d.depth && gm__carbon_parse_tonnes("--depth", d.depth, 100, &levels, err,
                                         sizeof err)) {
    fprintf(stderr, "error: --depth is a number of price levels, 1..100\n");
    return GM_CLI_EXIT_ERROR;
  }
  Gm__Carbon__DepthRequest req = GM__CARBON__DEPTH_REQUEST__INIT;
  req.symbol = pos[0];
  req.levels = (int32_t)levels;
  return gm__carbon_show(g, "market.depth", &req.base, gm__carbon_print_depth);
}

static void gm__carbon_print_stats(const ProtobufCMessage *m) {
  const Gm__Carbon__Stats *r = (const Gm__Carbon__Stats *)m;
  const struct {
    const char *name;
    int64_t fen;
  } prices[] = {{"last", r->last},
                {"open", r->open},
                {"high", r->high},
                {"low", r->low},
                {"vwap", r->vwap},
                {"close", r->close},
                {"reference", r->reference_price}};
  char px[32];
  printf("%-12s %s\n", "symbol", r->symbol);
  printf("%-12s %s\n", "day", r->day);
  for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++)
    printf("%-12s %s\n", prices[i].name, gm__carbon_px(prices[i].fen, px));
  printf("%-12s %lld t\n", "volume", (long long)r->volume);
  printf("%-12s %s yuan\n", "turnover",
         gm__carbon_format_price(r->turnover, px));
  printf("%-12s %lld\n", "trades", (long long)r->trades);
  printf("%-12s %lld t\n", "block volume", (long long)r->block_volume);
}

static int gm__carbon_stats_run(const gm__carbon_cli *g, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  if (npos != 1)
    return gm__carbon_usage_error(self, "%s needs a SYMBOL", argv[0]);
  Gm__Carbon__StatsRequest req = GM__CARBON__STATS_REQUEST__INIT;
  req.symbol = pos[0];
  return gm__carbon_show(g, "market.stats", &req.base, gm__carbon_print_stats);
}

/* -- instruments -- */

static void gm__carbon_print_instrument_list(
    Gm__Carbon__Instrument *const *list, size_t n) {
  gm_table t = {8,
                (const char *[]){"SYMBOL", "KIND", "REFERENCE", "BAND",
                                 "SESSIONS", "BLOCK SESSIONS", "STATE", "NAME"},
                0x0c,
                NULL,
                0,
                0};
  for (size_t i = 0; i < n; i++) {
    const Gm__Carbon__Instrument *o = list[i];
    char ref[40], px[32], band[48], state[160];
    snprintf(ref, sizeof ref, "%s %s", gm__carbon_px(o->reference_price, px),
             o->currency);
    snprintf(band, sizeof band, "+/-%d.%02d%%", (int)(o->band_bp / 100),
             (int)(o->band_bp % 100));
    if (o->halted)
      snprintf(state, sizeof state, "halted%s%s", *o->halt_reason ? ": " : "",
               o->halt_reason);
    else
      snprintf(state, sizeof state, "trading");
    gm_table_row(&t, o->symbol, o->kind, ref, band, o->sessions,
                 o->block_sessions, state, o->name);
  }
  if (t.rows == 0)
    printf("no instruments listed\n");
  else
    gm_table_print(&t, stdout);
}

static void gm__carbon_print_instruments(const ProtobufCMessage *m) {
  const Gm__Carbon__InstrumentList *r = (const Gm__Carbon__InstrumentList *)m;
  gm__carbon_print_instrument_list(r->instruments, r->n_instruments);
}

static void gm__carbon_print_instrument(const ProtobufCMessage *m) {
  Gm__Carbon__Instrument *one = (Gm__Carbon__Instrument *)m;
  gm__carbon_print_instrument_list(&one, 1);
}

static int gm__carbon_instruments_run(const gm__carbon_cli *g, int argc,
                                      char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[1] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 0, &npos, gm__carbon_no_opts,
                  NULL);
  Gm__Carbon__ListInstrumentsRequest req =
      GM__CARBON__LIST_INSTRUMENTS_REQUEST__INIT;
  return gm__carbon_show(g, "instrument.list", &req.base,
                         gm__carbon_print_instruments);
}

typedef struct gm__carbon_create {
  const char *ref, *name, *kind, *sessions, *block_sessions, *reason;
} gm__carbon_create;

static int gm__carbon_create_opt(int c, const char *arg, void *ctx) {
  gm__carbon_create *k = ctx;
  if (c == GM__CARBON_REF_PRICE) k->ref = arg;
  if (c == GM__CARBON_NAME) k->name = arg;
  if (c == GM__CARBON_KIND) k->kind = arg;
  if (c == GM__CARBON_SESSIONS) k->sessions = arg;
  if (c == GM__CARBON_BLOCK_SESSIONS) k->block_sessions = arg;
  if (c == GM__CARBON_REASON) k->reason = arg;
  return 0;
}

static int gm__carbon_create_run(const gm__carbon_cli *g, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"reference", required_argument, NULL, GM__CARBON_REF_PRICE},
      {"name", required_argument, NULL, GM__CARBON_NAME},
      {"kind", required_argument, NULL, GM__CARBON_KIND},
      {"sessions", required_argument, NULL, GM__CARBON_SESSIONS},
      {"block-sessions", required_argument, NULL, GM__CARBON_BLOCK_SESSIONS},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_create k = {0};
  char *pos[2] = {NULL};
  int npos;
  int64_t ref;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_create_opt,
                  &k);
  if (npos != 1 || !k.ref)
    return gm__carbon_usage_error(
        self, "%s needs SYMBOL and --reference PRICE (the previous close)",
        argv[0]);
  if (gm__carbon_yuan_arg(g, "--reference", k.ref, GM_CARBON_MAX_PRICE, &ref))
    return GM_CLI_EXIT_ERROR;
  /* An empty list would reach the market as no list, the defaults: a
     market that never trades was likelier meant. */
  if ((k.sessions && !*k.sessions) || (k.block_sessions && !*k.block_sessions))
    return gm__carbon_usage_error(
        self,
        "--%s is empty: give at least one HH:MM-HH:MM range, or leave the "
        "option out for the default sessions",
        k.sessions && !*k.sessions ? "sessions" : "block-sessions");
  /* Fields left empty take the market's defaults (carbon.proto). */
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  in.symbol = pos[0];
  in.reference_price = ref;
  if (k.name) in.name = (char *)k.name;
  if (k.kind) in.kind = (char *)k.kind;
  if (k.sessions) in.sessions = (char *)k.sessions;
  if (k.block_sessions) in.block_sessions = (char *)k.block_sessions;
  Gm__Carbon__CreateInstrumentRequest req =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  req.instrument = &in;
  return gm__carbon_show(g, "instrument.create", &req.base,
                         gm__carbon_print_instrument);
}

static int gm__carbon_halt_run(const gm__carbon_cli *g, int argc, char **argv,
                               const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"reason", required_argument, NULL, GM__CARBON_REASON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_create k = {0};
  char *pos[2] = {NULL};
  int npos;
  int halt = !strcmp(argv[0], "halt");
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_create_opt,
                  &k);
  if (npos != 1)
    return gm__carbon_usage_error(self, "%s needs a SYMBOL", argv[0]);
  Gm__Carbon__InstrumentRequest req = GM__CARBON__INSTRUMENT_REQUEST__INIT;
  req.symbol = pos[0];
  req.reason = (char *)(k.reason ? k.reason : "");
  return gm__carbon_show(g, halt ? "instrument.halt" : "instrument.resume",
                         &req.base, gm__carbon_print_instrument);
}

/* -- accounts -- */

typedef struct gm__carbon_move {
  const char *cash, *allowances, *reference, *participant;
} gm__carbon_move;

static int gm__carbon_move_opt(int c, const char *arg, void *ctx) {
  gm__carbon_move *m = ctx;
  if (c == GM__CARBON_CASH) m->cash = arg;
  if (c == GM__CARBON_ALLOWANCES) m->allowances = arg;
  if (c == GM__CARBON_REFERENCE) m->reference = arg;
  if (c == GM__CARBON_PARTICIPANT) m->participant = arg;
  return 0;
}

/* One account row: participant, symbol, cash, frozen, allowances... */
static void gm__carbon_account_row(gm_table *t, const Gm__Carbon__Account *a) {
  char c[32], cf[32], al[24], af[24], lk[24];
  gm_table_row(t, a->participant, a->symbol,
               gm__carbon_format_price(a->cash, c),
               gm__carbon_format_price(a->cash_frozen, cf),
               gm__carbon_num(a->allowances, al),
               gm__carbon_num(a->allowances_frozen, af),
               gm__carbon_num(a->allowances_locked, lk));
}

static const char *const gm__carbon_account_head[] = {
    "PARTICIPANT", "SYMBOL", "CASH",  "CASH FROZEN",
    "ALLOWANCES",  "FROZEN", "LOCKED"};

static void gm__carbon_print_account(const ProtobufCMessage *m) {
  gm_table t = {7, (const char **)gm__carbon_account_head, 0x7c, NULL, 0, 0};
  gm__carbon_account_row(&t, (const Gm__Carbon__Account *)m);
  gm_table_print(&t, stdout);
}

static int gm__carbon_move_run(const gm__carbon_cli *g, int argc, char **argv,
                               const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"cash", required_argument, NULL, GM__CARBON_CASH},
      {"allowances", required_argument, NULL, GM__CARBON_ALLOWANCES},
      {"reference", required_argument, NULL, GM__CARBON_REFERENCE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_move m = {0};
  char *pos[3] = {NULL};
  int npos;
  int64_t amount;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 2, &npos, gm__carbon_move_opt,
                  &m);
  if (npos != 2 || !m.cash == !m.allowances)
    return gm__carbon_usage_error(
        self,
        "%s needs PARTICIPANT SYMBOL and one of --cash YUAN or "
        "--allowances TONNES",
        argv[0]);
  if (m.cash ? gm__carbon_yuan_arg(g, "--cash", m.cash, GM_CARBON_MAX_CASH,
                                   &amount)
             : gm__carbon_tonnes_arg(g, "--allowances", m.allowances,
                                     GM_CARBON_MAX_CASH, &amount))
    return GM_CLI_EXIT_ERROR;
  Gm__Carbon__MoveRequest req = GM__CARBON__MOVE_REQUEST__INIT;
  req.participant = pos[0];
  req.symbol = pos[1];
  req.asset = m.cash ? GM__CARBON__ASSET__ASSET_CASH
                     : GM__CARBON__ASSET__ASSET_ALLOWANCE;
  req.amount = amount;
  req.reference = (char *)(m.reference ? m.reference : "");
  return gm__carbon_show(
      g, strcmp(argv[0], "deposit") ? "account.withdraw" : "account.deposit",
      &req.base, gm__carbon_print_account);
}

static int gm__carbon_holdings_run(const gm__carbon_cli *g, int argc,
                                   char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"participant", required_argument, NULL, GM__CARBON_PARTICIPANT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_move m = {0};
  char *pos[2] = {NULL};
  int npos, code = GM_CLI_EXIT_OK;
  ProtobufCMessage *list = NULL;
  char **symbols = pos;
  size_t nsymbols = 1;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_move_opt,
                  &m);
  if (npos == 0) {
    /* Accounts are per instrument (docs/carbon.md): ask each one. */
    Gm__Carbon__ListInstrumentsRequest lr =
        GM__CARBON__LIST_INSTRUMENTS_REQUEST__INIT;
    code = gm__carbon_call(g, "instrument.list", &lr.base, &list);
    if (code != GM_CLI_EXIT_OK) return code;
    nsymbols = ((const Gm__Carbon__InstrumentList *)list)->n_instruments;
    symbols = calloc(nsymbols ? nsymbols : 1, sizeof *symbols);
    if (!symbols) {
      gm__carbon_free(&list);
      return g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                           "out of memory listing %zu instruments", nsymbols);
    }
    for (size_t i = 0; i < nsymbols; i++)
      symbols[i] =
          ((const Gm__Carbon__InstrumentList *)list)->instruments[i]->symbol;
  }
  gm_table t = {7, (const char **)gm__carbon_account_head, 0x7c, NULL, 0, 0};
  for (size_t i = 0; i < nsymbols && code == GM_CLI_EXIT_OK; i++) {
    Gm__Carbon__AccountRequest req = GM__CARBON__ACCOUNT_REQUEST__INIT;
    ProtobufCMessage *reply;
    req.symbol = symbols[i];
    req.participant = (char *)(m.participant ? m.participant : "");
    if (npos == 1) {
      code = gm__carbon_call(g, "account.get", &req.base, &reply);
    } else {
      /* Over every instrument, one without an account of ours is skipped. */
      gm_status status;
      const char *why;
      code = g->api->call_quiet(g->cli, "carbon", "account.get", &req.base,
                                &reply, &status, &why);
      if (status == GM_NOT_FOUND) {
        code = GM_CLI_EXIT_OK;
        continue;
      }
      if (code != GM_CLI_EXIT_OK) g->api->error(g->cli, status, "%s", why);
    }
    if (code != GM_CLI_EXIT_OK) break;
    const Gm__Carbon__Account *a = (const Gm__Carbon__Account *)reply;
    if (g->api->json(g->cli))
      g->api->print(g->cli, reply);
    else if (npos == 1 || a->cash || a->cash_frozen || a->allowances ||
             a->allowances_frozen || a->allowances_locked)
      gm__carbon_account_row(&t, a); /* empty accounts are noise */
    gm__carbon_free(&reply);
  }
  if (symbols != pos) free(symbols);
  gm__carbon_free(&list);
  if (code == GM_CLI_EXIT_OK && !g->api->json(g->cli)) {
    if (t.rows == 0)
      printf("no holdings\n");
    else
      gm_table_print(&t, stdout);
  }
  gm_table_free(&t);
  return code;
}

/* -- block agreement trades -- */

/* "8550000.00 yuan" or "100000 t": what an offer holds of its offerer. */
static const char *gm__carbon_offer_holds(const Gm__Carbon__BlockOffer *b,
                                          char out[48]) {
  int64_t amount;
  char px[32];
  if (b->side != GM__CARBON__SIDE__SIDE_BUY)
    snprintf(out, 48, "%lld t", (long long)b->quantity);
  else if (__builtin_mul_overflow(b->price, b->quantity, &amount))
    snprintf(out, 48, "cash");
  else
    snprintf(out, 48, "%s yuan", gm__carbon_format_price(amount, px));
  return out;
}

/* price x quantity in yuan, or "?" past int64. */
static const char *gm__carbon_offer_amount(const Gm__Carbon__BlockOffer *b,
                                           char out[32]) {
  int64_t amount;
  if (__builtin_mul_overflow(b->price, b->quantity, &amount))
    return strcpy(out, "?");
  return gm__carbon_format_price(amount, out);
}

/* Prints a BlockOffer as a table row, then what its state means. */
static void gm__carbon_print_offer(const ProtobufCMessage *m) {
  const Gm__Carbon__BlockOffer *b = (const Gm__Carbon__BlockOffer *)m;
  char side[32], state[32], q[24], px[32], amt[32], holds[48];
  const char *of = b->offerer, *cp = b->counterparty;
  gm_table t = {9,
                (const char *[]){"OFFER", "FROM", "SIDE", "TO", "QTY", "PRICE",
                                 "AMOUNT", "STATE", "TRADE"},
                0x70,
                NULL,
                0,
                0};
  gm_table_row(&t, b->id, of, GM__CARBON_SIDE(b->side, side), cp,
               gm__carbon_num(b->quantity, q), gm__carbon_px(b->price, px),
               gm__carbon_offer_amount(b, amt),
               gm__carbon_enum(&gm__carbon__offer_state__descriptor,
                               (int)b->state, state),
               *b->trade_id ? b->trade_id : "-");
  gm_table_print(&t, stdout);
  gm__carbon_offer_holds(b, holds);
  switch (b->state) {
    case GM__CARBON__OFFER_STATE__OFFER_OPEN:
      printf(
          "%s's %s stay frozen until %s accepts or rejects the offer, %s "
          "withdraws it, or today's block session ends\n",
          of, holds, cp, of);
      break;
    case GM__CARBON__OFFER_STATE__OFFER_ACCEPTED:
      printf("accepted by %s: one block trade at %s (see `gm carbon trades`)\n",
             cp, px);
      break;
    case GM__CARBON__OFFER_STATE__OFFER_REJECTED:
      printf("rejected by %s: %s's %s are released\n", cp, of, holds);
      break;
    case GM__CARBON__OFFER_STATE__OFFER_WITHDRAWN:
      printf("withdrawn by %s: %s's %s are released\n", of, of, holds);
      break;
    default:
      break;
  }
}

/* Offers by id: ids grow with creation within an instrument. */
static int gm__carbon_offer_by_id(const void *a, const void *b) {
  return strcmp((*(const Gm__Carbon__BlockOffer *const *)a)->id,
                (*(const Gm__Carbon__BlockOffer *const *)b)->id);
}

/* Prints open offers as one table. */
static void gm__carbon_print_offers(const gm__carbon_list *l) {
  const Gm__Carbon__BlockOffer **sorted =
      calloc(l->n ? l->n : 1, sizeof *sorted);
  if (!sorted) return;
  for (size_t i = 0; i < l->n; i++) sorted[i] = l->items[i];
  qsort(sorted, l->n, sizeof *sorted, gm__carbon_offer_by_id);
  gm_table t = {8,
                (const char *[]){"OFFER", "FROM", "SIDE", "TO", "QTY", "PRICE",
                                 "AMOUNT", "MADE"},
                0x70,
                NULL,
                0,
                0};
  for (size_t i = 0; i < l->n; i++) {
    const Gm__Carbon__BlockOffer *b = sorted[i];
    char side[32], q[24], px[32], amt[32], when[32];
    gm_table_row(&t, b->id, b->offerer, GM__CARBON_SIDE(b->side, side),
                 b->counterparty, gm__carbon_num(b->quantity, q),
                 gm__carbon_px(b->price, px), gm__carbon_offer_amount(b, amt),
                 gm__carbon_time(b->created_ms, when));
  }
  free(sorted);
  if (t.rows == 0)
    printf("no open block offers\n");
  else
    gm_table_print(&t, stdout);
}

/* gm carbon block list [SYMBOL]: every page of block.list as one table. */
static int gm__carbon_block_list_run(const gm__carbon_cli *g, int argc,
                                     char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  gm__carbon_list offers;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  int code = gm__carbon_walk(g, 1, npos ? pos[0] : "", 0, 1, &offers);
  if (code == GM_CLI_EXIT_OK && !g->api->json(g->cli))
    gm__carbon_print_offers(&offers);
  fflush(stdout);
  gm__carbon_list_free(&offers);
  return code;
}

typedef struct gm__carbon_block {
  const char *to;
} gm__carbon_block;

static int gm__carbon_block_opt(int c, const char *arg, void *ctx) {
  if (c == GM__CARBON_COUNTERPARTY) ((gm__carbon_block *)ctx)->to = arg;
  return 0;
}

static int gm__carbon_offer_run(const gm__carbon_cli *g, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"to", required_argument, NULL, GM__CARBON_COUNTERPARTY},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_block b = {0};
  char *pos[5] = {NULL}, *words[4];
  int npos;
  int64_t qty, price;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 5, &npos, gm__carbon_block_opt,
                  &b);
  if (gm__carbon_words(pos, npos, words, 4) != 4 || !b.to)
    return gm__carbon_usage_error(
        self, "%s",
        "block offer needs SYMBOL buy|sell QTY @ PRICE --to PARTICIPANT");
  if (strcmp(words[1], "buy") && strcmp(words[1], "sell"))
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "the side of a block offer is buy or sell (your "
                         "side of the trade), not \"%s\"",
                         words[1]);
  /* The block threshold is the instrument's: the market checks it. */
  if (gm__carbon_tonnes_arg(g, "quantity", words[2], GM_CARBON_MAX_QTY, &qty) ||
      gm__carbon_yuan_arg(g, "price", words[3], GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  Gm__Carbon__OfferRequest req = GM__CARBON__OFFER_REQUEST__INIT;
  req.symbol = words[0];
  req.side = strcmp(words[1], "buy") ? GM__CARBON__SIDE__SIDE_SELL
                                     : GM__CARBON__SIDE__SIDE_BUY;
  req.counterparty = (char *)b.to;
  req.price = price;
  req.quantity = qty;
  return gm__carbon_show(g, "block.offer", &req.base, gm__carbon_print_offer);
}

static int gm__carbon_block_run(const gm__carbon_cli *g, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  if (argc < 2)
    return gm__carbon_usage_error(
        self, "%s needs list, offer, accept, reject or withdraw", argv[0]);
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: %s", self->usage);
    return GM_CLI_EXIT_OK;
  }
  const char *sub = argv[1], *method;
  if (!strcmp(sub, "offer"))
    return gm__carbon_offer_run(g, argc - 1, argv + 1, self);
  if (!strcmp(sub, "list"))
    return gm__carbon_block_list_run(g, argc - 1, argv + 1, self);
  if (!strcmp(sub, "accept"))
    method = "block.accept";
  else if (!strcmp(sub, "reject"))
    /* The counterparty's only (counterparty_only below): the market
     * refuses the offerer's and tells it to withdraw. */
    method = "block.reject";
  else if (!strcmp(sub, "withdraw"))
    method = "block.withdraw"; /* the offerer's only */
  else
    return gm__carbon_usage_error(
        self,
        "unknown block command \"%s\": use list, offer, accept, reject or "
        "withdraw",
        sub);
  GM__CARBON_ARGS(argc - 1, argv + 1, opts, self, pos, 1, &npos,
                  gm__carbon_no_opts, NULL);
  if (npos != 1)
    return gm__carbon_usage_error(self, "block %s needs an OFFER_ID", sub);
  Gm__Carbon__OfferDecision req = GM__CARBON__OFFER_DECISION__INIT;
  req.offer_id = pos[0];
  req.counterparty_only = !strcmp(sub, "reject");
  return gm__carbon_show(g, method, &req.base, gm__carbon_print_offer);
}

/* -- end of day and reconciliation (admin) -- */

static void gm__carbon_print_closes(const ProtobufCMessage *m) {
  const Gm__Carbon__CloseReply *r = (const Gm__Carbon__CloseReply *)m;
  gm_table t = {7,
                (const char *[]){"SYMBOL", "DAY", "CLOSE", "VOLUME", "BASIS",
                                 "EXPIRED", "STATUS"},
                0x2c,
                NULL,
                0,
                0};
  for (size_t i = 0; i < r->n_closes; i++) {
    const Gm__Carbon__DayClose *d = r->closes[i];
    char px[32], vol[24], exp[24];
    /* A day closed before comes with its volume and basis as closed. */
    gm_table_row(&t, d->symbol, d->day, gm__carbon_px(d->close, px),
                 gm__carbon_num(d->volume, vol),
                 d->from_trades ? "VWAP of listing trades"
                                : "previous close (no trades)",
                 gm__carbon_num(d->expired, exp),
                 d->already ? "closed before" : "closed now");
  }
  if (t.rows == 0)
    printf(
        "no trading day has closed yet: a day closes when its last listing "
        "session ends\n");
  else
    gm_table_print(&t, stdout);
}

static int gm__carbon_close_run(const gm__carbon_cli *g, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  Gm__Carbon__CloseRequest req = GM__CARBON__CLOSE_REQUEST__INIT;
  req.symbol = npos ? pos[0] : "";
  return gm__carbon_show(g, "records.close", &req.base,
                         gm__carbon_print_closes);
}

/* A ledger or live amount: yuan for cash, tonnes for allowances. */
static const char *gm__carbon_amount(int cash, int64_t v, int sign,
                                     char out[40]) {
  char px[32];
  if (cash)
    snprintf(out, 40, "%s%s", sign && v > 0 ? "+" : "",
             gm__carbon_format_price(v, px));
  else
    snprintf(out, 40, "%s%lld", sign && v > 0 ? "+" : "", (long long)v);
  return out;
}

static void gm__carbon_print_reconcile(const Gm__Carbon__ReconcileReply *r) {
  size_t n = r->n_differences;
  printf("accounts compared  %lld\n", (long long)r->accounts);
  printf("unsettled entries  %lld\n", (long long)r->unsettled);
  if (n == 0) {
    printf("no differences: the ledger and the live holdings agree\n");
    return;
  }
  gm_table t = {6,
                (const char *[]){"SYMBOL", "PARTICIPANT", "ASSET", "LEDGER",
                                 "LIVE", "LIVE - LEDGER"},
                0x38,
                NULL,
                0,
                0};
  for (size_t i = 0; i < n; i++) {
    const Gm__Carbon__Difference *d = r->differences[i];
    char led[40], live[40], diff[40];
    int cash = d->asset == GM__CARBON__ASSET__ASSET_CASH;
    int64_t x;
    gm__carbon_amount(cash, d->ledger, 0, led);
    gm__carbon_amount(cash, d->live, 0, live);
    if (__builtin_sub_overflow(d->live, d->ledger, &x))
      strcpy(diff, "?");
    else
      gm__carbon_amount(cash, x, 1, diff);
    gm_table_row(&t, d->symbol, d->participant,
                 cash ? "cash (yuan)" : "allowances (t)", led, live, diff);
  }
  gm_table_print(&t, stdout);
  printf("%zu difference%s\n", n, n == 1 ? "" : "s");
  if (r->unsettled > 0)
    printf(
        "%lld outbox entr%s not settled yet: the differences may be only "
        "those; run again in a moment, or with --wait SECONDS\n",
        (long long)r->unsettled, r->unsettled == 1 ? "y is" : "ies are");
}

typedef struct gm__carbon_wait {
  const char *wait;
} gm__carbon_wait;

static int gm__carbon_wait_opt(int c, const char *arg, void *ctx) {
  if (c == GM__CARBON_WAIT) ((gm__carbon_wait *)ctx)->wait = arg;
  return 0;
}

static int64_t gm__carbon_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exits 0 when the ledger and Redis agree, 1 when they differ, so an
 * operator's script can act on the status alone. */
static int gm__carbon_reconcile_run(const gm__carbon_cli *g, int argc,
                                    char **argv, const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"wait", required_argument, NULL, GM__CARBON_WAIT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_wait w = {0};
  char *pos[2] = {NULL}, err[256];
  int npos, code;
  int64_t wait_s = 0;
  ProtobufCMessage *reply;
  const Gm__Carbon__ReconcileReply *r;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_wait_opt,
                  &w);
  if (w.wait && gm__carbon_parse_tonnes("--wait", w.wait, 3600, &wait_s, err,
                                        sizeof err)) {
    fprintf(stderr, "error: --wait is a number of seconds, 1..3600\n");
    return GM_CLI_EXIT_ERROR;
  }
  int64_t until = gm__carbon_now_ms() + wait_s * 1000;
  for (;;) {
    Gm__Carbon__ReconcileRequest req = GM__CARBON__RECONCILE_REQUEST__INIT;
    req.symbol = npos ? pos[0] : "";
    code = gm__carbon_call(g, "records.reconcile", &req.base, &reply);
    if (code != GM_CLI_EXIT_OK) return code;
    r = (const Gm__Carbon__ReconcileReply *)reply;
    /* Differences while entries are unsettled may be only settlement lag:
     * with --wait, ask again until they settle or the time is up. */
    if (!r->n_differences || r->unsettled <= 0 || gm__carbon_now_ms() >= until)
      break;
    gm__carbon_free(&reply);
    nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
  }
  size_t ndiff = r->n_differences;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    gm__carbon_print_reconcile(r);
  fflush(stdout);
  gm__carbon_free(&reply);
  return ndiff ? GM_CLI_EXIT_ERROR : GM_CLI_EXIT_OK;
}

/* ---- the extension ---- */

static const gm__carbon_cmd gm__carbon_cmds[] = {
    {"buy",
     "gm carbon buy SYMBOL QTY @ PRICE [--ioc|--fok|--post-only|--market]\n"
     "              [--day|--gtd TIME] [--client-id ID] "
     "[--stp incoming|resting|both]\n"
     "    buy QTY tonnes at PRICE yuan or better (good till cancelled)\n"
     "    --gtd 2026-11-24T15:00:00+08:00, or a date: expires at the end "
     "of that day\n",
     gm__carbon_place_run},
    {"sell", "gm carbon sell SYMBOL QTY @ PRICE [same options as buy]\n",
     gm__carbon_place_run},
    {"cancel",
     "gm carbon cancel ORDER_ID | gm carbon cancel --all [SYMBOL] "
     "[--buy|--sell]\n"
     "    --all cancels your open orders (of SYMBOL; of one side with --buy "
     "or --sell)\n",
     gm__carbon_cancel_run},
    {"replace",
     "gm carbon replace ORDER_ID [--price PRICE] [--qty TOTAL_QTY]\n"
     "    the same price and a qty no larger keeps time priority; a new "
     "price or more qty loses it\n",
     gm__carbon_replace_run},
    {"orders", "gm carbon orders [SYMBOL]      your open orders\n",
     gm__carbon_orders_run},
    {"trades",
     "gm carbon trades [SYMBOL] [--from DATE] [--to DATE] [--limit N] "
     "[--after CURSOR]\n"
     "    your settled trades (dates YYYY-MM-DD, Asia/Shanghai), the oldest "
     "first,\n"
     "    at most --limit (default 100); when more follow it prints the\n"
     "    --after CURSOR that gets the next page (same SYMBOL, --from, --to);\n"
     "    trades that settle after a page was read come after the others, on\n"
     "    the later pages; on the last page it prints the --after CURSOR\n"
     "    that shows the trades of the range settled since\n",
     gm__carbon_trades_run},
    {"book", "gm carbon book SYMBOL [--depth N]   bids and asks (default 5)\n",
     gm__carbon_book_run},
    {"stats", "gm carbon stats SYMBOL          today's prices and volume\n",
     gm__carbon_stats_run},
    {"holdings",
     "gm carbon holdings [SYMBOL] [--participant ID (admin)]\n"
     "    cash and allowances: available, frozen by orders, locked "
     "(bought today)\n",
     gm__carbon_holdings_run},
    {"statement",
     "gm carbon statement SYMBOL --from DATE [--to DATE] [--out FILE.csv]\n",
     gm__carbon_statement_run},
    {"instruments", "gm carbon instruments           the listed instruments\n",
     gm__carbon_instruments_run},
    {"create",
     "gm carbon create SYMBOL --reference PRICE [--name TEXT] [--kind "
     "CEA|CCER]\n"
     "              [--sessions HH:MM-HH:MM,...] [--block-sessions ...]  "
     "(admin)\n",
     gm__carbon_create_run},
    {"halt", "gm carbon halt SYMBOL [--reason TEXT]   (admin)\n",
     gm__carbon_halt_run},
    {"resume", "gm carbon resume SYMBOL   (admin)\n", gm__carbon_halt_run},
    {"deposit",
     "gm carbon deposit PARTICIPANT SYMBOL --cash YUAN|--allowances TONNES\n"
     "              [--reference TEXT]   (admin)\n",
     gm__carbon_move_run},
    {"withdraw",
     "gm carbon withdraw PARTICIPANT SYMBOL --cash YUAN|--allowances TONNES "
     "(admin)\n",
     gm__carbon_move_run},
    {"block",
     "gm carbon block offer SYMBOL buy|sell QTY @ PRICE --to PARTICIPANT\n"
     "    offer a block agreement trade to PARTICIPANT: QTY at least the "
     "block\n"
     "    threshold (100000 t unless the instrument says otherwise), PRICE "
     "within\n"
     "    the block band, in the block session; your cash or allowances stay\n"
     "    frozen until the offer ends (at the latest when the session ends)\n"
     "  gm carbon block accept OFFER_ID     the counterparty accepts: it "
     "trades\n"
     "  gm carbon block reject OFFER_ID     the counterparty turns it down\n"
     "  gm carbon block withdraw OFFER_ID   the offerer takes it back\n"
     "  gm carbon block list [SYMBOL]       open offers to or from you (an "
     "admin:\n"
     "    every open offer), of SYMBOL or of every instrument\n",
     gm__carbon_block_run},
    {"close",
     "gm carbon close [SYMBOL]   (admin)\n"
     "    expire due orders and offers and close every trading day whose "
     "last\n"
     "    session has ended and that is not closed yet, oldest first (at "
     "most 16\n"
     "    per call: run it again for more): close = VWAP of its listing "
     "trades,\n"
     "    else the previous close\n",
     gm__carbon_close_run},
    {"reconcile",
     "gm carbon reconcile [SYMBOL] [--wait SECONDS]   (admin)\n"
     "    compare the settled ledger with the live holdings, per account; "
     "exit\n"
     "    status 0: no difference, 1: differences (or a refusal, on "
     "stderr),\n"
     "    2: broker unreachable.  --wait: while entries are still being "
     "settled,\n"
     "    ask again for up to SECONDS before reporting differences\n",
     gm__carbon_reconcile_run},
};

static int gm__carbon_run(gm_cli *cli, const gm_cli_api *api, int argc,
                          char **argv) {
  const gm__carbon_cli g = {cli, api};
  for (size_t i = 0; i < sizeof gm__carbon_cmds / sizeof gm__carbon_cmds[0];
       i++)
    if (!strcmp(argv[0], gm__carbon_cmds[i].name))
      return gm__carbon_cmds[i].run(&g, argc, argv, &gm__carbon_cmds[i]);
  return GM_CLI_NOT_MINE;
}

static void gm__carbon_help(FILE *out) {
  fprintf(out,
          "friendly commands (prices in yuan like 85.50, quantities in "
          "tonnes;\n`gm carbon <command> --help` for one; --json prints "
          "the reply in fen):\n");
  for (size_t i = 0; i < sizeof gm__carbon_cmds / sizeof gm__carbon_cmds[0];
       i++)
    fprintf(out, "  %s", gm__carbon_cmds[i].usage);
}

/* gm_plugin.cli of carbon.c. */
const struct gm_cli_extension gm__carbon_cli_extension = {
    .size = sizeof(struct gm_cli_extension),
    .run = gm__carbon_run,
    .help = gm__carbon_help,
};
