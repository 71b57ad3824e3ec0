/*
 * The roles this broker knows: its own "admin" and every role a loaded
 * market declares (gm_plugin.roles).  Built once, after every plugin has
 * loaded and the loader has refused the markets naming unknown roles
 * (loader.c), and never changed after: every thread reads it without a lock.
 *
 * A participant may hold a role no loaded market declares (registered while
 * a market that declared it was loaded): the registry keeps it, and the
 * broker ignores it (gm__roles_in_force) until such a market is loaded
 * again.  "admin" is always known, so an admin is never locked out.
 */
#ifndef GM_CORE_ROLES_H
#define GM_CORE_ROLES_H

#include <stddef.h>

#include "arena.h"
#include "market.h"

/* The broker's own role: registers participants, holds every role. */
#define GM__ROLE_ADMIN "admin"
/* Longest role name. */
#define GM__ROLE_NAME_MAX 32

typedef struct gm__roles gm__roles;

/* Non-zero when s[0..len) is a role name: [a-z][a-z0-9_]{0,31}. */
int gm__role_name_valid(const char *s, size_t len);

/* The roles of `admin` plus those the n markets declare (m->roles). */
gm__roles *gm__roles_new(gm_market *const *markets, size_t n);
/* Frees; nulls *r; idempotent. */
void gm__roles_destroy(gm__roles **r);

/* Non-zero when name[0..len) is a known role. */
int gm__roles_known(const gm__roles *r, const char *name, size_t len);
/* Every known role, comma-separated, "admin" first ("admin,buyer,seller"). */
const char *gm__roles_all(const gm__roles *r);
/* The roles of comma list `held` that are known, comma-separated (in a);
   the others are kept in the registry but have no effect. */
char *gm__roles_in_force(const gm__roles *r, gm__arena *a, const char *held);
/*
 * Every known role on a line of its own (in a), for error messages:
 *   "  admin (gm): the broker's administrator ...\n  buyer (alpha): ..."
 * A role two markets declare is one line with both: "buyer (alpha: ...;
 * beta: ...)".
 */
char *gm__roles_describe(const gm__roles *r, gm__arena *a);

/* The broker's own role, as markets list theirs (gm markets). */
extern const gm_role gm__role_admin;

#endif
