/*
 * Private to `gm`: the context every command gets, and the commands and
 * helpers shared by its files.  A market's friendly commands see none of
 * this: they get the gm_cli_api table (<greenmarket/cli.h>, cli/api.c).
 */
#ifndef GM_CLI_COMMANDS_H
#define GM_CLI_COMMANDS_H

#include <stdint.h>
#include <stdio.h>

#include <greenmarket/cli.h>
#include <greenmarket/client.h>
#include <greenmarket/plugin.h>

typedef enum gm_cli_output {
  GM_CLI_OUTPUT_TABLE = 0, /* readable: key/value lines, rows for lists */
  GM_CLI_OUTPUT_JSON = 1   /* one JSON document per reply (--json) */
} gm_cli_output;

typedef struct gm_cli_plugin gm_cli_plugin; /* one dlopen()ed plugin */

/* The progress line of gm_cli_api.progress (one at a time). */
typedef struct gm_cli_progress {
  int shown;        /* a line is on the terminal */
  int64_t start_ms; /* monotonic ms of the first report */
  int64_t drawn_ms; /* monotonic ms of the last redraw */
  int64_t done;     /* the last report */
  int64_t total;    /* 0: unknown */
  char what[64];    /* the label */
} gm_cli_progress;

/* What every command sees; filled from the global options. */
struct gm_cli {
  const char *endpoint;        /* --endpoint / GM_ENDPOINT */
  const char *feed_endpoint;   /* --feed / GM_FEED */
  const char *plugin_dir;      /* --plugin-dir / GM_PLUGIN_DIR / defaults */
  const char *idempotency_key; /* --idempotency-key, else fresh per call */
  gm_cli_output output;        /* --json */
  int verbose;                 /* -v: print idempotency keys, request ids */
  gm_client_options opts;      /* timeout, keys, dev participant */
  gm_client *client;           /* made on first call; use gm_cli_client() */
  gm_cli_plugin *plugins;      /* loaded plugins (descriptor lookup) */
  ProtobufCMessage *markets;   /* cached gm.MarketsReply, or NULL */
  char fresh_key[33];          /* this run's idempotency key, made once */
  unsigned mutations;          /* mutating calls made so far */
  char message[2048];          /* the last call_quiet()'s reason */
  gm_cli_progress progress;    /* gm_cli_api.progress */
};

/* The services handed to market extensions (api.c). */
const gm_cli_api *gm_cli_services(void);

/* The client, connected on first use; NULL after printing why. */
gm_client *gm_cli_client(gm_cli *cli);

/*
 * Calls market.method with `req` (NULL: empty).  Mutating methods (per the
 * flags of the loaded plugin's method table) get cli->idempotency_key, or
 * this run's fresh key, with ".N" appended from the second mutating call of
 * the run on (printed with -v).  On GM_OK sets *reply (decoded with the
 * method's reply type; free it with protobuf_c_message_free_unpacked(*reply,
 * NULL)) and returns 0.  Otherwise prints "error: STATUS: message" to stderr
 * and returns GM_CLI_EXIT_ERROR, or GM_CLI_EXIT_UNAVAILABLE with a hint when
 * the broker is unreachable.
 */
int gm_cli_call(gm_cli *cli, const char *market, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply);
/*
 * gm_cli_call() that, with `quiet`, prints nothing but -v lines: *result
 * gets the status and message either way (gm_result_clear() it; its reply
 * is moved to *reply).  gm's own refusals before sending (no such method in
 * the plugin, a malformed endpoint) come back as GM_NOT_FOUND or
 * GM_INVALID_ARGUMENT.  Returns the exit code.
 */
int gm_cli_call_ex(gm_cli *cli, const char *market, const char *method,
                   const ProtobufCMessage *req, ProtobufCMessage **reply,
                   gm_result *result, int quiet);

/* Prints `msg` to stdout as a table or as JSON per cli->output. */
void gm_cli_print(gm_cli *cli, const ProtobufCMessage *msg);

/*
 * The method as the market's plugin declares it (request and reply
 * descriptors, flags, summary): the core "gm" methods are built in, other
 * markets come from gm_<market>.so in the plugin dir.  NULL when not found
 * (no message printed; gm_cli_method_error() prints why).
 */
const gm_method *gm_cli_method(gm_cli *cli, const char *market,
                               const char *method);
/* Prints to stderr why gm_cli_method() found nothing and what exists. */
void gm_cli_method_error(gm_cli *cli, const char *market, const char *method);

/*
 * The message type `full_name` (e.g. "gm.<market>.Trade") reachable from the
 * methods of `market`'s plugin (NULL: any loaded plugin), or NULL.
 */
const ProtobufCMessageDescriptor *gm_cli_find_type(gm_cli *cli,
                                                   const char *market,
                                                   const char *full_name);

/* gm.<method> as `gm` knows it without any plugin. */
const gm_plugin *gm_cli_core_plugin(void);

/*
 * The plugin of `market` ("gm": built in), dlopen()ed from the plugin dirs
 * on first use.  NULL with *why (static text or cli-owned) when not found;
 * *missing (when not NULL) is set when no file gm_<market>.so exists (a
 * file that exists but is no usable plugin leaves it 0).
 */
const gm_plugin *gm_cli_load_plugin(gm_cli *cli, const char *market,
                                    const char **why, int *missing);
/* The market's friendly commands, when its plugin ships usable ones. */
const struct gm_cli_extension *gm_cli_extension_of(const gm_plugin *p,
                                                   const char *market);
/*
 * Writes the market names of the gm_*.so files in the plugin dirs into
 * `out` ("a, b", sorted; "" when none) and the dirs searched into `dirs`.
 */
void gm_cli_local_markets(gm_cli *cli, char *out, size_t outlen, char *dirs,
                          size_t dirslen);
/* Closes every dlopen()ed plugin (at exit, after the last message freed). */
void gm_cli_plugins_close(gm_cli *cli);

/* The broker's gm.MarketsReply (cached); NULL after printing the error. */
const struct Gm__MarketsReply *gm_cli_markets(gm_cli *cli, int *exit_code);

/* Prints "error: ..." for a call that failed; returns the exit code. */
int gm_cli_fail(const gm_result *r);

/* Core commands (core.c); argv[0] is the command word. */
int gm_cli_cmd_ping(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_markets(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_stats(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_whoami(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_keygen(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_admin(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_watch(gm_cli *cli, int argc, char **argv);
int gm_cli_cmd_clock(gm_cli *cli, int argc, char **argv);
/*
 * `gm <word> ...` for a word that is no core command: a market's friendly
 * commands, then the generic call; for no market, the nearest command or
 * market (call.c).  `commands` lists the core command words (NULL-ended).
 */
int gm_cli_cmd_market(gm_cli *cli, int argc, char **argv,
                      const char *const *commands);

/* Parses 2026-11-24T09:30:00+08:00 (or Z, or milliseconds) into ms. */
int gm_cli_parse_time(const char *text, int64_t *ms);
/* Reads a key file ("public = Z85" / "secret = Z85" lines). 0 or -1. */

/* True when argv (from index 1) asks for help: -h or --help. */
int gm_cli_wants_help(int argc, char **argv);

#endif /* GM_CLI_COMMANDS_H */
