#include "auth.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "call.h"
#include "log.h"
#include "greenmarket/participant.h"

#define ID_KEY "gm:{participants}:id:"
#define PUBKEY_KEY "gm:{participants}:key:"

struct gm__auth {
  void *ctx;              /* the broker's zmq context */
  pthread_t thread;       /* the ZAP handler */
  gm__redis *redis;       /* the handler's own connection */
  void *rep;              /* REP bound to inproc://zeromq.zap.01 */
  char *admin_keys;       /* bootstrap admin keys, comma-separated Z85 */
  const gm__roles *roles; /* the roles in force (the broker's) */
  gm__arena *arena;       /* one handshake's strings */
};

int gm__curve_key_valid(const char *z85) {
  uint8_t bin[32];
  return z85 && strlen(z85) == 40 && zmq_z85_decode(bin, z85) != NULL;
}

/*
 * Refuses (INVALID_ARGUMENT) a comma list of roles with an empty or unknown
 * one, naming it and listing the roles the broker knows with their markets
 * and meanings.
 */
static gm_status check_roles(gm_call *call, const gm__roles *known,
                             const char *roles) {
  const char *p = roles;
  const char *bad = NULL;
  size_t badlen = 0;
  do {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (!len || !gm__roles_known(known, p, len)) {
      bad = p;
      badlen = len;
      break;
    }
    p = end ? end + 1 : NULL;
  } while (p);
  if (!bad) return GM_OK;
  const char *list = gm__roles_describe(known, call->arena);
  if (!*roles)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "roles '': give one or more of the roles this "
                         "broker knows:%s",
                         list);
  if (!badlen)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "roles '%s': an empty role between commas; give "
                         "one or more of the roles this broker knows:%s",
                         roles, list);
  return gm__call_fail(call, GM_INVALID_ARGUMENT,
                       "roles '%s': '%.*s' is no role on this broker (no "
                       "loaded market declares it); give one or more of the "
                       "roles it knows:%s",
                       roles, (int)badlen, bad, list);
}

int gm__participant_id_valid(const char *id) {
  return gm_participant_id_valid(id);
}

/* Splits "a,b,c" into an arena array. */
static char **split_roles(gm__arena *a, const char *roles, size_t *n) {
  size_t count = 1;
  for (const char *p = roles; *p; p++) count += *p == ',';
  char **out = gm__arena_alloc(a, count * sizeof *out);
  *n = 0;
  const char *p = roles;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len) out[(*n)++] = gm__arena_strndup(a, p, len);
    if (!end) break;
    p = end + 1;
  }
  return out;
}

char *gm__participant_roles(gm__arena *a, const Gm__Participant *p) {
  char *roles = "";
  for (size_t i = 0; i < p->n_roles; i++)
    roles = gm__arena_sprintf(a, "%s%s%s", roles, i ? "," : "", p->roles[i]);
  return roles;
}

gm_status gm__participant_get(gm_call *call, const char *id,
                              Gm__Participant **out) {
  redisReply *r = gm__redis_callf(
      call->redis, "HMGET " ID_KEY "%s public_key roles name", id);
  if (!r) {
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis is not reachable; is redis-server running?");
  }
  gm_status st = GM_OK;
  if (r->type == REDIS_REPLY_ERROR) { /* loading, say: not "unregistered" */
    st = gm__redis_fail(call, r, "reading the participant registry");
    goto done;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[1]->type != REDIS_REPLY_STRING) {
    st = gm__call_fail(call, GM_NOT_FOUND,
                       "participant '%s' is not registered (an admin registers "
                       "it with: gm admin register %s --roles ...)",
                       id, id);
    goto done;
  }
  Gm__Participant *p = gm__arena_alloc(call->arena, sizeof *p);
  gm__participant__init(p);
  p->id = gm__arena_strdup(call->arena, id);
  p->public_key = gm__arena_strdup(
      call->arena,
      r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "");
  p->roles = split_roles(call->arena, r->element[1]->str, &p->n_roles);
  p->name = gm__arena_strdup(
      call->arena,
      r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "");
  *out = p;
done:
  freeReplyObject(r);
  return st;
}

/* Atomic: refuses a key owned by someone else, moves the key index on change.
 */
