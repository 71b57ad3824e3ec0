/*
 * A market's settle callback, fed any outbox entry (a corrupted stream or
 * a replayed dead letter can hold anything), inside a real SQLite
 * transaction as the settler runs it, rolled back after each input.  It
 * must never crash; a refusal must leave the transaction usable.
 * Input: kind, then name/value pairs, separated by NUL bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  gm_market *m = fuzz_market(1);
  if (!m->settle || len > 8192) return 0;
  char *text = malloc(len + 1);
  memcpy(text, data, len);
  text[len] = '\0';
  const char *parts[129];
  size_t n = 0;
  for (char *p = text; p <= text + len && n < 129; p += strlen(p) + 1)
    parts[n++] = p;
  const char *names[64], *values[64];
  size_t nf = 0;
  for (size_t i = 1; i + 1 < n && nf < 64; i += 2, nf++) {
    names[nf] = parts[i];
    values[nf] = parts[i + 1];
  }
  char stream[128];
  snprintf(stream, sizeof stream, "gm:{%s:FUZZ-1}:outbox", m->plugin->name);
  gm_outbox_entry e = {.stream = stream,
                       .id = "1796176800000-0",
                       .kind = parts[0],
                       .nfields = nf,
                       .names = names,
                       .values = values};
  sqlite3 *db = gm__ledger_db(m->ledger);
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    abort();
  static gm__arena *arena;
  if (!arena) arena = gm__arena_new();
  gm_ledger tx = {
      .ledger = m->ledger, .market = m->plugin->name, .arena = arena};
  m->settle(m, &tx, &e);
  /* Whatever the callback did or refused, the transaction ends cleanly. */
  if (!sqlite3_get_autocommit(db) &&
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
    abort();
  gm__arena_reset(arena);
  free(text);
  return 0;
}
