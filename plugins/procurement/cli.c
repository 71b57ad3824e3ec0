/*
 * `gm procurement ...`: the procurement market's commands for people, run
 * by `gm` from this plugin (include/greenmarket/cli.h): the certifier's
 * catalogue imports and register, the agency's tenders, awards and
 * contracts, the supplier's bids and challenges, the evaluators' scores,
 * the evaluation sheet and the OCDS export.  Every other word takes gm's
 * generic `gm procurement <method> field=value` path.
 *
 * Amounts are typed and shown in yuan with two decimals and sent as int64
 * fen; rates as percentages ("10%") sent as basis points; scores as points
 * of 100 ("52.5") sent as basis points.  With --json every command prints
 * the method's reply unchanged (fen, basis points).  Everything asked of gm
 * goes through the gm_cli_api table: this file links no gm symbol.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <greenmarket/cli.h>
#include <greenmarket/table.h>
#include <greenmarket/text.h>
#include <greenmarket/uscc.h>
#include <sodium.h>
#include <strings.h>

#include "procurement.pb-c.h"
#include "rules.h"

/* `s` as a message may echo what the user typed (greenmarket/text.h): a
   text over `max` bytes cut at a character boundary, never inside one, and
   followed by "... (N bytes)"; controls and bytes that are not UTF-8 shown
   as '?'.  Its buffer lives to the end of the enclosing block. */
#define PR_SHOWN(s, max) \
  gm_text_shown((s), (max), (char[(max) + 24]){0}, (max) + 24)

#define PR_MARKET "procurement"
#define PR_MAX_POS 64

typedef struct pr_cli {
  gm_cli *cli;
  const gm_cli_api *api;
} pr_cli;

typedef struct pr_cmd {
  const char *name;
  const char *usage; /* "gm procurement ..." lines and a summary */
  int (*run)(const pr_cli *g, int argc, char **argv, const struct pr_cmd *self);
} pr_cmd;

/* ---- small helpers ---- */

static int pr_call(const pr_cli *g, const char *method,
                   const ProtobufCMessage *req, ProtobufCMessage **reply) {
  return g->api->call(g->cli, PR_MARKET, method, req, reply);
}

static void pr_free(ProtobufCMessage **m) {
  if (*m) protobuf_c_message_free_unpacked(*m, NULL);
  *m = NULL;
}

/* Calls a method and prints its reply with `print` (or as JSON). */
static int pr_show(const pr_cli *g, const char *method,
                   const ProtobufCMessage *req,
                   void (*print)(const ProtobufCMessage *)) {
  ProtobufCMessage *reply;
  int code = pr_call(g, method, req, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (g->api->json(g->cli))
    g->api->print(g->cli, reply);
  else
    print(reply);
  fflush(stdout);
  pr_free(&reply);
  return GM_CLI_EXIT_OK;
}

static int pr_usage_error(const pr_cmd *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int pr_usage_error(const pr_cmd *self, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "error: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nusage: %s", self->usage);
  return GM_CLI_EXIT_ERROR;
}

/* What one command's options filled in. */
typedef struct pr_opts {
  const char *title, *description, *currency, *deadline, *budget, *security,
      *bond_rate, *sme_rate, *buyers, *evaluators, *price_weight, *kind,
      *reason, *note, *reference, *out, *supplier, *from, *uscc, *name, *size,
      *sme, *remedy, *reject;
  char *items[PR_MAX_ITEMS];
  int nitems;
  int rfq, no_green, no_sme, skip_bad, checks, dismiss, uphold, affects, keep,
      per_change;
  long batch, round, limit, days;
} pr_opts;

enum {
  O_TITLE = 256,
  O_DESC,
  O_CURRENCY,
  O_DEADLINE,
  O_BUDGET,
  O_SECURITY,
  O_BOND,
  O_SMERATE,
  O_BUYERS,
  O_EVALUATORS,
  O_SCORING,
  O_KIND,
  O_REASON,
  O_NOTE,
  O_REFERENCE,
  O_OUT,
  O_SUPPLIER,
  O_FROM,
  O_USCC,
  O_NAME,
  O_SIZE,
  O_SME,
  O_ITEM,
  O_RFQ,
  O_NOGREEN,
  O_NOSME,
  O_SKIPBAD,
  O_BATCH,
  O_ROUND,
  O_LIMIT,
  O_CHECKS,
  O_DAYS,
  O_DISMISS,
  O_UPHOLD,
  O_REJECT,
  O_AFFECTS,
  O_KEEP,
  O_PERCHANGE
};

static const struct option pr_options[] = {
    {"title", required_argument, NULL, O_TITLE},
    {"description", required_argument, NULL, O_DESC},
    {"currency", required_argument, NULL, O_CURRENCY},
    {"deadline", required_argument, NULL, O_DEADLINE},
    {"budget", required_argument, NULL, O_BUDGET},
    {"security", required_argument, NULL, O_SECURITY},
    {"bond-rate", required_argument, NULL, O_BOND},
    {"sme-rate", required_argument, NULL, O_SMERATE},
    {"buyers", required_argument, NULL, O_BUYERS},
    {"evaluators", required_argument, NULL, O_EVALUATORS},
    {"scoring", required_argument, NULL, O_SCORING},
    {"kind", required_argument, NULL, O_KIND},
    {"reason", required_argument, NULL, O_REASON},
    {"note", required_argument, NULL, O_NOTE},
    {"reference", required_argument, NULL, O_REFERENCE},
    {"bond-ref", required_argument, NULL, O_REFERENCE},
    {"out", required_argument, NULL, O_OUT},
    {"supplier", required_argument, NULL, O_SUPPLIER},
    {"from", required_argument, NULL, O_FROM},
    {"uscc", required_argument, NULL, O_USCC},
    {"name", required_argument, NULL, O_NAME},
    {"size", required_argument, NULL, O_SIZE},
    {"sme", required_argument, NULL, O_SME},
    {"item", required_argument, NULL, O_ITEM},
    {"rfq", no_argument, NULL, O_RFQ},
    {"no-green", no_argument, NULL, O_NOGREEN},
    {"no-sme", no_argument, NULL, O_NOSME},
    {"skip-bad", no_argument, NULL, O_SKIPBAD},
    {"batch", required_argument, NULL, O_BATCH},
    {"round", required_argument, NULL, O_ROUND},
    {"limit", required_argument, NULL, O_LIMIT},
    {"checks", no_argument, NULL, O_CHECKS},
    {"days", required_argument, NULL, O_DAYS},
    {"dismiss", no_argument, NULL, O_DISMISS},
    {"uphold", required_argument, NULL, O_UPHOLD},
    {"reject", required_argument, NULL, O_REJECT},
    {"affects-bids", no_argument, NULL, O_AFFECTS},
    {"keep-deadline", no_argument, NULL, O_KEEP},
    {"per-change", no_argument, NULL, O_PERCHANGE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* Which options a command takes: a string of the O_* codes it allows. */
static int pr_allowed(const int *allow, int c) {
  for (; *allow; allow++)
    if (*allow == c) return 1;
  return 0;
}

static int pr_number(const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (!*text || *end || errno || v < min || v > max) return -1;
  *out = v;
  return 0;
}

/*
 * Parses argv: options (from `allow`, any position) into o, positionals
 * into pos.  Returns 0, -1 after printing the help (exit 0), or an exit
 * code after printing the error.
 */
static int pr_args(int argc, char **argv, const pr_cmd *self, const int *allow,
                   pr_opts *o, char **pos, int maxpos, int *npos) {
  memset(o, 0, sizeof *o);
  *npos = 0;
  optind = 0; /* 0: GNU getopt starts over */
  opterr = 0;
  for (;;) {
    int li = -1;
    /* The element getopt reads now: argv[optind - 1] after it is the one
       before when it stops inside one ("-50" is '5', then '0'). */
    int at = optind > 0 ? optind : 1;
    int c = getopt_long(argc, argv, "-h", pr_options, &li);
    if (c == -1) break;
    if (c == 1) {
      if (*npos >= maxpos)
        return pr_usage_error(self, "unexpected argument \"%s\"", optarg);
      pos[(*npos)++] = optarg;
      continue;
    }
    if (c == 'h') {
      printf("usage: %s", self->usage);
      return -1;
    }
    /* An option of another command: getopt took its value too, so
       argv[optind - 1] may be the value; name the option. */
    if (c != '?' && !pr_allowed(allow, c) && li >= 0)
      return pr_usage_error(self, "--%s is not an option of gm %s %s",
                            pr_options[li].name, PR_MARKET, self->name);
    if (c == '?' && optopt >= '0' && optopt <= '9')
      return pr_usage_error(self,
                            "%s is a negative number, taken for an option: "
                            "amounts and counts are 0 or more",
                            PR_SHOWN(argv[at], 64));
    if (c == '?' || !pr_allowed(allow, c))
      return pr_usage_error(self, "unknown option or missing value: %s",
                            PR_SHOWN(argv[at], 64));
    switch (c) {
      case O_TITLE:
        o->title = optarg;
        break;
      case O_DESC:
        o->description = optarg;
        break;
      case O_CURRENCY:
        o->currency = optarg;
        break;
      case O_DEADLINE:
        o->deadline = optarg;
        break;
      case O_BUDGET:
        o->budget = optarg;
        break;
      case O_SECURITY:
        o->security = optarg;
        break;
      case O_BOND:
        o->bond_rate = optarg;
        break;
      case O_SMERATE:
        o->sme_rate = optarg;
        break;
      case O_BUYERS:
        o->buyers = optarg;
        break;
      case O_EVALUATORS:
        o->evaluators = optarg;
        break;
      case O_SCORING:
        o->price_weight = optarg;
        break;
      case O_KIND:
        o->kind = optarg;
        break;
      case O_REASON:
        o->reason = optarg;
        break;
      case O_NOTE:
        o->note = optarg;
        break;
      case O_REFERENCE:
        o->reference = optarg;
        break;
      case O_OUT:
        o->out = optarg;
        break;
      case O_SUPPLIER:
        o->supplier = optarg;
        break;
      case O_FROM:
        o->from = optarg;
        break;
      case O_USCC:
        o->uscc = optarg;
        break;
      case O_NAME:
        o->name = optarg;
        break;
      case O_SIZE:
        o->size = optarg;
        break;
      case O_SME:
        o->sme = optarg;
        break;
      case O_REJECT:
        o->reject = optarg;
        break;
      case O_UPHOLD:
        o->uphold = 1;
        o->remedy = optarg;
        break;
      case O_DISMISS:
        o->dismiss = 1;
        break;
      case O_RFQ:
        o->rfq = 1;
        break;
      case O_AFFECTS:
        o->affects = 1;
        break;
      case O_KEEP:
        o->keep = 1;
        break;
      case O_PERCHANGE:
        o->per_change = 1;
        break;
      case O_NOGREEN:
        o->no_green = 1;
        break;
      case O_NOSME:
        o->no_sme = 1;
        break;
      case O_SKIPBAD:
        o->skip_bad = 1;
        break;
      case O_CHECKS:
        o->checks = 1;
        break;
      case O_ITEM:
        if (o->nitems == PR_MAX_ITEMS)
          return pr_usage_error(self, "at most %d --item", PR_MAX_ITEMS);
        o->items[o->nitems++] = optarg;
        break;
      case O_BATCH:
      case O_ROUND:
      case O_LIMIT:
      case O_DAYS: {
        long v;
        long max = c == O_BATCH ? 5000 : c == O_DAYS ? 366 : 1000000;
        long min = c == O_ROUND ? 0 : 1;
        const char *opt = c == O_BATCH   ? "--batch"
                          : c == O_ROUND ? "--round"
                          : c == O_LIMIT ? "--limit"
                                         : "--days";
        if (pr_number(optarg, min, max, &v) != 0)
          return pr_usage_error(self, "%s %s must be a whole number %ld-%ld",
                                opt, PR_SHOWN(optarg, 20), min, max);
        if (c == O_BATCH) o->batch = v;
        if (c == O_ROUND) o->round = v;
        if (c == O_LIMIT) o->limit = v;
        if (c == O_DAYS) o->days = v;
        break;
      }
    }
  }
  return 0;
}

#define PR_ARGS(allow, o, pos, maxpos, npos)                          \
  do {                                                                \
    int rc_ = pr_args(argc, argv, self, allow, o, pos, maxpos, npos); \
    if (rc_) return rc_ == -1 ? GM_CLI_EXIT_OK : rc_;                 \
  } while (0)

static int pr_yuan_arg(const pr_cli *g, const char *what, const char *text,
                       int64_t *fen) {
  char err[256];
  if (pr_parse_yuan(what, text, PR_MAX_AMOUNT, fen, err, sizeof err) == 0)
    return 0;
  g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s", err);
  return -1;
}

static int pr_percent_arg(const pr_cli *g, const char *what, const char *text,
                          int max_bp, int32_t *bp) {
  char err[256];
  int v;
  if (pr_parse_percent(what, text, max_bp, &v, err, sizeof err) == 0) {
    *bp = v;
    return 0;
  }
  g->api->error(g->cli, GM_INVALID_ARGUMENT, "%s", err);
  return -1;
}

static int pr_time_arg(const pr_cli *g, const char *what, const char *text,
                       int64_t *ms) {
  if (g->api->parse_time(text, ms) == 0) return 0;
  g->api->error(g->cli, GM_INVALID_ARGUMENT,
                "%s \"%s\" is not a time; write it like "
                "2026-11-24T09:30:00+08:00",
                what, text);
  return -1;
}

/* Points of 100 ("52.5", "70") into basis points. */
static int pr_points(const char *text, int32_t *bp) {
  char err[64], pc[40];
  int v;
  /* Whole or refused: a longer text cut to fit could read as another. */
  if (strlen(text) > 30) return -1;
  snprintf(pc, sizeof pc, "%s%%", text);
  if (pr_parse_percent("score", pc, 10000, &v, err, sizeof err) != 0) return -1;
  *bp = v;
  return 0;
}

static const char *pr_time(int64_t ms, char out[24]) {
  /* Up to the end of 9999-12-31 in Beijing, as the other markets' CLIs. */
  if (ms <= 0 || ms > PR_RFC3339_MAX_MS) return "-";
  return pr_datetime(ms, out);
}

static const char *pr_sme_of(const char *text, Gm__Procurement__SmeClass *s) {
  static const char *const names[] = {"none", "medium", "small", "micro"};
  for (int i = 0; i < 4; i++)
    if (text && !strcmp(text, names[i])) {
      *s = (Gm__Procurement__SmeClass)i;
      return names[i];
    }
  return NULL;
}

/* A comma list split in place into v[]; -1 (and *n the count given) when
   it names more than max. */
static int pr_split(char *list, char **v, size_t max, size_t *n) {
  char *save = NULL;
  *n = 0;
  for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
    if ((*n)++ < max) v[*n - 1] = t;
  return *n > max ? -1 : 0;
}

/* ---- aligned tables ---- */

/* gm_table (greenmarket/table.h): cells on one line, padded by display
   width, cut at GM_TABLE_CELL_MAX columns but in the last column. */

/* ---- CSV imports: categories, certificates, the calendar ---- */

/* A CSV file read whole: its rows, each with the line it starts on. */
typedef struct pr_csv {
  char ***rows;
  size_t *nf, *line, n, cap;
  char **cur; /* the row being read */
  size_t ncur, capcur, cur_line, at_line;
  int oom;
} pr_csv;

static void pr_csv_field(void *s, size_t len, void *data) {
  pr_csv *c = data;
  if (c->ncur == 0) c->cur_line = c->at_line;
  if (c->ncur == c->capcur) {
    size_t cap = c->capcur ? c->capcur * 2 : 16;
    char **n = realloc(c->cur, cap * sizeof *n);
    if (!n) {
      c->oom = 1;
      return;
    }
    c->cur = n;
    c->capcur = cap;
  }
  char *f = malloc(len + 1);
  if (!f) {
    c->oom = 1;
    return;
  }
  memcpy(f, s ? s : "", s ? len : 0);
  f[s ? len : 0] = '\0';
  /* A NUL would end the text silently: make it a control character, which
     every field's check refuses with its line and column. */
  for (size_t i = 0; s && i < len; i++)
    if (f[i] == '\0') f[i] = '\x01';
  c->cur[c->ncur++] = f;
}

static void pr_csv_row(int term, void *data) {
  pr_csv *c = data;
  (void)term;
  if (c->ncur == 0) return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    char ***r = realloc(c->rows, cap * sizeof *r);
    size_t *nf = realloc(c->nf, cap * sizeof *nf);
    if (r) c->rows = r;
    if (nf) c->nf = nf;
    size_t *ln = realloc(c->line, cap * sizeof *ln);
    if (ln) c->line = ln;
    if (!r || !nf || !ln) {
      c->oom = 1;
      return;
    }
    c->cap = cap;
  }
  char **copy = malloc(c->ncur * sizeof *copy);
  if (!copy) {
    c->oom = 1;
    return;
  }
  memcpy(copy, c->cur, c->ncur * sizeof *copy);
  c->rows[c->n] = copy;
  c->nf[c->n] = c->ncur;
  c->line[c->n] = c->cur_line;
  c->n++;
  c->ncur = 0;
}

static void pr_csv_free(pr_csv *c) {
  for (size_t i = 0; i < c->n; i++) {
    for (size_t k = 0; k < c->nf[i]; k++) free(c->rows[i][k]);
    free(c->rows[i]);
  }
  for (size_t k = 0; k < c->ncur; k++) free(c->cur[k]);
  free(c->rows);
  free(c->nf);
  free(c->line);
  free(c->cur);
  memset(c, 0, sizeof *c);
}

/* Reads `path` (libcsv, line by line so each row knows its line). */
static int pr_csv_read(const pr_cli *g, const char *path, pr_csv *c) {
  struct csv_parser p;
  FILE *f = fopen(path, "r");
  memset(c, 0, sizeof *c);
  if (!f)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT, "cannot read %s: %s",
                         path, strerror(errno));
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
    fclose(f);
    return g->api->error(g->cli, GM_INTERNAL, "cannot start the CSV reader");
  }
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int bad = 0;
  while (!bad && (len = getline(&buf, &cap, f)) > 0) {
    c->at_line++;
    if (c->at_line == 1 && len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
      memmove(buf, buf + 3, (size_t)(len -= 3) + 1); /* a UTF-8 BOM */
    if (csv_parse(&p, buf, (size_t)len, pr_csv_field, pr_csv_row, c) !=
        (size_t)len)
      bad = 1;
  }
  if (!bad && csv_fini(&p, pr_csv_field, pr_csv_row, c) != 0) bad = 1;
  free(buf);
  csv_free(&p);
  fclose(f);
  if (bad || c->oom) {
    size_t at = c->at_line;
    pr_csv_free(c);
    if (bad)
      return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                           "%s line %zu: not CSV (%s); quote fields with "
                           "commas in \"...\" and double a quote inside one",
                           path, at, csv_strerror(csv_error(&p)));
    return g->api->error(g->cli, GM_RESOURCE_EXHAUSTED,
                         "out of memory reading %s", path);
  }
  if (c->n == 0) {
    pr_csv_free(c);
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "%s is empty; its first line names the columns", path);
  }
  return 0;
}

