/*
 * Settlement: the finance_* ledger tables (migrations) and the callback
 * that writes each outbox entry into them.  Every transition of a
 * referral is a row of finance_transitions and moves its finance_referrals
 * row; claims, deadlines missed and funded loans (with the fee)
 * have tables of their own, which the reports read (reports.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

static const gm_migration finance__migrations[] = {
    {1,
     "CREATE TABLE finance_referrals ("
     " id TEXT PRIMARY KEY, enterprise TEXT NOT NULL, created_by TEXT NOT NULL,"
     " credit_code TEXT NOT NULL, enterprise_name TEXT NOT NULL,"
     " region TEXT NOT NULL, size INTEGER NOT NULL, class TEXT NOT NULL,"
     " subitem TEXT NOT NULL, currency TEXT NOT NULL, amount INTEGER NOT NULL,"
     " tenor INTEGER NOT NULL, use_of_proceeds TEXT NOT NULL,"
     " description TEXT NOT NULL, co2_kg INTEGER NOT NULL,"
     " coal_kg INTEGER NOT NULL, certificates TEXT NOT NULL,"
     " consent_identity INTEGER NOT NULL, eligible_banks INTEGER NOT NULL,"
     " state INTEGER NOT NULL, version INTEGER NOT NULL,"
     " bank TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL, picked_ms INTEGER, contacted_ms INTEGER,"
     " decided_ms INTEGER, ended_ms INTEGER);"
     "CREATE INDEX finance_referrals_created ON finance_referrals"
     " (created_ms);"
     "CREATE INDEX finance_referrals_bank ON finance_referrals (bank,"
     " decided_ms);"
     "CREATE TABLE finance_transitions ("
     " event TEXT PRIMARY KEY, referral TEXT NOT NULL,"
     " version INTEGER NOT NULL, transition TEXT NOT NULL,"
     " from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,"
     " actor TEXT NOT NULL, bank TEXT NOT NULL, code TEXT NOT NULL,"
     " detail TEXT NOT NULL, time_ms INTEGER NOT NULL);"
     "CREATE INDEX finance_transitions_referral ON finance_transitions"
     " (referral, version);"
     "CREATE TABLE finance_claims ("
     " referral TEXT NOT NULL, round INTEGER NOT NULL, bank TEXT NOT NULL,"
     " product TEXT NOT NULL, fee_bp INTEGER NOT NULL,"
     " claimed_ms INTEGER NOT NULL, outcome TEXT NOT NULL,"
     " outcome_ms INTEGER, PRIMARY KEY (referral, round, bank));"
     "CREATE INDEX finance_claims_bank ON finance_claims (bank, claimed_ms);"
     "CREATE TABLE finance_breaches ("
     " referral TEXT NOT NULL, round INTEGER NOT NULL, bank TEXT NOT NULL,"
     " picked_ms INTEGER NOT NULL, due_ms INTEGER NOT NULL,"
     " recorded_ms INTEGER NOT NULL, PRIMARY KEY (referral, round));"
     "CREATE INDEX finance_breaches_bank ON finance_breaches (bank,"
     " recorded_ms);"
     "CREATE TABLE finance_loans ("
     " referral TEXT PRIMARY KEY, bank TEXT NOT NULL, product TEXT NOT NULL,"
     " enterprise TEXT NOT NULL, class TEXT NOT NULL, subitem TEXT NOT NULL,"
     " currency TEXT NOT NULL, amount INTEGER NOT NULL,"
     " rate_bp INTEGER NOT NULL, tenor INTEGER NOT NULL,"
     " funded_date TEXT NOT NULL, funded_ms INTEGER NOT NULL,"
     " co2_kg INTEGER NOT NULL, coal_kg INTEGER NOT NULL,"
     " fee_bp INTEGER NOT NULL, fee INTEGER NOT NULL);"
     "CREATE INDEX finance_loans_bank ON finance_loans (bank, funded_date);"
     "CREATE INDEX finance_loans_date ON finance_loans (funded_date);"
     "CREATE TABLE finance_banks ("
     " id TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL);"
     "CREATE TABLE finance_members ("
     " participant TEXT PRIMARY KEY, bank TEXT NOT NULL,"
     " linked_ms INTEGER NOT NULL);"
     "CREATE TABLE finance_products ("
     " id TEXT PRIMARY KEY, bank TEXT NOT NULL, name TEXT NOT NULL,"
     " terms TEXT NOT NULL, created_ms INTEGER NOT NULL, retired_ms INTEGER);"
     "CREATE TABLE finance_enterprises ("
     " participant TEXT PRIMARY KEY, credit_code TEXT NOT NULL,"
     " name TEXT NOT NULL, region TEXT NOT NULL, size INTEGER NOT NULL,"
     " contact TEXT NOT NULL, registered_ms INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL);"},
    /* The centre's report counts the claims of a period across banks:
       finance_claims_bank leads with the bank, so that read scanned every
       claim ever settled. */
    {2, "CREATE INDEX finance_claims_time ON finance_claims (claimed_ms);"},
    /* Ended referrals leave Redis (archive.c): when, and the record they
       had there (referral.lua 'archive'), which reads then answer from. */
    {3,
     "ALTER TABLE finance_referrals ADD COLUMN archived_ms INTEGER;"
     "ALTER TABLE finance_referrals ADD COLUMN record TEXT;"},
    /* An archived referral leaves its enterprise's list in Redis too:
       referral.list pages the ledger's archived referrals of one
       enterprise by creation (referral.c). */
    {4,
     "CREATE INDEX IF NOT EXISTS finance_referrals_enterprise ON "
     "finance_referrals"
     " (enterprise, created_ms, id) WHERE archived_ms > 0;"
     /* The archive sweep: ended, not archived (archive.c). */
     "CREATE INDEX IF NOT EXISTS finance_referrals_unarchived ON "
     "finance_referrals"
     " (ended_ms, id) WHERE archived_ms IS NULL AND ended_ms IS NOT NULL;"},
    /* The decision deadline (workflow.c): which one a referral's contact
       set (the live one is in Redis, waiting while the enterprise answers
       a question), and which deadline a breach missed.  The index finds
       the referrals under review without one (contact made before this
       release, or by an older broker during an upgrade): the decision
       sweep gives them one. */
    {5,
     "ALTER TABLE finance_referrals ADD COLUMN decision_due_ms INTEGER;"
     "ALTER TABLE finance_breaches ADD COLUMN kind TEXT NOT NULL"
     " DEFAULT 'contact';"
     "CREATE INDEX IF NOT EXISTS finance_referrals_undecided ON"
     " finance_referrals (id) WHERE state IN (4, 5, 6) AND"
     " decision_due_ms IS NULL;"},
    /* A breach without its due: a decision deadline's miss, which
       referral.lua emits with 'ddue' in place of 'cdue', settled by an
       older settler that would record it as a missed contact.  The
       trigger refuses it (RAISE escapes INSERT OR IGNORE), so that
       settler retries it and sets it aside in gm_dead_letter, to be
       replayed once every broker runs this build (finance.md,
       Upgrading). */
    {6,
     "CREATE TRIGGER IF NOT EXISTS finance_breaches_need_due BEFORE INSERT"
     " ON finance_breaches WHEN NEW.due_ms <= 0 BEGIN SELECT RAISE(ABORT,"
     " 'a finance breach without its due time: a missed decision deadline,"
     " which this broker''s build would record as a missed contact; it is"
     " set aside: replay it (gm admin replay) once every broker runs the"
     " build that wrote it (plugins/finance/finance.md, Upgrading)'); END;"},
    /* The centre's report counts a period's breaches across banks
       (finance_breaches_bank leads with the bank). */
    {7,
     "CREATE INDEX IF NOT EXISTS finance_breaches_time ON finance_breaches"
     " (recorded_ms);"},
};