static const char register_lua[] =
    "#!lua\n"
    "local owner = ARGV[2] ~= '' and redis.call('GET', KEYS[2])\n"
    "if owner and owner ~= ARGV[1] then\n"
    "  return redis.error_reply('ALREADY_EXISTS public key is registered to "
    "participant ' .. owner)\n"
    "end\n"
    "local old = redis.call('HGET', KEYS[1], 'public_key')\n"
    "if old and old ~= '' and old ~= ARGV[2] then\n"
    "  redis.call('DEL', ARGV[5] .. old)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'public_key', ARGV[2], 'roles', ARGV[3], "
    "'name', ARGV[4])\n"
    "if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1]) end\n"
    "return 1\n";

gm_status gm__key_owner(gm_call *call, const char *z85, char **participant,
                        char **roles) {
  *participant = *roles = NULL;
  redisReply *r = gm__redis_callf(call->redis, "GET " PUBKEY_KEY "%s", z85);
  if (!r)
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis is not reachable; is redis-server running?");
  /* An error (Redis loading its data) must not read as "nobody owns the
     key", which would cut the connection off. */
  if (r->type == REDIS_REPLY_ERROR) {
    gm_status st = gm__redis_fail(call, r, "reading the participant registry");
    freeReplyObject(r);
    return st;
  }
  if (r->type == REDIS_REPLY_STRING)
    *participant = gm__arena_strdup(call->arena, r->str);
  freeReplyObject(r);
  if (!*participant) return GM_OK;
  r = gm__redis_callf(call->redis, "HGET " ID_KEY "%s roles", *participant);
  if (!r)
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis is not reachable; is redis-server running?");
  if (r->type == REDIS_REPLY_ERROR) {
    gm_status st = gm__redis_fail(call, r, "reading the participant registry");
    freeReplyObject(r);
    return st;
  }
  *roles = gm__arena_strdup(call->arena,
                            r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  return GM_OK;
}

/* Reads n pipelined replies; -1 on an I/O failure or any error reply (the
   rest are read all the same, so the connection stays in step). */
static int gm__auth_read(redisContext *c, size_t n, gm__arena *a, char **out) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) return -1;
    /* A value of the wrong type is that key's trouble (nobody owns it
       then); any other error (loading, busy) leaves everything unknown. */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0)
      rc = -1;
    out[i] = r->type == REDIS_REPLY_STRING ? gm__arena_strdup(a, r->str) : NULL;
    freeReplyObject(r);
  }
  return rc;
}

int gm__auth_owners(gm__redis *r, gm__arena *a, const gm__roles *known,
                    const char *const *keys, size_t n, char **owners,
                    char **roles) {
  /* Every key of the registry is in the {participants} slot: its node. */
  static const char slot[] = PUBKEY_KEY;
  redisContext *c = gm__redis_context_for(r, slot, sizeof slot - 1);
  if ((!c || c->err) && gm__redis_reconnect(r) != GM_OK) return -1;
  c = gm__redis_context_for(r, slot, sizeof slot - 1);
  for (size_t i = 0; i < n; i++)
    redisAppendCommand(c, "GET " PUBKEY_KEY "%s", keys[i]);
  if (gm__auth_read(c, n, a, owners) != 0) {
    /* The slot may have moved (MOVED): the map is read again for the next
       try. */
    if (gm__redis_is_cluster(r)) gm__redis_reconnect(r);
    return -1;
  }
  size_t held = 0;
  for (size_t i = 0; i < n; i++)
    if (owners[i]) {
      redisAppendCommand(c, "HGET " ID_KEY "%s roles", owners[i]);
      held++;
    }
  char **got = gm__arena_alloc(a, (held ? held : 1) * sizeof *got);
  if (gm__auth_read(c, held, a, got) != 0) {
    if (gm__redis_is_cluster(r)) gm__redis_reconnect(r);
    return -1;
  }
  for (size_t i = 0, k = 0; i < n; i++) {
    roles[i] = NULL;
    if (!owners[i]) continue;
    roles[i] = gm__roles_in_force(known, a, got[k] ? got[k] : "");
    k++;
  }
  return 0;
}

