/*
 * Settlement: the procurement_* ledger tables (migrations) and the callback
 * that writes each outbox entry into them.  The host has made each entry
 * idempotent on its event id; every write here is an upsert keyed by what
 * the entry describes, so the tables hold the latest state and the logs
 * (bids, payments, tender events) one row per entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "procurement.h"

static const gm_migration pr__migrations[] = {
    {1,
     "CREATE TABLE procurement_categories ("
     " code TEXT PRIMARY KEY, name TEXT NOT NULL, policy INTEGER NOT NULL,"
     " deduction_bp INTEGER NOT NULL, labels TEXT NOT NULL,"
     " min_grade INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE procurement_certificates ("
     " number TEXT PRIMARY KEY, holder TEXT NOT NULL,"
     " holder_name TEXT NOT NULL, product TEXT NOT NULL, model TEXT NOT NULL,"
     " category TEXT NOT NULL, label TEXT NOT NULL, grade INTEGER NOT NULL,"
     " issuer TEXT NOT NULL, valid_from_ms INTEGER NOT NULL,"
     " valid_to_ms INTEGER NOT NULL, status INTEGER NOT NULL,"
     " status_reason TEXT NOT NULL, status_ms INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL);"
     "CREATE INDEX procurement_certificates_holder"
     " ON procurement_certificates (holder);"
     "CREATE TABLE procurement_calendar ("
     " day INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
     " updated_ms INTEGER NOT NULL);"
     "CREATE TABLE procurement_parties ("
     " id TEXT PRIMARY KEY, uscc TEXT NOT NULL, name TEXT NOT NULL,"
     " size INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE procurement_tenders ("
     " tender_id TEXT PRIMARY KEY, lead TEXT NOT NULL, state TEXT NOT NULL,"
     " version INTEGER NOT NULL, title TEXT NOT NULL, currency TEXT NOT NULL,"
     " budget INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
     " published_ms INTEGER NOT NULL, round INTEGER NOT NULL,"
     " award INTEGER NOT NULL, bids INTEGER NOT NULL, reason TEXT NOT NULL,"
     " definition TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE INDEX procurement_tenders_published"
     " ON procurement_tenders (published_ms);"
     "CREATE TABLE procurement_tender_log ("
     " event TEXT PRIMARY KEY, tender_id TEXT NOT NULL, action TEXT NOT NULL,"
     " state TEXT NOT NULL, version INTEGER NOT NULL,"
     " time_ms INTEGER NOT NULL);"
     "CREATE INDEX procurement_tender_log_tender"
     " ON procurement_tender_log (tender_id, time_ms);"
     "CREATE TABLE procurement_amendments ("
     " tender_id TEXT NOT NULL, version INTEGER NOT NULL,"
     " fields TEXT NOT NULL, note TEXT NOT NULL, time_ms INTEGER NOT NULL,"
     " PRIMARY KEY (tender_id, version));"
     "CREATE TABLE procurement_security ("
     " tender_id TEXT NOT NULL, supplier TEXT NOT NULL,"
     " amount INTEGER NOT NULL, reference TEXT NOT NULL,"
     " time_ms INTEGER NOT NULL, PRIMARY KEY (tender_id, supplier));"
     "CREATE TABLE procurement_bids ("
     " tender_id TEXT NOT NULL, supplier TEXT NOT NULL, state TEXT NOT NULL,"
     " version INTEGER NOT NULL, hash TEXT NOT NULL,"
     " submitted_ms INTEGER NOT NULL,"
     " opened_text TEXT NOT NULL DEFAULT '',"
     " opened_ms INTEGER NOT NULL DEFAULT 0,"
     " PRIMARY KEY (tender_id, supplier));"
     "CREATE TABLE procurement_bid_log ("
     " event TEXT PRIMARY KEY, tender_id TEXT NOT NULL,"
     " supplier TEXT NOT NULL, action TEXT NOT NULL,"
     " version INTEGER NOT NULL, hash TEXT NOT NULL,"
     " time_ms INTEGER NOT NULL);"
     "CREATE TABLE procurement_rounds ("
     " tender_id TEXT NOT NULL, round INTEGER NOT NULL,"
     " method INTEGER NOT NULL, seed TEXT NOT NULL,"
     " evaluated_ms INTEGER NOT NULL, bids INTEGER NOT NULL,"
     " valid INTEGER NOT NULL, lowest INTEGER NOT NULL,"
     " ranked_ms INTEGER NOT NULL, PRIMARY KEY (tender_id, round));"
     "CREATE TABLE procurement_sheet ("
     " tender_id TEXT NOT NULL, round INTEGER NOT NULL,"
     " supplier TEXT NOT NULL, valid INTEGER NOT NULL,"
     " bid_price INTEGER NOT NULL, green INTEGER NOT NULL,"
     " sme INTEGER NOT NULL, evaluated INTEGER NOT NULL, draw TEXT NOT NULL,"
     " sme_class INTEGER NOT NULL, reasons TEXT NOT NULL,"
     " checks TEXT NOT NULL, hash TEXT NOT NULL,"
     " price_score INTEGER NOT NULL DEFAULT 0,"
     " tech_score INTEGER NOT NULL DEFAULT 0,"
     " total_score INTEGER NOT NULL DEFAULT 0, time_ms INTEGER NOT NULL,"
     " PRIMARY KEY (tender_id, round, supplier));"
     "CREATE TABLE procurement_tech_scores ("
     " tender_id TEXT NOT NULL, round INTEGER NOT NULL,"
     " evaluator TEXT NOT NULL, supplier TEXT NOT NULL,"
     " score INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
     " PRIMARY KEY (tender_id, round, evaluator, supplier));"
     "CREATE TABLE procurement_awards ("
     " tender_id TEXT NOT NULL, award INTEGER NOT NULL,"
     " supplier TEXT NOT NULL, value INTEGER NOT NULL, status TEXT NOT NULL,"
     " notice_ms INTEGER NOT NULL, challenge_until_ms INTEGER NOT NULL,"
     " sign_until_ms INTEGER NOT NULL, reason TEXT NOT NULL,"
     " updated_ms INTEGER NOT NULL, PRIMARY KEY (tender_id, award));"
     "CREATE TABLE procurement_challenges ("
     " challenge_id TEXT PRIMARY KEY, tender_id TEXT NOT NULL,"
     " award INTEGER NOT NULL, challenger TEXT NOT NULL, text TEXT NOT NULL,"
     " status TEXT NOT NULL, remedy INTEGER NOT NULL, answer TEXT NOT NULL,"
     " lodged_ms INTEGER NOT NULL, answered_ms INTEGER NOT NULL);"
     "CREATE TABLE procurement_contracts ("
     " contract_id TEXT PRIMARY KEY, tender_id TEXT NOT NULL,"
     " award INTEGER NOT NULL, agency TEXT NOT NULL, supplier TEXT NOT NULL,"
     " value INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,"
     " items TEXT NOT NULL, agency_signed_ms INTEGER NOT NULL,"
     " supplier_signed_ms INTEGER NOT NULL, bond INTEGER NOT NULL,"
     " bond_reference TEXT NOT NULL, delivered_ms INTEGER NOT NULL,"
     " accepted_ms INTEGER NOT NULL, paid INTEGER NOT NULL,"
     " note TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE INDEX procurement_contracts_tender"
     " ON procurement_contracts (tender_id);"
     "CREATE TABLE procurement_payments ("
     " event TEXT PRIMARY KEY, tender_id TEXT NOT NULL,"
     " contract_id TEXT NOT NULL, amount INTEGER NOT NULL,"
     " time_ms INTEGER NOT NULL);"},
    /* When an ended tender's live state left Redis (archive.c). */
    {2,
     "ALTER TABLE procurement_tenders"
     " ADD COLUMN archived_ms INTEGER NOT NULL DEFAULT 0;"},
    /* A challenge's answer period (GP Law art. 53), when it passed
       unanswered, and the complaint period after it (art. 55). */
    {3,
     "ALTER TABLE procurement_challenges"
     " ADD COLUMN answer_due_ms INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE procurement_challenges"
     " ADD COLUMN overdue_ms INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE procurement_challenges"
     " ADD COLUMN complaint_until_ms INTEGER NOT NULL DEFAULT 0;"},
    /* Requests for a credit code another participant registered, and the
       centre's decisions. */
    {4,
     "CREATE TABLE procurement_reclaims ("
     " uscc TEXT NOT NULL, lodged_ms INTEGER NOT NULL,"
     " claimant TEXT NOT NULL, holder TEXT NOT NULL, evidence TEXT NOT NULL,"
     " status TEXT NOT NULL, reason TEXT NOT NULL, decided_by TEXT NOT NULL,"
     " decided_ms INTEGER NOT NULL, PRIMARY KEY (uscc, lodged_ms));"},
    /* An OCDS release per change (releases.c). */
    {5,
     "CREATE TABLE procurement_releases ("
     " event TEXT PRIMARY KEY, tender_id TEXT NOT NULL,"
     " time_ms INTEGER NOT NULL, tag TEXT NOT NULL, release TEXT NOT NULL);"
     "CREATE INDEX procurement_releases_tender"
     " ON procurement_releases (tender_id, time_ms);"},
    /* The OCDS export reads a contract's payments and an award's
       challenges: without these, each read scanned the whole table (every
       payment and challenge of every tender ever settled). */
    {6,
     "CREATE INDEX procurement_payments_contract"
     " ON procurement_payments (contract_id, time_ms, event);"
     "CREATE INDEX procurement_challenges_award"
     " ON procurement_challenges (tender_id, award);"},
    /* no_price: 1 when the evaluation found the bid has no price to give
       (beyond any amount), 0 when it has one; NULL on rows settled before
       this column, which the OCDS export recognises by their reasons. */
    {7, "ALTER TABLE procurement_sheet ADD COLUMN no_price INTEGER;"},
    /* The archive sweep: ended tenders not archived (archive.c). */
    {8,
     "CREATE INDEX IF NOT EXISTS procurement_tenders_unarchived ON"
     " procurement_tenders"
     " (updated_ms, tender_id) WHERE archived_ms = 0 AND state IN"
     " ('complete', 'unsuccessful', 'cancelled');"},
};

