#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid sequence starting at s[0] (of n bytes), or 0. */
static size_t gm__utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c == 0xE0)
    len = 3, lo = 0xA0; /* no overlong 3-byte forms */
  else if (c == 0xED)
    len = 3, hi = 0x9F; /* no surrogates U+D800..U+DFFF */
  else if (c >= 0xE1 && c <= 0xEF)
    len = 3;
  else if (c == 0xF0)
    len = 4, lo = 0x90; /* no overlong 4-byte forms */
  else if (c == 0xF4)
    len = 4, hi = 0x8F; /* nothing above U+10FFFF */
  else if (c >= 0xF1 && c <= 0xF3)
    len = 4;
  else
    return 0; /* 0x80..0xC1, 0xF5..0xFF never start a character */
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

size_t gm__utf8_valid_prefix(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    /* ASCII runs are the common case: skip them eight bytes at a time. */
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    size_t len = gm__utf8_seq(p + i, n - i);
    if (!len) return i;
    i += len;
  }
  return n;
}

int gm__utf8_valid(const char *s, size_t n) {
  return gm__utf8_valid_prefix(s, n) == n;
}

size_t gm__utf8_repair(const char *s, size_t n, char *out) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    size_t len = gm__utf8_seq(p + i, n - i);
    if (len) {
      memcpy(out + o, p + i, len);
      o += len;
      i += len;
    } else { /* one U+FFFD per bad byte, as WHATWG decoders do roughly */
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  return o;
}

size_t gm__utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  size_t i = max;
  /* Back off continuation bytes to the start of the cut character. */
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
  return i;
}
