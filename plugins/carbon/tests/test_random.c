/*
 * A seeded random order stream against a small in-memory reference model:
 * every placement gets the same fills (maker, price, quantity) as the model
 * predicts, the book ends identical, and cash and allowances are conserved
 * and equal the model's per account.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SYM "CEA-2025"
#define NP 4
#define MAXO 4096

static const char *const who[NP] = {"p0", "p1", "p2", "p3"};
static const int64_t cash0 = INT64_C(100000000000), alw0 = 1000000;

/* The model: resting orders in arrival order (time priority = index). */
typedef struct {
  char id[40];
  int p, buy;
  int64_t px, q;
} mo;
static mo book[MAXO];
static int nbook;
static int64_t cash[NP], alw[NP];

/* Best opposite order for an incoming side: lowest ask / highest bid, oldest.
 */
static int best(int buy_incoming) {
  int b = -1;
  for (int i = 0; i < nbook; i++) {
    if (book[i].q == 0 || book[i].buy == buy_incoming) continue;
    if (b < 0 ||
        (buy_incoming ? book[i].px < book[b].px : book[i].px > book[b].px))
      b = i;
  }
  return b;
}

static void start(const char *conf) {
  ct_start(conf, ct_at(CT_MONDAY, 10, 0));
  ct_create(SYM, 8500);
  for (int p = 0; p < NP; p++) {
    ct_register(who[p], "buyer,seller");
    ct_deposit(who[p], SYM, cash0, alw0);
    cash[p] = cash0;
    alw[p] = alw0;
  }
}

static void setup(void) {
  start(NULL);
}

/* Two resting orders per script step: most crossing orders match over
 * several steps of their call, and must still match the unbounded model. */
static void setup_small_steps(void) {
  start("max_fills = 2\n");
}

static void teardown(void) {
  ct_stop();
}

