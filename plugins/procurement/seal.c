/*
 * Sealed bids: the broker's bid key, sealing a bid at submission and
 * opening it at the deadline, the bid hash, the tie-break draw (libsodium).
 *
 * The key file ([market.procurement] key_file, default procurement.key
 * next to gmd.conf) holds a 32-byte master key in hex.  Each tender gets its
 * own key, BLAKE2b keyed with the master key over the tender id, and each
 * bid is sealed with XChaCha20-Poly1305 under it, a fresh random nonce, and
 * "<tender>\n<supplier>" as associated data, so a sealed bid cannot be
 * passed off as another supplier's or another tender's.  Redis and the
 * ledger hold only the sealed form until the opening: whoever reads them
 * without the key file sees who bid and when, never a price.  Whoever holds
 * the key file and Redis can open every sealed bid at any time: keep the
 * file readable by gmd only (it is created 0600) and the same on every
 * broker that shares the Redis.  procurement.md says this for operators.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "procurement.h"

static unsigned char pr__master[32]; /* written in init only */
static char pr__kid[17];             /* hex: names the key in bid records */
static int pr__ready;

static const char pr__key_context[] = "greenmarket procurement bid key";
static const char pr__kid_context[] = "greenmarket procurement key id";

static int pr__hex_key(const char *text, size_t len, unsigned char *key) {
  size_t got = 0;
  const char *end = NULL;
  if (sodium_hex2bin(key, 32, text, len, " \t\r\n", &got, &end) != 0 ||
      got != 32)
    return -1;
  for (; end && end < text + len; end++)
    if (*end != '\n' && *end != '\r' && *end != ' ' && *end != '\t') return -1;
  return 0;
}

gm_status pr__seal_init(gm_market *m) {
  char path[4096] = "";
  int has_path = host->size >= offsetof(gm_host_api, config_path) +
                                   sizeof host->config_path &&
                 host->config_path;
  if (sodium_init() < 0) {
    host->log(m, GM_LOG_ERROR, "libsodium failed to initialise");
    return GM_INTERNAL;
  }
  if (has_path) {
    if (host->config_path(m, "key_file", "procurement.key", path,
                          sizeof path) != 0)
      path[0] = '\0';
  } else {
    const char *p = host->config(m, "key_file", NULL);
    if (p && p[0] == '/') snprintf(path, sizeof path, "%s", p);
  }
  if (!path[0]) {
    host->log(m, GM_LOG_ERROR,
              "no bid key: set [market.procurement] key_file to an absolute "
              "path (this gmd cannot resolve relative ones); bids are "
              "refused until then");
    return GM_OK;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    unsigned char key[32];
    char hex[65];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    int w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w >= 0) {
      hex[64] = '\n';
      int ok = write(w, hex, 65) == 65 && fsync(w) == 0;
      close(w);
      sodium_memzero(hex, sizeof hex);
      if (!ok) {
        unlink(path);
        host->log(m, GM_LOG_ERROR, "cannot write the bid key file %s: %s", path,
                  strerror(errno));
        return GM_UNAVAILABLE;
      }
      host->log(m, GM_LOG_WARN,
                "created the bid key file %s: every gmd sharing this Redis "
                "needs the same file, and sealed bids cannot be opened "
                "without it; back it up with the ledger",
                path);
    } else if (errno != EEXIST) {
      host->log(m, GM_LOG_ERROR, "cannot create the bid key file %s: %s", path,
                strerror(errno));
      return GM_UNAVAILABLE;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC); /* ours, or a racing broker's */
  }
  if (fd < 0) {
    host->log(m, GM_LOG_ERROR, "cannot read the bid key file %s: %s", path,
              strerror(errno));
    return GM_UNAVAILABLE;
  }
  char text[256];
  ssize_t n = read(fd, text, sizeof text);
  close(fd);
  if (n <= 0 || pr__hex_key(text, (size_t)n, pr__master) != 0) {
    sodium_memzero(text, sizeof text);
    host->log(m, GM_LOG_ERROR,
              "the bid key file %s is not 64 hex digits (a 32-byte key); "
              "restore it from a backup, or remove it to start with a new "
              "key only if no tender holds sealed bids",
              path);
    return GM_INVALID_ARGUMENT;
  }
  sodium_memzero(text, sizeof text);
  unsigned char kid[8];
  crypto_generichash(kid, sizeof kid, (const unsigned char *)pr__kid_context,
                     sizeof pr__kid_context - 1, pr__master, sizeof pr__master);
  sodium_bin2hex(pr__kid, sizeof pr__kid, kid, sizeof kid);
  pr__ready = 1;
  host->log(m, GM_LOG_INFO, "bid key %s from %s", pr__kid, path);
  return GM_OK;
}

