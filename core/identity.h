/*
 * Who is calling, and may they call this method: the one place a request's
 * identity is settled, between the envelope's decoding and the market.
 *
 * CURVE mode: the main thread puts the broker's auth frame in front of each
 * request ("participant\0roles\0key", as the ZAP handler admitted the
 * connection); the key must still belong to that participant on every
 * request, and the roles are the registry's now, not the handshake's.
 * Development mode: the envelope names the caller; its roles come from the
 * registry when a method needs them, every role the broker knows (admin
 * and the loaded markets') when it is unregistered.  Either way, roles no
 * loaded market declares are left out (roles.h).
 * Each worker keeps what it read for a second (a cache per worker), so a
 * stream of requests costs no Redis round trip each, and a re-registration
 * or a role change shows within a second.
 */
#ifndef GM_CORE_IDENTITY_H
#define GM_CORE_IDENTITY_H

#include <stddef.h>

#include "greenmarket/plugin.h"

typedef struct gm__identity gm__identity;

/* The first byte of an auth frame that stands for a connection under a
   routing id its client chose (ZMQ_ROUTING_ID): refused, since another
   client may present that id by the time the reply goes (frames.h,
   gm__rid_assigned).  No participant id starts with it. */
#define GM__AUTH_CHOSEN_RID '\x01'

/* One per worker thread. */
gm__identity *gm__identity_new(int dev_mode);
/* Frees; nulls *id; idempotent. */
void gm__identity_destroy(gm__identity **id);

/*
 * Sets call->participant (and, with CURVE, call->roles) from the auth frame
 * auth[0..auth_len) or, in development mode, from dev_participant.  0, or
 * -1 with the call failed (no participant, a revoked key, Redis down).
 */
int gm__identity_resolve(gm__identity *id, gm_call *call, const void *auth,
                         size_t auth_len, const char *dev_participant);

/*
 * 0 when the caller may run `m` (a method of a plugin market when
 * is_market, else a core method), -1 with the call failed
 * (PERMISSION_DENIED naming the roles needed and held).
 */
int gm__identity_authorize(gm__identity *id, gm_call *call, const char *market,
                           int is_market, const gm_method *m);

#endif
