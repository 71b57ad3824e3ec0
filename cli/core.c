/*
 * The core commands of `gm`: ping, markets, stats, whoami, keygen, admin,
 * watch, clock.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <greenmarket/date.h>
#include <greenmarket/text.h>

#include "codec.h"
#include "commands.h"
#include "greenmarket.pb-c.h"

/* Calls gm.<method> and prints the reply; the common shape of most. */
static int gm__simple(gm_cli *cli, const char *method,
                      const ProtobufCMessage *req) {
  ProtobufCMessage *reply;
  int code = gm_cli_call(cli, "gm", method, req, &reply);
  if (code == GM_CLI_EXIT_OK) {
    gm_cli_print(cli, reply);
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  return code;
}

static int gm__no_args(int argc, char **argv, const char *usage) {
  if (gm_cli_wants_help(argc, argv)) {
    printf("%s", usage);
    return GM_CLI_EXIT_OK;
  }
  if (argc > 1) {
    fprintf(stderr, "error: unexpected argument \"%s\"\n%s", argv[1], usage);
    return GM_CLI_EXIT_ERROR;
  }
  return -1;
}

int gm_cli_cmd_ping(gm_cli *cli, int argc, char **argv) {
  static const char usage[] =
      "usage: gm ping [TEXT]\n"
      "Asks the broker to answer; prints its reply and the round trip.\n";
  if (gm_cli_wants_help(argc, argv)) return printf("%s", usage), 0;
  if (argc > 2) {
    fprintf(stderr, "error: ping takes at most one TEXT\n%s", usage);
    return GM_CLI_EXIT_ERROR;
  }
  Gm__PingRequest req = GM__PING_REQUEST__INIT;
  req.echo = argc > 1 ? argv[1] : "";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ProtobufCMessage *reply;
  int code = gm_cli_call(cli, "gm", "ping", &req.base, &reply);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (code != GM_CLI_EXIT_OK) return code;
  gm_cli_print(cli, reply);
  if (cli->output == GM_CLI_OUTPUT_TABLE)
    printf("round trip: %ld us\n", (long)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                          (t1.tv_nsec - t0.tv_nsec) / 1000));
  protobuf_c_message_free_unpacked(reply, NULL);
  return code;
}

int gm_cli_cmd_markets(gm_cli *cli, int argc, char **argv) {
  int code = gm__no_args(argc, argv,
                         "usage: gm markets\n"
                         "Lists the markets the broker has loaded, with "
                         "their methods.\n");
  if (code >= 0) return code;
  const Gm__MarketsReply *mr = gm_cli_markets(cli, &code);
  if (!mr) return code;
  if (cli->output == GM_CLI_OUTPUT_JSON) {
    gm_cli_print(cli, &mr->base);
    return GM_CLI_EXIT_OK;
  }
  for (size_t i = 0; i < mr->n_markets; i++) {
    const Gm__MarketInfo *mi = mr->markets[i];
    printf("%s%s %s  %s\n", i ? "\n" : "", mi->name, mi->version,
           mi->description);
    for (size_t k = 0; k < mi->n_methods; k++) {
      const Gm__MethodInfo *m = mi->methods[k];
      printf("  %-22s %s%s%s%s%s\n", m->name, m->summary,
             m->mutating ? " [mutating]" : "", *m->roles ? " [" : "", m->roles,
             *m->roles ? "]" : "");
    }
    for (size_t k = 0; k < mi->n_roles; k++)
      printf("%s  %-22s %s\n", k ? "" : "  roles:\n", mi->roles[k]->name,
             mi->roles[k]->summary);
  }
  return GM_CLI_EXIT_OK;
}

int gm_cli_cmd_stats(gm_cli *cli, int argc, char **argv) {
  int code = gm__no_args(argc, argv,
                         "usage: gm stats\n"
                         "Request, error and latency counters, per market.\n");
  if (code >= 0) return code;
  Gm__StatsRequest req = GM__STATS_REQUEST__INIT;
  return gm__simple(cli, "stats", &req.base);
}

int gm_cli_cmd_whoami(gm_cli *cli, int argc, char **argv) {
  int code = gm__no_args(argc, argv,
                         "usage: gm whoami\n"
                         "Who the broker thinks you are: participant and "
                         "roles.\n");
  if (code >= 0) return code;
  Gm__WhoamiRequest req = GM__WHOAMI_REQUEST__INIT;
  return gm__simple(cli, "whoami", &req.base);
}

