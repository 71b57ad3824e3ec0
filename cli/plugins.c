/*
 * Descriptor lookup: the core "gm" methods are built in; a market's methods
 * come from dlopen()ing its plugin, gm_<market>.so, without calling init():
 * `gm` needs only the method table and the protobuf descriptors it points
 * to, never a running plugin.
 */
#include <stddef.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "core_methods.h"
#include "greenmarket.pb-c.h"

struct gm_cli_plugin {
  gm_cli_plugin *next;
  char *market;           /* the market name asked for */
  void *handle;           /* from dlopen() */
  const gm_plugin *entry; /* the plugin's description */
};

static const gm_plugin gm__core = {.size = sizeof(gm_plugin),
                                   .name = "gm",
                                   .version = GM_VERSION,
                                   .description = "the broker's own methods",
                                   .methods = gm__core_methods,
                                   .n_methods = GM__CORE_METHODS};

const gm_plugin *gm_cli_core_plugin(void) {
  return &gm__core;
}

/* Market names are [a-z][a-z0-9_]*: also keeps "../x" out of file paths. */
static int gm__market_name_ok(const char *m) {
  if (!m || !(*m >= 'a' && *m <= 'z')) return 0;
  for (; *m; m++)
    if (!((*m >= 'a' && *m <= 'z') || (*m >= '0' && *m <= '9') || *m == '_'))
      return 0;
  return 1;
}

/* Loads and checks one plugin file; NULL with the reason in why. */
static gm_cli_plugin *gm__load(const char *path, const char *market, char *why,
                               size_t whylen) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(why, whylen, "cannot load %s: %s", path, dlerror());
    return NULL;
  }
  const gm_plugin_magic_t *(*magic)(void) =
      (const gm_plugin_magic_t *(*)(void))dlsym(h, "gm_plugin_magic");
  const gm_plugin *(*entry)(void) =
      (const gm_plugin *(*)(void))dlsym(h, "gm_plugin_entry");
  const gm_plugin_magic_t *mg = magic ? magic() : NULL;
  const gm_plugin *p = NULL;
  if (!mg || mg->magic != GM_PLUGIN_MAGIC ||
      mg->abi_version != GM_PLUGIN_ABI_VERSION) {
    snprintf(why, whylen,
             "%s is not a greenmarket plugin of ABI version %u: rebuild it "
             "against this SDK",
             path, GM_PLUGIN_ABI_VERSION);
    goto fail;
  }
  p = entry ? entry() : NULL;
  if (!p || p->size < offsetof(gm_plugin, init) || !p->name ||
      strcmp(p->name, market) || (p->n_methods && !p->methods)) {
    snprintf(why, whylen,
             "%s does not describe market \"%s\" (missing gm_plugin_entry or "
             "a different name): rename the file or fix the plugin",
             path, market);
    goto fail;
  }
  gm_cli_plugin *cp = calloc(1, sizeof *cp);
  if (!cp || !(cp->market = strdup(market))) {
    free(cp);
    snprintf(why, whylen, "out of memory");
    goto fail;
  }
  cp->handle = h;
  cp->entry = p;
  return cp;
fail:
  dlclose(h);
  return NULL;
}

const gm_plugin *gm_cli_load_plugin(gm_cli *cli, const char *market,
                                    const char **why) {
  static char reason[3072];
  if (!strcmp(market, "gm")) return &gm__core;
  for (gm_cli_plugin *p = cli->plugins; p; p = p->next)
    if (!strcmp(p->market, market)) return p->entry;
  if (!gm__market_name_ok(market)) {
    snprintf(reason, sizeof reason,
             "\"%s\" is not a market name (lowercase letters, digits, _); "
             "run `gm markets` for the list",
             market);
    *why = reason;
    return NULL;
  }
  /*
   * --plugin-dir or GM_PLUGIN_DIR, then this build tree, then the install
   * beside this program (cmake --install --prefix elsewhere), then the
   * configured install dir.
   */
  char beside[1024] = "";
  ssize_t n = readlink("/proc/self/exe", beside, sizeof beside - 1);
  if (n > 0) {
    beside[n] = '\0';
    char *slash = strrchr(beside, '/');
    if (slash)
      snprintf(slash + 1, sizeof beside - (size_t)(slash + 1 - beside), "%s",
               GM_RELATIVE_PLUGIN_DIR);
  } else {
    beside[0] = '\0';
  }
  const char *dirs[] = {cli->plugin_dir, GM_BUILD_PLUGIN_DIR, beside,
                        GM_INSTALL_PLUGIN_DIR};
  char searched[2048] = "";
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (!dirs[i] || !*dirs[i]) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/gm_%s.so", dirs[i], market);
    size_t sl = strlen(searched);
    snprintf(searched + sl, sizeof searched - sl, "%s%s", sl ? ", " : "",
             dirs[i]);
    if (access(path, R_OK) != 0) continue;
    gm_cli_plugin *p = gm__load(path, market, reason, sizeof reason);
    if (!p) {
      *why = reason;
      return NULL;
    }
    p->next = cli->plugins;
    cli->plugins = p;
    return p->entry;
  }
  snprintf(reason, sizeof reason,
           "no gm_%s.so in %s: the market's descriptors come from its "
           "plugin; point --plugin-dir or GM_PLUGIN_DIR at the folder "
           "holding it",
           market, searched);
  *why = reason;
  return NULL;
}

