/*
 * The finance test harness: a private redis-server and gmd (manual clock,
 * only the finance plugin) per test, and short helpers for the calls the
 * tests make.  Everything goes through the real broker, scripts and ledger.
 */
#ifndef FINANCE_TEST_HARNESS_H
#define FINANCE_TEST_HARNESS_H

#include <check.h>
#include <stdint.h>

#include "cluster_fixture.h"
#include "finance.pb-c.h"
#include "gmd_fixture.h"
#include "redis_fixture.h"
#include "rules.h"

extern gm_test_redis *ft_redis;
extern gm_test_gmd *ft_gmd;
extern gm_test_conn *ft_conn;
/* Status and message of the last ft_call. */
extern int ft_status;
extern char ft_message[2048];

/* The centre's participant, registered by ft_start. */
#define FT_CENTRE "centre"
/* Monday 2026-03-02, a working day, in Asia/Shanghai. */
#define FT_MONDAY "2026-03-02"

/* Starts redis + gmd with extra [market.finance] lines at `now_ms`; the
   centre is registered. */
void ft_start(const char *market_conf, int64_t now_ms);
/* The same with extra config sections (after [market.finance]). */
void ft_start_conf(const char *market_conf, const char *more_conf,
                   int64_t now_ms);
/* The same against a running cluster (cluster_fixture.h): gmd on its
   nodes; ft_stop stops gmd, the caller the cluster (ft_redis is NULL). */
void ft_start_cluster(gm_test_cluster *cl, const char *market_conf,
                      const char *more_conf, int64_t now_ms);
void ft_stop(void);
/* The ms of local (Asia/Shanghai) "YYYY-MM-DD" hh:mm. */
int64_t ft_at(const char *date, int hh, int mm);
void ft_clock(int64_t ms);

/*
 * Calls finance.<method> as `as`; mutating methods get a fresh
 * idempotency key.  Returns the decoded reply (free with ft_free) or NULL
 * with ft_status/ft_message set.
 */
ProtobufCMessage *ft_call(const char *as, const char *method,
                          const ProtobufCMessage *req);
ProtobufCMessage *ft_call_on(gm_test_conn *c, const char *as,
                             const char *method, const ProtobufCMessage *req);
/* Asserts the call succeeds and returns the reply. */
ProtobufCMessage *ft_ok(const char *as, const char *method,
                        const ProtobufCMessage *req);
/* Asserts the call fails with `status` and a message containing `text`. */
void ft_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text);
/* Frees a reply (any message type: base is its first member). */
#define ft_free(m) \
  protobuf_c_message_free_unpacked((ProtobufCMessage *)(m), NULL)

/* Copies a referral reply's id into id (32 bytes) and frees the reply. */
void ft_copy_id(char id[32], Gm__Finance__Referral *r);

/* Registers `who` with comma-separated roles. */
void ft_register(const char *who, const char *roles);
/* A bank `id` with staff `user` (registered with the bank role, linked). */
void ft_bank(const char *id, const char *user);
/* A product of `bank`: classes and regions comma-separated ("" all). */
void ft_product(const char *id, const char *bank, const char *classes,
                const char *regions, int64_t amin, int64_t amax, int tmin,
                int tmax, int fee_bp);
/* A unified social credit code: `first17` and its check character. */
const char *ft_code(const char *first17, char out[19]);
/* Enterprise `who` (registered with the enterprise role) with a profile in
   `region`. */
void ft_enterprise(const char *who, const char *region);
/* A referral of `who` for class 3 / item 3.2 (consent to share given);
   asserts it is accepted. */
Gm__Finance__Referral *ft_refer(const char *who, int64_t amount, int tenor,
                                int consent_identity);
/* The transitions, asserting success. */
Gm__Finance__Referral *ft_claim(const char *user, const char *id);
Gm__Finance__Referral *ft_pick(const char *ent, const char *id,
                               const char *bank);
Gm__Finance__Referral *ft_contact(const char *user, const char *id);
Gm__Finance__Referral *ft_approve(const char *user, const char *id,
                                  int64_t amount, int rate_bp, int tenor);
Gm__Finance__Referral *ft_fund(const char *user, const char *id, int64_t amount,
                               const char *date);
Gm__Finance__Referral *ft_get(const char *as, const char *id);
/* A bank's queue, read by the centre. */
Gm__Finance__Queue *ft_queue(const char *bank);
/* The relation ("open", "claimed", "held") of referral id in a bank's
   queue, or NULL. */
const char *ft_relation(const char *bank, const char *id);

/* One integer from the ledger; -1 on no row. */
int64_t ft_ledger_int(const char *sql);
/* Runs `sql` on the ledger, writing (as an older release or a lost write
   left it), asserting it succeeds. */
void ft_ledger_exec(const char *sql);
/* Polls the ledger until `sql` answers `want` (10 s); returns the last. */
int64_t ft_ledger_wait(const char *sql, int64_t want);
/* A field of referral id's Redis hash ("" when absent; static buffer). */
const char *ft_redis_field(const char *id, const char *field);
/* Polls (10 s) until referral id has `state` in Redis; returns the last. */
int ft_wait_state(const char *id, int state);
/* Polls (10 s) until bank's queue shows relation `want` (NULL: no entry)
   for referral id; returns 1 when it does. */
int ft_wait_relation(const char *bank, const char *id, const char *want);
/* Waits ms: for a deadline that must not fire (the poller runs every
   20 ms). */
void ft_nap(int ms);

#endif
