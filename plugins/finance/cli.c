/*
 * `gm finance ...`: the finance market's commands for enterprises, banks
 * and the centre, run by `gm` from this plugin (include/greenmarket/cli.h).
 * Every other word takes gm's generic `gm finance <method> field=value`.
 *
 * Amounts are typed and shown in their currency's units with its ISO 4217
 * decimals (yuan with two, yen with none; at most two are carried) and
 * sent as int64 hundredths of the unit (fen for CNY); rates and fees in
 * percent (two decimals) and sent as basis points; expected benefits in
 * tonnes (three decimals) and sent as kg.  --json prints a method's reply
 * unchanged (hundredths, bp, kg).  Everything asked of gm goes through the
 * gm_cli_api table: this file links no gm symbol.
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
#include <greenmarket/iso4217.h>
#include <greenmarket/table.h>

#include "finance.pb-c.h"
#include "rules.h"

extern const char gm_finance_catalogue_csv[], gm_finance_calendar_csv[];

typedef struct gm__fin_cli {
  gm_cli *cli;
  const gm_cli_api *api;
} gm__fin_cli;

typedef struct gm__fin_cmd gm__fin_cmd;
struct gm__fin_cmd {
  const char *name;
  const char *usage; /* "gm finance ..." lines and a summary */
  int (*run)(const gm__fin_cli *g, int argc, char **argv,
             const gm__fin_cmd *self);
};

/* ---- arguments ---- */

/* Option values by the option's `val` (an index below GM__FIN_MAXOPT). */
#define GM__FIN_MAXOPT 24
#define GM__FIN_MAXPOS 8

typedef struct gm__fin_args {
  char *pos[GM__FIN_MAXPOS];
  int npos;
  const char *opt[GM__FIN_MAXOPT];
  char *certs[16];
  size_t ncerts;
} gm__fin_args;

enum {
  O_AMOUNT = 2,
  O_TENOR,
  O_CLASS,
  O_ITEM,
  O_USE,
  O_DESC,
  O_CO2,
  O_COAL,
  O_CERT,
  O_SHARE,
  O_IDENTITY,
  O_FOR,
  O_CURRENCY,
  O_PRODUCT,
  O_NOTE,
  O_RATE,
  O_DATE,
  O_BANK,
  O_FROM,
  O_TO,
  O_OUT,
  O_NAME
};

#define GM__FIN_OPT(n, has, v) \
  { n, has, NULL, v }
static const struct option gm__fin_opts[] = {
    GM__FIN_OPT("amount", required_argument, O_AMOUNT),
    GM__FIN_OPT("tenor", required_argument, O_TENOR),
    GM__FIN_OPT("class", required_argument, O_CLASS),
    GM__FIN_OPT("item", required_argument, O_ITEM),
    GM__FIN_OPT("use", required_argument, O_USE),
    GM__FIN_OPT("description", required_argument, O_DESC),
    GM__FIN_OPT("co2", required_argument, O_CO2),
    GM__FIN_OPT("coal", required_argument, O_COAL),
    GM__FIN_OPT("cert", required_argument, O_CERT),
    GM__FIN_OPT("consent-share", no_argument, O_SHARE),
    GM__FIN_OPT("consent-identity", no_argument, O_IDENTITY),
    GM__FIN_OPT("for", required_argument, O_FOR),
    GM__FIN_OPT("currency", required_argument, O_CURRENCY),
    GM__FIN_OPT("product", required_argument, O_PRODUCT),
    GM__FIN_OPT("note", required_argument, O_NOTE),
    GM__FIN_OPT("rate", required_argument, O_RATE),
    GM__FIN_OPT("date", required_argument, O_DATE),
    GM__FIN_OPT("bank", required_argument, O_BANK),
    GM__FIN_OPT("from", required_argument, O_FROM),
    GM__FIN_OPT("to", required_argument, O_TO),
    GM__FIN_OPT("out", required_argument, O_OUT),
    GM__FIN_OPT("name", required_argument, O_NAME),
    /* product create */
    GM__FIN_OPT("classes", required_argument, O_CLASS),
    GM__FIN_OPT("regions", required_argument, O_ITEM),
    GM__FIN_OPT("fee", required_argument, O_COAL),
    /* enterprise register */
    GM__FIN_OPT("code", required_argument, O_USE),
    GM__FIN_OPT("region", required_argument, O_DESC),
    GM__FIN_OPT("size", required_argument, O_CO2),
    GM__FIN_OPT("contact", required_argument, O_NOTE),
    GM__FIN_OPT("source", required_argument, O_OUT),
    {NULL, 0, NULL, 0}};

static int gm__fin_usage(const gm__fin_cmd *self, const char *fmt,
                         const char *arg) {
  fprintf(stderr, "error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage: %s", self->usage);
  return GM_CLI_EXIT_ERROR;
}

/* Parses argv[1..]: positionals in order, options anywhere.  Returns 0,
   -1 after printing help, or an exit code. */
static int gm__fin_args_parse(const gm__fin_cmd *self, int argc, char **argv,
                              gm__fin_args *a) {
  memset(a, 0, sizeof *a);
  optind = 0; /* GNU getopt starts over */
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "-h", gm__fin_opts, NULL);
    if (c == -1) break;
    if (c == 1) {
      if (a->npos == GM__FIN_MAXPOS)
        return gm__fin_usage(self, "unexpected argument \"%s\"", optarg);
      a->pos[a->npos++] = optarg;
    } else if (c == 'h') {
      printf("usage: %s", self->usage);
      return -1;
    } else if (c == '?') {
      return gm__fin_usage(self, "unknown option or missing value: %s",
                           argv[optind - 1]);
    } else if (c == O_CERT) {
      if (a->ncerts == 16)
        return gm__fin_usage(self, "at most 16 --cert, not more (%s)", optarg);
      a->certs[a->ncerts++] = optarg;
    } else if (c > 1 && c < GM__FIN_MAXOPT) {
      a->opt[c] = optarg ? optarg : "1";
    }
  }
  return 0;
}

#define GM__FIN_ARGS(self, argc, argv, a)                           \
  do {                                                              \
    int rc_ = gm__fin_args_parse(self, argc, argv, a);              \
    if (rc_) return rc_ == -1 ? GM_CLI_EXIT_OK : GM_CLI_EXIT_ERROR; \
  } while (0)

/* A decimal typed by a person: -1 after printing why. */
static int gm__fin_decimal(const gm__fin_cli *g, const char *what,
                           const char *unit, const char *text, int decimals,
                           int64_t max, int64_t *out) {
  char err[256];
  if (gm__finance_parse_decimal(what, unit, text, decimals, max, out, err,
                                sizeof err) == 0)
    return 0;
  g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s", err);
  return -1;
}

/*
 * An amount typed in `cur`'s units ("" or NULL: the referral's, which the
 * broker checks) into hundredths of the unit: at most the currency's ISO
 * 4217 decimals and at most 2, the hundredths finance carries.  -1 after
 * printing why.
 */
static int gm__fin_amount(const gm__fin_cli *g, const char *what,
                          const char *text, const char *cur, int zero,
                          int64_t *out) {
  int d = cur && *cur ? gm_iso4217_minor(cur) : -1;
  int dec = d >= 0 && d < 2 ? d : 2;
  const char *unit =
      cur && *cur ? cur : "the referral's currency (yuan for CNY, not fen)";
  const char *dot = text ? strchr(text, '.') : NULL;
  int nfrac = dot ? (int)strspn(dot + 1, "0123456789") : 0;
  /* KWD and CLF are shown with 3 and 4 decimals, the last ones 0 (finance
     carries hundredths): "1.500" KWD as shown is taken, "1.505" is not. */
  char trimmed[64];
  if (dot && d > 2 && nfrac > 2 && nfrac <= d &&
      nfrac == (int)strlen(dot + 1) &&
      strspn(dot + 3, "0") == (size_t)(nfrac - 2) &&
      strlen(text) < sizeof trimmed) {
    memcpy(trimmed, text, (size_t)(dot + 3 - text));
    trimmed[dot + 3 - text] = '\0';
    text = trimmed;
    nfrac = 2;
  }
  if (dot && nfrac > dec && nfrac == (int)strlen(dot + 1)) {
    if (d >= 0 && d <= 2)
      g->api->error(g->cli, GM_INVALID_ARGUMENT,
                    "%s %s has more decimals than %s has (%d, ISO 4217); "
                    "give %s in %s",
                    what, text, cur, d,
                    d == 0   ? "a whole amount"
                    : d == 1 ? "at most 1 decimal"
                             : "at most 2 decimals",
                    cur);
    else if (d > 2)
      g->api->error(g->cli, GM_INVALID_ARGUMENT,
                    "%s %s has %d decimals; finance carries amounts to 0.01 "
                    "%s (%s has %d, ISO 4217: the digits past the second are "
                    "not carried)",
                    what, text, nfrac, cur, cur, d);
    else
      g->api->error(g->cli, GM_INVALID_ARGUMENT,
                    "%s %s has %d decimals; give at most 2, and no more than "
                    "the referral's currency has (CNY 2, JPY 0: ISO 4217)",
                    what, text, nfrac);
    return -1;
  }
  int64_t scale = dec == 0 ? 100 : dec == 1 ? 10 : 1;
  if (gm__fin_decimal(g, what, unit, text, dec, GM_FINANCE_MAX_AMOUNT / scale,
                      out))
    return -1;
  *out *= scale;
  if (*out == 0 && !zero) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s must be above 0 %s", what,
                  unit);
    return -1;
  }
  return 0;
}