int gm_cli_cmd_keygen(gm_cli *cli, int argc, char **argv) {
  static const char usage[] =
      "usage: gm keygen [--out FILE]\n"
      "Makes a CURVE key pair.  With --out, writes it to FILE (mode 0600, "
      "never\noverwriting) for --key-file, and prints the public key to "
      "register with\n`gm admin register ID --roles ... --key PUBLIC`.\n";
  static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *out = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    if (c == 'o')
      out = optarg;
    else if (c == 'h')
      return printf("%s", usage), GM_CLI_EXIT_OK;
    else
      return fprintf(stderr, "%s", usage), GM_CLI_EXIT_ERROR;
  }
  char pub[41], sec[41];
  if (gm_keypair(pub, sec) != GM_OK) {
    fprintf(stderr,
            "error: UNIMPLEMENTED: this libzmq has no CURVE support; "
            "install a libzmq built with libsodium\n");
    return GM_CLI_EXIT_ERROR;
  }
  int code = GM_CLI_EXIT_OK;
  if (out) {
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
      fprintf(stderr, "error: cannot create %s: %m%s\n", out,
              errno == EEXIST ? " (choose a new name; keys are never "
                                "overwritten)"
                              : "");
      if (fd >= 0) close(fd);
      code = GM_CLI_EXIT_ERROR;
      goto done;
    }
    fprintf(f,
            "# greenmarket CURVE key pair: keep this file private\n"
            "public = %s\nsecret = %s\n",
            pub, sec);
    if (fclose(f) != 0) {
      fprintf(stderr, "error: cannot write %s: %m\n", out);
      code = GM_CLI_EXIT_ERROR;
      goto done;
    }
  }
  if (cli->output == GM_CLI_OUTPUT_JSON)
    printf("{\"public\": \"%s\"%s%s%s}\n", pub, out ? "" : ", \"secret\": \"",
           out ? "" : sec, out ? "" : "\"");
  else if (out)
    printf("public = %s\nsecret key written to %s\n", pub, out);
  else
    printf("public = %s\nsecret = %s\n", pub, sec);
done:
  explicit_bzero(sec, sizeof sec);
  return code;
}

static const char gm__admin_usage[] =
    "usage: gm admin register ID --roles ROLE[,ROLE...] [--key Z85] "
    "[--name TEXT]\n"
    "       gm admin dead-letters [MARKET] [--limit N]\n"
    "       gm admin replay STREAM ID\n"
    "register: registers (or updates) a participant.  Roles: admin, or "
    "one the\nloaded markets' methods name (`gm markets` shows them in "
    "brackets).  --key is\nthe participant's CURVE public key (from `gm "
    "keygen`); without keys the broker\nruns in development mode.\n"
    "dead-letters: outbox entries set aside because their market's settle "
    "callback\nkept failing (oldest first, at most N, default 100).\n"
    "replay: puts one back into its stream once the cause is fixed; it "
    "settles like\nany entry and leaves the list then.  Retry with the same "
    "--idempotency-key.\n";

/* Local time "YYYY-MM-DD HH:MM:SS" of milliseconds since 1970. */
static void gm__time_text(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (!localtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm))
    snprintf(out, 32, "%lld", (long long)ms);
}

