/*
 * Options, keys and names shared by the client and the feed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <zmq.h>

#include "internal.h"

static _Thread_local char gm__last_error[512];

void gm__client_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(gm__last_error, sizeof gm__last_error, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n < sizeof gm__last_error) return;
  /* Cut short (a long path or broker text): end on a whole UTF-8 character,
     never inside one, and say so. */
  static const char more[] = "...";
  size_t end = sizeof gm__last_error - sizeof more;
  while (end > 0 && ((unsigned char)gm__last_error[end] & 0xC0) == 0x80) end--;
  memcpy(gm__last_error + end, more, sizeof more);
}

const char *gm_client_last_error(void) {
  return gm__last_error;
}

const char *gm_client_version(void) {
  return GM_VERSION;
}

void gm_client_options_init_size(gm_client_options *o, size_t size) {
  if (!o) return;
  /* The caller's struct: never more than it is, never more than ours. */
  if (size > sizeof *o) size = sizeof *o;
  if (size < sizeof o->size) return;
  memset(o, 0, size);
  o->size = size;
}

/* The function programs built against an older header call (the header's
   macro of this name calls gm_client_options_init_size).  It cannot know
   their struct's size, so it fills the struct as the header before
   feed_handshake_ms had it, ending with private_feed: writing sizeof of
   today's struct went past theirs (8 bytes of their stack zeroed). */
void(gm_client_options_init)(gm_client_options *o) {
  gm_client_options_init_size(
      o, offsetof(gm_client_options, private_feed) + sizeof o->private_feed);
}

int64_t gm__client_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A Z85 CURVE key is 40 characters that decode to 32 bytes. */
static int gm__key_ok(const char *key) {
  uint8_t raw[32];
  return key && strlen(key) == 40 && zmq_z85_decode(raw, key) != NULL;
}

/* 0 when `pub` is the public key of `sec` (or libzmq cannot tell: built
   without CURVE); both valid Z85 keys. */
static int gm__pair_mismatch(const char *pub, const char *sec) {
  char derived[41];
  return zmq_curve_public(derived, sec) == 0 && strcmp(derived, pub) != 0;
}

static char *gm__dup(const char *s) {
  return s ? strdup(s) : NULL;
}

int gm__client_options_copy(gm_client_options *out,
                            const gm_client_options *in) {
  gm_client_options_init(out);
  if (in) {
    /* An older caller's struct is shorter: its missing fields stay zero. */
    size_t n = in->size < sizeof *out ? in->size : sizeof *out;
    if (n < sizeof(size_t)) {
      gm_client_options_init(out);
      gm__client_set_error(
          "gm_client_options.size is %zu: call gm_client_options_init() "
          "before setting fields",
          in->size);
      return -1;
    }
    memcpy(out, in, n);
    out->size = sizeof *out;
  }
  if (out->timeout_ms == 0) out->timeout_ms = GM_CLIENT_DEFAULT_TIMEOUT_MS;
  if (out->retries == 0) out->retries = GM_CLIENT_DEFAULT_RETRIES;
  if (out->retries < 0) out->retries = 0;
  if (out->max_reply == 0) out->max_reply = GM_CLIENT_DEFAULT_MAX_REPLY;
  if (out->feed_handshake_ms == 0)
    out->feed_handshake_ms = GM_CLIENT_DEFAULT_FEED_HANDSHAKE_MS;
  if (out->feed_handshake_ms < 100 || out->feed_handshake_ms > 600000) {
    gm__client_set_error(
        "gm_client_options.feed_handshake_ms is %d: give 0 (5000) or 100 to "
        "600000 ms",
        out->feed_handshake_ms);
    out->server_public_key = out->public_key = out->secret_key = NULL;
    out->dev_participant = out->private_feed = NULL;
    return -1;
  }

  /* The caller's strings: never stored in `out` until copied. */
  const char *server = out->server_public_key, *pub = out->public_key,
             *sec = out->secret_key, *dev = out->dev_participant,
             *priv = out->private_feed;
  out->server_public_key = out->public_key = out->secret_key = NULL;
  out->dev_participant = out->private_feed = NULL;
  if (server) {
    if (!gm__key_ok(server)) {
      gm__client_set_error(
          "the server public key is not a 40-character Z85 CURVE key: copy "
          "it from the broker's key file (public line)");
      return -1;
    }
    if (!gm__key_ok(pub) || !gm__key_ok(sec)) {
      gm__client_set_error(
          "a server key is set but this client has no valid CURVE key pair: "
          "make one with `gm keygen --out FILE`, have an admin register its "
          "public key, and pass --key-file FILE");
      return -1;
    }
    if (gm__pair_mismatch(pub, sec)) {
      /* The broker would fail every handshake without a word. */
      gm__client_set_error(
          "this client's public key %s is not the public key of its secret "
          "key: the two come from different key pairs; use the public and "
          "secret lines of one `gm keygen` file",
          pub);
      return -1;
    }
  }
  out->server_public_key = gm__dup(server);
  out->public_key = gm__dup(pub);
  out->secret_key = gm__dup(sec);
  out->dev_participant = gm__dup(dev);
  out->private_feed = gm__dup(priv);
  return 0;
}

