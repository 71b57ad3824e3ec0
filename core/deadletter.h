/*
 * Dead letters: outbox entries the settler set aside (gm_dead_letter) after
 * their settle callback failed again and again.  The core methods
 * gm deadletters.list and gm deadletters.replay (admin) list them and put
 * one back into its stream as a new entry carrying "gm:replay_of <old id>";
 * the settler deletes the old row in the transaction that settles (or sets
 * aside again) the new entry, so a dead letter is never settled twice.
 */
#ifndef GM_CORE_DEADLETTER_H
#define GM_CORE_DEADLETTER_H

#include "greenmarket/plugin.h"

/* The field a replayed entry carries right after "kind". */
#define GM__REPLAY_FIELD "gm:replay_of"

gm_status gm__dead_letters_list(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply);
gm_status gm__dead_letters_replay(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);

#endif