/*
 * An approval's or funding's --amount, in the referral's currency: one
 * that parses as hundredths goes to the broker, which checks it against
 * the currency's decimals; one that does not (or has 3-4 decimals, KWD and
 * CLF typed as shown) is read again with the referral's currency, looked
 * up then, so the refusal names it ("give a positive number of CNY").
 * The lookup's own refusal is not printed: the amount's is, without the
 * currency.  -1 after printing why.
 */
static int gm__fin_ref_amount(const gm__fin_cli *g, const char *id,
                              const char *text, int64_t *out) {
  char err[256];
  if (text &&
      gm__finance_parse_decimal("--amount", "", text, 2, GM_FINANCE_MAX_AMOUNT,
                                out, err, sizeof err) == 0 &&
      *out > 0)
    return 0;
  Gm__Finance__ReferralRequest req = GM__FINANCE__REFERRAL_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  gm_status status;
  const char *message;
  char cur[8] = "";
  req.id = (char *)id;
  if (g->api->call_quiet(g->cli, "finance", "referral.get", &req.base, &reply,
                         &status, &message) == GM_CLI_EXIT_OK &&
      reply) {
    const Gm__Finance__Referral *r = (const Gm__Finance__Referral *)reply;
    if (r->currency && strlen(r->currency) == 3)
      snprintf(cur, sizeof cur, "%s", r->currency);
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  return gm__fin_amount(g, "--amount", text, cur, 0, out);
}

static int gm__fin_pct(const gm__fin_cli *g, const char *what, const char *text,
                       int32_t *bp) {
  int64_t v;
  if (gm__fin_decimal(g, what, "percent", text, 2, GM_FINANCE_MAX_BP, &v))
    return -1;
  *bp = (int32_t)v;
  return 0;
}

/* A product's referral fee: a number of percent (any size, so that 80
   typed for 0.80 % is refused as a fee, not as a percentage). */
static int gm__fin_fee(const gm__fin_cli *g, const char *text, int32_t *bp) {
  int64_t v;
  char max[16];
  if (gm__fin_decimal(g, "--fee", "percent", text, 2, GM_FINANCE_MAX_AMOUNT,
                      &v))
    return -1;
  if (v > GM_FINANCE_MAX_FEE_BP) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT,
                  "--fee %s is %s %% of the funded amount, above the largest "
                  "referral fee, %s %% (lenders pay about 0.5-1.5 %%): give "
                  "0 to %s, in percent: 0.8 for 0.80 %%",
                  text, text,
                  gm__finance_format_pct(GM_FINANCE_MAX_FEE_BP, max),
                  gm__finance_format_pct(GM_FINANCE_MAX_FEE_BP, max));
    return -1;
  }
  *bp = (int32_t)v;
  return 0;
}

static int gm__fin_months(const gm__fin_cli *g, const char *what,
                          const char *text, int32_t *m) {
  int64_t v;
  if (gm__fin_decimal(g, what, "months", text, 0, GM_FINANCE_MAX_TENOR, &v))
    return -1;
  if (v < 1) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s must be at least 1 month",
                  what);
    return -1;
  }
  *m = (int32_t)v;
  return 0;
}

/* "MIN-MAX" into two texts (in buf). */
static int gm__fin_range(const gm__fin_cli *g, const char *what,
                         const char *text, char buf[64], char **lo, char **hi) {
  snprintf(buf, 64, "%s", text ? text : "");
  char *dash = strchr(buf, '-');
  if (!dash || dash == buf || !dash[1]) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT,
                  "%s \"%s\" is not a range MIN-MAX, e.g. 1000000-50000000",
                  what, text ? text : "");
    return -1;
  }
  *dash = '\0';
  *lo = buf;
  *hi = dash + 1;
  return 0;
}

/* "a,b,c" into a repeated field (pointers into buf); returns how many
   there are, of which the first max are in out. */
static size_t gm__fin_list(char *buf, char **out, size_t max) {
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
       t = strtok_r(NULL, ",", &save), n++)
    if (n < max) out[n] = t;
  return n;
}

/* Joins positionals from i on with spaces (free text typed unquoted). */
static char *gm__fin_join(const gm__fin_args *a, int i) {
  size_t len = 1;
  for (int k = i; k < a->npos; k++) len += strlen(a->pos[k]) + 1;
  char *s = calloc(1, len);
  if (!s) return NULL;
  for (int k = i; k < a->npos; k++) {
    if (k > i) strcat(s, " ");
    strcat(s, a->pos[k]);
  }
  return s;
}

/* ---- printing ---- */

static const char *gm__fin_time(int64_t ms, char out[32]) {
  /* Up to the year 9999: anything later is no time a broker sends. */
  if (ms <= 0 || ms > INT64_C(253402271999999)) /* 9999-12-31 in Beijing */
    return strcpy(out, "-");
  gm_date_format_time(ms, GM_FINANCE_TZ_MS, out);
  out[16] = '\0'; /* "YYYY-MM-DD HH:MM" */
  return out;
}

/* An enum value's name without its prefix, lower-cased, '_' as ' '. */
static const char *gm__fin_enum(const ProtobufCEnumDescriptor *d, int value,
                                char out[32]) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
  const char *s = v ? v->name : "", *u = strchr(s, '_');
  size_t i = 0;
  for (s = u ? u + 1 : s; *s && i < 31; s++)
    out[i++] = *s == '_' ? ' ' : (char)tolower((unsigned char)*s);
  out[i] = '\0';
  return out;
}

#define GM__FIN_STATE(v, o) \
  gm__fin_enum(&gm__finance__state__descriptor, (int)(v), o)

