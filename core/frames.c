#include "frames.h"

#include <errno.h>

int gm__recv_frames(void *sock, zmq_msg_t *frames, int max, int *n, int flags) {
  int more = 1, got = 0, total = 0;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, total ? 0 : flags) < 0) {
      int e = zmq_errno();
      zmq_msg_close(&m);
      for (int i = 0; i < got; i++) zmq_msg_close(&frames[i]);
      if ((e == EINTR || e == EAGAIN) && got == 0) {
        *n = 0;
        return 0;
      }
      return -1;
    }
    more = zmq_msg_more(&m);
    total++;
    if (got < max)
      frames[got++] = m;
    else
      zmq_msg_close(&m);
  }
  *n = total > max ? -got : got;
  return 0;
}