void gm__client_options_free(gm_client_options *o) {
  free((char *)o->server_public_key);
  free((char *)o->public_key);
  if (o->secret_key) {
    /* Do not leave the secret lying in freed heap memory. */
    explicit_bzero((char *)o->secret_key, strlen(o->secret_key));
    free((char *)o->secret_key);
  }
  free((char *)o->dev_participant);
  free((char *)o->private_feed);
  gm_client_options_init(o);
}

int gm__client_apply_curve(void *sock, const gm_client_options *o) {
  if (!o->server_public_key) return 0;
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->server_public_key, 40) ||
      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, o->public_key, 40) ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->secret_key, 40))
    return -1;
  return 0;
}

gm_status gm_key_file_read(const char *path, char public_key[41],
                           char secret_key[41]) {
  char pub[41] = "", sec[41] = "", line[256];
  if (public_key) public_key[0] = '\0';
  if (secret_key) secret_key[0] = '\0';
  if (!path || !*path || !public_key) {
    gm__client_set_error("gm_key_file_read: no file or no place for the key");
    return GM_INVALID_ARGUMENT;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    gm__client_set_error(
        "cannot read key file %s: %s; make a key pair with `gm keygen --out "
        "FILE` (the broker's public key comes from its operator)",
        path, strerror(errno));
    return GM_NOT_FOUND;
  }
  /* Unbuffered: no copy of the secret left in a freed stdio buffer. */
  setvbuf(f, NULL, _IONBF, 0);
  gm_status st = GM_OK;
  int tail = 0; /* the rest of a line longer than `line`: skipped */
  while (fgets(line, sizeof line, f)) {
    int was_tail = tail;
    tail = !strchr(line, '\n') && !feof(f);
    if (was_tail) continue;
    char *eq = strchr(line, '='), *k = line, *v;
    if (!eq || line[0] == '#') continue;
    *eq = '\0';
    v = eq + 1;
    while (isspace((unsigned char)*k)) k++;
    for (char *e = eq; e > k && isspace((unsigned char)e[-1]);) *--e = '\0';
    while (isspace((unsigned char)*v) || *v == '"') v++;
    v[strcspn(v, "\" \t\r\n")] = '\0';
    /* gm keygen's "public"/"secret" and ZeroMQ's zcert names. */
    char *dst = NULL;
    if (!strcmp(k, "public") || !strcmp(k, "public-key") ||
        !strcmp(k, "public_key"))
      dst = pub;
    else if (!strcmp(k, "secret") || !strcmp(k, "secret-key") ||
             !strcmp(k, "secret_key"))
      dst = sec;
    if (!dst) continue;
    if (!gm__key_ok(v)) {
      gm__client_set_error(
          "key file %s: its %s key is not a 40-character Z85 CURVE key; "
          "copy the line again or make a new pair with `gm keygen --out FILE`",
          path, dst == pub ? "public" : "secret");
      st = GM_INVALID_ARGUMENT;
      break;
    }
    memcpy(dst, v, 41);
  }
  fclose(f);
  explicit_bzero(line, sizeof line);
  if (st == GM_OK && !pub[0]) {
    gm__client_set_error(
        "key file %s has no \"public = <40 Z85 characters>\" line: is it "
        "a key file from `gm keygen --out FILE`?",
        path);
    st = GM_INVALID_ARGUMENT;
  }
  if (st == GM_OK && secret_key && !sec[0]) {
    gm__client_set_error(
        "key file %s has a public key but no \"secret = ...\" line: it is "
        "someone's public key (the broker's?), not this client's key pair; "
        "make one with `gm keygen --out FILE`",
        path);
    st = GM_INVALID_ARGUMENT;
  }
  if (st == GM_OK && pub[0] && sec[0] && gm__pair_mismatch(pub, sec)) {
    gm__client_set_error(
        "key file %s: its public key is not the public key of its secret "
        "key (the two lines come from different key pairs); make a new pair "
        "with `gm keygen --out FILE`, or copy both lines of one file",
        path);
    st = GM_INVALID_ARGUMENT;
  }
  if (st == GM_OK) {
    memcpy(public_key, pub, 41);
    if (secret_key) memcpy(secret_key, sec, 41);
  }
  explicit_bzero(sec, sizeof sec);
  return st;
}

gm_status gm_client_new_idempotency_key(char out[33]) {
  static const char hex[] = "0123456789abcdef";
  if (!out) return GM_INVALID_ARGUMENT;
  uint8_t raw[16];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      out[0] = '\0';
      return GM_INTERNAL;
    }
    got += (size_t)n;
  }
  for (size_t i = 0; i < sizeof raw; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 0xf];
  }
  out[32] = '\0';
  return GM_OK;
}

gm_status gm_keypair(char public_key[41], char secret_key[41]) {
  if (!public_key || !secret_key) {
    if (public_key) public_key[0] = '\0';
    if (secret_key) secret_key[0] = '\0';
    return GM_INVALID_ARGUMENT;
  }
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    public_key[0] = secret_key[0] = '\0';
    /* Only fails when libzmq was built without CURVE (libsodium). */
    return GM_UNIMPLEMENTED;
  }
  return GM_OK;
}

const char *gm_status_name(gm_status s) {
  switch (s) {
    case GM_OK:
      return "OK";
    case GM_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case GM_NOT_FOUND:
      return "NOT_FOUND";
    case GM_ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case GM_PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case GM_RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case GM_FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case GM_UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case GM_INTERNAL:
      return "INTERNAL";
    case GM_UNAVAILABLE:
      return "UNAVAILABLE";
  }
  return "UNKNOWN_STATUS";
}
