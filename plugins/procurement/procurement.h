/*
 * The procurement plugin's own header: what its files share.  Not installed
 * and not seen by the host; everything here has hidden visibility.
 *
 *   procurement.c  the plugin: description, methods, roles, configuration,
 *                  init; script replies and small helpers
 *   seal.c         the bid key file, sealing and opening bids, hashes, the
 *                  draw (libsodium)
 *   catalogue.c    categories, certificates, the calendar, the parties
 *   tender.c       drafts, joint demand, publishing, amendments, security
 *   bid.c          sealed bids: submit, replace, withdraw, read
 *   evaluate.c     the opening and evaluation (the "open" deadline), the
 *                  committee's scores
 *   award.c        awards, challenges, passing an award on (the "sign"
 *                  deadline), contracts
 *   records.c      what is read from the ledger: lists, bids, the sheet
 *   ocds.c         the OCDS 1.1.5 release package of a tender
 *   releases.c     an OCDS release per change, written at settlement
 *   archive.c      ended tenders leave Redis (the "archive" deadline);
 *                  reads of an archived tender from the ledger
 *   settle.c       the procurement_* ledger tables and the settle callback
 *   rules.c        the rules without Redis (rules.h; shared with gm)
 *   cli.c          `gm procurement ...`
 */
#ifndef GM_PROCUREMENT_H
#define GM_PROCUREMENT_H

#include <stddef.h>
#include <stdint.h>

#include <greenmarket/plugin.h>

#include "procurement.pb-c.h"
#include "rules.h"

/* Embedded by gm_add_plugin(... LUA ...). */
extern const char gm_lua_lib[], gm_lua_catalogue[], gm_lua_tender[],
    gm_lua_bid[], gm_lua_open[], gm_lua_award[];
/* calendar.csv, embedded by CMakeLists.txt. */
extern const char gm_procurement_calendar_csv[];

/* The host's services and the settings, written in init only. */
extern const gm_host_api *host;
/* Non-zero when init registered the scripts' read-only twins. */
extern int pr__twins;
/* The read-only twin that runs `op` of `script` (any op: NULL), or NULL. */
const char *pr__twin(const char *script, const char *op);
/* Non-zero when init registered the archive's twins that run over
   maxmemory (GM_SCRIPT_ALLOW_OOM): "<script>.free" runs `op` (any: NULL),
   or NULL. */
extern int pr__free_twins;
const char *pr__free_twin(const char *script, const char *op);
extern long pr__page;            /* bids per opening or scoring step */
extern long pr__min_open_days;   /* an open tender's shortest bidding */
extern long pr__min_rfq_days;    /* and a quotation's (working days) */
extern char pr__ocid_prefix[32]; /* the OCDS ocid prefix */
/* Test builds only (GM_FAILURE_INJECTION): gmd kills itself after storing
   this page of an opening; 0: off. */
extern long pr__kill_after_page;
/* Test builds only: gmd kills itself after the first page of totals. */
extern long pr__kill_in_totals;
/* Test builds only: the first firing of totals, after reading its first
   page, creates this file and waits (60 s at most) while it exists, so a
   test can change a score between a page's read and its store; "": off. */
extern char pr__pause_in_totals[4096];
/* [market.procurement] archive_after_days, in ms. */
extern int64_t pr__archive_ms;

/* The host passes at most 256 arguments to a script run: batches go in
   records of tab-joined fields, at most this many per run. */
#define PR_RECORDS_PER_RUN 250

/* SQL: whether the sheet row `s` (the table or its alias) has no price to
   give (priced beyond any amount: its bid_price is 0, not its price).
   The evaluation stores the flag (no_price, ledger migration 7).  Rows
   settled before it have NULL there: for them the only record is the
   reasons the evaluation wrote, so they are recognised by that text, as
   every version before the flag did.  Contains '%': never pass it as a
   format, only as a %s argument or a literal. */
#define PR_SQL_NO_PRICE(s)              \
  "coalesce(" s ".no_price, " s         \
  ".reasons LIKE '%beyond any amount%'" \
  " OR " s ".reasons LIKE '%has no valid quantity%', 0)"

/* ---- procurement.c: replies and helpers ---- */

const char *pr__s(const gm_value *r, size_t i);
int64_t pr__i(const gm_value *r, size_t i);
/* The same clamped to int32 (a count, version or enum of a record; a
   damaged one must not wrap). */
