/*
 * The procurement market's rules that need no Redis and no broker: names
 * and text, yuan, dates and the working-day calendar, the catalogue's label
 * types and shards, the sealed bid's canonical text, and the evaluation of
 * one bid.  Shared by the plugin, its gm commands and its tests, so a rule
 * is written once.
 */
#ifndef GM_PROCUREMENT_RULES_H
#define GM_PROCUREMENT_RULES_H

#include <stddef.h>
#include <stdint.h>

/* Every amount (fen) and every product of a price and a quantity stays at
   or below this (10^13 yuan), far below 2^53, so Lua and JSON numbers and
   Redis scores hold them exactly. */
#define PR_MAX_AMOUNT INT64_C(1000000000000000)
#define PR_MAX_QUANTITY INT64_C(1000000000)
#define PR_MAX_ITEMS 200    /* items in one tender */
#define PR_MAX_BUYERS 16    /* agencies in one joint tender */
#define PR_MAX_EVALUATORS 9 /* members of a scoring committee */
#define PR_CERT_SHARDS 16   /* catalogue shards (hash tags crt:00..15) */
#define PR_SME_DEFAULT_BP 1000
#define PR_BID_SECURITY_MAX_BP 200 /* 2% of the budget */
#define PR_BOND_MAX_BP 1000        /* 10% of the contract value */
#define PR_GREEN_MAX_BP 2000       /* a priority category's deduction */
#define PR_CHALLENGE_WORKING_DAYS 7
#define PR_SIGN_DAYS 30
/* A clarification or change that may affect the preparation of bids leaves
   at least this many days before the bid deadline (MOF Order 87 art. 27). */
#define PR_CLARIFY_DAYS 15
/* The same for a request for quotations, in working days (MOF Order 74
   art. 10). */
#define PR_CLARIFY_RFQ_WORKING_DAYS 3
/* The agency answers a challenge within 7 working days (GP Law art. 53);
   then the challenger may complain to the finance department within 15
   working days (art. 55). */
#define PR_ANSWER_WORKING_DAYS 7
#define PR_COMPLAINT_WORKING_DAYS 15
/* Whether a challenge's answer is overdue at `now`: its answer period
   (due, the last ms; 0 for a challenge lodged before it was recorded)
   passed while it was unanswered, whether answered since (late) or not.
   From the clock, so a list read from the ledger says so the moment the
   period ends, before the "answer" deadline's mark is settled. */
static inline int pr_answer_overdue(int64_t due, int64_t answered,
                                    int64_t now) {
  return due > 0 && (answered > 0 ? answered > due : now > due);
}
#define PR_TZ_MS INT64_C(28800000) /* Asia/Shanghai: UTC+8, no DST */
#define PR_DAY_MS INT64_C(86400000)

/* ---- names and text ---- */

/* 1..max of [A-Za-z0-9._-] (and '/' when slash), not starting with '.' or
   '-'. */
int pr_valid_name(const char *s, size_t min, size_t max, int slash);
/* Text a person typed: at most max bytes, and the markets' text rule
   (greenmarket/text.h: UTF-8, no controls or bidi marks, not only spaces;
   line breaks and tabs only where newlines is set).  On failure writes why
   (naming `what`) into err. */
int pr_valid_text(const char *what, const char *s, size_t max, int newlines,
                  char *err, size_t errlen);
/* 0 when s is an active ISO 4217 code that the OCDS 1.1 currency codelist
   has too (so every tender exports as valid OCDS); else -1 and why into
   err. */
int pr_check_currency(const char *s, char *err, size_t errlen);
/* Non-zero when s has a currency code's shape (three capital letters): what
   a bid or a published tender's amendment is held to, since a tender's
   currency was checked when it was drafted, by the rule of that time (a
   tender published before the ISO 4217 list, in RMB say, still takes bids
   and amendments in its own currency). */
int pr_currency_shaped(const char *s);

/* ---- money ---- */

/* "1234.56", "-0.05": fen as yuan with two decimals, into buf (>= 32). */
char *pr_yuan(int64_t fen, char *buf);
/* Parses yuan as people type them ("85", "85.5", "85.50"; no sign) into fen,
   0 .. max; -1 with why (naming `what`) in err. */
