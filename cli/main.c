/*
 * gm: the greenmarket command line.  Global options are taken from any
 * position (so `gm ping --json` and `gm --json ping` both work, for a
 * market's friendly commands too); the first remaining word picks the
 * command, else the market.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

#define GM__DEFAULT_ENDPOINT "tcp://127.0.0.1:7470"
#define GM__DEFAULT_FEED "tcp://127.0.0.1:7471"

static void gm__help(FILE *out) {
  fprintf(out,
          "usage: gm [options] <command> [args]\n"
          "\n"
          "commands:\n"
          "  ping [TEXT]              check the broker answers\n"
          "  markets                  loaded markets and their methods\n"
          "  stats                    request/error/latency counters\n"
          "  whoami                   who the broker thinks you are\n"
          "  keygen [--out FILE]      make a CURVE key pair\n"
          "  admin register ID --roles R[,R] [--key Z85] [--name TEXT]\n"
          "  admin dead-letters [MARKET] [--limit N]   entries that did not "
          "settle\n"
          "  admin replay STREAM ID   put a dead letter back once fixed\n"
          "  watch [TOPIC...]         print feed events (Ctrl-C stops)\n"
          "  clock set TIME           set a manual test clock\n"
          "  <market> <method> [field=value ...] [--data JSON]\n"
          "                           call any method of any market\n"
          "  <market> --help          a market's methods (and friendly "
          "commands)\n"
          "\n"
          "options (anywhere on the line):\n"
          "  --endpoint URL     broker (GM_ENDPOINT; " GM__DEFAULT_ENDPOINT
          ")\n"
          "  --feed URL         event feed (GM_FEED; " GM__DEFAULT_FEED
          ")\n"
          "  --private-feed URL your private events (GM_PRIVATE_FEED; "
          "default: the\n"
          "                     feed's port + 1)\n"
          "  --as ID            development mode: act as participant ID "
          "(GM_AS)\n"
          "  --server-key KEY   broker's CURVE public key, or a file with it "
          "(GM_SERVER_KEY)\n"
          "  --key-file FILE    this client's key pair from `gm keygen` "
          "(GM_KEY_FILE)\n"
          "  --json             print JSON instead of tables\n"
          "  --timeout MS       per-attempt reply timeout (default 5000)\n"
          "  --retries N        resends after a timeout (default 2)\n"
          "  --plugin-dir DIR   where gm_<market>.so are (GM_PLUGIN_DIR)\n"
          "  --idempotency-key KEY  reuse a key to retry a mutating command "
          "safely\n"
          "  -v, --verbose      print idempotency keys and request ids\n"
          "  --version          print the version\n"
          "\n"
          "exit status: 0 ok, 1 error (printed as \"error: STATUS: "
          "message\"), 2 broker unreachable\n");
}

enum { GM__OPT_FLAG, GM__OPT_VALUE };

static const struct {
  const char *name;
  int kind;
} gm__globals[] = {
    {"endpoint", GM__OPT_VALUE},   {"feed", GM__OPT_VALUE},
    {"as", GM__OPT_VALUE},         {"server-key", GM__OPT_VALUE},
    {"key-file", GM__OPT_VALUE},   {"json", GM__OPT_FLAG},
    {"timeout", GM__OPT_VALUE},    {"retries", GM__OPT_VALUE},
    {"plugin-dir", GM__OPT_VALUE}, {"idempotency-key", GM__OPT_VALUE},
    {"verbose", GM__OPT_FLAG},     {"private-feed", GM__OPT_VALUE},
};

/* Holds the key material so cli->opts can point at it. */
typedef struct gm__keys {
  char server[41], pub[41], sec[41];
} gm__keys;

static int gm__set(gm_cli *cli, const char *name, const char *value,
                   const char **server_key, const char **key_file) {
  char *end;
  if (!strcmp(name, "endpoint"))
    cli->endpoint = value;
  else if (!strcmp(name, "feed"))
    cli->feed_endpoint = value;
  else if (!strcmp(name, "private-feed"))
    cli->opts.private_feed = value;
  else if (!strcmp(name, "as"))
    cli->opts.dev_participant = value;
  else if (!strcmp(name, "server-key"))
    *server_key = value;
  else if (!strcmp(name, "key-file"))
    *key_file = value;
  else if (!strcmp(name, "json"))
    cli->output = GM_CLI_OUTPUT_JSON;
  else if (!strcmp(name, "plugin-dir"))
    cli->plugin_dir = value;
  else if (!strcmp(name, "idempotency-key"))
    cli->idempotency_key = value;
  else if (!strcmp(name, "verbose"))
    cli->verbose = 1;
  else if (!strcmp(name, "timeout") || !strcmp(name, "retries")) {
    long v = strtol(value, &end, 10);
    if (*end || !*value || v < 0 || v > 3600000) {
      fprintf(stderr, "error: --%s needs a whole number, not \"%s\"\n", name,
              value);
      return -1;
    }
    if (!strcmp(name, "timeout"))
      cli->opts.timeout_ms = v ? (int)v : -1; /* 0: forever */
    else
      cli->opts.retries = v ? (int)v : -1; /* 0 in the struct means 2 */
  }
  return 0;
}

/*
 * Takes the global options out of argv wherever they are, before "--";
 * what remains (in order) is left in argv[0..*argc).
 */
