/*
 * The one queue every thread hands feed events to the publisher through.
 * Workers, timers and deadline callbacks all send on one PUSH socket, under
 * a lock, so the publisher reads events in the order they were sent: an
 * event of a call whose reply a client has seen is numbered before any
 * event of a call that client sends next, whichever worker runs each (with
 * a socket per thread, the publisher's fair queueing could take a later
 * event from an idle worker's pipe before earlier ones waiting in a busy
 * worker's).  A send blocks while the publisher is 16000 events behind
 * (about what the threads' own sockets held together before): no event is
 * dropped here.
 */
#ifndef GM_CORE_EVENTS_H
#define GM_CORE_EVENTS_H

#include <stddef.h>

typedef struct gm__events gm__events;

/* A PUSH socket on zctx connected to the publisher's inproc endpoint; NULL
   with err on failure. */
gm__events *gm__events_open(void *zctx, const char *endpoint, char *err,
                            size_t errlen);
/* Sends [topic, body] as one message; 0, or -1 with zmq_errno() set (the
   context is terminating).  Any thread. */
int gm__events_send(gm__events *q, const void *topic, size_t tlen,
                    const void *body, size_t blen);
/* Closes the socket: once no thread sends any more.  Nulls *q. */
void gm__events_close(gm__events **q);

#endif
