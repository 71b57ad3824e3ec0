/*
 * The host a market plugin sees, for fuzzing its code in-process: every
 * gm_host_api function, with Redis replies and ledger rows made from the
 * fuzzer's input (the "tape") instead of a server, and the ledger itself
 * real (a SQLite file) where a target settles.  Loads one plugin by path
 * ($GM_FUZZ_PLUGIN) and calls its init once.
 */
#ifndef GM_FUZZ_FAKE_HOST_H
#define GM_FUZZ_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "greenmarket/plugin.h"
#include "ledger.h"

struct gm_market {
  const gm_plugin *plugin; /* from the .so */
  gm_settle_fn settle;     /* what it registered */
  gm__ledger *ledger;      /* a real ledger, when the target settles */
  struct {                 /* its deadline callbacks, as registered */
    char kind[40];
    gm_deadline_fn fn;
    void *arg;
  } deadlines[16];
  size_t n_deadlines;
};

struct gm_call {
  gm__arena *arena;     /* freed after each input */
  gm_market *market;    /* the plugin */
  int roles;            /* the caller holds every role but admin */
  int admin;            /* the caller is admin */
  const char *idem;     /* "" or a key */
  gm_status status;     /* from fail() */
  const char *message;  /* from fail() */
  const uint8_t *tape;  /* where script replies and rows come from */
  size_t tape_len, pos; /* its length and what was read */
};

/* The plugin, loaded and initialised once ($GM_FUZZ_PLUGIN); with_ledger
   opens a SQLite file for its migrations and settle callback. */
gm_market *fuzz_market(int with_ledger);

#endif
