/* The host side of gm_host_api: what plugins reach through the table. */
#ifndef GM_CORE_HOST_H
#define GM_CORE_HOST_H

#include "config.h"
#include "greenmarket/plugin.h"

struct gm__redis;
struct gm__ledger;
struct gm__timers;
struct gm__deadlines;
struct gm__interest;

typedef struct gm__host {
  const gm__config *config;        /* the broker's configuration */
  struct gm__redis *redis;         /* registration connection, for init only */
  struct gm__ledger *ledger;       /* migration connection, for init only */
  struct gm__timers *timers;       /* where timer_add registers */
  struct gm__deadlines *deadlines; /* where deadline_register registers */
  const char *broker_name;         /* in every published event */
  /* The feeds' subscriptions (the publisher's): an event no subscriber
     would receive is dropped before it is packed. */
  const struct gm__interest *interest;
  /* Non-zero when a market of that name is loaded already (refused before
     init, so a duplicate never touches the loaded one's scripts). */
  int (*market_loaded)(const struct gm__host *h, const char *name);
  void *owner; /* for market_loaded: the broker */
} gm__host;

/* The table handed to every plugin's init. */
extern const gm_host_api gm__host_api;

/* Queues one event for the feed through call->pub (also used by core):
   to everyone, or privately to participant or role `who`. */
gm_status gm__publish(gm_call *call, const char *market, gm_audience audience,
                      const char *who, const char *event,
                      const ProtobufCMessage *msg);
/* Zero when no subscriber would receive that event now, non-zero when one
   may (or when unsure: no feed, a bad argument): gm_host_api.publish_wanted. */
int gm__publish_wanted(gm_call *call, const char *market, gm_audience audience,
                       const char *who, const char *event);

#endif
