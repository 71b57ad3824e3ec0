#include "loader.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "host.h"
#include "log.h"
#include "redis.h"
#include "timers.h"

static int valid_market_name(const char *s) {
  if (!s || !islower((unsigned char)s[0]) || strlen(s) > 32) return 0;
  for (const char *p = s; *p; p++)
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
      return 0;
  return strcmp(s, "gm") != 0;
}

static int valid_descriptor(const ProtobufCMessageDescriptor *d) {
  return d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

/* Checks the plugin's description; 0 or -1 with err. */
static int check_plugin(const gm_plugin *p, char *err, size_t errlen) {
  /* The smallest description this host understands: up to shutdown. */
  size_t min = offsetof(gm_plugin, shutdown) + sizeof p->shutdown;
  if (p->size < min) {
    snprintf(err, errlen,
             "gm_plugin is %zu bytes, smaller than the %zu this host needs: "
             "rebuild the plugin against this SDK",
             p->size, min);
    return -1;
  }
  if (!valid_market_name(p->name)) {
    snprintf(err, errlen,
             "market name '%s' is not [a-z][a-z0-9_]* (at most 32, not 'gm')",
             p->name ? p->name : "(null)");
    return -1;
  }
  if (!p->init || !p->shutdown) {
    snprintf(err, errlen, "mandatory callback %s is NULL",
             !p->init ? "init" : "shutdown");
    return -1;
  }
  if (!p->methods || p->n_methods == 0) {
    snprintf(err, errlen, "declares no methods");
    return -1;
  }
  for (size_t i = 0; i < p->n_methods; i++) {
    const gm_method *m = &p->methods[i];
    if (!m->name || !*m->name) {
      snprintf(err, errlen, "method %zu has no name", i);
      return -1;
    }
    if (!m->handle) {
      snprintf(err, errlen, "method %s: mandatory callback handle is NULL",
               m->name);
      return -1;
    }
    if (!valid_descriptor(m->request) || !valid_descriptor(m->reply)) {
      snprintf(err, errlen,
               "method %s: request and reply must be protobuf-c message "
               "descriptors",
               m->name);
      return -1;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(p->methods[j].name, m->name) == 0) {
        snprintf(err, errlen, "method %s is declared twice", m->name);
        return -1;
      }
  }
  return 0;
}

gm_market *gm__plugin_load(const char *path, gm__host *host, char *err,
                           size_t errlen) {
  char why[512] = "";
  gm_market *m = NULL;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(why, sizeof why, "dlopen failed: %s", dlerror());
    goto fail;
  }
  const gm_plugin_magic_t *(*magic_fn)(void);
  *(void **)&magic_fn = dlsym(dl, "gm_plugin_magic");
  if (!magic_fn) {
    snprintf(why, sizeof why,
             "no gm_plugin_magic symbol: not a greenmarket plugin (define one "
             "with GM_PLUGIN_DEFINE)");
    goto fail;
  }
  const gm_plugin_magic_t *magic = magic_fn();
  if (!magic || magic->size < sizeof *magic ||
      magic->magic != GM_PLUGIN_MAGIC) {
    snprintf(why, sizeof why,
             "gm_plugin_magic() returned no greenmarket stamp");
    goto fail;
  }
  if (magic->abi_version != GM_PLUGIN_ABI_VERSION) {
    snprintf(why, sizeof why,
             "built for plugin ABI %u, this gmd speaks ABI %u: rebuild the "
             "plugin against this gmd's SDK",
             magic->abi_version, GM_PLUGIN_ABI_VERSION);
    goto fail;
  }
  if (magic->protobuf_c_version / 1000000 !=
      protobuf_c_version_number() / 1000000) {
    snprintf(why, sizeof why,
             "built with protobuf-c %u, gmd runs %u (major versions differ)",
             magic->protobuf_c_version, protobuf_c_version_number());
    goto fail;
  }
  const gm_plugin *(*entry_fn)(void);
  *(void **)&entry_fn = dlsym(dl, "gm_plugin_entry");
  if (!entry_fn || !entry_fn()) {
    snprintf(why, sizeof why,
             "no gm_plugin_entry symbol: define it with GM_PLUGIN_DEFINE");
    goto fail;
  }
  const gm_plugin *p = entry_fn();
  if (check_plugin(p, why, sizeof why) != 0) goto fail;
  if (host->market_loaded && host->market_loaded(host, p->name)) {
    snprintf(why, sizeof why,
             "market %s is loaded already; remove the duplicate file", p->name);
    goto fail;
  }

  m = calloc(1, sizeof *m);
  if (!m) abort();
  m->name = strdup(p->name);
  m->path = strdup(path);
  m->dl = dl;
  m->plugin = p;
  m->host = host;
  m->method_stats = calloc(p->n_methods, sizeof *m->method_stats);
  if (!m->method_stats) abort();
  gm_status st = p->init(m, &gm__host_api);
  if (st != GM_OK) {
    snprintf(why, sizeof why, "init failed with %s (see the lines above)",
             gm__status_name(st));
    gm__scripts_remove(m->name);
    gm__timers_remove(host->timers, m);
    goto fail;
  }
  gm__log(GM_LOG_INFO, "loader", "loaded market %s %s from %s", m->name,
          p->version ? p->version : "", path);
  return m;

fail:
  snprintf(err, errlen, "%s: refused: %s", path, why);
  gm__log(GM_LOG_ERROR, "loader", "%s", err);
  if (m) {
    free(m->method_stats);
    free(m->name);
    free(m->path);
    free(m);
  }
  if (dl) dlclose(dl);
  return NULL;
}

void gm__plugin_unload(gm_market **mp) {
  if (!mp || !*mp) return;
  gm_market *m = *mp;
  m->plugin->shutdown(m);
  gm__scripts_remove(m->name);
  gm__timers_remove(m->host->timers, m);
  dlclose(m->dl);
  free(m->method_stats);
  free(m->name);
  free(m->path);
  free(m);
  *mp = NULL;
}

const gm_method *gm__plugin_method(const gm_market *m, const char *name) {
  for (size_t i = 0; i < m->plugin->n_methods; i++)
    if (strcmp(m->plugin->methods[i].name, name) == 0)
      return &m->plugin->methods[i];
  return NULL;
}
