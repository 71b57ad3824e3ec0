/*
 * greenmarket: the rule for a participant id, the same in the core (which
 * registers participants and authenticates them) and in every market that
 * takes an id from a request (a deposit to, a bank's staff member, ...):
 * 1-64 characters, each an ASCII letter or digit, '-', '_' or '.'.  An id
 * the core would refuse can never act, so a market refuses it too rather
 * than keep state for it.  Header-only, so a plugin links nothing.
 */
#ifndef GREENMARKET_PARTICIPANT_H
#define GREENMARKET_PARTICIPANT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest participant id, in bytes. */
#define GM_PARTICIPANT_ID_MAX 64

/* What the rule says, for error messages. */
#define GM_PARTICIPANT_ID_RULE \
  "1-64 characters of ASCII letters, digits, '-', '_' or '.'"

/* Non-zero when `id` (NUL-terminated; NULL is refused) keeps the rule. */
static inline int gm_participant_id_valid(const char *id) {
  size_t n = 0;
  if (!id) return 0;
  for (const char *p = id; *p; p++, n++) {
    char c = *p;
    if (n >= GM_PARTICIPANT_ID_MAX) return 0;
    if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
        !(c >= '0' && c <= '9') && c != '-' && c != '_' && c != '.')
      return 0;
  }
  return n > 0;
}

#ifdef __cplusplus
}
#endif

#endif
