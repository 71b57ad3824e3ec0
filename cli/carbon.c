/*
 * `gm carbon ...`: the carbon market's friendly commands for people (buy,
 * sell, cancel, book, trades, holdings, ...), on top of the generic
 * `gm carbon <method> field=value` path that handles every other word.
 *
 * Prices and cash are typed and shown in yuan with two decimals and sent as
 * int64 fen; quantities are whole tonnes.  Requests are built and replies
 * read through the plugin's own descriptors (gm_codec JSON), so `gm` needs
 * no generated carbon code and always speaks the loaded plugin's messages.
 * With --json every command prints the method's reply unchanged (fen).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../plugins/carbon/price.h"
#include "../plugins/carbon/rules.h"
#include "codec.h"
#include "commands.h"

/* The balance cap of docs/carbon.md (4 x 10^15 fen): larger moves are
 * refused by the plugin, so gm refuses them before sending. */
#define GM__CARBON_MAX_CASH INT64_C(4000000000000000)

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
  char maxtext[32];
  if (!text || !*text) {
    snprintf(err, errlen, "%s is empty; write yuan like 85.50", what);
    return -1;
  }
  if (text[0] == '-') {
    snprintf(err, errlen,
             "%s %s is negative; write a positive amount of yuan like 85.50",
             what, text);
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
             what, text);
    return -1;
  }
  if (nfrac > 2) {
    snprintf(err, errlen,
             "%s %s is finer than the 0.01 yuan tick (1 fen); use at most "
             "two decimals, like 85.50",
             what, text);
    return -1;
  }
  if (nfrac == 1) frac *= 10;
  if (big || frac > max_fen - whole * 100) {
    snprintf(err, errlen, "%s %s is above the largest accepted, %s yuan", what,
             text, gm__carbon_format_price(max_fen, maxtext));
    return -1;
  }
  if (whole == 0 && frac == 0) {
    snprintf(err, errlen, "%s must be at least 0.01 yuan, not %s", what, text);
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
  if (*p == '-' && p[1]) {
    snprintf(err, errlen, "%s %s is negative; give whole tonnes like 100", what,
             text);
    return -1;
  }
  for (; *p >= '0' && *p <= '9'; p++)
    if (v <= max) v = v * 10 + (*p - '0'); /* past max: stop, no overflow */
  if (!text || !*text || *p) {
    snprintf(err, errlen,
             "%s \"%s\" is not a whole number of tonnes; give digits like 100",
             what, text ? text : "");
    return -1;
  }
  if (v < 1 || v > max) {
    snprintf(err, errlen, "%s must be 1..%lld t, not %s", what, (long long)max,
             text);
    return -1;
  }
  *t = v;
  return 0;
}

/* The same as the parsers above, printing the error; for commands. */
static int gm__carbon_yuan_arg(const char *what, const char *text,
                               int64_t max_fen, int64_t *fen) {
  char err[256];
  if (gm__carbon_parse_yuan(what, text, max_fen, fen, err, sizeof err) == 0)
    return 0;
  fprintf(stderr, "error: INVALID_ARGUMENT: %s\n", err);
  return -1;
}

static int gm__carbon_tonnes_arg(const char *what, const char *text,
                                 int64_t max, int64_t *t) {
  char err[256];
  if (gm__carbon_parse_tonnes(what, text, max, t, err, sizeof err) == 0)
    return 0;
  fprintf(stderr, "error: INVALID_ARGUMENT: %s\n", err);
  return -1;
}

/*
 * A date "YYYY-MM-DD" (the Asia/Shanghai day, as the market counts days) or
 * a full time for `gm_cli_parse_time`, as ms.  `end` moves a bare date to
 * the start of the next day, so "--to DATE" includes the whole day.  Dates
 * are the market's own rules (plugins/carbon/rules.c), so gm and the plugin
 * agree on every day.
 */
static int gm__carbon_parse_when(const char *text, int end, int64_t *ms) {
  int64_t day;
  if (gm__carbon_parse_date(text, &day) == 0) {
    *ms = gm__carbon_day_start_ms(day + (end ? 1 : 0));
    return 0;
  }
  return gm_cli_parse_time(text, ms);
}

/* ms since the epoch as Asia/Shanghai "YYYY-MM-DD HH:MM:SS". */
static const char *gm__carbon_time(int64_t ms, char out[32]) {
  time_t t = (time_t)((ms + GM_CARBON_TZ_MS) / 1000);
  struct tm tm;
  if (ms <= 0 || !gmtime_r(&t, &tm)) return strcpy(out, "-");
  strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
  return out;
}

/* ---- reading replies (JSON from gm_codec_to_json) ---- */

static int64_t gm__carbon_int(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *gm__carbon_str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* An enum name without its prefix, lower-cased: "SIDE_BUY" -> "buy". */
static const char *gm__carbon_enum(const json_t *o, const char *key,
                                   char out[32]) {
  const char *s = gm__carbon_str(o, key), *u = strchr(s, '_');
  size_t i = 0;
  for (s = u ? u + 1 : s; *s && i < 31; s++)
    out[i++] = *s == '_' ? ' ' : (char)tolower((unsigned char)*s);
  out[i] = '\0';
  return out;
}

/* fen as yuan, or "-" for 0 (no price: no trade yet). */
static const char *gm__carbon_px(int64_t fen, char out[32]) {
  return fen ? gm__carbon_format_price(fen, out) : strcpy(out, "-");
}

/* ---- aligned tables ---- */

#define GM__CARBON_MAX_COLS 10

typedef struct gm__carbon_table {
  int ncols;         /* columns */
  const char **head; /* column titles */
  unsigned right;    /* bit c: column c is right-aligned (numbers) */
  char **cells;      /* rows * ncols strdup()ed texts */
  size_t rows, cap;  /* rows used, rows allocated */
} gm__carbon_table;

static void gm__carbon_row(gm__carbon_table *t, ...) {
  va_list ap;
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **n = realloc(t->cells, cap * (size_t)t->ncols * sizeof *n);
    if (!n) return;
    t->cells = n;
    t->cap = cap;
  }
  va_start(ap, t);
  for (int c = 0; c < t->ncols; c++) {
    const char *s = va_arg(ap, const char *);
    t->cells[t->rows * (size_t)t->ncols + (size_t)c] = strdup(s ? s : "");
  }
  va_end(ap);
  t->rows++;
}

static void gm__carbon_table_free(gm__carbon_table *t) {
  for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->rows = t->cap = 0;
}

/* Prints the table (header first) and frees its rows. */
static void gm__carbon_table_print(gm__carbon_table *t, FILE *out) {
  size_t w[GM__CARBON_MAX_COLS] = {0};
  for (int c = 0; c < t->ncols; c++) {
    w[c] = strlen(t->head[c]);
    for (size_t r = 0; r < t->rows; r++) {
      const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
      if (s && strlen(s) > w[c]) w[c] = strlen(s);
    }
  }
  for (size_t r = 0; r <= t->rows; r++) {
    for (int c = 0; c < t->ncols; c++) {
      const char *s =
          r ? t->cells[(r - 1) * (size_t)t->ncols + (size_t)c] : t->head[c];
      int last = c + 1 == t->ncols;
      if (t->right & (1u << c))
        fprintf(out, "%*s%s", (int)w[c], s ? s : "", last ? "" : "  ");
      else if (last)
        fprintf(out, "%s", s ? s : "");
      else
        fprintf(out, "%-*s  ", (int)w[c], s ? s : "");
    }
    fputc('\n', out);
  }
  gm__carbon_table_free(t);
}

