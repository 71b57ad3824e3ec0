/*
 * Calling the broker from `gm`: the shared call path, printing, and the
 * generic `gm <market> <method> field=value...` command.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commands.h"
#include "greenmarket.pb-c.h"

gm_client *gm_cli_client(gm_cli *cli) {
  if (!cli->client) {
    cli->client = gm_client_new(cli->endpoint, &cli->opts);
    if (!cli->client) fprintf(stderr, "error: %s\n", gm_client_last_error());
  }
  return cli->client;
}

int gm_cli_fail(const gm_result *r) {
  fprintf(stderr, "error: %s: %s\n", gm_status_name(r->status),
          r->message && *r->message ? r->message : "(no message)");
  /* Only a broker that never answered is "unreachable"; its own
   * UNAVAILABLE (say, Redis is down) is an ordinary error reply. */
  return r->status == GM_UNAVAILABLE && !r->answered ? GM_CLI_EXIT_UNAVAILABLE
                                                     : GM_CLI_EXIT_ERROR;
}

const Gm__MarketsReply *gm_cli_markets(gm_cli *cli, int *exit_code) {
  if (cli->markets) return (const Gm__MarketsReply *)cli->markets;
  gm_client *c = gm_cli_client(cli);
  gm_result r;
  if (!c) {
    *exit_code = GM_CLI_EXIT_ERROR;
    return NULL;
  }
  if (gm_client_call(c, "gm", "markets", NULL, NULL,
                     &gm__markets_reply__descriptor, &r) != GM_OK) {
    *exit_code = gm_cli_fail(&r);
    gm_result_clear(&r);
    return NULL;
  }
  cli->markets = r.reply;
  r.reply = NULL;
  gm_result_clear(&r);
  return (const Gm__MarketsReply *)cli->markets;
}

/*
 * Whether market.method is mutating, per the broker's markets reply (the
 * core methods per the built-in table).  Returns 0 or 1, or -1 after
 * printing why (broker down, unknown market or method).
 */
static int gm__mutating(gm_cli *cli, const char *market, const char *method,
                        int *exit_code) {
  if (!strcmp(market, "gm")) {
    const gm_method *m = gm_cli_method(cli, market, method);
    return m && (m->flags & GM_METHOD_MUTATING);
  }
  const Gm__MarketsReply *mr = gm_cli_markets(cli, exit_code);
  if (!mr) return -1;
  for (size_t i = 0; i < mr->n_markets; i++) {
    const Gm__MarketInfo *mi = mr->markets[i];
    if (strcmp(mi->name, market)) continue;
    for (size_t k = 0; k < mi->n_methods; k++)
      if (!strcmp(mi->methods[k]->name, method))
        return mi->methods[k]->mutating ? 1 : 0;
    fprintf(stderr,
            "error: NOT_FOUND: the broker at %s has no method %s.%s; run "
            "`gm %s --help` for the list\n",
            cli->endpoint, market, method, market);
    *exit_code = GM_CLI_EXIT_ERROR;
    return -1;
  }
  fprintf(stderr, "error: NOT_FOUND: the broker at %s has no market \"%s\";",
          cli->endpoint, market);
  for (size_t i = 0; i < mr->n_markets; i++)
    fprintf(stderr, "%s %s", i ? "," : " it has", mr->markets[i]->name);
  fprintf(stderr, "\n");
  *exit_code = GM_CLI_EXIT_ERROR;
  return -1;
}

int gm_cli_call(gm_cli *cli, const char *market, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply) {
  int code = GM_CLI_EXIT_ERROR;
  *reply = NULL;
  const gm_method *m = gm_cli_method(cli, market, method);
  if (!m) {
    gm_cli_method_error(cli, market, method);
    return GM_CLI_EXIT_ERROR;
  }
  int mutating = gm__mutating(cli, market, method, &code);
  if (mutating < 0) return code;
  gm_client *c = gm_cli_client(cli);
  if (!c) return GM_CLI_EXIT_ERROR;

  char fresh[33];
  const char *key = NULL;
  if (mutating) {
    key = cli->idempotency_key;
    if (!key) {
      if (gm_client_new_idempotency_key(fresh) != GM_OK) {
        fprintf(stderr,
                "error: INTERNAL: getrandom() failed making an "
                "idempotency key; pass --idempotency-key\n");
        return GM_CLI_EXIT_ERROR;
      }
      key = fresh;
    }
    if (cli->verbose)
      fprintf(stderr,
              "idempotency key: %s (to retry safely: --idempotency-key %s)\n",
              key, key);
  }
  gm_result r;
  gm_client_call(c, market, method, key, req, m->reply, &r);
  if (cli->verbose)
    fprintf(stderr, "request %llu: %s\n", (unsigned long long)r.request_id,
            gm_status_name(r.status));
  if (r.status != GM_OK) {
    code = gm_cli_fail(&r);
  } else {
    *reply = r.reply;
    r.reply = NULL;
    code = GM_CLI_EXIT_OK;
  }
  gm_result_clear(&r);
  return code;
}

void gm_cli_print(gm_cli *cli, const ProtobufCMessage *msg) {
  if (cli->output == GM_CLI_OUTPUT_JSON) {
    json_t *j = gm_codec_to_json(msg);
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s) puts(s);
    free(s);
    json_decref(j);
  } else {
    gm_codec_print_table(stdout, msg);
  }
  fflush(stdout);
}

