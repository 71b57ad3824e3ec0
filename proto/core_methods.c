#include "core_methods.h"

#include "greenmarket.pb-c.h"

const gm_method gm__core_methods[GM__CORE_METHODS] = {
    [GM__CORE_PING] = {"ping", &gm__ping_request__descriptor,
                       &gm__ping_reply__descriptor, NULL, 0, NULL,
                       "round trip to the broker; echoes text back"},
    [GM__CORE_MARKETS] = {"markets", &gm__markets_request__descriptor,
                          &gm__markets_reply__descriptor, NULL, 0, NULL,
                          "the loaded markets, their versions and methods"},
    [GM__CORE_STATS] = {"stats", &gm__stats_request__descriptor,
                        &gm__stats_reply__descriptor, NULL, 0, NULL,
                        "requests, errors and latency per market"},
    [GM__CORE_WHOAMI] = {"whoami", &gm__whoami_request__descriptor,
                         &gm__whoami_reply__descriptor, NULL, 0, NULL,
                         "the participant and roles the broker sees"},
    [GM__CORE_REGISTER] = {"register", &gm__register_request__descriptor,
                           &gm__register_reply__descriptor, NULL,
                           GM_METHOD_MUTATING, "admin",
                           "register or update a participant: id, roles, "
                           "CURVE public key"},
    [GM__CORE_CLOCK_SET] = {"clock.set", &gm__clock_set_request__descriptor,
                            &gm__clock_reply__descriptor, NULL,
                            GM_METHOD_MUTATING, "admin",
                            "set the manual clock (only with [testing] clock "
                            "= manual)"},
    [GM__CORE_DEAD_LETTERS] = {"deadletters.list",
                               &gm__dead_letters_request__descriptor,
                               &gm__dead_letters_reply__descriptor, NULL, 0,
                               "admin",
                               "outbox entries set aside because their settle "
                               "callback kept failing"},
    [GM__CORE_REPLAY] = {"deadletters.replay", &gm__replay_request__descriptor,
                         &gm__replay_reply__descriptor, NULL,
                         GM_METHOD_MUTATING, "admin",
                         "put a dead letter back into its outbox stream once "
                         "the cause is fixed"},
};