gm_status gm__participant_register(gm_call *call, const gm__roles *known,
                                   const Gm__Participant *p) {
  if (!gm__participant_id_valid(p->id))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "participant id '%s' must be " GM_PARTICIPANT_ID_RULE,
                         p->id ? p->id : "");
  if (p->public_key && *p->public_key && !gm__curve_key_valid(p->public_key))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "public_key must be a 40-character Z85 CURVE key "
                         "(make one with: gm keygen)");
  if (p->name && strlen(p->name) > GM__PARTICIPANT_NAME_MAX)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "name is %zu bytes; keep it to %d", strlen(p->name),
                         GM__PARTICIPANT_NAME_MAX);
  size_t len = 0;
  for (size_t i = 0; i < p->n_roles; i++) len += strlen(p->roles[i]) + 1;
  char *roles = gm__arena_alloc(call->arena, len + 1);
  for (size_t i = 0; i < p->n_roles; i++) {
    if (i) strcat(roles, ",");
    strcat(roles, p->roles[i]);
  }
  gm_status st = check_roles(call, known, roles);
  if (st != GM_OK) return st;
  if (strlen(roles) > GM__ROLES_TEXT_MAX)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "roles '%s' are %zu characters together; at most %d",
                         roles, strlen(roles), GM__ROLES_TEXT_MAX);
  const char *key = p->public_key ? p->public_key : "";
  char *k1 = gm__arena_sprintf(call->arena, ID_KEY "%s", p->id);
  char *k2 = gm__arena_sprintf(call->arena, PUBKEY_KEY "%s", *key ? key : "-");
  redisReply *r = gm__redis_callf(call->redis, "EVAL %s 2 %s %s %s %s %s %s %s",
                                  register_lua, k1, k2, p->id, key, roles,
                                  p->name ? p->name : "", PUBKEY_KEY);
  if (!r)
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis is not reachable; is redis-server running?");
  if (r->type == REDIS_REPLY_ERROR) {
    const char *sp = strchr(r->str, ' ');
    int code = sp ? gm__status_parse(r->str, (size_t)(sp - r->str)) : -1;
    if (code > 0)
      st = gm__call_fail(call, (gm_status)code, "%s", sp + 1);
    else
      st = gm__redis_fail(call, r, "registering the participant");
  }
  freeReplyObject(r);
  return st;
}

/* Separates the keys of [security] admin_keys: commas, and the spaces an
   operator may put around them (neither is a Z85 character). */
static int admin_keys_sep(char c) {
  return c == ',' || c == ' ' || c == '\t';
}

int gm__admin_keys_check(const char *list, char *err, size_t errlen) {
  const char *p = list ? list : "";
  for (int k = 1;; k++) {
    while (*p && admin_keys_sep(*p)) p++;
    if (!*p) return 0;
    size_t n = 0;
    while (p[n] && !admin_keys_sep(p[n])) n++;
    char key[41] = "";
    if (n == 40) {
      memcpy(key, p, 40);
      key[40] = '\0';
    }
    if (!gm__curve_key_valid(key)) {
      snprintf(err, errlen,
               "[security] admin_keys: key %d ('%.*s%s') is not a "
               "40-character Z85 public key (gm keygen prints it as 'public "
               "= ...'); list the admins' public keys separated by commas, "
               "and remove a key entirely to take its admin role away",
               k, n > 48 ? 48 : (int)n, p, n > 48 ? "..." : "");
      return -1;
    }
    p += n;
  }
}

/* Non-zero when z85 is one of the keys of list, whole (never part of a
   longer entry: a key an operator disabled by editing it stays out). */
static int admin_key_listed(const char *list, const char *z85) {
  const char *p = list ? list : "";
  size_t zn = strlen(z85);
  for (;;) {
    while (*p && admin_keys_sep(*p)) p++;
    if (!*p) return 0;
    size_t n = 0;
    while (p[n] && !admin_keys_sep(p[n])) n++;
    if (n == zn && memcmp(p, z85, n) == 0) return 1;
    p += n;
  }
}

/* ZMTP metadata: 1-byte name length, name, 4-byte big-endian value length,
 * value. */
static size_t put_property(uint8_t *out, const char *name, const char *value) {
  size_t n = strlen(name), v = strlen(value);
  out[0] = (uint8_t)n;
  memcpy(out + 1, name, n);
  out[1 + n] = (uint8_t)(v >> 24);
  out[2 + n] = (uint8_t)(v >> 16);
  out[3 + n] = (uint8_t)(v >> 8);
  out[4 + n] = (uint8_t)v;
  memcpy(out + 5 + n, value, v);
  return 5 + n + v;
}

