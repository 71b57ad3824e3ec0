/*
 * Carbon's events on a CURVE broker: a participant's order states reach
 * only that participant; the trade tape and the book reach everyone and name
 * nobody.  Alice sells, bob buys from her: bob, subscribed to everything he
 * may see (""), sees the trade and the book but no order event of hers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <greenmarket/client.h>

#include "harness.h"

#define SYM "CEA-FEED"

static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];
static char alice_pub[41], alice_sec[41], bob_pub[41], bob_sec[41];
static gm_test_conn *admin, *alice, *bob;

static void register_key(const char *id, const char *pub) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  char *roles[] = {"buyer", "seller"};
  p.id = (char *)id;
  p.public_key = (char *)pub;
  p.roles = roles;
  p.n_roles = 2;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  char idem[32];
  snprintf(idem, sizeof idem, "reg-%s", id);
  Gm__Reply *r = gm_test_call(admin, NULL, "gm", "register", idem, &reg.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "register %s: %s", id,
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

static void setup(void) {
  zmq_curve_keypair(server_pub, server_sec);
  zmq_curve_keypair(admin_pub, admin_sec);
  zmq_curve_keypair(alice_pub, alice_sec);
  zmq_curve_keypair(bob_pub, bob_sec);
  ct_redis = gm_test_redis_start();
  char *keyfile =
      gm_test_key_file(ct_redis, "server.key", server_pub, server_sec);
  char conf[2048];
  snprintf(conf, sizeof conf,
           "[testing]\nclock = manual\n[plugins]\nload = carbon\n"
           "[market.carbon]\nsweep_ms = 50\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s\n",
           keyfile, admin_pub);
  free(keyfile);
  ct_gmd = gm_test_gmd_start_curve(ct_redis, GM_BUILD_PLUGIN_DIR, conf,
                                   server_pub, admin_pub, admin_sec);
  const char *ep = gm_test_gmd_endpoint(ct_gmd);
  admin = ct_conn = gm_test_conn_new(ep, server_pub, admin_pub, admin_sec);
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  register_key("alice", alice_pub);
  register_key("bob", bob_pub);
  alice = gm_test_conn_new(ep, server_pub, alice_pub, alice_sec);
  bob = gm_test_conn_new(ep, server_pub, bob_pub, bob_sec);
  ct_create(SYM, 8500);
  ct_deposit("alice", SYM, INT64_C(100000000), 10000);
  ct_deposit("bob", SYM, INT64_C(100000000), 10000);
}

static void teardown(void) {
  gm_test_conn_destroy(&alice);
  gm_test_conn_destroy(&bob);
  ct_conn = admin;
  ct_stop();
}

/* Places a GTC limit order over connection c (the key says who). */
static void place(gm_test_conn *c, Gm__Carbon__Side side, int64_t price,
                  int64_t qty) {
  ct_conn = c;
  ct_free(ct_limit(NULL, SYM, side, price, qty, CT_GTC));
  ct_conn = admin;
}

static gm_feed *feed_as(const char *pub, const char *sec) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.server_public_key = server_pub;
  o.public_key = pub;
  o.secret_key = sec;
  gm_feed *f = gm_feed_new(gm_test_gmd_feed(ct_gmd), &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  return f;
}

/* What a feed saw. */
typedef struct seen {
  int own_orders;    /* "@p:<self> carbon.order" events */
  int foreign;       /* anyone else's private events, or public orders */
  int trades, books; /* public */
  int64_t trade_qty; /* of the last trade */
  int marker;        /* own order event at the marker price */
} seen;

/* Reads f for up to ms, counting what it sees as participant `self`. */
static void watch(gm_feed *f, const char *self, seen *s, int64_t marker,
                  int ms) {
  char own[64];
  snprintf(own, sizeof own, "@p:%s carbon.order", self);
  for (int i = 0; i < ms / 10; i++) {
    char *topic = NULL;
    Gm__Event *ev = NULL;
    if (gm_feed_recv(f, &topic, &ev, 10) != GM_OK) {
      free(topic);
      continue;
    }
    if (strcmp(topic, own) == 0) {
      Gm__Carbon__OrderEvent *oe =
          gm__carbon__order_event__unpack(NULL, ev->body.len, ev->body.data);
      ck_assert_ptr_nonnull(oe);
      if (strcmp(oe->order->participant, self) != 0) s->foreign++;
      if (oe->order->price == marker) s->marker = 1;
      s->own_orders++;
      ct_free(oe);
    } else if (topic[0] == '@' || strcmp(topic, "carbon.order") == 0 ||
               strcmp(topic, "carbon.offer") == 0) {
      s->foreign++; /* another's private event, or one made public */
    } else if (strcmp(topic, "carbon.trade") == 0) {
      Gm__Carbon__TradeEvent *te =
          gm__carbon__trade_event__unpack(NULL, ev->body.len, ev->body.data);
      ck_assert_ptr_nonnull(te);
      s->trades++;
      s->trade_qty = te->quantity;
      ct_free(te);
    } else if (strcmp(topic, "carbon.book") == 0) {
      s->books++;
    }
    free(topic);
    gm_feed_event_free(&ev);
    if (marker && s->marker && s->trades) return;
  }
}

