/*
 * The finance plugin's own header: what its files share.  Not installed
 * and not seen by the host; everything here has hidden visibility.
 *
 *   finance.c     the plugin: description, roles, methods, settings, init
 *   reply.c       script runs and replies, referral records and the views
 *                 each reader may see
 *   directory.c   the catalogue, the calendar, banks, their staff, products
 *   enterprise.c  enterprise profiles
 *   referral.c    screening, submitting, reading and listing referrals
 *   workflow.c    claim, pick, contact ... fund, decline, withdraw; the
 *                 pick and contact deadlines
 *   archive.c     ended referrals leave Redis; their record from the ledger
 *   index.c       what follows every transition: bank queues, the
 *                 enterprise's list, private events; the sync deadline;
 *                 bank.queue
 *   reports.c     bank reports, the centre's report, monthly statements
 *   settle.c      the finance_* ledger tables and the settle callback
 *   rules.c       rules without Redis (shared with gm and the tests)
 *   cli.c         `gm finance ...`
 */
#ifndef GM_FINANCE_H
#define GM_FINANCE_H

#include <stddef.h>
#include <stdint.h>

#include <greenmarket/plugin.h>

#include "finance.pb-c.h"
#include "rules.h"

/* Embedded by gm_add_plugin(... LUA ...) and CMakeLists.txt. */
extern const char gm_lua_lib[], gm_lua_dir[], gm_lua_referral[], gm_lua_queue[],
    gm_lua_enterprise[];
extern const char gm_finance_catalogue_csv[], gm_finance_calendar_csv[];

/* The directory's tag (dir.lua). */
#define FINANCE_DIR_TAG "dir"
/* Products in the directory at most (dir.lua: screening reads a class's
   products in one step). */
#define FINANCE_MAX_PRODUCTS 2000
/* Working days are counted at most this many days ahead. */
#define FINANCE_HORIZON_DAYS 120
/* Text fields: description, use of proceeds, notes, questions, answers. */
#define FINANCE_MAX_TEXT 4000
#define FINANCE_MAX_NAME 200
#define FINANCE_MAX_CERTS 16
/* referral.list and bank.queue pages. */
#define FINANCE_LIST_DEFAULT 50
#define FINANCE_LIST_MAX 100
/* referral.list merges the first offset + limit of Redis and the ledger. */
#define FINANCE_LIST_OFFSET_MAX 100000
#define FINANCE_QUEUE_DEFAULT 100
#define FINANCE_QUEUE_MAX 1000
/* Rows in one statement or report (never cut short silently). */
#define FINANCE_STATEMENT_MAX 100000
/* Days one report or statement may cover. */
#define FINANCE_REPORT_MAX_DAYS 3660

/* The host's services (set in init). */
extern const gm_host_api *host;
/* Non-zero when init registered the scripts' read-only twins. */
extern int finance__twins;
/* The read-only twin that runs `op` of `script` (any op: NULL), or NULL. */
const char *finance__twin(const char *script, const char *op);
/* Non-zero when init registered the archive's twins that run over
   maxmemory (GM_SCRIPT_ALLOW_OOM): "<script>.free" runs `op` (any: NULL),
   or NULL. */
extern int finance__free_twins;
const char *finance__free_twin(const char *script, const char *op);
/* [market.finance] settings, read in init. */
extern long finance__max_claims;      /* first banks to claim get access */
extern long finance__pick_days;       /* working days the enterprise has */
extern long finance__contact_days;    /* days the picked bank has */
extern long finance__decision_days;   /* then, to fund or decline */
extern long finance__sync_ms;         /* a transition's sync deadline */
extern long finance__offer_days;      /* a pending bank link offer lasts */
extern long finance__archive_days;    /* an ended referral leaves Redis */
extern long finance__archive_sweep_s; /* looks for ones without a deadline */
/* Test builds only (GM_FAILURE_INJECTION): gmd kills itself after a
   request's referral step, before its index steps; 0: off. */
extern long finance__kill_before_index;

/* The catalogue shipped in the plugin (catalogue.csv), read in init. */
typedef struct finance__entry {
  char code[12], parent[12];
  char *name, *name_en;
} finance__entry;
extern finance__entry *finance__builtin;
extern size_t finance__nbuiltin;
/* The calendar shipped in the plugin (calendar.csv), read in init. */
extern gm__finance_calendar finance__builtin_cal;
/* The years the shipped calendar has days of: 'a' from the State
   Council's arrangement, 's' only the holidays the law fixes, 0 none. */
#define FINANCE_CAL_YEAR0 2000
#define FINANCE_CAL_YEARS 100
char finance__cal_year(int year);
const finance__entry *finance__builtin_find(const char *code);

/* ---- reply.c ---- */

