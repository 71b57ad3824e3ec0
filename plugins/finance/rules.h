/*
 * The finance rules that need no Redis: the fee and its rounding, amount
 * bands, dates and working days in Asia/Shanghai, division codes, catalogue
 * codes and the catalogue and calendar files, ids, and amounts as people
 * type them.  Shared by the plugin, `gm finance` (cli.c) and the tests, so
 * all three apply one rule.
 */
#ifndef GM_FINANCE_RULES_H
#define GM_FINANCE_RULES_H

#include <stddef.h>
#include <stdint.h>

/* Asia/Shanghai is UTC+8 all year (no daylight saving since 1991). */
#define GM_FINANCE_TZ_MS INT64_C(28800000)
#define GM_FINANCE_DAY_MS INT64_C(86400000)

/* The largest amount anywhere (a referral, a product bound, an approval,
 * a funding): 1,000,000,000,000.00 yuan.  It keeps amounts exact in the
 * Lua scripts (below 2^53) and amount * fee_bp inside int64 (10^18). */
#define GM_FINANCE_MAX_AMOUNT INT64_C(100000000000000)
/* Basis points of a rate or a fee: at most 100%. */
#define GM_FINANCE_MAX_BP 10000
/* A product's referral fee: at most 5%.  Lenders pay referral platforms
 * about 0.5-1.5% of the funded amount (shared/DESIGN.md); 5% leaves room
 * for small loans' fixed costs, while a fee like 80 (meant as 0.80 %, read
 * as 80 %) is refused instead of billed. */
#define GM_FINANCE_MAX_FEE_BP 500
#define GM_FINANCE_MAX_TENOR 600 /* months: 50 years */
/* An expected benefit: at most 10^12 kg (a billion tonnes) a year. */
#define GM_FINANCE_MAX_BENEFIT INT64_C(1000000000000)

/*
 * The referral fee: fee_bp basis points of `amount` fen, rounded half up
 * to the fen (amount * bp / 10000, a remainder of 5000 or more rounds up),
 * in int64 arithmetic.  0 <= amount <= GM_FINANCE_MAX_AMOUNT and
 * 0 <= bp <= GM_FINANCE_MAX_BP keep the product below 10^18; outside them
 * the result is -1.
 */
int64_t gm__finance_fee(int64_t amount, int32_t bp);

/* part / whole in basis points, rounded down, 0..10000 (0 when whole is
 * not positive), without overflow whatever the counts. */
int32_t gm__finance_ratio_bp(int64_t part, int64_t whole);

/* The band an amount falls in, as a bank sees it before its claim:
 * [min, max) fen, max 0 for the top band (100 million yuan and more). */
void gm__finance_band(int64_t amount, int64_t *min, int64_t *max);

/* ---- dates (Asia/Shanghai) ---- */

/* Days since 1970-01-01 in Asia/Shanghai of `ms`.  The date functions
   take any int64: days and times are clamped to 0000-01-01 .. 9999-12-31
   (include/greenmarket/date.h). */
int64_t gm__finance_day_of(int64_t ms);
/* The first ms of `day`. */
int64_t gm__finance_day_start_ms(int64_t day);
/* "YYYY-MM-DD" (years 1970-9999) -> day; -1 when it is no such date. */
int gm__finance_parse_date(const char *s, int64_t *day);
/* day -> "YYYY-MM-DD". */
const char *gm__finance_format_date(int64_t day, char out[16]);
/* "YYYY-MM" -> its first day and the first day of the next month; -1
 * when it is no month. */
int gm__finance_parse_month(const char *s, int64_t *first, int64_t *next);
/* Why parse_date refused s, to follow it in a message ("is not ...",
 * "does not exist ...", "is before ..."). */
const char *gm__finance_date_why(const char *s);
/* Why parse_month refused s, the same way. */
const char *gm__finance_month_why(const char *s);
/* 0 Sunday .. 6 Saturday. */
int gm__finance_weekday(int64_t day);

/*
 * A holiday calendar: the days off on weekdays and the weekend days worked
 * (China moves working days around public holidays).  Both sorted.
 */
typedef struct gm__finance_calendar {
  const int64_t *holidays;
  size_t nholidays;
  const int64_t *workdays;
  size_t nworkdays;
} gm__finance_calendar;

/* 1 when `day` is a working day: a worked weekend day, or Monday-Friday
 * that is no holiday. */
int gm__finance_working(const gm__finance_calendar *cal, int64_t day);
/*
 * "n working days after from_ms": the end (24:00, Asia/Shanghai) of the
 * n-th working day after the day of from_ms, as ms.  A referral submitted
 * on Monday has until the end of the next Monday with 5 working days and
 * no holiday.  Looks at most `horizon` days ahead; -1 when the calendar
 * has fewer than n working days in them.
 */
int gm__finance_working_due(const gm__finance_calendar *cal, int64_t from_ms,
                            int n, int horizon, int64_t *due);

/* ---- codes and ids ---- */

/* A division code (GB/T 2260): six digits with a province code that
 * exists (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82). */
