/*
 * UTF-8 as strict decoders want it (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF.  Every string the broker or a plugin
 * puts in a reply or an event must pass, or clients in other languages
 * cannot decode the whole message.
 */
#ifndef GM_CORE_UTF8_H
#define GM_CORE_UTF8_H

#include <stddef.h>

/* The length of the longest valid prefix of s[0..n): n when all is valid. */
size_t gm__utf8_valid_prefix(const char *s, size_t n);
/* Non-zero when s[0..n) is valid UTF-8. */
int gm__utf8_valid(const char *s, size_t n);
/*
 * Writes s[0..n) to out with every invalid sequence replaced by U+FFFD
 * (EF BF BD); returns the bytes written.  out must hold 3 * n bytes (each
 * bad byte may become three).
 */
size_t gm__utf8_repair(const char *s, size_t n, char *out);
/* The longest cut of s[0..n) at most max bytes long that splits no
   character (s valid). */
size_t gm__utf8_cut(const char *s, size_t n, size_t max);

#endif
