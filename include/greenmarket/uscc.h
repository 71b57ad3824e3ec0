/*
 * greenmarket: the unified social credit code (统一社会信用代码) of a
 * Chinese legal person or other organisation, checked as GB 32100-2015
 * defines it.  Header-only, so any market plugin can include it without
 * linking anything; no market owns it.
 *
 * The code is 18 characters from a 31-character alphabet (the digits and
 * the capital letters without I, O, S, V and Z):
 *
 *   1      registration authority (登记管理部门代码)
 *   2      entity type (机构类别代码)
 *   3-8    administrative division, six digits (GB/T 2260)
 *   9-17   organisation code (GB 11714)
 *   18     check character
 *
 * The check character makes sum(value(c_i) * 3^(i-1) mod 31) + value(c_18)
 * a multiple of 31 over i = 1..17: the weights are 1, 3, 9, 27, 19, 26, 16,
 * 17, 20, 29, 25, 13, 8, 24, 10, 30, 28.  This header checks the length,
 * the alphabet, that positions 3-8 are digits, and the check character; it
 * does not look the division or the authority up in any register.
 */
#ifndef GREENMARKET_USCC_H
#define GREENMARKET_USCC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GM_USCC_LEN 18

/* The value of one character of the alphabet (0-30), or -1. */
static inline int gm_uscc_value(char c) {
  static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  for (int i = 0; i < 31; i++)
    if (alphabet[i] == c) return i;
  return -1;
}

/* The check character the first 17 characters call for, or 0 when one of
   them is not in the alphabet. */
static inline char gm_uscc_check_char(const char *first17) {
  static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  static const int weight[17] = {1,  3,  9,  27, 19, 26, 16, 17, 20,
                                 29, 25, 13, 8,  24, 10, 30, 28};
  int sum = 0;
  for (int i = 0; i < 17; i++) {
    int v = gm_uscc_value(first17[i]);
    if (v < 0) return 0;
    sum += v * weight[i];
  }
  return alphabet[(31 - sum % 31) % 31];
}

/* Writes the reason into why[whysize] when the caller asked for one. */
static inline void gm_uscc__why(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void gm_uscc__why(char *why, size_t whysize, const char *fmt,
                                ...) {
  if (why == NULL || whysize == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whysize, fmt, ap);
  va_end(ap);
}

/*
 * Checks `code` (`len` bytes, no NUL needed).  Returns 0 when it is a
 * well-formed code with the right check character.  Otherwise returns -1
 * and, when `why` is not NULL, writes into it (at most `whysize` bytes,
 * NUL-terminated) what is wrong and where, counting positions from 1 as
 * the standard does, e.g. "character 18 is 'A' but the first 17 characters
 * call for check character 'B'; copy the code again from the business
 * licence".  The text never quotes a byte outside the alphabet, so it is
 * always valid UTF-8.
 */
static inline int gm_uscc_check(const char *code, size_t len, char *why,
                                size_t whysize) {
  if (len != GM_USCC_LEN) {
    gm_uscc__why(why, whysize,
                 "a unified social credit code has 18 characters, this one has "
                 "%zu; copy all 18 from the business licence",
                 len);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    char c = code[i];
    if (c >= 'a' && c <= 'z' && gm_uscc_value((char)(c - 'a' + 'A')) >= 0) {
      gm_uscc__why(why, whysize,
                   "character %zu is the lower-case letter '%c'; a unified "
                   "social credit code uses capital letters",
                   i + 1, c);
      return -1;
    }
    if (gm_uscc_value(c) < 0) {
      if (c == 'I' || c == 'O' || c == 'S' || c == 'V' || c == 'Z')
        gm_uscc__why(
            why, whysize,
            "character %zu is '%c', a letter the code never uses (I, O, "
            "S, V and Z are left out); check it against the business "
            "licence",
            i + 1, c);
      else
        gm_uscc__why(
            why, whysize,
            "character %zu is not a digit or a capital letter; a unified "
            "social credit code has only those",
            i + 1);
      return -1;
    }
    if (i >= 2 && i <= 7 && (c < '0' || c > '9')) {
      gm_uscc__why(why, whysize,
                   "character %zu is '%c', but characters 3-8 are the "
                   "administrative division code, six digits",
                   i + 1, c);
      return -1;
    }
  }
  char want = gm_uscc_check_char(code);
  if (code[17] != want) {
    gm_uscc__why(why, whysize,
                 "character 18 is '%c' but the first 17 characters call for "
                 "check character '%c'; copy the code again from the business "
                 "licence",
                 code[17], want);
    return -1;
  }
  if (why != NULL && whysize > 0) why[0] = '\0';
  return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_USCC_H */