int gm__finance_valid_region(const char *s);
/* Why valid_region refused s, to follow the code in a message. */
const char *gm__finance_region_why(const char *s);
/* A product's region covers an enterprise's: "000000" all, "330000" the
 * province, "330500" the city, else exactly. */
int gm__finance_region_covers(const char *product, const char *region);
/* The city's code of a division: "330502" -> "330500" (a summary shows
 * no finer place). */
void gm__finance_city(const char *region, char out[7]);
/* A catalogue code: "1".."9", then ".N" parts of 1-2 digits, at most 3
 * levels ("3", "3.2", "3.2.10"). */
int gm__finance_valid_code(const char *s);
/* Orders catalogue codes as the catalogue lists them (1, 1.1, 1.2, 1.10,
 * 2); text that is no code sorts by its bytes, and always ends. */
int gm__finance_code_cmp(const char *a, const char *b);
/* The top class of a code: "3.2.1" -> '3'. */
char gm__finance_top(const char *code);
/* A product class covers a referral's sub-item: the same code or a parent
 * of it ("3" and "3.2" cover "3.2.1"). */
int gm__finance_class_covers(const char *product_class, const char *subitem);
/* A bank id: [a-z0-9][a-z0-9-]*, at most 32. */
int gm__finance_valid_bank(const char *s);
/* A product id: 1-48 of [A-Za-z0-9._-]. */
int gm__finance_valid_product(const char *s);
/* A referral id: R and 8 to 15 digits. */
int gm__finance_valid_referral(const char *s);
/* A participant id the scripts can store: 1-64 of [A-Za-z0-9._-]. */
int gm__finance_valid_participant(const char *s);

/* ---- the catalogue and calendar files ---- */

/*
 * The catalogue file: a header line "code,parent,name,name_en", then one
 * entry per line; '#' lines and blank lines are skipped.  Fields hold no
 * comma and no double quote (the published names use full-width
 * punctuation).  A parent must come before its children and must be the
 * code without its last part; top classes have parent "".  Calls `add`
 * per entry (return non-zero to stop).  Returns the entries read, or -1
 * with err naming the line and what is wrong.
 */
typedef int (*gm__finance_entry_fn)(void *arg, const char *code,
                                    const char *parent, const char *name,
                                    const char *name_en);
long gm__finance_catalogue_parse(const char *text, gm__finance_entry_fn add,
                                 void *arg, char *err, size_t errlen);

/*
 * The calendar file: a header line "date,kind,note", then "YYYY-MM-DD,
 * holiday|workday|statutory,note" lines (statutory: a holiday the law
 * fixes, of a year whose arrangement the file does not hold).  A holiday
 * on a weekend and a workday on a weekday are refused (they change
 * nothing: a mistake).  Calls `add` per day with its kind: 'h' holiday,
 * 'w' workday, 's' statutory.  Returns the days read, or -1 with err.
 */
typedef int (*gm__finance_day_fn)(void *arg, int64_t day, char kind,
                                  const char *note);
long gm__finance_calendar_parse(const char *text, gm__finance_day_fn add,
                                void *arg, char *err, size_t errlen);

/* `s` cut to at most `max` bytes at a UTF-8 character boundary, "..."
 * appended when cut, into out[outlen]: for echoing what a user typed in a
 * message without splitting a character. */
const char *gm__finance_cut(const char *s, size_t max, char *out,
                            size_t outlen);

/* ---- amounts as people type them ---- */

/*
 * An amount, carried in hundredths of its currency's unit (fen for CNY),
 * with the currency's ISO 4217 decimals (gm_iso4217_minor): JPY 4500000,
 * CNY 4500000.00, KWD 1.500, CLF 2.5000.  An amount with a fraction its
 * currency has no digit for (0.50 JPY, stored before the check below) and
 * a code without a minor unit: two decimals, as stored.
 */
const char *gm__finance_format_money(int64_t amount, const char *currency,
                                     char out[40]);
/*
 * 0, or -1 with err when `amount` (hundredths) has more decimals than its
 * currency has (a fraction of a yen), naming `what`, the currency and its
 * decimals.  Currencies with 3 or 4 decimals pass: hundredths have fewer.
 */
int gm__finance_money_check(const char *what, int64_t amount,
                            const char *currency, char *err, size_t errlen);
/* bp -> "3.45" (percent) */
const char *gm__finance_format_pct(int64_t bp, char out[16]);
/* kg -> "12.345" (tonnes) */
const char *gm__finance_format_tonnes(int64_t kg, char out[32]);
/*
 * Parses a decimal with at most `decimals` places into an integer scaled
 * by 10^decimals ("85.5", 2 -> 8550) with integer arithmetic only,
 * accepting 0 .. max (scaled).  Returns 0, or -1 with err saying what is
 * wrong, naming the value `what` (the option or field as the user typed
 * it) in `unit` ("CNY", "percent", "tonnes"), and the text typed when it
 * is short printable ASCII.
 */
int gm__finance_parse_decimal(const char *what, const char *unit,
                              const char *text, int decimals, int64_t max,
                              int64_t *out, char *err, size_t errlen);

#endif