/* The problems found in a file, printed as "line L, column C (name): why". */
typedef struct pr_problems {
  size_t n;
  int printed;
} pr_problems;

static void pr_problem(pr_problems *p, size_t line, int col, const char *name,
                       const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void pr_problem(pr_problems *p, size_t line, int col, const char *name,
                       const char *fmt, ...) {
  va_list ap;
  p->n++;
  if (p->printed >= 50) return;
  p->printed++;
  if (col)
    fprintf(stderr, "line %zu, column %d (%s): ", line, col, name);
  else
    fprintf(stderr, "line %zu: ", line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* Checks the header row against the columns expected. */
static int pr_header(const pr_csv *c, const char *const *cols, int ncols,
                     pr_problems *p) {
  int ok = (int)c->nf[0] == ncols;
  for (int k = 0; ok && k < ncols; k++)
    ok = !strcasecmp(c->rows[0][k], cols[k]);
  if (ok) return 0;
  char want[512] = "";
  for (int k = 0; k < ncols; k++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s",
             k ? "," : "", cols[k]);
  pr_problem(p, c->line[0], 0, "",
             "the header must name the columns %s, in that order", want);
  return -1;
}

static int pr_parse_day_field(const char *text, int end, int64_t *ms) {
  int64_t day;
  if (pr_parse_date(text, &day) != 0) return -1;
  *ms = end ? pr_day_start(day + 1) - 1 : pr_day_start(day);
  return 0;
}

static const char *const pr_cert_cols[] = {
    "number", "holder", "holder_name", "product",    "model",   "category",
    "label",  "grade",  "issuer",      "valid_from", "valid_to"};
static const char *const pr_cat_cols[] = {"code",      "name",   "policy",
                                          "deduction", "labels", "min_grade"};
static const char *const pr_cal_cols[] = {"date", "kind"};

/* Sends `n` messages of `what` in batches through `method`, with
   progress; returns the exit code. */
typedef ProtobufCMessage *(*pr_batch_fn)(void *ctx, size_t from, size_t n);

static int pr_send_batches(const pr_cli *g, const char *method,
                           const char *what, size_t total, size_t batch,
                           pr_batch_fn make, void *ctx, size_t *sent) {
  *sent = 0;
  for (size_t from = 0; from < total; from += batch) {
    size_t n = total - from < batch ? total - from : batch;
    ProtobufCMessage *req = make(ctx, from, n), *reply = NULL;
    gm_status st;
    const char *msg;
    int code =
        g->api->call_quiet(g->cli, PR_MARKET, method, req, &reply, &st, &msg);
    free(req);
    if (code != GM_CLI_EXIT_OK) {
      g->api->progress_end(g->cli);
      g->api->error(g->cli, st,
                    "%s; %zu %s were imported before this batch (lines "
                    "checked locally passed, so the broker saw something "
                    "else: fix it and import again, updates are safe)",
                    msg, *sent, what);
      return code;
    }
    pr_free(&reply);
    *sent += n;
    g->api->progress(g->cli, what, (int64_t)*sent, (int64_t)total);
  }
  g->api->progress_end(g->cli);
  return GM_CLI_EXIT_OK;
}

typedef struct pr_certs_ctx {
  Gm__Procurement__Certificate *certs;
} pr_certs_ctx;

static ProtobufCMessage *pr_cert_batch(void *ctx, size_t from, size_t n) {
  pr_certs_ctx *x = ctx;
  Gm__Procurement__CertificateBatch *b =
      malloc(sizeof *b + n * sizeof(Gm__Procurement__Certificate *));
  gm__procurement__certificate_batch__init(b);
  b->certificates = (Gm__Procurement__Certificate **)(b + 1);
  for (size_t i = 0; i < n; i++) b->certificates[i] = &x->certs[from + i];
  b->n_certificates = n;
  return &b->base;
}

typedef struct pr_cats_ctx {
  Gm__Procurement__Category *cats;
} pr_cats_ctx;

static ProtobufCMessage *pr_cat_batch(void *ctx, size_t from, size_t n) {
  pr_cats_ctx *x = ctx;
  Gm__Procurement__CategoryBatch *b =
      malloc(sizeof *b + n * sizeof(Gm__Procurement__Category *));
  gm__procurement__category_batch__init(b);
  b->categories = (Gm__Procurement__Category **)(b + 1);
  for (size_t i = 0; i < n; i++) b->categories[i] = &x->cats[from + i];
  b->n_categories = n;
  return &b->base;
}

typedef struct pr_cal_ctx {
  Gm__Procurement__CalendarDay *days;
} pr_cal_ctx;

static ProtobufCMessage *pr_cal_batch(void *ctx, size_t from, size_t n) {
  pr_cal_ctx *x = ctx;
  Gm__Procurement__CalendarRequest *b =
      malloc(sizeof *b + n * sizeof(Gm__Procurement__CalendarDay *));
  gm__procurement__calendar_request__init(b);
  b->days = (Gm__Procurement__CalendarDay **)(b + 1);
  for (size_t i = 0; i < n; i++) b->days[i] = &x->days[from + i];
  b->n_days = n;
  return &b->base;
}

static int pr_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks certificate rows into certs[]; *n the rows kept. */
static void pr_check_cert_rows(const pr_csv *c, char **cats, size_t ncats,
                               Gm__Procurement__Certificate *certs, size_t *n,
                               pr_problems *p) {
  char why[256];
  /* Numbers seen, to find duplicates: sorted copies with their lines. */
  *n = 0;
  for (size_t r = 1; r < c->n; r++) {
    char **f = c->rows[r];
    size_t line = c->line[r], before = p->n;
    if (c->nf[r] != 11) {
      pr_problem(p, line, 0, "", "%zu columns; a certificate has 11 (%s ...)",
                 c->nf[r], pr_cert_cols[0]);
      continue;
    }
    if (!pr_valid_name(f[0], 1, 64, 1))
      pr_problem(p, line, 1, "number",
                 "\"%s\" is not 1-64 letters, digits and . _ - /",
                 PR_SHOWN(f[0], 64));
    if (gm_uscc_check(f[1], strlen(f[1]), why, sizeof why) != 0)
      pr_problem(p, line, 2, "holder", "%s", why);
    for (int k = 2; k <= 4; k++)
      if (pr_valid_text(pr_cert_cols[k], f[k], k == 4 ? 100 : 200, 0, why,
                        sizeof why) != 0)
        pr_problem(p, line, k + 1, pr_cert_cols[k], "%s", why);
    if (!f[3][0])
      pr_problem(p, line, 4, "product", "empty; name the certified product");
    if (!bsearch(&f[5], cats, ncats, sizeof *cats, pr_cmp_str))
      pr_problem(p, line, 6, "category",
                 "\"%s\" is not in the catalogue; import the categories "
                 "first (gm procurement categories lists them)",
                 PR_SHOWN(f[5], 32));
    int label_ok = pr_label_known(f[6]);
    if (!label_ok)
      pr_problem(p, line, 7, "label",
                 "\"%s\" is not a label type (energy_saving, "
                 "environmental, low_carbon or gb_*; see gm procurement "
                 "--help)",
                 PR_SHOWN(f[6], 40));
    long grade = 0;
    if (f[7][0] && pr_number(f[7], 0, 3, &grade) != 0)
      pr_problem(p, line, 8, "grade", "\"%s\" is not 0-3 stars",
                 PR_SHOWN(f[7], 16));
    else if (label_ok && pr_label_graded(f[6]) && grade < 1)
      pr_problem(p, line, 8, "grade",
                 "a %s label is graded 1-3 stars; give the grade", f[6]);
    else if (label_ok && !pr_label_graded(f[6]) && grade != 0)
      pr_problem(p, line, 8, "grade", "a %s label has no grade; leave it empty",
                 f[6]);
    if (pr_valid_text("issuer", f[8], 200, 0, why, sizeof why) != 0 || !f[8][0])
      pr_problem(p, line, 9, "issuer", "%s",
                 f[8][0] ? why : "empty; name the certification body");
    int64_t from = 0, to = 0;
    if (pr_parse_day_field(f[9], 0, &from) != 0)
      pr_problem(p, line, 10, "valid_from", "\"%s\" is not a date YYYY-MM-DD",
                 PR_SHOWN(f[9], 24));
    if (pr_parse_day_field(f[10], 1, &to) != 0)
      pr_problem(p, line, 11, "valid_to", "\"%s\" is not a date YYYY-MM-DD",
                 PR_SHOWN(f[10], 24));
    else if (from && to < from)
      pr_problem(p, line, 11, "valid_to", "%s is before valid_from %s", f[10],
                 f[9]);
    if (p->n != before) continue;
    Gm__Procurement__Certificate *x = &certs[(*n)++];
    gm__procurement__certificate__init(x);
    x->number = f[0];
    x->holder = f[1];
    x->holder_name = f[2];
    x->product = f[3];
    x->model = f[4];
    x->category = f[5];
    x->label = f[6];
    x->grade = (int32_t)grade;
    x->issuer = f[8];
    x->valid_from_ms = from;
    x->valid_to_ms = to;
  }
}

/* Lines whose certificate number an earlier line has. */
typedef struct pr_numline {
  const char *number;
  size_t line;
} pr_numline;

static int pr_cmp_numline(const void *a, const void *b) {
  const pr_numline *x = a, *y = b;
  int c = strcmp(x->number, y->number);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Lines repeating the first column of an earlier line: each a problem of
   that line, naming the earlier one (`what`: "certificate", "category"). */
static void pr_check_duplicates(const pr_csv *c, pr_problems *p,
                                const char *col, const char *what) {
  pr_numline *v = malloc(c->n * sizeof *v);
  size_t n = 0;
  if (!v) return;
  for (size_t r = 1; r < c->n; r++)
    if (c->nf[r] >= 1) v[n++] = (pr_numline){c->rows[r][0], c->line[r]};
  qsort(v, n, sizeof *v, pr_cmp_numline);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(v[i].number, v[i - 1].number))
      pr_problem(p, v[i].line, 1, col, "%s is also on line %zu; each %s once",
                 v[i].number, v[i - 1].line, what);
  free(v);
}

/* Which of keys[0..n) repeat an earlier one: drop[i] set (one sort, by key
   then position).  -1 when out of memory. */
static int pr_later_repeats(const char *const *keys, size_t n,
                            unsigned char *drop) {
  pr_numline *v = malloc((n + 1) * sizeof *v);
  if (!v) return -1;
  for (size_t i = 0; i < n; i++) v[i] = (pr_numline){keys[i], i};
  qsort(v, n, sizeof *v, pr_cmp_numline);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(v[i].number, v[i - 1].number)) drop[v[i].line] = 1;
  free(v);
  return 0;
}

static int pr_import_certificates(const pr_cli *g, const pr_csv *c,
                                  const pr_opts *o) {
  /* The catalogue's categories, for the category column. */
  Gm__Procurement__CategoryListRequest lq =
      GM__PROCUREMENT__CATEGORY_LIST_REQUEST__INIT;
  ProtobufCMessage *reply;
  int code = pr_call(g, "category.list", &lq.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  Gm__Procurement__CategoryList *cl = (void *)reply;
  char **cats = malloc((cl->n_categories + 1) * sizeof *cats);
  for (size_t i = 0; i < cl->n_categories; i++)
    cats[i] = cl->categories[i]->code;
  qsort(cats, cl->n_categories, sizeof *cats, pr_cmp_str);
  pr_problems p = {0};
  Gm__Procurement__Certificate *certs = malloc(c->n * sizeof *certs);
  size_t n = 0;
  if (pr_header(c, pr_cert_cols, 11, &p) == 0) {
    pr_check_cert_rows(c, cats, cl->n_categories, certs, &n, &p);
    pr_check_duplicates(c, &p, pr_cert_cols[0], "certificate");
  }
  if (p.n > (size_t)p.printed)
    fprintf(stderr, "... and %zu more\n", p.n - (size_t)p.printed);
  if (p.n && (!o->skip_bad || n == 0 || c->nf[0] != 11)) {
    code = g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "nothing imported: %zu problem(s) in %zu lines; fix "
                         "them, or run again with --skip-bad to import the "
                         "good lines",
                         p.n, c->n - 1);
  } else {
    size_t sent;
    pr_certs_ctx x = {certs};
    /* --skip-bad with duplicates: keep the first of each number (sorted
       by number, then by position: linear after the sort). */
    if (p.n && n > 1) {
      const char **keys = malloc(n * sizeof *keys);
      unsigned char *drop = calloc(n, 1);
      for (size_t i = 0; keys && i < n; i++) keys[i] = certs[i].number;
      if (!keys || !drop || pr_later_repeats(keys, n, drop) != 0) {
        free(keys);
        free(drop);
        free(certs);
        free(cats);
        pr_free(&reply);
        return g->api->error(g->cli, GM_RESOURCE_EXHAUSTED, "out of memory");
      }
      size_t k = 0;
      for (size_t i = 0; i < n; i++)
        if (!drop[i]) certs[k++] = certs[i];
      n = k;
      free(keys);
      free(drop);
    }
    code = pr_send_batches(g, "certificate.put", "certificates", n,
                           o->batch ? (size_t)o->batch : 2000, pr_cert_batch,
                           &x, &sent);
    if (code == GM_CLI_EXIT_OK)
      printf("imported %zu certificate%s%s\n", sent, sent == 1 ? "" : "s",
             p.n ? " (the lines listed were skipped)" : "");
  }
  free(certs);
  free(cats);
  pr_free(&reply);
  return code;
}

static int pr_import_categories(const pr_cli *g, const pr_csv *c,
                                const pr_opts *o) {
  pr_problems p = {0};
  Gm__Procurement__Category *cats = calloc(c->n, sizeof *cats);
  char **labels = calloc(c->n, sizeof *labels);
  size_t n = 0;
  int code;
  if (pr_header(c, pr_cat_cols, 6, &p) == 0) {
    for (size_t r = 1; r < c->n; r++) {
      char **f = c->rows[r], err[256];
      size_t line = c->line[r], before = p.n;
      if (c->nf[r] != 6) {
        pr_problem(&p, line, 0, "", "%zu columns; a category has 6 (%s ...)",
                   c->nf[r], pr_cat_cols[0]);
        continue;
      }
      int policy = !strcmp(f[2], "priority")           ? 1
                   : !strcmp(f[2], "mandatory")        ? 2
                   : !strcmp(f[2], "none") || !f[2][0] ? 0
                                                       : -1;
      if (policy < 0)
        pr_problem(&p, line, 3, "policy",
                   "\"%s\" is not none, priority or mandatory",
                   PR_SHOWN(f[2], 20));
      int bp = 0;
      if (f[3][0] &&
          pr_parse_percent("deduction", f[3], 2000, &bp, err, sizeof err) != 0)
        pr_problem(&p, line, 4, "deduction", "%s", err);
      long min = 0;
      if (f[5][0] && pr_number(f[5], 0, 3, &min) != 0)
        pr_problem(&p, line, 6, "min_grade", "\"%s\" is not 0-3 stars",
                   PR_SHOWN(f[5], 16));
      /* labels: separated by ';' in the file, by ',' on the wire */
      labels[n] = strdup(f[4]);
      for (char *q = labels[n]; *q; q++)
        if (*q == ';') *q = ',';
      if (p.n == before && pr_check_category(f[0], f[1], policy, bp, labels[n],
                                             (int)min, err, sizeof err) != 0) {
        /* The column its message starts with. */
        static const char *const starts[] = {"code",      "name",  "policy",
                                             "deduction", "label", "minimum"};
        int col = 0;
        for (int k = 0; k < 6 && !col; k++)
          if (!strncmp(err, starts[k], strlen(starts[k]))) col = k + 1;
        pr_problem(&p, line, col, col ? pr_cat_cols[col - 1] : "", "%s", err);
      }
      if (p.n != before) {
        free(labels[n]);
        labels[n] = NULL;
        continue;
      }
      Gm__Procurement__Category *x = &cats[n];
      gm__procurement__category__init(x);
      x->code = f[0];
      x->name = f[1];
      x->policy = (Gm__Procurement__Policy)policy;
      x->deduction_bp = bp;
      x->min_grade = (int32_t)min;
      char **ls = calloc(PR_MAX_ITEMS, sizeof *ls);
      /* More labels than there are label types failed the check above. */
      (void)pr_split(labels[n], ls, PR_MAX_ITEMS, &x->n_labels);
      if (x->n_labels > PR_MAX_ITEMS) x->n_labels = PR_MAX_ITEMS;
      x->labels = ls;
      n++;
    }
    pr_check_duplicates(c, &p, pr_cat_cols[0], "category");
    /* --skip-bad: the first line of each code. */
    if (p.n && n > 1) {
      const char **keys = malloc(n * sizeof *keys);
      unsigned char *drop = calloc(n, 1);
      for (size_t i = 0; keys && i < n; i++) keys[i] = cats[i].code;
      if (keys && drop && pr_later_repeats(keys, n, drop) == 0) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
          if (drop[i]) {
            free(cats[i].labels);
            free(labels[i]);
            continue;
          }
          cats[k] = cats[i];
          labels[k++] = labels[i];
        }
        n = k;
      } else { /* out of memory: import nothing */
        for (size_t i = 0; i < n; i++) {
          free(cats[i].labels);
          free(labels[i]);
        }
        p.n++;
        n = 0;
      }
      free(keys);
      free(drop);
    }
  }
  if (p.n && (!o->skip_bad || n == 0)) {
    code = g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "nothing imported: %zu problem(s); fix them, or run "
                         "again with --skip-bad to import the good lines",
                         p.n);
  } else {
    size_t sent;
    pr_cats_ctx x = {cats};
    code = pr_send_batches(g, "category.put", "categories", n, 250,
                           pr_cat_batch, &x, &sent);
    if (code == GM_CLI_EXIT_OK)
      printf("imported %zu categor%s\n", sent, sent == 1 ? "y" : "ies");
  }
  for (size_t i = 0; i < n; i++) {
    free(cats[i].labels);
    free(labels[i]);
  }
  free(labels);
  free(cats);
  return code;
}

