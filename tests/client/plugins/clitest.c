/*
 * clitest: a market plugin whose friendly commands use every function of
 * gm's gm_cli_api table, for test_cli_ext.c, which runs the real gm
 * against the echo broker (each reply is the request's body).  Built with
 * CLITEST_BROKEN, it is "clibroken", whose extension is unusable (size 0),
 * so gm must warn and take the generic path.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/cli.h>
#include <greenmarket/plugin.h>

#include "clitest.pb-c.h"

/* Written in init only (the tests load it into gm, never into gmd). */
static const gm_host_api *host;

/* Both methods answer with the note they got, as the echo broker does. */
static gm_status clitest__handle(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Clitest__Note *in = (const Gm__Clitest__Note *)req;
  Gm__Clitest__Note *out = host->alloc(call, sizeof *out);
  gm__clitest__note__init(out);
  out->text = host->sprintf(call, "%s", in->text);
  out->n = in->n;
  *reply = &out->base;
  return GM_OK;
}

static gm_status clitest__init(gm_market *m, const gm_host_api *h) {
  (void)m;
  host = h;
  return GM_OK;
}

static void clitest__shutdown(gm_market *m) {
  (void)m;
}

/* `gm clitest WORD ...`: one word per function of the table. */
static int clitest__run(gm_cli *cli, const gm_cli_api *api, int argc,
                        char **argv) {
  Gm__Clitest__Note note = GM__CLITEST__NOTE__INIT;
  ProtobufCMessage *reply;
  const char *word = argv[0];
  if (!strcmp(word, "say") || !strcmp(word, "keep")) {
    /* say TEXT: a read; keep TEXT...: one mutation per TEXT. */
    for (int i = 1; i < argc || i == 1; i++) {
      note.text = i < argc ? argv[i] : "";
      note.n = argc;
      int code = api->call(cli, "clitest", word, &note.base, &reply);
      if (code != GM_CLI_EXIT_OK) return code;
      if (api->json(cli))
        api->print(cli, reply);
      else
        printf("%s said: %s\n", word, ((Gm__Clitest__Note *)reply)->text);
      protobuf_c_message_free_unpacked(reply, NULL);
      if (word[0] == 's') break;
    }
    return GM_CLI_EXIT_OK;
  }
  if (!strcmp(word, "quiet")) {
    gm_status status;
    const char *message;
    note.text = "quietly";
    int code = api->call_quiet(cli, "clitest", "say", &note.base, &reply,
                               &status, &message);
    printf("code %d status %d message [%s] reply %s\n", code, (int)status,
           message, reply ? ((Gm__Clitest__Note *)reply)->text : "(none)");
    if (reply) protobuf_c_message_free_unpacked(reply, NULL);
    return code;
  }
  if (!strcmp(word, "fail"))
    return api->error(cli, GM_INVALID_ARGUMENT, "%s is %d tonnes too many",
                      argc > 1 ? argv[1] : "that", 3);
  if (!strcmp(word, "flags")) {
    printf("json %d verbose %d\n", api->json(cli), api->verbose(cli));
    return GM_CLI_EXIT_OK;
  }
  if (!strcmp(word, "when")) {
    int64_t ms;
    if (argc < 2 || api->parse_time(argv[1], &ms))
      return api->error(cli, GM_INVALID_ARGUMENT,
                        "\"%s\" is not a time; write 2026-11-24T09:30:00+08:00",
                        argc > 1 ? argv[1] : "");
    printf("%" PRId64 "\n", ms);
    return GM_CLI_EXIT_OK;
  }
  if (!strcmp(word, "count")) {
    /* A long job: one call per step, the progress line redrawn. */
    if (!GM_CLI_API_HAS(api, progress_end))
      return api->error(cli, GM_UNIMPLEMENTED, "this gm draws no progress");
    int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 3;
    for (int64_t i = 0; i < n; i++) {
      note.text = "step";
      note.n = i;
      int code = api->call(cli, "clitest", "say", &note.base, &reply);
      if (code != GM_CLI_EXIT_OK) return code;
      protobuf_c_message_free_unpacked(reply, NULL);
      api->progress(cli, "counting", i + 1, n);
    }
    api->progress_end(cli);
    printf("counted %" PRId64 "\n", n);
    return GM_CLI_EXIT_OK;
  }
  return GM_CLI_NOT_MINE;
}

static void clitest__help(FILE *out) {
  fprintf(out, "friendly commands:\n  gm clitest say TEXT\n");
}

static const struct gm_cli_extension clitest__cli = {
#ifdef CLITEST_BROKEN
    .size = 0,
#else
    .size = sizeof(struct gm_cli_extension),
#endif
    .run = clitest__run,
    .help = clitest__help,
};

static const gm_method clitest__methods[] = {
    {"say", &gm__clitest__note__descriptor, &gm__clitest__note__descriptor,
     clitest__handle, 0, NULL, "say a note back"},
    {"keep", &gm__clitest__note__descriptor, &gm__clitest__note__descriptor,
     clitest__handle, GM_METHOD_MUTATING, NULL, "keep a note"},
};

static const gm_plugin clitest__plugin = {
    .size = sizeof(gm_plugin),
#ifdef CLITEST_BROKEN
    .name = "clibroken",
#else
    .name = "clitest",
#endif
    .version = "1.0.0",
    .description = "the friendly commands of gm's tests",
    .methods = clitest__methods,
    .n_methods = sizeof clitest__methods / sizeof clitest__methods[0],
    .init = clitest__init,
    .shutdown = clitest__shutdown,
    .cli = &clitest__cli,
};

GM_PLUGIN_DEFINE(clitest__plugin)