static int gm__admin_dead_letters(gm_cli *cli, int argc, char **argv) {
  static const struct option opts[] = {{"limit", required_argument, NULL, 'l'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  Gm__DeadLettersRequest req = GM__DEAD_LETTERS_REQUEST__INIT;
  int c;
  optind = 1;
  /* argv[0] is "dead-letters". */
  while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
    if (c == 'l') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (!*optarg || *end || v < 1 || v > 1000) {
        fprintf(stderr, "error: --limit wants 1-1000\n%s", gm__admin_usage);
        return GM_CLI_EXIT_ERROR;
      }
      req.limit = (int32_t)v;
    } else if (c == 'h') {
      return printf("%s", gm__admin_usage), GM_CLI_EXIT_OK;
    } else {
      return fprintf(stderr, "%s", gm__admin_usage), GM_CLI_EXIT_ERROR;
    }
  }
  int rest = argc - optind;
  if (rest > 1) {
    fprintf(stderr, "error: give at most one MARKET\n%s", gm__admin_usage);
    return GM_CLI_EXIT_ERROR;
  }
  req.market = rest == 1 ? argv[optind] : "";
  ProtobufCMessage *reply;
  int code = gm_cli_call(cli, "gm", "deadletters.list", &req.base, &reply);
  if (code != GM_CLI_EXIT_OK) return code;
  if (cli->output == GM_CLI_OUTPUT_JSON) {
    gm_cli_print(cli, reply);
  } else {
    const Gm__DeadLettersReply *r = (const Gm__DeadLettersReply *)reply;
    if (r->n_dead_letters == 0) printf("no dead letters\n");
    for (size_t i = 0; i < r->n_dead_letters; i++) {
      const Gm__DeadLetter *d = r->dead_letters[i];
      char when[32];
      gm__time_text(d->set_aside_ms, when);
      printf("%s %s  kind %s  market %s\n", d->stream, d->id, d->kind,
             d->market);
      printf("  set aside %s after %lld failure(s): %s\n", when,
             (long long)d->failures, d->error);
      printf("  fields:");
      for (size_t k = 0; k < d->n_fields; k++)
        printf(" %s=%s", d->fields[k]->name, d->fields[k]->value);
      printf("\n");
      if (d->replayed_as && *d->replayed_as)
        printf("  put back as %s; waiting for it to settle\n", d->replayed_as);
    }
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return GM_CLI_EXIT_OK;
}

static int gm__admin_replay(gm_cli *cli, int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "error: give the dead letter's STREAM and ID\n%s",
            gm__admin_usage);
    return GM_CLI_EXIT_ERROR;
  }
  Gm__ReplayRequest req = GM__REPLAY_REQUEST__INIT;
  req.stream = argv[1];
  req.id = argv[2];
  return gm__simple(cli, "deadletters.replay", &req.base);
}

int gm_cli_cmd_admin(gm_cli *cli, int argc, char **argv) {
  const char *usage = gm__admin_usage;
  if (argc >= 2 && !strcmp(argv[1], "dead-letters")) {
    if (gm_cli_wants_help(argc - 1, argv + 1))
      return printf("%s", usage), GM_CLI_EXIT_OK;
    return gm__admin_dead_letters(cli, argc - 1, argv + 1);
  }
  if (argc >= 2 && !strcmp(argv[1], "replay")) {
    if (gm_cli_wants_help(argc - 1, argv + 1))
      return printf("%s", usage), GM_CLI_EXIT_OK;
    return gm__admin_replay(cli, argc - 1, argv + 1);
  }
  if (argc < 2 || strcmp(argv[1], "register")) {
    if (gm_cli_wants_help(argc, argv)) return printf("%s", usage), 0;
    fprintf(stderr, "error: unknown admin command\n%s", usage);
    return GM_CLI_EXIT_ERROR;
  }
  static const struct option opts[] = {{"roles", required_argument, NULL, 'r'},
                                       {"key", required_argument, NULL, 'k'},
                                       {"name", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *roles = NULL, *key = "", *name = "";
  int c;
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "r:k:n:h", opts, NULL)) != -1) {
    if (c == 'r')
      roles = optarg;
    else if (c == 'k')
      key = optarg;
    else if (c == 'n')
      name = optarg;
    else if (c == 'h')
      return printf("%s", usage), GM_CLI_EXIT_OK;
    else
      return fprintf(stderr, "%s", usage), GM_CLI_EXIT_ERROR;
  }
  if (optind + 1 != argc - 1 || !roles || !*roles) {
    fprintf(stderr, "error: give one participant ID and --roles\n%s", usage);
    return GM_CLI_EXIT_ERROR;
  }
  char *copy = strdup(roles);
  char *list[16];
  size_t n = 0;
  for (char *save, *t = strtok_r(copy, ",", &save); t && n < 16;
       t = strtok_r(NULL, ",", &save))
    list[n++] = t;
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = argv[1 + optind];
  p.public_key = (char *)key;
  p.name = (char *)name;
  p.n_roles = n;
  p.roles = list;
  Gm__RegisterRequest req = GM__REGISTER_REQUEST__INIT;
  req.participant = &p;
  int code = gm__simple(cli, "register", &req.base);
  free(copy);
  return code;
}

