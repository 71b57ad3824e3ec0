/* The config reader (inih through core/config.c), fed any file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("gmd.conf", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) || pwrite(fd, data, len, 0) != (ssize_t)len) abort();
  char err[512];
  gm__config *c = gm__config_load(path, err, sizeof err);
  if (!c) return 0;
  long v;
  int b;
  gm__config_get(c, "broker", "endpoint", "tcp://127.0.0.1:7470");
  gm__config_int(c, "broker", "workers", 2, 1, 256, &v, err, sizeof err);
  gm__config_int(c, "redis", "port", 6379, 1, 65535, &v, err, sizeof err);
  gm__config_bool(c, "ledger", "settle", 1, &b, err, sizeof err);
  free(gm__config_path(c, "ledger", "path", "ledger.sqlite"));
  gm__config_check(c, err, sizeof err);
  gm__config_set(c, "broker", "name", "fuzz");
  gm__config_destroy(&c);
  return 0;
}
