/*
 * Participants and CURVE authentication.
 *
 * Participants live in Redis under one hash tag:
 *   gm:{participants}:id:<id>    hash: public_key, roles, name
 *   gm:{participants}:key:<z85>  string: the participant id owning that key
 * With CURVE on, a ZAP handler admits only registered keys and hands the
 * broker the participant id (ZAP User-Id) and roles (metadata "X-Roles").
 */
#ifndef GM_CORE_AUTH_H
#define GM_CORE_AUTH_H

#include <zmq.h>

#include "greenmarket.pb-c.h"
#include "greenmarket/plugin.h"
#include "redis.h"
#include "roles.h"

/* Longest comma list of roles a participant may hold (it travels in the
   ZAP reply's metadata). */
#define GM__ROLES_TEXT_MAX 399
/* The participant id of every bootstrap key ([security] admin_keys): with
   CURVE, no registered participant may hold it (it would share the
   bootstrap admins' orders, private events and idempotency records). */
#define GM__BOOTSTRAP_ADMIN_ID "admin"
/* Longest display name, in bytes. */
#define GM__PARTICIPANT_NAME_MAX 256

typedef struct gm__auth gm__auth;

/* One ZAP request's frames (version, id, domain, address, identity,
 * mechanism, creds), at most GM__ZAP_PARTS kept, the rest dropped; the
 * caller closes the n it gets.  -1: the receive failed (nothing to close).
 * Shared by every ZAP handler gmd runs (front end, ledger endpoint). */
#define GM__ZAP_PARTS 8
int gm__zap_recv(void *sock, zmq_msg_t parts[GM__ZAP_PARTS]);

/*
 * Starts the ZAP handler on zmq_ctx; must run before any CURVE socket binds.
 * admin_keys: comma-separated Z85 public keys admitted as participant "admin"
 * with role admin ([security] admin_keys), so the first admin can register
 * everyone else.  roles: the roles in force (a participant's others are
 * left out of what the handler hands the broker); read until stopped.
 */
gm__auth *gm__auth_start(void *zmq_ctx, const gm__redis_addr *addr,
                         const char *admin_keys, const gm__roles *roles,
                         char *err, size_t errlen);
/* 0 when every entry of [security] admin_keys (separated by commas or
 * spaces) is a whole 40-character Z85 public key, else -1 and err naming
 * the bad entry.  The handler admits a key only when it is an entry
 * exactly, never part of one. */
int gm__admin_keys_check(const char *admin_keys, char *err, size_t errlen);
/* Stops the handler thread (the context must be shutting down); nulls *a. */
void gm__auth_stop(gm__auth **a);

/* Looks a participant up; GM_NOT_FOUND when unregistered. */
/* p's registered roles as one comma list (in a). */
char *gm__participant_roles(gm__arena *a, const Gm__Participant *p);
gm_status gm__participant_get(gm_call *call, const char *id,
                              Gm__Participant **out);
/* Who owns CURVE public key z85 now and with which roles (arena strings);
 * *participant NULL when nobody does.  GM_UNAVAILABLE when Redis is down. */
gm_status gm__key_owner(gm_call *call, const char *z85, char **participant,
                        char **roles);
/*
 * Who owns each of the CURVE keys keys[0..n) now, and with which roles in
 * force (`known`): owners[i] NULL when nobody does.  Two pipelined round
 * trips over r, from any thread that owns r; strings in arena a.  -1 when
 * Redis failed or answered an error (loading): nothing is known then.
 */
int gm__auth_owners(gm__redis *r, gm__arena *a, const gm__roles *known,
                    const char *const *keys, size_t n, char **owners,
                    char **roles);
/* Creates or updates a participant, validated: every role must be one of
 * `roles` (the broker's); fails on a key owned by another. */
gm_status gm__participant_register(gm_call *call, const gm__roles *roles,
                                   const Gm__Participant *p);
/* Non-zero for a participant id: 1-64 letters, digits, '-', '_' or '.'. */
int gm__participant_id_valid(const char *id);
/* Non-zero for a 40-character Z85 CURVE public key. */
int gm__curve_key_valid(const char *z85);

#endif