int32_t pr__i32(const gm_value *r, size_t i);
const gm_value *pr__item(const gm_value *r, size_t i);
/* Runs script `script` on `tag` with the one key "k". */
gm_status pr__run(gm_call *call, const char *script, const char *tag,
                  size_t nargs, const char *const *args, const gm_value **v);
char *pr__num(gm_call *call, int64_t v);
/* Fields joined by tabs: one record of a batch (no field holds a tab). */
char *pr__pack(gm_call *call, size_t n, const char *const *fields);
/* "t:<id>" after checking the id's shape (INVALID_ARGUMENT otherwise). */
gm_status pr__tender_tag(gm_call *call, const char *id, const char **tag);
/* Checks a text field (pr_valid_text) and fails the call with why. */
gm_status pr__text(gm_call *call, const char *what, const char *s, size_t max,
                   int newlines);
/* A protobuf-c allocator over the call's arena: nothing to free. */
ProtobufCAllocator *pr__allocator(gm_call *call);
/* The shard tag of a party, or of a credit code (its claim): "org:NN". */
const char *pr__org_tag(gm_call *call, const char *id);
/* Publishes to an audience when this host can (never falls back to
   public for a private event). */
void pr__tell(gm_call *call, gm_audience a, const char *who, const char *event,
              const ProtobufCMessage *msg);

/* ---- seal.c ---- */

/* Loads [market.procurement] key_file, creating it (0600) when missing. */
gm_status pr__seal_init(gm_market *m);
void pr__seal_shutdown(void);
/* Non-zero once a key is loaded. */
int pr__seal_ready(void);
const char *pr__key_id(void);
/* Seals `text` for `tender`/`supplier`: base64 of nonce || ciphertext. */
char *pr__seal(gm_call *call, const char *tender, const char *supplier,
               const char *text, size_t len);
/* Opens what pr__seal made: the text without the NUL padding bid.c adds
   (*len its length); NULL with why in err when it does not open. */
char *pr__unseal(gm_call *call, const char *tender, const char *supplier,
                 const char *sealed, size_t *len, char *err, size_t errlen);
void pr__sha256_hex(const char *data, size_t len, char out[65]);
void pr__random_hex(char *out, size_t nbytes);
/* The tie-break draw of a bid: BLAKE2b keyed with the seed over its hash. */
void pr__draw(const char *seed_hex, const char *hash_hex, char out[17]);
char *pr__b64(gm_call *call, const uint8_t *data, size_t len);
uint8_t *pr__unb64(gm_call *call, const char *text, size_t *len);

/* ---- tender definitions (tender.c) ---- */

Gm__Procurement__Tender *pr__def_decode(gm_call *call, const char *b64);
char *pr__def_encode(gm_call *call, const Gm__Procurement__Tender *t);
/* Reads tender `id` (tender.lua get) into a view; NOT_FOUND when none. */
/* Non-zero when the caller may see tender t: published, or its agency's,
   one of its buyers' or an admin's (a draft, or a draft cancelled). */
int pr__may_see(gm_call *call, const Gm__Procurement__Tender *t);
gm_status pr__tender_read(gm_call *call, const char *id,
                          Gm__Procurement__TenderView **view);
/* The rules of a published tender, for pr_evaluate (items in the arena). */
void pr__tender_rule(gm_call *call, const Gm__Procurement__Tender *t,
                     pr_tender_rule *rule);

/* ---- the methods ---- */

#define PR_HANDLER(name)                                     \
  gm_status name(gm_call *call, const ProtobufCMessage *req, \
                 ProtobufCMessage **reply)