int pr_parse_yuan(const char *what, const char *text, int64_t max, int64_t *fen,
                  char *err, size_t errlen);
/* Parses a percentage ("10%", "3.5%", "2.25%", or basis points "350bp")
   into basis points, 0 .. max_bp; -1 with why in err. */
int pr_parse_percent(const char *what, const char *text, int max_bp, int *bp,
                     char *err, size_t errlen);
/* "12.50%" from basis points, into buf (>= 16). */
char *pr_percent(int bp, char *buf);
/* v clamped to lo .. hi: a damaged record's number to what the rules
   allow. */
static inline int64_t pr_clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}
/* The integer a stored record's field starts with, as atoi reads it but
   clamped to int's range (atoi's overflow is undefined). */
int pr_int(const char *s);
/* floor(amount * bp / 10000) without overflow (amount >= 0, bp >= 0). */
int64_t pr_share(int64_t amount, int64_t bp);

/* ---- dates (Asia/Shanghai) and the working-day calendar ---- */

/* Days since 1970-01-01 of the local day holding ms.  These date functions
   take any int64: days and times are clamped to 0000-01-01 .. 9999-12-31
   (include/greenmarket/date.h). */
int64_t pr_day_of(int64_t ms);
/* The ms at which local day `day` starts. */
int64_t pr_day_start(int64_t day);
/* "YYYY-MM-DD" -> day; -1 when it is not a real date. */
int pr_parse_date(const char *s, int64_t *day);
/* day -> "YYYY-MM-DD" into buf (>= 11). */
char *pr_date(int64_t day, char *buf);
/* ms -> "YYYY-MM-DD HH:MM" local into buf (>= 20). */
char *pr_datetime(int64_t ms, char *buf);
/* ms -> RFC 3339 "YYYY-MM-DDTHH:MM:SS+08:00" into buf (>= 26); ms is
   clamped to 0 .. PR_RFC3339_MAX_MS (9999-12-31 23:59:59.999 local). */
#define PR_RFC3339_MAX_MS INT64_C(253402271999999)
char *pr_rfc3339(int64_t ms, char *buf);
/* 0 Sunday .. 6 Saturday. */
int pr_weekday(int64_t day);

/* An exception of the calendar: the kind of one day, or 0 when it follows
   the weekday rule ('h' holiday, 'w' a weekend day worked). */
typedef char (*pr_day_kind_fn)(void *arg, int64_t day);
int pr_is_working(int64_t day, pr_day_kind_fn kind, void *arg);
/*
 * The last ms of the n-th working day after local day `from` (the day a
 * notice went out counts as day 0), looking at most `horizon` days ahead;
 * -1 when fewer than n working days fall within them.
 */
int64_t pr_working_days_end(int64_t from, int n, int horizon,
                            pr_day_kind_fn kind, void *arg);
/* The last ms of local day `from` + n (30 days from a notice). */
int64_t pr_days_end(int64_t from, int n);

/* ---- the catalogue ---- */

/* A label type by name: 1 known, 0 not.  Graded labels (the city's green
   building labels) carry 1-3 stars; the national lists carry none. */
int pr_label_known(const char *label);
int pr_label_graded(const char *label);
/* Every label type, NULL-terminated, for help texts. */
extern const char *const pr_labels[];
/* The shard (0 .. PR_CERT_SHARDS-1) that holds certificate `number`. */
int pr_cert_shard(const char *number);
/* Checks a certificate's fields (not whether its category exists); 0 or
   -1 with the field named in err. */
int pr_check_certificate(const char *number, const char *holder,
                         const char *holder_name, const char *product,
                         const char *model, const char *category,
                         const char *label, int grade, const char *issuer,
                         int64_t from_ms, int64_t to_ms, char *err,
                         size_t errlen);
/* Checks a category's fields; policy 0 none, 1 priority, 2 mandatory;
   labels a comma list.  0 or -1 with the field named in err. */
int pr_check_category(const char *code, const char *name, int policy,
                      int deduction_bp, const char *labels, int min_grade,
                      char *err, size_t errlen);

/* ---- the sealed bid ---- */