int gm_cli_parse_time(const char *text, int64_t *ms) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (*text && !*end && !errno && v >= 0) {
    *ms = v;
    return 0;
  }
  struct tm tm = {0};
  int frac = 0, nfrac = 0, off = 0;
  const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return -1;
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, nfrac++)
      if (nfrac < 3) frac = frac * 10 + (*p - '0');
    for (int k = nfrac; k < 3; k++) frac *= 10;
  }
  if (*p == 'Z') {
    p++;
  } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
             isdigit((unsigned char)p[2]) && p[3] == ':' &&
             isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
    int mm = (p[4] - '0') * 10 + (p[5] - '0');
    if (mm > 59) return -1;
    off = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + mm;
    if (*p == '-') off = -off;
    p += 6;
  } else {
    return -1; /* a time without a zone is ambiguous: refuse it */
  }
  if (*p) return -1;
  /* strptime takes any day 1-31 and seconds up to 61, and timegm rolls
     them over (2026-02-30 became 2026-03-02): only a real date and second,
     and an offset a zone has (-14:00 .. +14:00), are a time. */
  if (!gm_date_valid(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) ||
      tm.tm_sec > 59 || off > 14 * 60 || off < -14 * 60)
    return -1;
  time_t t = timegm(&tm);
  *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
  return 0;
}

int gm_cli_cmd_clock(gm_cli *cli, int argc, char **argv) {
  static const char usage[] =
      "usage: gm clock set 2026-11-24T09:30:00+08:00|MILLISECONDS\n"
      "Sets the broker's test clock; only when it runs with [testing] clock "
      "= manual.\n";
  if (gm_cli_wants_help(argc, argv)) return printf("%s", usage), 0;
  int64_t ms;
  if (argc != 3 || strcmp(argv[1], "set")) {
    fprintf(stderr, "error: expected `gm clock set TIME`\n%s", usage);
    return GM_CLI_EXIT_ERROR;
  }
  if (gm_cli_parse_time(argv[2], &ms)) {
    fprintf(stderr,
            "error: \"%s\" is not a time: write 2026-11-24T09:30:00+08:00 "
            "(a zone is required) or milliseconds since 1970\n",
            argv[2]);
    return GM_CLI_EXIT_ERROR;
  }
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  req.time_ms = ms;
  return gm__simple(cli, "clock.set", &req.base);
}

static volatile sig_atomic_t gm__stop;

static void gm__on_signal(int sig) {
  (void)sig;
  gm__stop = 1;
}

/* Prints one event: its body decoded when the market's types are known. */
static void gm__print_event(gm_cli *cli, const char *topic,
                            const Gm__Event *ev) {
  const ProtobufCMessageDescriptor *d =
      ev->type && *ev->type ? gm_cli_find_type(cli, ev->market, ev->type)
                            : NULL;
  ProtobufCMessage *body =
      d ? protobuf_c_message_unpack(d, NULL, ev->body.len, ev->body.data)
        : NULL;
  json_t *j = gm_codec_to_json(&ev->base);
  json_object_set_new(j, "topic", json_string(topic));
  if (body) json_object_set_new(j, "body", gm_codec_to_json(body));
  if (cli->output == GM_CLI_OUTPUT_JSON) {
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) puts(s);
    free(s);
  } else {
    char when[32] = "";
    /* Floored, so a time before 1970 prints its own second. */
    int64_t ms = ev->time_ms % 1000;
    time_t secs = (time_t)(ev->time_ms / 1000 - (ms < 0));
    struct tm tm;
    if (ms < 0) ms += 1000;
    if (gmtime_r(&secs, &tm))
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%03dZ  %s  seq %llu  %s\n", when, (int)ms, topic,
           (unsigned long long)ev->seq, ev->type);
    if (body) {
      gm_codec_print_table(stdout, body);
    } else {
      char *b64 = gm_codec_base64_encode(ev->body.data, ev->body.len);
      printf("  body (%zu bytes, type unknown here): %s\n", ev->body.len,
             b64 ? b64 : "");
      free(b64);
    }
    printf("\n");
  }
  fflush(stdout);
  json_decref(j);
  if (body) protobuf_c_message_free_unpacked(body, NULL);
}

