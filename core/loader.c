#include "loader.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "deadlines.h"
#include "host.h"
#include "log.h"
#include "redis.h"
#include "roles.h"
#include "timers.h"

/* [a-z][a-z0-9]*: a market's tables are "<market>_*" (ledger.c), so with
   no '_' in names no market's prefix starts another's ("alpha_eu_t" would
   be alpha's); "gm" and "sqlite" own gm_* and sqlite_*. */
static int valid_market_name(const char *s) {
  if (!s || !islower((unsigned char)s[0]) || strlen(s) > 32) return 0;
  for (const char *p = s; *p; p++)
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p)) return 0;
  return strcmp(s, "gm") != 0 && strcmp(s, "sqlite") != 0;
}

static int valid_descriptor(const ProtobufCMessageDescriptor *d) {
  return d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

/* Non-zero when the plugin was built with gm_plugin.roles. */
static int has_roles_field(const gm_plugin *p) {
  return p->size >= offsetof(gm_plugin, n_roles) + sizeof p->n_roles;
}

/* Checks gm_plugin.roles: names, one-line summaries, no duplicates, no
   "admin" (the broker's own); 0 or -1 with err. */
static int check_roles(const gm_plugin *p, char *err, size_t errlen) {
  if (!has_roles_field(p) || p->n_roles == 0) return 0;
  if (!p->roles) {
    snprintf(err, errlen, "n_roles is %zu but roles is NULL", p->n_roles);
    return -1;
  }
  for (size_t i = 0; i < p->n_roles; i++) {
    const gm_role *r = &p->roles[i];
    if (!r->name || !gm__role_name_valid(r->name, strlen(r->name))) {
      snprintf(err, errlen,
               "role %zu is named '%s'; a role name is [a-z][a-z0-9_]*, at "
               "most %d characters",
               i, r->name ? r->name : "(null)", GM__ROLE_NAME_MAX);
      return -1;
    }
    if (strcmp(r->name, GM__ROLE_ADMIN) == 0) {
      snprintf(err, errlen,
               "declares role admin, which is the broker's own (it holds "
               "every role); name it in methods without declaring it");
      return -1;
    }
    if (!r->summary || !*r->summary || strchr(r->summary, '\n')) {
      snprintf(err, errlen,
               "role %s needs a summary of one line: who holds it and what "
               "it lets them do",
               r->name);
      return -1;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(p->roles[j].name, r->name) == 0) {
        snprintf(err, errlen, "role %s is declared twice", r->name);
        return -1;
      }
  }
  return 0;
}

/* Non-zero when a method's roles are a comma list of role names. */
static int method_roles_valid(const char *roles) {
  const char *p = roles;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (!gm__role_name_valid(p, len)) return 0;
    if (!end) return 1;
    p = end + 1;
  }
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
             "market name '%s' is not [a-z][a-z0-9]* (at most 32, not 'gm' "
             "or 'sqlite'): its tables are named <name>_*, which must be "
             "no other market's and not SQLite's",
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
    if (m->roles && *m->roles && !method_roles_valid(m->roles)) {
      snprintf(err, errlen,
               "method %s: roles \"%s\" must be role names separated by "
               "commas, without spaces (e.g. \"buyer,seller\")",
               m->name, m->roles);
      return -1;
    }
  }
  return check_roles(p, err, errlen);
}

static char *dup_or_die(const char *s) {
  char *d = strdup(s);
  if (!d) abort();
  return d;
}

/*
 * The roles the market declares, as owned copies.  A plugin built before
 * gm_plugin.roles existed declares none, yet its methods name roles that
 * every broker of its time knew: it keeps loading (structs only grow at
 * their end) by declaring the roles its methods name, without a meaning.
 */
static void copy_roles(gm_market *m) {
  const gm_plugin *p = m->plugin;
  if (has_roles_field(p)) {
    m->roles = calloc(p->n_roles ? p->n_roles : 1, sizeof *m->roles);
    if (!m->roles) abort();
    for (size_t i = 0; i < p->n_roles; i++)
      m->roles[m->n_roles++] = (gm_role){dup_or_die(p->roles[i].name),
                                         dup_or_die(p->roles[i].summary)};
    return;
  }
  size_t cap = 0;
  for (size_t i = 0; i < p->n_methods; i++)
    for (const char *r = p->methods[i].roles; r && *r; r++) cap += *r == ',';
  m->roles = calloc(cap + p->n_methods + 1, sizeof *m->roles);
  if (!m->roles) abort();
  for (size_t i = 0; i < p->n_methods; i++) {
    const char *r = p->methods[i].roles;
    while (r && *r) {
      const char *end = strchr(r, ',');
      size_t len = end ? (size_t)(end - r) : strlen(r);
      int seen =
          len == strlen(GM__ROLE_ADMIN) && memcmp(r, GM__ROLE_ADMIN, len) == 0;
      for (size_t k = 0; k < m->n_roles && !seen; k++)
        seen = strlen(m->roles[k].name) == len &&
               memcmp(m->roles[k].name, r, len) == 0;
      if (!seen) {
        char *name = strndup(r, len);
        if (!name) abort();
        m->roles[m->n_roles++] = (gm_role){
            name, dup_or_die("named by its methods (the plugin was built "
                             "before gm_plugin.roles and gives no meaning)")};
      }
      r = end ? end + 1 : NULL;
    }
  }
}

