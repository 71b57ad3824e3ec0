/*
 * The broker's own methods (market "gm") as data: names, request and reply
 * types, flags, roles and summaries.  One table for gmd, which attaches its
 * handlers by index, and for gm, which reads the descriptors and help.
 */
#ifndef GM_PROTO_CORE_METHODS_H
#define GM_PROTO_CORE_METHODS_H

#include <stddef.h>

#include "greenmarket/plugin.h"

enum {
  GM__CORE_PING,
  GM__CORE_MARKETS,
  GM__CORE_STATS,
  GM__CORE_WHOAMI,
  GM__CORE_REGISTER,
  GM__CORE_CLOCK_SET,
  GM__CORE_DEAD_LETTERS,
  GM__CORE_REPLAY,
  GM__CORE_METHODS /* how many */
};

/* The table; every handle is NULL (gmd keeps the handlers). */
extern const gm_method gm__core_methods[GM__CORE_METHODS];

#endif