START_TEST(bob_sees_the_trade_and_book_of_alices_order_but_not_her_order) {
  gm_feed *fa = feed_as(alice_pub, alice_sec);
  gm_feed *fb = feed_as(bob_pub, bob_sec);
  seen a = {0}, b = {0};
  /* The slow joiner: resting orders far from each other until each feed
     hears its own order and the book. */
  for (int i = 0; i < 50 && !(a.own_orders && b.own_orders && b.books); i++) {
    if (!a.own_orders) place(alice, CT_SELL, 9000, 1);
    if (!b.own_orders || !b.books) place(bob, CT_BUY, 8000, 1);
    watch(fa, "alice", &a, 0, 100);
    watch(fb, "bob", &b, 0, 100);
  }
  ck_assert_msg(a.own_orders && b.own_orders && b.books,
                "the feeds never heard the first orders");
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);

  place(alice, CT_SELL, 8500, 10);
  place(bob, CT_BUY, 8500, 10);
  place(bob, CT_BUY, 8001, 1); /* bob's marker: his feed is read up to it */
  place(alice, CT_SELL, 8999, 1);
  watch(fb, "bob", &b, 8001, 5000);
  watch(fa, "alice", &a, 8999, 5000);

  ck_assert_int_eq(b.trades, 1);
  ck_assert_int_eq(b.trade_qty, 10);
  ck_assert_int_ge(b.books, 1);
  ck_assert(b.marker);
  ck_assert_int_ge(b.own_orders, 2); /* his buy (filled) and the marker */
  ck_assert_int_eq(b.foreign, 0);    /* nothing of alice's orders */
  ck_assert_int_eq(a.trades, 1);
  ck_assert(a.marker);
  ck_assert_int_ge(a.own_orders, 2);
  ck_assert_int_eq(a.foreign, 0);
  gm_feed_destroy(&fa);
  gm_feed_destroy(&fb);
}
END_TEST

/* A feed of participant (pub, sec) subscribed to `prefix` only. */
static gm_feed *feed_only(const char *pub, const char *sec,
                          const char *prefix) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.server_public_key = server_pub;
  o.public_key = pub;
  o.secret_key = sec;
  gm_feed *f = gm_feed_new(gm_test_gmd_feed(ct_gmd), &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, prefix), GM_OK);
  return f;
}

/* One audience's events as a feed saw them, in order. */
typedef struct counted {
  uint64_t seq[512];
  int n;
  int trades;    /* carbon.trade events */
  int64_t price; /* the last order event's price */
} counted;

/* Waits up to ms for one event on f and records it (an event of another
   topic than `topic`, or a public topic when `topic` is "", fails); 1 when
   one came. */
static int take_counted(gm_feed *f, const char *topic, counted *c, int ms) {
  char *t = NULL;
  Gm__Event *ev = NULL;
  if (gm_feed_recv(f, &t, &ev, ms) != GM_OK) {
    free(t);
    gm_feed_event_free(&ev);
    return 0;
  }
  ck_assert_msg(*topic ? strcmp(t, topic) == 0 : t[0] != '@',
                "unexpected topic %s", t);
  ck_assert_int_lt(c->n, 512);
  c->seq[c->n++] = ev->seq;
  if (strcmp(t, "carbon.trade") == 0) c->trades++;
  if (strstr(t, "carbon.order")) {
    Gm__Carbon__OrderEvent *oe =
        gm__carbon__order_event__unpack(NULL, ev->body.len, ev->body.data);
    ck_assert_ptr_nonnull(oe);
    c->price = oe->order->price;
    ct_free(oe);
  }
  free(t);
  gm_feed_event_free(&ev);
  return 1;
}

/* Each count goes up by one from 1: nothing was counted while nobody
   followed it, and no event skipped for lack of interest took a number. */
static void no_gap(const counted *c) {
  for (int i = 0; i < c->n; i++)
    ck_assert_msg(c->seq[i] == (uint64_t)i + 1, "event %d has seq %llu", i,
                  (unsigned long long)c->seq[i]);
}

/*
 * Carbon asks publish_wanted before it builds an event: carol's order
 * events (nobody follows her) and the public tape and book (nobody follows
 * them until bob comes) are never built, while alice, who follows only her
 * own orders, still gets each of hers, numbered without a gap.  When bob
 * subscribes to the public feed, its events are built from then on, and
 * their count starts at 1: the skipped ones took no number.  What it
 * checks is that invariant with the skipping on (it held before, when
 * publish dropped them after they were built); that they are not built
 * shows only in instruction counts (docs/status.md, open problem 4).
 */
