/*
 * The scripts as gmd registers them: the declarations C and the scripts
 * share (decl.c), then lib.lua, then the script.  The declarations are one
 * line, so a Lua error's line number is the line in lib.lua, or lib.lua's
 * length plus the line in the script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

/* Sources handed to script_register, freed at shutdown. */
static char *carbon__sources[8];

gm_status carbon__scripts_register(gm_market *m) {
  static const struct {
    const char *name;
    const char *lua;
  } scripts[] = {{"place", gm_lua_place}, {"amend", gm_lua_amend},
                 {"block", gm_lua_block}, {"admin", gm_lua_admin},
                 {"read", gm_lua_read},   {"sweep", gm_lua_sweep}};
  char *decl = carbon__lua_declarations();
  gm_status st = GM_OK;
  for (size_t i = 0; i < sizeof scripts / sizeof scripts[0] && st == GM_OK;
       i++) {
    size_t n = strlen(decl) + strlen(gm_lua_lib) + strlen(scripts[i].lua) + 2;
    char *src = malloc(n);
    if (!src) abort();
    snprintf(src, n, "%s%s\n%s", decl, gm_lua_lib, scripts[i].lua);
    carbon__sources[i] = src;
    st = host->script_register(m, scripts[i].name, src);
  }
  free(decl);
  if (st == GM_OK) st = host->script_register(m, "registry", gm_lua_registry);
  return st;
}

void carbon__scripts_free(void) {
  for (size_t i = 0; i < sizeof carbon__sources / sizeof *carbon__sources;
       i++) {
    free(carbon__sources[i]);
    carbon__sources[i] = NULL;
  }
}