static int64_t finance__n(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? strtoll(v, NULL, 10) : 0;
}

static const char *finance__t(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? v : "";
}

/* The transition's side effects beyond the referral's own row. */
static gm_status finance__settle_transition(gm_market *m, gm_ledger *tx,
                                            const gm_outbox_entry *e,
                                            const char *ev) {
  const char *id = finance__t(e, "id"), *tr = finance__t(e, "tr");
  const char *bank = finance__t(e, "bank");
  int64_t t = finance__n(e, "t"), to = finance__n(e, "to"),
          v = finance__n(e, "v"), rnd = finance__n(e, "rnd");
  gm_status st = host->ledger_exec(
      tx,
      "INSERT OR IGNORE INTO finance_transitions (event, referral, version,"
      " transition, from_state, to_state, actor, bank, code, detail, time_ms)"
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
      (gm_param[]){GM_TEXT(ev), GM_TEXT(id), GM_INT(v), GM_TEXT(tr),
                   GM_INT(finance__n(e, "from")), GM_INT(to),
                   GM_TEXT(finance__t(e, "by")), GM_TEXT(bank),
                   GM_TEXT(finance__t(e, "code")),
                   GM_TEXT(finance__t(e, "detail")), GM_INT(t)},
      11);
  if (st == GM_OK)
    st = host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET state = ?2, version = ?3,"
        " updated_ms = ?4 WHERE id = ?1 AND version < ?3",
        (gm_param[]){GM_TEXT(id), GM_INT(to), GM_INT(v), GM_INT(t)}, 4);
  if (st != GM_OK) return st;

  if (!strcmp(tr, "claim"))
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_claims (referral, round, bank, product,"
        " fee_bp, claimed_ms, outcome) VALUES (?1,?2,?3,?4,?5,?6,'waiting')",
        (gm_param[]){GM_TEXT(id), GM_INT(rnd), GM_TEXT(bank),
                     GM_TEXT(finance__t(e, "prod")),
                     GM_INT(finance__n(e, "fee")), GM_INT(t)},
        6);
  if (!strcmp(tr, "pick")) {
    st = host->ledger_exec(
        tx,
        "UPDATE finance_claims SET outcome = CASE bank WHEN ?3 THEN 'picked'"
        " ELSE 'lost' END, outcome_ms = ?4 WHERE referral = ?1 AND round = ?2",
        (gm_param[]){GM_TEXT(id), GM_INT(rnd), GM_TEXT(bank), GM_INT(t)}, 4);
    if (st != GM_OK) return st;
    return host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET bank = ?2,"
        " picked_ms = ?3 WHERE id = ?1",
        (gm_param[]){GM_TEXT(id), GM_TEXT(bank), GM_INT(t)}, 3);
  }
  if (!strcmp(tr, "contact")) {
    /* An older broker's contact sets no decision deadline: NULL.  The due
       only while this entry is the referral's latest settled transition:
       a contact set aside and replayed after a later answer settled (gm
       admin replay) must not put its own due back over the answer's. */
    const char *ddue = gm_entry_field(e, "ddue");
    return host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET contacted_ms = ?2,"
        " decision_due_ms = CASE WHEN version = ?4 THEN ?3"
        " ELSE decision_due_ms END WHERE id = ?1",
        (gm_param[]){GM_TEXT(id), GM_INT(t),
                     ddue ? GM_INT(strtoll(ddue, NULL, 10)) : GM_NULL,
                     GM_INT(v)},
        4);
  }
  if (!strcmp(tr, "answer")) {
    /* The decision deadline set again after the enterprise's answer (the
       time the question took added); an older broker's answer carries
       none and leaves the one before.  Only while this entry is the
       referral's latest settled transition. */
    const char *ddue = gm_entry_field(e, "ddue");
    if (!ddue) return GM_OK;
    return host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET decision_due_ms = ?2 WHERE id = ?1"
        " AND version = ?3",
        (gm_param[]){GM_TEXT(id), GM_INT(strtoll(ddue, NULL, 10)), GM_INT(v)},
        3);
  }
  if (!strcmp(tr, "approve") || !strcmp(tr, "decline")) {
    st = host->ledger_exec(tx,
                           "UPDATE finance_referrals SET decided_ms ="
                           " coalesce(decided_ms, ?2) WHERE id = ?1",
                           (gm_param[]){GM_TEXT(id), GM_INT(t)}, 2);
    if (st != GM_OK || !strcmp(tr, "approve")) return st;
  }
  if (!strcmp(tr, "fund")) {
    int64_t amount = finance__n(e, "amt"), fee_bp = finance__n(e, "fee");
    /* Checked in 64 bits: narrowed first, 2^32 + 100 would pass as 100. */
    int32_t bp =
        fee_bp < 0 || fee_bp > GM_FINANCE_MAX_BP ? -1 : (int32_t)fee_bp;
    int64_t fee = gm__finance_fee(amount, bp);
    if (fee < 0) {
      /* Only a corrupted entry carries these: the scripts never write them. */
      host->log(m, GM_LOG_ERROR,
                "funding of %s: amount %lld or fee %lld bp out of range; the "
                "loan is not settled (entry %s %s)",
                id, (long long)amount, (long long)fee_bp, e->stream, e->id);
      return GM_OK;
    }
    st = host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_loans (referral, bank, product,"
        " enterprise, class, subitem, currency, amount, rate_bp, tenor,"
        " funded_date, funded_ms, co2_kg, coal_kg, fee_bp, fee)"
        " SELECT id, ?2, ?3, enterprise, class, subitem, currency, ?4, ?5,"
        " ?6, ?7, ?8, co2_kg, coal_kg, ?9, ?10 FROM finance_referrals"
        " WHERE id = ?1",
        (gm_param[]){GM_TEXT(id), GM_TEXT(bank), GM_TEXT(finance__t(e, "prod")),
                     GM_INT(amount), GM_INT(finance__n(e, "rate")),
                     GM_INT(finance__n(e, "ten")),
                     GM_TEXT(finance__t(e, "date")), GM_INT(t), GM_INT(bp),
                     GM_INT(fee)},
        10);
  }
  if (st != GM_OK) return st;
  /* Picked (or under review, or approved), then expired: the bank picked
     missed its contact (or decision) deadline and no other bank was left
     (referral.lua 'miss'); as for a return. */
  if (!strcmp(tr, "expire") &&
      finance__n(e, "from") >= GM__FINANCE__STATE__STATE_PICKED &&
      finance__n(e, "from") <= GM__FINANCE__STATE__STATE_APPROVED) {
    st = host->ledger_exec(
        tx,
        "UPDATE finance_claims SET outcome = 'missed', outcome_ms = ?2"
        " WHERE referral = ?1 AND outcome = 'picked'",
        (gm_param[]){GM_TEXT(id), GM_INT(t)}, 2);
    if (st == GM_OK)
      st = host->ledger_exec(tx,
                             "UPDATE finance_referrals SET bank = '',"
                             " picked_ms = NULL, contacted_ms = NULL,"
                             " decided_ms = NULL, decision_due_ms = NULL"
                             " WHERE id = ?1",
                             (gm_param[]){GM_TEXT(id)}, 1);
    if (st != GM_OK) return st;
  }
  if (to >= GM__FINANCE__STATE__STATE_FUNDED) {
    st = host->ledger_exec(
        tx, "UPDATE finance_referrals SET ended_ms = ?2 WHERE id = ?1",
        (gm_param[]){GM_TEXT(id), GM_INT(t)}, 2);
    if (st == GM_OK)
      st = host->ledger_exec(
          tx,
          "UPDATE finance_claims SET outcome = ?2, outcome_ms = ?3"
          " WHERE referral = ?1 AND outcome = 'waiting'",
          (gm_param[]){GM_TEXT(id), GM_TEXT(tr), GM_INT(t)}, 3);
    return st;
  }
  if (!strcmp(tr, "return")) {
    st = host->ledger_exec(
        tx,
        "UPDATE finance_claims SET outcome = 'missed', outcome_ms = ?3"
        " WHERE referral = ?1 AND bank = ?2 AND outcome = 'picked'",
        (gm_param[]){GM_TEXT(id), GM_TEXT(bank), GM_INT(t)}, 3);
    if (st == GM_OK)
      st = host->ledger_exec(tx,
                             "UPDATE finance_referrals SET bank = '',"
                             " picked_ms = NULL, contacted_ms = NULL,"
                             " decided_ms = NULL, decision_due_ms = NULL"
                             " WHERE id = ?1",
                             (gm_param[]){GM_TEXT(id)}, 1);
  }
  return st;
}

