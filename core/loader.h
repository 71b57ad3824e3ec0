/* The plugin loader: dlopen, ABI checks, mandatory callbacks, init. */
#ifndef GM_CORE_LOADER_H
#define GM_CORE_LOADER_H

#include "greenmarket/plugin.h"

#include "market.h"

struct gm__host;

/*
 * Loads the plugin at `path`: checks the magic function, the ABI version, the
 * description and every mandatory callback, then calls init.  On any refusal
 * returns NULL, dlcloses, and err says which file and why.
 */
gm_market *gm__plugin_load(const char *path, struct gm__host *host, char *err,
                           size_t errlen);
/* Calls shutdown, forgets the plugin's scripts, dlcloses; nulls *m. */
void gm__plugin_unload(gm_market **m);
/*
 * After every plugin has loaded: refuses (logs file, method and role, and
 * unloads) each market with a method naming a role that neither the broker
 * (admin) nor a market still loaded declares.  A refused market's roles go
 * with it, so markets naming them are refused in turn: what stays does not
 * depend on the order the plugins loaded in.  Compacts markets[0..*n).
 */
void gm__plugins_check_roles(gm_market **markets, size_t *n);
/* The method named `name`, or NULL. */
const gm_method *gm__plugin_method(const gm_market *m, const char *name);

#endif
