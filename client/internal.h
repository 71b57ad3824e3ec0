/* Private to libgmclient: what client.c and feed.c share. */
#ifndef GM_CLIENT_INTERNAL_H
#define GM_CLIENT_INTERNAL_H

#include <stdint.h>

#include <greenmarket/client.h>

/* Records why gm_client_new() / gm_feed_new() failed (thread-local). */
void gm__client_set_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Copies `in` (NULL: defaults) into `out` with every default applied and
 * every string duplicated; checks the CURVE keys.  Returns 0, or -1 after
 * gm__client_set_error().  Release with gm__client_options_free().
 */
int gm__client_options_copy(gm_client_options *out,
                            const gm_client_options *in);
void gm__client_options_free(gm_client_options *o);

/* Sets the CURVE client options on `sock` when o has a server key. */
int gm__client_apply_curve(void *sock, const gm_client_options *o);

/*
 * The process's one ZeroMQ context, shared by every client and feed: one I/O
 * thread for all of them instead of one each.  Acquire returns NULL when
 * ZeroMQ cannot make one; release terminates it with its last user (whose
 * sockets must be closed already).
 */
void *gm__client_ctx_acquire(void);
void gm__client_ctx_release(void);

/*
 * CURVE handshake watch: the broker answers a key it does not admit with ZAP
 * status 400, which ZeroMQ reports only as a socket event, and then ends
 * that connection for good (libzmq 4.3 does not reconnect it).  monitor()
 * starts watching `sock` and returns the socket to read the events from, or
 * NULL (best effort: without it a refusal looks like silence); refused()
 * drains it and returns the ZAP status of a handshake the broker ended with
 * one since the last call (400, or 500 for its own failure; 400 wins), else
 * 0, and adds to *dropped (when not NULL) the handshakes that ended without
 * a word (what a wrong server key looks like; a ZAP 300 makes no event at
 * all: the handshake waits) and sets *admitted (when not NULL) to 1 when a
 * handshake succeeded; monitor_close() stops watching (before `sock` is
 * closed).
 */
void *gm__client_monitor(void *ctx, void *sock);
unsigned gm__client_refused(void *mon, unsigned *dropped, int *admitted);
void gm__client_monitor_close(void *sock, void **mon);

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t gm__client_now_ms(void);

#endif /* GM_CLIENT_INTERNAL_H */