static int pr_import_calendar(const pr_cli *g, const pr_csv *c,
                              const pr_opts *o) {
  pr_problems p = {0};
  Gm__Procurement__CalendarDay *days = calloc(c->n, sizeof *days);
  size_t n = 0;
  int code;
  if (pr_header(c, pr_cal_cols, 2, &p) == 0)
    for (size_t r = 1; r < c->n; r++) {
      char **f = c->rows[r];
      int64_t day;
      if (c->nf[r] != 2) {
        pr_problem(&p, c->line[r], 0, "", "%zu columns; a day has 2", c->nf[r]);
        continue;
      }
      if (pr_parse_date(f[0], &day) != 0) {
        pr_problem(&p, c->line[r], 1, "date", "\"%s\" is not a date YYYY-MM-DD",
                   PR_SHOWN(f[0], 24));
        continue;
      }
      int weekend = pr_weekday(day) == 0 || pr_weekday(day) == 6;
      if (strcmp(f[1], "holiday") && strcmp(f[1], "working") &&
          strcmp(f[1], "normal")) {
        if (!strcmp(f[1], "statutory"))
          pr_problem(&p, c->line[r], 2, "kind",
                     "statutory is the shipped calendar's own kind (a "
                     "holiday the law fixes, already in force); enter "
                     "holiday, working or normal");
        else
          pr_problem(&p, c->line[r], 2, "kind",
                     "\"%s\" is not holiday, working or normal",
                     PR_SHOWN(f[1], 24));
        continue;
      }
      if ((!strcmp(f[1], "holiday") && weekend) ||
          (!strcmp(f[1], "working") && !weekend)) {
        pr_problem(&p, c->line[r], 2, "kind",
                   "%s is a %s; a holiday is a weekday off, a working day a "
                   "weekend day worked",
                   f[0], weekend ? "weekend day" : "weekday");
        continue;
      }
      gm__procurement__calendar_day__init(&days[n]);
      days[n].date = f[0];
      days[n].kind = f[1];
      n++;
    }
  if (p.n && (!o->skip_bad || n == 0)) {
    code = g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "nothing imported: %zu problem(s); fix them, or run "
                         "again with --skip-bad",
                         p.n);
  } else {
    size_t sent;
    pr_cal_ctx x = {days};
    code = pr_send_batches(g, "calendar.put", "days", n, 250, pr_cal_batch, &x,
                           &sent);
    if (code == GM_CLI_EXIT_OK)
      printf("imported %zu calendar day%s\n", sent, sent == 1 ? "" : "s");
  }
  free(days);
  return code;
}