PR_HANDLER(pr__category_put);
PR_HANDLER(pr__category_get);
PR_HANDLER(pr__category_list);
PR_HANDLER(pr__certificate_put);
PR_HANDLER(pr__certificate_get);
PR_HANDLER(pr__certificate_status);
PR_HANDLER(pr__calendar_put);
PR_HANDLER(pr__calendar_get);
PR_HANDLER(pr__party_register);
PR_HANDLER(pr__party_get);
PR_HANDLER(pr__party_reclaim);
PR_HANDLER(pr__party_reclaim_decide);
PR_HANDLER(pr__tender_draft);
PR_HANDLER(pr__tender_demand);
PR_HANDLER(pr__tender_publish);
PR_HANDLER(pr__tender_amend);
PR_HANDLER(pr__tender_cancel);
PR_HANDLER(pr__tender_get);
PR_HANDLER(pr__tender_list);
PR_HANDLER(pr__tender_security);
PR_HANDLER(pr__bid_submit);
PR_HANDLER(pr__bid_replace);
PR_HANDLER(pr__bid_withdraw);
PR_HANDLER(pr__bid_get);
PR_HANDLER(pr__bid_list);
PR_HANDLER(pr__challenge_list);
PR_HANDLER(pr__evaluation_score);
PR_HANDLER(pr__evaluation_sheet);
PR_HANDLER(pr__tender_award);
PR_HANDLER(pr__award_get);
PR_HANDLER(pr__challenge_lodge);
PR_HANDLER(pr__challenge_answer);
PR_HANDLER(pr__contract_sign);
PR_HANDLER(pr__contract_deliver);
PR_HANDLER(pr__contract_accept);
PR_HANDLER(pr__contract_pay);
PR_HANDLER(pr__contract_get);
PR_HANDLER(pr__tender_export);

/* Deadline callbacks: "open" (the bid deadline, and a re-evaluation) and
   "sign" (the end of an award's signing period). */
gm_status pr__on_open(gm_call *call, const gm_deadline *d, void *arg);
gm_status pr__on_sign(gm_call *call, const gm_deadline *d, void *arg);
/* "rank": every score of the committee is in (evaluate.c): the totals. */
gm_status pr__on_rank(gm_call *call, const gm_deadline *d, void *arg);
/* "answer": a challenge's 7 working days passed (award.c). */
gm_status pr__on_answer(gm_call *call, const gm_deadline *d, void *arg);

/* ---- archive.c ---- */

/* The "archive" deadline: the ended tender's keys leave Redis. */
gm_status pr__on_archive(gm_call *call, const gm_deadline *d, void *arg);
/* The timer that gives an archive deadline to ended tenders without one. */
void pr__archive_sweep(gm_call *call, void *arg);
/* When tender `id` is archived: fails the call with FAILED_PRECONDITION
   naming where its record is; otherwise GM_NOT_FOUND, nothing recorded.
   gone: Redis said it holds no live tender `id` (then an ended tender
   whose archive the ledger has not learnt yet counts as archived). */
gm_status pr__archived_fail(gm_call *call, const char *id, int gone);
/* GM_OK when no ended tender's record in the ledger has the id (an ended
   tender's id stays its own after its keys left Redis: a new draft would
   overwrite its record); otherwise a FAILED_PRECONDITION saying so. */
gm_status pr__id_free(gm_call *call, const char *id);
/* tender.get of an archived tender: its view from the ledger. */
gm_status pr__tender_from_ledger(gm_call *call, const char *id,
                                 Gm__Procurement__TenderView **view);

/* Certificates of a catalogue shard, read for an evaluation or a bid. */
typedef struct pr__certs {
  size_t n, cap;
  const char **numbers;
  pr_cert_state *states;
} pr__certs;
/* catalogue.c: reads the shipped calendar (init), frees it (shutdown). */
gm_status pr__calendar_init(gm_market *m);
void pr__calendar_shutdown(void);
/* catalogue.c: the last ms of the n-th working day after local day `from`
   on the calendar (the day itself is day 0; FAILED_PRECONDITION when the
   calendar has fewer in the weeks read). */
gm_status pr__working_days_end(gm_call *call, int64_t from, int n,
                               int64_t *end);

/* Reads the certificates named (each shard once) into c. */
gm_status pr__certs_read(gm_call *call, const char *const *numbers, size_t n,
                         pr__certs *c);
const pr_cert_state *pr__certs_find(void *arg, const char *number);

/* records.c: reading the ledger */
gm_status pr__ledger_int(gm_call *call, const char *sql, const gm_param *p,
                         size_t np, int64_t *out);

/* ocds.c: a tender state as an OCDS tender status. */
const char *pr__ocds_status(const char *state);
/* releases.c: the OCDS release of one settled change, if it makes one. */
gm_status pr__release_settle(gm_ledger *tx, const gm_outbox_entry *e);

/* settle.c */
gm_status pr__settle_init(gm_market *m);

#endif /* GM_PROCUREMENT_H */
