/*
 * The hello market's friendly commands, run by `gm` from gm_hello.so
 * (docs/plugins.md, "Friendly commands"):
 *
 *   gm hello sign TEXT...       signs the guestbook, prints the entry number
 *   gm hello sign --file FILE   signs once per line of FILE (- : standard
 *                               input), with progress on a terminal
 *
 * Every other word (`gm hello greet name=world`) takes gm's generic path.
 * Everything asked of gm goes through the gm_cli_api table: this file
 * links no gm symbol.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/cli.h>

#include "hello.pb-c.h"

static const char hello__usage[] =
    "gm hello sign TEXT...        sign the guestbook; prints your entry's "
    "number\n"
    "gm hello sign --file FILE    sign once per line of FILE (- for standard "
    "input);\n"
    "                             a refused line is reported and skipped\n";

/* Signs one message; prints the entry number (or the reply, with --json). */
static int hello__sign_text(gm_cli *cli, const gm_cli_api *api, char *text) {
  Gm__Hello__SignRequest req = GM__HELLO__SIGN_REQUEST__INIT;
  ProtobufCMessage *reply;
  req.message = text;
  int code = api->call(cli, "hello", "sign", &req.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (api->json(cli))
    api->print(cli, reply);
  else
    printf("signed: entry %lld in the guestbook\n",
           (long long)((Gm__Hello__SignReply *)reply)->number);
  protobuf_c_message_free_unpacked(reply, NULL);
  return GM_CLI_EXIT_OK;
}

/* The lines of `path` ("-": standard input), without their line ends. */
static char **hello__read_lines(const char *path, size_t *n) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  char **lines = NULL, *line = NULL;
  size_t cap = 0, len = 0;
  ssize_t got;
  *n = 0;
  if (!f) return NULL;
  while ((got = getline(&line, &len, f)) >= 0) {
    while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
      line[--got] = '\0';
    if (*n == cap) {
      char **more = realloc(lines, (cap = cap ? cap * 2 : 64) * sizeof *more);
      if (!more) break;
      lines = more;
    }
    lines[(*n)++] = line;
    line = NULL;
    len = 0;
  }
  free(line);
  if (f != stdin) fclose(f);
  return lines ? lines : calloc(1, sizeof *lines);
}

/*
 * Signs every non-empty line: a line the market refuses is reported and
 * skipped (exit 1 at the end); a broker that stops answering stops the run
 * (exit 2).  Rerun with the same --idempotency-key, it signs nothing twice.
 */
static int hello__sign_file(gm_cli *cli, const gm_cli_api *api,
                            const char *path) {
  size_t n, signed_n = 0, refused = 0, total = 0;
  char **lines = hello__read_lines(path, &n);
  int code = GM_CLI_EXIT_OK;
  if (!lines)
    return api->error(cli, GM_INVALID_ARGUMENT,
                      "cannot read %s: %s; give a readable file, or - for "
                      "standard input",
                      path, strerror(errno));
  for (size_t i = 0; i < n; i++) total += lines[i][0] != '\0';
  for (size_t i = 0; i < n && code != GM_CLI_EXIT_UNAVAILABLE; i++) {
    if (!lines[i][0]) continue;
    Gm__Hello__SignRequest req = GM__HELLO__SIGN_REQUEST__INIT;
    ProtobufCMessage *reply;
    gm_status status;
    const char *why;
    req.message = lines[i];
    code =
        api->call_quiet(cli, "hello", "sign", &req.base, &reply, &status, &why);
    if (code == GM_CLI_EXIT_OK) {
      signed_n++;
      if (api->json(cli)) api->print(cli, reply);
      protobuf_c_message_free_unpacked(reply, NULL);
    } else if (code == GM_CLI_EXIT_UNAVAILABLE) {
      api->error(cli, status, "%s (at line %zu of %s; %zu signed)", why, i + 1,
                 path, signed_n);
    } else {
      refused++;
      api->error(cli, status, "line %zu of %s: %s; skipped", i + 1, path, why);
    }
    api->progress(cli, "signing", (int64_t)(signed_n + refused),
                  (int64_t)total);
  }
  api->progress_end(cli);
  if (!api->json(cli) && code != GM_CLI_EXIT_UNAVAILABLE)
    printf("signed %zu of %zu lines; %zu refused%s\n", signed_n, total, refused,
           refused ? " (see above)" : "");
  for (size_t i = 0; i < n; i++) free(lines[i]);
  free(lines);
  if (code == GM_CLI_EXIT_UNAVAILABLE) return code;
  return refused ? GM_CLI_EXIT_ERROR : GM_CLI_EXIT_OK;
}

static int hello__run(gm_cli *cli, const gm_cli_api *api, int argc,
                      char **argv) {
  static const struct option opts[] = {{"file", required_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *file = NULL;
  int c;
  if (strcmp(argv[0], "sign")) return GM_CLI_NOT_MINE;
  optind = 0; /* 0: GNU getopt starts over for this argv */
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
    if (c == 'f') {
      file = optarg;
    } else if (c == 'h') {
      printf("usage: %s", hello__usage);
      return GM_CLI_EXIT_OK;
    } else {
      fprintf(stderr, "error: unknown option or missing value: %s\nusage: %s",
              argv[optind - 1], hello__usage);
      return GM_CLI_EXIT_ERROR;
    }
  }
  if (file && optind < argc) {
    fprintf(stderr, "error: give TEXT or --file FILE, not both\nusage: %s",
            hello__usage);
    return GM_CLI_EXIT_ERROR;
  }
  if (file) return hello__sign_file(cli, api, file);
  if (optind == argc) {
    fprintf(stderr, "error: sign needs the TEXT to sign\nusage: %s",
            hello__usage);
    return GM_CLI_EXIT_ERROR;
  }
  /* The words are the message, as `echo` joins them. */
  size_t len = 1;
  for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
  char *text = calloc(1, len);
  if (!text) return api->error(cli, GM_RESOURCE_EXHAUSTED, "out of memory");
  for (int i = optind; i < argc; i++) {
    if (i > optind) strcat(text, " ");
    strcat(text, argv[i]);
  }
  int code = hello__sign_text(cli, api, text);
  free(text);
  return code;
}

static void hello__help(FILE *out) {
  fprintf(out, "friendly commands:\n");
  for (const char *p = hello__usage; *p;) {
    size_t n = strcspn(p, "\n");
    fprintf(out, "  %.*s\n", (int)n, p);
    p += n + (p[n] == '\n');
  }
}

/* gm_plugin.cli of hello.c. */
const struct gm_cli_extension hello__cli = {
    .size = sizeof(struct gm_cli_extension),
    .run = hello__run,
    .help = hello__help,
};
