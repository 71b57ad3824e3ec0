/*
 * Carbon order flow for the cluster tests (test_reshard, test_failover):
 * trader threads place crossing GTC orders on one instrument and cancel
 * some, each call under its own idempotency key and sent again under it
 * while gmd answers UNAVAILABLE or not at all (what a client does), while
 * the test moves or kills the instrument's master; then the checks that
 * nothing acknowledged was lost or doubled.  Uses the harness's gmd
 * (ct_gmd); one flow at a time.
 *
 *   ct_create(sym, ref);
 *   ct_flow_start(sym, ref, 4, seed);
 *   ct_flow_window(1); ...the move or the kill...; ct_flow_window(0);
 *   ct_flow_totals t;
 *   ct_flow_stop(&t);
 *   ct_flow_check(cl, node, held, other_orders);
 *   ct_flow_free();   (in the teardown)
 */
#ifndef CARBON_TEST_FLOW_H
#define CARBON_TEST_FLOW_H

#include <stdint.h>

#include "harness.h"

/* Each trader's deposit. */
#define CT_FLOW_CASH INT64_C(100000000000)
#define CT_FLOW_ALW INT64_C(10000000)

typedef struct ct_flow_totals {
  int calls;          /* answered (not UNAVAILABLE) */
  int retried;        /* of them, those sent more than once */
  int during;         /* calls sent or retried while the window was open */
  int during_retried; /* of them, those sent more than once */
  int unavailable;    /* UNAVAILABLE answers (or none within 5 s) in all */
  int norders;        /* acknowledged places */
  int ntrades;        /* fills their replies listed */
  int ncancelled;     /* cancels answered OK + places answered cancelled */
  double longest;     /* ms from a retried call's first send to its answer */
  double gap;         /* ms: the longest time no call was answered */
} ct_flow_totals;

/* Registers traders t0..t<n-1> (even ones buy, odd ones sell; at most 8),
   deposits CT_FLOW_CASH and CT_FLOW_ALW of `sym` to each and starts their
   threads.  Buys are priced ref-5..ref+4, sells ref-4..ref+5. */
void ct_flow_start(const char *sym, int64_t ref, int traders, unsigned seed);
/* Opens (1) or closes (0) the window whose calls count as `during`. */
void ct_flow_window(int open);
/* Stops the threads, asserts none met an unexpected answer, sums. */
void ct_flow_stop(ct_flow_totals *out);
/*
 * After ct_flow_stop: the instrument's order and trade sequences (read on
 * cluster node `node`) equal the acknowledged places plus `other_orders`
 * (the test's own) and the fills the replies listed; no two replies name
 * one order or trade; with `held` (ct_ledger_hold since before the flow)
 * the outbox's trades are exactly those fills, then the ledger is
 * released; each trade is settled once (carbon_trades, gm_settled), no dead
 * letter; every entry the outbox was ever given (XINFO STREAM
 * entries-added) is settled once; every acknowledged order has one ledger
 * row, `order.get` finds it
 * (1 in 7 asked), every cancel answered OK ended its order cancelled and no
 * other order did but those placed so; the traders' cash and allowances
 * sum to their deposits.
 */
void ct_flow_check(gm_test_cluster *cl, int node, int held, int other_orders);
/* Frees the traders and their connections (safe to call twice). */
void ct_flow_free(void);

/* Sleeps `ms`; the monotonic clock in ms. */
double ct_now_ms(void);

/* An integer field of `sym`'s instrument hash read on cluster node `node`;
   -1 when it is absent. */
long long ct_inst_field(gm_test_cluster *cl, int node, const char *sym,
                        const char *field);
/* Asserts `sql` (one text parameter) counts exactly 1 for each of
   ids[0..n) (`what` names the row in the failure). */
void ct_ledger_once(const char *sql, char (*ids)[40], int n, const char *what);

/*
 * kill -9 of master `victim`, `while_dead` (if not NULL) while it is dead,
 * then gm_test_cluster_promote (tests/support/cluster_failover.h); returns
 * the promoted node.
 */
int ct_fail_over(gm_test_cluster *cl, int victim, void (*while_dead)(void));

#endif