static void zap_reply(void *rep, const char *reqid, size_t reqid_len,
                      const char *code, const char *text, const char *user,
                      const char *roles, const char *key) {
  uint8_t meta[512];
  size_t mlen = 0;
  if (roles && strlen(roles) < 400) mlen = put_property(meta, "X-Roles", roles);
  /* The key lets workers check it is still registered on every request.
     Always sent (empty for a bootstrap key), so a client's own metadata
     can never stand in for it. */
  if (code[0] == '2')
    mlen +=
        put_property(meta + mlen, "X-Key", key && strlen(key) == 40 ? key : "");
  zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
  zmq_send(rep, reqid, reqid_len, ZMQ_SNDMORE);
  zmq_send(rep, code, strlen(code), ZMQ_SNDMORE);
  zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
  zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
  zmq_send(rep, meta, mlen, 0);
}

int gm__zap_recv(void *sock, zmq_msg_t parts[GM__ZAP_PARTS]) {
  int n = 0, more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, 0) < 0) {
      zmq_msg_close(&m);
      for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
      return -1;
    }
    more = zmq_msg_more(&m);
    if (n < GM__ZAP_PARTS)
      parts[n++] = m;
    else
      zmq_msg_close(&m);
  }
  return n;
}

/* Anyone who reaches an endpoint can make a key pair per connection: one
   line each was 1000 lines in 3 s from one client.  A few a window, the
   next printed one counting the rest. */
static gm__log_limit refused_key_log = GM__LOG_LIMIT(10, 10000);

/* Handles one ZAP request: version, id, domain, address, identity, mechanism,
 * creds. */
static void zap_handle(gm__auth *a) {
  zmq_msg_t parts[GM__ZAP_PARTS];
  int n = gm__zap_recv(a->rep, parts);
  if (n < 0) return;
  const char *reqid = n > 1 ? zmq_msg_data(&parts[1]) : "";
  size_t reqid_len = n > 1 ? zmq_msg_size(&parts[1]) : 0;
  if (n < 7 || zmq_msg_size(&parts[5]) != 5 ||
      memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) != 0 ||
      zmq_msg_size(&parts[6]) != 32) {
    zap_reply(a->rep, reqid, reqid_len, "400", "CURVE required", "", NULL,
              NULL);
    goto done;
  }
  char z85[41];
  zmq_z85_encode(z85, zmq_msg_data(&parts[6]), 32);
  if (admin_key_listed(a->admin_keys, z85)) {
    /* A bootstrap key from the config: no registry record to re-check. */
    zap_reply(a->rep, reqid, reqid_len, "200", "OK", GM__BOOTSTRAP_ADMIN_ID,
              GM__ROLE_ADMIN, NULL);
    goto done;
  }
  redisReply *r = gm__redis_callf(a->redis, "GET " PUBKEY_KEY "%s", z85);
  if (!r) {
    zap_reply(a->rep, reqid, reqid_len, "300", "participant registry down", "",
              NULL, NULL);
    goto done;
  }
  if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
    /* The key's record is not a string: no participant owns the key (as
       the private feed's re-check reads it, gm__auth_read), and trying
       later changes nothing until an operator repairs it. */
    gm__log(GM_LOG_ERROR, "auth",
            "refused client key %s: its record in the participant registry "
            "(Redis key " PUBKEY_KEY
            "%s) is not a string, so no participant owns it (Redis "
            "answered %.100s); gmd never writes such a value: look at it "
            "(redis-cli TYPE), delete it and register the key again "
            "(gm admin register ID --key KEY)",
            z85, z85, r->str);
    zap_reply(a->rep, reqid, reqid_len, "400", "key record unusable", "", NULL,
              NULL);
    freeReplyObject(r);
    goto done;
  }
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
    /* An error reply (LOADING after a restart, NOPERM, MOVED...) says
       nothing about the key: "try later", never "not registered". */
    int noperm =
        r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0;
    if (noperm) /* Not transient: every CURVE client waits until it is fixed. */
      gm__log(GM_LOG_ERROR, "auth",
              "could not check client key %s: Redis refused gmd's user the "
              "read (%.200s); every CURVE client is told to try later "
              "until the Redis user in [redis] user (or the default user) "
              "may GET and HGET the " PUBKEY_KEY "* and " ID_KEY
              "* keys: docs/operations.md, [redis] user",
              z85, r->str);
    else
      gm__log(GM_LOG_WARN, "auth",
              "could not check client key %s: Redis answered %s; the client "
              "is told to try later",
              z85,
              r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected type");
    zap_reply(a->rep, reqid, reqid_len, "300", "participant registry down", "",
              NULL, NULL);
    freeReplyObject(r);
    goto done;
  }
  if (r->type != REDIS_REPLY_STRING) {
    gm__log_limited(&refused_key_log, GM_LOG_WARN, "auth",
                    "refused unregistered client key %s", z85);
    zap_reply(a->rep, reqid, reqid_len, "400", "key not registered", "", NULL,
              NULL);
    freeReplyObject(r);
    goto done;
  }
  char id[80];
  snprintf(id, sizeof id, "%s", r->str);
  freeReplyObject(r);
  if (strcmp(id, GM__BOOTSTRAP_ADMIN_ID) == 0) {
    /* Registered under the bootstrap keys' identity before register
       refused it: it would act and read as they do. */
    gm__log(GM_LOG_ERROR, "auth",
            "refused client key %s: it is registered as participant '%s', "
            "the identity of the bootstrap keys in [security] admin_keys "
            "(registered before gmd refused that id), so it would share "
            "their orders, private events and idempotency records; give its "
            "holder a new key pair (gm keygen) registered under another id "
            "(e.g. ops) with the roles it needs",
            z85, id);
    zap_reply(a->rep, reqid, reqid_len, "400",
              "participant id reserved for the bootstrap keys", "", NULL, NULL);
    goto done;
  }
  r = gm__redis_callf(a->redis, "HGET " ID_KEY "%s roles", id);
  /* Roles no loaded market declares stay registered and are left out: a
     participant holding only those is admitted with none, never locked
     out.  Never admit without X-Roles: a missing one must not leave room
     for a client-supplied property of that name. */
  const char *roles = gm__roles_in_force(
      a->roles, a->arena, r && r->type == REDIS_REPLY_STRING ? r->str : "");
  if (strlen(roles) > GM__ROLES_TEXT_MAX)
    zap_reply(a->rep, reqid, reqid_len, "400", "participant roles unusable", "",
              NULL, NULL);
  else
    zap_reply(a->rep, reqid, reqid_len, "200", "OK", id, roles, z85);
  if (r) freeReplyObject(r);
  gm__arena_reset(a->arena);
