/*
 * A small broker stand-in for the client tests: a real ZeroMQ ROUTER in its
 * own thread that answers each gm.Request with a gm.Reply carrying the same
 * request id and the request's body, and records what it received.  Options
 * make it misbehave the ways a real network and broker can.
 */
#ifndef GM_TEST_ECHO_SERVER_H
#define GM_TEST_ECHO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <greenmarket/client.h>

typedef struct gm_test_echo gm_test_echo;

typedef struct gm_test_echo_opts {
  int drop_first;         /* receive and do not answer the first N */
  int wrong_id_first;     /* precede every answer by one for another id */
  size_t reply_body_size; /* >0: answer with this many bytes of body */
  gm_status status;       /* the status to answer with (GM_OK) */
  const char *message;    /* and its message ("") */
  const char *secret_key; /* Z85: be a CURVE server with this key */
  /* With secret_key: a ZAP handler that admits only this client public key
     (Z85) and answers 400 to any other, as gmd does for unregistered keys. */
  const char *zap_admit;
  /* With zap_admit: admit it for its first N handshakes only, then refuse
     it too (a key revoked during a call); 0: always. */
  int zap_admit_times;
  /* With drop_first: after dropping a request, close the ROUTER and bind a
     new one on the same endpoint (a broker restart: clients reconnect and
     handshake again, on the same socket). */
  int rebind_after_drop;
  int feed; /* also bind a PUB (CURVE like the ROUTER): see _feed_endpoint */
} gm_test_echo_opts;

/* One request as received. */
typedef struct gm_test_echo_req {
  uint64_t request_id;
  uint32_t version;
  char market[64], method[64], idempotency_key[160], dev_participant[64];
  size_t body_len;
} gm_test_echo_req;

/* Binds tcp://127.0.0.1:* and starts answering; aborts the test on error. */
gm_test_echo *gm_test_echo_start(const gm_test_echo_opts *o);
void gm_test_echo_stop(gm_test_echo **e);
const char *gm_test_echo_endpoint(const gm_test_echo *e);
/* The PUB's endpoint (opts.feed); it publishes nothing. */
const char *gm_test_echo_feed_endpoint(const gm_test_echo *e);
/* How many requests arrived, and a copy of the i-th. */
size_t gm_test_echo_count(gm_test_echo *e);
gm_test_echo_req gm_test_echo_get(gm_test_echo *e, size_t i);

/* A tcp endpoint on which nothing listens (bound once, then closed). */
void gm_test_dead_endpoint(char out[64]);

#endif /* GM_TEST_ECHO_SERVER_H */
