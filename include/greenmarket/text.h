/*
 * greenmarket: the rule for text a market stores and shows to others
 * (names, titles, reasons, references, descriptions), the same in every
 * market, and a safe way to echo text a request carried.
 *
 * Text is UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF) without the characters that make it show other than it reads:
 * C0 and C1 controls and DEL (a terminal escape sequence in a name would
 * act on the screen of whoever lists it), the line and paragraph
 * separators U+2028 and U+2029, and the bidirectional marks and controls
 * U+061C, U+200E, U+200F, U+202A-U+202E and U+2066-U+2069 (one supplier's
 * or bank's name could pass for another's: Unicode TR#36, section 2.3,
 * and CVE-2021-42574).  A text that allows several lines also takes line
 * feeds and tabs.  A text of spaces only (any Unicode White_Space, and the
 * zero-width characters) is refused where a value is required and where
 * one is given: it reads as nothing.
 *
 * Lengths stay with each caller: a field's limit is in bytes, in its own
 * message.  Header-only, so a plugin links nothing.
 */
#ifndef GREENMARKET_TEXT_H
#define GREENMARKET_TEXT_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of gm_text_check. */
enum {
  GM_TEXT_LINES = 1, /* line feeds and tabs are allowed */
};

/* The code point of the UTF-8 sequence at s (at most `left` bytes) and, in
 *n, its length; -1 (and *n = 1) when the bytes there are not UTF-8. */
static inline long gm_utf8_decode(const unsigned char *s, size_t left,
                                  size_t *n) {
  unsigned char c = left ? s[0] : 0;
  size_t len;
  long cp;
  *n = 1;
  if (!left) return -1;
  if (c < 0x80) return c;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return -1;
  if (left < len) return -1;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return -1;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return -1;
  *n = len;
  return cp;
}

/* Non-zero for a character text may not hold (above), line feeds and tabs
   included: the caller lets those through where lines are allowed. */
static inline int gm_text_control(long c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e ||
         c == 0x200f || c == 0x2028 || c == 0x2029 ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* Non-zero for a bidirectional mark or control (for the message). */
static inline int gm_text_bidi(long c) {
  return c == 0x061c || c == 0x200e || c == 0x200f ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* Non-zero for a character that shows as blank: Unicode's White_Space
   (PropList.txt) and the zero-width space, joiners, word joiner and BOM. */
static inline int gm_text_blank(long c) {
  return c == ' ' || c == '\t' || c == '\n' || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200d) || c == 0x202f || c == 0x205f ||
         c == 0x2060 || c == 0x3000 || c == 0xfeff;
}

/*
 * 0 when `s` (NUL-terminated; NULL reads as empty) keeps the rule; else -1
 * and, in why, what is wrong and how to fix it, written to follow the
 * field's name: "contains the control character U+001B at byte 2; write
 * plain text on one line".  Bytes are counted from 1.  An empty text keeps
 * the rule (whether a value is required is the caller's to say).
 */
static inline int gm_text_check(const char *s, unsigned flags, char *why,
                                size_t whylen) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t len = strlen((const char *)p), n;
  int blank = 1;
  for (size_t i = 0; i < len; i += n) {
    long c = gm_utf8_decode(p + i, len - i, &n);
    if (c < 0) {
      snprintf(why, whylen, "is not valid UTF-8 (at byte %zu); send UTF-8",
               i + 1);
      return -1;
    }
    if (gm_text_control(c) &&
        !((flags & GM_TEXT_LINES) && (c == '\n' || c == '\t'))) {
      snprintf(why, whylen, "contains the %s character U+%04lX at byte %zu; %s",
               gm_text_bidi(c) ? "bidi control" : "control", (unsigned long)c,
               i + 1,
               gm_text_bidi(c) ? "remove it: it changes how the text shows"
               : (flags & GM_TEXT_LINES)
                   ? "write plain text (line breaks and tabs are fine)"
                   : "write plain text on one line");
      return -1;
    }
    if (!gm_text_blank(c)) blank = 0;
  }
  if (len && blank) {
    snprintf(why, whylen, "is only spaces; write some text or leave it empty");
    return -1;
  }
  return 0;
}

/*
 * `s` made safe to echo in a message or print on a terminal: bytes that
 * are not UTF-8 and characters gm_text_control names (line feeds and tabs
 * too) become '?'.  A text of more than `max` bytes is cut, at a character
 * boundary, to at most max - 8 of them and followed by "... (N bytes)".
 * out must hold max + 24 bytes; returns out.
 */
static inline const char *gm_text_shown(const char *s, size_t max, char *out,
                                        size_t outlen) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t total = strlen((const char *)p), i = 0, o = 0, n;
  size_t keep = total > max ? (max > 8 ? max - 8 : 0) : total;
  if (!outlen) return out;
  while (i < total) {
    long c = gm_utf8_decode(p + i, total - i, &n);
    size_t w = c < 0 || gm_text_control(c) ? 1 : n;
    if (i + n > keep || o + w >= outlen) break;
    if (w == 1 && (c < 0 || gm_text_control(c)))
      out[o] = '?';
    else
      memcpy(out + o, p + i, n);
    o += w;
    i += n;
  }
  out[o] = '\0';
  if (i < total) {
    char tail[40];
    int k = snprintf(tail, sizeof tail, "... (%zu bytes)", total);
    size_t t = k > 0 ? (size_t)k : 0;
    if (t > outlen - o - 1) t = outlen - o - 1;
    memcpy(out + o, tail, t);
    out[o + t] = '\0';
  }
  return out;
}

#ifdef __cplusplus
}
#endif

#endif
