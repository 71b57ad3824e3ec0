/*
 * Text fields on the wire.  protobuf-c copies a string field only up to its
 * first NUL and never checks UTF-8: "k\0A" and "k\0B" would become one
 * idempotency key, and a reply echoing bad bytes is undecodable for strict
 * runtimes.  So packed messages are walked with their descriptor: requests
 * before protobuf-c unpacks them (refused when a text field holds a NUL or
 * invalid UTF-8), replies and events after they are packed (repaired, so a
 * client always gets a message it can decode).
 */
#ifndef GM_CORE_WIRE_H
#define GM_CORE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"

/* Nested messages deeper than this are refused (protobuf-c would recurse). */
#define GM__WIRE_MAX_DEPTH 32

/*
 * 0 when every string field of the packed message data[0..len) of type d,
 * nested messages included, is valid UTF-8 without NUL.  Otherwise -1 and
 * `why` says which field (dotted path) and what is wrong, in words safe to
 * put in a reply (no byte of the input is echoed).
 */
int gm__wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                   size_t len, char *why, size_t whylen);

/*
 * The last value of the top-level varint field `number` in the packed
 * message data[0..len), read without unpacking it (for a frame refused
 * before it is unpacked: its request_id, so the reply still reaches the
 * call that waits for it); 0 when the field is not there or the bytes stop
 * parsing before it.  Skips length-delimited fields without reading them.
 */
uint64_t gm__wire_top_varint(const uint8_t *data, size_t len, unsigned number);

/*
 * The packed message data[0..len) with every string field made valid UTF-8
 * (bad bytes become U+FFFD): data itself when nothing needed repair, else a
 * copy in arena a.  *out_len is the length.  NULL when the bytes do not
 * parse as a message (a packing bug).
 */
const uint8_t *gm__wire_repair(gm__arena *a,
                               const ProtobufCMessageDescriptor *d,
                               const uint8_t *data, size_t len,
                               size_t *out_len);

#endif
