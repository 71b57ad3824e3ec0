/* The handlers of the broker's own methods (market "gm"). */
#ifndef GM_CORE_METHODS_H
#define GM_CORE_METHODS_H

#include "core_methods.h"
#include "greenmarket/plugin.h"

/* Runs core method `m` (an entry of gm__core_methods); a mutating one
   under its idempotency key (idem.h). */
gm_status gm__core_call(gm_call *call, const gm_method *m,
                        const ProtobufCMessage *req, ProtobufCMessage **reply);

#endif