/* The shipped catalogue's name for a code ("" when not there). */
static const char *gm__fin_code_name(const char *code, char out[256]) {
  const char *p = gm_finance_catalogue_csv;
  size_t n = strlen(code);
  out[0] = '\0';
  while (p && *p) {
    if (!strncmp(p, code, n) && p[n] == ',') {
      const char *name = strchr(p + n + 1, ',');
      if (name) {
        const char *end = strchr(++name, ',');
        snprintf(out, 256, "%.*s", end ? (int)(end - name) : 0, name);
      }
      break;
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
  return out;
}

static void gm__fin_kv(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void gm__fin_kv(const char *key, const char *fmt, ...) {
  va_list ap;
  printf("%-15s ", key); /* a key of 16 or more still gets a space */
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

static void gm__fin_print_referral(const Gm__Finance__Referral *r) {
  char a[40], b[40], s[32], name[256];
  /* Back in the pool only while it is in the pool: an expired or held
     referral of a later round is not. */
  int pool = r->round > 1 && (r->state == GM__FINANCE__STATE__STATE_OPEN ||
                              r->state == GM__FINANCE__STATE__STATE_CLAIMED);
  gm__fin_kv("referral", "%s  %s%s", r->id, GM__FIN_STATE(r->state, s),
             pool ? " (back in the pool)" : "");
  if (r->access == GM__FINANCE__ACCESS__ACCESS_NONE) {
    gm__fin_kv("access", "none: your bank no longer sees it");
    return;
  }
  gm__fin_kv("class", "%s / %s  %s", r->class_code, r->subitem,
             gm__fin_code_name(r->subitem, name));
  if (r->access >= GM__FINANCE__ACCESS__ACCESS_DETAILS)
    gm__fin_kv("amount", "%s %s",
               gm__finance_format_money(r->amount, r->currency, a),
               r->currency);
  else if (r->amount_band_max)
    gm__fin_kv("amount", "%s to %s %s (band)",
               gm__finance_format_money(r->amount_band_min, r->currency, a),
               gm__finance_format_money(r->amount_band_max, r->currency, b),
               r->currency);
  else
    gm__fin_kv("amount", "%s %s or more (band)",
               gm__finance_format_money(r->amount_band_min, r->currency, a),
               r->currency);
  gm__fin_kv("tenor", "%d months", r->tenor_months);
  gm__fin_kv("region", "%s", r->region);
  gm__fin_kv("submitted", "%s", gm__fin_time(r->created_ms, a));
  if (r->state <= GM__FINANCE__STATE__STATE_CLAIMED) {
    gm__fin_kv("claims", "%d of %d", r->claims, r->max_claims);
    gm__fin_kv("pick by", "%s", gm__fin_time(r->pick_due_ms, a));
  }
  if (r->access == GM__FINANCE__ACCESS__ACCESS_SUMMARY) return;
  gm__fin_kv("use", "%s", r->use_of_proceeds);
  gm__fin_kv("description", "%s", r->description);
  gm__fin_kv("benefit", "%s t CO2e avoided, %s t standard coal saved a year",
             gm__finance_format_tonnes(r->co2_avoided_kg, a),
             gm__finance_format_tonnes(r->coal_saved_kg, b));
  for (size_t i = 0; i < r->n_certificates; i++)
    gm__fin_kv(i ? "" : "certificates", "%s", r->certificates[i]);
  if (r->enterprise) {
    const Gm__Finance__Enterprise *e = r->enterprise;
    gm__fin_kv("enterprise", "%s (%s), credit code %s", e->name, e->participant,
               e->credit_code);
    if (r->contact_withheld)
      gm__fin_kv("contact", "%s",
                 r->state == GM__FINANCE__STATE__STATE_DECLINED
                     ? "withheld: the referral was declined, so the purpose "
                       "it was shared for has ended"
                     : "withheld: the enterprise withdrew the referral and "
                       "its consent with it");
    else
      gm__fin_kv("contact", "%s", e->contact);
    gm__fin_kv("consent", "%s",
               r->consent_identity
                   ? "to share the need with the fitting banks, and who it "
                     "is with those that claim"
                   : "to share the need with the fitting banks; who it is "
                     "only with the bank picked");
    if (r->created_by[0] && strcmp(r->created_by, e->participant))
      gm__fin_kv("referred by",
                 "%s, for %s (it gave the consents on %s's "
                 "behalf)",
                 r->created_by, e->participant, e->participant);
  } else {
    gm__fin_kv("enterprise", "not shared before the pick (no consent)");
  }
  for (size_t i = 0; i < r->n_claimants; i++)
    gm__fin_kv(i ? "" : "claimants", "%s", r->claimants[i]);
  for (size_t i = 0; i < r->n_missed; i++)
    gm__fin_kv(i ? "" : "missed deadline", "%s", r->missed[i]);
  if (r->bank[0]) {
    gm__fin_kv("bank", "%s, product %s, fee %s%%", r->bank, r->product,
               gm__finance_format_pct(r->fee_bp, s));
    if (r->state == GM__FINANCE__STATE__STATE_PICKED)
      gm__fin_kv("contact by", "%s", gm__fin_time(r->contact_due_ms, a));
    if (r->decision_due_ms > 0 &&
        (r->state == GM__FINANCE__STATE__STATE_UNDER_REVIEW ||
         r->state == GM__FINANCE__STATE__STATE_APPROVED))
      gm__fin_kv("fund or decline by", "%s",
                 gm__fin_time(r->decision_due_ms, a));
    if (r->decision_left_ms > 0 &&
        r->state == GM__FINANCE__STATE__STATE_INFO_REQUESTED)
      gm__fin_kv("fund or decline by",
                 "waiting for the answer; then %lld d %lld h left",
                 (long long)(r->decision_left_ms / 86400000),
                 (long long)(r->decision_left_ms / 3600000 % 24));
  }
  if (r->contacted_ms)
    gm__fin_kv("contacted", "%s %s", gm__fin_time(r->contacted_ms, a),
               r->contact_note);
  if (r->question[0]) gm__fin_kv("question", "%s", r->question);
  if (r->answer[0]) gm__fin_kv("answer", "%s", r->answer);
  if (r->approved_amount)
    gm__fin_kv("approved", "%s %s at %s%% over %d months",
               gm__finance_format_money(r->approved_amount, r->currency, a),
               r->currency, gm__finance_format_pct(r->approved_rate_bp, s),
               r->approved_tenor_months);
  if (r->funded_amount)
    gm__fin_kv("funded", "%s %s on %s; referral fee %s",
               gm__finance_format_money(r->funded_amount, r->currency, a),
               r->currency, r->funded_date,
               gm__finance_format_money(r->fee, r->currency, b));
  if (r->decline_reason)
    gm__fin_kv("declined", "%s: %s",
               gm__fin_enum(&gm__finance__decline_reason__descriptor,
                            (int)r->decline_reason, s),
               r->decline_text);
  if (r->state == GM__FINANCE__STATE__STATE_WITHDRAWN)
    gm__fin_kv("withdrawn", "%s", r->withdraw_reason);
  if (r->end_reason[0]) gm__fin_kv("ended", "%s", r->end_reason);
  if (r->archived_ms)
    gm__fin_kv("archived", "%s (its final record, read from the ledger)",
               gm__fin_time(r->archived_ms, a));
}

/* ---- calling ---- */

static int gm__fin_call(const gm__fin_cli *g, const char *method,
                        const ProtobufCMessage *req, ProtobufCMessage **reply) {
  return g->api->call(g->cli, "finance", method, req, reply);
}

/* Calls a method; prints its reply with `print` (or as JSON). */
static int gm__fin_show(const gm__fin_cli *g, const char *method,
                        const ProtobufCMessage *req,
                        void (*print)(const ProtobufCMessage *)) {
  ProtobufCMessage *reply;
  int code = gm__fin_call(g, method, req, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    print(reply);
  fflush(stdout);
  protobuf_c_message_free_unpacked(reply, NULL);
  return GM_CLI_EXIT_OK;
}

static void gm__fin_print_ref_msg(const ProtobufCMessage *m) {
  gm__fin_print_referral((const Gm__Finance__Referral *)m);
}

/* Reads a whole file (the caller frees it); NULL after printing why. */
static char *gm__fin_read(const gm__fin_cli *g, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "cannot open %s: %s", path,
                  strerror(errno));
    return NULL;
  }
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += k;
    if (n == cap) {
      if (cap >= 16u << 20) {
        free(buf);
        buf = NULL;
        break;
      }
      char *b = realloc(buf, cap * 2 + 1);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s is larger than 16 MiB",
                  path);
    return NULL;
  }
  buf[n] = '\0';
  if (memchr(buf, '\0', n)) {
    free(buf);
    g->api->error(g->cli, GM_INVALID_ARGUMENT,
                  "%s holds a NUL byte: it is not a text file", path);
    return NULL;
  }
  return buf;
}

/* Writes text to FILE, or stdout when path is NULL. */
static int gm__fin_write(const gm__fin_cli *g, const char *path,
                         const char *text) {
  if (!path) {
    fputs(text, stdout);
    return GM_CLI_EXIT_OK;
  }
  if (!GM_CLI_API_HAS(g->api, write_file))
    return g->api->error(g->cli, GM_UNIMPLEMENTED,
                         "this gm is older than its finance commands and "
                         "cannot write %s; install gm and its markets "
                         "together",
                         path);
  /* Whole or not at all: a failed write leaves an earlier file as it was
     (with fopen's "w" it was emptied first, and closed twice when fclose
     itself failed). */
  return g->api->write_file(g->cli, path, text, strlen(text));
}

/* ---- the catalogue and the calendar ---- */

typedef struct gm__fin_cat {
  Gm__Finance__CatalogueEntry *e;
  Gm__Finance__CatalogueEntry **p;
  size_t n, cap;
  char *store; /* copies of the fields */
  size_t used, scap;
} gm__fin_cat;

static char *gm__fin_keep(gm__fin_cat *c, const char *s) {
  size_t n = strlen(s) + 1;
  if (c->used + n > c->scap) return NULL;
  char *out = c->store + c->used;
  memcpy(out, s, n);
  c->used += n;
  return out;
}

static int gm__fin_cat_add(void *arg, const char *code, const char *parent,
                           const char *name, const char *en) {
  gm__fin_cat *c = arg;
  if (c->n == c->cap) return 1;
  Gm__Finance__CatalogueEntry *e = &c->e[c->n];
  gm__finance__catalogue_entry__init(e);
  e->code = gm__fin_keep(c, code);
  e->parent = gm__fin_keep(c, parent);
  e->name = gm__fin_keep(c, name);
  e->name_en = gm__fin_keep(c, en);
  if (!e->code || !e->parent || !e->name || !e->name_en) return 1;
  c->p[c->n++] = e;
  return 0;
}

static void gm__fin_print_catalogue(const ProtobufCMessage *m) {
  const Gm__Finance__Catalogue *c = (const Gm__Finance__Catalogue *)m;
  char t[32];
  printf("%s%s\n", c->source, c->builtin ? "" : "");
  if (!c->builtin) printf("loaded %s\n", gm__fin_time(c->loaded_ms, t));
  for (size_t i = 0; i < c->n_entries; i++) {
    const Gm__Finance__CatalogueEntry *e = c->entries[i];
    int depth = 0;
    for (const char *p = e->code; *p; p++) depth += *p == '.';
    printf("%*s%-8s %s  %s\n", depth * 2, "", e->code, e->name, e->name_en);
  }
}

static int gm__fin_catalogue_run(const gm__fin_cli *g, int argc, char **argv,
                                 const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *sub = a.npos ? a.pos[0] : "list";
  if (!strcmp(sub, "list")) {
    Gm__Finance__CatalogueRequest req = GM__FINANCE__CATALOGUE_REQUEST__INIT;
    return gm__fin_show(g, "catalogue.list", &req.base,
                        gm__fin_print_catalogue);
  }
  if (strcmp(sub, "load"))
    return gm__fin_usage(self, "unknown catalogue command \"%s\"", sub);
  const char *file = a.npos > 1 ? a.pos[1] : NULL;
  char *text = file ? gm__fin_read(g, file) : strdup(gm_finance_catalogue_csv);
  if (!text) return GM_CLI_EXIT_ERROR;
  size_t len = strlen(text);
  gm__fin_cat c = {0};
  c.cap = 4096;
  c.e = calloc(c.cap, sizeof *c.e);
  c.p = calloc(c.cap, sizeof *c.p);
  c.scap = len + 4 * c.cap;
  c.store = malloc(c.scap);
  char err[256];
  int code = GM_CLI_EXIT_ERROR;
  if (!c.e || !c.p || !c.store) {
    g->api->error(g->cli, GM_RESOURCE_EXHAUSTED, "out of memory");
  } else if (gm__finance_catalogue_parse(text, gm__fin_cat_add, &c, err,
                                         sizeof err) < 0) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s: %s",
                  file ? file : "the shipped catalogue", err);
  } else {
    Gm__Finance__LoadCatalogueRequest req =
        GM__FINANCE__LOAD_CATALOGUE_REQUEST__INIT;
    req.entries = c.p;
    req.n_entries = c.n;
    req.source =
        (char *)(a.opt[O_OUT] ? a.opt[O_OUT]
                 : file       ? file
                              : "catalogue.csv shipped in the finance plugin");
    code =
        gm__fin_show(g, "catalogue.load", &req.base, gm__fin_print_catalogue);
  }
  free(c.e);
  free(c.p);
  free(c.store);
  free(text);
  return code;
}

