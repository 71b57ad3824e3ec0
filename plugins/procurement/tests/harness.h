/*
 * The procurement test harness: a private redis-server and gmd (manual
 * clock, only the procurement plugin, a bid key file in the test's folder)
 * per test, and short helpers for the calls the tests make.  Everything
 * goes through the real broker, scripts and ledger.
 */
#ifndef PROCUREMENT_TEST_HARNESS_H
#define PROCUREMENT_TEST_HARNESS_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <stdint.h>

#include <greenmarket/client.h>

#include "cluster_fixture.h"
#include "gmd_fixture.h"
#include "procurement.pb-c.h"
#include "redis_fixture.h"
#include "rules.h"

extern gm_test_redis *pt_redis;
extern gm_test_gmd *pt_gmd;
extern gm_test_conn *pt_conn;
/* Status and message of the last pt_call. */
extern int pt_status;
extern char pt_message[2048];
/* The manual clock as the tests last set it. */
extern int64_t pt_now;

/* Starts redis + gmd with extra [market.procurement] lines (and any other
   sections after them); sets the clock to `now_ms`. */
void pt_start(const char *extra_conf, int64_t now_ms);
/* The same against a running cluster (cluster_fixture.h): gmd on its
   nodes; pt_stop stops gmd, the caller the cluster. */
void pt_start_cluster(gm_test_cluster *cl, const char *extra_conf,
                      int64_t now_ms);
void pt_stop(void);
/* The ms of local (Asia/Shanghai) "YYYY-MM-DD" hh:mm. */
int64_t pt_at(const char *date, int hh, int mm);
void pt_clock(int64_t ms);

/*
 * Calls procurement.<method> as `as`.  Mutating methods get a fresh
 * idempotency key unless `idem` is given.  Returns the decoded reply (free
 * with pt_free) or NULL with pt_status/pt_message set.
 */
ProtobufCMessage *pt_call(const char *as, const char *method,
                          const ProtobufCMessage *req);
ProtobufCMessage *pt_call_idem(const char *as, const char *method,
                               const char *idem, const ProtobufCMessage *req);
/* pt_call of a read the ledger answers: retried while it is UNAVAILABLE
   because settlement has not caught up (10 s). */
ProtobufCMessage *pt_call_settled(const char *as, const char *method,
                                  const ProtobufCMessage *req);
/* Asserts the call fails with `status` and a message containing `text`. */
void pt_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text);
#define pt_free(m) protobuf_c_message_free_unpacked(&(m)->base, NULL)

/* The certifier ("centre") puts calendar days, "DATE=KIND" each
   (holiday, working or normal), in one calendar.put; asserts it is
   stored. */
void pt_calendar_put(size_t n, const char *const *days);

/* Registers `who` with comma-separated roles in the broker. */
void pt_register(const char *who, const char *roles);
/* Registers `who` as a party: its credit code, name and SME size. */
void pt_party(const char *who, const char *uscc, Gm__Procurement__SmeClass s);
/* A category: policy, deduction (bp), accepted labels (comma list),
   minimum grade. */
void pt_category(const char *code, Gm__Procurement__Policy policy, int bp,
                 const char *labels, int min_grade);
/* A certificate of `holder` (USCC) valid from..to (ms). */
void pt_cert(const char *number, const char *holder, const char *category,
             const char *label, int grade, int64_t from, int64_t to);
void pt_cert_status(const char *number, Gm__Procurement__CertStatus st,
                    const char *reason);

/* A tender being drafted: fill it, then pt_publish. */
typedef struct pt_tender {
  Gm__Procurement__Tender t;
  Gm__Procurement__Item items[8];
  Gm__Procurement__Item *pitems[8];
  char *buyers[8];
  char *evaluators[8];
} pt_tender;
/* Lowest price, goods, CNY, both preferences on, deadline `deadline`. */
void pt_tender_init(pt_tender *d, const char *id, int64_t budget,
                    int64_t deadline);
void pt_item(pt_tender *d, const char *id, const char *category, int64_t qty,
             int64_t budget, const char *buyer);
/* Drafts and publishes as `agency`; asserts OK. */
void pt_publish(const char *agency, pt_tender *d);
/* The two steps alone: drafts (or redrafts) `d` as `agency`, publishes
   the draft `id` as `agency`; each asserts OK. */
void pt_draft(const char *agency, pt_tender *d);
void pt_publish_draft(const char *agency, const char *id);
/* An item for a request of its own (a demand, an amendment): `category`
   NULL is DESK, `buyer` NULL none; returns it. */
Gm__Procurement__Item *pt_new_item(Gm__Procurement__Item *it, const char *id,
                                   const char *category, int64_t qty,
                                   int64_t budget, const char *buyer);