/* ---- calling the market ---- */

/* gm__carbon_call_ex() when carbon.<method> answered NOT_FOUND. */
#define GM__CARBON_MISSING (-2)

/*
 * Calls carbon.<method> with the JSON request `req` (consumed).  On success
 * sets *raw (free with protobuf_c_message_free_unpacked) and *out (the reply
 * as JSON; json_decref) and returns 0; else the exit code, after printing.
 * With missing_ok (reads only: no idempotency key is sent), NOT_FOUND
 * returns GM__CARBON_MISSING without printing anything.
 */
static int gm__carbon_call_ex(gm_cli *cli, const char *method, json_t *req,
                              ProtobufCMessage **raw, json_t **out,
                              int missing_ok) {
  char *err = NULL;
  int code = GM_CLI_EXIT_ERROR;
  ProtobufCMessage *msg = NULL;
  *raw = NULL;
  *out = NULL;
  const gm_method *m = gm_cli_method(cli, "carbon", method);
  if (!m) {
    gm_cli_method_error(cli, "carbon", method);
    goto done;
  }
  msg = gm_codec_from_value(m->request, req, &err);
  if (!msg) {
    /* The plugin's request changed under gm: say so rather than guess. */
    fprintf(stderr,
            "error: INTERNAL: gm cannot build carbon.%s (%s); is the "
            "carbon plugin in the plugin dir the same version as gm?\n",
            method, err ? err : "?");
    goto done;
  }
  if (missing_ok) {
    gm_client *c = gm_cli_client(cli);
    gm_result r;
    if (!c) goto done;
    gm_client_call(c, "carbon", method, NULL, msg, m->reply, &r);
    if (r.status == GM_OK) {
      *raw = r.reply;
      r.reply = NULL;
      code = GM_CLI_EXIT_OK;
    } else {
      code = r.status == GM_NOT_FOUND ? GM__CARBON_MISSING : gm_cli_fail(&r);
    }
    gm_result_clear(&r);
  } else {
    code = gm_cli_call(cli, "carbon", method, msg, raw);
  }
  if (code == GM_CLI_EXIT_OK) *out = gm_codec_to_json(*raw);
done:
  free(err);
  if (msg) protobuf_c_message_free_unpacked(msg, NULL);
  json_decref(req);
  return code;
}

static int gm__carbon_call(gm_cli *cli, const char *method, json_t *req,
                           ProtobufCMessage **raw, json_t **out) {
  return gm__carbon_call_ex(cli, method, req, raw, out, 0);
}

static void gm__carbon_free(ProtobufCMessage **raw, json_t **out) {
  if (*raw) protobuf_c_message_free_unpacked(*raw, NULL);
  json_decref(*out);
  *raw = NULL;
  *out = NULL;
}

/* ---- commands ---- */

typedef struct gm__carbon_cmd {
  const char *name;
  const char *usage; /* one or more "gm carbon ..." lines + a summary */
  int (*run)(gm_cli *cli, int argc, char **argv,
             const struct gm__carbon_cmd *self);
} gm__carbon_cmd;

static int gm__carbon_usage_error(const gm__carbon_cmd *self, const char *fmt,
                                  const char *arg) {
  fprintf(stderr, "error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage: %s", self->usage);
  return GM_CLI_EXIT_ERROR;
}

