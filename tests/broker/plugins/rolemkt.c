/*
 * Small markets for the tests of market-declared roles and ledger
 * boundaries, one per ROLEMKT_* definition (see ../CMakeLists.txt):
 *
 *   alpha    declares auditor and buyer (a meaning of its own for buyer);
 *            method look needs auditor
 *   beta     declares lender; method lend needs auditor (alpha's) or lender
 *   gamma    declares steward; method x needs wizard, which nobody
 *            declares: refused after loading
 *   delta    declares nothing; method y needs steward, which only gamma
 *            declares: refused with gamma
 *   oldsdk   built as before gm_plugin.roles (a smaller size): method z
 *            needs buyer and old_role, which it declares by naming them
 *   badname  declares "Bad Role": refused before init
 *   admin    declares admin: refused before init
 *   spaces   method roles "buyer, seller": refused before init
 *   unprefixed  a migration creating a table without the market's prefix:
 *            refused at init
 *   nested   named alpha_eu: its tables would be alpha's ("alpha_eu_..."
 *            starts with "alpha_"): refused before init
 *   sqlite   named sqlite: "sqlite_*" tables are SQLite's: refused before
 *            init
 */
#include <stddef.h>

#include "greenmarket/plugin.h"
#include "testmkt.pb-c.h"

static const gm_host_api *host;

static gm_status echo(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Testmkt__EchoRequest *in = (const void *)req;
  Gm__Testmkt__EchoReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__echo_reply__init(out);
  out->text = host->sprintf(call, "%s", in->text);
  out->participant = (char *)host->participant(call);
  out->config_value = "";
  *reply = &out->base;
  return GM_OK;
}

#if defined(ROLEMKT_ALPHA)
#define NAME "alpha"
#define METHOD "look"
#define NEEDS "auditor"
static const gm_role roles[] = {
    {"auditor", "reads every record of the alpha market"},
    {"buyer", "buys alpha goods (alpha's own meaning)"},
};
#elif defined(ROLEMKT_BETA)
#define NAME "beta"
#define METHOD "lend"
#define NEEDS "auditor,lender"
static const gm_role roles[] = {
    {"lender", "lends money in the beta market"},
};
#elif defined(ROLEMKT_GAMMA)
#define NAME "gamma"
#define METHOD "x"
#define NEEDS "wizard"
static const gm_role roles[] = {
    {"steward", "looks after gamma"},
};
#elif defined(ROLEMKT_DELTA)
#define NAME "delta"
#define METHOD "y"
#define NEEDS "steward"
#define NO_ROLES
#elif defined(ROLEMKT_OLDSDK)
#define NAME "oldsdk"
#define METHOD "z"
#define NEEDS "buyer,old_role"
#define NO_ROLES
#define OLD_SIZE
#elif defined(ROLEMKT_BADNAME)
#define NAME "badname"
#define METHOD "x"
#define NEEDS NULL
static const gm_role roles[] = {
    {"Bad Role", "has a name that is no role name"},
};
#elif defined(ROLEMKT_ADMIN)
#define NAME "adminmkt"
#define METHOD "x"
#define NEEDS "admin"
static const gm_role roles[] = {
    {"admin", "tries to declare the broker's role"},
};
#elif defined(ROLEMKT_SPACES)
#define NAME "spaces"
#define METHOD "x"
#define NEEDS "buyer, seller"
static const gm_role roles[] = {
    {"buyer", "buys"},
    {"seller", "sells"},
};
#elif defined(ROLEMKT_UNPREFIXED)
#define NAME "unprefixed"
#define METHOD "x"
#define NEEDS NULL
#define NO_ROLES
#define MIGRATION "CREATE TABLE oops(x INTEGER)"
#elif defined(ROLEMKT_NESTED)
#define NAME "alpha_eu"
#define METHOD "x"
#define NEEDS NULL
#define NO_ROLES
#elif defined(ROLEMKT_SQLITE)
#define NAME "sqlite"
#define METHOD "x"
#define NEEDS NULL
#define NO_ROLES
#else
#error "define one ROLEMKT_* variant"
#endif

static gm_status init(gm_market *m, const gm_host_api *api) {
  host = api;
#ifdef MIGRATION
  static const gm_migration migrations[] = {{1, MIGRATION}};
  return host->ledger_migrate(m, migrations, 1);
#else
  (void)m;
  return GM_OK;
#endif
}

static void shutdown_plugin(gm_market *m) {
  (void)m;
}

static const gm_method methods[] = {
    {METHOD, &gm__testmkt__echo_request__descriptor,
     &gm__testmkt__echo_reply__descriptor, echo, 0, NEEDS, "echo a text"},
};

static const gm_plugin plugin = {
#ifdef OLD_SIZE
    /* What a plugin built before gm_plugin.roles says it is. */
    .size = offsetof(gm_plugin, roles),
#else
    .size = sizeof(gm_plugin),
#endif
    .name = NAME,
    .version = "1.0.0",
    .description = "a test market for roles and ledger boundaries",
    .methods = methods,
    .n_methods = 1,
    .init = init,
    .shutdown = shutdown_plugin,
#ifndef NO_ROLES
    .roles = roles,
    .n_roles = sizeof roles / sizeof roles[0],
#endif
};

GM_PLUGIN_DEFINE(plugin)