typedef struct gm__fin_days {
  Gm__Finance__CalendarDay *d;
  Gm__Finance__CalendarDay **p;
  char (*date)[16];
  char **note;
  size_t n, cap;
} gm__fin_days;

static int gm__fin_day_add(void *arg, int64_t day, char kind,
                           const char *note) {
  gm__fin_days *c = arg;
  if (c->n == c->cap) return 1;
  Gm__Finance__CalendarDay *d = &c->d[c->n];
  gm__finance__calendar_day__init(d);
  gm__finance_format_date(day, c->date[c->n]);
  d->date = c->date[c->n];
  d->working = kind == 'w';
  d->statutory = kind == 's';
  c->note[c->n] = strdup(note);
  d->note = c->note[c->n] ? c->note[c->n] : "";
  c->p[c->n++] = d;
  return 0;
}

static void gm__fin_print_calendar(const ProtobufCMessage *m) {
  const Gm__Finance__Calendar *c = (const Gm__Finance__Calendar *)m;
  printf("%s\n", c->source);
  for (size_t i = 0; i < c->n_days; i++)
    printf("%s  %-9s %s\n", c->days[i]->date,
           c->days[i]->working     ? "workday"
           : c->days[i]->statutory ? "statutory"
                                   : "holiday",
           c->days[i]->note);
  for (size_t i = 0; i < c->n_notes; i++) printf("note: %s\n", c->notes[i]);
}

static int gm__fin_calendar_run(const gm__fin_cli *g, int argc, char **argv,
                                const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *sub = a.npos ? a.pos[0] : "list";
  if (!strcmp(sub, "list")) {
    Gm__Finance__CalendarRequest req = GM__FINANCE__CALENDAR_REQUEST__INIT;
    req.from = (char *)(a.opt[O_FROM] ? a.opt[O_FROM] : "");
    req.to = (char *)(a.opt[O_TO] ? a.opt[O_TO] : "");
    return gm__fin_show(g, "calendar.list", &req.base, gm__fin_print_calendar);
  }
  if (strcmp(sub, "load") || a.npos > 2)
    return gm__fin_usage(self, "%s",
                         "give calendar load [FILE] or calendar list");
  const char *file = a.npos == 2 ? a.pos[1] : NULL;
  char *text = file ? gm__fin_read(g, file) : strdup(gm_finance_calendar_csv);
  if (!text) return GM_CLI_EXIT_ERROR;
  gm__fin_days c = {0};
  c.cap = 4000;
  c.d = calloc(c.cap, sizeof *c.d);
  c.p = calloc(c.cap, sizeof *c.p);
  c.date = calloc(c.cap, sizeof *c.date);
  c.note = calloc(c.cap, sizeof *c.note);
  char err[256];
  int code = GM_CLI_EXIT_ERROR;
  if (!c.d || !c.p || !c.date || !c.note) {
    g->api->error(g->cli, GM_RESOURCE_EXHAUSTED, "out of memory");
  } else if (gm__finance_calendar_parse(text, gm__fin_day_add, &c, err,
                                        sizeof err) < 0) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s: %s",
                  file ? file : "the shipped calendar", err);
  } else if (c.n == 0) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s lists no day",
                  file ? file : "the shipped calendar");
  } else {
    Gm__Finance__LoadCalendarRequest req =
        GM__FINANCE__LOAD_CALENDAR_REQUEST__INIT;
    req.days = c.p;
    req.n_days = c.n;
    req.source =
        (char *)(a.opt[O_OUT] ? a.opt[O_OUT]
                 : file       ? file
                              : "calendar.csv shipped in the finance plugin");
    code = gm__fin_show(g, "calendar.load", &req.base, gm__fin_print_calendar);
  }
  for (size_t i = 0; c.note && i < c.n; i++) free(c.note[i]);
  free(c.d);
  free(c.p);
  free(c.date);
  free(c.note);
  free(text);
  return code;
}

/* ---- banks and products ---- */

static void gm__fin_print_bank(const ProtobufCMessage *m) {
  const Gm__Finance__Bank *b = (const Gm__Finance__Bank *)m;
  char t1[32], t2[32];
  printf("%-20s %s\n", b->id, b->name);
  if (b->no_active_staff)
    printf(
        "  no active staff: nobody can act for %s (enterprises cannot pick "
        "it; the deadlines of what it holds run on); link someone: gm "
        "finance bank link PARTICIPANT %s, then bank join by that "
        "participant\n",
        b->id, b->id);
  for (size_t i = 0; i < b->n_members; i++) {
    int off = 0;
    for (size_t k = 0; k < b->n_inactive; k++)
      off |= !strcmp(b->inactive[k], b->members[i]);
    printf("  %s%s\n", b->members[i],
           off ? "  inactive: no bank role (gets no events, its calls are "
                 "refused; unlink it)"
               : "");
  }
  for (size_t i = 0; i < b->n_offers; i++) {
    const Gm__Finance__LinkOffer *o = b->offers[i];
    /* offered 0: stored by an older gmd, which kept neither when nor by
       whom; expires 0: not re-stamped yet (Redis refused the write). */
    if (o->offered_ms > 0)
      printf("  %s  offered %s by %s, ", o->participant,
             gm__fin_time(o->offered_ms, t1), o->by[0] ? o->by : "?");
    else
      printf("  %s  offered by an older gmd (when and by whom not kept), ",
             o->participant);
    if (o->expires_ms > 0)
      printf("pending until %s (bank join)\n", gm__fin_time(o->expires_ms, t2));
    else
      printf(
          "pending (bank join; its link_offer_days start at the next "
          "bank list or link)\n");
  }
}

/* Who bank link named ("" for bank join): its reply says whether that
   participant acts for the bank yet. */
static const char *gm__fin_linked = "";
static int gm__fin_withdrawn; /* bank withdraw */

static void gm__fin_print_unlinked(const Gm__Finance__Bank *b);

/* bank.link's reply: the bank and its staff now. */
static void gm__fin_print_staff(const ProtobufCMessage *m) {
  const Gm__Finance__Bank *b = (const Gm__Finance__Bank *)m;
  char t[32];
  if (!b->id[0]) {
    gm__fin_print_unlinked(b);
    return;
  }
  if (gm__fin_withdrawn) {
    printf("withdrawn: the offer to %s to act for %s\n", gm__fin_linked, b->id);
    return;
  }
  for (size_t i = 0; i < b->n_offers; i++)
    if (!strcmp(b->offers[i]->participant, gm__fin_linked))
      printf("offer to %s pending until %s\n", gm__fin_linked,
             gm__fin_time(b->offers[i]->expires_ms, t));
  int in = !gm__fin_linked[0];
  printf("bank %s, staff:", b->id);
  for (size_t i = 0; i < b->n_members; i++) {
    printf(" %s", b->members[i]);
    in |= !strcmp(b->members[i], gm__fin_linked);
  }
  printf("%s\n", b->n_members ? "" : " none");
  if (!in)
    printf(
        "linked: %s acts for %s once it accepts (it must hold the bank "
        "role):\n  gm --as %s finance bank join %s\n",
        gm__fin_linked, b->id, gm__fin_linked, b->id);
}

static void gm__fin_print_banks(const ProtobufCMessage *m) {
  const Gm__Finance__BankList *l = (const Gm__Finance__BankList *)m;
  for (size_t i = 0; i < l->n_banks; i++)
    gm__fin_print_bank(&l->banks[i]->base);
}

