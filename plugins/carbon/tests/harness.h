/*
 * The carbon test harness: a private redis-server and gmd (manual clock,
 * only the carbon plugin) per test, and short helpers for the calls the
 * tests make.  Everything goes through the real broker, scripts and ledger.
 */
#ifndef CARBON_TEST_HARNESS_H
#define CARBON_TEST_HARNESS_H

#include <check.h>
#include <stdint.h>

#include "carbon.pb-c.h"
#include "cluster_fixture.h"
#include "gmd_fixture.h"
#include "redis_fixture.h"
#include "rules.h"

extern gm_test_redis *ct_redis;
extern gm_test_gmd *ct_gmd;
extern gm_test_conn *ct_conn;
/* Status and message of the last ct_call. */
extern int ct_status;
extern char ct_message[1024];

/* Starts redis + gmd with extra config lines; sets the clock to `now_ms`. */
void ct_start(const char *extra_conf, int64_t now_ms);
/* The same with Redis keeping an fsync-always append-only file. */
void ct_start_aof(const char *extra_conf, int64_t now_ms);
/* ct_start against a Redis Cluster (cluster_fixture.h): gmd's files in the
   cluster's home folder, its [redis] the cluster's seeds; ct_redis is NULL
   and ct_stop stops gmd, not the cluster. */
void ct_start_cluster(gm_test_cluster *cl, const char *extra_conf,
                      int64_t now_ms);
void ct_stop(void);
/* The ms of local (Asia/Shanghai) time "YYYY-MM-DD" hh:mm. */
int64_t ct_at(const char *date, int hh, int mm);
void ct_clock(int64_t ms);

/*
 * Calls carbon.<method> as `as`.  Mutating methods get a fresh idempotency
 * key unless `idem` is given.  Returns the decoded reply (free with
 * protobuf_c_message_free_unpacked) or NULL with ct_status/ct_message set.
 */
ProtobufCMessage *ct_call(const char *as, const char *method,
                          const ProtobufCMessage *req);
ProtobufCMessage *ct_call_idem(const char *as, const char *method,
                               const char *idem, const ProtobufCMessage *req);
/* The decoded body of an OK reply to carbon.<method> (free with
   protobuf_c_message_free_unpacked); NULL for any other status.  For
   threads that call gm_test_call on their own connections. */
ProtobufCMessage *ct_reply_body(const char *method, const Gm__Reply *r);
/* Asserts the call fails with `status` and a message containing `text`. */
void ct_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text);

/* Registers `who` with comma-separated roles (e.g. "buyer,seller"). */
void ct_register(const char *who, const char *roles);
/* An instrument with the defaults and reference price `ref` fen. */
void ct_create(const char *sym, int64_t ref);
void ct_deposit(const char *who, const char *sym, int64_t cash, int64_t alw);
/* Places a limit order; asserts OK; returns the reply. */
Gm__Carbon__PlaceReply *ct_limit(const char *who, const char *sym,
                                 Gm__Carbon__Side side, int64_t price,
                                 int64_t qty, Gm__Carbon__TimeInForce tif);
/* A block offer of `qty` t at `price` fen to `counterparty` (block.offer's
   request; the strings are the caller's). */
Gm__Carbon__OfferRequest ct_offer_request(const char *sym,
                                          Gm__Carbon__Side side,
                                          const char *counterparty,
                                          int64_t price, int64_t qty);
Gm__Carbon__Account *ct_account(const char *who, const char *sym);
Gm__Carbon__Depth *ct_depth(const char *sym, int levels);
#define ct_free(m) protobuf_c_message_free_unpacked(&(m)->base, NULL)

/* One integer from the ledger (read-only connection); -1 on no row. */
int64_t ct_ledger_int(const char *sql);
/* Polls the ledger until `sql` answers `want` (10 s); returns the last. */
int64_t ct_ledger_wait(const char *sql, int64_t want);
/* records.reconcile (as root; symbol "" for every instrument) once nothing
   is left to settle, retried up to 10 s by time; fails the test if it never
   gets there.  Free with ct_free. */
Gm__Carbon__ReconcileReply *ct_reconcile_settled(const char *symbol);
/*
 * Holds the ledger's write lock (BEGIN IMMEDIATE from the test) until
 * ct_ledger_release: gmd's settler finds the ledger busy and retries with
 * backoff, so settlement stands still however long the test needs, while
 * readers (order.get's ledger query) go on.  A settler lagging behind, made
 * without a timer.
 */
void ct_ledger_hold(void);
void ct_ledger_release(void);

/* Monday 2026-03-02 (a trading day) at 10:00 Shanghai. */
#define CT_MONDAY "2026-03-02"
#define CT_BUY GM__CARBON__SIDE__SIDE_BUY
#define CT_SELL GM__CARBON__SIDE__SIDE_SELL
#define CT_GTC GM__CARBON__TIME_IN_FORCE__TIF_GTC

#endif