/* The demand of n items for the draft `tender`; pt_demand: `buyer` sends
   it, asserting OK. */
Gm__Procurement__DemandRequest pt_demand_request(const char *tender,
                                                 Gm__Procurement__Item **items,
                                                 size_t n);
void pt_demand(const char *buyer, const char *tender,
               Gm__Procurement__Item **items, size_t n);

/* An amendment being made: fill a.ch's fields, then pt_call(...,
   &a.q.base). */
typedef struct pt_amend {
  Gm__Procurement__AmendRequest q;
  Gm__Procurement__Tender ch; /* the changes */
  char *fields[8];
  char buf[128];
} pt_amend;
/* Of tender `id`, naming `fields` ("budget,items"), with `note`. */
void pt_amend_init(pt_amend *a, const char *id, const char *fields,
                   const char *note);

/*
 * Hashes of a tender in Redis as one text, to show that a refused call
 * changed nothing: `keys` names them after the tender's prefix,
 * space-separated ("t dm am": the tender, its joint demand and its
 * amendments; "k:ID": a contract).  Free it, or hand it to pt_unchanged,
 * which reads them again, asserts they are as `before` and frees it.
 */
char *pt_hashes(const char *tender, const char *keys);
void pt_unchanged(const char *tender, const char *keys, char *before);
/* pt_expect, and that the tender, its joint demand and its amendments
   ("t dm am") are as they were. */
void pt_refused(const char *tender, const char *as, const char *method,
                const ProtobufCMessage *req, int status, const char *text);

/*
 * Runs a step of procurement's Redis script `script` (its function, as
 * gmd registered it) directly on Redis as participant `who` at the clock
 * pt_now, on tender `tender`'s keys, with the host's arguments as gmd
 * sends them and no idempotency record: for a race the broker cannot be
 * made to lose deterministically.  Returns the reply (freeReplyObject).
 */
redisReply *pt_script(const char *who, const char *script, const char *tender,
                      size_t nargs, const char *const *args);

/* One line of a bid: "ITEM=UNITPRICE[@CERT]" (fen). */
Gm__Procurement__BidReceipt *pt_bid(const char *who, const char *tender,
                                    Gm__Procurement__SmeClass sme,
                                    const char *const *lines, size_t n);
/* The tender as tender.get sees it (free with pt_free). */
Gm__Procurement__TenderView *pt_tender_get(const char *tender);
/* Polls until the tender's state is `state` (10 s); returns the last. */
char *pt_wait_state(const char *tender, const char *state);
/* The evaluation sheet (all rows). */
Gm__Procurement__Sheet *pt_sheet(const char *tender);
/* The row of `who` in a sheet, or NULL. */
const Gm__Procurement__SheetRow *pt_row(const Gm__Procurement__Sheet *s,
                                        const char *who);
Gm__Procurement__Award *pt_award(const char *agency, const char *tender);

/* Feeds, as a client sees them (dev mode: `as` is who listens). */
gm_feed *pt_feed(const char *as, const char *topic);
/* Publishes tenders T-WARM-<n> as city (one item of `category`, bids due in
   40 days) until `f`, subscribed to procurement.tender, hears one: a new
   subscription reaches the broker a moment later, and nothing says when. */
void pt_feed_warm(gm_feed *f, const char *category);
/* Reads `f` for at most `ms`: 1 once an event's body holds `text`; -1 at
   once if one holding `unwanted` (when not NULL) comes first; 0 if
   neither came.  Events read are dropped. */
int pt_feed_until(gm_feed *f, int ms, const char *text, const char *unwanted);

/* One integer from the ledger (read-only); -1 on no row. */
int64_t pt_ledger_int(const char *sql);
/* Polls the ledger until `sql` answers `want` (10 s); returns the last. */
int64_t pt_ledger_wait(const char *sql, int64_t want);
/* One text from the ledger into out ("" on no row). */
void pt_ledger_text(const char *sql, char *out, size_t outlen);

/* Three published codes (GB 32100-2015) for test parties. */
#define PT_USCC_A "914403001922038216"
#define PT_USCC_B "9144030071526726XG"
#define PT_USCC_C "91330100799655058B"
#define PT_USCC_D "91110108551385082Q"
#define PT_USCC_GOV "11100000000013127D"
/* A well-formed credit code of its own for test party number i (a credit
   code is registered to one party): into out (>= 19). */
char *pt_uscc(int i, char out[19]);
/* Monday 2026-03-02 10:00 in Shanghai. */
#define PT_MONDAY "2026-03-02"
#define PT_DAY INT64_C(86400000)

#endif
