#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth.h"

typedef struct entry {
  char *section; /* lower-case section name */
  char *key;     /* key as written */
  char *value;   /* value with inih's trimming */
} entry;

struct gm__config {
  entry *entries; /* every key, in file order */
  size_t n;       /* entries used */
  size_t cap;     /* entries allocated */
  char *dir;      /* folder of the file, for relative paths; "." if none */
};

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) abort();
  return p;
}

gm__config *gm__config_new(void) {
  gm__config *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->dir = xstrdup(".");
  return c;
}

void gm__config_destroy(gm__config **cp) {
  if (!cp || !*cp) return;
  gm__config *c = *cp;
  for (size_t i = 0; i < c->n; i++) {
    free(c->entries[i].section);
    free(c->entries[i].key);
    free(c->entries[i].value);
  }
  free(c->entries);
  free(c->dir);
  free(c);
  *cp = NULL;
}

static entry *find(const gm__config *c, const char *section, const char *key) {
  for (size_t i = c->n; i-- > 0;)
    if (strcasecmp(c->entries[i].section, section) == 0 &&
        strcmp(c->entries[i].key, key) == 0)
      return &c->entries[i];
  return NULL;
}

void gm__config_set(gm__config *c, const char *section, const char *key,
                    const char *value) {
  entry *e = find(c, section, key);
  if (e) {
    free(e->value);
    e->value = xstrdup(value);
    return;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 32;
    c->entries = realloc(c->entries, c->cap * sizeof *c->entries);
    if (!c->entries) abort();
  }
  c->entries[c->n].section = xstrdup(section);
  c->entries[c->n].key = xstrdup(key);
  c->entries[c->n].value = xstrdup(value);
  c->n++;
}

static int on_value(void *arg, const char *section, const char *key,
                    const char *value) {
  gm__config_set(arg, section, key, value ? value : "");
  return 1;
}

gm__config *gm__config_load(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    /* inih reads a folder as an empty file: every key at its default. */
    snprintf(err, errlen,
             "%s: is a folder, not a config file; give the file (for "
             "example %s/gmd.conf)",
             path, path);
    return NULL;
  }
  gm__config *c = gm__config_new();
  int rc = ini_parse(path, on_value, c);
  if (rc != 0) {
    if (rc == -1)
      snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    else if (rc == -2)
      snprintf(err, errlen, "%s: out of memory", path);
    else
      snprintf(err, errlen,
               "%s:%d: not a 'key = value' line or a '[section]' header", path,
               rc);
    gm__config_destroy(&c);
    return NULL;
  }
  char *copy = xstrdup(path);
  free(c->dir);
  c->dir = xstrdup(dirname(copy));
  free(copy);
  return c;
}

const char *gm__config_get(const gm__config *c, const char *section,
                           const char *key, const char *def) {
  const entry *e = find(c, section, key);
  return e ? e->value : def;
}

int gm__config_int(const gm__config *c, const char *section, const char *key,
                   long def, long min, long max, long *out, char *err,
                   size_t errlen) {
  const char *v = gm__config_get(c, section, key, NULL);
  if (!v || !*v) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || n < min || n > max) {
    snprintf(err, errlen,
             "[%s] %s = %s: expected a whole number from %ld to %ld", section,
             key, v, min, max);
    return -1;
  }
  *out = n;
  return 0;
}

int gm__config_bool(const gm__config *c, const char *section, const char *key,
                    int def, int *out, char *err, size_t errlen) {
  static const char *yes[] = {"on", "true", "yes", "1"};
  static const char *no[] = {"off", "false", "no", "0"};
  const char *v = gm__config_get(c, section, key, NULL);
  if (!v || !*v) {
    *out = def;
    return 0;
  }
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
    if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
  }
  snprintf(err, errlen, "[%s] %s = %s: expected on or off", section, key, v);
  return -1;
}

char *gm__config_path(const gm__config *c, const char *section, const char *key,
                      const char *def) {
  const char *v = gm__config_get(c, section, key, def);
  if (!v || !*v) return NULL;
  if (v[0] == '/') return xstrdup(v);
  size_t n = strlen(c->dir) + strlen(v) + 2;
  char *p = malloc(n);
  if (!p) abort();
  snprintf(p, n, "%s/%s", c->dir, v);
  return p;
}

/* The keys gmd reads, by section (docs/operations.md, Configuration
 * reference).  A section or key missing here is refused by gmd at start. */
static const struct known_section {
  const char *name;
  const char *keys[12];
} known[] = {
    {"broker",
     {"endpoint", "feed", "private_feed", "workers", "pipeline", "feed_queue",
      "max_message_bytes", "name", "public_feed_sub", NULL}},
    {"redis",
     {"unix", "host", "port", "cluster", "user", "password_file",
      "idempotency_ttl", "cluster_wait_replicas", NULL}},
    {"ledger",
     {"path", "settle", "batch", "scan_check", "linger_ms", "outbox_retire_s",
      "dead_letter_after", NULL}},
    {"settle",
     {"settle", "lease_ms", "ledger_endpoint", "read_timeout_ms", NULL}},
    {"security",
     {"mode", "secret_key_file", "admin_keys", "dev_on_network", NULL}},
    {"plugins", {"dir", "load", NULL}},
    {"log", {"level", NULL}},
    {"metrics", {"listen", "outbox_count_ms", NULL}},
    {"deadlines", {"poll_ms", "claim_ms", "reconcile_s", NULL}},
    {"clock", {"source", NULL}},
    {"testing",
     {"clock", "clock_start_ms", "clock_skew_ms", "clock_log_every_ms",
      "clock_max_rtt_us", NULL}},
};
#define N_KNOWN (sizeof known / sizeof known[0])