static void gm__fin_print_product(const Gm__Finance__Product *p) {
  char a[40], b[40], r1[16], r2[16], fee[16];
  printf("%-16s %-12s %s%s\n", p->id, p->bank, p->name,
         p->retired ? "  (retired)" : "");
  printf("  %s-%s %s, %d-%d months, rate %s-%s%%, fee %s%%\n",
         gm__finance_format_money(p->amount_min, p->currency, a),
         gm__finance_format_money(p->amount_max, p->currency, b), p->currency,
         p->tenor_min_months, p->tenor_max_months,
         gm__finance_format_pct(p->rate_min_bp, r1),
         gm__finance_format_pct(p->rate_max_bp, r2),
         gm__finance_format_pct(p->fee_bp, fee));
  printf("  classes");
  for (size_t i = 0; i < p->n_classes; i++) printf(" %s", p->classes[i]);
  printf("; regions");
  for (size_t i = 0; i < p->n_regions; i++) printf(" %s", p->regions[i]);
  printf("%s\n", p->n_regions ? "" : " all");
}

static void gm__fin_print_product_msg(const ProtobufCMessage *m) {
  gm__fin_print_product((const Gm__Finance__Product *)m);
}

static void gm__fin_print_products(const ProtobufCMessage *m) {
  const Gm__Finance__ProductList *l = (const Gm__Finance__ProductList *)m;
  for (size_t i = 0; i < l->n_products; i++)
    gm__fin_print_product(l->products[i]);
}

static void gm__fin_print_entries(Gm__Finance__QueueEntry *const *entries,
                                  size_t n) {
  char t[32], a[40], b[40], s[32];
  gm_table tab = {8,
                  (const char *const[]){"REFERRAL", "RELATION", "STATE", "ITEM",
                                        "AMOUNT BAND", "TENOR", "CITY", "DUE"},
                  0x20,
                  NULL,
                  0,
                  0};
  for (size_t i = 0; i < n; i++) {
    const Gm__Finance__Referral *r = entries[i]->referral;
    const char *rel = entries[i]->relation;
    char band[96], tenor[16];
    if (r->amount_band_max)
      snprintf(band, sizeof band, "%s-%s %s",
               gm__finance_format_money(r->amount_band_min, r->currency, a),
               gm__finance_format_money(r->amount_band_max, r->currency, b),
               r->currency);
    else
      snprintf(band, sizeof band, "%s+ %s",
               gm__finance_format_money(r->amount_band_min, r->currency, a),
               r->currency);
    int64_t due =
        r->state == GM__FINANCE__STATE__STATE_PICKED    ? r->contact_due_ms
        : r->state <= GM__FINANCE__STATE__STATE_CLAIMED ? r->pick_due_ms
                                                        : r->decision_due_ms;
    snprintf(tenor, sizeof tenor, "%d", r->tenor_months);
    gm_table_row(&tab, r->id, rel, GM__FIN_STATE(r->state, s), r->subitem, band,
                 tenor, r->region, gm__fin_time(due, t));
  }
  gm_table_print(&tab, stdout);
}

static void gm__fin_print_queue(const ProtobufCMessage *m) {
  const Gm__Finance__Queue *q = (const Gm__Finance__Queue *)m;
  printf("bank %s: %lld referrals\n", q->bank, (long long)q->total);
  gm__fin_print_entries(q->entries, q->n_entries);
}

/* An unlink's reply: the bank the participant left, its staff now, and
   when nobody active is left, the referrals whose deadlines run on. */
static void gm__fin_print_unlinked(const Gm__Finance__Bank *b) {
  const Gm__Finance__Bank *l = b->left;
  char t[32];
  printf("unlinked: %s acts for no bank now, no offer pending\n",
         gm__fin_linked);
  if (!l) return;
  printf("%s no longer acts for %s; %s's staff now:", gm__fin_linked, l->id,
         l->id);
  for (size_t i = 0; i < l->n_members; i++) printf(" %s", l->members[i]);
  printf("%s\n", l->n_members ? "" : " none");
  if (l->n_members > l->n_inactive) return;
  printf("warning: nobody can act for bank %s now (%s); ", l->id,
         l->n_members ? "its staff lack the bank role" : "no staff");
  if (l->unstaffed_unread && l->unstaffed_unread[0])
    printf("%s.\n", l->unstaffed_unread);
  else if (l->unstaffed_total > 0)
    printf(
        "its %lld referral(s) below, held or claimed, keep their "
        "deadlines: a contact or decision deadline missed is recorded "
        "against %s and the referral goes back to the pool.\n",
        (long long)l->unstaffed_total, l->id);
  else
    printf("it holds and has claimed no referral.\n");
  for (size_t i = 0; i < l->n_offers; i++)
    if (l->offers[i]->expires_ms > 0)
      printf(
          "pending: %s's link offer to %s, until %s (gm --as %s finance "
          "bank join %s)\n",
          l->offers[i]->participant, l->id,
          gm__fin_time(l->offers[i]->expires_ms, t), l->offers[i]->participant,
          l->id);
  printf(
      "to let someone act for it: gm finance bank link PARTICIPANT %s, "
      "who accepts with gm finance bank join %s\n",
      l->id, l->id);
  if (l->n_unstaffed) gm__fin_print_entries(l->unstaffed, l->n_unstaffed);
  if (l->unstaffed_total > (int64_t)l->n_unstaffed)
    printf(
        "(the first %zu of %lld; gm finance queue --bank %s lists "
        "them all)\n",
        l->n_unstaffed, (long long)l->unstaffed_total, l->id);
}

static int gm__fin_bank_run(const gm__fin_cli *g, int argc, char **argv,
                            const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *sub = a.npos ? a.pos[0] : "list";
  if (!strcmp(sub, "list")) {
    Gm__Finance__BanksRequest req = GM__FINANCE__BANKS_REQUEST__INIT;
    return gm__fin_show(g, "bank.list", &req.base, gm__fin_print_banks);
  }
  if (!strcmp(sub, "create")) {
    if (a.npos != 2 || !a.opt[O_NAME])
      return gm__fin_usage(self, "%s", "give bank create ID --name NAME");
    Gm__Finance__Bank b = GM__FINANCE__BANK__INIT;
    Gm__Finance__CreateBankRequest req = GM__FINANCE__CREATE_BANK_REQUEST__INIT;
    b.id = a.pos[1];
    b.name = (char *)a.opt[O_NAME];
    req.bank = &b;
    return gm__fin_show(g, "bank.create", &req.base, gm__fin_print_bank);
  }
  if (!strcmp(sub, "link") || !strcmp(sub, "unlink")) {
    int link = !strcmp(sub, "link");
    if (a.npos != (link ? 3 : 2))
      return gm__fin_usage(self, "%s",
                           "give bank link PARTICIPANT BANK or bank unlink "
                           "PARTICIPANT");
    Gm__Finance__LinkRequest req = GM__FINANCE__LINK_REQUEST__INIT;
    req.participant = a.pos[1];
    req.bank = link ? a.pos[2] : "";
    gm__fin_linked = req.participant;
    return gm__fin_show(g, "bank.link", &req.base, gm__fin_print_staff);
  }
  if (!strcmp(sub, "withdraw")) {
    if (a.npos != 2)
      return gm__fin_usage(self, "%s", "give bank withdraw PARTICIPANT");
    Gm__Finance__LinkRequest req = GM__FINANCE__LINK_REQUEST__INIT;
    req.participant = a.pos[1];
    req.withdraw = 1;
    gm__fin_linked = req.participant;
    gm__fin_withdrawn = 1;
    return gm__fin_show(g, "bank.link", &req.base, gm__fin_print_staff);
  }
  if (!strcmp(sub, "join")) {
    if (a.npos != 2) return gm__fin_usage(self, "%s", "give bank join BANK");
    Gm__Finance__LinkRequest req = GM__FINANCE__LINK_REQUEST__INIT;
    req.bank = a.pos[1];
    return gm__fin_show(g, "bank.link", &req.base, gm__fin_print_staff);
  }
  return gm__fin_usage(self, "unknown bank command \"%s\"", sub);
}

