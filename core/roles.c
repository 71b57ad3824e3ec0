#include "roles.h"

#include <stdlib.h>
#include <string.h>

/* One (role, market) declaration; a role two markets declare has two. */
typedef struct gm__role_decl {
  const char *name;    /* the role */
  const char *market;  /* "gm" for admin */
  const char *summary; /* that market's one line */
} gm__role_decl;

struct gm__roles {
  gm__role_decl *decl; /* sorted by name, then market; admin first */
  size_t n;            /* declarations */
  char *all;           /* "admin,buyer,...": each name once */
};

const gm_role gm__role_admin = {
    GM__ROLE_ADMIN,
    "the broker's administrator: registers participants, sets the test "
    "clock, replays dead letters; holds every role"};

int gm__role_name_valid(const char *s, size_t len) {
  if (len == 0 || len > GM__ROLE_NAME_MAX || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 1; i < len; i++)
    if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') &&
        s[i] != '_')
      return 0;
  return 1;
}

/* admin before everything, then by name, then by market: the order every
   listing shows, the same whatever order the plugins loaded in. */
static int gm__decl_cmp(const void *a, const void *b) {
  const gm__role_decl *x = a, *y = b;
  int xa = strcmp(x->name, GM__ROLE_ADMIN) == 0;
  int ya = strcmp(y->name, GM__ROLE_ADMIN) == 0;
  if (xa != ya) return ya - xa;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->market, y->market);
}

gm__roles *gm__roles_new(gm_market *const *markets, size_t n) {
  gm__roles *r = calloc(1, sizeof *r);
  if (!r) abort();
  size_t cap = 1;
  for (size_t i = 0; i < n; i++) cap += markets[i]->n_roles;
  r->decl = calloc(cap, sizeof *r->decl);
  if (!r->decl) abort();
  r->decl[r->n++] =
      (gm__role_decl){gm__role_admin.name, "gm", gm__role_admin.summary};
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < markets[i]->n_roles; j++)
      r->decl[r->n++] =
          (gm__role_decl){markets[i]->roles[j].name, markets[i]->name,
                          markets[i]->roles[j].summary};
  qsort(r->decl, r->n, sizeof *r->decl, gm__decl_cmp);
  size_t len = 1;
  for (size_t i = 0; i < r->n; i++) len += strlen(r->decl[i].name) + 1;
  r->all = calloc(1, len);
  if (!r->all) abort();
  for (size_t i = 0; i < r->n; i++) {
    if (i && strcmp(r->decl[i].name, r->decl[i - 1].name) == 0) continue;
    if (i) strcat(r->all, ",");
    strcat(r->all, r->decl[i].name);
  }
  return r;
}

void gm__roles_destroy(gm__roles **rp) {
  if (!rp || !*rp) return;
  free((*rp)->decl);
  free((*rp)->all);
  free(*rp);
  *rp = NULL;
}

int gm__roles_known(const gm__roles *r, const char *name, size_t len) {
  for (size_t i = 0; i < r->n; i++)
    if (strlen(r->decl[i].name) == len &&
        memcmp(r->decl[i].name, name, len) == 0)
      return 1;
  return 0;
}

const char *gm__roles_all(const gm__roles *r) {
  return r->all;
}

char *gm__roles_in_force(const gm__roles *r, gm__arena *a, const char *held) {
  size_t n = held ? strlen(held) : 0;
  char *out = gm__arena_alloc(a, n + 1), *o = out;
  const char *p = held;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len && gm__roles_known(r, p, len)) {
      if (o != out) *o++ = ',';
      memcpy(o, p, len);
      o += len;
    }
    p = end ? end + 1 : NULL;
  }
  *o = '\0';
  return out;
}

char *gm__roles_describe(const gm__roles *r, gm__arena *a) {
  char *s = "";
  for (size_t i = 0; i < r->n;) {
    size_t j = i + 1;
    while (j < r->n && strcmp(r->decl[j].name, r->decl[i].name) == 0) j++;
    if (j == i + 1) {
      s = gm__arena_sprintf(a, "%s\n  %s (%s): %s", s, r->decl[i].name,
                            r->decl[i].market, r->decl[i].summary);
    } else {
      s = gm__arena_sprintf(a, "%s\n  %s (", s, r->decl[i].name);
      for (size_t k = i; k < j; k++)
        s = gm__arena_sprintf(a, "%s%s%s: %s", s, k > i ? "; " : "",
                              r->decl[k].market, r->decl[k].summary);
      s = gm__arena_sprintf(a, "%s)", s);
    }
    i = j;
  }
  return s;
}
