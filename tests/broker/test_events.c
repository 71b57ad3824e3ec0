/*
 * The one queue every thread hands events to the publisher through
 * (core/events.c), without a broker: a PULL on inproc read by the test.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "events.h"

#define EP "inproc://test-events"

/* Reads one event's body as a string (topic checked); "" on none. */
static const char *next_body(void *pull) {
  static char body[64];
  char topic[64];
  int n = zmq_recv(pull, topic, sizeof topic - 1, 0);
  if (n < 0) return "";
  topic[n] = 0;
  ck_assert_str_eq(topic, "m.e");
  int more = 0;
  size_t ml = sizeof more;
  zmq_getsockopt(pull, ZMQ_RCVMORE, &more, &ml);
  ck_assert_int_eq(more, 1);
  n = zmq_recv(pull, body, sizeof body - 1, 0);
  body[n > 0 ? n : 0] = 0;
  return body;
}

typedef struct sender {
  gm__events *q;
  char tag;       /* first byte of its bodies */
  int n;          /* events to send */
  int sent;       /* sent before a failure */
  int last_errno; /* zmq_errno() of the failure, or 0 */
} sender;

/* Sends "<tag><i>" for i in 0..n-1; stops at the first failure. */
static void *send_n(void *arg) {
  sender *s = arg;
  for (int i = 0; i < s->n; i++) {
    char body[32];
    int bl = snprintf(body, sizeof body, "%c%d", s->tag, i);
    if (gm__events_send(s->q, "m.e", 3, body, (size_t)bl) < 0) {
      s->last_errno = zmq_errno();
      return NULL;
    }
    s->sent++;
  }
  return NULL;
}

/*
 * The publisher reads events in the order they were sent, whichever thread
 * sent them: a thread's event sent after another thread's ten comes after
 * all ten (with a socket per thread, the PULL's fair queueing handed it
 * out second).
 */
START_TEST(events_of_several_threads_come_in_the_order_sent) {
  void *ctx = zmq_ctx_new();
  void *pull = zmq_socket(ctx, ZMQ_PULL);
  ck_assert_int_eq(zmq_bind(pull, EP), 0);
  char err[256];
  gm__events *q = gm__events_open(ctx, EP, err, sizeof err);
  ck_assert_msg(q != NULL, "%s", err);
  sender a = {.q = q, .tag = 'a', .n = 10}, b = {.q = q, .tag = 'b', .n = 1};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, send_n, &a), 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(pthread_create(&t, NULL, send_n, &b), 0);
  pthread_join(t, NULL);
  for (int i = 0; i < 10; i++) {
    char want[8];
    snprintf(want, sizeof want, "a%d", i);
    ck_assert_str_eq(next_body(pull), want);
  }
  ck_assert_str_eq(next_body(pull), "b0");
  gm__events_close(&q);
  ck_assert_ptr_null(q);
  zmq_close(pull);
  zmq_ctx_term(ctx);
}
END_TEST

/* Threads sending far past the queue's bound while nobody reads wait,
   and lose nothing: every event comes, each thread's in its order. */
START_TEST(a_full_queue_holds_its_senders_and_drops_nothing) {
  enum { T = 4, N = 5000 };
  void *ctx = zmq_ctx_new();
  void *pull = zmq_socket(ctx, ZMQ_PULL);
  ck_assert_int_eq(zmq_bind(pull, EP), 0);
  char err[256];
  gm__events *q = gm__events_open(ctx, EP, err, sizeof err);
  ck_assert_msg(q != NULL, "%s", err);
  sender s[T];
  pthread_t t[T];
  for (int i = 0; i < T; i++) {
    s[i] = (sender){.q = q, .tag = (char)('a' + i), .n = N};
    ck_assert_int_eq(pthread_create(&t[i], NULL, send_n, &s[i]), 0);
  }
  zmq_poll(NULL, 0, 200); /* they fill the queue and wait */
  int next[T] = {0};
  for (int k = 0; k < T * N; k++) {
    const char *b = next_body(pull);
    int i = b[0] - 'a';
    ck_assert_msg(i >= 0 && i < T, "event \"%s\"", b);
    ck_assert_int_eq(atoi(b + 1), next[i]);
    next[i]++;
  }
  for (int i = 0; i < T; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(s[i].sent, N);
  }
  gm__events_close(&q);
  zmq_close(pull);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * Stopping: a thread waiting on a full queue, and one waiting for the lock
 * behind it, both return -1 with ETERM once the context shuts down (the
 * broker then joins them, closes the queue, and terminates the context).
 */
START_TEST(senders_waiting_on_a_full_queue_end_when_the_context_shuts_down) {
  void *ctx = zmq_ctx_new();
  void *pull = zmq_socket(ctx, ZMQ_PULL);
  int zero = 0;
  zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_bind(pull, EP), 0);
  char err[256];
  gm__events *q = gm__events_open(ctx, EP, err, sizeof err);
  ck_assert_msg(q != NULL, "%s", err);
  sender s[2] = {{.q = q, .tag = 'a', .n = 1000000},
                 {.q = q, .tag = 'b', .n = 1000000}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, send_n, &s[i]), 0);
  zmq_poll(NULL, 0, 300); /* nobody reads: both wait */
  zmq_ctx_shutdown(ctx);
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_lt(s[i].sent, s[i].n);
    ck_assert_int_eq(s[i].last_errno, ETERM);
  }
  gm__events_close(&q);
  zmq_close(pull);
  zmq_ctx_term(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("events");
  TCase *tc = tcase_create("events");
  tcase_add_test(tc, events_of_several_threads_come_in_the_order_sent);
  tcase_add_test(tc, a_full_queue_holds_its_senders_and_drops_nothing);
  tcase_add_test(
      tc, senders_waiting_on_a_full_queue_end_when_the_context_shuts_down);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
