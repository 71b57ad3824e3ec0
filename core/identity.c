#include "identity.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "broker.h"
#include "cache.h"
#include "call.h"
#include "greenmarket/participant.h"
#include "clock.h"

/* Entries per worker cache, and how long one is trusted. */
#define GM__IDENTITY_SLOTS 64
#define GM__IDENTITY_TTL_US 1000000u

struct gm__identity {
  int dev_mode;     /* callers say who they are */
  gm__cache *keys;  /* CURVE: key -> "owner\0roles" */
  gm__cache *roles; /* development mode: participant -> roles */
};

gm__identity *gm__identity_new(int dev_mode) {
  gm__identity *id = calloc(1, sizeof *id);
  if (!id) abort();
  id->dev_mode = dev_mode;
  id->keys = gm__cache_new(GM__IDENTITY_SLOTS, GM__IDENTITY_TTL_US);
  id->roles = gm__cache_new(GM__IDENTITY_SLOTS, GM__IDENTITY_TTL_US);
  return id;
}

void gm__identity_destroy(gm__identity **idp) {
  if (!idp || !*idp) return;
  gm__cache_destroy(&(*idp)->keys);
  gm__cache_destroy(&(*idp)->roles);
  free(*idp);
  *idp = NULL;
}

/* Splits the auth frame "participant\0roles\0key" (key empty for a
   bootstrap admin key) into the call; returns the key. */
static const char *gm__identity_read_auth(gm_call *call, const char *d,
                                          size_t n) {
  const char *nul = n ? memchr(d, '\0', n) : NULL;
  if (!nul) return "";
  call->participant = gm__arena_strndup(call->arena, d, (size_t)(nul - d));
  const char *r = nul + 1, *end = d + n;
  const char *nul2 = memchr(r, '\0', (size_t)(end - r));
  if (!nul2) nul2 = end;
  call->roles = gm__arena_strndup(call->arena, r, (size_t)(nul2 - r));
  return nul2 < end ? gm__arena_strndup(call->arena, nul2 + 1,
                                        (size_t)(end - nul2 - 1))
                    : "";
}

/* CURVE: the key must still be the participant's; roles as registered. */
static int gm__identity_recheck(gm__identity *id, gm_call *call,
                                const char *key) {
  uint64_t now = gm__clock_mono_us();
  size_t len;
  const char *owner, *roles;
  const char *hit = gm__cache_get(id->keys, key, now, &len);
  if (hit) {
    owner = hit;
    roles = hit + strlen(hit) + 1;
  } else {
    char *o = NULL, *r = NULL;
    if (gm__key_owner(call, key, &o, &r) != GM_OK) return -1;
    owner = o ? o : "";
    roles = r ? r : "";
    size_t lo = strlen(owner), lr = strlen(roles);
    char *v = gm__arena_alloc(call->arena, lo + lr + 2);
    memcpy(v, owner, lo + 1);
    memcpy(v + lo + 1, roles, lr + 1);
    gm__cache_put(id->keys, key, v, lo + lr + 1, now);
  }
  if (strcmp(owner, call->participant) != 0) {
    gm__call_fail(call, GM_PERMISSION_DENIED,
                  "the key this connection authenticated with is no longer "
                  "registered to participant %s (revoked or replaced); "
                  "reconnect with the participant's current key",
                  call->participant);
    return -1;
  }
  call->roles =
      gm__roles_in_force(gm__broker_roles(call->broker), call->arena, roles);
  return 0;
}

int gm__identity_resolve(gm__identity *id, gm_call *call, const void *auth,
                         size_t auth_len, const char *dev_participant) {
  const char *key = "";
  if (id->dev_mode) {
    call->participant =
        dev_participant && *dev_participant ? dev_participant : "dev";
    call->roles = NULL; /* looked up only when a method needs them */
    /* The id becomes part of Redis keys: the registry's rule keeps them
       bounded and printable. */
    if (!gm__participant_id_valid(call->participant)) {
      gm__call_fail(call, GM_INVALID_ARGUMENT,
                    "dev_participant '%s' (gm --as) is not a participant "
                    "id: use " GM_PARTICIPANT_ID_RULE,
                    gm__call_quote(call, call->participant, 64));
      return -1;
    }
  } else if (auth_len >= 1 && *(const char *)auth == GM__AUTH_CHOSEN_RID) {
    /* Its reply would go to whichever client presents that routing id
       when it is sent (the router marks it: broker.c). */
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "the broker answers only connections under the routing id "
                  "it assigns: do not set ZMQ_ROUTING_ID on the request "
                  "socket (a chosen routing id can be taken by another "
                  "client once this connection closes, which would be sent "
                  "this one's replies)");
    return -1;
  } else {
    key = gm__identity_read_auth(call, auth, auth_len);
  }
  if (!call->participant || !*call->participant) {
    gm__call_fail(call, GM_PERMISSION_DENIED,
                  "no authenticated participant: connect with a registered "
                  "CURVE key");
    return -1;
  }
  return *key ? gm__identity_recheck(id, call, key) : 0;
}

/* Development mode: the caller's registered roles (those in force), or
   every role the broker knows when it is unregistered. */
static void gm__identity_dev_roles(gm__identity *id, gm_call *call) {
  const char *who = call->participant;
  uint64_t now = gm__clock_mono_us();
  const char *hit = gm__cache_get(id->roles, who, now, NULL);
  if (hit) {
    call->roles = gm__arena_strdup(call->arena, hit);
    return;
  }
  const gm__roles *known = gm__broker_roles(call->broker);
  Gm__Participant *p = NULL;
  gm_status st = gm__participant_get(call, who, &p);
  if (st == GM_OK) {
    call->roles = gm__roles_in_force(known, call->arena,
                                     gm__participant_roles(call->arena, p));
  } else {
    call->roles = gm__roles_all(known);
  }
  call->status = GM_OK;
  call->message = NULL;
  if (st == GM_OK || st == GM_NOT_FOUND)
    gm__cache_put(id->roles, who, call->roles, strlen(call->roles), now);
}

int gm__identity_authorize(gm__identity *id, gm_call *call, const char *market,
                           int is_market, const gm_method *m) {
  int needs = m->roles && *m->roles;
  /* Plugins may ask has_role() of any caller, so a market call always has
     its roles; a core method only when it names some. */
  if (id->dev_mode && (is_market || needs)) gm__identity_dev_roles(id, call);
  if (!needs) return 0;
  const char *p = m->roles;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (gm__call_has_role(call, gm__arena_strndup(call->arena, p, len)))
      return 0;
    p = end ? end + 1 : p + len;
  }
  gm__call_fail(call, GM_PERMISSION_DENIED,
                "%s %s needs role %s; participant %s has roles '%s'", market,
                m->name, m->roles, call->participant,
                call->roles ? call->roles : "");
  return -1;
}