static int pr_cmd_import(const pr_cli *g, int argc, char **argv,
                         const pr_cmd *self) {
  static const int allow[] = {O_SKIPBAD, O_BATCH, 0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, 2, &np);
  if (np != 2) return pr_usage_error(self, "name what to import and the file");
  if (strcmp(pos[0], "certificates") && strcmp(pos[0], "categories") &&
      strcmp(pos[0], "calendar"))
    return pr_usage_error(
        self, "\"%s\" is not categories, certificates or calendar", pos[0]);
  pr_csv c;
  int code = pr_csv_read(g, pos[1], &c);
  if (code) return code;
  if (!strcmp(pos[0], "certificates"))
    code = pr_import_certificates(g, &c, &o);
  else if (!strcmp(pos[0], "categories"))
    code = pr_import_categories(g, &c, &o);
  else
    code = pr_import_calendar(g, &c, &o);
  pr_csv_free(&c);
  return code;
}

/* ---- the catalogue and the register ---- */

static const char *pr_policy_name(Gm__Procurement__Policy p) {
  return p == GM__PROCUREMENT__POLICY__POLICY_MANDATORY  ? "mandatory"
         : p == GM__PROCUREMENT__POLICY__POLICY_PRIORITY ? "priority"
                                                         : "none";
}

static const char *pr_status_name(Gm__Procurement__CertStatus s) {
  return s == GM__PROCUREMENT__CERT_STATUS__CERT_VALID       ? "valid"
         : s == GM__PROCUREMENT__CERT_STATUS__CERT_SUSPENDED ? "suspended"
         : s == GM__PROCUREMENT__CERT_STATUS__CERT_REVOKED   ? "revoked"
                                                             : "?";
}

static void pr_print_categories(const ProtobufCMessage *m) {
  const Gm__Procurement__CategoryList *l = (const void *)m;
  static const char *const head[] = {"CODE",      "NAME",      "POLICY",
                                     "DEDUCTION", "MIN GRADE", "LABELS"};
  gm_table t = {6, head, 0x8, NULL, 0, 0};
  for (size_t i = 0; i < l->n_categories; i++) {
    const Gm__Procurement__Category *c = l->categories[i];
    char pc[16], grade[8], labels[512] = "";
    for (size_t k = 0; k < c->n_labels; k++)
      snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s",
               k ? "," : "", c->labels[k]);
    snprintf(grade, sizeof grade, "%d", c->min_grade);
    gm_table_row(&t, c->code, c->name, pr_policy_name(c->policy),
                 c->policy == GM__PROCUREMENT__POLICY__POLICY_PRIORITY
                     ? pr_percent(c->deduction_bp, pc)
                     : "-",
                 c->min_grade ? grade : "-", labels);
  }
  gm_table_print(&t, stdout);
}

static int pr_cmd_categories(const pr_cli *g, int argc, char **argv,
                             const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 0, &np);
  Gm__Procurement__CategoryListRequest q =
      GM__PROCUREMENT__CATEGORY_LIST_REQUEST__INIT;
  return pr_show(g, "category.list", &q.base, pr_print_categories);
}

static void pr_print_certificate(const ProtobufCMessage *m) {
  const Gm__Procurement__Certificate *c = (const void *)m;
  char a[24], b[24], d[24];
  printf(
      "certificate  %s\nholder       %s %s\nproduct      %s %s\n"
      "category     %s\nlabel        %s",
      c->number, c->holder, c->holder_name, c->product, c->model, c->category,
      c->label);
  if (c->grade) printf(" (%d star%s)", c->grade, c->grade > 1 ? "s" : "");
  printf("\nissuer       %s\nvalid        %s .. %s\nstatus       %s", c->issuer,
         pr_time(c->valid_from_ms, a), pr_time(c->valid_to_ms, b),
         pr_status_name(c->status));
  if (c->status != GM__PROCUREMENT__CERT_STATUS__CERT_VALID ||
      c->status_reason[0])
    printf(" since %s%s%s", pr_time(c->status_ms, d),
           c->status_reason[0] ? ": " : "", c->status_reason);
  printf("\n");
}

static int pr_cmd_certificate(const pr_cli *g, int argc, char **argv,
                              const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 1, &np);
  if (np != 1) return pr_usage_error(self, "name the certificate number");
  Gm__Procurement__CertificateRequest q =
      GM__PROCUREMENT__CERTIFICATE_REQUEST__INIT;
  q.number = pos[0];
  return pr_show(g, "certificate.get", &q.base, pr_print_certificate);
}

static int pr_cmd_cert_status(const pr_cli *g, int argc, char **argv,
                              const pr_cmd *self) {
  static const int allow[] = {O_REASON, 0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 1, &np);
  if (np != 1) return pr_usage_error(self, "name the certificate number");
  Gm__Procurement__CertificateStatusRequest q =
      GM__PROCUREMENT__CERTIFICATE_STATUS_REQUEST__INIT;
  q.number = pos[0];
  q.status =
      !strcmp(argv[0], "suspend") ? GM__PROCUREMENT__CERT_STATUS__CERT_SUSPENDED
      : !strcmp(argv[0], "revoke") ? GM__PROCUREMENT__CERT_STATUS__CERT_REVOKED
                                   : GM__PROCUREMENT__CERT_STATUS__CERT_VALID;
  if (q.status != GM__PROCUREMENT__CERT_STATUS__CERT_VALID && !o.reason)
    return pr_usage_error(self, "--reason is required: say why");
  q.reason = (char *)(o.reason ? o.reason : "");
  return pr_show(g, "certificate.status", &q.base, pr_print_certificate);
}

static void pr_print_calendar(const ProtobufCMessage *m) {
  const Gm__Procurement__Calendar *c = (const void *)m;
  if (c->stored) {
    printf("stored %d day%s\n", c->stored, c->stored == 1 ? "" : "s");
    return;
  }
  if (!c->n_days) printf("no holidays or worked weekend days in the range\n");
  for (size_t i = 0; i < c->n_days; i++)
    printf("%s  %s\n", c->days[i]->date, c->days[i]->kind);
  for (size_t i = 0; i < c->n_notes; i++) printf("note: %s\n", c->notes[i]);
}

static int pr_cmd_calendar(const pr_cli *g, int argc, char **argv,
                           const pr_cmd *self) {
  static const int allow[] = {O_FROM, O_DAYS, 0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, PR_MAX_POS, &np);
  Gm__Procurement__CalendarRequest q = GM__PROCUREMENT__CALENDAR_REQUEST__INIT;
  if (np == 0) {
    q.from = (char *)(o.from ? o.from : "");
    q.days_ahead = (int32_t)o.days;
    return pr_show(g, "calendar.get", &q.base, pr_print_calendar);
  }
  /* DATE=holiday|working|normal ... */
  Gm__Procurement__CalendarDay days[PR_MAX_POS], *pd[PR_MAX_POS];
  for (int i = 0; i < np; i++) {
    char *eq = strchr(pos[i], '=');
    if (!eq)
      return pr_usage_error(self, "\"%s\" is not DATE=holiday|working|normal",
                            pos[i]);
    *eq = '\0';
    gm__procurement__calendar_day__init(&days[i]);
    days[i].date = pos[i];
    days[i].kind = eq + 1;
    pd[i] = &days[i];
  }
  q.days = pd;
  q.n_days = (size_t)np;
  return pr_show(g, "calendar.put", &q.base, pr_print_calendar);
}

static void pr_print_party(const ProtobufCMessage *m) {
  const Gm__Procurement__Party *p = (const void *)m;
  static const char *const sizes[] = {"none", "medium", "small", "micro"};
  printf("%s: %s, credit code %s, SME size %s\n", p->id, p->name, p->uscc,
         sizes[p->size <= 3 ? p->size : 0]);
}

static int pr_cmd_register(const pr_cli *g, int argc, char **argv,
                           const pr_cmd *self) {
  static const int allow[] = {O_USCC, O_NAME, O_SIZE, 0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 0, &np);
  if (!o.uscc || !o.name)
    return pr_usage_error(self, "--uscc and --name are required");
  Gm__Procurement__Party q = GM__PROCUREMENT__PARTY__INIT;
  char why[200];
  if (gm_uscc_check(o.uscc, strlen(o.uscc), why, sizeof why) != 0)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT, "--uscc %s: %s", o.uscc,
                         why);
  q.uscc = (char *)o.uscc;
  q.name = (char *)o.name;
  if (o.size && !pr_sme_of(o.size, &q.size))
    return pr_usage_error(self, "--size must be none, medium, small or micro");
  if (!o.size) {
    /* Registering again (a new name or code) keeps the size registered:
       only --size changes it, as the SME deduction depends on it. */
    Gm__Procurement__PartyRequest pq = GM__PROCUREMENT__PARTY_REQUEST__INIT;
    ProtobufCMessage *party = NULL;
    gm_status st;
    const char *msg;
    int code = g->api->call_quiet(g->cli, PR_MARKET, "party.get", &pq.base,
                                  &party, &st, &msg);
    if (code == GM_CLI_EXIT_OK && party)
      q.size = ((Gm__Procurement__Party *)party)->size;
    pr_free(&party);
    if (code != GM_CLI_EXIT_OK && st != GM_NOT_FOUND) {
      g->api->error(g->cli, st, "%s", msg);
      return code; /* 2 when no broker answered, like every command */
    }
  }
  return pr_show(g, "party.register", &q.base, pr_print_party);
}

/* ---- tenders ---- */

static void pr_print_view(const ProtobufCMessage *m) {
  const Gm__Procurement__TenderView *v = (const void *)m;
  const Gm__Procurement__Tender *t = v->tender;
  char y1[32], y2[32], d[24], pc[16];
  static const char *const methods[] = {"open tender",
                                        "request for quotations"};
  static const char *const kinds[] = {"goods", "services", "works"};
  printf("tender     %s  (%s, version %d)\ntitle      %s\n", t->id, t->state,
         t->version, t->title);
  if (t->description[0]) printf("about      %s\n", t->description);
  printf("agency     %s", t->agency);
  for (size_t i = 0; i < t->n_buyers; i++)
    printf("%s%s", i ? ", " : "  joint buyers: ", t->buyers[i]);
  printf("\nbudget     %s %s   %s, %s, ", pr_yuan(t->budget, y1), t->currency,
         kinds[t->kind <= 2 ? t->kind : 0], methods[t->method ? 1 : 0]);
  if (t->award_method == GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING) {
    printf("comprehensive scoring (price %s; committee",
           pr_percent(t->price_weight_bp, pc));
    for (size_t i = 0; i < t->n_evaluators; i++)
      printf(" %s", t->evaluators[i]);
    printf(")\n");
  } else {
    printf("lowest evaluated price\n");
  }
  printf("bids until %s (Asia/Shanghai)\n", pr_time(t->deadline_ms, d));
  printf(
      "security   %s %s   performance bond %s   green preference %s   SME "
      "preference %s\n",
      pr_yuan(t->bid_security, y1), t->currency, pr_percent(t->bond_bp, pc),
      t->green_preference ? "yes" : "no",
      t->kind == GM__PROCUREMENT__KIND__KIND_WORKS ? "none (works)"
      : t->sme_preference
          ? pr_percent(t->sme_bp ? t->sme_bp : PR_SME_DEFAULT_BP, y2)
          : "no");
  if (t->bids || t->round) {
    printf("opened     ");
    if (t->opened_ms) printf("%s: ", pr_time(t->opened_ms, d));
    printf("%d bid%s, evaluation round %d%s%s\n", t->bids,
           t->bids == 1 ? "" : "s", t->round, t->seed[0] ? ", draw seed " : "",
           t->seed);
  }
  /* The last award stays numbered after it ended (unsuccessful,
     cancelled); notice answers only while the tender is live. */
  int in_force = !strcmp(t->state, "awarded") ||
                 !strcmp(t->state, "contracted") ||
                 !strcmp(t->state, "complete");
  if (t->award_number && v->archived_ms)
    printf("award      %d%s (gm procurement export %s has its record)\n",
           t->award_number, in_force ? "" : ", no longer in force", t->id);
  else if (t->award_number && in_force)
    printf("award      %d in force (gm procurement notice %s)\n",
           t->award_number, t->id);
  else if (t->award_number)
    printf(
        "award      %d, no longer in force (gm procurement notice %s "
        "says why)\n",
        t->award_number, t->id);
  if (t->reason[0]) printf("reason     %s\n", t->reason);
  if (v->archived_ms)
    printf(
        "archived   %s: this is the ledger's record (gm procurement "
        "export %s for all of it)\n",
        pr_time(v->archived_ms, d), t->id);
  static const char *const head[] = {
      "ITEM", "CATEGORY", "POLICY", "QUANTITY", "UNIT", "ITEM BUDGET", "BUYER"};
  gm_table tb = {7, head, 0x28, NULL, 0, 0};
  for (size_t i = 0; i < t->n_items; i++) {
    const Gm__Procurement__Item *it = t->items[i];
    char q[24], pol[48];
    snprintf(q, sizeof q, "%lld", (long long)it->quantity);
    if (!t->version)
      snprintf(pol, sizeof pol, "(at publish)");
    else if (it->policy == GM__PROCUREMENT__POLICY__POLICY_PRIORITY)
      snprintf(pol, sizeof pol, "priority %s",
               pr_percent(it->deduction_bp, pc));
    else
      snprintf(pol, sizeof pol, "%s", pr_policy_name(it->policy));
    gm_table_row(&tb, it->id, it->category, pol, q, it->unit,
                 it->budget ? pr_yuan(it->budget, y1) : "-", it->buyer);
  }
  gm_table_print(&tb, stdout);
  if (v->n_demand) {
    printf(
        "joint demand received, not yet merged (publish adds it to the "
        "items):\n");
    gm_table db = {7, head, 0x28, NULL, 0, 0};
    for (size_t i = 0; i < v->n_demand; i++) {
      const Gm__Procurement__Item *it = v->demand[i];
      char q[24];
      snprintf(q, sizeof q, "%lld", (long long)it->quantity);
      gm_table_row(&db, it->id, it->category, "(at publish)", q, it->unit,
                   it->budget ? pr_yuan(it->budget, y1) : "-", it->buyer);
    }
    gm_table_print(&db, stdout);
  }
  if (v->demand_replaced)
    printf(
        "note: this demand replaced the one you sent before (a buyer's "
        "latest demand is the one merged)\n");
  for (size_t i = 0; i < v->n_amendments; i++) {
    const Gm__Procurement__Amendment *a = v->amendments[i];
    printf("amendment  version %d, %s: %s (", a->version,
           pr_time(a->time_ms, d), a->note);
    for (size_t k = 0; k < a->n_fields; k++)
      printf("%s%s", k ? ", " : "", a->fields[k]);
    printf(")\n");
  }
}