#define PR_SALT_HEX 32 /* 16 random bytes, hex */

typedef struct pr_line {
  char item[33];
  int64_t unit_price;
  char cert[65];
} pr_line;

typedef struct pr_bid {
  char tender[49];
  char supplier[65];
  char salt[PR_SALT_HEX + 1];
  char currency[4];
  int sme; /* 0 none, 1 medium, 2 small, 3 micro */
  size_t nlines;
  pr_line lines[PR_MAX_ITEMS];
} pr_bid;

const char *pr_sme_name(int sme);
/*
 * The canonical text of a bid: what is sealed, and what its hash (SHA-256,
 * hex) is taken over.  Lines are sorted by item.  Returns the length
 * written (without the NUL) or -1 when out is too small.  The format is in
 * procurement.md, so anyone can check an opened bid against its hash.
 */
long pr_bid_text(const pr_bid *b, char *out, size_t outlen);
/* The longest canonical text a bid of this tender and supplier on these
   items could have (the longest SME class, price and certificate number):
   a bid is sealed padded to it, so the sealed length tells nothing. */
size_t pr_bid_text_max(const pr_bid *b);
/* Parses a canonical text back (strict: exactly what pr_bid_text writes);
   0 or -1 with why in err. */
int pr_bid_parse(const char *text, size_t len, pr_bid *b, char *err,
                 size_t errlen);

/* ---- evaluation of one bid ---- */

typedef struct pr_item_rule {
  const char *id;
  const char *category;
  int64_t quantity;
  int64_t budget; /* 0: none */
  int policy;     /* 0 none, 1 priority, 2 mandatory */
  int deduction_bp;
  const char *labels; /* comma list of accepted label types */
  int min_grade;
} pr_item_rule;

typedef struct pr_tender_rule {
  const char *currency;
  int64_t budget;
  int kind; /* 0 goods, 1 services, 2 works */
  int green;
  int sme;
  int sme_bp;
  int64_t security; /* required bid security (fen) */
  size_t nitems;
  const pr_item_rule *items;
} pr_tender_rule;

/* A certificate as the register held it when the bid was evaluated. */
typedef struct pr_cert_state {
  int found;
  const char *holder; /* USCC */
  const char *category;
  const char *label;
  int grade;
  int64_t from_ms, to_ms;
  int status; /* 1 valid, 2 suspended, 3 revoked */
  int64_t status_ms;
} pr_cert_state;

/* Looks certificate `number` up; returns NULL when it was not asked for. */
typedef const pr_cert_state *(*pr_cert_fn)(void *arg, const char *number);

typedef struct pr_eval {
  int valid;
  int64_t bid_price;
  int64_t green;     /* green deductions */
  int64_t sme;       /* SME deduction */
  int64_t evaluated; /* bid_price - green - sme */
  int sme_class;     /* the class the deduction used, 0: none */
  size_t green_items;
  /* 1: the bid has no price to give (an item or the total beyond any
     amount, or a damaged quantity): bid_price is 0, not its price. */
  int no_price;
} pr_eval;

/*
 * Evaluates one opened bid against the tender's rules at time `at` (the
 * opening, or the start of a re-evaluation round): every check in order,
 * one line each in checks (the evaluation sheet), and why it is
 * disqualified, if it is, in reasons ("; "-separated).  `uscc` and
 * `registered_sme` are the bidder's register entry ("" and -1: not
 * registered, which disqualifies); `lodged` the bid security recorded for
 * it.  Returns 0, or -1 when a buffer was too
 * small.
 */
int pr_evaluate(const pr_tender_rule *t, const pr_bid *b, const char *uscc,
                int registered_sme, int64_t lodged, int64_t at, pr_cert_fn cert,
                void *arg, pr_eval *out, char *checks, size_t checks_len,
                char *reasons, size_t reasons_len);

/* Comprehensive scoring: floor(lowest * weight / evaluated). */
int32_t pr_price_score(int64_t lowest, int64_t evaluated, int32_t weight_bp);
/* The committee's score of a bid: the mean of its members' scores,
   rounded half up. */
int32_t pr_mean_score(const int32_t *scores, size_t n);

#endif /* GM_PROCUREMENT_RULES_H */
