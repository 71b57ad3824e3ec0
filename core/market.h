/* One loaded market as the host sees it: what gm_market points to. */
#ifndef GM_CORE_MARKET_H
#define GM_CORE_MARKET_H

#include "greenmarket/plugin.h"
#include "stats.h"

struct gm__host;

struct gm_market {
  char *name;              /* plugin->name, owned copy */
  char *path;              /* the shared object's path */
  void *dl;                /* dlopen handle */
  const gm_plugin *plugin; /* the plugin's description (in the .so) */
  gm_settle_fn settle;     /* from settle_register, or NULL */
  struct gm__host *host;   /* the host services behind gm_host_api */
  gm__stats stats;         /* every request to this market */
  gm__stats *method_stats; /* one per plugin->methods[i]: those reaching it */
  /* The roles it declares, owned copies (for a plugin built before
     gm_plugin.roles: the roles its methods name). */
  gm_role *roles;
  size_t n_roles;
  /* Set once init returned GM_OK: from then on the registrations that are
     for init only (scripts, migrations, settle, timers, deadline kinds) are
     refused with the reason, instead of racing the threads that use them. */
  int ready;
};

#endif