START_TEST(random_stream_matches_the_model) {
  unsigned seed = 20260302u;
  int fills_seen = 0, most = 0;
  for (int n = 0; n < 600; n++) {
    int r = rand_r(&seed) % 100;
    if (r < 15 && nbook > 0) { /* cancel a random resting order */
      int i = rand_r(&seed) % nbook;
      Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
      c.order_id = book[i].id;
      Gm__Carbon__Order *o =
          (Gm__Carbon__Order *)ct_call(who[book[i].p], "order.cancel", &c.base);
      if (book[i].q > 0) {
        ck_assert_msg(o, "cancel %s: %s", book[i].id, ct_message);
        ck_assert_int_eq(o->filled + book[i].q, o->quantity);
        ct_free(o);
        book[i].q = 0;
      } else {
        ck_assert_msg(!o && ct_status == GM__STATUS__NOT_FOUND,
                      "cancel of a finished order %s did not say NOT_FOUND",
                      book[i].id);
      }
      continue;
    }
    int p = rand_r(&seed) % NP, buy = rand_r(&seed) % 2;
    int64_t px = 8490 + rand_r(&seed) % 21, q = 1 + rand_r(&seed) % 20;
    Gm__Carbon__PlaceRequest req = GM__CARBON__PLACE_REQUEST__INIT;
    req.symbol = SYM;
    req.side = buy ? CT_BUY : CT_SELL;
    req.price = px;
    req.quantity = q;
    req.tif = rand_r(&seed) % 4 == 0 ? GM__CARBON__TIME_IN_FORCE__TIF_IOC
                                     : GM__CARBON__TIME_IN_FORCE__TIF_GTC;
    Gm__Carbon__PlaceReply *rep =
        (Gm__Carbon__PlaceReply *)ct_call(who[p], "order.place", &req.base);
    ck_assert_msg(rep, "order %d: %s", n, ct_message);
    /* The model's fills, compared one by one. */
    size_t k = 0;
    int64_t left = q;
    for (;;) {
      int b = left > 0 ? best(buy) : -1;
      if (b < 0 || (buy ? book[b].px > px : book[b].px < px)) break;
      if (book[b].p == p) break; /* STP default: cancel the incoming */
      int64_t f = left < book[b].q ? left : book[b].q;
      ck_assert_msg(k < rep->n_fills, "order %d: model fills more (%zu)", n, k);
      ck_assert_str_eq(rep->fills[k]->maker_order_id, book[b].id);
      ck_assert_int_eq(rep->fills[k]->price, book[b].px);
      ck_assert_int_eq(rep->fills[k]->quantity, f);
      int bp = buy ? p : book[b].p, sp = buy ? book[b].p : p;
      cash[bp] -= f * book[b].px;
      cash[sp] += f * book[b].px;
      alw[bp] += f;
      alw[sp] -= f;
      book[b].q -= f;
      left -= f;
      k++;
    }
    ck_assert_int_eq(rep->n_fills, k);
    fills_seen += (int)k;
    if ((int)k > most) most = (int)k;
    if (left > 0 && req.tif == GM__CARBON__TIME_IN_FORCE__TIF_GTC &&
        rep->order->state != GM__CARBON__ORDER_STATE__STATE_CANCELLED) {
      ck_assert_int_lt(nbook, MAXO);
      mo *m = &book[nbook++];
      snprintf(m->id, sizeof m->id, "%s", rep->order->id);
      m->p = p;
      m->buy = buy;
      m->px = px;
      m->q = left;
    }
    ct_free(rep);
  }
  ck_assert_int_gt(fills_seen, 100); /* the stream really traded */
  /* Some order took more than 2 resting orders: with max_fills = 2 it
   * needed several steps. */
  ck_assert_int_gt(most, 2);

  /* The book: every level's quantity as the model has it. */
  Gm__Carbon__Depth *d = ct_depth(SYM, 100);
  for (int side = 0; side < 2; side++) {
    size_t n = side ? d->n_bids : d->n_asks;
    Gm__Carbon__Level **lv = side ? d->bids : d->asks;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
      int64_t want = 0;
      for (int j = 0; j < nbook; j++)
        if (book[j].buy == side && book[j].px == lv[i]->price)
          want += book[j].q;
      ck_assert_int_eq(lv[i]->quantity, want);
      if (i)
        ck_assert(side ? lv[i]->price < lv[i - 1]->price
                       : lv[i]->price > lv[i - 1]->price);
      total += lv[i]->quantity;
    }
    int64_t want_total = 0;
    for (int j = 0; j < nbook; j++)
      if (book[j].buy == side) want_total += book[j].q;
    ck_assert_int_eq(total, want_total);
  }
  ct_free(d);
  /* Accounts: as the model, and nothing created or lost overall. */
  int64_t sc = 0, sa = 0;
  for (int p = 0; p < NP; p++) {
    Gm__Carbon__Account *a = ct_account(who[p], SYM);
    ck_assert_int_eq(a->cash + a->cash_frozen, cash[p]);
    ck_assert_int_eq(
        a->allowances + a->allowances_frozen + a->allowances_locked, alw[p]);
    sc += a->cash + a->cash_frozen;
    sa += a->allowances + a->allowances_frozen + a->allowances_locked;
    ct_free(a);
  }
  ck_assert_int_eq(sc, NP * cash0);
  ck_assert_int_eq(sa, NP * alw0);
  /* And the ledger settled exactly the fills. */
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_trades", fills_seen),
      fills_seen);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon random");
  TCase *tc = tcase_create("random");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, random_stream_matches_the_model);
  suite_add_tcase(s, tc);
  TCase *steps = tcase_create("random, max_fills = 2");
  tcase_add_checked_fixture(steps, setup_small_steps, teardown);
  tcase_set_timeout(steps, 120);
  tcase_add_test(steps, random_stream_matches_the_model);
  suite_add_tcase(s, steps);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
