/*
 * Descriptor lookup: the core "gm" methods are built in; a market's methods
 * come from dlopen()ing its plugin, gm_<market>.so, without calling init():
 * `gm` needs only the method table and the protobuf descriptors it points
 * to, never a running plugin.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
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

/* Market names are [a-z][a-z0-9]*: also keeps "../x" out of file paths. */
static int gm__market_name_ok(const char *m) {
  if (!m || !(*m >= 'a' && *m <= 'z')) return 0;
  for (; *m; m++)
    if (!((*m >= 'a' && *m <= 'z') || (*m >= '0' && *m <= '9'))) return 0;
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

/*
 * The folders gm looks for plugins in, in order: --plugin-dir or
 * GM_PLUGIN_DIR, then this build tree, then the install beside this program
 * (cmake --install --prefix elsewhere), then the configured install dir.
 * Returns how many of dirs[4] are set; `beside` holds the third.
 */
static size_t gm__plugin_dirs(gm_cli *cli, const char *dirs[4],
                              char beside[1024]) {
  size_t n = 0;
  ssize_t len = readlink("/proc/self/exe", beside, 1023);
  if (len > 0) {
    beside[len] = '\0';
    char *slash = strrchr(beside, '/');
    if (slash)
      snprintf(slash + 1, 1024 - (size_t)(slash + 1 - beside), "%s",
               GM_RELATIVE_PLUGIN_DIR);
    else
      beside[0] = '\0';
  } else {
    beside[0] = '\0';
  }
  const char *all[] = {cli->plugin_dir, GM_BUILD_PLUGIN_DIR, beside,
                       GM_INSTALL_PLUGIN_DIR};
  for (size_t i = 0; i < 4; i++)
    if (all[i] && *all[i]) dirs[n++] = all[i];
  return n;
}

/* Appends "a, b" style: `text` to the list in buf. */
static void gm__list_add(char *buf, size_t len, const char *text) {
  size_t used = strlen(buf);
  if (used < len)
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", text);
}

const gm_plugin *gm_cli_load_plugin(gm_cli *cli, const char *market,
                                    const char **why, int *missing) {
  static char reason[3072];
  if (missing) *missing = 0;
  if (!strcmp(market, "gm")) return &gm__core;
  for (gm_cli_plugin *p = cli->plugins; p; p = p->next)
    if (!strcmp(p->market, market)) return p->entry;
  if (!gm__market_name_ok(market)) {
    snprintf(reason, sizeof reason,
             "\"%s\" is not a market name (lowercase letters and digits); "
             "run `gm markets` for the list",
             market);
    *why = reason;
    if (missing) *missing = 1;
    return NULL;
  }
  const char *dirs[4];
  char beside[1024];
  size_t ndirs = gm__plugin_dirs(cli, dirs, beside);
  char searched[2048] = "";
  for (size_t i = 0; i < ndirs; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/gm_%s.so", dirs[i], market);
    gm__list_add(searched, sizeof searched, dirs[i]);
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
  if (missing) *missing = 1;
  return NULL;
}

/* The first version of the struct: size, run, help. */
#define GM__EXTENSION_V1 \
  (offsetof(struct gm_cli_extension, help) + sizeof(void (*)(FILE *)))

const struct gm_cli_extension *gm_cli_extension_of(const gm_plugin *p,
                                                   const char *market) {
  if (p->size < offsetof(gm_plugin, cli) + sizeof p->cli || !p->cli)
    return NULL;
  const struct gm_cli_extension *e = p->cli;
  /* A size past any struct this SDK could grow into is a wild pointer or a
   * plugin built wrong, not a newer SDK: the generic path still works. */
  if (e->size < GM__EXTENSION_V1 || e->size > 4096 || !e->run) {
    fprintf(stderr,
            "warning: gm_%s.so's friendly commands are unusable (extension "
            "size %zu, run %s): rebuild the plugin against this SDK; using "
            "`gm %s <method> field=value` meanwhile\n",
            market, e->size, e->run ? "set" : "NULL", market);
    return NULL;
  }
  return e;
}

/* Ascending, for a stable listing. */
static int gm__strcmp_p(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void gm_cli_local_markets(gm_cli *cli, char *out, size_t outlen, char *dirs,
                          size_t dirslen) {
  const char *d[4];
  char beside[1024], *names[256];
  size_t ndirs = gm__plugin_dirs(cli, d, beside), n = 0;
  out[0] = dirs[0] = '\0';
  for (size_t i = 0; i < ndirs; i++) {
    gm__list_add(dirs, dirslen, d[i]);
    DIR *dir = opendir(d[i]);
    struct dirent *de;
    while (dir && (de = readdir(dir)) && n < 256) {
      size_t len = strlen(de->d_name);
      if (len <= 6 || strncmp(de->d_name, "gm_", 3) ||
          strcmp(de->d_name + len - 3, ".so"))
        continue;
      char *name = strndup(de->d_name + 3, len - 6);
      if (!name) break;
      int dup = !gm__market_name_ok(name);
      for (size_t k = 0; k < n && !dup; k++) dup = !strcmp(names[k], name);
      if (dup)
        free(name);
      else
        names[n++] = name;
    }
    if (dir) closedir(dir);
  }
  qsort(names, n, sizeof *names, gm__strcmp_p);
  for (size_t i = 0; i < n; i++) {
    gm__list_add(out, outlen, names[i]);
    free(names[i]);
  }
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
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why, NULL);
  for (size_t i = 0; p && i < p->n_methods; i++)
    if (p->methods[i].name && !strcmp(p->methods[i].name, method))
      return &p->methods[i];
  return NULL;
}

void gm_cli_method_error(gm_cli *cli, const char *market, const char *method) {
  const char *why;
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why, NULL);
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
    const gm_plugin *p = gm_cli_load_plugin(cli, market, &why, NULL);
    return p ? gm__find_in(p, full_name) : NULL;
  }
  const ProtobufCMessageDescriptor *r = gm__find_in(&gm__core, full_name);
  for (gm_cli_plugin *p = cli->plugins; !r && p; p = p->next)
    r = gm__find_in(p->entry, full_name);
  return r;
}
