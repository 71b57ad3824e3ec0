/*
 * One request's way through the core, in one direction: the envelope is
 * decoded, the caller identified (identity.c), the market and method found,
 * the body decoded, the handler run, and the reply body encoded.
 */
#ifndef GM_CORE_DISPATCH_H
#define GM_CORE_DISPATCH_H

#include <stddef.h>

#include "greenmarket.pb-c.h"
#include "greenmarket/plugin.h"
#include "stats.h"

struct gm__broker;
struct gm__identity;

/*
 * Runs the request in payload[0..size) for `call` (whose arena, Redis,
 * ledger reader and feed socket are set).  auth[0..auth_len) is the
 * broker's auth frame.  Fills out (request id, body) and the call's status
 * and message; *stats is where the request is counted, and *method_stats
 * too once it reached a method (else NULL).
 */
void gm__dispatch(struct gm__broker *b, struct gm__identity *id, gm_call *call,
                  const void *auth, size_t auth_len, const void *payload,
                  size_t size, Gm__Reply *out, gm__stats **stats,
                  gm__stats **method_stats);

#endif