static int gm__globals_take(gm_cli *cli, int *argc, char **argv,
                            const char **server_key, const char **key_file) {
  int out = 0;
  for (int i = 0; i < *argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      while (i < *argc) argv[out++] = argv[i++];
      break;
    }
    if (!strcmp(a, "-v")) {
      cli->verbose = 1;
      continue;
    }
    size_t k, n = sizeof gm__globals / sizeof gm__globals[0];
    if (strncmp(a, "--", 2)) goto keep;
    for (k = 0; k < n; k++) {
      size_t l = strlen(gm__globals[k].name);
      if (!strncmp(a + 2, gm__globals[k].name, l) &&
          (a[2 + l] == '\0' || a[2 + l] == '='))
        break;
    }
    if (k == n) goto keep;
    const char *value = NULL;
    size_t l = strlen(gm__globals[k].name);
    if (gm__globals[k].kind == GM__OPT_VALUE) {
      if (a[2 + l] == '=')
        value = a + 3 + l;
      else if (i + 1 < *argc)
        value = argv[++i];
      else {
        fprintf(stderr, "error: %s needs a value\n", a);
        return -1;
      }
    } else if (a[2 + l] == '=') {
      fprintf(stderr, "error: %s takes no value\n", a);
      return -1;
    }
    if (gm__set(cli, gm__globals[k].name, value, server_key, key_file))
      return -1;
    continue;
  keep:
    argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

/* Resolves --server-key (a key or a file holding one) and --key-file. */
static int gm__load_keys(gm_cli *cli, gm__keys *k, const char *server_key,
                         const char *key_file) {
  if (server_key && *server_key) {
    /* A readable file is a file, even with a 40-character path. */
    if (strlen(server_key) == 40 && access(server_key, R_OK) != 0) {
      memcpy(k->server, server_key, 41);
    } else {
      if (gm_key_file_read(server_key, k->server, NULL) != GM_OK) {
        fprintf(stderr,
                "error: --server-key \"%s\" is neither a 40-character Z85 "
                "key nor a readable file with a \"public = KEY\" line (%s)\n",
                server_key, gm_client_last_error());
        return -1;
      }
    }
    cli->opts.server_public_key = k->server;
  }
  if (key_file && *key_file) {
    if (gm_key_file_read(key_file, k->pub, k->sec) != GM_OK) {
      fprintf(stderr,
              "error: cannot read a key pair from %s (%s): make one with `gm "
              "keygen --out %s`\n",
              key_file, gm_client_last_error(), key_file);
      return -1;
    }
    cli->opts.public_key = k->pub;
    cli->opts.secret_key = k->sec;
    if (!cli->opts.server_public_key) {
      fprintf(stderr,
              "error: --key-file needs --server-key (the broker's "
              "public key) to use CURVE\n");
      return -1;
    }
  }
  return 0;
}

static const char *gm__env(const char *name, const char *def) {
  const char *v = getenv(name);
  return v && *v ? v : def;
}

int main(int argc, char **argv) {
  gm_cli cli;
  gm__keys keys;
  int code = GM_CLI_EXIT_ERROR;
  memset(&cli, 0, sizeof cli);
  memset(&keys, 0, sizeof keys);
  gm_client_options_init(&cli.opts);
  cli.endpoint = gm__env("GM_ENDPOINT", GM__DEFAULT_ENDPOINT);
  cli.feed_endpoint = gm__env("GM_FEED", GM__DEFAULT_FEED);
  cli.plugin_dir = gm__env("GM_PLUGIN_DIR", NULL);
  cli.opts.dev_participant = gm__env("GM_AS", NULL);
  cli.opts.private_feed = gm__env("GM_PRIVATE_FEED", NULL);
  const char *server_key = gm__env("GM_SERVER_KEY", NULL);
  const char *key_file = gm__env("GM_KEY_FILE", NULL);

  argc--;
  argv++;
  if (gm__globals_take(&cli, &argc, argv, &server_key, &key_file)) goto done;
  if (argc == 0 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") ||
      !strcmp(argv[0], "help")) {
    gm__help(argc ? stdout : stderr);
    code = argc ? GM_CLI_EXIT_OK : GM_CLI_EXIT_ERROR;
    goto done;
  }
  if (!strcmp(argv[0], "--version")) {
    printf("gm %s\n", GM_VERSION);
    code = GM_CLI_EXIT_OK;
    goto done;
  }
  if (argv[0][0] == '-') {
    fprintf(stderr, "error: unknown option %s (see gm --help)\n", argv[0]);
    goto done;
  }
  if (gm__load_keys(&cli, &keys, server_key, key_file)) goto done;

  static const struct {
    const char *name;
    int (*run)(gm_cli *, int, char **);
  } cmds[] = {{"ping", gm_cli_cmd_ping},     {"markets", gm_cli_cmd_markets},
              {"stats", gm_cli_cmd_stats},   {"whoami", gm_cli_cmd_whoami},
              {"keygen", gm_cli_cmd_keygen}, {"admin", gm_cli_cmd_admin},
              {"watch", gm_cli_cmd_watch},   {"clock", gm_cli_cmd_clock}};
  enum { NCMDS = sizeof cmds / sizeof cmds[0] };
  const char *names[NCMDS + 2];
  code = -1;
  for (size_t i = 0; i < NCMDS; i++) {
    names[i] = cmds[i].name;
    if (code < 0 && !strcmp(argv[0], cmds[i].name))
      code = cmds[i].run(&cli, argc, argv);
  }
  names[NCMDS] = "help";
  names[NCMDS + 1] = NULL;
  if (code < 0) code = gm_cli_cmd_market(&cli, argc, argv, names);

done:
  gm_client_destroy(&cli.client);
  if (cli.markets) protobuf_c_message_free_unpacked(cli.markets, NULL);
  gm_cli_plugins_close(&cli);
  explicit_bzero(&keys, sizeof keys);
  return code;
}
