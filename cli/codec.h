/*
 * A protobuf codec driven by descriptors alone, so `gm` can build and print
 * the messages of any market without generated code: key=value arguments
 * and JSON in, JSON and readable tables out.
 *
 * Messages returned here are owned by the caller and freed with
 * protobuf_c_message_free_unpacked(m, NULL): they are built in a scratch
 * arena, packed, and unpacked, so protobuf-c owns every byte.
 */
#ifndef GM_CLI_CODEC_H
#define GM_CLI_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/*
 * Builds a message of type `d` from "field=value" words.  Nested fields use
 * dotted names (a.b=1); a repeated field takes the key again (tag=x tag=y);
 * in a repeated message, naming a field its last element already has starts
 * a new element.  A value starting with '{' or '[' is read as JSON.  On
 * error returns NULL and sets *err (free()) to a message naming the field.
 */
ProtobufCMessage *gm_codec_from_args(const ProtobufCMessageDescriptor *d,
                                     int argc, char *const *argv, char **err);

/* Builds a message of type `d` from JSON text (an object). */
ProtobufCMessage *gm_codec_from_json(const ProtobufCMessageDescriptor *d,
                                     const char *text, char **err);

/*
 * Builds a message of type `d` from a JSON object.  Numbers may be JSON
 * numbers or strings (for 64-bit values past 2^53); enums a name or number;
 * bytes base64; nested messages objects; repeated fields arrays.
 */
ProtobufCMessage *gm_codec_from_value(const ProtobufCMessageDescriptor *d,
                                      const json_t *obj, char **err);

/*
 * The message as a JSON object: every field without presence is shown even
 * at its zero value, enums by name, bytes base64, uint64 past INT64_MAX as
 * a string.  Returns a new reference.
 */
json_t *gm_codec_to_json(const ProtobufCMessage *m);

/*
 * Prints `m` readably: "name  value" lines (nested fields dotted), repeated
 * scalars comma-separated, repeated messages as rows under a header line.
 */
void gm_codec_print_table(FILE *out, const ProtobufCMessage *m);

/* Lists the fields of `d` with their types, for --help. */
void gm_codec_print_fields(FILE *out, const ProtobufCMessageDescriptor *d);

/* Base64 (RFC 4648, padded).  Returns malloc()ed memory; NULL on error. */
char *gm_codec_base64_encode(const uint8_t *data, size_t len);
uint8_t *gm_codec_base64_decode(const char *text, size_t *len);

#endif /* GM_CLI_CODEC_H */