/* Long options take any position: collect positionals in order. */
static int gm__carbon_args(int argc, char **argv, const struct option *opts,
                           const gm__carbon_cmd *self, char **pos, int maxpos,
                           int *npos,
                           int (*take)(int c, const char *arg, void *ctx),
                           void *ctx) {
  *npos = 0;
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

/* Prints an order (from an Order JSON object) as key/value lines. */
static void gm__carbon_print_order(const json_t *o) {
  char side[32], state[32], tif[32], px[32], when[32];
  int market = !strcmp(gm__carbon_str(o, "type"), "TYPE_MARKET");
  gm__carbon_enum(o, "tif", tif);
  for (char *p = tif; *p; p++) *p = (char)toupper((unsigned char)*p);
  printf("order      %s\n", gm__carbon_str(o, "id"));
  printf("side       %s %lld t @ %s %s\n", gm__carbon_enum(o, "side", side),
         (long long)gm__carbon_int(o, "quantity"),
         market ? "market" : gm__carbon_px(gm__carbon_int(o, "price"), px),
         tif);
  if (*gm__carbon_str(o, "client_order_id"))
    printf("client id  %s\n", gm__carbon_str(o, "client_order_id"));
  printf("state      %s: %lld t filled, %lld t open\n",
         gm__carbon_enum(o, "state", state),
         (long long)gm__carbon_int(o, "filled"),
         (long long)gm__carbon_int(o, "remaining"));
  if (*gm__carbon_str(o, "reason"))
    printf("reason     %s\n", gm__carbon_str(o, "reason"));
  if (gm__carbon_int(o, "expire_ms"))
    printf("expires    %s Asia/Shanghai\n",
           gm__carbon_time(gm__carbon_int(o, "expire_ms"), when));
}

/* Prints a PlaceReply: the order, then its fills. */
static void gm__carbon_print_place(const json_t *r) {
  const json_t *fills = json_object_get(r, "fills"), *f;
  size_t i;
  gm__carbon_print_order(json_object_get(r, "order"));
  if (json_is_true(json_object_get(r, "duplicate")))
    printf(
        "duplicate  this client order id was used before: the first "
        "result, nothing new placed\n");
  if (!json_array_size(fills)) return;
  printf("\nfills:\n");
  gm__carbon_table t = {
      5,    (const char *[]){"TRADE", "QTY", "PRICE", "AMOUNT", "TIME"},
      0x0e, NULL,
      0,    0};
  json_array_foreach(fills, i, f) {
    char q[24], px[32], amt[32], when[32];
    snprintf(q, sizeof q, "%lld", (long long)gm__carbon_int(f, "quantity"));
    gm__carbon_row(&t, gm__carbon_str(f, "trade_id"), q,
                   gm__carbon_px(gm__carbon_int(f, "price"), px),
                   gm__carbon_px(gm__carbon_int(f, "amount"), amt),
                   gm__carbon_time(gm__carbon_int(f, "time_ms"), when));
  }
  gm__carbon_table_print(&t, stdout);
}

/* Calls a method and prints its reply with `print` (or JSON). */
static int gm__carbon_show(gm_cli *cli, const char *method, json_t *req,
                           void (*print)(const json_t *)) {
  ProtobufCMessage *raw;
  json_t *out;
  int code = gm__carbon_call(cli, method, req, &raw, &out);
  if (code != GM_CLI_EXIT_OK) return code;
  if (cli->output == GM_CLI_OUTPUT_JSON)
    gm_cli_print(cli, raw);
  else
    print(out);
  fflush(stdout);
  gm__carbon_free(&raw, &out);
  return GM_CLI_EXIT_OK;
}

/* -- buy / sell -- */

typedef struct gm__carbon_place {
  const char *tif, *type, *stp, *client_id, *gtd;
  int post_only, day;
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
};

static int gm__carbon_place_opt(int c, const char *arg, void *ctx) {
  gm__carbon_place *p = ctx;
  const char *tif = NULL;
  switch (c) {
    case GM__CARBON_IOC:
      tif = "TIF_IOC";
      break;
    case GM__CARBON_FOK:
      tif = "TIF_FOK";
      break;
    case GM__CARBON_DAY:
      tif = "TIF_DAY";
      break;
    case GM__CARBON_GTD:
      tif = "TIF_GTD";
      p->gtd = arg;
      break;
    case GM__CARBON_POST:
      p->post_only = 1;
      return 0;
    case GM__CARBON_MARKET:
      p->type = "TYPE_MARKET";
      return 0;
    case GM__CARBON_CLIENT:
      p->client_id = arg;
      return 0;
    case GM__CARBON_STP:
      if (!strcmp(arg, "incoming"))
        p->stp = "STP_CANCEL_INCOMING";
      else if (!strcmp(arg, "resting"))
        p->stp = "STP_CANCEL_RESTING";
      else if (!strcmp(arg, "both"))
        p->stp = "STP_CANCEL_BOTH";
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
  if (p->tif && strcmp(p->tif, tif)) {
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

static int gm__carbon_place_run(gm_cli *cli, int argc, char **argv,
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
  gm__carbon_place p = {0};
  char *pos[5] = {NULL};
  int npos;
  int64_t qty, price = 0, expire = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 4, &npos, gm__carbon_place_opt,
                  &p);
  char *words[4];
  int n = gm__carbon_words(pos, npos, words, 4);
  int market = p.type != NULL;
  if (n < 2 || n > 3 || (n == 2 && !market))
    return gm__carbon_usage_error(
        self, "%s needs SYMBOL QTY @ PRICE (or SYMBOL QTY --market)", argv[0]);
  if (market && n == 3)
    return gm__carbon_usage_error(
        self, "%s",
        "a --market order takes no price: it trades at the best "
        "prices within the band");
  if (market && p.post_only)
    return gm__carbon_usage_error(self, "%s",
                                  "--post-only never trades on arrival; a "
                                  "--market order only trades: choose one");
  if (market && p.tif &&
      (!strcmp(p.tif, "TIF_DAY") || !strcmp(p.tif, "TIF_GTD")))
    return gm__carbon_usage_error(
        self, "%s",
        "a --market order never rests: --day and --gtd do not "
        "apply (use --fok to fill in full or not at all)");
  if (gm__carbon_tonnes_arg("quantity", words[1], GM_CARBON_MAX_QTY, &qty))
    return GM_CLI_EXIT_ERROR;
  if (!market &&
      gm__carbon_yuan_arg("price", words[2], GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  if (p.gtd && gm__carbon_parse_when(p.gtd, 0, &expire)) {
    fprintf(stderr,
            "error: --gtd \"%s\" is not a time; write "
            "2026-11-24T15:00:00+08:00 (a zone is required) or ms\n",
            p.gtd);
    return GM_CLI_EXIT_ERROR;
  }
  json_t *req = json_pack(
      "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:s, s:s}", "symbol", words[0],
      "side", strcmp(argv[0], "buy") ? "SIDE_SELL" : "SIDE_BUY", "type",
      market ? "TYPE_MARKET" : "TYPE_LIMIT", "tif", p.tif ? p.tif : "TIF_GTC",
      "price", (json_int_t)price, "quantity", (json_int_t)qty, "expire_ms",
      (json_int_t)expire, "post_only", p.post_only, "stp",
      p.stp ? p.stp : "STP_DEFAULT", "client_order_id",
      p.client_id ? p.client_id : "");
  return gm__carbon_show(cli, "order.place", req, gm__carbon_print_place);
}

/* -- cancel / replace -- */

typedef struct gm__carbon_cancel {
  int all;
  const char *side;
} gm__carbon_cancel;

static int gm__carbon_cancel_opt(int c, const char *arg, void *ctx) {
  gm__carbon_cancel *k = ctx;
  (void)arg;
  if (c == GM__CARBON_ALL) k->all = 1;
  if (c == GM__CARBON_BUY) k->side = "SIDE_BUY";
  if (c == GM__CARBON_SELL) k->side = "SIDE_SELL";
  return 0;
}

/*
 * Moves *cursor to the reply's next_cursor (NULL when it has none).  The
 * request carries "cursor" only after a reply handed one out, so gm works
 * with a plugin whose order.list and mass_cancel do not page as well.
 */
static void gm__carbon_next_cursor(const json_t *reply, char **cursor) {
  const char *next = gm__carbon_str(reply, "next_cursor");
  free(*cursor);
  *cursor = *next ? strdup(next) : NULL;
}

/* Calls to follow a walk before gm gives up: far above any real walk, and
 * a stop for a market that kept handing out cursors. */
#define GM__CARBON_MAX_PAGES 100000

/*
 * Every item of a paged list method (order.list, block.list) for `symbol`
 * ("" for every instrument), following its cursors from the first page to
 * the last, into *items (a JSON array of the reply's `field`; json_decref).
 * Each id is kept once: a walk over a set that was resized between two
 * pages may list an id twice (docs/carbon.md).  `limit` is the page size to
 * ask for (0: the market's default).  With --json and print_pages each page
 * is printed as it comes.  Returns the exit code, after printing why on
 * failure.
 */
static int gm__carbon_walk(gm_cli *cli, const char *method, const char *field,
                           const char *symbol, int limit, int print_pages,
                           json_t **items) {
  char *cursor = NULL;
  int code = GM_CLI_EXIT_OK;
  json_t *seen = json_object();
  *items = json_array();
  for (long page = 0;; page++) {
    ProtobufCMessage *raw;
    json_t *out, *it;
    size_t i;
    if (page == GM__CARBON_MAX_PAGES) {
      fprintf(stderr,
              "error: INTERNAL: %s still had pages after %d calls; is the "
              "carbon plugin the same version as gm?\n",
              method, GM__CARBON_MAX_PAGES);
      code = GM_CLI_EXIT_ERROR;
      break;
    }
    json_t *req = json_pack("{s:s}", "symbol", symbol);
    if (limit) json_object_set_new(req, "limit", json_integer(limit));
    if (cursor) json_object_set_new(req, "cursor", json_string(cursor));
    code = gm__carbon_call(cli, method, req, &raw, &out);
    if (code != GM_CLI_EXIT_OK) break;
    if (print_pages && cli->output == GM_CLI_OUTPUT_JSON)
      gm_cli_print(cli, raw);
    json_array_foreach(json_object_get(out, field), i, it) {
      const char *id = gm__carbon_str(it, "id");
      if (json_object_get(seen, id)) continue;
      json_object_set_new(seen, id, json_true());
      json_array_append(*items, it);
    }
    gm__carbon_next_cursor(out, &cursor);
    gm__carbon_free(&raw, &out);
    if (!cursor) break;
  }
  free(cursor);
  json_decref(seen);
  return code;
}

/* order.list's largest page: a trader with many orders needs fewer calls
 * (each costs the market the same per order as a smaller page). */
#define GM__CARBON_ORDERS_PAGE 1000

/* All the caller's open orders (gm__carbon_walk over order.list). */
static int gm__carbon_open_orders(gm_cli *cli, const char *symbol,
                                  int print_pages, json_t **orders) {
  return gm__carbon_walk(cli, "order.list", "orders", symbol,
                         GM__CARBON_ORDERS_PAGE, print_pages, orders);
}

/* Cancels all own orders of one symbol, calling again while some remain. */
static int gm__carbon_mass_cancel(gm_cli *cli, const char *symbol,
                                  const char *side, int64_t *count) {
  /* Each call looks at up to the plugin's per-call bound (mass_cancel_max)
   * and hands back a cursor to go on with; the loop is bounded too, in
   * case orders arrive as fast as we cancel. */
  char *cursor = NULL;
  int code = GM_CLI_EXIT_OK;
  for (int round = 0; round < 1000; round++) {
    ProtobufCMessage *raw;
    json_t *out, *id;
    size_t i;
    json_t *req = json_pack("{s:s, s:s}", "symbol", symbol, "side", side);
    if (cursor) json_object_set_new(req, "cursor", json_string(cursor));
    code = gm__carbon_call(cli, "order.mass_cancel", req, &raw, &out);
    if (code != GM_CLI_EXIT_OK) break;
    if (cli->output == GM_CLI_OUTPUT_JSON) gm_cli_print(cli, raw);
    json_array_foreach(json_object_get(out, "cancelled"), i, id) {
      if (cli->output == GM_CLI_OUTPUT_TABLE)
        printf("cancelled  %s\n", json_string_value(id));
      (*count)++;
    }
    int64_t more = gm__carbon_int(out, "remaining");
    gm__carbon_next_cursor(out, &cursor);
    gm__carbon_free(&raw, &out);
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

static int gm__carbon_cancel_run(gm_cli *cli, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"all", no_argument, NULL, GM__CARBON_ALL},
      {"buy", no_argument, NULL, GM__CARBON_BUY},
      {"sell", no_argument, NULL, GM__CARBON_SELL},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_cancel k = {0, "SIDE_UNSPECIFIED"};
  char *pos[2] = {NULL};
  int npos, code = GM_CLI_EXIT_OK;
  int64_t count = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_cancel_opt,
                  &k);
  if (!k.all) {
    if (npos != 1)
      return gm__carbon_usage_error(self, "%s needs an ORDER_ID or --all",
                                    argv[0]);
    json_t *req = json_pack("{s:s}", "order_id", pos[0]);
    return gm__carbon_show(cli, "order.cancel", req, gm__carbon_print_order);
  }
  if (npos == 1)
    code = gm__carbon_mass_cancel(cli, pos[0], k.side, &count);
  else {
    /* Every instrument with an open order of ours: keys are per
     * instrument, so mass cancel goes one instrument at a time. */
    json_t *orders, *o, *seen = json_object();
    size_t i;
    code = gm__carbon_open_orders(cli, "", 0, &orders);
    json_array_foreach(orders, i, o) {
      const char *sym = gm__carbon_str(o, "symbol");
      if (code != GM_CLI_EXIT_OK || json_object_get(seen, sym)) continue;
      json_object_set_new(seen, sym, json_true());
      code = gm__carbon_mass_cancel(cli, sym, k.side, &count);
    }
    json_decref(orders);
    json_decref(seen);
  }
  if (code == GM_CLI_EXIT_OK && cli->output == GM_CLI_OUTPUT_TABLE)
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

static int gm__carbon_replace_run(gm_cli *cli, int argc, char **argv,
                                  const gm__carbon_cmd *self) {
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
      gm__carbon_yuan_arg("--price", r.price, GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  if (r.qty && gm__carbon_tonnes_arg("--qty", r.qty, GM_CARBON_MAX_QTY, &qty))
    return GM_CLI_EXIT_ERROR;
  json_t *req = json_pack("{s:s, s:I, s:I}", "order_id", pos[0], "price",
                          (json_int_t)price, "quantity", (json_int_t)qty);
  return gm__carbon_show(cli, "order.replace", req, gm__carbon_print_place);
}

/* -- orders -- */

/* Orders by id: ids grow with placement within an instrument. */
static int gm__carbon_by_id(const void *a, const void *b) {
  return strcmp(gm__carbon_str(*(json_t *const *)a, "id"),
                gm__carbon_str(*(json_t *const *)b, "id"));
}

static void gm__carbon_print_orders(const json_t *r) {
  const json_t *o, *orders = json_object_get(r, "orders");
  size_t i, n = json_array_size(orders);
  json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
  if (!sorted) return;
  for (i = 0; i < n; i++) sorted[i] = json_array_get(orders, i);
  qsort(sorted, n, sizeof *sorted, gm__carbon_by_id);
  gm__carbon_table t = {8,
                        (const char *[]){"ORDER", "SIDE", "PRICE", "QTY",
                                         "FILLED", "OPEN", "TIF", "PLACED"},
                        0x3c,
                        NULL,
                        0,
                        0};
  for (i = 0; i < n && (o = sorted[i]); i++) {
    char side[32], tif[32], px[32], q[24], f[24], rem[24], when[32];
    snprintf(q, sizeof q, "%lld", (long long)gm__carbon_int(o, "quantity"));
    snprintf(f, sizeof f, "%lld", (long long)gm__carbon_int(o, "filled"));
    snprintf(rem, sizeof rem, "%lld",
             (long long)gm__carbon_int(o, "remaining"));
    gm__carbon_enum(o, "tif", tif);
    for (char *p = tif; *p; p++) *p = (char)toupper((unsigned char)*p);
    gm__carbon_row(&t, gm__carbon_str(o, "id"),
                   gm__carbon_enum(o, "side", side),
                   gm__carbon_px(gm__carbon_int(o, "price"), px), q, f, rem,
                   tif, gm__carbon_time(gm__carbon_int(o, "created_ms"), when));
  }
  free(sorted);
  if (t.rows == 0)
    printf("no open orders\n");
  else
    gm__carbon_table_print(&t, stdout);
}

static int gm__carbon_orders_run(gm_cli *cli, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  /* Every page, shown as one table (--json: each page's reply). */
  json_t *orders;
  int code = gm__carbon_open_orders(cli, npos ? pos[0] : "", 1, &orders);
  if (code == GM_CLI_EXIT_OK && cli->output == GM_CLI_OUTPUT_TABLE) {
    json_t *all = json_pack("{s:O}", "orders", orders);
    gm__carbon_print_orders(all);
    json_decref(all);
  }
  fflush(stdout);
  json_decref(orders);
  return code;
}

/* -- trades / statement -- */

typedef struct gm__carbon_range {
  const char *from, *to, *limit, *out;
} gm__carbon_range;

static int gm__carbon_range_opt(int c, const char *arg, void *ctx) {
  gm__carbon_range *r = ctx;
  if (c == GM__CARBON_FROM) r->from = arg;
  if (c == GM__CARBON_TO) r->to = arg;
  if (c == GM__CARBON_LIMIT) r->limit = arg;
  if (c == GM__CARBON_OUT) r->out = arg;
  return 0;
}

static void gm__carbon_print_trades(const json_t *r) {
  const json_t *o;
  size_t i;
  gm__carbon_table t = {8,
                        (const char *[]){"TIME", "SYMBOL", "PRICE", "QTY",
                                         "AMOUNT", "BUYER", "SELLER", "TRADE"},
                        0x1c,
                        NULL,
                        0,
                        0};
  json_array_foreach(json_object_get(r, "trades"), i, o) {
    char px[32], q[24], amt[32], when[32], trade[96];
    const char *b = gm__carbon_str(o, "buyer"),
               *s = gm__carbon_str(o, "seller");
    snprintf(q, sizeof q, "%lld", (long long)gm__carbon_int(o, "quantity"));
    snprintf(trade, sizeof trade, "%s%s", gm__carbon_str(o, "trade_id"),
             json_is_true(json_object_get(o, "block")) ? " (block)" : "");
    gm__carbon_row(&t, gm__carbon_time(gm__carbon_int(o, "time_ms"), when),
                   gm__carbon_str(o, "symbol"),
                   gm__carbon_px(gm__carbon_int(o, "price"), px), q,
                   gm__carbon_px(gm__carbon_int(o, "amount"), amt),
                   *b ? b : "-", *s ? s : "-", trade);
  }
  if (t.rows == 0)
    printf(
        "no settled trades (a fill reaches the ledger a moment after "
        "it happens)\n");
  else
    gm__carbon_table_print(&t, stdout);
}

static int gm__carbon_trades_run(gm_cli *cli, int argc, char **argv,
                                 const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"from", required_argument, NULL, GM__CARBON_FROM},
      {"to", required_argument, NULL, GM__CARBON_TO},
      {"limit", required_argument, NULL, GM__CARBON_LIMIT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_range r = {0};
  char *pos[2] = {NULL};
  int npos;
  int64_t from = 0, to = 0, limit = 0;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_range_opt,
                  &r);
  if ((r.from && gm__carbon_parse_when(r.from, 0, &from)) ||
      (r.to && gm__carbon_parse_when(r.to, 1, &to))) {
    fprintf(stderr,
            "error: --from and --to are dates YYYY-MM-DD (Asia/Shanghai; "
            "--to includes its day) or times like 2026-11-24T09:30:00+08:00\n");
    return GM_CLI_EXIT_ERROR;
  }
  char err[256];
  if (r.limit && gm__carbon_parse_tonnes("--limit", r.limit, 10000, &limit, err,
                                         sizeof err)) {
    fprintf(stderr, "error: --limit is a number of trades, 1..10000\n");
    return GM_CLI_EXIT_ERROR;
  }
  json_t *req = json_pack("{s:s, s:I, s:I, s:I}", "symbol", npos ? pos[0] : "",
                          "from_ms", (json_int_t)from, "to_ms", (json_int_t)to,
                          "limit", (json_int_t)limit);
  return gm__carbon_show(cli, "records.trades", req, gm__carbon_print_trades);
}

static int gm__carbon_statement_run(gm_cli *cli, int argc, char **argv,
                                    const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"from", required_argument, NULL, GM__CARBON_FROM},
      {"to", required_argument, NULL, GM__CARBON_TO},
      {"out", required_argument, NULL, GM__CARBON_OUT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_range r = {0};
  char *pos[2] = {NULL};
  int npos;
  ProtobufCMessage *raw;
  json_t *out;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_range_opt,
                  &r);
  if (npos != 1 || !r.from)
    return gm__carbon_usage_error(
        self, "%s needs SYMBOL and --from DATE (YYYY-MM-DD)", argv[0]);
  json_t *req = json_pack("{s:s, s:s, s:s}", "symbol", pos[0], "from", r.from,
                          "to", r.to ? r.to : r.from);
  int code = gm__carbon_call(cli, "records.statement", req, &raw, &out);
  if (code != GM_CLI_EXIT_OK) return code;
  const char *csv = gm__carbon_str(out, "csv");
  if (r.out) {
    FILE *f = fopen(r.out, "w");
    if (!f || fputs(csv, f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "error: cannot write %s: %m; choose a writable path\n",
              r.out);
      code = GM_CLI_EXIT_ERROR;
    } else if (cli->output == GM_CLI_OUTPUT_JSON) {
      gm_cli_print(cli, raw);
    } else {
      printf("wrote %lld trade%s to %s\n",
             (long long)gm__carbon_int(out, "rows"),
             gm__carbon_int(out, "rows") == 1 ? "" : "s", r.out);
    }
  } else if (cli->output == GM_CLI_OUTPUT_JSON) {
    gm_cli_print(cli, raw);
  } else {
    fputs(csv, stdout);
  }
  gm__carbon_free(&raw, &out);
  return code;
}

/* -- market data -- */

static void gm__carbon_print_depth(const json_t *r) {
  const json_t *bids = json_object_get(r, "bids"),
               *asks = json_object_get(r, "asks");
  size_t n = json_array_size(bids) > json_array_size(asks)
                 ? json_array_size(bids)
                 : json_array_size(asks);
  printf("%s\n", gm__carbon_str(r, "symbol"));
  if (n == 0) {
    printf("the book is empty\n");
    return;
  }
  gm__carbon_table t = {
      5,    (const char *[]){"BID QTY", "BID", "|", "ASK", "ASK QTY"},
      0x1b, NULL,
      0,    0};
  for (size_t i = 0; i < n; i++) {
    const json_t *b = json_array_get(bids, i), *a = json_array_get(asks, i);
    char bq[24] = "", bp[32] = "", aq[24] = "", ap[32] = "";
    if (b) {
      snprintf(bq, sizeof bq, "%lld", (long long)gm__carbon_int(b, "quantity"));
      gm__carbon_px(gm__carbon_int(b, "price"), bp);
    }
    if (a) {
      snprintf(aq, sizeof aq, "%lld", (long long)gm__carbon_int(a, "quantity"));
      gm__carbon_px(gm__carbon_int(a, "price"), ap);
    }
    gm__carbon_row(&t, bq, bp, "|", ap, aq);
  }
  gm__carbon_table_print(&t, stdout);
}

typedef struct gm__carbon_depth {
  const char *depth;
} gm__carbon_depth;

static int gm__carbon_depth_opt(int c, const char *arg, void *ctx) {
  if (c == GM__CARBON_DEPTH) ((gm__carbon_depth *)ctx)->depth = arg;
  return 0;
}

static int gm__carbon_book_run(gm_cli *cli, int argc, char **argv,
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
  json_t *req =
      json_pack("{s:s, s:I}", "symbol", pos[0], "levels", (json_int_t)levels);
  return gm__carbon_show(cli, "market.depth", req, gm__carbon_print_depth);
}

static void gm__carbon_print_stats(const json_t *r) {
  static const char *const prices[][2] = {{"last", "last"},
                                          {"open", "open"},
                                          {"high", "high"},
                                          {"low", "low"},
                                          {"vwap", "vwap"},
                                          {"close", "close"},
                                          {"reference", "reference_price"}};
  char px[32];
  printf("%-12s %s\n", "symbol", gm__carbon_str(r, "symbol"));
  printf("%-12s %s\n", "day", gm__carbon_str(r, "day"));
  for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++)
    printf("%-12s %s\n", prices[i][0],
           gm__carbon_px(gm__carbon_int(r, prices[i][1]), px));
  printf("%-12s %lld t\n", "volume", (long long)gm__carbon_int(r, "volume"));
  printf("%-12s %s yuan\n", "turnover",
         gm__carbon_format_price(gm__carbon_int(r, "turnover"), px));
  printf("%-12s %lld\n", "trades", (long long)gm__carbon_int(r, "trades"));
  printf("%-12s %lld t\n", "block volume",
         (long long)gm__carbon_int(r, "block_volume"));
}

static int gm__carbon_stats_run(gm_cli *cli, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  if (npos != 1)
    return gm__carbon_usage_error(self, "%s needs a SYMBOL", argv[0]);
  json_t *req = json_pack("{s:s}", "symbol", pos[0]);
  return gm__carbon_show(cli, "market.stats", req, gm__carbon_print_stats);
}

/* -- instruments -- */

static void gm__carbon_print_instruments(const json_t *r) {
  const json_t *o;
  size_t i;
  gm__carbon_table t = {
      8,
      (const char *[]){"SYMBOL", "KIND", "REFERENCE", "BAND", "SESSIONS",
                       "BLOCK SESSIONS", "STATE", "NAME"},
      0x0c,
      NULL,
      0,
      0};
  json_array_foreach(json_object_get(r, "instruments"), i, o) {
    char ref[40], px[32], band[48], state[160];
    int64_t bp = gm__carbon_int(o, "band_bp");
    snprintf(ref, sizeof ref, "%s %s",
             gm__carbon_px(gm__carbon_int(o, "reference_price"), px),
             gm__carbon_str(o, "currency"));
    snprintf(band, sizeof band, "+/-%d.%02d%%", (int)(bp / 100),
             (int)(bp % 100)); /* bp is an int32 field */
    if (json_is_true(json_object_get(o, "halted")))
      snprintf(state, sizeof state, "halted%s%s",
               *gm__carbon_str(o, "halt_reason") ? ": " : "",
               gm__carbon_str(o, "halt_reason"));
    else
      snprintf(state, sizeof state, "trading");
    gm__carbon_row(&t, gm__carbon_str(o, "symbol"), gm__carbon_str(o, "kind"),
                   ref, band, gm__carbon_str(o, "sessions"),
                   gm__carbon_str(o, "block_sessions"), state,
                   gm__carbon_str(o, "name"));
  }
  if (t.rows == 0)
    printf("no instruments listed\n");
  else
    gm__carbon_table_print(&t, stdout);
}

static int gm__carbon_instruments_run(gm_cli *cli, int argc, char **argv,
                                      const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[1] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 0, &npos, gm__carbon_no_opts,
                  NULL);
  return gm__carbon_show(cli, "instrument.list", json_object(),
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

static void gm__carbon_print_instrument(const json_t *o) {
  json_t *list = json_pack("{s:[O]}", "instruments", o);
  gm__carbon_print_instruments(list);
  json_decref(list);
}

static int gm__carbon_create_run(gm_cli *cli, int argc, char **argv,
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
  if (gm__carbon_yuan_arg("--reference", k.ref, GM_CARBON_MAX_PRICE, &ref))
    return GM_CLI_EXIT_ERROR;
  json_t *in = json_pack("{s:s, s:I}", "symbol", pos[0], "reference_price",
                         (json_int_t)ref);
  if (k.name) json_object_set_new(in, "name", json_string(k.name));
  if (k.kind) json_object_set_new(in, "kind", json_string(k.kind));
  if (k.sessions) json_object_set_new(in, "sessions", json_string(k.sessions));
  if (k.block_sessions)
    json_object_set_new(in, "block_sessions", json_string(k.block_sessions));
  json_t *req = json_pack("{s:o}", "instrument", in);
  return gm__carbon_show(cli, "instrument.create", req,
                         gm__carbon_print_instrument);
}

static int gm__carbon_halt_run(gm_cli *cli, int argc, char **argv,
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
  json_t *req = json_pack("{s:s, s:s}", "symbol", pos[0], "reason",
                          k.reason ? k.reason : "");
  return gm__carbon_show(cli, halt ? "instrument.halt" : "instrument.resume",
                         req, gm__carbon_print_instrument);
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
static void gm__carbon_account_row(gm__carbon_table *t, const json_t *a) {
  char c[32], cf[32], al[24], af[24], lk[24];
  gm__carbon_format_price(gm__carbon_int(a, "cash"), c);
  gm__carbon_format_price(gm__carbon_int(a, "cash_frozen"), cf);
  snprintf(al, sizeof al, "%lld", (long long)gm__carbon_int(a, "allowances"));
  snprintf(af, sizeof af, "%lld",
           (long long)gm__carbon_int(a, "allowances_frozen"));
  snprintf(lk, sizeof lk, "%lld",
           (long long)gm__carbon_int(a, "allowances_locked"));
  gm__carbon_row(t, gm__carbon_str(a, "participant"),
                 gm__carbon_str(a, "symbol"), c, cf, al, af, lk);
}

static const char *const gm__carbon_account_head[] = {
    "PARTICIPANT", "SYMBOL", "CASH",  "CASH FROZEN",
    "ALLOWANCES",  "FROZEN", "LOCKED"};

static void gm__carbon_print_account(const json_t *a) {
  gm__carbon_table t = {
      7, (const char **)gm__carbon_account_head, 0x7c, NULL, 0, 0};
  gm__carbon_account_row(&t, a);
  gm__carbon_table_print(&t, stdout);
}

static int gm__carbon_move_run(gm_cli *cli, int argc, char **argv,
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
  if (m.cash
          ? gm__carbon_yuan_arg("--cash", m.cash, GM__CARBON_MAX_CASH, &amount)
          : gm__carbon_tonnes_arg("--allowances", m.allowances,
                                  GM__CARBON_MAX_CASH, &amount))
    return GM_CLI_EXIT_ERROR;
  json_t *req = json_pack(
      "{s:s, s:s, s:s, s:I, s:s}", "participant", pos[0], "symbol", pos[1],
      "asset", m.cash ? "ASSET_CASH" : "ASSET_ALLOWANCE", "amount",
      (json_int_t)amount, "reference", m.reference ? m.reference : "");
  return gm__carbon_show(
      cli, strcmp(argv[0], "deposit") ? "account.withdraw" : "account.deposit",
      req, gm__carbon_print_account);
}

static int gm__carbon_holdings_run(gm_cli *cli, int argc, char **argv,
                                   const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"participant", required_argument, NULL, GM__CARBON_PARTICIPANT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_move m = {0};
  char *pos[2] = {NULL};
  int npos, code = GM_CLI_EXIT_OK;
  ProtobufCMessage *raw = NULL;
  json_t *out = NULL, *symbols = json_array(), *o;
  size_t i;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_move_opt,
                  &m);
  if (npos == 1) {
    json_array_append_new(symbols, json_string(pos[0]));
  } else {
    /* Accounts are per instrument (docs/carbon.md): ask each one. */
    code = gm__carbon_call(cli, "instrument.list", json_object(), &raw, &out);
    json_array_foreach(json_object_get(out, "instruments"), i, o)
        json_array_append_new(symbols,
                              json_string(gm__carbon_str(o, "symbol")));
    gm__carbon_free(&raw, &out);
  }
  gm__carbon_table t = {
      7, (const char **)gm__carbon_account_head, 0x7c, NULL, 0, 0};
  json_array_foreach(symbols, i, o) {
    if (code != GM_CLI_EXIT_OK) break;
    json_t *req = json_pack("{s:s, s:s}", "symbol", json_string_value(o),
                            "participant", m.participant ? m.participant : "");
    /* Over every instrument, one without an account of ours is skipped. */
    code = gm__carbon_call_ex(cli, "account.get", req, &raw, &out, npos == 0);
    if (code == GM__CARBON_MISSING) {
      code = GM_CLI_EXIT_OK;
      continue;
    }
    if (code != GM_CLI_EXIT_OK) break;
    if (cli->output == GM_CLI_OUTPUT_JSON) {
      gm_cli_print(cli, raw);
    } else if (npos == 1 || gm__carbon_int(out, "cash") ||
               gm__carbon_int(out, "cash_frozen") ||
               gm__carbon_int(out, "allowances") ||
               gm__carbon_int(out, "allowances_frozen") ||
               gm__carbon_int(out, "allowances_locked")) {
      gm__carbon_account_row(&t, out); /* empty accounts are noise */
    }
    gm__carbon_free(&raw, &out);
  }
  json_decref(symbols);
  if (code == GM_CLI_EXIT_OK && cli->output == GM_CLI_OUTPUT_TABLE) {
    if (t.rows == 0)
      printf("no holdings\n");
    else
      gm__carbon_table_print(&t, stdout);
  }
  gm__carbon_table_free(&t);
  return code;
}

/* -- block agreement trades -- */

/* "8550000.00 yuan" or "100000 t": what an offer holds of its offerer. */
static const char *gm__carbon_offer_holds(const json_t *b, char out[48]) {
  int64_t price = gm__carbon_int(b, "price"),
          qty = gm__carbon_int(b, "quantity");
  int64_t amount;
  char px[32];
  if (strcmp(gm__carbon_str(b, "side"), "SIDE_BUY"))
    snprintf(out, 48, "%lld t", (long long)qty);
  else if (__builtin_mul_overflow(price, qty, &amount))
    snprintf(out, 48, "cash");
  else
    snprintf(out, 48, "%s yuan", gm__carbon_format_price(amount, px));
  return out;
}

/* Prints a BlockOffer as a table row, then what its state means. */
static void gm__carbon_print_offer(const json_t *b) {
  char side[32], state[32], q[24], px[32], amt[32], holds[48];
  int64_t price = gm__carbon_int(b, "price"),
          qty = gm__carbon_int(b, "quantity");
  int64_t amount;
  const char *of = gm__carbon_str(b, "offerer"),
             *cp = gm__carbon_str(b, "counterparty"),
             *trade = gm__carbon_str(b, "trade_id"),
             *st = gm__carbon_str(b, "state");
  gm__carbon_table t = {9,
                        (const char *[]){"OFFER", "FROM", "SIDE", "TO", "QTY",
                                         "PRICE", "AMOUNT", "STATE", "TRADE"},
                        0x70,
                        NULL,
                        0,
                        0};
  snprintf(q, sizeof q, "%lld", (long long)qty);
  if (__builtin_mul_overflow(price, qty, &amount))
    strcpy(amt, "?");
  else
    gm__carbon_format_price(amount, amt);
  gm__carbon_row(&t, gm__carbon_str(b, "id"), of,
                 gm__carbon_enum(b, "side", side), cp, q,
                 gm__carbon_px(price, px), amt,
                 gm__carbon_enum(b, "state", state), *trade ? trade : "-");
  gm__carbon_table_print(&t, stdout);
  gm__carbon_offer_holds(b, holds);
  if (!strcmp(st, "OFFER_OPEN"))
    printf(
        "%s's %s stay frozen until %s accepts or rejects the offer, %s "
        "withdraws it, or today's block session ends\n",
        of, holds, cp, of);
  else if (!strcmp(st, "OFFER_ACCEPTED"))
    printf("accepted by %s: one block trade at %s (see `gm carbon trades`)\n",
           cp, px);
  else if (!strcmp(st, "OFFER_REJECTED"))
    printf("rejected by %s: %s's %s are released\n", cp, of, holds);
  else if (!strcmp(st, "OFFER_WITHDRAWN"))
    printf("withdrawn by %s: %s's %s are released\n", of, of, holds);
}

/* Prints open offers (a JSON array of BlockOffer) as one table. */
static void gm__carbon_print_offers(const json_t *offers) {
  const json_t *b;
  size_t i, n = json_array_size(offers);
  json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
  if (!sorted) return;
  for (i = 0; i < n; i++) sorted[i] = json_array_get(offers, i);
  qsort(sorted, n, sizeof *sorted, gm__carbon_by_id);
  gm__carbon_table t = {8,
                        (const char *[]){"OFFER", "FROM", "SIDE", "TO", "QTY",
                                         "PRICE", "AMOUNT", "MADE"},
                        0x70,
                        NULL,
                        0,
                        0};
  for (i = 0; i < n && (b = sorted[i]); i++) {
    char side[32], q[24], px[32], amt[32], when[32];
    int64_t price = gm__carbon_int(b, "price"),
            qty = gm__carbon_int(b, "quantity"), amount;
    snprintf(q, sizeof q, "%lld", (long long)qty);
    if (__builtin_mul_overflow(price, qty, &amount))
      strcpy(amt, "?");
    else
      gm__carbon_format_price(amount, amt);
    gm__carbon_row(&t, gm__carbon_str(b, "id"), gm__carbon_str(b, "offerer"),
                   gm__carbon_enum(b, "side", side),
                   gm__carbon_str(b, "counterparty"), q,
                   gm__carbon_px(price, px), amt,
                   gm__carbon_time(gm__carbon_int(b, "created_ms"), when));
  }
  free(sorted);
  if (t.rows == 0)
    printf("no open block offers\n");
  else
    gm__carbon_table_print(&t, stdout);
}

/* gm carbon block list [SYMBOL]: every page of block.list as one table. */
static int gm__carbon_block_list_run(gm_cli *cli, int argc, char **argv,
                                     const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  json_t *offers;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  int code = gm__carbon_walk(cli, "block.list", "offers", npos ? pos[0] : "", 0,
                             1, &offers);
  if (code == GM_CLI_EXIT_OK && cli->output == GM_CLI_OUTPUT_TABLE)
    gm__carbon_print_offers(offers);
  fflush(stdout);
  json_decref(offers);
  return code;
}

typedef struct gm__carbon_block {
  const char *to;
} gm__carbon_block;

static int gm__carbon_block_opt(int c, const char *arg, void *ctx) {
  if (c == GM__CARBON_COUNTERPARTY) ((gm__carbon_block *)ctx)->to = arg;
  return 0;
}

static int gm__carbon_offer_run(gm_cli *cli, int argc, char **argv,
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
  if (strcmp(words[1], "buy") && strcmp(words[1], "sell")) {
    fprintf(stderr,
            "error: INVALID_ARGUMENT: the side of a block offer is buy or "
            "sell (your side of the trade), not \"%s\"\n",
            words[1]);
    return GM_CLI_EXIT_ERROR;
  }
  /* The block threshold is the instrument's: the market checks it. */
  if (gm__carbon_tonnes_arg("quantity", words[2], GM_CARBON_MAX_QTY, &qty) ||
      gm__carbon_yuan_arg("price", words[3], GM_CARBON_MAX_PRICE, &price))
    return GM_CLI_EXIT_ERROR;
  json_t *req = json_pack(
      "{s:s, s:s, s:s, s:I, s:I}", "symbol", words[0], "side",
      strcmp(words[1], "buy") ? "SIDE_SELL" : "SIDE_BUY", "counterparty", b.to,
      "price", (json_int_t)price, "quantity", (json_int_t)qty);
  return gm__carbon_show(cli, "block.offer", req, gm__carbon_print_offer);
}

static int gm__carbon_block_run(gm_cli *cli, int argc, char **argv,
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
    return gm__carbon_offer_run(cli, argc - 1, argv + 1, self);
  if (!strcmp(sub, "list"))
    return gm__carbon_block_list_run(cli, argc - 1, argv + 1, self);
  if (!strcmp(sub, "accept"))
    method = "block.accept";
  else if (!strcmp(sub, "reject") || !strcmp(sub, "withdraw"))
    /* The market has one method for both: the counterparty's reject is a
     * rejection, the offerer's a withdrawal (the reply's state says which). */
    method = "block.reject";
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
  json_t *req = json_pack("{s:s}", "offer_id", pos[0]);
  return gm__carbon_show(cli, method, req, gm__carbon_print_offer);
}

/* -- end of day and reconciliation (admin) -- */

static void gm__carbon_print_closes(const json_t *r) {
  const json_t *d;
  size_t i;
  gm__carbon_table t = {7,
                        (const char *[]){"SYMBOL", "DAY", "CLOSE", "VOLUME",
                                         "BASIS", "EXPIRED", "STATUS"},
                        0x2c,
                        NULL,
                        0,
                        0};
  json_array_foreach(json_object_get(r, "closes"), i, d) {
    char px[32], vol[24], exp[24];
    /* A day closed before comes with its volume and basis as closed. */
    int already = json_is_true(json_object_get(d, "already"));
    snprintf(vol, sizeof vol, "%lld", (long long)gm__carbon_int(d, "volume"));
    snprintf(exp, sizeof exp, "%lld", (long long)gm__carbon_int(d, "expired"));
    gm__carbon_row(&t, gm__carbon_str(d, "symbol"), gm__carbon_str(d, "day"),
                   gm__carbon_px(gm__carbon_int(d, "close"), px), vol,
                   json_is_true(json_object_get(d, "from_trades"))
                       ? "VWAP of listing trades"
                       : "previous close (no trades)",
                   exp, already ? "closed before" : "closed now");
  }
  if (t.rows == 0)
    printf(
        "no trading day has closed yet: a day closes when its last listing "
        "session ends\n");
  else
    gm__carbon_table_print(&t, stdout);
}

static int gm__carbon_close_run(gm_cli *cli, int argc, char **argv,
                                const gm__carbon_cmd *self) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char *pos[2] = {NULL};
  int npos;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_no_opts,
                  NULL);
  json_t *req = json_pack("{s:s}", "symbol", npos ? pos[0] : "");
  return gm__carbon_show(cli, "records.close", req, gm__carbon_print_closes);
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

static void gm__carbon_print_reconcile(const json_t *r) {
  const json_t *d, *diffs = json_object_get(r, "differences");
  size_t i, n = json_array_size(diffs);
  int64_t unsettled = gm__carbon_int(r, "unsettled");
  printf("accounts compared  %lld\n", (long long)gm__carbon_int(r, "accounts"));
  printf("unsettled entries  %lld\n", (long long)unsettled);
  if (n == 0) {
    printf("no differences: the ledger and the live holdings agree\n");
    return;
  }
  gm__carbon_table t = {6,
                        (const char *[]){"SYMBOL", "PARTICIPANT", "ASSET",
                                         "LEDGER", "LIVE", "LIVE - LEDGER"},
                        0x38,
                        NULL,
                        0,
                        0};
  json_array_foreach(diffs, i, d) {
    char led[40], live[40], diff[40];
    int cash = !strcmp(gm__carbon_str(d, "asset"), "ASSET_CASH");
    int64_t l = gm__carbon_int(d, "ledger"), v = gm__carbon_int(d, "live"), x;
    gm__carbon_amount(cash, l, 0, led);
    gm__carbon_amount(cash, v, 0, live);
    if (__builtin_sub_overflow(v, l, &x))
      strcpy(diff, "?");
    else
      gm__carbon_amount(cash, x, 1, diff);
    gm__carbon_row(&t, gm__carbon_str(d, "symbol"),
                   gm__carbon_str(d, "participant"),
                   cash ? "cash (yuan)" : "allowances (t)", led, live, diff);
  }
  gm__carbon_table_print(&t, stdout);
  printf("%zu difference%s\n", n, n == 1 ? "" : "s");
  if (unsettled > 0)
    printf(
        "%lld outbox entr%s not settled yet: the differences may be only "
        "those; run again in a moment, or with --wait SECONDS\n",
        (long long)unsettled, unsettled == 1 ? "y is" : "ies are");
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
static int gm__carbon_reconcile_run(gm_cli *cli, int argc, char **argv,
                                    const gm__carbon_cmd *self) {
  static const struct option opts[] = {
      {"wait", required_argument, NULL, GM__CARBON_WAIT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  gm__carbon_wait w = {0};
  char *pos[2] = {NULL}, err[256];
  int npos, code;
  int64_t wait_s = 0;
  ProtobufCMessage *raw;
  json_t *out;
  size_t ndiff;
  GM__CARBON_ARGS(argc, argv, opts, self, pos, 1, &npos, gm__carbon_wait_opt,
                  &w);
  if (w.wait && gm__carbon_parse_tonnes("--wait", w.wait, 3600, &wait_s, err,
                                        sizeof err)) {
    fprintf(stderr, "error: --wait is a number of seconds, 1..3600\n");
    return GM_CLI_EXIT_ERROR;
  }
  int64_t until = gm__carbon_now_ms() + wait_s * 1000;
  for (;;) {
    json_t *req = json_pack("{s:s}", "symbol", npos ? pos[0] : "");
    code = gm__carbon_call(cli, "records.reconcile", req, &raw, &out);
    if (code != GM_CLI_EXIT_OK) return code;
    ndiff = json_array_size(json_object_get(out, "differences"));
    /* Differences while entries are unsettled may be only settlement lag:
     * with --wait, ask again until they settle or the time is up. */
    if (!ndiff || gm__carbon_int(out, "unsettled") <= 0 ||
        gm__carbon_now_ms() >= until)
      break;
    gm__carbon_free(&raw, &out);
    nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
  }
  if (cli->output == GM_CLI_OUTPUT_JSON)
    gm_cli_print(cli, raw);
  else
    gm__carbon_print_reconcile(out);
  fflush(stdout);
  gm__carbon_free(&raw, &out);
  return ndiff ? GM_CLI_EXIT_ERROR : GM_CLI_EXIT_OK;
}

/* ---- the extension ---- */

static const gm__carbon_cmd gm__carbon_cmds[] = {
    {"buy",
     "gm carbon buy SYMBOL QTY @ PRICE [--ioc|--fok|--post-only|--market]\n"
     "              [--day|--gtd TIME] [--client-id ID] "
     "[--stp incoming|resting|both]\n"
     "    buy QTY tonnes at PRICE yuan or better (good till cancelled)\n",
     gm__carbon_place_run},
    {"sell", "gm carbon sell SYMBOL QTY @ PRICE [same options as buy]\n",
     gm__carbon_place_run},
    {"cancel",
     "gm carbon cancel ORDER_ID | gm carbon cancel --all [SYMBOL] "
     "[--buy|--sell]\n",
     gm__carbon_cancel_run},
    {"replace",
     "gm carbon replace ORDER_ID [--price PRICE] [--qty TOTAL_QTY]\n"
     "    a smaller qty keeps time priority; a new price or more qty loses "
     "it\n",
     gm__carbon_replace_run},
    {"orders", "gm carbon orders [SYMBOL]      your open orders\n",
     gm__carbon_orders_run},
    {"trades",
     "gm carbon trades [SYMBOL] [--from DATE] [--to DATE] [--limit N]\n"
     "    your settled trades (dates YYYY-MM-DD, Asia/Shanghai)\n",
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

static int gm__carbon_run(gm_cli *cli, int argc, char **argv) {
  for (size_t i = 0; i < sizeof gm__carbon_cmds / sizeof gm__carbon_cmds[0];
       i++)
    if (!strcmp(argv[0], gm__carbon_cmds[i].name))
      return gm__carbon_cmds[i].run(cli, argc, argv, &gm__carbon_cmds[i]);
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

const struct gm_cli_extension gm_cli_carbon_extension = {
    "carbon", gm__carbon_run, gm__carbon_help};
