/*
 * Calling the broker from `gm`: the shared call path, printing, and the
 * generic `gm <market> <method> field=value...` command.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
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

/* Only a broker that never answered is "unreachable"; its own UNAVAILABLE
 * (say, Redis is down) is an ordinary error reply. */
static int gm__exit_code(const gm_result *r) {
  if (r->status == GM_OK) return GM_CLI_EXIT_OK;
  return r->status == GM_UNAVAILABLE && !r->answered ? GM_CLI_EXIT_UNAVAILABLE
                                                     : GM_CLI_EXIT_ERROR;
}

int gm_cli_fail(const gm_result *r) {
  fprintf(stderr, "error: %s: %s\n", gm_status_name(r->status),
          r->message && *r->message ? r->message : "(no message)");
  return gm__exit_code(r);
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

/* The broker's limit on an idempotency key's length. */
#define GM_CLI__MAX_KEY 128
/* The longest --idempotency-key gm takes: room for ".N" up to 9,999,999
   calls, so a command never finds out halfway that its key is too long. */
#define GM_CLI__MAX_USER_KEY 120

/* gm's own refusal, shaped like the library's (answered stays 0). */
static int gm__refuse(gm_result *r, gm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int gm__refuse(gm_result *r, gm_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  r->status = status;
  if (vasprintf(&r->message, fmt, ap) < 0) r->message = NULL;
  va_end(ap);
  return GM_CLI_EXIT_ERROR;
}

int gm_cli_call_ex(gm_cli *cli, const char *market, const char *method,
                   const ProtobufCMessage *req, ProtobufCMessage **reply,
                   gm_result *r, int quiet) {
  memset(r, 0, sizeof *r);
  *reply = NULL;
  /* The plugin's own flags say whether the method mutates: gm asks the
   * broker nothing before the call itself. */
  const gm_method *m = gm_cli_method(cli, market, method);
  if (!m) {
    if (!quiet) gm_cli_method_error(cli, market, method);
    return gm__refuse(r, GM_NOT_FOUND,
                      "market \"%s\" has no method \"%s\" in its plugin "
                      "(see `gm %s --help`)",
                      market, method, market);
  }
  if (!cli->client) {
    cli->client = gm_client_new(cli->endpoint, &cli->opts);
    if (!cli->client) {
      if (!quiet) fprintf(stderr, "error: %s\n", gm_client_last_error());
      return gm__refuse(r, GM_INVALID_ARGUMENT, "%s", gm_client_last_error());
    }
  }

  /*
   * One key per run of gm, the n-th mutating call sending "<key>.<n>" from
   * the second on: a command that makes several calls (an import, a mass
   * cancel) run again with the same --idempotency-key replays each step
   * instead of repeating it, or sending one key for different requests.
   */
  char key[160];
  int mutating = (m->flags & GM_METHOD_MUTATING) != 0;
  if (mutating) {
    if (!cli->idempotency_key && !cli->fresh_key[0] &&
        gm_client_new_idempotency_key(cli->fresh_key) != GM_OK) {
      static const char why[] =
          "getrandom() failed making an idempotency key; pass "
          "--idempotency-key";
      if (!quiet) fprintf(stderr, "error: INTERNAL: %s\n", why);
      return gm__refuse(r, GM_INTERNAL, "%s", why);
    }
    const char *base =
        cli->idempotency_key ? cli->idempotency_key : cli->fresh_key;
    size_t given = strlen(base);
    if (given > GM_CLI__MAX_USER_KEY) {
      char why[200];
      snprintf(why, sizeof why,
               "--idempotency-key is %zu characters; gm takes at most %d "
               "(a command that makes several calls sends KEY.2, KEY.3, ... "
               "and the broker's limit is %d)",
               given, GM_CLI__MAX_USER_KEY, GM_CLI__MAX_KEY);
      if (!quiet) fprintf(stderr, "error: INVALID_ARGUMENT: %s\n", why);
      return gm__refuse(r, GM_INVALID_ARGUMENT, "%s", why);
    }
    unsigned n = ++cli->mutations;
    int len = n == 1 ? snprintf(key, sizeof key, "%s", base)
                     : snprintf(key, sizeof key, "%s.%u", base, n);
    if (len < 0 || len > GM_CLI__MAX_KEY) {
      static const char why[] =
          "this command made more calls than its idempotency key can number "
          "(KEY.N must stay within 128 characters); run it on fewer items";
      if (!quiet) fprintf(stderr, "error: INVALID_ARGUMENT: %s\n", why);
      return gm__refuse(r, GM_INVALID_ARGUMENT, "%s", why);
    }
    if (cli->verbose)
      fprintf(stderr,
              "idempotency key: %s (to retry safely: --idempotency-key %s)\n",
              key, base);
  }
  gm_client_call(cli->client, market, method, mutating ? key : NULL, req,
                 m->reply, r);
  if (cli->verbose)
    fprintf(stderr, "request %llu: %s\n", (unsigned long long)r->request_id,
            gm_status_name(r->status));
  if (r->status != GM_OK) return quiet ? gm__exit_code(r) : gm_cli_fail(r);
  *reply = r->reply;
  r->reply = NULL;
  return GM_CLI_EXIT_OK;
}

int gm_cli_call(gm_cli *cli, const char *market, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply) {
  gm_result r;
  int code = gm_cli_call_ex(cli, market, method, req, reply, &r, 0);
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

static void gm__market_help(const char *market, const gm_plugin *p,
                            const struct gm_cli_extension *ext) {
  printf("usage: gm %s <method> [field=value ...] [--data JSON]\n", market);
  if (ext && ext->help) {
    printf("\n");
    fflush(stdout);
    ext->help(stdout);
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

/* Levenshtein distance of two short words (longer ones: far apart). */
static size_t gm__distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[65];
  if (la > 64 || lb > 64) return (size_t)-1;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Keeps in best the candidate nearest to `word` within a typo's reach. */
static void gm__consider(const char *word, const char *cand, char best[65],
                         size_t *best_d) {
  size_t d = gm__distance(word, cand), len = strlen(word);
  size_t reach = len <= 4 ? 1 : 2;
  /* A prefix of 3 or more letters names what it starts ("mark"). */
  if (len >= 3 && !strncmp(cand, word, len)) d = d < reach ? d : reach;
  if (d <= reach && d < *best_d) {
    snprintf(best, 65, "%s", cand);
    *best_d = d;
  }
}

/*
 * `gm MARKET WORD` where WORD is neither a friendly command of the market
 * nor one of its methods: the nearest of those within a typo's reach, then
 * the methods.  The friendly commands are read off the usage the plugin
 * prints (each line's word after "gm MARKET ").
 */
static void gm__no_word(const char *market, const gm_plugin *p,
                        const struct gm_cli_extension *ext, const char *word) {
  char best[65] = "";
  size_t best_d = (size_t)-1;
  for (size_t i = 0; i < p->n_methods; i++)
    if (p->methods[i].name)
      gm__consider(word, p->methods[i].name, best, &best_d);
  char *text = NULL;
  size_t len = 0;
  FILE *f = ext && ext->help ? open_memstream(&text, &len) : NULL;
  if (f) {
    ext->help(f);
    fclose(f);
    char lead[80];
    int n = snprintf(lead, sizeof lead, "gm %s ", market);
    for (char *at = text; n > 0 && (size_t)n < sizeof lead && at &&
                          (at = strstr(at, lead)) != NULL;) {
      at += n;
      char cmd[65];
      size_t k = 0;
      while (k < sizeof cmd - 1 &&
             (isalnum((unsigned char)at[k]) || at[k] == '-' || at[k] == '.' ||
              at[k] == '_'))
        cmd[k] = at[k], k++;
      cmd[k] = '\0';
      if (k) gm__consider(word, cmd, best, &best_d);
    }
  }
  free(text);
  fprintf(stderr, "error: market \"%s\" has no command or method \"%s\"",
          market, word);
  if (*best) fprintf(stderr, "; did you mean \"%s\"?", best);
  fprintf(stderr, "\nits methods:");
  for (size_t i = 0; i < p->n_methods; i++)
    fprintf(stderr, " %s", p->methods[i].name);
  fprintf(stderr, "\n(see `gm %s --help`)\n", market);
}

/*
 * `gm WORD` where WORD is no command and no plugin is found for it: the
 * nearest command or market, and the markets there are (the broker's when
 * it answers within a second, else the plugins found here).
 */
static int gm__no_market(gm_cli *cli, const char *word, const char *why,
                         const char *const *commands) {
  char best[65] = "", loaded[1024] = "", here[1024] = "", dirs[2048] = "";
  size_t best_d = (size_t)-1;
  for (size_t i = 0; commands[i]; i++)
    gm__consider(word, commands[i], best, &best_d);
  gm__consider(word, "gm", best, &best_d);

  /* A typo should not wait out the full timeout and its retries. */
  gm_client_options o = cli->opts;
  o.timeout_ms = o.timeout_ms > 0 && o.timeout_ms < 1000 ? o.timeout_ms : 1000;
  o.retries = -1;
  gm_client *c = gm_client_new(cli->endpoint, &o);
  gm_result r;
  memset(&r, 0, sizeof r);
  if (c)
    gm_client_call(c, "gm", "markets", NULL, NULL,
                   &gm__markets_reply__descriptor, &r);
  const Gm__MarketsReply *mr =
      c && r.status == GM_OK ? (const Gm__MarketsReply *)r.reply : NULL;
  for (size_t i = 0; mr && i < mr->n_markets; i++) {
    const char *name = mr->markets[i]->name;
    /* The broker has it, this machine lacks its plugin: a setup fix. */
    if (!strcmp(name, word)) {
      fprintf(stderr, "error: %s\n", why);
      gm_result_clear(&r);
      gm_client_destroy(&c);
      return GM_CLI_EXIT_ERROR;
    }
    if (!strcmp(name, "gm")) continue; /* the core's own */
    gm__consider(word, name, best, &best_d);
    size_t used = strlen(loaded);
    snprintf(loaded + used, sizeof loaded - used, "%s%s", used ? ", " : "",
             name);
  }
  if (!mr) {
    gm_cli_local_markets(cli, here, sizeof here, dirs, sizeof dirs);
    char *copy = strdup(here), *save;
    for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t;
         t = strtok_r(NULL, ", ", &save))
      gm__consider(word, t, best, &best_d);
    free(copy);
  }
  fprintf(stderr, "error: no command or market \"%s\"", word);
  if (*best) fprintf(stderr, "; did you mean \"%s\"?", best);
  if (mr)
    fprintf(stderr,
            "\nloaded markets: %s (gm markets lists them); commands: gm "
            "--help\n",
            *loaded ? loaded : "none (see [plugins] load in gmd.conf)");
  else if (*here)
    fprintf(stderr,
            "\nthe broker at %s did not answer; plugins found in %s: %s; "
            "commands: gm --help\n",
            cli->endpoint, dirs, here);
  else
    fprintf(stderr,
            "\nthe broker at %s did not answer and no gm_<market>.so is in "
            "%s (point --plugin-dir or GM_PLUGIN_DIR at the plugins); "
            "commands: gm --help\n",
            cli->endpoint, dirs);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  return GM_CLI_EXIT_ERROR;
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

int gm_cli_cmd_market(gm_cli *cli, int argc, char **argv,
                      const char *const *commands) {
  const char *market = argv[0], *why;
  int missing;
  const gm_plugin *p = gm_cli_load_plugin(cli, market, &why, &missing);
  if (!p) {
    if (missing) return gm__no_market(cli, market, why, commands);
    fprintf(stderr, "error: %s\n", why);
    return GM_CLI_EXIT_ERROR;
  }
  const struct gm_cli_extension *ext = gm_cli_extension_of(p, market);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    gm__market_help(market, p, ext);
    return argc < 2 ? GM_CLI_EXIT_ERROR : GM_CLI_EXIT_OK;
  }
  if (ext) {
    int rc = ext->run(cli, gm_cli_services(), argc - 1, argv + 1);
    gm_cli_services()->progress_end(cli);
    fflush(stdout);
    if (rc != GM_CLI_NOT_MINE) return rc < 0 ? GM_CLI_EXIT_ERROR : rc;
  }

  const char *method = argv[1];
  const gm_method *m = gm_cli_method(cli, market, method);
  if (!m) {
    gm__no_word(market, p, ext, method);
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
