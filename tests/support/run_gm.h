/* Runs the built gm binary in a child process and captures what it prints. */
#ifndef GM_TEST_RUN_GM_H
#define GM_TEST_RUN_GM_H

#include <stddef.h>

typedef struct run_result {
  int code;        /* exit status, -1 when gm did not exit normally */
  char out[16384]; /* stdout, NUL-terminated (cut at the size) */
  char err[16384]; /* stderr, likewise */
} run_result;

/*
 * Runs the built gm (GM_BUILD_DIR/cli/gm) with the NULL-terminated args
 * (args[0] is the first argument, not the program), with GM_AS, GM_SERVER_KEY
 * and GM_KEY_FILE unset and GM_ENDPOINT set to endpoint when it is not NULL.
 * The result is static: valid until the next call.
 */
run_result *gm_test_run_gm(const char *endpoint, char *const *args);

/*
 * Runs the shell command `cmd` with its stderr joined to its stdout, which
 * goes into out (NUL-terminated, cut at outlen - 1).  Its exit status, -1
 * when it did not exit normally.  Aborts the test when it cannot run.
 */
int gm_test_shell(const char *cmd, char *out, size_t outlen);
/* `gmd --check -c conf` of the build (gm_test_shell's out and status). */
int gm_test_gmd_check(const char *conf, char *out, size_t outlen);

#endif