/* Edit distance (case-insensitive), capped at 9: enough to suggest a
 * spelling. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return 9;
  size_t row[41];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost =
          tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1])
              ? 0
              : 1;
      size_t best = diag + cost;
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return la + lb ? row[lb] : 0;
}

const char *gm__config_nearest(const char *word, const char *const *names,
                               size_t n) {
  const char *best = NULL;
  size_t bestd = 3;
  for (size_t i = 0; i < n && names[i]; i++) {
    size_t d = distance(word, names[i]);
    if (d < bestd) bestd = d, best = names[i];
  }
  return best;
}

size_t gm__config_markets(const gm__config *c, const char **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) {
    const char *s = c->entries[i].section;
    if (strncasecmp(s, "market.", 7) != 0 || !s[7]) continue;
    size_t j = 0;
    while (j < n && strcasecmp(out[j], s + 7) != 0) j++;
    if (j == n && n < max) out[n++] = s + 7;
  }
  return n;
}

/* " (did you mean X?)" for the nearest of `names` within 2 edits (or a
 * case-only difference), else "". */
static void suggest(const char *word, const char *const *names, size_t n,
                    char *out, size_t outlen) {
  const char *best = gm__config_nearest(word, names, n);
  if (best)
    snprintf(out, outlen, " (did you mean %s?)", best);
  else
    *out = '\0';
}

static void list_of(const char *const *names, size_t n, char *out,
                    size_t outlen) {
  size_t used = 0;
  *out = '\0';
  for (size_t i = 0; i < n && names[i] && used < outlen; i++)
    used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
                             names[i]);
}

int gm__config_check_section(const gm__config *c, const char *section,
                             const char *const *known, const char *who,
                             char *err, size_t errlen) {
  size_t nk = 0;
  while (known[nk]) nk++;
  for (size_t i = 0; i < c->n; i++) {
    const entry *e = &c->entries[i];
    if (strcasecmp(e->section, section) != 0) continue;
    int found = 0;
    for (size_t k = 0; k < nk && !found; k++)
      found = strcmp(e->key, known[k]) == 0;
    if (found) continue;
    char hint[96], names[1024];
    suggest(e->key, known, nk, hint, sizeof hint);
    list_of(known, nk, names, sizeof names);
    snprintf(err, errlen,
             "[%s] %s: unknown key%s; %s reads %s (its page in the docs says "
             "what each means)",
             section, e->key, hint, who, names);
    return -1;
  }
  return 0;
}

int gm__config_check(const gm__config *c, char *err, size_t errlen) {
  const char *sections[N_KNOWN + 1];
  for (size_t i = 0; i < N_KNOWN; i++) sections[i] = known[i].name;
  sections[N_KNOWN] = NULL;
  for (size_t i = 0; i < c->n; i++) {
    const entry *e = &c->entries[i];
    if (strncasecmp(e->section, "market.", 7) == 0 && e->section[7]) continue;
    if (!e->section[0]) {
      /* inih gives a key above the first [section] header section "". */
      snprintf(err, errlen,
               "%s: a key before any [section] header; move it under the "
               "section it belongs to (docs/operations.md, Configuration "
               "reference)",
               e->key);
      return -1;
    }
    const struct known_section *ks = NULL;
    for (size_t j = 0; j < N_KNOWN; j++)
      if (strcasecmp(e->section, known[j].name) == 0) ks = &known[j];
    char hint[64], names[512];
    if (!ks) {
      suggest(e->section, sections, N_KNOWN, hint, sizeof hint);
      list_of(sections, N_KNOWN, names, sizeof names);
      snprintf(err, errlen,
               "[%s] (key %s): unknown section%s; gmd reads %s, and "
               "[market.NAME] for a market's own keys (docs/operations.md, "
               "Configuration reference)",
               e->section, e->key, hint, names);
      return -1;
    }
    size_t nk = 0;
    int found = 0;
    for (; nk < 12 && ks->keys[nk]; nk++)
      if (strcmp(e->key, ks->keys[nk]) == 0) found = 1;
    if (!found) {
      suggest(e->key, ks->keys, nk, hint, sizeof hint);
      list_of(ks->keys, nk, names, sizeof names);
      snprintf(err, errlen,
               "[%s] %s: unknown key%s; [%s] has %s (docs/operations.md, "
               "Configuration reference)",
               ks->name, e->key, hint, ks->name, names);
      return -1;
    }
  }
  const char *keys = gm__config_get(c, "security", "admin_keys", NULL);
  if (keys && gm__admin_keys_check(keys, err, errlen) != 0) return -1;
  char *dir = gm__config_path(c, "plugins", "dir", NULL);
  if (dir) {
    struct stat st;
    int bad =
        stat(dir, &st) != 0 ? errno : (!S_ISDIR(st.st_mode) ? ENOTDIR : 0);
    if (bad) {
      snprintf(err, errlen,
               "[plugins] dir = %s: %s (resolved to %s); set it to the folder "
               "with the gm_<market>.so files (build/plugins-out in a "
               "checkout), or delete the line to use the installed default",
               gm__config_get(c, "plugins", "dir", ""), strerror(bad), dir);
      free(dir);
      return -1;
    }
    free(dir);
  }
  return 0;
}