/* Item i of an array reply as text ("" when absent) or number (0). */
const char *finance__s(const gm_value *v, size_t i);
int64_t finance__i(const gm_value *v, size_t i);
/* Item i when it is an array, else an empty array. */
const gm_value *finance__a(const gm_value *v, size_t i);
/* The value of `name` in a flat name/value array ("" when absent). */
const char *finance__kv(const gm_value *flat, const char *name);

/* Runs `script` on `tag` with the key prefix (KEYS[1]); refuses a nil
   reply (GM_INTERNAL): every finance script answers something. */
gm_status finance__run(gm_call *call, const char *script, const char *tag,
                       size_t nargs, const char *const *args,
                       const gm_value **v);
char *finance__num(gm_call *call, int64_t v);
/* What a user typed, cut to max bytes at a character boundary, for a
   message (gm__finance_cut in the call's arena). */
const char *finance__q(gm_call *call, const char *s, size_t max);
/* A number a script stored, clamped to int32 (garbage reads as 0). */
int32_t finance__i32(const char *s);
/* An int64 from a record as an int32 field, clamped. */
int32_t finance__clamp32(int64_t v);
/* Refuses a text field outside min..max bytes or with control characters
   (line breaks and tabs allowed with `lines`), naming `field`. */
gm_status finance__need_text(gm_call *call, const char *field, const char *s,
                             size_t min, size_t max, int lines);
/* The caller holds the centre role (admins hold every role). */
int finance__is_centre(gm_call *call);

/* A referral as referral.lua returns it. */
typedef struct finance__ref {
  const gm_value *r;      /* P.r, flat */
  const gm_value *eb;     /* eligible bank -> products, flat */
  const gm_value *cl;     /* claimants in claim order */
  const gm_value *cp;     /* claimant -> product/fee, flat */
  const gm_value *x;      /* banks that missed the contact deadline */
  const char *transition; /* what the step did ("none": nothing due) */
  int from;               /* the state before */
  const char *id;
  int state;
  int64_t version;
  int64_t archived; /* > 0: read from the ledger, archived at that ms */
} finance__ref;

/* Parses a referral.lua reply; GM_INTERNAL when it has another shape. */
gm_status finance__ref_parse(gm_call *call, const gm_value *v, finance__ref *r);
/* Field `name` of the referral ("" when unset). */
const char *finance__f(const finance__ref *r, const char *name);
int64_t finance__fi(const finance__ref *r, const char *name);
/* 1 when `bank` is eligible / claimed this round / missed its deadline. */
int finance__eligible(const finance__ref *r, const char *bank);
int finance__claimant(const finance__ref *r, const char *bank);
int finance__excluded(const finance__ref *r, const char *bank);
/* Runs referral.lua op with args (the op first) on referral `id`. */
gm_status finance__referral_run(gm_call *call, const char *id, size_t nargs,
                                const char *const *args, finance__ref *r);

/*
 * What `bank` may see of r (NULL bank: no bank); `full` for the
 * enterprise and the centre.  A bank holding it sees everything, a
 * claimant the details (and who, with the enterprise's consent), an
 * eligible bank the summary while it may still claim, others nothing.
 */
Gm__Finance__Access finance__access(const finance__ref *r, const char *bank,
                                    int full);
/* The referral as a reader with access `a` sees it; `bank` (a bank's
   view) lists only that bank among the claimants. */
Gm__Finance__Referral *finance__view(gm_call *call, const finance__ref *r,
                                     Gm__Finance__Access a, const char *bank);
/* One bank's queue entry for r ("" when the bank has none). */
char *finance__queue_entry(gm_call *call, const finance__ref *r,
                           const char *bank);
/* A queue entry back as the summary it carries; sets *relation. */
Gm__Finance__Referral *finance__queue_view(gm_call *call, const char *id,
                                           const char *entry,
                                           const char **relation);
Gm__Finance__Enterprise *finance__enterprise(gm_call *call,
                                             const gm_value *flat);

/* A product's terms as dir.lua stores them: "bank|cur|amin|amax|tmin|
   tmax|classes|regions|rmin|rmax|fee" (NULL: not that shape). */
char *finance__product_pack(gm_call *call, const Gm__Finance__Product *p);
Gm__Finance__Product *finance__product_unpack(gm_call *call, const char *id,
                                              const char *rec,
                                              const char *name);

/* ---- directory.c ---- */

/* Runs dir.lua (the directory's tag). */
gm_status finance__dir(gm_call *call, size_t nargs, const char *const *args,
                       const gm_value **v);
/* The bank the caller acts for (linked by the centre), and the dir.lua
   'caller' reply (bank then its staff) in *members. */
gm_status finance__caller_bank(gm_call *call, const char **bank,
                               const gm_value **members);
