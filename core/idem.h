/*
 * Idempotency of the broker's own mutating methods (register, clock.set,
 * deadletters.replay), as market scripts have it (core/redis.c): the first
 * reply to a participant's idempotency key is kept for [redis]
 * idempotency_ttl seconds, and a retry with that key gets it back without
 * running again, whatever its body.
 *
 * The record is one Redis string, "gm:{gm}:idem:<participant>:<method>:<key>"
 * (for clock.set, whose effect is the broker's own manual clock,
 * "<method>@<broker name>"):
 *   "P<token>"  an attempt runs: its lease, GM__IDEM_LEASE_MS long, taken
 *               atomically, so of two concurrent retries one runs and the
 *               other is told to retry (UNAVAILABLE); a broker that dies
 *               mid-way leaves a lease that runs out, and the retry after
 *               it runs again (every core method gives the same result
 *               when run twice with the same body);
 *   "R<body>"   the first reply's packed body (status OK), at most
 *               GM__IDEM_REPLY_MAX bytes.
 * A refused request (unknown role, no such dead letter, Redis down ...)
 * deletes its lease: nothing stays behind it, so refusals leave nothing
 * that grows with their number, and a retry after fixing the cause runs.
 * Requests refused before the handler (bad body, missing key, role) never
 * take a lease.
 */
#ifndef GM_CORE_IDEM_H
#define GM_CORE_IDEM_H

#include "greenmarket/plugin.h"

/* How long an attempt holds its key before another may run it. */
#define GM__IDEM_LEASE_MS 60000
/* The largest reply body kept; the core's replies are far smaller. */
#define GM__IDEM_REPLY_MAX 4096

/*
 * Runs core method m (its handler `handle`) for the call under its
 * idempotency key: the stored reply of an earlier run, or the handler's,
 * recorded.  Returns the handler's status, or UNAVAILABLE while another
 * attempt with the key runs or Redis is unreachable.
 */
gm_status gm__idem_core_run(gm_call *call, const gm_method *m,
                            gm_handler_fn handle, const ProtobufCMessage *req,
                            ProtobufCMessage **reply);

#endif