static int gm__fin_product_run(const gm__fin_cli *g, int argc, char **argv,
                               const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *sub = a.npos ? a.pos[0] : "list";
  if (!strcmp(sub, "list")) {
    Gm__Finance__ProductsRequest req = GM__FINANCE__PRODUCTS_REQUEST__INIT;
    req.bank = (char *)(a.opt[O_BANK] ? a.opt[O_BANK] : "");
    return gm__fin_show(g, "product.list", &req.base, gm__fin_print_products);
  }
  if (!strcmp(sub, "retire")) {
    if (a.npos != 2) return gm__fin_usage(self, "%s", "give product retire ID");
    Gm__Finance__ProductRequest req = GM__FINANCE__PRODUCT_REQUEST__INIT;
    req.id = a.pos[1];
    return gm__fin_show(g, "product.retire", &req.base,
                        gm__fin_print_product_msg);
  }
  if (strcmp(sub, "create"))
    return gm__fin_usage(self,
                         "unknown product command \"%s\"; give list, create "
                         "or retire",
                         sub);
  if (a.npos != 2)
    return gm__fin_usage(self, "%s", "give product create ID --bank ...");
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest req =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char amt[64], ten[64], rate[64], classes[256], regions[1024];
  char *lo, *hi, *cls[16], *reg[64];
  int32_t bp;
  p.id = a.pos[1];
  p.bank = (char *)(a.opt[O_BANK] ? a.opt[O_BANK] : "");
  p.name = (char *)(a.opt[O_NAME] ? a.opt[O_NAME] : "");
  p.currency = (char *)(a.opt[O_CURRENCY] ? a.opt[O_CURRENCY] : "CNY");
  if (!a.opt[O_AMOUNT] || !a.opt[O_TENOR] || !a.opt[O_RATE] ||
      !a.opt[O_CLASS] || !a.opt[O_COAL])
    return gm__fin_usage(self, "%s",
                         "product create needs --amount, --tenor, --rate, "
                         "--classes and --fee");
  if (gm__fin_range(g, "--amount", a.opt[O_AMOUNT], amt, &lo, &hi) ||
      gm__fin_amount(g, "the smallest --amount", lo, p.currency, 1,
                     &p.amount_min) ||
      gm__fin_amount(g, "the largest --amount", hi, p.currency, 0,
                     &p.amount_max) ||
      gm__fin_range(g, "--tenor", a.opt[O_TENOR], ten, &lo, &hi) ||
      gm__fin_months(g, "the shortest --tenor", lo, &p.tenor_min_months) ||
      gm__fin_months(g, "the longest --tenor", hi, &p.tenor_max_months) ||
      gm__fin_range(g, "--rate", a.opt[O_RATE], rate, &lo, &hi) ||
      gm__fin_pct(g, "the lowest --rate", lo, &p.rate_min_bp) ||
      gm__fin_pct(g, "the highest --rate", hi, &p.rate_max_bp) ||
      gm__fin_fee(g, a.opt[O_COAL], &bp))
    return GM_CLI_EXIT_ERROR;
  p.fee_bp = bp;
  /* Refused, not cut: the product would cover less than was typed. */
  if (snprintf(classes, sizeof classes, "%s", a.opt[O_CLASS]) >=
          (int)sizeof classes ||
      (p.n_classes = gm__fin_list(classes, cls, 16)) > 16) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT,
                  "give at most 16 --classes (codes like 3 or 3.2)");
    return GM_CLI_EXIT_ERROR;
  }
  if (snprintf(regions, sizeof regions, "%s",
               a.opt[O_ITEM] ? a.opt[O_ITEM] : "") >= (int)sizeof regions ||
      (p.n_regions = gm__fin_list(regions, reg, 64)) > 64) {
    g->api->error(g->cli, GM_INVALID_ARGUMENT,
                  "give at most 64 --regions (none: every region)");
    return GM_CLI_EXIT_ERROR;
  }
  p.classes = cls;
  p.regions = reg;
  req.product = &p;
  return gm__fin_show(g, "product.create", &req.base,
                      gm__fin_print_product_msg);
}

/* ---- enterprises ---- */

static void gm__fin_print_enterprise(const ProtobufCMessage *m) {
  const Gm__Finance__Enterprise *e = (const Gm__Finance__Enterprise *)m;
  char s[32];
  gm__fin_kv("enterprise", "%s (%s)", e->name, e->participant);
  gm__fin_kv("credit code", "%s", e->credit_code);
  gm__fin_kv("region", "%s", e->region);
  gm__fin_kv(
      "size", "%s",
      gm__fin_enum(&gm__finance__size_class__descriptor, (int)e->size, s));
  gm__fin_kv("contact", "%s", e->contact);
}

static int gm__fin_enterprise_run(const gm__fin_cli *g, int argc, char **argv,
                                  const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *sub = a.npos ? a.pos[0] : "show";
  /* "enterprise PARTICIPANT" shows it, like "enterprise show PARTICIPANT"
     (a participant named show or register: use the second form). */
  int named = strcmp(sub, "show") && strcmp(sub, "register");
  if (!strcmp(sub, "show") || named) {
    if (a.npos > (named ? 1 : 2))
      return gm__fin_usage(self, "\"%s\" is one word too many",
                           a.pos[a.npos - 1]);
    Gm__Finance__EnterpriseRequest req = GM__FINANCE__ENTERPRISE_REQUEST__INIT;
    req.participant = named ? a.pos[0] : a.npos > 1 ? a.pos[1] : "";
    return gm__fin_show(g, "enterprise.get", &req.base,
                        gm__fin_print_enterprise);
  }
  static const char *const sizes[] = {"", "large", "medium", "small", "micro"};
  Gm__Finance__Enterprise e = GM__FINANCE__ENTERPRISE__INIT;
  Gm__Finance__RegisterEnterpriseRequest req =
      GM__FINANCE__REGISTER_ENTERPRISE_REQUEST__INIT;
  e.participant = (char *)(a.opt[O_FOR] ? a.opt[O_FOR] : "");
  e.credit_code = (char *)(a.opt[O_USE] ? a.opt[O_USE] : "");
  e.name = (char *)(a.opt[O_NAME] ? a.opt[O_NAME] : "");
  e.region = (char *)(a.opt[O_DESC] ? a.opt[O_DESC] : "");
  e.contact = (char *)(a.opt[O_NOTE] ? a.opt[O_NOTE] : "");
  for (int i = 1; i < 5; i++)
    if (a.opt[O_CO2] && !strcmp(a.opt[O_CO2], sizes[i]))
      e.size = (Gm__Finance__SizeClass)i;
  if (!e.size)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "--size must be large, medium, small or micro");
  req.enterprise = &e;
  return gm__fin_show(g, "enterprise.register", &req.base,
                      gm__fin_print_enterprise);
}

/* ---- referrals ---- */

static void gm__fin_print_screen(const ProtobufCMessage *m) {
  const Gm__Finance__ScreenReply *s = (const Gm__Finance__ScreenReply *)m;
  if (s->eligible)
    printf("eligible: %d products of %d banks fit\n", s->products, s->banks);
  else
    printf("not eligible:\n");
  for (size_t i = 0; i < s->n_reasons; i++) printf("  - %s\n", s->reasons[i]);
}

static int gm__fin_refer_run(const gm__fin_cli *g, int argc, char **argv,
                             const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
  if (!a.opt[O_AMOUNT] || !a.opt[O_TENOR] || !a.opt[O_ITEM] || !a.opt[O_USE] ||
      !a.opt[O_DESC])
    return gm__fin_usage(self, "%s",
                         "give --amount, --tenor, --item, --use and "
                         "--description");
  if (gm__fin_amount(g, "--amount", a.opt[O_AMOUNT],
                     a.opt[O_CURRENCY] ? a.opt[O_CURRENCY] : "CNY", 0,
                     &req.amount) ||
      gm__fin_months(g, "--tenor", a.opt[O_TENOR], &req.tenor_months) ||
      (a.opt[O_CO2] &&
       gm__fin_decimal(g, "--co2", "tonnes", a.opt[O_CO2], 3,
                       GM_FINANCE_MAX_BENEFIT, &req.co2_avoided_kg)) ||
      (a.opt[O_COAL] &&
       gm__fin_decimal(g, "--coal", "tonnes", a.opt[O_COAL], 3,
                       GM_FINANCE_MAX_BENEFIT, &req.coal_saved_kg)))
    return GM_CLI_EXIT_ERROR;
  char top[2] = {a.opt[O_ITEM][0], '\0'};
  req.subitem = (char *)a.opt[O_ITEM];
  req.class_code = (char *)(a.opt[O_CLASS] ? a.opt[O_CLASS] : top);
  req.enterprise = (char *)(a.opt[O_FOR] ? a.opt[O_FOR] : "");
  req.currency = (char *)(a.opt[O_CURRENCY] ? a.opt[O_CURRENCY] : "");
  req.use_of_proceeds = (char *)a.opt[O_USE];
  req.description = (char *)a.opt[O_DESC];
  req.certificates = a.certs;
  req.n_certificates = a.ncerts;
  req.consent_share = a.opt[O_SHARE] != NULL;
  req.consent_identity = a.opt[O_IDENTITY] != NULL;
  if (!strcmp(argv[0], "screen"))
    return gm__fin_show(g, "referral.screen", &req.base, gm__fin_print_screen);
  return gm__fin_show(g, "referral.create", &req.base, gm__fin_print_ref_msg);
}

static int gm__fin_show_run(const gm__fin_cli *g, int argc, char **argv,
                            const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  if (a.npos != 1) return gm__fin_usage(self, "%s", "give one referral id");
  Gm__Finance__ReferralRequest req = GM__FINANCE__REFERRAL_REQUEST__INIT;
  req.id = a.pos[0];
  return gm__fin_show(g, "referral.get", &req.base, gm__fin_print_ref_msg);
}

