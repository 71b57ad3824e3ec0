/* Private to `gm`: the commands and helpers shared by its files. */
#ifndef GM_CLI_COMMANDS_H
#define GM_CLI_COMMANDS_H

#include "cli.h"

/* gm.<method> as `gm` knows it without any plugin. */
const gm_plugin *gm_cli_core_plugin(void);

/*
 * The plugin of `market` ("gm": built in), dlopen()ed from the plugin dirs
 * on first use.  NULL with *why (static text or cli-owned) when not found.
 */
const gm_plugin *gm_cli_load_plugin(gm_cli *cli, const char *market,
                                    const char **why);
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
/* `gm <market> ...`: the extension first, then the generic call (call.c). */
int gm_cli_cmd_market(gm_cli *cli, int argc, char **argv);

/* Parses 2026-11-24T09:30:00+08:00 (or Z, or milliseconds) into ms. */
int gm_cli_parse_time(const char *text, int64_t *ms);
/* Reads a key file ("public = Z85" / "secret = Z85" lines). 0 or -1. */
int gm_cli_read_key_file(const char *path, char pub[41], char sec[41]);

/* True when argv (from index 1) asks for help: -h or --help. */
int gm_cli_wants_help(int argc, char **argv);

#endif /* GM_CLI_COMMANDS_H */
