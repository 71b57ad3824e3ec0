/*
 * The CLI's encoder (cli/codec.c): key=value words and JSON into messages
 * of any descriptor, and back to JSON and tables.  Input: a selector byte
 * (JSON or words), then the text; words are separated by NUL bytes.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_test.pb-c.h"
#include "greenmarket.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &gmtest__everything__descriptor, &gm__register_request__descriptor,
    &gm__stats_reply__descriptor, &gm__markets_reply__descriptor};

static void use(ProtobufCMessage *m) {
  json_t *j = gm_codec_to_json(m);
  char *text = json_dumps(j, JSON_COMPACT);
  free(text);
  json_decref(j);
  FILE *out = fopen("/dev/null", "w");
  gm_codec_print_table(out, m);
  fclose(out);
  protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  if (len < 1 || len > 4096) return 0;
  const ProtobufCMessageDescriptor *d =
      types[(data[0] >> 1) % (sizeof types / sizeof *types)];
  char *text = malloc(len);
  memcpy(text, data + 1, len - 1);
  text[len - 1] = '\0';
  char *err = NULL;
  ProtobufCMessage *m = NULL;
  if (data[0] & 1) {
    m = gm_codec_from_json(d, text, &err);
  } else {
    char *argv[64];
    int argc = 0;
    for (char *p = text; p < text + len - 1 && argc < 64; p += strlen(p) + 1)
      argv[argc++] = p;
    m = gm_codec_from_args(d, argc, argv, &err);
  }
  if (m) use(m);
  free(err);
  size_t n;
  uint8_t *b = gm_codec_base64_decode(text, &n);
  if (b) {
    char *e = gm_codec_base64_encode(b, n);
    free(e);
    free(b);
  }
  free(text);
  return 0;
}
