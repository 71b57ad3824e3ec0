#include "run_gm.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void slurp(int fd, char *buf, size_t cap) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, cap - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

run_result *gm_test_run_gm(const char *endpoint, char *const *args) {
  static run_result r;
  char *argv[72];
  int argc = 0;
  argv[argc++] = (char *)GM_BUILD_DIR "/cli/gm";
  for (int i = 0; args[i] && argc < 71; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  char outp[] = "/tmp/gm-cli-out-XXXXXX", errp[] = "/tmp/gm-cli-err-XXXXXX";
  int ofd = mkstemp(outp), efd = mkstemp(errp);
  ck_assert(ofd >= 0 && efd >= 0);
  unlink(outp);
  unlink(errp);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(ofd, 1);
    dup2(efd, 2);
    unsetenv("GM_AS");
    unsetenv("GM_SERVER_KEY");
    unsetenv("GM_KEY_FILE");
    if (endpoint) setenv("GM_ENDPOINT", endpoint, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  slurp(ofd, r.out, sizeof r.out);
  slurp(efd, r.err, sizeof r.err);
  return &r;
}

int gm_test_shell(const char *cmd, char *out, size_t outlen) {
  /* A group, so a compound command ("cd DIR && tool") joins the stderr of
     every part, not only the last one's. */
  size_t n = strlen(cmd) + 16;
  char *full = malloc(n);
  ck_assert_ptr_nonnull(full);
  ck_assert(outlen > 0);
  snprintf(full, n, "{ %s\n} 2>&1", cmd);
  FILE *p = popen(full, "r");
  free(full);
  ck_assert_msg(p != NULL, "cannot run %s", cmd);
  size_t len = fread(out, 1, outlen - 1, p);
  out[len] = '\0';
  /* Read the rest, so the command never blocks on a full pipe. */
  char sink[4096];
  while (fread(sink, 1, sizeof sink, p) > 0) {
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int gm_test_gmd_check(const char *conf, char *out, size_t outlen) {
  /* Quoted: a build folder or config path may hold spaces. */
  ck_assert_msg(!strchr(conf, '\'') && !strchr(GM_BUILD_DIR, '\''),
                "a quote in %s", conf);
  size_t n = strlen(conf) + sizeof GM_BUILD_DIR + 32;
  char *cmd = malloc(n);
  ck_assert_ptr_nonnull(cmd);
  snprintf(cmd, n, "'%s/core/gmd' --check -c '%s'", GM_BUILD_DIR, conf);
  int rc = gm_test_shell(cmd, out, outlen);
  free(cmd);
  return rc;
}