int gm_cli_cmd_watch(gm_cli *cli, int argc, char **argv) {
  static const char usage[] =
      "usage: gm watch [--count N] [TOPIC-PREFIX ...]\n"
      "Prints feed events until Ctrl-C or N events; bodies are decoded when "
      "the\nmarket's plugin is found.  Topics: \"<market>.<event>\" for "
      "public events\n(see `gm markets`), \"@p:<participant> "
      "<market>.<event>\" for one\nparticipant's and \"@r:<role> "
      "<market>.<event>\" for a role's holders.  No\nprefix: every public "
      "event and your own private ones; \"@\": your private\nevents only.  "
      "The broker keeps of a private subscription only what you may\nsee "
      "(CURVE); in development mode, --as ID watches ID's.\n";
  static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  long count = -1;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
    if (c == 'n') {
      char *end;
      errno = 0;
      count = strtol(optarg, &end, 10);
      if (*end || !*optarg || count < 1 || errno == ERANGE) {
        fprintf(stderr,
                "error: --count \"%s\": give a whole number of events from 1 "
                "to %ld\n",
                optarg, LONG_MAX);
        return GM_CLI_EXIT_ERROR;
      }
    } else if (c == 'h')
      return printf("%s", usage), GM_CLI_EXIT_OK;
    else
      return fprintf(stderr, "%s", usage), GM_CLI_EXIT_ERROR;
  }
  /* Topics are UTF-8 text: a prefix that is not can match none. */
  for (int i = optind; i < argc; i++) {
    char why[160];
    if (gm_text_check(argv[i], 0, why, sizeof why)) {
      fprintf(stderr, "error: topic prefix %d %s\n", i - optind + 1, why);
      return GM_CLI_EXIT_ERROR;
    }
  }
  gm_feed *f = gm_feed_new(cli->feed_endpoint, &cli->opts);
  if (!f) {
    fprintf(stderr, "error: %s\n", gm_client_last_error());
    return GM_CLI_EXIT_ERROR;
  }
  if (optind == argc) {
    const char *as = cli->opts.dev_participant;
    if (as && *as && !cli->opts.public_key) {
      /* Development mode keeps subscriptions as asked, so "" would bring
         every participant's private events: the public ones and --as's. */
      char mine[96];
      snprintf(mine, sizeof mine, "@p:%s ", as);
      for (const char *p = "abcdefghijklmnopqrstuvwxyz"; *p; p++) {
        char first[2] = {*p, 0};
        gm_feed_subscribe(f, first);
      }
      gm_feed_subscribe(f, mine);
    } else {
      gm_feed_subscribe(f, "");
    }
  }
  for (int i = optind; i < argc; i++) {
    gm_status s = gm_feed_subscribe(f, argv[i]);
    if (s == GM_FAILED_PRECONDITION)
      fprintf(stderr,
              "warning: %s is a private topic and no private feed is known; "
              "give --private-feed URL\n",
              argv[i]);
    else if (s != GM_OK) {
      fprintf(stderr, "error: %s\n", gm_client_last_error());
      gm_feed_destroy(&f);
      return GM_CLI_EXIT_ERROR;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = gm__on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (cli->verbose)
    fprintf(stderr, "watching %s (Ctrl-C stops)\n", cli->feed_endpoint);
  while (!gm__stop && count != 0) {
    char *topic;
    Gm__Event *ev;
    gm_status s = gm_feed_recv(f, &topic, &ev, 250);
    if (s == GM_OK) {
      gm__print_event(cli, topic, ev);
      if (count > 0) count--;
    } else if (s == GM_INVALID_ARGUMENT) {
      fprintf(stderr, "warning: skipped a malformed feed message%s%s\n",
              topic ? " on topic " : "", topic ? topic : "");
    } else if (s == GM_PERMISSION_DENIED) {
      /* No topic: the broker refused the feed's key itself. */
      if (topic && *topic) /* the message names the subscription */
        fprintf(stderr, "error: %s\n", gm_client_last_error());
      else
        fprintf(stderr, "error: the broker refused this feed: %s\n",
                gm_client_last_error());
    }
    free(topic);
    gm_feed_event_free(&ev);
  }
  gm_feed_destroy(&f);
  return GM_CLI_EXIT_OK;
}
