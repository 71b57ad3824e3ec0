#include "config.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
