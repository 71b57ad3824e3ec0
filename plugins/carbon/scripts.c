/*
 * The scripts as gmd registers them: the declarations C and the scripts
 * share (decl.c) and lib.lua, as the lib of each script (script_register_lib:
 * made once per load of carbon's Redis library, not on every call), then the
 * script.  The declarations are one line, so a Lua error's line number is
 * the line in lib.lua, or lib.lua's length plus the line in the script.  A
 * host older than script_register_lib gets the three joined as one script,
 * which works the same, lib made on every call.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

const char *carbon__registry_list = "registry";

/* Sources handed to script_register, freed at shutdown. */
static char *carbon__sources[8];

gm_status carbon__scripts_register(gm_market *m) {
  /* read never writes: flagged read-only, it runs by FCALL_RO and still
     answers when Redis is over maxmemory (docs/plugins.md). */
  static const struct {
    const char *name;
    const char *lua;
    unsigned flags;
  } scripts[] = {{"place", gm_lua_place, 0},
                 {"amend", gm_lua_amend, 0},
                 {"block", gm_lua_block, 0},
                 {"admin", gm_lua_admin, 0},
                 {"read", gm_lua_read, GM_SCRIPT_READ_ONLY},
                 {"sweep", gm_lua_sweep, 0}};
  int with_flags = GM_HOST_HAS(host, script_register_flags);
  int with_lib = host->size >= offsetof(gm_host_api, script_register_lib) +
                                   sizeof host->script_register_lib &&
                 host->script_register_lib;
  char *decl = carbon__lua_declarations();
  size_t n = strlen(decl) + strlen(gm_lua_lib) + 1;
  char *lib = malloc(n);
  if (!lib) abort();
  snprintf(lib, n, "%s%s", decl, gm_lua_lib);
  free(decl);
  carbon__sources[0] = lib;
  gm_status st = GM_OK;
  for (size_t i = 0; i < sizeof scripts / sizeof scripts[0] && st == GM_OK;
       i++) {
    if (with_flags) {
      st = host->script_register_flags(m, scripts[i].name, lib, scripts[i].lua,
                                       scripts[i].flags);
      continue;
    }
    if (with_lib) {
      st = host->script_register_lib(m, scripts[i].name, lib, scripts[i].lua);
      continue;
    }
    n = strlen(lib) + strlen(scripts[i].lua) + 2;
    char *src = malloc(n);
    if (!src) abort();
    snprintf(src, n, "%s\n%s", lib, scripts[i].lua);
    carbon__sources[i + 1] = src;
    st = host->script_register(m, scripts[i].name, src);
  }
  if (st == GM_OK) st = host->script_register(m, "registry", gm_lua_registry);
  /* Its 'list' reads only: a read-only twin runs it. */
  if (st == GM_OK && with_flags) {
    st = host->script_register_flags(m, "registry.read", NULL, gm_lua_registry,
                                     GM_SCRIPT_READ_ONLY);
    carbon__registry_list = "registry.read";
  }
  return st;
}

void carbon__scripts_free(void) {
  for (size_t i = 0; i < sizeof carbon__sources / sizeof *carbon__sources;
       i++) {
    free(carbon__sources[i]);
    carbon__sources[i] = NULL;
  }
}