void pr__seal_shutdown(void) {
  sodium_memzero(pr__master, sizeof pr__master);
  pr__ready = 0;
}

int pr__seal_ready(void) {
  return pr__ready;
}

const char *pr__key_id(void) {
  return pr__kid;
}

static void pr__tender_key(const char *tender, unsigned char key[32]) {
  crypto_generichash_state s;
  crypto_generichash_init(&s, pr__master, sizeof pr__master, 32);
  crypto_generichash_update(&s, (const unsigned char *)pr__key_context,
                            sizeof pr__key_context);
  crypto_generichash_update(&s, (const unsigned char *)tender, strlen(tender));
  crypto_generichash_final(&s, key, 32);
}

static char *pr__ad(gm_call *call, const char *tender, const char *supplier) {
  return host->sprintf(call, "%s\n%s", tender, supplier);
}

char *pr__seal(gm_call *call, const char *tender, const char *supplier,
               const char *text, size_t len) {
  unsigned char key[32];
  size_t n = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + len +
             crypto_aead_xchacha20poly1305_ietf_ABYTES;
  unsigned char *blob = host->alloc(call, n);
  unsigned long long clen;
  const char *ad = pr__ad(call, tender, supplier);
  pr__tender_key(tender, key);
  randombytes_buf(blob, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
      (const unsigned char *)text, len, (const unsigned char *)ad, strlen(ad),
      NULL, blob, key);
  sodium_memzero(key, sizeof key);
  return pr__b64(call, blob,
                 crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen);
}

char *pr__unseal(gm_call *call, const char *tender, const char *supplier,
                 const char *sealed, size_t *len, char *err, size_t errlen) {
  unsigned char key[32];
  size_t n;
  unsigned long long plen;
  uint8_t *blob = pr__unb64(call, sealed, &n);
  if (!blob || n < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                       crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    snprintf(err, errlen,
             "the sealed bid of %s is not base64 of a sealed "
             "text",
             supplier);
    return NULL;
  }
  const char *ad = pr__ad(call, tender, supplier);
  char *text = host->alloc(call, n + 1);
  pr__tender_key(tender, key);
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      (unsigned char *)text, &plen, NULL,
      blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
      n - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
      (const unsigned char *)ad, strlen(ad), blob, key);
  sodium_memzero(key, sizeof key);
  if (rc != 0) {
    snprintf(err, errlen,
             "the sealed bid of %s does not open with this broker's bid key "
             "%s (it was sealed under another key file, or altered)",
             supplier, pr__kid);
    return NULL;
  }
  /* A canonical text holds no NUL: what follows it is padding. */
  text[plen] = '\0';
  *len = strlen(text);
  return text;
}

void pr__sha256_hex(const char *data, size_t len, char out[65]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)data, len);
  sodium_bin2hex(out, 65, h, sizeof h);
}

void pr__random_hex(char *out, size_t nbytes) {
  unsigned char b[64];
  if (nbytes > sizeof b) nbytes = sizeof b;
  randombytes_buf(b, nbytes);
  sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
}

void pr__draw(const char *seed_hex, const char *hash_hex, char out[17]) {
  unsigned char seed[32], d[8];
  size_t got = 0;
  if (sodium_hex2bin(seed, sizeof seed, seed_hex, strlen(seed_hex), NULL, &got,
                     NULL) != 0 ||
      got != sizeof seed)
    memset(seed, 0, sizeof seed);
  crypto_generichash(d, sizeof d, (const unsigned char *)hash_hex,
                     strlen(hash_hex), seed, sizeof seed);
  sodium_bin2hex(out, 17, d, sizeof d);
}

char *pr__b64(gm_call *call, const uint8_t *data, size_t len) {
  size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  char *out = host->alloc(call, n);
  return sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
}

uint8_t *pr__unb64(gm_call *call, const char *text, size_t *len) {
  size_t n = strlen(text), got = 0;
  uint8_t *out = host->alloc(call, n / 4 * 3 + 3);
  if (sodium_base642bin(out, n / 4 * 3 + 3, text, n, NULL, &got, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return NULL;
  *len = got;
  return out;
}
