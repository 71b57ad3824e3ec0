/*
 * A private gmd for one test, on ipc:// endpoints in the Redis fixture's temp
 * folder, with its own ledger file, stopped by pid.
 *
 *   gm_test_redis *r = gm_test_redis_start();
 *   gm_test_gmd *g = gm_test_gmd_start(r, plugin_dir, "[testing]\nclock =
 * manual\n"); gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL,
 * NULL, NULL); Gm__Reply *rep = gm_test_call(c, "alice", "gm", "ping", NULL,
 * &req.base);
 *   ...
 *   gm_test_gmd_stop(&g); gm_test_redis_stop(&r);
 */
#ifndef GM_TEST_GMD_FIXTURE_H
#define GM_TEST_GMD_FIXTURE_H

#include <sys/types.h>

#include "greenmarket.pb-c.h"
#include "redis_fixture.h"

typedef struct gm_test_gmd gm_test_gmd;
typedef struct gm_test_conn gm_test_conn;

/*
 * Writes gmd.conf (dev mode unless extra_conf sets [security]) and starts
 * GM_BUILD_DIR/core/gmd; waits up to 10 s for a ping.  extra_conf lines are
 * appended to the file (later keys win).
 */
gm_test_gmd *gm_test_gmd_start(gm_test_redis *r, const char *plugin_dir,
                               const char *extra_conf);
/*
 * The same for a CURVE broker: server_key is its public key, and the start-up
 * ping uses the client key pair (public, secret), which must be admitted.
 */
gm_test_gmd *gm_test_gmd_start_curve(gm_test_redis *r, const char *plugin_dir,
                                     const char *extra_conf,
                                     const char *server_key,
                                     const char *public_key,
                                     const char *secret_key);
/*
 * Another gmd on the same Redis: its files (config, log, sockets, ledger)
 * in the subfolder `name` of the Redis fixture's folder, so several brokers
 * can share one Redis.  extra_conf may point [ledger] path at another
 * broker's ledger (gm_test_gmd_ledger) to share it.
 */
gm_test_gmd *gm_test_gmd_start_named(gm_test_redis *r, const char *name,
                                     const char *plugin_dir,
                                     const char *extra_conf);
/* gm_test_gmd_start_named for a CURVE broker (keys as
   gm_test_gmd_start_curve). */
gm_test_gmd *gm_test_gmd_start_named_curve(gm_test_redis *r, const char *name,
                                           const char *plugin_dir,
                                           const char *extra_conf,
                                           const char *server_key,
                                           const char *public_key,
                                           const char *secret_key);
/* SIGTERM, waits for exit (asserting a clean exit), nulls *g. */
void gm_test_gmd_stop(gm_test_gmd **g);
/* SIGKILL now, reaped; restart with gm_test_gmd_restart. */
void gm_test_gmd_kill9(gm_test_gmd *g);
/* Starts gmd again with the same config; waits for a ping. */
void gm_test_gmd_restart(gm_test_gmd *g);
/* Waits up to timeout_ms for gmd to exit by itself (reaped); returns its
   wait status, or -1 when it is still running. */
int gm_test_gmd_wait_exit(gm_test_gmd *g, int timeout_ms);
/* The config file: append lines to change the next restart's settings. */
const char *gm_test_gmd_conf(const gm_test_gmd *g);
const char *gm_test_gmd_endpoint(const gm_test_gmd *g);
const char *gm_test_gmd_feed(const gm_test_gmd *g);
const char *gm_test_gmd_ledger(const gm_test_gmd *g);
/* The first column of the first row of sql over g's ledger, opened
   read-only (waiting up to 5 s for the settler's write lock); -1 when sql
   fails or gives no row. */
long long gm_test_gmd_ledger_count(const gm_test_gmd *g, const char *sql);
const char *gm_test_gmd_log(const gm_test_gmd *g);
pid_t gm_test_gmd_pid(const gm_test_gmd *g);
/* `gmd --check` on a config for Redis r (its socket, a ledger beside it,
   development mode, no metrics port) loading `load` from plugin folder
   `dir`, then the config lines `extra` (NULL: none; a key given again
   there wins): its exit status, and its output in out. */
int gm_test_gmd_check_load(gm_test_redis *r, const char *dir, const char *load,
                           const char *extra, char *out, size_t outlen);
/* How many lines of gmd's log contain `text`. */
int gm_test_gmd_log_count(const gm_test_gmd *g, const char *text);
/* Non-zero when gmd's log contains `text`. */
int gm_test_gmd_log_has(const gm_test_gmd *g, const char *text);
/*
 * gmd's /metrics, for a broker started with "[metrics]\nlisten =
 * 127.0.0.1:0\n" in extra_conf: the port it logged (0: none yet), and the
 * value of one series, "name" or "name{labels}" as it is printed (-1 when
 * it is absent or the endpoint does not answer).  wait_metric scrapes
 * until the value is within [lo, hi], for up to timeout_ms, and fails the
 * test saying the last value otherwise: a test waits for what it needs (a
 * subscription that reached the feed, a connection the feed forgot)
 * instead of sleeping.
 */
int gm_test_gmd_metrics_port(const gm_test_gmd *g);
double gm_test_gmd_metric(const gm_test_gmd *g, const char *series);
double gm_test_gmd_wait_metric(const gm_test_gmd *g, const char *series,
                               double lo, double hi, int timeout_ms);

/* A DEALER connection; keys (Z85) NULL for plain. */
gm_test_conn *gm_test_conn_new(const char *endpoint, const char *server_key,
                               const char *public_key, const char *secret_key);
void gm_test_conn_destroy(gm_test_conn **c);
/* Sends raw frames (for garbage tests); n frames of the given sizes. */
void gm_test_conn_send_raw(gm_test_conn *c, int n, const void *const *data,
                           const size_t *sizes);
/* Receives one reply within timeout_ms; NULL on timeout or undecodable. */
Gm__Reply *gm_test_conn_recv(gm_test_conn *c, int timeout_ms);
/*
 * Sends one request without waiting (pipelining): request_id is the caller's;
 * match it in the replies from gm_test_conn_recv.
 */
void gm_test_send(gm_test_conn *c, uint64_t request_id, const char *as,
                  const char *market, const char *method, const char *idem,
                  const ProtobufCMessage *body);
/*
 * One request: as = dev participant (NULL: none), idem = idempotency key
 * (NULL: none), body may be NULL.  Returns the reply (free with
 * gm__reply__free_unpacked) or NULL after 5 s.
 */
Gm__Reply *gm_test_call(gm_test_conn *c, const char *as, const char *market,
                        const char *method, const char *idem,
                        const ProtobufCMessage *body);

#endif