static void gm__fin_print_list(const ProtobufCMessage *m) {
  const Gm__Finance__ReferralList *l = (const Gm__Finance__ReferralList *)m;
  char a[40], s[32], t[32];
  gm_table tab = {7,
                  (const char *const[]){"REFERRAL", "STATE", "ITEM", "AMOUNT",
                                        "TENOR", "BANK", "SUBMITTED"},
                  0x18,
                  NULL,
                  0,
                  0};
  for (size_t i = 0; i < l->n_referrals; i++) {
    const Gm__Finance__Referral *r = l->referrals[i];
    char tenor[16], amount[64];
    snprintf(tenor, sizeof tenor, "%d", r->tenor_months);
    snprintf(amount, sizeof amount, "%s %s",
             gm__finance_format_money(r->amount, r->currency, a), r->currency);
    gm_table_row(&tab, r->id, GM__FIN_STATE(r->state, s), r->subitem, amount,
                 tenor, r->bank[0] ? r->bank : "-",
                 gm__fin_time(r->created_ms, t));
  }
  gm_table_print(&tab, stdout);
  printf("%zu of %lld\n", l->n_referrals, (long long)l->total);
}

static int gm__fin_list_run(const gm__fin_cli *g, int argc, char **argv,
                            const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  Gm__Finance__ReferralsRequest req = GM__FINANCE__REFERRALS_REQUEST__INIT;
  req.enterprise = (char *)(a.opt[O_FOR] ? a.opt[O_FOR] : "");
  return gm__fin_show(g, "referral.list", &req.base, gm__fin_print_list);
}

/* The transitions: claim, pick, contact, request-info, answer, approve,
   fund, decline, withdraw. */
static int gm__fin_step_run(const gm__fin_cli *g, int argc, char **argv,
                            const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *w = argv[0];
  if (a.npos < 1) return gm__fin_usage(self, "%s", "give the referral id");
  /* Only the texts take several words: a stray word is refused, not
     dropped. */
  if (a.npos > 1 &&
      (!strcmp(w, "claim") || !strcmp(w, "approve") || !strcmp(w, "fund")))
    return gm__fin_usage(self,
                         "\"%s\" is extra: this command takes the referral "
                         "id and options only",
                         a.pos[1]);
  char *id = a.pos[0], *text = gm__fin_join(&a, 1);
  int code;
  if (!text) return g->api->error(g->cli, GM_RESOURCE_EXHAUSTED, "no memory");
  if (!strcmp(w, "claim")) {
    Gm__Finance__ClaimRequest r = GM__FINANCE__CLAIM_REQUEST__INIT;
    r.id = id;
    r.product = (char *)(a.opt[O_PRODUCT] ? a.opt[O_PRODUCT] : "");
    code = gm__fin_show(g, "referral.claim", &r.base, gm__fin_print_ref_msg);
  } else if (!strcmp(w, "pick")) {
    Gm__Finance__PickRequest r = GM__FINANCE__PICK_REQUEST__INIT;
    r.id = id;
    r.bank = text;
    code = a.npos != 2 ? gm__fin_usage(self, "%s", "give pick ID BANK")
                       : gm__fin_show(g, "referral.pick", &r.base,
                                      gm__fin_print_ref_msg);
  } else if (!strcmp(w, "contact")) {
    Gm__Finance__ContactRequest r = GM__FINANCE__CONTACT_REQUEST__INIT;
    r.id = id;
    r.note = a.opt[O_NOTE] ? (char *)a.opt[O_NOTE] : text;
    code = gm__fin_show(g, "referral.contact", &r.base, gm__fin_print_ref_msg);
  } else if (!strcmp(w, "request-info") || !strcmp(w, "answer") ||
             !strcmp(w, "withdraw")) {
    Gm__Finance__TextRequest r = GM__FINANCE__TEXT_REQUEST__INIT;
    r.id = id;
    r.text = text;
    code = gm__fin_show(g,
                        w[0] == 'r'   ? "referral.request_info"
                        : w[0] == 'a' ? "referral.answer"
                                      : "referral.withdraw",
                        &r.base, gm__fin_print_ref_msg);
  } else if (!strcmp(w, "approve")) {
    Gm__Finance__ApproveRequest r = GM__FINANCE__APPROVE_REQUEST__INIT;
    r.id = id;
    if (!a.opt[O_AMOUNT] || !a.opt[O_RATE] || !a.opt[O_TENOR])
      code = gm__fin_usage(self, "%s", "give --amount, --rate and --tenor");
    else if (gm__fin_ref_amount(g, id, a.opt[O_AMOUNT], &r.amount) ||
             gm__fin_pct(g, "--rate", a.opt[O_RATE], &r.rate_bp) ||
             gm__fin_months(g, "--tenor", a.opt[O_TENOR], &r.tenor_months))
      code = GM_CLI_EXIT_ERROR;
    else
      code =
          gm__fin_show(g, "referral.approve", &r.base, gm__fin_print_ref_msg);
  } else if (!strcmp(w, "fund")) {
    Gm__Finance__FundRequest r = GM__FINANCE__FUND_REQUEST__INIT;
    r.id = id;
    r.date = (char *)(a.opt[O_DATE] ? a.opt[O_DATE] : "");
    if (!a.opt[O_AMOUNT])
      code = gm__fin_usage(self, "%s", "give --amount");
    else if (gm__fin_ref_amount(g, id, a.opt[O_AMOUNT], &r.amount))
      code = GM_CLI_EXIT_ERROR;
    else
      code = gm__fin_show(g, "referral.fund", &r.base, gm__fin_print_ref_msg);
  } else { /* decline ID REASON TEXT... */
    static const char *const reasons[] = {
        "",          "credit", "collateral",  "project",
        "documents", "policy", "unreachable", "other"};
    Gm__Finance__DeclineRequest r = GM__FINANCE__DECLINE_REQUEST__INIT;
    r.id = id;
    for (int i = 1; i < 8 && a.npos > 1; i++)
      if (!strcmp(a.pos[1], reasons[i]))
        r.reason = (Gm__Finance__DeclineReason)i;
    char *why = gm__fin_join(&a, 2);
    r.text = why ? why : "";
    code = !r.reason ? g->api->error(g->cli, GM_INVALID_ARGUMENT,
                                     "the reason must be one of credit, "
                                     "collateral, project, documents, "
                                     "policy, unreachable, other")
                     : gm__fin_show(g, "referral.decline", &r.base,
                                    gm__fin_print_ref_msg);
    free(why);
  }
  free(text);
  return code;
}

static int gm__fin_queue_run(const gm__fin_cli *g, int argc, char **argv,
                             const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  Gm__Finance__QueueRequest req = GM__FINANCE__QUEUE_REQUEST__INIT;
  req.bank = (char *)(a.opt[O_BANK] ? a.opt[O_BANK] : "");
  return gm__fin_show(g, "bank.queue", &req.base, gm__fin_print_queue);
}

/* ---- reports ---- */

static void gm__fin_print_bank_report(const ProtobufCMessage *m) {
  const Gm__Finance__BankReport *r = (const Gm__Finance__BankReport *)m;
  char a[40], b[40], t1[32], t2[32];
  gm__fin_kv("bank", "%s, %s to %s", r->bank, r->from, r->to);
  gm__fin_kv("claims", "%lld (picked %lld)", (long long)r->claims,
             (long long)r->picked);
  gm__fin_kv("funded", "%lld of them: conversion %s%%", (long long)r->funded,
             gm__finance_format_pct(r->conversion_bp, a));
  if (r->decisions == 0)
    gm__fin_kv("decisions", "none in the period (approvals and declines)");
  else
    gm__fin_kv("decisions",
               "%lld, %lld.%lld h on average after the pick, at "
               "most %lld.%lld h",
               (long long)r->decisions,
               (long long)(r->decision_mean_ms / 3600000),
               (long long)(r->decision_mean_ms / 360000 % 10),
               (long long)(r->decision_max_ms / 3600000),
               (long long)(r->decision_max_ms / 360000 % 10));
  /* Each currency apart: yuan and dollars are never added. */
  for (size_t i = 0; i < r->n_by_currency; i++)
    gm__fin_kv(i ? "" : "loans funded", "%lld loan%s, %s %s; fees due %s %s",
               (long long)r->by_currency[i]->loans,
               r->by_currency[i]->loans == 1 ? "" : "s",
               gm__finance_format_money(r->by_currency[i]->funded_amount,
                                        r->by_currency[i]->currency, a),
               r->by_currency[i]->currency,
               gm__finance_format_money(r->by_currency[i]->fees,
                                        r->by_currency[i]->currency, b),
               r->by_currency[i]->currency);
  if (!r->n_by_currency) gm__fin_kv("loans funded", "none");
  gm__fin_kv("missed contact", "%lld", (long long)r->breaches);
  gm__fin_kv("missed decision", "%lld", (long long)r->decision_breaches);
  for (size_t i = 0; i < r->n_breach_list; i++)
    printf("  %s round %d, %s deadline: due %s, recorded %s\n",
           r->breach_list[i]->referral, r->breach_list[i]->round,
           r->breach_list[i]->kind[0] ? r->breach_list[i]->kind : "contact",
           gm__fin_time(r->breach_list[i]->due_ms, t1),
           gm__fin_time(r->breach_list[i]->recorded_ms, t2));
}