/* *staffed: 1 when `bank` has a member holding the bank role (or the
   registry cannot say), 0 when nobody can act for it. */
gm_status finance__bank_staffed(gm_call *call, const char *bank, int *staffed);
/* The calendar in force (the centre's, else the shipped one) from a
   dir.lua calendar reply. */
void finance__calendar_from(gm_call *call, const gm_value *v,
                            gm__finance_calendar *cal);
/* Days from `from` to `to` of the calendar in force (a dir.lua step). */
gm_status finance__calendar_get(gm_call *call, int64_t from_day, int64_t to_day,
                                gm__finance_calendar *cal);
/* The pick deadline of a referral entering the pool now. */
gm_status finance__pick_due(gm_call *call, const gm__finance_calendar *cal,
                            int64_t *due);
gm_status finance__catalogue_load(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);
gm_status finance__catalogue_list(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);
gm_status finance__calendar_load(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply);
gm_status finance__calendar_list(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply);
gm_status finance__bank_create(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply);
gm_status finance__bank_link(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply);
gm_status finance__bank_list(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply);
gm_status finance__product_create(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);
gm_status finance__product_retire(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);
gm_status finance__product_list(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply);

/* ---- enterprise.c ---- */

gm_status finance__enterprise_register(gm_call *call,
                                       const ProtobufCMessage *req,
                                       ProtobufCMessage **reply);
gm_status finance__enterprise_get(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);

/* ---- referral.c ---- */

gm_status finance__referral_screen(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply);
gm_status finance__referral_create(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply);
gm_status finance__referral_get(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply);
gm_status finance__referral_list(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply);

/* ---- workflow.c ---- */

gm_status finance__claim(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply);
gm_status finance__pick(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);
gm_status finance__contact(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply);
gm_status finance__request_info(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply);
gm_status finance__answer(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply);
gm_status finance__approve(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply);
gm_status finance__fund(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);
gm_status finance__decline(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply);
gm_status finance__withdraw(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply);
/* Deadline callbacks: "pick" (nobody picked in time); "contact" (the
   picked bank made no contact in time) and "decision" (it made contact but
   neither funded nor declined in time), both finance__on_contact, of
   referral d->id. */
gm_status finance__on_pick(gm_call *call, const gm_deadline *d, void *arg);
gm_status finance__on_contact(gm_call *call, const gm_deadline *d, void *arg);
/* The timer that gives a decision deadline to referrals under review
   without one (contact made before the decision deadline existed). */
void finance__decision_sweep(gm_call *call, void *arg);

/* ---- index.c ---- */

/*
 * What follows a referral step that changed something: the queues of
 * banks[0..n) (each gets its view of r, or loses its entry), the
 * enterprise's list (a new referral), the private events (with
 * `members`, a dir.lua 'members' or 'caller' reply covering those banks,
 * or NULL to look them up), and the sync deadline's cancel.
 */
gm_status finance__after(gm_call *call, const finance__ref *r,
                         const char *const *banks, size_t n,
                         const gm_value *members);
/* Every eligible bank of r (a set for finance__after). */
const char **finance__all_banks(gm_call *call, const finance__ref *r,
                                size_t *n);
/* The sync deadline: finishes what a stopped broker left after a step. */
gm_status finance__on_sync(gm_call *call, const gm_deadline *d, void *arg);
gm_status finance__on_offer(gm_call *call, const gm_deadline *d, void *arg);
gm_status finance__bank_queue(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply);

/* ---- archive.c ---- */

/* The archive deadline of an ended referral: its keys leave Redis once
   the ledger holds its record. */
gm_status finance__on_archive(gm_call *call, const gm_deadline *d, void *arg);
/* The timer that gives an archive deadline to ended referrals without one. */
void finance__archive_sweep(gm_call *call, void *arg);
/*
 * After referral.lua answered NOT_FOUND for args (op, ...) on `id`: an
 * archived referral is read from the ledger ('get': *r filled, GM_OK) or
 * refused (any other op: GM_PERMISSION_DENIED to who is no party of it,
 * as referral.lua refuses it, else GM_FAILED_PRECONDITION naming the
 * archive); GM_NOT_FOUND when the ledger has no archived referral `id`
 * either.
 */
gm_status finance__archived(gm_call *call, const char *id, size_t nargs,
                            const char *const *args, finance__ref *r);

/* ---- reports.c ---- */

gm_status finance__bank_report(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply);
gm_status finance__report(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply);
gm_status finance__statement(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply);
/* Which bank a report is about: the caller's own, or (centre) any. */
gm_status finance__report_bank(gm_call *call, const char *asked,
                               const char **bank);

/* ---- settle.c ---- */

gm_status finance__settle_init(gm_market *m);

#endif /* GM_FINANCE_H */
