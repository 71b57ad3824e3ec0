/*
 * greenmarket CLI SDK: a market's friendly `gm <market> ...` commands,
 * shipped in the market's own plugin.
 *
 * `gm` dlopen()s gm_<market>.so for its method descriptors (it never calls
 * init).  When the plugin's gm_plugin.cli points at a gm_cli_extension,
 * `gm <market> WORD ...` calls its run() first; run() returns
 * GM_CLI_NOT_MINE for words it does not know, and gm then runs the generic
 * `gm <market> <method> field=value ...`.
 *
 * The extension links no gm symbol: everything it asks of gm comes through
 * the gm_cli_api table handed to run(), as a plugin's handlers get the
 * gm_host_api table.  The table starts with its size and only grows at its
 * end: before calling a function appended after the SDK you built against,
 * check that `size` covers it.
 *
 * See docs/plugins.md, "Friendly commands".
 */
#ifndef GREENMARKET_CLI_H
#define GREENMARKET_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <greenmarket/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What `gm` exits with; run() returns one of them. */
#define GM_CLI_EXIT_OK 0
#define GM_CLI_EXIT_ERROR 1       /* the user or the broker said no */
#define GM_CLI_EXIT_UNAVAILABLE 2 /* no broker answered */
/* From run(): not a friendly command; gm takes the generic path. */
#define GM_CLI_NOT_MINE (-1)

/* One run of `gm`: its global options and its connection to the broker. */
typedef struct gm_cli gm_cli;

/*
 * What a friendly command may ask of `gm`.  Functions taking a gm_cli work
 * only during the run() they were handed to.  Replies are decoded with the
 * method's reply descriptor from your plugin, so cast them to your generated
 * type; free them with protobuf_c_message_free_unpacked(reply, NULL).
 */
typedef struct gm_cli_api {
  size_t size;          /* sizeof(gm_cli_api) as gm was built */
  unsigned abi_version; /* GM_PLUGIN_ABI_VERSION of gm */

  /* -- calling the broker -- */
  /*
   * Calls market.method with `req` (NULL: an empty request) and sets *reply.
   * A method flagged GM_METHOD_MUTATING gets --idempotency-key or a fresh
   * key (printed with -v), with ".N" appended from the run's second mutating
   * call on, so a command of several steps, run again with the same
   * --idempotency-key, replays each step instead of repeating it.  On failure
   * prints "error: STATUS: message" on stderr as every gm command does, sets
   * *reply to NULL and returns GM_CLI_EXIT_ERROR, or GM_CLI_EXIT_UNAVAILABLE
   * with a hint when no broker answered.  Returns GM_CLI_EXIT_OK on success.
   */
  int (*call)(gm_cli *cli, const char *market, const char *method,
              const ProtobufCMessage *req, ProtobufCMessage **reply);
  /*
   * Calls market.method as call() does but prints nothing: for commands
   * that go on after a refusal (one bad line of an import).  Returns the
   * exit code call() would; *status is GM_OK, the broker's status, or
   * GM_UNAVAILABLE when no broker answered, and *message the reason ("" on
   * success; valid until the next call on cli).
   */
  int (*call_quiet)(gm_cli *cli, const char *market, const char *method,
                    const ProtobufCMessage *req, ProtobufCMessage **reply,
                    gm_status *status, const char **message);
  /*
   * Prints "error: STATUS: message" on stderr, the way gm reports every
   * failure, and returns GM_CLI_EXIT_ERROR.  Say what was wrong and how to
   * fix it, in the units the user typed.
   */
  int (*error)(gm_cli *cli, gm_status status, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));

  /* -- output -- */
  /* Prints a message on stdout as gm prints replies: a table, or JSON with
     --json. */
  void (*print)(gm_cli *cli, const ProtobufCMessage *msg);
  /* Non-zero when --json is on: print replies with print(), not as text. */
  int (*json)(gm_cli *cli);
  /* Non-zero when -v is on: say more on stderr. */
  int (*verbose)(gm_cli *cli);
  /*
   * Shows how far a long job has got, on one line of stderr redrawn at most
   * ten times a second: "what  done/total  pct%  rate/s  about N s left"
   * (total 0: unknown).  Draws nothing when stderr is not a terminal, so
   * logs and scripts see only the command's own output.
   */
  void (*progress)(gm_cli *cli, const char *what, int64_t done, int64_t total);
  /* Draws the progress line's last state and ends it; call it before
     printing anything else.  Does nothing when no line is shown. */
  void (*progress_end)(gm_cli *cli);

  /* -- input -- */
  /*
   * Parses a time as every gm command takes it: 2026-11-24T09:30:00+08:00
   * (a zone or Z is required, an offset within -14:00 .. +14:00; fractions
   * of a second allowed) or milliseconds since 1970, into ms.  Returns 0,
   * or -1 when it is neither; a date the month does not have (2026-02-30)
   * or a 60th second is no time, never rolled over into the next.
   */
  int (*parse_time)(const char *text, int64_t *ms);

  /* -- files (appended: check with GM_CLI_API_HAS) -- */
  /*
   * Writes len bytes of data to the file `path` whole or not at all: into
   * a new file in the same folder, flushed to disk, then renamed over
   * `path` (a symbolic link is followed: the file it names is replaced, or
   * made when missing; the link stays), so a write that fails (disk full,
   * the file size limit, no such folder, no permission) or a SIGINT,
   * SIGTERM, SIGHUP or SIGQUIT during it leaves a file already there as it
   * was and no part-written file behind.  Only a regular file is replaced (a
   * folder, device or pipe is refused).  A file already there keeps its mode;
   * a new one gets 0666 less the umask.  Returns GM_CLI_EXIT_OK, or prints
   * "error: INVALID_ARGUMENT: cannot write PATH: <reason>; <what to
   * do>" (free space, raise ulimit -f, choose a writable path ...) and returns
   * GM_CLI_EXIT_ERROR.
   */
  int (*write_file)(gm_cli *cli, const char *path, const void *data,
                    size_t len);
} gm_cli_api;

/* Non-zero when gm's table has `fn`: for a function appended after the
   first version, in a plugin that may meet an older gm. */
#define GM_CLI_API_HAS(api, fn) \
  ((api)->size >= offsetof(gm_cli_api, fn) + sizeof((api)->fn))

/*
 * A market's friendly commands: point gm_plugin.cli at one.  gm reads it
 * only when the plugin's gm_plugin.size covers `cli`, and uses it only when
 * `size` covers run and help.
 */
struct gm_cli_extension {
  size_t size; /* sizeof(struct gm_cli_extension) as the plugin was built */
  /*
   * Runs `gm <market> WORD ...`: argv[0] is WORD (argc >= 1), the global
   * options (--json, --as, -v, ...) already taken out.  Returns an exit code,
   * or GM_CLI_NOT_MINE for a WORD it does not handle.
   */
  int (*run)(gm_cli *cli, const gm_cli_api *api, int argc, char **argv);
  /* Prints the commands' usage, first in `gm <market> --help` (may be
     NULL). */
  void (*help)(FILE *out);
};

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_CLI_H */