/* ID:CATEGORY:QUANTITY:UNIT[:BUDGET[:BUYER]] into it (pointing into text). */
static int pr_item_arg(const pr_cli *g, char *text, Gm__Procurement__Item *it) {
  char *f[6] = {0};
  const char *whole = strdupa(text);
  size_t n = 0;
  for (char *p = text, *tok; n < 6 && (tok = strsep(&p, ":"));) f[n++] = tok;
  gm__procurement__item__init(it);
  long qty;
  /* The shape right but the quantity not: say so, in its unit. */
  if (n >= 4 && f[0][0] && f[1][0] && f[3][0] &&
      pr_number(f[2], 1, PR_MAX_QUANTITY, &qty) != 0)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "--item %s: quantity \"%s\" is not a whole "
                         "number of %s from 1 to %lld; a quantity counts "
                         "whole units (give a smaller unit for a part)",
                         PR_SHOWN(whole, 120), PR_SHOWN(f[2], 20),
                         PR_SHOWN(f[3], 16), (long long)PR_MAX_QUANTITY);
  if (n < 4 || !f[0][0] || !f[1][0] ||
      pr_number(f[2], 1, PR_MAX_QUANTITY, &qty) != 0)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "--item %s is not ID:CATEGORY:QUANTITY:UNIT"
                         "[:BUDGET[:BUYER]] (e.g. I1:GB-INSUL:300:m2:45000.00)",
                         PR_SHOWN(whole, 120));
  it->id = f[0];
  it->category = f[1];
  it->quantity = qty;
  it->unit = f[3];
  if (n > 4 && f[4][0] && pr_yuan_arg(g, "item budget", f[4], &it->budget))
    return GM_CLI_EXIT_ERROR;
  if (n > 5) it->buyer = f[5];
  return 0;
}

static int pr_cmd_draft(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {
      O_TITLE, O_DESC,    O_CURRENCY, O_DEADLINE,   O_BUDGET,  O_SECURITY,
      O_BOND,  O_SMERATE, O_BUYERS,   O_EVALUATORS, O_SCORING, O_KIND,
      O_ITEM,  O_RFQ,     O_NOGREEN,  O_NOSME,      0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 1, &np);
  if (np != 1) return pr_usage_error(self, "name the tender id");
  if (!o.title || !o.budget || !o.deadline || !o.nitems)
    return pr_usage_error(self,
                          "--title, --budget, --deadline and at least one "
                          "--item are required");
  Gm__Procurement__Tender t = GM__PROCUREMENT__TENDER__INIT;
  Gm__Procurement__Item items[PR_MAX_ITEMS], *pitems[PR_MAX_ITEMS];
  char *buyers[PR_MAX_BUYERS], *evs[PR_MAX_EVALUATORS];
  t.id = pos[0];
  t.title = (char *)o.title;
  t.description = (char *)(o.description ? o.description : "");
  t.currency = (char *)(o.currency ? o.currency : "CNY");
  char err[256];
  if (pr_check_currency(t.currency, err, sizeof err) != 0)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT, "--%s", err);
  if (pr_yuan_arg(g, "--budget", o.budget, &t.budget) ||
      pr_time_arg(g, "--deadline", o.deadline, &t.deadline_ms) ||
      (o.security &&
       pr_yuan_arg(g, "--security", o.security, &t.bid_security)) ||
      (o.bond_rate &&
       pr_percent_arg(g, "--bond-rate", o.bond_rate, 1000, &t.bond_bp)) ||
      (o.sme_rate &&
       pr_percent_arg(g, "--sme-rate", o.sme_rate, 2000, &t.sme_bp)))
    return GM_CLI_EXIT_ERROR;
  /* On the wire 0 is the default rate (10%): --sme-rate 0% must not
     quietly become 10%. */
  if (o.sme_rate && o.no_sme)
    return pr_usage_error(self,
                          "--sme-rate and --no-sme contradict each other: "
                          "give --sme-rate 10%%-20%% for an SME deduction, "
                          "or --no-sme for none");
  if (o.sme_rate && t.sme_bp < 1000)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "--sme-rate %s is below 10%%, the smallest SME "
                         "deduction the measures allow (10%%-20%%, MOF/MIIT "
                         "2020 as raised in 2022); give 10%%-20%% (or leave "
                         "it out for 10%%), or --no-sme for no SME deduction",
                         PR_SHOWN(o.sme_rate, 16));
  t.method = o.rfq ? GM__PROCUREMENT__METHOD__METHOD_RFQ
                   : GM__PROCUREMENT__METHOD__METHOD_OPEN;
  if (o.kind) {
    if (!strcmp(o.kind, "services"))
      t.kind = GM__PROCUREMENT__KIND__KIND_SERVICES;
    else if (!strcmp(o.kind, "works"))
      t.kind = GM__PROCUREMENT__KIND__KIND_WORKS;
    else if (strcmp(o.kind, "goods"))
      return pr_usage_error(self, "--kind must be goods, services or works");
  }
  if (o.price_weight) {
    t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
    if (pr_percent_arg(g, "--scoring price weight", o.price_weight, 10000,
                       &t.price_weight_bp))
      return GM_CLI_EXIT_ERROR;
    if (!o.evaluators)
      return pr_usage_error(self, "--scoring needs --evaluators a,b,...");
    char *list = strdupa(o.evaluators);
    if (pr_split(list, evs, PR_MAX_EVALUATORS, &t.n_evaluators))
      return pr_usage_error(self,
                            "--evaluators names %zu evaluators; a committee "
                            "has at most %d",
                            t.n_evaluators, PR_MAX_EVALUATORS);
    t.evaluators = evs;
  }
  if (o.buyers) {
    char *list = strdupa(o.buyers);
    if (pr_split(list, buyers, PR_MAX_BUYERS, &t.n_buyers))
      return pr_usage_error(self,
                            "--buyers names %zu joint buyers; a tender has "
                            "at most %d",
                            t.n_buyers, PR_MAX_BUYERS);
    t.buyers = buyers;
  }
  t.green_preference = !o.no_green;
  t.sme_preference = !o.no_sme;
  for (int i = 0; i < o.nitems; i++) {
    if (pr_item_arg(g, o.items[i], &items[i])) return GM_CLI_EXIT_ERROR;
    pitems[i] = &items[i];
  }
  t.items = pitems;
  t.n_items = (size_t)o.nitems;
  Gm__Procurement__DraftRequest q = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  q.tender = &t;
  return pr_show(g, "tender.draft", &q.base, pr_print_view);
}

static int pr_cmd_demand(const pr_cli *g, int argc, char **argv,
                         const pr_cmd *self) {
  static const int allow[] = {O_ITEM, 0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 1, &np);
  if (np != 1 || !o.nitems)
    return pr_usage_error(self,
                          "name the tender and give --item at least once");
  Gm__Procurement__Item items[PR_MAX_ITEMS], *pitems[PR_MAX_ITEMS];
  for (int i = 0; i < o.nitems; i++) {
    if (pr_item_arg(g, o.items[i], &items[i])) return GM_CLI_EXIT_ERROR;
    pitems[i] = &items[i];
  }
  Gm__Procurement__DemandRequest q = GM__PROCUREMENT__DEMAND_REQUEST__INIT;
  q.tender_id = pos[0];
  q.items = pitems;
  q.n_items = (size_t)o.nitems;
  return pr_show(g, "tender.demand", &q.base, pr_print_view);
}

/* Commands taking only a tender id: publish, show, withdraw, award,
   notice, open (bid list) ... */
static int pr_one_id(const pr_cli *g, int argc, char **argv, const pr_cmd *self,
                     const int *allow, pr_opts *o, char **id) {
  char *pos[1];
  int np;
  (void)g;
  int rc = pr_args(argc, argv, self, allow, o, pos, 1, &np);
  if (rc) return rc == -1 ? -1 : rc;
  if (np != 1) return pr_usage_error(self, "name the %s", "tender id");
  *id = pos[0];
  return 0;
}

#define PR_ONE_ID(allow, o, id)                             \
  do {                                                      \
    int rc_ = pr_one_id(g, argc, argv, self, allow, o, id); \
    if (rc_) return rc_ == -1 ? GM_CLI_EXIT_OK : rc_;       \
  } while (0)

static void pr_print_reclaim(const ProtobufCMessage *m) {
  const Gm__Procurement__Reclaim *r = (const void *)m;
  char d[24];
  printf("credit code %s: %s asks for it from %s (%s, %s)\n  evidence: %s\n",
         r->uscc, r->claimant, r->holder, r->status, pr_time(r->lodged_ms, d),
         r->evidence);
  if (r->replaced_evidence[0])
    printf("  this replaces your pending request, whose evidence was: %s\n",
           r->replaced_evidence);
  if (r->decided_ms)
    printf("  %s by %s at %s: %s\n", r->status, r->decided_by,
           pr_time(r->decided_ms, d), r->reason);
  if (!strcmp(r->status, "approved"))
    printf(
        "  %s registers with the code now (gm procurement register); %s's "
        "entry was removed\n",
        r->claimant, r->holder);
}

/* reclaim CODE --note EVIDENCE; reclaim-approve|reclaim-reject CODE
   --reason R. */
static int pr_cmd_reclaim(const pr_cli *g, int argc, char **argv,
                          const pr_cmd *self) {
  static const int ask[] = {O_NOTE, 0}, decide[] = {O_REASON, 0};
  int asking = !strcmp(argv[0], "reclaim");
  pr_opts o;
  char *code = NULL;
  PR_ONE_ID(asking ? ask : decide, &o, &code);
  char why[200];
  if (gm_uscc_check(code, strlen(code), why, sizeof why) != 0)
    return g->api->error(g->cli, GM_INVALID_ARGUMENT, "credit code %s: %s",
                         code, why);
  if (asking) {
    if (!o.note)
      return pr_usage_error(self,
                            "--note is required: the evidence that the code "
                            "is yours");
    Gm__Procurement__ReclaimRequest q = GM__PROCUREMENT__RECLAIM_REQUEST__INIT;
    q.uscc = code;
    q.evidence = (char *)o.note;
    return pr_show(g, "party.reclaim", &q.base, pr_print_reclaim);
  }
  if (!o.reason) return pr_usage_error(self, "--reason is required");
  Gm__Procurement__ReclaimDecision q = GM__PROCUREMENT__RECLAIM_DECISION__INIT;
  q.uscc = code;
  q.approve = !strcmp(argv[0], "reclaim-approve");
  q.reason = (char *)o.reason;
  return pr_show(g, "party.reclaim_decide", &q.base, pr_print_reclaim);
}

static int pr_cmd_publish(const pr_cli *g, int argc, char **argv,
                          const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = id;
  return pr_show(g, !strcmp(argv[0], "show") ? "tender.get" : "tender.publish",
                 &q.base, pr_print_view);
}

