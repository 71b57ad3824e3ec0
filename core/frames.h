/* Multipart ZeroMQ messages as arrays of frames (router, workers, feed). */
#ifndef GM_CORE_FRAMES_H
#define GM_CORE_FRAMES_H

#include <zmq.h>

/*
 * Receives one multipart message into frames[0..max) (flags apply to its
 * first frame: with ZMQ_DONTWAIT, *n = 0 when none is waiting).  *n is the
 * number of frames, or minus the number kept when the message had more
 * than max (the rest were dropped).  0, or -1 when the context is
 * terminating.
 */
int gm__recv_frames(void *sock, zmq_msg_t *frames, int max, int *n, int flags);

/*
 * Whether a ROUTER routing id is one the ROUTER assigned (a 0 byte, then a
 * 4-byte count it never gives twice), not one the client chose
 * (ZMQ_ROUTING_ID).  A chosen one can be presented again by another client
 * once its connection has closed, and that client is then sent whatever is
 * still addressed to it (a reply, a private event).  libzmq reserves ids
 * starting with a 0 byte for its own; a client that chooses one anyway
 * passes for assigned, and would have to guess a count in use (it never
 * sees any) to be sent another's messages.
 */
static inline int gm__rid_assigned(const void *rid, size_t n) {
  return n == 5 && ((const unsigned char *)rid)[0] == 0;
}

#endif
