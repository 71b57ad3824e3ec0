/*
 * The settle lease: with many brokers on one Redis, one at a time runs the
 * settler, and every broker sends its ledger reads to that one
 * (ledger_route.c).  The lease is the key gm:{settle}:lease, value
 * "<broker name>\n<ledger endpoint>", set with PX lease_ms when absent and
 * renewed only by its holder, by one script.  A thread per broker renews
 * (holder) or tries to take it (others), every lease_ms / 3.
 *
 * Only a broker whose ledger file is the book of record may take it: the
 * holder's settler writes gm:{settle}:book = "<id> <gen> <batches>" of its
 * file's gm_book after each COMMIT and before its XACK (only while the
 * lease names it; gen is new at each taking of the lease), and the take
 * script refuses a broker whose file has another id or gen (another file,
 * or one another holder has gone on from) or fewer batches (a restore from
 * an older backup: it lacks entries already acknowledged).  A file whose
 * tenure went on from the marked one (gm_book_from) is the book too: its
 * holder was killed between that tenure's first COMMIT and its mark.
 * Both keys share one hash tag, so the script is cluster-safe.
 *
 * Fencing by time: the holder may settle only until 2/3 of lease_ms after
 * it sent its last successful SET or renewal; Redis keeps the key at least
 * lease_ms after that.  A holder cut from Redis stops settling, with its
 * batch in hand rolled back, a third of the lease before another broker can
 * take it.  This assumes the two clocks (the broker's monotonic clock and
 * Redis's) run at about the same rate, not that they agree.
 */
#ifndef GM_CORE_LEASE_H
#define GM_CORE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

#define GM__LEASE_KEY "gm:{settle}:lease"
#define GM__BOOK_KEY "gm:{settle}:book"

typedef struct gm__lease gm__lease;

typedef struct gm__lease_config {
  gm__redis_addr redis;
  const char *name;        /* this broker's name */
  const char *endpoint;    /* its ledger endpoint, as other brokers connect */
  const char *ledger_path; /* its book (gm_book), checked before taking */
  int64_t lease_ms;        /* key lifetime; renewed every third */
  int take; /* 0: never holds it (settle = never), only watches */
} gm__lease_config;

/*
 * Starts the thread after one synchronous attempt, so a broker alone on its
 * Redis holds the lease before it serves.  NULL and err when Redis cannot
 * be reached.
 */
gm__lease *gm__lease_start(const gm__lease_config *cfg, char *err,
                           size_t errlen);
/* Stops the thread and, when held, deletes the key (only if still ours), so
   another broker takes over at once; nulls *l. */
void gm__lease_stop(gm__lease **l);

/*
 * The settler's gate (any thread): 0 unless this broker holds the lease and
 * renewed it less than 2/3 of lease_ms ago; else the number of the tenure,
 * which changes at each new taking (the settler then claims every pending
 * entry at once: the lease proves the previous holder gone).
 */
uint64_t gm__lease_gate(void *lease);

/*
 * The settler's committed hook (settle.h; settler thread only): records the
 * book's mark in Redis while the lease still names this broker; -1 when it
 * does not or Redis failed (the settler then does not acknowledge).
 */
int gm__lease_committed(void *lease, const char *book, long long batches);

/*
 * Who holds it, as last seen (any thread): copies the holder's ledger
 * endpoint into endpoint ("" when nobody holds it) and sets *self when it is
 * this broker.  Returns a number that changes whenever the holder does.
 */
uint64_t gm__lease_holder(gm__lease *l, char *endpoint, size_t n, int *self);

/* Non-zero when this broker's own file may answer while nobody holds the
   lease: it may settle (settle = auto) and was not found behind the book. */
int gm__lease_book_here(gm__lease *l);

/* Non-zero while nothing settles for want of this broker's file: it may
   settle, nobody holds the lease, and its file was found behind the book's
   mark (logged once, "not the book of record"). */
int gm__lease_refused(gm__lease *l);

#endif