/* A field as text ("" when absent) or as a number (0). */
static const char *pr__fs(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? v : "";
}

static int64_t pr__f(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? strtoll(v, NULL, 10) : 0;
}

#define P_TEXT(name) GM_TEXT(pr__fs(e, name))
#define P_INT(name) GM_INT(pr__f(e, name))

static gm_status pr__exec(gm_ledger *tx, const char *sql, gm_param *p,
                          size_t n) {
  return host->ledger_exec(tx, sql, p, n);
}

/* The title, currency and budget of a packed definition (base64), or
   blanks when it does not decode (a corrupted entry still settles). */
static void pr__def_fields(const char *b64, char *title, size_t tlen,
                           char cur[4], int64_t *budget) {
  size_t n = strlen(b64), got = 0;
  uint8_t *buf = malloc(n / 4 * 3 + 3);
  title[0] = cur[0] = '\0';
  *budget = 0;
  if (buf && sodium_base642bin(buf, n / 4 * 3 + 3, b64, n, NULL, &got, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0) {
    Gm__Procurement__Tender *t =
        gm__procurement__tender__unpack(NULL, got, buf);
    if (t) {
      snprintf(title, tlen, "%s", t->title);
      snprintf(cur, 4, "%s", t->currency);
      *budget = t->budget;
      gm__procurement__tender__free_unpacked(t, NULL);
    }
  }
  free(buf);
}

static gm_status pr__settle_tender(gm_ledger *tx, const gm_outbox_entry *e,
                                   const char *event) {
  const char *def = pr__fs(e, "def"), *action = pr__fs(e, "action");
  gm_status st;
  if (def[0]) {
    char title[256], cur[4];
    int64_t budget;
    pr__def_fields(def, title, sizeof title, cur, &budget);
    st = pr__exec(
        tx,
        "INSERT INTO procurement_tenders (tender_id, lead, state, version,"
        " title, currency, budget, deadline_ms, published_ms, round, award,"
        " bids, reason, definition, updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,"
        "?8,?9,?10,?11,?12,?13,?14,?15) ON CONFLICT (tender_id) DO UPDATE SET"
        " lead = ?2, state = ?3, version = ?4, title = ?5, currency = ?6,"
        " budget = ?7, deadline_ms = ?8, published_ms = ?9, round = ?10,"
        " award = ?11, bids = ?12, reason = ?13, definition = ?14,"
        " updated_ms = ?15",
        (gm_param[]){P_TEXT("id"), P_TEXT("lead"), P_TEXT("st"), P_INT("ver"),
                     GM_TEXT(title), GM_TEXT(cur), GM_INT(budget), P_INT("dl"),
                     P_INT("pub"), P_INT("round"), P_INT("aw"), P_INT("nb"),
                     P_TEXT("reason"), GM_TEXT(def), P_INT("t")},
        15);
  } else {
    st = pr__exec(
        tx,
        "UPDATE procurement_tenders SET state = ?2, round = ?3,"
        " award = ?4, bids = ?5, reason = ?6, updated_ms = ?7"
        " WHERE tender_id = ?1",
        (gm_param[]){P_TEXT("id"), P_TEXT("st"), P_INT("round"), P_INT("aw"),
                     P_INT("nb"), P_TEXT("reason"), P_INT("t")},
        7);
  }
  if (st == GM_OK && strcmp(action, "ranked") == 0)
    st = pr__exec(tx,
                  "UPDATE procurement_rounds SET ranked_ms = ?3"
                  " WHERE tender_id = ?1 AND round = ?2",
                  (gm_param[]){P_TEXT("id"), P_INT("round"), P_INT("t")}, 3);
  if (st == GM_OK)
    st = pr__exec(tx,
                  "INSERT OR IGNORE INTO procurement_tender_log (event,"
                  " tender_id, action, state, version, time_ms)"
                  " VALUES (?1,?2,?3,?4,?5,?6)",
                  (gm_param[]){GM_TEXT(event), P_TEXT("id"), GM_TEXT(action),
                               P_TEXT("st"), P_INT("ver"), P_INT("t")},
                  6);
  return st;
}

/* Runs on the settler thread inside its transaction, once per entry. */
static gm_status pr__settle_entry(gm_market *m, gm_ledger *tx,
                                  const gm_outbox_entry *e) {
  char event[256];
  const char *k = e->kind;
  snprintf(event, sizeof event, "%s/%s", e->stream, e->id);
  (void)m;

  if (!strcmp(k, "tender")) return pr__settle_tender(tx, e, event);
  if (!strcmp(k, "archived"))
    return pr__exec(tx,
                    "UPDATE procurement_tenders SET archived_ms = ?2"
                    " WHERE tender_id = ?1",
                    (gm_param[]){P_TEXT("id"), P_INT("t")}, 2);
  if (!strcmp(k, "category"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_categories (code, name, policy,"
        " deduction_bp, labels, min_grade, updated_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7)",
        (gm_param[]){P_TEXT("code"), P_TEXT("name"), P_INT("policy"),
                     P_INT("bp"), P_TEXT("labels"), P_INT("min"), P_INT("t")},
        7);
  if (!strcmp(k, "cert"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_certificates (number, holder,"
        " holder_name, product, model, category, label, grade, issuer,"
        " valid_from_ms, valid_to_ms, status, status_reason, status_ms,"
        " updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
        "?15)",
        (gm_param[]){P_TEXT("no"), P_TEXT("holder"), P_TEXT("hname"),
                     P_TEXT("product"), P_TEXT("model"), P_TEXT("cat"),
                     P_TEXT("label"), P_INT("grade"), P_TEXT("issuer"),
                     P_INT("from"), P_INT("to"), P_INT("st"), P_TEXT("why"),
                     P_INT("stt"), P_INT("t")},
        15);
  if (!strcmp(k, "cert_status"))
    return pr__exec(tx,
                    "UPDATE procurement_certificates SET status = ?2,"
                    " status_reason = ?3, status_ms = ?4, updated_ms = ?5"
                    " WHERE number = ?1",
                    (gm_param[]){P_TEXT("no"), P_INT("st"), P_TEXT("why"),
                                 P_INT("stt"), P_INT("t")},
                    5);
  if (!strcmp(k, "calendar")) {
    if (!strcmp(pr__fs(e, "kind"), "n"))
      return pr__exec(tx, "DELETE FROM procurement_calendar WHERE day = ?1",
                      (gm_param[]){P_INT("day")}, 1);
    return pr__exec(tx,
                    "INSERT OR REPLACE INTO procurement_calendar (day, kind,"
                    " updated_ms) VALUES (?1,?2,?3)",
                    (gm_param[]){P_INT("day"), P_TEXT("kind"), P_INT("t")}, 3);
  }
  if (!strcmp(k, "party"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_parties (id, uscc, name, size,"
        " updated_ms) VALUES (?1,?2,?3,?4,?5)",
        (gm_param[]){P_TEXT("id"), P_TEXT("uscc"), P_TEXT("name"),
                     P_INT("size"), P_INT("t")},
        5);
  if (!strcmp(k, "reclaim"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_reclaims (uscc, lodged_ms,"
        " claimant, holder, evidence, status, reason, decided_by, decided_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        (gm_param[]){P_TEXT("uscc"), P_INT("lodged"), P_TEXT("claimant"),
                     P_TEXT("holder"), P_TEXT("evidence"), P_TEXT("st"),
                     P_TEXT("reason"), P_TEXT("by"), P_INT("decided")},
        9);
  if (!strcmp(k, "party_drop"))
    return pr__exec(tx,
                    "DELETE FROM procurement_parties WHERE id = ?1 AND"
                    " uscc = ?2",
                    (gm_param[]){P_TEXT("id"), P_TEXT("uscc")}, 2);
  if (!strcmp(k, "amendment"))
    return pr__exec(tx,
                    "INSERT OR REPLACE INTO procurement_amendments (tender_id,"
                    " version, fields, note, time_ms) VALUES (?1,?2,?3,?4,?5)",
                    (gm_param[]){P_TEXT("id"), P_INT("ver"), P_TEXT("fields"),
                                 P_TEXT("note"), P_INT("t")},
                    5);
  if (!strcmp(k, "security"))
    return pr__exec(tx,
                    "INSERT OR REPLACE INTO procurement_security (tender_id,"
                    " supplier, amount, reference, time_ms)"
                    " VALUES (?1,?2,?3,?4,?5)",
                    (gm_param[]){P_TEXT("id"), P_TEXT("supplier"),
                                 P_INT("amount"), P_TEXT("ref"), P_INT("t")},
                    5);
  if (!strcmp(k, "bid")) {
    const char *action = pr__fs(e, "action");
    gm_status st = pr__exec(
        tx,
        "INSERT INTO procurement_bids (tender_id, supplier, state, version,"
        " hash, submitted_ms) VALUES (?1,?2,?3,?4,?5,?6)"
        " ON CONFLICT (tender_id, supplier) DO UPDATE SET state = ?3,"
        " version = ?4, hash = ?5, submitted_ms = ?6",
        (gm_param[]){
            P_TEXT("id"), P_TEXT("supplier"),
            GM_TEXT(strcmp(action, "withdrawn") ? "submitted" : "withdrawn"),
            P_INT("ver"), P_TEXT("hash"), P_INT("t")},
        6);
    if (st != GM_OK) return st;
    return pr__exec(
        tx,
        "INSERT OR IGNORE INTO procurement_bid_log (event,"
        " tender_id, supplier, action, version, hash, time_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7)",
        (gm_param[]){GM_TEXT(event), P_TEXT("id"), P_TEXT("supplier"),
                     GM_TEXT(action), P_INT("ver"), P_TEXT("hash"), P_INT("t")},
        7);
  }
  if (!strcmp(k, "sheet")) {
    /* member: "<bid price, 16 digits>|<draw>|<supplier>" */
    const char *member = pr__fs(e, "member");
    char draw[17] = "";
    if (strlen(member) > 33 && member[16] == '|' && member[33] == '|')
      snprintf(draw, sizeof draw, "%.16s", member + 17);
    /* An entry a broker of the version before wrote has no noprice:
       NULL, as the rows settled before the column. */
    gm_param nop = gm_entry_field(e, "noprice") ? P_INT("noprice") : GM_NULL;
    gm_status st = pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_sheet (tender_id, round, supplier,"
        " valid, bid_price, green, sme, evaluated, draw, sme_class, reasons,"
        " checks, hash, time_ms, no_price) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,"
        "?10,?11,?12,?13,?14,?15)",
        (gm_param[]){P_TEXT("id"), P_INT("round"), P_TEXT("supplier"),
                     P_INT("valid"), P_INT("bid"), P_INT("green"), P_INT("sme"),
                     P_INT("evaluated"), GM_TEXT(draw), P_INT("smecls"),
                     P_TEXT("reasons"), P_TEXT("checks"), P_TEXT("hash"),
                     P_INT("t"), nop},
        15);
    if (st != GM_OK || !pr__fs(e, "text")[0]) return st;
    return pr__exec(tx,
                    "UPDATE procurement_bids SET state = 'opened',"
                    " opened_text = ?3, opened_ms = ?4"
                    " WHERE tender_id = ?1 AND supplier = ?2",
                    (gm_param[]){P_TEXT("id"), P_TEXT("supplier"),
                                 P_TEXT("text"), P_INT("t")},
                    4);
  }
  if (!strcmp(k, "evaluated"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_rounds (tender_id, round, method,"
        " seed, evaluated_ms, bids, valid, lowest, ranked_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        (gm_param[]){P_TEXT("id"), P_INT("round"), P_INT("method"),
                     P_TEXT("seed"), P_INT("evat"), P_INT("nb"),
                     P_INT("nvalid"), P_INT("lowest"),
                     GM_INT(pr__f(e, "method") == 0 ? pr__f(e, "t") : 0)},
        9);
  if (!strcmp(k, "techscore"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_tech_scores (tender_id,"
        " round, evaluator, supplier, score, time_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6)",
        (gm_param[]){P_TEXT("id"), P_INT("round"), P_TEXT("evaluator"),
                     P_TEXT("supplier"), P_INT("score"), P_INT("t")},
        6);
  if (!strcmp(k, "score"))
    return pr__exec(
        tx,
        "UPDATE procurement_sheet SET price_score = ?4,"
        " tech_score = ?5, total_score = ?6 WHERE tender_id = ?1"
        " AND round = ?2 AND supplier = ?3",
        (gm_param[]){P_TEXT("id"), P_INT("round"), P_TEXT("supplier"),
                     P_INT("price"), P_INT("tech"), P_INT("total")},
        6);
  if (!strcmp(k, "award"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_awards (tender_id, award,"
        " supplier, value, status, notice_ms, challenge_until_ms,"
        " sign_until_ms, reason, updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,"
        "?9,?10)",
        (gm_param[]){P_TEXT("id"), P_INT("n"), P_TEXT("supplier"),
                     P_INT("value"), P_TEXT("st"), P_INT("notice"),
                     P_INT("chu"), P_INT("sgu"), P_TEXT("why"), P_INT("t")},
        10);
  if (!strcmp(k, "challenge"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_challenges (challenge_id,"
        " tender_id, award, challenger, text, status, remedy, answer,"
        " lodged_ms, answered_ms, answer_due_ms, overdue_ms,"
        " complaint_until_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,"
        "?13)",
        (gm_param[]){P_TEXT("q"), P_TEXT("id"), P_INT("aw"), P_TEXT("who"),
                     P_TEXT("text"), P_TEXT("st"), P_INT("remedy"),
                     P_TEXT("answer"), P_INT("lodged"), P_INT("answered"),
                     P_INT("due"), P_INT("over"), P_INT("cpu")},
        13);
  if (!strcmp(k, "contract"))
    return pr__exec(
        tx,
        "INSERT OR REPLACE INTO procurement_contracts (contract_id, tender_id,"
        " award, agency, supplier, value, currency, status, items,"
        " agency_signed_ms, supplier_signed_ms, bond, bond_reference,"
        " delivered_ms, accepted_ms, paid, note, updated_ms) VALUES (?1,?2,?3,"
        "?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
        (gm_param[]){P_TEXT("k"), P_TEXT("id"), P_INT("aw"), P_TEXT("agency"),
                     P_TEXT("supplier"), P_INT("value"), P_TEXT("cur"),
                     P_TEXT("st"), P_TEXT("items"), P_INT("sa"), P_INT("ss"),
                     P_INT("bond"), P_TEXT("bref"), P_INT("dv"), P_INT("ac"),
                     P_INT("paid"), P_TEXT("note"), P_INT("t")},
        18);
  if (!strcmp(k, "payment"))
    return pr__exec(tx,
                    "INSERT OR IGNORE INTO procurement_payments (event,"
                    " tender_id, contract_id, amount, time_ms)"
                    " VALUES (?1,?2,?3,?4,?5)",
                    (gm_param[]){GM_TEXT(event), P_TEXT("id"), P_TEXT("k"),
                                 P_INT("amount"), P_INT("t")},
                    5);
  /* "demand" entries are an audit trail in gm_settled only. */
  return GM_OK;
}

/* The entry's tables, then its OCDS release (which reads them). */
static gm_status pr__settle(gm_market *m, gm_ledger *tx,
                            const gm_outbox_entry *e) {
  gm_status st = pr__settle_entry(m, tx, e);
  return st == GM_OK ? pr__release_settle(tx, e) : st;
}

gm_status pr__settle_init(gm_market *m) {
  gm_status st = host->ledger_migrate(
      m, pr__migrations, sizeof pr__migrations / sizeof pr__migrations[0]);
  if (st != GM_OK) return st;
  return host->settle_register(m, pr__settle);
}