START_TEST(events_nobody_follows_are_skipped_without_a_gap) {
  const char *own = "@p:alice carbon.order";
  char carol_pub[41], carol_sec[41];
  zmq_curve_keypair(carol_pub, carol_sec);
  register_key("carol", carol_pub);
  ct_deposit("carol", SYM, INT64_C(100000000), 10000);
  gm_test_conn *carol = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd),
                                         server_pub, carol_pub, carol_sec);
  gm_feed *fa = feed_only(alice_pub, alice_sec, "@p:alice ");
  counted a = {0}, b = {0};
  /* The slow joiner: alice's resting sells until she hears one. */
  for (int i = 0; i < 50 && !a.n; i++) {
    place(alice, CT_SELL, 9000, 1);
    take_counted(fa, own, &a, 100);
  }
  ck_assert_msg(a.n, "alice's feed never heard her order");
  /* Trades between alice and carol, and carol's own resting orders: each
     makes events for carol and for the public feed that nobody receives. */
  for (int i = 0; i < 10; i++) {
    place(alice, CT_SELL, 8900, 1);
    place(carol, CT_BUY, 8900, 1);
    place(carol, CT_BUY, 8000 + i, 1);
  }
  place(alice, CT_SELL, 9300, 1); /* alice's marker */
  for (int i = 0; i < 500 && a.price != 9300; i++)
    take_counted(fa, own, &a, 10);
  ck_assert_int_eq(a.price, 9300);
  /* Her sells at 8900 (placed, filled) and the marker came, numbered on. */
  ck_assert_int_ge(a.n, 1 + 10 + 1);
  no_gap(&a);

  /* Bob follows the public feed ("carbon."): its events are built from
     then on, numbered from 1. */
  gm_feed *fb = feed_only(bob_pub, bob_sec, "carbon.");
  for (int i = 0; i < 50 && !b.n; i++) {
    place(carol, CT_BUY, 7700 + i, 1); /* a new level: a book event */
    take_counted(fb, "", &b, 100);
  }
  ck_assert_msg(b.n, "bob's feed never heard the book");
  place(alice, CT_SELL, 8009, 1); /* trades with carol's best buy */
  for (int i = 0; i < 500 && !b.trades; i++) take_counted(fb, "", &b, 10);
  ck_assert_int_eq(b.trades, 1);
  no_gap(&b);
  gm_feed_destroy(&fb);
  gm_feed_destroy(&fa);
  gm_test_conn_destroy(&carol);
}
END_TEST

/* A replace that changes nothing is answered with the order as it is and
   tells the owner's feed nothing: the next event alice hears after it is
   her lowered quantity's, then her marker's. */
START_TEST(an_unchanged_replace_sends_no_order_event) {
  const char *own = "@p:alice carbon.order";
  gm_feed *fa = feed_only(alice_pub, alice_sec, "@p:alice ");
  counted a = {0};
  for (int i = 0; i < 50 && !a.n; i++) {
    place(alice, CT_SELL, 9000, 1);
    take_counted(fa, own, &a, 100);
  }
  ck_assert_msg(a.n, "alice's feed never heard her order");
  ct_conn = alice;
  Gm__Carbon__PlaceReply *o = ct_limit(NULL, SYM, CT_SELL, 9100, 10, CT_GTC);
  for (int i = 0; i < 500 && a.price != 9100; i++)
    take_counted(fa, own, &a, 10);
  ck_assert_int_eq(a.price, 9100);
  int before = a.n;
  Gm__Carbon__ReplaceRequest r = GM__CARBON__REPLACE_REQUEST__INIT;
  r.order_id = o->order->id;
  r.quantity = 10; /* the same total: nothing changes */
  Gm__Carbon__PlaceReply *same =
      (Gm__Carbon__PlaceReply *)ct_call(NULL, "order.replace", &r.base);
  ck_assert_msg(same, "replace: %s", ct_message);
  ck_assert_str_eq(same->order->id, o->order->id);
  ck_assert_int_eq(same->order->remaining, 10);
  ct_free(same);
  r.quantity = 0;
  r.price = 9100; /* the same price: nothing changes either */
  same = (Gm__Carbon__PlaceReply *)ct_call(NULL, "order.replace", &r.base);
  ck_assert_msg(same, "replace: %s", ct_message);
  ct_free(same);
  r.price = 0;
  r.quantity = 7; /* fewer: an event with the order's new quantity */
  same = (Gm__Carbon__PlaceReply *)ct_call(NULL, "order.replace", &r.base);
  ck_assert_msg(same, "replace: %s", ct_message);
  ck_assert_int_eq(same->order->remaining, 7);
  ct_free(same);
  ct_free(ct_limit(NULL, SYM, CT_SELL, 9300, 1, CT_GTC)); /* the marker */
  ct_conn = admin;
  for (int i = 0; i < 500 && a.price != 9300; i++)
    take_counted(fa, own, &a, 10);
  ck_assert_int_eq(a.price, 9300);
  /* The lowered quantity's event and the marker's: nothing between. */
  ck_assert_int_eq(a.n, before + 2);
  no_gap(&a);
  ct_free(o);
  gm_feed_destroy(&fa);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon feed");
  TCase *tc = tcase_create("feed");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc,
                 bob_sees_the_trade_and_book_of_alices_order_but_not_her_order);
  tcase_add_test(tc, events_nobody_follows_are_skipped_without_a_gap);
  tcase_add_test(tc, an_unchanged_replace_sends_no_order_event);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