static int gm__fin_report_run(const gm__fin_cli *g, int argc, char **argv,
                              const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  const char *from = a.opt[O_FROM] ? a.opt[O_FROM] : "";
  const char *to = a.opt[O_TO] ? a.opt[O_TO] : "";
  if (!strcmp(argv[0], "bank-report")) {
    Gm__Finance__BankReportRequest req = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
    req.bank = (char *)(a.opt[O_BANK] ? a.opt[O_BANK] : "");
    req.from = (char *)from;
    req.to = (char *)to;
    return gm__fin_show(g, "bank.report", &req.base, gm__fin_print_bank_report);
  }
  Gm__Finance__ReportRequest req = GM__FINANCE__REPORT_REQUEST__INIT;
  ProtobufCMessage *reply;
  req.from = (char *)from;
  req.to = (char *)to;
  int code = gm__fin_call(g, "report.period", &req.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (g->api->json(g->cli)) {
    g->api->print(g->cli, reply);
  } else {
    const Gm__Finance__Report *r = (const Gm__Finance__Report *)reply;
    if (!a.opt[O_OUT])
      printf(
          "green-finance report %s to %s (amounts in each line's currency, "
          "yuan for CNY)\n",
          r->from, r->to);
    code = gm__fin_write(g, a.opt[O_OUT], r->csv);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return code;
}

static int gm__fin_statement_run(const gm__fin_cli *g, int argc, char **argv,
                                 const gm__fin_cmd *self) {
  gm__fin_args a;
  GM__FIN_ARGS(self, argc, argv, &a);
  if (a.npos < 1 || a.npos > 2)
    return gm__fin_usage(self, "%s", "give [BANK] MONTH (YYYY-MM)");
  Gm__Finance__StatementRequest req = GM__FINANCE__STATEMENT_REQUEST__INIT;
  ProtobufCMessage *reply;
  req.bank = a.npos == 2 ? a.pos[0] : "";
  req.month = a.pos[a.npos - 1];
  int code = gm__fin_call(g, "report.statement", &req.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    code = gm__fin_write(g, a.opt[O_OUT],
                         ((const Gm__Finance__Statement *)reply)->csv);
  protobuf_c_message_free_unpacked(reply, NULL);
  return code;
}

/* ---- the extension ---- */

static const gm__fin_cmd gm__fin_cmds[] = {
    {"catalogue",
     "gm finance catalogue [list]        the Green Industry Guidance "
     "Catalogue in force\n"
     "  gm finance catalogue load [FILE] [--source TEXT]   (centre) replace "
     "it;\n"
     "    no FILE: the one shipped in the plugin (catalogue.csv format)\n",
     gm__fin_catalogue_run},
    {"calendar",
     "gm finance calendar [list] [--from DATE] [--to DATE]   holidays and "
     "worked weekend days\n"
     "    (from today to 366 days ahead unless given)\n"
     "  gm finance calendar load [FILE] [--source TEXT]   (centre) the days "
     "of FILE\n"
     "    (calendar.csv format) replace those between its first and last "
     "date;\n"
     "    no FILE: the one shipped in the plugin\n",
     gm__fin_calendar_run},
    {"bank",
     "gm finance bank [list]             the banks (the centre: staff, "
     "inactive\n      staff and pending link offers)\n"
     "  gm finance bank create ID --name NAME          (centre)\n"
     "  gm finance bank link PARTICIPANT BANK          (centre) PARTICIPANT "
     "acts for BANK\n"
     "      once it accepts; one linked to another bank must be unlinked "
     "first\n"
     "  gm finance bank join BANK                      (bank) accept the "
     "centre's link\n"
     "  gm finance bank withdraw PARTICIPANT           (centre) withdraw "
     "a pending\n"
     "      offer (an offer expires after link_offer_days, 7 by default)\n"
     "  gm finance bank unlink PARTICIPANT             (centre)\n",
     gm__fin_bank_run},
    {"product",
     "gm finance product [list] [--bank BANK]          the loan products\n"
     "  gm finance product create ID --bank BANK --name NAME --amount "
     "MIN-MAX\n"
     "      --tenor MIN-MAX --rate MIN-MAX --fee PCT --classes 3,1.5\n"
     "      [--regions 330000,330500] [--currency CNY]   (centre) amounts in "
     "CURRENCY,\n"
     "      tenors in months, rates and the referral fee in percent\n"
     "  gm finance product retire ID                   (centre)\n",
     gm__fin_product_run},
    {"enterprise",
     "gm finance enterprise [show] [PARTICIPANT]       a profile\n"
     "  gm finance enterprise register --code CREDIT_CODE --name NAME "
     "--region CODE\n"
     "      --size large|medium|small|micro --contact TEXT [--for "
     "PARTICIPANT]\n",
     gm__fin_enterprise_run},
    {"refer",
     "gm finance refer --amount YUAN --tenor MONTHS --item CODE --use TEXT\n"
     "      --description TEXT --consent-share [--consent-identity] [--co2 T] "
     "[--coal T]\n"
     "      [--cert TEXT]... [--for PARTICIPANT (centre)]\n"
     "    refer a financing need; --co2 and --coal are expected tonnes a year "
     "(CO2e\n"
     "    avoided, standard coal saved); --consent-share lets the fitting "
     "banks see a\n"
     "    summary, --consent-identity lets a bank that claims see who you "
     "are\n",
     gm__fin_refer_run},
    {"screen",
     "gm finance screen ...   as refer: would it be eligible, and why "
     "not (changes nothing)\n",
     gm__fin_refer_run},
    {"show",
     "gm finance show ID                 one referral, as far as you "
     "may see it\n",
     gm__fin_show_run},
    {"referrals",
     "gm finance referrals [--for PARTICIPANT]   an enterprise's "
     "referrals\n",
     gm__fin_list_run},
    {"claim", "gm finance claim ID [--product PRODUCT]   (bank) claim it\n",
     gm__fin_step_run},
    {"pick", "gm finance pick ID BANK           (enterprise) pick a claimant\n",
     gm__fin_step_run},
    {"contact",
     "gm finance contact ID [NOTE...]   (bank) contact made: review "
     "starts\n",
     gm__fin_step_run},
    {"request-info", "gm finance request-info ID QUESTION...   (bank)\n",
     gm__fin_step_run},
    {"answer", "gm finance answer ID TEXT...      (enterprise)\n",
     gm__fin_step_run},
    {"approve",
     "gm finance approve ID --amount YUAN --rate PCT --tenor MONTHS   (bank)\n",
     gm__fin_step_run},
    {"fund",
     "gm finance fund ID --amount YUAN [--date DATE]   (bank) paid "
     "out\n",
     gm__fin_step_run},
    {"decline",
     "gm finance decline ID REASON TEXT...   (bank) REASON: credit, "
     "collateral,\n"
     "    project, documents, policy, unreachable, other\n",
     gm__fin_step_run},
    {"withdraw", "gm finance withdraw ID [REASON...]   (enterprise)\n",
     gm__fin_step_run},
    {"queue",
     "gm finance queue [--bank BANK]   (bank, centre) a bank's "
     "queue\n",
     gm__fin_queue_run},
    {"bank-report",
     "gm finance bank-report [--bank BANK] [--from DATE] [--to DATE]\n"
     "    claims, picks, conversion, missed contact and decision deadlines, "
     "time to decision\n"
     "    (the 30 days ending --to, today by default)\n",
     gm__fin_report_run},
    {"report",
     "gm finance report [--from DATE] [--to DATE] [--out FILE.csv]   "
     "(centre)\n"
     "    referrals, loans and fees by class and by bank, expected benefit\n"
     "    (the 30 days ending --to, today by default)\n",
     gm__fin_report_run},
    {"statement",
     "gm finance statement [BANK] MONTH [--out FILE.csv]   fees due for a "
     "month\n",
     gm__fin_statement_run},
};

static int gm__fin_run(gm_cli *cli, const gm_cli_api *api, int argc,
                       char **argv) {
  const gm__fin_cli g = {cli, api};
  for (size_t i = 0; i < sizeof gm__fin_cmds / sizeof gm__fin_cmds[0]; i++)
    if (!strcmp(argv[0], gm__fin_cmds[i].name))
      return gm__fin_cmds[i].run(&g, argc, argv, &gm__fin_cmds[i]);
  return GM_CLI_NOT_MINE;
}

static void gm__fin_help(FILE *out) {
  fprintf(out,
          "friendly commands (amounts in the currency's units with its "
          "decimals, like\n5000000.00 yuan or 5000000 yen, rates and fees "
          "in percent like 3.45, benefits\nin tonnes; dates YYYY-MM-DD; "
          "--json prints the reply in hundredths of\nthe currency unit (fen), "
          "bp and kg):\n");
  for (size_t i = 0; i < sizeof gm__fin_cmds / sizeof gm__fin_cmds[0]; i++)
    fprintf(out, "  %s", gm__fin_cmds[i].usage);
}

/* gm_plugin.cli of finance.c. */
const struct gm_cli_extension gm__finance_cli_extension = {
    .size = sizeof(struct gm_cli_extension),
    .run = gm__fin_run,
    .help = gm__fin_help,
};