void gm_cli_plugins_close(gm_cli *cli) {
  while (cli->plugins) {
    gm_cli_plugin *p = cli->plugins;
    cli->plugins = p->next;
    dlclose(p->handle);
    free(p->market);
    free(p);
  }
}

const gm_method *gm_cli_method(gm_cli *cli, const char *market,
                               const char *method) {
  const char *why;
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why);
  for (size_t i = 0; p && i < p->n_methods; i++)
    if (p->methods[i].name && !strcmp(p->methods[i].name, method))
      return &p->methods[i];
  return NULL;
}

void gm_cli_method_error(gm_cli *cli, const char *market, const char *method) {
  const char *why;
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why);
  if (!p) {
    fprintf(stderr, "error: %s\n", why);
    return;
  }
  fprintf(stderr, "error: market \"%s\" has no method \"%s\"; it has:", market,
          method);
  for (size_t i = 0; i < p->n_methods; i++)
    fprintf(stderr, " %s", p->methods[i].name);
  fprintf(stderr, "\n(see `gm %s --help`)\n", market);
}

/* Breadth-first search for `name` among descriptors reachable from d. */
static const ProtobufCMessageDescriptor *gm__reach(
    const ProtobufCMessageDescriptor *d, const char *name,
    const ProtobufCMessageDescriptor **seen, size_t *nseen, size_t cap) {
  if (!d) return NULL;
  for (size_t i = 0; i < *nseen; i++)
    if (seen[i] == d) return NULL;
  if (*nseen == cap) return NULL;
  seen[(*nseen)++] = d;
  if (!strcmp(d->name, name)) return d;
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (d->fields[i].type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const ProtobufCMessageDescriptor *r =
        gm__reach(d->fields[i].descriptor, name, seen, nseen, cap);
    if (r) return r;
  }
  return NULL;
}

static const ProtobufCMessageDescriptor *gm__find_in(const gm_plugin *p,
                                                     const char *name) {
  const ProtobufCMessageDescriptor *seen[512];
  size_t nseen = 0;
  for (size_t i = 0; i < p->n_methods; i++) {
    const ProtobufCMessageDescriptor *r =
        gm__reach(p->methods[i].request, name, seen, &nseen, 512);
    if (!r) r = gm__reach(p->methods[i].reply, name, seen, &nseen, 512);
    if (r) return r;
  }
  /* Event types a plugin declares (read only when its struct has them). */
  if (p->size >= offsetof(gm_plugin, n_events) + sizeof p->n_events)
    for (size_t i = 0; p->events && i < p->n_events; i++) {
      const ProtobufCMessageDescriptor *r =
          gm__reach(p->events[i], name, seen, &nseen, 512);
      if (r) return r;
    }
  return NULL;
}

const ProtobufCMessageDescriptor *gm_cli_find_type(gm_cli *cli,
                                                   const char *market,
                                                   const char *full_name) {
  const char *why;
  if (market) {
    const gm_plugin *p = gm_cli_load_plugin(cli, market, &why);
    return p ? gm__find_in(p, full_name) : NULL;
  }
  const ProtobufCMessageDescriptor *r = gm__find_in(&gm__core, full_name);
  for (gm_cli_plugin *p = cli->plugins; !r && p; p = p->next)
    r = gm__find_in(p->entry, full_name);
  return r;
}
