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

#endif