/* Runs on the settler thread inside its transaction, once per entry. */
static gm_status finance__settle(gm_market *m, gm_ledger *tx,
                                 const gm_outbox_entry *e) {
  char ev[192];
  int64_t t = finance__n(e, "t");
  snprintf(ev, sizeof ev, "%.120s/%.60s", e->stream, e->id);

  if (!strcmp(e->kind, "referral")) {
    const char *id = finance__t(e, "id");
    gm_status st = host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_referrals (id, enterprise, created_by,"
        " credit_code, enterprise_name, region, size, class, subitem,"
        " currency, amount, tenor, use_of_proceeds, description, co2_kg,"
        " coal_kg, certificates, consent_identity, eligible_banks, state,"
        " version, created_ms, updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,"
        "?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?22)",
        (gm_param[]){GM_TEXT(id),
                     GM_TEXT(finance__t(e, "ent")),
                     GM_TEXT(finance__t(e, "by")),
                     GM_TEXT(finance__t(e, "uscc")),
                     GM_TEXT(finance__t(e, "ename")),
                     GM_TEXT(finance__t(e, "ereg")),
                     GM_INT(finance__n(e, "esize")),
                     GM_TEXT(finance__t(e, "cls")),
                     GM_TEXT(finance__t(e, "sub")),
                     GM_TEXT(finance__t(e, "cur")),
                     GM_INT(finance__n(e, "amt")),
                     GM_INT(finance__n(e, "ten")),
                     GM_TEXT(finance__t(e, "use")),
                     GM_TEXT(finance__t(e, "desc")),
                     GM_INT(finance__n(e, "co2")),
                     GM_INT(finance__n(e, "coal")),
                     GM_TEXT(finance__t(e, "certs")),
                     GM_INT(finance__n(e, "ci")),
                     GM_INT(finance__n(e, "neb")),
                     GM_INT(finance__n(e, "st")),
                     GM_INT(finance__n(e, "v")),
                     GM_INT(t)},
        22);
    if (st != GM_OK) return st;
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_transitions (event, referral, version,"
        " transition, from_state, to_state, actor, bank, code, detail,"
        " time_ms) VALUES (?1,?2,?3,'created',0,?4,?5,'','','',?6)",
        (gm_param[]){GM_TEXT(ev), GM_TEXT(id), GM_INT(finance__n(e, "v")),
                     GM_INT(finance__n(e, "st")), GM_TEXT(finance__t(e, "by")),
                     GM_INT(t)},
        6);
  }
  if (!strcmp(e->kind, "transition"))
    return finance__settle_transition(m, tx, e, ev);
  if (!strcmp(e->kind, "breach"))
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_breaches (referral, round, bank,"
        " picked_ms, due_ms, recorded_ms, kind) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        (gm_param[]){
            GM_TEXT(finance__t(e, "id")), GM_INT(finance__n(e, "rnd")),
            GM_TEXT(finance__t(e, "bank")), GM_INT(finance__n(e, "pk")),
            /* A decision miss's due is 'ddue' (referral.lua record_miss;
               'cdue' from a broker before 2026-12-05). */
            GM_INT(finance__n(e, gm_entry_field(e, "ddue") ? "ddue" : "cdue")),
            GM_INT(t),
            /* An entry of an older broker: a missed contact. */
            GM_TEXT(strcmp(finance__t(e, "kind"), "decision") ? "contact"
                                                              : "decision")},
        7);
  /* The decision sweep gave a referral under review its deadline. */
  if (!strcmp(e->kind, "ddue"))
    return host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET decision_due_ms = ?2 WHERE id = ?1"
        " AND decision_due_ms IS NULL",
        (gm_param[]){GM_TEXT(finance__t(e, "id")),
                     GM_INT(finance__n(e, "ddue"))},
        2);
  if (!strcmp(e->kind, "bank"))
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_banks (id, name, created_ms)"
        " VALUES (?1,?2,?3)",
        (gm_param[]){GM_TEXT(finance__t(e, "bank")),
                     GM_TEXT(finance__t(e, "name")), GM_INT(t)},
        3);
  if (!strcmp(e->kind, "link")) {
    const char *bank = finance__t(e, "bank");
    if (!*bank)
      return host->ledger_exec(
          tx, "DELETE FROM finance_members WHERE participant = ?1",
          (gm_param[]){GM_TEXT(finance__t(e, "who"))}, 1);
    return host->ledger_exec(
        tx,
        "INSERT INTO finance_members (participant, bank, linked_ms)"
        " VALUES (?1,?2,?3) ON CONFLICT (participant) DO UPDATE SET"
        " bank = ?2, linked_ms = ?3",
        (gm_param[]){GM_TEXT(finance__t(e, "who")), GM_TEXT(bank), GM_INT(t)},
        3);
  }
  if (!strcmp(e->kind, "product")) {
    const char *rec = finance__t(e, "rec"), *bar = strchr(rec, '|');
    char bank[40];
    snprintf(bank, sizeof bank, "%.*s", bar ? (int)(bar - rec) : 0, rec);
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO finance_products (id, bank, name, terms,"
        " created_ms) VALUES (?1,?2,?3,?4,?5)",
        (gm_param[]){GM_TEXT(finance__t(e, "id")), GM_TEXT(bank),
                     GM_TEXT(finance__t(e, "name")), GM_TEXT(rec), GM_INT(t)},
        5);
  }
  if (!strcmp(e->kind, "retire"))
    return host->ledger_exec(
        tx, "UPDATE finance_products SET retired_ms = ?2 WHERE id = ?1",
        (gm_param[]){GM_TEXT(finance__t(e, "id")), GM_INT(t)}, 2);
  if (!strcmp(e->kind, "enterprise"))
    return host->ledger_exec(
        tx,
        "INSERT INTO finance_enterprises (participant, credit_code, name,"
        " region, size, contact, registered_ms, updated_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT (participant) DO"
        " UPDATE SET credit_code = ?2, name = ?3, region = ?4, size = ?5,"
        " contact = ?6, updated_ms = ?8",
        (gm_param[]){
            GM_TEXT(finance__t(e, "who")), GM_TEXT(finance__t(e, "uscc")),
            GM_TEXT(finance__t(e, "name")), GM_TEXT(finance__t(e, "region")),
            GM_INT(finance__n(e, "size")), GM_TEXT(finance__t(e, "contact")),
            GM_INT(finance__n(e, "rt")), GM_INT(t)},
        8);
  if (!strcmp(e->kind, "archived"))
    /* The first one counts: a referral is archived once. */
    return host->ledger_exec(
        tx,
        "UPDATE finance_referrals SET archived_ms = ?2, record = ?3"
        " WHERE id = ?1 AND archived_ms IS NULL",
        (gm_param[]){GM_TEXT(finance__t(e, "id")), GM_INT(t),
                     GM_TEXT(finance__t(e, "rec"))},
        3);
  /* "catalogue" and "calendar" loads are an audit trail in gm_settled. */
  return GM_OK;
}

gm_status finance__settle_init(gm_market *m) {
  gm_status st = host->ledger_migrate(
      m, finance__migrations,
      sizeof finance__migrations / sizeof finance__migrations[0]);
  if (st != GM_OK) return st;
  return host->settle_register(m, finance__settle);
}