int gm_cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) return 0;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  }
  return 0;
}

static const struct gm_cli_extension *gm__extension(const char *market) {
  for (size_t i = 0; gm_cli_extensions[i]; i++)
    if (!strcmp(gm_cli_extensions[i]->market, market))
      return gm_cli_extensions[i];
  return NULL;
}

static void gm__market_help(gm_cli *cli, const char *market,
                            const struct gm_cli_extension *ext) {
  const char *why;
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why);
  printf("usage: gm %s <method> [field=value ...] [--data JSON]\n", market);
  if (ext && ext->help) {
    printf("\n");
    ext->help(stdout);
  }
  if (!p) {
    printf("\nmethods: unknown here (%s)\n", why);
    return;
  }
  printf("\n%s %s: %s\n\nmethods (`gm %s <method> --help` for fields):\n",
         p->name, p->version ? p->version : "",
         p->description ? p->description : "", market);
  for (size_t i = 0; i < p->n_methods; i++) {
    const gm_method *m = &p->methods[i];
    printf("  %-22s %s%s%s%s%s\n", m->name, m->summary ? m->summary : "",
           m->flags & GM_METHOD_MUTATING ? " [mutating]" : "",
           m->roles ? " [" : "", m->roles ? m->roles : "", m->roles ? "]" : "");
  }
}

static void gm__method_help(const char *market, const gm_method *m) {
  printf("usage: gm %s %s [field=value ...] [--data JSON|@FILE|-]%s\n\n",
         market, m->name,
         m->flags & GM_METHOD_MUTATING ? " [--idempotency-key KEY]" : "");
  if (m->summary) printf("%s\n\n", m->summary);
  printf("request %s:\n", m->request->name);
  gm_codec_print_fields(stdout, m->request);
  printf("\nreply %s:\n", m->reply->name);
  gm_codec_print_fields(stdout, m->reply);
  printf(
      "\nnested fields: a.b=1; repeated: give the key again; enums by "
      "name or number; bytes in base64.\n");
  if (m->flags & GM_METHOD_MUTATING)
    printf(
        "mutating: a fresh idempotency key is sent unless "
        "--idempotency-key is given (-v prints it).\n");
}

/* The text of --data: inline JSON, @FILE, or - for standard input. */
static char *gm__read_data(const char *arg) {
  FILE *f = NULL;
  if (!strcmp(arg, "-"))
    f = stdin;
  else if (arg[0] == '@')
    f = fopen(arg + 1, "r");
  else
    return strdup(arg);
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  char chunk[4096];
  size_t n;
  while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    fwrite(chunk, 1, n, mem);
  if (mem) fclose(mem);
  if (f != stdin) fclose(f);
  return buf;
}

int gm_cli_cmd_market(gm_cli *cli, int argc, char **argv) {
  const char *market = argv[0];
  const struct gm_cli_extension *ext = gm__extension(market);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    gm__market_help(cli, market, ext);
    return argc < 2 ? GM_CLI_EXIT_ERROR : GM_CLI_EXIT_OK;
  }
  if (ext && ext->run) {
    int rc = ext->run(cli, argc - 1, argv + 1);
    if (rc != GM_CLI_NOT_MINE) return rc;
  }

  const char *method = argv[1];
  const gm_method *m = gm_cli_method(cli, market, method);
  if (!m) {
    gm_cli_method_error(cli, market, method);
    return GM_CLI_EXIT_ERROR;
  }
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *data = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "d:h", opts, NULL)) != -1) {
    if (c == 'd')
      data = optarg;
    else if (c == 'h') {
      gm__method_help(market, m);
      return GM_CLI_EXIT_OK;
    } else {
      fprintf(stderr, "see `gm %s %s --help`\n", market, method);
      return GM_CLI_EXIT_ERROR;
    }
  }
  int nfields = argc - 1 - optind;
  char **fields = argv + 1 + optind;
  char *err = NULL;
  ProtobufCMessage *req = NULL, *reply = NULL;
  if (data && nfields) {
    fprintf(stderr,
            "error: give the request either as --data JSON or as "
            "field=value words, not both\n");
    return GM_CLI_EXIT_ERROR;
  }
  if (data) {
    char *text = gm__read_data(data);
    if (!text) {
      fprintf(stderr, "error: cannot read --data %s: %m\n", data);
      return GM_CLI_EXIT_ERROR;
    }
    req = gm_codec_from_json(m->request, text, &err);
    free(text);
  } else {
    req = gm_codec_from_args(m->request, nfields, fields, &err);
  }
  if (!req) {
    fprintf(stderr, "error: INVALID_ARGUMENT: %s (see `gm %s %s --help`)\n",
            err ? err : "bad request", market, method);
    free(err);
    return GM_CLI_EXIT_ERROR;
  }
  int code = gm_cli_call(cli, market, method, req, &reply);
  if (code == GM_CLI_EXIT_OK) gm_cli_print(cli, reply);
  protobuf_c_message_free_unpacked(req, NULL);
  if (reply) protobuf_c_message_free_unpacked(reply, NULL);
  return code;
}
