/*
 * The `gm` command line: the context every command gets, and the hook for
 * market-specific friendly commands ("gm carbon buy ...").
 *
 * A market extension lives in cli/<market>.c, defines
 *
 *   const struct gm_cli_extension gm_cli_<market>_extension = {
 *       "<market>", run, help};
 *
 * and is listed with one X(<market>) line in cli/extensions.c.  `gm <market>
 * ...` first calls run(cli, argc, argv) with argv[0] = the word after the
 * market; run returns GM_CLI_NOT_MINE to let the generic
 * `gm <market> <method> field=value...` handle it, else the exit code.
 */
#ifndef GM_CLI_H
#define GM_CLI_H

#include <stdio.h>

#include <greenmarket/client.h>
#include <greenmarket/plugin.h>

/* Exit codes. */
#define GM_CLI_EXIT_OK 0
#define GM_CLI_EXIT_ERROR 1       /* the broker or the user said no */
#define GM_CLI_EXIT_UNAVAILABLE 2 /* the broker could not be reached */
/* An extension's run() does not handle these arguments. */
#define GM_CLI_NOT_MINE (-1)

typedef enum gm_cli_output {
  GM_CLI_OUTPUT_TABLE = 0, /* readable: key/value lines, rows for lists */
  GM_CLI_OUTPUT_JSON = 1   /* one JSON document per reply (--json) */
} gm_cli_output;

typedef struct gm_cli_plugin gm_cli_plugin; /* one dlopen()ed plugin */

/* What every command sees; filled from the global options. */
typedef struct gm_cli {
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
} gm_cli;

/* The client, connected on first use; NULL after printing why. */
gm_client *gm_cli_client(gm_cli *cli);

/*
 * Calls market.method with `req` (NULL: empty).  Mutating methods (per the
 * broker's `markets` reply, or the plugin's flags for market "gm") get
 * cli->idempotency_key or a fresh key (printed with -v).  On GM_OK sets
 * *reply (decoded with the method's reply type; free it with
 * protobuf_c_message_free_unpacked(*reply, NULL)) and returns 0.  Otherwise
 * prints "error: STATUS: message" to stderr and returns GM_CLI_EXIT_ERROR,
 * or GM_CLI_EXIT_UNAVAILABLE with a hint when the broker is unreachable.
 */
int gm_cli_call(gm_cli *cli, const char *market, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply);

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
 * The message type `full_name` (e.g. "gm.carbon.Trade") reachable from the
 * methods of `market`'s plugin (NULL: any loaded plugin), or NULL.
 */
const ProtobufCMessageDescriptor *gm_cli_find_type(gm_cli *cli,
                                                   const char *market,
                                                   const char *full_name);

/* A market's friendly commands. */
struct gm_cli_extension {
  const char *market;
  /* argv[0] is the word after the market name; argc >= 1. */
  int (*run)(gm_cli *cli, int argc, char **argv);
  void (*help)(FILE *out); /* printed first by `gm <market> --help` */
};

/* The registered extensions, NULL-terminated (cli/extensions.c). */
extern const struct gm_cli_extension *const gm_cli_extensions[];

#endif /* GM_CLI_H */