static void free_roles(gm_market *m) {
  for (size_t i = 0; i < m->n_roles; i++) {
    free((char *)m->roles[i].name);
    free((char *)m->roles[i].summary);
  }
  free(m->roles);
  m->roles = NULL;
  m->n_roles = 0;
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

  if (p->size >= offsetof(gm_plugin, settings) + sizeof p->settings &&
      p->settings && host->config) {
    char section[64], who[64];
    snprintf(section, sizeof section, "market.%s", p->name);
    snprintf(who, sizeof who, "market %s", p->name);
    if (gm__config_check_section(host->config, section, p->settings, who, why,
                                 sizeof why) != 0)
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
  copy_roles(m);
  gm_status st = p->init(m, &gm__host_api);
  if (st != GM_OK) {
    snprintf(why, sizeof why, "init failed with %s (see the lines above)",
             gm__status_name(st));
    gm__scripts_remove(m->name);
    gm__timers_remove(host->timers, m);
    gm__deadlines_remove(host->deadlines, m);
    goto fail;
  }
  m->ready = 1;
  gm__log(GM_LOG_INFO, "loader", "loaded market %s %s from %s", m->name,
          p->version ? p->version : "", path);
  return m;

fail:
  snprintf(err, errlen, "%s: refused: %s", path, why);
  gm__log(GM_LOG_ERROR, "loader", "%s", err);
  if (m) {
    free(m->method_stats);
    free_roles(m);
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
  gm__deadlines_remove(m->host->deadlines, m);
  dlclose(m->dl);
  free(m->method_stats);
  free_roles(m);
  free(m->name);
  free(m->path);
  free(m);
  *mp = NULL;
}

/* Non-zero when market m (alive) declares role r[0..len). */
static int declares(const gm_market *m, const char *r, size_t len) {
  for (size_t i = 0; i < m->n_roles; i++)
    if (strlen(m->roles[i].name) == len &&
        memcmp(m->roles[i].name, r, len) == 0)
      return 1;
  return 0;
}

/*
 * The first role one of m's methods names that neither the broker (admin)
 * nor a market still alive declares: why m is refused, in why; 0 when
 * there is none.
 */
static int unknown_role(gm_market *const *markets, const int *alive, size_t n,
                        const gm_market *m, char *why, size_t whylen) {
  for (size_t i = 0; i < m->plugin->n_methods; i++) {
    const gm_method *meth = &m->plugin->methods[i];
    const char *r = meth->roles;
    while (r && *r) {
      const char *end = strchr(r, ',');
      size_t len = end ? (size_t)(end - r) : strlen(r);
      int known =
          len == strlen(GM__ROLE_ADMIN) && memcmp(r, GM__ROLE_ADMIN, len) == 0;
      for (size_t k = 0; k < n && !known; k++)
        known = alive[k] && declares(markets[k], r, len);
      if (!known) {
        char gone[256] = "";
        int ngone = 0;
        for (size_t k = 0; k < n; k++)
          if (!alive[k] && declares(markets[k], r, len))
            snprintf(gone + strlen(gone), sizeof gone - strlen(gone), "%s%s",
                     ngone++ ? ", " : "", markets[k]->name);
        if (ngone)
          snprintf(why, whylen,
                   "method %s needs role '%.*s', which only the refused "
                   "market%s %s declared; fix %s (see its refusal)",
                   meth->name, (int)len, r, ngone > 1 ? "s" : "", gone,
                   ngone > 1 ? "them" : "it");
        else
          snprintf(why, whylen,
                   "method %s needs role '%.*s', which no loaded market "
                   "declares; declare it in gm_plugin.roles, or load the "
                   "market that declares it",
                   meth->name, (int)len, r);
        return 1;
      }
      r = end ? end + 1 : NULL;
    }
  }
  return 0;
}

void gm__plugins_check_roles(gm_market **markets, size_t *n) {
  int *alive = malloc((*n ? *n : 1) * sizeof *alive);
  if (!alive) abort();
  for (size_t i = 0; i < *n; i++) alive[i] = 1;
  /* Refusing one market takes its roles away: check again until nothing
     changes.  What stays is every market whose roles the others (and the
     broker) declare, whatever order the plugins loaded in. */
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t i = 0; i < *n; i++) {
      char why[512];
      if (!alive[i] ||
          !unknown_role(markets, alive, *n, markets[i], why, sizeof why))
        continue;
      gm__log(GM_LOG_ERROR, "loader", "%s: refused: %s", markets[i]->path, why);
      alive[i] = 0;
      changed = 1;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < *n; i++) {
    if (alive[i])
      markets[kept++] = markets[i];
    else
      gm__plugin_unload(&markets[i]);
  }
  *n = kept;
  free(alive);
}

const gm_method *gm__plugin_method(const gm_market *m, const char *name) {
  for (size_t i = 0; i < m->plugin->n_methods; i++)
    if (strcmp(m->plugin->methods[i].name, name) == 0)
      return &m->plugin->methods[i];
  return NULL;
}