static int pr_cmd_cancel(const pr_cli *g, int argc, char **argv,
                         const pr_cmd *self) {
  static const int allow[] = {O_REASON, 0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  if (!o.reason) return pr_usage_error(self, "--reason is required");
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = id;
  q.reason = (char *)o.reason;
  return pr_show(g, "tender.cancel", &q.base, pr_print_view);
}

static int pr_cmd_amend(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {O_NOTE,    O_TITLE,    O_DESC, O_DEADLINE,
                              O_BUDGET,  O_SECURITY, O_BOND, O_ITEM,
                              O_AFFECTS, O_KEEP,     0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  if (!o.note) return pr_usage_error(self, "--note is required: what and why");
  Gm__Procurement__Tender c = GM__PROCUREMENT__TENDER__INIT;
  Gm__Procurement__Item items[PR_MAX_ITEMS], *pitems[PR_MAX_ITEMS];
  char *fields[8];
  size_t nf = 0;
  if (o.title) {
    c.title = (char *)o.title;
    fields[nf++] = "title";
  }
  if (o.description) {
    c.description = (char *)o.description;
    fields[nf++] = "description";
  }
  if (o.deadline) {
    if (pr_time_arg(g, "--deadline", o.deadline, &c.deadline_ms))
      return GM_CLI_EXIT_ERROR;
    fields[nf++] = "deadline_ms";
  }
  if (o.budget) {
    if (pr_yuan_arg(g, "--budget", o.budget, &c.budget))
      return GM_CLI_EXIT_ERROR;
    fields[nf++] = "budget";
  }
  if (o.security) {
    if (pr_yuan_arg(g, "--security", o.security, &c.bid_security))
      return GM_CLI_EXIT_ERROR;
    fields[nf++] = "bid_security";
  }
  if (o.bond_rate) {
    if (pr_percent_arg(g, "--bond-rate", o.bond_rate, 1000, &c.bond_bp))
      return GM_CLI_EXIT_ERROR;
    fields[nf++] = "bond_bp";
  }
  if (o.nitems) {
    for (int i = 0; i < o.nitems; i++) {
      if (pr_item_arg(g, o.items[i], &items[i])) return GM_CLI_EXIT_ERROR;
      pitems[i] = &items[i];
    }
    c.items = pitems;
    c.n_items = (size_t)o.nitems;
    fields[nf++] = "items";
  }
  if (!nf)
    return pr_usage_error(self,
                          "change something: --deadline, --budget, "
                          "--security, --bond-rate, --title, "
                          "--description or --item");
  Gm__Procurement__AmendRequest q = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  q.tender_id = id;
  q.note = (char *)o.note;
  q.changes = &c;
  q.fields = fields;
  q.n_fields = nf;
  q.affects_bids = o.affects;
  q.keep_deadline = o.keep;
  return pr_show(g, "tender.amend", &q.base, pr_print_view);
}

static void pr_print_tenders(const ProtobufCMessage *m) {
  const Gm__Procurement__TenderList *l = (const void *)m;
  static const char *const head[] = {"TENDER", "STATE",  "BIDS UNTIL",
                                     "BUDGET", "AGENCY", "TITLE"};
  gm_table t = {6, head, 0x8, NULL, 0, 0};
  for (size_t i = 0; i < l->n_tenders; i++) {
    const Gm__Procurement__TenderSummary *s = l->tenders[i];
    char d[24], y[32], b[48];
    snprintf(b, sizeof b, "%s %s", pr_yuan(s->budget, y), s->currency);
    gm_table_row(&t, s->id, s->state, pr_time(s->deadline_ms, d), b, s->agency,
                 s->title);
  }
  gm_table_print(&t, stdout);
  if (l->next_cursor[0])
    printf("(more: gm procurement tenders --from %s)\n", l->next_cursor);
}

static int pr_cmd_tenders(const pr_cli *g, int argc, char **argv,
                          const pr_cmd *self) {
  static const int allow[] = {O_LIMIT, O_FROM, 0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 0, &np);
  Gm__Procurement__TenderListRequest q =
      GM__PROCUREMENT__TENDER_LIST_REQUEST__INIT;
  q.limit = (int32_t)o.limit;
  q.cursor = (char *)(o.from ? o.from : "");
  return pr_show(g, "tender.list", &q.base, pr_print_tenders);
}

static void pr_print_security(const ProtobufCMessage *m) {
  const Gm__Procurement__SecurityReply *r = (const void *)m;
  char a[32], b[32];
  printf("%s lodged %s %s of bid security for %s (required %s %s)\n",
         r->supplier, pr_yuan(r->amount, a), r->currency, r->tender_id,
         pr_yuan(r->required, b), r->currency);
}

static int pr_cmd_security(const pr_cli *g, int argc, char **argv,
                           const pr_cmd *self) {
  static const int allow[] = {O_REFERENCE, 0};
  pr_opts o;
  char *pos[3];
  int np;
  PR_ARGS(allow, &o, pos, 3, &np);
  if (np != 3)
    return pr_usage_error(self, "name the tender, the supplier and the amount");
  Gm__Procurement__SecurityRequest q = GM__PROCUREMENT__SECURITY_REQUEST__INIT;
  q.tender_id = pos[0];
  q.supplier = pos[1];
  q.reference = (char *)(o.reference ? o.reference : "");
  if (pr_yuan_arg(g, "the amount", pos[2], &q.amount)) return GM_CLI_EXIT_ERROR;
  return pr_show(g, "tender.security", &q.base, pr_print_security);
}

/* ---- bids ---- */

static void pr_print_receipt(const ProtobufCMessage *m) {
  const Gm__Procurement__BidReceipt *r = (const void *)m;
  char d[24];
  if (!strcmp(r->state, "withdrawn"))
    printf("withdrawn: your bid on %s (version %d)\n", r->tender_id,
           r->version);
  else
    printf(
        "sealed: your bid on %s, version %d, at %s\nhash   %s\n"
        "(published at the opening: check the opened bid against it)\n",
        r->tender_id, r->version, pr_time(r->time_ms, d), r->hash);
}

static int pr_cmd_bid(const pr_cli *g, int argc, char **argv,
                      const pr_cmd *self) {
  static const int allow[] = {O_SME, O_CURRENCY, 0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, PR_MAX_POS, &np);
  if (np < 2)
    return pr_usage_error(self,
                          "name the tender and price each item: "
                          "ITEM=YUAN[@CERTIFICATE]");
  Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
  Gm__Procurement__BidLine lines[PR_MAX_POS], *pl[PR_MAX_POS];
  q.tender_id = pos[0];
  q.currency = (char *)(o.currency ? o.currency : "CNY");
  char cur[8];
  if (!pr_currency_shaped(q.currency))
    return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                         "--currency \"%s\" is not a currency code: give "
                         "the tender's, three capital letters such as CNY",
                         PR_SHOWN(q.currency, 16));
  if (!o.currency) {
    /* Without --currency, the bid is in the tender's (when it can be
       read; otherwise the broker's refusal says what is wrong). */
    Gm__Procurement__TenderRequest tq = GM__PROCUREMENT__TENDER_REQUEST__INIT;
    ProtobufCMessage *tv = NULL;
    gm_status tst;
    const char *tmsg;
    tq.tender_id = pos[0];
    int tcode = g->api->call_quiet(g->cli, PR_MARKET, "tender.get", &tq.base,
                                   &tv, &tst, &tmsg);
    if (tcode == GM_CLI_EXIT_UNAVAILABLE) {
      g->api->error(g->cli, tst, "%s", tmsg);
      return tcode;
    }
    if (tcode == GM_CLI_EXIT_OK && tv) {
      snprintf(cur, sizeof cur, "%s",
               ((Gm__Procurement__TenderView *)tv)->tender->currency);
      if (cur[0]) q.currency = cur;
    }
    pr_free(&tv);
  }
  if (o.sme && !pr_sme_of(o.sme, &q.sme))
    return pr_usage_error(self, "--sme must be none, medium, small or micro");
  for (int i = 1; i < np; i++) {
    char *eq = strchr(pos[i], '='), *at;
    gm__procurement__bid_line__init(&lines[i - 1]);
    if (!eq)
      return pr_usage_error(self, "\"%s\" is not ITEM=YUAN[@CERTIFICATE]",
                            pos[i]);
    *eq = '\0';
    if ((at = strchr(eq + 1, '@'))) {
      *at = '\0';
      lines[i - 1].certificate = at + 1;
    }
    lines[i - 1].item = pos[i];
    char what[96];
    snprintf(what, sizeof what, "the unit price of %s", PR_SHOWN(pos[i], 40));
    if (pr_yuan_arg(g, what, eq + 1, &lines[i - 1].unit_price))
      return GM_CLI_EXIT_ERROR;
    pl[i - 1] = &lines[i - 1];
  }
  q.lines = pl;
  q.n_lines = (size_t)np - 1;
  /* The opening disqualifies a bidder not in the register: say so now. */
  Gm__Procurement__PartyRequest pq = GM__PROCUREMENT__PARTY_REQUEST__INIT;
  ProtobufCMessage *party = NULL;
  gm_status st;
  const char *msg;
  int code = g->api->call_quiet(g->cli, PR_MARKET, "party.get", &pq.base,
                                &party, &st, &msg);
  pr_free(&party);
  if (code == GM_CLI_EXIT_UNAVAILABLE) {
    g->api->error(g->cli, st, "%s", msg);
    return code;
  }
  if (code != GM_CLI_EXIT_OK)
    return st == GM_NOT_FOUND
               ? g->api->error(g->cli, GM_FAILED_PRECONDITION,
                               "register first, or the opening will "
                               "disqualify your bid: gm procurement register "
                               "--uscc CODE --name NAME --size SIZE")
               : g->api->error(g->cli, st, "%s", msg);
  return pr_show(g, !strcmp(argv[0], "rebid") ? "bid.replace" : "bid.submit",
                 &q.base, pr_print_receipt);
}

static int pr_cmd_withdraw(const pr_cli *g, int argc, char **argv,
                           const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = id;
  return pr_show(g, "bid.withdraw", &q.base, pr_print_receipt);
}

static void pr_print_bid(const ProtobufCMessage *m) {
  const Gm__Procurement__Bid *b = (const void *)m;
  char d[24], y1[32], y2[32];
  static const char *const sizes[] = {"none", "medium", "small", "micro"};
  printf("bid of %s on %s: %s, version %d, %s\nhash   %s\n", b->supplier,
         b->tender_id, b->state, b->version, pr_time(b->submitted_ms, d),
         b->hash);
  if (!strcmp(b->state, "unopened"))
    printf(
        "the tender was cancelled before its opening: this sealed bid was "
        "deleted\nunopened with it, and nobody can read its prices\n");
  if (!b->n_lines) return;
  printf("SME class declared: %s\n", sizes[b->sme <= 3 ? b->sme : 0]);
  static const char *const head[] = {"ITEM", "QUANTITY", "UNIT PRICE", "TOTAL",
                                     "CERTIFICATE"};
  gm_table t = {5, head, 0xe, NULL, 0, 0};
  for (size_t i = 0; i < b->n_lines; i++) {
    const Gm__Procurement__BidLine *l = b->lines[i];
    char q[24];
    snprintf(q, sizeof q, "%lld", (long long)l->quantity);
    gm_table_row(&t, l->item, q, pr_yuan(l->unit_price, y1),
                 pr_yuan(l->total, y2),
                 l->certificate[0] ? l->certificate : "-");
  }
  gm_table_print(&t, stdout);
  printf("total  %s %s\n", pr_yuan(b->total, y1), b->currency);
}

static int pr_cmd_mybid(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {O_SUPPLIER, 0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__BidQuery q = GM__PROCUREMENT__BID_QUERY__INIT;
  q.tender_id = id;
  q.supplier = (char *)(o.supplier ? o.supplier : "");
  return pr_show(g, "bid.get", &q.base, pr_print_bid);
}

/* The opening record: each opened bid with its published hash, checked
   here (SHA-256 of the opened text) so nobody has to trust the broker. */
static int pr_cmd_open(const pr_cli *g, int argc, char **argv,
                       const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  static const char *const head[] = {"SUPPLIER", "STATE", "BID PRICE", "HASH",
                                     "CHECK"};
  gm_table t = {5, head, 0x4, NULL, 0, 0};
  char cursor[32] = "";
  int bad = 0;
  if (sodium_init() < 0)
    return g->api->error(g->cli, GM_INTERNAL, "libsodium failed to start");
  for (;;) {
    Gm__Procurement__BidListRequest q = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
    ProtobufCMessage *reply;
    q.tender_id = id;
    q.limit = 1000;
    q.cursor = cursor;
    int code = pr_call(g, "bid.list", &q.base, &reply);
    if (code != GM_CLI_EXIT_OK) {
      for (size_t i = 0; i < t.rows * (size_t)t.ncols; i++) free(t.cells[i]);
      free(t.cells);
      return code;
    }
    if (g->api->json(g->cli)) g->api->print(g->cli, reply);
    const Gm__Procurement__BidList *l = (const void *)reply;
    for (size_t i = 0; i < l->n_bids; i++) {
      const Gm__Procurement__Bid *b = l->bids[i];
      char y[32], hex[65] = "";
      unsigned char h[crypto_hash_sha256_BYTES];
      const char *check = "-";
      if (b->text[0]) {
        crypto_hash_sha256(h, (const unsigned char *)b->text, strlen(b->text));
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        check = strcmp(hex, b->hash) ? "MISMATCH" : "sha256 ok";
        bad |= strcmp(hex, b->hash) != 0;
      }
      gm_table_row(&t, b->supplier, b->state,
                   b->text[0] && !b->no_price ? pr_yuan(b->total, y) : "-",
                   b->hash, check);
    }
    snprintf(cursor, sizeof cursor, "%s", l->next_cursor);
    pr_free(&reply);
    if (!cursor[0]) break;
  }
  if (!g->api->json(g->cli)) gm_table_print(&t, stdout);
  for (size_t i = 0; i < t.rows * (size_t)t.ncols; i++) free(t.cells[i]);
  free(t.cells);
  if (bad)
    return g->api->error(g->cli, GM_INTERNAL,
                         "an opened bid does not match its published hash");
  return GM_CLI_EXIT_OK;
}

/* ---- evaluation ---- */

static const char *pr_pts(int32_t bp, char out[16]) {
  snprintf(out, 16, "%d.%02d", bp / 100, bp % 100);
  return out;
}

static int pr_sheet_checks;

static void pr_print_sheet(const ProtobufCMessage *m) {
  const Gm__Procurement__Sheet *s = (const void *)m;
  char d[24], y[32];
  int scoring = !strcmp(s->method, "comprehensive scoring");
  printf("evaluation sheet of %s, round %d (%s), %s\n", s->tender_id, s->round,
         s->method, pr_time(s->evaluated_ms, d));
  printf("lowest valid evaluated price %s %s\ndraw seed %s\ntie rule: %s\n",
         pr_yuan(s->lowest_price, y), s->currency, s->seed, s->tie_rule);
  static const char *const head[] = {
      "RANK",      "SUPPLIER",    "STATUS",      "BID PRICE", "GREEN", "SME",
      "EVALUATED", "PRICE SCORE", "OTHER SCORE", "TOTAL",     "DRAW",  "WHY"};
  gm_table t = {12, head, 0x3f9, NULL, 0, 0};
  for (size_t i = 0; i < s->n_rows; i++) {
    const Gm__Procurement__SheetRow *r = s->rows[i];
    char rank[16], b[32], gr[32], sm[32], ev[32], p1[16], p2[16], p3[16];
    snprintf(rank, sizeof rank, "%d", r->rank);
    gm_table_row(&t, r->rank ? rank : "-", r->supplier, r->status,
                 r->no_price ? "-" : pr_yuan(r->bid_price, b),
                 pr_yuan(r->green_deduction, gr), pr_yuan(r->sme_deduction, sm),
                 pr_yuan(r->evaluated_price, ev),
                 scoring ? pr_pts(r->price_score, p1) : "-",
                 scoring ? pr_pts(r->tech_score, p2) : "-",
                 scoring ? pr_pts(r->total_score, p3) : "-", r->draw,
                 r->reasons);
  }
  gm_table_print(&t, stdout);
  if (pr_sheet_checks)
    for (size_t i = 0; i < s->n_rows; i++) {
      printf("\n%s (hash %s):\n  ", s->rows[i]->supplier, s->rows[i]->hash);
      for (const char *c = s->rows[i]->checks; *c; c++)
        fputs(*c == '\n' ? "\n  " : (char[2]){*c, 0}, stdout);
      putchar('\n');
    }
  if ((int)s->n_rows < s->total_rows)
    printf("(%zu of %d rows; --limit for more)\n", s->n_rows, s->total_rows);
}

static int pr_cmd_sheet(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {O_ROUND, O_CHECKS, O_LIMIT, 0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__SheetRequest q = GM__PROCUREMENT__SHEET_REQUEST__INIT;
  q.tender_id = id;
  q.round = (int32_t)o.round;
  q.limit = (int32_t)(o.limit ? o.limit : 1000);
  if (q.limit > 1000) q.limit = 1000;
  pr_sheet_checks = o.checks;
  return pr_show(g, "evaluation.sheet", &q.base, pr_print_sheet);
}

static void pr_print_score(const ProtobufCMessage *m) {
  const Gm__Procurement__ScoreReply *r = (const void *)m;
  printf("stored %d scores; %d valid bids left for you to score%s\n", r->stored,
         r->missing,
         r->complete
             ? "; the committee is done: the bids are ranked in a moment "
               "(gm procurement sheet)"
             : "");
}

static int pr_cmd_score(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, PR_MAX_POS, &np);
  if (np < 2)
    return pr_usage_error(self,
                          "name the tender and score bids: "
                          "SUPPLIER=POINTS");
  Gm__Procurement__Score sc[PR_MAX_POS], *ps[PR_MAX_POS];
  for (int i = 1; i < np; i++) {
    char *eq = strchr(pos[i], '=');
    gm__procurement__score__init(&sc[i - 1]);
    if (!eq)
      return pr_usage_error(self, "\"%s\" is not SUPPLIER=POINTS (like 52.5)",
                            PR_SHOWN(pos[i], 80));
    *eq = '\0'; /* pos[i] is the supplier now */
    /* Say what is wrong with the points, in points: "52.555" was only
       "is not SUPPLIER=POINTS", though it has that shape. */
    if (pr_points(eq + 1, &sc[i - 1].score_bp) != 0)
      return g->api->error(g->cli, GM_INVALID_ARGUMENT,
                           "the score of %s \"%s\" is not points of "
                           "100: write 0 to 100 with at most two decimals, "
                           "like 52.5",
                           PR_SHOWN(pos[i], 80), PR_SHOWN(eq + 1, 40));
    sc[i - 1].supplier = pos[i];
    ps[i - 1] = &sc[i - 1];
  }
  Gm__Procurement__ScoreRequest q = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  q.tender_id = pos[0];
  q.scores = ps;
  q.n_scores = (size_t)np - 1;
  return pr_show(g, "evaluation.score", &q.base, pr_print_score);
}

/* ---- awards, challenges, contracts ---- */

static void pr_print_award(const ProtobufCMessage *m) {
  const Gm__Procurement__Award *a = (const void *)m;
  char d1[24], d2[24], d3[24], y[32];
  printf(
      "award %d of %s: %s at %s %s (%s)\nnotice       %s\n"
      "challenges   until %s\nsign         until %s\ncontracts   ",
      a->number, a->tender_id, a->supplier, pr_yuan(a->value, y), a->currency,
      a->status, pr_time(a->notice_ms, d1), pr_time(a->challenge_until_ms, d2),
      pr_time(a->sign_until_ms, d3));
  for (size_t i = 0; i < a->n_contracts; i++) printf(" %s", a->contracts[i]);
  printf("\n");
  if (a->reason[0]) printf("reason       %s\n", a->reason);
}

static int pr_cmd_award(const pr_cli *g, int argc, char **argv,
                        const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__AwardRequest q = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  q.tender_id = id;
  return pr_show(g, !strcmp(argv[0], "notice") ? "award.get" : "tender.award",
                 &q.base, pr_print_award);
}

static void pr_print_challenge(const ProtobufCMessage *m) {
  const Gm__Procurement__Challenge *c = (const void *)m;
  char d[24];
  printf("challenge %s to award %d of %s by %s: %s (lodged %s)\n  %s\n", c->id,
         c->award, c->tender_id, c->challenger, c->status,
         pr_time(c->lodged_ms, d), c->text);
  if (c->answer_due_ms && !strcmp(c->status, "open"))
    printf("  the agency answers by %s (7 working days)%s\n",
           pr_time(c->answer_due_ms, d), c->overdue ? ": OVERDUE" : "");
  if (c->overdue)
    printf(
        "  unanswered in time: the challenger may complain to the finance "
        "department until %s (GP Law art. 55)\n",
        pr_time(c->complaint_until_ms, d));
  if (c->answer[0]) printf("answer: %s\n", c->answer);
}

static const char *pr_challenges_more; /* the tender id, for the hint */

/* The status with whether the answer is overdue: "open, overdue" (the
   challenger may complain now), "dismissed, answered late", "closed, not
   answered in time" (closed with its award after the period, unanswered:
   its answered_ms is when it was closed). */
static const char *pr_challenge_status(const Gm__Procurement__Challenge *c,
                                       char *out, size_t len) {
  if (!c->overdue) return c->status;
  snprintf(out, len, "%s, %s", c->status,
           !strcmp(c->status, "open")     ? "overdue"
           : !strcmp(c->status, "closed") ? "not answered in time"
                                          : "answered late");
  return out;
}

static void pr_print_challenges(const ProtobufCMessage *m) {
  const Gm__Procurement__ChallengeList *l = (const void *)m;
  static const char *const head[] = {
      "CHALLENGE", "AWARD",           "BY",       "STATUS",  "LODGED",
      "ANSWER BY", "COMPLAINT UNTIL", "ANSWERED", "GROUNDS", "ANSWER"};
  gm_table t = {10, head, 0x2, NULL, 0, 0};
  if (!l->n_challenges)
    printf(
        "no challenges you may read (they are read from the ledger: one "
        "lodged a moment ago shows once it is settled)\n");
  for (size_t i = 0; i < l->n_challenges; i++) {
    const Gm__Procurement__Challenge *c = l->challenges[i];
    char aw[16], st[48], d1[24], d2[24], d3[24], d4[24];
    snprintf(aw, sizeof aw, "%d", c->award);
    gm_table_row(&t, c->id, aw, c->challenger,
                 pr_challenge_status(c, st, sizeof st),
                 pr_time(c->lodged_ms, d1), pr_time(c->answer_due_ms, d2),
                 pr_time(c->complaint_until_ms, d3),
                 c->answered_ms ? pr_time(c->answered_ms, d4) : "-", c->text,
                 c->answer[0] ? c->answer : "-");
  }
  if (l->n_challenges) {
    gm_table_print(&t, stdout);
    printf(
        "(the agency answers by ANSWER BY, 7 working days; unanswered by "
        "then, or\n unsatisfied with the answer, the challenger may "
        "complain to the finance\n department until COMPLAINT UNTIL: GP "
        "Law arts. 53 and 55)\n");
  }
  if (l->next_cursor[0])
    printf("(more: gm procurement challenges %s --from %s)\n",
           pr_challenges_more, l->next_cursor);
}

/* challenges ID: the agency's all, a supplier's own. */
static int pr_cmd_challenges(const pr_cli *g, int argc, char **argv,
                             const pr_cmd *self) {
  static const int allow[] = {O_LIMIT, O_FROM, 0};
  pr_opts o;
  char *pos[1];
  int np;
  PR_ARGS(allow, &o, pos, 1, &np);
  if (np != 1) return pr_usage_error(self, "name the tender");
  Gm__Procurement__ChallengeListRequest q =
      GM__PROCUREMENT__CHALLENGE_LIST_REQUEST__INIT;
  q.tender_id = pos[0];
  q.limit = (int32_t)o.limit;
  q.cursor = (char *)(o.from ? o.from : "");
  pr_challenges_more = pos[0];
  return pr_show(g, "challenge.list", &q.base, pr_print_challenges);
}

/* The remaining positionals joined by spaces (a free text). */
static char *pr_join(char **pos, int from, int np) {
  size_t n = 1;
  for (int i = from; i < np; i++) n += strlen(pos[i]) + 1;
  char *s = malloc(n), *p = s;
  for (int i = from; i < np; i++)
    p += sprintf(p, "%s%s", i > from ? " " : "", pos[i]);
  *p = '\0';
  return s;
}

static int pr_cmd_challenge(const pr_cli *g, int argc, char **argv,
                            const pr_cmd *self) {
  static const int allow[] = {0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, PR_MAX_POS, &np);
  if (np < 2)
    return pr_usage_error(self, "name the tender and state the grounds");
  Gm__Procurement__ChallengeRequest q =
      GM__PROCUREMENT__CHALLENGE_REQUEST__INIT;
  q.tender_id = pos[0];
  q.text = pr_join(pos, 1, np);
  int code = pr_show(g, "challenge.lodge", &q.base, pr_print_challenge);
  free(q.text);
  return code;
}

static int pr_cmd_answer(const pr_cli *g, int argc, char **argv,
                         const pr_cmd *self) {
  static const int allow[] = {O_DISMISS, O_UPHOLD, 0};
  pr_opts o;
  char *pos[PR_MAX_POS];
  int np;
  PR_ARGS(allow, &o, pos, PR_MAX_POS, &np);
  if (np < 2 || o.dismiss == o.uphold)
    return pr_usage_error(self,
                          "name the challenge, --dismiss or --uphold "
                          "reevaluate|cancel, and the answer");
  Gm__Procurement__AnswerRequest q = GM__PROCUREMENT__ANSWER_REQUEST__INIT;
  q.challenge_id = pos[0];
  q.upheld = o.uphold;
  if (o.uphold) {
    if (!strcmp(o.remedy, "reevaluate"))
      q.remedy = GM__PROCUREMENT__REMEDY__REMEDY_REEVALUATE;
    else if (!strcmp(o.remedy, "cancel"))
      q.remedy = GM__PROCUREMENT__REMEDY__REMEDY_CANCEL;
    else
      return pr_usage_error(self, "--uphold takes reevaluate or cancel");
  }
  q.answer = pr_join(pos, 1, np);
  int code = pr_show(g, "challenge.answer", &q.base, pr_print_challenge);
  free(q.answer);
  return code;
}

static void pr_print_contract(const ProtobufCMessage *m) {
  const Gm__Procurement__Contract *k = (const void *)m;
  char y1[32], y2[32], y3[32], d1[24], d2[24], d3[24], d4[24];
  printf("contract %s (award %d of %s): %s\n  %s buys from %s for %s %s: ",
         k->id, k->award, k->tender_id, k->status, k->agency, k->supplier,
         pr_yuan(k->value, y1), k->currency);
  for (size_t i = 0; i < k->n_items; i++)
    printf("%s%s", i ? ", " : "", k->items[i]);
  printf(
      "\n  signed by the agency %s, by the supplier %s\n"
      "  performance bond %s %s%s%s\n  delivered %s, accepted %s, paid %s "
      "%s\n",
      pr_time(k->agency_signed_ms, d1), pr_time(k->supplier_signed_ms, d2),
      pr_yuan(k->bond, y2), k->currency, k->bond_reference[0] ? ", " : "",
      k->bond_reference, pr_time(k->delivered_ms, d3),
      pr_time(k->accepted_ms, d4), pr_yuan(k->paid, y3), k->currency);
  if (k->note[0]) printf("  note: %s\n", k->note);
}

static int pr_cmd_contract(const pr_cli *g, int argc, char **argv,
                           const pr_cmd *self) {
  static const int allow[] = {O_REFERENCE, O_NOTE, O_REJECT, 0};
  pr_opts o;
  char *pos[2];
  int np;
  PR_ARGS(allow, &o, pos, 2, &np);
  int pay = !strcmp(argv[0], "pay");
  if (np != (pay ? 2 : 1))
    return pr_usage_error(
        self, pay ? "name the contract and the amount" : "name the contract");
  Gm__Procurement__ContractRequest q = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  q.contract_id = pos[0];
  q.reference = (char *)(o.reference ? o.reference
                         : o.note    ? o.note
                         : o.reject  ? o.reject
                                     : "");
  q.rejected = o.reject != NULL;
  if (pay && pr_yuan_arg(g, "the amount", pos[1], &q.amount))
    return GM_CLI_EXIT_ERROR;
  char method[32];
  snprintf(method, sizeof method, "contract.%s",
           !strcmp(argv[0], "contract") ? "get" : argv[0]);
  return pr_show(g, method, &q.base, pr_print_contract);
}

static int pr_cmd_export(const pr_cli *g, int argc, char **argv,
                         const pr_cmd *self) {
  static const int allow[] = {O_OUT, O_PERCHANGE, 0};
  pr_opts o;
  char *id = NULL;
  PR_ONE_ID(allow, &o, &id);
  Gm__Procurement__ExportRequest q = GM__PROCUREMENT__EXPORT_REQUEST__INIT;
  ProtobufCMessage *reply;
  q.tender_id = id;
  q.per_change = o.per_change;
  int code = pr_call(g, "tender.export", &q.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  const Gm__Procurement__Export *e = (const void *)reply;
  if (o.out) {
    /* Whole or not at all (a failed write leaves an earlier export as it
       was); the user's path, not the broker: a usage error (exit 1), not
       UNAVAILABLE (retry later). */
    size_t n = strlen(e->json);
    char *text = malloc(n + 2);
    if (!text) abort();
    memcpy(text, e->json, n);
    text[n] = '\n';
    text[n + 1] = '\0';
    if (!GM_CLI_API_HAS(g->api, write_file))
      code = g->api->error(g->cli, GM_UNIMPLEMENTED,
                           "this gm is older than its procurement commands "
                           "and cannot write %s; install gm and its markets "
                           "together",
                           o.out);
    else
      code = g->api->write_file(g->cli, o.out, text, n + 1);
    free(text);
    if (code != GM_CLI_EXIT_OK) {
      /* said */
    } else if (!g->api->json(g->cli)) {
      printf("wrote %s: OCDS 1.1.5 release package of %s\n", o.out, e->ocid);
    }
  } else {
    printf("%s\n", e->json); /* JSON already: the same with --json */
  }
  pr_free(&reply);
  return code;
}

/* ---- the command table ---- */

static const char PR_STATUS_USAGE[] =
    "gm procurement suspend|revoke|reinstate NUMBER [--reason TEXT]\n"
    "    (certifier) change a certificate's status (a reason but to "
    "reinstate)\n";

static const pr_cmd pr_cmds[] = {
    {"import",
     "gm procurement import categories|certificates|calendar FILE.csv "
     "[--skip-bad] [--batch N]\n"
     "    (certifier) load the catalogue from CSV: every line is checked "
     "first, and nothing\n    is imported when one is wrong (--skip-bad: "
     "import the good ones); columns:\n"
     "    categories: code,name,policy,deduction,labels,min_grade (labels "
     "separated by ;)\n"
     "    certificates: number,holder,holder_name,product,model,category,"
     "label,grade,\n      issuer,valid_from,valid_to (dates YYYY-MM-DD)\n"
     "    calendar: date,kind (holiday, working or normal)\n",
     pr_cmd_import},
    {"categories",
     "gm procurement categories\n    the catalogue's categories "
     "and their green policy\n",
     pr_cmd_categories},
    {"certificate",
     "gm procurement certificate NUMBER\n    one certificate "
     "and its status\n",
     pr_cmd_certificate},
    {"suspend", PR_STATUS_USAGE, pr_cmd_cert_status},
    {"revoke", PR_STATUS_USAGE, pr_cmd_cert_status},
    {"reinstate", PR_STATUS_USAGE, pr_cmd_cert_status},
    {"calendar",
     "gm procurement calendar [--from DATE] [--days N] | "
     "calendar DATE=holiday|working|normal...\n"
     "    the working-day calendar (certifier: set days)\n",
     pr_cmd_calendar},
    {"register",
     "gm procurement register --uscc CODE --name NAME "
     "[--size none|medium|small|micro]\n"
     "    register your unified social credit code, name and SME "
     "size\n"
     "    (again: a new name or code; the size stays unless --size "
     "changes it)\n",
     pr_cmd_register},
    {"draft",
     "gm procurement draft ID --title T --budget YUAN --deadline TIME "
     "--item ID:CATEGORY:QTY:UNIT[:BUDGET[:BUYER]]...\n"
     "    [--description D] [--currency CNY] [--rfq] [--kind goods|services|"
     "works]\n    [--scoring PRICE% --evaluators A,B] [--security YUAN] "
     "[--bond-rate P%] [--buyers A,B]\n    [--sme-rate P%] [--no-green] "
     "[--no-sme]\n    (agency) create or rewrite a draft tender\n",
     pr_cmd_draft},
    {"demand",
     "gm procurement demand ID --item ID:CATEGORY:QTY:UNIT[:BUDGET]...\n"
     "    (joint buyer) put your items into a draft\n",
     pr_cmd_demand},
    {"publish",
     "gm procurement publish ID\n    (agency) publish a draft: bids "
     "are taken until its deadline\n",
     pr_cmd_publish},
    {"amend",
     "gm procurement amend ID --note TEXT [--deadline TIME] [--budget "
     "YUAN] [--security YUAN]\n    [--bond-rate P%] [--title T] "
     "[--description D] [--item ...]\n    [--affects-bids [--keep-deadline]]"
     "\n    (agency) amend before the deadline (--item replaces the items of "
     "each buyer\n    it names, yours when it names none; other joint "
     "buyers keep theirs);"
     "\n    --affects-bids: the change may affect how bids are prepared, so "
     "15 days\n    must remain before the deadline (Order 87 art. 27; 3 "
     "working days for a\n    request for quotations, Order 74 art. 10): it "
     "moves there, or\n    with --keep-deadline the amendment is refused "
     "naming the earliest allowed\n",
     pr_cmd_amend},
    {"cancel",
     "gm procurement cancel ID --reason TEXT\n    (agency) cancel a "
     "tender before its award\n",
     pr_cmd_cancel},
    {"reclaim",
     "gm procurement reclaim CODE --note EVIDENCE\n    your credit code "
     "was registered by another participant: ask the\n    certification "
     "centre for it, with what proves it is yours\n",
     pr_cmd_reclaim},
    {"reclaim-approve",
     "gm procurement reclaim-approve CODE --reason TEXT\n    (certifier) "
     "the code passes to the claimant; the holder's entry goes\n",
     pr_cmd_reclaim},
    {"reclaim-reject",
     "gm procurement reclaim-reject CODE --reason TEXT\n    (certifier) "
     "the code stays with the participant that registered it\n",
     pr_cmd_reclaim},
    {"show", "gm procurement show ID\n    a tender, its items and amendments\n",
     pr_cmd_publish},
    {"tenders",
     "gm procurement tenders [--limit N] [--from CURSOR]\n    "
     "published tenders, newest first\n",
     pr_cmd_tenders},
    {"security",
     "gm procurement security ID SUPPLIER YUAN [--reference R]\n"
     "    (agency) record the bid security a supplier lodged\n",
     pr_cmd_security},
    {"bid",
     "gm procurement bid ID ITEM=YUAN[@CERTIFICATE]... [--sme "
     "small|micro|medium|none]\n    [--currency CODE]  (supplier) submit a "
     "sealed bid: unit price per item\n    (in the tender's currency, its "
     "default), the certificate relied on\n",
     pr_cmd_bid},
    {"rebid",
     "gm procurement rebid ID ITEM=YUAN[@CERTIFICATE]... [--sme ...] "
     "[--currency CODE]\n"
     "    (supplier) replace your sealed bid before the deadline\n",
     pr_cmd_bid},
    {"withdraw",
     "gm procurement withdraw ID\n    (supplier) withdraw your "
     "bid before the deadline\n",
     pr_cmd_withdraw},
    {"mybid",
     "gm procurement mybid ID [--supplier S]\n    your bid (sealed to "
     "everyone else until the opening), or an opened one\n",
     pr_cmd_mybid},
    {"open",
     "gm procurement open ID\n    the opened bids with their published "
     "hashes, each checked here (SHA-256)\n",
     pr_cmd_open},
    {"sheet",
     "gm procurement sheet ID [--round N] [--checks] [--limit N]\n"
     "    the evaluation sheet: ranks, deductions, scores; --checks "
     "every check\n",
     pr_cmd_sheet},
    {"score",
     "gm procurement score ID SUPPLIER=POINTS...\n    (evaluator) score "
     "the other criteria of valid bids, in points of 100\n",
     pr_cmd_score},
    {"award",
     "gm procurement award ID\n    (agency) award to the first-ranked "
     "bid: the notice, its challenge and signing periods\n",
     pr_cmd_award},
    {"notice",
     "gm procurement notice ID\n    the award in force and its "
     "periods\n",
     pr_cmd_award},
    {"challenge",
     "gm procurement challenge ID GROUNDS...\n    (supplier) "
     "challenge the award within 7 working days of its notice\n",
     pr_cmd_challenge},
    {"challenges",
     "gm procurement challenges ID [--limit N] [--from CURSOR]\n    the "
     "challenges to the tender's awards: the agency sees all, a\n    "
     "supplier its own; with the answer deadline, whether it is overdue\n"
     "    and the complaint period (from the ledger: one lodged a moment\n"
     "    ago shows once it is settled)\n",
     pr_cmd_challenges},
    {"answer",
     "gm procurement answer CHALLENGE --dismiss|--uphold "
     "reevaluate|cancel ANSWER...\n    (agency) answer a challenge\n",
     pr_cmd_answer},
    {"sign",
     "gm procurement sign CONTRACT [--bond-ref R]\n    (agency or "
     "supplier) sign your contract; both sign within 30 days\n",
     pr_cmd_contract},
    {"deliver",
     "gm procurement deliver CONTRACT [--note N]\n    (supplier) "
     "record the delivery\n",
     pr_cmd_contract},
    {"accept",
     "gm procurement accept CONTRACT [--reject REASON]\n    (agency) "
     "accept the delivery, or refuse it\n",
     pr_cmd_contract},
    {"pay",
     "gm procurement pay CONTRACT YUAN\n    (agency) record a payment, "
     "once you accepted the delivery; paid in\n    full closes the "
     "contract\n",
     pr_cmd_contract},
    {"contract", "gm procurement contract CONTRACT\n    one contract\n",
     pr_cmd_contract},
    {"export",
     "gm procurement export ID [--out FILE] [--per-change]\n    the tender "
     "as an OCDS 1.1.5 release package (JSON): its current state,\n    or "
     "with --per-change one release per change\n",
     pr_cmd_export},
};

static int pr_run(gm_cli *cli, const gm_cli_api *api, int argc, char **argv) {
  const pr_cli g = {cli, api};
  for (size_t i = 0; i < sizeof pr_cmds / sizeof pr_cmds[0]; i++)
    if (!strcmp(argv[0], pr_cmds[i].name))
      return pr_cmds[i].run(&g, argc, argv, &pr_cmds[i]);
  return GM_CLI_NOT_MINE;
}

static void pr_help(FILE *out) {
  fprintf(out,
          "friendly commands (amounts in yuan like 1200.50, rates like 10%%, "
          "times like\n2026-11-24T09:30:00+08:00; `gm procurement <command> "
          "--help` for one; --json prints\nthe reply in fen):\n");
  for (size_t i = 0; i < sizeof pr_cmds / sizeof pr_cmds[0]; i++)
    if (!i || pr_cmds[i].usage != pr_cmds[i - 1].usage)
      fprintf(out, "  %s", pr_cmds[i].usage);
  fprintf(out, "label types:");
  for (int i = 0; pr_labels[i]; i++) fprintf(out, " %s", pr_labels[i]);
  fprintf(out, "\n");
}

/* gm_plugin.cli of procurement.c. */
const struct gm_cli_extension gm__procurement_cli_extension = {
    .size = sizeof(struct gm_cli_extension),
    .run = pr_run,
    .help = pr_help,
};