done:
  for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
}

static void *zap_run(void *arg) {
  gm__auth *a = arg;
  for (;;) {
    zmq_pollitem_t item = {a->rep, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, -1);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      break; /* ETERM: the context is shutting down */
    }
    zap_handle(a);
  }
  int linger = 0;
  zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(a->rep);
  a->rep = NULL;
  return NULL;
}

gm__auth *gm__auth_start(void *zmq_ctx, const gm__redis_addr *addr,
                         const char *admin_keys, const gm__roles *roles,
                         char *err, size_t errlen) {
  if (gm__admin_keys_check(admin_keys, err, errlen) != 0) return NULL;
  gm__auth *a = calloc(1, sizeof *a);
  if (!a) abort();
  a->ctx = zmq_ctx;
  a->roles = roles;
  a->arena = gm__arena_new();
  a->admin_keys = strdup(admin_keys ? admin_keys : "");
  a->redis = gm__redis_connect(addr, err, errlen);
  if (!a->redis) goto fail;
  a->rep = zmq_socket(zmq_ctx, ZMQ_REP);
  if (!a->rep || zmq_bind(a->rep, "inproc://zeromq.zap.01") != 0) {
    snprintf(err, errlen, "cannot bind the ZAP handler: %s",
             zmq_strerror(zmq_errno()));
    goto fail;
  }
  if (pthread_create(&a->thread, NULL, zap_run, a) != 0) {
    snprintf(err, errlen, "cannot start the ZAP thread");
    goto fail;
  }
  pthread_setname_np(a->thread, "gmd-zap");
  return a;
fail:
  if (a->rep) zmq_close(a->rep);
  gm__redis_destroy(&a->redis);
  gm__arena_destroy(&a->arena);
  free(a->admin_keys);
  free(a);
  return NULL;
}

void gm__auth_stop(gm__auth **ap) {
  if (!ap || !*ap) return;
  gm__auth *a = *ap;
  pthread_join(a->thread, NULL);
  gm__redis_destroy(&a->redis);
  gm__arena_destroy(&a->arena);
  free(a->admin_keys);
  free(a);
  *ap = NULL;
}
